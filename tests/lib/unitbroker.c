/*
 * unitbroker.c - a real broker without sockets for unit tests (see
 * unitbroker.h).
 */
#define _GNU_SOURCE	/* vasprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "deliver.h"
#include "dispatch.h"
#include "log.h"
#include "unitbroker.h"

static int	audit_match(uint64_t, const void *, size_t, void *);
static bool	kv_is(const msgpack_object_kv *, const char *key,
		    const char *want);

struct ub *
ub_new(const struct h_env_opts *opts)
{
	struct h_env_opts	 o;
	struct run_as		 ra;
	struct ub		*u;
	char			 err[512];

	memset(&o, 0, sizeof(o));
	if (opts != NULL)
		o = *opts;
	o.no_start = true;
	cr_assert_not_null(u = calloc(1, sizeof(*u)));
	/* Only what goes wrong: the handlers log every refusal. */
	log_init("unit", LOG_LVL_WARN);
	u->env = h_env_new(&o);
	cr_assert_eq(broker_open(&u->b, h_conf(u->env), &ra, err,
	    sizeof(err)), 0, "broker_open: %s", err);
	ub_tick(u);
	cr_assert_eq(store_begin(u->b.st, true, &u->txn), 0);
	return u;
}

void
ub_destroy(struct ub **up)
{
	struct ub	*u = *up;

	if (u == NULL)
		return;
	if (u->txn != NULL)
		store_abort(u->txn);
	broker_close(&u->b);
	h_env_destroy(&u->env);
	free(u);
	*up = NULL;
}

void
ub_tick(struct ub *u)
{
	u->b.now = cc_time_now_ms() + u->skew;
	u->b.batch_est = 0;
}

void
ub_advance(struct ub *u, int64_t ms)
{
	u->skew += ms;
	ub_tick(u);
}

/* One request as batch.c's handle_one builds it, run by dispatch(). */
static void
ub_run(struct ub *u, const char *agency, json_t *msg)
{
	struct cc_error	 err;
	struct req	 r;
	json_t		*fields;
	const char	*opname = h_str(msg, "op");
	char		*text;
	int		 op, rc;

	cr_assert_not_null(opname, "a request needs an op: %s", h_dump(msg));
	cr_assert_geq(op = cc_op_parse(opname, strlen(opname)), 0);
	fields = h_keep(json_deep_copy(msg));
	json_object_del(fields, "op");
	json_object_del(fields, "v");
	cr_assert_not_null(text = json_dumps(fields, JSON_COMPACT));
	h_keep_str(text);

	ub_tick(u);
	memset(&r, 0, sizeof(r));
	r.rid = (const uint8_t *)agency;
	r.ridlen = strlen(agency);
	r.fd = -1;
	r.len = strlen(text);
	r.txn = u->txn;
	cr_assert_not_null(r.from = auth_agency(&u->b.auth, agency,
	    (time_t)(u->b.now / 1000)), "%s is no valid agency", agency);
	cr_assert_not_null(r.peer = broker_peer(&u->b, agency));
	/* The connection authenticated with the certificate's key. */
	memcpy(r.key, r.from->cert.key, sizeof(r.key));
	cr_assert_eq(proto_from_json(op, text, strlen(text), &r.msg, &err), 0,
	    "request refused by proto: %s %s %s: %s", cc_err_name(err.code),
	    err.field, err.detail, text);
	rc = dispatch(&u->b, &r);
	proto_msg_destroy(&r.msg);
	cr_assert_eq(rc, 0, "%s of %s: %s", opname, agency,
	    store_strerror(rc));
}

json_t *
ub_calls(struct ub *u, const char *agency, json_t *msg)
{
	ub_run(u, agency, msg);
	return ub_frames(u, agency);
}

json_t *
ub_call(struct ub *u, const char *agency, json_t *msg)
{
	json_t	*all = ub_calls(u, agency, msg);

	cr_assert_leq(json_array_size(all), 1, "more than one answer: %s",
	    h_dump(all));
	return json_array_get(all, 0);
}

json_t *
ub_callf(struct ub *u, const char *agency, const char *fmt, ...)
{
	char	*text;
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	h_keep_str(text);
	return ub_call(u, agency, h_json(text));
}

