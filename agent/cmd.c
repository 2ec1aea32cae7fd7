/*
 * cmd.c - the ccagent commands besides `run`: publish, consent, track and
 * tail.
 *
 * publish, consent and track each open their own short session with the
 * broker as a send-only client (hello with receive false), so they work
 * the same whether `ccagent run` is running or not, and never take the
 * daemon's deliveries.  They do not touch the daemon's outbox: publish
 * returns only once the broker has durably accepted the record.  tail
 * reads the spool's in/ and notices/ folders that the daemon fills.
 */
#include <sys/inotify.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "agentd.h"
#include "config.h"
#include "spool.h"

#define CMD_FILE_MAX	(1 << 20)

/* A file tail prints: a record of in/ or a notice of notices/. */
struct tail_file {
	enum spool_dir		dir;
	struct spool_file	f;
};

static volatile sig_atomic_t	cmd_quit;

static int	fail(const char *, const struct cc_agent_error *);
static int	failx(const char *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	read_file(const char *, char **, size_t *);
static int	write_back(const char *, const char *);
static int	prepare(const char *, enum cc_agent_op, const char *, bool,
		    char **);
static const char *field(const json_t *, const char *);
static void	on_signal(int);
static int	print_file(struct spool *, enum spool_dir, const char *);
static int	tail_cmp(const void *, const void *);
static int	tail_scan(struct spool *, struct tail_file **, size_t *);
static bool	tail_seen(const struct tail_file *, size_t, enum spool_dir,
		    const char *);

/* One line on stderr: "ccagent: CMD: CODE[ FIELD]: DETAIL". */
static int
fail(const char *cmd, const struct cc_agent_error *e)
{
	(void)fprintf(stderr, "ccagent: %s: %s%s%s%s%s\n", cmd,
	    cc_agent_strerror(e->code), e->field[0] ? " " : "", e->field,
	    e->detail[0] ? ": " : "", e->detail);
	return 1;
}

static int
failx(const char *cmd, const char *fmt, ...)
{
	va_list	ap;

	(void)fprintf(stderr, "ccagent: %s: ", cmd);
	va_start(ap, fmt);
	(void)vfprintf(stderr, fmt, ap);
	va_end(ap);
	(void)fputc('\n', stderr);
	return 1;
}

static int
read_file(const char *path, char **data, size_t *len)
{
	FILE	*f;
	char	*buf;
	size_t	 n;

	*data = NULL;
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if ((buf = malloc(CMD_FILE_MAX + 1)) == NULL) {
		(void)fclose(f);
		return -1;
	}
	n = fread(buf, 1, CMD_FILE_MAX + 1, f);
	if (ferror(f) || n > CMD_FILE_MAX) {
		if (n > CMD_FILE_MAX)
			errno = EFBIG;
		free(buf);
		(void)fclose(f);
		return -1;
	}
	(void)fclose(f);
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}

/*
 * Put the assigned mid or cid into the caller's file (atomically, keeping
 * its mode), so that running the same command again after a timeout sends
 * the same id and the broker answers without a second copy.
 */
static int
write_back(const char *path, const char *doc)
{
	struct stat	 st;
	char		 tmp[PATH_MAX], dir[PATH_MAX];
	size_t		 len = strlen(doc);
	int		 fd = -1, saved;

	if (stat(path, &st) == -1)
		return -1;
	(void)snprintf(dir, sizeof(dir), "%s", path);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.ccagent-XXXXXX",
	    dirname(dir), basename((char *)(uintptr_t)path)) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkstemp(tmp)) == -1)
		return -1;
	if (fchmod(fd, st.st_mode & 07777) == -1 ||
	    write(fd, doc, len) != (ssize_t)len ||
	    write(fd, "\n", 1) != 1 || fsync(fd) == -1 ||
	    close(fd) == -1) {
		saved = errno;
		(void)close(fd);
		(void)unlink(tmp);
		errno = saved;
		return -1;
	}
	if (rename(tmp, path) == -1) {
		saved = errno;
		(void)unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}

