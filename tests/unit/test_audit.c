/*
 * test_audit.c - broker/audit.c: golden entries, the chain's first link,
 * and what audit_verify says of a chain altered behind the broker's back.
 *
 * Golden entries: a fixed sequence of events, every kind, with and
 * without subject, consent, reason and categories, at fixed times, in a
 * store whose key is written here (aes 40..5f, mac 80..9f, the key of
 * test_seal.c, so the pseudonyms are its known answers).  Each entry's
 * bytes and SHA-256 must equal tests/files/audit-golden.json exactly: an
 * audit trail written by one version is verified by every later one, so
 * these bytes never change across refactors.
 *
 * The fixture was generated once from the code, with
 *
 *   GOLDEN_WRITE=1 CC_SRC=$PWD build/tests/test_audit \
 *       --filter 'audit/golden_entries_are_byte_for_byte_unchanged'
 *
 * Regenerating it is a change of the audit format: existing trails would
 * no longer match what the broker writes.  Do it only with a format
 * change that says how old trails are verified.
 *
 * Damage is done through LMDB with the store closed, as test_decide.c and
 * test_store.c do; store_impl.h is included for the meta key's name only.
 */
#define _GNU_SOURCE	/* memmem */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <jansson.h>
#include <lmdb.h>
#include <msgpack.h>
#include <openssl/evp.h>

#include "audit.h"
#include "bytes.h"
#include "store_impl.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define MAP_MB		16
#define GOLDEN		"tests/files/audit-golden.json"

#define MID_TEXT	"6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
#define CID1_TEXT	"d4c3b2a1-0f9e-4d8c-b7a6-958473625140"
#define CID2_TEXT	"1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9"
#define T0		1777626000000LL		/* 2026-05-01T09:00:00Z */
#define DAY		86400000LL

#define BASIC	(CATSET(CAT_IDENTITY) | CATSET(CAT_CRIMINAL_JUSTICE) | \
		 CATSET(CAT_HOUSING) | CATSET(CAT_CONTACTS) | \
		 CATSET(CAT_TREATMENT_SUMMARY))

/* The pseudonym of pnc:2004/0012345D under the test key (test_seal.c). */
#define PNC_A_PSEUDONYM \
	"e986d1d1705c95cdd5d01d1185f7acd52b3e98650ae1ccd745a17f4bea5306f2"

static const uint8_t	cid1[16] = {
	0xd4, 0xc3, 0xb2, 0xa1, 0x0f, 0x9e, 0x4d, 0x8c,
	0xb7, 0xa6, 0x95, 0x84, 0x73, 0x62, 0x51, 0x40
};
static const uint8_t	cid2[16] = {
	0x1f, 0x2e, 0x3d, 0x4c, 0x5b, 0x6a, 0x49, 0x78,
	0x86, 0x95, 0xa4, 0xb3, 0xc2, 0xd1, 0xe0, 0xf9
};

/* Whose entry it is: the subject's identifiers present. */
enum who { W_NONE, W_PNC, W_PNC_NOMS, W_ALL, W_CRN };

