/*
 * test_damage.c - flip one bit of a small store: for every flip the
 * outcome is intact or reported, never altered, silent or crashed (issue
 * 18 item 13; the fault that made NATS lose acknowledged messages
 * undetected in Jepsen's 2025 analysis).
 *
 * A small store is built with the real broker (tests/lib/unitbroker.h):
 * consents (a withdrawn one, a refusal, denies), about forty queued
 * deliveries about three subjects for three agencies (one of them on
 * LMDB's overflow pages), some delivered and acked, some withheld,
 * receipts waiting for the senders, subscriptions.
 * Its data.mdb and key are the golden copy.
 *
 * An observation O(store) is everything the broker would do with the
 * store, as canonical text: what `ccbroker audit verify --head` (with the
 * golden trail's head, as an operator exports it), `audit subject` and
 * `stats` print (and their exit status); then broker_open (which runs
 * the quick check), the sweep, the purge of invalid agencies and, agency by
 * agency, the delivery pump until nothing more is sent, each frame acked
 * through the real ack handler; the track status of every message for its
 * sender; the commit.  Frames are JSON with sorted keys and without dseq
 * and times, which legitimately differ.  Everything the broker and the
 * commands log goes to a file; a trial is "reported" when a line there
 * speaks of damage.
 *
 * Each trial copies the golden files, flips one bit of data.mdb, and runs
 * O in a child: killed by a signal is CRASHED (but for exit status 2
 * after the store's fault handler or LMDB's assertion said so, which is
 * REPORTED); the same dump as the untouched copy is INTACT; a different
 * dump is REPORTED when something said so, else ALTERED.  CRASHED and
 * ALTERED fail the test.  A table of outcomes by the kind of page flipped
 * (LMDB's page header: meta, branch, leaf, overflow; free: on LMDB's
 * free list) is printed.
 *
 * FLIP_TRIALS=N (default 300) random bits with FLIP_SEED (default fixed),
 * or FLIP_ALL=1 for every bit of the file (FLIP_FROM and FLIP_COUNT: a
 * stretch of it); FLIP_BIT=N for one bit; FLIP_VERBOSE=1 prints every
 * trial.  The store is made anew each run (new keys, ids and times), so a
 * failure keeps its world: FLIP_WORLD=DIR takes it up again, and the same
 * bit is the same flip.  KEEP=1 keeps the directory.
 */
#define _GNU_SOURCE
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <lmdb.h>
#include <uuid/uuid.h>

#include "deliver.h"
#include "dispatch.h"
#include "igcmd.h"
#include "log.h"
#include "route.h"
#include "../lib/unitbroker.h"

#define PAGE		4096
#define NMSG_MAX	64
#define DEFAULT_TRIALS	300
#define DEFAULT_SEED	20250601u
#define FRAMES_MAX	20000	/* frames one observation may see */
#define CHILD_SECONDS	60	/* an observation that hangs is killed */
#define CLI_SECONDS	30

#define CONT		"continuity-of-care"
#define HSUP		"housing-support"
#define BODY_HSTATUS	"{\"person\": {\"family_name\": \"Example\"}, " \
			"\"effective_date\": \"2026-01-10\", " \
			"\"accommodation_type\": \"hostel\"}"
#define BODY_HANDOVER	"{\"person\": {\"family_name\": \"Example\"}}"

/* Every agency of the partnership, in the order O visits them. */
static const char *const agencies[] = {
	H_CARAT, H_CJIT, H_HOUSING, H_LA, H_PROBATION, H_REVOKED
};
#define NAGENCY	(sizeof(agencies) / sizeof(agencies[0]))

/* The subject access requests observed, as the operator writes them. */
static const char *const requests[] = { "pnc=" H_PNC_A, "pnc=" H_PNC_B,
    "pnc=" H_PNC_C };

/* The messages of the golden store, for track. */
static struct {
	char	mid[37];
	char	sender[CC_ID_MAX + 1];
} msgs[NMSG_MAX];
static size_t	nmsg;

/* Where a world's files are. */
static struct {
	char	dir[1024];		/* the harness's directory */
	char	conf[1100];		/* broker.conf, data = trial */
	char	golden[1100];		/* data.mdb and key as built */
	char	trial[1100];		/* a trial's data directory */
	char	bin[1100];		/* ccbroker */
	char	dump[1100], log[1100], status[1100], cliout[1100];
	char	head[128];		/* SEQ:HASH of the golden audit */
} w;

enum outcome { INTACT, REPORTED, ALTERED, CRASHED, NOUTCOME };
static const char *const outcome_name[NOUTCOME] = {
	"intact", "reported", "ALTERED", "CRASHED"
};

enum ptype { PT_META, PT_BRANCH, PT_LEAF, PT_OVERFLOW, PT_FREE, PT_OTHER,
	NPTYPE };
static const char *const ptype_name[NPTYPE] = {
	"meta", "branch", "leaf", "overflow", "free", "other"
};

/* ---------------------------------------------------------------- files */

static char *
slurp(const char *path, size_t *len)
{
	FILE	*f;
	char	*buf = NULL;
	size_t	 n = 0;
	long	 sz;

	if ((f = fopen(path, "rb")) == NULL) {
		if (len != NULL)
			*len = 0;
		return strdup("");
	}
	if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)sz + 1)) !=
	    NULL)
		n = fread(buf, 1, (size_t)sz, f);
	fclose(f);
	if (buf == NULL)
		return NULL;
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

