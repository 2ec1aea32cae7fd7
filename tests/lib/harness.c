/*
 * harness.c - a fresh partnership, a real broker process and CURVE clients
 * for the integration tests (see harness.h).
 */
#define _GNU_SOURCE	/* vasprintf, nftw */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <zmq.h>

#include "cc_proto.h"
#include "harness.h"
#include "pki.h"

#define H_PATH		PATH_MAX
#define H_START_MS	20000	/* a sanitizer build starts slowly */
#define H_STOP_MS	15000

struct h_client {
	struct h_env	*env;
	struct h_client	*next;
	char		 agency[CC_ID_MAX + 1];
	void		*sock;
	void		*mon;		/* PAIR end of the socket monitor */
	int		 handshake;	/* as h_handshake() returns */
	json_t		*inbox;		/* received, not yet asked for */
	json_t		*receipts;	/* receipts seen (already acked) */
};

struct h_env {
	char		 dir[H_PATH];
	char		 pki[H_PATH];
	char		 conf[H_PATH];
	char		 data[H_PATH];
	char		 log[H_PATH];
	char		 src[H_PATH];
	char		 bin[H_PATH];
	char		 script[H_PATH];
	int		 port;
	pid_t		 pid;
	size_t		 map_size_mb;
	unsigned	 retention_days;
	bool		 bad_certs;
	unsigned	 hs_rate, hs_burst;
	char		*agencies;	/* opts->agencies, copied */
	char		*extra_conf;
	void		*zctx;
	struct h_client	*clients;
	int		 nmon;
	json_t		*pool;		/* every json_t handed out */
	char		**strs;		/* every string handed out */
	size_t		 nstrs;
};

/* The demo agencies of mkpartnership.sh; all in H_AREA. */
static const char *const h_demo[] = {
	H_CARAT, H_CJIT, H_PROBATION, H_HOUSING, H_LA, H_REVOKED
};

static struct h_env	*h_cur;		/* for h_keep() */

static void	 h_fail(const char *, ...) __attribute__((format(printf, 1, 2)));
static char	*h_slurp(const char *path);
static void	 h_spit(const char *path, const char *text, mode_t);
static void	 h_copy(const char *from, const char *to, mode_t);
static int	 h_free_port(void);
static int	 h_script(struct h_env *, ...) __attribute__((sentinel));
static void	 h_make_bad_certs(struct h_env *);
static void	 h_make_extra_agencies(struct h_env *);
static int	 h_wait_pid(pid_t, int timeout_ms, int *status);
static pid_t	 h_spawn(struct h_env *, const char *const argv[],
		    const char *input);
static int	 h_ccbroker_v(struct h_env *, const char *input, char **out,
		    char **err, va_list);
static int	 h_status(int wstatus);
static bool	 h_port_open(int port);
static int64_t	 h_now_ms(void);
static void	 h_pack_json(msgpack_packer *, json_t *);
static bool	 h_op_in(json_t *, const char *ops);
static json_t	*h_inbox_take(struct h_client *, const char *ops);
static struct h_client *h_client_new(struct h_env *, const char *agency,
		    const uint8_t sec[32], const uint8_t pub[32]);
static int	 h_rm_one(const char *, const struct stat *, int,
		    struct FTW *);
static void	 h_exec_broker(struct h_env *) __attribute__((noreturn));

static void
h_fail(const char *fmt, ...)
{
	char	msg[2048];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cr_assert_fail("harness: %s", msg);
}

static int64_t
h_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
h_msleep(int ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ---------------------------------------------------------------- memory */

json_t *
h_keep(json_t *j)
{
	if (j != NULL && h_cur != NULL)
		json_array_append_new(h_cur->pool, j);
	return j;
}

char *
h_keep_str(char *s)
{
	char	**n;

	if (s == NULL || h_cur == NULL)
		return s;
	n = realloc(h_cur->strs, (h_cur->nstrs + 1) * sizeof(*n));
	if (n == NULL)
		h_fail("out of memory");
	h_cur->strs = n;
	h_cur->strs[h_cur->nstrs++] = s;
	return s;
}

/* ---------------------------------------------------------------- files */

static char *
h_slurp(const char *path)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		return h_keep_str(strdup(""));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (n < 0 || (buf = malloc((size_t)n + 1)) == NULL)
		h_fail("cannot read %s", path);
	n = (long)fread(buf, 1, (size_t)n, f);
	buf[n] = '\0';
	fclose(f);
	return h_keep_str(buf);
}

static void
h_spit(const char *path, const char *text, mode_t mode)
{
	int	fd;
	size_t	len = strlen(text);

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)) == -1 ||
	    write(fd, text, len) != (ssize_t)len || close(fd) == -1)
		h_fail("cannot write %s: %s", path, strerror(errno));
}

static void
h_copy(const char *from, const char *to, mode_t mode)
{
	h_spit(to, h_slurp(from), mode);
	if (chmod(to, mode) == -1)
		h_fail("chmod %s: %s", to, strerror(errno));
}

static int
h_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* ---------------------------------------------------------------- processes */

static int
h_status(int w)
{
	if (WIFEXITED(w))
		return WEXITSTATUS(w);
	if (WIFSIGNALED(w))
		return 128 + WTERMSIG(w);
	return 255;
}

/* Wait for a child; 0 when it ended (status set), -1 on timeout. */
static int
h_wait_pid(pid_t pid, int timeout_ms, int *status)
{
	int64_t	deadline = h_now_ms() + timeout_ms;
	int	w;

	for (;;) {
		pid_t r = waitpid(pid, &w, WNOHANG);

		if (r == pid) {
			*status = h_status(w);
			return 0;
		}
		if (r == -1 && errno != EINTR) {
			*status = 255;
			return 0;
		}
		if (h_now_ms() >= deadline)
			return -1;
		h_msleep(10);
	}
}

/*
 * Run argv with stdout and stderr to files; stdin reads `input` (from a
 * file given to the child open, and already removed) or, when it is
 * NULL, /dev/null.
 */
