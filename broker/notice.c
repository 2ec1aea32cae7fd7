/*
 * notice.c - notices: telling agencies after the fact.
 *
 * The broker knows who acknowledged what under which consent (the
 * disclosure index, written at each ack), so when a consent is withdrawn,
 * a record corrected or retracted, or a subject erased, it can tell each
 * past recipient, and only those.  A notice's fields are packed when it is
 * queued and kept sealed (they may name identifiers); the pump sends them
 * behind the frame's header and the queue's dseq.
 */
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "audit.h"
#include "log.h"
#include "notice.h"
#include "route.h"

#define DAY_MS		86400000LL
#define SUBJ_KEYS_MAX	16	/* fields of a subject kept in a notice */

/* A notice's fields, counted as they are packed. */
struct nbody {
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	unsigned	n;
	int		err;
};

/* One agency's share of a withdrawal. */
struct nagency {
	char			 agency[CC_ID_MAX + 1];
	uint8_t			(*cids)[16];
	uint32_t		*versions;
	size_t			 ncid;
	uint8_t			(*mids)[16];
	size_t			 nmid;
	msgpack_sbuffer		 subj;	/* subjects as given, one after another */
	struct subject_ps	 ps;
};

struct notice_set {
	struct nagency	*a;
	size_t		 n;
	/* What notice_withdrawn_add is adding. */
	const uint8_t		*cid;
	uint32_t		 version;
	const struct subject_ps	*ps;
	int			 err;
};

static void	nb_init(struct nbody *, const uint8_t nid[16], enum cc_notice,
		    int64_t);
static msgpack_packer *nb_key(struct nbody *, const char *);
static void	nb_str(struct nbody *, const char *, const char *);
static void	nb_uuid(struct nbody *, const char *, const uint8_t [16]);
static void	nb_time(struct nbody *, const char *, int64_t);
static void	nb_consents(struct nbody *, const uint8_t (*)[16],
		    const uint32_t *, size_t);
static void	nb_mids(struct nbody *, const uint8_t (*)[16], size_t);
static void	nb_subjects(struct nbody *, const char *, size_t);
static void	nb_free(struct nbody *);
static int	notice_put(struct broker *, struct store_txn *, const char *,
		    enum cc_notice, const uint8_t nid[16], struct nbody *,
		    const struct subject_ps *, const uint8_t *, uint32_t,
		    const uint8_t (*)[16], size_t);
static int	add_one(const char *, const uint8_t [16], const struct discl *,
		    const void *, size_t, void *);
static int	has_id(const uint8_t (*)[16], size_t, const uint8_t [16]);
static int	history_subject(struct store *, const struct consent *,
		    struct nbody *);
static int	told_delivered(const char *, const struct rstate *, void *);

/* ---- the body ---- */

static void
nb_init(struct nbody *nb, const uint8_t nid[16], enum cc_notice kind,
    int64_t at_ms)
{
	msgpack_sbuffer_init(&nb->sb);
	msgpack_packer_init(&nb->pk, &nb->sb, msgpack_sbuffer_write);
	nb->n = 0;
	nb->err = 0;
	nb_uuid(nb, "nid", nid);
	nb_str(nb, "kind", cc_notice_name(kind));
	nb_time(nb, "at", at_ms);
}

static msgpack_packer *
nb_key(struct nbody *nb, const char *key)
{
	nb->n++;
	nb->err |= proto_pack_cstr(&nb->pk, key);
	return &nb->pk;
}

static void
nb_str(struct nbody *nb, const char *key, const char *val)
{
	nb->err |= proto_pack_cstr(nb_key(nb, key), val);
}

static void
nb_uuid(struct nbody *nb, const char *key, const uint8_t id[16])
{
	char	text[37];

	uuid_unparse_lower(id, text);
	nb_str(nb, key, text);
}

static void
nb_time(struct nbody *nb, const char *key, int64_t ms)
{
	char	text[32];

	cc_time_format(ms, text);
	nb_str(nb, key, text);
}

