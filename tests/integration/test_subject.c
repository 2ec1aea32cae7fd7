/*
 * test_subject.c - the subject access report across identifiers (issue
 * 19 item 4): identifiers read from a file or standard input, never from
 * the command line; the person followed through the identifiers their
 * consents and records link; the plain-text form for the person.
 */
#define _GNU_SOURCE	/* asprintf */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/harness.h"

#define NOMS_A		"A1234BC"	/* the person's, on their consent */
#define NOMS_OTHER	"B5678DE"	/* someone else's */
#define CRN_A		"X123456"	/* the person's, on records only */

static struct h_env	*env;

static void
teardown(void)
{
	h_env_destroy(&env);
}

TestSuite(subject, .fini = teardown, .timeout = 120);

/* What the story did, for the checks that follow it. */
struct story {
	json_t	*grant;		/* PNC A and NOMS A together */
	json_t	*other;		/* NOMS OTHER's own consent */
	char	*by_noms;	/* NOMS A only: delivered to cjit */
	char	*noms_crn;	/* NOMS A and CRN A: cjit yes, housing no */
	char	*by_crn;	/* CRN A only: withheld from cjit */
	char	*conflict;	/* PNC A with NOMS OTHER: identity conflict */
	char	*others;	/* NOMS OTHER only: delivered to cjit */
};

/* Publish a release plan about `subject` to `to`; its mid. */
static char *
publish(struct h_client *carat, json_t *subject, const char *to)
{
	json_t	*m = h_release_plan_new(H_PNC_A, "Subject");

	json_object_set(m, "subject", subject);
	json_object_set(m, "to", h_csv(to));
	h_assert_op(h_publish(carat, m), "accepted");
	return h_keep_str(strdup(h_str(m, "mid")));
}

/* The state of the receipt the sender got about (mid, agency). */
static const char *
receipt(struct h_client *carat, const char *mid, const char *agency)
{
	json_t	*r = h_receipt_for(carat, mid, agency, H_TIMEOUT_MS);

	cr_assert_not_null(r, "no receipt about %s for %s", mid, agency);
	return h_str(r, "state");
}

/*
 * A consent names the person by PNC and NOMS; records reach the broker
 * under the NOMS alone, under the NOMS and a CRN, under the CRN alone;
 * one carries the person's PNC beside another person's NOMS, and that
 * other person has a consent and a record of their own.
 */
static void
story(struct story *s)
{
	struct h_client	*carat, *cjit;

	carat = h_agent(env, H_CARAT, true);
	cjit = h_agent(env, H_CJIT, true);
	s->grant = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	json_object_set_new(s->grant, "subject", json_pack("{s:s,s:s}",
	    "pnc", H_PNC_A, "noms", NOMS_A));
	h_assert_op(h_call(carat, s->grant, "consent-recorded"),
	    "consent-recorded");
	s->other = h_grant_new(H_CJIT, H_BASIC, H_PNC_A);
	json_object_set_new(s->other, "subject", json_pack("{s:s}", "noms",
	    NOMS_OTHER));
	h_assert_op(h_call(carat, s->other, "consent-recorded"),
	    "consent-recorded");

	s->by_noms = publish(carat, h_jsonf("{\"noms\": \"" NOMS_A "\"}"),
	    H_CJIT);
	s->noms_crn = publish(carat, h_jsonf("{\"noms\": \"" NOMS_A "\", "
	    "\"crn\": \"" CRN_A "\"}"), H_CJIT "," H_HOUSING);
	s->by_crn = publish(carat, h_jsonf("{\"crn\": \"" CRN_A "\"}"),
	    H_CJIT);
	s->conflict = publish(carat, h_jsonf("{\"pnc\": \"" H_PNC_A "\", "
	    "\"noms\": \"" NOMS_OTHER "\"}"), H_CJIT);
	s->others = publish(carat, h_jsonf("{\"noms\": \"" NOMS_OTHER "\"}"),
	    H_CJIT);

	/* Delivered counts once the recipient acked it. */
	cr_assert_eq(json_array_size(h_collect(cjit, "deliver", 3,
	    H_TIMEOUT_MS, true)), 3);
	cr_assert_str_eq(receipt(carat, s->by_noms, H_CJIT), "delivered");
	cr_assert_str_eq(receipt(carat, s->noms_crn, H_CJIT), "delivered");
	cr_assert_str_eq(receipt(carat, s->noms_crn, H_HOUSING), "withheld");
	cr_assert_str_eq(receipt(carat, s->by_crn, H_CJIT), "withheld");
	cr_assert_str_eq(receipt(carat, s->conflict, H_CJIT), "withheld");
	cr_assert_str_eq(receipt(carat, s->others, H_CJIT), "delivered");
	h_close(&carat);
	h_close(&cjit);
}

