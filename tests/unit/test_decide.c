/*
 * test_decide.c - the consent decision, rule by rule and in combination,
 * over a real LMDB store in a temporary directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "decide.h"
#include "store.h"

#define DAY	86400000LL
#define PNC_A	"2004/0012345D"
#define PNC_B	"1999/7654321V"
#define NOMS_X	"A1234BC"
#define NOMS_Y	"B9876ZZ"

#define BASIC	(CATSET(CAT_IDENTITY) | CATSET(CAT_CRIMINAL_JUSTICE) | \
		 CATSET(CAT_HOUSING) | CATSET(CAT_CONTACTS) | \
		 CATSET(CAT_TREATMENT_SUMMARY))
#define CONT	(1u << PURPOSE_CONTINUITY_OF_CARE)
#define HOUS	(1u << PURPOSE_HOUSING_SUPPORT)

/* One consent to store: who it names and what it allows. */
struct cspec {
	const char	*pnc, *noms;
	const char	*recip;		/* comma-separated */
	unsigned	 purposes;
	cc_catset	 cats;
	bool		 explicit_;
	enum consent_state state;
	int64_t		 from, until;	/* relative to now, ms */
	const char	*deny_recip;	/* NULL: no deny; "": everyone */
	cc_catset	 deny_cats;	/* 0: all */
};

struct dcase {
	const char	*name;
	struct cspec	 c[3];
	int		 nc;
	const char	*pnc, *noms;	/* the message's subject */
	enum cc_purpose	 purpose;
	const char	*recipient;
	cc_catset	 receive;	/* recipient type policy; 0xffff: none */
	bool		 permit;
	enum cc_reason	 reason;
	cc_catset	 cats;
};

#define ACTIVE(r, p, c) { PNC_A, NULL, r, p, c, false, CS_ACTIVE, -DAY, 300 * DAY, NULL, 0 }
#define NOPOL	0xffff

