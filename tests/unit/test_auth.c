/*
 * test_auth.c - the agency directory and the ZAP handler, over real
 * CURVE connections with the keys of a freshly made partnership.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <zmq.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "pki.h"
#include "pki_testutil.h"

#define ENV_P		"CC_TEST_AUTH_PARTNERSHIP"
#define PUMP_MS		3000	/* an admitted client gets through by then */
#define QUIET_MS	800	/* a refused one is watched this long */

static const char	*pdir;
static char		 confpath[PATH_MAX + 64];

/* What the refusal callback saw. */
struct refusals {
	int	calls;
	bool	agency_null;
	char	agency[CC_ID_MAX + 1];
	char	fp[17];
	char	reason[64];
	char	address[64];
};

/* What the router received from the client, if anything. */
struct arrival {
	bool	got;
	char	user_id[CC_ID_MAX + 1];
	char	type[32];
	char	body[16];
};

static void	setup(void);
static void	load(struct broker_conf *, struct auth *);
static void	on_refused(void *, const char *, const char *, const char *,
		    const char *);
static void	zap_try(struct auth *, const char *, time_t, int,
		    struct arrival *, struct refusals *);

/*
 * Once per run: a partnership plus an expired agency, the broker's own
 * certificate in the agency directory, a file that is no certificate and
 * a CRL of the CA past its next update (past.crl).
 */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	if (tu_mkpart(ENV_P, "auth",
	    "sh \"$M\" -i old.leeds cjit . --not-before 20200101000000Z "
	    "--not-after 20210101000000Z && "
	    "cp broker.crt agencies/broker.crt && "
	    "echo 'not a certificate' >agencies/notes.txt && "
	    "cp ca.crl keep.crl && "
	    "sh \"$M\" -g --not-before 20200101000000Z "
	    "--not-after 20210101000000Z . && mv ca.crl past.crl && "
	    "mv keep.crl ca.crl && ") == -1)
		unsetenv(ENV_P);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	tu_rmpart(ENV_P);
}

static void
setup(void)
{
	FILE	*fp;

	log_init("test_auth", LOG_LVL_WARN);
	pdir = tu_dir(ENV_P);
	cr_assert_not_null(pdir, "no partnership was made (see stderr)");
	snprintf(confpath, sizeof(confpath), "%s/broker-%d.conf", pdir,
	    (int)getpid());
	cr_assert_not_null(fp = fopen(confpath, "w"));
	fputs("[broker]\n"
	    "data = data\n"
	    "certificate = broker.crt\n"
	    "key = broker.key\n"
	    "ca = ca.crt\n"
	    "crl = ca.crl\n"
	    "agencies = agencies\n"
	    "[agency.cjit.leeds]\n"
	    "areas = E08000035\n"
	    "[agency.carat.hmp-leeds]\n"
	    "areas = E08000035, E08000032\n", fp);
	cr_assert_eq(fclose(fp), 0);
}

TestSuite(auth, .init = setup, .timeout = 60);

static void
load(struct broker_conf *bc, struct auth *a)
{
	char	err[512];

	cr_assert_eq(broker_conf_load(confpath, bc, err, sizeof(err)), 0,
	    "%s", err);
	memset(a, 0, sizeof(*a));
	cr_assert_eq(auth_load(a, bc, err, sizeof(err)), 0, "%s", err);
}

