/*
 * test_powercut.c - `accepted` means on disk, tested by cutting the power
 * (issue 6 item 9, issue 11 item 2, DESIGN §6).
 *
 * The broker runs under tests/powercut/libpowercut.so, which journals
 * every change to its data directory; a SIGKILL at a random moment while
 * the prison publishes as fast as it can, then powercut-apply undoes every
 * write no fsync covered: the directory is what the disk would hold after
 * a power cut.  The broker restarted on it must keep its audit chain and
 * deliver every release plan it had answered `accepted`, exactly once.
 *
 * POWERCUT_ROUNDS (default 5) cuts in one test, POWERCUT_SEED repeats a
 * run's random choices, POWERCUT_SYNC_DELAY_US replaces the flush time of
 * 2 ms the broker sees.
 */
#define _GNU_SOURCE	/* dl_iterate_phdr, asprintf */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/harness.h"

#define PC_WINDOW	50	/* publishes awaiting their answer */
#define PC_CUT_MIN_MS	50	/* a timed cut comes this long after the */
#define PC_CUT_MAX_MS	400	/* start, at most this long */
#define PC_CUT_LATE_MS	3000	/* a counted cut that has not come by then */
#define PC_OP_MIN	20	/* the write or sync a counted cut lands on */
#define PC_OP_MAX	400
#define PC_SYNC_MIN	3	/* the fsync a sync cut lands on */
#define PC_SYNC_MAX	40
#define PC_ROUNDS	5
#define PC_FLUSH_US	"2000"	/* a disk's flush, as the broker sees it */

static struct h_env	*env;
static char		 pc_tmp[PATH_MAX];	/* the control test's dir */

static void
teardown(void)
{
	const char	*keep = getenv("KEEP");

	h_env_destroy(&env);
	if (pc_tmp[0] != '\0' && keep != NULL && strcmp(keep, "1") == 0)
		fprintf(stderr, "KEEP=1: kept %s\n", pc_tmp);
	else if (pc_tmp[0] != '\0') {
		char *argv[] = { "rm", "-rf", pc_tmp, NULL };
		pid_t pid = fork();

		if (pid == 0) {
			execvp(argv[0], argv);
			_exit(127);
		}
		if (pid > 0)
			(void)waitpid(pid, NULL, 0);
	}
	pc_tmp[0] = '\0';
}

TestSuite(powercut, .fini = teardown, .timeout = 900);

/* ---------------------------------------------------------------- helpers */

static int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* BUILD/tests/NAME, as the harness finds BUILD/bin/ccbroker. */
static const char *
build_path(const char *name)
{
	static char	 paths[4][PATH_MAX];
	static int	 next;
	const char	*build = getenv("CC_BUILD");
	char		 cwd[PATH_MAX], *p = paths[next++ % 4];

	if (build == NULL || *build == '\0')
		build = "build";
	if (build[0] == '/')
		snprintf(p, PATH_MAX, "%.2000s/tests/%s", build, name);
	else {
		cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
		snprintf(p, PATH_MAX, "%.1000s/%.1000s/tests/%s", cwd, build,
		    name);
	}
	cr_assert_eq(access(p, F_OK), 0, "%s: %s (make tests)", p,
	    strerror(errno));
	return p;
}

static int
find_asan(struct dl_phdr_info *info, size_t size, void *out)
{
	(void)size;
	if (info->dlpi_name != NULL && strstr(info->dlpi_name, "libasan.so")) {
		snprintf(out, PATH_MAX, "%s", info->dlpi_name);
		return 1;
	}
	return 0;
}

/*
 * LD_PRELOAD for a program of this build.  A sanitizer build's programs
 * insist that the ASan runtime come first; it then hands the calls it
 * intercepts itself (write, pwrite, writev) on to the simulator.
 */
static const char *
preload_value(void)
{
	static char	value[2 * PATH_MAX + 2];
	char		asan[PATH_MAX] = "";

	(void)dl_iterate_phdr(find_asan, asan);
	snprintf(value, sizeof(value), "%s%s%s", asan, asan[0] ? ":" : "",
	    build_path("libpowercut.so"));
	return value;
}

