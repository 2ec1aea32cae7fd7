/*
 * config.h - agent.conf (DESIGN §8).
 */
#ifndef CC_AGENT_CONFIG_H
#define CC_AGENT_CONFIG_H

#include <limits.h>
#include <stddef.h>

#include "cc_proto.h"

#define AGENT_AREAS_MAX	32

struct agent_conf {
	char		path[PATH_MAX];
	char		broker[256];		/* tcp://127.0.0.1:7450 */
	char		broker_certificate[PATH_MAX];
	char		ca[PATH_MAX];
	char		crl[PATH_MAX];		/* optional */
	char		certificate[PATH_MAX];
	char		key[PATH_MAX];
	char		data[PATH_MAX];		/* outbox and seen-set (LMDB) */
	char		spool[PATH_MAX];	/* out/ sent/ rejected/ in/ receipts/ */
	unsigned	subscribe;		/* bit mask of 1 << enum cc_rtype */
	char		areas[AGENT_AREAS_MAX][16];
	size_t		nareas;
	char		user[64];
};

/* Same contract as broker_conf_load. */
int	agent_conf_load(const char *path, struct agent_conf *, char *err,
	    size_t errlen) CC_WUR;

#endif /* CC_AGENT_CONFIG_H */
