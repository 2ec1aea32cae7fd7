/*
 * batch.c - one turn of the loop: every waiting request in one store
 * transaction, then the pump and the sweeps, one commit (one fsync for
 * the whole batch: group commit), then the answers.  Nothing is said to
 * an agency before the state it describes is on disk; a turn whose commit
 * fails is undone in memory too, and promises nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "broker_impl.h"
#include "deliver.h"
#include "dispatch.h"
#include "log.h"
#include "route.h"

#define SWEEP_RETRY_MS	1000
#define CONN_TURN_MAX	256	/* requests handled per connection per turn */
#define CONN_SLOTS	1024	/* connections of one turn (> 2 x BATCH_MAX) */
#define SHED_LOG_MS	10000	/* at most one line about shedding per 10 s */

/* What was asked in this batch, to answer `busy` if the commit fails. */
struct asked {
	uint8_t	rid[RID_MAX];
	size_t	ridlen;
	char	re[80];
	bool	answered;	/* expects an answer (acks do not) */
};

static int	handle_one(struct broker *, struct store_txn *, bool isolate,
		    size_t i, struct asked *, unsigned *taken);
static const struct agency *authenticated(struct broker *, zmq_msg_t *,
		    const char **uid);
static int	refuse_invalid(struct broker *, struct req *, zmq_msg_t *,
		    const char *, enum cc_err, const char *);
static int	run_batch(struct broker *, struct store_txn *, bool isolate,
		    size_t n);
static void	undo_batch(struct broker *, const struct counters *,
		    uint64_t refused);
static bool	recv_request(struct broker *, zmq_msg_t *rid,
		    zmq_msg_t *body, bool *multi);
static size_t	conn_of(uint16_t *slot, const struct asked *, size_t n);
static int	shed(struct broker *, struct req *, struct asked *);
static int	audit_refused(struct broker *, struct store_txn *);
static void	pump(struct broker *, struct store_txn *);
static void	fail_batch(struct broker *, int rc, size_t nasked,
		    const struct counters *, uint64_t refused);

/* The requests of this turn: routing id and body of each, and whether the
 * body came in more than one frame. */
static zmq_msg_t	batch_rid[BATCH_MAX], batch_body[BATCH_MAX];
static bool		batch_multi[BATCH_MAX];
static struct asked	asked[BATCH_MAX];

/*
 * Fairness.  The ROUTER already takes frames from its peers in turn, so a
 * connection sending as fast as it can does not keep anyone else's frames
 * out of a batch; what it can do is fill the batch with work (each publish
 * written, each bad frame audited) and so lengthen every turn, which is
 * everyone's latency.  So at most CONN_TURN_MAX requests of one connection
 * are handled per turn; the rest of its requests in that turn are only
 * decoded, to name them, and answered `busy`: nothing stored, audited or
 * logged one by one.  Acks are exempt: they are bounded by the delivery
 * window, and one dropped would leave a delivery unacked until the next
 * session.  Agents keep far fewer requests in flight (ccagent: 32), so
 * only a client sending faster than it reads its answers meets this.
 *
 * The connections of a turn are found by routing id in a small open
 * addressing table of indices into `asked` (the first request of each).
 */
static size_t
conn_of(uint16_t *slot, const struct asked *all, size_t n)
{
	const struct asked	*a = &all[n];
	uint32_t		 h = 2166136261u;
	size_t			 i;

	for (i = 0; i < a->ridlen; i++)
		h = (h ^ a->rid[i]) * 16777619u;
	for (i = h & (CONN_SLOTS - 1); slot[i] != 0;
	    i = (i + 1) & (CONN_SLOTS - 1)) {
		const struct asked *f = &all[slot[i] - 1];

		if (f->ridlen == a->ridlen &&
		    memcmp(f->rid, a->rid, a->ridlen) == 0)
			return slot[i] - 1;
	}
	slot[i] = (uint16_t)(n + 1);
	return n;
}