static void
nb_consents(struct nbody *nb, const uint8_t (*cids)[16],
    const uint32_t *versions, size_t n)
{
	msgpack_packer	*pk = nb_key(nb, "consents");
	char		 text[37];
	size_t		 i;

	nb->err |= msgpack_pack_array(pk, n);
	for (i = 0; i < n; i++) {
		uuid_unparse_lower(cids[i], text);
		nb->err |= msgpack_pack_map(pk, 2);
		nb->err |= proto_pack_cstr(pk, "cid");
		nb->err |= proto_pack_cstr(pk, text);
		nb->err |= proto_pack_cstr(pk, "version");
		nb->err |= msgpack_pack_uint32(pk, versions[i]);
	}
}

static void
nb_mids(struct nbody *nb, const uint8_t (*mids)[16], size_t n)
{
	msgpack_packer	*pk = nb_key(nb, "mids");
	char		 text[37];
	size_t		 i;

	nb->err |= msgpack_pack_array(pk, n);
	for (i = 0; i < n; i++) {
		uuid_unparse_lower(mids[i], text);
		nb->err |= proto_pack_cstr(pk, text);
	}
}

/*
 * `subject`: the subjects as given (packed maps, one after another),
 * merged field by field, the first value of a field kept.
 */
static void
nb_subjects(struct nbody *nb, const char *data, size_t len)
{
	msgpack_unpacked	 up[SUBJ_KEYS_MAX];
	const msgpack_object_kv	*kv[SUBJ_KEYS_MAX];
	msgpack_packer		*pk = nb_key(nb, "subject");
	size_t			 off = 0, nup = 0, nkv = 0, i, j;

	while (off < len && nup < SUBJ_KEYS_MAX) {
		msgpack_unpacked_init(&up[nup]);
		if (msgpack_unpack_next(&up[nup], data, len, &off) !=
		    MSGPACK_UNPACK_SUCCESS) {
			msgpack_unpacked_destroy(&up[nup]);
			break;
		}
		if (up[nup].data.type == MSGPACK_OBJECT_MAP)
			for (i = 0; i < up[nup].data.via.map.size &&
			    nkv < SUBJ_KEYS_MAX; i++) {
				const msgpack_object_kv *p =
				    &up[nup].data.via.map.ptr[i];

				for (j = 0; j < nkv; j++)
					if (msgpack_object_equal(kv[j]->key,
					    p->key))
						break;
				if (j == nkv)
					kv[nkv++] = p;
			}
		nup++;
	}
	nb->err |= msgpack_pack_map(pk, nkv);
	for (i = 0; i < nkv; i++) {
		nb->err |= msgpack_pack_object(pk, kv[i]->key);
		nb->err |= msgpack_pack_object(pk, kv[i]->val);
	}
	for (i = 0; i < nup; i++)
		msgpack_unpacked_destroy(&up[i]);
}

static void
nb_free(struct nbody *nb)
{
	if (nb->sb.data != NULL)
		explicit_bzero(nb->sb.data, nb->sb.size);
	msgpack_sbuffer_destroy(&nb->sb);
}

/*
 * Queue a notice for agency: its body stored, a queue entry, the mids it
 * concerns marked for `track`, an audit entry.
 */
