/*
 * state.c - the agencies' sessions, and what the loop keeps in the store
 * besides requests: subscriptions, counters and who is online survive a
 * restart and are read by `ccbroker stats` in another process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "broker_impl.h"
#include "bytes.h"
#include "log.h"

#define ONLINE_MAX	65536	/* bytes of ids in the online list */

static int	load_sub(const char *, const struct sub *, void *);

/* One session per agency known from the configuration or the directory;
 * the sessions of agencies still known are kept. */
int
state_peers_build(struct broker *b)
{
	struct peer	*np;
	size_t		 n = 0, i, j, cap = b->conf.nagency + b->auth.nagency;
	const char	*id;

	if ((np = calloc(cap > 0 ? cap : 1, sizeof(*np))) == NULL)
		return -1;
	/* The connections counted for each agency follow it to its new
	 * place (the sessions are rebuilt in directory order). */
	for (i = 0; i < cap; i++) {
		struct peer	*old;

		id = i < b->conf.nagency ? b->conf.agency[i].id :
		    b->auth.agency[i - b->conf.nagency].cert.cn;
		for (j = 0; j < n; j++)
			if (strcmp(np[j].id, id) == 0)
				break;
		if (j < n)
			continue;
		if ((old = broker_peer(b, id)) != NULL)
			np[n] = *old;
		else
			snprintf(np[n].id, sizeof(np[n].id), "%s", id);
		broker_conf_quota(&b->conf, id, &np[n].quota);
		n++;
	}
	for (i = 0; i < b->connpeer_cap; i++) {
		uint32_t k = b->connpeer[i];

		if (k == 0 || k > b->npeer)
			continue;
		for (j = 0; j < n; j++)
			if (strcmp(np[j].id, b->peer[k - 1].id) == 0)
				break;
		b->connpeer[i] = j < n ? (uint32_t)j + 1 : 0;
	}
	free(b->peer);
	b->peer = np;
	b->npeer = n;
	return 0;
}

static int
load_sub(const char *agency, const struct sub *s, void *arg)
{
	struct peer	*p;

	if ((p = broker_peer(arg, agency)) != NULL) {
		p->sub = *s;
		p->has_sub = true;
	}
	return 0;
}

/* Subscriptions and counters survive restarts. */
int
state_load(struct broker *b)
{
	struct store_txn	*txn;
	struct store_counters	 c;
	int			 rc;

	if ((rc = store_begin(b->st, false, &txn)) != 0)
		return rc;
	if ((rc = store_subs_each(b->st, txn, load_sub, b)) == 0 &&
	    (rc = store_counters_get(b->st, txn, &c)) == 0) {
		b->count.n[CNT_ACCEPTED] = c.accepted;
		b->count.n[CNT_DELIVERED] = c.delivered;
		b->count.n[CNT_WITHHELD] = c.withheld;
		b->count.n[CNT_PURGED] = c.purged;
		b->count.n[CNT_EXPIRED] = c.expired;
		b->count.n[CNT_REJECTED] = c.rejected;
		b->auth.refused = c.refused;
	}
	store_abort(txn);
	return rc;
}

/*
 * What a turn records besides its requests: the next dseq and the head of
 * the audit chain, then counters and who is online, for `ccbroker stats`
 * in another process.
 */
int
state_save(struct broker *b, struct store_txn *txn)
{
	struct store_counters	 c;
	static char		 online[ONLINE_MAX];
	size_t			 i, n = 0;
	int			 rc;

	if ((rc = store_save_dseq(b->st, txn)) != 0 ||
	    (rc = audit_seal(b->st, txn)) != 0)
		return rc;
	memset(&c, 0, sizeof(c));
	c.accepted = b->count.n[CNT_ACCEPTED];
	c.delivered = b->count.n[CNT_DELIVERED];
	c.withheld = b->count.n[CNT_WITHHELD];
	c.purged = b->count.n[CNT_PURGED];
	c.expired = b->count.n[CNT_EXPIRED];
	c.rejected = b->count.n[CNT_REJECTED];
	c.refused = b->auth.refused;
	if ((rc = store_counters_put(b->st, txn, &c)) != 0)
		return rc;
	b->refused_saved = b->auth.refused;
	b->refused_saved_at = b->now;
	for (i = 0; i < b->npeer; i++) {
		size_t l = strlen(b->peer[i].id) + 1;

		if (!b->peer[i].online || !b->peer[i].connected ||
		    n + l > sizeof(online))
			continue;
		memcpy(online + n, b->peer[i].id, l);
		n += l;
	}
	if ((rc = store_online_put(b->st, txn, online, n)) != 0)
		return rc;
	/* The connections each agency has, for `stats`' quota use. */
	for (i = 0, n = 0; i < b->npeer; i++) {
		int l;

		if (b->peer[i].nconn == 0)
			continue;
		l = snprintf(online + n, sizeof(online) - n, "%s%c%u%c",
		    b->peer[i].id, '\0', b->peer[i].nconn, '\0');
		if (l < 0 || (size_t)l >= sizeof(online) - n)
			break;
		n += (size_t)l;
	}
	if ((rc = store_meta_put(b->st, txn, "connections", online, n)) != 0)
		return rc;
	/* Last: the count of every database, as this commit leaves it. */
	return store_summary_put(b->st, txn);
}

/* Nobody is connected to a stopped broker: say so to `stats`; and the
 * audit head it stops at, to the log. */