/* Read and judge FILE; on success *doc is the completed document. */
static int
prepare(const char *cmd, enum cc_agent_op op, const char *file, bool wb,
    char **doc)
{
	struct cc_agent_error	 e;
	char			*data = NULL, id[CC_AGENT_ID_LEN + 1];
	size_t			 len;
	bool			 assigned;

	*doc = NULL;
	if (read_file(file, &data, &len) == -1)
		return failx(cmd, "%s: %s", file, strerror(errno));
	if (cc_agent_prepare(op, data, len, doc, id, &assigned, &e) != 0) {
		free(data);
		(void)snprintf(e.detail + strlen(e.detail),
		    sizeof(e.detail) - strlen(e.detail), " (%s)", file);
		return fail(cmd, &e);
	}
	free(data);
	if (assigned && wb && write_back(file, *doc) == -1 &&
	    errno != EACCES && errno != EROFS && errno != EPERM) {
		(void)failx(cmd, "%s: cannot write the %s back: %s", file,
		    op == CC_AGENT_PUBLISH ? "mid" : "cid", strerror(errno));
		free(*doc);
		*doc = NULL;
		return 1;
	}
	return 0;
}

int
cmd_publish(const char *conf, const char *file, bool wb)
{
	struct cc_agent_error	 e;
	cc_agent		*a = NULL;
	char			*doc = NULL, mid[CC_AGENT_ID_LEN + 1];
	int			 rc = 1;

	if (prepare("publish", CC_AGENT_PUBLISH, file, wb, &doc) != 0)
		return 1;
	if (cc_agent_new_conf(conf, false, &a, &e) != 0) {
		rc = fail("publish", &e);
		goto out;
	}
	if (cc_agent_publish(a, doc, mid) != 0) {
		rc = fail("publish", cc_agent_last_error(a));
		goto out;
	}
	(void)printf("%s\n", mid);
	rc = 0;
out:
	cc_agent_destroy(&a);
	free(doc);
	return rc;
}

int
cmd_consent(const char *conf, enum cc_agent_op op, const char *file, bool wb)
{
	struct cc_consent_recorded	 rec[64];
	struct cc_agent_error		 e;
	cc_agent			*a = NULL;
	char				*doc = NULL;
	size_t				 n, i;
	int				 rc = 1;

	if (prepare("consent", op, file, wb, &doc) != 0)
		return 1;
	if (cc_agent_new_conf(conf, false, &a, &e) != 0) {
		rc = fail("consent", &e);
		goto out;
	}
	if (cc_agent_consent(a, op, doc, rec, sizeof(rec) / sizeof(rec[0]),
	    &n) != 0) {
		rc = fail("consent", cc_agent_last_error(a));
		goto out;
	}
	for (i = 0; i < n; i++)
		(void)printf("%s %u\n", rec[i].cid, rec[i].version);
	rc = 0;
out:
	cc_agent_destroy(&a);
	free(doc);
	return rc;
}

/* A text field of a status line, or "-" when absent: never NULL. */
static const char *
field(const json_t *o, const char *key)
{
	const char	*v = json_string_value(json_object_get(o, key));

	return v != NULL ? v : "-";
}

