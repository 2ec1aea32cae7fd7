/*
 * nullbroker.c - the ceiling of the benchmark harness: a broker that speaks
 * ccbroker's wire protocol (DESIGN §7) over CurveZMQ and does nothing else.
 *
 *   nullbroker -e ENDPOINT -k BROKER_KEY [-w WINDOW]
 *
 * ROUTER, CURVE server with the broker's key, no ZAP handler (any client
 * key is let in).  `hello`, `subscribe` and `consent-grant` are answered at
 * once; a `publish` is answered `accepted` at once and its `deliver` is
 * queued for every connection that subscribed (at most WINDOW unacked per
 * connection, as ccbroker's window); an `ack` of a delivery queues a
 * `delivered` receipt for the publisher.  No consent, no store, no audit,
 * no fsync; everything lives in memory.  Stops on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>
#include <zmq.h>

#include "cc_proto.h"
#include "pki.h"

#define MAXCONN		16
#define RID_MAX		256
#define WINDOW		256

/* A deliver frame built once per publish, its dseq patched per recipient. */
struct nmsg {
	char	 *frame;
	size_t	  len;
	size_t	  dseq_off;	/* 8 bytes after a 0xcf marker */
	char	  mid[37];
	int	  sender;	/* connection that published it */
	int	  refs;
};

/* An item queued for a connection: a delivery or a receipt. */
struct item {
	struct nmsg	*m;		/* delivery, or the message receipted */
	uint64_t	 dseq;
	int		 from;		/* receipt: the connection that acked */
};

struct conn {
	uint8_t		 rid[RID_MAX];
	size_t		 ridlen;
	bool		 sub;
	char		 name[32];
	struct item	*q;		/* FIFO of items not yet sent */
	size_t		 qhead, qtail, qcap;
	struct item	 fly[WINDOW];	/* sent, not acked */
	unsigned	 nfly;
};

static volatile sig_atomic_t	stop;
static struct conn		conns[MAXCONN];
static int			nconn;
static uint64_t			dseq_next = 1;
static unsigned			window = WINDOW;

static void	on_signal(int);
static int	conn_of(const uint8_t *, size_t);
static void	sendto_conn(void *, struct conn *, const void *, size_t);
static void	enqueue(struct conn *, struct item);
static void	pump(void *, struct conn *);
static void	pack_cstr(msgpack_packer *, const char *);
static void	answer(void *, struct conn *, const char *op, const char *k,
		    const char *v);
static void	on_publish(void *, int, const msgpack_object *);
static void	on_ack(void *, int, uint64_t);
static void	handle(void *, int, const void *, size_t);
static const msgpack_object *get(const msgpack_object *, const char *);
static void	nmsg_unref(struct nmsg *);

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
conn_of(const uint8_t *rid, size_t len)
{
	int	i;

	for (i = 0; i < nconn; i++)
		if (conns[i].ridlen == len && memcmp(conns[i].rid, rid, len) == 0)
			return i;
	if (nconn == MAXCONN || len > RID_MAX)
		return -1;
	memset(&conns[nconn], 0, sizeof(conns[nconn]));
	memcpy(conns[nconn].rid, rid, len);
	conns[nconn].ridlen = len;
	snprintf(conns[nconn].name, sizeof(conns[nconn].name), "agency-%d",
	    nconn);
	return nconn++;
}

static void
sendto_conn(void *s, struct conn *c, const void *p, size_t n)
{
	if (zmq_send(s, c->rid, c->ridlen, ZMQ_SNDMORE) == -1 ||
	    zmq_send(s, p, n, 0) == -1)
		fprintf(stderr, "nullbroker: send: %s\n", zmq_strerror(errno));
}

static void
enqueue(struct conn *c, struct item it)
{
	if (c->qtail - c->qhead == c->qcap) {
		size_t		 cap = c->qcap ? c->qcap * 2 : 1024, i;
		struct item	*nq = malloc(cap * sizeof(*nq));

		if (nq == NULL) {
			fprintf(stderr, "nullbroker: out of memory\n");
			exit(1);
		}
		for (i = c->qhead; i < c->qtail; i++)
			nq[i - c->qhead] = c->q[i % c->qcap];
		free(c->q);
		c->q = nq;
		c->qtail -= c->qhead;
		c->qhead = 0;
		c->qcap = cap;
	}
	c->q[c->qtail++ % c->qcap] = it;
}

