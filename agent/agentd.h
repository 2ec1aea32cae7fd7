/*
 * agentd.h - the ccagent program: the daemon and the CLI commands.
 *
 * `ccagent run` is the only process that touches the agency's outbox and
 * seen-set (LMDB under `data`, locked) and its receiving session.  The
 * other commands each open their own short, send-only session (hello with
 * receive false) and never touch `data`: they work whether the daemon runs
 * or not, and never take deliveries away from it.  `tail` reads in/ and
 * notices/.
 */
#ifndef CC_AGENTD_H
#define CC_AGENTD_H

#include <stdbool.h>

#include "ccagent.h"

/* The daemon: runs until SIGTERM or SIGINT.  Returns the exit status. */
int	agentd_run(const char *conf_path, bool debug);

/* CLI commands; each returns the exit status after printing its result on
 * stdout or one line on stderr. */
int	cmd_publish(const char *conf_path, const char *file, bool write_back);
int	cmd_consent(const char *conf_path, enum cc_agent_op, const char *file,
	    bool write_back);
int	cmd_track(const char *conf_path, const char *mid, bool json);
int	cmd_retract(const char *conf_path, const char *mid,
	    const char *reason);
int	cmd_tail(const char *conf_path, bool follow);

#endif /* CC_AGENTD_H */
