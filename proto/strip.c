/*
 * strip.c - minimisation (DESIGN §5 rule 4): a recipient gets only the body
 * and subject fields whose category it may see, and learns which
 * categories it lost.
 *
 * A field's category comes from the schema alone; the sender cannot
 * relabel it.  Only the top-level fields of a body and of a subject carry
 * one: a nested object goes whole or not at all with the field that holds
 * it.  Body and subject are stripped by the same walk over their tables.
 */
#include <string.h>

#include "cc_proto.h"
#include "schema.h"

static int	key_category(const struct schema *, const msgpack_object *);
static const struct schema *body_schema(const struct cc_msg *);
static const struct schema *subject_schema(enum cc_op);
static int	pack_stripped(msgpack_packer *, const struct schema *,
		    const msgpack_object *, cc_catset, cc_catset *);
static cc_catset present(const struct schema *, const msgpack_object *);

static const struct schema *
body_schema(const struct cc_msg *msg)
{
	int	rt = proto_rtype(msg);

	return rt < 0 ? NULL : schema_rtype[rt].body;
}

/* The table of an op's `subject`, or NULL when the op has none. */
static const struct schema *
subject_schema(enum cc_op op)
{
	const struct field	*f;

	if ((int)op < 0 || op >= OP__COUNT ||
	    (f = schema_find(schema_op[op], "subject", strlen("subject"))) ==
	    NULL || f->type != FT_OBJECT)
		return NULL;
	return f->sub;
}

/* The category of a key of a map; -1 for a key the schema does not know. */
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

int
proto_subject_category(const char *name)
{
	const struct schema	*s = subject_schema(OP_PUBLISH);
	const struct field	*f;

	if (s == NULL || (f = schema_find(s, name, strlen(name))) == NULL)
		return -1;
	return FIELD_CAT(f);
}

/*
 * Pack a map keeping the keys whose category is allowed.  A validated
 * message knows every key; were one unknown (category -1) it would be
 * withheld rather than sent, since nothing permits it.
 */
static int
pack_stripped(msgpack_packer *pk, const struct schema *s,
    const msgpack_object *map, cc_catset allowed, cc_catset *withheld)
{
	const msgpack_object_kv	*kv;
	uint32_t		 i, keep = 0;
	int			 cat, rc;

	*withheld = 0;
	if (s == NULL || map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return -1;
	for (i = 0; i < map->via.map.size; i++) {
		cat = key_category(s, &map->via.map.ptr[i].key);
		if (cat >= 0 && (allowed & CATSET(cat)))
			keep++;
		else if (cat >= 0)
			*withheld |= CATSET(cat);
	}
	rc = msgpack_pack_map(pk, keep);
	for (i = 0; i < map->via.map.size && rc == 0; i++) {
		kv = &map->via.map.ptr[i];
		cat = key_category(s, &kv->key);
		if (cat < 0 || !(allowed & CATSET(cat)))
			continue;
		rc = msgpack_pack_object(pk, kv->key);
		if (rc == 0)
			rc = msgpack_pack_object(pk, kv->val);
	}
	return rc == 0 ? 0 : -1;
}

int
proto_pack_stripped_body(msgpack_packer *pk, const struct cc_msg *msg,
    cc_catset allowed, cc_catset *withheld)
{
	return pack_stripped(pk, body_schema(msg), proto_get(msg, "body"),
	    allowed, withheld);
}

int
proto_pack_stripped_subject(msgpack_packer *pk, const struct cc_msg *msg,
    cc_catset allowed, cc_catset *withheld)
{
	return pack_stripped(pk, subject_schema(msg->op),
	    proto_get(msg, "subject"), allowed, withheld);
}

/* The categories of the keys of a map that the schema knows. */
static cc_catset
present(const struct schema *s, const msgpack_object *map)
{
	cc_catset	set = 0;
	uint32_t	i;
	int		cat;

	if (s == NULL || map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return 0;
	for (i = 0; i < map->via.map.size; i++)
		if ((cat = key_category(s, &map->via.map.ptr[i].key)) >= 0)
			set |= CATSET(cat);
	return set;
}

cc_catset
proto_categories_present(const struct cc_msg *msg)
{
	return present(subject_schema(msg->op), proto_get(msg, "subject")) |
	    present(body_schema(msg), proto_get(msg, "body"));
}
