/*
 * test_audit.c - the audit trail and the information-governance commands
 * (issue 7, DESIGN §2 and §9): audit verify, audit subject, stats and
 * backup, run beside the real broker.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "../lib/harness.h"

static struct h_env	*env;

static void
teardown(void)
{
	h_env_destroy(&env);
}

TestSuite(audit, .fini = teardown, .timeout = 120);

/* What the scripted run did, for the checks that follow it. */
struct script {
	json_t	*grant_a, *grant_b;	/* consents about PNC A and B */
	json_t	*a_mids;		/* delivered to cjit, about A */
	json_t	*a_withheld;		/* the one also named housing */
	json_t	*b_mids;		/* delivered to cjit, about B */
	json_t	*purged;		/* queued for probation, then purged */
};

/*
 * Grants for two people, publishes delivered and withheld, a withdrawal
 * that purges a queued delivery, a refused connection and a rejected
 * input: one of every kind of audit entry the contract names but expiry.
 */
static void
scripted_run(struct script *s)
{
	struct h_client	*carat, *cjit, *stranger;
	json_t		*m, *g;
	size_t		 i;

	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	s->grant_a = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	s->grant_b = h_grant_new(H_CJIT, H_BASIC, H_PNC_B);
	h_assert_op(h_call(carat, s->grant_a, "consent-recorded"),
	    "consent-recorded");
	h_assert_op(h_call(carat, s->grant_b, "consent-recorded"),
	    "consent-recorded");
	s->a_mids = h_keep(json_array());
	s->b_mids = h_keep(json_array());
	for (i = 0; i < 3; i++) {
		m = h_release_plan_new(H_PNC_A, "Subjecta");
		json_object_set(m, "to", h_csv(i == 2 ? H_CJIT "," H_HOUSING :
		    H_CJIT));
		h_assert_op(h_publish(carat, m), "accepted");
		json_array_append(s->a_mids, json_object_get(m, "mid"));
		if (i == 2)
			s->a_withheld = json_object_get(m, "mid");
	}
	m = h_release_plan_new(H_PNC_B, "Subjectb");
	json_object_set(m, "to", h_csv(H_CJIT));
	h_assert_op(h_publish(carat, m), "accepted");
	json_array_append(s->b_mids, json_object_get(m, "mid"));
	cr_assert_eq(json_array_size(h_collect(cjit, "deliver", 4,
	    H_TIMEOUT_MS, true)), 4);
	for (i = 0; i < 3; i++)
		cr_assert_not_null(h_receipt_for(carat, json_string_value(
		    json_array_get(s->a_mids, i)), H_CJIT, H_TIMEOUT_MS));
	cr_assert_not_null(h_receipt_for(carat, json_string_value(
	    json_array_get(s->b_mids, 0)), H_CJIT, H_TIMEOUT_MS));

	/* Queued for probation (offline), then withdrawn: purged. */
	g = h_grant_new(H_PROBATION, H_BASIC, H_PNC_C);
	h_assert_op(h_call(carat, g, "consent-recorded"), "consent-recorded");
	m = h_release_plan_new(H_PNC_C, "Subjectc");
	json_object_set(m, "to", h_csv(H_PROBATION));
	h_assert_op(h_publish(carat, m), "accepted");
	s->purged = json_object_get(m, "mid");
	h_assert_op(h_call(carat, h_withdraw_new(h_str(g, "cid"), NULL),
	    "consent-recorded"), "consent-recorded");
	cr_assert_str_eq(h_str(h_receipt_for(carat, json_string_value(
	    s->purged), H_PROBATION, H_TIMEOUT_MS), "state"), "purged");

	/* A rejected input and a refused connection. */
	h_assert_error(h_call_json(carat, "{\"op\": \"publish\"}", "accepted"),
	    "missing-field", NULL);
	stranger = h_connect_unknown(env);
	h_sendf(stranger, "{\"op\": \"hello\", \"agent\": \"t/1\"}");
	cr_assert_eq(h_handshake(stranger, 2000), -1);
	cr_assert(h_log_wait(env, 2000, "refused", "reason=", NULL));
	h_close(&stranger);
	/* The refusal reaches the audit aggregated, at the end of its
	 * minute or when the broker stops (issue 18 item 5). */
	h_assert_op(h_hello(carat, true), "welcome");
	h_close(&carat);
	h_close(&cjit);
}

