/*
 * store.h - everything the broker keeps, in one LMDB environment.
 *
 * Named databases:
 *   meta     counters (next dseq)
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
 *   expiry   time(BE) mid -> "" (retention sweep in time order)
 *   subs     agency -> struct sub
 *   audit    seq(BE) -> audit entry (msgpack), hash-chained
 *
 * Values are this machine's native structs; a store is not portable across
 * architectures (backups are restored on the same kind of host).  Nothing
 * that identifies a person is stored in clear: identifiers appear only as
 * keyed pseudonyms, and records and consent evidence only sealed.
 */
#ifndef CC_STORE_H
#define CC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "cc_proto.h"
#include "seal.h"

#define SCHEME_PNC	0
#define SCHEME_NOMS	1
#define SCHEME_CRN	2
#define SCHEME__COUNT	3

/* A subject as pseudonyms, one per identifier scheme present. */
struct subject_ps {
	uint8_t	has;				/* bit per scheme */
	uint8_t	id[SCHEME__COUNT][PSEUDO_LEN];
};

enum consent_state {
	CS_ACTIVE,
	CS_WITHDRAWN,
	CS_REFUSED,
	CS_SUPERSEDED,
	CS__COUNT
};

/* The decision view of one consent, stored in clear (no identifiers). */
struct consent_hdr {
	uint32_t		version;
	uint8_t			state;		/* enum consent_state */
	uint8_t			explicit_;	/* explicit consent given */
	uint8_t			purposes;	/* 1 << enum cc_purpose */
	uint8_t			pad;
	uint8_t			req_hash[16];	/* of the request recorded */
	cc_catset		cats;
	uint16_t		recip_len;	/* bytes of NUL-separated ids */
	uint16_t		deny_len;	/* bytes of deny entries */
	uint16_t		pad2;
	uint32_t		sealed_len;
	int64_t			from_ms;
	int64_t			until_ms;
	int64_t			recorded_ms;	/* time of this version */
	char			recorded_by[CC_ID_MAX + 1];
	struct subject_ps	subj;
};
/*
 * The decision view: what decide() reads, kept small so that many fit in a
 * page.  The subject's other identifiers are there as 8-byte tags of their
 * pseudonyms, enough to notice a contradiction (rule 6).
 */
#define CVIEW_KEYLEN	16	/* bytes of the pseudonym in a cview key */
#define CVIEW_TAGLEN	8
struct cview {
	uint32_t	version;
	uint8_t		state;
	uint8_t		explicit_;
	uint8_t		purposes;
	uint8_t		has;		/* schemes of the subject */
	cc_catset	cats;
	uint16_t	recip_len;
	uint16_t	deny_len;
	uint16_t	pad;
	int64_t		from_ms;
	int64_t		until_ms;
	uint8_t		tag[SCHEME__COUNT][CVIEW_TAGLEN];
};

/* A deny entry: header then `len` bytes of NUL-separated ids (0: all). */
struct deny_hdr {
	cc_catset	cats;			/* 0: all categories */
	uint16_t	len;
};

/* A consent read from the store; pointers are into the LMDB page and are
 * valid until the transaction ends. */
struct consent {
	uint8_t			 cid[16];
	struct cview		 v;		/* always filled */
	struct consent_hdr	 h;		/* by store_consent_get only */
	const char		*recip;		/* v.recip_len bytes */
	const uint8_t		*deny;		/* v.deny_len bytes */
	const uint8_t		*sealed;	/* h.sealed_len bytes, or NULL */
};

struct msg_hdr {
	char			sender[CC_ID_MAX + 1];
	uint8_t			rtype;
	uint8_t			purpose;
	uint16_t		pad;
	uint32_t		sealed_len;	/* 0 once nothing is pending */
	int64_t			accepted_ms;
	int64_t			expires_ms;	/* retention or `expires` */
	struct subject_ps	subj;
};

enum qkind { Q_DELIVER, Q_RECEIPT };

