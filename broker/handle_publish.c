/*
 * handle_publish.c - `publish`: check, store durably, route, answer.
 *
 * `accepted` is queued here but sent only after the batch's transaction
 * has committed, so it always means "on disk".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "deliver.h"
#include "handler.h"
#include "route.h"


static int	reply_accepted(struct broker *, struct req *, const char *);
static int	record_hash(struct store *, const struct cc_msg *,
		    const uint8_t mid[16], uint8_t out[RECORD_HASH_LEN]);
static int	quota_check(struct broker *, struct req *,
		    const struct msg_hdr *, size_t);

static int
reply_accepted(struct broker *b, struct req *r, const char *mid)
{
	struct reply	rp;

	reply_begin(&rp, "accepted");
	reply_str(&rp, "mid", mid);
	return reply_send(b, r->rid, r->ridlen, &rp);
}

/* The hash the header keeps of the record (store_record_hash of
 * proto_encode_record).  Returns 0 or STORE_NOMEM. */
static int
record_hash(struct store *st, const struct cc_msg *m, const uint8_t mid[16],
    uint8_t out[RECORD_HASH_LEN])
{
	msgpack_sbuffer	rec;
	int		rc = STORE_NOMEM;

	msgpack_sbuffer_init(&rec);
	if (proto_encode_record(m, &rec) == 0 &&
	    store_record_hash(st, mid, rec.data, rec.size, out) == 0)
		rc = 0;
	msgpack_sbuffer_destroy(&rec);
	return rc;
}

/* publish {mid, type, purpose, subject, area, to?, created, expires?, body}
 * -> accepted {mid} */
