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

void
decide(struct store *st, MDB_txn *txn, const struct subject_ps *subj,
    enum cc_purpose purpose, const char *recipient, const struct policy *pol,
    int64_t now, struct decision *d)
{
	struct consent	 cs[DECIDE_MAX_CONSENTS];
	const struct consent *best = NULL;
	cc_catset	 granted = 0, denied = 0, c, best_c = 0;
	int		 i, n;

	if (pol == NULL || pol->receive == 0) {
		withhold(d, RS_NOT_PERMITTED);
		return;
	}
	/* Rule 9: fail closed. */
	if ((n = store_consents_of(st, txn, subj, cs, DECIDE_MAX_CONSENTS)) < 0) {
		log_warnx("decide: consent store unreadable; withholding");
		withhold(d, RS_STORE_UNAVAILABLE);
		return;
	}
	for (i = 0; i < n; i++) {
		if (cs[i].v.state == CS_WITHDRAWN ||
		    cs[i].v.state == CS_SUPERSEDED)
			continue;
		if (identity_conflicts(subj, &cs[i].v)) {
			withhold(d, RS_IDENTITY_CONFLICT);
			return;
		}
	}
	for (i = 0; i < n; i++) {
		if (!consent_in_force(&cs[i], now))
			continue;
		denied |= deny_for(&cs[i], recipient);
		if (!(cs[i].v.purposes & (1u << purpose)) ||
		    !idlist_has(cs[i].recip, cs[i].v.recip_len, recipient))
			continue;
		c = cs[i].v.cats;
		/* Special categories only with explicit consent. */
		if (!cs[i].v.explicit_)
			c &= ~CATSET_EXPLICIT;
		granted |= c;
		/* Rely on the consent that grants the most. */
		if (best == NULL ||
		    __builtin_popcount(c) > __builtin_popcount(best_c)) {
			best = &cs[i];
			best_c = c;
		}
	}
	granted &= ~denied;
	if (best == NULL || !(granted & CATSET(CAT_IDENTITY))) {
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
	memcpy(d->cid, best->cid, 16);
	d->version = best->v.version;
}

int
decide_identity_conflict(struct store *st, MDB_txn *txn,
    const struct subject_ps *subj, const uint8_t *except)
{
	struct consent	cs[DECIDE_MAX_CONSENTS];
	int		i, n;

	if ((n = store_consents_of(st, txn, subj, cs, DECIDE_MAX_CONSENTS)) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (except != NULL && memcmp(cs[i].cid, except, 16) == 0)
			continue;
		if (cs[i].v.state == CS_WITHDRAWN ||
		    cs[i].v.state == CS_SUPERSEDED)
			continue;
		if (identity_conflicts(subj, &cs[i].v))
			return 1;
	}
	return 0;
}
