/*
 * store_notice.c - notices waiting for their agency's ack, and the
 * disclosure index that says who must be told.
 *
 *   notice  nid -> struct notice_hdr, tag, sealed body: the notice's
 *           fields (packed key/value pairs, the frame's but v, op and
 *           dseq); the queue entry (Q_NOTICE) names it by nid
 *   discl   cid agency "\0" mid -> struct discl, tag, sealed subject: each
 *           record an agency acknowledged, under the consent it relied
 *           on, with the identifiers it was given (a packed subject map)
 *
 * Both seal their variable part (the body may name identifiers) under
 * the record's key as associated data, as messages and consents do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"

#define DKEY_MAX	(16 + CC_ID_MAX + 1 + 16)

static size_t	dkey_make(uint8_t *, const uint8_t cid[16], const char *,
		    const uint8_t mid[16]);
static int	sealed_put(struct store *, MDB_txn *, MDB_dbi, uint8_t,
		    MDB_val *, const void *, size_t, const void *, size_t);
static int	sealed_open(struct store *, const MDB_val *, const uint8_t *,
		    size_t, void **, size_t *);

static size_t
dkey_make(uint8_t *key, const uint8_t cid[16], const char *agency,
    const uint8_t mid[16])
{
	size_t	n = strlen(agency);

	memcpy(key, cid, 16);
	memcpy(key + 16, agency, n + 1);
	memcpy(key + 17 + n, mid, 16);
	return 33 + n;
}

/* Put hdr (hlen bytes), its tag, then body sealed under the key. */
static int
sealed_put(struct store *st, MDB_txn *txn, MDB_dbi dbi, uint8_t dom,
    MDB_val *k, const void *hdr, size_t hlen, const void *body, size_t len)
{
	uint8_t	*p;
	int	 rc;

	if ((rc = tag_reserve(st, txn, dbi, k, hlen + len + SEAL_OVERHEAD,
	    0, &p)) != 0)
		return rc;
	memcpy(p, hdr, hlen);
	if (tag_seal(st, dom, k, p, hlen) != 0 ||
	    seal_seal(&st->seal, k->mv_data, k->mv_size, body, len,
	    p + hlen + TAG_LEN) == -1)
		return ENOMEM;
	return 0;
}

/* Open a sealed part into a malloc'd buffer (a NUL after it). */
static int
sealed_open(struct store *st, const MDB_val *k, const uint8_t *sealed,
    size_t len, void **out, size_t *outlen)
{
	uint8_t	*p;

	if (len < SEAL_OVERHEAD)
		return STORE_CORRUPT;
	if ((p = malloc(len - SEAL_OVERHEAD + 1)) == NULL)
		return STORE_NOMEM;
	if (seal_open(&st->seal, k->mv_data, k->mv_size, sealed, len,
	    p) == -1) {
		free(p);
		return STORE_CORRUPT;
	}
	p[len - SEAL_OVERHEAD] = '\0';
	*out = p;
	*outlen = len - SEAL_OVERHEAD;
	return 0;
}

int
notice_value(struct store *st, const MDB_val *k, const MDB_val *v,
    struct notice_hdr *h, const uint8_t **sealed)
{
	int	rc;

	if ((rc = tag_check_clear(st, TD_NOTICE, k, v, sizeof(*h))) != 0)
		return rc;
	memcpy(h, v->mv_data, sizeof(*h));
	if (v->mv_size != sizeof(*h) + TAG_LEN + h->sealed_len ||
	    h->sealed_len < SEAL_OVERHEAD || h->kind >= NT__COUNT)
		return MDB_CORRUPTED;
	*sealed = (const uint8_t *)v->mv_data + sizeof(*h) + TAG_LEN;
	return 0;
}

int
discl_value(struct store *st, const MDB_val *k, const MDB_val *v,
    struct discl *d, const uint8_t **sealed)
{
	int	rc;

