/*
 * cc_agent.c - one session with the broker: identity, the CURVE socket,
 * reconnects, hello and subscribe, and the frames that come in.
 *
 * ZeroMQ reconnects by itself (with backoff); a monitor socket tells us
 * when a handshake succeeded, so that every new connection starts with
 * `hello` (DESIGN §7: the broker resends unacked deliveries only after
 * a hello) and, for a receiving session, the agency's `subscribe`.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "cc_internal.h"
#include "config.h"
#include "iniconf.h"
#include "log.h"
#include "pki.h"

#define RECONNECT_MS		100	/* first retry; doubles ... */
#define RECONNECT_MAX_MS	5000	/* ... up to this */
#define HEARTBEAT_MS		5000	/* ping an idle connection */
#define HEARTBEAT_TIMEOUT_MS	15000	/* and drop it when silent */
#define HELLO_RESEND_MS		10000	/* no welcome: say hello again */
#define MAX_FRAME_IN		(16 << 20)	/* from the broker */
#define DESTROY_LINGER_MS	500	/* for frames still queued */
#define MON_EVENTS	(ZMQ_EVENT_HANDSHAKE_SUCCEEDED | \
	ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | \
	ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

struct keys {
	char	server[41];	/* the broker's, from its certificate */
	char	public[41];
	char	secret[41];
};

static int	parse_type(void *, const char *, size_t, char *, size_t);
static int	parse_area(void *, const char *, size_t, char *, size_t);
static int	load_identity(const struct cc_agent_options *, struct keys *,
		    struct cc_agent_error *);
static int	open_socket(cc_agent *, const struct keys *,
		    struct cc_agent_error *);
static void	on_event(cc_agent *);
static void	on_frame(cc_agent *, const void *, size_t);
static void	on_welcome(cc_agent *, const struct cc_msg *);
static void	session_step(cc_agent *);
static int	send_packed(cc_agent *,
		    int (*)(const cc_agent *, msgpack_sbuffer *));
static void	drain(cc_agent *);
static void	session_ready(cc_agent *);
static void	join(char *, size_t, const char *);

/* Append an item to a comma-separated list (big enough by construction). */
static void
join(char *list, size_t size, const char *item)
{
	size_t	len = strlen(list);

	(void)snprintf(list + len, size - len, "%s%s", len > 0 ? "," : "",
	    item);
}

static int
parse_type(void *arg, const char *s, size_t len, char *why, size_t whylen)
{
	cc_agent	*a = arg;
	int		 t;

	if ((t = cc_rtype_parse(s, len)) < 0) {
		(void)snprintf(why, whylen, "'%.*s' is not a record type",
		    (int)len, s);
		return -1;
	}
	a->subscribe |= 1u << t;
	return 0;
}

static int
parse_area(void *arg, const char *s, size_t len, char *why, size_t whylen)
{
	cc_agent	*a = arg;

	return iniconf_area_add(a->areas, &a->nareas, CCX_AREAS_MAX, s, len,
	    why, whylen);
}

/*
 * Read our key and certificate and the broker's certificate.  The broker's
 * must chain to the partnership CA, be in date, not revoked and name an
 * OU of broker; its public key is the CURVE server key we pin.
 */
static int
load_identity(const struct cc_agent_options *o, struct keys *k,
    struct cc_agent_error *err)
{
	struct pki_ca	*ca = NULL;
	struct pki_cert	 bc, own;
	uint8_t		 sec[32], pub[32];
	char		 why[256];
	time_t		 now = time(NULL);
	int		 rc = CC_AGENT_ERR_CONFIG;

