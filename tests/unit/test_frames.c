/*
 * test_frames.c - every frame the broker sends is valid against the
 * schema: welcome, subscribed, accepted, consent-recorded, status, error,
 * deliver and receipt, each produced by the real handler or the real pump
 * and read back with proto_decode(); and the reply builder's map header
 * and its refusal of a reply whose packing failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "route.h"
#include "../lib/unitbroker.h"

#define NOBODY	"nobody.example"	/* in no directory */
#define NOMS_X	"A1234BC"
#define NOMS_Y	"B9876ZZ"

static struct ub	*u;

static void
setup(void)
{
	u = ub_new(NULL);
}

static void
teardown(void)
{
	ub_destroy(&u);
}

/* ub_frames() has decoded and validated every frame; the op is right. */
static json_t *
only_frame(const char *agency, const char *op)
{
	json_t	*all = ub_frames(u, agency);

	cr_assert_eq(json_array_size(all), 1, "want one %s to %s, got %s", op,
	    agency, h_dump(all));
	h_assert_op(json_array_get(all, 0), op);
	return json_array_get(all, 0);
}

Test(frames, welcome_for_receiving_and_send_only_sessions, .init = setup,
    .fini = teardown)
{
	static const struct {
		const char	*agency, *type;
		bool		 receive;
	} rows[] = {
		{ H_CJIT, "cjit", true },
		{ H_PROBATION, "probation", false },
		{ H_CARAT, "prison-carat", true },
	};
	size_t	i;
	json_t	*f;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		f = ub_callf(u, rows[i].agency, "{\"op\": \"hello\", "
		    "\"agent\": \"unit\", \"receive\": %s}",
		    rows[i].receive ? "true" : "false");
		h_assert_op(f, "welcome");
		cr_expect_str_eq(h_str(f, "agency"), rows[i].agency);
		cr_expect_str_eq(h_str(f, "type"), rows[i].type);
		cr_expect(h_set_eq(h_get(f, "areas"), H_AREA), "%s",
		    h_dump(f));
		cr_expect_eq(h_int(f, "max_size"),
		    (long long)u->b.conf.max_size);
		cr_expect_not_null(h_str(f, "time"));
		cr_expect_eq(broker_peer(&u->b, rows[i].agency)->online,
		    rows[i].receive);
	}
}

Test(frames, subscribed_echoes_the_subscription, .init = setup,
    .fini = teardown)
{
	static const struct {
		const char	*types, *areas;
	} rows[] = {
		{ "release-plan,housing-status", H_AREA },
		{ "handover", H_AREA },
		{ "", "" },		/* subscribes to nothing */
	};
	size_t	i;
	json_t	*req, *f;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		req = h_keep(json_pack("{s:s,s:O,s:O}", "op", "subscribe",
		    "types", h_csv(rows[i].types), "areas",
		    h_csv(rows[i].areas)));
		f = ub_call(u, H_CJIT, req);
		h_assert_op(f, "subscribed");
		cr_expect(h_set_eq(h_get(f, "types"), rows[i].types), "%s",
		    h_dump(f));
		cr_expect(h_set_eq(h_get(f, "areas"), rows[i].areas), "%s",
		    h_dump(f));
	}
}

Test(frames, accepted_and_consent_recorded, .init = setup, .fini = teardown)
{
	const char	*cid, *cid2, *mid;
	json_t		*f, *all;
	size_t		 i;

	/* grant: version 1 */
	cid = ub_grant(u, H_CARAT, H_CJIT, H_BASIC, "continuity-of-care",
	    H_PNC_A, false);
	/* publish: accepted {mid} (ub_publish checks the answer) */
	mid = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT));
	cr_assert_not_null(mid);
	/* a second consent about the subject */
	cid2 = ub_grant(u, H_CARAT, H_PROBATION, H_BASIC,
	    "continuity-of-care", H_PNC_A, false);

	/* withdraw one by cid: version 2 */
	f = ub_call(u, H_CJIT, h_withdraw_new(cid, NULL));
	h_assert_op(f, "consent-recorded");
	cr_expect_str_eq(h_str(f, "cid"), cid);
	cr_expect_eq(h_int(f, "version"), 2);

	/* refuse: a new consent, version 1 */
	f = ub_call(u, H_CARAT, h_refuse_new(H_PNC_B));
	h_assert_op(f, "consent-recorded");
	cr_expect_eq(h_int(f, "version"), 1);

	/* withdraw by subject: one answer per active consent */
	(void)ub_grant(u, H_CARAT, H_LA, H_BASIC, "continuity-of-care",
	    H_PNC_A, false);
	all = ub_calls(u, H_PROBATION, h_withdraw_new(NULL, H_PNC_A));
	cr_assert_eq(json_array_size(all), 2, "%s", h_dump(all));
	for (i = 0; i < 2; i++) {
		f = json_array_get(all, i);
		h_assert_op(f, "consent-recorded");
		cr_expect_eq(h_int(f, "version"), 2);
	}
	cr_expect(strcmp(h_str(json_array_get(all, 0), "cid"), cid2) == 0 ||
	    strcmp(h_str(json_array_get(all, 1), "cid"), cid2) == 0);
}

