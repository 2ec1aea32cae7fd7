/*
 * unitbroker.h - a real broker without sockets, for the unit tests of the
 * router, the pump and the frames the handlers build.
 *
 * ub_new() makes a fresh partnership with the harness (h_env_new with
 * no_start: CA, agency certificates, broker.conf, `ccbroker init`), opens
 * a struct broker on it with broker_open() and begins one store write
 * transaction that every step of the test runs in.  Requests are built as
 * batch.c builds them (the agency is the authenticated sender, its
 * session the peer, a routing id of the agency id's own bytes) and run
 * through dispatch(); what a turn would send is read back from b->out,
 * each frame decoded and validated with proto_decode() and handed to the
 * test as JSON with its "op".
 *
 * Memory: every json_t and string returned belongs to the harness (freed
 * by ub_destroy through h_env_destroy).  Functions fail the test
 * (cr_assert) when a step the test did not mean to fail fails.
 */
#ifndef CC_TEST_UNITBROKER_H
#define CC_TEST_UNITBROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker_impl.h"
#include "harness.h"

struct ub {
	struct h_env		*env;
	struct broker		 b;
	struct store_txn	*txn;		/* the test's transaction */
	int64_t			 skew;		/* ms added to the clock */
};

/* A fresh world (opts may be NULL; no_start is forced) and its broker. */
struct ub	*ub_new(const struct h_env_opts *);
/* Abort the transaction, close the broker, remove the world. */
void		 ub_destroy(struct ub **);

/* The time of the next step, as batch_turn sets it: now + skew. */
void		 ub_tick(struct ub *);
/* Move the clock on by ms (and tick). */
void		 ub_advance(struct ub *, int64_t ms);

/*
 * Run one request of `agency` through dispatch(): msg is the op's JSON
 * with "op" (as the harness's record builders make it); asserts that the
 * request decodes and that the handler returns 0.  ub_call returns the
 * one answer to the agency (NULL when none; fails on more), ub_calls all
 * of them (an array).
 */
json_t		*ub_call(struct ub *, const char *agency, json_t *msg);
json_t		*ub_calls(struct ub *, const char *agency, json_t *msg);
json_t		*ub_callf(struct ub *, const char *agency, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));

/*
 * Take every queued frame addressed to the agency's routing id, in the
 * order queued: each must pass proto_decode(); returned as JSON objects
 * with "op" (an array, possibly empty).  Frames to others stay queued.
 */
json_t		*ub_frames(struct ub *, const char *agency);
/* Frames queued for anyone. */
size_t		 ub_nout(const struct ub *);

/* A consent-grant recorded by `by` (asserts consent-recorded); its cid. */
const char	*ub_grant(struct ub *, const char *by, const char *recipients,
		    const char *categories, const char *purposes,
		    const char *pnc, bool explicit_);
/* Publish (asserts accepted); the mid. */
const char	*ub_publish(struct ub *, const char *by, json_t *msg);
/* A release plan about pnc (every category present), to the agencies of
 * to_csv or, when NULL, to the subscribers of H_AREA. */
json_t		*ub_plan(const char *pnc, const char *to_csv);

/* The agency's session says hello with receive: true (as handle_hello
 * would): online, routing id its own id, cursor 0, nothing in flight. */
struct peer	*ub_online(struct ub *, const char *agency);
/* Tick and run deliver_pump (asserts 0). */
void		 ub_pump(struct ub *);
/* Record what a turn records (state_save) and commit; begin again. */
void		 ub_commit(struct ub *);

/*
 * The agency's store queue, in dseq order, as JSON objects {dseq, kind
 * ("deliver" or "receipt"), mid, and for receipts agency, state, reason}.
 */
json_t		*ub_queue(struct ub *, const char *agency);
/* A recipient's delivery state of a message: "queued", "withheld/
 * no-consent", ... or NULL when the message has none for it. */
const char	*ub_rstate(struct ub *, const char *mid, const char *agency);
/* Expect a delivery state (want NULL: no state, not a recipient); `what`
 * names the step in the message. */
void		 ub_expect_rstate(struct ub *, const char *what,
		    const char *mid, const char *agency, const char *want);
/* Audit entries appended from seq `from` on, matching the fields given
 * (NULL: any). */
size_t		 ub_audit_count(struct ub *, uint64_t from, const char *ev,
		    const char *id, const char *recipient, const char *reason);
/* The seq the next audit entry will have. */
uint64_t	 ub_audit_next(struct ub *);

/* Revoke an agency in the partnership and reload the directory, as a
 * SIGHUP does (the sessions stay). */
void		 ub_revoke(struct ub *, const char *agency);

#endif /* CC_TEST_UNITBROKER_H */
