/*
 * lg_nats.c - the load generator against NATS JetStream: mutual TLS, a
 * file-storage stream RP (subjects rp.>, interest retention: a message goes
 * once the three consumers have acked it), three durable push consumers
 * with explicit acks, publishes with a message id (Nats-Msg-Id, the
 * stream's duplicate window) and at most `window` PubAcks outstanding.
 *
 * libnats runs each connection's reader and each subscription's callbacks
 * on threads of its own; counters shared with them are under one mutex.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "loadgen.h"

#define NCONN	(1 + LG_SUBS)
#define STREAM	"RP"
#define SUBJECT	"rp." LG_AREA

struct nsub {
	int	n;		/* 0.. subscriber number */
};

static struct {
	const struct lg_opts	*o;
	const struct lg_payload	*pl;
	struct lg_track		 tr;
	struct lg_result	 r;
	uint64_t		 outstanding;
	int64_t			 t_last;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
} S = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void	on_puback(jsCtx *, natsMsg *, jsPubAck *, jsPubAckErr *,
		    void *);
static void	on_msg(natsConnection *, natsSubscription *, natsMsg *,
		    void *);
static natsConnection *nconnect(const struct lg_opts *, const char *id);
static void	check(natsStatus, const char *);
static void	wait_until(int64_t deadline_ns);

static void
check(natsStatus s, const char *what)
{
	if (s != NATS_OK)
		lg_fail("nats: %s: %s (%s)", what, natsStatus_GetText(s),
		    nats_GetLastError(NULL));
}

/* A PubAck: the stream has the message. */
static void
on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
	int64_t	idx;

	(void)js;
	(void)arg;
	if (pa == NULL)
		lg_fail("nats: publish refused: %s",
		    pae != NULL && pae->ErrText != NULL ? pae->ErrText : "?");
	idx = lg_mid_index(natsMsg_GetData(msg) + S.pl->mid_off, 36);
	pthread_mutex_lock(&S.mu);
	S.outstanding--;
	S.r.accepted++;
	if (S.r.acc_us != NULL && idx >= 0 && (uint64_t)idx < S.o->msgs)
		S.r.acc_us[S.r.nacc++] = (uint32_t)((lg_now_ns() -
		    S.tr.sent_ns[idx]) / 1000);
	pthread_cond_signal(&S.cv);
	pthread_mutex_unlock(&S.mu);
	natsMsg_Destroy(msg);
}

/* A delivery: ack it, then count it if it is a first copy. */
static void
on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
	struct nsub	*s = arg;
	int64_t		 idx, now;

	(void)nc;
	(void)sub;
	if (natsMsg_GetDataLength(msg) != (int)S.pl->len)
		lg_fail("nats: payload of %d bytes",
		    natsMsg_GetDataLength(msg));
	idx = lg_mid_index(natsMsg_GetData(msg) + S.pl->mid_off, 36);
	check(natsMsg_Ack(msg, NULL), "ack");
	natsMsg_Destroy(msg);
	now = lg_now_ns();
	pthread_mutex_lock(&S.mu);
	if (lg_track_deliver(&S.tr, s->n, idx)) {
		S.r.deliveries++;
		S.t_last = now;
		if (S.r.del_us != NULL)
			S.r.del_us[S.r.ndel++] = (uint32_t)((now -
			    S.tr.sent_ns[idx]) / 1000);
		pthread_cond_signal(&S.cv);
	}
	pthread_mutex_unlock(&S.mu);
}

static natsConnection *
nconnect(const struct lg_opts *o, const char *id)
{
	natsOptions	*opts;
	natsConnection	*nc;
	char		 url[512], ca[4096], crt[4096], key[4096];

	snprintf(url, sizeof(url), "tls://%s", o->endpoint);
	snprintf(ca, sizeof(ca), "%s/ca.crt", o->tls);
	snprintf(crt, sizeof(crt), "%s/%s.crt", o->tls, id);
	snprintf(key, sizeof(key), "%s/%s.key", o->tls, id);
	check(natsOptions_Create(&opts), "options");
	check(natsOptions_SetURL(opts, url), "url");
	check(natsOptions_SetName(opts, id), "name");
	check(natsOptions_SetSecure(opts, true), "tls");
	check(natsOptions_LoadCATrustedCertificates(opts, ca), ca);
	check(natsOptions_LoadCertificatesChain(opts, crt, key), crt);
	check(natsOptions_SetExpectedHostname(opts, "localhost"), "hostname");
	check(natsOptions_SetMaxPendingMsgs(opts, 1000000), "pending");
	check(natsConnection_Connect(&nc, opts), url);
	natsOptions_Destroy(opts);
	return nc;
}

/* Wait on the condition variable (S.mu held) until the deadline. */
static void
wait_until(int64_t deadline_ns)
{
	struct timespec	ts;
	int64_t		real;

	clock_gettime(CLOCK_REALTIME, &ts);
	real = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec +
	    (deadline_ns - lg_now_ns());
	ts.tv_sec = real / 1000000000LL;
	ts.tv_nsec = real % 1000000000LL;
	(void)pthread_cond_timedwait(&S.cv, &S.mu, &ts);
}

