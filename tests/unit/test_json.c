/*
 * test_json.c - the JSON form of DESIGN §8: an op's fields without `op`
 * and `v`, validated exactly as a wire frame, and converted back equal.
 */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "proto_testutil.h"

/* Table rows leave their optional trailing members out. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* The example without op and v, as an agent's file holds it. */
static char *
file_text(const char *name, enum cc_op *op, json_t **doc)
{
	json_t	*j = texample(name, false);
	char	*s;

	*op = (enum cc_op)cc_op_parse(json_string_value(json_object_get(j,
	    "op")), json_string_length(json_object_get(j, "op")));
	cr_assert_geq((int)*op, 0);
	json_object_del(j, "op");
	s = json_dumps(j, JSON_COMPACT);
	cr_assert_not_null(s);
	*doc = j;
	return s;
}

static json_t *
reparse(const char *s)
{
	json_error_t	 e;
	json_t		*j = json_loads(s, 0, &e);

	cr_assert_not_null(j, "output is not JSON: %s: %s", e.text, s);
	return j;
}

Test(json, every_example_round_trips_equal)
{
	size_t	i;

	for (i = 0; i < NITEMS(examples); i++) {
		enum cc_op	 op;
		json_t		*doc, *back;
		char		*text = file_text(examples[i].name, &op, &doc);
		char		*out;
		struct cc_msg	*m = NULL;
		struct cc_error	 e;

		cr_expect_eq(proto_from_json(op, text, strlen(text), &m, &e), 0,
		    "%s: %s %s (%s)", examples[i].name, cc_err_name(e.code),
		    e.field, e.detail);
		if (m != NULL) {
			cr_expect_eq(proto_op(m), op);
			out = proto_to_json(m, false);
			cr_assert_not_null(out);
			back = reparse(out);
			cr_expect(json_equal(doc, back), "%s:\n%s\n%s",
			    examples[i].name, text, out);
			cr_expect_null(json_object_get(back, "v"));
			cr_expect_null(json_object_get(back, "op"));
			json_decref(back);
			free(out);

			/* Pretty output is the same document. */
			out = proto_to_json(m, true);
			cr_assert_not_null(out);
			cr_expect_not_null(strchr(out, '\n'));
			back = reparse(out);
			cr_expect(json_equal(doc, back), "%s pretty",
			    examples[i].name);
			json_decref(back);
			free(out);
		}
		proto_msg_destroy(&m);
		json_decref(doc);
		free(text);
	}
}

/* JSON -> msgpack -> JSON keeps integer, real and boolean types apart. */
Test(json, number_types_survive_the_round_trip)
{
	static const struct {
		const char	*path, *val;
		msgpack_object_type type;
	} rows[] = {
		{ "body.dose_mg", "60", MSGPACK_OBJECT_POSITIVE_INTEGER },
		{ "body.dose_mg", "60.0", MSGPACK_OBJECT_FLOAT64 },
		{ "body.dose_mg", "0.1", MSGPACK_OBJECT_FLOAT64 },
		{ "body.dose_mg", "1e3", MSGPACK_OBJECT_FLOAT64 },
		{ "body.on_licence", "false", MSGPACK_OBJECT_BOOLEAN },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++) {
		json_t		*doc = texample("release-plan", false), *back;
		struct cc_msg	*m = NULL;
		struct cc_error	 e;
		char		*text, *out;
		const char	*leaf = strrchr(rows[i].path, '.') + 1;

		json_object_del(doc, "op");
		tset(doc, rows[i].path, rows[i].val);
		text = json_dumps(doc, JSON_COMPACT);
		cr_assert_eq(proto_from_json(OP_PUBLISH, text, strlen(text), &m,
		    &e), 0, "%s: %s", rows[i].val, e.detail);
		cr_expect_eq(proto_get(m, "body")->via.map.size > 0, true);
		for (uint32_t k = 0; k < proto_get(m, "body")->via.map.size;
		    k++) {
			const msgpack_object_kv *kv =
			    &proto_get(m, "body")->via.map.ptr[k];

			if (kv->key.via.str.size == strlen(leaf) &&
			    memcmp(kv->key.via.str.ptr, leaf, strlen(leaf)) == 0)
				cr_expect_eq(kv->val.type, rows[i].type, "%s",
				    rows[i].val);
		}
		out = proto_to_json(m, false);
		back = reparse(out);
		cr_expect(json_equal(doc, back), "%s: %s", rows[i].val, out);
		json_decref(back);
		free(out);
		free(text);
		proto_msg_destroy(&m);
		json_decref(doc);
	}
}

