/*
 * validate.c - walk the schema over a decoded msgpack tree.
 *
 * The order of checks is fixed so that every refusal names the same field
 * whoever sends it: `v`, then `op`, then for each map first any key the
 * schema does not know (in the message's order), then the schema's fields
 * in table order (missing, then invalid), then the map's cross-field rule.
 * The first refusal wins.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_proto.h"
#include "schema.h"

#define DUP_STACK	32	/* items compared without allocating */

struct vctx {
	struct cc_error	*err;
	msgpack_zone	*zone;		/* home of rewritten strings */
	int		 this_year;	/* century of 2-digit PNC years */
	int		 stripped;	/* >0 inside a stripped object */
	size_t		 plen;
	char		 path[sizeof(((struct cc_error *)0)->field)];
};

struct strref {
	const char	*p;
	uint32_t	 n;
	uint32_t	 i;		/* position in the list or map */
};

static size_t	push(struct vctx *, const char *, size_t);
static size_t	push_index(struct vctx *, size_t);
static void	pop(struct vctx *, size_t);
static int	fail_here(struct vctx *, enum cc_err, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	check_map(struct vctx *, const struct schema *,
		    msgpack_object *);
static int	check_field(struct vctx *, const struct field *,
		    msgpack_object *, const msgpack_object *);
static int	check_value(struct vctx *, const struct field *,
		    msgpack_object *, const msgpack_object *);
static int	check_scalar(struct vctx *, const struct field *,
		    msgpack_object *);
static int	check_number(struct vctx *, const struct field *,
		    const msgpack_object *);
static int	rewrite(struct vctx *, msgpack_object *, const char *,
		    size_t);
static long	text_chars(const char *, size_t);
static int	cmp_strref(const void *, const void *);
static void	fill_re(struct cc_error *, const msgpack_object *);

/*
 * Extend the path by one segment and return the length to restore.  Bytes
 * outside printable ASCII become '?': the path goes back to the peer and
 * into logs, and an unknown key may hold anything.
 */
static size_t
push(struct vctx *v, const char *name, size_t len)
{
	size_t	saved = v->plen, i;

	if (v->plen > 0 && v->plen < sizeof(v->path) - 1)
		v->path[v->plen++] = '.';
	for (i = 0; i < len && v->plen < sizeof(v->path) - 1; i++)
		v->path[v->plen++] = (name[i] >= 0x20 && name[i] < 0x7f) ?
		    name[i] : '?';
	v->path[v->plen] = '\0';
	return saved;
}

static size_t
push_index(struct vctx *v, size_t i)
{
	char	num[24];
	int	n;

	n = snprintf(num, sizeof(num), "%zu", i);
	return push(v, num, (size_t)n);
}

static void
pop(struct vctx *v, size_t saved)
{
	v->plen = saved;
	v->path[saved] = '\0';
}

static int
fail_here(struct vctx *v, enum cc_err code, const char *fmt, ...)
{
	va_list	ap;

	(void)cc_error_set(v->err, code, v->path, NULL);
	va_start(ap, fmt);
	(void)vsnprintf(v->err->detail, sizeof(v->err->detail), fmt, ap);
	va_end(ap);
	return -1;
}

int
vctx_fail(struct vctx *v, enum cc_err code, const char *field,
    const char *fmt, ...)
{
	va_list	ap;
	size_t	saved = v->plen;

	if (field != NULL)
		(void)push(v, field, strlen(field));
	(void)cc_error_set(v->err, code, v->path, NULL);
	va_start(ap, fmt);
	(void)vsnprintf(v->err->detail, sizeof(v->err->detail), fmt, ap);
	va_end(ap);
	pop(v, saved);
	return -1;
}

bool
vctx_stripped(const struct vctx *v)
{
	return v->stripped > 0;
}

msgpack_object *
map_get(const msgpack_object *map, const char *key)
{
	size_t			 len = strlen(key);
	uint32_t		 i;
	msgpack_object_kv	*kv;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (i = 0; i < map->via.map.size; i++) {
		kv = &map->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == len &&
		    memcmp(kv->key.via.str.ptr, key, len) == 0)
			return &kv->val;
	}
	return NULL;
}

