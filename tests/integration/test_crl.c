/*
 * test_crl.c - a CRL is required, and revocation never silently stops
 * (DESIGN §3; issue 18 item 7).
 *
 * A broker without a CRL, or with one that cannot be read, is not its
 * CA's, or is past its next update, refuses to start with one line naming
 * the file.  A reload that brings such a CRL keeps the running set, says
 * "reload failed" in the log and shows it in `stats`.  A CRL whose next
 * update passes while the broker runs closes the door: new handshakes are
 * refused ("CRL expired") until a reload brings a fresh one, while the
 * connections admitted before keep their service.
 */
#define _GNU_SOURCE	/* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/harness.h"

static struct h_env	*env;

static void
teardown(void)
{
	h_env_destroy(&env);
}

TestSuite(crl, .fini = teardown, .timeout = 120);

#define CRL_LEFT_S	6	/* a CRL's next update this far away */

static size_t
lines(const char *s)
{
	size_t	n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* PKI/NAME, owned by the harness. */
static const char *
pki_file(const char *name)
{
	char	*p;

	cr_assert_geq(asprintf(&p, "%s/%s", h_pki(env), name), 0);
	return h_keep_str(p);
}

static void
spit(const char *path, const char *text)
{
	FILE	*f = fopen(path, "w");

	cr_assert_not_null(f, "%s", path);
	cr_assert_geq(fputs(text, f), 0);
	cr_assert_eq(fclose(f), 0);
}

static void
copy(const char *from, const char *to)
{
	const char *const argv[] = { "cp", from, to, NULL };

	cr_assert_eq(h_run(env, NULL, NULL, argv), 0, "cp %s %s", from, to);
}

/* broker.conf without its crl line. */
static void
drop_crl_line(void)
{
	FILE	*f = fopen(h_conf(env), "r");
	char	 line[8192], *text = NULL;
	size_t	 len = 0;
	FILE	*out = open_memstream(&text, &len);

	cr_assert_not_null(f);
	cr_assert_not_null(out);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "crl =", 5) != 0)
			fputs(line, out);
	fclose(f);
	cr_assert_eq(fclose(out), 0);
	h_keep_str(text);
	spit(h_conf(env), text);
}

/* `ccbroker run` that must refuse to start: its status and stderr. */
static int
run_refused(char **err)
{
	pid_t	pid = h_ccbroker_bg(env, "run", "-c", h_conf(env), NULL);

	/* A broker that starts after all fails the test here. */
	return h_bg_wait(env, pid, 10000, NULL, err);
}

/* ---------------------------------------------------------------- start */

enum crl_fault { NO_CRL_KEY, CRL_PAST, CRL_GARBAGE, CRL_FOREIGN, CRL_GONE };

/* Each row: a broker.conf or CRL fault, and what the one line says. */
static const struct {
	const char	*what;
	enum crl_fault	 fault;
	const char	*file;		/* named in the line, NULL: conf */
	const char	*want;
} start_refused[] = {
	{ "no crl key", NO_CRL_KEY, NULL,
	    "missing required key 'crl' in [broker]" },
	{ "CRL past its next update", CRL_PAST, "ca.crl",
	    "CRL past its next update (2021-01-01T00:00:00" },
	{ "CRL that does not parse", CRL_GARBAGE, "ca.crl", "not a PEM CRL" },
	{ "CRL of another CA", CRL_FOREIGN, "ca.crl", "not signed by the CA" },
	{ "CRL file missing", CRL_GONE, "ca.crl", "No such file" },
};

