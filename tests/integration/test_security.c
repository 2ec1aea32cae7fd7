/*
 * test_security.c - the findings of the second-wave security review
 * (issue 18), each as the attack or the careless operation that found it:
 * service follows the key, consents amended only by their recorder, a
 * request in several frames, a connection that never says anything.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "../lib/harness.h"

static struct h_env	*env;

/* SIGHUP, then wait until the broker logged its n-th reload. */
static void
reload(size_t n)
{
	int	i;

	h_broker_hup(env);
	for (i = 0; i < 100 && h_log_count(env, "reloaded") < n; i++)
		usleep(50000);
	cr_assert_geq(h_log_count(env, "reloaded"), n, "no reload logged");
}

/*
 * Re-keyed as OPERATIONS.md says (a new certificate beside the old one),
 * then the old certificate revoked: the connection still using the old
 * key gets nothing more, and every request on it is refused, while the
 * new key serves the agency.
 */
H_TEST(security, rekeyed_agency_loses_service_on_its_revoked_old_key)
{
	struct h_client	*carat, *old, *new;
	json_t		*plan, *d;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	cr_assert_eq(h_rekey(env, H_CJIT, "cjit"), 0);
	reload(1);
	old = h_connect_old(env, H_CJIT);
	h_assert_op(h_hello(old, true), "welcome");
	new = h_agent(env, H_CJIT, false);

	cr_assert_eq(h_revoke_old(env, H_CJIT), 0);
	reload(2);
	plan = h_release_plan_new(H_PNC_A, "Rekeyed");
	json_object_set_new(plan, "to", h_csv(H_CJIT));
	h_assert_op(h_publish(carat, plan), "accepted");

	d = h_deliveries(old, false);
	cr_assert_eq(json_array_size(d), 0, "the revoked key still receives: "
	    "%s", h_dump(d));
	h_assert_error(h_subscribe(old, "release-plan", H_AREA),
	    "not-permitted", NULL);
	h_assert_op(h_subscribe(new, "release-plan", H_AREA), "subscribed");
	/* The record waits for a session made with the valid key. */
	h_assert_op(h_hello(new, true), "welcome");
	d = h_collect(new, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1, "the new key got %s", h_dump(d));
	cr_assert(h_log_has(env, "no longer valid"));
}

/*
 * A renewal that keeps the key: once the original expires it must not
 * shadow the renewal (the key matched the older certificate first).
 */
H_TEST(security, renewal_keeping_the_key_is_not_shadowed_by_the_original)
{
	struct h_client	*c;

	env = h_env_new(NULL);
	cr_assert_eq(h_issue(env, "renew.agency", "cjit", "20200101000000Z",
	    "20210101000000Z"), 0);
	cr_assert_eq(h_renew(env, "renew.agency", "cjit"), 0);
	reload(1);
	c = h_connect(env, "renew.agency");
	cr_assert_eq(h_handshake(c, H_TIMEOUT_MS), 1,
	    "the renewed key was refused: %s", h_log(env));
	h_assert_op(h_hello(c, false), "welcome");
}

/*
 * DESIGN rule 11: a grant or refusal re-sent with another agency's cid
 * is refused; the consent stays as its recorder left it.  Withdrawal is
 * the exception.
 */
H_TEST(security, only_the_recorder_may_amend_a_consent)
{
	struct h_client	*carat, *prob;
	json_t		*g, *r, *s;
	const char	*cid;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	prob = h_agent(env, H_PROBATION, false);
	g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	cid = h_str(g, "cid");
	h_assert_op(h_call(carat, g, "consent-recorded"), "consent-recorded");

	/* Probation adds itself to the prison's consent. */
	json_object_set_new(g, "recipients", h_csv(H_CJIT "," H_PROBATION));
	h_assert_error(h_call(prob, g, "consent-recorded"), "not-permitted",
	    "cid");
	r = h_refuse_new(H_PNC_A);
	json_object_set_new(r, "cid", json_string(cid));
	h_assert_error(h_call(prob, r, "consent-recorded"), "not-permitted",
	    "cid");
	s = h_audit_subject(env, "--pnc", H_PNC_A);
	cr_assert_eq(h_int(s, "consents.0.history.0.version"), 1);
	cr_assert_null(h_get(s, "consents.0.history.1"),
	    "another agency's version was recorded: %s", h_dump(s));
	cr_assert(h_set_eq(h_get(s, "consents.0.recipients"), H_CJIT));

	/* The recorder may amend; anyone the client tells may withdraw. */
	r = h_call(carat, g, "consent-recorded");
	h_assert_op(r, "consent-recorded");
	cr_assert_eq(h_int(r, "version"), 2);
	r = h_call(prob, h_withdraw_new(cid, NULL), "consent-recorded");
	h_assert_op(r, "consent-recorded");
	cr_assert_eq(h_int(r, "version"), 3);
}

/*
 * One ZeroMQ frame per message (DESIGN §7): a request in two frames is
 * `malformed`, attributed to the agency that sent it and audited, not
 * refused as if the agency were unknown.
 */
H_TEST(security, request_in_several_frames_is_malformed_and_attributed)
{
	struct h_client	*c;
	json_t		*e, *st;
	static const char part[] = "\x81\xa1v\x01";

	env = h_env_new(NULL);
	c = h_agent(env, H_CJIT, false);
	cr_assert_eq(h_send_parts(c, part, sizeof(part) - 1, part,
	    sizeof(part) - 1), 0);
	e = h_recv(c, "error", H_TIMEOUT_MS);
	h_assert_error(e, "malformed", NULL);
	cr_assert(h_log_wait(env, H_TIMEOUT_MS, "rejected input",
	    "agency=" H_CJIT, "code=malformed", NULL), "%s", h_log(env));
	st = h_stats(env);
	cr_assert_eq(h_int(st, "outcomes.rejected_inputs"), 1, "%s",
	    h_dump(st));
	/* The connection stays usable. */
	h_assert_op(h_hello(c, false), "welcome");
}

/*
 * A client that opens a connection and never starts the handshake holds
 * a descriptor only for the handshake interval (10 s), not for ever.
 */
H_TEST(security, silent_connection_is_dropped_after_the_handshake_interval)
{
	struct sockaddr_in	sin;
	struct pollfd		pfd;
	char			buf[64];
	int			fd, n;

	env = h_env_new(NULL);
	cr_assert_geq(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)h_port(env));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	/* libzmq greets first; read its greeting and say nothing back. */
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		cr_assert_gt(poll(&pfd, 1, 20000), 0,
		    "still connected after 20 s");
		if ((n = (int)read(fd, buf, sizeof(buf))) <= 0)
			break;
	}
	close(fd);
}
