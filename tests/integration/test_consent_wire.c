/*
 * test_consent_wire.c - consent-grant, consent-withdraw and consent-refuse
 * against the real broker (issue 5, DESIGN §5 and §7).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/harness.h"

static struct h_env	*env;

static void
teardown(void)
{
	h_env_destroy(&env);
}

TestSuite(consent_wire, .fini = teardown, .timeout = 60);

/* The consent of a subject access report with this cid, or NULL. */
static json_t *
consent_of(json_t *report, const char *cid)
{
	json_t	*c;
	size_t	 i;

	json_array_foreach(h_get(report, "consents"), i, c)
		if (h_str(c, "cid") != NULL && strcmp(h_str(c, "cid"), cid) == 0)
			return c;
	return NULL;
}

static void
expect_recorded(json_t *r, const char *cid, long long version)
{
	h_assert_op(r, "consent-recorded");
	cr_expect_str_eq(h_str(r, "cid"), cid, "%s", h_dump(r));
	cr_expect_eq(h_int(r, "version"), version, "version %lld wanted: %s",
	    version, h_dump(r));
}

H_TEST(consent_wire, each_change_is_answered_with_its_cid_and_new_version)
{
	struct h_client	*carat;
	json_t		*g, *r;
	const char	*cid;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	cid = h_str(g, "cid");

	expect_recorded(h_call(carat, g, "consent-recorded"), cid, 1);
	/* The same grant again (an outbox re-send): nothing new. */
	expect_recorded(h_call(carat, g, "consent-recorded"), cid, 1);
	/* Amended: a new version of the same consent. */
	json_object_set_new(g, "categories", json_pack("[s]", "identity"));
	expect_recorded(h_call(carat, g, "consent-recorded"), cid, 2);
	expect_recorded(h_call(carat, h_withdraw_new(cid, NULL),
	    "consent-recorded"), cid, 3);
	/* Withdrawing what is withdrawn changes nothing. */
	expect_recorded(h_call(carat, h_withdraw_new(cid, NULL),
	    "consent-recorded"), cid, 3);

	/* A refusal is a consent of its own, recorded as refused. */
	g = h_refuse_new(H_PNC_A);
	r = h_call(carat, g, "consent-recorded");
	expect_recorded(r, h_str(g, "cid"), 1);

	r = h_audit_subject(env, "pnc=" H_PNC_A);
	cr_expect_str_eq(h_str(consent_of(r, cid), "state"), "withdrawn",
	    "%s", h_dump(r));
	cr_expect_eq(json_array_size(h_get(consent_of(r, cid), "history")), 3,
	    "%s", h_dump(consent_of(r, cid)));
	cr_expect_str_eq(h_str(consent_of(r, h_str(g, "cid")), "state"),
	    "refused", "%s", h_dump(r));
}

H_TEST(consent_wire, withdraw_by_subject_answers_once_per_active_consent)
{
	struct h_client	*carat;
	json_t		*a1, *a2, *b, *r, *rep;
	size_t		 i;
	int		 seen1 = 0, seen2 = 0;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	a1 = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	a2 = h_grant_new(H_PROBATION, H_BASIC, H_PNC_A);
	b = h_grant_new(H_CJIT, H_BASIC, H_PNC_B);
	expect_recorded(h_call(carat, a1, "consent-recorded"),
	    h_str(a1, "cid"), 1);
	expect_recorded(h_call(carat, a2, "consent-recorded"),
	    h_str(a2, "cid"), 1);
	expect_recorded(h_call(carat, b, "consent-recorded"),
	    h_str(b, "cid"), 1);

	/* A 2-digit-year PNC names the same person. */
	h_send(carat, h_withdraw_new(NULL, "04/12345D"));
	for (i = 0; i < 2; i++) {
		r = h_recv(carat, "consent-recorded,error", H_TIMEOUT_MS);
		h_assert_op(r, "consent-recorded");
		cr_expect_eq(h_int(r, "version"), 2, "%s", h_dump(r));
		seen1 += strcmp(h_str(r, "cid"), h_str(a1, "cid")) == 0;
		seen2 += strcmp(h_str(r, "cid"), h_str(a2, "cid")) == 0;
	}
	cr_expect(seen1 == 1 && seen2 == 1, "each consent once: %d %d",
	    seen1, seen2);
	cr_expect_null(h_recv(carat, "consent-recorded,error", H_QUIET_MS),
	    "a third answer");

	rep = h_audit_subject(env, "pnc=" H_PNC_A);
	cr_expect_str_eq(h_str(consent_of(rep, h_str(a1, "cid")), "state"),
	    "withdrawn");
	cr_expect_str_eq(h_str(consent_of(rep, h_str(a2, "cid")), "state"),
	    "withdrawn");
	rep = h_audit_subject(env, "pnc=" H_PNC_B);
	cr_expect_str_eq(h_str(consent_of(rep, h_str(b, "cid")), "state"),
	    "active", "another person's consent was touched: %s", h_dump(rep));

	/* Nothing left to withdraw. */
	r = h_call(carat, h_withdraw_new(NULL, H_PNC_A), "consent-recorded");
	h_assert_error(r, "invalid-field", "subject");
}