static const struct golden_row {
	struct audit_ev	ev;		/* subj is filled from who */
	enum who	who;
} golden_rows[] = {
	{ { .event = EV_ACCEPTED, .id = MID_TEXT, .type = "release-plan",
	    .sender = "prison.hmp-leeds", .cats = BASIC, .at_ms = T0 },
	  W_PNC },
	{ { .event = EV_DELIVERED, .id = MID_TEXT, .type = "release-plan",
	    .sender = "prison.hmp-leeds", .recipient = "cjit.leeds",
	    .cats = BASIC, .withheld = CATSET_EXPLICIT, .cid = cid1,
	    .version = 2, .at_ms = T0 + 1500 }, W_PNC_NOMS },
	{ { .event = EV_WITHHELD, .id = MID_TEXT, .type = "release-plan",
	    .sender = "prison.hmp-leeds", .recipient = "housing.leeds-hostels",
	    .reason = "no-consent", .at_ms = T0 + 1501 }, W_PNC_NOMS },
	{ { .event = EV_PURGED, .id = MID_TEXT, .type = "release-plan",
	    .sender = "prison.hmp-leeds", .recipient = "probation.leeds",
	    .cid = cid1, .version = 3, .reason = "consent-withdrawn",
	    .at_ms = T0 + DAY }, W_ALL },
	{ { .event = EV_EXPIRED, .id = MID_TEXT, .type = "handover",
	    .sender = "prison.hmp-leeds", .recipient = "cjit.leeds",
	    .reason = "retention", .at_ms = T0 + 90 * DAY }, W_NONE },
	{ { .event = EV_CONSENT_GRANTED, .id = CID1_TEXT,
	    .sender = "cjit.leeds", .cats = BASIC | CATSET_EXPLICIT,
	    .cid = cid1, .version = 1, .at_ms = T0 + 2000 }, W_PNC_NOMS },
	{ { .event = EV_CONSENT_WITHDRAWN, .id = CID1_TEXT,
	    .sender = "cjit.leeds", .cid = cid1, .version = 2,
	    .at_ms = T0 + 3000 }, W_PNC_NOMS },
	{ { .event = EV_CONSENT_REFUSED, .id = CID2_TEXT,
	    .sender = "probation.leeds", .cid = cid2, .version = 1,
	    .at_ms = T0 + 4000 }, W_CRN },
	{ { .event = EV_CONNECTION_REFUSED, .sender = "unknown",
	    .reason = "certificate revoked", .at_ms = T0 + 5000 }, W_NONE },
	{ { .event = EV_INPUT_REJECTED, .id = MID_TEXT,
	    .sender = "prison.hmp-leeds", .reason = "invalid-field",
	    .at_ms = T0 + 6000 }, W_NONE },
	/* Every optional field absent, the earliest time there is. */
	{ { .event = EV_ACCEPTED, .at_ms = 1 }, W_NONE },
	/* Every category, the largest version, the latest time ISO 8601
	 * writes with four digits. */
	{ { .event = EV_DELIVERED, .id = MID_TEXT, .type = "referral",
	    .sender = "prison.hmp-leeds", .recipient = "cjit.leeds",
	    .cats = CATSET_ALL, .withheld = CATSET_ALL, .cid = cid2,
	    .version = UINT32_MAX, .at_ms = 253402300799999LL }, W_ALL },
};
#define NGOLDEN	NITEMS(golden_rows)

struct raw;
struct entries;

enum damage {
	D_NONE,
	D_EDIT,		/* entry `seq`'s time changed by one ms */
	D_CUT,		/* entry `seq` one byte short */
	D_DEL,		/* entry `seq` removed */
	D_HEAD_EDIT,	/* the recorded head's hash changed */
	D_HEAD_DEL,	/* the recorded head removed */
};

static char		 tmp[64];
static char		 dir[96];
static struct store	*st;
static struct subject_ps who_ps[W_CRN + 1];

static void	setup(void);
static void	teardown(void);
static void	reopen(void);
static void	write_key(void);
static void	sha256_hex(const void *, size_t, char[65]);
static void	append(const struct golden_row *);
static void	append_golden(void);
static int	collect(uint64_t, const void *, size_t, void *);
static void	raw_open(struct raw *, const char *);
static void	raw_close(struct raw *);
static const msgpack_object *map_get(const msgpack_object *, const char *);
static void	entries_read(struct entries *);
static void	entries_free(struct entries *);
static void	golden_path(char *, size_t);
static void	golden_write(const struct entries *);
static void	damage(enum damage, uint64_t);

/* ---- the fixture ---- */

/*
 * A store whose key is the test key: store_init makes the directory, the
 * key and the environment; the key is then overwritten before the store
 * is opened, so every pseudonym is fixed.
 */
