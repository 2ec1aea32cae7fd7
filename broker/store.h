/*
 * store.h - everything the broker keeps, behind one API.
 *
 * One LMDB environment holds it all; LMDB itself stays inside the store
 * files (store*.c): callers see an opaque store, opaque transactions and
 * the store's own error codes.  What is kept:
 *   consents   every version of every consent, the decision view of each
 *              indexed under every pseudonym of its subject
 *   messages   the header and (while anyone waits for it) the sealed
 *              canonical frame of each accepted publish, an index of the
 *              messages still held by subject pseudonym, the per-recipient
 *              delivery states, and the expiry index of the retention sweep
 *   queues     per agency, in dseq order: deliveries and receipts
 *   metadata   the next dseq, counters, who is online, subscriptions
 *   audit      the hash-chained entries and the recorded head
 *
 * Values are this machine's native structs; a store is not portable across
 * architectures (backups are restored on the same kind of host).  Nothing
 * that identifies a person is stored in clear: identifiers appear only as
 * keyed pseudonyms, and records and consent evidence only sealed.
 *
 * Errors: every fallible function returns 0 or an enum store_rc.  Nothing
 * has a count ceiling: lists come through iterators that call a function
 * for each item.  An iterator stops when the function returns non-zero and
 * returns that value (STORE_STOP is there for "found what I wanted").
 */
#ifndef CC_STORE_H
#define CC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc_proto.h"
#include "seal.h"

enum store_rc {
	STORE_OK = 0,
	STORE_NOTFOUND,		/* no such record */
	STORE_EXISTS,		/* already there (where it must not be) */
	STORE_FULL,		/* the map or the filesystem is full */
	STORE_CORRUPT,		/* a record or page that cannot be read */
	STORE_BUSY,		/* transient: try again later */
	STORE_IO,		/* the disk failed */
	STORE_NOMEM,		/* out of memory (or the cipher failed) */
	STORE_STOP,		/* an iteration stopped early on purpose */
	STORE__COUNT
};

/* Words for a store error (or any other int: "unknown error"). */
const char	*store_strerror(int);

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

/* A consent read from the store; pointers are into the store's pages and
 * are valid until the transaction writes or ends. */
struct consent {
	uint8_t			 cid[16];
	struct cview		 v;		/* always filled */
	struct consent_hdr	 h;		/* by store_consent_get only */
	const char		*recip;		/* v.recip_len bytes */
	const uint8_t		*deny;		/* v.deny_len bytes */
	const uint8_t		*sealed;	/* h.sealed_len bytes, or NULL */
};

/*
 * A message's header, kept (with its tag) until the message is forgotten,
 * a retention period after it expired; the sealed payload follows it
 * while anyone waits for it.
 */
#define RECORD_HASH_LEN	16
struct msg_hdr {
	char			sender[CC_ID_MAX + 1];
	uint8_t			rtype;
	uint8_t			purpose;
	uint16_t		pad;
	uint32_t		sealed_len;	/* 0 once nothing is pending */
	int64_t			accepted_ms;
	int64_t			expires_ms;	/* retention or `expires` */
	uint8_t			rhash[RECORD_HASH_LEN];	/* of the record
						 * but `created`; 0: unknown */
	struct subject_ps	subj;
};

/* The size of a message's record while it is held (0 once released). */
static inline size_t
msg_record_size(const struct msg_hdr *h)
{
	return h->sealed_len > SEAL_OVERHEAD ? h->sealed_len - SEAL_OVERHEAD :
	    0;
}

enum qkind { Q_DELIVER, Q_RECEIPT, Q_NOTICE };

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
	uint8_t		mid[16];		/* notice: its nid */
	int64_t		at_ms;
	char		agency[CC_ID_MAX + 1];	/* receipt: the recipient */
};

struct rstate {
	uint8_t		state;			/* enum cc_state */
	uint8_t		reason;			/* enum cc_reason */
	uint16_t	notices;		/* 1 << enum cc_notice told */
	uint32_t	pad2;
	uint64_t	dseq;			/* queue entry while queued */
	int64_t		at_ms;
};

/* A notice waiting for its agency's ack; its fields follow, sealed. */
struct notice_hdr {
	uint8_t		kind;			/* enum cc_notice */
	uint8_t		pad;
	uint16_t	nfields;		/* key/value pairs in the body */
	uint32_t	sealed_len;
	int64_t		at_ms;
	char		agency[CC_ID_MAX + 1];	/* to whom */
};

/* A record an agency acknowledged; the subject it was given follows,
 * sealed (a packed map, {} when it was given none). */