json_t *
ub_frames(struct ub *u, const char *agency)
{
	struct broker	*b = &u->b;
	json_t		*all = h_keep(json_array()), *j;
	size_t		 i, keep = 0, idlen = strlen(agency);

	for (i = 0; i < b->nout; i++) {
		struct outmsg	*o = &b->out[i];
		struct cc_error	 err;
		struct cc_msg	*m;
		char		*text;

		if (o->ridlen != idlen || memcmp(o->rid, agency, idlen) != 0) {
			b->out[keep++] = *o;
			continue;
		}
		cr_assert_eq(proto_decode(o->data + o->off, o->len, SIZE_MAX,
		    &m, &err), 0, "frame %zu to %s is not valid: %s %s %s", i,
		    agency, cc_err_name(err.code), err.field, err.detail);
		cr_assert_not_null(text = proto_to_json(m, false));
		h_keep_str(text);
		j = h_json(text);
		json_object_set_new(j, "op",
		    json_string(cc_op_name(proto_op(m))));
		json_array_append(all, j);
		proto_msg_destroy(&m);
		free(o->data);
	}
	b->nout = keep;
	return all;
}

size_t
ub_nout(const struct ub *u)
{
	return u->b.nout;
}

const char *
ub_grant(struct ub *u, const char *by, const char *recipients,
    const char *categories, const char *purposes, const char *pnc,
    bool explicit_)
{
	json_t	*g, *ans;
	char	 cid[37], from[32], until[32], now[32];

	g = h_keep(json_pack("{s:s,s:s,s:{s:s},s:O,s:O,s:O,s:[],s:b,"
	    "s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s}}",
	    "op", "consent-grant",
	    "cid", h_uuid(cid),
	    "subject", "pnc", pnc,
	    "recipients", h_csv(recipients),
	    "purposes", h_csv(purposes),
	    "categories", h_csv(categories),
	    "deny",
	    "explicit", explicit_,
	    "valid_from", h_time(-86400, from),
	    "valid_until", h_time(300 * 86400, until),
	    "evidence",
		"method", "written",
		"form", "DIP consent v3",
		"worker", "J Worker",
		"captured", h_time(0, now),
		"reference", "case file 12"));
	cr_assert_not_null(g);
	ans = ub_call(u, by, g);
	h_assert_op(ans, "consent-recorded");
	return h_keep_str(strdup(cid));
}

const char *
ub_publish(struct ub *u, const char *by, json_t *msg)
{
	json_t	*ans = ub_call(u, by, msg);

	h_assert_op(ans, "accepted");
	cr_assert_str_eq(h_str(ans, "mid"), h_str(msg, "mid"));
	return h_str(msg, "mid");
}

json_t *
ub_plan(const char *pnc, const char *to_csv)
{
	json_t	*m = h_release_plan_new(pnc, "Example");

	if (to_csv != NULL)
		json_object_set(m, "to", h_csv(to_csv));
	return m;
}

struct peer *
ub_online(struct ub *u, const char *agency)
{
	struct peer		*p = broker_peer(&u->b, agency);
	const struct agency	*a;

	cr_assert_not_null(p, "no session for %s", agency);
	/* The session's key: that of the agency's certificate valid now. */
	if ((a = auth_agency(&u->b.auth, agency,
	    (time_t)(u->b.now / 1000))) != NULL)
		memcpy(p->key, a->cert.key, sizeof(p->key));
	memcpy(p->rid, agency, strlen(agency));
	p->ridlen = strlen(agency);
	p->online = true;
	p->connected = true;
	p->fd = -1;
	p->cursor = 0;
	p->inflight = 0;
	p->dirty = true;
	return p;
}

void
ub_pump(struct ub *u)
{
	int	rc;

	ub_tick(u);
	rc = deliver_pump(&u->b, u->txn);
	cr_assert_eq(rc, 0, "deliver_pump: %s", store_strerror(rc));
}

void
ub_commit(struct ub *u)
{
	cr_assert_eq(state_save(&u->b, u->txn), 0);
	cr_assert_eq(store_commit(u->txn), 0);
	u->txn = NULL;
	cr_assert_eq(store_begin(u->b.st, true, &u->txn), 0);
}

json_t *
ub_queue(struct ub *u, const char *agency)
{
	json_t		*all = h_keep(json_array()), *e;
	struct qent	 q;
	uint64_t	 dseq = 0;
	char		 mid[37];
	int		 rc;

	while ((rc = store_queue_next(u->b.st, u->txn, agency, dseq, &dseq,
	    &q)) == 0) {
		uuid_unparse_lower(q.mid, mid);
		e = json_pack("{s:I,s:s,s:s}", "dseq", (json_int_t)dseq,
		    "kind", q.kind == Q_RECEIPT ? "receipt" : "deliver",
		    "mid", mid);
		if (q.kind == Q_RECEIPT) {
			json_object_set_new(e, "agency", json_string(q.agency));
			json_object_set_new(e, "state",
			    json_string(cc_state_name(q.state)));
			json_object_set_new(e, "reason",
			    json_string(cc_reason_name(q.reason)));
		}
		json_array_append_new(all, e);
	}
	cr_assert_eq(rc, STORE_NOTFOUND, "queue of %s: %s", agency,
	    store_strerror(rc));
	return all;
}

