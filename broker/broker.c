/*
 * broker.c - the broker's loop: start, signals, reload, and the state
 * handlers may read through broker.h.  A turn (batch.c) does the work.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "broker_impl.h"
#include "log.h"

#define ZAP_BATCH	256	/* handshakes decided per loop, at most */
#define HANDSHAKE_MS	10000	/* a CURVE handshake's time to finish */
#define HEARTBEAT_MS	10000	/* ZMTP PING interval; 3 missed: gone */
#define CRL_NAG_MS	60000	/* past the CRL's next update: say so */
#define CRL_WARN_MS	3600000	/* its last day: say so */

static volatile sig_atomic_t	got_term, got_hup;

static void	on_signal(int);
static void	check_report(const char *, void *);
static void	status_set(struct broker *, const char *);
static void	reload(struct broker *);
static void	crl_watch(struct broker *, int64_t);
static void	serve(struct broker *, const char *);
static void	loop(struct broker *, int *status);

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
}

static void
check_report(const char *finding, void *arg)
{
	(void)arg;
	log_warnx("store damaged: %s", finding);
}

int
objstr(const msgpack_object *o, char *buf, size_t size)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
	    o->via.str.size >= size)
		return -1;
	memcpy(buf, o->via.str.ptr, o->via.str.size);
	buf[o->via.str.size] = '\0';
	return 0;
}

struct store *
broker_store(struct broker *b)
{
	return b->st;
}

int64_t
broker_now(const struct broker *b)
{
	return b->now;
}

const struct broker_conf *
broker_conf(const struct broker *b)
{
	return &b->conf;
}

struct peer *
broker_peer(struct broker *b, const char *id)
{
	size_t	i;

	for (i = 0; i < b->npeer; i++)
		if (strcmp(b->peer[i].id, id) == 0)
			return &b->peer[i];
	return NULL;
}

struct peer *
broker_peers(struct broker *b, size_t *n)
{
	*n = b->npeer;
	return b->peer;
}

const struct policy *
broker_policy_of(struct broker *b, const char *id)
{
	const struct agency	*a;

	if ((a = auth_agency(&b->auth, id, (time_t)(b->now / 1000))) == NULL ||
	    a->cert.type < 0 || a->cert.type >= AT__COUNT)
		return NULL;
	return &b->conf.policy[a->cert.type];
}

const struct policy *
broker_policy_cert(struct broker *b, const struct agency *a)
{
	if (a == NULL || a->cert.type < 0 || a->cert.type >= AT__COUNT)
		return NULL;
	return &b->conf.policy[a->cert.type];
}

bool
broker_session_valid(struct broker *b, const struct peer *p)
{
	return auth_agency_key(&b->auth, p->id, p->key,
	    (time_t)(b->now / 1000)) != NULL;
}

void
broker_count(struct broker *b, enum counter c)
{
	b->count.n[c]++;
}

void
broker_expiry_at(struct broker *b, int64_t ms)
{
	if (ms < b->next_sweep)
		b->next_sweep = ms;
}

void
broker_sweep_next(struct broker *b, int64_t ms)
{
	b->next_sweep = ms;
}

/* The outcome of a load (start or reload), for `stats`. */
static void
status_set(struct broker *b, const char *err)
{
	b->status.loaded_ms = cc_time_now_ms();
	b->status.crl_next_update = b->auth.crl_next_update;
	b->status.ok = err == NULL;
	snprintf(b->status.error, sizeof(b->status.error), "%s",
	    err != NULL ? err : "");
	state_save_status(b);
}

/*
 * A reload that fails (the configuration, the CA, the CRL or the agency
 * directory) keeps everything running as it was, CRL included: it is an
 * error in the log and in `stats`, never a silent stop of revocation.
 */
