/*
 * test_agent.c - ccagent against a real broker: spool folders, durable
 * outbox across a broker outage, exactly-once delivery across kill -9 of
 * the receiving agent, track, tail, the CLI's errors and the C API
 * example program (issue 8); and the crash test of issue 11: the broker
 * and the agents killed at random while records flow (CRASH_ROUNDS).
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "../lib/harness.h"

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