static long long
verify(char **out, char **err)
{
	return h_ccbroker(env, out, err, "audit", "verify", "-c", h_conf(env),
	    NULL);
}

/* The number in "audit intact: N entries". */
static long long
intact_count(const char *out)
{
	long long	n = -1;

	if (sscanf(out, "audit intact: %lld entries", &n) != 1)
		return -1;
	return n;
}

H_TEST(audit, verify_passes_after_a_scripted_run_while_running_and_after)
{
	struct script	 s;
	char		*out, *err;
	long long	 n1, n2;

	env = h_env_new(NULL);
	scripted_run(&s);
	cr_assert_eq(verify(&out, &err), 0, "%s%s", out, err);
	n1 = intact_count(out);
	/* 2+1 grants, 5 accepted, 4 delivered, 1 withheld, 1 purged,
	 * 1 withdrawn, 1 rejected at least. */
	cr_expect_geq(n1, 16, "%s", out);
	h_broker_stop(env);
	cr_assert_eq(verify(&out, &err), 0, "%s%s", out, err);
	n2 = intact_count(out);
	/* A clean stop adds only the refused connection's aggregate. */
	cr_expect_eq(n2, n1 + 1, "entries after a clean stop: %s", out);
}

/* ---------------------------------------------------------------- tamper */

/*
 * Flip the case of the first letter of the entry's `ev` text: the entry
 * stays valid msgpack, so only the hash chain can tell.  Returns the old
 * value (malloc'd) so the caller can put it back.
 */
static void *
tamper(uint64_t seq, size_t *len, const void *restore)
{
	MDB_env		*e;
	MDB_txn		*txn;
	MDB_dbi		 dbi;
	MDB_val		 k, v;
	uint8_t		 key[8], *copy = NULL, *old = NULL;
	size_t		 i;
	int		 rc;

	for (i = 0; i < 8; i++)
		key[i] = (uint8_t)(seq >> (56 - 8 * i));
	cr_assert_eq(mdb_env_create(&e), 0);
	cr_assert_eq(mdb_env_set_maxdbs(e, 16), 0);
	cr_assert_eq(mdb_env_set_mapsize(e, (size_t)64 << 20), 0);
	rc = mdb_env_open(e, h_data(env), 0, 0600);
	cr_assert_eq(rc, 0, "mdb_env_open: %s", mdb_strerror(rc));
	cr_assert_eq(mdb_txn_begin(e, NULL, 0, &txn), 0);
	rc = mdb_dbi_open(txn, "audit", 0, &dbi);
	cr_assert_eq(rc, 0, "no audit database: %s", mdb_strerror(rc));
	k.mv_size = 8;
	k.mv_data = key;
	rc = mdb_get(txn, dbi, &k, &v);
	cr_assert_eq(rc, 0, "no audit entry %llu: %s",
	    (unsigned long long)seq, mdb_strerror(rc));
	if (restore != NULL) {
		v.mv_data = (void *)restore;
		v.mv_size = *len;
	} else {
		static const uint8_t evkey[] = { 0xa2, 'e', 'v' };

		old = malloc(v.mv_size);
		copy = malloc(v.mv_size);
		cr_assert(old != NULL && copy != NULL);
		memcpy(old, v.mv_data, v.mv_size);
		memcpy(copy, v.mv_data, v.mv_size);
		*len = v.mv_size;
		for (i = 0; i + 4 < v.mv_size; i++)
			if (memcmp(copy + i, evkey, 3) == 0 &&
			    (copy[i + 3] & 0xe0) == 0xa0 &&
			    (copy[i + 3] & 0x1f) > 0)
				break;
		cr_assert(i + 4 < v.mv_size, "no ev text in entry %llu",
		    (unsigned long long)seq);
		copy[i + 4] ^= 0x20;	/* 'a' <-> 'A' */
		v.mv_data = copy;
	}
	rc = mdb_put(txn, dbi, &k, &v, 0);
	cr_assert_eq(rc, 0, "mdb_put: %s", mdb_strerror(rc));
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(e);
	free(copy);
	return old;
}

