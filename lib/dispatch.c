/* dispatch.c -- runs the handler runs that the store's outbox holds.
 *
 * The outbox (table runs) is written in the same transaction as the events,
 * so this side only has to run what it finds there and record the outcome:
 * after a crash, whatever was pending is simply found again. A run in
 * progress when the process dies was never marked done, so it runs again:
 * handlers are at-least-once, and the built-in ones are idempotent.
 *
 * Order: runs of one subject (one Pages project, one zone...) are done one at
 * a time in event order; only the oldest open run of a subject is eligible,
 * and it blocks the ones behind it while it waits for a retry. Different
 * subjects run in parallel, up to `concurrency` at once. */
#include "dispatch.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define MAX_WORKERS 64

const char *const run_state_names[RUN_NSTATES] = {
    [RUN_PENDING] = RUN_NAME_PENDING, [RUN_OK] = RUN_NAME_OK, [RUN_GAVE_UP] = RUN_NAME_GAVE_UP};

int run_state_parse(const char *name)
{
    for (int i = 0; name && i < RUN_NSTATES; i++)
        if (strcmp(name, run_state_names[i]) == 0) return i;
    return -1;
}

struct dispatch {
    sqlite3 *db;
    const struct config *cfg;
    pthread_mutex_t mu; /* guards everything below and the connection */
    pthread_cond_t cv;
    int stop;
    int wakeups;
    char **busy; /* subject keys being run, one per worker slot */
    pthread_t threads[MAX_WORKERS];
    unsigned nthreads;
    sqlite3_stmt *claim, *next_due, *record;
    struct store *store;
    struct {
        char name[65];
        struct hist h;
    } lat[64];
    size_t nlat;
};

/* Under d->mu. */
static struct hist *latency(struct dispatch *d, const char *name)
{
    for (size_t i = 0; i < d->nlat; i++)
        if (strcmp(d->lat[i].name, name) == 0) return &d->lat[i].h;
    if (d->nlat == 64) return NULL;
    snprintf(d->lat[d->nlat].name, sizeof d->lat[d->nlat].name, "%s", name);
    hist_init(&d->lat[d->nlat].h);
    return &d->lat[d->nlat++].h;
}

void dispatch_render(struct dispatch *d, struct buf *out)
{
    buf_printf(out, "# HELP synccf_handler_duration_seconds How long handler runs take.\n"
                    "# TYPE synccf_handler_duration_seconds histogram\n");
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->nlat; i++) {
        char labels[100];
        snprintf(labels, sizeof labels, "handler=\"%s\"", d->lat[i].name);
        hist_render(&d->lat[i].h, "synccf_handler_duration_seconds", labels, out);
    }
    pthread_mutex_unlock(&d->mu);
}

struct claim {
    sqlite3_int64 seq;
    int idx;
    int attempts;
    char *handler, *key, *body, *id;
};

static void claim_free(struct claim *c)
{
    free(c->handler);
    free(c->key);
    free(c->body);
    free(c->id);
}

/* The columns every claim query selects, in this order (CLAIM_COLUMNS), and
 * the claim made of such a row. -1 out of memory: c is left empty and the
 * run stays pending, to be tried again later. */
#define CLAIM_COLUMNS "r.seq, r.idx, r.handler, r.subject_key, r.attempts, e.body, e.id"
static int claim_from_row(sqlite3_stmt *q, struct claim *c)
{
    c->seq = sqlite3_column_int64(q, 0);
    c->idx = sqlite3_column_int(q, 1);
    c->handler = strdup((const char *)sqlite3_column_text(q, 2));
    c->key = strdup((const char *)sqlite3_column_text(q, 3));
    c->attempts = sqlite3_column_int(q, 4);
    c->body = strdup((const char *)sqlite3_column_text(q, 5));
    c->id = strdup((const char *)sqlite3_column_text(q, 6));
    if (c->handler && c->key && c->body && c->id) return 0;
    claim_free(c);
    memset(c, 0, sizeof *c);
    return -1;
}

static int busy_has(struct dispatch *d, const char *key)
{
    for (unsigned i = 0; i < d->nthreads; i++)
        if (d->busy[i] && strcmp(d->busy[i], key) == 0) return 1;
    return 0;
}

/* Under d->mu. Returns 1 with *c filled (and *more set when another run
 * might be due too), 0 when nothing is due (then *wait_ms says how long until
 * something is). */
