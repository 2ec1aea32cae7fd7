/*
 * igcmd.h - the information-governance and operator commands, run beside
 * a live broker: audit verify, audit head, audit subject, stats, backup.
 */
#ifndef CC_IGCMD_H
#define CC_IGCMD_H

#include "config.h"

struct audit_head;

/* The exported heads `audit verify` is given (--head, --heads). */
struct ig_heads {
	struct audit_head	*h;
	size_t			 n, cap;
};

/*
 * Add one exported head written as "SEQ:HASH", as the line `audit head`
 * prints, or as the broker's "audit head seq=N hash=H" log line.  Returns
 * 0, or -1 with err saying what is wrong with it.
 */
int	ig_heads_add(struct ig_heads *, const char *text, char *err,
	    size_t errlen) CC_WUR;
/* Add every head of a file, one a line; blank lines and lines starting
 * with '#' are skipped.  Returns 0, or -1 with err (naming file:line). */
int	ig_heads_load(struct ig_heads *, const char *path, char *err,
	    size_t errlen) CC_WUR;
void	ig_heads_free(struct ig_heads *);

/* Exit status: 0 intact (and every head matches), 1 broken, 2 unreadable. */
int	ig_audit_verify(const struct broker_conf *, struct ig_heads *);
/* Print the head as one JSON line {"seq","hash","time"}; 0, or 2 when the
 * store cannot be read. */
int	ig_audit_head(const struct broker_conf *);
int	ig_audit_subject(const struct broker_conf *, const char *scheme,
	    const char *value);
int	ig_stats(const struct broker_conf *);
int	ig_backup(const struct broker_conf *, const char *dir, bool with_key);

#endif /* CC_IGCMD_H */
