/*
 * audit.c - append and verify the hash-chained audit trail.
 *
 * The chain is plain SHA-256, and what anchors it is the head exported
 * off the machine (`ccbroker audit head`, and the `audit head` line the
 * broker logs at start, at stop and each minute the head moves), which
 * `audit verify --head/--heads` compares with the store.  The chain alone
 * catches an entry changed or removed in the middle; a trail cut from the
 * tail, its recorded head rewritten to match, or an older copy of the
 * store put back, is consistent in itself and only an exported head shows
 * it.
 *
 * Why not a keyed chain (an HMAC under a key kept outside the data
 * directory)?  The broker must hold that key to append, so it lives on the
 * same host: whoever has root there, the attacker who can rewrite the
 * store, reads the key too and recomputes the chain after the cut; and a
 * keyed chain does nothing against an older store put back, whose chain
 * was made with the same key.  A head already in a journal on another
 * host is out of that attacker's reach.  A keyed chain would also keep
 * whoever may read the audit without the key (an auditor given a backup)
 * from checking it, and would change the link of every new entry, where
 * the entries' bytes and hashes are a format others rely on.  So: no key,
 * and heads exported.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <uuid/uuid.h>

#include "audit.h"
#include "bytes.h"

#define HEAD_LEN	(8 + SHA256_DIGEST_LENGTH)	/* seq(BE) hash */
#define HASHED_LEN	(7 + 2 * SHA256_DIGEST_LENGTH + 1) /* "sha256:" hex */

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
	[EV_NOTICE] = "notice",
	[EV_NOTICE_ACKED] = "notice-acked",
	[EV_RETRACTED] = "retracted",
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
static int	last_entry(struct store *, struct store_txn *, uint64_t *,
		    uint8_t [SHA256_DIGEST_LENGTH]);
static int	pack_kv(msgpack_packer *, const char *, const char *);
static bool	is_name(const char *, size_t);
static int	fit_text(const char *, bool (*)(const char *, size_t),
		    char [HASHED_LEN], const char **);
static int	pack_aggregate(msgpack_packer *, const struct audit_ev *);
static int	pack_strs(msgpack_packer *, const char *,
		    const char *const *, size_t);
static int	entry_links(const void *, size_t, uint64_t *, int64_t *,
		    const uint8_t **);
static int	head_cmp(const void *, const void *);

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
 * exactly these bytes).  Returns 0, STORE_NOTFOUND or an error.
 */
static int
last_entry(struct store *st, struct store_txn *txn, uint64_t *seq,
    uint8_t hash[SHA256_DIGEST_LENGTH])
{
	const void	*v;
	size_t		 len;
	int		 rc;

	if ((rc = store_audit_last(st, txn, seq, &v, &len)) != 0)
		return rc;
	if (newest.len != 0 && newest.seq == *seq && newest.len == len &&
	    memcmp(newest.data, v, len) == 0)
		memcpy(hash, newest.hash, SHA256_DIGEST_LENGTH);
	else if (sha256(v, len, hash) == -1)
		return STORE_NOMEM;
	return 0;
}

static int
pack_kv(msgpack_packer *pk, const char *k, const char *v)
{
	if (proto_pack_cstr(pk, k) != 0)
		return -1;
	return v != NULL ? proto_pack_cstr(pk, v) : msgpack_pack_nil(pk);
}

/* A name: an agency id, a record type (the schema's names all fit). */
static bool
is_name(const char *s, size_t len)
{
	return cc_agency_id_valid(s, len);
}

/*
 * Text fit for the permanent trail.  The trail outlives every record, so
 * nothing a client wrote goes into it as written: text that `ok` accepts
 * (a canonical UUID, a name) is kept, anything else is replaced by
 * "sha256:" and the hex of its SHA-256, enough to match it against what
 * the client says it sent and nothing to read.  Empty text is no text.
 * Returns 0 with *out set (NULL, s or buf), or -1 when the digest failed.
 */
static int
fit_text(const char *s, bool (*ok)(const char *, size_t),
    char buf[HASHED_LEN], const char **out)
{
	uint8_t	hash[SHA256_DIGEST_LENGTH];
	size_t	len = s != NULL ? strlen(s) : 0;

	*out = NULL;
	if (len == 0)
		return 0;
	if (ok(s, len)) {
		*out = s;
		return 0;
	}
	if (sha256(s, len, hash) == -1)
		return -1;
	memcpy(buf, "sha256:", 7);
	cc_hex(hash, sizeof(hash), buf + 7);
	*out = buf;
	return 0;
}

