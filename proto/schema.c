/*
 * schema.c - THE schema: every op of DESIGN §7 and every record body of
 * DESIGN §4.4, as tables of field descriptors.
 *
 * Each row gives a field's name, type, flags (required, list, set, and for
 * the top-level fields of a record body and of a subject its data category
 * of DESIGN §4.1; nested objects inherit it), limits, enumeration and
 * sub-object.  The few rules
 * that span fields sit beside their table.  Nothing else in the project
 * restates a field: validate.c, strip.c and json.c only walk these tables.
 */
#include <string.h>

#include "cc_proto.h"
#include "schema.h"

/* Lengths in characters.  DESIGN §4: free text 1000, names 35. */
#define LEN_TEXT	1000
#define LEN_NAME	35
#define LEN_SHORT	200	/* agency names, address lines, places */
#define LEN_REF		64	/* references such as a DIR number */
#define LEN_PHONE	40
#define LEN_EMAIL	254	/* RFC 5321 */
#define LEN_POSTCODE	16
#define LEN_FORM	200
#define LEN_WORKER	100
#define LEN_AGENT	64
/* Counters stay exact in JSON (2^53 - 1), so every reader agrees. */
#define WIRE_UINT_MAX	INT64_C(9007199254740991)
#define DOSE_MG_MAX	10000
#define HOUSEHOLD_MAX	20

#define C_ID	FCAT(CAT_IDENTITY)
#define C_CI	FCAT(CAT_CJ_IDENTIFIERS)
#define C_CJ	FCAT(CAT_CRIMINAL_JUSTICE)
#define C_TS	FCAT(CAT_TREATMENT_SUMMARY)
#define C_TC	FCAT(CAT_TREATMENT_CLINICAL)
#define C_HO	FCAT(CAT_HOUSING)
#define C_HA	FCAT(CAT_HOUSING_ADDRESS)
#define C_CO	FCAT(CAT_CONTACTS)
#define C_NA	FCAT(CAT_NARRATIVE)
#define REQ	F_REQUIRED

/* Row builders, one per shape of descriptor. */
/* n is a string literal: its length is known when compiling. */
#define FLD(n, t, fl)		{ n, sizeof(n) - 1, t, fl, 0, 0, NULL, NULL }
#define TXT(n, fl, hi)		{ n, sizeof(n) - 1, FT_TEXT, fl, 1, hi, NULL, \
				    NULL }
#define NUM(n, t, fl, lo, hi)	{ n, sizeof(n) - 1, t, fl, lo, hi, NULL, NULL }
#define ENM(n, fl, e)		{ n, sizeof(n) - 1, FT_ENUM, fl, 0, 0, &e, \
				    NULL }
#define OBJ(n, fl, s)		{ n, sizeof(n) - 1, FT_OBJECT, fl, 0, 0, \
				    NULL, &s##_schema }
#define HEADER			FLD("v", FT_HEADER, REQ), \
				FLD("op", FT_HEADER, REQ)
