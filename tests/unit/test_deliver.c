/*
 * test_deliver.c - broker/deliver.c, the delivery pump: dseq order and
 * the window, the decision taken again at send time, stripping by consent
 * and policy, agencies no longer valid, and stored payloads that cannot
 * be opened; on a real broker without sockets (tests/lib/unitbroker.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>
#include <uuid/uuid.h>

#include "../lib/unitbroker.h"

#define CONT		"continuity-of-care"
#define BODY_HSTATUS	"{\"person\": {\"family_name\": \"Example\"}, " \
			"\"effective_date\": \"2026-01-10\", " \
			"\"accommodation_type\": \"hostel\"}"

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

static void
ack(const char *agency, long long dseq)
{
	cr_assert_null(ub_callf(u, agency, "{\"op\": \"ack\", \"dseq\": %lld}",
	    dseq));
}

/* A consent-grant, explicit when it names special categories. */
static json_t *
grant(const char *recipients, const char *categories, const char *pnc)
{
	json_t	*g = h_grant_new(recipients, categories, pnc);

	if (strstr(categories, "treatment-clinical") != NULL ||
	    strstr(categories, "narrative") != NULL)
		json_object_set_new(g, "explicit", json_true());
	h_assert_op(ub_call(u, H_CARAT, g), "consent-recorded");
	return g;
}

/* The delivery state, receipt, audit entry and queue of one delivery
 * taken back at send time. */
static void
expect_taken_back(const char *what, uint64_t a0, const char *mid,
    const char *agency, const char *reason)
{
	char	 want[64];
	json_t	*q = ub_queue(u, H_CARAT), *e;
	size_t	 i, n = 0;

	snprintf(want, sizeof(want), "purged/%s", reason);
	ub_expect_rstate(u, what, mid, agency, want);
	json_array_foreach(q, i, e)
		n += strcmp(h_str(e, "kind"), "receipt") == 0 &&
		    strcmp(h_str(e, "mid"), mid) == 0 &&
		    strcmp(h_str(e, "agency"), agency) == 0 &&
		    strcmp(h_str(e, "state"), "purged") == 0 &&
		    strcmp(h_str(e, "reason"), reason) == 0;
	cr_expect_eq(n, 1, "%s: sender's receipts %s", what, h_dump(q));
	cr_expect_eq(ub_audit_count(u, a0, "purged", mid, agency, reason), 1,
	    "%s: audit", what);
	q = ub_queue(u, agency);
	json_array_foreach(q, i, e)
		cr_expect(strcmp(h_str(e, "mid"), mid) != 0,
		    "%s: still queued for %s", what, agency);
}

/* A housing-status about pnc, to one agency. */
static json_t *
hstatus(const char *pnc, const char *to)
{
	char	mid[37], now[32];

	return h_jsonf("{\"op\": \"publish\", \"mid\": \"%s\", \"type\": "
	    "\"housing-status\", \"purpose\": \"housing-support\", "
	    "\"subject\": {\"pnc\": \"%s\"}, \"area\": \"%s\", "
	    "\"to\": [\"%s\"], \"created\": \"%s\", \"body\": %s}",
	    h_uuid(mid), pnc, H_AREA, to, h_time(0, now), BODY_HSTATUS);
}

/*
 * Per recipient, in dseq order (deliveries and receipts alike), at most
 * `window` unacked; the pump stops there until acks come.
 */
