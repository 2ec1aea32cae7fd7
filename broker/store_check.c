/*
 * store_check.c - finding damage: the summary each commit records, and
 * the checks made at start and by `ccbroker audit verify`.
 *
 * A flipped bit in a value fails the value's tag (store_tag.c).  A flipped
 * bit in a key or a page pointer moves or loses entries, which no tag can
 * show by itself: each commit records how many entries every database
 * holds (tagged, so an edit of the file must forge it too), and the checks
 * count them again and follow the references between databases.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_impl.h"

#define REPORT_MAX	100	/* findings said one by one; then a count */

/* The databases the summary counts, in its order. */
static const struct {
	const char	*name;
	size_t		 off;
	uint8_t		 dom;		/* 0: untagged (audit) */
	bool		 index;		/* rebuilt from another */
} dbs[] = {
	{ "consent",	offsetof(struct store, consent), TD_CONSENT, false },
	{ "cview",	offsetof(struct store, cview),	 TD_CVIEW,   true },
	{ "csubj",	offsetof(struct store, csubj),	 TD_CSUBJ,   true },
	{ "msg",	offsetof(struct store, msg),	 TD_MSG,     false },
	{ "queue",	offsetof(struct store, queue),	 TD_QUEUE,   false },
	{ "qsubj",	offsetof(struct store, qsubj),	 TD_QSUBJ,   true },
	{ "rstate",	offsetof(struct store, rstate),	 TD_RSTATE,  false },
	{ "expiry",	offsetof(struct store, expiry),	 TD_EXPIRY,  false },
	{ "subs",	offsetof(struct store, subs),	 TD_SUBS,    false },
	{ "notice",	offsetof(struct store, notice),	 TD_NOTICE,  false },
	{ "discl",	offsetof(struct store, discl),	 TD_DISCL,   false },
	{ "audit",	offsetof(struct store, audit),	 0,	     false },
};
#define NDB	(sizeof(dbs) / sizeof(dbs[0]))

/* One check under way. */
struct check {
	struct store	*st;
	MDB_txn		*txn;
	void		(*report)(const char *, void *);
	void		*arg;
	int		 found;
	bool		 rebuild_consent, rebuild_msg;
	bool		 misshapen;	/* LMDB's pages are damaged */
};

static MDB_dbi	dbi_of(struct store *, size_t);
static int	value_ok(struct store *, uint8_t, const MDB_val *,
		    const MDB_val *);
