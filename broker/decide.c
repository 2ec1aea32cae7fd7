/*
 * decide.c - the one consent decision (DESIGN §5).
 *
 * A reviewer should be able to check every consent rule by reading this
 * file.  The rules, as numbered in the contract:
 *  1. deny by default: no active consent naming the recipient for the
 *     message's purpose with at least `identity` means nothing is sent;
 *  2. only active consents inside their period permit;
 *  3. any matching deny of any active consent of the subject wins;
 *  4. the recipient gets consent AND policy categories, nothing else;
 *  5. withdrawal is immediate: the store is read on every decision;
 *  6. identifiers that match on one scheme and contradict on another
 *     stop delivery (identity-conflict);
 *  7. subscriptions grant nothing (they never reach this function);
 *  8. every path calls this function;
 *  9. a store that cannot be read delivers nothing;
 * 10. a refusal is a consent in state refused: it never permits.
 */
#include <string.h>

#include "decide.h"
#include "log.h"

static bool	consent_in_force(const struct consent *, int64_t);
static bool	identity_conflicts(const struct subject_ps *,
		    const struct cview *);
static cc_catset deny_for(const struct consent *, const char *);
static void	withhold(struct decision *, enum cc_reason);

static void
withhold(struct decision *d, enum cc_reason why)
{
	memset(d, 0, sizeof(*d));
	d->permit = false;
	d->reason = why;
}

/* Rule 2: active and inside [valid_from, valid_until). */
static bool
consent_in_force(const struct consent *c, int64_t now)
{
	return c->v.state == CS_ACTIVE && c->v.from_ms <= now &&
	    now < c->v.until_ms;
}

/*
 * Rule 6: both carry an identifier of the same scheme with different
 * values.  (They share at least one scheme's value, or the index would not
 * have matched them.)
 */
static bool
identity_conflicts(const struct subject_ps *a, const struct cview *v)
{
	int	i;

	for (i = 0; i < SCHEME__COUNT; i++) {
		if ((a->has & v->has & (1u << i)) &&
		    memcmp(a->id[i], v->tag[i], CVIEW_TAGLEN) != 0)
			return true;
	}
	return false;
}

/* Rule 3: the categories a consent's deny provisions take from recipient. */
static cc_catset
deny_for(const struct consent *c, const char *recipient)
{
	const uint8_t	*p = c->deny, *end = c->deny + c->v.deny_len;
	struct deny_hdr	 dh;
	cc_catset	 out = 0;

	while (p + sizeof(dh) <= end) {
		memcpy(&dh, p, sizeof(dh));
		p += sizeof(dh);
		if (dh.len > end - p)
			return CATSET_ALL;	/* damaged: deny everything */
		if (dh.len == 0 || idlist_has((const char *)p, dh.len,
		    recipient))
			out |= dh.cats != 0 ? dh.cats : CATSET_ALL;
		p += dh.len;
	}
	return out;
}

/* What one pass over the subject's consents gathers. */
struct gather {
	const struct subject_ps	*subj;
	enum cc_purpose		 purpose;
	const char		*recipient;
	int64_t			 now;
	bool			 conflict;	/* rule 6 */
	cc_catset		 granted, denied;
	cc_catset		 best_c;	/* what the best one grants */
	bool			 have_best;
	uint8_t			 best_cid[16];
	uint32_t		 best_version;
};

static int
gather_one(const struct consent *c, void *arg)
{
	struct gather	*g = arg;
	cc_catset	 cats;

	if (c->v.state != CS_WITHDRAWN && c->v.state != CS_SUPERSEDED &&
	    identity_conflicts(g->subj, &c->v)) {
		g->conflict = true;
		return STORE_STOP;
	}
	if (!consent_in_force(c, g->now))
		return 0;
	g->denied |= deny_for(c, g->recipient);
	if (!(c->v.purposes & (1u << g->purpose)) ||
	    !idlist_has(c->recip, c->v.recip_len, g->recipient))
		return 0;
	cats = c->v.cats;
	/* Special categories only with explicit consent. */
	if (!c->v.explicit_)
		cats &= ~CATSET_EXPLICIT;
	g->granted |= cats;
	/* Rely on the consent that grants the most. */
	if (!g->have_best ||
	    __builtin_popcount(cats) > __builtin_popcount(g->best_c)) {
		g->have_best = true;
		g->best_c = cats;
		memcpy(g->best_cid, c->cid, 16);
		g->best_version = c->v.version;
	}
	return 0;
}

void
decide(struct store *st, struct store_txn *txn, const struct subject_ps *subj,
    enum cc_purpose purpose, const char *recipient, const struct policy *pol,
    int64_t now, struct decision *d)
{
	struct gather	g;
	cc_catset	granted;
	int		rc;

	if (pol == NULL || pol->receive == 0) {
		withhold(d, RS_NOT_PERMITTED);
		return;
	}
	memset(&g, 0, sizeof(g));
	g.subj = subj;
	g.purpose = purpose;
	g.recipient = recipient;
	g.now = now;
	/* Every consent of the subject, in one pass: a conflict anywhere
	 * stops it (rule 6); a damaged index fails closed (rule 9). */
	rc = store_consents_of(st, txn, subj, gather_one, &g);
	if (rc != 0 && rc != STORE_STOP) {
		log_warnx("decide: consent store unreadable (%s); withholding",
		    store_strerror(rc));
		withhold(d, RS_STORE_UNAVAILABLE);
		return;
	}
	if (g.conflict) {
		withhold(d, RS_IDENTITY_CONFLICT);
		return;
	}
	granted = g.granted & ~g.denied;
	if (!g.have_best || !(granted & CATSET(CAT_IDENTITY))) {
		withhold(d, RS_NO_CONSENT);
		return;
	}
	/* Rule 4: policy narrows what consent allows. */
	if (!(granted & pol->receive & CATSET(CAT_IDENTITY))) {
		withhold(d, RS_NOT_PERMITTED);
		return;
	}
	d->permit = true;
	d->reason = RS_NONE;
	d->cats = granted & pol->receive;
	memcpy(d->cid, g.best_cid, 16);
	d->version = g.best_version;
}

struct conflict {
	const struct subject_ps	*subj;
	const uint8_t		*except;
};

static int
conflict_one(const struct consent *c, void *arg)
{
	struct conflict	*w = arg;

	if (w->except != NULL && memcmp(c->cid, w->except, 16) == 0)
		return 0;
	if (c->v.state == CS_WITHDRAWN || c->v.state == CS_SUPERSEDED)
		return 0;
	return identity_conflicts(w->subj, &c->v) ? STORE_STOP : 0;
}

int
decide_identity_conflict(struct store *st, struct store_txn *txn,
    const struct subject_ps *subj, const uint8_t *except)
{
	struct conflict	w = { subj, except };
	int		rc;

	rc = store_consents_of(st, txn, subj, conflict_one, &w);
	if (rc == STORE_STOP)
		return 1;
	return rc == 0 ? 0 : -1;
}
