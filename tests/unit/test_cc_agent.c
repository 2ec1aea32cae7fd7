/*
 * test_cc_agent.c - the requests libccagent sends (agent/cc_agent.c and
 * cc_request.c).  Each frame the library packs (ccx_pack_hello, _subscribe,
 * _ack, _json: the functions the send paths use) must decode through the
 * schema, proto_decode, to exactly the fields expected, with v and op
 * first; the frames of tests/files/agent-*.json must be the committed
 * agent-*.mp byte for byte; cc_agent_prepare assigns ids only where they
 * are missing; and a whole session with a stand-in broker on a real CURVE
 * socket must put exactly those frames on the wire.  Notices (issue 19),
 * sent by a scripted stand-in: a callback gets each one and the library
 * acks exactly those it took; without a callback cc_agent_receive returns
 * them in their place among the deliveries; a notice never overtakes a
 * delivery sent before it; a second copy of a nid is acked again; a notice
 * the schema refuses is dropped unacked.
 *
 * Environment: CC_SRC, the repository root (default ".").
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <jansson.h>
#include <msgpack.h>
#include <zmq.h>

#include "cc_internal.h"
#include "pki.h"
#include "pki_testutil.h"
#include "proto_testutil.h"

#define ENV_P		"CC_TEST_CC_AGENT_PARTNERSHIP"
#define SESSION_MS	20000	/* the stand-in broker gives up after */
#define FRAMES_MAX	16
#define DELIVER_DSEQ	70000

/* What the stand-in broker received, in order. */
struct wire {
	void	*router;
	char	*frame[FRAMES_MAX];
	size_t	 len[FRAMES_MAX];
	size_t	 n;
};

static struct cc_msg	*decode(const void *, size_t);
static void		 expect_header(const void *, size_t, const char *,
			    uint32_t);
static json_t		*fields_of(const struct cc_msg *);
static char		*dumps(json_t *);
static json_t		*request_doc(const char *);
static void		 handle_for(cc_agent *, const char *, const char *,
			    const char *);
static char		*slurp(const char *, size_t *);
static void		 reply(void *, const void *, size_t, enum cc_op,
			    const char *);
static void		*broker_main(void *);

/* Decode a frame as the broker would; the test fails if it cannot. */
static struct cc_msg *
decode(const void *buf, size_t len)
{
	struct cc_msg	*m = NULL;
	struct cc_error	 e;

	cr_assert_eq(proto_decode(buf, len, SIZE_MAX, &m, &e), 0,
	    "the schema refuses the frame: %s %s: %s",
	    cc_err_name(e.code) != NULL ? cc_err_name(e.code) : "?", e.field,
	    e.detail);
	return m;
}

/* The frame is a map of n items whose first two are v: 1 and op. */
static void
expect_header(const void *buf, size_t len, const char *op, uint32_t n)
{
	msgpack_unpacked	 up;
	const msgpack_object	*o;
	size_t			 off = 0;

	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, buf, len, &off),
	    MSGPACK_UNPACK_SUCCESS);
	o = &up.data;
	cr_assert_eq(o->type, MSGPACK_OBJECT_MAP);
	cr_expect_eq(o->via.map.size, n, "%s: %u fields, not %u", op,
	    o->via.map.size, n);
	cr_assert_geq(o->via.map.size, 2);
	cr_expect(o->via.map.ptr[0].key.type == MSGPACK_OBJECT_STR &&
	    o->via.map.ptr[0].key.via.str.size == 1 &&
	    o->via.map.ptr[0].key.via.str.ptr[0] == 'v', "%s: v not first",
	    op);
	cr_expect(o->via.map.ptr[0].val.type ==
	    MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.map.ptr[0].val.via.u64 == CC_PROTO_VERSION, "%s: v", op);
	cr_expect(o->via.map.ptr[1].key.type == MSGPACK_OBJECT_STR &&
	    o->via.map.ptr[1].key.via.str.size == 2 &&
	    memcmp(o->via.map.ptr[1].key.via.str.ptr, "op", 2) == 0,
	    "%s: op not second", op);
	cr_expect(o->via.map.ptr[1].val.type == MSGPACK_OBJECT_STR &&
	    o->via.map.ptr[1].val.via.str.size == strlen(op) &&
	    memcmp(o->via.map.ptr[1].val.via.str.ptr, op, strlen(op)) == 0,
	    "%s: wrong op", op);
	cr_expect_eq(off, len, "%s: bytes after the map", op);
	msgpack_unpacked_destroy(&up);
}

/* A message's fields without v and op, as a JSON value. */
static json_t *
fields_of(const struct cc_msg *m)
{
	json_error_t	 e;
	json_t		*j;
	char		*s;

	cr_assert_not_null(s = proto_to_json(m, false));
	cr_assert_not_null(j = json_loads(s, 0, &e), "%s", e.text);
	free(s);
	return j;
}

/* Compact JSON text of j, which it consumes. */
static char *
dumps(json_t *j)
{
	char	*s;

	cr_assert_not_null(s = json_dumps(j, JSON_PRESERVE_ORDER |
	    JSON_COMPACT));
	json_decref(j);
	return s;
}

/* An example of proto_testutil.h as a file holds it: without op. */
static json_t *
request_doc(const char *example)
{
	json_t	*doc = texample(example, false);

	cr_assert_eq(json_object_del(doc, "op"), 0);
	return doc;
}

/*
 * A handle as the options and the welcome leave it, without a socket:
 * ccx_pack_hello and ccx_pack_subscribe read nothing else.
 */
static void
handle_for(cc_agent *a, const char *types, const char *areas,
    const char *welcome_areas)
{
	char	 buf[256], *p, *save;
	int	 t;

	memset(a, 0, sizeof(*a));
	a->receive = true;
	(void)snprintf(buf, sizeof(buf), "%s", types);
	for (p = strtok_r(buf, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save)) {
		cr_assert_geq(t = cc_rtype_parse(p, strlen(p)), 0, "%s", p);
		a->subscribe |= 1u << t;
	}
	(void)snprintf(buf, sizeof(buf), "%s", areas);
	for (p = strtok_r(buf, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save))
		(void)snprintf(a->areas[a->nareas++], CCX_AREA_LEN, "%s", p);
	(void)snprintf(buf, sizeof(buf), "%s", welcome_areas);
	for (p = strtok_r(buf, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save))
		(void)snprintf(a->welcome_areas[a->nwelcome_areas++],
		    CCX_AREA_LEN, "%s", p);
}

/* A whole file (malloc'd, NUL-terminated). */
static char *
slurp(const char *path, size_t *len)
{
	FILE	*f;
	char	*buf;
	long	 n;

	cr_assert_not_null(f = fopen(path, "rb"), "%s: %s", path,
	    strerror(errno));
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	cr_assert_geq(n = ftell(f), 0);
	rewind(f);
	cr_assert_not_null(buf = malloc((size_t)n + 1));
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	(void)fclose(f);
	*len = (size_t)n;
	return buf;
}

/* hello names the library and says whether this session receives. */
Test(cc_agent, hello_names_the_agent_and_whether_it_receives)
{
	static const bool	receive[] = { true, false };
	msgpack_sbuffer		sb;
	struct cc_msg		*m;
	cc_agent		a;
	json_t			*want, *got;
	size_t			i;

	for (i = 0; i < NITEMS(receive); i++) {
		memset(&a, 0, sizeof(a));
		a.receive = receive[i];
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(ccx_pack_hello(&a, &sb), 0);
		expect_header(sb.data, sb.size, "hello", 4);
		m = decode(sb.data, sb.size);
		cr_expect_eq(proto_op(m), OP_HELLO);
		want = json_pack("{s:s, s:b}", "agent",
		    "ccagent/" CC_AGENT_VERSION, "receive", receive[i]);
		got = fields_of(m);
		cr_expect(json_equal(want, got), "receive %d: %s", receive[i],
		    proto_to_json(m, false));
		json_decref(want);
		json_decref(got);
		proto_msg_destroy(&m);
		msgpack_sbuffer_destroy(&sb);
	}
}

