/*
 * route.h - who gets a message, and taking it back: routing at publish,
 * receipts, purges, the re-check after a consent change, the retention
 * sweep and the purge of agencies no longer valid.  Each returns 0 or a
 * store error.
 */
#ifndef CC_ROUTE_H
#define CC_ROUTE_H

#include "broker.h"

/* Decide every recipient of a stored message (in `to`, or the
 * subscribers of its type and area); *queued is set when at least one
 * was queued, each counted against its quota with the record's bytes. */
int	route_publish(struct broker *, struct store_txn *, const uint8_t mid[16],
	    const char *midtext, const struct cc_msg *, const char *sender,
	    const struct msg_hdr *, size_t bytes, bool *queued) CC_WUR;
/* Would the message (its record `bytes` long) be queued for a recipient
 * already at its quota?  over gets the first such agency, or "". */
int	route_quota(struct broker *, struct store_txn *, const struct cc_msg *,
	    const char *sender, const struct msg_hdr *, size_t bytes,
	    char over[CC_ID_MAX + 1]) CC_WUR;
/* Rule 5: decide again every queued delivery about the subject. */
int	route_recheck_subject(struct broker *, struct store_txn *,
	    const struct subject_ps *) CC_WUR;
/* Queue a receipt for the sender. */
int	route_receipt(struct broker *, struct store_txn *, const char *sender,
	    const uint8_t mid[16], const char *recipient, enum cc_state,
	    enum cc_reason) CC_WUR;
/* Take a queued delivery back (purged or expired). */
int	route_drop(struct broker *, struct store_txn *, const char *agency,
	    uint64_t dseq, const struct qent *, enum cc_state,
	    enum cc_reason) CC_WUR;
/* Expire what waited too long, forget what is past retention. */
int	route_sweep(struct broker *, struct store_txn *) CC_WUR;
/* Purge the queues of agencies no longer valid. */
int	route_purge_invalid(struct broker *, struct store_txn *) CC_WUR;

#endif /* CC_ROUTE_H */
