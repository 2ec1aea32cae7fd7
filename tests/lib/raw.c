/*
 * raw.c - bare CURVE DEALER sockets and broker-process facts for the
 * abuse and fault tests (see raw.h).
 */
#include <sys/resource.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <zmq.h>

#include "cc_proto.h"
#include "pki.h"
#include "raw.h"

static void	r_field(const msgpack_object *, const char *, char out[32]);
static int	r_cmp(const void *, const void *);

static atomic_int	r_nmon;

void
r_target_of(struct h_env *e, struct r_target *t)
{
	struct pki_cert	bc;
	char		path[PATH_MAX], err[256];

	memset(t, 0, sizeof(*t));
	t->port = h_port(e);
	snprintf(t->pki, sizeof(t->pki), "%s", h_pki(e));
	snprintf(path, sizeof(path), "%.4000s/broker.crt", t->pki);
	cr_assert(pki_cert_read(path, &bc, err, sizeof(err)) == 0, "%s", err);
	pki_z85(bc.key, t->broker_key);
}

void *
r_ctx_new(int max_sockets)
{
	void	*ctx = zmq_ctx_new();

	if (ctx == NULL || zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, max_sockets) == -1)
		return NULL;
	return ctx;
}

int
r_open(struct r_sock *r, void *ctx, const struct r_target *t,
    const char *agency, int ivl, bool monitor)
{
	uint8_t	sec[32], pub[32];
	char	zs[41], zp[41], path[PATH_MAX], err[256], ep[160];
	int	zero = 0;

	memset(r, 0, sizeof(*r));
	if (agency == NULL) {
		if (zmq_curve_keypair(zp, zs) == -1)
			return -1;
	} else {
		snprintf(path, sizeof(path), "%.4000s/keys/%s.key", t->pki,
		    agency);
		if (pki_key_read(path, sec, pub, err, sizeof(err)) == -1) {
			errno = EINVAL;
			return -1;
		}
		pki_z85(sec, zs);
		pki_z85(pub, zp);
		explicit_bzero(sec, sizeof(sec));
	}
	if ((r->s = zmq_socket(ctx, ZMQ_DEALER)) == NULL)
		return -1;
	if (zmq_setsockopt(r->s, ZMQ_LINGER, &zero, sizeof(zero)) == -1 ||
	    (ivl > 0 && zmq_setsockopt(r->s, ZMQ_RECONNECT_IVL, &ivl,
	    sizeof(ivl)) == -1) ||
	    zmq_setsockopt(r->s, ZMQ_CURVE_SERVERKEY, t->broker_key, 40) ||
	    zmq_setsockopt(r->s, ZMQ_CURVE_PUBLICKEY, zp, 40) ||
	    zmq_setsockopt(r->s, ZMQ_CURVE_SECRETKEY, zs, 40))
		goto fail;
	explicit_bzero(zs, sizeof(zs));
	if (monitor) {
		snprintf(ep, sizeof(ep), "inproc://r-mon-%d",
		    atomic_fetch_add(&r_nmon, 1));
		if (zmq_socket_monitor(r->s, ep,
		    ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
		    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
		    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
		    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == -1 ||
		    (r->mon = zmq_socket(ctx, ZMQ_PAIR)) == NULL ||
		    zmq_setsockopt(r->mon, ZMQ_LINGER, &zero, sizeof(zero)) ||
		    zmq_connect(r->mon, ep) == -1)
			goto fail;
	}
	/* libzmq's "tcp://SOURCE;DEST" binds the source address first. */
	if (t->source[0] != '\0')
		snprintf(ep, sizeof(ep), "tcp://%s:0;127.0.0.1:%d", t->source,
		    t->port);
	else
		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", t->port);
	if (zmq_connect(r->s, ep) == -1)
		goto fail;
	return 0;
fail:
	explicit_bzero(zs, sizeof(zs));
	r_close(r);
	return -1;
}

void
r_close(struct r_sock *r)
{
	if (r->mon != NULL) {
		zmq_socket_monitor(r->s, NULL, 0);
		zmq_close(r->mon);
	}
	if (r->s != NULL)
		zmq_close(r->s);
	memset(r, 0, sizeof(*r));
}

int
r_send(struct r_sock *r, const void *p, size_t n, int flags)
{
	return zmq_send(r->s, p, n, flags) == (int)n ? 0 : -1;
}

int
r_hello(struct r_sock *r, bool receive)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	int		rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, 4) != 0 ||
	    proto_pack_header(&pk, "hello") != 0 ||
	    proto_pack_cstr(&pk, "agent") != 0 ||
	    proto_pack_cstr(&pk, "raw/1") != 0 ||
	    proto_pack_cstr(&pk, "receive") != 0 ||
	    (receive ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)) != 0) {
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	rc = r_send(r, sb.data, sb.size, 0);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void
r_field(const msgpack_object *map, const char *name, char out[32])
{
	uint32_t	i;
	size_t		n = strlen(name);

	for (i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];

		if (kv->key.type != MSGPACK_OBJECT_STR ||
		    kv->key.via.str.size != n ||
		    memcmp(kv->key.via.str.ptr, name, n) != 0 ||
		    kv->val.type != MSGPACK_OBJECT_STR)
			continue;
		snprintf(out, 32, "%.*s", (int)kv->val.via.str.size,
		    kv->val.via.str.ptr);
		return;
	}
}

