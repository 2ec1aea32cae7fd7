/*
 * log.c - one line per event to stderr, journald-friendly.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static const char	*log_prog = "cc";
static enum log_level	 log_lvl = LOG_LVL_INFO;

static void	vlog(const char *, const char *, int, const char *, va_list)
		    CC_PRINTF(4, 0);

void
log_init(const char *progname, enum log_level lvl)
{
	log_prog = progname;
	log_lvl = lvl;
}

void
log_setlevel(enum log_level lvl)
{
	log_lvl = lvl;
}

/*
 * Write "<time> prog: level: message[: strerror]" as one line with one
 * write, so lines from several processes never interleave.
 */
static void
vlog(const char *level, const char *suffix, int errnum, const char *fmt,
    va_list ap)
{
	char		 line[1024], ts[32];
	struct timespec	 now;
	struct tm	 tm;
	int		 n, m;

	/* A line without its time is still worth writing. */
	if (clock_gettime(CLOCK_REALTIME, &now) == -1)
		memset(&now, 0, sizeof(now));
	if (gmtime_r(&now.tv_sec, &tm) == NULL ||
	    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		(void)snprintf(ts, sizeof(ts), "1970-01-01T00:00:00");
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s: %s: ", ts,
	    now.tv_nsec / 1000000, log_prog, level);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if ((m = vsnprintf(line + n, sizeof(line) - n, fmt, ap)) > 0)
		n += m;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	if (suffix != NULL && errnum != 0 && (m = snprintf(line + n,
	    sizeof(line) - n, ": %s", strerror(errnum))) > 0)
		n += m;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	line[n] = '\0';
	/* There is nowhere left to report a failure to log. */
	(void)fputs(line, stderr);
	(void)fflush(stderr);
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	vlog("warn", "", saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog("warn", NULL, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	if (log_lvl < LOG_LVL_INFO)
		return;
	va_start(ap, fmt);
	vlog("info", NULL, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (log_lvl < LOG_LVL_DEBUG)
		return;
	va_start(ap, fmt);
	vlog("debug", NULL, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	vlog("fatal", "", saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog("fatal", NULL, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