Test(deliver, dseq_order_within_the_window, .init = setup,
    .fini = teardown)
{
	static const struct {
		const char	*acks;		/* frames acked first: "0,2" */
		const char	*want;		/* frames sent: "m3,m4" */
		unsigned	 inflight;
	} steps[] = {
		{ "", "m0,m1,r", 3 },		/* a receipt between */
		{ "", "", 3 },			/* the window is full */
		{ "m1", "m2", 3 },
		{ "m0,r", "m3,m4", 3 },
		{ "m2,m3,m4", "", 0 },		/* nothing left */
	};
	const char	*mid[5];
	json_t		*sent = h_keep(json_object()), *all, *f, *acks;
	struct peer	*p;
	long long	 last = 0;
	size_t		 i, j;

	u->b.conf.window = 3;
	(void)grant(H_CJIT, H_BASIC, H_PNC_A);
	for (i = 0; i < 5; i++) {
		mid[i] = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT));
		/* cjit's own message, withheld: a receipt in its queue. */
		if (i == 1)
			(void)ub_publish(u, H_CJIT, hstatus(H_PNC_A, H_LA));
	}
	p = ub_online(u, H_CJIT);

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		acks = h_csv(steps[i].acks);
		json_array_foreach(acks, j, f)
			ack(H_CJIT, json_integer_value(json_object_get(sent,
			    json_string_value(f))));
		ub_pump(u);
		all = ub_frames(u, H_CJIT);
		cr_assert_eq(json_array_size(all),
		    json_array_size(h_csv(steps[i].want)), "step %zu: %s", i,
		    h_dump(all));
		json_array_foreach(all, j, f) {
			const char *w = json_string_value(json_array_get(
			    h_csv(steps[i].want), j));

			if (w[0] == 'r') {
				h_assert_op(f, "receipt");
				cr_expect_str_eq(h_str(f, "agency"), H_LA);
			} else {
				h_assert_op(f, "deliver");
				cr_expect_str_eq(h_str(f, "mid"),
				    mid[w[1] - '0'], "step %zu frame %zu", i,
				    j);
			}
			cr_expect_gt(h_int(f, "dseq"), last, "step %zu: dseq "
			    "order", i);
			last = h_int(f, "dseq");
			json_object_set_new(sent, w, json_integer(last));
		}
		cr_expect_eq(p->inflight, steps[i].inflight, "step %zu: %u "
		    "in flight", i, p->inflight);
	}
	cr_expect_not(p->dirty);
	cr_expect_eq(json_array_size(ub_queue(u, H_CJIT)), 0);
}

/* The frames of `all` that are op; the others (notices of earlier rows'
 * withdrawals) left out. */
static json_t *
only_op(json_t *all, const char *op)
{
	json_t	*out = h_keep(json_array()), *e;
	size_t	 i;

	json_array_foreach(all, i, e)
		if (h_is_op(e, op))
			json_array_append(out, e);
	return out;
}

/* ---- the decision again at send time ---- */

/* The consent withdrawn behind the router's back: its new version
 * written as handle_consent writes it, without the re-check. */
static void
withdraw_in_store(const char *cidtext)
{
	struct consent		c;
	struct consent_hdr	h;
	char			recip[4096];
	uint8_t			deny[4096], cid[16];

	cr_assert_eq(uuid_parse(cidtext, cid), 0);
	cr_assert_eq(store_consent_get(u->b.st, u->txn, cid, &c), 0);
	h = c.h;
	cr_assert_leq(h.recip_len, sizeof(recip));
	cr_assert_leq(h.deny_len, sizeof(deny));
	memcpy(recip, c.recip, h.recip_len);
	memcpy(deny, c.deny, h.deny_len);
	h.version++;
	h.state = CS_WITHDRAWN;
	h.recorded_ms = u->b.now;
	cr_assert_eq(store_consent_put(u->b.st, u->txn, cid, &h, recip, deny,
	    "x", 1), 0);
}

