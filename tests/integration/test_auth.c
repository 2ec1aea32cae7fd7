/*
 * test_auth.c - who may talk to the broker, and as whom (issue 4).
 *
 * A fresh partnership per test, the real broker, real CURVE clients:
 * valid agencies are welcomed as themselves; every other certificate is
 * refused at the handshake, logged with its reason and counted; a revoked
 * agency loses service on SIGHUP; nothing a client writes changes who it
 * is; configuration errors are one line and a non-zero exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/harness.h"

static struct h_env	*env;

static void
teardown(void)
{
	h_env_destroy(&env);
}

TestSuite(auth, .fini = teardown, .timeout = 90);

static size_t
lines(const char *s)
{
	size_t	n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* ---------------------------------------------------------------- welcome */

static const struct {
	const char	*agency;
	const char	*type;
} valid_agencies[] = {
	{ H_CARAT,	"prison-carat" },
	{ H_CJIT,	"cjit" },
	{ H_PROBATION,	"probation" },
	{ H_HOUSING,	"housing-provider" },
	{ H_LA,		"la-housing" },
};

H_TEST(auth, valid_agency_is_welcomed_with_its_id_type_and_areas)
{
	size_t	i;

	env = h_env_new(NULL);
	for (i = 0; i < sizeof(valid_agencies) / sizeof(valid_agencies[0]);
	    i++) {
		struct h_client	*c = h_connect(env, valid_agencies[i].agency);
		json_t		*w = h_hello(c, true);

		h_assert_op(w, "welcome");
		cr_expect_str_eq(h_str(w, "agency"), valid_agencies[i].agency);
		cr_expect_str_eq(h_str(w, "type"), valid_agencies[i].type);
		cr_expect(h_set_eq(h_get(w, "areas"), H_AREA), "%s areas: %s",
		    valid_agencies[i].agency, h_dump(w));
		cr_expect_eq(h_int(w, "max_size"), 65536, "%s", h_dump(w));
		cr_expect(h_str(w, "time") != NULL, "%s", h_dump(w));
		cr_expect_eq(h_handshake(c, 1000), 1);
		h_close(&c);
	}
}

/* ---------------------------------------------------------------- refusal */

/* Each row: the client, the agency the log names, the reason it gives. */
static const struct {
	const char	*agency;	/* NULL: a key no certificate holds */
	const char	*logged_as;
	const char	*reason;
} refused[] = {
	{ NULL,		"agency=unknown",		"reason=\"unknown key\"" },
	{ H_REVOKED,	"agency=" H_REVOKED,		"reason=revoked" },
	{ H_EXPIRED,	"agency=" H_EXPIRED,		"reason=expired" },
	{ H_FUTURE,	"agency=" H_FUTURE,		"reason=\"not yet valid\"" },
	{ H_FOREIGN,	"agency=" H_FOREIGN,		"reason=\"unknown issuer\"" },
	{ H_WRONG_OU,	"agency=" H_WRONG_OU,
	    "reason=\"unknown agency type (OU)\"" },
	{ H_STRANGER,	"agency=unknown",		"reason=\"unknown key\"" },
};