H_TEST(consent_wire, refusal_withdraws_nothing_else)
{
	struct h_client	*carat, *cjit;
	json_t		*g, *m, *d, *rep;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");
	g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	h_assert_op(h_call(carat, g, "consent-recorded"), "consent-recorded");
	h_assert_op(h_call(carat, h_refuse_new(H_PNC_A), "consent-recorded"),
	    "consent-recorded");

	m = h_release_plan_new(H_PNC_A, "Refusedelse");
	h_assert_op(h_publish(carat, m), "accepted");
	d = h_collect(cjit, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1, "%s", h_dump(d));
	cr_expect_str_eq(h_str(d, "0.consent.cid"), h_str(g, "cid"));

	rep = h_audit_subject(env, "pnc=" H_PNC_A);
	cr_expect_str_eq(h_str(consent_of(rep, h_str(g, "cid")), "state"),
	    "active");
}

H_TEST(consent_wire, any_agency_may_record_a_withdrawal)
{
	struct h_client	*carat, *housing;
	json_t		*g;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	housing = h_agent(env, H_HOUSING, false);
	g = h_grant_new(H_HOUSING, H_BASIC, H_PNC_A);
	expect_recorded(h_call(carat, g, "consent-recorded"), h_str(g, "cid"),
	    1);
	expect_recorded(h_call(housing, h_withdraw_new(h_str(g, "cid"), NULL),
	    "consent-recorded"), h_str(g, "cid"), 2);
}

/*
 * Refusals, one per row: who sends, which op (grant, refuse, withdraw),
 * JSON merged into the defaults, a top-level key removed, and the exact
 * code and field of the answer (NULL: the code alone is fixed).
 */
static const struct {
	const char	*what;
	const char	*sender;
	const char	*op;
	const char	*merge;
	const char	*remove;
	const char	*code;
	const char	*field;
} refusals[] = {
	{ "housing-provider may not record consent", H_HOUSING, "grant",
	    NULL, NULL, "not-permitted", NULL },
	{ "la-housing may not record consent", H_LA, "grant",
	    NULL, NULL, "not-permitted", NULL },
	{ "housing-provider may not record a refusal", H_HOUSING, "refuse",
	    NULL, NULL, "not-permitted", NULL },
	{ "recipient not in the directory", H_CARAT, "grant",
	    "{\"recipients\": [\"" H_CJIT "\", \"nobody.here\"]}", NULL,
	    "unknown-recipient", "recipients.1" },
	{ "deny names an unknown agency", H_CARAT, "grant",
	    "{\"deny\": [{\"recipients\": [\"nobody.here\"]}]}", NULL,
	    "unknown-recipient", "deny.0.recipients.0" },
	{ "treatment-clinical without explicit", H_CARAT, "grant",
	    "{\"categories\": [\"identity\", \"treatment-clinical\"]}", NULL,
	    "invalid-field", "explicit" },
	{ "narrative with explicit false", H_CARAT, "grant",
	    "{\"categories\": [\"identity\", \"narrative\"],"
	    " \"explicit\": false}", NULL, "invalid-field", "explicit" },
	{ "explicit left out", H_CARAT, "grant",
	    "{\"categories\": [\"identity\", \"narrative\"]}", "explicit",
	    "invalid-field", "explicit" },
	{ "no evidence", H_CARAT, "grant", NULL, "evidence",
	    "missing-field", "evidence" },
	{ "no recipients", H_CARAT, "grant", NULL, "recipients",
	    "missing-field", "recipients" },
	{ "unknown purpose", H_CARAT, "grant",
	    "{\"purposes\": [\"marketing\"]}", NULL,
	    "invalid-field", "purposes.0" },
	{ "unknown category", H_CARAT, "grant",
	    "{\"categories\": [\"gossip\"]}", NULL,
	    "invalid-field", "categories.0" },
	{ "ends before it starts", H_CARAT, "grant",
	    "{\"valid_from\": \"2025-06-01T00:00:00Z\","
	    " \"valid_until\": \"2025-05-01T00:00:00Z\"}", NULL,
	    "invalid-field", "valid_until" },
	{ "longer than 24 months", H_CARAT, "grant",
	    "{\"valid_from\": \"2025-01-01T00:00:00Z\","
	    " \"valid_until\": \"2027-06-01T00:00:00Z\"}", NULL,
	    "invalid-field", "valid_until" },
	{ "PNC with a wrong check letter", H_CARAT, "grant",
	    "{\"subject\": {\"pnc\": \"2004/0012345E\"}}", NULL,
	    "invalid-field", "subject.pnc" },
	{ "withdraw names neither cid nor subject", H_CARAT, "withdraw",
	    NULL, "cid", "missing-field", "cid" },
	{ "withdraw of an unknown cid", H_CARAT, "withdraw",
	    "{\"cid\": \"0b4f8f1e-3d53-4a2b-9f0e-6a1c2d3e4f50\"}", NULL,
	    "invalid-field", "cid" },
};