int
cmd_track(const char *conf, const char *mid, bool as_json)
{
	struct cc_agent_error	 e;
	cc_agent		*a = NULL;
	json_t			*j = NULL, *r;
	json_error_t		 jerr;
	char			*text = NULL;
	size_t			 i;
	int			 rc = 1;

	if (cc_agent_new_conf(conf, false, &a, &e) != 0) {
		rc = fail("track", &e);
		goto out;
	}
	if (cc_agent_track(a, mid, &text) != 0) {
		rc = fail("track", cc_agent_last_error(a));
		goto out;
	}
	if ((j = json_loads(text, 0, &jerr)) == NULL) {
		rc = failx("track", "unreadable status: %s", jerr.text);
		goto out;
	}
	if (as_json) {
		free(text);
		if ((text = json_dumps(j, JSON_PRESERVE_ORDER |
		    JSON_COMPACT)) == NULL) {
			rc = failx("track", "out of memory");
			goto out;
		}
		(void)printf("%s\n", text);
		rc = 0;
		goto out;
	}
	(void)printf("%-32s %-10s %-18s %s\n", "AGENCY", "STATE", "REASON",
	    "AT");
	json_array_foreach(json_object_get(j, "recipients"), i, r)
		(void)printf("%-32s %-10s %-18s %s\n", field(r, "agency"),
		    field(r, "state"), field(r, "reason"), field(r, "at"));
	rc = 0;
out:
	json_decref(j);
	free(text);
	cc_agent_destroy(&a);
	return rc;
}

int
cmd_retract(const char *conf, const char *mid, const char *reason)
{
	struct cc_agent_error	 e;
	cc_agent		*a = NULL;
	int			 rc = 1;

	if (cc_agent_new_conf(conf, false, &a, &e) != 0)
		rc = fail("retract", &e);
	else if (cc_agent_retract(a, mid, reason) != 0)
		rc = fail("retract", cc_agent_last_error(a));
	else {
		(void)printf("%s retracted\n", mid);
		rc = 0;
	}
	cc_agent_destroy(&a);
	return rc;
}

static void
on_signal(int sig)
{
	(void)sig;
	cmd_quit = 1;
}

/*
 * One file as one JSON line: a record of in/ as it is, a notice of
 * notices/ as {"notice": {...}}, so that a reader tells them apart by the
 * one key without knowing every field of either.  0, or -1 when it went
 * away (or memory ran out).
 */
static int
print_file(struct spool *sp, enum spool_dir dir, const char *name)
{
	json_t		*j, *w;
	json_error_t	 jerr;
	char		*data = NULL, *line;
	size_t		 len;

	if (spool_read(sp, dir, name, CMD_FILE_MAX, &data, &len) == -1)
		return -1;
	if ((j = json_loadb(data, len, 0, &jerr)) == NULL) {
		free(data);
		return -1;
	}
	free(data);
	if (dir == SP_NOTICES) {
		/* json_pack's "o" steals j, also when it fails. */
		if ((w = json_pack("{s:o}", "notice", j)) == NULL)
			return -1;
		j = w;
	}
	line = json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT);
	json_decref(j);
	if (line == NULL)
		return -1;
	(void)printf("%s\n", line);
	(void)fflush(stdout);
	free(line);
	return 0;
}

/* Oldest first; a record before a notice written in the same tick. */
static int
tail_cmp(const void *a, const void *b)
{
	const struct tail_file	*x = a, *y = b;

	if (x->f.mtime.tv_sec != y->f.mtime.tv_sec)
		return x->f.mtime.tv_sec < y->f.mtime.tv_sec ? -1 : 1;
	if (x->f.mtime.tv_nsec != y->f.mtime.tv_nsec)
		return x->f.mtime.tv_nsec < y->f.mtime.tv_nsec ? -1 : 1;
	if (x->dir != y->dir)
		return x->dir == SP_IN ? -1 : 1;
	return strcmp(x->f.name, y->f.name);
}

/* What in/ and notices/ hold, in arrival order.  0, or -1 with errno. */
static int
tail_scan(struct spool *sp, struct tail_file **out, size_t *nout)
{
	static const enum spool_dir	 dirs[] = { SP_IN, SP_NOTICES };
	struct spool_file		*f = NULL;
	struct tail_file		*v = NULL, *nv;
	size_t				 n = 0, i, k;
	int				 m;

	*out = NULL;
	*nout = 0;
	for (k = 0; k < sizeof(dirs) / sizeof(dirs[0]); k++) {
		if ((m = spool_scan(sp, dirs[k], 0, &f)) == -1)
			goto fail;
		if (m > 0) {
			if ((nv = reallocarray(v, n + (size_t)m,
			    sizeof(*v))) == NULL) {
				free(f);
				goto fail;
			}
			v = nv;
			for (i = 0; i < (size_t)m; i++) {
				v[n].dir = dirs[k];
				v[n++].f = f[i];
			}
		}
		free(f);
		f = NULL;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), tail_cmp);
	*out = v;
	*nout = n;
	return 0;
