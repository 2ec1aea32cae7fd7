/*
 * conn.c - connections and file descriptors.
 *
 * A ROUTER says nothing when a peer comes or goes; its monitor does,
 * naming the socket.  Disconnects tell `stats` who is connected (hello
 * recorded the socket; delivery itself notices a vanished peer when
 * sending to it fails); both kinds count the connections against the
 * descriptor limit.
 */
#include <sys/resource.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "broker_impl.h"
#include "log.h"

#define CONN_FD_SPARE	16	/* descriptors kept for handshakes under way */
#define MONITOR_BATCH	4096	/* monitor events read per loop, at most */

static void	conn_track(struct broker *, uint32_t fd, bool open);
static size_t	conn_limit(const struct broker *);

/*
 * All waiting events are read: libzmq's I/O thread blocks on a full
 * monitor pipe, and a flood of handshakes makes two events each.
 */
void
conn_monitor_read(struct broker *b)
{
	zmq_msg_t	ev, addr;
	uint16_t	event;
	uint32_t	value;
	size_t		i, n;

	for (n = 0; n < MONITOR_BATCH; n++) {
		if (zmq_msg_init(&ev) == -1 || zmq_msg_init(&addr) == -1)
			break;
		if (zmq_msg_recv(&ev, b->monitor, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&ev);
			zmq_msg_close(&addr);
			break;
		}
		if (zmq_msg_more(&ev) &&
		    zmq_msg_recv(&addr, b->monitor, 0) == -1)
			goto next;
		if (zmq_msg_size(&ev) < 6)
			goto next;
		memcpy(&event, zmq_msg_data(&ev), 2);
		memcpy(&value, (uint8_t *)zmq_msg_data(&ev) + 2, 4);
		if (event == ZMQ_EVENT_ACCEPTED)
			conn_track(b, value, true);
		if (event != ZMQ_EVENT_DISCONNECTED)
			goto next;
		conn_track(b, value, false);
		quota_disconnect(b, (int)value);
		for (i = 0; i < b->npeer; i++) {
			if (b->peer[i].connected &&
			    b->peer[i].fd == (int)value) {
				b->peer[i].connected = false;
				log_info("agency=%s disconnected",
				    b->peer[i].id);
				b->peer[i].dirty = true; /* state_save runs */
			}
		}
next:
		zmq_msg_close(&ev);
		zmq_msg_close(&addr);
	}
}

/*
 * Out of descriptors, libzmq cannot accept a connection and retries at
 * once, for ever: the connection hangs unanswered and an I/O thread
 * spins.  So the broker refuses handshakes (ZAP: "connection limit
 * reached") once its connections use what the descriptor limit leaves:
 * a refused client hears so at once, its descriptor is freed, and the
 * connections the broker has keep theirs.  Connections are counted by
 * descriptor, so a lost event corrects itself when the number is reused.
 */
static void
conn_track(struct broker *b, uint32_t fd, bool open)
{
	if (fd >= b->conncap) {
		size_t	 cap = b->conncap ? b->conncap : 1024;
		bool	*p;

		if (!open)
			return;
		while (cap <= fd)
			cap *= 2;
		if ((p = realloc(b->conn, cap * sizeof(*p))) == NULL)
			return;
		memset(p + b->conncap, 0, (cap - b->conncap) * sizeof(*p));
		b->conn = p;
		b->conncap = cap;
	}
	if (b->conn[fd] == open)
		return;
	b->conn[fd] = open;
	if (open)
		b->nconn++;
	else
		b->nconn--;
}

/* Connections the soft descriptor limit leaves room for: less what the
 * broker held before its first peer, less a spare for handshakes under
 * way (each holds a descriptor before ZAP is asked). */
static size_t
conn_limit(const struct broker *b)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
	    rl.rlim_cur == RLIM_INFINITY)
		return SIZE_MAX;
	if (rl.rlim_cur <= b->fds_base + CONN_FD_SPARE)
		return 0;
	return rl.rlim_cur - b->fds_base - CONN_FD_SPARE;
}

/* Before handshakes are decided: at the limit?  Said once each way. */
void
conn_check(struct broker *b)
{
	size_t	limit = conn_limit(b);
	bool	full = b->nconn > limit;	/* the asker is counted */

	if (full != b->auth.full) {
		if (full)
			log_warnx("connection limit reached: %zu connections, "
			    "%zu allowed by the descriptor limit; refusing "
			    "new ones", b->nconn - 1, limit);
		else
			log_info("below the connection limit again: %zu "
			    "connections", b->nconn);
	}
	b->auth.full = full;
}

/* Descriptors open now (the broker's own, before any peer). */
size_t
conn_fds_open(void)
{
	struct rlimit	rl;
	size_t		n = 0;
	int		fd, max = 65536;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max)
		max = (int)rl.rlim_cur;
	for (fd = 0; fd < max; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/*
 * Every connection costs a file descriptor, and a distribution's default
 * soft limit (1024) is far below what a partnership with a thousand
 * connections needs; the hard limit is what the administrator allows.
 */
void
conn_raise_nofile(void)
{
	struct rlimit	rl;
	rlim_t		old;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	old = rl.rlim_cur;
	if (rl.rlim_cur == rl.rlim_max)
		return;
	/* Never "unlimited": the kernel refuses more than nr_open. */
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 65536 : rl.rlim_max;
	if (rl.rlim_cur <= old)
		return;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("cannot raise the file descriptor limit from %llu",
		    (unsigned long long)old);
	else
		log_info("file descriptor limit raised from %llu to %llu",
		    (unsigned long long)old, (unsigned long long)rl.rlim_cur);
}