H_TEST(auth, refused_certificates_get_no_answer_and_are_logged_with_reason)
{
	struct h_env_opts	 o = { .bad_certs = true };
	struct h_client		*ok, *c[sizeof(refused) / sizeof(refused[0])];
	char			*out;
	json_t			*stats;
	size_t			 i, n = sizeof(refused) / sizeof(refused[0]);

	env = h_env_new(&o);
	/* All at once: each then has had a whole second to be answered. */
	for (i = 0; i < n; i++) {
		c[i] = refused[i].agency != NULL ?
		    h_connect(env, refused[i].agency) : h_connect_unknown(env);
		h_sendf(c[i], "{\"op\": \"hello\", \"agent\": \"t/1\","
		    " \"receive\": true}");
	}
	h_msleep(1000);
	for (i = 0; i < n; i++) {
		const char *who = refused[i].agency ? refused[i].agency :
		    "a fresh key";

		cr_expect_null(h_recv(c[i], NULL, 0), "%s was answered", who);
		cr_expect_eq(h_handshake(c[i], 1000), -1,
		    "%s: handshake not refused by authentication", who);
		cr_expect(h_log_wait(env, 2000, "refused",
		    refused[i].logged_as, refused[i].reason, NULL),
		    "%s: no log line with %s %s", who, refused[i].logged_as,
		    refused[i].reason);
		h_close(&c[i]);
	}

	/* The broker still serves everyone else. */
	ok = h_agent(env, H_CJIT, true);
	h_assert_op(h_subscribe(ok, "release-plan", H_AREA), "subscribed");

	/* Every refusal was counted. */
	cr_assert_eq(h_ccbroker(env, &out, NULL, "stats", "-c", h_conf(env),
	    NULL), 0);
	stats = h_json(out);
	cr_expect_geq(h_int(stats, "outcomes.refused_connections"), (long)n,
	    "%s", out);
}

/* ---------------------------------------------------------------- reload */

H_TEST(auth, revoked_agency_gets_nothing_after_sighup_while_others_carry_on)
{
	struct h_client	*carat, *cjit, *prob, *again;
	json_t		*m1, *m2, *d, *r;
	size_t		 i;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	prob = h_agent(env, H_PROBATION, true);
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");
	h_assert_op(h_subscribe(prob, "release-plan", H_AREA), "subscribed");
	h_assert_op(h_grant(carat, H_CJIT "," H_PROBATION, H_BASIC, H_PNC_A),
	    "consent-recorded");

	m1 = h_release_plan_new(H_PNC_A, "Before");
	h_assert_op(h_publish(carat, m1), "accepted");
	d = h_collect(cjit, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1, "cjit before revocation: %s",
	    h_dump(d));
	cr_assert_eq(json_array_size(h_collect(prob, "deliver", 1,
	    H_TIMEOUT_MS, true)), 1);

	cr_assert_eq(h_revoke(env, H_CJIT), 0);
	h_broker_hup(env);
	cr_assert(h_log_wait(env, 5000, "reloaded", NULL), "no reload: %s",
	    h_log(env));

	/* Every request on the connection it already has is refused. */
	{
		static const char *const reqs[] = {
			"{\"op\": \"hello\", \"agent\": \"t/1\", \"receive\": true}",
			"{\"op\": \"subscribe\", \"types\": [\"release-plan\"],"
			" \"areas\": [\"" H_AREA "\"]}",
			"{\"op\": \"track\", \"mid\":"
			" \"5b0c7e4e-8f47-4a52-9d0b-3f4f7cbe0a11\"}",
		};

		/* Refused with not-permitted (DESIGN §3), or not answered
		 * at all once the broker has dropped the connection. */
		for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
			r = h_call_json(cjit, reqs[i], "welcome,subscribed,"
			    "status");
			if (r != NULL)
				h_assert_error(r, "not-permitted", NULL);
		}
	}

	/* Others carry on; the revoked agency receives nothing more. */
	m2 = h_release_plan_new(H_PNC_A, "After");
	h_assert_op(h_publish(carat, m2), "accepted");
	d = h_collect(prob, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1, "probation after: %s", h_dump(d));
	cr_expect_str_eq(h_str(d, "0.mid"), h_str(m2, "mid"));
	cr_expect_eq(json_array_size(h_deliveries(cjit, true)), 0,
	    "the revoked agency still receives");
	r = h_track_of(carat, h_str(m2, "mid"), H_CJIT);
	cr_assert_not_null(r, "no track entry for cjit");
	cr_expect_str_eq(h_str(r, "state"), "withheld", "%s", h_dump(r));
	cr_expect_str_eq(h_str(r, "reason"), "not-permitted", "%s", h_dump(r));

	/* And it cannot connect again. */
	again = h_connect(env, H_CJIT);
	h_sendf(again, "{\"op\": \"hello\", \"agent\": \"t/1\"}");
	cr_expect_null(h_recv(again, NULL, 1000));
	cr_expect_eq(h_handshake(again, 1000), -1);
	cr_expect(h_log_wait(env, 2000, "refused", "agency=" H_CJIT,
	    "reason=revoked", NULL), "no refusal logged for the revoked cjit");
}

