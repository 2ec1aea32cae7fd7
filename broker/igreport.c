/*
 * igreport.c - the subject access report (`ccbroker audit subject`): every
 * disclosure and withholding the audit records about one person, and the
 * whole history of their consents with evidence, across every identifier
 * the person is known by.
 *
 * The store holds identifiers only as keyed pseudonyms, one per scheme
 * (seal_pseudonym), so the person is followed as a set of pseudonyms.  It
 * starts with those of the identifiers the request gives and grows to a
 * fixed point: a consent names its subject under every identifier it was
 * given (PNC, NOMS and CRN together), and an audit entry lists every
 * pseudonym of its message's subject, so either links the pseudonyms it
 * holds.  A message withheld for an identity conflict (DESIGN §5 rule 6:
 * its identifiers contradict a consent's) links nothing: the broker itself
 * judged that its identifiers may not be one person's.  What was linked,
 * and by what, is in the report for the IG lead to review before it is
 * sent.
 *
 * The report is built once, as JSON; the text form is written from that
 * object (igtext.c), so both always say the same.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <uuid/uuid.h>

#include "bytes.h"
#include "ig.h"
#include "igcmd.h"
#include "log.h"
#include "pki.h"

#define IDTEXT_LEN	64	/* a mid or cid as the audit holds it */

/* One identifier of the person: given by the request, or linked. */
struct ident {
	uint8_t		 ps[PSEUDO_LEN];
	char		 hex[2 * PSEUDO_LEN + 1];
	int		 scheme;		/* SCHEME_*, or -1: unknown */
	char		 value[16];		/* in clear, or "" */
	bool		 given;			/* named by the request */
	bool		 looked_up;		/* its consents gathered */
	const char	*via_kind;		/* "consent" or "mid" */
	char		 via[IDTEXT_LEN];	/* what linked it */
};

/* A pseudonym an audit entry put beside one of the person's. */
struct candidate {
	uint8_t		 ps[PSEUDO_LEN];
	char		 hex[2 * PSEUDO_LEN + 1];
	const char	*via_kind;		/* "mid", or "consent" */
	char		 mid[IDTEXT_LEN];	/* the entry's id */
	int		 scheme;		/* from its position, or -1 */
};

struct report {
	struct store		*st;
	struct store_txn	*txn;
	int64_t			 now;
	struct ident		*id;		/* the person's identifiers */
	size_t			 nid, capid;
	uint8_t			(*cid)[16];	/* consents reported */
	size_t			 ncid, capcid;
	json_t			*cons;
	/* One walk of the audit. */
	json_t			*disc, *with;
	struct candidate	*cand;
	size_t			 ncand, capcand;
	char			(*conflict)[IDTEXT_LEN]; /* mids not to follow */
	size_t			 nconflict, capconflict;
};

static const char *const scheme_name[SCHEME__COUNT] = { "pnc", "noms",
    "crn" };

static void	*grow(void *, size_t *cap, size_t n, size_t size);
static struct ident *ident_find(struct report *, const char *hex);
static void	 ident_add(struct report *, const uint8_t *ps, int scheme,
		    const char *via_kind, const char *via);
static void	 learn_values(struct report *, const struct consent *,
		    const msgpack_object *subject);
static json_t	*consent_json(struct report *, const struct consent *);
static void	 gather_consents(struct report *);
static bool	 conflicted(const struct report *, const char *mid);
static int	 subject_entry(uint64_t, const void *, size_t, void *);
static size_t	 walk_audit(struct report *);
static void	 scheme_from_message(struct report *, struct candidate *);
static json_t	*identifiers_json(const struct report *, bool given);
static json_t	*broker_json(const struct broker_conf *);
static void	 name_agencies(const struct broker_conf *, json_t *rep);
static void	 names_of(json_t *names, json_t *, bool agency);
static void	 at_seconds(int64_t, char out[32]);

/* Room for n + 1 items; the command ends when memory runs out. */
static void *
grow(void *p, size_t *cap, size_t n, size_t size)
{
	size_t	 c;

	if (n < *cap)
		return p;
	c = *cap ? *cap * 2 : 16;
	if ((p = reallocarray(p, c, size)) == NULL)
		fatalx("out of memory");
	*cap = c;
	return p;
}

/* "YYYY-MM-DDTHH:MM:SSZ": whole seconds, as the report has always
 * given them. */
static void
at_seconds(int64_t ms, char out[32])
{
	cc_time_format(ms, out);
	strcpy(out + 19, "Z");
}

