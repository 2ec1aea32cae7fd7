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

/* ---- corrections and retractions ---- */

/* A correction of `old` (a plan from h_release_plan_new): same subject
 * and type, a changed body, to the agencies of `to`. */
static json_t *
correction_of(json_t *old, const char *pnc, const char *to)
{
	json_t	*m = plan_to(pnc, to);

	json_object_set(m, "supersedes", json_object_get(old, "mid"));
	return m;
}

H_TEST(notice, correction_replaces_waiting_copies_and_tells_past_ones)
{
	struct h_client	*carat, *cjit, *prob;
	json_t		*v1, *v2, *n, *d, *t, *r;
	const char	*m1, *m2;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_grant(carat, H_CJIT "," H_PROBATION, IDS, H_PNC_A),
	    "consent-recorded");
	v1 = plan_to(H_PNC_A, H_CJIT "," H_PROBATION);
	h_assert_op(h_publish(carat, v1), "accepted");
	m1 = h_str(v1, "mid");
	/* The CJIT takes v1; probation is offline, v1 waits for it. */
	cr_assert_eq(json_array_size(h_collect(cjit, "deliver", 1,
	    H_TIMEOUT_MS, true)), 1);
	cr_assert_not_null(h_receipt_for(carat, m1, H_CJIT, H_TIMEOUT_MS));

	v2 = correction_of(v1, H_PNC_A, H_CJIT "," H_PROBATION);
	h_assert_op(h_publish(carat, v2), "accepted");
	m2 = h_str(v2, "mid");
	/* The CJIT: the new record, and a notice naming both. */
	d = h_collect(cjit, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1);
	cr_expect_str_eq(h_str(json_array_get(d, 0), "mid"), m2);
	n = h_collect(cjit, "notice", 0, 2000, true);
	cr_assert_eq(json_array_size(n), 1, "%s", h_dump(n));
	n = json_array_get(n, 0);
	cr_expect_str_eq(h_str(n, "kind"), "record-corrected");
	cr_expect_str_eq(h_str(n, "mid"), m1);
	cr_expect_str_eq(h_str(n, "by"), m2);
	cr_expect_str_eq(h_str(n, "from"), H_CARAT);
	/* Probation: only the correction; v1 was purged, superseded. */
	prob = h_agent(env, H_PROBATION, true);
	d = h_deliveries(prob, true);
	cr_assert_eq(json_array_size(d), 1, "%s", h_dump(d));
	cr_expect_str_eq(h_str(json_array_get(d, 0), "mid"), m2);
	cr_expect_eq(json_array_size(h_collect(prob, "notice", 0, 1000,
	    true)), 0);
	r = h_receipt_for(carat, m1, H_PROBATION, H_TIMEOUT_MS);
	cr_assert_not_null(r);
	cr_expect_str_eq(h_str(r, "state"), "purged");
	cr_expect_str_eq(h_str(r, "reason"), "superseded");
	/* track shows both. */
	t = h_track_of(carat, m1, H_CJIT);
	cr_expect_str_eq(h_str(t, "state"), "delivered");
	cr_expect(h_has_str(h_get(t, "notices"), "record-corrected"));
	t = h_track_of(carat, m1, H_PROBATION);
	cr_expect_str_eq(h_str(t, "reason"), "superseded", "%s", h_dump(t));
	cr_expect_str_eq(h_str(h_track_of(carat, m2, H_PROBATION), "state"),
	    "delivered");
}

H_TEST(notice, correction_after_withdrawal_is_a_notice_only)
{
	struct h_client	*carat, *cjit;
	json_t		*v1, *v2, *r, *n;
	const char	*cid;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	r = h_grant(carat, H_CJIT, IDS, H_PNC_A);
	cid = h_str(r, "cid");
	v1 = plan_to(H_PNC_A, H_CJIT);
	h_assert_op(h_publish(carat, v1), "accepted");
	cr_assert_eq(json_array_size(h_collect(cjit, "deliver", 1,
	    H_TIMEOUT_MS, true)), 1);
	cr_assert_not_null(h_receipt_for(carat, h_str(v1, "mid"), H_CJIT,
	    H_TIMEOUT_MS));
	h_assert_op(h_call(carat, h_withdraw_new(cid, NULL),
	    "consent-recorded"), "consent-recorded");
	n = h_collect(cjit, "notice", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(n), 1);
	cr_expect_str_eq(h_str(json_array_get(n, 0), "kind"),
	    "consent-withdrawn");

	v2 = correction_of(v1, H_PNC_A, H_CJIT);
	h_assert_op(h_publish(carat, v2), "accepted");
	n = h_collect(cjit, "notice", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(n), 1);
	cr_expect_str_eq(h_str(json_array_get(n, 0), "kind"),
	    "record-corrected");
	cr_expect_eq(json_array_size(h_collect(cjit, "deliver", 0, 1000,
	    true)), 0, "a record went without consent");
	r = h_receipt_for(carat, h_str(v2, "mid"), H_CJIT, H_TIMEOUT_MS);
	cr_assert_not_null(r);
	cr_expect_str_eq(h_str(r, "state"), "withheld");
	cr_expect_str_eq(h_str(r, "reason"), "no-consent");
}

