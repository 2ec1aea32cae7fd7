/*
 * store_msg.c - stored messages, their subject index, per-recipient
 * delivery states and the expiry index.
 *
 * A message is stored once, sealed; each recipient's queue holds only a
 * reference (struct qent) so fan-out costs no copies of the payload.
 *
 * Iterators whose callback may write (the subject's messages, a message's
 * delivery states) read a chunk of rows, close their cursor, call back for
 * each, and seek again past the last row given: what the callback changes
 * is never under an open cursor, and no count has a ceiling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_impl.h"

#define RKEY_MAX	(16 + CC_ID_MAX)
#define XKEY_LEN	24		/* time(BE) mid */

static size_t	rkey_make(uint8_t *, const uint8_t mid[16], const char *);
static int	indexed_before(struct store *, MDB_txn *,
		    const struct subject_ps *, int, const uint8_t mid[16]);
static int	qsubj_row(struct store *, MDB_txn *, const uint8_t *,
		    const uint8_t mid[16], bool);
static int	queued_one(const char *, const struct rstate *, void *);
static int	is_queued(const char *, const struct rstate *, void *);

int
store_msg_get(struct store *st, struct store_txn *t, const uint8_t mid[16],
    struct msg_hdr *h, const uint8_t **sealed)
{
	MDB_val	k = { 16, (void *)mid }, v;
	int	rc;

	if ((rc = mdb_get(txn_of(t), st->msg, &k, &v)) != 0 ||
	    (rc = msg_value(st, &k, &v, h, sealed)) != 0)
		return store_rc(rc, "message");
	return 0;
}

int
msg_value(struct store *st, const MDB_val *k, const MDB_val *v,
    struct msg_hdr *h, const uint8_t **sealed)
{
	int	rc;

	if ((rc = tag_check_clear(st, TD_MSG, k, v, sizeof(*h))) != 0)
		return rc;
	memcpy(h, v->mv_data, sizeof(*h));
	if (v->mv_size != sizeof(*h) + TAG_LEN + h->sealed_len)
		return MDB_CORRUPTED;
	if (sealed != NULL)
		*sealed = (const uint8_t *)v->mv_data + sizeof(*h) + TAG_LEN;
	return 0;
}

int
store_msg_put(struct store *st, struct store_txn *t, const uint8_t mid[16],
    const struct msg_hdr *h0, const void *frame, size_t len)
{
	struct msg_hdr	 h = *h0;
	MDB_val		 k = { 16, (void *)mid };
	uint8_t		*p;
	size_t		 vlen;
	int		 rc;

	h.sealed_len = frame != NULL ? len + SEAL_OVERHEAD : 0;
	vlen = sizeof(h) + TAG_LEN + h.sealed_len;
	if ((rc = tag_reserve(st, txn_of(t), st->msg, &k, vlen - TAG_LEN, 0,
	    &p)) != 0)
		return store_rc(rc, "message");
	memcpy(p, &h, sizeof(h));
	if (tag_seal(st, TD_MSG, &k, p, sizeof(h)) != 0 ||
	    (frame != NULL && seal_seal(&st->seal, mid, 16, frame, len,
	    p + sizeof(h) + TAG_LEN) == -1))
		return STORE_NOMEM;
	return 0;
}

static int
is_queued(const char *agency, const struct rstate *rs, void *arg)
{
	(void)agency;
	(void)arg;
	return rs->state == ST_QUEUED ? STORE_STOP : 0;
}

/*
 * Drop the payload once no recipient's delivery state is queued: the
 * header stays for idempotent republishing and track.
 */
