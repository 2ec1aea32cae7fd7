/*
 * cc_request.c - the requests of libccagent: prepare a JSON document,
 * publish, consent, track, receive and ack, and the notice callback.
 *
 * A blocking request is sent once per session: when a new session is
 * welcomed before the answer came (the broker restarted, the network cut
 * out) it is sent again.  The broker is idempotent by mid and cid, so a
 * request that was stored but whose answer was lost gets the same answer
 * the second time, and no second copy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cc_internal.h"
#include "log.h"

#define BUSY_BACKOFF_MS		100	/* first retry after `busy` */
#define BUSY_BACKOFF_MAX_MS	2000

/* What a request waits for. */
struct expect {
	enum ccx_answer_kind	 kind;		/* the good answer */
	const char		*id;		/* its mid or cid */
	const char		*opname;	/* errors may name the op */
};

static int	 request(cc_agent *, enum cc_op, const char *json,
		    const struct expect *, struct ccx_answer *);
static int	 request_all(cc_agent *, const char *json,
		    struct cc_consent_recorded *, size_t, size_t *);
static bool	 matches(const struct ccx_answer *, const struct expect *);
static int	 timed_out(cc_agent *);
static int	 answer_error(cc_agent *, struct ccx_answer *);
static void	 id_of(const struct cc_msg *, enum cc_op, char *, size_t);
static bool	 head_is_notice(const cc_agent *);

enum cc_op
ccx_op(enum cc_agent_op op)
{
	switch (op) {
	case CC_AGENT_CONSENT_GRANT:
		return OP_CONSENT_GRANT;
	case CC_AGENT_CONSENT_WITHDRAW:
		return OP_CONSENT_WITHDRAW;
	case CC_AGENT_CONSENT_REFUSE:
		return OP_CONSENT_REFUSE;
	case CC_AGENT_PUBLISH:
	default:
		return OP_PUBLISH;
	}
}

static void
id_of(const struct cc_msg *m, enum cc_op op, char *id, size_t size)
{
	id[0] = '\0';
	if (op == OP_PUBLISH || op == OP_TRACK || op == OP_RETRACT)
		(void)proto_get_str(m, "mid", id, size);
	else
		(void)proto_get_str(m, "cid", id, size);
}

/*
 * Add what the agent assigns when absent, then judge the document with
 * the proto library exactly as the broker will.  The completed text keeps
 * the caller's field order (it may be written back into their file).
 */
int
cc_agent_prepare(enum cc_agent_op aop, const char *text, size_t len,
    char **out, char id[CC_AGENT_ID_LEN + 1], bool *assigned,
    struct cc_agent_error *err)
{
	enum cc_op	 op = ccx_op(aop);
	json_t		*root = NULL;
	json_error_t	 jerr;
	struct cc_msg	*m = NULL;
	struct cc_error	 ce;
	struct cc_agent_error	 judged;
	char		 uuid[CC_UUID_LEN + 1], now[32], *s = NULL;
	const char	*idkey = NULL;
	int		 rc;

