/*
 * audit.c - append and verify the hash-chained audit trail.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <uuid/uuid.h>

#include "audit.h"

#define AUDIT_HEAD	"audit-head"

static const char *const event_names[EV__COUNT] = {
	[EV_ACCEPTED] = "accepted",
	[EV_DELIVERED] = "delivered",
	[EV_WITHHELD] = "withheld",
	[EV_PURGED] = "purged",
	[EV_EXPIRED] = "expired",
	[EV_CONSENT_GRANTED] = "consent-granted",
	[EV_CONSENT_WITHDRAWN] = "consent-withdrawn",
	[EV_CONSENT_REFUSED] = "consent-refused",
	[EV_CONNECTION_REFUSED] = "connection-refused",
	[EV_INPUT_REJECTED] = "input-rejected",
};

/*
 * The newest entry this process appended and its hash, so that the next
 * entry's `prev` is not hashed again.  Used only when the stored newest
 * entry has exactly these bytes: an append undone with its nested
 * transaction, or another writer, simply means hashing it.
 */
static struct {
	uint64_t	 seq;
	uint8_t		*data;
	size_t		 len, cap;
	uint8_t		 hash[SHA256_DIGEST_LENGTH];
} newest;

static int	sha256(const void *, size_t, uint8_t *);
static void	remember(uint64_t, const void *, size_t, const uint8_t *);
static int	last_entry(struct store *, MDB_txn *, uint64_t *,
		    uint8_t [SHA256_DIGEST_LENGTH]);
static void	pack_kv(msgpack_packer *, const char *, const char *);
static void	pack_hex(msgpack_packer *, const uint8_t *, size_t);

const char *
audit_event_name(enum audit_event e)
{
	return (unsigned)e < EV__COUNT ? event_names[e] : NULL;
}

