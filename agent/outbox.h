/*
 * outbox.h - the agent's durable state in LMDB under `data`: the outbox
 * of records not yet answered by the broker, and the seen-set of
 * deliveries and receipts already stored.
 *
 * Every write commits (fsync) before it returns: what outbox_put() said
 * is queued survives a crash, and what outbox_seen_put() marked is known
 * as stored after one.
 */
#ifndef CC_OUTBOX_H
#define CC_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc_proto.h"

#define OUTBOX_NAME_MAX	255

struct outbox;

struct outbox_entry {
	uint64_t	seq;			/* order of arrival, from 1 */
	char		mid[CC_UUID_LEN + 1];
	char		name[OUTBOX_NAME_MAX + 1];	/* the out/ file's */
	char		*json;			/* the record as sent (malloc'd) */
};

/* Open (creating) the store in dir, 0700.  NULL with err on failure. */
struct outbox	*outbox_open(const char *dir, char *err, size_t errlen);
void		 outbox_close(struct outbox **);

/*
 * Queue the record of the out/ file `name`.  Every file is queued, whatever
 * its mid: the broker answers a mid it knows (DESIGN §6), and each file is
 * filed with its own answer.  Returns 1 when queued (*seq set); 0 when
 * this file is queued already (the last record queued from `name`, still
 * unanswered, holds the same json: the file was taken before and a crash
 * kept it from leaving out/); -1 on a store failure or a corrupt sequence
 * number (outbox_error says which).
 */
int		 outbox_put(struct outbox *, const char *mid, const char *name,
		    const char *json, uint64_t *seq) CC_WUR;

/*
 * The first entry with seq > after: 0 with *e filled (free its json with
 * outbox_entry_free), 1 when there is none, -1 when the store cannot be
 * read or the entry is corrupt (never taken for "none").
 */
int		 outbox_next(struct outbox *, uint64_t after,
		    struct outbox_entry *) CC_WUR;
void		 outbox_entry_free(struct outbox_entry *);

/* Remove an entry once its answer is filed (none: nothing to do).  0 or
 * -1. */
int		 outbox_done(struct outbox *, uint64_t seq) CC_WUR;
/* How many records are queued; 0 also when the store cannot be read
 * (for the log only). */
size_t		 outbox_count(struct outbox *);

/* The seen-set: 1 when key is in it, 0 when not, -1 on failure. */
int		 outbox_seen(struct outbox *, const char *key) CC_WUR;
/* Add key, durably.  0 or -1. */
int		 outbox_seen_put(struct outbox *, const char *key) CC_WUR;

/*
 * Forget seen keys older than max_age_ms.  0, or -1 (and nothing
 * forgotten) when a cursor fails or a stored time is corrupt.
 */
int		 outbox_prune(struct outbox *, int64_t max_age_ms) CC_WUR;

/* Why the last call that returned -1 failed, for the log. */
const char	*outbox_error(const struct outbox *);

#endif /* CC_OUTBOX_H */
