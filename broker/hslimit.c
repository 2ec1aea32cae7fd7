/*
 * hslimit.c - handshakes per source address: a token bucket each, and a
 * budget of log lines for their refusals (see hslimit.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hslimit.h"
#include "log.h"

#define HS_SETS		256	/* power of two */
#define HS_WAYS		4
#define HS_MILLI	1000	/* a token is a thousand of these */

/* One source address (the buckets), or one address and reason (the log
 * budget). */
struct hs_entry {
	char		addr[HSLIMIT_ADDR_LEN];	/* "" when free */
	char		reason[HSLIMIT_REASON_LEN]; /* "" in the buckets */
	uint64_t	tokens;		/* thousandths of a handshake */
	int64_t		seen_ms;	/* last seen: refill, eviction */
	uint32_t	epoch;		/* the interval its counts are of */
	uint32_t	logged;		/* refusals logged one by one then */
	uint64_t	quiet;		/* refusals only counted then */
};

struct hs_table {
	struct hs_entry	e[HS_SETS][HS_WAYS];
};

struct hslimit {
	struct hs_table	bucket;		/* by address */
	struct hs_table	log;		/* by address and reason */
	uint64_t	seed;		/* of the hash, so sets are unguessable */
	uint64_t	rate;		/* thousandths of a token per ms */
	uint64_t	burst;		/* thousandths */
	uint32_t	epoch;		/* the current interval */
	int64_t		since_ms;	/* when it began (0: not yet) */
	uint64_t	logged_all;	/* refusals logged one by one in it */
	uint64_t	quiet_all;	/* refusals only counted in it */
	uint64_t	quiet_addrs;	/* addresses they came from */
	char		top[HSLIMIT_ADDR_LEN];	/* the address of the most */
	char		top_reason[HSLIMIT_REASON_LEN];	/* and their reason */
	uint64_t	top_n;
};

static uint64_t		 hs_hash(const struct hslimit *, const char *,
			    const char *);
static struct hs_entry	*hs_find(struct hslimit *, struct hs_table *,
			    const char *, const char *, int64_t);

struct hslimit *
hslimit_new(unsigned rate, unsigned burst)
{
	struct hslimit	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if (getentropy(&h->seed, sizeof(h->seed)) == -1)
		h->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	hslimit_set(h, rate, burst);
	return h;
}

void
hslimit_destroy(struct hslimit **hp)
{
	free(*hp);
	*hp = NULL;
}

void
hslimit_set(struct hslimit *h, unsigned rate, unsigned burst)
{
	size_t	s, w;

	/* A token per second is HS_MILLI thousandths per 1000 ms. */
	h->rate = rate > 0 ? rate : 1;
	h->burst = (uint64_t)(burst > 0 ? burst : 1) * HS_MILLI;
	for (s = 0; s < HS_SETS; s++)
		for (w = 0; w < HS_WAYS; w++)
			if (h->bucket.e[s][w].tokens > h->burst)
				h->bucket.e[s][w].tokens = h->burst;
}

bool
hslimit_take(struct hslimit *h, const char *addr, int64_t now_ms)
{
	struct hs_entry	*e = hs_find(h, &h->bucket, addr, "", now_ms);
	int64_t		 dt = now_ms - e->seen_ms;

	/* Refill for the time since the last look; a clock stepping back
	 * refills nothing. */
	if (dt > 0) {
		if ((uint64_t)dt >= h->burst / h->rate + 1)
			e->tokens = h->burst;
		else if ((e->tokens += (uint64_t)dt * h->rate) > h->burst)
			e->tokens = h->burst;
		e->seen_ms = now_ms;
	}
	if (e->tokens < HS_MILLI)
		return false;
	e->tokens -= HS_MILLI;
	return true;
}