static int
notice_put(struct broker *b, struct store_txn *txn, const char *agency,
    enum cc_notice kind, const uint8_t nid[16], struct nbody *nb,
    const struct subject_ps *ps, const uint8_t *cid, uint32_t version,
    const uint8_t (*mids)[16], size_t nmids)
{
	struct store		*st = broker_store(b);
	struct notice_hdr	 h;
	struct qent		 q;
	struct rstate		 rs;
	struct audit_ev		 ev;
	struct peer		*p;
	uint64_t		 dseq;
	char			 text[37];
	size_t			 i;
	int			 rc;

	if (nb->err != 0 || nb->n > UINT16_MAX)
		return STORE_NOMEM;
	memset(&h, 0, sizeof(h));
	h.kind = (uint8_t)kind;
	h.nfields = (uint16_t)nb->n;
	h.at_ms = broker_now(b);
	snprintf(h.agency, sizeof(h.agency), "%s", agency);
	memset(&q, 0, sizeof(q));
	q.kind = Q_NOTICE;
	q.state = (uint8_t)kind;
	memcpy(q.mid, nid, 16);
	q.at_ms = h.at_ms;
	if ((rc = store_notice_put(st, txn, nid, &h, nb->sb.data,
	    nb->sb.size)) != 0 ||
	    (rc = store_next_dseq(st, txn, &dseq)) != 0 ||
	    (rc = store_queue_put(st, txn, agency, dseq, &q)) != 0)
		return rc;
	if ((p = broker_peer(b, agency)) != NULL)
		p->dirty = true;
	for (i = 0; i < nmids; i++) {
		rc = store_rstate_get(st, txn, mids[i], agency, &rs);
		if (rc == STORE_NOTFOUND)	/* forgotten since */
			continue;
		if (rc != 0)
			return rc;
		rs.notices |= (uint16_t)(1u << kind);
		if ((rc = store_rstate_put(st, txn, mids[i], agency,
		    &rs)) != 0)
			return rc;
	}
	uuid_unparse_lower(nid, text);
	memset(&ev, 0, sizeof(ev));
	ev.event = EV_NOTICE;
	ev.id = text;
	ev.recipient = agency;
	ev.subj = ps;
	ev.cid = cid;
	ev.version = version;
	ev.reason = cc_notice_name(kind);
	ev.at_ms = h.at_ms;
	return audit_append(st, txn, &ev);
}

/* ---- consent withdrawn ---- */

struct notice_set *
notice_set_new(void)
{
	return calloc(1, sizeof(struct notice_set));
}

void
notice_set_free(struct notice_set **sp)
{
	struct notice_set	*s = *sp;
	size_t			 i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++) {
		free(s->a[i].cids);
		free(s->a[i].versions);
		free(s->a[i].mids);
		if (s->a[i].subj.data != NULL)
			explicit_bzero(s->a[i].subj.data, s->a[i].subj.size);
		msgpack_sbuffer_destroy(&s->a[i].subj);
	}
	free(s->a);
	free(s);
	*sp = NULL;
}

static int
has_id(const uint8_t (*ids)[16], size_t n, const uint8_t id[16])
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (memcmp(ids[i], id, 16) == 0)
			return 1;
	return 0;
}

/* One disclosure under the consent being withdrawn. */
static int
add_one(const char *agency, const uint8_t mid[16], const struct discl *d,
    const void *subj, size_t len, void *arg)
{
	struct notice_set	*s = arg;
	struct nagency		*a = NULL, *na;
	void			*p;
	size_t			 i;

	(void)d;
	for (i = 0; i < s->n; i++)
		if (strcmp(s->a[i].agency, agency) == 0) {
			a = &s->a[i];
			break;
		}
	if (a == NULL) {
		if ((na = reallocarray(s->a, s->n + 1, sizeof(*na))) == NULL)
			return STORE_NOMEM;
		s->a = na;
		a = &s->a[s->n++];
		memset(a, 0, sizeof(*a));
		snprintf(a->agency, sizeof(a->agency), "%s", agency);
		msgpack_sbuffer_init(&a->subj);
		a->ps = *s->ps;
	}
	if (!has_id(a->cids, a->ncid, s->cid)) {
		if ((p = reallocarray(a->cids, a->ncid + 1, 16)) == NULL)
			return STORE_NOMEM;
		a->cids = p;
		if ((p = reallocarray(a->versions, a->ncid + 1,
		    sizeof(uint32_t))) == NULL)
			return STORE_NOMEM;
		a->versions = p;
		memcpy(a->cids[a->ncid], s->cid, 16);
		a->versions[a->ncid++] = s->version;
	}
	if (!has_id(a->mids, a->nmid, mid)) {
		if ((p = reallocarray(a->mids, a->nmid + 1, 16)) == NULL)
			return STORE_NOMEM;
		a->mids = p;
		memcpy(a->mids[a->nmid++], mid, 16);
	}
	if (subj != NULL && len > 0 &&
	    msgpack_sbuffer_write(&a->subj, subj, len) != 0)
		return STORE_NOMEM;
	return 0;
}