int
store_msg_release(struct store *st, struct store_txn *t, const uint8_t mid[16],
    size_t *freed)
{
	struct msg_hdr	h;
	int		rc;

	if (freed != NULL)
		*freed = 0;
	if ((rc = store_msg_get(st, t, mid, &h, NULL)) != 0)
		return rc;
	if (h.sealed_len == 0)
		return 0;
	if ((rc = store_rstates(st, t, mid, is_queued, NULL)) == STORE_STOP)
		return 0;
	if (rc != 0)
		return rc;
	if ((rc = store_msg_index(st, t, mid, &h.subj, false)) != 0)
		return rc;
	if (freed != NULL)
		*freed = h.sealed_len - SEAL_OVERHEAD;
	return store_msg_put(st, t, mid, &h, NULL, 0);
}

int
store_msgs_each(struct store *st, struct store_txn *t,
    int (*fn)(const uint8_t mid[16], const struct msg_hdr *, void *),
    void *arg)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	struct msg_hdr	 h;
	int		 rc, frc = 0;

	if ((rc = mdb_cursor_open(txn_of(t), st->msg, &cur)) != 0)
		return store_rc(rc, "messages");
	while (frc == 0 &&
	    (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		if (k.mv_size != 16 || msg_value(st, &k, &v, &h, NULL) != 0) {
			log_warnx("store: a damaged message passed over");
			continue;
		}
		frc = fn(k.mv_data, &h, arg);
	}
	mdb_cursor_close(cur);
	if (frc != 0)
		return frc;
	return rc == MDB_NOTFOUND ? 0 : store_rc(rc, "messages");
}

/* Every row of the message goes, damaged ones too. */
int
store_msg_forget(struct store *st, struct store_txn *t, const uint8_t mid[16])
{
	MDB_cursor	*cur;
	MDB_val		 k = { 16, (void *)mid }, v;
	int		 rc;

	if ((rc = mdb_cursor_open(txn_of(t), st->rstate, &cur)) != 0)
		return store_rc(rc, "delivery states");
	/* Sought again after each delete: a cursor on the deleted last
	 * entry has no current one. */
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= 16 && memcmp(k.mv_data, mid, 16) == 0) {
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		k.mv_size = 16;
		k.mv_data = (void *)mid;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_rc(rc, "delivery states");
	k.mv_size = 16;
	k.mv_data = (void *)mid;
	rc = mdb_del(txn_of(t), st->msg, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : store_rc(rc, "message");
}

void *
store_msg_frame(struct store *st, struct store_txn *t, const uint8_t mid[16],
    size_t *len)
{
	struct msg_hdr	 h;
	const uint8_t	*sealed;
	uint8_t		*out;

	if (store_msg_get(st, t, mid, &h, &sealed) != 0 ||
	    h.sealed_len < SEAL_OVERHEAD)
		return NULL;
	*len = h.sealed_len - SEAL_OVERHEAD;
	if ((out = malloc(*len + 1)) == NULL)
		return NULL;
	if (seal_open(&st->seal, mid, 16, sealed, h.sealed_len, out) == -1) {
		free(out);
		return NULL;
	}
	return out;
}

/*
 * The subject index: pseudonym -> mid, one entry per identifier of a
 * message's subject for as long as its payload is held (not one per
 * recipient: fan-out and acks do not touch it).
 */
int
store_msg_index(struct store *st, struct store_txn *t, const uint8_t mid[16],
    const struct subject_ps *ps, bool add)
{
	int	i, rc;

	for (i = 0; i < SCHEME__COUNT; i++) {
		if (!(ps->has & (1u << i)))
			continue;
		if ((rc = qsubj_row(st, txn_of(t), ps->id[i], mid,
		    add)) != 0)
			return store_rc(rc, "subject index");
	}
	return 0;
}

/*
 * One row of the subject index, added or removed.  The rows of one
 * pseudonym are sorted duplicates; each is the mid and its tag (which
 * binds it to the pseudonym), so a row is found again by its whole value.
 */
static int
qsubj_row(struct store *st, MDB_txn *txn, const uint8_t *pseudo,
    const uint8_t mid[16], bool add)
{
	MDB_val	k = { PSEUDO_LEN, (void *)pseudo };
	uint8_t	row[16 + TAG_LEN];
	MDB_val	v = { sizeof(row), row };
	int	rc;

	memcpy(row, mid, 16);
	if ((rc = tag_make(st, TD_QSUBJ, &k, mid, 16, row + 16)) != 0)
		return rc;
	if (add)
		rc = mdb_put(txn, st->qsubj, &k, &v, MDB_NODUPDATA);
	else
		rc = mdb_del(txn, st->qsubj, &k, &v);
	return rc == MDB_KEYEXIST || rc == MDB_NOTFOUND ? 0 : rc;
}

/* Is mid, found under identifier `scheme` of ps, indexed under an earlier
 * identifier of ps (so already given)?  1, 0, or -1 on error. */
static int
indexed_before(struct store *st, MDB_txn *txn, const struct subject_ps *ps,
    int scheme, const uint8_t mid[16])
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint8_t		 row[16 + TAG_LEN];
	int		 j, rc, found = 0;

	if (mdb_cursor_open(txn, st->qsubj, &cur) != 0)
		return -1;
	for (j = 0; j < scheme && found == 0; j++) {
		if (!(ps->has & (1u << j)))
			continue;
		k.mv_size = PSEUDO_LEN;
		k.mv_data = (void *)ps->id[j];
		memcpy(row, mid, 16);
		if (tag_make(st, TD_QSUBJ, &k, mid, 16, row + 16) != 0) {
			found = -1;
			break;
		}
		v.mv_size = sizeof(row);
		v.mv_data = row;
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH)) == 0)
			found = 1;
		else if (rc != MDB_NOTFOUND)
			found = -1;
	}
	mdb_cursor_close(cur);
	return found;
}

