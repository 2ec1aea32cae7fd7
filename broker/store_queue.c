/*
 * store_queue.c - stored messages, per-agency queues, delivery states and
 * subscriptions.
 *
 * A message is stored once, sealed; each recipient's queue holds only a
 * reference (struct qent) so fan-out costs no copies of the payload.
 */
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define QKEY_MAX	(CC_ID_MAX + 1 + 8)
#define RKEY_MAX	(16 + CC_ID_MAX)

static size_t	rkey_make(uint8_t *, const uint8_t mid[16], const char *);
static int	mid_cmp(const void *, const void *);

int
store_msg_get(struct store *st, MDB_txn *txn, const uint8_t mid[16],
    struct msg_hdr *h, const uint8_t **sealed)
{
	MDB_val	k = { 16, (void *)mid }, v;
	int	rc;

	if ((rc = mdb_get(txn, st->msg, &k, &v)) != 0)
		return rc;
	if (v.mv_size < sizeof(*h))
		return MDB_CORRUPTED;
	memcpy(h, v.mv_data, sizeof(*h));
	if (v.mv_size != sizeof(*h) + h->sealed_len)
		return MDB_CORRUPTED;
	if (sealed != NULL)
		*sealed = (const uint8_t *)v.mv_data + sizeof(*h);
	return 0;
}

int
store_msg_put(struct store *st, MDB_txn *txn, const uint8_t mid[16],
    const struct msg_hdr *h0, const void *frame, size_t len)
{
	struct msg_hdr	h = *h0;
	MDB_val		k = { 16, (void *)mid }, v;
	int		rc;

	h.sealed_len = frame != NULL ? len + SEAL_OVERHEAD : 0;
	v.mv_size = sizeof(h) + h.sealed_len;
	if ((rc = mdb_put(txn, st->msg, &k, &v, MDB_RESERVE)) != 0)
		return rc;
	memcpy(v.mv_data, &h, sizeof(h));
	if (frame != NULL && seal_seal(&st->seal, mid, 16, frame, len,
	    (uint8_t *)v.mv_data + sizeof(h)) == -1)
		return MDB_PANIC;
	return 0;
}

/*
 * Drop the payload once no recipient's delivery state is queued: the
 * header stays for idempotent republishing and track.
 */
