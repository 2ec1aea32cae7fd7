/*
 * test_resend.c - a mid sent again (issue 19, DESIGN §6, PROTOCOL 8.3):
 * the same record (whatever its `created` or its keys' order) is
 * `accepted` again with no second copy; another record under a used mid
 * is `invalid-field` at `mid` and changes nothing the recipient has; a mid
 * of another agency's is refused the same way, whatever its record.  The
 * broker compares while the payload waits, after it was released, and
 * after a restart; a correction sent again corrects once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/harness.h"

#define ORIG_DATE	"2026-12-20"	/* h_release_plan_new's */
#define REFUSED_DETAIL	"this mid was already used for a different " \
			"record; send the record under a new mid (a " \
			"correction names the old mid in supersedes)"

static struct h_env	*env;

static void
teardown(void)
{
	h_env_destroy(&env);
}

TestSuite(resend, .fini = teardown, .timeout = 120);

/* A copy of a JSON value with every object's keys in reverse order. */
static json_t *
reversed(json_t *j)
{
	const char	*k, *keys[64];
	json_t		*v, *out;
	size_t		 i, n = 0;

	if (json_is_array(j)) {
		out = json_array();
		json_array_foreach(j, i, v)
			json_array_append_new(out, reversed(v));
		return h_keep(out);
	}
	if (!json_is_object(j))
		return j;
	json_object_foreach(j, k, v) {
		cr_assert_lt(n, sizeof(keys) / sizeof(keys[0]));
		keys[n++] = k;
	}
	out = json_object();
	while (n > 0) {
		n--;
		json_object_set(out, keys[n],
		    reversed(json_object_get(j, keys[n])));
	}
	return h_keep(out);
}

/* The ways a record is sent again, as a change of the original. */
enum change {
	SAME,			/* byte for byte */
	CREATED,		/* only `created` */
	KEY_ORDER,		/* every map's keys reversed */
	RELEASE_DATE,		/* a body field */
	CREATED_AND_NOTES,	/* `created` and a body field */
	EXPIRES,		/* a top-level field added */
	SUBJECT,		/* an identifier added */
};

static json_t *
changed(json_t *orig, enum change c)
{
	json_t	*m = h_keep(json_deep_copy(orig));
	char	 t[32];

	switch (c) {
	case SAME:
		break;
	case CREATED:
		json_object_set_new(m, "created",
		    json_string(h_time(-3600, t)));
		break;
	case KEY_ORDER:
		return reversed(orig);
	case RELEASE_DATE:
		json_object_set_new(json_object_get(m, "body"), "release_date",
		    json_string("2026-12-21"));
		break;
	case CREATED_AND_NOTES:
		json_object_set_new(m, "created",
		    json_string(h_time(-3600, t)));
		json_object_set_new(json_object_get(m, "body"), "notes",
		    json_string("Client settled about release."));
		break;
	case EXPIRES:
		json_object_set_new(m, "expires", json_string(h_time(86400,
		    t)));
		break;
	case SUBJECT:
		json_object_set_new(json_object_get(m, "subject"), "noms",
		    json_string("A1234BC"));
		break;
	}
	return m;
}

static const struct {
	const char	*name;
	enum change	 change;
	bool		 same;		/* accepted; else refused */
} changes[] = {
	{ "the same record", SAME, true },
	{ "only created changed", CREATED, true },
	{ "keys in another order", KEY_ORDER, true },
	{ "the release date changed", RELEASE_DATE, false },
	{ "created and the notes changed", CREATED_AND_NOTES, false },
	{ "expires added", EXPIRES, false },
	{ "an identifier added", SUBJECT, false },
};
#define NCHANGES	(sizeof(changes) / sizeof(changes[0]))

/* The answer to the re-send of row i: accepted, or refused at mid. */
static void
expect_answer(json_t *r, size_t i, const char *mid, const char *when)
{
	if (changes[i].same) {
		cr_expect(h_is_op(r, "accepted") && h_str(r, "mid") != NULL &&
		    strcmp(h_str(r, "mid"), mid) == 0, "%s, %s: %s",
		    changes[i].name, when, h_dump(r));
		return;
	}
	cr_expect(h_is_op(r, "error") && h_str(r, "code") != NULL &&
	    strcmp(h_str(r, "code"), "invalid-field") == 0 &&
	    h_str(r, "field") != NULL && strcmp(h_str(r, "field"), "mid") ==
	    0, "%s, %s: %s", changes[i].name, when, h_dump(r));
	cr_expect(h_str(r, "re") != NULL && strcmp(h_str(r, "re"), mid) == 0,
	    "%s, %s: re %s", changes[i].name, when, h_dump(r));
	cr_expect(h_str(r, "detail") != NULL &&
	    strcmp(h_str(r, "detail"), REFUSED_DETAIL) == 0, "%s, %s: %s",
	    changes[i].name, when, h_dump(r));
}

