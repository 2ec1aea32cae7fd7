/*
 * igrequest.c - the identifiers of a subject access request, read from a
 * file or standard input (`ccbroker audit subject [FILE]`).
 *
 * An identifier on the command line is seen by every user of the host in
 * ps(1) and kept in the operator's shell history; a request is therefore
 * read from a file (which the operator can keep with the case and remove)
 * or typed on standard input.  What was read is wiped once parsed, and no
 * message ever repeats it: a fault is named by its line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "igcmd.h"

#define REQUEST_MAX	65536	/* a request is a few identifiers */

static const char *const scheme_name[] = { "pnc", "noms", "crn" };
static const char *const scheme_words[] = { "PNC", "NOMS number", "CRN" };
#define NSCHEME	(sizeof(scheme_name) / sizeof(scheme_name[0]))

/* What has been read so far: the line each scheme was given on. */
struct request {
	struct cc_subject	*subj;
	size_t			 line[NSCHEME];	/* 0: not given */
	const char		*name;
	char			*err;
	size_t			 errlen;
};

static int	request_fail(struct request *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	scheme_of(const char *, size_t);
static int	request_put(struct request *, size_t, int, const char *,
		    size_t);
static int	request_lines(struct request *, char *);
static int	request_json(struct request *, const char *, size_t);
static size_t	line_of(const char *, size_t, const char *);
static bool	looks_like_identifier(const char *);

static int
request_fail(struct request *r, size_t line, const char *fmt, ...)
{
	char	why[256];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(r->err, r->errlen, "%s:%zu: %s", r->name, line, why);
	else
		snprintf(r->err, r->errlen, "%s: %s", r->name, why);
	return -1;
}

/* The scheme a name stands for (any case), or -1. */
static int
scheme_of(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < NSCHEME; i++)
		if (strlen(scheme_name[i]) == n &&
		    strncasecmp(s, scheme_name[i], n) == 0)
			return (int)i;
	return -1;
}

/*
 * One identifier of scheme s, checked as the wire checks it (a PNC in any
 * accepted form, kept canonical).  The same identifier given twice is
 * taken once; a second, different one of a scheme is refused: a request
 * names one person.
 */
static int
request_put(struct request *r, size_t line, int s, const char *v, size_t n)
{
	char		 canon[sizeof(r->subj->pnc)];
	char		*slot;
	size_t		 size;
	time_t		 t = time(NULL);
	struct tm	 tm;

	switch (s) {
	case 0:
		if (gmtime_r(&t, &tm) == NULL || cc_pnc_canonical(v, n,
		    tm.tm_year + 1900, canon) == -1)
			return request_fail(r, line, "not a valid PNC "
			    "(YYYY/NNNNNNNC, or a shorter form, with its check "
			    "letter)");
		slot = r->subj->pnc;
		size = sizeof(r->subj->pnc);
		break;
	case 1:
		if (!cc_noms_valid(v, n) || n >= sizeof(canon))
			return request_fail(r, line, "not a valid NOMS number "
			    "(a letter, four digits, two letters)");
		memcpy(canon, v, n);
		canon[n] = '\0';
		slot = r->subj->noms;
		size = sizeof(r->subj->noms);
		break;
	default:
		if (!cc_crn_valid(v, n) || n >= sizeof(canon))
			return request_fail(r, line, "not a valid CRN (a "
			    "letter and six digits)");
		memcpy(canon, v, n);
		canon[n] = '\0';
		slot = r->subj->crn;
		size = sizeof(r->subj->crn);
		break;
	}
	if (r->line[s] != 0 && strcmp(slot, canon) != 0) {
		explicit_bzero(canon, sizeof(canon));
		return request_fail(r, line, "a second %s, not the one on line "
		    "%zu: a request is about one person, by at most one "
		    "identifier of each scheme", scheme_words[s], r->line[s]);
	}
	if (r->line[s] == 0) {
		snprintf(slot, size, "%s", canon);
		r->line[s] = line;
	}
	explicit_bzero(canon, sizeof(canon));
	return 0;
}

