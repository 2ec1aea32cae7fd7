/*
 * broker_impl.h - the loop's own state, shared by the files that make up
 * the loop: broker.c (start, signals, reload, the loop), batch.c (a turn:
 * requests, group commit, undo), reply.c (answers and the output queue),
 * capacity.c (room in the store), conn.c (connections and descriptors),
 * state.c (sessions, what survives a restart) and priv.c (privileges).
 * Handlers, the router and the pump see only broker.h.
 */
#ifndef CC_BROKER_IMPL_H
#define CC_BROKER_IMPL_H

#include <sys/types.h>

#include "broker.h"

#define BATCH_MAX	512	/* requests per transaction */

/*
 * Refused handshakes are audited aggregated: one entry per reason per
 * interval, with the count and a sample of addresses and agencies, so a
 * flood of them grows the store by a few entries a minute, never one per
 * refusal.  Their counter is recorded at most once a second.
 */
#define REFUSED_REASONS		16	/* reasons kept apart per interval */
#define REFUSED_SAMPLE		5	/* addresses and agencies per reason */
#define REFUSED_INTERVAL_MS	60000
#define REFUSED_SAVE_MS		1000

/* The refusals of one reason in the current interval. */
struct refused_agg {
	char		reason[64];
	uint64_t	count;
	int64_t		since_ms;		/* the first */
	char		addr[REFUSED_SAMPLE][HSLIMIT_ADDR_LEN];
	size_t		naddr;
	char		agency[REFUSED_SAMPLE][CC_ID_MAX + 1];
	size_t		nagency;
};

/* A frame to send once the batch has committed. */
struct outmsg {
	uint8_t		rid[RID_MAX];
	size_t		ridlen;
	char		*data;		/* owned; the frame starts at off */
	size_t		off, len;
};

struct counters {
	uint64_t	n[CNT_REJECTED + 1];	/* by enum counter */
};

struct broker {
	struct broker_conf	 conf;
	uint8_t			 sec[32];	/* CURVE secret, until bound */
	struct auth		 auth;
	struct store		*st;
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
	/* Refused handshakes of this interval, for the audit. */
	struct refused_agg	 refused[REFUSED_REASONS];
	size_t			 nreasons;
	int64_t			 refused_since;	/* the interval's start, ms */
	size_t			 nrefused;	/* > 0: the next turn records
						 * refusals (state_refused_tick) */
	uint64_t		 refused_saved;	/* auth.refused last recorded */
	int64_t			 refused_saved_at;
	/* Handshakes per source address (auth.limit points to it). */
	struct hslimit		*hslimit;
	/* The certificates in force, for `stats`; the CRL's warnings. */
	struct auth_status	 status;
	int64_t			 crl_warned;	/* ms: its end is near */
	int64_t			 crl_nagged;	/* ms: it is past */
	/* Open connections by descriptor, from the monitor's events, and
	 * the agency each serves (peer index + 1; 0: none yet). */
	bool			*conn;
	size_t			 conncap, nconn;
	uint32_t		*connpeer;
	size_t			 connpeer_cap;
	size_t			 fds_base;	/* held before the first peer */
	/* Requests answered `busy` unhandled (fairness), since last logged. */
	uint64_t		 shed;
	int64_t			 shed_logged;	/* ms */
	char			 shed_agency[CC_ID_MAX + 1];
	/* The audit head as last logged, and when it was last looked at. */
	uint64_t		 head_logged;	/* seq */
	int64_t			 head_looked;	/* ms */
};

/* broker.c: run the broker (returns its exit status); or, without
 * sockets, open and close everything else: configuration, the key pair
 * (checked to match the certificate), the store, the agency directory
 * and the sessions (returns 0, or -1 with err). */
int	broker_run(const char *conf_path);
struct run_as;
int	broker_open(struct broker *, const char *conf_path, struct run_as *,
	    char *err, size_t errlen) CC_WUR;
void	broker_close(struct broker *);

/* batch.c: one turn.  Returns 0, or -1 when the store cannot begin a
 * transaction (the broker stops for a restart). */
int	batch_turn(struct broker *);

/* reply.c: the output queue. */
void	out_flush(struct broker *);
void	out_drop(struct broker *, size_t keep);

/* capacity.c */
void	capacity_measure(struct broker *, bool now);

/* conn.c */
void	conn_monitor_read(struct broker *);
void	conn_check(struct broker *);
size_t	conn_fds_open(void);
void	conn_raise_nofile(void);

/* quota.c */
int	quota_load(struct broker *) CC_WUR;
bool	quota_connection(struct broker *, struct peer *, int fd);
void	quota_disconnect(struct broker *, int fd);

/* state.c */
int	state_peers_build(struct broker *);
int	state_load(struct broker *) CC_WUR;
int	state_save(struct broker *, struct store_txn *) CC_WUR;
void	state_save_final(struct broker *);
void	state_on_refused(void *, const char *agency, const char *fp,
	    const char *why, const char *address);
/* Log the audit head: always when `now`, else once a minute if it moved.
 * Call with no transaction open: it reads what is committed. */
void	state_log_head(struct broker *, bool now);
/* Once a loop: whether the next turn must record refusals (their counter
 * a second after it moved, their audit entries at the interval's end). */
void	state_refused_tick(struct broker *, int64_t now_ms);
/* In txn: the aggregated audit entries of refused handshakes, when their
 * interval is over (or `flush`).  Returns 0 or a store error. */
int	state_audit_refused(struct broker *, struct store_txn *,
	    bool flush) CC_WUR;
/* Record b->status for `stats`, in a transaction of its own. */
void	state_save_status(struct broker *);

/* priv.c: the user to become (config `user`), looked up before anything
 * opens, and becoming it after the socket is bound. */
struct run_as {
	bool	drop;
	uid_t	uid;
	gid_t	gid;
};
void	priv_check_user(const struct broker_conf *, struct run_as *);
void	priv_drop(const struct broker_conf *, const struct run_as *);

#endif /* CC_BROKER_IMPL_H */