/* The entry of a report list (disclosures, withheld) for mid and
 * recipient, or NULL. */
static json_t *
entry_for(json_t *list, const char *mid, const char *recipient)
{
	json_t	*e;
	size_t	 i;

	json_array_foreach(list, i, e)
		if (h_str(e, "mid") && !strcmp(h_str(e, "mid"), mid) &&
		    h_str(e, "recipient") &&
		    !strcmp(h_str(e, "recipient"), recipient))
			return e;
	return NULL;
}

/* The linked identifier of a scheme, or NULL. */
static json_t *
linked(json_t *rep, const char *scheme)
{
	json_t	*l;
	size_t	 i;

	json_array_foreach(h_get(rep, "linked"), i, l)
		if (h_str(l, "scheme") && !strcmp(h_str(l, "scheme"), scheme))
			return l;
	return NULL;
}

/* The report holds the person's records and consent, and nobody else's;
 * `nlinked` identifiers linked beyond those asked about. */
static void
expect_the_persons(const struct story *s, json_t *rep, size_t nlinked)
{
	json_t	*disc = h_get(rep, "disclosures"), *with = h_get(rep,
	    "withheld"), *e;

	cr_expect_not_null(entry_for(disc, s->by_noms, H_CJIT),
	    "the record sent by NOMS alone is missing: %s", h_dump(disc));
	cr_expect_not_null(entry_for(disc, s->noms_crn, H_CJIT), "%s",
	    h_dump(disc));
	cr_expect_eq(json_array_size(disc), 2, "%s", h_dump(disc));
	e = entry_for(with, s->noms_crn, H_HOUSING);
	cr_assert_not_null(e, "%s", h_dump(with));
	cr_expect_str_eq(h_str(e, "reason"), "no-consent", "%s", h_dump(e));
	/* Two links away: NOMS by the consent, then CRN by a record. */
	e = entry_for(with, s->by_crn, H_CJIT);
	cr_assert_not_null(e, "the record sent by CRN alone is missing: %s",
	    h_dump(with));
	cr_expect_str_eq(h_str(e, "reason"), "no-consent", "%s", h_dump(e));
	e = entry_for(with, s->conflict, H_CJIT);
	cr_assert_not_null(e, "%s", h_dump(with));
	cr_expect_str_eq(h_str(e, "reason"), "identity-conflict", "%s",
	    h_dump(e));
	cr_expect_eq(json_array_size(with), 3, "%s", h_dump(with));
	/* The conflicting record links nothing: the other person's consent
	 * and record are not in the report. */
	cr_expect_null(entry_for(disc, s->others, H_CJIT), "%s", h_dump(disc));
	cr_expect_eq(json_array_size(h_get(rep, "consents")), 1, "%s",
	    h_dump(h_get(rep, "consents")));
	cr_expect_str_eq(h_str(rep, "consents.0.cid"), h_str(s->grant, "cid"));
	cr_expect_str_eq(h_str(rep, "consents.0.subject.noms"), NOMS_A);
	cr_expect_eq(json_array_size(h_get(rep, "linked")), nlinked, "%s",
	    h_dump(h_get(rep, "linked")));
}

/* Text with every run of blanks and newlines as one blank: what a
 * paragraph says, however it was wrapped. */