static void
reload(struct broker *b)
{
	struct broker_conf	nc;
	struct auth		na;
	char			err[512];

	memset(&nc, 0, sizeof(nc));
	memset(&na, 0, sizeof(na));
	if (broker_conf_load(b->conf.path, &nc, err, sizeof(err)) == -1) {
		log_warnx("reload failed: %s; keeping the running "
		    "configuration", err);
		status_set(b, err);
		return;
	}
	if (auth_load(&na, &nc, err, sizeof(err)) == -1) {
		log_warnx("reload failed: %s; keeping the running "
		    "configuration", err);
		broker_conf_free(&nc);
		status_set(b, err);
		return;
	}
	/* Keep the ZAP socket, counters and address table; swap the rest. */
	na.zap = b->auth.zap;
	na.refused = b->auth.refused;
	na.full = b->auth.full;
	na.limit = b->auth.limit;
	hslimit_set(b->hslimit, nc.handshake_rate, nc.handshake_burst);
	b->auth.zap = NULL;
	auth_clear(&b->auth);
	broker_conf_free(&b->conf);
	b->conf = nc;
	b->auth = na;
	if (state_peers_build(b) == -1)
		fatalx("reload: out of memory");
	b->purge_invalid = true;
	b->crl_warned = b->crl_nagged = 0;
	status_set(b, NULL);
	log_info("reloaded: %zu valid agencies", b->auth.nagency);
}

/*
 * Past the CRL's next update every new handshake is refused (auth.c); say
 * so once a minute, and once an hour in its last day.  Connections made
 * before keep their service: each was admitted under a CRL in force, and
 * the fresh CRL, once loaded, is applied to them at once.
 */
static void
crl_watch(struct broker *b, int64_t now_ms)
{
	time_t	now = (time_t)(now_ms / 1000), next = b->auth.crl_next_update;
	char	when[32];

	cc_time_format((int64_t)next * 1000, when);
	if (auth_crl_expired(&b->auth, now)) {
		if (b->crl_nagged != 0 && now_ms - b->crl_nagged < CRL_NAG_MS)
			return;
		log_warnx("error: CRL %s is past its next update %s: every new "
		    "handshake is refused (\"CRL expired\") until a fresh CRL "
		    "is loaded; publish one (mkpartnership.sh -g, or openssl "
		    "ca -gencrl) and reload", b->conf.crl, when);
		b->crl_nagged = now_ms;
	} else if (next - now < 86400) {
		if (b->crl_warned != 0 && now_ms - b->crl_warned < CRL_WARN_MS)
			return;
		log_warnx("CRL %s next update %s is less than a day away: "
		    "publish a fresh CRL and reload before then, or every new "
		    "handshake will be refused", b->conf.crl, when);
		b->crl_warned = now_ms;
	}
}

/*
 * The socket: a CURVE server whose handshakes the ZAP handler decides,
 * bound, with a monitor for connections and disconnections.  The secret
 * key is wiped once the socket holds it.
 */
