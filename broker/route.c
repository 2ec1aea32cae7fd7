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

#include <errno.h>

#include "broker.h"
#include "log.h"

#define RECHECK_MAX	4096	/* messages re-decided per consent change */

static bool	sub_matches(const struct sub *, int rtype, const char *area);
static int	route_one(struct broker *, MDB_txn *, const uint8_t mid[16],
		    const char *midtext, cc_catset present,
		    const char *sender, const struct msg_hdr *,
		    const char *recipient, bool *queued);

static bool
sub_matches(const struct sub *s, int rtype, const char *area)
{
	uint32_t	i;

	if (!(s->types & (1u << rtype)))
		return false;
	for (i = 0; i < s->nareas && i < 32; i++)
		if (strcmp(s->areas[i], area) == 0)
			return true;
	return false;
}

int
route_receipt(struct broker *b, MDB_txn *txn, const char *sender,
    const uint8_t mid[16], const char *recipient, enum cc_state state,
    enum cc_reason reason)
{
	struct qent	 q;
	struct peer	*p;
	uint64_t	 dseq;
	int		 rc;

	memset(&q, 0, sizeof(q));
	q.kind = Q_RECEIPT;
	q.state = state;
	q.reason = reason;
	memcpy(q.mid, mid, 16);
	q.at_ms = b->now;
	snprintf(q.agency, sizeof(q.agency), "%s", recipient);
	if ((rc = store_next_dseq(&b->st, txn, &dseq)) != 0 ||
	    (rc = store_queue_put(&b->st, txn, sender, dseq, &q)) != 0)
		return rc;
	if ((p = broker_peer(b, sender)) != NULL)
		p->dirty = true;
	return 0;
}

/* Decide for one recipient: queue it, or record why it was withheld.
 * `present` is the categories the message carries. */
static int
route_one(struct broker *b, MDB_txn *txn, const uint8_t mid[16],
    const char *midtext, cc_catset present, const char *sender,
    const struct msg_hdr *h, const char *recipient, bool *queued)
{
	struct decision	 d;
	struct qent	 q;
	struct rstate	 rs;
	struct audit_ev	 ev;
	struct peer	*p;
	int		 rc;

	decide(&b->st, txn, &h->subj, h->purpose, recipient,
	    broker_policy_of(b, recipient), b->now, &d);
	memset(&rs, 0, sizeof(rs));
	rs.at_ms = b->now;
	memset(&ev, 0, sizeof(ev));
	ev.id = midtext;
	ev.type = cc_rtype_name(h->rtype);
	ev.sender = sender;
	ev.recipient = recipient;
	ev.subj = &h->subj;
	if (!d.permit) {
		rs.state = ST_WITHHELD;
		rs.reason = d.reason;
		ev.event = EV_WITHHELD;
		ev.reason = cc_reason_name(d.reason);
		b->count.withheld++;
		if ((rc = store_rstate_put(&b->st, txn, mid, recipient,
		    &rs)) != 0 ||
		    (rc = route_receipt(b, txn, sender, mid, recipient,
		    ST_WITHHELD, d.reason)) != 0)
			return rc;
		return audit_append(&b->st, txn, &ev);
	}
	/* What the recipient gets now; deliver.c rewrites it only if the
	 * decision changes before it is sent. */
	memset(&q, 0, sizeof(q));
	q.kind = Q_DELIVER;
	q.cats = d.cats & present;
	q.withheld = present & ~d.cats;
	q.version = d.version;
	memcpy(q.cid, d.cid, 16);
	memcpy(q.mid, mid, 16);
	q.at_ms = b->now;
	rs.state = ST_QUEUED;
	if ((rc = store_next_dseq(&b->st, txn, &rs.dseq)) != 0 ||
	    (rc = store_queue_put(&b->st, txn, recipient, rs.dseq, &q)) != 0 ||
	    (rc = store_rstate_put(&b->st, txn, mid, recipient, &rs)) != 0)
		return rc;
	if ((p = broker_peer(b, recipient)) != NULL)
		p->dirty = true;
	*queued = true;
	return 0;
}

