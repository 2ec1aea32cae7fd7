/*
 * codec.c - msgpack frames in and out: decode, encode, getters, packers.
 *
 * A frame comes from a peer we authenticated but do not trust.  Before
 * msgpack-c builds a tree we walk the bytes ourselves (scan()), so that
 * nesting is bounded by CC_MAX_DEPTH, every map key is a string and no
 * array or map claims more items than the bytes left could hold: msgpack-c
 * allocates a container's items up front from the count it is given, and a
 * 5-byte frame claiming four billion items must not reach it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc_proto.h"
#include "schema.h"

enum scan_rc {
	SCAN_OK,
	SCAN_TRUNCATED,
	SCAN_RESERVED,
	SCAN_TOO_DEEP,
	SCAN_KEY
};

static const char *const scan_detail[] = {
	[SCAN_TRUNCATED] = "truncated frame",
	[SCAN_RESERVED] = "reserved msgpack byte",
	[SCAN_TOO_DEEP] = "nested too deeply",
	[SCAN_KEY] = "a map key is not a string",
};

static enum scan_rc	scan(const uint8_t *, size_t, size_t *, int);
static enum scan_rc	be_uint(const uint8_t *, size_t, size_t *, size_t,
			    uint64_t *);
static bool		is_str_byte(uint8_t);
static int		unique_keys(const msgpack_object *);
static int		current_year(void);
static int		pack_kv(msgpack_packer *, const char *, const char *);
static int		pack_record(msgpack_packer *, const msgpack_object *,
			    bool);
static int		kv_cmp(const void *, const void *);

/* Read an n-byte big-endian length or count. */
static enum scan_rc
be_uint(const uint8_t *p, size_t len, size_t *off, size_t n, uint64_t *out)
{
	size_t	i;

	if (len - *off < n)
		return SCAN_TRUNCATED;
	*out = 0;
	for (i = 0; i < n; i++)
		*out = (*out << 8) | p[(*off)++];
	return SCAN_OK;
}

static bool
is_str_byte(uint8_t b)
{
	return (b >= 0xa0 && b <= 0xbf) || b == 0xd9 || b == 0xda ||
	    b == 0xdb;
}

/*
 * Check one msgpack value starting at *off and move past it.  `depth` is
 * the number of containers around it.
 */
static enum scan_rc
scan(const uint8_t *p, size_t len, size_t *off, int depth)
{
	/* Payload bytes of the fixed-size types 0xc0..0xdf; -1: special. */
	static const int8_t fixed[32] = {
		0, -1, 0, 0, -1, -1, -1, -1, -1, -1, 4, 8, 1, 2, 4, 8,
		1, 2, 4, 8, 2, 3, 5, 9, 17, -1, -1, -1, -1, -1, -1, -1
	};
	/* Size of the length field of bin, ext, str, array and map forms. */
	static const uint8_t lenbytes[32] = {
		0, 0, 0, 0, 1, 2, 4, 1, 2, 4, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 2, 4, 2, 4
	};
	enum scan_rc	rc;
	uint64_t	n = 0, i;
	uint8_t		b;
	bool		map = false;

	if (*off >= len)
		return SCAN_TRUNCATED;
	b = p[(*off)++];
	if (b <= 0x7f || b >= 0xe0)
		return SCAN_OK;				/* fixint */
	if (b >= 0xa0 && b <= 0xbf)
		n = b & 0x1f;				/* fixstr */
	else if (b <= 0x9f) {
		n = b & 0x0f;			/* fixmap, fixarray */
		map = b <= 0x8f;
		goto container;
	} else if (b == 0xc1)
		return SCAN_RESERVED;
	else if (fixed[b - 0xc0] >= 0)
		n = (uint64_t)fixed[b - 0xc0];
	else {
		rc = be_uint(p, len, off, lenbytes[b - 0xc0], &n);
		if (rc != SCAN_OK)
			return rc;
		if (b >= 0xdc) {			/* array, map 16/32 */
			map = b >= 0xde;
			goto container;
		}
		if (b >= 0xc7 && b <= 0xc9)		/* ext: type byte */
			n++;
	}
	if (len - *off < n)
		return SCAN_TRUNCATED;
	*off += n;
	return SCAN_OK;

container:
	if (depth + 1 > CC_MAX_DEPTH)
		return SCAN_TOO_DEEP;
	/* Every item takes at least one byte. */
	if (n > (len - *off) / (map ? 2 : 1))
		return SCAN_TRUNCATED;
	for (i = 0; i < n; i++) {
		if (map) {
			if (*off >= len)
				return SCAN_TRUNCATED;
			if (!is_str_byte(p[*off]))
				return SCAN_KEY;
			if ((rc = scan(p, len, off, depth + 1)) != SCAN_OK)
				return rc;
		}
		if ((rc = scan(p, len, off, depth + 1)) != SCAN_OK)
			return rc;
	}
	return SCAN_OK;
}