static int
pack_strs(msgpack_packer *pk, const char *k, const char *const *v, size_t n)
{
	size_t	i;
	int	prc;

	prc = proto_pack_cstr(pk, k);
	prc |= msgpack_pack_array(pk, n);
	for (i = 0; i < n; i++)
		prc |= proto_pack_cstr(pk, v[i]);
	return prc;
}

/* The four keys only an aggregated entry has: count, since (ms), and
 * samples of addresses and agencies. */
static int
pack_aggregate(msgpack_packer *pk, const struct audit_ev *e)
{
	int	prc;

	prc = proto_pack_cstr(pk, "count");
	prc |= msgpack_pack_uint64(pk, e->count);
	prc |= proto_pack_cstr(pk, "since");
	prc |= msgpack_pack_int64(pk, e->since_ms);
	prc |= pack_strs(pk, "addresses", e->addresses, e->naddresses);
	prc |= pack_strs(pk, "agencies", e->agencies, e->nagencies);
	return prc;
}

/*
 * The entry is a msgpack map: seq, t (ms), ev, id, type, sender, recipient,
 * subject (pseudonyms in hex), cats, withheld, consent {cid, version},
 * reason, [count, since, addresses, agencies: an aggregated entry only,]
 * prev (SHA-256 of the previous entry, 32 bytes).  An entry that
 * could not be packed whole (out of memory) is never written: a truncated
 * entry in the chain would be worse than a refused request.
 */
int
audit_append(struct store *st, struct store_txn *txn, const struct audit_ev *e)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	uint8_t		 prev[SHA256_DIGEST_LENGTH] = { 0 };
	uint8_t		 hash[SHA256_DIGEST_LENGTH];
	uint64_t	 seq;
	char		 cid[37], hex[2 * PSEUDO_LEN + 1];
	char		 hid[HASHED_LEN], htype[HASHED_LEN];
	char		 hsender[HASHED_LEN], hrecip[HASHED_LEN];
	const char	*id, *type, *sender, *recipient;
	int		 i, nsub = 0, rc, prc;

	/*
	 * The id of a rejected input is what the client wrote in its mid
	 * (once a name and a date of birth); the other fields come from the
	 * schema's tables and the authenticated agencies, and are checked
	 * all the same.  The reason is always the broker's own words.
	 */
	if (fit_text(e->id, cc_uuid_valid, hid, &id) == -1 ||
	    fit_text(e->type, is_name, htype, &type) == -1 ||
	    fit_text(e->sender, is_name, hsender, &sender) == -1 ||
	    fit_text(e->recipient, is_name, hrecip, &recipient) == -1)
		return STORE_NOMEM;

	if ((rc = last_entry(st, txn, &seq, prev)) == 0)
		seq++;
	else if (rc == STORE_NOTFOUND)
		seq = 1;
	else
		return rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	prc = msgpack_pack_map(&pk, e->count > 0 ? 17 : 13);
	prc |= proto_pack_cstr(&pk, "seq");
	prc |= msgpack_pack_uint64(&pk, seq);
	prc |= proto_pack_cstr(&pk, "t");
	prc |= msgpack_pack_int64(&pk, e->at_ms != 0 ? e->at_ms :
	    cc_time_now_ms());
	prc |= pack_kv(&pk, "ev", audit_event_name(e->event));
	prc |= pack_kv(&pk, "id", id);
	prc |= pack_kv(&pk, "type", type);
	prc |= pack_kv(&pk, "sender", sender);
	prc |= pack_kv(&pk, "recipient", recipient);
	prc |= proto_pack_cstr(&pk, "subject");
	if (e->subj != NULL)
		for (i = 0; i < SCHEME__COUNT; i++)
			nsub += (e->subj->has >> i) & 1;
	prc |= msgpack_pack_array(&pk, nsub);
	for (i = 0; e->subj != NULL && i < SCHEME__COUNT; i++)
		if (e->subj->has & (1u << i))
			prc |= proto_pack_cstr(&pk, cc_hex(e->subj->id[i],
			    PSEUDO_LEN, hex));
	prc |= proto_pack_cstr(&pk, "cats");
	prc |= proto_pack_catset(&pk, e->cats);
	prc |= proto_pack_cstr(&pk, "withheld");
	prc |= proto_pack_catset(&pk, e->withheld);
	prc |= proto_pack_cstr(&pk, "consent");
	if (e->cid != NULL) {
		uuid_unparse_lower(e->cid, cid);
		prc |= msgpack_pack_map(&pk, 2);
		prc |= pack_kv(&pk, "cid", cid);
		prc |= proto_pack_cstr(&pk, "version");
		prc |= msgpack_pack_uint32(&pk, e->version);
	} else
		prc |= msgpack_pack_nil(&pk);
	prc |= pack_kv(&pk, "reason", e->reason);
	if (e->count > 0)
		prc |= pack_aggregate(&pk, e);
	prc |= proto_pack_cstr(&pk, "prev");
	prc |= msgpack_pack_bin(&pk, sizeof(prev));
	prc |= msgpack_pack_bin_body(&pk, prev, sizeof(prev));

	if (prc != 0 || sha256(sb.data, sb.size, hash) == -1)
		rc = STORE_NOMEM;
	else if ((rc = store_audit_append(st, txn, seq, sb.data,
	    sb.size)) == 0)
		remember(seq, sb.data, sb.size, hash);
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
audit_seal(struct store *st, struct store_txn *txn)
{
	uint8_t		 head[HEAD_LEN], have[HEAD_LEN];
	uint64_t	 seq;
	size_t		 len;
	int		 rc;

	if ((rc = last_entry(st, txn, &seq, head + 8)) == STORE_NOTFOUND)
		return 0;		/* no entry yet */
	if (rc != 0)
		return rc;
	be64_put(head, seq);
	rc = store_audit_head_get(st, txn, have, sizeof(have), &len);
	if (rc == 0 && len == sizeof(head) &&
	    memcmp(have, head, sizeof(head)) == 0)
		return 0;
	if (rc != 0 && rc != STORE_NOTFOUND)
		return rc;
	return store_audit_head_put(st, txn, head, sizeof(head));
}