Test(auth, load_keeps_exactly_the_valid_agencies)
{
	static const struct {
		const char	*id;
		int		 type;
		size_t		 nareas;	/* (size_t)-1: no section */
	} valid[] = {
		{ "carat.hmp-leeds", AT_PRISON_CARAT, 2 },
		{ "cjit.leeds", AT_CJIT, 1 },
		{ "housing.leeds-hostels", AT_HOUSING_PROVIDER, (size_t)-1 },
		{ "la.leeds", AT_LA_HOUSING, (size_t)-1 },
		{ "probation.leeds", AT_PROBATION, (size_t)-1 },
	};
	static const struct {
		const char	*id;
		const char	*reason;
	} bad[] = {
		{ "broker.example", "a broker, not an agency" },
		{ "old.leeds", "expired" },
		{ "revoked.agency", "revoked" },
	};
	struct broker_conf	bc;
	struct auth		a;
	size_t			i, j;

	load(&bc, &a);
	cr_assert_eq(a.nagency, sizeof(valid) / sizeof(valid[0]));
	for (i = 0; i < a.nagency; i++) {
		cr_expect_str_eq(a.agency[i].cert.cn, valid[i].id);
		cr_expect_eq(a.agency[i].cert.type, valid[i].type);
		if (valid[i].nareas == (size_t)-1)
			cr_expect_null(a.agency[i].conf, "%s", valid[i].id);
		else {
			cr_assert_not_null(a.agency[i].conf, "%s", valid[i].id);
			cr_expect_eq(a.agency[i].conf->nareas, valid[i].nareas);
		}
	}
	cr_assert_eq(a.nbad, sizeof(bad) / sizeof(bad[0]));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (j = 0; j < a.nbad; j++)
			if (strcmp(a.bad[j].cert.cn, bad[i].id) == 0)
				break;
		cr_assert_lt(j, a.nbad, "%s not refused", bad[i].id);
		cr_expect_str_eq(a.bad[j].reason, bad[i].reason, "%s",
		    bad[i].id);
	}
	auth_clear(&a);
	cr_assert_eq(a.nagency, 0);
	cr_assert_null(a.agency);
	broker_conf_free(&bc);
}

Test(auth, agency_lookup_respects_validity_at_the_time_given)
{
	struct broker_conf	 bc;
	struct auth		 a;
	const struct agency	*ag;
	time_t			 now = time(NULL);

	load(&bc, &a);
	cr_assert_not_null(ag = auth_agency(&a, "cjit.leeds", now));
	cr_assert_str_eq(ag->cert.cn, "cjit.leeds");
	cr_assert_eq(ag->cert.type, AT_CJIT);
	cr_assert_not_null(auth_agency(&a, "cjit.leeds", ag->cert.not_after));
	cr_assert_null(auth_agency(&a, "cjit.leeds", ag->cert.not_after + 1));
	cr_assert_null(auth_agency(&a, "cjit.leeds", ag->cert.not_before - 1));
	cr_assert_null(auth_agency(&a, "revoked.agency", now));
	cr_assert_null(auth_agency(&a, "old.leeds", now));
	cr_assert_null(auth_agency(&a, "broker.example", now));
	cr_assert_null(auth_agency(&a, "nobody.leeds", now));
	auth_clear(&a);
	broker_conf_free(&bc);
}

Test(auth, failed_reload_keeps_the_running_set)
{
	struct broker_conf	bc, broken;
	struct auth		a;
	char			err[512];
	void			*zap = (void *)&a;	/* a marker only */

	load(&bc, &a);
	a.zap = zap;
	a.refused = 7;
	broken = bc;
	snprintf(broken.ca, sizeof(broken.ca), "%s/none.crt", pdir);
	cr_assert_eq(auth_load(&a, &broken, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "none.crt: No such file"), "%s", err);
	cr_assert_eq(a.nagency, 5);
	cr_assert_eq(a.zap, zap);
	cr_assert_eq(a.refused, 7);

	/* A successful load into the live struct keeps zap and the count. */
	cr_assert_eq(auth_load(&a, &bc, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.nagency, 5);
	cr_assert_eq(a.zap, zap);
	cr_assert_eq(a.refused, 7);
	a.zap = NULL;
	auth_clear(&a);
	broker_conf_free(&bc);
}

/* DESIGN §3: no CRL in force, no agency set (and the running one kept). */
Test(auth, load_refuses_a_crl_not_in_force_and_keeps_the_running_set)
{
	static const struct {
		const char	*crl;		/* "": none */
		const char	*want;
	} cases[] = {
		{ "past.crl", "past.crl: CRL past its next update "
		    "(2021-01-01T00:00:00.000Z)" },
		{ "notes.crl", "notes.crl: No such file or directory" },
		{ "", ": no crl: a CRL is required" },
	};
	struct broker_conf	bc, bad;
	struct auth		a;
	char			err[512];
	size_t			i;

	load(&bc, &a);
	cr_assert_gt(a.crl_next_update, time(NULL) + 29 * 86400);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad = bc;
		snprintf(bad.crl, sizeof(bad.crl), "%s%s%s",
		    cases[i].crl[0] != '\0' ? pdir : "",
		    cases[i].crl[0] != '\0' ? "/" : "", cases[i].crl);
		err[0] = '\0';
		cr_expect_eq(auth_load(&a, &bad, err, sizeof(err)), -1,
		    "%s: loaded", cases[i].crl);
		cr_expect(strstr(err, cases[i].want) != NULL, "%s: '%s'",
		    cases[i].crl, err);
		cr_expect_eq(a.nagency, 5);
		cr_expect_gt(a.crl_next_update, time(NULL) + 29 * 86400);
		cr_expect_not(auth_crl_expired(&a, time(NULL)));
	}
	cr_expect(auth_crl_expired(&a, time(NULL) + 31 * 86400));
	auth_clear(&a);
	broker_conf_free(&bc);
}

