/*
 * test_json.c - the JSON form of DESIGN §8: an op's fields without `op`
 * and `v`, validated exactly as a wire frame, and converted back equal.
 */
#include <stdio.h>
#include <string.h>

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
