/*
 * handle_consent.c - `consent-grant`, `consent-withdraw`, `consent-refuse`.
 *
 * Each writes a new version of a consent (DESIGN §5): the decision view in
 * clear (recipients, purposes, categories, denies, period, pseudonyms) and
 * the whole history sealed (subject, evidence, who recorded what, when).
 * After every change the subject's queued deliveries are decided again in
 * the same transaction, so no permit outlives a withdrawal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <uuid/uuid.h>

#include "handler.h"
#include "log.h"
#include "notice.h"
#include "route.h"

#define RECIP_MAX	4096	/* bytes of recipient ids in one consent */
#define DENY_MAX	4096

struct change {
	const char		*state;		/* "granted", "withdrawn", ... */
	struct consent_hdr	*h;
	const char		*recip;
	const void		*deny;
};

static int	record(struct broker *, struct req *, const uint8_t cid[16],
		    const struct consent *old, const struct cc_subject *,
		    const struct change *);
static int	reply_recorded(struct broker *, struct req *, const uint8_t *,
		    uint32_t);
static int	idlist_build(struct broker *, struct req *,
		    const msgpack_object *, const char *path, char *out,
		    size_t size, uint16_t *len);
static int	purposes_of(const msgpack_object *);
static int	req_hash(const struct cc_msg *, uint8_t out[16]);
static int	pack_field(msgpack_packer *, const struct cc_msg *,
		    const char *);
static int	audit_consent(struct broker *, struct req *,
		    enum audit_event, const uint8_t cid[16],
		    const struct consent_hdr *);
static int	change_state(struct broker *, struct req *, struct consent *,
		    enum consent_state, const char *, enum audit_event,
		    struct notice_set *);
static int	owned_by(struct broker *, const struct consent *,
		    const char *);
static int	check_owner(struct broker *, struct req *,
		    const struct consent *);

static int
reply_recorded(struct broker *b, struct req *r, const uint8_t *cid,
    uint32_t version)
{
	struct reply	rp;
	char		text[37];

	uuid_unparse_lower(cid, text);
	reply_begin(&rp, "consent-recorded");
	reply_str(&rp, "cid", text);
	reply_u64(&rp, "version", version);
	return reply_send(b, r->rid, r->ridlen, &rp);
}

/*
 * Agency ids of a list as NUL-separated text; each must be in the
 * directory.  Returns 0, ANSWERED after answering an error, or a store
 * error when the answer could not be built.
 */
static int
idlist_build(struct broker *b, struct req *r, const msgpack_object *list,
    const char *path, char *out, size_t size, uint16_t *len)
{
	char		id[CC_ID_MAX + 1], field[64];
	size_t		n = 0, l;
	uint32_t	i;
	int		rc;

	*len = 0;
	for (i = 0; list != NULL && list->type == MSGPACK_OBJECT_ARRAY &&
	    i < list->via.array.size; i++) {
		snprintf(field, sizeof(field), "%s.%u", path, i);
		if (objstr(&list->via.array.ptr[i], id, sizeof(id)) == -1 ||
		    broker_peer(b, id) == NULL) {
			rc = reply_error(b, r, ERR_UNKNOWN_RECIPIENT, field,
			    "no such agency in the directory");
			return rc != 0 ? rc : ANSWERED;
		}
		l = strlen(id) + 1;
		if (n + l > size) {
			rc = reply_error(b, r, ERR_INVALID_FIELD, path,
			    "too many agencies");
			return rc != 0 ? rc : ANSWERED;
		}
		memcpy(out + n, id, l);
		n += l;
	}
	*len = n;
	return 0;
}

static int
purposes_of(const msgpack_object *list)
{
	uint32_t	i;
	int		mask = 0, p;

	for (i = 0; list != NULL && list->type == MSGPACK_OBJECT_ARRAY &&
	    i < list->via.array.size; i++) {
		const msgpack_object *o = &list->via.array.ptr[i];

		if (o->type == MSGPACK_OBJECT_STR &&
		    (p = cc_purpose_parse(o->via.str.ptr, o->via.str.size)) >= 0)
			mask |= 1 << p;
	}
	return mask;
}

/* Identical re-sends (an agent's outbox after a reconnect) are recognised
 * by the hash of the canonical request.  Returns 0 or STORE_NOMEM. */
