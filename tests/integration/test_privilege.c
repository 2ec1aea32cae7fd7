/*
 * test_privilege.c - least privilege (issue 11 item 5).
 *
 * Started as root with `user` set, the broker and the agent become that
 * user for good (real, effective, saved and file-system ids, no
 * supplementary group of root's, no capability) and go on working; the
 * broker will not start on a data directory that is not the user's or
 * that others may read, nor with a key file others may write (a key
 * others may only read is used, with a warning: partnership tooling
 * writes 0644); and the logs of a whole run hold no name, identifier,
 * address, phone number, free text or key of what passed through.
 *
 * The privilege tests need root (they are skipped otherwise) and use the
 * system's `nobody` account, which they never change: they chown the
 * test's own files to it.
 */
#define _GNU_SOURCE	/* asprintf */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pki.h"
#include "../lib/harness.h"
#include "../lib/raw.h"

#define USER		"nobody"
#define WAIT_MS		15000

struct ag {
	char	id[64];
	char	dir[1100];
	char	conf[1200];
	char	log[1200];
	pid_t	pid;
};

static struct h_env	*env;
static struct ag	 ags[3];
static size_t		 nags;
static uid_t		 nobody_uid;
static gid_t		 nobody_gid;

static void
teardown(void)
{
	size_t	i;

	for (i = 0; i < nags; i++)
		if (ags[i].pid > 0) {
			kill(ags[i].pid, SIGKILL);
			(void)waitpid(ags[i].pid, NULL, 0);
		}
	nags = 0;
	h_env_destroy(&env);
}

TestSuite(privilege, .fini = teardown, .timeout = 120);

/* ---------------------------------------------------------------- helpers */

static void
need_root(void)
{
	struct passwd	*pw;

	if (geteuid() != 0)
		cr_skip_test("needs root: dropping privileges is what is "
		    "tested");
	if ((pw = getpwnam(USER)) == NULL)
		cr_skip_test("no '%s' user on this system", USER);
	nobody_uid = pw->pw_uid;
	nobody_gid = pw->pw_gid;
}

/* A file's text ("" when missing); read to the end, as /proc has no
 * size to ask for. */
