/*
 * deliver.h - the delivery pump.
 */
#ifndef CC_DELIVER_H
#define CC_DELIVER_H

#include "broker.h"

/* Send what waits for every online agency, within its window; each
 * delivery decided again.  Returns 0 or a store error. */
int	deliver_pump(struct broker *, struct store_txn *) CC_WUR;
/* Hand the pump a publish just stored (takes ownership of *m and sets it
 * NULL; `present` is the categories it carries), so that its recipients
 * are sent the tree already decoded. */
void	deliver_keep(const uint8_t mid[16], struct cc_msg **m,
	    cc_catset present);

#endif /* CC_DELIVER_H */
