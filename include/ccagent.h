/*
 * ccagent.h - the ccbroker client library (libccagent).
 *
 * A case system that links the broker directly, and the ccagent daemon
 * itself, talk to a partnership's ccbroker through this API: one handle is
 * one authenticated session over CurveZMQ (DESIGN §3, §7).
 *
 *	cc_agent		*a;
 *	struct cc_agent_error	 err;
 *	char			 mid[CC_AGENT_ID_LEN + 1];
 *
 *	if (cc_agent_new_conf("/etc/ccagent/agent.conf", false, &a,
 *	    &err) != 0)
 *		errx(1, "%s", err.detail);
 *	if (cc_agent_publish(a, json, mid) != 0)
 *		errx(1, "%s", cc_agent_last_error(a)->detail);
 *	cc_agent_destroy(&a);
 *
 * Identity.  The handle loads the agency's certificate and X25519 key (the
 * same key is the CurveZMQ key), checks the broker's certificate against
 * the partnership CA (and CRL, when given) with OU=broker, and pins the
 * broker's CURVE key taken from that certificate.  Nothing else is trusted.
 *
 * Sessions.  cc_agent_new() does not wait for the network.  ZeroMQ connects
 * in the background and reconnects with exponential backoff (100 ms up to
 * 5 s); after every successful handshake the handle says `hello` again
 * (and `subscribe`, when the options name record types), so a broker
 * restart or a network cut costs nothing but time.  Blocking calls wait for
 * a welcomed session for at most the handle's timeout, resend their request
 * on a new session, and rely on the broker being idempotent by mid and cid.
 *
 * Receiving.  Only a handle made with `receive` true is sent deliveries,
 * receipts and notices, and the broker keeps one receiving session per
 * agency: a newer one replaces an older one.  Deliveries are
 * at-least-once: store a record, then cc_agent_ack() it, and drop a second
 * copy of a mid you already stored.  Unacked ones come again after the
 * next reconnect.  While `ccagent run` runs, other programs of the agency
 * should use send-only handles (receive false), as the ccagent CLI does.
 *
 * Notices.  After a delivery the broker may tell the agency what became of
 * the data since (issue 19): a consent withdrawn, expiring or expired, a
 * record corrected or retracted, a subject's data erased.  Notices share
 * the deliveries' queue, numbering and ack: store one, then ack it, and
 * drop (but still ack) a second copy of a nid you already stored.  A
 * handle hands them over in one of two ways: to a callback set with
 * cc_agent_on_notice(), which the library acks for you; or, without one,
 * from cc_agent_receive() as deliveries of kind CC_DELIVERY_NOTICE, in
 * their place among the records and receipts, acked with cc_agent_ack()
 * like them.  Either way none is lost: one not acked comes again.
 *
 * Errors.  Every call returns 0 or a code of enum cc_agent_err; the handle
 * keeps the last error's code, field path and detail (never record
 * content) for cc_agent_last_error().  Handles are not thread-safe: use one
 * per thread.
 */
#ifndef CCAGENT_H
#define CCAGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The calls that can fail are marked: ignoring what they return is a
 * compile-time warning, as it is in libsodium.  Compilers without the
 * GNU attribute get nothing.
 */
#if defined(__GNUC__) || defined(__clang__)
#define CC_AGENT_WUR	__attribute__((warn_unused_result))
#else
#define CC_AGENT_WUR
#endif

#define CC_AGENT_VERSION	"0.1.0"
#define CC_AGENT_ID_LEN		36	/* a mid or cid: canonical UUID text */
#define CC_AGENT_TIMEOUT_MS	10000	/* default for blocking calls */

typedef struct cc_agent		cc_agent;	/* one session with the broker */
typedef struct cc_delivery	cc_delivery;	/* a delivery, receipt or notice */
typedef struct cc_agent_notice	cc_notice;	/* a notice's own accessors */

/*
 * Outcomes.  1 to 12 are the broker's refusals of DESIGN §7, with the
 * numbers of enum cc_err in cc_proto.h; from 100 on, local failures.
 */