static const struct dcase cases[] = {
	{ "rule1_no_consent_nothing", { { 0 } }, 0, PNC_A, NULL,
	  PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL,
	  false, RS_NO_CONSENT, 0 },
	{ "rule1_named_recipient_gets_consented", { ACTIVE("cjit.leeds", CONT,
	  BASIC) }, 1, PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds",
	  CATSET_ALL, true, RS_NONE, BASIC },
	{ "rule1_other_recipient_nothing", { ACTIVE("cjit.leeds", CONT,
	  BASIC) }, 1, PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE,
	  "housing.leeds-hostels", CATSET_ALL, false, RS_NO_CONSENT, 0 },
	{ "rule1_other_purpose_nothing", { ACTIVE("cjit.leeds", HOUS,
	  BASIC) }, 1, PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds",
	  CATSET_ALL, false, RS_NO_CONSENT, 0 },
	{ "rule1_without_identity_nothing", { ACTIVE("cjit.leeds", CONT,
	  BASIC & ~CATSET(CAT_IDENTITY)) }, 1, PNC_A, NULL,
	  PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL, false,
	  RS_NO_CONSENT, 0 },
	{ "rule2_withdrawn_never_permits", { { PNC_A, NULL, "cjit.leeds",
	  CONT, BASIC, false, CS_WITHDRAWN, -DAY, 300 * DAY, NULL, 0 } }, 1,
	  PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL,
	  false, RS_NO_CONSENT, 0 },
	{ "rule2_superseded_never_permits", { { PNC_A, NULL, "cjit.leeds",
	  CONT, BASIC, false, CS_SUPERSEDED, -DAY, 300 * DAY, NULL, 0 } }, 1,
	  PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL,
	  false, RS_NO_CONSENT, 0 },
	{ "rule2_not_yet_valid_nothing", { { PNC_A, NULL, "cjit.leeds", CONT,
	  BASIC, false, CS_ACTIVE, DAY, 300 * DAY, NULL, 0 } }, 1, PNC_A, NULL,
	  PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL, false,
	  RS_NO_CONSENT, 0 },
	{ "rule2_ended_nothing", { { PNC_A, NULL, "cjit.leeds", CONT, BASIC,
	  false, CS_ACTIVE, -300 * DAY, -DAY, NULL, 0 } }, 1, PNC_A, NULL,
	  PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL, false,
	  RS_NO_CONSENT, 0 },
	{ "rule3_deny_in_same_consent_strips", { { PNC_A, NULL, "cjit.leeds",
	  CONT, BASIC, false, CS_ACTIVE, -DAY, 300 * DAY, "cjit.leeds",
	  CATSET(CAT_HOUSING) } }, 1, PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE,
	  "cjit.leeds", CATSET_ALL, true, RS_NONE,
	  BASIC & ~CATSET(CAT_HOUSING) },
	{ "rule3_deny_of_other_consent_wins", { ACTIVE("cjit.leeds", CONT,
	  BASIC), { PNC_A, NULL, "probation.leeds", HOUS, BASIC, false,
	  CS_ACTIVE, -DAY, 300 * DAY, "cjit.leeds", CATSET(CAT_IDENTITY) } },
	  2, PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL,
	  false, RS_NO_CONSENT, 0 },
	{ "rule3_deny_everyone_everything", { ACTIVE("cjit.leeds", CONT,
	  BASIC), { PNC_A, NULL, "probation.leeds", CONT, BASIC, false,
	  CS_ACTIVE, -DAY, 300 * DAY, "", 0 } }, 2, PNC_A, NULL,
	  PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL, false,
	  RS_NO_CONSENT, 0 },
	{ "rule3_deny_of_withdrawn_consent_ignored", { ACTIVE("cjit.leeds",
	  CONT, BASIC), { PNC_A, NULL, "probation.leeds", CONT, BASIC, false,
	  CS_WITHDRAWN, -DAY, 300 * DAY, "", 0 } }, 2, PNC_A, NULL,
	  PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL, true, RS_NONE,
	  BASIC },
	{ "several_consents_union", { ACTIVE("cjit.leeds", CONT,
	  CATSET(CAT_IDENTITY)), ACTIVE("cjit.leeds", CONT,
	  CATSET(CAT_HOUSING)) }, 2, PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE,
	  "cjit.leeds", CATSET_ALL, true, RS_NONE,
	  CATSET(CAT_IDENTITY) | CATSET(CAT_HOUSING) },
	{ "withdrawn_then_regranted_permits", { { PNC_A, NULL, "cjit.leeds",
	  CONT, BASIC, false, CS_WITHDRAWN, -DAY, 300 * DAY, NULL, 0 },
	  ACTIVE("cjit.leeds", CONT, CATSET(CAT_IDENTITY)) }, 2, PNC_A, NULL,
	  PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL, true, RS_NONE,
	  CATSET(CAT_IDENTITY) },
	{ "rule4_policy_narrower_than_consent", { { PNC_A, NULL,
	  "probation.leeds", CONT, BASIC | CATSET_EXPLICIT, true, CS_ACTIVE,
	  -DAY, 300 * DAY, NULL, 0 } }, 1, PNC_A, NULL,
	  PURPOSE_CONTINUITY_OF_CARE, "probation.leeds",
	  CATSET_ALL & ~CATSET_EXPLICIT, true, RS_NONE, BASIC },
	{ "explicit_categories_need_explicit_consent", { { PNC_A, NULL,
	  "cjit.leeds", CONT, BASIC | CATSET_EXPLICIT, false, CS_ACTIVE,
	  -DAY, 300 * DAY, NULL, 0 } }, 1, PNC_A, NULL,
	  PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL, true, RS_NONE,
	  BASIC },
	{ "explicit_consent_releases_clinical", { { PNC_A, NULL, "cjit.leeds",
	  CONT, BASIC | CATSET_EXPLICIT, true, CS_ACTIVE, -DAY, 300 * DAY,
	  NULL, 0 } }, 1, PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE,
	  "cjit.leeds", CATSET_ALL, true, RS_NONE, BASIC | CATSET_EXPLICIT },
	{ "policy_without_identity_not_permitted", { ACTIVE("cjit.leeds", CONT,
	  BASIC) }, 1, PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds",
	  CATSET(CAT_HOUSING), false, RS_NOT_PERMITTED, 0 },
	{ "agency_no_longer_valid_not_permitted", { ACTIVE("cjit.leeds", CONT,
	  BASIC) }, 1, PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds",
	  NOPOL, false, RS_NOT_PERMITTED, 0 },
	{ "policy_receives_nothing_not_permitted", { ACTIVE("cjit.leeds", CONT,
	  BASIC) }, 1, PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds",
	  0, false, RS_NOT_PERMITTED, 0 },
	{ "rule6_pnc_matches_noms_contradicts", { { PNC_A, NOMS_X,
	  "cjit.leeds", CONT, BASIC, false, CS_ACTIVE, -DAY, 300 * DAY, NULL,
	  0 } }, 1, PNC_A, NOMS_Y, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds",
	  CATSET_ALL, false, RS_IDENTITY_CONFLICT, 0 },
	{ "rule6_fewer_identifiers_is_no_conflict", { { PNC_A, NOMS_X,
	  "cjit.leeds", CONT, BASIC, false, CS_ACTIVE, -DAY, 300 * DAY, NULL,
	  0 } }, 1, PNC_A, NULL, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds",
	  CATSET_ALL, true, RS_NONE, BASIC },
	{ "matched_by_noms_alone", { { PNC_A, NOMS_X, "cjit.leeds", CONT,
	  BASIC, false, CS_ACTIVE, -DAY, 300 * DAY, NULL, 0 } }, 1, NULL,
	  NOMS_X, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL, true,
	  RS_NONE, BASIC },
	{ "other_subject_consent_irrelevant", { ACTIVE("cjit.leeds", CONT,
	  BASIC) }, 1, PNC_B, NULL, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds",
	  CATSET_ALL, false, RS_NO_CONSENT, 0 },
	{ "rule10_refusal_never_permits", { { PNC_A, NULL, "cjit.leeds", CONT,
	  BASIC, false, CS_REFUSED, -DAY, 300 * DAY, NULL, 0 } }, 1, PNC_A,
	  NULL, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", CATSET_ALL, false,
	  RS_NO_CONSENT, 0 },
};

