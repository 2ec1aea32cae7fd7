/*
 * igcmd.c - audit verify, audit subject, stats and backup.
 *
 * Each opens the store read-only beside the running broker (LMDB readers
 * never block the writer) and prints JSON or one line; nothing here
 * changes the store.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <uuid/uuid.h>

#include "audit.h"
#include "broker.h"
#include "igcmd.h"
#include "log.h"
#include "store.h"

static void	open_store(const struct broker_conf *, struct store *);
static json_t	*mp_to_json(const msgpack_object *);
static json_t	*mp_get(const msgpack_object *, const char *);
static json_t	*entry_json(const msgpack_object *);
static void	hexstr(const uint8_t *, size_t, char *);
static int	print_json(json_t *);

static void
open_store(const struct broker_conf *c, struct store *st)
{
	char	err[512];

	if (store_open(st, c->data, c->map_size_mb, true, err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
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

static void
hexstr(const uint8_t *p, size_t n, char *out)
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static json_t *
mp_to_json(const msgpack_object *o)
{
	char	*text;
	json_t	*j;

	if (o == NULL || (text = proto_object_to_json(o, false)) == NULL)
		return json_null();
	j = json_loads(text, JSON_DECODE_ANY, NULL);
	free(text);
	return j != NULL ? j : json_null();
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

	for (i = 0; map->type == MSGPACK_OBJECT_MAP &&
	    i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];

		if (kv->key.type != MSGPACK_OBJECT_STR ||
		    kv->val.type == MSGPACK_OBJECT_BIN)
			continue;
		json_object_setn_new(j, kv->key.via.str.ptr,
		    kv->key.via.str.size, mp_to_json(&kv->val));
	}
	return j;
}

int
ig_audit_verify(const struct broker_conf *c)
{
	struct store	st;
	uint64_t	count = 0, bad = 0;
	char		why[256];
	int		rc;

	open_store(c, &st);
	rc = audit_verify(&st, &count, &bad, why, sizeof(why));
	store_close(&st);
	if (rc == 0) {
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
 * The subject access report: every disclosure and withholding recorded in
 * the audit about this person (matched by pseudonym), and the full history
 * of their consents with evidence.
 */