/* 0 when no map in the tree repeats a key, 1 when one does, -1 on ENOMEM. */
static int
unique_keys(const msgpack_object *o)
{
	uint32_t	i;
	int		rc;

	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (i = 0; i < o->via.array.size; i++)
			if ((rc = unique_keys(&o->via.array.ptr[i])) != 0)
				return rc;
	} else if (o->type == MSGPACK_OBJECT_MAP) {
		if ((rc = dup_index(o, true)) == -2)
			return -1;
		if (rc >= 0)
			return 1;
		for (i = 0; i < o->via.map.size; i++)
			if ((rc = unique_keys(&o->via.map.ptr[i].val)) != 0)
				return rc;
	}
	return 0;
}

static int
current_year(void)
{
	struct tm	tm;
	time_t		now = time(NULL);

	if (gmtime_r(&now, &tm) == NULL)
		return 2000;
	return tm.tm_year + 1900;
}

int
proto_decode(const void *buf, size_t len, size_t max, struct cc_msg **out,
    struct cc_error *err)
{
	struct cc_msg	*msg = NULL;
	enum scan_rc	 rc = SCAN_OK;
	size_t		 off = 0;
	int		 dup;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (len > max) {
		(void)cc_error_set(err, ERR_TOO_LARGE, NULL,
		    "frame of %zu bytes, limit %zu", len, max);
		goto fail;
	}
	if (len == 0 || (rc = scan(buf, len, &off, 0)) != SCAN_OK ||
	    off != len) {
		(void)cc_error_set(err, ERR_MALFORMED, NULL, "%s",
		    len == 0 ? "empty frame" : off != len && rc == SCAN_OK ?
		    "bytes after the message" : scan_detail[rc]);
		goto fail;
	}

	if ((msg = calloc(1, sizeof(*msg))) == NULL ||
	    (msg->frame = malloc(len)) == NULL) {
		(void)cc_error_set(err, ERR_BUSY, NULL, "out of memory");
		goto fail;
	}
	memcpy(msg->frame, buf, len);
	msg->len = len;
	msgpack_unpacked_init(&msg->up);
	off = 0;
	if (msgpack_unpack_next(&msg->up, msg->frame, len, &off) !=
	    MSGPACK_UNPACK_SUCCESS || off != len || msg->up.zone == NULL) {
		(void)cc_error_set(err, ERR_MALFORMED, NULL, "not msgpack");
		goto fail;
	}
	if ((dup = unique_keys(&msg->up.data)) != 0) {
		(void)cc_error_set(err, dup < 0 ? ERR_BUSY : ERR_MALFORMED,
		    NULL, dup < 0 ? "out of memory" : "a map repeats a key");
		goto fail;
	}
	if (validate_message(&msg->up.data, msg->up.zone, current_year(),
	    &msg->op, err) == -1)
		goto fail;
	*out = msg;
	return 0;

fail:
	proto_msg_destroy(&msg);
	return -1;
}

/* Re-encoding gives the tree our own copy and exactly decode's checks. */
int
proto_decode_object(const msgpack_object *o, struct cc_msg **out,
    struct cc_error *err)
{
	msgpack_sbuffer	sbuf;
	msgpack_packer	pk;
	int		rc = -1;

	*out = NULL;
	msgpack_sbuffer_init(&sbuf);
	msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
	if (msgpack_pack_object(&pk, *o) != 0) {
		memset(err, 0, sizeof(*err));
		(void)cc_error_set(err, ERR_BUSY, NULL, "out of memory");
		goto fail;
	}
	rc = proto_decode(sbuf.data, sbuf.size, SIZE_MAX, out, err);
fail:
	msgpack_sbuffer_destroy(&sbuf);
	return rc;
}

void
proto_msg_destroy(struct cc_msg **msgp)
{
	struct cc_msg	*msg = *msgp;

	if (msg == NULL)
		return;
	msgpack_unpacked_destroy(&msg->up);
	free(msg->frame);
	free(msg);
	*msgp = NULL;
}

int
proto_encode(const struct cc_msg *msg, msgpack_sbuffer *sbuf)
{
	msgpack_packer	pk;

	msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
	return msgpack_pack_object(&pk, msg->up.data) == 0 ? 0 : -1;
}

