/*
 * test_routing.c - durable routing and delivery (issue 6, DESIGN §5, §6):
 * who receives what, stripped how, queued while offline, in order, once,
 * purged on withdrawal, through kill -9 and a full store, and nothing of a
 * record in clear on disk.
 */
#define _GNU_SOURCE	/* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "../lib/harness.h"

#define H_BRADFORD	"cjit.bradford"

static struct h_env	*env;

static void
teardown(void)
{
	h_env_destroy(&env);
}

TestSuite(routing, .fini = teardown, .timeout = 120);

/* A release plan sent to named agencies (csv). */
static json_t *
plan_to(const char *pnc, const char *name, const char *to)
{
	json_t	*m = h_release_plan_new(pnc, name);

	json_object_set(m, "to", h_csv(to));
	return m;
}

/* Subscribe an agency to release plans of Leeds and leave it offline. */
static void
subscribe_offline(const char *agency)
{
	struct h_client	*c = h_agent(env, agency, true);

	h_assert_op(h_subscribe(c, "release-plan", H_AREA), "subscribed");
	h_assert_op(h_hello(c, false), "welcome");
	h_close(&c);
}

/* The mids of a JSON array of deliveries, in order, as one csv line. */
static const char *
mids_of(json_t *deliveries)
{
	json_t	*d;
	size_t	 i;
	char	*s = calloc(1, json_array_size(deliveries) * 37 + 1);

	json_array_foreach(deliveries, i, d) {
		if (i > 0)
			strcat(s, ",");
		strcat(s, h_str(d, "mid") ? h_str(d, "mid") : "?");
	}
	return h_keep_str(s);
}

/* Publish n release plans about pnc without waiting, then collect the n
 * answers; every one must be `accepted`.  Returns the mids in order. */
static json_t *
publish_many(struct h_client *c, size_t n, const char *pnc, const char *to)
{
	json_t	*mids = h_keep(json_array());
	size_t	 i;

	for (i = 0; i < n; i++) {
		json_t *m = to != NULL ? plan_to(pnc, "Manyplans", to) :
		    h_release_plan_new(pnc, "Manyplans");

		json_array_append(mids, json_object_get(m, "mid"));
		cr_assert_eq(h_send(c, m), 0);
	}
	for (i = 0; i < n; i++) {
		json_t *r = h_recv(c, "accepted,error", 10000);

		h_assert_op(r, "accepted");
	}
	return mids;
}

/* Where the delivered mids (csv) and the expected ones first differ, for
 * the failure message. */
static const char *
first_difference(const char *csv, json_t *mids)
{
	json_t	*got = h_csv(csv), *m;
	size_t	 i;
	char	*s;

	json_array_foreach(mids, i, m) {
		const char *g = json_string_value(json_array_get(got, i));

		if (g == NULL || strcmp(g, json_string_value(m)) != 0) {
			if (asprintf(&s, "at %zu of %zu: got %s, want %s", i,
			    json_array_size(mids), g ? g : "nothing",
			    json_string_value(m)) == -1)
				return "?";
			return h_keep_str(s);
		}
	}
	if (json_array_size(got) > json_array_size(mids))
		return "more than expected";
	return "no difference";
}

static bool
csv_eq_mids(const char *csv, json_t *mids)
{
	json_t	*m;
	size_t	 i;
	char	*s = calloc(1, json_array_size(mids) * 37 + 1);
	bool	 eq;

	json_array_foreach(mids, i, m) {
		if (i > 0)
			strcat(s, ",");
		strcat(s, json_string_value(m));
	}
	eq = strcmp(s, csv) == 0;
	free(s);
	return eq;
}

/* ---------------------------------------------------------------- routing */

/*
 * One consent naming cjit.leeds and probation.leeds for the basic
 * categories; all five agencies subscribe.  Per recipient: does it get the
 * record, which categories are withheld, and which fields must be there or
 * must not.
 */
static const struct {
	const char	*agency;
	bool		 delivered;
	const char	*withheld;	/* exact set, csv */
	const char	*present;	/* body paths, csv */
	const char	*absent;	/* body paths, csv */
} named_only[] = {
	{ H_CJIT, true,
	    "cj-identifiers,treatment-clinical,housing-address,narrative",
	    "person.family_name,release_date,in_treatment,accommodation_need,"
	    "offender_manager.name",
	    "substitute_medication,dose_mg,primary_substance,release_address,"
	    "notes" },
	{ H_PROBATION, true,
	    "cj-identifiers,treatment-clinical,housing-address,narrative",
	    "person.family_name,release_date,accommodation_need",
	    "substitute_medication,dose_mg,primary_substance,release_address,"
	    "notes" },
	{ H_HOUSING, false, NULL, NULL, NULL },
	{ H_BRADFORD, false, NULL, NULL, NULL },
};