static void
on_refused(void *arg, const char *agency, const char *fp, const char *reason,
    const char *address)
{
	struct refusals	*r = arg;

	r->calls++;
	r->agency_null = agency == NULL;
	snprintf(r->agency, sizeof(r->agency), "%s",
	    agency != NULL ? agency : "");
	snprintf(r->fp, sizeof(r->fp), "%s", fp);
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	snprintf(r->address, sizeof(r->address), "%s", address);
}

static void
setkey(void *s, int opt, const uint8_t key[32])
{
	cr_assert_eq(zmq_setsockopt(s, opt, key, 32), 0, "%s",
	    zmq_strerror(errno));
}

/*
 * Run a CURVE ROUTER with the broker's key and our ZAP handler, connect a
 * DEALER with the key in `keyfile` (or a fresh one when NULL), send one
 * message and answer ZAP requests, judged at `now`, until the message
 * arrives or `ms` pass.
 */
static void
zap_try(struct auth *a, const char *keyfile, time_t now, int ms,
    struct arrival *arr, struct refusals *ref)
{
	void		*ctx, *router, *dealer;
	uint8_t		 bsec[32], bpub[32], csec[32], cpub[32];
	char		 err[512], ep[256], z[2][41];
	const char	*p;
	size_t		 eplen = sizeof(ep);
	zmq_pollitem_t	 items[2];
	zmq_msg_t	 id, body;
	struct timespec	 t0, t;
	int		 one = 1, zero = 0, more;

	memset(arr, 0, sizeof(*arr));
	memset(ref, 0, sizeof(*ref));
	cr_assert_eq(pki_key_read(tu_path(pdir, "broker.key"), bsec, bpub,
	    err, sizeof(err)), 0, "%s", err);
	if (keyfile != NULL) {
		cr_assert_eq(pki_key_read(keyfile, csec, cpub, err,
		    sizeof(err)), 0, "%s", err);
	} else {
		cr_assert_eq(zmq_curve_keypair(z[0], z[1]), 0);
		cr_assert_not_null(zmq_z85_decode(cpub, z[0]));
		cr_assert_not_null(zmq_z85_decode(csec, z[1]));
	}