static int
req_hash(const struct cc_msg *m, uint8_t out[16])
{
	msgpack_sbuffer	sb;
	uint8_t		md[EVP_MAX_MD_SIZE];
	unsigned	mdlen;
	int		rc = STORE_NOMEM;

	msgpack_sbuffer_init(&sb);
	if (proto_encode(m, &sb) == 0 && EVP_Digest(sb.data, sb.size, md,
	    &mdlen, EVP_sha256(), NULL) == 1 && mdlen >= 16) {
		memcpy(out, md, 16);
		rc = 0;
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static int
pack_field(msgpack_packer *pk, const struct cc_msg *m, const char *k)
{
	const msgpack_object *o = proto_get(m, k);

	if (proto_pack_cstr(pk, k) != 0)
		return -1;
	return o != NULL ? msgpack_pack_object(pk, *o) : msgpack_pack_nil(pk);
}

/*
 * Write one new version: the sealed history is the old one with this
 * change appended: {subject, grant, history: [{version, state, at, by,
 * worker, captured, reason, evidence}...]}.
 */
static int
record(struct broker *b, struct req *r, const uint8_t cid[16],
    const struct consent *old, const struct cc_subject *subj,
    const struct change *c)
{
	msgpack_sbuffer		 sb, grant;
	msgpack_packer		 pk;
	msgpack_unpacked	 up;
	const msgpack_object	*oldhist = NULL, *oldgrant = NULL;
	const msgpack_object	*oldsubj = NULL;
	struct store		*st = broker_store(b);
	uint8_t			*hist = NULL;
	size_t			 hlen = 0, off = 0;
	char			 at[32];
	uint32_t		 i, nold = 0;
	int			 rc, prc;

	msgpack_unpacked_init(&up);
	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_init(&grant);
	if (old != NULL) {
		if ((hist = store_consent_history(st, old, &hlen)) == NULL ||
		    msgpack_unpack_next(&up, (char *)hist, hlen, &off) !=
		    MSGPACK_UNPACK_SUCCESS ||
		    up.data.type != MSGPACK_OBJECT_MAP) {
			log_warnx("consent: stored history unreadable");
			rc = STORE_CORRUPT;
			goto out;
		}
		for (i = 0; i < up.data.via.map.size; i++) {
			const msgpack_object_kv *kv = &up.data.via.map.ptr[i];

			if (kv->key.type != MSGPACK_OBJECT_STR)
				continue;
			if (kv->key.via.str.size == 7 &&
			    !memcmp(kv->key.via.str.ptr, "history", 7) &&
			    kv->val.type == MSGPACK_OBJECT_ARRAY) {
				oldhist = &kv->val;
				nold = kv->val.via.array.size;
			} else if (kv->key.via.str.size == 5 &&
			    !memcmp(kv->key.via.str.ptr, "grant", 5))
				oldgrant = &kv->val;
			else if (kv->key.via.str.size == 7 &&
			    !memcmp(kv->key.via.str.ptr, "subject", 7))
				oldsubj = &kv->val;
		}
	}

	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	prc = msgpack_pack_map(&pk, 3);
	prc |= proto_pack_cstr(&pk, "subject");
	if (subj != NULL) {
		prc |= msgpack_pack_map(&pk, (subj->pnc[0] != 0) +
		    (subj->noms[0] != 0) + (subj->crn[0] != 0));
		if (subj->pnc[0])
			prc |= proto_pack_cstr(&pk, "pnc") |
			    proto_pack_cstr(&pk, subj->pnc);
		if (subj->noms[0])
			prc |= proto_pack_cstr(&pk, "noms") |
			    proto_pack_cstr(&pk, subj->noms);
		if (subj->crn[0])
			prc |= proto_pack_cstr(&pk, "crn") |
			    proto_pack_cstr(&pk, subj->crn);
	} else if (oldsubj != NULL)
		prc |= msgpack_pack_object(&pk, *oldsubj);
	else
		prc |= msgpack_pack_nil(&pk);
	prc |= proto_pack_cstr(&pk, "grant");
	if (proto_op(r->msg) == OP_CONSENT_GRANT)
		prc |= proto_encode(r->msg, &grant) |
		    msgpack_sbuffer_write(&sb, grant.data, grant.size);
	else if (oldgrant != NULL)
		prc |= msgpack_pack_object(&pk, *oldgrant);
	else
		prc |= msgpack_pack_nil(&pk);
	prc |= proto_pack_cstr(&pk, "history");
	prc |= msgpack_pack_array(&pk, nold + 1);
	for (i = 0; i < nold; i++)
		prc |= msgpack_pack_object(&pk, oldhist->via.array.ptr[i]);
	prc |= msgpack_pack_map(&pk, 8);
	prc |= proto_pack_cstr(&pk, "version");
	prc |= msgpack_pack_uint32(&pk, c->h->version);
	prc |= proto_pack_cstr(&pk, "state");
	prc |= proto_pack_cstr(&pk, c->state);
	prc |= proto_pack_cstr(&pk, "at");
	cc_time_format(broker_now(b), at);
	prc |= proto_pack_cstr(&pk, at);
	prc |= proto_pack_cstr(&pk, "by");
	prc |= proto_pack_cstr(&pk, r->from->cert.cn);
	prc |= pack_field(&pk, r->msg, "worker");
	prc |= pack_field(&pk, r->msg, "captured");
	prc |= pack_field(&pk, r->msg, "reason");
	prc |= pack_field(&pk, r->msg, "evidence");
	if (prc != 0) {
		rc = STORE_NOMEM;
		goto out;
	}
	rc = store_consent_put(st, r->txn, cid, c->h, c->recip, c->deny,
	    sb.data, sb.size);
out:
	if (hist != NULL) {
		explicit_bzero(hist, hlen);
		free(hist);
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&grant);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/*
 * Rule 11: did `agency` record the consent's first version?  The first
 * entry of the sealed history says who did (the header names only the
 * latest version's recorder, which a withdrawal by another agency
 * changes).  Returns 1, 0, or a store error.
 */
static int
owned_by(struct broker *b, const struct consent *c, const char *agency)
{
	msgpack_unpacked	 up;
	const msgpack_object	*first = NULL;
	uint8_t			*hist;
	size_t			 len, off = 0;
	uint32_t		 i, j;
	int			 rc = STORE_CORRUPT;

	if ((hist = store_consent_history(broker_store(b), c, &len)) == NULL)
		return STORE_CORRUPT;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (char *)hist, len, &off) !=
	    MSGPACK_UNPACK_SUCCESS || up.data.type != MSGPACK_OBJECT_MAP)
		goto out;
	for (i = 0; i < up.data.via.map.size; i++) {
		const msgpack_object_kv *kv = &up.data.via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == 7 &&
		    memcmp(kv->key.via.str.ptr, "history", 7) == 0 &&
		    kv->val.type == MSGPACK_OBJECT_ARRAY &&
		    kv->val.via.array.size > 0)
			first = &kv->val.via.array.ptr[0];
	}
	for (j = 0; first != NULL && first->type == MSGPACK_OBJECT_MAP &&
	    j < first->via.map.size; j++) {
		const msgpack_object_kv *kv = &first->via.map.ptr[j];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == 2 &&
		    memcmp(kv->key.via.str.ptr, "by", 2) == 0 &&
		    kv->val.type == MSGPACK_OBJECT_STR) {
			rc = kv->val.via.str.size == strlen(agency) &&
			    memcmp(kv->val.via.str.ptr, agency,
			    kv->val.via.str.size) == 0;
			break;
		}
	}