H_TEST(routing, consent_routes_only_to_named_agencies_and_strips_the_rest)
{
	struct h_client	*carat, *c[4];
	json_t		*g, *m, *d, *t;
	size_t		 i, n = sizeof(named_only) / sizeof(named_only[0]);

	env = h_env_new(&(struct h_env_opts){
	    .agencies = H_BRADFORD ":cjit:" H_AREA2 });
	carat = h_agent(env, H_CARAT, true);
	for (i = 0; i < n; i++) {
		c[i] = h_agent(env, named_only[i].agency, true);
		h_assert_op(h_subscribe(c[i], "release-plan",
		    strcmp(named_only[i].agency, H_BRADFORD) ? H_AREA : H_AREA2),
		    "subscribed");
	}
	g = h_grant_new(H_CJIT "," H_PROBATION, H_BASIC, H_PNC_A);
	h_assert_op(h_call(carat, g, "consent-recorded"), "consent-recorded");
	m = h_release_plan_new(H_PNC_A, "Testperson");
	h_assert_op(h_publish(carat, m), "accepted");

	for (i = 0; i < n; i++) {
		json_t	*want, *f;
		size_t	 j;

		if (!named_only[i].delivered) {
			d = h_deliveries(c[i], true);
			cr_expect_eq(json_array_size(d), 0, "%s received %s",
			    named_only[i].agency, h_dump(d));
			continue;
		}
		d = h_collect(c[i], "deliver", 1, H_TIMEOUT_MS, true);
		cr_assert_eq(json_array_size(d), 1, "%s: %s",
		    named_only[i].agency, h_dump(d));
		d = json_array_get(d, 0);
		cr_expect_str_eq(h_str(d, "mid"), h_str(m, "mid"));
		cr_expect_str_eq(h_str(d, "from"), H_CARAT);
		cr_expect_str_eq(h_str(d, "type"), "release-plan");
		cr_expect_str_eq(h_str(d, "purpose"), "continuity-of-care");
		cr_expect_str_eq(h_str(d, "area"), H_AREA);
		cr_expect_str_eq(h_str(d, "created"), h_str(m, "created"));
		cr_expect_str_eq(h_str(d, "consent.cid"), h_str(g, "cid"));
		cr_expect_eq(h_int(d, "consent.version"), 1);
		cr_expect(h_set_eq(h_get(d, "withheld_categories"),
		    named_only[i].withheld), "%s withheld %s, want %s",
		    named_only[i].agency,
		    h_dump(h_get(d, "withheld_categories")),
		    named_only[i].withheld);
		cr_expect_null(h_get(d, "subject.pnc"),
		    "%s got the PNC without cj-identifiers",
		    named_only[i].agency);
		cr_expect_str_eq(h_str(d, "body.person.family_name"),
		    "Testperson");
		want = h_csv(named_only[i].present);
		json_array_foreach(want, j, f)
			cr_expect_not_null(h_get(h_get(d, "body"),
			    json_string_value(f)), "%s lacks body.%s: %s",
			    named_only[i].agency, json_string_value(f),
			    h_dump(d));
		want = h_csv(named_only[i].absent);
		json_array_foreach(want, j, f)
			cr_expect_null(h_get(h_get(d, "body"),
			    json_string_value(f)), "%s received body.%s",
			    named_only[i].agency, json_string_value(f));
	}
	/* The subscriber without consent is withheld; the one of another
	 * area was never a recipient. */
	t = h_track(carat, h_str(m, "mid"));
	h_assert_op(t, "status");
	cr_expect_eq(json_array_size(h_get(t, "recipients")), 3, "%s",
	    h_dump(t));
	cr_expect_str_eq(h_str(h_track_of(carat, h_str(m, "mid"), H_HOUSING),
	    "reason"), "no-consent");
	cr_expect_null(h_track_of(carat, h_str(m, "mid"), H_BRADFORD));
}

/*
 * Policy narrows what consent allows: with every category consented
 * (explicitly), each agency type still receives only its `receive` set.
 */
static const struct {
	const char	*agency;
	const char	*withheld;
	bool		 pnc;		/* subject.pnc delivered */
} by_policy[] = {
	{ H_CJIT,	"",					true },
	{ H_PROBATION,	"treatment-clinical,narrative",		true },
	{ H_HOUSING,	"cj-identifiers,treatment-clinical",	false },
	{ H_LA,		"cj-identifiers,treatment-clinical",	false },
};

H_TEST(routing, recipient_type_policy_narrows_what_consent_allows)
{
	struct h_client	*carat, *c[4];
	json_t		*g, *m, *d;
	size_t		 i, n = sizeof(by_policy) / sizeof(by_policy[0]);

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	g = h_grant_new(H_CJIT "," H_PROBATION "," H_HOUSING "," H_LA,
	    H_ALL_CATS, H_PNC_A);
	json_object_set_new(g, "explicit", json_true());
	h_assert_op(h_call(carat, g, "consent-recorded"), "consent-recorded");
	for (i = 0; i < n; i++)
		c[i] = h_agent(env, by_policy[i].agency, true);
	m = plan_to(H_PNC_A, "Policyperson",
	    H_CJIT "," H_PROBATION "," H_HOUSING "," H_LA);
	h_assert_op(h_publish(carat, m), "accepted");
	for (i = 0; i < n; i++) {
		d = h_collect(c[i], "deliver", 1, H_TIMEOUT_MS, true);
		cr_assert_eq(json_array_size(d), 1, "%s: %s",
		    by_policy[i].agency, h_dump(d));
		d = json_array_get(d, 0);
		cr_expect(h_set_eq(h_get(d, "withheld_categories") ?
		    h_get(d, "withheld_categories") : h_csv(""),
		    by_policy[i].withheld), "%s withheld %s, want %s",
		    by_policy[i].agency,
		    h_dump(h_get(d, "withheld_categories")),
		    by_policy[i].withheld);
		cr_expect_eq(h_get(d, "subject.pnc") != NULL, by_policy[i].pnc,
		    "%s subject %s", by_policy[i].agency,
		    h_dump(h_get(d, "subject")));
		cr_expect_eq(h_get(d, "body.dose_mg") != NULL,
		    strstr(by_policy[i].withheld, "treatment-clinical") == NULL,
		    "%s dose_mg: %s", by_policy[i].agency, h_dump(d));
		cr_expect_eq(h_get(d, "body.notes") != NULL,
		    strstr(by_policy[i].withheld, "narrative") == NULL,
		    "%s notes: %s", by_policy[i].agency, h_dump(d));
	}
}