/* One identifier a line: scheme=value. */
static int
request_lines(struct request *r, char *text)
{
	char	*line, *eq, *end;
	size_t	 lineno = 0;
	int	 s;

	while ((line = strsep(&text, "\n")) != NULL) {
		lineno++;
		while (isspace((unsigned char)*line))
			line++;
		end = line + strlen(line);
		while (end > line && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (*line == '\0' || *line == '#')
			continue;
		if ((eq = strchr(line, '=')) == NULL)
			return request_fail(r, lineno, "want pnc=..., noms=... "
			    "or crn=..., one identifier a line");
		end = eq;
		while (end > line && isspace((unsigned char)end[-1]))
			end--;
		if ((s = scheme_of(line, (size_t)(end - line))) == -1)
			return request_fail(r, lineno, "not an identifier "
			    "scheme before '=': want pnc, noms or crn");
		for (eq++; isspace((unsigned char)*eq); eq++)
			;
		if (request_put(r, lineno, s, eq, strlen(eq)) == -1)
			return -1;
	}
	return 0;
}

/* The line of text (1-based) where `needle` first appears, or 0. */
static size_t
line_of(const char *text, size_t len, const char *needle)
{
	const char	*p = text, *end = text + len;
	size_t		 n = strlen(needle), line = 1;

	for (; p + n <= end; p++) {
		if (memcmp(p, needle, n) == 0)
			return line;
		if (*p == '\n')
			line++;
	}
	return 0;
}

/* One JSON object: {"pnc": "...", "noms": "...", "crn": "..."}. */
static int
request_json(struct request *r, const char *text, size_t len)
{
	json_error_t	 jerr;
	json_t		*j, *v;
	const char	*k;
	char		 quoted[16];
	size_t		 line;
	int		 s, rc = 0;

	/* jansson's own message quotes the text near the fault: not used. */
	if ((j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL)
		return request_fail(r, jerr.line > 0 ? (size_t)jerr.line : 0,
		    "not valid JSON (want one object {\"pnc\": \"...\", "
		    "\"noms\": \"...\", \"crn\": \"...\"}, or one identifier "
		    "a line)");
	if (!json_is_object(j)) {
		json_decref(j);
		return request_fail(r, 1, "want one JSON object {\"pnc\": "
		    "\"...\", \"noms\": \"...\", \"crn\": \"...\"}");
	}
	json_object_foreach(j, k, v) {
		s = scheme_of(k, strlen(k));
		if (s >= 0) {
			snprintf(quoted, sizeof(quoted), "\"%s\"",
			    scheme_name[s]);
			line = line_of(text, len, quoted);
		} else
			line = 0;
		if (s == -1) {
			rc = request_fail(r, 0, "a key other than pnc, noms "
			    "and crn");
			break;
		}
		if (!json_is_string(v)) {
			rc = request_fail(r, line, "the %s must be a string",
			    scheme_words[s]);
			break;
		}
		if ((rc = request_put(r, line > 0 ? line : 1, s,
		    json_string_value(v), json_string_length(v))) == -1)
			break;
	}
	json_decref(j);
	return rc;
}

int
ig_request_read(FILE *f, const char *name, struct cc_subject *subj,
    char *err, size_t errlen)
{
	struct request	 r;
	char		*buf;
	size_t		 len = 0, n, i;
	int		 rc = -1;

	memset(subj, 0, sizeof(*subj));
	memset(&r, 0, sizeof(r));
	r.subj = subj;
	r.name = name;
	r.err = err;
	r.errlen = errlen;
	if ((buf = malloc(REQUEST_MAX + 1)) == NULL)
		return request_fail(&r, 0, "out of memory");
	while (len <= REQUEST_MAX &&
	    (n = fread(buf + len, 1, REQUEST_MAX + 1 - len, f)) > 0)
		len += n;
	if (ferror(f))
		(void)request_fail(&r, 0, "%s", strerror(errno));
	else if (len > REQUEST_MAX)
		(void)request_fail(&r, 0, "more than %d bytes: not a request",
		    REQUEST_MAX);
	else if (memchr(buf, '\0', len) != NULL)
		(void)request_fail(&r, 0, "not text");
	else {
		buf[len] = '\0';
		for (i = 0; i < len && isspace((unsigned char)buf[i]); i++)
			;
		rc = i < len && buf[i] == '{' ? request_json(&r, buf, len) :
		    request_lines(&r, buf);
		if (rc == 0 && subj->pnc[0] == '\0' && subj->noms[0] ==
		    '\0' && subj->crn[0] == '\0')
			rc = request_fail(&r, 0, "no identifier given: want "
			    "pnc=..., noms=... or crn=..., one a line");
	}
	explicit_bzero(buf, REQUEST_MAX + 1);
	free(buf);
	if (rc != 0)
		explicit_bzero(subj, sizeof(*subj));
	return rc;
}

/* Would a file name be an identifier given in its place? */
static bool
looks_like_identifier(const char *s)
{
	const char	*eq = strchr(s, '=');
	char		 canon[14];
	size_t		 n = strlen(s);

	if (eq != NULL && scheme_of(s, (size_t)(eq - s)) >= 0)
		return true;
	return cc_pnc_canonical(s, n, 2000, canon) == 0 ||
	    cc_noms_valid(s, n) || cc_crn_valid(s, n);
}

int
ig_request_load(const char *path, struct cc_subject *subj, char *err,
    size_t errlen)
{
	FILE	*f;
	int	 rc;

	if (path == NULL || strcmp(path, "-") == 0) {
		if (isatty(STDIN_FILENO))
			fputs("identifiers, one a line as pnc=..., noms=... or "
			    "crn=...; end with ^D\n", stderr);
		return ig_request_read(stdin, "stdin", subj, err, errlen);
	}
	if ((f = fopen(path, "r")) == NULL) {
		/* The operator may have put the identifier where the file
		 * goes: it is then not repeated. */
		if (looks_like_identifier(path))
			snprintf(err, errlen, "FILE is an identifier, not a "
			    "file: give identifiers in a file or on standard "
			    "input, never on the command line");
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = ig_request_read(f, path, subj, err, errlen);
	fclose(f);
	return rc;
}
