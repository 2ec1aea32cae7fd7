/*
 * test_upgrade.c - a store written by an earlier ccbroker is upgraded when
 * the broker opens it, and everything in it carries on: the audit chain,
 * the queued record, the consents and their decisions, the delivery
 * states.  Format 2 (before integrity tags: tests/files/store-format2,
 * made by make-store-format2.py), formats 3 and 4 (message headers without
 * their record's hash: tests/files/store-format3 and store-format4, made
 * by make-store-nohash.py), whose messages keep taking a re-send from
 * their sender for the same record, as they did, while a message
 * published after the upgrade refuses another record under its mid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/harness.h"

/* What the fixture holds (its README). */
#define G2_CID	"55352739-e092-4b7e-a94b-6a26af3cac02"
#define R_CID	"36b49f23-83b6-4453-87c9-01696a55537e"
#define P1_MID	"b9564a9f-2ebd-47b7-a306-7a186760c4dc"
#define P2_MID	"3ec84c18-8e46-4074-8872-524d24ab0221"
#define G1_UNTIL	1859298704	/* 2028-12-01T15:51:44Z: G1 ends */

/* The fixtures of formats 3 and 4 grant G1 for 729 days from their
 * making, P1's `created` (their README). */
#define NOHASH_G1_DAYS	728

static struct h_env	*env;

static void
teardown(void)
{
	h_env_destroy(&env);
}

TestSuite(upgrade, .fini = teardown, .timeout = 120);

/* A fixture's data.mdb and key (tests/files/store-formatN) over the
 * env's own. */