H_TEST(routing, no_consent_gives_a_withheld_receipt_and_delivers_nothing)
{
	struct h_client	*carat, *cjit;
	json_t		*m, *r;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	m = h_jsonf("{\"op\": \"publish\", \"mid\": \"%s\","
	    " \"type\": \"handover\", \"purpose\": \"continuity-of-care\","
	    " \"subject\": {\"pnc\": \"" H_PNC_C "\"}, \"area\": \"" H_AREA "\","
	    " \"to\": [\"" H_CJIT "\"], \"created\": \"2026-01-05T10:00:00Z\","
	    " \"body\": {\"person\": {\"family_name\": \"Noconsent\"},"
	    " \"establishment\": \"LEI\", \"handover_status\": \"offered\"}}",
	    h_uuid((char[37]){ 0 }));
	h_assert_op(h_publish(carat, m), "accepted");
	r = h_receipt_for(carat, h_str(m, "mid"), H_CJIT, H_TIMEOUT_MS);
	cr_assert_not_null(r, "no receipt");
	cr_expect_str_eq(h_str(r, "state"), "withheld", "%s", h_dump(r));
	cr_expect_str_eq(h_str(r, "reason"), "no-consent", "%s", h_dump(r));
	cr_expect_eq(json_array_size(h_deliveries(cjit, true)), 0);
	r = h_track_of(carat, h_str(m, "mid"), H_CJIT);
	cr_expect_str_eq(h_str(r, "state"), "withheld", "%s", h_dump(r));
	cr_expect_str_eq(h_str(r, "reason"), "no-consent", "%s", h_dump(r));
}

H_TEST(routing, republishing_the_same_mid_is_idempotent)
{
	struct h_client	*carat, *cjit;
	json_t		*m, *r, *d;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_B),
	    "consent-recorded");
	m = h_release_plan_new(H_PNC_B, "Twice");
	r = h_publish(carat, m);
	h_assert_op(r, "accepted");
	cr_expect_str_eq(h_str(r, "mid"), h_str(m, "mid"));
	r = h_publish(carat, m);
	h_assert_op(r, "accepted");
	cr_expect_str_eq(h_str(r, "mid"), h_str(m, "mid"));
	d = h_deliveries(cjit, true);
	cr_expect_eq(json_array_size(d), 1, "%s", h_dump(d));
	cr_expect_eq(json_array_size(h_get(h_track(carat, h_str(m, "mid")),
	    "recipients")), 1);

	/* A mid is the sender's own: another agency cannot reuse it. */
	r = h_publish(h_agent(env, H_CJIT, false), m);
	cr_expect(!h_is_op(r, "accepted"), "cjit reused carat's mid: %s",
	    h_dump(r));
}

/* ---------------------------------------------------------------- queues */

H_TEST(routing, offline_recipient_gets_its_queue_in_order_and_once)
{
	struct h_client	*carat, *cjit;
	json_t		*mids, *d;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	subscribe_offline(H_CJIT);
	mids = publish_many(carat, 50, H_PNC_A, NULL);

	cjit = h_agent(env, H_CJIT, true);
	d = h_collect(cjit, "deliver", 50, 10000, true);
	cr_expect(csv_eq_mids(mids_of(d), mids), "got %zu of 50: %s",
	    json_array_size(d), first_difference(mids_of(d), mids));
	/* Acked: nothing again, not even after a reconnect. */
	cr_expect_eq(json_array_size(h_deliveries(cjit, true)), 0);
	h_close(&cjit);
	cjit = h_agent(env, H_CJIT, true);
	d = h_deliveries(cjit, true);
	cr_expect_eq(json_array_size(d), 0, "%zu acked deliveries came again",
	    json_array_size(d));
}

H_TEST(routing, unacked_deliveries_are_sent_again_after_reconnect_only)
{
	struct h_client	*carat, *cjit;
	json_t		*mids, *d;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");
	mids = publish_many(carat, 3, H_PNC_A, NULL);
	d = h_collect(cjit, "deliver", 3, H_TIMEOUT_MS, false);
	cr_assert(csv_eq_mids(mids_of(d), mids), "first: %s", mids_of(d));
	/* Not resent on the same connection. */
	cr_expect_eq(json_array_size(h_deliveries(cjit, false)), 0);
	h_close(&cjit);

	cjit = h_agent(env, H_CJIT, true);
	d = h_collect(cjit, "deliver", 3, H_TIMEOUT_MS, true);
	cr_expect(csv_eq_mids(mids_of(d), mids), "again: %s", mids_of(d));
	h_close(&cjit);
	cjit = h_agent(env, H_CJIT, true);
	cr_expect_eq(json_array_size(h_deliveries(cjit, true)), 0);
}

