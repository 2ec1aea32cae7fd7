/*
 * iniconf.c - table-driven INI configuration over inih.
 *
 * inih parses the syntax; this file reads the lines for it, so that it
 * knows the line number of every key and the full name of every section
 * (inih cuts section names at 50 characters and never reports a section
 * without keys), and checks every key against the table.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "iniconf.h"

#define ICF_KEYS_MAX	64	/* keys per section: one bit each in `seen` */

/* A section met in the file. */
struct icf_seen {
	char				*name;
	const struct iniconf_section	*sec;
	uint64_t			 keys;	/* bit i: keys[i] was given */
};

struct icf {
	const char			*path;
	FILE				*fp;
	const struct iniconf_section	*table;
	void				*conf;
	char				 dir[PATH_MAX];	/* for relative paths */
	unsigned			 line;		/* of the line last read */
	bool				 failed;
	char				*err;
	size_t				 errlen;
	struct icf_seen			*seen;		/* sections in file order */
	size_t				 nseen;
	struct icf_seen			*cur;		/* the section being read */
	void				*obj;		/* its object */
};

static char	*icf_read(char *, int, void *);
static int	 icf_handler(void *, const char *, const char *, const char *);
static int	 icf_section(struct icf *, const char *);
static int	 rtype_item(void *, const char *, size_t, char *, size_t);
static int	 icf_has_separator(const char *);
static void	 icf_required(struct icf *);
static const struct iniconf_section *icf_find_section(const struct icf *,
		    const char *, const char **);
static int	 icf_value(struct icf *, const struct iniconf_key *,
		    const char *, char *, size_t);
static int	 icf_path(struct icf *, const struct iniconf_key *,
		    const char *, char *, char *, size_t);
static int	 icf_uint(const struct iniconf_key *, const char *, void *,
		    char *, size_t);