static int
copy_file(const char *from, const char *to)
{
	size_t	 n;
	char	*buf = slurp(from, &n);
	int	 fd, ok;

	if (buf == NULL)
		return -1;
	if ((fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1) {
		free(buf);
		return -1;
	}
	ok = write(fd, buf, n) == (ssize_t)n;
	free(buf);
	return close(fd) == 0 && ok ? 0 : -1;
}

/* The trial's data directory: the golden files, one bit flipped (bit < 0:
 * none). */
static void
trial_prepare(long long bit)
{
	char	from[1200], to[1200];
	int	fd;
	uint8_t	c;

	snprintf(to, sizeof(to), "%s/lock.mdb", w.trial);
	(void)unlink(to);
	mkdir(w.trial, 0700);
	cr_assert_eq(chmod(w.trial, 0700), 0);
	snprintf(from, sizeof(from), "%s/data.mdb", w.golden);
	snprintf(to, sizeof(to), "%s/data.mdb", w.trial);
	cr_assert_eq(copy_file(from, to), 0, "copy %s", from);
	snprintf(from, sizeof(from), "%s/key", w.golden);
	snprintf(to, sizeof(to), "%s/key", w.trial);
	cr_assert_eq(copy_file(from, to), 0, "copy %s", from);
	if (bit < 0)
		return;
	snprintf(to, sizeof(to), "%s/data.mdb", w.trial);
	cr_assert_neq(fd = open(to, O_RDWR), -1);
	cr_assert_eq(pread(fd, &c, 1, bit / 8), 1);
	c ^= (uint8_t)(1u << (bit % 8));
	cr_assert_eq(pwrite(fd, &c, 1, bit / 8), 1);
	close(fd);
}

/* ---------------------------------------------------------- the golden */

static json_t *
record(const char *type, const char *purpose, const char *pnc,
    const char *to_csv, const char *body)
{
	char	mid[37], now[32];
	json_t	*m;

	m = h_jsonf("{\"op\": \"publish\", \"mid\": \"%s\", \"type\": \"%s\","
	    " \"purpose\": \"%s\", \"subject\": {\"pnc\": \"%s\"},"
	    " \"area\": \"%s\", \"created\": \"%s\", \"body\": %s}",
	    h_uuid(mid), type, purpose, pnc, H_AREA, h_time(0, now), body);
	if (to_csv != NULL)
		json_object_set(m, "to", h_csv(to_csv));
	return m;
}

static void
publish(struct ub *u, const char *sender, json_t *m)
{
	cr_assert_lt(nmsg, NMSG_MAX);
	snprintf(msgs[nmsg].mid, sizeof(msgs[nmsg].mid), "%s",
	    ub_publish(u, sender, m));
	snprintf(msgs[nmsg].sender, sizeof(msgs[nmsg].sender), "%s", sender);
	nmsg++;
}

/* A grant with deny provisions (JSON text of the deny list). */
static const char *
grant_deny(struct ub *u, const char *recipients, const char *purposes,
    const char *pnc, const char *deny)
{
	char	cid[37], from[32], until[32], now[32];
	json_t	*g, *ans;

	g = h_keep(json_pack("{s:s,s:s,s:{s:s},s:O,s:O,s:O,s:o,s:b,"
	    "s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s}}",
	    "op", "consent-grant",
	    "cid", h_uuid(cid),
	    "subject", "pnc", pnc,
	    "recipients", h_csv(recipients),
	    "purposes", h_csv(purposes),
	    "categories", h_csv(H_BASIC),
	    "deny", json_incref(h_json(deny)),
	    "explicit", 0,
	    "valid_from", h_time(-86400, from),
	    "valid_until", h_time(300 * 86400, until),
	    "evidence",
		"method", "written",
		"form", "DIP consent v3",
		"worker", "J Worker",
		"captured", h_time(0, now),
		"reference", "case file 12"));
	cr_assert_not_null(g);
	ans = ub_call(u, H_CARAT, g);
	h_assert_op(ans, "consent-recorded");
	return h_keep_str(strdup(cid));
}

/* Online, pumped, the first `nack` frames acked (all: SIZE_MAX). */
static void
receive(struct ub *u, const char *agency, size_t nack)
{
	json_t	*all, *f;
	size_t	 i;

	(void)ub_online(u, agency);
	ub_pump(u);
	/* (json_array_foreach evaluates its array at every step.) */
	all = ub_frames(u, agency);
	json_array_foreach(all, i, f) {
		if (i >= nack)
			break;
		cr_assert_null(ub_callf(u, agency, "{\"op\": \"ack\", "
		    "\"dseq\": %lld}", h_int(f, "dseq")));
	}
	ub_pump(u);
	(void)ub_frames(u, agency);
}

static void
subscribe(struct ub *u, const char *agency)
{
	h_assert_op(ub_callf(u, agency, "{\"op\": \"subscribe\", \"types\": "
	    "[\"release-plan\", \"handover\"], \"areas\": [\"%s\"]}", H_AREA),
	    "subscribed");
}

/*
 * The store every trial starts from: about forty deliveries waiting, some
 * sent and acked, some sent and not acked, withheld ones, receipts for
 * the senders, a withdrawn consent, a refusal, denies, subscriptions;
 * several commits, so that LMDB's free list holds pages too.
 */
static void
golden_build(struct ub *u)
{
	const char	*cid;
	json_t		*m, *all, *acts;
	char		 t[32], text[1000];
	size_t		 i;

	(void)grant_deny(u, H_CJIT "," H_PROBATION "," H_HOUSING "," H_LA,
	    CONT "," HSUP, H_PNC_A,
	    "[{\"recipients\": [\"" H_HOUSING "\"], "
	    "\"categories\": [\"contacts\"]}]");
	cid = ub_grant(u, H_CARAT, H_LA, H_BASIC, CONT, H_PNC_A, false);
	(void)ub_grant(u, H_CARAT, H_CJIT "," H_HOUSING, H_BASIC, CONT,
	    H_PNC_B, false);
	(void)grant_deny(u, H_CJIT, CONT, H_PNC_B,
	    "[{\"recipients\": [\"" H_PROBATION "\"]}]");
	all = ub_calls(u, H_CARAT, h_refuse_new(H_PNC_C));
	cr_assert_eq(json_array_size(all), 1);
	h_assert_op(json_array_get(all, 0), "consent-recorded");
	subscribe(u, H_CJIT);
	subscribe(u, H_PROBATION);
	subscribe(u, H_HOUSING);
	ub_commit(u);

	for (i = 0; i < 14; i++)
		publish(u, H_CARAT, ub_plan(H_PNC_A, NULL));
	ub_commit(u);
	for (i = 0; i < 4; i++)
		publish(u, H_CARAT, ub_plan(H_PNC_B, NULL));
	for (i = 0; i < 2; i++)
		publish(u, H_CARAT, ub_plan(H_PNC_C, NULL));
	for (i = 0; i < 3; i++)
		publish(u, H_CARAT, record("handover", CONT, H_PNC_A, H_LA,
		    BODY_HANDOVER));
	for (i = 0; i < 2; i++)
		publish(u, H_CJIT, record("housing-status", HSUP, H_PNC_A,
		    H_LA, BODY_HSTATUS));
	m = ub_plan(H_PNC_A, H_CJIT);
	json_object_set_new(m, "expires", json_string(h_time(2 * 86400, t)));
	publish(u, H_CARAT, m);
	/* One too long for a page: LMDB keeps it on overflow pages. */
	m = ub_plan(H_PNC_A, H_HOUSING);
	for (i = 0, acts = json_array(); i < 6; i++) {
		memset(text, 'a' + (int)i, sizeof(text) - 1);
		text[sizeof(text) - 1] = '\0';
		json_array_append_new(acts, json_string(text));
	}
	json_object_set_new(json_object_get(m, "body"), "housing_actions",
	    acts);
	publish(u, H_CARAT, m);
	ub_commit(u);

	all = ub_calls(u, H_CARAT, h_withdraw_new(cid, NULL));
	cr_assert_eq(json_array_size(all), 1);
	h_assert_op(json_array_get(all, 0), "consent-recorded");
	ub_commit(u);
	/* cjit: six acked, the rest sent and not acked; probation: all. */
	receive(u, H_CJIT, 6);
	receive(u, H_PROBATION, SIZE_MAX);
	ub_commit(u);
	/* Waiting: housing's and la's deliveries, the senders' receipts. */
	cr_assert_geq(json_array_size(ub_queue(u, H_HOUSING)), 10);
	cr_assert_geq(json_array_size(ub_queue(u, H_CARAT)), 10);
}

/* --------------------------------------------------------- observation */

/* Drop what legitimately differs between two runs, at any depth. */
static void
canon(json_t *j)
{
	const char	*k;
	json_t		*v;
	void		*tmp;
	size_t		 i;

	if (json_is_object(j)) {
		json_object_del(j, "dseq");
		json_object_del(j, "at");
		json_object_del(j, "oldest_age_s");
		json_object_del(j, "produced");
		json_object_foreach_safe(j, tmp, k, v)
			canon(v);
	} else if (json_is_array(j))
		json_array_foreach(j, i, v)
			canon(v);
}

static void
put_json(FILE *out, const char *prefix, json_t *j)
{
	char	*text;

	canon(j);
	text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT |
	    JSON_ENCODE_ANY);
	fprintf(out, "%s%s\n", prefix, text != NULL ? text : "(unprintable)");
	free(text);
}

