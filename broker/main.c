/*
 * main.c - ccbroker: parse the command line and run one subcommand.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_impl.h"
#include "igcmd.h"
#include "log.h"

static void	usage(FILE *, int) __attribute__((noreturn));
static void	usage_error(const char *, ...)
		    __attribute__((noreturn, format(printf, 1, 2)));

static void
usage(FILE *f, int code)
{
	fputs("usage: ccbroker init -c broker.conf\n"
	    "       ccbroker run -c broker.conf [-d]\n"
	    "       ccbroker audit verify -c broker.conf [--head SEQ:HASH]... "
	    "[--heads FILE]...\n"
	    "       ccbroker audit head -c broker.conf\n"
	    "       ccbroker audit subject -c broker.conf "
	    "[--format json|text] [FILE]\n"
	    "       ccbroker stats -c broker.conf\n"
	    "       ccbroker backup -c broker.conf [--with-key] DIR\n", f);
	exit(code);
}

/* A command line that cannot be run: say why, exit 2. */
static void
usage_error(const char *fmt, ...)
{
	va_list	ap;

	fputs("ccbroker: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "config",	required_argument, NULL, 'c' },
		{ "debug",	no_argument,	   NULL, 'd' },
		{ "help",	no_argument,	   NULL, 'h' },
		{ "format",	required_argument, NULL, 'f' },
		/* Gone: refused with what to do instead. */
		{ "pnc",	required_argument, NULL, 'P' },
		{ "noms",	required_argument, NULL, 'N' },
		{ "crn",	required_argument, NULL, 'C' },
		{ "with-key",	no_argument,	   NULL, 'K' },
		{ "head",	required_argument, NULL, 'H' },
		{ "heads",	required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 }
	};
	struct broker_conf	 conf;
	struct ig_heads		 heads = { NULL, 0, 0 };
	struct cc_subject	 subj;
	enum ig_format		 format = IG_FORMAT_JSON;
	char			 argids[256] = "";
	size_t			 n;
	FILE			*f;
	const char		*cmd, *sub = NULL, *path = NULL;
	char			 err[512];
	bool			 with_key = false, debug = false;
	int			 ch, rc;

	log_init("ccbroker", LOG_LVL_INFO);
	/* A damaged store that crashes LMDB is said, never a bare crash. */
	store_fault_guard("ccbroker");
	if (argc < 2)
		usage(stderr, 2);
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "help"))
		usage(stdout, 0);
	argv++;
	argc--;
	if (strcmp(cmd, "audit") == 0) {
		if (argc < 2 || argv[1][0] == '-')
			usage(argv[1] && !strcmp(argv[1], "--help") ? stdout :
			    stderr, argv[1] && !strcmp(argv[1], "--help") ?
			    0 : 2);
		sub = argv[1];
		argv++;
		argc--;
	}
	while ((ch = getopt_long(argc, argv, "c:dh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			debug = true;
			break;
		case 'h':
			usage(stdout, 0);
		case 'P':
		case 'N':
		case 'C':
			/*
			 * DESIGN.md's form, kept for the clients written to
			 * it; but an identifier on the command line is seen
			 * in ps(1) and kept in shell history, so it is
			 * warned against (never repeated), and wiped from
			 * this process's arguments at once.
			 */
			if (sub == NULL || strcmp(sub, "subject") != 0)
				usage_error("--pnc, --noms and --crn go with "
				    "audit subject");
			n = strlen(argids);
			if ((size_t)snprintf(argids + n, sizeof(argids) - n,
			    "%s=%s\n", ch == 'P' ? "pnc" : ch == 'N' ? "noms" :
			    "crn", optarg) >= sizeof(argids) - n)
				usage_error("audit subject: identifier too "
				    "long");
			explicit_bzero(optarg, strlen(optarg));
			break;
		case 'f':
			if (sub == NULL || strcmp(sub, "subject") != 0)
				usage_error("--format goes with audit subject");
			if (strcmp(optarg, "json") == 0)
				format = IG_FORMAT_JSON;
			else if (strcmp(optarg, "text") == 0)
				format = IG_FORMAT_TEXT;
			else
				usage_error("--format: want json or text");
			break;
		case 'K':
			with_key = true;
			break;
		case 'H':
		case 'F':
			/* Bad syntax is a usage error (2), never taken for
			 * a broken audit (1). */
			if (sub == NULL || strcmp(sub, "verify") != 0)
				usage_error("--head and --heads go with audit "
				    "verify");
			if (ch == 'H' && ig_heads_add(&heads, optarg, err,
			    sizeof(err)) == -1)
				usage_error("--head %s: %s", optarg, err);
			if (ch == 'F' && ig_heads_load(&heads, optarg, err,
			    sizeof(err)) == -1)
				usage_error("--heads %s", err);
			break;
		default:
			usage(stderr, 2);
		}
	}
	argc -= optind;
	argv += optind;
	if (path == NULL)
		fatalx("%s: -c broker.conf is required", cmd);
	if (debug)
		log_setlevel(LOG_LVL_DEBUG);
	memset(&conf, 0, sizeof(conf));

	if (strcmp(cmd, "run") == 0) {
		if (argc != 0)
			usage(stderr, 2);
		return broker_run(path) == 0 ? 0 : 1;
	}
	if (broker_conf_load(path, &conf, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (strcmp(cmd, "init") == 0) {
		if (argc != 0)
			usage(stderr, 2);
		if (store_init(conf.data, err, sizeof(err)) == -1)
			fatalx("init: %s", err);
		printf("initialised %s\n", conf.data);
		rc = 0;
	} else if (strcmp(cmd, "audit") == 0 && strcmp(sub, "verify") == 0) {
		rc = ig_audit_verify(&conf, &heads);
	} else if (strcmp(cmd, "audit") == 0 && strcmp(sub, "head") == 0) {
		if (argc != 0)
			usage(stderr, 2);
		rc = ig_audit_head(&conf);
	} else if (strcmp(cmd, "audit") == 0 && strcmp(sub, "subject") == 0) {
		if (argc > 1 || (argc == 1 && argids[0] != '\0'))
			usage(stderr, 2);
		if (argids[0] != '\0') {
			fputs("ccbroker: warning: identifiers on the command "
			    "line are seen in ps(1) and kept in shell history; "
			    "give them in a FILE or on standard input, one a "
			    "line as pnc=..., noms=... or crn=...\n", stderr);
			if ((f = fmemopen(argids, strlen(argids), "r")) == NULL)
				fatal("audit subject");
			rc = ig_request_read(f, "command line", &subj, err,
			    sizeof(err));
			fclose(f);
			explicit_bzero(argids, sizeof(argids));
		} else
			rc = ig_request_load(argc == 1 ? argv[0] : NULL,
			    &subj, err, sizeof(err));
		if (rc == -1)
			usage_error("audit subject: %s", err);
		rc = ig_audit_subject(&conf, &subj, format);
		explicit_bzero(&subj, sizeof(subj));
	} else if (strcmp(cmd, "stats") == 0) {
		rc = ig_stats(&conf);
	} else if (strcmp(cmd, "backup") == 0) {
		if (argc != 1)
			fatalx("backup: give the directory to write");
		rc = ig_backup(&conf, argv[0], with_key);
	} else {
		fprintf(stderr, "ccbroker: unknown command '%s%s%s'\n", cmd,
		    sub ? " " : "", sub ? sub : "");
		usage(stderr, 2);
	}
	ig_heads_free(&heads);
	broker_conf_free(&conf);
	return rc;
}