static pid_t
h_spawn(struct h_env *e, const char *const argv[], const char *input)
{
	static unsigned	 inputs;
	char		 opath[H_PATH + 32], epath[H_PATH + 32];
	char		 ipath[H_PATH + 32];
	pid_t		 pid;
	int		 in = -1;

	/* Opened before it is removed: nothing of it stays behind. */
	if (input != NULL) {
		snprintf(ipath, sizeof(ipath), "%s/.run.in.%u", e->dir,
		    inputs++);
		h_spit(ipath, input, 0600);
		if ((in = open(ipath, O_RDONLY)) == -1)
			h_fail("%s: %s", ipath, strerror(errno));
		unlink(ipath);
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1)
		h_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int o, x, n;

		snprintf(opath, sizeof(opath), "%s/.run.%d.out", e->dir,
		    (int)getpid());
		snprintf(epath, sizeof(epath), "%s/.run.%d.err", e->dir,
		    (int)getpid());
		o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		x = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		n = in != -1 ? in : open("/dev/null", O_RDONLY);
		if (o == -1 || x == -1 || n == -1)
			_exit(126);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(n, 0);
		dup2(o, 1);
		dup2(x, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (in != -1)
		close(in);
	return pid;
}

int
h_bg_wait(struct h_env *e, pid_t pid, int timeout_ms, char **out, char **err)
{
	char	path[H_PATH + 32];
	int	st;

	if (h_wait_pid(pid, timeout_ms, &st) == -1) {
		if (timeout_ms == 0)
			return -1;
		kill(pid, SIGKILL);
		(void)h_wait_pid(pid, 5000, &st);
		h_fail("a command did not finish within %d ms", timeout_ms);
	}
	snprintf(path, sizeof(path), "%s/.run.%d.out", e->dir, (int)pid);
	if (out != NULL)
		*out = h_slurp(path);
	unlink(path);
	snprintf(path, sizeof(path), "%s/.run.%d.err", e->dir, (int)pid);
	if (err != NULL)
		*err = h_slurp(path);
	unlink(path);
	return st;
}

int
h_run(struct h_env *e, char **out, char **err, const char *const argv[])
{
	return h_bg_wait(e, h_spawn(e, argv, NULL), 60000, out, err);
}

pid_t
h_ccbroker_bg(struct h_env *e, ...)
{
	const char	*argv[32];
	va_list		 ap;
	size_t		 n = 0;
	const char	*a;

	argv[n++] = e->bin;
	va_start(ap, e);
	while ((a = va_arg(ap, const char *)) != NULL && n < 31)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	return h_spawn(e, argv, NULL);
}

static int
h_ccbroker_v(struct h_env *e, const char *input, char **out, char **err,
    va_list ap)
{
	const char	*argv[32];
	size_t		 n = 0;
	const char	*a;

	argv[n++] = e->bin;
	while ((a = va_arg(ap, const char *)) != NULL && n < 31)
		argv[n++] = a;
	argv[n] = NULL;
	return h_bg_wait(e, h_spawn(e, argv, input), 60000, out, err);
}

int
h_ccbroker(struct h_env *e, char **out, char **err, ...)
{
	va_list	ap;
	int	st;

	va_start(ap, err);
	st = h_ccbroker_v(e, NULL, out, err, ap);
	va_end(ap);
	return st;
}

int
h_ccbroker_in(struct h_env *e, const char *input, char **out, char **err,
    ...)
{
	va_list	ap;
	int	st;

	va_start(ap, err);
	st = h_ccbroker_v(e, input, out, err, ap);
	va_end(ap);
	return st;
}

json_t *
h_audit_subject(struct h_env *e, const char *request)
{
	char	*out, *err;
	int	 st;

	st = h_ccbroker_in(e, request, &out, &err, "audit", "subject", "-c",
	    e->conf, NULL);
	cr_assert_eq(st, 0, "audit subject exited %d: %s", st, err);
	return h_json(out);
}

json_t *
h_stats(struct h_env *e)
{
	char	*out, *err;
	int	 st;

	st = h_ccbroker(e, &out, &err, "stats", "-c", e->conf, NULL);
	cr_assert_eq(st, 0, "stats exited %d: %s", st, err);
	return h_json(out);
}

long long
h_queue_depth(json_t *stats, const char *agency)
{
	json_t	*q = json_object_get(json_object_get(stats, "queues"), agency);

	if (q == NULL)
		return 0;
	return json_is_integer(json_object_get(q, "depth")) ?
	    json_integer_value(json_object_get(q, "depth")) : -1;
}

/* mkpartnership.sh ARGS...; returns its exit status. */
static int
h_script(struct h_env *e, ...)
{
	const char	*argv[32];
	char		*err;
	va_list		 ap;
	size_t		 n = 0;
	const char	*a;
	int		 st;

	argv[n++] = "sh";
	argv[n++] = e->script;
	va_start(ap, e);
	while ((a = va_arg(ap, const char *)) != NULL && n < 31)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	if ((st = h_run(e, NULL, &err, argv)) != 0)
		cr_log_error("mkpartnership.sh failed (%d): %s", st, err);
	return st;
}

int
h_issue(struct h_env *e, const char *id, const char *type,
    const char *not_before, const char *not_after)
{
	if (not_before != NULL)
		return h_script(e, "-d", "30", "-i", id, type, "--not-before",
		    not_before, "--not-after", not_after, e->pki, NULL);
	return h_script(e, "-d", "30", "-i", id, type, e->pki, NULL);
}

int
h_revoke(struct h_env *e, const char *id)
{
	return h_script(e, "-d", "30", "-r", id, e->pki, NULL);
}

int
h_gencrl(struct h_env *e, const char *last, const char *next)
{
	if (last != NULL)
		return h_script(e, "-g", "--not-before", last, "--not-after",
		    next, e->pki, NULL);
	return h_script(e, "-d", "30", "-g", e->pki, NULL);
}

char *
h_asn1_time(int64_t offset_s, char out[16])
{
	time_t		t = time(NULL) + offset_s;
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(out, 16, "%Y%m%d%H%M%SZ", &tm);
	return out;
}

/* PKI/SUB/ID[.old].EXT */
static void
h_pki_path(struct h_env *e, char *out, size_t size, const char *sub,
    const char *id, bool old, const char *ext)
{
	snprintf(out, size, "%.900s/%s/%s%s.%s", e->pki, sub, id,
	    old ? ".old" : "", ext);
}

static int
h_move(const char *from, const char *to)
{
	if (rename(from, to) == -1) {
		cr_log_error("rename %s: %s", from, strerror(errno));
		return -1;
	}
	return 0;
}

int
h_rekey(struct h_env *e, const char *id, const char *type)
{
	char	c[H_PATH], co[H_PATH], k[H_PATH], ko[H_PATH];

	h_pki_path(e, c, sizeof(c), "agencies", id, false, "crt");
	h_pki_path(e, co, sizeof(co), "agencies", id, true, "crt");
	h_pki_path(e, k, sizeof(k), "keys", id, false, "key");
	h_pki_path(e, ko, sizeof(ko), "keys", id, true, "key");
	if (h_move(c, co) == -1 || h_move(k, ko) == -1)
		return -1;
	return h_issue(e, id, type, NULL, NULL);
}

int
h_renew(struct h_env *e, const char *id, const char *type)
{
	char	c[H_PATH], co[H_PATH], k[H_PATH];

	h_pki_path(e, c, sizeof(c), "agencies", id, false, "crt");
	h_pki_path(e, co, sizeof(co), "agencies", id, true, "crt");
	h_pki_path(e, k, sizeof(k), "keys", id, false, "key");
	if (h_move(c, co) == -1)
		return -1;
	return h_script(e, "-d", "30", "-k", k, "-i", id, type, e->pki, NULL);
}

/* The script revokes agencies/ID.crt: the old one is put there for it. */
int
h_revoke_old(struct h_env *e, const char *id)
{
	char	c[H_PATH], co[H_PATH], tmp[H_PATH + 8];
	int	rc;

	h_pki_path(e, c, sizeof(c), "agencies", id, false, "crt");
	h_pki_path(e, co, sizeof(co), "agencies", id, true, "crt");
	snprintf(tmp, sizeof(tmp), "%s.new", c);
	if (h_move(c, tmp) == -1 || h_move(co, c) == -1)
		return -1;
	rc = h_revoke(e, id);
	if (h_move(c, co) == -1 || h_move(tmp, c) == -1)
		return -1;
	return rc;
}

/*
 * The certificates the broker must refuse: expired, not yet valid, signed
 * by another CA, with an OU that is no agency type, and one whose
 * certificate is not in the agencies directory at all.
 */
static void
h_make_bad_certs(struct h_env *e)
{
	char	foreign[H_PATH + 16], from[2 * H_PATH], to[2 * H_PATH];
	char	outside[H_PATH + 16];

	if (h_issue(e, H_EXPIRED, "cjit", "20200101000000Z",
	    "20210101000000Z") != 0 ||
	    h_issue(e, H_FUTURE, "cjit", "20450101000000Z",
	    "20460101000000Z") != 0 ||
	    h_issue(e, H_WRONG_OU, "plumber", NULL, NULL) != 0 ||
	    h_issue(e, H_STRANGER, "cjit", NULL, NULL) != 0)
		h_fail("cannot issue the refused certificates");

	snprintf(outside, sizeof(outside), "%s/outside", e->dir);
	if (mkdir(outside, 0700) == -1)
		h_fail("mkdir %s: %s", outside, strerror(errno));
	snprintf(from, sizeof(from), "%s/agencies/%s.crt", e->pki, H_STRANGER);
	snprintf(to, sizeof(to), "%s/%s.crt", outside, H_STRANGER);
	if (rename(from, to) == -1)
		h_fail("rename %s: %s", from, strerror(errno));

	/* A second partnership: its CA signs foreign.agency. */
	snprintf(foreign, sizeof(foreign), "%s/foreign", e->dir);
	if (h_script(e, "-d", "30", foreign, NULL) != 0 ||
	    h_script(e, "-d", "30", "-i", H_FOREIGN, "cjit", foreign,
	    NULL) != 0)
		h_fail("cannot make the foreign partnership");
	snprintf(from, sizeof(from), "%s/agencies/%s.crt", foreign, H_FOREIGN);
	snprintf(to, sizeof(to), "%s/agencies/%s.crt", e->pki, H_FOREIGN);
	h_copy(from, to, 0644);
	snprintf(from, sizeof(from), "%s/keys/%s.key", foreign, H_FOREIGN);
	snprintf(to, sizeof(to), "%s/keys/%s.key", e->pki, H_FOREIGN);
	h_copy(from, to, 0600);
}

/* opts->agencies: "id:type:area area;id:type:area". */
static void
h_make_extra_agencies(struct h_env *e)
{
	char	*list, *entry, *save = NULL;

	if (e->agencies == NULL)
		return;
	if ((list = strdup(e->agencies)) == NULL)
		h_fail("out of memory");
	for (entry = strtok_r(list, ";", &save); entry != NULL;
	    entry = strtok_r(NULL, ";", &save)) {
		char *id = entry, *type = strchr(entry, ':');

		if (type == NULL || strchr(type + 1, ':') == NULL)
			h_fail("bad agencies entry '%s'", entry);
		*type++ = '\0';
		*strchr(type, ':') = '\0';
		if (h_issue(e, id, type, NULL, NULL) != 0)
			h_fail("cannot issue %s", id);
	}
	free(list);
}

static int
h_free_port(void)
{
	struct sockaddr_in	sa;
	socklen_t		len = sizeof(sa);
	int			fd, port;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		h_fail("socket: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1)
		h_fail("bind: %s", strerror(errno));
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static bool
h_port_open(int port)
{
	struct sockaddr_in	sa;
	int			fd;
	bool			ok;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* ---------------------------------------------------------------- config */

void
h_write_conf(struct h_env *e, const char *extra)
{
	char	*text = NULL, *list, *entry, *save = NULL;
	size_t	 len = 0, i;
	FILE	*f;

	if (extra != NULL) {
		free(e->extra_conf);
		e->extra_conf = strdup(extra);
	}
	if ((f = open_memstream(&text, &len)) == NULL)
		h_fail("open_memstream");
	fprintf(f, "# written by the integration test harness\n"
	    "[broker]\n"
	    "bind = tcp://127.0.0.1:%d\n"
	    "data = %s\n"
	    "certificate = %s/broker.crt\n"
	    "key = %s/broker.key\n"
	    "ca = %s/ca.crt\n"
	    "crl = %s/ca.crl\n"
	    "agencies = %s/agencies\n"
	    "map_size_mb = %zu\n"
	    "retention_days = %u\n"
	    "handshake_rate = %u\n"
	    "handshake_burst = %u\n\n",
	    e->port, e->data, e->pki, e->pki, e->pki, e->pki, e->pki,
	    e->map_size_mb, e->retention_days, e->hs_rate, e->hs_burst);
	for (i = 0; i < sizeof(h_demo) / sizeof(h_demo[0]); i++)
		fprintf(f, "[agency.%s]\nareas = %s\n\n", h_demo[i], H_AREA);
	if (e->bad_certs) {
		/* Listed, so that only the certificate is at fault. */
		fprintf(f, "[agency.%s]\nareas = %s\n\n", H_EXPIRED, H_AREA);
		fprintf(f, "[agency.%s]\nareas = %s\n\n", H_FUTURE, H_AREA);
		fprintf(f, "[agency.%s]\nareas = %s\n\n", H_FOREIGN, H_AREA);
		fprintf(f, "[agency.%s]\nareas = %s\n\n", H_WRONG_OU, H_AREA);
	}
	if (e->agencies != NULL) {
		if ((list = strdup(e->agencies)) == NULL)
			h_fail("out of memory");
		for (entry = strtok_r(list, ";", &save); entry != NULL;
		    entry = strtok_r(NULL, ";", &save)) {
			char *areas = strrchr(entry, ':');

			*strchr(entry, ':') = '\0';
			fprintf(f, "[agency.%s]\nareas = %s\n\n", entry,
			    areas + 1);
		}
		free(list);
	}
	if (e->extra_conf != NULL)
		fprintf(f, "%s\n", e->extra_conf);
	if (fclose(f) != 0)
		h_fail("cannot build broker.conf");
	h_spit(e->conf, text, 0600);
	free(text);
}

void
h_set_data(struct h_env *e, const char *dir)
{
	snprintf(e->data, sizeof(e->data), "%s", dir);
	h_write_conf(e, NULL);
}

void
h_set_port(struct h_env *e, int port)
{
	e->port = port > 0 ? port : h_free_port();
	h_write_conf(e, NULL);
}

/* ---------------------------------------------------------------- env */

struct h_env *
h_env_new(const struct h_env_opts *opts)
{
	static const struct h_env_opts none;
	struct h_env	*e;
	const char	*src = getenv("CC_SRC"), *build = getenv("CC_BUILD");
	char		 tmpl[] = "/tmp/cctest-XXXXXX", *err;
	int		 st, i;

	if (opts == NULL)
		opts = &none;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		h_fail("out of memory");
	h_cur = e;
	e->pool = json_array();
	if (mkdtemp(tmpl) == NULL)
		h_fail("mkdtemp: %s", strerror(errno));
	snprintf(e->dir, sizeof(e->dir), "%s", tmpl);
	if (realpath(src != NULL && *src ? src : ".", e->src) == NULL)
		h_fail("CC_SRC: %s", strerror(errno));
	if (build == NULL || *build == '\0')
		build = "build";
	if (build[0] == '/')
		snprintf(e->bin, sizeof(e->bin), "%s/bin/ccbroker", build);
	else {
		char cwd[H_PATH];

		if (getcwd(cwd, sizeof(cwd)) == NULL)
			h_fail("getcwd: %s", strerror(errno));
		snprintf(e->bin, sizeof(e->bin), "%.500s/%.500s/bin/ccbroker",
		    cwd, build);
	}
	if (access(e->bin, X_OK) == -1)
		h_fail("%s: %s (run make first, or set CC_BUILD)", e->bin,
		    strerror(errno));
	snprintf(e->script, sizeof(e->script),
	    "%.900s/certs-example/mkpartnership.sh", e->src);
	snprintf(e->pki, sizeof(e->pki), "%.1000s/pki", e->dir);
	snprintf(e->conf, sizeof(e->conf), "%.1000s/broker.conf", e->dir);
	snprintf(e->data, sizeof(e->data), "%.1000s/data", e->dir);
	snprintf(e->log, sizeof(e->log), "%.1000s/broker.log", e->dir);
	e->map_size_mb = opts->map_size_mb ? opts->map_size_mb : 64;
	e->retention_days = opts->retention_days ? opts->retention_days : 30;
	e->bad_certs = opts->bad_certs;
	e->hs_rate = opts->handshake_rate ? opts->handshake_rate : 1000000;
	e->hs_burst = opts->handshake_burst ? opts->handshake_burst : 1000000;
	e->agencies = opts->agencies ? strdup(opts->agencies) : NULL;
	e->extra_conf = opts->extra_conf ? strdup(opts->extra_conf) : NULL;
	e->port = h_free_port();
	if ((e->zctx = zmq_ctx_new()) == NULL)
		h_fail("zmq_ctx_new: %s", zmq_strerror(errno));

	if (h_script(e, "-d", "30", e->pki, NULL) != 0)
		h_fail("mkpartnership.sh could not make %s", e->pki);
	if (e->bad_certs)
		h_make_bad_certs(e);
	h_make_extra_agencies(e);
	h_write_conf(e, NULL);
	if ((st = h_ccbroker(e, NULL, &err, "init", "-c", e->conf, NULL)) != 0)
		h_fail("ccbroker init failed (%d): %s", st, err);
	/* A port someone else took meanwhile: another one, twice at most. */
	for (i = 0; !opts->no_start; i++) {
		if ((st = h_broker_start_status(e)) == 0)
			break;
		if (i == 2 || strstr(h_log(e), "Address already in use") == NULL)
			h_fail("broker did not start (%d); log:\n%s", st,
			    h_log(e));
		h_set_port(e, 0);
	}
	return e;
}

void
h_env_destroy(struct h_env **ep)
{
	struct h_env	*e = *ep;
	const char	*keep = getenv("KEEP");
	size_t		 i;

	if (e == NULL)
		return;
	while (e->clients != NULL) {
		struct h_client *c = e->clients;

		h_close(&c);
	}
	if (e->pid > 0) {
		int st;

		kill(e->pid, SIGTERM);
		if (h_wait_pid(e->pid, H_STOP_MS, &st) == -1) {
			kill(e->pid, SIGKILL);
			(void)h_wait_pid(e->pid, 5000, &st);
		}
		e->pid = 0;
	}
	if (e->zctx != NULL)
		zmq_ctx_term(e->zctx);
	if (keep != NULL && strcmp(keep, "1") == 0)
		fprintf(stderr, "KEEP=1: kept %s\n", e->dir);
	else
		(void)nftw(e->dir, h_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	json_decref(e->pool);
	for (i = 0; i < e->nstrs; i++)
		free(e->strs[i]);
	free(e->strs);
	free(e->agencies);
	free(e->extra_conf);
	if (h_cur == e)
		h_cur = NULL;
	free(e);
	*ep = NULL;
}

void
h_env_check(struct h_env *e)
{
	const char	*bad;
	int		 st;

	if (e == NULL)
		return;
	if (h_broker_running(e)) {
		st = h_broker_stop(e);
		cr_expect_eq(st, 0, "the broker exited %d on SIGTERM; log:\n%s",
		    st, h_log(e));
	}
	if ((bad = strstr(h_log(e), "Sanitizer")) != NULL ||
	    (bad = strstr(h_log(e), "runtime error:")) != NULL)
		cr_expect_fail("the broker reported a sanitizer error: %.3000s",
		    bad);
}

const char *h_dir(const struct h_env *e) { return e->dir; }
const char *h_pki(const struct h_env *e) { return e->pki; }
const char *h_conf(const struct h_env *e) { return e->conf; }
const char *h_data(const struct h_env *e) { return e->data; }
const char *h_logpath(const struct h_env *e) { return e->log; }
int h_port(const struct h_env *e) { return e->port; }

/* ---------------------------------------------------------------- broker */

/*
 * Exec the broker daemon, under the command in CC_BROKER_WRAPPER when set
 * (`make check-valgrind`: "valgrind --leak-check=full --error-exitcode=99
 * --log-file=..."), split at blanks.  The wrapper's exit status stands
 * for the broker's, which H_TEST expects to be 0 after SIGTERM.
 */
static void
h_exec_broker(struct h_env *e)
{
	const char	*wrap = getenv("CC_BROKER_WRAPPER");
	char		*copy, *tok, *save = NULL;
	char		*argv[40];
	size_t		 n = 0;

	if (wrap == NULL || *wrap == '\0') {
		execl(e->bin, "ccbroker", "run", "-c", e->conf, (char *)NULL);
		_exit(127);
	}
	if ((copy = strdup(wrap)) == NULL)
		_exit(126);
	for (tok = strtok_r(copy, " \t", &save); tok != NULL && n < 35;
	    tok = strtok_r(NULL, " \t", &save))
		argv[n++] = tok;
	argv[n++] = e->bin;
	argv[n++] = "run";
	argv[n++] = "-c";
	argv[n++] = e->conf;
	argv[n] = NULL;
	execvp(argv[0], argv);
	_exit(127);
}

int
h_broker_start_status(struct h_env *e)
{
	int64_t	deadline;
	pid_t	pid;
	size_t	runs;
	int	st;

	if (e->pid > 0)
		h_fail("broker already running");
	/*
	 * Started means this broker said it listens and the port answers:
	 * the port alone could be another program's that took it after
	 * h_free_port let it go (this broker then fails to bind and exits).
	 */
	runs = h_log_count(e, "listening on");
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1)
		h_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int n = open("/dev/null", O_RDONLY);

		/* Never outlive a test that crashed. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd == -1 || n == -1)
			_exit(126);
		dup2(n, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		h_exec_broker(e);
	}
	deadline = h_now_ms() + H_START_MS;
	while (h_now_ms() < deadline) {
		if (h_wait_pid(pid, 0, &st) == 0)
			return st != 0 ? st : 255;
		if (h_log_count(e, "listening on") > runs &&
		    h_port_open(e->port)) {
			e->pid = pid;
			return 0;
		}
		h_msleep(20);
	}
	kill(pid, SIGKILL);
	(void)h_wait_pid(pid, 5000, &st);
	return -1;
}

void
h_broker_start(struct h_env *e)
{
	int	st = h_broker_start_status(e);

	if (st != 0)
		h_fail("broker did not start (%d); log:\n%s", st, h_log(e));
}

int
h_broker_stop(struct h_env *e)
{
	int	st;

	if (e->pid <= 0)
		return -1;
	kill(e->pid, SIGTERM);
	if (h_wait_pid(e->pid, H_STOP_MS, &st) == -1) {
		kill(e->pid, SIGKILL);
		(void)h_wait_pid(e->pid, 5000, &st);
		e->pid = 0;
		h_fail("broker ignored SIGTERM for %d ms", H_STOP_MS);
	}
	e->pid = 0;
	return st;
}

void
h_broker_kill9(struct h_env *e)
{
	int	st;

	if (e->pid <= 0)
		h_fail("no broker to kill");
	kill(e->pid, SIGKILL);
	(void)h_wait_pid(e->pid, 5000, &st);
	e->pid = 0;
}

void
h_broker_hup(struct h_env *e)
{
	if (e->pid <= 0 || kill(e->pid, SIGHUP) == -1)
		h_fail("cannot send SIGHUP to the broker");
}

bool
h_broker_running(struct h_env *e)
{
	int	st;

	if (e->pid <= 0)
		return false;
	if (h_wait_pid(e->pid, 0, &st) == 0) {
		e->pid = 0;
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- log */

char *
h_log(struct h_env *e)
{
	return h_slurp(e->log);
}

bool
h_log_has(struct h_env *e, const char *needle)
{
	return strstr(h_log(e), needle) != NULL;
}

size_t
h_log_count(struct h_env *e, const char *needle)
{
	const char	*p = h_log(e);
	size_t		 n = 0;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

bool
h_log_wait(struct h_env *e, int timeout_ms, ...)
{
	const char	*needles[16];
	size_t		 n = 0, i;
	int64_t		 deadline = h_now_ms() + timeout_ms;
	va_list		 ap;
	const char	*s;

	va_start(ap, timeout_ms);
	while ((s = va_arg(ap, const char *)) != NULL && n < 16)
		needles[n++] = s;
	va_end(ap);
	for (;;) {
		char *log = h_log(e), *line, *save = NULL;

		for (line = strtok_r(log, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			for (i = 0; i < n && strstr(line, needles[i]); i++)
				;
			if (i == n)
				return true;
		}
		if (h_now_ms() >= deadline)
			return false;
		h_msleep(20);
	}
}

/* ---------------------------------------------------------------- clients */

static struct h_client *
h_client_new(struct h_env *e, const char *agency, const uint8_t sec[32],
    const uint8_t pub[32])
{
	struct h_client	*c;
	struct pki_cert	 bc;
	char		 err[256], zs[41], zp[41], zb[41], ep[64], path[H_PATH];
	int		 zero = 0, ivl = 200;

	snprintf(path, sizeof(path), "%.1000s/broker.crt", e->pki);
	if (pki_cert_read(path, &bc, err, sizeof(err)) == -1)
		h_fail("%s: %s", path, err);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		h_fail("out of memory");
	c->env = e;
	snprintf(c->agency, sizeof(c->agency), "%s", agency);
	c->inbox = json_array();
	c->receipts = json_array();
	pki_z85(sec, zs);
	pki_z85(pub, zp);
	pki_z85(bc.key, zb);
	if ((c->sock = zmq_socket(e->zctx, ZMQ_DEALER)) == NULL ||
	    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_setsockopt(c->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, zb, 40) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, zp, 40) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, zs, 40))
		h_fail("zmq socket: %s", zmq_strerror(errno));
	snprintf(ep, sizeof(ep), "inproc://h-mon-%d", e->nmon++);
	if (zmq_socket_monitor(c->sock, ep, ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
	    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
	    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
	    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == -1 ||
	    (c->mon = zmq_socket(e->zctx, ZMQ_PAIR)) == NULL ||
	    zmq_setsockopt(c->mon, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_connect(c->mon, ep) == -1)
		h_fail("zmq monitor: %s", zmq_strerror(errno));
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", e->port);
	if (zmq_connect(c->sock, ep) == -1)
		h_fail("zmq_connect %s: %s", ep, zmq_strerror(errno));
	explicit_bzero(zs, sizeof(zs));
	c->next = e->clients;
	e->clients = c;
	return c;
}

struct h_client *
h_connect(struct h_env *e, const char *agency)
{
	uint8_t	sec[32], pub[32];
	char	path[H_PATH], err[256];

	snprintf(path, sizeof(path), "%.900s/keys/%s.key", e->pki, agency);
	if (pki_key_read(path, sec, pub, err, sizeof(err)) == -1)
		h_fail("%s: %s", path, err);
	return h_client_new(e, agency, sec, pub);
}

struct h_client *
h_connect_old(struct h_env *e, const char *agency)
{
	uint8_t	sec[32], pub[32];
	char	path[H_PATH], err[256];

	h_pki_path(e, path, sizeof(path), "keys", agency, true, "key");
	if (pki_key_read(path, sec, pub, err, sizeof(err)) == -1)
		h_fail("%s: %s", path, err);
	return h_client_new(e, agency, sec, pub);
}

struct h_client *
h_connect_unknown(struct h_env *e)
{
	char	zp[41], zs[41];
	uint8_t	sec[32], pub[32];

	if (zmq_curve_keypair(zp, zs) == -1 ||
	    zmq_z85_decode(sec, zs) == NULL || zmq_z85_decode(pub, zp) == NULL)
		h_fail("zmq_curve_keypair: %s", zmq_strerror(errno));
	return h_client_new(e, "unknown-key", sec, pub);
}

struct h_client *
h_agent(struct h_env *e, const char *agency, bool receive)
{
	struct h_client	*c = h_connect(e, agency);
	json_t		*w = h_hello(c, receive);

	cr_assert(h_is_op(w, "welcome"), "%s: no welcome: %s", agency,
	    h_dump(w));
	return c;
}

void
h_close(struct h_client **cp)
{
	struct h_client	*c = *cp, **pp;

	if (c == NULL)
		return;
	for (pp = &c->env->clients; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	zmq_socket_monitor(c->sock, NULL, 0);
	zmq_close(c->mon);
	zmq_close(c->sock);
	json_decref(c->inbox);
	json_decref(c->receipts);
	free(c);
	*cp = NULL;
}

const char *
h_agency(const struct h_client *c)
{
	return c->agency;
}

int
h_handshake(struct h_client *c, int timeout_ms)
{
	int64_t	deadline = h_now_ms() + timeout_ms;

	while (c->handshake == 0) {
		zmq_pollitem_t	it = { c->mon, 0, ZMQ_POLLIN, 0 };
		int64_t		left = deadline - h_now_ms();
		zmq_msg_t	m;
		uint16_t	ev;

		if (left < 0 || zmq_poll(&it, 1, (long)left) <= 0)
			break;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, c->mon, 0) == -1) {
			zmq_msg_close(&m);
			break;
		}
		memcpy(&ev, zmq_msg_data(&m), sizeof(ev));
		while (zmq_msg_more(&m)) {
			zmq_msg_close(&m);
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, c->mon, 0) == -1)
				break;
		}
		zmq_msg_close(&m);
		if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
			c->handshake = 1;
		else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
			c->handshake = -1;
		else
			c->handshake = -2;
	}
	return c->handshake;
}

/* ---------------------------------------------------------------- sending */

static void
h_pack_json(msgpack_packer *pk, json_t *j)
{
	const char	*k;
	json_t		*v;
	size_t		 i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		msgpack_pack_map(pk, json_object_size(j));
		json_object_foreach(j, k, v) {
			msgpack_pack_str(pk, strlen(k));
			msgpack_pack_str_body(pk, k, strlen(k));
			h_pack_json(pk, v);
		}
		break;
	case JSON_ARRAY:
		msgpack_pack_array(pk, json_array_size(j));
		json_array_foreach(j, i, v)
			h_pack_json(pk, v);
		break;
	case JSON_STRING:
		msgpack_pack_str(pk, json_string_length(j));
		msgpack_pack_str_body(pk, json_string_value(j),
		    json_string_length(j));
		break;
	case JSON_INTEGER:
		if (json_integer_value(j) >= 0)
			msgpack_pack_uint64(pk, json_integer_value(j));
		else
			msgpack_pack_int64(pk, json_integer_value(j));
		break;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(j));
		break;
	case JSON_TRUE:
		msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		msgpack_pack_false(pk);
		break;
	case JSON_NULL:
		msgpack_pack_nil(pk);
		break;
	}
}

int
h_send(struct h_client *c, json_t *msg)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	const char	*k;
	json_t		*v;
	int		 rc;

	if (!json_is_object(msg))
		h_fail("h_send: not an object: %s", h_dump(msg));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (json_object_get(msg, "v") == NULL) {
		msgpack_pack_map(&pk, json_object_size(msg) + 1);
		msgpack_pack_str(&pk, 1);
		msgpack_pack_str_body(&pk, "v", 1);
		msgpack_pack_uint8(&pk, 1);
		json_object_foreach(msg, k, v) {
			msgpack_pack_str(&pk, strlen(k));
			msgpack_pack_str_body(&pk, k, strlen(k));
			h_pack_json(&pk, v);
		}
	} else
		h_pack_json(&pk, msg);
	rc = h_send_raw(c, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

int
h_send_raw(struct h_client *c, const void *p, size_t n)
{
	return zmq_send(c->sock, p, n, 0) == (int)n ? 0 : -1;
}

int
h_send_parts(struct h_client *c, const void *a, size_t alen, const void *b,
    size_t blen)
{
	return zmq_send(c->sock, a, alen, ZMQ_SNDMORE) == (int)alen &&
	    zmq_send(c->sock, b, blen, 0) == (int)blen ? 0 : -1;
}

int
h_send_json(struct h_client *c, const char *json)
{
	return h_send(c, h_json(json));
}

int
h_sendf(struct h_client *c, const char *fmt, ...)
{
	char	*text;
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		h_fail("out of memory");
	h_keep_str(text);
	return h_send_json(c, text);
}

/* ---------------------------------------------------------------- receiving */

static bool
h_op_in(json_t *m, const char *ops)
{
	const char	*op = h_str(m, "op"), *p;
	size_t		 n;

	if (ops == NULL)
		return true;
	if (op == NULL)
		return false;
	n = strlen(op);
	for (p = ops; (p = strstr(p, op)) != NULL; p += n)
		if ((p == ops || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

/* The first kept message among ops, now owned by the pool. */
static json_t *
h_inbox_take(struct h_client *c, const char *ops)
{
	size_t	 i;
	json_t	*m;

	json_array_foreach(c->inbox, i, m) {
		if (h_op_in(m, ops)) {
			json_incref(m);
			json_array_remove(c->inbox, i);
			return h_keep(m);
		}
	}
	return NULL;
}

json_t *
h_recv(struct h_client *c, const char *ops, int timeout_ms)
{
	int64_t	 deadline = h_now_ms() + timeout_ms;
	json_t	*m;

	if ((m = h_inbox_take(c, ops)) != NULL)
		return m;
	for (;;) {
		zmq_pollitem_t	 it = { c->sock, 0, ZMQ_POLLIN, 0 };
		int64_t		 left = deadline - h_now_ms();
		zmq_msg_t	 z;
		msgpack_unpacked up;
		size_t		 off = 0;
		char		*text = NULL;

		if (left < 0)
			left = 0;
		if (zmq_poll(&it, 1, (long)left) <= 0)
			return NULL;
		zmq_msg_init(&z);
		if (zmq_msg_recv(&z, c->sock, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&z);
			continue;
		}
		msgpack_unpacked_init(&up);
		if (msgpack_unpack_next(&up, zmq_msg_data(&z), zmq_msg_size(&z),
		    &off) == MSGPACK_UNPACK_SUCCESS)
			text = proto_object_to_json(&up.data, false);
		msgpack_unpacked_destroy(&up);
		zmq_msg_close(&z);
		m = text != NULL ? json_loads(text, JSON_DECODE_ANY, NULL) :
		    NULL;
		free(text);
		if (m == NULL)
			m = json_pack("{s:s}", "op", "(undecodable frame)");
		if (h_op_in(m, ops))
			return h_keep(m);
		json_array_append_new(c->inbox, m);
	}
}

json_t *
h_call(struct h_client *c, json_t *msg, const char *ops)
{
	char	want[256];

	snprintf(want, sizeof(want), "%s,error", ops);
	if (h_send(c, msg) == -1)
		h_fail("send: %s", zmq_strerror(errno));
	return h_recv(c, want, H_TIMEOUT_MS);
}

json_t *
h_call_json(struct h_client *c, const char *json, const char *ops)
{
	return h_call(c, h_json(json), ops);
}

json_t *
h_hello(struct h_client *c, bool receive)
{
	return h_call(c, h_keep(json_pack("{s:s,s:s,s:b}", "op", "hello",
	    "agent", "harness/1", "receive", receive)), "welcome");
}

json_t *
h_subscribe(struct h_client *c, const char *types, const char *areas)
{
	return h_call(c, h_keep(json_pack("{s:s,s:O,s:O}", "op", "subscribe",
	    "types", h_csv(types), "areas", h_csv(areas))), "subscribed");
}

void
h_ack(struct h_client *c, json_t *m)
{
	json_t *a = h_keep(json_pack("{s:s,s:O}", "op", "ack", "dseq",
	    json_object_get(m, "dseq")));

	if (h_send(c, a) == -1)
		h_fail("ack: %s", zmq_strerror(errno));
}

json_t *
h_collect(struct h_client *c, const char *op, size_t n, int timeout_ms,
    bool ack)
{
	json_t	*out = h_keep(json_array());
	int64_t	 deadline = h_now_ms() + timeout_ms;

	while (n == 0 || json_array_size(out) < n) {
		int64_t	 left = deadline - h_now_ms();
		json_t	*m;

		if (left <= 0)
			break;
		if (n == 0 && left > H_QUIET_MS)
			left = H_QUIET_MS;
		if ((m = h_recv(c, op, (int)left)) == NULL) {
			if (n == 0)
				break;
			continue;
		}
		json_array_append(out, m);
		if (strcmp(op, "receipt") == 0)
			json_array_append(c->receipts, m);
		if (ack)
			h_ack(c, m);
	}
	return out;
}

json_t *
h_deliveries(struct h_client *c, bool ack)
{
	return h_collect(c, "deliver", 0, 60000, ack);
}

json_t *
h_receipts(struct h_client *c, bool ack)
{
	return h_collect(c, "receipt", 0, 60000, ack);
}

json_t *
h_receipt_for(struct h_client *c, const char *mid, const char *agency,
    int timeout_ms)
{
	int64_t	 deadline = h_now_ms() + timeout_ms;
	size_t	 i;
	json_t	*m;

	for (;;) {
		json_array_foreach(c->receipts, i, m) {
			const char *mm = h_str(m, "mid"), *ag = h_str(m,
			    "agency");

			if (mm != NULL && ag != NULL && !strcmp(mm, mid) &&
			    !strcmp(ag, agency))
				return m;
		}
		if (h_now_ms() >= deadline ||
		    (m = h_recv(c, "receipt", (int)(deadline - h_now_ms()))) ==
		    NULL)
			return NULL;
		json_array_append(c->receipts, m);
		h_ack(c, m);
	}
}

json_t *
h_track(struct h_client *c, const char *mid)
{
	return h_call(c, h_keep(json_pack("{s:s,s:s}", "op", "track", "mid",
	    mid)), "status");
}

json_t *
h_track_of(struct h_client *c, const char *mid, const char *agency)
{
	json_t	*st = h_track(c, mid), *r;
	size_t	 i;

	json_array_foreach(json_object_get(st, "recipients"), i, r) {
		const char *a = h_str(r, "agency");

		if (a != NULL && strcmp(a, agency) == 0)
			return r;
	}
	return NULL;
}

/* ---------------------------------------------------------------- records */

json_t *
h_grant_new(const char *recipients, const char *categories, const char *pnc)
{
	char	cid[37], from[32], until[32], now[32];

	return h_keep(json_pack("{s:s,s:s,s:{s:s},s:O,s:[s],s:O,s:[],s:b,"
	    "s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s}}",
	    "op", "consent-grant",
	    "cid", h_uuid(cid),
	    "subject", "pnc", pnc,
	    "recipients", h_csv(recipients),
	    "purposes", "continuity-of-care",
	    "categories", h_csv(categories),
	    "deny",
	    "explicit", 0,
	    "valid_from", h_time(-86400, from),
	    "valid_until", h_time(300 * 86400, until),
	    "evidence",
		"method", "written",
		"form", "DIP consent v3",
		"worker", "J Worker",
		"captured", h_time(0, now),
		"reference", "case file 12"));
}

json_t *
h_grant(struct h_client *c, const char *recipients, const char *categories,
    const char *pnc)
{
	return h_call(c, h_grant_new(recipients, categories, pnc),
	    "consent-recorded");
}

json_t *
h_withdraw_new(const char *cid, const char *pnc)
{
	char	now[32];
	json_t	*w = h_keep(json_pack("{s:s,s:s,s:s,s:s}", "op",
	    "consent-withdraw", "captured", h_time(0, now), "worker", "J Worker",
	    "reason", "client asked"));

	if (cid != NULL)
		json_object_set_new(w, "cid", json_string(cid));
	else
		json_object_set_new(w, "subject", json_pack("{s:s}", "pnc", pnc));
	return w;
}

json_t *
h_refuse_new(const char *pnc)
{
	char	cid[37], now[32];

	return h_keep(json_pack("{s:s,s:s,s:{s:s},s:s,s:s,"
	    "s:{s:s,s:s,s:s,s:s}}",
	    "op", "consent-refuse",
	    "cid", h_uuid(cid),
	    "subject", "pnc", pnc,
	    "captured", h_time(0, now),
	    "worker", "J Worker",
	    "evidence",
		"method", "verbal-witnessed",
		"form", "DIP consent v3",
		"worker", "J Worker",
		"captured", now));
}

json_t *
h_release_plan_new(const char *pnc, const char *family_name)
{
	char	mid[37], now[32];

	return h_jsonf("{\"op\": \"publish\", \"mid\": \"%s\","
	    " \"type\": \"release-plan\", \"purpose\": \"continuity-of-care\","
	    " \"subject\": {\"pnc\": \"%s\"}, \"area\": \"" H_AREA "\","
	    " \"created\": \"%s\","
	    " \"body\": {"
	    "  \"person\": {\"family_name\": \"%s\", \"given_name\": \"Alex\","
	    "   \"dob\": \"1985-03-14\", \"sex\": \"M\"},"
	    "  \"establishment\": \"LEI\", \"release_date\": \"2026-12-20\","
	    "  \"release_type\": \"licence\", \"on_licence\": true,"
	    "  \"in_treatment\": true, \"treatment_modality\": \"prescribing\","
	    "  \"overdose_risk_briefed\": true,"
	    "  \"substitute_medication\": \"methadone\", \"dose_mg\": 60,"
	    "  \"primary_substance\": \"heroin\","
	    "  \"accommodation_need\": \"nfa-urgent\","
	    "  \"accommodation_on_release\": \"hostel\","
	    "  \"housing_actions\": [\"HACS referral made to council housing"
	    " options\"],"
	    "  \"release_address\": {\"line1\": \"1 Example Street\","
	    "   \"town\": \"Leeds\", \"postcode\": \"LS1 1AA\"},"
	    "  \"offender_manager\": {\"name\": \"Sam Officer\","
	    "   \"agency\": \"probation.leeds\", \"phone\": \"0113 000 0000\"},"
	    "  \"notes\": \"Client anxious about release.\"}}",
	    h_uuid(mid), pnc, h_time(0, now), family_name);
}

json_t *
h_big_plan(const char *to)
{
	json_t	*m = h_release_plan_new(H_PNC_A, "Bigplan"), *acts = json_array();
	char	 text[1001];
	int	 i;

	memset(text, 'a', 1000);
	text[1000] = '\0';
	for (i = 0; i < 40; i++) {
		text[0] = (char)('A' + i % 26);
		json_array_append_new(acts, json_string(text));
	}
	json_object_set_new(json_object_get(m, "body"), "housing_actions",
	    acts);
	json_object_set_new(m, "to", json_pack("[s]", to));
	return m;
}

json_t *
h_publish(struct h_client *c, json_t *msg)
{
	return h_call(c, msg, "accepted");
}

/* ---------------------------------------------------------------- JSON */

json_t *
h_json(const char *text)
{
	json_error_t	 je;
	json_t		*j = json_loads(text, JSON_DECODE_ANY, &je);

	if (j == NULL)
		h_fail("bad JSON in test (%d:%d %s): %s", je.line, je.column,
		    je.text, text);
	return h_keep(j);
}

json_t *
h_jsonf(const char *fmt, ...)
{
	char	*text;
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		h_fail("out of memory");
	h_keep_str(text);
	return h_json(text);
}

json_t *
h_csv(const char *csv)
{
	json_t		*a = h_keep(json_array());
	const char	*p = csv, *e;

	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		e = strchr(p, ',');
		if (e == NULL)
			e = p + strlen(p);
		if (e > p)
			json_array_append_new(a, json_stringn(p, e - p));
		p = *e ? e + 1 : e;
	}
	return a;
}

json_t *
h_get(json_t *j, const char *path)
{
	char	 part[128];
	const char *p = path, *e;

	while (j != NULL && p != NULL && *p != '\0') {
		size_t n;

		e = strchr(p, '.');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n >= sizeof(part))
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		if (json_is_object(j))
			j = json_object_get(j, part);
		else if (json_is_array(j) && part[0] >= '0' && part[0] <= '9')
			j = json_array_get(j, strtoul(part, NULL, 10));
		else
			return NULL;
		p = e != NULL ? e + 1 : NULL;
	}
	return j;
}

const char *
h_str(json_t *j, const char *path)
{
	return json_string_value(h_get(j, path));
}

long long
h_int(json_t *j, const char *path)
{
	json_t	*v = h_get(j, path);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

bool
h_is_op(json_t *j, const char *op)
{
	const char	*o = h_str(j, "op");

	return o != NULL && strcmp(o, op) == 0;
}

bool
h_has_str(json_t *a, const char *s)
{
	size_t	 i;
	json_t	*v;

	json_array_foreach(a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

bool
h_set_eq(json_t *a, const char *csv)
{
	json_t	*want = h_csv(csv);
	size_t	 i;
	json_t	*v;

	if (!json_is_array(a) || json_array_size(a) != json_array_size(want))
		return false;
	json_array_foreach(want, i, v)
		if (!h_has_str(a, json_string_value(v)))
			return false;
	return true;
}

const char *
h_dump(json_t *j)
{
	char	*s;

	if (j == NULL)
		return "(null: nothing arrived)";
	s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	return s != NULL ? h_keep_str(s) : "(unprintable)";
}

char *
h_time(int64_t offset_s, char out[32])
{
	time_t		t = time(NULL) + offset_s;
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

char *
h_uuid(char out[37])
{
	cc_uuid_new(out);
	return out;
}
