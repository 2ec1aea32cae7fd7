/*
 * handler.h - one handler per wire op (handle_<op>.c), called by
 * dispatch.c.  Each returns 0 (answered, or nothing to answer), or a store
 * error that undoes the request: the batch is then run again with each
 * request on its own, and the one that met the error is answered
 * `storage-full` or `busy`.
 */
#ifndef CC_HANDLER_H
#define CC_HANDLER_H

#include "broker.h"

int	handle_hello(struct broker *, struct req *) CC_WUR;
int	handle_subscribe(struct broker *, struct req *) CC_WUR;
int	handle_publish(struct broker *, struct req *) CC_WUR;
int	handle_consent_grant(struct broker *, struct req *) CC_WUR;
int	handle_consent_withdraw(struct broker *, struct req *) CC_WUR;
int	handle_consent_refuse(struct broker *, struct req *) CC_WUR;
int	handle_ack(struct broker *, struct req *) CC_WUR;
int	handle_track(struct broker *, struct req *) CC_WUR;
int	handle_retract(struct broker *, struct req *) CC_WUR;

/* A handler's "refused, and the refusal answered". */
#define ANSWERED	(-1)

/*
 * handle_track.c: the request's `field`, the mid of a message this agency
 * published (track, retract, a correction's supersedes): 0 with mid and h
 * set; ANSWERED when refused, invalid-field at field, an unknown mid and
 * another agency's answered alike; or a store error.
 */
int	own_message(struct broker *, struct req *, const char *field,
	    uint8_t mid[16], struct msg_hdr *h) CC_WUR;

/* correct.c: a publish that `supersedes` an earlier record (see there). */
int	correct_check(struct broker *, struct req *, const struct msg_hdr *,
	    bool *is, uint8_t oldmid[16]) CC_WUR;
int	correct_apply(struct broker *, struct store_txn *,
	    const uint8_t oldmid[16], const uint8_t mid[16],
	    const char *sender) CC_WUR;

#endif /* CC_HANDLER_H */
