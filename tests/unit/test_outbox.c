/*
 * test_outbox.c - the agent's LMDB store (agent/outbox.c) in a temporary
 * directory: the outbox's order and sequence numbers, every file queued
 * whatever its mid (a file taken again after a crash once), the seen-set,
 * pruning by age, and corruption reported, never taken for the end of the
 * data.
 *
 * Where a test needs what the API cannot make (old times, corrupt values,
 * a broken page) it closes the store and writes the LMDB files itself.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "bytes.h"
#include "outbox.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define DAY_MS		(86400LL * 1000)
#define MANY		1000

static char		 dir[PATH_MAX];	/* this test's data directory */
static struct outbox	*ob;

static void	setup(void);
static void	teardown(void);
static void	reopen(void);
static void	mid_of(unsigned, char[CC_UUID_LEN + 1]);
static MDB_env	*raw_open(MDB_txn **);
static void	raw_put(MDB_txn *, const char *, const void *, size_t,
		    const void *, size_t);
static void	raw_close(MDB_env *, MDB_txn *);
static size_t	break_branches(size_t);

static void
setup(void)
{
	char	err[256];

	(void)snprintf(dir, sizeof(dir), "%s/cc-outbox-XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	ob = outbox_open(dir, err, sizeof(err));
	cr_assert_not_null(ob, "outbox_open: %s", err);
}

static void
teardown(void)
{
	char	cmd[PATH_MAX + 16];

	outbox_close(&ob);
	if (getenv("KEEP") == NULL) {
		(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		cr_assert_eq(system(cmd), 0);
	}
}

TestSuite(outbox, .init = setup, .fini = teardown);

static void
reopen(void)
{
	char	err[256];

	outbox_close(&ob);
	cr_assert_null(ob);
	ob = outbox_open(dir, err, sizeof(err));
	cr_assert_not_null(ob, "outbox_open again: %s", err);
}

/* A distinct, valid mid for each n. */
static void
mid_of(unsigned n, char mid[CC_UUID_LEN + 1])
{
	(void)snprintf(mid, CC_UUID_LEN + 1,
	    "00000000-0000-4000-8000-%012u", n);
}

/* The store's own environment, closed by the API first; a write txn. */
static MDB_env *
raw_open(MDB_txn **txn)
{
	MDB_env	*env;

	outbox_close(&ob);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 6), 0);
	cr_assert_eq(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, txn), 0);
	return env;
}

static void
raw_put(MDB_txn *txn, const char *db, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	MDB_dbi	dbi;
	MDB_val	k = { klen, (void *)key }, v = { vlen, (void *)val };

	cr_assert_eq(mdb_dbi_open(txn, db, 0, &dbi), 0, "no database %s", db);
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
}

