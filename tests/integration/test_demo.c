/*
 * test_demo.c - `make demo` tells the story it promises: run the demo
 * script and check who received what, what was withheld and why, and
 * that the audit verified.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

static char *
run_demo(int *status)
{
	const char	*src = getenv("CC_SRC"), *build = getenv("CC_BUILD");
	char		 cmd[2048], *out = NULL;
	size_t		 len = 0, n;
	char		 buf[4096];
	FILE		*p;

	snprintf(cmd, sizeof(cmd), "cd '%s' && ./scripts/demo.sh '%s' 2>&1",
	    src != NULL ? src : ".", build != NULL ? build : "build");
	cr_assert_not_null(p = popen(cmd, "r"));
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
		cr_assert_not_null(out = realloc(out, len + n + 1));
		memcpy(out + len, buf, n);
		len += n;
		out[len] = '\0';
	}
	*status = pclose(p);
	return out != NULL ? out : strdup("");
}

static size_t
count(const char *hay, const char *needle)
{
	size_t	n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay++;
	}
	return n;
}

Test(demo, tells_the_story_and_exits_zero, .timeout = 120)
{
	static const struct {
		const char	*line;
		size_t		 times;
	} want[] = {
		{ "RECEIVED cjit.leeds release-plan from carat.hmp-leeds", 1 },
		{ "RECEIVED cjit.leeds handover from carat.hmp-leeds", 1 },
		{ "RECEIVED probation.leeds release-plan", 1 },
		{ "RECEIVED probation.leeds housing-status", 1 },
		{ "RECEIVED housing.leeds-hostels referral from cjit.leeds", 1 },
		{ "RECEIVED housing.leeds-hostels release-plan", 1 },
		{ "RECEIVED la.leeds", 0 },
		{ "NOTICE probation.leeds consent-withdrawn", 1 },
		{ "NOTICE cjit.leeds", 0 },
		{ "Leeds City Council housing (la.leeds): 0 record(s)", 1 },
		{ "WITHHELD la.leeds from carat.hmp-leeds: no-consent", 1 },
		{ "PURGED probation.leeds from housing.leeds-hostels", 1 },
		{ "withheld categories: cj-identifiers, treatment-clinical, "
		  "narrative", 1 },	/* the hostel's release plan */
		{ "audit intact", 1 },
		{ "ERROR", 0 },
	};
	int	 status;
	char	*out = run_demo(&status);
	size_t	 i;

	cr_assert_eq(status, 0, "demo exited %d:\n%s", status, out);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect_eq(count(out, want[i].line), want[i].times,
		    "'%s' seen %zu times, want %zu", want[i].line,
		    count(out, want[i].line), want[i].times);
	free(out);
}