/*
 * subscribe: the configured types in the schema's order, and the
 * configured areas or else the welcome's.
 */
Test(cc_agent, subscribe_lists_types_and_the_areas_in_force)
{
	static const struct {
		const char	*types, *areas, *welcome;
		const char	*want;
	} cases[] = {
		{ "release-plan,housing-status", "E08000035,E08000032", "",
		  "{'types':['release-plan','housing-status'],"
		  "'areas':['E08000035','E08000032']}" },
		{ "housing-status,release-plan", "E08000035", "W06000015",
		  "{'types':['release-plan','housing-status'],"
		  "'areas':['E08000035']}" },
		{ "referral", "", "W06000015,E08000035",
		  "{'types':['referral'],'areas':['W06000015','E08000035']}" },
		{ "release-plan,handover,referral,housing-status", "", "",
		  "{'types':['release-plan','handover','referral',"
		  "'housing-status'],'areas':[]}" },
	};
	msgpack_sbuffer	 sb;
	struct cc_msg	*m;
	cc_agent	 a;
	json_t		*want, *got;
	size_t		 i;

	for (i = 0; i < NITEMS(cases); i++) {
		handle_for(&a, cases[i].types, cases[i].areas,
		    cases[i].welcome);
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(ccx_pack_subscribe(&a, &sb), 0);
		expect_header(sb.data, sb.size, "subscribe", 4);
		m = decode(sb.data, sb.size);
		cr_expect_eq(proto_op(m), OP_SUBSCRIBE);
		want = tjson(cases[i].want);
		got = fields_of(m);
		cr_expect(json_equal(want, got), "case %zu: %s", i,
		    proto_to_json(m, false));
		json_decref(want);
		json_decref(got);
		proto_msg_destroy(&m);
		msgpack_sbuffer_destroy(&sb);
	}
}

/* ack carries the dseq exactly, over the whole range the wire allows. */
Test(cc_agent, ack_carries_the_dseq_exactly)
{
	static const uint64_t	dseq[] = {
		0, 1, 127, 128, 255, 256, 65535, 65536, DELIVER_DSEQ,
		UINT64_C(4294967295), UINT64_C(4294967296),
		UINT64_C(9007199254740991),
	};
	msgpack_sbuffer		sb;
	struct cc_msg		*m;
	uint64_t		got;
	size_t			i;

	for (i = 0; i < NITEMS(dseq); i++) {
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(ccx_pack_ack(dseq[i], &sb), 0);
		expect_header(sb.data, sb.size, "ack", 3);
		m = decode(sb.data, sb.size);
		cr_expect_eq(proto_op(m), OP_ACK);
		got = 0;
		cr_expect_eq(proto_get_u64(m, "dseq", &got), 0);
		cr_expect_eq(got, dseq[i], "dseq %llu came out as %llu",
		    (unsigned long long)dseq[i], (unsigned long long)got);
		proto_msg_destroy(&m);
		msgpack_sbuffer_destroy(&sb);
	}
}

/*
 * Every request a case system hands over as JSON becomes a frame whose
 * fields are exactly the document's, in its order, after v and op.
 */
Test(cc_agent, json_requests_decode_to_exactly_the_fields_given)
{
	static const struct {
		const char	*example;	/* proto_testutil.h's, or */
		const char	*json;		/* a document of its own */
		enum cc_op	 op;
	} cases[] = {
		{ "release-plan", NULL, OP_PUBLISH },
		{ "handover", NULL, OP_PUBLISH },
		{ "referral", NULL, OP_PUBLISH },
		{ "housing-status", NULL, OP_PUBLISH },
		{ "consent-grant", NULL, OP_CONSENT_GRANT },
		{ "consent-withdraw", NULL, OP_CONSENT_WITHDRAW },
		{ NULL, "{'subject':{'pnc':'2004/0012345D'},"
		  "'captured':'2026-06-01T09:00:00Z','worker':'J Worker',"
		  "'reason':'Client withdrew all consent.'}",
		  OP_CONSENT_WITHDRAW },
		{ "consent-refuse", NULL, OP_CONSENT_REFUSE },
		{ "track", NULL, OP_TRACK },
	};
	struct cc_agent_error	 err;
	msgpack_sbuffer		 sb;
	struct cc_msg		*m;
	json_t			*doc, *got;
	char			*text;
	size_t			 i;

	for (i = 0; i < NITEMS(cases); i++) {
		doc = cases[i].example != NULL ?
		    request_doc(cases[i].example) : tjson(cases[i].json);
		cr_assert_not_null(text = json_dumps(doc,
		    JSON_PRESERVE_ORDER | JSON_COMPACT));
		msgpack_sbuffer_init(&sb);
		memset(&err, 0, sizeof(err));
		cr_assert_eq(ccx_pack_json(cases[i].op, text, &sb, &err),
		    CC_AGENT_OK, "case %zu: %s %s", i, err.field, err.detail);
		expect_header(sb.data, sb.size, cc_op_name(cases[i].op),
		    (uint32_t)json_object_size(doc) + 2);
		m = decode(sb.data, sb.size);
		cr_expect_eq(proto_op(m), cases[i].op);
		got = fields_of(m);
		cr_expect(json_equal(doc, got), "case %zu: sent %s", i,
		    proto_to_json(m, false));
		json_decref(got);
		json_decref(doc);
		free(text);
		proto_msg_destroy(&m);
		msgpack_sbuffer_destroy(&sb);
	}
}

/* A document the broker would refuse is refused here, and never packed. */
Test(cc_agent, json_requests_the_schema_refuses_are_not_packed)
{
	static const struct {
		const char	*example;
		const char	*path, *value;	/* tset; value NULL deletes */
		const char	*text;		/* instead of an example */
		enum cc_op	 op;
		int		 code;
		const char	*field;
	} cases[] = {
		{ "release-plan", "type", NULL, NULL, OP_PUBLISH,
		  CC_AGENT_ERR_MISSING_FIELD, "type" },
		{ "release-plan", "op", "'publish'", NULL, OP_PUBLISH,
		  CC_AGENT_ERR_UNKNOWN_FIELD, "op" },
		{ "release-plan", "v", "1", NULL, OP_PUBLISH,
		  CC_AGENT_ERR_UNKNOWN_FIELD, "v" },
		{ "release-plan", "colour", "'red'", NULL, OP_PUBLISH,
		  CC_AGENT_ERR_UNKNOWN_FIELD, "colour" },
		{ "release-plan", "mid", "'not-a-uuid'", NULL, OP_PUBLISH,
		  CC_AGENT_ERR_INVALID_FIELD, "mid" },
		{ "release-plan", "body.release_date", "'2026-13-45'", NULL,
		  OP_PUBLISH, CC_AGENT_ERR_INVALID_FIELD, "body.release_date" },
		{ "consent-grant", "cid", NULL, NULL, OP_CONSENT_GRANT,
		  CC_AGENT_ERR_MISSING_FIELD, "cid" },
		{ "track", "mid", "7", NULL, OP_TRACK,
		  CC_AGENT_ERR_INVALID_FIELD, "mid" },
		{ NULL, NULL, NULL, "[1, 2]", OP_PUBLISH,
		  CC_AGENT_ERR_MALFORMED, "" },
		{ NULL, NULL, NULL, "{\"mid\": ", OP_TRACK,
		  CC_AGENT_ERR_MALFORMED, "" },
	};
	struct cc_agent_error	 err;
	msgpack_sbuffer		 sb;
	json_t			*doc;
	char			*text;
	size_t			 i;
	int			 rc;

	for (i = 0; i < NITEMS(cases); i++) {
		if (cases[i].example != NULL) {
			doc = request_doc(cases[i].example);
			tset(doc, cases[i].path, cases[i].value);
			text = dumps(doc);
		} else
			cr_assert_not_null(text = strdup(cases[i].text));
		msgpack_sbuffer_init(&sb);
		memset(&err, 0, sizeof(err));
		rc = ccx_pack_json(cases[i].op, text, &sb, &err);
		cr_expect_eq(rc, cases[i].code, "case %zu: %d (%s %s: %s)", i,
		    rc, cc_agent_strerror(rc), err.field, err.detail);
		cr_expect_eq(err.code, cases[i].code, "case %zu", i);
		cr_expect_str_eq(err.field, cases[i].field, "case %zu", i);
		cr_expect_eq(sb.size, 0, "case %zu: %zu bytes packed", i,
		    sb.size);
		free(text);
		msgpack_sbuffer_destroy(&sb);
	}
}

