/*
 * handle_subscribe.c - `subscribe`: which records an agency is offered.
 *
 * A subscription only nominates candidates (rule 7); it is checked against
 * the directory (areas) and policy (what the type may receive) and replaces
 * the agency's previous one.
 */
#include <stdio.h>
#include <string.h>

#include "handler.h"

/* subscribe {types, areas} -> subscribed {types, areas} */
int
handle_subscribe(struct broker *b, struct req *r)
{
	const msgpack_object	*types = proto_get(r->msg, "types");
	const msgpack_object	*areas = proto_get(r->msg, "areas");
	const struct agency_conf *ac = r->from->conf;
	const struct policy	*pol = broker_policy_cert(b, r->from);
	struct sub		 s;
	struct reply		 rp;
	msgpack_packer		*pk;
	char			 field[32];
	uint32_t		 i;
	size_t			 j;
	int			 t, rc;

	memset(&s, 0, sizeof(s));
	for (i = 0; types != NULL && i < types->via.array.size; i++) {
		const msgpack_object *o = &types->via.array.ptr[i];

		t = cc_rtype_parse(o->via.str.ptr, o->via.str.size);
		if (t < 0 || pol == NULL || !(pol->receive &
		    CATSET(CAT_IDENTITY))) {
			snprintf(field, sizeof(field), "types.%u", i);
			return reply_error(b, r, ERR_NOT_PERMITTED, field,
			    "this agency type may not receive records");
		}
		s.types |= 1u << t;
	}
	for (i = 0; areas != NULL && i < areas->via.array.size; i++) {
		char area[CONF_AREA_LEN];

		snprintf(field, sizeof(field), "areas.%u", i);
		if (objstr(&areas->via.array.ptr[i], area, sizeof(area)) == -1)
			return reply_error(b, r, ERR_INVALID_FIELD, field,
			    "not an area code");
		for (j = 0; ac != NULL && j < ac->nareas; j++)
			if (strcmp(ac->areas[j], area) == 0)
				break;
		if (ac == NULL || j == ac->nareas)
			return reply_error(b, r, ERR_NOT_PERMITTED, field,
			    "area not listed for this agency");
		if (s.nareas < SUB_AREAS_MAX)
			snprintf(s.areas[s.nareas++], sizeof(s.areas[0]), "%s",
			    area);
	}
	if ((rc = store_sub_put(broker_store(b), r->txn, r->peer->id,
	    &s)) != 0)
		return rc;
	r->peer->sub = s;
	r->peer->has_sub = true;

	reply_begin(&rp, "subscribed");
	pk = reply_key(&rp, "types");
	reply_check(&rp, msgpack_pack_array(pk, __builtin_popcount(s.types)));
	for (t = 0; t < RT__COUNT; t++)
		if (s.types & (1u << t))
			reply_check(&rp, proto_pack_cstr(pk, cc_rtype_name(t)));
	pk = reply_key(&rp, "areas");
	reply_check(&rp, msgpack_pack_array(pk, s.nareas));
	for (i = 0; i < s.nareas; i++)
		reply_check(&rp, proto_pack_cstr(pk, s.areas[i]));
	return reply_send(b, r->rid, r->ridlen, &rp);
}