static char *
unwrapped(const char *text)
{
	char	*out = h_keep_str(strdup(text)), *w = out;
	bool	 blank = false;

	cr_assert_not_null(out);
	for (; *text != '\0'; text++) {
		if (isspace((unsigned char)*text)) {
			blank = true;
			continue;
		}
		if (blank && w > out)
			*w++ = ' ';
		blank = false;
		*w++ = *text;
	}
	*w = '\0';
	return out;
}

static size_t
count(const char *hay, const char *needle)
{
	size_t	n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay++;
	}
	return n;
}

/* A report without its time of production, to compare two. */
static json_t *
timeless(json_t *rep)
{
	json_t	*c = h_keep(json_deep_copy(rep));

	json_object_del(c, "produced");
	return c;
}

static char *
write_file(const char *name, const char *text)
{
	char	*path;
	FILE	*f;

	cr_assert(asprintf(&path, "%s/%s", h_dir(env), name) > 0);
	h_keep_str(path);
	cr_assert_not_null(f = fopen(path, "w"));
	cr_assert_eq(fputs(text, f) >= 0 && fclose(f) == 0, 1);
	return path;
}

H_TEST(subject, identifiers_from_stdin_and_from_a_file_give_the_same_report)
{
	struct story	 s;
	const char	*req = "# subject access request 2026-117\n\n"
	    "pnc=04/12345D\nnoms = " NOMS_A "\n";
	json_t		*in, *dash, *file, *json;
	char		*out, *err, *path;
	int		 st;

	env = h_env_new(NULL);
	story(&s);
	in = h_audit_subject(env, req);
	cr_expect_str_eq(h_str(in, "subject.pnc"), H_PNC_A, "%s", h_dump(in));
	cr_expect_str_eq(h_str(in, "subject.noms"), NOMS_A, "%s", h_dump(in));
	expect_the_persons(&s, in, 1);	/* the CRN */
	cr_expect_not_null(h_str(in, "produced"));

	path = write_file("request", req);
	st = h_ccbroker(env, &out, &err, "audit", "subject", "-c",
	    h_conf(env), path, NULL);
	cr_assert_eq(st, 0, "%s", err);
	file = h_json(out);
	st = h_ccbroker_in(env, req, &out, &err, "audit", "subject", "-c",
	    h_conf(env), "-", NULL);
	cr_assert_eq(st, 0, "%s", err);
	dash = h_json(out);
	/* The JSON form of the request says the same. */
	json = h_audit_subject(env, "{\"pnc\": \"04/12345D\",\n \"noms\": \""
	    NOMS_A "\"}");
	cr_expect(json_equal(timeless(in), timeless(file)), "file: %s\n"
	    "stdin: %s", h_dump(file), h_dump(in));
	cr_expect(json_equal(timeless(in), timeless(dash)), "%s", h_dump(dash));
	cr_expect(json_equal(timeless(in), timeless(json)), "%s", h_dump(json));
	cr_expect_eq(st = h_ccbroker(env, &out, &err, "audit", "subject",
	    "-c", h_conf(env), "--format", "json", path, NULL), 0, "%s", err);
	cr_expect(json_equal(timeless(in), timeless(h_json(out))), "%s", out);
}