/* A request beyond its connection's share of this turn: `busy`. */
static int
shed(struct broker *b, struct req *r, struct asked *a)
{
	struct cc_error	err;

	memset(&err, 0, sizeof(err));
	err.code = ERR_BUSY;
	snprintf(err.re, sizeof(err.re), "%s", a->re);
	snprintf(err.detail, sizeof(err.detail), "too many requests at once; "
	    "send again after the answers");
	a->answered = false;	/* answered now, whatever the commit */
	b->shed++;
	snprintf(b->shed_agency, sizeof(b->shed_agency), "%s",
	    r->from->cert.cn);
	return reply_err(b, r->rid, r->ridlen, &err);
}

/*
 * A request that is not served at all: its certificate revoked or expired
 * since the handshake, or its connection one too many.  The frame is read
 * only to say which request is refused.
 */
static int
refuse_invalid(struct broker *b, struct req *r, zmq_msg_t *body,
    const char *uid, enum cc_err code, const char *why)
{
	struct cc_error	err;

	memset(&err, 0, sizeof(err));
	if (proto_decode(zmq_msg_data(body), zmq_msg_size(body),
	    b->conf.max_size, &r->msg, &err) == 0) {
		if (proto_get_str(r->msg, "mid", err.re, sizeof(err.re)) == -1 &&
		    proto_get_str(r->msg, "cid", err.re, sizeof(err.re)) == -1)
			snprintf(err.re, sizeof(err.re), "%s",
			    cc_op_name(proto_op(r->msg)));
		proto_msg_destroy(&r->msg);
	}
	err.code = code;
	err.field[0] = '\0';
	snprintf(err.detail, sizeof(err.detail), "%s", why);
	log_warnx("refused request agency=%s reason=\"%s\"",
	    uid != NULL ? uid : "?", why);
	return reply_err(b, r->rid, r->ridlen, &err);
}

/*
 * The certificate a request is served under: the one of the agency the
 * ZAP handler named whose key authenticated this connection, if it is
 * still valid (DESIGN §3: service follows the key, not only the name).
 */
static const struct agency *
authenticated(struct broker *b, zmq_msg_t *body, const char **uid)
{
	const char	*z85;
	uint8_t		 key[32];

	if ((*uid = zmq_msg_gets(body, "User-Id")) == NULL ||
	    (z85 = zmq_msg_gets(body, AUTH_META_KEY)) == NULL ||
	    strlen(z85) != 40 || zmq_z85_decode(key, z85) == NULL)
		return NULL;
	return auth_agency_key(&b->auth, *uid, key, (time_t)(b->now / 1000));
}

/*
 * One request: attribute it to the authenticated agency (never to anything
 * the client wrote), decode and validate it, and run its handler.  *taken
 * counts the requests of its connection handled in this turn.
 *
 * A handler writes straight into the turn's transaction: a nested
 * transaction per request would copy every page the request touches and
 * cost a fifth of the broker's CPU.  Handlers fail only on a store error
 * (a full map, an I/O error), and then, unless `isolate`, the whole batch
 * is undone and run again with each request in a nested transaction of its
 * own, so that the failure costs only the request that met it.
 */
static int
handle_one(struct broker *b, struct store_txn *txn, bool isolate, size_t i,
    struct asked *a, unsigned *taken)
{
	zmq_msg_t		*rid = &batch_rid[i], *body = &batch_body[i];
	struct cc_error		 err;
	struct req		 r;
	struct audit_ev		 ev;
	struct store_txn	*child = NULL;
	const char		*uid;
	size_t			 mark, k;
	int			 rc;