Test(frames, status_of_queued_and_withheld, .init = setup, .fini = teardown)
{
	const char	*mid;
	json_t		*f, *r;
	size_t		 i;

	(void)ub_grant(u, H_CARAT, H_CJIT, H_BASIC, "continuity-of-care",
	    H_PNC_A, false);
	mid = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT "," H_HOUSING));
	f = ub_callf(u, H_CARAT, "{\"op\": \"track\", \"mid\": \"%s\"}", mid);
	h_assert_op(f, "status");
	cr_expect_str_eq(h_str(f, "mid"), mid);
	cr_assert_eq(json_array_size(h_get(f, "recipients")), 2, "%s",
	    h_dump(f));
	json_array_foreach(h_get(f, "recipients"), i, r) {
		cr_expect_not_null(h_str(r, "at"));
		if (strcmp(h_str(r, "agency"), H_CJIT) == 0) {
			cr_expect_str_eq(h_str(r, "state"), "queued");
			cr_expect_null(h_get(r, "reason"));
		} else {
			cr_expect_str_eq(h_str(r, "agency"), H_HOUSING);
			cr_expect_str_eq(h_str(r, "state"), "withheld");
			cr_expect_str_eq(h_str(r, "reason"), "no-consent");
		}
	}
}

/* ---- errors ---- */

static const char	*fx_mid;	/* a publish of carat's */

static json_t *
mk_plan_by_cjit(void)
{
	return ub_plan(H_PNC_A, NULL);
}

static json_t *
mk_plan_to_nobody(void)
{
	return ub_plan(H_PNC_A, H_CJIT "," NOBODY);
}

static json_t *
mk_grant(void)
{
	return h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
}

static json_t *
mk_grant_to_nobody(void)
{
	return h_grant_new(H_CJIT "," NOBODY, H_BASIC, H_PNC_A);
}

/* The subject's consent names NOMS_X beside the PNC (fixture). */
static json_t *
mk_grant_conflict(void)
{
	json_t	*g = h_grant_new(H_CJIT, H_BASIC, H_PNC_C);

	json_object_set_new(g, "subject", json_pack("{s:s,s:s}", "pnc",
	    H_PNC_C, "noms", NOMS_Y));
	return g;
}

static json_t *
mk_track_unknown(void)
{
	char	mid[37];

	return h_jsonf("{\"op\": \"track\", \"mid\": \"%s\"}", h_uuid(mid));
}

static json_t *
mk_track_fx(void)
{
	return h_jsonf("{\"op\": \"track\", \"mid\": \"%s\"}", fx_mid);
}

static json_t *
mk_subscribe_elsewhere(void)
{
	return h_json("{\"op\": \"subscribe\", \"types\": [\"release-plan\"],"
	    " \"areas\": [\"" H_AREA2 "\"]}");
}

static json_t *
mk_withdraw_unknown(void)
{
	char	cid[37];

	return h_withdraw_new(h_uuid(cid), NULL);
}

static json_t *
mk_withdraw_nothing(void)
{
	return h_withdraw_new(NULL, H_PNC_B);
}

static json_t *
mk_refuse(void)
{
	return h_refuse_new(H_PNC_A);
}

/* An op only the broker sends, sent by an agency. */
static json_t *
mk_broker_op(void)
{
	char	mid[37];

	return h_jsonf("{\"op\": \"accepted\", \"mid\": \"%s\"}", h_uuid(mid));
}