int
store_msg_release(struct store *st, MDB_txn *txn, const uint8_t mid[16])
{
	struct msg_hdr	 h;
	MDB_cursor	*cur;
	MDB_val		 k = { 16, (void *)mid }, v;
	struct rstate	 rs;
	bool		 queued = false;
	int		 rc;

	if ((rc = store_msg_get(st, txn, mid, &h, NULL)) != 0)
		return rc;
	if (h.sealed_len == 0)
		return 0;
	if ((rc = mdb_cursor_open(txn, st->rstate, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size > 16 && memcmp(k.mv_data, mid, 16) == 0) {
		if (v.mv_size == sizeof(rs)) {
			memcpy(&rs, v.mv_data, sizeof(rs));
			if (rs.state == ST_QUEUED) {
				queued = true;
				break;
			}
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (queued)
		return 0;
	if ((rc = store_msg_index(st, txn, mid, &h.subj, false)) != 0)
		return rc;
	return store_msg_put(st, txn, mid, &h, NULL, 0);
}

void *
store_msg_frame(struct store *st, MDB_txn *txn, const uint8_t mid[16],
    size_t *len)
{
	struct msg_hdr	 h;
	const uint8_t	*sealed;
	uint8_t		*out;

	if (store_msg_get(st, txn, mid, &h, &sealed) != 0 ||
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
store_msg_index(struct store *st, MDB_txn *txn, const uint8_t mid[16],
    const struct subject_ps *ps, bool add)
{
	int	i, rc;

	for (i = 0; i < SCHEME__COUNT; i++) {
		MDB_val k = { PSEUDO_LEN, (void *)ps->id[i] };
		MDB_val v = { 16, (void *)mid };

		if (!(ps->has & (1u << i)))
			continue;
		if (add)
			rc = mdb_put(txn, st->qsubj, &k, &v, MDB_NODUPDATA);
		else
			rc = mdb_del(txn, st->qsubj, &k, &v);
		if (rc != 0 && rc != MDB_KEYEXIST && rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
}

static int
mid_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

int
store_msg_of_subject(struct store *st, MDB_txn *txn,
    const struct subject_ps *ps, uint8_t (*mids)[16], int max)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	int		 i, n = 0, j, rc = 0;

	if (mdb_cursor_open(txn, st->qsubj, &cur) != 0)
		return -1;
	for (i = 0; i < SCHEME__COUNT && n < max; i++) {
		if (!(ps->has & (1u << i)))
			continue;
		k.mv_size = PSEUDO_LEN;
		k.mv_data = (void *)ps->id[i];
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
		while (rc == 0 && n < max) {
			if (v.mv_size == 16)
				memcpy(mids[n++], v.mv_data, 16);
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
		}
		if (rc != 0 && rc != MDB_NOTFOUND)
			break;
		rc = 0;
	}
	mdb_cursor_close(cur);
	if (rc != 0)
		return -1;
	/* A message indexed under two identifiers is named once. */
	qsort(mids, (size_t)n, 16, mid_cmp);
	for (i = 0, j = 0; i < n; i++)
		if (j == 0 || memcmp(mids[j - 1], mids[i], 16) != 0)
			memmove(mids[j++], mids[i], 16);
	return j;
}

int
store_queue_put(struct store *st, MDB_txn *txn, const char *agency,
    uint64_t dseq, const struct qent *q)
{
	uint8_t	key[QKEY_MAX];
	MDB_val	k, v = { sizeof(*q), (void *)q };

	k.mv_size = qkey_make(key, agency, dseq);
	k.mv_data = key;
	return mdb_put(txn, st->queue, &k, &v, MDB_NOOVERWRITE);
}

int
store_queue_get(struct store *st, MDB_txn *txn, const char *agency,
    uint64_t dseq, struct qent *q)
{
	uint8_t	key[QKEY_MAX];
	MDB_val	k, v;
	int	rc;

	k.mv_size = qkey_make(key, agency, dseq);
	k.mv_data = key;
	if ((rc = mdb_get(txn, st->queue, &k, &v)) != 0)
		return rc;
	if (v.mv_size != sizeof(*q))
		return MDB_CORRUPTED;
	memcpy(q, v.mv_data, sizeof(*q));
	return 0;
}

int
store_queue_del(struct store *st, MDB_txn *txn, const char *agency,
    uint64_t dseq)
{
	uint8_t	key[QKEY_MAX];
	MDB_val	k;

	k.mv_size = qkey_make(key, agency, dseq);
	k.mv_data = key;
	return mdb_del(txn, st->queue, &k, NULL);
}

int
store_queue_next(struct store *st, MDB_txn *txn, const char *agency,
    uint64_t after, uint64_t *dseq, struct qent *q)
{
	uint8_t		 key[QKEY_MAX];
	size_t		 n = strlen(agency);
	MDB_cursor	*cur;
	MDB_val		 k, v;
	int		 rc;

	k.mv_size = qkey_make(key, agency, after + 1);
	k.mv_data = key;
	if ((rc = mdb_cursor_open(txn, st->queue, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0) {
		if (k.mv_size != n + 9 || memcmp(k.mv_data, agency, n + 1))
			rc = MDB_NOTFOUND;
		else if (v.mv_size != sizeof(*q))
			rc = MDB_CORRUPTED;
		else {
			*dseq = be64_get((const uint8_t *)k.mv_data + n + 1);
			memcpy(q, v.mv_data, sizeof(*q));
		}
	}
	mdb_cursor_close(cur);
	return rc;
}

int
store_queue_depth(struct store *st, MDB_txn *txn, const char *agency,
    size_t *depth, int64_t *oldest_ms)
{
	uint8_t		 key[QKEY_MAX];
	size_t		 n = strlen(agency);
	MDB_cursor	*cur;
	MDB_val		 k, v;
	struct qent	 q;
	int		 rc;

	*depth = 0;
	*oldest_ms = 0;
	k.mv_size = qkey_make(key, agency, 0);
	k.mv_data = key;
	if ((rc = mdb_cursor_open(txn, st->queue, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == n + 9 &&
	    memcmp(k.mv_data, agency, n + 1) == 0) {
		if (v.mv_size == sizeof(q)) {
			memcpy(&q, v.mv_data, sizeof(q));
			if (*depth == 0 || q.at_ms < *oldest_ms)
				*oldest_ms = q.at_ms;
		}
		(*depth)++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
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
store_rstate_put(struct store *st, MDB_txn *txn, const uint8_t mid[16],
    const char *agency, const struct rstate *rs)
{
	uint8_t	key[RKEY_MAX];
	MDB_val	k, v = { sizeof(*rs), (void *)rs };

	k.mv_size = rkey_make(key, mid, agency);
	k.mv_data = key;
	return mdb_put(txn, st->rstate, &k, &v, 0);
}

int
store_rstate_get(struct store *st, MDB_txn *txn, const uint8_t mid[16],
    const char *agency, struct rstate *rs)
{
	uint8_t	key[RKEY_MAX];
	MDB_val	k, v;
	int	rc;

	k.mv_size = rkey_make(key, mid, agency);
	k.mv_data = key;
	if ((rc = mdb_get(txn, st->rstate, &k, &v)) != 0)
		return rc;
	if (v.mv_size != sizeof(*rs))
		return MDB_CORRUPTED;
	memcpy(rs, v.mv_data, sizeof(*rs));
	return 0;
}

int
store_rstates(struct store *st, MDB_txn *txn, const uint8_t mid[16],
    char (*agencies)[CC_ID_MAX + 1], struct rstate *rs, int max)
{
	MDB_cursor	*cur;
	MDB_val		 k = { 16, (void *)mid }, v;
	int		 n = 0, rc;

	if (mdb_cursor_open(txn, st->rstate, &cur) != 0)
		return -1;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && n < max && k.mv_size > 16 &&
	    k.mv_size <= 16 + CC_ID_MAX && memcmp(k.mv_data, mid, 16) == 0) {
		if (v.mv_size != sizeof(*rs))
			break;
		memcpy(agencies[n], (const uint8_t *)k.mv_data + 16,
		    k.mv_size - 16);
		agencies[n][k.mv_size - 16] = '\0';
		memcpy(&rs[n], v.mv_data, sizeof(*rs));
		n++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? n : -1;
}

int
store_queued(struct store *st, MDB_txn *txn, const uint8_t mid[16],
    struct queued *out, int max)
{
	char		ag[64][CC_ID_MAX + 1];
	struct rstate	rs[64];
	int		i, n, k = 0, rc;

	if ((n = store_rstates(st, txn, mid, ag, rs, 64)) < 0)
		return -1;
	for (i = 0; i < n && k < max; i++) {
		if (rs[i].state != ST_QUEUED)
			continue;
		rc = store_queue_get(st, txn, ag[i], rs[i].dseq, &out[k].q);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return -1;
		memcpy(out[k].agency, ag[i], sizeof(ag[i]));
		out[k].dseq = rs[i].dseq;
		k++;
	}
	return k;
}

int
store_sub_put(struct store *st, MDB_txn *txn, const char *agency,
    const struct sub *s)
{
	MDB_val	k = { strlen(agency), (void *)agency };
	MDB_val	v = { sizeof(*s), (void *)s };

	return mdb_put(txn, st->subs, &k, &v, 0);
}