out:
	if (rc == STORE_CORRUPT)
		log_warnx("consent: stored history unreadable");
	msgpack_unpacked_destroy(&up);
	explicit_bzero(hist, len);
	free(hist);
	return rc;
}

/* Rule 11: only the first recorder records later versions.  Returns 0,
 * ANSWERED (refused), or a store error. */
static int
check_owner(struct broker *b, struct req *r, const struct consent *old)
{
	int	rc;

	if ((rc = owned_by(b, old, r->from->cert.cn)) == 1)
		return 0;
	if (rc != 0)
		return rc;
	rc = reply_error(b, r, ERR_NOT_PERMITTED, "cid", "this consent was "
	    "recorded by another agency; record a consent of your own");
	return rc != 0 ? rc : ANSWERED;
}

static int
audit_consent(struct broker *b, struct req *r, enum audit_event ev_kind,
    const uint8_t cid[16], const struct consent_hdr *h)
{
	struct audit_ev	ev;
	char		text[37];

	uuid_unparse_lower(cid, text);
	memset(&ev, 0, sizeof(ev));
	ev.event = ev_kind;
	ev.id = text;
	ev.sender = r->from->cert.cn;
	ev.subj = &h->subj;
	ev.cats = h->cats;
	ev.cid = cid;
	ev.version = h->version;
	ev.at_ms = broker_now(b);
	return audit_append(broker_store(b), r->txn, &ev);
}

/* consent-grant {cid, subject, recipients, purposes, categories, deny,
 * explicit, valid_from, valid_until, evidence} -> consent-recorded */
