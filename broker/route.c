/*
 * route.c - who gets a message, and taking it back.
 *
 * Recipients are the agencies in `to`, or else the subscribers of the
 * record's type and area; each then passes decide() on its own.  Queued
 * deliveries are re-decided whenever the subject's consents change, and
 * dropped (purged) when the decision no longer permits them; the retention
 * sweep expires what waited too long.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "log.h"
#include "notice.h"
#include "route.h"

#define SWEEP_TURN_MAX	256	/* expiry entries handled per turn */

static bool	sub_matches(const struct sub *, int rtype, const char *area);
struct routing;
static void	routing_init(struct routing *, struct broker *,
		    struct store_txn *, const struct cc_msg *, const char *,
		    const struct msg_hdr *, size_t);
static int	candidates(struct routing *,
		    int (*)(struct routing *, const char *));
static int	route_one(struct routing *, const char *recipient);
static int	past_one(const char *, const struct rstate *, void *);
static int	past_recipients(struct routing *,
		    int (*)(struct routing *, const char *));
static int	quota_one(struct routing *, const char *recipient);
static int	recheck_msg(const uint8_t mid[16], void *);
static int	drop_orphan(struct broker *, struct store_txn *, const char *,
		    uint64_t, const struct qent *, int);
static int	recheck_one(const struct queued *, void *);
static int	expire_one(const struct queued *, void *);

static bool
sub_matches(const struct sub *s, int rtype, const char *area)
{
	uint32_t	i;

	if (!(s->types & (1u << rtype)))
		return false;
	for (i = 0; i < s->nareas && i < SUB_AREAS_MAX; i++)
		if (strcmp(s->areas[i], area) == 0)
			return true;
	return false;
}

int
route_receipt(struct broker *b, struct store_txn *txn, const char *sender,
    const uint8_t mid[16], const char *recipient, enum cc_state state,
    enum cc_reason reason)
{
	struct store	*st = broker_store(b);
	struct qent	 q;
	struct peer	*p;
	uint64_t	 dseq;
	int		 rc;

	memset(&q, 0, sizeof(q));
	q.kind = Q_RECEIPT;
	q.state = state;
	q.reason = reason;
	memcpy(q.mid, mid, 16);
	q.at_ms = broker_now(b);
	snprintf(q.agency, sizeof(q.agency), "%s", recipient);
	if ((rc = store_next_dseq(st, txn, &dseq)) != 0 ||
	    (rc = store_queue_put(st, txn, sender, dseq, &q)) != 0)
		return rc;
	if ((p = broker_peer(b, sender)) != NULL)
		p->dirty = true;
	return 0;
}

/* One publish being routed, or checked against its recipients' quotas. */
struct routing {
	struct broker		*b;
	struct store_txn	*txn;
	const uint8_t		*mid;
	const char		*midtext;
	const struct cc_msg	*m;
	const char		*sender;
	const struct msg_hdr	*h;
	cc_catset		 present;	/* categories it carries */
	size_t			 bytes;		/* its record */
	bool			 queued;	/* for someone */
	char			*over;		/* route_quota's answer */
};

static void
routing_init(struct routing *rt, struct broker *b, struct store_txn *txn,
    const struct cc_msg *m, const char *sender, const struct msg_hdr *h,
    size_t bytes)
{
	memset(rt, 0, sizeof(*rt));
	rt->b = b;
	rt->txn = txn;
	rt->m = m;
	rt->sender = sender;
	rt->h = h;
	rt->bytes = bytes;
}

/*
 * The recipients of a message: the agencies in `to`, or else the
 * subscribers of its type and area (subscriptions only nominate: each is
 * then decided on its own).  fn is called for each once.
 */
