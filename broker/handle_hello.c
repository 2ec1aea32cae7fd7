/*
 * handle_hello.c - `hello`: start a session, answer `welcome`.
 */
#include <string.h>

#include "handler.h"

/* hello {agent, receive} -> welcome {agency, type, areas, max_size, time} */
int
handle_hello(struct broker *b, struct req *r)
{
	const struct agency_conf *ac = r->from->conf;
	struct peer	*p = r->peer;
	struct reply	 rp;
	msgpack_packer	*pk;
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
		memcpy(p->rid, r->rid, r->ridlen);
		p->ridlen = r->ridlen;
		memcpy(p->key, r->key, sizeof(p->key));
		p->online = true;
		p->connected = true;
		p->fd = r->fd;
		p->cursor = 0;
		p->inflight = 0;
		p->dirty = true;
	} else if (p->online && p->ridlen == r->ridlen &&
	    memcmp(p->rid, r->rid, r->ridlen) == 0)
		p->online = false;

	cc_time_format(broker_now(b), now);
	reply_begin(&rp, "welcome");
	reply_str(&rp, "agency", r->from->cert.cn);
	reply_str(&rp, "type", cc_atype_name(r->from->cert.type));
	pk = reply_key(&rp, "areas");
	reply_check(&rp, msgpack_pack_array(pk, nareas));
	for (i = 0; i < nareas; i++)
		reply_check(&rp, proto_pack_cstr(pk, ac->areas[i]));
	reply_u64(&rp, "max_size", broker_conf(b)->max_size);
	reply_str(&rp, "time", now);
	return reply_send(b, r->rid, r->ridlen, &rp);
}
