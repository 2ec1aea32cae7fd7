/*
 * store_format.c - the store's format record, and the upgrade of a store
 * of an earlier format to this one: format 2 (values without integrity
 * tags), 3 (no notices) and 4 (message headers without their record's
 * hash).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_impl.h"

/*
 * The layout of the databases.  A store of another format is refused
 * rather than misread (format 1, before the subject index named messages,
 * had no format record), but for formats 2 (values without integrity
 * tags, every consent in cview), 3 (no notice or disclosure databases)
 * and 4 (message headers without the hash of their record), which a
 * broker upgrades when it opens them.
 */
#define STORE_FORMAT	5
#define FORMAT_UNTAGGED	2
#define FORMAT_SUMMED	3	/* the first with a summary */
#define FORMAT_NO_HASH	4	/* the last without a record's hash */

/* A message's header in formats 2 to 4: struct msg_hdr without rhash. */
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

static int	format_put(struct store *, MDB_txn *, uint32_t);
static int	upgrade(struct store *, MDB_txn *, uint32_t);
static int	retag(struct store *, MDB_txn *, MDB_dbi, uint8_t dom,
		    bool meta, size_t (*)(const MDB_val *));
static size_t	clear_msg(const MDB_val *);
static size_t	clear_consent(const MDB_val *);
static int	rewrite_each(MDB_txn *, MDB_dbi,
		    int (*)(MDB_val *, MDB_val *, void *), void *);
static int	retag_one(MDB_val *, MDB_val *, void *);
static int	rehead(struct store *, MDB_txn *);
static int	rehead_cb(MDB_val *, MDB_val *, void *);
static int	rehead_one(struct store *, MDB_txn *, MDB_val *, MDB_val *,
		    size_t *);

static int
format_put(struct store *st, MDB_txn *txn, uint32_t format)
{
	MDB_val	k = META_KEY(META_FORMAT), v = { sizeof(format), &format };

	return mdb_put(txn, st->meta, &k, &v, 0);
}

/*
 * Check the store's format; a new (empty) store is given this one, and a
 * store of format 2, 3 or 4 is upgraded in the same transaction
 * (read-only, it is refused: the broker upgrades it when it next starts).
 */
