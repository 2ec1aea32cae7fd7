/*
 * broker.h - the running broker: sockets, store, peers and one batch.
 *
 * One thread runs one loop.  Each turn reads every request waiting (up to a
 * batch), handles them all in one LMDB write transaction (a nested one per
 * request, so one failure costs only its own request), runs the delivery
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
#include <time.h>

#include "audit.h"
#include "auth.h"
#include "config.h"
#include "decide.h"
#include "store.h"

#define BATCH_MAX	512	/* requests per transaction */
#define RID_MAX		256	/* ZeroMQ routing id */

/* Everything the broker knows about one agency of the directory. */
struct peer {
	char		id[CC_ID_MAX + 1];
	struct sub	sub;		/* current subscription */
	bool		has_sub;
	/* The connection that said hello with receive: true, if any. */
	bool		online;
	uint8_t		rid[RID_MAX];
	size_t		ridlen;
	uint64_t	cursor;		/* last dseq sent on this connection */
	unsigned	inflight;	/* sent, not yet acked */
	bool		dirty;		/* may have something to send */
	bool		connected;	/* that connection is up (for stats) */
	uint64_t	saved_cursor;	/* before the pump, to undo it */
	unsigned	saved_inflight;
	uint64_t	turn_cursor;	/* before the turn, to undo it */
	unsigned	turn_inflight;
	int		fd;		/* its socket, to match disconnects */
};

/* A frame to send once the batch has committed. */
struct outmsg {
	uint8_t		rid[RID_MAX];
	size_t		ridlen;
	char		*data;
	size_t		len;
};

struct counters {
	uint64_t	accepted, delivered, withheld, purged, expired,
			rejected;
};

/* The counters as stored in meta for `stats` (igcmd.c reads the same). */
struct saved_counters {
	struct counters	c;
	uint64_t	refused;	/* handshakes refused */
};

struct broker {
	struct broker_conf	 conf;
	struct auth		 auth;
	struct store		 st;
	void			*ctx;
	void			*router;
	void			*monitor;	/* router's disconnect events */
	struct peer		*peer;
	size_t			 npeer;
	struct outmsg		*out;
	size_t			 nout, outcap;
	struct counters		 count;
	int64_t			 now;		/* ms, fixed for one turn */
	int64_t			 next_sweep;	/* earliest expiry due */
	int64_t			 usage_at;	/* when usage was measured */
	size_t			 used;		/* bytes in use then */
	size_t			 map;		/* map size then */
	size_t			 batch_est;	/* bytes this batch may add */
	bool			 nearly_full;
	bool			 purge_invalid;	/* after start and reload */
	/* Refused handshakes waiting for the next transaction's audit. */
	struct {
		char	agency[CC_ID_MAX + 1];
		char	why[64];
	}			 refused[64];
	size_t			 nrefused;
	/* Open connections by descriptor, from the monitor's events. */
	bool			*conn;
	size_t			 conncap, nconn;
	size_t			 fds_base;	/* held before the first peer */
	/* Requests answered `busy` unhandled (fairness), since last logged. */
	uint64_t		 shed;
	int64_t			 shed_logged;	/* ms */
	char			 shed_agency[CC_ID_MAX + 1];
};

/* One request being handled. */
struct req {
	const uint8_t		*rid;
	size_t			 ridlen;
	const struct agency	*from;		/* authenticated and valid */
	struct peer		*peer;
	struct cc_msg		*msg;
	MDB_txn			*txn;		/* this request's own (nested) */
	int			 fd;		/* the connection's socket */
	size_t			 len;		/* bytes of the frame */
};

/* Handlers, one per op (handle_*.c).  They return 0, or an LMDB error that
 * aborts the request's nested transaction. */
int	handle_hello(struct broker *, struct req *);
int	handle_subscribe(struct broker *, struct req *);
int	handle_publish(struct broker *, struct req *);
int	handle_consent_grant(struct broker *, struct req *);
int	handle_consent_withdraw(struct broker *, struct req *);
int	handle_consent_refuse(struct broker *, struct req *);
int	handle_ack(struct broker *, struct req *);
int	handle_track(struct broker *, struct req *);

/* broker.c */
/* Copy a msgpack string into buf (NUL-terminated); -1 if not a string or
 * too long. */
int	objstr(const msgpack_object *, char *buf, size_t size);
int	broker_run(const char *conf_path);
struct peer *broker_peer(struct broker *, const char *id);
/* Is there room for about `cost` more bytes below the full mark? */
bool	broker_room(struct broker *, size_t cost);
const struct policy *broker_policy_of(struct broker *, const char *id);
/* Start an answer: a map of v, op and nfields more fields. */
void	reply_start(msgpack_sbuffer *, msgpack_packer *, const char *op,
	    size_t nfields);
/* Queue the answer for rid and free the buffer. */
int	reply_finish(struct broker *, const uint8_t *rid, size_t ridlen,
	    msgpack_sbuffer *);
/* Queue a frame for rid (copies it); answer helpers. */
int	reply(struct broker *, const uint8_t *rid, size_t ridlen,
	    msgpack_sbuffer *);
int	reply_error(struct broker *, struct req *, enum cc_err,
	    const char *field, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));

/* route.c: recipients of a stored message and withholding/purging.
 * route_publish sets *queued when at least one recipient was queued. */
int	route_publish(struct broker *, MDB_txn *, const uint8_t mid[16],
	    const char *midtext, const struct cc_msg *, const char *sender,
	    const struct msg_hdr *, bool *queued);
int	route_recheck_subject(struct broker *, MDB_txn *,
	    const struct subject_ps *);
int	route_receipt(struct broker *, MDB_txn *, const char *sender,
	    const uint8_t mid[16], const char *recipient, enum cc_state,
	    enum cc_reason);
int	route_drop(struct broker *, MDB_txn *, const char *agency,
	    uint64_t dseq, const struct qent *, enum cc_state,
	    enum cc_reason);
int	route_sweep(struct broker *, MDB_txn *);
int	route_purge_invalid(struct broker *, MDB_txn *);

/* deliver.c: the pump.  deliver_keep() hands it a publish just stored
 * (takes ownership of *m and sets it NULL; `present` is the categories it
 * carries), so that its recipients are sent the tree already decoded. */
int	deliver_pump(struct broker *, MDB_txn *);
void	deliver_keep(const uint8_t mid[16], struct cc_msg **m,
	    cc_catset present);

#endif /* CC_BROKER_H */
