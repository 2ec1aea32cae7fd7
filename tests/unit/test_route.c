/*
 * test_route.c - broker/route.c: who gets a message (route_publish), the
 * re-check after a consent change (route_recheck_subject), the retention
 * sweep (route_sweep) and the purge of agencies no longer valid
 * (route_purge_invalid), on a real broker without sockets
 * (tests/lib/unitbroker.h).  Outcomes are read from the store: delivery
 * states, queues (deliveries and the senders' receipts) and the audit.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <uuid/uuid.h>

#include "route.h"
#include "../lib/unitbroker.h"

#define DAY_MS		86400000LL
#define BRADFORD	"bradford.cjit"		/* a cjit listed in H_AREA2 */
#define NRECIP		100			/* recipients of one message */

#define PLAN		"release-plan"
#define CONT		"continuity-of-care"
#define HSUP		"housing-support"
#define BODY_HANDOVER	"{\"person\": {\"family_name\": \"Example\"}}"
#define BODY_REFERRAL	"{\"person\": {\"family_name\": \"Example\"}, " \
			"\"referral_service\": \"supported-housing\"}"
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

/* A publish of any type; to_csv NULL: to the subscribers. */
static json_t *
record(const char *type, const char *purpose, const char *pnc,
    const char *area, const char *to_csv, const char *body)
{
	char	mid[37], now[32];
	json_t	*m;

	m = h_jsonf("{\"op\": \"publish\", \"mid\": \"%s\", \"type\": \"%s\","
	    " \"purpose\": \"%s\", \"subject\": {\"pnc\": \"%s\"},"
	    " \"area\": \"%s\", \"created\": \"%s\", \"body\": %s}",
	    h_uuid(mid), type, purpose, pnc, area, h_time(0, now), body);
	if (to_csv != NULL)
		json_object_set(m, "to", h_csv(to_csv));
	return m;
}

/* A release plan about pnc that expires in `in_s` seconds. */
static json_t *
plan_expiring(const char *pnc, const char *to_csv, int in_s)
{
	json_t	*m = ub_plan(pnc, to_csv);
	char	 t[32];

	json_object_set_new(m, "expires", json_string(h_time(in_s, t)));
	return m;
}

static void
subscribe(const char *agency, const char *types, const char *areas)
{
	json_t	*req = h_keep(json_pack("{s:s,s:O,s:O}", "op", "subscribe",
	    "types", h_csv(types), "areas", h_csv(areas)));

	h_assert_op(ub_call(u, agency, req), "subscribed");
}

/* How many entries of a queue are of kind (and, for receipts, about
 * agency in state/reason, when given). */
static size_t
nqueued(const char *owner, const char *kind, const char *mid,
    const char *agency, const char *state_reason)
{
	json_t	*q = ub_queue(u, owner), *e;
	size_t	 i, n = 0;
	char	 sr[64];

	json_array_foreach(q, i, e) {
		if (strcmp(h_str(e, "kind"), kind) != 0 ||
		    (mid != NULL && strcmp(h_str(e, "mid"), mid) != 0))
			continue;
		if (agency != NULL && strcmp(h_str(e, "agency"), agency) != 0)
			continue;
		if (state_reason != NULL) {
			snprintf(sr, sizeof(sr), "%s/%s", h_str(e, "state"),
			    h_str(e, "reason"));
			if (strcmp(sr, state_reason) != 0)
				continue;
		}
		n++;
	}
	return n;
}

/* ---- route_publish ---- */

