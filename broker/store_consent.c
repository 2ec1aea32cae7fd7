/*
 * store_consent.c - consents and their subject index.
 *
 * A consent value is struct consent_hdr, the NUL-separated recipient ids,
 * the deny entries, and the sealed history (subject identifiers, evidence,
 * every version).  The header carries only what the decision needs, with
 * the subject as pseudonyms, so deciding never opens a seal; a copy of it
 * without the seal is kept under each pseudonym of the subject (cview) so
 * a decision reads one key range per identifier.
 */
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"

static int	consent_parse(const MDB_val *, struct consent *);
static int	view_parse(const MDB_val *, struct consent *);
static void	view_of(const struct consent_hdr *, struct cview *);
static int	seen_before(struct store *, MDB_txn *,
		    const struct subject_ps *, int, const struct consent *);

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

static int
consent_parse(const MDB_val *v, struct consent *c)
{
	const uint8_t	*p = v->mv_data;
	size_t		 need;

	if (v->mv_size < sizeof(c->h))
		return -1;
	memcpy(&c->h, p, sizeof(c->h));
	need = sizeof(c->h) + c->h.recip_len + c->h.deny_len + c->h.sealed_len;
	if (need != v->mv_size)
		return -1;
	c->recip = (const char *)p + sizeof(c->h);
	c->deny = p + sizeof(c->h) + c->h.recip_len;
	c->sealed = c->h.sealed_len > 0 ? c->deny + c->h.deny_len : NULL;
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

	if ((rc = mdb_get(txn_of(t), st->consent, &k, &v)) != 0)
		return store_rc(rc, "consent");
	memcpy(c->cid, cid, 16);
	return consent_parse(&v, c) == 0 ? 0 : store_rc(MDB_CORRUPTED,
	    "consent");
}

/*
 * Was this consent, found under identifier `scheme` of ps, already given
 * under an earlier identifier of ps?  Only if its subject has that scheme
 * with a matching tag, and then the index row says for certain.
 */
static int
seen_before(struct store *st, MDB_txn *txn, const struct subject_ps *ps,
    int scheme, const struct consent *c)
{
	uint8_t	key[CVIEW_KEYLEN + 16];
	MDB_val	k = { sizeof(key), key }, v;
	int	j, rc;

	for (j = 0; j < scheme; j++) {
		if (!(ps->has & c->v.has & (1u << j)) ||
		    memcmp(c->v.tag[j], ps->id[j], CVIEW_TAGLEN) != 0)
			continue;
		memcpy(key, ps->id[j], CVIEW_KEYLEN);
		memcpy(key + CVIEW_KEYLEN, c->cid, 16);
		if ((rc = mdb_get(txn, st->cview, &k, &v)) == 0)
			return 1;
		if (rc != MDB_NOTFOUND)
			return -1;
	}
	return 0;
}

int
store_consents_of(struct store *st, struct store_txn *t,
    const struct subject_ps *ps, int (*fn)(const struct consent *, void *),
    void *arg)
{
	MDB_txn		*txn = txn_of(t);
	MDB_cursor	*cur;
	MDB_val		 k, v;
	struct consent	 c;
	uint8_t		 key[CVIEW_KEYLEN + 16];
	int		 i, rc, seen, frc = 0;

	if ((rc = mdb_cursor_open(txn, st->cview, &cur)) != 0)
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
			if (view_parse(&v, &c) == -1) {
				rc = MDB_CORRUPTED;
				break;
			}
			memcpy(c.cid, (const uint8_t *)k.mv_data +
			    CVIEW_KEYLEN, 16);
			if ((seen = seen_before(st, txn, ps, i, &c)) == -1) {
				rc = MDB_CORRUPTED;
				break;
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
store_consent_put(struct store *st, struct store_txn *t, const uint8_t cid[16],
    const struct consent_hdr *h0, const char *recip, const void *deny,
    const void *hist, size_t histlen)
{
	MDB_txn			*txn = txn_of(t);
	struct consent_hdr	 h = *h0;
	struct cview		 view;
	MDB_val			 k = { 16, (void *)cid }, v;
	uint8_t			*p;
	int			 i, rc;

	h.sealed_len = histlen + SEAL_OVERHEAD;
	v.mv_size = sizeof(h) + h.recip_len + h.deny_len + h.sealed_len;
	if ((rc = mdb_put(txn, st->consent, &k, &v, MDB_RESERVE)) != 0)
		return store_rc(rc, "consent");
	p = v.mv_data;
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), recip, h.recip_len);
	memcpy(p + sizeof(h) + h.recip_len, deny, h.deny_len);
	if (seal_seal(&st->seal, cid, 16, hist, histlen,
	    p + sizeof(h) + h.recip_len + h.deny_len) == -1)
		return STORE_NOMEM;
	/* The decision view under each pseudonym. */
	view_of(&h, &view);
	for (i = 0; i < SCHEME__COUNT; i++) {
		uint8_t	key[CVIEW_KEYLEN + 16];
		MDB_val	vk = { sizeof(key), key }, vv;

		if (!(h.subj.has & (1u << i)))
			continue;
		memcpy(key, h.subj.id[i], CVIEW_KEYLEN);
		memcpy(key + CVIEW_KEYLEN, cid, 16);
		vv.mv_size = sizeof(view) + h.recip_len + h.deny_len;
		if ((rc = mdb_put(txn, st->cview, &vk, &vv, MDB_RESERVE)) != 0)
			return store_rc(rc, "consent index");
		p = vv.mv_data;
		memcpy(p, &view, sizeof(view));
		memcpy(p + sizeof(view), recip, h.recip_len);
		memcpy(p + sizeof(view) + h.recip_len, deny, h.deny_len);
	}
	return 0;
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
