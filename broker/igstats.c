/*
 * igstats.c - `ccbroker stats`: who is connected, queues, outcomes, the
 * store's size, each agency's use against its quota, and the state of the
 * certificates (the last reload, the CRL).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "ig.h"
#include "igcmd.h"
#include "log.h"

struct stats_walk;
static int	stats_online(const char *, void *);
static json_t	*agency_use(struct stats_walk *, const char *);
static void	jadd(json_t *, const char *, json_int_t);
static int	stats_held(const uint8_t mid[16], const struct msg_hdr *,
		    void *);
static void	stats_auth(struct store *, struct store_txn *, json_t *);
static int	stats_queue(const char *, uint64_t, const struct qent *,
		    void *);

static int
stats_online(const char *agency, void *arg)
{
	return json_array_append_new(arg, json_string(agency)) == 0 ? 0 :
	    STORE_NOMEM;
}

/* The walk of the queues for stats. */
struct stats_walk {
	json_t			*queues;
	json_t			*agencies;	/* usage per agency */
	int64_t			 now;
	struct store		*st;
	struct store_txn	*txn;
	const struct broker_conf *conf;
};

/* An agency's usage entry, made with its quota the first time. */
static json_t *
agency_use(struct stats_walk *w, const char *agency)
{
	struct quota	 q;
	json_t		*e, *jq;

	if ((e = json_object_get(w->agencies, agency)) != NULL)
		return e;
	broker_conf_quota(w->conf, agency, &q);
	ig_jput(w->agencies, agency, e = json_object());
	ig_jput(e, "queued", json_integer(0));
	ig_jput(e, "queued_bytes", json_integer(0));
	ig_jput(e, "held", json_integer(0));
	ig_jput(e, "held_bytes", json_integer(0));
	ig_jput(e, "connections", json_integer(0));
	ig_jput(e, "quota", jq = json_object());
	ig_jput(jq, "queued", json_integer((json_int_t)q.queued));
	ig_jput(jq, "queued_mb", json_integer((json_int_t)q.queued_mb));
	ig_jput(jq, "held", json_integer((json_int_t)q.held));
	ig_jput(jq, "held_mb", json_integer((json_int_t)q.held_mb));
	ig_jput(jq, "connections", json_integer((json_int_t)q.connections));
	return e;
}

/* Add n to an integer member. */
static void
jadd(json_t *o, const char *k, json_int_t n)
{
	ig_jput(o, k, json_integer(json_integer_value(json_object_get(o, k)) + n));
}

static int
stats_held(const uint8_t mid[16], const struct msg_hdr *h, void *arg)
{
	struct stats_walk	*w = arg;
	json_t			*e;

	(void)mid;
	if (h->sealed_len == 0)
		return 0;
	e = agency_use(w, h->sender);
	jadd(e, "held", 1);
	jadd(e, "held_bytes", (json_int_t)msg_record_size(h));
	return 0;
}

static int
stats_queue(const char *agency, uint64_t dseq, const struct qent *q,
    void *arg)
{
	struct stats_walk	*w = arg;
	json_t			*e;
	int64_t			 age = (w->now - q->at_ms) / 1000;

	(void)dseq;
	if (q->kind == Q_DELIVER) {
		struct msg_hdr	h;

		e = agency_use(w, agency);
		jadd(e, "queued", 1);
		if (store_msg_get(w->st, w->txn, q->mid, &h, NULL) == 0)
			jadd(e, "queued_bytes", (json_int_t)msg_record_size(&h));
	}
	if ((e = json_object_get(w->queues, agency)) == NULL) {
		ig_jput(w->queues, agency, e = json_object());
		ig_jput(e, "depth", json_integer(0));
		ig_jput(e, "oldest_age_s", json_integer(age));
	}
	ig_jput(e, "depth", json_integer(
	    json_integer_value(json_object_get(e, "depth")) + 1));
	if (age > json_integer_value(json_object_get(e, "oldest_age_s")))
		ig_jput(e, "oldest_age_s", json_integer(age));
	return 0;
}

/*
 * The certificates in force, as the broker recorded them: "reload" (the
 * last load, at start or SIGHUP: ok, at, error) and "crl" (next_update,
 * and whether that is past now).  Null when the broker never recorded it.
 */
