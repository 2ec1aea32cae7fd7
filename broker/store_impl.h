/*
 * store_impl.h - inside the store: the LMDB environment and its named
 * databases.  Included by the store*.c files only; nothing else in the
 * broker names LMDB.
 *
 * Named databases:
 *   meta     dseq, format, counters, online, audit-head
 *   consent  cid -> struct consent_hdr, recipients, denies, sealed history
 *   cview    pseudonym(16) cid -> struct cview, recipients, denies: the
 *            consent's compact decision view, one row per identifier of
 *            its subject, so deciding is one short range scan per
 *            identifier over small rows
 *   msg      mid -> struct msg_hdr + sealed canonical publish frame
 *   queue    agency "\0" dseq(BE) -> struct qent (deliveries and receipts)
 *   qsubj    subject pseudonym -> mid (dupsort) of each message with a
 *            payload still held, for purging
 *   rstate   mid agency -> struct rstate (per-recipient outcome, for track)
 *   expiry   time(BE) mid -> phase (retention sweep in time order)
 *   subs     agency -> struct sub
 *   audit    seq(BE) -> audit entry (msgpack), hash-chained
 */
#ifndef CC_STORE_IMPL_H
#define CC_STORE_IMPL_H

#include <lmdb.h>

#include "bytes.h"
#include "store.h"

#define META_DSEQ	"dseq"
#define META_FORMAT	"format"
#define META_COUNTERS	"counters"
#define META_ONLINE	"online"
#define META_AUDIT_HEAD	"audit-head"

/* Rows read per cursor pass by iterators whose callback may write. */
#define STORE_CHUNK	64

struct store {
	MDB_env		*env;
	MDB_dbi		 meta, consent, cview, msg, queue, qsubj, rstate,
			 expiry, subs, audit;
	struct seal	 seal;
	size_t		 map_bytes;
	bool		 readonly;
	uint64_t	 dseq;		/* next dseq; 0: not read yet */
	char		 dir[4096];
};

/* A store transaction is an LMDB one; the cast stays in the store. */
static inline MDB_txn *
txn_of(struct store_txn *t)
{
	return (MDB_txn *)t;
}

/* The store error for an LMDB (or errno) code; logs what is not a normal
 * outcome (not found, exists, full), naming `what`. */
int	store_rc(int mdb_rc, const char *what);

/* A key for a meta entry named by a C string. */
#define META_KEY(name)	{ sizeof(name) - 1, (void *)(name) }

#endif /* CC_STORE_IMPL_H */