/* SHA-256 with the digest fetched once (SHA256() fetches it every call). */
static int
sha256(const void *p, size_t n, uint8_t *out)
{
	static EVP_MD	*md;

	if (md == NULL && (md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		return -1;
	return EVP_Digest(p, n, out, NULL, md, NULL) == 1 ? 0 : -1;
}

static void
remember(uint64_t seq, const void *p, size_t n, const uint8_t *hash)
{
	if (n > newest.cap) {
		uint8_t *d = realloc(newest.data, n);

		if (d == NULL) {
			newest.len = 0;
			return;
		}
		newest.data = d;
		newest.cap = n;
	}
	memcpy(newest.data, p, n);
	newest.len = n;
	newest.seq = seq;
	memcpy(newest.hash, hash, SHA256_DIGEST_LENGTH);
}

/*
 * The newest entry in txn: its seq and hash (from `newest` when it holds
 * exactly these bytes).  Returns 0, MDB_NOTFOUND or an error.
 */
static int
last_entry(struct store *st, MDB_txn *txn, uint64_t *seq,
    uint8_t hash[SHA256_DIGEST_LENGTH])
{
	MDB_cursor	*cur;
	MDB_val		 k, v;
	int		 rc;

	if ((rc = mdb_cursor_open(txn, st->audit, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size != 8)
		rc = MDB_CORRUPTED;
	if (rc == 0) {
		*seq = be64_get(k.mv_data);
		if (newest.len != 0 && newest.seq == *seq &&
		    newest.len == v.mv_size &&
		    memcmp(newest.data, v.mv_data, v.mv_size) == 0)
			memcpy(hash, newest.hash, SHA256_DIGEST_LENGTH);
		else if (sha256(v.mv_data, v.mv_size, hash) == -1)
			rc = ENOMEM;
	}
	mdb_cursor_close(cur);
	return rc;
}

static void
pack_kv(msgpack_packer *pk, const char *k, const char *v)
{
	proto_pack_cstr(pk, k);
	if (v != NULL)
		proto_pack_cstr(pk, v);
	else
		msgpack_pack_nil(pk);
}

static void
pack_hex(msgpack_packer *pk, const uint8_t *p, size_t n)
{
	static const char	hex[] = "0123456789abcdef";
	char			buf[2 * PSEUDO_LEN];
	size_t			i;

	for (i = 0; i < n && i < PSEUDO_LEN; i++) {
		buf[2 * i] = hex[p[i] >> 4];
		buf[2 * i + 1] = hex[p[i] & 15];
	}
	proto_pack_strn(pk, buf, 2 * i);
}

/*
 * The entry is a msgpack map: seq, t (ms), ev, id, type, sender, recipient,
 * subject (pseudonyms in hex), cats, withheld, consent {cid, version},
 * reason, prev (SHA-256 of the previous entry, 32 bytes).
 */
int
audit_append(struct store *st, MDB_txn *txn, const struct audit_ev *e)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	MDB_val		 k, v;
	uint8_t		 prev[SHA256_DIGEST_LENGTH] = { 0 }, key[8];
	uint64_t	 seq;
	char		 cid[37];
	int		 i, nsub = 0, rc;

	if ((rc = last_entry(st, txn, &seq, prev)) == 0)
		seq++;
	else if (rc == MDB_NOTFOUND)
		seq = 1;
	else
		return rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 13);
	proto_pack_cstr(&pk, "seq");
	msgpack_pack_uint64(&pk, seq);
	proto_pack_cstr(&pk, "t");
	msgpack_pack_int64(&pk, cc_time_now_ms());
	pack_kv(&pk, "ev", audit_event_name(e->event));
	pack_kv(&pk, "id", e->id);
	pack_kv(&pk, "type", e->type);
	pack_kv(&pk, "sender", e->sender);
	pack_kv(&pk, "recipient", e->recipient);
	proto_pack_cstr(&pk, "subject");
	if (e->subj != NULL)
		for (i = 0; i < SCHEME__COUNT; i++)
			nsub += (e->subj->has >> i) & 1;
	msgpack_pack_array(&pk, nsub);
	for (i = 0; e->subj != NULL && i < SCHEME__COUNT; i++)
		if (e->subj->has & (1u << i))
			pack_hex(&pk, e->subj->id[i], PSEUDO_LEN);
	proto_pack_cstr(&pk, "cats");
	proto_pack_catset(&pk, e->cats);
	proto_pack_cstr(&pk, "withheld");
	proto_pack_catset(&pk, e->withheld);
	proto_pack_cstr(&pk, "consent");
	if (e->cid != NULL) {
		uuid_unparse_lower(e->cid, cid);
		msgpack_pack_map(&pk, 2);
		pack_kv(&pk, "cid", cid);
		proto_pack_cstr(&pk, "version");
		msgpack_pack_uint32(&pk, e->version);
	} else
		msgpack_pack_nil(&pk);
	pack_kv(&pk, "reason", e->reason);
	proto_pack_cstr(&pk, "prev");
	msgpack_pack_bin(&pk, sizeof(prev));
	msgpack_pack_bin_body(&pk, prev, sizeof(prev));

	be64_put(key, seq);
	k.mv_size = 8;
	k.mv_data = key;
	v.mv_size = sb.size;
	v.mv_data = sb.data;
	rc = mdb_put(txn, st->audit, &k, &v, MDB_APPEND);
	if (rc == 0) {
		uint8_t hash[SHA256_DIGEST_LENGTH];

		if (sha256(sb.data, sb.size, hash) == -1)
			rc = ENOMEM;
		else
			remember(seq, sb.data, sb.size, hash);
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/*
 * The head (last seq and its hash) lives beside the chain, so that
 * changing or removing the newest entry is caught too.  It is recorded
 * once per transaction, from the newest entry the transaction holds, so
 * an append undone with a nested transaction is never part of it.
 */
int
audit_seal(struct store *st, MDB_txn *txn)
{
	MDB_val		 hk = { sizeof(AUDIT_HEAD) - 1, (void *)AUDIT_HEAD }, hv;
	uint8_t		 head[8 + SHA256_DIGEST_LENGTH];
	uint64_t	 seq;
	int		 rc;

	if ((rc = last_entry(st, txn, &seq, head + 8)) == MDB_NOTFOUND)
		return 0;		/* no entry yet */
	if (rc != 0)
		return rc;
	be64_put(head, seq);
	rc = mdb_get(txn, st->meta, &hk, &hv);
	if (rc == 0 && hv.mv_size == sizeof(head) &&
	    memcmp(hv.mv_data, head, sizeof(head)) == 0)
		return 0;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	hv.mv_size = sizeof(head);
	hv.mv_data = head;
	return mdb_put(txn, st->meta, &hk, &hv, 0);
}

/* The `prev` and `seq` fields of an entry; -1 when it is not well formed. */
static int
entry_links(const MDB_val *v, uint64_t *seq, const uint8_t **prev)
{
	msgpack_unpacked	up;
	size_t			off = 0;
	uint32_t		i;
	int			rc = -1;

	*prev = NULL;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, v->mv_data, v->mv_size, &off) !=
	    MSGPACK_UNPACK_SUCCESS || off != v->mv_size ||
	    up.data.type != MSGPACK_OBJECT_MAP)
		goto out;
	for (i = 0; i < up.data.via.map.size; i++) {
		const msgpack_object_kv *kv = &up.data.via.map.ptr[i];

		if (kv->key.type != MSGPACK_OBJECT_STR)
			goto out;
		if (kv->key.via.str.size == 4 &&
		    memcmp(kv->key.via.str.ptr, "prev", 4) == 0 &&
		    kv->val.type == MSGPACK_OBJECT_BIN &&
		    kv->val.via.bin.size == SHA256_DIGEST_LENGTH)
			/* Points into v, not into the zone. */
			*prev = (const uint8_t *)kv->val.via.bin.ptr;
		if (kv->key.via.str.size == 3 &&
		    memcmp(kv->key.via.str.ptr, "seq", 3) == 0 &&
		    kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			*seq = kv->val.via.u64;
	}
	rc = *prev != NULL ? 0 : -1;
out:
	msgpack_unpacked_destroy(&up);
	return rc;
}

int
audit_verify(struct store *st, uint64_t *count, uint64_t *bad_seq, char *why,
    size_t whylen)
{
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	uint8_t		 hash[SHA256_DIGEST_LENGTH] = { 0 };
	const uint8_t	*prev;
	uint64_t	 seq, inner, expect = 1;
	int		 rc, result = 0;

	*count = 0;
	if (store_begin(st, false, &txn) != 0)
		return -1;
	if (mdb_cursor_open(txn, st->audit, &cur) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		seq = k.mv_size == 8 ? be64_get(k.mv_data) : 0;
		inner = 0;
		if (seq != expect) {
			*bad_seq = expect;
			snprintf(why, whylen, "entry %llu missing",
			    (unsigned long long)expect);
			result = 1;
			break;
		}
		if (entry_links(&v, &inner, &prev) == -1 || inner != seq) {
			*bad_seq = seq;
			snprintf(why, whylen, "entry %llu is not well formed",
			    (unsigned long long)seq);
			result = 1;
			break;
		}
		if (memcmp(prev, hash, sizeof(hash)) != 0) {
			*bad_seq = seq > 1 ? seq - 1 : seq;
			snprintf(why, whylen, "entry %llu does not match the "
			    "hash recorded in entry %llu",
			    (unsigned long long)*bad_seq,
			    (unsigned long long)seq);
			result = 1;
			break;
		}
		if (sha256(v.mv_data, v.mv_size, hash) == -1) {
			result = -1;
			break;
		}
		(*count)++;
		expect++;
	}
	if (result == 0 && rc != MDB_NOTFOUND)
		result = -1;
	if (result == 0) {
		MDB_val hk = { sizeof(AUDIT_HEAD) - 1, (void *)AUDIT_HEAD }, hv;

		rc = mdb_get(txn, st->meta, &hk, &hv);
		if (rc == 0 && (hv.mv_size != 8 + SHA256_DIGEST_LENGTH ||
		    be64_get(hv.mv_data) != expect - 1 ||
		    memcmp((uint8_t *)hv.mv_data + 8, hash, sizeof(hash)))) {
			*bad_seq = expect - 1;
			snprintf(why, whylen, "entry %llu does not match the "
			    "recorded head of the chain",
			    (unsigned long long)*bad_seq);
			result = 1;
		} else if (rc == MDB_NOTFOUND && expect > 1) {
			*bad_seq = expect - 1;
			snprintf(why, whylen, "head of the chain missing");
			result = 1;
		} else if (rc != 0 && rc != MDB_NOTFOUND)
			result = -1;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return result;
}