H_TEST(subject, identifiers_on_the_command_line_are_warned_against)
{
	static const char *const argv[][2] = {
		{ "pnc=" H_PNC_A, NULL },	/* where FILE goes */
		{ NOMS_A, NULL },
		{ "04/12345D", NULL },
	};
	static const char *const flags[][2] = {
		{ "--pnc", H_PNC_A },
		{ "--noms", NOMS_A },
		{ "--crn", CRN_A },
	};
	char	*out, *err, *want;
	size_t	 i;
	int	 st;

	env = h_env_new(NULL);
	/* DESIGN.md's form still works, with a warning that repeats no
	 * identifier, and gives the report the same request on standard
	 * input gives. */
	h_assert_op(h_grant(h_agent(env, H_CARAT, false), H_CJIT, H_BASIC,
	    H_PNC_A), "consent-recorded");
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		st = h_ccbroker_in(env, "", &out, &err, "audit", "subject",
		    "-c", h_conf(env), flags[i][0], flags[i][1], NULL);
		cr_expect_eq(st, 0, "%s: exited %d: %s", flags[i][0], st, err);
		cr_expect(strstr(err, "standard input") != NULL,
		    "%s: does not say what to do instead: %s", flags[i][0],
		    err);
		cr_expect(strstr(err, "12345") == NULL &&
		    strstr(err, NOMS_A) == NULL && strstr(err, CRN_A) == NULL,
		    "%s: the identifier was repeated: %s", flags[i][0], err);
		if (i == 0) {
			want = h_keep_str(strdup(h_dump(timeless(
			    h_audit_subject(env, "pnc=" H_PNC_A "\n")))));
			cr_expect_str_eq(h_dump(timeless(h_json(out))), want);
		}
	}
	/* An identifier where FILE goes is refused, not repeated. */
	for (i = 0; i < sizeof(argv) / sizeof(argv[0]); i++) {
		st = h_ccbroker_in(env, "pnc=" H_PNC_A "\n", &out, &err,
		    "audit", "subject", "-c", h_conf(env), argv[i][0],
		    argv[i][1], NULL);
		cr_expect_eq(st, 2, "%s: exited %d: %s%s", argv[i][0], st, out,
		    err);
		cr_expect_str_empty(out, "%s: %s", argv[i][0], out);
		cr_expect(strstr(err, "standard input") != NULL,
		    "%s: does not say what to do: %s", argv[i][0], err);
		cr_expect(strstr(err, "12345") == NULL &&
		    strstr(err, NOMS_A) == NULL && strstr(err, CRN_A) == NULL,
		    "%s: the identifier was repeated: %s", argv[i][0], err);
	}
}

H_TEST(subject, a_consent_naming_pnc_and_noms_links_what_came_by_either)
{
	struct story	 s;
	json_t		*rep, *l;

	env = h_env_new(NULL);
	story(&s);

	/* Asked by PNC: the record that only carried the NOMS is there. */
	rep = h_audit_subject(env, "pnc=" H_PNC_A "\n");
	expect_the_persons(&s, rep, 2);
	l = linked(rep, "noms");
	cr_assert_not_null(l, "%s", h_dump(h_get(rep, "linked")));
	cr_expect_str_eq(h_str(l, "value"), NOMS_A, "%s", h_dump(l));
	cr_expect_str_eq(h_str(l, "via.consent"), h_str(s.grant, "cid"));
	/* The CRN was only ever on records: its scheme is known from the
	 * message, its value is not held in clear anywhere. */
	l = linked(rep, "crn");
	cr_assert_not_null(l, "%s", h_dump(h_get(rep, "linked")));
	cr_expect(json_is_null(h_get(l, "value")), "%s", h_dump(l));
	cr_expect_str_eq(h_str(l, "via.mid"), s.noms_crn, "%s", h_dump(l));
	cr_expect_not_null(h_str(l, "note"));
	cr_expect_not_null(h_str(l, "pseudonym"));

	/* Asked by NOMS: the same records, the PNC linked in clear. */
	rep = h_audit_subject(env, "noms=" NOMS_A "\n");
	expect_the_persons(&s, rep, 2);
	cr_expect_str_eq(h_str(linked(rep, "pnc"), "value"), H_PNC_A, "%s",
	    h_dump(h_get(rep, "linked")));

	/* The other person is reported on their own, without this one. */
	rep = h_audit_subject(env, "noms=" NOMS_OTHER "\n");
	cr_expect_not_null(entry_for(h_get(rep, "disclosures"), s.others,
	    H_CJIT), "%s", h_dump(rep));
	cr_expect_null(entry_for(h_get(rep, "disclosures"), s.by_noms,
	    H_CJIT), "%s", h_dump(rep));
	cr_expect_eq(json_array_size(h_get(rep, "linked")), 0, "%s",
	    h_dump(h_get(rep, "linked")));
	cr_expect_str_eq(h_str(rep, "consents.0.cid"), h_str(s.other, "cid"));

	/* Nothing the reports were asked about reached the broker's log. */
	cr_expect(!h_log_has(env, H_PNC_A) && !h_log_has(env, "0012345") &&
	    !h_log_has(env, NOMS_A) && !h_log_has(env, CRN_A) &&
	    !h_log_has(env, NOMS_OTHER), "an identifier in the log:\n%s",
	    h_log(env));
}

