/*
 * store.c - the LMDB environment: opening, transactions, errors, usage,
 * backup, the dseq counter and the metadata (counters, online list,
 * subscriptions).
 */
#define _GNU_SOURCE	/* fallocate */
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store_impl.h"

/*
 * The layout of the databases.  A store of another format is refused
 * rather than misread (format 1, before the subject index named messages,
 * had no format record), but for format 2 (values without integrity tags,
 * every consent in cview), which a broker upgrades when it opens it.
 */
#define STORE_FORMAT	3
#define FORMAT_UNTAGGED	2
#define DSEQ_GAP	(1ULL << 32)	/* after a damaged dseq */

static const char *meta_fault(const uint8_t *, int, size_t, size_t,
		    size_t *);
static int	metas_sound(const char *, char *, size_t);
static int	freelist_sound(struct store *, char *, size_t);
static void	on_fault(int);
static void	on_lmdb_assert(MDB_env *, const char *);
static int	format_check(struct store *, MDB_txn *, char *, size_t);
static int	format_put(struct store *, MDB_txn *, uint32_t);
static int	dseq_recover(struct store *, MDB_txn *, bool);
static int	upgrade(struct store *, MDB_txn *);
static int	retag(struct store *, MDB_txn *, MDB_dbi, uint8_t dom,
		    bool meta, size_t (*)(const MDB_val *));
static size_t	clear_msg(const MDB_val *);
static size_t	clear_consent(const MDB_val *);

struct dbdef {
	const char	*name;
	size_t		 off;
	unsigned	 flags;
};

static const struct dbdef dbdefs[] = {
	{ "meta",	offsetof(struct store, meta),	 0 },
	{ "consent",	offsetof(struct store, consent), 0 },
	{ "cview",	offsetof(struct store, cview),	 0 },
	{ "csubj",	offsetof(struct store, csubj),	 0 },
	{ "msg",	offsetof(struct store, msg),	 0 },
	{ "queue",	offsetof(struct store, queue),	 0 },
	{ "qsubj",	offsetof(struct store, qsubj),	 MDB_DUPSORT },
	{ "rstate",	offsetof(struct store, rstate),	 0 },
	{ "expiry",	offsetof(struct store, expiry),	 0 },
	{ "subs",	offsetof(struct store, subs),	 0 },
	{ "audit",	offsetof(struct store, audit),	 0 },
};

static const char *const rc_words[STORE__COUNT] = {
	[STORE_OK] = "no error",
	[STORE_NOTFOUND] = "not found",
	[STORE_EXISTS] = "already exists",
	[STORE_FULL] = "store full",
	[STORE_CORRUPT] = "store damaged",
	[STORE_BUSY] = "store busy",
	[STORE_IO] = "I/O error",
	[STORE_NOMEM] = "out of memory",
	[STORE_STOP] = "stopped",
};

const char *
store_strerror(int rc)
{
	return rc >= 0 && rc < STORE__COUNT ? rc_words[rc] : "unknown error";
}

int
store_rc(int rc, const char *what)
{
	switch (rc) {
	case 0:
		return STORE_OK;
	case MDB_NOTFOUND:
		return STORE_NOTFOUND;
	case TAG_MISMATCH:
		log_warnx("store: %s: a value fails its integrity check "
		    "(damaged or edited)", what);
		return STORE_CORRUPT;
	case MDB_KEYEXIST:
		return STORE_EXISTS;
	case MDB_MAP_FULL:
	case ENOSPC:
	case EDQUOT:
		return STORE_FULL;
	case ENOMEM:
		return STORE_NOMEM;
	case MDB_TXN_FULL:
	case MDB_CURSOR_FULL:
	case MDB_READERS_FULL:
	case MDB_MAP_RESIZED:
	case MDB_BAD_RSLOT:
	case EAGAIN:
		log_warnx("store: %s: %s", what, mdb_strerror(rc));
		return STORE_BUSY;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_INCOMPATIBLE:
	case MDB_BAD_VALSIZE:
	case MDB_BAD_DBI:
	case MDB_BAD_TXN:
	case MDB_PANIC:
		log_warnx("store: %s: %s", what, mdb_strerror(rc));
		return STORE_CORRUPT;
	default:
		log_warnx("store: %s: %s", what, mdb_strerror(rc));
		return STORE_IO;
	}
}

int
store_init(const char *dir, char *err, size_t errlen)
{
	struct store	*st;
	DIR		*d;
	struct dirent	*de;
	int		 fd;

	if (mkdir(dir, 0700) == -1) {
		if (errno != EEXIST) {
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
			return -1;
		}
		if ((d = opendir(dir)) == NULL) {
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
			return -1;
		}
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
				closedir(d);
				snprintf(err, errlen, "%s: exists and is not "
				    "empty; refusing to overwrite", dir);
				return -1;
			}
		}
		closedir(d);
		if (chmod(dir, 0700) == -1) {
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
			return -1;
		}
	}
	if (seal_keygen(dir, err, errlen) == -1)
		return -1;
	if (store_open(&st, dir, 16, false, err, errlen) == -1)
		return -1;
	store_close(&st);
	/* The new directory entries (key, data.mdb) survive a power cut. */
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY)) == -1 ||
	    fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