static void
stats_auth(struct store *st, struct store_txn *txn, json_t *rep)
{
	struct auth_status	 s;
	json_t			*rl, *crl;
	char			 t[32];
	size_t			 len = 0;
	int			 rc;

	memset(&s, 0, sizeof(s));
	rc = store_meta_get(st, txn, AUTH_STATUS_META, &s, sizeof(s), &len);
	if (rc == STORE_NOTFOUND || (rc == 0 && len != sizeof(s))) {
		ig_jput(rep, "reload", json_null());
		ig_jput(rep, "crl", json_null());
		return;
	}
	if (rc != 0)
		fatalx("cannot read the reload status: %s",
		    store_strerror(rc));
	s.error[sizeof(s.error) - 1] = '\0';
	/* Paths in it need not be UTF-8; JSON must be. */
	for (len = 0; s.error[len] != '\0'; len++)
		if ((unsigned char)s.error[len] < 0x20 ||
		    (unsigned char)s.error[len] > 0x7e)
			s.error[len] = '?';
	if ((rl = json_object()) == NULL || (crl = json_object()) == NULL)
		fatalx("out of memory");
	ig_jput(rl, "ok", json_boolean(s.ok));
	cc_time_format(s.loaded_ms, t);
	ig_jput(rl, "at", json_string(t));
	ig_jput(rl, "error", s.ok ? json_null() : json_string(s.error));
	ig_jput(rep, "reload", rl);
	cc_time_format(s.crl_next_update * 1000, t);
	ig_jput(crl, "next_update", json_string(t));
	ig_jput(crl, "expired", json_boolean(cc_time_now_ms() / 1000 >
	    s.crl_next_update));
	ig_jput(rep, "crl", crl);
}

int
ig_stats(const struct broker_conf *c)
{
	struct store		*st;
	struct store_txn	*txn;
	struct store_counters	 cnt;
	struct stats_walk	 w;
	json_t			*rep, *conns, *out, *store;
	size_t			 used = 0, map = 0, i;
	char			 buf[65536];
	int			 rc;

	st = ig_open_store(c);
	if (store_begin(st, false, &txn) != 0)
		fatalx("%s: cannot read the store", c->data);
	if ((rep = json_object()) == NULL || (conns = json_array()) == NULL ||
	    (w.queues = json_object()) == NULL || (out = json_object()) == NULL ||
	    (store = json_object()) == NULL ||
	    (w.agencies = json_object()) == NULL)
		fatalx("out of memory");
	w.now = cc_time_now_ms();
	w.st = st;
	w.txn = txn;
	w.conf = c;
	for (i = 0; i < c->nagency; i++)
		(void)agency_use(&w, c->agency[i].id);
	if ((rc = store_online_each(st, txn, stats_online, conns)) != 0)
		fatalx("cannot read who is online: %s", store_strerror(rc));
	ig_jput(rep, "connections", conns);
	/* Queue depth and oldest entry per agency, in one pass. */
	if ((rc = store_queues_each(st, txn, stats_queue, &w)) != 0)
		fatalx("cannot read queues: %s", store_strerror(rc));
	ig_jput(rep, "queues", w.queues);
	if ((rc = store_counters_get(st, txn, &cnt)) != 0)
		fatalx("cannot read the counters: %s", store_strerror(rc));
	/* What each agency holds, against its quota. */
	if ((rc = store_msgs_each(st, txn, stats_held, &w)) != 0)
		fatalx("cannot read messages: %s", store_strerror(rc));
	if ((rc = store_meta_get(st, txn, "connections", buf, sizeof(buf),
	    &used)) == 0 && used <= sizeof(buf)) {
		const char *p = buf, *end = buf + used;

		while (p < end) {
			size_t		 l = strnlen(p, (size_t)(end - p));
			const char	*id = p, *num;

			if ((p += l + 1) >= end)
				break;
			num = p;
			p += strnlen(p, (size_t)(end - p)) + 1;
			if (l > 0 && l <= CC_ID_MAX)
				ig_jput(agency_use(&w, id), "connections",
				    json_integer(strtoll(num, NULL, 10)));
		}
	} else if (rc != 0 && rc != STORE_NOTFOUND)
		fatalx("cannot read connections: %s", store_strerror(rc));
	used = 0;
	stats_auth(st, txn, rep);
	store_abort(txn);
	ig_jput(rep, "agencies", w.agencies);
	ig_jput(out, "accepted", json_integer(cnt.accepted));
	ig_jput(out, "delivered", json_integer(cnt.delivered));
	ig_jput(out, "withheld", json_integer(cnt.withheld));
	ig_jput(out, "purged", json_integer(cnt.purged));
	ig_jput(out, "expired", json_integer(cnt.expired));
	ig_jput(out, "refused_connections",
	    json_integer(cnt.refused));
	ig_jput(out, "rejected_inputs", json_integer(cnt.rejected));
	ig_jput(rep, "outcomes", out);
	if (store_usage(st, &used, &map) != 0)
		fatalx("cannot measure the store");
	ig_jput(store, "used_bytes", json_integer(used));
	ig_jput(store, "map_bytes", json_integer(map));
	ig_jput(rep, "store", store);
	store_close(&st);
	return ig_print_json(rep);
}