static const struct ecase {
	const char	*name;
	const char	*agency;
	json_t		*(*make)(void);
	const char	*code;
	const char	*field;		/* NULL: none */
} ecases[] = {
	{ "publish_type_not_permitted", H_CJIT, mk_plan_by_cjit,
	  "not-permitted", "type" },
	{ "publish_to_unknown_recipient", H_CARAT, mk_plan_to_nobody,
	  "unknown-recipient", "to.1" },
	{ "grant_by_housing_not_permitted", H_HOUSING, mk_grant,
	  "not-permitted", NULL },
	{ "grant_to_unknown_recipient", H_CARAT, mk_grant_to_nobody,
	  "unknown-recipient", "recipients.1" },
	{ "grant_identity_conflict", H_CARAT, mk_grant_conflict,
	  "identity-conflict", "subject" },
	{ "track_unknown_mid", H_CARAT, mk_track_unknown, "invalid-field",
	  "mid" },
	{ "track_of_another_senders_mid", H_CJIT, mk_track_fx,
	  "invalid-field", "mid" },
	{ "subscribe_unlisted_area", H_CJIT, mk_subscribe_elsewhere,
	  "not-permitted", "areas.0" },
	{ "withdraw_unknown_cid", H_CJIT, mk_withdraw_unknown,
	  "invalid-field", "cid" },
	{ "withdraw_subject_without_consent", H_CJIT, mk_withdraw_nothing,
	  "invalid-field", "subject" },
	{ "refuse_by_housing_not_permitted", H_HOUSING, mk_refuse,
	  "not-permitted", NULL },
	{ "broker_op_from_agency", H_CJIT, mk_broker_op, "unknown-op", "op" },
};

Test(frames, errors_of_handlers, .init = setup, .fini = teardown)
{
	json_t	*g, *req, *f;
	size_t	 i;

	/* Fixture: a consent naming PNC C and NOMS X; a message of carat's. */
	g = h_grant_new(H_CJIT, H_BASIC, H_PNC_C);
	json_object_set_new(g, "subject", json_pack("{s:s,s:s}", "pnc",
	    H_PNC_C, "noms", NOMS_X));
	h_assert_op(ub_call(u, H_CARAT, g), "consent-recorded");
	fx_mid = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT));

	for (i = 0; i < sizeof(ecases) / sizeof(ecases[0]); i++) {
		const struct ecase *tc = &ecases[i];

		req = tc->make();
		f = ub_call(u, tc->agency, req);
		cr_assert_not_null(f, "%s: no answer", tc->name);
		cr_expect(h_is_op(f, "error") && h_str(f, "code") != NULL &&
		    strcmp(h_str(f, "code"), tc->code) == 0,
		    "%s: want %s, got %s", tc->name, tc->code, h_dump(f));
		if (tc->field != NULL)
			cr_expect(h_str(f, "field") != NULL &&
			    strcmp(h_str(f, "field"), tc->field) == 0,
			    "%s: want field %s, got %s", tc->name, tc->field,
			    h_dump(f));
		else
			cr_expect(h_get(f, "field") == NULL ||
			    strcmp(h_str(f, "field"), "") == 0,
			    "%s: want no field, got %s", tc->name, h_dump(f));
		/* re names the mid or cid, else the op. */
		if (h_str(req, "mid") != NULL)
			cr_expect_str_eq(h_str(f, "re"), h_str(req, "mid"),
			    "%s", tc->name);
		else if (h_str(req, "cid") != NULL)
			cr_expect_str_eq(h_str(f, "re"), h_str(req, "cid"),
			    "%s", tc->name);
		else
			cr_expect_str_eq(h_str(f, "re"), h_str(req, "op"),
			    "%s", tc->name);
	}
}

/*
 * What batch.c answers without a handler (a frame proto refused, busy,
 * storage-full, an agency no longer valid) goes through reply_err: every
 * code, with re, field and detail at their longest, is a valid frame.
 */
Test(frames, errors_of_every_code_at_full_length, .init = setup,
    .fini = teardown)
{
	struct cc_error	 err;
	json_t		*f;
	int		 code;

	for (code = ERR_MALFORMED; code < ERR__COUNT; code++) {
		memset(&err, 0, sizeof(err));
		err.code = code;
		memset(err.re, 'r', sizeof(err.re) - 1);
		memset(err.field, 'f', sizeof(err.field) - 1);
		memset(err.detail, 'd', sizeof(err.detail) - 1);
		cr_assert_eq(reply_err(&u->b, (const uint8_t *)H_CJIT,
		    strlen(H_CJIT), &err), 0);
		f = only_frame(H_CJIT, "error");
		cr_expect_str_eq(h_str(f, "code"), cc_err_name(code));
		cr_expect_eq(strlen(h_str(f, "re")), sizeof(err.re) - 1);
		cr_expect_eq(strlen(h_str(f, "field")), sizeof(err.field) - 1);
		cr_expect_eq(strlen(h_str(f, "detail")),
		    sizeof(err.detail) - 1);
	}
}

