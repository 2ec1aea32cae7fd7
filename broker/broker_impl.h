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
#define REFUSED_MAX	64	/* refused handshakes audited per turn */

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
	/* Refused handshakes waiting for the next transaction's audit. */
	struct {
		char	agency[CC_ID_MAX + 1];
		char	why[64];
	}			 refused[REFUSED_MAX];
	size_t			 nrefused;
	/* The certificates in force, for `stats`; the CRL's warnings. */
	struct auth_status	 status;
	int64_t			 crl_warned;	/* ms: its end is near */
	int64_t			 crl_nagged;	/* ms: it is past */
	/* Open connections by descriptor, from the monitor's events. */
	bool			*conn;
	size_t			 conncap, nconn;
	size_t			 fds_base;	/* held before the first peer */
	/* Requests answered `busy` unhandled (fairness), since last logged. */
	uint64_t		 shed;
	int64_t			 shed_logged;	/* ms */
	char			 shed_agency[CC_ID_MAX + 1];
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

/* state.c */
int	state_peers_build(struct broker *);
int	state_load(struct broker *) CC_WUR;
int	state_save(struct broker *, struct store_txn *) CC_WUR;
void	state_save_final(struct broker *);
void	state_on_refused(void *, const char *agency, const char *fp,
	    const char *why);
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