bool
hslimit_log(struct hslimit *h, const char *addr, const char *reason,
    int64_t now_ms)
{
	struct hs_entry	*e = hs_find(h, &h->log, addr, reason, now_ms);

	e->seen_ms = now_ms;
	if (h->since_ms == 0)
		h->since_ms = now_ms;
	if (e->logged < HSLIMIT_LOG_EACH && h->logged_all < HSLIMIT_LOG_MAX) {
		e->logged++;
		h->logged_all++;
		return true;
	}
	if (e->quiet++ == 0)
		h->quiet_addrs++;
	h->quiet_all++;
	if (e->quiet > h->top_n) {
		h->top_n = e->quiet;
		snprintf(h->top, sizeof(h->top), "%s", e->addr);
		snprintf(h->top_reason, sizeof(h->top_reason), "%s",
		    e->reason);
	}
	return false;
}

void
hslimit_tick(struct hslimit *h, int64_t now_ms)
{
	if (h->since_ms == 0 || now_ms - h->since_ms < HSLIMIT_INTERVAL_MS)
		return;
	if (h->quiet_all > 0)
		log_warnx("auth: %llu more refused handshakes in the last "
		    "%lld s not logged one by one (%llu addresses and "
		    "reasons); the most from address=%s reason=\"%s\" (%llu)",
		    (unsigned long long)h->quiet_all,
		    (long long)((now_ms - h->since_ms) / 1000),
		    (unsigned long long)h->quiet_addrs, h->top, h->top_reason,
		    (unsigned long long)h->top_n);
	/* A new interval: every address's counts start again (lazily, by
	 * epoch, in hs_find). */
	h->epoch++;
	h->since_ms = 0;
	h->logged_all = h->quiet_all = h->quiet_addrs = h->top_n = 0;
	h->top[0] = h->top_reason[0] = '\0';
}

/* FNV-1a from a random basis, then a final mix of the bits. */
static uint64_t
hs_hash(const struct hslimit *h, const char *a, const char *b)
{
	uint64_t	x = 14695981039346656037ULL ^ h->seed;

	for (; *a != '\0'; a++)
		x = (x ^ (uint8_t)*a) * 1099511628211ULL;
	x = (x ^ 0xff) * 1099511628211ULL;
	for (; *b != '\0'; b++)
		x = (x ^ (uint8_t)*b) * 1099511628211ULL;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/*
 * The entry of `addr` and `reason` in table t, made when absent (in a free
 * way of its set, or in place of the least recently seen), with a full
 * bucket.  Its counts are those of the current interval.  Both are
 * compared as far as an entry holds them.
 */
static struct hs_entry *
hs_find(struct hslimit *h, struct hs_table *t, const char *addr,
    const char *reason, int64_t now_ms)
{
	struct hs_entry	*set, *e = NULL;
	char		 a[HSLIMIT_ADDR_LEN], r[HSLIMIT_REASON_LEN];
	size_t		 w;

	snprintf(a, sizeof(a), "%s", addr[0] != '\0' ? addr : "-");
	snprintf(r, sizeof(r), "%s", reason);
	set = t->e[hs_hash(h, a, r) & (HS_SETS - 1)];
	for (w = 0; w < HS_WAYS; w++) {
		if (set[w].addr[0] != '\0' && strcmp(set[w].addr, a) == 0 &&
		    strcmp(set[w].reason, r) == 0) {
			e = &set[w];
			break;
		}
		if (e == NULL || set[w].addr[0] == '\0' ||
		    (e->addr[0] != '\0' && set[w].seen_ms < e->seen_ms))
			e = &set[w];
	}
	if (w == HS_WAYS) {
		memset(e, 0, sizeof(*e));
		memcpy(e->addr, a, sizeof(a));
		memcpy(e->reason, r, sizeof(r));
		e->tokens = h->burst;
		e->seen_ms = now_ms;
		e->epoch = h->epoch;
	}
	if (e->epoch != h->epoch) {
		e->epoch = h->epoch;
		e->logged = 0;
		e->quiet = 0;
	}
	return e;
}