/* Something no observation may meet: said to the parent. */
static void
say_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
say_status(const char *fmt, ...)
{
	FILE	*f;
	va_list	 ap;

	if ((f = fopen(w.status, "a")) == NULL)
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

/*
 * A ccbroker command, as an operator would run it on the store: the
 * binary itself when `exec` (audit verify: its crash was the issue), else
 * what its main() would call, in a child of this process (as fast as a
 * fork; exec and the dynamic linker cost ten times more per trial).
 */
static void
cli(FILE *out, bool exec, const char *const argv[])
{
	struct broker_conf	 conf;
	struct cc_subject	 subj;
	json_error_t		 jerr;
	json_t			*j;
	FILE			*in;
	pid_t			 pid;
	char			*text, line[256], err[512];
	int			 status, fd, i;

	snprintf(line, sizeof(line), "ccbroker");
	for (i = 0; argv[i] != NULL; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
		    " %s", argv[i]);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		const char	*args[16];

		if ((fd = open(w.cliout, O_WRONLY | O_CREAT | O_TRUNC,
		    0600)) == -1 || dup2(fd, 1) == -1)
			_exit(127);
		alarm(CLI_SECONDS);
		if (exec) {
			args[0] = w.bin;
			for (i = 0; argv[i] != NULL && i < 14; i++)
				args[i + 1] = argv[i];
			args[i + 1] = NULL;
			execv(w.bin, (char *const *)args);
			_exit(127);
		}
		/* As main.c: the log, the fault guard, the configuration. */
		log_init("ccbroker", LOG_LVL_INFO);
		store_fault_guard("ccbroker");
		memset(&conf, 0, sizeof(conf));
		if (broker_conf_load(w.conf, &conf, err, sizeof(err)) == -1)
			fatalx("%s", err);
		if (strcmp(argv[0], "stats") == 0)
			exit(ig_stats(&conf));
		/* audit subject, the request on its standard input. */
		snprintf(err, sizeof(err), "out of memory");
		if ((in = fmemopen((void *)argv[5], strlen(argv[5]),
		    "r")) == NULL || ig_request_read(in, "stdin", &subj, err,
		    sizeof(err)) == -1)
			fatalx("audit subject: %s", err);
		exit(ig_audit_subject(&conf, &subj, IG_FORMAT_JSON));
	}
	if (pid == -1 || waitpid(pid, &status, 0) != pid) {
		fprintf(out, "%s: could not run\n", line);
		return;
	}
	if (WIFSIGNALED(status)) {
		fprintf(out, "%s: killed by signal %d\n", line,
		    WTERMSIG(status));
		say_status("crashed: %s: signal %d", line, WTERMSIG(status));
		return;
	}
	fprintf(out, "%s: exit %d\n", line, WEXITSTATUS(status));
	text = slurp(w.cliout, NULL);
	if (text != NULL && (j = json_loads(text, 0, &jerr)) != NULL) {
		put_json(out, "  ", j);
		json_decref(j);
	} else if (text != NULL && text[0] != '\0')
		fprintf(out, "  %s%s", text, text[strlen(text) - 1] == '\n' ?
		    "" : "\n");
	free(text);
}