	if (o->broker_certificate == NULL || o->ca == NULL ||
	    o->certificate == NULL || o->key == NULL) {
		(void)ccx_fail_err(err, rc, NULL, "broker_certificate, ca, "
		    "certificate and key must all be given");
		return rc;
	}
	if ((ca = pki_ca_load(o->ca, o->crl != NULL && o->crl[0] != '\0' ?
	    o->crl : NULL, why, sizeof(why))) == NULL) {
		(void)ccx_fail_err(err, rc, "ca", "%s", why);
		goto fail;
	}
	if (pki_cert_check(ca, o->broker_certificate, now, &bc, why,
	    sizeof(why)) == -1) {
		(void)ccx_fail_err(err, rc, "broker_certificate", "%s: %s",
		    o->broker_certificate, why);
		goto fail;
	}
	if (bc.type != AT_BROKER) {
		(void)ccx_fail_err(err, rc, "broker_certificate",
		    "%s: OU is '%s', not broker", o->broker_certificate, bc.ou);
		goto fail;
	}
	if (pki_cert_check(ca, o->certificate, now, &own, why,
	    sizeof(why)) == -1) {
		(void)ccx_fail_err(err, rc, "certificate", "%s: %s",
		    o->certificate, why);
		goto fail;
	}
	if (pki_key_read(o->key, sec, pub, why, sizeof(why)) == -1) {
		(void)ccx_fail_err(err, rc, "key", "%s", why);
		goto fail;
	}
	if (memcmp(pub, own.key, sizeof(pub)) != 0) {
		(void)ccx_fail_err(err, rc, "key", "%s does not belong to "
		    "certificate %s", o->key, o->certificate);
		goto fail;
	}
	pki_z85(bc.key, k->server);
	pki_z85(pub, k->public);
	pki_z85(sec, k->secret);
	rc = CC_AGENT_OK;
fail:
	explicit_bzero(sec, sizeof(sec));
	pki_ca_destroy(&ca);
	return rc;
}

