/*
 * json.c - the records as JSON (DESIGN §8): the files agents read and
 * write hold an op's fields without `op` and `v`.
 *
 * JSON comes in by conversion to the msgpack frame the wire would carry
 * and then through proto_decode, so a file and a frame are judged by the
 * same code.  JSON integers become msgpack integers, reals become float64,
 * true and false booleans; going out, the reverse, so JSON -> msgpack ->
 * JSON gives back an equal document.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cc_proto.h"
#include "json.h"
#include "schema.h"

/* Deep enough for any record; a deeper generic object is not converted. */
#define JSON_OUT_DEPTH	64

enum pack_rc {
	PACK_OK,
	PACK_NOMEM,
	PACK_TOO_DEEP
};

static enum pack_rc	 pack_json(msgpack_packer *, json_t *, int);
static const char	*str_ptr(const msgpack_object *);
static json_t		*object_json(const msgpack_object *, int, bool);
static char		*dump(json_t *, bool);

static enum pack_rc
pack_json(msgpack_packer *pk, json_t *j, int depth)
{
	const char	*key;
	json_t		*val;
	size_t		 i;
	enum pack_rc	 rc;
	int		 e;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (depth + 1 > CC_MAX_DEPTH)
			return PACK_TOO_DEEP;
		break;
	default:
		break;
	}
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		if (msgpack_pack_map(pk, json_object_size(j)) != 0)
			return PACK_NOMEM;
		json_object_foreach(j, key, val) {
			if (msgpack_pack_str_with_body(pk, key,
			    strlen(key)) != 0)
				return PACK_NOMEM;
			if ((rc = pack_json(pk, val, depth + 1)) != PACK_OK)
				return rc;
		}
		return PACK_OK;
	case JSON_ARRAY:
		if (msgpack_pack_array(pk, json_array_size(j)) != 0)
			return PACK_NOMEM;
		json_array_foreach(j, i, val)
			if ((rc = pack_json(pk, val, depth + 1)) != PACK_OK)
				return rc;
		return PACK_OK;
	case JSON_STRING:
		e = msgpack_pack_str_with_body(pk, json_string_value(j),
		    json_string_length(j));
		break;
	case JSON_INTEGER:
		e = msgpack_pack_int64(pk, json_integer_value(j));
		break;
	case JSON_REAL:
		e = msgpack_pack_double(pk, json_real_value(j));
		break;
	case JSON_TRUE:
		e = msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		e = msgpack_pack_false(pk);
		break;
	default:
		e = msgpack_pack_nil(pk);
		break;
	}
	return e == 0 ? PACK_OK : PACK_NOMEM;
}

int
proto_from_json(enum cc_op op, const char *text, size_t len,
    struct cc_msg **out, struct cc_error *err)
{
	static const char *const header[] = { "v", "op" };
	msgpack_sbuffer	 sbuf;
	msgpack_packer	 pk;
	json_error_t	 jerr;
	json_t		*root = NULL, *val;
	const char	*name = cc_op_name(op), *key;
	enum pack_rc	 prc = PACK_OK;
	size_t		 i;
	int		 rc = -1;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	msgpack_sbuffer_init(&sbuf);
	if (name == NULL) {
		(void)cc_error_set(err, ERR_UNKNOWN_OP, "op", "no such op");
		goto fail;
	}
	(void)snprintf(err->re, sizeof(err->re), "%s", name);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		(void)cc_error_set(err, ERR_MALFORMED, NULL,
		    "JSON line %d column %d: %s", jerr.line, jerr.column,
		    jerr.text);
		goto fail;
	}
	if (!json_is_object(root)) {
		(void)cc_error_set(err, ERR_MALFORMED, NULL,
		    "a message is a JSON object");
		goto fail;
	}
	/* The file's folder or command says the op; the file may not. */
	for (i = 0; i < sizeof(header) / sizeof(header[0]); i++)
		if (json_object_get(root, header[i]) != NULL) {
			(void)cc_error_set(err, ERR_UNKNOWN_FIELD, header[i],
			    "a file holds the op's fields only");
			goto fail;
		}

	msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, json_object_size(root) + 2) != 0 ||
	    proto_pack_header(&pk, name) != 0)
		prc = PACK_NOMEM;
	json_object_foreach(root, key, val) {
		if (prc != PACK_OK)
			break;
		if (msgpack_pack_str_with_body(&pk, key, strlen(key)) != 0)
			prc = PACK_NOMEM;
		else
			prc = pack_json(&pk, val, 1);
	}
	if (prc != PACK_OK) {
		(void)cc_error_set(err, prc == PACK_NOMEM ? ERR_BUSY :
		    ERR_MALFORMED, NULL, "%s", prc == PACK_NOMEM ?
		    "out of memory" : "nested too deeply");
		goto fail;
	}
	rc = proto_decode(sbuf.data, sbuf.size, SIZE_MAX, out, err);
	if (rc == -1 && err->re[0] == '\0')
		(void)snprintf(err->re, sizeof(err->re), "%s", name);
