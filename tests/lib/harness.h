/*
 * harness.h - integration tests against the real ccbroker over CURVE.
 *
 * Every test makes its own world: a fresh partnership made by
 * certs-example/mkpartnership.sh in a mkdtemp directory, a broker.conf
 * bound to a free loopback port, `ccbroker init` and a `ccbroker run`
 * child whose stderr goes to DIR/broker.log.  Clients are ZeroMQ DEALER
 * sockets with the agency's own X25519 key, talking msgpack maps; the
 * harness turns them to and from jansson values so tests read like the
 * wire protocol of DESIGN §7.
 *
 * Memory: every json_t and string a h_* function returns belongs to the
 * harness and is freed by h_env_destroy() (tests never decref).  Functions
 * that take a json_t do not steal it.
 *
 * Environment: CC_SRC (repository root, default "."), CC_BUILD (build
 * directory, default "build"), KEEP=1 keeps the temporary directory.
 */
#ifndef CC_TEST_HARNESS_H
#define CC_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <criterion/criterion.h>
#include <jansson.h>

#define H_AREA		"E08000035"	/* Leeds: every demo agency */
#define H_AREA2		"E08000032"	/* Bradford */
#define H_PNC_A		"2004/0012345D"
#define H_PNC_B		"1999/7654321V"
#define H_PNC_C		"2019/0000001P"
#define H_CARAT		"carat.hmp-leeds"
#define H_CJIT		"cjit.leeds"
#define H_PROBATION	"probation.leeds"
#define H_HOUSING	"housing.leeds-hostels"
#define H_LA		"la.leeds"
#define H_REVOKED	"revoked.agency"	/* revoked by mkpartnership.sh */

/* Categories most grants use: no special-category data. */
#define H_BASIC	"identity,criminal-justice,housing,contacts,treatment-summary"
#define H_ALL_CATS "identity,cj-identifiers,criminal-justice," \
	"treatment-summary,treatment-clinical,housing,housing-address," \
	"contacts,narrative"

#define H_TIMEOUT_MS	3000	/* an answer the broker owes */
#define H_QUIET_MS	600	/* how long "nothing arrives" is watched */

/* Extra certificates for the authentication tests (H_BAD_CERTS). */
#define H_EXPIRED	"expired.agency"	/* valid 2020 to 2021 */
#define H_FUTURE	"future.agency"		/* valid from 2045 */
#define H_FOREIGN	"foreign.agency"	/* signed by another CA */
#define H_WRONG_OU	"wrongou.agency"	/* OU is no agency type */
#define H_STRANGER	"stranger.agency"	/* not in the directory */

struct h_env;
struct h_client;

struct h_env_opts {
	bool		 bad_certs;	/* issue the H_EXPIRED...H_STRANGER set */
	const char	*agencies;	/* more "id:type:area[ area]" entries,
					 * ";"-separated, issued and listed */
	size_t		 map_size_mb;	/* 0: 64 */
	unsigned	 retention_days; /* 0: 30 */
	const char	*extra_conf;	/* appended to broker.conf */
	bool		 no_start;	/* init but do not run the broker */
	unsigned	 handshake_rate; /* per address; 0: 1000000, so that
					 * tests all from 127.0.0.1 are not
					 * limited */
	unsigned	 handshake_burst; /* 0: 1000000 */
};

/*
 * The world of one test: partnership, broker.conf, `ccbroker init`, and
 * (unless opts->no_start) a running broker.  opts may be NULL.  Fails the
 * test (cr_assert) when any step fails.
 */
struct h_env	*h_env_new(const struct h_env_opts *);
/* Close clients, stop the broker (SIGTERM, then SIGKILL), remove the
 * directory unless KEEP=1, free everything the harness handed out. */
void		 h_env_destroy(struct h_env **);

/*
 * The end of a test that got this far: stop the broker with SIGTERM,
 * expect exit status 0 and no sanitizer report in its log (a broker built
 * with SAN=1 reports there, and LeakSanitizer only at exit).
 */
void		 h_env_check(struct h_env *);

/*
 * A Criterion test whose body, when it completes, ends with
 * h_env_check(env) for the file's `static struct h_env *env` (Criterion
 * does not count failures raised in a suite's fini).
 */
#define H_TEST(suite, name)						\
	static void h_body_##suite##_##name(void);			\
	Test(suite, name)						\
	{								\
		h_body_##suite##_##name();				\
		h_env_check(env);					\
	}								\
	static void h_body_##suite##_##name(void)

const char	*h_dir(const struct h_env *);		/* the temp dir */
const char	*h_pki(const struct h_env *);		/* DIR/pki */
const char	*h_conf(const struct h_env *);		/* DIR/broker.conf */
const char	*h_data(const struct h_env *);		/* data directory */
const char	*h_logpath(const struct h_env *);	/* DIR/broker.log */
int		 h_port(const struct h_env *);

/* Rewrite broker.conf, e.g. after h_set_data(); appended text replaces
 * opts->extra_conf when non-NULL. */
