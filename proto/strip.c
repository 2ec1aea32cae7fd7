/*
 * strip.c - minimisation (DESIGN §5 rule 4): a recipient gets only the body
 * fields whose category it may see, and learns which categories it lost.
 *
 * A field's category comes from the schema alone; the sender cannot
 * relabel it.  Only top-level body fields carry one: a nested object goes
 * whole or not at all with the field that holds it.
 */
#include <string.h>

#include "cc_proto.h"
#include "schema.h"

static int	key_category(const struct schema *, const msgpack_object *);
static const struct schema *body_schema(const struct cc_msg *);

static const struct schema *
body_schema(const struct cc_msg *msg)
{
	int	rt = proto_rtype(msg);

	return rt < 0 ? NULL : schema_rtype[rt].body;
}

/* The category of a body key; -1 for a key the schema does not know. */
static int
key_category(const struct schema *s, const msgpack_object *key)
{
	const struct field	*f;

	if (key->type != MSGPACK_OBJECT_STR ||
	    (f = schema_find(s, key->via.str.ptr, key->via.str.size)) == NULL)
		return -1;
	return FIELD_CAT(f);
}

int
proto_field_category(enum cc_rtype rt, const char *name)
{
	const struct field	*f;

	if ((int)rt < 0 || rt >= RT__COUNT ||
	    (f = schema_find(schema_rtype[rt].body, name, strlen(name))) ==
	    NULL)
		return -1;
	return FIELD_CAT(f);
}

/*
 * A validated message knows every key; were one unknown (category -1) it
 * would be withheld rather than sent, since nothing permits it.
 */
int
proto_pack_stripped_body(msgpack_packer *pk, const struct cc_msg *msg,
    cc_catset allowed, cc_catset *withheld)
{
	const struct schema	*s = body_schema(msg);
	const msgpack_object	*body = proto_get(msg, "body");
	const msgpack_object_kv	*kv;
	uint32_t		 i, keep = 0;
	int			 cat, rc;

	*withheld = 0;
	if (s == NULL || body == NULL || body->type != MSGPACK_OBJECT_MAP)
		return -1;
	for (i = 0; i < body->via.map.size; i++) {
		cat = key_category(s, &body->via.map.ptr[i].key);
		if (cat >= 0 && (allowed & CATSET(cat)))
			keep++;
		else if (cat >= 0)
			*withheld |= CATSET(cat);
	}
	rc = msgpack_pack_map(pk, keep);
	for (i = 0; i < body->via.map.size && rc == 0; i++) {
		kv = &body->via.map.ptr[i];
		cat = key_category(s, &kv->key);
		if (cat < 0 || !(allowed & CATSET(cat)))
			continue;
		rc = msgpack_pack_object(pk, kv->key);
		if (rc == 0)
			rc = msgpack_pack_object(pk, kv->val);
	}
	return rc == 0 ? 0 : -1;
}

/* A subject is wholly cj-identifiers: all of it, or an empty map. */
int
proto_pack_stripped_subject(msgpack_packer *pk, const struct cc_msg *msg,
    cc_catset allowed, cc_catset *withheld)
{
	const msgpack_object	*subj = proto_get(msg, "subject");
	int			 rc;

	*withheld = 0;
	if (subj == NULL || subj->type != MSGPACK_OBJECT_MAP)
		return -1;
	if (allowed & CATSET(CAT_CJ_IDENTIFIERS))
		rc = msgpack_pack_object(pk, *subj);
	else {
		if (subj->via.map.size > 0)
			*withheld = CATSET(CAT_CJ_IDENTIFIERS);
		rc = msgpack_pack_map(pk, 0);
	}
	return rc == 0 ? 0 : -1;
}

cc_catset
proto_categories_present(const struct cc_msg *msg)
{
	const struct schema	*s = body_schema(msg);
	const msgpack_object	*body = proto_get(msg, "body");
	const msgpack_object	*subj = proto_get(msg, "subject");
	cc_catset		 set = 0;
	uint32_t		 i;
	int			 cat;

	if (subj != NULL && subj->type == MSGPACK_OBJECT_MAP &&
	    subj->via.map.size > 0)
		set |= CATSET(CAT_CJ_IDENTIFIERS);
	if (s == NULL || body == NULL || body->type != MSGPACK_OBJECT_MAP)
		return set;
	for (i = 0; i < body->via.map.size; i++)
		if ((cat = key_category(s, &body->via.map.ptr[i].key)) >= 0)
			set |= CATSET(cat);
	return set;
}