int
handle_consent_grant(struct broker *b, struct req *r)
{
	const struct policy	*pol = broker_policy_cert(b, r->from);
	const msgpack_object	*deny = proto_get(r->msg, "deny");
	struct consent_hdr	 h;
	struct consent		 old;
	struct cc_subject	 subj;
	struct change		 c;
	char			 recip[RECIP_MAX], text[64], field[64];
	uint8_t			 dbuf[DENY_MAX], cid[16];
	size_t			 dlen = 0;
	bool			 have_old, expl = false;
	struct store		*st = broker_store(b);
	uint32_t		 i;
	int			 rc;

	if (pol == NULL || !pol->record_consent)
		return reply_error(b, r, ERR_NOT_PERMITTED, NULL,
		    "this agency type may not record consent");
	if (proto_get_str(r->msg, "cid", text, sizeof(text)) == -1 ||
	    uuid_parse(text, cid) == -1)
		return reply_error(b, r, ERR_INVALID_FIELD, "cid",
		    "not a UUID");
	memset(&h, 0, sizeof(h));
	if (proto_subject(r->msg, &subj) == -1 ||
	    store_subject_ps(st, &subj, &h.subj) == -1)
		return reply_error(b, r, ERR_INVALID_FIELD, "subject",
		    "no usable identifier");
	if ((rc = idlist_build(b, r, proto_get(r->msg, "recipients"),
	    "recipients", recip, sizeof(recip), &h.recip_len)) != 0)
		return rc == ANSWERED ? 0 : rc;
	for (i = 0; deny != NULL && deny->type == MSGPACK_OBJECT_ARRAY &&
	    i < deny->via.array.size; i++) {
		const msgpack_object	*d = &deny->via.array.ptr[i], *dr = NULL;
		const msgpack_object	*dc = NULL;
		struct deny_hdr		 dh;
		uint32_t		 j;

		for (j = 0; d->type == MSGPACK_OBJECT_MAP &&
		    j < d->via.map.size; j++) {
			const msgpack_object_kv *kv = &d->via.map.ptr[j];

			if (kv->key.via.str.size == 10 &&
			    !memcmp(kv->key.via.str.ptr, "recipients", 10))
				dr = &kv->val;
			else if (kv->key.via.str.size == 10 &&
			    !memcmp(kv->key.via.str.ptr, "categories", 10))
				dc = &kv->val;
		}
		dh.cats = dc != NULL ? proto_catset(dc) : 0;
		snprintf(field, sizeof(field), "deny.%u.recipients", i);
		if (dlen + sizeof(dh) > sizeof(dbuf))
			return reply_error(b, r, ERR_INVALID_FIELD, "deny",
			    "too many deny provisions");
		if ((rc = idlist_build(b, r, dr, field, (char *)dbuf + dlen +
		    sizeof(dh), sizeof(dbuf) - dlen - sizeof(dh),
		    &dh.len)) != 0)
			return rc == ANSWERED ? 0 : rc;
		/* An entry naming no one and no category denies everything. */
		memcpy(dbuf + dlen, &dh, sizeof(dh));
		dlen += sizeof(dh) + dh.len;
	}
	h.deny_len = dlen;
	h.cats = proto_catset(proto_get(r->msg, "categories"));
	h.purposes = purposes_of(proto_get(r->msg, "purposes"));
	(void)proto_get_bool(r->msg, "explicit", &expl);
	h.explicit_ = expl;
	/* Validation already refused special categories without explicit
	 * consent, and times that are not RFC 3339 (the schema). */
	if (proto_get_time(r->msg, "valid_from", &h.from_ms) == -1)
		return reply_error(b, r, ERR_INVALID_FIELD, "valid_from",
		    "not an RFC 3339 time");
	if (proto_get_time(r->msg, "valid_until", &h.until_ms) == -1)
		return reply_error(b, r, ERR_INVALID_FIELD, "valid_until",
		    "not an RFC 3339 time");
	if ((rc = req_hash(r->msg, h.req_hash)) != 0)
		return rc;

	rc = store_consent_get(st, r->txn, cid, &old);
	if (rc != 0 && rc != STORE_NOTFOUND)
		return rc;
	have_old = rc == 0;
	if (have_old) {
		if ((rc = check_owner(b, r, &old)) != 0)
			return rc == ANSWERED ? 0 : rc;
		if (memcmp(old.h.req_hash, h.req_hash, 16) == 0 &&
		    old.h.state == CS_ACTIVE)
			return reply_recorded(b, r, cid, old.h.version);
		/* A withdrawal or refusal is final: never undone by a replay
		 * of the grant; the client's new consent gets a new cid. */
		if (old.h.state != CS_ACTIVE)
			return reply_error(b, r, ERR_INVALID_FIELD, "cid",
			    "this consent was %s; record a new one",
			    old.h.state == CS_REFUSED ? "refused" :
			    "withdrawn");
		if (memcmp(&old.h.subj, &h.subj, sizeof(h.subj)) != 0)
			return reply_error(b, r, ERR_IDENTITY_CONFLICT, "subject",
			    "this consent is about another subject");
	}
	rc = decide_identity_conflict(st, r->txn, &h.subj,
	    have_old ? cid : NULL);
	if (rc == -1)
		return STORE_CORRUPT;
	if (rc == 1)
		return reply_error(b, r, ERR_IDENTITY_CONFLICT, "subject",
		    "identifiers contradict the subject's existing consents");

	h.version = have_old ? old.h.version + 1 : 1;
	h.state = CS_ACTIVE;
	h.recorded_ms = broker_now(b);
	snprintf(h.recorded_by, sizeof(h.recorded_by), "%s",
	    r->from->cert.cn);
	c.state = have_old ? "amended" : "granted";
	c.h = &h;
	c.recip = recip;
	c.deny = dbuf;
	if ((rc = record(b, r, cid, have_old ? &old : NULL, &subj, &c)) != 0 ||
	    (rc = audit_consent(b, r, EV_CONSENT_GRANTED, cid, &h)) != 0 ||
	    (rc = route_recheck_subject(b, r->txn, &h.subj)) != 0 ||
	    (rc = notice_consent_due(b, r->txn, cid, h.until_ms)) != 0)
		return rc;
	explicit_bzero(&subj, sizeof(subj));
	return reply_recorded(b, r, cid, h.version);
}