/* What proto refuses is answered as batch.c answers it. */
Test(frames, errors_of_refused_frames, .init = setup, .fini = teardown)
{
	static const struct {
		enum cc_op	 op;
		const char	*json, *code, *field;
	} rows[] = {
		{ OP_ACK, "{\"dseq\": \"one\"}", "invalid-field", "dseq" },
		{ OP_HELLO, "{\"agent\": \"a\", \"colour\": 1}",
		  "unknown-field", "colour" },
		{ OP_TRACK, "{}", "missing-field", "mid" },
		{ OP_HELLO, "[1]", "malformed", NULL },
	};
	struct cc_error	 err;
	struct cc_msg	*m;
	json_t		*f;
	size_t		 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		cr_assert_eq(proto_from_json(rows[i].op, rows[i].json,
		    strlen(rows[i].json), &m, &err), -1, "%s", rows[i].json);
		cr_assert_eq(reply_err(&u->b, (const uint8_t *)H_CJIT,
		    strlen(H_CJIT), &err), 0);
		f = only_frame(H_CJIT, "error");
		cr_expect_str_eq(h_str(f, "code"), rows[i].code, "%s",
		    h_dump(f));
		if (rows[i].field != NULL)
			cr_expect_str_eq(h_str(f, "field"), rows[i].field,
			    "%s", h_dump(f));
	}
}

/* The pump's frames: a delivery, and receipts withheld and delivered. */
Test(frames, deliver_and_receipts_from_the_pump, .init = setup,
    .fini = teardown)
{
	const char	*cid, *mid;
	json_t		*f, *all, *answers;
	size_t		 i;

	cid = ub_grant(u, H_CARAT, H_CJIT, H_ALL_CATS, "continuity-of-care",
	    H_PNC_A, true);
	mid = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT "," H_HOUSING));
	(void)ub_online(u, H_CJIT);
	(void)ub_online(u, H_CARAT);
	ub_pump(u);

	f = only_frame(H_CJIT, "deliver");
	cr_expect_str_eq(h_str(f, "mid"), mid);
	cr_expect_str_eq(h_str(f, "from"), H_CARAT);
	cr_expect_str_eq(h_str(f, "type"), "release-plan");
	cr_expect_str_eq(h_str(f, "purpose"), "continuity-of-care");
	cr_expect_str_eq(h_str(f, "area"), H_AREA);
	cr_expect_str_eq(h_str(f, "subject.pnc"), H_PNC_A);
	cr_expect_str_eq(h_str(f, "body.person.family_name"), "Example");
	cr_expect_str_eq(h_str(f, "consent.cid"), cid);
	cr_expect_eq(h_int(f, "consent.version"), 1);
	cr_expect(h_set_eq(h_get(f, "withheld_categories"), ""), "%s",
	    h_dump(f));
	cr_expect_gt(h_int(f, "dseq"), 0);

	f = only_frame(H_CARAT, "receipt");
	cr_expect_str_eq(h_str(f, "mid"), mid);
	cr_expect_str_eq(h_str(f, "agency"), H_HOUSING);
	cr_expect_str_eq(h_str(f, "state"), "withheld");
	cr_expect_str_eq(h_str(f, "reason"), "no-consent");
	cr_expect_not_null(h_str(f, "at"));

	/* The delivery acked: the sender's receipt says delivered. */
	cr_expect_null(ub_callf(u, H_CJIT, "{\"op\": \"ack\", \"dseq\": %lld}",
	    h_int(json_array_get(ub_queue(u, H_CJIT), 0), "dseq")));
	ub_pump(u);
	all = ub_frames(u, H_CARAT);
	cr_assert_eq(json_array_size(all), 1, "%s", h_dump(all));
	f = json_array_get(all, 0);
	h_assert_op(f, "receipt");
	cr_expect_str_eq(h_str(f, "state"), "delivered");
	cr_expect_null(h_get(f, "reason"));

	/* A withdrawal purges a queued delivery: receipt purged. */
	mid = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT));
	/* Called once: json_array_foreach evaluates its array each step. */
	answers = ub_calls(u, H_CJIT, h_withdraw_new(cid, NULL));
	json_array_foreach(answers, i, f)
		h_assert_op(f, "consent-recorded");
	ub_pump(u);
	all = ub_frames(u, H_CARAT);
	/* The first receipt is still unacked: the pump sends only new ones. */
	cr_assert_eq(json_array_size(all), 1, "%s", h_dump(all));
	cr_expect_str_eq(h_str(json_array_get(all, 0), "state"), "purged");
	cr_expect_str_eq(h_str(json_array_get(all, 0), "reason"),
	    "no-consent");
	cr_expect_str_eq(h_str(json_array_get(all, 0), "mid"), mid);
	/* The CJIT, which took the first record, is told (notice.c). */
	f = only_frame(H_CJIT, "notice");
	cr_expect_str_eq(h_str(f, "kind"), "consent-withdrawn");
	cr_expect_str_eq(h_str(f, "consents.0.cid"), cid);
	cr_expect_eq(ub_nout(u), 0);
}

