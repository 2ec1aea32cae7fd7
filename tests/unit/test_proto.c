/*
 * test_proto.c - decoding and validation of every op and record type
 * (DESIGN §4, §7): one valid example each, and for every rule a refusal
 * with its exact code and field path.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_testutil.h"

/* Table rows leave their optional trailing members out. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct mutation {
	const char	*path;
	const char	*val;		/* NULL deletes */
};

struct refusal {
	const char	*example;
	struct mutation	 m;
	enum cc_err	 code;
	const char	*field;
	struct mutation	 m2;		/* a second change, optional */
};

#define DEL	NULL

static void	apply(json_t *, const struct mutation *);
static void	record_of(json_t *, msgpack_sbuffer *);
static json_t	*reversed(json_t *);
static void	float32_at(msgpack_object *, const char *);

static void
apply(json_t *doc, const struct mutation *m)
{
	if (m->path != NULL)
		tset(doc, m->path, m->val);
}

Test(proto, every_example_is_valid)
{
	size_t	i;

	for (i = 0; i < NITEMS(examples); i++) {
		json_t *doc = texample(examples[i].name, true);

		texpect_ok(doc, examples[i].name);
		json_decref(doc);
	}
}

Test(proto, every_op_has_an_example_decoding_to_it)
{
	int	op;
	size_t	i;

	for (op = 0; op < OP__COUNT; op++) {
		bool	found = false;

		for (i = 0; i < NITEMS(examples) && !found; i++) {
			json_t		*doc = texample(examples[i].name, true);
			struct cc_msg	*m = NULL;
			struct cc_error	 e;

			if (tdecode(doc, &m, &e) == 0 &&
			    proto_op(m) == (enum cc_op)op)
				found = true;
			proto_msg_destroy(&m);
			json_decref(doc);
		}
		cr_expect(found, "no valid example for op %s",
		    cc_op_name((enum cc_op)op));
	}
}

/* Changes that keep a message valid: the accepted written forms. */
static const struct {
	const char	*example;
	struct mutation	 m, m2;
} accepted_variants[] = {
	{ "release-plan", { "subject", "{'pnc':'0273319Z'}" } },
	{ "release-plan", { "subject", "{'pnc':'20020073319Z'}" } },
	{ "release-plan", { "subject", "{'pnc':'79/163001B'}" } },
	{ "release-plan", { "subject", "{'pnc':'2004/0012345d'}" } },
	{ "release-plan", { "subject", "{'crn':'X123456'}" } },
	{ "release-plan", { "mid", "'6F1C2D3E-4A5B-4C6D-8E9F-0A1B2C3D4E5F'" } },
	{ "release-plan", { "created", "'2026-05-01T09:00:00.123456Z'" } },
	{ "release-plan", { "created", "'2026-05-01T09:00:00+00:00'" } },
	{ "release-plan", { "body.person.dob", "'2000-02-29'" } },
	{ "release-plan", { "body.dose_mg", "0" } },
	{ "release-plan", { "body.dose_mg", "10000" } },
	{ "release-plan", { "body.dose_mg", "37.5" } },
	{ "release-plan", { "body.last_dose", "'2026-12-19'" } },
	{ "release-plan", { "body.person.family_name", "@35" } },
	{ "release-plan", { "body.notes", "@1000" } },
	{ "release-plan", { "body.notes", "'Line one.\\nLine two.\\tTabbed.'" } },
	{ "release-plan", { "body.person.family_name", "'Zo\u00eb O\\u0027Brien'" } },
	{ "release-plan", { "body.housing_actions", "[]" } },
	{ "release-plan", { "body", "{'person':{}}" } },
	{ "release-plan", { "expires", DEL } },
	{ "release-plan", { "to", "['cjit.leeds','probation.leeds']" } },
	{ "handover", { "body.prison_treatment", "[]" } },
	{ "handover", { "body.prison_treatment.0.end", "'2026-01-05'" } },
	{ "referral", { "body.support_needs", "[]" } },
	{ "referral", { "body", "{'person':{},'referral_service':'treatment'}" },
	  { "purpose", "'treatment'" } },
	{ "housing-status", { "body.person", DEL } },
	{ "housing-status", { "body.settled_status", DEL } },
	{ "housing-status", { "body.accommodation_type", "'rough-sleeping'" },
	  { "body.settled_status", "'homeless'" } },
	{ "consent-grant", { "deny", "[]" } },
	{ "consent-grant", { "deny", DEL } },
	{ "consent-grant", { "deny", "[{}]" } },
	{ "consent-grant", { "valid_until", "'2028-05-01T00:00:00Z'" } },
	{ "consent-grant", { "valid_from", "'2024-02-29T12:00:00Z'" },
	  { "valid_until", "'2026-02-28T12:00:00Z'" } },
	{ "consent-grant", { "categories", "['identity']" },
	  { "explicit", DEL } },
	{ "consent-grant", { "evidence.form_sha256", DEL },
	  { "evidence.reference", DEL } },
	{ "consent-withdraw", { "cid", DEL },
	  { "subject", "{'pnc':'2004/0012345D'}" } },
	{ "consent-withdraw", { "reason", DEL } },
	{ "consent-refuse", { "evidence", DEL } },
	{ "hello", { "receive", DEL } },
	{ "hello", { "receive", "false" } },
	{ "subscribe", { "types", "[]" }, { "areas", "[]" } },
	{ "subscribe", { "areas", "['S12000036','N09000003']" } },
	{ "ack", { "dseq", "0" } },
	{ "ack", { "dseq", "9007199254740991" } },
	{ "deliver", { "subject", "{'pnc':'2004/0012345D'}" } },
	{ "deliver", { "withheld_categories", "[]" } },
	{ "deliver", { "withheld_categories", DEL } },
	{ "deliver", { "body", "{}" } },
	{ "receipt", { "reason", DEL }, { "state", "'delivered'" } },
	{ "status", { "recipients", "[]" } },
	{ "error", { "re", DEL }, { "field", "''" } },
};

Test(proto, accepted_variants_are_valid)
{
	size_t	i;
	char	what[64];

	for (i = 0; i < NITEMS(accepted_variants); i++) {
		json_t *doc = texample(accepted_variants[i].example, true);

		apply(doc, &accepted_variants[i].m);
		apply(doc, &accepted_variants[i].m2);
		(void)snprintf(what, sizeof(what), "variant %zu (%s %s)", i,
		    accepted_variants[i].example, accepted_variants[i].m.path);
		texpect_ok(doc, what);
		json_decref(doc);
	}
}

