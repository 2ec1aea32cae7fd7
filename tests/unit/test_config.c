/*
 * test_config.c - broker.conf and agent.conf through the table-driven
 * INI loader: values, defaults, the policy of DESIGN §7 and every kind of
 * refusal, each naming file:line or the key.
 */
#include <sys/stat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../../broker/config.h"
#include "../../agent/config.h"
#include "iniconf.h"

static char	tdir[PATH_MAX];		/* this test's directory */

static void	setup(void);
static void	teardown(void);
static void	touch(const char *);
static const char *conf_write(const char *, const char *);

/* The [broker] keys every valid broker.conf here needs. */
#define BROKER_PATHS \
	"data = data\n" \
	"certificate = broker.crt\n" \
	"key = broker.key\n" \
	"ca = ca.crt\n" \
	"crl = ca.crl\n" \
	"agencies = agencies\n"

#define AGENT_PATHS \
	"broker_certificate = broker.crt\n" \
	"ca = ca.crt\n" \
	"certificate = cjit.crt\n" \
	"key = cjit.key\n" \
	"data = data\n" \
	"spool = spool\n"

static void
setup(void)
{
	char	p[PATH_MAX + 32];

	snprintf(tdir, sizeof(tdir), "%s/cc-config-XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	cr_assert_not_null(mkdtemp(tdir));
	touch("broker.crt");
	touch("broker.key");
	touch("ca.crt");
	touch("ca.crl");
	touch("cjit.crt");
	touch("cjit.key");
	snprintf(p, sizeof(p), "%s/agencies", tdir);
	cr_assert_eq(mkdir(p, 0755), 0);
}

static void
teardown(void)
{
	char	cmd[PATH_MAX + 16];

	if (getenv("KEEP") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
		cr_assert_eq(system(cmd), 0);
	}
}

static void
touch(const char *name)
{
	char	 p[PATH_MAX + 32];
	FILE	*fp;

	snprintf(p, sizeof(p), "%s/%s", tdir, name);
	cr_assert_not_null(fp = fopen(p, "w"));
	fclose(fp);
}

/* Write text to a file of the test directory; returns its path. */
static const char *
conf_write(const char *name, const char *text)
{
	static char	 p[PATH_MAX + 32];
	FILE		*fp;

	snprintf(p, sizeof(p), "%s/%s", tdir, name);
	cr_assert_not_null(fp = fopen(p, "w"));
	cr_assert_eq(fputs(text, fp) >= 0, 1);
	cr_assert_eq(fclose(fp), 0);
	return p;
}

TestSuite(config, .init = setup, .fini = teardown);

Test(config, broker_full_file_is_read)
{
	struct broker_conf	 bc;
	const struct agency_conf *a;
	const char		*path;
	char			 err[512], want[PATH_MAX + 32];

	path = conf_write("broker.conf",
	    "; the example broker\n"
	    "[broker]\n"
	    "bind = tcp://0.0.0.0:7451\n"
	    BROKER_PATHS
	    "map_size_mb = 64\n"
	    "retention_days = 7\n"
	    "max_size = 131072\n"
	    "window = 16\n"
	    "handshake_rate = 5\n"
	    "handshake_burst = 7\n"
	    "user = ccbroker\n"
	    "\n"
	    "[agency.cjit.leeds]\n"
	    "areas = E08000035, E08000032\n"
	    "[agency.carat.hmp-leeds]\n"
	    "areas =\n");
	cr_assert_eq(broker_conf_load(path, &bc, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_str_eq(bc.path, path);
	cr_assert_str_eq(bc.bind, "tcp://0.0.0.0:7451");
	snprintf(want, sizeof(want), "%s/data", tdir);
	cr_assert_str_eq(bc.data, want, "relative to the file's directory");
	snprintf(want, sizeof(want), "%s/ca.crl", tdir);
	cr_assert_str_eq(bc.crl, want);
	snprintf(want, sizeof(want), "%s/agencies", tdir);
	cr_assert_str_eq(bc.agencies, want);
	cr_assert_eq(bc.map_size_mb, 64);
	cr_assert_eq(bc.retention_days, 7);
	cr_assert_eq(bc.max_size, 131072);
	cr_assert_eq(bc.window, 16);
	cr_assert_eq(bc.handshake_rate, 5);
	cr_assert_eq(bc.handshake_burst, 7);
	cr_assert_str_eq(bc.user, "ccbroker");
	cr_assert_eq(bc.nagency, 2);
	cr_assert_not_null(a = broker_conf_agency(&bc, "cjit.leeds"));
	cr_assert_eq(a->nareas, 2);
	cr_assert_str_eq(a->areas[0], "E08000035");
	cr_assert_str_eq(a->areas[1], "E08000032");
	cr_assert_not_null(a = broker_conf_agency(&bc, "carat.hmp-leeds"));
	cr_assert_eq(a->nareas, 0);
	cr_assert_null(broker_conf_agency(&bc, "probation.leeds"));
	broker_conf_free(&bc);
	cr_assert_null(bc.agency);
}

Test(config, broker_defaults_fill_what_is_left_out)
{
	struct broker_conf	bc;
	char			err[512];

	cr_assert_eq(broker_conf_load(conf_write("b.conf",
	    "[broker]\n" BROKER_PATHS), &bc, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(bc.bind, "tcp://127.0.0.1:7450");
	cr_assert_str_eq(bc.user, "");
	cr_assert_eq(bc.handshake_rate, 20);
	cr_assert_eq(bc.handshake_burst, 50);
	cr_assert_eq(bc.map_size_mb, 1024);
	cr_assert_eq(bc.retention_days, 30);
	cr_assert_eq(bc.max_size, 65536);
	cr_assert_eq(bc.window, 256);
	cr_assert_eq(bc.nagency, 0);
	broker_conf_free(&bc);
}

#define PUB(t)	(1u << (t))
#define COMMUNITY (CATSET(CAT_IDENTITY) | CATSET(CAT_CRIMINAL_JUSTICE) | \
	CATSET(CAT_TREATMENT_SUMMARY) | CATSET(CAT_HOUSING) | \
	CATSET(CAT_HOUSING_ADDRESS) | CATSET(CAT_CONTACTS))

/* DESIGN §7, restated here independently of broker/config.c. */
static const struct {
	enum cc_atype	type;
	unsigned	publish;
	cc_catset	receive;
	bool		record_consent;
} policy_cases[] = {
	{ AT_PRISON_CARAT, PUB(RT_RELEASE_PLAN) | PUB(RT_HANDOVER) |
	    PUB(RT_REFERRAL), CATSET_ALL, true },
	{ AT_CJIT, PUB(RT_REFERRAL) | PUB(RT_HOUSING_STATUS), CATSET_ALL,
	    true },
	{ AT_PROBATION, 0, COMMUNITY | CATSET(CAT_CJ_IDENTIFIERS), true },
	{ AT_HOUSING_PROVIDER, PUB(RT_HOUSING_STATUS),
	    COMMUNITY | CATSET(CAT_NARRATIVE), false },
	{ AT_LA_HOUSING, PUB(RT_HOUSING_STATUS),
	    COMMUNITY | CATSET(CAT_NARRATIVE), false },
	{ AT_TREATMENT_PROVIDER, 0, CATSET_ALL, false },
	{ AT_HACS, PUB(RT_REFERRAL) | PUB(RT_HOUSING_STATUS),
	    CATSET_ALL & ~CATSET(CAT_TREATMENT_CLINICAL), false },
	{ AT_BROKER, 0, 0, false },
};

Test(config, default_policy_is_design_section_7)
{
	struct broker_conf	bc;
	struct policy		p;
	char			err[512];
	size_t			i;

	cr_assert_eq(sizeof(policy_cases) / sizeof(policy_cases[0]),
	    AT__COUNT);
	cr_assert_eq(broker_conf_load(conf_write("b.conf",
	    "[broker]\n" BROKER_PATHS), &bc, err, sizeof(err)), 0, "%s", err);
	for (i = 0; i < AT__COUNT; i++) {
		policy_default(policy_cases[i].type, &p);
		cr_assert_eq(p.publish, policy_cases[i].publish, "type %zu", i);
		cr_assert_eq(p.receive, policy_cases[i].receive, "type %zu", i);
		cr_assert_eq(p.record_consent, policy_cases[i].record_consent,
		    "type %zu", i);
		cr_assert_eq(memcmp(&p, &bc.policy[policy_cases[i].type],
		    sizeof(p)), 0, "loaded policy of type %zu", i);
	}
	broker_conf_free(&bc);
}

Test(config, policy_section_overrides_only_its_keys)
{
	struct broker_conf	bc;
	struct policy		p;
	char			err[512];

	cr_assert_eq(broker_conf_load(conf_write("b.conf",
	    "[broker]\n" BROKER_PATHS
	    "[policy.housing-provider]\n"
	    "receive = identity, housing\n"
	    "[policy.probation]\n"
	    "publish =\n"
	    "record_consent = no\n"
	    "[policy.hacs]\n"
	    "receive = all\n"
	    "publish = housing-status\n"
	    "record_consent = yes\n"), &bc, err, sizeof(err)), 0, "%s", err);

	p = bc.policy[AT_HOUSING_PROVIDER];
	cr_assert_eq(p.receive, CATSET(CAT_IDENTITY) | CATSET(CAT_HOUSING));
	cr_assert_eq(p.publish, PUB(RT_HOUSING_STATUS), "publish untouched");
	cr_assert_eq(p.record_consent, false);

	p = bc.policy[AT_PROBATION];
	cr_assert_eq(p.publish, 0);
	cr_assert_eq(p.record_consent, false);
	cr_assert_eq(p.receive, COMMUNITY | CATSET(CAT_CJ_IDENTIFIERS),
	    "receive untouched");

	p = bc.policy[AT_HACS];
	cr_assert_eq(p.receive, CATSET_ALL);
	cr_assert_eq(p.publish, PUB(RT_HOUSING_STATUS));
	cr_assert_eq(p.record_consent, true);

	policy_default(AT_CJIT, &p);
	cr_assert_eq(memcmp(&p, &bc.policy[AT_CJIT], sizeof(p)), 0,
	    "other types keep the defaults");
	broker_conf_free(&bc);
}

Test(config, section_given_again_reads_on)
{
	struct broker_conf	 bc;
	const struct agency_conf *a;
	char			 err[512];

	cr_assert_eq(broker_conf_load(conf_write("b.conf",
	    "[broker]\n" BROKER_PATHS
	    "[agency.cjit.leeds]\n"
	    "[policy.cjit]\n"
	    "record_consent = no\n"
	    "[broker]\n"
	    "window = 4\n"
	    "[agency.cjit.leeds]\n"
	    "areas = E08000035\n"
	    "[policy.cjit]\n"
	    "publish = referral\n"), &bc, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(bc.window, 4);
	cr_assert_eq(bc.nagency, 1, "one entry for the agency");
	cr_assert_not_null(a = broker_conf_agency(&bc, "cjit.leeds"));
	cr_assert_eq(a->nareas, 1);
	cr_assert_eq(bc.policy[AT_CJIT].record_consent, false);
	cr_assert_eq(bc.policy[AT_CJIT].publish, PUB(RT_REFERRAL));
	broker_conf_free(&bc);
}

Test(config, blanks_before_keys_and_long_section_names_are_read)
{
	struct broker_conf	bc;
	char			err[512], text[1024];
	const char		*id = "a-rather-long-agency-identifier-"
				    "beyond-fifty.example";

	snprintf(text, sizeof(text), "[broker]\n" BROKER_PATHS
	    "  window = 8\n"
	    "\tretention_days = 9\n"
	    "[agency.%s]\n"
	    "areas = W06000015\n", id);
	cr_assert_eq(broker_conf_load(conf_write("b.conf", text), &bc, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(bc.window, 8);
	cr_assert_eq(bc.retention_days, 9);
	cr_assert_eq(bc.nagency, 1);
	cr_assert_str_eq(bc.agency[0].id, id);
	broker_conf_free(&bc);
}

/* Broker files refused, with the exact line of the error. */
static const struct {
	const char	*name;
	const char	*text;
	const char	*err;		/* after "PATH" */
} broker_bad[] = {
	{ "unknown key",
	  "[broker]\n" BROKER_PATHS "colour = blue\n",
	  ":8: unknown key 'colour' in [broker]" },
	{ "unknown section",
	  "[broker]\n" BROKER_PATHS "[brokers]\nbind = x\n",
	  ":8: unknown section [brokers]" },
	{ "unknown empty section",
	  "[broker]\n" BROKER_PATHS "[agencies]\n",
	  ":8: unknown section [agencies]" },
	{ "unknown key in a prefixed section",
	  "[broker]\n" BROKER_PATHS "[agency.cjit.leeds]\nareas =\nsize = 1\n",
	  ":10: unknown key 'size' in [agency.cjit.leeds]" },
	{ "missing required key",
	  "[broker]\ndata = data\ncertificate = broker.crt\nkey = broker.key\n"
	  "agencies = agencies\n",
	  ": missing required key 'ca' in [broker]" },
	{ "missing required key of an agency",
	  "[broker]\n" BROKER_PATHS "[agency.cjit.leeds]\n[policy.cjit]\n",
	  ": missing required key 'areas' in [agency.cjit.leeds]" },
	{ "missing section",
	  "[policy.cjit]\nrecord_consent = yes\n",
	  ": missing section [broker]" },
	{ "key outside a section",
	  "bind = tcp://127.0.0.1:1\n[broker]\n" BROKER_PATHS,
	  ":1: key 'bind' outside any section" },
	{ "bad area code",
	  "[broker]\n" BROKER_PATHS "[agency.cjit.leeds]\n"
	  "areas = E08000035, X0800003\n",
	  ":9: areas: 'X0800003' is not an ONS area code (like E08000035)" },
	{ "short area code",
	  "[broker]\n" BROKER_PATHS "[agency.cjit.leeds]\nareas = E0800003\n",
	  ":9: areas: 'E0800003' is not an ONS area code (like E08000035)" },
	{ "area listed twice",
	  "[broker]\n" BROKER_PATHS "[agency.cjit.leeds]\n"
	  "areas = E08000035,E08000035\n",
	  ":9: areas: area E08000035 listed twice" },
	{ "empty list item",
	  "[broker]\n" BROKER_PATHS "[agency.cjit.leeds]\n"
	  "areas = E08000035,,E08000032\n",
	  ":9: areas: empty item in list" },
	{ "bad agency id",
	  "[broker]\n" BROKER_PATHS "[agency.CJIT]\nareas =\n",
	  ":8: [agency.CJIT]: 'CJIT' is not an agency id ([a-z0-9.-]{3,64})" },
	{ "unknown agency type",
	  "[broker]\n" BROKER_PATHS "[policy.wizard]\nreceive = all\n",
	  ":8: [policy.wizard]: 'wizard' is not an agency type" },
	{ "bad record type",
	  "[broker]\n" BROKER_PATHS "[policy.cjit]\npublish = handover, memo\n",
	  ":9: publish: 'memo' is not a record type" },
	{ "bad category",
	  "[broker]\n" BROKER_PATHS "[policy.cjit]\nreceive = identity, dna\n",
	  ":9: receive: 'dna' is not a data category" },
	{ "bad boolean",
	  "[broker]\n" BROKER_PATHS "[policy.cjit]\nrecord_consent = maybe\n",
	  ":9: record_consent: 'maybe' is not yes or no" },
	{ "number out of range",
	  "[broker]\n" BROKER_PATHS "retention_days = 0\n",
	  ":8: retention_days: '0' is out of range 1..3650" },
	{ "not a number",
	  "[broker]\n" BROKER_PATHS "window = -5\n",
	  ":8: window: '-5' is not a number" },
	{ "number with trailing words",
	  "[broker]\n" BROKER_PATHS "map_size_mb = 64 MB\n",
	  ":8: map_size_mb: '64 MB' is not a number" },
	{ "key given twice",
	  "[broker]\n" BROKER_PATHS "window = 1\nwindow = 2\n",
	  ":9: key 'window' given twice in [broker]" },
	{ "key given twice in a section given again",
	  "[broker]\n" BROKER_PATHS "window = 1\n[policy.cjit]\n[broker]\n"
	  "window = 2\n",
	  ":11: key 'window' given twice in [broker]" },
	{ "unknown key in a section given again",
	  "[broker]\n" BROKER_PATHS "[agency.cjit.leeds]\nareas =\n"
	  "[broker]\ncolour = blue\n",
	  ":11: unknown key 'colour' in [broker]" },
	{ "agency area given twice across its sections",
	  "[broker]\n" BROKER_PATHS "[agency.cjit.leeds]\nareas =\n"
	  "[agency.la.leeds]\nareas =\n[agency.cjit.leeds]\nareas = E08000035\n",
	  ":13: key 'areas' given twice in [agency.cjit.leeds]" },
	{ "line without a value",
	  "[broker]\n" BROKER_PATHS "window\ncolour = blue\n",
	  ":8: expected 'key = value'" },
	{ "unterminated section",
	  "[broker]\n" BROKER_PATHS "[policy.cjit\nreceive = all\n",
	  ":8: missing ']' in section header" },
	{ "comments and blank lines count",
	  "# broker\n\n[broker] ; main\n" BROKER_PATHS "\n; x\nwindow = 0\n",
	  ":12: window: '0' is out of range 1..65536" },
	{ "directory named as a file",
	  "[broker]\ndata = data\ncertificate = agencies\nkey = broker.key\n"
	  "ca = ca.crt\nagencies = agencies\n",
	  ":3: certificate: TDIR/agencies: not a regular file" },
	{ "missing file",
	  "[broker]\ndata = data\ncertificate = broker.crt\nkey = broker.key\n"
	  "ca = nope.crt\nagencies = agencies\n",
	  ":5: ca: TDIR/nope.crt: No such file or directory" },
	{ "no CRL",
	  "[broker]\ndata = data\ncertificate = broker.crt\nkey = broker.key\n"
	  "ca = ca.crt\nagencies = agencies\n",
	  ": missing required key 'crl' in [broker]" },
	{ "empty CRL",
	  "[broker]\ndata = data\ncertificate = broker.crt\nkey = broker.key\n"
	  "ca = ca.crt\nagencies = agencies\ncrl =\n",
	  ":7: crl: must not be empty" },
	{ "file named as the agencies directory",
	  "[broker]\ndata = data\ncertificate = broker.crt\nkey = broker.key\n"
	  "ca = ca.crt\nagencies = ca.crt\n",
	  ":6: agencies: TDIR/ca.crt: not a directory" },
	{ "empty required value",
	  "[broker]\ndata =\ncertificate = broker.crt\nkey = broker.key\n"
	  "ca = ca.crt\nagencies = agencies\n",
	  ":2: data: must not be empty" },
};

Test(config, broker_refusals_name_file_and_line)
{
	struct broker_conf	 bc;
	char			 err[512], want[1024], exp[512], *t;
	const char		*path;
	size_t			 i;

	for (i = 0; i < sizeof(broker_bad) / sizeof(broker_bad[0]); i++) {
		path = conf_write("bad.conf", broker_bad[i].text);
		/* TDIR in the expected text stands for the test directory. */
		snprintf(exp, sizeof(exp), "%s", broker_bad[i].err);
		if ((t = strstr(exp, "TDIR")) != NULL) {
			char rest[512];

			snprintf(rest, sizeof(rest), "%s", t + 4);
			snprintf(t, sizeof(exp) - (size_t)(t - exp), "%s%s",
			    tdir, rest);
		}
		snprintf(want, sizeof(want), "%s%s", path, exp);
		err[0] = '\0';
		cr_expect_eq(broker_conf_load(path, &bc, err, sizeof(err)), -1,
		    "%s: accepted", broker_bad[i].name);
		cr_expect_str_eq(err, want, "%s", broker_bad[i].name);
		cr_expect_null(bc.agency, "%s: freed", broker_bad[i].name);
	}
}

/* The CRL is required but read by the broker (auth_load), so that `stats`
 * and `audit` still run while it is being replaced. */
Test(config, crl_file_not_there_yet_is_left_to_the_broker)
{
	struct broker_conf	bc;
	char			err[512], want[PATH_MAX + 32];

	cr_assert_eq(broker_conf_load(conf_write("b.conf",
	    "[broker]\ndata = data\ncertificate = broker.crt\n"
	    "key = broker.key\nca = ca.crt\nagencies = agencies\n"
	    "crl = gone.crl\n"), &bc, err, sizeof(err)), 0, "%s", err);
	snprintf(want, sizeof(want), "%s/gone.crl", tdir);
	cr_assert_str_eq(bc.crl, want);
	broker_conf_free(&bc);
}

Test(config, overlong_line_is_refused)
{
	struct broker_conf	 bc;
	char			 err[512], text[1024], want[PATH_MAX + 64];
	const char		*path;

	snprintf(text, sizeof(text), "[broker]\n" BROKER_PATHS
	    "user = %0250d\n", 0);
	path = conf_write("long.conf", text);
	cr_assert_eq(broker_conf_load(path, &bc, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:8: line longer than 198 characters",
	    path);
	cr_assert_str_eq(err, want);

	/* The longest line that fits: 198 characters and the newline. */
	snprintf(text, sizeof(text), "[broker]\n" BROKER_PATHS
	    "bind = tcp://%0*d\n", 198 - 13, 0);
	cr_assert_eq(broker_conf_load(conf_write("long.conf", text), &bc, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(strlen(bc.bind), 198 - 7);
	broker_conf_free(&bc);
}

Test(config, missing_file_is_named)
{
	struct broker_conf	bc;
	char			err[512], path[PATH_MAX + 32], want[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/none.conf", tdir);
	cr_assert_eq(broker_conf_load(path, &bc, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	cr_assert_str_eq(err, want);
}

Test(config, agent_file_is_read)
{
	struct agent_conf	 ac;
	const char		*path;
	char			 err[512], want[PATH_MAX + 32];

	path = conf_write("agent.conf",
	    "[agent]\n"
	    "broker = tcp://broker.example:7450\n"
	    AGENT_PATHS
	    "crl = ca.crl\n"
	    "subscribe = housing-status, release-plan\n"
	    "areas = E08000035,E08000032\n"
	    "user = ccagent\n");
	cr_assert_eq(agent_conf_load(path, &ac, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_str_eq(ac.path, path);
	cr_assert_str_eq(ac.broker, "tcp://broker.example:7450");
	snprintf(want, sizeof(want), "%s/cjit.key", tdir);
	cr_assert_str_eq(ac.key, want);
	snprintf(want, sizeof(want), "%s/spool", tdir);
	cr_assert_str_eq(ac.spool, want);
	snprintf(want, sizeof(want), "%s/ca.crl", tdir);
	cr_assert_str_eq(ac.crl, want);
	cr_assert_eq(ac.subscribe, PUB(RT_HOUSING_STATUS) |
	    PUB(RT_RELEASE_PLAN));
	cr_assert_eq(ac.nareas, 2);
	cr_assert_str_eq(ac.areas[0], "E08000035");
	cr_assert_str_eq(ac.areas[1], "E08000032");
	cr_assert_str_eq(ac.user, "ccagent");
}

Test(config, agent_defaults_and_empty_lists)
{
	struct agent_conf	ac;
	char			err[512];

	cr_assert_eq(agent_conf_load(conf_write("a.conf",
	    "[agent]\n" AGENT_PATHS "subscribe =\n"), &ac, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_str_eq(ac.broker, "tcp://127.0.0.1:7450");
	cr_assert_str_eq(ac.crl, "");
	cr_assert_eq(ac.subscribe, 0);
	cr_assert_eq(ac.nareas, 0);
}

static const struct {
	const char	*name;
	const char	*text;
	const char	*err;
} agent_bad[] = {
	{ "unknown key",
	  "[agent]\n" AGENT_PATHS "receive = all\n",
	  ":8: unknown key 'receive' in [agent]" },
	{ "unknown section",
	  "[agent]\n" AGENT_PATHS "[broker]\n",
	  ":8: unknown section [broker]" },
	{ "missing required key",
	  "[agent]\nbroker_certificate = broker.crt\nca = ca.crt\n"
	  "certificate = cjit.crt\ndata = data\nspool = spool\n",
	  ": missing required key 'key' in [agent]" },
	{ "bad record type",
	  "[agent]\n" AGENT_PATHS "subscribe = housing-status,gossip\n",
	  ":8: subscribe: 'gossip' is not a record type" },
	{ "bad area",
	  "[agent]\n" AGENT_PATHS "areas = e08000035\n",
	  ":8: areas: 'e08000035' is not an ONS area code (like E08000035)" },
	{ "missing section",
	  "; nothing\n",
	  ": missing section [agent]" },
};

Test(config, agent_refusals_name_file_and_line)
{
	struct agent_conf	 ac;
	char			 err[512], want[1024];
	const char		*path;
	size_t			 i;

	for (i = 0; i < sizeof(agent_bad) / sizeof(agent_bad[0]); i++) {
		path = conf_write("bad.conf", agent_bad[i].text);
		snprintf(want, sizeof(want), "%s%s", path, agent_bad[i].err);
		err[0] = '\0';
		cr_expect_eq(agent_conf_load(path, &ac, err, sizeof(err)), -1,
		    "%s: accepted", agent_bad[i].name);
		cr_expect_str_eq(err, want, "%s", agent_bad[i].name);
	}
}

static int
collect(void *arg, const char *s, size_t len, char *why, size_t whylen)
{
	char	*out = arg;

	(void)why;
	(void)whylen;
	strncat(out, "<", 2);
	strncat(out, s, len);
	strncat(out, ">", 2);
	return 0;
}

Test(config, list_items_are_trimmed)
{
	static const struct {
		const char	*in;
		int		 rc;
		const char	*out;
	} cases[] = {
		{ "", 0, "" },
		{ "  \t", 0, "" },
		{ "a", 0, "<a>" },
		{ " a ,b\t, c d ", 0, "<a><b><c d>" },
		{ "a,", -1, "<a>" },
		{ ",a", -1, "" },
	};
	char	out[128], why[128];
	size_t	i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out[0] = '\0';
		cr_expect_eq(iniconf_list(cases[i].in, collect, out, why,
		    sizeof(why)), cases[i].rc, "'%s'", cases[i].in);
		cr_expect_str_eq(out, cases[i].out, "'%s'", cases[i].in);
	}
}