Test(deliver, decided_again_at_send_time, .init = setup, .fini = teardown)
{
	static const struct {
		const char	*name;
		int		 until_s;	/* consent's valid_until */
		bool		 withdraw;	/* in the store, no re-check */
		int64_t		 later_ms;	/* clock moved on */
		bool		 sent;
	} rows[] = {
		{ "still_permitted", 300 * 86400, false, 0, true },
		{ "consent_period_ended", 2, false, 10000, false },
		{ "withdrawn_after_queueing", 300 * 86400, true, 0, false },
	};
	struct peer	*p;
	json_t		*g, *all, *e;
	const char	*mid;
	char		 until[32];
	uint64_t	 a0;
	size_t		 i, j;

	p = ub_online(u, H_CJIT);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		g = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
		json_object_set_new(g, "valid_until",
		    json_string(h_time(rows[i].until_s, until)));
		h_assert_op(ub_call(u, H_CARAT, g), "consent-recorded");
		mid = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT));
		ub_expect_rstate(u, rows[i].name, mid, H_CJIT, "queued");
		if (rows[i].withdraw)
			withdraw_in_store(h_str(g, "cid"));
		ub_advance(u, rows[i].later_ms);
		a0 = ub_audit_next(u);
		p->dirty = true;
		ub_pump(u);
		all = ub_frames(u, H_CJIT);
		/* The last row's withdrawal told the CJIT: taken. */
		json_array_foreach(only_op(all, "notice"), j, e)
			ack(H_CJIT, h_int(e, "dseq"));
		all = only_op(all, "deliver");
		if (rows[i].sent) {
			cr_expect_eq(json_array_size(all), 1, "%s: %s",
			    rows[i].name, h_dump(all));
			ack(H_CJIT, h_int(json_array_get(all, 0), "dseq"));
			/* Ended, so that the next rows decide alone. */
			h_assert_op(ub_call(u, H_CARAT,
			    h_withdraw_new(h_str(g, "cid"), NULL)),
			    "consent-recorded");
			continue;
		}
		cr_expect_eq(json_array_size(all), 0, "%s: sent %s",
		    rows[i].name, h_dump(all));
		cr_expect_eq(p->inflight, 0, "%s", rows[i].name);
		expect_taken_back(rows[i].name, a0, mid, H_CJIT,
		    "no-consent");
	}
}

/* ---- stripping ---- */

