/*
 * lg_mqtt.c - the load generator against Mosquitto: MQTT 3.1.1 over mutual
 * TLS, QoS 1, persistent sessions (clean session off, fixed client ids),
 * one publisher and three subscribers of rp/E08000035.  One thread polls
 * the four sockets and drives libmosquitto's read, write and misc steps;
 * libmosquitto sends each PUBACK before it hands the message over, so a
 * message counted here is one its recipient has acked.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "loadgen.h"

#define NCONN	(1 + LG_SUBS)
#define TOPIC	"rp/" LG_AREA

struct mq {
	struct mosquitto	*m;
	int			 n;		/* 0 publisher, 1.. subscribers */
	bool			 connected, subscribed;
};

/* Shared with the callbacks (one thread). */
static struct {
	const struct lg_opts	*o;
	const struct lg_payload	*pl;
	struct lg_track		 tr;
	struct lg_result	 r;
	uint64_t		 outstanding;
	int64_t			 t_last;
	int64_t			 mid_idx[65536];	/* MQTT packet id -> msg */
} S;

static void	on_connect(struct mosquitto *, void *, int);
static void	on_subscribe(struct mosquitto *, void *, int, int,
		    const int *);
static void	on_publish(struct mosquitto *, void *, int);
static void	on_message(struct mosquitto *, void *,
		    const struct mosquitto_message *);
static void	step(struct mq *, short);
static void	pump(struct mq *, int, int);

static void
on_connect(struct mosquitto *m, void *arg, int rc)
{
	struct mq	*q = arg;

	if (rc != 0)
		lg_fail("mqtt: connection %d refused: %s", q->n,
		    mosquitto_connack_string(rc));
	q->connected = true;
	if (q->n > 0 && mosquitto_subscribe(m, NULL, TOPIC, 1) != 0)
		lg_fail("mqtt: subscribe failed");
}

static void
on_subscribe(struct mosquitto *m, void *arg, int mid, int n, const int *qos)
{
	struct mq	*q = arg;

	(void)m;
	(void)mid;
	if (n < 1 || qos[0] != 1)
		lg_fail("mqtt: subscription not granted at QoS 1");
	q->subscribed = true;
}

/* The broker's PUBACK: the publish is acknowledged. */
static void
on_publish(struct mosquitto *m, void *arg, int mid)
{
	int64_t	idx = S.mid_idx[mid & 0xffff];

	(void)m;
	(void)arg;
	S.outstanding--;
	S.r.accepted++;
	if (S.r.acc_us != NULL && idx >= 0)
		S.r.acc_us[S.r.nacc++] = (uint32_t)((lg_now_ns() -
		    S.tr.sent_ns[idx]) / 1000);
}

static void
on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
	struct mq	*q = arg;
	int64_t		 idx, now;

	(void)m;
	if (msg->payloadlen != (int)S.pl->len)
		lg_fail("mqtt: payload of %d bytes", msg->payloadlen);
	idx = lg_mid_index((const char *)msg->payload + S.pl->mid_off, 36);
	if (!lg_track_deliver(&S.tr, q->n - 1, idx))
		return;
	now = lg_now_ns();
	S.r.deliveries++;
	S.t_last = now;
	if (S.r.del_us != NULL)
		S.r.del_us[S.r.ndel++] = (uint32_t)((now - S.tr.sent_ns[idx]) /
		    1000);
}

/* One poll result for one client: read, write, keepalive. */
static void
step(struct mq *q, short rev)
{
	int	rc = 0;

	if (rev & (POLLIN | POLLERR | POLLHUP))
		rc = mosquitto_loop_read(q->m, 1);
	if (rc == 0 && (rev & POLLOUT))
		rc = mosquitto_loop_write(q->m, 1);
	if (rc == 0)
		rc = mosquitto_loop_misc(q->m);
	if (rc != 0)
		lg_fail("mqtt: connection %d: %s", q->n, mosquitto_strerror(rc));
}

/* Poll every client until `cond` or the timeout. */
static void
pump(struct mq *c, int nc, int timeout_ms)
{
	struct pollfd	pfd[NCONN];
	int		i;

	for (i = 0; i < nc; i++) {
		pfd[i].fd = mosquitto_socket(c[i].m);
		pfd[i].events = POLLIN;
		if (mosquitto_want_write(c[i].m))
			pfd[i].events |= POLLOUT;
		pfd[i].revents = 0;
	}
	if (poll(pfd, nc, timeout_ms) == -1 && errno != EINTR)
		lg_fail("poll: %s", strerror(errno));
	for (i = 0; i < nc; i++)
		step(&c[i], pfd[i].revents);
}