struct discl {
	int64_t		at_ms;
	uint32_t	version;		/* of the consent relied on */
	uint32_t	sealed_len;
	uint8_t		rtype;
	uint8_t		pad[7];
};

/* Phases of the expiry index (store_expiry_put). */
#define XP_DELIVERIES	0	/* a message's queued deliveries expire */
#define XP_FORGET	1	/* a message's header is forgotten */
#define XP_CONSENT_WARN	2	/* a consent lapses soon: tell its recorder */
#define XP_CONSENT_LAPSE 3	/* a consent lapsed: tell, and decide again */

#define SUB_AREAS_MAX	32
struct sub {
	unsigned	types;			/* 1 << enum cc_rtype */
	uint32_t	nareas;
	char		areas[SUB_AREAS_MAX][16];
};

/* The outcome counters `stats` shows (stored as they are laid out here). */
struct store_counters {
	uint64_t	accepted, delivered, withheld, purged, expired,
			rejected;
	uint64_t	refused;		/* handshakes refused */
};

struct store;
struct store_txn;

/* ---- the environment and transactions (store.c) ---- */

/* Create the data directory (0700) and key (0600); refuses an existing
 * directory that is not empty.  Returns 0, or -1 with err. */
int	store_init(const char *dir, char *err, size_t errlen) CC_WUR;

/*
 * Open the store in dir (which `init` made); map_mb sizes the map.  A
 * read-only store may be opened beside a running broker.  Returns 0 with
 * *st set, or -1 with err (a store of another format is refused).
 */
int	store_open(struct store **st, const char *dir, size_t map_mb,
	    bool readonly, char *err, size_t errlen) CC_WUR;
/* Close the store and wipe its keys; sets *st to NULL. */
void	store_close(struct store **st);

/*
 * Begin a transaction (one writer at a time; readers never block it), or
 * a transaction nested in a write transaction `parent`, whose changes
 * become the parent's when committed and vanish when aborted.  Returns 0,
 * or STORE_BUSY/STORE_FULL/STORE_IO/STORE_NOMEM.
 */
int	store_begin(struct store *, bool write, struct store_txn **) CC_WUR;
int	store_begin_nested(struct store *, struct store_txn *parent,
	    struct store_txn **) CC_WUR;
/* Commit (fsync'd before it returns, for a top-level write transaction);
 * the transaction is gone either way.  Returns 0, or STORE_FULL/IO/... */
int	store_commit(struct store_txn *) CC_WUR;
void	store_abort(struct store_txn *);

/* Bytes in use (pages not on the free list) and the map size. */
int	store_usage(struct store *, size_t *used, size_t *map) CC_WUR;

/* Bytes the store could grow to on its filesystem: the blocks its file
 * holds plus what the filesystem still has free.  Returns 0, or STORE_IO
 * (errno set when the filesystem could not be asked). */
int	store_disk_bytes(struct store *, size_t *bytes) CC_WUR;

/* Allocate (without writing) `bytes` of disk past the store's last page,
 * for the writes that must not fail when something else fills the
 * filesystem.  Returns 0, or STORE_IO with errno set (EOPNOTSUPP: the
 * filesystem cannot; ENOSPC: it is full). */
int	store_hold_disk(struct store *, size_t bytes);

/*
 * A consistent, compacted copy of the store in dir (created 0700 when
 * absent, made 0700 when it exists), data file 0600 whatever umask or an
 * earlier file said.  Returns 0, or -1 with err.
 */
int	store_backup(struct store *, const char *dir, char *err,
	    size_t errlen) CC_WUR;

/*
 * Next delivery sequence number (persistent, monotonic).  Numbers are
 * handed out from memory; store_save_dseq records the next one in txn and
 * must be called before any transaction that took numbers commits.  A
 * transaction undone leaves a gap, never a number used twice.
 */
int	store_next_dseq(struct store *, struct store_txn *, uint64_t *) CC_WUR;
int	store_save_dseq(struct store *, struct store_txn *) CC_WUR;

/* Pseudonyms of a canonical subject.  Returns 0 or -1. */
int	store_subject_ps(const struct store *, const struct cc_subject *,
	    struct subject_ps *) CC_WUR;

/*
 * The hash a message's header keeps of its record (proto_encode_record's
 * `len` bytes): a MAC under the store's key, bound to the mid, so that a
 * header says nothing of the record to one who reads the file.  Never all
 * zero (that is "unknown", the hash of a message stored before format 4).
 * Returns 0 or -1.
 */