static void
serve(struct broker *b, const char *path)
{
	char		 z85[41];
	int		 one = 1, zero = 0, rc, rcvhwm = 1000, sndhwm;
	int		 handshake = HANDSHAKE_MS, hb = HEARTBEAT_MS;
	int		 hbtimeout = 3 * HEARTBEAT_MS;
	int64_t		 maxmsg;

	if ((b->ctx = zmq_ctx_new()) == NULL)
		fatalx("zmq_ctx_new: %s", zmq_strerror(errno));
	if (auth_zap_bind(&b->auth, b->ctx) == -1)
		fatalx("cannot bind the ZAP handler: %s", zmq_strerror(errno));
	if ((b->router = zmq_socket(b->ctx, ZMQ_ROUTER)) == NULL)
		fatalx("zmq_socket: %s", zmq_strerror(errno));
	/*
	 * Frames above max_size are answered `too-large`; far larger ones are
	 * cut off by libzmq before they are read into memory.
	 */
	maxmsg = (int64_t)b->conf.max_size * 16;
	if (maxmsg < 1 << 20)
		maxmsg = 1 << 20;
	if (zmq_z85_encode(z85, b->sec, 32) == NULL)
		fatalx("cannot encode the broker's key");
	rc = zmq_setsockopt(b->router, ZMQ_CURVE_SERVER, &one, sizeof(one));
	rc |= zmq_setsockopt(b->router, ZMQ_CURVE_SECRETKEY, z85, 40);
	rc |= zmq_setsockopt(b->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN,
	    strlen(ZAP_DOMAIN));
	rc |= zmq_setsockopt(b->router, ZMQ_ROUTER_MANDATORY, &one,
	    sizeof(one));
	rc |= zmq_setsockopt(b->router, ZMQ_MAXMSGSIZE, &maxmsg,
	    sizeof(maxmsg));
	/*
	 * Frames waiting to be sent to one connection.  Deliveries are never
	 * more than the window unacked, and answers come at most two
	 * batches a turn: past that the client is not reading, and what
	 * would queue for it is dropped instead of held.  So a connection
	 * costs at most window x max_size of deliveries plus 2 x BATCH_MAX
	 * answers (each well under 1 KiB): 16 MiB + 1 MiB by default.
	 */
	sndhwm = (int)b->conf.window + 2 * BATCH_MAX;
	rc |= zmq_setsockopt(b->router, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm));
	/*
	 * A handshake not finished in time is dropped (a client that opens
	 * connections and says nothing holds nothing for long), and a peer
	 * gone without a FIN is noticed by ZMTP heartbeats, so `stats` and
	 * the descriptor count do not keep it.
	 */
	rc |= zmq_setsockopt(b->router, ZMQ_HANDSHAKE_IVL, &handshake,
	    sizeof(handshake));
	rc |= zmq_setsockopt(b->router, ZMQ_HEARTBEAT_IVL, &hb, sizeof(hb));
	rc |= zmq_setsockopt(b->router, ZMQ_HEARTBEAT_TIMEOUT, &hbtimeout,
	    sizeof(hbtimeout));
	/*
	 * Frames read from one connection and not yet taken by a turn: a
	 * client sending faster than it is served meets back-pressure here
	 * (TCP stops) instead of growing the broker's memory.  Agents keep
	 * far fewer in flight.
	 */
	rc |= zmq_setsockopt(b->router, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
	rc |= zmq_setsockopt(b->router, ZMQ_LINGER, &zero, sizeof(zero));
	explicit_bzero(b->sec, sizeof(b->sec));
	explicit_bzero(z85, sizeof(z85));
	if (rc != 0)
		fatalx("cannot configure the socket: %s", zmq_strerror(errno));
	if (zmq_bind(b->router, b->conf.bind) == -1)
		fatalx("%s: bind %s: %s", path, b->conf.bind,
		    zmq_strerror(errno));
	if (zmq_socket_monitor(b->router, "inproc://ccbroker-monitor",
	    ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) == -1 ||
	    (b->monitor = zmq_socket(b->ctx, ZMQ_PAIR)) == NULL ||
	    zmq_connect(b->monitor, "inproc://ccbroker-monitor") == -1)
		fatalx("cannot monitor the socket: %s", zmq_strerror(errno));
}

/* Until SIGTERM or SIGINT, or a store that can no longer be written. */
static void
loop(struct broker *b, int *status)
{
	zmq_pollitem_t	items[3];
	int64_t		wait, now;
	size_t		i, n;
	bool		busy;

	while (!got_term) {
		if (got_hup) {
			got_hup = 0;
			reload(b);
		}
		now = cc_time_now_ms();
		crl_watch(b, now);
		hslimit_tick(b->hslimit, now);
		state_refused_tick(b, now);
		busy = false;
		for (i = 0; i < b->npeer; i++)
			busy |= b->peer[i].online && b->peer[i].dirty &&
			    b->peer[i].inflight < b->conf.window;
		items[0].socket = b->router;
		items[0].events = ZMQ_POLLIN;
		items[1].socket = b->auth.zap;
		items[1].events = ZMQ_POLLIN;
		items[2].socket = b->monitor;
		items[2].events = ZMQ_POLLIN;
		wait = 1000;
		if (b->next_sweep - cc_time_now_ms() < wait)
			wait = b->next_sweep - cc_time_now_ms();
		if (busy || wait < 0)
			wait = 0;
		if (zmq_poll(items, 3, (long)wait) == -1) {
			if (errno == EINTR)
				continue;
			fatalx("zmq_poll: %s", zmq_strerror(errno));
		}
		/*
		 * Connections first, then handshakes: a connection's accept
		 * is on the monitor long before its ZAP request.  At most a
		 * batch of handshakes per loop, so that a flood of them
		 * cannot keep the loop from serving requests; refusals cost
		 * a count each and are audited aggregated (state.c).
		 */
		if (items[2].revents & ZMQ_POLLIN)
			conn_monitor_read(b);
		if (items[1].revents & ZMQ_POLLIN) {
			conn_check(b);
			for (n = 0; n < ZAP_BATCH &&
			    auth_zap_handle(&b->auth, time(NULL),
			    state_on_refused, b) == 1; n++)
				;
		}
		/*
		 * The store cannot begin a transaction (LMDB says so after a
		 * failed write of its meta page): stop, non-zero, promising
		 * nothing more; a restart reopens it at its last commit.
		 */
		if (batch_turn(b) == -1) {
			log_warnx("store unusable; stopping for a restart");
			*status = 1;
			break;
		}
		state_log_head(b, false);
	}
}

