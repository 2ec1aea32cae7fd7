/*
 * store.c - the LMDB environment: opening, counters, usage, key helpers.
 */
#define _GNU_SOURCE	/* fallocate */
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

#define META_DSEQ	"dseq"
#define META_FORMAT	"format"

/*
 * The layout of the databases below.  A store of another format is
 * refused rather than misread (format 1, before the subject index named
 * messages, had no format record).
 */
#define STORE_FORMAT	2

static int	format_check(struct store *, MDB_txn *, char *, size_t);

struct dbdef {
	const char	*name;
	size_t		 off;
	unsigned	 flags;
};

static const struct dbdef dbdefs[] = {
	{ "meta",	offsetof(struct store, meta),	 0 },
	{ "consent",	offsetof(struct store, consent), 0 },
	{ "cview",	offsetof(struct store, cview),	 0 },
	{ "msg",	offsetof(struct store, msg),	 0 },
	{ "queue",	offsetof(struct store, queue),	 0 },
	{ "qsubj",	offsetof(struct store, qsubj),	 MDB_DUPSORT },
	{ "rstate",	offsetof(struct store, rstate),	 0 },
	{ "expiry",	offsetof(struct store, expiry),	 0 },
	{ "subs",	offsetof(struct store, subs),	 0 },
	{ "audit",	offsetof(struct store, audit),	 0 },
};

int
store_init(const char *dir, char *err, size_t errlen)
{
	struct store	 st;
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
store_open(struct store *st, const char *dir, size_t map_mb, bool readonly,
    char *err, size_t errlen)
{
	MDB_txn		*txn = NULL;
	struct stat	 sb;
	size_t		 i;
	int		 rc;

	memset(st, 0, sizeof(*st));
	st->readonly = readonly;
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
	if (seal_load(&st->seal, dir, err, errlen) == -1)
		return -1;
	if ((rc = mdb_env_create(&st->env)) != 0)
		goto fail;
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
	if ((rc = mdb_env_open(st->env, dir, MDB_NOTLS |
	    (readonly ? MDB_RDONLY : 0), 0600)) != 0)
		goto fail;
	if ((rc = mdb_txn_begin(st->env, NULL, readonly ? MDB_RDONLY : 0,
	    &txn)) != 0)
		goto fail;
	for (i = 0; i < sizeof(dbdefs) / sizeof(dbdefs[0]); i++) {
		MDB_dbi *dbi = (MDB_dbi *)((char *)st + dbdefs[i].off);

		if ((rc = mdb_dbi_open(txn, dbdefs[i].name, dbdefs[i].flags |
		    (readonly ? 0 : MDB_CREATE), dbi)) != 0)
			goto fail;
	}
	if (format_check(st, txn, err, errlen) == -1) {
		mdb_txn_abort(txn);
		store_close(st);
		return -1;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		goto fail;
	}
	return 0;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	snprintf(err, errlen, "%s: %s", dir, mdb_strerror(rc));
	if (st->env != NULL)
		mdb_env_close(st->env);
	st->env = NULL;
	seal_clear(&st->seal);
	return -1;
}

/* Check the store's format; a new (empty) store is given this one. */
static int
format_check(struct store *st, MDB_txn *txn, char *err, size_t errlen)
{
	MDB_val		 k = { sizeof(META_FORMAT) - 1, META_FORMAT }, v;
	MDB_stat	 ms;
	uint32_t	 format = STORE_FORMAT, have;
	int		 rc;

	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == 0 && v.mv_size == sizeof(have)) {
		memcpy(&have, v.mv_data, sizeof(have));
		if (have == STORE_FORMAT)
			return 0;
		snprintf(err, errlen, "store format %u, but this ccbroker "
		    "reads format %u", have, STORE_FORMAT);
		return -1;
	}
	if (rc != MDB_NOTFOUND) {
		snprintf(err, errlen, "store format: %s",
		    rc != 0 ? mdb_strerror(rc) : "unreadable");
		return -1;
	}
	if ((rc = mdb_stat(txn, st->meta, &ms)) != 0) {
		snprintf(err, errlen, "store: %s", mdb_strerror(rc));
		return -1;
	}
	if (ms.ms_entries > 0) {
		snprintf(err, errlen, "store format 1 (an earlier ccbroker), "
		    "but this ccbroker reads format %u", STORE_FORMAT);
		return -1;
	}
	if (st->readonly)
		return 0;
	v.mv_size = sizeof(format);
	v.mv_data = &format;
	if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) != 0) {
		snprintf(err, errlen, "store: %s", mdb_strerror(rc));
		return -1;
	}
	return 0;
}