static void
powercut_env_set(const char *dir, const char *journal)
{
	cr_assert_eq(setenv("LD_PRELOAD", preload_value(), 1), 0);
	cr_assert_eq(setenv("POWERCUT_DIR", dir, 1), 0);
	cr_assert_eq(setenv("POWERCUT_JOURNAL", journal, 1), 0);
}

static void
powercut_env_unset(void)
{
	unsetenv("LD_PRELOAD");
	unsetenv("POWERCUT_DIR");
	unsetenv("POWERCUT_JOURNAL");
}

/*
 * Only the child started in between sees the simulator.  Its flushes take
 * as long as a real disk's (tmpfs and a VM's disk cache answer fsync at
 * once), so that a timed cut falls inside a commit as often as it would.
 * kill_at (NULL: none) is POWERCUT_KILL_AT.  Returns 0, or the exit status
 * of a broker cut before it listened.
 */
static int
broker_start_under_powercut(const char *journal, const char *kill_at)
{
	bool	delay = getenv("POWERCUT_SYNC_DELAY_US") == NULL;
	int	st;

	powercut_env_set(h_data(env), journal);
	if (delay)
		cr_assert_eq(setenv("POWERCUT_SYNC_DELAY_US", PC_FLUSH_US, 1),
		    0);
	if (kill_at != NULL)
		cr_assert_eq(setenv("POWERCUT_KILL_AT", kill_at, 1), 0);
	st = h_broker_start_status(env);
	powercut_env_unset();
	unsetenv("POWERCUT_KILL_AT");
	if (delay)
		unsetenv("POWERCUT_SYNC_DELAY_US");
	cr_assert(st == 0 || (kill_at != NULL && st == 128 + SIGKILL),
	    "the broker did not start under the simulator (%d); log:\n%s",
	    st, h_log(env));
	return st;
}

/* powercut-apply JOURNAL; its report. */
static const char *
apply(struct h_env *e, const char *journal)
{
	const char	*argv[] = { build_path("powercut-apply"), journal,
			    NULL };
	char		*out = NULL, *err = NULL;
	int		 st;

	if (e != NULL)
		st = h_run(e, &out, &err, argv);
	else {
		char cmd[3 * PATH_MAX];
		FILE *f;
		size_t n;

		static char report[65536];

		out = report;
		snprintf(cmd, sizeof(cmd), "'%s' '%s' 2>&1", argv[0], journal);
		cr_assert_not_null(f = popen(cmd, "r"));
		n = fread(out, 1, 65535, f);
		out[n] = '\0';
		st = pclose(f);
		st = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
		err = "";
	}
	cr_assert_eq(st, 0, "powercut-apply %s exited %d:\n%s%s", journal, st,
	    out, err);
	return out;
}

/* "N changes undone" of a file named in apply's report, or -1. */
static long
undone_of(const char *report, const char *file)
{
	char		 needle[64];
	const char	*p;

	snprintf(needle, sizeof(needle), "/%s: ", file);
	if ((p = strstr(report, needle)) == NULL)
		return -1;
	return strtol(p + strlen(needle), NULL, 10);
}

/* ---------------------------------------------------------------- the cut */

struct cut {
	json_t		*sent;		/* mid -> the publish, unanswered */
	json_t		*order;		/* mids answered `accepted`, in order */
	json_t		*accepted;	/* every mid accepted, any round */
	json_t		*delivered;	/* mid -> deliveries, any round */
	size_t		 busy;		/* answered busy: sent again later */
};

static void
answer(struct cut *c, json_t *r)
{
	const char	*mid = h_str(r, "mid"), *re = h_str(r, "re");

	if (h_is_op(r, "accepted")) {
		cr_assert(mid != NULL && json_object_get(c->sent, mid),
		    "an answer to no publish in flight: %s", h_dump(r));
		json_object_del(c->sent, mid);
		json_array_append_new(c->order, json_string(mid));
		json_object_set_new(c->accepted, mid, json_true());
		return;
	}
	/* busy or storage-full: nothing promised; the agent sends again. */
	h_assert_op(r, "error");
	cr_assert(h_str(r, "code") && (!strcmp(h_str(r, "code"), "busy") ||
	    !strcmp(h_str(r, "code"), "storage-full")),
	    "publish refused: %s", h_dump(r));
	cr_assert(re != NULL && json_object_get(c->sent, re),
	    "an error about no publish in flight: %s", h_dump(r));
	c->busy++;
}