/* Map entries by key, bytewise, a prefix first (keys are strings). */
static int
kv_cmp(const void *a, const void *b)
{
	const msgpack_object_str *x = &(*(const msgpack_object_kv *const *)
	    a)->key.via.str;
	const msgpack_object_str *y = &(*(const msgpack_object_kv *const *)
	    b)->key.via.str;
	int	c;

	c = memcmp(x->ptr, y->ptr, x->size < y->size ? x->size : y->size);
	if (c != 0)
		return c;
	return x->size < y->size ? -1 : x->size > y->size;
}

#define RECORD_STACK	32	/* entries sorted without allocating */

/*
 * One value of a record (proto_encode_record); `top` leaves out the
 * fields that are not the record.  Validation bounded the nesting.
 */
static int
pack_record(msgpack_packer *pk, const msgpack_object *o, bool top)
{
	static const char *const skip[] = { "v", "op", "mid", "created" };
	const msgpack_object_kv	*stack[RECORD_STACK], **kv = stack;
	const msgpack_object_str *k;
	uint32_t		 i, j, n = 0;
	int			 rc = -1;

	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return msgpack_pack_double(pk, o->via.f64) == 0 ? 0 : -1;
	case MSGPACK_OBJECT_ARRAY:
		if (msgpack_pack_array(pk, o->via.array.size) != 0)
			return -1;
		for (i = 0; i < o->via.array.size; i++)
			if (pack_record(pk, &o->via.array.ptr[i], false) != 0)
				return -1;
		return 0;
	case MSGPACK_OBJECT_MAP:
		break;
	default:
		return msgpack_pack_object(pk, *o) == 0 ? 0 : -1;
	}
	if (o->via.map.size > RECORD_STACK &&
	    (kv = calloc(o->via.map.size, sizeof(*kv))) == NULL)
		return -1;
	for (i = 0; i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key.via.str;
		for (j = 0; top && j < sizeof(skip) / sizeof(skip[0]); j++)
			if (k->size == strlen(skip[j]) &&
			    memcmp(k->ptr, skip[j], k->size) == 0)
				break;
		if (!top || j == sizeof(skip) / sizeof(skip[0]))
			kv[n++] = &o->via.map.ptr[i];
	}
	qsort(kv, n, sizeof(*kv), kv_cmp);
	if (msgpack_pack_map(pk, n) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if (msgpack_pack_object(pk, kv[i]->key) != 0 ||
		    pack_record(pk, &kv[i]->val, false) != 0)
			goto out;
	rc = 0;
out:
	if (kv != stack)
		free(kv);
	return rc;
}

int
proto_encode_record(const struct cc_msg *msg, msgpack_sbuffer *sbuf)
{
	msgpack_packer	pk;

	if (msg->op != OP_PUBLISH || msg->up.data.type != MSGPACK_OBJECT_MAP)
		return -1;
	msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
	return pack_record(&pk, &msg->up.data, true);
}

enum cc_op
proto_op(const struct cc_msg *msg)
{
	return msg->op;
}

const msgpack_object *
proto_get(const struct cc_msg *msg, const char *name)
{
	return map_get(&msg->up.data, name);
}

int
proto_get_strn(const struct cc_msg *msg, const char *name, const char **p,
    size_t *len)
{
	const msgpack_object	*o = proto_get(msg, name);

	if (o == NULL || o->type != MSGPACK_OBJECT_STR)
		return -1;
	*p = o->via.str.ptr;
	*len = o->via.str.size;
	return 0;
}

int
proto_get_str(const struct cc_msg *msg, const char *name, char *buf,
    size_t size)
{
	const char	*p;
	size_t		 len;

	if (size == 0 || proto_get_strn(msg, name, &p, &len) == -1)
		return -1;
	if (len > size - 1)
		len = size - 1;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 0;
}

int
proto_get_bool(const struct cc_msg *msg, const char *name, bool *out)
{
	const msgpack_object	*o = proto_get(msg, name);

	if (o == NULL || o->type != MSGPACK_OBJECT_BOOLEAN)
		return -1;
	*out = o->via.boolean;
	return 0;
}

int
proto_get_u64(const struct cc_msg *msg, const char *name, uint64_t *out)
{
	const msgpack_object	*o = proto_get(msg, name);

	if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*out = o->via.u64;
	return 0;
}