static struct ident *
ident_find(struct report *r, const char *hex)
{
	size_t	i;

	for (i = 0; i < r->nid; i++)
		if (strcmp(r->id[i].hex, hex) == 0)
			return &r->id[i];
	return NULL;
}

/* Add a pseudonym to the person's set, or learn its scheme. */
static void
ident_add(struct report *r, const uint8_t *ps, int scheme,
    const char *via_kind, const char *via)
{
	struct ident	*d;
	char		 hex[2 * PSEUDO_LEN + 1];

	cc_hex(ps, PSEUDO_LEN, hex);
	if ((d = ident_find(r, hex)) != NULL) {
		if (d->scheme == -1)
			d->scheme = scheme;
		return;
	}
	r->id = grow(r->id, &r->capid, r->nid, sizeof(*r->id));
	d = &r->id[r->nid++];
	memset(d, 0, sizeof(*d));
	memcpy(d->ps, ps, PSEUDO_LEN);
	memcpy(d->hex, hex, sizeof(hex));
	d->scheme = scheme;
	d->via_kind = via_kind;
	snprintf(d->via, sizeof(d->via), "%s", via != NULL ? via : "");
}

/*
 * A consent's sealed history names its subject in clear: each identifier
 * whose pseudonym is the one the consent is indexed by gives the value of
 * a linked identifier.
 */
static void
learn_values(struct report *r, const struct consent *c,
    const msgpack_object *subject)
{
	struct cc_subject	 subj;
	struct subject_ps	 ps;
	struct ident		*d;
	char			*slot[SCHEME__COUNT];
	size_t			 size[SCHEME__COUNT];
	char			 hex[2 * PSEUDO_LEN + 1];
	uint32_t		 i;
	int			 s;

	if (subject == NULL || subject->type != MSGPACK_OBJECT_MAP)
		return;
	memset(&subj, 0, sizeof(subj));
	slot[SCHEME_PNC] = subj.pnc;
	size[SCHEME_PNC] = sizeof(subj.pnc);
	slot[SCHEME_NOMS] = subj.noms;
	size[SCHEME_NOMS] = sizeof(subj.noms);
	slot[SCHEME_CRN] = subj.crn;
	size[SCHEME_CRN] = sizeof(subj.crn);
	for (i = 0; i < subject->via.map.size; i++) {
		const msgpack_object_kv *kv = &subject->via.map.ptr[i];

		if (kv->key.type != MSGPACK_OBJECT_STR ||
		    kv->val.type != MSGPACK_OBJECT_STR)
			continue;
		for (s = 0; s < SCHEME__COUNT; s++)
			if (kv->key.via.str.size == strlen(scheme_name[s]) &&
			    memcmp(kv->key.via.str.ptr, scheme_name[s],
			    kv->key.via.str.size) == 0 &&
			    kv->val.via.str.size < size[s]) {
				memcpy(slot[s], kv->val.via.str.ptr,
				    kv->val.via.str.size);
				slot[s][kv->val.via.str.size] = '\0';
			}
	}
	if (store_subject_ps(r->st, &subj, &ps) == -1)
		fatalx("cannot compute a pseudonym");
	for (s = 0; s < SCHEME__COUNT; s++) {
		if (!(ps.has & c->h.subj.has & (1u << s)) ||
		    memcmp(ps.id[s], c->h.subj.id[s], PSEUDO_LEN) != 0)
			continue;
		cc_hex(ps.id[s], PSEUDO_LEN, hex);
		if ((d = ident_find(r, hex)) != NULL && d->value[0] == '\0')
			snprintf(d->value, sizeof(d->value), "%s", slot[s]);
	}
	explicit_bzero(&subj, sizeof(subj));
}

