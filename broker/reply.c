/*
 * reply.c - answers: built with their fields counted, queued per routing
 * id during a turn, and sent only once the turn's transaction committed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "broker_impl.h"
#include "log.h"

/*
 * The map header is written last, when the number of fields is known, in
 * the space reserved for it at the front: a msgpack map header is 1, 3 or
 * 5 bytes, so the frame starts 5 - size bytes into the buffer.
 */
#define HDR_ROOM	5

static int	out_push(struct broker *, const uint8_t *, size_t, char *,
		    size_t, size_t);

void
reply_begin(struct reply *rp, const char *op)
{
	static const char	room[HDR_ROOM];

	msgpack_sbuffer_init(&rp->sb);
	msgpack_packer_init(&rp->pk, &rp->sb, msgpack_sbuffer_write);
	rp->n = 2;
	rp->err = msgpack_sbuffer_write(&rp->sb, room, sizeof(room));
	rp->err |= proto_pack_header(&rp->pk, op);
}

msgpack_packer *
reply_key(struct reply *rp, const char *key)
{
	rp->n++;
	rp->err |= proto_pack_cstr(&rp->pk, key);
	return &rp->pk;
}

void
reply_check(struct reply *rp, int rc)
{
	rp->err |= rc;
}

void
reply_str(struct reply *rp, const char *key, const char *val)
{
	rp->err |= proto_pack_cstr(reply_key(rp, key), val);
}

void
reply_strn(struct reply *rp, const char *key, const char *val, size_t len)
{
	rp->err |= proto_pack_strn(reply_key(rp, key), val, len);
}

void
reply_u64(struct reply *rp, const char *key, uint64_t val)
{
	rp->err |= msgpack_pack_uint64(reply_key(rp, key), val);
}

void
reply_raw(struct reply *rp, const void *pairs, size_t len, unsigned n)
{
	rp->n += n;
	rp->err |= msgpack_sbuffer_write(&rp->sb, pairs, len);
}

void
reply_discard(struct reply *rp)
{
	msgpack_sbuffer_destroy(&rp->sb);
}

int
reply_send(struct broker *b, const uint8_t *rid, size_t ridlen,
    struct reply *rp)
{
	uint8_t	*p = (uint8_t *)rp->sb.data;
	size_t	 hl, len;
	char	*data;
	int	 rc;

	if (rp->err != 0 || rp->sb.size < HDR_ROOM) {
		reply_discard(rp);
		return STORE_NOMEM;
	}
	if (rp->n < 16)
		hl = 1;
	else if (rp->n < 65536)
		hl = 3;
	else
		hl = 5;
	p += HDR_ROOM - hl;
	if (hl == 1)
		p[0] = 0x80 | rp->n;
	else if (hl == 3) {
		p[0] = 0xde;
		p[1] = rp->n >> 8;
		p[2] = rp->n & 0xff;
	} else {
		p[0] = 0xdf;
		p[1] = rp->n >> 24;
		p[2] = (rp->n >> 16) & 0xff;
		p[3] = (rp->n >> 8) & 0xff;
		p[4] = rp->n & 0xff;
	}
	len = rp->sb.size - (HDR_ROOM - hl);
	data = msgpack_sbuffer_release(&rp->sb);
	if ((rc = out_push(b, rid, ridlen, data, HDR_ROOM - hl, len)) != 0)
		free(data);
	return rc;
}

int
reply_err(struct broker *b, const uint8_t *rid, size_t ridlen,
    const struct cc_error *err)
{
	msgpack_sbuffer	sb;
	size_t		len;
	char		*data;
	int		rc;

	msgpack_sbuffer_init(&sb);
	if (proto_pack_error(&sb, err) == -1) {
		msgpack_sbuffer_destroy(&sb);
		return STORE_NOMEM;
	}
	len = sb.size;
	data = msgpack_sbuffer_release(&sb);
	if ((rc = out_push(b, rid, ridlen, data, 0, len)) != 0)
		free(data);
	return rc;
}

int
reply_error(struct broker *b, struct req *r, enum cc_err code,
    const char *field, const char *fmt, ...)
{
	struct cc_error	err;
	va_list		ap;
	const char	*p;
	size_t		n;

	memset(&err, 0, sizeof(err));
	err.code = code;
	if (field != NULL)
		snprintf(err.field, sizeof(err.field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(err.detail, sizeof(err.detail), fmt, ap);
	va_end(ap);
	if (proto_get_strn(r->msg, "mid", &p, &n) == 0 ||
	    proto_get_strn(r->msg, "cid", &p, &n) == 0)
		snprintf(err.re, sizeof(err.re), "%.*s", (int)n, p);
	else
		snprintf(err.re, sizeof(err.re), "%s",
		    cc_op_name(proto_op(r->msg)));
	log_info("refused op=%s agency=%s code=%s field=%s",
	    cc_op_name(proto_op(r->msg)), r->from->cert.cn,
	    cc_err_name(code), field != NULL ? field : "-");
	return reply_err(b, r->rid, r->ridlen, &err);
}

/* Queue a frame (takes ownership of data on success). */
static int
out_push(struct broker *b, const uint8_t *rid, size_t ridlen, char *data,
    size_t off, size_t len)
{
	struct outmsg	*o;

	if (ridlen > RID_MAX)
		return STORE_NOMEM;
	if (b->nout == b->outcap) {
		size_t	 cap = b->outcap ? b->outcap * 2 : 256;
		void	*p = realloc(b->out, cap * sizeof(*b->out));

		if (p == NULL)
			return STORE_NOMEM;
		b->out = p;
		b->outcap = cap;
	}
	o = &b->out[b->nout++];
	memcpy(o->rid, rid, ridlen);
	o->ridlen = ridlen;
	o->data = data;
	o->off = off;
	o->len = len;
	return 0;
}

void
out_drop(struct broker *b, size_t keep)
{
	while (b->nout > keep)
		free(b->out[--b->nout].data);
}

/* Send everything the committed batch produced. */
void
out_flush(struct broker *b)
{
	size_t	i, j;

	for (i = 0; i < b->nout; i++) {
		struct outmsg *o = &b->out[i];

		if (zmq_send(b->router, o->rid, o->ridlen, ZMQ_SNDMORE |
		    ZMQ_DONTWAIT) == -1 || zmq_send(b->router,
		    o->data + o->off, o->len, ZMQ_DONTWAIT) == -1) {
			/* Gone: its session ends; unacked entries wait. */
			for (j = 0; j < b->npeer; j++) {
				struct peer *p = &b->peer[j];

				if (p->online && p->ridlen == o->ridlen &&
				    memcmp(p->rid, o->rid, o->ridlen) == 0) {
					log_info("agency=%s disconnected",
					    p->id);
					p->online = false;
				}
			}
		}
		free(o->data);
	}
	b->nout = 0;
}
