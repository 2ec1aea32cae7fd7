/*
 * test_security.c - the findings of the second-wave security review
 * (issue 18), each as the attack or the careless operation that found it:
 * service follows the key, consents amended only by their recorder, a
 * request in several frames, a connection that never says anything.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>
#include <uuid/uuid.h>

#include "../lib/harness.h"

static struct h_env	*env;

/* Flip the lowest bit of the last letter of a stored message's sender,
 * through LMDB with the broker stopped (the header starts with it). */
static void
flip_msg_sender(const char *midtext)
{
	MDB_env		*e;
	MDB_txn		*t;
	MDB_dbi		 dbi;
	MDB_val		 k, v;
	uint8_t		 mid[16], *copy;
	size_t		 n;

	cr_assert_eq(uuid_parse(midtext, mid), 0);
	k.mv_size = 16;
	k.mv_data = mid;
	cr_assert_eq(mdb_env_create(&e), 0);
	cr_assert_eq(mdb_env_set_maxdbs(e, 16), 0);
	cr_assert_eq(mdb_env_set_mapsize(e, (size_t)64 << 20), 0);
	cr_assert_eq(mdb_env_open(e, h_data(env), 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(e, NULL, 0, &t), 0);
	cr_assert_eq(mdb_dbi_open(t, "msg", 0, &dbi), 0);
	cr_assert_eq(mdb_get(t, dbi, &k, &v), 0, "message not stored");
	cr_assert_not_null(copy = malloc(v.mv_size));
	memcpy(copy, v.mv_data, v.mv_size);
	n = strlen((char *)copy);
	cr_assert_str_eq((char *)copy, H_CARAT);
	copy[n - 1] ^= 1;
	v.mv_data = copy;
	cr_assert_eq(mdb_put(t, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(t), 0);
	mdb_env_close(e);
	free(copy);
}

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
	s = h_audit_subject(env, "pnc=" H_PNC_A);
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

/*
 * DESIGN rule 12: no fixed limit on history.  A subject with a thousand
 * consent records (refused, granted and withdrawn) is decided, purged and
 * withdrawn from as at the first (today's stores failed past 64).
 */
H_TEST(security, a_thousand_consent_records_of_one_subject_change_nothing)
{
	struct h_client	*carat, *cjit;
	json_t		*r, *d, *plan;
	const char	*cid;
	int		 i;

	env = h_env_new(&(struct h_env_opts){ .map_size_mb = 256 });
	carat = h_agent(env, H_CARAT, false);
	for (i = 0; i < 600; i++)
		h_assert_op(h_call(carat, h_refuse_new(H_PNC_A),
		    "consent-recorded"), "consent-recorded");
	for (i = 0; i < 400; i++) {
		r = h_call(carat, h_grant_new(H_PROBATION, H_BASIC, H_PNC_A),
		    "consent-recorded");
		h_assert_op(r, "consent-recorded");
		cid = h_str(r, "cid");
		h_assert_op(h_call(carat, h_withdraw_new(cid, NULL),
		    "consent-recorded"), "consent-recorded");
	}
	/* The thousand-and-first permits, and delivers. */
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	cjit = h_agent(env, H_CJIT, true);
	plan = h_release_plan_new(H_PNC_A, "Thousand");
	json_object_set_new(plan, "to", h_csv(H_CJIT "," H_PROBATION));
	h_assert_op(h_publish(carat, plan), "accepted");
	d = h_collect(cjit, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1, "%s", h_dump(d));
	cr_assert_str_eq(h_str(h_track_of(carat, h_str(plan, "mid"),
	    H_PROBATION), "reason"), "no-consent");
	/* A withdrawal by subject finds the one active consent. */
	h_close(&cjit);
	plan = h_release_plan_new(H_PNC_A, "Queued");
	json_object_set_new(plan, "to", h_csv(H_CJIT));
	h_assert_op(h_publish(carat, plan), "accepted");
	r = h_call(carat, h_withdraw_new(NULL, H_PNC_A), "consent-recorded");
	h_assert_op(r, "consent-recorded");
	cr_assert_null(h_recv(carat, "consent-recorded", H_QUIET_MS),
	    "more than the one active consent withdrawn");
	r = h_track_of(carat, h_str(plan, "mid"), H_CJIT);
	cr_assert_str_eq(h_str(r, "state"), "purged", "%s", h_dump(r));
}

/*
 * Decision data at rest is bound to the key (item 8): a queued message's
 * header edited in the file (its sender's name, one bit) is never acted
 * on; the delivery is purged store-unavailable and the damage said.
 */
H_TEST(security, edited_message_header_is_never_delivered)
{
	struct h_client	*carat, *cjit;
	json_t		*plan, *d;
	char		*err;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	plan = h_release_plan_new(H_PNC_A, "Edited");
	json_object_set_new(plan, "to", h_csv(H_CJIT));
	h_assert_op(h_publish(carat, plan), "accepted");
	h_close(&carat);
	cr_assert_eq(h_broker_stop(env), 0);
	/* "carat.hmp-leeds" -> "carat.hmp-leedr": the name the recipient
	 * would be told the record came from. */
	flip_msg_sender(h_str(plan, "mid"));
	h_broker_start(env);
	cjit = h_agent(env, H_CJIT, true);
	d = h_deliveries(cjit, true);
	cr_assert_eq(json_array_size(d), 0, "delivered: %s", h_dump(d));
	cr_assert(h_log_wait(env, H_TIMEOUT_MS, "integrity", NULL), "%s",
	    h_log(env));
	cr_assert(h_log_wait(env, H_TIMEOUT_MS, "purged", NULL), "%s",
	    h_log(env));
	cr_assert_neq(h_ccbroker(env, NULL, &err, "audit", "verify", "-c",
	    h_conf(env), NULL), 0);
	cr_assert(strstr(err, "damaged") != NULL, "%s", err);
}
