/*
 * daemon.c - `ccagent run`: the spool, the durable outbox and the
 * receiving session of one agency.
 *
 * Out: a *.json file renamed into out/ is read, checked by the proto
 * library, given a mid (written back into the file first, so the file and
 * the outbox agree after any crash), queued in LMDB and removed from out/.
 * Every file is queued, a mid already sent or queued too: the broker
 * answers it (the same record: `accepted` again; another: refused), and
 * no file leaves out/ but for sent/ or rejected/ (DESIGN §6).  Queued
 * records go to the broker in order, a window at a time, again on every
 * new session, until the broker answers: `accepted` moves the record to
 * sent/ beside its answer; a refusal moves it to rejected/ beside
 * NAME.error.json; `busy`, `storage-full` and `over-quota` are tried again
 * later.
 *
 * Answers name the mid, not the request: the window never holds two
 * records of one mid, and an answer still owed to a record already filed
 * (sent again after no answer came) is counted, so that it is never taken
 * for the answer to the next record of that mid.
 *
 * In: a delivery is written to tmp/, fsync'd; then its mid is added to the
 * seen-set (committed); then the file is renamed to in/MID.json; then it
 * is acked.  The rename is the moment of delivery: a crash before the
 * seen-set commit leaves nothing (the broker sends it again), a crash after
 * it leaves either the tmp file (renamed on restart or on the next copy)
 * or the in/ file, never both, never neither.  A mid already seen is acked
 * and dropped.  Receipts go to receipts/MID.AGENCY.STATE.json the same way,
 * and notices (issue 19) to notices/NID.json: a nid already seen is acked
 * and dropped, its file never written again.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "agentd.h"
#include "cc_internal.h"
#include "config.h"
#include "log.h"
#include "outbox.h"
#include "spool.h"

#define WINDOW			32	/* records sent, not yet answered */
#define ANSWER_TIMEOUT_MS	30000	/* then send it again */
#define RETRY_MIN_MS		1000	/* after busy or storage-full ... */
#define RETRY_MAX_MS		60000	/* ... doubling up to this */
#define RESCAN_MS		5000	/* backstop for missed events */
#define RESCAN_MIN_AGE_MS	1000	/* a file still being written? */
#define STUCK_RETRY_MS		5000	/* spool write failed: try again */
#define FILE_MAX		(1 << 20)	/* larger out/ files: too-large */
#define PRUNE_AGE_MS		(90LL * 86400 * 1000)
#define OWED_MAX_MS		(3600LL * 1000)	/* then an answer is lost */

/* A queued record on its way to the broker. */
struct flight {
	uint64_t	seq;
	char		mid[CC_UUID_LEN + 1];
	char		name[OUTBOX_NAME_MAX + 1];
	char		*json;
	bool		sent;
	unsigned	session;	/* it was sent in */
	int64_t		sent_at;
	int64_t		retry_at;	/* not before; 0: now */
	int		backoff;
	unsigned	owed;		/* sends not answered yet */
};

/* Answers still owed to records already filed, by mid. */
struct owed {
	char		mid[CC_UUID_LEN + 1];
	unsigned	n;
	int64_t		since;		/* filed at */
};

struct agentd {
	struct agent_conf	 conf;
	struct outbox		*ob;
	struct spool		 sp;
	cc_agent		*a;
	int			 lockfd;
	struct flight		 win[WINDOW];
	size_t			 nwin;
	uint64_t		 loaded;	/* highest seq in win so far */
	unsigned		 session;	/* last one seen */
	int64_t			 next_rescan;
	cc_delivery		*stuck;		/* could not be stored yet */
	int64_t			 stuck_at;
	struct owed		*owed;
	size_t			 nowed, capowed;
};

/*
 * What the receiving session stores, each kind in its folder.  DIR/NAME
 * is written first as tmp/ + the prefix + NAME (tmp/nt.NID.json), and its
 * seen-set key is the key prefix + NAME without ".json": notices have keys
 * of their own (notice.NID), since a nid is the broker's and a mid the
 * sender's.
 */
static const struct stored {
	enum cc_delivery_kind	 kind;
	enum spool_dir		 dir;
	const char		*tmp;		/* tmp/ name prefix */
	const char		*key;		/* seen-set key prefix */
} stored[] = {
	{ CC_DELIVERY_RECORD,	SP_IN,		"in.",	"" },
	{ CC_DELIVERY_RECEIPT,	SP_RECEIPTS,	"rc.",	"" },
	{ CC_DELIVERY_NOTICE,	SP_NOTICES,	"nt.",	"notice." },
};