/* One request of `agency` in a nested transaction, as batch.c isolates
 * it; its answers stay in b->out. */
static void
request(FILE *out, struct broker *b, struct store_txn *txn,
    const char *agency, enum cc_op op, const char *fields)
{
	struct cc_error		 err;
	struct req		 r;
	struct store_txn	*child;
	size_t			 mark = b->nout;
	int			 rc;

	b->now = cc_time_now_ms();
	memset(&r, 0, sizeof(r));
	r.rid = (const uint8_t *)agency;
	r.ridlen = strlen(agency);
	r.fd = -1;
	r.len = strlen(fields);
	if ((r.from = auth_agency(&b->auth, agency,
	    (time_t)(b->now / 1000))) == NULL ||
	    (r.peer = broker_peer(b, agency)) == NULL)
		return;
	memcpy(r.key, r.from->cert.key, sizeof(r.key));
	if (proto_from_json(op, fields, strlen(fields), &r.msg, &err) == -1) {
		fprintf(out, "request refused by proto: %s\n", fields);
		return;
	}
	if ((rc = store_begin_nested(b->st, txn, &child)) != 0) {
		fprintf(out, "%s: begin: %s\n", cc_op_name(op),
		    store_strerror(rc));
		proto_msg_destroy(&r.msg);
		return;
	}
	r.txn = child;
	if ((rc = dispatch(b, &r)) != 0) {
		store_abort(child);
		out_drop(b, mark);
		log_warnx("%s from %s failed: %s", cc_op_name(op), agency,
		    store_strerror(rc));
		fprintf(out, "%s from %s failed: %s\n", cc_op_name(op),
		    agency, store_strerror(rc));
	} else if ((rc = store_commit(child)) != 0)
		fprintf(out, "%s: commit: %s\n", cc_op_name(op),
		    store_strerror(rc));
	proto_msg_destroy(&r.msg);
}

/*
 * The frames queued for the agency, each written canonically; deliveries
 * and receipts acked.  Returns how many there were.
 */
static size_t
take_frames(FILE *out, struct broker *b, struct store_txn *txn,
    const char *agency, bool ack)
{
	uint64_t	 acks[1024];
	size_t		 i, keep = 0, n = 0, nack = 0;
	size_t		 idlen = strlen(agency);
	char		 fields[64];

	for (i = 0; i < b->nout; i++) {
		struct outmsg	*o = &b->out[i];
		struct cc_error	 err;
		struct cc_msg	*m;
		json_t		*j;
		char		*text;
		uint64_t	 dseq;
		enum cc_op	 op;

		if (o->ridlen != idlen || memcmp(o->rid, agency, idlen) != 0) {
			b->out[keep++] = *o;
			continue;
		}
		n++;
		if (proto_decode(o->data + o->off, o->len, SIZE_MAX, &m,
		    &err) == -1) {
			fprintf(out, "  frame not valid: %s %s\n",
			    cc_err_name(err.code), err.field);
			free(o->data);
			continue;
		}
		op = proto_op(m);
		text = proto_to_json(m, false);
		j = text != NULL ? json_loads(text, 0, NULL) : NULL;
		if (j != NULL) {
			json_object_set_new(j, "op",
			    json_string(cc_op_name(op)));
			put_json(out, "  ", j);
			json_decref(j);
		} else
			fprintf(out, "  frame %s unprintable\n",
			    cc_op_name(op));
		free(text);
		if (ack && (op == OP_DELIVER || op == OP_RECEIPT) &&
		    proto_get_u64(m, "dseq", &dseq) == 0 && nack < 1024)
			acks[nack++] = dseq;
		proto_msg_destroy(&m);
		free(o->data);
	}
	b->nout = keep;
	for (i = 0; i < nack; i++) {
		snprintf(fields, sizeof(fields), "{\"dseq\": %llu}",
		    (unsigned long long)acks[i]);
		request(out, b, txn, agency, OP_ACK, fields);
	}
	return n;
}

/* The pump and the sweeps as batch.c's pump() runs them: nested, undone
 * when they fail. */