/*
 * Publish release plans as fast as the broker answers, PC_WINDOW at a
 * time, until the broker cuts itself (POWERCUT_KILL_AT) or the cut at ms;
 * every answer that arrived before the broker died, even read after, is a
 * promise.  Sets *self when the broker cut itself.
 */
static size_t
publish_until_cut(struct cut *c, struct h_client *carat, int ms, bool *self)
{
	int64_t	 cut = now_ms() + ms;
	size_t	 nsent = 0;
	json_t	*r;

	*self = false;
	while (now_ms() < cut && !(*self = !h_broker_running(env))) {
		while (json_object_size(c->sent) < PC_WINDOW) {
			json_t *m = h_release_plan_new(H_PNC_A, "Powercut");

			cr_assert_eq(h_send(carat, m), 0);
			json_object_set(c->sent, h_str(m, "mid"), m);
			nsent++;
		}
		if ((r = h_recv(carat, "accepted,error", 2)) != NULL)
			answer(c, r);
	}
	if (!*self)
		h_broker_kill9(env);
	while ((r = h_recv(carat, "accepted,error", 100)) != NULL)
		answer(c, r);
	return nsent;
}

/* Where the accepted mids stand in the deliveries: in acceptance order? */
static const char *
order_broken(json_t *order, json_t *pos)
{
	json_t		*m;
	size_t		 i;
	long long	 last = -1;
	char		*s;

	json_array_foreach(order, i, m) {
		long long p = json_integer_value(json_object_get(pos,
		    json_string_value(m)));

		if (p < last) {
			if (asprintf(&s, "%s (accepted #%zu) delivered before "
			    "one accepted earlier", json_string_value(m),
			    i) == -1)
				return "?";
			return h_keep_str(s);
		}
		last = p;
	}
	return NULL;
}

/*
 * A consented, subscribed CJIT offline; then, per round, the broker under
 * the simulator, the prison publishing, the cut, the journal applied, the
 * broker restarted on what the disk held.  The plans sent but unanswered
 * are sent again, as an agent's outbox would: the broker must answer
 * `accepted` and never hold two copies.  Then the CJIT collects.
 *
 * The cuts take turns: at a random moment (50-400 ms), at a random write
 * or sync of the data directory, and at a random fsync, which lands
 * between a commit's page writes and its meta page whatever the timing
 * (a sanitizer build publishes too slowly for the timed cut to find the
 * broker busy).
 */