static void
pack_cstr(msgpack_packer *pk, const char *s)
{
	size_t	n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* Send queued items until the window is full. */
static void
pump(void *s, struct conn *c)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;

	msgpack_sbuffer_init(&sb);
	while (c->nfly < window && c->qhead != c->qtail) {
		struct item it = c->q[c->qhead++ % c->qcap];

		it.dseq = dseq_next++;
		if (it.from < 0) {
			uint8_t *d = (uint8_t *)it.m->frame + it.m->dseq_off;
			int	 i;

			for (i = 0; i < 8; i++)
				d[i] = (uint8_t)(it.dseq >> (56 - 8 * i));
			sendto_conn(s, c, it.m->frame, it.m->len);
		} else {
			char at[32];

			sb.size = 0;
			msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
			cc_time_format(cc_time_now_ms(), at);
			msgpack_pack_map(&pk, 7);
			pack_cstr(&pk, "v");
			msgpack_pack_uint8(&pk, 1);
			pack_cstr(&pk, "op");
			pack_cstr(&pk, "receipt");
			pack_cstr(&pk, "dseq");
			msgpack_pack_uint64(&pk, it.dseq);
			pack_cstr(&pk, "mid");
			pack_cstr(&pk, it.m->mid);
			pack_cstr(&pk, "agency");
			pack_cstr(&pk, conns[it.from].name);
			pack_cstr(&pk, "state");
			pack_cstr(&pk, "delivered");
			pack_cstr(&pk, "at");
			pack_cstr(&pk, at);
			sendto_conn(s, c, sb.data, sb.size);
		}
		c->fly[c->nfly++] = it;
	}
	msgpack_sbuffer_destroy(&sb);
}

/* {v: 1, op: OP, K: V} */
static void
answer(void *s, struct conn *c, const char *op, const char *k, const char *v)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, k != NULL ? 3 : 2);
	pack_cstr(&pk, "v");
	msgpack_pack_uint8(&pk, 1);
	pack_cstr(&pk, "op");
	pack_cstr(&pk, op);
	if (k != NULL) {
		pack_cstr(&pk, k);
		pack_cstr(&pk, v);
	}
	sendto_conn(s, c, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
}

static const msgpack_object *
get(const msgpack_object *map, const char *k)
{
	size_t		n = strlen(k);
	uint32_t	i;

	for (i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == n &&
		    memcmp(kv->key.via.str.ptr, k, n) == 0)
			return &kv->val;
	}
	return NULL;
}

static void
nmsg_unref(struct nmsg *m)
{
	if (--m->refs > 0)
		return;
	free(m->frame);
	free(m);
}

/* publish: accepted at once; one deliver frame for every subscriber. */
static void
on_publish(void *s, int from, const msgpack_object *o)
{
	static const char *const copy[] = { "type", "purpose", "subject",
	    "area", "created", "body" };
	const msgpack_object	*mid = get(o, "mid"), *v;
	struct nmsg		*m;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	size_t			 i;
	int			 c;

	if (mid == NULL || mid->type != MSGPACK_OBJECT_STR ||
	    mid->via.str.size != 36) {
		answer(s, &conns[from], "error", "code", "invalid-field");
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		exit(1);
	memcpy(m->mid, mid->via.str.ptr, 36);
	m->sender = from;
	answer(s, &conns[from], "accepted", "mid", m->mid);

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 13);
	pack_cstr(&pk, "v");
	msgpack_pack_uint8(&pk, 1);
	pack_cstr(&pk, "op");
	pack_cstr(&pk, "deliver");
	pack_cstr(&pk, "dseq");
	m->dseq_off = sb.size + 1;
	msgpack_pack_uint64(&pk, UINT64_MAX);	/* always 0xcf + 8 bytes */
	pack_cstr(&pk, "mid");
	pack_cstr(&pk, m->mid);
	pack_cstr(&pk, "from");
	pack_cstr(&pk, conns[from].name);
	for (i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
		pack_cstr(&pk, copy[i]);
		if ((v = get(o, copy[i])) != NULL)
			msgpack_pack_object(&pk, *v);
		else
			msgpack_pack_nil(&pk);
	}
	pack_cstr(&pk, "consent");
	msgpack_pack_map(&pk, 2);
	pack_cstr(&pk, "cid");
	pack_cstr(&pk, "00000000-0000-4000-8000-000000000000");
	pack_cstr(&pk, "version");
	msgpack_pack_uint8(&pk, 1);
	pack_cstr(&pk, "withheld_categories");
	msgpack_pack_array(&pk, 0);
	m->frame = sb.data;	/* the buffer is now the message's */
	m->len = sb.size;
	m->refs = 1;
	for (c = 0; c < nconn; c++) {
		if (!conns[c].sub || c == from)
			continue;
		m->refs++;
		enqueue(&conns[c], (struct item){ m, 0, -1 });
		pump(s, &conns[c]);
	}
	nmsg_unref(m);
}