H_TEST(crl, broker_without_a_crl_in_force_refuses_to_start_naming_the_file)
{
	char		*err, *foreign, *good, *dir;
	const char	*crl;
	size_t		 i;
	int		 st;

	env = h_env_new(&(struct h_env_opts){ .no_start = true });
	crl = pki_file("ca.crl");
	good = h_keep_str(strdup(pki_file("good.crl")));
	copy(crl, good);
	cr_assert_geq(asprintf(&dir, "%s/foreign", h_dir(env)), 0);
	h_keep_str(dir);
	/* Another partnership, whose CRL is not our CA's. */
	{
		const char	*src = getenv("CC_SRC");
		char		*script;

		cr_assert_geq(asprintf(&script, "%s/certs-example/"
		    "mkpartnership.sh", src != NULL && *src ? src : "."), 0);
		h_keep_str(script);
		cr_assert_eq(h_run(env, NULL, NULL, (const char *const[]){
		    "sh", script, "-d", "30", dir, NULL }), 0,
		    "no foreign partnership");
	}
	cr_assert_geq(asprintf(&foreign, "%s/ca.crl", dir), 0);
	h_keep_str(foreign);

	for (i = 0; i < sizeof(start_refused) / sizeof(start_refused[0]);
	    i++) {
		h_write_conf(env, NULL);
		copy(good, crl);
		switch (start_refused[i].fault) {
		case NO_CRL_KEY:
			drop_crl_line();
			break;
		case CRL_PAST:
			cr_assert_eq(h_gencrl(env, "20200101000000Z",
			    "20210101000000Z"), 0);
			break;
		case CRL_GARBAGE:
			spit(crl, "-----BEGIN X509 CRL-----\nnot base64\n"
			    "-----END X509 CRL-----\n");
			break;
		case CRL_FOREIGN:
			copy(foreign, crl);
			break;
		case CRL_GONE:
			/* ICF_FILE checks the path when the file is read. */
			cr_assert_eq(remove(crl), 0);
			break;
		}
		st = run_refused(&err);
		cr_expect_neq(st, 0, "%s: the broker started", start_refused[i].what);
		cr_expect_lt(st, 128, "%s: crashed (%d)", start_refused[i].what,
		    st);
		cr_expect_eq(lines(err), 1, "%s: %zu lines:\n%s",
		    start_refused[i].what, lines(err), err);
		cr_expect(strstr(err, start_refused[i].file != NULL ?
		    pki_file(start_refused[i].file) : h_conf(env)) != NULL,
		    "%s: the file is not named: %s", start_refused[i].what, err);
		cr_expect(strstr(err, start_refused[i].want) != NULL,
		    "%s: does not say '%s': %s", start_refused[i].what,
		    start_refused[i].want, err);
	}

	/* The good CRL back: it starts. */
	h_write_conf(env, NULL);
	copy(good, crl);
	h_broker_start(env);
	h_close(&(struct h_client *){ h_agent(env, H_CJIT, false) });
}

/* ---------------------------------------------------------------- reload */

/* Each row: what a reload brings in place of the CRL, and the error. */
static const struct {
	const char	*what;
	enum crl_fault	 fault;
	const char	*want;
} reload_refused[] = {
	{ "CRL that does not parse", CRL_GARBAGE, "not a PEM CRL" },
	{ "CRL past its next update", CRL_PAST, "CRL past its next update" },
	{ "CRL file missing", CRL_GONE, "No such file" },
	{ "no crl key", NO_CRL_KEY, "missing required key 'crl'" },
};

H_TEST(crl, reload_with_a_bad_crl_keeps_the_running_set_and_says_so)
{
	struct h_client	*carat, *cjit;
	const char	*crl;
	char		*good;
	json_t		*st;
	size_t		 i, fails;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	st = h_stats(env);
	cr_expect_eq(json_is_true(h_get(st, "reload.ok")), true, "%s",
	    h_dump(st));
	cr_expect(h_str(st, "crl.next_update") != NULL, "%s", h_dump(st));
	cr_expect(json_is_false(h_get(st, "crl.expired")), "%s", h_dump(st));

	crl = pki_file("ca.crl");
	good = h_keep_str(strdup(pki_file("good.crl")));
	copy(crl, good);
	/* A revocation the broker must not lose: cjit is revoked in the
	 * running set, and stays so through every failed reload. */
	cr_assert_eq(h_revoke(env, H_CJIT), 0);
	h_broker_hup(env);
	cr_assert(h_log_wait(env, 5000, "reloaded", NULL), "%s", h_log(env));
	copy(crl, good);

	for (i = 0; i < sizeof(reload_refused) / sizeof(reload_refused[0]);
	    i++) {
		fails = h_log_count(env, "reload failed");
		h_write_conf(env, NULL);
		copy(good, crl);
		switch (reload_refused[i].fault) {
		case NO_CRL_KEY:
			drop_crl_line();
			break;
		case CRL_PAST:
			cr_assert_eq(h_gencrl(env, "20200101000000Z",
			    "20210101000000Z"), 0);
			break;
		case CRL_GARBAGE:
			spit(crl, "garbage\n");
			break;
		case CRL_FOREIGN:
			break;
		case CRL_GONE:
			cr_assert_eq(remove(crl), 0);
			break;
		}
		h_broker_hup(env);
		cr_assert(h_log_wait(env, 5000, "reload failed",
		    reload_refused[i].want, NULL), "%s: no error in the log:\n%s",
		    reload_refused[i].what, h_log(env));
		cr_expect_eq(h_log_count(env, "reload failed"), fails + 1);

		/* The old set: carat still served and let in again, cjit
		 * still revoked. */
		h_assert_op(h_hello(carat, false), "welcome");
		h_close(&(struct h_client *){ h_agent(env, H_PROBATION,
		    false) });
		cjit = h_connect(env, H_CJIT);
		cr_expect_eq(h_handshake(cjit, 2000), -1,
		    "%s: the revoked agency got in", reload_refused[i].what);
		h_close(&cjit);

		/* `stats` reads the same broker.conf: a good one back, with
		 * no reload, so what it shows is the failed one's. */
		h_write_conf(env, NULL);
		copy(good, crl);
		st = h_stats(env);
		cr_expect(json_is_false(h_get(st, "reload.ok")), "%s: %s",
		    reload_refused[i].what, h_dump(st));
		cr_expect(h_str(st, "reload.error") != NULL &&
		    strstr(h_str(st, "reload.error"),
		    reload_refused[i].want) != NULL, "%s: %s",
		    reload_refused[i].what, h_dump(st));
		cr_expect(h_str(st, "reload.at") != NULL, "%s", h_dump(st));
		cr_expect(json_is_false(h_get(st, "crl.expired")), "%s",
		    h_dump(st));
	}

	/* A good CRL again: the reload succeeds and stats says so. */
	h_write_conf(env, NULL);
	copy(good, crl);
	h_broker_hup(env);
	cr_assert(h_log_wait(env, 5000, "reloaded", NULL));
	h_msleep(200);
	st = h_stats(env);
	cr_expect(json_is_true(h_get(st, "reload.ok")), "%s", h_dump(st));
	cr_expect(json_is_null(h_get(st, "reload.error")), "%s", h_dump(st));
}

