/*
 * audit.h - the append-only, hash-chained audit trail (DESIGN §9).
 *
 * Every entry is written in the same transaction as the state change it
 * records, so after a crash the two never disagree.  Each entry holds the
 * SHA-256 of the previous entry's bytes; changing or removing any entry
 * breaks the chain at the next one.  No payload content is ever written.
 */
#ifndef CC_AUDIT_H
#define CC_AUDIT_H

#include <stdint.h>

#include "store.h"

enum audit_event {
	EV_ACCEPTED,
	EV_DELIVERED,
	EV_WITHHELD,
	EV_PURGED,
	EV_EXPIRED,
	EV_CONSENT_GRANTED,
	EV_CONSENT_WITHDRAWN,
	EV_CONSENT_REFUSED,
	EV_CONNECTION_REFUSED,
	EV_INPUT_REJECTED,
	EV_NOTICE,		/* a notice queued (reason: its kind) */
	EV_NOTICE_ACKED,	/* ... and acknowledged */
	EV_RETRACTED,		/* a sender took a record back */
	EV__COUNT
};

/*
 * What an entry records.  The text fields go into the permanent trail, so
 * audit_append writes only well-formed ones as given: an id that is not a
 * canonical UUID, and a type, sender or recipient that is not a name
 * (lower-case letters, digits, '.' and '-'), are written as "sha256:" and
 * the hex of their SHA-256.  The reason is always the broker's own words.
 */
struct audit_ev {
	enum audit_event	 event;
	const char		*id;		/* mid or cid text, or NULL */
	const char		*type;		/* record type, or NULL */
	const char		*sender;	/* agency, or NULL */
	const char		*recipient;	/* agency, or NULL */
	const struct subject_ps	*subj;		/* or NULL */
	cc_catset		 cats;		/* categories released/granted */
	cc_catset		 withheld;	/* categories stripped */
	const uint8_t		*cid;		/* consent relied on, or NULL */
	uint32_t		 version;
	const char		*reason;	/* withheld/purged/rejected */
	int64_t			 at_ms;		/* when (0: now) */
	/*
	 * An entry standing for `count` events of one kind and reason (refused
	 * handshakes, aggregated per interval); 0 for an entry of one event.
	 * Only such an entry holds the keys count, since, addresses and
	 * agencies: every other entry's bytes are as they always were.
	 */
	uint64_t		 count;
	int64_t			 since_ms;	/* the first of them */
	const char *const	*addresses;	/* a sample of where from */
	size_t			 naddresses;
	const char *const	*agencies;	/* ... and of who, when known */
	size_t			 nagencies;
};

#define AUDIT_HASH_LEN	32	/* SHA-256 */

/*
 * A head of the chain: the newest entry's seq and the SHA-256 of its
 * bytes, which (through the `prev` links) stands for every entry before
 * it.  Exported off the machine, a head lets `audit verify` notice a trail
 * cut from the tail or an older store put back, which the chain alone,
 * kept in the same file, cannot.
 */
struct audit_head {
	uint64_t	seq;			/* 0: the trail is empty */
	uint8_t		hash[AUDIT_HASH_LEN];
	int64_t		t_ms;			/* the entry's time; 0: none */
};

const char	*audit_event_name(enum audit_event);

/*
 * Append one entry in txn.  Returns 0 or a store error (STORE_NOMEM when
 * the entry could not be built whole: nothing is written then).  The head
 * of the chain is recorded by audit_seal, which every transaction that
 * appends must call before it commits.
 */
int	audit_append(struct store *, struct store_txn *,
	    const struct audit_ev *) CC_WUR;
/* Record the head of the chain (seq and hash of the newest entry) in txn,
 * if it moved.  Returns 0 or a store error. */
int	audit_seal(struct store *, struct store_txn *) CC_WUR;

/*
 * The head as it stands in txn: the newest entry, whether or not the
 * chain up to it is intact (seq 0 when the trail is empty; t_ms 0 when the
 * entry is not well formed).  Returns 0 or a store error.
 */
int	audit_head(struct store *, struct store_txn *, struct audit_head *)
	    CC_WUR;

/*
 * Walk the chain in a read transaction.  Returns 0 when intact (count set),
 * 1 when broken (bad_seq names the first entry whose link or format is
 * wrong, why says how), -1 when the store cannot be read.
 */
int	audit_verify(struct store *, uint64_t *count, uint64_t *bad_seq,
	    char *why, size_t whylen) CC_WUR;
/*
 * The same walk, which also checks each of the nheads exported heads
 * (sorted in place by seq; t_ms is not compared): entry `seq` must exist
 * and its SHA-256 be `hash`.  The first fault by seq is reported, whether
 * a broken link, an entry that differs from its exported head or one that
 * is missing.  Returns as audit_verify.
 */
int	audit_verify_heads(struct store *, struct audit_head *heads,
	    size_t nheads, uint64_t *count, uint64_t *bad_seq, char *why,
	    size_t whylen) CC_WUR;

#endif /* CC_AUDIT_H */