enum cc_agent_err {
	CC_AGENT_OK = 0,
	CC_AGENT_ERR_MALFORMED = 1,
	CC_AGENT_ERR_UNSUPPORTED_VERSION,
	CC_AGENT_ERR_UNKNOWN_OP,
	CC_AGENT_ERR_MISSING_FIELD,
	CC_AGENT_ERR_UNKNOWN_FIELD,
	CC_AGENT_ERR_INVALID_FIELD,
	CC_AGENT_ERR_TOO_LARGE,
	CC_AGENT_ERR_NOT_PERMITTED,
	CC_AGENT_ERR_UNKNOWN_RECIPIENT,
	CC_AGENT_ERR_IDENTITY_CONFLICT,
	CC_AGENT_ERR_STORAGE_FULL,
	CC_AGENT_ERR_BUSY = 12,
	CC_AGENT_ERR_OVER_QUOTA = 13,	/* an agency's quota: sent again later */
	CC_AGENT_ERR_CONFIG = 100,	/* options, agent.conf, certificate, key */
	CC_AGENT_ERR_AUTH,		/* the broker refused our handshake */
	CC_AGENT_ERR_TIMEOUT,		/* no answer in time */
	CC_AGENT_ERR_PROTOCOL,		/* the broker said something unexpected */
	CC_AGENT_ERR_SYSTEM		/* memory, ZeroMQ or I/O failure */
};

struct cc_agent_error {
	int	code;			/* enum cc_agent_err */
	char	field[128];		/* "body.release_date", or "" */
	char	detail[256];		/* one line for a human */
	char	re[80];			/* the mid, cid or op it answers, or "" */
};

/* What a handle is made from; agent.conf (DESIGN §8) holds the same. */
struct cc_agent_options {
	const char	*broker;		/* endpoint; NULL: tcp://127.0.0.1:7450 */
	const char	*broker_certificate;	/* PEM, OU=broker */
	const char	*ca;			/* the partnership CA, PEM */
	const char	*crl;			/* optional CRL, PEM, or NULL */
	const char	*certificate;		/* this agency's certificate */
	const char	*key;			/* its X25519 key, mode 0600 */
	bool		 receive;		/* be the receiving session */
	const char	*subscribe;		/* "release-plan,housing-status" */
	const char	*areas;			/* "E08000035,..."; NULL: all ours */
	int		 timeout_ms;		/* blocking calls; 0: default */
	bool		 log;			/* log session events to stderr */
};

/* The ops a JSON document can be handed over as. */
enum cc_agent_op {
	CC_AGENT_PUBLISH,
	CC_AGENT_CONSENT_GRANT,
	CC_AGENT_CONSENT_WITHDRAW,
	CC_AGENT_CONSENT_REFUSE
};

enum cc_delivery_kind {
	CC_DELIVERY_RECORD,		/* `deliver`: a record for us */
	CC_DELIVERY_RECEIPT,		/* `receipt`: what became of ours */
	CC_DELIVERY_NOTICE		/* `notice`: what became of one we got */
};

/*
 * What a notice tells (PROTOCOL.md 9.10 names each kind's fields); the
 * numbers of enum cc_notice in cc_proto.h.
 */
enum cc_notice_kind {
	CC_NOTICE_CONSENT_WITHDRAWN,	/* a consent we got records under */
	CC_NOTICE_CONSENT_EXPIRING,	/* a consent we recorded lapses soon */
	CC_NOTICE_CONSENT_EXPIRED,	/* a consent we recorded has lapsed */
	CC_NOTICE_RECORD_CORRECTED,	/* a record we got was corrected */
	CC_NOTICE_RECORD_RETRACTED,	/* a record we got was retracted */
	CC_NOTICE_SUBJECT_ERASED	/* a subject we got records of erased
					 * (reserved: not sent yet) */
};

/* One `consent-recorded` answer. */
struct cc_consent_recorded {
	char		cid[CC_AGENT_ID_LEN + 1];
	uint32_t	version;
};

/* cc_agent_wait() results, a bit mask. */
#define CC_AGENT_WAIT_RECEIVE	0x1	/* cc_agent_receive() has one */
#define CC_AGENT_WAIT_FD	0x2	/* the caller's fd is readable */

/*
 * Make a handle from options, or from an agent.conf file.  Certificates
 * and key are read and checked here; the network is not waited for.
 * Returns 0 with *out set, or a code with err filled (*out NULL):
 * CC_AGENT_ERR_CONFIG for a bad option, file, certificate or key,
 * CC_AGENT_ERR_SYSTEM when memory runs out or ZeroMQ cannot start.
 */
int	cc_agent_new(const struct cc_agent_options *, cc_agent **out,
	    struct cc_agent_error *err) CC_AGENT_WUR;
int	cc_agent_new_conf(const char *conf_path, bool receive, cc_agent **out,
	    struct cc_agent_error *err) CC_AGENT_WUR;

/* Close the session (pending sends are dropped) and free; sets *a NULL. */
void	cc_agent_destroy(cc_agent **a);

/*
 * Wait until the broker has welcomed this session (timeout_ms < 0: the
 * handle's timeout).  Returns 0; on error the last error is set and one
 * of CC_AGENT_ERR_AUTH (the broker refused the handshake), the broker's
 * refusal of hello, CC_AGENT_ERR_TIMEOUT, or CC_AGENT_ERR_SYSTEM.
 */
