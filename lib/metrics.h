/* metrics.h -- Prometheus text exposition of what synccf is doing. */
#ifndef SYNCCF_METRICS_H
#define SYNCCF_METRICS_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "util.h"

/* A latency histogram (seconds) with fixed buckets; thread-safe. */
#define HIST_BUCKETS 14
struct hist {
    pthread_mutex_t mu;
    uint64_t counts[HIST_BUCKETS + 1]; /* the last is +Inf */
    uint64_t n;
    double sum;
};
void hist_init(struct hist *h);
void hist_observe(struct hist *h, double seconds);
/* Appends name_bucket/_sum/_count lines with the given labels ("" or
 * `handler="x"`) to out. */
void hist_render(struct hist *h, const char *name, const char *labels, struct buf *out);

/* Everything in the store that /metrics shows: persisted counters, the
 * outbox, the last event, each source's state. Appends to out. */
void metrics_render_store(sqlite3 *db, unsigned max_series, struct buf *out);

/* printf into a buf. */
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
