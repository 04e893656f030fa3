/* poll.c -- `synccf poll`: reads Cloudflare's Audit Logs API on an interval
 * (no public URL at all; minutes of delay).
 *
 * Each run reads from the high-water mark minus an overlap window up to now,
 * oldest first, page by page; each page's events are committed together with
 * the new high-water mark. The overlap re-reads a little on every run: those
 * entries are duplicates the store drops, and entries Cloudflare records late
 * are not missed. v2 (logs/audit, cursor pagination) is used; where it is
 * refused (404) the v1 API (audit_logs, page numbers) is used instead.
 * Rate limits (429 + Retry-After), server errors (backoff) and token errors
 * (reported, retried only at the next interval) are honoured.
 *
 * With pages_projects configured, each run also reads those projects' Pages
 * deployments (newest first), and each deployment's state becomes the event
 * its Notifications webhook would have produced: the same id, so a
 * deployment seen both ways is stored once. A project's cursor is the
 * creation time of its newest deployment, held back to the oldest one still
 * building so that its outcome is read on a later run. */
#include "poll.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "ingest.h"
#include "log.h"
#include "normalize.h"
#include "source.h"

#define ATTEMPTS 5               /* per page, for 429 and 5xx */
#define FIRST_LOOKBACK_MS (24LL * 3600 * 1000)
#define MAX_LOOKBACK_MS (30LL * 24 * 3600 * 1000) /* what the API keeps */
#define PAGES_PER_PAGE 25
#define BUILDING_MAX_MS (24LL * 3600 * 1000) /* a build older than this no longer holds a cursor back */

struct pages_project {
    const char *name;
    char cursor_name[200];
    int64_t hwm; /* creation time of the newest deployment committed, or of the oldest still building */
};

struct poll {
    struct source src; /* first: SOURCE_OWNER */
    const struct config *cfg;
    char cursor_name[128];
    int64_t hwm;       /* newest action time committed, ms */
    int v1;            /* v2 was refused: use v1 */
    long requests, new_events;
    int (*active)(void *);
    void *active_arg;
    atomic_int healthy;
    struct pages_project *pages;
    size_t npages;
};
SOURCE_OWNER(struct poll);

static void note(struct poll *p)
{
    char hwm[TIME_BUF] = "";
    if (p->hwm) time_format_ms(p->hwm, hwm);
    source_note(&p->src, json_pack("{s:s?,s:s,s:I,s:I}", "high_water_mark", hwm[0] ? hwm : NULL, "api",
                                   p->v1 ? "v1" : "v2", "requests", (json_int_t)p->requests, "new_events",
                                   (json_int_t)p->new_events));
}

static void esc(const char *in, char *out, size_t n)
{
    char *e = curl_easy_escape(NULL, in, 0);
    snprintf(out, n, "%s", e ? e : "");
    curl_free(e);
}

/* One API call with the retries this run allows; CF_OK or the final outcome.
 * what names the API in log lines ("audit log", "Pages API"). */
static enum cf_outcome call(struct poll *p, const char *what, const char *url, json_t **env)
{
    for (int attempt = 1;; attempt++) {
        struct http_resp r;
        char msg[240];
        enum cf_outcome o = cf_call("GET", url, p->cfg->api_token, NULL, &r, env, msg, sizeof msg);
        p->requests++;
        char cname[48];
        snprintf(cname, sizeof cname, "poll.requests.%ld", r.status);
        store_count(p->src.store, cname, 1);
        long retry_after = r.retry_after_s;
        http_resp_free(&r);
        if (o == CF_OK || o == CF_NOT_FOUND) return o;
        snprintf(p->src.last_error, sizeof p->src.last_error, "%s", msg);
        if (o == CF_AUTH || o == CF_BAD || attempt >= ATTEMPTS || source_stopping(&p->src)) {
            char line[64];
            snprintf(line, sizeof line, "%s %s", what, o == CF_AUTH ? "token refused" : "request failed");
            log_msg(o == CF_AUTH ? LOG_ERROR : LOG_WARN, line, "error", msg, NULL);
            return o;
        }
        long wait = o == CF_RATE_LIMIT ? (retry_after >= 0 ? retry_after * 1000 : 60000)
                                       : source_backoff(&p->src, attempt, 1000, 60000);
        p->src.state = o == CF_RATE_LIMIT ? SOURCE_RATE_LIMITED : SOURCE_BACKING_OFF;
        note(p);
        source_nap(&p->src, wait > 300000 ? 300000 : wait);
    }
}