	*out = NULL;
	id[0] = '\0';
	*assigned = false;
	if (err != NULL)
		memset(err, 0, sizeof(*err));
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL && json_error_code(&jerr) == json_error_out_of_memory)
		goto nomem;
	if (root == NULL) {
		rc = ccx_fail_err(err, CC_AGENT_ERR_MALFORMED, NULL,
		    "JSON line %d column %d: %s", jerr.line, jerr.column,
		    jerr.text);
		goto fail;
	}
	if (!json_is_object(root)) {
		rc = ccx_fail_err(err, CC_AGENT_ERR_MALFORMED, NULL,
		    "a record is a JSON object");
		goto fail;
	}
	if (op == OP_PUBLISH)
		idkey = "mid";
	else if (op == OP_CONSENT_GRANT || op == OP_CONSENT_REFUSE)
		idkey = "cid";
	/* json_object_set_new fails on a NULL value: json_string's failure. */
	if (idkey != NULL && json_object_get(root, idkey) == NULL) {
		cc_uuid_new(uuid);
		if (json_object_set_new(root, idkey, json_string(uuid)) == -1)
			goto nomem;
		*assigned = true;
	}
	if (op == OP_PUBLISH && json_object_get(root, "created") == NULL) {
		cc_time_now_rfc3339(now);
		if (json_object_set_new(root, "created",
		    json_string(now)) == -1)
			goto nomem;
		*assigned = true;
	}
	if ((s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_INDENT(2))) ==
	    NULL)
		goto nomem;
	if (proto_from_json(op, s, strlen(s), &m, &ce) == -1) {
		ccx_from_cc_error(&judged, &ce);
		if (err != NULL)
			*err = judged;
		rc = judged.code;
		goto fail;
	}
	id_of(m, op, id, CC_AGENT_ID_LEN + 1);
	proto_msg_destroy(&m);
	json_decref(root);
	*out = s;
	return CC_AGENT_OK;
nomem:
	rc = ccx_fail_err(err, CC_AGENT_ERR_SYSTEM, NULL, "out of memory");
fail:
	free(s);
	json_decref(root);
	*assigned = false;
	return rc;
}

int
ccx_pack_json(enum cc_op op, const char *json, msgpack_sbuffer *sb,
    struct cc_agent_error *err)
{
	struct cc_msg	*m = NULL;
	struct cc_error	 ce;
	int		 rc;

	if (proto_from_json(op, json, strlen(json), &m, &ce) == -1) {
		ccx_from_cc_error(err, &ce);
		return err->code;
	}
	if (proto_encode(m, sb) == -1)
		rc = ccx_fail_err(err, CC_AGENT_ERR_SYSTEM, NULL,
		    "out of memory");
	else
		rc = CC_AGENT_OK;
	proto_msg_destroy(&m);
	return rc;
}