/*
 * The `prev`, `seq` and `t` fields of an entry (t may be NULL; it is left
 * alone when absent); -1 when the entry is not well formed.
 */
static int
entry_links(const void *data, size_t len, uint64_t *seq, int64_t *t,
    const uint8_t **prev)
{
	msgpack_unpacked	up;
	size_t			off = 0;
	uint32_t		i;
	int			rc = -1;

	*prev = NULL;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, data, len, &off) !=
	    MSGPACK_UNPACK_SUCCESS || off != len ||
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
			/* Points into data, not into the zone. */
			*prev = (const uint8_t *)kv->val.via.bin.ptr;
		if (kv->key.via.str.size == 3 &&
		    memcmp(kv->key.via.str.ptr, "seq", 3) == 0 &&
		    kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			*seq = kv->val.via.u64;
		if (t != NULL && kv->key.via.str.size == 1 &&
		    kv->key.via.str.ptr[0] == 't' &&
		    kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    kv->val.via.u64 <= INT64_MAX)
			*t = (int64_t)kv->val.via.u64;
	}
	rc = *prev != NULL ? 0 : -1;
out:
	msgpack_unpacked_destroy(&up);
	return rc;
}

int
audit_head(struct store *st, struct store_txn *txn, struct audit_head *h)
{
	const void	*v;
	const uint8_t	*prev;
	size_t		 len;
	uint64_t	 inner = 0;
	int		 rc;

	memset(h, 0, sizeof(*h));
	if ((rc = store_audit_last(st, txn, &h->seq, &v, &len)) ==
	    STORE_NOTFOUND) {
		h->seq = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (sha256(v, len, h->hash) == -1)
		return STORE_NOMEM;
	/* The time is a courtesy to the reader; the hash is the head. */
	if (entry_links(v, len, &inner, &h->t_ms, &prev) == -1)
		h->t_ms = 0;
	return 0;
}

/* The walk of audit_verify: expect, hash and the first fault found. */
struct verify {
	uint64_t	 expect, count, bad;
	uint8_t		 hash[SHA256_DIGEST_LENGTH];
	const struct audit_head *heads;	/* exported, in seq order */
	size_t		 nheads, next;	/* the next one to compare */
	uint64_t	 matched;	/* seq of the last one that matched */
	char		*why;
	size_t		 whylen;
};

#define VERIFY_BROKEN	(STORE__COUNT + 1)

static int
verify_one(uint64_t seq, const void *data, size_t len, void *arg)
{
	struct verify	*w = arg;
	const uint8_t	*prev;
	uint64_t	 inner = 0;
	size_t		 i;

	if (seq != w->expect) {
		w->bad = w->expect;
		snprintf(w->why, w->whylen, "entry %llu missing",
		    (unsigned long long)w->expect);
		return VERIFY_BROKEN;
	}
	if (entry_links(data, len, &inner, NULL, &prev) == -1 || inner != seq) {
		w->bad = seq;
		snprintf(w->why, w->whylen, "entry %llu is not well formed",
		    (unsigned long long)seq);
		return VERIFY_BROKEN;
	}
	if (memcmp(prev, w->hash, sizeof(w->hash)) != 0) {
		w->bad = seq > 1 ? seq - 1 : seq;
		snprintf(w->why, w->whylen, "entry %llu does not match the "
		    "hash recorded in entry %llu", (unsigned long long)w->bad,
		    (unsigned long long)seq);
		return VERIFY_BROKEN;
	}
	if (sha256(data, len, w->hash) == -1)
		return STORE_NOMEM;
	/*
	 * Through the links, this entry's hash stands for every entry up to
	 * it: an exported head that differs says the trail up to it is not
	 * the one exported, somewhere after the last head that matched.
	 */
	for (i = w->next; i < w->nheads && w->heads[i].seq == seq; i++) {
		if (memcmp(w->heads[i].hash, w->hash, sizeof(w->hash)) == 0)
			continue;
		w->bad = seq;
		if (w->matched > 0)
			snprintf(w->why, w->whylen, "entry %llu differs from "
			    "the exported head: entries %llu to %llu were "
			    "rewritten or an older store restored (entry %llu "
			    "matches its exported head)", (unsigned long long)seq,
			    (unsigned long long)w->matched + 1,
			    (unsigned long long)seq,
			    (unsigned long long)w->matched);
		else
			snprintf(w->why, w->whylen, "entry %llu differs from "
			    "the exported head: the trail up to it was "
			    "rewritten or an older store restored",
			    (unsigned long long)seq);
		return VERIFY_BROKEN;
	}
	if (i > w->next)
		w->matched = seq;
	w->next = i;
	w->count++;
	w->expect++;
	return 0;
}

static int
head_cmp(const void *a, const void *b)
{
	const struct audit_head	*x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int
audit_verify(struct store *st, uint64_t *count, uint64_t *bad_seq, char *why,
    size_t whylen)
{
	return audit_verify_heads(st, NULL, 0, count, bad_seq, why, whylen);
}

int
audit_verify_heads(struct store *st, struct audit_head *heads, size_t nheads,
    uint64_t *count, uint64_t *bad_seq, char *why, size_t whylen)
{
	struct store_txn	*txn;
	struct verify		 w;
	uint8_t			 head[HEAD_LEN];
	size_t			 len;
	int			 rc, result;

	*count = 0;
	memset(&w, 0, sizeof(w));
	w.expect = 1;
	w.why = why;
	w.whylen = whylen;
	if (nheads > 0)
		qsort(heads, nheads, sizeof(*heads), head_cmp);
	/* A head of seq 0 was exported from an empty trail: nothing to
	 * compare. */
	while (w.next < nheads && heads[w.next].seq == 0)
		w.next++;
	w.heads = heads;
	w.nheads = nheads;
	if (store_begin(st, false, &txn) != 0)
		return -1;
	rc = store_audit_each(st, txn, 0, verify_one, &w);
	*count = w.count;
	if (rc == VERIFY_BROKEN) {
		*bad_seq = w.bad;
		result = 1;
	} else if (rc != 0)
		result = -1;
	else if ((rc = store_audit_head_get(st, txn, head, sizeof(head),
	    &len)) == 0) {
		result = 0;
		if (len != sizeof(head) || be64_get(head) != w.expect - 1 ||
		    memcmp(head + 8, w.hash, sizeof(w.hash)) != 0) {
			*bad_seq = w.expect - 1;
			snprintf(why, whylen, "entry %llu does not match the "
			    "recorded head of the chain",
			    (unsigned long long)*bad_seq);
			result = 1;
		}
	} else if (rc == STORE_CORRUPT) {
		*bad_seq = w.expect - 1;
		snprintf(why, whylen, "the recorded head of the chain fails its "
		    "integrity check");
		result = 1;
	} else if (rc == STORE_NOTFOUND) {
		result = 0;
		if (w.expect > 1) {
			*bad_seq = w.expect - 1;
			snprintf(why, whylen, "head of the chain missing");
			result = 1;
		}
	} else
		result = -1;
	/*
	 * The chain is whole and ends where its recorded head says; an
	 * exported head beyond its end is the one thing that shows a tail
	 * cut together with the recorded head, or an older store put back.
	 */
	if (result == 0 && w.next < w.nheads) {
		*bad_seq = heads[w.next].seq;
		snprintf(why, whylen, "missing (the chain ends at %llu): the "
		    "trail was cut or an older store restored",
		    (unsigned long long)(w.expect - 1));
		result = 1;
	}
	store_abort(txn);
	return result;
}