static char *
slurp(const char *path)
{
	FILE	*f = fopen(path, "r");
	char	*buf = NULL;
	size_t	 len = 0, cap = 0, n;

	if (f == NULL)
		return h_keep_str(strdup(""));
	do {
		if (len + 4096 + 1 > cap) {
			cap = (cap + 4096) * 2;
			cr_assert_not_null(buf = realloc(buf, cap));
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	(void)fclose(f);
	return h_keep_str(buf);
}

/* Empty the broker's log before a start, to read only its output. */
static void
log_clear(void)
{
	int	fd = open(h_logpath(env), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert(fd != -1 && close(fd) == 0);
}

static void
spit(const char *path, const char *text, mode_t mode)
{
	int	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	cr_assert(fd != -1, "%s: %s", path, strerror(errno));
	cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	cr_assert(close(fd) == 0);
}

static const char *
bin(const char *name)
{
	const char	*b = getenv("CC_BUILD");
	char		*p;

	cr_assert(asprintf(&p, "%s/bin/%s", b != NULL && *b ? b : "build",
	    name) != -1);
	return h_keep_str(p);
}

static char *
path2(const char *a, const char *b)
{
	char	*p;

	cr_assert(asprintf(&p, "%s/%s", a, b) != -1);
	return h_keep_str(p);
}

static uid_t	chown_uid;
static gid_t	chown_gid;

static int
chown_one(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return lchown(path, chown_uid, chown_gid);
}

static void
chown_r(const char *path, uid_t uid, gid_t gid)
{
	chown_uid = uid;
	chown_gid = gid;
	cr_assert_eq(nftw(path, chown_one, 16, FTW_PHYS), 0, "chown -R %s: %s",
	    path, strerror(errno));
}

static size_t
lines(const char *s)
{
	size_t	n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* Does a /proc status "Groups:" list (up to its line's end) hold 0? */
static bool
has_group_0(const char *p)
{
	while (*p != '\0' && *p != '\n') {
		char	*end;
		long	 g;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || *p == '\0')
			break;
		g = strtol(p, &end, 10);
		if (end == p)
			break;
		if (g == 0)
			return true;
		p = end;
	}
	return false;
}

/*
 * Every thread of pid runs as uid/gid in all four slots, with no
 * supplementary group of root's and no capability.
 */
static void
assert_runs_as(pid_t pid, uid_t uid, gid_t gid)
{
	char		 dir[64], want_uid[96], want_gid[96];
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	snprintf(want_uid, sizeof(want_uid), "Uid:\t%u\t%u\t%u\t%u\n", uid,
	    uid, uid, uid);
	snprintf(want_gid, sizeof(want_gid), "Gid:\t%u\t%u\t%u\t%u\n", gid,
	    gid, gid, gid);
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	cr_assert_not_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		char		 path[400];
		const char	*st, *groups;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/status", dir, de->d_name);
		st = slurp(path);
		n++;
		cr_expect(strstr(st, want_uid) != NULL, "thread %s: %s",
		    de->d_name, st);
		cr_expect(strstr(st, want_gid) != NULL, "thread %s: %s",
		    de->d_name, st);
		cr_expect(strstr(st, "CapEff:\t0000000000000000") != NULL &&
		    strstr(st, "CapPrm:\t0000000000000000") != NULL,
		    "thread %s keeps capabilities: %s", de->d_name, st);
		groups = strstr(st, "Groups:");
		cr_assert_not_null(groups);
		cr_expect(!has_group_0(groups + 7),
		    "thread %s keeps root's group: %.40s", de->d_name, groups);
	}
	closedir(d);
	cr_assert_gt(n, 1, "expected the broker's threads");
}

/* The temporary directory and the partnership, traversable by anyone
 * (their files keep their modes): the user must reach its own files. */
static void
open_paths(void)
{
	cr_assert_eq(chmod(h_dir(env), 0711), 0);
	cr_assert_eq(chmod(h_pki(env), 0711), 0);
	cr_assert_eq(chmod(path2(h_pki(env), "keys"), 0711), 0);
}

/* ---------------------------------------------------------------- broker */

H_TEST(privilege, broker_started_as_root_runs_as_the_configured_user)
{
	struct h_client	*carat;
	pid_t		 pid;

	need_root();
	env = h_env_new(&(struct h_env_opts){ .no_start = true,
	    .extra_conf = "[broker]\nuser = " USER "\n" });
	open_paths();
	chown_r(h_data(env), nobody_uid, nobody_gid);
	/* SIGHUP reads the configuration again, as the user. */
	cr_assert_eq(chown(h_conf(env), nobody_uid, nobody_gid), 0);
	h_broker_start(env);
	cr_assert(h_log_wait(env, 5000, "running as " USER, NULL),
	    "%s", h_log(env));
	pid = r_broker_pid(env);
	cr_assert_gt(pid, 0);
	assert_runs_as(pid, nobody_uid, nobody_gid);

	/* It works: the store is written as the user. */
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	h_assert_op(h_publish(carat, h_release_plan_new(H_PNC_A, "Userson")),
	    "accepted");
	h_broker_hup(env);
	cr_assert(h_log_wait(env, 5000, "reloaded", NULL), "%s", h_log(env));
	cr_expect(!h_log_has(env, "keeping the running configuration"),
	    "%s", h_log(env));
	h_assert_op(h_hello(carat, false), "welcome");
	cr_assert_eq(h_broker_stop(env), 0, "%s", h_log(env));

	/* Started again (as root, dropping again) on the user's files. */
	h_broker_start(env);
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_publish(carat, h_release_plan_new(H_PNC_A, "Again")),
	    "accepted");
}

H_TEST(privilege, broker_refuses_data_the_user_does_not_own)
{
	char	*err = NULL;
	int	 st;

	need_root();
	env = h_env_new(&(struct h_env_opts){ .no_start = true,
	    .extra_conf = "[broker]\nuser = " USER "\n" });
	open_paths();
	/* `ccbroker init` ran as root: the store is root's. */
	st = h_broker_start_status(env);
	cr_assert_neq(st, 0, "started on root's files");
	err = h_log(env);
	cr_expect_eq(lines(err), 1, "not one line: %s", err);
	cr_expect(strstr(err, h_data(env)) != NULL &&
	    strstr(err, "chown") != NULL, "%s", err);

	/* Nor as root itself. */
	h_write_conf(env, "[broker]\nuser = root\n");
	chown_r(h_data(env), 0, 0);
	cr_assert_neq(h_broker_start_status(env), 0);
	cr_expect(h_log_has(env, "is root"), "%s", h_log(env));
	h_write_conf(env, "");
}

/* Rows: a mode for the data directory, and whether the broker starts. */
static const struct {
	mode_t		 mode;
	bool		 starts;
} data_modes[] = {
	{ 0700, true },
	{ 0750, false },	/* group may read */
	{ 0705, false },	/* others may read */
	{ 0711, false },	/* others may reach files by name */
	{ 0770, false },
	{ 0777, false },
};

H_TEST(privilege, broker_refuses_a_data_directory_others_may_use)
{
	size_t	i;
	int	st;

	env = h_env_new(&(struct h_env_opts){ .no_start = true });
	for (i = 0; i < sizeof(data_modes) / sizeof(data_modes[0]); i++) {
		const char *log;

		cr_assert_eq(chmod(h_data(env), data_modes[i].mode), 0);
		log_clear();
		st = h_broker_start_status(env);
		log = h_log(env);
		if (data_modes[i].starts) {
			cr_expect_eq(st, 0, "mode %04o: %s",
			    (unsigned)data_modes[i].mode, log);
			if (st == 0)
				cr_expect_eq(h_broker_stop(env), 0);
			continue;
		}
		cr_expect_neq(st, 0, "started with a data directory of mode "
		    "%04o", (unsigned)data_modes[i].mode);
		cr_expect_eq(lines(log), 1, "mode %04o, not one line: %s",
		    (unsigned)data_modes[i].mode, log);
		cr_expect(strstr(log, h_data(env)) != NULL &&
		    strstr(log, "group or others") != NULL, "%s", log);
	}
	cr_assert_eq(chmod(h_data(env), 0700), 0);
}

/* Rows: a mode for the broker's key file, and what the broker does. */
static const struct {
	mode_t		 mode;
	bool		 starts;
	const char	*says;		/* in the log */
} key_modes[] = {
	{ 0600, true,  NULL },
	{ 0400, true,  NULL },
	{ 0640, true,  "lets group or others read it" },
	{ 0644, true,  "lets group or others read it" },
	{ 0620, false, "lets group or others write it" },
	{ 0602, false, "lets group or others write it" },
	{ 0666, false, "lets group or others write it" },
};

H_TEST(privilege, broker_refuses_a_key_file_others_may_write)
{
	char	*key;
	size_t	 i;
	int	 st;

	env = h_env_new(&(struct h_env_opts){ .no_start = true });
	key = path2(h_pki(env), "broker.key");
	for (i = 0; i < sizeof(key_modes) / sizeof(key_modes[0]); i++) {
		const char *log;

		cr_assert_eq(chmod(key, key_modes[i].mode), 0);
		log_clear();
		st = h_broker_start_status(env);
		log = h_log(env);
		if (key_modes[i].starts) {
			cr_expect_eq(st, 0, "mode %04o: %s",
			    (unsigned)key_modes[i].mode, log);
			if (st == 0)
				cr_expect_eq(h_broker_stop(env), 0);
		} else {
			cr_expect_neq(st, 0, "started with a key of mode %04o",
			    (unsigned)key_modes[i].mode);
			cr_expect_eq(lines(log), 1, "mode %04o, not one line: "
			    "%s", (unsigned)key_modes[i].mode, log);
			cr_expect(strstr(log, key) != NULL, "%s", log);
		}
		if (key_modes[i].says != NULL)
			cr_expect(strstr(log, key_modes[i].says) != NULL,
			    "mode %04o: %s", (unsigned)key_modes[i].mode, log);
		else
			cr_expect(strstr(log, "chmod 600") == NULL, "%s", log);
	}
	cr_assert_eq(chmod(key, 0600), 0);
}

/* ---------------------------------------------------------------- agent */

/* agent.conf, spool and data for one agency, in DIR/ID. */
static struct ag *
ag_new(const char *id, const char *subscribe, const char *user)
{
	struct ag	*a = &ags[nags++];
	char		 text[4096];
	const char	*pki = h_pki(env);

	memset(a, 0, sizeof(*a));
	snprintf(a->id, sizeof(a->id), "%s", id);
	snprintf(a->dir, sizeof(a->dir), "%s/%s", h_dir(env), id);
	snprintf(a->conf, sizeof(a->conf), "%s/%s/agent.conf", h_dir(env),
	    id);
	snprintf(a->log, sizeof(a->log), "%s/%s/agent.log", h_dir(env), id);
	cr_assert(mkdir(a->dir, 0700) == 0);
	snprintf(text, sizeof(text),
	    "[agent]\n"
	    "broker = tcp://127.0.0.1:%d\n"
	    "broker_certificate = %s/broker.crt\n"
	    "ca = %s/ca.crt\n"
	    "crl = %s/ca.crl\n"
	    "certificate = %s/agencies/%s.crt\n"
	    "key = %s/keys/%s.key\n"
	    "data = %s/data\n"
	    "spool = %s/spool\n"
	    "%s%s%s%s%s%s",
	    h_port(env), pki, pki, pki, pki, id, pki, id, a->dir,
	    a->dir,
	    subscribe != NULL ? "subscribe = " : "",
	    subscribe != NULL ? subscribe : "",
	    subscribe != NULL ? "\nareas = " H_AREA "\n" : "",
	    user != NULL ? "user = " : "", user != NULL ? user : "",
	    user != NULL ? "\n" : "");
	spit(a->conf, text, 0600);
	return a;
}

/* `ccagent run -d`, stderr to its log; 0 once welcomed, or its exit
 * status when it stopped first. */
static int
ag_start(struct ag *a)
{
	int	i, st;

	fflush(stdout);
	fflush(stderr);
	if ((a->pid = fork()) == 0) {
		int fd = open(a->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd == -1)
			_exit(126);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 2);
		execl(bin("ccagent"), "ccagent", "run", "-d", "-c", a->conf,
		    (char *)NULL);
		_exit(127);
	}
	cr_assert(a->pid > 0);
	for (i = 0; i < WAIT_MS / 20; i++) {
		if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
			a->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
		}
		if (strstr(slurp(a->log), "welcomed") != NULL)
			return 0;
		h_msleep(20);
	}
	cr_assert_fail("%s: ccagent run was not welcomed:\n%s", a->id,
	    slurp(a->log));
	return -1;
}