void		 h_set_data(struct h_env *, const char *dir);
void		 h_write_conf(struct h_env *, const char *extra_conf);
void		 h_set_port(struct h_env *, int port);	/* 0: a new free one */

/* mkpartnership.sh -i / -r in the env's partnership; 0 or its status.
 * not_before/not_after are YYYYMMDDHHMMSSZ or NULL. */
int		 h_issue(struct h_env *, const char *id, const char *type,
		    const char *not_before, const char *not_after);
int		 h_revoke(struct h_env *, const char *id);
/* mkpartnership.sh -g: a fresh CRL (valid 30 days), or one whose last and
 * next update are `last` and `next` (YYYYMMDDHHMMSSZ); 0 or its status. */
int		 h_gencrl(struct h_env *, const char *last, const char *next);
/* YYYYMMDDHHMMSSZ of now + offset_s, as mkpartnership.sh takes it. */
char		*h_asn1_time(int64_t offset_s, char out[16]);
/*
 * Re-key: the agency's certificate and key are kept aside as
 * agencies/ID.old.crt and keys/ID.old.key and a new pair is issued.
 * Renew: the certificate is kept aside, a new one issued for the same
 * key.  h_revoke_old revokes the one kept aside.  0 or -1.
 */
int		 h_rekey(struct h_env *, const char *id, const char *type);
int		 h_renew(struct h_env *, const char *id, const char *type);
int		 h_revoke_old(struct h_env *, const char *id);

/* The broker process. */
void		 h_broker_start(struct h_env *);	/* waits for the port */
int		 h_broker_start_status(struct h_env *); /* 0, or exit status */
int		 h_broker_stop(struct h_env *);	/* SIGTERM; exit status */
void		 h_broker_kill9(struct h_env *);
void		 h_broker_hup(struct h_env *);
bool		 h_broker_running(struct h_env *);

/*
 * Run `ccbroker ARGS...` (NULL-terminated) to completion; returns its exit
 * status (128 + signal when killed).  *out and *err (either may be NULL)
 * get its stdout and stderr, owned by the harness.
 */
int		 h_ccbroker(struct h_env *, char **out, char **err, ...)
		    __attribute__((sentinel));
/* The same with `input` on its standard input (NULL: /dev/null). */
int		 h_ccbroker_in(struct h_env *, const char *input, char **out,
		    char **err, ...) __attribute__((sentinel));
/* `ccbroker audit subject` given the request on standard input
 * ("pnc=2004/0012345D\n...") and `ccbroker stats`, parsed; the test fails
 * unless they exit 0 with JSON. */
json_t		*h_audit_subject(struct h_env *, const char *request);
json_t		*h_stats(struct h_env *);
/* stats' queue depth of an agency (ids hold dots, so no path): 0 when
 * the agency has no queue. */
long long	 h_queue_depth(json_t *stats, const char *agency);
/* Any program; argv[0] is looked up in PATH. */
int		 h_run(struct h_env *, char **out, char **err,
		    const char *const argv[]);
/* `ccbroker ARGS...` in the background, and its end: the exit status, or
 * -1 when timeout_ms is 0 and it still runs (out/err as h_ccbroker). */
pid_t		 h_ccbroker_bg(struct h_env *, ...) __attribute__((sentinel));
int		 h_bg_wait(struct h_env *, pid_t, int timeout_ms, char **out,
		    char **err);

/* The broker's log. */
char		*h_log(struct h_env *);
bool		 h_log_has(struct h_env *, const char *needle);
/* Wait until the log holds a line containing every needle (NULL-ended). */
bool		 h_log_wait(struct h_env *, int timeout_ms, ...)
		    __attribute__((sentinel));
size_t		 h_log_count(struct h_env *, const char *needle);

/* ---- clients ---- */

/* A DEALER connected with keys/ID.key, no hello yet. */
struct h_client	*h_connect(struct h_env *, const char *agency);
/* One with the key kept aside by h_rekey (keys/ID.old.key). */
struct h_client	*h_connect_old(struct h_env *, const char *agency);
/* One with a fresh key no certificate knows. */
struct h_client	*h_connect_unknown(struct h_env *);
/* h_connect, then hello; asserts the welcome. */
struct h_client	*h_agent(struct h_env *, const char *agency, bool receive);
void		 h_close(struct h_client **);
const char	*h_agency(const struct h_client *);

/*
 * The CURVE handshake's outcome as the client saw it, waiting at most
 * timeout_ms: 1 succeeded, -1 refused by the server's authentication (ZAP),
 * -2 failed otherwise, 0 nothing yet.
 */
int		 h_handshake(struct h_client *, int timeout_ms);