int
store_format_check(struct store *st, MDB_txn *txn, char *err, size_t errlen)
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
		if (have < FORMAT_SUMMED && src == 0) {
			snprintf(err, errlen, "store damaged: its format "
			    "record says %u, but it holds what only format %u "
			    "and later have", have, FORMAT_SUMMED);
			return -1;
		}
		if (have >= FORMAT_UNTAGGED && have < STORE_FORMAT &&
		    st->readonly) {
			snprintf(err, errlen, "store format %u: start the "
			    "broker once to upgrade it to format %u", have,
			    STORE_FORMAT);
			return -1;
		}
		if (have >= FORMAT_UNTAGGED && have < STORE_FORMAT) {
			log_info("store: upgrading from format %u to %u",
			    have, STORE_FORMAT);
			if ((rc = upgrade(st, txn, have)) != 0) {
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
 * Format 2, 3 or 4 to 5, in the opening transaction (so a power cut
 * leaves either store whole).
 *   From 2: every value of the primary databases is given its tag (a
 *	message's after its header of then), and the indexes are built
 *	again from them (cview keeps only what can still permit or deny;
 *	csubj is new).
 *   From 3: the notice and disclosure databases are new (store_open made
 *	them, empty), so the summary, which counts every database, is
 *	written again.
 *   From 2, 3 and 4: every message is given the header of format 5, its
 *	record's hash "unknown" (a re-send of it from its sender is taken
 *	for the same record, as before), and its tag again.
 */
static int
upgrade(struct store *st, MDB_txn *txn, uint32_t from)
{
	int	rc;

	if (from == FORMAT_UNTAGGED &&
	    ((rc = retag(st, txn, st->meta, TD_META, true, NULL)) != 0 ||
	    (rc = retag(st, txn, st->consent, TD_CONSENT, false,
	    clear_consent)) != 0 ||
	    (rc = retag(st, txn, st->msg, TD_MSG, false, clear_msg)) != 0 ||
	    (rc = retag(st, txn, st->queue, TD_QUEUE, false, NULL)) != 0 ||
	    (rc = retag(st, txn, st->rstate, TD_RSTATE, false, NULL)) != 0 ||
	    (rc = retag(st, txn, st->expiry, TD_EXPIRY, false, NULL)) != 0 ||
	    (rc = retag(st, txn, st->subs, TD_SUBS, false, NULL)) != 0))
		return rc;
	if ((rc = rehead(st, txn)) != 0)
		return rc;
	if (from == FORMAT_UNTAGGED &&
	    ((rc = consent_reindex(st, txn)) != 0 ||
	    (rc = msg_reindex(st, txn)) != 0))
		return rc;
	if (from == FORMAT_SUMMED &&
	    (rc = store_summary_put(st, (struct store_txn *)txn)) != 0)
		return rc == STORE_FULL ? MDB_MAP_FULL : EIO;
	return format_put(st, txn, STORE_FORMAT);
}

uint32_t
store_format_of(struct store *st, MDB_txn *txn)
{
	MDB_val		k = META_KEY(META_FORMAT), v;
	uint32_t	have;

	if (mdb_get(txn, st->meta, &k, &v) != 0 || v.mv_size != sizeof(have))
		return 0;
	memcpy(&have, v.mv_data, sizeof(have));
	return have;
}

/* The clear part of a format-2 message and consent, which the tag
 * follows (store_impl.h); the rest was sealed. */
static size_t
clear_msg(const MDB_val *v)
{
	return v->mv_size >= sizeof(struct msg_hdr_old) ?
	    sizeof(struct msg_hdr_old) : v->mv_size;
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
 * Rewrite every value of a database, a chunk at a time: the chunk is
 * copied out, the cursor closed, fn called for each copy (it may write
 * the key anew), and the next chunk sought after the last key.
 */
static int
rewrite_each(MDB_txn *txn, MDB_dbi dbi, int (*fn)(MDB_val *, MDB_val *,
    void *), void *arg)
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
			if (rc == 0)
				rc = fn(&ck[i], &cv[i], arg);
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

/* What retag_one needs. */
struct retag {
	struct store	*st;
	MDB_txn		*txn;
	MDB_dbi		 dbi;
	uint8_t		 dom;
	bool		 meta;
	size_t		(*clear_of)(const MDB_val *);
};

/* One value given its tag (after the clear part, when the value has a
 * sealed one); in meta the format record stays as it is. */
static int
retag_one(MDB_val *k, MDB_val *v, void *arg)
{
	struct retag	*r = arg;
	size_t		 cl = r->clear_of != NULL ? r->clear_of(v) : v->mv_size;
	uint8_t		*p;
	int		 rc;

	if (r->meta && k->mv_size == sizeof(META_FORMAT) - 1 &&
	    memcmp(k->mv_data, META_FORMAT, k->mv_size) == 0)
		return 0;
	if ((rc = tag_reserve(r->st, r->txn, r->dbi, k, v->mv_size, 0,
	    &p)) != 0)
		return rc;
	memcpy(p, v->mv_data, cl);
	memcpy(p + cl + TAG_LEN, (uint8_t *)v->mv_data + cl, v->mv_size - cl);
	return tag_seal(r->st, r->dom, k, p, cl);
}

/* Tag every value of a database. */
static int
retag(struct store *st, MDB_txn *txn, MDB_dbi dbi, uint8_t dom, bool meta,
    size_t (*clear_of)(const MDB_val *))
{
	struct retag	r = { st, txn, dbi, dom, meta, clear_of };

	return rewrite_each(txn, dbi, retag_one, &r);
}

/* What rehead_one needs. */
struct rehead {
	struct store	*st;
	MDB_txn		*txn;
	size_t		 damaged;
};

static int
rehead_cb(MDB_val *k, MDB_val *v, void *arg)
{
	struct rehead	*r = arg;

	return rehead_one(r->st, r->txn, k, v, &r->damaged);
}

/*
 * Give every message the header of format 5.  A message whose tag of
 * then fails was damaged before: it stays damaged (rehead_one), said in
 * the log, and the checks report it as before.
 */
static int
rehead(struct store *st, MDB_txn *txn)
{
	struct rehead	r = { st, txn, 0 };
	int		rc;

	rc = rewrite_each(txn, st->msg, rehead_cb, &r);
	if (rc == 0 && r.damaged > 0)
		log_warnx("store: %zu damaged message%s carried over, "
		    "damaged", r.damaged, r.damaged == 1 ? "" : "s");
	return rc;
}

/*
 * The header of format 5 is that of formats 2 to 4 with the record's hash
 * inserted before the subject: a value of format 4 becomes one of format
 * 5 by inserting RECORD_HASH_LEN zero bytes there.
 */
_Static_assert(offsetof(struct msg_hdr, rhash) ==
    offsetof(struct msg_hdr_old, subj) && sizeof(struct msg_hdr) ==
    sizeof(struct msg_hdr_old) + RECORD_HASH_LEN,
    "format 5's message header is format 4's with rhash before subj");

/*
 * One message: a copy of its format-4 value, written back as format 5
 * and tagged again.  One whose format-4 tag fails keeps its bytes and its
 * old tag around the zeros inserted: it fails its tag as before and is
 * reported damaged as before, but has the size of format 5 (one of the
 * old size could pass for a page LMDB cannot have written).  One too
 * short for a header of format 4 is left as it is.
 */
static int
rehead_one(struct store *st, MDB_txn *txn, MDB_val *k, MDB_val *v,
    size_t *damaged)
{
	const size_t	 at = offsetof(struct msg_hdr, rhash);
	const uint8_t	*old = v->mv_data;
	struct msg_hdr_old	 ho;
	uint8_t		*p;
	bool		 sound;
	int		 rc;

	if (k->mv_size != 16 || v->mv_size < sizeof(ho) + TAG_LEN) {
		(*damaged)++;
		return 0;
	}
	memcpy(&ho, old, sizeof(ho));
	rc = tag_check_clear(st, TD_MSG, k, v, sizeof(ho));
	if (rc != 0 && rc != TAG_MISMATCH)
		return rc;
	sound = rc == 0 &&
	    v->mv_size == sizeof(ho) + TAG_LEN + (size_t)ho.sealed_len;
	if (!sound)
		(*damaged)++;
	if ((rc = tag_reserve(st, txn, st->msg, k, v->mv_size +
	    RECORD_HASH_LEN - TAG_LEN, 0, &p)) != 0)
		return rc;
	memcpy(p, old, at);
	memset(p + at, 0, RECORD_HASH_LEN);
	memcpy(p + at + RECORD_HASH_LEN, old + at, v->mv_size - at);
	return sound ? tag_seal(st, TD_MSG, k, p, sizeof(struct msg_hdr)) : 0;
}
