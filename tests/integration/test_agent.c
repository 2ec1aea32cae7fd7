/*
 * test_agent.c - ccagent against a real broker: spool folders, durable
 * outbox across a broker outage, exactly-once delivery across kill -9 of
 * the receiving agent, track, tail, the CLI's errors and the C API
 * example program (issue 8); and the crash test of issue 11: the broker
 * and the agents killed at random while records flow (CRASH_ROUNDS).
 * Notices (issue 19): written once to notices/ and acked, across kill -9,
 * and printed by tail, against a stand-in broker on a real CURVE socket
 * that sends them; and, against the real broker, a consent withdrawn
 * after delivery.
 *
 * Each test makes a fresh partnership and broker (tests/lib/harness.c)
 * and runs real `ccagent run` processes, one spool and data directory per
 * agency under the test's temporary directory.
 */
#define _GNU_SOURCE	/* asprintf */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <msgpack.h>
#include <zmq.h>

#include "cc_proto.h"
#include "pki.h"
#include "../lib/harness.h"
#include "../lib/raw.h"

#define AG_MAX		4
#define WAIT_MS		15000

struct ag {
	char	id[64];
	char	dir[1100];
	char	conf[1200];
	char	log[1200];
	pid_t	pid;
};

static struct h_env	*env;
static struct ag	 ags[AG_MAX];
static size_t		 nags;

static void		 setup(void);
static void		 teardown(void);
static struct ag	*ag_new(const char *, const char *subscribe);
static int		 occurs(const char *, const char *, const char **);
static void		 ag_start(struct ag *);
static void		 ag_stop(struct ag *);
static void		 ag_kill9(struct ag *);
static const char	*bin(const char *);
static int		 cli(char **, char **, const char *const []);
static char		*slurp(const char *);
static void		 spit(const char *, const char *);
static char		*path_of(struct ag *, const char *, const char *);
static void		 drop(struct ag *, const char *, const char *);
static json_t		*example(const char *);
static void		 grant(struct ag *, const char *recipients);
static int		 count(struct ag *, const char *folder);
static bool		 spool_has(struct ag *, const char *, const char *);
static void		 wait_filed(struct ag *, int);
static bool		 wait_count(struct ag *, const char *, int, int);
static json_t		*folder_json(struct ag *, const char *);
static const char	*release_plan(const char *notes);
static json_t		*delivered_order(struct ag *);

static void
setup(void)
{
	env = h_env_new(NULL);
	nags = 0;
}

static void
teardown(void)
{
	size_t	i;

	for (i = 0; i < nags; i++)
		ag_kill9(&ags[i]);
	h_env_destroy(&env);
}

TestSuite(agent, .init = setup, .fini = teardown, .timeout = 120);

static const char *
bin(const char *name)
{
	const char	*b = getenv("CC_BUILD");
	char		*p;

	if (asprintf(&p, "%s/bin/%s", b != NULL && *b ? b : "build",
	    name) == -1)
		cr_assert_fail("asprintf");
	return h_keep_str(p);
}

static char *
path_of(struct ag *a, const char *folder, const char *name)
{
	char	*p;

	if (asprintf(&p, "%s/spool/%s%s%s", a->dir, folder, name ? "/" : "",
	    name ? name : "") == -1)
		cr_assert_fail("asprintf");
	return h_keep_str(p);
}

static char *
slurp(const char *path)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	(void)fseek(f, 0, SEEK_END);
	n = ftell(f);
	(void)fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	cr_assert(buf != NULL);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		buf[0] = '\0';
	(void)fclose(f);
	return h_keep_str(buf);
}

static void
spit(const char *path, const char *text)
{
	FILE	*f = fopen(path, "w");

	cr_assert(f != NULL, "%s: %s", path, strerror(errno));
	cr_assert(fputs(text, f) >= 0);
	cr_assert(fclose(f) == 0);
}

/* An agency's agent.conf, spool and data under DIR/ID. */
static struct ag *
ag_new(const char *id, const char *subscribe)
{
	struct ag	*a = &ags[nags++];
	char		 text[4096], dir[1100];
	const char	*pki = h_pki(env);

	cr_assert(nags <= AG_MAX);
	memset(a, 0, sizeof(*a));
	snprintf(a->id, sizeof(a->id), "%s", id);
	snprintf(dir, sizeof(dir), "%s/%s", h_dir(env), id);
	snprintf(a->dir, sizeof(a->dir), "%s", dir);
	snprintf(a->conf, sizeof(a->conf), "%s/agent.conf", dir);
	snprintf(a->log, sizeof(a->log), "%s/agent.log", dir);
	cr_assert(mkdir(dir, 0700) == 0);
	snprintf(text, sizeof(text),
	    "[agent]\n"
	    "broker = tcp://127.0.0.1:%d\n"
	    "broker_certificate = %s/broker.crt\n"
	    "ca = %s/ca.crt\n"
	    "crl = %s/ca.crl\n"
	    "certificate = %s/agencies/%s.crt\n"
	    "key = %s/keys/%s.key\n"
	    "data = data\n"
	    "spool = spool\n"
	    "%s%s%s",
	    h_port(env), pki, pki, pki, pki, id, pki, id,
	    subscribe != NULL ? "subscribe = " : "",
	    subscribe != NULL ? subscribe : "",
	    subscribe != NULL ? "\nareas = " H_AREA "\n" : "");
	spit(a->conf, text);
	return a;
}

/* How many times a log says `needle`, and where it says it last. */
static int
occurs(const char *log, const char *needle, const char **last)
{
	const char	*p = log;
	int		 n = 0;

	*last = NULL;
	while (p != NULL && (p = strstr(p, needle)) != NULL) {
		*last = p++;
		n++;
	}
	return n;
}

/* `ccagent run`, stderr to DIR/ID/agent.log; waits for its welcome. */
static void
ag_start(struct ag *a)
{
	const char	*log, *last;
	int		 i, fd, runs;

	log = slurp(a->log);
	runs = log != NULL ? occurs(log, "running:", &last) : 0;
	fflush(stdout);
	fflush(stderr);
	if ((a->pid = fork()) == 0) {
		fd = open(a->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd == -1)
			_exit(126);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 2);
		execl(bin("ccagent"), "ccagent", "run", "-c", a->conf,
		    (char *)NULL);
		_exit(127);
	}
	cr_assert(a->pid > 0);
	/* Each run appends: wait for this run's welcome. */
	for (i = 0; i < WAIT_MS / 20; i++) {
		log = slurp(a->log);
		if (log != NULL && occurs(log, "running:", &last) > runs &&
		    strstr(last, "welcomed") != NULL)
			return;
		h_msleep(20);
	}
	cr_assert_fail("%s: ccagent run was not welcomed:\n%s", a->id,
	    slurp(a->log));
}

static void
ag_stop(struct ag *a)
{
	int	st;

	if (a->pid <= 0)
		return;
	kill(a->pid, SIGTERM);
	cr_assert(waitpid(a->pid, &st, 0) == a->pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "ccagent run did not stop cleanly");
	a->pid = 0;
}

static void
ag_kill9(struct ag *a)
{
	int	st;

	if (a->pid <= 0)
		return;
	kill(a->pid, SIGKILL);
	(void)waitpid(a->pid, &st, 0);
	a->pid = 0;
}

static int
cli(char **out, char **err, const char *const argv[])
{
	return h_run(env, out, err, argv);
}

/* Rename a finished file into out/, as a case system should. */
static void
drop(struct ag *a, const char *name, const char *text)
{
	char	*tmp, *dst = path_of(a, "out", name);

	cr_assert(asprintf(&tmp, "%s/spool/out/.%s.part", a->dir, name) != -1);
	spit(tmp, text);
	cr_assert(rename(tmp, dst) == 0, "%s: %s", dst, strerror(errno));
	free(tmp);
}

static json_t *
example(const char *name)
{
	char	*p;
	json_t	*j;

	cr_assert(asprintf(&p, "%s/examples/%s", getenv("CC_SRC") ?
	    getenv("CC_SRC") : ".", name) != -1);
	j = h_json(slurp(p));
	free(p);
	return j;
}