/* Send a map (adds "v": 1 when absent).  0, or -1. */
int		 h_send(struct h_client *, json_t *msg);
int		 h_send_json(struct h_client *, const char *json);
int		 h_sendf(struct h_client *, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
int		 h_send_raw(struct h_client *, const void *, size_t);
/* One message of two frames (which the protocol does not allow). */
int		 h_send_parts(struct h_client *, const void *, size_t,
		    const void *, size_t);

/*
 * The next message whose op is in `ops` (comma-separated; NULL: any),
 * waiting at most timeout_ms; others are kept for later calls.  NULL on
 * timeout.
 */
json_t		*h_recv(struct h_client *, const char *ops, int timeout_ms);
/* Send, then the first answer among ops or "error" (NULL on timeout). */
json_t		*h_call(struct h_client *, json_t *msg, const char *ops);
json_t		*h_call_json(struct h_client *, const char *json,
		    const char *ops);

json_t		*h_hello(struct h_client *, bool receive);
json_t		*h_subscribe(struct h_client *, const char *types_csv,
		    const char *areas_csv);
void		 h_ack(struct h_client *, json_t *deliver_or_receipt);

/*
 * Collect messages of one op ("deliver" or "receipt") until `n` arrived
 * (n == 0: until quiet_ms passes without one) or timeout_ms in all; each
 * is acked when ack is true.  Returns a JSON array (never NULL).
 */
json_t		*h_collect(struct h_client *, const char *op, size_t n,
		    int timeout_ms, bool ack);
/* Everything of op that arrives until H_QUIET_MS of silence, acked. */
json_t		*h_deliveries(struct h_client *, bool ack);
json_t		*h_receipts(struct h_client *, bool ack);
/* The receipt about (mid, agency), waiting; acked.  NULL on timeout. */
json_t		*h_receipt_for(struct h_client *, const char *mid,
		    const char *agency, int timeout_ms);

/* track: the status answer, and one recipient's entry of it. */
json_t		*h_track(struct h_client *, const char *mid);
json_t		*h_track_of(struct h_client *, const char *mid,
		    const char *agency);

/* ---- records ---- */

/* A consent-grant about a PNC with the defaults of the conformance
 * harness: purpose continuity-of-care, valid from yesterday for 300 days,
 * written evidence, explicit false, no deny. */
json_t		*h_grant_new(const char *recipients_csv,
		    const char *categories_csv, const char *pnc);
/* h_grant_new sent by c; returns the answer (consent-recorded or error). */
json_t		*h_grant(struct h_client *, const char *recipients_csv,
		    const char *categories_csv, const char *pnc);
/* consent-withdraw of one consent (cid) or of every consent of a subject
 * (cid NULL, pnc given); consent-refuse of a new consent about pnc. */
json_t		*h_withdraw_new(const char *cid, const char *pnc);
json_t		*h_refuse_new(const char *pnc);
/* A full release plan (every category present) about pnc, published to
 * the subscribers of H_AREA. */
json_t		*h_release_plan_new(const char *pnc, const char *family_name);
/* A release plan about H_PNC_A of about 40 KB (forty 1,000-character
 * housing actions), sent to one named agency: fills a store quickly. */
json_t		*h_big_plan(const char *to);
/* Publish; returns the answer (accepted or error). */
json_t		*h_publish(struct h_client *, json_t *msg);

/* ---- JSON helpers ---- */

json_t		*h_json(const char *text);		/* parse or fail */
json_t		*h_jsonf(const char *fmt, ...)
		    __attribute__((format(printf, 1, 2)));
json_t		*h_csv(const char *csv);		/* ["a","b"] */
/* A value by dotted path ("body.person.family_name", "recipients.0"). */
json_t		*h_get(json_t *, const char *path);
const char	*h_str(json_t *, const char *path);	/* NULL if not a string */
long long	 h_int(json_t *, const char *path);	/* -1 if not an integer */
bool		 h_is_op(json_t *, const char *op);
/* Does a JSON array of strings hold s? Equal to the csv set? */
bool		 h_has_str(json_t *array, const char *s);
bool		 h_set_eq(json_t *array, const char *csv);
/* A compact dump, for assertion messages ("(null)" for NULL). */
const char	*h_dump(json_t *);

char		*h_time(int64_t offset_s, char out[32]);	/* RFC 3339 */
char		*h_uuid(char out[37]);
/* Hand a string or json_t to the harness to free at h_env_destroy. */
char		*h_keep_str(char *);
json_t		*h_keep(json_t *);
/* Sleep. */
void		 h_msleep(int ms);

/* ---- assertions that show what arrived ---- */

#define h_assert_op(j, op)						\
	cr_assert(h_is_op((j), (op)), "expected %s, got %s", (op),	\
	    h_dump(j))
#define h_assert_error(j, code, field)					\
	do {								\
		json_t *h__j = (j);					\
		const char *h__f = (field);				\
		cr_assert(h_is_op(h__j, "error") &&			\
		    h_str(h__j, "code") != NULL &&			\
		    strcmp(h_str(h__j, "code"), (code)) == 0,		\
		    "expected error %s, got %s", (code), h_dump(h__j));	\
		if (h__f != NULL)					\
			cr_assert(h_str(h__j, "field") != NULL &&	\
			    strcmp(h_str(h__j, "field"), h__f) == 0,	\
			    "expected field %s, got %s", h__f,		\
			    h_dump(h__j));				\
	} while (0)

#endif /* CC_TEST_HARNESS_H */
