/*
 * test_hslimit.c - broker/hslimit.c: the token bucket of each source
 * address, at given times, and the budget of refusal log lines.
 */
#include <stdbool.h>
#include <stdio.h>

#include <criterion/criterion.h>

#include "hslimit.h"
#include "log.h"

static struct hslimit	*h;

static void
setup(void)
{
	log_init("test_hslimit", LOG_LVL_WARN);
}

static void
teardown(void)
{
	hslimit_destroy(&h);
	cr_assert_null(h);
}

TestSuite(hslimit, .init = setup, .fini = teardown);

/* Each row: at `ms`, does `addr` get a handshake?  Rate 2/s, burst 3. */
static const struct {
	const char	*addr;
	int64_t		 ms;
	bool		 ok;
} bucket[] = {
	{ "10.0.0.1", 1000, true },	/* the burst */
	{ "10.0.0.1", 1000, true },
	{ "10.0.0.1", 1000, true },
	{ "10.0.0.1", 1000, false },	/* empty */
	{ "10.0.0.2", 1000, true },	/* another address: its own */
	{ "10.0.0.1", 1499, false },	/* 0.998 of a token */
	{ "10.0.0.1", 1500, true },	/* half a second: one more */
	{ "10.0.0.1", 1500, false },
	{ "10.0.0.1", 900, false },	/* the clock stepped back: nothing */
	{ "10.0.0.1", 2000, true },
	{ "10.0.0.1", 60000, true },	/* a long pause: the burst, no more */
	{ "10.0.0.1", 60000, true },
	{ "10.0.0.1", 60000, true },
	{ "10.0.0.1", 60000, false },
	{ "", 60000, true },		/* no address is one address too */
};

Test(hslimit, each_address_gets_its_rate_and_burst)
{
	size_t	i;

	cr_assert_not_null(h = hslimit_new(2, 3));
	for (i = 0; i < sizeof(bucket) / sizeof(bucket[0]); i++)
		cr_expect_eq(hslimit_take(h, bucket[i].addr, bucket[i].ms),
		    bucket[i].ok, "row %zu: %s at %lld", i, bucket[i].addr,
		    (long long)bucket[i].ms);
}

Test(hslimit, a_lower_burst_on_reload_caps_what_buckets_hold)
{
	cr_assert_not_null(h = hslimit_new(1, 10));
	cr_assert(hslimit_take(h, "10.0.0.1", 1000));
	hslimit_set(h, 1, 2);
	cr_expect(hslimit_take(h, "10.0.0.1", 1000));
	cr_expect(hslimit_take(h, "10.0.0.1", 1000));
	cr_expect_not(hslimit_take(h, "10.0.0.1", 1000));
	/* A new address starts with the new burst. */
	cr_expect(hslimit_take(h, "10.0.0.9", 1000));
	cr_expect(hslimit_take(h, "10.0.0.9", 1000));
	cr_expect_not(hslimit_take(h, "10.0.0.9", 1000));
}

Test(hslimit, many_more_addresses_than_the_table_holds)
{
	char	addr[32];
	int	i, ok = 0;

	cr_assert_not_null(h = hslimit_new(1, 1));
	/* Each address new (or evicted and back): one handshake each. */
	for (i = 0; i < 100000; i++) {
		snprintf(addr, sizeof(addr), "10.%d.%d.%d", i >> 16,
		    (i >> 8) & 255, i & 255);
		ok += hslimit_take(h, addr, 1000);
	}
	cr_expect_eq(ok, 100000);
	/* The newest is still known, with its bucket empty. */
	cr_expect_not(hslimit_take(h, addr, 1000));
}

Test(hslimit, refusals_are_logged_one_by_one_up_to_a_budget)
{
	char	addr[32];
	int	i, j, logged = 0;

	cr_assert_not_null(h = hslimit_new(20, 50));
	for (i = 0; i < HSLIMIT_LOG_EACH; i++)
		cr_expect(hslimit_log(h, "10.0.0.1", "unknown key", 1000));
	cr_expect_not(hslimit_log(h, "10.0.0.1", "unknown key", 1000));
	/* Another reason is news: a budget of its own. */
	for (i = 0; i < HSLIMIT_LOG_EACH; i++)
		cr_expect(hslimit_log(h, "10.0.0.1", "revoked", 2000));
	cr_expect_not(hslimit_log(h, "10.0.0.1", "revoked", 2000));
	/* From many addresses: HSLIMIT_LOG_MAX lines in all. */
	for (i = 0; i < 100; i++) {
		snprintf(addr, sizeof(addr), "10.1.0.%d", i);
		for (j = 0; j < HSLIMIT_LOG_EACH; j++)
			logged += hslimit_log(h, addr, "unknown key", 3000);
	}
	cr_expect_eq(logged + 2 * HSLIMIT_LOG_EACH, HSLIMIT_LOG_MAX);

	/* Before the interval ends nothing changes; after it, a budget
	 * again (the summary line goes to the log). */
	hslimit_tick(h, 1000 + HSLIMIT_INTERVAL_MS - 1);
	cr_expect_not(hslimit_log(h, "10.0.0.1", "unknown key", 4000));
	hslimit_tick(h, 1000 + HSLIMIT_INTERVAL_MS);
	cr_expect(hslimit_log(h, "10.0.0.1", "unknown key",
	    1000 + HSLIMIT_INTERVAL_MS));
}