Test(route, to_recipients_decided_one_by_one, .init = setup,
    .fini = teardown)
{
	static const struct {
		const char	*agency;
		const char	*state;		/* delivery state */
		size_t		 queued;	/* deliveries in its queue */
		const char	*receipt;	/* the sender's receipt */
	} rows[] = {
		{ H_CJIT, "queued", 1, NULL },
		{ H_PROBATION, "queued", 1, NULL },
		{ H_HOUSING, "withheld/no-consent", 0, "withheld/no-consent" },
		{ H_REVOKED, "withheld/not-permitted", 0,
		  "withheld/not-permitted" },
		{ H_LA, NULL, 0, NULL },	/* not named */
	};
	const char	*mid;
	uint64_t	 a0;
	size_t		 i;

	(void)ub_grant(u, H_CARAT, H_CJIT "," H_PROBATION, H_BASIC, CONT,
	    H_PNC_A, false);
	a0 = ub_audit_next(u);
	mid = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT "," H_PROBATION
	    "," H_HOUSING "," H_REVOKED));

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ub_expect_rstate(u, "to", mid, rows[i].agency, rows[i].state);
		cr_expect_eq(nqueued(rows[i].agency, "deliver", mid, NULL,
		    NULL), rows[i].queued, "%s", rows[i].agency);
		cr_expect_eq(nqueued(H_CARAT, "receipt", mid, rows[i].agency,
		    rows[i].receipt), rows[i].receipt != NULL ? 1 : 0,
		    "receipt about %s", rows[i].agency);
		cr_expect_eq(ub_audit_count(u, a0, "withheld", mid,
		    rows[i].agency, NULL), rows[i].receipt != NULL ? 1 : 0,
		    "audit of %s", rows[i].agency);
	}
	/* Nothing else: two receipts, two withheld entries. */
	cr_expect_eq(nqueued(H_CARAT, "receipt", NULL, NULL, NULL), 2);
	cr_expect_eq(ub_audit_count(u, a0, "withheld", NULL, NULL, NULL), 2);
	cr_expect_eq(ub_audit_count(u, a0, "withheld", mid, H_HOUSING,
	    "no-consent"), 1);
	cr_expect_eq(ub_audit_count(u, a0, "withheld", mid, H_REVOKED,
	    "not-permitted"), 1);
}

/*
 * Run route_publish straight on a decoded publish, as handle_publish
 * does, after `alter` changed the tree behind proto's back (to reach what
 * validation would refuse).  Returns whether anything was queued.
 */
static bool
route_altered(json_t *pub, const char *sender, enum cc_rtype rtype,
    enum cc_purpose purpose, void (*alter)(struct cc_msg *))
{
	struct cc_error		 err;
	struct cc_msg		*m;
	struct cc_subject	 subj;
	struct msg_hdr		 h;
	json_t			*fields;
	const char		*mid = h_str(pub, "mid");
	char			*text;
	uint8_t			 id[16];
	bool			 queued = false;

	fields = h_keep(json_deep_copy(pub));
	json_object_del(fields, "op");
	cr_assert_not_null(text = h_keep_str(json_dumps(fields, 0)));
	cr_assert_eq(proto_from_json(OP_PUBLISH, text, strlen(text), &m,
	    &err), 0, "%s", err.detail);
	alter(m);
	ub_tick(u);
	memset(&h, 0, sizeof(h));
	snprintf(h.sender, sizeof(h.sender), "%s", sender);
	h.rtype = rtype;
	h.purpose = purpose;
	h.accepted_ms = u->b.now;
	h.expires_ms = u->b.now + DAY_MS;
	cr_assert_eq(proto_subject(m, &subj), 0);
	cr_assert_eq(store_subject_ps(u->b.st, &subj, &h.subj), 0);
	cr_assert_eq(uuid_parse(mid, id), 0);
	cr_assert_eq(route_publish(&u->b, u->txn, id, mid, m, sender, &h,
	    1000, &queued), 0);
	proto_msg_destroy(&m);
	return queued;
}

/* `to` reads [a, b, a, b] instead of [a, b, c, d]. */
static void
repeat_to(struct cc_msg *m)
{
	msgpack_object	*to = (msgpack_object *)proto_get(m, "to");

	cr_assert_eq(to->via.array.size, 4);
	to->via.array.ptr[2] = to->via.array.ptr[0];
	to->via.array.ptr[3] = to->via.array.ptr[1];
}