static char		 dir[64];
static struct store	*st;

static void
setup(void)
{
	char	err[256];

	snprintf(dir, sizeof(dir), "/tmp/cctest-decide-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	strcat(dir, "/data");
	cr_assert_eq(store_init(dir, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_open(&st, dir, 64, false, err, sizeof(err)), 0,
	    "%s", err);
}

static void
teardown(void)
{
	char	cmd[128];

	store_close(&st);
	*strrchr(dir, '/') = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void
subject(const char *pnc, const char *noms, struct subject_ps *ps)
{
	struct cc_subject	s;

	memset(&s, 0, sizeof(s));
	if (pnc != NULL)
		snprintf(s.pnc, sizeof(s.pnc), "%s", pnc);
	if (noms != NULL)
		snprintf(s.noms, sizeof(s.noms), "%s", noms);
	cr_assert_eq(store_subject_ps(st, &s, ps), 0);
}

/* NUL-separated list from a comma-separated one. */
static uint16_t
idlist(const char *csv, char *out)
{
	size_t	n = strlen(csv), i;

	memcpy(out, csv, n + 1);
	for (i = 0; i < n; i++)
		if (out[i] == ',')
			out[i] = '\0';
	return n > 0 ? n + 1 : 0;
}

static void
put_consent(struct store_txn *txn, int i, const struct cspec *c, int64_t now)
{
	struct consent_hdr	h;
	struct deny_hdr		dh;
	char			recip[256];
	uint8_t			deny[300], cid[16] = { 0 };
	size_t			dlen = 0;

	memset(&h, 0, sizeof(h));
	cid[0] = (uint8_t)(i + 1);
	subject(c->pnc, c->noms, &h.subj);
	h.version = 1;
	h.state = c->state;
	h.explicit_ = c->explicit_;
	h.purposes = c->purposes;
	h.cats = c->cats;
	h.from_ms = now + c->from;
	h.until_ms = now + c->until;
	h.recip_len = idlist(c->recip, recip);
	if (c->deny_recip != NULL) {
		dh.cats = c->deny_cats;
		dh.len = idlist(c->deny_recip, (char *)deny + sizeof(dh));
		memcpy(deny, &dh, sizeof(dh));
		dlen = sizeof(dh) + dh.len;
	}
	h.deny_len = dlen;
	cr_assert_eq(store_consent_put(st, txn, cid, &h, recip, deny, "x", 1),
	    0);
}

Test(decide, table, .init = setup, .fini = teardown)
{
	size_t	i;
	int	j;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct dcase	*tc = &cases[i];
		struct policy		 pol = { 0, 0, false };
		struct subject_ps	 ps;
		struct decision		 d;
		struct store_txn	*txn;
		int64_t			 now = cc_time_now_ms();

		cr_assert_eq(store_begin(st, true, &txn), 0);
		for (j = 0; j < tc->nc; j++)
			put_consent(txn, j, &tc->c[j], now);
		subject(tc->pnc, tc->noms, &ps);
		pol.receive = tc->receive == NOPOL ? 0 : tc->receive;
		decide(st, txn, &ps, tc->purpose, tc->recipient,
		    tc->receive == NOPOL ? NULL : &pol, now, &d);
		cr_expect_eq(d.permit, tc->permit, "%s: permit %d", tc->name,
		    d.permit);
		cr_expect_eq(d.reason, tc->reason, "%s: reason %s", tc->name,
		    cc_reason_name(d.reason));
		cr_expect_eq(d.cats, tc->cats, "%s: cats %#x want %#x",
		    tc->name, d.cats, tc->cats);
		if (d.permit)
			cr_expect_eq(d.version, 1, "%s", tc->name);
		store_abort(txn);	/* each case starts from an empty store */
	}
}

/* Rule 5: a withdrawal committed before the next decision wins. */
Test(decide, withdrawal_applies_to_next_decision, .init = setup,
    .fini = teardown)
{
	struct cspec		 c = ACTIVE("cjit.leeds", CONT, BASIC);
	struct policy		 pol = { 0, CATSET_ALL, false };
	struct subject_ps	 ps;
	struct decision		 d;
	struct store_txn	*txn;
	int64_t			 now = cc_time_now_ms();

	cr_assert_eq(store_begin(st, true, &txn), 0);
	put_consent(txn, 0, &c, now);
	cr_assert_eq(store_commit(txn), 0);
	subject(PNC_A, NULL, &ps);
	cr_assert_eq(store_begin(st, false, &txn), 0);
	decide(st, txn, &ps, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", &pol,
	    now, &d);
	store_abort(txn);
	cr_assert(d.permit);

	c.state = CS_WITHDRAWN;
	cr_assert_eq(store_begin(st, true, &txn), 0);
	put_consent(txn, 0, &c, now);
	cr_assert_eq(store_commit(txn), 0);
	cr_assert_eq(store_begin(st, false, &txn), 0);
	decide(st, txn, &ps, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", &pol,
	    now, &d);
	store_abort(txn);
	cr_assert_not(d.permit);
	cr_assert_eq(d.reason, RS_NO_CONSENT);
}

/*
 * Damage a row of the decision index behind the store's back, as a
 * flipped bit or a bad sector would: through LMDB itself, with the store
 * closed (one process must not open an environment twice).
 */
static void
damage_cview(const struct subject_ps *ps)
{
	MDB_env		*e;
	MDB_txn		*t;
	MDB_dbi		 dbi;
	uint8_t		 key[CVIEW_KEYLEN + 16] = { 0 };
	MDB_val		 k = { sizeof(key), key }, v = { 3, "bad" };
	char		 err[256];

	store_close(&st);
	memcpy(key, ps->id[SCHEME_PNC], CVIEW_KEYLEN);
	key[CVIEW_KEYLEN] = 1;
	cr_assert_eq(mdb_env_create(&e), 0);
	cr_assert_eq(mdb_env_set_maxdbs(e, 16), 0);
	cr_assert_eq(mdb_env_set_mapsize(e, (size_t)64 << 20), 0);
	cr_assert_eq(mdb_env_open(e, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(e, NULL, 0, &t), 0);
	cr_assert_eq(mdb_dbi_open(t, "cview", 0, &dbi), 0);
	cr_assert_eq(mdb_put(t, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(t), 0);
	mdb_env_close(e);
	cr_assert_eq(store_open(&st, dir, 64, false, err, sizeof(err)), 0,
	    "%s", err);
}

/* Rule 9: a consent that cannot be read withholds, never permits. */
Test(decide, unreadable_store_fails_closed, .init = setup, .fini = teardown)
{
	struct cspec		 c = ACTIVE("cjit.leeds", CONT, BASIC);
	struct policy		 pol = { 0, CATSET_ALL, false };
	struct subject_ps	 ps;
	struct decision		 d;
	struct store_txn	*txn;
	int64_t			 now = cc_time_now_ms();

	cr_assert_eq(store_begin(st, true, &txn), 0);
	put_consent(txn, 0, &c, now);
	cr_assert_eq(store_commit(txn), 0);
	subject(PNC_A, NULL, &ps);
	/* Damage the decision view the consent is read through. */
	damage_cview(&ps);
	cr_assert_eq(store_begin(st, false, &txn), 0);
	decide(st, txn, &ps, PURPOSE_CONTINUITY_OF_CARE, "cjit.leeds", &pol,
	    now, &d);
	store_abort(txn);
	cr_assert_not(d.permit);
	cr_assert_eq(d.reason, RS_STORE_UNAVAILABLE);
}

/* A grant contradicting the subject's existing identifiers is caught. */
Test(decide, identity_conflict_at_grant, .init = setup, .fini = teardown)
{
	struct cspec		 c = { PNC_A, NOMS_X, "cjit.leeds", CONT, BASIC,
	    false, CS_ACTIVE, -DAY, 300 * DAY, NULL, 0 };
	struct subject_ps	 ps;
	struct store_txn	*txn;

	cr_assert_eq(store_begin(st, true, &txn), 0);
	put_consent(txn, 0, &c, cc_time_now_ms());
	subject(PNC_A, NOMS_Y, &ps);
	cr_expect_eq(decide_identity_conflict(st, txn, &ps, NULL), 1);
	subject(PNC_A, NOMS_X, &ps);
	cr_expect_eq(decide_identity_conflict(st, txn, &ps, NULL), 0);
	subject(PNC_B, NOMS_Y, &ps);
	cr_expect_eq(decide_identity_conflict(st, txn, &ps, NULL), 0);
	store_abort(txn);
}