static void
pump(FILE *out, struct broker *b, struct store_txn *txn)
{
	struct store_txn	*child;
	size_t			 mark = b->nout, i;
	int			 rc = 0;

	b->now = cc_time_now_ms();
	for (i = 0; i < b->npeer; i++) {
		b->peer[i].saved_cursor = b->peer[i].cursor;
		b->peer[i].saved_inflight = b->peer[i].inflight;
	}
	if ((rc = store_begin_nested(b->st, txn, &child)) != 0) {
		fprintf(out, "pump: begin: %s\n", store_strerror(rc));
		return;
	}
	if (b->now >= b->next_sweep) {
		b->next_sweep = b->now + 1000;
		rc = route_sweep(b, child);
	}
	if (rc == 0 && b->purge_invalid) {
		rc = route_purge_invalid(b, child);
		b->purge_invalid = rc != 0;
	}
	if (rc == 0)
		rc = deliver_pump(b, child);
	if (rc != 0)
		store_abort(child);
	else if ((rc = store_commit(child)) == 0)
		return;
	out_drop(b, mark);
	for (i = 0; i < b->npeer; i++) {
		b->peer[i].cursor = b->peer[i].saved_cursor;
		b->peer[i].inflight = b->peer[i].saved_inflight;
	}
	log_warnx("delivery: %s", store_strerror(rc));
	fprintf(out, "pump: %s\n", store_strerror(rc));
}

/* The broker on the store: what it loads, sends, answers and commits. */
static void
run_broker(FILE *out)
{
	struct broker		 b;
	struct run_as		 ra;
	struct store_txn	*txn;
	struct peer		*p;
	char			 err[512], fields[96];
	size_t			 i, j, round, sent, total = 0;
	int			 rc;

	if (broker_open(&b, w.conf, &ra, err, sizeof(err)) == -1) {
		/* The path of the trial directory is the same every time. */
		log_warnx("broker_open: %s", err);
		fprintf(out, "broker_open failed: %s\n", err);
		return;
	}
	for (i = 0; i < b.npeer; i++) {
		if (!b.peer[i].has_sub)
			continue;
		fprintf(out, "sub %s types=%x areas=", b.peer[i].id,
		    b.peer[i].sub.types);
		for (j = 0; j < b.peer[i].sub.nareas && j < SUB_AREAS_MAX; j++)
			fprintf(out, "%.16s,", b.peer[i].sub.areas[j]);
		fputc('\n', out);
	}
	fprintf(out, "counters");
	for (i = 0; i <= CNT_REJECTED; i++)
		fprintf(out, " %llu", (unsigned long long)b.count.n[i]);
	fputc('\n', out);
	if ((rc = store_begin(b.st, true, &txn)) != 0) {
		fprintf(out, "begin: %s\n", store_strerror(rc));
		broker_close(&b);
		return;
	}
	/* Each agency in turn, until a round sends nothing at all. */
	for (round = 0, sent = 1; sent > 0 && total < FRAMES_MAX; round++) {
		sent = 0;
		for (i = 0; i < NAGENCY; i++) {
			size_t n;

			if ((p = broker_peer(&b, agencies[i])) == NULL)
				continue;
			memcpy(p->rid, agencies[i], strlen(agencies[i]));
			p->ridlen = strlen(agencies[i]);
			if ((p->online = auth_agency(&b.auth, agencies[i],
			    (time_t)(cc_time_now_ms() / 1000)) != NULL))
				memcpy(p->key, auth_agency(&b.auth,
				    agencies[i], (time_t)(cc_time_now_ms() /
				    1000))->cert.key, sizeof(p->key));
			p->connected = p->online;
			p->fd = -1;
			p->cursor = 0;
			p->inflight = 0;
			p->dirty = true;
			fprintf(out, "round %zu: %s\n", round, agencies[i]);
			do {
				pump(out, &b, txn);
				n = take_frames(out, &b, txn, agencies[i],
				    true);
				sent += n;
				total += n;
			} while (n > 0 && total < FRAMES_MAX);
			p->online = p->connected = false;
		}
	}
	if (total >= FRAMES_MAX)
		fprintf(out, "more than %d frames\n", FRAMES_MAX);
	/* Where every message went, as its sender sees it. */
	for (i = 0; i < nmsg; i++) {
		fprintf(out, "track %zu:\n", i);
		snprintf(fields, sizeof(fields), "{\"mid\": \"%.36s\"}",
		    msgs[i].mid);
		request(out, &b, txn, msgs[i].sender, OP_TRACK, fields);
		(void)take_frames(out, &b, txn, msgs[i].sender, false);
	}
	if ((rc = state_save(&b, txn)) != 0) {
		fprintf(out, "state_save: %s\n", store_strerror(rc));
		store_abort(txn);
	} else if ((rc = store_commit(txn)) != 0)
		fprintf(out, "commit: %s\n", store_strerror(rc));
	broker_close(&b);
}

/* O(store): in a child whose stderr is the log; writes the dump. */
static void
observe(void)
{
	const char	*verify[] = { "audit", "verify", "-c", w.conf,
	    "--head", w.head, NULL };
	static const char *const stats[] = { "stats", "-c", w.conf, NULL };
	const char	*subject[] = { "audit", "subject", "-c", w.conf,
	    "<<<", NULL, NULL };
	FILE		*out;
	size_t		 i;
	int		 fd;

	if ((fd = open(w.log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND,
	    0600)) == -1 || dup2(fd, 2) == -1)
		_exit(126);
	if ((out = fopen(w.dump, "w")) == NULL)
		_exit(126);
	log_init("flip", LOG_LVL_WARN);
	/* As `ccbroker run` does (main.c). */
	store_fault_guard("flip");
	cli(out, true, verify);
	for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		subject[5] = requests[i];
		cli(out, false, subject);
	}
	cli(out, false, stats);
	fflush(out);
	run_broker(out);
	fclose(out);
	fflush(NULL);
	_exit(0);
}