H_TEST(audit, one_flipped_byte_breaks_verify_naming_that_entry)
{
	struct script	 s;
	char		*out, *err, want[64];
	long long	 n;
	size_t		 i;

	env = h_env_new(NULL);
	scripted_run(&s);
	h_broker_stop(env);
	cr_assert_eq(verify(&out, &err), 0, "%s%s", out, err);
	n = intact_count(out);
	cr_assert_gt(n, 3);

	{
		/* The first entry, one in the middle, the newest. */
		const uint64_t seqs[] = { 1, (uint64_t)n / 2, (uint64_t)n };

		for (i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
			size_t	 len;
			void	*old = tamper(seqs[i], &len, NULL);
			int	 st = (int)verify(&out, &err);

			cr_expect_neq(st, 0, "entry %llu changed, verify passed",
			    (unsigned long long)seqs[i]);
			cr_expect_lt(st, 128, "verify crashed");
			snprintf(want, sizeof(want), "entry %llu:",
			    (unsigned long long)seqs[i]);
			cr_expect(strstr(err, want) != NULL,
			    "entry %llu changed; verify said: %s%s",
			    (unsigned long long)seqs[i], out, err);
			tamper(seqs[i], &len, old);
			free(old);
			cr_expect_eq(verify(&out, &err), 0,
			    "restored entry %llu, still broken: %s",
			    (unsigned long long)seqs[i], err);
		}
	}
}

/* ---------------------------------------------------------------- subject */

/* Does a report list (disclosures or withheld) hold an entry for mid? */
static json_t *
entry_for(json_t *list, const char *mid, const char *recipient)
{
	json_t	*e;
	size_t	 i;

	json_array_foreach(list, i, e)
		if (h_str(e, "mid") && !strcmp(h_str(e, "mid"), mid) &&
		    h_str(e, "recipient") &&
		    !strcmp(h_str(e, "recipient"), recipient))
			return e;
	return NULL;
}

H_TEST(audit, subject_report_lists_exactly_that_persons_disclosures)
{
	struct script	 s;
	json_t		*rep, *disc, *e, *mid;
	size_t		 i;

	env = h_env_new(NULL);
	scripted_run(&s);

	/* Written with a 2-digit year: the same person. */
	rep = h_audit_subject(env, "pnc=04/12345D");
	cr_expect_str_eq(h_str(rep, "subject.pnc"), H_PNC_A, "%s",
	    h_dump(rep));
	disc = h_get(rep, "disclosures");
	cr_expect_eq(json_array_size(disc), 3, "%s", h_dump(disc));
	json_array_foreach(s.a_mids, i, mid) {
		e = entry_for(disc, json_string_value(mid), H_CJIT);
		cr_assert_not_null(e, "disclosure %zu missing: %s", i,
		    h_dump(disc));
		cr_expect_str_eq(h_str(e, "sender"), H_CARAT);
		cr_expect_str_eq(h_str(e, "type"), "release-plan");
		cr_expect(h_set_eq(h_get(e, "categories"), H_BASIC), "%s",
		    h_dump(e));
		cr_expect_str_eq(h_str(e, "consent.cid"),
		    h_str(s.grant_a, "cid"), "%s", h_dump(e));
		cr_expect_eq(h_int(e, "consent.version"), 1);
		cr_expect_not_null(h_str(e, "time"));
	}
	cr_expect_eq(json_array_size(h_get(rep, "withheld")), 1, "%s",
	    h_dump(h_get(rep, "withheld")));
	e = entry_for(h_get(rep, "withheld"), json_string_value(s.a_withheld),
	    H_HOUSING);
	cr_assert_not_null(e, "%s", h_dump(h_get(rep, "withheld")));
	cr_expect_str_eq(h_str(e, "reason"), "no-consent");
	cr_expect_eq(json_array_size(h_get(rep, "consents")), 1, "%s",
	    h_dump(h_get(rep, "consents")));
	cr_expect_str_eq(h_str(rep, "consents.0.cid"), h_str(s.grant_a, "cid"));
	cr_expect_str_eq(h_str(rep, "consents.0.state"), "active");
	cr_expect_str_eq(h_str(rep, "consents.0.evidence.method"), "written");
	/* Nothing about anyone else. */
	json_array_foreach(s.b_mids, i, mid)
		cr_expect_null(entry_for(disc, json_string_value(mid), H_CJIT),
		    "another person's disclosure listed");

	rep = h_audit_subject(env, "pnc=" H_PNC_B);
	cr_expect_eq(json_array_size(h_get(rep, "disclosures")), 1, "%s",
	    h_dump(rep));
	cr_expect_str_eq(h_str(rep, "disclosures.0.mid"),
	    json_string_value(json_array_get(s.b_mids, 0)));
	cr_expect_eq(json_array_size(h_get(rep, "withheld")), 0);

	/* The purged one was never disclosed; its consent shows withdrawn. */
	rep = h_audit_subject(env, "pnc=" H_PNC_C);
	cr_expect_eq(json_array_size(h_get(rep, "disclosures")), 0, "%s",
	    h_dump(rep));
	cr_expect_str_eq(h_str(rep, "consents.0.state"), "withdrawn");
}