void
state_save_final(struct broker *b)
{
	struct store_txn	*txn;
	size_t			 i;

	for (i = 0; i < b->npeer; i++)
		b->peer[i].connected = false;
	/* The refusals of the interval not yet over are audited now. */
	b->now = cc_time_now_ms();
	if (store_begin(b->st, true, &txn) != 0)
		log_warnx("could not record the final state");
	else if (state_audit_refused(b, txn, true) != 0 ||
	    state_save(b, txn) != 0) {
		store_abort(txn);
		log_warnx("could not record the final state");
	} else if (store_commit(txn) != 0)
		log_warnx("could not record the final state");
	state_log_head(b, true);
}

/*
 * The head of the audit chain in the log, so that the journal, once it is
 * forwarded off the machine, holds heads the store must still have
 * (`ccbroker audit verify --heads`): at start, at stop, and once a minute
 * while the trail grows.  Only what is committed is logged; a head logged
 * from a transaction that then failed would later look like tampering.
 */
void
state_log_head(struct broker *b, bool now)
{
	struct store_txn	*txn;
	struct audit_head	 h;
	char			 hex[2 * AUDIT_HASH_LEN + 1];
	int64_t			 t = cc_time_now_ms();
	int			 rc;

	if (!now && t - b->head_looked < (int64_t)b->conf.audit_head_s * 1000)
		return;
	b->head_looked = t;
	if ((rc = store_begin(b->st, false, &txn)) == 0) {
		rc = audit_head(b->st, txn, &h);
		store_abort(txn);
	}
	if (rc != 0) {
		log_warnx("audit head cannot be read: %s", store_strerror(rc));
		return;
	}
	if (!now && h.seq == b->head_logged)
		return;
	b->head_logged = h.seq;
	log_info("audit head seq=%llu hash=%s", (unsigned long long)h.seq,
	    h.seq > 0 ? cc_hex(h.hash, sizeof(h.hash), hex) : "-");
}

/*
 * A refused handshake, counted into the aggregate of its reason (a sample
 * of addresses and agencies kept), audited when the interval is over.
 * Nothing is written per refusal.
 */
void
state_on_refused(void *arg, const char *agency, const char *fp,
    const char *why, const char *address)
{
	struct broker		*b = arg;
	struct refused_agg	*r;
	int64_t			 now = cc_time_now_ms();
	size_t			 i;

	(void)fp;
	for (i = 0; i < b->nreasons; i++)
		if (strcmp(b->refused[i].reason, why) == 0)
			break;
	/* More reasons than kept apart: the last slot takes the rest. */
	if (i == REFUSED_REASONS) {
		i = REFUSED_REASONS - 1;
		snprintf(b->refused[i].reason, sizeof(b->refused[i].reason),
		    "other reasons");
	}
	r = &b->refused[i];
	if (i == b->nreasons) {
		memset(r, 0, sizeof(*r));
		snprintf(r->reason, sizeof(r->reason), "%s", why);
		r->since_ms = now;
		if (b->nreasons++ == 0)
			b->refused_since = now;
	}
	r->count++;
	for (i = 0; i < r->naddr; i++)
		if (strcmp(r->addr[i], address) == 0)
			break;
	if (i == r->naddr && r->naddr < REFUSED_SAMPLE)
		snprintf(r->addr[r->naddr++], sizeof(r->addr[0]), "%s",
		    address);
	if (agency == NULL)
		return;
	for (i = 0; i < r->nagency; i++)
		if (strcmp(r->agency[i], agency) == 0)
			break;
	if (i == r->nagency && r->nagency < REFUSED_SAMPLE)
		snprintf(r->agency[r->nagency++], sizeof(r->agency[0]), "%s",
		    agency);
}

void
state_refused_tick(struct broker *b, int64_t now)
{
	if ((b->nreasons > 0 && now - b->refused_since >=
	    REFUSED_INTERVAL_MS) || (b->auth.refused != b->refused_saved &&
	    now - b->refused_saved_at >= REFUSED_SAVE_MS))
		b->nrefused = 1;
}

int
state_audit_refused(struct broker *b, struct store_txn *txn, bool flush)
{
	const char		*addr[REFUSED_SAMPLE], *ag[REFUSED_SAMPLE];
	struct audit_ev		 ev;
	struct refused_agg	*r;
	size_t			 i, j;
	int			 rc = 0;

	b->nrefused = 0;
	if (b->nreasons == 0 || (!flush &&
	    b->now - b->refused_since < REFUSED_INTERVAL_MS))
		return 0;
	for (i = 0; rc == 0 && i < b->nreasons; i++) {
		r = &b->refused[i];
		for (j = 0; j < r->naddr; j++)
			addr[j] = r->addr[j];
		for (j = 0; j < r->nagency; j++)
			ag[j] = r->agency[j];
		memset(&ev, 0, sizeof(ev));
		ev.event = EV_CONNECTION_REFUSED;
		ev.reason = r->reason;
		ev.at_ms = b->now;
		ev.count = r->count;
		ev.since_ms = r->since_ms;
		ev.addresses = addr;
		ev.naddresses = r->naddr;
		ev.agencies = ag;
		ev.nagencies = r->nagency;
		rc = audit_append(b->st, txn, &ev);
	}
	b->nreasons = 0;
	b->refused_since = 0;
	return rc;
}

/* A transaction of its own: a reload is rare, and may find no turn. */
void
state_save_status(struct broker *b)
{
	struct store_txn	*txn;
	int			 rc;

	if ((rc = store_begin(b->st, true, &txn)) == 0) {
		if ((rc = store_meta_put(b->st, txn, AUTH_STATUS_META,
		    &b->status, sizeof(b->status))) == 0)
			rc = store_commit(txn);
		else
			store_abort(txn);
	}
	if (rc != 0)
		log_warnx("could not record the reload's outcome for stats: "
		    "%s", store_strerror(rc));
}
