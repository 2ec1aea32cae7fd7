/*
 * test_refusals.c - refused handshakes cost the store and the log a few
 * lines, never one each (issue 18 item 5).
 *
 * Anyone holding the broker's public key can start CURVE handshakes.  A
 * thousand refused ones must grow the audit by a handful of aggregated
 * entries (count and a sample of addresses), be counted one by one in
 * `stats`, and be logged one by one only up to a budget.  A source
 * address past its handshake rate is refused before any certificate is
 * looked at, while other addresses carry on.  All connections here come
 * from loopback; 127.0.0.2 stands for another host.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "../lib/harness.h"
#include "../lib/raw.h"

#define NFLOOD		1000	/* handshakes with unknown keys */
#define FLOOD_BATCH	50	/* in flight at once */
#define LOG_EACH	3	/* refusals logged one by one per address
				 * and reason */

static struct h_env	*env;

static void
teardown(void)
{
	h_env_destroy(&env);
}

TestSuite(refusals, .fini = teardown, .timeout = 180);

static long long
audit_entries(void)
{
	char		*out = NULL, *err = NULL;
	long long	 n = -1;

	cr_assert_eq(h_ccbroker(env, &out, &err, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "audit verify: %s", err);
	cr_assert_eq(sscanf(out, "audit intact: %lld entries", &n), 1, "%s",
	    out);
	return n;
}

/* The audit entries as mdb_dump -p prints them (non-printable bytes as
 * \xx), for looking into the aggregated ones. */
static const char *
audit_dump(void)
{
	char	*out = NULL, *err = NULL;

	cr_assert_eq(h_run(env, &out, &err, (const char *const[]){
	    "mdb_dump", "-p", "-s", "audit", h_data(env), NULL }), 0,
	    "mdb_dump: %s", err);
	return out;
}

/*
 * n handshakes from t (its source address) with the key of `agency`
 * (NULL: fresh keys no certificate knows), FLOOD_BATCH at a time, each
 * watched to its end.  Returns how many ZAP refused.
 */
static int
flood(const struct r_target *t, int n, const char *agency)
{
	struct r_sock	 s[FLOOD_BATCH];
	void		*ctx;
	int		 done = 0, refused = 0, i, k;

	/* A context per batch: its end waits until every descriptor of the
	 * batch is closed. */
	while (done < n) {
		cr_assert_not_null(ctx = r_ctx_new(4 * FLOOD_BATCH + 16));
		for (k = 0; k < FLOOD_BATCH && done + k < n; k++)
			cr_assert_eq(r_open(&s[k], ctx, t, agency, 600000,
			    true), 0, "r_open: %s", zmq_strerror(errno));
		for (i = 0; i < k; i++) {
			refused += r_handshake(&s[i], 5000) == -1;
			r_close(&s[i]);
		}
		zmq_ctx_term(ctx);
		done += k;
	}
	return refused;
}

H_TEST(refusals, a_thousand_bad_handshakes_add_a_handful_of_audit_entries)
{
	struct r_target	 t;
	long long	 entries0, entries1, refused = -1;
	size_t		 lines0;
	const char	*dump;
	json_t		*st;
	int		 i;

	env = h_env_new(NULL);
	r_target_of(env, &t);
	h_close(&(struct h_client *){ h_agent(env, H_CARAT, false) });
	h_msleep(200);
	entries0 = audit_entries();
	lines0 = h_log_count(env, "auth: refused");

	cr_assert_eq(flood(&t, NFLOOD, NULL), NFLOOD,
	    "not every unknown key was refused");

	/* Counted, each, and recorded without any other work to carry it. */
	for (i = 0; i < 50; i++) {
		st = h_stats(env);
		if ((refused = h_int(st, "outcomes.refused_connections")) >=
		    NFLOOD)
			break;
		h_msleep(100);
	}
	cr_expect_eq(refused, NFLOOD, "refused_connections: %lld", refused);
	/* Logged one by one only the first few times. */
	cr_expect_leq(h_log_count(env, "auth: refused") - lines0, LOG_EACH,
	    "%zu refusal lines in the log",
	    h_log_count(env, "auth: refused") - lines0);
	/* Nothing written per refusal while the interval lasts. */
	entries1 = audit_entries();
	cr_expect_leq(entries1 - entries0, 1, "%lld audit entries during the "
	    "flood", entries1 - entries0);
	/* The broker still serves. */
	h_close(&(struct h_client *){ h_agent(env, H_CJIT, false) });

	/* Stopping audits the interval's aggregate: one entry per reason. */
	cr_assert_eq(h_broker_stop(env), 0);
	entries1 = audit_entries();
	cr_expect(entries1 - entries0 >= 1 && entries1 - entries0 <= 3,
	    "%lld audit entries for %d refusals", entries1 - entries0,
	    NFLOOD);
	dump = audit_dump();
	cr_expect(strstr(dump, "connection-refused") != NULL, "%s", dump);
	cr_expect(strstr(dump, "unknown key") != NULL, "%s", dump);
	/* "count": 1000 is msgpack uint16 cd 03 e8. */
	cr_expect(strstr(dump, "count\\cd\\03\\e8") != NULL,
	    "no entry counting %d: %s", NFLOOD, dump);
	cr_expect(strstr(dump, "addresses") != NULL &&
	    strstr(dump, "127.0.0.1") != NULL, "no sample address: %s", dump);
}

H_TEST(refusals, an_address_past_its_rate_is_refused_while_others_connect)
{
	struct r_target	 flooder;
	struct r_sock	 s;
	void		*ctx;
	const char	*dump;
	int		 refused;

	/* One handshake a second per address, no burst. */
	env = h_env_new(&(struct h_env_opts){ .handshake_rate = 1,
	    .handshake_burst = 1 });
	r_target_of(env, &flooder);
	snprintf(flooder.source, sizeof(flooder.source), "127.0.0.2");

	/* The first takes the token (and meets its unknown key); the rest
	 * are refused for the rate, however good their key. */
	refused = flood(&flooder, 20, NULL);
	cr_expect_eq(refused, 20, "%d of 20 refused", refused);
	cr_assert_not_null(ctx = r_ctx_new(16));
	cr_assert_eq(r_open(&s, ctx, &flooder, H_CJIT, 600000, true), 0);
	cr_expect_eq(r_handshake(&s, 3000), -1, "a valid agency from the "
	    "flooding address got in at once");
	r_close(&s);
	cr_expect(h_log_wait(env, 2000, "refused", "reason=\"rate limited\"",
	    "address=127.0.0.2", NULL), "%s", h_log(env));
	cr_expect(h_log_has(env, "reason=\"unknown key\" address=127.0.0.2"),
	    "%s", h_log(env));
	/* One by one only the first few of each reason. */
	cr_expect_leq(h_log_count(env, "address=127.0.0.2"), 2 * LOG_EACH,
	    "%s", h_log(env));

	/* Another address is not held up by it. */
	h_close(&(struct h_client *){ h_agent(env, H_CARAT, false) });

	/* A second later the address has a token again. */
	h_msleep(1200);
	cr_assert_eq(r_open(&s, ctx, &flooder, H_CJIT, 600000, true), 0);
	cr_expect_eq(r_handshake(&s, 3000), 1, "the bucket did not refill");
	r_close(&s);
	zmq_ctx_term(ctx);

	/* Audited aggregated, with the address. */
	cr_assert_eq(h_broker_stop(env), 0);
	dump = audit_dump();
	cr_expect(strstr(dump, "rate limited") != NULL, "%s", dump);
	cr_expect(strstr(dump, "127.0.0.2") != NULL, "%s", dump);
}