/* Every rule, as a change to a valid example and its exact refusal. */
static const struct refusal refusals[] = {
	/* Header: v, then op. */
	{ "hello", { "v", DEL }, ERR_MISSING_FIELD, "v" },
	{ "hello", { "v", "2" }, ERR_UNSUPPORTED_VERSION, "v" },
	{ "hello", { "v", "0" }, ERR_UNSUPPORTED_VERSION, "v" },
	{ "hello", { "v", "'1'" }, ERR_UNSUPPORTED_VERSION, "v" },
	{ "hello", { "v", "1.0" }, ERR_UNSUPPORTED_VERSION, "v" },
	{ "hello", { "op", DEL }, ERR_MISSING_FIELD, "op" },
	{ "hello", { "op", "'fly'" }, ERR_UNKNOWN_OP, "op" },
	{ "hello", { "op", "'HELLO'" }, ERR_UNKNOWN_OP, "op" },
	{ "hello", { "op", "3" }, ERR_UNKNOWN_OP, "op" },
	{ "hello", { "v", "2" }, ERR_UNSUPPORTED_VERSION, "v",
	  { "op", "'fly'" } },
	{ "hello", { "op", "'fly'" }, ERR_MISSING_FIELD, "v", { "v", DEL } },
	/* Order: unknown keys, then fields in schema order. */
	{ "release-plan", { "priority", "'high'" }, ERR_UNKNOWN_FIELD,
	  "priority", { "subject", DEL } },
	{ "release-plan", { "mid", "'x'" }, ERR_INVALID_FIELD, "mid",
	  { "subject", DEL } },
	{ "release-plan", { "subject", DEL }, ERR_MISSING_FIELD, "subject",
	  { "body.release_date", "'2026-02-30'" } },
	/* hello */
	{ "hello", { "agent", DEL }, ERR_MISSING_FIELD, "agent" },
	{ "hello", { "agent", "@65" }, ERR_INVALID_FIELD, "agent" },
	{ "hello", { "agent", "''" }, ERR_INVALID_FIELD, "agent" },
	{ "hello", { "receive", "'no'" }, ERR_INVALID_FIELD, "receive" },
	{ "hello", { "receive", "0" }, ERR_INVALID_FIELD, "receive" },
	{ "hello", { "colour", "'red'" }, ERR_UNKNOWN_FIELD, "colour" },
	/* subscribe */
	{ "subscribe", { "types", DEL }, ERR_MISSING_FIELD, "types" },
	{ "subscribe", { "areas", DEL }, ERR_MISSING_FIELD, "areas" },
	{ "subscribe", { "types.1", "'bogus'" }, ERR_INVALID_FIELD, "types.1" },
	{ "subscribe", { "types", "'release-plan'" }, ERR_INVALID_FIELD,
	  "types" },
	{ "subscribe", { "types.1", "'release-plan'" }, ERR_INVALID_FIELD,
	  "types.1" },
	{ "subscribe", { "areas.0", "'E0800003'" }, ERR_INVALID_FIELD,
	  "areas.0" },
	{ "subscribe", { "areas.1", "'X08000035'" }, ERR_INVALID_FIELD,
	  "areas.1" },
	{ "subscribe", { "areas.1", "'E08000035'" }, ERR_INVALID_FIELD,
	  "areas.1" },
	/* publish envelope */
	{ "release-plan", { "mid", DEL }, ERR_MISSING_FIELD, "mid" },
	{ "release-plan", { "mid", "'6f1c2d3e4a5b4c6d8e9f0a1b2c3d4e5f'" },
	  ERR_INVALID_FIELD, "mid" },
	{ "release-plan", { "mid", "'6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5g'" },
	  ERR_INVALID_FIELD, "mid" },
	{ "release-plan", { "type", DEL }, ERR_MISSING_FIELD, "type" },
	{ "release-plan", { "type", "'letter'" }, ERR_INVALID_FIELD, "type" },
	{ "release-plan", { "purpose", DEL }, ERR_MISSING_FIELD, "purpose" },
	{ "release-plan", { "purpose", "'curiosity'" }, ERR_INVALID_FIELD,
	  "purpose" },
	{ "release-plan", { "subject", DEL }, ERR_MISSING_FIELD, "subject" },
	{ "release-plan", { "subject", "{}" }, ERR_INVALID_FIELD, "subject" },
	{ "release-plan", { "subject", "'2004/0012345D'" }, ERR_INVALID_FIELD,
	  "subject" },
	{ "release-plan", { "subject.pnc", "'2004/0012345E'" },
	  ERR_INVALID_FIELD, "subject.pnc" },
	{ "release-plan", { "subject.pnc", "'2004-0012345D'" },
	  ERR_INVALID_FIELD, "subject.pnc" },
	{ "release-plan", { "subject.noms", "'A12BC'" }, ERR_INVALID_FIELD,
	  "subject.noms" },
	{ "release-plan", { "subject.noms", "'a1234bc'" }, ERR_INVALID_FIELD,
	  "subject.noms" },
	{ "release-plan", { "subject.crn", "'x123456'" }, ERR_INVALID_FIELD,
	  "subject.crn" },
	{ "release-plan", { "subject.crn", "'X12345'" }, ERR_INVALID_FIELD,
	  "subject.crn" },
	{ "release-plan", { "subject.uln", "'1234'" }, ERR_UNKNOWN_FIELD,
	  "subject.uln" },
	{ "release-plan", { "area", DEL }, ERR_MISSING_FIELD, "area" },
	{ "release-plan", { "area", "'e08000035'" }, ERR_INVALID_FIELD, "area" },
	{ "release-plan", { "to", "[]" }, ERR_INVALID_FIELD, "to" },
	{ "release-plan", { "to", "'cjit.leeds'" }, ERR_INVALID_FIELD, "to" },
	{ "release-plan", { "to", "['cjit.leeds','CJIT.Leeds']" },
	  ERR_INVALID_FIELD, "to.1" },
	{ "release-plan", { "to", "['cjit.leeds','ab']" }, ERR_INVALID_FIELD,
	  "to.1" },
	{ "release-plan", { "to", "['cjit.leeds','cjit.leeds']" },
	  ERR_INVALID_FIELD, "to.1" },
	{ "release-plan", { "created", DEL }, ERR_MISSING_FIELD, "created" },
	{ "release-plan", { "created", "'2026-05-01 09:00:00Z'" },
	  ERR_INVALID_FIELD, "created" },
	{ "release-plan", { "created", "'2026-05-01T09:00:00+01:00'" },
	  ERR_INVALID_FIELD, "created" },
	{ "release-plan", { "created", "'2026-05-01T09:00:00-00:00'" },
	  ERR_INVALID_FIELD, "created" },
	{ "release-plan", { "created", "'2026-05-01T09:00:00'" },
	  ERR_INVALID_FIELD, "created" },
	{ "release-plan", { "created", "'2026-05-01T24:00:00Z'" },
	  ERR_INVALID_FIELD, "created" },
	{ "release-plan", { "created", "'2026-05-01T09:00:00.Z'" },
	  ERR_INVALID_FIELD, "created" },
	{ "release-plan", { "expires", "'2026-04-01T09:00:00Z'" },
	  ERR_INVALID_FIELD, "expires" },
	{ "release-plan", { "expires", "'2026-05-01T09:00:00Z'" },
	  ERR_INVALID_FIELD, "expires" },
	/* DESIGN §4.4: each record type travels for its own purpose(s). */
	{ "release-plan", { "purpose", "'housing-support'" },
	  ERR_INVALID_FIELD, "purpose" },
	{ "release-plan", { "purpose", "'offender-management'" },
	  ERR_INVALID_FIELD, "purpose" },
	{ "housing-status", { "purpose", "'continuity-of-care'" },
	  ERR_INVALID_FIELD, "purpose" },
	{ "handover", { "purpose", "'treatment'" },
	  ERR_INVALID_FIELD, "purpose" },
	{ "release-plan", { "body", DEL }, ERR_MISSING_FIELD, "body" },
	{ "release-plan", { "body", "[]" }, ERR_INVALID_FIELD, "body" },
	{ "release-plan", { "priority", "'high'" }, ERR_UNKNOWN_FIELD,
	  "priority" },
	{ "handover", { "to", DEL }, ERR_MISSING_FIELD, "to" },
	{ "referral", { "to", DEL }, ERR_MISSING_FIELD, "to" },
	/* release-plan body */
	{ "release-plan", { "body.favourite_colour", "'blue'" },
	  ERR_UNKNOWN_FIELD, "body.favourite_colour" },
	{ "release-plan", { "body.person", DEL }, ERR_MISSING_FIELD,
	  "body.person" },
	{ "release-plan", { "body.person", "'Alex'" }, ERR_INVALID_FIELD,
	  "body.person" },
	{ "release-plan", { "body.person.family_name", "@36" },
	  ERR_INVALID_FIELD, "body.person.family_name" },
	{ "release-plan", { "body.person.given_name", "''" },
	  ERR_INVALID_FIELD, "body.person.given_name" },
	{ "release-plan", { "body.person.given_name", "'A\\u0000B'" },
	  ERR_INVALID_FIELD, "body.person.given_name" },
	{ "release-plan", { "body.person.dob", "'1985-02-29'" },
	  ERR_INVALID_FIELD, "body.person.dob" },
	{ "release-plan", { "body.person.dob", "'1900-02-29'" },
	  ERR_INVALID_FIELD, "body.person.dob" },
	{ "release-plan", { "body.person.dob", "'85-03-14'" },
	  ERR_INVALID_FIELD, "body.person.dob" },
	{ "release-plan", { "body.person.dob", "'1985-3-14'" },
	  ERR_INVALID_FIELD, "body.person.dob" },
	{ "release-plan", { "body.person.nickname", "'Al'" },
	  ERR_UNKNOWN_FIELD, "body.person.nickname" },
	{ "release-plan", { "body.establishment", "'Lei'" }, ERR_INVALID_FIELD,
	  "body.establishment" },
	{ "release-plan", { "body.establishment", "'LEIC'" },
	  ERR_INVALID_FIELD, "body.establishment" },
	{ "release-plan", { "body.release_date", "'2026-02-30'" },
	  ERR_INVALID_FIELD, "body.release_date" },
	{ "release-plan", { "body.release_date", "'2026-04-31'" },
	  ERR_INVALID_FIELD, "body.release_date" },
	{ "release-plan", { "body.release_date", "'2026-00-10'" },
	  ERR_INVALID_FIELD, "body.release_date" },
	{ "release-plan", { "body.release_date", "'2026-12-20T00:00:00Z'" },
	  ERR_INVALID_FIELD, "body.release_date" },
	{ "release-plan", { "body.release_date", "20261220" },
	  ERR_INVALID_FIELD, "body.release_date" },
	{ "release-plan", { "body.on_licence", "'yes'" }, ERR_INVALID_FIELD,
	  "body.on_licence" },
	{ "release-plan", { "body.on_licence", "null" }, ERR_INVALID_FIELD,
	  "body.on_licence" },
	{ "release-plan", { "body.dose_mg", "-1" }, ERR_INVALID_FIELD,
	  "body.dose_mg" },
	{ "release-plan", { "body.dose_mg", "10000.5" }, ERR_INVALID_FIELD,
	  "body.dose_mg" },
	{ "release-plan", { "body.dose_mg", "'60'" }, ERR_INVALID_FIELD,
	  "body.dose_mg" },
	{ "release-plan", { "body.last_dose", "'yesterday'" },
	  ERR_INVALID_FIELD, "body.last_dose" },
	{ "release-plan", { "body.housing_actions", "'call council'" },
	  ERR_INVALID_FIELD, "body.housing_actions" },
	{ "release-plan", { "body.housing_actions.1", "''" },
	  ERR_INVALID_FIELD, "body.housing_actions.1" },
	{ "release-plan", { "body.housing_actions.1", "7" },
	  ERR_INVALID_FIELD, "body.housing_actions.1" },
	{ "release-plan", { "body.housing_actions.0", "@1001" },
	  ERR_INVALID_FIELD, "body.housing_actions.0" },
	{ "release-plan", { "body.notes", "@1001" }, ERR_INVALID_FIELD,
	  "body.notes" },
	{ "release-plan", { "body.release_address.postcode", "@17" },
	  ERR_INVALID_FIELD, "body.release_address.postcode" },
	{ "release-plan", { "body.release_address.county", "'West Yorks'" },
	  ERR_UNKNOWN_FIELD, "body.release_address.county" },
	{ "release-plan", { "body.offender_manager.name", "@36" },
	  ERR_INVALID_FIELD, "body.offender_manager.name" },
	{ "release-plan", { "body.offender_manager.phone", "@41" },
	  ERR_INVALID_FIELD, "body.offender_manager.phone" },
	{ "release-plan", { "body.keyworker.role", "'keyworker'" },
	  ERR_UNKNOWN_FIELD, "body.keyworker.role" },
	{ "release-plan", { "body.first_appointment.at", "'2026-12-21'" },
	  ERR_INVALID_FIELD, "body.first_appointment.at" },
	{ "release-plan", { "body.first_appointment.location", "@201" },
	  ERR_INVALID_FIELD, "body.first_appointment.location" },
	/* handover body */
	{ "handover", { "body.person", DEL }, ERR_MISSING_FIELD,
	  "body.person" },
	{ "handover", { "body.dir_ref", "@65" }, ERR_INVALID_FIELD,
	  "body.dir_ref" },
	{ "handover", { "body.on_licence", "true" }, ERR_UNKNOWN_FIELD,
	  "body.on_licence" },
	{ "handover", { "body.prison_treatment", "{}" }, ERR_INVALID_FIELD,
	  "body.prison_treatment" },
	{ "handover", { "body.prison_treatment.0.start", "'2026-13-01'" },
	  ERR_INVALID_FIELD, "body.prison_treatment.0.start" },
	{ "handover", { "body.prison_treatment.1.modality", DEL },
	  ERR_MISSING_FIELD, "body.prison_treatment.1.modality" },
	{ "handover", { "body.prison_treatment.1.modality", "'hugs'" },
	  ERR_INVALID_FIELD, "body.prison_treatment.1.modality" },
	{ "handover", { "body.prison_treatment.0.end", "'2026-01-04'" },
	  ERR_INVALID_FIELD, "body.prison_treatment.0.end" },
	{ "handover", { "body.prison_treatment.0.dose", "30" },
	  ERR_UNKNOWN_FIELD, "body.prison_treatment.0.dose" },
	{ "handover", { "body.prison_treatment.1", "'detox'" },
	  ERR_INVALID_FIELD, "body.prison_treatment.1" },
	{ "handover", { "body.gp_practice", "'Park Surgery'" },
	  ERR_INVALID_FIELD, "body.gp_practice" },
	/* referral body */
	{ "referral", { "body.referral_service", DEL }, ERR_MISSING_FIELD,
	  "body.referral_service" },
	{ "referral", { "body.person", DEL }, ERR_MISSING_FIELD,
	  "body.person" },
	{ "referral", { "body.household.adults", "21" }, ERR_INVALID_FIELD,
	  "body.household.adults" },
	{ "referral", { "body.household.dependants", "-1" }, ERR_INVALID_FIELD,
	  "body.household.dependants" },
	{ "referral", { "body.household.adults", "1.0" }, ERR_INVALID_FIELD,
	  "body.household.adults" },
	{ "referral", { "body.household.pets", "1" }, ERR_UNKNOWN_FIELD,
	  "body.household.pets" },
	{ "referral", { "body.support_needs.2", "'debt'" }, ERR_INVALID_FIELD,
	  "body.support_needs.2" },
	{ "referral", { "body.support_needs.3", "'substance-misuse'" },
	  ERR_INVALID_FIELD, "body.support_needs.3" },
	{ "referral", { "body.support_needs.1", "'gambling'" },
	  ERR_INVALID_FIELD, "body.support_needs.1" },
	{ "referral", { "body.local_connection", "'X12345678'" },
	  ERR_INVALID_FIELD, "body.local_connection" },
	{ "referral", { "body.risk_flags.arson", "'no'" }, ERR_INVALID_FIELD,
	  "body.risk_flags.arson" },
	{ "referral", { "body.risk_flags.theft", "true" }, ERR_UNKNOWN_FIELD,
	  "body.risk_flags.theft" },
	{ "referral", { "body.required_from", "'2026-02-29'" },
	  ERR_INVALID_FIELD, "body.required_from" },
	{ "referral", { "body.client_phone", "@41" }, ERR_INVALID_FIELD,
	  "body.client_phone" },
	/* housing-status body */
	{ "housing-status", { "body.effective_date", DEL }, ERR_MISSING_FIELD,
	  "body.effective_date" },
	{ "housing-status", { "body.accommodation_type", DEL },
	  ERR_MISSING_FIELD, "body.accommodation_type" },
	{ "housing-status", { "body.settled_status", "'homeless'" },
	  ERR_INVALID_FIELD, "body.settled_status" },
	{ "housing-status", { "body.settled_status", "'housed'" },
	  ERR_INVALID_FIELD, "body.settled_status" },
	{ "housing-status", { "body.address.line1", "@201" },
	  ERR_INVALID_FIELD, "body.address.line1" },
	{ "housing-status", { "body.notes", "'x'" }, ERR_UNKNOWN_FIELD,
	  "body.notes" },
	/* consent-grant */
	{ "consent-grant", { "cid", DEL }, ERR_MISSING_FIELD, "cid" },
	{ "consent-grant", { "cid", "'d4c3b2a1'" }, ERR_INVALID_FIELD, "cid" },
	{ "consent-grant", { "subject", DEL }, ERR_MISSING_FIELD, "subject" },
	{ "consent-grant", { "subject.pnc", "'2004/0012345A'" },
	  ERR_INVALID_FIELD, "subject.pnc" },
	{ "consent-grant", { "recipients", DEL }, ERR_MISSING_FIELD,
	  "recipients" },
	{ "consent-grant", { "recipients", "[]" }, ERR_INVALID_FIELD,
	  "recipients" },
	{ "consent-grant", { "recipients.2", "'All Housing'" },
	  ERR_INVALID_FIELD, "recipients.2" },
	{ "consent-grant", { "recipients.2", "'cjit.leeds'" },
	  ERR_INVALID_FIELD, "recipients.2" },
	{ "consent-grant", { "purposes", "[]" }, ERR_INVALID_FIELD,
	  "purposes" },
	{ "consent-grant", { "purposes.0", "'spying'" }, ERR_INVALID_FIELD,
	  "purposes.0" },
	{ "consent-grant", { "categories", DEL }, ERR_MISSING_FIELD,
	  "categories" },
	{ "consent-grant", { "categories", "[]" }, ERR_INVALID_FIELD,
	  "categories" },
	{ "consent-grant", { "categories.1", "'everything'" },
	  ERR_INVALID_FIELD, "categories.1" },
	{ "consent-grant", { "explicit", "false" }, ERR_INVALID_FIELD,
	  "explicit" },
	{ "consent-grant", { "explicit", DEL }, ERR_INVALID_FIELD, "explicit" },
	{ "consent-grant", { "explicit", "'yes'" }, ERR_INVALID_FIELD,
	  "explicit" },
	{ "consent-grant", { "categories", "['identity','narrative']" },
	  ERR_INVALID_FIELD, "explicit", { "explicit", "false" } },
	{ "consent-grant", { "valid_from", DEL }, ERR_MISSING_FIELD,
	  "valid_from" },
	{ "consent-grant", { "valid_until", DEL }, ERR_MISSING_FIELD,
	  "valid_until" },
	{ "consent-grant", { "valid_until", "'2026-04-30T00:00:00Z'" },
	  ERR_INVALID_FIELD, "valid_until" },
	{ "consent-grant", { "valid_until", "'2026-05-01T00:00:00Z'" },
	  ERR_INVALID_FIELD, "valid_until" },
	{ "consent-grant", { "valid_until", "'2028-05-01T00:00:01Z'" },
	  ERR_INVALID_FIELD, "valid_until" },
	{ "consent-grant", { "valid_until", "'2028-06-01T00:00:00Z'" },
	  ERR_INVALID_FIELD, "valid_until" },
	{ "consent-grant", { "valid_from", "'2026-05-01'" }, ERR_INVALID_FIELD,
	  "valid_from" },
	{ "consent-grant", { "deny", "{}" }, ERR_INVALID_FIELD, "deny" },
	{ "consent-grant", { "deny.0.categories.0", "'bad'" },
	  ERR_INVALID_FIELD, "deny.0.categories.0" },
	{ "consent-grant", { "deny.0.recipients.0", "'Probation'" },
	  ERR_INVALID_FIELD, "deny.0.recipients.0" },
	{ "consent-grant", { "deny.0.recipients", "[]" }, ERR_INVALID_FIELD,
	  "deny.0.recipients" },
	{ "consent-grant", { "deny.0.colour", "'red'" }, ERR_UNKNOWN_FIELD,
	  "deny.0.colour" },
	{ "consent-grant", { "evidence", DEL }, ERR_MISSING_FIELD,
	  "evidence" },
	{ "consent-grant", { "evidence.method", DEL }, ERR_MISSING_FIELD,
	  "evidence.method" },
	{ "consent-grant", { "evidence.method", "'telepathy'" },
	  ERR_INVALID_FIELD, "evidence.method" },
	{ "consent-grant", { "evidence.form", DEL }, ERR_MISSING_FIELD,
	  "evidence.form" },
	{ "consent-grant", { "evidence.form", "@201" }, ERR_INVALID_FIELD,
	  "evidence.form" },
	{ "consent-grant", { "evidence.form_sha256", "'abc'" },
	  ERR_INVALID_FIELD, "evidence.form_sha256" },
	{ "consent-grant", { "evidence.worker", DEL }, ERR_MISSING_FIELD,
	  "evidence.worker" },
	{ "consent-grant", { "evidence.worker", "@101" }, ERR_INVALID_FIELD,
	  "evidence.worker" },
	{ "consent-grant", { "evidence.captured", DEL }, ERR_MISSING_FIELD,
	  "evidence.captured" },
	{ "consent-grant", { "evidence.captured", "'now'" },
	  ERR_INVALID_FIELD, "evidence.captured" },
	{ "consent-grant", { "evidence.signature", "'x'" },
	  ERR_UNKNOWN_FIELD, "evidence.signature" },
	/* consent-withdraw */
	{ "consent-withdraw", { "cid", DEL }, ERR_MISSING_FIELD, "cid" },
	{ "consent-withdraw", { "subject", "{'pnc':'2004/0012345D'}" },
	  ERR_INVALID_FIELD, "subject" },
	{ "consent-withdraw", { "cid", DEL }, ERR_INVALID_FIELD, "subject",
	  { "subject", "{}" } },
	{ "consent-withdraw", { "captured", DEL }, ERR_MISSING_FIELD,
	  "captured" },
	{ "consent-withdraw", { "worker", DEL }, ERR_MISSING_FIELD, "worker" },
	{ "consent-withdraw", { "reason", "@1001" }, ERR_INVALID_FIELD,
	  "reason" },
	{ "consent-withdraw", { "evidence", "{}" }, ERR_UNKNOWN_FIELD,
	  "evidence" },
	/* consent-refuse */
	{ "consent-refuse", { "cid", DEL }, ERR_MISSING_FIELD, "cid" },
	{ "consent-refuse", { "subject", DEL }, ERR_MISSING_FIELD, "subject" },
	{ "consent-refuse", { "subject.noms", "'A1234B'" }, ERR_INVALID_FIELD,
	  "subject.noms" },
	{ "consent-refuse", { "captured", DEL }, ERR_MISSING_FIELD,
	  "captured" },
	{ "consent-refuse", { "worker", DEL }, ERR_MISSING_FIELD, "worker" },
	{ "consent-refuse", { "evidence.method", "'shrug'" },
	  ERR_INVALID_FIELD, "evidence.method" },
	/* ack, track */
	{ "ack", { "dseq", DEL }, ERR_MISSING_FIELD, "dseq" },
	{ "ack", { "dseq", "-1" }, ERR_INVALID_FIELD, "dseq" },
	{ "ack", { "dseq", "'42'" }, ERR_INVALID_FIELD, "dseq" },
	{ "ack", { "dseq", "4.2" }, ERR_INVALID_FIELD, "dseq" },
	{ "ack", { "dseq", "9007199254740992" }, ERR_INVALID_FIELD, "dseq" },
	{ "track", { "mid", DEL }, ERR_MISSING_FIELD, "mid" },
	{ "track", { "mid", "'x'" }, ERR_INVALID_FIELD, "mid" },
	/* broker -> agent */
	{ "welcome", { "agency", "'CJIT'" }, ERR_INVALID_FIELD, "agency" },
	{ "welcome", { "type", "'alien'" }, ERR_INVALID_FIELD, "type" },
	{ "welcome", { "max_size", "0" }, ERR_INVALID_FIELD, "max_size" },
	{ "welcome", { "time", DEL }, ERR_MISSING_FIELD, "time" },
	{ "subscribed", { "types", DEL }, ERR_MISSING_FIELD, "types" },
	{ "subscribed", { "areas.0", "'Leeds'" }, ERR_INVALID_FIELD,
	  "areas.0" },
	{ "accepted", { "mid", DEL }, ERR_MISSING_FIELD, "mid" },
	{ "accepted", { "cid", "'x'" }, ERR_UNKNOWN_FIELD, "cid" },
	{ "consent-recorded", { "version", "-1" }, ERR_INVALID_FIELD,
	  "version" },
	{ "consent-recorded", { "cid", DEL }, ERR_MISSING_FIELD, "cid" },
	{ "status", { "recipients.0.state", "'lost'" }, ERR_INVALID_FIELD,
	  "recipients.0.state" },
	{ "status", { "recipients.1.agency", DEL }, ERR_MISSING_FIELD,
	  "recipients.1.agency" },
	{ "status", { "recipients.1.reason", "'bad-luck'" },
	  ERR_INVALID_FIELD, "recipients.1.reason" },
	{ "deliver", { "dseq", DEL }, ERR_MISSING_FIELD, "dseq" },
	{ "deliver", { "from", "'Carat'" }, ERR_INVALID_FIELD, "from" },
	{ "deliver", { "consent.version", DEL }, ERR_MISSING_FIELD,
	  "consent.version" },
	{ "deliver", { "consent", DEL }, ERR_MISSING_FIELD, "consent" },
	{ "deliver", { "withheld_categories.0", "'x'" }, ERR_INVALID_FIELD,
	  "withheld_categories.0" },
	{ "deliver", { "body.favourite_colour", "'blue'" }, ERR_UNKNOWN_FIELD,
	  "body.favourite_colour" },
	{ "deliver", { "body.release_date", "'2026-02-30'" },
	  ERR_INVALID_FIELD, "body.release_date" },
	{ "deliver", { "subject.pnc", "'2004/0012345E'" }, ERR_INVALID_FIELD,
	  "subject.pnc" },
	{ "deliver", { "expires", "'2026-06-01T00:00:00Z'" },
	  ERR_UNKNOWN_FIELD, "expires" },
	{ "receipt", { "state", "'x'" }, ERR_INVALID_FIELD, "state" },
	{ "receipt", { "at", DEL }, ERR_MISSING_FIELD, "at" },
	{ "error", { "code", "'oops'" }, ERR_INVALID_FIELD, "code" },
	{ "error", { "code", "'ok'" }, ERR_INVALID_FIELD, "code" },
	{ "error", { "code", DEL }, ERR_MISSING_FIELD, "code" },
	{ "error", { "re", "@80" }, ERR_INVALID_FIELD, "re" },
};

