/*
 * store_consent.c - consents and their subject index.
 *
 * A consent value is struct consent_hdr, the NUL-separated recipient ids,
 * the deny entries, and the sealed history (subject identifiers, evidence,
 * every version).  The header carries only what the decision needs, with
 * the subject as pseudonyms, so deciding never opens a seal.
 */
#include <stdlib.h>
#include <string.h>

#include "store.h"

static int	consent_parse(const MDB_val *, struct consent *);

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
	c->sealed = c->deny + c->h.deny_len;
	return 0;
}

int
store_consent_get(struct store *st, MDB_txn *txn, const uint8_t cid[16],
    struct consent *c)
{
	MDB_val	k = { 16, (void *)cid }, v;
	int	rc;

	if ((rc = mdb_get(txn, st->consent, &k, &v)) != 0)
		return rc;
	memcpy(c->cid, cid, 16);
	return consent_parse(&v, c) == 0 ? 0 : MDB_CORRUPTED;
}

int
store_consents_of(struct store *st, MDB_txn *txn, const struct subject_ps *ps,
    struct consent *out, int max)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	int		 i, j, n = 0, rc;
	bool		 seen;

	if (mdb_cursor_open(txn, st->csubj, &cur) != 0)
		return -1;
	for (i = 0; i < SCHEME__COUNT; i++) {
		if (!(ps->has & (1u << i)))
			continue;
		k.mv_size = PSEUDO_LEN;
		k.mv_data = (void *)ps->id[i];
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
		while (rc == 0) {
			if (v.mv_size != 16)
				goto fail;
			seen = false;
			for (j = 0; j < n && !seen; j++)
				seen = memcmp(out[j].cid, v.mv_data, 16) == 0;
			if (!seen) {
				if (n == max)
					goto fail;
				if (store_consent_get(st, txn, v.mv_data,
				    &out[n]) != 0)
					goto fail;
				n++;
			}
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
		}
		if (rc != MDB_NOTFOUND)
			goto fail;
	}
	mdb_cursor_close(cur);
	return n;
fail:
	mdb_cursor_close(cur);
	return -1;
}

int
store_consent_put(struct store *st, MDB_txn *txn, const uint8_t cid[16],
    const struct consent_hdr *h0, const char *recip, const void *deny,
    const void *hist, size_t histlen)
{
	struct consent_hdr	 h = *h0;
	MDB_val			 k = { 16, (void *)cid }, v;
	uint8_t			*p;
	int			 i, rc;

	h.sealed_len = histlen + SEAL_OVERHEAD;
	v.mv_size = sizeof(h) + h.recip_len + h.deny_len + h.sealed_len;
	if ((rc = mdb_put(txn, st->consent, &k, &v, MDB_RESERVE)) != 0)
		return rc;
	p = v.mv_data;
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), recip, h.recip_len);
	memcpy(p + sizeof(h) + h.recip_len, deny, h.deny_len);
	if (seal_seal(&st->seal, cid, 16, hist, histlen,
	    p + sizeof(h) + h.recip_len + h.deny_len) == -1)
		return MDB_PANIC;
	for (i = 0; i < SCHEME__COUNT; i++) {
		MDB_val pk = { PSEUDO_LEN, (void *)h.subj.id[i] };
		MDB_val pv = { 16, (void *)cid };

		if (!(h.subj.has & (1u << i)))
			continue;
		rc = mdb_put(txn, st->csubj, &pk, &pv, MDB_NODUPDATA);
		if (rc != 0 && rc != MDB_KEYEXIST)
			return rc;
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