H_TEST(routing, withdrawal_purges_queued_deliveries_which_never_arrive)
{
	struct h_client	*carat, *cjit;
	json_t		*g, *mids, *r, *mid;
	size_t		 i;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	h_assert_op(h_call(carat, g, "consent-recorded"), "consent-recorded");
	subscribe_offline(H_CJIT);
	mids = publish_many(carat, 3, H_PNC_A, NULL);
	h_assert_op(h_call(carat, h_withdraw_new(h_str(g, "cid"), NULL),
	    "consent-recorded"), "consent-recorded");

	json_array_foreach(mids, i, mid) {
		r = h_receipt_for(carat, json_string_value(mid), H_CJIT,
		    H_TIMEOUT_MS);
		cr_assert_not_null(r, "no receipt for message %zu", i);
		cr_expect_str_eq(h_str(r, "state"), "purged", "%s", h_dump(r));
		cr_expect_str_eq(h_str(r, "reason"), "no-consent", "%s",
		    h_dump(r));
		r = h_track_of(carat, json_string_value(mid), H_CJIT);
		cr_expect_str_eq(h_str(r, "state"), "purged", "%s", h_dump(r));
	}
	cjit = h_agent(env, H_CJIT, true);
	r = h_deliveries(cjit, true);
	cr_expect_eq(json_array_size(r), 0, "purged but delivered: %s",
	    h_dump(r));
}

H_TEST(routing, withdrawal_purges_sent_but_unacked_deliveries)
{
	struct h_client	*carat, *cjit;
	json_t		*g, *m, *d, *r;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");
	g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	h_assert_op(h_call(carat, g, "consent-recorded"), "consent-recorded");
	m = h_release_plan_new(H_PNC_A, "Unacked");
	h_assert_op(h_publish(carat, m), "accepted");
	d = h_collect(cjit, "deliver", 1, H_TIMEOUT_MS, false);
	cr_assert_eq(json_array_size(d), 1);
	h_assert_op(h_call(carat, h_withdraw_new(h_str(g, "cid"), NULL),
	    "consent-recorded"), "consent-recorded");
	r = h_receipt_for(carat, h_str(m, "mid"), H_CJIT, H_TIMEOUT_MS);
	cr_assert_not_null(r);
	cr_expect_str_eq(h_str(r, "state"), "purged", "%s", h_dump(r));
	/* A late ack changes nothing, and nothing comes back. */
	h_ack(cjit, json_array_get(d, 0));
	h_close(&cjit);
	cjit = h_agent(env, H_CJIT, true);
	cr_expect_eq(json_array_size(h_deliveries(cjit, true)), 0);
	cr_expect_str_eq(h_str(h_track_of(carat, h_str(m, "mid"), H_CJIT),
	    "state"), "purged");
}

/* ---------------------------------------------------------------- decision */

/* Consent periods that do not permit now. */
static const struct {
	const char	*what;
	int64_t		 from_s, until_s;
} periods[] = {
	{ "not yet valid", 86400, 30 * 86400 },
	{ "ended", -30 * 86400, -86400 },
};

H_TEST(routing, consent_outside_its_period_delivers_nothing)
{
	size_t	i;

	env = h_env_new(NULL);
	for (i = 0; i < sizeof(periods) / sizeof(periods[0]); i++) {
		struct h_client	*carat = h_agent(env, H_CARAT, true);
		struct h_client	*cjit = h_agent(env, H_CJIT, true);
		json_t		*g, *m, *r;
		char		 t[32];
		const char	*pnc = i == 0 ? H_PNC_A : H_PNC_B;

		g = h_grant_new(H_CJIT, H_BASIC, pnc);
		json_object_set_new(g, "valid_from",
		    json_string(h_time(periods[i].from_s, t)));
		json_object_set_new(g, "valid_until",
		    json_string(h_time(periods[i].until_s, t)));
		h_assert_op(h_call(carat, g, "consent-recorded"),
		    "consent-recorded");
		m = plan_to(pnc, "Period", H_CJIT);
		h_assert_op(h_publish(carat, m), "accepted");
		r = h_receipt_for(carat, h_str(m, "mid"), H_CJIT, H_TIMEOUT_MS);
		cr_expect_str_eq(h_str(r, "state"), "withheld", "%s: %s",
		    periods[i].what, h_dump(r));
		cr_expect_str_eq(h_str(r, "reason"), "no-consent", "%s: %s",
		    periods[i].what, h_dump(r));
		cr_expect_eq(json_array_size(h_deliveries(cjit, true)), 0,
		    "%s: delivered", periods[i].what);
		h_close(&carat);
		h_close(&cjit);
	}
}

H_TEST(routing, a_deny_in_any_consent_overrides_every_permit)
{
	struct h_client	*carat, *cjit, *prob;
	json_t		*permit, *deny, *m, *r, *d;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	prob = h_agent(env, H_PROBATION, true);
	permit = h_grant_new(H_CJIT "," H_PROBATION, H_BASIC, H_PNC_A);
	h_assert_op(h_call(carat, permit, "consent-recorded"),
	    "consent-recorded");
	/* A second consent about the same person: deny cjit everything,
	 * and housing to everyone. */
	deny = h_grant_new(H_PROBATION, "identity", H_PNC_A);
	json_object_set(deny, "deny", h_json("[{\"recipients\": [\""
	    H_CJIT "\"]}, {\"categories\": [\"housing\"]}]"));
	h_assert_op(h_call(carat, deny, "consent-recorded"),
	    "consent-recorded");

	m = plan_to(H_PNC_A, "Denied", H_CJIT "," H_PROBATION);
	h_assert_op(h_publish(carat, m), "accepted");
	r = h_receipt_for(carat, h_str(m, "mid"), H_CJIT, H_TIMEOUT_MS);
	cr_expect_str_eq(h_str(r, "state"), "withheld", "%s", h_dump(r));
	cr_expect_str_eq(h_str(r, "reason"), "no-consent", "%s", h_dump(r));
	cr_expect_eq(json_array_size(h_deliveries(cjit, true)), 0);

	d = h_collect(prob, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1, "%s", h_dump(d));
	cr_expect_null(h_get(d, "0.body.accommodation_need"),
	    "denied housing field delivered");
	cr_expect_not_null(h_get(d, "0.body.release_date"));
	cr_expect(h_has_str(h_get(d, "0.withheld_categories"), "housing"),
	    "%s", h_dump(h_get(d, "0.withheld_categories")));
}

