/*
 * loadgen.h - the benchmark load generator: one publisher, three
 * subscribers, 2 KiB records, windowed publishes, every delivery acked.
 *
 * One program, one mode per peer:
 *   wire   ccbroker's wire protocol (DESIGN §7) over CurveZMQ, for ccbroker
 *          and for bench/nullbroker
 *   raw    bare CurveZMQ frames to bench/rawrelay
 *   mqtt   MQTT 3.1.1 over mutual TLS, QoS 1, persistent sessions
 *   nats   NATS JetStream over mutual TLS, durable consumers, explicit acks
 *
 * Every mode sends the same payload (the msgpack frame of a valid
 * release-plan publish, 2048 bytes), keeps at most `window` publishes
 * unacknowledged by the broker, and at most `ahead` messages published
 * but not yet delivered to all three subscribers (a bound on the
 * harness's memory, the same for every peer).  A run appends one JSON
 * object per line to the results file.
 */
#ifndef CC_BENCH_LOADGEN_H
#define CC_BENCH_LOADGEN_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LG_SUBS		3	/* subscribers: the fan-out */
#define LG_PAYLOAD	2048	/* bytes of the publish frame */
#define LG_TIMEOUT_S	300	/* a run that takes longer has failed */
#define LG_AREA		"E08000035"

struct lg_opts {
	const char	*mode;		/* wire, raw, mqtt, nats */
	const char	*scenario;	/* label in the results */
	const char	*endpoint;	/* where the broker listens */
	const char	*pki;		/* partnership directory (wire, raw) */
	const char	*tls;		/* TLS directory (mqtt, nats) */
	const char	*out;		/* results file, JSON lines */
	int		 run;		/* round number, for the results */
	unsigned	 msgs;		/* messages per throughput run */
	unsigned	 window;	/* publishes not yet acknowledged */
	unsigned	 ahead;		/* published, not yet fully delivered */
	pid_t		 pid;		/* broker process, for CPU and memory */
	double		 rate;		/* latency run: publishes/s; 0: throughput */
	double		 secs;		/* latency run: seconds */
	unsigned	 backlog;	/* backlog run: messages; 0: none */
};

/* The publish frame every mode sends, with its mid patched per message. */
struct lg_payload {
	uint8_t		 frame[LG_PAYLOAD + 256];
	size_t		 len;
	size_t		 mid_off;	/* offset of the 36 mid characters */
	uint8_t		 grant[4096];	/* consent-grant frame (wire) */
	size_t		 grantlen;
};

/* What one run measured. */
struct lg_result {
	uint64_t	 published, accepted, deliveries, receipts;
	uint64_t	 busy;		/* publishes answered busy, sent again */
	double		 secs;		/* first publish to last delivery acked */
	double		 receipt_secs;	/* first publish to last receipt */
	double		 broker_cpu;	/* seconds of the broker (all threads) */
	double		 harness_cpu;	/* seconds of this process */
	/* latency runs: microseconds, one per publish / per delivery */
	uint32_t	*acc_us, *del_us;
	size_t		 nacc, ndel;
};

/* State shared by the modes: per-message send times and delivery marks. */
struct lg_track {
	unsigned	 n;
	int64_t		*sent_ns;	/* when each publish was sent */
	uint8_t		*ndone;		/* subscribers that have it */
	uint8_t		*seen[LG_SUBS];	/* bitmaps: first copies */
	uint64_t	 full;		/* messages every subscriber has */
};

/* loadgen.c */
int64_t	lg_now_ns(void);
double	lg_proc_cpu(pid_t);
double	lg_self_cpu(void);
int	lg_proc_rss(pid_t, long *anon_kib, long *file_kib);
int	lg_payload_make(struct lg_payload *);
void	lg_payload_mid(struct lg_payload *, uint64_t idx);
char	*lg_mid_text(uint64_t idx, char out[37]);
int64_t	lg_mid_index(const char *mid, size_t len);
int	lg_track_init(struct lg_track *, unsigned n);
void	lg_track_free(struct lg_track *);
/* Mark message idx delivered to subscriber s; true when a first copy. */
bool	lg_track_deliver(struct lg_track *, int s, int64_t idx);
void	lg_result_latency(struct lg_result *, size_t nmsgs);
void	lg_fail(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	lg_write_result(const struct lg_opts *, const struct lg_result *);
/* Publishes due by now in a latency run (rate-limited), or all. */
uint64_t lg_due(const struct lg_opts *, int64_t t0, int64_t now);

/* lg_wire.c: the agencies (the prison, then the subscribers), and a
 * DEALER socket with id's CURVE keys from the partnership, connected. */
extern const char *const lg_agency_ids[1 + LG_SUBS];
void	*lg_curve_open(void *ctx, const struct lg_opts *, const char *id);

/* The modes. */
int	lg_wire(const struct lg_opts *, struct lg_payload *);
int	lg_raw(const struct lg_opts *, struct lg_payload *);
int	lg_mqtt(const struct lg_opts *, struct lg_payload *);
int	lg_nats(const struct lg_opts *, struct lg_payload *);

/* Minimal msgpack reading (the harness never builds a tree). */
int	mp_map(const uint8_t **, const uint8_t *, uint32_t *);
int	mp_str(const uint8_t **, const uint8_t *, const char **, uint32_t *);
int	mp_uint(const uint8_t **, const uint8_t *, uint64_t *);
int	mp_skip(const uint8_t **, const uint8_t *);

#endif /* CC_BENCH_LOADGEN_H */
