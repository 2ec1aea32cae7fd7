/*
 * test_faults.c - disk and descriptor faults (issue 11 item 3).
 *
 * A data directory on a filesystem that fills up (an 8 MiB tmpfs under a
 * 64 MiB map): publishes are refused, never falsely accepted; nothing
 * accepted is lost; once space comes back (another file removed, the
 * queue acked) publishes are accepted again; a restart is clean.  Also a
 * broker out of file descriptors: new connections are refused, the ones
 * it has keep being served, and new ones are welcomed once descriptors
 * are free again.  (A map too small is test_routing.c's
 * full_store_refuses_publishes_loses_nothing_and_recovers.)
 *
 * Mounting needs privileges: without them the filesystem test is skipped
 * with a message.
 */
#define _GNU_SOURCE	/* prlimit, asprintf */
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "../lib/harness.h"
#include "../lib/raw.h"

#define FS_MB		8	/* the small filesystem */
#define MAP_MB		64	/* the map: larger than the filesystem */
#define BOUND_MS	2000
#define SPARE_FDS	40	/* descriptors left to the broker for peers */
#define NCONN		60	/* connections tried against that */

static struct h_env	*env;
static char		 mounted[PATH_MAX];
static void		*rctx;
static struct r_sock	 socks[NCONN];

static void
teardown(void)
{
	size_t	i;

	for (i = 0; i < NCONN; i++)
		r_close(&socks[i]);
	if (rctx != NULL)
		zmq_ctx_term(rctx);
	rctx = NULL;
	/* Lazily: the broker may still hold its files there. */
	if (mounted[0] != '\0' && umount2(mounted, MNT_DETACH) == -1)
		cr_log_warn("umount %s: %s", mounted, strerror(errno));
	mounted[0] = '\0';
	h_env_destroy(&env);
}

TestSuite(faults, .fini = teardown, .timeout = 180);

static double
ms_since(int64_t t0)
{
	return (double)(r_now_us() - t0) / 1000.0;
}

static char *
path2(const char *a, const char *b)
{
	char	*p;

	cr_assert(asprintf(&p, "%s/%s", a, b) != -1);
	return h_keep_str(p);
}

/*
 * Send n big plans, then read the n answers: accepted mids go to
 * `accepted`; each refusal must be storage-full or busy (nothing else,
 * and never silence).  Returns the number refused.
 */
static size_t
publish_round(struct h_client *c, size_t n, json_t *accepted)
{
	size_t	i, refused = 0;

	for (i = 0; i < n; i++)
		cr_assert_eq(h_send(c, h_big_plan(H_CJIT)), 0);
	for (i = 0; i < n; i++) {
		json_t *r = h_recv(c, "accepted,error", 10000);

		cr_assert_not_null(r, "no answer to a publish; log:\n%s",
		    h_log(env));
		if (h_is_op(r, "accepted")) {
			json_array_append(accepted, json_object_get(r, "mid"));
			continue;
		}
		cr_assert(h_is_op(r, "error") && h_str(r, "code") != NULL &&
		    (!strcmp(h_str(r, "code"), "storage-full") ||
		    !strcmp(h_str(r, "code"), "busy")), "%s", h_dump(r));
		refused++;
	}
	return refused;
}