static void
setup(void)
{
	static const struct cc_subject	subj[W_CRN + 1] = {
		[W_PNC] = { "2004/0012345D", "", "" },
		[W_PNC_NOMS] = { "2004/0012345D", "A1234BC", "" },
		[W_ALL] = { "2004/0012345D", "A1234BC", "X123456" },
		[W_CRN] = { "", "", "X123456" },
	};
	char				err[256];
	int				i;

	(void)snprintf(tmp, sizeof(tmp), "/tmp/cctest-audit-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp), "mkdtemp: %s", strerror(errno));
	(void)snprintf(dir, sizeof(dir), "%s/data", tmp);
	cr_assert_eq(store_init(dir, err, sizeof(err)), 0, "%s", err);
	write_key();
	reopen();
	memset(who_ps, 0, sizeof(who_ps));
	for (i = W_PNC; i <= W_CRN; i++)
		cr_assert_eq(store_subject_ps(st, &subj[i], &who_ps[i]), 0);
}

static void
teardown(void)
{
	char	cmd[128];

	store_close(&st);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
}

static void
reopen(void)
{
	char	err[256];

	store_close(&st);
	cr_assert_eq(store_open(&st, dir, MAP_MB, false, err, sizeof(err)),
	    0, "%s", err);
}

/* aes 40..5f, mac 80..9f; the file keeps the 0600 store_init gave it. */
static void
write_key(void)
{
	uint8_t	key[SEAL_KEYLEN];
	char	path[128];
	int	fd, i;

	for (i = 0; i < 32; i++) {
		key[i] = (uint8_t)(0x40 + i);
		key[32 + i] = (uint8_t)(0x80 + i);
	}
	(void)snprintf(path, sizeof(path), "%s/%s", dir, SEAL_KEYFILE);
	cr_assert_neq(fd = open(path, O_WRONLY | O_TRUNC), -1, "%s: %s", path,
	    strerror(errno));
	cr_assert_eq(write(fd, key, sizeof(key)), (ssize_t)sizeof(key));
	cr_assert_eq(close(fd), 0);
}

static void
sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t		md[32];
	unsigned	len;

	cr_assert_eq(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
	(void)cc_hex(md, sizeof(md), out);
}

/* One event, in its own transaction, as the broker's batches do. */
static void
append(const struct golden_row *row)
{
	struct audit_ev		 e = row->ev;
	struct store_txn	*t;

	e.subj = row->who != W_NONE ? &who_ps[row->who] : NULL;
	cr_assert_eq(store_begin(st, true, &t), 0);
	cr_assert_eq(audit_append(st, t, &e), 0, "%s",
	    audit_event_name(e.event));
	cr_assert_eq(audit_seal(st, t), 0);
	cr_assert_eq(store_commit(t), 0);
}

static void
append_golden(void)
{
	size_t	i;

	for (i = 0; i < NGOLDEN; i++)
		append(&golden_rows[i]);
}

/* The entries read back: seq, bytes. */
struct entries {
	size_t		 n;
	uint64_t	 seq[64];
	uint8_t		*data[64];
	size_t		 len[64];
};

static int
collect(uint64_t seq, const void *data, size_t len, void *arg)
{
	struct entries	*w = arg;

	cr_assert_lt(w->n, NITEMS(w->seq));
	w->seq[w->n] = seq;
	cr_assert_not_null(w->data[w->n] = malloc(len));
	memcpy(w->data[w->n], data, len);
	w->len[w->n++] = len;
	return 0;
}

static void
entries_read(struct entries *w)
{
	struct store_txn	*t;

	memset(w, 0, sizeof(*w));
	cr_assert_eq(store_begin(st, false, &t), 0);
	cr_assert_eq(store_audit_each(st, t, 0, collect, w), 0);
	store_abort(t);
}

static void
entries_free(struct entries *w)
{
	size_t	i;

	for (i = 0; i < w->n; i++)
		free(w->data[i]);
	w->n = 0;
}

static const msgpack_object *
map_get(const msgpack_object *m, const char *key)
{
	uint32_t	i;

	for (i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR &&
		    k->via.str.size == strlen(key) &&
		    memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

/* ---- golden entries ---- */

static void
golden_path(char *path, size_t size)
{
	const char	*src = getenv("CC_SRC");

	(void)snprintf(path, size, "%s/%s", src != NULL ? src : ".", GOLDEN);
}

static void
golden_write(const struct entries *w)
{
	json_t	*root, *arr;
	FILE	*f;
	char	 path[1024], *hex, *text, sha[65];
	size_t	 i;

	cr_assert_not_null(root = json_object());
	cr_assert_not_null(arr = json_array());
	cr_assert_eq(json_object_set_new(root, "about", json_string(
	    "Golden audit entries of tests/unit/test_audit.c: the bytes "
	    "(hex) and SHA-256 of each entry audit_append writes for a fixed "
	    "sequence of events under the test key.  Generated once; "
	    "regenerating is a change of the audit format.")), 0);
	for (i = 0; i < w->n; i++) {
		json_t	*o;

		cr_assert_not_null(hex = malloc(2 * w->len[i] + 1));
		(void)cc_hex(w->data[i], w->len[i], hex);
		sha256_hex(w->data[i], w->len[i], sha);
		cr_assert_not_null(o = json_pack("{s:I, s:s, s:s, s:s}",
		    "seq", (json_int_t)w->seq[i],
		    "ev", audit_event_name(golden_rows[i].ev.event),
		    "sha256", sha, "entry", hex));
		cr_assert_eq(json_array_append_new(arr, o), 0);
		free(hex);
	}
	cr_assert_eq(json_object_set_new(root, "entries", arr), 0);
	golden_path(path, sizeof(path));
	cr_assert_not_null(text = json_dumps(root, JSON_INDENT(2) |
	    JSON_PRESERVE_ORDER));
	cr_assert_not_null(f = fopen(path, "w"), "%s: %s", path,
	    strerror(errno));
	cr_assert(fprintf(f, "%s\n", text) > 0 && fclose(f) == 0,
	    "cannot write %s", path);
	free(text);
	json_decref(root);
	cr_log_warn("wrote %s: %zu entries", path, w->n);
}

/* Each entry's bytes and SHA-256 are exactly the fixture's. */
Test(audit, golden_entries_are_byte_for_byte_unchanged, .init = setup,
    .fini = teardown)
{
	struct entries	 w;
	json_t		*root, *arr;
	json_error_t	 jerr;
	char		 path[1024], *hex, sha[65];
	uint64_t	 count = 0, bad = 0;
	char		 why[256] = "";
	size_t		 i;

	append_golden();
	entries_read(&w);
	cr_assert_eq(w.n, NGOLDEN);
	if (getenv("GOLDEN_WRITE") != NULL) {
		golden_write(&w);
		entries_free(&w);
		return;
	}
	golden_path(path, sizeof(path));
	root = json_load_file(path, 0, &jerr);
	cr_assert_not_null(root, "%s:%d: %s", path, jerr.line, jerr.text);
	arr = json_object_get(root, "entries");
	cr_assert(json_is_array(arr), "%s: no entries", path);
	cr_expect_eq(json_array_size(arr), NGOLDEN, "%s: %zu entries", path,
	    json_array_size(arr));
	for (i = 0; i < w.n && i < json_array_size(arr); i++) {
		json_t		*o = json_array_get(arr, i);
		const char	*name = audit_event_name(
		    golden_rows[i].ev.event);
		const char	*ghex = json_string_value(json_object_get(o,
		    "entry"));
		const char	*gsha = json_string_value(json_object_get(o,
		    "sha256"));

		cr_assert(ghex != NULL && gsha != NULL, "entry %zu", i + 1);
		cr_expect_eq(w.seq[i], i + 1);
		cr_expect_eq(json_integer_value(json_object_get(o, "seq")),
		    (json_int_t)(i + 1));
		cr_expect_str_eq(json_string_value(json_object_get(o, "ev")),
		    name, "entry %zu", i + 1);
		cr_assert_not_null(hex = malloc(2 * w.len[i] + 1));
		(void)cc_hex(w.data[i], w.len[i], hex);
		sha256_hex(w.data[i], w.len[i], sha);
		cr_expect_str_eq(hex, ghex, "entry %zu (%s): bytes changed",
		    i + 1, name);
		cr_expect_str_eq(sha, gsha, "entry %zu (%s): SHA-256 changed",
		    i + 1, name);
		free(hex);
	}
	json_decref(root);

	/* The fixture holds the key's pseudonyms, and a chain that
	 * verifies. */
	cr_expect_not_null(memmem(w.data[0], w.len[0], PNC_A_PSEUDONYM,
	    strlen(PNC_A_PSEUDONYM)), "entry 1 lacks the known pseudonym");
	cr_expect_eq(audit_verify(st, &count, &bad, why, sizeof(why)), 0,
	    "%s", why);
	cr_expect_eq(count, NGOLDEN);
	entries_free(&w);
}

/*
 * The first entry of a fresh store is seq 1 with `prev` all zero; the
 * second's `prev` is the first's SHA-256; an entry's fields come in the
 * documented order.
 */
Test(audit, first_entry_is_seq_1_with_prev_all_zero, .init = setup,
    .fini = teardown)
{
	static const char *const	 keys[] = { "seq", "t", "ev", "id",
	    "type", "sender", "recipient", "subject", "cats", "withheld",
	    "consent", "reason", "prev" };
	static const uint8_t		 zero[32];
	struct entries			 w;
	msgpack_unpacked		 up;
	const msgpack_object		*o;
	uint8_t				 md[32];
	size_t				 i;

	append(&golden_rows[0]);
	append(&golden_rows[1]);
	entries_read(&w);
	cr_assert_eq(w.n, 2);
	cr_expect_eq(w.seq[0], 1);
	cr_expect_eq(w.seq[1], 2);

	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, (const char *)w.data[0],
	    w.len[0], NULL), MSGPACK_UNPACK_SUCCESS);
	cr_assert_eq(up.data.type, MSGPACK_OBJECT_MAP);
	cr_assert_eq(up.data.via.map.size, NITEMS(keys));
	for (i = 0; i < NITEMS(keys); i++) {
		const msgpack_object *k = &up.data.via.map.ptr[i].key;

		cr_expect(k->type == MSGPACK_OBJECT_STR &&
		    k->via.str.size == strlen(keys[i]) &&
		    memcmp(k->via.str.ptr, keys[i], k->via.str.size) == 0,
		    "field %zu is not %s", i, keys[i]);
	}
	cr_assert_not_null(o = map_get(&up.data, "seq"));
	cr_expect_eq(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	cr_expect_eq(o->via.u64, 1);
	cr_assert_not_null(o = map_get(&up.data, "t"));
	cr_expect_eq(o->via.u64, (uint64_t)T0);
	cr_assert_not_null(o = map_get(&up.data, "subject"));
	cr_assert_eq(o->type, MSGPACK_OBJECT_ARRAY);
	cr_assert_eq(o->via.array.size, 1);
	cr_expect_eq(o->via.array.ptr[0].via.str.size, 64);
	cr_expect_eq(memcmp(o->via.array.ptr[0].via.str.ptr, PNC_A_PSEUDONYM,
	    64), 0);
	cr_assert_not_null(o = map_get(&up.data, "prev"));
	cr_assert_eq(o->type, MSGPACK_OBJECT_BIN);
	cr_assert_eq(o->via.bin.size, 32);
	cr_expect_eq(memcmp(o->via.bin.ptr, zero, 32), 0);
	msgpack_unpacked_destroy(&up);

	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, (const char *)w.data[1],
	    w.len[1], NULL), MSGPACK_UNPACK_SUCCESS);
	cr_assert_not_null(o = map_get(&up.data, "prev"));
	cr_assert_eq(o->via.bin.size, 32);
	cr_assert_eq(EVP_Digest(w.data[0], w.len[0], md, NULL, EVP_sha256(),
	    NULL), 1);
	cr_expect_eq(memcmp(o->via.bin.ptr, md, 32), 0);
	msgpack_unpacked_destroy(&up);
	entries_free(&w);
}

