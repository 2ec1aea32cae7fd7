/*
 * decide.h - THE consent decision.  Every path that hands a record to an
 * agency (routing, first delivery, redelivery after reconnect, purge
 * re-checks) calls decide() and nothing else.
 */
#ifndef CC_DECIDE_H
#define CC_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

struct decision {
	bool		permit;
	enum cc_reason	reason;		/* when withheld */
	cc_catset	cats;		/* what the recipient may receive */
	uint8_t		cid[16];	/* the consent relied on */
	uint32_t	version;
};

/*
 * May `recipient` (of type policy `pol`; NULL when the agency is no longer
 * valid) receive a message about `subj` for `purpose` at `now`?  Reads the
 * subject's consents in txn every time, so no permit outlives a change
 * committed before it.  Never fails open: a store that cannot be read gives
 * withheld/store-unavailable.
 */
void	decide(struct store *, struct store_txn *, const struct subject_ps *subj,
	    enum cc_purpose purpose, const char *recipient,
	    const struct policy *pol, int64_t now, struct decision *);

/*
 * Does a new consent about `subj` contradict the identifiers of the
 * subject's existing consents (same scheme, other value)?  Returns 1 if so,
 * 0 if not, -1 when the store cannot be read.  `except` (may be NULL) is a
 * cid to ignore (the consent being amended).
 */
int	decide_identity_conflict(struct store *, struct store_txn *,
	    const struct subject_ps *subj, const uint8_t *except) CC_WUR;

#endif /* CC_DECIDE_H */