	memset(&r, 0, sizeof(r));
	r.rid = zmq_msg_data(rid);
	r.ridlen = zmq_msg_size(rid);
	r.fd = zmq_msg_get(body, ZMQ_SRCFD);
	r.len = zmq_msg_size(body);
	a->re[0] = '\0';
	a->answered = true;
	if ((r.from = authenticated(b, body, &uid)) == NULL ||
	    (r.peer = broker_peer(b, uid)) == NULL)
		return refuse_invalid(b, &r, body, uid, ERR_NOT_PERMITTED,
		    "agency no longer valid");
	/* A connection beyond the agency's quota of them is not served. */
	if (!quota_connection(b, r.peer, r.fd))
		return refuse_invalid(b, &r, body, uid, ERR_OVER_QUOTA,
		    "too many connections for this agency");
	memcpy(r.key, r.from->cert.key, sizeof(r.key));
	/* A request is one frame (DESIGN §7); more is malformed. */
	if (batch_multi[i]) {
		memset(&err, 0, sizeof(err));
		(void)cc_error_set(&err, ERR_MALFORMED, NULL,
		    "one frame per message");
	}
	if (batch_multi[i] || proto_decode(zmq_msg_data(body),
	    zmq_msg_size(body), b->conf.max_size, &r.msg, &err) == -1) {
		snprintf(a->re, sizeof(a->re), "%s", err.re);
		if (++*taken > CONN_TURN_MAX)
			return shed(b, &r, a);
		log_info("rejected input agency=%s code=%s field=%s",
		    uid, cc_err_name(err.code), err.field[0] ? err.field : "-");
		memset(&ev, 0, sizeof(ev));
		ev.event = EV_INPUT_REJECTED;
		ev.id = err.re[0] ? err.re : NULL;
		ev.sender = uid;
		ev.reason = cc_err_name(err.code);
		ev.at_ms = b->now;
		b->count.n[CNT_REJECTED]++;
		if ((rc = audit_append(b->st, txn, &ev)) != 0)
			return rc;
		return reply_err(b, r.rid, r.ridlen, &err);
	}
	a->answered = proto_op(r.msg) != OP_ACK;
	if (proto_get_str(r.msg, "mid", a->re, sizeof(a->re)) == -1 &&
	    proto_get_str(r.msg, "cid", a->re, sizeof(a->re)) == -1)
		snprintf(a->re, sizeof(a->re), "%s",
		    cc_op_name(proto_op(r.msg)));
	if (a->answered && ++*taken > CONN_TURN_MAX) {
		rc = shed(b, &r, a);
		goto out;
	}

	if (!isolate) {
		r.txn = txn;
		rc = dispatch(b, &r);
		goto out;
	}
	mark = b->nout;
	for (k = 0; k < b->npeer; k++)
		b->peer[k].req_use = b->peer[k].use;
	if ((rc = store_begin_nested(b->st, txn, &child)) != 0)
		goto out;
	r.txn = child;
	if ((rc = dispatch(b, &r)) != 0) {
		store_abort(child);
		out_drop(b, mark);
		for (k = 0; k < b->npeer; k++)
			b->peer[k].use = b->peer[k].req_use;
		memset(&err, 0, sizeof(err));
		snprintf(err.re, sizeof(err.re), "%s", a->re);
		if (rc == STORE_FULL) {
			err.code = ERR_STORAGE_FULL;
			snprintf(err.detail, sizeof(err.detail),
			    "the broker's store is full");
			b->nearly_full = true;
			b->used = b->map;	/* refuse until measured again */
		} else {
			err.code = ERR_BUSY;
			snprintf(err.detail, sizeof(err.detail),
			    "could not be handled now; try again");
			log_warnx("%s from %s failed: %s",
			    cc_op_name(proto_op(r.msg)), uid,
			    store_strerror(rc));
		}
		rc = reply_err(b, r.rid, r.ridlen, &err);
		goto out;
	}
	rc = store_commit(child);
out:
	proto_msg_destroy(&r.msg);
	return rc;
}

/* Handle the n requests of the batch in txn, in order of arrival. */
static int
run_batch(struct broker *b, struct store_txn *txn, bool isolate, size_t n)
{
	static unsigned	 taken[BATCH_MAX];
	static uint16_t	 slot[CONN_SLOTS];
	size_t		 i, conn;
	int		 rc;

	memset(slot, 0, sizeof(slot));
	b->batch_est = 0;
	for (i = 0; i < n; i++) {
		asked[i].ridlen = zmq_msg_size(&batch_rid[i]) <= RID_MAX ?
		    zmq_msg_size(&batch_rid[i]) : RID_MAX;
		memcpy(asked[i].rid, zmq_msg_data(&batch_rid[i]),
		    asked[i].ridlen);
		if ((conn = conn_of(slot, asked, i)) == i)
			taken[conn] = 0;
		if ((rc = handle_one(b, txn, isolate, i, &asked[i],
		    &taken[conn])) != 0)
			return rc;
	}
	return 0;
}