Test(audit, event_names_are_the_wire_words)
{
	static const struct {
		int		 ev;
		const char	*name;
	} rows[] = {
		{ EV_ACCEPTED, "accepted" },
		{ EV_DELIVERED, "delivered" },
		{ EV_WITHHELD, "withheld" },
		{ EV_PURGED, "purged" },
		{ EV_EXPIRED, "expired" },
		{ EV_CONSENT_GRANTED, "consent-granted" },
		{ EV_CONSENT_WITHDRAWN, "consent-withdrawn" },
		{ EV_CONSENT_REFUSED, "consent-refused" },
		{ EV_CONNECTION_REFUSED, "connection-refused" },
		{ EV_INPUT_REJECTED, "input-rejected" },
		{ EV_NOTICE, "notice" },
		{ EV_NOTICE_ACKED, "notice-acked" },
		{ EV_RETRACTED, "retracted" },
		{ EV__COUNT, NULL },
		{ -1, NULL },
	};
	size_t	i;

	cr_assert_eq(EV__COUNT, 13, "an event kind without a golden row");
	for (i = 0; i < NITEMS(rows); i++) {
		const char *n = audit_event_name((enum audit_event)rows[i].ev);

		if (rows[i].name == NULL)
			cr_expect_null(n, "event %d", rows[i].ev);
		else
			cr_expect_str_eq(n, rows[i].name);
	}
}