/* ---------------------------------------------------------------- running */

H_TEST(crl, crl_passing_its_next_update_refuses_new_handshakes_until_reload)
{
	struct h_client	*carat, *cjit;
	char		 last[16], next[16];
	json_t		*st;
	time_t		 end;

	env = h_env_new(NULL);
	/* A CRL whose next update is a few seconds away. */
	end = time(NULL) + CRL_LEFT_S;
	cr_assert_eq(h_gencrl(env, h_asn1_time(-60, last),
	    h_asn1_time(CRL_LEFT_S, next)), 0);
	h_broker_hup(env);
	cr_assert(h_log_wait(env, 5000, "reloaded", NULL), "%s", h_log(env));
	cr_expect(h_log_has(env, "less than"), "no warning of the CRL's end: "
	    "%s", h_log(env));
	carat = h_agent(env, H_CARAT, false);
	h_close(&(struct h_client *){ h_agent(env, H_CJIT, false) });
	cr_assert_lt(time(NULL), end, "too slow to test before the CRL's end");

	/* Past it: the door is shut, loudly. */
	while (time(NULL) <= end)
		h_msleep(100);
	h_msleep(1000);
	cjit = h_connect(env, H_CJIT);
	cr_expect_eq(h_handshake(cjit, 2000), -1, "admitted past the CRL's "
	    "next update");
	h_close(&cjit);
	cr_expect(h_log_wait(env, 3000, "refused", "agency=" H_CJIT,
	    "reason=\"CRL expired\"", NULL), "%s", h_log(env));
	cr_expect(h_log_wait(env, 3000, "error: CRL", "past its next update",
	    NULL), "%s", h_log(env));
	st = h_stats(env);
	cr_expect(json_is_true(h_get(st, "crl.expired")), "%s", h_dump(st));

	/* A connection admitted before keeps its service (see OPERATIONS). */
	h_assert_op(h_publish(carat, h_release_plan_new(H_PNC_A, "Before")),
	    "accepted");

	/* A reload of the same CRL fails and changes nothing. */
	h_broker_hup(env);
	cr_expect(h_log_wait(env, 5000, "reload failed",
	    "CRL past its next update", NULL), "%s", h_log(env));
	cjit = h_connect(env, H_CJIT);
	cr_expect_eq(h_handshake(cjit, 2000), -1);
	h_close(&cjit);

	/* A fresh CRL and a reload open it again. */
	cr_assert_eq(h_gencrl(env, NULL, NULL), 0);
	h_broker_hup(env);
	cr_assert(h_log_wait(env, 5000, "reloaded", NULL), "%s", h_log(env));
	cjit = h_agent(env, H_CJIT, false);
	h_close(&cjit);
	st = h_stats(env);
	cr_expect(json_is_false(h_get(st, "crl.expired")), "%s", h_dump(st));
	cr_expect(json_is_true(h_get(st, "reload.ok")), "%s", h_dump(st));
}