/* Files are judged by the same rules as frames, with the same paths. */
Test(json, refusals_match_the_wire)
{
	static const struct {
		const char	*example, *path, *val;
		enum cc_err	 code;
		const char	*field;
	} rows[] = {
		{ "release-plan", "body.favourite_colour", "'blue'",
		  ERR_UNKNOWN_FIELD, "body.favourite_colour" },
		{ "release-plan", "body.release_date", "'2026-02-30'",
		  ERR_INVALID_FIELD, "body.release_date" },
		{ "release-plan", "subject.pnc", "'2004/0012345E'",
		  ERR_INVALID_FIELD, "subject.pnc" },
		{ "release-plan", "subject", NULL, ERR_MISSING_FIELD,
		  "subject" },
		{ "referral", "body.household.adults", "2.0",
		  ERR_INVALID_FIELD, "body.household.adults" },
		{ "referral", "body.support_needs.2", "'debt'",
		  ERR_INVALID_FIELD, "body.support_needs.2" },
		{ "handover", "body.prison_treatment.0.start", "'2026-13-01'",
		  ERR_INVALID_FIELD, "body.prison_treatment.0.start" },
		{ "housing-status", "body.settled_status", "'homeless'",
		  ERR_INVALID_FIELD, "body.settled_status" },
		{ "consent-grant", "explicit", "false", ERR_INVALID_FIELD,
		  "explicit" },
		{ "consent-grant", "recipients.2", "'NOT VALID'",
		  ERR_INVALID_FIELD, "recipients.2" },
		{ "consent-withdraw", "cid", NULL, ERR_MISSING_FIELD, "cid" },
		{ "hello", "receive", "null", ERR_INVALID_FIELD, "receive" },
		{ "ack", "dseq", "-1", ERR_INVALID_FIELD, "dseq" },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++) {
		json_t		*doc = texample(rows[i].example, false);
		const char	*opname = json_string_value(json_object_get(doc,
				    "op"));
		int		 op = cc_op_parse(opname, strlen(opname));
		struct cc_msg	*m = NULL;
		struct cc_error	 e, we;
		char		*text;

		tset(doc, rows[i].path, rows[i].val);
		json_object_set_new(doc, "v", json_integer(1));
		cr_expect_eq(tdecode(doc, &m, &we), -1);
		json_object_del(doc, "v");
		json_object_del(doc, "op");
		text = json_dumps(doc, JSON_COMPACT);
		cr_expect_eq(proto_from_json((enum cc_op)op, text, strlen(text),
		    &m, &e), -1, "row %zu accepted", i);
		cr_expect_null(m);
		cr_expect_eq(e.code, rows[i].code, "row %zu: %s %s", i,
		    cc_err_name(e.code), e.field);
		cr_expect_str_eq(e.field, rows[i].field, "row %zu", i);
		cr_expect_eq(e.code, we.code, "row %zu: file and frame differ",
		    i);
		cr_expect_str_eq(e.field, we.field, "row %zu", i);
		cr_expect_str_eq(e.re, we.re, "row %zu", i);
		free(text);
		json_decref(doc);
	}
}

