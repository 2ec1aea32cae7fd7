/*
 * test_notice.c - notices (PROTOCOL.md 9.9): a withdrawal reaches every
 * agency that acknowledged a record under the consent, once, and no one
 * else; notices are queued, ordered and acked like deliveries; a consent
 * about to lapse, and one that lapsed, is told to the agency that
 * recorded it.
 */
#include <string.h>

#include "../lib/harness.h"

static struct h_env	*env;

/* Everything but the categories that need explicit consent. */
#define IDS	H_BASIC ",cj-identifiers"

/* A release plan about pnc sent to the agencies of csv. */
static json_t *
plan_to(const char *pnc, const char *to)
{
	json_t	*m = h_release_plan_new(pnc, "Noticed");

	json_object_set(m, "to", h_csv(to));
	return m;
}

/* Publish a plan to `to`, and have each receiver in rcv take (ack) it. */
static const char *
publish_acked(struct h_client *carat, const char *pnc, const char *to,
    struct h_client **rcv, size_t nrcv)
{
	json_t	*m = plan_to(pnc, to), *d;
	size_t	 i;

	h_assert_op(h_publish(carat, m), "accepted");
	for (i = 0; i < nrcv; i++) {
		d = h_collect(rcv[i], "deliver", 1, H_TIMEOUT_MS, true);
		cr_assert_eq(json_array_size(d), 1, "%s got no delivery",
		    h_agency(rcv[i]));
	}
	/* The acks are in once the sender has its `delivered` receipts
	 * (another connection's withdrawal could overtake them). */
	for (i = 0; i < nrcv; i++) {
		d = h_receipt_for(carat, h_str(m, "mid"), h_agency(rcv[i]),
		    H_TIMEOUT_MS);
		cr_assert_not_null(d);
		cr_assert_str_eq(h_str(d, "state"), "delivered");
	}
	return h_str(m, "mid");
}

/* The notices c is sent within the quiet time, acked. */
static json_t *
notices(struct h_client *c)
{
	return h_collect(c, "notice", 0, 2000, true);
}