bool
str_is(const msgpack_object *o, const char *s)
{
	return o != NULL && o->type == MSGPACK_OBJECT_STR &&
	    o->via.str.size == strlen(s) &&
	    memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/*
 * Characters in a UTF-8 text, or -1 when it is not well-formed UTF-8 (no
 * overlong forms, surrogates or values past U+10FFFF) or holds a control
 * character other than tab and line breaks, which no record needs.
 */
static long
text_chars(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, k, more;
	uint32_t		 c, min;
	long			 n = 0;

	while (i < len) {
		c = p[i++];
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
			    c == 0x7f)
				return -1;
			n++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1; c &= 0x1f; min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2; c &= 0x0f; min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3; c &= 0x07; min = 0x10000;
		} else
			return -1;
		if (len - i < more)
			return -1;
		for (k = 0; k < more; k++) {
			if ((p[i] & 0xc0) != 0x80)
				return -1;
			c = (c << 6) | (p[i++] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return -1;
		n++;
	}
	return n;
}

static int
cmp_strref(const void *a, const void *b)
{
	const struct strref	*x = a, *y = b;
	size_t			 n = x->n < y->n ? x->n : y->n;
	int			 c;

	if ((c = memcmp(x->p, y->p, n)) != 0)
		return c;
	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return x->i < y->i ? -1 : (x->i > y->i);
}

/*
 * The position of the first item that repeats an earlier one among the
 * strings of a list (keys of a map when `map`), -1 when none, -2 when out
 * of memory.  Sorting keeps a long list from costing quadratic time.
 */
int
dup_index(const msgpack_object *o, bool map)
{
	struct strref	 stack[DUP_STACK], *refs = stack;
	uint32_t	 n, i;
	int		 found = -1;

	n = map ? o->via.map.size : o->via.array.size;
	if (n < 2)
		return -1;
	if (n > DUP_STACK && (refs = calloc(n, sizeof(*refs))) == NULL)
		return -2;
	for (i = 0; i < n; i++) {
		const msgpack_object *s = map ? &o->via.map.ptr[i].key :
		    &o->via.array.ptr[i];

		/*
		 * msgpack-c leaves an empty string's pointer NULL when no
		 * string came before it, and memcmp(NULL, .., 0) is undefined.
		 */
		refs[i].p = s->via.str.ptr != NULL ? s->via.str.ptr : "";
		refs[i].n = s->via.str.size;
		refs[i].i = i;
	}
	qsort(refs, n, sizeof(*refs), cmp_strref);
	for (i = 1; i < n; i++)
		if (refs[i].n == refs[i - 1].n &&
		    memcmp(refs[i].p, refs[i - 1].p, refs[i].n) == 0 &&
		    (found < 0 || refs[i].i < (uint32_t)found))
			found = (int)refs[i].i;
	if (refs != stack)
		free(refs);
	return found;
}

/* Replace a string value by its canonical form, copied into the zone. */
static int
rewrite(struct vctx *v, msgpack_object *o, const char *s, size_t len)
{
	char	*p;

	if (o->via.str.size == len && memcmp(o->via.str.ptr, s, len) == 0)
		return 0;
	if ((p = msgpack_zone_malloc(v->zone, len)) == NULL)
		return fail_here(v, ERR_BUSY, "out of memory");
	memcpy(p, s, len);
	o->via.str.ptr = p;
	o->via.str.size = (uint32_t)len;
	return 0;
}

static int
check_number(struct vctx *v, const struct field *f, const msgpack_object *o)
{
	bool	ok;

	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		ok = f->max >= 0 && o->via.u64 <= (uint64_t)f->max &&
		    (f->min <= 0 || o->via.u64 >= (uint64_t)f->min);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		ok = o->via.i64 >= f->min && o->via.i64 <= f->max;
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		ok = f->type == FT_NUMBER && isfinite(o->via.f64) &&
		    o->via.f64 >= (double)f->min &&
		    o->via.f64 <= (double)f->max;
		break;
	default:
		ok = false;
		break;
	}
	if (!ok)
		return fail_here(v, ERR_INVALID_FIELD,
		    "must be %s from %lld to %lld",
		    f->type == FT_INT ? "an integer" : "a number",
		    (long long)f->min, (long long)f->max);
	return 0;
}