int
store_msgs_of_subject(struct store *st, struct store_txn *t,
    const struct subject_ps *ps, int (*fn)(const uint8_t mid[16], void *),
    void *arg)
{
	MDB_txn		*txn = txn_of(t);
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint8_t		 chunk[STORE_CHUNK][16], last[16 + TAG_LEN];
	int		 i, n, j, rc, dup, op;
	bool		 more;

	for (i = 0; i < SCHEME__COUNT; i++) {
		if (!(ps->has & (1u << i)))
			continue;
		memset(last, 0, sizeof(last));
		op = MDB_SET_KEY;
		do {
			/* A chunk of mids past the last one given. */
			if ((rc = mdb_cursor_open(txn, st->qsubj, &cur)) != 0)
				return store_rc(rc, "subject index");
			k.mv_size = PSEUDO_LEN;
			k.mv_data = (void *)ps->id[i];
			v.mv_size = sizeof(last);
			v.mv_data = last;
			rc = mdb_cursor_get(cur, &k, &v, op == MDB_SET_KEY ?
			    MDB_SET_KEY : MDB_GET_BOTH_RANGE);
			/* Range seek lands on `last` itself when it remains. */
			if (rc == 0 && op != MDB_SET_KEY &&
			    v.mv_size == sizeof(last) &&
			    memcmp(v.mv_data, last, sizeof(last)) == 0)
				rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
			for (n = 0; rc == 0 && n < STORE_CHUNK; n++) {
				MDB_val	row = v;

				/* A damaged row is passed over, said. */
				if (tag_check(st, TD_QSUBJ, &k, &row) != 0 ||
				    row.mv_size != 16) {
					log_warnx("store: a damaged subject "
					    "index row passed over");
					n--;
				} else
					memcpy(chunk[n], row.mv_data, 16);
				memcpy(last, v.mv_data, v.mv_size <
				    sizeof(last) ? v.mv_size : sizeof(last));
				rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
			}
			mdb_cursor_close(cur);
			if (rc != 0 && rc != MDB_NOTFOUND)
				return store_rc(rc, "subject index");
			more = rc == 0;
			op = MDB_GET_BOTH_RANGE;
			for (j = 0; j < n; j++) {
				dup = indexed_before(st, txn, ps, i, chunk[j]);
				if (dup == -1)
					return store_rc(MDB_CORRUPTED,
					    "subject index");
				if (!dup && (rc = fn(chunk[j], arg)) != 0)
					return rc;
			}
		} while (more);
	}
	return 0;
}

