/*
 * deliver.c - the delivery pump.
 *
 * For every agency with a receiving connection and something new, send
 * queued entries in dseq order (the order the broker accepted them) until
 * the window of unacked ones is full.  A delivery is decided again here:
 * the client may have withdrawn consent while the record sat in the queue,
 * and rule 5 says withdrawal wins.
 */
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "deliver.h"
#include "log.h"
#include "notice.h"
#include "route.h"

#define OPENED_MAX	256	/* decoded messages kept for one pump */

/*
 * The messages opened during one pump.  A message goes to several
 * recipients, each decided and stripped on its own, but its stored frame
 * is the same for all: it is decrypted and decoded once per pump, not once
 * per recipient, and not at all when handle_publish() kept the tree it
 * decoded and validated in this turn (deliver_keep).  Emptied when the
 * pump ends, so nothing outlives the turn it was read in.
 */
static struct opened {
	uint8_t		 mid[16];
	struct cc_msg	*m;
	cc_catset	 present;	/* categories it carries */
} opened[OPENED_MAX];

static struct opened *opened_slot(const uint8_t mid[16]);
static const struct opened *msg_open(struct broker *, struct store_txn *,
		    const uint8_t mid[16]);
static void	opened_clear(void);
static int	send_delivery(struct broker *, struct store_txn *,
		    struct peer *, uint64_t, struct qent *, bool *sent);
static int	send_receipt(struct broker *, struct peer *, uint64_t,
		    const struct qent *);
static void	copy_field(struct reply *, const struct cc_msg *,
		    const char *);

/* Copy a top-level string field of the stored message (validated: it is
 * there; if not, the reply fails rather than go out short). */
static void
copy_field(struct reply *rp, const struct cc_msg *m, const char *k)
{
	const char	*p;
	size_t		 n;

	if (proto_get_strn(m, k, &p, &n) == -1)
		reply_check(rp, -1);
	else
		reply_strn(rp, k, p, n);
}

static struct opened *
opened_slot(const uint8_t mid[16])
{
	uint32_t	h = 2166136261u;
	size_t		i;

	for (i = 0; i < 16; i++)
		h = (h ^ mid[i]) * 16777619u;
	return &opened[h % OPENED_MAX];
}

void
deliver_keep(const uint8_t mid[16], struct cc_msg **m, cc_catset present)
{
	struct opened	*o = opened_slot(mid);

	proto_msg_destroy(&o->m);
	o->m = *m;
	*m = NULL;
	memcpy(o->mid, mid, 16);
	o->present = present;
}

/* A stored message, decoded (owned by the cache), or NULL. */
static const struct opened *
msg_open(struct broker *b, struct store_txn *txn, const uint8_t mid[16])
{
	struct opened	*o = opened_slot(mid);
	struct cc_error	 err;
	uint8_t		*frame;
	size_t		 len;

	if (o->m != NULL && memcmp(o->mid, mid, 16) == 0)
		return o;
	proto_msg_destroy(&o->m);
	if ((frame = store_msg_frame(broker_store(b), txn, mid, &len)) == NULL)
		return NULL;
	if (proto_decode(frame, len, SIZE_MAX, &o->m, &err) == -1)
		o->m = NULL;
	free(frame);
	if (o->m == NULL)
		return NULL;
	memcpy(o->mid, mid, 16);
	o->present = proto_categories_present(o->m);
	return o;
}

static void
opened_clear(void)
{
	size_t	i;

	for (i = 0; i < OPENED_MAX; i++)
		proto_msg_destroy(&opened[i].m);
}

