/*
 * lg_wire.c - the load generator speaking ccbroker's wire protocol
 * (DESIGN §7) over CurveZMQ: to ccbroker itself and to bench/nullbroker.
 *
 * The prison (carat.hmp-leeds) records one consent naming the three
 * subscribers, then publishes; cjit.leeds, probation.leeds and
 * housing.leeds-hostels subscribe to release-plan in E08000035 and ack
 * every delivery at once; the prison acks every receipt.  One thread polls
 * the four DEALER sockets.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "cc_proto.h"
#include "loadgen.h"
#include "pki.h"

#define NCONN		(1 + LG_SUBS)
#define BACKLOG_AGENCY	"la.leeds"
#define RECV_BURST	512
#define RSS_EVERY_NS	1000000000LL
#define MAX_SAMPLES	4096

const char *const lg_agency_ids[NCONN] = {
	"carat.hmp-leeds", "cjit.leeds", "probation.leeds",
	"housing.leeds-hostels"
};

/* The fields of a broker frame the harness looks at. */
struct wmsg {
	const char	*op, *mid, *code, *detail, *field, *re;
	uint32_t	 oplen, midlen, codelen, detaillen, fieldlen, relen;
	uint64_t	 dseq;
	bool		 has_dseq;
};

struct rss_sample {
	double	t;
	char	phase;		/* 'f' filling, 'd' draining */
	long	anon, file;
};

static int	 wparse(const uint8_t *, size_t, struct wmsg *);
static bool	 op_is(const struct wmsg *, const char *);
static int64_t	 busy_mid(const struct wmsg *);
static void	 wsend(void *, const void *, size_t);
static void	 send_hello(void *);
static void	 send_subscribe(void *);
static void	 send_ack(void *, uint64_t);
static void	 wait_op(void *, const char *, const char *);
static void	 wfail(const char *, const struct wmsg *);
static void	 setup(void *[NCONN], const struct lg_opts *,
		    const struct lg_payload *);
static int	 run_load(const struct lg_opts *, struct lg_payload *,
		    void *[NCONN]);
static int	 run_backlog(const struct lg_opts *, struct lg_payload *,
		    void *);

void *
lg_curve_open(void *ctx, const struct lg_opts *o, const char *id)
{
	struct pki_cert	 bc;
	char		 path[4096], err[512];
	uint8_t		 sec[32], pub[32];
	int		 zero = 0, hwm = 100000, rc;
	void		*s;

	snprintf(path, sizeof(path), "%s/broker.crt", o->pki);
	if (pki_cert_read(path, &bc, err, sizeof(err)) == -1)
		lg_fail("%s", err);
	snprintf(path, sizeof(path), "%s/keys/%s.key", o->pki, id);
	if (pki_key_read(path, sec, pub, err, sizeof(err)) == -1)
		lg_fail("%s", err);
	if ((s = zmq_socket(ctx, ZMQ_DEALER)) == NULL)
		lg_fail("zmq_socket: %s", zmq_strerror(errno));
	rc = zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, bc.key, 32);
	rc |= zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 32);
	rc |= zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 32);
	rc |= zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	rc |= zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	rc |= zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (rc != 0 || zmq_connect(s, o->endpoint) == -1)
		lg_fail("%s: %s", o->endpoint, zmq_strerror(errno));
	return s;
}