fail:
	json_decref(root);
	msgpack_sbuffer_destroy(&sbuf);
	return rc;
}

/*
 * The bytes of a msgpack string.  msgpack-c leaves an empty string's
 * pointer NULL when no string came before it in the frame, and jansson
 * takes a NULL pointer for an error.
 */
static const char *
str_ptr(const msgpack_object *o)
{
	return o->via.str.ptr != NULL ? o->via.str.ptr : "";
}

/*
 * A msgpack value as a new JSON value, or NULL as proto_object_to_jansson
 * says.  `skip_header` leaves out the `v` and `op` of the top-level map.
 */
static json_t *
object_json(const msgpack_object *o, int depth, bool skip_header)
{
	const msgpack_object_kv	*kv;
	json_t			*j = NULL, *item;
	uint32_t		 i;

	if (depth > JSON_OUT_DEPTH)
		return NULL;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return NULL;
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return json_real(o->via.f64);	/* NULL if not finite */
	case MSGPACK_OBJECT_STR:
		return json_stringn(str_ptr(o), o->via.str.size);
	case MSGPACK_OBJECT_ARRAY:
		if ((j = json_array()) == NULL)
			return NULL;
		for (i = 0; i < o->via.array.size; i++) {
			item = object_json(&o->via.array.ptr[i], depth + 1,
			    false);
			/* A failed append has freed item. */
			if (item == NULL ||
			    json_array_append_new(j, item) != 0)
				goto fail;
		}
		return j;
	case MSGPACK_OBJECT_MAP:
		if ((j = json_object()) == NULL)
			return NULL;
		for (i = 0; i < o->via.map.size; i++) {
			kv = &o->via.map.ptr[i];
			if (kv->key.type != MSGPACK_OBJECT_STR)
				goto fail;
			if (skip_header && (str_is(&kv->key, "v") ||
			    str_is(&kv->key, "op")))
				continue;
			/* A repeated key would quietly replace the first. */
			if (json_object_getn(j, str_ptr(&kv->key),
			    kv->key.via.str.size) != NULL)
				goto fail;
			item = object_json(&kv->val, depth + 1, false);
			if (item == NULL || json_object_setn_new(j,
			    str_ptr(&kv->key), kv->key.via.str.size, item) != 0)
				goto fail;
		}
		return j;
	default:
		return NULL;		/* bin, ext */
	}
fail:
	json_decref(j);
	return NULL;
}

/* Takes ownership of j. */
static char *
dump(json_t *j, bool pretty)
{
	char	*s;

	if (j == NULL)
		return NULL;
	s = json_dumps(j, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER |
	    (pretty ? JSON_INDENT(2) : JSON_COMPACT));
	json_decref(j);
	return s;
}

char *
proto_to_json(const struct cc_msg *msg, bool pretty)
{
	return dump(object_json(&msg->up.data, 0, true), pretty);
}

json_t *
proto_object_to_jansson(const msgpack_object *o)
{
	return object_json(o, 0, false);
}

char *
proto_object_to_json(const msgpack_object *o, bool pretty)
{
	return dump(proto_object_to_jansson(o), pretty);
}