/* The example grant, in date, naming only `recipients`, by `a`. */
static void
grant(struct ag *a, const char *recipients)
{
	json_t		*g = json_deep_copy(example("consent-grant.json"));
	char		 from[32], until[32], *file, *out = NULL, *err = NULL;
	const char	*argv[] = { bin("ccagent"), "consent", "grant", "-c",
			    a->conf, NULL, NULL };
	int		 st;

	h_keep(g);
	json_object_set_new(g, "recipients", json_deep_copy(h_csv(recipients)));
	json_object_set_new(g, "valid_from", json_string(h_time(-86400, from)));
	json_object_set_new(g, "valid_until",
	    json_string(h_time(300 * 86400, until)));
	json_object_del(g, "deny");
	cr_assert(asprintf(&file, "%s/grant.json", h_dir(env)) != -1);
	h_keep_str(file);
	cr_assert(json_dump_file(g, file, JSON_INDENT(2)) == 0);
	argv[5] = file;
	st = cli(&out, &err, argv);
	cr_assert(st == 0, "consent grant: %d: %s", st, err);
	cr_assert(strlen(out) == 39 && out[36] == ' ' && out[37] == '1',
	    "consent grant printed '%s'", out);
	/* The assigned cid went back into the file. */
	cr_assert(strncmp(h_str(h_json(slurp(file)), "cid"), out, 36) == 0);
}

/* A record file a spool folder holds: NAME.json, not hidden. */
static bool
is_record(const char *name)
{
	size_t	len = strlen(name);

	return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".json") == 0;
}

static int
count(struct ag *a, const char *folder)
{
	DIR		*d = opendir(path_of(a, folder, NULL));
	struct dirent	*de;
	int		 n = 0;

	cr_assert(d != NULL);
	while ((de = readdir(d)) != NULL) {
		if (is_record(de->d_name))
			n++;
	}
	closedir(d);
	return n;
}

/* Does a spool folder hold a file of that name? */
static bool
spool_has(struct ag *a, const char *folder, const char *name)
{
	struct stat	sb;

	return stat(path_of(a, folder, name), &sb) == 0;
}

static bool
wait_count(struct ag *a, const char *folder, int n, int ms)
{
	int	i;

	for (i = 0; i < ms / 20; i++) {
		if (count(a, folder) >= n)
			return count(a, folder) == n;
		h_msleep(20);
	}
	return false;
}

/* {name: parsed content} of a folder's *.json files. */
static json_t *
folder_json(struct ag *a, const char *folder)
{
	DIR		*d = opendir(path_of(a, folder, NULL));
	struct dirent	*de;
	json_t		*all = h_keep(json_object());

	cr_assert(d != NULL);
	while ((de = readdir(d)) != NULL) {
		if (!is_record(de->d_name))
			continue;
		json_object_set(all, de->d_name,
		    h_json(slurp(path_of(a, folder, de->d_name))));
	}
	closedir(d);
	return all;
}

static const char *
release_plan(const char *notes)
{
	json_t	*rp = json_deep_copy(example("release-plan.json"));

	h_keep(rp);
	/* A tag the consent lets through (notes are narrative: withheld). */
	if (notes != NULL)
		json_object_set_new(h_get(rp, "body.person"), "given_name",
		    json_string(notes));
	return h_keep_str(json_dumps(rp, JSON_INDENT(2)));
}

Test(agent, release_plan_dropped_in_out_reaches_consented_cjit_once)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	struct ag	*cjit = ag_new(H_CJIT, "release-plan,housing-status");
	struct ag	*prob = ag_new(H_PROBATION, "release-plan");
	json_t		*in, *sent, *rc, *rec, *v;
	const char	*mid, *key;
	char		 file[48];

	ag_start(carat);
	ag_start(cjit);
	ag_start(prob);
	grant(carat, H_CJIT);
	drop(carat, "plan-0001.json", release_plan(NULL));

	cr_assert(wait_count(carat, "sent", 2, WAIT_MS), "not sent:\n%s",
	    slurp(carat->log));
	cr_assert(wait_count(cjit, "in", 1, WAIT_MS), "not delivered:\n%s",
	    slurp(cjit->log));
	sent = folder_json(carat, "sent");
	mid = h_str(json_object_get(sent, "plan-0001.json"), "mid");
	cr_assert(mid != NULL, "sent/: %s", h_dump(sent));
	cr_assert_str_eq(h_str(json_object_get(sent,
	    "plan-0001.json.accepted.json"), "mid"), mid);
	cr_assert_eq(count(carat, "out"), 0);

	/* Both receipts reach the sender: delivered, and withheld. */
	cr_assert(wait_count(carat, "receipts", 2, WAIT_MS), "receipts:\n%s",
	    slurp(carat->log));
	rc = folder_json(carat, "receipts");
	json_object_foreach(rc, key, v) {
		cr_assert_str_eq(h_str(v, "mid"), mid);
		if (strcmp(h_str(v, "agency"), H_CJIT) == 0)
			cr_assert_str_eq(h_str(v, "state"), "delivered");
		else {
			cr_assert_str_eq(h_str(v, "agency"), H_PROBATION);
			cr_assert_str_eq(h_str(v, "state"), "withheld");
			cr_assert_str_eq(h_str(v, "reason"), "no-consent");
		}
	}

	in = folder_json(cjit, "in");
	snprintf(file, sizeof(file), "%s.json", mid);
	rec = json_object_get(in, file);
	cr_assert(rec != NULL, "in/: %s", h_dump(in));
	cr_assert_str_eq(h_str(rec, "from"), H_CARAT);
	cr_assert_str_eq(h_str(rec, "type"), "release-plan");
	cr_assert_str_eq(h_str(rec, "body.person.family_name"), "Example");
	cr_assert(h_get(rec, "op") == NULL && h_get(rec, "v") == NULL &&
	    h_get(rec, "dseq") == NULL, "in/ holds wire fields: %s",
	    h_dump(rec));
	/* Nowhere else. */
	h_msleep(H_QUIET_MS);
	cr_assert_eq(count(cjit, "in"), 1);
	cr_assert_eq(count(prob, "in"), 0);
	cr_assert_eq(count(carat, "in"), 0);
	cr_assert_eq(count(carat, "rejected"), 0);
	/* SIGTERM stops the daemon cleanly. */
	ag_stop(carat);
	ag_stop(cjit);
	ag_stop(prob);
}

Test(agent, malformed_file_lands_in_rejected_with_its_error)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	json_t		*rj, *e, *ho;

	ag_start(carat);
	drop(carat, "broken.json", "{\"type\": \"release-plan\",");
	rj = json_deep_copy(example("release-plan.json"));
	h_keep(rj);
	json_object_set_new(json_object_get(rj, "subject"), "pnc",
	    json_string("2004/0012345E"));
	drop(carat, "badpnc.json", h_keep_str(json_dumps(rj, 0)));
	/* Valid here, refused by the broker: no such recipient. */
	ho = json_deep_copy(example("handover.json"));
	h_keep(ho);
	json_object_set_new(ho, "to", json_pack("[s]", "nobody.example"));
	drop(carat, "unknown-to.json", h_keep_str(json_dumps(ho, 0)));

	cr_assert(wait_count(carat, "rejected", 6, WAIT_MS), "rejected:\n%s",
	    slurp(carat->log));
	e = h_json(slurp(path_of(carat, "rejected", "broken.json.error.json")));
	cr_assert_str_eq(h_str(e, "code"), "malformed");
	cr_assert_str_eq(slurp(path_of(carat, "rejected", "broken.json")),
	    "{\"type\": \"release-plan\",");
	e = h_json(slurp(path_of(carat, "rejected", "badpnc.json.error.json")));
	cr_assert_str_eq(h_str(e, "code"), "invalid-field");
	cr_assert_str_eq(h_str(e, "field"), "subject.pnc");
	e = h_json(slurp(path_of(carat, "rejected",
	    "unknown-to.json.error.json")));
	cr_assert_str_eq(h_str(e, "code"), "unknown-recipient", "%s",
	    h_dump(e));
	cr_assert_str_eq(h_str(e, "field"), "to.0");
	cr_assert(h_str(e, "mid") != NULL);
	cr_assert_eq(count(carat, "out"), 0);
	cr_assert_eq(count(carat, "sent"), 0);
	/* Never retried: nothing more after a while. */
	h_msleep(H_QUIET_MS);
	cr_assert_eq(count(carat, "rejected"), 6);
}

/* The mids of the "delivered" log lines of an agent, in order. */
static json_t *
delivered_order(struct ag *a)
{
	json_t		*mids = h_keep(json_array());
	const char	*p = slurp(a->log);
	char		 mid[37];

	while ((p = strstr(p, "delivered mid=")) != NULL) {
		p += strlen("delivered mid=");
		snprintf(mid, sizeof(mid), "%.36s", p);
		json_array_append_new(mids, json_string(mid));
	}
	return mids;
}