H_TEST(subject, the_text_report_says_who_received_what_and_why_not)
{
	struct story	 s;
	char		*out, *err, *text;
	size_t		 i;
	int		 st;
	static const char *const says[] = {
		"SUBJECT ACCESS REPORT",
		"Example Leeds Partnership",
		"PNC number " H_PNC_A,
		"prison (NOMS) number " NOMS_A,	/* linked, read in clear */
		"1. YOUR CONSENTS",
		"Leeds CJIT (example) (" H_CJIT ")",
		"received a release plan from",
		"HMP Leeds CARAT Team (example) (" H_CARAT ")",
		"your name, date of birth and sex",
		"you had not consented to this agency receiving it",
		"in case it was about someone else",
		"continuity of your care",
		"4. WITHDRAWING CONSENT",
	};

	env = h_env_new(NULL);
	story(&s);
	st = h_ccbroker_in(env, "pnc=" H_PNC_A "\n", &out, &err, "audit",
	    "subject", "-c", h_conf(env), "--format", "text", NULL);
	cr_assert_eq(st, 0, "%s", err);
	text = unwrapped(out);
	for (i = 0; i < sizeof(says) / sizeof(says[0]); i++)
		cr_expect(strstr(text, says[i]) != NULL, "no \"%s\" in:\n%s",
		    says[i], out);
	/* Two records withheld for want of consent, one for the conflict;
	 * no wire name is left for the reader to decode. */
	cr_expect_eq(count(text, "you had not consented"), 2, "%s", out);
	cr_expect_eq(count(text, "in case it was about someone else"), 1,
	    "%s", out);
	cr_expect(strstr(text, "no-consent") == NULL, "%s", out);
	cr_expect(strstr(text, "release-plan") == NULL, "%s", out);

	st = h_ccbroker_in(env, "pnc=" H_PNC_A "\n", &out, &err, "audit",
	    "subject", "-c", h_conf(env), "--format", "yaml", NULL);
	cr_expect_eq(st, 2, "%s%s", out, err);
	cr_expect(strstr(err, "json or text") != NULL, "%s", err);
}

H_TEST(subject, a_bad_identifier_line_is_refused_naming_its_line)
{
	const char	*req = "# request\n\npnc=" H_PNC_A "\nnoms=A1234B\n";
	char		*out, *err, *path;
	int		 st;

	env = h_env_new(NULL);
	st = h_ccbroker_in(env, req, &out, &err, "audit", "subject", "-c",
	    h_conf(env), NULL);
	cr_expect_eq(st, 2, "%s%s", out, err);
	cr_expect_str_empty(out);
	cr_expect(strstr(err, "stdin:4: not a valid NOMS number") != NULL,
	    "%s", err);
	cr_expect(strstr(err, "A1234B") == NULL && strstr(err, "12345") ==
	    NULL, "the request was repeated: %s", err);

	path = write_file("request", req);
	st = h_ccbroker(env, &out, &err, "audit", "subject", "-c",
	    h_conf(env), path, NULL);
	cr_expect_eq(st, 2, "%s%s", out, err);
	cr_expect(strstr(err, "request:4: not a valid NOMS number") != NULL,
	    "%s", err);

	st = h_ccbroker_in(env, "", &out, &err, "audit", "subject", "-c",
	    h_conf(env), NULL);
	cr_expect_eq(st, 2, "%s%s", out, err);
	cr_expect(strstr(err, "no identifier") != NULL, "%s", err);
	st = h_ccbroker(env, &out, &err, "audit", "subject", "-c",
	    h_conf(env), "/nonexistent/request", NULL);
	cr_expect_eq(st, 2, "%s%s", out, err);
	cr_expect(strstr(err, "/nonexistent/request") != NULL, "%s", err);
}
