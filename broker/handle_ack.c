/*
 * handle_ack.c - `ack`: the agency has stored a delivery or a receipt.
 */
#include <string.h>

#include <uuid/uuid.h>

#include "handler.h"
#include "notice.h"
#include "route.h"

/* ack {dseq} -> no answer */
int
handle_ack(struct broker *b, struct req *r)
{
	struct store	*st = broker_store(b);
	struct peer	*p = r->peer;
	struct qent	 q;
	struct msg_hdr	 h;
	struct rstate	 rs;
	struct audit_ev	 ev;
	uint64_t	 dseq;
	char		 midtext[37];
	bool		 orphan;
	size_t		 freed;
	int		 rc;

	if (proto_get_u64(r->msg, "dseq", &dseq) == -1)
		return 0;
	/* Unknown, already acked or purged: nothing to do, nothing said. */
	rc = store_queue_get(st, r->txn, p->id, dseq, &q);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (p->online && dseq <= p->cursor && p->inflight > 0)
		p->inflight--;
	p->dirty = true;
	if (q.kind == Q_RECEIPT)
		return store_queue_del(st, r->txn, p->id, dseq);
	if (q.kind == Q_NOTICE)
		return notice_acked(b, r->txn, p->id, dseq, &q);

	/*
	 * Received, though its message's header may be gone or damaged
	 * since it was sent (said by the store): the disclosure is still
	 * audited, but no receipt can name its sender.
	 */
	rc = store_msg_get(st, r->txn, q.mid, &h, NULL);
	if ((orphan = rc == STORE_NOTFOUND || rc == STORE_CORRUPT))
		memset(&h, 0, sizeof(h));
	else if (rc != 0)
		return rc;
	if ((rc = store_queue_del(st, r->txn, p->id, dseq)) != 0)
		return rc;
	quota_dequeue(b, p->id, msg_record_size(&h));
	memset(&rs, 0, sizeof(rs));
	rs.state = ST_DELIVERED;
	rs.at_ms = broker_now(b);
	if ((rc = store_rstate_put(st, r->txn, q.mid, p->id, &rs)) != 0 ||
	    (!orphan && (rc = route_receipt(b, r->txn, h.sender, q.mid, p->id,
	    ST_DELIVERED, RS_NONE)) != 0))
		return rc;
	uuid_unparse_lower(q.mid, midtext);
	memset(&ev, 0, sizeof(ev));
	ev.event = EV_DELIVERED;
	ev.id = midtext;
	ev.type = orphan ? NULL : cc_rtype_name(h.rtype);
	ev.sender = orphan ? NULL : h.sender;
	ev.recipient = p->id;
	ev.subj = orphan ? NULL : &h.subj;
	ev.cats = q.cats;
	ev.withheld = q.withheld;
	ev.cid = q.cid;
	ev.version = q.version;
	ev.at_ms = broker_now(b);
	if ((rc = audit_append(st, r->txn, &ev)) != 0)
		return rc;
	broker_count(b, CNT_DELIVERED);
	if (orphan)
		return 0;
	/* Remembered, to tell the agency of a withdrawal or erasure later. */
	if ((rc = notice_disclosed(b, r->txn, p->id, &q, &h)) != 0)
		return rc;
	if ((rc = store_msg_release(st, r->txn, q.mid, &freed)) == 0 &&
	    freed > 0)
		quota_release(b, h.sender, freed);
	return rc;
}