static volatile sig_atomic_t	agentd_quit;

static void	on_signal(int);
static int	setup(struct agentd *, const char *, char *, size_t);
static int	drop_privileges(const char *, char *, size_t);
static void	recover_tmp(struct agentd *);
static void	take(void *, const char *);
static void	rescan(struct agentd *, int);
static void	reject_file(struct agentd *, const char *, const char *,
		    const struct cc_agent_error *);
static void	fill(struct agentd *);
static void	send_window(struct agentd *, int64_t);
static void	answers(struct agentd *, int64_t);
static int	on_accepted(struct agentd *, size_t, int64_t);
static int	on_refused(struct agentd *, size_t,
		    const struct cc_agent_error *, int64_t);
static void	retry_later(struct flight *, int64_t);
static int	owed_room(struct agentd *);
static bool	owed_take(struct agentd *, const char *, int64_t);
static void	win_filed(struct agentd *, size_t, int64_t);
static void	win_remove(struct agentd *, size_t);
static int	store(struct agentd *, cc_delivery *);
static void	receive(struct agentd *, int64_t);
static int	next_timeout(struct agentd *, int64_t);
static char	*error_json(const struct cc_agent_error *, const char *);

static void
on_signal(int sig)
{
	(void)sig;
	agentd_quit = 1;
}

/*
 * Run as `user` when started as root (agent.conf `user`), before anything
 * is opened: the key, the data directory and the spool must be the
 * user's already (nothing is chowned).  setuid as root sets the real,
 * effective and saved ids; that root cannot be taken back is checked.
 */