Test(json, broken_json_and_header_fields_are_refused)
{
	static const struct {
		enum cc_op	 op;
		const char	*text;
		enum cc_err	 code;
		const char	*field;
		const char	*re;
	} rows[] = {
		{ OP_HELLO, "{'agent':'a'", ERR_MALFORMED, "", "hello" },
		{ OP_HELLO, "{'agent':'a'} x", ERR_MALFORMED, "", "hello" },
		{ OP_HELLO, "", ERR_MALFORMED, "", "hello" },
		{ OP_HELLO, "['agent']", ERR_MALFORMED, "", "hello" },
		{ OP_HELLO, "'agent'", ERR_MALFORMED, "", "hello" },
		{ OP_HELLO, "{'agent':'a','agent':'b'}", ERR_MALFORMED, "",
		  "hello" },
		{ OP_HELLO, "{'agent':'a\\u0000b'}", ERR_MALFORMED, "",
		  "hello" },
		{ OP_HELLO, "{'agent':'a','v':1}", ERR_UNKNOWN_FIELD, "v",
		  "hello" },
		{ OP_HELLO, "{'agent':'a','op':'hello'}", ERR_UNKNOWN_FIELD,
		  "op", "hello" },
		{ OP_ACK, "{'dseq':1,'x':[[[[[[[[[1]]]]]]]]]}", ERR_MALFORMED,
		  "", "ack" },
		{ OP_ACK, "{'dseq':1,'x':[[[[[[1]]]]]]}", ERR_UNKNOWN_FIELD,
		  "x", "ack" },
		{ OP_ACK, "{'dseq':18446744073709551615}", ERR_MALFORMED, "",
		  "ack" },
		{ OP_TRACK, "{'mid':'6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5g'}",
		  ERR_INVALID_FIELD, "mid",
		  "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5g" },
		{ OP__COUNT, "{}", ERR_UNKNOWN_OP, "op", "" },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++) {
		struct cc_msg	*m = (struct cc_msg *)1;
		struct cc_error	 e;
		char		*text = tquote(rows[i].text);

		cr_expect_eq(proto_from_json(rows[i].op, text, strlen(text), &m,
		    &e), -1, "row %zu accepted", i);
		cr_expect_null(m, "row %zu", i);
		cr_expect_eq(e.code, rows[i].code, "row %zu: %s (%s)", i,
		    cc_err_name(e.code), e.detail);
		cr_expect_str_eq(e.field, rows[i].field, "row %zu", i);
		cr_expect_str_eq(e.re, rows[i].re, "row %zu", i);
		free(text);
	}
}

/* The JSON a case system receives carries the canonical forms. */
Test(json, output_is_canonical)
{
	struct cc_msg	*m = NULL;
	struct cc_error	 e;
	char		*text = tquote("{'mid':'6F1C2D3E-4A5B-4C6D-8E9F-0A1B2C3D4E5F',"
			    "'type':'housing-status','purpose':'housing-support',"
			    "'subject':{'pnc':'04/12345d'},'area':'E08000035',"
			    "'created':'2026-05-03T08:00:00Z',"
			    "'body':{'effective_date':'2026-05-02',"
			    "'accommodation_type':'hostel'}}");
	char		*out;
	json_t		*back;

	cr_assert_eq(proto_from_json(OP_PUBLISH, text, strlen(text), &m, &e),
	    0, "%s", e.detail);
	out = proto_to_json(m, false);
	back = reparse(out);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(back,
	    "subject"), "pnc")), "2004/0012345D");
	cr_expect_str_eq(json_string_value(json_object_get(back, "mid")),
	    "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f");
	json_decref(back);
	free(out);
	free(text);
	proto_msg_destroy(&m);
}