/*
 * Write the withdrawn (or refused) version of an existing consent; the
 * agencies that acknowledged records under it are added to ns, to be told.
 */
static int
change_state(struct broker *b, struct req *r, struct consent *old,
    enum consent_state state, const char *name, enum audit_event ev,
    struct notice_set *ns)
{
	struct consent_hdr	h = old->h;
	struct change		c;
	char			recip[RECIP_MAX];
	uint8_t			dbuf[DENY_MAX];
	int			rc;

	if (h.recip_len > sizeof(recip) || h.deny_len > sizeof(dbuf))
		return STORE_CORRUPT;
	/* Copy out of the page before the put moves it. */
	memcpy(recip, old->recip, h.recip_len);
	memcpy(dbuf, old->deny, h.deny_len);
	h.version++;
	h.state = state;
	h.recorded_ms = broker_now(b);
	memset(h.req_hash, 0, sizeof(h.req_hash));
	snprintf(h.recorded_by, sizeof(h.recorded_by), "%s", r->from->cert.cn);
	c.state = name;
	c.h = &h;
	c.recip = recip;
	c.deny = dbuf;
	if ((rc = record(b, r, old->cid, old, NULL, &c)) != 0 ||
	    (rc = audit_consent(b, r, ev, old->cid, &h)) != 0 ||
	    (rc = route_recheck_subject(b, r->txn, &h.subj)) != 0 ||
	    (rc = notice_withdrawn_add(b, r->txn, ns, old->cid, h.version,
	    &h.subj)) != 0)
		return rc;
	return reply_recorded(b, r, old->cid, h.version);
}

/* consent-withdraw {cid | subject, captured, worker, reason}
 * -> consent-recorded, one per consent withdrawn */