/* Words that say the store was found damaged (or could not be read). */
static const char *const damage_words[] = {
	"damage", "integrity", "store:", "unreadable", "cannot be read",
	"corrupt", "broken", "fault", "cannot read", "failed",
};

/* The first line of the log that reports damage, or NULL. */
static const char *
reported_line(const char *log, char *buf, size_t size)
{
	const char	*p = log, *e;
	size_t		 k, n;

	while (*p != '\0') {
		e = strchr(p, '\n');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		snprintf(buf, size, "%.*s", (int)n, p);
		for (k = 0; k < sizeof(damage_words) / sizeof(damage_words[0]);
		    k++)
			if (strstr(buf, damage_words[k]) != NULL)
				return buf;
		p += n + (e != NULL);
	}
	return NULL;
}

struct trial {
	enum outcome	 outcome;
	int		 status;		/* of the child */
	bool		 fault;		/* the fault handler said it */
	char		*dump, *log, *crash;
};

/* Did a process end on a fault in the store, and say so (store.c)? */
static bool
fault_said(const char *log)
{
	return strstr(log, "store damaged: a fault reading the store") !=
	    NULL || strstr(log, "store damaged? a fault (SIGSEGV)") != NULL ||
	    strstr(log, "LMDB finds its file inconsistent") != NULL;
}

static void
trial_free(struct trial *t)
{
	free(t->dump);
	free(t->log);
	free(t->crash);
	memset(t, 0, sizeof(*t));
}

/* O on the trial directory, in a child; control NULL: the control run. */
static void
trial_run(struct trial *t, const char *control)
{
	char	 buf[512];
	pid_t	 pid;

	memset(t, 0, sizeof(*t));
	(void)unlink(w.status);
	(void)unlink(w.dump);
	fflush(NULL);
	cr_assert_neq(pid = fork(), -1);
	if (pid == 0) {
		alarm(CHILD_SECONDS);
		observe();
	}
	cr_assert_eq(waitpid(pid, &t->status, 0), pid);
	t->dump = slurp(w.dump, NULL);
	t->log = slurp(w.log, NULL);
	t->crash = slurp(w.status, NULL);
	t->fault = fault_said(t->log);
	if (WIFSIGNALED(t->status) || !WIFEXITED(t->status) ||
	    WEXITSTATUS(t->status) != 0 || t->crash[0] != '\0') {
		/* The fault handler, or LMDB's assertion, said what it met. */
		t->outcome = WIFEXITED(t->status) && WEXITSTATUS(t->status) ==
		    2 && t->crash[0] == '\0' && t->fault ? REPORTED : CRASHED;
		return;
	}
	if (control != NULL && strcmp(t->dump, control) == 0)
		t->outcome = INTACT;
	else
		t->outcome = reported_line(t->log, buf, sizeof(buf)) != NULL ?
		    REPORTED : ALTERED;
}

/* Where two dumps first differ (line, and some text around it), into
 * buf. */
static const char *
first_diff(const char *a, const char *b, char *buf, size_t size)
{
	const char	*la = a, *lb = b;
	size_t		 line = 1, off;
	int		 na, nb;

	while (*a != '\0' && *a == *b) {
		if (*a == '\n') {
			line++;
			la = a + 1;
			lb = b + 1;
		}
		a++;
		b++;
	}
	/* From a little before the difference, within the line. */
	off = (size_t)(a - la) > 60 ? (size_t)(a - la) - 60 : 0;
	na = (int)strcspn(la + off, "\n");
	nb = (int)strcspn(lb + off, "\n");
	snprintf(buf, size, "line %zu col %zu: control \"%.*s\", trial "
	    "\"%.*s\"", line, (size_t)(a - la), na > 140 ? 140 : na,
	    la + off, nb > 140 ? 140 : nb, lb + off);
	return buf;
}

/* ------------------------------------------------------------ page map */

struct pagemap {
	size_t		 npage;
	uint8_t		*type;		/* enum ptype per page */
};

/* Each page of the golden file by its LMDB header (flags at offset 10),
 * overflow runs followed, pages on the free list marked free. */
static void
pagemap_build(struct pagemap *pm)
{
	MDB_env		*e;
	MDB_txn		*t;
	MDB_cursor	*c;
	MDB_val		 k, v;
	char		 path[1200];
	uint8_t		*file;
	size_t		 len, p, i;

	snprintf(path, sizeof(path), "%s/data.mdb", w.golden);
	cr_assert_not_null(file = (uint8_t *)slurp(path, &len));
	cr_assert_eq(len % PAGE, 0, "data.mdb is %zu bytes", len);
	pm->npage = len / PAGE;
	cr_assert_not_null(pm->type = calloc(pm->npage, 1));
	for (p = 0; p < pm->npage; p++) {
		const uint8_t	*pg = file + p * PAGE;
		uint16_t	 flags;
		uint32_t	 n;

		memcpy(&flags, pg + 10, 2);
		if (flags & 0x08)
			pm->type[p] = PT_META;
		else if (flags & 0x04) {
			memcpy(&n, pg + 12, 4);
			for (i = 0; i < n && p + i < pm->npage; i++)
				pm->type[p + i] = PT_OVERFLOW;
			p += n > 0 ? n - 1 : 0;
		} else if (flags & 0x01)
			pm->type[p] = PT_BRANCH;
		else if (flags & 0x02)
			pm->type[p] = PT_LEAF;
		else
			pm->type[p] = PT_OTHER;
	}
	free(file);
	/* The free list: values are ID lists led by their count. */
	cr_assert_eq(mdb_env_create(&e), 0);
	cr_assert_eq(mdb_env_set_maxdbs(e, 16), 0);
	cr_assert_eq(mdb_env_open(e, w.golden, MDB_RDONLY | MDB_NOLOCK,
	    0600), 0);
	cr_assert_eq(mdb_txn_begin(e, NULL, MDB_RDONLY, &t), 0);
	cr_assert_eq(mdb_cursor_open(t, 0, &c), 0);
	while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
		size_t	n, pg;

		memcpy(&n, v.mv_data, sizeof(n));
		for (i = 1; i <= n && (i + 1) * sizeof(size_t) <= v.mv_size +
		    sizeof(size_t); i++) {
			memcpy(&pg, (const uint8_t *)v.mv_data + i *
			    sizeof(size_t), sizeof(pg));
			if (pg < pm->npage)
				pm->type[pg] = PT_FREE;
		}
	}
	mdb_cursor_close(c);
	mdb_txn_abort(t);
	mdb_env_close(e);
}