Test(proto, every_rule_refuses_with_code_and_field)
{
	size_t	i;
	char	what[96];

	for (i = 0; i < NITEMS(refusals); i++) {
		const struct refusal *r = &refusals[i];
		json_t *doc = texample(r->example, true);

		apply(doc, &r->m);
		apply(doc, &r->m2);
		(void)snprintf(what, sizeof(what), "refusal %zu (%s %s)", i,
		    r->example, r->m.path);
		texpect_err(doc, r->code, r->field, what);
		json_decref(doc);
	}
}

/* DESIGN §4.3, restated here so the schema is checked against it. */
static const struct {
	const char	*example;
	const char	*path;
	bool		 list;		/* a one-item list of the value */
	const char	*values[16];
} enums[] = {
	{ "release-plan", "body.person.sex", false, { "M", "F", "X", "U" } },
	{ "release-plan", "body.accommodation_need", false,
	  { "nfa-urgent", "housing-problem", "no-problem" } },
	{ "release-plan", "body.accommodation_on_release", false,
	  { "rough-sleeping", "sofa-surfing", "hostel", "bed-and-breakfast",
	    "approved-premises", "transitional", "supported", "social-tenant",
	    "private-tenant", "owner", "family-settled", "institution",
	    "custody", "unknown" } },
	{ "referral", "body.current_accommodation", false,
	  { "rough-sleeping", "sofa-surfing", "hostel", "bed-and-breakfast",
	    "approved-premises", "transitional", "supported", "social-tenant",
	    "private-tenant", "owner", "family-settled", "institution",
	    "custody", "unknown" } },
	{ "release-plan", "body.release_type", false,
	  { "licence", "hdc", "sentence-expiry", "court", "parole", "other" } },
	{ "release-plan", "body.treatment_modality", false,
	  { "prescribing", "psychosocial", "detox", "residential", "none" } },
	{ "handover", "body.prison_treatment.0.modality", false,
	  { "prescribing", "psychosocial", "detox", "residential", "none" } },
	{ "release-plan", "body.substitute_medication", false,
	  { "methadone", "buprenorphine", "none" } },
	{ "handover", "body.injecting_status", false,
	  { "current", "previous", "never", "declined" } },
	{ "referral", "body.referral_service", false,
	  { "supported-housing", "floating-support", "rent-deposit",
	    "housing-advice", "treatment" } },
	{ "referral", "body.support_needs", true,
	  { "substance-misuse", "mental-health", "physical-access", "debt",
	    "life-skills", "employment" } },
	{ "housing-status", "body.change_reason", false,
	  { "moved-in", "evicted", "abandoned", "returned-to-custody",
	    "tenancy-ended", "other" } },
	{ "handover", "body.handover_status", false,
	  { "offered", "accepted", "declined" } },
	{ "consent-grant", "evidence.method", false,
	  { "written", "verbal-witnessed", "electronic" } },
	{ "consent-grant", "purposes", true,
	  { "continuity-of-care", "housing-support", "offender-management",
	    "treatment" } },
	{ "consent-grant", "categories", true,
	  { "identity", "cj-identifiers", "criminal-justice",
	    "treatment-summary", "treatment-clinical", "housing",
	    "housing-address", "contacts", "narrative" } },
	{ "release-plan", "type", false, { "release-plan" } },
	{ "subscribe", "types", true,
	  { "release-plan", "handover", "referral", "housing-status" } },
	{ "welcome", "type", false,
	  { "prison-carat", "cjit", "probation", "housing-provider",
	    "la-housing", "treatment-provider", "hacs", "broker" } },
	{ "receipt", "state", false,
	  { "queued", "delivered", "withheld", "purged", "expired" } },
	{ "receipt", "reason", false,
	  { "no-consent", "not-permitted", "identity-conflict",
	    "store-unavailable", "retention", "none" } },
	{ "error", "code", false,
	  { "malformed", "unsupported-version", "unknown-op",
	    "missing-field", "unknown-field", "invalid-field", "too-large",
	    "not-permitted", "unknown-recipient", "identity-conflict",
	    "storage-full", "busy" } },
};