/*
 * cc_agent_prepare fills in only what is missing: mid and created for a
 * publish, cid for a grant or a refusal, nothing for a withdrawal.
 */
Test(cc_agent, prepare_assigns_only_what_is_missing)
{
	static const struct {
		enum cc_agent_op	 op;
		const char		*example;
		const char		*drop[2];	/* fields removed */
		bool			 assigned;
		const char		*idkey;		/* NULL: id "" */
	} cases[] = {
		{ CC_AGENT_PUBLISH, "release-plan", { NULL, NULL }, false,
		  "mid" },
		{ CC_AGENT_PUBLISH, "release-plan", { "mid", NULL }, true,
		  "mid" },
		{ CC_AGENT_PUBLISH, "handover", { "created", NULL }, true,
		  "mid" },
		{ CC_AGENT_PUBLISH, "referral", { "mid", "created" }, true,
		  "mid" },
		{ CC_AGENT_CONSENT_GRANT, "consent-grant", { NULL, NULL },
		  false, "cid" },
		{ CC_AGENT_CONSENT_GRANT, "consent-grant", { "cid", NULL },
		  true, "cid" },
		{ CC_AGENT_CONSENT_REFUSE, "consent-refuse", { "cid", NULL },
		  true, "cid" },
		{ CC_AGENT_CONSENT_WITHDRAW, "consent-withdraw",
		  { NULL, NULL }, false, "cid" },
	};
	struct cc_agent_error	 err;
	json_error_t		 je;
	json_t			*doc, *out;
	const char		*given, *now;
	char			*text, *prepared, id[CC_AGENT_ID_LEN + 1];
	bool			 assigned;
	size_t			 i, k;

	for (i = 0; i < NITEMS(cases); i++) {
		doc = request_doc(cases[i].example);
		for (k = 0; k < 2 && cases[i].drop[k] != NULL; k++)
			cr_assert_eq(json_object_del(doc, cases[i].drop[k]),
			    0);
		cr_assert_not_null(text = json_dumps(doc,
		    JSON_PRESERVE_ORDER));
		assigned = !cases[i].assigned;
		cr_assert_eq(cc_agent_prepare(cases[i].op, text, strlen(text),
		    &prepared, id, &assigned, &err), CC_AGENT_OK,
		    "case %zu: %s %s", i, err.field, err.detail);
		cr_expect_eq(assigned, cases[i].assigned, "case %zu", i);
		cr_assert_not_null(out = json_loads(prepared, 0, &je));
		given = json_string_value(json_object_get(out,
		    cases[i].idkey));
		cr_assert_not_null(given, "case %zu: no %s", i,
		    cases[i].idkey);
		cr_expect_str_eq(id, given, "case %zu", i);
		cr_expect(cc_uuid_valid(id, strlen(id)), "case %zu: %s", i,
		    id);
		if (!cases[i].assigned)
			cr_expect(json_equal(doc, out), "case %zu: changed",
			    i);
		if (cases[i].op == CC_AGENT_PUBLISH) {
			now = json_string_value(json_object_get(out,
			    "created"));
			cr_expect_not_null(now, "case %zu: no created", i);
		}
		/* Nothing else was added. */
		cr_expect_eq(json_object_size(out), json_object_size(doc) +
		    (cases[i].drop[0] != NULL) + (cases[i].drop[1] != NULL),
		    "case %zu", i);
		json_decref(out);
		json_decref(doc);
		free(text);
		free(prepared);
	}

	/* A withdrawal by subject has no id of its own. */
	text = dumps(tjson("{'subject':{'pnc':'2004/0012345D'},"
	    "'captured':'2026-06-01T09:00:00Z','worker':'J Worker'}"));
	cr_assert_eq(cc_agent_prepare(CC_AGENT_CONSENT_WITHDRAW, text,
	    strlen(text), &prepared, id, &assigned, NULL), CC_AGENT_OK);
	free(text);
	cr_expect_str_eq(id, "");
	cr_expect_not(assigned);
	free(prepared);
}

/*
 * The golden requests: each tests/files/agent-OP.json must pack to the
 * committed agent-OP.mp, byte for byte (tests/files/make-agent-golden.py
 * wrote them with python3-msgpack, an encoder independent of msgpack-c).
 */
Test(cc_agent, golden_requests_pack_to_the_committed_bytes)
{
	struct cc_agent_error	 err;
	msgpack_sbuffer		 sb;
	struct cc_msg		*m;
	cc_agent		 a;
	json_t			*doc, *v;
	glob_t			 g;
	const char		*src = getenv("CC_SRC"), *base;
	char			 pat[PATH_MAX], mp[PATH_MAX], op[64];
	char			*json, *want, types[256], areas[256];
	size_t			 i, k, jlen, wlen, at;
	int			 o;

	(void)snprintf(pat, sizeof(pat), "%s/tests/files/agent-*.json",
	    src != NULL && src[0] != '\0' ? src : ".");
	cr_assert_eq(glob(pat, 0, NULL, &g), 0, "no golden files %s", pat);
	cr_assert_geq(g.gl_pathc, 7, "%s: too few golden files", pat);
	for (i = 0; i < g.gl_pathc; i++) {
		base = strrchr(g.gl_pathv[i], '/') + 1;
		(void)snprintf(op, sizeof(op), "%.*s",
		    (int)(strlen(base) - strlen("agent-") - strlen(".json")),
		    base + strlen("agent-"));
		cr_assert_geq(o = cc_op_parse(op, strlen(op)), 0, "%s", base);
		(void)snprintf(mp, sizeof(mp), "%.*s.mp",
		    (int)(strlen(g.gl_pathv[i]) - strlen(".json")),
		    g.gl_pathv[i]);
		json = slurp(g.gl_pathv[i], &jlen);
		want = slurp(mp, &wlen);
		m = decode(want, wlen);
		cr_expect_eq(proto_op(m), o, "%s", base);
		proto_msg_destroy(&m);

		msgpack_sbuffer_init(&sb);
		if (o == OP_ACK) {
			cr_assert_not_null(doc = json_loads(json, 0, NULL));
			cr_assert_eq(ccx_pack_ack((uint64_t)json_integer_value(
			    json_object_get(doc, "dseq")), &sb), 0);
			json_decref(doc);
		} else if (o == OP_SUBSCRIBE) {
			cr_assert_not_null(doc = json_loads(json, 0, NULL));
			types[0] = areas[0] = '\0';
			json_array_foreach(json_object_get(doc, "types"), k, v)
				(void)snprintf(types + strlen(types),
				    sizeof(types) - strlen(types), "%s%s",
				    k ? "," : "", json_string_value(v));
			json_array_foreach(json_object_get(doc, "areas"), k, v)
				(void)snprintf(areas + strlen(areas),
				    sizeof(areas) - strlen(areas), "%s%s",
				    k ? "," : "", json_string_value(v));
			json_decref(doc);
			handle_for(&a, types, areas, "");
			cr_assert_eq(ccx_pack_subscribe(&a, &sb), 0);
		} else
			cr_assert_eq(ccx_pack_json((enum cc_op)o, json, &sb,
			    &err), CC_AGENT_OK, "%s: %s %s", base, err.field,
			    err.detail);
		for (at = 0; at < sb.size && at < wlen &&
		    (unsigned char)sb.data[at] == (unsigned char)want[at];
		    at++)
			;
		cr_expect(sb.size == wlen && at == wlen, "%s: %zu bytes, "
		    "golden %zu; first difference at byte %zu", base, sb.size,
		    wlen, at);
		msgpack_sbuffer_destroy(&sb);
		free(json);
		free(want);
	}
	globfree(&g);
}