fail:
	free(v);
	return -1;
}

/* Was this file printed by the listing? */
static bool
tail_seen(const struct tail_file *done, size_t n, enum spool_dir dir,
    const char *name)
{
	size_t	k;

	for (k = 0; k < n; k++)
		if (done[k].dir == dir && strcmp(done[k].f.name, name) == 0)
			return true;
	return false;
}

/*
 * Print what in/ and notices/ hold, oldest first, then (with follow) what
 * arrives in either until SIGINT or SIGTERM.  The watches are made before
 * the listing, and files already printed are remembered, so nothing falls
 * between the two and nothing is printed twice.
 */
int
cmd_tail(const char *conf, bool follow)
{
	struct agent_conf	*c = NULL;
	struct spool		 sp;
	struct tail_file	*f = NULL;
	struct sigaction	 sa;
	struct pollfd		 pfd;
	char			 err[1024], path[PATH_MAX + 16];
	char			 buf[8192]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	size_t			 n = 0, ndone = 0, i;
	ssize_t			 r;
	int			 ino = -1, wd[2] = { -1, -1 }, rc = 1;

	memset(&sp, 0, sizeof(sp));
	for (i = 0; i < SP__COUNT; i++)
		sp.dfd[i] = -1;
	sp.ino = -1;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return failx("tail", "out of memory");
	if (agent_conf_load(conf, c, err, sizeof(err)) == -1 ||
	    spool_open(&sp, c->spool, err, sizeof(err)) == -1) {
		rc = failx("tail", "%s", err);
		goto out;
	}
	if (follow) {
		if ((ino = inotify_init1(IN_CLOEXEC)) == -1) {
			rc = failx("tail", "inotify: %s", strerror(errno));
			goto out;
		}
		for (i = 0; i < 2; i++) {
			(void)snprintf(path, sizeof(path), "%s/%s", c->spool,
			    spool_dirname(i == 0 ? SP_IN : SP_NOTICES));
			if ((wd[i] = inotify_add_watch(ino, path, IN_MOVED_TO |
			    IN_CLOSE_WRITE)) == -1) {
				rc = failx("tail", "%s: inotify: %s", path,
				    strerror(errno));
				goto out;
			}
		}
	}
	if (tail_scan(&sp, &f, &n) == -1) {
		rc = failx("tail", "%s: %s", c->spool, strerror(errno));
		goto out;
	}
	/* f[] stays as the list of what was printed: its first ndone. */
	for (i = 0; i < n; i++)
		if (print_file(&sp, f[i].dir, f[i].f.name) == 0)
			f[ndone++] = f[i];
	rc = 0;
	if (!follow)
		goto out;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	(void)sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	pfd.fd = ino;
	pfd.events = POLLIN;
	while (!cmd_quit) {
		if (poll(&pfd, 1, -1) == -1)
			continue;
		if ((r = read(ino, buf, sizeof(buf))) <= 0)
			continue;
		for (char *p = buf; p < buf + r;) {
			const struct inotify_event *ev = (void *)p;
			enum spool_dir dir = ev->wd == wd[1] ? SP_NOTICES :
			    SP_IN;

			p += sizeof(*ev) + ev->len;
			if (ev->len == 0 || !spool_json_name(ev->name))
				continue;
			if (tail_seen(f, ndone, dir, ev->name))
				continue;
			(void)print_file(&sp, dir, ev->name);
		}
	}
out:
	free(f);
	if (ino != -1)
		(void)close(ino);
	spool_close(&sp);
	free(c);
	return rc;
}