struct qent {
	uint8_t		kind;			/* enum qkind */
	uint8_t		state;			/* receipt: enum cc_state */
	uint8_t		reason;			/* receipt: enum cc_reason */
	uint8_t		pad;
	cc_catset	cats;			/* deliver: categories released */
	cc_catset	withheld;		/* deliver: categories stripped */
	uint16_t	pad2;
	uint32_t	version;		/* deliver: consent version */
	uint8_t		cid[16];		/* deliver: consent relied on */
	uint8_t		mid[16];
	int64_t		at_ms;
	char		agency[CC_ID_MAX + 1];	/* receipt: the recipient */
};

struct rstate {
	uint8_t		state;			/* enum cc_state */
	uint8_t		reason;			/* enum cc_reason */
	uint16_t	pad;
	uint32_t	pad2;
	uint64_t	dseq;			/* queue entry while queued */
	int64_t		at_ms;
};

struct sub {
	unsigned	types;			/* 1 << enum cc_rtype */
	uint32_t	nareas;
	char		areas[32][16];
};

struct store {
	MDB_env		*env;
	MDB_dbi		 meta, consent, cview, msg, queue, qsubj, rstate,
			 expiry, subs, audit;
	struct seal	 seal;
	size_t		 map_bytes;
	bool		 readonly;
	uint64_t	 dseq;		/* next dseq; 0: not read yet */
};

/* Create the data directory (0700) and key (0600); refuses an existing
 * directory that is not empty. */
int	store_init(const char *dir, char *err, size_t errlen) CC_WUR;

/* Open the environment in dir (which `init` made).  map_mb sizes the map.
 * Returns 0, or -1 with err. */
int	store_open(struct store *, const char *dir, size_t map_mb,
	    bool readonly, char *err, size_t errlen) CC_WUR;
void	store_close(struct store *);

/* Begin a transaction.  Returns 0 or an LMDB error. */
int	store_begin(struct store *, bool write, MDB_txn **) CC_WUR;

/* Bytes in use (pages not on the free list) and the map size. */
int	store_usage(struct store *, size_t *used, size_t *map) CC_WUR;

/* Bytes the store could grow to on its filesystem: the blocks its file
 * holds plus what the filesystem still has free.  Returns 0, an LMDB
 * error or an errno. */
int	store_disk_bytes(struct store *, size_t *bytes) CC_WUR;

/* Allocate (without writing) `bytes` of disk past the store's last page,
 * for the writes that must not fail when something else fills the
 * filesystem.  Returns 0, an LMDB error or an errno (EOPNOTSUPP: the
 * filesystem cannot; ENOSPC: it is full). */
int	store_hold_disk(struct store *, size_t bytes);

/*
 * Next delivery sequence number (persistent, monotonic).  Numbers are
 * handed out from memory; store_save_dseq records the next one in txn and
 * must be called before any transaction that took numbers commits.  A
 * transaction undone leaves a gap, never a number used twice.
 */
int	store_next_dseq(struct store *, MDB_txn *, uint64_t *) CC_WUR;
int	store_save_dseq(struct store *, MDB_txn *) CC_WUR;

/* Pseudonyms of a canonical subject.  Returns 0 or -1. */
int	store_subject_ps(const struct store *, const struct cc_subject *,
	    struct subject_ps *) CC_WUR;

/* ---- consents (store_consent.c) ---- */

/* Read one consent by cid; MDB_NOTFOUND when absent. */
int	store_consent_get(struct store *, MDB_txn *, const uint8_t cid[16],
	    struct consent *) CC_WUR;

/*
 * Every consent that shares at least one identifier with `subj`, at most
 * `max`, each once, as decision views (only cid, v, recip and deny are
 * filled: use store_consent_get for the whole record).  Returns the count,
 * or -1 when the store cannot be read.
 */
int	store_consents_of(struct store *, MDB_txn *,
	    const struct subject_ps *, struct consent *, int max) CC_WUR;

/* Write a consent version: header, recipients, denies and the sealed
 * history; indexes every pseudonym of its subject.  Returns 0 or an LMDB
 * error (MDB_MAP_FULL when the store is full). */