static void
ag_stop(struct ag *a)
{
	int	st;

	if (a->pid <= 0)
		return;
	kill(a->pid, SIGTERM);
	cr_assert(waitpid(a->pid, &st, 0) == a->pid);
	a->pid = 0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "%s: ccagent run did not stop cleanly:\n%s", a->id, slurp(a->log));
}

/* Rename a finished file, the agent's own, into its out/. */
static void
drop(struct ag *a, const char *name, const char *text)
{
	char		*tmp = path2(a->dir, "spool/.part"), *dst;
	struct stat	 sb;

	cr_assert(asprintf(&dst, "%s/spool/out/%s", a->dir, name) != -1);
	h_keep_str(dst);
	spit(tmp, text, 0600);
	cr_assert(stat(a->dir, &sb) == 0 && chown(tmp, sb.st_uid,
	    sb.st_gid) == 0);
	cr_assert(rename(tmp, dst) == 0, "%s: %s", dst, strerror(errno));
}

static int
count_json(const char *dir)
{
	DIR		*d = opendir(dir);
	struct dirent	*de;
	int		 n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		n += de->d_name[0] != '.' && len > 5 &&
		    strcmp(de->d_name + len - 5, ".json") == 0;
	}
	closedir(d);
	return n;
}

static bool
wait_json(const char *dir, int n)
{
	int	i;

	for (i = 0; i < WAIT_MS / 20; i++) {
		if (count_json(dir) >= n)
			return true;
		h_msleep(20);
	}
	return false;
}