store_open(struct store **out, const char *dir, size_t map_mb, bool readonly,
    char *err, size_t errlen)
{
	struct store	*st;
	MDB_txn		*txn = NULL;
	MDB_dbi		 main;
	MDB_stat	 ms;
	struct stat	 sb;
	const char	*missing = NULL;
	size_t		 i;
	int		 rc;

	*out = NULL;
	if (stat(dir, &sb) == -1) {
		snprintf(err, errlen, "%s: %s (did you run ccbroker init?)",
		    dir, strerror(errno));
		return -1;
	}
	if (sb.st_mode & 077) {
		snprintf(err, errlen, "%s: accessible by group or others "
		    "(chmod 700)", dir);
		return -1;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", dir);
		return -1;
	}
	st->readonly = readonly;
	snprintf(st->dir, sizeof(st->dir), "%s", dir);
	if (seal_load(&st->seal, dir, err, errlen) == -1) {
		free(st);
		return -1;
	}
	if ((rc = mdb_env_create(&st->env)) != 0)
		goto fail;
	(void)mdb_env_set_assert(st->env, on_lmdb_assert);
	if ((rc = mdb_env_set_maxdbs(st->env, 16)) != 0)
		goto fail;
	st->map_bytes = map_mb * 1024 * 1024;
	if ((rc = mdb_env_set_mapsize(st->env, st->map_bytes)) != 0)
		goto fail;
	if ((rc = mdb_env_set_maxreaders(st->env, 126)) != 0)
		goto fail;
	/*
	 * Default durability: every commit is fsync'd before it returns, so
	 * `accepted` goes out only once the batch holding it is on disk.
	 */
	if (metas_sound(dir, err, errlen) == -1) {
		store_close(&st);
		return -1;
	}
	if ((rc = mdb_env_open(st->env, dir, MDB_NOTLS |
	    (readonly ? MDB_RDONLY : 0), 0600)) != 0 ||
	    (rc = mdb_env_stat(st->env, &ms)) != 0)
		goto fail;
	st->psize = ms.ms_psize;
	if (!readonly && (rc = freelist_sound(st, err, errlen)) != 0) {
		if (rc == TAG_MISMATCH) {
			store_close(&st);
			return -1;
		}
		goto fail;
	}
	if ((rc = mdb_txn_begin(st->env, NULL, readonly ? MDB_RDONLY : 0,
	    &txn)) != 0)
		goto fail;
	/*
	 * The databases are made in a new store (LMDB's main database
	 * empty), and csubj, which format 3 added, in a store of format 2
	 * (read-only, it cannot be made: the format check explains).  Any
	 * other database missing is damage, never made anew: a flipped bit in
	 * the main database's root would otherwise give the broker a new,
	 * empty store over the old one, and nothing said.
	 */
	if ((rc = mdb_dbi_open(txn, NULL, 0, &main)) != 0 ||
	    (rc = mdb_stat(txn, main, &ms)) != 0)
		goto fail;
	for (i = 0; i < sizeof(dbdefs) / sizeof(dbdefs[0]); i++) {
		MDB_dbi *dbi = (MDB_dbi *)((char *)st + dbdefs[i].off);
		bool	 make = !readonly && (ms.ms_entries == 0 ||
			    dbi == &st->csubj);

		rc = mdb_dbi_open(txn, dbdefs[i].name, dbdefs[i].flags |
		    (make ? MDB_CREATE : 0), dbi);
		if (rc == MDB_NOTFOUND) {
			if (missing == NULL || dbi == &st->meta)
				missing = dbdefs[i].name;
		} else if (rc != 0)
			goto fail;
	}
	/* Without meta, there is no format to check. */
	if ((missing == NULL || strcmp(missing, "meta") != 0) &&
	    format_check(st, txn, err, errlen) == -1) {
		mdb_txn_abort(txn);
		store_close(&st);
		return -1;
	}
	if (missing != NULL) {
		snprintf(err, errlen, "%s: store damaged: database %s missing",
		    dir, missing);
		mdb_txn_abort(txn);
		store_close(&st);
		return -1;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		goto fail;
	}
	*out = st;
	return 0;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	/* What LMDB finds wrong with its own file is damage: said so. */
	snprintf(err, errlen, "%s: %s%s", dir, rc == MDB_INVALID ||
	    rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ||
	    rc == MDB_VERSION_MISMATCH || rc == MDB_INCOMPATIBLE ?
	    "store damaged: " : "", mdb_strerror(rc));
	store_close(&st);
	return -1;
}

/*
 * LMDB's meta pages, as its file format of 0.9 lays them out: the page
 * header (page number, pad, flags, lower and upper bounds), then struct
 * MDB_meta: magic, version, map address and size, the records of the free
 * list and of the main database (a 32-bit pad, which in the free list's
 * record is the page size, 16-bit flags and depth, then branch, leaf and
 * overflow page counts, entries and root), the last page, the txnid.
 */