/* One consent of the report, with its history and evidence. */
static json_t *
consent_json(struct report *r, const struct consent *c)
{
	static const char *const state[CS__COUNT] = { "active",
	    "withdrawn", "refused", "superseded" };
	msgpack_unpacked	 up;
	const msgpack_object	*grant = NULL, *hist = NULL, *subj = NULL;
	json_t			*o, *h;
	uint8_t			*raw;
	size_t			 len = 0, off = 0;
	char			 cid[37];
	uint32_t		 j;

	if ((o = json_object()) == NULL)
		return NULL;
	uuid_unparse_lower(c->cid, cid);
	ig_jput(o, "cid", json_string(cid));
	ig_jput(o, "recorded_by", json_string(c->h.recorded_by));
	msgpack_unpacked_init(&up);
	raw = store_consent_history(r->st, c, &len);
	if (raw != NULL && msgpack_unpack_next(&up, (char *)raw, len,
	    &off) == MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_MAP) {
		for (j = 0; j < up.data.via.map.size; j++) {
			const msgpack_object_kv *kv = &up.data.via.map.ptr[j];

			if (kv->key.type != MSGPACK_OBJECT_STR)
				continue;
			if (kv->key.via.str.size == 5 &&
			    !memcmp(kv->key.via.str.ptr, "grant", 5))
				grant = &kv->val;
			if (kv->key.via.str.size == 7 &&
			    !memcmp(kv->key.via.str.ptr, "history", 7))
				hist = &kv->val;
			if (kv->key.via.str.size == 7 &&
			    !memcmp(kv->key.via.str.ptr, "subject", 7))
				subj = &kv->val;
		}
	} else
		log_warnx("consent %s: history cannot be opened", cid);
	ig_jput(o, "subject", ig_mp_to_json(subj));
	learn_values(r, c, subj);
	ig_jput(o, "recipients", ig_mp_get(grant, "recipients"));
	ig_jput(o, "purposes", ig_mp_get(grant, "purposes"));
	ig_jput(o, "categories", ig_mp_get(grant, "categories"));
	ig_jput(o, "deny", ig_mp_get(grant, "deny"));
	ig_jput(o, "explicit", json_boolean(c->h.explicit_));
	ig_jput(o, "valid_from", ig_mp_get(grant, "valid_from"));
	ig_jput(o, "valid_until", ig_mp_get(grant, "valid_until"));
	/* A consent past its period is reported as expired. */
	ig_jput(o, "state", json_string(
	    c->h.state == CS_ACTIVE && c->h.until_ms <= r->now ? "expired" :
	    c->h.state < CS__COUNT ? state[c->h.state] : "?"));
	h = ig_mp_to_json(hist);
	ig_jput(o, "history", h);
	/* The evidence the consent rests on: of the latest grant, or of the
	 * refusal. */
	if (grant != NULL)
		ig_jput(o, "evidence", ig_mp_get(grant, "evidence"));
	else if (json_array_size(h) > 0)
		ig_jref(o, "evidence", json_object_get(
		    json_array_get(h, json_array_size(h) - 1), "evidence"));
	msgpack_unpacked_destroy(&up);
	if (raw != NULL) {
		explicit_bzero(raw, len);
		free(raw);
	}
	return o;
}

/*
 * The consents of every identifier not yet looked up, each consent once;
 * each links every identifier of its subject, which is looked up in turn.
 */
static void
gather_consents(struct report *r)
{
	struct subject_ps	 one;
	struct consent		 c;
	uint8_t			(*cids)[16];
	size_t			 i, j, k, n;
	char			 text[37];
	json_t			*o;
	int			 rc, s;

	for (i = 0; i < r->nid; i++) {
		if (r->id[i].looked_up)
			continue;
		r->id[i].looked_up = true;
		/* The index is read by pseudonym: its scheme need not be
		 * known. */
		memset(&one, 0, sizeof(one));
		one.has = 1u << SCHEME_PNC;
		memcpy(one.id[SCHEME_PNC], r->id[i].ps, PSEUDO_LEN);
		if ((rc = store_consent_cids(r->st, r->txn, &one, true, &cids,
		    &n)) != 0)
			fatalx("cannot read consents: %s", store_strerror(rc));
		for (j = 0; j < n; j++) {
			for (k = 0; k < r->ncid; k++)
				if (memcmp(r->cid[k], cids[j], 16) == 0)
					break;
			if (k < r->ncid)
				continue;
			r->cid = grow(r->cid, &r->capcid, r->ncid,
			    sizeof(*r->cid));
			memcpy(r->cid[r->ncid++], cids[j], 16);
			if ((rc = store_consent_get(r->st, r->txn, cids[j],
			    &c)) != 0)
				fatalx("cannot read a consent: %s",
				    store_strerror(rc));
			uuid_unparse_lower(c.cid, text);
			for (s = 0; s < SCHEME__COUNT; s++)
				if (c.h.subj.has & (1u << s))
					ident_add(r, c.h.subj.id[s], s,
					    "consent", text);
			if ((o = consent_json(r, &c)) == NULL ||
			    json_array_append_new(r->cons, o) != 0)
				fatalx("out of memory");
		}
		free(cids);
	}
}

static bool
conflicted(const struct report *r, const char *mid)
{
	size_t	i;

	for (i = 0; i < r->nconflict; i++)
		if (strcmp(r->conflict[i], mid) == 0)
			return true;
	return false;
}