Test(agent, broker_stopped_while_files_dropped_then_all_delivered_in_order)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	struct ag	*cjit = ag_new(H_CJIT, "release-plan");
	json_t		*in, *order, *v;
	char		 name[32], notes[32];
	size_t		 i;
	int		 n = 12;

	ag_start(carat);
	ag_start(cjit);
	grant(carat, H_CJIT);
	cr_assert_eq(h_broker_stop(env), 0);
	for (i = 0; i < (size_t)n; i++) {
		snprintf(name, sizeof(name), "plan-%02zu.json", i);
		snprintf(notes, sizeof(notes), "seq %02zu", i);
		drop(carat, name, release_plan(notes));
		h_msleep(20);
	}
	/* Queued durably, out of out/, nothing sent yet. */
	h_msleep(500);
	cr_assert_eq(count(carat, "out"), 0, "%s", slurp(carat->log));
	cr_assert_eq(count(carat, "sent"), 0);
	h_broker_start(env);

	cr_assert(wait_count(cjit, "in", n, 30000), "in/ has %d:\n%s",
	    count(cjit, "in"), slurp(cjit->log));
	cr_assert(wait_count(carat, "sent", 2 * n, WAIT_MS));
	h_msleep(H_QUIET_MS);
	cr_assert_eq(count(cjit, "in"), n);
	/* In the order dropped, each once. */
	in = folder_json(cjit, "in");
	order = delivered_order(cjit);
	cr_assert_eq(json_array_size(order), (size_t)n, "%s", slurp(cjit->log));
	json_array_foreach(order, i, v) {
		char	 file[48];
		json_t	*rec;

		snprintf(file, sizeof(file), "%s.json", json_string_value(v));
		rec = json_object_get(in, file);
		cr_assert(rec != NULL);
		snprintf(notes, sizeof(notes), "seq %02zu", i);
		cr_assert_str_eq(h_str(rec, "body.person.given_name"), notes,
		    "delivery %zu is %s", i, h_str(rec, "body.person.given_name"));
	}
}

Test(agent, receiving_agent_killed_9_while_deliveries_flow_gets_each_once)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	struct ag	*cjit = ag_new(H_CJIT, "release-plan");
	json_t		*sent, *in, *v;
	const char	*key;
	char		 name[32], notes[32], file[48];
	int		 n = 60, kills = 0, at[] = { 3, 15, 30, 45 };
	size_t		 i;

	ag_start(carat);
	ag_start(cjit);
	grant(carat, H_CJIT);
	for (i = 0; i < (size_t)n; i++) {
		snprintf(name, sizeof(name), "plan-%02zu.json", i);
		snprintf(notes, sizeof(notes), "seq %02zu", i);
		drop(carat, name, release_plan(notes));
	}
	/* Kill the receiver while records flow in, and start it again. */
	for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		int j;

		for (j = 0; j < 1000 && count(cjit, "in") < at[i]; j++)
			h_msleep(2);
		if (count(cjit, "in") >= n)
			break;
		ag_kill9(cjit);
		kills++;
		ag_start(cjit);
	}
	cr_assert(wait_count(cjit, "in", n, 30000), "in/ has %d of %d:\n%s",
	    count(cjit, "in"), n, slurp(cjit->log));
	cr_assert(wait_count(carat, "sent", 2 * n, WAIT_MS));
	h_msleep(H_QUIET_MS);
	cr_assert_eq(count(cjit, "in"), n);
	cr_assert_eq(count(cjit, "tmp"), 0);
	cr_log_info("killed the receiving agent %d times", kills);

	/* Exactly the records sent, each once. */
	sent = folder_json(carat, "sent");
	in = folder_json(cjit, "in");
	json_object_foreach(sent, key, v) {
		if (strstr(key, ".accepted.json") != NULL)
			continue;
		snprintf(file, sizeof(file), "%s.json", h_str(v, "mid"));
		cr_assert(json_object_get(in, file) != NULL,
		    "%s (%s) never arrived", key, file);
		cr_assert_str_eq(h_str(json_object_get(in, file),
		    "body.person.given_name"), h_str(v, "body.person.given_name"));
	}
	cr_assert_eq(json_object_size(in), (size_t)n);
}

Test(agent, track_shows_delivered_and_withheld_recipients)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	struct ag	*cjit = ag_new(H_CJIT, "release-plan");
	struct ag	*prob = ag_new(H_PROBATION, "release-plan");
	const char	*pub[] = { bin("ccagent"), "publish", "-c", carat->conf,
			    NULL, NULL };
	const char	*trk[] = { bin("ccagent"), "track", "-c", carat->conf,
			    NULL, NULL, NULL };
	char		*out = NULL, *err = NULL, *file, mid[37];
	json_t		*st, *r;
	size_t		 i;
	bool		 saw_cjit = false, saw_prob = false;
	int		 rc, tries;

	ag_start(cjit);
	ag_start(prob);
	grant(carat, H_CJIT);
	cr_assert(asprintf(&file, "%s/plan.json", h_dir(env)) != -1);
	h_keep_str(file);
	spit(file, release_plan(NULL));
	pub[4] = file;
	rc = cli(&out, &err, pub);
	cr_assert(rc == 0, "publish: %d %s", rc, err);
	cr_assert(strlen(out) == 37, "publish printed '%s'", out);
	snprintf(mid, sizeof(mid), "%.36s", out);
	/* The mid went back into the file: publishing again is the same. */
	cr_assert_str_eq(h_str(h_json(slurp(file)), "mid"), mid);
	rc = cli(&out, &err, pub);
	cr_assert(rc == 0 && strncmp(out, mid, 36) == 0);

	cr_assert(wait_count(cjit, "in", 1, WAIT_MS));
	trk[4] = "--json";
	trk[5] = mid;
	for (tries = 0; tries < 100; tries++) {
		rc = cli(&out, &err, trk);
		cr_assert(rc == 0, "track: %d %s", rc, err);
		st = h_json(out);
		if (json_array_size(json_object_get(st, "recipients")) == 2 &&
		    strstr(out, "delivered") != NULL)
			break;
		h_msleep(50);
	}
	cr_assert_str_eq(h_str(st, "mid"), mid);
	json_array_foreach(json_object_get(st, "recipients"), i, r) {
		if (strcmp(h_str(r, "agency"), H_CJIT) == 0) {
			cr_assert_str_eq(h_str(r, "state"), "delivered");
			saw_cjit = true;
		} else if (strcmp(h_str(r, "agency"), H_PROBATION) == 0) {
			cr_assert_str_eq(h_str(r, "state"), "withheld");
			cr_assert_str_eq(h_str(r, "reason"), "no-consent");
			saw_prob = true;
		}
	}
	cr_assert(saw_cjit && saw_prob, "track: %s", out);
	/* The table for people. */
	trk[4] = mid;
	trk[5] = NULL;
	rc = cli(&out, &err, trk);
	cr_assert(rc == 0);
	cr_assert(strstr(out, "AGENCY") != NULL && strstr(out, H_CJIT) &&
	    strstr(out, "delivered") && strstr(out, "withheld") &&
	    strstr(out, "no-consent"), "track table:\n%s", out);
	/* Published twice, delivered once; tail prints it as one line. */
	h_msleep(H_QUIET_MS);
	cr_assert_eq(count(cjit, "in"), 1);
	{
		const char *tail[] = { bin("ccagent"), "tail", "-c",
		    cjit->conf, NULL };

		rc = cli(&out, &err, tail);
		cr_assert(rc == 0, "tail: %s", err);
		cr_assert(strchr(out, '\n') == out + strlen(out) - 1,
		    "tail: %s", out);
		cr_assert_str_eq(h_str(h_json(out), "mid"), mid);
	}
}