H_TEST(privilege, agent_started_as_root_runs_as_the_configured_user)
{
	struct ag	*carat;
	char		*key;
	char		 mid[37];

	need_root();
	env = h_env_new(NULL);
	open_paths();
	carat = ag_new(H_CARAT, NULL, USER);
	/*
	 * Nothing is chowned for it: its configuration, key, data and spool
	 * are its own.
	 */
	key = path2(h_pki(env), "keys/" H_CARAT ".key");
	cr_assert_eq(chown(key, nobody_uid, nobody_gid), 0);
	chown_r(carat->dir, nobody_uid, nobody_gid);
	cr_assert_eq(ag_start(carat), 0, "%s", slurp(carat->log));
	cr_assert(strstr(slurp(carat->log), "running as " USER) != NULL,
	    "%s", slurp(carat->log));
	assert_runs_as(carat->pid, nobody_uid, nobody_gid);

	/* It works as the user: a release plan goes out and is accepted. */
	drop(carat, "plan.json", h_dump(h_keep(json_pack("{s:s,s:s,s:{s:s},"
	    "s:s,s:s,s:{s:{s:s,s:s}}}", "mid", h_uuid(mid), "type",
	    "release-plan", "subject", "pnc", H_PNC_A, "purpose",
	    "continuity-of-care", "area", H_AREA, "body", "person",
	    "family_name", "Userson", "given_name", "Alex"))));
	cr_assert(wait_json(path2(carat->dir, "spool/sent"), 1),
	    "not accepted:\n%s", slurp(carat->log));
	ag_stop(carat);
}

