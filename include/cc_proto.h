/*
 * cc_proto.h - the ccbroker wire protocol and minimum-dataset records.
 *
 * One schema (proto/schema.c) describes every op of the wire protocol and
 * every record body: field names, types, limits, enumerations and the data
 * category of each body field.  Decoding, validation, JSON conversion and
 * stripping all walk that table.
 *
 * A decoded message is a validated msgpack object tree owned by a
 * struct cc_msg.  Identifiers in `subject` are rewritten to their canonical
 * form during validation, so re-encoding a message gives the canonical frame.
 */
#ifndef CC_PROTO_H
#define CC_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <msgpack.h>

#define CC_WUR __attribute__((warn_unused_result))

#define CC_PROTO_VERSION	1
#define CC_MAX_FRAME_DEFAULT	65536	/* DESIGN §7: default max 64 KiB */
#define CC_MAX_DEPTH		8	/* deeper nesting is malformed */
#define CC_ID_MAX		64	/* agency id: [a-z0-9.-]{3,64} */
#define CC_UUID_LEN		36	/* canonical text form */

/* Error codes of DESIGN §7, in the order of the contract. */
enum cc_err {
	CC_OK = 0,
	ERR_MALFORMED,
	ERR_UNSUPPORTED_VERSION,
	ERR_UNKNOWN_OP,
	ERR_MISSING_FIELD,
	ERR_UNKNOWN_FIELD,
	ERR_INVALID_FIELD,
	ERR_TOO_LARGE,
	ERR_NOT_PERMITTED,
	ERR_UNKNOWN_RECIPIENT,
	ERR_IDENTITY_CONFLICT,
	ERR_STORAGE_FULL,
	ERR_BUSY,
	ERR_OVER_QUOTA,		/* beyond an agency's quota: later */
	ERR__COUNT
};

/* Wire ops.  The first group is sent by agents, the second by the broker. */
enum cc_op {
	OP_HELLO,
	OP_SUBSCRIBE,
	OP_PUBLISH,
	OP_CONSENT_GRANT,
	OP_CONSENT_WITHDRAW,
	OP_CONSENT_REFUSE,
	OP_ACK,
	OP_TRACK,
	OP_RETRACT,
	OP_WELCOME,
	OP_SUBSCRIBED,
	OP_ACCEPTED,
	OP_CONSENT_RECORDED,
	OP_STATUS,
	OP_DELIVER,
	OP_RECEIPT,
	OP_RETRACTED,
	OP_NOTICE,
	OP_ERROR,
	OP__COUNT,
	OP_NONE = -1
};

/* Data categories of DESIGN §4.1; a set of them is a bit mask. */
enum cc_cat {
	CAT_IDENTITY,
	CAT_CJ_IDENTIFIERS,
	CAT_CRIMINAL_JUSTICE,
	CAT_TREATMENT_SUMMARY,
	CAT_TREATMENT_CLINICAL,
	CAT_HOUSING,
	CAT_HOUSING_ADDRESS,
	CAT_CONTACTS,
	CAT_NARRATIVE,
	CAT__COUNT
};
typedef uint16_t cc_catset;
#define CATSET(c)	((cc_catset)(1u << (c)))
#define CATSET_ALL	((cc_catset)((1u << CAT__COUNT) - 1))
#define CATSET_EXPLICIT	(CATSET(CAT_TREATMENT_CLINICAL) | CATSET(CAT_NARRATIVE))

enum cc_rtype {
	RT_RELEASE_PLAN,
	RT_HANDOVER,
	RT_REFERRAL,
	RT_HOUSING_STATUS,
	RT__COUNT
};

enum cc_purpose {
	PURPOSE_CONTINUITY_OF_CARE,
	PURPOSE_HOUSING_SUPPORT,
	PURPOSE_OFFENDER_MANAGEMENT,
	PURPOSE_TREATMENT,
	PURPOSE__COUNT
};