static int
wparse(const uint8_t *p, size_t len, struct wmsg *m)
{
	const uint8_t	*end = p + len;
	const char	*k;
	uint32_t	 n, kl, i;

	memset(m, 0, sizeof(*m));
	if (mp_map(&p, end, &n) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (mp_str(&p, end, &k, &kl) == -1)
			return -1;
		if (kl == 2 && memcmp(k, "op", 2) == 0) {
			if (mp_str(&p, end, &m->op, &m->oplen) == -1)
				return -1;
		} else if (kl == 3 && memcmp(k, "mid", 3) == 0) {
			if (mp_str(&p, end, &m->mid, &m->midlen) == -1)
				return -1;
		} else if (kl == 4 && memcmp(k, "dseq", 4) == 0) {
			if (mp_uint(&p, end, &m->dseq) == -1)
				return -1;
			m->has_dseq = true;
		} else if (kl == 4 && memcmp(k, "code", 4) == 0) {
			if (mp_str(&p, end, &m->code, &m->codelen) == -1)
				return -1;
		} else if (kl == 6 && memcmp(k, "detail", 6) == 0) {
			if (mp_str(&p, end, &m->detail, &m->detaillen) == -1)
				return -1;
		} else if (kl == 2 && memcmp(k, "re", 2) == 0) {
			if (mp_str(&p, end, &m->re, &m->relen) == -1)
				return -1;
		} else if (kl == 5 && memcmp(k, "field", 5) == 0) {
			if (mp_str(&p, end, &m->field, &m->fieldlen) == -1)
				return -1;
		} else if (mp_skip(&p, end) == -1)
			return -1;
	}
	return m->op != NULL ? 0 : -1;
}

static bool
op_is(const struct wmsg *m, const char *op)
{
	return m->oplen == strlen(op) && memcmp(m->op, op, m->oplen) == 0;
}

/*
 * A publish answered `busy` (the broker handles only so many requests of
 * one connection per turn): the message number to send again, or -1.
 */
static int64_t
busy_mid(const struct wmsg *m)
{
	if (!op_is(m, "error") || m->codelen != 4 ||
	    memcmp(m->code, "busy", 4) != 0 || m->re == NULL)
		return -1;
	return lg_mid_index(m->re, m->relen);
}

static void
wfail(const char *who, const struct wmsg *m)
{
	lg_fail("%s: the broker answered %.*s: %.*s %.*s %.*s", who,
	    (int)m->oplen, m->op, (int)m->codelen, m->code ? m->code : "",
	    (int)m->fieldlen, m->field ? m->field : "",
	    (int)m->detaillen, m->detail ? m->detail : "");
}

static void
wsend(void *s, const void *p, size_t n)
{
	while (zmq_send(s, p, n, 0) == -1)
		if (errno != EINTR)
			lg_fail("zmq_send: %s", zmq_strerror(errno));
}

/* {v: 1, op: "hello", agent: "ccbench/1", receive: true} */
static void
send_hello(void *s)
{
	static const uint8_t f[] = "\x84\xa1v\x01\xa2op\xa5hello\xa5" "agent"
	    "\xa9" "ccbench/1\xa7receive\xc3";

	wsend(s, f, sizeof(f) - 1);
}

/* {v: 1, op: "subscribe", types: ["release-plan"], areas: [AREA]} */
static void
send_subscribe(void *s)
{
	static const uint8_t f[] = "\x84\xa1v\x01\xa2op\xa9subscribe"
	    "\xa5types\x91\xacrelease-plan\xa5" "areas\x91\xa9" LG_AREA;

	wsend(s, f, sizeof(f) - 1);
}

/* {v: 1, op: "ack", dseq: N} */
static void
send_ack(void *s, uint64_t dseq)
{
	uint8_t	f[32] = "\x83\xa1v\x01\xa2op\xa3" "ack\xa4" "dseq\xcf";
	size_t	n = 17;
	int	i;

	for (i = 7; i >= 0; i--, dseq >>= 8)
		f[n + i] = dseq & 0xff;
	wsend(s, f, n + 8);
}