H_TEST(routing, identifiers_contradicting_the_consent_are_withheld_as_conflict)
{
	struct h_client	*carat, *cjit;
	json_t		*g, *m, *r;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	json_object_set(g, "subject", h_json("{\"pnc\": \"" H_PNC_A "\","
	    " \"noms\": \"A1234BC\"}"));
	h_assert_op(h_call(carat, g, "consent-recorded"), "consent-recorded");

	m = plan_to(H_PNC_A, "Conflicted", H_CJIT);
	json_object_set(m, "subject", h_json("{\"pnc\": \"" H_PNC_A "\","
	    " \"noms\": \"Z9999ZZ\"}"));
	h_assert_op(h_publish(carat, m), "accepted");
	r = h_receipt_for(carat, h_str(m, "mid"), H_CJIT, H_TIMEOUT_MS);
	cr_expect_str_eq(h_str(r, "state"), "withheld", "%s", h_dump(r));
	cr_expect_str_eq(h_str(r, "reason"), "identity-conflict", "%s",
	    h_dump(r));
	cr_expect_eq(json_array_size(h_deliveries(cjit, true)), 0);

	/* The same person named consistently is delivered. */
	m = plan_to(H_PNC_A, "Consistent", H_CJIT);
	json_object_set(m, "subject", h_json("{\"noms\": \"A1234BC\"}"));
	h_assert_op(h_publish(carat, m), "accepted");
	cr_expect_eq(json_array_size(h_collect(cjit, "deliver", 1,
	    H_TIMEOUT_MS, true)), 1);
}

H_TEST(routing, subscriptions_to_direct_types_nominate_nothing)
{
	struct h_client	*carat, *cjit, *prob;
	json_t		*m, *t;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	prob = h_agent(env, H_PROBATION, true);
	h_assert_op(h_grant(carat, H_CJIT "," H_PROBATION, H_BASIC, H_PNC_A),
	    "consent-recorded");
	h_subscribe(prob, "handover,release-plan", H_AREA);
	m = h_jsonf("{\"op\": \"publish\", \"mid\": \"%s\","
	    " \"type\": \"handover\", \"purpose\": \"continuity-of-care\","
	    " \"subject\": {\"pnc\": \"" H_PNC_A "\"}, \"area\": \"" H_AREA "\","
	    " \"to\": [\"" H_CJIT "\"], \"created\": \"2026-01-05T10:00:00Z\","
	    " \"body\": {\"person\": {\"family_name\": \"Handed\"},"
	    " \"handover_status\": \"offered\"}}", h_uuid((char[37]){ 0 }));
	h_assert_op(h_publish(carat, m), "accepted");
	cr_expect_eq(json_array_size(h_collect(cjit, "deliver", 1,
	    H_TIMEOUT_MS, true)), 1);
	cr_expect_eq(json_array_size(h_deliveries(prob, true)), 0);
	t = h_track(carat, h_str(m, "mid"));
	cr_expect_eq(json_array_size(h_get(t, "recipients")), 1, "%s",
	    h_dump(t));
}

/* Publishes and subscriptions refused before anything is stored. */
static const struct {
	const char	*what;
	const char	*sender;
	const char	*json;		/* %s: a fresh mid */
	const char	*code;
	const char	*field;
} refused_inputs[] = {
	{ "to names an unknown agency", H_CARAT,
	    "{\"op\": \"publish\", \"mid\": \"%s\", \"type\": \"release-plan\","
	    " \"purpose\": \"continuity-of-care\","
	    " \"subject\": {\"pnc\": \"" H_PNC_A "\"}, \"area\": \"" H_AREA "\","
	    " \"to\": [\"" H_CJIT "\", \"nobody.here\"],"
	    " \"created\": \"2026-01-05T10:00:00Z\","
	    " \"body\": {\"person\": {\"family_name\": \"X\"}}}",
	    "unknown-recipient", "to.1" },
	{ "probation may publish nothing", H_PROBATION,
	    "{\"op\": \"publish\", \"mid\": \"%s\", \"type\": \"release-plan\","
	    " \"purpose\": \"continuity-of-care\","
	    " \"subject\": {\"pnc\": \"" H_PNC_A "\"}, \"area\": \"" H_AREA "\","
	    " \"created\": \"2026-01-05T10:00:00Z\","
	    " \"body\": {\"person\": {\"family_name\": \"X\"}}}",
	    "not-permitted", "type" },
	{ "handover without to", H_CARAT,
	    "{\"op\": \"publish\", \"mid\": \"%s\", \"type\": \"handover\","
	    " \"purpose\": \"continuity-of-care\","
	    " \"subject\": {\"pnc\": \"" H_PNC_A "\"}, \"area\": \"" H_AREA "\","
	    " \"created\": \"2026-01-05T10:00:00Z\","
	    " \"body\": {\"person\": {\"family_name\": \"X\"}}}",
	    "missing-field", "to" },
	{ "subscribe to an area not listed", H_CJIT,
	    "{\"op\": \"subscribe\", \"types\": [\"release-plan\"],"
	    " \"areas\": [\"" H_AREA "\", \"" H_AREA2 "\"]}",
	    "not-permitted", "areas.1" },
};

