/*
 * broker.c - the broker's loop: sockets, batches, group commit, reload.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "broker.h"
#include "log.h"

#define SWEEP_RETRY_MS	1000
#define USAGE_EVERY_MS	1000
#define META_COUNTERS	"counters"
#define META_ONLINE	"online"
#define CONN_TURN_MAX	256	/* requests handled per connection per turn */
#define CONN_SLOTS	1024	/* connections of one turn (> 2 x BATCH_MAX) */
#define SHED_LOG_MS	10000	/* at most one line about shedding per 10 s */
#define CONN_FD_SPARE	16	/* descriptors kept for handshakes under way */
#define ZAP_BATCH	256	/* handshakes decided per loop, at most */
#define MONITOR_BATCH	4096	/* monitor events read per loop, at most */

/* What was asked in this batch, to answer `busy` if the commit fails. */
struct asked {
	uint8_t	rid[RID_MAX];
	size_t	ridlen;
	char	re[80];
	bool	answered;	/* expects an answer (acks do not) */
};

/* The user to become (config `user`), looked up before anything opens. */
struct run_as {
	bool	drop;
	uid_t	uid;
	gid_t	gid;
};

static volatile sig_atomic_t	got_term, got_hup;

static void	on_signal(int);
static int	peers_build(struct broker *);
static int	load_state(struct broker *);
static int	save_state(struct broker *, MDB_txn *);
static void	on_refused(void *, const char *, const char *, const char *);
static int	handle_one(struct broker *, MDB_txn *, bool isolate,
		    zmq_msg_t *rid, zmq_msg_t *body, struct asked *,
		    unsigned *taken);
static int	run_batch(struct broker *, MDB_txn *, bool isolate,
		    size_t n);
static void	undo_batch(struct broker *, const struct counters *,
		    uint64_t refused);
static bool	recv_request(struct broker *, zmq_msg_t *rid,
		    zmq_msg_t *body);
static size_t	conn_of(uint16_t *slot, const struct asked *, size_t n);
static int	shed(struct broker *, struct req *, struct asked *);
static int	dispatch(struct broker *, struct req *);
static int	turn(struct broker *);
static void	flush_out(struct broker *);
static void	drop_out(struct broker *, size_t keep);
static void	reload(struct broker *);
static void	measure_usage(struct broker *, bool);
static size_t	reserve_of(size_t);
static void	monitor_read(struct broker *);
static void	conn_track(struct broker *, uint32_t fd, bool open);
static size_t	conn_limit(const struct broker *);
static void	conn_check(struct broker *);
static size_t	fds_open(void);
static void	save_final(struct broker *);
static void	raise_nofile(void);
static void	check_user(const struct broker_conf *, struct run_as *);
static void	drop_privileges(const struct broker_conf *,
		    const struct run_as *);

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
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

struct peer *
broker_peer(struct broker *b, const char *id)
{
	size_t	i;

	for (i = 0; i < b->npeer; i++)
		if (strcmp(b->peer[i].id, id) == 0)
			return &b->peer[i];
	return NULL;
}

/* The policy of a currently valid agency, or NULL (DESIGN §3: an agency no
 * longer valid gets no further service). */
const struct policy *
broker_policy_of(struct broker *b, const char *id)
{
	const struct agency	*a;

	if ((a = auth_agency(&b->auth, id, (time_t)(b->now / 1000))) == NULL ||
	    a->cert.type < 0 || a->cert.type >= AT__COUNT)
		return NULL;
	return &b->conf.policy[a->cert.type];
}

int
reply(struct broker *b, const uint8_t *rid, size_t ridlen, msgpack_sbuffer *sb)
{
	struct outmsg	*o;

	if (b->nout == b->outcap) {
		size_t	 cap = b->outcap ? b->outcap * 2 : 256;
		void	*p = realloc(b->out, cap * sizeof(*b->out));

		if (p == NULL)
			return ENOMEM;
		b->out = p;
		b->outcap = cap;
	}
	o = &b->out[b->nout];
	if ((o->data = malloc(sb->size)) == NULL)
		return ENOMEM;
	memcpy(o->data, sb->data, sb->size);
	o->len = sb->size;
	memcpy(o->rid, rid, ridlen);
	o->ridlen = ridlen;
	b->nout++;
	return 0;
}

void
reply_start(msgpack_sbuffer *sb, msgpack_packer *pk, const char *op,
    size_t nfields)
{
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(pk, nfields + 2);
	(void)proto_pack_header(pk, op);
}

int
reply_finish(struct broker *b, const uint8_t *rid, size_t ridlen,
    msgpack_sbuffer *sb)
{
	int	rc;

	rc = reply(b, rid, ridlen, sb);
	msgpack_sbuffer_destroy(sb);
	return rc;
}

static int
send_error(struct broker *b, const uint8_t *rid, size_t ridlen,
    const struct cc_error *err)
{
	msgpack_sbuffer	sb;

	msgpack_sbuffer_init(&sb);
	if (proto_pack_error(&sb, err) == -1) {
		msgpack_sbuffer_destroy(&sb);
		return ENOMEM;
	}
	return reply_finish(b, rid, ridlen, &sb);
}