static int
candidates(struct routing *rt, int (*fn)(struct routing *, const char *))
{
	const msgpack_object	*to = proto_get(rt->m, "to");
	char			 area[CONF_AREA_LEN], id[CC_ID_MAX + 1];
	struct peer		*peers;
	uint32_t		 i, j;
	size_t			 k, npeer;
	int			 rc;

	if (to != NULL && to->type == MSGPACK_OBJECT_ARRAY) {
		for (i = 0; i < to->via.array.size; i++) {
			const msgpack_object *o = &to->via.array.ptr[i];

			if (o->type != MSGPACK_OBJECT_STR ||
			    o->via.str.size > CC_ID_MAX)
				continue;
			memcpy(id, o->via.str.ptr, o->via.str.size);
			id[o->via.str.size] = '\0';
			/* A name given twice is one recipient. */
			for (j = 0; j < i; j++) {
				const msgpack_object *e = &to->via.array.ptr[j];

				if (e->via.str.size == o->via.str.size &&
				    memcmp(e->via.str.ptr, o->via.str.ptr,
				    o->via.str.size) == 0)
					break;
			}
			if (j < i)
				continue;
			if ((rc = fn(rt, id)) != 0)
				return rc;
		}
	} else if (!proto_rtype_direct_only(rt->h->rtype)) {
		if (proto_get_str(rt->m, "area", area, sizeof(area)) == -1)
			return 0;
		peers = broker_peers(rt->b, &npeer);
		for (k = 0; k < npeer; k++) {
			struct peer *p = &peers[k];

			if (!p->has_sub || strcmp(p->id, rt->sender) == 0 ||
			    !sub_matches(&p->sub, rt->h->rtype, area))
				continue;
			if ((rc = fn(rt, p->id)) != 0)
				return rc;
		}
	}
	return 0;
}

/* The agencies that acknowledged a record: its past recipients. */
struct past {
	char	(*ids)[CC_ID_MAX + 1];
	size_t	  n;
};

static int
past_one(const char *agency, const struct rstate *rs, void *arg)
{
	struct past	*p = arg;
	void		*n;

	if (rs->state != ST_DELIVERED)
		return 0;
	if ((n = reallocarray(p->ids, p->n + 1, sizeof(*p->ids))) == NULL)
		return STORE_NOMEM;
	p->ids = n;
	snprintf(p->ids[p->n++], CC_ID_MAX + 1, "%s", agency);
	return 0;
}

/*
 * A correction also goes to every agency that acknowledged the record it
 * supersedes (correct.c), but those routing already decided for.
 */
static int
past_recipients(struct routing *rt, int (*fn)(struct routing *,
    const char *))
{
	struct store	*st = broker_store(rt->b);
	struct past	 p = { NULL, 0 };
	struct rstate	 rs;
	uint8_t		 old[16];
	char		 text[40];
	size_t		 i;
	int		 rc;

	if (proto_get_str(rt->m, "supersedes", text, sizeof(text)) == -1 ||
	    uuid_parse(text, old) == -1)
		return 0;
	if ((rc = store_rstates(st, rt->txn, old, past_one, &p)) != 0)
		goto out;
	for (i = 0; i < p.n; i++) {
		rc = store_rstate_get(st, rt->txn, rt->mid, p.ids[i], &rs);
		if (rc == 0)
			continue;
		if (rc != STORE_NOTFOUND || (rc = fn(rt, p.ids[i])) != 0)
			goto out;
	}
	rc = 0;
out:
	free(p.ids);
	return rc;
}

/* Decide for one recipient: queue it, or record why it was withheld. */
static int
route_one(struct routing *rt, const char *recipient)
{
	struct broker	*b = rt->b;
	struct store	*st = broker_store(b);
	struct decision	 d;
	struct qent	 q;
	struct rstate	 rs;
	struct audit_ev	 ev;
	struct peer	*p;
	int		 rc;

	decide(st, rt->txn, &rt->h->subj, rt->h->purpose, recipient,
	    broker_policy_of(b, recipient), broker_now(b), &d);
	memset(&rs, 0, sizeof(rs));
	rs.at_ms = broker_now(b);
	memset(&ev, 0, sizeof(ev));
	ev.id = rt->midtext;
	ev.type = cc_rtype_name(rt->h->rtype);
	ev.sender = rt->sender;
	ev.recipient = recipient;
	ev.subj = &rt->h->subj;
	ev.at_ms = broker_now(b);
	if (!d.permit) {
		rs.state = ST_WITHHELD;
		rs.reason = d.reason;
		ev.event = EV_WITHHELD;
		ev.reason = cc_reason_name(d.reason);
		broker_count(b, CNT_WITHHELD);
		if ((rc = store_rstate_put(st, rt->txn, rt->mid, recipient,
		    &rs)) != 0 ||
		    (rc = route_receipt(b, rt->txn, rt->sender, rt->mid,
		    recipient, ST_WITHHELD, d.reason)) != 0)
			return rc;
		return audit_append(st, rt->txn, &ev);
	}
	/* What the recipient gets now; deliver.c rewrites it only if the
	 * decision changes before it is sent. */
	memset(&q, 0, sizeof(q));
	q.kind = Q_DELIVER;
	q.cats = d.cats & rt->present;
	q.withheld = rt->present & ~d.cats;
	q.version = d.version;
	memcpy(q.cid, d.cid, 16);
	memcpy(q.mid, rt->mid, 16);
	q.at_ms = broker_now(b);
	rs.state = ST_QUEUED;
	if ((rc = store_next_dseq(st, rt->txn, &rs.dseq)) != 0 ||
	    (rc = store_queue_put(st, rt->txn, recipient, rs.dseq,
	    &q)) != 0 ||
	    (rc = store_rstate_put(st, rt->txn, rt->mid, recipient,
	    &rs)) != 0)
		return rc;
	quota_enqueue(b, recipient, rt->bytes);
	if ((p = broker_peer(b, recipient)) != NULL)
		p->dirty = true;
	rt->queued = true;
	return 0;
}

