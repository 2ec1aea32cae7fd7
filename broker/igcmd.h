/*
 * igcmd.h - the information-governance and operator commands, run beside
 * a live broker: audit verify, audit subject, stats, backup.
 */
#ifndef CC_IGCMD_H
#define CC_IGCMD_H

#include "config.h"

int	ig_audit_verify(const struct broker_conf *);
int	ig_audit_subject(const struct broker_conf *, const char *scheme,
	    const char *value);
int	ig_stats(const struct broker_conf *);
int	ig_backup(const struct broker_conf *, const char *dir, bool with_key);

#endif /* CC_IGCMD_H */