int	cc_agent_connect(cc_agent *, int timeout_ms) CC_AGENT_WUR;

/* The welcome: our agency id and type (NULL before the first welcome),
 * and the frame size limit (0 before). */
const char *cc_agent_agency(const cc_agent *);
const char *cc_agent_type(const cc_agent *);
size_t	cc_agent_max_size(const cc_agent *);

/*
 * Check a JSON document holding an op's fields (without `op` and `v`)
 * exactly as the broker will, filling what the agent assigns when absent:
 * `mid` and `created` for a publish, `cid` for a grant or a refusal.
 * Returns 0 with *out the completed JSON (malloc'd; free(3) it), id the
 * mid or cid ("" for a withdrawal) and *assigned telling whether anything
 * was added.  On error *out is NULL and err (when not NULL) says why:
 * CC_AGENT_ERR_MALFORMED for text that is not a JSON object, the code
 * the broker would answer (missing-field, invalid-field...) with the
 * field path, or CC_AGENT_ERR_SYSTEM when memory ran out.
 */
int	cc_agent_prepare(enum cc_agent_op, const char *json, size_t len,
	    char **out, char id[CC_AGENT_ID_LEN + 1], bool *assigned,
	    struct cc_agent_error *err) CC_AGENT_WUR;

/*
 * Publish one record (a `publish` op's fields as JSON) and wait until the
 * broker has durably accepted it.  mid receives its mid (assigned when
 * absent).  Returns 0; on error the last error is set and the code is
 * cc_agent_prepare's, the broker's refusal (field and detail in the last
 * error), CC_AGENT_ERR_TIMEOUT, CC_AGENT_ERR_AUTH, or
 * CC_AGENT_ERR_SYSTEM.  On a timeout the record may or may not be stored:
 * publish it again with the same mid, which the broker answers without a
 * second copy.
 */
int	cc_agent_publish(cc_agent *, const char *json,
	    char mid[CC_AGENT_ID_LEN + 1]) CC_AGENT_WUR;

/*
 * Record a consent event (CC_AGENT_CONSENT_GRANT, _WITHDRAW or _REFUSE).
 * Each `consent-recorded` answer is stored in out[] (at most max of
 * them; a withdrawal by subject gets one per consent) and *n says how
 * many came.  Returns 0, or on error (*n 0 or the answers so far) the
 * codes of cc_agent_publish, and CC_AGENT_ERR_UNKNOWN_OP for
 * CC_AGENT_PUBLISH.
 */
int	cc_agent_consent(cc_agent *, enum cc_agent_op, const char *json,
	    struct cc_consent_recorded *out, size_t max, size_t *n)
	    CC_AGENT_WUR;

/*
 * Per-recipient states of a message this agency sent: *json receives
 * {"mid": ..., "recipients": [{"agency", "state", "reason", "at"}]}
 * (malloc'd; free(3) it).  Returns 0; on error *json is NULL, the last
 * error is set and the code is CC_AGENT_ERR_INVALID_FIELD (mid is not a
 * UUID), the broker's refusal, CC_AGENT_ERR_TIMEOUT, CC_AGENT_ERR_AUTH or
 * CC_AGENT_ERR_SYSTEM.
 */
int	cc_agent_track(cc_agent *, const char *mid, char **json)
	    CC_AGENT_WUR;

/*
 * Take back a message this agency sent (PROTOCOL.md 8.9): copies still
 * waiting are purged, and every agency that acknowledged it is sent a
 * record-retracted notice carrying reason (UTF-8, 1 to 1000 characters).
 * Returns 0 once the broker has recorded it (again is harmless); on error
 * the last error is set and the code is CC_AGENT_ERR_INVALID_FIELD (mid
 * not a UUID, or not a message of this agency; a bad reason), another
 * refusal of the broker, CC_AGENT_ERR_TIMEOUT, CC_AGENT_ERR_AUTH or
 * CC_AGENT_ERR_SYSTEM.  To correct a record instead, publish the new one
 * with "supersedes": MID.
 */
int	cc_agent_retract(cc_agent *, const char *mid, const char *reason)
	    CC_AGENT_WUR;

/*
 * Take the next delivery, receipt or (when no notice callback is set)
 * notice, in the order the broker sent them, waiting up to timeout_ms (0:
 * do not wait, -1: forever).  Notices waiting ahead of it go to the
 * callback first, when one is set.  Returns 0 with *out set (free it with
 * cc_delivery_destroy); on error *out is NULL, the last error is set and
 * the code is CC_AGENT_ERR_TIMEOUT when none came, or CC_AGENT_ERR_SYSTEM
 * (memory, or ZeroMQ failed; a delivery not taken comes again after the
 * next reconnect).  Only receiving handles are sent any.
 */