int
route_publish(struct broker *b, struct store_txn *txn, const uint8_t mid[16],
    const char *midtext, const struct cc_msg *m, const char *sender,
    const struct msg_hdr *h, size_t bytes, bool *queued)
{
	struct routing	rt;
	int		rc;

	routing_init(&rt, b, txn, m, sender, h, bytes);
	rt.mid = mid;
	rt.midtext = midtext;
	rt.present = proto_categories_present(m);
	if ((rc = candidates(&rt, route_one)) == 0)
		rc = past_recipients(&rt, route_one);
	*queued = rt.queued;
	return rc;
}

/*
 * A recipient at its quota stops the publish only if the record would be
 * queued for it: one that would be withheld holds nothing.
 */
static int
quota_one(struct routing *rt, const char *recipient)
{
	struct peer	*p;
	struct decision	 d;

	if ((p = broker_peer(rt->b, recipient)) == NULL ||
	    quota_room_queued(p, rt->bytes))
		return 0;
	decide(broker_store(rt->b), rt->txn, &rt->h->subj, rt->h->purpose,
	    recipient, broker_policy_of(rt->b, recipient),
	    broker_now(rt->b), &d);
	if (!d.permit)
		return 0;
	snprintf(rt->over, CC_ID_MAX + 1, "%s", recipient);
	return STORE_STOP;
}

int
route_quota(struct broker *b, struct store_txn *txn, const struct cc_msg *m,
    const char *sender, const struct msg_hdr *h, size_t bytes,
    char over[CC_ID_MAX + 1])
{
	struct routing	rt;
	int		rc;

	routing_init(&rt, b, txn, m, sender, h, bytes);
	rt.over = over;
	over[0] = '\0';
	rc = candidates(&rt, quota_one);
	return rc == STORE_STOP ? 0 : rc;
}

/*
 * Take a queued delivery back (purged or expired): the sender gets a
 * receipt, the audit an entry, and the payload goes once nobody waits.
 */
int
route_drop(struct broker *b, struct store_txn *txn, const char *agency,
    uint64_t dseq, const struct qent *q, enum cc_state state,
    enum cc_reason reason)
{
	struct store	*st = broker_store(b);
	struct msg_hdr	 h;
	struct rstate	 rs;
	struct audit_ev	 ev;
	struct peer	*p;
	char		 midtext[37];
	size_t		 freed;
	int		 rc;

