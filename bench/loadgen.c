/*
 * loadgen.c - the benchmark load generator: options, the payload, clocks,
 * /proc sampling and results (the modes are in lg_*.c).
 *
 *   loadgen MODE -e ENDPOINT [-k PKI | -t TLSDIR] [-p PID] [-o FILE]
 *	[-s SCENARIO] [-r RUN] [-n MSGS] [-w WINDOW] [-a AHEAD]
 *	[-L RATE -T SECS] [-B BACKLOG]
 *   loadgen freeport		print a free TCP port on 127.0.0.1
 *   loadgen waitport PORT SECS	wait until 127.0.0.1:PORT accepts
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "cc_proto.h"
#include "loadgen.h"

#define MID_PREFIX	"00000000-0000-4000-8000-"

static void	usage(void) __attribute__((noreturn));
static int	freeport(void);
static int	waitport(int port, double secs);
static int	cmp_u32(const void *, const void *);
static double	pct_ms(uint32_t *, size_t, double);
static int	frame_of(enum cc_op, const char *json, uint8_t *out,
		    size_t cap, size_t *len);

static void
usage(void)
{
	fputs("usage: loadgen wire|raw|mqtt|nats -e ENDPOINT [-k PKI] "
	    "[-t TLSDIR] [-p PID]\n"
	    "\t[-o FILE] [-s SCENARIO] [-r RUN] [-n MSGS] [-w WINDOW] "
	    "[-a AHEAD]\n"
	    "\t[-L RATE -T SECS] [-B BACKLOG]\n"
	    "       loadgen freeport\n"
	    "       loadgen waitport PORT SECS\n", stderr);
	exit(2);
}

void
lg_fail(const char *fmt, ...)
{
	va_list	ap;

	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

int64_t
lg_now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* utime + stime of every thread of a process, from /proc/PID/stat. */
double
lg_proc_cpu(pid_t pid)
{
	char		 path[64], buf[1024], *p;
	unsigned long	 ut, st;
	FILE		*f;
	size_t		 n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces: fields start after the ')'. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	    &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double
lg_self_cpu(void)
{
	struct rusage	ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* RssAnon and RssFile of a process, from /proc/PID/status. */
int
lg_proc_rss(pid_t pid, long *anon, long *file)
{
	char	 path[64], line[256];
	FILE	*f;

	*anon = *file = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "RssAnon:", 8) == 0)
			*anon = strtol(line + 8, NULL, 10);
		else if (strncmp(line, "RssFile:", 8) == 0)
			*file = strtol(line + 8, NULL, 10);
	}
	fclose(f);
	return *anon >= 0 ? 0 : -1;
}

char *
lg_mid_text(uint64_t idx, char out[37])
{
	snprintf(out, 37, MID_PREFIX "%012" PRIx64, idx);
	return out;
}