/* Commits a batch (events and, if set, a cursor) and clears it; counts what
 * was new. */
static int commit(struct poll *p, struct store_batch *b)
{
    /* A cursor whose value could not be copied (out of memory): nothing is
     * committed and the run is made again. */
    int rc = b->cursor_name && !b->cursor_value ? -1 : store_commit(p->src.store, b);
    if (rc == 0) p->new_events += (long)b->accepted;
    else snprintf(p->src.last_error, sizeof p->src.last_error, "the store could not commit");
    store_batch_clear(b);
    return rc;
}

/* Commits a page's entries with the new high-water mark. */
static int commit_page(struct poll *p, json_t *entries, int v2)
{
    struct store_batch b = {0};
    int64_t hwm = p->hwm;
    size_t i;
    json_t *e;
    struct norm_opts o = {"poll", now_ms()};
    json_array_foreach(entries, i, e) {
        json_t *ev = norm_audit(e, v2, &o);
        if (!ev) {
            store_count(p->src.store, "rejected.bad_audit_entry", 1);
            continue;
        }
        int64_t t;
        const char *ts = json_string_value(json_object_get(ev, "time"));
        if (ts && time_parse_rfc3339(ts, &t) == 0 && t > hwm && t <= now_ms() + 60000) hwm = t;
        ingest_add(&b, ev, &p->cfg->router);
    }
    char hv[TIME_BUF];
    time_format_ms(hwm, hv);
    b.cursor_name = p->cursor_name;
    b.cursor_value = strdup(hv);
    int rc = commit(p, &b);
    if (rc == 0) p->hwm = hwm;
    return rc;
}

/* One run over [since, before]; 0 when complete. */
static int run_once(struct poll *p)
{
    const struct config *c = p->cfg;
    int64_t now = now_ms();
    int64_t from = p->hwm ? p->hwm - c->poll_overlap_ms : now - FIRST_LOOKBACK_MS;
    if (from < now - MAX_LOOKBACK_MS) from = now - MAX_LOOKBACK_MS;
    char since[TIME_BUF], before[TIME_BUF], es[64], eb[64];
    time_format_ms(from, since);
    time_format_ms(now, before);
    esc(since, es, sizeof es);
    esc(before, eb, sizeof eb);
    char cursor[1024] = "";
    for (unsigned page = 1; page <= c->poll_max_pages && !source_stopping(&p->src); page++) {
        char url[4096], ec[1100];
        json_t *env = NULL;
        if (!p->v1) {
            esc(cursor, ec, sizeof ec);
            snprintf(url, sizeof url, "%s/client/v4/accounts/%s/logs/audit?since=%s&before=%s&limit=1000&direction=asc%s%s",
                     c->api_base, c->account_id, es, eb, cursor[0] ? "&cursor=" : "", cursor[0] ? ec : "");
        } else {
            snprintf(url, sizeof url, "%s/client/v4/accounts/%s/audit_logs?since=%s&before=%s&page=%u&per_page=100&direction=asc",
                     c->api_base, c->account_id, es, eb, page);
        }
        enum cf_outcome o = call(p, "audit log", url, &env);
        if (o == CF_NOT_FOUND && !p->v1 && page == 1) {
            log_msg(LOG_INFO, "audit logs v2 refused; using v1", NULL);
            p->v1 = 1;
            page = 0;
            continue;
        }
        if (o != CF_OK) {
            p->src.state = o == CF_AUTH ? SOURCE_AUTH_ERROR : SOURCE_ERROR;
            if (o == CF_NOT_FOUND) snprintf(p->src.last_error, sizeof p->src.last_error, "the audit log API answered 404");
            return -1;
        }
        json_t *result = json_object_get(env, "result");
        json_t *info = json_object_get(env, "result_info");
        if (!json_is_array(result)) {
            snprintf(p->src.last_error, sizeof p->src.last_error, "the audit log answer has no result list");
            p->src.state = SOURCE_ERROR;
            json_decref(env);
            return -1;
        }
        int rc = commit_page(p, result, !p->v1);
        size_t n = json_array_size(result);
        int done;
        if (!p->v1) {
            const char *next = json_string_value(json_object_get(info, "cursor"));
            done = !next || !*next || n == 0;
            snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        } else {
            json_int_t total = json_integer_value(json_object_get(info, "total_count"));
            done = n < 100 || (json_int_t)page * 100 >= total;
        }
        json_decref(env);
        if (rc != 0) return -1;
        if (done) return 0;
    }
    return 0;
}