static size_t
rkey_make(uint8_t *key, const uint8_t mid[16], const char *agency)
{
	size_t	n = strlen(agency);

	memcpy(key, mid, 16);
	memcpy(key + 16, agency, n);
	return 16 + n;
}

int
store_rstate_put(struct store *st, struct store_txn *t, const uint8_t mid[16],
    const char *agency, const struct rstate *rs)
{
	uint8_t	key[RKEY_MAX];
	MDB_val	k;

	k.mv_size = rkey_make(key, mid, agency);
	k.mv_data = key;
	return store_rc(tag_put(st, txn_of(t), st->rstate, TD_RSTATE, &k, rs,
	    sizeof(*rs), 0), "delivery state");
}

int
store_rstate_get(struct store *st, struct store_txn *t, const uint8_t mid[16],
    const char *agency, struct rstate *rs)
{
	uint8_t	key[RKEY_MAX];
	MDB_val	k, v;
	int	rc;

	k.mv_size = rkey_make(key, mid, agency);
	k.mv_data = key;
	if ((rc = tag_get(st, txn_of(t), st->rstate, TD_RSTATE, &k, &v)) != 0)
		return store_rc(rc, "delivery state");
	if (v.mv_size != sizeof(*rs))
		return store_rc(MDB_CORRUPTED, "delivery state");
	memcpy(rs, v.mv_data, sizeof(*rs));
	return 0;
}

