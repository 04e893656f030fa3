/* metrics.c -- renders /metrics in Prometheus' text format.
 *
 * Counters live in the store (table counters, written in the same
 * transactions as the events they count), so they survive restarts and
 * never go backwards; latencies are in-memory histograms. A scrape reads the
 * store through its own read-only connection. */
#include "metrics.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "query.h"
#include "source.h"
#include "synccf.h"

static const double bounds[HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,  5,     10};

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
}

void hist_observe(struct hist *h, double s)
{
    pthread_mutex_lock(&h->mu);
    size_t i = 0;
    while (i < HIST_BUCKETS && s > bounds[i]) i++;
    h->counts[i]++;
    h->n++;
    h->sum += s;
    pthread_mutex_unlock(&h->mu);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

void hist_render(struct hist *h, const char *name, const char *labels, struct buf *out)
{
    pthread_mutex_lock(&h->mu);
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i <= HIST_BUCKETS; i++) {
        cum += h->counts[i];
        if (i < HIST_BUCKETS) buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i], (unsigned long long)cum);
        else buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    }
    buf_printf(out, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", h->sum);
    buf_printf(out, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
               (unsigned long long)h->n);
    pthread_mutex_unlock(&h->mu);
}

/* Label values are escaped as the format requires (\\, \", \n). */
static void label(struct buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') buf_printf(out, "\\%c", *v);
        else if (*v == '\n') buf_printf(out, "\\n");
        else buf_append(out, v, 1);
    }
}

struct family {
    const char *prefix, *metric, *help, *lab1, *lab2; /* counter name "prefix.<l1>[.<l2>]" */
    int input; /* its labels come from what senders send (via, source): bounded */
};

/* The ways in: the only via a label shows by name (docs/events.md). */
static const char *const vias[] = {"worker", "tunnel", "queue", "poll", "other"};
#define NVIAS (sizeof vias / sizeof *vias)

static size_t via_index(const char *v)
{
    for (size_t i = 0; i + 1 < NVIAS; i++)
        if (strcmp(v, vias[i]) == 0) return i;
    return NVIAS - 1;
}

static void series(struct buf *out, const struct family *f, const char *a, const char *b, long long v)
{
    buf_printf(out, "%s{%s=\"", f->metric, f->lab1);
    label(out, a);
    if (f->lab2) {
        buf_printf(out, "\",%s=\"", f->lab2);
        label(out, b ? b : "");
    }
    buf_printf(out, "\"} %lld\n", v);
}

/* Counters named "<prefix><l1>|<l2>" or "<prefix><l1>" in the store. A
 * family fed by input shows at most max_series series of its own: a via
 * other than the documented ones, a source past the first max_series (in
 * name order) or named "other" itself, are counted under "other", so that
 * no sender can grow /metrics without bound. */
static void counters(sqlite3 *db, struct buf *out, const struct family *f, unsigned max_series)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", f->metric, f->help, f->metric);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT name, value FROM counters WHERE substr(name, 1, ?1) = ?2 ORDER BY name", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int(st, 1, (int)strlen(f->prefix));
    sqlite3_bind_text(st, 2, f->prefix, -1, SQLITE_STATIC);
    long long other[NVIAS] = {0};
    int has_other[NVIAS] = {0};
    unsigned shown = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *rest = (const char *)sqlite3_column_text(st, 0) + strlen(f->prefix);
        long long v = (long long)sqlite3_column_int64(st, 1);
        char a[256];
        snprintf(a, sizeof a, "%s", rest);
        char *b = f->lab2 ? strchr(a, '|') : NULL;
        if (b) *b++ = '\0';
        if (f->input) {
            size_t vi = via_index(a);
            int own = vi + 1 < NVIAS && (!f->lab2 || (shown < max_series && strcmp(b ? b : "", "other") != 0));
            if (!own) {
                other[vi] += v;
                has_other[vi] = 1;
                continue;
            }
            shown++;
        }
        series(out, f, a, b, v);
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < NVIAS; i++)
        if (has_other[i]) series(out, f, vias[i], "other", other[i]);
}

static long long scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long long v = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The store's size and the retention in force (lib/retention.c). */
static void render_retention(sqlite3 *db, struct buf *out)
{
    long long psize = scalar(db, "PRAGMA page_size");
    buf_printf(out, "# HELP synccf_store_bytes Size of state.db (without its WAL).\n"
                    "# TYPE synccf_store_bytes gauge\nsynccf_store_bytes %lld\n",
               psize * scalar(db, "PRAGMA page_count"));
    buf_printf(out, "# HELP synccf_store_free_bytes Free pages in state.db, reused before it grows.\n"
                    "# TYPE synccf_store_free_bytes gauge\nsynccf_store_free_bytes %lld\n",
               psize * scalar(db, "PRAGMA freelist_count"));
    sqlite3_stmt *st;
    json_t *cfg = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'retention'", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) cfg = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        sqlite3_finalize(st);
    }
    buf_printf(out, "# HELP synccf_retention_limit The retention in force: each limit (0: none), by rule.\n"
                    "# TYPE synccf_retention_limit gauge\n");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(cfg, "rules"), i, r) {
        static const char *const keys[] = {"max_age_ms", "max_events"};
        for (int k = 0; k < 2; k++) {
            buf_printf(out, "synccf_retention_limit{rule=\"");
            label(out, json_string_value(json_object_get(r, "type")));
            buf_printf(out, "\",limit=\"%s\"} %lld\n", keys[k], (long long)json_integer_value(json_object_get(r, keys[k])));
        }
    }
    static const char *const store_keys[] = {"max_age_ms", "max_events", "max_bytes", "dedupe_window_ms"};
    for (int k = 0; cfg && k < 4; k++)
        buf_printf(out, "synccf_retention_limit{rule=\"*\",limit=\"%s\"} %lld\n", store_keys[k],
                   (long long)json_integer_value(json_object_get(cfg, store_keys[k])));
    json_decref(cfg);
}