/* `to` renamed, so that proto_get finds none. */
static void
hide_to(struct cc_msg *m)
{
	msgpack_object		*to = (msgpack_object *)proto_get(m, "to");
	msgpack_object_kv	*kv;

	cr_assert_not_null(to);
	kv = (msgpack_object_kv *)((char *)to -
	    offsetof(msgpack_object_kv, val));
	kv->key.via.str.ptr = "tx";
	cr_assert_null(proto_get(m, "to"));
}

/* Validation refuses a `to` that repeats a name; route_publish must not
 * rely on it. */
Test(route, name_given_twice_is_one_recipient, .init = setup,
    .fini = teardown)
{
	struct cc_error	 err;
	struct cc_msg	*m;
	json_t		*pub, *fields;
	const char	*mid;
	char		*text;
	uint64_t	 a0;

	(void)ub_grant(u, H_CARAT, H_CJIT, H_BASIC, CONT, H_PNC_A, false);

	/* What an agent would send is refused at the door. */
	pub = ub_plan(H_PNC_A, H_CJIT "," H_CJIT);
	fields = h_keep(json_deep_copy(pub));
	json_object_del(fields, "op");
	cr_assert_not_null(text = h_keep_str(json_dumps(fields, 0)));
	cr_expect_eq(proto_from_json(OP_PUBLISH, text, strlen(text), &m,
	    &err), -1);
	cr_expect_eq(err.code, ERR_INVALID_FIELD, "%s", cc_err_name(err.code));

	/* The router, handed a repeated name all the same. */
	pub = ub_plan(H_PNC_A, H_CJIT "," H_HOUSING "," H_LA "," H_PROBATION);
	mid = h_str(pub, "mid");
	a0 = ub_audit_next(u);
	cr_expect(route_altered(pub, H_CARAT, RT_RELEASE_PLAN,
	    PURPOSE_CONTINUITY_OF_CARE, repeat_to));
	cr_expect_eq(nqueued(H_CJIT, "deliver", mid, NULL, NULL), 1);
	cr_expect_eq(nqueued(H_HOUSING, "deliver", mid, NULL, NULL), 0);
	cr_expect_eq(nqueued(H_CARAT, "receipt", mid, NULL, NULL), 1);
	cr_expect_eq(nqueued(H_CARAT, "receipt", mid, H_HOUSING,
	    "withheld/no-consent"), 1);
	cr_expect_eq(ub_audit_count(u, a0, "withheld", mid, NULL, NULL), 1);
	ub_expect_rstate(u, "twice", mid, H_CJIT, "queued");
	ub_expect_rstate(u, "twice", mid, H_HOUSING, "withheld/no-consent");
	ub_expect_rstate(u, "twice", mid, H_LA, NULL);
	ub_expect_rstate(u, "twice", mid, H_PROBATION, NULL);
}

static const struct h_env_opts bradford_opts = {
	.agencies = BRADFORD ":cjit:" H_AREA2,
};

static void
setup_bradford(void)
{
	u = ub_new(&bradford_opts);
}

/* Rule 7: subscriptions only nominate; by type and area, never the
 * sender.  Everyone has consent, so only nomination decides. */
Test(route, subscriptions_nominate_matching_type_and_area_never_sender,
    .init = setup_bradford, .fini = teardown)
{
	static const struct {
		const char	*agency, *types, *areas;
		const char	*leeds, *bradford;	/* state per publish */
	} rows[] = {
		{ H_CJIT, PLAN, H_AREA, "queued", NULL },
		{ H_PROBATION, "housing-status", H_AREA, NULL, NULL },
		{ H_HOUSING, PLAN ",housing-status", H_AREA, "queued", NULL },
		{ H_LA, NULL, NULL, NULL, NULL },	/* no subscription */
		{ H_CARAT, PLAN, H_AREA, NULL, NULL },	/* the sender */
		{ BRADFORD, PLAN, H_AREA2, NULL, "queued" },
	};
	const char	*leeds, *bradford;
	json_t		*m;
	size_t		 i;

	(void)ub_grant(u, H_CARAT, H_CJIT "," H_PROBATION "," H_HOUSING ","
	    H_LA "," H_CARAT "," BRADFORD, H_BASIC, CONT, H_PNC_A, false);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (rows[i].types != NULL)
			subscribe(rows[i].agency, rows[i].types,
			    rows[i].areas);
	leeds = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, NULL));
	/* A record concerning Bradford, from a Leeds prison. */
	m = ub_plan(H_PNC_A, NULL);
	json_object_set_new(m, "area", json_string(H_AREA2));
	bradford = ub_publish(u, H_CARAT, m);

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ub_expect_rstate(u, "leeds", leeds, rows[i].agency,
		    rows[i].leeds);
		ub_expect_rstate(u, "bradford", bradford, rows[i].agency,
		    rows[i].bradford);
	}
}

