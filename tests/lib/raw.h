/*
 * raw.h - bare CURVE DEALER sockets for the abuse and fault tests.
 *
 * The harness's clients (harness.h) cost a monitor and a parsed inbox
 * each and belong to the harness's context; these are for a thousand
 * connections at once, floods from other threads and sockets a test
 * means to misuse.  They live in a context the test makes (r_ctx_new),
 * never call cr_assert (so threads may use them) and parse only the `op`
 * and `code` of what they receive.  Also here: what these tests need to
 * know of the broker process (its pid, its open descriptors) and timing.
 */
#ifndef CC_TEST_RAW_H
#define CC_TEST_RAW_H

#include <sys/resource.h>
#include <sys/types.h>

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

#include "harness.h"

/* Where and whom to connect to; plain data, shared by threads. */
struct r_target {
	int	port;
	char	pki[PATH_MAX];
	char	broker_key[41];		/* z85 of the broker's public key */
	char	source[64];		/* connect from this address (e.g.
					 * 127.0.0.2: another loopback
					 * address), "" for the default */
};

struct r_sock {
	void	*s;
	void	*mon;		/* PAIR end of the handshake monitor, or NULL */
	int	 handshake;	/* as h_handshake(): 1, -1 (ZAP said no), -2, 0 */
};

/* The env's broker, as a target (fails the test when broker.crt is bad). */
void	 r_target_of(struct h_env *, struct r_target *);

/* A context that may hold max_sockets sockets; NULL on failure. */
void	*r_ctx_new(int max_sockets);

/*
 * A DEALER connected to t with keys/AGENCY.key (agency NULL: a fresh key
 * no certificate knows), linger 0, reconnect_ivl_ms between attempts
 * (0: libzmq's default), watching its handshake when monitor is true.
 * Returns 0, or -1 (errno as libzmq set it).
 */
int	 r_open(struct r_sock *, void *ctx, const struct r_target *,
	    const char *agency, int reconnect_ivl_ms, bool monitor);
void	 r_close(struct r_sock *);

/* zmq_send of one frame; 0 or -1. */
int	 r_send(struct r_sock *, const void *, size_t, int flags);
/* hello {agent, receive}; 0 or -1. */
int	 r_hello(struct r_sock *, bool receive);
/*
 * The next frame within timeout_ms: 1 with its op and (for an error) its
 * code copied (op "?" when it is no msgpack map), 0 on timeout.
 */
int	 r_recv(struct r_sock *, int timeout_ms, char op[32], char code[32]);
/* The handshake's outcome within timeout_ms (needs monitor). */
int	 r_handshake(struct r_sock *, int timeout_ms);

/* A message (op and v included, as h_send takes it) as one wire frame;
 * fails the test when it does not validate.  The caller destroys sb. */
void	 r_frame(json_t *msg, msgpack_sbuffer *sb);

/* The running broker's pid (found by its broker.conf), or -1. */
pid_t	 r_broker_pid(struct h_env *);
/* Descriptors open in a process, or -1. */
int	 r_count_fds(pid_t);
/* Raise this process's soft RLIMIT_NOFILE to at least n (up to the hard
 * limit); false when the hard limit is lower. */
bool	 r_need_fds(rlim_t n);

int64_t	 r_now_us(void);
/* The p-th percentile (0..100) of v[0..n-1], which it sorts; 0 if n==0. */
double	 r_percentile(double *v, size_t n, double p);

#endif /* CC_TEST_RAW_H */