static int
open_socket(cc_agent *a, const struct keys *k, struct cc_agent_error *err)
{
	char	monitor[64];
	int	zero = 0, one = 1, ivl = RECONNECT_MS, ivlmax = RECONNECT_MAX_MS;
	int	hb = HEARTBEAT_MS, hbt = HEARTBEAT_TIMEOUT_MS, rc = 0;
	int64_t	maxin = MAX_FRAME_IN;

	if ((a->ctx = zmq_ctx_new()) == NULL ||
	    (a->sock = zmq_socket(a->ctx, ZMQ_DEALER)) == NULL)
		goto fail;
	rc |= zmq_setsockopt(a->sock, ZMQ_CURVE_SERVERKEY, k->server, 40);
	rc |= zmq_setsockopt(a->sock, ZMQ_CURVE_PUBLICKEY, k->public, 40);
	rc |= zmq_setsockopt(a->sock, ZMQ_CURVE_SECRETKEY, k->secret, 40);
	rc |= zmq_setsockopt(a->sock, ZMQ_LINGER, &zero, sizeof(zero));
	/* Queue nothing for a connection not yet made: we resend ourselves. */
	rc |= zmq_setsockopt(a->sock, ZMQ_IMMEDIATE, &one, sizeof(one));
	rc |= zmq_setsockopt(a->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
	rc |= zmq_setsockopt(a->sock, ZMQ_RECONNECT_IVL_MAX, &ivlmax,
	    sizeof(ivlmax));
	rc |= zmq_setsockopt(a->sock, ZMQ_HEARTBEAT_IVL, &hb, sizeof(hb));
	rc |= zmq_setsockopt(a->sock, ZMQ_HEARTBEAT_TIMEOUT, &hbt,
	    sizeof(hbt));
	rc |= zmq_setsockopt(a->sock, ZMQ_MAXMSGSIZE, &maxin, sizeof(maxin));
	if (rc != 0)
		goto fail;
	(void)snprintf(monitor, sizeof(monitor), "inproc://ccagent-%p",
	    (void *)a);
	if (zmq_socket_monitor(a->sock, monitor, MON_EVENTS) == -1 ||
	    (a->mon = zmq_socket(a->ctx, ZMQ_PAIR)) == NULL ||
	    zmq_setsockopt(a->mon, ZMQ_LINGER, &zero, sizeof(zero)) == -1 ||
	    zmq_connect(a->mon, monitor) == -1)
		goto fail;
	if (zmq_connect(a->sock, a->endpoint) == -1) {
		(void)ccx_fail_err(err, CC_AGENT_ERR_CONFIG, "broker",
		    "cannot connect to '%s': %s", a->endpoint,
		    zmq_strerror(errno));
		return CC_AGENT_ERR_CONFIG;
	}
	return CC_AGENT_OK;
fail:
	(void)ccx_fail_err(err, CC_AGENT_ERR_SYSTEM, NULL, "ZeroMQ: %s",
	    zmq_strerror(errno));
	return CC_AGENT_ERR_SYSTEM;
}

int
cc_agent_new(const struct cc_agent_options *o, cc_agent **out,
    struct cc_agent_error *err)
{
	cc_agent	*a = NULL;
	struct keys	 k;
	char		 why[256];
	int		 rc;

	*out = NULL;
	if (err != NULL)
		memset(err, 0, sizeof(*err));
	memset(&k, 0, sizeof(k));
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return ccx_fail_err(err, CC_AGENT_ERR_SYSTEM, NULL,
		    "out of memory");
	(void)snprintf(a->endpoint, sizeof(a->endpoint), "%s",
	    o->broker != NULL && o->broker[0] != '\0' ? o->broker :
	    "tcp://127.0.0.1:7450");
	a->receive = o->receive;
	a->log = o->log;
	a->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms :
	    CC_AGENT_TIMEOUT_MS;
	if (o->subscribe != NULL && iniconf_list(o->subscribe, parse_type, a,
	    why, sizeof(why)) == -1) {
		rc = ccx_fail_err(err, CC_AGENT_ERR_CONFIG, "subscribe", "%s",
		    why);
		goto fail;
	}
	if (o->areas != NULL && iniconf_list(o->areas, parse_area, a, why,
	    sizeof(why)) == -1) {
		rc = ccx_fail_err(err, CC_AGENT_ERR_CONFIG, "areas", "%s", why);
		goto fail;
	}
	if ((rc = load_identity(o, &k, err)) != CC_AGENT_OK ||
	    (rc = open_socket(a, &k, err)) != CC_AGENT_OK)
		goto fail;
	explicit_bzero(&k, sizeof(k));
	*out = a;
	return CC_AGENT_OK;
fail:
	explicit_bzero(&k, sizeof(k));
	cc_agent_destroy(&a);
	return rc;
}

int
cc_agent_new_conf(const char *path, bool receive, cc_agent **out,
    struct cc_agent_error *err)
{
	struct cc_agent_options	 o;
	struct agent_conf	*c;
	char			 why[512], types[256] = "", areas[600] = "";
	size_t			 i;
	int			 t, rc;

	*out = NULL;
	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return ccx_fail_err(err, CC_AGENT_ERR_SYSTEM, NULL,
		    "out of memory");
	if (agent_conf_load(path, c, why, sizeof(why)) == -1) {
		rc = ccx_fail_err(err, CC_AGENT_ERR_CONFIG, NULL, "%s", why);
		goto out;
	}
	for (t = 0; t < RT__COUNT; t++)
		if (c->subscribe & (1u << t))
			join(types, sizeof(types),
			    cc_rtype_name((enum cc_rtype)t));
	for (i = 0; i < c->nareas; i++)
		join(areas, sizeof(areas), c->areas[i]);
	memset(&o, 0, sizeof(o));
	o.broker = c->broker;
	o.broker_certificate = c->broker_certificate;
	o.ca = c->ca;
	o.crl = c->crl;
	o.certificate = c->certificate;
	o.key = c->key;
	o.receive = receive;
	o.subscribe = types;
	o.areas = c->nareas > 0 ? areas : NULL;
	rc = cc_agent_new(&o, out, err);
out:
	free(c);
	return rc;
}

void
cc_agent_destroy(cc_agent **ap)
{
	cc_agent	*a = *ap;

	if (a == NULL)
		return;
	if (a->mon != NULL)
		(void)zmq_close(a->mon);
	if (a->sock != NULL) {
		int linger = DESTROY_LINGER_MS;

		/* Let the last acks leave; never wait long for a dead peer. */
		(void)zmq_setsockopt(a->sock, ZMQ_LINGER, &linger,
		    sizeof(linger));
		(void)zmq_socket_monitor(a->sock, NULL, 0);
		(void)zmq_close(a->sock);
	}
	if (a->ctx != NULL)
		(void)zmq_ctx_term(a->ctx);
	ccx_queue_clear(&a->inbound);
	ccx_queue_clear(&a->answers);
	free(a);
	*ap = NULL;
}

const char *
cc_agent_agency(const cc_agent *a)
{
	return a->agency[0] != '\0' ? a->agency : NULL;
}

const char *
cc_agent_type(const cc_agent *a)
{
	return a->type[0] != '\0' ? a->type : NULL;
}

size_t
cc_agent_max_size(const cc_agent *a)
{
	return a->max_size;
}

bool
ccx_ready(const cc_agent *a)
{
	return a->state == SESS_READY;
}

unsigned
ccx_session(const cc_agent *a)
{
	return a->session;
}

/* One event of the monitor: [u16 event, u32 value] and the endpoint. */
static void
on_event(cc_agent *a)
{
	zmq_msg_t	m;
	uint16_t	ev;
	uint32_t	val;
	int		more;

	/*
	 * zmq_msg_init "always returns zero" (zmq_msg_init(3)), and closing
	 * a message this function initialised cannot fail.
	 */
	(void)zmq_msg_init(&m);
	if (zmq_msg_recv(&m, a->mon, ZMQ_DONTWAIT) == -1) {
		(void)zmq_msg_close(&m);
		return;
	}
	more = zmq_msg_more(&m);
	if (zmq_msg_size(&m) < 6) {
		ev = 0;
		val = 0;
	} else {
		memcpy(&ev, zmq_msg_data(&m), 2);
		memcpy(&val, (char *)zmq_msg_data(&m) + 2, 4);
	}
	while (more) {
		(void)zmq_msg_close(&m);
		(void)zmq_msg_init(&m);
		if (zmq_msg_recv(&m, a->mon, 0) == -1)
			break;
		more = zmq_msg_more(&m);
	}
	(void)zmq_msg_close(&m);

	switch (ev) {
	case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
		a->auth_failed = 0;
		a->hello_error = 0;
		a->state = SESS_NEED_HELLO;
		if (a->log)
			log_info("connected to %s", a->endpoint);
		break;
	case ZMQ_EVENT_DISCONNECTED:
		if (a->log && a->state != SESS_DOWN)
			log_info("disconnected from %s; reconnecting",
			    a->endpoint);
		a->state = SESS_DOWN;
		break;
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
	case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
	case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		if (a->log && a->auth_failed == 0)
			log_warnx("%s refused the handshake (status %u): is "
			    "our certificate in its agencies directory, valid "
			    "and not revoked, and is broker_certificate "
			    "right?", a->endpoint, (unsigned)val);
		a->auth_failed = ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH &&
		    val != 0 ? (int)val : -1;
		a->state = SESS_DOWN;
		break;
	default:
		break;
	}
}

static void
on_welcome(cc_agent *a, const struct cc_msg *m)
{
	const msgpack_object	*areas = proto_get(m, "areas");
	uint64_t		 max = 0;
	uint32_t		 i;

	(void)proto_get_str(m, "agency", a->agency, sizeof(a->agency));
	(void)proto_get_str(m, "type", a->type, sizeof(a->type));
	if (proto_get_u64(m, "max_size", &max) == 0)
		a->max_size = (size_t)max;
	a->nwelcome_areas = 0;
	for (i = 0; areas != NULL && areas->type == MSGPACK_OBJECT_ARRAY &&
	    i < areas->via.array.size && i < CCX_AREAS_MAX; i++) {
		const msgpack_object *o = &areas->via.array.ptr[i];

		if (o->type == MSGPACK_OBJECT_STR &&
		    o->via.str.size < CCX_AREA_LEN) {
			memcpy(a->welcome_areas[a->nwelcome_areas],
			    o->via.str.ptr, o->via.str.size);
			a->welcome_areas[a->nwelcome_areas++]
			    [o->via.str.size] = '\0';
		}
	}
	if (a->receive && a->subscribe != 0) {
		if (send_packed(a, ccx_pack_subscribe) == 0) {
			a->state = SESS_SUBSCRIBING;
			return;
		}
		/*
		 * Start over with hello, whose welcome sends the subscription
		 * again: the connection may well still be up (memory ran out),
		 * and nothing else would ever subscribe this session.
		 */
		a->state = SESS_NEED_HELLO;
		return;
	}
	session_ready(a);
}

static void
session_ready(cc_agent *a)
{
	a->state = SESS_READY;
	a->session++;
	if (a->log)
		log_info("session %u: welcomed as %s (%s)%s", a->session,
		    a->agency, a->type, a->receive ? ", receiving" : "");
}

/* A frame from the broker: the session's own, or queued for the caller. */
static void
on_frame(cc_agent *a, const void *data, size_t len)
{
	struct ccx_frame	*f;
	struct cc_msg		*m = NULL;
	struct cc_error		 ce;
	char			 re[80] = "";

	if (proto_decode(data, len, SIZE_MAX, &m, &ce) == -1) {
		if (a->log)
			log_warnx("unreadable frame from the broker: %s%s%s",
			    ce.field, ce.field[0] ? ": " : "", ce.detail);
		return;
	}
	switch (proto_op(m)) {
	case OP_WELCOME:
		if (a->state == SESS_HELLO_SENT)
			on_welcome(a, m);
		proto_msg_destroy(&m);
		return;
	case OP_SUBSCRIBED:
		if (a->state == SESS_SUBSCRIBING)
			session_ready(a);
		proto_msg_destroy(&m);
		return;
	case OP_ERROR:
		(void)proto_get_str(m, "re", re, sizeof(re));
		if (strcmp(re, "hello") == 0 && a->state == SESS_HELLO_SENT) {
			struct cc_agent_error	e;
			char			code[32] = "";

			(void)proto_get_str(m, "code", code, sizeof(code));
			memset(&e, 0, sizeof(e));
			(void)proto_get_str(m, "detail", e.detail,
			    sizeof(e.detail));
			if (a->log)
				log_warnx("the broker refused hello: %s: %s",
				    code, e.detail);
			a->hello_error = cc_err_parse(code, strlen(code));
			if (a->hello_error <= 0)
				a->hello_error = CC_AGENT_ERR_PROTOCOL;
			a->state = SESS_DOWN;
			proto_msg_destroy(&m);
			return;
		}
		if (strcmp(re, "subscribe") == 0 &&
		    a->state == SESS_SUBSCRIBING) {
			char	detail[160] = "";

			(void)proto_get_str(m, "detail", detail,
			    sizeof(detail));
			/* Direct messages still come; say so and go on. */
			log_warnx("the broker refused our subscription: %s",
			    detail);
			session_ready(a);
			proto_msg_destroy(&m);
			return;
		}
		break;
	default:
		break;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		/*
		 * A delivery comes again after the next hello; a request is
		 * sent again when its answer does not come.
		 */
		if (a->log)
			log_warnx("out of memory: a %s from the broker "
			    "dropped", cc_op_name(proto_op(m)));
		proto_msg_destroy(&m);
		return;
	}
	f->msg = m;
	/* Notices share the deliveries' queue: one order, one ack. */
	if (proto_op(m) == OP_DELIVER || proto_op(m) == OP_RECEIPT ||
	    proto_op(m) == OP_NOTICE)
		ccx_queue_push(&a->inbound, f);
	else
		ccx_queue_push(&a->answers, f);
}

int
ccx_pack_hello(const cc_agent *a, msgpack_sbuffer *sb)
{
	msgpack_packer	pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, 4) != 0 ||
	    proto_pack_header(&pk, "hello") != 0 ||
	    proto_pack_cstr(&pk, "agent") != 0 ||
	    proto_pack_cstr(&pk, "ccagent/" CC_AGENT_VERSION) != 0 ||
	    proto_pack_cstr(&pk, "receive") != 0 ||
	    (a->receive ? msgpack_pack_true(&pk) :
	    msgpack_pack_false(&pk)) != 0)
		return -1;
	return 0;
}

