/*
 * names.c - wire names of the public enums, and the error filler.
 *
 * Each table is indexed by its enum, so the order here must follow
 * cc_proto.h.  The schema uses the same tables for its enum fields.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cc_proto.h"
#include "schema.h"

static const char *const err_names[ERR__COUNT] = {
	"ok", "malformed", "unsupported-version", "unknown-op",
	"missing-field", "unknown-field", "invalid-field", "too-large",
	"not-permitted", "unknown-recipient", "identity-conflict",
	"storage-full", "busy", "over-quota"
};
static const char *const op_names[OP__COUNT] = {
	"hello", "subscribe", "publish", "consent-grant", "consent-withdraw",
	"consent-refuse", "ack", "track", "retract", "welcome", "subscribed",
	"accepted", "consent-recorded", "status", "deliver", "receipt",
	"retracted", "notice", "error"
};
static const char *const cat_names[CAT__COUNT] = {
	"identity", "cj-identifiers", "criminal-justice", "treatment-summary",
	"treatment-clinical", "housing", "housing-address", "contacts",
	"narrative"
};
static const char *const rtype_names[RT__COUNT] = {
	"release-plan", "handover", "referral", "housing-status"
};
static const char *const purpose_names[PURPOSE__COUNT] = {
	"continuity-of-care", "housing-support", "offender-management",
	"treatment"
};
static const char *const atype_names[AT__COUNT] = {
	"prison-carat", "cjit", "probation", "housing-provider", "la-housing",
	"treatment-provider", "hacs", "broker"
};
static const char *const state_names[ST__COUNT] = {
	"queued", "delivered", "withheld", "purged", "expired"
};
/* RS_NONE has a name so that a reason can always be packed. */
static const char *const reason_names[RS__COUNT] = {
	"none", "no-consent", "not-permitted", "identity-conflict",
	"store-unavailable", "retention", "superseded", "retracted", "erased"
};
static const char *const notice_names[NT__COUNT] = {
	"consent-withdrawn", "consent-expiring", "consent-expired",
	"record-corrected", "record-retracted", "subject-erased"
};

/* The wire never carries "ok", so the schema's error table skips it. */
const struct enumdef en_err = { err_names + 1, ERR__COUNT - 1 };
const struct enumdef en_op = { op_names, OP__COUNT };
const struct enumdef en_cat = { cat_names, CAT__COUNT };
const struct enumdef en_rtype = { rtype_names, RT__COUNT };
const struct enumdef en_purpose = { purpose_names, PURPOSE__COUNT };
const struct enumdef en_atype = { atype_names, AT__COUNT };
const struct enumdef en_state = { state_names, ST__COUNT };
const struct enumdef en_reason = { reason_names, RS__COUNT };
const struct enumdef en_notice = { notice_names, NT__COUNT };

static const char *name_of(const char *const *, int, int);

static const char *
name_of(const char *const *names, int n, int v)
{
	if (v < 0 || v >= n)
		return NULL;
	return names[v];
}

int
enum_find(const struct enumdef *en, const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < en->n; i++)
		if (strlen(en->names[i]) == len &&
		    memcmp(en->names[i], s, len) == 0)
			return (int)i;
	return -1;
}

const char *
cc_err_name(enum cc_err v)
{
	return name_of(err_names, ERR__COUNT, (int)v);
}

const char *
cc_op_name(enum cc_op v)
{
	return name_of(op_names, OP__COUNT, (int)v);
}

const char *
cc_cat_name(enum cc_cat v)
{
	return name_of(cat_names, CAT__COUNT, (int)v);
}

const char *
cc_rtype_name(enum cc_rtype v)
{
	return name_of(rtype_names, RT__COUNT, (int)v);
}

const char *
cc_purpose_name(enum cc_purpose v)
{
	return name_of(purpose_names, PURPOSE__COUNT, (int)v);
}

const char *
cc_atype_name(enum cc_atype v)
{
	return name_of(atype_names, AT__COUNT, (int)v);
}

const char *
cc_state_name(enum cc_state v)
{
	return name_of(state_names, ST__COUNT, (int)v);
}

const char *
cc_reason_name(enum cc_reason v)
{
	return name_of(reason_names, RS__COUNT, (int)v);
}

const char *
cc_notice_name(enum cc_notice v)
{
	return name_of(notice_names, NT__COUNT, (int)v);
}

int
cc_op_parse(const char *s, size_t len)
{
	return enum_find(&en_op, s, len);
}

int
cc_cat_parse(const char *s, size_t len)
{
	return enum_find(&en_cat, s, len);
}

int
cc_rtype_parse(const char *s, size_t len)
{
	return enum_find(&en_rtype, s, len);
}

int
cc_purpose_parse(const char *s, size_t len)
{
	return enum_find(&en_purpose, s, len);
}

int
cc_atype_parse(const char *s, size_t len)
{
	return enum_find(&en_atype, s, len);
}

int
cc_state_parse(const char *s, size_t len)
{
	return enum_find(&en_state, s, len);
}

int
cc_reason_parse(const char *s, size_t len)
{
	return enum_find(&en_reason, s, len);
}

int
cc_err_parse(const char *s, size_t len)
{
	return enum_find(&(struct enumdef){ err_names, ERR__COUNT }, s, len);
}

int
cc_error_set(struct cc_error *err, enum cc_err code, const char *field,
    const char *fmt, ...)
{
	va_list	ap;

	err->code = code;
	err->field[0] = '\0';
	err->detail[0] = '\0';
	if (field != NULL)
		(void)snprintf(err->field, sizeof(err->field), "%s", field);
	if (fmt != NULL) {
		va_start(ap, fmt);
		(void)vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
		va_end(ap);
	}
	return -1;
}