Test(agent, cli_fails_with_one_line_on_stderr)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	struct ag	*hous = ag_new(H_HOUSING, NULL);
	char		*out = NULL, *err = NULL, *bad, *wd;
	const char	*pub[] = { bin("ccagent"), "publish", "-c", carat->conf,
			    NULL, NULL };
	const char	*con[] = { bin("ccagent"), "consent", "grant", "-c",
			    hous->conf, NULL, NULL };
	const char	*trk[] = { bin("ccagent"), "track", "-c", carat->conf,
			    "not-a-uuid", NULL };
	const char	*use[] = { bin("ccagent"), "publish", NULL };
	const char	*hlp[] = { bin("ccagent"), "--help", NULL };
	int		 rc;

	cr_assert(asprintf(&bad, "%s/bad.json", h_dir(env)) != -1);
	h_keep_str(bad);
	spit(bad, "{\"type\": \"release-plan\", \"purpose\": \"leisure\"}");
	pub[4] = bad;
	rc = cli(&out, &err, pub);
	cr_assert(rc != 0);
	cr_assert(strchr(err, '\n') == err + strlen(err) - 1,
	    "not one line: '%s'", err);
	cr_assert(strstr(err, "invalid-field") != NULL ||
	    strstr(err, "missing-field") != NULL, "%s", err);

	/* Housing providers may not record consent (DESIGN §7 policy). */
	cr_assert(asprintf(&wd, "%s/g.json", h_dir(env)) != -1);
	h_keep_str(wd);
	spit(wd, h_dump(example("consent-grant.json")));
	con[5] = wd;
	rc = cli(&out, &err, con);
	cr_assert(rc != 0);
	cr_assert(strstr(err, "not-permitted") != NULL &&
	    strchr(err, '\n') == err + strlen(err) - 1, "'%s'", err);

	rc = cli(&out, &err, trk);
	cr_assert(rc != 0 && strchr(err, '\n') == err + strlen(err) - 1);
	rc = cli(&out, &err, use);
	cr_assert(rc != 0 && strchr(err, '\n') == err + strlen(err) - 1,
	    "'%s'", err);
	rc = cli(&out, &err, hlp);
	cr_assert(rc == 0 && strstr(out, "ccagent run") != NULL);
}

Test(agent, capi_example_publishes_and_receives)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	struct ag	*cjit = ag_new(H_CJIT, NULL);
	const char	*pub[] = { bin("ccagent-example"), "publish",
			    carat->conf, NULL, NULL };
	const char	*rcv[] = { bin("ccagent-example"), "receive",
			    cjit->conf, "1", "10", NULL };
	char		*out = NULL, *err = NULL, *file, mid[37];
	json_t		*ho, *rec;
	int		 rc;

	grant(carat, H_CJIT);
	/* A handover goes direct to cjit.leeds: no subscription needed. */
	ho = json_deep_copy(example("handover.json"));
	h_keep(ho);
	cr_assert(asprintf(&file, "%s/handover.json", h_dir(env)) != -1);
	h_keep_str(file);
	cr_assert(json_dump_file(ho, file, 0) == 0);
	pub[3] = file;
	rc = cli(&out, &err, pub);
	cr_assert(rc == 0, "example publish: %d %s", rc, err);
	cr_assert(strlen(out) == 37);
	snprintf(mid, sizeof(mid), "%.36s", out);
	rc = cli(&out, &err, rcv);
	cr_assert(rc == 0, "example receive: %d %s", rc, err);
	rec = h_json(out);
	cr_assert_str_eq(h_str(rec, "type"), "handover");
	cr_assert_str_eq(h_str(rec, "from"), H_CARAT);
	cr_assert_str_eq(h_str(rec, "mid"), mid);
	/* Acked: a second receiving session gets nothing more. */
	rcv[3] = "1";
	rcv[4] = "1";
	rc = cli(&out, &err, rcv);
	cr_assert(rc != 0 && strstr(err, "timeout") != NULL,
	    "redelivered after ack: %s", out);
}

Test(agent, consent_ops_from_the_examples_print_cid_and_version)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	struct ag	*cjit = ag_new(H_CJIT, NULL);
	const char	*wd[] = { bin("ccagent"), "consent", "withdraw", "-c",
			    cjit->conf, NULL, NULL };
	const char	*rf[] = { bin("ccagent"), "consent", "refuse", "-c",
			    carat->conf, NULL, NULL };
	char		*out = NULL, *err = NULL, *file, line[64];
	int		 rc;

	/* Two consents about the subject, then one withdrawal of both. */
	grant(carat, H_CJIT);
	grant(carat, H_PROBATION);
	cr_assert(asprintf(&file, "%s/withdraw.json", h_dir(env)) != -1);
	h_keep_str(file);
	spit(file, h_dump(example("consent-withdraw.json")));
	wd[5] = file;
	rc = cli(&out, &err, wd);
	cr_assert(rc == 0, "withdraw: %d %s", rc, err);
	cr_assert(strlen(out) == 2 * 39, "withdraw printed '%s'", out);
	cr_assert(out[37] == '2' && out[39 + 37] == '2', "'%s'", out);
	/* Nothing left to withdraw: the broker's refusal, one line. */
	rc = cli(&out, &err, wd);
	cr_assert(rc != 0 && strstr(err, "invalid-field") != NULL &&
	    strchr(err, '\n') == err + strlen(err) - 1, "'%s'", err);

	cr_assert(asprintf(&file, "%s/refuse.json", h_dir(env)) != -1);
	h_keep_str(file);
	spit(file, h_dump(example("consent-refuse.json")));
	rf[5] = file;
	rc = cli(&out, &err, rf);
	cr_assert(rc == 0, "refuse: %d %s", rc, err);
	snprintf(line, sizeof(line), "%.36s 1\n", h_str(h_json(slurp(file)),
	    "cid"));
	cr_assert_str_eq(out, line);
}

/*
 * A case system taking what its agent wrote to in/: each file is moved to
 * `taken` (a directory of the test's).  A record written to in/ again
 * after it was taken is a second delivery to the case system: counted in
 * *twice.  Returns how many were taken.
 */
static int
take_in(struct ag *a, const char *taken, int *twice)
{
	DIR		*d = opendir(path_of(a, "in", NULL));
	struct dirent	*de;
	struct stat	 sb;
	char		*src, *dst;
	int		 n = 0;

	cr_assert(d != NULL);
	while ((de = readdir(d)) != NULL) {
		if (!is_record(de->d_name))
			continue;
		src = path_of(a, "in", de->d_name);
		cr_assert(asprintf(&dst, "%s/%s", taken, de->d_name) != -1);
		if (stat(dst, &sb) == 0)
			(*twice)++;
		cr_assert(rename(src, dst) == 0, "%s: %s", src,
		    strerror(errno));
		free(dst);
		n++;
	}
	closedir(d);
	return n;
}

/*
 * Issue 11 item 2: the broker killed with SIGKILL at random moments
 * (CRASH_ROUNDS times, default 20) while the prison's agent publishes
 * continuously and two receiving agents take deliveries, and every fifth
 * round one of the agents killed too.  Afterwards every record the prison
 * dropped reached both case systems exactly once (none written to in/
 * again after the case system took it), and the audit chain verifies.
 */
Test(agent, broker_and_agents_killed_9_at_random_while_records_flow,
    .timeout = 600)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	struct ag	*cjit = ag_new(H_CJIT, "release-plan");
	struct ag	*prob = ag_new(H_PROBATION, "release-plan");
	struct ag	*recv[2] = { cjit, prob }, *all[3] = { carat, cjit, prob };
	const char	*s = getenv("CRASH_ROUNDS");
	char		 name[32], notes[32], taken[2][1200];
	int		 rounds = s != NULL && atoi(s) > 0 ? atoi(s) : 20;
	int		 r, i, n = 0, got[2] = { 0, 0 }, twice = 0, agkills = 0;
	unsigned	 seed = (unsigned)time(NULL);

	srand(seed);
	cr_log_info("seed %u", seed);
	for (i = 0; i < 2; i++) {
		snprintf(taken[i], sizeof(taken[i]), "%s/taken", recv[i]->dir);
		cr_assert(mkdir(taken[i], 0700) == 0);
	}
	ag_start(carat);
	ag_start(cjit);
	ag_start(prob);
	grant(carat, H_CJIT "," H_PROBATION);
	for (r = 0; r < rounds; r++) {
		/* Records keep coming; the broker dies somewhere among them. */
		for (i = 0; i < 3; i++, n++) {
			snprintf(name, sizeof(name), "plan-%03d.json", n);
			snprintf(notes, sizeof(notes), "seq %03d", n);
			drop(carat, name, release_plan(notes));
		}
		h_msleep(20 + rand() % 300);
		h_broker_kill9(env);
		if (r % 5 == 4) {
			struct ag *a = all[rand() % 3];

			ag_kill9(a);
			h_broker_start(env);
			ag_start(a);	/* waits for its welcome */
			agkills++;
		} else
			h_broker_start(env);
		for (i = 0; i < 2; i++)
			got[i] += take_in(recv[i], taken[i], &twice);
	}
	/* Then everything arrives, each once. */
	for (r = 0; r < 30000 / 50 && (got[0] < n || got[1] < n); r++) {
		h_msleep(50);
		for (i = 0; i < 2; i++)
			got[i] += take_in(recv[i], taken[i], &twice);
	}
	h_msleep(H_QUIET_MS);
	for (i = 0; i < 2; i++)
		got[i] += take_in(recv[i], taken[i], &twice);
	cr_log_info("%d broker kills, %d agent kills, %d records: cjit took "
	    "%d, probation %d", rounds, agkills, n, got[0], got[1]);
	cr_expect_eq(twice, 0, "%d records written to in/ again after the "
	    "case system took them", twice);
	for (i = 0; i < 2; i++)
		cr_expect_eq(got[i], n, "%s took %d of %d records:\n%s",
		    recv[i]->id, got[i], n, slurp(recv[i]->log));
	cr_expect_eq(count(carat, "out"), 0, "records left in out/");
	cr_expect_eq(h_ccbroker(env, NULL, NULL, "audit", "verify", "-c",
	    h_conf(env), NULL), 0, "audit chain broken by kill -9");
}