/* ---------------------------------------------------------------- wire */

/*
 * Once per run: a partnership, so the library checks real certificates
 * and the stand-in broker answers with the broker's CURVE key.
 */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	if (tu_mkpart(ENV_P, "ccagent", "") == -1)
		unsetenv(ENV_P);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	tu_rmpart(ENV_P);
}

/* Send one validated answer of op made from JSON fields to id. */
static void
reply(void *router, const void *id, size_t idlen, enum cc_op op,
    const char *json)
{
	struct cc_msg	*m = NULL;
	struct cc_error	 e;
	msgpack_sbuffer	 sb;

	cr_assert_eq(proto_from_json(op, json, strlen(json), &m, &e), 0,
	    "stand-in %s: %s %s", cc_op_name(op), e.field, e.detail);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode(m, &sb), 0);
	cr_assert_neq(zmq_send(router, id, idlen, ZMQ_SNDMORE), -1);
	cr_assert_neq(zmq_send(router, sb.data, sb.size, 0), -1);
	msgpack_sbuffer_destroy(&sb);
	proto_msg_destroy(&m);
}

/*
 * The stand-in broker: records every frame and answers as ccbroker would,
 * a deliver after `subscribed`; it stops at the first ack.
 */
static void *
broker_main(void *arg)
{
	struct wire	*w = arg;
	zmq_pollitem_t	 item = { w->router, 0, ZMQ_POLLIN, 0 };
	struct cc_msg	*m;
	struct cc_error	 e;
	char		 id[256], buf[1 << 16], json[1024], key[64];
	int64_t		 deadline = ccx_now_ms() + SESSION_MS;
	int		 idlen, len;
	enum cc_op	 op;

	while (ccx_now_ms() < deadline && w->n < FRAMES_MAX) {
		if (zmq_poll(&item, 1, 100) <= 0)
			continue;
		if ((idlen = zmq_recv(w->router, id, sizeof(id), 0)) == -1 ||
		    (len = zmq_recv(w->router, buf, sizeof(buf), 0)) == -1 ||
		    len > (int)sizeof(buf))
			break;
		w->frame[w->n] = malloc((size_t)len);
		memcpy(w->frame[w->n], buf, (size_t)len);
		w->len[w->n++] = (size_t)len;
		if (proto_decode(buf, (size_t)len, SIZE_MAX, &m, &e) == -1)
			continue;	/* the test reports it */
		op = proto_op(m);
		key[0] = '\0';
		(void)proto_get_str(m, op == OP_PUBLISH || op == OP_TRACK ?
		    "mid" : "cid", key, sizeof(key));
		switch (op) {
		case OP_HELLO:
			reply(w->router, id, (size_t)idlen, OP_WELCOME,
			    "{\"agency\":\"cjit.leeds\",\"type\":\"cjit\","
			    "\"areas\":[\"E08000035\"],\"max_size\":65536,"
			    "\"time\":\"2026-05-01T09:00:00Z\"}");
			break;
		case OP_SUBSCRIBE:
			reply(w->router, id, (size_t)idlen, OP_SUBSCRIBED,
			    "{\"types\":[\"release-plan\"],"
			    "\"areas\":[\"E08000035\"]}");
			(void)snprintf(json, sizeof(json), "{\"dseq\":%d,"
			    "\"mid\":\"0b6a4c57-1d2e-4f3a-9b8c-7d6e5f4a3b2c\","
			    "\"type\":\"release-plan\","
			    "\"from\":\"carat.hmp-leeds\","
			    "\"purpose\":\"continuity-of-care\","
			    "\"subject\":{},\"area\":\"E08000035\","
			    "\"created\":\"2026-05-01T09:00:00Z\","
			    "\"body\":{\"release_date\":\"2026-12-20\"},"
			    "\"consent\":{\"cid\":"
			    "\"d4c3b2a1-0f9e-4d8c-b7a6-958473625140\","
			    "\"version\":3},\"withheld_categories\":"
			    "[\"identity\"]}", DELIVER_DSEQ);
			reply(w->router, id, (size_t)idlen, OP_DELIVER, json);
			break;
		case OP_PUBLISH:
			(void)snprintf(json, sizeof(json), "{\"mid\":\"%s\"}",
			    key);
			reply(w->router, id, (size_t)idlen, OP_ACCEPTED, json);
			break;
		case OP_CONSENT_GRANT:
		case OP_CONSENT_WITHDRAW:
		case OP_CONSENT_REFUSE:
			(void)snprintf(json, sizeof(json), "{\"cid\":\"%s\","
			    "\"version\":%d}", key,
			    op == OP_CONSENT_WITHDRAW ? 2 : 1);
			reply(w->router, id, (size_t)idlen,
			    OP_CONSENT_RECORDED, json);
			break;
		case OP_TRACK:
			(void)snprintf(json, sizeof(json), "{\"mid\":\"%s\","
			    "\"recipients\":[{\"agency\":\"cjit.leeds\","
			    "\"state\":\"delivered\","
			    "\"at\":\"2026-05-01T09:00:01Z\"}]}", key);
			reply(w->router, id, (size_t)idlen, OP_STATUS, json);
			break;
		default:
			break;
		}
		proto_msg_destroy(&m);
		if (op == OP_ACK)
			break;
	}
	return NULL;
}

/*
 * A receiving session from cc_agent_new to an ack, against the stand-in:
 * every frame on the wire decodes through the schema and is, byte for
 * byte, the one ccx_pack_* makes for the same request, in the order the
 * calls were made.
 */