H_TEST(consent_wire, refused_consent_requests_name_code_and_field)
{
	size_t	i;

	env = h_env_new(NULL);
	for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		struct h_client	*c = h_agent(env, refusals[i].sender, false);
		json_t		*m, *r;
		const char	*code;

		if (strcmp(refusals[i].op, "grant") == 0)
			m = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
		else if (strcmp(refusals[i].op, "refuse") == 0)
			m = h_refuse_new(H_PNC_A);
		else
			m = h_withdraw_new("5d9e1f0a-1111-4222-8333-944455566677",
			    NULL);
		if (refusals[i].merge != NULL)
			json_object_update(m, h_json(refusals[i].merge));
		if (refusals[i].remove != NULL)
			json_object_del(m, refusals[i].remove);
		r = h_call(c, m, "consent-recorded");
		code = h_str(r, "code");
		cr_expect(h_is_op(r, "error") && code != NULL &&
		    strcmp(code, refusals[i].code) == 0,
		    "%s: expected %s, got %s", refusals[i].what,
		    refusals[i].code, h_dump(r));
		if (refusals[i].field != NULL)
			cr_expect(h_str(r, "field") != NULL &&
			    strcmp(h_str(r, "field"), refusals[i].field) == 0,
			    "%s: expected field %s, got %s", refusals[i].what,
			    refusals[i].field, h_dump(r));
		h_close(&c);
	}
	/* None of them left a consent behind. */
	cr_expect_eq(json_array_size(h_get(h_audit_subject(env,
	    "pnc=" H_PNC_A), "consents")), 0);
}

H_TEST(consent_wire, policy_in_config_may_let_a_type_record_consent)
{
	struct h_client	*housing;
	json_t		*g;

	env = h_env_new(&(struct h_env_opts){ .extra_conf =
	    "[policy.housing-provider]\nrecord_consent = yes\n" });
	housing = h_agent(env, H_HOUSING, false);
	g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	expect_recorded(h_call(housing, g, "consent-recorded"),
	    h_str(g, "cid"), 1);
}

/* Grants in order about one person; the identifiers of each and the
 * answer it must get. */
static const struct {
	const char	*subject;
	const char	*code;		/* NULL: consent-recorded */
} identity_steps[] = {
	{ "{\"pnc\": \"" H_PNC_A "\", \"noms\": \"A1234BC\"}", NULL },
	{ "{\"pnc\": \"" H_PNC_A "\", \"noms\": \"B2345CD\"}",
	    "identity-conflict" },
	{ "{\"noms\": \"A1234BC\", \"pnc\": \"" H_PNC_B "\"}",
	    "identity-conflict" },
	{ "{\"pnc\": \"04/12345D\", \"noms\": \"A1234BC\"}", NULL },
	{ "{\"pnc\": \"" H_PNC_A "\", \"crn\": \"X123456\"}", NULL },
	{ "{\"crn\": \"X123456\", \"pnc\": \"" H_PNC_C "\"}",
	    "identity-conflict" },
	{ "{\"pnc\": \"" H_PNC_B "\", \"noms\": \"B2345CD\"}", NULL },
};

H_TEST(consent_wire, grant_contradicting_existing_identifiers_is_identity_conflict)
{
	struct h_client	*carat;
	size_t		 i;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	for (i = 0; i < sizeof(identity_steps) / sizeof(identity_steps[0]);
	    i++) {
		json_t *g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A), *r;

		json_object_set(g, "subject", h_json(identity_steps[i].subject));
		r = h_call(carat, g, "consent-recorded");
		if (identity_steps[i].code == NULL)
			cr_expect(h_is_op(r, "consent-recorded"),
			    "step %zu %s: %s", i, identity_steps[i].subject,
			    h_dump(r));
		else
			cr_expect(h_is_op(r, "error") && h_str(r, "code") &&
			    strcmp(h_str(r, "code"), identity_steps[i].code) ==
			    0 && h_str(r, "field") &&
			    strcmp(h_str(r, "field"), "subject") == 0,
			    "step %zu %s: expected %s on subject, got %s", i,
			    identity_steps[i].subject, identity_steps[i].code,
			    h_dump(r));
	}
}
