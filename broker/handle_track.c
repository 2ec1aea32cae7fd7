/*
 * handle_track.c - `track`: every recipient's state of one message.
 */
#include <string.h>

#include <uuid/uuid.h>

#include "broker.h"

#define TRACK_MAX	256

/* track {mid} -> status {mid, recipients: [{agency, state, reason, at}]} */
int
handle_track(struct broker *b, struct req *r)
{
	static char	 ag[TRACK_MAX][CC_ID_MAX + 1];
	static struct rstate rs[TRACK_MAX];
	struct msg_hdr	 h;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	uint8_t		 mid[16];
	char		 text[40], at[32];
	int		 i, n, rc;

	if (proto_get_str(r->msg, "mid", text, sizeof(text)) == -1 ||
	    uuid_parse(text, mid) == -1)
		return reply_error(b, r, ERR_INVALID_FIELD, "mid",
		    "not a UUID");
	rc = store_msg_get(&b->st, r->txn, mid, &h, NULL);
	/* Only the sender may see where its message went. */
	if (rc == MDB_NOTFOUND || (rc == 0 && strcmp(h.sender,
	    r->from->cert.cn) != 0))
		return reply_error(b, r, ERR_INVALID_FIELD, "mid",
		    "no message with this mid from this agency");
	if (rc != 0)
		return rc;
	if ((n = store_rstates(&b->st, r->txn, mid, ag, rs, TRACK_MAX)) < 0)
		return MDB_CORRUPTED;
	uuid_unparse_lower(mid, text);

	reply_start(&sb, &pk, "status", 2);
	proto_pack_cstr(&pk, "mid");
	proto_pack_cstr(&pk, text);
	proto_pack_cstr(&pk, "recipients");
	msgpack_pack_array(&pk, n);
	for (i = 0; i < n; i++) {
		msgpack_pack_map(&pk, rs[i].reason != RS_NONE ? 4 : 3);
		proto_pack_cstr(&pk, "agency");
		proto_pack_cstr(&pk, ag[i]);
		proto_pack_cstr(&pk, "state");
		proto_pack_cstr(&pk, cc_state_name(rs[i].state));
		if (rs[i].reason != RS_NONE) {
			proto_pack_cstr(&pk, "reason");
			proto_pack_cstr(&pk, cc_reason_name(rs[i].reason));
		}
		proto_pack_cstr(&pk, "at");
		cc_time_format(rs[i].at_ms, at);
		proto_pack_cstr(&pk, at);
	}
	return reply_finish(b, r->rid, r->ridlen, &sb);
}
