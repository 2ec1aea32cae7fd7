/*
 * test_strip.c - minimisation (DESIGN §4.1, §4.4, §5 rule 4): the category
 * of every body field, and stripping by category on every record type.
 */
#include <stdio.h>
#include <string.h>

#include "proto_testutil.h"

/* A pack helper that must succeed in a test. */
#define PACKED(x)	cr_assert_eq((x), 0)

/* DESIGN §4.4, restated so the schema's categories are checked against it. */
static const struct {
	enum cc_rtype	 rt;
	const char	*field;
	enum cc_cat	 cat;
} fields[] = {
	{ RT_RELEASE_PLAN, "person", CAT_IDENTITY },
	{ RT_RELEASE_PLAN, "establishment", CAT_CRIMINAL_JUSTICE },
	{ RT_RELEASE_PLAN, "release_date", CAT_CRIMINAL_JUSTICE },
	{ RT_RELEASE_PLAN, "release_type", CAT_CRIMINAL_JUSTICE },
	{ RT_RELEASE_PLAN, "on_licence", CAT_CRIMINAL_JUSTICE },
	{ RT_RELEASE_PLAN, "in_treatment", CAT_TREATMENT_SUMMARY },
	{ RT_RELEASE_PLAN, "treatment_modality", CAT_TREATMENT_SUMMARY },
	{ RT_RELEASE_PLAN, "overdose_risk_briefed", CAT_TREATMENT_SUMMARY },
	{ RT_RELEASE_PLAN, "substitute_medication", CAT_TREATMENT_CLINICAL },
	{ RT_RELEASE_PLAN, "dose_mg", CAT_TREATMENT_CLINICAL },
	{ RT_RELEASE_PLAN, "last_dose", CAT_TREATMENT_CLINICAL },
	{ RT_RELEASE_PLAN, "primary_substance", CAT_TREATMENT_CLINICAL },
	{ RT_RELEASE_PLAN, "accommodation_need", CAT_HOUSING },
	{ RT_RELEASE_PLAN, "accommodation_on_release", CAT_HOUSING },
	{ RT_RELEASE_PLAN, "housing_actions", CAT_HOUSING },
	{ RT_RELEASE_PLAN, "release_address", CAT_HOUSING_ADDRESS },
	{ RT_RELEASE_PLAN, "offender_manager", CAT_CONTACTS },
	{ RT_RELEASE_PLAN, "keyworker", CAT_CONTACTS },
	{ RT_RELEASE_PLAN, "first_appointment", CAT_CONTACTS },
	{ RT_RELEASE_PLAN, "notes", CAT_NARRATIVE },

	{ RT_HANDOVER, "person", CAT_IDENTITY },
	{ RT_HANDOVER, "establishment", CAT_CRIMINAL_JUSTICE },
	{ RT_HANDOVER, "release_date", CAT_CRIMINAL_JUSTICE },
	{ RT_HANDOVER, "dir_ref", CAT_CRIMINAL_JUSTICE },
	{ RT_HANDOVER, "handover_status", CAT_CRIMINAL_JUSTICE },
	{ RT_HANDOVER, "in_treatment", CAT_TREATMENT_SUMMARY },
	{ RT_HANDOVER, "treatment_modality", CAT_TREATMENT_SUMMARY },
	{ RT_HANDOVER, "injecting_status", CAT_TREATMENT_CLINICAL },
	{ RT_HANDOVER, "primary_substance", CAT_TREATMENT_CLINICAL },
	{ RT_HANDOVER, "secondary_substance", CAT_TREATMENT_CLINICAL },
	{ RT_HANDOVER, "substitute_medication", CAT_TREATMENT_CLINICAL },
	{ RT_HANDOVER, "dose_mg", CAT_TREATMENT_CLINICAL },
	{ RT_HANDOVER, "last_dose", CAT_TREATMENT_CLINICAL },
	{ RT_HANDOVER, "prison_treatment", CAT_TREATMENT_CLINICAL },
	{ RT_HANDOVER, "accommodation_need", CAT_HOUSING },
	{ RT_HANDOVER, "accommodation_on_release", CAT_HOUSING },
	{ RT_HANDOVER, "carat_worker", CAT_CONTACTS },
	{ RT_HANDOVER, "offender_manager", CAT_CONTACTS },
	{ RT_HANDOVER, "gp_practice", CAT_CONTACTS },
	{ RT_HANDOVER, "notes", CAT_NARRATIVE },

	{ RT_REFERRAL, "person", CAT_IDENTITY },
	{ RT_REFERRAL, "referral_service", CAT_HOUSING },
	{ RT_REFERRAL, "required_from", CAT_HOUSING },
	{ RT_REFERRAL, "accommodation_need", CAT_HOUSING },
	{ RT_REFERRAL, "current_accommodation", CAT_HOUSING },
	{ RT_REFERRAL, "local_connection", CAT_HOUSING },
	{ RT_REFERRAL, "household", CAT_HOUSING },
	{ RT_REFERRAL, "support_needs", CAT_HOUSING },
	{ RT_REFERRAL, "risk_flags", CAT_CRIMINAL_JUSTICE },
	{ RT_REFERRAL, "in_treatment", CAT_TREATMENT_SUMMARY },
	{ RT_REFERRAL, "referrer", CAT_CONTACTS },
	{ RT_REFERRAL, "client_phone", CAT_CONTACTS },
	{ RT_REFERRAL, "notes", CAT_NARRATIVE },

	{ RT_HOUSING_STATUS, "person", CAT_IDENTITY },
	{ RT_HOUSING_STATUS, "effective_date", CAT_HOUSING },
	{ RT_HOUSING_STATUS, "accommodation_type", CAT_HOUSING },
	{ RT_HOUSING_STATUS, "accommodation_need", CAT_HOUSING },
	{ RT_HOUSING_STATUS, "settled_status", CAT_HOUSING },
	{ RT_HOUSING_STATUS, "change_reason", CAT_HOUSING },
	{ RT_HOUSING_STATUS, "address", CAT_HOUSING_ADDRESS },
};