H_TEST(powercut, accepted_publishes_survive_power_cuts)
{
	struct h_client	*carat, *cjit;
	struct cut	 c;
	const char	*s;
	unsigned	 seed, rounds = PC_ROUNDS, round;
	long		 undone_total = 0;
	size_t		 total_accepted = 0;

	if ((s = getenv("POWERCUT_ROUNDS")) != NULL && atoi(s) > 0)
		rounds = (unsigned)atoi(s);
	seed = (s = getenv("POWERCUT_SEED")) != NULL ?
	    (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL) ^
	    (unsigned)getpid();
	srand(seed);
	fprintf(stderr, "powercut: %u rounds, POWERCUT_SEED=%u\n", rounds,
	    seed);

	env = h_env_new(NULL);
	memset(&c, 0, sizeof(c));
	c.sent = h_keep(json_object());
	c.accepted = h_keep(json_object());
	c.delivered = h_keep(json_object());
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	cjit = h_agent(env, H_CJIT, true);
	h_assert_op(h_subscribe(cjit, "release-plan", H_AREA), "subscribed");
	h_close(&cjit);
	h_close(&carat);
	cr_assert_eq(h_broker_stop(env), 0);

	for (round = 1; round <= rounds; round++) {
		char		 journal[PATH_MAX], lock[PATH_MAX];
		char		 kill_at[32], how[64];
		const char	*report, *broken;
		json_t		*d, *m, *pos = h_keep(json_object());
		const char	*mid;
		size_t		 nsent = 0, i, before, inflight, stored = 0;
		int		 ms = PC_CUT_LATE_MS, kind = (round - 1) % 3;
		char		*out, *err;
		int		 st;
		long		 undone;
		bool		 self = false;

		if (kind == 0) {
			ms = PC_CUT_MIN_MS + rand() % (PC_CUT_MAX_MS -
			    PC_CUT_MIN_MS + 1);
			snprintf(how, sizeof(how), "at %d ms", ms);
		} else if (kind == 1) {
			snprintf(kill_at, sizeof(kill_at), "%d", PC_OP_MIN +
			    rand() % (PC_OP_MAX - PC_OP_MIN + 1));
			snprintf(how, sizeof(how), "at write/sync #%s",
			    kill_at);
		} else {
			snprintf(kill_at, sizeof(kill_at), "sync:%d",
			    PC_SYNC_MIN + rand() % (PC_SYNC_MAX -
			    PC_SYNC_MIN + 1));
			snprintf(how, sizeof(how), "at fsync #%s",
			    kill_at + 5);
		}
		snprintf(journal, sizeof(journal), "%s/powercut.%u.journal",
		    h_dir(env), round);
		c.order = h_keep(json_array());
		c.busy = 0;
		if (broker_start_under_powercut(journal, kind ? kill_at :
		    NULL) == 0) {
			carat = h_agent(env, H_CARAT, false);
			nsent = publish_until_cut(&c, carat, ms, &self);
			h_close(&carat);
		} else
			self = true;	/* cut while it started */
		if (kind != 0 && !self)
			snprintf(how, sizeof(how), "at %d ms (no cut by then)",
			    ms);
		before = json_array_size(c.order);
		inflight = json_object_size(c.sent);

		report = apply(env, journal);
		undone = undone_of(report, "data.mdb");
		undone_total += undone > 0 ? undone : 0;
		/*
		 * A cut as an fsync began leaves that commit's pages written
		 * and not durable: undone, or the simulator did not bite.
		 */
		if (kind == 2 && self)
			cr_expect_gt(undone, 0, "round %u: cut %s, nothing "
			    "undone:\n%s", round, how, report);
		snprintf(lock, sizeof(lock), "%s/lock.mdb", h_data(env));
		(void)unlink(lock);
		h_broker_start(env);
		st = h_ccbroker(env, &out, &err, "audit", "verify", "-c",
		    h_conf(env), NULL);
		cr_assert_eq(st, 0, "round %u: audit verify exited %d after "
		    "the cut %s: %s%s", round, st, how, out, err);

		/* The unanswered, again: already stored or stored now. */
		carat = h_agent(env, H_CARAT, false);
		{
			const char	*k;
			json_t		*v, *tmp;

			json_object_foreach_safe(c.sent, tmp, k, v) {
				json_t *t = h_track(carat, k);

				stored += h_is_op(t, "status");
				answer(&c, h_publish(carat, v));
			}
		}
		h_close(&carat);
		cr_assert_eq(json_object_size(c.sent), 0);

		cjit = h_agent(env, H_CJIT, true);
		d = h_collect(cjit, "deliver", nsent, 20000, true);
		json_array_extend(d, h_deliveries(cjit, true));
		h_close(&cjit);
		json_array_foreach(d, i, m) {
			json_t *n;

			mid = h_str(m, "mid");
			cr_assert(mid != NULL && json_object_get(c.accepted,
			    mid), "round %u: delivered what was never "
			    "accepted: %s", round, h_dump(m));
			n = json_object_get(c.delivered, mid);
			cr_assert(n == NULL, "round %u: %s delivered again "
			    "(first in round %lld)", round, mid,
			    json_integer_value(n));
			json_object_set_new(c.delivered, mid,
			    json_integer(round));
			json_object_set_new(pos, mid, json_integer((int)i));
		}
		/* Every mid accepted before the cut is there. */
		json_array_foreach(c.order, i, m) {
			json_t *n = json_object_get(c.delivered,
			    json_string_value(m));

			cr_assert(n != NULL, "round %u: accepted %s (#%zu of "
			    "%zu before the cut %s) was lost; apply said:\n%s",
			    round, json_string_value(m), i + 1, before, how,
			    report);
		}
		cr_assert_eq(json_array_size(d), nsent, "round %u: %zu "
		    "deliveries of %zu published", round, json_array_size(d),
		    nsent);
		broken = order_broken(c.order, pos);
		cr_expect(broken == NULL, "round %u: %s", round, broken);
		total_accepted += json_array_size(c.order);

		fprintf(stderr, "powercut: round %u: cut %s: %zu sent, %zu "
		    "accepted before the cut, %zu unanswered (%zu of them "
		    "stored), %zu busy; %ld changes to data.mdb undone; "
		    "%zu delivered once\n", round, how, nsent, before,
		    inflight, stored, c.busy, undone, json_array_size(d));
		cr_assert_eq(h_broker_stop(env), 0, "round %u: the broker did "
		    "not stop cleanly", round);
	}
	fprintf(stderr, "powercut: %u cuts survived, %zu publishes accepted "
	    "before them, %ld unsynced changes undone\n", rounds,
	    total_accepted, undone_total);
}