static void	say(struct check *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	findable(MDB_txn *, MDB_dbi, bool, const MDB_val *,
		    const MDB_val *);
static int	scan_db(struct check *, size_t, bool full, size_t *count);
static void	pages_say(const char *, void *);
static int	check_meta(struct check *, bool have_sum);
static int	refs_queue(struct check *);
static int	refs_consent(struct check *);
static int	refs_index(struct check *, MDB_dbi, uint8_t, const char *);

static MDB_dbi
dbi_of(struct store *st, size_t i)
{
	return *(MDB_dbi *)((char *)st + dbs[i].off);
}

/*
 * Does a value of a database pass its checks (whatever its layout)?  A
 * message's payload and a consent's history are opened too: their own
 * AEAD tag is all that guards them, and a history that no longer opens
 * is a subject access report with a hole in it.
 */
static int
value_ok(struct store *st, uint8_t dom, const MDB_val *k, const MDB_val *v)
{
	struct consent		 c;
	struct msg_hdr		 h;
	struct notice_hdr	 nh;
	struct discl		 d;
	MDB_val			 w = *v;
	const uint8_t	*sealed = NULL, *ad = k->mv_data;
	uint32_t	 len = 0;
	uint8_t		*out;
	int		 ok;

	switch (dom) {
	case TD_CONSENT:
		if (consent_value(st, k, v, &c) != 0)
			return 0;
		sealed = c.sealed;
		len = c.h.sealed_len;
		break;
	case TD_MSG:
		if (msg_value(st, k, v, &h, &sealed) != 0)
			return 0;
		len = h.sealed_len;
		break;
	case TD_NOTICE:
		if (notice_value(st, k, v, &nh, &sealed) != 0)
			return 0;
		len = nh.sealed_len;
		break;
	case TD_DISCL:
		if (discl_value(st, k, v, &d, &sealed) != 0)
			return 0;
		len = d.sealed_len;
		break;
	default:
		return tag_check(st, dom, k, &w) == 0;
	}
	if (len == 0)
		return 1;
	if (len < SEAL_OVERHEAD || (out = malloc(len)) == NULL)
		return 0;
	ok = seal_open(&st->seal, ad, k->mv_size, sealed, len, out) == 0;
	explicit_bzero(out, len);
	free(out);
	return ok;
}

static void
say(struct check *c, const char *fmt, ...)
{
	char	line[256];
	va_list	ap;

	if (c->found++ >= REPORT_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->report(line, c->arg);
}

int
store_summary_put(struct store *st, struct store_txn *t)
{
	MDB_val		k = META_KEY(META_SUMMARY);
	MDB_stat	ms;
	uint64_t	n[NDB];
	size_t		i;
	int		rc;

	for (i = 0; i < NDB; i++) {
		if ((rc = mdb_stat(txn_of(t), dbi_of(st, i), &ms)) != 0)
			return store_rc(rc, "summary");
		n[i] = ms.ms_entries;
	}
	return store_rc(tag_put(st, txn_of(t), st->meta, TD_META, &k, n,
	    sizeof(n), 0), "summary");
}

/*
 * Can an entry met walking the database be found again by its key?  A
 * flipped bit in a branch page's key sends a search down the wrong path:
 * the entries behind it are still there in a walk, and in the counts,
 * but every lookup and range seek (a queue read from a cursor, an ack, a
 * decision) misses them.
 */
static int
findable(MDB_txn *txn, MDB_dbi dbi, bool dup, const MDB_val *k,
    const MDB_val *v)
{
	MDB_cursor	*probe;
	MDB_val		 fk = *k, fv = *v;
	int		 rc;

	/* A key of a length LMDB never stores cannot be looked up. */
	if (k->mv_size == 0 || k->mv_size > KEY_MAX)
		return MDB_NOTFOUND;
	/*
	 * From the root each time: a cursor already placed looks in its own
	 * page first, and would find the entry where a search from the root
	 * (a seek of store_queue_next) never gets.
	 */
	if (!dup)
		rc = mdb_get(txn, dbi, &fk, &fv);
	else if ((rc = mdb_cursor_open(txn, dbi, &probe)) == 0) {
		rc = mdb_cursor_get(probe, &fk, &fv, MDB_GET_BOTH);
		mdb_cursor_close(probe);
	}
	if (rc != 0)
		return rc == MDB_BAD_VALSIZE ? MDB_NOTFOUND : rc;
	/* Found: the very entry, not another one with an equal key. */
	return dup || fv.mv_data == v->mv_data ? 0 : MDB_NOTFOUND;
}

/*
 * Read a database through: count its entries and check each one's shape
 * (entry_shaped); when `deep`, also check every value's tag and that each
 * entry can be found by its key.
 */
static int
scan_db(struct check *c, size_t i, bool deep, size_t *count)
{
	MDB_dbi		 dbi = dbi_of(c->st, i);
	MDB_cursor	*cur;
	MDB_val		 k, v;
	size_t		 bad = 0, lost = 0, odd = 0;
	int		 rc, f;

	*count = 0;
	if ((rc = mdb_cursor_open(c->txn, dbi, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		(*count)++;
		if (!entry_shaped(c->st, dbs[i].dom, &k, &v, true)) {
			odd++;
			continue;
		}
		if (!deep)
			continue;
		if (dbs[i].dom != 0 && !value_ok(c->st, dbs[i].dom, &k, &v))
			bad++;
		if ((f = findable(c->txn, dbi, dbs[i].dom == TD_QSUBJ, &k,
		    &v)) == MDB_NOTFOUND)
			lost++;
		else if (f != 0) {
			rc = f;
			break;
		}
	}
	mdb_cursor_close(cur);
	if (odd > 0) {
		say(c, "%s: %zu entries of a shape it never holds (LMDB's page "
		    "damaged, or the file edited)", dbs[i].name, odd);
		c->misshapen = true;
	}
	if (bad > 0) {
		say(c, "%s: %zu entries fail their integrity check",
		    dbs[i].name, bad);
		if (dbs[i].index)
			*(dbs[i].dom == TD_QSUBJ ? &c->rebuild_msg :
			    &c->rebuild_consent) = true;
	}
	if (lost > 0) {
		say(c, "%s: %zu entries cannot be found by their key (a "
		    "damaged page)", dbs[i].name, lost);
		if (dbs[i].index)
			*(dbs[i].dom == TD_QSUBJ ? &c->rebuild_msg :
			    &c->rebuild_consent) = true;
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* A fault of LMDB's pages (store_pages.c), as a finding. */
static void
pages_say(const char *line, void *arg)
{
	say(arg, "%s", line);
}

/*
 * The metadata: each record one of the names the store writes, each but
 * the format record passing its tag, and once a commit recorded a summary,
 * the counters and the online list there too, and the next delivery
 * number once a recipient was decided.  (A record whose name is
 * damaged is not found under it: read as "none yet", counters from zero.)
 */
static int
check_meta(struct check *c, bool have_sum)
{
	static const char *const names[] = { META_DSEQ, META_FORMAT,
	    META_COUNTERS, META_ONLINE, META_AUDIT_HEAD, META_SUMMARY };
	MDB_cursor	*cur;
	MDB_val		 k, v;
	MDB_stat	 ms;
	bool		 seen[sizeof(names) / sizeof(names[0])] = { false };
	size_t		 i, odd = 0, bad = 0;
	int		 rc;

	if ((rc = mdb_cursor_open(c->txn, c->st->meta, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (k.mv_size == strlen(names[i]) &&
			    memcmp(k.mv_data, names[i], k.mv_size) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			/* The broker's named records (store_meta_put). */
			if (k.mv_size > 2 && memcmp(k.mv_data, META_NAMED,
			    2) == 0) {
				if (tag_check(c->st, TD_META, &k, &v) != 0)
					bad++;
			} else
				odd++;
			continue;
		}
		seen[i] = true;
		if (strcmp(names[i], META_FORMAT) != 0 &&
		    tag_check(c->st, TD_META, &k, &v) != 0)
			bad++;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	if (odd > 0)
		say(c, "meta: %zu records of no name the store writes", odd);
	if (bad > 0)
		say(c, "meta: %zu records fail their integrity check", bad);
	/* A recipient decided took a delivery number (a delivery or a
	 * receipt), which its commit recorded; a message routed to no one
	 * took none. */
	if ((rc = mdb_stat(c->txn, c->st->rstate, &ms)) != 0)
		return rc;
	for (i = 0; have_sum && i < sizeof(names) / sizeof(names[0]); i++)
		if (!seen[i] && (strcmp(names[i], META_COUNTERS) == 0 ||
		    strcmp(names[i], META_ONLINE) == 0 ||
		    (strcmp(names[i], META_DSEQ) == 0 && ms.ms_entries > 0)))
			say(c, "meta: the %s record is missing", names[i]);
	return 0;
}

/* Every queued delivery has its message, payload and delivery state;
 * every queued notice its body. */
static int
refs_queue(struct check *c)
{
	MDB_cursor	*cur;
	MDB_val		 k, v, mk, mv, rk, rv;
	struct qent	 q;
	struct msg_hdr	 h;
	struct rstate	 rs;
	uint8_t		 rkey[16 + CC_ID_MAX];
	size_t		 n;
	int		 rc, r2;

	if ((rc = mdb_cursor_open(c->txn, c->st->queue, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		if (k.mv_size < 10 || tag_check(c->st, TD_QUEUE, &k, &v) != 0 ||
		    v.mv_size != sizeof(q))
			continue;	/* counted by scan_db */
		memcpy(&q, v.mv_data, sizeof(q));
		n = k.mv_size - 9;	/* agency id */
		if (q.kind == Q_NOTICE && n <= CC_ID_MAX) {
			mk.mv_size = 16;
			mk.mv_data = q.mid;
			if ((r2 = mdb_get(c->txn, c->st->notice, &mk,
			    &mv)) != 0)
				say(c, "queue of %.*s: a notice that is %s",
				    (int)n, (const char *)k.mv_data,
				    r2 == MDB_NOTFOUND ? "missing" : "damaged");
			continue;
		}
		if (q.kind != Q_DELIVER || n > CC_ID_MAX)
			continue;
		mk.mv_size = 16;
		mk.mv_data = q.mid;
		if ((r2 = mdb_get(c->txn, c->st->msg, &mk, &mv)) == 0)
			r2 = msg_value(c->st, &mk, &mv, &h, NULL);
		if (r2 != 0 || h.sealed_len == 0) {
			say(c, "queue of %.*s: a delivery whose message is "
			    "%s", (int)n, (const char *)k.mv_data,
			    r2 == MDB_NOTFOUND ? "missing" : r2 != 0 ?
			    "damaged" : "without its payload");
			continue;
		}
		memcpy(rkey, q.mid, 16);
		memcpy(rkey + 16, k.mv_data, n);
		rk.mv_size = 16 + n;
		rk.mv_data = rkey;
		r2 = tag_get(c->st, c->txn, c->st->rstate, TD_RSTATE, &rk, &rv);
		if (r2 == 0 && rv.mv_size == sizeof(rs))
			memcpy(&rs, rv.mv_data, sizeof(rs));
		if (r2 != 0 || rv.mv_size != sizeof(rs) ||
		    rs.state != ST_QUEUED || rs.dseq != be64_get(
		    (const uint8_t *)k.mv_data + n + 1))
			say(c, "queue of %.*s: a delivery whose state is %s",
			    (int)n, (const char *)k.mv_data,
			    r2 == MDB_NOTFOUND ? "missing" : r2 != 0 ?
			    "damaged" : "not this queued entry");
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Every consent has its csubj rows, and its cview rows while in force. */
static int
refs_consent(struct check *c)
{
	MDB_cursor		*cur;
	MDB_val			 k, v, ik, iv;
	struct consent		 cs;
	struct consent_hdr	 h;
	uint8_t			 key[CVIEW_KEYLEN + 16];
	int			 i, rc, r2;

	if ((rc = mdb_cursor_open(c->txn, c->st->consent, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		if (k.mv_size != 16 || consent_value(c->st, &k, &v, &cs) != 0)
			continue;
		h = cs.h;
		for (i = 0; i < SCHEME__COUNT; i++) {
			if (!(h.subj.has & (1u << i)))
				continue;
			memcpy(key, h.subj.id[i], CVIEW_KEYLEN);
			memcpy(key + CVIEW_KEYLEN, k.mv_data, 16);
			ik.mv_size = sizeof(key);
			ik.mv_data = key;
			if ((r2 = mdb_get(c->txn, c->st->csubj, &ik,
			    &iv)) != 0) {
				say(c, "consent index csubj: a row %s",
				    r2 == MDB_NOTFOUND ? "missing" : "damaged");
				c->rebuild_consent = true;
			}
			r2 = mdb_get(c->txn, c->st->cview, &ik, &iv);
			if ((h.state == CS_ACTIVE || h.state == CS_REFUSED) !=
			    (r2 == 0)) {
				say(c, "consent index cview: a row %s",
				    r2 == 0 ? "that should not be there" :
				    "missing");
				c->rebuild_consent = true;
			}
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Every index row names a record that exists. */
static int
refs_index(struct check *c, MDB_dbi dbi, uint8_t dom, const char *name)
{
	MDB_cursor	*cur;
	MDB_val		 k, v, rk, rv;
	uint8_t		 id[16];
	int		 rc;

	if ((rc = mdb_cursor_open(c->txn, dbi, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		if (dom == TD_QSUBJ) {
			if (v.mv_size != 16 + TAG_LEN)
				continue;
			memcpy(id, v.mv_data, 16);
			rk.mv_data = id;
			rk.mv_size = 16;
			if (mdb_get(c->txn, c->st->msg, &rk, &rv) != 0) {
				say(c, "%s: a row names a missing message",
				    name);
				c->rebuild_msg = true;
			}
		} else {
			if (k.mv_size != CVIEW_KEYLEN + 16)
				continue;
			memcpy(id, (const uint8_t *)k.mv_data + CVIEW_KEYLEN,
			    16);
			rk.mv_data = id;
			rk.mv_size = 16;
			if (mdb_get(c->txn, c->st->consent, &rk, &rv) != 0) {
				say(c, "%s: a row names a missing consent",
				    name);
				c->rebuild_consent = true;
			}
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
store_check(struct store *st, enum store_depth depth,
    void (*report)(const char *, void *), void *arg)
{
	struct check	 c;
	MDB_val		 k = META_KEY(META_SUMMARY), v;
	MDB_stat	 ms;
	uint64_t	 sum[NDB];
	size_t		 i, n;
	bool		 have_sum = false, sum_there;
	bool		 full = depth == CHECK_FULL;
	int		 rc, pf;

	memset(&c, 0, sizeof(c));
	c.st = st;
	c.report = report;
	c.arg = arg;
	if ((rc = mdb_txn_begin(st->env, NULL, st->readonly ? MDB_RDONLY : 0,
	    &c.txn)) != 0)
		return -1;
	rc = tag_get(st, c.txn, st->meta, TD_META, &k, &v);
	sum_there = rc != MDB_NOTFOUND;
	if (rc == 0 && v.mv_size == sizeof(sum)) {
		memcpy(sum, v.mv_data, sizeof(sum));
		have_sum = true;
	} else if (rc != MDB_NOTFOUND)
		say(&c, "the summary of the last commit is %s",
		    rc == 0 || rc == TAG_MISMATCH ? "damaged" : "unreadable");
	/*
	 * LMDB's pages first: what it trusts and what the rest reads.  On
	 * damaged pages LMDB itself may fault: nothing more is read through
	 * it.
	 */
	if ((pf = store_pages_check(st, c.txn, pages_say, &c)) > 0) {
		c.misshapen = true;
		goto damaged;
	}
	if (pf == -1)
		say(&c, "LMDB's pages could not be read to check them");
	if ((rc = check_meta(&c, sum_there)) != 0)
		goto fail;
	for (i = 0; i < NDB; i++) {
		if ((rc = mdb_stat(c.txn, dbi_of(st, i), &ms)) != 0)
			goto fail;
		if (have_sum && ms.ms_entries != sum[i])
			say(&c, "%s: %zu entries, but the last commit recorded "
			    "%llu", dbs[i].name, ms.ms_entries,
			    (unsigned long long)sum[i]);
		/*
		 * At every start the queue is read through, and every entry
		 * of the others but the audit looked at (lengths and place,
		 * no tag); all of it in a full check.
		 */
		if (!full && dbs[i].dom == 0)
			continue;
		if ((rc = scan_db(&c, i, full || dbs[i].dom == TD_QUEUE,
		    &n)) != 0)
			goto fail;
		if (n != ms.ms_entries) {
			say(&c, "%s: %zu entries can be read, %zu are "
			    "recorded", dbs[i].name, n, ms.ms_entries);
			if (dbs[i].index)
				*(dbs[i].dom == TD_QSUBJ ? &c.rebuild_msg :
				    &c.rebuild_consent) = true;
		}
	}
	if (full && ((rc = refs_queue(&c)) != 0 ||
	    (rc = refs_consent(&c)) != 0 ||
	    (rc = refs_index(&c, st->cview, TD_CVIEW, "cview")) != 0 ||
	    (rc = refs_index(&c, st->csubj, TD_CSUBJ, "csubj")) != 0 ||
	    (rc = refs_index(&c, st->qsubj, TD_QSUBJ, "qsubj")) != 0))
		goto fail;
damaged:
	if (c.found > REPORT_MAX) {
		char line[96];

		snprintf(line, sizeof(line), "and %d findings more",
		    c.found - REPORT_MAX);
		report(line, arg);
	}
	/*
	 * LMDB's own pages damaged: it would write into them (a node moved
	 * by its header's wrong sizes, overflow pages freed that are not),
	 * spreading the damage, even corrupting memory.  Said, and the store
	 * is not written any more.
	 */
	if (c.misshapen && !st->readonly) {
		st->unwritable = true;
		report("LMDB's pages are damaged: nothing more is written to "
		    "this store; restore the last good backup", arg);
		mdb_txn_abort(c.txn);
		return -1;
	}
	/* An index is rebuilt from what it indexes; what it lost, it gets
	 * back. */
	if (!st->readonly && (c.rebuild_consent || c.rebuild_msg)) {
		if ((c.rebuild_consent &&
		    (rc = consent_reindex(st, c.txn)) != 0) ||
		    (c.rebuild_msg && (rc = msg_reindex(st, c.txn)) != 0) ||
		    (rc = store_summary_put(st,
		    (struct store_txn *)c.txn)) != 0)
			goto fail;
		report("the damaged indexes were rebuilt", arg);
	}
	if (st->readonly)
		mdb_txn_abort(c.txn);
	else if ((rc = mdb_txn_commit(c.txn)) != 0)
		return -1;
	return c.found;
fail:
	mdb_txn_abort(c.txn);
	return -1;
}