/* ---- the reply builder ---- */

/*
 * A msgpack map header is 1 byte up to 15 entries, 3 up to 65,535, else
 * 5: the builder writes it last, into room it kept in front.
 */
Test(frames, reply_map_header_sizes, .init = setup, .fini = teardown)
{
	static const struct {
		uint32_t	n;		/* keys, v and op included */
		uint8_t		hdr[5];
		size_t		hlen;
	} rows[] = {
		{ 2, { 0x82 }, 1 },
		{ 15, { 0x8f }, 1 },
		{ 16, { 0xde, 0x00, 0x10 }, 3 },
		{ 65535, { 0xde, 0xff, 0xff }, 3 },
		{ 65536, { 0xdf, 0x00, 0x01, 0x00, 0x00 }, 5 },
		{ 70000, { 0xdf, 0x00, 0x01, 0x11, 0x70 }, 5 },
	};
	msgpack_unpacked	 up;
	struct reply		 rp;
	struct outmsg		*o;
	char			 key[16];
	size_t			 i, off;
	uint32_t		 k;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		reply_begin(&rp, "status");
		for (k = 2; k < rows[i].n; k++) {
			snprintf(key, sizeof(key), "f%u", k);
			reply_u64(&rp, key, k);
		}
		cr_assert_eq(reply_send(&u->b, (const uint8_t *)"x", 1, &rp),
		    0);
		cr_assert_eq(u->b.nout, 1);
		o = &u->b.out[0];
		cr_expect_eq(memcmp(o->data + o->off, rows[i].hdr,
		    rows[i].hlen), 0, "%u keys: header %02x %02x %02x",
		    rows[i].n, (uint8_t)o->data[o->off],
		    (uint8_t)o->data[o->off + 1],
		    (uint8_t)o->data[o->off + 2]);

		msgpack_unpacked_init(&up);
		off = 0;
		cr_assert_eq(msgpack_unpack_next(&up, o->data + o->off,
		    o->len, &off), MSGPACK_UNPACK_SUCCESS);
		cr_expect_eq(off, o->len, "%u keys: trailing bytes", rows[i].n);
		cr_assert_eq(up.data.type, MSGPACK_OBJECT_MAP);
		cr_assert_eq(up.data.via.map.size, rows[i].n);
		cr_expect_eq(up.data.via.map.ptr[0].key.via.str.size, 1);
		cr_expect_eq(memcmp(up.data.via.map.ptr[0].key.via.str.ptr,
		    "v", 1), 0);
		cr_expect_eq(up.data.via.map.ptr[1].val.via.str.size, 6);
		for (k = 2; k < rows[i].n; k++) {
			const msgpack_object_kv *kv = &up.data.via.map.ptr[k];

			snprintf(key, sizeof(key), "f%u", k);
			if (kv->key.via.str.size != strlen(key) ||
			    memcmp(kv->key.via.str.ptr, key,
			    strlen(key)) != 0 ||
			    kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
			    kv->val.via.u64 != k)
				cr_assert_fail("%u keys: key %u wrong",
				    rows[i].n, k);
		}
		msgpack_unpacked_destroy(&up);
		out_drop(&u->b, 0);
	}
}

Test(frames, reply_whose_packing_failed_is_refused, .init = setup,
    .fini = teardown)
{
	struct reply	rp;

	reply_begin(&rp, "accepted");
	reply_str(&rp, "mid", "00000000-0000-4000-8000-000000000000");
	reply_check(&rp, -1);
	reply_u64(&rp, "after", 1);
	cr_expect_eq(reply_send(&u->b, (const uint8_t *)H_CJIT,
	    strlen(H_CJIT), &rp), STORE_NOMEM);
	cr_expect_eq(ub_nout(u), 0);

	/* And one that did not fail goes out. */
	reply_begin(&rp, "accepted");
	reply_str(&rp, "mid", "00000000-0000-4000-8000-000000000000");
	cr_expect_eq(reply_send(&u->b, (const uint8_t *)H_CJIT,
	    strlen(H_CJIT), &rp), 0);
	(void)only_frame(H_CJIT, "accepted");
}