/* Handover and referral go to `to` alone: subscriptions to them, and to
 * every type, nominate nothing. */
Test(route, direct_only_types_ignore_subscriptions, .init = setup,
    .fini = teardown)
{
	static const struct {
		const char	*name, *sender, *type, *purpose, *body;
	} rows[] = {
		{ "handover", H_CARAT, "handover", CONT, BODY_HANDOVER },
		{ "referral", H_CJIT, "referral", HSUP, BODY_REFERRAL },
	};
	static const char *const subscribers[] = {
		H_CJIT, H_PROBATION, H_HOUSING, H_CARAT
	};
	const char	*mid;
	json_t		*pub;
	size_t		 i, j;

	(void)ub_grant(u, H_CARAT, H_CJIT "," H_PROBATION "," H_HOUSING ","
	    H_LA "," H_CARAT, H_BASIC, CONT "," HSUP, H_PNC_A, false);
	for (j = 0; j < sizeof(subscribers) / sizeof(subscribers[0]); j++)
		subscribe(subscribers[j], "handover,referral,release-plan,"
		    "housing-status", H_AREA);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		mid = ub_publish(u, rows[i].sender, record(rows[i].type,
		    rows[i].purpose, H_PNC_A, H_AREA, H_LA, rows[i].body));
		ub_expect_rstate(u, rows[i].name, mid, H_LA, "queued");
		for (j = 0; j < sizeof(subscribers) / sizeof(subscribers[0]);
		    j++)
			ub_expect_rstate(u, rows[i].name, mid,
			    subscribers[j], NULL);
	}

	/*
	 * Validation never lets a direct-only type through without `to`;
	 * the router does not count on it.  A handover whose `to` it cannot
	 * see goes to no one; a release plan so altered, to the subscribers.
	 */
	pub = record("handover", CONT, H_PNC_A, H_AREA, H_LA, BODY_HANDOVER);
	cr_expect_not(route_altered(pub, H_CARAT, RT_HANDOVER,
	    PURPOSE_CONTINUITY_OF_CARE, hide_to));
	for (j = 0; j < sizeof(subscribers) / sizeof(subscribers[0]); j++)
		ub_expect_rstate(u, "handover without to", h_str(pub, "mid"),
		    subscribers[j], NULL);
	ub_expect_rstate(u, "handover without to", h_str(pub, "mid"), H_LA,
	    NULL);
	pub = ub_plan(H_PNC_A, H_LA);
	cr_expect(route_altered(pub, H_CARAT, RT_RELEASE_PLAN,
	    PURPOSE_CONTINUITY_OF_CARE, hide_to));
	ub_expect_rstate(u, "plan without to", h_str(pub, "mid"), H_CJIT,
	    "queued");
	ub_expect_rstate(u, "plan without to", h_str(pub, "mid"), H_LA, NULL);
}

/* ---- route_recheck_subject ---- */

/*
 * Rule 5: a withdrawal purges exactly the queued deliveries it no longer
 * covers (sent-but-unacked ones too), each sender told `purged`; what
 * another consent covers, and other subjects, stay.
 */
