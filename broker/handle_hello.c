/*
 * handle_hello.c - `hello`: start a session, answer `welcome`.
 */
#include <string.h>

#include "broker.h"

/* hello {agent, receive} -> welcome {agency, type, areas, max_size, time} */
int
handle_hello(struct broker *b, struct req *r)
{
	const struct agency_conf *ac = r->from->conf;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	bool		 receive = true;
	char		 now[32];
	size_t		 i, nareas = ac != NULL ? ac->nareas : 0;

	/* `receive` left out means a receiving session (proto's default). */
	if (proto_get_bool(r->msg, "receive", &receive) == -1)
		receive = true;
	/*
	 * A receiving session replaces any earlier one of the agency: what
	 * was sent there unacked is sent again here (DESIGN §6).
	 */
	if (receive) {
		memcpy(r->peer->rid, r->rid, r->ridlen);
		r->peer->ridlen = r->ridlen;
		r->peer->online = true;
		r->peer->connected = true;
		r->peer->fd = r->fd;
		r->peer->cursor = 0;
		r->peer->inflight = 0;
		r->peer->dirty = true;
	} else if (r->peer->online && r->peer->ridlen == r->ridlen &&
	    memcmp(r->peer->rid, r->rid, r->ridlen) == 0)
		r->peer->online = false;

	cc_time_format(b->now, now);
	reply_start(&sb, &pk, "welcome", 5);
	proto_pack_cstr(&pk, "agency");
	proto_pack_cstr(&pk, r->from->cert.cn);
	proto_pack_cstr(&pk, "type");
	proto_pack_cstr(&pk, cc_atype_name(r->from->cert.type));
	proto_pack_cstr(&pk, "areas");
	msgpack_pack_array(&pk, nareas);
	for (i = 0; i < nareas; i++)
		proto_pack_cstr(&pk, ac->areas[i]);
	proto_pack_cstr(&pk, "max_size");
	msgpack_pack_uint64(&pk, b->conf.max_size);
	proto_pack_cstr(&pk, "time");
	proto_pack_cstr(&pk, now);
	return reply_finish(b, r->rid, r->ridlen, &sb);
}