Test(proto, every_enum_value_accepted_and_a_wrong_one_refused)
{
	char	val[96], what[128], field[64];
	size_t	i, k;

	for (i = 0; i < NITEMS(enums); i++) {
		for (k = 0; k < 16 && enums[i].values[k] != NULL; k++) {
			json_t *doc = texample(enums[i].example, true);

			(void)snprintf(val, sizeof(val), enums[i].list ?
			    "['%s']" : "'%s'", enums[i].values[k]);
			tset(doc, enums[i].path, val);
			(void)snprintf(what, sizeof(what), "%s = %s",
			    enums[i].path, val);
			texpect_ok(doc, what);
			json_decref(doc);
		}
		json_t *doc = texample(enums[i].example, true);

		tset(doc, enums[i].path, enums[i].list ? "['Wrong']" :
		    "'Wrong'");
		(void)snprintf(field, sizeof(field), enums[i].list ? "%s.0" :
		    "%s", enums[i].path);
		texpect_err(doc, ERR_INVALID_FIELD, field, enums[i].path);
		json_decref(doc);
	}
}

/* DESIGN §4.3: which accommodation types are settled, unsettled, homeless. */
static const struct {
	const char	*type, *status;
} settled[] = {
	{ "rough-sleeping", "homeless" }, { "sofa-surfing", "unsettled" },
	{ "hostel", "unsettled" }, { "bed-and-breakfast", "unsettled" },
	{ "approved-premises", "unsettled" }, { "transitional", "unsettled" },
	{ "supported", "settled" }, { "social-tenant", "settled" },
	{ "private-tenant", "settled" }, { "owner", "settled" },
	{ "family-settled", "settled" }, { "institution", "unsettled" },
	{ "custody", "unsettled" }, { "unknown", "unsettled" },
};

Test(proto, settled_status_must_agree_with_accommodation_type)
{
	static const char *const statuses[] = {
		"settled", "unsettled", "homeless"
	};
	char	type[64], status[64], what[128];
	size_t	i, k;

	for (i = 0; i < NITEMS(settled); i++)
		for (k = 0; k < NITEMS(statuses); k++) {
			json_t *doc = texample("housing-status", true);

			(void)snprintf(type, sizeof(type), "'%s'",
			    settled[i].type);
			(void)snprintf(status, sizeof(status), "'%s'",
			    statuses[k]);
			tset(doc, "body.accommodation_type", type);
			tset(doc, "body.settled_status", status);
			(void)snprintf(what, sizeof(what), "%s/%s",
			    settled[i].type, statuses[k]);
			if (strcmp(settled[i].status, statuses[k]) == 0)
				texpect_ok(doc, what);
			else
				texpect_err(doc, ERR_INVALID_FIELD,
				    "body.settled_status", what);
			json_decref(doc);
		}
}

Test(proto, deliver_body_may_lack_required_fields_but_publish_may_not)
{
	json_t	*doc = texample("deliver", true);

	tset(doc, "type", "'referral'");
	tset(doc, "body", "{'household':{'adults':2}}");
	texpect_ok(doc, "stripped referral");
	tset(doc, "body.household.adults", "30");
	texpect_err(doc, ERR_INVALID_FIELD, "body.household.adults",
	    "stripped referral, bad adults");
	json_decref(doc);

	doc = texample("referral", true);
	tset(doc, "body", "{'household':{'adults':2}}");
	texpect_err(doc, ERR_MISSING_FIELD, "body.person", "publish");
	json_decref(doc);
}