Test(cc_agent, a_session_puts_exactly_the_packed_frames_on_the_wire,
    .timeout = 60)
{
	static const struct {
		enum cc_op	 op;
		const char	*example;	/* the JSON sent, if any */
	} expect[] = {
		{ OP_HELLO, NULL },
		{ OP_SUBSCRIBE, NULL },
		{ OP_PUBLISH, "release-plan" },
		{ OP_CONSENT_GRANT, "consent-grant" },
		{ OP_CONSENT_WITHDRAW, "consent-withdraw" },
		{ OP_CONSENT_REFUSE, "consent-refuse" },
		{ OP_TRACK, "track" },
		{ OP_ACK, NULL },
	};
	struct cc_agent_options	 o;
	struct cc_agent_error	 err;
	struct cc_consent_recorded rec[4];
	struct wire		 w;
	msgpack_sbuffer		 sb;
	pthread_t		 tid;
	const char		*pdir = tu_dir(ENV_P);
	void			*ctx;
	cc_agent		*a = NULL;
	cc_delivery		*d = NULL;
	uint8_t			 sec[32], pub[32];
	char			 z85[41], endpoint[128], why[256];
	char			 mid[CC_AGENT_ID_LEN + 1], *doc[NITEMS(expect)];
	char			*status;
	size_t			 endlen = sizeof(endpoint), i, n;
	int			 one = 1, zero = 0;

	cr_assert_not_null(pdir, "no partnership was made (see stderr)");
	memset(&w, 0, sizeof(w));
	cr_assert_not_null(ctx = zmq_ctx_new());
	cr_assert_not_null(w.router = zmq_socket(ctx, ZMQ_ROUTER));
	cr_assert_eq(pki_key_read(tu_path(pdir, "broker.key"), sec, pub, why,
	    sizeof(why)), 0, "%s", why);
	pki_z85(sec, z85);
	cr_assert_eq(zmq_setsockopt(w.router, ZMQ_CURVE_SERVER, &one,
	    sizeof(one)), 0);
	cr_assert_eq(zmq_setsockopt(w.router, ZMQ_CURVE_SECRETKEY, z85, 40),
	    0);
	cr_assert_eq(zmq_setsockopt(w.router, ZMQ_LINGER, &zero,
	    sizeof(zero)), 0);
	cr_assert_eq(zmq_bind(w.router, "tcp://127.0.0.1:*"), 0);
	cr_assert_eq(zmq_getsockopt(w.router, ZMQ_LAST_ENDPOINT, endpoint,
	    &endlen), 0);
	cr_assert_eq(pthread_create(&tid, NULL, broker_main, &w), 0);

	for (i = 0; i < NITEMS(expect); i++)
		doc[i] = expect[i].example != NULL ?
		    dumps(request_doc(expect[i].example)) : NULL;
	memset(&o, 0, sizeof(o));
	o.broker = endpoint;
	o.broker_certificate = tu_path(pdir, "broker.crt");
	o.ca = tu_path(pdir, "ca.crt");
	o.crl = tu_path(pdir, "ca.crl");
	o.certificate = tu_path(pdir, "agencies/cjit.leeds.crt");
	o.key = tu_path(pdir, "keys/cjit.leeds.key");
	o.receive = true;
	o.subscribe = "housing-status,release-plan";
	o.areas = "E08000035";
	o.timeout_ms = 10000;
	cr_assert_eq(cc_agent_new(&o, &a, &err), CC_AGENT_OK, "%s",
	    err.detail);
	cr_assert_eq(cc_agent_connect(a, 10000), CC_AGENT_OK, "%s",
	    cc_agent_last_error(a)->detail);
	cr_expect_str_eq(cc_agent_agency(a), "cjit.leeds");

	cr_assert_eq(cc_agent_publish(a, doc[2], mid), CC_AGENT_OK, "%s",
	    cc_agent_last_error(a)->detail);
	cr_expect_str_eq(mid, "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f");
	for (i = 3; i <= 5; i++) {
		cr_assert_eq(cc_agent_consent(a, i == 3 ?
		    CC_AGENT_CONSENT_GRANT : i == 4 ?
		    CC_AGENT_CONSENT_WITHDRAW : CC_AGENT_CONSENT_REFUSE,
		    doc[i], rec, NITEMS(rec), &n), CC_AGENT_OK, "%s",
		    cc_agent_last_error(a)->detail);
		cr_expect_eq(n, 1);
		cr_expect_eq(rec[0].version, i == 4 ? 2u : 1u);
	}
	cr_assert_eq(cc_agent_track(a, mid, &status), CC_AGENT_OK, "%s",
	    cc_agent_last_error(a)->detail);
	free(status);
	cr_assert_eq(cc_agent_receive(a, 10000, &d), CC_AGENT_OK, "%s",
	    cc_agent_last_error(a)->detail);
	cr_expect_eq(cc_delivery_dseq(d), DELIVER_DSEQ);
	cr_assert_eq(cc_agent_ack(a, d), CC_AGENT_OK, "%s",
	    cc_agent_last_error(a)->detail);
	cc_delivery_destroy(&d);
	cr_assert_eq(pthread_join(tid, NULL), 0);

	cr_assert_eq(w.n, NITEMS(expect), "%zu frames on the wire", w.n);
	for (i = 0; i < w.n; i++) {
		struct cc_msg *m = decode(w.frame[i], w.len[i]);

		cr_expect_eq(proto_op(m), expect[i].op, "frame %zu is %s", i,
		    cc_op_name(proto_op(m)));
		proto_msg_destroy(&m);
		msgpack_sbuffer_init(&sb);
		switch (expect[i].op) {
		case OP_HELLO:
			cr_assert_eq(ccx_pack_hello(a, &sb), 0);
			break;
		case OP_SUBSCRIBE:
			cr_assert_eq(ccx_pack_subscribe(a, &sb), 0);
			break;
		case OP_ACK:
			cr_assert_eq(ccx_pack_ack(DELIVER_DSEQ, &sb), 0);
			break;
		default:
			cr_assert_eq(ccx_pack_json(expect[i].op, doc[i], &sb,
			    &err), CC_AGENT_OK);
			break;
		}
		cr_expect(sb.size == w.len[i] &&
		    memcmp(sb.data, w.frame[i], sb.size) == 0,
		    "frame %zu (%s): not the packed one", i,
		    cc_op_name(expect[i].op));
		msgpack_sbuffer_destroy(&sb);
		free(w.frame[i]);
		free(doc[i]);
	}
	cc_agent_destroy(&a);
	cr_expect_null(a);
	(void)zmq_close(w.router);
	(void)zmq_ctx_term(ctx);
}

/* ------------------------------------------------------------- notices */

#define SCRIPT_MAX	8
#define NOTICE_NID1	"7c1e2d3f-4a5b-4c6d-8e9f-101010101010"
#define NOTICE_NID2	"7c1e2d3f-4a5b-4c6d-8e9f-202020202020"
#define NOTICE_NID3	"7c1e2d3f-4a5b-4c6d-8e9f-303030303030"
#define NOTICE_NID4	"7c1e2d3f-4a5b-4c6d-8e9f-404040404040"
#define NOTICE_MID	"0b6a4c57-1d2e-4f3a-9b8c-7d6e5f4a3b2c"
#define NOTICE_CID	"d4c3b2a1-0f9e-4d8c-b7a6-958473625140"

/*
 * Notice frames as the broker sends them (single-quoted JSON, v and op
 * first), one of each kind and two the schema refuses; %d is the dseq.
 */
#define NOTICE_WITHDRAWN(nid) "{'v':1,'op':'notice','dseq':%d," \
	"'nid':'" nid "','kind':'consent-withdrawn'," \
	"'at':'2026-06-01T09:00:00Z'," \
	"'consents':[{'cid':'" NOTICE_CID "','version':2}]," \
	"'mids':['" NOTICE_MID "'],'subject':{'pnc':'2004/0012345D'}}"
#define NOTICE_RETRACTED(nid) "{'v':1,'op':'notice','dseq':%d," \
	"'nid':'" nid "','kind':'record-retracted'," \
	"'at':'2026-06-01T09:00:01.250Z','mid':'" NOTICE_MID "'," \
	"'from':'carat.hmp-leeds','reason':'Sent to the wrong agency.'}"
#define NOTICE_ERASED(nid) "{'v':1,'op':'notice','dseq':%d," \
	"'nid':'" nid "','kind':'subject-erased'," \
	"'at':'2026-06-01T09:00:02Z'," \
	"'consents':[{'cid':'" NOTICE_CID "','version':3}]," \
	"'mids':['" NOTICE_MID "']}"
#define NOTICE_CORRECTED(nid) "{'v':1,'op':'notice','dseq':%d," \
	"'nid':'" nid "','kind':'record-corrected'," \
	"'at':'2026-06-01T09:00:03Z','mid':'" NOTICE_MID "'," \
	"'by':'1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f'," \
	"'from':'carat.hmp-leeds'}"
#define NOTICE_EXPIRING(nid) "{'v':1,'op':'notice','dseq':%d," \
	"'nid':'" nid "','kind':'consent-expiring'," \
	"'at':'2026-06-01T09:00:04Z'," \
	"'consents':[{'cid':'" NOTICE_CID "','version':2}]," \
	"'valid_until':'2026-06-08T00:00:00Z','subject':{}}"
#define NOTICE_UNKNOWN_KIND "{'v':1,'op':'notice','dseq':%d," \
	"'nid':'" NOTICE_NID3 "','kind':'record-shredded'," \
	"'at':'2026-06-01T09:00:05Z','mid':'" NOTICE_MID "'}"
#define NOTICE_NO_NID "{'v':1,'op':'notice','dseq':%d," \
	"'kind':'record-retracted','at':'2026-06-01T09:00:06Z'," \
	"'mid':'" NOTICE_MID "','from':'carat.hmp-leeds','reason':'x'}"