int
broker_open(struct broker *b, const char *path, struct run_as *ra, char *err,
    size_t errlen)
{
	uint8_t		pub[32];
	struct pki_cert	self;
	int		n;

	memset(b, 0, sizeof(*b));
	if (broker_conf_load(path, &b->conf, err, errlen) == -1)
		return -1;
	/*
	 * What refuses a start comes before the agency directory, which
	 * logs what it finds: a refusal is then the one line said.
	 */
	priv_check_user(&b->conf, ra);
	if (pki_key_read(b->conf.key, b->sec, pub, err, errlen) == -1)
		goto fail;
	/* Agents pin the certificate's key: the two must be one pair. */
	if (pki_cert_read(b->conf.certificate, &self, err, errlen) == -1)
		goto fail;
	if (memcmp(self.key, pub, sizeof(pub)) != 0) {
		snprintf(err, errlen, "%s: does not hold the public key of %s",
		    b->conf.certificate, b->conf.key);
		goto fail;
	}
	if (store_open(&b->st, b->conf.data, b->conf.map_size_mb, false, err,
	    errlen) == -1)
		goto fail;
	if (auth_load(&b->auth, &b->conf, err, errlen) == -1)
		goto fail;
	if ((b->hslimit = hslimit_new(b->conf.handshake_rate,
	    b->conf.handshake_burst)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	b->auth.limit = b->hslimit;
	/* Damage is looked for at every start, and said. */
	if ((n = store_check(b->st, CHECK_QUICK, check_report, NULL)) == -1) {
		snprintf(err, errlen, "%s: cannot be read to check it",
		    b->conf.data);
		goto fail;
	}
	if (n > 0)
		log_warnx("store: %d findings of damage; see the lines above, "
		    "and run ccbroker audit verify", n);
	if (state_peers_build(b) == -1 || state_load(b) != 0 ||
	    quota_load(b) != 0) {
		snprintf(err, errlen, "cannot read state from %s",
		    b->conf.data);
		goto fail;
	}
	b->next_sweep = 0;
	b->purge_invalid = true;
	return 0;
fail:
	broker_close(b);
	return -1;
}

void
broker_close(struct broker *b)
{
	explicit_bzero(b->sec, sizeof(b->sec));
	store_close(&b->st);
	auth_clear(&b->auth);
	b->auth.limit = NULL;
	hslimit_destroy(&b->hslimit);
	broker_conf_free(&b->conf);
	out_drop(b, 0);
	free(b->out);
	free(b->peer);
	free(b->conn);
	free(b->connpeer);
	b->out = NULL;
	b->peer = NULL;
	b->conn = NULL;
	b->connpeer = NULL;
	b->npeer = b->outcap = b->conncap = b->connpeer_cap = 0;
}

int
broker_run(const char *path)
{
	struct broker	 b;
	struct sigaction sa;
	char		 err[512];
	struct run_as	 ra;
	int		 status = 0;

	if (broker_open(&b, path, &ra, err, sizeof(err)) == -1)
		fatalx("%s", err);
	conn_raise_nofile();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGHUP, &sa, NULL) == -1 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fatal("sigaction");

	serve(&b, path);
	status_set(&b, NULL);
	log_info("listening on %s, %zu valid agencies, data %s", b.conf.bind,
	    b.auth.nagency, b.conf.data);
	state_log_head(&b, true);
	priv_drop(&b.conf, &ra);
	b.fds_base = conn_fds_open();

	loop(&b, &status);
	log_info("stopping");
	state_save_final(&b);
	zmq_close(b.monitor);
	zmq_close(b.router);
	auth_zap_close(&b.auth);
	zmq_ctx_term(b.ctx);
	broker_close(&b);
	return status;
}
