/*
 * test_store.c - broker/store*.c over a real LMDB store in a temporary
 * directory, one test group per group of store.h: transactions, errors,
 * the dseq, metadata, consents and their subject index, messages and their
 * delivery states, expiry, queues, backup and the checks of store_open.
 *
 * The counts that once had a ceiling are tested past it: 10,000 consents
 * of one subject, 1,000 recipients of one message, and more than
 * STORE_CHUNK messages of one subject, so that the chunked re-seek of the
 * iterators whose callback may write is exercised.
 *
 * Damage is done as a flipped bit or a bad sector would do it: through
 * LMDB itself, with the store closed (one process must not open an
 * environment twice), as test_decide.c does.  store_impl.h is included
 * for the layout's names (STORE_CHUNK, the meta keys) only.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "store_impl.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define MAP_MB		128

#define PNC_A	"2004/0012345D"
#define PNC_B	"1999/7654321V"
#define PNC_C	"2010/0000001Z"
#define NOMS_X	"A1234BC"
#define NOMS_Y	"B9876ZZ"
#define CRN_R	"X123456"

/* The first byte of a test's record ids, by kind. */
#define K_CONSENT	0xc0
#define K_OTHER		0xc1
#define K_MSG		0x6f

/* NUL-separated recipient ids, as the broker stores them. */
static const char	recip_ids[] = "cjit.leeds\0probation.leeds";

/* A subject by its identifiers (NULL: absent). */
struct sspec {
	const char	*pnc, *noms, *crn;
};

static char		 tmp[64];	/* the mkdtemp directory */
static char		 dir[96];	/* tmp/data: the store */
static struct store	*st;

struct raw;
struct tally;
struct rwalk;

static void	setup(void);
static void	teardown(void);
static void	reopen(void);
static struct store_txn *begin(bool);
static void	commit(struct store_txn *);
static void	id_of(uint8_t[16], uint8_t, uint32_t);
static uint32_t	num_of(const uint8_t[16]);
static void	subject(const struct sspec *, struct subject_ps *);
static void	raw_open(struct raw *, const char *);
static void	raw_close(struct raw *);
static void	raw_put(const char *, const void *, size_t, const void *,
		    size_t);
static void	raw_del(const char *, const void *, size_t);
static void	raw_flip_or_copy(const char *, const void *, size_t, size_t,
		    const void *);
static uint64_t	next_dseq(struct store_txn *);
static int	name_add(const char *, void *);
static int	sub_add(const char *, const struct sub *, void *);
static void	put_consent(struct store_txn *, uint8_t, uint32_t,
		    const struct subject_ps *);
static void	tally_init(struct tally *, uint8_t, size_t);
static int	tally_id(struct tally *, const uint8_t[16]);
static size_t	tally_once(const struct tally *, const char *);
static int	tally_consent(const struct consent *, void *);
static int	tally_mid(const uint8_t[16], void *);
static void	msg_hdr_of(struct msg_hdr *, const struct subject_ps *);
static void	frame_fill(uint8_t *, size_t);
static int	release_given(const uint8_t[16], void *);
static void	recipients(struct store_txn *, uint32_t, int, uint64_t);
static void	fanout(void);
static int	rstate_seen(const char *, const struct rstate *, void *);
static int	rstate_count(const char *, const struct rstate *, void *);
static int	queued_seen(const struct queued *, void *);
static int	qlist_add(const char *, uint64_t, const struct qent *,
		    void *);
static void	copy_file(const char *, const char *, mode_t);

/* ---- the fixture ---- */