/*
 * One audit entry: is it about the person (does it hold one of their
 * pseudonyms)?  A disclosure or a withholding goes into the report; the
 * entry's other pseudonyms are candidates to link.
 */
static int
subject_entry(uint64_t seq, const void *data, size_t len, void *arg)
{
	struct report		*r = arg;
	struct candidate	*k;
	msgpack_unpacked	 up;
	size_t			 off = 0, j, n, got;
	json_t			*e, *subjs, *out, *ev, *v;
	const char		*hex, *mid, *reason;
	bool			 match = false;
	char			 at[32];

	(void)seq;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, data, len, &off) !=
	    MSGPACK_UNPACK_SUCCESS) {
		msgpack_unpacked_destroy(&up);
		return 0;
	}
	e = ig_entry_json(&up.data);
	msgpack_unpacked_destroy(&up);
	if (e == NULL)
		return STORE_NOMEM;
	subjs = json_object_get(e, "subject");
	n = json_array_size(subjs);
	for (j = 0; j < n && !match; j++)
		match = json_is_string(json_array_get(subjs, j)) &&
		    ident_find(r, json_string_value(json_array_get(subjs,
		    j))) != NULL;
	ev = json_object_get(e, "ev");
	if (!match || !json_is_string(ev)) {
		json_decref(e);
		return 0;
	}
	mid = json_string_value(json_object_get(e, "id"));
	reason = json_string_value(json_object_get(e, "reason"));
	if (mid != NULL && strcmp(json_string_value(ev), "withheld") == 0 &&
	    reason != NULL && strcmp(reason, "identity-conflict") == 0 &&
	    !conflicted(r, mid)) {
		r->conflict = grow(r->conflict, &r->capconflict,
		    r->nconflict, sizeof(*r->conflict));
		snprintf(r->conflict[r->nconflict++], IDTEXT_LEN, "%s", mid);
	}
	for (j = 0; j < n; j++) {
		v = json_array_get(subjs, j);
		hex = json_string_value(v);
		if (hex == NULL || strlen(hex) != 2 * PSEUDO_LEN ||
		    ident_find(r, hex) != NULL)
			continue;
		r->cand = grow(r->cand, &r->capcand, r->ncand,
		    sizeof(*r->cand));
		k = &r->cand[r->ncand];
		if (OPENSSL_hexstr2buf_ex(k->ps, sizeof(k->ps), &got, hex,
		    '\0') != 1 || got != PSEUDO_LEN)
			continue;
		memcpy(k->hex, hex, sizeof(k->hex));
		/* A consent's entries hold its id, a message's its mid. */
		k->via_kind = strncmp(json_string_value(ev), "consent-", 8) ==
		    0 ? "consent" : "mid";
		snprintf(k->mid, sizeof(k->mid), "%s", mid != NULL ? mid : "");
		/* An entry lists its pseudonyms in scheme order: all three
		 * say which is which. */
		k->scheme = n == SCHEME__COUNT ? (int)j : -1;
		r->ncand++;
	}

	if ((out = json_object()) == NULL) {
		json_decref(e);
		return STORE_NOMEM;
	}
	ig_jref(out, "seq", json_object_get(e, "seq"));
	if (json_is_integer(json_object_get(e, "t"))) {
		at_seconds(json_integer_value(json_object_get(e, "t")), at);
		ig_jput(out, "time", json_string(at));
	}
	ig_jref(out, "mid", json_object_get(e, "id"));
	ig_jref(out, "type", json_object_get(e, "type"));
	ig_jref(out, "sender", json_object_get(e, "sender"));
	ig_jref(out, "recipient", json_object_get(e, "recipient"));
	if (strcmp(json_string_value(ev), "delivered") == 0) {
		ig_jref(out, "categories", json_object_get(e, "cats"));
		ig_jref(out, "consent", json_object_get(e, "consent"));
		if (json_array_append_new(r->disc, out) != 0)
			goto nomem;
	} else if (strcmp(json_string_value(ev), "withheld") == 0) {
		ig_jref(out, "reason", json_object_get(e, "reason"));
		if (json_array_append_new(r->with, out) != 0)
			goto nomem;
	} else
		json_decref(out);
	json_decref(e);
	return 0;
nomem:
	json_decref(e);
	return STORE_NOMEM;
}