int
notice_withdrawn_add(struct broker *b, struct store_txn *txn,
    struct notice_set *s, const uint8_t cid[16], uint32_t version,
    const struct subject_ps *ps)
{
	s->cid = cid;
	s->version = version;
	s->ps = ps;
	return store_discl_each(broker_store(b), txn, cid, add_one, s);
}

int
notice_set_queue(struct broker *b, struct store_txn *txn,
    struct notice_set *s)
{
	struct nbody	nb;
	uint8_t		nid[16];
	size_t		i;
	int		rc = 0;

	for (i = 0; i < s->n && rc == 0; i++) {
		struct nagency *a = &s->a[i];

		uuid_generate_random(nid);
		nb_init(&nb, nid, NT_CONSENT_WITHDRAWN, broker_now(b));
		nb_consents(&nb, (const uint8_t (*)[16])a->cids, a->versions,
		    a->ncid);
		nb_mids(&nb, (const uint8_t (*)[16])a->mids, a->nmid);
		nb_subjects(&nb, a->subj.data, a->subj.size);
		rc = notice_put(b, txn, a->agency, NT_CONSENT_WITHDRAWN, nid,
		    &nb, &a->ps, a->cids[0], a->versions[0],
		    (const uint8_t (*)[16])a->mids, a->nmid);
		nb_free(&nb);
	}
	return rc;
}

/* ---- disclosures ---- */

int
notice_disclosed(struct broker *b, struct store_txn *txn, const char *agency,
    const struct qent *q, const struct msg_hdr *h)
{
	struct store	*st = broker_store(b);
	struct cc_msg	*m = NULL;
	struct cc_error	 err;
	struct discl	 d;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	cc_catset	 ws;
	uint8_t		*frame;
	size_t		 len;
	int		 rc;

	/*
	 * The subject as the agency was given it: the stored record stripped
	 * to what its delivery released (an empty map when the payload can
	 * no longer be opened: the disclosure is remembered all the same).
	 */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if ((frame = store_msg_frame(st, txn, q->mid, &len)) != NULL) {
		if (proto_decode(frame, len, SIZE_MAX, &m, &err) == -1)
			m = NULL;
		explicit_bzero(frame, len);
		free(frame);
	}
	if (m != NULL)
		rc = proto_pack_stripped_subject(&pk, m, q->cats, &ws);
	else
		rc = msgpack_pack_map(&pk, 0);
	proto_msg_destroy(&m);
	memset(&d, 0, sizeof(d));
	d.at_ms = broker_now(b);
	d.version = q->version;
	d.rtype = h->rtype;
	if (rc != 0)
		rc = STORE_NOMEM;
	else
		rc = store_discl_put(st, txn, q->cid, agency, q->mid, &d,
		    sb.data, sb.size);
	if (sb.data != NULL)
		explicit_bzero(sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* ---- consents lapsing ---- */

int
notice_consent_due(struct broker *b, struct store_txn *txn,
    const uint8_t cid[16], int64_t until_ms)
{
	struct store	*st = broker_store(b);
	unsigned	 days = broker_conf(b)->consent_notice_days;
	int		 rc;

	if (until_ms <= 0)
		return 0;
	if (days > 0 && (rc = store_expiry_put(st, txn, until_ms -
	    (int64_t)days * DAY_MS, cid, XP_CONSENT_WARN)) != 0)
		return rc;
	if ((rc = store_expiry_put(st, txn, until_ms, cid,
	    XP_CONSENT_LAPSE)) != 0)
		return rc;
	broker_expiry_at(b, until_ms - (int64_t)days * DAY_MS);
	return 0;
}

/* The `subject` of a consent's sealed history, packed into nb. */
static int
history_subject(struct store *st, const struct consent *c, struct nbody *nb)
{
	msgpack_unpacked	 up;
	uint8_t			*hist;
	size_t			 len, off = 0;
	uint32_t		 i;
	int			 found = 0;

	if ((hist = store_consent_history(st, c, &len)) == NULL)
		return 0;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (char *)hist, len, &off) ==
	    MSGPACK_UNPACK_SUCCESS && up.data.type == MSGPACK_OBJECT_MAP)
		for (i = 0; i < up.data.via.map.size && !found; i++) {
			const msgpack_object_kv *kv = &up.data.via.map.ptr[i];

			if (kv->key.type == MSGPACK_OBJECT_STR &&
			    kv->key.via.str.size == 7 &&
			    memcmp(kv->key.via.str.ptr, "subject", 7) == 0 &&
			    kv->val.type == MSGPACK_OBJECT_MAP) {
				nb->err |= msgpack_pack_object(nb_key(nb,
				    "subject"), kv->val);
				found = 1;
			}
		}
	msgpack_unpacked_destroy(&up);
	explicit_bzero(hist, len);
	free(hist);
	return found;
}

