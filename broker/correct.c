/*
 * correct.c - a sender corrects or retracts a record it published.
 *
 * A correction is a publish naming the mid it `supersedes`: one of the
 * sender's own, about the same subject, of the same type.  It is routed
 * like any publish, and to every agency that acknowledged the old record
 * as well (each decided again: consent may have changed since).  A
 * retraction (`retract {mid, reason}`) takes a record back.  Either way,
 * copies of the old record still waiting are purged (`superseded`,
 * `retracted`), and every agency that acknowledged it is sent a notice.
 */
#include <string.h>

#include <uuid/uuid.h>

#include "audit.h"
#include "handler.h"
#include "notice.h"
#include "route.h"

static int	refused(int);
static int	purge_one(const struct queued *, void *);
static int	take_back(struct broker *, struct store_txn *,
		    const uint8_t mid[16], enum cc_reason);

struct purge {
	struct broker		*b;
	struct store_txn	*txn;
	enum cc_reason		 reason;
};

static int
purge_one(const struct queued *w, void *arg)
{
	struct purge	*p = arg;

	if (w->q.kind != Q_DELIVER)
		return 0;
	return route_drop(p->b, p->txn, w->agency, w->dseq, &w->q, ST_PURGED,
	    p->reason);
}

/* Purge what still waits of mid; route_drop tells the sender each one. */
static int
take_back(struct broker *b, struct store_txn *txn, const uint8_t mid[16],
    enum cc_reason reason)
{
	struct purge	p = { b, txn, reason };

	return store_queued(broker_store(b), txn, mid, purge_one, &p);
}

/* Answer the request with an error: ANSWERED, or a store error. */
#define REFUSE(...)	refused(reply_error(__VA_ARGS__))
static int
refused(int rc)
{
	return rc != 0 ? rc : ANSWERED;
}

/*
 * Is this publish a correction (*is), and may it supersede the record it
 * names (*oldmid)?  Returns 0, ANSWERED (refused, answered) or a store
 * error.
 */
int
correct_check(struct broker *b, struct req *r, const struct msg_hdr *h,
    bool *is, uint8_t oldmid[16])
{
	struct msg_hdr	old;
	char		text[40];
	int		i, shared = 0, rc;

	*is = false;
	if (proto_get_str(r->msg, "supersedes", text, sizeof(text)) == -1)
		return 0;
	*is = true;
	if ((rc = own_message(b, r, "supersedes", oldmid, &old)) != 0)
		return rc;
	if (old.rtype != h->rtype)
		return REFUSE(b, r, ERR_INVALID_FIELD, "type",
		    "a correction has the type of the record it corrects "
		    "(%s)", cc_rtype_name(old.rtype));
	/* The same person: an identifier in common, none contradicting. */
	for (i = 0; i < SCHEME__COUNT; i++) {
		if (!(old.subj.has & h->subj.has & (1u << i)))
			continue;
		if (memcmp(old.subj.id[i], h->subj.id[i], PSEUDO_LEN) != 0)
			return REFUSE(b, r, ERR_IDENTITY_CONFLICT,
			    "subject", "a correction is about the subject of "
			    "the record it corrects");
		shared++;
	}
	if (shared == 0)
		return REFUSE(b, r, ERR_IDENTITY_CONFLICT, "subject",
		    "a correction is about the subject of the record it "
		    "corrects");
	return 0;
}

/* The correction `mid` of `oldmid` is stored and routed: the rest. */
int
correct_apply(struct broker *b, struct store_txn *txn,
    const uint8_t oldmid[16], const uint8_t mid[16], const char *sender)
{
	int	rc;

	if ((rc = take_back(b, txn, oldmid, RS_SUPERSEDED)) != 0)
		return rc;
	return notice_record(b, txn, NT_RECORD_CORRECTED, oldmid, sender,
	    mid, NULL);
}

/* retract {mid, reason} -> retracted {mid} */
int
handle_retract(struct broker *b, struct req *r)
{
	struct store	*st = broker_store(b);
	struct msg_hdr	 h;
	struct audit_ev	 ev;
	struct reply	 rp;
	uint8_t		 mid[16];
	char		 text[40], reason[1024 * 4 + 1];
	int		 rc;

	/* As for track: another agency's mid is answered as unknown. */
	if ((rc = own_message(b, r, "mid", mid, &h)) != 0)
		return rc == ANSWERED ? 0 : rc;
	if (proto_get_str(r->msg, "reason", reason, sizeof(reason)) == -1)
		return reply_error(b, r, ERR_INVALID_FIELD, "reason",
		    "give a reason");
	if ((rc = take_back(b, r->txn, mid, RS_RETRACTED)) != 0 ||
	    (rc = notice_record(b, r->txn, NT_RECORD_RETRACTED, mid,
	    h.sender, NULL, reason)) != 0)
		return rc;
	uuid_unparse_lower(mid, text);
	memset(&ev, 0, sizeof(ev));
	ev.event = EV_RETRACTED;
	ev.id = text;
	ev.type = cc_rtype_name(h.rtype);
	ev.sender = h.sender;
	ev.subj = &h.subj;
	ev.at_ms = broker_now(b);
	if ((rc = audit_append(st, r->txn, &ev)) != 0)
		return rc;
	reply_begin(&rp, "retracted");
	reply_str(&rp, "mid", text);
	return reply_send(b, r->rid, r->ridlen, &rp);
}