/* Until the recipient's delivery state says delivered (the payload is
 * then released), or the test fails. */
static void
wait_delivered(struct h_client *sender, const char *mid, const char *to)
{
	json_t	*t = NULL;
	int	 i;

	for (i = 0; i < 100; i++) {
		t = h_track_of(sender, mid, to);
		if (t != NULL && h_str(t, "state") != NULL &&
		    strcmp(h_str(t, "state"), "delivered") == 0)
			return;
		h_msleep(50);
	}
	cr_assert_fail("%s never delivered to %s: %s", mid, to, h_dump(t));
}

/* A world of carat (sender) and cjit (a consented subscriber). */
static void
world(struct h_client **carat, struct h_client **cjit)
{
	*carat = h_agent(env, H_CARAT, false);
	*cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_subscribe(*cjit, "release-plan", H_AREA), "subscribed");
	h_assert_op(h_grant(*carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
}

/*
 * Sent again while the recipient has not yet acknowledged it (the payload
 * still held): one delivery, of the original, whatever the re-send.
 */
H_TEST(resend, same_record_is_accepted_once_another_refused_at_mid)
{
	struct h_client	*carat, *cjit;
	json_t		*m, *d, *r;
	const char	*mid;
	size_t		 i;

	env = h_env_new(NULL);
	world(&carat, &cjit);
	for (i = 0; i < NCHANGES; i++) {
		m = h_release_plan_new(H_PNC_A, "Resent");
		mid = h_str(m, "mid");
		h_assert_op(h_publish(carat, m), "accepted");
		d = h_collect(cjit, "deliver", 1, H_TIMEOUT_MS, false);
		cr_assert_eq(json_array_size(d), 1, "%s: %s", changes[i].name,
		    h_dump(d));
		r = h_publish(carat, changed(m, changes[i].change));
		expect_answer(r, i, mid, "payload held");
		/* Again: the same answer. */
		r = h_publish(carat, changed(m, changes[i].change));
		expect_answer(r, i, mid, "payload held, twice");
		h_ack(cjit, json_array_get(d, 0));
		cr_expect_str_eq(h_str(d, "0.mid"), mid);
		cr_expect_str_eq(h_str(d, "0.body.release_date"), ORIG_DATE);
		cr_expect_str_eq(h_str(d, "0.created"), h_str(m, "created"));
		d = h_deliveries(cjit, true);
		cr_expect_eq(json_array_size(d), 0, "%s: a second copy: %s",
		    changes[i].name, h_dump(d));
		r = h_track(carat, mid);
		cr_expect_eq(json_array_size(h_get(r, "recipients")), 1,
		    "%s: %s", changes[i].name, h_dump(r));
	}
}

/*
 * Once every recipient is done the payload is deleted; the header keeps
 * the record's hash, so the comparison is the same then, and after the
 * broker restarts.
 */
H_TEST(resend, compared_after_release_and_after_a_restart)
{
	struct h_client	*carat, *cjit;
	json_t		*m[NCHANGES], *d, *r;
	size_t		 i;

	env = h_env_new(NULL);
	world(&carat, &cjit);
	for (i = 0; i < NCHANGES; i++) {
		m[i] = h_release_plan_new(H_PNC_A, "Released");
		h_assert_op(h_publish(carat, m[i]), "accepted");
	}
	d = h_collect(cjit, "deliver", NCHANGES, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), NCHANGES, "%s", h_dump(d));
	for (i = 0; i < NCHANGES; i++)
		wait_delivered(carat, h_str(m[i], "mid"), H_CJIT);
	for (i = 0; i < NCHANGES; i++)
		expect_answer(h_publish(carat, changed(m[i],
		    changes[i].change)), i, h_str(m[i], "mid"),
		    "payload released");

	h_close(&carat);
	h_close(&cjit);
	cr_assert_eq(h_broker_stop(env), 0);
	h_broker_start(env);
	carat = h_agent(env, H_CARAT, false);
	cjit = h_agent(env, H_CJIT, true);
	for (i = 0; i < NCHANGES; i++)
		expect_answer(h_publish(carat, changed(m[i],
		    changes[i].change)), i, h_str(m[i], "mid"),
		    "after a restart");
	d = h_deliveries(cjit, true);
	cr_expect_eq(json_array_size(d), 0, "a second copy: %s", h_dump(d));
	for (i = 0; i < NCHANGES; i++) {
		r = h_track(carat, h_str(m[i], "mid"));
		cr_expect_eq(json_array_size(h_get(r, "recipients")), 1,
		    "%s: %s", changes[i].name, h_dump(r));
	}
}