/*
 * Nothing of the turn's transaction happened: no answer is sent, every
 * session is where it was when the turn began (acks of this batch are
 * lost; what they acked is sent again after the next hello), and the
 * subscriptions are read back from the store.  The counters are those of
 * the turn's start.
 */
static void
undo_batch(struct broker *b, const struct counters *count, uint64_t refused)
{
	size_t	i;
	int	rc;

	out_drop(b, 0);
	for (i = 0; i < b->npeer; i++) {
		b->peer[i].cursor = b->peer[i].turn_cursor;
		b->peer[i].inflight = b->peer[i].turn_inflight;
		b->peer[i].use = b->peer[i].turn_use;
	}
	if ((rc = state_load(b)) != 0)
		log_warnx("store: subscriptions not read back: %s",
		    store_strerror(rc));
	b->count = *count;
	b->auth.refused = refused;
}

/*
 * Read one request, or return false when none is waiting.  A request is
 * one routing id and one body frame: the frames after the first of a body
 * sent in several are read and dropped, and *multi set, so the request is
 * refused as malformed and still attributed (the first frame keeps the
 * connection's metadata).
 */
static bool
recv_request(struct broker *b, zmq_msg_t *rid, zmq_msg_t *body, bool *multi)
{
	size_t	optlen;
	int	more;

	for (;;) {
		if (zmq_msg_init(rid) == -1)
			return false;
		if (zmq_msg_recv(rid, b->router, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(rid);
			return false;
		}
		if (zmq_msg_init(body) == -1) {
			zmq_msg_close(rid);
			return false;
		}
		optlen = sizeof(more);
		if (zmq_getsockopt(b->router, ZMQ_RCVMORE, &more,
		    &optlen) == -1 || !more ||
		    zmq_msg_recv(body, b->router, 0) == -1) {
			zmq_msg_close(rid);
			zmq_msg_close(body);
			continue;
		}
		*multi = false;
		for (more = zmq_msg_more(body); more; ) {
			zmq_msg_t extra;

			*multi = true;
			if (zmq_msg_init(&extra) == -1 ||
			    zmq_msg_recv(&extra, b->router, 0) == -1)
				break;
			more = zmq_msg_more(&extra);
			zmq_msg_close(&extra);
		}
		return true;
	}
}

/* Refused handshakes are audited too, aggregated per reason per interval
 * (state.c): a flood of them writes a few entries a minute. */
static int
audit_refused(struct broker *b, struct store_txn *txn)
{
	return state_audit_refused(b, txn, false);
}

/*
 * The pump and the sweeps, in one nested transaction: if they fail,
 * nothing of them was sent and the sessions are as if they never ran; the
 * requests of the turn still commit.
 */
static void
pump(struct broker *b, struct store_txn *txn)
{
	struct store_txn	*child;
	size_t			 mark = b->nout, i;
	int			 rc;

	for (i = 0; i < b->npeer; i++) {
		b->peer[i].saved_cursor = b->peer[i].cursor;
		b->peer[i].saved_inflight = b->peer[i].inflight;
		b->peer[i].saved_use = b->peer[i].use;
	}
	if ((rc = store_begin_nested(b->st, txn, &child)) != 0) {
		log_warnx("delivery: %s", store_strerror(rc));
		return;
	}
	if (b->now >= b->next_sweep) {
		b->next_sweep = b->now + SWEEP_RETRY_MS;
		rc = route_sweep(b, child);
	}
	if (rc == 0 && b->purge_invalid) {
		rc = route_purge_invalid(b, child);
		b->purge_invalid = rc != 0;
	}
	if (rc == 0)
		rc = deliver_pump(b, child);
	/* A commit that fails has ended the transaction too. */
	if (rc != 0)
		store_abort(child);
	else if ((rc = store_commit(child)) == 0)
		return;
	out_drop(b, mark);
	for (i = 0; i < b->npeer; i++) {
		b->peer[i].cursor = b->peer[i].saved_cursor;
		b->peer[i].inflight = b->peer[i].saved_inflight;
		b->peer[i].use = b->peer[i].saved_use;
	}
	log_warnx("delivery: %s", store_strerror(rc));
}

/* Nothing of this batch is on disk: say so, promise nothing. */
static void
fail_batch(struct broker *b, int rc, size_t nasked,
    const struct counters *count0, uint64_t refused0)
{
	struct cc_error	err;
	bool		full = rc == STORE_FULL;
	size_t		i;

	log_warnx("commit failed: %s", store_strerror(rc));
	undo_batch(b, count0, refused0);
	for (i = 0; i < nasked; i++) {
		if (!asked[i].answered)
			continue;
		memset(&err, 0, sizeof(err));
		err.code = full ? ERR_STORAGE_FULL : ERR_BUSY;
		snprintf(err.re, sizeof(err.re), "%s", asked[i].re);
		snprintf(err.detail, sizeof(err.detail),
		    "not stored; send again");
		if (reply_err(b, asked[i].rid, asked[i].ridlen, &err) != 0)
			break;
	}
	if (full)
		b->nearly_full = true;
	/* The disk may have filled: look again at the next turn. */
	b->usage_at = 0;
}

int
batch_turn(struct broker *b)
{
	struct store_txn	*txn = NULL;
	struct counters		 count0;
	uint64_t		 refused0;
	size_t			 nasked = 0, i;
	int			 rc = 0;
	bool			 work = false;

	b->now = cc_time_now_ms();
	capacity_measure(b, false);
	b->batch_est = 0;
	count0 = b->count;
	refused0 = b->auth.refused;
	for (i = 0; i < b->npeer; i++) {
		b->peer[i].turn_cursor = b->peer[i].cursor;
		b->peer[i].turn_inflight = b->peer[i].inflight;
		b->peer[i].turn_use = b->peer[i].use;
	}
	work = b->nrefused > 0 || b->now >= b->next_sweep || b->purge_invalid;

	while (nasked < BATCH_MAX &&
	    recv_request(b, &batch_rid[nasked], &batch_body[nasked],
	    &batch_multi[nasked]))
		nasked++;
	if (nasked > 0) {
		/*
		 * A store error in one request undoes the batch; it is run
		 * again with each request isolated (handle_one).
		 */
		if ((rc = store_begin(b->st, true, &txn)) == 0 &&
		    (rc = run_batch(b, txn, false, nasked)) != 0) {
			log_warnx("store: %s in a batch of %zu; handling each "
			    "on its own", store_strerror(rc), nasked);
			store_abort(txn);
			txn = NULL;
			undo_batch(b, &count0, refused0);
			if ((rc = store_begin(b->st, true, &txn)) == 0)
				rc = run_batch(b, txn, true, nasked);
		}
		for (i = 0; i < nasked; i++) {
			zmq_msg_close(&batch_rid[i]);
			zmq_msg_close(&batch_body[i]);
		}
		if (txn == NULL) {
			log_warnx("store: %s", store_strerror(rc));
			undo_batch(b, &count0, refused0);
			return -1;
		}
	}
	for (i = 0; i < b->npeer && !work; i++)
		work |= b->peer[i].online && b->peer[i].dirty;
	if (txn == NULL && !work)
		return 0;
	if (txn == NULL && (rc = store_begin(b->st, true, &txn)) != 0) {
		log_warnx("store: %s", store_strerror(rc));
		return -1;
	}

	if (rc == 0 && (rc = audit_refused(b, txn)) == 0) {
		pump(b, txn);
		rc = state_save(b, txn);
	}
	if (rc == 0)
		rc = store_commit(txn);
	else
		store_abort(txn);
	/*
	 * Until the store is measured again (once a second), count what the
	 * batch may have added: a fast publisher must not outrun the
	 * measurement and fill the disk between two looks.
	 */
	if (rc == 0)
		b->used += b->batch_est;
	else
		fail_batch(b, rc, nasked, &count0, refused0);
	out_flush(b);
	if (b->shed > 0 && b->now - b->shed_logged >= SHED_LOG_MS) {
		log_warnx("busy: %llu requests beyond a connection's share of "
		    "a turn answered busy, the last from agency=%s",
		    (unsigned long long)b->shed, b->shed_agency);
		b->shed = 0;
		b->shed_logged = b->now;
	}
	return 0;
}