/* Reads one project's deployments created since its cursor (less the
 * overlap), all pages first, then commits their events with the new cursor:
 * committing the newest page first would move the cursor past older
 * deployments not yet stored. */
static int pages_once(struct poll *p, struct pages_project *pp)
{
    const struct config *c = p->cfg;
    int64_t now = now_ms();
    int64_t from = pp->hwm ? pp->hwm - c->poll_overlap_ms : now - FIRST_LOOKBACK_MS;
    if (from < now - MAX_LOOKBACK_MS) from = now - MAX_LOOKBACK_MS;
    json_t *deps = json_array();
    int rc = 0;
    for (unsigned page = 1; page <= c->poll_max_pages && !source_stopping(&p->src); page++) {
        char url[4096];
        json_t *env = NULL;
        snprintf(url, sizeof url, "%s/client/v4/accounts/%s/pages/projects/%s/deployments?page=%u&per_page=%d",
                 c->api_base, c->account_id, pp->name, page, PAGES_PER_PAGE);
        enum cf_outcome o = call(p, "Pages API", url, &env);
        if (o != CF_OK) {
            p->src.state = o == CF_AUTH ? SOURCE_AUTH_ERROR : SOURCE_ERROR;
            if (o == CF_NOT_FOUND)
                snprintf(p->src.last_error, sizeof p->src.last_error, "Pages project %s not found (404)", pp->name);
            rc = -1;
            break;
        }
        json_t *result = json_object_get(env, "result");
        if (!json_is_array(result)) {
            snprintf(p->src.last_error, sizeof p->src.last_error, "the Pages API answer has no result list");
            p->src.state = SOURCE_ERROR;
            json_decref(env);
            rc = -1;
            break;
        }
        /* Newest first: stop at the first deployment older than the window. */
        int older = 0;
        size_t i;
        json_t *d;
        json_array_foreach(result, i, d) {
            int64_t t;
            const char *created = json_string_value(json_object_get(d, "created_on"));
            if (created && time_parse_rfc3339(created, &t) == 0 && t < from) {
                older = 1;
                break;
            }
            json_array_append(deps, d);
        }
        size_t n = json_array_size(result);
        json_decref(env);
        if (older || n < PAGES_PER_PAGE) break;
    }
    if (rc != 0 || source_stopping(&p->src)) {
        json_decref(deps);
        return rc;
    }

    struct store_batch b = {0};
    struct norm_opts o = {"poll", now_ms()};
    int64_t newest = pp->hwm, building = 0;
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d) {
        json_t *ev;
        int k = norm_pages_deployment(d, c->account_id, &o, &ev);
        if (k < 0) {
            store_count(p->src.store, "rejected.bad_pages_deployment", 1);
            continue;
        }
        int64_t t;
        const char *created = json_string_value(json_object_get(d, "created_on"));
        if (created && time_parse_rfc3339(created, &t) == 0 && t <= now + 60000) {
            if (t > newest) newest = t;
            const char *type = ev ? json_string_value(json_object_get(ev, "type")) : NULL;
            int started = type && strcmp(type, "com.cloudflare.pages.deployment.started") == 0;
            if (started && t > now - BUILDING_MAX_MS && (!building || t < building)) building = t;
        }
        if (k > 0) ingest_add(&b, ev, &p->cfg->router);
    }
    json_decref(deps);
    int64_t hwm = building && building < newest ? building : newest;
    if (hwm) { /* nothing seen yet: no cursor, the next run looks back a day again */
        char hv[TIME_BUF];
        time_format_ms(hwm, hv);
        b.cursor_name = pp->cursor_name;
        b.cursor_value = strdup(hv);
    }
    rc = commit(p, &b);
    if (rc == 0) pp->hwm = hwm;
    return rc;
}

