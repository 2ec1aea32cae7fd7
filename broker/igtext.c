/*
 * igtext.c - the subject access report as plain text (`ccbroker audit
 * subject --format text`): what an information-governance officer can
 * send the person after review.
 *
 * Everything is written from the report's JSON, never from the store, so
 * the text says exactly what the JSON says.  The wire's names become
 * words (no-consent: "you had not consented to this agency receiving
 * it"), agencies are named by their organisation as well as their id, and
 * times are UK local time, since the person and the partnership are.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ig.h"
#include "log.h"

#define WIDTH	72	/* columns of a paragraph */

/* A wire name and its words. */
struct words {
	const char	*name;
	const char	*says;
};

static const struct words scheme_words[] = {
	{ "pnc", "PNC number" },
	{ "noms", "prison (NOMS) number" },
	{ "crn", "probation case reference (CRN)" },
};

static const struct words cat_words[] = {
	{ "identity", "your name, date of birth and sex" },
	{ "cj-identifiers", "your PNC, NOMS and CRN numbers" },
	{ "criminal-justice", "criminal justice details (prison, dates, "
	  "release, licence and risk)" },
	{ "treatment-summary", "whether and how you are in drug treatment" },
	{ "treatment-clinical", "clinical treatment details (substances, "
	  "prescribing and doses)" },
	{ "housing", "your housing needs and the housing actions taken" },
	{ "housing-address", "addresses" },
	{ "contacts", "the workers involved, appointments and phone "
	  "numbers" },
	{ "narrative", "free-text notes" },
};

static const struct words type_words[] = {
	{ "release-plan", "a release plan" },
	{ "handover", "a handover of your case" },
	{ "referral", "a referral" },
	{ "housing-status", "a housing update" },
};

static const struct words purpose_words[] = {
	{ "continuity-of-care", "continuity of your care" },
	{ "housing-support", "housing support" },
	{ "offender-management", "offender management" },
	{ "treatment", "drug treatment" },
};

/* Why a record was held back from an agency (DESIGN §5). */
static const struct words reason_words[] = {
	{ "no-consent", "you had not consented to this agency receiving it" },
	{ "not-permitted", "the partnership's rules do not allow this kind "
	  "of agency to receive it" },
	{ "identity-conflict", "the numbers on the record did not match "
	  "those on your consent, so it was held back in case it was about "
	  "someone else" },
	{ "store-unavailable", "your consents could not be checked at the "
	  "time, and nothing is shared without checking them" },
};

static const struct words state_words[] = {
	{ "active", "in force" },
	{ "expired", "ended: its period is over" },
	{ "withdrawn", "withdrawn: nothing more is shared under it" },
	{ "refused", "refused: you said no to sharing" },
	{ "superseded", "replaced by a later version" },
};

static const struct words history_words[] = {
	{ "granted", "consent given" },
	{ "amended", "consent changed" },
	{ "withdrawn", "consent withdrawn" },
	{ "refused", "consent refused" },
};

static const struct words method_words[] = {
	{ "written", "in writing" },
	{ "verbal-witnessed", "spoken, with a witness" },
	{ "electronic", "electronically" },
};

#define WORDS(t)	(t), sizeof(t) / sizeof((t)[0])

/* A paragraph being written, wrapped when it is put out. */
struct para {
	FILE	*f;
	char	*text;
	size_t	 len;
};

static const char *say(const struct words *, size_t, const char *);
static void	uk_time(const char *, char out[64]);
static time_t	uk_clock_change(int tm_year, int tm_mon);
static void	para_open(struct para *);
static void	para_put(struct para *, FILE *, const char *first,
		    const char *rest);
static void	agency(FILE *, json_t *rep, const char *id);
static void	list(FILE *, json_t *rep, json_t *array,
		    const struct words *, size_t, bool agencies);
static void	cat_lines(FILE *, json_t *, const char *first,
		    const char *rest);
