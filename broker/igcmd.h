/*
 * igcmd.h - the information-governance and operator commands, run beside
 * a live broker: audit verify, audit head, audit subject, stats, backup.
 */
#ifndef CC_IGCMD_H
#define CC_IGCMD_H

#include <stdio.h>

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

/*
 * A subject access request: the identifiers of one person, read from a
 * file or standard input (the command line, where `ps` shows them and
 * shell history keeps them, is DESIGN.md's form, taken with a warning).  Either one a line as pnc=..., noms=... or crn=... (blank lines
 * and lines starting with '#' skipped), or one JSON object {"pnc": "...",
 * "noms": "...", "crn": "..."} (input whose first character, blanks
 * aside, is '{').  At least one identifier, at most one of each scheme;
 * each checked as the wire checks it, a PNC made canonical.
 * ig_request_read reads f, called `name` in messages; ig_request_load
 * opens path (NULL or "-": standard input).  Return 0 with *subj filled,
 * or -1 with err naming name:line and the fault, never the text read.
 */
int	ig_request_read(FILE *f, const char *name, struct cc_subject *subj,
	    char *err, size_t errlen) CC_WUR;
int	ig_request_load(const char *path, struct cc_subject *subj, char *err,
	    size_t errlen) CC_WUR;

/* The report's form: JSON (DESIGN §2), or plain text for the person. */
enum ig_format { IG_FORMAT_JSON, IG_FORMAT_TEXT };

/*
 * The subject access report of the person the identifiers of subj name,
 * and of every identifier linked to them by a consent or an audit entry.
 * Returns 0, or 1 when stdout could not be written; a store that cannot
 * be read ends the command (fatalx).
 */
int	ig_audit_subject(const struct broker_conf *,
	    const struct cc_subject *subj, enum ig_format);
int	ig_stats(const struct broker_conf *);
int	ig_backup(const struct broker_conf *, const char *dir, bool with_key);

#endif /* CC_IGCMD_H */