/* A message's header, while it is kept, gives its pseudonyms' schemes. */
static void
scheme_from_message(struct report *r, struct candidate *k)
{
	struct msg_hdr	h;
	uuid_t		mid;
	int		s;

	if (k->scheme != -1 || strcmp(k->via_kind, "mid") != 0 ||
	    uuid_parse(k->mid, mid) == -1 ||
	    store_msg_get(r->st, r->txn, mid, &h, NULL) != 0)
		return;
	for (s = 0; s < SCHEME__COUNT; s++)
		if ((h.subj.has & (1u << s)) &&
		    memcmp(h.subj.id[s], k->ps, PSEUDO_LEN) == 0)
			k->scheme = s;
}

/*
 * One walk of the whole audit with the set as it stands: the entries
 * about the person, each once (the audit is walked in seq order).
 * Returns how many identifiers it linked: none means the set is complete
 * and the entries gathered are the report's.
 */
static size_t
walk_audit(struct report *r)
{
	size_t	i, before = r->nid;
	int	rc;

	json_decref(r->disc);
	json_decref(r->with);
	if ((r->disc = json_array()) == NULL ||
	    (r->with = json_array()) == NULL)
		fatalx("out of memory");
	r->ncand = 0;
	r->nconflict = 0;
	if ((rc = store_audit_each(r->st, r->txn, 0, subject_entry, r)) != 0)
		fatalx("cannot read the audit: %s", store_strerror(rc));
	/* Only now are all the messages withheld for a conflict known. */
	for (i = 0; i < r->ncand; i++) {
		if (r->cand[i].mid[0] == '\0' ||
		    conflicted(r, r->cand[i].mid))
			continue;
		scheme_from_message(r, &r->cand[i]);
		ident_add(r, r->cand[i].ps, r->cand[i].scheme,
		    r->cand[i].via_kind, r->cand[i].mid);
	}
	return r->nid - before;
}

/*
 * The identifiers given ({"pnc": ..., ...}), or those linked: scheme
 * (null when unknown), value (null when it was not on any consent of the
 * person, with the pseudonym and a note instead) and what linked it.
 */
static json_t *
identifiers_json(const struct report *r, bool given)
{
	const struct ident	*d;
	json_t			*out, *o, *via;
	size_t			 i;

	if ((out = given ? json_object() : json_array()) == NULL)
		fatalx("out of memory");
	for (i = 0; i < r->nid; i++) {
		d = &r->id[i];
		if (d->given != given)
			continue;
		if (given) {
			ig_jput(out, scheme_name[d->scheme],
			    json_string(d->value));
			continue;
		}
		if ((o = json_object()) == NULL || (via = json_object()) ==
		    NULL || json_array_append_new(out, o) != 0)
			fatalx("out of memory");
		ig_jput(o, "scheme", d->scheme >= 0 ?
		    json_string(scheme_name[d->scheme]) : json_null());
		ig_jput(o, "value", d->value[0] != '\0' ?
		    json_string(d->value) : json_null());
		ig_jput(via, d->via_kind, json_string(d->via));
		ig_jput(o, "via", via);
		if (d->value[0] == '\0') {
			ig_jput(o, "pseudonym", json_string(d->hex));
			ig_jput(o, "note", json_string("held only as a "
			    "pseudonym: it appeared with the person's "
			    "identifiers on a record, but on none of their "
			    "consents"));
		}
	}
	return out;
}

/* Who produced the report: the broker's certificate names it and the
 * partnership (null when it cannot be read). */
static json_t *
broker_json(const struct broker_conf *c)
{
	struct pki_cert	 cert;
	json_t		*o;
	char		 err[512];
	bool		 ok;

	ok = pki_cert_read(c->certificate, &cert, err, sizeof(err)) == 0;
	if ((o = json_object()) == NULL)
		fatalx("out of memory");
	ig_jput(o, "id", ok ? json_string(cert.cn) : json_null());
	ig_jput(o, "partnership", ok && cert.org[0] != '\0' ?
	    json_string(cert.org) : json_null());
	return o;
}

/*
 * Every agency id a value of the report holds, as a key of `names`: the
 * strings of sender, recipient, recipients, recorded_by and by, at any
 * depth (agency is true below one of those keys).
 */