/*
 * The agent's data directory (its outbox: records in clear) is closed to
 * group and others when found open, with a warning, rather than refused
 * (agent/outbox.c: it is the agent's own, perhaps made with the default
 * umask before the agent first ran).
 */
H_TEST(privilege, agent_closes_a_data_directory_others_may_read)
{
	struct ag	*cjit;
	struct stat	 sb;
	char		*data, *log;

	env = h_env_new(NULL);
	cjit = ag_new(H_CJIT, NULL, NULL);
	data = path2(cjit->dir, "data");
	cr_assert_eq(mkdir(data, 0700), 0);
	cr_assert_eq(chmod(data, 0755), 0);
	cr_assert_eq(ag_start(cjit), 0, "%s", slurp(cjit->log));
	ag_stop(cjit);
	cr_assert_eq(stat(data, &sb), 0);
	cr_expect_eq(sb.st_mode & 0777, 0700, "mode %04o",
	    (unsigned)(sb.st_mode & 0777));
	log = slurp(cjit->log);
	cr_expect(strstr(log, data) != NULL &&
	    strstr(log, "group or others") != NULL, "%s", log);
}

/* ---------------------------------------------------------------- logs */

/* What a log must never hold: the run's personal data... */
static const char *const personal[] = {
	"Quixotesmythe", "Zebedaya", "1985-03-14",	/* name, dob */
	"2004/0012345D", "0012345D", "04/12345D",	/* PNC, as sent too */
	"A1234BC", "X123456",				/* NOMS, CRN */
	"Tumbledown", "LS9 8ZZ", "Wibblesby",		/* address */
	"0113 496 0999", "07700 900123",		/* phones */
	"Worker Wolfgangus", "Officer Ottoline",	/* people */
	"anxious about the stairs", "Hostel of Hope",	/* free text */
};

static void
add_key_forms(json_t *secrets, const char *keyfile)
{
	uint8_t	 sec[32], pub[32];
	char	 z85[41], hex[65], err[256], *pem, *line, *save = NULL;
	size_t	 i;

	cr_assert_eq(pki_key_read(keyfile, sec, pub, err, sizeof(err)), 0,
	    "%s", err);
	pki_z85(sec, z85);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", sec[i]);
	json_array_append_new(secrets, json_string(z85));
	json_array_append_new(secrets, json_string(hex));
	/* Half of it is enough to give it away. */
	json_array_append_new(secrets, json_stringn(z85, 20));
	json_array_append_new(secrets, json_stringn(hex, 32));
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02X", sec[i]);
	json_array_append_new(secrets, json_stringn(hex, 32));
	/* The PEM body's lines. */
	pem = strdup(slurp(keyfile));
	for (line = strtok_r(pem, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "-----", 5) != 0 && strlen(line) >= 16)
			json_array_append_new(secrets, json_string(line));
	free(pem);
	explicit_bzero(sec, sizeof(sec));
}