/* ---------------------------------------------------------------- control */

/* Run argv with the simulator watching dir; its exit status. */
static int
run_under_powercut(const char *dir, const char *journal,
    const char *const argv[])
{
	pid_t	pid;
	int	w;

	fflush(stderr);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		powercut_env_set(dir, journal);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &w, 0) == -1)
		return -1;
	return WIFEXITED(w) ? WEXITSTATUS(w) : 128 + WTERMSIG(w);
}

/* dd of a 4 KiB block of ch into block `block` of dir/name, with more dd
 * operands (NULL-terminated). */
static void
dd(const char *dir, const char *journal, const char *name, int block,
    int ch, ...)
{
	char		 in[PATH_MAX], of[PATH_MAX + 8], seek[32], block_[4096];
	const char	*argv[16];
	const char	*a;
	va_list		 ap;
	size_t		 n = 0;
	int		 fd, st;

	snprintf(in, sizeof(in), "%.1000s/block.%c", pc_tmp, ch);
	memset(block_, ch, sizeof(block_));
	cr_assert_neq(fd = open(in, O_WRONLY | O_CREAT | O_TRUNC, 0600), -1);
	cr_assert_eq(write(fd, block_, sizeof(block_)),
	    (ssize_t)sizeof(block_));
	close(fd);
	snprintf(of, sizeof(of), "of=%s/%s", dir, name);
	snprintf(seek, sizeof(seek), "seek=%d", block);
	argv[n++] = "dd";
	argv[n++] = of;
	argv[n++] = seek;
	argv[n++] = "bs=4096";
	argv[n++] = "status=none";
	va_start(ap, ch);
	while ((a = va_arg(ap, const char *)) != NULL && n < 14)
		argv[n++] = a;
	va_end(ap);
	snprintf(in, sizeof(in), "if=%.1000s/block.%c", pc_tmp, ch);
	argv[n++] = in;
	argv[n] = NULL;
	st = run_under_powercut(dir, journal, argv);
	cr_assert_eq(st, 0, "dd %s exited %d", of, st);
}

static void
fill(const char *dir, const char *name, const char *blocks)
{
	char	path[PATH_MAX + 64], b[4096];
	size_t	i;
	int	fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_neq(fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), -1);
	for (i = 0; blocks[i] != '\0'; i++) {
		memset(b, blocks[i], sizeof(b));
		cr_assert_eq(write(fd, b, sizeof(b)), (ssize_t)sizeof(b));
	}
	cr_assert_eq(fsync(fd), 0);
	close(fd);
}

/* A file as one letter per 4 KiB block ("0" for zeros, "?" for a mixed
 * block); NULL when it does not exist. */