#define MDB_MAGIC_	0xBEEFC0DEu
#define MDB_VERSION_	1
#define P_META_		0x08
#define INTEGERKEY_	0x08		/* the free list's keys */
#define DEPTH_MAX	32		/* LMDB's cursor stack */
#define W		sizeof(size_t)
#define M_FLAGS		(W + 2)
#define M_META		(W + 2 + 2 + 2 + 2)
#define M_MAGIC		(M_META)
#define M_VERSION	(M_META + 4)
#define M_DB(i)		(M_META + 4 + 4 + sizeof(void *) + W + \
			(i) * (4 + 2 + 2 + 5 * W))
#define DB_PAD		0
#define DB_FLAGS	4
#define DB_DEPTH	6
#define DB_ROOT		(8 + 4 * W)
#define M_LAST		M_DB(2)
#define M_TXNID		(M_DB(2) + W)
#define META_LEN	(M_TXNID + W)

/* What is wrong with one meta page (buf, page i), or NULL. */
static const char *
meta_fault(const uint8_t *m, int i, size_t psize, size_t filesize,
    size_t *txnid)
{
	uint32_t	u32;
	uint16_t	u16, depth;
	size_t		pgno, last, root;
	int		d;

	memcpy(&pgno, m, W);
	memcpy(&u16, m + M_FLAGS, 2);
	if (pgno != (size_t)i || u16 != P_META_)
		return "its page header";
	memcpy(&u32, m + M_MAGIC, 4);
	if (u32 != MDB_MAGIC_)
		return "its magic number";
	memcpy(&u32, m + M_VERSION, 4);
	if (u32 != MDB_VERSION_)
		return "its version";
	memcpy(&u32, m + M_DB(0) + DB_PAD, 4);
	if (u32 != psize)
		return "its page size";
	memcpy(&last, m + M_LAST, W);
	if (last < 1 || last >= filesize / psize)
		return "its last page (past the end of the file)";
	for (d = 0; d < 2; d++) {
		memcpy(&u16, m + M_DB(d) + DB_FLAGS, 2);
		memcpy(&depth, m + M_DB(d) + DB_DEPTH, 2);
		memcpy(&root, m + M_DB(d) + DB_ROOT, W);
		if (u16 != (d == 0 ? INTEGERKEY_ : 0))
			return "the flags of a database";
		if (root == SIZE_MAX ? depth != 0 : root < 2 || root > last ||
		    depth < 1 || depth > DEPTH_MAX)
			return "the root of a database";
	}
	memcpy(txnid, m + M_TXNID, W);
	return NULL;
}

/*
 * LMDB trusts its two meta pages, read before anything else: a flipped
 * bit there can make it divide by a page size of nought, map terabytes,
 * read its main database from the wrong page, or open the commit before
 * the last.  Both are checked before LMDB maps the file.  LMDB writes each
 * commit's meta page to page (txnid & 1): the two always name consecutive
 * transactions, each in its own page, and LMDB opens the newer; a flipped
 * bit in the older one's id would have it open the commit before the last
 * (acks, withdrawals and audit entries gone, the rest consistent).
 * Returns 0 (and 0 for a file not made yet), or -1 with err.
 */
static int
metas_sound(const char *dir, char *err, size_t errlen)
{
	uint8_t		 m[2][META_LEN];
	struct stat	 sb;
	const char	*why = NULL;
	char		 path[4200];
	size_t		 psize = (size_t)sysconf(_SC_PAGESIZE), id[2];
	int		 fd, i, tries;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : 0;	/* LMDB says why */
	/* A broker committing meanwhile (beside a read-only command) writes
	 * one meta page: read again. */
	for (tries = 0; tries < 3; tries++) {
		if (fstat(fd, &sb) == -1)
			break;
		for (i = 0; i < 2; i++)
			if (pread(fd, m[i], META_LEN, (off_t)(i * psize)) !=
			    (ssize_t)META_LEN)
				break;
		if (i < 2) {
			why = "missing (the file is too short)";
			continue;
		}
		for (i = 0, why = NULL; i < 2 && why == NULL; i++)
			why = meta_fault(m[i], i, psize, (size_t)sb.st_size,
			    &id[i]);
		if (why == NULL && !(id[0] == 0 && id[1] == 0) &&
		    !((id[0] & 1) == 0 && (id[1] & 1) == 1 &&
		    (id[0] == id[1] + 1 || id[1] == id[0] + 1)))
			why = "their transactions, not two consecutive ones "
			    "(the newest commit cannot be told)";
		if (why == NULL)
			break;
	}
	close(fd);
	if (why == NULL)
		return 0;
	snprintf(err, errlen, "%s: store damaged: LMDB's meta pages: %s; "
	    "restore the last good backup", dir, why);
	return -1;
}

/*
 * LMDB hands out the pages on its free list to the next writes: with the
 * list damaged, a write could overwrite pages still in use (or LMDB
 * crash in its commit).  Such a store is never opened for writing.  (Nor
 * can a compacted copy mend it: LMDB places the copy's root by the count
 * of free pages.)  Returns 0, TAG_MISMATCH with err, or an LMDB error.
 */
