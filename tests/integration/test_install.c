/*
 * test_install.c - `make install` into a temporary DESTDIR puts every file
 * where docs/OPERATIONS.md says, and systemd accepts the units.
 *
 * The install runs the real Makefile from CC_SRC (the repository root)
 * with BUILD=CC_BUILD, so it installs the build under test.  The units are
 * checked with `systemd-analyze verify` where that exists and can verify a
 * known-good unit here (a chroot or container may have the program but no
 * systemd to speak of); otherwise that part is skipped with a message.
 * KEEP=1 keeps the temporary directory.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#define PREFIX	"/usr"

struct installed {
	const char	*path;		/* under DESTDIR */
	mode_t		 type;		/* S_IFREG or S_IFLNK */
	bool		 exec;		/* must be executable */
};

static const struct installed installed[] = {
	{ PREFIX "/bin/ccbroker", S_IFREG, true },
	{ PREFIX "/bin/ccagent", S_IFREG, true },
	{ PREFIX "/lib/libccagent.so.1", S_IFREG, false },
	{ PREFIX "/lib/libccagent.so", S_IFLNK, false },
	{ PREFIX "/lib/libccagent.a", S_IFREG, false },
	{ PREFIX "/include/ccagent.h", S_IFREG, false },
	{ PREFIX "/include/cc_proto.h", S_IFREG, false },
	{ PREFIX "/lib/pkgconfig/ccagent.pc", S_IFREG, false },
	{ PREFIX "/share/man/man5/ccbroker.conf.5", S_IFREG, false },
	{ PREFIX "/share/man/man5/ccagent.conf.5", S_IFREG, false },
	{ PREFIX "/share/man/man8/ccbroker.8", S_IFREG, false },
	{ PREFIX "/share/man/man8/ccagent.8", S_IFREG, false },
	{ PREFIX "/share/doc/ccbroker/broker.conf.example", S_IFREG, false },
	{ PREFIX "/share/doc/ccbroker/agent.conf.example", S_IFREG, false },
	{ PREFIX "/share/doc/ccbroker/PROTOCOL.md", S_IFREG, false },
	{ PREFIX "/share/doc/ccbroker/OPERATIONS.md", S_IFREG, false },
	{ PREFIX "/lib/systemd/system/ccbroker.service", S_IFREG, false },
	{ PREFIX "/lib/systemd/system/ccagent.service", S_IFREG, false },
};

static const char *const units[] = { "ccbroker", "ccagent" };

static char	tmp[] = "/tmp/cc-install.XXXXXX";
static char	root[sizeof(tmp) + 16];

static const char *env_or(const char *, const char *);
static int	 sh(const char *, ...) __attribute__((format(printf, 1, 2)));
static char	*slurp(const char *);
static bool	 has_program(const char *);
static void	 install_once(void);
static void	 cleanup(void);

static const char *
env_or(const char *name, const char *dflt)
{
	const char	*v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : dflt;
}

