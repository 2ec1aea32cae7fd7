/*
 * store_queue.c - per-agency queues of deliveries and receipts.
 *
 * Key: agency id, NUL, dseq big-endian, so one agency's entries are one
 * key range in the order the broker accepted them.
 */
#include <string.h>

#include "log.h"
#include "store_impl.h"

#define QKEY_MAX	(CC_ID_MAX + 1 + 8)

static size_t	qkey_make(uint8_t *, const char *, uint64_t);
static int	qkey_split(const MDB_val *, char *, size_t, uint64_t *);

static size_t
qkey_make(uint8_t *key, const char *agency, uint64_t dseq)
{
	size_t	n = strlen(agency);

	memcpy(key, agency, n + 1);
	be64_put(key + n + 1, dseq);
	return n + 9;
}

static int
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

int
store_queue_put(struct store *st, struct store_txn *t, const char *agency,
    uint64_t dseq, const struct qent *q)
{
	uint8_t	key[QKEY_MAX];
	MDB_val	k;

	k.mv_size = qkey_make(key, agency, dseq);
	k.mv_data = key;
	return store_rc(tag_put(st, txn_of(t), st->queue, TD_QUEUE, &k, q,
	    sizeof(*q), MDB_NOOVERWRITE), "queue");
}

int
store_queue_get(struct store *st, struct store_txn *t, const char *agency,
    uint64_t dseq, struct qent *q)
{
	uint8_t	key[QKEY_MAX];
	MDB_val	k, v;
	int	rc;

	k.mv_size = qkey_make(key, agency, dseq);
	k.mv_data = key;
	if ((rc = tag_get(st, txn_of(t), st->queue, TD_QUEUE, &k, &v)) != 0)
		return store_rc(rc, "queue");
	if (v.mv_size != sizeof(*q))
		return store_rc(MDB_CORRUPTED, "queue entry");
	memcpy(q, v.mv_data, sizeof(*q));
	return 0;
}

int
store_queue_del(struct store *st, struct store_txn *t, const char *agency,
    uint64_t dseq)
{
	uint8_t	key[QKEY_MAX];
	MDB_val	k;

	k.mv_size = qkey_make(key, agency, dseq);
	k.mv_data = key;
	return store_rc(mdb_del(txn_of(t), st->queue, &k, NULL), "queue");
}

int
store_queue_next(struct store *st, struct store_txn *t, const char *agency,
    uint64_t after, uint64_t *dseq, struct qent *q)
{
	uint8_t		 key[QKEY_MAX];
	size_t		 n = strlen(agency);
	MDB_cursor	*cur;
	MDB_val		 k, v;
	int		 rc;

	k.mv_size = qkey_make(key, agency, after + 1);
	k.mv_data = key;
	if ((rc = mdb_cursor_open(txn_of(t), st->queue, &cur)) != 0)
		return store_rc(rc, "queue");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	/*
	 * An entry that fails its tag can never be delivered, and left in
	 * place it would stop the agency's queue for good: it is removed,
	 * with a line in the log (whose it was cannot be trusted).
	 */
	while (rc == 0 && k.mv_size == n + 9 &&
	    memcmp(k.mv_data, agency, n + 1) == 0 &&
	    (tag_check(st, TD_QUEUE, &k, &v) != 0 || v.mv_size != sizeof(*q))) {
		log_warnx("store: a damaged entry removed from the queue of "
		    "%s (dseq %llu)", agency, (unsigned long long)be64_get(
		    (const uint8_t *)k.mv_data + n + 1));
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		k.mv_size = qkey_make(key, agency, after + 1);
		k.mv_data = key;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	if (rc == 0) {
		if (k.mv_size != n + 9 || memcmp(k.mv_data, agency, n + 1))
			rc = MDB_NOTFOUND;
		else {
			*dseq = be64_get((const uint8_t *)k.mv_data + n + 1);
			memcpy(q, v.mv_data, sizeof(*q));
		}
	}
	mdb_cursor_close(cur);
	return store_rc(rc, "queue");
}

int
store_queue_depth(struct store *st, struct store_txn *t, const char *agency,
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
	if ((rc = mdb_cursor_open(txn_of(t), st->queue, &cur)) != 0)
		return store_rc(rc, "queue");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == n + 9 &&
	    memcmp(k.mv_data, agency, n + 1) == 0) {
		if (tag_check(st, TD_QUEUE, &k, &v) != 0 ||
		    v.mv_size != sizeof(q)) {
			rc = TAG_MISMATCH;
			break;
		}
		memcpy(&q, v.mv_data, sizeof(q));
		if (*depth == 0 || q.at_ms < *oldest_ms)
			*oldest_ms = q.at_ms;
		(*depth)++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_rc(rc, "queue");
}

int
store_queues_each(struct store *st, struct store_txn *t,
    int (*fn)(const char *, uint64_t, const struct qent *, void *), void *arg)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	struct qent	 q;
	char		 agency[CC_ID_MAX + 1];
	uint64_t	 dseq;
	int		 rc, frc = 0;

	if ((rc = mdb_cursor_open(txn_of(t), st->queue, &cur)) != 0)
		return store_rc(rc, "queues");
	while (frc == 0 &&
	    (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		if (qkey_split(&k, agency, sizeof(agency), &dseq) == -1 ||
		    tag_check(st, TD_QUEUE, &k, &v) != 0 ||
		    v.mv_size != sizeof(q)) {
			log_warnx("store: a damaged queue entry passed over");
			continue;
		}
		memcpy(&q, v.mv_data, sizeof(q));
		frc = fn(agency, dseq, &q, arg);
	}
	mdb_cursor_close(cur);
	if (frc != 0)
		return frc;
	return rc == MDB_NOTFOUND ? 0 : store_rc(rc, "queues");
}
