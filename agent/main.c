/*
 * main.c - ccagent: parse the command line and run one subcommand.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentd.h"
#include "log.h"

static void	usage(FILE *, int) __attribute__((noreturn));

static void
usage(FILE *f, int code)
{
	(void)fputs("usage: ccagent run -c agent.conf [-d]\n"
	    "       ccagent publish -c agent.conf [-n] FILE.json\n"
	    "       ccagent consent grant|withdraw|refuse -c agent.conf [-n] "
	    "FILE.json\n"
	    "       ccagent track -c agent.conf [--json] MID\n"
	    "       ccagent retract -c agent.conf MID REASON\n"
	    "       ccagent tail -c agent.conf [-f]\n"
	    "\n"
	    "  run      the agency's daemon: spool folders, outbox, deliveries\n"
	    "  publish  send one record; prints its mid once the broker "
	    "accepted it\n"
	    "  consent  record a consent event; prints cid and version\n"
	    "  track    per-recipient status of a message this agency sent\n"
	    "  retract  take back a message this agency sent, saying why\n"
	    "  tail     print delivered records (in/) and notices (notices/)\n"
	    "           as JSON lines, a notice as {\"notice\": {...}}\n"
	    "\n"
	    "  -c FILE  agent.conf             -d  debug logging\n"
	    "  -n       do not write an assigned mid or cid back into FILE\n"
	    "  -f       keep printing records and notices as they arrive\n"
	    "  --json   track's answer as JSON\n", f);
	exit(code);
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "config",	required_argument, NULL, 'c' },
		{ "debug",	no_argument,	   NULL, 'd' },
		{ "follow",	no_argument,	   NULL, 'f' },
		{ "help",	no_argument,	   NULL, 'h' },
		{ "json",	no_argument,	   NULL, 'j' },
		{ "no-write",	no_argument,	   NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	enum cc_agent_op	 op = CC_AGENT_PUBLISH;
	const char		*cmd, *sub = NULL, *conf = NULL;
	bool			 debug = false, follow = false, json = false;
	bool			 wb = true;
	int			 ch;

	log_init("ccagent", LOG_LVL_INFO);
	if (argc < 2)
		usage(stderr, 2);
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "help"))
		usage(stdout, 0);
	argv++;
	argc--;
	if (strcmp(cmd, "consent") == 0) {
		if (argc < 2 || argv[1][0] == '-') {
			if (argc >= 2 && (!strcmp(argv[1], "--help") ||
			    !strcmp(argv[1], "-h")))
				usage(stdout, 0);
			(void)fprintf(stderr, "ccagent: consent: say grant, "
			    "withdraw or refuse\n");
			exit(2);
		}
		sub = argv[1];
		if (strcmp(sub, "grant") == 0)
			op = CC_AGENT_CONSENT_GRANT;
		else if (strcmp(sub, "withdraw") == 0)
			op = CC_AGENT_CONSENT_WITHDRAW;
		else if (strcmp(sub, "refuse") == 0)
			op = CC_AGENT_CONSENT_REFUSE;
		else {
			(void)fprintf(stderr, "ccagent: consent: '%s' is not "
			    "grant, withdraw or refuse\n", sub);
			exit(2);
		}
		argv++;
		argc--;
	}
	while ((ch = getopt_long(argc, argv, "c:dfhn", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'd':
			debug = true;
			break;
		case 'f':
			follow = true;
			break;
		case 'h':
			usage(stdout, 0);
		case 'j':
			json = true;
			break;
		case 'n':
			wb = false;
			break;
		default:
			usage(stderr, 2);
		}
	}
	argc -= optind;
	argv += optind;
	if (conf == NULL) {
		(void)fprintf(stderr, "ccagent: %s: -c agent.conf is "
		    "required\n", cmd);
		exit(2);
	}

	if (strcmp(cmd, "run") == 0 && argc == 0)
		return agentd_run(conf, debug);
	if (strcmp(cmd, "publish") == 0 && argc == 1)
		return cmd_publish(conf, argv[0], wb);
	if (strcmp(cmd, "consent") == 0 && argc == 1)
		return cmd_consent(conf, op, argv[0], wb);
	if (strcmp(cmd, "track") == 0 && argc == 1)
		return cmd_track(conf, argv[0], json);
	if (strcmp(cmd, "retract") == 0 && argc == 2)
		return cmd_retract(conf, argv[0], argv[1]);
	if (strcmp(cmd, "tail") == 0 && argc == 0)
		return cmd_tail(conf, follow);
	if (strcmp(cmd, "run") && strcmp(cmd, "publish") &&
	    strcmp(cmd, "consent") && strcmp(cmd, "track") &&
	    strcmp(cmd, "retract") && strcmp(cmd, "tail")) {
		(void)fprintf(stderr, "ccagent: unknown command '%s'\n", cmd);
		exit(2);
	}
	(void)fprintf(stderr, "ccagent: %s: wrong arguments; see ccagent "
	    "--help\n", cmd);
	return 2;
}