/* A value that is a single string of some kind. */
static int
check_scalar(struct vctx *v, const struct field *f, msgpack_object *o)
{
	const char	*s = o->via.str.ptr;
	size_t		 n = o->via.str.size, i;
	struct cc_tm	 tm;
	char		 canon[CC_UUID_LEN + 1];
	long		 chars;

	if (o->type != MSGPACK_OBJECT_STR)
		return fail_here(v, ERR_INVALID_FIELD, "must be a string");
	switch (f->type) {
	case FT_TEXT:
		chars = text_chars(s, n);
		if (chars < 0)
			return fail_here(v, ERR_INVALID_FIELD,
			    "not UTF-8 text without control characters");
		if (chars < f->min || chars > f->max)
			return fail_here(v, ERR_INVALID_FIELD,
			    "must be %lld to %lld characters",
			    (long long)f->min, (long long)f->max);
		return 0;
	case FT_DATE:
		if (date_parse(s, n, &tm) == -1)
			return fail_here(v, ERR_INVALID_FIELD,
			    "not a date YYYY-MM-DD");
		return 0;
	case FT_TIME:
		if (time_parse(s, n, &tm) == -1)
			return fail_here(v, ERR_INVALID_FIELD,
			    "not an RFC 3339 UTC time");
		return 0;
	case FT_DATE_OR_TIME:
		if (date_parse(s, n, &tm) == -1 && time_parse(s, n, &tm) == -1)
			return fail_here(v, ERR_INVALID_FIELD,
			    "not a date or an RFC 3339 UTC time");
		return 0;
	case FT_ENUM:
		if (enum_find(f->en, s, n) < 0)
			return fail_here(v, ERR_INVALID_FIELD,
			    "not one of the allowed values");
		return 0;
	case FT_UUID:
		if (!cc_uuid_valid(s, n))
			return fail_here(v, ERR_INVALID_FIELD, "not a UUID");
		for (i = 0; i < n; i++)
			canon[i] = (s[i] >= 'A' && s[i] <= 'F') ?
			    (char)(s[i] - 'A' + 'a') : s[i];
		return rewrite(v, o, canon, n);
	case FT_AGENCY:
		if (!cc_agency_id_valid(s, n))
			return fail_here(v, ERR_INVALID_FIELD,
			    "not an agency id");
		return 0;
	case FT_ONS:
		if (!cc_area_valid(s, n))
			return fail_here(v, ERR_INVALID_FIELD,
			    "not an ONS area code");
		return 0;
	case FT_NOMIS:
		if (!ident_nomis_valid(s, n))
			return fail_here(v, ERR_INVALID_FIELD,
			    "not a NOMIS establishment code");
		return 0;
	case FT_SHA256:
		if (!ident_sha256_valid(s, n))
			return fail_here(v, ERR_INVALID_FIELD,
			    "not a SHA-256 in hex");
		return 0;
	case FT_PNC:
		if (cc_pnc_canonical(s, n, v->this_year, canon) == -1)
			return fail_here(v, ERR_INVALID_FIELD,
			    "not a PNC number with a correct check letter");
		return rewrite(v, o, canon, strlen(canon));
	case FT_NOMS:
		if (!cc_noms_valid(s, n))
			return fail_here(v, ERR_INVALID_FIELD,
			    "not a NOMS number");
		return 0;
	case FT_CRN:
		if (!cc_crn_valid(s, n))
			return fail_here(v, ERR_INVALID_FIELD, "not a CRN");
		return 0;
	default:
		return fail_here(v, ERR_INVALID_FIELD, "unexpected value");
	}
}

/* One value of the field's type (an item, when the field is a list). */
static int
check_value(struct vctx *v, const struct field *f, msgpack_object *o,
    const msgpack_object *parent)
{
	const struct schema	*sub = f->sub;
	const msgpack_object	*type;
	int			 rt, rc;

	switch (f->type) {
	case FT_HEADER:
		return 0;
	case FT_BOOL:
		if (o->type != MSGPACK_OBJECT_BOOLEAN)
			return fail_here(v, ERR_INVALID_FIELD,
			    "must be true or false");
		return 0;
	case FT_INT:
	case FT_NUMBER:
		return check_number(v, f, o);
	case FT_BODY:
		/* `type` comes before `body` in the table and has passed. */
		type = map_get(parent, "type");
		rt = type == NULL ? -1 :
		    cc_rtype_parse(type->via.str.ptr, type->via.str.size);
		if (rt < 0)
			return fail_here(v, ERR_INVALID_FIELD,
			    "no record type to check the body against");
		sub = schema_rtype[rt].body;
		/* FALLTHROUGH */
	case FT_OBJECT:
		if (o->type != MSGPACK_OBJECT_MAP)
			return fail_here(v, ERR_INVALID_FIELD,
			    "must be an object");
		if (f->flags & F_STRIPPED)
			v->stripped++;
		rc = check_map(v, sub, o);
		if (f->flags & F_STRIPPED)
			v->stripped--;
		return rc;
	default:
		return check_scalar(v, f, o);
	}
}