/*
 * A mid another agency used is refused, the same answer whether the
 * record is that agency's or another, so nothing of its message shows;
 * the message itself is untouched.
 */
H_TEST(resend, another_agencys_mid_is_refused_and_says_nothing_of_it)
{
	struct h_client	*carat, *wake, *cjit;
	json_t		*m, *r, *d, *first = NULL;
	size_t		 i;

	env = h_env_new(&(struct h_env_opts){
	    .agencies = "carat.hmp-wakefield:prison-carat:" H_AREA });
	world(&carat, &cjit);
	wake = h_agent(env, "carat.hmp-wakefield", false);
	m = h_release_plan_new(H_PNC_A, "Theirs");
	h_assert_op(h_publish(carat, m), "accepted");
	d = h_collect(cjit, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1, "%s", h_dump(d));
	for (i = 0; i < NCHANGES; i++) {
		r = h_publish(wake, changed(m, changes[i].change));
		h_assert_error(r, "invalid-field", "mid");
		cr_expect_str_eq(h_str(r, "re"), h_str(m, "mid"));
		cr_expect_str_eq(h_str(r, "detail"), REFUSED_DETAIL);
		if (first == NULL)
			first = r;
		cr_expect(json_equal(r, first), "%s answered otherwise: %s "
		    "and %s", changes[i].name, h_dump(r), h_dump(first));
	}
	d = h_deliveries(cjit, true);
	cr_expect_eq(json_array_size(d), 0, "%s", h_dump(d));
	/* The owner's own re-send is still the same record. */
	h_assert_op(h_publish(carat, m), "accepted");
	r = h_track(wake, h_str(m, "mid"));
	h_assert_error(r, "invalid-field", "mid");
	r = h_track(carat, h_str(m, "mid"));
	cr_expect_eq(json_array_size(h_get(r, "recipients")), 1, "%s",
	    h_dump(r));
}

/*
 * A correction sent again is a re-send like any other: the same record
 * (its `supersedes` included) is accepted with nothing done twice (no
 * second copy, no second notice); one naming another record to supersede
 * is another record, refused at mid.
 */
H_TEST(resend, a_correction_sent_again_corrects_once)
{
	struct h_client	*carat, *cjit;
	json_t		*v1, *v2, *other, *d, *n, *r;

	env = h_env_new(NULL);
	world(&carat, &cjit);
	v1 = h_release_plan_new(H_PNC_A, "First");
	other = h_release_plan_new(H_PNC_A, "Other");
	h_assert_op(h_publish(carat, v1), "accepted");
	h_assert_op(h_publish(carat, other), "accepted");
	d = h_collect(cjit, "deliver", 2, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 2, "%s", h_dump(d));
	wait_delivered(carat, h_str(v1, "mid"), H_CJIT);

	v2 = h_release_plan_new(H_PNC_A, "Corrected");
	json_object_set(v2, "supersedes", json_object_get(v1, "mid"));
	h_assert_op(h_publish(carat, v2), "accepted");
	d = h_collect(cjit, "deliver", 1, H_TIMEOUT_MS, true);
	cr_assert_eq(json_array_size(d), 1, "%s", h_dump(d));
	n = h_collect(cjit, "notice", 0, 2000, true);
	cr_assert_eq(json_array_size(n), 1, "%s", h_dump(n));

	/* Again, as it was: accepted, nothing more to anyone. */
	r = h_publish(carat, v2);
	h_assert_op(r, "accepted");
	/* Again, correcting another record under the same mid: refused. */
	v2 = h_keep(json_deep_copy(v2));
	json_object_set(v2, "supersedes", json_object_get(other, "mid"));
	r = h_publish(carat, v2);
	h_assert_error(r, "invalid-field", "mid");
	cr_expect_str_eq(h_str(r, "detail"), REFUSED_DETAIL);
	d = h_deliveries(cjit, true);
	cr_expect_eq(json_array_size(d), 0, "%s", h_dump(d));
	n = h_collect(cjit, "notice", 0, 1000, true);
	cr_expect_eq(json_array_size(n), 0, "a second notice: %s", h_dump(n));
}