Test(json, any_msgpack_object_converts_or_returns_null)
{
	msgpack_sbuffer		 sbuf;
	msgpack_packer		 pk;
	msgpack_unpacked	 up;
	char			*out;
	json_t			*back, *want;

	msgpack_sbuffer_init(&sbuf);
	msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 6);
	msgpack_pack_nil(&pk);
	msgpack_pack_int64(&pk, -5);
	msgpack_pack_uint64(&pk, 9007199254740993ULL);
	msgpack_pack_double(&pk, 2.5);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "k", 1);
	msgpack_pack_str_with_body(&pk, "caf\xc3\xa9", 5);
	msgpack_pack_false(&pk);
	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, sbuf.data, sbuf.size, NULL),
	    MSGPACK_UNPACK_SUCCESS);
	out = proto_object_to_json(&up.data, false);
	cr_assert_not_null(out);
	back = reparse(out);
	want = tjson("[null,-5,9007199254740993,2.5,{'k':'caf\u00e9'},false]");
	cr_expect(json_equal(back, want), "%s", out);
	json_decref(back);
	json_decref(want);
	free(out);
	msgpack_unpacked_destroy(&up);

	/* What JSON cannot hold: binary, an integer key, broken UTF-8. */
	for (int kind = 0; kind < 4; kind++) {
		msgpack_sbuffer_clear(&sbuf);
		if (kind == 0)
			msgpack_pack_bin_with_body(&pk, "ab", 2);
		else if (kind == 1) {
			msgpack_pack_map(&pk, 1);
			msgpack_pack_int(&pk, 1);
			msgpack_pack_int(&pk, 2);
		} else if (kind == 2)
			msgpack_pack_str_with_body(&pk, "\xff", 1);
		else
			msgpack_pack_uint64(&pk, UINT64_MAX);
		msgpack_unpacked_init(&up);
		cr_assert_eq(msgpack_unpack_next(&up, sbuf.data, sbuf.size,
		    NULL), MSGPACK_UNPACK_SUCCESS);
		cr_expect_null(proto_object_to_json(&up.data, false),
		    "kind %d converted", kind);
		msgpack_unpacked_destroy(&up);
	}
	msgpack_sbuffer_destroy(&sbuf);
}

/*
 * proto_object_to_jansson over every msgpack type, from raw bytes: the
 * exact JSON value (integers and reals kept apart by json_equal), or NULL
 * for what JSON cannot hold.  The bytes were checked with python3-msgpack,
 * which decodes each convertible row to the value given.
 */
