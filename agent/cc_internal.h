/*
 * cc_internal.h - inside libccagent: the handle, and the few non-blocking
 * calls the ccagent daemon uses besides the public API.
 *
 * Nothing here is exported from libccagent.so (hidden visibility); the
 * daemon links the static library.
 */
#ifndef CC_INTERNAL_H
#define CC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc_proto.h"
#include "ccagent.h"

#define CC_HIDDEN	__attribute__((visibility("hidden")))

#define CCX_AREAS_MAX	32
#define CCX_AREA_LEN	16

/* Where a session is. */
enum ccx_state {
	SESS_DOWN,		/* no transport */
	SESS_NEED_HELLO,	/* handshake done; hello not yet sent */
	SESS_HELLO_SENT,	/* waiting for welcome */
	SESS_SUBSCRIBING,	/* waiting for subscribed */
	SESS_READY		/* welcomed (and subscribed) */
};

/* A frame from the broker waiting to be taken. */
struct ccx_frame {
	struct ccx_frame	*next;
	struct cc_msg		*msg;
};

struct ccx_queue {
	struct ccx_frame	*head, *tail;
	size_t			 n;
};

struct cc_agent {
	void			*ctx;
	void			*sock;		/* DEALER, CURVE client */
	void			*mon;		/* PAIR: the socket's events */
	char			 endpoint[256];
	bool			 receive;
	bool			 log;
	int			 timeout_ms;
	unsigned		 subscribe;	/* 1 << enum cc_rtype */
	char			 areas[CCX_AREAS_MAX][CCX_AREA_LEN];
	size_t			 nareas;	/* 0: the welcome's areas */

	enum ccx_state		 state;
	unsigned		 session;	/* sessions welcomed so far */
	int			 auth_failed;	/* last handshake failure, 0 */
	int			 hello_error;	/* the broker refused hello, 0 */
	int64_t			 hello_at;	/* when hello was sent */
	char			 agency[CC_ID_MAX + 1];
	char			 type[32];
	char			 welcome_areas[CCX_AREAS_MAX][CCX_AREA_LEN];
	size_t			 nwelcome_areas;
	size_t			 max_size;

	struct ccx_queue	 inbound;	/* deliver, receipt, notice */
	struct ccx_queue	 answers;	/* everything else */
	struct cc_agent_error	 err;

	int			(*on_notice)(const cc_notice *, void *);
	void			*notice_arg;
	bool			 in_notice;	/* on_notice is running */
};

/* An answer to a request, as the daemon sees it. */
enum ccx_answer_kind {
	ANS_ACCEPTED,		/* id: the mid */
	ANS_RECORDED,		/* id: the cid */
	ANS_STATUS,		/* id: the mid */
	ANS_RETRACTED,		/* id: the mid */
	ANS_ERROR		/* id: err.re */
};

struct ccx_answer {
	enum ccx_answer_kind	kind;
	char			id[80];
	uint32_t		version;	/* ANS_RECORDED */
	struct cc_agent_error	err;		/* ANS_ERROR */
	struct cc_msg		*msg;		/* the frame; ccx_answer_free */
};

#define CCX_WAIT_ANSWER		0x100	/* an answer is waiting */
#define CCX_WAIT_SESSION	0x200	/* a new session was welcomed */
#define CCX_WAIT_NOTICES	0x400	/* hand notices to on_notice meanwhile */

/* Set the handle's last error; returns code. */
CC_HIDDEN int	ccx_fail(cc_agent *, int code, const char *field,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
CC_HIDDEN int	ccx_fail_err(struct cc_agent_error *, int code,
		    const char *field, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));
CC_HIDDEN void	ccx_from_cc_error(struct cc_agent_error *,
		    const struct cc_error *);

/* The proto op of an agent op. */
CC_HIDDEN enum cc_op ccx_op(enum cc_agent_op);

/*
 * Run the session for up to timeout_ms (-1: no limit): events, frames,
 * hello and subscribe, and with CCX_WAIT_NOTICES in `want` the notice
 * callback.  Returns early with a CC_AGENT_WAIT_* / CCX_WAIT_* mask as
 * soon as something the caller asked for (`want`) happened.  Returns 0
 * on timeout, -1 on failure (last error set).
 */
CC_HIDDEN int	ccx_wait(cc_agent *, int fd, int timeout_ms, int want);

/*
 * Hand the notices at the head of the inbound queue to the callback, if
 * one is set and it is not running already, acking each it took.  Then
 * ccx_inbound_ready says whether cc_agent_receive has something to give:
 * a delivery or receipt, or a notice when no callback is set.
 */
CC_HIDDEN void	ccx_notices_dispatch(cc_agent *);
CC_HIDDEN bool	ccx_inbound_ready(const cc_agent *);

/*
 * The frames the library sends, each packed into an initialised buffer
 * the caller destroys: hello and subscribe from the handle's options (and
 * the welcome's areas), an ack of a delivery's dseq, and a request from a
 * prepared JSON document, validated as the broker will.  A frame that
 * could not be packed whole is never sent.  ccx_pack_hello, _subscribe
 * and _ack return 0, or -1 when memory ran out; ccx_pack_json returns
 * CC_AGENT_OK, or the validation error or CC_AGENT_ERR_SYSTEM (out of
 * memory) with err filled.
 */
CC_HIDDEN int	ccx_pack_hello(const cc_agent *, msgpack_sbuffer *);
CC_HIDDEN int	ccx_pack_subscribe(const cc_agent *, msgpack_sbuffer *);
CC_HIDDEN int	ccx_pack_ack(uint64_t dseq, msgpack_sbuffer *);
CC_HIDDEN int	ccx_pack_json(enum cc_op, const char *json, msgpack_sbuffer *,
		    struct cc_agent_error *err);

/* Send a prepared JSON document as op without waiting.  Returns 0, or
 * CC_AGENT_ERR_TIMEOUT when no session is ready, CC_AGENT_ERR_TOO_LARGE,
 * CC_AGENT_ERR_SYSTEM, or the validation error. */
CC_HIDDEN int	ccx_send_json(cc_agent *, enum cc_op, const char *json);
/* Send a packed frame; `any` allows a session not yet ready (acks).
 * Same returns. */
CC_HIDDEN int	ccx_send_frame(cc_agent *, const msgpack_sbuffer *, bool any);

/* Take the oldest answer; 1 when one was taken, 0 when none. */
CC_HIDDEN int	ccx_answer_pop(cc_agent *, struct ccx_answer *);
CC_HIDDEN void	ccx_answer_free(struct ccx_answer *);
CC_HIDDEN void	ccx_answers_clear(cc_agent *);

CC_HIDDEN bool	ccx_ready(const cc_agent *);
CC_HIDDEN unsigned ccx_session(const cc_agent *);

/* The queue of frames, and the delivery made of one (takes ownership). */
CC_HIDDEN void	ccx_queue_push(struct ccx_queue *, struct ccx_frame *);
CC_HIDDEN struct ccx_frame *ccx_queue_pop(struct ccx_queue *);
CC_HIDDEN void	ccx_queue_clear(struct ccx_queue *);
CC_HIDDEN cc_delivery *ccx_delivery_new(struct cc_msg *);

/* Milliseconds on the monotonic clock. */
CC_HIDDEN int64_t ccx_now_ms(void);

#endif /* CC_INTERNAL_H */