static int
send_delivery(struct broker *b, struct store_txn *txn, struct peer *p,
    uint64_t dseq, struct qent *q, bool *sent)
{
	struct store		*st = broker_store(b);
	struct msg_hdr		 h;
	struct decision		 d;
	const struct opened	*o;
	const struct cc_msg	*m;
	struct reply		 rp;
	msgpack_packer		*pk;
	cc_catset		 wb = 0, ws = 0, released;
	char			 text[37];
	int			 rc;

	rc = store_msg_get(st, txn, q->mid, &h, NULL);
	if (rc == STORE_NOTFOUND || rc == STORE_CORRUPT)
		return route_drop(b, txn, p->id, dseq, q, ST_PURGED,
		    RS_STORE_UNAVAILABLE);
	if (rc != 0)
		return rc;
	decide(st, txn, &h.subj, h.purpose, p->id,
	    broker_policy_of(b, p->id), broker_now(b), &d);
	if (!d.permit)
		return route_drop(b, txn, p->id, dseq, q, ST_PURGED, d.reason);
	if ((o = msg_open(b, txn, q->mid)) == NULL) {
		/* A payload that cannot be opened is never guessed at. */
		log_warnx("deliver: stored message unreadable; purging it "
		    "for %s", p->id);
		return route_drop(b, txn, p->id, dseq, q, ST_PURGED,
		    RS_STORE_UNAVAILABLE);
	}
	m = o->m;

	reply_begin(&rp, "deliver");
	reply_u64(&rp, "dseq", dseq);
	copy_field(&rp, m, "mid");
	copy_field(&rp, m, "type");
	reply_str(&rp, "from", h.sender);
	copy_field(&rp, m, "purpose");
	reply_check(&rp, proto_pack_stripped_subject(reply_key(&rp,
	    "subject"), m, d.cats, &ws));
	copy_field(&rp, m, "area");
	copy_field(&rp, m, "created");
	reply_check(&rp, proto_pack_stripped_body(reply_key(&rp, "body"), m,
	    d.cats, &wb));
	pk = reply_key(&rp, "consent");
	uuid_unparse_lower(d.cid, text);
	reply_check(&rp, msgpack_pack_map(pk, 2));
	reply_check(&rp, proto_pack_cstr(pk, "cid"));
	reply_check(&rp, proto_pack_cstr(pk, text));
	reply_check(&rp, proto_pack_cstr(pk, "version"));
	reply_check(&rp, msgpack_pack_uint32(pk, d.version));
	reply_check(&rp, proto_pack_catset(reply_key(&rp,
	    "withheld_categories"), wb | ws));
	released = d.cats & o->present;
	/* Remember what was released, for the audit entry at ack. */
	if (q->cats != released || q->withheld != (wb | ws) ||
	    q->version != d.version || memcmp(q->cid, d.cid, 16) != 0) {
		q->cats = released;
		q->withheld = wb | ws;
		q->version = d.version;
		memcpy(q->cid, d.cid, 16);
		if ((rc = store_queue_del(st, txn, p->id, dseq)) != 0 ||
		    (rc = store_queue_put(st, txn, p->id, dseq, q)) != 0) {
			reply_discard(&rp);
			return rc;
		}
	}
	rc = reply_send(b, p->rid, p->ridlen, &rp);
	*sent = rc == 0;
	return rc;
}

static int
send_receipt(struct broker *b, struct peer *p, uint64_t dseq,
    const struct qent *q)
{
	struct reply	rp;
	char		text[37], at[32];

	uuid_unparse_lower(q->mid, text);
	cc_time_format(q->at_ms, at);
	reply_begin(&rp, "receipt");
	reply_u64(&rp, "dseq", dseq);
	reply_str(&rp, "mid", text);
	reply_str(&rp, "agency", q->agency);
	reply_str(&rp, "state", cc_state_name(q->state));
	if (q->reason != RS_NONE)
		reply_str(&rp, "reason", cc_reason_name(q->reason));
	reply_str(&rp, "at", at);
	return reply_send(b, p->rid, p->ridlen, &rp);
}

int
deliver_pump(struct broker *b, struct store_txn *txn)
{
	struct store	*st = broker_store(b);
	unsigned	 window = broker_conf(b)->window;
	struct peer	*peers;
	struct qent	 q;
	uint64_t	 dseq;
	size_t		 i, npeer;
	bool		 sent;
	int		 rc;

	peers = broker_peers(b, &npeer);
	for (i = 0; i < npeer; i++) {
		struct peer *p = &peers[i];

		if (!p->online || !p->dirty)
			continue;
		/* An agency no longer valid gets nothing (DESIGN §3). */
		if (broker_policy_of(b, p->id) == NULL) {
			p->dirty = false;
			continue;
		}
		/*
		 * Nor does a session whose key's certificate was revoked or
		 * expired, though the agency has another (re-keyed): its
		 * queue waits for a connection made with a valid key.
		 */
		if (!broker_session_valid(b, p)) {
			log_warnx("agency=%s: the key of its session is no "
			    "longer valid; nothing more is sent on it", p->id);
			p->online = false;
			p->dirty = false;
			continue;
		}
		while (p->inflight < window) {
			rc = store_queue_next(st, txn, p->id, p->cursor,
			    &dseq, &q);
			if (rc == STORE_NOTFOUND) {
				p->dirty = false;
				break;
			}
			if (rc != 0)
				goto out;
			/* send_delivery may purge instead of sending. */
			sent = false;
			if (q.kind == Q_RECEIPT) {
				rc = send_receipt(b, p, dseq, &q);
				sent = rc == 0;
			} else if (q.kind == Q_NOTICE)
				rc = notice_send(b, txn, p, dseq, &q, &sent);
			else
				rc = send_delivery(b, txn, p, dseq, &q, &sent);
			if (rc != 0)
				goto out;
			p->cursor = dseq;
			if (sent)
				p->inflight++;
		}
	}
	rc = 0;
out:
	opened_clear();
	return rc;
}
