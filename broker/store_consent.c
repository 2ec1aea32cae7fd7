/*
 * store_consent.c - consents and their subject indexes.
 *
 * A consent value is struct consent_hdr, the NUL-separated recipient ids,
 * the deny entries, and the sealed history (subject identifiers, evidence,
 * every version).  The header carries only what the decision needs, with
 * the subject as pseudonyms, so deciding never opens a seal; a copy of it
 * without the seal is kept under each pseudonym of the subject (cview) so
 * a decision reads one key range per identifier.  cview holds only the
 * consents that can still permit or deny (rule 12: a subject's withdrawn
 * and superseded consents, however many, cost a decision nothing); csubj
 * names every consent of a subject, for the subject access report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_impl.h"

#define IKEY_LEN	(CVIEW_KEYLEN + 16)	/* pseudonym(16) cid */

static int	view_parse(const MDB_val *, struct consent *);
static void	view_of(const struct consent_hdr *, struct cview *);
static bool	in_view(uint8_t state);
static void	ikey_make(uint8_t *, const uint8_t *ps, const uint8_t cid[16]);
static int	seen_before(struct store *, MDB_txn *, MDB_dbi, uint8_t,
		    const struct subject_ps *, int, const uint8_t cid[16],
		    const struct cview *);
static int	index_one(struct store *, MDB_txn *, const uint8_t cid[16],
		    const struct consent_hdr *, const char *recip,
		    const void *deny);
static int	collect_cid(const struct consent *, void *);
static int	scan(struct store *, MDB_txn *, MDB_dbi, uint8_t,
		    const struct subject_ps *,
		    int (*)(const struct consent *, void *), void *);

static void
view_of(const struct consent_hdr *h, struct cview *v)
{
	int	i;

	memset(v, 0, sizeof(*v));
	v->version = h->version;
	v->state = h->state;
	v->explicit_ = h->explicit_;
	v->purposes = h->purposes;
	v->has = h->subj.has;
	v->cats = h->cats;
	v->recip_len = h->recip_len;
	v->deny_len = h->deny_len;
	v->from_ms = h->from_ms;
	v->until_ms = h->until_ms;
	for (i = 0; i < SCHEME__COUNT; i++)
		memcpy(v->tag[i], h->subj.id[i], CVIEW_TAGLEN);
}

/* Active consents may permit and deny; refused ones still say who the
 * subject is (rule 6).  Withdrawn and superseded ones do neither. */
static bool
in_view(uint8_t state)
{
	return state == CS_ACTIVE || state == CS_REFUSED;
}

static void
ikey_make(uint8_t *key, const uint8_t *ps, const uint8_t cid[16])
{
	memcpy(key, ps, CVIEW_KEYLEN);
	memcpy(key + CVIEW_KEYLEN, cid, 16);
}

/* Header, recipients and denies are the clear part; the history sealed
 * after their tag. */
int
consent_value(struct store *st, const MDB_val *k, const MDB_val *v,
    struct consent *c)
{
	const uint8_t	*p = v->mv_data;
	size_t		 clear;
	int		 rc;

	if (v->mv_size < sizeof(c->h))
		return TAG_MISMATCH;
	memcpy(&c->h, p, sizeof(c->h));
	clear = sizeof(c->h) + c->h.recip_len + c->h.deny_len;
	if ((rc = tag_check_clear(st, TD_CONSENT, k, v, clear)) != 0)
		return rc;
	if (clear + TAG_LEN + c->h.sealed_len != v->mv_size ||
	    c->h.state >= CS__COUNT)
		return MDB_CORRUPTED;
	c->recip = (const char *)p + sizeof(c->h);
	c->deny = p + sizeof(c->h) + c->h.recip_len;
	c->sealed = c->h.sealed_len > 0 ? p + clear + TAG_LEN : NULL;
	view_of(&c->h, &c->v);
	return 0;
}

/* A cview row: struct cview, recipients, denies. */
static int
view_parse(const MDB_val *v, struct consent *c)
{
	const uint8_t	*p = v->mv_data;

	if (v->mv_size < sizeof(c->v))
		return -1;
	memcpy(&c->v, p, sizeof(c->v));
	if (sizeof(c->v) + c->v.recip_len + c->v.deny_len != v->mv_size)
		return -1;
	c->recip = (const char *)p + sizeof(c->v);
	c->deny = p + sizeof(c->v) + c->v.recip_len;
	c->sealed = NULL;
	return 0;
}

int
store_consent_get(struct store *st, struct store_txn *t,
    const uint8_t cid[16], struct consent *c)
{
	MDB_val	k = { 16, (void *)cid }, v;
	int	rc;

	if ((rc = mdb_get(txn_of(t), st->consent, &k, &v)) != 0 ||
	    (rc = consent_value(st, &k, &v, c)) != 0)
		return store_rc(rc, "consent");
	memcpy(c->cid, cid, 16);
	return 0;
}