int
route_publish(struct broker *b, MDB_txn *txn, const uint8_t mid[16],
    const char *midtext, const struct cc_msg *m, const char *sender,
    const struct msg_hdr *h, bool *queued)
{
	const msgpack_object	*to = proto_get(m, "to");
	cc_catset		 present = proto_categories_present(m);
	char			 area[CONF_AREA_LEN], id[CC_ID_MAX + 1];
	uint32_t		 i, j;
	size_t			 k;
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
			if ((rc = route_one(b, txn, mid, midtext, present, sender, h,
			    id, queued)) != 0)
				return rc;
		}
	} else if (h->rtype != RT_HANDOVER && h->rtype != RT_REFERRAL) {
		if (proto_get_str(m, "area", area, sizeof(area)) == -1)
			return 0;
		/* Subscriptions only nominate; decide() rules each one. */
		for (k = 0; k < b->npeer; k++) {
			struct peer *p = &b->peer[k];

			if (!p->has_sub || strcmp(p->id, sender) == 0 ||
			    !sub_matches(&p->sub, h->rtype, area))
				continue;
			if ((rc = route_one(b, txn, mid, midtext, present, sender, h,
			    p->id, queued)) != 0)
				return rc;
		}
	}
	return 0;
}

/*
 * Take a queued delivery back (purged or expired): the sender gets a
 * receipt, the audit an entry, and the payload goes once nobody waits.
 */
