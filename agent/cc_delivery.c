/*
 * cc_delivery.c - a `deliver`, `receipt` or `notice` frame as the caller
 * sees it.
 */
#include <stdlib.h>
#include <string.h>

#include "cc_internal.h"
#include "schema.h"

#define TIME_TEXT_MAX	35	/* RFC 3339 as the schema takes it */

/* The public kinds of notice are the wire's, one for one. */
_Static_assert(CC_NOTICE_CONSENT_WITHDRAWN == (int)NT_CONSENT_WITHDRAWN &&
    CC_NOTICE_CONSENT_EXPIRING == (int)NT_CONSENT_EXPIRING &&
    CC_NOTICE_CONSENT_EXPIRED == (int)NT_CONSENT_EXPIRED &&
    CC_NOTICE_RECORD_CORRECTED == (int)NT_RECORD_CORRECTED &&
    CC_NOTICE_RECORD_RETRACTED == (int)NT_RECORD_RETRACTED &&
    CC_NOTICE_SUBJECT_ERASED == (int)NT_SUBJECT_ERASED && NT__COUNT == 6,
    "enum cc_notice_kind and enum cc_notice disagree");

struct cc_agent_notice {
	cc_delivery		*d;		/* the delivery it is */
	enum cc_notice_kind	 kind;
	char			 nid[CC_UUID_LEN + 1];
	char			 at[TIME_TEXT_MAX + 1];
};

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
	struct cc_agent_notice	 notice;	/* CC_DELIVERY_NOTICE */
	char			*json;		/* compact, made on demand */
	char			*pretty;
};

/*
 * Takes ownership of m, also on failure.  The frame passed the schema, so
 * the fields it requires are there and a notice's kind is one we know.
 */
cc_delivery *
ccx_delivery_new(struct cc_msg *m)
{
	cc_delivery	*d;
	const char	*kind;
	size_t		 len;
	int		 k;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		proto_msg_destroy(&m);
		return NULL;
	}
	d->msg = m;
	switch (proto_op(m)) {
	case OP_RECEIPT:
		d->kind = CC_DELIVERY_RECEIPT;
		break;
	case OP_NOTICE:
		d->kind = CC_DELIVERY_NOTICE;
		break;
	default:
		d->kind = CC_DELIVERY_RECORD;
		break;
	}
	(void)proto_get_u64(m, "dseq", &d->dseq);
	switch (d->kind) {
	case CC_DELIVERY_RECORD:
		(void)proto_get_str(m, "mid", d->mid, sizeof(d->mid));
		(void)proto_get_str(m, "from", d->from, sizeof(d->from));
		(void)proto_get_str(m, "type", d->type, sizeof(d->type));
		break;
	case CC_DELIVERY_RECEIPT:
		(void)proto_get_str(m, "mid", d->mid, sizeof(d->mid));
		(void)proto_get_str(m, "agency", d->agency, sizeof(d->agency));
		(void)proto_get_str(m, "state", d->state, sizeof(d->state));
		(void)proto_get_str(m, "reason", d->reason, sizeof(d->reason));
		break;
	case CC_DELIVERY_NOTICE:
		d->notice.d = d;
		(void)proto_get_str(m, "nid", d->notice.nid,
		    sizeof(d->notice.nid));
		(void)proto_get_str(m, "at", d->notice.at,
		    sizeof(d->notice.at));
		if (proto_get_strn(m, "kind", &kind, &len) == 0 &&
		    (k = enum_find(&en_notice, kind, len)) >= 0)
			d->notice.kind = (enum cc_notice_kind)k;
		break;
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

const cc_notice *
cc_delivery_notice(const cc_delivery *d)
{
	return d->kind == CC_DELIVERY_NOTICE ? &d->notice : NULL;
}

enum cc_notice_kind
cc_notice_kind(const cc_notice *n)
{
	return n->kind;
}

const char *
cc_notice_kind_name(const cc_notice *n)
{
	const char	*s = cc_notice_name((enum cc_notice)n->kind);

	return s != NULL ? s : "";
}

const char *
cc_notice_nid(const cc_notice *n)
{
	return n->nid;
}

const char *
cc_notice_at(const cc_notice *n)
{
	return n->at;
}

/* The notice is part of its delivery, which keeps the text. */
const char *
cc_notice_json(const cc_notice *n, bool pretty)
{
	return cc_delivery_json(n->d, pretty);
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