int	store_record_hash(const struct store *, const uint8_t mid[16],
	    const void *rec, size_t len, uint8_t out[RECORD_HASH_LEN]) CC_WUR;

/* ---- damage (store_check.c) ---- */

/*
 * Record, in txn, how many entries each database holds; every commit of
 * the broker does, and store_check compares.  An entry lost to damage (a
 * flipped bit in a page, a key that changed) or removed by an edit of the
 * file is then noticed, not silently missing.
 */
int	store_summary_put(struct store *, struct store_txn *) CC_WUR;

/*
 * Look for damage.  Quick (at every start): each database's count of
 * entries against the recorded summary, and every queue entry read,
 * checked and found again by its key; an index found damaged is rebuilt
 * from what it indexes (in a store opened for writing).  Full (`audit
 * verify`): every entry of every database read and checked against its
 * tag (sealed parts opened), found again by its key, counted, and every
 * reference followed (a queued delivery to its message, delivery state
 * and payload; a consent to its index rows and back).  Both check LMDB's
 * free list, and the shape of every entry (of every database but the
 * audit, at start): one LMDB could not have written says its pages are
 * damaged, and a store opened for writing is then never written again
 * (writes would spread the damage).  `report` gets one line per finding.
 * Returns the number of findings, or -1 when the store could not be read
 * at all or is not to be written.
 */
enum store_depth { CHECK_QUICK, CHECK_FULL };
int	store_check(struct store *, enum store_depth,
	    void (*report)(const char *finding, void *), void *arg);

/*
 * LMDB trusts its pages: a flipped bit in a page header or in a node's
 * offset can send it past the end of the file (SIGBUS) or anywhere
 * (SIGSEGV), and its own consistency checks abort.  What store_check
 * cannot catch first ends the process here, never as a bare crash: one
 * line to stderr saying so (written with write(2) only), exit status 2, as
 * for a store that cannot be read.  Installs the SIGBUS and SIGSEGV
 * handlers; prog begins the line.  (LMDB's assertions are said the same
 * way in every store opened.)
 */
void	store_fault_guard(const char *prog);

/* ---- metadata: counters, who is online, subscriptions ---- */

/* The counters as last saved (all zero in a new store). */
int	store_counters_get(struct store *, struct store_txn *,
	    struct store_counters *) CC_WUR;
int	store_counters_put(struct store *, struct store_txn *,
	    const struct store_counters *) CC_WUR;
/* The agencies online: `ids` holds len bytes of NUL-terminated ids. */
int	store_online_put(struct store *, struct store_txn *, const char *ids,
	    size_t len) CC_WUR;
int	store_online_each(struct store *, struct store_txn *,
	    int (*fn)(const char *agency, void *), void *arg) CC_WUR;

/*
 * A small value of the caller's own, by name (kept apart from the store's
 * own metadata, whatever the name), e.g. what `stats` shows of the last
 * reload.  store_meta_get copies at most `size` bytes and sets *len to the
 * stored length.  Return 0, STORE_NOTFOUND (get: none stored) or an error.
 */
int	store_meta_put(struct store *, struct store_txn *, const char *name,
	    const void *, size_t len) CC_WUR;
int	store_meta_get(struct store *, struct store_txn *, const char *name,
	    void *, size_t size, size_t *len) CC_WUR;

int	store_sub_put(struct store *, struct store_txn *, const char *agency,
	    const struct sub *) CC_WUR;
/* Every stored subscription.  A damaged one is logged and skipped (the
 * agency sends its subscription again after every hello). */
int	store_subs_each(struct store *, struct store_txn *,
	    int (*fn)(const char *agency, const struct sub *, void *),
	    void *arg) CC_WUR;

/* ---- consents (store_consent.c) ---- */

/* Read one consent by cid; STORE_NOTFOUND when absent. */
int	store_consent_get(struct store *, struct store_txn *,
	    const uint8_t cid[16], struct consent *) CC_WUR;

/*
 * Every consent that can still permit or deny (active or refused: rule
 * 12, withdrawn and superseded ones are not indexed for decisions) and
 * shares at least one identifier with `ps`, each once, as decision views
 * (only cid, v, recip and deny are filled: use
 * store_consent_get for the whole record).  fn must not write in txn.
 * Returns 0, fn's non-zero value, or STORE_CORRUPT/... when the index
 * cannot be read (a damaged row is an error, never skipped).
 */
int	store_consents_of(struct store *, struct store_txn *,
	    const struct subject_ps *,
	    int (*fn)(const struct consent *, void *), void *arg) CC_WUR;

/* Every consent of the subject, whatever its state, each once, as whole
 * records (h and sealed filled); for the subject access report.  fn must
 * not write in txn. */