int
route_drop(struct broker *b, MDB_txn *txn, const char *agency, uint64_t dseq,
    const struct qent *q, enum cc_state state, enum cc_reason reason)
{
	struct msg_hdr	 h;
	struct rstate	 rs;
	struct audit_ev	 ev;
	struct peer	*p;
	char		 midtext[37];
	int		 rc;

	if ((rc = store_msg_get(&b->st, txn, q->mid, &h, NULL)) != 0)
		return rc;
	if ((rc = store_queue_del(&b->st, txn, agency, dseq)) != 0)
		return rc;
	memset(&rs, 0, sizeof(rs));
	rs.state = state;
	rs.reason = reason;
	rs.at_ms = b->now;
	if ((rc = store_rstate_put(&b->st, txn, q->mid, agency, &rs)) != 0 ||
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
	if ((rc = audit_append(&b->st, txn, &ev)) != 0)
		return rc;
	if (state == ST_EXPIRED)
		b->count.expired++;
	else
		b->count.purged++;
	/* A purged delivery already sent stops counting against the window. */
	if ((p = broker_peer(b, agency)) != NULL && p->online &&
	    dseq <= p->cursor && p->inflight > 0)
		p->inflight--;
	return store_msg_release(&b->st, txn, q->mid);
}

/*
 * Rule 5: after any change to a subject's consents, every queued delivery
 * about the subject is decided again, and dropped if no longer permitted.
 * The subject index names the messages whose payload is still held; their
 * delivery states name the recipients still waiting.
 */
int
route_recheck_subject(struct broker *b, MDB_txn *txn,
    const struct subject_ps *ps)
{
	uint8_t		(*mids)[16];
	struct queued	 wq[64];
	int		 n, m, i, j, rc = 0;

	if ((mids = calloc(RECHECK_MAX, sizeof(*mids))) == NULL)
		return ENOMEM;
	if ((n = store_msg_of_subject(&b->st, txn, ps, mids,
	    RECHECK_MAX)) < 0) {
		rc = MDB_CORRUPTED;
		goto out;
	}
	if (n == RECHECK_MAX)
		log_warnx("route: more than %d queued messages about one "
		    "subject; the rest are re-decided at delivery",
		    RECHECK_MAX);
	for (i = 0; i < n; i++) {
		struct msg_hdr	h;

		rc = store_msg_get(&b->st, txn, mids[i], &h, NULL);
		if (rc == MDB_NOTFOUND) {	/* forgotten after retention */
			rc = 0;
			continue;
		}
		if (rc != 0)
			goto out;
		if ((m = store_queued(&b->st, txn, mids[i], wq, 64)) < 0) {
			rc = MDB_CORRUPTED;
			goto out;
		}
		for (j = 0; j < m; j++) {
			struct decision	d;

			if (wq[j].q.kind != Q_DELIVER)
				continue;
			decide(&b->st, txn, &h.subj, h.purpose, wq[j].agency,
			    broker_policy_of(b, wq[j].agency), b->now, &d);
			if (d.permit)
				continue;
			if ((rc = route_drop(b, txn, wq[j].agency, wq[j].dseq,
			    &wq[j].q, ST_PURGED, d.reason)) != 0)
				goto out;
		}
	}
out:
	free(mids);
	return rc;
}

/*
 * Retention: the expiry index orders messages by when they expire.  Phase 0
 * expires what is still queued; phase 1, a retention period later, forgets
 * the message header and its delivery states (idempotency and `track` last
 * that long).  Bounded per turn so one sweep never stalls the loop; it
 * runs only when the earliest expiry is due (b->next_sweep).
 */
int
route_sweep(struct broker *b, MDB_txn *txn)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint8_t		 key[24], mid[16], phase;
	int64_t		 t;
	int		 done = 0, rc, i, n;
	char		 ag[64][CC_ID_MAX + 1];
	struct rstate	 rs[64];
	struct queued	 wq[64];

	for (;;) {
		if ((rc = mdb_cursor_open(txn, b->st.expiry, &cur)) != 0)
			return rc;
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc == 0 && k.mv_size == 24)
			memcpy(key, k.mv_data, 24);
		phase = rc == 0 && v.mv_size == 1 ? *(uint8_t *)v.mv_data : 0;
		mdb_cursor_close(cur);
		if (rc == MDB_NOTFOUND) {
			b->next_sweep = INT64_MAX;
			return 0;
		}
		if (rc != 0)
			return rc;
		t = (int64_t)be64_get(key);
		/* Sleep until the next expiry is due, or go on next turn. */
		if (t > b->now || done++ >= 256) {
			b->next_sweep = t > b->now ? t : b->now;
			return 0;
		}
		memcpy(mid, key + 8, 16);
		k.mv_size = 24;
		k.mv_data = key;
		if ((rc = mdb_del(txn, b->st.expiry, &k, NULL)) != 0)
			return rc;
		if (phase == 1) {
			MDB_val mk = { 16, mid };

			if ((n = store_rstates(&b->st, txn, mid, ag, rs, 64)) < 0)
				return MDB_CORRUPTED;
			for (i = 0; i < n; i++) {
				uint8_t	rk[16 + CC_ID_MAX];
				MDB_val	r = { 16 + strlen(ag[i]), rk };

				memcpy(rk, mid, 16);
				memcpy(rk + 16, ag[i], strlen(ag[i]));
				if ((rc = mdb_del(txn, b->st.rstate, &r,
				    NULL)) != 0)
					return rc;
			}
			rc = mdb_del(txn, b->st.msg, &mk, NULL);
			if (rc != 0 && rc != MDB_NOTFOUND)
				return rc;
			continue;
		}
		if ((n = store_queued(&b->st, txn, mid, wq, 64)) < 0)
			return MDB_CORRUPTED;
		for (i = 0; i < n; i++)
			if ((rc = route_drop(b, txn, wq[i].agency, wq[i].dseq,
			    &wq[i].q, ST_EXPIRED, RS_RETENTION)) != 0)
				return rc;
		be64_put(key, (uint64_t)(t + (int64_t)b->conf.retention_days *
		    86400000LL));
		phase = 1;
		k.mv_size = 24;
		k.mv_data = key;
		v.mv_size = 1;
		v.mv_data = &phase;
		if ((rc = mdb_put(txn, b->st.expiry, &k, &v, 0)) != 0)
			return rc;
	}
}

/*
 * An agency that is no longer valid (revoked, expired, removed) gets no
 * further service: what waits in its queue is purged, each sender told
 * `not-permitted`, and receipts meant for it are dropped.
 */
int
route_purge_invalid(struct broker *b, MDB_txn *txn)
{
	struct qent	q;
	uint64_t	dseq;
	size_t		i;
	int		rc;

	for (i = 0; i < b->npeer; i++) {
		const char *id = b->peer[i].id;

		if (broker_policy_of(b, id) != NULL)
			continue;
		while ((rc = store_queue_next(&b->st, txn, id, 0, &dseq,
		    &q)) == 0) {
			if (q.kind == Q_RECEIPT)
				rc = store_queue_del(&b->st, txn, id, dseq);
			else
				rc = route_drop(b, txn, id, dseq, &q, ST_PURGED,
				    RS_NOT_PERMITTED);
			if (rc != 0)
				return rc;
		}
		if (rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
}