static void *run(void *arg)
{
    struct poll *p = arg;
    while (!source_stopping(&p->src)) {
        if (p->active && !p->active(p->active_arg)) {
            if (p->src.state != SOURCE_STANDBY) {
                log_msg(LOG_INFO, "poller standing by: the Worker stream is up", NULL);
                p->src.state = SOURCE_STANDBY;
                atomic_store(&p->healthy, 1);
                note(p);
            }
            source_nap(&p->src, 1000);
            continue;
        }
        if (p->active && p->src.state == SOURCE_STANDBY)
            log_msg(LOG_WARN, "poller taking over: the Worker stream is unreachable", NULL);
        p->src.last_error[0] = '\0';
        int ok = !p->cfg->poll_audit || run_once(p) == 0;
        for (size_t i = 0; i < p->npages && !source_stopping(&p->src); i++)
            if (pages_once(p, &p->pages[i]) != 0) ok = 0;
        if (ok) {
            p->src.state = SOURCE_OK;
            time_format_ms(now_ms(), p->src.last_success);
        }
        atomic_store(&p->healthy, ok);
        note(p);
        /* In standby mode, wake each second to see whether to stand down. */
        for (long slept = 0; slept < (long)p->cfg->poll_interval_ms && !source_stopping(&p->src); slept += 1000) {
            if (p->active && !p->active(p->active_arg)) break;
            source_nap(&p->src, (long)p->cfg->poll_interval_ms - slept < 1000 ? (long)p->cfg->poll_interval_ms - slept : 1000);
        }
    }
    return NULL;
}

struct poll *poll_start(struct store *st, const struct config *cfg, char *err, size_t errlen)
{
    if (!cfg->poll_audit && !(cfg->pages_projects && cfg->pages_projects[0])) {
        snprintf(err, errlen, "poll_audit is off and no pages_projects are set: nothing to poll");
        return NULL;
    }
    if (!cfg->account_id || !cfg->api_token) {
        snprintf(err, errlen, "poll needs CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN (or account_id and api_token)");
        return NULL;
    }
    struct poll *p = source_alloc(sizeof *p, "poll", err, errlen);
    if (!p) return NULL;
    p->cfg = cfg;
    snprintf(p->cursor_name, sizeof p->cursor_name, "poll:audit:%s", cfg->account_id);
    while (cfg->pages_projects && cfg->pages_projects[p->npages]) p->npages++;
    p->pages = calloc(p->npages ? p->npages : 1, sizeof *p->pages);
    if (!p->pages) {
        snprintf(err, errlen, "poll: out of memory");
        free(p);
        return NULL;
    }
    for (size_t i = 0; i < p->npages; i++) {
        p->pages[i].name = cfg->pages_projects[i];
        snprintf(p->pages[i].cursor_name, sizeof p->pages[i].cursor_name, "poll:pages:%s:%s", cfg->account_id,
                 cfg->pages_projects[i]);
    }
    int64_t ms;
    char *c = store_cursor(st, p->cursor_name);
    if (c && time_parse_rfc3339(c, &ms) == 0) p->hwm = ms;
    free(c);
    for (size_t i = 0; i < p->npages; i++) {
        c = store_cursor(st, p->pages[i].cursor_name);
        if (c && time_parse_rfc3339(c, &ms) == 0) p->pages[i].hwm = ms;
        free(c);
    }
    atomic_store(&p->healthy, 1);
    source_init(&p->src, "poll", st);
    return p;
}

void poll_set_standby(struct poll *p, int (*active)(void *arg), void *arg)
{
    p->active = active;
    p->active_arg = arg;
}

/* Separate from poll_start so that a standby can be set before the thread runs. */
int poll_run(struct poll *p, char *err, size_t errlen) { return source_start(&p->src, run, p, err, errlen); }

int poll_healthy(struct poll *p) { return atomic_load(&p->healthy); }

/* What a poller holds besides itself, once its thread has stopped. */
static void release(void *arg)
{
    struct poll *p = arg;
    free(p->pages);
}

void poll_stop(struct poll *p) { source_close(p, release); }