/*
 * A warning or a lapse came due.  An entry of a consent since withdrawn,
 * refused or given another period is stale and passed over: the period
 * in force now has entries of its own.
 */
int
notice_consent_lapse(struct broker *b, struct store_txn *txn,
    const uint8_t cid[16], uint8_t phase, int64_t at_ms)
{
	struct store	*st = broker_store(b);
	unsigned	 days = broker_conf(b)->consent_notice_days;
	enum cc_notice		 kind;
	struct consent		 c;
	struct subject_ps	 ps;
	struct nbody		 nb;
	char			 by[CC_ID_MAX + 1];
	uint8_t			 nid[16];
	uint32_t		 version;
	int64_t			 due;
	int			 rc;

	rc = store_consent_get(st, txn, cid, &c);
	if (rc == STORE_NOTFOUND || rc == STORE_CORRUPT)
		return 0;
	if (rc != 0)
		return rc;
	if (c.h.state != CS_ACTIVE || c.h.until_ms <= 0)
		return 0;
	if (phase == XP_CONSENT_WARN) {
		kind = NT_CONSENT_EXPIRING;
		due = c.h.until_ms - (int64_t)days * DAY_MS;
		/* A warning due after the lapse itself says nothing. */
		if (days == 0 || c.h.until_ms <= broker_now(b))
			return 0;
	} else {
		kind = NT_CONSENT_EXPIRED;
		due = c.h.until_ms;
	}
	if (due != at_ms)
		return 0;
	/* Copied out of the page: the puts below may move it. */
	version = c.h.version;
	ps = c.h.subj;
	snprintf(by, sizeof(by), "%s", c.h.recorded_by);
	uuid_generate_random(nid);
	nb_init(&nb, nid, kind, broker_now(b));
	nb_consents(&nb, (const uint8_t (*)[16])cid, &version, 1);
	nb_time(&nb, "valid_until", c.h.until_ms);
	(void)history_subject(st, &c, &nb);
	rc = notice_put(b, txn, by, kind, nid, &nb, &ps, cid, version, NULL,
	    0);
	nb_free(&nb);
	if (rc != 0 || kind != NT_CONSENT_EXPIRED)
		return rc;
	/* What waits under the lapsed consent is decided again. */
	return route_recheck_subject(b, txn, &ps);
}

/* ---- records corrected or retracted ---- */

struct told {
	struct broker		*b;
	struct store_txn	*txn;
	char			(*agencies)[CC_ID_MAX + 1];
	size_t			 n;
	uint16_t		 skip;		/* told this already */
};