/* Commit and close; the next reopen() goes through the API again. */
static void
raw_close(MDB_env *env, MDB_txn *txn)
{
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/*
 * Point every child but the first of every branch page in data.mdb past
 * the end of the map, so that a cursor crossing into one gets
 * MDB_PAGE_NOTFOUND: a damaged file, as a bad disk leaves it.  The layout
 * is LMDB 0.9's (mdb.c): a 16-byte page header (pgno, pad, flags, lower,
 * upper), node offsets up to `lower`, and a branch node starting with its
 * child's page number in three 16-bit words.  Returns how many children
 * it broke.
 */
static size_t
break_branches(size_t psize)
{
	char		 path[PATH_MAX + 16];
	unsigned char	*page;
	uint16_t	 flags, lower, off, ones[3] = { 0xffff, 0xffff, 0xffff };
	size_t		 nodes, i, broken = 0;
	off_t		 at;
	int		 fd;

	(void)snprintf(path, sizeof(path), "%s/data.mdb", dir);
	cr_assert_neq(fd = open(path, O_RDWR), -1);
	cr_assert_not_null(page = malloc(psize));
	for (at = 0; pread(fd, page, psize, at) == (ssize_t)psize;
	    at += (off_t)psize) {
		memcpy(&flags, page + 10, 2);
		memcpy(&lower, page + 12, 2);
		/* Branch pages only: not meta (0x08) nor overflow (0x04). */
		if ((flags & 0x0f) != 0x01 || lower < 16 || lower > psize)
			continue;
		nodes = (size_t)(lower - 16) / 2;
		for (i = 1; i < nodes; i++) {
			memcpy(&off, page + 16 + 2 * i, 2);
			if (off + sizeof(ones) > psize)
				continue;
			memcpy(page + off, ones, sizeof(ones));
			broken++;
		}
		cr_assert_eq(pwrite(fd, page, psize, at), (ssize_t)psize);
	}
	free(page);
	cr_assert_eq(fsync(fd), 0);
	(void)close(fd);
	return broken;
}

/* Entries come back oldest first, with exactly the fields they went in. */
Test(outbox, entries_come_back_in_arrival_order_with_their_fields)
{
	static const struct {
		const char	*mid, *name, *json;
	} in[] = {
		{ "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "plan-1.json",
		  "{\"type\":\"release-plan\"}" },
		{ "0b6a4c57-1d2e-4f3a-9b8c-7d6e5f4a3b2c", "a.json", "{}" },
		{ "a3b2c1d0-e9f8-4a7b-8c6d-5e4f3a2b1c0d", "zz.json",
		  "{\"notes\":\"caf\xc3\xa9\"}" },
	};
	struct outbox_entry	e;
	uint64_t		seq, after = 0;
	size_t			i;

	for (i = 0; i < NITEMS(in); i++) {
		cr_assert_eq(outbox_put(ob, in[i].mid, in[i].name, in[i].json,
		    &seq), 1, "%s", outbox_error(ob));
		cr_assert_eq(seq, i + 1);
	}
	cr_assert_eq(outbox_count(ob), NITEMS(in));
	for (i = 0; i < NITEMS(in); i++) {
		cr_assert_eq(outbox_next(ob, after, &e), 0, "%s",
		    outbox_error(ob));
		cr_expect_eq(e.seq, i + 1);
		cr_expect_str_eq(e.mid, in[i].mid);
		cr_expect_str_eq(e.name, in[i].name);
		cr_expect_str_eq(e.json, in[i].json);
		after = e.seq;
		outbox_entry_free(&e);
		cr_assert_null(e.json);
	}
	cr_assert_eq(outbox_next(ob, after, &e), 1);
	cr_assert_null(e.json);
}

/* next(after) is the first entry past `after`, gaps and all. */
Test(outbox, next_skips_to_the_first_entry_after_the_given_seq)
{
	static const struct {
		uint64_t	after;
		int		rc;
		uint64_t	seq;
	} cases[] = {
		{ 0, 0, 1 }, { 1, 0, 4 }, { 2, 0, 4 }, { 3, 0, 4 }, { 4, 0, 5 },
		{ 5, 1, 0 }, { 99, 1, 0 },
	};
	struct outbox_entry	e;
	char			mid[CC_UUID_LEN + 1];
	uint64_t		seq;
	unsigned		n;
	size_t			i;
	int			rc;

	for (n = 1; n <= 5; n++) {
		mid_of(n, mid);
		cr_assert_eq(outbox_put(ob, mid, "f.json", "{}", &seq), 1);
	}
	mid_of(2, mid);
	cr_assert_eq(outbox_done(ob, 2), 0);
	mid_of(3, mid);
	cr_assert_eq(outbox_done(ob, 3), 0);
	for (i = 0; i < NITEMS(cases); i++) {
		rc = outbox_next(ob, cases[i].after, &e);
		cr_expect_eq(rc, cases[i].rc, "after %llu: %d",
		    (unsigned long long)cases[i].after, rc);
		if (rc == 0)
			cr_expect_eq(e.seq, cases[i].seq, "after %llu",
			    (unsigned long long)cases[i].after);
		outbox_entry_free(&e);
	}
}

/*
 * Every file is queued, whatever its mid: one of a mid queued already, or
 * answered already, is answered by the broker again and filed with its
 * own answer (DESIGN §6).  No mid is ever refused here.
 */
Test(outbox, every_file_is_queued_whatever_its_mid)
{
	const char	*a = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f";
	const char	*b = "0b6a4c57-1d2e-4f3a-9b8c-7d6e5f4a3b2c";
	uint64_t	 seq = 0;

	cr_assert_eq(outbox_put(ob, a, "a.json", "{\"n\":1}", &seq), 1);
	cr_assert_eq(seq, 1);
	/* Another file of a queued mid, changed or not. */
	cr_assert_eq(outbox_put(ob, a, "a2.json", "{\"n\":2}", &seq), 1);
	cr_assert_eq(seq, 2);
	cr_assert_eq(outbox_put(ob, a, "a3.json", "{\"n\":1}", &seq), 1);
	cr_assert_eq(seq, 3);
	cr_assert_eq(outbox_put(ob, b, "b.json", "{}", &seq), 1);
	cr_assert_eq(seq, 4);
	cr_assert_eq(outbox_done(ob, 1), 0);
	/* The same file again once it was answered: a re-send. */
	cr_assert_eq(outbox_put(ob, a, "a.json", "{\"n\":1}", &seq), 1);
	cr_assert_eq(seq, 5);
	reopen();
	cr_assert_eq(outbox_count(ob), 4);
	cr_assert_eq(outbox_put(ob, b, "b2.json", "{}", &seq), 1);
	cr_assert_eq(seq, 6);
}

/*
 * A file queued and then kept in out/ by a crash is taken again: the last
 * record queued from its name, unanswered and alike (mid and json), says
 * it is the same file, which is queued once.  Anything else is a new file.
 */
Test(outbox, a_file_taken_again_before_it_left_out_is_queued_once)
{
	static const struct {
		const char	*name, *mid, *json;
		int		 rc;
	} cases[] = {
		{ "a.json", "00000000-0000-4000-8000-000000000001", "{}", 1 },
		{ "a.json", "00000000-0000-4000-8000-000000000001", "{}", 0 },
		{ "a.json", "00000000-0000-4000-8000-000000000001", "{ }", 1 },
		{ "a.json", "00000000-0000-4000-8000-000000000001", "{ }", 0 },
		/* An earlier record of the name is no longer the last. */
		{ "a.json", "00000000-0000-4000-8000-000000000001", "{}", 1 },
		{ "a.json", "00000000-0000-4000-8000-000000000002", "{}", 1 },
		{ "b.json", "00000000-0000-4000-8000-000000000002", "{}", 1 },
		{ "b.json", "00000000-0000-4000-8000-000000000002", "{}", 0 },
	};
	uint64_t	seq;
	size_t		i;

	for (i = 0; i < NITEMS(cases); i++)
		cr_expect_eq(outbox_put(ob, cases[i].mid, cases[i].name,
		    cases[i].json, &seq), cases[i].rc, "case %zu: %s", i,
		    outbox_error(ob));
	cr_assert_eq(outbox_count(ob), 5);
	reopen();
	cr_expect_eq(outbox_put(ob, cases[7].mid, "b.json", "{}", &seq), 0,
	    "forgotten across reopen");
	/* Answered, it may come again: a re-send of the file. */
	cr_assert_eq(outbox_done(ob, 5), 0);
	cr_expect_eq(outbox_put(ob, cases[7].mid, "b.json", "{}", &seq), 1);
	cr_expect_eq(seq, 6);
	/* done of an entry the name no longer points at keeps the name's. */
	cr_assert_eq(outbox_done(ob, 1), 0);
	cr_expect_eq(outbox_put(ob, cases[5].mid, "a.json", "{}", &seq), 0);
}

/* An earlier agent's sets of mids (outmid, done) go when it opens. */
Test(outbox, an_earlier_agents_mid_sets_are_removed)
{
	static const char *const old[] = { "outmid", "done" };
	const char	*mid = "00000000-0000-4000-8000-000000000001";
	MDB_env		*env;
	MDB_txn		*txn;
	MDB_dbi		 dbi;
	uint64_t	 seq;
	uint8_t		 t[8];
	size_t		 i;

	env = raw_open(&txn);
	be64_put(t, 1);
	for (i = 0; i < NITEMS(old); i++) {
		cr_assert_eq(mdb_dbi_open(txn, old[i], MDB_CREATE, &dbi), 0);
		raw_put(txn, old[i], mid, strlen(mid), t, sizeof(t));
	}
	raw_close(env, txn);
	reopen();
	cr_expect_eq(outbox_put(ob, mid, "f.json", "{}", &seq), 1,
	    "a mid of the old sets was not queued");
	env = raw_open(&txn);
	for (i = 0; i < NITEMS(old); i++)
		cr_expect_eq(mdb_dbi_open(txn, old[i], 0, &dbi), MDB_NOTFOUND,
		    "%s is still there", old[i]);
	raw_close(env, txn);
	reopen();
}

/* A seq is never given twice, even after the outbox ran empty. */
Test(outbox, sequence_numbers_survive_close_and_reopen_even_when_empty)
{
	struct outbox_entry	e;
	char			mid[CC_UUID_LEN + 1];
	uint64_t		seq;
	unsigned		n;

	for (n = 1; n <= 3; n++) {
		mid_of(n, mid);
		cr_assert_eq(outbox_put(ob, mid, "f.json", "{}", &seq), 1);
		cr_assert_eq(seq, n);
	}
	reopen();
	cr_assert_eq(outbox_count(ob), 3);
	cr_assert_eq(outbox_next(ob, 0, &e), 0);
	cr_assert_eq(e.seq, 1);
	outbox_entry_free(&e);
	for (n = 1; n <= 3; n++) {
		mid_of(n, mid);
		cr_assert_eq(outbox_done(ob, n), 0);
	}
	cr_assert_eq(outbox_count(ob), 0);
	reopen();
	cr_assert_eq(outbox_next(ob, 0, &e), 1);
	mid_of(4, mid);
	cr_assert_eq(outbox_put(ob, mid, "f.json", "{}", &seq), 1);
	cr_assert_eq(seq, 4, "seq %llu given after reopen",
	    (unsigned long long)seq);
}

/* done removes one entry, keeps the rest, and may be repeated. */
Test(outbox, done_removes_the_entry_and_keeps_the_others)
{
	struct outbox_entry	e;
	char			mid[CC_UUID_LEN + 1];
	uint64_t		seq;
	unsigned		n;

	for (n = 1; n <= 3; n++) {
		mid_of(n, mid);
		cr_assert_eq(outbox_put(ob, mid, "f.json", "{}", &seq), 1);
	}
	mid_of(1, mid);
	cr_assert_eq(outbox_done(ob, 1), 0);
	cr_assert_eq(outbox_done(ob, 1), 0, "a second done failed");
	cr_assert_eq(outbox_count(ob), 2);
	cr_assert_eq(outbox_next(ob, 0, &e), 0);
	cr_expect_eq(e.seq, 2);
	mid_of(2, mid);
	cr_expect_str_eq(e.mid, mid);
	outbox_entry_free(&e);
	reopen();
	cr_assert_eq(outbox_count(ob), 2);
}

/* Names and mids that do not fit an entry are refused, not cut. */
Test(outbox, names_and_mids_of_a_bad_length_are_refused)
{
	static char	long_name[OUTBOX_NAME_MAX + 2], max_name[OUTBOX_NAME_MAX + 1];
	static const struct {
		const char	*mid;
		int		 name;	/* 0: "f.json", 1: 255 bytes, 2: 256 */
		int		 rc;
	} cases[] = {
		{ "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f", 1, 1 },
		{ "0b6a4c57-1d2e-4f3a-9b8c-7d6e5f4a3b2c", 2, -1 },
		{ "0b6a4c57-1d2e-4f3a-9b8c-7d6e5f4a3b2c0", 0, -1 },
		{ "", 0, -1 },
	};
	const char	*names[3] = { "f.json", max_name, long_name };
	uint64_t	 seq;
	size_t		 i;

	memset(max_name, 'n', OUTBOX_NAME_MAX);
	memset(long_name, 'n', OUTBOX_NAME_MAX + 1);
	for (i = 0; i < NITEMS(cases); i++)
		cr_expect_eq(outbox_put(ob, cases[i].mid,
		    names[cases[i].name], "{}", &seq), cases[i].rc,
		    "case %zu", i);
	cr_assert_eq(outbox_count(ob), 1);
}

/* The seen-set remembers keys durably and only the keys given. */
Test(outbox, seen_keys_are_remembered_across_reopen)
{
	static const char *const keys[] = {
		"6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
		"6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f.cjit.leeds.delivered",
		"6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f.cjit.leeds.withheld",
	};
	size_t	i;

	for (i = 0; i < NITEMS(keys); i++)
		cr_assert_eq(outbox_seen(ob, keys[i]), 0);
	cr_assert_eq(outbox_seen_put(ob, keys[0]), 0);
	cr_assert_eq(outbox_seen_put(ob, keys[1]), 0);
	reopen();
	cr_expect_eq(outbox_seen(ob, keys[0]), 1);
	cr_expect_eq(outbox_seen(ob, keys[1]), 1);
	cr_expect_eq(outbox_seen(ob, keys[2]), 0);
	cr_expect_eq(outbox_seen(ob, ""), -1, "an empty key is no key");
}

/* prune forgets seen keys older than the age, only. */
Test(outbox, prune_forgets_only_keys_older_than_max_age)
{
	static const struct {
		const char	*db, *key;
		int64_t		 age_days;
		bool		 kept;
	} cases[] = {
		{ "seen", "s-today", 0, true },
		{ "seen", "s-89-days", 89, true },
		{ "seen", "s-91-days", 91, false },
		{ "seen", "s-a-year", 365, false },
		{ "seen", "s-in-the-future", -2, true },
	};
	MDB_env		*env;
	MDB_txn		*txn;
	uint8_t		 t[8];
	int64_t		 now = cc_time_now_ms();
	size_t		 i;

	env = raw_open(&txn);
	for (i = 0; i < NITEMS(cases); i++) {
		be64_put(t, (uint64_t)(now - cases[i].age_days * DAY_MS));
		raw_put(txn, cases[i].db, cases[i].key, strlen(cases[i].key),
		    t, sizeof(t));
	}
	raw_close(env, txn);
	reopen();
	cr_assert_eq(outbox_prune(ob, 90 * DAY_MS), 0, "%s", outbox_error(ob));
	for (i = 0; i < NITEMS(cases); i++)
		cr_expect_eq(outbox_seen(ob, cases[i].key),
		    cases[i].kept ? 1 : 0, "%s", cases[i].key);
}

/* A value of the wrong shape is reported by the call that meets it. */
Test(outbox, corrupt_values_are_reported_not_skipped)
{
	enum call { NEXT, PUT, PRUNE };
	static const struct {
		const char	*name;
		const char	*db;
		const char	*key;
		size_t		 klen;
		const char	*val;
		size_t		 vlen;
		enum call	 call;
		const char	*error;		/* in outbox_error() */
	} cases[] = {
		{ "outbox_value_without_separators", "outbox",
		  "\0\0\0\0\0\0\0\1", 8, "no-nul-anywhere", 15, NEXT,
		  "corrupt entry" },
		{ "outbox_value_without_json_separator", "outbox",
		  "\0\0\0\0\0\0\0\1", 8, "f.json\0mid-only", 15, NEXT,
		  "corrupt entry" },
		{ "outbox_key_not_8_bytes", "outbox", "\0\0\0\1", 4,
		  "f.json\0" "00000000-0000-4000-8000-000000000001\0{}", 46,
		  NEXT, "key of 4 bytes" },
		{ "outbox_last_key_not_8_bytes", "outbox", "\xff\xff\xff", 3,
		  "f.json\0" "00000000-0000-4000-8000-000000000001\0{}", 46,
		  PUT, "wrong size" },
		{ "meta_seq_not_8_bytes", "meta", "seq", 3, "\0\0\1", 3, PUT,
		  "meta: a key or value of the wrong size" },
		{ "seen_time_not_8_bytes", "seen", "k", 1, "\0\0\1", 3, PRUNE,
		  "seen: a time of 3 bytes" },
		{ "outname_seq_not_8_bytes", "outname", "f.json", 6, "\0\1",
		  2, PUT, "outname: a key or value of the wrong size" },
	};
	struct outbox_entry	 e;
	MDB_env			*env;
	MDB_txn			*txn;
	uint64_t		 seq;
	size_t			 i;
	int			 rc = 0;

	for (i = 0; i < NITEMS(cases); i++) {
		env = raw_open(&txn);
		raw_put(txn, cases[i].db, cases[i].key, cases[i].klen,
		    cases[i].val, cases[i].vlen);
		raw_close(env, txn);
		reopen();
		switch (cases[i].call) {
		case NEXT:
			rc = outbox_next(ob, 0, &e);
			outbox_entry_free(&e);
			break;
		case PUT:
			rc = outbox_put(ob, "6f1c2d3e-4a5b-4c6d-8e9f-"
			    "0a1b2c3d4e5f", "f.json", "{}", &seq);
			break;
		case PRUNE:
			rc = outbox_prune(ob, 0);
			break;
		}
		cr_expect_eq(rc, -1, "%s: %d", cases[i].name, rc);
		cr_expect_not_null(strstr(outbox_error(ob), cases[i].error),
		    "%s: error '%s'", cases[i].name, outbox_error(ob));
		/* Undo it for the next case. */
		env = raw_open(&txn);
		{
			MDB_dbi	dbi;
			MDB_val	k = { cases[i].klen, (void *)cases[i].key };

			cr_assert_eq(mdb_dbi_open(txn, cases[i].db, 0, &dbi),
			    0);
			cr_assert_eq(mdb_del(txn, dbi, &k, NULL), 0);
		}
		raw_close(env, txn);
		reopen();
	}
}

/*
 * A cursor error part-way through a walk (here a damaged branch page) is
 * reported: prune must not pass for finished, nor next say "no more" while
 * records wait behind the damage.
 */
Test(outbox, a_cursor_error_mid_walk_is_reported_not_taken_as_the_end)
{
	struct outbox_entry	 e;
	MDB_env			*env;
	MDB_txn			*txn;
	MDB_stat		 st;
	uint8_t			 key[8], t[8];
	char			 k[64], val[128];
	uint64_t		 seq;
	size_t			 psize;
	unsigned		 n;

	/* Enough of each for several leaf pages under a branch page. */
	env = raw_open(&txn);
	be64_put(t, (uint64_t)cc_time_now_ms());
	for (n = 1; n <= 2000; n++) {
		(void)snprintf(k, sizeof(k), "seen-key-%06u", n);
		raw_put(txn, "seen", k, strlen(k), t, sizeof(t));
		be64_put(key, n);
		(void)snprintf(val, sizeof(val), "f%u.json%c"
		    "00000000-0000-4000-8000-%012u%c{}", n, '\0', n, '\0');
		raw_put(txn, "outbox", key, sizeof(key), val,
		    strlen(val) + 1 + CC_UUID_LEN + 1 + 2);
	}
	cr_assert_eq(mdb_env_stat(env, &st), 0);
	psize = st.ms_psize;
	raw_close(env, txn);
	cr_assert_gt(break_branches(psize), 0, "no branch page to break");
	reopen();

	cr_expect_eq(outbox_prune(ob, 90 * DAY_MS), -1,
	    "prune walked past a broken page");
	cr_expect_not_null(strstr(outbox_error(ob), "MDB_PAGE_NOTFOUND"),
	    "error '%s'", outbox_error(ob));
	/* The first leaf is intact; the last entries lie behind the damage. */
	cr_expect_eq(outbox_next(ob, 0, &e), 0, "%s", outbox_error(ob));
	outbox_entry_free(&e);
	cr_expect_eq(outbox_next(ob, 1999, &e), -1,
	    "next took a broken page for the end");
	cr_expect_not_null(strstr(outbox_error(ob), "MDB_PAGE_NOTFOUND"),
	    "error '%s'", outbox_error(ob));
	cr_expect_eq(outbox_put(ob, "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
	    "f.json", "{}", &seq), -1, "put took a broken page for no seq");
}

/* Ten thousand records: every one comes back, once, in order. */
Test(outbox, a_thousand_entries_in_order_then_none, .timeout = 300)
{
	struct outbox_entry	e;
	char			mid[CC_UUID_LEN + 1], name[32];
	uint64_t		seq, after = 0;
	unsigned		n;

	for (n = 1; n <= MANY; n++) {
		mid_of(n, mid);
		(void)snprintf(name, sizeof(name), "r%05u.json", n);
		cr_assert_eq(outbox_put(ob, mid, name, "{\"n\":1}", &seq), 1,
		    "put %u: %s", n, outbox_error(ob));
		cr_assert_eq(seq, n);
	}
	cr_assert_eq(outbox_count(ob), MANY);
	reopen();
	for (n = 1; n <= MANY; n++) {
		cr_assert_eq(outbox_next(ob, after, &e), 0, "next %u: %s", n,
		    outbox_error(ob));
		mid_of(n, mid);
		cr_assert_eq(e.seq, n);
		cr_assert_str_eq(e.mid, mid);
		cr_assert_eq(outbox_done(ob, e.seq), 0);
		after = e.seq;
		outbox_entry_free(&e);
	}
	cr_assert_eq(outbox_next(ob, 0, &e), 1);
	cr_assert_eq(outbox_count(ob), 0);
}