/* ------------------------------------------------------------- notices */

#define SI_FRAMES	8
#define SI_GAP_MS	30	/* between an ack and the next frame */
#define SI_NID1		"7c1e2d3f-4a5b-4c6d-8e9f-101010101010"
#define SI_NID2		"7c1e2d3f-4a5b-4c6d-8e9f-202020202020"
#define SI_NID3		"7c1e2d3f-4a5b-4c6d-8e9f-303030303030"
#define SI_MID		"0b6a4c57-1d2e-4f3a-9b8c-7d6e5f4a3b2c"
#define SI_CID		"d4c3b2a1-0f9e-4d8c-b7a6-958473625140"

/*
 * A stand-in broker for ccagent run, until the real one sends notices: it
 * welcomes and subscribes a session, then sends that session's script one
 * frame at a time, each SI_GAP_MS after the ack of the one before (so the
 * spool files it causes have distinct times), and notes every dseq acked.
 * The first session gets script 0, every later one script 1.
 */
struct standin {
	void		*ctx, *router;
	pthread_t	 tid;
	pthread_mutex_t	 lock;
	msgpack_sbuffer	 welcome, subscribed;
	msgpack_sbuffer	 frame[2][SI_FRAMES];
	uint64_t	 dseq[2][SI_FRAMES];
	size_t		 nframe[2];
	int		 sessions;	/* under lock, as below */
	uint64_t	 acked[4 * SI_FRAMES];
	size_t		 nacked;
	bool		 stop;
};

static void		 si_add(struct standin *, int, const char *, int);
static void		 si_start(struct standin *);
static void		*si_main(void *);
static size_t		 si_acks(struct standin *);
static bool		 si_wait_acks(struct standin *, size_t, int);
static void		 si_end(struct standin *);
static json_t		*si_json(const char *, int);
static json_t		*si_stored(const char *, int);
static pid_t		 tail_follow(struct ag *, const char *);
static json_t		*lines(const char *);

#define SI_WITHDRAWN(nid) "{'op':'notice','dseq':%d,'nid':'" nid "'," \
	"'kind':'consent-withdrawn','at':'2026-06-01T09:00:00Z'," \
	"'consents':[{'cid':'" SI_CID "','version':2}]," \
	"'mids':['" SI_MID "'],'subject':{'pnc':'" H_PNC_A "'}}"
#define SI_CORRECTED(nid) "{'op':'notice','dseq':%d,'nid':'" nid "'," \
	"'kind':'record-corrected','at':'2026-06-01T09:00:03Z'," \
	"'mid':'" SI_MID "','by':'1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f'," \
	"'from':'" H_CARAT "'}"
#define SI_RETRACTED(nid) "{'op':'notice','dseq':%d,'nid':'" nid "'," \
	"'kind':'record-retracted','at':'2026-06-01T09:00:04Z'," \
	"'mid':'" SI_MID "','from':'" H_CARAT "'," \
	"'reason':'Sent to the wrong agency.'}"
#define SI_DELIVER "{'op':'deliver','dseq':%d,'mid':'" SI_MID "'," \
	"'type':'release-plan','from':'" H_CARAT "'," \
	"'purpose':'continuity-of-care','subject':{},'area':'" H_AREA "'," \
	"'created':'2026-05-01T09:00:00Z'," \
	"'body':{'release_date':'2026-12-20'}," \
	"'consent':{'cid':'" SI_CID "','version':3}}"

