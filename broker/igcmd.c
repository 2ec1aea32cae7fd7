/*
 * igcmd.c - audit verify, audit head, audit subject, stats and backup.
 *
 * Each opens the store read-only beside the running broker (LMDB readers
 * never block the writer) and prints JSON or one line; nothing here
 * changes the store.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <uuid/uuid.h>

#include "audit.h"
#include "auth.h"
#include "bytes.h"
#include "igcmd.h"
#include "json.h"
#include "log.h"
#include "store.h"

static struct store *open_store(const struct broker_conf *);
static int	hexdigit(char);
static int	head_set(struct audit_head *, const char *, size_t,
		    const char *, size_t, char *, size_t);
static int	head_parse(const char *, struct audit_head *, char *, size_t);
static json_t	*mp_to_json(const msgpack_object *);
static json_t	*mp_get(const msgpack_object *, const char *);
static json_t	*entry_json(const msgpack_object *);
static int	print_json(json_t *);
static void	verify_report(const char *, void *);
static void	jput(json_t *, const char *, json_t *);
static void	jref(json_t *, const char *, json_t *);
static int	subject_entry(uint64_t, const void *, size_t, void *);
static json_t	*consent_json(struct store *, struct consent *, int64_t);
struct stats_walk;
static int	stats_online(const char *, void *);
static json_t	*agency_use(struct stats_walk *, const char *);
static void	jadd(json_t *, const char *, json_int_t);
static int	stats_held(const uint8_t mid[16], const struct msg_hdr *,
		    void *);
static void	stats_auth(struct store *, struct store_txn *, json_t *);
static int	stats_queue(const char *, uint64_t, const struct qent *,
		    void *);

static struct store *
open_store(const struct broker_conf *c)
{
	struct store	*st;
	char		 err[512];

	if (store_open(&st, c->data, c->map_size_mb, true, err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
	return st;
}

/*
 * Set a member (taking the value's reference, or a new one to a borrowed
 * value; an absent value is null).  These commands print a report and
 * exit, so running out of memory while building it ends the command
 * with that said, rather than printing a report with holes in it.
 */
static void
jput(json_t *o, const char *k, json_t *v)
{
	if (v == NULL || json_object_set_new(o, k, v) != 0)
		fatalx("out of memory");
}

static void
jref(json_t *o, const char *k, json_t *v)
{
	jput(o, k, v != NULL ? json_incref(v) : json_null());
}

static int
print_json(json_t *j)
{
	int	rc;

	rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(j);
	return rc == 0 && fflush(stdout) == 0 ? 0 : 1;
}

/* A msgpack value as JSON; null when absent or not representable. */
static json_t *
mp_to_json(const msgpack_object *o)
{
	json_t	*j;

	if (o == NULL || (j = proto_object_to_jansson(o)) == NULL)
		return json_null();
	return j;
}

/* A field of a msgpack map as JSON (null when absent). */
static json_t *
mp_get(const msgpack_object *map, const char *k)
{
	uint32_t	i;
	size_t		n = strlen(k);

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return json_null();
	for (i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == n &&
		    memcmp(kv->key.via.str.ptr, k, n) == 0)
			return mp_to_json(&kv->val);
	}
	return json_null();
}

/*
 * An audit entry as JSON.  Its `prev` link is binary, which JSON cannot
 * hold (the whole entry would convert to null), so it is left out.
 */
static json_t *
entry_json(const msgpack_object *map)
{
	json_t		*j = json_object();
	uint32_t	 i;

	if (j == NULL)
		return NULL;
	for (i = 0; map->type == MSGPACK_OBJECT_MAP &&
	    i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];

		if (kv->key.type != MSGPACK_OBJECT_STR ||
		    kv->val.type == MSGPACK_OBJECT_BIN)
			continue;
		if (json_object_setn_new(j, kv->key.via.str.ptr,
		    kv->key.via.str.size, mp_to_json(&kv->val)) != 0) {
			json_decref(j);
			return NULL;
		}
	}
	return j;
}

static void
verify_report(const char *finding, void *arg)
{
	(void)arg;
	fprintf(stderr, "store damaged: %s\n", finding);
}

static int
hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * A head from its two parts: SEQ in decimal, HASH the 64 hex digits of the
 * entry's SHA-256 (empty, or "-", for seq 0, an empty trail).  Returns 0,
 * or -1 with err.
 */
