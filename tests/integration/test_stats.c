/*
 * test_stats.c - `ccbroker stats` beside a running broker: who is
 * connected, and that a disconnect is noticed.
 */
#include <string.h>

#include "../lib/harness.h"

static bool
connected(struct h_env *e, const char *agency)
{
	return h_has_str(json_object_get(h_stats(e), "connections"), agency);
}

Test(stats, connections_follow_receiving_sessions)
{
	struct h_env	*e = h_env_new(NULL);
	struct h_client	*cjit, *carat;
	json_t		*s;
	int		 i;

	cjit = h_agent(e, H_CJIT, true);
	carat = h_agent(e, H_CARAT, false);	/* send-only: not listed */
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");
	for (i = 0; i < 20 && !connected(e, H_CJIT); i++)
		h_msleep(100);
	s = h_stats(e);
	cr_assert(h_has_str(json_object_get(s, "connections"), H_CJIT), "%s",
	    h_dump(s));
	cr_assert_not(h_has_str(json_object_get(s, "connections"), H_CARAT),
	    "%s", h_dump(s));
	cr_assert(h_int(s, "store.map_bytes") > 0, "%s", h_dump(s));

	h_close(&cjit);
	for (i = 0; i < 30 && connected(e, H_CJIT); i++)
		h_msleep(100);
	cr_assert_not(connected(e, H_CJIT), "still listed after disconnect");
	(void)carat;
	h_env_destroy(&e);
}

Test(stats, outcome_counters_survive_a_restart)
{
	struct h_env	*e = h_env_new(NULL);
	struct h_client	*carat;
	json_t		*s;

	carat = h_agent(e, H_CARAT, false);
	h_assert_op(h_publish(carat, h_release_plan_new(H_PNC_A, "Count")),
	    "accepted");
	h_close(&carat);
	cr_assert_eq(h_broker_stop(e), 0);
	h_broker_start(e);
	s = h_stats(e);
	cr_assert_eq(h_int(s, "outcomes.accepted"), 1, "%s", h_dump(s));
	h_env_destroy(&e);
}