/* The schema says which fields are times; validation has parsed them. */
int
proto_get_time(const struct cc_msg *msg, const char *name, int64_t *ms)
{
	const struct field	*f;
	const char		*p;
	size_t			 len;

	f = schema_find(schema_op[msg->op], name, strlen(name));
	if (f == NULL || f->type != FT_TIME || (f->flags & F_LIST) ||
	    proto_get_strn(msg, name, &p, &len) == -1)
		return -1;
	return cc_time_parse(p, len, ms);
}

int
proto_subject(const struct cc_msg *msg, struct cc_subject *out)
{
	const msgpack_object	*subj = proto_get(msg, "subject"), *o;
	struct {
		const char	*name;
		char		*buf;
		size_t		 size;
	} ids[] = {
		{ "pnc", out->pnc, sizeof(out->pnc) },
		{ "noms", out->noms, sizeof(out->noms) },
		{ "crn", out->crn, sizeof(out->crn) },
	};
	size_t			 i;

	memset(out, 0, sizeof(*out));
	if (subj == NULL || subj->type != MSGPACK_OBJECT_MAP)
		return -1;
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		o = map_get(subj, ids[i].name);
		if (o != NULL && o->type == MSGPACK_OBJECT_STR &&
		    o->via.str.size < ids[i].size)
			memcpy(ids[i].buf, o->via.str.ptr, o->via.str.size);
	}
	return 0;
}

cc_catset
proto_catset(const msgpack_object *list)
{
	cc_catset	set = 0;
	uint32_t	i;
	int		c;

	if (list == NULL || list->type != MSGPACK_OBJECT_ARRAY)
		return 0;
	for (i = 0; i < list->via.array.size; i++) {
		const msgpack_object *o = &list->via.array.ptr[i];

		if (o->type == MSGPACK_OBJECT_STR &&
		    (c = cc_cat_parse(o->via.str.ptr, o->via.str.size)) >= 0)
			set |= CATSET(c);
	}
	return set;
}

int
proto_rtype(const struct cc_msg *msg)
{
	const char	*p;
	size_t		 len;

	if (proto_get_strn(msg, "type", &p, &len) == -1)
		return -1;
	return cc_rtype_parse(p, len);
}

int
proto_pack_strn(msgpack_packer *pk, const char *s, size_t len)
{
	return msgpack_pack_str_with_body(pk, s, len) == 0 ? 0 : -1;
}

int
proto_pack_cstr(msgpack_packer *pk, const char *s)
{
	return proto_pack_strn(pk, s, strlen(s));
}

int
proto_pack_catset(msgpack_packer *pk, cc_catset set)
{
	int	c, n = 0, rc;

	for (c = 0; c < CAT__COUNT; c++)
		n += (set & CATSET(c)) != 0;
	rc = msgpack_pack_array(pk, (size_t)n);
	for (c = 0; c < CAT__COUNT; c++)
		if (set & CATSET(c))
			rc |= proto_pack_cstr(pk, cc_cat_name((enum cc_cat)c));
	return rc == 0 ? 0 : -1;
}

int
proto_pack_header(msgpack_packer *pk, const char *op)
{
	return msgpack_pack_str_with_body(pk, "v", 1) == 0 &&
	    msgpack_pack_uint8(pk, CC_PROTO_VERSION) == 0 &&
	    msgpack_pack_str_with_body(pk, "op", 2) == 0 &&
	    proto_pack_cstr(pk, op) == 0 ? 0 : -1;
}

static int
pack_kv(msgpack_packer *pk, const char *key, const char *val)
{
	return msgpack_pack_str_with_body(pk, key, strlen(key)) |
	    msgpack_pack_str_with_body(pk, val, strlen(val));
}

/* Empty re, field and detail are left out rather than sent empty. */
int
proto_pack_error(msgpack_sbuffer *sbuf, const struct cc_error *err)
{
	msgpack_packer	 pk;
	const char	*code = cc_err_name(err->code);
	size_t		 n = 3;
	int		 rc;

	if (code == NULL || err->code == CC_OK)
		code = "malformed";
	n += err->re[0] != '\0';
	n += err->field[0] != '\0';
	n += err->detail[0] != '\0';
	msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
	rc = msgpack_pack_map(&pk, n);
	rc |= proto_pack_header(&pk, "error");
	if (err->re[0] != '\0')
		rc |= pack_kv(&pk, "re", err->re);
	rc |= pack_kv(&pk, "code", code);
	if (err->field[0] != '\0')
		rc |= pack_kv(&pk, "field", err->field);
	if (err->detail[0] != '\0')
		rc |= pack_kv(&pk, "detail", err->detail);
	return rc == 0 ? 0 : -1;
}