void metrics_render_store(sqlite3 *db, unsigned max_series, struct buf *out)
{
    static const struct family fams[] = {
        {"events.", "synccf_events_stored_total", "Events stored, by way in and source.", "via", "source", 1},
        {"duplicates.", "synccf_duplicates_total", "Events received again and not stored, by way in.", "via", NULL, 1},
        {"rejected.", "synccf_rejections_total", "Requests, records and messages refused, by reason.", "reason", NULL, 0},
        {"filtered.", "synccf_filtered_total", "Logpush records dropped by the record filter.", "kind", NULL, 0},
        {"handler.", "synccf_handler_runs_total", "Handler runs finished, by handler and outcome.", "handler", "outcome", 0},
        {"poll.requests.", "synccf_poll_requests_total", "Audit log API requests, by HTTP status (0: no answer).", "status", NULL, 0},
        {"pruned.", "synccf_pruned_total", "Events removed by retention, by the limit that removed them.", "limit", NULL, 0},
    };
    for (size_t i = 0; i < sizeof fams / sizeof *fams; i++) counters(db, out, &fams[i], max_series);
    render_retention(db, out);

    buf_printf(out, "# HELP synccf_outbox_pending Handler runs waiting to run or to be retried.\n"
                    "# TYPE synccf_outbox_pending gauge\nsynccf_outbox_pending %lld\n",
               scalar(db, "SELECT count(*) FROM runs WHERE state = '" RUN_NAME_PENDING "'"));
    buf_printf(out, "# HELP synccf_outbox_gave_up Handler runs given up after their last attempt.\n"
                    "# TYPE synccf_outbox_gave_up gauge\nsynccf_outbox_gave_up %lld\n",
               scalar(db, "SELECT count(*) FROM runs WHERE state = '" RUN_NAME_GAVE_UP "'"));

    /* The last event's receive time, as unix seconds. */
    sqlite3_stmt *st;
    double last = 0;
    if (sqlite3_prepare_v2(db, "SELECT received FROM events ORDER BY seq DESC LIMIT 1", -1, &st, NULL) == SQLITE_OK) {
        int64_t ms;
        if (sqlite3_step(st) == SQLITE_ROW && time_parse_rfc3339((const char *)sqlite3_column_text(st, 0), &ms) == 0)
            last = (double)ms / 1000;
        sqlite3_finalize(st);
    }
    buf_printf(out, "# HELP synccf_last_event_timestamp_seconds When the newest stored event was received.\n"
                    "# TYPE synccf_last_event_timestamp_seconds gauge\nsynccf_last_event_timestamp_seconds %.3f\n", last);

    /* Sources: connected (1/0), lag, as their last noted state says. */
    buf_printf(out, "# HELP synccf_source_up Whether each way in is connected or its last run succeeded.\n"
                    "# TYPE synccf_source_up gauge\n");
    json_t *lags = json_object(), *srcs = query_sources(db), *j;
    const char *kind;
    json_object_foreach(srcs, kind, j) {
        int ss = source_state_parse(json_string_value(json_object_get(j, "state")));
        buf_printf(out, "synccf_source_up{source=\"");
        label(out, kind);
        buf_printf(out, "\"} %d\n", ss >= 0 && source_state_up((enum source_state)ss));
        json_t *lag = json_object_get(j, "lag_ms");
        if (json_is_integer(lag)) json_object_set_new(lags, kind, json_integer(json_integer_value(lag)));
    }
    json_decref(srcs);
    buf_printf(out, "# HELP synccf_source_lag_seconds Delay between the Worker receiving an event and synccf storing it.\n"
                    "# TYPE synccf_source_lag_seconds gauge\n");
    const char *k;
    json_t *v;
    json_object_foreach(lags, k, v) buf_printf(out, "synccf_source_lag_seconds{source=\"%s\"} %.3f\n", k,
                                               (double)json_integer_value(v) / 1000);
    json_decref(lags);
    buf_printf(out, "# HELP synccf_build_info The running synccf.\n# TYPE synccf_build_info gauge\n"
                    "synccf_build_info{version=\"%s\"} 1\n", SYNCCF_VERSION);
}