/* The wire form of a PNC and a UUID is canonical after decoding. */
Test(proto, validation_rewrites_identifiers_to_canonical_form)
{
	static const struct {
		const char *in, *out;
	} pncs[] = {
		{ "0273319Z", "2002/0073319Z" },
		{ "20020073319Z", "2002/0073319Z" },
		{ "79/163001B", "1979/0163001B" },
		{ "04/12345d", "2004/0012345D" },
		{ "2004/0012345D", "2004/0012345D" },
	};
	struct cc_subject	 s;
	struct cc_msg		*m = NULL, *m2 = NULL;
	struct cc_error		 e;
	msgpack_sbuffer		 sbuf;
	char			 val[64], mid[40];
	size_t			 i;

	for (i = 0; i < NITEMS(pncs); i++) {
		json_t *doc = texample("release-plan", true);

		(void)snprintf(val, sizeof(val), "'%s'", pncs[i].in);
		tset(doc, "subject.pnc", val);
		tset(doc, "mid", "'6F1C2D3E-4A5B-4C6D-8E9F-0A1B2C3D4E5F'");
		cr_assert_eq(tdecode(doc, &m, &e), 0, "%s: %s", pncs[i].in,
		    e.detail);
		cr_assert_eq(proto_subject(m, &s), 0);
		cr_expect_str_eq(s.pnc, pncs[i].out, "%s", pncs[i].in);
		cr_expect_str_eq(s.noms, "A1234BC");
		cr_expect_str_eq(s.crn, "X123456");

		/* Re-encoding carries the canonical forms. */
		msgpack_sbuffer_init(&sbuf);
		cr_assert_eq(proto_encode(m, &sbuf), 0);
		cr_assert_eq(proto_decode(sbuf.data, sbuf.size,
		    CC_MAX_FRAME_DEFAULT, &m2, &e), 0, "%s", e.detail);
		cr_assert_eq(proto_subject(m2, &s), 0);
		cr_expect_str_eq(s.pnc, pncs[i].out);
		cr_assert_eq(proto_get_str(m2, "mid", mid, sizeof(mid)), 0);
		cr_expect_str_eq(mid, "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f");
		msgpack_sbuffer_destroy(&sbuf);
		proto_msg_destroy(&m);
		proto_msg_destroy(&m2);
		cr_expect_null(m);
		json_decref(doc);
	}
}

Test(proto, refusal_names_the_mid_cid_or_op_it_answers)
{
	static const struct {
		const char	*example;
		struct mutation	 m;
		const char	*re;
	} rows[] = {
		{ "release-plan", { "body.release_date", "'2026-02-30'" },
		  "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f" },
		{ "release-plan", { "v", "2" },
		  "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f" },
		{ "consent-grant", { "explicit", "false" },
		  "d4c3b2a1-0f9e-4d8c-b7a6-958473625140" },
		{ "ack", { "dseq", "-3" }, "ack" },
		{ "hello", { "op", "'fly'" }, "fly" },
		{ "hello", { "op", "7" }, "" },
		{ "release-plan", { "mid", "'bad mid'" }, "publish" },
	};
	struct cc_msg	*m = NULL;
	struct cc_error	 e;
	size_t		 i;

	for (i = 0; i < NITEMS(rows); i++) {
		json_t *doc = texample(rows[i].example, true);

		apply(doc, &rows[i].m);
		cr_expect_eq(tdecode(doc, &m, &e), -1, "row %zu accepted", i);
		cr_expect_str_eq(e.re, rows[i].re, "row %zu", i);
		json_decref(doc);
	}
}

Test(proto, getters_read_top_level_fields)
{
	json_t		*doc = texample("consent-grant", true);
	struct cc_msg	*m = NULL;
	struct cc_error	 e;
	const char	*p;
	size_t		 len;
	char		 small[5];
	bool		 b;
	uint64_t	 u;

	cr_assert_eq(tdecode(doc, &m, &e), 0);
	cr_expect_eq(proto_op(m), OP_CONSENT_GRANT);
	cr_expect_eq(proto_get_str(m, "cid", small, sizeof(small)), 0);
	cr_expect_str_eq(small, "d4c3");
	cr_expect_eq(proto_get_strn(m, "cid", &p, &len), 0);
	cr_expect_eq(len, 36);
	cr_expect_eq(proto_get_bool(m, "explicit", &b), 0);
	cr_expect(b);
	cr_expect_eq(proto_get_u64(m, "explicit", &u), -1);
	cr_expect_eq(proto_get_bool(m, "nothing", &b), -1);
	cr_expect_null(proto_get(m, "nothing"));
	cr_expect_eq(proto_catset(proto_get(m, "categories")),
	    CATSET(CAT_IDENTITY) | CATSET(CAT_CRIMINAL_JUSTICE) |
	    CATSET(CAT_TREATMENT_CLINICAL));
	cr_expect_eq(proto_catset(NULL), 0);
	cr_expect_eq(proto_rtype(m), -1);
	proto_msg_destroy(&m);
	json_decref(doc);

	doc = texample("ack", true);
	cr_assert_eq(tdecode(doc, &m, &e), 0);
	cr_expect_eq(proto_get_u64(m, "dseq", &u), 0);
	cr_expect_eq(u, 42);
	proto_msg_destroy(&m);
	json_decref(doc);

	doc = texample("handover", true);
	cr_assert_eq(tdecode(doc, &m, &e), 0);
	cr_expect_eq(proto_rtype(m), RT_HANDOVER);
	proto_msg_destroy(&m);
	json_decref(doc);
}

/*
 * proto_get_time reads the fields the schema makes times, and only them.
 * Milliseconds computed with python3's datetime, e.g.
 * datetime(2026, 5, 1, 9, tzinfo=timezone.utc).timestamp() * 1000.
 */
static const struct {
	const char	*example;
	struct mutation	 m;
	const char	*field;
	int		 rc;
	int64_t		 ms;
} times[] = {
	{ "release-plan", { NULL }, "created", 0, INT64_C(1777626000000) },
	{ "release-plan", { NULL }, "expires", 0, INT64_C(1780304400000) },
	{ "handover", { NULL }, "created", 0, INT64_C(1777626000250) },
	{ "release-plan", { "created", "'2026-05-01T09:00:00.123456+00:00'" },
	  "created", 0, INT64_C(1777626000123) },
	{ "release-plan", { "created", "'1900-01-01t00:00:00z'" }, "created",
	  0, INT64_C(-2208988800000) },
	{ "consent-grant", { NULL }, "valid_from", 0, INT64_C(1777593600000) },
	{ "consent-grant", { NULL }, "valid_until", 0,
	  INT64_C(1809129600000) },
	{ "consent-withdraw", { NULL }, "captured", 0,
	  INT64_C(1780304400000) },
	{ "consent-refuse", { NULL }, "captured", 0, INT64_C(1780304400000) },
	{ "receipt", { NULL }, "at", 0, INT64_C(1777626001000) },
	{ "welcome", { NULL }, "time", 0, INT64_C(1777626000000) },
	{ "deliver", { NULL }, "created", 0, INT64_C(1777626000000) },
	/* Absent, or not a time in this op's schema. */
	{ "handover", { NULL }, "expires", -1 },
	{ "release-plan", { NULL }, "mid", -1 },
	{ "release-plan", { NULL }, "body", -1 },
	{ "release-plan", { NULL }, "release_date", -1 },
	{ "release-plan", { NULL }, "nothing", -1 },
	{ "consent-grant", { NULL }, "captured", -1 },
	{ "consent-grant", { NULL }, "evidence", -1 },
	{ "ack", { NULL }, "created", -1 },
	{ "error", { "detail", "'2026-05-01T09:00:00Z'" }, "detail", -1 },
};

Test(proto, get_time_reads_the_schemas_time_fields)
{
	size_t	i;

	for (i = 0; i < NITEMS(times); i++) {
		json_t		*doc = texample(times[i].example, true);
		struct cc_msg	*m = NULL;
		struct cc_error	 e;
		int64_t		 ms = 7;

		apply(doc, &times[i].m);
		cr_assert_eq(tdecode(doc, &m, &e), 0, "row %zu: %s", i,
		    e.detail);
		cr_expect_eq(proto_get_time(m, times[i].field, &ms),
		    times[i].rc, "row %zu: %s %s", i, times[i].example,
		    times[i].field);
		cr_expect_eq(ms, times[i].rc == 0 ? times[i].ms : 7,
		    "row %zu: %s %s: %lld", i, times[i].example,
		    times[i].field, (long long)ms);
		proto_msg_destroy(&m);
		json_decref(doc);
	}
}

/*
 * DESIGN §5, restated per category: a grant naming treatment-clinical or
 * narrative without `explicit: true` is invalid-field `explicit`; any
 * other category needs no explicit consent.  The broker reads the same
 * set as CATSET_EXPLICIT.
 */
static const struct {
	enum cc_cat	 cat;
	bool		 needs_explicit;
} explicit_cats[] = {
	{ CAT_IDENTITY, false },
	{ CAT_CJ_IDENTIFIERS, false },
	{ CAT_CRIMINAL_JUSTICE, false },
	{ CAT_TREATMENT_SUMMARY, false },
	{ CAT_TREATMENT_CLINICAL, true },
	{ CAT_HOUSING, false },
	{ CAT_HOUSING_ADDRESS, false },
	{ CAT_CONTACTS, false },
	{ CAT_NARRATIVE, true },
};

Test(proto, explicit_consent_is_needed_for_special_categories_only)
{
	static const char *const expl[] = { NULL, "false", "true" };
	cc_catset	want = 0;
	size_t		i, k;
	char		cats[64], what[128];

	cr_assert_eq(NITEMS(explicit_cats), CAT__COUNT);
	for (i = 0; i < NITEMS(explicit_cats); i++) {
		if (explicit_cats[i].needs_explicit)
			want |= CATSET(explicit_cats[i].cat);
		(void)snprintf(cats, sizeof(cats), "['%s']",
		    cc_cat_name(explicit_cats[i].cat));
		for (k = 0; k < NITEMS(expl); k++) {
			json_t *doc = texample("consent-grant", true);

			tset(doc, "categories", cats);
			tset(doc, "deny", DEL);
			tset(doc, "explicit", expl[k]);
			(void)snprintf(what, sizeof(what), "%s, explicit %s",
			    cats, expl[k] == NULL ? "absent" : expl[k]);
			if (explicit_cats[i].needs_explicit && k < 2)
				texpect_err(doc, ERR_INVALID_FIELD, "explicit",
				    what);
			else
				texpect_ok(doc, what);
			json_decref(doc);
		}
	}
	cr_expect_eq(CATSET_EXPLICIT, want);
}