static const char *const rt_example[RT__COUNT] = {
	[RT_RELEASE_PLAN] = "release-plan",
	[RT_HANDOVER] = "handover",
	[RT_REFERRAL] = "referral",
	[RT_HOUSING_STATUS] = "housing-status",
};

static int
expected_cat(enum cc_rtype rt, const char *field)
{
	size_t	i;

	for (i = 0; i < NITEMS(fields); i++)
		if (fields[i].rt == rt && strcmp(fields[i].field, field) == 0)
			return (int)fields[i].cat;
	return -1;
}

static struct cc_msg *
decoded(enum cc_rtype rt)
{
	json_t		*doc = texample(rt_example[rt], true);
	struct cc_msg	*m = NULL;
	struct cc_error	 e;

	cr_assert_eq(tdecode(doc, &m, &e), 0, "%s: %s", rt_example[rt],
	    e.detail);
	json_decref(doc);
	return m;
}

/* A stripped body or subject, packed and unpacked again. */
struct stripped {
	msgpack_sbuffer		sbuf;
	msgpack_unpacked	up;
	cc_catset		withheld;
};

static void
strip(const struct cc_msg *m, cc_catset allowed, bool subject,
    struct stripped *st)
{
	msgpack_packer	pk;

	msgpack_sbuffer_init(&st->sbuf);
	msgpack_packer_init(&pk, &st->sbuf, msgpack_sbuffer_write);
	st->withheld = 0xffff;
	if (subject)
		cr_assert_eq(proto_pack_stripped_subject(&pk, m, allowed,
		    &st->withheld), 0);
	else
		cr_assert_eq(proto_pack_stripped_body(&pk, m, allowed,
		    &st->withheld), 0);
	msgpack_unpacked_init(&st->up);
	cr_assert_eq(msgpack_unpack_next(&st->up, st->sbuf.data, st->sbuf.size,
	    NULL), MSGPACK_UNPACK_SUCCESS);
	cr_assert_eq(st->up.data.type, MSGPACK_OBJECT_MAP);
}

static void
stripped_free(struct stripped *st)
{
	msgpack_unpacked_destroy(&st->up);
	msgpack_sbuffer_destroy(&st->sbuf);
}