	/*
	 * A message whose header is gone or damaged cannot be delivered
	 * and its sender cannot be known for a receipt: the delivery is
	 * purged (store-unavailable), said in the log and the audit, and
	 * the queue goes on (rule 12: never an error that stops the pump).
	 */
	if ((rc = store_msg_get(st, txn, q->mid, &h, NULL)) == STORE_NOTFOUND ||
	    rc == STORE_CORRUPT)
		return drop_orphan(b, txn, agency, dseq, q, rc);
	if (rc != 0)
		return rc;
	if ((rc = store_queue_del(st, txn, agency, dseq)) != 0)
		return rc;
	quota_dequeue(b, agency, msg_record_size(&h));
	memset(&rs, 0, sizeof(rs));
	rs.state = state;
	rs.reason = reason;
	rs.at_ms = broker_now(b);
	if ((rc = store_rstate_put(st, txn, q->mid, agency, &rs)) != 0 ||
	    (rc = route_receipt(b, txn, h.sender, q->mid, agency, state,
	    reason)) != 0)
		return rc;
	uuid_unparse_lower(q->mid, midtext);
	memset(&ev, 0, sizeof(ev));
	ev.event = state == ST_EXPIRED ? EV_EXPIRED : EV_PURGED;
	ev.id = midtext;
	ev.type = cc_rtype_name(h.rtype);
	ev.sender = h.sender;
	ev.recipient = agency;
	ev.subj = &h.subj;
	ev.reason = cc_reason_name(reason);
	ev.at_ms = broker_now(b);
	if ((rc = audit_append(st, txn, &ev)) != 0)
		return rc;
	broker_count(b, state == ST_EXPIRED ? CNT_EXPIRED : CNT_PURGED);
	/* A purged delivery already sent stops counting against the window. */
	if ((p = broker_peer(b, agency)) != NULL && p->online &&
	    dseq <= p->cursor && p->inflight > 0)
		p->inflight--;
	if ((rc = store_msg_release(st, txn, q->mid, &freed)) == 0 &&
	    freed > 0)
		quota_release(b, h.sender, freed);
	return rc;
}

static int
drop_orphan(struct broker *b, struct store_txn *txn, const char *agency,
    uint64_t dseq, const struct qent *q, int why)
{
	struct store	*st = broker_store(b);
	struct rstate	 rs;
	struct audit_ev	 ev;
	struct peer	*p;
	char		 midtext[37];
	int		 rc;

	uuid_unparse_lower(q->mid, midtext);
	log_warnx("queue of %s: a delivery of mid=%s whose message is %s; "
	    "purged", agency, midtext, why == STORE_NOTFOUND ? "missing" :
	    "damaged");
	if ((rc = store_queue_del(st, txn, agency, dseq)) != 0)
		return rc;
	quota_dequeue(b, agency, 0);	/* its size is not known */
	memset(&rs, 0, sizeof(rs));
	rs.state = ST_PURGED;
	rs.reason = RS_STORE_UNAVAILABLE;
	rs.at_ms = broker_now(b);
	if ((rc = store_rstate_put(st, txn, q->mid, agency, &rs)) != 0)
		return rc;
	memset(&ev, 0, sizeof(ev));
	ev.event = EV_PURGED;
	ev.id = midtext;
	ev.recipient = agency;
	ev.reason = cc_reason_name(RS_STORE_UNAVAILABLE);
	ev.at_ms = broker_now(b);
	if ((rc = audit_append(st, txn, &ev)) != 0)
		return rc;
	broker_count(b, CNT_PURGED);
	if ((p = broker_peer(b, agency)) != NULL && p->online &&
	    dseq <= p->cursor && p->inflight > 0)
		p->inflight--;
	return 0;
}

/* The walk of a recheck: the broker, the transaction, the message. */
struct recheck {
	struct broker		*b;
	struct store_txn	*txn;
	struct msg_hdr		 h;
};

static int
recheck_one(const struct queued *w, void *arg)
{
	struct recheck	*rk = arg;
	struct decision	 d;

	if (w->q.kind != Q_DELIVER)
		return 0;
	decide(broker_store(rk->b), rk->txn, &rk->h.subj, rk->h.purpose,
	    w->agency, broker_policy_of(rk->b, w->agency), broker_now(rk->b),
	    &d);
	if (d.permit)
		return 0;
	return route_drop(rk->b, rk->txn, w->agency, w->dseq, &w->q,
	    ST_PURGED, d.reason);
}

static int
recheck_msg(const uint8_t mid[16], void *arg)
{
	struct recheck	*rk = arg;
	int		 rc;

	rc = store_msg_get(broker_store(rk->b), rk->txn, mid, &rk->h, NULL);
	/* Forgotten after retention; or damaged (said by the store), and
	 * then its deliveries are purged when the pump meets them: a
	 * withdrawal is never held up by damage elsewhere. */
	if (rc == STORE_NOTFOUND || rc == STORE_CORRUPT)
		return 0;
	if (rc != 0)
		return rc;
	return store_queued(broker_store(rk->b), rk->txn, mid, recheck_one,
	    rk);
}