/* Fill the filesystem with a file of its own; returns its size. */
static size_t
fill_up(const char *path)
{
	static char	chunk[64 * 1024];
	size_t		total = 0;
	int		fd;

	cr_assert((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1);
	for (;;) {
		ssize_t n = write(fd, chunk, sizeof(chunk));

		if (n <= 0)
			break;
		total += (size_t)n;
	}
	/* Down to the last block: smaller writes find what is left. */
	for (;;) {
		ssize_t n = write(fd, chunk, 512);

		if (n <= 0)
			break;
		total += (size_t)n;
	}
	cr_assert(errno == ENOSPC, "filling up: %s", strerror(errno));
	close(fd);
	return total;
}

H_TEST(faults, full_filesystem_refuses_publishes_loses_nothing_and_recovers)
{
	struct h_client	*carat, *cjit;
	json_t		*accepted, *d, *e, *seen, *r = NULL;
	char		*fs, *filler, *err = NULL;
	size_t		 i, sent = 0, refused = 0, late, filled, dups = 0;
	int		 st, tries;

	env = h_env_new(&(struct h_env_opts){ .no_start = true,
	    .map_size_mb = MAP_MB });
	fs = path2(h_dir(env), "fs");
	cr_assert_eq(mkdir(fs, 0700), 0);
	if (mount("tmpfs", fs, "tmpfs", MS_NOSUID | MS_NODEV,
	    "size=" "8m" ",mode=0700") == -1)
		cr_skip_test("cannot mount a %d MiB tmpfs here (%s): the full "
		    "filesystem test needs mount privileges", FS_MB,
		    strerror(errno));
	snprintf(mounted, sizeof(mounted), "%s", fs);
	h_set_data(env, path2(fs, "data"));
	st = h_ccbroker(env, NULL, &err, "init", "-c", h_conf(env), NULL);
	cr_assert_eq(st, 0, "init on the tmpfs: %s", err);
	h_broker_start(env);

	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_grant(carat, H_CJIT, H_BASIC, H_PNC_A),
	    "consent-recorded");
	accepted = h_keep(json_array());
	filler = path2(fs, "filler");

	/*
	 * The filesystem fills up just after the broker measured it, so it
	 * believes there is room until it looks again: publishes go on into
	 * the disk it holds in reserve, then writes may fail; whatever is
	 * not on disk must be refused (never `accepted`) and the broker
	 * must carry on.
	 */
	h_msleep(1100);
	r = h_publish(carat, h_big_plan(H_CJIT));
	h_assert_op(r, "accepted");
	json_array_append(accepted, json_object_get(r, "mid"));
	filled = fill_up(filler);
	late = json_array_size(accepted);
	while (refused == 0 && sent < 1000) {
		refused = publish_round(carat, 20, accepted);
		sent += 20;
	}
	late = json_array_size(accepted) - late;
	cr_log_info("filesystem filled behind the broker's back (%zu KiB): "
	    "%zu more publishes accepted, then refusals; %zu failed commits "
	    "logged", filled / 1024, late, h_log_count(env, "commit failed"));
	fprintf(stderr, "faults: filesystem filled behind the broker's back "
	    "(%zu KiB): %zu more publishes accepted, then refusals; %zu "
	    "failed commits logged\n", filled / 1024, late,
	    h_log_count(env, "commit failed"));
	cr_assert_gt(refused, 0);
	cr_assert(h_broker_running(env), "%s", h_log(env));
	cr_assert_eq(unlink(filler), 0);
	refused = 0;
	sent = 0;
	h_msleep(1200);		/* the broker looks again */

	/* The broker fills the filesystem itself. */
	late = json_array_size(accepted);
	while (refused == 0 && sent < 1000) {
		refused = publish_round(carat, 20, accepted);
		sent += 20;
	}
	late = json_array_size(accepted) - late;
	cr_assert_gt(refused, 0, "%zu publishes of 40 KB fit on %d MiB",
	    sent, FS_MB);
	cr_log_info("%d MiB filesystem, %d MiB map: %zu of %zu publishes "
	    "accepted before refusals", FS_MB, MAP_MB, late, sent);
	fprintf(stderr, "faults: %d MiB filesystem, %d MiB map: %zu of %zu "
	    "publishes accepted before refusals\n", FS_MB, MAP_MB, late,
	    sent);
	cr_assert(h_broker_running(env), "%s", h_log(env));

	/* Something else takes the rest. */
	filled = fill_up(filler);
	late = json_array_size(accepted);
	refused = publish_round(carat, 20, accepted);
	late = json_array_size(accepted) - late;
	cr_log_info("filesystem filled up (%zu KiB more): %zu of 20 "
	    "publishes refused, %zu accepted; %zu failed commits logged",
	    filled / 1024, refused, late, h_log_count(env, "commit failed"));
	fprintf(stderr, "faults: filesystem filled up (%zu KiB more): %zu of "
	    "20 publishes refused, %zu accepted; %zu failed commits logged\n",
	    filled / 1024, refused, late, h_log_count(env, "commit failed"));
	cr_assert(h_broker_running(env), "%s", h_log(env));
	h_assert_op(h_hello(carat, false), "welcome");

	/*
	 * The filesystem still full, the queue is delivered and acked: the
	 * acks fit in the room kept for them, and free the store's pages.
	 */
	cjit = h_agent(env, H_CJIT, true);
	d = h_collect(cjit, "deliver", 0, 30000, true);
	seen = h_keep(json_object());
	json_array_foreach(d, i, e) {
		if (json_object_get(seen, h_str(e, "mid")) != NULL)
			dups++;
		json_object_set_new(seen, h_str(e, "mid"), json_true());
	}
	json_array_foreach(accepted, i, e)
		cr_expect_not_null(json_object_get(seen, json_string_value(e)),
		    "accepted %s was not delivered", json_string_value(e));
	cr_expect_eq(dups, 0, "%zu delivered twice on one connection", dups);

	/* Publishes are accepted again, in the pages the acks freed. */
	for (tries = 0; tries < 50; tries++) {
		r = h_publish(carat, h_big_plan(H_CJIT));
		if (h_is_op(r, "accepted"))
			break;
		h_msleep(200);
	}
	h_assert_op(r, "accepted");
	cr_assert_eq(unlink(filler), 0);
	h_assert_op(h_publish(carat, h_big_plan(H_CJIT)), "accepted");

	/* A clean stop and start on it; the audit chain holds. */
	cr_assert_eq(h_broker_stop(env), 0, "%s", h_log(env));
	h_broker_start(env);
	st = h_ccbroker(env, NULL, &err, "audit", "verify", "-c", h_conf(env),
	    NULL);
	cr_expect_eq(st, 0, "audit verify: %s", err);
	carat = h_agent(env, H_CARAT, false);
	h_assert_op(h_publish(carat, h_big_plan(H_CJIT)), "accepted");
}

