/* dispatch.h -- runs handlers for stored events, with retries that survive restarts. */
#ifndef SYNCCF_DISPATCH_H
#define SYNCCF_DISPATCH_H

#include <stddef.h>

#include "config.h"
#include "store.h"
#include "util.h"

/* A handler run's state, as the runs table (store.c) keeps it: pending
 * (due at next_at, or retried there after a failure), ok, or gave_up after
 * a permanent failure or its last attempt. The names are the column's
 * values; the RUN_NAME_* spellings are for SQL text. */
enum run_state { RUN_PENDING, RUN_OK, RUN_GAVE_UP, RUN_NSTATES };
#define RUN_NAME_PENDING "pending"
#define RUN_NAME_OK "ok"
#define RUN_NAME_GAVE_UP "gave_up"
/* What status calls a pending run that has already failed. */
#define RUN_NAME_RETRYING "retrying"
/* What the handler.<name>|... counters call an attempt that failed and
 * will be retried. */
#define RUN_NAME_FAILED "failed"
/* Records a run's outcome: ?1 state, ?2 attempts, ?3 next_at, ?4 last_error,
 * ?5 detail, ?6 seq, ?7 idx. The daemon's writer runs it (store_outcome); the
 * one-shot `synccf replay` with no daemon on its own connection. */
#define RUN_RECORD_SQL                                                                                  \
    "UPDATE runs SET state=?1, attempts=?2, next_at=?3, last_error=?4, detail=?5, "                    \
    "updated=strftime('%Y-%m-%dT%H:%M:%fZ') WHERE seq=?6 AND idx=?7"
struct sqlite3_stmt;
struct store_outcome;
/* Binds an outcome to a statement of RUN_RECORD_SQL (the strings are not copied). */
void run_record_bind(struct sqlite3_stmt *st, const struct store_outcome *o);
extern const char *const run_state_names[RUN_NSTATES];
/* The state named name, or -1. */
int run_state_parse(const char *name);

struct dispatch;

/* Starts cfg->concurrency worker threads on their own connection to the
 * store at db_path (to claim runs: it only reads); outcomes are handed to
 * st's writer. cfg must outlive the dispatcher. */
struct dispatch *dispatch_start(const char *db_path, const struct config *cfg, struct store *st, char *err,
                                size_t errlen);
/* Handler latency histograms, for /metrics. */
void dispatch_render(struct dispatch *d, struct buf *out);
/* New runs are in the outbox: look now rather than at the next poll. */
void dispatch_wake(void *d);
/* Runs the pending runs of the event with store sequence seq once each, in
 * order, on this thread, and records their outcomes as the dispatcher would
 * (a failure stays pending for a daemon's retries). For `synccf replay` when
 * no daemon holds the state directory: the caller must hold its lock
 * (lock.h), or a daemon could run the same runs. Returns how many ran (*ok of
 * them succeeded), -1 with err set on a store failure. */
int dispatch_run_event(const char *db_path, const struct config *cfg, long long seq, int *ok, char *err,
                       size_t errlen);
/* Lets runs in progress finish and be recorded, then stops. */
void dispatch_stop(struct dispatch *d);

#endif
