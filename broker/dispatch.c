/*
 * dispatch.c - one request to the handler of its op.
 */
#include "dispatch.h"
#include "handler.h"

int
dispatch(struct broker *b, struct req *r)
{
	switch (proto_op(r->msg)) {
	case OP_HELLO:
		return handle_hello(b, r);
	case OP_SUBSCRIBE:
		return handle_subscribe(b, r);
	case OP_PUBLISH:
		return handle_publish(b, r);
	case OP_CONSENT_GRANT:
		return handle_consent_grant(b, r);
	case OP_CONSENT_WITHDRAW:
		return handle_consent_withdraw(b, r);
	case OP_CONSENT_REFUSE:
		return handle_consent_refuse(b, r);
	case OP_ACK:
		return handle_ack(b, r);
	case OP_TRACK:
		return handle_track(b, r);
	case OP_RETRACT:
		return handle_retract(b, r);
	default:
		return reply_error(b, r, ERR_UNKNOWN_OP, "op",
		    "not an op an agency may send");
	}
}