int
lg_nats(const struct lg_opts *o, struct lg_payload *pl)
{
	static const char *const ids[NCONN] = { "carat.hmp-leeds",
	    "cjit.leeds", "probation.leeds", "housing.leeds-hostels" };
	static const char *const durable[LG_SUBS] = { "cjit", "probation",
	    "housing" };
	static struct nsub	 ns[LG_SUBS];
	natsConnection		*nc[NCONN];
	natsSubscription	*sub[LG_SUBS];
	jsCtx			*js[NCONN];
	jsOptions		 jo;
	jsStreamConfig		 sc;
	jsConsumerConfig	 cc;
	jsSubOptions		 so;
	jsPubOptions		 po;
	jsErrCode		 jerr = 0;
	const char		*subjects[1] = { "rp.>" };
	char			 dlv[64], mid[37];
	uint64_t		 next = 0, want;
	int64_t			 t0, now, deadline;
	double			 cpu0, self0;
	int			 i;

	if (o->tls == NULL)
		lg_fail("nats: -t TLS directory needed");
	memset(&S.r, 0, sizeof(S.r));
	S.o = o;
	S.pl = pl;
	S.outstanding = 0;
	S.t_last = 0;
	if (lg_track_init(&S.tr, o->msgs) == -1)
		lg_fail("out of memory");
	if (o->rate > 0)
		lg_result_latency(&S.r, o->msgs);

	for (i = 0; i < NCONN; i++) {
		nc[i] = nconnect(o, ids[i]);
		jsOptions_Init(&jo);
		if (i == 0) {
			jo.PublishAsync.MaxPending = o->window;
			jo.PublishAsync.AckHandler = on_puback;
			jo.PublishAsync.StallWait = 60000;
		}
		check(natsConnection_JetStream(&js[i], nc[i], &jo), "jetstream");
	}
	jsStreamConfig_Init(&sc);
	sc.Name = STREAM;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Retention = js_InterestPolicy;
	check(js_AddStream(NULL, js[0], &sc, NULL, &jerr), "add stream");
	for (i = 0; i < LG_SUBS; i++) {
		jsConsumerConfig_Init(&cc);
		snprintf(dlv, sizeof(dlv), "dlv.%s", durable[i]);
		cc.Durable = durable[i];
		cc.DeliverSubject = dlv;
		cc.AckPolicy = js_AckExplicit;
		cc.DeliverPolicy = js_DeliverAll;
		cc.MaxAckPending = 256;		/* ccbroker's window */
		cc.AckWait = 30 * 1000000000LL;
		check(js_AddConsumer(NULL, js[0], STREAM, &cc, NULL, &jerr),
		    "add consumer");
		ns[i].n = i;
		jsSubOptions_Init(&so);
		so.Stream = STREAM;
		so.Consumer = durable[i];
		so.ManualAck = true;
		check(js_Subscribe(&sub[i], js[i + 1], SUBJECT, on_msg, &ns[i],
		    NULL, &so, &jerr), "subscribe");
	}

	want = (uint64_t)o->msgs * LG_SUBS;
	jsPubOptions_Init(&po);
	po.MsgId = mid;
	cpu0 = lg_proc_cpu(o->pid);
	self0 = lg_self_cpu();
	t0 = lg_now_ns();
	pthread_mutex_lock(&S.mu);
	while (S.r.deliveries < want) {
		now = lg_now_ns();
		if (now - t0 > (int64_t)LG_TIMEOUT_S * 1000000000LL)
			lg_fail("%s: timed out: %" PRIu64 " published, %" PRIu64
			    " acked, %" PRIu64 " delivered", o->scenario,
			    S.r.published, S.r.accepted, S.r.deliveries);
		if (next < o->msgs && S.outstanding < o->window &&
		    next - S.tr.full < o->ahead && next < lg_due(o, t0, now)) {
			lg_payload_mid(pl, next);
			lg_mid_text(next, mid);
			S.tr.sent_ns[next] = lg_now_ns();
			S.outstanding++;
			S.r.published++;
			next++;
			pthread_mutex_unlock(&S.mu);
			check(js_PublishAsync(js[0], SUBJECT, pl->frame,
			    (int)pl->len, &po), "publish");
			pthread_mutex_lock(&S.mu);
			continue;
		}
		deadline = now + 100000000LL;
		if (o->rate > 0 && next < o->msgs &&
		    S.outstanding < o->window && next - S.tr.full < o->ahead)
			deadline = t0 + (int64_t)((double)next * 1e9 / o->rate);
		wait_until(deadline);
	}
	pthread_mutex_unlock(&S.mu);
	usleep(200000);
	S.r.broker_cpu = lg_proc_cpu(o->pid) - cpu0;
	S.r.harness_cpu = lg_self_cpu() - self0;
	S.r.secs = (S.t_last - t0) / 1e9;
	lg_write_result(o, &S.r);
	for (i = 0; i < LG_SUBS; i++) {
		natsSubscription_Unsubscribe(sub[i]);
		natsSubscription_Destroy(sub[i]);
	}
	for (i = 0; i < NCONN; i++) {
		jsCtx_Destroy(js[i]);
		natsConnection_Destroy(nc[i]);
	}
	nats_Close();
	lg_track_free(&S.tr);
	free(S.r.acc_us);
	free(S.r.del_us);
	return 0;
}