H_TEST(notice, a_correction_must_match_its_record)
{
	struct h_client	*carat, *cjit;
	json_t		*v1, *m;
	char		 other[37];

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, false);
	h_assert_op(h_grant(carat, H_CJIT, IDS, H_PNC_A), "consent-recorded");
	v1 = plan_to(H_PNC_A, H_CJIT);
	h_assert_op(h_publish(carat, v1), "accepted");
	/* Unknown mid. */
	m = plan_to(H_PNC_A, H_CJIT);
	json_object_set_new(m, "supersedes", json_string(h_uuid(other)));
	h_assert_error(h_publish(carat, m), "invalid-field", "supersedes");
	/* Another client. */
	h_assert_error(h_publish(carat, correction_of(v1, H_PNC_B, H_CJIT)),
	    "identity-conflict", "subject");
	/* Another agency's record: as if unknown. */
	m = h_jsonf("{\"op\": \"publish\", \"mid\": \"%s\", \"type\": "
	    "\"housing-status\", \"purpose\": \"housing-support\", "
	    "\"subject\": {\"pnc\": \"%s\"}, \"area\": \"%s\", "
	    "\"to\": [\"%s\"], \"created\": \"2026-01-01T00:00:00Z\", "
	    "\"supersedes\": \"%s\", \"body\": {\"person\": "
	    "{\"family_name\": \"Example\"}, \"effective_date\": "
	    "\"2026-01-10\", \"accommodation_type\": \"hostel\"}}",
	    h_uuid(other), H_PNC_A, H_AREA,
	    H_CARAT, h_str(v1, "mid"));
	h_assert_error(h_publish(cjit, m), "invalid-field", "supersedes");
	/* Nothing was taken back. */
	cr_expect_str_eq(h_str(h_track_of(carat, h_str(v1, "mid"), H_CJIT),
	    "state"), "queued");
}

H_TEST(notice, retraction_purges_waiting_and_tells_past_recipients_once)
{
	struct h_client	*carat, *cjit, *prob;
	json_t		*v1, *r, *n, *ret;
	const char	*m1;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_grant(carat, H_CJIT "," H_PROBATION, IDS, H_PNC_A),
	    "consent-recorded");
	v1 = plan_to(H_PNC_A, H_CJIT "," H_PROBATION);
	h_assert_op(h_publish(carat, v1), "accepted");
	m1 = h_str(v1, "mid");
	cr_assert_eq(json_array_size(h_collect(cjit, "deliver", 1,
	    H_TIMEOUT_MS, true)), 1);
	cr_assert_not_null(h_receipt_for(carat, m1, H_CJIT, H_TIMEOUT_MS));

	ret = h_jsonf("{\"op\": \"retract\", \"mid\": \"%s\", \"reason\": "
	    "\"sent about the wrong client\"}", m1);
	r = h_call(carat, ret, "retracted");
	h_assert_op(r, "retracted");
	cr_expect_str_eq(h_str(r, "mid"), m1);
	n = h_collect(cjit, "notice", 0, 2000, true);
	cr_assert_eq(json_array_size(n), 1, "%s", h_dump(n));
	n = json_array_get(n, 0);
	cr_expect_str_eq(h_str(n, "kind"), "record-retracted");
	cr_expect_str_eq(h_str(n, "mid"), m1);
	cr_expect_str_eq(h_str(n, "reason"), "sent about the wrong client");
	r = h_receipt_for(carat, m1, H_PROBATION, H_TIMEOUT_MS);
	cr_assert_not_null(r);
	cr_expect_str_eq(h_str(r, "reason"), "retracted");
	/* Again: the same answer, nobody told twice. */
	h_assert_op(h_call(carat, ret, "retracted"), "retracted");
	cr_expect_eq(json_array_size(h_collect(cjit, "notice", 0, 1000,
	    true)), 0);
	prob = h_agent(env, H_PROBATION, true);
	cr_expect_eq(json_array_size(h_deliveries(prob, true)), 0);
	/* Only its sender may retract it. */
	h_assert_error(h_call(cjit, ret, "retracted"), "invalid-field",
	    "mid");
	cr_expect_eq(h_ccbroker(env, NULL, NULL, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "audit chain broken");
}