static void
names_of(json_t *names, json_t *v, bool agency)
{
	static const char *const keys[] = { "sender", "recipient",
	    "recipients", "recorded_by", "by" };
	const char	*k;
	json_t		*x;
	size_t		 i, j;

	if (agency && json_is_string(v) &&
	    cc_agency_id_valid(json_string_value(v), json_string_length(v))) {
		if (json_object_get(names, json_string_value(v)) == NULL)
			ig_jput(names, json_string_value(v), json_null());
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			names_of(names, x, agency);
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, x) {
			for (j = 0; j < sizeof(keys) / sizeof(keys[0]); j++)
				if (strcmp(k, keys[j]) == 0)
					break;
			names_of(names, x, j < sizeof(keys) / sizeof(keys[0]));
		}
	}
}

/*
 * The organisation of each agency the report names, from the O of its
 * certificate in the agencies directory: "cjit.leeds" means little to
 * the person the report is for.  An agency whose certificate is gone is
 * named by its id alone (null).
 */
static void
name_agencies(const struct broker_conf *c, json_t *rep)
{
	struct pki_cert	 cert;
	struct dirent	*de;
	DIR		*dir;
	json_t		*names, *v;
	char		 path[PATH_MAX + 256], err[512];
	size_t		 n;

	if ((names = json_object()) == NULL)
		fatalx("out of memory");
	names_of(names, json_object_get(rep, "disclosures"), false);
	names_of(names, json_object_get(rep, "withheld"), false);
	names_of(names, json_object_get(rep, "consents"), false);
	if ((dir = opendir(c->agencies)) != NULL) {
		while ((de = readdir(dir)) != NULL) {
			n = strlen(de->d_name);
			if (de->d_name[0] == '.' || n < 5 ||
			    strcmp(de->d_name + n - 4, ".crt") != 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", c->agencies,
			    de->d_name);
			if (pki_cert_read(path, &cert, err, sizeof(err)) != 0 ||
			    cert.org[0] == '\0' ||
			    (v = json_object_get(names, cert.cn)) == NULL ||
			    !json_is_null(v))
				continue;
			ig_jput(names, cert.cn, json_string(cert.org));
		}
		closedir(dir);
	}
	ig_jput(rep, "agencies", names);
}

/*
 * The subject access report: the person's identifiers, given and linked,
 * every disclosure and withholding the audit records about any of them,
 * and the full history of their consents with evidence.
 */
int
ig_audit_subject(const struct broker_conf *c, const struct cc_subject *subj,
    enum ig_format fmt)
{
	struct report		 r;
	struct subject_ps	 ps;
	struct ident		*d;
	const char		*val[SCHEME__COUNT] = { subj->pnc, subj->noms,
	    subj->crn };
	json_t			*rep;
	char			 hex[2 * PSEUDO_LEN + 1], at[32];
	size_t			 i;
	int			 s, rc;

	memset(&r, 0, sizeof(r));
	r.now = cc_time_now_ms();
	r.st = ig_open_store(c);
	if (store_subject_ps(r.st, subj, &ps) == -1)
		fatalx("cannot compute the subject's pseudonym");
	for (s = 0; s < SCHEME__COUNT; s++) {
		if (!(ps.has & (1u << s)))
			continue;
		ident_add(&r, ps.id[s], s, NULL, NULL);
		d = ident_find(&r, cc_hex(ps.id[s], PSEUDO_LEN, hex));
		d->given = true;
		snprintf(d->value, sizeof(d->value), "%s", val[s]);
	}
	if (store_begin(r.st, false, &r.txn) != 0)
		fatalx("%s: cannot read the store", c->data);
	if ((r.cons = json_array()) == NULL)
		fatalx("out of memory");
	/* To a fixed point: each walk of the audit with the set complete
	 * as far as the consents go. */
	do {
		gather_consents(&r);
	} while (walk_audit(&r) > 0);

	if ((rep = json_object()) == NULL)
		fatalx("out of memory");
	ig_jput(rep, "subject", identifiers_json(&r, true));
	ig_jput(rep, "linked", identifiers_json(&r, false));
	at_seconds(r.now, at);
	ig_jput(rep, "produced", json_string(at));
	ig_jput(rep, "broker", broker_json(c));
	ig_jput(rep, "disclosures", r.disc);
	ig_jput(rep, "withheld", r.with);
	ig_jput(rep, "consents", r.cons);
	name_agencies(c, rep);
	store_abort(r.txn);
	store_close(&r.st);
	for (i = 0; i < r.nid; i++)
		explicit_bzero(r.id[i].value, sizeof(r.id[i].value));
	free(r.id);
	free(r.cid);
	free(r.cand);
	free(r.conflict);
	if (fmt == IG_FORMAT_TEXT) {
		rc = ig_subject_text(stdout, rep);
		json_decref(rep);
		return rc;
	}
	return ig_print_json(rep);
}