int	store_consents_all(struct store *, struct store_txn *,
	    const struct subject_ps *,
	    int (*fn)(const struct consent *, void *), void *arg) CC_WUR;

/*
 * The cids of the subject's consents (all of them, or only those that can
 * still permit or deny), each once, into a malloc'd array the caller
 * frees: for a caller that changes them, or reads them whole, after the
 * index has been read.  Returns 0 (*cids NULL when *n is 0) or an error.
 */
int	store_consent_cids(struct store *, struct store_txn *,
	    const struct subject_ps *, bool all, uint8_t (**cids)[16],
	    size_t *n) CC_WUR;

/* Write a consent version: header, recipients, denies and the sealed
 * history; indexes every pseudonym of its subject.  Returns 0 or an
 * error (STORE_FULL when the store is full). */
int	store_consent_put(struct store *, struct store_txn *,
	    const uint8_t cid[16], const struct consent_hdr *,
	    const char *recip, const void *deny, const void *hist,
	    size_t histlen) CC_WUR;

/* Open the sealed history of a consent (malloc'd msgpack), or NULL. */
void	*store_consent_history(struct store *, const struct consent *,
	    size_t *len) CC_WUR;

/* Does a NUL-separated id list name `id`? */
bool	idlist_has(const char *list, size_t len, const char *id);

/* ---- messages, delivery states, expiry (store_msg.c) ---- */

/* A message's header, and a pointer to its sealed frame (valid until the
 * transaction writes) when sealed is not NULL.  STORE_NOTFOUND if none. */
int	store_msg_get(struct store *, struct store_txn *, const uint8_t mid[16],
	    struct msg_hdr *, const uint8_t **sealed) CC_WUR;
/* Store a message: its header and, when frame is not NULL, the frame
 * sealed under the mid. */
int	store_msg_put(struct store *, struct store_txn *, const uint8_t mid[16],
	    const struct msg_hdr *, const void *frame, size_t len) CC_WUR;
/* Drop the payload (and the subject index) once no recipient of the
 * message is still queued; the header stays for idempotency and track.
 * *freed (may be NULL) is the size of the record dropped, or 0. */
int	store_msg_release(struct store *, struct store_txn *,
	    const uint8_t mid[16], size_t *freed) CC_WUR;
/* Every message whose header can be read (a damaged one is passed over,
 * said).  fn must not write in txn. */
int	store_msgs_each(struct store *, struct store_txn *,
	    int (*fn)(const uint8_t mid[16], const struct msg_hdr *, void *),
	    void *arg) CC_WUR;
/* Forget a message: header and every delivery state (retention's end). */
int	store_msg_forget(struct store *, struct store_txn *,
	    const uint8_t mid[16]) CC_WUR;
/* The canonical frame of a message (malloc'd, caller frees), or NULL when
 * there is none or it cannot be opened. */
void	*store_msg_frame(struct store *, struct store_txn *,
	    const uint8_t mid[16], size_t *len) CC_WUR;

/* Index (add) or unindex a message under each pseudonym of its subject. */
int	store_msg_index(struct store *, struct store_txn *,
	    const uint8_t mid[16], const struct subject_ps *, bool add) CC_WUR;
/* Every message indexed under any pseudonym of ps, each once.  fn may
 * write in txn (release or drop the message it is given). */
int	store_msgs_of_subject(struct store *, struct store_txn *,
	    const struct subject_ps *,
	    int (*fn)(const uint8_t mid[16], void *), void *arg) CC_WUR;

int	store_rstate_put(struct store *, struct store_txn *,
	    const uint8_t mid[16], const char *agency,
	    const struct rstate *) CC_WUR;
int	store_rstate_get(struct store *, struct store_txn *,
	    const uint8_t mid[16], const char *agency, struct rstate *) CC_WUR;
/* Every delivery state of a message, in agency order.  fn may write. */
int	store_rstates(struct store *, struct store_txn *,
	    const uint8_t mid[16],
	    int (*fn)(const char *agency, const struct rstate *, void *),
	    void *arg) CC_WUR;

/*
 * The recipients of a message still waiting for it: each agency whose
 * delivery state is queued and whose queue still holds the entry, with its
 * dseq and the entry.  fn may write (drop the delivery it is given).
 */
struct queued {
	char		agency[CC_ID_MAX + 1];
	uint64_t	dseq;
	struct qent	q;
};
int	store_queued(struct store *, struct store_txn *, const uint8_t mid[16],
	    int (*fn)(const struct queued *, void *), void *arg) CC_WUR;

