/*
 * store_audit.c - where the audit trail lives: entries keyed by their
 * sequence number (big-endian, so in order), and the recorded head of the
 * chain in meta.  What an entry holds and how the chain is checked is
 * audit.c's business.  The entries carry no integrity tag (the chain
 * protects them, and their bytes are what is hashed); the head does, so
 * cutting entries from the tail needs the data directory's key as well.
 */
#include <string.h>

#include "store_impl.h"

/*
 * Entries are a few hundred bytes.  One that LMDB says is longer has a
 * damaged size, which would run past its page and perhaps past the end of
 * the file: it is given as empty (not well formed), never read.
 */
#define AUDIT_ENTRY_MAX	(64 * 1024)

int
store_audit_last(struct store *st, struct store_txn *t, uint64_t *seq,
    const void **entry, size_t *len)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	int		 rc;

	if ((rc = mdb_cursor_open(txn_of(t), st->audit, &cur)) != 0)
		return store_rc(rc, "audit");
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && (k.mv_size != 8 || v.mv_size > AUDIT_ENTRY_MAX))
		rc = MDB_CORRUPTED;
	if (rc == 0) {
		*seq = be64_get(k.mv_data);
		*entry = v.mv_data;
		*len = v.mv_size;
	}
	mdb_cursor_close(cur);
	return store_rc(rc, "audit");
}

int
store_audit_append(struct store *st, struct store_txn *t, uint64_t seq,
    const void *entry, size_t len)
{
	uint8_t	key[8];
	MDB_val	k = { sizeof(key), key }, v = { len, (void *)entry };

	be64_put(key, seq);
	return store_rc(mdb_put(txn_of(t), st->audit, &k, &v, MDB_APPEND),
	    "audit");
}

int
store_audit_each(struct store *st, struct store_txn *t, uint64_t from,
    int (*fn)(uint64_t, const void *, size_t, void *), void *arg)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint8_t		 key[8];
	int		 rc, frc = 0;

	if ((rc = mdb_cursor_open(txn_of(t), st->audit, &cur)) != 0)
		return store_rc(rc, "audit");
	be64_put(key, from);
	k.mv_size = sizeof(key);
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && frc == 0) {
		frc = fn(k.mv_size == 8 ? be64_get(k.mv_data) : 0, v.mv_data,
		    v.mv_size <= AUDIT_ENTRY_MAX ? v.mv_size : 0, arg);
		if (frc == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (frc != 0)
		return frc;
	return rc == MDB_NOTFOUND ? 0 : store_rc(rc, "audit");
}

int
store_audit_head_get(struct store *st, struct store_txn *t, void *head,
    size_t size, size_t *len)
{
	MDB_val	k = META_KEY(META_AUDIT_HEAD), v;
	int	rc;

	if ((rc = tag_get(st, txn_of(t), st->meta, TD_META, &k, &v)) != 0)
		return store_rc(rc, "audit head");
	*len = v.mv_size;
	memcpy(head, v.mv_data, v.mv_size < size ? v.mv_size : size);
	return 0;
}

int
store_audit_head_put(struct store *st, struct store_txn *t, const void *head,
    size_t len)
{
	MDB_val	k = META_KEY(META_AUDIT_HEAD);

	return store_rc(tag_put(st, txn_of(t), st->meta, TD_META, &k, head,
	    len, 0), "audit head");
}
