/*
 * store_impl.h - inside the store: the LMDB environment and its named
 * databases.  Included by the store*.c files only; nothing else in the
 * broker names LMDB.
 *
 * Named databases:
 *   meta     dseq, format, counters, online, audit-head, summary
 *   consent  cid -> struct consent_hdr, recipients, denies, sealed history
 *   cview    pseudonym(16) cid -> struct cview, recipients, denies: the
 *            consent's compact decision view, one row per identifier of
 *            its subject, so deciding is one short range scan per
 *            identifier over small rows; only consents that can still
 *            permit or deny (active and refused ones) are there
 *   csubj    pseudonym(16) cid -> "": every consent of a subject, whatever
 *            its state, for the subject access report
 *   msg      mid -> struct msg_hdr + sealed canonical publish frame
 *   queue    agency "\0" dseq(BE) -> struct qent (deliveries and receipts)
 *   qsubj    subject pseudonym -> mid (dupsort) of each message with a
 *            payload still held, for purging
 *   rstate   mid agency -> struct rstate (per-recipient outcome, for track)
 *   expiry   time(BE) mid -> phase (retention sweep in time order)
 *   subs     agency -> struct sub
 *   notice   nid -> struct notice_hdr + sealed body (format 4)
 *   discl    cid agency "\0" mid -> struct discl + sealed subject as
 *            given: who acknowledged what under which consent (format 4)
 *   audit    seq(BE) -> audit entry (msgpack), hash-chained
 *
 * Every value but the audit entries (which the hash chain protects) and
 * the format record ends in an integrity tag (seal_tag): a MAC of the
 * database, key and value under a key derived from the data directory's
 * key.  A value changed on disk, or moved to another key, fails its tag
 * and is reported as damage (STORE_CORRUPT), never used.  cview, csubj
 * and qsubj are indexes of consent and msg, rebuilt from them when
 * needed (a store of format 2 upgraded; damage found in an index).
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
#define META_SUMMARY	"summary"
#define META_NAMED	"x-"	/* the prefix of store_meta_put's names */

/* The domain of a value's tag: which database holds it. */
#define TD_META		'M'
#define TD_CONSENT	'C'
#define TD_CVIEW	'V'
#define TD_CSUBJ	'S'
#define TD_MSG		'G'
#define TD_QUEUE	'Q'
#define TD_QSUBJ	'X'
#define TD_RSTATE	'R'
#define TD_EXPIRY	'E'
#define TD_SUBS		'B'
#define TD_NOTICE	'N'
#define TD_DISCL	'D'
#define TD_RECORD	'H'	/* no database: a header's record hash */
#define TAG_LEN		SEAL_TAGLEN

/* The longest key LMDB takes (its default), and the longest value kept in
 * meta (the online list is the longest, at most 64 KiB of ids). */
#define KEY_MAX		511
#define META_VALUE_MAX	(128 * 1024)

/* What the tag functions return for a value that fails its tag (outside
 * LMDB's range of errors); store_rc makes it STORE_CORRUPT. */
#define TAG_MISMATCH	(-30000)

/* Rows read per cursor pass by iterators whose callback may write. */
#define STORE_CHUNK	64

