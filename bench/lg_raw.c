/*
 * lg_raw.c - the load generator against bench/rawrelay: the same four
 * CurveZMQ connections, keys and 2 KiB payload as the wire mode, in bare
 * frames (a type byte and a message number, see rawrelay.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "loadgen.h"

#define NCONN		(1 + LG_SUBS)
#define RECV_BURST	512

static uint64_t	get64(const uint8_t *);
static void	put64(uint8_t *, uint64_t);
static void	rsend(void *, const void *, size_t);
static void	rwait(void *, const char *);

static uint64_t
get64(const uint8_t *p)
{
	uint64_t	v;

	memcpy(&v, p, 8);
	return v;
}

static void
put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void
rsend(void *s, const void *p, size_t n)
{
	while (zmq_send(s, p, n, 0) == -1)
		if (errno != EINTR)
			lg_fail("zmq_send: %s", zmq_strerror(errno));
}

static void
rwait(void *s, const char *who)
{
	zmq_pollitem_t	it = { s, 0, ZMQ_POLLIN, 0 };
	uint8_t		b[16];

	if (zmq_poll(&it, 1, 10000) <= 0 ||
	    zmq_recv(s, b, sizeof(b), ZMQ_DONTWAIT) < 1 || b[0] != 'W')
		lg_fail("%s: no answer from the relay within 10 s", who);
}

int
lg_raw(const struct lg_opts *o, struct lg_payload *pl)
{
	struct lg_track	 tr;
	struct lg_result r;
	zmq_pollitem_t	 it[NCONN];
	void		*ctx, *c[NCONN];
	uint8_t		*frame, ack[9];
	uint64_t	 next = 0, outstanding = 0, want;
	int64_t		 t0 = 0, now, t_last = 0, t_rcpt = 0, wait_ns;
	double		 cpu0 = 0, self0 = 0;
	zmq_msg_t	 f;
	int		 i, k;

	if (o->pki == NULL)
		lg_fail("raw: -k PKI directory needed");
	if ((ctx = zmq_ctx_new()) == NULL)
		lg_fail("zmq_ctx_new: %s", zmq_strerror(errno));
	for (i = 0; i < NCONN; i++) {
		c[i] = lg_curve_open(ctx, o, lg_agency_ids[i]);
		rsend(c[i], i == 0 ? "HP" : "HS", 2);
	}
	for (i = 0; i < NCONN; i++)
		rwait(c[i], lg_agency_ids[i]);

	memset(&r, 0, sizeof(r));
	if (lg_track_init(&tr, o->msgs) == -1 ||
	    (frame = malloc(9 + pl->len)) == NULL)
		lg_fail("out of memory");
	if (o->rate > 0)
		lg_result_latency(&r, o->msgs);
	frame[0] = 'P';
	memcpy(frame + 9, pl->frame, pl->len);
	ack[0] = 'K';
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
		while (next < o->msgs && outstanding < o->window &&
		    next - tr.full < o->ahead && next < lg_due(o, t0, now)) {
			put64(frame + 1, next);
			tr.sent_ns[next] = lg_now_ns();
			rsend(c[0], frame, 9 + pl->len);
			next++;
			outstanding++;
			r.published++;
		}
		if (r.deliveries == want && r.receipts >= want)
			break;
		if (now - t0 > (int64_t)LG_TIMEOUT_S * 1000000000LL)
			lg_fail("%s: timed out: %" PRIu64 " published, %" PRIu64
			    " delivered", o->scenario, r.published,
			    r.deliveries);
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
				const uint8_t	*p;
				uint64_t	 idx;

				if (zmq_msg_recv(&f, c[i], ZMQ_DONTWAIT) == -1)
					break;
				now = lg_now_ns();
				p = zmq_msg_data(&f);
				if (zmq_msg_size(&f) < 9)
					lg_fail("raw: short frame");
				idx = get64(p + 1);
				if (p[0] == 'D' && i > 0) {
					memcpy(ack + 1, p + 1, 8);
					rsend(c[i], ack, 9);
					if (!lg_track_deliver(&tr, i - 1,
					    (int64_t)idx))
						continue;
					r.deliveries++;
					t_last = now;
					if (r.del_us != NULL)
						r.del_us[r.ndel++] = (uint32_t)
						    ((now - tr.sent_ns[idx]) /
						    1000);
				} else if (p[0] == 'A' && i == 0) {
					outstanding--;
					r.accepted++;
					if (r.acc_us != NULL && idx < o->msgs)
						r.acc_us[r.nacc++] = (uint32_t)
						    ((now - tr.sent_ns[idx]) /
						    1000);
				} else if (p[0] == 'R' && i == 0) {
					r.receipts++;
					t_rcpt = now;
				} else
					lg_fail("raw: unexpected frame '%c'",
					    p[0]);
			}
		}
	}
	zmq_msg_close(&f);
	usleep(200000);
	r.broker_cpu = lg_proc_cpu(o->pid) - cpu0;
	r.harness_cpu = lg_self_cpu() - self0;
	r.secs = (t_last - t0) / 1e9;
	r.receipt_secs = (t_rcpt - t0) / 1e9;
	lg_write_result(o, &r);
	lg_track_free(&tr);
	free(frame);
	free(r.acc_us);
	free(r.del_us);
	for (i = 0; i < NCONN; i++)
		zmq_close(c[i]);
	zmq_ctx_term(ctx);
	return 0;
}
