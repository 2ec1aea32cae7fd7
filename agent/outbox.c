/*
 * outbox.c - the agent's LMDB store: outbox and seen-set.
 *
 * Databases:
 *	outbox	seq (u64, big-endian) -> name NUL mid NUL json
 *	outname	name -> seq: the last record queued from an out/ file
 *		of that name, so that a file taken again after a crash
 *		(queued, not yet removed from out/) is not queued twice
 *	seen	key -> time (ms): a delivery (mid) or a receipt
 *		(mid.agency.state) stored in the spool
 *	meta	"seq" -> the last seq given (u64): never given twice, even
 *		after the outbox ran empty, so the daemon's cursor holds
 * An earlier agent kept `outmid` and `done`, mids queued and answered,
 * and queued no file whose mid was in either: such a file left out/ for
 * neither sent/ nor rejected/.  They are removed when the store opens.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "bytes.h"
#include "log.h"
#include "outbox.h"

#define OUTBOX_MAP_BYTES	((size_t)1 << 30)	/* sparse; grows on disk */

struct outbox {
	MDB_env	*env;
	MDB_dbi	 outbox, outname, seen, meta;
	char	 err[160];		/* why the last call failed */
};

static void	set_error(struct outbox *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	put_time(MDB_txn *, MDB_dbi, const char *);
static int	prune_db(struct outbox *, MDB_txn *, MDB_dbi, const char *,
		    int64_t);
static int	entry_read(struct outbox *, const MDB_val *, const MDB_val *,
		    struct outbox_entry *);
static int	drop_old(MDB_txn *, const char *);

static void
set_error(struct outbox *ob, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	(void)vsnprintf(ob->err, sizeof(ob->err), fmt, ap);
	va_end(ap);
}

const char *
outbox_error(const struct outbox *ob)
{
	return ob->err[0] != '\0' ? ob->err : "no error";
}

struct outbox *
outbox_open(const char *dir, char *err, size_t errlen)
{
	struct outbox	*ob;
	struct stat	 sb;
	MDB_txn		*txn = NULL;
	int		 rc;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		(void)snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	/* Queued records wait here in clear: the agency's eyes only. */
	if (stat(dir, &sb) == -1) {
		(void)snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	/*
	 * A directory others can enter is closed to them rather than
	 * refused: it is the agent's own, and it may have been made with the
	 * default umask before the agent first ran.
	 */
	if (sb.st_mode & 077) {
		if (chmod(dir, 0700) == -1) {
			(void)snprintf(err, errlen, "%s: accessible by group or "
			    "others, and chmod 700 failed: %s", dir,
			    strerror(errno));
			return NULL;
		}
		log_warnx("%s: was accessible by group or others; now 0700",
		    dir);
	}
	if ((ob = calloc(1, sizeof(*ob))) == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((rc = mdb_env_create(&ob->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(ob->env, 6)) != 0 ||
	    (rc = mdb_env_set_mapsize(ob->env, OUTBOX_MAP_BYTES)) != 0 ||
	    (rc = mdb_env_open(ob->env, dir, 0, 0600)) != 0 ||
	    (rc = mdb_txn_begin(ob->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "outbox", MDB_CREATE, &ob->outbox)) != 0 ||
	    (rc = mdb_dbi_open(txn, "outname", MDB_CREATE,
	    &ob->outname)) != 0 ||
	    (rc = mdb_dbi_open(txn, "seen", MDB_CREATE, &ob->seen)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ob->meta)) != 0 ||
	    (rc = drop_old(txn, "outmid")) != 0 ||
	    (rc = drop_old(txn, "done")) != 0)
		goto fail;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		goto fail;
	return ob;
fail:
	(void)snprintf(err, errlen, "%s: %s", dir, mdb_strerror(rc));
	if (txn != NULL)
		mdb_txn_abort(txn);
	outbox_close(&ob);
	return NULL;
}

/* Remove a database of an earlier agent's, when there is one. */
static int
drop_old(MDB_txn *txn, const char *name)
{
	MDB_dbi	dbi;
	int	rc;

	if ((rc = mdb_dbi_open(txn, name, 0, &dbi)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	return mdb_drop(txn, dbi, 1);
}

void
outbox_close(struct outbox **obp)
{
	struct outbox	*ob = *obp;

	if (ob == NULL)
		return;
	if (ob->env != NULL)
		mdb_env_close(ob->env);
	free(ob);
	*obp = NULL;
}

static int
put_time(MDB_txn *txn, MDB_dbi dbi, const char *key)
{
	MDB_val	k, v;
	uint8_t	t[8];

	be64_put(t, (uint64_t)cc_time_now_ms());
	k.mv_size = strlen(key);
	k.mv_data = (void *)key;
	v.mv_size = sizeof(t);
	v.mv_data = t;
	return mdb_put(txn, dbi, &k, &v, 0);
}

/*
 * The next seq is one past both the last one given (meta "seq") and the
 * last key in the outbox.  A value of the wrong size in either is
 * corruption, reported: guessing could give a seq twice, and the daemon's
 * cursor would then skip a record.
 */
int
outbox_put(struct outbox *ob, const char *mid, const char *name,
    const char *json, uint64_t *seq)
{
	MDB_txn		*txn = NULL;
	MDB_cursor	*cur = NULL;
	MDB_val		 k, v;
	uint8_t		 key[8], *p;
	size_t		 nl = strlen(name), ml = strlen(mid), jl = strlen(json);
	const char	*what;
	int		 rc;

	if (nl == 0 || nl > OUTBOX_NAME_MAX || ml == 0 || ml > CC_UUID_LEN) {
		set_error(ob, "a name or mid of a bad length");
		return -1;
	}
	what = "begin";
	if ((rc = mdb_txn_begin(ob->env, NULL, 0, &txn)) != 0)
		goto fail;
	/* This file, queued already and still unanswered? */
	k.mv_size = nl;
	k.mv_data = (void *)name;
	what = "outname";
	if ((rc = mdb_get(txn, ob->outname, &k, &v)) == 0) {
		if (v.mv_size != 8)
			goto corrupt;
		memcpy(key, v.mv_data, sizeof(key));
		k.mv_size = sizeof(key);
		k.mv_data = key;
		what = "outbox";
		if ((rc = mdb_get(txn, ob->outbox, &k, &v)) == 0) {
			p = v.mv_data;
			if (v.mv_size == nl + 1 + ml + 1 + jl &&
			    memcmp(p, name, nl + 1) == 0 &&
			    memcmp(p + nl + 1, mid, ml + 1) == 0 &&
			    memcmp(p + nl + 1 + ml + 1, json, jl) == 0)
				goto known;
		} else if (rc != MDB_NOTFOUND)
			goto fail;
	} else if (rc != MDB_NOTFOUND)
		goto fail;

	*seq = 1;
	k.mv_size = 3;
	k.mv_data = "seq";
	what = "meta";
	if ((rc = mdb_get(txn, ob->meta, &k, &v)) == 0) {
		if (v.mv_size != 8)
			goto corrupt;
		*seq = be64_get(v.mv_data) + 1;
	} else if (rc != MDB_NOTFOUND)
		goto fail;
	what = "outbox";
	if ((rc = mdb_cursor_open(txn, ob->outbox, &cur)) != 0)
		goto fail;
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	mdb_cursor_close(cur);
	if (rc == 0) {
		if (k.mv_size != 8)
			goto corrupt;
		if (be64_get(k.mv_data) >= *seq)
			*seq = be64_get(k.mv_data) + 1;
	} else if (rc != MDB_NOTFOUND)
		goto fail;

	be64_put(key, *seq);
	k.mv_size = 3;
	k.mv_data = "seq";
	v.mv_size = sizeof(key);
	v.mv_data = key;
	what = "meta";
	if ((rc = mdb_put(txn, ob->meta, &k, &v, 0)) != 0)
		goto fail;
	k.mv_size = sizeof(key);
	k.mv_data = key;
	v.mv_size = nl + 1 + ml + 1 + jl;
	what = "outbox";
	if ((rc = mdb_put(txn, ob->outbox, &k, &v, MDB_RESERVE)) != 0)
		goto fail;
	p = v.mv_data;
	memcpy(p, name, nl + 1);
	memcpy(p + nl + 1, mid, ml + 1);
	memcpy(p + nl + 1 + ml + 1, json, jl);
	k.mv_size = nl;
	k.mv_data = (void *)name;
	v.mv_size = sizeof(key);
	v.mv_data = key;
	what = "outname";
	if ((rc = mdb_put(txn, ob->outname, &k, &v, 0)) != 0)
		goto fail;
	what = "commit";
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		goto fail;
	return 1;
known:
	mdb_txn_abort(txn);
	return 0;
corrupt:
	set_error(ob, "LMDB %s: a key or value of the wrong size", what);
	mdb_txn_abort(txn);
	return -1;
fail:
	set_error(ob, "LMDB %s: %s", what, mdb_strerror(rc));
	if (txn != NULL)
		mdb_txn_abort(txn);
	return -1;
}

/* An outbox entry: key seq, value name NUL mid NUL json. */
static int
entry_read(struct outbox *ob, const MDB_val *k, const MDB_val *v,
    struct outbox_entry *e)
{
	const char	*p = v->mv_data, *end = p + v->mv_size, *mid, *json;
	size_t		 nl, ml;

	memset(e, 0, sizeof(*e));
	if (k->mv_size != 8 || (mid = memchr(p, '\0', v->mv_size)) == NULL)
		goto corrupt;
	nl = (size_t)(mid - p);
	mid++;
	if ((json = memchr(mid, '\0', (size_t)(end - mid))) == NULL)
		goto corrupt;
	ml = (size_t)(json - mid);
	json++;
	if (nl > OUTBOX_NAME_MAX || ml > CC_UUID_LEN)
		goto corrupt;
	if ((e->json = malloc((size_t)(end - json) + 1)) == NULL) {
		set_error(ob, "out of memory");
		return -1;
	}
	e->seq = be64_get(k->mv_data);
	memcpy(e->name, p, nl);
	memcpy(e->mid, mid, ml);
	memcpy(e->json, json, (size_t)(end - json));
	e->json[end - json] = '\0';
	return 0;
corrupt:
	set_error(ob, "LMDB outbox: a corrupt entry (key of %zu bytes)",
	    k->mv_size);
	return -1;
}

int
outbox_next(struct outbox *ob, uint64_t after, struct outbox_entry *e)
{
	MDB_txn		*txn = NULL;
	MDB_cursor	*cur = NULL;
	MDB_val		 k, v;
	uint8_t		 key[8];
	int		 rc, ret = -1;

	memset(e, 0, sizeof(*e));
	if ((rc = mdb_txn_begin(ob->env, NULL, MDB_RDONLY, &txn)) != 0 ||
	    (rc = mdb_cursor_open(txn, ob->outbox, &cur)) != 0)
		goto fail;
	be64_put(key, after + 1);
	k.mv_size = sizeof(key);
	k.mv_data = key;
	/* Only MDB_NOTFOUND means there is none: any other error is one. */
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND)
		ret = 1;
	else if (rc == 0)
		ret = entry_read(ob, &k, &v, e);
	else
		goto fail;
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return ret;
fail:
	set_error(ob, "LMDB outbox: %s", mdb_strerror(rc));
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	return -1;
}

void
outbox_entry_free(struct outbox_entry *e)
{
	free(e->json);
	e->json = NULL;
}

/* The entry goes, and its name's row when it names this entry. */
int
outbox_done(struct outbox *ob, uint64_t seq)
{
	MDB_txn		*txn = NULL;
	MDB_val		 k, v, nk;
	uint8_t		 key[8];
	char		 name[OUTBOX_NAME_MAX];
	const char	*end;
	int		 rc;

	if ((rc = mdb_txn_begin(ob->env, NULL, 0, &txn)) != 0)
		goto fail;
	be64_put(key, seq);
	k.mv_size = sizeof(key);
	k.mv_data = key;
	if ((rc = mdb_get(txn, ob->outbox, &k, &v)) == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (rc != 0)
		goto fail;
	/* The name copied out of the page before anything is written. */
	if ((end = memchr(v.mv_data, '\0', v.mv_size)) != NULL &&
	    end > (const char *)v.mv_data &&
	    (size_t)(end - (const char *)v.mv_data) <= sizeof(name)) {
		nk.mv_size = (size_t)(end - (const char *)v.mv_data);
		memcpy(name, v.mv_data, nk.mv_size);
		nk.mv_data = name;
		rc = mdb_get(txn, ob->outname, &nk, &v);
		if (rc == 0 && v.mv_size == sizeof(key) &&
		    memcmp(v.mv_data, key, sizeof(key)) == 0)
			rc = mdb_del(txn, ob->outname, &nk, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			goto fail;
	}
	if ((rc = mdb_del(txn, ob->outbox, &k, NULL)) != 0)
		goto fail;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		goto fail;
	return 0;
fail:
	set_error(ob, "LMDB done: %s", mdb_strerror(rc));
	if (txn != NULL)
		mdb_txn_abort(txn);
	return -1;
}

size_t
outbox_count(struct outbox *ob)
{
	MDB_txn		*txn;
	MDB_stat	 st;
	size_t		 n = 0;

	if (mdb_txn_begin(ob->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	if (mdb_stat(txn, ob->outbox, &st) == 0)
		n = st.ms_entries;
	mdb_txn_abort(txn);
	return n;
}

int
outbox_seen(struct outbox *ob, const char *key)
{
	MDB_txn	*txn;
	MDB_val	 k, v;
	int	 rc;

	if ((rc = mdb_txn_begin(ob->env, NULL, MDB_RDONLY, &txn)) != 0)
		goto fail;
	k.mv_size = strlen(key);
	k.mv_data = (void *)key;
	rc = mdb_get(txn, ob->seen, &k, &v);
	mdb_txn_abort(txn);
	if (rc == 0)
		return 1;
	if (rc == MDB_NOTFOUND)
		return 0;
fail:
	set_error(ob, "LMDB seen: %s", mdb_strerror(rc));
	return -1;
}

int
outbox_seen_put(struct outbox *ob, const char *key)
{
	MDB_txn	*txn = NULL;
	int	 rc;

	if ((rc = mdb_txn_begin(ob->env, NULL, 0, &txn)) != 0 ||
	    (rc = put_time(txn, ob->seen, key)) != 0)
		goto fail;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		goto fail;
	return 0;
fail:
	set_error(ob, "LMDB seen: %s", mdb_strerror(rc));
	if (txn != NULL)
		mdb_txn_abort(txn);
	return -1;
}

/*
 * Delete the keys of dbi whose time is before `before`.  The walk ends
 * only at MDB_NOTFOUND: any other cursor error is reported, or a prune
 * that met a bad page would pass for one that finished.  A time of the
 * wrong size is corruption, reported too: its age is unknown, and dropping
 * a seen key would let a stored delivery in twice.
 */
static int
prune_db(struct outbox *ob, MDB_txn *txn, MDB_dbi dbi, const char *name,
    int64_t before)
{
	MDB_cursor	*cur = NULL;
	MDB_val		 k, v;
	int		 rc, ret = -1;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		goto fail;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		if (v.mv_size != 8) {
			set_error(ob, "LMDB %s: a time of %zu bytes",
			    name, v.mv_size);
			goto out;
		}
		if ((int64_t)be64_get(v.mv_data) < before &&
		    (rc = mdb_cursor_del(cur, 0)) != 0)
			goto fail;
	}
	if (rc != MDB_NOTFOUND)
		goto fail;
	ret = 0;
	goto out;
fail:
	set_error(ob, "LMDB %s: %s", name, mdb_strerror(rc));
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	return ret;
}

/*
 * A delivery can only come again while it is unacked, and retention ends
 * that within retention_days; keys far older are kept for nothing.
 */
int
outbox_prune(struct outbox *ob, int64_t max_age_ms)
{
	MDB_txn	*txn = NULL;
	int64_t	 before = cc_time_now_ms() - max_age_ms;
	int	 rc;

	if ((rc = mdb_txn_begin(ob->env, NULL, 0, &txn)) != 0)
		goto fail;
	if (prune_db(ob, txn, ob->seen, "seen", before) == -1) {
		mdb_txn_abort(txn);
		return -1;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		goto fail;
	return 0;
fail:
	set_error(ob, "LMDB prune: %s", mdb_strerror(rc));
	if (txn != NULL)
		mdb_txn_abort(txn);
	return -1;
}
