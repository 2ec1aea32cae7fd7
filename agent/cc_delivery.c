/*
 * cc_delivery.c - a `deliver` or `receipt` frame as the caller sees it.
 */
#include <stdlib.h>
#include <string.h>

#include "cc_internal.h"
#include "schema.h"

struct cc_delivery {
	struct cc_msg		*msg;		/* the validated frame */
	enum cc_delivery_kind	 kind;
	uint64_t		 dseq;
	char			 mid[CC_UUID_LEN + 1];
	char			 from[CC_ID_MAX + 1];
	char			 type[32];
	char			 agency[CC_ID_MAX + 1];
	char			 state[16];
	char			 reason[32];
	char			*json;		/* compact, made on demand */
	char			*pretty;
};

/* Takes ownership of m, also on failure. */
cc_delivery *
ccx_delivery_new(struct cc_msg *m)
{
	cc_delivery	*d;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		proto_msg_destroy(&m);
		return NULL;
	}
	d->msg = m;
	d->kind = proto_op(m) == OP_RECEIPT ? CC_DELIVERY_RECEIPT :
	    CC_DELIVERY_RECORD;
	(void)proto_get_u64(m, "dseq", &d->dseq);
	(void)proto_get_str(m, "mid", d->mid, sizeof(d->mid));
	if (d->kind == CC_DELIVERY_RECORD) {
		(void)proto_get_str(m, "from", d->from, sizeof(d->from));
		(void)proto_get_str(m, "type", d->type, sizeof(d->type));
	} else {
		(void)proto_get_str(m, "agency", d->agency, sizeof(d->agency));
		(void)proto_get_str(m, "state", d->state, sizeof(d->state));
		(void)proto_get_str(m, "reason", d->reason, sizeof(d->reason));
	}
	return d;
}

enum cc_delivery_kind
cc_delivery_kind(const cc_delivery *d)
{
	return d->kind;
}

uint64_t
cc_delivery_dseq(const cc_delivery *d)
{
	return d->dseq;
}

const char *
cc_delivery_mid(const cc_delivery *d)
{
	return d->mid;
}

const char *
cc_delivery_from(const cc_delivery *d)
{
	return d->from;
}

const char *
cc_delivery_type(const cc_delivery *d)
{
	return d->type;
}

const char *
cc_delivery_agency(const cc_delivery *d)
{
	return d->agency;
}

const char *
cc_delivery_state(const cc_delivery *d)
{
	return d->state;
}

const char *
cc_delivery_reason(const cc_delivery *d)
{
	return d->reason;
}

/*
 * DESIGN §8: the files hold the op's fields without `op`, `v` and `dseq`.
 * The map is copied shallowly without them and converted as a whole.
 */
const char *
cc_delivery_json(cc_delivery *d, bool pretty)
{
	const msgpack_object	*root = &d->msg->up.data;
	msgpack_object		 copy;
	msgpack_object_kv	*kv;
	char			**slot = pretty ? &d->pretty : &d->json;
	uint32_t		 i, n = 0;

	if (*slot != NULL)
		return *slot;
	if (root->type != MSGPACK_OBJECT_MAP ||
	    (kv = calloc(root->via.map.size + 1, sizeof(*kv))) == NULL)
		return NULL;
	for (i = 0; i < root->via.map.size; i++) {
		const msgpack_object *k = &root->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR &&
		    ((k->via.str.size == 1 && k->via.str.ptr[0] == 'v') ||
		    (k->via.str.size == 2 && !memcmp(k->via.str.ptr, "op", 2)) ||
		    (k->via.str.size == 4 && !memcmp(k->via.str.ptr, "dseq", 4))))
			continue;
		kv[n++] = root->via.map.ptr[i];
	}
	memset(&copy, 0, sizeof(copy));
	copy.type = MSGPACK_OBJECT_MAP;
	copy.via.map.size = n;
	copy.via.map.ptr = kv;
	*slot = proto_object_to_json(&copy, pretty);
	free(kv);
	return *slot;
}

void
cc_delivery_destroy(cc_delivery **dp)
{
	cc_delivery	*d = *dp;

	if (d == NULL)
		return;
	proto_msg_destroy(&d->msg);
	free(d->json);
	free(d->pretty);
	free(d);
	*dp = NULL;
}