static void	field(FILE *, const char *label, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
static void	header(FILE *, json_t *rep);
static void	consents(FILE *, json_t *rep);
static void	consent(FILE *, json_t *rep, json_t *c, size_t, size_t);
static void	disclosures(FILE *, json_t *rep);
static void	withheld(FILE *, json_t *rep);
static void	closing(FILE *);

/* The words for a name; the name itself when there are none. */
static const char *
say(const struct words *w, size_t n, const char *name)
{
	size_t	i;

	if (name == NULL)
		return "(not recorded)";
	for (i = 0; i < n; i++)
		if (strcmp(w[i].name, name) == 0)
			return w[i].says;
	return name;
}

/* 01:00 UTC on the last Sunday of March or October: the UK's clocks
 * change then. */
static time_t
uk_clock_change(int tm_year, int tm_mon)
{
	struct tm	tm;
	time_t		t;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = tm_year;
	tm.tm_mon = tm_mon;
	tm.tm_mday = 31;
	tm.tm_hour = 1;
	t = timegm(&tm);
	if (gmtime_r(&t, &tm) == NULL)
		return t;
	return t - (time_t)tm.tm_wday * 86400;
}

/*
 * An RFC 3339 time (UTC) as UK local time, as a letter writes it: "23
 * November 2026 at 12:42 GMT", "14 July 2026 at 13:42 BST".  Computed
 * here, not through the host's time zone files, which a broker's host
 * may lack or set to UTC.
 */
static void
uk_time(const char *s, char out[64])
{
	static const char *const month[] = { "January", "February", "March",
	    "April", "May", "June", "July", "August", "September", "October",
	    "November", "December" };
	struct tm	 tm;
	int64_t		 ms;
	time_t		 t;
	bool		 bst;

	if (s == NULL || cc_time_parse(s, strlen(s), &ms) == -1) {
		snprintf(out, 64, "%s", s != NULL ? s : "an unrecorded time");
		return;
	}
	t = (time_t)(ms / 1000);
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, 64, "%s", s);
		return;
	}
	bst = t >= uk_clock_change(tm.tm_year, 2) &&
	    t < uk_clock_change(tm.tm_year, 9);
	t += bst ? 3600 : 0;
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, 64, "%s", s);
		return;
	}
	snprintf(out, 64, "%d %s %d at %02d:%02d %s", tm.tm_mday,
	    month[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    bst ? "BST" : "GMT");
}

static void
para_open(struct para *p)
{
	if ((p->f = open_memstream(&p->text, &p->len)) == NULL)
		fatalx("out of memory");
}

/*
 * Put the paragraph out wrapped at WIDTH columns, its first line after
 * `first`, the others after `rest` (as wide), and free it.
 */