static int claim_next(struct dispatch *d, struct claim *c, long *wait_ms, int *more)
{
    int64_t now = now_ms();
    int found = 0;
    sqlite3_bind_int64(d->claim, 1, now);
    while (!found && sqlite3_step(d->claim) == SQLITE_ROW) {
        if (busy_has(d, (const char *)sqlite3_column_text(d->claim, 3))) continue;
        if (claim_from_row(d->claim, c) != 0) break;
        found = 1;
    }
    *more = found && sqlite3_step(d->claim) == SQLITE_ROW;
    sqlite3_reset(d->claim);
    if (found) return 1;
    *wait_ms = 1000;
    if (sqlite3_step(d->next_due) == SQLITE_ROW && sqlite3_column_type(d->next_due, 0) != SQLITE_NULL) {
        long w = (long)(sqlite3_column_int64(d->next_due, 0) - now);
        if (w < *wait_ms) *wait_ms = w < 1 ? 1 : w;
    }
    sqlite3_reset(d->next_due);
    return 0;
}

static void run_one(const struct handler_def *h, const char *body, struct handler_result *res)
{
    json_t *ev = jx_loads(body, 0, NULL);
    if (!ev) {
        res->permanent = 1;
        snprintf(res->error, sizeof res->error, "stored event is not JSON");
        return;
    }
    switch (h->kind) {
    case HANDLER_TASK_CACHE: taskcache_run(&h->tc, ev, res); break;
    case HANDLER_EXEC: exec_run(&h->ex, ev, body, res); break;
    case HANDLER_CALLBACK:
        res->ok = h->fn(body, h->arg) == 0;
        if (!res->ok) snprintf(res->error, sizeof res->error, "callback returned failure");
        break;
    }
    json_decref(ev);
}

/* Under d->mu: waits up to ms for a wakeup. */
static void wait_locked(struct dispatch *d, long ms)
{
    struct timespec ts = deadline_ms(ms);
    pthread_cond_timedwait(&d->cv, &d->mu, &ts);
}

void run_record_bind(sqlite3_stmt *st, const struct store_outcome *o)
{
    sqlite3_bind_text(st, 1, o->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, o->attempts);
    sqlite3_bind_int64(st, 3, o->next_at);
    sqlite3_bind_text(st, 4, o->error, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, o->detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, o->seq);
    sqlite3_bind_int(st, 7, o->idx);
}

/* Records a run's outcome: through the store's writer in the daemon (see
 * store_outcome), on this dispatcher's connection otherwise (`synccf replay`
 * with no daemon, no writer). A full disk or a lock held elsewhere: the outcome is
 * kept and tried again every second rather than the run left due, which
 * would run an ok handler again at once, in a loop. Only a stop gives up
 * (the run is then still pending and runs again after the restart). Not
 * under d->mu. */
static void record(struct dispatch *d, const char *handler, const struct store_outcome *o)
{
    for (int tries = 0;; tries++) {
        int ok;
        const char *why = "store commit failed";
        if (d->store) {
            struct store_batch b = {0};
            b.outcome = o;
            ok = store_commit(d->store, &b) == 0;
        } else {
            run_record_bind(d->record, o);
            ok = sqlite3_step(d->record) == SQLITE_DONE;
            if (!ok) why = sqlite3_errmsg(d->db);
            sqlite3_reset(d->record);
        }
        if (ok) return;
        pthread_mutex_lock(&d->mu);
        int stop = d->stop;
        if (tries == 0 || stop)
            log_msg(LOG_ERROR, stop ? "cannot record a handler outcome; it will run again"
                                    : "cannot record a handler outcome; retrying every second",
                    "handler", handler, "error", why, NULL);
        if (!stop) wait_locked(d, 1000);
        pthread_mutex_unlock(&d->mu);
        if (stop) return;
    }
}

/* Runs claim c (not under d->mu) and records its outcome; returns with d->mu
 * held and the run's new state. */
static enum run_state run_and_record(struct dispatch *d, struct claim *c, unsigned *seed)
{
    pthread_mutex_lock(&d->mu);
    const struct handler_def *h = router_handler(&d->cfg->router, c->handler);
    pthread_mutex_unlock(&d->mu);