Test(route, withdrawal_purges_exactly_what_is_no_longer_permitted,
    .init = setup, .fini = teardown)
{
	const char	*c1, *m1, *m2, *m3;
	struct peer	*cjit;
	struct msg_hdr	 h;
	struct cc_subject subj;
	struct subject_ps ps;
	uint8_t		 id[16];
	uint64_t	 a0;
	size_t		 i, nrc;
	json_t		*f, *answers;
	const struct {
		const char	**mid;
		const char	*agency, *state;
	} rows[] = {
		{ &m1, H_CJIT, "purged/no-consent" },
		{ &m1, H_PROBATION, "purged/no-consent" },
		{ &m1, H_HOUSING, "queued" },		/* consent 2 */
		{ &m2, H_LA, "purged/no-consent" },
		{ &m3, H_CJIT, "queued" },		/* another subject */
	};

	c1 = ub_grant(u, H_CARAT, H_CJIT "," H_PROBATION "," H_LA, H_BASIC,
	    CONT "," HSUP, H_PNC_A, false);
	(void)ub_grant(u, H_CARAT, H_HOUSING, H_BASIC, CONT, H_PNC_A, false);
	(void)ub_grant(u, H_CARAT, H_CJIT, H_BASIC, CONT, H_PNC_B, false);
	m1 = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT "," H_PROBATION
	    "," H_HOUSING));
	m2 = ub_publish(u, H_CJIT, record("housing-status", HSUP, H_PNC_A,
	    H_AREA, H_LA, BODY_HSTATUS));
	m3 = ub_publish(u, H_CARAT, ub_plan(H_PNC_B, H_CJIT));
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ub_expect_rstate(u, "before", *rows[i].mid, rows[i].agency,
		    "queued");
	/* cjit has m1 and m3 in flight, unacked. */
	cjit = ub_online(u, H_CJIT);
	ub_pump(u);
	cr_assert_eq(json_array_size(ub_frames(u, H_CJIT)), 2);
	cr_assert_eq(cjit->inflight, 2);

	a0 = ub_audit_next(u);
	/* Called once: json_array_foreach evaluates its array each step. */
	answers = ub_calls(u, H_PROBATION, h_withdraw_new(c1, NULL));
	json_array_foreach(answers, i, f)
		h_assert_op(f, "consent-recorded");

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ub_expect_rstate(u, "after", *rows[i].mid, rows[i].agency,
		    rows[i].state);
	/* Each sender is told, once per purged delivery. */
	cr_expect_eq(nqueued(H_CARAT, "receipt", m1, H_CJIT,
	    "purged/no-consent"), 1);
	cr_expect_eq(nqueued(H_CARAT, "receipt", m1, H_PROBATION,
	    "purged/no-consent"), 1);
	cr_expect_eq(nqueued(H_CARAT, "receipt", NULL, NULL, NULL), 2);
	cr_expect_eq(nqueued(H_CJIT, "receipt", m2, H_LA,
	    "purged/no-consent"), 1);
	cr_expect_eq(nqueued(H_CJIT, "receipt", NULL, NULL, NULL), 1);
	/* The queues hold exactly what is still permitted. */
	cr_expect_eq(nqueued(H_CJIT, "deliver", NULL, NULL, NULL), 1);
	cr_expect_eq(nqueued(H_CJIT, "deliver", m3, NULL, NULL), 1);
	cr_expect_eq(nqueued(H_PROBATION, "deliver", NULL, NULL, NULL), 0);
	cr_expect_eq(nqueued(H_LA, "deliver", NULL, NULL, NULL), 0);
	cr_expect_eq(nqueued(H_HOUSING, "deliver", m1, NULL, NULL), 1);
	cr_expect_eq(ub_audit_count(u, a0, "purged", NULL, NULL, NULL), 3);
	cr_expect_eq(ub_audit_count(u, a0, "purged", m1, H_CJIT,
	    "no-consent"), 1);
	/* The purged in-flight delivery no longer fills the window. */
	cr_expect_eq(cjit->inflight, 1);
	/* m2's payload is dropped (nobody waits), m1's kept for housing. */
	cr_assert_eq(uuid_parse(m2, id), 0);
	cr_assert_eq(store_msg_get(u->b.st, u->txn, id, &h, NULL), 0);
	cr_expect_eq(h.sealed_len, 0);
	cr_assert_eq(uuid_parse(m1, id), 0);
	cr_assert_eq(store_msg_get(u->b.st, u->txn, id, &h, NULL), 0);
	cr_expect_gt(h.sealed_len, 0);

	/* Deciding again changes nothing more. */
	memset(&subj, 0, sizeof(subj));
	snprintf(subj.pnc, sizeof(subj.pnc), "%s", H_PNC_A);
	cr_assert_eq(store_subject_ps(u->b.st, &subj, &ps), 0);
	nrc = nqueued(H_CARAT, "receipt", NULL, NULL, NULL);
	a0 = ub_audit_next(u);
	cr_assert_eq(route_recheck_subject(&u->b, u->txn, &ps), 0);
	cr_expect_eq(nqueued(H_CARAT, "receipt", NULL, NULL, NULL), nrc);
	cr_expect_eq(ub_audit_next(u), a0);
	ub_expect_rstate(u, "again", m1, H_HOUSING, "queued");
}