/*
 * Was this consent, found under identifier `scheme` of ps, already given
 * under an earlier identifier of ps?  In cview, only if its subject has
 * that scheme with a matching tag, and then the index row says for
 * certain; in csubj (no view to go by) the row says.
 */
static int
seen_before(struct store *st, MDB_txn *txn, MDB_dbi dbi, uint8_t dom,
    const struct subject_ps *ps, int scheme, const uint8_t cid[16],
    const struct cview *view)
{
	uint8_t	key[IKEY_LEN];
	MDB_val	k = { sizeof(key), key }, v;
	int	j, rc;

	(void)st;
	(void)dom;
	for (j = 0; j < scheme; j++) {
		if (!(ps->has & (1u << j)))
			continue;
		if (view != NULL && (!(view->has & (1u << j)) ||
		    memcmp(view->tag[j], ps->id[j], CVIEW_TAGLEN) != 0))
			continue;
		ikey_make(key, ps->id[j], cid);
		if ((rc = mdb_get(txn, dbi, &k, &v)) == 0)
			return 1;
		if (rc != MDB_NOTFOUND)
			return -1;
	}
	return 0;
}

/*
 * The consents of ps in one of the two indexes, each once.  From cview the
 * function gets decision views; from csubj, whole records (read through
 * the consent database).
 */
static int
scan(struct store *st, MDB_txn *txn, MDB_dbi dbi, uint8_t dom,
    const struct subject_ps *ps, int (*fn)(const struct consent *, void *),
    void *arg)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	struct consent	 c;
	uint8_t		 key[IKEY_LEN];
	int		 i, rc, seen, frc = 0;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return store_rc(rc, "consent index");
	for (i = 0; i < SCHEME__COUNT && frc == 0; i++) {
		if (!(ps->has & (1u << i)))
			continue;
		memcpy(key, ps->id[i], CVIEW_KEYLEN);
		memset(key + CVIEW_KEYLEN, 0, 16);
		k.mv_size = sizeof(key);
		k.mv_data = key;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		while (rc == 0 && frc == 0 && k.mv_size == sizeof(key) &&
		    memcmp(k.mv_data, ps->id[i], CVIEW_KEYLEN) == 0) {
			const uint8_t *cid = (const uint8_t *)k.mv_data +
			    CVIEW_KEYLEN;

			if ((rc = tag_check(st, dom, &k, &v)) != 0)
				break;
			if (dom == TD_CVIEW && view_parse(&v, &c) == -1) {
				rc = MDB_CORRUPTED;
				break;
			}
			memcpy(c.cid, cid, 16);
			seen = seen_before(st, txn, dbi, dom, ps, i, cid,
			    dom == TD_CVIEW ? &c.v : NULL);
			if (seen == -1) {
				rc = MDB_CORRUPTED;
				break;
			}
			if (!seen && dom == TD_CSUBJ) {
				MDB_val ck = { 16, c.cid }, cv;

				if ((rc = mdb_get(txn, st->consent, &ck,
				    &cv)) != 0 ||
				    (rc = consent_value(st, &ck, &cv,
				    &c)) != 0) {
					if (rc == MDB_NOTFOUND)
						rc = MDB_CORRUPTED;
					break;
				}
			}
			if (!seen)
				frc = fn(&c, arg);
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		if (rc != 0 && rc != MDB_NOTFOUND)
			break;
		rc = 0;
	}
	mdb_cursor_close(cur);
	if (rc != 0)
		return store_rc(rc, "consent index");
	return frc;
}

int
store_consents_of(struct store *st, struct store_txn *t,
    const struct subject_ps *ps, int (*fn)(const struct consent *, void *),
    void *arg)
{
	return scan(st, txn_of(t), st->cview, TD_CVIEW, ps, fn, arg);
}

int
store_consents_all(struct store *st, struct store_txn *t,
    const struct subject_ps *ps, int (*fn)(const struct consent *, void *),
    void *arg)
{
	return scan(st, txn_of(t), st->csubj, TD_CSUBJ, ps, fn, arg);
}

/* The cids gathered by store_consent_cids. */
struct cids {
	uint8_t	(*cid)[16];
	size_t	 n, cap;
};

static int
collect_cid(const struct consent *c, void *arg)
{
	struct cids	*l = arg;

	if (l->n == l->cap) {
		size_t	 cap = l->cap ? l->cap * 2 : 16;
		void	*p = reallocarray(l->cid, cap, sizeof(*l->cid));

		if (p == NULL)
			return STORE_NOMEM;
		l->cid = p;
		l->cap = cap;
	}
	memcpy(l->cid[l->n++], c->cid, 16);
	return 0;
}