#define NITEMS(a)		(sizeof(a) / sizeof((a)[0]))
#define SCHEMA(id, rows, rule) \
	static const struct schema id##_schema = \
	    { #id, rows, NITEMS(rows), rule }
#define ENUMDEF(id, ...) \
	static const char *const id##_names[] = { __VA_ARGS__ }; \
	static const struct enumdef id = { id##_names, NITEMS(id##_names) }

static int	subject_rule(struct vctx *, const msgpack_object *);
static int	episode_rule(struct vctx *, const msgpack_object *);
static int	housing_status_rule(struct vctx *, const msgpack_object *);
static int	publish_rule(struct vctx *, const msgpack_object *);
static int	grant_rule(struct vctx *, const msgpack_object *);
static int	withdraw_rule(struct vctx *, const msgpack_object *);
static bool	after(const msgpack_object *, const msgpack_object *);
static int64_t	when(const msgpack_object *);

/* DESIGN §4.3 enumerations. */
ENUMDEF(en_sex, "M", "F", "X", "U");
ENUMDEF(en_need, "nfa-urgent", "housing-problem", "no-problem");
ENUMDEF(en_release_type, "licence", "hdc", "sentence-expiry", "court",
    "parole", "other");
ENUMDEF(en_modality, "prescribing", "psychosocial", "detox", "residential",
    "none");
ENUMDEF(en_medication, "methadone", "buprenorphine", "none");
ENUMDEF(en_injecting, "current", "previous", "never", "declined");
ENUMDEF(en_service, "supported-housing", "floating-support", "rent-deposit",
    "housing-advice", "treatment");
ENUMDEF(en_support, "substance-misuse", "mental-health", "physical-access",
    "debt", "life-skills", "employment");
ENUMDEF(en_change, "moved-in", "evicted", "abandoned", "returned-to-custody",
    "tenancy-ended", "other");
ENUMDEF(en_handover, "offered", "accepted", "declined");
ENUMDEF(en_settled, "settled", "unsettled", "homeless");
ENUMDEF(en_method, "written", "verbal-witnessed", "electronic");

/* accommodation_type, and beside it the settled_status each one implies. */
enum settled { SETTLED, UNSETTLED, HOMELESS };
ENUMDEF(en_acc_type, "rough-sleeping", "sofa-surfing", "hostel",
    "bed-and-breakfast", "approved-premises", "transitional", "supported",
    "social-tenant", "private-tenant", "owner", "family-settled",
    "institution", "custody", "unknown");
static const enum settled acc_settled[] = {
	HOMELESS, UNSETTLED, UNSETTLED, UNSETTLED, UNSETTLED, UNSETTLED,
	SETTLED, SETTLED, SETTLED, SETTLED, SETTLED, UNSETTLED, UNSETTLED,
	UNSETTLED
};
_Static_assert(NITEMS(acc_settled) == NITEMS(en_acc_type_names),
    "every accommodation_type needs its settled_status");

/* Common objects of DESIGN §4.4. */
static const struct field person_rows[] = {
	TXT("family_name", 0, LEN_NAME),
	TXT("given_name", 0, LEN_NAME),
	FLD("dob", FT_DATE, 0),
	ENM("sex", 0, en_sex),
};
SCHEMA(person, person_rows, NULL);

static const struct field contact_rows[] = {
	TXT("name", 0, LEN_NAME),
	TXT("agency", 0, LEN_SHORT),
	TXT("phone", 0, LEN_PHONE),
	TXT("email", 0, LEN_EMAIL),
};
SCHEMA(contact, contact_rows, NULL);

static const struct field address_rows[] = {
	TXT("line1", 0, LEN_SHORT),
	TXT("line2", 0, LEN_SHORT),
	TXT("town", 0, LEN_SHORT),
	TXT("postcode", 0, LEN_POSTCODE),
};
SCHEMA(address, address_rows, NULL);

static const struct field appointment_rows[] = {
	TXT("agency", 0, LEN_SHORT),
	FLD("at", FT_TIME, 0),
	TXT("location", 0, LEN_SHORT),
};
SCHEMA(appointment, appointment_rows, NULL);

/*
 * DESIGN §4.2: a subject holds at least one identifier.  Its fields are
 * cj-identifiers (DESIGN §4.1) wherever it appears; stripping a delivery's
 * subject reads the category here as it does a body's.
 */
static const struct field subject_rows[] = {
	FLD("pnc", FT_PNC, C_CI),
	FLD("noms", FT_NOMS, C_CI),
	FLD("crn", FT_CRN, C_CI),
};
SCHEMA(subject, subject_rows, subject_rule);

static const struct field episode_rows[] = {
	ENM("modality", REQ, en_modality),
	FLD("start", FT_DATE, 0),
	FLD("end", FT_DATE, 0),
};
SCHEMA(episode, episode_rows, episode_rule);

static const struct field household_rows[] = {
	NUM("adults", FT_INT, 0, 0, HOUSEHOLD_MAX),
	NUM("dependants", FT_INT, 0, 0, HOUSEHOLD_MAX),
};
SCHEMA(household, household_rows, NULL);

static const struct field risk_flags_rows[] = {
	FLD("arson", FT_BOOL, 0),
	FLD("sexual_offence", FT_BOOL, 0),
	FLD("violence", FT_BOOL, 0),
};
SCHEMA(risk_flags, risk_flags_rows, NULL);

/* Record bodies of DESIGN §4.4, each top-level field with its category. */
static const struct field release_plan_rows[] = {
	OBJ("person", REQ | C_ID, person),
	FLD("establishment", FT_NOMIS, C_CJ),
	FLD("release_date", FT_DATE, C_CJ),
	ENM("release_type", C_CJ, en_release_type),
	FLD("on_licence", FT_BOOL, C_CJ),
	FLD("in_treatment", FT_BOOL, C_TS),
	ENM("treatment_modality", C_TS, en_modality),
	FLD("overdose_risk_briefed", FT_BOOL, C_TS),
	ENM("substitute_medication", C_TC, en_medication),
	NUM("dose_mg", FT_NUMBER, C_TC, 0, DOSE_MG_MAX),
	FLD("last_dose", FT_DATE_OR_TIME, C_TC),
	TXT("primary_substance", C_TC, LEN_SHORT),
	ENM("accommodation_need", C_HO, en_need),
	ENM("accommodation_on_release", C_HO, en_acc_type),
	TXT("housing_actions", F_LIST | C_HO, LEN_TEXT),
	OBJ("release_address", C_HA, address),
	OBJ("offender_manager", C_CO, contact),
	OBJ("keyworker", C_CO, contact),
	OBJ("first_appointment", C_CO, appointment),
	TXT("notes", C_NA, LEN_TEXT),
};
SCHEMA(release_plan, release_plan_rows, NULL);

static const struct field handover_rows[] = {
	OBJ("person", REQ | C_ID, person),
	FLD("establishment", FT_NOMIS, C_CJ),
	FLD("release_date", FT_DATE, C_CJ),
	TXT("dir_ref", C_CJ, LEN_REF),
	ENM("handover_status", C_CJ, en_handover),
	FLD("in_treatment", FT_BOOL, C_TS),
	ENM("treatment_modality", C_TS, en_modality),
	ENM("injecting_status", C_TC, en_injecting),
	TXT("primary_substance", C_TC, LEN_SHORT),
	TXT("secondary_substance", C_TC, LEN_SHORT),
	ENM("substitute_medication", C_TC, en_medication),
	NUM("dose_mg", FT_NUMBER, C_TC, 0, DOSE_MG_MAX),
	FLD("last_dose", FT_DATE_OR_TIME, C_TC),
	OBJ("prison_treatment", F_LIST | C_TC, episode),
	ENM("accommodation_need", C_HO, en_need),
	ENM("accommodation_on_release", C_HO, en_acc_type),
	OBJ("carat_worker", C_CO, contact),
	OBJ("offender_manager", C_CO, contact),
	OBJ("gp_practice", C_CO, contact),
	TXT("notes", C_NA, LEN_TEXT),
};
SCHEMA(handover, handover_rows, NULL);

static const struct field referral_rows[] = {
	OBJ("person", REQ | C_ID, person),
	ENM("referral_service", REQ | C_HO, en_service),
	FLD("required_from", FT_DATE, C_HO),
	ENM("accommodation_need", C_HO, en_need),
	ENM("current_accommodation", C_HO, en_acc_type),
	FLD("local_connection", FT_ONS, C_HO),
	OBJ("household", C_HO, household),
	ENM("support_needs", F_SET | C_HO, en_support),
	OBJ("risk_flags", C_CJ, risk_flags),
	FLD("in_treatment", FT_BOOL, C_TS),
	OBJ("referrer", C_CO, contact),
	TXT("client_phone", C_CO, LEN_PHONE),
	TXT("notes", C_NA, LEN_TEXT),
};
SCHEMA(referral, referral_rows, NULL);

static const struct field housing_status_rows[] = {
	OBJ("person", C_ID, person),
	FLD("effective_date", FT_DATE, REQ | C_HO),
	ENM("accommodation_type", REQ | C_HO, en_acc_type),
	ENM("accommodation_need", C_HO, en_need),
	ENM("settled_status", C_HO, en_settled),
	ENM("change_reason", C_HO, en_change),
	OBJ("address", C_HA, address),
};
SCHEMA(housing_status, housing_status_rows, housing_status_rule);

/*
 * DESIGN §4.4 gives each record type its purpose(s).  Handover and referral
 * are direct only (DESIGN §7): a publish needs `to`, the agencies it names
 * are the only recipients, and a subscription to them nominates nothing.
 */
#define PURP(p)	(1u << (p))
const struct rtype_def schema_rtype[RT__COUNT] = {
	[RT_RELEASE_PLAN] = { .body = &release_plan_schema,
	    .purposes = PURP(PURPOSE_CONTINUITY_OF_CARE) },
	[RT_HANDOVER] = { .body = &handover_schema, .direct_only = true,
	    .purposes = PURP(PURPOSE_CONTINUITY_OF_CARE) },
	[RT_REFERRAL] = { .body = &referral_schema, .direct_only = true,
	    .purposes = PURP(PURPOSE_HOUSING_SUPPORT) |
	    PURP(PURPOSE_TREATMENT) },
	[RT_HOUSING_STATUS] = { .body = &housing_status_schema,
	    .purposes = PURP(PURPOSE_HOUSING_SUPPORT) },
};

/* Agent -> broker ops of DESIGN §7. */
static const struct field hello_rows[] = {
	HEADER,
	TXT("agent", REQ, LEN_AGENT),
	FLD("receive", FT_BOOL, 0),		/* absent: true */
};
SCHEMA(hello, hello_rows, NULL);

/* An empty list is allowed: it subscribes to nothing. */
static const struct field subscribe_rows[] = {
	HEADER,
	ENM("types", REQ | F_SET, en_rtype),
	FLD("areas", FT_ONS, REQ | F_SET),
};
SCHEMA(subscribe, subscribe_rows, NULL);

static const struct field publish_rows[] = {
	HEADER,
	FLD("mid", FT_UUID, REQ),
	ENM("type", REQ, en_rtype),
	ENM("purpose", REQ, en_purpose),
	OBJ("subject", REQ, subject),
	FLD("area", FT_ONS, REQ),
	FLD("to", FT_AGENCY, F_SET | F_NONEMPTY),
	FLD("created", FT_TIME, REQ),
	FLD("expires", FT_TIME, 0),
	FLD("supersedes", FT_UUID, 0),
	FLD("body", FT_BODY, REQ),
};
SCHEMA(publish, publish_rows, publish_rule);

/* DESIGN §5: an absent list in a deny provision means "all". */
static const struct field deny_rows[] = {
	FLD("recipients", FT_AGENCY, F_SET | F_NONEMPTY),
	ENM("categories", F_SET | F_NONEMPTY, en_cat),
};
SCHEMA(deny, deny_rows, NULL);

static const struct field evidence_rows[] = {
	ENM("method", REQ, en_method),
	TXT("form", REQ, LEN_FORM),
	FLD("form_sha256", FT_SHA256, 0),
	TXT("worker", REQ, LEN_WORKER),
	FLD("captured", FT_TIME, REQ),
	TXT("reference", 0, LEN_TEXT),
};
SCHEMA(evidence, evidence_rows, NULL);

static const struct field consent_grant_rows[] = {
	HEADER,
	FLD("cid", FT_UUID, REQ),
	OBJ("subject", REQ, subject),
	FLD("recipients", FT_AGENCY, REQ | F_SET | F_NONEMPTY),
	ENM("purposes", REQ | F_SET | F_NONEMPTY, en_purpose),
	ENM("categories", REQ | F_SET | F_NONEMPTY, en_cat),
	OBJ("deny", F_LIST, deny),
	FLD("explicit", FT_BOOL, 0),		/* absent: false */
	FLD("valid_from", FT_TIME, REQ),
	FLD("valid_until", FT_TIME, REQ),
	OBJ("evidence", REQ, evidence),
};
SCHEMA(consent_grant, consent_grant_rows, grant_rule);

static const struct field consent_withdraw_rows[] = {
	HEADER,
	FLD("cid", FT_UUID, 0),
	OBJ("subject", 0, subject),
	FLD("captured", FT_TIME, REQ),
	TXT("worker", REQ, LEN_WORKER),
	TXT("reason", 0, LEN_TEXT),
};
SCHEMA(consent_withdraw, consent_withdraw_rows, withdraw_rule);

static const struct field consent_refuse_rows[] = {
	HEADER,
	FLD("cid", FT_UUID, REQ),
	OBJ("subject", REQ, subject),
	FLD("captured", FT_TIME, REQ),
	TXT("worker", REQ, LEN_WORKER),
	OBJ("evidence", 0, evidence),
};
SCHEMA(consent_refuse, consent_refuse_rows, NULL);

static const struct field ack_rows[] = {
	HEADER,
	NUM("dseq", FT_INT, REQ, 0, WIRE_UINT_MAX),
};
SCHEMA(ack, ack_rows, NULL);

static const struct field track_rows[] = {
	HEADER,
	FLD("mid", FT_UUID, REQ),
};
SCHEMA(track, track_rows, NULL);

static const struct field retract_rows[] = {
	HEADER,
	FLD("mid", FT_UUID, REQ),
	TXT("reason", REQ, LEN_TEXT),
};
SCHEMA(retract, retract_rows, NULL);

/* Broker -> agent ops of DESIGN §7. */
static const struct field welcome_rows[] = {
	HEADER,
	FLD("agency", FT_AGENCY, REQ),
	ENM("type", REQ, en_atype),
	FLD("areas", FT_ONS, REQ | F_SET),
	NUM("max_size", FT_INT, REQ, 1, WIRE_UINT_MAX),
	FLD("time", FT_TIME, REQ),
};
SCHEMA(welcome, welcome_rows, NULL);

static const struct field subscribed_rows[] = {
	HEADER,
	ENM("types", REQ | F_SET, en_rtype),
	FLD("areas", FT_ONS, REQ | F_SET),
};
SCHEMA(subscribed, subscribed_rows, NULL);

static const struct field accepted_rows[] = {
	HEADER,
	FLD("mid", FT_UUID, REQ),
};
SCHEMA(accepted, accepted_rows, NULL);

static const struct field consent_recorded_rows[] = {
	HEADER,
	FLD("cid", FT_UUID, REQ),
	NUM("version", FT_INT, REQ, 0, WIRE_UINT_MAX),
};
SCHEMA(consent_recorded, consent_recorded_rows, NULL);

static const struct field recipient_state_rows[] = {
	FLD("agency", FT_AGENCY, REQ),
	ENM("state", REQ, en_state),
	ENM("reason", 0, en_reason),
	FLD("at", FT_TIME, 0),
	ENM("notices", F_SET, en_notice),
};
SCHEMA(recipient_state, recipient_state_rows, NULL);

static const struct field status_rows[] = {
	HEADER,
	FLD("mid", FT_UUID, REQ),
	OBJ("recipients", REQ | F_LIST, recipient_state),
};
SCHEMA(status, status_rows, NULL);

static const struct field consent_ref_rows[] = {
	FLD("cid", FT_UUID, REQ),
	NUM("version", FT_INT, REQ, 0, WIRE_UINT_MAX),
};
SCHEMA(consent_ref, consent_ref_rows, NULL);

/* A delivery's subject and body may have lost any field to stripping. */
static const struct field deliver_rows[] = {
	HEADER,
	NUM("dseq", FT_INT, REQ, 0, WIRE_UINT_MAX),
	FLD("mid", FT_UUID, REQ),
	ENM("type", REQ, en_rtype),
	FLD("from", FT_AGENCY, REQ),
	ENM("purpose", REQ, en_purpose),
	OBJ("subject", REQ | F_STRIPPED, subject),
	FLD("area", FT_ONS, REQ),
	FLD("created", FT_TIME, REQ),
	FLD("body", FT_BODY, REQ | F_STRIPPED),
	OBJ("consent", REQ, consent_ref),
	ENM("withheld_categories", F_SET, en_cat),
};
SCHEMA(deliver, deliver_rows, NULL);

static const struct field receipt_rows[] = {
	HEADER,
	NUM("dseq", FT_INT, REQ, 0, WIRE_UINT_MAX),
	FLD("mid", FT_UUID, REQ),
	FLD("agency", FT_AGENCY, REQ),
	ENM("state", REQ, en_state),
	ENM("reason", 0, en_reason),
	FLD("at", FT_TIME, REQ),
};
SCHEMA(receipt, receipt_rows, NULL);

static const struct field retracted_rows[] = {
	HEADER,
	FLD("mid", FT_UUID, REQ),
};
SCHEMA(retracted, retracted_rows, NULL);

/*
 * A notice: which fields a kind carries is said in PROTOCOL.md; the
 * schema takes the union, each optional, so that a client decodes every
 * kind with one table.
 */
static const struct field notice_rows[] = {
	HEADER,
	NUM("dseq", FT_INT, REQ, 0, WIRE_UINT_MAX),
	FLD("nid", FT_UUID, REQ),
	ENM("kind", REQ, en_notice),
	FLD("at", FT_TIME, REQ),
	OBJ("consents", F_LIST, consent_ref),
	FLD("mids", FT_UUID, F_SET),
	OBJ("subject", F_STRIPPED, subject),
	FLD("valid_until", FT_TIME, 0),
	FLD("mid", FT_UUID, 0),
	FLD("by", FT_UUID, 0),
	FLD("from", FT_AGENCY, 0),
	TXT("reason", 0, LEN_TEXT),
};
SCHEMA(notice, notice_rows, NULL);

/* Sizes follow struct cc_error, so an error always fits one. */
static const struct field error_rows[] = {
	HEADER,
	NUM("re", FT_TEXT, 0, 0, sizeof(((struct cc_error *)0)->re) - 1),
	ENM("code", REQ, en_err),
	NUM("field", FT_TEXT, 0, 0, sizeof(((struct cc_error *)0)->field) - 1),
	NUM("detail", FT_TEXT, 0, 0,
	    sizeof(((struct cc_error *)0)->detail) - 1),
};
SCHEMA(error, error_rows, NULL);

const struct schema *const schema_op[OP__COUNT] = {
	[OP_HELLO] = &hello_schema,
	[OP_SUBSCRIBE] = &subscribe_schema,
	[OP_PUBLISH] = &publish_schema,
	[OP_CONSENT_GRANT] = &consent_grant_schema,
	[OP_CONSENT_WITHDRAW] = &consent_withdraw_schema,
	[OP_CONSENT_REFUSE] = &consent_refuse_schema,
	[OP_ACK] = &ack_schema,
	[OP_TRACK] = &track_schema,
	[OP_RETRACT] = &retract_schema,
	[OP_WELCOME] = &welcome_schema,
	[OP_SUBSCRIBED] = &subscribed_schema,
	[OP_ACCEPTED] = &accepted_schema,
	[OP_CONSENT_RECORDED] = &consent_recorded_schema,
	[OP_STATUS] = &status_schema,
	[OP_DELIVER] = &deliver_schema,
	[OP_RECEIPT] = &receipt_schema,
	[OP_RETRACTED] = &retracted_schema,
	[OP_NOTICE] = &notice_schema,
	[OP_ERROR] = &error_schema,
};

bool
proto_rtype_direct_only(enum cc_rtype rt)
{
	return (int)rt >= 0 && rt < RT__COUNT && schema_rtype[rt].direct_only;
}

const struct field *
schema_find(const struct schema *s, const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < s->nfields; i++)
		if (s->fields[i].namelen == len &&
		    memcmp(s->fields[i].name, name, len) == 0)
			return &s->fields[i];
	return NULL;
}

/*
 * Rules across fields.  Each runs after every field of its map passed on
 * its own, so the values it reads are present-and-valid or absent.
 */

/* When a valid date or time value falls, for comparing two of them. */
static int64_t
when(const msgpack_object *o)
{
	int64_t	ms;

	if (cc_time_parse(o->via.str.ptr, o->via.str.size, &ms) == 0 ||
	    cc_date_parse(o->via.str.ptr, o->via.str.size, &ms) == 0)
		return ms;
	return 0;
}

static bool
after(const msgpack_object *a, const msgpack_object *b)
{
	return when(a) > when(b);
}

static int
subject_rule(struct vctx *v, const msgpack_object *map)
{
	if (map->via.map.size == 0 && !vctx_stripped(v))
		return vctx_fail(v, ERR_INVALID_FIELD, NULL,
		    "needs at least one of pnc, noms, crn");
	return 0;
}

static int
episode_rule(struct vctx *v, const msgpack_object *map)
{
	const msgpack_object	*start, *end;

	start = map_get(map, "start");
	end = map_get(map, "end");
	if (start != NULL && end != NULL && after(start, end))
		return vctx_fail(v, ERR_INVALID_FIELD, "end",
		    "ends before it starts");
	return 0;
}

/* DESIGN §4.4: settled_status must agree with accommodation_type. */
static int
housing_status_rule(struct vctx *v, const msgpack_object *map)
{
	const msgpack_object	*type, *status;
	int			 t, s;

	type = map_get(map, "accommodation_type");
	status = map_get(map, "settled_status");
	if (type == NULL || status == NULL)
		return 0;
	t = enum_find(&en_acc_type, type->via.str.ptr, type->via.str.size);
	s = enum_find(&en_settled, status->via.str.ptr, status->via.str.size);
	if (t < 0 || s < 0 || acc_settled[t] != (enum settled)s)
		return vctx_fail(v, ERR_INVALID_FIELD, "settled_status",
		    "does not agree with accommodation_type");
	return 0;
}

static int
publish_rule(struct vctx *v, const msgpack_object *map)
{
	const msgpack_object	*type, *purpose, *created, *expires;
	int			 rt, pu;

	type = map_get(map, "type");
	rt = cc_rtype_parse(type->via.str.ptr, type->via.str.size);
	purpose = map_get(map, "purpose");
	pu = cc_purpose_parse(purpose->via.str.ptr, purpose->via.str.size);
	if (rt >= 0 && pu >= 0 && !(schema_rtype[rt].purposes & (1u << pu)))
		return vctx_fail(v, ERR_INVALID_FIELD, "purpose",
		    "a %s is not sent for %s", cc_rtype_name((enum cc_rtype)rt),
		    cc_purpose_name((enum cc_purpose)pu));
	if (rt >= 0 && proto_rtype_direct_only((enum cc_rtype)rt) &&
	    map_get(map, "to") == NULL)
		return vctx_fail(v, ERR_MISSING_FIELD, "to",
		    "a %s goes direct to named agencies",
		    cc_rtype_name((enum cc_rtype)rt));
	created = map_get(map, "created");
	expires = map_get(map, "expires");
	if (expires != NULL && !after(expires, created))
		return vctx_fail(v, ERR_INVALID_FIELD, "expires",
		    "must be after created");
	return 0;
}

/*
 * DESIGN §5: at most 24 months apart, and explicit consent for special
 * category data.  Twenty-four months from the 29th of February end on the
 * last day of the February two years on.
 */
static int
grant_rule(struct vctx *v, const msgpack_object *map)
{
	const msgpack_object	*from, *until, *explicit, *cats;
	struct cc_tm		 t;
	int64_t			 tfrom, tuntil;

	from = map_get(map, "valid_from");
	until = map_get(map, "valid_until");
	if (time_parse(from->via.str.ptr, from->via.str.size, &t) == -1 ||
	    cc_time_parse(until->via.str.ptr, until->via.str.size,
	    &tuntil) == -1)
		return vctx_fail(v, ERR_INVALID_FIELD, "valid_from",
		    "not a time");
	tfrom = tm_epoch_ms(&t);
	if (tuntil <= tfrom)
		return vctx_fail(v, ERR_INVALID_FIELD, "valid_until",
		    "must be after valid_from");
	t.year += 2;
	if (t.day > days_in_month(t.year, t.mon))
		t.day = days_in_month(t.year, t.mon);
	if (tuntil > tm_epoch_ms(&t))
		return vctx_fail(v, ERR_INVALID_FIELD, "valid_until",
		    "more than 24 months after valid_from");

	explicit = map_get(map, "explicit");
	cats = map_get(map, "categories");
	if ((proto_catset(cats) & CATSET_EXPLICIT) != 0 &&
	    (explicit == NULL || !explicit->via.boolean))
		return vctx_fail(v, ERR_INVALID_FIELD, "explicit",
		    "treatment-clinical and narrative need explicit consent");
	return 0;
}

/* Withdraw one consent by cid, or all of a subject's: exactly one. */
static int
withdraw_rule(struct vctx *v, const msgpack_object *map)
{
	bool	cid, subject;

	cid = map_get(map, "cid") != NULL;
	subject = map_get(map, "subject") != NULL;
	if (!cid && !subject)
		return vctx_fail(v, ERR_MISSING_FIELD, "cid",
		    "give cid or subject");
	if (cid && subject)
		return vctx_fail(v, ERR_INVALID_FIELD, "subject",
		    "give cid or subject, not both");
	return 0;
}