/* The configured areas, or all the welcome listed for us. */
int
ccx_pack_subscribe(const cc_agent *a, msgpack_sbuffer *sb)
{
	msgpack_packer	 pk;
	const char	(*areas)[CCX_AREA_LEN] = a->nareas > 0 ? a->areas :
			    a->welcome_areas;
	size_t		 n = a->nareas > 0 ? a->nareas : a->nwelcome_areas;
	size_t		 i, ntypes = 0;
	int		 t;

	for (t = 0; t < RT__COUNT; t++)
		ntypes += (a->subscribe & (1u << t)) != 0;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, 4) != 0 ||
	    proto_pack_header(&pk, "subscribe") != 0 ||
	    proto_pack_cstr(&pk, "types") != 0 ||
	    msgpack_pack_array(&pk, ntypes) != 0)
		return -1;
	for (t = 0; t < RT__COUNT; t++)
		if ((a->subscribe & (1u << t)) &&
		    proto_pack_cstr(&pk, cc_rtype_name((enum cc_rtype)t)) != 0)
			return -1;
	if (proto_pack_cstr(&pk, "areas") != 0 ||
	    msgpack_pack_array(&pk, n) != 0)
		return -1;
	for (i = 0; i < n; i++)
		if (proto_pack_cstr(&pk, areas[i]) != 0)
			return -1;
	return 0;
}