/* A frame (single-quoted JSON, %d the dseq) as the broker sends it. */
static json_t *
si_json(const char *fmt, int dseq)
{
	char	text[2048], *p;

	snprintf(text, sizeof(text), fmt, dseq);
	for (p = text; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return h_json(text);
}

/* What a spool file holds of it: no op, v or dseq. */
static json_t *
si_stored(const char *fmt, int dseq)
{
	json_t	*j = json_deep_copy(si_json(fmt, dseq));

	h_keep(j);
	json_object_del(j, "op");
	json_object_del(j, "v");
	json_object_del(j, "dseq");
	return j;
}

static void
si_add(struct standin *s, int script, const char *fmt, int dseq)
{
	cr_assert(s->nframe[script] < SI_FRAMES);
	r_frame(si_json(fmt, dseq), &s->frame[script][s->nframe[script]]);
	s->dseq[script][s->nframe[script]++] = (uint64_t)dseq;
}

static void *
si_main(void *arg)
{
	struct standin	*s = arg;
	zmq_pollitem_t	 item = { s->router, 0, ZMQ_POLLIN, 0 };
	struct cc_msg	*m;
	struct cc_error	 e;
	char		 id[256], peer[256], buf[1 << 16];
	int		 idlen, peerlen = 0, len, script = 0;
	int64_t		 due = 0;
	uint64_t	 dseq;
	size_t		 next = 0;
	bool		 ready = false, waiting = false, stop = false;

	while (!stop) {
		if (ready && !waiting && next < s->nframe[script] &&
		    r_now_us() / 1000 >= due) {
			(void)zmq_send(s->router, peer, (size_t)peerlen,
			    ZMQ_SNDMORE);
			(void)zmq_send(s->router, s->frame[script][next].data,
			    s->frame[script][next].size, 0);
			next++;
			waiting = true;
		}
		if (zmq_poll(&item, 1, 10) > 0 &&
		    (idlen = zmq_recv(s->router, id, sizeof(id), 0)) != -1 &&
		    (len = zmq_recv(s->router, buf, sizeof(buf), 0)) != -1 &&
		    len <= (int)sizeof(buf) &&
		    proto_decode(buf, (size_t)len, SIZE_MAX, &m, &e) == 0) {
			switch (proto_op(m)) {
			case OP_HELLO:
				memcpy(peer, id, (size_t)idlen);
				peerlen = idlen;
				pthread_mutex_lock(&s->lock);
				script = s->sessions++ == 0 ? 0 : 1;
				pthread_mutex_unlock(&s->lock);
				next = 0;
				ready = waiting = false;
				(void)zmq_send(s->router, peer,
				    (size_t)peerlen, ZMQ_SNDMORE);
				(void)zmq_send(s->router, s->welcome.data,
				    s->welcome.size, 0);
				break;
			case OP_SUBSCRIBE:
				(void)zmq_send(s->router, peer,
				    (size_t)peerlen, ZMQ_SNDMORE);
				(void)zmq_send(s->router, s->subscribed.data,
				    s->subscribed.size, 0);
				ready = true;
				due = r_now_us() / 1000 + SI_GAP_MS;
				break;
			case OP_ACK:
				if (proto_get_u64(m, "dseq", &dseq) != 0)
					break;
				pthread_mutex_lock(&s->lock);
				if (s->nacked < sizeof(s->acked) /
				    sizeof(s->acked[0]))
					s->acked[s->nacked++] = dseq;
				pthread_mutex_unlock(&s->lock);
				if (waiting && next > 0 &&
				    dseq == s->dseq[script][next - 1]) {
					waiting = false;
					due = r_now_us() / 1000 + SI_GAP_MS;
				}
				break;
			default:
				break;
			}
			proto_msg_destroy(&m);
		}
		pthread_mutex_lock(&s->lock);
		stop = s->stop;
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

/*
 * Stop the real broker and listen on its port instead, with its key, so
 * that the agents' agent.conf reach the stand-in.
 */
static void
si_start(struct standin *s)
{
	uint8_t		 sec[32], pub[32];
	char		 z85[41], why[256], endpoint[64], *path;
	int		 one = 1, zero = 0, i;

	cr_assert_eq(h_broker_stop(env), 0);
	cr_assert(pthread_mutex_init(&s->lock, NULL) == 0);
	r_frame(h_jsonf("{\"op\":\"welcome\",\"agency\":\"%s\","
	    "\"type\":\"cjit\",\"areas\":[\"%s\"],\"max_size\":65536,"
	    "\"time\":\"2026-06-01T09:00:00Z\"}", H_CJIT, H_AREA),
	    &s->welcome);
	r_frame(h_jsonf("{\"op\":\"subscribed\",\"types\":[\"release-plan\"],"
	    "\"areas\":[\"%s\"]}", H_AREA), &s->subscribed);
	cr_assert(asprintf(&path, "%s/broker.key", h_pki(env)) != -1);
	cr_assert(pki_key_read(path, sec, pub, why, sizeof(why)) == 0, "%s",
	    why);
	free(path);
	pki_z85(sec, z85);
	cr_assert((s->ctx = zmq_ctx_new()) != NULL);
	cr_assert((s->router = zmq_socket(s->ctx, ZMQ_ROUTER)) != NULL);
	cr_assert(zmq_setsockopt(s->router, ZMQ_CURVE_SERVER, &one,
	    sizeof(one)) == 0);
	cr_assert(zmq_setsockopt(s->router, ZMQ_CURVE_SECRETKEY, z85,
	    40) == 0);
	cr_assert(zmq_setsockopt(s->router, ZMQ_LINGER, &zero,
	    sizeof(zero)) == 0);
	snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:%d",
	    h_port(env));
	/* The broker's port may linger a moment after it exits. */
	for (i = 0; zmq_bind(s->router, endpoint) == -1; i++) {
		cr_assert(i < 100, "bind %s: %s", endpoint,
		    zmq_strerror(errno));
		h_msleep(50);
	}
	cr_assert(pthread_create(&s->tid, NULL, si_main, s) == 0);
}

static size_t
si_acks(struct standin *s)
{
	size_t	n;

	pthread_mutex_lock(&s->lock);
	n = s->nacked;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static bool
si_wait_acks(struct standin *s, size_t n, int ms)
{
	int	i;

	for (i = 0; i < ms / 20 && si_acks(s) < n; i++)
		h_msleep(20);
	return si_acks(s) >= n;
}

static void
si_end(struct standin *s)
{
	size_t	i, k;

	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_mutex_unlock(&s->lock);
	cr_assert(pthread_join(s->tid, NULL) == 0);
	zmq_close(s->router);
	zmq_ctx_term(s->ctx);
	msgpack_sbuffer_destroy(&s->welcome);
	msgpack_sbuffer_destroy(&s->subscribed);
	for (k = 0; k < 2; k++)
		for (i = 0; i < s->nframe[k]; i++)
			msgpack_sbuffer_destroy(&s->frame[k][i]);
	pthread_mutex_destroy(&s->lock);
}

/* `ccagent tail -f` in the background, stdout to `out`. */
static pid_t
tail_follow(struct ag *a, const char *out)
{
	pid_t	pid;
	int	fd;

	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == 0) {
		if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
			_exit(126);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		execl(bin("ccagent"), "ccagent", "tail", "-f", "-c", a->conf,
		    (char *)NULL);
		_exit(127);
	}
	cr_assert(pid > 0);
	return pid;
}

/* The JSON lines of a text, as an array (each line must parse). */
static json_t *
lines(const char *text)
{
	json_t		*all = h_keep(json_array());
	const char	*p = text, *nl;
	char		*line;

	while (p != NULL && *p != '\0' && (nl = strchr(p, '\n')) != NULL) {
		line = strndup(p, (size_t)(nl - p));
		cr_assert(line != NULL);
		json_array_append(all, h_json(line));
		free(line);
		p = nl + 1;
	}
	cr_assert(p == NULL || *p == '\0', "a line without its end: '%s'", p);
	return all;
}

/*
 * Issue 19, the agent's side: each notice is written once, atomically, to
 * notices/NID.json (the frame without op, v and dseq) and acked; a second
 * copy of a nid, in the same session or after kill -9 and a restart, is
 * acked and never written again; notices/ is made as in/ is; and tail
 * prints records and notices in arrival order, a notice as
 * {"notice": {...}}, with -f following both folders.
 */
Test(agent, notices_are_written_once_to_notices_and_acked)
{
	static const uint64_t	 acks[] = { 1, 2, 3, 4, 1, 5 };
	struct standin		 s;
	struct ag		*cjit = ag_new(H_CJIT, "release-plan");
	struct stat		 st1, st2, din, dnt, fin, fnt;
	const char		*log, *last, *out;
	char			*tailout;
	json_t			*got, *ln, *want[4];
	pid_t			 tpid;
	size_t			 i;
	int			 status, tries;

	memset(&s, 0, sizeof(s));
	/* First session: a notice, a record, the notice again, another. */
	si_add(&s, 0, SI_WITHDRAWN(SI_NID1), 1);
	si_add(&s, 0, SI_DELIVER, 2);
	si_add(&s, 0, SI_WITHDRAWN(SI_NID1), 3);
	si_add(&s, 0, SI_CORRECTED(SI_NID2), 4);
	/* After the restart: the first notice once more, then a new one. */
	si_add(&s, 1, SI_WITHDRAWN(SI_NID1), 1);
	si_add(&s, 1, SI_RETRACTED(SI_NID3), 5);
	si_start(&s);
	ag_start(cjit);

	cr_assert(si_wait_acks(&s, 4, WAIT_MS), "%zu acks:\n%s", si_acks(&s),
	    slurp(cjit->log));
	h_msleep(H_QUIET_MS);
	cr_assert_eq(count(cjit, "notices"), 2, "%s", slurp(cjit->log));
	cr_assert_eq(count(cjit, "in"), 1);
	cr_assert_eq(count(cjit, "receipts"), 0);
	got = folder_json(cjit, "notices");
	cr_assert(json_equal(json_object_get(got, SI_NID1 ".json"),
	    si_stored(SI_WITHDRAWN(SI_NID1), 1)), "%s", h_dump(got));
	cr_assert(json_equal(json_object_get(got, SI_NID2 ".json"),
	    si_stored(SI_CORRECTED(SI_NID2), 4)), "%s", h_dump(got));
	log = slurp(cjit->log);
	cr_assert_eq(occurs(log, "notice nid=" SI_NID1 " kind=consent-withdrawn",
	    &last), 1, "%s", log);
	cr_assert_eq(occurs(log, "duplicate notices/" SI_NID1 ".json dropped",
	    &last), 1, "%s", log);
	/* notices/ is made as in/ is, and so are its files. */
	cr_assert(stat(path_of(cjit, "in", NULL), &din) == 0 &&
	    stat(path_of(cjit, "notices", NULL), &dnt) == 0);
	cr_assert_eq(dnt.st_mode, din.st_mode);
	cr_assert(stat(path_of(cjit, "in", SI_MID ".json"), &fin) == 0);
	cr_assert(stat(path_of(cjit, "notices", SI_NID1 ".json"), &st1) == 0);
	cr_assert(stat(path_of(cjit, "notices", SI_NID2 ".json"), &fnt) == 0);
	cr_assert_eq(fnt.st_mode, fin.st_mode);

	/* tail -f from here; then the receiver is killed and comes back. */
	cr_assert(asprintf(&tailout, "%s/tail.out", cjit->dir) != -1);
	h_keep_str(tailout);
	tpid = tail_follow(cjit, tailout);
	h_msleep(300);
	ag_kill9(cjit);
	ag_start(cjit);
	cr_assert(si_wait_acks(&s, 6, WAIT_MS), "%zu acks:\n%s", si_acks(&s),
	    slurp(cjit->log));
	h_msleep(H_QUIET_MS);
	pthread_mutex_lock(&s.lock);
	cr_assert_eq(s.nacked, sizeof(acks) / sizeof(acks[0]));
	for (i = 0; i < s.nacked; i++)
		cr_assert_eq(s.acked[i], acks[i], "ack %zu is of dseq %llu",
		    i, (unsigned long long)s.acked[i]);
	pthread_mutex_unlock(&s.lock);
	cr_assert_eq(count(cjit, "notices"), 3);
	cr_assert_eq(count(cjit, "tmp"), 0);
	/* The copy after the restart did not touch the file. */
	cr_assert(stat(path_of(cjit, "notices", SI_NID1 ".json"), &st2) == 0);
	cr_assert(st2.st_ino == st1.st_ino &&
	    st2.st_mtim.tv_sec == st1.st_mtim.tv_sec &&
	    st2.st_mtim.tv_nsec == st1.st_mtim.tv_nsec,
	    "notices/%s.json was written again", SI_NID1);
	log = slurp(cjit->log);
	cr_assert_eq(occurs(log, "notice nid=" SI_NID1 " kind=", &last), 1);
	cr_assert_eq(occurs(log, "duplicate notices/" SI_NID1 ".json dropped",
	    &last), 2, "%s", log);

	/* Records and notices in the order they came. */
	want[0] = json_pack("{s:O}", "notice",
	    si_stored(SI_WITHDRAWN(SI_NID1), 1));
	want[1] = json_incref(si_stored(SI_DELIVER, 2));
	want[2] = json_pack("{s:O}", "notice",
	    si_stored(SI_CORRECTED(SI_NID2), 4));
	want[3] = json_pack("{s:O}", "notice",
	    si_stored(SI_RETRACTED(SI_NID3), 5));
	for (i = 0; i < 4; i++)
		h_keep(want[i]);
	{
		const char *tail[] = { bin("ccagent"), "tail", "-c",
		    cjit->conf, NULL };
		char *err = NULL, *o = NULL;

		cr_assert(cli(&o, &err, tail) == 0, "tail: %s", err);
		ln = lines(o);
		cr_assert_eq(json_array_size(ln), 4, "tail:\n%s", o);
		for (i = 0; i < 4; i++)
			cr_assert(json_equal(json_array_get(ln, i), want[i]),
			    "line %zu: %s", i, h_dump(json_array_get(ln, i)));
	}
	/* tail -f printed the three listed, then the one that came. */
	for (tries = 0; tries < WAIT_MS / 50; tries++) {
		out = slurp(tailout);
		if (out != NULL && occurs(out, "\n", &last) >= 4)
			break;
		h_msleep(50);
	}
	h_msleep(H_QUIET_MS);
	kill(tpid, SIGTERM);
	cr_assert(waitpid(tpid, &status, 0) == tpid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "tail -f did not stop cleanly");
	out = slurp(tailout);
	ln = lines(out);
	cr_assert_eq(json_array_size(ln), 4, "tail -f:\n%s", out);
	for (i = 0; i < 4; i++)
		cr_assert(json_equal(json_array_get(ln, i), want[i]),
		    "tail -f line %zu: %s", i, h_dump(json_array_get(ln, i)));
	cr_assert_str_eq(h_str(json_array_get(ln, 3), "notice.nid"), SI_NID3);
	ag_stop(cjit);
	si_end(&s);
}

/*
 * Issue 19 end to end: a consent withdrawn after the recipient's agent
 * stored and acked a record made under it reaches that agent as exactly
 * one notices/NID.json of kind consent-withdrawn naming the record's mid
 * and the consent; nothing is written to the sender's notices/, and
 * nothing more to in/.
 */
Test(agent, consent_withdrawn_after_delivery_is_one_notice_naming_the_mid)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	struct ag	*cjit = ag_new(H_CJIT, "release-plan");
	const char	*wd[] = { bin("ccagent"), "consent", "withdraw", "-c",
			    carat->conf, NULL, NULL };
	const char	*key, *cid;
	char		*out = NULL, *err = NULL, *file, mid[37], name[48];
	json_t		*in, *nt, *n, *v;
	int		 rc;

	ag_start(carat);
	ag_start(cjit);
	grant(carat, H_CJIT);
	cr_assert(asprintf(&file, "%s/grant.json", h_dir(env)) != -1);
	cid = h_str(h_json(slurp(h_keep_str(file))), "cid");
	cr_assert(cid != NULL);
	drop(carat, "plan-0001.json", release_plan(NULL));
	cr_assert(wait_count(cjit, "in", 1, WAIT_MS), "not delivered:\n%s",
	    slurp(cjit->log));
	in = folder_json(cjit, "in");
	json_object_foreach(in, key, v)
		snprintf(mid, sizeof(mid), "%.36s", key);
	/* The ack is in once the sender has its `delivered` receipt. */
	cr_assert(wait_count(carat, "receipts", 1, WAIT_MS), "no receipt:\n%s",
	    slurp(carat->log));
	cr_assert_str_eq(h_str(json_object_iter_value(json_object_iter(
	    folder_json(carat, "receipts"))), "state"), "delivered");

	cr_assert(asprintf(&file, "%s/withdraw.json", h_dir(env)) != -1);
	h_keep_str(file);
	spit(file, h_dump(example("consent-withdraw.json")));
	wd[5] = file;
	rc = cli(&out, &err, wd);
	cr_assert(rc == 0, "withdraw: %d %s", rc, err);

	cr_assert(wait_count(cjit, "notices", 1, WAIT_MS), "no notice:\n%s",
	    slurp(cjit->log));
	h_msleep(H_QUIET_MS);
	cr_assert_eq(count(cjit, "notices"), 1);
	cr_assert_eq(count(cjit, "in"), 1);
	cr_assert_eq(count(carat, "notices"), 0);
	nt = folder_json(cjit, "notices");
	json_object_foreach(nt, key, n) {
		snprintf(name, sizeof(name), "%s.json", h_str(n, "nid"));
		cr_assert_str_eq(key, name);
		cr_assert_str_eq(h_str(n, "kind"), "consent-withdrawn",
		    "%s", h_dump(n));
		cr_assert(h_has_str(h_get(n, "mids"), mid), "%s", h_dump(n));
		cr_assert(h_str(n, "consents.0.cid") != NULL &&
		    strcmp(h_str(n, "consents.0.cid"), cid) == 0, "%s",
		    h_dump(n));
		cr_assert(h_get(n, "op") == NULL && h_get(n, "v") == NULL &&
		    h_get(n, "dseq") == NULL, "wire fields: %s", h_dump(n));
	}
	ag_stop(carat);
	ag_stop(cjit);
}

Test(agent, retract_reaches_the_recipient_as_a_notice)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	struct ag	*cjit = ag_new(H_CJIT, "release-plan");
	const char	*rt[] = { bin("ccagent"), "retract", "-c", carat->conf,
			    NULL, "sent about the wrong client", NULL };
	const char	*key;
	char		*out = NULL, *err = NULL, mid[37];
	json_t		*in, *nt, *n, *v;
	int		 rc;

	ag_start(carat);
	ag_start(cjit);
	grant(carat, H_CJIT);
	drop(carat, "plan-0001.json", release_plan(NULL));
	cr_assert(wait_count(cjit, "in", 1, WAIT_MS), "not delivered:\n%s",
	    slurp(cjit->log));
	in = folder_json(cjit, "in");
	json_object_foreach(in, key, v)
		snprintf(mid, sizeof(mid), "%.36s", key);
	cr_assert(wait_count(carat, "receipts", 1, WAIT_MS), "no receipt:\n%s",
	    slurp(carat->log));

	rt[4] = mid;
	rc = cli(&out, &err, rt);
	cr_assert(rc == 0, "retract: %d %s", rc, err);
	cr_assert(strstr(out, "retracted") != NULL, "%s", out);
	cr_assert(wait_count(cjit, "notices", 1, WAIT_MS), "no notice:\n%s",
	    slurp(cjit->log));
	nt = folder_json(cjit, "notices");
	json_object_foreach(nt, key, n) {
		cr_assert_str_eq(h_str(n, "kind"), "record-retracted");
		cr_assert_str_eq(h_str(n, "mid"), mid);
		cr_assert_str_eq(h_str(n, "reason"),
		    "sent about the wrong client");
	}
	/* Another agency's mid, or none: refused, exit non-zero. */
	rt[3] = cjit->conf;
	rc = cli(&out, &err, rt);
	cr_assert(rc != 0, "another agency retracted: %s", out);
	cr_assert(strstr(err, "invalid-field") != NULL, "%s", err);
	rt[4] = "not-a-uuid";
	cr_assert(cli(&out, &err, rt) != 0);
	ag_stop(carat);
	ag_stop(cjit);
}