/* ---- route_sweep ---- */

static const struct h_env_opts retention_opts = {
	.retention_days = 1,
};

static void
setup_retention(void)
{
	u = ub_new(&retention_opts);
}

static int64_t
expires_of(const char *mid)
{
	struct msg_hdr	h;
	uint8_t		id[16];

	cr_assert_eq(uuid_parse(mid, id), 0);
	cr_assert_eq(store_msg_get(u->b.st, u->txn, id, &h, NULL), 0);
	return h.expires_ms;
}

/*
 * Queued deliveries expire at `expires` (or after retention), the sender
 * told `expired`; what was delivered stays delivered; a retention later
 * the message itself is forgotten.
 */
Test(route, sweep_expires_queued_and_forgets_a_retention_later,
    .init = setup_retention, .fini = teardown)
{
	const char	*m1, *m2;
	json_t		*q;
	int64_t		 t1, t2;
	uint64_t	 a0;
	uint8_t		 id[16];
	struct msg_hdr	 h;

	(void)ub_grant(u, H_CARAT, H_CJIT "," H_PROBATION, H_BASIC, CONT,
	    H_PNC_A, false);
	m1 = ub_publish(u, H_CARAT, plan_expiring(H_PNC_A, H_CJIT ","
	    H_PROBATION, 2));
	m2 = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT));
	t1 = expires_of(m1);
	t2 = expires_of(m2);
	cr_assert_lt(t1, u->b.now + 3000);
	cr_assert_geq(t2, u->b.now + DAY_MS - 60000);
	/* cjit receives and acks m1. */
	(void)ub_online(u, H_CJIT);
	ub_pump(u);
	cr_assert_eq(json_array_size(ub_frames(u, H_CJIT)), 2);
	q = ub_queue(u, H_CJIT);
	cr_assert_null(ub_callf(u, H_CJIT, "{\"op\": \"ack\", \"dseq\": %lld}",
	    h_int(json_array_get(q, 0), "dseq")));
	ub_expect_rstate(u, "acked", m1, H_CJIT, "delivered");

	/* Not yet due: nothing happens. */
	a0 = ub_audit_next(u);
	ub_tick(u);
	cr_assert_eq(route_sweep(&u->b, u->txn), 0);
	ub_expect_rstate(u, "early", m1, H_PROBATION, "queued");
	cr_expect_eq(u->b.next_sweep, t1);

	/* Past m1's expires. */
	ub_advance(u, t1 - u->b.now + 1000);
	cr_assert_eq(route_sweep(&u->b, u->txn), 0);
	ub_expect_rstate(u, "expired", m1, H_PROBATION, "expired/retention");
	ub_expect_rstate(u, "expired", m1, H_CJIT, "delivered");
	ub_expect_rstate(u, "expired", m2, H_CJIT, "queued");
	cr_expect_eq(nqueued(H_PROBATION, "deliver", NULL, NULL, NULL), 0);
	cr_expect_eq(nqueued(H_CJIT, "deliver", m2, NULL, NULL), 1);
	cr_expect_eq(nqueued(H_CARAT, "receipt", m1, H_PROBATION,
	    "expired/retention"), 1);
	cr_expect_eq(nqueued(H_CARAT, "receipt", m1, H_CJIT,
	    "delivered/none"), 1);
	cr_expect_eq(ub_audit_count(u, a0, "expired", NULL, NULL, NULL), 1);
	cr_expect_eq(ub_audit_count(u, a0, "expired", m1, H_PROBATION,
	    "retention"), 1);
	/* The next sweep is due at the earliest of what is left. */
	cr_expect_eq(u->b.next_sweep, t2 < t1 + DAY_MS ? t2 : t1 + DAY_MS);
	/* Payload dropped; header and states kept for track. */
	cr_assert_eq(uuid_parse(m1, id), 0);
	cr_assert_eq(store_msg_get(u->b.st, u->txn, id, &h, NULL), 0);
	cr_expect_eq(h.sealed_len, 0);

	/* A retention later: m2 expires, m1 is forgotten. */
	ub_advance(u, t1 + DAY_MS - u->b.now + 1000);
	a0 = ub_audit_next(u);
	cr_assert_eq(route_sweep(&u->b, u->txn), 0);
	ub_expect_rstate(u, "retention", m2, H_CJIT, "expired/retention");
	cr_expect_eq(nqueued(H_CJIT, "deliver", NULL, NULL, NULL), 0);
	cr_expect_eq(store_msg_get(u->b.st, u->txn, id, &h, NULL),
	    STORE_NOTFOUND);
	ub_expect_rstate(u, "forgotten", m1, H_CJIT, NULL);
	ub_expect_rstate(u, "forgotten", m1, H_PROBATION, NULL);
	cr_expect_eq(ub_audit_count(u, a0, "expired", m2, H_CJIT,
	    "retention"), 1);
	cr_assert_eq(uuid_parse(m2, id), 0);
	cr_expect_eq(store_msg_get(u->b.st, u->txn, id, &h, NULL), 0);
}