/* Wait up to 10 s for an answer `op` on s; anything but that is fatal. */
static void
wait_op(void *s, const char *who, const char *op)
{
	zmq_pollitem_t	 it = { s, 0, ZMQ_POLLIN, 0 };
	int64_t		 end = lg_now_ns() + 10000000000LL;
	zmq_msg_t	 f;
	struct wmsg	 m;

	while (lg_now_ns() < end) {
		if (zmq_poll(&it, 1, 100) <= 0)
			continue;
		zmq_msg_init(&f);
		if (zmq_msg_recv(&f, s, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&f);
			continue;
		}
		if (wparse(zmq_msg_data(&f), zmq_msg_size(&f), &m) == -1)
			lg_fail("%s: unreadable frame", who);
		if (!op_is(&m, op))
			wfail(who, &m);
		zmq_msg_close(&f);
		return;
	}
	lg_fail("%s: no %s within 10 s (is the broker up?)", who, op);
}

/* Every agency says hello; subscribers subscribe; the prison records the
 * consent that names them. */
static void
setup(void *c[NCONN], const struct lg_opts *o, const struct lg_payload *pl)
{
	int	i;

	(void)o;
	for (i = 0; i < NCONN; i++)
		send_hello(c[i]);
	for (i = 0; i < NCONN; i++)
		wait_op(c[i], lg_agency_ids[i], "welcome");
	for (i = 1; i < NCONN; i++) {
		send_subscribe(c[i]);
		wait_op(c[i], lg_agency_ids[i], "subscribed");
	}
	wsend(c[0], pl->grant, pl->grantlen);
	wait_op(c[0], lg_agency_ids[0], "consent-recorded");
}

/* Throughput (rate 0) or fixed-rate latency run. */
static int
run_load(const struct lg_opts *o, struct lg_payload *pl, void *c[NCONN])
{
	struct lg_track	 tr;
	struct lg_result r;
	zmq_pollitem_t	 it[NCONN];
	uint64_t	 next = 0, outstanding = 0, want, *retry;
	int64_t		 t0 = 0, now, t_last = 0, t_rcpt = 0, wait_ns;
	double		 cpu0 = 0, self0 = 0;
	size_t		 nretry = 0;
	zmq_msg_t	 f;
	struct wmsg	 m;
	int		 i, k;

	memset(&r, 0, sizeof(r));
	if (lg_track_init(&tr, o->msgs) == -1 ||
	    (retry = calloc(o->window, sizeof(*retry))) == NULL)
		lg_fail("out of memory");
	if (o->rate > 0)
		lg_result_latency(&r, o->msgs);
	want = (uint64_t)o->msgs * LG_SUBS;
	for (i = 0; i < NCONN; i++) {
		it[i].socket = c[i];
		it[i].fd = 0;
		it[i].events = ZMQ_POLLIN;
	}
	zmq_msg_init(&f);
	for (;;) {
		now = lg_now_ns();
		if (next == 0) {
			cpu0 = lg_proc_cpu(o->pid);
			self0 = lg_self_cpu();
			t0 = now;
		}
		while (nretry > 0) {
			lg_payload_mid(pl, retry[--nretry]);
			wsend(c[0], pl->frame, pl->len);
		}
		while (next < o->msgs && outstanding < o->window &&
		    next - tr.full < o->ahead && next < lg_due(o, t0, now)) {
			lg_payload_mid(pl, next);
			tr.sent_ns[next] = lg_now_ns();
			wsend(c[0], pl->frame, pl->len);
			next++;
			outstanding++;
			r.published++;
		}
		if (r.deliveries == want && r.receipts >= want)
			break;
		if (now - t0 > (int64_t)LG_TIMEOUT_S * 1000000000LL)
			lg_fail("%s: timed out: %" PRIu64 " published, %" PRIu64
			    " accepted, %" PRIu64 " delivered, %" PRIu64
			    " receipts", o->scenario, r.published, r.accepted,
			    r.deliveries, r.receipts);
		wait_ns = 100000000LL;
		if (o->rate > 0 && next < o->msgs) {
			wait_ns = t0 + (int64_t)((double)next * 1e9 / o->rate) -
			    now;
			if (wait_ns < 0)
				wait_ns = 0;
		}
		if (zmq_poll(it, NCONN, (long)(wait_ns / 1000000)) == -1) {
			if (errno == EINTR)
				continue;
			lg_fail("zmq_poll: %s", zmq_strerror(errno));
		}
		for (i = 0; i < NCONN; i++) {
			if (!(it[i].revents & ZMQ_POLLIN))
				continue;
			for (k = 0; k < RECV_BURST; k++) {
				int64_t idx;

				if (zmq_msg_recv(&f, c[i], ZMQ_DONTWAIT) == -1)
					break;
				now = lg_now_ns();
				if (wparse(zmq_msg_data(&f), zmq_msg_size(&f),
				    &m) == -1)
					lg_fail("%s: unreadable frame",
					    lg_agency_ids[i]);
				if (op_is(&m, "deliver") && i > 0) {
					send_ack(c[i], m.dseq);
					idx = lg_mid_index(m.mid, m.midlen);
					if (!lg_track_deliver(&tr, i - 1, idx))
						continue;
					r.deliveries++;
					t_last = now;
					if (r.del_us != NULL)
						r.del_us[r.ndel++] = (uint32_t)
						    ((now - tr.sent_ns[idx]) /
						    1000);
				} else if (op_is(&m, "receipt") && i == 0) {
					send_ack(c[i], m.dseq);
					r.receipts++;
					t_rcpt = now;
				} else if (op_is(&m, "accepted") && i == 0) {
					idx = lg_mid_index(m.mid, m.midlen);
					outstanding--;
					r.accepted++;
					if (r.acc_us != NULL && idx >= 0 &&
					    (uint64_t)idx < o->msgs)
						r.acc_us[r.nacc++] = (uint32_t)
						    ((now - tr.sent_ns[idx]) /
						    1000);
				} else if (i == 0 && (idx = busy_mid(&m)) >= 0 &&
				    (uint64_t)idx < o->msgs &&
				    nretry < o->window) {
					retry[nretry++] = (uint64_t)idx;
					r.busy++;
				} else
					wfail(lg_agency_ids[i], &m);
			}
		}
	}
	zmq_msg_close(&f);
	/* Let the broker finish the last acks before reading its clock. */
	usleep(200000);
	r.broker_cpu = lg_proc_cpu(o->pid) - cpu0;
	r.harness_cpu = lg_self_cpu() - self0;
	r.secs = (t_last - t0) / 1e9;
	r.receipt_secs = (t_rcpt - t0) / 1e9;
	lg_write_result(o, &r);
	lg_track_free(&tr);
	free(retry);
	free(r.acc_us);
	free(r.del_us);
	return 0;
}