Test(proto, error_frame_decodes_as_the_error_it_packs)
{
	struct cc_error	 e = { 0 }, got;
	struct cc_msg	*m = NULL;
	msgpack_sbuffer	 sbuf;
	char		 buf[160];

	(void)cc_error_set(&e, ERR_INVALID_FIELD, "body.release_date",
	    "not a %s", "date");
	(void)snprintf(e.re, sizeof(e.re), "%s",
	    "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f");
	msgpack_sbuffer_init(&sbuf);
	cr_assert_eq(proto_pack_error(&sbuf, &e), 0);
	cr_assert_eq(proto_decode(sbuf.data, sbuf.size, CC_MAX_FRAME_DEFAULT,
	    &m, &got), 0, "%s %s", got.field, got.detail);
	cr_expect_eq(proto_op(m), OP_ERROR);
	cr_expect_eq(proto_get_str(m, "code", buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "invalid-field");
	cr_expect_eq(cc_err_parse(buf, strlen(buf)), ERR_INVALID_FIELD);
	cr_expect_eq(proto_get_str(m, "field", buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "body.release_date");
	cr_expect_eq(proto_get_str(m, "detail", buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "not a date");
	cr_expect_eq(proto_get_str(m, "re", buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f");
	proto_msg_destroy(&m);
	msgpack_sbuffer_destroy(&sbuf);

	/* A malformed frame's error has no re and no field. */
	memset(&e, 0, sizeof(e));
	(void)cc_error_set(&e, ERR_MALFORMED, NULL, NULL);
	msgpack_sbuffer_init(&sbuf);
	cr_assert_eq(proto_pack_error(&sbuf, &e), 0);
	cr_assert_eq(proto_decode(sbuf.data, sbuf.size, CC_MAX_FRAME_DEFAULT,
	    &m, &got), 0);
	cr_expect_null(proto_get(m, "re"));
	cr_expect_null(proto_get(m, "field"));
	proto_msg_destroy(&m);
	msgpack_sbuffer_destroy(&sbuf);
}

Test(proto, names_and_parsers_agree)
{
	int	v;

	for (v = 0; v < OP__COUNT; v++)
		cr_expect_eq(cc_op_parse(cc_op_name((enum cc_op)v),
		    strlen(cc_op_name((enum cc_op)v))), v);
	for (v = 0; v < CAT__COUNT; v++)
		cr_expect_eq(cc_cat_parse(cc_cat_name((enum cc_cat)v),
		    strlen(cc_cat_name((enum cc_cat)v))), v);
	for (v = 0; v < RT__COUNT; v++)
		cr_expect_eq(cc_rtype_parse(cc_rtype_name((enum cc_rtype)v),
		    strlen(cc_rtype_name((enum cc_rtype)v))), v);
	for (v = 0; v < PURPOSE__COUNT; v++)
		cr_expect_eq(cc_purpose_parse(cc_purpose_name(
		    (enum cc_purpose)v), strlen(cc_purpose_name(
		    (enum cc_purpose)v))), v);
	for (v = 0; v < AT__COUNT; v++)
		cr_expect_eq(cc_atype_parse(cc_atype_name((enum cc_atype)v),
		    strlen(cc_atype_name((enum cc_atype)v))), v);
	for (v = 0; v < ST__COUNT; v++)
		cr_expect_eq(cc_state_parse(cc_state_name((enum cc_state)v),
		    strlen(cc_state_name((enum cc_state)v))), v);
	for (v = 0; v < RS__COUNT; v++)
		cr_expect_eq(cc_reason_parse(cc_reason_name((enum cc_reason)v),
		    strlen(cc_reason_name((enum cc_reason)v))), v);
	for (v = 0; v < ERR__COUNT; v++)
		cr_expect_eq(cc_err_parse(cc_err_name((enum cc_err)v),
		    strlen(cc_err_name((enum cc_err)v))), v);
	cr_expect_null(cc_op_name(OP__COUNT));
	cr_expect_null(cc_op_name(OP_NONE));
	cr_expect_null(cc_cat_name(CAT__COUNT));
	cr_expect_null(cc_err_name(ERR__COUNT));
	cr_expect_eq(cc_op_parse("fly", 3), -1);
	cr_expect_eq(cc_cat_parse("identit", 7), -1);
	cr_expect_str_eq(cc_err_name(ERR_TOO_LARGE), "too-large");
	cr_expect_str_eq(cc_reason_name(RS_NO_CONSENT), "no-consent");
}

/*
 * DESIGN §7, restated: handover and referral are direct only.  Each row's
 * example is a publish of the type; without `to` a direct-only type is
 * refused as missing-field `to`, any other is accepted.
 */
static const struct {
	enum cc_rtype	 rt;
	const char	*example;
	bool		 direct_only;
} direct_types[] = {
	{ RT_RELEASE_PLAN, "release-plan", false },
	{ RT_HANDOVER, "handover", true },
	{ RT_REFERRAL, "referral", true },
	{ RT_HOUSING_STATUS, "housing-status", false },
};

Test(proto, handover_and_referral_are_direct_only)
{
	size_t	i;

	cr_assert_eq(NITEMS(direct_types), RT__COUNT);
	for (i = 0; i < NITEMS(direct_types); i++) {
		json_t	*doc = texample(direct_types[i].example, true);

		cr_expect_eq(proto_rtype_direct_only(direct_types[i].rt),
		    direct_types[i].direct_only, "%s", direct_types[i].example);
		tset(doc, "to", DEL);
		if (direct_types[i].direct_only)
			texpect_err(doc, ERR_MISSING_FIELD, "to",
			    direct_types[i].example);
		else
			texpect_ok(doc, direct_types[i].example);
		tset(doc, "to", "['cjit.leeds']");
		texpect_ok(doc, direct_types[i].example);
		json_decref(doc);
	}
	cr_expect_eq(proto_rtype_direct_only(RT__COUNT), false);
	cr_expect_eq(proto_rtype_direct_only((enum cc_rtype)-1), false);
}

/*
 * Frames that are not a message at all.  Each is refused as malformed (or
 * too-large), never crashes, and leaves *out NULL.
 */
static void
expect_frame(const void *buf, size_t len, size_t max, enum cc_err code,
    const char *what)
{
	struct cc_msg	*m = (struct cc_msg *)1;
	struct cc_error	 e;

	cr_expect_eq(proto_decode(buf, len, max, &m, &e), -1,
	    "%s: accepted", what);
	cr_expect_null(m, "%s", what);
	cr_expect_eq(e.code, code, "%s: %s (%s), expected %s", what,
	    cc_err_name(e.code), e.detail, cc_err_name(code));
}

Test(proto, garbage_and_broken_frames_are_malformed)
{
	static const struct {
		const char	*bytes;
		size_t		 len;
		const char	*what;
	} rows[] = {
		{ "\xc1\xff\x00garbage", 10, "garbage" },
		{ "", 0, "empty" },
		{ "\x91\x01", 2, "array at top level" },
		{ "\xa3""abc", 4, "string at top level" },
		{ "\x2a", 1, "integer at top level" },
		{ "\x81\xa1v", 3, "map missing its value" },
		{ "\x81\x01\x01", 3, "integer key" },
		{ "\x81\xc0\x01", 3, "nil key" },
		{ "\x81\xa1v\x01\x00", 5, "trailing byte" },
		{ "\x82\xa1v\x01\xa1v\x01", 7, "duplicate key" },
		{ "\x81\xa1v\xc1", 4, "reserved byte" },
		{ "\xdd\xff\xff\xff\xff", 5, "array claims 4 billion items" },
		{ "\xdf\xff\xff\xff\xff", 5, "map claims 4 billion pairs" },
		{ "\x81\xa1v\xdb\xff\xff\xff\xff", 8, "string longer than frame" },
		{ "\x81\xa1v\xc6\xff\xff\xff\xff", 8, "binary longer than frame" },
		{ "\x81\xa1v\xcf\x00\x00", 6, "truncated uint64" },
		{ "\x81\xa1v\xd8\x01", 5, "truncated fixext16" },
		{ "\x81\xd9\x10v", 4, "key longer than frame" },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++)
		expect_frame(rows[i].bytes, rows[i].len, CC_MAX_FRAME_DEFAULT,
		    ERR_MALFORMED, rows[i].what);
}

Test(proto, too_large_is_decided_before_parsing)
{
	struct cc_msg	*m = NULL;
	struct cc_error	 e;
	msgpack_sbuffer	 sbuf;
	char		 junk[100];
	json_t		*doc;

	memset(junk, 0xc1, sizeof(junk));
	expect_frame(junk, sizeof(junk), 99, ERR_TOO_LARGE, "junk");

	/* The limit is inclusive: a frame of exactly max bytes passes. */
	doc = texample("release-plan", true);
	tframe(doc, &sbuf);
	cr_expect_eq(proto_decode(sbuf.data, sbuf.size, sbuf.size, &m, &e), 0);
	proto_msg_destroy(&m);
	expect_frame(sbuf.data, sbuf.size, sbuf.size - 1, ERR_TOO_LARGE,
	    "one byte over");
	msgpack_sbuffer_destroy(&sbuf);

	/* The conformance case: 200000 characters of notes. */
	tset(doc, "body.notes", "@200000");
	tframe(doc, &sbuf);
	expect_frame(sbuf.data, sbuf.size, CC_MAX_FRAME_DEFAULT, ERR_TOO_LARGE,
	    "long notes");
	msgpack_sbuffer_destroy(&sbuf);
	json_decref(doc);
}

/* A body nested n containers deep inside the message map. */
static void
nested_frame(int n, msgpack_sbuffer *sbuf)
{
	json_t	*doc = texample("release-plan", true), *inner;
	int	 i;

	/* body (2) holds housing_actions (3) holding lists down to n. */
	inner = json_string("deep");
	for (i = 3; i <= n; i++) {
		json_t *list = json_array();

		json_array_append_new(list, inner);
		inner = list;
	}
	json_object_set_new(json_object_get(doc, "body"), "housing_actions",
	    inner);
	tframe(doc, sbuf);
	json_decref(doc);
}

Test(proto, nesting_deeper_than_the_limit_is_malformed)
{
	struct cc_msg	*m = NULL;
	struct cc_error	 e;
	msgpack_sbuffer	 sbuf;

	nested_frame(CC_MAX_DEPTH, &sbuf);
	cr_expect_eq(proto_decode(sbuf.data, sbuf.size, CC_MAX_FRAME_DEFAULT,
	    &m, &e), -1);
	cr_expect_eq(e.code, ERR_INVALID_FIELD, "at the limit: %s",
	    cc_err_name(e.code));
	cr_expect_str_eq(e.field, "body.housing_actions.0");
	msgpack_sbuffer_destroy(&sbuf);

	nested_frame(CC_MAX_DEPTH + 1, &sbuf);
	expect_frame(sbuf.data, sbuf.size, CC_MAX_FRAME_DEFAULT, ERR_MALFORMED,
	    "one past the limit");
	msgpack_sbuffer_destroy(&sbuf);

	nested_frame(200, &sbuf);
	expect_frame(sbuf.data, sbuf.size, CC_MAX_FRAME_DEFAULT, ERR_MALFORMED,
	    "200 deep");
	msgpack_sbuffer_destroy(&sbuf);
}

Test(proto, duplicate_and_non_string_keys_inside_the_body_are_malformed)
{
	msgpack_sbuffer	sbuf;
	msgpack_packer	pk;

	/* {v:1, op:ack, dseq:{a:1, a:2}} */
	msgpack_sbuffer_init(&sbuf);
	msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "op", 2);
	msgpack_pack_str_with_body(&pk, "ack", 3);
	msgpack_pack_str_with_body(&pk, "dseq", 4);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_int(&pk, 2);
	expect_frame(sbuf.data, sbuf.size, CC_MAX_FRAME_DEFAULT, ERR_MALFORMED,
	    "nested duplicate key");
	msgpack_sbuffer_clear(&sbuf);

	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "op", 2);
	msgpack_pack_str_with_body(&pk, "ack", 3);
	msgpack_pack_str_with_body(&pk, "dseq", 4);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_true(&pk);
	msgpack_pack_int(&pk, 1);
	expect_frame(sbuf.data, sbuf.size, CC_MAX_FRAME_DEFAULT, ERR_MALFORMED,
	    "nested boolean key");
	msgpack_sbuffer_destroy(&sbuf);
}

/* Values JSON cannot express: binary, extension, float32 where text is due. */
Test(proto, binary_and_extension_values_are_invalid_fields)
{
	msgpack_sbuffer	 sbuf;
	msgpack_packer	 pk;
	struct cc_msg	*m = NULL;
	struct cc_error	 e;
	int		 kind;

	for (kind = 0; kind < 3; kind++) {
		msgpack_sbuffer_init(&sbuf);
		msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 3);
		msgpack_pack_str_with_body(&pk, "v", 1);
		msgpack_pack_int(&pk, 1);
		msgpack_pack_str_with_body(&pk, "op", 2);
		msgpack_pack_str_with_body(&pk, "track", 5);
		msgpack_pack_str_with_body(&pk, "mid", 3);
		if (kind == 0)
			msgpack_pack_bin_with_body(&pk, "0123456789abcdef", 16);
		else if (kind == 1)
			msgpack_pack_ext_with_body(&pk, "abcd", 4, 7);
		else
			msgpack_pack_float(&pk, 1.5f);
		cr_expect_eq(proto_decode(sbuf.data, sbuf.size,
		    CC_MAX_FRAME_DEFAULT, &m, &e), -1, "kind %d", kind);
		cr_expect_eq(e.code, ERR_INVALID_FIELD, "kind %d: %s", kind,
		    cc_err_name(e.code));
		cr_expect_str_eq(e.field, "mid");
		msgpack_sbuffer_destroy(&sbuf);
	}
}

/* Text must be UTF-8 without control characters. */
Test(proto, invalid_utf8_text_is_refused)
{
	static const char *const bad[] = {
		"\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "a\xc3",
		"\xf4\x90\x80\x80", "bell\x07", "nul\0x",
	};
	static const size_t badlen[] = { 1, 2, 3, 3, 2, 4, 5, 5 };
	json_t	*doc;
	size_t	 i;

	for (i = 0; i < NITEMS(bad); i++) {
		msgpack_sbuffer	 sbuf;
		msgpack_packer	 pk;
		struct cc_msg	*m = NULL;
		struct cc_error	 e;

		msgpack_sbuffer_init(&sbuf);
		msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 3);
		msgpack_pack_str_with_body(&pk, "v", 1);
		msgpack_pack_int(&pk, 1);
		msgpack_pack_str_with_body(&pk, "op", 2);
		msgpack_pack_str_with_body(&pk, "hello", 5);
		msgpack_pack_str_with_body(&pk, "agent", 5);
		msgpack_pack_str_with_body(&pk, bad[i], badlen[i]);
		cr_expect_eq(proto_decode(sbuf.data, sbuf.size,
		    CC_MAX_FRAME_DEFAULT, &m, &e), -1, "bad text %zu", i);
		cr_expect_eq(e.code, ERR_INVALID_FIELD, "bad text %zu", i);
		cr_expect_str_eq(e.field, "agent", "bad text %zu", i);
		msgpack_sbuffer_destroy(&sbuf);
	}

	/* Names count characters, not bytes: 35 two-byte letters pass. */
	doc = texample("release-plan", true);
	json_object_set_new(json_object_get(json_object_get(doc, "body"),
	    "person"), "family_name", json_string(
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"));
	texpect_ok(doc, "35 accented letters");
	json_decref(doc);
}

/* An unknown key is echoed in the path, but only as printable ASCII. */
Test(proto, unknown_key_path_is_printable)
{
	msgpack_sbuffer	 sbuf;
	msgpack_packer	 pk;
	struct cc_msg	*m = NULL;
	struct cc_error	 e;

	msgpack_sbuffer_init(&sbuf);
	msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "op", 2);
	msgpack_pack_str_with_body(&pk, "ack", 3);
	msgpack_pack_str_with_body(&pk, "dseq", 4);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "a\n\xff", 3);
	msgpack_pack_int(&pk, 1);
	cr_expect_eq(proto_decode(sbuf.data, sbuf.size, CC_MAX_FRAME_DEFAULT,
	    &m, &e), -1);
	cr_expect_eq(e.code, ERR_UNKNOWN_FIELD);
	cr_expect_str_eq(e.field, "a??");
	msgpack_sbuffer_destroy(&sbuf);
}

Test(proto, every_truncation_of_every_example_is_malformed)
{
	size_t	i, n;

	for (i = 0; i < NITEMS(examples); i++) {
		json_t		*doc = texample(examples[i].name, true);
		msgpack_sbuffer	 sbuf;

		tframe(doc, &sbuf);
		for (n = 0; n < sbuf.size; n++)
			expect_frame(sbuf.data, n, CC_MAX_FRAME_DEFAULT,
			    ERR_MALFORMED, examples[i].name);
		msgpack_sbuffer_destroy(&sbuf);
		json_decref(doc);
	}
}

/*
 * Random damage to valid frames: whatever the outcome, decoding returns
 * cleanly, and a refusal leaves a terminated, printable field path.  Run
 * under ASan this is where an out-of-bounds read would show.
 */
Test(proto, random_corruption_never_crashes)
{
	uint32_t	seed = 12345;
	size_t		i, round, k, j;

	for (i = 0; i < NITEMS(examples); i++) {
		json_t		*doc = texample(examples[i].name, true);
		msgpack_sbuffer	 sbuf;
		char		*copy;

		tframe(doc, &sbuf);
		copy = malloc(sbuf.size);
		cr_assert_not_null(copy);
		for (round = 0; round < 400; round++) {
			struct cc_msg	*m = NULL;
			struct cc_error	 e;

			memcpy(copy, sbuf.data, sbuf.size);
			for (k = 0; k < 1 + round % 4; k++) {
				seed = seed * 1103515245u + 12345u;
				copy[(seed >> 8) % sbuf.size] =
				    (char)(seed >> 20);
			}
			if (proto_decode(copy, sbuf.size, CC_MAX_FRAME_DEFAULT,
			    &m, &e) == 0) {
				cr_expect_not_null(m);
				proto_msg_destroy(&m);
				continue;
			}
			cr_expect_null(m);
			cr_expect(e.code > CC_OK && e.code < ERR__COUNT);
			cr_expect_lt(strlen(e.field), sizeof(e.field));
			for (j = 0; e.field[j] != '\0'; j++)
				cr_expect(e.field[j] >= 0x20 &&
				    e.field[j] < 0x7f, "unprintable path");
		}
		free(copy);
		msgpack_sbuffer_destroy(&sbuf);
		json_decref(doc);
	}
}

/* proto_decode_object: the same contract for an already unpacked tree. */
Test(proto, decode_object_validates_like_decode)
{
	json_t			*doc = texample("release-plan", true);
	msgpack_sbuffer		 sbuf;
	msgpack_unpacked	 up;
	struct cc_msg		*m = NULL;
	struct cc_error		 e;
	struct cc_subject	 s;

	tset(doc, "subject.pnc", "'04/12345D'");
	tframe(doc, &sbuf);
	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, sbuf.data, sbuf.size, NULL),
	    MSGPACK_UNPACK_SUCCESS);
	cr_assert_eq(proto_decode_object(&up.data, &m, &e), 0, "%s",
	    e.detail);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sbuf);
	/* The message does not depend on the caller's tree or buffer. */
	cr_assert_eq(proto_subject(m, &s), 0);
	cr_expect_str_eq(s.pnc, "2004/0012345D");
	proto_msg_destroy(&m);

	tset(doc, "body.release_date", "'2026-02-30'");
	tframe(doc, &sbuf);
	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, sbuf.data, sbuf.size, NULL),
	    MSGPACK_UNPACK_SUCCESS);
	cr_expect_eq(proto_decode_object(&up.data, &m, &e), -1);
	cr_expect_eq(e.code, ERR_INVALID_FIELD);
	cr_expect_str_eq(e.field, "body.release_date");
	cr_expect_null(m);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sbuf);
	json_decref(doc);
}