/* ---------------------------------------------------------------- stats */

H_TEST(audit, stats_while_running_shows_an_offline_agencys_queue)
{
	struct h_client	*carat, *cjit, *prob;
	json_t		*st, *m, *mids = NULL;
	size_t		 i;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, true);
	h_assert_op(h_grant(carat, H_CJIT "," H_PROBATION, H_BASIC, H_PNC_A),
	    "consent-recorded");
	prob = h_agent(env, H_PROBATION, true);
	h_assert_op(h_subscribe(prob, "release-plan", H_AREA), "subscribed");
	h_assert_op(h_hello(prob, false), "welcome");
	h_close(&prob);
	cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");
	mids = h_keep(json_array());
	for (i = 0; i < 7; i++) {
		m = h_release_plan_new(H_PNC_A, "Statsperson");
		h_assert_op(h_publish(carat, m), "accepted");
		json_array_append(mids, json_object_get(m, "mid"));
	}
	cr_assert_eq(json_array_size(h_collect(cjit, "deliver", 7,
	    H_TIMEOUT_MS, true)), 7);
	for (i = 0; i < 7; i++)
		cr_assert_not_null(h_receipt_for(carat, json_string_value(
		    json_array_get(mids, i)), H_CJIT, H_TIMEOUT_MS));

	st = h_stats(env);
	cr_expect_eq(h_queue_depth(st, H_PROBATION), 7, "%s", h_dump(st));
	cr_expect_geq(h_int(json_object_get(json_object_get(st, "queues"),
	    H_PROBATION), "oldest_age_s"), 0, "%s", h_dump(st));
	cr_expect_eq(h_queue_depth(st, H_CJIT), 0, "%s", h_dump(st));
	cr_expect(h_has_str(h_get(st, "connections"), H_CJIT), "%s",
	    h_dump(st));
	cr_expect(!h_has_str(h_get(st, "connections"), H_PROBATION), "%s",
	    h_dump(st));
	cr_expect_eq(h_int(st, "outcomes.accepted"), 7, "%s", h_dump(st));
	cr_expect_eq(h_int(st, "outcomes.delivered"), 7, "%s", h_dump(st));
	cr_expect_eq(h_int(st, "outcomes.withheld"), 0, "%s", h_dump(st));
	cr_expect_eq(h_int(st, "store.map_bytes"), 64LL << 20, "%s",
	    h_dump(st));
	cr_expect_gt(h_int(st, "store.used_bytes"), 0, "%s", h_dump(st));
	cr_expect_lt(h_int(st, "store.used_bytes"), 64LL << 20);
}