int
lg_mqtt(const struct lg_opts *o, struct lg_payload *pl)
{
	static const char *const ids[NCONN] = { "carat.hmp-leeds",
	    "cjit.leeds", "probation.leeds", "housing.leeds-hostels" };
	struct mq	 c[NCONN];
	char		 host[256], ca[4096], crt[4096], key[4096], *colon;
	uint64_t	 next = 0, want;
	int64_t		 t0 = 0, now, end, wait_ns;
	double		 cpu0 = 0, self0 = 0;
	int		 i, port, ready;

	if (o->tls == NULL)
		lg_fail("mqtt: -t TLS directory needed");
	snprintf(host, sizeof(host), "%s", o->endpoint);
	if ((colon = strrchr(host, ':')) == NULL)
		lg_fail("mqtt: endpoint is HOST:PORT");
	*colon = '\0';
	port = atoi(colon + 1);
	memset(&S, 0, sizeof(S));
	memset(S.mid_idx, 0xff, sizeof(S.mid_idx));
	S.o = o;
	S.pl = pl;
	if (lg_track_init(&S.tr, o->msgs) == -1)
		lg_fail("out of memory");
	if (o->rate > 0)
		lg_result_latency(&S.r, o->msgs);

	mosquitto_lib_init();
	snprintf(ca, sizeof(ca), "%s/ca.crt", o->tls);
	for (i = 0; i < NCONN; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].n = i;
		if ((c[i].m = mosquitto_new(ids[i], false, &c[i])) == NULL)
			lg_fail("mosquitto_new: %s", strerror(errno));
		snprintf(crt, sizeof(crt), "%s/%s.crt", o->tls, ids[i]);
		snprintf(key, sizeof(key), "%s/%s.key", o->tls, ids[i]);
		mosquitto_int_option(c[i].m, MOSQ_OPT_PROTOCOL_VERSION,
		    MQTT_PROTOCOL_V311);
		mosquitto_int_option(c[i].m, MOSQ_OPT_TCP_NODELAY, 1);
		if (i == 0)
			mosquitto_max_inflight_messages_set(c[i].m, o->window);
		if (mosquitto_tls_set(c[i].m, ca, NULL, crt, key, NULL) != 0)
			lg_fail("mqtt: cannot load %s", crt);
		mosquitto_connect_callback_set(c[i].m, on_connect);
		mosquitto_subscribe_callback_set(c[i].m, on_subscribe);
		mosquitto_publish_callback_set(c[i].m, on_publish);
		mosquitto_message_callback_set(c[i].m, on_message);
		if (mosquitto_connect(c[i].m, host, port, 60) != 0)
			lg_fail("mqtt: cannot connect to %s", o->endpoint);
	}
	end = lg_now_ns() + 10000000000LL;
	do {
		pump(c, NCONN, 100);
		ready = c[0].connected;
		for (i = 1; i < NCONN; i++)
			ready &= c[i].subscribed;
		if (lg_now_ns() > end)
			lg_fail("mqtt: not connected and subscribed in 10 s");
	} while (!ready);

	want = (uint64_t)o->msgs * LG_SUBS;
	for (;;) {
		now = lg_now_ns();
		if (next == 0) {
			cpu0 = lg_proc_cpu(o->pid);
			self0 = lg_self_cpu();
			t0 = now;
		}
		while (next < o->msgs && S.outstanding < o->window &&
		    next - S.tr.full < o->ahead && next < lg_due(o, t0, now)) {
			int mid;

			lg_payload_mid(pl, next);
			S.tr.sent_ns[next] = lg_now_ns();
			if (mosquitto_publish(c[0].m, &mid, TOPIC, (int)pl->len,
			    pl->frame, 1, false) != 0)
				lg_fail("mqtt: publish failed");
			S.mid_idx[mid & 0xffff] = (int64_t)next;
			next++;
			S.outstanding++;
			S.r.published++;
		}
		if (S.r.deliveries == want)
			break;
		if (now - t0 > (int64_t)LG_TIMEOUT_S * 1000000000LL)
			lg_fail("%s: timed out: %" PRIu64 " published, %" PRIu64
			    " acked, %" PRIu64 " delivered", o->scenario,
			    S.r.published, S.r.accepted, S.r.deliveries);
		wait_ns = 100000000LL;
		if (o->rate > 0 && next < o->msgs) {
			wait_ns = t0 + (int64_t)((double)next * 1e9 / o->rate) -
			    now;
			if (wait_ns < 0)
				wait_ns = 0;
		}
		pump(c, NCONN, (int)(wait_ns / 1000000));
	}
	/* The last PUBACKs still go out; then read the broker's clock. */
	end = lg_now_ns() + 200000000LL;
	while (lg_now_ns() < end)
		pump(c, NCONN, 10);
	S.r.broker_cpu = lg_proc_cpu(o->pid) - cpu0;
	S.r.harness_cpu = lg_self_cpu() - self0;
	S.r.secs = (S.t_last - t0) / 1e9;
	lg_write_result(o, &S.r);
	for (i = 0; i < NCONN; i++) {
		mosquitto_disconnect(c[i].m);
		mosquitto_destroy(c[i].m);
	}
	mosquitto_lib_cleanup();
	lg_track_free(&S.tr);
	free(S.r.acc_us);
	free(S.r.del_us);
	return 0;
}