/* ---- issue 19: a file of a mid already sent ---- */

/* One file dropped by the reused-mid test. */
struct dropped {
	char	name[48];
	int	rec;		/* the record (mid) it carries */
	bool	changed;	/* another record than the mid's first */
};

/*
 * A release plan with its mid and created given; `variant` changes the
 * given name (another record), `created` only the creation time.
 */
static const char *
plan_of(int rec, int variant, int created)
{
	json_t	*rp = json_deep_copy(example("release-plan.json"));
	char	 mid[37], given[32], at[32];

	h_keep(rp);
	snprintf(mid, sizeof(mid), "00000000-0000-4000-8000-%012d", rec);
	snprintf(given, sizeof(given), "r%d v%d", rec, variant);
	snprintf(at, sizeof(at), "2026-11-20T10:%02d:00Z", created % 60);
	json_object_set_new(rp, "mid", json_string(mid));
	json_object_set_new(rp, "created", json_string(at));
	json_object_set_new(h_get(rp, "body.person"), "given_name",
	    json_string(given));
	return h_keep_str(json_dumps(rp, JSON_INDENT(2)));
}

/* The record of a filed file without `created`, for comparing. */
static json_t *
record_of(struct ag *a, const char *folder, const char *name)
{
	const char	*text = slurp(path_of(a, folder, name));
	json_t		*j;

	cr_assert_not_null(text, "%s/%s missing", folder, name);
	j = h_keep(json_deep_copy(h_json(text)));
	json_object_del(j, "created");
	return j;
}