static int
freelist_sound(struct store *st, char *err, size_t errlen)
{
	MDB_envinfo	 info;
	MDB_txn		*txn;
	size_t		 freepg;
	int		 rc;

	if ((rc = mdb_env_info(st->env, &info)) != 0 ||
	    (rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return rc;
	rc = store_freelist(txn, info.me_last_pgno + 1, &freepg);
	mdb_txn_abort(txn);
	if (rc == TAG_MISMATCH)
		snprintf(err, errlen, "%s: store damaged: LMDB's free list is "
		    "damaged, and writing could overwrite pages in use; "
		    "restore the last good backup (ccbroker audit verify "
		    "reads this one)", st->dir);
	return rc;
}

static int
format_put(struct store *st, MDB_txn *txn, uint32_t format)
{
	MDB_val	k = META_KEY(META_FORMAT), v = { sizeof(format), &format };

	return mdb_put(txn, st->meta, &k, &v, 0);
}

/*
 * Check the store's format; a new (empty) store is given this one, and a
 * store of format 2 is upgraded in the same transaction (read-only, it is
 * refused: the broker upgrades it when it next starts).
 */
static int
format_check(struct store *st, MDB_txn *txn, char *err, size_t errlen)
{
	MDB_val		 k = META_KEY(META_FORMAT), v, sk, sv;
	MDB_stat	 ms;
	uint32_t	 have;
	int		 rc, src;

	/* What LMDB cannot read there is damage (and ends the txn). */
	if ((rc = mdb_get(txn, st->meta, &k, &v)) != 0 && rc != MDB_NOTFOUND) {
		snprintf(err, errlen, "store damaged: its format record cannot "
		    "be read: %s", mdb_strerror(rc));
		return -1;
	}
	/*
	 * The format record has no tag (any ccbroker must read it).  A
	 * summary (format 3 on) says what the format cannot be: a flipped
	 * bit making 3 a 2 would otherwise have the broker "upgrade" every
	 * value again, and a 1 or a missing record call the store an old one.
	 */
	sk.mv_size = sizeof(META_SUMMARY) - 1;
	sk.mv_data = (void *)META_SUMMARY;
	if ((src = mdb_get(txn, st->meta, &sk, &sv)) != 0 &&
	    src != MDB_NOTFOUND) {
		snprintf(err, errlen, "store damaged: its summary cannot be "
		    "read: %s", mdb_strerror(src));
		return -1;
	}
	if (rc == 0 && v.mv_size == sizeof(have)) {
		memcpy(&have, v.mv_data, sizeof(have));
		if (have == STORE_FORMAT)
			return 0;
		if (have < STORE_FORMAT && src == 0) {
			snprintf(err, errlen, "store damaged: its format "
			    "record says %u, but it holds what only format %u "
			    "has", have, STORE_FORMAT);
			return -1;
		}
		if (have == FORMAT_UNTAGGED && st->readonly) {
			snprintf(err, errlen, "store format %u: start the "
			    "broker once to upgrade it to format %u", have,
			    STORE_FORMAT);
			return -1;
		}
		if (have == FORMAT_UNTAGGED) {
			log_info("store: upgrading from format %u to %u",
			    have, STORE_FORMAT);
			if ((rc = upgrade(st, txn)) != 0) {
				snprintf(err, errlen, "store upgrade from "
				    "format %u: %s; the store is unchanged",
				    have, mdb_strerror(rc));
				return -1;
			}
			return 0;
		}
		snprintf(err, errlen, "store format %u, but this ccbroker "
		    "reads format %u%s", have, STORE_FORMAT, have >
		    STORE_FORMAT ? " (a later ccbroker's store, or its "
		    "format record damaged)" : "");
		return -1;
	}
	if (rc == 0) {
		snprintf(err, errlen, "store damaged: its format record is "
		    "%zu bytes", v.mv_size);
		return -1;
	}
	if ((rc = mdb_stat(txn, st->meta, &ms)) != 0) {
		snprintf(err, errlen, "store: %s", mdb_strerror(rc));
		return -1;
	}
	if (ms.ms_entries > 0 && src == 0) {
		snprintf(err, errlen, "store damaged: its format record is "
		    "missing");
		return -1;
	}
	if (ms.ms_entries > 0) {
		snprintf(err, errlen, "store format 1 (an earlier ccbroker), "
		    "but this ccbroker reads format %u", STORE_FORMAT);
		return -1;
	}
	if (st->readonly)
		return 0;
	if ((rc = format_put(st, txn, STORE_FORMAT)) != 0) {
		snprintf(err, errlen, "store: %s", mdb_strerror(rc));
		return -1;
	}
	return 0;
}

/*
 * Format 2 to 3, in the opening transaction (so a power cut leaves either
 * store whole): every value of the primary databases is given its tag,
 * and the indexes are built again from them (cview keeps only what can
 * still permit or deny; csubj is new).
 */
static int
upgrade(struct store *st, MDB_txn *txn)
{
	int	rc;

	if ((rc = retag(st, txn, st->meta, TD_META, true, NULL)) != 0 ||
	    (rc = retag(st, txn, st->consent, TD_CONSENT, false,
	    clear_consent)) != 0 ||
	    (rc = retag(st, txn, st->msg, TD_MSG, false, clear_msg)) != 0 ||
	    (rc = retag(st, txn, st->queue, TD_QUEUE, false, NULL)) != 0 ||
	    (rc = retag(st, txn, st->rstate, TD_RSTATE, false, NULL)) != 0 ||
	    (rc = retag(st, txn, st->expiry, TD_EXPIRY, false, NULL)) != 0 ||
	    (rc = retag(st, txn, st->subs, TD_SUBS, false, NULL)) != 0 ||
	    (rc = consent_reindex(st, txn)) != 0 ||
	    (rc = msg_reindex(st, txn)) != 0)
		return rc;
	return format_put(st, txn, STORE_FORMAT);
}

/* The clear part of a format-2 message and consent, which the tag
 * follows (store_impl.h); the rest was sealed. */
static size_t
clear_msg(const MDB_val *v)
{
	return v->mv_size >= sizeof(struct msg_hdr) ? sizeof(struct msg_hdr) :
	    v->mv_size;
}

static size_t
clear_consent(const MDB_val *v)
{
	struct consent_hdr	h;
	size_t			n;

	if (v->mv_size < sizeof(h))
		return v->mv_size;
	memcpy(&h, v->mv_data, sizeof(h));
	n = sizeof(h) + h.recip_len + h.deny_len;
	return n <= v->mv_size ? n : v->mv_size;
}

/*
 * Tag every value of a database, a chunk at a time: the chunk is copied
 * out, the cursor closed, the values written back with their tags (after
 * the clear part, when the value has a sealed one), and the next chunk
 * sought after the last key.  In meta the format record stays as it is.
 */
static int
retag(struct store *st, MDB_txn *txn, MDB_dbi dbi, uint8_t dom, bool meta,
    size_t (*clear_of)(const MDB_val *))
{
	MDB_cursor	*cur;
	MDB_val		 k, v, ck[STORE_CHUNK], cv[STORE_CHUNK];
	void		*last = NULL;
	size_t		 lastlen = 0;
	int		 i, n, rc = 0;
	bool		 more = true;

	while (more && rc == 0) {
		if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
			break;
		if (last == NULL)
			rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		else {
			k.mv_size = lastlen;
			k.mv_data = last;
			if ((rc = mdb_cursor_get(cur, &k, &v,
			    MDB_SET_RANGE)) == 0)
				rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		for (n = 0; rc == 0 && n < STORE_CHUNK; n++) {
			ck[n].mv_size = k.mv_size;
			cv[n].mv_size = v.mv_size;
			if ((ck[n].mv_data = malloc(k.mv_size + 1)) == NULL ||
			    (cv[n].mv_data = malloc(v.mv_size + 1)) == NULL) {
				free(ck[n].mv_data);
				rc = ENOMEM;
				break;
			}
			memcpy(ck[n].mv_data, k.mv_data, k.mv_size);
			memcpy(cv[n].mv_data, v.mv_data, v.mv_size);
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(cur);
		more = rc == 0;
		if (rc == MDB_NOTFOUND)
			rc = 0;
		for (i = 0; i < n; i++) {
			size_t	 cl = clear_of != NULL ? clear_of(&cv[i]) :
				    cv[i].mv_size;
			uint8_t	*p;

			if (rc == 0 && !(meta && ck[i].mv_size ==
			    sizeof(META_FORMAT) - 1 && memcmp(ck[i].mv_data,
			    META_FORMAT, ck[i].mv_size) == 0) &&
			    (rc = tag_reserve(st, txn, dbi, &ck[i],
			    cv[i].mv_size, 0, &p)) == 0) {
				memcpy(p, cv[i].mv_data, cl);
				memcpy(p + cl + TAG_LEN,
				    (uint8_t *)cv[i].mv_data + cl,
				    cv[i].mv_size - cl);
				rc = tag_seal(st, dom, &ck[i], p, cl);
			}
			free(cv[i].mv_data);
			if (i < n - 1)
				free(ck[i].mv_data);
		}
		free(last);
		last = n > 0 ? ck[n - 1].mv_data : NULL;
		lastlen = n > 0 ? ck[n - 1].mv_size : 0;
		if (n == 0)
			more = false;
	}
	free(last);
	return rc;
}

void
store_close(struct store **stp)
{
	struct store	*st = *stp;

	if (st == NULL)
		return;
	if (st->env != NULL)
		mdb_env_close(st->env);
	seal_clear(&st->seal);
	free(st);
	*stp = NULL;
}

int
store_begin(struct store *st, bool write, struct store_txn **out)
{
	MDB_txn	*txn;
	int	 rc;

	*out = NULL;
	/* LMDB would write into pages whose structure is damaged. */
	if (write && st->unwritable)
		return STORE_CORRUPT;
	if ((rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY,
	    &txn)) != 0)
		return store_rc(rc, "begin");
	*out = (struct store_txn *)txn;
	return 0;
}

int
store_begin_nested(struct store *st, struct store_txn *parent,
    struct store_txn **out)
{
	MDB_txn	*txn;
	int	 rc;

	*out = NULL;
	if ((rc = mdb_txn_begin(st->env, txn_of(parent), 0, &txn)) != 0)
		return store_rc(rc, "begin nested");
	*out = (struct store_txn *)txn;
	return 0;
}

int
store_commit(struct store_txn *t)
{
	return store_rc(mdb_txn_commit(txn_of(t)), "commit");
}

void
store_abort(struct store_txn *t)
{
	if (t != NULL)
		mdb_txn_abort(txn_of(t));
}

int
store_disk_bytes(struct store *st, size_t *bytes)
{
	MDB_envinfo		 info;
	MDB_stat		 stat;
	struct statvfs		 vfs;
	struct stat		 sb;
	mdb_filehandle_t	 fd;
	size_t			 pages, held;
	int			 rc;

	if ((rc = mdb_env_info(st->env, &info)) != 0 ||
	    (rc = mdb_env_stat(st->env, &stat)) != 0 ||
	    (rc = mdb_env_get_fd(st->env, &fd)) != 0)
		return store_rc(rc, "disk size");
	if (fstatvfs(fd, &vfs) == -1 || fstat(fd, &sb) == -1)
		return STORE_IO;
	pages = (info.me_last_pgno + 1) * stat.ms_psize;
	held = (size_t)sb.st_blocks * 512;
	*bytes = (held > pages ? held : pages) +
	    (size_t)vfs.f_bavail * vfs.f_frsize;
	return 0;
}

int
store_hold_disk(struct store *st, size_t bytes)
{
	MDB_envinfo		 info;
	MDB_stat		 stat;
	mdb_filehandle_t	 fd;

	if (mdb_env_info(st->env, &info) != 0 ||
	    mdb_env_stat(st->env, &stat) != 0 ||
	    mdb_env_get_fd(st->env, &fd) != 0) {
		errno = EIO;
		return STORE_IO;
	}
	/* KEEP_SIZE: the file's length, which LMDB reads, is untouched. */
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)((info.me_last_pgno +
	    1) * stat.ms_psize), (off_t)bytes) == -1)
		return STORE_IO;
	return 0;
}