int	store_consent_put(struct store *, MDB_txn *, const uint8_t cid[16],
	    const struct consent_hdr *, const char *recip, const void *deny,
	    const void *hist, size_t histlen) CC_WUR;

/* Open the sealed history of a consent (malloc'd msgpack), or NULL. */
void	*store_consent_history(struct store *, const struct consent *,
	    size_t *len);

/* Does a NUL-separated id list name `id`? */
bool	idlist_has(const char *list, size_t len, const char *id);

/* ---- messages, queues, delivery states, subscriptions (store_queue.c) ---- */

int	store_msg_get(struct store *, MDB_txn *, const uint8_t mid[16],
	    struct msg_hdr *, const uint8_t **sealed) CC_WUR;
int	store_msg_put(struct store *, MDB_txn *, const uint8_t mid[16],
	    const struct msg_hdr *, const void *frame, size_t len) CC_WUR;
/* Drop the payload once no recipient of the message is still queued. */
int	store_msg_release(struct store *, MDB_txn *, const uint8_t mid[16]) CC_WUR;
/* Every delivery state of a message, in agency order; returns the count or
 * -1.  Agency ids are copied into agencies[i]. */
int	store_rstates(struct store *, MDB_txn *, const uint8_t mid[16],
	    char (*agencies)[CC_ID_MAX + 1], struct rstate *, int max) CC_WUR;
/*
 * The recipients of a message still waiting for it: each agency whose
 * delivery state is queued and whose queue still holds the entry, with
 * its dseq and the entry, at most max.  Returns the count, or -1.
 */
struct queued {
	char		agency[CC_ID_MAX + 1];
	uint64_t	dseq;
	struct qent	q;
};
int	store_queued(struct store *, MDB_txn *, const uint8_t mid[16],
	    struct queued *, int max) CC_WUR;
/* The canonical frame of a message (malloc'd, caller frees), or NULL. */
void	*store_msg_frame(struct store *, MDB_txn *, const uint8_t mid[16],
	    size_t *len);

/* Index (add) or unindex a message under each pseudonym of its subject. */
int	store_msg_index(struct store *, MDB_txn *, const uint8_t mid[16],
	    const struct subject_ps *, bool add) CC_WUR;
/* The mids indexed under any pseudonym of ps, each once, at most max;
 * returns the count or -1. */
int	store_msg_of_subject(struct store *, MDB_txn *,
	    const struct subject_ps *, uint8_t (*mids)[16], int max) CC_WUR;

int	store_queue_put(struct store *, MDB_txn *, const char *agency,
	    uint64_t dseq, const struct qent *) CC_WUR;
int	store_queue_get(struct store *, MDB_txn *, const char *agency,
	    uint64_t dseq, struct qent *) CC_WUR;
int	store_queue_del(struct store *, MDB_txn *, const char *agency,
	    uint64_t dseq) CC_WUR;
/* First entry of agency's queue with dseq > after; MDB_NOTFOUND at end. */
int	store_queue_next(struct store *, MDB_txn *, const char *agency,
	    uint64_t after, uint64_t *dseq, struct qent *) CC_WUR;
/* Depth and oldest entry time of an agency's queue. */
int	store_queue_depth(struct store *, MDB_txn *, const char *agency,
	    size_t *depth, int64_t *oldest_ms) CC_WUR;

int	store_rstate_put(struct store *, MDB_txn *, const uint8_t mid[16],
	    const char *agency, const struct rstate *) CC_WUR;
int	store_rstate_get(struct store *, MDB_txn *, const uint8_t mid[16],
	    const char *agency, struct rstate *) CC_WUR;

int	store_sub_put(struct store *, MDB_txn *, const char *agency,
	    const struct sub *) CC_WUR;

/* Key helpers. */
size_t	qkey_make(uint8_t *key, const char *agency, uint64_t dseq);
int	qkey_split(const MDB_val *, char *agency, size_t, uint64_t *dseq);
void	be64_put(uint8_t *, uint64_t);
uint64_t be64_get(const uint8_t *);

#endif /* CC_STORE_H */