int	cc_agent_receive(cc_agent *, int timeout_ms, cc_delivery **out)
	    CC_AGENT_WUR;

/*
 * Tell the broker a delivery, receipt or notice is stored.  Returns 0, or
 * CC_AGENT_ERR_SYSTEM with the last error set when it could not be sent
 * now (it comes again after the next reconnect).
 */
int	cc_agent_ack(cc_agent *, const cc_delivery *) CC_AGENT_WUR;

/*
 * Run the session (reconnects, hello, answers) until a delivery or receipt
 * (or a notice, without a callback) is waiting, fd (if >= 0) is readable,
 * or timeout_ms passed (-1: forever); notices go to the callback as they
 * come, when one is set.  Returns a mask of CC_AGENT_WAIT_*, 0 on timeout
 * or when a signal interrupted the wait, -1 with the last error set
 * (CC_AGENT_ERR_SYSTEM) when polling failed.  For event loops that also
 * watch a file.
 */
int	cc_agent_wait(cc_agent *, int fd, int timeout_ms) CC_AGENT_WUR;

/*
 * Have notices handed to fn as they come, from inside cc_agent_receive()
 * and cc_agent_wait(), in the order the broker sent them (a notice behind
 * a delivery not yet taken waits for it).  fn stores the notice and
 * returns 0, and the library then acks it; any other return leaves it
 * unacked, and the broker sends it again after the next reconnect.  A
 * second copy of a nid already stored should return 0 (it is acked, and
 * nothing more need be done).  The notice and its strings live until fn
 * returns.  fn must not call cc_agent_receive, cc_agent_wait or
 * cc_agent_destroy on this handle.  fn NULL goes back to receiving
 * notices from cc_agent_receive(); arg is passed to fn unchanged.
 */
void	cc_agent_on_notice(cc_agent *, int (*fn)(const cc_notice *,
	    void *arg), void *arg);

/* The last error of a handle; code CC_AGENT_OK when there was none. */
const struct cc_agent_error *cc_agent_last_error(const cc_agent *);

/* The wire name of a code ("invalid-field"), or a short phrase for local
 * codes ("timeout"); never NULL. */
const char *cc_agent_strerror(int code);

/* A delivery, receipt or notice. */
enum cc_delivery_kind cc_delivery_kind(const cc_delivery *);
uint64_t	 cc_delivery_dseq(const cc_delivery *);
/* Records and receipts: the mid; "" for notices. */
const char	*cc_delivery_mid(const cc_delivery *);
/* Records: the sender (`from`) and the record type; "" for the others. */
const char	*cc_delivery_from(const cc_delivery *);
const char	*cc_delivery_type(const cc_delivery *);
/* Receipts: the recipient, its state ("delivered", "withheld", "purged",
 * "expired") and the reason ("" when none); "" for the others. */
const char	*cc_delivery_agency(const cc_delivery *);
const char	*cc_delivery_state(const cc_delivery *);
const char	*cc_delivery_reason(const cc_delivery *);
/*
 * The op's fields without `op`, `v` and `dseq`, as JSON (DESIGN §8:
 * what in/MID.json, receipts/ and notices/ files hold); pretty adds
 * indentation.  Owned by the delivery.  NULL on error: memory ran out.
 */
const char	*cc_delivery_json(cc_delivery *, bool pretty) CC_AGENT_WUR;
/* Notices: the notice (owned by the delivery); NULL for the others. */
const cc_notice	*cc_delivery_notice(const cc_delivery *);
void		 cc_delivery_destroy(cc_delivery **);

/*
 * A notice: its kind, the kind's wire name ("consent-withdrawn"), its nid
 * (the same in every copy of it) and `at`, when the broker noticed (RFC
 * 3339).  Never NULL.
 */
enum cc_notice_kind cc_notice_kind(const cc_notice *);
const char	*cc_notice_kind_name(const cc_notice *);
const char	*cc_notice_nid(const cc_notice *);
const char	*cc_notice_at(const cc_notice *);
/*
 * The notice's fields without `op`, `v` and `dseq`, as JSON (what
 * notices/NID.json files hold): nid, kind, at and the kind's own fields
 * (consents, mids, subject, valid_until, mid, by, from, reason).  The
 * same text as cc_delivery_json of its delivery, owned by it.  NULL on
 * error: memory ran out.
 */
const char	*cc_notice_json(const cc_notice *, bool pretty) CC_AGENT_WUR;

#ifdef __cplusplus
}
#endif

#endif /* CCAGENT_H */