/* Golden frames made once by tests/files/make-golden.py. */
static char *
slurp(const char *path, size_t *len)
{
	FILE	*f = fopen(path, "rb");
	char	*buf;
	long	 n;

	cr_assert_not_null(f, "cannot open %s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert_geq(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void
golden(const char *pattern, bool valid)
{
	const char	*src = getenv("CC_SRC");
	char		 pat[1024];
	glob_t		 g;
	size_t		 i, len;

	(void)snprintf(pat, sizeof(pat), "%s/tests/files/%s",
	    src != NULL ? src : ".", pattern);
	cr_assert_eq(glob(pat, 0, NULL, &g), 0, "no golden files %s", pat);
	cr_expect_geq(g.gl_pathc, 3, "%s: too few golden files", pattern);
	for (i = 0; i < g.gl_pathc; i++) {
		char		*buf = slurp(g.gl_pathv[i], &len);
		struct cc_msg	*m = NULL;
		struct cc_error	 e;
		msgpack_sbuffer	 sbuf;
		int		 rc;

		rc = proto_decode(buf, len, CC_MAX_FRAME_DEFAULT, &m, &e);
		if (valid) {
			cr_expect_eq(rc, 0, "%s: %s %s (%s)", g.gl_pathv[i],
			    cc_err_name(e.code), e.field, e.detail);
			if (rc == 0) {
				/* Canonical frames re-encode byte for byte. */
				msgpack_sbuffer_init(&sbuf);
				cr_expect_eq(proto_encode(m, &sbuf), 0);
				cr_expect(sbuf.size == len &&
				    memcmp(sbuf.data, buf, len) == 0,
				    "%s: re-encoding differs", g.gl_pathv[i]);
				msgpack_sbuffer_destroy(&sbuf);
			}
		} else {
			cr_expect_eq(rc, -1, "%s accepted", g.gl_pathv[i]);
			cr_expect_eq(e.code, ERR_MALFORMED, "%s: %s",
			    g.gl_pathv[i], cc_err_name(e.code));
		}
		proto_msg_destroy(&m);
		free(buf);
	}
	globfree(&g);
}

Test(proto, golden_valid_frames_decode_and_reencode_identically)
{
	golden("valid-*.mp", true);
}

Test(proto, golden_truncated_frames_are_malformed)
{
	golden("truncated-*.mp", false);
}

Test(proto, golden_corrupt_frames_are_malformed)
{
	golden("corrupt-*.mp", false);
}

/* ---------------------------------------------------------------- records */

/* The record form of a publish document (sbuf initialised here). */
static void
record_of(json_t *doc, msgpack_sbuffer *sbuf)
{
	struct cc_msg	*m = NULL;
	struct cc_error	 e;

	cr_assert_eq(tdecode(doc, &m, &e), 0, "%s %s (%s)",
	    cc_err_name(e.code), e.field, e.detail);
	msgpack_sbuffer_init(sbuf);
	cr_assert_eq(proto_encode_record(m, sbuf), 0);
	proto_msg_destroy(&m);
}

/* A copy of a JSON value with every object's keys in reverse order. */
static json_t *
reversed(json_t *j)
{
	const char	*k, *keys[64];
	json_t		*v, *out;
	size_t		 i, n = 0;

	if (json_is_array(j)) {
		out = json_array();
		json_array_foreach(j, i, v)
			json_array_append_new(out, reversed(v));
		return out;
	}
	if (!json_is_object(j))
		return json_incref(j);
	json_object_foreach(j, k, v) {
		cr_assert_lt(n, NITEMS(keys));
		keys[n++] = k;
	}
	out = json_object();
	while (n > 0) {
		n--;
		json_object_set_new(out, keys[n],
		    reversed(json_object_get(j, keys[n])));
	}
	return out;
}

/*
 * What two sends of one mid are compared by (DESIGN §6): the same record
 * whatever `created`, the mid's spelling, an identifier's written form;
 * another record when any other field, or a list's order, differs.
 */
Test(proto, a_record_is_the_same_but_for_created_and_written_forms)
{
	static const struct {
		const char	*example;
		struct mutation	 m, m2;
		bool		 same;
	} cases[] = {
		{ "release-plan", { NULL, NULL }, { NULL, NULL }, true },
		{ "release-plan", { "created", "'2026-04-30T08:00:00Z'" },
		  { NULL, NULL }, true },
		{ "release-plan", { "created", "'2026-05-01T09:00:00.000Z'" },
		  { NULL, NULL }, true },
		{ "release-plan",
		  { "mid", "'6F1C2D3E-4A5B-4C6D-8E9F-0A1B2C3D4E5F'" },
		  { NULL, NULL }, true },
		{ "release-plan", { "subject.pnc", "'04/12345D'" },
		  { NULL, NULL }, true },
		{ "release-plan", { "body.release_date", "'2026-12-21'" },
		  { NULL, NULL }, false },
		{ "release-plan", { "created", "'2026-04-30T08:00:00Z'" },
		  { "body.keyworker.name", "'Kim Other'" }, false },
		{ "release-plan", { "expires", "'2026-06-02T09:00:00Z'" },
		  { NULL, NULL }, false },
		{ "release-plan", { "expires", DEL }, { NULL, NULL }, false },
		{ "release-plan", { "body.notes", DEL }, { NULL, NULL },
		  false },
		{ "release-plan", { "subject.crn", DEL }, { NULL, NULL },
		  false },
		{ "referral", { "purpose", "'treatment'" }, { NULL, NULL },
		  false },
		{ "release-plan", { "to", "['cjit.leeds']" }, { NULL, NULL },
		  false },
		/* An integer and a float are sent, and seen, differently. */
		{ "release-plan", { "body.dose_mg", "60.0" }, { NULL, NULL },
		  false },
		{ "handover", { "to", "['cjit.leeds','probation.leeds']" },
		  { NULL, NULL }, false },
		{ "handover", { "body.prison_treatment.0",
		  "{'modality':'psychosocial','start':'2026-02-06'}" },
		  { "body.prison_treatment.1", "{'modality':'detox',"
		  "'start':'2026-01-05','end':'2026-02-05'}" }, false },
	};
	msgpack_sbuffer	a, b;
	size_t		i;

	for (i = 0; i < NITEMS(cases); i++) {
		json_t	*doc = texample(cases[i].example, true);

		record_of(doc, &a);
		apply(doc, &cases[i].m);
		apply(doc, &cases[i].m2);
		record_of(doc, &b);
		cr_expect_eq(a.size == b.size && memcmp(a.data, b.data,
		    a.size) == 0, cases[i].same, "case %zu (%s): %s", i,
		    cases[i].m.path != NULL ? cases[i].m.path : "none",
		    cases[i].same ? "differs" : "alike");
		msgpack_sbuffer_destroy(&a);
		msgpack_sbuffer_destroy(&b);
		json_decref(doc);
	}
}

/* Keys in another order make another frame, and the same record. */
Test(proto, a_records_key_order_is_not_part_of_it)
{
	static const char *const names[] = { "release-plan", "handover",
	    "referral", "housing-status" };
	msgpack_sbuffer	fa, fb, a, b;
	size_t		i;

	for (i = 0; i < NITEMS(names); i++) {
		json_t	*doc = texample(names[i], true), *rev = reversed(doc);

		tframe(doc, &fa);
		tframe(rev, &fb);
		cr_assert(fa.size != fb.size || memcmp(fa.data, fb.data,
		    fa.size) != 0, "%s: the frames are alike", names[i]);
		record_of(doc, &a);
		record_of(rev, &b);
		cr_expect(a.size == b.size && memcmp(a.data, b.data,
		    a.size) == 0, "%s: key order changed the record",
		    names[i]);
		msgpack_sbuffer_destroy(&fa);
		msgpack_sbuffer_destroy(&fb);
		msgpack_sbuffer_destroy(&a);
		msgpack_sbuffer_destroy(&b);
		json_decref(rev);
		json_decref(doc);
	}
}

/* Make body.<key> of a publish tree a 32-bit float (its value kept). */
static void
float32_at(msgpack_object *top, const char *key)
{
	msgpack_object	*o = top;
	const char	*path[2] = { "body", key };
	uint32_t	 i, j;

	for (j = 0; j < NITEMS(path); j++) {
		cr_assert_eq(o->type, MSGPACK_OBJECT_MAP);
		for (i = 0; i < o->via.map.size; i++)
			if (o->via.map.ptr[i].key.via.str.size ==
			    strlen(path[j]) && memcmp(o->via.map.ptr[i].key.
			    via.str.ptr, path[j], strlen(path[j])) == 0)
				break;
		cr_assert_lt(i, o->via.map.size, "no %s", path[j]);
		o = &o->via.map.ptr[i].val;
	}
	cr_assert_eq(o->type, MSGPACK_OBJECT_FLOAT64);
	o->type = MSGPACK_OBJECT_FLOAT32;
}

/* 12.5 sent as a 32-bit or a 64-bit float is the same number. */
Test(proto, a_float_is_the_same_in_32_or_64_bits)
{
	json_t			*doc = texample("handover", true);
	msgpack_sbuffer		 f64, f32, a, b;
	msgpack_packer		 pk;
	msgpack_unpacked	 up;
	struct cc_msg		*m = NULL;
	struct cc_error		 e;

	tframe(doc, &f64);
	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, f64.data, f64.size, NULL),
	    MSGPACK_UNPACK_SUCCESS);
	float32_at(&up.data, "dose_mg");
	msgpack_sbuffer_init(&f32);
	msgpack_packer_init(&pk, &f32, msgpack_sbuffer_write);
	cr_assert_eq(msgpack_pack_object(&pk, up.data), 0);
	cr_assert_neq(f32.size, f64.size, "not packed as 32 bits");
	cr_assert_eq(proto_decode(f32.data, f32.size, CC_MAX_FRAME_DEFAULT,
	    &m, &e), 0, "%s %s", cc_err_name(e.code), e.field);
	msgpack_sbuffer_init(&b);
	cr_assert_eq(proto_encode_record(m, &b), 0);
	record_of(doc, &a);
	cr_expect(a.size == b.size && memcmp(a.data, b.data, a.size) == 0);
	/* Only a publish has a record. */
	proto_msg_destroy(&m);
	json_decref(doc);
	doc = texample("consent-grant", true);
	cr_assert_eq(tdecode(doc, &m, &e), 0);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_init(&a);
	cr_expect_eq(proto_encode_record(m, &a), -1);
	proto_msg_destroy(&m);
	json_decref(doc);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
	msgpack_sbuffer_destroy(&f32);
	msgpack_sbuffer_destroy(&f64);
	msgpack_unpacked_destroy(&up);
}