/*
 * Rule 5: after any change to a subject's consents, every queued delivery
 * about the subject is decided again, and dropped if no longer permitted.
 * The subject index names the messages whose payload is still held; their
 * delivery states name the recipients still waiting.
 */
int
route_recheck_subject(struct broker *b, struct store_txn *txn,
    const struct subject_ps *ps)
{
	struct recheck	rk;

	memset(&rk, 0, sizeof(rk));
	rk.b = b;
	rk.txn = txn;
	return store_msgs_of_subject(broker_store(b), txn, ps, recheck_msg,
	    &rk);
}

/* The walk of the sweep's phase 0. */
struct expire {
	struct broker		*b;
	struct store_txn	*txn;
};

static int
expire_one(const struct queued *w, void *arg)
{
	struct expire	*x = arg;

	return route_drop(x->b, x->txn, w->agency, w->dseq, &w->q, ST_EXPIRED,
	    RS_RETENTION);
}

/*
 * Retention: the expiry index orders messages by when they expire.  Phase 0
 * expires what is still queued; phase 1, a retention period later, forgets
 * the message header and its delivery states (idempotency and `track` last
 * that long).  Bounded per turn so one sweep never stalls the loop; it
 * runs only when the earliest expiry is due.
 */
int
route_sweep(struct broker *b, struct store_txn *txn)
{
	struct store	*st = broker_store(b);
	struct expire	 x = { b, txn };
	uint8_t		 mid[16], phase;
	int64_t		 t, now = broker_now(b);
	int		 done = 0, rc;

	for (;;) {
		rc = store_expiry_first(st, txn, &t, mid, &phase);
		if (rc == STORE_NOTFOUND) {
			broker_sweep_next(b, INT64_MAX);
			return 0;
		}
		if (rc != 0)
			return rc;
		/* Sleep until the next expiry is due, or go on next turn. */
		if (t > now || done++ >= SWEEP_TURN_MAX) {
			broker_sweep_next(b, t > now ? t : now);
			return 0;
		}
		if ((rc = store_expiry_del(st, txn, t, mid)) != 0)
			return rc;
		if (phase == XP_CONSENT_WARN || phase == XP_CONSENT_LAPSE) {
			if ((rc = notice_consent_lapse(b, txn, mid, phase,
			    t)) != 0)
				return rc;
			continue;
		}
		if (phase == XP_FORGET) {
			if ((rc = store_msg_forget(st, txn, mid)) != 0)
				return rc;
			continue;
		}
		if ((rc = store_queued(st, txn, mid, expire_one, &x)) != 0)
			return rc;
		if ((rc = store_expiry_put(st, txn, t +
		    (int64_t)broker_conf(b)->retention_days * 86400000LL, mid,
		    1)) != 0)
			return rc;
	}
}

/*
 * An agency that is no longer valid (revoked, expired, removed) gets no
 * further service: what waits in its queue is purged, each sender told
 * `not-permitted`, and receipts meant for it are dropped.
 */
int
route_purge_invalid(struct broker *b, struct store_txn *txn)
{
	struct store	*st = broker_store(b);
	struct peer	*peers;
	struct qent	 q;
	uint64_t	 dseq;
	size_t		 i, npeer;
	int		 rc;

	peers = broker_peers(b, &npeer);
	for (i = 0; i < npeer; i++) {
		const char *id = peers[i].id;

		if (broker_policy_of(b, id) != NULL)
			continue;
		while ((rc = store_queue_next(st, txn, id, 0, &dseq,
		    &q)) == 0) {
			if (q.kind == Q_RECEIPT)
				rc = store_queue_del(st, txn, id, dseq);
			else if (q.kind == Q_NOTICE) {
				if ((rc = store_queue_del(st, txn, id,
				    dseq)) == 0 && (rc = store_notice_del(st,
				    txn, q.mid)) == STORE_NOTFOUND)
					rc = 0;
			} else
				rc = route_drop(b, txn, id, dseq, &q, ST_PURGED,
				    RS_NOT_PERMITTED);
			if (rc != 0)
				return rc;
		}
		if (rc != STORE_NOTFOUND)
			return rc;
	}
	return 0;
}
