/*
 * test_audit_anchor.c - the audit trail anchored outside its file (issue
 * 18 items 4 and 9): `ccbroker audit head`, the head in the broker's log,
 * `audit verify --head/--heads` against a tail cut with the recorded head
 * rewritten and against an older store put back, and client text kept out
 * of the permanent trail.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>
#include <msgpack.h>
#include <openssl/evp.h>

#include "../lib/harness.h"
#include "cc_proto.h"
#include "store.h"

static struct h_env	*env;

static void
teardown(void)
{
	h_env_destroy(&env);
}

TestSuite(audit_anchor, .fini = teardown, .timeout = 180);

/* An exported head, as `audit head` printed it. */
struct head {
	long long	 seq;
	char		 hash[65];
	char		 line[256];	/* the line itself */
};

static char *
sha256_hex(const void *p, size_t n, char out[65])
{
	static const char	 digits[] = "0123456789abcdef";
	unsigned char		 md[32];
	unsigned int		 len = 0;
	size_t			 i;

	cr_assert_eq(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
	for (i = 0; i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = '\0';
	return out;
}

/* `ccbroker audit head`: exactly one JSON line, {seq, hash, time}. */
static struct head
audit_head(void)
{
	struct head	 h;
	char		*out, *err;
	json_t		*j;
	int		 st;

	memset(&h, 0, sizeof(h));
	st = h_ccbroker(env, &out, &err, "audit", "head", "-c", h_conf(env),
	    NULL);
	cr_assert_eq(st, 0, "audit head exited %d: %s%s", st, out, err);
	cr_assert(strlen(out) > 1 && strchr(out, '\n') == out + strlen(out) -
	    1, "not one line: [%s]", out);
	cr_assert_lt(strlen(out), sizeof(h.line));
	memcpy(h.line, out, strlen(out) - 1);
	j = h_json(h.line);
	cr_assert(json_is_integer(json_object_get(j, "seq")) &&
	    json_is_string(json_object_get(j, "hash")) &&
	    json_is_string(json_object_get(j, "time")) &&
	    json_object_size(j) == 3, "%s", out);
	h.seq = h_int(j, "seq");
	cr_assert_lt(strlen(h_str(j, "hash")), sizeof(h.hash));
	strcpy(h.hash, h_str(j, "hash"));
	cr_assert(h.seq == 0 ? h.hash[0] == '\0' : strlen(h.hash) == 64,
	    "%s", out);
	return h;
}

static int
verify_with(char **out, char **err, const char *a1, const char *a2,
    const char *a3, const char *a4)
{
	return h_ccbroker(env, out, err, "audit", "verify", "-c", h_conf(env),
	    a1, a2, a3, a4, NULL);
}

static const char *
seq_hash(const struct head *h)
{
	char	*s;

	cr_assert_not_null(s = malloc(96));
	snprintf(s, 96, "%lld:%s", h->seq, h->hash);
	return h_keep_str(s);
}

/* Does the JSON array's i-th element hold the string s? */
static bool
str_at(json_t *a, size_t i, const char *s)
{
	const char	*v = json_string_value(json_array_get(a, i));

	return v != NULL && strcmp(v, s) == 0;
}

/* ---------------------------------------------------------------- LMDB */

static void
lmdb_open(MDB_env **e, MDB_txn **txn, MDB_dbi *audit, MDB_dbi *meta,
    bool write)
{
	int	rc;

	cr_assert_eq(mdb_env_create(e), 0);
	cr_assert_eq(mdb_env_set_maxdbs(*e, 16), 0);
	cr_assert_eq(mdb_env_set_mapsize(*e, (size_t)64 << 20), 0);
	rc = mdb_env_open(*e, h_data(env), write ? 0 : MDB_RDONLY, 0600);
	cr_assert_eq(rc, 0, "mdb_env_open: %s", mdb_strerror(rc));
	cr_assert_eq(mdb_txn_begin(*e, NULL, write ? 0 : MDB_RDONLY, txn), 0);
	rc = mdb_dbi_open(*txn, "audit", 0, audit);
	cr_assert_eq(rc, 0, "no audit database: %s", mdb_strerror(rc));
	rc = mdb_dbi_open(*txn, "meta", 0, meta);
	cr_assert_eq(rc, 0, "no meta database: %s", mdb_strerror(rc));
}

static void
be64(uint8_t key[8], uint64_t v)
{
	int	i;

	for (i = 0; i < 8; i++)
		key[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* Entry seq's bytes (malloc'd), or NULL when there is none. */
static void *
entry_bytes(uint64_t seq, size_t *len)
{
	MDB_env		*e;
	MDB_txn		*txn;
	MDB_dbi		 audit, meta;
	MDB_val		 k, v;
	uint8_t		 key[8];
	void		*copy = NULL;

	lmdb_open(&e, &txn, &audit, &meta, false);
	be64(key, seq);
	k.mv_size = 8;
	k.mv_data = key;
	if (mdb_get(txn, audit, &k, &v) == 0) {
		cr_assert_not_null(copy = malloc(v.mv_size));
		memcpy(copy, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	mdb_txn_abort(txn);
	mdb_env_close(e);
	return copy;
}

/*
 * What an attacker with the store in hand does (the broker stopped):
 * delete every entry after `keep` and rewrite the recorded head, 8-byte
 * big-endian seq and the SHA-256 of entry keep, to match.  Without the
 * data directory's key the rewritten head fails its integrity tag; with
 * it (root on the broker's host), the head and the summary of the store
 * are written through the store as the broker would, and only a head
 * exported off the host can tell.
 */
static void
cut_tail_key(uint64_t keep, bool with_key)
{
	MDB_env		*e;
	MDB_txn		*txn;
	MDB_dbi		 audit, meta;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint8_t		 key[8], head[40];
	unsigned int	 mdlen;
	size_t		 cut = 0;
	int		 rc;

	lmdb_open(&e, &txn, &audit, &meta, true);
	cr_assert_eq(mdb_cursor_open(txn, audit, &cur), 0);
	be64(key, keep + 1);
	k.mv_size = 8;
	k.mv_data = key;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		cr_assert_eq(mdb_cursor_del(cur, 0), 0);
		cut++;
	}
	cr_assert_eq(rc, MDB_NOTFOUND, "%s", mdb_strerror(rc));
	cr_assert_gt(cut, 0, "nothing after entry %llu to cut",
	    (unsigned long long)keep);
	mdb_cursor_close(cur);
	be64(key, keep);
	k.mv_size = 8;
	k.mv_data = key;
	cr_assert_eq(mdb_get(txn, audit, &k, &v), 0);
	be64(head, keep);
	cr_assert_eq(EVP_Digest(v.mv_data, v.mv_size, head + 8, &mdlen,
	    EVP_sha256(), NULL), 1);
	k.mv_size = strlen("audit-head");
	k.mv_data = "audit-head";
	v.mv_size = sizeof(head);
	v.mv_data = head;
	if (!with_key)
		cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(e);
	if (with_key) {
		struct store		*st;
		struct store_txn	*t;
		char			 err[256];

		cr_assert_eq(store_open(&st, h_data(env), 64, false, err,
		    sizeof(err)), 0, "%s", err);
		cr_assert_eq(store_begin(st, true, &t), 0);
		cr_assert_eq(store_audit_head_put(st, t, head, sizeof(head)),
		    0);
		cr_assert_eq(store_summary_put(st, t), 0);
		cr_assert_eq(store_commit(t), 0);
		store_close(&st);
	}
}

static void
cut_tail(uint64_t keep)
{
	cut_tail_key(keep, true);
}

/* A copy of the stopped broker's data.mdb beside it, and back. */
static void
copy_store(const char *name, bool back)
{
	char	cmd[4096];

	snprintf(cmd, sizeof(cmd), back ? "cp '%s/%s' '%s/data.mdb'" :
	    "cp '%s/data.mdb' '%s/%s'", h_dir(env), name, h_data(env));
	if (!back)
		snprintf(cmd, sizeof(cmd), "cp '%s/data.mdb' '%s/%s'",
		    h_data(env), h_dir(env), name);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void
backup_to(const char *name)
{
	copy_store(name, false);
}

static void
restore_from(const char *name)
{
	copy_store(name, true);
}

/* Every entry's bytes, for a look at what the trail holds. */
static json_t *
rejected_ids(void)
{
	MDB_env		*e;
	MDB_txn		*txn;
	MDB_dbi		 audit, meta;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	json_t		*ids = h_keep(json_array());
	int		 rc;

	lmdb_open(&e, &txn, &audit, &meta, false);
	cr_assert_eq(mdb_cursor_open(txn, audit, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		msgpack_unpacked	 up;
		size_t			 off = 0;
		uint32_t		 i;
		const msgpack_object	*id = NULL;
		bool			 rejected = false;

		msgpack_unpacked_init(&up);
		cr_assert_eq(msgpack_unpack_next(&up, v.mv_data, v.mv_size,
		    &off), MSGPACK_UNPACK_SUCCESS);
		cr_assert_eq(up.data.type, MSGPACK_OBJECT_MAP);
		for (i = 0; i < up.data.via.map.size; i++) {
			const msgpack_object_kv *kv = &up.data.via.map.ptr[i];
			const msgpack_object_str *ks = &kv->key.via.str;

			if (ks->size == 2 && !memcmp(ks->ptr, "ev", 2) &&
			    kv->val.type == MSGPACK_OBJECT_STR &&
			    kv->val.via.str.size == 14 &&
			    !memcmp(kv->val.via.str.ptr, "input-rejected", 14))
				rejected = true;
			if (ks->size == 2 && !memcmp(ks->ptr, "id", 2))
				id = &kv->val;
		}
		if (rejected)
			json_array_append_new(ids, id != NULL &&
			    id->type == MSGPACK_OBJECT_STR ?
			    json_stringn(id->via.str.ptr, id->via.str.size) :
			    json_null());
		msgpack_unpacked_destroy(&up);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(e);
	return ids;
}

/* ---------------------------------------------------------------- traffic */

/* A grant and n release plans from CARAT, delivered to CJIT and acked:
 * 2n + 1 audit entries. */
static void
traffic(int n)
{
	struct h_client	*carat, *cjit;
	json_t		*m;
	int		 i;

	carat = h_agent(env, H_CARAT, false);
	cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	for (i = 0; i < n; i++) {
		m = h_release_plan_new(H_PNC_A, "Anchored");
		json_object_set(m, "to", h_csv(H_CJIT));
		h_assert_op(h_publish(carat, m), "accepted");
	}
	cr_assert_eq(json_array_size(h_collect(cjit, "deliver", (size_t)n,
	    H_TIMEOUT_MS, true)), (size_t)n);
	/* The acks are in once the next request is answered. */
	h_assert_op(h_hello(cjit, true), "welcome");
	h_close(&carat);
	h_close(&cjit);
}

/* ---------------------------------------------------------------- head */

H_TEST(audit_anchor, head_is_the_newest_entrys_seq_hash_and_time)
{
	struct h_env_opts	 o = { .no_start = true };
	struct head		 h, h0;
	char			 hex[65], at[32];
	void			*bytes;
	size_t			 len;
	msgpack_unpacked	 up;
	size_t			 off = 0;
	uint32_t		 i;
	int64_t			 t = -1;

	env = h_env_new(&o);
	h0 = audit_head();
	cr_expect_str_eq(h0.line, "{\"seq\":0,\"hash\":\"\",\"time\":\"\"}");

	h_broker_start(env);
	traffic(3);
	h = audit_head();		/* beside the running broker */
	cr_assert_geq(h.seq, 7, "%s", h.line);
	h_broker_stop(env);

	bytes = entry_bytes((uint64_t)h.seq, &len);
	cr_assert_not_null(bytes, "entry %lld missing", h.seq);
	cr_expect_str_eq(h.hash, sha256_hex(bytes, len, hex),
	    "the head's hash is not the SHA-256 of entry %lld", h.seq);
	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, bytes, len, &off),
	    MSGPACK_UNPACK_SUCCESS);
	for (i = 0; i < up.data.via.map.size; i++)
		if (up.data.via.map.ptr[i].key.via.str.size == 1 &&
		    up.data.via.map.ptr[i].key.via.str.ptr[0] == 't')
			t = up.data.via.map.ptr[i].val.via.i64;
	msgpack_unpacked_destroy(&up);
	free(bytes);
	cc_time_format(t, at);
	cr_expect_str_eq(h_str(h_json(h.line), "time"), at, "%s", h.line);
	cr_expect_null(entry_bytes((uint64_t)h.seq + 1, &len),
	    "the head is not the newest entry");
	/* Nothing happened since: the same head. */
	cr_expect_str_eq(audit_head().line, h.line);
}

/* ---------------------------------------------------------------- cut */

H_TEST(audit_anchor, exported_head_catches_a_tail_cut_that_verify_alone_misses)
{
	struct head	 early, h;
	char		*out, *err, want[160];
	int		 st;

	env = h_env_new(NULL);
	traffic(2);
	early = audit_head();
	traffic(3);
	h = audit_head();
	cr_assert_gt(h.seq, early.seq + 3);
	h_broker_stop(env);

	/* Without the key, the cut is caught by the store's own checks. */
	backup_to("before-cut");
	cut_tail_key((uint64_t)h.seq - 3, false);
	st = verify_with(&out, &err, NULL, NULL, NULL, NULL);
	cr_expect_eq(st, 1, "%s%s", out, err);
	cr_expect(strstr(err, "fails its integrity check") != NULL, "%s%s",
	    out, err);
	restore_from("before-cut");

	cut_tail((uint64_t)h.seq - 3);
	/* The weakness: with the key, the chain alone is consistent after
	 * the cut. */
	st = verify_with(&out, &err, NULL, NULL, NULL, NULL);
	cr_expect_eq(st, 0, "%s%s", out, err);
	snprintf(want, sizeof(want), "audit intact: %lld entries",
	    h.seq - 3);
	cr_expect(strstr(out, want) != NULL, "%s%s", out, err);

	/* The head exported before the cut catches it. */
	st = verify_with(&out, &err, "--head", seq_hash(&h), NULL, NULL);
	cr_expect_eq(st, 1, "%s%s", out, err);
	snprintf(want, sizeof(want), "audit broken at entry %lld: missing "
	    "(the chain ends at %lld): the trail was cut or an older store "
	    "restored", h.seq, h.seq - 3);
	cr_expect(strstr(err, want) != NULL, "want [%s], got %s%s", want,
	    out, err);
	/* A head from before the cut still matches. */
	st = verify_with(&out, &err, "--head", seq_hash(&early), NULL, NULL);
	cr_expect_eq(st, 0, "%s%s", out, err);
	cr_expect(strstr(out, "1 exported head match") != NULL, "%s", out);
	/* Both: the missing one is named. */
	st = verify_with(&out, &err, "--head", seq_hash(&early), "--head",
	    seq_hash(&h));
	cr_expect_eq(st, 1, "%s%s", out, err);
	snprintf(want, sizeof(want), "audit broken at entry %lld: missing",
	    h.seq);
	cr_expect(strstr(err, want) != NULL, "%s%s", out, err);
}

/* ---------------------------------------------------------------- restore */

static void
copy_file(const char *from, const char *to)
{
	FILE	*in, *out;
	char	 buf[65536];
	size_t	 n;

	cr_assert_not_null(in = fopen(from, "rb"), "%s: %s", from,
	    strerror(errno));
	cr_assert_not_null(out = fopen(to, "wb"), "%s: %s", to,
	    strerror(errno));
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		cr_assert_eq(fwrite(buf, 1, n, out), n);
	cr_assert(!ferror(in));
	fclose(in);
	cr_assert_eq(fclose(out), 0);
}

H_TEST(audit_anchor, exported_head_catches_an_older_store_put_back)
{
	struct head	 early, at_backup, h;
	char		 dir[4200], from[4300], to[4300], want[200];
	char		*out, *err;
	int		 st;

	env = h_env_new(NULL);
	traffic(1);
	early = audit_head();
	traffic(1);
	at_backup = audit_head();
	snprintf(dir, sizeof(dir), "%s/older", h_dir(env));
	st = h_ccbroker(env, &out, &err, "backup", "-c", h_conf(env), dir,
	    NULL);
	cr_assert_eq(st, 0, "backup: %s%s", out, err);
	traffic(3);
	h = audit_head();
	cr_assert_gt(h.seq, at_backup.seq);
	h_broker_stop(env);

	/* The older copy put back: whole, and silent on its own. */
	snprintf(from, sizeof(from), "%s/data.mdb", dir);
	snprintf(to, sizeof(to), "%s/data.mdb", h_data(env));
	copy_file(from, to);
	st = verify_with(&out, &err, NULL, NULL, NULL, NULL);
	cr_expect_eq(st, 0, "%s%s", out, err);
	st = verify_with(&out, &err, "--head", seq_hash(&h), NULL, NULL);
	cr_expect_eq(st, 1, "%s%s", out, err);
	snprintf(want, sizeof(want), "audit broken at entry %lld: missing "
	    "(the chain ends at %lld)", h.seq, at_backup.seq);
	cr_expect(strstr(err, want) != NULL, "want [%s], got %s%s", want,
	    out, err);

	/* And once the broker has written past the exported head on it. */
	h_set_port(env, 0);
	h_broker_start(env);
	traffic(4);
	cr_assert_gt(audit_head().seq, h.seq);
	st = verify_with(&out, &err, "--head", seq_hash(&early), "--head",
	    seq_hash(&h));
	cr_expect_eq(st, 1, "%s%s", out, err);
	snprintf(want, sizeof(want), "audit broken at entry %lld: entry %lld "
	    "differs from the exported head: entries %lld to %lld were "
	    "rewritten or an older store restored (entry %lld matches its "
	    "exported head)", h.seq, h.seq, early.seq + 1, h.seq, early.seq);
	cr_expect(strstr(err, want) != NULL, "want [%s], got %s%s", want,
	    out, err);
}

/* ---------------------------------------------------------------- file */

static const char *
write_file(const char *name, const char *text)
{
	char	*path;
	FILE	*f;

	cr_assert_not_null(path = malloc(4300));
	snprintf(path, 4300, "%s/%s", h_dir(env), name);
	cr_assert_not_null(f = fopen(path, "w"));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	return h_keep_str(path);
}

/* The last "audit head seq=N hash=H" line of the broker's log. */
static const char *
last_log_head(void)
{
	const char	*log = h_log(env), *p, *last = NULL;
	char		*line;
	size_t		 n;

	for (p = log; (p = strstr(p, "audit head seq=")) != NULL; p++)
		last = p;
	cr_assert_not_null(last, "no audit head in the log:\n%s", log);
	while (last > log && last[-1] != '\n')
		last--;
	n = strcspn(last, "\n");
	cr_assert_not_null(line = strndup(last, n));
	return h_keep_str(line);
}

H_TEST(audit_anchor, heads_file_checks_every_head_it_holds)
{
	struct head	 h1, h2, h3, bad;
	char		 text[2048], want[200], *out, *err;
	const char	*file, *logline;
	int		 st;

	env = h_env_new(NULL);
	traffic(1);
	h1 = audit_head();
	traffic(1);
	h2 = audit_head();
	traffic(2);
	h3 = audit_head();
	h_broker_stop(env);
	logline = last_log_head();	/* the head it stopped at */

	/* As collected off the machine: every form, comments, blanks. */
	snprintf(text, sizeof(text), "# heads of ccbroker, collected hourly\n"
	    "\n%s\n   %s\n%lld:%s\n\n# from the journal\n%s\n", h1.line,
	    h2.line, h3.seq, h3.hash, logline);
	file = write_file("heads", text);
	st = verify_with(&out, &err, "--heads", file, NULL, NULL);
	cr_expect_eq(st, 0, "%s%s", out, err);
	cr_expect(strstr(out, "4 exported heads match") != NULL, "%s%s", out,
	    err);

	/* One head that differs is named, with the last that matches. */
	bad = h2;
	bad.hash[10] = bad.hash[10] == '0' ? '1' : '0';
	snprintf(text, sizeof(text), "%s\n%lld:%s\n", h1.line, bad.seq,
	    bad.hash);
	st = verify_with(&out, &err, "--heads", write_file("bad", text),
	    NULL, NULL);
	cr_expect_eq(st, 1, "%s%s", out, err);
	snprintf(want, sizeof(want), "audit broken at entry %lld: entry %lld "
	    "differs from the exported head", h2.seq, h2.seq);
	cr_expect(strstr(err, want) != NULL, "%s%s", out, err);

	/* Cut between h2 and h3: the file names h3's entry missing. */
	cut_tail((uint64_t)h2.seq);
	st = verify_with(&out, &err, "--heads", file, NULL, NULL);
	cr_expect_eq(st, 1, "%s%s", out, err);
	snprintf(want, sizeof(want), "audit broken at entry %lld: missing "
	    "(the chain ends at %lld)", h3.seq, h2.seq);
	cr_expect(strstr(err, want) != NULL, "%s%s", out, err);
}

/* A head given wrongly is a usage error (2), never "broken" (1). */
H_TEST(audit_anchor, bad_head_syntax_is_a_usage_error)
{
	static const struct {
		const char	*head;
		const char	*says;
	} rows[] = {
		{ "12", "want SEQ:HASH" },
		{ "12:abc", "HASH must be 64 hex digits" },
		{ "x:" "0123456789abcdef0123456789abcdef"
		  "0123456789abcdef0123456789abcdef", "SEQ must be a number" },
		{ "-1:" "0123456789abcdef0123456789abcdef"
		  "0123456789abcdef0123456789abcdef", "SEQ must be a number" },
		{ "12:" "0123456789abcdef0123456789abcdef"
		  "0123456789abcdef0123456789abcdeg", "64 hex digits" },
		{ "0:ab", "seq 0 is the empty trail" },
		{ "{\"seq\": 3}", "want {\"seq\": N, \"hash\": H}" },
	};
	char		*out, *err;
	const char	*file;
	size_t		 i;
	int		 st;

	env = h_env_new(NULL);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		st = verify_with(&out, &err, "--head", rows[i].head, NULL,
		    NULL);
		cr_expect_eq(st, 2, "--head %s: exited %d: %s%s", rows[i].head,
		    st, out, err);
		cr_expect(strstr(err, rows[i].says) != NULL,
		    "--head %s: want [%s], got %s", rows[i].head, rows[i].says,
		    err);
	}
	file = write_file("heads", "# ok\n1:" "0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef\n\nnot a head\n");
	st = verify_with(&out, &err, "--heads", file, NULL, NULL);
	cr_expect_eq(st, 2, "%s%s", out, err);
	cr_expect(strstr(err, "heads:4: want SEQ:HASH") != NULL, "%s", err);
	st = verify_with(&out, &err, "--heads", "/nonexistent/heads", NULL,
	    NULL);
	cr_expect_eq(st, 2, "%s%s", out, err);
	cr_expect(strstr(err, "/nonexistent/heads") != NULL, "%s", err);
	st = h_ccbroker_in(env, "pnc=" H_PNC_A "\n", &out, &err, "audit",
	    "subject", "-c", h_conf(env), "--head", "1:00", NULL);
	cr_expect_eq(st, 2, "%s%s", out, err);
}

/* ---------------------------------------------------------------- log */

H_TEST(audit_anchor, broker_logs_the_head_at_start_and_stop)
{
	struct head	 h;
	char		 want[128];

	env = h_env_new(NULL);
	cr_assert(h_log_wait(env, H_TIMEOUT_MS, "audit head seq=0 hash=-",
	    NULL), "no head at start:\n%s", h_log(env));
	traffic(2);
	cr_assert_eq(h_broker_stop(env), 0);
	h = audit_head();
	snprintf(want, sizeof(want), "audit head seq=%lld hash=%s", h.seq,
	    h.hash);
	cr_expect(strstr(last_log_head(), want) != NULL,
	    "stopped at %s, logged %s", h.line, last_log_head());
	/* Start and stop; a run this short logs no head in between. */
	cr_expect_eq(h_log_count(env, "audit head seq="), 2, "%s", h_log(env));

	/* Started again: the head it starts from. */
	h_set_port(env, 0);
	h_broker_start(env);
	cr_assert(h_log_wait(env, H_TIMEOUT_MS, want, NULL), "%s", h_log(env));
	cr_expect_eq(h_log_count(env, want), 2, "%s", h_log(env));
}

H_TEST(audit_anchor, broker_logs_the_head_within_a_minute_while_it_moves)
{
	struct head	 h;
	char		 want[128];
	int		 waited;

	/* Every 3 s here, so that the test does not wait a minute. */
	env = h_env_new(&(struct h_env_opts){ .extra_conf =
	    "[broker]\naudit_head_interval = 3\n" });
	cr_assert(h_log_wait(env, H_TIMEOUT_MS, "audit head seq=0", NULL));
	traffic(1);
	h = audit_head();
	snprintf(want, sizeof(want), "audit head seq=%lld hash=%s", h.seq,
	    h.hash);
	/* Idle after it moved: logged within the minute after start. */
	for (waited = 0; waited < 6000 && !h_log_has(env, want);
	    waited += 100)
		h_msleep(100);
	cr_expect(h_log_has(env, want), "not logged in 6 s:\n%s", h_log(env));
	cr_expect_geq(waited, 1500, "logged %d ms after start: more often "
	    "than every 3 s", waited);
	/* Not moving: not logged again. */
	h_msleep(1500);
	cr_expect_eq(h_log_count(env, "audit head seq="), 2, "%s", h_log(env));
}

/* ---------------------------------------------------------------- item 9 */

static bool
file_has(const char *path, const char *needle)
{
	FILE	*f;
	char	*buf;
	size_t	 n, i, cap = 0;
	long	 size;
	bool	 found;

	cr_assert_not_null(f = fopen(path, "rb"), "%s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	rewind(f);
	cap = (size_t)size;
	cr_assert_not_null(buf = malloc(cap + 1));
	n = fread(buf, 1, cap, f);
	fclose(f);
	found = false;
	for (i = 0; !found && i + strlen(needle) <= n; i++)
		found = memcmp(buf + i, needle, strlen(needle)) == 0;
	free(buf);
	return found;
}

H_TEST(audit_anchor, rejected_input_id_goes_into_the_audit_as_a_hash)
{
	static const char *const mids[] = {
		"Jane.Smith.1980-01-01",	/* once written as given */
		"Jane Smith 1980-01-01",	/* not echoed: the op is */
	};
	struct h_client	*carat;
	json_t		*m, *e, *ids, *res;
	char		 uuid[37], hex[65], want[80], path[4300];
	const char	*re;
	char		*out, *err;
	size_t		 i;

	env = h_env_new(NULL);
	res = h_keep(json_array());
	carat = h_agent(env, H_CARAT, false);
	for (i = 0; i < sizeof(mids) / sizeof(mids[0]); i++) {
		m = h_release_plan_new(H_PNC_A, "Rejected");
		json_object_set_new(m, "mid", json_string(mids[i]));
		e = h_publish(carat, m);
		h_assert_error(e, "invalid-field", "mid");
		cr_assert_not_null(re = h_str(e, "re"), "%s", h_dump(e));
		json_array_append_new(res, json_string(re));
	}
	/* A well-formed mid of a request rejected for another reason. */
	m = h_release_plan_new(H_PNC_A, "Rejected");
	json_object_set_new(m, "mid", json_string(h_uuid(uuid)));
	json_object_del(m, "purpose");
	h_assert_error(h_publish(carat, m), "missing-field", "purpose");
	h_close(&carat);
	cr_assert_eq(h_broker_stop(env), 0);

	/* Nothing of what the client wrote anywhere in the store. */
	snprintf(path, sizeof(path), "%s/data.mdb", h_data(env));
	cr_expect(!file_has(path, "Smith"), "the name is in data.mdb");
	cr_expect(!file_has(path, "1980-01-01"), "the date is in data.mdb");

	ids = rejected_ids();
	cr_assert_eq(json_array_size(ids), 3, "%s", h_dump(ids));
	for (i = 0; i < 2; i++) {
		re = json_string_value(json_array_get(res, i));
		snprintf(want, sizeof(want), "sha256:%s",
		    sha256_hex(re, strlen(re), hex));
		cr_expect(str_at(ids, i, want), "mid %s (re %s): want %s, "
		    "got %s", mids[i], re, want, h_dump(ids));
	}
	cr_expect(str_at(ids, 2, uuid), "want %s, got %s", uuid,
	    h_dump(ids));
	cr_expect_eq(verify_with(&out, &err, NULL, NULL, NULL, NULL), 0,
	    "%s%s", out, err);
}
