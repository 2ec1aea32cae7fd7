/*
 * store_file.c - the data file's own soundness, checked before LMDB maps
 * it (LMDB trusts its meta pages and free list; a damaged one would have
 * it open an older commit, or write over live pages).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store_impl.h"

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

static const char *meta_fault(const uint8_t *, int, size_t, size_t,
		    size_t *);

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
int
store_metas_sound(const char *dir, char *err, size_t errlen)
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
int
store_freelist_sound(struct store *st, char *err, size_t errlen)
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