const char *
ub_rstate(struct ub *u, const char *mid, const char *agency)
{
	struct rstate	rs;
	uint8_t		id[16];
	char		buf[64];
	int		rc;

	cr_assert_eq(uuid_parse(mid, id), 0);
	rc = store_rstate_get(u->b.st, u->txn, id, agency, &rs);
	if (rc == STORE_NOTFOUND)
		return NULL;
	cr_assert_eq(rc, 0, "%s", store_strerror(rc));
	if (rs.reason != RS_NONE)
		snprintf(buf, sizeof(buf), "%s/%s", cc_state_name(rs.state),
		    cc_reason_name(rs.reason));
	else
		snprintf(buf, sizeof(buf), "%s", cc_state_name(rs.state));
	return h_keep_str(strdup(buf));
}

void
ub_expect_rstate(struct ub *u, const char *what, const char *mid,
    const char *agency, const char *want)
{
	const char	*got = ub_rstate(u, mid, agency);

	if (want == NULL)
		cr_expect_null(got, "%s: %s should not be a recipient, is %s",
		    what, agency, got);
	else
		cr_expect(got != NULL && strcmp(got, want) == 0,
		    "%s: %s should be %s, is %s", what, agency, want,
		    got != NULL ? got : "no recipient");
}

struct audit_want {
	const char	*ev, *id, *recipient, *reason;
	size_t		 n;
};

static bool
kv_is(const msgpack_object_kv *kv, const char *key, const char *want)
{
	size_t	klen = strlen(key), wlen = strlen(want);

	return kv->key.type == MSGPACK_OBJECT_STR &&
	    kv->key.via.str.size == klen &&
	    memcmp(kv->key.via.str.ptr, key, klen) == 0 &&
	    kv->val.type == MSGPACK_OBJECT_STR &&
	    kv->val.via.str.size == wlen &&
	    memcmp(kv->val.via.str.ptr, want, wlen) == 0;
}

static int
audit_match(uint64_t seq, const void *entry, size_t len, void *arg)
{
	struct audit_want	*w = arg;
	const char		*keys[] = { "ev", "id", "recipient", "reason" };
	const char		*want[] = { w->ev, w->id, w->recipient,
				    w->reason };
	msgpack_unpacked	 up;
	size_t			 off = 0, k;
	uint32_t		 i;
	bool			 all = true;

	(void)seq;
	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, (const char *)entry, len,
	    &off),
	    MSGPACK_UNPACK_SUCCESS);
	cr_assert_eq(up.data.type, MSGPACK_OBJECT_MAP);
	for (k = 0; k < 4 && all; k++) {
		bool found = want[k] == NULL;

		for (i = 0; !found && i < up.data.via.map.size; i++)
			found = kv_is(&up.data.via.map.ptr[i], keys[k],
			    want[k]);
		all = found;
	}
	msgpack_unpacked_destroy(&up);
	if (all)
		w->n++;
	return 0;
}

size_t
ub_audit_count(struct ub *u, uint64_t from, const char *ev, const char *id,
    const char *recipient, const char *reason)
{
	struct audit_want	w = { ev, id, recipient, reason, 0 };

	cr_assert_eq(store_audit_each(u->b.st, u->txn, from, audit_match,
	    &w), 0);
	return w.n;
}

uint64_t
ub_audit_next(struct ub *u)
{
	const void	*v;
	uint64_t	 seq;
	size_t		 len;
	int		 rc;

	rc = store_audit_last(u->b.st, u->txn, &seq, &v, &len);
	if (rc == STORE_NOTFOUND)
		return 1;
	cr_assert_eq(rc, 0, "%s", store_strerror(rc));
	return seq + 1;
}

void
ub_revoke(struct ub *u, const char *agency)
{
	char	err[512];

	cr_assert_eq(h_revoke(u->env, agency), 0);
	cr_assert_eq(auth_load(&u->b.auth, &u->b.conf, err, sizeof(err)), 0,
	    "reload: %s", err);
	cr_assert_null(auth_agency(&u->b.auth, agency,
	    (time_t)(u->b.now / 1000)), "%s still valid", agency);
}
