/*
 * quota.c - what each agency may hold of the broker (issue 18, quotas).
 *
 * One agency with consent for a recipient that is offline, or a recipient
 * that never comes back, could fill the store for everyone.  So each
 * agency has a quota of deliveries waiting for it and of its own messages
 * waiting for anyone (count and bytes), and of open connections; a
 * publish that would take an agency past one is refused with
 * `over-quota` (nothing is stored, so nothing is lost: the sender keeps
 * it and sends it again later).
 *
 * Usage is counted in memory from the store at start and kept as the
 * store changes; a turn or a request undone puts it back with the rest of
 * the sessions' state (batch.c).
 */
#include <string.h>

#include "broker_impl.h"
#include "log.h"

static int	count_queue(const char *, uint64_t, const struct qent *,
		    void *);
static int	count_held(const uint8_t mid[16], const struct msg_hdr *,
		    void *);

struct load {
	struct broker		*b;
	struct store_txn	*txn;
};

static int
count_queue(const char *agency, uint64_t dseq, const struct qent *q,
    void *arg)
{
	struct load	*l = arg;
	struct msg_hdr	 h;
	struct peer	*p;

	(void)dseq;
	if (q->kind != Q_DELIVER || (p = broker_peer(l->b, agency)) == NULL)
		return 0;
	p->use.queued++;
	if (store_msg_get(l->b->st, l->txn, q->mid, &h, NULL) == 0)
		p->use.queued_bytes += msg_record_size(&h);
	return 0;
}

static int
count_held(const uint8_t mid[16], const struct msg_hdr *h, void *arg)
{
	struct load	*l = arg;
	struct peer	*p;

	(void)mid;
	if (h->sealed_len == 0 || (p = broker_peer(l->b, h->sender)) == NULL)
		return 0;
	p->use.held++;
	p->use.held_bytes += msg_record_size(h);
	return 0;
}

/* What every agency holds, counted from the store. */
int
quota_load(struct broker *b)
{
	struct load	l = { b, NULL };
	size_t		i;
	int		rc;

	for (i = 0; i < b->npeer; i++)
		memset(&b->peer[i].use, 0, sizeof(b->peer[i].use));
	if ((rc = store_begin(b->st, false, &l.txn)) != 0)
		return rc;
	if ((rc = store_queues_each(b->st, l.txn, count_queue, &l)) == 0)
		rc = store_msgs_each(b->st, l.txn, count_held, &l);
	store_abort(l.txn);
	return rc;
}

void
quota_enqueue(struct broker *b, const char *agency, size_t bytes)
{
	struct peer	*p;

	if ((p = broker_peer(b, agency)) != NULL) {
		p->use.queued++;
		p->use.queued_bytes += bytes;
	}
}

void
quota_dequeue(struct broker *b, const char *agency, size_t bytes)
{
	struct peer	*p;

	if ((p = broker_peer(b, agency)) == NULL)
		return;
	p->use.queued -= p->use.queued > 0;
	p->use.queued_bytes -= bytes < p->use.queued_bytes ? bytes :
	    p->use.queued_bytes;
}

void
quota_hold(struct broker *b, const char *agency, size_t bytes)
{
	struct peer	*p;

	if ((p = broker_peer(b, agency)) != NULL) {
		p->use.held++;
		p->use.held_bytes += bytes;
	}
}

void
quota_release(struct broker *b, const char *agency, size_t bytes)
{
	struct peer	*p;

	if ((p = broker_peer(b, agency)) == NULL)
		return;
	p->use.held -= p->use.held > 0;
	p->use.held_bytes -= bytes < p->use.held_bytes ? bytes :
	    p->use.held_bytes;
}

bool
quota_room_queued(const struct peer *p, size_t bytes)
{
	return (p->quota.queued == 0 || p->use.queued < p->quota.queued) &&
	    (p->quota.queued_mb == 0 || p->use.queued_bytes + bytes <=
	    p->quota.queued_mb << 20);
}

bool
quota_room_held(const struct peer *p, size_t bytes)
{
	return (p->quota.held == 0 || p->use.held < p->quota.held) &&
	    (p->quota.held_mb == 0 || p->use.held_bytes + bytes <=
	    p->quota.held_mb << 20);
}

/*
 * A request on a connection not yet counted for its agency: one more,
 * unless the agency already has its quota of them.  Returns true when the
 * request may be served.
 */
bool
quota_connection(struct broker *b, struct peer *p, int fd)
{
	if (fd < 0)
		return true;
	if ((size_t)fd < b->connpeer_cap && b->connpeer[fd] != 0)
		return true;
	if (p->quota.connections != 0 && p->nconn >= p->quota.connections)
		return false;
	if ((size_t)fd >= b->connpeer_cap) {
		size_t	 cap = b->connpeer_cap ? b->connpeer_cap : 1024;
		void	*np;

		while (cap <= (size_t)fd)
			cap *= 2;
		if ((np = reallocarray(b->connpeer, cap,
		    sizeof(*b->connpeer))) == NULL)
			return true;	/* uncounted, not refused */
		memset((char *)np + b->connpeer_cap * sizeof(*b->connpeer), 0,
		    (cap - b->connpeer_cap) * sizeof(*b->connpeer));
		b->connpeer = np;
		b->connpeer_cap = cap;
	}
	b->connpeer[fd] = (uint32_t)(p - b->peer) + 1;
	p->nconn++;
	return true;
}

/* A connection closed: its agency has one fewer. */
void
quota_disconnect(struct broker *b, int fd)
{
	uint32_t	i;

	if (fd < 0 || (size_t)fd >= b->connpeer_cap ||
	    (i = b->connpeer[fd]) == 0)
		return;
	b->connpeer[fd] = 0;
	if (i - 1 < b->npeer && b->peer[i - 1].nconn > 0)
		b->peer[i - 1].nconn--;
}
