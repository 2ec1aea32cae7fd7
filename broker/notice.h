/*
 * notice.h - notices: what the broker tells an agency after the fact
 * (UK GDPR Art. 19: each recipient is told of a withdrawal, correction,
 * retraction or erasure), and a recorder told before its consent lapses.
 *
 * A notice is queued like a delivery (same queue, same dseq, same ack),
 * its body kept sealed until the agency acknowledges it, and audited when
 * queued and when acknowledged.  Each returns 0 or a store error.
 */
#ifndef CC_NOTICE_H
#define CC_NOTICE_H

#include "broker.h"

/*
 * The consent-withdrawn notices of one request (a withdrawal by subject
 * withdraws several consents): each agency that acknowledged a record
 * under any of them gets one notice, naming those consents, the records
 * and the identifiers it was given.
 */
struct notice_set;

struct notice_set *notice_set_new(void);
void	notice_set_free(struct notice_set **);
/* Add the disclosures made under consent cid, now at `version`. */
int	notice_withdrawn_add(struct broker *, struct store_txn *,
	    struct notice_set *, const uint8_t cid[16], uint32_t version,
	    const struct subject_ps *) CC_WUR;
/* Queue the set's notices (the set may be reused, empty, after). */
int	notice_set_queue(struct broker *, struct store_txn *,
	    struct notice_set *) CC_WUR;

/*
 * A record acknowledged by agency under the consent its queue entry
 * names: remembered, with the subject as the agency was given it, so that
 * a later withdrawal, correction or erasure can tell it.
 */
int	notice_disclosed(struct broker *, struct store_txn *,
	    const char *agency, const struct qent *,
	    const struct msg_hdr *) CC_WUR;

/*
 * A consent with a `valid_until`: index its warning (consent_notice_days
 * before) and its lapse for the sweep.
 */
int	notice_consent_due(struct broker *, struct store_txn *,
	    const uint8_t cid[16], int64_t until_ms) CC_WUR;
/* The sweep met a consent's warning or lapse (XP_CONSENT_*) due at at_ms. */
int	notice_consent_lapse(struct broker *, struct store_txn *,
	    const uint8_t cid[16], uint8_t phase, int64_t at_ms) CC_WUR;

/*
 * Tell every agency that acknowledged `mid` (sent by `sender`) that it was
 * corrected (by: the correcting mid) or retracted (reason).  Agencies
 * still waiting for it are not told: their delivery is purged.
 */
int	notice_record(struct broker *, struct store_txn *, enum cc_notice,
	    const uint8_t mid[16], const char *sender, const uint8_t by[16],
	    const char *reason) CC_WUR;

/* The pump: send queued notice `dseq` (its body read from the store). */
int	notice_send(struct broker *, struct store_txn *, struct peer *,
	    uint64_t dseq, const struct qent *, bool *sent) CC_WUR;
/* The agency acknowledged the notice: forget it, audit it. */
int	notice_acked(struct broker *, struct store_txn *, const char *agency,
	    uint64_t dseq, const struct qent *) CC_WUR;

#endif /* CC_NOTICE_H */