/* ---------------------------------------------------------------- backup */

H_TEST(audit, backup_taken_while_publishing_restores_every_accepted_message)
{
	struct h_client	*carat, *prob;
	json_t		*before, *during, *d, *mid;
	char		 dir[4200], nokey[4200], path[4300], *out, *err;
	size_t		 i, n, after = 0;
	pid_t		 pid;
	int		 st;

	env = h_env_new(NULL);
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_PROBATION, H_BASIC, H_PNC_A),
	    "consent-recorded");
	prob = h_agent(env, H_PROBATION, true);
	h_assert_op(h_subscribe(prob, "release-plan", H_AREA), "subscribed");
	h_assert_op(h_hello(prob, false), "welcome");
	h_close(&prob);

	before = h_keep(json_array());
	for (i = 0; i < 100; i++) {
		json_t *m = h_release_plan_new(H_PNC_A, "Backedup");

		cr_assert_eq(h_send(carat, m), 0);
		json_array_append(before, json_object_get(m, "mid"));
	}
	for (i = 0; i < 100; i++)
		h_assert_op(h_recv(carat, "accepted,error", 10000), "accepted");

	/*
	 * More, one at a time, for as long as the backup runs (and a few
	 * after): each is accepted before the next is sent.
	 */
	during = h_keep(json_array());
	snprintf(dir, sizeof(dir), "%s/backup", h_dir(env));
	pid = h_ccbroker_bg(env, "backup", "-c", h_conf(env), "--with-key",
	    dir, NULL);
	for (st = -1, i = 0; (st == -1 || i < after + 5) && i < 5000; i++) {
		json_t *m = h_release_plan_new(H_PNC_A, "Backedup");

		h_assert_op(h_publish(carat, m), "accepted");
		json_array_append(during, json_object_get(m, "mid"));
		if (st == -1 && (st = h_bg_wait(env, pid, 0, &out, &err)) != -1)
			after = i;
	}
	if (st == -1)
		st = h_bg_wait(env, pid, 30000, &out, &err);
	cr_assert_eq(st, 0, "backup: %s%s", out, err);

	/* Without --with-key the key stays behind. */
	snprintf(nokey, sizeof(nokey), "%s/backup-nokey", h_dir(env));
	st = h_ccbroker(env, &out, &err, "backup", "-c", h_conf(env), nokey,
	    NULL);
	cr_assert_eq(st, 0, "backup: %s%s", out, err);
	snprintf(path, sizeof(path), "%s/key", nokey);
	cr_expect_neq(access(path, F_OK), 0, "the key was copied unasked");
	snprintf(path, sizeof(path), "%s/key", dir);
	cr_expect_eq(access(path, F_OK), 0, "--with-key did not copy the key");

	/* A broker started on the backup has every message accepted before
	 * it, in order, then a prefix of the ones accepted during it. */
	h_close(&carat);
	cr_assert_eq(h_broker_stop(env), 0);
	h_set_data(env, dir);
	h_set_port(env, 0);
	cr_assert_eq(h_ccbroker(env, &out, &err, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "backup's audit: %s%s", out, err);
	h_broker_start(env);
	prob = h_agent(env, H_PROBATION, true);
	d = h_collect(prob, "deliver", 0, 20000, true);
	n = json_array_size(d);
	cr_assert_geq(n, 100, "only %zu delivered from the backup", n);
	for (i = 0; i < n; i++) {
		mid = i < 100 ? json_array_get(before, i) :
		    json_array_get(during, i - 100);
		cr_assert_str_eq(h_str(json_array_get(d, i), "mid"),
		    json_string_value(mid), "delivery %zu is not the message "
		    "accepted %zu-th", i, i);
	}
	cr_log_info("backup held %zu of the %zu accepted while it ran "
	    "(%zu before it ended)", n - 100, json_array_size(during), after);

	/* The copy without its key does not start. */
	h_broker_stop(env);
	h_set_data(env, nokey);
	st = h_broker_start_status(env);
	cr_expect_neq(st, 0, "a broker ran on a backup without its key");
}