	if ((rc = tag_check_clear(st, TD_DISCL, k, v, sizeof(*d))) != 0)
		return rc;
	memcpy(d, v->mv_data, sizeof(*d));
	if (v->mv_size != sizeof(*d) + TAG_LEN + d->sealed_len ||
	    d->sealed_len < SEAL_OVERHEAD)
		return MDB_CORRUPTED;
	*sealed = (const uint8_t *)v->mv_data + sizeof(*d) + TAG_LEN;
	return 0;
}

int
store_notice_put(struct store *st, struct store_txn *t, const uint8_t nid[16],
    const struct notice_hdr *h0, const void *body, size_t len)
{
	struct notice_hdr	h = *h0;
	MDB_val			k = { 16, (void *)nid };

	h.sealed_len = (uint32_t)(len + SEAL_OVERHEAD);
	return store_rc(sealed_put(st, txn_of(t), st->notice, TD_NOTICE, &k,
	    &h, sizeof(h), body, len), "notice");
}

int
store_notice_get(struct store *st, struct store_txn *t, const uint8_t nid[16],
    struct notice_hdr *h, void **body, size_t *len)
{
	MDB_val		 k = { 16, (void *)nid }, v;
	const uint8_t	*sealed;
	int		 rc;

	*body = NULL;
	if ((rc = mdb_get(txn_of(t), st->notice, &k, &v)) != 0 ||
	    (rc = notice_value(st, &k, &v, h, &sealed)) != 0)
		return store_rc(rc, "notice");
	return sealed_open(st, &k, sealed, h->sealed_len, body, len);
}

int
store_notice_del(struct store *st, struct store_txn *t, const uint8_t nid[16])
{
	MDB_val	k = { 16, (void *)nid };

	return store_rc(mdb_del(txn_of(t), st->notice, &k, NULL), "notice");
}

int
store_discl_put(struct store *st, struct store_txn *t, const uint8_t cid[16],
    const char *agency, const uint8_t mid[16], const struct discl *d0,
    const void *subj, size_t len)
{
	struct discl	d = *d0;
	uint8_t		key[DKEY_MAX];
	MDB_val		k;

	if (strlen(agency) > CC_ID_MAX)
		return STORE_CORRUPT;
	k.mv_size = dkey_make(key, cid, agency, mid);
	k.mv_data = key;
	d.sealed_len = (uint32_t)(len + SEAL_OVERHEAD);
	return store_rc(sealed_put(st, txn_of(t), st->discl, TD_DISCL, &k,
	    &d, sizeof(d), subj, len), "disclosure");
}

/*
 * Every disclosure under a consent, in agency then mid order.  The
 * callback gets the subject as given (opened; NULL with len 0 when it
 * cannot be opened: the disclosure is still one) and must not write.
 */
int
store_discl_each(struct store *st, struct store_txn *t, const uint8_t cid[16],
    int (*fn)(const char *agency, const uint8_t mid[16],
    const struct discl *, const void *subj, size_t len, void *), void *arg)
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	struct discl	 d;
	const uint8_t	*sealed, *kp;
	char		 agency[CC_ID_MAX + 1];
	void		*subj;
	size_t		 len, n;
	int		 rc, r2;

	if ((rc = mdb_cursor_open(txn_of(t), st->discl, &cur)) != 0)
		return store_rc(rc, "disclosure");
	k.mv_size = 16;
	k.mv_data = (void *)cid;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		kp = k.mv_data;
		if (k.mv_size < 16 || memcmp(kp, cid, 16) != 0)
			break;
		n = k.mv_size > 33 ? k.mv_size - 33 : 0;
		if (k.mv_size < 34 || n > CC_ID_MAX || kp[16 + n] != '\0' ||
		    (r2 = discl_value(st, &k, &v, &d, &sealed)) != 0) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(agency, kp + 16, n + 1);
		subj = NULL;
		len = 0;
		if (sealed_open(st, &k, sealed, d.sealed_len, &subj,
		    &len) != 0)
			subj = NULL;
		r2 = fn(agency, kp + 17 + n, &d, subj, len, arg);
		free(subj);
		if (r2 != 0) {
			mdb_cursor_close(cur);
			return r2;
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : store_rc(rc, "disclosure");
}