static int
drop_privileges(const char *user, char *err, size_t errlen)
{
	struct passwd	*pw;

	if (geteuid() != 0)
		return 0;
	if (user[0] == '\0') {
		log_warnx("running as root: set user in [agent] to run as an "
		    "unprivileged user");
		return 0;
	}
	if ((pw = getpwnam(user)) == NULL) {
		(void)snprintf(err, errlen, "no such user '%s'", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		(void)snprintf(err, errlen, "user '%s' is root; name an "
		    "unprivileged user", user);
		return -1;
	}
	if (initgroups(user, pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1) {
		(void)snprintf(err, errlen, "cannot become %s: %s", user,
		    strerror(errno));
		return -1;
	}
	if (setuid(0) != -1 || seteuid(0) != -1 || getuid() != pw->pw_uid ||
	    geteuid() != pw->pw_uid || getegid() != pw->pw_gid) {
		(void)snprintf(err, errlen, "could take root back after "
		    "becoming %s", user);
		return -1;
	}
	log_info("running as %s (uid %u, gid %u)", user,
	    (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	return 0;
}

static int
setup(struct agentd *d, const char *path, char *err, size_t errlen)
{
	struct cc_agent_error	e;
	char			lock[PATH_MAX + 32];

	if (agent_conf_load(path, &d->conf, err, errlen) == -1 ||
	    drop_privileges(d->conf.user, err, errlen) == -1)
		return -1;
	if ((d->ob = outbox_open(d->conf.data, err, errlen)) == NULL)
		return -1;
	(void)snprintf(lock, sizeof(lock), "%s/ccagent.lock", d->conf.data);
	if ((d->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1 ||
	    flock(d->lockfd, LOCK_EX | LOCK_NB) == -1) {
		(void)snprintf(err, errlen, "%s: %s", lock, errno ==
		    EWOULDBLOCK ? "another ccagent run uses this data "
		    "directory" : strerror(errno));
		return -1;
	}
	if (spool_open(&d->sp, d->conf.spool, err, errlen) == -1)
		return -1;
	if (spool_watch(&d->sp, SP_OUT) == -1) {
		(void)snprintf(err, errlen, "%s/out: inotify: %s",
		    d->conf.spool, strerror(errno));
		return -1;
	}
	if (cc_agent_new_conf(path, true, &d->a, &e) != 0) {
		(void)snprintf(err, errlen, "%s", e.detail);
		return -1;
	}
	if (outbox_prune(d->ob, PRUNE_AGE_MS) == -1)
		log_warnx("%s: cannot prune old seen keys: %s", d->conf.data,
		    outbox_error(d->ob));
	return 0;
}

/*
 * After a crash: a delivery, receipt or notice in tmp/ whose key is in
 * the seen-set was stored but not renamed; finish it.  Anything else in
 * tmp/ is a write that never counted.
 */
static void
recover_tmp(struct agentd *d)
{
	struct spool_file	*f = NULL;
	const struct stored	*k;
	char			 key[300];
	size_t			 len, j;
	int			 n, i, seen;
	enum spool_dir		 dir;

	if ((n = spool_scan(&d->sp, SP_TMP, 0, &f)) == -1)
		return;
	for (i = 0; i < n; i++) {
		const char *name = f[i].name;

		for (j = 0, k = NULL; j < sizeof(stored) / sizeof(stored[0]);
		    j++)
			if (strncmp(name, stored[j].tmp, 3) == 0)
				k = &stored[j];
		dir = k != NULL ? k->dir : SP__COUNT;
		len = strlen(name);
		if (k != NULL && len > 8) {
			(void)snprintf(key, sizeof(key), "%s%.*s", k->key,
			    (int)(len - 8), name + 3);
			/*
			 * A seen-set that cannot be read says nothing: the
			 * file stays for the next start or the next copy
			 * (store() finishes it), or a stored record whose
			 * key is seen would be dropped as a duplicate.
			 */
			if ((seen = outbox_seen(d->ob, key)) == -1) {
				log_warnx("tmp/%s kept: %s", name,
				    outbox_error(d->ob));
				continue;
			}
			if (seen == 1 &&
			    spool_commit(&d->sp, name, dir, name + 3) == 0) {
				log_info("recovered %s/%s", spool_dirname(dir),
				    name + 3);
				continue;
			}
		}
		(void)spool_unlink(&d->sp, SP_TMP, name);
	}
	free(f);
	/* Unfinished plain writes (w.*) are not *.json: remove them too. */
	{
		DIR		*dir2;
		struct dirent	*de;
		int		 fd = dup(d->sp.dfd[SP_TMP]);

		if (fd == -1 || (dir2 = fdopendir(fd)) == NULL) {
			if (fd != -1)
				(void)close(fd);
			return;
		}
		rewinddir(dir2);
		while ((de = readdir(dir2)) != NULL)
			if (strncmp(de->d_name, "w.", 2) == 0)
				(void)spool_unlink(&d->sp, SP_TMP, de->d_name);
		(void)closedir(dir2);
	}
}

/*
 * A refusal as the NAME.error.json beside a rejected file, or NULL when
 * memory ran out: never an error file missing a field.
 * (json_object_set_new fails on the NULL of a failed json_string.)
 */
static char *
error_json(const struct cc_agent_error *e, const char *mid)
{
	json_t	*j;
	char	*s = NULL;

	if ((j = json_pack("{s:s}", "code", cc_agent_strerror(e->code))) ==
	    NULL)
		return NULL;
	if (e->field[0] != '\0' &&
	    json_object_set_new(j, "field", json_string(e->field)) == -1)
		goto out;
	if (e->detail[0] != '\0' &&
	    json_object_set_new(j, "detail", json_string(e->detail)) == -1)
		goto out;
	if (mid != NULL && mid[0] != '\0' &&
	    json_object_set_new(j, "mid", json_string(mid)) == -1)
		goto out;
	s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_INDENT(2));
out:
	json_decref(j);
	return s;
}

/*
 * A file the case system put in out/ that cannot be sent: NAME.error.json
 * first, then the file itself, so an error never lacks its file for long
 * and a crash between the two only repeats the judgement.  When the error
 * cannot be written the file stays in out/ for the next rescan: a file
 * leaves out/ only with its answer (DESIGN §6).
 */
static void
reject_file(struct agentd *d, const char *name, const char *mid,
    const struct cc_agent_error *e)
{
	char	 target[300], errname[320], tag[40], *s;

	(void)snprintf(tag, sizeof(tag), "%lld", (long long)cc_time_now_ms());
	if (spool_unique(&d->sp, SP_REJECTED, name, tag, ".error.json",
	    target, sizeof(target)) == -1) {
		log_warnx("no free name in rejected/ for %s; out/%s stays for "
		    "the next scan", name, name);
		return;
	}
	(void)snprintf(errname, sizeof(errname), "%s.error.json", target);
	if ((s = error_json(e, mid)) == NULL) {
		log_warnx("out of memory: out/%s stays for the next scan",
		    name);
		return;
	}
	if (spool_write(&d->sp, SP_REJECTED, errname, s, strlen(s)) == -1) {
		log_warn("rejected/%s; out/%s stays for the next scan",
		    errname, name);
		free(s);
		return;
	}
	free(s);
	if (spool_move(&d->sp, SP_OUT, name, SP_REJECTED, target) == -1 &&
	    errno != ENOENT)
		log_warn("cannot move out/%s to rejected/", name);
	log_info("rejected file=%s code=%s field=%s", name,
	    cc_agent_strerror(e->code), e->field[0] ? e->field : "-");
}

/* One file of out/: judge it, queue it durably, take it out of out/. */
static void
take(void *arg, const char *name)
{
	struct agentd		*d = arg;
	struct cc_agent_error	 e;
	char			*data = NULL, *doc = NULL;
	char			 mid[CC_AGENT_ID_LEN + 1] = "";
	size_t			 len;
	uint64_t		 seq;
	bool			 assigned;
	int			 r;

	if (spool_read(&d->sp, SP_OUT, name, FILE_MAX, &data, &len) == -1) {
		if (errno == EFBIG) {
			memset(&e, 0, sizeof(e));
			e.code = CC_AGENT_ERR_TOO_LARGE;
			(void)snprintf(e.detail, sizeof(e.detail),
			    "larger than %d bytes", FILE_MAX);
			reject_file(d, name, NULL, &e);
		} else if (errno != ENOENT)
			log_warn("out/%s", name);
		return;
	}
	if (cc_agent_prepare(CC_AGENT_PUBLISH, data, len, &doc, mid,
	    &assigned, &e) != 0) {
		/* Out of memory says nothing about the file: keep it. */
		if (e.code == CC_AGENT_ERR_SYSTEM)
			log_warnx("out/%s stays for the next scan: %s", name,
			    e.detail);
		else
			reject_file(d, name, NULL, &e);
		goto out;
	}
	/* The mid goes into the file before the outbox knows it. */
	if (assigned && spool_write(&d->sp, SP_OUT, name, doc,
	    strlen(doc)) == -1) {
		log_warn("cannot write the mid back to out/%s; will retry",
		    name);
		goto out;
	}
	if ((r = outbox_put(d->ob, mid, name, doc, &seq)) == -1) {
		log_warnx("cannot queue out/%s; will retry: %s", name,
		    outbox_error(d->ob));
		goto out;
	}
	/* 0: queued before a crash kept it in out/; it is answered once. */
	if (r == 1)
		log_info("queued file=%s mid=%s", name, mid);
	else
		log_info("already queued file=%s mid=%s", name, mid);
	if (spool_unlink(&d->sp, SP_OUT, name) == -1 && errno != ENOENT)
		log_warn("out/%s", name);
out:
	free(data);
	free(doc);
}

static void
rescan(struct agentd *d, int min_age_ms)
{
	struct spool_file	*f = NULL;
	int			 n, i;

	if ((n = spool_scan(&d->sp, SP_OUT, min_age_ms, &f)) == -1) {
		log_warn("%s/out", d->conf.spool);
		return;
	}
	for (i = 0; i < n && !agentd_quit; i++)
		take(d, f[i].name);
	free(f);
}

/*
 * Bring queued records into the window, oldest first.  A record whose mid
 * the window holds waits (and those after it) until that one is filed:
 * the broker's answer names the mid only.
 */
static void
fill(struct agentd *d)
{
	struct outbox_entry	e;
	struct flight		*f;
	size_t			i;
	int			r;

	while (d->nwin < WINDOW) {
		if ((r = outbox_next(d->ob, d->loaded, &e)) != 0) {
			if (r == -1)
				log_warnx("cannot read the next record: %s",
				    outbox_error(d->ob));
			return;
		}
		for (i = 0; i < d->nwin; i++)
			if (strcmp(d->win[i].mid, e.mid) == 0)
				break;
		if (i < d->nwin) {
			outbox_entry_free(&e);
			return;
		}
		f = &d->win[d->nwin++];
		memset(f, 0, sizeof(*f));
		f->seq = e.seq;
		memcpy(f->mid, e.mid, sizeof(f->mid));
		memcpy(f->name, e.name, sizeof(f->name));
		f->json = e.json;	/* the window owns it now */
		f->backoff = RETRY_MIN_MS;
		d->loaded = e.seq;
	}
}

/*
 * Room for one more mid owed answers, made before a record is filed (so
 * that filing it never fails to count them).  0, or -1 out of memory.
 */
static int
owed_room(struct agentd *d)
{
	struct owed	*n;
	size_t		 cap;

	if (d->nowed < d->capowed)
		return 0;
	cap = d->capowed > 0 ? 2 * d->capowed : 16;
	if ((n = reallocarray(d->owed, cap, sizeof(*n))) == NULL)
		return -1;
	d->owed = n;
	d->capowed = cap;
	return 0;
}

/*
 * Is an answer naming mid one still owed to a record already filed?  Then
 * it is counted off and taken (true).  The broker answers one connection's
 * requests in order, so these come before any answer to a later record
 * of the mid; one never come after OWED_MAX_MS was lost, and forgotten.
 * (One forgotten too early would be taken for the next record's answer;
 * one lost and still counted costs the next record only a send again.)
 */
static bool
owed_take(struct agentd *d, const char *mid, int64_t now)
{
	struct owed	*o;
	size_t		 i = 0;
	bool		 taken = false;

	while (i < d->nowed) {
		o = &d->owed[i];
		if (!taken && strcasecmp(o->mid, mid) == 0) {
			o->n--;
			taken = true;
		}
		if (o->n == 0 || now - o->since > OWED_MAX_MS)
			*o = d->owed[--d->nowed];
		else
			i++;
	}
	return taken;
}

/*
 * The record of window slot i was filed: it goes from the window, and
 * what is still owed to it is counted (owed_room made room for it).
 */
static void
win_filed(struct agentd *d, size_t i, int64_t now)
{
	struct flight	*f = &d->win[i];
	struct owed	*o;

	if (f->owed > 0 && d->nowed < d->capowed) {
		o = &d->owed[d->nowed++];
		memcpy(o->mid, f->mid, sizeof(o->mid));
		o->n = f->owed;
		o->since = now;
	}
	win_remove(d, i);
}

static void
win_remove(struct agentd *d, size_t i)
{
	free(d->win[i].json);
	memmove(&d->win[i], &d->win[i + 1], (d->nwin - i - 1) *
	    sizeof(d->win[0]));
	d->nwin--;
}

static void
send_window(struct agentd *d, int64_t now)
{
	struct flight	*f;
	size_t		 i;
	int		 rc;

	/* A new session lost whatever the old one had not answered. */
	if (ccx_session(d->a) != d->session) {
		d->session = ccx_session(d->a);
		for (i = 0; i < d->nwin; i++)
			d->win[i].sent = false;
	}
	for (i = 0; i < d->nwin && ccx_ready(d->a); i++) {
		f = &d->win[i];
		if (f->sent && now - f->sent_at >= ANSWER_TIMEOUT_MS) {
			log_info("no answer for mid=%s; sending again",
			    f->mid);
			f->sent = false;
		}
		if (f->sent || f->retry_at > now)
			continue;
		rc = ccx_send_json(d->a, OP_PUBLISH, f->json);
		if (rc == CC_AGENT_ERR_TIMEOUT)
			return;		/* no connection: next session */
		if (rc == CC_AGENT_ERR_SYSTEM) {
			/* Memory or the socket failed, not the record. */
			log_warnx("mid=%s not sent: %s; again in %d ms",
			    f->mid, cc_agent_last_error(d->a)->detail,
			    f->backoff);
			retry_later(f, now);
			continue;
		}
		if (rc != CC_AGENT_OK) {
			/* Too large for this broker, or no longer valid. */
			if (on_refused(d, i, cc_agent_last_error(d->a),
			    now) == 1)
				i--;
			continue;
		}
		f->sent = true;
		f->session = d->session;
		f->sent_at = now;
		f->owed++;
	}
}

/*
 * Back off before sending f again: after `busy` or `storage-full`, or
 * when its answer could not be filed (the broker answers a mid it knows
 * the same way again).
 */
static void
retry_later(struct flight *f, int64_t now)
{
	f->sent = false;
	f->retry_at = now + f->backoff;
	if ((f->backoff *= 2) > RETRY_MAX_MS)
		f->backoff = RETRY_MAX_MS;
}

/*
 * File the record and the answer in sent/ and forget the record.
 * Returns 1, or 0 when they could not be written or the record not
 * forgotten: what was written goes again, the record stays queued and is
 * sent again later, so that it never leaves the outbox without its answer
 * and is filed once.
 */
static int
on_accepted(struct agentd *d, size_t i, int64_t now)
{
	struct flight	*f = &d->win[i];
	char		 target[320], ansname[340], answer[160], stamp[32];

	if (owed_room(d) == -1) {
		log_warnx("out of memory filing mid=%s; again in %d ms",
		    f->mid, f->backoff);
		retry_later(f, now);
		return 0;
	}
	if (spool_unique(&d->sp, SP_SENT, f->name, f->mid, ".accepted.json",
	    target, sizeof(target)) == -1) {
		log_warnx("no free name in sent/ for %s; mid=%s again in %d "
		    "ms", f->name, f->mid, f->backoff);
		retry_later(f, now);
		return 0;
	}
	cc_time_now_rfc3339(stamp);
	(void)snprintf(ansname, sizeof(ansname), "%s.accepted.json", target);
	(void)snprintf(answer, sizeof(answer), "{\n  \"mid\": \"%s\",\n"
	    "  \"accepted\": \"%s\"\n}", f->mid, stamp);
	if (spool_write(&d->sp, SP_SENT, target, f->json,
	    strlen(f->json)) == -1) {
		log_warn("sent/%s; mid=%s again in %d ms", target, f->mid,
		    f->backoff);
		retry_later(f, now);
		return 0;
	}
	if (spool_write(&d->sp, SP_SENT, ansname, answer,
	    strlen(answer)) == -1) {
		log_warn("sent/%s; mid=%s again in %d ms", ansname, f->mid,
		    f->backoff);
		(void)spool_unlink(&d->sp, SP_SENT, target);
		retry_later(f, now);
		return 0;
	}
	if (outbox_done(d->ob, f->seq) == -1) {
		log_warnx("cannot remove mid=%s: %s; again in %d ms", f->mid,
		    outbox_error(d->ob), f->backoff);
		(void)spool_unlink(&d->sp, SP_SENT, ansname);
		(void)spool_unlink(&d->sp, SP_SENT, target);
		retry_later(f, now);
		return 0;
	}
	log_info("accepted file=%s mid=%s%s%s", f->name, f->mid,
	    strcmp(target, f->name) != 0 ? " as=" : "",
	    strcmp(target, f->name) != 0 ? target : "");
	win_filed(d, i, now);
	return 1;
}

/* The same for a refusal, filed in rejected/ beside NAME.error.json. */
static int
on_refused(struct agentd *d, size_t i, const struct cc_agent_error *e,
    int64_t now)
{
	struct flight	*f = &d->win[i];
	char		 target[320], errname[340], *s;

	if (owed_room(d) == -1) {
		log_warnx("out of memory filing mid=%s; again in %d ms",
		    f->mid, f->backoff);
		retry_later(f, now);
		return 0;
	}
	if (spool_unique(&d->sp, SP_REJECTED, f->name, f->mid, ".error.json",
	    target, sizeof(target)) == -1) {
		log_warnx("no free name in rejected/ for %s; mid=%s again in "
		    "%d ms", f->name, f->mid, f->backoff);
		retry_later(f, now);
		return 0;
	}
	(void)snprintf(errname, sizeof(errname), "%s.error.json", target);
	if ((s = error_json(e, f->mid)) == NULL) {
		log_warnx("out of memory filing mid=%s; again in %d ms",
		    f->mid, f->backoff);
		retry_later(f, now);
		return 0;
	}
	if (spool_write(&d->sp, SP_REJECTED, errname, s, strlen(s)) == -1) {
		log_warn("rejected/%s; mid=%s again in %d ms", errname,
		    f->mid, f->backoff);
		free(s);
		retry_later(f, now);
		return 0;
	}
	free(s);
	if (spool_write(&d->sp, SP_REJECTED, target, f->json,
	    strlen(f->json)) == -1) {
		log_warn("rejected/%s; mid=%s again in %d ms", target,
		    f->mid, f->backoff);
		(void)spool_unlink(&d->sp, SP_REJECTED, errname);
		retry_later(f, now);
		return 0;
	}
	if (outbox_done(d->ob, f->seq) == -1) {
		log_warnx("cannot remove mid=%s: %s; again in %d ms", f->mid,
		    outbox_error(d->ob), f->backoff);
		(void)spool_unlink(&d->sp, SP_REJECTED, target);
		(void)spool_unlink(&d->sp, SP_REJECTED, errname);
		retry_later(f, now);
		return 0;
	}
	log_info("refused file=%s mid=%s code=%s field=%s%s%s", f->name,
	    f->mid, cc_agent_strerror(e->code), e->field[0] ? e->field : "-",
	    strcmp(target, f->name) != 0 ? " as=" : "",
	    strcmp(target, f->name) != 0 ? target : "");
	win_filed(d, i, now);
	return 1;
}

static void
answers(struct agentd *d, int64_t now)
{
	struct ccx_answer	ans;
	size_t			i, nsent, only = 0;

	while (ccx_answer_pop(d->a, &ans) == 1) {
		if (ans.id[0] != '\0' && owed_take(d, ans.id, now)) {
			log_info("broker answer re=%s to a record filed "
			    "already: passed over", ans.id);
			ccx_answer_free(&ans);
			continue;
		}
		for (i = 0, nsent = 0; i < d->nwin; i++)
			if (d->win[i].sent) {
				nsent++;
				only = i;
			}
		for (i = 0; i < d->nwin; i++)
			if (strcasecmp(d->win[i].mid, ans.id) == 0)
				break;
		/* An error naming no mid answers the one request out (when
		 * no answer is owed to a record filed already). */
		if (i == d->nwin && ans.kind == ANS_ERROR && nsent == 1 &&
		    d->nowed == 0 &&
		    (ans.id[0] == '\0' || strcmp(ans.id, "publish") == 0))
			i = only;
		if (i < d->nwin && d->win[i].owed > 0)
			d->win[i].owed--;
		if (i == d->nwin) {
			if (ans.kind == ANS_ERROR)
				log_warnx("broker error re=%s code=%s: %s",
				    ans.id[0] ? ans.id : "-",
				    cc_agent_strerror(ans.err.code),
				    ans.err.detail);
		} else if (ans.kind == ANS_ACCEPTED)
			(void)on_accepted(d, i, now);
		else if (ans.kind == ANS_ERROR &&
		    (ans.err.code == CC_AGENT_ERR_BUSY ||
		    ans.err.code == CC_AGENT_ERR_STORAGE_FULL ||
		    ans.err.code == CC_AGENT_ERR_OVER_QUOTA)) {
			struct flight *f = &d->win[i];

			log_info("broker %s for mid=%s; again in %d ms",
			    cc_agent_strerror(ans.err.code), f->mid,
			    f->backoff);
			retry_later(f, now);
		} else if (ans.kind == ANS_ERROR)
			(void)on_refused(d, i, &ans.err, now);
		ccx_answer_free(&ans);
	}
}

/*
 * Store one delivery, receipt or notice and ack it (see the top of the
 * file).  Returns 0 when it is stored (or was already) and acked, -1 when
 * it could not be stored now.
 */
static int
store(struct agentd *d, cc_delivery *dl)
{
	const struct stored	*k = &stored[0];
	const cc_notice		*nt = cc_delivery_notice(dl);
	enum spool_dir		 dir;
	const char		*json, *mid = cc_delivery_mid(dl);
	char			 base[300], key[310], name[320], tmp[330];
	size_t			 i;
	int			 seen;

	for (i = 0; i < sizeof(stored) / sizeof(stored[0]); i++)
		if (stored[i].kind == cc_delivery_kind(dl))
			k = &stored[i];
	dir = k->dir;
	switch (cc_delivery_kind(dl)) {
	case CC_DELIVERY_RECEIPT:
		(void)snprintf(base, sizeof(base), "%s.%s.%s", mid,
		    cc_delivery_agency(dl), cc_delivery_state(dl));
		break;
	case CC_DELIVERY_NOTICE:
		(void)snprintf(base, sizeof(base), "%s", cc_notice_nid(nt));
		break;
	case CC_DELIVERY_RECORD:
	default:
		(void)snprintf(base, sizeof(base), "%s", mid);
		break;
	}
	(void)snprintf(key, sizeof(key), "%s%s", k->key, base);
	(void)snprintf(name, sizeof(name), "%s.json", base);
	(void)snprintf(tmp, sizeof(tmp), "%s%s", k->tmp, name);
	if ((seen = outbox_seen(d->ob, key)) == -1) {
		log_warnx("%s not stored yet: %s", name, outbox_error(d->ob));
		return -1;
	}
	if (seen == 1) {
		/* Stored before; finish a rename a crash cut off. */
		if (spool_exists(&d->sp, SP_TMP, tmp) &&
		    spool_commit(&d->sp, tmp, dir, name) == -1) {
			log_warn("%s/%s", spool_dirname(dir), name);
			return -1;
		}
		log_info("duplicate %s/%s dropped", spool_dirname(dir), name);
	} else {
		if ((json = cc_delivery_json(dl, true)) == NULL) {
			log_warnx("out of memory: %s not stored yet", name);
			return -1;
		}
		if (spool_write_tmp(&d->sp, tmp, json, strlen(json)) == -1) {
			log_warn("tmp/%s", tmp);
			return -1;
		}
		if (outbox_seen_put(d->ob, key) == -1) {
			log_warnx("cannot record %s as seen: %s", name,
			    outbox_error(d->ob));
			(void)spool_unlink(&d->sp, SP_TMP, tmp);
			return -1;
		}
		if (spool_commit(&d->sp, tmp, dir, name) == -1) {
			log_warn("%s/%s", spool_dirname(dir), name);
			return -1;
		}
		if (dir == SP_IN)
			log_info("delivered mid=%s from=%s type=%s", mid,
			    cc_delivery_from(dl), cc_delivery_type(dl));
		else if (dir == SP_NOTICES)
			log_info("notice nid=%s kind=%s", cc_notice_nid(nt),
			    cc_notice_kind_name(nt));
		else
			log_info("receipt mid=%s agency=%s state=%s%s%s", mid,
			    cc_delivery_agency(dl), cc_delivery_state(dl),
			    cc_delivery_reason(dl)[0] ? " reason=" : "",
			    cc_delivery_reason(dl));
	}
	if (cc_agent_ack(d->a, dl) != 0)
		log_info("ack of %s not sent; it comes again after the next "
		    "reconnect", name);
	return 0;
}

/*
 * Take and store deliveries, receipts and notices in the order they came;
 * stop at a failure.
 */
static void
receive(struct agentd *d, int64_t now)
{
	cc_delivery	*dl;

	if (d->stuck != NULL) {
		if (now < d->stuck_at)
			return;
		if (store(d, d->stuck) == -1) {
			d->stuck_at = now + STUCK_RETRY_MS;
			return;
		}
		cc_delivery_destroy(&d->stuck);
	}
	while (!agentd_quit && cc_agent_receive(d->a, 0, &dl) == 0) {
		if (store(d, dl) == -1) {
			d->stuck = dl;
			d->stuck_at = now + STUCK_RETRY_MS;
			return;
		}
		cc_delivery_destroy(&dl);
	}
}

static int
next_timeout(struct agentd *d, int64_t now)
{
	int64_t	t = d->next_rescan;
	size_t	i;

	for (i = 0; i < d->nwin; i++) {
		if (d->win[i].sent && d->win[i].sent_at + ANSWER_TIMEOUT_MS < t)
			t = d->win[i].sent_at + ANSWER_TIMEOUT_MS;
		if (!d->win[i].sent && d->win[i].retry_at > now &&
		    d->win[i].retry_at < t)
			t = d->win[i].retry_at;
	}
	if (d->stuck != NULL && d->stuck_at < t)
		t = d->stuck_at;
	t -= now;
	if (t < 0)
		t = 0;
	return t > 1000 ? 1000 : (int)t;
}

int
agentd_run(const char *path, bool debug)
{
	struct agentd		*d;
	struct sigaction	 sa;
	char			 err[2 * PATH_MAX + 256];
	int64_t			 now;
	size_t			 i;
	int			 r, status = 1;

	log_init("ccagent", debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if ((d = calloc(1, sizeof(*d))) == NULL)
		fatalx("out of memory");
	d->lockfd = -1;
	d->sp.ino = -1;
	for (i = 0; i < SP__COUNT; i++)
		d->sp.dfd[i] = -1;
	if (setup(d, path, err, sizeof(err)) == -1) {
		(void)fprintf(stderr, "ccagent: run: %s\n", err);
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	(void)sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)signal(SIGPIPE, SIG_IGN);
	(void)signal(SIGHUP, SIG_IGN);

	d->a->log = true;
	log_info("running: spool %s, data %s, broker %s, %zu queued",
	    d->conf.spool, d->conf.data, d->conf.broker, outbox_count(d->ob));
	recover_tmp(d);
	rescan(d, 0);
	d->next_rescan = ccx_now_ms() + RESCAN_MS;
	while (!agentd_quit) {
		fill(d);
		now = ccx_now_ms();
		send_window(d, now);
		r = ccx_wait(d->a, d->sp.ino, next_timeout(d, now),
		    CC_AGENT_WAIT_RECEIVE | CCX_WAIT_ANSWER | CCX_WAIT_SESSION);
		if (r == -1) {
			log_warnx("session: %s", cc_agent_last_error(d->a)->detail);
			continue;
		}
		now = ccx_now_ms();
		if (r & CC_AGENT_WAIT_FD) {
			if (spool_events(&d->sp, take, d) == -1) {
				log_info("inotify queue overflowed; rescanning");
				d->next_rescan = now;
			}
		}
		answers(d, now);
		receive(d, now);
		if (now >= d->next_rescan) {
			rescan(d, RESCAN_MIN_AGE_MS);
			d->next_rescan = ccx_now_ms() + RESCAN_MS;
		}
	}
	log_info("stopping: %zu queued", outbox_count(d->ob));
	status = 0;
out:
	cc_delivery_destroy(&d->stuck);
	for (i = 0; i < d->nwin; i++)
		free(d->win[i].json);
	free(d->owed);
	cc_agent_destroy(&d->a);
	spool_close(&d->sp);
	outbox_close(&d->ob);
	if (d->lockfd != -1)
		(void)close(d->lockfd);
	free(d);
	return status;
}
