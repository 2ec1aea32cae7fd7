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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store_impl.h"

/*
 * The layout of the databases.  A store of another format is refused
 * rather than misread (format 1, before the subject index named messages,
 * had no format record).
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
	struct stat	 sb;
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
	snprintf(err, errlen, "%s: %s", dir, mdb_strerror(rc));
	store_close(&st);
	return -1;
}

/* Check the store's format; a new (empty) store is given this one. */
static int
format_check(struct store *st, MDB_txn *txn, char *err, size_t errlen)
{
	MDB_val		 k = META_KEY(META_FORMAT), v;
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
 * Pages in use are the map's high-water mark less the pages on LMDB's free
 * list (database 0, whose values are page-number lists led by a count).
 */
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
		return store_rc(rc, "usage");
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return store_rc(rc, "usage");
	if ((rc = mdb_cursor_open(txn, 0, &cur)) == 0) {
		while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
			size_t n;

			if (v.mv_size < sizeof(n))
				continue;
			memcpy(&n, v.mv_data, sizeof(n));
			freepg += n;
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND)
		return store_rc(rc, "free list");
	if (freepg > info.me_last_pgno + 1)
		freepg = info.me_last_pgno + 1;
	*used = (info.me_last_pgno + 1 - freepg) * stat.ms_psize;
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
		rc = mdb_get(txn_of(t), st->meta, &k, &v);
		if (rc == 0 && v.mv_size == 8)
			st->dseq = be64_get(v.mv_data);
		else if (rc == 0)
			return store_rc(MDB_CORRUPTED, "dseq");
		else if (rc != MDB_NOTFOUND)
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
	rc = mdb_get(txn_of(t), st->meta, &k, &v);
	if (rc == 0 && v.mv_size == 8 && be64_get(v.mv_data) == st->dseq)
		return 0;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_rc(rc, "dseq");
	be64_put(buf, st->dseq);
	v.mv_size = 8;
	v.mv_data = buf;
	return store_rc(mdb_put(txn_of(t), st->meta, &k, &v, 0), "dseq");
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
	if ((rc = mdb_get(txn_of(t), st->meta, &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_rc(rc, "counters");
	if (v.mv_size != sizeof(*c)) {
		log_warnx("store: counters damaged; counting from zero");
		return 0;
	}
	memcpy(c, v.mv_data, sizeof(*c));
	return 0;
}

int
store_counters_put(struct store *st, struct store_txn *t,
    const struct store_counters *c)
{
	MDB_val	k = META_KEY(META_COUNTERS), v = { sizeof(*c), (void *)c };

	return store_rc(mdb_put(txn_of(t), st->meta, &k, &v, 0), "counters");
}

int
store_online_put(struct store *st, struct store_txn *t, const char *ids,
    size_t len)
{
	MDB_val	k = META_KEY(META_ONLINE), v = { len, (void *)ids };

	return store_rc(mdb_put(txn_of(t), st->meta, &k, &v, 0), "online");
}

int
store_online_each(struct store *st, struct store_txn *t,
    int (*fn)(const char *, void *), void *arg)
{
	MDB_val		 k = META_KEY(META_ONLINE), v;
	const char	*p, *end;
	char		 id[CC_ID_MAX + 1];
	int		 rc;

	if ((rc = mdb_get(txn_of(t), st->meta, &k, &v)) == MDB_NOTFOUND)
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

/* The key of a caller's value: "x." and its name. */
static int
meta_key(const char *name, char *buf, size_t size, MDB_val *k)
{
	int	n = snprintf(buf, size, "x.%s", name);

	if (n < 0 || (size_t)n >= size)
		return -1;
	k->mv_size = (size_t)n;
	k->mv_data = buf;
	return 0;
}

int
store_meta_put(struct store *st, struct store_txn *t, const char *name,
    const void *data, size_t len)
{
	MDB_val	k, v = { len, (void *)data };
	char	key[64];

	if (meta_key(name, key, sizeof(key), &k) == -1)
		return STORE_NOMEM;
	return store_rc(mdb_put(txn_of(t), st->meta, &k, &v, 0), name);
}

int
store_meta_get(struct store *st, struct store_txn *t, const char *name,
    void *buf, size_t size, size_t *len)
{
	MDB_val	k, v;
	char	key[64];
	int	rc;

	if (meta_key(name, key, sizeof(key), &k) == -1)
		return STORE_NOMEM;
	if ((rc = mdb_get(txn_of(t), st->meta, &k, &v)) != 0)
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
	MDB_val	v = { sizeof(*s), (void *)s };

	return store_rc(mdb_put(txn_of(t), st->subs, &k, &v, 0),
	    "subscription");
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