int
handle_publish(struct broker *b, struct req *r)
{
	struct store		*st = broker_store(b);
	const struct broker_conf *conf = broker_conf(b);
	const char		*sender = r->from->cert.cn;
	const struct policy	*pol = broker_policy_cert(b, r->from);
	const msgpack_object	*to = proto_get(r->msg, "to");
	struct cc_subject	 subj;
	struct msg_hdr		 h;
	struct audit_ev		 ev;
	msgpack_sbuffer		 frame;
	uint8_t			 mid[16], oldmid[16], rhash[RECORD_HASH_LEN];
	char			 midtext[40], field[32], id[CC_ID_MAX + 1];
	int64_t			 exp_ms, now = broker_now(b);
	bool			 queued = false, correction;
	size_t			 npeer;
	uint32_t		 i;
	int			 rtype, purpose, rc;

	if (proto_get_str(r->msg, "mid", midtext, sizeof(midtext)) == -1 ||
	    uuid_parse(midtext, mid) == -1)
		return reply_error(b, r, ERR_INVALID_FIELD, "mid",
		    "not a UUID");
	uuid_unparse_lower(mid, midtext);
	rtype = proto_rtype(r->msg);
	purpose = proto_get(r->msg, "purpose") != NULL ? cc_purpose_parse(
	    proto_get(r->msg, "purpose")->via.str.ptr,
	    proto_get(r->msg, "purpose")->via.str.size) : -1;
	if (rtype < 0 || purpose < 0)
		return reply_error(b, r, ERR_INVALID_FIELD, "type",
		    "unknown record type or purpose");

	/*
	 * Same mid again (DESIGN §6): the same record (all but `created`
	 * alike) has the same answer and no second copy; another record, or
	 * a mid another agency used, is refused.  The two refusals read the
	 * same, and the other agency's is made before its record is looked
	 * at: an agency learns nothing of a message not its own.  A message
	 * stored before its record was hashed (format 4) takes any re-send
	 * from its sender for the same record, as it always did.
	 */
	if ((rc = record_hash(st, r->msg, mid, rhash)) != 0)
		return rc;
	rc = store_msg_get(st, r->txn, mid, &h, NULL);
	if (rc == 0) {
		static const uint8_t	unknown[RECORD_HASH_LEN];

		if (strcmp(h.sender, sender) != 0 ||
		    (memcmp(h.rhash, unknown, sizeof(unknown)) != 0 &&
		    memcmp(h.rhash, rhash, sizeof(rhash)) != 0))
			return reply_error(b, r, ERR_INVALID_FIELD, "mid",
			    "this mid was already used for a different "
			    "record; send the record under a new mid (a "
			    "correction names the old mid in supersedes)");
		return reply_accepted(b, r, midtext);
	}
	if (rc != STORE_NOTFOUND)
		return rc;

	if (pol == NULL || !(pol->publish & (1u << rtype)))
		return reply_error(b, r, ERR_NOT_PERMITTED, "type",
		    "this agency type may not publish %s",
		    cc_rtype_name(rtype));
	/* Validation refuses a direct-only type without `to`; checked here
	 * too, since a message with no recipient could never be routed. */
	if (proto_rtype_direct_only(rtype) && to == NULL)
		return reply_error(b, r, ERR_MISSING_FIELD, "to",
		    "%s is sent to named agencies only", cc_rtype_name(rtype));
	for (i = 0; to != NULL && i < to->via.array.size; i++) {
		snprintf(field, sizeof(field), "to.%u", i);
		if (objstr(&to->via.array.ptr[i], id, sizeof(id)) == -1 ||
		    broker_peer(b, id) == NULL)
			return reply_error(b, r, ERR_UNKNOWN_RECIPIENT, field,
			    "no such agency in the directory");
	}
	/* The payload, its seal and per recipient a queue entry, index,
	 * state, receipt and audit entry; doubled for B-tree splits. */
	(void)broker_peers(b, &npeer);
	if (!broker_room(b, 2 * r->len + 4096 + 1024 * npeer))
		return reply_error(b, r, ERR_STORAGE_FULL, NULL,
		    "the broker's store is full; try again later");

	memset(&h, 0, sizeof(h));
	snprintf(h.sender, sizeof(h.sender), "%s", sender);
	h.rtype = rtype;
	h.purpose = purpose;
	h.accepted_ms = now;
	memcpy(h.rhash, rhash, sizeof(h.rhash));
	h.expires_ms = now + (int64_t)conf->retention_days * 86400000LL;
	if (proto_get_time(r->msg, "expires", &exp_ms) == 0 &&
	    exp_ms < h.expires_ms)
		h.expires_ms = exp_ms;
	if (proto_subject(r->msg, &subj) == -1 ||
	    store_subject_ps(st, &subj, &h.subj) == -1)
		return reply_error(b, r, ERR_INVALID_FIELD, "subject",
		    "no usable identifier");
	explicit_bzero(&subj, sizeof(subj));
	/* A correction: of the sender's own record, same subject and type. */
	if ((rc = correct_check(b, r, &h, &correction, oldmid)) != 0)
		return rc == ANSWERED ? 0 : rc;

	/* The canonical frame, stored if anyone waits for it; its size is
	 * what the quotas count. */
	msgpack_sbuffer_init(&frame);
	if (proto_encode(r->msg, &frame) == -1) {
		rc = STORE_NOMEM;
		goto out;
	}
	if ((rc = quota_check(b, r, &h, frame.size)) != 0)
		goto out;
	if ((rc = route_publish(b, r->txn, mid, midtext, r->msg, sender, &h,
	    frame.size, &queued)) != 0)
		goto out;
	/* The payload is stored once, sealed, only if someone waits for it. */
	rc = store_msg_put(st, r->txn, mid, &h, queued ? frame.data : NULL,
	    frame.size);
	if (rc != 0 || (queued && (rc = store_msg_index(st, r->txn, mid,
	    &h.subj, true)) != 0))
		goto out;
	if (queued)
		quota_hold(b, sender, frame.size);
	msgpack_sbuffer_destroy(&frame);
	if ((rc = store_expiry_put(st, r->txn, h.expires_ms, mid, 0)) != 0)
		return rc;
	broker_expiry_at(b, h.expires_ms);

	memset(&ev, 0, sizeof(ev));
	ev.event = EV_ACCEPTED;
	ev.id = midtext;
	ev.type = cc_rtype_name(rtype);
	ev.sender = sender;
	ev.subj = &h.subj;
	ev.cats = proto_categories_present(r->msg);
	ev.at_ms = now;
	if ((rc = audit_append(st, r->txn, &ev)) != 0 ||
	    (correction && (rc = correct_apply(b, r->txn, oldmid, mid,
	    sender)) != 0))
		return rc;
	broker_count(b, CNT_ACCEPTED);
	if ((rc = reply_accepted(b, r, midtext)) != 0)
		return rc;
	/* Its recipients are sent this tree, not a decoding of the copy. */
	if (queued)
		deliver_keep(mid, &r->msg, ev.cats);
	return 0;
out:
	msgpack_sbuffer_destroy(&frame);
	return rc == ANSWERED ? 0 : rc;
}

/*
 * The sender's quota of messages waiting, and each recipient's of
 * deliveries waiting: a publish past one is refused, `over-quota`, and
 * nothing of it is stored.  Returns 0, ANSWERED, or a store error.
 */
static int
quota_check(struct broker *b, struct req *r, const struct msg_hdr *h,
    size_t bytes)
{
	char	over[CC_ID_MAX + 1];
	int	rc;

	if (!quota_room_held(r->peer, bytes)) {
		rc = reply_error(b, r, ERR_OVER_QUOTA, NULL, "this agency "
		    "has %llu messages (%llu bytes) waiting for their "
		    "recipients, its quota; send again once they are "
		    "delivered", (unsigned long long)r->peer->use.held,
		    (unsigned long long)r->peer->use.held_bytes);
		return rc != 0 ? rc : ANSWERED;
	}
	if ((rc = route_quota(b, r->txn, r->msg, r->from->cert.cn, h, bytes,
	    over)) != 0)
		return rc;
	if (over[0] != '\0') {
		rc = reply_error(b, r, ERR_OVER_QUOTA, NULL, "recipient %s has "
		    "its quota of deliveries waiting; send again later", over);
		return rc != 0 ? rc : ANSWERED;
	}
	return 0;
}
