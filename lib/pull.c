/* pull.c -- `synccf pull`: follows the Worker's event log over an outbound
 * connection (no public URL needed).
 *
 * On (re)connect it first pages through GET /v1/events from its cursor (fast
 * catch-up after days offline), then follows GET /v1/stream (Server-Sent
 * Events) live. Every batch of events is committed together with the cursor
 * that covers it, in one transaction: after a crash the next start neither
 * skips nor repeats. A connection that goes quiet for three heartbeat periods
 * is considered dead (libcurl's low-speed limit), and reconnects back off
 * exponentially with jitter. */
#include "pull.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "jsonx.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "source.h"
#include "sse.h"
#include "util.h"

#define PAGE 500                  /* events asked for per catch-up page */
#define PAGE_BYTES (64u << 20)    /* the most one page's response may hold */
#define SSE_LINE_MAX (2u << 20)
#define BATCH_MAX 256

struct pull {
    struct source src; /* first: SOURCE_OWNER */
    char *url, *token, *cursor_name;
    unsigned heartbeat_s;
    struct store *store;
    const struct router *router;

    /* The pull thread's own state. */
    long long cursor;
    struct store_batch batch;
    long long batch_last;
    struct sse sse;
    int got_data;   /* this connection delivered something */
    int commit_failed;
    int64_t last_event_ms;
    atomic_int connected;
    atomic_llong down_since; /* ms; when the stream was last lost */
};
SOURCE_OWNER(struct pull);

static void note(struct pull *p)
{
    json_t *x = json_pack("{s:I}", "cursor", (json_int_t)p->cursor);
    if (p->last_event_ms) json_object_set_new(x, "lag_ms", json_integer(now_ms() - p->last_event_ms));
    source_note(&p->src, x);
}

static int stopping(struct pull *p) { return source_stopping(&p->src); }

/* Adds one event from the Worker (seq, JSON text) to the pending batch. */
static void take_event(struct pull *p, long long seq, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *ev = jx_loadb(text, len, 0, &jerr);
    struct norm_opts o = {"worker", now_ms()};
    const char *why = ev ? event_accept(ev, &o) : jerr.text;
    if (why) {
        char s[24];
        snprintf(s, sizeof s, "%lld", seq);
        log_msg(LOG_WARN, "event from the Worker rejected", "seq", s, "error", why, NULL);
        store_count(p->store, "rejected.bad_event", 1);
        json_decref(ev);
    } else {
        const char *rcv = json_string_value(json_object_get(ev, "synccfreceived"));
        int64_t ms;
        if (rcv && time_parse_rfc3339(rcv, &ms) == 0) p->last_event_ms = ms;
        ingest_add(&p->batch, ev, p->router);
    }
    /* The cursor moves past a rejected event too: it will never become valid. */
    p->batch_last = seq;
}

/* Commits the pending batch with its cursor; -1 if the store refused. */
static int flush(struct pull *p)
{
    if (p->batch_last <= p->cursor) return 0;
    char cur[24];
    snprintf(cur, sizeof cur, "%lld", p->batch_last);
    p->batch.cursor_name = p->cursor_name;
    p->batch.cursor_value = strdup(cur);
    /* Without its cursor (out of memory) the batch is not committed. */
    int rc = p->batch.cursor_value ? store_commit(p->store, &p->batch) : -1;
    store_batch_clear(&p->batch);
    if (rc != 0) {
        snprintf(p->src.last_error, sizeof p->src.last_error, "the store could not commit");
        p->batch_last = p->cursor;
        return -1;
    }
    p->cursor = p->batch_last;
    time_format_ms(now_ms(), p->src.last_success);
    note(p);
    return 0;
}

static const char *auth_header(struct pull *p, char *buf, size_t n)
{
    snprintf(buf, n, "Authorization: Bearer %s", p->token ? p->token : "");
    return buf;
}