void
store_close(struct store *st)
{
	if (st->env != NULL)
		mdb_env_close(st->env);
	st->env = NULL;
	seal_clear(&st->seal);
}

int
store_begin(struct store *st, bool write, MDB_txn **txn)
{
	return mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, txn);
}

/*
 * Pages in use are the map's high-water mark less the pages on LMDB's free
 * list (database 0, whose values are page-number lists led by a count).
 */
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
		return rc;
	if (fstatvfs(fd, &vfs) == -1 || fstat(fd, &sb) == -1)
		return errno;
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
	int			 rc;

	if ((rc = mdb_env_info(st->env, &info)) != 0 ||
	    (rc = mdb_env_stat(st->env, &stat)) != 0 ||
	    (rc = mdb_env_get_fd(st->env, &fd)) != 0)
		return rc;
	/* KEEP_SIZE: the file's length, which LMDB reads, is untouched. */
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)((info.me_last_pgno +
	    1) * stat.ms_psize), (off_t)bytes) == -1)
		return errno;
	return 0;
}

int
store_usage(struct store *st, size_t *used, size_t *map)
{
	MDB_envinfo	 info;
	MDB_stat	 stat;
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	size_t		 freepg = 0;
	int		 rc;

	if ((rc = mdb_env_info(st->env, &info)) != 0 ||
	    (rc = mdb_env_stat(st->env, &stat)) != 0)
		return rc;
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, 0, &cur)) == 0) {
		while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
			size_t n;

			if (v.mv_size < sizeof(n))
				continue;
			memcpy(&n, v.mv_data, sizeof(n));
			freepg += n;
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	if (freepg > info.me_last_pgno + 1)
		freepg = info.me_last_pgno + 1;
	*used = (info.me_last_pgno + 1 - freepg) * stat.ms_psize;
	*map = info.me_mapsize;
	return 0;
}

int
store_next_dseq(struct store *st, MDB_txn *txn, uint64_t *out)
{
	MDB_val		k = { sizeof(META_DSEQ) - 1, (void *)META_DSEQ }, v;
	int		rc;

	if (st->dseq == 0) {
		rc = mdb_get(txn, st->meta, &k, &v);
		if (rc == 0 && v.mv_size == 8)
			st->dseq = be64_get(v.mv_data);
		else if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
		if (st->dseq == 0)
			st->dseq = 1;
	}
	*out = st->dseq++;
	return 0;
}

int
store_save_dseq(struct store *st, MDB_txn *txn)
{
	MDB_val		k = { sizeof(META_DSEQ) - 1, (void *)META_DSEQ }, v;
	uint8_t		buf[8];
	int		rc;

	if (st->dseq == 0)		/* none taken since the store opened */
		return 0;
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == 0 && v.mv_size == 8 && be64_get(v.mv_data) == st->dseq)
		return 0;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	be64_put(buf, st->dseq);
	v.mv_size = 8;
	v.mv_data = buf;
	return mdb_put(txn, st->meta, &k, &v, 0);
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

void
be64_put(uint8_t *p, uint64_t v)
{
	int	i;

	for (i = 7; i >= 0; i--) {
		p[i] = v & 0xff;
		v >>= 8;
	}
}

uint64_t
be64_get(const uint8_t *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

size_t
qkey_make(uint8_t *key, const char *agency, uint64_t dseq)
{
	size_t	n = strlen(agency);

	memcpy(key, agency, n + 1);
	be64_put(key + n + 1, dseq);
	return n + 9;
}

int
qkey_split(const MDB_val *k, char *agency, size_t size, uint64_t *dseq)
{
	const uint8_t	*p = k->mv_data;
	size_t		 n;

	if (k->mv_size < 10 || p[k->mv_size - 9] != '\0')
		return -1;
	n = k->mv_size - 9;
	if (n >= size)
		return -1;
	memcpy(agency, p, n + 1);
	*dseq = be64_get(p + n + 1);
	return 0;
}