#define MP(s)	s, sizeof(s) - 1
static const struct {
	const char	*bytes;
	size_t		 len;
	const char	*json;		/* single-quoted; NULL: refused */
} to_jansson[] = {
	/* nil */
	{ MP("\xc0"), "null" },
	/* true */
	{ MP("\xc3"), "true" },
	/* false */
	{ MP("\xc2"), "false" },
	/* positive fixint */
	{ MP("\x00"), "0" },
	{ MP("\x7f"), "127" },
	/* uint 8 */
	{ MP("\xcc\xff"), "255" },
	/* uint 16 */
	{ MP("\xcd\xff\xff"), "65535" },
	/* uint 32 */
	{ MP("\xce\xff\xff\xff\xff"), "4294967295" },
	/* 2^53 + 1, exact */
	{ MP("\xcf\x00 \x00\x00\x00\x00\x00\x01"), "9007199254740993" },
	/* INT64_MAX */
	{ MP("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff"), "9223372036854775807" },
	/* INT64_MAX + 1 */
	{ MP("\xcf\x80\x00\x00\x00\x00\x00\x00\x00"), NULL },
	/* UINT64_MAX */
	{ MP("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), NULL },
	/* int 64 holding a positive */
	{ MP("\xd3\x00\x00\x00\x00\x00\x00\x00\x05"), "5" },
	/* negative fixint */
	{ MP("\xff"), "-1" },
	{ MP("\xe0"), "-32" },
	/* int 8 */
	{ MP("\xd0\x80"), "-128" },
	/* int 16 */
	{ MP("\xd1\x80\x00"), "-32768" },
	/* int 32 */
	{ MP("\xd2\x80\x00\x00\x00"), "-2147483648" },
	/* INT64_MIN */
	{ MP("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"), "-9223372036854775808" },
	/* float 32 */
	{ MP("\xca?\xc0\x00\x00"), "1.5" },
	/* float 64 */
	{ MP("\xcb@\x04\x00\x00\x00\x00\x00\x00"), "2.5" },
	/* a real, not the integer 1 */
	{ MP("\xcb?\xf0\x00\x00\x00\x00\x00\x00"), "1.0" },
	{ MP("\xcb?\xb9\x99\x99\x99\x99\x99\x9a"), "0.1" },
	/* NaN */
	{ MP("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"), NULL },
	/* +infinity */
	{ MP("\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00"), NULL },
	/* -infinity, float 32 */
	{ MP("\xca\xff\x80\x00\x00"), NULL },
	/* empty string first */
	{ MP("\xa0"), "''" },
	/* fixstr */
	{ MP("\xa3" "abc"), "'abc'" },
	/* str 8 */
	{ MP("\xd9\x03" "abc"), "'abc'" },
	/* str 16 */
	{ MP("\xda\x00\x03" "abc"), "'abc'" },
	/* str 32 */
	{ MP("\xdb\x00\x00\x00\x03" "abc"), "'abc'" },
	/* UTF-8 */
	{ MP("\xa5" "caf\xc3\xa9"), "'café'" },
	/* a NUL inside */
	{ MP("\xa3" "a\x00" "b"), "'a\\u0000b'" },
	/* not UTF-8 */
	{ MP("\xa1\xff"), NULL },
	/* overlong NUL */
	{ MP("\xa2\xc0\x80"), NULL },
	/* a surrogate */
	{ MP("\xa3\xed\xa0\x80"), NULL },
	/* bin 8 */
	{ MP("\xc4\x02" "ab"), NULL },
	/* empty bin */
	{ MP("\xc4\x00"), NULL },
	/* bin 16 */
	{ MP("\xc5\x00\x01x"), NULL },
	/* fixext 1 */
	{ MP("\xd4\x01\x02"), NULL },
	/* timestamp 32 */
	{ MP("\xd6\xff\x00\x00\x00\x00"), NULL },
	/* ext 8 */
	{ MP("\xc7\x01\x05x"), NULL },
	/* empty array */
	{ MP("\x90"), "[]" },
	/* fixarray */
	{ MP("\x93\x01\xa1" "a\xc0"), "[1,'a',null]" },
	/* array 16 */
	{ MP("\xdc\x00\x01\x01"), "[1]" },
	/* array 32 */
	{ MP("\xdd\x00\x00\x00\x01\x01"), "[1]" },
	/* nested */
	{ MP("\x92\x91\x91\x90\x81\xa1k\x91\xc3"), "[[[[]]],{'k':[true]}]" },
	/* empty map */
	{ MP("\x80"), "{}" },
	/* fixmap */
	{ MP("\x82\xa1" "a\x01\xa1" "b\x92\xc2\xa0"), "{'a':1,'b':[false,'']}" },
	/* map 16 */
	{ MP("\xde\x00\x01\xa1" "a\xc0"), "{'a':null}" },
	/* map 32 */
	{ MP("\xdf\x00\x00\x00\x01\xa1" "a\xc0"), "{'a':null}" },
	/* empty key first */
	{ MP("\x81\xa0\x01"), "{'':1}" },
	/* v and op kept */
	{ MP("\x82\xa1v\x01\xa2op\xa5hello"), "{'v':1,'op':'hello'}" },
	/* bin inside an array */
	{ MP("\x92\x01\xc4\x01x"), NULL },
	/* ext inside a map */
	{ MP("\x81\xa1k\xd4\x01\x02"), NULL },
	/* NaN deep inside */
	{ MP("\x81\xa1k\x91\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"), NULL },
	/* integer key */
	{ MP("\x81\x01\x02"), NULL },
	/* nil key */
	{ MP("\x81\xc0\x01"), NULL },
	/* bin key */
	{ MP("\x81\xc4\x01k\x01"), NULL },
	/* array key */
	{ MP("\x81\x90\x01"), NULL },
	/* integer key inside */
	{ MP("\x91\x81\x01\x02"), NULL },
	/* key not UTF-8 */
	{ MP("\x81\xa1\xff\x01"), NULL },
	/* repeated key */
	{ MP("\x82\xa1k\x01\xa1k\x02"), NULL },
	/* repeated key, same value */
	{ MP("\x83\xa1k\x01\xa1j\x02\xa1k\x01"), NULL },
};

Test(json, object_to_jansson_converts_every_msgpack_type_exactly)
{
	size_t	i;

	for (i = 0; i < NITEMS(to_jansson); i++) {
		msgpack_unpacked	 up;
		size_t			 off = 0;
		json_t			*j, *want, *back;
		char			*text, *got;

		msgpack_unpacked_init(&up);
		cr_assert_eq(msgpack_unpack_next(&up, to_jansson[i].bytes,
		    to_jansson[i].len, &off), MSGPACK_UNPACK_SUCCESS,
		    "row %zu", i);
		cr_assert_eq(off, to_jansson[i].len, "row %zu", i);
		j = proto_object_to_jansson(&up.data);
		text = proto_object_to_json(&up.data, false);
		if (to_jansson[i].json == NULL) {
			cr_expect_null(j, "row %zu converted", i);
			cr_expect_null(text, "row %zu: %s", i, text);
		} else {
			want = tjson(to_jansson[i].json);
			got = j == NULL ? NULL : json_dumps(j, JSON_ENCODE_ANY);
			cr_expect(j != NULL && json_equal(j, want),
			    "row %zu: %s, want %s", i, got, to_jansson[i].json);
			/* The text form is the same value. */
			cr_assert_not_null(text, "row %zu", i);
			back = json_loads(text, JSON_DECODE_ANY |
			    JSON_ALLOW_NUL, NULL);
			cr_expect(back != NULL && json_equal(back, want),
			    "row %zu: %s", i, text);
			json_decref(back);
			json_decref(want);
			free(got);
		}
		json_decref(j);
		free(text);
		msgpack_unpacked_destroy(&up);
	}
}

/*
 * Trees built by hand, past what msgpack-c's unpacker nests: 65 levels of
 * arrays convert, 66 do not; a float32 is a real.
 */
Test(json, object_to_jansson_nests_64_deep_and_no_deeper)
{
	static const struct {
		size_t	levels;
		bool	ok;
	} rows[] = {
		{ 1, true }, { 64, true }, { 65, true }, { 66, false },
	};
	msgpack_object	o[66];
	json_t		*j, *inner;
	size_t		i, k, depth;

	for (i = 0; i < NITEMS(rows); i++) {
		memset(o, 0, sizeof(o));
		for (k = 0; k < rows[i].levels; k++) {
			o[k].type = MSGPACK_OBJECT_ARRAY;
			o[k].via.array.size = k + 1 < rows[i].levels ? 1 : 0;
			o[k].via.array.ptr = k + 1 < rows[i].levels ?
			    &o[k + 1] : NULL;
		}
		j = proto_object_to_jansson(&o[0]);
		cr_expect_eq(j != NULL, rows[i].ok, "%zu levels", rows[i].levels);
		for (inner = j, depth = 0; inner != NULL &&
		    json_array_size(inner) == 1; depth++)
			inner = json_array_get(inner, 0);
		if (j != NULL)
			cr_expect_eq(depth + 1, rows[i].levels);
		json_decref(j);
	}

	memset(o, 0, sizeof(o));
	o[0].type = MSGPACK_OBJECT_FLOAT32;
	o[0].via.f64 = 0.25;
	j = proto_object_to_jansson(&o[0]);
	cr_expect(json_is_real(j) && json_real_value(j) == 0.25);
	json_decref(j);
}

/* A delivery as in/MID.json: the deliver fields, minus op and v. */
Test(json, delivered_record_keeps_every_deliver_field)
{
	json_t		*doc = texample("deliver", true), *back;
	struct cc_msg	*m = NULL;
	struct cc_error	 e;
	char		*out;

	cr_assert_eq(tdecode(doc, &m, &e), 0, "%s", e.detail);
	out = proto_to_json(m, true);
	back = reparse(out);
	json_object_del(doc, "v");
	json_object_del(doc, "op");
	cr_expect(json_equal(doc, back), "%s", out);
	json_decref(back);
	free(out);
	proto_msg_destroy(&m);
	json_decref(doc);
}