/* Rule 12: a message with 100 recipients expires for all of them, not
 * for the first 64 (a chunk of the store's iterators). */
static char	 many_ids[NRECIP * 16];
static char	 many_opts_text[NRECIP * 32];

static void
setup_many(void)
{
	struct h_env_opts	o;
	size_t			i, n = 0, m = 0;

	for (i = 0; i < NRECIP; i++) {
		n += snprintf(many_ids + n, sizeof(many_ids) - n,
		    "%sr%03zu.test", i ? "," : "", i);
		m += snprintf(many_opts_text + m, sizeof(many_opts_text) - m,
		    "%sr%03zu.test:cjit:" H_AREA, i ? ";" : "", i);
	}
	memset(&o, 0, sizeof(o));
	o.agencies = many_opts_text;
	o.retention_days = 1;
	u = ub_new(&o);
}

Test(route, hundred_recipients_all_expire, .init = setup_many,
    .fini = teardown, .timeout = 600)
{
	const char	*mid;
	char		 rid[16];
	uint64_t	 a0;
	size_t		 i, nq = 0;

	(void)ub_grant(u, H_CARAT, many_ids, H_BASIC, CONT, H_PNC_A, false);
	mid = ub_publish(u, H_CARAT, plan_expiring(H_PNC_A, many_ids, 2));
	for (i = 0; i < NRECIP; i++) {
		snprintf(rid, sizeof(rid), "r%03zu.test", i);
		nq += ub_rstate(u, mid, rid) != NULL &&
		    strcmp(ub_rstate(u, mid, rid), "queued") == 0;
	}
	cr_assert_eq(nq, NRECIP);

	a0 = ub_audit_next(u);
	ub_advance(u, expires_of(mid) - u->b.now + 1000);
	cr_assert_eq(route_sweep(&u->b, u->txn), 0);
	for (i = 0; i < NRECIP; i++) {
		snprintf(rid, sizeof(rid), "r%03zu.test", i);
		ub_expect_rstate(u, "expired", mid, rid, "expired/retention");
		cr_expect_eq(nqueued(rid, "deliver", NULL, NULL, NULL), 0,
		    "%s", rid);
	}
	cr_expect_eq(nqueued(H_CARAT, "receipt", mid, NULL,
	    "expired/retention"), NRECIP);
	cr_expect_eq(ub_audit_count(u, a0, "expired", mid, NULL,
	    "retention"), NRECIP);

	/* A retention later, forgotten for all of them. */
	ub_advance(u, DAY_MS);
	cr_assert_eq(route_sweep(&u->b, u->txn), 0);
	for (i = 0; i < NRECIP; i++) {
		snprintf(rid, sizeof(rid), "r%03zu.test", i);
		ub_expect_rstate(u, "forgotten", mid, rid, NULL);
	}
}