int
ig_audit_subject(const struct broker_conf *c, const char *scheme,
    const char *value)
{
	struct store		 st;
	struct cc_subject	 subj;
	struct subject_ps	 ps;
	struct consent		 cs[64];
	MDB_txn			*txn;
	MDB_cursor		*cur;
	MDB_val			 k, v;
	json_t			*rep, *disc, *with, *cons, *js;
	char			 hex[2 * PSEUDO_LEN + 1];
	int64_t			 now = cc_time_now_ms();
	int			 i, n, s;

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
	open_store(c, &st);
	if (store_subject_ps(&st, &subj, &ps) == -1)
		fatalx("cannot compute the subject's pseudonym");
	hexstr(ps.id[s], PSEUDO_LEN, hex);
	if (store_begin(&st, false, &txn) != 0)
		fatalx("%s: cannot read the store", c->data);

	rep = json_object();
	js = json_object();
	json_object_set_new(js, scheme, json_string(s == SCHEME_PNC ?
	    subj.pnc : value));
	json_object_set_new(rep, "subject", js);
	disc = json_array();
	with = json_array();
	if (mdb_cursor_open(txn, st.audit, &cur) != 0)
		fatalx("cannot read the audit");
	while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		msgpack_unpacked up;
		size_t		 off = 0;
		json_t		*e, *subjs, *out, *ev;
		size_t		 j;
		bool		 match = false;

		msgpack_unpacked_init(&up);
		if (msgpack_unpack_next(&up, v.mv_data, v.mv_size, &off) !=
		    MSGPACK_UNPACK_SUCCESS) {
			msgpack_unpacked_destroy(&up);
			continue;
		}
		e = entry_json(&up.data);
		msgpack_unpacked_destroy(&up);
		subjs = json_object_get(e, "subject");
		for (j = 0; j < json_array_size(subjs) && !match; j++)
			match = json_is_string(json_array_get(subjs, j)) &&
			    strcmp(json_string_value(json_array_get(subjs, j)),
			    hex) == 0;
		ev = json_object_get(e, "ev");
		if (!match || !json_is_string(ev)) {
			json_decref(e);
			continue;
		}
		out = json_object();
		if (json_is_integer(json_object_get(e, "t"))) {
			char at[32];
			int64_t ms = json_integer_value(json_object_get(e,
			    "t"));
			time_t t = (time_t)(ms / 1000);
			struct tm tm;

			gmtime_r(&t, &tm);
			strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
			json_object_set_new(out, "time", json_string(at));
		}
		json_object_set(out, "mid", json_object_get(e, "id"));
		json_object_set(out, "type", json_object_get(e, "type"));
		json_object_set(out, "sender", json_object_get(e, "sender"));
		json_object_set(out, "recipient",
		    json_object_get(e, "recipient"));
		if (strcmp(json_string_value(ev), "delivered") == 0) {
			json_object_set(out, "categories",
			    json_object_get(e, "cats"));
			json_object_set(out, "consent",
			    json_object_get(e, "consent"));
			json_array_append_new(disc, out);
		} else if (strcmp(json_string_value(ev), "withheld") == 0) {
			json_object_set(out, "reason",
			    json_object_get(e, "reason"));
			json_array_append_new(with, out);
		} else
			json_decref(out);
		json_decref(e);
	}
	mdb_cursor_close(cur);
	json_object_set_new(rep, "disclosures", disc);
	json_object_set_new(rep, "withheld", with);

	cons = json_array();
	if ((n = store_consents_of(&st, txn, &ps, cs, 64)) < 0)
		fatalx("cannot read consents");
	for (i = 0; i < n; i++) {
		static const char *const state[CS__COUNT] = { "active",
		    "withdrawn", "refused", "superseded" };
		msgpack_unpacked	 up;
		const msgpack_object	*grant = NULL, *hist = NULL;
		json_t			*o = json_object(), *h;
		uint8_t			*raw;
		size_t			 len, off = 0;
		char			 cid[37];
		uint32_t		 j;

		/* The decision view has no seal: read the whole record. */
		if (store_consent_get(&st, txn, cs[i].cid, &cs[i]) != 0)
			fatalx("cannot read a consent");
		uuid_unparse_lower(cs[i].cid, cid);
		json_object_set_new(o, "cid", json_string(cid));
		json_object_set_new(o, "recorded_by",
		    json_string(cs[i].h.recorded_by));
		msgpack_unpacked_init(&up);
		raw = store_consent_history(&st, &cs[i], &len);
		if (raw != NULL && msgpack_unpack_next(&up, (char *)raw, len,
		    &off) == MSGPACK_UNPACK_SUCCESS &&
		    up.data.type == MSGPACK_OBJECT_MAP) {
			for (j = 0; j < up.data.via.map.size; j++) {
				const msgpack_object_kv *kv =
				    &up.data.via.map.ptr[j];

				if (kv->key.via.str.size == 5 &&
				    !memcmp(kv->key.via.str.ptr, "grant", 5))
					grant = &kv->val;
				if (kv->key.via.str.size == 7 &&
				    !memcmp(kv->key.via.str.ptr, "history", 7))
					hist = &kv->val;
			}
		}
		json_object_set_new(o, "recipients", mp_get(grant,
		    "recipients"));
		json_object_set_new(o, "purposes", mp_get(grant, "purposes"));
		json_object_set_new(o, "categories", mp_get(grant,
		    "categories"));
		json_object_set_new(o, "deny", mp_get(grant, "deny"));
		json_object_set_new(o, "explicit", json_boolean(
		    cs[i].h.explicit_));
		json_object_set_new(o, "valid_from", mp_get(grant,
		    "valid_from"));
		json_object_set_new(o, "valid_until", mp_get(grant,
		    "valid_until"));
		/* A consent past its period is reported as expired. */
		json_object_set_new(o, "state", json_string(
		    cs[i].h.state == CS_ACTIVE && cs[i].h.until_ms <= now ?
		    "expired" : cs[i].h.state < CS__COUNT ?
		    state[cs[i].h.state] : "?"));
		h = mp_to_json(hist);
		json_object_set_new(o, "history", h);
		/* The evidence the consent rests on: of the latest grant, or
		 * of the refusal. */
		if (grant != NULL)
			json_object_set_new(o, "evidence", mp_get(grant,
			    "evidence"));
		else if (json_array_size(h) > 0)
			json_object_set(o, "evidence", json_object_get(
			    json_array_get(h, json_array_size(h) - 1),
			    "evidence"));
		json_array_append_new(cons, o);
		msgpack_unpacked_destroy(&up);
		if (raw != NULL) {
			explicit_bzero(raw, len);
			free(raw);
		}
	}
	json_object_set_new(rep, "consents", cons);
	mdb_txn_abort(txn);
	store_close(&st);
	return print_json(rep);
}