/*
 * LMDB's free list (database 0): each value a list of page numbers led by
 * its count, the numbers in descending order, none a meta page or past the
 * last page.  A flipped bit there is a page counted free that is not (to
 * be overwritten by the next write), or a count that makes the store look
 * empty; LMDB itself trusts the list.  Returns 0 with *freepg the pages on
 * the list, TAG_MISMATCH when the list is not well formed, or an LMDB
 * error.
 */
int
store_freelist(MDB_txn *txn, size_t npages, size_t *freepg)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	size_t		 n, i, pg, prev;
	bool		 bad = false;
	int		 rc;

	*freepg = 0;
	if ((rc = mdb_cursor_open(txn, 0, &cur)) != 0)
		return rc;
	while (!bad && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		if (v.mv_size < sizeof(n) || v.mv_size % sizeof(n) != 0) {
			bad = true;
			break;
		}
		memcpy(&n, v.mv_data, sizeof(n));
		if (n != v.mv_size / sizeof(n) - 1 || n > npages) {
			bad = true;
			break;
		}
		for (i = 1, prev = SIZE_MAX; i <= n; i++, prev = pg) {
			memcpy(&pg, (const uint8_t *)v.mv_data + i * sizeof(pg),
			    sizeof(pg));
			if (pg < 2 || pg >= npages || pg >= prev) {
				bad = true;
				break;
			}
		}
		*freepg += n;
	}
	mdb_cursor_close(cur);
	if (bad || (rc == MDB_NOTFOUND && *freepg > npages))
		return TAG_MISMATCH;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Pages in use are the map's high-water mark less the free pages. */