/* ---------------------------------------------------------------- test */

static uint64_t
next_rand(uint64_t *s)
{
	uint64_t	z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned long long
env_num(const char *name, unsigned long long dflt)
{
	const char	*s = getenv(name);

	return s != NULL && *s != '\0' ? strtoull(s, NULL, 0) : dflt;
}

/* The paths of a world in dir (the harness's, or one kept before). */
static void
world_paths(const char *dir)
{
	const char	*build = getenv("CC_BUILD");

	snprintf(w.dir, sizeof(w.dir), "%s", dir);
	snprintf(w.golden, sizeof(w.golden), "%s/golden", w.dir);
	snprintf(w.trial, sizeof(w.trial), "%s/trial", w.dir);
	snprintf(w.conf, sizeof(w.conf), "%s/broker.conf", w.dir);
	snprintf(w.dump, sizeof(w.dump), "%s/dump.txt", w.dir);
	snprintf(w.log, sizeof(w.log), "%s/log.txt", w.dir);
	snprintf(w.status, sizeof(w.status), "%s/status.txt", w.dir);
	snprintf(w.cliout, sizeof(w.cliout), "%s/cli.txt", w.dir);
	if (build == NULL || *build == '\0')
		build = "build";
	if (build[0] == '/')
		snprintf(w.bin, sizeof(w.bin), "%s/bin/ccbroker", build);
	else {
		char cwd[512];

		cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
		snprintf(w.bin, sizeof(w.bin), "%s/%s/bin/ccbroker", cwd,
		    build);
	}
	cr_assert_eq(access(w.bin, X_OK), 0, "%s", w.bin);
}

/*
 * A new world: the partnership, the golden store built by the broker,
 * broker.conf pointing at the trial directory, and the messages listed in
 * msgs.txt (so that FLIP_WORLD can take the world up again).
 */
static struct ub *
world_build(void)
{
	struct ub	*u;
	char		 from[1200], to[1200];
	FILE		*f;
	size_t		 i;

	u = ub_new(NULL);
	golden_build(u);
	/* The broker closed; its store is the golden copy. */
	store_abort(u->txn);
	u->txn = NULL;
	broker_close(&u->b);
	world_paths(h_dir(u->env));
	cr_assert_str_eq(w.conf, h_conf(u->env));
	cr_assert_eq(mkdir(w.golden, 0700), 0);
	snprintf(from, sizeof(from), "%s/data.mdb", h_data(u->env));
	snprintf(to, sizeof(to), "%s/data.mdb", w.golden);
	cr_assert_eq(copy_file(from, to), 0);
	snprintf(from, sizeof(from), "%s/key", h_data(u->env));
	snprintf(to, sizeof(to), "%s/key", w.golden);
	cr_assert_eq(copy_file(from, to), 0);
	h_set_data(u->env, w.trial);
	snprintf(to, sizeof(to), "%s/msgs.txt", w.dir);
	cr_assert_not_null(f = fopen(to, "w"));
	for (i = 0; i < nmsg; i++)
		fprintf(f, "%s %s\n", msgs[i].mid, msgs[i].sender);
	cr_assert_eq(fclose(f), 0);
	return u;
}

/*
 * The head of the golden audit trail, as an operator exports it off the
 * machine (`ccbroker audit head`; the broker logs it too): `audit verify
 * --head` then notices a store that went back to an older commit.
 */
static void
world_head(void)
{
	json_t	*j;
	char	 cmd[2400], out[512];
	FILE	*p;
	size_t	 n;

	trial_prepare(-1);
	snprintf(cmd, sizeof(cmd), "'%s' audit head -c '%s'", w.bin, w.conf);
	cr_assert_not_null(p = popen(cmd, "r"));
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	cr_assert_eq(pclose(p), 0, "%s: %s", cmd, out);
	cr_assert_not_null(j = json_loads(out, 0, NULL), "%s", out);
	snprintf(w.head, sizeof(w.head), "%lld:%s",
	    (long long)json_integer_value(json_object_get(j, "seq")),
	    json_string_value(json_object_get(j, "hash")));
	json_decref(j);
}

/* A world kept by an earlier run (its directory). */
static void
world_load(const char *dir)
{
	char	path[1200];
	FILE	*f;

	world_paths(dir);
	snprintf(path, sizeof(path), "%s/msgs.txt", w.dir);
	cr_assert_not_null(f = fopen(path, "r"), "%s", path);
	for (nmsg = 0; nmsg < NMSG_MAX && fscanf(f, "%36s %64s",
	    msgs[nmsg].mid, msgs[nmsg].sender) == 2; nmsg++)
		;
	fclose(f);
}

Test(damage, one_flipped_bit_is_intact_or_reported, .timeout = 0)
{
	struct ub		*u = NULL;
	struct pagemap		 pm;
	struct trial		 t;
	const char		*world = getenv("FLIP_WORLD");
	char			*control, buf[512];
	unsigned long long	 ntrial, seed, one, from;
	unsigned		 table[NPTYPE][NOUTCOME];
	unsigned		 total[NOUTCOME], said_intact = 0, by_fault = 0;
	long long		 bit, nbits;
	uint64_t		 rs;
	bool			 all = env_num("FLIP_ALL", 0) != 0;
	bool			 verbose = env_num("FLIP_VERBOSE", 0) != 0;
	size_t			 i, p;
	int			 o;

	memset(table, 0, sizeof(table));
	memset(total, 0, sizeof(total));
	if (world != NULL && *world != '\0')
		world_load(world);
	else
		u = world_build();
	pagemap_build(&pm);
	world_head();
	nbits = (long long)pm.npage * PAGE * 8;

	/* The control: twice the same, and nothing said. */
	trial_prepare(-1);
	trial_run(&t, NULL);
	cr_assert(WIFEXITED(t.status) && WEXITSTATUS(t.status) == 0 &&
	    t.crash[0] == '\0', "control run failed (%d): %s", t.status,
	    t.crash);
	cr_assert_null(reported_line(t.log, buf, sizeof(buf)),
	    "the control run logged: %s", buf);
	control = t.dump;
	t.dump = NULL;
	trial_free(&t);
	if (verbose)
		fprintf(stderr, "control dump:\n%s\n", control);
	trial_prepare(-1);
	trial_run(&t, control);
	cr_assert_eq(t.outcome, INTACT, "the control differs between runs: "
	    "%s", first_diff(control, t.dump, buf, sizeof(buf)));
	trial_free(&t);

	seed = env_num("FLIP_SEED", DEFAULT_SEED);
	from = env_num("FLIP_FROM", 0);
	ntrial = all ? env_num("FLIP_COUNT", (unsigned long long)nbits) :
	    env_num("FLIP_TRIALS", DEFAULT_TRIALS);
	if (all && from + ntrial > (unsigned long long)nbits)
		ntrial = from < (unsigned long long)nbits ?
		    (unsigned long long)nbits - from : 0;
	one = env_num("FLIP_BIT", (unsigned long long)-1);
	if (one != (unsigned long long)-1)
		ntrial = 1;
	rs = seed;
	fprintf(stderr, "damage: %zu pages, %s%llu trials, seed %llu\n",
	    pm.npage, all ? "every bit: " : "", ntrial, seed);
	for (i = 0; i < ntrial; i++) {
		bit = one != (unsigned long long)-1 ? (long long)one : all ?
		    (long long)(from + i) : (long long)(next_rand(&rs) %
		    (uint64_t)nbits);
		p = (size_t)(bit / 8 / PAGE);
		trial_prepare(bit);
		trial_run(&t, control);
		o = t.outcome;
		table[pm.type[p]][o]++;
		total[o]++;
		if (o == INTACT && reported_line(t.log, buf, sizeof(buf)))
			said_intact++;
		if (o == REPORTED && t.fault)
			by_fault++;
		if (o == ALTERED || o == CRASHED || verbose)
			fprintf(stderr, "damage: %s: bit %lld (page %zu %s, "
			    "byte %lld of it, bit %lld), seed %llu: %s%s%s\n",
			    outcome_name[o], bit, p, ptype_name[pm.type[p]],
			    bit / 8 % PAGE, bit % 8, seed,
			    o == CRASHED ? t.crash : "",
			    o == CRASHED && WIFSIGNALED(t.status) ?
			    strsignal(WTERMSIG(t.status)) : "",
			    o == ALTERED || o == REPORTED ?
			    first_diff(control, t.dump, buf, sizeof(buf)) :
			    "");
		trial_free(&t);
	}

	fprintf(stderr, "damage: %llu flips of %zu pages, seed %llu\n",
	    ntrial, pm.npage, seed);
	fprintf(stderr, "%-10s %8s %8s %8s %8s\n", "page", "intact",
	    "reported", "ALTERED", "CRASHED");
	for (p = 0; p < NPTYPE; p++)
		fprintf(stderr, "%-10s %8u %8u %8u %8u\n", ptype_name[p],
		    table[p][INTACT], table[p][REPORTED], table[p][ALTERED],
		    table[p][CRASHED]);
	fprintf(stderr, "%-10s %8u %8u %8u %8u\n", "total", total[INTACT],
	    total[REPORTED], total[ALTERED], total[CRASHED]);
	fprintf(stderr, "damage: %u intact flips were also reported; %u "
	    "reported ended on a fault (SIGSEGV, SIGBUS or an LMDB "
	    "assertion) that said so\n", said_intact, by_fault);
	cr_expect_eq(total[CRASHED], 0, "%u flips crashed (seed %llu)",
	    total[CRASHED], seed);
	cr_expect_eq(total[ALTERED], 0, "%u flips altered silently "
	    "(seed %llu)", total[ALTERED], seed);
	free(control);
	free(pm.type);
	if (u != NULL) {
		/* A failure is taken up again with FLIP_WORLD and FLIP_BIT. */
		if (total[CRASHED] + total[ALTERED] > 0) {
			fprintf(stderr, "damage: world kept: FLIP_WORLD=%s\n",
			    w.dir);
			setenv("KEEP", "1", 1);
		}
		h_env_destroy(&u->env);
		free(u);
	}
}