int
store_rstates(struct store *st, struct store_txn *t, const uint8_t mid[16],
    int (*fn)(const char *, const struct rstate *, void *), void *arg)
{
	/* On the stack: fn may call back in here (a drop releasing the
	 * message reads its states again). */
	struct {
		char		agency[CC_ID_MAX + 1];
		struct rstate	rs;
	} chunk[STORE_CHUNK];
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint8_t		 key[RKEY_MAX];
	size_t		 klen = 16;
	int		 i, n, rc;
	bool		 more;

	memcpy(key, mid, 16);
	do {
		if ((rc = mdb_cursor_open(txn_of(t), st->rstate, &cur)) != 0)
			return store_rc(rc, "delivery states");
		k.mv_size = klen;
		k.mv_data = key;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		/* Past the last row given, which may still be there. */
		if (rc == 0 && klen > 16 && k.mv_size == klen &&
		    memcmp(k.mv_data, key, klen) == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		for (n = 0; rc == 0 && n < STORE_CHUNK; n++) {
			if (k.mv_size <= 16 || memcmp(k.mv_data, mid, 16) != 0) {
				rc = MDB_NOTFOUND;
				break;
			}
			/* The key goes on being the place to resume from. */
			memcpy(key, k.mv_data, k.mv_size <= RKEY_MAX ?
			    k.mv_size : RKEY_MAX);
			klen = k.mv_size <= RKEY_MAX ? k.mv_size : RKEY_MAX;
			if (k.mv_size > 16 + CC_ID_MAX ||
			    tag_check(st, TD_RSTATE, &k, &v) != 0 ||
			    v.mv_size != sizeof(struct rstate)) {
				/* Passed over, said: one bad row must not
				 * stop what reads the others. */
				log_warnx("store: a damaged delivery state "
				    "passed over");
				n--;
			} else {
				memcpy(chunk[n].agency, (const uint8_t *)
				    k.mv_data + 16, k.mv_size - 16);
				chunk[n].agency[k.mv_size - 16] = '\0';
				memcpy(&chunk[n].rs, v.mv_data,
				    sizeof(struct rstate));
			}
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(cur);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return store_rc(rc, "delivery states");
		more = rc == 0 && n == STORE_CHUNK;
		for (i = 0; i < n; i++)
			if ((rc = fn(chunk[i].agency, &chunk[i].rs, arg)) != 0)
				return rc;
	} while (more);
	return 0;
}

struct queued_walk {
	struct store		*st;
	struct store_txn	*txn;
	int			(*fn)(const struct queued *, void *);
	void			*arg;
};

static int
queued_one(const char *agency, const struct rstate *rs, void *arg)
{
	struct queued_walk	*w = arg;
	struct queued		 q;
	int			 rc;

	if (rs->state != ST_QUEUED)
		return 0;
	rc = store_queue_get(w->st, w->txn, agency, rs->dseq, &q.q);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	snprintf(q.agency, sizeof(q.agency), "%s", agency);
	q.dseq = rs->dseq;
	return w->fn(&q, w->arg);
}

int
store_queued(struct store *st, struct store_txn *t, const uint8_t mid[16],
    int (*fn)(const struct queued *, void *), void *arg)
{
	struct queued_walk	w = { st, t, fn, arg };

	return store_rstates(st, t, mid, queued_one, &w);
}

int
store_expiry_put(struct store *st, struct store_txn *t, int64_t at_ms,
    const uint8_t mid[16], uint8_t phase)
{
	uint8_t	key[XKEY_LEN];
	MDB_val	k = { sizeof(key), key };

	be64_put(key, (uint64_t)at_ms);
	memcpy(key + 8, mid, 16);
	return store_rc(tag_put(st, txn_of(t), st->expiry, TD_EXPIRY, &k,
	    &phase, 1, 0), "expiry");
}

/* A damaged entry is removed, with a line in the log, so that one bad
 * row never stalls the sweep behind it. */
int
store_expiry_first(struct store *st, struct store_txn *t, int64_t *at_ms,
    uint8_t mid[16], uint8_t *phase)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	int		 rc;

	if ((rc = mdb_cursor_open(txn_of(t), st->expiry, &cur)) != 0)
		return store_rc(rc, "expiry");
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 &&
	    (k.mv_size != XKEY_LEN || tag_check(st, TD_EXPIRY, &k, &v) != 0 ||
	    v.mv_size != 1)) {
		log_warnx("store: a damaged expiry entry removed");
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	if (rc == 0) {
		*at_ms = (int64_t)be64_get(k.mv_data);
		memcpy(mid, (const uint8_t *)k.mv_data + 8, 16);
		*phase = *(const uint8_t *)v.mv_data;
	}
	mdb_cursor_close(cur);
	return store_rc(rc, "expiry");
}

int
store_expiry_del(struct store *st, struct store_txn *t, int64_t at_ms,
    const uint8_t mid[16])
{
	uint8_t	key[XKEY_LEN];
	MDB_val	k = { sizeof(key), key };

	be64_put(key, (uint64_t)at_ms);
	memcpy(key + 8, mid, 16);
	return store_rc(mdb_del(txn_of(t), st->expiry, &k, NULL), "expiry");
}

/*
 * Build the subject index again from the messages whose payload is held
 * (a store upgraded, or the index found damaged).  A message whose header
 * fails its tag is left out, with a line in the log.
 */
int
msg_reindex(struct store *st, MDB_txn *txn)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	struct msg_hdr	 h;
	int		 i, rc;

	if ((rc = mdb_drop(txn, st->qsubj, 0)) != 0 ||
	    (rc = mdb_cursor_open(txn, st->msg, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		if (k.mv_size != 16 || msg_value(st, &k, &v, &h, NULL) != 0) {
			log_warnx("store: a damaged message left out of the "
			    "subject index");
			continue;
		}
		if (h.sealed_len == 0)
			continue;
		for (i = 0; i < SCHEME__COUNT && rc == 0; i++)
			if (h.subj.has & (1u << i))
				rc = qsubj_row(st, txn, h.subj.id[i], k.mv_data,
				    true);
		if (rc != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}