/* ---------------------------------------------------------------- identity */

/* Fields through which a client might claim to be someone else. */
static const struct {
	const char	*what;
	const char	*json;		/* %s: a fresh mid or cid */
	const char	*field;
} claims[] = {
	{ "publish from", "{\"op\": \"publish\", \"from\": \"" H_CJIT "\","
	    " \"mid\": \"%s\", \"type\": \"release-plan\","
	    " \"purpose\": \"continuity-of-care\","
	    " \"subject\": {\"pnc\": \"" H_PNC_A "\"}, \"area\": \"" H_AREA "\","
	    " \"created\": \"2025-01-01T00:00:00Z\","
	    " \"body\": {\"person\": {\"family_name\": \"X\"}}}", "from" },
	{ "publish sender", "{\"op\": \"publish\", \"sender\": \"" H_CJIT "\","
	    " \"mid\": \"%s\", \"type\": \"release-plan\","
	    " \"purpose\": \"continuity-of-care\","
	    " \"subject\": {\"pnc\": \"" H_PNC_A "\"}, \"area\": \"" H_AREA "\","
	    " \"created\": \"2025-01-01T00:00:00Z\","
	    " \"body\": {\"person\": {\"family_name\": \"X\"}}}", "sender" },
	{ "publish body.from", "{\"op\": \"publish\", \"mid\": \"%s\","
	    " \"type\": \"release-plan\", \"purpose\": \"continuity-of-care\","
	    " \"subject\": {\"pnc\": \"" H_PNC_A "\"}, \"area\": \"" H_AREA "\","
	    " \"created\": \"2025-01-01T00:00:00Z\","
	    " \"body\": {\"from\": \"" H_CJIT "\","
	    " \"person\": {\"family_name\": \"X\"}}}", "body.from" },
	{ "hello agency", "{\"op\": \"hello\", \"agent\": \"t/1\","
	    " \"agency\": \"" H_CJIT "\"}", "agency" },
	{ "grant recorded_by", "{\"op\": \"consent-grant\", \"cid\": \"%s\","
	    " \"recorded_by\": \"" H_CJIT "\","
	    " \"subject\": {\"pnc\": \"" H_PNC_A "\"},"
	    " \"recipients\": [\"" H_CJIT "\"],"
	    " \"purposes\": [\"continuity-of-care\"],"
	    " \"categories\": [\"identity\"],"
	    " \"valid_from\": \"2025-01-01T00:00:00Z\","
	    " \"valid_until\": \"2026-01-01T00:00:00Z\","
	    " \"evidence\": {\"method\": \"written\", \"form\": \"F v1\","
	    " \"worker\": \"W\", \"captured\": \"2025-01-01T00:00:00Z\"}}",
	    "recorded_by" },
	{ "withdraw by", "{\"op\": \"consent-withdraw\", \"cid\": \"%s\","
	    " \"by\": \"" H_CJIT "\", \"captured\": \"2025-01-01T00:00:00Z\","
	    " \"worker\": \"W\"}", "by" },
};

