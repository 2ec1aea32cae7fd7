/*
 * dispatch.h - a request to the handler of its op (dispatch.c, a switch
 * and nothing else, as Mosquitto's read_handle.c).
 */
#ifndef CC_DISPATCH_H
#define CC_DISPATCH_H

#include "broker.h"

/* Returns what the handler returned: 0, or a store error. */
int	dispatch(struct broker *, struct req *) CC_WUR;

#endif /* CC_DISPATCH_H */