struct store {
	MDB_env		*env;
	MDB_dbi		 meta, consent, cview, csubj, msg, queue, qsubj,
			 rstate, expiry, subs, notice, discl, audit;
	struct seal	 seal;
	size_t		 map_bytes;
	size_t		 psize;		/* LMDB's page size */
	bool		 readonly;
	bool		 unwritable;	/* LMDB's pages found damaged */
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

/*
 * Tagged values (store_tag.c).  Each returns 0 or an LMDB error code
 * (ENOMEM when a tag could not be made, TAG_MISMATCH when a value read
 * fails its tag).
 *   tag_put	  put v (len bytes) and its tag under k
 *   tag_reserve  reserve len bytes and the tag under k: *p to be filled,
 *		  then tag_seal(..., *p, len) writes the tag after them
 *   tag_get	  get k's value, check its tag, v without it
 *   tag_check	  check a value read through a cursor; v without its tag
 *   tag_make	  the tag of (k, v, len) into out
 */
int	tag_put(struct store *, MDB_txn *, MDB_dbi, uint8_t dom, MDB_val *k,
	    const void *v, size_t len, unsigned flags);
int	tag_reserve(struct store *, MDB_txn *, MDB_dbi, MDB_val *k,
	    size_t len, unsigned flags, uint8_t **p);
int	tag_seal(struct store *, uint8_t dom, const MDB_val *k, uint8_t *p,
	    size_t len);
int	tag_get(struct store *, MDB_txn *, MDB_dbi, uint8_t dom, MDB_val *k,
	    MDB_val *v);
int	tag_check(struct store *, uint8_t dom, const MDB_val *k, MDB_val *v);
int	tag_make(struct store *, uint8_t dom, const MDB_val *k, const void *v,
	    size_t len, uint8_t out[TAG_LEN]);

/*
 * A value with a sealed part (a message's payload, a consent's history)
 * is stored as: the clear part, its tag, the sealed part.  The tag covers
 * the clear part only; the sealed part is authenticated by its own AEAD
 * tag, so damage to it is told apart (the header, and so the sender to
 * tell, can still be trusted).  tag_check_clear checks such a value's tag
 * over its first `clear` bytes.
 */
int	tag_check_clear(struct store *, uint8_t dom, const MDB_val *k,
	    const MDB_val *v, size_t clear);
/* Parse and check a stored message or consent: 0, TAG_MISMATCH or
 * MDB_CORRUPTED (the pointers go into v). */
int	msg_value(struct store *, const MDB_val *k, const MDB_val *v,
	    struct msg_hdr *, const uint8_t **sealed);
int	consent_value(struct store *, const MDB_val *k, const MDB_val *v,
	    struct consent *);

/* store.c: check LMDB's free list against a file of npages pages and
 * count the pages on it (0, TAG_MISMATCH or an LMDB error). */
int	store_freelist(MDB_txn *, size_t npages, size_t *freepg);

/*
 * Is an entry of a database (dom; 0: audit) of a shape the store writes:
 * the key's and value's lengths its layout allows and, when `placed` (the
 * value read in a page of the map, not a copy a write made), the value
 * where LMDB puts one of that size (in its page, or on overflow pages)?
 * An entry of another shape says LMDB's page is damaged (a node's header:
 * sizes, flags), and writing to that page could spread the damage.
 */
bool	entry_shaped(const struct store *, uint8_t dom, const MDB_val *k,
	    const MDB_val *v, bool placed);

/*
 * store_pages.c: walk every page of txn's snapshot, as LMDB keeps them
 * (LMDB trusts them; store_pages.c says how they are checked).  Each
 * fault is said to report.  Returns the number of faults, or -1 when the
 * file could not be read.
 */
int	store_pages_check(struct store *, MDB_txn *,
	    void (*report)(const char *, void *), void *arg);

/* store_format.c: check the format record (a new store is given this
 * one; one of format 2 is upgraded).  Returns 0, or -1 with err. */
int	store_format_check(struct store *, MDB_txn *, char *err, size_t errlen);
/* The format the record says (0: none, or not one that can be read). */
uint32_t store_format_of(struct store *, MDB_txn *);
/* store_file.c: are the file's two meta pages, and LMDB's free list,
 * sound?  Return 0, or -1 with err (the store is damaged). */
int	store_metas_sound(const char *dir, char *err, size_t errlen);
int	store_freelist_sound(struct store *, char *err, size_t errlen);

/* store_notice.c: parse and check a stored notice or disclosure (0,
 * TAG_MISMATCH or MDB_CORRUPTED; sealed points into v). */
int	notice_value(struct store *, const MDB_val *k, const MDB_val *v,
	    struct notice_hdr *, const uint8_t **sealed);
int	discl_value(struct store *, const MDB_val *k, const MDB_val *v,
	    struct discl *, const uint8_t **sealed);

/* store_consent.c: rebuild cview and csubj from the consents. */
int	consent_reindex(struct store *, MDB_txn *);
/* store_msg.c: rebuild qsubj from the messages. */
int	msg_reindex(struct store *, MDB_txn *);

#endif /* CC_STORE_IMPL_H */
