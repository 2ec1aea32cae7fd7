/*
 * bench_decide.c - consent decisions per second over a store of N subjects
 * (default 1,000,000), each with one active consent; one core, one read
 * transaction per batch of 1,000 decisions as the broker's loop does.
 *
 * usage: bench_decide [SUBJECTS] [DECISIONS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decide.h"
#include "store.h"

#define NPS	262144	/* distinct subjects looked up, at random */

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
pnc_of(unsigned i, char out[14])
{
	static const char	letters[] = "ZABCDEFGHJKLMNPQRTUVWXY";
	/* Year 2002, serial i: the check letter is over "02" + 7 digits. */
	unsigned long		n = 2UL * 10000000UL + i;

	snprintf(out, 14, "2002/%07u%c", i % 10000000, letters[n % 23]);
}

int
main(int argc, char *argv[])
{
	unsigned	 nsub = argc > 1 ? (unsigned)atoi(argv[1]) : 1000000;
	unsigned	 ndec = argc > 2 ? (unsigned)atoi(argv[2]) : 2000000;
	char		 dir[64] = "/tmp/ccbench-decide-XXXXXX", data[96];
	char		 err[256], cmd[128];
	struct store	*st;
	struct policy	 pol = { 0, CATSET_ALL, true };
	struct store_txn *txn = NULL;
	double		 t0, t1;
	unsigned	 i, permits = 0;
	int64_t		 now = cc_time_now_ms();

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(data, sizeof(data), "%s/data", dir);
	if (store_init(data, err, sizeof(err)) == -1 ||
	    store_open(&st, data, 4096, false, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	t0 = now_s();
	for (i = 0; i < nsub; i++) {
		struct consent_hdr	h;
		struct cc_subject	s;
		uint8_t			cid[16] = { 0 };

		if (i % 100000 == 0) {
			if (txn != NULL && store_commit(txn) != 0)
				return 1;
			if (store_begin(st, true, &txn) != 0)
				return 1;
		}
		memset(&h, 0, sizeof(h));
		memset(&s, 0, sizeof(s));
		pnc_of(i, s.pnc);
		if (store_subject_ps(st, &s, &h.subj) == -1)
			return 1;
		memcpy(cid, &i, sizeof(i));
		h.version = 1;
		h.state = CS_ACTIVE;
		h.purposes = 1u << PURPOSE_CONTINUITY_OF_CARE;
		h.cats = CATSET_ALL & ~CATSET_EXPLICIT;
		h.from_ms = now - 86400000LL;
		h.until_ms = now + 86400000LL * 300;
		h.recip_len = sizeof("cjit.leeds\0probation.leeds");
		if (store_consent_put(st, txn, cid, &h,
		    "cjit.leeds\0probation.leeds", "", "evidence", 8) != 0)
			return 1;
	}
	if (store_commit(txn) != 0)
		return 1;
	t1 = now_s();
	printf("store: %u subjects written in %.1f s\n", nsub, t1 - t0);

	/* Pseudonyms are computed once per message at routing, not per
	 * decision, so they are prepared outside the timed loop. */
	struct subject_ps *ps = calloc(NPS, sizeof(*ps));
	for (i = 0; i < NPS; i++) {
		struct cc_subject s;

		memset(&s, 0, sizeof(s));
		pnc_of((unsigned)(((uint64_t)i * 2654435761u) % nsub), s.pnc);
		if (store_subject_ps(st, &s, &ps[i]) == -1)
			return 1;
	}
	t0 = now_s();
	for (i = 0; i < ndec; i++) {
		struct decision d;

		if (i % 1000 == 0) {
			if (i > 0)
				store_abort(txn);
			if (store_begin(st, false, &txn) != 0)
				return 1;
		}
		decide(st, txn, &ps[i % NPS], PURPOSE_CONTINUITY_OF_CARE,
		    (i & 1) ? "cjit.leeds" : "probation.leeds", &pol, now, &d);
		permits += d.permit;
	}
	store_abort(txn);
	t1 = now_s();
	printf("decisions: %u in %.3f s = %.0f decisions/s (%u permitted)\n",
	    ndec, t1 - t0, ndec / (t1 - t0), permits);
	store_close(&st);
	free(ps);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 && permits == ndec ? 0 : 1;
}
