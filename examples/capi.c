/*
 * capi.c - a case system linking libccagent directly (the C API of
 * include/ccagent.h), instead of using the spool folders.
 *
 *	ccagent-example publish agent.conf FILE.json
 *		publish one record, print its mid once the broker accepted it
 *	ccagent-example receive agent.conf COUNT [SECONDS]
 *		be the agency's receiving session (do not run `ccagent run`
 *		for the same agency at the same time), print COUNT records
 *		as JSON lines, acking each one after it is printed; notices
 *		that come meanwhile are printed too, as {"notice": {...}}
 *
 * Build: cc capi.c $(pkg-config --cflags --libs ccagent)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ccagent.h>

static char	*slurp(const char *);
static int	 publish(const char *, const char *);
static int	 receive(const char *, long, int);

static char *
slurp(const char *path)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == -1 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1 ||
	    (buf = malloc((size_t)n + 1)) == NULL) {
		(void)fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		(void)fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	(void)fclose(f);
	return buf;
}

static int
publish(const char *conf, const char *file)
{
	struct cc_agent_error	 err;
	cc_agent		*a;
	char			*json, mid[CC_AGENT_ID_LEN + 1];
	int			 rc;

	if ((json = slurp(file)) == NULL) {
		perror(file);
		return 1;
	}
	/* A send-only session: the daemon, if any, keeps its deliveries. */
	if (cc_agent_new_conf(conf, false, &a, &err) != CC_AGENT_OK) {
		(void)fprintf(stderr, "ccagent-example: %s\n", err.detail);
		free(json);
		return 1;
	}
	rc = cc_agent_publish(a, json, mid);
	if (rc == CC_AGENT_OK)
		(void)printf("%s\n", mid);
	else
		(void)fprintf(stderr, "ccagent-example: %s %s: %s\n",
		    cc_agent_strerror(rc), cc_agent_last_error(a)->field,
		    cc_agent_last_error(a)->detail);
	cc_agent_destroy(&a);
	free(json);
	return rc == CC_AGENT_OK ? 0 : 1;
}

static int
receive(const char *conf, long count, int seconds)
{
	struct cc_agent_error	 err;
	cc_agent		*a;
	cc_delivery		*d;
	const char		*json;
	long			 got = 0;
	int			 rc = 0;

	if (cc_agent_new_conf(conf, true, &a, &err) != CC_AGENT_OK) {
		(void)fprintf(stderr, "ccagent-example: %s\n", err.detail);
		return 1;
	}
	while (got < count) {
		rc = cc_agent_receive(a, seconds * 1000, &d);
		if (rc != CC_AGENT_OK) {
			(void)fprintf(stderr, "ccagent-example: %s: %s\n",
			    cc_agent_strerror(rc),
			    cc_agent_last_error(a)->detail);
			break;
		}
		/*
		 * Store first (here: print), then ack.  A notice (a consent
		 * withdrawn, a record corrected...) is stored like a record:
		 * acking one unstored would lose it.
		 */
		if ((json = cc_delivery_json(d, false)) == NULL) {
			(void)fprintf(stderr, "ccagent-example: out of "
			    "memory\n");
			cc_delivery_destroy(&d);
			rc = 1;
			break;
		}
		if (cc_delivery_kind(d) == CC_DELIVERY_RECORD) {
			(void)printf("%s\n", json);
			got++;
		} else if (cc_delivery_kind(d) == CC_DELIVERY_NOTICE)
			(void)printf("{\"notice\":%s}\n", json);
		(void)fflush(stdout);
		if (cc_agent_ack(a, d) != CC_AGENT_OK)
			(void)fprintf(stderr, "ccagent-example: ack not sent; "
			    "it comes again\n");
		cc_delivery_destroy(&d);
	}
	cc_agent_destroy(&a);
	return got == count ? 0 : 1;
}

int
main(int argc, char *argv[])
{
	if (argc == 4 && strcmp(argv[1], "publish") == 0)
		return publish(argv[2], argv[3]);
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "receive") == 0)
		return receive(argv[2], strtol(argv[3], NULL, 10),
		    argc == 5 ? atoi(argv[4]) : 10);
	(void)fprintf(stderr, "usage: ccagent-example publish agent.conf "
	    "FILE.json\n       ccagent-example receive agent.conf COUNT "
	    "[SECONDS]\n");
	return 2;
}