/* Until out/ is empty and n files are filed (each with its answer), or
 * two minutes. */
static void
wait_filed(struct ag *a, int n)
{
	int	i;

	for (i = 0; i < 120000 / 50; i++) {
		if (count(a, "out") == 0 && count(a, "sent") / 2 +
		    count(a, "rejected") / 2 >= n)
			return;
		h_msleep(50);
	}
	cr_log_warn("after two minutes: out/ %d, sent/ %d, rejected/ %d of "
	    "%d files", count(a, "out"), count(a, "sent"),
	    count(a, "rejected"), n);
}

/* Drop n files: new records, or the mid of an earlier one (the same
 * record, only its created changed, or another record). */
static void
drop_mixed(struct ag *a, struct dropped *d, int *nd, int n, int *nrec,
    const char *prefix)
{
	int	i, k, r;

	for (i = 0; i < n; i++, (*nd)++) {
		struct dropped *f = &d[*nd];

		r = rand() % 100;
		snprintf(f->name, sizeof(f->name), "%s%04d.json", prefix, *nd);
		f->changed = false;
		if (*nrec == 0 || r < 45) {
			f->rec = (*nrec)++;
			drop(a, f->name, plan_of(f->rec, 0, 0));
			continue;
		}
		f->rec = rand() % *nrec;
		k = rand() % 3;
		f->changed = k == 2;
		drop(a, f->name, plan_of(f->rec, f->changed ? 1 + *nd : 0,
		    k == 1 ? 1 + *nd : 0));
	}
}

/*
 * DESIGN §6: no file leaves out/ without landing in sent/ (accepted) or
 * rejected/ (with its error), whatever its mid.  A thousand files (or
 * REUSED_MID_FILES), many of mids already dropped: the same record, only
 * created changed, or another record; more of them after the first were
 * filed (re-drops under a new name and under the same one); more while
 * the agent is stopped.  Each dropped name is then filed exactly once;
 * every file of one mid in sent/ is one record, every one in rejected/
 * another record refused at `mid`; out/ is empty.  (Before issue 19 an
 * agent removed a file of a mid it had seen with a log line only.)
 */
Test(agent, every_file_of_a_reused_mid_lands_in_sent_or_rejected_once,
    .timeout = 600)
{
	struct ag	*carat = ag_new(H_CARAT, NULL);
	const char	*s = getenv("REUSED_MID_FILES");
	int		 total = s != NULL && atoi(s) >= 40 ? atoi(s) : 1000;
	struct dropped	*d = calloc((size_t)total + 64, sizeof(*d));
	json_t		*first, *rec, *err;
	char		 name[64], mid[37];
	int		 nd = 0, nrec = 0, i, j, nsent = 0, nrej = 0;
	int		 same = 0;
	unsigned	 seed = (unsigned)time(NULL);
	bool		 in_sent, in_rej;

	cr_assert_not_null(d);
	srand(seed);
	cr_log_info("seed %u, %d files", seed, total);
	ag_start(carat);

	/* Most of them at once. */
	drop_mixed(carat, d, &nd, total * 8 / 10, &nrec, "f");
	wait_filed(carat, nd);

	/* Files filed already, dropped again: under the same name (the
	 * same file), under a new one, and changed. */
	for (i = 0, j = nd; i < j && nd < total * 9 / 10; i++) {
		if (d[i].changed || !spool_has(carat, "sent", d[i].name))
			continue;
		d[nd] = d[i];
		drop(carat, d[nd].name, plan_of(d[i].rec, 0, 0));
		same++;
		nd++;
		d[nd].rec = d[i].rec;
		d[nd].changed = (nd % 2) == 0;
		snprintf(d[nd].name, sizeof(d[nd].name), "again%04d.json", nd);
		drop(carat, d[nd].name, plan_of(d[i].rec, d[nd].changed ?
		    1 + nd : 0, 0));
		nd++;
	}
	/* The rest while the agent is stopped: sent when it starts. */
	ag_stop(carat);
	drop_mixed(carat, d, &nd, total - nd, &nrec, "g");
	ag_start(carat);
	wait_filed(carat, nd);
	h_msleep(H_QUIET_MS);

	/* Every file once: the record and its answer, nothing else. */
	cr_expect_eq(count(carat, "out"), 0);
	cr_expect_eq(count(carat, "sent") + count(carat, "rejected"), 2 * nd,
	    "%d files dropped, %d filed in sent/ and %d in rejected/ (each "
	    "with its answer)", nd, count(carat, "sent"),
	    count(carat, "rejected"));
	for (i = 0; i < nd; i++) {
		/* A name dropped twice is filed the second time tagged. */
		for (j = 0; j < i && strcmp(d[j].name, d[i].name) != 0; j++)
			;
		snprintf(mid, sizeof(mid), "00000000-0000-4000-8000-%012d",
		    d[i].rec);
		if (j < i)
			snprintf(name, sizeof(name), "%.*s.%s.json",
			    (int)strlen(d[i].name) - 5, d[i].name, mid);
		else
			snprintf(name, sizeof(name), "%s", d[i].name);
		in_sent = spool_has(carat, "sent", name);
		in_rej = spool_has(carat, "rejected", name);
		cr_expect(in_sent != in_rej, "%s: %s", name, in_sent ?
		    "in sent/ and rejected/" : "in neither sent/ nor "
		    "rejected/");
		nsent += in_sent;
		nrej += in_rej;
	}
	cr_log_info("%d files of %d records (%d dropped again under their "
	    "name): %d sent, %d rejected", nd, nrec, same, nsent, nrej);

	/* One record per mid in sent/; the others refused at mid. */
	for (i = 0; i < nd; i++) {
		for (j = 0; j < i && strcmp(d[j].name, d[i].name) != 0; j++)
			;
		if (j < i)
			continue;
		snprintf(mid, sizeof(mid), "00000000-0000-4000-8000-%012d",
		    d[i].rec);
		first = NULL;
		for (j = 0; j < nd && first == NULL; j++)
			if (d[j].rec == d[i].rec &&
			    spool_has(carat, "sent", d[j].name))
				first = record_of(carat, "sent", d[j].name);
		cr_assert_not_null(first, "record %d: no file in sent/",
		    d[i].rec);
		if (spool_has(carat, "sent", d[i].name)) {
			rec = record_of(carat, "sent", d[i].name);
			cr_expect(json_equal(rec, first), "%s: another record "
			    "of mid %s accepted: %s", d[i].name, mid,
			    h_dump(rec));
			snprintf(name, sizeof(name), "%s.accepted.json",
			    d[i].name);
			cr_expect_str_eq(h_str(record_of(carat, "sent", name),
			    "mid"), mid);
			continue;
		}
		rec = record_of(carat, "rejected", d[i].name);
		cr_expect(!json_equal(rec, first), "%s: the record of mid %s "
		    "refused", d[i].name, mid);
		snprintf(name, sizeof(name), "%s.error.json", d[i].name);
		err = record_of(carat, "rejected", name);
		cr_expect_str_eq(h_str(err, "code"), "invalid-field", "%s: %s",
		    d[i].name, h_dump(err));
		cr_expect_str_eq(h_str(err, "field"), "mid", "%s", d[i].name);
		cr_expect_str_eq(h_str(err, "mid"), mid, "%s", d[i].name);
	}
	cr_expect_gt(nrej, 0, "no changed record came after its first");
	free(d);
	ag_stop(carat);
}