H_TEST(notice, withdrawal_by_cid_tells_each_past_recipient_once)
{
	struct h_client	*carat, *cjit, *prob, *hous, *rcv[2];
	json_t		*r, *n, *t;
	const char	*cid, *mid;
	size_t		 i;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	prob = h_agent(env, H_PROBATION, true);
	hous = h_agent(env, H_HOUSING, true);
	r = h_grant(carat, H_CJIT "," H_PROBATION, IDS, H_PNC_A);
	h_assert_op(r, "consent-recorded");
	cid = h_str(r, "cid");
	rcv[0] = cjit;
	rcv[1] = prob;
	/* Housing is not named: withheld, so never a recipient. */
	mid = publish_acked(carat, H_PNC_A, H_CJIT "," H_PROBATION ","
	    H_HOUSING, rcv, 2);
	cr_assert_eq(json_array_size(h_deliveries(hous, true)), 0);

	r = h_call(carat, h_withdraw_new(cid, NULL), "consent-recorded");
	h_assert_op(r, "consent-recorded");
	for (i = 0; i < 2; i++) {
		n = notices(rcv[i]);
		cr_assert_eq(json_array_size(n), 1, "%s: %s", h_agency(rcv[i]),
		    h_dump(n));
		n = json_array_get(n, 0);
		cr_expect_str_eq(h_str(n, "kind"), "consent-withdrawn");
		cr_expect_str_eq(h_str(n, "consents.0.cid"), cid);
		cr_expect_eq(h_int(n, "consents.0.version"), 2);
		cr_expect(h_has_str(h_get(n, "mids"), mid), "%s", h_dump(n));
		cr_expect_eq(json_array_size(h_get(n, "mids")), 1);
		/* The identifiers it was given, so it can find its copy. */
		cr_expect_str_eq(h_str(n, "subject.pnc"), H_PNC_A, "%s",
		    h_dump(n));
		cr_expect_not_null(h_str(n, "nid"));
		cr_expect_not_null(h_str(n, "at"));
		cr_expect(h_int(n, "dseq") > 0);
	}
	cr_expect_eq(json_array_size(notices(hous)), 0,
	    "an agency that never received a record was told");
	/* track shows who was told. */
	t = h_track_of(carat, mid, H_CJIT);
	cr_expect(h_has_str(h_get(t, "notices"), "consent-withdrawn"), "%s",
	    h_dump(t));
	t = h_track_of(carat, mid, H_HOUSING);
	cr_expect_null(h_get(t, "notices"), "%s", h_dump(t));
	/* Acked: never sent again, even after a new session. */
	h_close(&cjit);
	cjit = h_agent(env, H_CJIT, true);
	cr_expect_eq(json_array_size(notices(cjit)), 0);
	cr_expect_eq(h_ccbroker(env, NULL, NULL, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "audit chain broken");
}

H_TEST(notice, withdrawal_by_subject_is_one_notice_per_agency)
{
	struct h_client	*carat, *cjit, *prob, *rcv[2];
	json_t		*r, *n;
	const char	*m1, *m2, *m3;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	prob = h_agent(env, H_PROBATION, true);
	/* Two consents of one client, each naming the CJIT. */
	h_assert_op(h_grant(carat, H_CJIT, IDS, H_PNC_A),
	    "consent-recorded");
	h_assert_op(h_grant(carat, H_CJIT "," H_PROBATION, H_BASIC, H_PNC_A),
	    "consent-recorded");
	/* Another client's record: not part of this withdrawal. */
	h_assert_op(h_grant(carat, H_CJIT, IDS, H_PNC_B),
	    "consent-recorded");
	rcv[0] = cjit;
	rcv[1] = prob;
	m1 = publish_acked(carat, H_PNC_A, H_CJIT "," H_PROBATION, rcv, 2);
	m2 = publish_acked(carat, H_PNC_A, H_CJIT, rcv, 1);
	m3 = publish_acked(carat, H_PNC_B, H_CJIT, rcv, 1);

	r = h_send(carat, h_withdraw_new(NULL, H_PNC_A)) == 0 ?
	    h_recv(carat, "consent-recorded,error", H_TIMEOUT_MS) : NULL;
	h_assert_op(r, "consent-recorded");
	n = notices(cjit);
	cr_assert_eq(json_array_size(n), 1, "%s", h_dump(n));
	n = json_array_get(n, 0);
	cr_expect(h_has_str(h_get(n, "mids"), m1), "%s", h_dump(n));
	cr_expect(h_has_str(h_get(n, "mids"), m2), "%s", h_dump(n));
	cr_expect(!h_has_str(h_get(n, "mids"), m3), "%s", h_dump(n));
	cr_expect_eq(json_array_size(h_get(n, "consents")), 1,
	    "each record relied on one consent: %s", h_dump(n));
	n = notices(prob);
	cr_assert_eq(json_array_size(n), 1, "%s", h_dump(n));
	n = json_array_get(n, 0);
	cr_expect(h_has_str(h_get(n, "mids"), m1));
	cr_expect_eq(json_array_size(h_get(n, "mids")), 1);
	/* Probation could not see cj-identifiers: it was given none. */
	cr_expect_eq(json_object_size(h_get(n, "subject")), 0, "%s",
	    h_dump(n));
	cr_expect_eq(h_ccbroker(env, NULL, NULL, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "audit chain broken");
}

H_TEST(notice, unacked_notice_comes_again_after_hello)
{
	struct h_client	*carat, *cjit, *rcv[1];
	json_t		*r, *n, *again;
	const char	*cid;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	r = h_grant(carat, H_CJIT, IDS, H_PNC_A);
	cid = h_str(r, "cid");
	rcv[0] = cjit;
	(void)publish_acked(carat, H_PNC_A, H_CJIT, rcv, 1);
	h_assert_op(h_call(carat, h_withdraw_new(cid, NULL),
	    "consent-recorded"), "consent-recorded");
	n = h_collect(cjit, "notice", 1, H_TIMEOUT_MS, false);
	cr_assert_eq(json_array_size(n), 1);
	/* Not acked: sent again on the next receiving session. */
	h_close(&cjit);
	cjit = h_agent(env, H_CJIT, true);
	again = h_collect(cjit, "notice", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(again), 1);
	cr_expect_str_eq(h_str(json_array_get(again, 0), "nid"),
	    h_str(json_array_get(n, 0), "nid"));
	h_close(&cjit);
	cjit = h_agent(env, H_CJIT, true);
	cr_expect_eq(json_array_size(notices(cjit)), 0);
}

H_TEST(notice, unacknowledged_delivery_is_purged_not_noticed)
{
	struct h_client	*carat, *cjit;
	json_t		*m, *r, *rc;
	const char	*cid;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	r = h_grant(carat, H_CJIT, IDS, H_PNC_A);
	cid = h_str(r, "cid");
	m = plan_to(H_PNC_A, H_CJIT);
	h_assert_op(h_publish(carat, m), "accepted");
	/* Sent, never acked: not received in the sense of DESIGN §6. */
	cr_assert_eq(json_array_size(h_collect(cjit, "deliver", 1,
	    H_TIMEOUT_MS, false)), 1);
	h_assert_op(h_call(carat, h_withdraw_new(cid, NULL),
	    "consent-recorded"), "consent-recorded");
	cr_expect_eq(json_array_size(notices(cjit)), 0);
	rc = h_receipt_for(carat, h_str(m, "mid"), H_CJIT, H_TIMEOUT_MS);
	cr_assert_not_null(rc);
	cr_expect_str_eq(h_str(rc, "state"), "purged");
}

H_TEST(notice, consent_lapsing_is_told_to_its_recorder)
{
	struct h_client	*carat, *cjit;
	json_t		*g, *r, *n;
	char		 until[32];
	const char	*cid;
	size_t		 i;
	bool		 expiring = false, expired = false;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	json_object_set_new(g, "valid_until", json_string(h_time(3, until)));
	r = h_call(carat, g, "consent-recorded");
	h_assert_op(r, "consent-recorded");
	cid = h_str(r, "cid");
	/* Inside the warning period (28 days) already: told at once; then
	 * told again when it lapses. */
	n = h_collect(carat, "notice", 2, 8000, true);
	cr_assert_eq(json_array_size(n), 2, "%s", h_dump(n));
	for (i = 0; i < 2; i++) {
		json_t *x = json_array_get(n, i);

		cr_expect_str_eq(h_str(x, "consents.0.cid"), cid);
		cr_expect_str_eq(h_str(x, "subject.pnc"), H_PNC_A);
		cr_expect_not_null(h_str(x, "valid_until"));
		if (strcmp(h_str(x, "kind"), "consent-expiring") == 0)
			expiring = !expired;
		else if (strcmp(h_str(x, "kind"), "consent-expired") == 0)
			expired = true;
	}
	cr_expect(expiring && expired, "%s", h_dump(n));
	/* The recipient is told nothing: it is the recorder's consent. */
	cr_expect_eq(json_array_size(notices(cjit)), 0);
	/* A record after the lapse is withheld, as before. */
	r = h_publish(carat, plan_to(H_PNC_A, H_CJIT));
	h_assert_op(r, "accepted");
}

H_TEST(notice, withdrawn_before_lapse_is_not_told_to_lapse)
{
	struct h_client	*carat;
	json_t		*g, *r, *n;
	char		 until[32];
	size_t		 i;

	env = h_env_new(&(struct h_env_opts){
	    .extra_conf = "[broker]\nconsent_notice_days = 0\n" });
	carat = h_agent(env, H_CARAT, true);
	g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	json_object_set_new(g, "valid_until", json_string(h_time(2, until)));
	r = h_call(carat, g, "consent-recorded");
	h_assert_op(h_call(carat, h_withdraw_new(h_str(r, "cid"), NULL),
	    "consent-recorded"), "consent-recorded");
	n = h_collect(carat, "notice", 0, 4000, true);
	for (i = 0; i < json_array_size(n); i++)
		cr_expect_str_neq(h_str(json_array_get(n, i), "kind"),
		    "consent-expired", "%s", h_dump(n));
	cr_expect_eq(json_array_size(n), 0, "%s", h_dump(n));
}
