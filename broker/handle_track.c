/*
 * handle_track.c - `track`: every recipient's state of one message.
 */
#include <string.h>

#include <uuid/uuid.h>

#include "handler.h"

static int	count_one(const char *, const struct rstate *, void *);
static int	pack_one(const char *, const struct rstate *, void *);

static int
count_one(const char *agency, const struct rstate *rs, void *arg)
{
	(void)agency;
	(void)rs;
	(*(uint32_t *)arg)++;
	return 0;
}

static int
pack_one(const char *agency, const struct rstate *rs, void *arg)
{
	msgpack_packer	*pk = arg;
	char		 at[32];
	int		 k, rc;

	cc_time_format(rs->at_ms, at);
	rc = msgpack_pack_map(pk, 3 + (rs->reason != RS_NONE) +
	    (rs->notices != 0));
	rc |= proto_pack_cstr(pk, "agency");
	rc |= proto_pack_cstr(pk, agency);
	rc |= proto_pack_cstr(pk, "state");
	rc |= proto_pack_cstr(pk, cc_state_name(rs->state));
	if (rs->reason != RS_NONE) {
		rc |= proto_pack_cstr(pk, "reason");
		rc |= proto_pack_cstr(pk, cc_reason_name(rs->reason));
	}
	rc |= proto_pack_cstr(pk, "at");
	rc |= proto_pack_cstr(pk, at);
	/* The notices the recipient was sent about this message. */
	if (rs->notices != 0) {
		rc |= proto_pack_cstr(pk, "notices");
		rc |= msgpack_pack_array(pk, (uint32_t)__builtin_popcount(
		    rs->notices));
		for (k = 0; k < NT__COUNT; k++)
			if (rs->notices & (1u << k))
				rc |= proto_pack_cstr(pk, cc_notice_name(k));
	}
	return rc == 0 ? 0 : STORE_NOMEM;
}

int
own_message(struct broker *b, struct req *r, const char *field,
    uint8_t mid[16], struct msg_hdr *h)
{
	char	text[40];
	int	rc;

	if (proto_get_str(r->msg, field, text, sizeof(text)) == -1 ||
	    uuid_parse(text, mid) == -1)
		rc = reply_error(b, r, ERR_INVALID_FIELD, field,
		    "not a UUID");
	else if ((rc = store_msg_get(broker_store(b), r->txn, mid, h,
	    NULL)) == 0 && strcmp(h->sender, r->from->cert.cn) == 0)
		return 0;
	else if (rc == 0 || rc == STORE_NOTFOUND)
		rc = reply_error(b, r, ERR_INVALID_FIELD, field,
		    "no message with this mid from this agency");
	else
		return rc;
	return rc != 0 ? rc : ANSWERED;
}

/* track {mid} -> status {mid, recipients: [{agency, state, reason, at}]} */
int
handle_track(struct broker *b, struct req *r)
{
	struct store	*st = broker_store(b);
	struct msg_hdr	 h;
	struct reply	 rp;
	msgpack_packer	*pk;
	uint8_t		 mid[16];
	uint32_t	 n = 0;
	char		 text[40];
	int		 rc;

	/* Only the sender may see where its message went. */
	if ((rc = own_message(b, r, "mid", mid, &h)) != 0)
		return rc == ANSWERED ? 0 : rc;
	/* Counted first: the array's header comes before its items. */
	if ((rc = store_rstates(st, r->txn, mid, count_one, &n)) != 0)
		return rc;
	uuid_unparse_lower(mid, text);
	reply_begin(&rp, "status");
	reply_str(&rp, "mid", text);
	pk = reply_key(&rp, "recipients");
	reply_check(&rp, msgpack_pack_array(pk, n));
	if ((rc = store_rstates(st, r->txn, mid, pack_one, pk)) != 0) {
		reply_discard(&rp);
		return rc;
	}
	return reply_send(b, r->rid, r->ridlen, &rp);
}