int64_t
lg_mid_index(const char *mid, size_t len)
{
	int64_t	v = 0;
	size_t	i;

	if (len != 36)
		return -1;
	for (i = 24; i < 36; i++) {
		int c = mid[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

void
lg_payload_mid(struct lg_payload *pl, uint64_t idx)
{
	char	mid[37];

	memcpy(pl->frame + pl->mid_off, lg_mid_text(idx, mid), 36);
}

/* A JSON text of an op's fields, checked by the project's own decoder and
 * encoded as the canonical wire frame. */
static int
frame_of(enum cc_op op, const char *json, uint8_t *out, size_t cap,
    size_t *len)
{
	struct cc_msg	*m;
	struct cc_error	 err;
	msgpack_sbuffer	 sb;

	if (proto_from_json(op, json, strlen(json), &m, &err) == -1) {
		fprintf(stderr, "loadgen: payload refused: %s at %s: %s\n",
		    cc_err_name(err.code), err.field, err.detail);
		return -1;
	}
	msgpack_sbuffer_init(&sb);
	if (proto_encode(m, &sb) == -1 || sb.size > cap) {
		msgpack_sbuffer_destroy(&sb);
		proto_msg_destroy(&m);
		return -1;
	}
	memcpy(out, sb.data, sb.size);
	*len = sb.size;
	msgpack_sbuffer_destroy(&sb);
	proto_msg_destroy(&m);
	return 0;
}

/*
 * The release plan of scripts/demo.sh, its free text padded (notes and a
 * second housing action, both categories a recipient may be refused) until
 * the whole publish frame is LG_PAYLOAD bytes.
 */
int
lg_payload_make(struct lg_payload *pl)
{
	static char	 json[8192], pad[2002];
	char		 mid[37], now[32], from[32], until[32];
	const char	*notes = "Anxious about release; wants to stay out of "
	    "the city centre. Has asked for an afternoon appointment and for "
	    "the hostel to know about the methadone script. ";
	int64_t		 t = cc_time_now_ms();
	long		 padlen = 400, i, tries;
	uint8_t		*p;

	cc_time_format(t, now);
	for (tries = 0; tries < 8; tries++) {
		/* Half in a housing action, half in the notes. */
		for (i = 0; i < padlen; i++)
			pad[i] = notes[i % (long)strlen(notes)];
		pad[i] = '\0';
		snprintf(json, sizeof(json),
		    "{\"mid\": \"%s\", \"type\": \"release-plan\", "
		    "\"purpose\": \"continuity-of-care\", "
		    "\"subject\": {\"pnc\": \"2004/0012345D\", "
		    "\"noms\": \"A1234BC\"}, \"area\": \"" LG_AREA "\", "
		    "\"created\": \"%s\", \"body\": {"
		    "\"person\": {\"family_name\": \"Example\", "
		    "\"given_name\": \"Alex\", \"dob\": \"1985-03-14\", "
		    "\"sex\": \"M\"}, \"establishment\": \"LEI\", "
		    "\"release_date\": \"2026-12-20\", "
		    "\"release_type\": \"licence\", \"on_licence\": true, "
		    "\"in_treatment\": true, "
		    "\"treatment_modality\": \"prescribing\", "
		    "\"overdose_risk_briefed\": true, "
		    "\"substitute_medication\": \"methadone\", \"dose_mg\": 60, "
		    "\"primary_substance\": \"heroin\", "
		    "\"accommodation_need\": \"nfa-urgent\", "
		    "\"accommodation_on_release\": \"hostel\", "
		    "\"housing_actions\": [\"HACS referral made to council "
		    "housing options\", \"%.*s\"], "
		    "\"release_address\": {\"line1\": \"Example House\", "
		    "\"town\": \"Leeds\", \"postcode\": \"LS2 2BB\"}, "
		    "\"offender_manager\": {\"name\": \"Sam Officer\", "
		    "\"agency\": \"probation.leeds\", "
		    "\"phone\": \"0113 000 0000\"}, "
		    "\"notes\": \"%s\"}}",
		    lg_mid_text(0, mid), now, (int)(padlen / 2), pad,
		    pad + padlen / 2);
		if (frame_of(OP_PUBLISH, json, pl->frame, sizeof(pl->frame),
		    &pl->len) == -1)
			return -1;
		if (pl->len == LG_PAYLOAD)
			break;
		padlen += (long)LG_PAYLOAD - (long)pl->len;
		if (padlen < 2 || padlen > 2000)
			return -1;
	}
	if (pl->len != LG_PAYLOAD)
		return -1;
	for (p = pl->frame; p + 36 <= pl->frame + pl->len; p++)
		if (memcmp(p, mid, 36) == 0)
			break;
	if (p + 36 > pl->frame + pl->len)
		return -1;
	pl->mid_off = (size_t)(p - pl->frame);

	/* One consent naming the three subscribers (and la.leeds, the
	 * backlog run's offline agency), for the release plan's purpose. */
	cc_time_format(t - 3600000, from);
	cc_time_format(t + 365LL * 86400000, until);
	snprintf(json, sizeof(json),
	    "{\"cid\": \"%s\", \"subject\": {\"pnc\": \"2004/0012345D\", "
	    "\"noms\": \"A1234BC\"}, \"recipients\": [\"cjit.leeds\", "
	    "\"probation.leeds\", \"housing.leeds-hostels\", \"la.leeds\"], "
	    "\"purposes\": [\"continuity-of-care\"], "
	    "\"categories\": [\"identity\", \"cj-identifiers\", "
	    "\"criminal-justice\", \"treatment-summary\", "
	    "\"treatment-clinical\", \"housing\", \"housing-address\", "
	    "\"contacts\", \"narrative\"], \"explicit\": true, "
	    "\"valid_from\": \"%s\", \"valid_until\": \"%s\", "
	    "\"evidence\": {\"method\": \"written\", "
	    "\"form\": \"DIP consent to share v3\", \"worker\": \"Pat Carat\", "
	    "\"captured\": \"%s\"}}",
	    "0b7d3c1e-8f9a-4b2c-a1d0-6e5f4a3b2c1d", from, until, now);
	return frame_of(OP_CONSENT_GRANT, json, pl->grant, sizeof(pl->grant),
	    &pl->grantlen);
}

int
lg_track_init(struct lg_track *t, unsigned n)
{
	int	s;

	memset(t, 0, sizeof(*t));
	t->n = n;
	if ((t->sent_ns = calloc(n, sizeof(*t->sent_ns))) == NULL ||
	    (t->ndone = calloc(n, 1)) == NULL)
		return -1;
	for (s = 0; s < LG_SUBS; s++)
		if ((t->seen[s] = calloc((n + 7) / 8, 1)) == NULL)
			return -1;
	return 0;
}

void
lg_track_free(struct lg_track *t)
{
	int	s;

	free(t->sent_ns);
	free(t->ndone);
	for (s = 0; s < LG_SUBS; s++)
		free(t->seen[s]);
	memset(t, 0, sizeof(*t));
}

bool
lg_track_deliver(struct lg_track *t, int s, int64_t idx)
{
	uint8_t	bit;

	if (idx < 0 || (uint64_t)idx >= t->n)
		return false;
	bit = 1u << (idx & 7);
	if (t->seen[s][idx >> 3] & bit)
		return false;
	t->seen[s][idx >> 3] |= bit;
	if (++t->ndone[idx] == LG_SUBS)
		t->full++;
	return true;
}

uint64_t
lg_due(const struct lg_opts *o, int64_t t0, int64_t now)
{
	if (o->rate <= 0)
		return UINT64_MAX;
	return (uint64_t)((double)(now - t0) * o->rate / 1e9) + 1;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of sorted microseconds, in ms. */
static double
pct_ms(uint32_t *v, size_t n, double p)
{
	size_t	i;

	if (n == 0)
		return -1;
	i = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1] / 1000.0;
}

void
lg_result_latency(struct lg_result *r, size_t nmsgs)
{
	r->acc_us = calloc(nmsgs ? nmsgs : 1, sizeof(uint32_t));
	r->del_us = calloc(nmsgs ? nmsgs * LG_SUBS : 1, sizeof(uint32_t));
	if (r->acc_us == NULL || r->del_us == NULL)
		lg_fail("out of memory");
}

void
lg_write_result(const struct lg_opts *o, const struct lg_result *r)
{
	FILE	*f = stdout;
	double	 rate = r->secs > 0 ? r->deliveries / r->secs : 0;

	if (o->out != NULL && (f = fopen(o->out, "a")) == NULL)
		lg_fail("%s: %s", o->out, strerror(errno));
	if (o->rate > 0) {
		qsort(r->acc_us, r->nacc, sizeof(uint32_t), cmp_u32);
		qsort(r->del_us, r->ndel, sizeof(uint32_t), cmp_u32);
		fprintf(f, "{\"scenario\": \"%s\", \"kind\": \"latency\", "
		    "\"run\": %d, \"rate\": %.0f, \"seconds\": %.1f, "
		    "\"messages\": %" PRIu64 ", \"deliveries\": %" PRIu64 ", "
		    "\"busy\": %" PRIu64 ", \"acc_p50_ms\": %.3f, \"acc_p99_ms\": %.3f, "
		    "\"acc_max_ms\": %.3f, \"del_p50_ms\": %.3f, "
		    "\"del_p99_ms\": %.3f, \"del_max_ms\": %.3f}\n",
		    o->scenario, o->run, o->rate, o->secs, r->published,
		    r->deliveries, r->busy,
		    pct_ms(r->acc_us, r->nacc, 50), pct_ms(r->acc_us, r->nacc, 99),
		    pct_ms(r->acc_us, r->nacc, 100),
		    pct_ms(r->del_us, r->ndel, 50), pct_ms(r->del_us, r->ndel, 99),
		    pct_ms(r->del_us, r->ndel, 100));
	} else {
		fprintf(f, "{\"scenario\": \"%s\", \"kind\": \"throughput\", "
		    "\"run\": %d, \"messages\": %" PRIu64 ", "
		    "\"deliveries\": %" PRIu64 ", \"receipts\": %" PRIu64 ", "
		    "\"seconds\": %.3f, \"rate\": %.0f, "
		    "\"receipt_seconds\": %.3f, \"broker_cpu_s\": %.3f, "
		    "\"cpu_us_per_delivery\": %.2f, \"harness_cpu_s\": %.3f, "
		    "\"busy\": %" PRIu64 "}\n",
		    o->scenario, o->run, r->published, r->deliveries,
		    r->receipts, r->secs, rate, r->receipt_secs, r->broker_cpu,
		    r->deliveries ? r->broker_cpu * 1e6 / r->deliveries : 0,
		    r->harness_cpu, r->busy);
	}
	if (f != stdout)
		fclose(f);
	fprintf(stderr, "%s run %d: %" PRIu64 " deliveries in %.2f s = "
	    "%.0f/s, broker cpu %.2f s (%.1f us/delivery)%s\n", o->scenario,
	    o->run, r->deliveries, r->secs, rate, r->broker_cpu,
	    r->deliveries ? r->broker_cpu * 1e6 / r->deliveries : 0,
	    r->busy ? ", some publishes answered busy and sent again" : "");
}

/* ---- msgpack, read in place ---- */

static int
need(const uint8_t *p, const uint8_t *end, size_t n)
{
	return (size_t)(end - p) >= n ? 0 : -1;
}

static uint64_t
be(const uint8_t *p, int n)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int
mp_map(const uint8_t **pp, const uint8_t *end, uint32_t *n)
{
	const uint8_t	*p = *pp;

	if (need(p, end, 1))
		return -1;
	if ((*p & 0xf0) == 0x80) {
		*n = *p & 0x0f;
		*pp = p + 1;
	} else if (*p == 0xde && !need(p, end, 3)) {
		*n = (uint32_t)be(p + 1, 2);
		*pp = p + 3;
	} else if (*p == 0xdf && !need(p, end, 5)) {
		*n = (uint32_t)be(p + 1, 4);
		*pp = p + 5;
	} else
		return -1;
	return 0;
}

int
mp_str(const uint8_t **pp, const uint8_t *end, const char **s, uint32_t *n)
{
	const uint8_t	*p = *pp;
	int		 h;

	if (need(p, end, 1))
		return -1;
	if ((*p & 0xe0) == 0xa0) {
		*n = *p & 0x1f;
		h = 1;
	} else if (*p == 0xd9 && !need(p, end, 2)) {
		*n = p[1];
		h = 2;
	} else if (*p == 0xda && !need(p, end, 3)) {
		*n = (uint32_t)be(p + 1, 2);
		h = 3;
	} else if (*p == 0xdb && !need(p, end, 5)) {
		*n = (uint32_t)be(p + 1, 4);
		h = 5;
	} else
		return -1;
	if (need(p + h, end, *n))
		return -1;
	*s = (const char *)p + h;
	*pp = p + h + *n;
	return 0;
}

int
mp_uint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t	*p = *pp;
	static const int len[4] = { 1, 2, 4, 8 };

	if (need(p, end, 1))
		return -1;
	if (*p <= 0x7f) {
		*v = *p;
		*pp = p + 1;
	} else if (*p >= 0xcc && *p <= 0xcf &&
	    !need(p, end, 1 + len[*p - 0xcc])) {
		*v = be(p + 1, len[*p - 0xcc]);
		*pp = p + 1 + len[*p - 0xcc];
	} else
		return -1;
	return 0;
}

int
mp_skip(const uint8_t **pp, const uint8_t *end)
{
	const uint8_t	*p = *pp;
	uint64_t	 n = 0, i;
	uint8_t		 c;

	if (need(p, end, 1))
		return -1;
	c = *p++;
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
		*pp = p;
		return 0;
	}
	if ((c & 0xe0) == 0xa0) {
		n = c & 0x1f;
		goto bytes;
	}
	if ((c & 0xf0) == 0x90 || (c & 0xf0) == 0x80) {
		n = (c & 0x0f) * ((c & 0xf0) == 0x80 ? 2 : 1);
		goto items;
	}
	switch (c) {
	case 0xcc: case 0xd0: n = 1; goto bytes;
	case 0xcd: case 0xd1: n = 2; goto bytes;
	case 0xca: case 0xce: case 0xd2: n = 4; goto bytes;
	case 0xcb: case 0xcf: case 0xd3: n = 8; goto bytes;
	case 0xc4: case 0xd9:
		if (need(p, end, 1))
			return -1;
		n = p[0];
		p += 1;
		goto bytes;
	case 0xc5: case 0xda:
		if (need(p, end, 2))
			return -1;
		n = be(p, 2);
		p += 2;
		goto bytes;
	case 0xc6: case 0xdb:
		if (need(p, end, 4))
			return -1;
		n = be(p, 4);
		p += 4;
		goto bytes;
	case 0xdc: case 0xde:
		if (need(p, end, 2))
			return -1;
		n = be(p, 2) * (c == 0xde ? 2 : 1);
		p += 2;
		goto items;
	case 0xdd: case 0xdf:
		if (need(p, end, 4))
			return -1;
		n = be(p, 4) * (c == 0xdf ? 2 : 1);
		p += 4;
		goto items;
	default:
		return -1;	/* ext types: never sent */
	}
bytes:
	if (need(p, end, n))
		return -1;
	*pp = p + n;
	return 0;
items:
	for (i = 0; i < n; i++)
		if (mp_skip(&p, end) == -1)
			return -1;
	*pp = p;
	return 0;
}

/* ---- helpers for the driver ---- */

static int
freeport(void)
{
	struct sockaddr_in	sa;
	socklen_t		len = sizeof(sa);
	int			fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	printf("%d\n", ntohs(sa.sin_port));
	return 0;
}

static int
waitport(int port, double secs)
{
	struct sockaddr_in	sa;
	int64_t			end = lg_now_ns() + (int64_t)(secs * 1e9);
	int			fd;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	while (lg_now_ns() < end) {
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
			return -1;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return 0;
		}
		close(fd);
		usleep(20000);
	}
	return -1;
}