/* ---- audit_verify on an altered chain ---- */

struct raw {
	MDB_env	*env;
	MDB_txn	*txn;
	MDB_dbi	 dbi;
};

static void
raw_open(struct raw *r, const char *db)
{
	store_close(&st);
	cr_assert_eq(mdb_env_create(&r->env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(r->env, 16), 0);
	cr_assert_eq(mdb_env_set_mapsize(r->env, (size_t)MAP_MB << 20), 0);
	cr_assert_eq(mdb_env_open(r->env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
	cr_assert_eq(mdb_dbi_open(r->txn, db, 0, &r->dbi), 0, "%s", db);
}

static void
raw_close(struct raw *r)
{
	cr_assert_eq(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
}

static void
damage(enum damage d, uint64_t seq)
{
	struct raw	 r;
	uint8_t		 key[8], *buf = NULL, *p;
	MDB_val		 k = { sizeof(key), key }, v;

	if (d == D_NONE)
		return;
	be64_put(key, seq);
	if (d == D_HEAD_EDIT || d == D_HEAD_DEL) {
		k.mv_size = strlen(META_AUDIT_HEAD);
		k.mv_data = META_AUDIT_HEAD;
	}
	raw_open(&r, d == D_HEAD_EDIT || d == D_HEAD_DEL ? "meta" : "audit");
	if (d == D_DEL || d == D_HEAD_DEL)
		cr_assert_eq(mdb_del(r.txn, r.dbi, &k, NULL), 0);
	else {
		cr_assert_eq(mdb_get(r.txn, r.dbi, &k, &v), 0);
		cr_assert_not_null(buf = malloc(v.mv_size));
		memcpy(buf, v.mv_data, v.mv_size);
		switch (d) {
		case D_EDIT:
			/* "t" and a uint64: the time's last byte. */
			p = memmem(buf, v.mv_size, "\xa1t\xcf", 3);
			cr_assert_not_null(p, "entry %llu has no time",
			    (unsigned long long)seq);
			p[2 + 8] ^= 1;
			break;
		case D_CUT:
			v.mv_size--;
			break;
		default:		/* D_HEAD_EDIT */
			buf[v.mv_size - 1] ^= 1;
			break;
		}
		v.mv_data = buf;
		cr_assert_eq(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	}
	raw_close(&r);
	free(buf);
	reopen();
}

/*
 * The twelve golden entries, then one change behind the broker's back:
 * audit_verify names the entry where the chain breaks and says how, and
 * counts the entries it could verify before it.
 */
Test(audit, verify_names_the_entry_where_the_chain_breaks)
{
	static const struct {
		const char	*name;
		size_t		 entries;
		enum damage	 damage;
		uint64_t	 seq;
		int		 rc;
		uint64_t	 count, bad;
		const char	*why;
	} rows[] = {
		{ "intact", NGOLDEN, D_NONE, 0, 0, NGOLDEN, 0, "" },
		{ "no entries at all", 0, D_NONE, 0, 0, 0, 0, "" },
		{ "an entry in the middle changed", NGOLDEN, D_EDIT, 5, 1, 5,
		  5, "entry 5 does not match the hash recorded in entry 6" },
		{ "the first entry changed", NGOLDEN, D_EDIT, 1, 1, 1, 1,
		  "entry 1 does not match the hash recorded in entry 2" },
		{ "the newest entry changed", NGOLDEN, D_EDIT, 12, 1, 12, 12,
		  "entry 12 does not match the recorded head of the chain" },
		{ "an entry cut short", NGOLDEN, D_CUT, 7, 1, 6, 7,
		  "entry 7 is not well formed" },
		{ "an entry removed from the middle", NGOLDEN, D_DEL, 5, 1, 4,
		  5, "entry 5 missing" },
		{ "the first entry removed", NGOLDEN, D_DEL, 1, 1, 0, 1,
		  "entry 1 missing" },
		{ "the newest entry removed", NGOLDEN, D_DEL, 12, 1, 11, 11,
		  "entry 11 does not match the recorded head of the chain" },
		/* Rewritten without the data directory's key, the head
		 * fails its integrity tag. */
		{ "the recorded head changed", NGOLDEN, D_HEAD_EDIT, 0, 1,
		  12, 12,
		  "the recorded head of the chain fails its integrity check" },
		{ "entries but no recorded head", NGOLDEN, D_HEAD_DEL, 0, 1,
		  12, 12, "head of the chain missing" },
	};
	size_t	i, j;

	cr_assert_eq(NGOLDEN, 12);
	for (i = 0; i < NITEMS(rows); i++) {
		uint64_t	count = 999, bad = 0;
		char		why[256] = "";
		int		rc;

		setup();
		for (j = 0; j < rows[i].entries; j++)
			append(&golden_rows[j]);
		damage(rows[i].damage, rows[i].seq);
		rc = audit_verify(st, &count, &bad, why, sizeof(why));
		cr_expect_eq(rc, rows[i].rc, "%s: rc %d (%s)", rows[i].name,
		    rc, why);
		cr_expect_eq(count, rows[i].count, "%s: count %llu",
		    rows[i].name, (unsigned long long)count);
		if (rows[i].rc == 1)
			cr_expect_eq(bad, rows[i].bad, "%s: names %llu",
			    rows[i].name, (unsigned long long)bad);
		cr_expect_str_eq(why, rows[i].why, "%s", rows[i].name);
		teardown();
	}
}

/*
 * An append undone with its nested transaction is never part of the
 * chain: the next append links to the entry before it, and the head
 * recorded is the one the transaction kept.
 */
Test(audit, append_undone_with_its_nested_transaction_leaves_no_link,
    .init = setup, .fini = teardown)
{
	struct store_txn	*t, *n;
	struct entries		 w;
	uint64_t		 count = 0, bad = 0;
	char			 why[256] = "";
	struct audit_ev		 e;

	append(&golden_rows[0]);
	cr_assert_eq(store_begin(st, true, &t), 0);
	e = golden_rows[1].ev;
	cr_assert_eq(audit_append(st, t, &e), 0);
	cr_assert_eq(store_begin_nested(st, t, &n), 0);
	e = golden_rows[2].ev;
	cr_assert_eq(audit_append(st, n, &e), 0);
	cr_assert_eq(audit_seal(st, n), 0);
	store_abort(n);
	e = golden_rows[3].ev;
	cr_assert_eq(audit_append(st, t, &e), 0);
	cr_assert_eq(audit_seal(st, t), 0);
	cr_assert_eq(store_commit(t), 0);

	cr_expect_eq(audit_verify(st, &count, &bad, why, sizeof(why)), 0,
	    "%s", why);
	cr_expect_eq(count, 3);
	entries_read(&w);
	cr_assert_eq(w.n, 3);
	cr_expect_not_null(memmem(w.data[2], w.len[2], "\xa6purged", 7),
	    "entry 3 is not the purge kept");
	entries_free(&w);
}

/*
 * audit.c keeps the hash of the newest entry it wrote, and uses it only
 * when the stored newest entry has exactly those bytes.  Here this
 * process's entry 4 is undone and another writer puts a different entry 4
 * (well formed and linked): the next entry must link to what is stored.
 */
Test(audit, another_writers_entry_is_hashed_not_taken_from_memory,
    .init = setup, .fini = teardown)
{
	struct store_txn	*t;
	struct audit_ev		 e;
	const void		*p;
	uint8_t			*theirs;
	uint64_t		 seq, count = 0, bad = 0;
	size_t			 len;
	char			 why[256] = "";

	append(&golden_rows[0]);
	append(&golden_rows[1]);
	append(&golden_rows[2]);
	/* The other writer's entry 4, as it would write it. */
	cr_assert_eq(store_begin(st, true, &t), 0);
	e = golden_rows[5].ev;
	cr_assert_eq(audit_append(st, t, &e), 0);
	cr_assert_eq(store_audit_last(st, t, &seq, &p, &len), 0);
	cr_assert_eq(seq, 4);
	cr_assert_not_null(theirs = malloc(len));
	memcpy(theirs, p, len);
	store_abort(t);
	/* This process's entry 4, undone: audit.c remembers it. */
	cr_assert_eq(store_begin(st, true, &t), 0);
	e = golden_rows[6].ev;
	cr_assert_eq(audit_append(st, t, &e), 0);
	store_abort(t);

	cr_assert_eq(store_begin(st, true, &t), 0);
	cr_assert_eq(store_audit_append(st, t, 4, theirs, len), 0);
	e = golden_rows[7].ev;
	cr_assert_eq(audit_append(st, t, &e), 0);
	cr_assert_eq(audit_seal(st, t), 0);
	cr_assert_eq(store_commit(t), 0);
	free(theirs);

	cr_expect_eq(audit_verify(st, &count, &bad, why, sizeof(why)), 0,
	    "%s", why);
	cr_expect_eq(count, 5);
}
