/*
 * test_expiry.c - queued messages that outlive their time expire: the
 * sender sees `expired`, the recipient never gets them (DESIGN §6).
 */
#include <string.h>

#include "../lib/harness.h"

Test(expiry, queued_message_past_expires_is_expired_not_delivered)
{
	struct h_env	*e = h_env_new(NULL);
	struct h_client	*carat, *cjit;
	json_t		*m, *r;
	char		 at[32];
	const char	*mid;

	carat = h_agent(e, H_CARAT, true);
	cjit = h_agent(e, H_CJIT, true);
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	h_close(&cjit);			/* the CJIT goes offline */

	m = h_release_plan_new(H_PNC_A, "Expiring");
	json_object_set_new(m, "expires", json_string(h_time(2, at)));
	mid = json_string_value(json_object_get(m, "mid"));
	h_assert_op(h_publish(carat, m), "accepted");
	cr_assert_str_eq(h_str(h_track_of(carat, mid, H_CJIT), "state"),
	    "queued");

	r = h_receipt_for(carat, mid, H_CJIT, 5000);
	cr_assert_not_null(r, "no receipt within 5 s");
	cr_assert_str_eq(h_str(r, "state"), "expired", "%s", h_dump(r));
	cr_assert_str_eq(h_str(h_track_of(carat, mid, H_CJIT), "state"),
	    "expired");

	cjit = h_agent(e, H_CJIT, true);
	cr_assert_eq(json_array_size(h_deliveries(cjit, true)), 0,
	    "an expired message was delivered");
	cr_assert_eq(h_queue_depth(h_stats(e), H_CJIT), 0);
	h_env_destroy(&e);
}

Test(expiry, message_inside_retention_stays_queued)
{
	struct h_env	*e = h_env_new(NULL);
	struct h_client	*carat, *cjit;
	json_t		*m, *d;
	char		 at[32];
	const char	*mid;

	carat = h_agent(e, H_CARAT, true);
	cjit = h_agent(e, H_CJIT, true);
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	h_close(&cjit);
	m = h_release_plan_new(H_PNC_A, "Staying");
	json_object_set_new(m, "expires", json_string(h_time(3600, at)));
	mid = json_string_value(json_object_get(m, "mid"));
	h_assert_op(h_publish(carat, m), "accepted");
	h_msleep(2500);
	cjit = h_agent(e, H_CJIT, true);
	d = h_deliveries(cjit, true);
	cr_assert_eq(json_array_size(d), 1, "%s", h_dump(d));
	cr_assert_str_eq(h_str(json_array_get(d, 0), "mid"), mid);
	h_env_destroy(&e);
}