int
store_usage(struct store *st, size_t *used, size_t *map)
{
	MDB_envinfo	 info;
	MDB_stat	 stat;
	MDB_txn		*txn;
	size_t		 freepg = 0, npages;
	int		 rc;

	if ((rc = mdb_env_info(st->env, &info)) != 0 ||
	    (rc = mdb_env_stat(st->env, &stat)) != 0)
		return store_rc(rc, "usage");
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return store_rc(rc, "usage");
	npages = info.me_last_pgno + 1;
	rc = store_freelist(txn, npages, &freepg);
	mdb_txn_abort(txn);
	/* Counted as if nothing were free: never room that is not there. */
	if (rc == TAG_MISMATCH) {
		log_warnx("store: LMDB's free list is damaged; run ccbroker "
		    "audit verify");
		freepg = 0;
	} else if (rc != 0)
		return store_rc(rc, "free list");
	*used = (npages - freepg) * stat.ms_psize;
	*map = info.me_mapsize;
	return 0;
}

/*
 * The copy is written by LMDB into dir.  LMDB creates the file with 0666
 * less the umask, and an existing directory keeps the mode it had: both
 * are set here, whatever the caller's umask or the directory's history.
 */
int
store_backup(struct store *st, const char *dir, char *err, size_t errlen)
{
	char	path[4200];
	mode_t	old;
	int	rc;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (chmod(dir, 0700) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	/* LMDB creates the file exclusively: an older backup is never
	 * overwritten. */
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	old = umask(077);
	rc = mdb_env_copy2(st->env, dir, MDB_CP_COMPACT);
	umask(old);
	if (rc != 0) {
		snprintf(err, errlen, "backup to %s: %s", dir,
		    mdb_strerror(rc));
		return -1;
	}
	if (chmod(path, 0600) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
store_next_dseq(struct store *st, struct store_txn *t, uint64_t *out)
{
	MDB_val		k = META_KEY(META_DSEQ), v;
	int		rc;

	if (st->dseq == 0) {
		rc = tag_get(st, txn_of(t), st->meta, TD_META, &k, &v);
		if (rc == 0 && v.mv_size == 8)
			st->dseq = be64_get(v.mv_data);
		else if (rc == 0 || rc == TAG_MISMATCH || rc == MDB_NOTFOUND) {
			/* None yet, or its name damaged: never from 1 again
			 * over numbers in use. */
			if ((rc = dseq_recover(st, txn_of(t),
			    rc == MDB_NOTFOUND)) != 0)
				return store_rc(rc, "dseq");
		} else
			return store_rc(rc, "dseq");
		if (st->dseq == 0)
			st->dseq = 1;
	}
	*out = st->dseq++;
	return 0;
}

int
store_save_dseq(struct store *st, struct store_txn *t)
{
	MDB_val		k = META_KEY(META_DSEQ), v;
	uint8_t		buf[8];
	int		rc;

	if (st->dseq == 0)		/* none taken since the store opened */
		return 0;
	rc = tag_get(st, txn_of(t), st->meta, TD_META, &k, &v);
	if (rc == 0 && v.mv_size == 8 && be64_get(v.mv_data) == st->dseq)
		return 0;
	if (rc != 0 && rc != MDB_NOTFOUND && rc != TAG_MISMATCH)
		return store_rc(rc, "dseq");
	be64_put(buf, st->dseq);
	return store_rc(tag_put(st, txn_of(t), st->meta, TD_META, &k, buf,
	    sizeof(buf), 0), "dseq");
}

/*
 * The next dseq cannot be read (damaged), or is not there (`missing`):
 * numbers must never be used twice, so take the largest in any queue and
 * leave a wide gap after it for deliveries sent but not yet acked.  A
 * store with empty queues and no record is new: it starts from 1.
 */
static int
dseq_recover(struct store *st, MDB_txn *txn, bool missing)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint64_t	 max = 0, d;
	int		 rc;

	if ((rc = mdb_cursor_open(txn, st->queue, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0)
		if (k.mv_size >= 9 && (d = be64_get((const uint8_t *)k.mv_data +
		    k.mv_size - 8)) > max)
			max = d;
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	if (missing && max == 0)
		return 0;
	st->dseq = max + DSEQ_GAP;
	log_warnx("store: the next delivery number was %s; going on from "
	    "%llu", missing ? "missing (store damaged)" : "damaged",
	    (unsigned long long)st->dseq);
	return 0;
}

/* The lines said on a fault, made before one can happen. */
static char	fault_bus[256], fault_segv[256];
static size_t	fault_bus_len, fault_segv_len;

/* Only async-signal-safe calls: write(2) and _exit(2). */
static void
on_fault(int sig)
{
	ssize_t	n;

	if (sig == SIGBUS)
		n = write(STDERR_FILENO, fault_bus, fault_bus_len);
	else
		n = write(STDERR_FILENO, fault_segv, fault_segv_len);
	(void)n;
	_exit(2);
}

/*
 * A read past the end of data.mdb (the one file ccbroker maps) is a
 * damaged store for certain; a fault elsewhere most likely comes from
 * following a damaged page too, but may be a bug: said as such.
 */
void
store_fault_guard(const char *prog)
{
	struct sigaction	sa;
	int			n;

	n = snprintf(fault_bus, sizeof(fault_bus), "%s: store damaged: a "
	    "fault reading the store (SIGBUS, past the end of data.mdb); "
	    "run ccbroker audit verify\n", prog);
	fault_bus_len = n > 0 && (size_t)n < sizeof(fault_bus) ? (size_t)n :
	    0;
	n = snprintf(fault_segv, sizeof(fault_segv), "%s: store damaged? a "
	    "fault (SIGSEGV), most likely reading a damaged store; run "
	    "ccbroker audit verify\n", prog);
	fault_segv_len = n > 0 && (size_t)n < sizeof(fault_segv) ?
	    (size_t)n : 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGBUS, &sa, NULL);
	(void)sigaction(SIGSEGV, &sa, NULL);
}

/* LMDB found its own file inconsistent; it would abort() next. */
static void
on_lmdb_assert(MDB_env *env, const char *msg)
{
	(void)env;
	log_warnx("store damaged: LMDB finds its file inconsistent (%s); run "
	    "ccbroker audit verify", msg);
	_exit(2);
}

int
store_subject_ps(const struct store *st, const struct cc_subject *s,
    struct subject_ps *ps)
{
	static const char *const scheme[SCHEME__COUNT] = { "pnc", "noms",
	    "crn" };
	const char	*val[SCHEME__COUNT] = { s->pnc, s->noms, s->crn };
	int		 i;

	memset(ps, 0, sizeof(*ps));
	for (i = 0; i < SCHEME__COUNT; i++) {
		if (val[i][0] == '\0')
			continue;
		if (seal_pseudonym(&st->seal, scheme[i], val[i],
		    ps->id[i]) == -1)
			return -1;
		ps->has |= 1u << i;
	}
	return 0;
}

int
store_counters_get(struct store *st, struct store_txn *t,
    struct store_counters *c)
{
	MDB_val	k = META_KEY(META_COUNTERS), v;
	int	rc;

	memset(c, 0, sizeof(*c));
	rc = tag_get(st, txn_of(t), st->meta, TD_META, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == TAG_MISMATCH || (rc == 0 && v.mv_size != sizeof(*c))) {
		log_warnx("store: counters damaged; counting from zero");
		return 0;
	}
	if (rc != 0)
		return store_rc(rc, "counters");
	memcpy(c, v.mv_data, sizeof(*c));
	return 0;
}

int
store_counters_put(struct store *st, struct store_txn *t,
    const struct store_counters *c)
{
	MDB_val	k = META_KEY(META_COUNTERS);

	return store_rc(tag_put(st, txn_of(t), st->meta, TD_META, &k, c,
	    sizeof(*c), 0), "counters");
}

int
store_online_put(struct store *st, struct store_txn *t, const char *ids,
    size_t len)
{
	MDB_val	k = META_KEY(META_ONLINE);

	return store_rc(tag_put(st, txn_of(t), st->meta, TD_META, &k, ids,
	    len, 0), "online");
}

int
store_online_each(struct store *st, struct store_txn *t,
    int (*fn)(const char *, void *), void *arg)
{
	MDB_val		 k = META_KEY(META_ONLINE), v;
	const char	*p, *end;
	char		 id[CC_ID_MAX + 1];
	int		 rc;

	rc = tag_get(st, txn_of(t), st->meta, TD_META, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_rc(rc, "online");
	p = v.mv_data;
	end = p + v.mv_size;
	while (p < end) {
		size_t l = strnlen(p, (size_t)(end - p));

		if (l > CC_ID_MAX || l == (size_t)(end - p))
			return store_rc(MDB_CORRUPTED, "online");
		memcpy(id, p, l + 1);
		if ((rc = fn(id, arg)) != 0)
			return rc;
		p += l + 1;
	}
	return 0;
}

/* Named records live in meta beside the broker's own, under "x-". */
int
store_meta_put(struct store *st, struct store_txn *t, const char *name,
    const void *data, size_t len)
{
	char	key[64];
	MDB_val	k = { 0, key };
	int	n;

	if ((n = snprintf(key, sizeof(key), "x-%s", name)) < 0 ||
	    (size_t)n >= sizeof(key))
		return STORE_NOMEM;
	k.mv_size = (size_t)n;
	return store_rc(tag_put(st, txn_of(t), st->meta, TD_META, &k, data,
	    len, 0), name);
}

int
store_meta_get(struct store *st, struct store_txn *t, const char *name,
    void *buf, size_t size, size_t *len)
{
	char	key[64];
	MDB_val	k = { 0, key }, v;
	int	n, rc;

	if ((n = snprintf(key, sizeof(key), "x-%s", name)) < 0 ||
	    (size_t)n >= sizeof(key))
		return STORE_NOMEM;
	k.mv_size = (size_t)n;
	if ((rc = tag_get(st, txn_of(t), st->meta, TD_META, &k, &v)) != 0)
		return store_rc(rc, name);
	*len = v.mv_size;
	memcpy(buf, v.mv_data, v.mv_size < size ? v.mv_size : size);
	return 0;
}

int
store_sub_put(struct store *st, struct store_txn *t, const char *agency,
    const struct sub *s)
{
	MDB_val	k = { strlen(agency), (void *)agency };

	return store_rc(tag_put(st, txn_of(t), st->subs, TD_SUBS, &k, s,
	    sizeof(*s), 0), "subscription");
}

int
store_subs_each(struct store *st, struct store_txn *t,
    int (*fn)(const char *, const struct sub *, void *), void *arg)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	struct sub	 s;
	char		 id[CC_ID_MAX + 1];
	int		 rc, frc = 0;

	if ((rc = mdb_cursor_open(txn_of(t), st->subs, &cur)) != 0)
		return store_rc(rc, "subscriptions");
	while (frc == 0 &&
	    (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		if (k.mv_size == 0 || k.mv_size > CC_ID_MAX ||
		    tag_check(st, TD_SUBS, &k, &v) != 0 ||
		    v.mv_size != sizeof(s)) {
			log_warnx("store: a damaged subscription skipped");
			continue;
		}
		memcpy(id, k.mv_data, k.mv_size);
		id[k.mv_size] = '\0';
		memcpy(&s, v.mv_data, sizeof(s));
		if (s.nareas > SUB_AREAS_MAX) {
			log_warnx("store: subscription of %s damaged; skipped",
			    id);
			continue;
		}
		frc = fn(id, &s, arg);
	}
	mdb_cursor_close(cur);
	if (frc != 0)
		return frc;
	return rc == MDB_NOTFOUND ? 0 : store_rc(rc, "subscriptions");
}