static int	 icf_bool(const char *, bool *, char *, size_t);
static void	 icf_fail(struct icf *, bool, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	 icf_why(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* Words accepted for a boolean, in pairs of true and false. */
static const struct {
	const char	*word;
	bool		 value;
} icf_bools[] = {
	{ "yes", true }, { "no", false },
	{ "true", true }, { "false", false },
	{ "on", true }, { "off", false },
	{ "1", true }, { "0", false },
};

int
iniconf_load(const char *path, const struct iniconf_section *table,
    void *conf, char *err, size_t errlen)
{
	struct icf	 st;
	const struct iniconf_section *sec;
	char		 tmp[PATH_MAX], *slash;
	size_t		 i;
	int		 rc = -1, r;

	memset(&st, 0, sizeof(st));
	st.path = path;
	st.table = table;
	st.conf = conf;
	st.err = err;
	st.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';

	/* Relative paths in the file are relative to the file's directory. */
	if (strlen(path) >= sizeof(tmp)) {
		icf_fail(&st, false, "path too long");
		goto fail;
	}
	memcpy(tmp, path, strlen(path) + 1);
	if ((slash = strrchr(tmp, '/')) == NULL)
		memcpy(tmp, ".", 2);
	else if (slash == tmp)
		tmp[1] = '\0';
	else
		*slash = '\0';
	if (realpath(tmp, st.dir) == NULL) {
		icf_fail(&st, false, "%s", strerror(errno));
		goto fail;
	}

	if ((st.fp = fopen(path, "r")) == NULL) {
		icf_fail(&st, false, "%s", strerror(errno));
		goto fail;
	}
	r = ini_parse_stream(icf_read, &st, icf_handler, &st);
	if (!st.failed && ferror(st.fp))
		icf_fail(&st, false, "read error");
	if (!st.failed && r != 0) {
		/* inih counts lines as we do: every line fits its buffer. */
		st.line = r > 0 ? (unsigned)r : st.line;
		icf_fail(&st, true, "syntax error");
	}
	if (st.failed)
		goto fail;
	icf_required(&st);
	if (st.failed)
		goto fail;

	for (sec = table; sec->name != NULL; sec++) {
		if (!(sec->flags & ICF_REQUIRED))
			continue;
		for (i = 0; i < st.nseen; i++)
			if (st.seen[i].sec == sec)
				break;
		if (i == st.nseen) {
			icf_fail(&st, false, "missing section [%s]", sec->name);
			goto fail;
		}
	}
	rc = 0;
 fail:
	if (st.fp != NULL)
		(void)fclose(st.fp);
	for (i = 0; i < st.nseen; i++)
		free(st.seen[i].name);
	free(st.seen);
	return rc;
}

/*
 * inih's reader: one line per call, numbered, with leading blanks removed
 * (inih would take an indented line for the continuation of the previous
 * value).  Section headers are handled here, where the whole name is
 * known.  Returning NULL ends the parse.
 */
static char *
icf_read(char *buf, int size, void *arg)
{
	struct icf	*st = arg;
	char		*p, *end;
	size_t		 len;
	int		 r;

	if (st->failed || fgets(buf, size, st->fp) == NULL)
		return NULL;
	st->line++;
	len = strlen(buf);
	/* inih's buffer holds size - 1 bytes, the newline included. */
	if ((len == 0 || buf[len - 1] != '\n') && !feof(st->fp)) {
		icf_fail(st, true, "line longer than %d characters", size - 2);
		return NULL;
	}

	p = buf;
	if (st->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	while (*p == ' ' || *p == '\t')
		p++;
	if (p != buf)
		memmove(buf, p, strlen(p) + 1);

	/*
	 * Syntax errors are caught here too: inih would go on past them, and
	 * a later line's error would be reported instead.
	 */
	if (buf[0] == '[') {
		if ((end = strchr(buf, ']')) == NULL) {
			icf_fail(st, true, "missing ']' in section header");
			return NULL;
		}
		*end = '\0';
		r = icf_section(st, buf + 1);
		*end = ']';
		if (r == -1)
			return NULL;
	} else if (buf[0] != '\0' && strchr(";#\r\n", buf[0]) == NULL &&
	    !icf_has_separator(buf)) {
		icf_fail(st, true, "expected 'key = value'");
		return NULL;
	}
	return buf;
}

/*
 * Whether a line has inih's name/value separator ('=' or ':') before any
 * inline comment (';' after a blank).
 */
static int
icf_has_separator(const char *p)
{
	const char	*q;

	for (q = p; *q != '\0'; q++) {
		if (*q == '=' || *q == ':')
			return 1;
		if (*q == ';' && q > p && (q[-1] == ' ' || q[-1] == '\t'))
			return 0;
	}
	return 0;
}

/*
 * A section header: find the section and its object.  A section given
 * again is read on into the same object (open is called again with the
 * same name); its keys still may not repeat.
 */
static int
icf_section(struct icf *st, const char *name)
{
	const struct iniconf_section *sec;
	struct icf_seen	*seen;
	const char	*suffix;
	char		 why[256];
	size_t		 i;

	st->cur = NULL;
	if ((sec = icf_find_section(st, name, &suffix)) == NULL) {
		icf_fail(st, true, "unknown section [%s]", name);
		return -1;
	}
	for (i = 0; i < st->nseen; i++)
		if (strcmp(st->seen[i].name, name) == 0)
			break;
	if (i == st->nseen) {
		seen = reallocarray(st->seen, st->nseen + 1, sizeof(*seen));
		if (seen == NULL) {
			icf_fail(st, true, "%s", strerror(errno));
			return -1;
		}
		st->seen = seen;
		seen = &st->seen[st->nseen];
		memset(seen, 0, sizeof(*seen));
		if ((seen->name = strdup(name)) == NULL) {
			icf_fail(st, true, "%s", strerror(errno));
			return -1;
		}
		seen->sec = sec;
		st->nseen++;
	}

	why[0] = '\0';
	if (sec->open == NULL)
		st->obj = st->conf;
	else if ((st->obj = sec->open(st->conf, suffix, why,
	    sizeof(why))) == NULL) {
		icf_fail(st, true, "[%s]: %s", name,
		    why[0] != '\0' ? why : "cannot be opened");
		return -1;
	}
	st->cur = &st->seen[i];
	return 0;
}

/* Check that every section met had its required keys. */
static void
icf_required(struct icf *st)
{
	struct icf_seen	*seen;
	size_t		 i, j;

	for (j = 0; j < st->nseen && !st->failed; j++) {
		seen = &st->seen[j];
		for (i = 0; seen->sec->keys[i].name != NULL; i++) {
			if ((seen->sec->keys[i].flags & ICF_REQUIRED) &&
			    !(seen->keys & (UINT64_C(1) << i))) {
				icf_fail(st, false, "missing required key '%s' "
				    "in [%s]", seen->sec->keys[i].name,
				    seen->name);
				return;
			}
		}
	}
}

/* The table entry for a section name; *suffix gets a prefix's rest. */
static const struct iniconf_section *
icf_find_section(const struct icf *st, const char *name, const char **suffix)
{
	const struct iniconf_section *sec;
	size_t		 len;

	for (sec = st->table; sec->name != NULL; sec++) {
		len = strlen(sec->name);
		if (len > 0 && sec->name[len - 1] == '.') {
			if (strncmp(name, sec->name, len) == 0 &&
			    name[len] != '\0') {
				*suffix = name + len;
				return sec;
			}
		} else if (strcmp(name, sec->name) == 0) {
			*suffix = "";
			return sec;
		}
	}
	return NULL;
}

/* inih's handler: one key of the current section. */
static int
icf_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct icf	*st = arg;
	struct icf_seen	*seen;
	const struct iniconf_key *key;
	char		 why[256];
	size_t		 i;

	(void)section;	/* inih's copy may be cut short; ours is whole */
	if (st->failed)
		return 0;
	if ((seen = st->cur) == NULL) {
		icf_fail(st, true, "key '%s' outside any section", name);
		return 0;
	}
	for (i = 0; seen->sec->keys[i].name != NULL; i++)
		if (strcmp(seen->sec->keys[i].name, name) == 0)
			break;
	key = &seen->sec->keys[i];
	if (key->name == NULL || i >= ICF_KEYS_MAX) {
		icf_fail(st, true, "unknown key '%s' in [%s]", name,
		    seen->name);
		return 0;
	}
	if (seen->keys & (UINT64_C(1) << i)) {
		icf_fail(st, true, "key '%s' given twice in [%s]", name,
		    seen->name);
		return 0;
	}
	seen->keys |= UINT64_C(1) << i;

	why[0] = '\0';
	if (icf_value(st, key, value, why, sizeof(why)) == -1) {
		icf_fail(st, true, "%s: %s", name,
		    why[0] != '\0' ? why : "bad value");
		return 0;
	}
	return 1;
}

/* Read one value into the section object as its key's type says. */
static int
icf_value(struct icf *st, const struct iniconf_key *key, const char *value,
    char *why, size_t whylen)
{
	char	*dst = (char *)st->obj + key->off;

	if ((key->flags & ICF_REQUIRED) && value[0] == '\0' &&
	    key->type != ICF_FUNC)
		return icf_why(why, whylen, "must not be empty");
	switch (key->type) {
	case ICF_STRING:
		if (strlen(value) >= key->size)
			return icf_why(why, whylen, "longer than %zu characters",
			    key->size - 1);
		memcpy(dst, value, strlen(value) + 1);
		return 0;
	case ICF_PATH:
		return icf_path(st, key, value, dst, why, whylen);
	case ICF_UINT:
		return icf_uint(key, value, dst, why, whylen);
	case ICF_BOOL:
		if (key->size != sizeof(bool))
			return icf_why(why, whylen, "bad table entry");
		return icf_bool(value, (bool *)(void *)dst, why, whylen);
	case ICF_FUNC:
		return key->parse(st->obj, value, why, whylen);
	}
	return icf_why(why, whylen, "bad table entry");
}

/* A path, made absolute from the file's directory, checked to exist. */
static int
icf_path(struct icf *st, const struct iniconf_key *key, const char *value,
    char *dst, char *why, size_t whylen)
{
	struct stat	 sb;
	int		 n;

	if (value[0] == '\0') {
		dst[0] = '\0';
		return 0;
	}
	if (value[0] == '/')
		n = snprintf(dst, key->size, "%s", value);
	else
		n = snprintf(dst, key->size, "%s/%s",
		    strcmp(st->dir, "/") == 0 ? "" : st->dir, value);
	if (n < 0 || (size_t)n >= key->size)
		return icf_why(why, whylen, "path too long");
	if (!(key->flags & (ICF_FILE | ICF_DIR)))
		return 0;
	if (stat(dst, &sb) == -1)
		return icf_why(why, whylen, "%s: %s", dst, strerror(errno));
	if ((key->flags & ICF_FILE) && !S_ISREG(sb.st_mode))
		return icf_why(why, whylen, "%s: not a regular file", dst);
	if ((key->flags & ICF_DIR) && !S_ISDIR(sb.st_mode))
		return icf_why(why, whylen, "%s: not a directory", dst);
	return 0;
}

/* A decimal number within the key's bounds, stored in `size` bytes. */
static int
icf_uint(const struct iniconf_key *key, const char *value, void *dst,
    char *why, size_t whylen)
{
	unsigned long long	 v;
	char			*end;

	if (value[0] < '0' || value[0] > '9')
		return icf_why(why, whylen, "'%s' is not a number", value);
	errno = 0;
	v = strtoull(value, &end, 10);
	if (*end != '\0')
		return icf_why(why, whylen, "'%s' is not a number", value);
	if (errno == ERANGE || v < key->min || v > key->max)
		return icf_why(why, whylen, "'%s' is out of range %llu..%llu",
		    value, key->min, key->max);
	switch (key->size) {
	case sizeof(uint8_t):
		if (v > UINT8_MAX)
			break;
		*(uint8_t *)dst = (uint8_t)v;
		return 0;
	case sizeof(uint16_t):
		if (v > UINT16_MAX)
			break;
		*(uint16_t *)dst = (uint16_t)v;
		return 0;
	case sizeof(uint32_t):
		if (v > UINT32_MAX)
			break;
		*(uint32_t *)dst = (uint32_t)v;
		return 0;
	case sizeof(uint64_t):
		*(uint64_t *)dst = (uint64_t)v;
		return 0;
	default:
		return icf_why(why, whylen, "bad table entry");
	}
	return icf_why(why, whylen, "'%s' is too large", value);
}

static int
icf_bool(const char *value, bool *dst, char *why, size_t whylen)
{
	size_t	i;

	for (i = 0; i < sizeof(icf_bools) / sizeof(icf_bools[0]); i++) {
		if (strcmp(value, icf_bools[i].word) == 0) {
			*dst = icf_bools[i].value;
			return 0;
		}
	}
	return icf_why(why, whylen, "'%s' is not yes or no", value);
}

int
iniconf_list(const char *value, iniconf_item_fn item, void *arg, char *why,
    size_t whylen)
{
	const char	*p, *s, *e;

	for (p = value; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '\0')
		return 0;
	for (;;) {
		for (s = p; *s == ' ' || *s == '\t'; s++)
			;
		for (e = s; *e != ',' && *e != '\0'; e++)
			;
		p = e;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == s)
			return icf_why(why, whylen, "empty item in list");
		if (item(arg, s, (size_t)(e - s), why, whylen) == -1)
			return -1;
		if (*p == '\0')
			return 0;
		p++;
	}
}

static int
rtype_item(void *arg, const char *s, size_t len, char *why, size_t whylen)
{
	unsigned	*mask = arg;
	int		 t;

	if ((t = cc_rtype_parse(s, len)) == -1) {
		(void)snprintf(why, whylen, "'%.*s' is not a record type",
		    (int)(len > 64 ? 64 : len), s);
		return -1;
	}
	*mask |= 1u << t;
	return 0;
}

int
iniconf_rtypes(const char *value, unsigned *mask, char *why, size_t whylen)
{
	*mask = 0;
	return iniconf_list(value, rtype_item, mask, why, whylen);
}

int
iniconf_area_add(char (*areas)[ICF_AREA_LEN], size_t *n, size_t max,
    const char *s, size_t len, char *why, size_t whylen)
{
	size_t	i;

	if (!cc_area_valid(s, len))
		return icf_why(why, whylen, "'%.*s' is not an ONS area code "
		    "(like E08000035)", (int)(len > 64 ? 64 : len), s);
	for (i = 0; i < *n; i++)
		if (strncmp(areas[i], s, len) == 0 && areas[i][len] == '\0')
			return icf_why(why, whylen, "area %.*s listed twice",
			    (int)len, s);
	if (*n >= max)
		return icf_why(why, whylen, "more than %zu areas", max);
	memcpy(areas[*n], s, len);
	areas[*n][len] = '\0';
	(*n)++;
	return 0;
}

/* Record the first failure: "file:line: what" or "file: what". */
static void
icf_fail(struct icf *st, bool atline, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (st->failed)
		return;
	st->failed = true;
	if (st->errlen == 0)
		return;
	if (atline)
		n = snprintf(st->err, st->errlen, "%s:%u: ", st->path,
		    st->line);
	else
		n = snprintf(st->err, st->errlen, "%s: ", st->path);
	if (n < 0 || (size_t)n >= st->errlen)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(st->err + n, st->errlen - n, fmt, ap);
	va_end(ap);
}

/* Fill a reason; returns -1 for tail use. */
static int
icf_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list	ap;

	if (whylen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -1;
}