static int
told_delivered(const char *agency, const struct rstate *rs, void *arg)
{
	struct told	*t = arg;
	void		*p;

	if (rs->state != ST_DELIVERED || (rs->notices & t->skip))
		return 0;
	if ((p = reallocarray(t->agencies, t->n + 1,
	    sizeof(*t->agencies))) == NULL)
		return STORE_NOMEM;
	t->agencies = p;
	snprintf(t->agencies[t->n++], CC_ID_MAX + 1, "%s", agency);
	return 0;
}

int
notice_record(struct broker *b, struct store_txn *txn, enum cc_notice kind,
    const uint8_t mid[16], const char *sender, const uint8_t by[16],
    const char *reason)
{
	struct store	*st = broker_store(b);
	struct told	 t = { b, txn, NULL, 0, 0 };
	struct msg_hdr	 h;
	struct nbody	 nb;
	uint8_t		 nid[16];
	size_t		 i;
	int		 rc;

	if ((rc = store_msg_get(st, txn, mid, &h, NULL)) != 0)
		return rc;
	/* A record is retracted once: told once, however often asked. */
	if (kind == NT_RECORD_RETRACTED)
		t.skip = 1u << kind;
	if ((rc = store_rstates(st, txn, mid, told_delivered, &t)) != 0)
		goto out;
	for (i = 0; i < t.n && rc == 0; i++) {
		uuid_generate_random(nid);
		nb_init(&nb, nid, kind, broker_now(b));
		nb_uuid(&nb, "mid", mid);
		nb_str(&nb, "from", sender);
		if (by != NULL)
			nb_uuid(&nb, "by", by);
		if (reason != NULL)
			nb_str(&nb, "reason", reason);
		rc = notice_put(b, txn, t.agencies[i], kind, nid, &nb, &h.subj,
		    NULL, 0, (const uint8_t (*)[16])mid, 1);
		nb_free(&nb);
	}
out:
	free(t.agencies);
	return rc;
}

/* ---- the pump and the ack ---- */

int
notice_send(struct broker *b, struct store_txn *txn, struct peer *p,
    uint64_t dseq, const struct qent *q, bool *sent)
{
	struct store		*st = broker_store(b);
	struct notice_hdr	 h;
	struct reply		 rp;
	void			*body;
	size_t			 len;
	int			 rc;

	*sent = false;
	rc = store_notice_get(st, txn, q->mid, &h, &body, &len);
	if (rc == STORE_NOTFOUND || rc == STORE_CORRUPT) {
		/* Nothing that can be said: the entry goes, said in the log. */
		log_warnx("notice: agency=%s dseq=%llu: its body is %s; "
		    "dropped", p->id, (unsigned long long)dseq,
		    rc == STORE_NOTFOUND ? "missing" : "unreadable");
		if ((rc = store_queue_del(st, txn, p->id, dseq)) != 0)
			return rc;
		rc = store_notice_del(st, txn, q->mid);
		return rc == STORE_NOTFOUND ? 0 : rc;
	}
	if (rc != 0)
		return rc;
	reply_begin(&rp, "notice");
	reply_u64(&rp, "dseq", dseq);
	reply_raw(&rp, body, len, h.nfields);
	explicit_bzero(body, len);
	free(body);
	rc = reply_send(b, p->rid, p->ridlen, &rp);
	*sent = rc == 0;
	return rc;
}

int
notice_acked(struct broker *b, struct store_txn *txn, const char *agency,
    uint64_t dseq, const struct qent *q)
{
	struct store	*st = broker_store(b);
	struct audit_ev	 ev;
	char		 text[37];
	int		 rc;

	if ((rc = store_queue_del(st, txn, agency, dseq)) != 0)
		return rc;
	rc = store_notice_del(st, txn, q->mid);
	if (rc != 0 && rc != STORE_NOTFOUND)
		return rc;
	uuid_unparse_lower(q->mid, text);
	memset(&ev, 0, sizeof(ev));
	ev.event = EV_NOTICE_ACKED;
	ev.id = text;
	ev.recipient = agency;
	ev.reason = q->state < NT__COUNT ? cc_notice_name(q->state) : NULL;
	ev.at_ms = broker_now(b);
	return audit_append(st, txn, &ev);
}
