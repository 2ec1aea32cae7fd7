/*
 * schema.h - internal to proto/: the one schema of every op and record body,
 * and the pieces the codec, the JSON converter and the stripper share.
 *
 * A schema is a table of field descriptors.  Validation (validate.c),
 * stripping (strip.c) and JSON conversion (json.c) walk these tables; no
 * other file names a record field.
 */
#ifndef CC_SCHEMA_H
#define CC_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "cc_proto.h"

/* A list of wire names; an enum value is its index. */
struct enumdef {
	const char *const	*names;
	size_t			 n;
};

/* The type of a field's value, or of each item when the field is a list. */
enum ftype {
	FT_HEADER,	/* `v` and `op`: checked before the walk */
	FT_TEXT,	/* UTF-8 string of min..max characters */
	FT_DATE,	/* YYYY-MM-DD, a real calendar day */
	FT_TIME,	/* RFC 3339 time in UTC */
	FT_DATE_OR_TIME, /* either of the two */
	FT_BOOL,
	FT_INT,		/* integer in min..max */
	FT_NUMBER,	/* integer or float in min..max */
	FT_ENUM,	/* one of the names of `en` */
	FT_UUID,	/* 8-4-4-4-12 hex, stored lower case */
	FT_AGENCY,	/* agency id [a-z0-9.-]{3,64} */
	FT_ONS,		/* ONS area code [EWSN] and 8 digits */
	FT_NOMIS,	/* NOMIS establishment code, 3 capitals */
	FT_SHA256,	/* 64 hex digits */
	FT_PNC,		/* rewritten to canonical YYYY/NNNNNNNC */
	FT_NOMS,
	FT_CRN,
	FT_OBJECT,	/* map described by `sub` */
	FT_BODY		/* map checked against the body of sibling `type` */
};

/*
 * Field flags; the category of a top-level field of a body or a subject
 * sits above them (FCAT).
 */
#define F_REQUIRED	0x01	/* absence is missing-field */
#define F_LIST		0x02	/* an array of values of the type */
#define F_NONEMPTY	0x04	/* a list with at least one item */
#define F_UNIQUE	0x08	/* a list without repeated items */
#define F_STRIPPED	0x10	/* may have lost fields to stripping */
#define F_SET		(F_LIST | F_UNIQUE)
#define FCAT(c)		((unsigned)((c) + 1) << 8)
#define FIELD_CAT(f)	((int)((f)->flags >> 8) - 1)	/* -1: none */

struct schema;
struct vctx;

struct field {
	const char		*name;
	size_t			 namelen;	/* strlen(name) */
	enum ftype		 type;
	unsigned		 flags;
	int64_t			 min, max;	/* characters or bounds */
	const struct enumdef	*en;		/* FT_ENUM */
	const struct schema	*sub;		/* FT_OBJECT */
};

/*
 * A map's fields in the order they are checked, and an optional rule across
 * fields, run once every field is individually valid.  The rule returns 0,
 * or -1 with the context's error filled.
 */
struct schema {
	const char		*name;
	const struct field	*fields;
	size_t			 nfields;
	int			(*rule)(struct vctx *,
			    const msgpack_object *);
};

/* What a record type's body looks like and how it may travel. */
struct rtype_def {
	const struct schema	*body;
	bool			 direct_only;	/* `to` alone, DESIGN §7 */
	unsigned		 purposes;	/* allowed, 1 << cc_purpose */
};

/* The enum tables of the public enums, in names.c. */
extern const struct enumdef en_err, en_op, en_cat, en_rtype, en_purpose,
			    en_atype, en_state, en_reason,
					 en_notice;

/* The op schemas, indexed by enum cc_op, and the record types. */
extern const struct schema *const	 schema_op[OP__COUNT];
extern const struct rtype_def		 schema_rtype[RT__COUNT];

const struct field *schema_find(const struct schema *, const char *,
		    size_t);
int		 enum_find(const struct enumdef *, const char *, size_t);

/* A decoded message: its own copy of the frame and the tree into it. */
struct cc_msg {
	enum cc_op	 op;
	char		*frame;		/* bytes the tree points into */
	size_t		 len;
	msgpack_unpacked up;		/* tree, zone for rewrites */
};

/*
 * Walk the schema of the tree's op.  Strings may be rewritten to canonical
 * form (allocated in zone).  `this_year` decides the century of 2-digit
 * PNC years.  Returns 0, or -1 with err filled.
 */
int		 validate_message(msgpack_object *root, msgpack_zone *zone,
		    int this_year, enum cc_op *op, struct cc_error *err);

/*
 * For the rules of a schema: fail with the path of the map being checked,
 * extended by `field` when it is not NULL.  Returns -1.
 */
int		 vctx_fail(struct vctx *, enum cc_err, const char *field,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* True inside an object a broker may have stripped (a `deliver`). */
bool		 vctx_stripped(const struct vctx *);

/* Look up a key in a map; NULL when absent. */
msgpack_object	*map_get(const msgpack_object *map, const char *key);

bool		 str_is(const msgpack_object *, const char *);

/*
 * Position of the first string of a list (or key of a map, when `map`)
 * that repeats an earlier one; -1 when none, -2 when out of memory.  The
 * items must be strings.
 */
int		 dup_index(const msgpack_object *, bool map);

/* Calendar helpers shared by validation and cc_time_parse. */
struct cc_tm {
	int	year, mon, day, hour, min, sec, msec;
};
int		 date_parse(const char *, size_t, struct cc_tm *);
int		 time_parse(const char *, size_t, struct cc_tm *);
int64_t		 tm_epoch_ms(const struct cc_tm *);
int		 days_in_month(int year, int mon);

/* Strict identifier checks that ident.c provides besides the public ones. */
bool		 ident_nomis_valid(const char *, size_t);
bool		 ident_sha256_valid(const char *, size_t);

#endif /* CC_SCHEMA_H */
