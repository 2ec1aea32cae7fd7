/*
 * cc_error.c - libccagent's errors, frame queues and clock.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc_internal.h"

/* The public codes 1..13 are the wire codes of cc_proto.h, one for one. */
_Static_assert(CC_AGENT_ERR_MALFORMED == (int)ERR_MALFORMED &&
    CC_AGENT_ERR_INVALID_FIELD == (int)ERR_INVALID_FIELD &&
    CC_AGENT_ERR_BUSY == (int)ERR_BUSY &&
    CC_AGENT_ERR_OVER_QUOTA == (int)ERR_OVER_QUOTA && ERR__COUNT == 14,
    "enum cc_agent_err and enum cc_err disagree");

static void	vset(struct cc_agent_error *, int, const char *, const char *,
		    va_list) __attribute__((format(printf, 4, 0)));

static void
vset(struct cc_agent_error *e, int code, const char *field, const char *fmt,
    va_list ap)
{
	e->code = code;
	(void)snprintf(e->field, sizeof(e->field), "%s",
	    field != NULL ? field : "");
	if (fmt != NULL)
		(void)vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	else
		e->detail[0] = '\0';
}

int
ccx_fail(cc_agent *a, int code, const char *field, const char *fmt, ...)
{
	va_list	ap;

	a->err.re[0] = '\0';
	va_start(ap, fmt);
	vset(&a->err, code, field, fmt, ap);
	va_end(ap);
	return code;
}

int
ccx_fail_err(struct cc_agent_error *e, int code, const char *field,
    const char *fmt, ...)
{
	va_list	ap;

	if (e == NULL)
		return code;
	e->re[0] = '\0';
	va_start(ap, fmt);
	vset(e, code, field, fmt, ap);
	va_end(ap);
	return code;
}

/*
 * proto/ answers `busy` when it ran out of memory (the broker's answer in
 * that case).  Here the failure is ours, not the broker's nor the
 * record's: a system error, which the daemon tries again rather than
 * rejecting the file.
 */
void
ccx_from_cc_error(struct cc_agent_error *e, const struct cc_error *ce)
{
	if (ce->code == ERR_BUSY)
		e->code = CC_AGENT_ERR_SYSTEM;
	else
		e->code = ce->code == CC_OK ? CC_AGENT_ERR_MALFORMED :
		    (int)ce->code;
	(void)snprintf(e->field, sizeof(e->field), "%s", ce->field);
	(void)snprintf(e->detail, sizeof(e->detail), "%s", ce->detail);
	(void)snprintf(e->re, sizeof(e->re), "%s", ce->re);
}

const char *
cc_agent_strerror(int code)
{
	const char	*s;

	switch (code) {
	case CC_AGENT_OK:
		return "ok";
	case CC_AGENT_ERR_CONFIG:
		return "configuration";
	case CC_AGENT_ERR_AUTH:
		return "refused-handshake";
	case CC_AGENT_ERR_TIMEOUT:
		return "timeout";
	case CC_AGENT_ERR_PROTOCOL:
		return "protocol";
	case CC_AGENT_ERR_SYSTEM:
		return "system";
	default:
		if (code > 0 && code < ERR__COUNT &&
		    (s = cc_err_name((enum cc_err)code)) != NULL)
			return s;
		return "unknown-error";
	}
}

const struct cc_agent_error *
cc_agent_last_error(const cc_agent *a)
{
	return &a->err;
}

void
ccx_queue_push(struct ccx_queue *q, struct ccx_frame *f)
{
	f->next = NULL;
	if (q->tail != NULL)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->n++;
}

struct ccx_frame *
ccx_queue_pop(struct ccx_queue *q)
{
	struct ccx_frame	*f = q->head;

	if (f == NULL)
		return NULL;
	q->head = f->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->n--;
	f->next = NULL;
	return f;
}

void
ccx_queue_clear(struct ccx_queue *q)
{
	struct ccx_frame	*f;

	while ((f = ccx_queue_pop(q)) != NULL) {
		proto_msg_destroy(&f->msg);
		free(f);
	}
}

int64_t
ccx_now_ms(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