static void
put_fixture(int format)
{
	char		 cmd[4096];
	const char	*src = getenv("CC_SRC");

	if (src == NULL)
		src = ".";
	snprintf(cmd, sizeof(cmd), "cp '%s/tests/files/store-format%d/"
	    "data.mdb' '%s/tests/files/store-format%d/key' '%s/' && chmod 600 "
	    "'%s/data.mdb' '%s/key'", src, format, src, format, h_data(env),
	    h_data(env), h_data(env));
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* A publish of the fixture of a format (P1.json ...), as it was sent. */
static json_t *
fixture_publish(int format, const char *name)
{
	char		 path[4096];
	const char	*src = getenv("CC_SRC");
	json_error_t	 je;
	json_t		*m;

	snprintf(path, sizeof(path), "%s/tests/files/store-format%d/%s.json",
	    src != NULL ? src : ".", format, name);
	m = json_load_file(path, 0, &je);
	cr_assert_not_null(m, "%s: %s", path, je.text);
	return h_keep(m);
}

H_TEST(upgrade, format2_store_is_upgraded_and_carries_on)
{
	struct h_client	*carat, *cjit;
	json_t		*s, *d, *t;
	char		*out, *err;
	bool		 in_force = time(NULL) < G1_UNTIL;

	env = h_env_new(&(struct h_env_opts){ .no_start = true,
	    .retention_days = 3650 });
	put_fixture(2);
	/* Read-only commands refuse it until the broker has upgraded it. */
	cr_assert_neq(h_ccbroker(env, NULL, &err, "stats", "-c", h_conf(env),
	    NULL), 0);
	cr_assert(strstr(err, "start the broker once to upgrade") != NULL,
	    "%s", err);
	h_broker_start(env);
	cr_assert(h_log_has(env, "upgrading from format 2 to 5"), "%s",
	    h_log(env));
	cr_assert(!h_log_has(env, "store damaged"), "%s", h_log(env));

	/* The chain is the old one, whole. */
	cr_assert_eq(h_ccbroker(env, &out, &err, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "%s", err);
	cr_assert(strstr(out, "audit intact") != NULL, "%s", out);

	/* Consents: the withdrawn and the refused one are still reported. */
	s = h_audit_subject(env, "pnc=1999/7654321V");
	cr_assert_str_eq(h_str(s, "consents.0.cid"), G2_CID, "%s", h_dump(s));
	cr_assert_str_eq(h_str(s, "consents.0.state"), "withdrawn");
	s = h_audit_subject(env, "pnc=2019/0000001P");
	cr_assert_str_eq(h_str(s, "consents.0.cid"), R_CID, "%s", h_dump(s));
	cr_assert_str_eq(h_str(s, "consents.0.state"), "refused");

	/* The queued release plan reaches the CJIT (while G1 is in force). */
	cr_assert_eq(h_queue_depth(h_stats(env), H_CJIT), 1);
	cjit = h_agent(env, H_CJIT, true);
	d = h_collect(cjit, "deliver", in_force ? 1 : 0, H_TIMEOUT_MS, true);
	if (in_force) {
		cr_assert_eq(json_array_size(d), 1, "%s", h_dump(d));
		cr_assert_str_eq(h_str(d, "0.mid"), P1_MID);
	} else
		cr_assert_eq(json_array_size(d), 0, "%s", h_dump(d));

	/* Delivery states carried over, and go on changing. */
	carat = h_agent(env, H_CARAT, false);
	t = h_track_of(carat, P1_MID, H_PROBATION);
	cr_assert_str_eq(h_str(t, "state"), "delivered", "%s", h_dump(t));
	t = h_track_of(carat, P2_MID, H_CJIT);
	cr_assert_str_eq(h_str(t, "state"), "withheld", "%s", h_dump(t));
	cr_assert_str_eq(h_str(t, "reason"), "no-consent");
	t = h_track_of(carat, P1_MID, H_CJIT);
	cr_assert_str_eq(h_str(t, "state"), in_force ? "delivered" : "purged",
	    "%s", h_dump(t));

	/* The withdrawn consent decides nothing; a new one is recorded. */
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, "1999/7654321V"),
	    "consent-recorded");

	/* Upgraded once: a restart finds format 5 and no damage. */
	h_close(&carat);
	h_close(&cjit);
	cr_assert_eq(h_broker_stop(env), 0);
	h_broker_start(env);
	cr_assert_eq(h_log_count(env, "upgrading from format 2"), 1);
	cr_assert(!h_log_has(env, "store damaged"), "%s", h_log(env));
	cr_assert_eq(h_ccbroker(env, NULL, &err, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "%s", err);
}

/* m with body.release_date changed: another record under its mid. */
static json_t *
redated(json_t *m)
{
	json_t	*c = h_keep(json_deep_copy(m));

	json_object_set_new(json_object_get(c, "body"), "release_date",
	    json_string("2026-12-24"));
	return c;
}

/*
 * A store of format 3 or 4 (messages without their record's hash): upgraded
 * to 5, everything carries on, and its messages take any re-send from
 * their sender as the same record (as before), while one published after
 * the upgrade refuses another record under its mid.
 */
static void
nohash_store_upgraded(int format)
{
	struct h_client	*carat, *cjit, *prob;
	json_t		*d, *t, *p1, *p2, *p3, *p4;
	char		*out, *err, want[128];
	const char	*p1_mid, *p2_mid, *p3_mid;
	struct tm	 tm;
	bool		 in_force;

	env = h_env_new(&(struct h_env_opts){ .no_start = true,
	    .retention_days = 3650 });
	/* Read once the env is there: it keeps (and frees) them. */
	p1 = fixture_publish(format, "P1");
	p2 = fixture_publish(format, "P2");
	p3 = fixture_publish(format, "P3");
	p1_mid = h_str(p1, "mid");
	p2_mid = h_str(p2, "mid");
	p3_mid = h_str(p3, "mid");
	cr_assert(p1_mid != NULL && p2_mid != NULL && p3_mid != NULL);
	memset(&tm, 0, sizeof(tm));
	cr_assert_eq(sscanf(h_str(p1, "created"), "%d-%d-%dT%d:%d:%d",
	    &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	    &tm.tm_sec), 6, "%s", h_str(p1, "created"));
	tm.tm_year -= 1900;
	tm.tm_mon--;
	in_force = time(NULL) < timegm(&tm) + NOHASH_G1_DAYS * 86400LL;
	put_fixture(format);
	cr_assert_neq(h_ccbroker(env, NULL, &err, "stats", "-c", h_conf(env),
	    NULL), 0);
	snprintf(want, sizeof(want), "store format %d: start the broker once "
	    "to upgrade it to format 5", format);
	cr_assert(strstr(err, want) != NULL, "%s", err);
	h_broker_start(env);
	snprintf(want, sizeof(want), "upgrading from format %d to 5", format);
	cr_assert(h_log_has(env, want), "%s", h_log(env));
	cr_assert(!h_log_has(env, "store damaged"), "%s", h_log(env));
	cr_assert(!h_log_has(env, "damaged message"), "%s", h_log(env));
	cr_assert_eq(h_ccbroker(env, &out, &err, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "%s", err);
	cr_assert(strstr(out, "audit intact") != NULL, "%s", out);

	/* The held payload still opens: P1 reaches the CJIT, once. */
	cr_assert_eq(h_queue_depth(h_stats(env), H_CJIT), 1);
	cjit = h_agent(env, H_CJIT, true);
	d = h_collect(cjit, "deliver", in_force ? 1 : 0, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), in_force ? 1 : 0, "%s", h_dump(d));
	if (in_force) {
		cr_assert_str_eq(h_str(d, "0.mid"), p1_mid);
		cr_assert_str_eq(h_str(d, "0.body.person.family_name"),
		    "Held");
	}
	carat = h_agent(env, H_CARAT, false);
	t = h_track_of(carat, p1_mid, H_PROBATION);
	cr_assert_str_eq(h_str(t, "state"), "delivered", "%s", h_dump(t));
	t = h_track_of(carat, p2_mid, H_PROBATION);
	cr_assert_str_eq(h_str(t, "state"), "delivered", "%s", h_dump(t));
	t = h_track_of(carat, p3_mid, H_CJIT);
	cr_assert_str_eq(h_str(t, "state"), "withheld", "%s", h_dump(t));

	/*
	 * Their record's hash unknown, the messages of before take any
	 * re-send from their sender as the same record (as they did), held,
	 * released or withheld; never another agency's.
	 */
	h_assert_op(h_publish(carat, p1), "accepted");
	h_assert_op(h_publish(carat, redated(p1)), "accepted");
	h_assert_op(h_publish(carat, redated(p2)), "accepted");
	h_assert_op(h_publish(carat, p3), "accepted");
	h_assert_error(h_publish(h_agent(env, H_CJIT, false), p2),
	    "invalid-field", "mid");
	d = h_deliveries(cjit, true);
	cr_expect_eq(json_array_size(d), 0, "a second copy: %s", h_dump(d));

	/* A message published now has its hash: another record refused. */
	prob = h_agent(env, H_PROBATION, true);
	p4 = h_keep(json_deep_copy(p2));
	json_object_set_new(p4, "mid", json_string(h_uuid((char[37]){ 0 })));
	h_assert_op(h_publish(carat, p4), "accepted");
	h_assert_op(h_publish(carat, p4), "accepted");
	h_assert_error(h_publish(carat, redated(p4)), "invalid-field", "mid");
	d = h_collect(prob, "deliver", in_force ? 1 : 0, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), in_force ? 1 : 0, "%s", h_dump(d));
	if (in_force)
		cr_expect_str_eq(h_str(d, "0.body.release_date"),
		    "2026-12-20");
	cr_expect_eq(json_array_size(h_deliveries(prob, true)), 0);

	/* Upgraded once; the new header survives a restart. */
	h_close(&carat);
	h_close(&cjit);
	h_close(&prob);
	cr_assert_eq(h_broker_stop(env), 0);
	h_broker_start(env);
	cr_assert_eq(h_log_count(env, "upgrading from format"), 1);
	cr_assert(!h_log_has(env, "store damaged"), "%s", h_log(env));
	cr_assert_eq(h_ccbroker(env, NULL, &err, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "%s", err);
	carat = h_agent(env, H_CARAT, false);
	h_assert_error(h_publish(carat, redated(p4)), "invalid-field", "mid");
	h_assert_op(h_publish(carat, p4), "accepted");
	h_assert_op(h_publish(carat, redated(p1)), "accepted");
}

H_TEST(upgrade, format3_store_is_upgraded_and_resends_compared_from_then)
{
	nohash_store_upgraded(3);
}

H_TEST(upgrade, format4_store_is_upgraded_and_resends_compared_from_then)
{
	nohash_store_upgraded(4);
}
