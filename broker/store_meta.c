/*
 * store_meta.c - the broker's metadata: the next delivery number,
 * counters, who is online, named records for `stats`, subscriptions, and
 * subjects' pseudonyms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_impl.h"

#define DSEQ_GAP	(1ULL << 32)	/* after a damaged dseq */

static int	dseq_recover(struct store *, MDB_txn *, bool);

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
store_record_hash(const struct store *st, const uint8_t mid[16],
    const void *rec, size_t len, uint8_t out[RECORD_HASH_LEN])
{
	static const uint8_t	zero[RECORD_HASH_LEN];

	if (seal_tag(&st->seal, TD_RECORD, mid, 16, rec, len, out) == -1)
		return -1;
	/* One chance in 2^128, but zero must keep meaning "unknown". */
	if (memcmp(out, zero, RECORD_HASH_LEN) == 0)
		out[RECORD_HASH_LEN - 1] = 1;
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

	if ((n = snprintf(key, sizeof(key), META_NAMED "%s", name)) < 0 ||
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

	if ((n = snprintf(key, sizeof(key), META_NAMED "%s", name)) < 0 ||
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