	cr_assert_not_null(ctx = zmq_ctx_new());
	cr_assert_eq(auth_zap_bind(a, ctx), 0);
	cr_assert_not_null(router = zmq_socket(ctx, ZMQ_ROUTER));
	cr_assert_eq(zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one,
	    sizeof(one)), 0);
	setkey(router, ZMQ_CURVE_SECRETKEY, bsec);
	cr_assert_eq(zmq_setsockopt(router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN,
	    strlen(ZAP_DOMAIN)), 0);
	cr_assert_eq(zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero)),
	    0);
	cr_assert_eq(zmq_bind(router, "tcp://127.0.0.1:*"), 0, "%s",
	    zmq_strerror(errno));
	cr_assert_eq(zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &eplen), 0);

	cr_assert_not_null(dealer = zmq_socket(ctx, ZMQ_DEALER));
	setkey(dealer, ZMQ_CURVE_SERVERKEY, bpub);
	setkey(dealer, ZMQ_CURVE_PUBLICKEY, cpub);
	setkey(dealer, ZMQ_CURVE_SECRETKEY, csec);
	cr_assert_eq(zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof(zero)),
	    0);
	cr_assert_eq(zmq_connect(dealer, ep), 0);
	cr_assert_eq(zmq_send(dealer, "hello", 5, ZMQ_DONTWAIT), 5, "%s",
	    zmq_strerror(errno));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
			break;
		items[0].socket = a->zap;
		items[0].events = ZMQ_POLLIN;
		items[1].socket = router;
		items[1].events = ZMQ_POLLIN;
		cr_assert_geq(zmq_poll(items, 2, 50), 0);
		if (items[0].revents & ZMQ_POLLIN)
			while (auth_zap_handle(a, now, on_refused, ref) == 1)
				;
		if (!(items[1].revents & ZMQ_POLLIN))
			continue;
		zmq_msg_init(&id);
		zmq_msg_init(&body);
		cr_assert_geq(zmq_msg_recv(&id, router, 0), 0);
		cr_assert_eq(zmq_msg_more(&id), 1);
		cr_assert_geq(zmq_msg_recv(&body, router, 0), 0);
		more = zmq_msg_more(&body);
		cr_assert_eq(more, 0);
		arr->got = true;
		snprintf(arr->body, sizeof(arr->body), "%.*s",
		    (int)zmq_msg_size(&body), (char *)zmq_msg_data(&body));
		if ((p = zmq_msg_gets(&body, "User-Id")) != NULL)
			snprintf(arr->user_id, sizeof(arr->user_id), "%s", p);
		if ((p = zmq_msg_gets(&body, "Agency-Type")) != NULL)
			snprintf(arr->type, sizeof(arr->type), "%s", p);
		zmq_msg_close(&id);
		zmq_msg_close(&body);
		break;
	}
	cr_assert_eq(zmq_close(dealer), 0);
	cr_assert_eq(zmq_close(router), 0);
	auth_zap_close(a);
	cr_assert_null(a->zap);
	cr_assert_eq(zmq_ctx_term(ctx), 0);
}

Test(auth, valid_agency_gets_through_with_its_id_and_type)
{
	struct broker_conf	bc;
	struct auth		a;
	struct arrival		arr;
	struct refusals		ref;

	load(&bc, &a);
	zap_try(&a, tu_path(pdir, "keys/cjit.leeds.key"), time(NULL), PUMP_MS,
	    &arr, &ref);
	cr_assert(arr.got, "the client's message never arrived");
	cr_assert_str_eq(arr.body, "hello");
	cr_assert_str_eq(arr.user_id, "cjit.leeds");
	cr_assert_str_eq(arr.type, "cjit");
	cr_assert_eq(ref.calls, 0);
	cr_assert_eq(a.refused, 0);

	zap_try(&a, tu_path(pdir, "keys/carat.hmp-leeds.key"), time(NULL),
	    PUMP_MS, &arr, &ref);
	cr_assert(arr.got);
	cr_assert_str_eq(arr.user_id, "carat.hmp-leeds");
	cr_assert_str_eq(arr.type, "prison-carat");
	auth_clear(&a);
	broker_conf_free(&bc);
}

/* Clients that never get through, and what the refusal says. */
static const struct {
	const char	*key;		/* NULL: a key no certificate has */
	const char	*agency;	/* NULL: unknown */
	const char	*reason;
	time_t		 shift;		/* seconds added to now */
} refused_cases[] = {
	{ "keys/revoked.agency.key", "revoked.agency", "revoked", 0 },
	{ "keys/old.leeds.key", "old.leeds", "expired", 0 },
	{ NULL, NULL, "unknown key", 0 },
	{ "keys/cjit.leeds.key", "cjit.leeds", "expired", 40 * 86400 },
	{ "keys/cjit.leeds.key", "cjit.leeds", "not yet valid", -86400 },
};