/* ack: free the window slot; a delivery earns its sender a receipt. */
static void
on_ack(void *s, int from, uint64_t dseq)
{
	struct conn	*c = &conns[from];
	unsigned	 i;

	for (i = 0; i < c->nfly; i++)
		if (c->fly[i].dseq == dseq)
			break;
	if (i == c->nfly)
		return;
	if (c->fly[i].from < 0) {
		struct nmsg *m = c->fly[i].m;

		m->refs++;
		enqueue(&conns[m->sender], (struct item){ m, 0, from });
		pump(s, &conns[m->sender]);
	}
	nmsg_unref(c->fly[i].m);
	c->fly[i] = c->fly[--c->nfly];
	pump(s, c);
}

static void
handle(void *s, int from, const void *data, size_t len)
{
	msgpack_unpacked	 up;
	const msgpack_object	*op;
	size_t			 off = 0;
	char			 name[32];

	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, data, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP ||
	    (op = get(&up.data, "op")) == NULL ||
	    op->type != MSGPACK_OBJECT_STR || op->via.str.size >= sizeof(name)) {
		answer(s, &conns[from], "error", "code", "malformed");
		goto out;
	}
	memcpy(name, op->via.str.ptr, op->via.str.size);
	name[op->via.str.size] = '\0';
	if (strcmp(name, "publish") == 0)
		on_publish(s, from, &up.data);
	else if (strcmp(name, "ack") == 0) {
		const msgpack_object *d = get(&up.data, "dseq");

		if (d != NULL && d->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			on_ack(s, from, d->via.u64);
	} else if (strcmp(name, "hello") == 0)
		answer(s, &conns[from], "welcome", "agency", conns[from].name);
	else if (strcmp(name, "subscribe") == 0) {
		conns[from].sub = true;
		answer(s, &conns[from], "subscribed", NULL, NULL);
	} else if (strcmp(name, "consent-grant") == 0) {
		const msgpack_object *cid = get(&up.data, "cid");
		char text[37] = "";

		if (cid != NULL && cid->type == MSGPACK_OBJECT_STR &&
		    cid->via.str.size == 36)
			memcpy(text, cid->via.str.ptr, 36);
		answer(s, &conns[from], "consent-recorded", "cid", text);
	} else
		answer(s, &conns[from], "error", "code", "unknown-op");
out:
	msgpack_unpacked_destroy(&up);
}

int
main(int argc, char *argv[])
{
	const char	*endpoint = NULL, *keyfile = NULL;
	char		 err[512];
	uint8_t		 sec[32], pub[32];
	int		 ch, one = 1, zero = 0, hwm = 100000, rc;
	void		*ctx, *s;
	zmq_msg_t	 rid, body;
	struct sigaction sa;

	while ((ch = getopt(argc, argv, "e:k:w:")) != -1) {
		switch (ch) {
		case 'e': endpoint = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'w': window = (unsigned)atoi(optarg); break;
		default: goto usage;
		}
	}
	if (endpoint == NULL || keyfile == NULL || window == 0 ||
	    window > WINDOW) {
usage:
		fputs("usage: nullbroker -e ENDPOINT -k BROKER_KEY "
		    "[-w WINDOW]\n", stderr);
		return 2;
	}
	if (pki_key_read(keyfile, sec, pub, err, sizeof(err)) == -1) {
		fprintf(stderr, "nullbroker: %s\n", err);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	ctx = zmq_ctx_new();
	s = zmq_socket(ctx, ZMQ_ROUTER);
	rc = zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one));
	rc |= zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 32);
	rc |= zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	rc |= zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	rc |= zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (rc != 0 || zmq_bind(s, endpoint) == -1) {
		fprintf(stderr, "nullbroker: %s: %s\n", endpoint,
		    zmq_strerror(errno));
		return 1;
	}
	zmq_msg_init(&rid);
	zmq_msg_init(&body);
	while (!stop) {
		int from;

		if (zmq_msg_recv(&rid, s, 0) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!zmq_msg_more(&rid) || zmq_msg_recv(&body, s, 0) == -1)
			continue;
		from = conn_of(zmq_msg_data(&rid), zmq_msg_size(&rid));
		if (from >= 0)
			handle(s, from, zmq_msg_data(&body), zmq_msg_size(&body));
	}
	zmq_msg_close(&rid);
	zmq_msg_close(&body);
	zmq_close(s);
	zmq_ctx_term(ctx);
	return 0;
}