    struct handler_result res = {0};
    double t0 = mono_s();
    if (h) run_one(h, c->body, &res);
    else {
        res.permanent = 1;
        snprintf(res.error, sizeof res.error, "handler %s is not configured", c->handler);
    }
    int attempts = c->attempts + 1;
    enum run_state state = res.ok ? RUN_OK : (res.permanent || attempts >= (int)d->cfg->max_attempts) ? RUN_GAVE_UP : RUN_PENDING;
    int64_t next = res.ok ? 0 : now_ms() + backoff_ms(seed, attempts, d->cfg->backoff_ms, d->cfg->max_backoff_ms);

    char att[16], ms[24];
    snprintf(att, sizeof att, "%d", attempts);
    snprintf(ms, sizeof ms, "%.0f", (mono_s() - t0) * 1000);
    if (res.ok)
        log_msg(LOG_INFO, "handler ok", "event", c->id, "handler", c->handler, "attempt", att, "ms", ms, NULL);
    else
        log_msg(state == RUN_GAVE_UP ? LOG_ERROR : LOG_WARN,
                state == RUN_GAVE_UP ? "handler gave up" : "handler failed, will retry", "event", c->id,
                "handler", c->handler, "attempt", att, "error", res.error, NULL);
    char *detail = res.detail ? json_dumps(res.detail, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    pthread_mutex_lock(&d->mu);
    struct hist *hl = latency(d, c->handler);
    if (hl) hist_observe(hl, mono_s() - t0);
    pthread_mutex_unlock(&d->mu);
    if (d->store) {
        char cname[128];
        snprintf(cname, sizeof cname, "handler.%.64s|%s", c->handler,
                 state == RUN_PENDING ? RUN_NAME_FAILED : run_state_names[state]);
        store_count(d->store, cname, 1);
    }
    struct store_outcome o = {c->seq, c->idx, attempts, run_state_names[state], next, res.ok ? NULL : res.error, detail};
    record(d, c->handler, &o);
    free(detail);
    handler_result_free(&res);
    pthread_mutex_lock(&d->mu);
    return state;
}

static void *worker(void *arg)
{
    struct dispatch *d = arg;
    unsigned slot;
    unsigned seed = (unsigned)now_ms() ^ (unsigned)(uintptr_t)&slot;
    pthread_mutex_lock(&d->mu);
    for (slot = 0; slot < d->nthreads && d->threads[slot] != pthread_self(); slot++) {}
    while (!d->stop) {
        struct claim c = {0};
        long wait_ms = 1000;
        int more = 0;
        if (!claim_next(d, &c, &wait_ms, &more)) {
            if (d->wakeups) {
                d->wakeups = 0;
                continue;
            }
            wait_locked(d, wait_ms);
            continue;
        }
        d->busy[slot] = c.key;
        /* Workers are woken one at a time, each waking the next only while
         * there is more to take: waking all of them for every commit made
         * each run its claim query in turn under the lock, for one run. */
        if (more) pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        run_and_record(d, &c, &seed);
        d->busy[slot] = NULL;
        /* This worker claims again at once; one other is woken in case a
         * run of the subject it held is now free while this one is busy. */
        pthread_cond_signal(&d->cv);
        claim_free(&c);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

void dispatch_wake(void *arg)
{
    struct dispatch *d = arg;
    pthread_mutex_lock(&d->mu);
    d->wakeups++;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* The dispatcher's connection and statements, no threads yet. */
/* What dispatch_open made (any part of it) and the busy keys array. */
static void dispatch_free(struct dispatch *d)
{
    sqlite3_finalize(d->claim);
    sqlite3_finalize(d->next_due);
    sqlite3_finalize(d->record);
    sqlite3_close(d->db);
    free(d->busy);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

static struct dispatch *dispatch_open(const char *db_path, const struct config *cfg, struct store *st, char *err,
                                      size_t errlen)
{
    struct dispatch *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "dispatcher: out of memory");
        return NULL;
    }
    d->cfg = cfg;
    d->store = st;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (sqlite3_open_v2(db_path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) goto sqlerr;
    sqlite3_busy_timeout(d->db, 5000);
    const char *claim =
        "SELECT " CLAIM_COLUMNS " FROM runs r JOIN events e ON e.seq = r.seq "
        "WHERE r.state = '" RUN_NAME_PENDING "' AND r.next_at <= ?1 AND NOT EXISTS (SELECT 1 FROM runs p "
        "  WHERE p.state = '" RUN_NAME_PENDING "' AND p.subject_key = r.subject_key AND (p.seq < r.seq OR (p.seq = r.seq AND p.idx < r.idx))) "
        "ORDER BY r.seq, r.idx LIMIT 64";
    const char *due = "SELECT min(next_at) FROM runs WHERE state = '" RUN_NAME_PENDING "'";
    if (sqlite3_prepare_v2(d->db, claim, -1, &d->claim, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d->db, due, -1, &d->next_due, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d->db, RUN_RECORD_SQL, -1, &d->record, NULL) != SQLITE_OK)
        goto sqlerr;
    return d;
sqlerr:
    snprintf(err, errlen, "dispatcher: %s", d->db ? sqlite3_errmsg(d->db) : "out of memory");
    dispatch_free(d);
    return NULL;
}

struct dispatch *dispatch_start(const char *db_path, const struct config *cfg, struct store *st, char *err,
                                size_t errlen)
{
    struct dispatch *d = dispatch_open(db_path, cfg, st, err, errlen);
    if (!d) return NULL;
    unsigned want = cfg->concurrency < 1 ? 1 : cfg->concurrency > MAX_WORKERS ? MAX_WORKERS : cfg->concurrency;
    d->busy = calloc(want, sizeof *d->busy);
    if (!d->busy) {
        snprintf(err, errlen, "dispatcher: out of memory");
        dispatch_free(d);
        return NULL;
    }
    /* Threads look their slot up by pthread_self(), so all handles must be
     * stored before any of them runs: hold the lock while creating them.
     * nthreads counts the ones that exist, so a failed create leaves a
     * smaller dispatcher that still stops cleanly; none at all is an error. */
    pthread_mutex_lock(&d->mu);
    for (unsigned i = 0; i < want; i++) {
        if (pthread_create(&d->threads[d->nthreads], NULL, worker, d) != 0) break;
        pthread_setname_np(d->threads[d->nthreads], "dispatch");
        d->nthreads++;
    }
    pthread_mutex_unlock(&d->mu);
    if (d->nthreads == 0) {
        snprintf(err, errlen, "dispatcher: cannot start a thread");
        dispatch_free(d);
        return NULL;
    }
    return d;
}

int dispatch_run_event(const char *db_path, const struct config *cfg, long long seq, int *ok, char *err,
                       size_t errlen)
{
    *ok = 0;
    struct dispatch *d = dispatch_open(db_path, cfg, NULL, err, errlen);
    if (!d) return -1;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(d->db,
                           "SELECT " CLAIM_COLUMNS " FROM runs r JOIN events e "
                           "ON e.seq = r.seq WHERE r.seq = ?1 AND r.state = '" RUN_NAME_PENDING "' ORDER BY r.idx",
                           -1, &q, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "dispatcher: %s", sqlite3_errmsg(d->db));
        dispatch_free(d);
        return -1;
    }
    sqlite3_bind_int64(q, 1, seq);
    /* Claimed all at once, then run: recording an outcome writes the rows
     * this query reads. */
    struct claim *cs = NULL;
    size_t n = 0;
    int rc = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        struct claim *grown = realloc(cs, (n + 1) * sizeof *cs);
        if (!grown) {
            snprintf(err, errlen, "dispatcher: out of memory");
            rc = -1;
            break;
        }
        cs = grown;
        if (claim_from_row(q, &cs[n]) != 0) {
            snprintf(err, errlen, "dispatcher: out of memory");
            rc = -1;
            break;
        }
        n++;
    }
    sqlite3_finalize(q);
    unsigned seed = (unsigned)now_ms();
    for (size_t i = 0; rc == 0 && i < n; i++) {
        enum run_state state = run_and_record(d, &cs[i], &seed);
        pthread_mutex_unlock(&d->mu);
        if (state == RUN_OK) ++*ok;
    }
    for (size_t i = 0; i < n; i++) claim_free(&cs[i]);
    free(cs);
    dispatch_free(d);
    return rc ? rc : (int)n;
}

void dispatch_stop(struct dispatch *d)
{
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    /* Runs in progress finish and are recorded: SIGTERM drains. */
    for (unsigned i = 0; i < d->nthreads; i++) pthread_join(d->threads[i], NULL);
    dispatch_free(d);
}