Test(auth, refused_clients_never_get_through)
{
	struct broker_conf	bc;
	struct auth		a;
	struct arrival		arr;
	struct refusals		ref;
	uint64_t		before;
	size_t			i;

	load(&bc, &a);
	for (i = 0; i < sizeof(refused_cases) / sizeof(refused_cases[0]);
	    i++) {
		before = a.refused;
		zap_try(&a, refused_cases[i].key != NULL ?
		    tu_path(pdir, refused_cases[i].key) : NULL,
		    time(NULL) + refused_cases[i].shift, QUIET_MS, &arr, &ref);
		cr_expect_not(arr.got, "case %zu got through as '%s'", i,
		    arr.user_id);
		cr_expect_geq(ref.calls, 1, "case %zu: no refusal", i);
		cr_expect_eq(a.refused - before, (uint64_t)ref.calls,
		    "case %zu: refusals counted", i);
		if (refused_cases[i].agency == NULL)
			cr_expect(ref.agency_null, "case %zu: agency '%s'", i,
			    ref.agency);
		else
			cr_expect_str_eq(ref.agency, refused_cases[i].agency,
			    "case %zu", i);
		cr_expect_str_eq(ref.reason, refused_cases[i].reason,
		    "case %zu", i);
		cr_expect_eq(strlen(ref.fp), 16, "case %zu: fingerprint", i);
	}
	auth_clear(&a);
	broker_conf_free(&bc);
}

Test(auth, zap_request_for_another_domain_or_mechanism_is_refused)
{
	struct broker_conf	 bc;
	struct auth		 a;
	struct refusals		 ref;
	void			*ctx, *req;
	char			 buf[8][64];
	int			 len[8], n, more;
	size_t			 ms = sizeof(more);
	uint8_t			 key[32];
	static const struct {
		const char	*domain;
		const char	*mech;
		const char	*status;
		const char	*text;
	} cases[] = {
		{ "other", "CURVE", "400", "wrong ZAP domain" },
		{ ZAP_DOMAIN, "PLAIN", "400", "not CURVE" },
		{ ZAP_DOMAIN, "CURVE", "400", "unknown key" },
	};
	size_t			 i;

	load(&bc, &a);
	memset(key, 0x42, sizeof(key));
	cr_assert_not_null(ctx = zmq_ctx_new());
	cr_assert_eq(auth_zap_bind(&a, ctx), 0);
	cr_assert_eq(auth_zap_handle(&a, time(NULL), on_refused, &ref), 0,
	    "nothing pending");
	cr_assert_not_null(req = zmq_socket(ctx, ZMQ_REQ));
	cr_assert_eq(zmq_connect(req, ZAP_ENDPOINT), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&ref, 0, sizeof(ref));
		cr_assert_eq(zmq_send(req, "1.0", 3, ZMQ_SNDMORE), 3);
		cr_assert_eq(zmq_send(req, "42", 2, ZMQ_SNDMORE), 2);
		cr_assert_geq(zmq_send(req, cases[i].domain,
		    strlen(cases[i].domain), ZMQ_SNDMORE), 0);
		cr_assert_eq(zmq_send(req, "10.0.0.1", 8, ZMQ_SNDMORE), 8);
		cr_assert_eq(zmq_send(req, "", 0, ZMQ_SNDMORE), 0);
		cr_assert_eq(zmq_send(req, cases[i].mech,
		    strlen(cases[i].mech), ZMQ_SNDMORE), 5);
		cr_assert_eq(zmq_send(req, key, 32, 0), 32);
		cr_assert_eq(auth_zap_handle(&a, time(NULL), on_refused, &ref),
		    1);
		n = 0;
		do {
			cr_assert_lt(n, 8);
			len[n] = zmq_recv(req, buf[n], sizeof(buf[n]) - 1, 0);
			cr_assert_geq(len[n], 0);
			buf[n][len[n] < 63 ? len[n] : 63] = '\0';
			cr_assert_eq(zmq_getsockopt(req, ZMQ_RCVMORE, &more,
			    &ms), 0);
			n++;
		} while (more);
		cr_assert_eq(n, 6, "a reply has six frames");
		cr_expect_str_eq(buf[0], "1.0");
		cr_expect_str_eq(buf[1], "42", "request id echoed");
		cr_expect_str_eq(buf[2], cases[i].status);
		cr_expect_str_eq(buf[3], cases[i].text);
		cr_expect_eq(len[4], 0, "no user id");
		cr_expect_eq(ref.calls, 1);
		cr_expect_str_eq(ref.reason, cases[i].text);
		cr_expect_str_eq(ref.address, "10.0.0.1");
		cr_expect_eq(strlen(ref.fp), 16, "fingerprint of the key");
	}
	cr_assert_eq(a.refused, 3);
	cr_assert_eq(zmq_close(req), 0);
	auth_zap_close(&a);
	cr_assert_eq(zmq_ctx_term(ctx), 0);
	auth_clear(&a);
	broker_conf_free(&bc);
}