static int
check_field(struct vctx *v, const struct field *f, msgpack_object *o,
    const msgpack_object *parent)
{
	uint32_t	i;
	size_t		saved;
	int		dup;

	if (!(f->flags & F_LIST))
		return check_value(v, f, o, parent);
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return fail_here(v, ERR_INVALID_FIELD, "must be a list");
	if ((f->flags & F_NONEMPTY) && o->via.array.size == 0)
		return fail_here(v, ERR_INVALID_FIELD, "must not be empty");
	for (i = 0; i < o->via.array.size; i++) {
		saved = push_index(v, i);
		if (check_value(v, f, &o->via.array.ptr[i], parent) == -1)
			return -1;
		pop(v, saved);
	}
	if (f->flags & F_UNIQUE) {
		if ((dup = dup_index(o, false)) == -2)
			return fail_here(v, ERR_BUSY, "out of memory");
		if (dup >= 0) {
			(void)push_index(v, (size_t)dup);
			return fail_here(v, ERR_INVALID_FIELD,
			    "repeats an earlier item");
		}
	}
	return 0;
}

static int
check_map(struct vctx *v, const struct schema *s, msgpack_object *map)
{
	const struct field	*f;
	msgpack_object_kv	*kv;
	msgpack_object		*val;
	uint32_t		 i;
	size_t			 j, saved;

	for (i = 0; i < map->via.map.size; i++) {
		kv = &map->via.map.ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_STR)
			return fail_here(v, ERR_MALFORMED,
			    "a map key is not a string");
		if (schema_find(s, kv->key.via.str.ptr,
		    kv->key.via.str.size) == NULL) {
			(void)push(v, kv->key.via.str.ptr,
			    kv->key.via.str.size);
			return fail_here(v, ERR_UNKNOWN_FIELD,
			    "not a field of %s", s->name);
		}
	}
	for (j = 0; j < s->nfields; j++) {
		f = &s->fields[j];
		saved = push(v, f->name, strlen(f->name));
		if ((val = map_get(map, f->name)) == NULL) {
			if ((f->flags & F_REQUIRED) && !vctx_stripped(v))
				return fail_here(v, ERR_MISSING_FIELD,
				    "required in %s", s->name);
		} else if (check_field(v, f, val, map) == -1)
			return -1;
		pop(v, saved);
	}
	return s->rule != NULL ? s->rule(v, map) : 0;
}

/* The mid, cid or op a refusal answers, when it is plain enough to echo. */
static void
fill_re(struct cc_error *err, const msgpack_object *root)
{
	static const char *const keys[] = { "mid", "cid", "op" };
	const msgpack_object	*o;
	size_t			 k, i;

	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		o = map_get(root, keys[k]);
		if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
		    o->via.str.size == 0 || o->via.str.size >= sizeof(err->re))
			continue;
		for (i = 0; i < o->via.str.size; i++)
			if (o->via.str.ptr[i] < 0x21 ||
			    o->via.str.ptr[i] > 0x7e)
				break;
		if (i < o->via.str.size)
			continue;
		memcpy(err->re, o->via.str.ptr, o->via.str.size);
		err->re[o->via.str.size] = '\0';
		return;
	}
}

int
validate_message(msgpack_object *root, msgpack_zone *zone, int this_year,
    enum cc_op *opp, struct cc_error *err)
{
	struct vctx		 v;
	const msgpack_object	*ver, *op;
	int			 n;

	memset(&v, 0, sizeof(v));
	v.err = err;
	v.zone = zone;
	v.this_year = this_year;
	if (root->type != MSGPACK_OBJECT_MAP)
		return cc_error_set(err, ERR_MALFORMED, NULL,
		    "a message is a map");
	fill_re(err, root);
	if ((ver = map_get(root, "v")) == NULL)
		return cc_error_set(err, ERR_MISSING_FIELD, "v", "required");
	if (ver->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    ver->via.u64 != CC_PROTO_VERSION)
		return cc_error_set(err, ERR_UNSUPPORTED_VERSION, "v",
		    "this end speaks version %d", CC_PROTO_VERSION);
	if ((op = map_get(root, "op")) == NULL)
		return cc_error_set(err, ERR_MISSING_FIELD, "op", "required");
	if (op->type != MSGPACK_OBJECT_STR ||
	    (n = cc_op_parse(op->via.str.ptr, op->via.str.size)) < 0)
		return cc_error_set(err, ERR_UNKNOWN_OP, "op", "no such op");
	*opp = (enum cc_op)n;
	return check_map(&v, schema_op[n], root);
}