static const char *
blocks_of(const char *dir, const char *name, char s[64])
{
	char	 path[PATH_MAX + 64], b[4096];
	ssize_t	 n;
	size_t	 i = 0;
	int	 fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY)) == -1)
		return NULL;
	memset(s, 0, 64);
	while (i < 63 && (n = read(fd, b, sizeof(b))) > 0) {
		s[i] = b[0] != '\0' ? b[0] : '0';
		while (--n > 0)
			if (b[n] != b[0])
				s[i] = '?';
		i++;
	}
	close(fd);
	return s;
}

#define expect_blocks(dir, name, want)					\
	do {								\
		char buf__[64];						\
		const char *got__ = blocks_of((dir), (name), buf__);	\
		const char *want__ = (want);				\
		cr_expect(want__ == NULL ? got__ == NULL : got__ != NULL && \
		    strcmp(got__, want__) == 0, "%s: got %s, want %s",	\
		    (name), got__ ? got__ : "(no file)",		\
		    want__ ? want__ : "(no file)");			\
	} while (0)

/*
 * The simulator bites: writes no sync covered are gone after the apply,
 * synced ones stay, a sync covers every earlier write to its file (from
 * any process) and no other file, O_DSYNC writes are durable on their
 * own, growth is cut back, an unsynced new file vanishes, an unsynced
 * O_TRUNC is undone, and files outside the directory are left alone.
 */
Test(powercut, simulator_drops_unsynced_writes_and_keeps_synced_ones)
{
	char		 tmpl[] = "/tmp/cctest-powercut-XXXXXX", dir[PATH_MAX];
	char		 journal[PATH_MAX];
	const char	*report;

	cr_assert_not_null(mkdtemp(tmpl));
	snprintf(pc_tmp, sizeof(pc_tmp), "%s", tmpl);
	snprintf(dir, sizeof(dir), "%.1000s/data", pc_tmp);
	snprintf(journal, sizeof(journal), "%.1000s/journal", pc_tmp);
	cr_assert_eq(mkdir(dir, 0700), 0);
	fill(dir, "a", "AAAA");
	fill(dir, "b", "BBBB");
	fill(dir, "t", "TTTT");
	fill(pc_tmp, "outside", "OOOO");

	/* a: an overwrite and growth, never synced. */
	dd(dir, journal, "a", 1, 'X', "conv=notrunc", NULL);
	dd(dir, journal, "a", 4, 'Y', "conv=notrunc", NULL);
	/* b: unsynced, then synced by another process, then unsynced. */
	dd(dir, journal, "b", 0, 'X', "conv=notrunc", NULL);
	dd(dir, journal, "b", 2, 'Y', "conv=notrunc,fsync", NULL);
	dd(dir, journal, "b", 3, 'Z', "conv=notrunc", NULL);
	dd(dir, journal, "b", 4, 'Z', "conv=notrunc", NULL);
	/* c new and unsynced; d new, grown by fdatasync; e new, O_DSYNC. */
	dd(dir, journal, "c", 0, 'X', NULL);
	dd(dir, journal, "d", 1, 'Y', "conv=fdatasync", NULL);
	dd(dir, journal, "e", 0, 'Z', "oflag=dsync", NULL);
	/* t: truncated by O_TRUNC and rewritten, unsynced. */
	dd(dir, journal, "t", 0, 'X', NULL);
	dd(dir, journal, "../outside", 0, 'X', "conv=notrunc", NULL);

	/* The writes happened: the simulator only watched. */
	expect_blocks(dir, "a", "AXAAY");
	expect_blocks(dir, "b", "XBYZZ");
	expect_blocks(dir, "c", "X");
	expect_blocks(dir, "t", "X");

	report = apply(NULL, journal);
	fprintf(stderr, "%s", report);
	expect_blocks(dir, "a", "AAAA");
	expect_blocks(dir, "b", "XBYB");
	expect_blocks(dir, "c", NULL);
	expect_blocks(dir, "d", "0Y");
	expect_blocks(dir, "e", "Z");
	expect_blocks(dir, "t", "TTTT");
	expect_blocks(pc_tmp, "outside", "XOOO");
}