/* ---------------------------------------------------------------- fds */

static double
cpu_s(pid_t pid)
{
	char		 path[64], buf[1024], *p;
	unsigned long	 ut = 0, stt = 0;
	FILE		*f;
	size_t		 n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the command name: state is field 3, utime 14, stime 15. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	    &ut, &stt) != 2)
		return -1;
	return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

H_TEST(faults, out_of_descriptors_refuses_new_connections_serves_the_rest)
{
	struct h_client	*carat;
	struct r_target	 t;
	struct rlimit	 rl;
	char		 op[32], code[32];
	pid_t		 pid;
	int		 i, base, welcomed = 0, refused = 0, silent = 0;
	int		 outcome[NCONN];
	double		 c0, cpu;
	int64_t		 t0;

	env = h_env_new(NULL);
	r_target_of(env, &t);
	pid = r_broker_pid(env);
	cr_assert_gt(pid, 0);
	carat = h_agent(env, H_CARAT, false);
	base = r_count_fds(pid);
	rl.rlim_cur = rl.rlim_max = (rlim_t)(base + SPARE_FDS);
	cr_assert_eq(prlimit(pid, RLIMIT_NOFILE, &rl, NULL), 0,
	    "prlimit: %s", strerror(errno));
	cr_assert_not_null(rctx = r_ctx_new(4 * NCONN + 16));

	/* One at a time: each welcomed, refused, or left unanswered. */
	for (i = 0; i < NCONN; i++) {
		struct r_sock *s = &socks[i];

		cr_assert_eq(r_open(s, rctx, &t, H_CJIT, 600000, true), 0);
		cr_assert_eq(r_hello(s, false), 0);
		switch (r_handshake(s, BOUND_MS)) {
		case 1:
			cr_assert_eq(r_recv(s, BOUND_MS, op, code), 1,
			    "connection %d: no welcome", i);
			cr_assert_str_eq(op, "welcome", "%s %s", op, code);
			outcome[i] = 1;
			welcomed++;
			break;
		case -1:
			outcome[i] = -1;
			refused++;
			break;
		default:
			/* Fail now with the broker's view, not after every
			 * other connection has waited its bound too. */
			outcome[i] = 0;
			silent++;
			cr_assert_fail("connection %d (%d welcomed, %d refused "
			    "before it) neither welcomed nor refused within "
			    "%d ms; broker log:\n%s", i, welcomed, refused,
			    BOUND_MS, h_log(env));
		}
	}
	/* What the broker does meanwhile, at its limit. */
	c0 = cpu_s(pid);
	t0 = r_now_us();
	h_msleep(1000);
	cpu = (cpu_s(pid) - c0) / (ms_since(t0) / 1000.0) * 100.0;
	cr_log_info("%d descriptors at start, limit %d: of %d connections "
	    "%d welcomed, %d refused at the handshake, %d unanswered; the "
	    "broker used %.0f%% of a CPU at its limit", base, base +
	    SPARE_FDS, NCONN, welcomed, refused, silent, cpu);
	fprintf(stderr, "faults: %d descriptors at start, limit %d: of %d "
	    "connections %d welcomed, %d refused at the handshake, %d "
	    "unanswered; the broker used %.0f%% of a CPU at its limit\n",
	    base, base + SPARE_FDS, NCONN, welcomed, refused, silent, cpu);
	cr_assert_gt(welcomed, 0);
	cr_assert_lt(welcomed, NCONN, "the limit was never reached");
	cr_expect_eq(silent, 0, "connections neither served nor refused");

	/* The connections it has are served, within the bound. */
	t0 = r_now_us();
	h_assert_op(h_publish(carat, h_release_plan_new(H_PNC_A, "Fdless")),
	    "accepted");
	cr_assert_leq(ms_since(t0), BOUND_MS);
	for (i = 0; i < NCONN; i++) {
		if (outcome[i] != 1)
			continue;
		cr_assert_eq(r_hello(&socks[i], false), 0);
		cr_assert_eq(r_recv(&socks[i], BOUND_MS, op, code), 1,
		    "connection %d no longer answered", i);
		cr_assert_str_eq(op, "welcome");
	}

	/* Descriptors freed: newcomers are welcomed again. */
	for (i = 0; i < NCONN; i++)
		if (outcome[i] != 1 || i % 2 == 0)
			r_close(&socks[i]);
	h_msleep(500);
	{
		struct h_client *cjit = h_agent(env, H_CJIT, false);

		h_assert_op(h_hello(cjit, false), "welcome");
	}
	cr_assert(h_broker_running(env));
}