H_TEST(auth, claims_of_another_sender_are_refused_and_ignored)
{
	struct h_client	*carat, *cjit, *housing;
	json_t		*m, *d, *r, *rep;
	char		 id[37];
	size_t		 i;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");

	for (i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		r = h_call(carat, h_jsonf(claims[i].json, h_uuid(id)),
		    "accepted,consent-recorded,welcome");
		h_assert_error(r, "unknown-field", claims[i].field);
	}

	/* A type the sender's own certificate does not allow stays refused. */
	housing = h_agent(env, H_HOUSING, false);
	r = h_publish(housing, h_release_plan_new(H_PNC_A, "Claimed"));
	h_assert_error(r, "not-permitted", "type");
	r = h_grant(housing, H_CJIT, H_BASIC, H_PNC_A);
	h_assert_error(r, "not-permitted", NULL);

	/* What is delivered and recorded names the authenticated agency. */
	rep = h_grant(carat, H_CJIT, H_BASIC, H_PNC_A);
	h_assert_op(rep, "consent-recorded");
	m = h_release_plan_new(H_PNC_A, "Attributed");
	h_assert_op(h_publish(carat, m), "accepted");
	d = h_collect(cjit, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1, "%s", h_dump(d));
	cr_expect_str_eq(h_str(d, "0.from"), H_CARAT);
	r = h_receipt_for(carat, h_str(m, "mid"), H_CJIT, H_TIMEOUT_MS);
	cr_assert_str_eq(h_str(r, "state"), "delivered", "%s", h_dump(r));

	/* Only the real sender may track it. */
	h_assert_error(h_track(cjit, h_str(m, "mid")), "invalid-field", "mid");
	h_assert_op(h_track(carat, h_str(m, "mid")), "status");

	rep = h_audit_subject(env, "pnc=" H_PNC_A);
	cr_assert_eq(json_array_size(h_get(rep, "consents")), 1, "%s",
	    h_dump(rep));
	cr_expect_str_eq(h_str(rep, "consents.0.recorded_by"), H_CARAT);
	cr_expect_str_eq(h_str(rep, "disclosures.0.sender"), H_CARAT, "%s",
	    h_dump(rep));
}

/* ---------------------------------------------------------------- input */

H_TEST(auth, unparseable_input_gets_an_error_and_the_connection_stays_usable)
{
	static const unsigned char garbage[] = { 0xc1, 0xff, 0x00, 'x' };
	struct h_client	*c;
	json_t		*r;

	env = h_env_new(NULL);
	c = h_agent(env, H_CJIT, false);
	h_send_raw(c, garbage, sizeof(garbage));
	r = h_recv(c, "error", H_TIMEOUT_MS);
	h_assert_error(r, "malformed", NULL);
	h_sendf(c, "{\"op\": \"fly\"}");
	h_assert_error(h_recv(c, "error", H_TIMEOUT_MS), "unknown-op", NULL);
	h_assert_op(h_hello(c, false), "welcome");
}

/* ---------------------------------------------------------------- config */

/* Each row replaces broker.conf with the harness's own plus `extra`, or
 * names a file that does not exist; `want` must be in the one line. */
static const struct {
	const char	*what;
	const char	*extra;
	bool		 missing_file;
	const char	*want;
} bad_confs[] = {
	{ "unknown key", "[broker]\ncolour = blue\n", false,
	    "unknown key 'colour' in [broker]" },
	{ "unknown section", "[frobnicate]\nx = 1\n", false,
	    "unknown section [frobnicate]" },
	{ "unknown agency type", "[policy.plumber]\nreceive = all\n", false,
	    "plumber" },
	{ "bad category", "[policy.cjit]\nreceive = identity, gossip\n",
	    false, "gossip" },
	{ "missing file", NULL, true, "/nonexistent/broker.conf" },
};