static void
para_put(struct para *p, FILE *out, const char *first, const char *rest)
{
	const char	*s, *e, *brk;
	char		*c;
	size_t		 room;

	if (fclose(p->f) != 0)
		fatalx("out of memory");
	/* Free text an agency wrote (a worker, a reason) is shown as text,
	 * never as control characters for the terminal. */
	for (c = p->text; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	fputs(first, out);
	room = WIDTH > strlen(first) + 20 ? WIDTH - strlen(first) : 20;
	for (s = p->text; *s != '\0'; ) {
		e = s + strlen(s);
		if ((size_t)(e - s) > room) {
			/* The last blank that fits, else the first after. */
			for (brk = s + room; brk > s && *brk != ' '; brk--)
				;
			if (brk == s && (brk = strchr(s + room, ' ')) == NULL)
				brk = e;
			e = brk;
		}
		for (brk = e; brk > s && brk[-1] == ' '; brk--)
			;
		fprintf(out, "%.*s\n", (int)(brk - s), s);
		for (s = e; *s == ' '; s++)
			;
		if (*s != '\0')
			fputs(rest, out);
		room = WIDTH > strlen(rest) + 20 ? WIDTH - strlen(rest) : 20;
	}
	if (p->text[0] == '\0')
		fputc('\n', out);
	free(p->text);
	memset(p, 0, sizeof(*p));
}

/* An agency as its organisation and id: "Leeds CJIT (cjit.leeds)". */
static void
agency(FILE *f, json_t *rep, const char *id)
{
	const char	*org;

	if (id == NULL) {
		fputs("an agency not recorded", f);
		return;
	}
	org = json_string_value(json_object_get(json_object_get(rep,
	    "agencies"), id));
	if (org != NULL)
		fprintf(f, "%s (%s)", org, id);
	else
		fputs(id, f);
}

/* "a, b and c", each item in words (or an agency). */
static void
list(FILE *f, json_t *rep, json_t *a, const struct words *w, size_t nw,
    bool agencies)
{
	size_t	 i, n = json_array_size(a);
	json_t	*v;

	json_array_foreach(a, i, v) {
		if (i > 0)
			fputs(i + 1 == n ? " and " : ", ", f);
		if (agencies)
			agency(f, rep, json_string_value(v));
		else
			fputs(say(w, nw, json_string_value(v)), f);
	}
}

/*
 * A list of categories, one a line ("- your name, date of birth and
 * sex"): the first after `first`, the others after `rest`, each wrapped
 * under its own text.
 */
static void
cat_lines(FILE *out, json_t *a, const char *first, const char *rest)
{
	struct para	 p;
	char		 p1[64], p2[64];
	size_t		 i;
	json_t		*v;

	if (json_array_size(a) == 0) {
		fprintf(out, "%snothing\n", first);
		return;
	}
	snprintf(p2, sizeof(p2), "%s  ", rest);
	json_array_foreach(a, i, v) {
		snprintf(p1, sizeof(p1), "%s- ", i == 0 ? first : rest);
		para_open(&p);
		fputs(say(WORDS(cat_words), json_string_value(v)), p.f);
		para_put(&p, out, p1, p2);
	}
}

/* One "Label: text" line of a consent, wrapped under its text. */
static void
field(FILE *out, const char *label, const char *fmt, ...)
{
	struct para	p;
	char		first[40];
	va_list		ap;

	para_open(&p);
	va_start(ap, fmt);
	vfprintf(p.f, fmt, ap);
	va_end(ap);
	snprintf(first, sizeof(first), "  %-18s", label);
	para_put(&p, out, first, "                    ");
}

/* Who, when, by whom, on which identifiers. */
static void
header(FILE *out, json_t *rep)
{
	json_t		*subj = json_object_get(rep, "subject"), *v, *l;
	json_t		*b = json_object_get(rep, "broker");
	struct para	 p;
	const char	*k, *part, *id;
	char		 at[64];
	size_t		 i, n = 0;

	fputs("SUBJECT ACCESS REPORT\n\n", out);
	uk_time(json_string_value(json_object_get(rep, "produced")), at);
	field(out, "Produced:", "%s", at);
	part = json_string_value(json_object_get(b, "partnership"));
	id = json_string_value(json_object_get(b, "id"));
	para_open(&p);
	fprintf(p.f, "the information-sharing broker%s%s%s%s%s",
	    part != NULL ? " of " : "", part != NULL ? part : "",
	    id != NULL ? " (" : "", id != NULL ? id : "", id != NULL ? ")" : "");
	para_put(&p, out, "  By:               ", "                    ");
	para_open(&p);
	fputs("the person with ", p.f);
	json_object_foreach(subj, k, v) {
		if (n++ > 0)
			fputs(n == json_object_size(subj) ? " and " : ", ", p.f);
		fprintf(p.f, "%s %s", say(WORDS(scheme_words), k),
		    json_string_value(v));
	}
	para_put(&p, out, "  About:            ", "                    ");
	json_array_foreach(json_object_get(rep, "linked"), i, l) {
		const char *sch = json_string_value(json_object_get(l,
		    "scheme"));
		const char *val = json_string_value(json_object_get(l,
		    "value"));
		const char *cid = json_string_value(json_object_get(
		    json_object_get(l, "via"), "consent"));
		const char *mid = json_string_value(json_object_get(
		    json_object_get(l, "via"), "mid"));

		para_open(&p);
		if (val != NULL)
			fprintf(p.f, "%s %s", say(WORDS(scheme_words), sch),
			    val);
		else
			fprintf(p.f, "%s held only in coded form",
			    sch != NULL ? say(WORDS(scheme_words), sch) :
			    "an identifier");
		if (cid != NULL)
			fprintf(p.f, ", named with yours on consent %s", cid);
		else if (mid != NULL)
			fprintf(p.f, ", which appeared with yours on record %s",
			    mid);
		para_put(&p, out, i == 0 ? "  Also linked:      " :
		    "                    ", "                    ");
	}
	fputc('\n', out);
	para_open(&p);
	fprintf(p.f, "This report sets out what the partnership's "
	    "information-sharing broker recorded about you%s: the consents "
	    "you gave or refused, each time information about you was passed "
	    "to another agency, and each time it was held back.  The broker "
	    "passes records on and keeps no copy once they are delivered; the "
	    "agencies named below can tell you what they hold.",
	    json_array_size(json_object_get(rep, "linked")) > 0 ?
	    " under all the identifiers above" : "");
	para_put(&p, out, "", "");
}

static void
consent(FILE *out, json_t *rep, json_t *c, size_t i, size_t n)
{
	json_t		*ev = json_object_get(c, "evidence"), *d, *h, *v;
	struct para	 p;
	const char	*s;
	char		 from[64], until[64], at[64];
	size_t		 j, k;

	fprintf(out, "\nConsent %zu of %zu (reference %s)\n", i + 1, n,
	    json_string_value(json_object_get(c, "cid")));
	para_open(&p);
	agency(p.f, rep, json_string_value(json_object_get(c,
	    "recorded_by")));
	para_put(&p, out, "  Recorded by:      ", "                    ");
	if (json_array_size(json_object_get(c, "recipients")) > 0) {
		para_open(&p);
		list(p.f, rep, json_object_get(c, "recipients"), NULL, 0,
		    true);
		para_put(&p, out, "  Shares with:      ",
		    "                    ");
	}
	if (json_array_size(json_object_get(c, "purposes")) > 0) {
		para_open(&p);
		list(p.f, rep, json_object_get(c, "purposes"),
		    WORDS(purpose_words), false);
		para_put(&p, out, "  For:              ",
		    "                    ");
	}
	if (json_array_size(json_object_get(c, "categories")) > 0)
		cat_lines(out, json_object_get(c, "categories"),
		    "  Information:      ", "                    ");
	json_array_foreach(json_object_get(c, "deny"), j, d) {
		para_open(&p);
		if (json_array_size(json_object_get(d, "recipients")) > 0) {
			list(p.f, rep, json_object_get(d, "recipients"), NULL,
			    0, true);
			fputs(" may not receive ", p.f);
		} else
			fputs("no agency may receive ", p.f);
		if (json_array_size(json_object_get(d, "categories")) == 0)
			fputs("anything about you", p.f);
		/* Inline, between semicolons: the words of a category hold
		 * commas. */
		json_array_foreach(json_object_get(d, "categories"), k, v)
			fprintf(p.f, "%s%s", k == 0 ? "" : "; ",
			    say(WORDS(cat_words), json_string_value(v)));
		para_put(&p, out, j == 0 ? "  Except:           " :
		    "                    ", "                    ");
	}
	if (json_string_value(json_object_get(c, "valid_from")) != NULL) {
		uk_time(json_string_value(json_object_get(c, "valid_from")),
		    from);
		uk_time(json_string_value(json_object_get(c, "valid_until")),
		    until);
		field(out, "Valid:", "from %s until %s", from, until);
		field(out, "Explicit consent:", "%s",
		    json_is_true(json_object_get(c, "explicit")) ? "yes" :
		    "no");
	}
	field(out, "State:", "%s", say(WORDS(state_words),
	    json_string_value(json_object_get(c, "state"))));
	if (json_is_object(ev)) {
		para_open(&p);
		fputs(say(WORDS(method_words), json_string_value(
		    json_object_get(ev, "method"))), p.f);
		if ((s = json_string_value(json_object_get(ev, "form"))) !=
		    NULL)
			fprintf(p.f, ", on form \"%s\"", s);
		if ((s = json_string_value(json_object_get(ev, "worker"))) !=
		    NULL)
			fprintf(p.f, ", taken by %s", s);
		if ((s = json_string_value(json_object_get(ev,
		    "captured"))) != NULL) {
			uk_time(s, at);
			fprintf(p.f, " on %s", at);
		}
		if ((s = json_string_value(json_object_get(ev,
		    "reference"))) != NULL)
			fprintf(p.f, " (reference \"%s\")", s);
		para_put(&p, out, "  How recorded:     ",
		    "                    ");
	}
	if (json_array_size(json_object_get(c, "history")) > 0)
		fputs("  History:\n", out);
	json_array_foreach(json_object_get(c, "history"), j, h) {
		para_open(&p);
		uk_time(json_string_value(json_object_get(h, "at")), at);
		fprintf(p.f, "%s: %s", at, say(WORDS(history_words),
		    json_string_value(json_object_get(h, "state"))));
		if (json_is_integer(json_object_get(h, "version")))
			fprintf(p.f, " (version %lld)", (long long)
			    json_integer_value(json_object_get(h,
			    "version")));
		fputs(", recorded by ", p.f);
		agency(p.f, rep, json_string_value(json_object_get(h, "by")));
		if ((s = json_string_value(json_object_get(h, "worker"))) !=
		    NULL)
			fprintf(p.f, ", worker %s", s);
		if ((s = json_string_value(json_object_get(h, "reason"))) !=
		    NULL)
			fprintf(p.f, "; reason given: \"%s\"", s);
		para_put(&p, out, "    - ", "      ");
	}
}

static void
consents(FILE *out, json_t *rep)
{
	json_t	*cs = json_object_get(rep, "consents"), *c;
	size_t	 i;

	fputs("\n1. YOUR CONSENTS\n", out);
	if (json_array_size(cs) == 0)
		fputs("\nNo consent about you is recorded.\n", out);
	json_array_foreach(cs, i, c)
		consent(out, rep, c, i, json_array_size(cs));
}

static void
disclosures(FILE *out, json_t *rep)
{
	json_t		*ds = json_object_get(rep, "disclosures"), *d;
	struct para	 p;
	const char	*s;
	char		 at[64];
	size_t		 i;

	fputs("\n2. WHO RECEIVED INFORMATION ABOUT YOU\n", out);
	if (json_array_size(ds) == 0)
		fputs("\nNo information about you was passed to any "
		    "agency.\n", out);
	json_array_foreach(ds, i, d) {
		fputc('\n', out);
		para_open(&p);
		uk_time(json_string_value(json_object_get(d, "time")), at);
		fprintf(p.f, "On %s, ", at);
		agency(p.f, rep, json_string_value(json_object_get(d,
		    "recipient")));
		fprintf(p.f, " received %s from ", say(WORDS(type_words),
		    json_string_value(json_object_get(d, "type"))));
		agency(p.f, rep, json_string_value(json_object_get(d,
		    "sender")));
		if ((s = json_string_value(json_object_get(json_object_get(d,
		    "consent"), "cid"))) != NULL)
			fprintf(p.f, ", under your consent %s (version %lld)", s,
			    (long long)json_integer_value(json_object_get(
			    json_object_get(d, "consent"), "version")));
		fputs(".", p.f);
		para_put(&p, out, "- ", "  ");
		fputs("  Information shared:\n", out);
		cat_lines(out, json_object_get(d, "categories"), "    ",
		    "    ");
		if ((s = json_string_value(json_object_get(d, "mid"))) !=
		    NULL)
			fprintf(out, "  Record reference: %s\n", s);
	}
}

static void
withheld(FILE *out, json_t *rep)
{
	json_t		*ws = json_object_get(rep, "withheld"), *w;
	struct para	 p;
	const char	*reason;
	char		 at[64];
	size_t		 i;

	fputs("\n3. INFORMATION HELD BACK\n", out);
	if (json_array_size(ws) == 0)
		fputs("\nNo record about you was held back from an "
		    "agency.\n", out);
	json_array_foreach(ws, i, w) {
		fputc('\n', out);
		para_open(&p);
		uk_time(json_string_value(json_object_get(w, "time")), at);
		fprintf(p.f, "On %s, %s from ", at, say(WORDS(type_words),
		    json_string_value(json_object_get(w, "type"))));
		agency(p.f, rep, json_string_value(json_object_get(w,
		    "sender")));
		fputs(" was not passed to ", p.f);
		agency(p.f, rep, json_string_value(json_object_get(w,
		    "recipient")));
		reason = json_string_value(json_object_get(w, "reason"));
		if (reason != NULL && say(WORDS(reason_words), reason) !=
		    reason)
			fprintf(p.f, ": %s.", say(WORDS(reason_words),
			    reason));
		else
			fprintf(p.f, " (reason recorded: %s).", reason != NULL ?
			    reason : "none");
		para_put(&p, out, "- ", "  ");
		if (json_string_value(json_object_get(w, "mid")) != NULL)
			fprintf(out, "  Record reference: %s\n",
			    json_string_value(json_object_get(w, "mid")));
	}
}

static void
closing(FILE *out)
{
	struct para	p;

	fputs("\n4. WITHDRAWING CONSENT, AND QUESTIONS\n\n", out);
	para_open(&p);
	fputs("You can withdraw your consent at any time by telling any of "
	    "the agencies working with you.  From then on nothing more is "
	    "shared under it, and records still waiting to be delivered are "
	    "stopped; what an agency has already received stays with it, and "
	    "you can ask that agency about it.  If you have questions about "
	    "this report, or think something in it is wrong, contact the "
	    "agency that recorded your consent or the partnership's "
	    "information governance lead.", p.f);
	para_put(&p, out, "", "");
}

int
ig_subject_text(FILE *out, json_t *rep)
{
	header(out, rep);
	consents(out, rep);
	disclosures(out, rep);
	withheld(out, rep);
	closing(out);
	return ferror(out) || fflush(out) != 0 ? 1 : 0;
}
