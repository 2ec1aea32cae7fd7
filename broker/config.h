/*
 * config.h - broker.conf (DESIGN §8), loaded with inih through the
 * table-driven loader of proto/ini.c.
 */
#ifndef CC_BROKER_CONFIG_H
#define CC_BROKER_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "cc_proto.h"

#define CONF_AREAS_MAX	32
#define CONF_AREA_LEN	16	/* ONS code, e.g. E08000035 */

/*
 * What one agency may hold of the broker (0: no limit).  Deliveries
 * waiting for it (as recipient), and its own messages waiting for anyone
 * (as sender), counted and in bytes of their records; and its open
 * connections.  The [broker] values are every agency's; an [agency.ID]
 * value replaces one for that agency.
 */
struct quota {
	uint64_t	queued;			/* deliveries waiting for it */
	uint64_t	queued_mb;
	uint64_t	held;			/* its messages waiting */
	uint64_t	held_mb;
	uint64_t	connections;
};
#define QUOTA_CONNECTIONS_DEFAULT	1024

/*
 * Handshakes one source address may start: a sustained rate per second
 * and a burst.  Enough for every agent behind one NAT reconnecting at
 * once after a restart; far below what a flood of bad handshakes sends.
 */
#define CONF_HANDSHAKE_RATE	20
#define CONF_HANDSHAKE_BURST	50

struct agency_conf {
	char		id[CC_ID_MAX + 1];
	char		areas[CONF_AREAS_MAX][CONF_AREA_LEN];
	size_t		nareas;
	struct quota	quota;			/* 0: the broker's */
};

/* What an agency type may do (DESIGN §7), defaults overridable per type. */
struct policy {
	unsigned	publish;	/* bit mask of 1 << enum cc_rtype */
	cc_catset	receive;	/* categories it may ever see */
	bool		record_consent;
};

struct broker_conf {
	char			path[PATH_MAX];		/* the file loaded */
	char			bind[256];		/* tcp://127.0.0.1:7450 */
	char			data[PATH_MAX];
	char			certificate[PATH_MAX];
	char			key[PATH_MAX];
	char			ca[PATH_MAX];
	char			crl[PATH_MAX];		/* required (DESIGN §3) */
	char			agencies[PATH_MAX];
	size_t			map_size_mb;		/* default 1024 */
	unsigned		retention_days;		/* default 30 */
	size_t			max_size;		/* frame bytes, default 65536 */
	unsigned		window;			/* unacked per agency, default 256 */
	unsigned		audit_head_s;		/* head logged every, default 60 */
	unsigned		consent_notice_days;	/* warn before a lapse, default 28 */
	char			user[64];		/* drop to this user as root, "" */
	struct quota		 quota;			/* every agency's */
	unsigned		handshake_rate;		/* per second per address, default 20 */
	unsigned		handshake_burst;	/* at once per address, default 50 */
	struct agency_conf	*agency;
	size_t			 nagency;
	struct policy		 policy[AT__COUNT];
};

/*
 * Load and check a broker configuration.  Unknown sections or keys, bad
 * values and missing required keys fail with one line in err naming
 * file:line (or the key) and the reason.  Paths named by the file are
 * checked to exist.  Returns 0, or -1 with err filled.  On success the
 * caller frees with broker_conf_free().
 */
int	broker_conf_load(const char *path, struct broker_conf *,
	    char *err, size_t errlen) CC_WUR;
void	broker_conf_free(struct broker_conf *);

/* The default policy of DESIGN §7 for an agency type. */
void	policy_default(enum cc_atype, struct policy *);

/* The quota of an agency: its own values, the broker's for the rest. */
void	broker_conf_quota(const struct broker_conf *, const char *id,
	    struct quota *);

/* The configured agency entry for an id, or NULL. */
const struct agency_conf *broker_conf_agency(const struct broker_conf *,
	    const char *id);

#endif /* CC_BROKER_CONFIG_H */