enum cc_atype {
	AT_PRISON_CARAT,
	AT_CJIT,
	AT_PROBATION,
	AT_HOUSING_PROVIDER,
	AT_LA_HOUSING,
	AT_TREATMENT_PROVIDER,
	AT_HACS,
	AT_BROKER,
	AT__COUNT
};

/* Per-recipient outcome states and reasons (DESIGN §5, §6). */
enum cc_state {
	ST_QUEUED,
	ST_DELIVERED,
	ST_WITHHELD,
	ST_PURGED,
	ST_EXPIRED,
	ST__COUNT
};

enum cc_reason {
	RS_NONE,
	RS_NO_CONSENT,
	RS_NOT_PERMITTED,
	RS_IDENTITY_CONFLICT,
	RS_STORE_UNAVAILABLE,
	RS_RETENTION,		/* expired: retention_days passed */
	RS_SUPERSEDED,		/* purged: the sender corrected the record */
	RS_RETRACTED,		/* purged: the sender retracted the record */
	RS_ERASED,		/* purged: the subject's data was erased */
	RS__COUNT
};

/* What a broker's `notice` tells an agency (rights after delivery). */
enum cc_notice {
	NT_CONSENT_WITHDRAWN,	/* a consent it received records under */
	NT_CONSENT_EXPIRING,	/* a consent it recorded lapses soon */
	NT_CONSENT_EXPIRED,	/* a consent it recorded has lapsed */
	NT_RECORD_CORRECTED,	/* a record it received was corrected */
	NT_RECORD_RETRACTED,	/* a record it received was retracted */
	NT_SUBJECT_ERASED,	/* a subject it received records of erased */
	NT__COUNT
};

/* A precise refusal: code, dotted field path and a short detail. */
struct cc_error {
	enum cc_err	code;
	char		field[128];	/* "body.release_date", or "" */
	char		detail[160];	/* human words, never record content */
	char		re[80];		/* the mid/cid/op it answers, or "" */
};

/* Canonical subject identifiers; an empty string means absent. */
struct cc_subject {
	char	pnc[14];	/* YYYY/NNNNNNNC */
	char	noms[8];	/* A1234BC */
	char	crn[8];		/* X123456 */
};

struct cc_msg;

/* Names of enum values, as on the wire; NULL when out of range. */
const char	*cc_err_name(enum cc_err);
const char	*cc_op_name(enum cc_op);
const char	*cc_cat_name(enum cc_cat);
const char	*cc_rtype_name(enum cc_rtype);
const char	*cc_purpose_name(enum cc_purpose);
const char	*cc_atype_name(enum cc_atype);
const char	*cc_state_name(enum cc_state);
const char	*cc_reason_name(enum cc_reason);
const char	*cc_notice_name(enum cc_notice);

/* Parse a wire name; returns the value or -1 when unknown. */
int		 cc_op_parse(const char *, size_t);
int		 cc_cat_parse(const char *, size_t);
int		 cc_rtype_parse(const char *, size_t);
int		 cc_purpose_parse(const char *, size_t);
int		 cc_atype_parse(const char *, size_t);
int		 cc_state_parse(const char *, size_t);
int		 cc_reason_parse(const char *, size_t);	/* "none" is RS_NONE */
int		 cc_err_parse(const char *, size_t);

/*
 * Decode one wire frame into a validated message.  Frames longer than `max`
 * are refused with ERR_TOO_LARGE before any parsing.  On success *out owns
 * a new message (free with proto_msg_destroy) and 0 is returned; on refusal
 * -1 is returned, *out is NULL and `err` holds code, field path and detail
 * (err->re is filled with the mid or cid when one could be read).
 */
int		 proto_decode(const void *buf, size_t len, size_t max,
		    struct cc_msg **out, struct cc_error *err) CC_WUR;

/*
 * Decode a JSON text holding an op's fields without `op` and `v` (the form
 * agents read from files), with exactly the validation of proto_decode.
 * Returns 0 or -1 as proto_decode.
 */
int		 proto_from_json(enum cc_op op, const char *json, size_t len,
		    struct cc_msg **out, struct cc_error *err) CC_WUR;