Test(deliver, stripping_follows_consent_and_policy, .init = setup,
    .fini = teardown)
{
	static const struct {
		const char	*name, *agency;
		int		 consent;	/* which grant below */
		const char	*withheld;	/* withheld_categories */
		const char	*present, *absent;	/* paths */
		unsigned	 version;	/* of the consent relied on */
	} rows[] = {
		{ "cjit_receives_all", H_CJIT, 0, "",
		  "subject.pnc,body.person,body.dose_mg,body.notes,"
		  "body.release_address", "", 1 },
		{ "probation_no_clinical_no_narrative", H_PROBATION, 0,
		  "treatment-clinical,narrative",
		  "subject.pnc,body.person,body.in_treatment,"
		  "body.release_address,body.offender_manager",
		  "body.dose_mg,body.primary_substance,"
		  "body.substitute_medication,body.notes", 1 },
		{ "housing_no_identifiers_no_clinical", H_HOUSING, 0,
		  "cj-identifiers,treatment-clinical",
		  "body.person,body.notes,body.release_address,"
		  "body.release_date", "subject.pnc,body.dose_mg", 1 },
		{ "la_no_identifiers_no_clinical", H_LA, 0,
		  "cj-identifiers,treatment-clinical",
		  "body.person,body.notes,body.housing_actions",
		  "subject.pnc,body.primary_substance", 1 },
		{ "consent_narrower_than_policy", H_CJIT, 1,
		  "cj-identifiers,treatment-clinical,housing-address,"
		  "narrative",
		  "body.person,body.release_date,body.accommodation_need,"
		  "body.offender_manager,body.in_treatment",
		  "subject.pnc,body.release_address,body.dose_mg,body.notes",
		  1 },
		/* Amended to fewer categories after it was queued. */
		{ "consent_narrowed_after_queueing", H_CJIT, 2,
		  "cj-identifiers,treatment-clinical,housing-address,"
		  "narrative", "body.person,body.housing_actions",
		  "subject.pnc,body.release_address,body.notes", 2 },
	};
	static const char *const agencies[] = {
		H_CJIT, H_PROBATION, H_HOUSING, H_LA
	};
	json_t		*sent = h_keep(json_object()), *f, *g, *amend, *path;
	const char	*cid[3];
	size_t		 i, j, k;

	cid[0] = h_str(grant(H_CJIT "," H_PROBATION "," H_HOUSING "," H_LA,
	    H_ALL_CATS, H_PNC_A), "cid");
	cid[1] = h_str(grant(H_CJIT, H_BASIC, H_PNC_B), "cid");
	g = grant(H_CJIT, H_ALL_CATS, H_PNC_C);
	cid[2] = h_str(g, "cid");
	(void)ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT "," H_PROBATION
	    "," H_HOUSING "," H_LA));
	(void)ub_publish(u, H_CARAT, ub_plan(H_PNC_B, H_CJIT));
	(void)ub_publish(u, H_CARAT, ub_plan(H_PNC_C, H_CJIT));
	/* The third consent amended: still permitted, fewer categories. */
	amend = h_keep(json_deep_copy(g));
	json_object_set(amend, "categories", h_csv(H_BASIC));
	json_object_set_new(amend, "explicit", json_false());
	f = ub_call(u, H_CARAT, amend);
	h_assert_op(f, "consent-recorded");
	cr_assert_eq(h_int(f, "version"), 2);

	for (i = 0; i < sizeof(agencies) / sizeof(agencies[0]); i++)
		(void)ub_online(u, agencies[i]);
	ub_pump(u);
	for (i = 0; i < sizeof(agencies) / sizeof(agencies[0]); i++)
		json_object_set(sent, agencies[i], ub_frames(u, agencies[i]));

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		f = NULL;
		json_array_foreach(json_object_get(sent, rows[i].agency), j, g)
			if (h_str(g, "consent.cid") != NULL && strcmp(h_str(g,
			    "consent.cid"), cid[rows[i].consent]) == 0)
				f = g;
		cr_assert_not_null(f, "%s: no delivery in %s", rows[i].name,
		    h_dump(json_object_get(sent, rows[i].agency)));
		h_assert_op(f, "deliver");
		cr_expect(h_set_eq(h_get(f, "withheld_categories"),
		    rows[i].withheld), "%s: withheld %s", rows[i].name,
		    h_dump(h_get(f, "withheld_categories")));
		json_array_foreach(h_csv(rows[i].present), k, path)
			cr_expect_not_null(h_get(f, json_string_value(path)),
			    "%s: %s stripped", rows[i].name,
			    json_string_value(path));
		json_array_foreach(h_csv(rows[i].absent), k, path)
			cr_expect_null(h_get(f, json_string_value(path)),
			    "%s: %s sent", rows[i].name,
			    json_string_value(path));
		cr_expect_eq(h_int(f, "consent.version"), rows[i].version,
		    "%s", rows[i].name);
	}
}

/* ---- who gets nothing ---- */

/* DESIGN §3: an agency no longer valid gets nothing; what waits for it
 * stays until route_purge_invalid takes it back. */
Test(deliver, agency_no_longer_valid_gets_nothing, .init = setup,
    .fini = teardown)
{
	struct peer	*cjit, *prob;
	const char	*mid;
	json_t		*all;

	(void)grant(H_CJIT "," H_PROBATION, H_BASIC, H_PNC_A);
	mid = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT "," H_PROBATION));
	ub_revoke(u, H_CJIT);
	cjit = ub_online(u, H_CJIT);
	prob = ub_online(u, H_PROBATION);
	ub_pump(u);

	all = ub_frames(u, H_CJIT);
	cr_expect_eq(json_array_size(all), 0, "sent %s", h_dump(all));
	cr_expect_eq(cjit->inflight, 0);
	cr_expect_not(cjit->dirty);
	ub_expect_rstate(u, "revoked", mid, H_CJIT, "queued");
	cr_expect_eq(json_array_size(ub_queue(u, H_CJIT)), 1);
	all = ub_frames(u, H_PROBATION);
	cr_expect_eq(json_array_size(all), 1, "%s", h_dump(all));
	cr_expect_eq(prob->inflight, 1);
}

