/*
 * test_revoke.c - revoking an agency takes back what waits for it: the
 * queued records are purged (sender told not-permitted), never delivered.
 */
#include <string.h>

#include "../lib/harness.h"

Test(revoke, queued_records_of_revoked_agency_are_purged)
{
	struct h_env	*e = h_env_new(NULL);
	struct h_client	*carat, *cjit;
	json_t		*m, *r;
	const char	*mid;

	carat = h_agent(e, H_CARAT, true);
	cjit = h_agent(e, H_CJIT, true);
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	h_close(&cjit);
	m = h_release_plan_new(H_PNC_A, "Revoked");
	mid = json_string_value(json_object_get(m, "mid"));
	h_assert_op(h_publish(carat, m), "accepted");
	cr_assert_str_eq(h_str(h_track_of(carat, mid, H_CJIT), "state"),
	    "queued");

	cr_assert_eq(h_revoke(e, H_CJIT), 0);
	h_broker_hup(e);
	r = h_receipt_for(carat, mid, H_CJIT, 5000);
	cr_assert_not_null(r, "no receipt after the revocation");
	cr_assert_str_eq(h_str(r, "state"), "purged", "%s", h_dump(r));
	cr_assert_str_eq(h_str(r, "reason"), "not-permitted", "%s",
	    h_dump(r));
	cr_assert_eq(h_queue_depth(h_stats(e), H_CJIT), 0);
	h_env_destroy(&e);
}

/* A withdrawal is final: replaying the grant under its cid is refused. */
Test(revoke, withdrawn_consent_is_not_granted_again_under_its_cid)
{
	struct h_env	*e = h_env_new(NULL);
	struct h_client	*carat;
	json_t		*g, *r;
	const char	*cid;

	carat = h_agent(e, H_CARAT, false);
	g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	cid = json_string_value(json_object_get(g, "cid"));
	h_assert_op(h_call(carat, g, "consent-recorded"), "consent-recorded");
	r = h_call(carat, h_withdraw_new(cid, NULL), "consent-recorded");
	h_assert_op(r, "consent-recorded");
	cr_assert_eq(h_int(r, "version"), 2);
	h_assert_error(h_call(carat, g, "consent-recorded"), "invalid-field",
	    "cid");
	h_env_destroy(&e);
}
