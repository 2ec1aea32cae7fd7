/*
 * cctime.c - dates (YYYY-MM-DD) and RFC 3339 UTC times of DESIGN §4.
 *
 * The calendar arithmetic is done here rather than with timegm(3) so that a
 * date the C library would quietly normalise (2026-02-30 into March) is
 * refused instead.  Years outside 1900..2999 are refused too: no client of
 * the Drug Interventions Programme was born, released or housed outside
 * them, and such a year is a typing error worth catching.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cc_proto.h"
#include "schema.h"

#define YEAR_MIN	1900
#define YEAR_MAX	2999

static int	digits(const char *, size_t, int *);
static int64_t	days_from_civil(int, int, int);

/* Read exactly n decimal digits. */
static int
digits(const char *s, size_t n, int *out)
{
	size_t	i;
	int	v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int
days_in_month(int year, int mon)
{
	static const int days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	bool	leap;

	leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (mon == 2 && leap)
		return 29;
	return days[mon - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t	era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int64_t
tm_epoch_ms(const struct cc_tm *t)
{
	int64_t	days;

	days = days_from_civil(t->year, t->mon, t->day);
	return ((days * 24 + t->hour) * 60 + t->min) * 60000 +
	    (int64_t)t->sec * 1000 + t->msec;
}

int
date_parse(const char *s, size_t len, struct cc_tm *t)
{
	memset(t, 0, sizeof(*t));
	if (len != 10 || s[4] != '-' || s[7] != '-' ||
	    digits(s, 4, &t->year) == -1 || digits(s + 5, 2, &t->mon) == -1 ||
	    digits(s + 8, 2, &t->day) == -1)
		return -1;
	if (t->year < YEAR_MIN || t->year > YEAR_MAX || t->mon < 1 ||
	    t->mon > 12 || t->day < 1 ||
	    t->day > days_in_month(t->year, t->mon))
		return -1;
	return 0;
}

/*
 * YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00).  Only UTC is accepted, as
 * DESIGN §4 says; "-00:00" means "offset unknown" in RFC 3339 and is
 * refused.  Leap seconds are refused.  The fraction is kept to
 * milliseconds.
 */
int
time_parse(const char *s, size_t len, struct cc_tm *t)
{
	size_t	i, nfrac;

	if (len < 20 || date_parse(s, 10, t) == -1)
		return -1;
	if ((s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' ||
	    digits(s + 11, 2, &t->hour) == -1 ||
	    digits(s + 14, 2, &t->min) == -1 ||
	    digits(s + 17, 2, &t->sec) == -1)
		return -1;
	if (t->hour > 23 || t->min > 59 || t->sec > 59)
		return -1;
	i = 19;
	if (s[i] == '.') {
		for (i++, nfrac = 0; i < len && s[i] >= '0' && s[i] <= '9';
		    i++, nfrac++)
			if (nfrac < 3)
				t->msec = t->msec * 10 + (s[i] - '0');
		if (nfrac == 0 || nfrac > 9)
			return -1;
		for (; nfrac < 3; nfrac++)
			t->msec *= 10;
	}
	if (len - i == 1 && (s[i] == 'Z' || s[i] == 'z'))
		return 0;
	if (len - i == 6 && memcmp(s + i, "+00:00", 6) == 0)
		return 0;
	return -1;
}

int
cc_time_parse(const char *s, size_t len, int64_t *epoch_ms)
{
	struct cc_tm	t;

	if (time_parse(s, len, &t) == -1)
		return -1;
	*epoch_ms = tm_epoch_ms(&t);
	return 0;
}

int
cc_date_parse(const char *s, size_t len, int64_t *epoch_ms)
{
	struct cc_tm	t;

	if (date_parse(s, len, &t) == -1)
		return -1;
	*epoch_ms = tm_epoch_ms(&t);
	return 0;
}

void
cc_time_format(int64_t epoch_ms, char out[32])
{
	struct tm	tm;
	time_t		secs;
	int		ms;

	secs = (time_t)(epoch_ms / 1000);
	ms = (int)(epoch_ms % 1000);
	if (ms < 0) {
		ms += 1000;
		secs--;
	}
	if (gmtime_r(&secs, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
		(void)snprintf(out, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	(void)snprintf(out + 19, 32 - 19, ".%03dZ", ms);
}

int64_t
cc_time_now_ms(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return (int64_t)time(NULL) * 1000;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
cc_time_now_rfc3339(char out[32])
{
	cc_time_format(cc_time_now_ms(), out);
}