/* One ZAP request for `key` from `addr` on req; the status text. */
static void
zap_ask(struct auth *a, void *req, const char *addr, const uint8_t key[32],
    struct refusals *ref, char text[64])
{
	char	buf[64];
	int	n = 0, len, more;
	size_t	ms = sizeof(more);

	memset(ref, 0, sizeof(*ref));
	cr_assert_eq(zmq_send(req, "1.0", 3, ZMQ_SNDMORE), 3);
	cr_assert_eq(zmq_send(req, "7", 1, ZMQ_SNDMORE), 1);
	cr_assert_geq(zmq_send(req, ZAP_DOMAIN, strlen(ZAP_DOMAIN),
	    ZMQ_SNDMORE), 0);
	cr_assert_geq(zmq_send(req, addr, strlen(addr), ZMQ_SNDMORE), 0);
	cr_assert_eq(zmq_send(req, "", 0, ZMQ_SNDMORE), 0);
	cr_assert_eq(zmq_send(req, "CURVE", 5, ZMQ_SNDMORE), 5);
	cr_assert_eq(zmq_send(req, key, 32, 0), 32);
	cr_assert_eq(auth_zap_handle(a, time(NULL), on_refused, ref), 1);
	do {
		len = zmq_recv(req, buf, sizeof(buf) - 1, 0);
		cr_assert_geq(len, 0);
		buf[len < 63 ? len : 63] = '\0';
		if (n == 3)
			snprintf(text, 64, "%s", buf);
		cr_assert_eq(zmq_getsockopt(req, ZMQ_RCVMORE, &more, &ms), 0);
		n++;
	} while (more);
}

/*
 * An address past its rate is refused before its key is looked at, and
 * others are not; past the CRL's next update a valid key is refused.
 */
Test(auth, zap_refuses_past_the_rate_and_past_the_crl)
{
	struct broker_conf	 bc;
	struct auth		 a;
	struct pki_cert		 cjit;
	struct refusals		 ref;
	char			 err[512], text[64];
	void			*ctx, *req;
	int			 i;

	load(&bc, &a);
	cr_assert_eq(pki_cert_read(tu_path(pdir, "agencies/cjit.leeds.crt"),
	    &cjit, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(a.limit = hslimit_new(1, 2));
	cr_assert_not_null(ctx = zmq_ctx_new());
	cr_assert_eq(auth_zap_bind(&a, ctx), 0);
	cr_assert_not_null(req = zmq_socket(ctx, ZMQ_REQ));
	cr_assert_eq(zmq_connect(req, ZAP_ENDPOINT), 0);

	for (i = 0; i < 2; i++) {
		zap_ask(&a, req, "10.0.0.9", cjit.key, &ref, text);
		cr_expect_str_eq(text, "OK", "within the burst");
	}
	zap_ask(&a, req, "10.0.0.9", cjit.key, &ref, text);
	cr_expect_str_eq(text, "rate limited");
	cr_expect_str_eq(ref.reason, "rate limited");
	cr_expect(ref.agency_null, "the key was looked at: %s", ref.agency);
	cr_expect_str_eq(ref.address, "10.0.0.9");
	zap_ask(&a, req, "10.0.0.10", cjit.key, &ref, text);
	cr_expect_str_eq(text, "OK", "another address");

	a.crl_next_update = time(NULL) - 1;
	zap_ask(&a, req, "10.0.0.11", cjit.key, &ref, text);
	cr_expect_str_eq(text, "CRL expired");
	cr_expect_str_eq(ref.agency, "cjit.leeds");
	cr_expect_eq(a.refused, 2);

	cr_assert_eq(zmq_close(req), 0);
	auth_zap_close(&a);
	cr_assert_eq(zmq_ctx_term(ctx), 0);
	hslimit_destroy(&a.limit);
	auth_clear(&a);
	broker_conf_free(&bc);
}
