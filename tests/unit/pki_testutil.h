/*
 * pki_testutil.h - fresh partnerships for the unit tests of pki and auth.
 *
 * Making a partnership runs openssl a few dozen times, so a test file
 * makes its partnerships once, in the runner's PRE_ALL hook, and hands
 * their paths to the tests (each in its own process) in the environment;
 * POST_ALL removes them (unless KEEP is set).  A test that changes a file
 * works on a copy.
 *
 * Environment: CC_SRC, the repository root (default ".").
 */
#ifndef CC_PKI_TESTUTIL_H
#define CC_PKI_TESTUTIL_H

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *tu_src(void) __attribute__((unused));
static int	tu_sh(const char *, ...) __attribute__((format(printf, 1, 2),
		    unused));
static int	tu_mkpart(const char *, const char *, const char *)
		    __attribute__((unused));
static const char *tu_dir(const char *) __attribute__((unused));
static void	tu_rmpart(const char *) __attribute__((unused));
static const char *tu_path(const char *, const char *) __attribute__((unused));

static const char *
tu_src(void)
{
	const char	*s = getenv("CC_SRC");

	return s != NULL && s[0] != '\0' ? s : ".";
}

/* Run a shell command; returns its exit status (0 on success). */
static int
tu_sh(const char *fmt, ...)
{
	char	cmd[4 * PATH_MAX];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	return system(cmd);
}

/*
 * Make a partnership valid for 30 days in a new temporary directory and
 * run `more` (shell commands, "" for none) inside it with $M naming
 * mkpartnership.sh; export the directory as the environment variable
 * `var`.  Returns 0, or -1 (what failed is on stderr).
 */
static int
tu_mkpart(const char *var, const char *tag, const char *more)
{
	char	dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/cc-%s-XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp", tag);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		return -1;
	}
	if (tu_sh("cd '%s' && M='%s/certs-example/mkpartnership.sh' && "
	    "{ sh \"$M\" -d 30 . && %s true; } >mk.log 2>&1 || "
	    "{ cat mk.log >&2; exit 1; }", dir, tu_src(), more) != 0) {
		fprintf(stderr, "cannot make a partnership in %s\n", dir);
		return -1;
	}
	return setenv(var, dir, 1);
}

/* The partnership directory made under `var`, or NULL. */
static const char *
tu_dir(const char *var)
{
	return getenv(var);
}

static void
tu_rmpart(const char *var)
{
	const char	*dir = getenv(var);

	if (dir != NULL && getenv("KEEP") == NULL &&
	    strncmp(dir, "/", 1) == 0 && strstr(dir, "/cc-") != NULL)
		(void)tu_sh("rm -rf '%s'", dir);
}

/* dir/name in one of a few static buffers. */
static const char *
tu_path(const char *dir, const char *name)
{
	static char	p[8][PATH_MAX + 64];
	static int	i;

	i = (i + 1) % 8;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir != NULL ? dir : "(none)",
	    name);
	return p[i];
}

#endif /* CC_PKI_TESTUTIL_H */