int
r_recv(struct r_sock *r, int timeout_ms, char op[32], char code[32])
{
	zmq_pollitem_t	 it = { r->s, 0, ZMQ_POLLIN, 0 };
	msgpack_unpacked up;
	zmq_msg_t	 m;
	size_t		 off = 0;

	op[0] = code[0] = '\0';
	if (zmq_poll(&it, 1, timeout_ms) <= 0)
		return 0;
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, r->s, ZMQ_DONTWAIT) == -1) {
		zmq_msg_close(&m);
		return 0;
	}
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, zmq_msg_data(&m), zmq_msg_size(&m),
	    &off) == MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_MAP) {
		r_field(&up.data, "op", op);
		r_field(&up.data, "code", code);
	}
	if (op[0] == '\0')
		memcpy(op, "?", 2);
	msgpack_unpacked_destroy(&up);
	zmq_msg_close(&m);
	return 1;
}

int
r_handshake(struct r_sock *r, int timeout_ms)
{
	int64_t	deadline = r_now_us() / 1000 + timeout_ms;

	while (r->handshake == 0 && r->mon != NULL) {
		zmq_pollitem_t	it = { r->mon, 0, ZMQ_POLLIN, 0 };
		int64_t		left = deadline - r_now_us() / 1000;
		zmq_msg_t	m;
		uint16_t	ev;

		if (left < 0 || zmq_poll(&it, 1, (long)left) <= 0)
			break;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, r->mon, 0) == -1) {
			zmq_msg_close(&m);
			break;
		}
		memcpy(&ev, zmq_msg_data(&m), sizeof(ev));
		while (zmq_msg_more(&m)) {
			zmq_msg_close(&m);
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, r->mon, 0) == -1)
				break;
		}
		zmq_msg_close(&m);
		r->handshake = ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED ? 1 :
		    ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? -1 : -2;
	}
	return r->handshake;
}

void
r_frame(json_t *msg, msgpack_sbuffer *sb)
{
	struct cc_error	 err;
	struct cc_msg	*m = NULL;
	json_t		*copy = json_deep_copy(msg);
	char		*text;
	int		 op = cc_op_parse(json_string_value(json_object_get(msg,
			    "op")), strlen(json_string_value(json_object_get(msg,
			    "op"))));

	json_object_del(copy, "op");
	json_object_del(copy, "v");
	text = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	cr_assert(text != NULL);
	cr_assert(proto_from_json(op, text, strlen(text), &m, &err) == 0,
	    "not a valid message (%s at %s): %s", cc_err_name(err.code),
	    err.field, text);
	free(text);
	msgpack_sbuffer_init(sb);
	cr_assert(proto_encode(m, sb) == 0);
	proto_msg_destroy(&m);
}

pid_t
r_broker_pid(struct h_env *e)
{
	DIR		*d = opendir("/proc");
	struct dirent	*de;
	pid_t		 found = -1;

	if (d == NULL)
		return -1;
	while (found == -1 && (de = readdir(d)) != NULL) {
		char	path[300], cmd[4096];
		FILE	*f;
		size_t	n, i;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		n = fread(cmd, 1, sizeof(cmd) - 1, f);
		fclose(f);
		cmd[n] = '\0';
		/* argv is NUL-separated: make it one string. */
		for (i = 0; i + 1 < n; i++)
			if (cmd[i] == '\0')
				cmd[i] = ' ';
		if (strstr(cmd, " run -c ") != NULL &&
		    strstr(cmd, h_conf(e)) != NULL && strstr(cmd, "ccbroker"))
			found = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return found;
}

int
r_count_fds(pid_t pid)
{
	char		 path[64];
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

bool
r_need_fds(rlim_t n)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return false;
	if (rl.rlim_cur >= n)
		return true;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < n)
		return false;
	rl.rlim_cur = n;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

int64_t
r_now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
r_cmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double
r_percentile(double *v, size_t n, double p)
{
	size_t	i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), r_cmp);
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}