#define DELIVER_FRAME "{'v':1,'op':'deliver','dseq':%d," \
	"'mid':'" NOTICE_MID "','type':'release-plan'," \
	"'from':'carat.hmp-leeds','purpose':'continuity-of-care'," \
	"'subject':{},'area':'E08000035'," \
	"'created':'2026-05-01T09:00:00Z'," \
	"'body':{'release_date':'2026-12-20'}," \
	"'consent':{'cid':'" NOTICE_CID "','version':3}}"

/* One frame of a script: its text (a format taking the dseq) and dseq. */
struct scripted {
	const char	*text;
	int		 dseq;
};

/*
 * A stand-in broker that welcomes the session and then sends its script,
 * whether the schema would let each frame through or not, and notes every
 * dseq acked.
 */
struct script {
	void		*router;
	struct scripted	 frame[SCRIPT_MAX];
	size_t		 nframe;
	pthread_mutex_t	 lock;
	uint64_t	 acked[2 * SCRIPT_MAX];
	size_t		 nacked;
	bool		 stop;
};

/* What a test's notice callback saw, and what it refuses. */
struct seen {
	size_t		 n;
	char		 nid[SCRIPT_MAX][CC_AGENT_ID_LEN + 1];
	int		 kind[SCRIPT_MAX];
	char		 name[SCRIPT_MAX][32];
	char		 at[SCRIPT_MAX][40];
	json_t		*json[SCRIPT_MAX];
	size_t		 stored;	/* distinct nids kept */
	const char	*refuse;	/* return 1 for this nid */
};

static void	*script_main(void *);
static void	 script_start(struct script *, void **, pthread_t *,
		    char *, size_t);
static void	 script_end(struct script *, void *, pthread_t);
static bool	 script_wait_acks(struct script *, size_t, int);
static void	 script_expect_acks(struct script *, const int *, size_t);
static cc_agent	*notice_handle(const char *);
static json_t	*stored_form(const char *, int);
static int	 on_notice(const cc_notice *, void *);
static void	 seen_free(struct seen *);
static void	 msleep(int);