/* Catch-up by pages; 0 when done, -1 on an error (already noted). */
static int catch_up(struct pull *p)
{
    char url[2048], auth[600];
    const char *headers[] = {auth_header(p, auth, sizeof auth), NULL};
    /* Events may be up to ~1 MiB each, so a full page can pass PAGE_BYTES:
     * then ask for half as many, down to one, instead of failing on the same
     * page for ever; grow back after a page that fits. */
    int limit = PAGE;
    for (;;) {
        if (stopping(p)) return -1;
        snprintf(url, sizeof url, "%s/v1/events?after=%lld&limit=%d", p->url, p->cursor, limit);
        struct http_resp r;
        http_request("GET", url, headers, NULL, PAGE_BYTES, 60000, &r);
        if (r.too_large && limit > 1) {
            http_resp_free(&r);
            limit /= 2;
            continue;
        }
        if (limit < PAGE) limit = limit * 2 < PAGE ? limit * 2 : PAGE;
        json_t *j = r.status == 200 ? jx_loadb(r.body.p ? r.body.p : "", r.body.len, 0, NULL) : NULL;
        json_t *evs = json_object_get(j, "events");
        if (!json_is_array(evs)) {
            if (r.status) snprintf(p->src.last_error, sizeof p->src.last_error, "GET /v1/events: HTTP %ld", r.status);
            else snprintf(p->src.last_error, sizeof p->src.last_error, "GET /v1/events: %.200s", r.error);
            json_decref(j);
            http_resp_free(&r);
            return -1;
        }
        size_t i;
        json_t *row;
        json_array_foreach(evs, i, row) {
            json_int_t seq = json_integer_value(json_object_get(row, "seq"));
            char *text = jx_dumps(json_object_get(row, "event"), JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (seq > p->cursor && text) take_event(p, seq, text, strlen(text));
            free(text);
        }
        int more = json_is_true(json_object_get(j, "more"));
        json_decref(j);
        http_resp_free(&r);
        if (flush(p) != 0) return -1;
        if (!more) return 0;
    }
}

/* ---- Server-Sent Events ------------------------------------------------- */

/* One event off the stream; nonzero stops the transfer (the store refused). */
static int on_event(void *arg, long long id, const char *type, const char *data, size_t len)
{
    struct pull *p = arg;
    if ((!type[0] || strcmp(type, "cloudevent") == 0) && id > p->cursor && id > p->batch_last)
        take_event(p, id, data, len);
    return p->batch.n >= BATCH_MAX && flush(p) != 0;
}

static size_t on_stream(char *data, size_t size, size_t nmemb, void *arg)
{
    struct pull *p = arg;
    size_t len = size * nmemb;
    p->got_data = 1;
    atomic_store(&p->connected, 1);
    int rc = sse_feed(&p->sse, data, len);
    if (rc == SSE_TOO_LONG)
        snprintf(p->src.last_error, sizeof p->src.last_error, "stream line or event longer than %u bytes", SSE_LINE_MAX);
    /* Whatever this chunk completed is committed before reading more. */
    if (rc == SSE_STOPPED || flush(p) != 0) {
        p->commit_failed = 1;
        return 0;
    }
    return rc == SSE_OK ? len : 0;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return stopping(arg);
}

static void stream(struct pull *p)
{
    char url[2048], auth[600], last[64];
    snprintf(url, sizeof url, "%s/v1/stream", p->url);
    snprintf(last, sizeof last, "Last-Event-ID: %lld", p->cursor);
    struct curl_slist *h = curl_slist_append(NULL, auth_header(p, auth, sizeof auth));
    h = curl_slist_append(h, last);
    h = curl_slist_append(h, "Accept: text/event-stream");
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    /* Missed heartbeats: under 1 byte/s for three periods ends the transfer. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(3 * p->heartbeat_s));
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    sse_reset(&p->sse);
    p->src.state = SOURCE_CONNECTED;
    note(p);
    log_msg(LOG_INFO, "pull stream connected", "url", p->url, NULL);
    CURLcode rc = curl_easy_perform(c);
    if (atomic_exchange(&p->connected, 0)) atomic_store(&p->down_since, (long long)now_ms());
    flush(p);
    if (!stopping(p)) {
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (rc == CURLE_OPERATION_TIMEDOUT)
            snprintf(p->src.last_error, sizeof p->src.last_error, "no heartbeat for %u s", 3 * p->heartbeat_s);
        else if (!p->commit_failed && !p->src.last_error[0])
            snprintf(p->src.last_error, sizeof p->src.last_error, "stream ended: %s (HTTP %ld)", curl_easy_strerror(rc), status);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void *run(void *arg)
{
    struct pull *p = arg;
    int failures = 0;
    while (!stopping(p)) {
        p->got_data = 0;
        p->commit_failed = 0;
        p->src.last_error[0] = '\0';
        if (catch_up(p) == 0) stream(p);
        if (stopping(p)) break;
        failures = p->got_data ? 1 : failures + 1;
        p->src.state = SOURCE_RECONNECTING;
        note(p);
        log_msg(LOG_WARN, "pull disconnected", "url", p->url, "error", p->src.last_error, NULL);
        source_nap(&p->src, source_backoff(&p->src, failures, 1000, 60000));
    }
    p->src.state = SOURCE_STOPPED;
    note(p);
    return NULL;
}

/* What a puller holds besides itself, once its thread has stopped (or
 * before it started). */
static void release(void *arg)
{
    struct pull *p = arg;
    store_batch_clear(&p->batch);
    sse_free(&p->sse);
    free(p->url);
    free(p->token);
    free(p->cursor_name);
}

struct pull *pull_start(const char *url, const char *token, unsigned heartbeat_s, struct store *st,
                        const struct router *router, char *err, size_t errlen)
{
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        snprintf(err, errlen, "the Worker URL must start with https:// (or http:// for a local one)");
        return NULL;
    }
    struct pull *p = calloc(1, sizeof *p);
    if (!p || !(p->url = strdup(url)) || (token && !(p->token = strdup(token)))) {
        snprintf(err, errlen, "pull: out of memory");
        if (p) free(p->url);
        free(p);
        return NULL;
    }
    size_t n = strlen(p->url);
    while (n && p->url[n - 1] == '/') p->url[--n] = '\0';
    p->heartbeat_s = heartbeat_s ? heartbeat_s : 15;
    p->store = st;
    p->router = router;
    sse_init(&p->sse, SSE_LINE_MAX, on_event, p);
    if (asprintf(&p->cursor_name, "pull:%s", p->url) < 0) {
        snprintf(err, errlen, "pull: out of memory");
        release(p);
        free(p);
        return NULL;
    }
    /* The cursor is where the last committed batch ended. */
    char *c = store_cursor(st, p->cursor_name);
    if (c) p->cursor = strtoll(c, NULL, 10);
    free(c);
    atomic_store(&p->down_since, (long long)now_ms());
    return source_launch(p, "pull", st, run, release, err, errlen);
}

void pull_stop(struct pull *p) { source_close(p, release); }

int pull_reachable(struct pull *p, long long grace_ms)
{
    return atomic_load(&p->connected) || now_ms() - atomic_load(&p->down_since) < grace_ms;
}