/*
 * The expiry index, in time order: phase 0 when a message's queued
 * deliveries expire, phase 1 when the message itself is forgotten.
 * store_expiry_first gives the earliest (STORE_NOTFOUND when empty).
 */
int	store_expiry_put(struct store *, struct store_txn *, int64_t at_ms,
	    const uint8_t mid[16], uint8_t phase) CC_WUR;
int	store_expiry_first(struct store *, struct store_txn *, int64_t *at_ms,
	    uint8_t mid[16], uint8_t *phase) CC_WUR;
int	store_expiry_del(struct store *, struct store_txn *, int64_t at_ms,
	    const uint8_t mid[16]) CC_WUR;

/* ---- queues (store_queue.c) ---- */

int	store_queue_put(struct store *, struct store_txn *, const char *agency,
	    uint64_t dseq, const struct qent *) CC_WUR;
int	store_queue_get(struct store *, struct store_txn *, const char *agency,
	    uint64_t dseq, struct qent *) CC_WUR;
int	store_queue_del(struct store *, struct store_txn *, const char *agency,
	    uint64_t dseq) CC_WUR;
/* First entry of agency's queue with dseq > after; STORE_NOTFOUND at the
 * end. */
int	store_queue_next(struct store *, struct store_txn *, const char *agency,
	    uint64_t after, uint64_t *dseq, struct qent *) CC_WUR;
/* Depth and oldest entry time of an agency's queue. */
int	store_queue_depth(struct store *, struct store_txn *,
	    const char *agency, size_t *depth, int64_t *oldest_ms) CC_WUR;
/* Every entry of every queue, by agency then dseq.  fn must not write. */
int	store_queues_each(struct store *, struct store_txn *,
	    int (*fn)(const char *agency, uint64_t dseq, const struct qent *,
	    void *), void *arg) CC_WUR;

/* ---- notices and disclosures (store_notice.c) ---- */

/* Store a notice's header and body (nfields packed key/value pairs). */
int	store_notice_put(struct store *, struct store_txn *,
	    const uint8_t nid[16], const struct notice_hdr *, const void *body,
	    size_t len) CC_WUR;
/* Read one: *body is malloc'd (the caller frees it).  STORE_NOTFOUND when
 * absent, STORE_CORRUPT when it cannot be read or opened. */
int	store_notice_get(struct store *, struct store_txn *,
	    const uint8_t nid[16], struct notice_hdr *, void **body,
	    size_t *len) CC_WUR;
int	store_notice_del(struct store *, struct store_txn *,
	    const uint8_t nid[16]) CC_WUR;

/* Record that agency acknowledged mid under consent cid, given subj (a
 * packed subject map, len bytes). */
int	store_discl_put(struct store *, struct store_txn *,
	    const uint8_t cid[16], const char *agency, const uint8_t mid[16],
	    const struct discl *, const void *subj, size_t len) CC_WUR;
/* Every disclosure under cid, by agency then mid; subj is the subject as
 * given (NULL when it cannot be opened).  fn must not write in txn. */
int	store_discl_each(struct store *, struct store_txn *,
	    const uint8_t cid[16],
	    int (*fn)(const char *agency, const uint8_t mid[16],
	    const struct discl *, const void *subj, size_t len, void *),
	    void *arg) CC_WUR;

/* ---- the audit trail's storage (store_audit.c; audit.c says what an
 * entry holds) ---- */

/* The newest entry: its seq and bytes (valid until txn writes);
 * STORE_NOTFOUND when the trail is empty. */
int	store_audit_last(struct store *, struct store_txn *, uint64_t *seq,
	    const void **entry, size_t *len) CC_WUR;
/* Append entry `seq`, which must be the newest + 1. */
int	store_audit_append(struct store *, struct store_txn *, uint64_t seq,
	    const void *entry, size_t len) CC_WUR;
/* Every entry from seq `from` on, in order.  seq is 0 for an entry whose
 * key is damaged.  fn must not write in txn. */
int	store_audit_each(struct store *, struct store_txn *, uint64_t from,
	    int (*fn)(uint64_t seq, const void *entry, size_t len, void *),
	    void *arg) CC_WUR;
/* The recorded head of the chain (opaque bytes, audit.c's format);
 * STORE_NOTFOUND when none was recorded.  *len is the stored length. */
int	store_audit_head_get(struct store *, struct store_txn *, void *head,
	    size_t size, size_t *len) CC_WUR;
int	store_audit_head_put(struct store *, struct store_txn *,
	    const void *head, size_t len) CC_WUR;

#endif /* CC_STORE_H */
