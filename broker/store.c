/*
 * store.c - the LMDB environment: opening, transactions, errors, usage,
 * backup, and faults met while reading a damaged store.  The metadata is
 * in store_meta.c, the format and its upgrade in store_format.c, the
 * checks of the file before LMDB maps it in store_file.c.
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

static void	on_fault(int);
static void	on_lmdb_assert(MDB_env *, const char *);

struct dbdef {
	const char	*name;
	size_t		 off;
	unsigned	 flags;
	uint32_t	 since;		/* the format that added it */
};

static const struct dbdef dbdefs[] = {
	{ "meta",	offsetof(struct store, meta),	 0, 0 },
	{ "consent",	offsetof(struct store, consent), 0, 0 },
	{ "cview",	offsetof(struct store, cview),	 0, 0 },
	{ "csubj",	offsetof(struct store, csubj),	 0, 3 },
	{ "msg",	offsetof(struct store, msg),	 0, 0 },
	{ "queue",	offsetof(struct store, queue),	 0, 0 },
	{ "qsubj",	offsetof(struct store, qsubj),	 MDB_DUPSORT, 0 },
	{ "rstate",	offsetof(struct store, rstate),	 0, 0 },
	{ "expiry",	offsetof(struct store, expiry),	 0, 0 },
	{ "subs",	offsetof(struct store, subs),	 0, 0 },
	{ "notice",	offsetof(struct store, notice),	 0, 4 },
	{ "discl",	offsetof(struct store, discl),	 0, 4 },
	{ "audit",	offsetof(struct store, audit),	 0, 0 },
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
	uint32_t	 format = 0;
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
	if (store_metas_sound(dir, err, errlen) == -1) {
		store_close(&st);
		return -1;
	}
	if ((rc = mdb_env_open(st->env, dir, MDB_NOTLS |
	    (readonly ? MDB_RDONLY : 0), 0600)) != 0 ||
	    (rc = mdb_env_stat(st->env, &ms)) != 0)
		goto fail;
	st->psize = ms.ms_psize;
	if (!readonly && (rc = store_freelist_sound(st, err, errlen)) != 0) {
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
	 * empty), csubj, which format 3 added, in a store of format 2, and
	 * those format 4 added in a store whose format record is older
	 * (read-only, they cannot be made: the format check explains).  Any
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
			    dbi == &st->csubj || (format > 0 &&
			    format < dbdefs[i].since));

		rc = mdb_dbi_open(txn, dbdefs[i].name, dbdefs[i].flags |
		    (make ? MDB_CREATE : 0), dbi);
		if (rc == MDB_NOTFOUND) {
			if (missing == NULL || dbi == &st->meta)
				missing = dbdefs[i].name;
		} else if (rc != 0)
			goto fail;
		else if (dbi == &st->meta)
			format = store_format_of(st, txn);
	}
	/* Without meta, there is no format to check. */
	if ((missing == NULL || strcmp(missing, "meta") != 0) &&
	    store_format_check(st, txn, err, errlen) == -1) {
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