static int
head_set(struct audit_head *h, const char *seq, size_t seqlen,
    const char *hash, size_t hashlen, char *err, size_t errlen)
{
	char		 num[24];
	size_t		 i;

	memset(h, 0, sizeof(*h));
	for (i = 0; i < seqlen; i++)
		if (!isdigit((unsigned char)seq[i]))
			break;
	if (seqlen == 0 || i < seqlen || seqlen >= sizeof(num)) {
		snprintf(err, errlen, "SEQ must be a number");
		return -1;
	}
	memcpy(num, seq, seqlen);
	num[seqlen] = '\0';
	errno = 0;
	h->seq = strtoull(num, NULL, 10);
	if (errno != 0) {
		snprintf(err, errlen, "SEQ is out of range");
		return -1;
	}
	if (h->seq == 0) {
		if (hashlen == 0 || (hashlen == 1 && hash[0] == '-'))
			return 0;
		snprintf(err, errlen, "seq 0 is the empty trail: it has no "
		    "hash");
		return -1;
	}
	if (hashlen != 2 * AUDIT_HASH_LEN) {
		snprintf(err, errlen, "HASH must be 64 hex digits");
		return -1;
	}
	for (i = 0; i < AUDIT_HASH_LEN; i++) {
		int	hi = hexdigit(hash[2 * i]), lo = hexdigit(hash[2 * i + 1]);

		if (hi == -1 || lo == -1) {
			snprintf(err, errlen, "HASH must be 64 hex digits");
			return -1;
		}
		h->hash[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* One head in any of the forms ig_heads_add takes. */
static int
head_parse(const char *text, struct audit_head *h, char *err, size_t errlen)
{
	static const char	 logtag[] = "audit head seq=";
	const char		*p, *colon, *hash;
	json_t			*j, *seq, *hx;
	json_error_t		 jerr;
	char			 num[24];
	size_t			 n;
	int			 rc;

	while (isspace((unsigned char)*text))
		text++;
	if (text[0] == '{') {
		/* As `ccbroker audit head` prints it. */
		if ((j = json_loads(text, JSON_REJECT_DUPLICATES,
		    &jerr)) == NULL) {
			snprintf(err, errlen, "not JSON: %.80s", jerr.text);
			return -1;
		}
		seq = json_object_get(j, "seq");
		hx = json_object_get(j, "hash");
		if (!json_is_integer(seq) || json_integer_value(seq) < 0 ||
		    !json_is_string(hx)) {
			json_decref(j);
			snprintf(err, errlen, "want {\"seq\": N, \"hash\": H}");
			return -1;
		}
		snprintf(num, sizeof(num), "%lld",
		    (long long)json_integer_value(seq));
		rc = head_set(h, num, strlen(num), json_string_value(hx),
		    json_string_length(hx), err, errlen);
		json_decref(j);
		return rc;
	}
	if ((p = strstr(text, logtag)) != NULL) {
		/* The broker's log line: "... audit head seq=N hash=H". */
		p += sizeof(logtag) - 1;
		hash = p + strspn(p, "0123456789");
		if (strncmp(hash, " hash=", 6) != 0) {
			snprintf(err, errlen, "want audit head seq=N hash=H");
			return -1;
		}
		return head_set(h, p, (size_t)(hash - p), hash + 6,
		    strcspn(hash + 6, " \t\r\n"), err, errlen);
	}
	if ((colon = strchr(text, ':')) == NULL) {
		snprintf(err, errlen, "want SEQ:HASH");
		return -1;
	}
	hash = colon + 1;
	n = strcspn(hash, " \t\r\n");
	if (hash[n + strspn(hash + n, " \t\r\n")] != '\0') {
		snprintf(err, errlen, "text after HASH");
		return -1;
	}
	return head_set(h, text, (size_t)(colon - text), hash, n, err,
	    errlen);
}

int
ig_heads_add(struct ig_heads *l, const char *text, char *err, size_t errlen)
{
	struct audit_head	h;
	char			why[128];

	if (head_parse(text, &h, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s (give SEQ:HASH, as `ccbroker audit "
		    "head` prints them: HASH the 64 hex digits of entry SEQ's "
		    "SHA-256)", why);
		return -1;
	}
	if (l->n == l->cap) {
		size_t	 cap = l->cap ? l->cap * 2 : 16;
		void	*p = reallocarray(l->h, cap, sizeof(*l->h));

		if (p == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		l->h = p;
		l->cap = cap;
	}
	l->h[l->n++] = h;
	return 0;
}

int
ig_heads_load(struct ig_heads *l, const char *path, char *err, size_t errlen)
{
	FILE	*f;
	char	*line = NULL, *p, why[384];
	size_t	 cap = 0, lineno = 0;
	int	 rc = 0;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && getline(&line, &cap, f) != -1) {
		lineno++;
		for (p = line; isspace((unsigned char)*p); p++)
			;
		if (*p == '\0' || *p == '#')
			continue;
		if (ig_heads_add(l, p, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
			rc = -1;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	free(line);
	fclose(f);
	return rc;
}

void
ig_heads_free(struct ig_heads *l)
{
	free(l->h);
	memset(l, 0, sizeof(*l));
}

/*
 * The whole chain, and each exported head: the entry it names must be
 * there and be the one exported.  Only an exported head shows a trail cut
 * from its tail (and its recorded head rewritten) or an older store put
 * back; `audit verify` alone says intact to both.
 */
int
ig_audit_verify(const struct broker_conf *c, struct ig_heads *heads)
{
	struct store	*st;
	uint64_t	 count = 0, bad = 0;
	char		 why[384];
	int		 rc, n;

	st = open_store(c);
	rc = audit_verify_heads(st, heads->h, heads->n, &count, &bad, why,
	    sizeof(why));
	/* The rest of the store, read through: damage anywhere is said. */
	if ((n = store_check(st, CHECK_FULL, verify_report, NULL)) != 0) {
		store_close(&st);
		if (n == -1) {
			fprintf(stderr, "store cannot be read from %s\n",
			    c->data);
			return 2;
		}
		fprintf(stderr, "store damaged: %d finding%s\n", n,
		    n == 1 ? "" : "s");
		if (rc == 1)
			fprintf(stderr, "audit broken at entry %llu: %s\n",
			    (unsigned long long)bad, why);
		return rc == -1 ? 2 : 1;
	}
	store_close(&st);
	if (rc == 0) {
		if (heads->n > 0)
			printf("audit intact: %llu entries, %zu exported "
			    "head%s match\n", (unsigned long long)count,
			    heads->n, heads->n == 1 ? "" : "s");
		else
			printf("audit intact: %llu entries\n",
			    (unsigned long long)count);
		return 0;
	}
	if (rc == 1) {
		fprintf(stderr, "audit broken at entry %llu: %s\n",
		    (unsigned long long)bad, why);
		return 1;
	}
	fprintf(stderr, "audit cannot be read from %s\n", c->data);
	return 2;
}

/*
 * The head to export off the machine: seq, SHA-256 and time of the newest
 * entry, one JSON line that `audit verify --heads` reads back.
 */
int
ig_audit_head(const struct broker_conf *c)
{
	struct store		*st;
	struct store_txn	*txn;
	struct audit_head	 h;
	json_t			*j;
	char			 hex[2 * AUDIT_HASH_LEN + 1], at[32];
	int			 rc;

	st = open_store(c);
	if ((rc = store_begin(st, false, &txn)) == 0) {
		rc = audit_head(st, txn, &h);
		store_abort(txn);
	}
	store_close(&st);
	if (rc != 0) {
		fprintf(stderr, "audit cannot be read from %s: %s\n", c->data,
		    store_strerror(rc));
		return 2;
	}
	hex[0] = at[0] = '\0';
	if (h.seq > 0)
		cc_hex(h.hash, sizeof(h.hash), hex);
	if (h.seq > 0 && h.t_ms > 0)
		cc_time_format(h.t_ms, at);
	if ((j = json_object()) == NULL)
		fatalx("out of memory");
	jput(j, "seq", json_integer((json_int_t)h.seq));
	jput(j, "hash", json_string(hex));
	jput(j, "time", json_string(at));
	rc = json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	fputc('\n', stdout);
	return rc == 0 && fflush(stdout) == 0 ? 0 : 1;
}

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
	e = entry_json(&up.data);
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
		jput(out, "time", json_string(at));
	}
	jref(out, "mid", json_object_get(e, "id"));
	jref(out, "type", json_object_get(e, "type"));
	jref(out, "sender", json_object_get(e, "sender"));
	jref(out, "recipient", json_object_get(e, "recipient"));
	if (strcmp(json_string_value(ev), "delivered") == 0) {
		jref(out, "categories", json_object_get(e, "cats"));
		jref(out, "consent", json_object_get(e, "consent"));
		if (json_array_append_new(w->disc, out) != 0)
			goto nomem;
	} else if (strcmp(json_string_value(ev), "withheld") == 0) {
		jref(out, "reason", json_object_get(e, "reason"));
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
	jput(o, "cid", json_string(cid));
	jput(o, "recorded_by", json_string(c->h.recorded_by));
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
	jput(o, "recipients", mp_get(grant, "recipients"));
	jput(o, "purposes", mp_get(grant, "purposes"));
	jput(o, "categories", mp_get(grant, "categories"));
	jput(o, "deny", mp_get(grant, "deny"));
	jput(o, "explicit", json_boolean(c->h.explicit_));
	jput(o, "valid_from", mp_get(grant, "valid_from"));
	jput(o, "valid_until", mp_get(grant, "valid_until"));
	/* A consent past its period is reported as expired. */
	jput(o, "state", json_string(
	    c->h.state == CS_ACTIVE && c->h.until_ms <= now ? "expired" :
	    c->h.state < CS__COUNT ? state[c->h.state] : "?"));
	h = mp_to_json(hist);
	jput(o, "history", h);
	/* The evidence the consent rests on: of the latest grant, or of the
	 * refusal. */
	if (grant != NULL)
		jput(o, "evidence", mp_get(grant, "evidence"));
	else if (json_array_size(h) > 0)
		jref(o, "evidence", json_object_get(
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
	st = open_store(c);
	if (store_subject_ps(st, &subj, &ps) == -1)
		fatalx("cannot compute the subject's pseudonym");
	cc_hex(ps.id[s], PSEUDO_LEN, hex);
	if (store_begin(st, false, &txn) != 0)
		fatalx("%s: cannot read the store", c->data);

	if ((rep = json_object()) == NULL || (js = json_object()) == NULL ||
	    (w.disc = json_array()) == NULL || (w.with = json_array()) == NULL ||
	    (cons = json_array()) == NULL)
		fatalx("out of memory");
	jput(js, scheme, json_string(s == SCHEME_PNC ?
	    subj.pnc : value));
	jput(rep, "subject", js);
	w.hex = hex;
	if ((rc = store_audit_each(st, txn, 0, subject_entry, &w)) != 0)
		fatalx("cannot read the audit: %s", store_strerror(rc));
	jput(rep, "disclosures", w.disc);
	jput(rep, "withheld", w.with);

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
	jput(rep, "consents", cons);
	store_abort(txn);
	store_close(&st);
	return print_json(rep);
}

static int
stats_online(const char *agency, void *arg)
{
	return json_array_append_new(arg, json_string(agency)) == 0 ? 0 :
	    STORE_NOMEM;
}

/* The walk of the queues for stats. */
struct stats_walk {
	json_t			*queues;
	json_t			*agencies;	/* usage per agency */
	int64_t			 now;
	struct store		*st;
	struct store_txn	*txn;
	const struct broker_conf *conf;
};

/* An agency's usage entry, made with its quota the first time. */
static json_t *
agency_use(struct stats_walk *w, const char *agency)
{
	struct quota	 q;
	json_t		*e, *jq;

	if ((e = json_object_get(w->agencies, agency)) != NULL)
		return e;
	broker_conf_quota(w->conf, agency, &q);
	jput(w->agencies, agency, e = json_object());
	jput(e, "queued", json_integer(0));
	jput(e, "queued_bytes", json_integer(0));
	jput(e, "held", json_integer(0));
	jput(e, "held_bytes", json_integer(0));
	jput(e, "connections", json_integer(0));
	jput(e, "quota", jq = json_object());
	jput(jq, "queued", json_integer((json_int_t)q.queued));
	jput(jq, "queued_mb", json_integer((json_int_t)q.queued_mb));
	jput(jq, "held", json_integer((json_int_t)q.held));
	jput(jq, "held_mb", json_integer((json_int_t)q.held_mb));
	jput(jq, "connections", json_integer((json_int_t)q.connections));
	return e;
}

/* Add n to an integer member. */
static void
jadd(json_t *o, const char *k, json_int_t n)
{
	jput(o, k, json_integer(json_integer_value(json_object_get(o, k)) + n));
}

static int
stats_held(const uint8_t mid[16], const struct msg_hdr *h, void *arg)
{
	struct stats_walk	*w = arg;
	json_t			*e;

	(void)mid;
	if (h->sealed_len == 0)
		return 0;
	e = agency_use(w, h->sender);
	jadd(e, "held", 1);
	jadd(e, "held_bytes", (json_int_t)msg_record_size(h));
	return 0;
}

static int
stats_queue(const char *agency, uint64_t dseq, const struct qent *q,
    void *arg)
{
	struct stats_walk	*w = arg;
	json_t			*e;
	int64_t			 age = (w->now - q->at_ms) / 1000;

	(void)dseq;
	if (q->kind == Q_DELIVER) {
		struct msg_hdr	h;

		e = agency_use(w, agency);
		jadd(e, "queued", 1);
		if (store_msg_get(w->st, w->txn, q->mid, &h, NULL) == 0)
			jadd(e, "queued_bytes", (json_int_t)msg_record_size(&h));
	}
	if ((e = json_object_get(w->queues, agency)) == NULL) {
		jput(w->queues, agency, e = json_object());
		jput(e, "depth", json_integer(0));
		jput(e, "oldest_age_s", json_integer(age));
	}
	jput(e, "depth", json_integer(
	    json_integer_value(json_object_get(e, "depth")) + 1));
	if (age > json_integer_value(json_object_get(e, "oldest_age_s")))
		jput(e, "oldest_age_s", json_integer(age));
	return 0;
}

/*
 * The certificates in force, as the broker recorded them: "reload" (the
 * last load, at start or SIGHUP: ok, at, error) and "crl" (next_update,
 * and whether that is past now).  Null when the broker never recorded it.
 */
static void
stats_auth(struct store *st, struct store_txn *txn, json_t *rep)
{
	struct auth_status	 s;
	json_t			*rl, *crl;
	char			 t[32];
	size_t			 len = 0;
	int			 rc;

	memset(&s, 0, sizeof(s));
	rc = store_meta_get(st, txn, AUTH_STATUS_META, &s, sizeof(s), &len);
	if (rc == STORE_NOTFOUND || (rc == 0 && len != sizeof(s))) {
		jput(rep, "reload", json_null());
		jput(rep, "crl", json_null());
		return;
	}
	if (rc != 0)
		fatalx("cannot read the reload status: %s",
		    store_strerror(rc));
	s.error[sizeof(s.error) - 1] = '\0';
	/* Paths in it need not be UTF-8; JSON must be. */
	for (len = 0; s.error[len] != '\0'; len++)
		if ((unsigned char)s.error[len] < 0x20 ||
		    (unsigned char)s.error[len] > 0x7e)
			s.error[len] = '?';
	if ((rl = json_object()) == NULL || (crl = json_object()) == NULL)
		fatalx("out of memory");
	jput(rl, "ok", json_boolean(s.ok));
	cc_time_format(s.loaded_ms, t);
	jput(rl, "at", json_string(t));
	jput(rl, "error", s.ok ? json_null() : json_string(s.error));
	jput(rep, "reload", rl);
	cc_time_format(s.crl_next_update * 1000, t);
	jput(crl, "next_update", json_string(t));
	jput(crl, "expired", json_boolean(cc_time_now_ms() / 1000 >
	    s.crl_next_update));
	jput(rep, "crl", crl);
}

int
ig_stats(const struct broker_conf *c)
{
	struct store		*st;
	struct store_txn	*txn;
	struct store_counters	 cnt;
	struct stats_walk	 w;
	json_t			*rep, *conns, *out, *store;
	size_t			 used = 0, map = 0, i;
	char			 buf[65536];
	int			 rc;

	st = open_store(c);
	if (store_begin(st, false, &txn) != 0)
		fatalx("%s: cannot read the store", c->data);
	if ((rep = json_object()) == NULL || (conns = json_array()) == NULL ||
	    (w.queues = json_object()) == NULL || (out = json_object()) == NULL ||
	    (store = json_object()) == NULL ||
	    (w.agencies = json_object()) == NULL)
		fatalx("out of memory");
	w.now = cc_time_now_ms();
	w.st = st;
	w.txn = txn;
	w.conf = c;
	for (i = 0; i < c->nagency; i++)
		(void)agency_use(&w, c->agency[i].id);
	if ((rc = store_online_each(st, txn, stats_online, conns)) != 0)
		fatalx("cannot read who is online: %s", store_strerror(rc));
	jput(rep, "connections", conns);
	/* Queue depth and oldest entry per agency, in one pass. */
	if ((rc = store_queues_each(st, txn, stats_queue, &w)) != 0)
		fatalx("cannot read queues: %s", store_strerror(rc));
	jput(rep, "queues", w.queues);
	if ((rc = store_counters_get(st, txn, &cnt)) != 0)
		fatalx("cannot read the counters: %s", store_strerror(rc));
	/* What each agency holds, against its quota. */
	if ((rc = store_msgs_each(st, txn, stats_held, &w)) != 0)
		fatalx("cannot read messages: %s", store_strerror(rc));
	if ((rc = store_meta_get(st, txn, "connections", buf, sizeof(buf),
	    &used)) == 0 && used <= sizeof(buf)) {
		const char *p = buf, *end = buf + used;

		while (p < end) {
			size_t		 l = strnlen(p, (size_t)(end - p));
			const char	*id = p, *num;

			if ((p += l + 1) >= end)
				break;
			num = p;
			p += strnlen(p, (size_t)(end - p)) + 1;
			if (l > 0 && l <= CC_ID_MAX)
				jput(agency_use(&w, id), "connections",
				    json_integer(strtoll(num, NULL, 10)));
		}
	} else if (rc != 0 && rc != STORE_NOTFOUND)
		fatalx("cannot read connections: %s", store_strerror(rc));
	used = 0;
	stats_auth(st, txn, rep);
	store_abort(txn);
	jput(rep, "agencies", w.agencies);
	jput(out, "accepted", json_integer(cnt.accepted));
	jput(out, "delivered", json_integer(cnt.delivered));
	jput(out, "withheld", json_integer(cnt.withheld));
	jput(out, "purged", json_integer(cnt.purged));
	jput(out, "expired", json_integer(cnt.expired));
	jput(out, "refused_connections",
	    json_integer(cnt.refused));
	jput(out, "rejected_inputs", json_integer(cnt.rejected));
	jput(rep, "outcomes", out);
	if (store_usage(st, &used, &map) != 0)
		fatalx("cannot measure the store");
	jput(store, "used_bytes", json_integer(used));
	jput(store, "map_bytes", json_integer(map));
	jput(rep, "store", store);
	store_close(&st);
	return print_json(rep);
}

/*
 * A consistent, compacted copy made from one read transaction while the
 * broker keeps running.  The at-rest key stays behind unless asked for:
 * a backup without it is useless to whoever steals it.
 */
int
ig_backup(const struct broker_conf *c, const char *dir, bool with_key)
{
	struct store	*st;
	char		 src[PATH_MAX + 32], dst[PATH_MAX + 32];
	char		 buf[SEAL_KEYLEN], err[512];
	FILE		*in, *outf;

	st = open_store(c);
	if (store_backup(st, dir, err, sizeof(err)) == -1)
		fatalx("%s", err);
	store_close(&st);
	if (with_key) {
		snprintf(src, sizeof(src), "%s/%s", c->data, SEAL_KEYFILE);
		snprintf(dst, sizeof(dst), "%s/%s", dir, SEAL_KEYFILE);
		if ((in = fopen(src, "rb")) == NULL)
			fatal("%s", src);
		if (fread(buf, 1, sizeof(buf), in) != sizeof(buf))
			fatalx("%s: short key file", src);
		fclose(in);
		umask(077);
		if ((outf = fopen(dst, "wbx")) == NULL)
			fatal("%s", dst);
		if (fwrite(buf, 1, sizeof(buf), outf) != sizeof(buf) ||
		    fclose(outf) != 0)
			fatal("%s", dst);
		explicit_bzero(buf, sizeof(buf));
	}
	printf("backup written to %s%s\n", dir, with_key ? " (with key)" :
	    " (copy the key file separately to restore)");
	return 0;
}