int
main(int argc, char *argv[])
{
	struct lg_opts		 o;
	static struct lg_payload pl;
	int			 ch;

	if (argc >= 2 && strcmp(argv[1], "freeport") == 0)
		return freeport() == 0 ? 0 : 1;
	if (argc == 4 && strcmp(argv[1], "waitport") == 0)
		return waitport(atoi(argv[2]), atof(argv[3])) == 0 ? 0 : 1;
	if (argc < 2)
		usage();
	memset(&o, 0, sizeof(o));
	o.mode = argv[1];
	o.scenario = o.mode;
	o.msgs = 20000;
	o.window = 100;
	o.ahead = 1000;
	o.secs = 10;
	argv++;
	argc--;
	while ((ch = getopt(argc, argv, "a:B:e:k:L:n:o:p:r:s:T:t:w:")) != -1) {
		switch (ch) {
		case 'a': o.ahead = (unsigned)atoi(optarg); break;
		case 'B': o.backlog = (unsigned)atoi(optarg); break;
		case 'e': o.endpoint = optarg; break;
		case 'k': o.pki = optarg; break;
		case 'L': o.rate = atof(optarg); break;
		case 'n': o.msgs = (unsigned)atoi(optarg); break;
		case 'o': o.out = optarg; break;
		case 'p': o.pid = (pid_t)atoi(optarg); break;
		case 'r': o.run = atoi(optarg); break;
		case 's': o.scenario = optarg; break;
		case 'T': o.secs = atof(optarg); break;
		case 't': o.tls = optarg; break;
		case 'w': o.window = (unsigned)atoi(optarg); break;
		default: usage();
		}
	}
	if (o.endpoint == NULL || o.window == 0 || o.msgs == 0)
		usage();
	if (o.rate > 0)
		o.msgs = (unsigned)(o.rate * o.secs);
	if (o.ahead < o.window)
		o.ahead = o.window;
	if (lg_payload_make(&pl) == -1)
		lg_fail("cannot make a %d-byte release plan", LG_PAYLOAD);
	if (strcmp(o.mode, "wire") == 0)
		return lg_wire(&o, &pl);
	if (strcmp(o.mode, "raw") == 0)
		return lg_raw(&o, &pl);
	if (strcmp(o.mode, "mqtt") == 0)
		return lg_mqtt(&o, &pl);
	if (strcmp(o.mode, "nats") == 0)
		return lg_nats(&o, &pl);
	usage();
}