int
store_consent_cids(struct store *st, struct store_txn *t,
    const struct subject_ps *ps, bool all, uint8_t (**cids)[16], size_t *n)
{
	struct cids	l = { NULL, 0, 0 };
	int		rc;

	rc = all ? store_consents_all(st, t, ps, collect_cid, &l) :
	    store_consents_of(st, t, ps, collect_cid, &l);
	if (rc != 0) {
		free(l.cid);
		l.cid = NULL;
		l.n = 0;
	}
	*cids = l.cid;
	*n = l.n;
	return rc;
}

/* The index rows of one consent version: csubj always, cview while it
 * can permit or deny (and removed when it no longer can). */
static int
index_one(struct store *st, MDB_txn *txn, const uint8_t cid[16],
    const struct consent_hdr *h, const char *recip, const void *deny)
{
	struct cview	 view;
	uint8_t		 key[IKEY_LEN], *p;
	MDB_val		 k = { sizeof(key), key };
	size_t		 len;
	int		 i, rc;

	view_of(h, &view);
	len = sizeof(view) + h->recip_len + h->deny_len;
	for (i = 0; i < SCHEME__COUNT; i++) {
		if (!(h->subj.has & (1u << i)))
			continue;
		ikey_make(key, h->subj.id[i], cid);
		if ((rc = tag_put(st, txn, st->csubj, TD_CSUBJ, &k, "", 0,
		    0)) != 0)
			return rc;
		if (!in_view(h->state)) {
			rc = mdb_del(txn, st->cview, &k, NULL);
			if (rc != 0 && rc != MDB_NOTFOUND)
				return rc;
			continue;
		}
		if ((rc = tag_reserve(st, txn, st->cview, &k, len, 0,
		    &p)) != 0)
			return rc;
		memcpy(p, &view, sizeof(view));
		memcpy(p + sizeof(view), recip, h->recip_len);
		memcpy(p + sizeof(view) + h->recip_len, deny, h->deny_len);
		if ((rc = tag_seal(st, TD_CVIEW, &k, p, len)) != 0)
			return rc;
	}
	return 0;
}

int
store_consent_put(struct store *st, struct store_txn *t, const uint8_t cid[16],
    const struct consent_hdr *h0, const char *recip, const void *deny,
    const void *hist, size_t histlen)
{
	MDB_txn			*txn = txn_of(t);
	struct consent_hdr	 h = *h0;
	MDB_val			 k = { 16, (void *)cid };
	uint8_t			*p;
	size_t			 clear;
	int			 rc;

	h.sealed_len = histlen + SEAL_OVERHEAD;
	clear = sizeof(h) + h.recip_len + h.deny_len;
	if ((rc = tag_reserve(st, txn, st->consent, &k, clear + h.sealed_len,
	    0, &p)) != 0)
		return store_rc(rc, "consent");
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), recip, h.recip_len);
	memcpy(p + sizeof(h) + h.recip_len, deny, h.deny_len);
	if (tag_seal(st, TD_CONSENT, &k, p, clear) != 0 ||
	    seal_seal(&st->seal, cid, 16, hist, histlen,
	    p + clear + TAG_LEN) == -1)
		return STORE_NOMEM;
	/* The decision view under each pseudonym. */
	return store_rc(index_one(st, txn, cid, &h, recip, deny),
	    "consent index");
}

/*
 * Build cview and csubj again from the consents (a store upgraded, or an
 * index found damaged).  A consent whose record fails its tag is left out
 * of the indexes, with a line in the log: nothing is decided on damage.
 */
int
consent_reindex(struct store *st, MDB_txn *txn)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	struct consent	 c;
	int		 rc;

	if ((rc = mdb_drop(txn, st->cview, 0)) != 0 ||
	    (rc = mdb_drop(txn, st->csubj, 0)) != 0 ||
	    (rc = mdb_cursor_open(txn, st->consent, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		if (k.mv_size != 16 || consent_value(st, &k, &v, &c) != 0) {
			log_warnx("store: a damaged consent left out of the "
			    "indexes");
			continue;
		}
		if ((rc = index_one(st, txn, k.mv_data, &c.h, c.recip,
		    c.deny)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

void *
store_consent_history(struct store *st, const struct consent *c, size_t *len)
{
	uint8_t	*out;

	if (c->h.sealed_len < SEAL_OVERHEAD)
		return NULL;
	*len = c->h.sealed_len - SEAL_OVERHEAD;
	if ((out = malloc(*len + 1)) == NULL)
		return NULL;
	if (seal_open(&st->seal, c->cid, 16, c->sealed, c->h.sealed_len,
	    out) == -1) {
		free(out);
		return NULL;
	}
	return out;
}

bool
idlist_has(const char *list, size_t len, const char *id)
{
	const char	*p = list, *end = list + len;
	size_t		 n = strlen(id);

	while (p < end) {
		size_t l = strnlen(p, (size_t)(end - p));

		if (l == n && memcmp(p, id, n) == 0)
			return true;
		p += l + 1;
	}
	return false;
}
