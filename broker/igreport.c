/*
 * igreport.c - the subject access report (`ccbroker audit subject`): every
 * disclosure and withholding the audit records about one person (matched
 * by pseudonym), and the whole history of their consents with evidence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#include "bytes.h"
#include "ig.h"
#include "igcmd.h"
#include "log.h"

static int	subject_entry(uint64_t, const void *, size_t, void *);
static json_t	*consent_json(struct store *, struct consent *, int64_t);

/* The walk of the audit for one subject's report. */
struct subject_walk {
	const char	*hex;		/* the pseudonym looked for */
	json_t		*disc, *with;
};

/* One audit entry: a disclosure or a withholding about the subject? */
static int
subject_entry(uint64_t seq, const void *data, size_t len, void *arg)
{
	struct subject_walk	*w = arg;
	msgpack_unpacked	 up;
	size_t			 off = 0, j;
	json_t			*e, *subjs, *out, *ev;
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
	for (j = 0; j < json_array_size(subjs) && !match; j++)
		match = json_is_string(json_array_get(subjs, j)) &&
		    strcmp(json_string_value(json_array_get(subjs, j)),
		    w->hex) == 0;
	ev = json_object_get(e, "ev");
	if (!match || !json_is_string(ev)) {
		json_decref(e);
		return 0;
	}
	if ((out = json_object()) == NULL) {
		json_decref(e);
		return STORE_NOMEM;
	}
	if (json_is_integer(json_object_get(e, "t"))) {
		cc_time_format(json_integer_value(json_object_get(e, "t")), at);
		/* Whole seconds, as the report has always given them. */
		strcpy(at + 19, "Z");
		ig_jput(out, "time", json_string(at));
	}
	ig_jref(out, "mid", json_object_get(e, "id"));
	ig_jref(out, "type", json_object_get(e, "type"));
	ig_jref(out, "sender", json_object_get(e, "sender"));
	ig_jref(out, "recipient", json_object_get(e, "recipient"));
	if (strcmp(json_string_value(ev), "delivered") == 0) {
		ig_jref(out, "categories", json_object_get(e, "cats"));
		ig_jref(out, "consent", json_object_get(e, "consent"));
		if (json_array_append_new(w->disc, out) != 0)
			goto nomem;
	} else if (strcmp(json_string_value(ev), "withheld") == 0) {
		ig_jref(out, "reason", json_object_get(e, "reason"));
		if (json_array_append_new(w->with, out) != 0)
			goto nomem;
	} else
		json_decref(out);
	json_decref(e);
	return 0;
nomem:
	json_decref(e);
	return STORE_NOMEM;
}

/* One consent of the report, with its history and evidence. */
static json_t *
consent_json(struct store *st, struct consent *c, int64_t now)
{
	static const char *const state[CS__COUNT] = { "active",
	    "withdrawn", "refused", "superseded" };
	msgpack_unpacked	 up;
	const msgpack_object	*grant = NULL, *hist = NULL;
	json_t			*o, *h;
	uint8_t			*raw;
	size_t			 len, off = 0;
	char			 cid[37];
	uint32_t		 j;

	if ((o = json_object()) == NULL)
		return NULL;
	uuid_unparse_lower(c->cid, cid);
	ig_jput(o, "cid", json_string(cid));
	ig_jput(o, "recorded_by", json_string(c->h.recorded_by));
	msgpack_unpacked_init(&up);
	raw = store_consent_history(st, c, &len);
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
		}
	} else
		log_warnx("consent %s: history cannot be opened", cid);
	ig_jput(o, "recipients", ig_mp_get(grant, "recipients"));
	ig_jput(o, "purposes", ig_mp_get(grant, "purposes"));
	ig_jput(o, "categories", ig_mp_get(grant, "categories"));
	ig_jput(o, "deny", ig_mp_get(grant, "deny"));
	ig_jput(o, "explicit", json_boolean(c->h.explicit_));
	ig_jput(o, "valid_from", ig_mp_get(grant, "valid_from"));
	ig_jput(o, "valid_until", ig_mp_get(grant, "valid_until"));
	/* A consent past its period is reported as expired. */
	ig_jput(o, "state", json_string(
	    c->h.state == CS_ACTIVE && c->h.until_ms <= now ? "expired" :
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
 * The subject access report: every disclosure and withholding recorded in
 * the audit about this person (matched by pseudonym), and the full history
 * of their consents with evidence.
 */
int
ig_audit_subject(const struct broker_conf *c, const char *scheme,
    const char *value)
{
	struct store		*st;
	struct store_txn	*txn;
	struct cc_subject	 subj;
	struct subject_ps	 ps;
	struct subject_walk	 w;
	uint8_t			(*cids)[16] = NULL;
	struct consent		 cs;
	json_t			*rep, *cons, *js, *o;
	char			 hex[2 * PSEUDO_LEN + 1];
	int64_t			 now = cc_time_now_ms();
	size_t			 i, n = 0;
	int			 s, rc;

	memset(&subj, 0, sizeof(subj));
	if (strcmp(scheme, "pnc") == 0) {
		time_t		t = time(NULL);
		struct tm	tm;

		gmtime_r(&t, &tm);
		if (cc_pnc_canonical(value, strlen(value), tm.tm_year + 1900,
		    subj.pnc) == -1)
			fatalx("--pnc %s: not a valid PNC number", value);
		s = SCHEME_PNC;
	} else if (strcmp(scheme, "noms") == 0) {
		if (!cc_noms_valid(value, strlen(value)))
			fatalx("--noms: not a valid NOMS number");
		snprintf(subj.noms, sizeof(subj.noms), "%s", value);
		s = SCHEME_NOMS;
	} else {
		if (!cc_crn_valid(value, strlen(value)))
			fatalx("--crn: not a valid CRN");
		snprintf(subj.crn, sizeof(subj.crn), "%s", value);
		s = SCHEME_CRN;
	}
	st = ig_open_store(c);
	if (store_subject_ps(st, &subj, &ps) == -1)
		fatalx("cannot compute the subject's pseudonym");
	cc_hex(ps.id[s], PSEUDO_LEN, hex);
	if (store_begin(st, false, &txn) != 0)
		fatalx("%s: cannot read the store", c->data);

	if ((rep = json_object()) == NULL || (js = json_object()) == NULL ||
	    (w.disc = json_array()) == NULL || (w.with = json_array()) == NULL ||
	    (cons = json_array()) == NULL)
		fatalx("out of memory");
	ig_jput(js, scheme, json_string(s == SCHEME_PNC ?
	    subj.pnc : value));
	ig_jput(rep, "subject", js);
	w.hex = hex;
	if ((rc = store_audit_each(st, txn, 0, subject_entry, &w)) != 0)
		fatalx("cannot read the audit: %s", store_strerror(rc));
	ig_jput(rep, "disclosures", w.disc);
	ig_jput(rep, "withheld", w.with);

	if ((rc = store_consent_cids(st, txn, &ps, true, &cids, &n)) != 0)
		fatalx("cannot read consents: %s", store_strerror(rc));
	for (i = 0; i < n; i++) {
		if ((rc = store_consent_get(st, txn, cids[i], &cs)) != 0)
			fatalx("cannot read a consent: %s", store_strerror(rc));
		if ((o = consent_json(st, &cs, now)) == NULL ||
		    json_array_append_new(cons, o) != 0)
			fatalx("out of memory");
	}
	free(cids);
	ig_jput(rep, "consents", cons);
	store_abort(txn);
	store_close(&st);
	return ig_print_json(rep);
}

