/*
 * broker.h - the broker as its handlers, the router and the pump see it:
 * the request being handled, the agencies' sessions, the store, the clock
 * of the turn, the counters and the replies.  The loop itself (struct
 * broker) is private to broker.c, batch.c and their helpers
 * (broker_impl.h).
 *
 * One thread runs one loop.  Each turn reads every request waiting (up to
 * a batch), handles them all in one store transaction, runs the delivery
 * pump and the sweeps in the same transaction, commits once (one fsync for
 * the whole batch: group commit), and only then sends the answers and
 * deliveries it collected.  Nothing is said to an agency before the state
 * it describes is on disk.
 */
#ifndef CC_BROKER_H
#define CC_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "auth.h"
#include "config.h"
#include "decide.h"
#include "store.h"

#define RID_MAX		256	/* ZeroMQ routing id */

struct broker;

/* What an agency holds of the store (see struct quota). */
struct usage {
	uint64_t	queued, queued_bytes;	/* deliveries waiting for it */
	uint64_t	held, held_bytes;	/* its messages waiting */
};

/* The session of one agency of the directory. */
struct peer {
	char		id[CC_ID_MAX + 1];
	struct sub	sub;		/* current subscription */
	bool		has_sub;
	/* The connection that said hello with receive: true, if any. */
	bool		online;
	uint8_t		rid[RID_MAX];
	size_t		ridlen;
	uint8_t		key[32];	/* the key that connection used */
	uint64_t	cursor;		/* last dseq sent on this connection */
	unsigned	inflight;	/* sent, not yet acked */
	bool		dirty;		/* may have something to send */
	bool		connected;	/* that connection is up (for stats) */
	uint64_t	saved_cursor;	/* before the pump, to undo it */
	unsigned	saved_inflight;
	uint64_t	turn_cursor;	/* before the turn, to undo it */
	unsigned	turn_inflight;
	int		fd;		/* its socket, to match disconnects */
	struct quota	quota;		/* what it may hold */
	struct usage	use;		/* what it holds */
	struct usage	turn_use, saved_use, req_use;	/* to undo */
	unsigned	nconn;		/* its open connections */
};

/* One request being handled. */
struct req {
	const uint8_t		*rid;
	size_t			 ridlen;
	const struct agency	*from;		/* the certificate whose key
						 * authenticated the connection,
						 * valid now */
	uint8_t			 key[32];	/* that key */
	struct peer		*peer;
	struct cc_msg		*msg;
	struct store_txn	*txn;		/* the turn's, or its own */
	int			 fd;		/* the connection's socket */
	size_t			 len;		/* bytes of the frame */
};

/* The outcome counters of `stats`. */
enum counter {
	CNT_ACCEPTED,
	CNT_DELIVERED,
	CNT_WITHHELD,
	CNT_PURGED,
	CNT_EXPIRED,
	CNT_REJECTED
};

/* ---- the broker's state, as handlers may use it ---- */

struct store		*broker_store(struct broker *);
/* The time of this turn (ms since the epoch), the same for all of it. */
int64_t			 broker_now(const struct broker *);
const struct broker_conf *broker_conf(const struct broker *);
/* The session of an agency of the directory, or NULL. */
struct peer		*broker_peer(struct broker *, const char *id);
/* Every session (n set to their number). */
struct peer		*broker_peers(struct broker *, size_t *n);
/* The policy of a currently valid agency, or NULL (DESIGN §3: an agency
 * no longer valid gets no further service). */
const struct policy	*broker_policy_of(struct broker *, const char *id);
/* The policy of the type a certificate names (a request's r->from). */
const struct policy	*broker_policy_cert(struct broker *,
			    const struct agency *);
/* Is the certificate whose key the peer's receiving session used still
 * valid?  When not, nothing more is sent on that session. */
bool			 broker_session_valid(struct broker *,
			    const struct peer *);
/* Is there room for about `cost` more bytes below the full mark?  Counts
 * them against this batch when there is. */
bool			 broker_room(struct broker *, size_t cost);
void			 broker_count(struct broker *, enum counter);
/* A message expires at `ms`: the sweep must run by then. */
void			 broker_expiry_at(struct broker *, int64_t ms);
/* The sweep found nothing due before `ms`: sleep until then. */
void			 broker_sweep_next(struct broker *, int64_t ms);

/* ---- quotas (quota.c) ---- */

/* A delivery of `bytes` queued for, or taken from, an agency; a message of
 * `bytes` held for, or released by, its sender. */
void	quota_enqueue(struct broker *, const char *agency, size_t bytes);
void	quota_dequeue(struct broker *, const char *agency, size_t bytes);
void	quota_hold(struct broker *, const char *agency, size_t bytes);
void	quota_release(struct broker *, const char *agency, size_t bytes);
/* Would one more delivery (message) of `bytes` keep the agency within its
 * quota as recipient (as sender)? */
bool	quota_room_queued(const struct peer *, size_t bytes);
bool	quota_room_held(const struct peer *, size_t bytes);

/* Copy a msgpack string into buf (NUL-terminated); -1 if not a string or
 * too long. */
int	objstr(const msgpack_object *, char *buf, size_t size) CC_WUR;

/* ---- replies (reply.c) ---- */

/*
 * An answer being built: a map whose fields are counted as they are
 * added, so no one writes its size by hand.  Packing failures (out of
 * memory) are remembered and make reply_send fail, never send a
 * truncated frame.  Use:
 *	reply_begin(&rp, "accepted");
 *	reply_str(&rp, "mid", text);
 *	return reply_send(b, r->rid, r->ridlen, &rp);
 * For a value of another kind, reply_key() adds the key and returns the
 * packer for exactly one value; reply_check() records its result.
 */
struct reply {
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	uint32_t	n;		/* fields so far */
	int		err;		/* a packing failure */
};

void		 reply_begin(struct reply *, const char *op);
msgpack_packer	*reply_key(struct reply *, const char *key);
void		 reply_check(struct reply *, int rc);
void		 reply_str(struct reply *, const char *key, const char *val);
void		 reply_strn(struct reply *, const char *key, const char *val,
		    size_t len);
void		 reply_u64(struct reply *, const char *key, uint64_t val);
/* n fields already packed (key, value, key, value...): len bytes. */
void		 reply_raw(struct reply *, const void *pairs, size_t len,
		    unsigned n);
/* Queue the answer for rid, sent once the turn commits; frees the
 * reply.  Returns 0, or STORE_NOMEM (the reply could not be built). */
int		 reply_send(struct broker *, const uint8_t *rid, size_t ridlen,
		    struct reply *) CC_WUR;
/* Free a reply that will not be sent. */
void		 reply_discard(struct reply *);
/* An `error` answering the request, logged (never with content). */
int		 reply_error(struct broker *, struct req *, enum cc_err,
		    const char *field, const char *fmt, ...)
		    __attribute__((format(printf, 5, 6))) CC_WUR;
/* An `error` frame for rid, as it is. */
int		 reply_err(struct broker *, const uint8_t *rid, size_t ridlen,
		    const struct cc_error *) CC_WUR;

#endif /* CC_BROKER_H */