int
ig_stats(const struct broker_conf *c)
{
	struct store	 st;
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	json_t		*rep, *conns, *queues, *out, *store;
	struct saved_counters cnt;
	size_t		 used = 0, map = 0;
	int64_t		 now = cc_time_now_ms();
	const char	*p, *end;

	open_store(c, &st);
	if (store_begin(&st, false, &txn) != 0)
		fatalx("%s: cannot read the store", c->data);
	rep = json_object();
	conns = json_array();
	k.mv_size = 6;
	k.mv_data = "online";
	if (mdb_get(txn, st.meta, &k, &v) == 0) {
		p = v.mv_data;
		end = p + v.mv_size;
		while (p < end) {
			size_t l = strnlen(p, (size_t)(end - p));

			json_array_append_new(conns, json_stringn(p, l));
			p += l + 1;
		}
	}
	json_object_set_new(rep, "connections", conns);

	/* Queue depth and oldest entry per agency, in one pass. */
	queues = json_object();
	if (mdb_cursor_open(txn, st.queue, &cur) != 0)
		fatalx("cannot read queues");
	while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		char		 ag[CC_ID_MAX + 1];
		uint64_t	 dseq;
		struct qent	 q;
		json_t		*e;
		int64_t		 age;

		if (qkey_split(&k, ag, sizeof(ag), &dseq) == -1 ||
		    v.mv_size != sizeof(q))
			continue;
		memcpy(&q, v.mv_data, sizeof(q));
		age = (now - q.at_ms) / 1000;
		if ((e = json_object_get(queues, ag)) == NULL) {
			e = json_object();
			json_object_set_new(e, "depth", json_integer(0));
			json_object_set_new(e, "oldest_age_s",
			    json_integer(age));
			json_object_set_new(queues, ag, e);
		}
		json_object_set_new(e, "depth", json_integer(
		    json_integer_value(json_object_get(e, "depth")) + 1));
		if (age > json_integer_value(json_object_get(e,
		    "oldest_age_s")))
			json_object_set_new(e, "oldest_age_s",
			    json_integer(age));
	}
	mdb_cursor_close(cur);
	json_object_set_new(rep, "queues", queues);

	memset(&cnt, 0, sizeof(cnt));
	k.mv_size = 8;
	k.mv_data = "counters";
	if (mdb_get(txn, st.meta, &k, &v) == 0 && v.mv_size == sizeof(cnt))
		memcpy(&cnt, v.mv_data, sizeof(cnt));
	mdb_txn_abort(txn);
	out = json_object();
	json_object_set_new(out, "accepted", json_integer(cnt.c.accepted));
	json_object_set_new(out, "delivered", json_integer(cnt.c.delivered));
	json_object_set_new(out, "withheld", json_integer(cnt.c.withheld));
	json_object_set_new(out, "purged", json_integer(cnt.c.purged));
	json_object_set_new(out, "expired", json_integer(cnt.c.expired));
	json_object_set_new(out, "refused_connections",
	    json_integer(cnt.refused));
	json_object_set_new(out, "rejected_inputs", json_integer(cnt.c.rejected));
	json_object_set_new(rep, "outcomes", out);
	if (store_usage(&st, &used, &map) != 0)
		fatalx("cannot measure the store");
	store = json_object();
	json_object_set_new(store, "used_bytes", json_integer(used));
	json_object_set_new(store, "map_bytes", json_integer(map));
	json_object_set_new(rep, "store", store);
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
	struct store	st;
	char		src[PATH_MAX + 32], dst[PATH_MAX + 32], buf[SEAL_KEYLEN];
	FILE		*in, *outf;
	int		rc;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		fatal("%s", dir);
	open_store(c, &st);
	if ((rc = mdb_env_copy2(st.env, dir, MDB_CP_COMPACT)) != 0)
		fatalx("backup to %s: %s", dir, mdb_strerror(rc));
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
