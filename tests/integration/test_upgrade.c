/*
 * test_upgrade.c - a store written by the ccbroker before integrity tags
 * (format 2, tests/files/store-format2, made by make-store-format2.py) is
 * upgraded when the broker opens it, and everything in it carries on: the
 * audit chain, the queued record, the consents and their decisions, the
 * delivery states.
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

static struct h_env	*env;

/* The fixture's data.mdb and key over the env's own. */
static void
put_fixture(void)
{
	char		 cmd[4096];
	const char	*src = getenv("CC_SRC");

	snprintf(cmd, sizeof(cmd), "cp '%s/tests/files/store-format2/data.mdb' "
	    "'%s/tests/files/store-format2/key' '%s/' && chmod 600 "
	    "'%s/data.mdb' '%s/key'", src != NULL ? src : ".",
	    src != NULL ? src : ".", h_data(env), h_data(env), h_data(env));
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

H_TEST(upgrade, format2_store_is_upgraded_and_carries_on)
{
	struct h_client	*carat, *cjit;
	json_t		*s, *d, *t;
	char		*out, *err;
	bool		 in_force = time(NULL) < G1_UNTIL;

	env = h_env_new(&(struct h_env_opts){ .no_start = true,
	    .retention_days = 3650 });
	put_fixture();
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
