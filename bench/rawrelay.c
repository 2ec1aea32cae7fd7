/*
 * rawrelay.c - the transport's ceiling: a bare CurveZMQ relay.
 *
 *   rawrelay -e ENDPOINT -k BROKER_KEY
 *
 * ROUTER, CURVE server with the broker's key, no ZAP.  Frames are a type
 * byte and an 8-byte message number, then the payload:
 *   H P|S	hello from the publisher or a subscriber -> W
 *   P n data	publish -> A n to the publisher, D n data to each subscriber
 *   K n	a subscriber's ack -> R n s (a receipt) to the publisher
 * No parsing, no queue, no window: the payload is shared between the three
 * sends (zmq_msg_copy), and libzmq's queues do the rest.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "pki.h"

#define MAXCONN		16
#define RID_MAX		256

struct conn {
	uint8_t	rid[RID_MAX];
	size_t	ridlen;
	char	role;		/* 'P' publisher, 'S' subscriber */
};

static volatile sig_atomic_t	stop;
static struct conn		conns[MAXCONN];
static int			nconn, publisher = -1;

static void	on_signal(int);
static int	conn_of(const uint8_t *, size_t);
static void	send_rid(void *, int);
static void	send_small(void *, int, const uint8_t *, size_t);

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
conn_of(const uint8_t *rid, size_t len)
{
	int	i;

	for (i = 0; i < nconn; i++)
		if (conns[i].ridlen == len && memcmp(conns[i].rid, rid, len) == 0)
			return i;
	if (nconn == MAXCONN || len > RID_MAX)
		return -1;
	memcpy(conns[nconn].rid, rid, len);
	conns[nconn].ridlen = len;
	conns[nconn].role = 0;
	return nconn++;
}

static void
send_rid(void *s, int c)
{
	if (zmq_send(s, conns[c].rid, conns[c].ridlen, ZMQ_SNDMORE) == -1)
		fprintf(stderr, "rawrelay: send: %s\n", zmq_strerror(errno));
}

static void
send_small(void *s, int c, const uint8_t *p, size_t n)
{
	send_rid(s, c);
	if (zmq_send(s, p, n, 0) == -1)
		fprintf(stderr, "rawrelay: send: %s\n", zmq_strerror(errno));
}

int
main(int argc, char *argv[])
{
	const char	*endpoint = NULL, *keyfile = NULL;
	char		 err[512];
	uint8_t		 sec[32], pub[32], small[16];
	int		 ch, one = 1, zero = 0, hwm = 100000, rc, c, i;
	void		*ctx, *s;
	zmq_msg_t	 rid, body, copy;
	struct sigaction sa;

	while ((ch = getopt(argc, argv, "e:k:")) != -1) {
		switch (ch) {
		case 'e': endpoint = optarg; break;
		case 'k': keyfile = optarg; break;
		default: goto usage;
		}
	}
	if (endpoint == NULL || keyfile == NULL) {
usage:
		fputs("usage: rawrelay -e ENDPOINT -k BROKER_KEY\n", stderr);
		return 2;
	}
	if (pki_key_read(keyfile, sec, pub, err, sizeof(err)) == -1) {
		fprintf(stderr, "rawrelay: %s\n", err);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	ctx = zmq_ctx_new();
	s = zmq_socket(ctx, ZMQ_ROUTER);
	rc = zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one));
	rc |= zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 32);
	rc |= zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	rc |= zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	rc |= zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (rc != 0 || zmq_bind(s, endpoint) == -1) {
		fprintf(stderr, "rawrelay: %s: %s\n", endpoint,
		    zmq_strerror(errno));
		return 1;
	}
	zmq_msg_init(&rid);
	zmq_msg_init(&body);
	while (!stop) {
		uint8_t	*p;
		size_t	 n;

		if (zmq_msg_recv(&rid, s, 0) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!zmq_msg_more(&rid) || zmq_msg_recv(&body, s, 0) == -1)
			continue;
		if ((c = conn_of(zmq_msg_data(&rid), zmq_msg_size(&rid))) < 0)
			continue;
		p = zmq_msg_data(&body);
		n = zmq_msg_size(&body);
		if (n >= 2 && p[0] == 'H') {
			conns[c].role = (char)p[1];
			if (p[1] == 'P')
				publisher = c;
			send_small(s, c, (const uint8_t *)"W", 1);
		} else if (n >= 9 && p[0] == 'P') {
			small[0] = 'A';
			memcpy(small + 1, p + 1, 8);
			send_small(s, c, small, 9);
			p[0] = 'D';
			for (i = 0; i < nconn; i++) {
				if (conns[i].role != 'S')
					continue;
				zmq_msg_init(&copy);
				zmq_msg_copy(&copy, &body);
				send_rid(s, i);
				if (zmq_msg_send(&copy, s, 0) == -1) {
					fprintf(stderr, "rawrelay: send: %s\n",
					    zmq_strerror(errno));
					zmq_msg_close(&copy);
				}
			}
		} else if (n >= 9 && p[0] == 'K' && publisher >= 0) {
			small[0] = 'R';
			memcpy(small + 1, p + 1, 8);
			small[9] = (uint8_t)c;
			send_small(s, publisher, small, 10);
		}
	}
	zmq_msg_close(&rid);
	zmq_msg_close(&body);
	zmq_close(s);
	zmq_ctx_term(ctx);
	return 0;
}