/*
 * Flip the last byte (the GCM tag) of a message's sealed frame behind the
 * store's back, as a bad sector would: through LMDB itself, with the
 * store closed (one process must not open an environment twice).
 */
static void
flip_sealed_byte(const char *midtext)
{
	MDB_env		*e;
	MDB_txn		*t;
	MDB_dbi		 dbi;
	MDB_val		 k, v;
	uint8_t		 mid[16], *copy;
	char		 err[512];

	cr_assert_eq(uuid_parse(midtext, mid), 0);
	ub_commit(u);
	store_abort(u->txn);
	u->txn = NULL;
	store_close(&u->b.st);

	cr_assert_eq(mdb_env_create(&e), 0);
	cr_assert_eq(mdb_env_set_maxdbs(e, 16), 0);
	cr_assert_eq(mdb_env_set_mapsize(e, u->b.conf.map_size_mb << 20), 0);
	cr_assert_eq(mdb_env_open(e, u->b.conf.data, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(e, NULL, 0, &t), 0);
	cr_assert_eq(mdb_dbi_open(t, "msg", 0, &dbi), 0);
	k.mv_size = 16;
	k.mv_data = mid;
	cr_assert_eq(mdb_get(t, dbi, &k, &v), 0);
	cr_assert_gt(v.mv_size, sizeof(struct msg_hdr) + SEAL_OVERHEAD);
	cr_assert_not_null(copy = malloc(v.mv_size));
	memcpy(copy, v.mv_data, v.mv_size);
	copy[v.mv_size - 1] ^= 0x01;
	v.mv_data = copy;
	cr_assert_eq(mdb_put(t, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(t), 0);
	free(copy);
	mdb_env_close(e);

	cr_assert_eq(store_open(&u->b.st, u->b.conf.data,
	    u->b.conf.map_size_mb, false, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(u->b.st, true, &u->txn), 0);
}

/* A frame that opens but is no message (sealed properly). */
static void
seal_garbage(const char *midtext)
{
	struct msg_hdr	h;
	uint8_t		mid[16];

	cr_assert_eq(uuid_parse(midtext, mid), 0);
	cr_assert_eq(store_msg_get(u->b.st, u->txn, mid, &h, NULL), 0);
	cr_assert_eq(store_msg_put(u->b.st, u->txn, mid, &h, "\xc1", 1), 0);
}

/* Rule 9: a stored payload that cannot be opened is purged with
 * store-unavailable, never guessed at; the rest still goes out. */
Test(deliver, unreadable_payload_purged_store_unavailable, .init = setup,
    .fini = teardown)
{
	static const struct {
		const char	*name;
		void		(*damage)(const char *mid);
	} rows[] = {
		{ "sealed_byte_flipped", flip_sealed_byte },
		{ "sealed_frame_not_msgpack", seal_garbage },
		{ "intact", NULL },
	};
	const char	*mid[3];
	struct peer	*p;
	json_t		*all;
	uint64_t	 a0;
	size_t		 i;

	(void)grant(H_CJIT, H_BASIC, H_PNC_A);
	for (i = 0; i < 3; i++)
		mid[i] = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT));
	/* A pump with nobody online forgets the trees the publishes kept,
	 * so that the stored frames are read. */
	ub_pump(u);
	for (i = 0; i < 3; i++)
		if (rows[i].damage != NULL)
			rows[i].damage(mid[i]);
	a0 = ub_audit_next(u);
	p = ub_online(u, H_CJIT);
	ub_pump(u);

	all = ub_frames(u, H_CJIT);
	cr_assert_eq(json_array_size(all), 1, "%s", h_dump(all));
	cr_expect_str_eq(h_str(json_array_get(all, 0), "mid"), mid[2]);
	cr_expect_eq(p->inflight, 1);
	for (i = 0; i < 3; i++)
		if (rows[i].damage != NULL)
			expect_taken_back(rows[i].name, a0, mid[i], H_CJIT,
			    "store-unavailable");
	ub_expect_rstate(u, "intact", mid[2], H_CJIT, "queued");
}
