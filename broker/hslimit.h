/*
 * hslimit.h - what one source address may cost the broker in handshakes:
 * a token bucket for the rate, and a budget of log lines for refusals.
 *
 * Anyone holding the broker's public key (every agency has it) can start
 * CURVE handshakes as fast as the network allows.  Each one past its
 * source address's bucket is refused before any certificate is looked
 * at, and refusals are logged one by one only up to a budget per address
 * and reason per interval (a new reason is news; the thousandth "unknown
 * key" is not); the rest are summed up in one line per interval.
 *
 * Addresses live in small fixed tables (sets of a few ways, least
 * recently used evicted, keyed by a hash with a random seed), so the
 * memory is bounded whatever the number of addresses.  An evicted address
 * comes back with a full bucket: spreading a flood over more addresses
 * than the table holds buys that, and no more.
 */
#ifndef CC_HSLIMIT_H
#define CC_HSLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "cc_proto.h"

#define HSLIMIT_ADDR_LEN	64	/* an IPv6 address in text fits */
#define HSLIMIT_REASON_LEN	64
#define HSLIMIT_LOG_EACH	3	/* refusals logged per address and
					 * reason per interval */
#define HSLIMIT_LOG_MAX		50	/* ... and in all */
#define HSLIMIT_INTERVAL_MS	60000

struct hslimit;

/* A table admitting `rate` handshakes a second per address with bursts of
 * `burst`.  Returns NULL when out of memory. */
struct hslimit	*hslimit_new(unsigned rate, unsigned burst) CC_WUR;
void		 hslimit_destroy(struct hslimit **);
/* New limits (on reload); every bucket keeps what it holds, up to the
 * new burst. */
void		 hslimit_set(struct hslimit *, unsigned rate, unsigned burst);

/* May `addr` start a handshake at now_ms?  Takes a token when it may. */
bool		 hslimit_take(struct hslimit *, const char *addr,
		    int64_t now_ms);

/*
 * A refusal of a handshake from `addr` for `reason`: true when it is to be
 * logged one by one (the first HSLIMIT_LOG_EACH of the address and reason
 * in this interval, HSLIMIT_LOG_MAX in all), false when it is only
 * counted for the summary line.
 */
bool		 hslimit_log(struct hslimit *, const char *addr,
		    const char *reason, int64_t now_ms);

/* At the end of an interval (HSLIMIT_INTERVAL_MS after its first refusal
 * not logged), log the summary line and start a new interval. */
void		 hslimit_tick(struct hslimit *, int64_t now_ms);

#endif /* CC_HSLIMIT_H */
