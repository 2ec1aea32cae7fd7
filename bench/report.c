/*
 * report.c - medians of the benchmark runs, the table, the targets of
 * issue 13, bench/results.json, and the five ratio lines (printed last).
 *
 *   report RESULTS.jsonl OUT.json
 *
 * RESULTS.jsonl holds one JSON object per line as the load generator and
 * bench/run.sh wrote them: kind "machine", "throughput", "latency",
 * "backlog" or "decide".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define NSCEN	5

static const char *const scen[NSCEN] = { "ccbroker", "null", "raw-curve",
    "mosquitto", "nats" };

struct agg {
	double	rate[64], cpu[64], bcpu[64], hcpu[64];
	int	round[64];
	int	n;
	double	med_rate, med_cpu, med_bcpu, med_hcpu, min_rate, max_rate;
};

static int	cmp_d(const void *, const void *);
static double	median(const double *, int);
static double	num(json_t *, const char *);
static int	scen_of(const char *);
static const char *met(int);

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(const double *v, int n)
{
	double	s[64];

	if (n == 0)
		return 0;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_d);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double
num(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static int
scen_of(const char *s)
{
	int	i;

	for (i = 0; s != NULL && i < NSCEN; i++)
		if (strcmp(s, scen[i]) == 0)
			return i;
	return -1;
}

static const char *
met(int ok)
{
	return ok ? "met" : "NOT MET";
}

int
main(int argc, char *argv[])
{
	static struct agg a[NSCEN];
	json_t		*runs = json_array(), *lat[NSCEN] = { 0 };
	json_t		*backlog = NULL, *decide = NULL, *machine = NULL;
	json_t		*out, *sum, *ratios, *targets, *o;
	json_error_t	 jerr;
	char		 line[1 << 16];
	FILE		*f;
	double		 r_null, r_mosq, r_nats, r_raw, c_mosq, drain_rel = 0;
	int		 i, s;

	if (argc != 3) {
		fputs("usage: report RESULTS.jsonl OUT.json\n", stderr);
		return 2;
	}
	if ((f = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "report: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *kind;

		if ((o = json_loads(line, 0, &jerr)) == NULL)
			continue;
		json_array_append(runs, o);
		kind = json_string_value(json_object_get(o, "kind"));
		s = scen_of(json_string_value(json_object_get(o, "scenario")));
		if (kind == NULL) {
			json_decref(o);
			continue;
		}
		if (strcmp(kind, "throughput") == 0 && s >= 0 && a[s].n < 64) {
			struct agg *g = &a[s];

			g->rate[g->n] = num(o, "rate");
			g->cpu[g->n] = num(o, "cpu_us_per_delivery");
			g->bcpu[g->n] = num(o, "broker_cpu_s");
			g->hcpu[g->n] = num(o, "harness_cpu_s");
			g->round[g->n] = (int)json_integer_value(
			    json_object_get(o, "run"));
			g->n++;
		} else if (strcmp(kind, "latency") == 0 && s >= 0) {
			json_decref(lat[s]);
			lat[s] = json_incref(o);
		} else if (strcmp(kind, "backlog") == 0) {
			json_decref(backlog);
			backlog = json_incref(o);
		} else if (strcmp(kind, "decide") == 0) {
			json_decref(decide);
			decide = json_incref(o);
		} else if (strcmp(kind, "machine") == 0) {
			json_decref(machine);
			machine = json_incref(o);
		}
		json_decref(o);
	}
	fclose(f);

	for (s = 0; s < NSCEN; s++) {
		struct agg *g = &a[s];

		g->med_rate = median(g->rate, g->n);
		g->med_cpu = median(g->cpu, g->n);
		g->med_bcpu = median(g->bcpu, g->n);
		g->med_hcpu = median(g->hcpu, g->n);
		g->min_rate = g->max_rate = g->n ? g->rate[0] : 0;
		for (i = 1; i < g->n; i++) {
			if (g->rate[i] < g->min_rate)
				g->min_rate = g->rate[i];
			if (g->rate[i] > g->max_rate)
				g->max_rate = g->rate[i];
		}
	}
#define RATIO(x, y) ((y) > 0 ? (x) / (y) : 0)
	r_null = RATIO(a[0].med_rate, a[1].med_rate);
	r_raw = RATIO(a[0].med_rate, a[2].med_rate);
	r_mosq = RATIO(a[0].med_rate, a[3].med_rate);
	r_nats = RATIO(a[0].med_rate, a[4].med_rate);
	c_mosq = RATIO(a[0].med_cpu, a[3].med_cpu);
	if (backlog != NULL)
		drain_rel = RATIO(num(backlog, "drain_rate"), a[0].med_rate);

	if (machine != NULL)
		printf("machine: %s, %d cores, kernel %s\n",
		    json_string_value(json_object_get(machine, "cpu")),
		    (int)json_integer_value(json_object_get(machine, "nproc")),
		    json_string_value(json_object_get(machine, "kernel")));
	printf("\nthroughput: 1 publisher -> 3 subscribers, 2048-byte "
	    "records, medians of interleaved runs\n");
	printf("%-10s %4s %14s %17s %13s %11s %11s\n", "scenario", "runs",
	    "deliveries/s", "(min - max)", "cpu us/deliv", "broker cpu",
	    "harness cpu");
	for (s = 0; s < NSCEN; s++)
		printf("%-10s %4d %14.0f %8.0f - %6.0f %13.2f %10.2fs "
		    "%10.2fs\n", scen[s], a[s].n, a[s].med_rate, a[s].min_rate,
		    a[s].max_rate, a[s].med_cpu, a[s].med_bcpu, a[s].med_hcpu);

	printf("\nlatency at a fixed rate (ms): publish->accepted and "
	    "publish->delivered\n");
	printf("%-10s %6s %8s %8s %8s %8s %8s %8s\n", "scenario", "pub/s",
	    "acc p50", "acc p99", "acc max", "del p50", "del p99", "del max");
	for (s = 0; s < NSCEN; s++) {
		if (lat[s] == NULL)
			continue;
		printf("%-10s %6.0f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n",
		    scen[s], num(lat[s], "rate"), num(lat[s], "acc_p50_ms"),
		    num(lat[s], "acc_p99_ms"), num(lat[s], "acc_max_ms"),
		    num(lat[s], "del_p50_ms"), num(lat[s], "del_p99_ms"),
		    num(lat[s], "del_max_ms"));
	}
	if (backlog != NULL) {
		printf("\noffline backlog (ccbroker): %.0f messages queued for "
		    "one offline agency\n", num(backlog, "messages"));
		printf("  filling  %8.0f msgs/s  RssAnon %6.1f MiB at start, "
		    "%6.1f MiB max; RssFile %6.1f MiB max\n",
		    num(backlog, "fill_rate"),
		    num(backlog, "rss_anon_start_kib") / 1024,
		    num(backlog, "rss_anon_fill_max_kib") / 1024,
		    num(backlog, "rss_file_max_kib") / 1024);
		printf("  draining %8.0f deliveries/s = %.2f x scenario 1; "
		    "RssAnon %6.1f MiB max\n", num(backlog, "drain_rate"),
		    drain_rel, num(backlog, "rss_anon_drain_max_kib") / 1024);
	}
	if (decide != NULL)
		printf("\nconsent decisions over %.0f subjects: %.0f "
		    "decisions/s\n", num(decide, "subjects"),
		    num(decide, "decisions_per_s"));

	targets = json_array();
#define TARGET(name, value, want, ok) do {				\
	json_array_append_new(targets, json_pack("{s:s, s:f, s:s, s:b}",	\
	    "target", name, "value", (double)(value), "want", want,	\
	    "met", (int)(ok)));						\
	printf("  %-44s %9.2f  (%s)  %s\n", name, (double)(value), want,	\
	    met(ok));							\
} while (0)
	printf("\ntargets of issue 13\n");
	TARGET("throughput ccbroker/null", r_null, ">= 0.80", r_null >= 0.8);
	TARGET("throughput ccbroker/mosquitto", r_mosq, ">= 1.20",
	    r_mosq >= 1.2);
	TARGET("throughput ccbroker/nats", r_nats, ">= 1.10", r_nats >= 1.1);
	TARGET("cpu per delivery ccbroker/mosquitto", c_mosq, "<= 1.00",
	    c_mosq > 0 && c_mosq <= 1.0);
	if (lat[0] != NULL) {
		double p = num(lat[0], "acc_p99_ms"), q = num(lat[0],
		    "del_p99_ms");

		TARGET("p99 publish->accepted at 1000/s (ms)", p, "<= 2",
		    p <= 2);
		TARGET("p99 publish->delivered at 1000/s (ms)", q, "<= 5",
		    q <= 5);
	}
	if (backlog != NULL) {
		double m = num(backlog, "rss_anon_fill_max_kib"), d = num(
		    backlog, "rss_anon_drain_max_kib");

		if (d > m)
			m = d;
		TARGET("RssAnon with the backlog queued (MiB)", m / 1024,
		    "<= 64", m / 1024 <= 64);
		TARGET("drain rate / scenario 1", drain_rel, ">= 0.50",
		    drain_rel >= 0.5);
	}
	if (decide != NULL)
		TARGET("consent decisions/s", num(decide, "decisions_per_s"),
		    ">= 1000000", num(decide, "decisions_per_s") >= 1e6);

	sum = json_object();
	for (s = 0; s < NSCEN; s++)
		json_object_set_new(sum, scen[s], json_pack("{s:i, s:f, s:f, "
		    "s:f, s:f, s:f, s:f}", "runs", a[s].n, "deliveries_per_s",
		    a[s].med_rate, "min", a[s].min_rate, "max", a[s].max_rate,
		    "cpu_us_per_delivery", a[s].med_cpu, "broker_cpu_s",
		    a[s].med_bcpu, "harness_cpu_s", a[s].med_hcpu));
	ratios = json_pack("{s:f, s:f, s:f, s:f, s:f}",
	    "cpu_per_delivery_ccbroker_mosquitto", c_mosq,
	    "ccbroker_null", r_null, "ccbroker_mosquitto", r_mosq,
	    "ccbroker_nats", r_nats, "ccbroker_raw_curve", r_raw);
	out = json_pack("{s:o*, s:o, s:o, s:o*, s:o*, s:o, s:o}",
	    "machine", machine, "throughput", sum, "ratios", ratios,
	    "backlog", backlog, "decide", decide, "targets", targets,
	    "runs", runs);
	o = json_object();
	for (s = 0; s < NSCEN; s++)
		if (lat[s] != NULL)
			json_object_set_new(o, scen[s], lat[s]);
	json_object_set_new(out, "latency", o);
	if (json_dump_file(out, argv[2], JSON_INDENT(1)) == -1)
		fprintf(stderr, "report: cannot write %s\n", argv[2]);
	json_decref(out);

	printf("\nresults: %s\n", argv[2]);
	printf("cpu per delivery ccbroker/mosquitto: %.2f\n", c_mosq);
	printf("ratio ccbroker/null: %.2f\n", r_null);
	printf("ratio ccbroker/mosquitto: %.2f\n", r_mosq);
	printf("ratio ccbroker/nats: %.2f\n", r_nats);
	printf("ratio ccbroker/raw-curve: %.2f\n", r_raw);
	return 0;
}
