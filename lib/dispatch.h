/* dispatch.h -- runs handlers for stored events, with retries that survive restarts. */
#ifndef SYNCCF_DISPATCH_H
#define SYNCCF_DISPATCH_H

#include <stddef.h>

#include "config.h"
#include "store.h"
#include "util.h"

struct dispatch;

/* Starts cfg->concurrency worker threads on their own connection to the
 * store at db_path. cfg must outlive the dispatcher. */
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