int
reply_error(struct broker *b, struct req *r, enum cc_err code,
    const char *field, const char *fmt, ...)
{
	struct cc_error	err;
	va_list		ap;
	const char	*p;
	size_t		n;

	memset(&err, 0, sizeof(err));
	err.code = code;
	if (field != NULL)
		snprintf(err.field, sizeof(err.field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(err.detail, sizeof(err.detail), fmt, ap);
	va_end(ap);
	if (proto_get_strn(r->msg, "mid", &p, &n) == 0 ||
	    proto_get_strn(r->msg, "cid", &p, &n) == 0)
		snprintf(err.re, sizeof(err.re), "%.*s", (int)n, p);
	else
		snprintf(err.re, sizeof(err.re), "%s",
		    cc_op_name(proto_op(r->msg)));
	log_info("refused op=%s agency=%s code=%s field=%s",
	    cc_op_name(proto_op(r->msg)), r->from->cert.cn,
	    cc_err_name(code), field != NULL ? field : "-");
	return send_error(b, r->rid, r->ridlen, &err);
}

/* One peer per agency known from the configuration or the directory. */
static int
peers_build(struct broker *b)
{
	struct peer	*np;
	size_t		 n = 0, i, cap = b->conf.nagency + b->auth.nagency;
	const char	*id;

	if ((np = calloc(cap > 0 ? cap : 1, sizeof(*np))) == NULL)
		return -1;
	for (i = 0; i < b->conf.nagency + b->auth.nagency; i++) {
		struct peer	*old;
		size_t		 j;

		id = i < b->conf.nagency ? b->conf.agency[i].id :
		    b->auth.agency[i - b->conf.nagency].cert.cn;
		for (j = 0; j < n; j++)
			if (strcmp(np[j].id, id) == 0)
				break;
		if (j < n)
			continue;
		if ((old = broker_peer(b, id)) != NULL)
			np[n] = *old;
		else
			snprintf(np[n].id, sizeof(np[n].id), "%s", id);
		n++;
	}
	free(b->peer);
	b->peer = np;
	b->npeer = n;
	return 0;
}

/* Subscriptions and counters survive restarts. */
static int
load_state(struct broker *b)
{
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	char		 id[CC_ID_MAX + 1];
	struct peer	*p;
	int		 rc;

	if ((rc = store_begin(&b->st, false, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, b->st.subs, &cur)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		if (k.mv_size > CC_ID_MAX || v.mv_size != sizeof(struct sub))
			continue;
		memcpy(id, k.mv_data, k.mv_size);
		id[k.mv_size] = '\0';
		if ((p = broker_peer(b, id)) == NULL)
			continue;
		memcpy(&p->sub, v.mv_data, sizeof(p->sub));
		p->has_sub = true;
	}
	mdb_cursor_close(cur);
	k.mv_size = sizeof(META_COUNTERS) - 1;
	k.mv_data = META_COUNTERS;
	if (mdb_get(txn, b->st.meta, &k, &v) == 0 &&
	    v.mv_size == sizeof(struct saved_counters)) {
		struct saved_counters sc;

		memcpy(&sc, v.mv_data, sizeof(sc));
		b->count = sc.c;
		b->auth.refused = sc.refused;
	}
	mdb_txn_abort(txn);
	return 0;
}

/*
 * What a turn records besides its requests: the next dseq and the head of
 * the audit chain, then counters and who is online, for `ccbroker stats`
 * in another process.
 */
static int
save_state(struct broker *b, MDB_txn *txn)
{
	struct saved_counters cnt;
	char		 online[4096];
	size_t		 i, n = 0;
	MDB_val		 k, v;
	int		 rc;

	if ((rc = store_save_dseq(&b->st, txn)) != 0 ||
	    (rc = audit_seal(&b->st, txn)) != 0)
		return rc;
	memset(&cnt, 0, sizeof(cnt));
	cnt.c = b->count;
	cnt.refused = b->auth.refused;
	k.mv_size = sizeof(META_COUNTERS) - 1;
	k.mv_data = META_COUNTERS;
	v.mv_size = sizeof(cnt);
	v.mv_data = &cnt;
	if ((rc = mdb_put(txn, b->st.meta, &k, &v, 0)) != 0)
		return rc;
	for (i = 0; i < b->npeer; i++) {
		size_t l = strlen(b->peer[i].id) + 1;

		if (!b->peer[i].online || !b->peer[i].connected ||
		    n + l > sizeof(online))
			continue;
		memcpy(online + n, b->peer[i].id, l);
		n += l;
	}
	k.mv_size = sizeof(META_ONLINE) - 1;
	k.mv_data = META_ONLINE;
	v.mv_size = n;
	v.mv_data = online;
	return mdb_put(txn, b->st.meta, &k, &v, 0);
}

static void
on_refused(void *arg, const char *agency, const char *fp, const char *why)
{
	struct broker	*b = arg;

	(void)fp;
	if (b->nrefused == sizeof(b->refused) / sizeof(b->refused[0]))
		return;
	snprintf(b->refused[b->nrefused].agency, CC_ID_MAX + 1, "%s",
	    agency != NULL ? agency : "");
	snprintf(b->refused[b->nrefused].why, 64, "%s", why);
	b->nrefused++;
}

static int
dispatch(struct broker *b, struct req *r)
{
	switch (proto_op(r->msg)) {
	case OP_HELLO:
		return handle_hello(b, r);
	case OP_SUBSCRIBE:
		return handle_subscribe(b, r);
	case OP_PUBLISH:
		return handle_publish(b, r);
	case OP_CONSENT_GRANT:
		return handle_consent_grant(b, r);
	case OP_CONSENT_WITHDRAW:
		return handle_consent_withdraw(b, r);
	case OP_CONSENT_REFUSE:
		return handle_consent_refuse(b, r);
	case OP_ACK:
		return handle_ack(b, r);
	case OP_TRACK:
		return handle_track(b, r);
	default:
		return reply_error(b, r, ERR_UNKNOWN_OP, "op",
		    "not an op an agency may send");
	}
}

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
conn_of(uint16_t *slot, const struct asked *asked, size_t n)
{
	const struct asked	*a = &asked[n];
	uint32_t		 h = 2166136261u;
	size_t			 i;

	for (i = 0; i < a->ridlen; i++)
		h = (h ^ a->rid[i]) * 16777619u;
	for (i = h & (CONN_SLOTS - 1); slot[i] != 0;
	    i = (i + 1) & (CONN_SLOTS - 1)) {
		const struct asked *f = &asked[slot[i] - 1];

		if (f->ridlen == a->ridlen &&
		    memcmp(f->rid, a->rid, a->ridlen) == 0)
			return slot[i] - 1;
	}
	slot[i] = (uint16_t)(n + 1);
	return n;
}

/* A request beyond its connection's share of this turn: `busy`. */
static int
shed(struct broker *b, struct req *r, struct asked *asked)
{
	struct cc_error	err;

	memset(&err, 0, sizeof(err));
	err.code = ERR_BUSY;
	snprintf(err.re, sizeof(err.re), "%s", asked->re);
	snprintf(err.detail, sizeof(err.detail), "too many requests at once; "
	    "send again after the answers");
	asked->answered = false;	/* answered now, whatever the commit */
	b->shed++;
	snprintf(b->shed_agency, sizeof(b->shed_agency), "%s",
	    r->from->cert.cn);
	return send_error(b, r->rid, r->ridlen, &err);
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
 * own, so that the failure costs only the request that met it (turn()).
 */
static int
handle_one(struct broker *b, MDB_txn *txn, bool isolate, zmq_msg_t *rid,
    zmq_msg_t *body, struct asked *asked, unsigned *taken)
{
	struct cc_error	 err;
	struct req	 r;
	struct audit_ev	 ev;
	const char	*uid;
	MDB_txn		*child = NULL;
	size_t		 mark;
	int		 rc;

	memset(&r, 0, sizeof(r));
	r.rid = zmq_msg_data(rid);
	r.ridlen = zmq_msg_size(rid);
	r.fd = zmq_msg_get(body, ZMQ_SRCFD);
	r.len = zmq_msg_size(body);
	memcpy(asked->rid, r.rid, r.ridlen);
	asked->ridlen = r.ridlen;
	asked->re[0] = '\0';
	asked->answered = true;
	uid = zmq_msg_gets(body, "User-Id");
	if (uid == NULL || (r.from = auth_agency(&b->auth, uid,
	    (time_t)(b->now / 1000))) == NULL ||
	    (r.peer = broker_peer(b, uid)) == NULL) {
		/*
		 * Certificate revoked or expired since the handshake.  The
		 * frame is read only to say which request is refused.
		 */
		memset(&err, 0, sizeof(err));
		if (proto_decode(zmq_msg_data(body), zmq_msg_size(body),
		    b->conf.max_size, &r.msg, &err) == 0) {
			if (proto_get_str(r.msg, "mid", err.re,
			    sizeof(err.re)) == -1 &&
			    proto_get_str(r.msg, "cid", err.re,
			    sizeof(err.re)) == -1)
				snprintf(err.re, sizeof(err.re), "%s",
				    cc_op_name(proto_op(r.msg)));
			proto_msg_destroy(&r.msg);
		}
		err.code = ERR_NOT_PERMITTED;
		err.field[0] = '\0';
		snprintf(err.detail, sizeof(err.detail),
		    "agency no longer valid");
		log_warnx("refused request agency=%s reason=no longer valid",
		    uid != NULL ? uid : "?");
		return send_error(b, r.rid, r.ridlen, &err);
	}
	if (proto_decode(zmq_msg_data(body), zmq_msg_size(body),
	    b->conf.max_size, &r.msg, &err) == -1) {
		snprintf(asked->re, sizeof(asked->re), "%s", err.re);
		if (++*taken > CONN_TURN_MAX)
			return shed(b, &r, asked);
		log_info("rejected input agency=%s code=%s field=%s",
		    uid, cc_err_name(err.code), err.field[0] ? err.field : "-");
		memset(&ev, 0, sizeof(ev));
		ev.event = EV_INPUT_REJECTED;
		ev.id = err.re[0] ? err.re : NULL;
		ev.sender = uid;
		ev.reason = cc_err_name(err.code);
		b->count.rejected++;
		if ((rc = audit_append(&b->st, txn, &ev)) != 0)
			return rc;
		return send_error(b, r.rid, r.ridlen, &err);
	}
	asked->answered = proto_op(r.msg) != OP_ACK;
	if (proto_get_str(r.msg, "mid", asked->re, sizeof(asked->re)) == -1 &&
	    proto_get_str(r.msg, "cid", asked->re, sizeof(asked->re)) == -1)
		snprintf(asked->re, sizeof(asked->re), "%s",
		    cc_op_name(proto_op(r.msg)));
	if (asked->answered && ++*taken > CONN_TURN_MAX) {
		rc = shed(b, &r, asked);
		goto out;
	}

	if (!isolate) {
		r.txn = txn;
		rc = dispatch(b, &r);
		goto out;
	}
	mark = b->nout;
	if ((rc = mdb_txn_begin(b->st.env, txn, 0, &child)) != 0)
		goto out;
	r.txn = child;
	if ((rc = dispatch(b, &r)) != 0) {
		mdb_txn_abort(child);
		drop_out(b, mark);
		memset(&err, 0, sizeof(err));
		snprintf(err.re, sizeof(err.re), "%s", asked->re);
		if (rc == MDB_MAP_FULL) {
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
			    cc_op_name(proto_op(r.msg)), uid, mdb_strerror(rc));
		}
		rc = send_error(b, r.rid, r.ridlen, &err);
		goto out;
	}
	rc = mdb_txn_commit(child);
out:
	proto_msg_destroy(&r.msg);
	return rc;
}

static void
drop_out(struct broker *b, size_t keep)
{
	while (b->nout > keep)
		free(b->out[--b->nout].data);
}

/* Send everything the committed batch produced. */
static void
flush_out(struct broker *b)
{
	size_t	i;

	for (i = 0; i < b->nout; i++) {
		struct outmsg *o = &b->out[i];

		if (zmq_send(b->router, o->rid, o->ridlen, ZMQ_SNDMORE |
		    ZMQ_DONTWAIT) == -1 || zmq_send(b->router, o->data,
		    o->len, ZMQ_DONTWAIT) == -1) {
			size_t j;

			/* Gone: its session ends; unacked entries wait. */
			for (j = 0; j < b->npeer; j++) {
				struct peer *p = &b->peer[j];

				if (p->online && p->ridlen == o->ridlen &&
				    memcmp(p->rid, o->rid, o->ridlen) == 0) {
					log_info("agency=%s disconnected",
					    p->id);
					p->online = false;
				}
			}
		}
		free(o->data);
	}
	b->nout = 0;
}

/*
 * The store is measured at most once a second, or sooner when a publish
 * gets near the mark: publishes are refused above FULL_PERCENT so that
 * acks, consent changes and purges (which need pages too, LMDB being
 * copy-on-write) always find room.
 */
static void
measure_usage(struct broker *b, bool now)
{
	bool	was = b->nearly_full;
	size_t	disk;

	if (!now && b->now - b->usage_at < USAGE_EVERY_MS)
		return;
	if (store_usage(&b->st, &b->used, &b->map) != 0)
		return;
	/*
	 * A map larger than its filesystem can hold is limited by the
	 * filesystem: a publish is refused before a write could fail for
	 * want of space.  And the reserve is held on disk, allocated past
	 * the last page, so that acks and consent changes still find
	 * blocks when something else fills the filesystem.
	 */
	if (store_disk_bytes(&b->st, &disk) == 0 && disk < b->map)
		b->map = disk;
	(void)store_hold_disk(&b->st, reserve_of(b->map));
	b->usage_at = b->now;
	b->nearly_full = b->used + reserve_of(b->map) > b->map;
	if (b->nearly_full != was)
		log_warnx("store %s: %zu of %zu bytes used",
		    b->nearly_full ? "full, refusing publishes" : "has room again",
		    b->used, b->map);
}

/*
 * The reserve kept free for everything but publishes: a tenth of the map,
 * and at least 8 MiB (half of a small map), because LMDB needs runs of
 * contiguous free pages for large values and its own free list, and a
 * fragmented store runs out of those long before it runs out of pages.
 */
static size_t
reserve_of(size_t map)
{
	size_t	r = map / 10, floor = 8u << 20;

	if (floor > map / 2)
		floor = map / 2;
	return r > floor ? r : floor;
}

bool
broker_room(struct broker *b, size_t cost)
{
	if (b->used + b->batch_est + cost + reserve_of(b->map) <= b->map)
		goto room;
	/* Committed batches may have freed pages since: look again. */
	if (b->now - b->usage_at >= USAGE_EVERY_MS / 10)
		measure_usage(b, true);
	if (b->used + b->batch_est + cost + reserve_of(b->map) > b->map) {
		if (!b->nearly_full)
			log_warnx("store full, refusing publishes: %zu of %zu "
			    "bytes used", b->used, b->map);
		b->nearly_full = true;
		return false;
	}
room:
	b->batch_est += cost;
	return true;
}

/* The requests of this turn: routing id and body of each. */
static zmq_msg_t	batch_rid[BATCH_MAX], batch_body[BATCH_MAX];
static struct asked	asked[BATCH_MAX];

/* Handle the n requests of the batch in txn, in order of arrival. */
static int
run_batch(struct broker *b, MDB_txn *txn, bool isolate, size_t n)
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
		if ((rc = handle_one(b, txn, isolate, &batch_rid[i],
		    &batch_body[i], &asked[i], &taken[conn])) != 0)
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

	drop_out(b, 0);
	for (i = 0; i < b->npeer; i++) {
		b->peer[i].cursor = b->peer[i].turn_cursor;
		b->peer[i].inflight = b->peer[i].turn_inflight;
	}
	(void)load_state(b);
	b->count = *count;
	b->auth.refused = refused;
}

/*
 * Read one request, or return false when none is waiting.  A request is
 * one routing id and one body frame: a body of several frames is made a
 * malformed one (0xc1, never valid msgpack).
 */
static bool
recv_request(struct broker *b, zmq_msg_t *rid, zmq_msg_t *body)
{
	size_t	optlen;
	int	more;

	for (;;) {
		zmq_msg_init(rid);
		if (zmq_msg_recv(rid, b->router, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(rid);
			return false;
		}
		zmq_msg_init(body);
		optlen = sizeof(more);
		if (zmq_getsockopt(b->router, ZMQ_RCVMORE, &more,
		    &optlen) == -1 || !more ||
		    zmq_msg_recv(body, b->router, 0) == -1) {
			zmq_msg_close(rid);
			zmq_msg_close(body);
			continue;
		}
		while (zmq_msg_more(body)) {
			zmq_msg_t extra;

			zmq_msg_init(&extra);
			if (zmq_msg_recv(&extra, b->router, 0) == -1)
				break;
			more = zmq_msg_more(&extra);
			zmq_msg_close(&extra);
			if (!more) {
				zmq_msg_close(body);
				zmq_msg_init_size(body, 1);
				*(uint8_t *)zmq_msg_data(body) = 0xc1;
				break;
			}
		}
		return true;
	}
}

/*
 * One turn: every waiting request in one transaction, then the pump and
 * the sweeps, one commit, then the answers.
 */
static int
turn(struct broker *b)
{
	MDB_txn			*txn = NULL, *child;
	struct counters		 count0;
	uint64_t		 refused0;
	size_t			 nasked = 0, i, mark;
	int			 rc = 0;
	bool			 pump = false, full;

	b->now = cc_time_now_ms();
	measure_usage(b, false);
	b->batch_est = 0;
	count0 = b->count;
	refused0 = b->auth.refused;
	for (i = 0; i < b->npeer; i++) {
		b->peer[i].turn_cursor = b->peer[i].cursor;
		b->peer[i].turn_inflight = b->peer[i].inflight;
	}
	for (i = 0; i < b->npeer; i++)
		pump |= b->peer[i].online && b->peer[i].dirty;
	pump |= b->nrefused > 0 || b->now >= b->next_sweep ||
	    b->purge_invalid;

	while (nasked < BATCH_MAX &&
	    recv_request(b, &batch_rid[nasked], &batch_body[nasked]))
		nasked++;
	if (nasked > 0) {
		/*
		 * A store error in one request undoes the batch; it is run
		 * again with each request isolated (handle_one).
		 */
		if ((rc = store_begin(&b->st, true, &txn)) == 0 &&
		    (rc = run_batch(b, txn, false, nasked)) != 0) {
			log_warnx("store: %s in a batch of %zu; handling each "
			    "on its own", mdb_strerror(rc), nasked);
			mdb_txn_abort(txn);
			txn = NULL;
			undo_batch(b, &count0, refused0);
			if ((rc = store_begin(&b->st, true, &txn)) == 0)
				rc = run_batch(b, txn, true, nasked);
		}
		for (i = 0; i < nasked; i++) {
			zmq_msg_close(&batch_rid[i]);
			zmq_msg_close(&batch_body[i]);
		}
		if (txn == NULL) {
			log_warnx("store: %s", mdb_strerror(rc));
			return -1;
		}
	}
	for (i = 0; i < b->npeer && !pump; i++)
		pump |= b->peer[i].online && b->peer[i].dirty;
	if (txn == NULL && !pump)
		return 0;
	if (txn == NULL && (rc = store_begin(&b->st, true, &txn)) != 0) {
		log_warnx("store: %s", mdb_strerror(rc));
		return -1;
	}

	/* Refused handshakes are audited too. */
	for (i = 0; rc == 0 && i < b->nrefused; i++) {
		struct audit_ev ev;

		memset(&ev, 0, sizeof(ev));
		ev.event = EV_CONNECTION_REFUSED;
		ev.sender = b->refused[i].agency[0] ? b->refused[i].agency :
		    NULL;
		ev.reason = b->refused[i].why;
		rc = audit_append(&b->st, txn, &ev);
	}
	b->nrefused = 0;

	/* The pump and the sweep, in one nested transaction. */
	mark = b->nout;
	for (i = 0; i < b->npeer; i++) {
		b->peer[i].saved_cursor = b->peer[i].cursor;
		b->peer[i].saved_inflight = b->peer[i].inflight;
	}
	if (rc == 0 && (rc = mdb_txn_begin(b->st.env, txn, 0, &child)) == 0) {
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
		if (rc == 0)
			rc = mdb_txn_commit(child);
		else {
			/* Nothing of the pump was sent: as if it never ran. */
			mdb_txn_abort(child);
			drop_out(b, mark);
			for (i = 0; i < b->npeer; i++) {
				b->peer[i].cursor = b->peer[i].saved_cursor;
				b->peer[i].inflight = b->peer[i].saved_inflight;
			}
			log_warnx("delivery: %s", mdb_strerror(rc));
			rc = 0;
		}
	}
	if (rc == 0)
		rc = save_state(b, txn);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	/*
	 * Until the store is measured again (once a second), count what the
	 * batch may have added: a fast publisher must not outrun the
	 * measurement and fill the disk between two looks.
	 */
	if (rc == 0)
		b->used += b->batch_est;
	if (rc != 0) {
		/* Nothing of this batch is on disk: say so, promise nothing. */
		log_warnx("commit failed: %s", mdb_strerror(rc));
		full = rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT;
		undo_batch(b, &count0, refused0);
		for (i = 0; i < nasked; i++) {
			struct cc_error err;

			if (!asked[i].answered)
				continue;
			memset(&err, 0, sizeof(err));
			err.code = full ? ERR_STORAGE_FULL : ERR_BUSY;
			snprintf(err.re, sizeof(err.re), "%s", asked[i].re);
			snprintf(err.detail, sizeof(err.detail),
			    "not stored; send again");
			(void)send_error(b, asked[i].rid, asked[i].ridlen, &err);
		}
		if (full)
			b->nearly_full = true;
		/* The disk may have filled: look again at the next turn. */
		b->usage_at = 0;
	}
	flush_out(b);
	if (b->shed > 0 && b->now - b->shed_logged >= SHED_LOG_MS) {
		log_warnx("busy: %llu requests beyond a connection's share of "
		    "a turn answered busy, the last from agency=%s",
		    (unsigned long long)b->shed, b->shed_agency);
		b->shed = 0;
		b->shed_logged = b->now;
	}
	return 0;
}

/*
 * A ROUTER says nothing when a peer comes or goes; its monitor does,
 * naming the socket.  Disconnects tell `stats` who is connected (hello
 * recorded the socket; delivery itself notices a vanished peer when
 * sending to it fails); both kinds count the connections against the
 * descriptor limit.  All waiting events are read: libzmq's I/O thread
 * blocks on a full monitor pipe, and a flood of handshakes makes two
 * events each.
 */
static void
monitor_read(struct broker *b)
{
	zmq_msg_t	ev, addr;
	uint16_t	event;
	uint32_t	value;
	size_t		i, n;

	for (n = 0; n < MONITOR_BATCH; n++) {
		zmq_msg_init(&ev);
		zmq_msg_init(&addr);
		if (zmq_msg_recv(&ev, b->monitor, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&ev);
			zmq_msg_close(&addr);
			break;
		}
		if (zmq_msg_more(&ev) &&
		    zmq_msg_recv(&addr, b->monitor, 0) == -1)
			goto next;
		if (zmq_msg_size(&ev) < 6)
			goto next;
		memcpy(&event, zmq_msg_data(&ev), 2);
		memcpy(&value, (uint8_t *)zmq_msg_data(&ev) + 2, 4);
		if (event == ZMQ_EVENT_ACCEPTED)
			conn_track(b, value, true);
		if (event != ZMQ_EVENT_DISCONNECTED)
			goto next;
		conn_track(b, value, false);
		for (i = 0; i < b->npeer; i++) {
			if (b->peer[i].connected &&
			    b->peer[i].fd == (int)value) {
				b->peer[i].connected = false;
				log_info("agency=%s disconnected",
				    b->peer[i].id);
				b->peer[i].dirty = true; /* save_state runs */
			}
		}
next:
		zmq_msg_close(&ev);
		zmq_msg_close(&addr);
	}
}

/*
 * Out of descriptors, libzmq cannot accept a connection and retries at
 * once, for ever: the connection hangs unanswered and an I/O thread
 * spins.  So the broker refuses handshakes (ZAP: "connection limit
 * reached") once its connections use what the descriptor limit leaves:
 * a refused client hears so at once, its descriptor is freed, and the
 * connections the broker has keep theirs.  Connections are counted by
 * descriptor, so a lost event corrects itself when the number is reused.
 */
static void
conn_track(struct broker *b, uint32_t fd, bool open)
{
	if (fd >= b->conncap) {
		size_t	 cap = b->conncap ? b->conncap : 1024;
		bool	*p;

		if (!open)
			return;
		while (cap <= fd)
			cap *= 2;
		if ((p = realloc(b->conn, cap * sizeof(*p))) == NULL)
			return;
		memset(p + b->conncap, 0, (cap - b->conncap) * sizeof(*p));
		b->conn = p;
		b->conncap = cap;
	}
	if (b->conn[fd] == open)
		return;
	b->conn[fd] = open;
	if (open)
		b->nconn++;
	else
		b->nconn--;
}

/* Connections the soft descriptor limit leaves room for: less what the
 * broker held before its first peer, less a spare for handshakes under
 * way (each holds a descriptor before ZAP is asked). */
static size_t
conn_limit(const struct broker *b)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
	    rl.rlim_cur == RLIM_INFINITY)
		return SIZE_MAX;
	if (rl.rlim_cur <= b->fds_base + CONN_FD_SPARE)
		return 0;
	return rl.rlim_cur - b->fds_base - CONN_FD_SPARE;
}

/* Before handshakes are decided: at the limit?  Said once each way. */
static void
conn_check(struct broker *b)
{
	size_t	limit = conn_limit(b);
	bool	full = b->nconn > limit;	/* the asker is counted */

	if (full != b->auth.full) {
		if (full)
			log_warnx("connection limit reached: %zu connections, "
			    "%zu allowed by the descriptor limit; refusing "
			    "new ones", b->nconn - 1, limit);
		else
			log_info("below the connection limit again: %zu "
			    "connections", b->nconn);
	}
	b->auth.full = full;
}

/* Descriptors open now (the broker's own, before any peer). */
static size_t
fds_open(void)
{
	struct rlimit	rl;
	size_t		n = 0;
	int		fd, max = 65536;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max)
		max = (int)rl.rlim_cur;
	for (fd = 0; fd < max; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/* Nobody is connected to a stopped broker: say so to `stats`. */
static void
save_final(struct broker *b)
{
	MDB_txn	*txn;
	size_t	 i;

	for (i = 0; i < b->npeer; i++)
		b->peer[i].connected = false;
	if (store_begin(&b->st, true, &txn) != 0)
		return;
	if (save_state(b, txn) != 0) {
		mdb_txn_abort(txn);
		log_warnx("could not record the final state");
	} else if (mdb_txn_commit(txn) != 0)
		log_warnx("could not record the final state");
}

static void
reload(struct broker *b)
{
	struct broker_conf	nc;
	struct auth		na;
	char			err[512];

	memset(&nc, 0, sizeof(nc));
	memset(&na, 0, sizeof(na));
	if (broker_conf_load(b->conf.path, &nc, err, sizeof(err)) == -1) {
		log_warnx("reload: %s; keeping the running configuration",
		    err);
		return;
	}
	if (auth_load(&na, &nc, err, sizeof(err)) == -1) {
		log_warnx("reload: %s; keeping the running configuration",
		    err);
		broker_conf_free(&nc);
		return;
	}
	/* Keep the ZAP socket and counters; swap the rest. */
	na.zap = b->auth.zap;
	na.refused = b->auth.refused;
	na.full = b->auth.full;
	b->auth.zap = NULL;
	auth_clear(&b->auth);
	broker_conf_free(&b->conf);
	b->conf = nc;
	b->auth = na;
	if (peers_build(b) == -1)
		fatalx("reload: out of memory");
	b->purge_invalid = true;
	log_info("reloaded: %zu valid agencies", b->auth.nagency);
}

/*
 * Every connection costs a file descriptor, and a distribution's default
 * soft limit (1024) is far below what a partnership with a thousand
 * connections needs; the hard limit is what the administrator allows.
 */
static void
raise_nofile(void)
{
	struct rlimit	rl;
	rlim_t		old;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	old = rl.rlim_cur;
	if (rl.rlim_cur == rl.rlim_max)
		return;
	/* Never "unlimited": the kernel refuses more than nr_open. */
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 65536 : rl.rlim_max;
	if (rl.rlim_cur <= old)
		return;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("cannot raise the file descriptor limit from %llu",
		    (unsigned long long)old);
	else
		log_info("file descriptor limit raised from %llu to %llu",
		    (unsigned long long)old, (unsigned long long)rl.rlim_cur);
}

/*
 * Started as root with `user` set, the broker becomes that user for good
 * after the socket is bound and the store and keys are open, before the
 * first peer is served.  Nothing is chowned: the data directory and
 * everything in it must already belong to the user, so that a broker
 * restarted as that user (or `ccbroker backup` run as it) finds its own
 * files; that is checked first, before anything is opened.
 */
static void
check_user(const struct broker_conf *c, struct run_as *ra)
{
	struct passwd	*pw;
	struct stat	 sb;
	struct dirent	*de;
	DIR		*d;
	char		 path[PATH_MAX + 256];

	memset(ra, 0, sizeof(*ra));
	if (geteuid() != 0 || c->user[0] == '\0')
		return;
	if ((pw = getpwnam(c->user)) == NULL)
		fatalx("%s: user '%s': no such user", c->path, c->user);
	if (pw->pw_uid == 0)
		fatalx("%s: user '%s' is root; name an unprivileged user",
		    c->path, c->user);
	ra->drop = true;
	ra->uid = pw->pw_uid;
	ra->gid = pw->pw_gid;
	if ((d = opendir(c->data)) == NULL)
		fatal("%s", c->data);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", c->data, de->d_name);
		if (lstat(path, &sb) == -1)
			fatal("%s", path);
		if (sb.st_uid != ra->uid)
			fatalx("%s: owned by uid %u, not by %s; chown -R %s %s",
			    path, (unsigned)sb.st_uid, c->user, c->user,
			    c->data);
	}
	closedir(d);
}

/*
 * setuid as root sets the real, effective and saved ids, so root cannot
 * be taken back; that is checked, not assumed.  glibc applies each call
 * to every thread, libzmq's included.
 */
static void
drop_privileges(const struct broker_conf *c, const struct run_as *ra)
{
	if (!ra->drop) {
		if (geteuid() == 0)
			log_warnx("running as root: set user in [broker] to "
			    "run as an unprivileged user");
		return;
	}
	if (initgroups(c->user, ra->gid) == -1 || setgid(ra->gid) == -1 ||
	    setuid(ra->uid) == -1)
		fatal("cannot become %s", c->user);
	if (setuid(0) != -1 || seteuid(0) != -1 || getuid() != ra->uid ||
	    geteuid() != ra->uid || getegid() != ra->gid)
		fatalx("could take root back after becoming %s", c->user);
	log_info("running as %s (uid %u, gid %u)", c->user,
	    (unsigned)ra->uid, (unsigned)ra->gid);
}

int
broker_run(const char *path)
{
	struct broker	 b;
	struct sigaction sa;
	char		 err[512], z85[41];
	uint8_t		 sec[32], pub[32];
	struct pki_cert	 self;
	struct run_as	 ra;
	int		 status = 0;
	int		 one = 1, zero = 0, rc, hwm = 100000, rcvhwm = 1000;
	int64_t		 maxmsg;
	zmq_pollitem_t	 items[3];

	memset(&b, 0, sizeof(b));
	if (broker_conf_load(path, &b.conf, err, sizeof(err)) == -1)
		fatalx("%s", err);
	/*
	 * What refuses a start comes before the agency directory, which
	 * logs what it finds: a refusal is then the one line said.
	 */
	check_user(&b.conf, &ra);
	if (pki_key_read(b.conf.key, sec, pub, err, sizeof(err)) == -1)
		fatalx("%s", err);
	/* Agents pin the certificate's key: the two must be one pair. */
	if (pki_cert_read(b.conf.certificate, &self, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (memcmp(self.key, pub, sizeof(pub)) != 0)
		fatalx("%s: does not hold the public key of %s",
		    b.conf.certificate, b.conf.key);
	if (store_open(&b.st, b.conf.data, b.conf.map_size_mb, false, err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
	if (auth_load(&b.auth, &b.conf, err, sizeof(err)) == -1)
		fatalx("%s", err);
	raise_nofile();
	if (peers_build(&b) == -1 || load_state(&b) != 0)
		fatalx("cannot read state from %s", b.conf.data);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((b.ctx = zmq_ctx_new()) == NULL)
		fatalx("zmq_ctx_new: %s", zmq_strerror(errno));
	if (auth_zap_bind(&b.auth, b.ctx) == -1)
		fatalx("cannot bind the ZAP handler: %s", zmq_strerror(errno));
	if ((b.router = zmq_socket(b.ctx, ZMQ_ROUTER)) == NULL)
		fatalx("zmq_socket: %s", zmq_strerror(errno));
	/*
	 * Frames above max_size are answered `too-large`; far larger ones are
	 * cut off by libzmq before they are read into memory.
	 */
	maxmsg = (int64_t)b.conf.max_size * 16;
	if (maxmsg < 1 << 20)
		maxmsg = 1 << 20;
	zmq_z85_encode(z85, sec, 32);
	rc = zmq_setsockopt(b.router, ZMQ_CURVE_SERVER, &one, sizeof(one));
	rc |= zmq_setsockopt(b.router, ZMQ_CURVE_SECRETKEY, z85, 40);
	rc |= zmq_setsockopt(b.router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN,
	    strlen(ZAP_DOMAIN));
	rc |= zmq_setsockopt(b.router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	rc |= zmq_setsockopt(b.router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	rc |= zmq_setsockopt(b.router, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	/*
	 * Frames read from one connection and not yet taken by a turn: a
	 * client sending faster than it is served meets back-pressure here
	 * (TCP stops) instead of growing the broker's memory.  Agents keep
	 * far fewer in flight.
	 */
	rc |= zmq_setsockopt(b.router, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
	rc |= zmq_setsockopt(b.router, ZMQ_LINGER, &zero, sizeof(zero));
	explicit_bzero(sec, sizeof(sec));
	explicit_bzero(z85, sizeof(z85));
	if (rc != 0)
		fatalx("cannot configure the socket: %s", zmq_strerror(errno));
	if (zmq_bind(b.router, b.conf.bind) == -1)
		fatalx("%s: bind %s: %s", path, b.conf.bind,
		    zmq_strerror(errno));
	if (zmq_socket_monitor(b.router, "inproc://ccbroker-monitor",
	    ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) == -1 ||
	    (b.monitor = zmq_socket(b.ctx, ZMQ_PAIR)) == NULL ||
	    zmq_connect(b.monitor, "inproc://ccbroker-monitor") == -1)
		fatalx("cannot monitor the socket: %s", zmq_strerror(errno));
	log_info("listening on %s, %zu valid agencies, data %s", b.conf.bind,
	    b.auth.nagency, b.conf.data);
	drop_privileges(&b.conf, &ra);
	b.fds_base = fds_open();

	b.next_sweep = 0;
	b.purge_invalid = true;
	while (!got_term) {
		bool busy = false;
		int64_t wait;
		size_t i;

		if (got_hup) {
			got_hup = 0;
			reload(&b);
		}
		for (i = 0; i < b.npeer; i++)
			busy |= b.peer[i].online && b.peer[i].dirty &&
			    b.peer[i].inflight < b.conf.window;
		items[0].socket = b.router;
		items[0].events = ZMQ_POLLIN;
		items[1].socket = b.auth.zap;
		items[1].events = ZMQ_POLLIN;
		items[2].socket = b.monitor;
		items[2].events = ZMQ_POLLIN;
		wait = 1000;
		if (b.next_sweep - cc_time_now_ms() < wait)
			wait = b.next_sweep - cc_time_now_ms();
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
		 * batch of handshakes per loop, as many refusals as the audit
		 * of the next turn holds, so that a flood of them cannot keep
		 * the loop from serving requests.
		 */
		if (items[2].revents & ZMQ_POLLIN)
			monitor_read(&b);
		if (items[1].revents & ZMQ_POLLIN) {
			size_t n = 0;

			conn_check(&b);
			while (n++ < ZAP_BATCH && b.nrefused <
			    sizeof(b.refused) / sizeof(b.refused[0]) &&
			    auth_zap_handle(&b.auth, time(NULL), on_refused,
			    &b) == 1)
				;
		}
		/*
		 * The store cannot begin a transaction (LMDB says so after a
		 * failed write of its meta page): stop, non-zero, promising
		 * nothing more; a restart reopens it at its last commit.
		 */
		if (turn(&b) == -1) {
			log_warnx("store unusable; stopping for a restart");
			status = 1;
			break;
		}
	}
	log_info("stopping");
	save_final(&b);
	zmq_close(b.monitor);
	zmq_close(b.router);
	auth_zap_close(&b.auth);
	zmq_ctx_term(b.ctx);
	store_close(&b.st);
	auth_clear(&b.auth);
	broker_conf_free(&b.conf);
	drop_out(&b, 0);
	free(b.out);
	free(b.peer);
	free(b.conn);
	return status;
}