/*
 * Hello and subscribe go out before the session is ready, so not through
 * ccx_send_frame.  A frame that could not be packed whole is not sent.
 */
static int
send_packed(cc_agent *a, int (*pack)(const cc_agent *, msgpack_sbuffer *))
{
	msgpack_sbuffer	sb;
	int		rc = -1;

	msgpack_sbuffer_init(&sb);
	if (pack(a, &sb) != 0) {
		if (a->log)
			log_warnx("out of memory packing a frame");
		goto out;
	}
	if (zmq_send(a->sock, sb.data, sb.size, ZMQ_DONTWAIT) == -1)
		goto out;
	rc = 0;
out:
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* Say hello when a new connection needs it (or the last got no answer). */
static void
session_step(cc_agent *a)
{
	int64_t	now = ccx_now_ms();

	if (a->state == SESS_HELLO_SENT && now - a->hello_at >= HELLO_RESEND_MS)
		a->state = SESS_NEED_HELLO;
	if (a->state != SESS_NEED_HELLO)
		return;
	if (send_packed(a, ccx_pack_hello) == 0) {
		a->state = SESS_HELLO_SENT;
		a->hello_at = now;
	}
}

/* Everything waiting on both sockets, without blocking. */
static void
drain(cc_agent *a)
{
	zmq_pollitem_t	items[2];
	zmq_msg_t	m;
	int		n;

	for (;;) {
		items[0].socket = a->mon;
		items[0].events = ZMQ_POLLIN;
		items[1].socket = a->sock;
		items[1].events = ZMQ_POLLIN;
		if ((n = zmq_poll(items, 2, 0)) <= 0)
			return;
		if (items[0].revents & ZMQ_POLLIN)
			on_event(a);
		if (items[1].revents & ZMQ_POLLIN) {
			(void)zmq_msg_init(&m);
			if (zmq_msg_recv(&m, a->sock, ZMQ_DONTWAIT) != -1) {
				/* One frame per message; more is malformed. */
				if (!zmq_msg_more(&m))
					on_frame(a, zmq_msg_data(&m),
					    zmq_msg_size(&m));
				else if (a->log)
					log_warnx("multi-frame message from "
					    "the broker dropped");
			}
			(void)zmq_msg_close(&m);
		}
		session_step(a);
	}
}

int
ccx_wait(cc_agent *a, int fd, int timeout_ms, int want)
{
	zmq_pollitem_t	items[3];
	unsigned	session0 = a->session;
	int		auth0 = a->auth_failed;
	int64_t		deadline = timeout_ms < 0 ? -1 :
			    ccx_now_ms() + timeout_ms, left;
	int		got, n, ms;

	for (;;) {
		drain(a);
		session_step(a);
		if (want & CCX_WAIT_NOTICES)
			ccx_notices_dispatch(a);
		got = 0;
		if ((want & CC_AGENT_WAIT_RECEIVE) && ccx_inbound_ready(a))
			got |= CC_AGENT_WAIT_RECEIVE;
		if ((want & CCX_WAIT_ANSWER) && a->answers.n > 0)
			got |= CCX_WAIT_ANSWER;
		if ((want & CCX_WAIT_SESSION) && (a->session != session0 ||
		    (a->auth_failed != 0 && a->auth_failed != auth0) ||
		    a->hello_error != 0))
			got |= CCX_WAIT_SESSION;
		if (got != 0)
			return got;

		left = deadline < 0 ? -1 : deadline - ccx_now_ms();
		if (deadline >= 0 && left < 0)
			left = 0;
		ms = left > INT32_MAX ? INT32_MAX : (int)left;
		/* A hello that could not go out yet is tried again soon. */
		if (a->state == SESS_NEED_HELLO && (ms < 0 || ms > 10))
			ms = 10;
		if (a->state == SESS_HELLO_SENT) {
			int64_t	r = a->hello_at + HELLO_RESEND_MS -
			    ccx_now_ms();

			if (r < 0)
				r = 0;
			if (ms < 0 || r < ms)
				ms = (int)r;
		}
		items[0].socket = a->mon;
		items[0].events = ZMQ_POLLIN;
		items[1].socket = a->sock;
		items[1].events = ZMQ_POLLIN;
		items[2].socket = NULL;
		items[2].fd = fd;
		items[2].events = ZMQ_POLLIN;
		if ((n = zmq_poll(items, fd >= 0 ? 3 : 2, ms)) == -1) {
			if (errno == EINTR)
				return 0;
			ccx_fail(a, CC_AGENT_ERR_SYSTEM, NULL, "zmq_poll: %s",
			    zmq_strerror(errno));
			return -1;
		}
		if (fd >= 0 && (items[2].revents & (ZMQ_POLLIN | ZMQ_POLLERR))) {
			drain(a);
			if (want & CCX_WAIT_NOTICES)
				ccx_notices_dispatch(a);
			got = CC_AGENT_WAIT_FD;
			if ((want & CC_AGENT_WAIT_RECEIVE) &&
			    ccx_inbound_ready(a))
				got |= CC_AGENT_WAIT_RECEIVE;
			if ((want & CCX_WAIT_ANSWER) && a->answers.n > 0)
				got |= CCX_WAIT_ANSWER;
			return got;
		}
		if (n == 0 && deadline >= 0 && ccx_now_ms() >= deadline) {
			drain(a);
			if (want & CCX_WAIT_NOTICES)
				ccx_notices_dispatch(a);
			return 0;
		}
	}
}

int
cc_agent_wait(cc_agent *a, int fd, int timeout_ms)
{
	return ccx_wait(a, fd, timeout_ms, CC_AGENT_WAIT_RECEIVE |
	    CCX_WAIT_NOTICES);
}

int
cc_agent_connect(cc_agent *a, int timeout_ms)
{
	int64_t	deadline = ccx_now_ms() + (timeout_ms < 0 ? a->timeout_ms :
		    timeout_ms), left;

	for (;;) {
		if (a->state == SESS_READY)
			return CC_AGENT_OK;
		if (a->hello_error != 0)
			return ccx_fail(a, a->hello_error, NULL,
			    "the broker at %s refused our hello", a->endpoint);
		if (a->auth_failed != 0)
			return ccx_fail(a, CC_AGENT_ERR_AUTH, NULL,
			    "the broker at %s refused the handshake: check "
			    "our certificate and broker_certificate",
			    a->endpoint);
		left = deadline - ccx_now_ms();
		if (left <= 0)
			return ccx_fail(a, CC_AGENT_ERR_TIMEOUT, NULL,
			    "%s at %s within %d s", a->state == SESS_DOWN ?
			    "cannot reach the broker" : "no welcome from the "
			    "broker", a->endpoint, (int)((timeout_ms < 0 ?
			    a->timeout_ms : timeout_ms) + 999) / 1000);
		if (ccx_wait(a, -1, (int)left, CCX_WAIT_SESSION) == -1)
			return a->err.code;
	}
}

int
ccx_send_frame(cc_agent *a, const msgpack_sbuffer *sb, bool any)
{
	size_t	max = a->max_size > 0 ? a->max_size : CC_MAX_FRAME_DEFAULT;

	/* Acks may go while hello or subscribe still wait for answers. */
	if (a->state != SESS_READY && (!any || a->state == SESS_DOWN ||
	    a->state == SESS_NEED_HELLO))
		return ccx_fail(a, CC_AGENT_ERR_TIMEOUT, NULL,
		    "no session with the broker");
	if (sb->size > max)
		return ccx_fail(a, CC_AGENT_ERR_TOO_LARGE, NULL,
		    "%zu bytes, the broker takes at most %zu", sb->size, max);
	if (zmq_send(a->sock, sb->data, sb->size, ZMQ_DONTWAIT) == -1) {
		if (errno == EAGAIN)
			return ccx_fail(a, CC_AGENT_ERR_TIMEOUT, NULL,
			    "no connection to the broker");
		return ccx_fail(a, CC_AGENT_ERR_SYSTEM, NULL, "zmq_send: %s",
		    zmq_strerror(errno));
	}
	return CC_AGENT_OK;
}