static const msgpack_object *
get(const msgpack_object *map, const char *key)
{
	uint32_t	i;

	for (i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;

		if (k->via.str.size == strlen(key) &&
		    memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

/*
 * Check a stripped body against the original: exactly the allowed fields
 * are kept, unchanged, and the withheld set names the removed categories.
 */
static void
check_strip(enum cc_rtype rt, const struct cc_msg *m, cc_catset allowed)
{
	const msgpack_object	*body = proto_get(m, "body"), *kept;
	struct stripped		 st;
	cc_catset		 want_withheld = 0;
	uint32_t		 i, nkept = 0;

	strip(m, allowed, false, &st);
	for (i = 0; i < body->via.map.size; i++) {
		const msgpack_object_kv *kv = &body->via.map.ptr[i];
		char name[64];
		int cat;

		(void)snprintf(name, sizeof(name), "%.*s",
		    (int)kv->key.via.str.size, kv->key.via.str.ptr);
		cat = expected_cat(rt, name);
		cr_assert_geq(cat, 0, "%s: %s has no category", rt_example[rt],
		    name);
		kept = get(&st.up.data, name);
		if (allowed & CATSET(cat)) {
			nkept++;
			cr_expect_not_null(kept, "%s: %s removed with 0x%x",
			    rt_example[rt], name, allowed);
			if (kept != NULL)
				cr_expect(msgpack_object_equal(*kept, kv->val),
				    "%s: %s changed", rt_example[rt], name);
		} else {
			want_withheld |= CATSET(cat);
			cr_expect_null(kept, "%s: %s kept with 0x%x",
			    rt_example[rt], name, allowed);
		}
	}
	cr_expect_eq(st.up.data.via.map.size, nkept, "%s: extra fields",
	    rt_example[rt]);
	cr_expect_eq(st.withheld, want_withheld, "%s: withheld 0x%x, want 0x%x",
	    rt_example[rt], st.withheld, want_withheld);
	stripped_free(&st);
}

Test(strip, every_body_field_has_the_category_of_design)
{
	size_t	i;

	for (i = 0; i < NITEMS(fields); i++)
		cr_expect_eq(proto_field_category(fields[i].rt,
		    fields[i].field), (int)fields[i].cat, "%s.%s",
		    rt_example[fields[i].rt], fields[i].field);
	cr_expect_eq(proto_field_category(RT_RELEASE_PLAN, "favourite_colour"),
	    -1);
	cr_expect_eq(proto_field_category(RT_HOUSING_STATUS, "notes"), -1);
	cr_expect_eq(proto_field_category(RT__COUNT, "person"), -1);
}

/* The examples carry every body field, so stripping is tested on all. */
Test(strip, examples_carry_every_body_field)
{
	int	rt;
	size_t	i, n;

	for (rt = 0; rt < RT__COUNT; rt++) {
		struct cc_msg *m = decoded((enum cc_rtype)rt);
		const msgpack_object *body = proto_get(m, "body");

		for (i = 0, n = 0; i < NITEMS(fields); i++)
			if (fields[i].rt == (enum cc_rtype)rt) {
				n++;
				cr_expect_not_null(get(body, fields[i].field),
				    "%s example lacks %s", rt_example[rt],
				    fields[i].field);
			}
		cr_expect_eq(body->via.map.size, n, "%s", rt_example[rt]);
		proto_msg_destroy(&m);
	}
}

Test(strip, removing_one_category_removes_exactly_its_fields)
{
	int	rt, c;

	for (rt = 0; rt < RT__COUNT; rt++) {
		struct cc_msg *m = decoded((enum cc_rtype)rt);

		for (c = 0; c < CAT__COUNT; c++)
			check_strip((enum cc_rtype)rt, m,
			    CATSET_ALL & ~CATSET(c));
		proto_msg_destroy(&m);
	}
}

Test(strip, allowing_one_category_keeps_exactly_its_fields)
{
	int	rt, c;

	for (rt = 0; rt < RT__COUNT; rt++) {
		struct cc_msg *m = decoded((enum cc_rtype)rt);

		for (c = 0; c < CAT__COUNT; c++)
			check_strip((enum cc_rtype)rt, m, CATSET(c));
		check_strip((enum cc_rtype)rt, m, 0);
		check_strip((enum cc_rtype)rt, m, CATSET_ALL);
		proto_msg_destroy(&m);
	}
}

/* The conformance case: probation with the BASIC consent categories. */
Test(strip, basic_consent_hides_clinical_and_narrative_release_plan_fields)
{
	static const char *const hidden[] = {
		"substitute_medication", "dose_mg", "primary_substance",
		"notes", "last_dose"
	};
	struct cc_msg	*m = decoded(RT_RELEASE_PLAN);
	struct stripped	 st;
	cc_catset	 basic = CATSET(CAT_IDENTITY) |
			    CATSET(CAT_CRIMINAL_JUSTICE) | CATSET(CAT_HOUSING) |
			    CATSET(CAT_CONTACTS) |
			    CATSET(CAT_TREATMENT_SUMMARY);
	size_t		 i;

	strip(m, basic, false, &st);
	for (i = 0; i < NITEMS(hidden); i++)
		cr_expect_null(get(&st.up.data, hidden[i]), "%s", hidden[i]);
	cr_expect_not_null(get(&st.up.data, "person"));
	cr_expect_not_null(get(&st.up.data, "accommodation_need"));
	cr_expect_eq(st.withheld, CATSET(CAT_TREATMENT_CLINICAL) |
	    CATSET(CAT_NARRATIVE) | CATSET(CAT_HOUSING_ADDRESS));
	stripped_free(&st);

	strip(m, basic, true, &st);
	cr_expect_eq(st.up.data.via.map.size, 0, "subject kept");
	cr_expect_eq(st.withheld, CATSET(CAT_CJ_IDENTIFIERS));
	stripped_free(&st);
	proto_msg_destroy(&m);
}

Test(strip, subject_is_wholly_cj_identifiers)
{
	struct cc_msg	*m = decoded(RT_RELEASE_PLAN);
	struct stripped	 st;

	strip(m, CATSET(CAT_CJ_IDENTIFIERS), true, &st);
	cr_expect(msgpack_object_equal(st.up.data, *proto_get(m, "subject")));
	cr_expect_eq(st.withheld, 0);
	stripped_free(&st);

	strip(m, CATSET_ALL & ~CATSET(CAT_CJ_IDENTIFIERS), true, &st);
	cr_expect_eq(st.up.data.via.map.size, 0);
	cr_expect_eq(st.withheld, CATSET(CAT_CJ_IDENTIFIERS));
	stripped_free(&st);
	proto_msg_destroy(&m);
}

/*
 * DESIGN §4.1 and §4.2, restated: each identifier of a subject is
 * cj-identifiers, and a subject holding only it is stripped by it.
 */
static const struct {
	const char	*field;
	const char	*value;		/* NULL: not an identifier */
	int		 cat;
} subject_fields[] = {
	{ "pnc", "'2004/0012345D'", CAT_CJ_IDENTIFIERS },
	{ "noms", "'A1234BC'", CAT_CJ_IDENTIFIERS },
	{ "crn", "'X123456'", CAT_CJ_IDENTIFIERS },
	{ "PNC", NULL, -1 },
	{ "person", NULL, -1 },
	{ "", NULL, -1 },
};

Test(strip, every_subject_identifier_is_cj_identifiers)
{
	size_t	i;

	for (i = 0; i < NITEMS(subject_fields); i++) {
		json_t		*doc;
		struct cc_msg	*m = NULL;
		struct cc_error	 e;
		struct stripped	 st;
		char		 sq[64];
		cc_catset	 cat;

		cr_expect_eq(proto_subject_category(subject_fields[i].field),
		    subject_fields[i].cat, "%s", subject_fields[i].field);
		if (subject_fields[i].value == NULL)
			continue;
		cat = CATSET(subject_fields[i].cat);
		doc = texample("release-plan", true);
		(void)snprintf(sq, sizeof(sq), "{'%s':%s}",
		    subject_fields[i].field, subject_fields[i].value);
		tset(doc, "subject", sq);
		cr_assert_eq(tdecode(doc, &m, &e), 0, "%s: %s",
		    subject_fields[i].field, e.detail);
		cr_expect_eq(proto_categories_present(m) & cat, cat);

		strip(m, cat, true, &st);
		cr_expect(msgpack_object_equal(st.up.data,
		    *proto_get(m, "subject")), "%s removed",
		    subject_fields[i].field);
		cr_expect_eq(st.withheld, 0);
		stripped_free(&st);

		strip(m, CATSET_ALL & ~cat, true, &st);
		cr_expect_eq(st.up.data.via.map.size, 0, "%s kept",
		    subject_fields[i].field);
		cr_expect_eq(st.withheld, cat);
		stripped_free(&st);
		proto_msg_destroy(&m);
		json_decref(doc);
	}
}

Test(strip, categories_present_are_those_of_body_and_subject)
{
	int	rt;
	size_t	i;

	for (rt = 0; rt < RT__COUNT; rt++) {
		struct cc_msg	*m = decoded((enum cc_rtype)rt);
		cc_catset	 want = CATSET(CAT_CJ_IDENTIFIERS);

		for (i = 0; i < NITEMS(fields); i++)
			if (fields[i].rt == (enum cc_rtype)rt)
				want |= CATSET(fields[i].cat);
		cr_expect_eq(proto_categories_present(m), want,
		    "%s: 0x%x, want 0x%x", rt_example[rt],
		    proto_categories_present(m), want);
		proto_msg_destroy(&m);
	}

	/* A housing-status with only its required fields. */
	json_t		*doc = texample("housing-status", true);
	struct cc_msg	*m = NULL;
	struct cc_error	 e;

	tset(doc, "body", "{'effective_date':'2026-05-01',"
	    "'accommodation_type':'hostel'}");
	cr_assert_eq(tdecode(doc, &m, &e), 0, "%s", e.detail);
	cr_expect_eq(proto_categories_present(m), CATSET(CAT_HOUSING) |
	    CATSET(CAT_CJ_IDENTIFIERS));
	proto_msg_destroy(&m);
	json_decref(doc);
}

/* What the broker builds from a stripped record is a valid delivery. */
Test(strip, stripped_record_makes_a_valid_deliver)
{
	int	rt, c;

	for (rt = 0; rt < RT__COUNT; rt++) {
		struct cc_msg *m = decoded((enum cc_rtype)rt);

		for (c = -1; c < CAT__COUNT; c++) {
			cc_catset	 allowed = c < 0 ? 0 : CATSET(c);
			cc_catset	 wb, ws;
			msgpack_sbuffer	 sbuf;
			msgpack_packer	 pk;
			struct cc_msg	*d = NULL;
			struct cc_error	 e;

			msgpack_sbuffer_init(&sbuf);
			msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
			msgpack_pack_map(&pk, 13);
			PACKED(proto_pack_cstr(&pk, "v"));
			msgpack_pack_int(&pk, 1);
			PACKED(proto_pack_cstr(&pk, "op"));
			PACKED(proto_pack_cstr(&pk, "deliver"));
			PACKED(proto_pack_cstr(&pk, "dseq"));
			msgpack_pack_uint64(&pk, 1);
			PACKED(proto_pack_cstr(&pk, "mid"));
			msgpack_pack_object(&pk, *proto_get(m, "mid"));
			PACKED(proto_pack_cstr(&pk, "type"));
			msgpack_pack_object(&pk, *proto_get(m, "type"));
			PACKED(proto_pack_cstr(&pk, "from"));
			PACKED(proto_pack_cstr(&pk, "carat.hmp-leeds"));
			PACKED(proto_pack_cstr(&pk, "purpose"));
			msgpack_pack_object(&pk, *proto_get(m, "purpose"));
			PACKED(proto_pack_cstr(&pk, "subject"));
			cr_assert_eq(proto_pack_stripped_subject(&pk, m,
			    allowed, &ws), 0);
			PACKED(proto_pack_cstr(&pk, "area"));
			msgpack_pack_object(&pk, *proto_get(m, "area"));
			PACKED(proto_pack_cstr(&pk, "created"));
			msgpack_pack_object(&pk, *proto_get(m, "created"));
			PACKED(proto_pack_cstr(&pk, "body"));
			cr_assert_eq(proto_pack_stripped_body(&pk, m, allowed,
			    &wb), 0);
			PACKED(proto_pack_cstr(&pk, "consent"));
			msgpack_pack_map(&pk, 2);
			PACKED(proto_pack_cstr(&pk, "cid"));
			PACKED(proto_pack_cstr(&pk,
			    "d4c3b2a1-0f9e-4d8c-b7a6-958473625140"));
			PACKED(proto_pack_cstr(&pk, "version"));
			msgpack_pack_int(&pk, 1);
			PACKED(proto_pack_cstr(&pk, "withheld_categories"));
			PACKED(proto_pack_catset(&pk, wb | ws));

			cr_expect_eq(proto_decode(sbuf.data, sbuf.size,
			    CC_MAX_FRAME_DEFAULT, &d, &e), 0,
			    "%s with %d: %s %s (%s)", rt_example[rt], c,
			    cc_err_name(e.code), e.field, e.detail);
			if (d != NULL) {
				cr_expect_eq(proto_catset(proto_get(d,
				    "withheld_categories")), wb | ws);
				cr_expect_eq(proto_categories_present(d) &
				    ~allowed, 0);
			}
			proto_msg_destroy(&d);
			msgpack_sbuffer_destroy(&sbuf);
		}
		proto_msg_destroy(&m);
	}
}

Test(strip, messages_without_a_body_cannot_be_stripped)
{
	json_t		*doc = texample("hello", true);
	struct cc_msg	*m = NULL;
	struct cc_error	 e;
	msgpack_sbuffer	 sbuf;
	msgpack_packer	 pk;
	cc_catset	 w;

	cr_assert_eq(tdecode(doc, &m, &e), 0);
	msgpack_sbuffer_init(&sbuf);
	msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
	cr_expect_eq(proto_pack_stripped_body(&pk, m, CATSET_ALL, &w), -1);
	cr_expect_eq(proto_pack_stripped_subject(&pk, m, CATSET_ALL, &w), -1);
	cr_expect_eq(proto_categories_present(m), 0);
	msgpack_sbuffer_destroy(&sbuf);
	proto_msg_destroy(&m);
	json_decref(doc);
}