/*
 * Validate an already unpacked msgpack map (used by the broker for stored
 * frames and by the agent for objects it built).  Same contract as
 * proto_decode; takes ownership of nothing.
 */
int		 proto_decode_object(const msgpack_object *, struct cc_msg **out,
		    struct cc_error *err) CC_WUR;

void		 proto_msg_destroy(struct cc_msg **);

/* Encode the whole (canonical) message as one msgpack frame, v and op
 * included.  Returns 0, or -1 on allocation failure. */
int		 proto_encode(const struct cc_msg *, msgpack_sbuffer *) CC_WUR;

/*
 * A publish's record in the form two sends of one mid are compared in
 * (DESIGN §6: the same record again, or another one under a used mid):
 * the canonical tree (validation has rewritten identifiers and UUIDs,
 * msgpack-c packs every integer and string header in its shortest form)
 * with every map's keys in byte order and every float as 64 bits, and
 * without `v`, `op`, `mid` and `created`.  Key order means nothing in a
 * map; the order of a list's items, and every other field, is part of the
 * record.  Returns 0, or -1 on allocation failure or for another op.
 */
int		 proto_encode_record(const struct cc_msg *,
		    msgpack_sbuffer *) CC_WUR;

/* The message as JSON without `op` and `v` (malloc'd, caller frees), or
 * NULL on allocation failure.  `pretty` indents it. */
char		*proto_to_json(const struct cc_msg *, bool pretty);

/*
 * Any msgpack object as JSON text (malloc'd, caller frees), converted as
 * proto_object_to_jansson (proto/json.h) does, or NULL when that refuses
 * it: out of memory, binary or extension values, non-string or repeated
 * keys, text not UTF-8, integers above INT64_MAX, NaN or infinities.
 */
char		*proto_object_to_json(const msgpack_object *, bool pretty);

enum cc_op	 proto_op(const struct cc_msg *);

/* A top-level field of the message, or NULL when absent. */
const msgpack_object *proto_get(const struct cc_msg *, const char *name);

/*
 * Typed getters for top-level fields.  They return 0 and set the output when
 * the field is present with the right type, -1 otherwise.  Strings are not
 * NUL-terminated in the tree; proto_get_str copies into buf (NUL-terminated,
 * truncating to size - 1) and proto_get_strn points into the tree.
 */
int		 proto_get_str(const struct cc_msg *, const char *, char *buf,
		    size_t size);
int		 proto_get_strn(const struct cc_msg *, const char *,
		    const char **p, size_t *len);
int		 proto_get_bool(const struct cc_msg *, const char *, bool *);
int		 proto_get_u64(const struct cc_msg *, const char *, uint64_t *);

/*
 * A top-level time field of the op's schema (`created`, `expires`,
 * `valid_from`, `valid_until`, `captured`, `at`, `time`) as milliseconds
 * since the epoch, as cc_time_parse reads it.  Returns 0, or -1 when the
 * field is absent or the op's schema does not make it an RFC 3339 time
 * (a date, a string, an object, an unknown name).  Validation has parsed
 * every present time already, so the caller need not judge it again.
 */
int		 proto_get_time(const struct cc_msg *, const char *field,
		    int64_t *ms) CC_WUR;

/* The canonical subject of a message that has one; 0, or -1 when absent. */
int		 proto_subject(const struct cc_msg *, struct cc_subject *);

/* A list-of-category-names field (`categories`) as a set; 0 if absent. */
cc_catset	 proto_catset(const msgpack_object *list);

/* Record type of a publish (or -1). */
int		 proto_rtype(const struct cc_msg *);

/*
 * True when a record type is direct only (DESIGN §7: handover, referral):
 * it goes to the agencies in `to` alone, and a subscription to it
 * nominates nothing.  False for every other type and for a value out of
 * range.
 */
bool		 proto_rtype_direct_only(enum cc_rtype);

