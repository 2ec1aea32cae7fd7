/*
 * igcmd.c - audit verify, audit head and backup, and what the IG commands
 * share (ig.h).
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

#include <openssl/crypto.h>

#include "audit.h"
#include "bytes.h"
#include "ig.h"
#include "igcmd.h"
#include "json.h"
#include "log.h"

static int	head_set(struct audit_head *, const char *, size_t,
		    const char *, size_t, char *, size_t);
static int	head_parse(const char *, struct audit_head *, char *, size_t);
static void	verify_report(const char *, void *);

struct store *
ig_open_store(const struct broker_conf *c)
{
	struct store	*st;
	char		 err[512];

	if (store_open(&st, c->data, c->map_size_mb, true, err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
	return st;
}

void
ig_jput(json_t *o, const char *k, json_t *v)
{
	if (v == NULL || json_object_set_new(o, k, v) != 0)
		fatalx("out of memory");
}

void
ig_jref(json_t *o, const char *k, json_t *v)
{
	ig_jput(o, k, v != NULL ? json_incref(v) : json_null());
}

int
ig_print_json(json_t *j)
{
	int	rc;

	rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(j);
	return rc == 0 && fflush(stdout) == 0 ? 0 : 1;
}

/* A msgpack value as JSON; null when absent or not representable. */
json_t *
ig_mp_to_json(const msgpack_object *o)
{
	json_t	*j;

	if (o == NULL || (j = proto_object_to_jansson(o)) == NULL)
		return json_null();
	return j;
}

/* A field of a msgpack map as JSON (null when absent). */
json_t *
ig_mp_get(const msgpack_object *map, const char *k)
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
			return ig_mp_to_json(&kv->val);
	}
	return json_null();
}

/*
 * An audit entry as JSON.  Its `prev` link is binary, which JSON cannot
 * hold (the whole entry would convert to null), so it is left out.
 */
json_t *
ig_entry_json(const msgpack_object *map)
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
		    kv->key.via.str.size, ig_mp_to_json(&kv->val)) != 0) {
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

/*
 * A head from its two parts: SEQ in decimal, HASH the 64 hex digits of the
 * entry's SHA-256 (empty, or "-", for seq 0, an empty trail).  Returns 0,
 * or -1 with err.
 */
static int
head_set(struct audit_head *h, const char *seq, size_t seqlen,
    const char *hash, size_t hashlen, char *err, size_t errlen)
{
	char		 num[24], hex[2 * AUDIT_HASH_LEN + 1];
	size_t		 i, n;

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
	memcpy(hex, hash, hashlen);
	hex[hashlen] = '\0';
	if (OPENSSL_hexstr2buf_ex(h->hash, sizeof(h->hash), &n, hex,
	    '\0') != 1 || n != AUDIT_HASH_LEN) {
		snprintf(err, errlen, "HASH must be 64 hex digits");
		return -1;
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

	st = ig_open_store(c);
	/*
	 * The whole store is read through first, its pages walked before
	 * LMDB reads any of them: damage anywhere is said, and the chain is
	 * then read only from a store that can be read.
	 */
	n = store_check(st, CHECK_FULL, verify_report, NULL);
	rc = n == -1 ? -1 : audit_verify_heads(st, heads->h, heads->n, &count,
	    &bad, why, sizeof(why));
	if (n != 0) {
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

	st = ig_open_store(c);
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
	ig_jput(j, "seq", json_integer((json_int_t)h.seq));
	ig_jput(j, "hash", json_string(hex));
	ig_jput(j, "time", json_string(at));
	rc = json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	fputc('\n', stdout);
	return rc == 0 && fflush(stdout) == 0 ? 0 : 1;
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

	st = ig_open_store(c);
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