static void
msleep(int ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void *
script_main(void *arg)
{
	struct script	*s = arg;
	zmq_pollitem_t	 item = { s->router, 0, ZMQ_POLLIN, 0 };
	struct cc_msg	*m;
	struct cc_error	 e;
	msgpack_sbuffer	 sb;
	json_t		*j;
	char		 id[256], buf[1 << 16], text[2048];
	int64_t		 deadline = ccx_now_ms() + SESSION_MS;
	uint64_t	 dseq;
	size_t		 i;
	int		 idlen, len;
	bool		 stop = false;

	while (!stop && ccx_now_ms() < deadline) {
		if (zmq_poll(&item, 1, 50) <= 0)
			goto next;
		if ((idlen = zmq_recv(s->router, id, sizeof(id), 0)) == -1 ||
		    (len = zmq_recv(s->router, buf, sizeof(buf), 0)) == -1 ||
		    len > (int)sizeof(buf))
			break;
		if (proto_decode(buf, (size_t)len, SIZE_MAX, &m, &e) == -1)
			goto next;
		if (proto_op(m) == OP_HELLO) {
			reply(s->router, id, (size_t)idlen, OP_WELCOME,
			    "{\"agency\":\"cjit.leeds\",\"type\":\"cjit\","
			    "\"areas\":[\"E08000035\"],\"max_size\":65536,"
			    "\"time\":\"2026-05-01T09:00:00Z\"}");
			for (i = 0; i < s->nframe; i++) {
				(void)snprintf(text, sizeof(text),
				    s->frame[i].text, s->frame[i].dseq);
				j = tjson(text);
				tframe(j, &sb);
				json_decref(j);
				(void)zmq_send(s->router, id, (size_t)idlen,
				    ZMQ_SNDMORE);
				(void)zmq_send(s->router, sb.data, sb.size, 0);
				msgpack_sbuffer_destroy(&sb);
			}
		} else if (proto_op(m) == OP_ACK &&
		    proto_get_u64(m, "dseq", &dseq) == 0) {
			(void)pthread_mutex_lock(&s->lock);
			if (s->nacked < NITEMS(s->acked))
				s->acked[s->nacked++] = dseq;
			(void)pthread_mutex_unlock(&s->lock);
		}
		proto_msg_destroy(&m);
next:
		(void)pthread_mutex_lock(&s->lock);
		stop = s->stop;
		(void)pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

/* Bind the stand-in on a free port and run it; endpoint receives where. */
static void
script_start(struct script *s, void **ctx, pthread_t *tid, char *endpoint,
    size_t endlen)
{
	const char	*pdir = tu_dir(ENV_P);
	uint8_t		 sec[32], pub[32];
	char		 z85[41], why[256];
	int		 one = 1, zero = 0;

	cr_assert_not_null(pdir, "no partnership was made (see stderr)");
	cr_assert_eq(pthread_mutex_init(&s->lock, NULL), 0);
	cr_assert_not_null(*ctx = zmq_ctx_new());
	cr_assert_not_null(s->router = zmq_socket(*ctx, ZMQ_ROUTER));
	cr_assert_eq(pki_key_read(tu_path(pdir, "broker.key"), sec, pub, why,
	    sizeof(why)), 0, "%s", why);
	pki_z85(sec, z85);
	cr_assert_eq(zmq_setsockopt(s->router, ZMQ_CURVE_SERVER, &one,
	    sizeof(one)), 0);
	cr_assert_eq(zmq_setsockopt(s->router, ZMQ_CURVE_SECRETKEY, z85, 40),
	    0);
	cr_assert_eq(zmq_setsockopt(s->router, ZMQ_LINGER, &zero,
	    sizeof(zero)), 0);
	cr_assert_eq(zmq_bind(s->router, "tcp://127.0.0.1:*"), 0);
	cr_assert_eq(zmq_getsockopt(s->router, ZMQ_LAST_ENDPOINT, endpoint,
	    &endlen), 0);
	cr_assert_eq(pthread_create(tid, NULL, script_main, s), 0);
}

static void
script_end(struct script *s, void *ctx, pthread_t tid)
{
	(void)pthread_mutex_lock(&s->lock);
	s->stop = true;
	(void)pthread_mutex_unlock(&s->lock);
	cr_assert_eq(pthread_join(tid, NULL), 0);
	(void)zmq_close(s->router);
	(void)zmq_ctx_term(ctx);
	(void)pthread_mutex_destroy(&s->lock);
}

/* Wait until the stand-in has seen n acks; false after ms. */
static bool
script_wait_acks(struct script *s, size_t n, int ms)
{
	int64_t	deadline = ccx_now_ms() + ms;
	size_t	got;

	for (;;) {
		(void)pthread_mutex_lock(&s->lock);
		got = s->nacked;
		(void)pthread_mutex_unlock(&s->lock);
		if (got >= n || ccx_now_ms() >= deadline)
			return got >= n;
		msleep(10);
	}
}

/*
 * Exactly these dseqs were acked, in this order, and nothing more a while
 * after the last of them came.
 */
static void
script_expect_acks(struct script *s, const int *want, size_t n)
{
	size_t	i;

	cr_assert(script_wait_acks(s, n, 10000), "%zu acks, not %zu",
	    s->nacked, n);
	msleep(300);
	(void)pthread_mutex_lock(&s->lock);
	cr_expect_eq(s->nacked, n, "%zu acks, not %zu", s->nacked, n);
	for (i = 0; i < n && i < s->nacked; i++)
		cr_expect_eq(s->acked[i], (uint64_t)want[i],
		    "ack %zu is of dseq %llu, not %d", i,
		    (unsigned long long)s->acked[i], want[i]);
	(void)pthread_mutex_unlock(&s->lock);
}

/* A receiving handle of cjit.leeds on the stand-in, welcomed. */
static cc_agent *
notice_handle(const char *endpoint)
{
	struct cc_agent_options	 o;
	struct cc_agent_error	 err;
	const char		*pdir = tu_dir(ENV_P);
	cc_agent		*a = NULL;

	memset(&o, 0, sizeof(o));
	o.broker = endpoint;
	o.broker_certificate = tu_path(pdir, "broker.crt");
	o.ca = tu_path(pdir, "ca.crt");
	o.crl = tu_path(pdir, "ca.crl");
	o.certificate = tu_path(pdir, "agencies/cjit.leeds.crt");
	o.key = tu_path(pdir, "keys/cjit.leeds.key");
	o.receive = true;
	o.timeout_ms = 10000;
	cr_assert_eq(cc_agent_new(&o, &a, &err), CC_AGENT_OK, "%s",
	    err.detail);
	cr_assert_eq(cc_agent_connect(a, 10000), CC_AGENT_OK, "%s",
	    cc_agent_last_error(a)->detail);
	return a;
}

/* What a spool file holds of a scripted frame: no v, op or dseq. */
static json_t *
stored_form(const char *fmt, int dseq)
{
	char	 text[2048];
	json_t	*j;

	(void)snprintf(text, sizeof(text), fmt, dseq);
	j = tjson(text);
	cr_assert_eq(json_object_del(j, "v"), 0);
	cr_assert_eq(json_object_del(j, "op"), 0);
	cr_assert_eq(json_object_del(j, "dseq"), 0);
	return j;
}

/*
 * The test's notice callback: notes the notice, "stores" each nid once
 * (a second copy is a duplicate: still 0, so acked) and refuses one nid.
 */
static int
on_notice(const cc_notice *n, void *arg)
{
	struct seen	*s = arg;
	json_error_t	 je;
	const char	*json;
	size_t		 i;

	cr_assert_lt(s->n, SCRIPT_MAX);
	(void)snprintf(s->nid[s->n], sizeof(s->nid[s->n]), "%s",
	    cc_notice_nid(n));
	s->kind[s->n] = (int)cc_notice_kind(n);
	(void)snprintf(s->name[s->n], sizeof(s->name[s->n]), "%s",
	    cc_notice_kind_name(n));
	(void)snprintf(s->at[s->n], sizeof(s->at[s->n]), "%s",
	    cc_notice_at(n));
	cr_assert_not_null(json = cc_notice_json(n, true));
	cr_assert_not_null(s->json[s->n] = json_loads(json, 0, &je), "%s",
	    je.text);
	s->n++;
	if (s->refuse != NULL && strcmp(cc_notice_nid(n), s->refuse) == 0)
		return 1;
	for (i = 0; i + 1 < s->n; i++)
		if (strcmp(s->nid[i], cc_notice_nid(n)) == 0)
			return 0;	/* a duplicate: dropped, acked */
	s->stored++;
	return 0;
}

static void
seen_free(struct seen *s)
{
	size_t	i;

	for (i = 0; i < s->n; i++)
		json_decref(s->json[i]);
}

/*
 * The callback gets every notice, with its kind, nid, time and fields;
 * the library acks each one the callback took (returned 0) and not the
 * one it refused, and cc_agent_receive has nothing left to give.
 */
Test(cc_agent, the_callback_gets_each_notice_and_only_what_it_took_is_acked,
    .timeout = 60)
{
	static const struct {
		struct scripted	 f;
		const char	*nid, *name;
		int		 kind;
	} cases[] = {
		{ { NOTICE_WITHDRAWN(NOTICE_NID1), 101 }, NOTICE_NID1,
		  "consent-withdrawn", CC_NOTICE_CONSENT_WITHDRAWN },
		{ { NOTICE_RETRACTED(NOTICE_NID2), 102 }, NOTICE_NID2,
		  "record-retracted", CC_NOTICE_RECORD_RETRACTED },
		{ { NOTICE_ERASED(NOTICE_NID3), 103 }, NOTICE_NID3,
		  "subject-erased", CC_NOTICE_SUBJECT_ERASED },
		{ { NOTICE_CORRECTED(NOTICE_NID4), 104 }, NOTICE_NID4,
		  "record-corrected", CC_NOTICE_RECORD_CORRECTED },
		{ { NOTICE_EXPIRING("7c1e2d3f-4a5b-4c6d-8e9f-505050505050"),
		  105 }, "7c1e2d3f-4a5b-4c6d-8e9f-505050505050",
		  "consent-expiring", CC_NOTICE_CONSENT_EXPIRING },
	};
	static const int	 acks[] = { 101, 103, 104, 105 };
	struct script		 s;
	struct seen		 seen;
	pthread_t		 tid;
	void			*ctx;
	cc_agent		*a;
	cc_delivery		*d = NULL;
	json_t			*want;
	char			 endpoint[128];
	int64_t			 deadline;
	size_t			 i;

	memset(&s, 0, sizeof(s));
	memset(&seen, 0, sizeof(seen));
	for (i = 0; i < NITEMS(cases); i++)
		s.frame[s.nframe++] = cases[i].f;
	seen.refuse = NOTICE_NID2;
	script_start(&s, &ctx, &tid, endpoint, sizeof(endpoint));
	a = notice_handle(endpoint);
	cc_agent_on_notice(a, on_notice, &seen);

	deadline = ccx_now_ms() + 10000;
	while (seen.n < NITEMS(cases) && ccx_now_ms() < deadline)
		cr_assert_geq(cc_agent_wait(a, -1, 100), 0);
	cr_assert_eq(seen.n, NITEMS(cases), "%zu notices", seen.n);
	for (i = 0; i < NITEMS(cases); i++) {
		cr_expect_str_eq(seen.nid[i], cases[i].nid, "notice %zu", i);
		cr_expect_str_eq(seen.name[i], cases[i].name, "notice %zu", i);
		cr_expect_eq(seen.kind[i], cases[i].kind, "notice %zu", i);
		want = stored_form(cases[i].f.text, cases[i].f.dseq);
		cr_expect_str_eq(seen.at[i], json_string_value(
		    json_object_get(want, "at")), "notice %zu", i);
		cr_expect(json_equal(want, seen.json[i]), "notice %zu: %s", i,
		    dumps(json_incref(seen.json[i])));
		json_decref(want);
	}
	script_expect_acks(&s, acks, NITEMS(acks));
	/* They all went to the callback: nothing for cc_agent_receive. */
	cr_expect_eq(cc_agent_receive(a, 0, &d), CC_AGENT_ERR_TIMEOUT);
	cr_expect_null(d);
	cc_agent_destroy(&a);
	script_end(&s, ctx, tid);
	seen_free(&seen);
}

/*
 * Without a callback, a caller that knows nothing of notices still gets
 * them from cc_agent_receive, in their place among the deliveries, and
 * acks them like deliveries.
 */
Test(cc_agent, without_a_callback_receive_returns_notices_in_order,
    .timeout = 60)
{
	static const struct {
		struct scripted		 f;
		enum cc_delivery_kind	 kind;
	} cases[] = {
		{ { NOTICE_WITHDRAWN(NOTICE_NID1), 201 }, CC_DELIVERY_NOTICE },
		{ { DELIVER_FRAME, 202 }, CC_DELIVERY_RECORD },
		{ { NOTICE_RETRACTED(NOTICE_NID2), 203 }, CC_DELIVERY_NOTICE },
	};
	static const int	 acks[] = { 201, 202, 203 };
	struct script		 s;
	pthread_t		 tid;
	json_error_t		 je;
	void			*ctx;
	cc_agent		*a;
	cc_delivery		*d = NULL;
	const cc_notice		*n;
	json_t			*want, *got;
	char			 endpoint[128];
	size_t			 i;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < NITEMS(cases); i++)
		s.frame[s.nframe++] = cases[i].f;
	script_start(&s, &ctx, &tid, endpoint, sizeof(endpoint));
	a = notice_handle(endpoint);
	for (i = 0; i < NITEMS(cases); i++) {
		cr_assert_eq(cc_agent_receive(a, 10000, &d), CC_AGENT_OK,
		    "item %zu: %s", i, cc_agent_last_error(a)->detail);
		cr_expect_eq(cc_delivery_kind(d), cases[i].kind, "item %zu",
		    i);
		cr_expect_eq(cc_delivery_dseq(d), (uint64_t)cases[i].f.dseq);
		n = cc_delivery_notice(d);
		want = stored_form(cases[i].f.text, cases[i].f.dseq);
		if (cases[i].kind == CC_DELIVERY_NOTICE) {
			cr_assert_not_null(n, "item %zu", i);
			cr_expect_str_eq(cc_notice_nid(n), json_string_value(
			    json_object_get(want, "nid")));
			cr_expect_str_eq(cc_notice_kind_name(n),
			    json_string_value(json_object_get(want, "kind")));
			cr_expect_str_eq(cc_delivery_mid(d), "");
			cr_expect_str_eq(cc_delivery_from(d), "");
			/* One text, from either side. */
			cr_expect_eq(cc_notice_json(n, false),
			    cc_delivery_json(d, false));
		} else {
			cr_expect_null(n, "item %zu", i);
			cr_expect_str_eq(cc_delivery_mid(d), NOTICE_MID);
		}
		cr_assert_not_null(got = json_loads(cc_delivery_json(d, true),
		    0, &je), "%s", je.text);
		cr_expect(json_equal(want, got), "item %zu: %s", i,
		    cc_delivery_json(d, false));
		json_decref(got);
		json_decref(want);
		cr_assert_eq(cc_agent_ack(a, d), CC_AGENT_OK);
		cc_delivery_destroy(&d);
	}
	script_expect_acks(&s, acks, NITEMS(acks));
	cc_agent_destroy(&a);
	script_end(&s, ctx, tid);
}

/*
 * The callback hears of a notice only once the deliveries sent before it
 * were taken: a correction never overtakes the record it corrects.
 */
Test(cc_agent, a_notice_behind_a_delivery_waits_for_it, .timeout = 60)
{
	static const int	 acks[] = { 301, 302, 303 };
	struct script		 s;
	struct seen		 seen;
	pthread_t		 tid;
	void			*ctx;
	cc_agent		*a;
	cc_delivery		*d = NULL;
	char			 endpoint[128];
	int64_t			 deadline;

	memset(&s, 0, sizeof(s));
	memset(&seen, 0, sizeof(seen));
	s.frame[s.nframe++] = (struct scripted){
	    NOTICE_WITHDRAWN(NOTICE_NID1), 301 };
	s.frame[s.nframe++] = (struct scripted){ DELIVER_FRAME, 302 };
	s.frame[s.nframe++] = (struct scripted){
	    NOTICE_CORRECTED(NOTICE_NID2), 303 };
	script_start(&s, &ctx, &tid, endpoint, sizeof(endpoint));
	a = notice_handle(endpoint);
	cc_agent_on_notice(a, on_notice, &seen);
	/* Let all three arrive before anything is taken. */
	msleep(500);
	cr_assert_eq(cc_agent_receive(a, 10000, &d), CC_AGENT_OK, "%s",
	    cc_agent_last_error(a)->detail);
	cr_expect_eq(cc_delivery_kind(d), CC_DELIVERY_RECORD);
	cr_expect_eq(seen.n, 1, "%zu notices before the delivery was taken",
	    seen.n);
	cr_assert_eq(cc_agent_ack(a, d), CC_AGENT_OK);
	cc_delivery_destroy(&d);
	deadline = ccx_now_ms() + 10000;
	while (seen.n < 2 && ccx_now_ms() < deadline)
		cr_assert_geq(cc_agent_wait(a, -1, 100), 0);
	cr_assert_eq(seen.n, 2);
	cr_expect_str_eq(seen.nid[0], NOTICE_NID1);
	cr_expect_str_eq(seen.nid[1], NOTICE_NID2);
	script_expect_acks(&s, acks, NITEMS(acks));
	cc_agent_destroy(&a);
	script_end(&s, ctx, tid);
	seen_free(&seen);
}

/*
 * A second copy of a nid (as after a reconnect) reaches the callback
 * again; the callback drops it as stored already, and it is acked all
 * the same, so the broker stops sending it.
 */
Test(cc_agent, a_second_copy_of_a_nid_is_acked_again, .timeout = 60)
{
	static const int	 acks[] = { 401, 402 };
	struct script		 s;
	struct seen		 seen;
	pthread_t		 tid;
	void			*ctx;
	cc_agent		*a;
	char			 endpoint[128];
	int64_t			 deadline;

	memset(&s, 0, sizeof(s));
	memset(&seen, 0, sizeof(seen));
	s.frame[s.nframe++] = (struct scripted){
	    NOTICE_WITHDRAWN(NOTICE_NID1), 401 };
	s.frame[s.nframe++] = (struct scripted){
	    NOTICE_WITHDRAWN(NOTICE_NID1), 402 };
	script_start(&s, &ctx, &tid, endpoint, sizeof(endpoint));
	a = notice_handle(endpoint);
	cc_agent_on_notice(a, on_notice, &seen);
	deadline = ccx_now_ms() + 10000;
	while (seen.n < 2 && ccx_now_ms() < deadline)
		cr_assert_geq(cc_agent_wait(a, -1, 100), 0);
	cr_assert_eq(seen.n, 2);
	cr_expect_str_eq(seen.nid[0], NOTICE_NID1);
	cr_expect_str_eq(seen.nid[1], NOTICE_NID1);
	cr_expect_eq(seen.stored, 1);
	script_expect_acks(&s, acks, NITEMS(acks));
	cc_agent_destroy(&a);
	script_end(&s, ctx, tid);
	seen_free(&seen);
}

/*
 * A notice the schema refuses (a kind this library does not know, a nid
 * missing) is dropped unread and unacked, as any unreadable frame from the
 * broker is: neither the callback nor cc_agent_receive sees it, and the
 * notices after it still come.
 */
Test(cc_agent, a_malformed_notice_is_dropped_unacked, .timeout = 60)
{
	static const int	 acks[] = { 503 };
	static const bool	 callback[] = { true, false };
	struct script		 s;
	struct seen		 seen;
	pthread_t		 tid;
	void			*ctx;
	cc_agent		*a;
	cc_delivery		*d = NULL;
	char			 endpoint[128];
	int64_t			 deadline;
	size_t			 i;

	for (i = 0; i < NITEMS(callback); i++) {
		memset(&s, 0, sizeof(s));
		memset(&seen, 0, sizeof(seen));
		s.frame[s.nframe++] = (struct scripted){ NOTICE_UNKNOWN_KIND,
		    501 };
		s.frame[s.nframe++] = (struct scripted){ NOTICE_NO_NID, 502 };
		s.frame[s.nframe++] = (struct scripted){
		    NOTICE_ERASED(NOTICE_NID4), 503 };
		script_start(&s, &ctx, &tid, endpoint, sizeof(endpoint));
		a = notice_handle(endpoint);
		if (callback[i]) {
			cc_agent_on_notice(a, on_notice, &seen);
			deadline = ccx_now_ms() + 10000;
			while (seen.n < 1 && ccx_now_ms() < deadline)
				cr_assert_geq(cc_agent_wait(a, -1, 100), 0);
			cr_assert_eq(seen.n, 1);
			cr_expect_str_eq(seen.nid[0], NOTICE_NID4);
		} else {
			cr_assert_eq(cc_agent_receive(a, 10000, &d),
			    CC_AGENT_OK, "%s", cc_agent_last_error(a)->detail);
			cr_expect_eq(cc_delivery_dseq(d), 503);
			cr_assert_not_null(cc_delivery_notice(d));
			cr_expect_str_eq(cc_notice_nid(cc_delivery_notice(d)),
			    NOTICE_NID4);
			cr_assert_eq(cc_agent_ack(a, d), CC_AGENT_OK);
			cc_delivery_destroy(&d);
		}
		script_expect_acks(&s, acks, NITEMS(acks));
		cr_expect_eq(cc_agent_receive(a, 0, &d), CC_AGENT_ERR_TIMEOUT,
		    "callback %d", callback[i]);
		cc_agent_destroy(&a);
		script_end(&s, ctx, tid);
		seen_free(&seen);
	}
}