int
ccx_send_json(cc_agent *a, enum cc_op op, const char *json)
{
	msgpack_sbuffer	 sb;
	int		 rc;

	msgpack_sbuffer_init(&sb);
	if ((rc = ccx_pack_json(op, json, &sb, &a->err)) == CC_AGENT_OK)
		rc = ccx_send_frame(a, &sb, false);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

int
ccx_answer_pop(cc_agent *a, struct ccx_answer *ans)
{
	struct ccx_frame	*f;
	struct cc_msg		*m;
	char			 code[32] = "";
	int			 c;

	memset(ans, 0, sizeof(*ans));
	if ((f = ccx_queue_pop(&a->answers)) == NULL)
		return 0;
	m = f->msg;
	free(f);
	ans->msg = m;
	switch (proto_op(m)) {
	case OP_ACCEPTED:
		ans->kind = ANS_ACCEPTED;
		(void)proto_get_str(m, "mid", ans->id, sizeof(ans->id));
		break;
	case OP_CONSENT_RECORDED: {
		uint64_t v = 0;

		ans->kind = ANS_RECORDED;
		(void)proto_get_str(m, "cid", ans->id, sizeof(ans->id));
		(void)proto_get_u64(m, "version", &v);
		ans->version = (uint32_t)v;
		break;
	}
	case OP_STATUS:
		ans->kind = ANS_STATUS;
		(void)proto_get_str(m, "mid", ans->id, sizeof(ans->id));
		break;
	case OP_RETRACTED:
		ans->kind = ANS_RETRACTED;
		(void)proto_get_str(m, "mid", ans->id, sizeof(ans->id));
		break;
	default:
		ans->kind = ANS_ERROR;
		if (proto_op(m) != OP_ERROR) {
			(void)snprintf(ans->err.detail,
			    sizeof(ans->err.detail), "unexpected %s from "
			    "the broker", cc_op_name(proto_op(m)));
			ans->err.code = CC_AGENT_ERR_PROTOCOL;
			break;
		}
		(void)proto_get_str(m, "re", ans->id, sizeof(ans->id));
		(void)proto_get_str(m, "code", code, sizeof(code));
		c = cc_err_parse(code, strlen(code));
		ans->err.code = c > 0 ? c : CC_AGENT_ERR_PROTOCOL;
		(void)proto_get_str(m, "field", ans->err.field,
		    sizeof(ans->err.field));
		(void)proto_get_str(m, "detail", ans->err.detail,
		    sizeof(ans->err.detail));
		(void)snprintf(ans->err.re, sizeof(ans->err.re), "%s",
		    ans->id);
		break;
	}
	return 1;
}

void
ccx_answer_free(struct ccx_answer *ans)
{
	proto_msg_destroy(&ans->msg);
}

void
ccx_answers_clear(cc_agent *a)
{
	ccx_queue_clear(&a->answers);
}

/*
 * An error answers our request when it names its mid or cid, or names
 * nothing we could tell apart (the broker could not read the id): only
 * one request is outstanding on a blocking handle.
 */
static bool
matches(const struct ccx_answer *ans, const struct expect *e)
{
	if (ans->kind == ANS_ERROR)
		return ans->id[0] == '\0' || (e->id != NULL &&
		    strcasecmp(ans->id, e->id) == 0) ||
		    (e->opname != NULL && strcmp(ans->id, e->opname) == 0);
	return ans->kind == e->kind && e->id != NULL &&
	    strcasecmp(ans->id, e->id) == 0;
}

static int
timed_out(cc_agent *a)
{
	if (a->hello_error != 0)
		return ccx_fail(a, a->hello_error, NULL,
		    "the broker at %s refused our hello", a->endpoint);
	if (a->auth_failed != 0)
		return ccx_fail(a, CC_AGENT_ERR_AUTH, NULL,
		    "the broker at %s refused the handshake: check our "
		    "certificate and broker_certificate", a->endpoint);
	return ccx_fail(a, CC_AGENT_ERR_TIMEOUT, NULL, "%s %s within %d s",
	    a->state == SESS_DOWN ? "cannot reach the broker at" :
	    "no answer from the broker at", a->endpoint,
	    (a->timeout_ms + 999) / 1000);
}

static int
answer_error(cc_agent *a, struct ccx_answer *ans)
{
	a->err = ans->err;
	ccx_answer_free(ans);
	return a->err.code;
}

/*
 * Send a request and wait for its answer, sending it again on every new
 * session and after `busy`, until the handle's timeout.
 */
static int
request(cc_agent *a, enum cc_op op, const char *json, const struct expect *e,
    struct ccx_answer *ans)
{
	int64_t		deadline = ccx_now_ms() + a->timeout_ms, resend_at = 0;
	int64_t		now, left;
	unsigned	sent_session = 0;
	bool		sent = false;
	int		backoff = BUSY_BACKOFF_MS, rc;

	memset(ans, 0, sizeof(*ans));
	ccx_answers_clear(a);
	for (;;) {
		now = ccx_now_ms();
		if (a->hello_error != 0 || (a->auth_failed != 0 &&
		    a->state != SESS_READY))
			return timed_out(a);
		if (a->state == SESS_READY && (!sent ||
		    sent_session != a->session ||
		    (resend_at != 0 && now >= resend_at))) {
			rc = ccx_send_json(a, op, json);
			if (rc != CC_AGENT_OK && rc != CC_AGENT_ERR_TIMEOUT)
				return rc;
			if (rc == CC_AGENT_OK) {
				sent = true;
				sent_session = a->session;
				resend_at = 0;
			}
		}
		while (ccx_answer_pop(a, ans) == 1) {
			if (!matches(ans, e)) {
				ccx_answer_free(ans);
				continue;
			}
			if (ans->kind != ANS_ERROR)
				return CC_AGENT_OK;
			if (ans->err.code == CC_AGENT_ERR_BUSY &&
			    now + backoff < deadline) {
				ccx_answer_free(ans);
				resend_at = now + backoff;
				if ((backoff *= 2) > BUSY_BACKOFF_MAX_MS)
					backoff = BUSY_BACKOFF_MAX_MS;
				continue;
			}
			return answer_error(a, ans);
		}
		left = deadline - now;
		if (left <= 0)
			return timed_out(a);
		if (resend_at != 0 && resend_at - now < left)
			left = resend_at - now > 0 ? resend_at - now : 0;
		if (ccx_wait(a, -1, (int)left, CCX_WAIT_ANSWER |
		    CCX_WAIT_SESSION) == -1)
			return a->err.code;
	}
}

/*
 * A withdrawal by subject is answered once per consent, and how many there
 * are only the broker knows.  Behind it we send a `track` of a fresh mid:
 * the broker answers one connection's requests in order, so that track's
 * error marks the end of the withdrawal's answers.
 */
static int
request_all(cc_agent *a, const char *json, struct cc_consent_recorded *out,
    size_t max, size_t *n)
{
	struct ccx_answer	 ans;
	struct cc_agent_error	 failed;
	char			 barrier[CC_UUID_LEN + 1], track[64];
	int64_t			 deadline = ccx_now_ms() + a->timeout_ms, left;
	unsigned		 sent_session = 0;
	bool			 sent = false;
	int			 rc;

	cc_uuid_new(barrier);
	(void)snprintf(track, sizeof(track), "{\"mid\":\"%s\"}", barrier);
	ccx_answers_clear(a);
	for (;;) {
		if (a->hello_error != 0 || (a->auth_failed != 0 &&
		    a->state != SESS_READY))
			return timed_out(a);
		if (a->state == SESS_READY && (!sent ||
		    sent_session != a->session)) {
			*n = 0;
			memset(&failed, 0, sizeof(failed));
			rc = ccx_send_json(a, OP_CONSENT_WITHDRAW, json);
			if (rc == CC_AGENT_OK)
				rc = ccx_send_json(a, OP_TRACK, track);
			if (rc != CC_AGENT_OK && rc != CC_AGENT_ERR_TIMEOUT)
				return rc;
			if (rc == CC_AGENT_OK) {
				sent = true;
				sent_session = a->session;
			}
		}
		while (ccx_answer_pop(a, &ans) == 1) {
			if (ans.kind == ANS_RECORDED) {
				if (*n < max) {
					(void)snprintf(out[*n].cid,
					    sizeof(out[*n].cid), "%.36s", ans.id);
					out[*n].version = ans.version;
				}
				(*n)++;
			} else if (ans.kind == ANS_ERROR &&
			    strcasecmp(ans.id, barrier) == 0) {
				ccx_answer_free(&ans);
				if (failed.code != 0) {
					a->err = failed;
					return failed.code;
				}
				if (*n > max)
					*n = max;
				return CC_AGENT_OK;
			} else if (ans.kind == ANS_ERROR && (ans.id[0] == '\0' ||
			    strcmp(ans.id, "consent-withdraw") == 0))
				failed = ans.err;
			ccx_answer_free(&ans);
		}
		left = deadline - ccx_now_ms();
		if (left <= 0)
			return timed_out(a);
		if (ccx_wait(a, -1, (int)left, CCX_WAIT_ANSWER |
		    CCX_WAIT_SESSION) == -1)
			return a->err.code;
	}
}

int
cc_agent_publish(cc_agent *a, const char *json, char mid[CC_AGENT_ID_LEN + 1])
{
	struct ccx_answer	 ans;
	struct expect		 e;
	char			*doc = NULL;
	bool			 assigned;
	int			 rc;

	mid[0] = '\0';
	if ((rc = cc_agent_prepare(CC_AGENT_PUBLISH, json, strlen(json), &doc,
	    mid, &assigned, &a->err)) != CC_AGENT_OK)
		return rc;
	e.kind = ANS_ACCEPTED;
	e.id = mid;
	e.opname = "publish";
	rc = request(a, OP_PUBLISH, doc, &e, &ans);
	if (rc == CC_AGENT_OK)
		ccx_answer_free(&ans);
	free(doc);
	return rc;
}

int
cc_agent_consent(cc_agent *a, enum cc_agent_op op, const char *json,
    struct cc_consent_recorded *out, size_t max, size_t *n)
{
	struct ccx_answer	 ans;
	struct expect		 e;
	char			*doc = NULL, cid[CC_AGENT_ID_LEN + 1];
	bool			 assigned;
	int			 rc;

	*n = 0;
	if (op == CC_AGENT_PUBLISH)
		return ccx_fail(a, CC_AGENT_ERR_UNKNOWN_OP, NULL,
		    "not a consent op");
	if ((rc = cc_agent_prepare(op, json, strlen(json), &doc, cid,
	    &assigned, &a->err)) != CC_AGENT_OK)
		return rc;
	if (cid[0] == '\0') {
		/* A withdrawal of all of a subject's consents. */
		rc = request_all(a, doc, out, max, n);
		free(doc);
		return rc;
	}
	e.kind = ANS_RECORDED;
	e.id = cid;
	e.opname = cc_op_name(ccx_op(op));
	rc = request(a, ccx_op(op), doc, &e, &ans);
	if (rc == CC_AGENT_OK) {
		if (max > 0) {
			(void)snprintf(out[0].cid, sizeof(out[0].cid), "%.36s",
			    ans.id);
			out[0].version = ans.version;
			*n = 1;
		}
		ccx_answer_free(&ans);
	}
	free(doc);
	return rc;
}

int
cc_agent_track(cc_agent *a, const char *mid, char **json)
{
	struct ccx_answer	 ans;
	struct expect		 e;
	char			 doc[128];
	int			 rc;

	*json = NULL;
	if (!cc_uuid_valid(mid, strlen(mid)))
		return ccx_fail(a, CC_AGENT_ERR_INVALID_FIELD, "mid",
		    "not a UUID");
	(void)snprintf(doc, sizeof(doc), "{\"mid\":\"%s\"}", mid);
	e.kind = ANS_STATUS;
	e.id = mid;
	e.opname = "track";
	if ((rc = request(a, OP_TRACK, doc, &e, &ans)) != CC_AGENT_OK)
		return rc;
	*json = proto_to_json(ans.msg, false);
	ccx_answer_free(&ans);
	if (*json == NULL)
		return ccx_fail(a, CC_AGENT_ERR_SYSTEM, NULL, "out of memory");
	return CC_AGENT_OK;
}

int
cc_agent_retract(cc_agent *a, const char *mid, const char *reason)
{
	struct ccx_answer	 ans;
	struct expect		 e;
	json_t			*j;
	char			*doc;
	int			 rc;

	if (!cc_uuid_valid(mid, strlen(mid)))
		return ccx_fail(a, CC_AGENT_ERR_INVALID_FIELD, "mid",
		    "not a UUID");
	/* jansson writes the reason, escaped, as the caller gave it. */
	if ((j = json_pack("{s:s,s:s}", "mid", mid, "reason",
	    reason)) == NULL)
		return ccx_fail(a, CC_AGENT_ERR_INVALID_FIELD, "reason",
		    "not UTF-8 text");
	doc = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (doc == NULL)
		return ccx_fail(a, CC_AGENT_ERR_SYSTEM, NULL, "out of memory");
	e.kind = ANS_RETRACTED;
	e.id = mid;
	e.opname = "retract";
	rc = request(a, OP_RETRACT, doc, &e, &ans);
	free(doc);
	if (rc != CC_AGENT_OK)
		return rc;
	ccx_answer_free(&ans);
	return CC_AGENT_OK;
}

void
cc_agent_on_notice(cc_agent *a, int (*fn)(const cc_notice *, void *),
    void *arg)
{
	a->on_notice = fn;
	a->notice_arg = arg;
}

static bool
head_is_notice(const cc_agent *a)
{
	return a->inbound.head != NULL &&
	    proto_op(a->inbound.head->msg) == OP_NOTICE;
}

bool
ccx_inbound_ready(const cc_agent *a)
{
	return a->inbound.n > 0 && (a->on_notice == NULL ||
	    !head_is_notice(a));
}

/*
 * Only the notices at the head: one behind a delivery the caller has not
 * taken yet waits for it, so that the callback never hears of a record
 * corrected or retracted before the caller had the record itself.
 */
void
ccx_notices_dispatch(cc_agent *a)
{
	struct ccx_frame	*f;
	cc_delivery		*d;
	const cc_notice		*n;
	int			 r;

	if (a->in_notice)
		return;
	while (a->on_notice != NULL && head_is_notice(a)) {
		f = ccx_queue_pop(&a->inbound);
		d = ccx_delivery_new(f->msg);
		free(f);
		if (d == NULL) {
			if (a->log)
				log_warnx("out of memory: a notice dropped; "
				    "it comes again after the next reconnect");
			continue;
		}
		n = cc_delivery_notice(d);
		a->in_notice = true;
		r = a->on_notice(n, a->notice_arg);
		a->in_notice = false;
		if (r != 0) {
			if (a->log)
				log_info("notice nid=%s not stored; it comes "
				    "again after the next reconnect",
				    cc_notice_nid(n));
		} else if (cc_agent_ack(a, d) != CC_AGENT_OK && a->log)
			log_info("ack of notice nid=%s not sent; it comes "
			    "again after the next reconnect",
			    cc_notice_nid(n));
		cc_delivery_destroy(&d);
	}
}

int
cc_agent_receive(cc_agent *a, int timeout_ms, cc_delivery **out)
{
	struct ccx_frame	*f;
	int			 r;

	*out = NULL;
	ccx_notices_dispatch(a);
	if (!ccx_inbound_ready(a)) {
		r = ccx_wait(a, -1, timeout_ms, CC_AGENT_WAIT_RECEIVE |
		    CCX_WAIT_NOTICES);
		if (r == -1)
			return a->err.code;
		if (!ccx_inbound_ready(a))
			return ccx_fail(a, CC_AGENT_ERR_TIMEOUT, NULL,
			    "nothing received");
	}
	f = ccx_queue_pop(&a->inbound);
	if ((*out = ccx_delivery_new(f->msg)) == NULL) {
		/* Not lost: it comes again after the next reconnect. */
		proto_msg_destroy(&f->msg);
		free(f);
		return ccx_fail(a, CC_AGENT_ERR_SYSTEM, NULL, "out of memory");
	}
	free(f);
	return CC_AGENT_OK;
}

int
ccx_pack_ack(uint64_t dseq, msgpack_sbuffer *sb)
{
	msgpack_packer	pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, 3) != 0 ||
	    proto_pack_header(&pk, "ack") != 0 ||
	    proto_pack_cstr(&pk, "dseq") != 0 ||
	    msgpack_pack_uint64(&pk, dseq) != 0)
		return -1;
	return 0;
}

int
cc_agent_ack(cc_agent *a, const cc_delivery *d)
{
	msgpack_sbuffer	sb;
	int		rc;

	msgpack_sbuffer_init(&sb);
	if (ccx_pack_ack(cc_delivery_dseq(d), &sb) != 0)
		rc = ccx_fail(a, CC_AGENT_ERR_SYSTEM, NULL, "out of memory");
	else if ((rc = ccx_send_frame(a, &sb, true)) != CC_AGENT_OK)
		rc = CC_AGENT_ERR_SYSTEM;
	msgpack_sbuffer_destroy(&sb);
	return rc;
}