/*
 * Offline backlog: la.leeds subscribes and goes away; the prison publishes
 * `backlog` records queued for it alone; then la.leeds comes back and
 * drains them.  The broker's RssAnon and RssFile are sampled throughout.
 */
static int
run_backlog(const struct lg_opts *o, struct lg_payload *pl, void *ctx)
{
	static struct rss_sample smp[MAX_SAMPLES];
	void		*pr, *sub;
	zmq_pollitem_t	 it[2];
	uint64_t	 next = 0, outstanding = 0, accepted = 0, got = 0,
			 receipts = 0, n = o->backlog, *retry, busy = 0;
	size_t		 nretry = 0;
	uint8_t		*seen;
	int64_t		 t0, t1 = 0, t2 = 0, t3 = 0, t4 = 0, now, next_rss;
	long		 anon0, file0, fill_max = 0, drain_max = 0, file_max = 0;
	size_t		 nsmp = 0, j;
	zmq_msg_t	 f;
	struct wmsg	 m;
	FILE		*out = stdout;
	int		 i, k;

	if ((seen = calloc(n / 8 + 1, 1)) == NULL ||
	    (retry = calloc(o->window, sizeof(*retry))) == NULL)
		lg_fail("out of memory");
	pr = lg_curve_open(ctx, o, lg_agency_ids[0]);
	sub = lg_curve_open(ctx, o, BACKLOG_AGENCY);
	send_hello(pr);
	send_hello(sub);
	wait_op(pr, lg_agency_ids[0], "welcome");
	wait_op(sub, BACKLOG_AGENCY, "welcome");
	send_subscribe(sub);
	wait_op(sub, BACKLOG_AGENCY, "subscribed");
	wsend(pr, pl->grant, pl->grantlen);
	wait_op(pr, lg_agency_ids[0], "consent-recorded");
	zmq_close(sub);
	usleep(500000);
	if (lg_proc_rss(o->pid, &anon0, &file0) == -1)
		lg_fail("cannot read /proc/%d/status", (int)o->pid);

	zmq_msg_init(&f);
	t0 = next_rss = lg_now_ns();
	sub = NULL;
	for (;;) {
		now = lg_now_ns();
		if (now >= next_rss && nsmp < MAX_SAMPLES) {
			struct rss_sample *s = &smp[nsmp++];

			s->t = (now - t0) / 1e9;
			s->phase = sub == NULL ? 'f' : 'd';
			(void)lg_proc_rss(o->pid, &s->anon, &s->file);
			if (s->phase == 'f' && s->anon > fill_max)
				fill_max = s->anon;
			if (s->phase == 'd' && s->anon > drain_max)
				drain_max = s->anon;
			if (s->file > file_max)
				file_max = s->file;
			next_rss = now + RSS_EVERY_NS;
		}
		while (nretry > 0) {
			lg_payload_mid(pl, retry[--nretry]);
			wsend(pr, pl->frame, pl->len);
		}
		while (next < n && outstanding < o->window) {
			lg_payload_mid(pl, next);
			wsend(pr, pl->frame, pl->len);
			next++;
			outstanding++;
		}
		if (sub == NULL && accepted == n) {
			long a, fl;

			/* Filled: the last sample of the filling phase. */
			t1 = lg_now_ns();
			if (lg_proc_rss(o->pid, &a, &fl) == 0) {
				if (a > fill_max)
					fill_max = a;
				if (fl > file_max)
					file_max = fl;
			}
			fprintf(stderr, "backlog: %" PRIu64 " queued in %.1f s "
			    "(%.0f/s), RssAnon %ld KiB\n", n, (t1 - t0) / 1e9,
			    n / ((t1 - t0) / 1e9), a);
			sub = lg_curve_open(ctx, o, BACKLOG_AGENCY);
			t2 = lg_now_ns();
			send_hello(sub);
		}
		if (got == n && receipts == n)
			break;
		if (now - t0 > (int64_t)LG_TIMEOUT_S * 4 * 1000000000LL)
			lg_fail("backlog: timed out: %" PRIu64 " accepted, %"
			    PRIu64 " delivered, %" PRIu64 " receipts",
			    accepted, got, receipts);
		it[0].socket = pr;
		it[0].events = ZMQ_POLLIN;
		it[1].socket = sub;
		it[1].events = ZMQ_POLLIN;
		if (zmq_poll(it, sub != NULL ? 2 : 1, 100) == -1) {
			if (errno == EINTR)
				continue;
			lg_fail("zmq_poll: %s", zmq_strerror(errno));
		}
		for (i = 0; i < (sub != NULL ? 2 : 1); i++) {
			void *s = i == 0 ? pr : sub;

			if (!(it[i].revents & ZMQ_POLLIN))
				continue;
			for (k = 0; k < RECV_BURST; k++) {
				int64_t idx;

				if (zmq_msg_recv(&f, s, ZMQ_DONTWAIT) == -1)
					break;
				if (wparse(zmq_msg_data(&f), zmq_msg_size(&f),
				    &m) == -1)
					lg_fail("backlog: unreadable frame");
				if (i == 1 && op_is(&m, "deliver")) {
					send_ack(s, m.dseq);
					idx = lg_mid_index(m.mid, m.midlen);
					if (idx < 0 || (uint64_t)idx >= n ||
					    (seen[idx / 8] & (1u << (idx & 7))))
						continue;
					seen[idx / 8] |= 1u << (idx & 7);
					got++;
					t3 = lg_now_ns();
				} else if (i == 1 && op_is(&m, "welcome")) {
					send_subscribe(s);
				} else if (i == 1 && op_is(&m, "subscribed")) {
					continue;
				} else if (i == 0 && op_is(&m, "receipt")) {
					send_ack(s, m.dseq);
					receipts++;
					t4 = lg_now_ns();
				} else if (i == 0 && op_is(&m, "accepted")) {
					outstanding--;
					accepted++;
				} else if (i == 0 && (idx = busy_mid(&m)) >= 0 &&
				    (uint64_t)idx < n && nretry < o->window) {
					retry[nretry++] = (uint64_t)idx;
					busy++;
				} else
					wfail(i == 0 ? lg_agency_ids[0] :
					    BACKLOG_AGENCY, &m);
			}
		}
	}
	zmq_msg_close(&f);
	{
		long a, fl;

		if (lg_proc_rss(o->pid, &a, &fl) == 0 && a > drain_max)
			drain_max = a;
	}
	fprintf(stderr, "backlog: drained %" PRIu64 " in %.1f s (%.0f/s), "
	    "RssAnon max %ld KiB filling, %ld KiB draining\n", n,
	    (t3 - t2) / 1e9, n / ((t3 - t2) / 1e9), fill_max, drain_max);
	if (o->out != NULL && (out = fopen(o->out, "a")) == NULL)
		lg_fail("%s: %s", o->out, strerror(errno));
	fprintf(out, "{\"scenario\": \"%s\", \"kind\": \"backlog\", "
	    "\"messages\": %" PRIu64 ", \"fill_seconds\": %.3f, "
	    "\"fill_rate\": %.0f, \"drain_seconds\": %.3f, "
	    "\"drain_rate\": %.0f, \"receipt_seconds\": %.3f, "
	    "\"busy\": %" PRIu64 ", "
	    "\"rss_anon_start_kib\": %ld, \"rss_anon_fill_max_kib\": %ld, "
	    "\"rss_anon_drain_max_kib\": %ld, \"rss_file_max_kib\": %ld, "
	    "\"samples\": [", o->scenario, n, (t1 - t0) / 1e9,
	    n / ((t1 - t0) / 1e9), (t3 - t2) / 1e9, n / ((t3 - t2) / 1e9),
	    (t4 - t2) / 1e9, busy, anon0, fill_max, drain_max, file_max);
	for (j = 0; j < nsmp; j++)
		fprintf(out, "%s[%.1f, \"%c\", %ld, %ld]", j ? ", " : "",
		    smp[j].t, smp[j].phase, smp[j].anon, smp[j].file);
	fprintf(out, "]}\n");
	if (out != stdout)
		fclose(out);
	zmq_close(pr);
	zmq_close(sub);
	free(seen);
	free(retry);
	return 0;
}

int
lg_wire(const struct lg_opts *o, struct lg_payload *pl)
{
	void	*ctx, *c[NCONN];
	int	 i, rc;

	if (o->pki == NULL)
		lg_fail("wire: -k PKI directory needed");
	if ((ctx = zmq_ctx_new()) == NULL)
		lg_fail("zmq_ctx_new: %s", zmq_strerror(errno));
	if (o->backlog > 0) {
		rc = run_backlog(o, pl, ctx);
		zmq_ctx_term(ctx);
		return rc;
	}
	for (i = 0; i < NCONN; i++)
		c[i] = lg_curve_open(ctx, o, lg_agency_ids[i]);
	setup(c, o, pl);
	rc = run_load(o, pl, c);
	for (i = 0; i < NCONN; i++)
		zmq_close(c[i]);
	zmq_ctx_term(ctx);
	return rc;
}
