/*
 * test_quota.c - what one agency may hold of the broker (issue 18): a
 * recipient that never comes back, or a sender that publishes without
 * end, is refused `over-quota` at its limit instead of filling the store
 * for everyone, and nothing accepted is lost; connections per agency are
 * capped too.  `stats` shows each agency's use against its quota.
 */
#include <string.h>
#include <unistd.h>

#include "../lib/harness.h"

static struct h_env	*env;

/* A release plan about PNC A for the CJIT alone. */
static json_t *
plan_to_cjit(void)
{
	json_t	*m = h_release_plan_new(H_PNC_A, "Quota");

	json_object_set_new(m, "to", h_csv(H_CJIT));
	return m;
}

static json_t *
agency_stats(const char *agency)
{
	json_t	*st = h_stats(env);

	return json_object_get(json_object_get(st, "agencies"), agency);
}

H_TEST(quota, recipient_at_its_quota_stops_publishes_to_it_and_nothing_is_lost)
{
	struct h_client	*carat, *cjit;
	json_t		*m, *a, *d;
	const char	*mids[4];
	int		 i;

	env = h_env_new(&(struct h_env_opts){ .extra_conf =
	    "[agency.cjit.leeds]\nquota_queued = 3\n" });
	carat = h_agent(env, H_CARAT, true);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	for (i = 0; i < 3; i++) {
		m = plan_to_cjit();
		mids[i] = h_str(m, "mid");
		h_assert_op(h_publish(carat, m), "accepted");
	}
	m = plan_to_cjit();
	mids[3] = h_str(m, "mid");
	h_assert_error(h_publish(carat, m), "over-quota", NULL);
	a = agency_stats(H_CJIT);
	cr_assert_eq(h_int(a, "queued"), 3, "%s", h_dump(a));
	cr_assert_eq(h_int(a, "quota.queued"), 3, "%s", h_dump(a));
	cr_assert_gt(h_int(a, "queued_bytes"), 1000, "%s", h_dump(a));
	/* Refused, it was not stored: track knows nothing of it. */
	h_assert_error(h_call_json(carat, h_dump(h_jsonf("{\"op\": \"track\", "
	    "\"mid\": \"%s\"}", mids[3])), "status"), "invalid-field", "mid");

	/* The CJIT takes what waits; the fourth then goes through. */
	cjit = h_agent(env, H_CJIT, true);
	d = h_collect(cjit, "deliver", 3, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 3, "%s", h_dump(d));
	h_close(&cjit);
	for (i = 0; i < 100 && h_int(agency_stats(H_CJIT), "queued") != 0;
	    i++)
		usleep(20000);
	h_assert_op(h_publish(carat, m), "accepted");
	cjit = h_agent(env, H_CJIT, true);
	d = h_collect(cjit, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1, "%s", h_dump(d));
	cr_assert_str_eq(h_str(d, "0.mid"), mids[3]);
}

H_TEST(quota, recipient_byte_quota_counts_record_sizes)
{
	struct h_client	*carat;
	json_t		*r;
	int		 n;

	env = h_env_new(&(struct h_env_opts){ .map_size_mb = 256,
	    .extra_conf = "[agency.cjit.leeds]\nquota_queued_mb = 1\n" });
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	/* About 40 KB each: some twenty-odd fit in a MiB. */
	for (n = 0; n < 100; n++) {
		r = h_publish(carat, h_big_plan(H_CJIT));
		if (!h_is_op(r, "accepted"))
			break;
	}
	h_assert_error(r, "over-quota", NULL);
	cr_assert(n >= 15 && n <= 30, "%d big plans fitted in 1 MiB", n);
	cr_assert_leq(h_int(agency_stats(H_CJIT), "queued_bytes"), 1 << 20);
}

/* A recipient that would not be sent the record anyway holds nothing. */
H_TEST(quota, withheld_recipient_is_not_held_to_its_quota)
{
	struct h_client	*carat;
	int		 i;

	env = h_env_new(&(struct h_env_opts){ .extra_conf =
	    "[agency.cjit.leeds]\nquota_queued = 1\n" });
	carat = h_agent(env, H_CARAT, false);
	for (i = 0; i < 5; i++)
		h_assert_op(h_publish(carat, plan_to_cjit()), "accepted");
	cr_assert_eq(h_int(agency_stats(H_CJIT), "queued"), 0);
}

H_TEST(quota, sender_at_its_quota_of_waiting_messages_is_refused)
{
	struct h_client	*carat;
	json_t		*a;

	env = h_env_new(&(struct h_env_opts){ .extra_conf =
	    "[agency.carat.hmp-leeds]\nquota_held = 2\n" });
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	h_assert_op(h_publish(carat, plan_to_cjit()), "accepted");
	h_assert_op(h_publish(carat, plan_to_cjit()), "accepted");
	h_assert_error(h_publish(carat, plan_to_cjit()), "over-quota", NULL);
	a = agency_stats(H_CARAT);
	cr_assert_eq(h_int(a, "held"), 2, "%s", h_dump(a));
	cr_assert_eq(h_int(a, "quota.held"), 2, "%s", h_dump(a));
}

H_TEST(quota, connections_beyond_an_agencys_quota_are_not_served)
{
	struct h_client	*c[3], *extra;
	json_t		*a;
	int		 i;

	env = h_env_new(&(struct h_env_opts){ .extra_conf =
	    "[agency.cjit.leeds]\nmax_connections = 2\n" });
	c[0] = h_agent(env, H_CJIT, false);
	c[1] = h_agent(env, H_CJIT, false);
	c[2] = h_connect(env, H_CJIT);
	h_assert_error(h_hello(c[2], false), "over-quota", NULL);
	cr_assert(h_log_has(env, "too many connections"), "%s", h_log(env));
	a = agency_stats(H_CJIT);
	cr_assert_eq(h_int(a, "connections"), 2, "%s", h_dump(a));
	cr_assert_eq(h_int(a, "quota.connections"), 2, "%s", h_dump(a));
	/* Another agency is not affected; a closed connection frees one. */
	h_assert_op(h_hello(h_connect(env, H_CARAT), false), "welcome");
	h_close(&c[0]);
	extra = NULL;
	for (i = 0; i < 50; i++) {
		extra = h_connect(env, H_CJIT);
		if (h_is_op(h_hello(extra, false), "welcome"))
			break;
		h_close(&extra);
		usleep(100000);
	}
	cr_assert_not_null(extra, "no connection after one closed");
}