H_TEST(routing, refused_publishes_and_subscriptions_name_code_and_field)
{
	size_t	i;
	char	mid[37];

	env = h_env_new(NULL);
	for (i = 0; i < sizeof(refused_inputs) / sizeof(refused_inputs[0]);
	    i++) {
		struct h_client	*c = h_agent(env, refused_inputs[i].sender,
		    false);
		json_t		*r;

		r = h_call(c, h_jsonf(refused_inputs[i].json, h_uuid(mid)),
		    "accepted,subscribed");
		cr_expect(h_is_op(r, "error") && h_str(r, "code") &&
		    !strcmp(h_str(r, "code"), refused_inputs[i].code) &&
		    h_str(r, "field") &&
		    !strcmp(h_str(r, "field"), refused_inputs[i].field),
		    "%s: expected %s on %s, got %s", refused_inputs[i].what,
		    refused_inputs[i].code, refused_inputs[i].field,
		    h_dump(r));
		h_close(&c);
	}
}

H_TEST(routing, track_shows_each_recipients_state)
{
	struct h_client	*carat, *cjit;
	json_t		*m, *t, *e;
	size_t		 i;
	static const struct {
		const char *agency, *state, *reason;
	} want[] = {
		{ H_CJIT, "delivered", NULL },
		{ H_PROBATION, "queued", NULL },
		{ H_HOUSING, "withheld", "no-consent" },
	};

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_grant(carat, H_CJIT "," H_PROBATION, H_BASIC, H_PNC_A),
	    "consent-recorded");
	m = plan_to(H_PNC_A, "Tracked", H_CJIT "," H_PROBATION "," H_HOUSING);
	h_assert_op(h_publish(carat, m), "accepted");
	cr_assert_eq(json_array_size(h_collect(cjit, "deliver", 1,
	    H_TIMEOUT_MS, true)), 1);
	cr_assert_not_null(h_receipt_for(carat, h_str(m, "mid"), H_CJIT,
	    H_TIMEOUT_MS));

	t = h_track(carat, h_str(m, "mid"));
	h_assert_op(t, "status");
	cr_expect_str_eq(h_str(t, "mid"), h_str(m, "mid"));
	cr_expect_eq(json_array_size(h_get(t, "recipients")), 3, "%s",
	    h_dump(t));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		e = h_track_of(carat, h_str(m, "mid"), want[i].agency);
		cr_assert_not_null(e, "no entry for %s", want[i].agency);
		cr_expect_str_eq(h_str(e, "state"), want[i].state, "%s",
		    h_dump(e));
		if (want[i].reason != NULL)
			cr_expect_str_eq(h_str(e, "reason"), want[i].reason,
			    "%s", h_dump(e));
		else
			cr_expect_null(h_get(e, "reason"), "%s", h_dump(e));
		cr_expect_not_null(h_str(e, "at"), "%s", h_dump(e));
	}
}

/* ---------------------------------------------------------------- durability */