int
handle_consent_withdraw(struct broker *b, struct req *r)
{
	struct store		*st = broker_store(b);
	struct notice_set	*ns;
	struct consent		 c;
	struct cc_subject	 subj;
	struct subject_ps	 ps;
	uint8_t			(*cids)[16] = NULL;
	char			 text[64];
	uint8_t			 cid[16];
	size_t			 i, n = 0, done = 0;
	int			 rc;

	if ((ns = notice_set_new()) == NULL)
		return STORE_NOMEM;
	/* Any agency the client tells may record a withdrawal. */
	if (proto_get_str(r->msg, "cid", text, sizeof(text)) == 0) {
		if (uuid_parse(text, cid) == -1) {
			rc = reply_error(b, r, ERR_INVALID_FIELD, "cid",
			    "not a UUID");
			goto out;
		}
		rc = store_consent_get(st, r->txn, cid, &c);
		if (rc == STORE_NOTFOUND)
			rc = reply_error(b, r, ERR_INVALID_FIELD, "cid",
			    "no such consent");
		else if (rc == 0 && c.h.state != CS_ACTIVE)
			rc = reply_recorded(b, r, cid, c.h.version);
		else if (rc == 0 && (rc = change_state(b, r, &c, CS_WITHDRAWN,
		    "withdrawn", EV_CONSENT_WITHDRAWN, ns)) == 0)
			rc = notice_set_queue(b, r->txn, ns);
		goto out;
	}
	if (proto_subject(r->msg, &subj) == -1 ||
	    store_subject_ps(st, &subj, &ps) == -1) {
		rc = reply_error(b, r, ERR_MISSING_FIELD, "cid",
		    "give cid or subject");
		goto out;
	}
	explicit_bzero(&subj, sizeof(subj));
	/* The ids first: each change rewrites the index being read. */
	if ((rc = store_consent_cids(st, r->txn, &ps, false, &cids, &n)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((rc = store_consent_get(st, r->txn, cids[i], &c)) != 0)
			goto out;
		if (c.h.state != CS_ACTIVE)
			continue;
		if ((rc = change_state(b, r, &c, CS_WITHDRAWN, "withdrawn",
		    EV_CONSENT_WITHDRAWN, ns)) != 0)
			goto out;
		done++;
	}
	/* One notice per agency told, whatever the number of consents. */
	if (done == 0)
		rc = reply_error(b, r, ERR_INVALID_FIELD, "subject",
		    "no active consent for this subject");
	else
		rc = notice_set_queue(b, r->txn, ns);
out:
	notice_set_free(&ns);
	free(cids);
	return rc;
}

/* consent-refuse {cid, subject, captured, worker, evidence}
 * -> consent-recorded */
int
handle_consent_refuse(struct broker *b, struct req *r)
{
	const struct policy	*pol = broker_policy_cert(b, r->from);
	struct consent_hdr	 h;
	struct consent		 old;
	struct cc_subject	 subj;
	struct change		 c;
	struct notice_set	*ns;
	char			 text[64];
	uint8_t			 cid[16];
	int			 rc;

	if (pol == NULL || !pol->record_consent)
		return reply_error(b, r, ERR_NOT_PERMITTED, NULL,
		    "this agency type may not record consent");
	if (proto_get_str(r->msg, "cid", text, sizeof(text)) == -1 ||
	    uuid_parse(text, cid) == -1)
		return reply_error(b, r, ERR_INVALID_FIELD, "cid",
		    "not a UUID");
	memset(&h, 0, sizeof(h));
	if (proto_subject(r->msg, &subj) == -1 ||
	    store_subject_ps(broker_store(b), &subj, &h.subj) == -1)
		return reply_error(b, r, ERR_INVALID_FIELD, "subject",
		    "no usable identifier");
	rc = store_consent_get(broker_store(b), r->txn, cid, &old);
	if (rc != 0 && rc != STORE_NOTFOUND)
		return rc;
	if (rc == 0) {
		if ((rc = check_owner(b, r, &old)) != 0)
			return rc == ANSWERED ? 0 : rc;
		if (memcmp(&old.h.subj, &h.subj, sizeof(h.subj)) != 0)
			return reply_error(b, r, ERR_IDENTITY_CONFLICT, "subject",
			    "this consent is about another subject");
		if (old.h.state == CS_REFUSED)
			return reply_recorded(b, r, cid, old.h.version);
		/* Refused now what was granted: told as a withdrawal. */
		if ((ns = notice_set_new()) == NULL)
			return STORE_NOMEM;
		if ((rc = change_state(b, r, &old, CS_REFUSED, "refused",
		    EV_CONSENT_REFUSED, ns)) == 0)
			rc = notice_set_queue(b, r->txn, ns);
		notice_set_free(&ns);
		return rc;
	}
	/* Refused when asked: recorded as such, distinct from never asked. */
	h.version = 1;
	h.state = CS_REFUSED;
	h.recorded_ms = broker_now(b);
	snprintf(h.recorded_by, sizeof(h.recorded_by), "%s", r->from->cert.cn);
	c.state = "refused";
	c.h = &h;
	c.recip = "";
	c.deny = "";
	if ((rc = record(b, r, cid, NULL, &subj, &c)) != 0 ||
	    (rc = audit_consent(b, r, EV_CONSENT_REFUSED, cid, &h)) != 0)
		return rc;
	explicit_bzero(&subj, sizeof(subj));
	return reply_recorded(b, r, cid, h.version);
}