/*
 * Minimisation.  Pack the message's body (and subject) keeping only fields
 * whose category, as the schema gives it, is in `allowed`; *withheld gets
 * the categories of fields present in the message but removed.  Every
 * identifier of a subject is cj-identifiers (DESIGN §4.1), so a subject
 * goes whole or as an empty map.  Returns 0, or -1 when the message has no
 * body (subject) or on allocation failure.
 */
int		 proto_pack_stripped_body(msgpack_packer *, const struct cc_msg *,
		    cc_catset allowed, cc_catset *withheld) CC_WUR;
int		 proto_pack_stripped_subject(msgpack_packer *,
		    const struct cc_msg *, cc_catset allowed,
		    cc_catset *withheld) CC_WUR;

/* The categories present in a message's body and subject. */
cc_catset	 proto_categories_present(const struct cc_msg *);

/* Category of a body field of a record type (or -1 if no such field). */
int		 proto_field_category(enum cc_rtype, const char *field);

/* Category of a subject identifier ("pnc", "noms", "crn"), or -1 if no
 * such identifier. */
int		 proto_subject_category(const char *field);

/*
 * Identifiers.  Canonicalise a PNC written in any accepted form (2- or
 * 4-digit year, slash optional, leading zeros of the serial optional) into
 * out ("YYYY/NNNNNNNC"); `this_year` is the current year, which decides the
 * century of a 2-digit year (DESIGN §4.2: not after this year is 20YY).
 * Returns 0, or -1 when malformed or the check letter is wrong.
 */
int		 cc_pnc_canonical(const char *in, size_t len, int this_year,
		    char out[14]) CC_WUR;
bool		 cc_noms_valid(const char *, size_t);
bool		 cc_crn_valid(const char *, size_t);
bool		 cc_agency_id_valid(const char *, size_t);
bool		 cc_uuid_valid(const char *, size_t);
/* An ONS area code, ^[EWSN][0-9]{8}$ (E08000035): the wire's `area` and
 * `areas`, and the areas of the configuration files. */
bool		 cc_area_valid(const char *, size_t);

/*
 * Pack helpers for building broker or agent frames; each returns 0, or -1
 * when the buffer could not grow.  proto_pack_header packs the two fields
 * every frame starts with, `v` and `op` (the caller's map counts them).
 */
int		 proto_pack_cstr(msgpack_packer *, const char *) CC_WUR;
int		 proto_pack_strn(msgpack_packer *, const char *, size_t) CC_WUR;
int		 proto_pack_catset(msgpack_packer *, cc_catset) CC_WUR;
int		 proto_pack_header(msgpack_packer *, const char *op) CC_WUR;

/* An `error` frame for err (v, op, re, code, field, detail). */
int		 proto_pack_error(msgpack_sbuffer *, const struct cc_error *) CC_WUR;

/*
 * Fill an error's code, field and detail; field and fmt may be NULL (then
 * empty).  err->re is left as it is, so initialise the struct first.
 * Returns -1 for tail use.
 */
int		 cc_error_set(struct cc_error *, enum cc_err, const char *field,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Times and dates of DESIGN §4.  cc_time_parse accepts RFC 3339 in UTC only
 * (`Z` or `+00:00`, optional fraction kept to milliseconds) and
 * cc_date_parse YYYY-MM-DD (midnight UTC); both refuse impossible calendar
 * days and years outside 1900..2999, returning -1, else 0 with *epoch_ms
 * set.  cc_time_format writes "YYYY-MM-DDTHH:MM:SS.mmmZ".
 */
int		 cc_time_parse(const char *, size_t, int64_t *epoch_ms) CC_WUR;
int		 cc_date_parse(const char *, size_t, int64_t *epoch_ms) CC_WUR;
void		 cc_time_format(int64_t epoch_ms, char out[32]);
int64_t		 cc_time_now_ms(void);
void		 cc_time_now_rfc3339(char out[32]);

/* A new random UUID in canonical lower-case form (libuuid). */
void		 cc_uuid_new(char out[CC_UUID_LEN + 1]);

#endif /* CC_PROTO_H */