H_TEST(routing, accepted_publishes_survive_kill_9)
{
	struct h_client	*carat, *cjit;
	json_t		*mids, *d;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	subscribe_offline(H_CJIT);
	mids = publish_many(carat, 100, H_PNC_A, NULL);
	h_broker_kill9(env);
	h_close(&carat);
	h_broker_start(env);

	cjit = h_agent(env, H_CJIT, true);
	d = h_collect(cjit, "deliver", 100, 15000, true);
	cr_expect_eq(json_array_size(d), 100, "%zu of 100 after kill -9",
	    json_array_size(d));
	cr_expect(csv_eq_mids(mids_of(d), mids), "order or content: %s",
	    first_difference(mids_of(d), mids));
	cr_expect_eq(h_ccbroker(env, NULL, NULL, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "audit chain broken by kill -9");
}

H_TEST(routing, full_store_refuses_publishes_loses_nothing_and_recovers)
{
	struct h_client	*carat, *cjit;
	json_t		*accepted = NULL, *d, *r = NULL, *first, *e;
	size_t		 i, sent = 0, full = 0, dups = 0;
	int		 tries;

	env = h_env_new(&(struct h_env_opts){ .map_size_mb = 16 });
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	accepted = h_keep(json_array());
	/* Fill it in rounds of 50 until publishes are refused. */
	while (full == 0 && sent < 2000) {
		for (i = 0; i < 50; i++, sent++)
			cr_assert_eq(h_send(carat, h_big_plan(H_CJIT)), 0);
		for (i = 0; i < 50; i++) {
			r = h_recv(carat, "accepted,error", 10000);
			cr_assert_not_null(r, "no answer");
			if (h_is_op(r, "accepted"))
				json_array_append(accepted,
				    json_object_get(r, "mid"));
			else {
				h_assert_error(r, "storage-full", NULL);
				full++;
			}
		}
	}
	cr_assert_gt(full, 0, "%zu publishes of 40 KB fit in 16 MB", sent);
	cr_log_info("16 MB store: %zu of %zu publishes accepted before "
	    "storage-full", json_array_size(accepted), sent);

	/* Everything accepted is delivered; the acks free the store. */
	cjit = h_agent(env, H_CJIT, true);
	d = h_collect(cjit, "deliver", 0, 30000, true);
	/*
	 * At least once: an agent drops what it already has by mid.  Nothing
	 * accepted may be missing, and first arrivals keep acceptance order.
	 * Within this one connection nothing may come twice (DESIGN §6).
	 */
	first = h_keep(json_array());
	json_array_foreach(d, i, e) {
		json_t	*m;
		size_t	 j;
		bool	 seen = false;

		json_array_foreach(first, j, m)
			seen |= strcmp(h_str(e, "mid"), h_str(m, "mid")) == 0;
		if (seen)
			dups++;
		else
			json_array_append(first, e);
	}
	cr_expect(csv_eq_mids(mids_of(first), accepted), "accepted but not "
	    "delivered, or out of order: %s",
	    first_difference(mids_of(first), accepted));
	cr_expect_eq(dups, 0, "%zu deliveries sent twice on one connection; "
	    "broker log:\n%s", dups, h_log(env));

	for (tries = 0; tries < 50; tries++) {
		r = h_publish(carat, h_big_plan(H_CJIT));
		if (h_is_op(r, "accepted"))
			break;
		h_assert_error(r, "storage-full", NULL);
		/* Slow builds (sanitizers) may still be delivering. */
		(void)h_collect(cjit, "deliver", 0, 1000, true);
	}
	h_assert_op(r, "accepted");
}

H_TEST(routing, data_directory_holds_no_name_or_identifier_in_clear)
{
	static const char *const secrets[] = {
		"Quixotesmythe", "Zebedaya", "2004/0012345D", "0012345D",
		"A1234BC", "Worker Wolfgangus", "LS9 8ZZ", "Tumbledown Lane",
	};
	struct h_client	*carat;
	json_t		*g, *m;
	char		*out;
	size_t		 i;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	g = h_grant_new(H_CJIT "," H_PROBATION, H_ALL_CATS, H_PNC_A);
	json_object_set_new(g, "explicit", json_true());
	json_object_set(g, "subject", h_json("{\"pnc\": \"" H_PNC_A "\","
	    " \"noms\": \"A1234BC\"}"));
	json_object_set_new(json_object_get(g, "evidence"), "worker",
	    json_string("Worker Wolfgangus"));
	h_assert_op(h_call(carat, g, "consent-recorded"), "consent-recorded");
	subscribe_offline(H_CJIT);
	for (i = 0; i < 5; i++) {
		m = h_release_plan_new(H_PNC_A, "Quixotesmythe");
		json_object_set(m, "subject", h_json("{\"pnc\": \"04/12345D\","
		    " \"noms\": \"A1234BC\"}"));
		json_object_set_new(h_get(m, "body.person"), "given_name",
		    json_string("Zebedaya"));
		json_object_set(h_get(m, "body"), "release_address",
		    h_json("{\"line1\": \"1 Tumbledown Lane\","
		    " \"postcode\": \"LS9 8ZZ\"}"));
		h_assert_op(h_publish(carat, m), "accepted");
	}
	/* Queued for the offline CJIT, and on disk. */
	cr_assert_eq(h_queue_depth(h_stats(env), H_CJIT), 5);
	h_broker_stop(env);

	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		const char *argv[] = { "grep", "-r", "-l", "-a", "-F",
		    secrets[i], h_data(env), NULL };

		cr_expect_eq(h_run(env, &out, NULL, argv), 1,
		    "'%s' found in clear in: %s", secrets[i], out);
		cr_expect(!h_log_has(env, secrets[i]), "'%s' in the log",
		    secrets[i]);
	}
}

/* A grant to cjit about NOMS number `noms`, with 1,000 characters of
 * evidence reference so that grants fill a store quickly. */
static json_t *
grant_noms(const char *noms)
{
	json_t	*g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	char	 ref[1001];

	memset(ref, 'r', 1000);
	ref[1000] = '\0';
	json_object_set_new(g, "subject", h_jsonf("{\"noms\": \"%s\"}", noms));
	json_object_set_new(json_object_get(g, "evidence"), "reference",
	    json_string(ref));
	return g;
}

static char *
noms_of(size_t i, char out[8])
{
	snprintf(out, 8, "Q%04zu%c%c", i % 10000, (char)('A' + i / 10000 % 26),
	    (char)('A' + i / 260000 % 26));
	return out;
}

/*
 * Requests of a turn share one transaction; a store error in one of them
 * (here a full map: consent grants are not held back by the publishes'
 * reserve, so enough of them fill it) undoes the batch, which is then
 * handled request by request.  So the failure costs only the requests
 * that met it: every grant answered consent-recorded is in force, every
 * grant answered storage-full is not, and nothing else is refused.
 * (Pages freed by earlier commits come back into use, so a grant may be
 * recorded after one was refused.)
 */