static void
setup(void)
{
	char	err[256];

	(void)snprintf(tmp, sizeof(tmp), "/tmp/cctest-store-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp), "mkdtemp: %s", strerror(errno));
	(void)snprintf(dir, sizeof(dir), "%s/data", tmp);
	cr_assert_eq(store_init(dir, err, sizeof(err)), 0, "%s", err);
	reopen();
}

static void
teardown(void)
{
	char	cmd[128];

	store_close(&st);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
}

/* Close (when open) and open the store again, as a restart would. */
static void
reopen(void)
{
	char	err[256];

	store_close(&st);
	cr_assert_eq(store_open(&st, dir, MAP_MB, false, err, sizeof(err)),
	    0, "%s", err);
}

static struct store_txn *
begin(bool write)
{
	struct store_txn	*t;

	cr_assert_eq(store_begin(st, write, &t), 0);
	return t;
}

static void
commit(struct store_txn *t)
{
	cr_assert_eq(store_commit(t), 0);
}

/* A record id: kind, zeros, n big-endian (ids sort in numeric order). */
static void
id_of(uint8_t id[16], uint8_t kind, uint32_t n)
{
	memset(id, 0, 16);
	id[0] = kind;
	id[12] = (uint8_t)(n >> 24);
	id[13] = (uint8_t)(n >> 16);
	id[14] = (uint8_t)(n >> 8);
	id[15] = (uint8_t)n;
}

static uint32_t
num_of(const uint8_t id[16])
{
	return (uint32_t)id[12] << 24 | (uint32_t)id[13] << 16 |
	    (uint32_t)id[14] << 8 | id[15];
}

static void
subject(const struct sspec *s, struct subject_ps *ps)
{
	struct cc_subject	cs;

	memset(&cs, 0, sizeof(cs));
	if (s->pnc != NULL)
		(void)snprintf(cs.pnc, sizeof(cs.pnc), "%s", s->pnc);
	if (s->noms != NULL)
		(void)snprintf(cs.noms, sizeof(cs.noms), "%s", s->noms);
	if (s->crn != NULL)
		(void)snprintf(cs.crn, sizeof(cs.crn), "%s", s->crn);
	cr_assert_eq(store_subject_ps(st, &cs, ps), 0);
}

/* ---- damage behind the store's back (the store is closed; reopen()
 * after) ---- */

struct raw {
	MDB_env	*env;
	MDB_txn	*txn;
	MDB_dbi	 dbi;
};

static void
raw_open(struct raw *r, const char *db)
{
	store_close(&st);
	cr_assert_eq(mdb_env_create(&r->env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(r->env, 16), 0);
	cr_assert_eq(mdb_env_set_mapsize(r->env, (size_t)MAP_MB << 20), 0);
	cr_assert_eq(mdb_env_open(r->env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
	cr_assert_eq(mdb_dbi_open(r->txn, db, 0, &r->dbi), 0, "%s", db);
}

static void
raw_close(struct raw *r)
{
	cr_assert_eq(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
}

static void
raw_put(const char *db, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct raw	r;
	MDB_val		k = { klen, (void *)key }, v = { vlen, (void *)val };

	raw_open(&r, db);
	cr_assert_eq(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_close(&r);
}

static void
raw_del(const char *db, const void *key, size_t klen)
{
	struct raw	r;
	MDB_val		k = { klen, (void *)key };

	raw_open(&r, db);
	cr_assert_eq(mdb_del(r.txn, r.dbi, &k, NULL), 0);
	raw_close(&r);
}

/* Flip the low bit of byte `at` of a value, or copy the value under the
 * key `to` (at is then ignored). */
static void
raw_flip_or_copy(const char *db, const void *key, size_t klen, size_t at,
    const void *to)
{
	struct raw	 r;
	MDB_val		 k = { klen, (void *)key }, v;
	uint8_t		*buf;

	raw_open(&r, db);
	cr_assert_eq(mdb_get(r.txn, r.dbi, &k, &v), 0);
	cr_assert_not_null(buf = malloc(v.mv_size));
	memcpy(buf, v.mv_data, v.mv_size);
	if (to != NULL)
		k.mv_data = (void *)to;
	else {
		cr_assert_lt(at, v.mv_size);
		buf[at] ^= 1;
	}
	v.mv_data = buf;
	cr_assert_eq(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_close(&r);
	free(buf);
}

/* ---- transactions and errors ---- */

/*
 * A parent transaction writes the counter `accepted` = 1; a nested one,
 * when there is one, writes 2 and a queue entry.  After a restart the
 * store holds what committed all the way up, and nothing else.
 */
Test(store, transactions_commit_abort_and_nest)
{
	enum nest { NONE, NCOMMIT, NABORT };
	static const struct {
		const char	*name;
		enum nest	 nested;
		bool		 parent_commits;
		uint64_t	 in_parent;	/* after the nested one ends */
		uint64_t	 after;		/* after a restart */
	} rows[] = {
		{ "commit persists across a restart", NONE, true, 1, 1 },
		{ "abort leaves nothing", NONE, false, 1, 0 },
		{ "nested commit becomes the parent's", NCOMMIT, true, 2, 2 },
		{ "nested abort leaves the parent's", NABORT, true, 1, 1 },
		{ "nested commit undone with its parent", NCOMMIT, false, 2,
		  0 },
		{ "nested abort then parent abort", NABORT, false, 1, 0 },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++) {
		struct store_counters	 c = { 0 };
		struct store_txn	*t, *n;
		struct qent		 q = { 0 }, got;

		setup();
		t = begin(true);
		c.accepted = 1;
		cr_assert_eq(store_counters_put(st, t, &c), 0);
		if (rows[i].nested != NONE) {
			cr_assert_eq(store_begin_nested(st, t, &n), 0);
			c.accepted = 2;
			cr_assert_eq(store_counters_put(st, n, &c), 0);
			cr_assert_eq(store_queue_put(st, n, "cjit.leeds", 7,
			    &q), 0);
			if (rows[i].nested == NCOMMIT)
				commit(n);
			else
				store_abort(n);
		}
		cr_assert_eq(store_counters_get(st, t, &c), 0);
		cr_expect_eq(c.accepted, rows[i].in_parent, "%s: in parent "
		    "%llu", rows[i].name, (unsigned long long)c.accepted);
		cr_expect_eq(store_queue_get(st, t, "cjit.leeds", 7, &got),
		    rows[i].in_parent == 2 ? 0 : STORE_NOTFOUND, "%s",
		    rows[i].name);
		if (rows[i].parent_commits)
			commit(t);
		else
			store_abort(t);

		reopen();
		t = begin(false);
		cr_assert_eq(store_counters_get(st, t, &c), 0);
		cr_expect_eq(c.accepted, rows[i].after, "%s: after restart "
		    "%llu", rows[i].name, (unsigned long long)c.accepted);
		cr_expect_eq(store_queue_get(st, t, "cjit.leeds", 7, &got),
		    rows[i].after == 2 ? 0 : STORE_NOTFOUND, "%s",
		    rows[i].name);
		store_abort(t);
		teardown();
	}
}

Test(store, strerror_words_for_every_error)
{
	static const struct {
		int		 rc;
		const char	*words;
	} rows[] = {
		{ STORE_OK, "no error" },
		{ STORE_NOTFOUND, "not found" },
		{ STORE_EXISTS, "already exists" },
		{ STORE_FULL, "store full" },
		{ STORE_CORRUPT, "store damaged" },
		{ STORE_BUSY, "store busy" },
		{ STORE_IO, "I/O error" },
		{ STORE_NOMEM, "out of memory" },
		{ STORE_STOP, "stopped" },
		{ STORE__COUNT, "unknown error" },
		{ -1, "unknown error" },
		{ 1000, "unknown error" },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++)
		cr_expect_str_eq(store_strerror(rows[i].rc), rows[i].words,
		    "rc %d", rows[i].rc);
}

static const uint8_t	absent_id[16] = { 0xab };

static int
nf_consent(struct store_txn *t)
{
	struct consent	c;

	return store_consent_get(st, t, absent_id, &c);
}

static int
nf_msg(struct store_txn *t)
{
	struct msg_hdr	h;

	return store_msg_get(st, t, absent_id, &h, NULL);
}

static int
nf_msg_release(struct store_txn *t)
{
	return store_msg_release(st, t, absent_id, NULL);
}

static int
nf_queue_get(struct store_txn *t)
{
	struct qent	q;

	return store_queue_get(st, t, "cjit.leeds", 1, &q);
}

static int
nf_queue_del(struct store_txn *t)
{
	return store_queue_del(st, t, "cjit.leeds", 1);
}

static int
nf_queue_next(struct store_txn *t)
{
	struct qent	q;
	uint64_t	dseq;

	return store_queue_next(st, t, "cjit.leeds", 0, &dseq, &q);
}

static int
nf_rstate(struct store_txn *t)
{
	struct rstate	rs;

	return store_rstate_get(st, t, absent_id, "cjit.leeds", &rs);
}

static int
nf_expiry_first(struct store_txn *t)
{
	int64_t	at;
	uint8_t	mid[16], phase;

	return store_expiry_first(st, t, &at, mid, &phase);
}

static int
nf_expiry_del(struct store_txn *t)
{
	return store_expiry_del(st, t, 1000, absent_id);
}

static int
nf_audit_last(struct store_txn *t)
{
	const void	*e;
	uint64_t	 seq;
	size_t		 len;

	return store_audit_last(st, t, &seq, &e, &len);
}

static int
nf_audit_head(struct store_txn *t)
{
	uint8_t	head[64];
	size_t	len;

	return store_audit_head_get(st, t, head, sizeof(head), &len);
}

Test(store, absent_records_are_notfound, .init = setup, .fini = teardown)
{
	static const struct {
		const char	*name;
		int		(*fn)(struct store_txn *);
	} rows[] = {
		{ "consent", nf_consent },
		{ "message", nf_msg },
		{ "release of a message", nf_msg_release },
		{ "queue entry", nf_queue_get },
		{ "queue entry deleted", nf_queue_del },
		{ "next queue entry", nf_queue_next },
		{ "delivery state", nf_rstate },
		{ "first expiry", nf_expiry_first },
		{ "expiry deleted", nf_expiry_del },
		{ "newest audit entry", nf_audit_last },
		{ "audit head", nf_audit_head },
	};
	struct store_txn	*t = begin(true);
	size_t			 i;

	for (i = 0; i < NITEMS(rows); i++) {
		int rc = rows[i].fn(t);

		cr_expect_eq(rc, STORE_NOTFOUND, "%s: %s", rows[i].name,
		    store_strerror(rc));
	}
	store_abort(t);
}

Test(store, queue_put_over_an_existing_dseq_is_exists, .init = setup,
    .fini = teardown)
{
	struct store_txn	*t = begin(true);
	struct qent		 a = { 0 }, b = { 0 }, got;

	a.kind = Q_DELIVER;
	a.at_ms = 111;
	b.kind = Q_RECEIPT;
	b.at_ms = 222;
	cr_assert_eq(store_queue_put(st, t, "cjit.leeds", 9, &a), 0);
	cr_expect_eq(store_queue_put(st, t, "cjit.leeds", 9, &b),
	    STORE_EXISTS);
	cr_assert_eq(store_queue_get(st, t, "cjit.leeds", 9, &got), 0);
	cr_expect_eq(got.kind, Q_DELIVER, "the first entry was overwritten");
	cr_expect_eq(got.at_ms, 111);
	/* The same dseq in another agency's queue is another entry. */
	cr_expect_eq(store_queue_put(st, t, "cjit.leeds2", 9, &b), 0);
	store_abort(t);
}

Test(store, usage_counts_pages_within_the_map, .init = setup,
    .fini = teardown)
{
	struct store_counters	 c = { 0 };
	struct store_txn	*t;
	size_t			 used, used2, map, disk;
	int			 i, rc;

	cr_assert_eq(store_usage(st, &used, &map), 0);
	cr_expect_eq(map, (size_t)MAP_MB << 20);
	cr_expect_gt(used, 0);
	cr_expect_lt(used, map);
	t = begin(true);
	for (i = 0; i < 2000; i++) {
		struct qent q = { 0 };

		cr_assert_eq(store_queue_put(st, t, "cjit.leeds", i + 1, &q),
		    0);
	}
	cr_assert_eq(store_counters_put(st, t, &c), 0);
	commit(t);
	cr_assert_eq(store_usage(st, &used2, &map), 0);
	cr_expect_gt(used2, used, "%zu then %zu bytes", used, used2);
	cr_assert_eq(store_disk_bytes(st, &disk), 0);
	cr_expect_geq(disk, used2);
	errno = 0;
	rc = store_hold_disk(st, 65536);
	cr_expect(rc == 0 || (rc == STORE_IO && errno == EOPNOTSUPP),
	    "hold_disk: %s (%s)", store_strerror(rc), strerror(errno));
}

/* ---- the dseq ---- */

static uint64_t
next_dseq(struct store_txn *t)
{
	uint64_t	d;

	cr_assert_eq(store_next_dseq(st, t, &d), 0);
	return d;
}

Test(store, dseq_counts_from_one_and_resumes_after_restart, .init = setup,
    .fini = teardown)
{
	struct store_txn	*t = begin(true);

	cr_expect_eq(next_dseq(t), 1);
	cr_expect_eq(next_dseq(t), 2);
	cr_expect_eq(next_dseq(t), 3);
	cr_assert_eq(store_save_dseq(st, t), 0);
	commit(t);
	reopen();
	t = begin(true);
	cr_expect_eq(next_dseq(t), 4);
	cr_expect_eq(next_dseq(t), 5);
	cr_assert_eq(store_save_dseq(st, t), 0);
	commit(t);
	reopen();
	t = begin(true);
	cr_expect_eq(next_dseq(t), 6);
	store_abort(t);
}

Test(store, dseq_of_an_undone_transaction_is_a_gap_never_reused,
    .init = setup, .fini = teardown)
{
	struct store_txn	*t = begin(true), *n;

	cr_expect_eq(next_dseq(t), 1);
	cr_expect_eq(next_dseq(t), 2);
	cr_assert_eq(store_save_dseq(st, t), 0);
	store_abort(t);

	/* Undone in a nested transaction, too. */
	t = begin(true);
	cr_assert_eq(store_begin_nested(st, t, &n), 0);
	cr_expect_eq(next_dseq(n), 3);
	cr_assert_eq(store_save_dseq(st, n), 0);
	store_abort(n);
	cr_expect_eq(next_dseq(t), 4);
	cr_assert_eq(store_save_dseq(st, t), 0);
	commit(t);
	reopen();
	t = begin(true);
	cr_expect_eq(next_dseq(t), 5);
	store_abort(t);
}

/* ---- metadata ---- */

Test(store, counters_round_trip_across_restart, .init = setup,
    .fini = teardown)
{
	struct store_counters	 c, want = { 1, 2, 3, 4, 5, 6, 7 };
	struct store_txn	*t = begin(true);

	memset(&c, 0xff, sizeof(c));
	cr_assert_eq(store_counters_get(st, t, &c), 0);
	cr_expect_eq(c.accepted + c.delivered + c.withheld + c.purged +
	    c.expired + c.rejected + c.refused, 0, "a new store counts zero");
	cr_assert_eq(store_counters_put(st, t, &want), 0);
	commit(t);
	reopen();
	t = begin(false);
	cr_assert_eq(store_counters_get(st, t, &c), 0);
	store_abort(t);
	cr_expect_eq(memcmp(&c, &want, sizeof(c)), 0);
}

struct names {
	char	list[512];
	int	visits, stop_at;
};

static int
name_add(const char *id, void *arg)
{
	struct names	*n = arg;

	if (n->visits++ > 0)
		(void)strncat(n->list, ",", sizeof(n->list) -
		    strlen(n->list) - 1);
	(void)strncat(n->list, id, sizeof(n->list) - strlen(n->list) - 1);
	return n->visits == n->stop_at ? STORE_STOP : 0;
}

Test(store, online_list_round_trips, .init = setup, .fini = teardown)
{
	static const char	 ids[] = "cjit.leeds\0probation.leeds\0"
	    "housing.leeds-hostels";
	static const struct {
		const char	*name;
		const char	*value;		/* NULL: none stored */
		size_t		 len;
		int		 stop_at;
		int		 rc;
		const char	*list;
	} rows[] = {
		{ "none stored", NULL, 0, 0, 0, "" },
		{ "three agencies", ids, sizeof(ids), 0, 0,
		  "cjit.leeds,probation.leeds,housing.leeds-hostels" },
		{ "stopped after the second", ids, sizeof(ids), 2, STORE_STOP,
		  "cjit.leeds,probation.leeds" },
		{ "nobody online", "", 0, 0, 0, "" },
		{ "last id unterminated", "cjit.leeds\0abc", 14, 0,
		  STORE_CORRUPT, "cjit.leeds" },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++) {
		struct store_txn	*t;
		struct names		 n = { "", 0, rows[i].stop_at };

		if (rows[i].value != NULL) {
			t = begin(true);
			cr_assert_eq(store_online_put(st, t, rows[i].value,
			    rows[i].len), 0);
			commit(t);
		}
		reopen();
		t = begin(false);
		cr_expect_eq(store_online_each(st, t, name_add, &n),
		    rows[i].rc, "%s", rows[i].name);
		cr_expect_str_eq(n.list, rows[i].list, "%s", rows[i].name);
		store_abort(t);
	}
}

struct subs_seen {
	char		names[4][CC_ID_MAX + 1];
	struct sub	subs[4];
	int		n;
};

static int
sub_add(const char *agency, const struct sub *s, void *arg)
{
	struct subs_seen	*w = arg;

	cr_assert_lt(w->n, 4, "more subscriptions than stored");
	(void)snprintf(w->names[w->n], sizeof(w->names[0]), "%s", agency);
	w->subs[w->n++] = *s;
	return 0;
}

/* Three good subscriptions, then damaged rows among them: the damaged ones
 * are skipped, the good ones still visited, and no error. */
Test(store, subscriptions_round_trip_and_damaged_ones_are_skipped,
    .init = setup, .fini = teardown)
{
	static const char	*agencies[3] = { "a.agency", "b.agency",
	    "c.agency" };
	static const char	 longkey[CC_ID_MAX + 2] =
	    "b.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
	struct sub		 want[3], bad;
	struct subs_seen	 w;
	struct store_txn	*t;
	int			 i, j;

	memset(want, 0, sizeof(want));
	want[0].types = 1u << RT_RELEASE_PLAN;
	want[0].nareas = 2;
	(void)snprintf(want[0].areas[0], 16, "E08000035");
	(void)snprintf(want[0].areas[1], 16, "E08000036");
	want[1].types = (1u << RT__COUNT) - 1;
	want[2].types = 1u << RT_HOUSING_STATUS;
	want[2].nareas = SUB_AREAS_MAX;
	for (j = 0; j < SUB_AREAS_MAX; j++)
		(void)snprintf(want[2].areas[j], 16, "E080000%02u",
		    (unsigned)j % 100u);
	t = begin(true);
	for (i = 0; i < 3; i++)
		cr_assert_eq(store_sub_put(st, t, agencies[i], &want[i]), 0);
	commit(t);

	for (int round = 0; round < 2; round++) {
		memset(&w, 0, sizeof(w));
		t = begin(false);
		cr_expect_eq(store_subs_each(st, t, sub_add, &w), 0,
		    "round %d", round);
		store_abort(t);
		cr_expect_eq(w.n, 3, "round %d: %d visited", round, w.n);
		for (i = 0; i < w.n && i < 3; i++) {
			cr_expect_str_eq(w.names[i], agencies[i]);
			cr_expect_eq(memcmp(&w.subs[i], &want[i],
			    sizeof(want[i])), 0, "%s", agencies[i]);
		}
		if (round == 1)
			break;
		/* A value one byte short, an empty one, too many areas and
		 * an agency id longer than any. */
		raw_put("subs", "a.bad", 5, &want[0], sizeof(want[0]) - 1);
		raw_put("subs", "b.bad", 5, "", 0);
		bad = want[0];
		bad.nareas = SUB_AREAS_MAX + 1;
		raw_put("subs", "b.bad2", 6, &bad, sizeof(bad));
		raw_put("subs", longkey, CC_ID_MAX + 1, &want[0],
		    sizeof(want[0]));
		reopen();
	}
}

/* ---- consents ---- */

/* A consent of subject ps with the id (kind, n). */
static void
put_consent(struct store_txn *t, uint8_t kind, uint32_t n,
    const struct subject_ps *ps)
{
	struct consent_hdr	h;
	uint8_t			cid[16];

	memset(&h, 0, sizeof(h));
	id_of(cid, kind, n);
	h.version = 1;
	h.state = CS_ACTIVE;
	h.purposes = 1u << PURPOSE_CONTINUITY_OF_CARE;
	h.cats = CATSET(CAT_IDENTITY) | CATSET(CAT_HOUSING);
	h.recip_len = sizeof(recip_ids);
	h.from_ms = 1000;
	h.until_ms = 2000;
	h.subj = *ps;
	cr_assert_eq(store_consent_put(st, t, cid, &h, recip_ids, "", "h", 1),
	    0);
}

/* Visits per record number of one kind; anything else is counted apart. */
struct tally {
	uint8_t		 kind;
	unsigned	*seen;
	size_t		 n;
	size_t		 visits, foreign;
	size_t		 stop_at;	/* STORE_STOP after so many; 0: never */
};

static void
tally_init(struct tally *t, uint8_t kind, size_t n)
{
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->n = n;
	cr_assert_not_null(t->seen = calloc(n, sizeof(*t->seen)));
}

static int
tally_id(struct tally *t, const uint8_t id[16])
{
	uint32_t	n = num_of(id);

	t->visits++;
	if (id[0] != t->kind || n >= t->n)
		t->foreign++;
	else
		t->seen[n]++;
	return t->stop_at != 0 && t->visits == t->stop_at ? STORE_STOP : 0;
}

/* How many were visited exactly once; the rest are reported. */
static size_t
tally_once(const struct tally *t, const char *what)
{
	size_t	i, once = 0;

	for (i = 0; i < t->n; i++) {
		if (t->seen[i] == 1)
			once++;
		cr_expect_leq(t->seen[i], 1, "%s: #%zu visited %u times",
		    what, i, t->seen[i]);
	}
	return once;
}

static int
tally_consent(const struct consent *c, void *arg)
{
	return tally_id(arg, c->cid);
}

Test(store, consent_put_and_get_round_trip, .init = setup, .fini = teardown)
{
	static const struct sspec	 who = { PNC_A, NOMS_X, NULL };
	static const char		 hist[] = "\x82\xa1v\x01\xa1h\xc0";
	struct consent_hdr		 h;
	struct deny_hdr			 dh = { CATSET(CAT_HOUSING), 11 };
	struct consent			 c;
	struct store_txn		*t;
	uint8_t				 cid[16], deny[sizeof(dh) + 11];
	uint8_t				*back;
	size_t				 len;

	memcpy(deny, &dh, sizeof(dh));
	memcpy(deny + sizeof(dh), "cjit.leeds", 11);
	memset(&h, 0, sizeof(h));
	h.version = 3;
	h.state = CS_WITHDRAWN;
	h.explicit_ = 1;
	h.purposes = (1u << PURPOSE_TREATMENT) | (1u << PURPOSE_HOUSING_SUPPORT);
	memset(h.req_hash, 0x5a, sizeof(h.req_hash));
	h.cats = CATSET_ALL;
	h.recip_len = sizeof(recip_ids);
	h.deny_len = sizeof(deny);
	h.from_ms = 1777626000000LL;
	h.until_ms = 1809162000000LL;
	h.recorded_ms = 1777626001234LL;
	(void)snprintf(h.recorded_by, sizeof(h.recorded_by), "cjit.leeds");
	subject(&who, &h.subj);
	id_of(cid, K_CONSENT, 42);

	t = begin(true);
	cr_assert_eq(store_consent_put(st, t, cid, &h, recip_ids, deny, hist,
	    sizeof(hist) - 1), 0);
	commit(t);
	reopen();
	t = begin(false);
	cr_assert_eq(store_consent_get(st, t, cid, &c), 0);
	cr_expect_eq(memcmp(c.cid, cid, 16), 0);
	cr_expect_eq(c.h.version, 3);
	cr_expect_eq(c.h.state, CS_WITHDRAWN);
	cr_expect_eq(c.h.explicit_, 1);
	cr_expect_eq(c.h.purposes, h.purposes);
	cr_expect_eq(memcmp(c.h.req_hash, h.req_hash, 16), 0);
	cr_expect_eq(c.h.cats, CATSET_ALL);
	cr_expect_eq(c.h.recip_len, sizeof(recip_ids));
	cr_expect_eq(c.h.deny_len, sizeof(deny));
	cr_expect_eq(c.h.sealed_len, sizeof(hist) - 1 + SEAL_OVERHEAD);
	cr_expect_eq(c.h.from_ms, h.from_ms);
	cr_expect_eq(c.h.until_ms, h.until_ms);
	cr_expect_eq(c.h.recorded_ms, h.recorded_ms);
	cr_expect_str_eq(c.h.recorded_by, "cjit.leeds");
	cr_expect_eq(memcmp(&c.h.subj, &h.subj, sizeof(h.subj)), 0);
	cr_expect_eq(c.h.subj.has, 1u << SCHEME_PNC | 1u << SCHEME_NOMS);
	/* The decision view, from the header. */
	cr_expect_eq(c.v.version, 3);
	cr_expect_eq(c.v.state, CS_WITHDRAWN);
	cr_expect_eq(c.v.has, h.subj.has);
	cr_expect_eq(c.v.recip_len, sizeof(recip_ids));
	cr_expect_eq(memcmp(c.v.tag[SCHEME_NOMS], h.subj.id[SCHEME_NOMS],
	    CVIEW_TAGLEN), 0);
	cr_expect_eq(memcmp(c.recip, recip_ids, sizeof(recip_ids)), 0);
	cr_expect_eq(memcmp(c.deny, deny, sizeof(deny)), 0);
	cr_assert_not_null(c.sealed);
	cr_assert_not_null(back = store_consent_history(st, &c, &len));
	cr_expect_eq(len, sizeof(hist) - 1);
	cr_expect_eq(memcmp(back, hist, len), 0);
	free(back);
	cr_expect(idlist_has(c.recip, c.v.recip_len, "probation.leeds"));
	cr_expect_not(idlist_has(c.recip, c.v.recip_len, "probation"));
	store_abort(t);
}

/*
 * Eight consents over overlapping subjects.  Whatever identifiers the
 * query has, each consent sharing at least one is visited exactly once
 * (a subject with PNC and NOMS is indexed under both), none other.
 */
static const struct sspec	dedupe_subj[] = {
	{ PNC_A, NULL, NULL },		/* 0 */
	{ NULL, NOMS_X, NULL },		/* 1 */
	{ PNC_A, NOMS_X, NULL },	/* 2 */
	{ PNC_A, NOMS_Y, NULL },	/* 3 */
	{ PNC_B, NOMS_X, NULL },	/* 4 */
	{ PNC_A, NOMS_X, CRN_R },	/* 5 */
	{ NULL, NULL, CRN_R },		/* 6 */
	{ PNC_B, NULL, NULL },		/* 7 */
};

static const struct {
	const char	*name;
	struct sspec	 q;
	unsigned	 want;		/* bit per dedupe_subj */
} dedupe_rows[] = {
	{ "pnc", { PNC_A, NULL, NULL }, 0x2d },
	{ "noms", { NULL, NOMS_X, NULL }, 0x36 },
	{ "pnc and noms", { PNC_A, NOMS_X, NULL }, 0x3f },
	{ "pnc, noms and crn", { PNC_A, NOMS_X, CRN_R }, 0x7f },
	{ "noms and crn", { NULL, NOMS_X, CRN_R }, 0x76 },
	{ "other pnc, other noms", { PNC_B, NOMS_Y, NULL }, 0x98 },
	{ "crn alone", { NULL, NULL, CRN_R }, 0x60 },
	{ "nobody stored", { PNC_C, NULL, NULL }, 0 },
	{ "no identifier", { NULL, NULL, NULL }, 0 },
};

Test(store, consents_of_gives_each_consent_once_under_any_identifier,
    .init = setup, .fini = teardown)
{
	struct store_txn	*t = begin(true);
	size_t			 i, j;

	for (i = 0; i < NITEMS(dedupe_subj); i++) {
		struct subject_ps ps;

		subject(&dedupe_subj[i], &ps);
		put_consent(t, K_CONSENT, (uint32_t)i, &ps);
	}
	commit(t);
	t = begin(false);
	for (i = 0; i < NITEMS(dedupe_rows); i++) {
		struct subject_ps	ps;
		struct tally		w;

		subject(&dedupe_rows[i].q, &ps);
		tally_init(&w, K_CONSENT, NITEMS(dedupe_subj));
		cr_expect_eq(store_consents_of(st, t, &ps, tally_consent, &w),
		    0, "%s", dedupe_rows[i].name);
		for (j = 0; j < NITEMS(dedupe_subj); j++)
			cr_expect_eq(w.seen[j], (dedupe_rows[i].want >> j) & 1,
			    "%s: consent %zu visited %u times",
			    dedupe_rows[i].name, j, w.seen[j]);
		cr_expect_eq(w.foreign, 0, "%s", dedupe_rows[i].name);
		free(w.seen);
	}
	store_abort(t);
}

/* A damaged row of the decision index is an error, never skipped: a
 * consent that cannot be read may be the withdrawal. */
Test(store, consents_of_fails_on_a_damaged_index_row, .init = setup,
    .fini = teardown)
{
	static const struct sspec	who = { PNC_A, NOMS_X, NULL };
	struct cview			view;
	uint8_t				big[sizeof(struct cview) + 10];
	const struct {
		const char	*name;
		int		 scheme;	/* the row is under this id */
		const void	*value;
		size_t		 len;
	} rows[] = {
		{ "shorter than a view, under the pnc", SCHEME_PNC, "bad", 3 },
		{ "empty, under the pnc", SCHEME_PNC, "", 0 },
		{ "lengths past the row, under the pnc", SCHEME_PNC, big,
		  sizeof(big) },
		{ "shorter than a view, under the noms", SCHEME_NOMS, "bad",
		  3 },
		{ "lengths past the row, under the noms", SCHEME_NOMS, big,
		  sizeof(big) },
	};
	size_t	i;

	memset(&view, 0, sizeof(view));
	view.recip_len = 40;		/* but only 10 bytes follow */
	memcpy(big, &view, sizeof(view));
	memset(big + sizeof(view), 'x', 10);
	for (i = 0; i < NITEMS(rows); i++) {
		struct subject_ps	 ps;
		struct store_txn	*t;
		struct tally		 w;
		uint8_t			 key[CVIEW_KEYLEN + 16];
		int			 rc;

		setup();
		subject(&who, &ps);
		t = begin(true);
		put_consent(t, K_CONSENT, 1, &ps);
		put_consent(t, K_CONSENT, 3, &ps);
		commit(t);
		/* Between the two good rows. */
		memcpy(key, ps.id[rows[i].scheme], CVIEW_KEYLEN);
		id_of(key + CVIEW_KEYLEN, K_CONSENT, 2);
		raw_put("cview", key, sizeof(key), rows[i].value,
		    rows[i].len);
		reopen();
		t = begin(false);
		tally_init(&w, K_CONSENT, 4);
		rc = store_consents_of(st, t, &ps, tally_consent, &w);
		cr_expect_eq(rc, STORE_CORRUPT, "%s: %s", rows[i].name,
		    store_strerror(rc));
		store_abort(t);
		free(w.seen);
		teardown();
	}
}

#define NCONSENTS	10000

/*
 * 10,000 consents of one subject (PNC and NOMS), beside 100 of another:
 * every one visited exactly once through either identifier or both, and a
 * callback gathering them can stop early.
 */
Test(store, ten_thousand_consents_of_one_subject_all_visited,
    .init = setup, .fini = teardown)
{
	static const struct sspec	 who = { PNC_A, NOMS_X, NULL };
	static const struct sspec	 other = { PNC_B, NOMS_Y, NULL };
	static const struct sspec	 queries[] = {
		{ PNC_A, NOMS_X, NULL },
		{ PNC_A, NULL, NULL },
		{ NULL, NOMS_X, NULL },
		{ PNC_A, NOMS_Y, NULL },
	};
	struct subject_ps		 ps, ops;
	struct store_txn		*t;
	struct tally			 w;
	uint32_t			 i;
	size_t				 q;
	int				 rc;

	subject(&who, &ps);
	subject(&other, &ops);
	t = begin(true);
	for (i = 0; i < NCONSENTS; i++)
		put_consent(t, K_CONSENT, i, &ps);
	for (i = 0; i < 100; i++)
		put_consent(t, K_OTHER, i, &ops);
	commit(t);

	t = begin(false);
	for (q = 0; q < NITEMS(queries); q++) {
		struct subject_ps qps;

		subject(&queries[q], &qps);
		tally_init(&w, K_CONSENT, NCONSENTS);
		cr_expect_eq(store_consents_of(st, t, &qps, tally_consent,
		    &w), 0, "query %zu", q);
		cr_expect_eq(tally_once(&w, "10,000"), NCONSENTS,
		    "query %zu", q);
		cr_expect_eq(w.visits, NCONSENTS + (q == 3 ? 100 : 0),
		    "query %zu: %zu visits", q, w.visits);
		cr_expect_eq(w.foreign, q == 3 ? 100 : 0, "query %zu", q);
		free(w.seen);
	}

	/* Gathering stops early: STORE_STOP comes back as it was given. */
	tally_init(&w, K_CONSENT, NCONSENTS);
	w.stop_at = 7777;
	rc = store_consents_of(st, t, &ps, tally_consent, &w);
	cr_expect_eq(rc, STORE_STOP, "%s", store_strerror(rc));
	cr_expect_eq(w.visits, 7777);
	cr_expect_eq(tally_once(&w, "stopped"), 7777);
	free(w.seen);
	store_abort(t);
}

/* ---- messages ---- */

static void
msg_hdr_of(struct msg_hdr *h, const struct subject_ps *ps)
{
	memset(h, 0, sizeof(*h));
	(void)snprintf(h->sender, sizeof(h->sender), "prison.hmp-leeds");
	h->rtype = RT_RELEASE_PLAN;
	h->purpose = PURPOSE_CONTINUITY_OF_CARE;
	h->accepted_ms = 1777626000000LL;
	h->expires_ms = 1785402000000LL;
	if (ps != NULL)
		h->subj = *ps;
}

static void
frame_fill(uint8_t *f, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		f[i] = (uint8_t)(i * 7 + 3);
}

Test(store, message_frame_round_trips_with_and_without_frame,
    .init = setup, .fini = teardown)
{
	static uint8_t	frame[300];
	const struct {
		const char	*name;
		const void	*frame;
		size_t		 len;
		uint32_t	 sealed_len;
		bool		 has_frame;
	} rows[] = {
		{ "300-byte frame", frame, sizeof(frame),
		  sizeof(frame) + SEAL_OVERHEAD, true },
		{ "empty frame", frame, 0, SEAL_OVERHEAD, true },
		{ "no frame", NULL, 0, 0, false },
	};
	struct store_txn	*t;
	size_t			 i;

	frame_fill(frame, sizeof(frame));
	t = begin(true);
	for (i = 0; i < NITEMS(rows); i++) {
		struct msg_hdr	h;
		uint8_t		mid[16];

		msg_hdr_of(&h, NULL);
		h.rtype = (uint8_t)i;
		id_of(mid, K_MSG, (uint32_t)i);
		cr_assert_eq(store_msg_put(st, t, mid, &h, rows[i].frame,
		    rows[i].len), 0);
	}
	commit(t);
	reopen();
	t = begin(false);
	for (i = 0; i < NITEMS(rows); i++) {
		struct msg_hdr	 h;
		const uint8_t	*sealed = NULL;
		uint8_t		 mid[16], *back;
		size_t		 len = 12345;

		id_of(mid, K_MSG, (uint32_t)i);
		cr_assert_eq(store_msg_get(st, t, mid, &h, &sealed), 0, "%s",
		    rows[i].name);
		cr_expect_str_eq(h.sender, "prison.hmp-leeds");
		cr_expect_eq(h.rtype, i);
		cr_expect_eq(h.purpose, PURPOSE_CONTINUITY_OF_CARE);
		cr_expect_eq(h.accepted_ms, 1777626000000LL);
		cr_expect_eq(h.expires_ms, 1785402000000LL);
		cr_expect_eq(h.sealed_len, rows[i].sealed_len, "%s: %u",
		    rows[i].name, h.sealed_len);
		cr_expect_not_null(sealed);
		back = store_msg_frame(st, t, mid, &len);
		if (!rows[i].has_frame) {
			cr_expect_null(back, "%s", rows[i].name);
			continue;
		}
		cr_assert_not_null(back, "%s", rows[i].name);
		cr_expect_eq(len, rows[i].len, "%s", rows[i].name);
		cr_expect_eq(memcmp(back, frame, len), 0, "%s",
		    rows[i].name);
		free(back);
	}
	store_abort(t);
}

/* A message's header in formats 2 to 4 (store_format.c): no rhash. */
struct msg_hdr_old {
	char			sender[CC_ID_MAX + 1];
	uint8_t			rtype;
	uint8_t			purpose;
	uint16_t		pad;
	uint32_t		sealed_len;
	int64_t			accepted_ms;
	int64_t			expires_ms;
	struct subject_ps	subj;
};

static char	last_finding[256];

static void
count_finding(const char *line, void *arg)
{
	(void)snprintf(last_finding, sizeof(last_finding), "%s", line);
	(*(int *)arg)++;
}

/*
 * A store of format 4 opened to write: every message is given the header
 * of format 5, its record's hash "unknown" (zero), its fields, tag and
 * sealed frame kept.  One damaged before stays damaged and reported as
 * such, never taken for LMDB's pages damaged (the store stays writable),
 * whether it held a payload or not; a second open upgrades nothing.
 */
Test(store, format4_messages_get_the_format5_header, .init = setup,
    .fini = teardown)
{
	static uint8_t	frame[200];
	static const uint32_t	f4 = 4;
	static const uint8_t	zero[RECORD_HASH_LEN];
	const struct {
		const char	*name;
		size_t		 len;		/* of the frame; 0: none */
		bool		 damaged;
	} rows[] = {
		{ "with its payload", sizeof(frame), false },
		{ "released", 0, false },
		{ "damaged in format 4", 50, true },
		{ "damaged in format 4, released", 0, true },
	};
	struct {
		uint8_t	*v;
		size_t	 len;
	} old[4];
	int			 found;
	struct store_txn	*t;
	struct msg_hdr		 h;
	struct msg_hdr_old	 ho;
	uint8_t			 mid[16];
	size_t			 i;

	cr_assert_eq(sizeof(ho) + RECORD_HASH_LEN, sizeof(h));
	frame_fill(frame, sizeof(frame));
	/* Written as format 5, then each value made over as format 4's. */
	t = begin(true);
	for (i = 0; i < NITEMS(rows); i++) {
		msg_hdr_of(&h, NULL);
		h.rtype = (uint8_t)i;
		memset(h.rhash, 0xa5, sizeof(h.rhash));
		id_of(mid, K_MSG, (uint32_t)i);
		cr_assert_eq(store_msg_put(st, t, mid, &h, rows[i].len > 0 ?
		    frame : NULL, rows[i].len), 0);
	}
	commit(t);
	t = begin(false);
	for (i = 0; i < NITEMS(rows); i++) {
		const uint8_t	*sealed;
		MDB_val		 k = { 16, mid };

		id_of(mid, K_MSG, (uint32_t)i);
		cr_assert_eq(store_msg_get(st, t, mid, &h, &sealed), 0);
		memset(&ho, 0, sizeof(ho));
		memcpy(ho.sender, h.sender, sizeof(ho.sender));
		ho.rtype = h.rtype;
		ho.purpose = h.purpose;
		ho.sealed_len = h.sealed_len;
		ho.accepted_ms = h.accepted_ms;
		ho.expires_ms = h.expires_ms;
		ho.subj = h.subj;
		old[i].len = sizeof(ho) + TAG_LEN + h.sealed_len;
		cr_assert_not_null(old[i].v = malloc(old[i].len));
		memcpy(old[i].v, &ho, sizeof(ho));
		cr_assert_eq(tag_make(st, TD_MSG, &k, &ho, sizeof(ho),
		    old[i].v + sizeof(ho)), 0);
		memcpy(old[i].v + sizeof(ho) + TAG_LEN, sealed, h.sealed_len);
		if (rows[i].damaged)
			old[i].v[3] ^= 1;	/* the sender's name */
	}
	store_abort(t);
	for (i = 0; i < NITEMS(rows); i++) {
		id_of(mid, K_MSG, (uint32_t)i);
		raw_put("msg", mid, 16, old[i].v, old[i].len);
		free(old[i].v);
	}
	raw_put("meta", META_FORMAT, strlen(META_FORMAT), &f4, sizeof(f4));

	reopen();
	reopen();
	t = begin(false);
	for (i = 0; i < NITEMS(rows); i++) {
		const uint8_t	*sealed;
		uint8_t		*back;
		size_t		 len;
		int		 rc;

		id_of(mid, K_MSG, (uint32_t)i);
		rc = store_msg_get(st, t, mid, &h, &sealed);
		if (rows[i].damaged) {
			cr_expect_eq(rc, STORE_CORRUPT, "%s: %s",
			    rows[i].name, store_strerror(rc));
			continue;
		}
		cr_assert_eq(rc, 0, "%s: %s", rows[i].name, store_strerror(rc));
		cr_expect_str_eq(h.sender, "prison.hmp-leeds");
		cr_expect_eq(h.rtype, i);
		cr_expect_eq(h.purpose, PURPOSE_CONTINUITY_OF_CARE);
		cr_expect_eq(h.accepted_ms, 1777626000000LL);
		cr_expect_eq(h.expires_ms, 1785402000000LL);
		cr_expect_eq(memcmp(h.rhash, zero, sizeof(zero)), 0,
		    "%s: a hash made up", rows[i].name);
		back = store_msg_frame(st, t, mid, &len);
		if (rows[i].len == 0) {
			cr_expect_eq(h.sealed_len, 0);
			cr_expect_null(back);
			continue;
		}
		cr_assert_not_null(back, "%s: the payload does not open",
		    rows[i].name);
		cr_expect_eq(len, rows[i].len);
		cr_expect_eq(memcmp(back, frame, len), 0);
		free(back);
	}
	store_abort(t);
	found = 0;
	cr_expect_neq(store_check(st, CHECK_QUICK, count_finding, &found), -1,
	    "taken for damaged pages");
	found = 0;
	cr_expect_eq(store_check(st, CHECK_FULL, count_finding, &found), 1,
	    "%d findings", found);
	cr_expect_str_eq(last_finding, "msg: 2 entries fail their integrity "
	    "check");
	t = begin(true);
	msg_hdr_of(&h, NULL);
	id_of(mid, K_MSG, 99);
	cr_assert_eq(store_msg_put(st, t, mid, &h, frame, 10), 0);
	commit(t);
}

/* The sealed frame altered on disk, or moved under another message id,
 * does not open: store_msg_frame gives NULL, never altered bytes. */
Test(store, altered_sealed_frame_does_not_open, .init = setup,
    .fini = teardown)
{
	static uint8_t	frame[100];
	/* The header, its integrity tag, then the sealed frame. */
	const size_t	at0 = sizeof(struct msg_hdr) + SEAL_TAGLEN;
	const struct {
		const char	*name;
		bool		 flip;
		size_t		 at;		/* byte of the value */
		bool		 opens;
	} rows[] = {
		{ "untouched", false, 0, true },
		{ "nonce, first byte", true, at0, false },
		{ "ciphertext, first byte", true, at0 + 12, false },
		{ "ciphertext, middle byte", true, at0 + 12 + 50, false },
		{ "tag, last byte", true, at0 + 12 + 100 + 15, false },
		{ "moved to another mid", false, 0, false },
	};
	size_t	i;

	frame_fill(frame, sizeof(frame));
	for (i = 0; i < NITEMS(rows); i++) {
		struct store_txn	*t;
		struct msg_hdr		 h;
		uint8_t			 mid[16], other[16], *back;
		size_t			 len;

		setup();
		id_of(mid, K_MSG, 1);
		id_of(other, K_MSG, 2);
		msg_hdr_of(&h, NULL);
		t = begin(true);
		cr_assert_eq(store_msg_put(st, t, mid, &h, frame,
		    sizeof(frame)), 0);
		commit(t);
		if (rows[i].flip)
			raw_flip_or_copy("msg", mid, 16, rows[i].at, NULL);
		else if (!rows[i].opens) {
			raw_flip_or_copy("msg", mid, 16, 0, other);
			memcpy(mid, other, 16);
		}
		reopen();
		t = begin(false);
		/* The header is intact when the sealed part is damaged; moved
		 * to another mid, it fails its own tag too. */
		cr_expect_eq(store_msg_get(st, t, mid, &h, NULL),
		    rows[i].flip || rows[i].opens ? 0 : STORE_CORRUPT, "%s",
		    rows[i].name);
		back = store_msg_frame(st, t, mid, &len);
		if (rows[i].opens) {
			cr_expect_not_null(back, "%s", rows[i].name);
			if (back != NULL)
				cr_expect_eq(memcmp(back, frame, len), 0);
		} else
			cr_expect_null(back, "%s", rows[i].name);
		free(back);
		store_abort(t);
		teardown();
	}
}

static int
tally_mid(const uint8_t mid[16], void *arg)
{
	return tally_id(arg, mid);
}

Test(store, msgs_of_subject_gives_each_message_once_under_any_identifier,
    .init = setup, .fini = teardown)
{
	struct store_txn	*t = begin(true);
	size_t			 i, j;

	for (i = 0; i < NITEMS(dedupe_subj); i++) {
		struct subject_ps	ps;
		uint8_t			mid[16];

		subject(&dedupe_subj[i], &ps);
		id_of(mid, K_MSG, (uint32_t)i);
		cr_assert_eq(store_msg_index(st, t, mid, &ps, true), 0);
		/* Indexing again changes nothing. */
		cr_assert_eq(store_msg_index(st, t, mid, &ps, true), 0);
	}
	commit(t);
	t = begin(false);
	for (i = 0; i < NITEMS(dedupe_rows); i++) {
		struct subject_ps	ps;
		struct tally		w;

		subject(&dedupe_rows[i].q, &ps);
		tally_init(&w, K_MSG, NITEMS(dedupe_subj));
		cr_expect_eq(store_msgs_of_subject(st, t, &ps, tally_mid, &w),
		    0, "%s", dedupe_rows[i].name);
		for (j = 0; j < NITEMS(dedupe_subj); j++)
			cr_expect_eq(w.seen[j], (dedupe_rows[i].want >> j) & 1,
			    "%s: message %zu visited %u times",
			    dedupe_rows[i].name, j, w.seen[j]);
		cr_expect_eq(w.foreign, 0, "%s", dedupe_rows[i].name);
		free(w.seen);
	}
	store_abort(t);

	/* Unindexed: under no identifier any more. */
	t = begin(true);
	for (i = 0; i < NITEMS(dedupe_subj); i++) {
		struct subject_ps	ps;
		uint8_t			mid[16];

		subject(&dedupe_subj[i], &ps);
		id_of(mid, K_MSG, (uint32_t)i);
		cr_assert_eq(store_msg_index(st, t, mid, &ps, false), 0);
	}
	for (i = 0; i < NITEMS(dedupe_rows); i++) {
		struct subject_ps	ps;
		struct tally		w;

		subject(&dedupe_rows[i].q, &ps);
		tally_init(&w, K_MSG, NITEMS(dedupe_subj));
		cr_expect_eq(store_msgs_of_subject(st, t, &ps, tally_mid, &w),
		    0);
		cr_expect_eq(w.visits, 0, "%s after unindexing",
		    dedupe_rows[i].name);
		free(w.seen);
	}
	store_abort(t);
}

/*
 * Three chunks and more of one subject's messages, under PNC, NOMS or
 * both.  A callback that releases the message it is given (which unindexes
 * it under every identifier while the walk goes on) still sees every other
 * message exactly once; one that does not, the same.
 */
#define NSUBJ_MSGS	(3 * STORE_CHUNK + 7)

struct releaser {
	struct tally		 w;
	struct store_txn	*t;
	bool			 release;
};

static int
release_given(const uint8_t mid[16], void *arg)
{
	struct releaser	*r = arg;
	int		 rc = tally_id(&r->w, mid);

	if (r->release)
		cr_assert_eq(store_msg_release(st, r->t, mid, NULL), 0);
	return rc;
}

Test(store, msgs_of_subject_survives_releases_during_the_walk,
    .init = setup, .fini = teardown)
{
	static const struct sspec	 subj[3] = {
		{ PNC_A, NOMS_X, NULL }, { PNC_A, NULL, NULL },
		{ NULL, NOMS_X, NULL } };
	static const struct sspec	 other = { PNC_B, NULL, NULL };
	static uint8_t			 frame[40];
	struct subject_ps		 ps[3], ops, q;
	struct store_txn		*t;
	struct msg_hdr			 h;
	uint8_t				 mid[16];
	int				 release;
	uint32_t			 i;

	frame_fill(frame, sizeof(frame));
	for (i = 0; i < 3; i++)
		subject(&subj[i], &ps[i]);
	subject(&other, &ops);
	subject(&subj[0], &q);
	t = begin(true);
	for (i = 0; i < NSUBJ_MSGS; i++) {
		id_of(mid, K_MSG, i);
		msg_hdr_of(&h, &ps[i % 3]);
		cr_assert_eq(store_msg_put(st, t, mid, &h, frame,
		    sizeof(frame)), 0);
		cr_assert_eq(store_msg_index(st, t, mid, &ps[i % 3], true), 0);
	}
	/* Another subject's message, between them in mid order. */
	id_of(mid, K_MSG, 100);
	mid[1] = 1;
	msg_hdr_of(&h, &ops);
	cr_assert_eq(store_msg_put(st, t, mid, &h, frame, sizeof(frame)), 0);
	cr_assert_eq(store_msg_index(st, t, mid, &ops, true), 0);
	commit(t);

	for (release = 0; release < 2; release++) {
		struct releaser	r;

		t = begin(true);
		tally_init(&r.w, K_MSG, NSUBJ_MSGS);
		r.t = t;
		r.release = release;
		cr_expect_eq(store_msgs_of_subject(st, t, &q, release_given,
		    &r), 0);
		cr_expect_eq(tally_once(&r.w, release ? "releasing" :
		    "reading"), NSUBJ_MSGS);
		cr_expect_eq(r.w.visits, NSUBJ_MSGS, "%s: %zu visits",
		    release ? "releasing" : "reading", r.w.visits);
		cr_expect_eq(r.w.foreign, 0);
		free(r.w.seen);
		commit(t);
	}

	/* Released: payload gone, header kept, nothing indexed; the other
	 * subject's message untouched. */
	t = begin(false);
	for (i = 0; i < NSUBJ_MSGS; i++) {
		id_of(mid, K_MSG, i);
		cr_assert_eq(store_msg_get(st, t, mid, &h, NULL), 0);
		cr_expect_eq(h.sealed_len, 0, "message %u kept its payload",
		    i);
	}
	{
		struct tally w;

		tally_init(&w, K_MSG, NSUBJ_MSGS);
		cr_expect_eq(store_msgs_of_subject(st, t, &q, tally_mid, &w),
		    0);
		cr_expect_eq(w.visits, 0);
		free(w.seen);
		tally_init(&w, K_MSG, 1);
		cr_expect_eq(store_msgs_of_subject(st, t, &ops, tally_mid,
		    &w), 0);
		cr_expect_eq(w.visits, 1);
		free(w.seen);
	}
	id_of(mid, K_MSG, 100);
	mid[1] = 1;
	cr_assert_eq(store_msg_get(st, t, mid, &h, NULL), 0);
	cr_expect_eq(h.sealed_len, sizeof(frame) + SEAL_OVERHEAD);
	store_abort(t);
}

/* ---- delivery states of 1,000 recipients ---- */

#define NRECIP		1000
#define DSEQ0		100000
#define MID_N		500

/*
 * Recipients agency-0000... of message (K_MSG, n): i % 3 == 0 queued with
 * its queue entry at dseq0 + i; 1 delivered; 2 queued but the entry gone
 * (delivered by another path, or expired).
 */
static void
recipients(struct store_txn *t, uint32_t n, int count, uint64_t dseq0)
{
	uint8_t	mid[16];
	char	agency[CC_ID_MAX + 1];
	int	i;

	id_of(mid, K_MSG, n);
	for (i = 0; i < count; i++) {
		struct rstate	rs = { 0 };
		struct qent	q = { 0 };

		(void)snprintf(agency, sizeof(agency), "agency-%04d", i);
		rs.at_ms = 1000 + i;
		switch (i % 3) {
		case 0:
			q.kind = Q_DELIVER;
			q.cats = CATSET(CAT_IDENTITY);
			q.version = 1;
			memcpy(q.mid, mid, 16);
			q.at_ms = 1000 + i;
			cr_assert_eq(store_queue_put(st, t, agency, dseq0 + i,
			    &q), 0);
			/* FALLTHROUGH */
		case 2:
			rs.state = ST_QUEUED;
			rs.dseq = dseq0 + i;
			break;
		default:
			rs.state = ST_DELIVERED;
			break;
		}
		cr_assert_eq(store_rstate_put(st, t, mid, agency, &rs), 0);
	}
}

/* The message MID_N with NRECIP recipients, between two neighbours of five
 * recipients each (their rows sort just before and just after). */
static void
fanout(void)
{
	struct store_txn	*t = begin(true);
	struct msg_hdr		 h;
	uint8_t			 mid[16], frame[64];
	uint32_t		 n;

	frame_fill(frame, sizeof(frame));
	msg_hdr_of(&h, NULL);
	for (n = MID_N - 1; n <= MID_N + 1; n++) {
		id_of(mid, K_MSG, n);
		cr_assert_eq(store_msg_put(st, t, mid, &h, frame,
		    sizeof(frame)), 0);
		recipients(t, n, n == MID_N ? NRECIP : 5, n == MID_N ? DSEQ0 :
		    DSEQ0 * (n - MID_N + 3));
	}
	commit(t);
}

struct rwalk {
	int		 visits, stop_at;
	unsigned	 seen[NRECIP];
	char		 last[CC_ID_MAX + 1];
	bool		 in_order;
};

static int
rstate_seen(const char *agency, const struct rstate *rs, void *arg)
{
	struct rwalk	*w = arg;
	int		 i;

	cr_assert_eq(strncmp(agency, "agency-", 7), 0, "%s", agency);
	i = atoi(agency + 7);
	cr_assert(i >= 0 && i < NRECIP, "%s", agency);
	if (w->visits > 0 && strcmp(w->last, agency) >= 0)
		w->in_order = false;
	(void)snprintf(w->last, sizeof(w->last), "%s", agency);
	w->seen[i]++;
	cr_expect_eq(rs->state, i % 3 == 1 ? ST_DELIVERED : ST_QUEUED, "%s",
	    agency);
	cr_expect_eq(rs->dseq, i % 3 == 1 ? 0 : (uint64_t)DSEQ0 + i, "%s",
	    agency);
	cr_expect_eq(rs->at_ms, 1000 + i, "%s", agency);
	return ++w->visits == w->stop_at ? STORE_STOP : 0;
}

Test(store, thousand_recipients_rstates_in_agency_order, .init = setup,
    .fini = teardown)
{
	struct store_txn	*t;
	struct rwalk		*w;
	struct rstate		 rs;
	uint8_t			 mid[16];
	int			 i, rc;

	fanout();
	id_of(mid, K_MSG, MID_N);
	cr_assert_not_null(w = calloc(1, sizeof(*w)));
	w->in_order = true;
	t = begin(false);
	cr_expect_eq(store_rstates(st, t, mid, rstate_seen, w), 0);
	cr_expect_eq(w->visits, NRECIP, "%d visits", w->visits);
	cr_expect(w->in_order, "not in agency order");
	for (i = 0; i < NRECIP; i++)
		cr_expect_eq(w->seen[i], 1, "agency-%04d visited %u times", i,
		    w->seen[i]);
	cr_assert_eq(store_rstate_get(st, t, mid, "agency-0999", &rs), 0);
	cr_expect_eq(rs.state, ST_QUEUED);
	cr_expect_eq(rs.dseq, DSEQ0 + 999);

	/* Stopped early: STORE_STOP back, no more calls. */
	memset(w, 0, sizeof(*w));
	w->stop_at = 300;
	rc = store_rstates(st, t, mid, rstate_seen, w);
	cr_expect_eq(rc, STORE_STOP, "%s", store_strerror(rc));
	cr_expect_eq(w->visits, 300);
	store_abort(t);
	free(w);
}

/* Counts visits only (the neighbours' states). */
static int
rstate_count(const char *agency, const struct rstate *rs, void *arg)
{
	struct rwalk	*w = arg;

	(void)agency;
	(void)rs;
	w->visits++;
	return 0;
}

struct qwalk {
	struct store_txn	*t;
	int			 visits;
	unsigned		 seen[NRECIP];
	bool			 drop;
};

/* Each queued delivery given; with drop, its queue entry is deleted and
 * its state rewritten (expired), as the retention sweep does. */
static int
queued_seen(const struct queued *q, void *arg)
{
	struct qwalk	*w = arg;
	struct rstate	 rs = { 0 };
	uint8_t		 mid[16];
	int		 i;

	cr_assert_eq(strncmp(q->agency, "agency-", 7), 0, "%s", q->agency);
	i = atoi(q->agency + 7);
	cr_assert(i >= 0 && i < NRECIP, "%s", q->agency);
	w->seen[i]++;
	w->visits++;
	id_of(mid, K_MSG, MID_N);
	cr_expect_eq(q->dseq, (uint64_t)DSEQ0 + i, "%s", q->agency);
	cr_expect_eq(memcmp(q->q.mid, mid, 16), 0, "%s", q->agency);
	cr_expect_eq(q->q.kind, Q_DELIVER);
	cr_expect_eq(q->q.at_ms, 1000 + i);
	if (w->drop) {
		cr_assert_eq(store_queue_del(st, w->t, q->agency, q->dseq), 0);
		rs.state = ST_EXPIRED;
		rs.reason = RS_RETENTION;
		rs.at_ms = 9999;
		cr_assert_eq(store_rstate_put(st, w->t, mid, q->agency, &rs),
		    0);
	}
	return 0;
}

Test(store, thousand_recipients_queued_gives_those_still_in_a_queue,
    .init = setup, .fini = teardown)
{
	struct store_txn	*t;
	struct qwalk		*w;
	struct rstate		 rs;
	struct qent		 q;
	uint8_t			 mid[16];
	char			 agency[CC_ID_MAX + 1];
	int			 i, want = (NRECIP + 2) / 3, drop;

	fanout();
	id_of(mid, K_MSG, MID_N);
	cr_assert_not_null(w = calloc(1, sizeof(*w)));
	for (drop = 0; drop < 2; drop++) {
		memset(w, 0, sizeof(*w));
		t = begin(true);
		w->t = t;
		w->drop = drop;
		cr_expect_eq(store_queued(st, t, mid, queued_seen, w), 0);
		cr_expect_eq(w->visits, want, "%s: %d visits", drop ?
		    "dropping" : "reading", w->visits);
		for (i = 0; i < NRECIP; i++)
			cr_expect_eq(w->seen[i], i % 3 == 0 ? 1u : 0u,
			    "%s: agency-%04d visited %u times", drop ?
			    "dropping" : "reading", i, w->seen[i]);
		commit(t);
	}

	/* Dropped: no queue entry, state expired, nothing queued left; the
	 * neighbours' queued deliveries untouched. */
	t = begin(false);
	for (i = 0; i < NRECIP; i += 3) {
		(void)snprintf(agency, sizeof(agency), "agency-%04d", i);
		cr_expect_eq(store_queue_get(st, t, agency, DSEQ0 + i, &q),
		    STORE_NOTFOUND, "%s", agency);
		cr_assert_eq(store_rstate_get(st, t, mid, agency, &rs), 0);
		cr_expect_eq(rs.state, ST_EXPIRED, "%s", agency);
	}
	memset(w, 0, sizeof(*w));
	cr_expect_eq(store_queued(st, t, mid, queued_seen, w), 0);
	cr_expect_eq(w->visits, 0);
	for (i = -1; i <= 1; i += 2) {
		uint8_t		nmid[16];
		struct rwalk	*rw;

		id_of(nmid, K_MSG, (uint32_t)(MID_N + i));
		cr_assert_not_null(rw = calloc(1, sizeof(*rw)));
		cr_expect_eq(store_rstates(st, t, nmid, rstate_count, rw), 0);
		cr_expect_eq(rw->visits, 5, "neighbour %d: %d", i,
		    rw->visits);
		free(rw);
	}
	store_abort(t);
	free(w);
}

/*
 * The payload goes only once no recipient is queued: the states of
 * recipient `queued` is ST_QUEUED, the others cycle through the final
 * states.  Rows past STORE_CHUNK put the one queued state in a later chunk
 * of the walk.
 */
Test(store, release_drops_payload_only_once_nobody_is_queued)
{
	static const uint8_t	final[4] = { ST_DELIVERED, ST_WITHHELD,
	    ST_PURGED, ST_EXPIRED };
	static const struct {
		const char	*name;
		int		 n;		/* recipients */
		int		 queued;	/* which is queued; -1 none */
	} rows[] = {
		{ "no recipients", 0, -1 },
		{ "one, queued", 1, 0 },
		{ "four, all final", 4, -1 },
		{ "three, the middle one queued", 3, 1 },
		{ "first of the second chunk queued", STORE_CHUNK + 1,
		  STORE_CHUNK },
		{ "1,000, only the last queued", NRECIP, NRECIP - 1 },
		{ "1,000, only the first queued", NRECIP, 0 },
		{ "1,000, none queued", NRECIP, -1 },
	};
	static const struct sspec	who = { PNC_A, NULL, NULL };
	uint8_t				frame[40];
	size_t				i;

	frame_fill(frame, sizeof(frame));
	for (i = 0; i < NITEMS(rows); i++) {
		struct store_txn	*t;
		struct subject_ps	 ps;
		struct msg_hdr		 h;
		struct tally		 w;
		uint8_t			 mid[16], *back;
		size_t			 len;
		bool			 kept = rows[i].queued >= 0;
		int			 j;

		setup();
		subject(&who, &ps);
		id_of(mid, K_MSG, 1);
		msg_hdr_of(&h, &ps);
		t = begin(true);
		cr_assert_eq(store_msg_put(st, t, mid, &h, frame,
		    sizeof(frame)), 0);
		cr_assert_eq(store_msg_index(st, t, mid, &ps, true), 0);
		for (j = 0; j < rows[i].n; j++) {
			struct rstate	rs = { 0 };
			char		agency[CC_ID_MAX + 1];

			(void)snprintf(agency, sizeof(agency), "agency-%04d",
			    j);
			rs.state = j == rows[i].queued ? ST_QUEUED :
			    final[j % 4];
			cr_assert_eq(store_rstate_put(st, t, mid, agency, &rs),
			    0);
		}
		commit(t);

		t = begin(true);
		cr_expect_eq(store_msg_release(st, t, mid, NULL), 0, "%s",
		    rows[i].name);
		commit(t);
		t = begin(false);
		cr_assert_eq(store_msg_get(st, t, mid, &h, NULL), 0,
		    "%s: the header must stay", rows[i].name);
		cr_expect_str_eq(h.sender, "prison.hmp-leeds");
		cr_expect_eq(h.sealed_len, kept ? sizeof(frame) +
		    SEAL_OVERHEAD : 0, "%s", rows[i].name);
		back = store_msg_frame(st, t, mid, &len);
		if (kept) {
			cr_expect_not_null(back, "%s", rows[i].name);
			free(back);
		} else
			cr_expect_null(back, "%s", rows[i].name);
		tally_init(&w, K_MSG, 2);
		cr_expect_eq(store_msgs_of_subject(st, t, &ps, tally_mid, &w),
		    0);
		cr_expect_eq(w.visits, kept ? 1u : 0u, "%s: indexed %zu",
		    rows[i].name, w.visits);
		free(w.seen);
		store_abort(t);
		/* Releasing again changes nothing. */
		t = begin(true);
		cr_expect_eq(store_msg_release(st, t, mid, NULL), 0, "%s",
		    rows[i].name);
		store_abort(t);
		teardown();
	}
}

Test(store, forget_removes_header_and_all_thousand_states, .init = setup,
    .fini = teardown)
{
	struct store_txn	*t;
	struct msg_hdr		 h;
	struct rstate		 rs;
	struct rwalk		*w;
	uint8_t			 mid[16], nmid[16];
	char			 agency[CC_ID_MAX + 1];
	int			 i;

	fanout();
	id_of(mid, K_MSG, MID_N);
	t = begin(true);
	cr_expect_eq(store_msg_forget(st, t, mid), 0);
	commit(t);

	cr_assert_not_null(w = calloc(1, sizeof(*w)));
	t = begin(false);
	cr_expect_eq(store_msg_get(st, t, mid, &h, NULL), STORE_NOTFOUND);
	cr_expect_null(store_msg_frame(st, t, mid, &(size_t){ 0 }));
	cr_expect_eq(store_rstates(st, t, mid, rstate_count, w), 0);
	cr_expect_eq(w->visits, 0, "%d states left", w->visits);
	for (i = 0; i < NRECIP; i++) {
		(void)snprintf(agency, sizeof(agency), "agency-%04d", i);
		cr_expect_eq(store_rstate_get(st, t, mid, agency, &rs),
		    STORE_NOTFOUND, "%s", agency);
	}
	/* The neighbours keep theirs. */
	for (i = -1; i <= 1; i += 2) {
		memset(w, 0, sizeof(*w));
		id_of(nmid, K_MSG, (uint32_t)(MID_N + i));
		cr_expect_eq(store_msg_get(st, t, nmid, &h, NULL), 0);
		cr_expect_eq(store_rstates(st, t, nmid, rstate_count, w), 0);
		cr_expect_eq(w->visits, 5, "neighbour %d: %d", i, w->visits);
	}
	store_abort(t);
	free(w);

	/* Forgetting what is not there is no error. */
	t = begin(true);
	cr_expect_eq(store_msg_forget(st, t, mid), 0);
	store_abort(t);
}

/* ---- expiry ---- */

Test(store, expiry_entries_come_in_time_order, .init = setup,
    .fini = teardown)
{
	static const struct {
		int64_t		at;
		uint32_t	mid;
		uint8_t		phase;
	} puts_[] = {
		{ 300, 1, 1 }, { 100, 2, 0 }, { 200, 3, 0 }, { 100, 1, 0 },
		{ 100, 1, 1 },			/* replaces the one before */
		{ 1777626000000LL, 4, 1 },
	}, order[] = {
		{ 100, 1, 1 }, { 100, 2, 0 }, { 200, 3, 0 }, { 300, 1, 1 },
		{ 1777626000000LL, 4, 1 },
	};
	struct store_txn	*t = begin(true);
	uint8_t			 mid[16], want[16], phase;
	int64_t			 at;
	size_t			 i;

	for (i = 0; i < NITEMS(puts_); i++) {
		id_of(mid, K_MSG, puts_[i].mid);
		cr_assert_eq(store_expiry_put(st, t, puts_[i].at, mid,
		    puts_[i].phase), 0);
	}
	commit(t);
	reopen();
	t = begin(true);
	for (i = 0; i < NITEMS(order); i++) {
		cr_assert_eq(store_expiry_first(st, t, &at, mid, &phase), 0,
		    "entry %zu", i);
		id_of(want, K_MSG, order[i].mid);
		cr_expect_eq(at, order[i].at, "entry %zu: at %lld", i,
		    (long long)at);
		cr_expect_eq(memcmp(mid, want, 16), 0, "entry %zu: mid %u", i,
		    num_of(mid));
		cr_expect_eq(phase, order[i].phase, "entry %zu", i);
		cr_assert_eq(store_expiry_del(st, t, at, mid), 0);
	}
	cr_expect_eq(store_expiry_first(st, t, &at, mid, &phase),
	    STORE_NOTFOUND);
	cr_expect_eq(store_expiry_del(st, t, 100, want), STORE_NOTFOUND);
	store_abort(t);
}

/*
 * Damaged rows before and after a good one: store_expiry_first removes
 * them, gives the good one, and after it finds nothing (not the damaged
 * ones, not an error, not stuck).
 */
Test(store, damaged_expiry_entry_is_removed_never_returned)
{
	enum {
		D_VAL2 = 1, D_VAL0 = 2, D_KEY5 = 4, D_KEY25 = 8, D_LATE = 16
	};
	static const struct {
		const char	*name;
		unsigned	 damage;
	} rows[] = {
		{ "value of two bytes", D_VAL2 },
		{ "empty value", D_VAL0 },
		{ "key of five bytes", D_KEY5 },
		{ "key one byte long", D_KEY25 },
		{ "damaged after the good one", D_LATE },
		{ "all of them", D_VAL2 | D_VAL0 | D_KEY5 | D_KEY25 | D_LATE },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++) {
		struct store_txn	*t;
		uint8_t			 good[16], mid[16], key[25], phase;
		int64_t			 at;
		unsigned		 d = rows[i].damage;

		setup();
		id_of(good, K_MSG, 1);
		t = begin(true);
		cr_assert_eq(store_expiry_put(st, t, 100, good, 1), 0);
		commit(t);
		id_of(key + 8, K_MSG, 9);
		key[24] = 0;
		if (d & D_VAL2) {
			be64_put(key, 50);
			raw_put("expiry", key, 24, "\x01\x01", 2);
		}
		if (d & D_VAL0) {
			be64_put(key, 60);
			raw_put("expiry", key, 24, "", 0);
		}
		if (d & D_KEY5)
			raw_put("expiry", "\0\0\0\0\0", 5, "\x01", 1);
		if (d & D_KEY25) {
			be64_put(key, 70);
			raw_put("expiry", key, 25, "\x01", 1);
		}
		if (d & D_LATE) {
			be64_put(key, 200);
			raw_put("expiry", key, 24, "\x01\x02\x03", 3);
		}
		reopen();
		t = begin(true);
		cr_expect_eq(store_expiry_first(st, t, &at, mid, &phase), 0,
		    "%s", rows[i].name);
		cr_expect_eq(at, 100, "%s: at %lld", rows[i].name,
		    (long long)at);
		cr_expect_eq(memcmp(mid, good, 16), 0, "%s", rows[i].name);
		cr_expect_eq(phase, 1, "%s", rows[i].name);
		cr_assert_eq(store_expiry_del(st, t, 100, good), 0);
		cr_expect_eq(store_expiry_first(st, t, &at, mid, &phase),
		    STORE_NOTFOUND, "%s", rows[i].name);
		commit(t);
		/* Removed for good, in the transaction that found them. */
		t = begin(true);
		cr_expect_eq(store_expiry_first(st, t, &at, mid, &phase),
		    STORE_NOTFOUND, "%s", rows[i].name);
		store_abort(t);
		teardown();
	}
}

/* ---- queues ---- */

#define LONG_ID	"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"

struct qlist {
	char	list[512];
	int	visits, stop_at;
};

static int
qlist_add(const char *agency, uint64_t dseq, const struct qent *q,
    void *arg)
{
	struct qlist	*w = arg;
	size_t		 n = strlen(w->list);

	(void)q;
	(void)snprintf(w->list + n, sizeof(w->list) - n, "%s%.4s:%llu",
	    w->visits++ > 0 ? "," : "", agency, (unsigned long long)dseq);
	return w->visits == w->stop_at ? STORE_STOP : 0;
}

Test(store, queues_put_get_next_depth_del_and_each, .init = setup,
    .fini = teardown)
{
	static const struct {
		const char	*agency;
		uint64_t	 dseq;
		int64_t		 at;
	} ents[] = {
		{ "a.one", 7, 30 }, { "a.one", 5, 50 }, { "a.one", 9, 70 },
		{ "a.one.x", 1, 10 }, { "b.two", 3, 20 }, { LONG_ID, 2, 5 },
	};
	struct store_txn	*t = begin(true);
	struct qent		 q, got;
	struct qlist		 w;
	uint64_t		 dseq;
	int64_t			 oldest;
	size_t			 i, depth;

	cr_assert_eq(strlen(LONG_ID), CC_ID_MAX);
	for (i = 0; i < NITEMS(ents); i++) {
		memset(&q, 0, sizeof(q));
		q.kind = Q_RECEIPT;
		q.state = ST_WITHHELD;
		q.reason = RS_NO_CONSENT;
		q.cats = CATSET(CAT_HOUSING);
		q.withheld = CATSET(CAT_NARRATIVE);
		q.version = (uint32_t)i;
		id_of(q.cid, K_CONSENT, (uint32_t)i);
		id_of(q.mid, K_MSG, (uint32_t)i);
		q.at_ms = ents[i].at;
		(void)snprintf(q.agency, sizeof(q.agency), "cjit.leeds");
		cr_assert_eq(store_queue_put(st, t, ents[i].agency,
		    ents[i].dseq, &q), 0);
	}
	commit(t);
	reopen();
	t = begin(true);

	/* An entry round trips whole. */
	cr_assert_eq(store_queue_get(st, t, "a.one", 5, &got), 0);
	cr_expect_eq(got.kind, Q_RECEIPT);
	cr_expect_eq(got.state, ST_WITHHELD);
	cr_expect_eq(got.reason, RS_NO_CONSENT);
	cr_expect_eq(got.cats, CATSET(CAT_HOUSING));
	cr_expect_eq(got.withheld, CATSET(CAT_NARRATIVE));
	cr_expect_eq(got.version, 1);
	cr_expect_eq(num_of(got.cid), 1);
	cr_expect_eq(num_of(got.mid), 1);
	cr_expect_eq(got.at_ms, 50);
	cr_expect_str_eq(got.agency, "cjit.leeds");

	/* One agency's queue in dseq order, never running into the next
	 * agency's (whose id it is a prefix of). */
	cr_assert_eq(store_queue_next(st, t, "a.one", 0, &dseq, &got), 0);
	cr_expect_eq(dseq, 5);
	cr_assert_eq(store_queue_next(st, t, "a.one", 5, &dseq, &got), 0);
	cr_expect_eq(dseq, 7);
	cr_expect_eq(got.at_ms, 30);
	cr_assert_eq(store_queue_next(st, t, "a.one", 7, &dseq, &got), 0);
	cr_expect_eq(dseq, 9);
	cr_expect_eq(store_queue_next(st, t, "a.one", 9, &dseq, &got),
	    STORE_NOTFOUND);
	cr_expect_eq(store_queue_next(st, t, "a", 0, &dseq, &got),
	    STORE_NOTFOUND);
	cr_assert_eq(store_queue_next(st, t, LONG_ID, 0, &dseq, &got), 0);
	cr_expect_eq(dseq, 2);

	cr_assert_eq(store_queue_depth(st, t, "a.one", &depth, &oldest), 0);
	cr_expect_eq(depth, 3);
	cr_expect_eq(oldest, 30);
	cr_assert_eq(store_queue_depth(st, t, "a.one.x", &depth, &oldest), 0);
	cr_expect_eq(depth, 1);
	cr_expect_eq(oldest, 10);
	cr_assert_eq(store_queue_depth(st, t, "a", &depth, &oldest), 0);
	cr_expect_eq(depth, 0);
	cr_expect_eq(oldest, 0);

	memset(&w, 0, sizeof(w));
	cr_expect_eq(store_queues_each(st, t, qlist_add, &w), 0);
	cr_expect_str_eq(w.list, "a.on:5,a.on:7,a.on:9,a.on:1,b.tw:3,zzzz:2");
	memset(&w, 0, sizeof(w));
	w.stop_at = 2;
	cr_expect_eq(store_queues_each(st, t, qlist_add, &w), STORE_STOP);
	cr_expect_str_eq(w.list, "a.on:5,a.on:7");

	cr_expect_eq(store_queue_del(st, t, "a.one", 7), 0);
	cr_expect_eq(store_queue_get(st, t, "a.one", 7, &got),
	    STORE_NOTFOUND);
	cr_expect_eq(store_queue_del(st, t, "a.one", 7), STORE_NOTFOUND);
	cr_assert_eq(store_queue_next(st, t, "a.one", 5, &dseq, &got), 0);
	cr_expect_eq(dseq, 9);
	cr_assert_eq(store_queue_depth(st, t, "a.one", &depth, &oldest), 0);
	cr_expect_eq(depth, 2);
	cr_expect_eq(oldest, 50);
	commit(t);
}

/* ---- backup ---- */

static void
copy_file(const char *from, const char *to, mode_t mode)
{
	char	buf[256];
	ssize_t	n;
	int	in, out;

	cr_assert_neq(in = open(from, O_RDONLY), -1, "%s", from);
	cr_assert_neq(out = open(to, O_WRONLY | O_CREAT | O_EXCL, mode), -1,
	    "%s: %s", to, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	cr_assert_eq(n, 0);
	cr_assert_eq(fchmod(out, mode), 0);
	close(in);
	close(out);
}

/*
 * The copy's directory is 0700 and its data file 0600 whatever the umask
 * and the directory's earlier mode; an existing copy is never
 * overwritten; the copy opens (with the key beside it) and holds the data.
 */
Test(store, backup_is_private_never_overwrites_and_opens)
{
	static const struct {
		const char	*name;
		mode_t		 mask;
		int		 premade;	/* directory's mode, -1: none */
	} rows[] = {
		{ "a new directory under umask 022", 022, -1 },
		{ "a new directory under umask 0", 0, -1 },
		{ "an existing 0755 directory under umask 0", 0, 0755 },
		{ "an existing 0777 directory under umask 0", 0, 0777 },
	};
	const struct store_counters	 want = { 11, 12, 13, 14, 15, 16, 17 };
	uint8_t				 frame[50];
	size_t				 i;

	frame_fill(frame, sizeof(frame));
	for (i = 0; i < NITEMS(rows); i++) {
		struct store_counters	 c;
		struct store_txn	*t;
		struct store		*copy;
		struct msg_hdr		 h;
		struct stat		 sb, sb2;
		char			 bdir[128], path[160], from[160];
		char			 err[512], want_err[512];
		uint8_t			 mid[16], *back;
		size_t			 len;
		mode_t			 old;

		setup();
		id_of(mid, K_MSG, 1);
		msg_hdr_of(&h, NULL);
		t = begin(true);
		cr_assert_eq(store_counters_put(st, t, &want), 0);
		cr_assert_eq(store_msg_put(st, t, mid, &h, frame,
		    sizeof(frame)), 0);
		commit(t);

		(void)snprintf(bdir, sizeof(bdir), "%s/backup", tmp);
		(void)snprintf(path, sizeof(path), "%s/data.mdb", bdir);
		old = umask(rows[i].mask);
		if (rows[i].premade != -1) {
			cr_assert_eq(mkdir(bdir, 0700), 0);
			cr_assert_eq(chmod(bdir, (mode_t)rows[i].premade), 0);
		}
		cr_expect_eq(store_backup(st, bdir, err, sizeof(err)), 0,
		    "%s: %s", rows[i].name, err);
		cr_assert_eq(stat(bdir, &sb), 0);
		cr_expect_eq(sb.st_mode & 07777, 0700, "%s: directory %o",
		    rows[i].name, (unsigned)(sb.st_mode & 07777));
		cr_assert_eq(stat(path, &sb), 0);
		cr_expect_eq(sb.st_mode & 07777, 0600, "%s: data.mdb %o",
		    rows[i].name, (unsigned)(sb.st_mode & 07777));

		/* A second backup into the same place is refused and the
		 * first copy left as it was. */
		(void)snprintf(want_err, sizeof(want_err), "backup to %s: %s",
		    bdir, strerror(EEXIST));
		err[0] = '\0';
		cr_expect_eq(store_backup(st, bdir, err, sizeof(err)), -1,
		    "%s", rows[i].name);
		cr_expect_str_eq(err, want_err, "%s", rows[i].name);
		cr_assert_eq(stat(path, &sb2), 0);
		cr_expect_eq(sb2.st_ino, sb.st_ino);
		cr_expect_eq(sb2.st_size, sb.st_size);
		cr_expect_eq(sb2.st_mtim.tv_sec, sb.st_mtim.tv_sec);
		cr_expect_eq(sb2.st_mtim.tv_nsec, sb.st_mtim.tv_nsec);
		umask(old);

		/* The copy, with the store's key beside it, is a store. */
		(void)snprintf(from, sizeof(from), "%s/%s", dir, SEAL_KEYFILE);
		(void)snprintf(path, sizeof(path), "%s/%s", bdir,
		    SEAL_KEYFILE);
		copy_file(from, path, 0600);
		cr_assert_eq(store_open(&copy, bdir, MAP_MB, true, err,
		    sizeof(err)), 0, "%s: %s", rows[i].name, err);
		cr_assert_eq(store_begin(copy, false, &t), 0);
		cr_assert_eq(store_counters_get(copy, t, &c), 0);
		cr_expect_eq(memcmp(&c, &want, sizeof(c)), 0, "%s",
		    rows[i].name);
		back = store_msg_frame(copy, t, mid, &len);
		cr_expect_not_null(back, "%s", rows[i].name);
		if (back != NULL)
			cr_expect_eq(memcmp(back, frame, sizeof(frame)), 0);
		free(back);
		store_abort(t);
		store_close(&copy);
		teardown();
	}
}

/* ---- what store_open refuses ---- */

Test(store, open_refuses_a_directory_others_can_reach)
{
	static const mode_t	modes[] = { 0750, 0705, 0710, 0701, 0770,
	    0755, 0777, 0700 };
	size_t			i;

	setup();
	store_close(&st);
	for (i = 0; i < NITEMS(modes); i++) {
		char	err[256], want[256];
		int	rc;

		cr_assert_eq(chmod(dir, modes[i]), 0);
		err[0] = '\0';
		rc = store_open(&st, dir, MAP_MB, false, err, sizeof(err));
		if (modes[i] == 0700) {
			cr_expect_eq(rc, 0, "0700: %s", err);
			store_close(&st);
			continue;
		}
		(void)snprintf(want, sizeof(want), "%s: accessible by group "
		    "or others (chmod 700)", dir);
		cr_expect_eq(rc, -1, "%o opened", (unsigned)modes[i]);
		cr_expect_null(st);
		cr_expect_str_eq(err, want, "%o", (unsigned)modes[i]);
	}
	cr_assert_eq(chmod(dir, 0700), 0);
	teardown();
}

Test(store, open_refuses_a_store_of_another_format)
{
	static const uint32_t	f1 = 1, f2 = 2, f3 = 3, f4 = 4, f5 = 5,
				f6 = 6;
	static const struct {
		const char	*name;
		const void	*format;	/* NULL: record removed */
		size_t		 len;
		bool		 other_meta;	/* counters stored first */
		bool		 readonly;
		const char	*err;		/* NULL: opens */
	} rows[] = {
		{ "format 5", &f5, 4, false, false, NULL },
		{ "format 4, upgraded when opened to write", &f4, 4, false,
		  false, NULL },
		{ "format 4, read-only", &f4, 4, false, true,
		  "store format 4: start the broker once to upgrade it to "
		  "format 5" },
		{ "format 3, upgraded when opened to write", &f3, 4, false,
		  false, NULL },
		{ "format 3, read-only", &f3, 4, false, true,
		  "store format 3: start the broker once to upgrade it to "
		  "format 5" },
		{ "format 2, upgraded when opened to write", &f2, 4, false,
		  false, NULL },
		{ "format 2, read-only", &f2, 4, false, true,
		  "store format 2: start the broker once to upgrade it to "
		  "format 5" },
		{ "format 6", &f6, 4, false, false,
		  "store format 6, but this ccbroker reads format 5 (a later "
		  "ccbroker's store, or its format record damaged)" },
		{ "format 1 recorded", &f1, 4, false, false,
		  "store format 1, but this ccbroker reads format 5" },
		{ "format record of two bytes", &f2, 2, false, false,
		  "store damaged: its format record is 2 bytes" },
		{ "no format record beside other metadata", NULL, 0, true,
		  false, "store format 1 (an earlier ccbroker), but this "
		  "ccbroker reads format 5" },
		{ "no format record in an empty store", NULL, 0, false, false,
		  NULL },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++) {
		char	err[256] = "";
		int	rc;

		setup();
		if (rows[i].other_meta) {
			struct store_counters	 c = { 1, 0, 0, 0, 0, 0, 0 };
			struct store_txn	*t = begin(true);

			cr_assert_eq(store_counters_put(st, t, &c), 0);
			commit(t);
		}
		if (rows[i].format != NULL)
			raw_put("meta", META_FORMAT, strlen(META_FORMAT),
			    rows[i].format, rows[i].len);
		else
			raw_del("meta", META_FORMAT, strlen(META_FORMAT));
		rc = store_open(&st, dir, MAP_MB, rows[i].readonly, err,
		    sizeof(err));
		if (rows[i].err == NULL) {
			cr_expect_eq(rc, 0, "%s: %s", rows[i].name, err);
		} else {
			cr_expect_eq(rc, -1, "%s opened", rows[i].name);
			cr_expect_null(st);
			cr_expect_str_eq(err, rows[i].err, "%s", rows[i].name);
		}
		teardown();
	}
}