H_TEST(auth, config_errors_give_one_line_and_exit_non_zero)
{
	static const char *const cmds[][2] = {
		{ "run", NULL }, { "init", NULL }, { "stats", NULL },
		{ "audit", "verify" },
	};
	char	*err, path[4200];
	size_t	 i, j;
	FILE	*f;

	env = h_env_new(&(struct h_env_opts){ .no_start = true });
	for (i = 0; i < sizeof(bad_confs) / sizeof(bad_confs[0]); i++) {
		if (bad_confs[i].missing_file)
			snprintf(path, sizeof(path), "/nonexistent/broker.conf");
		else {
			/* A good file with a duplicate [broker] or a bad
			 * section appended. */
			char *text;
			size_t len;

			snprintf(path, sizeof(path), "%s/bad%zu.conf",
			    h_dir(env), i);
			f = fopen(h_conf(env), "r");
			cr_assert_not_null(f);
			fseek(f, 0, SEEK_END);
			len = (size_t)ftell(f);
			fseek(f, 0, SEEK_SET);
			text = calloc(1, len + 1);
			cr_assert_eq(fread(text, 1, len, f), len);
			fclose(f);
			/* Put the bad key inside the real [broker] section. */
			f = fopen(path, "w");
			cr_assert_not_null(f);
			if (strncmp(bad_confs[i].extra, "[broker]\n", 9) == 0) {
				char *p = strstr(text, "[broker]\n") + 9;

				fwrite(text, 1, (size_t)(p - text), f);
				fputs(bad_confs[i].extra + 9, f);
				fputs(p, f);
			} else {
				fputs(text, f);
				fputs(bad_confs[i].extra, f);
			}
			fclose(f);
			free(text);
		}
		for (j = 0; j < sizeof(cmds) / sizeof(cmds[0]); j++) {
			int st = cmds[j][1] != NULL ?
			    h_ccbroker(env, NULL, &err, cmds[j][0], cmds[j][1],
			    "-c", path, NULL) :
			    h_ccbroker(env, NULL, &err, cmds[j][0], "-c", path,
			    NULL);

			cr_expect_neq(st, 0, "%s: `%s` exited 0",
			    bad_confs[i].what, cmds[j][0]);
			cr_expect_lt(st, 128, "%s: `%s` crashed (%d)",
			    bad_confs[i].what, cmds[j][0], st);
			cr_expect_eq(lines(err), 1, "%s: `%s` said %zu lines:\n%s",
			    bad_confs[i].what, cmds[j][0], lines(err), err);
			cr_expect(strstr(err, bad_confs[i].want) != NULL,
			    "%s: `%s` does not say '%s': %s", bad_confs[i].what,
			    cmds[j][0], bad_confs[i].want, err);
			if (!bad_confs[i].missing_file &&
			    strcmp(bad_confs[i].what, "unknown key") == 0)
				cr_expect(strstr(err, path) != NULL &&
				    strstr(err, ".conf:") != NULL,
				    "no file:line in: %s", err);
		}
	}
}

/* A file's bytes as hex, owned by the harness. */
static char *
file_hex(const char *path)
{
	FILE	*f = fopen(path, "rb");
	char	 buf[256], *hex;
	size_t	 n, i;

	cr_assert_not_null(f, "cannot open %s", path);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	hex = h_keep_str(calloc(1, 2 * n + 1));
	for (i = 0; i < n; i++)
		sprintf(hex + 2 * i, "%02x", (unsigned char)buf[i]);
	return hex;
}

H_TEST(auth, init_refuses_to_overwrite_an_existing_data_directory)
{
	char	*err, *before, key[4200];
	int	 st;

	env = h_env_new(&(struct h_env_opts){ .no_start = true });
	snprintf(key, sizeof(key), "%s/key", h_data(env));
	before = file_hex(key);
	st = h_ccbroker(env, NULL, &err, "init", "-c", h_conf(env), NULL);
	cr_expect_neq(st, 0, "a second init succeeded");
	cr_expect_lt(st, 128);
	cr_expect_eq(lines(err), 1, "%s", err);
	cr_expect(strstr(err, h_data(env)) != NULL, "does not name %s: %s",
	    h_data(env), err);
	cr_expect_str_eq(file_hex(key), before, "init rewrote the at-rest key");
	/* The store it kept still runs. */
	h_broker_start(env);
	h_close(&(struct h_client *){ h_agent(env, H_CJIT, false) });
}

H_TEST(auth, sigterm_stops_the_broker_cleanly)
{
	env = h_env_new(NULL);
	h_close(&(struct h_client *){ h_agent(env, H_CARAT, false) });
	cr_expect_eq(h_broker_stop(env), 0);
	cr_expect(h_log_has(env, "stopping"), "%s", h_log(env));
}