/* ... and the at-rest key of the broker's store. */
static void
add_seal_key(json_t *secrets)
{
	unsigned char	 key[64];
	char		 hex[129];
	int		 fd;
	size_t		 i;

	fd = open(path2(h_data(env), "key"), O_RDONLY);
	cr_assert(fd != -1, "the store's key file: %s", strerror(errno));
	cr_assert_eq(read(fd, key, sizeof(key)), (ssize_t)sizeof(key));
	close(fd);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	json_array_append_new(secrets, json_stringn(hex, 32));
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[32 + i]);
	json_array_append_new(secrets, json_stringn(hex, 32));
}

H_TEST(privilege, logs_of_a_whole_run_hold_no_personal_data_or_keys)
{
	struct ag	*carat, *cjit, *housing;
	json_t		*secrets, *plan, *grant, *hs, *s;
	char		*file, *out = NULL, *err = NULL, *cli_logs;
	const char	*logs[4];
	char		 mid[37], from[32], until[32];
	size_t		 i, j;
	int		 st;

	env = h_env_new(NULL);
	carat = ag_new(H_CARAT, NULL, NULL);
	cjit = ag_new(H_CJIT, "release-plan,housing-status", NULL);
	housing = ag_new(H_HOUSING, NULL, NULL);
	cr_assert_eq(ag_start(carat), 0);
	cr_assert_eq(ag_start(cjit), 0);
	cr_assert_eq(ag_start(housing), 0);

	/* Consent through the CLI, every category, explicit. */
	grant = h_grant_new(H_CJIT, H_ALL_CATS, H_PNC_A);
	json_object_del(grant, "op");
	json_object_set_new(grant, "explicit", json_true());
	json_object_set(grant, "purposes",
	    h_csv("continuity-of-care,housing-support"));
	json_object_set(grant, "subject", h_json("{\"pnc\": \"" H_PNC_A "\","
	    " \"noms\": \"A1234BC\", \"crn\": \"X123456\"}"));
	json_object_set_new(json_object_get(grant, "evidence"), "worker",
	    json_string("Worker Wolfgangus"));
	json_object_set_new(grant, "valid_from",
	    json_string(h_time(-86400, from)));
	json_object_set_new(grant, "valid_until",
	    json_string(h_time(300 * 86400, until)));
	file = path2(h_dir(env), "grant.json");
	spit(file, h_dump(grant), 0600);
	st = h_run(env, &out, &err, (const char *const[]){ bin("ccagent"),
	    "consent", "grant", "-c", carat->conf, file, NULL });
	cr_assert_eq(st, 0, "consent grant: %s", err);
	cli_logs = h_keep_str(strdup(err));

	/* A release plan with every kind of personal data, from out/. */
	plan = h_json(slurp(path2(getenv("CC_SRC") ? getenv("CC_SRC") : ".",
	    "examples/release-plan.json")));
	json_object_set_new(plan, "mid", json_string(h_uuid(mid)));
	json_object_set(plan, "subject", h_json("{\"pnc\": \"04/12345D\","
	    " \"noms\": \"A1234BC\", \"crn\": \"X123456\"}"));
	json_object_set(h_get(plan, "body"), "person", h_json(
	    "{\"family_name\": \"Quixotesmythe\", \"given_name\": \"Zebedaya\","
	    " \"dob\": \"1985-03-14\", \"sex\": \"M\"}"));
	json_object_set(h_get(plan, "body"), "release_address", h_json(
	    "{\"line1\": \"1 Tumbledown Lane\", \"town\": \"Wibblesby\","
	    " \"postcode\": \"LS9 8ZZ\"}"));
	json_object_set(h_get(plan, "body"), "offender_manager", h_json(
	    "{\"name\": \"Officer Ottoline\", \"agency\": \"probation.leeds\","
	    " \"phone\": \"0113 496 0999\"}"));
	json_object_set_new(h_get(plan, "body"), "notes",
	    json_string("Client anxious about the stairs."));
	drop(carat, "plan.json", h_dump(plan));

	/* Housing news about the same person, from the hostel. */
	hs = h_json(slurp(path2(getenv("CC_SRC") ? getenv("CC_SRC") : ".",
	    "examples/housing-status.json")));
	json_object_set_new(hs, "mid", json_string(h_uuid(mid)));
	json_object_set(hs, "subject", h_json("{\"pnc\": \"" H_PNC_A "\"}"));
	json_object_set(h_get(hs, "body"), "person", h_json(
	    "{\"family_name\": \"Quixotesmythe\", \"given_name\": \"Zebedaya\"}"));
	json_object_set(h_get(hs, "body"), "address", h_json(
	    "{\"line1\": \"Hostel of Hope\", \"line2\": \"2 Tumbledown Lane\","
	    " \"town\": \"Wibblesby\", \"postcode\": \"LS9 8ZZ\"}"));
	drop(housing, "hs.json", h_dump(hs));

	/* A bad one too: refusals are logged, their content must not be. */
	json_object_set_new(h_get(hs, "body"), "accommodation_type",
	    json_string("07700 900123"));
	json_object_set_new(hs, "mid", json_string(h_uuid(mid)));
	drop(housing, "bad.json", h_dump(hs));

	cr_assert(wait_json(path2(cjit->dir, "spool/in"), 2),
	    "not delivered:\n%s\n%s", slurp(cjit->log), h_log(env));
	cr_assert(wait_json(path2(housing->dir, "spool/rejected"), 1) ||
	    count_json(path2(housing->dir, "spool/rejected")) > 0,
	    "%s", slurp(housing->log));
	st = h_run(env, &out, &err, (const char *const[]){ bin("ccagent"),
	    "track", "-c", carat->conf, h_str(plan, "mid"), NULL });
	cr_assert_eq(st, 0, "track: %s", err);
	cr_assert(asprintf(&file, "%s%s", cli_logs, err) != -1);
	cli_logs = h_keep_str(file);
	ag_stop(carat);
	ag_stop(cjit);
	ag_stop(housing);
	cr_assert_eq(h_broker_stop(env), 0);

	/* The run reached the logs... */
	logs[0] = h_log(env);
	logs[1] = slurp(carat->log);
	logs[2] = slurp(cjit->log);
	logs[3] = slurp(housing->log);
	cr_assert(strstr(logs[0], "auth: accepted") != NULL, "%s", logs[0]);
	cr_assert(strstr(logs[2], "welcomed") != NULL, "%s", logs[2]);
	/* ... and none of this did. */
	secrets = h_keep(json_array());
	for (i = 0; i < sizeof(personal) / sizeof(personal[0]); i++)
		json_array_append_new(secrets, json_string(personal[i]));
	add_key_forms(secrets, path2(h_pki(env), "broker.key"));
	add_key_forms(secrets, path2(h_pki(env), "keys/" H_CARAT ".key"));
	add_key_forms(secrets, path2(h_pki(env), "keys/" H_CJIT ".key"));
	add_key_forms(secrets, path2(h_pki(env), "keys/" H_HOUSING ".key"));
	add_seal_key(secrets);
	json_array_foreach(secrets, j, s) {
		const char *needle = json_string_value(s);

		for (i = 0; i < 4; i++)
			cr_expect(strstr(logs[i], needle) == NULL,
			    "'%s' in log %zu", needle, i);
		cr_expect(strstr(cli_logs, needle) == NULL,
		    "'%s' on a command's stderr", needle);
	}
	cr_log_info("%zu strings looked for in %zu bytes of logs",
	    json_array_size(secrets), strlen(logs[0]) + strlen(logs[1]) +
	    strlen(logs[2]) + strlen(logs[3]));
}