H_TEST(routing, store_error_in_a_batch_costs_only_its_requests)
{
	struct h_client	*carat, *cjit;
	json_t		*r, *m, *d;
	char		 noms[8], ok[8] = "", bad[8] = "";
	size_t		 i, n = 0, full = 0, recorded = 0;

	env = h_env_new(&(struct h_env_opts){ .map_size_mb = 32 });
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	/* Publishes first, up to the reserve. */
	for (i = 0; i < 2000; i++) {
		r = h_publish(carat, h_big_plan(H_CJIT));
		if (!h_is_op(r, "accepted")) {
			h_assert_error(r, "storage-full", NULL);
			break;
		}
	}
	cr_assert_lt(i, 2000, "publishes never filled a 32 MB store");

	/* Then grants, 100 at a time so that many share a batch. */
	while (full == 0 && n < 20000) {
		for (i = 0; i < 100; i++)
			cr_assert_eq(h_send(carat,
			    grant_noms(noms_of(n + i, noms))), 0);
		for (i = 0; i < 100; i++, n++) {
			r = h_recv(carat, "consent-recorded,error", 10000);
			cr_assert_not_null(r, "no answer to grant %zu", n);
			if (h_is_op(r, "consent-recorded")) {
				noms_of(n, ok);
				recorded++;
				continue;
			}
			h_assert_error(r, "storage-full", NULL);
			if (full++ == 0)
				noms_of(n, bad);
		}
	}
	cr_assert_gt(full, 0, "%zu grants never filled the store", n);
	cr_assert_gt(recorded, 0);
	cr_log_info("32 MB store: %zu grants recorded, then %zu refused",
	    recorded, full);
	/* A commit failed; when its batch held several requests (timing
	 * decides: a slow build may take them one at a time), they were
	 * handled again each on its own, and the checks below hold. */
	if (!h_log_has(env, "commit failed"))
		cr_log_warn("the store filled before any commit failed");
	else if (!h_log_has(env, "handling each on its own"))
		cr_log_warn("every failed commit held one request");

	/* The recipient takes its deliveries, and the store has room. */
	cjit = h_agent(env, H_CJIT, true);
	(void)h_deliveries(cjit, true);
	for (i = 0; i < 50; i++) {
		m = plan_to(H_PNC_A, "Smallplan", H_CJIT);
		json_object_set_new(m, "subject",
		    h_jsonf("{\"noms\": \"%s\"}", ok));
		r = h_publish(carat, m);
		if (h_is_op(r, "accepted"))
			break;
		h_assert_error(r, "storage-full", NULL);
		/* Slow builds (sanitizers) may still be delivering. */
		(void)h_collect(cjit, "deliver", 0, 1000, true);
	}
	h_assert_op(r, "accepted");
	/* The last grant recorded is in force... */
	d = h_collect(cjit, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1, "the recorded grant of %s is not "
	    "in force", ok);
	cr_expect_str_eq(h_str(json_array_get(d, 0), "mid"), h_str(m, "mid"));
	/* ...and the first refused one is not. */
	m = plan_to(H_PNC_A, "Smallplan", H_CJIT);
	json_object_set_new(m, "subject", h_jsonf("{\"noms\": \"%s\"}", bad));
	h_assert_op(h_publish(carat, m), "accepted");
	r = h_track_of(carat, h_str(m, "mid"), H_CJIT);
	cr_expect_str_eq(h_str(r, "state"), "withheld", "%s", h_dump(r));
	cr_expect_eq(h_ccbroker(env, NULL, NULL, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "audit chain broken");
}

/* Set the store's format record (NULL: remove it). */
static void
set_format(const char *dir, const uint32_t *format)
{
	MDB_env	*e;
	MDB_txn	*t;
	MDB_dbi	 meta;
	MDB_val	 k = { 6, "format" }, v = { sizeof(*format), (void *)format };

	cr_assert_eq(mdb_env_create(&e), 0);
	cr_assert_eq(mdb_env_set_maxdbs(e, 16), 0);
	cr_assert_eq(mdb_env_open(e, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(e, NULL, 0, &t), 0);
	cr_assert_eq(mdb_dbi_open(t, "meta", 0, &meta), 0);
	if (format != NULL)
		cr_assert_eq(mdb_put(t, meta, &k, &v, 0), 0);
	else
		cr_assert_eq(mdb_del(t, meta, &k, NULL), 0);
	cr_assert_eq(mdb_txn_commit(t), 0);
	mdb_env_close(e);
}

/* A store of another format, or an older one without the record, is
 * refused with a message, never misread; its own format opens.  (This
 * store has a summary, which only format 3 and later write: the record
 * edited is said to be damaged.) */
H_TEST(routing, store_of_another_format_is_refused)
{
	struct h_client	*carat;
	uint32_t	 other = 1, own = 5;
	char		*err;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	h_close(&carat);
	cr_assert_eq(h_broker_stop(env), 0);

	set_format(h_data(env), &other);
	cr_expect_neq(h_broker_start_status(env), 0, "a store of format 1 "
	    "was opened");
	cr_expect_neq(h_ccbroker(env, NULL, &err, "stats", "-c", h_conf(env),
	    NULL), 0);
	cr_expect(strstr(err, "store damaged: its format record says 1") !=
	    NULL, "%s", err);

	set_format(h_data(env), NULL);
	cr_expect_neq(h_ccbroker(env, NULL, &err, "stats", "-c", h_conf(env),
	    NULL), 0);
	cr_expect(strstr(err, "store damaged: its format record is missing") !=
	    NULL, "%s", err);

	set_format(h_data(env), &own);
	h_broker_start(env);
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_PROBATION, H_BASIC, H_PNC_B),
	    "consent-recorded");
}