/* Run a shell command; its exit status, or -1 when it did not exit. */
static int
sh(const char *fmt, ...)
{
	char	cmd[8192];
	va_list	ap;
	int	n, st;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert(n > 0 && (size_t)n < sizeof(cmd), "command too long");
	st = system(cmd);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A whole file as a string (malloc'd), or NULL. */
static char *
slurp(const char *path)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) ==
	    NULL) {
		fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool
has_program(const char *name)
{
	return sh("command -v %s >/dev/null 2>&1", name) == 0;
}

/* make install DESTDIR=tmp/root PREFIX=/usr, from the source tree. */
static void
install_once(void)
{
	char	*log;

	cr_assert_not_null(mkdtemp(tmp), "mkdtemp");
	(void)snprintf(root, sizeof(root), "%s/root", tmp);
	if (sh("make -C '%s' install DESTDIR='%s' PREFIX=%s BUILD='%s' "
	    ">'%s/make.log' 2>&1", env_or("CC_SRC", "."), root, PREFIX,
	    env_or("CC_BUILD", "build"), tmp) != 0) {
		char path[sizeof(tmp) + 16];

		(void)snprintf(path, sizeof(path), "%s/make.log", tmp);
		log = slurp(path);
		cr_assert_fail("make install failed:\n%s", log != NULL ? log : "");
	}
}

static void
cleanup(void)
{
	if (tmp[sizeof(tmp) - 7] == 'X' || getenv("KEEP") != NULL)
		return;
	(void)sh("rm -rf '%s'", tmp);
}

TestSuite(install, .init = install_once, .fini = cleanup);

Test(install, puts_every_file_in_place_under_destdir)
{
	struct stat	sb;
	char		path[512];
	size_t		i;

	for (i = 0; i < sizeof(installed) / sizeof(installed[0]); i++) {
		(void)snprintf(path, sizeof(path), "%s%s", root,
		    installed[i].path);
		cr_assert(lstat(path, &sb) == 0, "missing %s", installed[i].path);
		cr_assert((sb.st_mode & S_IFMT) == installed[i].type,
		    "%s: not a %s", installed[i].path,
		    installed[i].type == S_IFLNK ? "symbolic link" : "file");
		if (installed[i].exec)
			cr_assert(access(path, X_OK) == 0, "%s not executable",
			    installed[i].path);
	}
	/* Nothing escapes DESTDIR's prefix. */
	cr_assert(sh("test -z \"$(ls -A '%s' | grep -vx usr)\"", root) == 0,
	    "files installed outside %s", PREFIX);
}

Test(install, library_symlink_names_the_soname)
{
	char	path[512], target[64];
	ssize_t	n;

	(void)snprintf(path, sizeof(path), "%s" PREFIX "/lib/libccagent.so",
	    root);
	n = readlink(path, target, sizeof(target) - 1);
	cr_assert(n > 0, "readlink %s", path);
	target[n] = '\0';
	cr_assert_str_eq(target, "libccagent.so.1");
}

Test(install, pkg_config_file_names_the_install_prefix)
{
	char	path[512], *pc;

	(void)snprintf(path, sizeof(path), "%s" PREFIX
	    "/lib/pkgconfig/ccagent.pc", root);
	cr_assert_not_null(pc = slurp(path), "cannot read %s", path);
	cr_assert_not_null(strstr(pc, "prefix=" PREFIX "\n"), "%s", pc);
	cr_assert_null(strchr(pc, '@'), "unsubstituted template:\n%s", pc);
	cr_assert_not_null(strstr(pc, "-lccagent"), "%s", pc);
	free(pc);
}

Test(install, units_run_the_installed_binaries_hardened)
{
	static const char *const needed[] = {
		"NoNewPrivileges=yes", "ProtectSystem=strict",
		"ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n",
		"ReadWritePaths=/var/lib/"
	};
	char	path[512], want[128], *u;
	size_t	i, j;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		(void)snprintf(path, sizeof(path), "%s" PREFIX
		    "/lib/systemd/system/%s.service", root, units[i]);
		cr_assert_not_null(u = slurp(path), "cannot read %s", path);
		(void)snprintf(want, sizeof(want), "ExecStart=" PREFIX
		    "/bin/%s run -c ", units[i]);
		cr_assert_not_null(strstr(u, want), "%s: no %s", units[i],
		    want);
		(void)snprintf(want, sizeof(want), "User=%s\n", units[i]);
		cr_assert_not_null(strstr(u, want), "%s: no %s", units[i],
		    want);
		for (j = 0; j < sizeof(needed) / sizeof(needed[0]); j++)
			cr_assert_not_null(strstr(u, needed[j]), "%s: no %s",
			    units[i], needed[j]);
		free(u);
	}
}

/*
 * systemd-analyze checks that ExecStart names an executable, so the units
 * are verified as copies whose ExecStart points into DESTDIR.  It exits 0
 * after a line it ignores ("Unknown key", "Failed to parse ..."), so any
 * message naming one of our unit files fails the test too.
 */
Test(install, systemd_analyze_accepts_the_units)
{
	size_t	i;

	if (!has_program("systemd-analyze"))
		cr_skip_test("systemd-analyze is not installed here");
	if (sh("mkdir -p '%s/units' && printf '[Unit]\\nDescription=probe\\n"
	    "[Service]\\nExecStart=/bin/true\\n' >'%s/units/probe.service' && "
	    "systemd-analyze verify --man=no '%s/units/probe.service' "
	    ">'%s/units/probe.log' 2>&1", tmp, tmp, tmp, tmp) != 0)
		cr_skip_test("systemd-analyze cannot verify units here "
		    "(no systemd in this environment?)");
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		cr_assert(sh("sed 's|^ExecStart=" PREFIX "/|ExecStart=%s"
		    PREFIX "/|' '%s" PREFIX "/lib/systemd/system/%s.service' "
		    ">'%s/units/%s.service'", root, root, units[i], tmp,
		    units[i]) == 0, "cannot copy %s.service", units[i]);
	if (sh("systemd-analyze verify --man=no '%s/units/ccbroker.service' "
	    "'%s/units/ccagent.service' >'%s/units/verify.log' 2>&1", tmp, tmp,
	    tmp) != 0 || sh("grep -q -e '/units/ccbroker\\.service' "
	    "-e '/units/ccagent\\.service' '%s/units/verify.log'", tmp) == 0) {
		char	 path[sizeof(tmp) + 32], *log;

		(void)snprintf(path, sizeof(path), "%s/units/verify.log", tmp);
		log = slurp(path);
		cr_assert_fail("systemd-analyze verify refused the units:\n%s",
		    log != NULL ? log : "");
	}
}
