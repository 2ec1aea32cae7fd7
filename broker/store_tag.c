/*
 * store_tag.c - integrity tags on stored values.
 *
 * A bit flipped on disk, or an edit of the file, changes what the broker
 * would do with a value (who receives a record, when it expires, what a
 * receipt says).  Every value (but the hash-chained audit entries) is
 * stored followed by a tag binding it to its database and key, and a
 * value is used only once its tag checks: damage is reported, never
 * acted on.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

#include "store_impl.h"

int
tag_make(struct store *st, uint8_t dom, const MDB_val *k, const void *v,
    size_t len, uint8_t out[TAG_LEN])
{
	return seal_tag(&st->seal, dom, k->mv_data, k->mv_size, v, len,
	    out) == 0 ? 0 : ENOMEM;
}

int
tag_put(struct store *st, MDB_txn *txn, MDB_dbi dbi, uint8_t dom, MDB_val *k,
    const void *v, size_t len, unsigned flags)
{
	uint8_t	*p;
	int	 rc;

	if ((rc = tag_reserve(st, txn, dbi, k, len, flags, &p)) != 0)
		return rc;
	memcpy(p, v, len);
	return tag_seal(st, dom, k, p, len);
}

int
tag_reserve(struct store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k,
    size_t len, unsigned flags, uint8_t **p)
{
	MDB_val	v = { len + TAG_LEN, NULL };
	int	rc;

	(void)st;
	if ((rc = mdb_put(txn, dbi, k, &v, flags | MDB_RESERVE)) != 0)
		return rc;
	*p = v.mv_data;
	return 0;
}

int
tag_seal(struct store *st, uint8_t dom, const MDB_val *k, uint8_t *p,
    size_t len)
{
	return tag_make(st, dom, k, p, len, p + len);
}

/*
 * The longest value (without its tag) a database holds.  A flipped bit in
 * the size LMDB keeps for a value makes it run on past its page, perhaps
 * past the end of the file (SIGBUS): a value longer than its database
 * ever holds fails its check before a byte of it is read.  Messages and
 * consents are bounded by their own headers (msg_value, consent_value).
 */
static size_t
value_max(uint8_t dom)
{
	switch (dom) {
	case TD_QUEUE:
		return sizeof(struct qent);
	case TD_RSTATE:
		return sizeof(struct rstate);
	case TD_EXPIRY:
		return 1;
	case TD_SUBS:
		return sizeof(struct sub);
	case TD_CSUBJ:
		return 0;
	case TD_QSUBJ:
		return 16;
	case TD_CVIEW:
		return sizeof(struct cview) + 2 * (size_t)UINT16_MAX;
	case TD_META:
		return META_VALUE_MAX;
	default:
		return SIZE_MAX;
	}
}

int
tag_check(struct store *st, uint8_t dom, const MDB_val *k, MDB_val *v)
{
	uint8_t	t[TAG_LEN];
	size_t	len;

	if (v->mv_size < TAG_LEN || v->mv_size - TAG_LEN > value_max(dom) ||
	    k->mv_size > KEY_MAX)
		return TAG_MISMATCH;
	len = v->mv_size - TAG_LEN;
	if (tag_make(st, dom, k, v->mv_data, len, t) != 0)
		return ENOMEM;
	if (CRYPTO_memcmp(t, (const uint8_t *)v->mv_data + len, TAG_LEN) != 0)
		return TAG_MISMATCH;
	v->mv_size = len;
	return 0;
}

int
tag_check_clear(struct store *st, uint8_t dom, const MDB_val *k,
    const MDB_val *v, size_t clear)
{
	uint8_t	t[TAG_LEN];

	if (v->mv_size < clear + TAG_LEN || k->mv_size > KEY_MAX)
		return TAG_MISMATCH;
	if (tag_make(st, dom, k, v->mv_data, clear, t) != 0)
		return ENOMEM;
	if (CRYPTO_memcmp(t, (const uint8_t *)v->mv_data + clear,
	    TAG_LEN) != 0)
		return TAG_MISMATCH;
	return 0;
}

int
tag_get(struct store *st, MDB_txn *txn, MDB_dbi dbi, uint8_t dom, MDB_val *k,
    MDB_val *v)
{
	int	rc;

	if ((rc = mdb_get(txn, dbi, k, v)) != 0)
		return rc;
	return tag_check(st, dom, k, v);
}

/* LMDB's page and node headers (its file format of 0.9). */
#define PAGE_HDR	(sizeof(size_t) + 8)
#define NODE_HDR	8
#define AUDIT_KEYLEN	8

bool
entry_shaped(const struct store *st, uint8_t dom, const MDB_val *k,
    const MDB_val *v, bool placed)
{
	size_t	ks = k->mv_size, vs = v->mv_size, nodemax, vmin = TAG_LEN,
		vmax;
	bool	kok;

	switch (dom) {
	case TD_META:
		kok = ks > 0 && ks <= 32;
		vmin = 4;		/* the format record has no tag */
		break;
	case TD_CONSENT:
		kok = ks == 16;
		vmin += sizeof(struct consent_hdr);
		break;
	case TD_MSG:
		kok = ks == 16;
		vmin += sizeof(struct msg_hdr);
		break;
	case TD_CVIEW:
		kok = ks == CVIEW_KEYLEN + 16;
		vmin += sizeof(struct cview);
		break;
	case TD_CSUBJ:
		kok = ks == CVIEW_KEYLEN + 16;
		break;
	case TD_QUEUE:
		kok = ks >= 10 && ks <= CC_ID_MAX + 9 &&
		    ((const uint8_t *)k->mv_data)[ks - 9] == '\0';
		vmin += sizeof(struct qent);
		break;
	case TD_QSUBJ:
		kok = ks == PSEUDO_LEN;
		vmin += 16;
		break;
	case TD_RSTATE:
		kok = ks > 16 && ks <= 16 + CC_ID_MAX;
		vmin += sizeof(struct rstate);
		break;
	case TD_EXPIRY:
		kok = ks == 24;
		vmin += 1;
		break;
	case TD_SUBS:
		kok = ks > 0 && ks <= CC_ID_MAX;
		vmin += sizeof(struct sub);
		break;
	case TD_NOTICE:
		kok = ks == 16;
		vmin += sizeof(struct notice_hdr) + SEAL_OVERHEAD;
		break;
	case TD_DISCL:
		kok = ks >= 34 && ks <= 33 + CC_ID_MAX;
		vmin += sizeof(struct discl) + SEAL_OVERHEAD;
		break;
	default:			/* the audit: entries hash-chained */
		kok = ks == AUDIT_KEYLEN;
		vmin = 1;
		break;
	}
	vmax = dom == 0 ? 64 * 1024 : value_max(dom) == SIZE_MAX ? SIZE_MAX :
	    value_max(dom) + TAG_LEN;
	if (!kok || vs < vmin || vs > vmax)
		return false;
	if (!placed || dom == TD_QSUBJ)	/* duplicates never overflow */
		return true;
	/*
	 * LMDB keeps a value in its node unless node, key and value pass
	 * its largest node (half a page, less headers); then on overflow
	 * pages, right after the first one's header.  A value in its node
	 * never starts there.
	 */
	nodemax = (((st->psize - PAGE_HDR) / 2) & ~(size_t)1) - 2;
	return ((uintptr_t)v->mv_data % st->psize == PAGE_HDR) ==
	    (NODE_HDR + ks + vs > nodemax);
}