/* ---- route_purge_invalid ---- */

/*
 * An agency no longer valid (revoked since) gets no further service: its
 * deliveries are purged (not-permitted, the senders told), receipts meant
 * for it dropped; other queues, and its own messages to others, stay.
 */
Test(route, purge_invalid_empties_the_queue_of_a_revoked_agency,
    .init = setup, .fini = teardown)
{
	const char	*m1, *m2, *m3;
	uint64_t	 a0;

	(void)ub_grant(u, H_CARAT, H_CJIT "," H_PROBATION "," H_LA, H_BASIC,
	    CONT "," HSUP, H_PNC_A, false);
	m1 = ub_publish(u, H_CARAT, ub_plan(H_PNC_A, H_CJIT "," H_PROBATION));
	/* cjit's own: one withheld (a receipt for cjit), one queued. */
	m2 = ub_publish(u, H_CJIT, record("housing-status", HSUP, H_PNC_A,
	    H_AREA, H_HOUSING, BODY_HSTATUS));
	m3 = ub_publish(u, H_CJIT, record("housing-status", HSUP, H_PNC_A,
	    H_AREA, H_LA, BODY_HSTATUS));
	cr_assert_eq(nqueued(H_CJIT, "deliver", m1, NULL, NULL), 1);
	cr_assert_eq(nqueued(H_CJIT, "receipt", m2, H_HOUSING, NULL), 1);

	ub_revoke(u, H_CJIT);
	a0 = ub_audit_next(u);
	cr_assert_eq(route_purge_invalid(&u->b, u->txn), 0);

	cr_expect_eq(json_array_size(ub_queue(u, H_CJIT)), 0, "%s",
	    h_dump(ub_queue(u, H_CJIT)));
	ub_expect_rstate(u, "revoked", m1, H_CJIT, "purged/not-permitted");
	ub_expect_rstate(u, "revoked", m1, H_PROBATION, "queued");
	ub_expect_rstate(u, "revoked", m3, H_LA, "queued");
	cr_expect_eq(nqueued(H_PROBATION, "deliver", m1, NULL, NULL), 1);
	cr_expect_eq(nqueued(H_LA, "deliver", m3, NULL, NULL), 1);
	cr_expect_eq(nqueued(H_CARAT, "receipt", m1, H_CJIT,
	    "purged/not-permitted"), 1);
	cr_expect_eq(ub_audit_count(u, a0, "purged", NULL, NULL, NULL), 1);
	cr_expect_eq(ub_audit_count(u, a0, "purged", m1, H_CJIT,
	    "not-permitted"), 1);

	/* Nothing more the second time. */
	a0 = ub_audit_next(u);
	cr_assert_eq(route_purge_invalid(&u->b, u->txn), 0);
	cr_expect_eq(ub_audit_next(u), a0);
}
