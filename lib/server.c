/* server.c -- owns the HTTP side of `synccf receive`: routes, authentication,
 * limits, and answering only after the store has committed.
 *
 * Bodies are read raw (no PostProcessor) and bounded as they arrive. A request
 * whose events are handed to the store is suspended (MHD_suspend_connection)
 * rather than blocking its thread; the store's writer resumes it once the
 * group holding its events has committed. That keeps a handful of threads
 * serving many connections, and lets the writer see many requests' events at
 * once, which is where group commit gets its batches. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "jsonx.h"
#include "ingest.h"
#include "jscan.h"
#include "log.h"
#include "logpush.h"
#include "normalize.h"
#include "util.h"
#include "webhook.h"

/* Logpush records are committed in chunks so that a 1 GB batch never sits in
 * memory: at most one chunk is being committed while the next is parsed.
 * Each commit rewrites every index page it touched, and event ids are
 * hashes, so the id index is touched all over: at 1,024 records a chunk
 * that cost a third more CPU per record than at 4,096 (bench/logpush.sh),
 * while two chunks of 4,096 ~1 KiB records stay within ~20 MiB. */
#define CHUNK_EVENTS 4096
#define CHUNK_BYTES (8u << 20)

/* After refusing a request, up to this much of its body is read and thrown
 * away so that the client, which is usually still sending, gets the answer
 * instead of a reset connection; beyond it the connection is closed. */
#define DRAIN_MAX (16u << 20)

/* The most events of one push whose text can be kept (push_events). */
#define PUSH_SPANS 4096

/* The JSON routes hold a body whole before it can be checked (a push's
 * signature covers its body), so each of max_connections unauthenticated
 * clients could make the server hold max_body: 512 MiB by default. A request
 * may buffer BODY_FREE bytes of its own; beyond that it draws on a budget
 * shared by the whole server (BODY_BUDGET, or room for two bodies of the
 * largest size allowed), and one that finds the budget spent is answered 503
 * with Retry-After, which the Worker retries, instead of growing memory. */
#define BODY_FREE (64u << 10)
#define BODY_BUDGET (32u << 20)

enum route { R_NONE, R_EVENTS, R_NOTIFY, R_LOGPUSH, R_GENERIC, R_XPLAT, R_HEALTHZ, R_READYZ, R_METRICS, R_PAGE };

struct server {
    struct server_config cfg;
    struct store *store;
    struct MHD_Daemon *mhd;
    struct webhook_key push_key;
    int have_push_key;
    unsigned port;
    atomic_int active; /* requests between their first byte and completion */
    atomic_size_t body_charged; /* buffered body bytes beyond BODY_FREE, all requests */
    size_t body_budget;
};

struct req {
    struct server *srv;
    struct MHD_Connection *conn;
    enum route route;
    char name[65]; /* dataset or hook name */
    int64_t received_ms;

    /* An error to answer with; once set the rest of the body is discarded. */
    int status;
    int answered;
    size_t drained;
    unsigned long long declared; /* Content-Length, 0 if absent */
    const char *reason;
    char msg[200];

    struct buf body; /* JSON routes */
    size_t charged;  /* this body's share of srv->body_charged */

    /* Logpush */
    struct lp_reader lp;
    struct store_batch chunk[2];
    size_t chunk_bytes;
    int cur;
    size_t rejected, filtered;

    /* Completion, shared with the store's writer thread. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight;      /* batches handed to the store and not yet done */
    int final;         /* the whole body has been read and handed over */
    int store_failed;
    size_t accepted, duplicates;
};

static const char *const json_types[] = {"application/json", "application/cloudevents+json",
                                         "application/cloudevents-batch+json"};

/* 127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6 (::ffff:127.x.y.z). */
static int is_loopback(const struct sockaddr *sa)
{
    if (!sa) return 0;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family != AF_INET6) return 0;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

/* ---- answers ---------------------------------------------------------- */

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == 503) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 405) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void client_addr(struct MHD_Connection *conn, char *out, size_t n)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)n);
}

/* The route a log line names: its path, with the dataset or hook name. */
static const char *route_label(const struct req *r, char *out, size_t n)
{
    static const char *const names[] = {
        [R_NONE] = "unknown",       [R_EVENTS] = "/v1/events", [R_NOTIFY] = "/hooks/notifications",
        [R_LOGPUSH] = "/hooks/logpush/", [R_GENERIC] = "/hooks/generic/", [R_XPLAT] = "/",
        [R_HEALTHZ] = "/healthz",   [R_READYZ] = "/readyz",    [R_METRICS] = "/metrics",
        [R_PAGE] = "/"};
    snprintf(out, n, "%s%s", names[r->route], r->route == R_LOGPUSH || r->route == R_GENERIC ? r->name : "");
    return out;
}

/* Records why a request is refused: a counter, a log line, and the answer. */
static void reject(struct req *r, int status, const char *reason, const char *msg)
{
    if (r->status) return;
    r->status = status;
    r->reason = reason;
    snprintf(r->msg, sizeof r->msg, "%s", msg);
    char name[64], peer[64], st[8], rt[96];
    snprintf(name, sizeof name, "rejected.%s", reason);
    store_count(r->srv->store, name, 1);
    client_addr(r->conn, peer, sizeof peer);
    snprintf(st, sizeof st, "%d", status);
    log_msg(LOG_WARN, "request rejected", "status", st, "reason", reason, "detail", msg, "peer", peer,
            "route", route_label(r, rt, sizeof rt), NULL);
}

static enum MHD_Result answer_error(struct req *r)
{
    if (r->answered) return MHD_YES;
    r->answered = 1;
    json_t *b = json_pack("{s:s,s:s}", "error", r->msg, "reason", r->reason);
    return send_json(r->conn, (unsigned)r->status, b);
}

static enum MHD_Result answer_result(struct req *r)
{
    if (r->store_failed) {
        store_count(r->srv->store, "rejected.store_unavailable", 1);
        return send_json(r->conn, 503,
                         json_pack("{s:s,s:s}", "error", "the store could not commit; retry later", "reason",
                                   "store_unavailable"));
    }
    json_t *b = json_pack("{s:I,s:I}", "accepted", (json_int_t)r->accepted, "duplicates", (json_int_t)r->duplicates);
    if (r->route == R_LOGPUSH) {
        json_object_set_new(b, "rejected", json_integer((json_int_t)r->rejected));
        json_object_set_new(b, "filtered", json_integer((json_int_t)r->filtered));
    }
    return send_json(r->conn, 200, b);
}

/* Frees a JSON route's body and returns its share of the budget. */
static void body_release(struct req *r)
{
    buf_free(&r->body);
    atomic_fetch_sub(&r->srv->body_charged, r->charged);
    r->charged = 0;
}

/* ---- handing events to the store -------------------------------------- */

/* Runs on the writer thread when a batch is on disk (or failed). */
static void batch_done(struct store_batch *b, void *arg)
{
    struct req *r = arg;
    pthread_mutex_lock(&r->mu);
    if (b->failed) r->store_failed = 1;
    r->accepted += b->accepted;
    r->duplicates += b->duplicates;
    /* The batch's events are freed by the request's own thread (when it
     * reuses the chunk, or on completion), not here: freeing 4,096 events
     * cost the writer, the one thread every request waits on, 4% of its
     * time on a Logpush batch. */
    r->inflight--;
    int resume = r->final && r->inflight == 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    /* Outside the lock: MHD takes its own locks here. */
    if (resume) MHD_resume_connection(r->conn);
}

static void submit(struct req *r, struct store_batch *b)
{
    b->done = batch_done;
    b->arg = r;
    store_submit(r->srv->store, b);
}

/* Suspends the connection and hands over the last batch (b may be NULL or
 * empty); the writer resumes it when nothing of the request is in flight. */
static void finish_async(struct req *r, struct store_batch *b)
{
    MHD_suspend_connection(r->conn);
    pthread_mutex_lock(&r->mu);
    r->final = 1;
    int send = b && b->n > 0;
    if (send) r->inflight++;
    int resume_now = r->inflight == 0;
    pthread_mutex_unlock(&r->mu);
    if (send) submit(r, b);
    if (resume_now) MHD_resume_connection(r->conn);
}

static int add_event(struct req *r, struct store_batch *b, json_t *ev)
{
    int rc = ingest_add(b, ev, r->srv->cfg.router);
    if (rc) reject(r, 500, "internal", "out of memory");
    return rc;
}

/* ---- Logpush ------------------------------------------------------------ */

/* Whether a filter applies to the dataset: filters read the record's tree. */
static int filtered_dataset(const struct filter *f, const char *dataset)
{
    for (; f; f = f->next)
        if (!f->dataset[0] || strcmp(f->dataset, dataset) == 0) return 1;
    return 0;
}

/* Hands the current chunk to the store once it is full. */
static int chunk_added(struct req *r, size_t len)
{
    struct store_batch *b = &r->chunk[r->cur];
    r->chunk_bytes += len;
    if (b->n < CHUNK_EVENTS && r->chunk_bytes < CHUNK_BYTES) return 0;

    /* The chunk is full: wait for the previous one, then hand this one over. */
    pthread_mutex_lock(&r->mu);
    while (r->inflight) pthread_cond_wait(&r->cv, &r->mu);
    int failed = r->store_failed;
    if (!failed) r->inflight++;
    pthread_mutex_unlock(&r->mu);
    if (failed) return -1;
    submit(r, b);
    r->cur ^= 1;
    r->chunk_bytes = 0;
    store_batch_clear(&r->chunk[r->cur]); /* committed: the writer is done with it */
    return 0;
}

static int logpush_line(void *arg, const char *line, size_t len, unsigned long lineno)
{
    struct req *r = arg;
    struct norm_opts o = {"tunnel", r->received_ms};
    json_t *ev;
    char why[160];
    if (!filtered_dataset(r->srv->cfg.filters, r->name)) {
        /* A record already in its stored form becomes its event as text. */
        struct norm_text t;
        int k = norm_logpush_text(r->name, line, len, &o, &t);
        if (k == 0) return 0;
        if (k == 1) {
            if (ingest_add_text(&r->chunk[r->cur], &t, o.via, r->srv->cfg.router) != 0) {
                reject(r, 500, "internal", "out of memory");
                return -1;
            }
            return chunk_added(r, len);
        }
        if (k < 0) {
            reject(r, 500, "internal", "out of memory");
            return -1;
        }
    }
    int kind = norm_logpush_line(r->name, line, len, &o, &ev, why, sizeof why);
    if (kind < 0) {
        char no[24];
        snprintf(no, sizeof no, "%lu", lineno);
        log_msg(LOG_WARN, "logpush record rejected", "dataset", r->name, "line", no, "error", why, NULL);
        store_count(r->srv->store, "rejected.bad_record", 1);
        r->rejected++;
        return 0;
    }
    if (kind == 0) return 0;
    if (!filter_keep(r->srv->cfg.filters, r->name, json_object_get(ev, "data"))) {
        json_decref(ev);
        r->filtered++;
        store_count(r->srv->store, "filtered.logpush", 1);
        return 0;
    }
    if (add_event(r, &r->chunk[r->cur], ev)) return -1;
    return chunk_added(r, len);
}

static void logpush_feed(struct req *r, const char *data, size_t n)
{
    if (lp_feed(&r->lp, data, n) != 0 && !r->status && r->lp.err)
        reject(r, r->lp.http_status, r->lp.http_status == 413 ? "too_large" : "malformed", r->lp.err);
}

static enum MHD_Result logpush_final(struct req *r)
{
    if (lp_finish(&r->lp) != 0 && !r->status && r->lp.err)
        reject(r, r->lp.http_status, r->lp.http_status == 413 ? "too_large" : "malformed", r->lp.err);
    if (r->status) {
        /* Chunks already committed stay: they are real records, and the
         * retry Cloudflare makes will find them as duplicates. */
        pthread_mutex_lock(&r->mu);
        while (r->inflight) pthread_cond_wait(&r->cv, &r->mu);
        pthread_mutex_unlock(&r->mu);
        return answer_error(r);
    }
    finish_async(r, &r->chunk[r->cur]);
    return MHD_YES;
}

/* ---- JSON routes -------------------------------------------------------- */

static int is_json_type(const char *ct, int cloudevents)
{
    if (!ct) return 1;
    size_t n = strcspn(ct, ";");
    while (n && ct[n - 1] == ' ') n--;
    for (size_t i = 0; i < (cloudevents ? 3u : 1u); i++)
        if (strlen(json_types[i]) == n && strncasecmp(ct, json_types[i], n) == 0) return 1;
    return !cloudevents && n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static const char *header(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static int verify_push(struct req *r)
{
    if (!r->srv->have_push_key) return 0;
    enum webhook_result w = webhook_verify(&r->srv->push_key, header(r, "webhook-id"), header(r, "webhook-timestamp"),
                                           header(r, "webhook-signature"), r->body.p, r->body.len, now_ms() / 1000);
    switch (w) {
    case WEBHOOK_OK: return 0;
    case WEBHOOK_MISSING: reject(r, 401, "unauthorized", "missing or malformed webhook-id/-timestamp/-signature"); break;
    case WEBHOOK_STALE: reject(r, 401, "stale_timestamp", "webhook-timestamp is more than 5 minutes off"); break;
    case WEBHOOK_BAD_SIG: reject(r, 401, "bad_signature", "no webhook-signature matches"); break;
    }
    return -1;
}

/* A /v1/events body (the Worker's push) already in event_dump's form (what
 * JSON.stringify writes mostly is; jscan.h) is read from its scan: each
 * event's tree comes from event_tree, not jansson's parser, and its stored
 * text is its sender's bytes, never serialized again. */
struct push_scan {
    struct jmember one, *spans; /* each event's text */
    size_t n;
};

static void push_scan_free(struct push_scan *ps)
{
    if (ps->spans != &ps->one) free(ps->spans);
    ps->spans = NULL;
}

/* The events of a push in that form, as an array of trees; NULL when the
 * body is not in that form (or memory ran out): then it is parsed whole. */
static json_t *push_scan(struct req *r, struct push_scan *ps)
{
    const char *text = r->body.p;
    size_t len = r->body.len;
    memset(ps, 0, sizeof *ps);
    if (!text || len < 2) return NULL;
    if (text[0] == '{') {
        ps->one = (struct jmember){.val = text, .vallen = len, .kind = JK_OBJECT};
        ps->spans = &ps->one;
        ps->n = 1;
    } else if (text[0] == '[') {
        /* Past PUSH_SPANS events a body takes the parser. */
        size_t max = len / 3 + 1 < PUSH_SPANS ? len / 3 + 1 : PUSH_SPANS;
        if (!(ps->spans = malloc(max * sizeof *ps->spans))) return NULL;
        if (!jscan_canonical(text, len, ps->spans, max, &ps->n)) {
            push_scan_free(ps);
            return NULL;
        }
    } else {
        return NULL;
    }
    /* Handlers may match on data: then it is parsed too. */
    int with_data = r->srv->cfg.router && router_has_handlers(r->srv->cfg.router);
    json_t *events = json_array();
    for (size_t i = 0; events && i < ps->n; i++) {
        json_t *e = ps->spans[i].kind == JK_OBJECT ? event_tree(ps->spans[i].val, ps->spans[i].vallen, with_data) : NULL;
        if (!e || json_array_append_new(events, e) != 0) {
            json_decref(events);
            events = NULL;
        }
    }
    if (!events) push_scan_free(ps);
    return events;
}

/* The events of a push, all validated before any is kept: events (from
 * push_scan, with ps) or else body, the parsed request. Returns the reason
 * the body is refused, or NULL. */
static const char *push_events(struct req *r, json_t *events, struct push_scan *ps, json_t *body,
                               struct store_batch *b, const struct norm_opts *o)
{
    if (!events) {
        if (json_is_object(body)) {
            events = json_array();
            if (!events || json_array_append(events, body) != 0) {
                json_decref(events);
                reject(r, 500, "internal", "out of memory");
                return NULL;
            }
        } else if (json_is_array(body)) {
            events = json_incref(body);
        } else {
            return "body must be a CloudEvent or an array of them";
        }
    }
    int kept = ps->spans != NULL;
    unsigned char *added = kept ? calloc(ps->n + 1, 1) : NULL; /* + 1: "[]" too */
    const char *err = NULL;
    if (kept && !added) {
        reject(r, 500, "internal", "out of memory");
        json_decref(events);
        return NULL;
    }
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        /* Validation may add synccfvia / synccfreceived, which the kept
         * text gets too; it must change nothing else. */
        if (kept) added[i] = (unsigned char)event_will_add(e);
        const char *why = event_accept(e, o);
        if (why) {
            snprintf(r->msg, sizeof r->msg, "event %zu: %s", i, why);
            err = r->msg;
            break;
        }
    }
    if (!err) {
        json_array_foreach(events, i, e) {
            char *t = NULL;
            if (kept && !(t = event_kept_text(e, ps->spans[i].val, ps->spans[i].vallen, added[i]))) {
                reject(r, 500, "internal", "out of memory");
                break;
            }
            if (ingest_add_kept(b, json_incref(e), t, r->srv->cfg.router) != 0) {
                reject(r, 500, "internal", "out of memory");
                break;
            }
        }
    }
    free(added);
    json_decref(events);
    return err;
}

/* Parses and normalizes a buffered body into one batch. */
static enum MHD_Result json_final(struct req *r)
{
    if (r->route == R_EVENTS && verify_push(r) != 0) return answer_error(r);
    struct push_scan ps = {0};
    json_t *events = r->route == R_EVENTS ? push_scan(r, &ps) : NULL;
    json_error_t jerr;
    json_t *body = events ? json_null() : jx_loadb(r->body.p ? r->body.p : "", r->body.len, 0, &jerr);
    if (!body) {
        char m[200];
        snprintf(m, sizeof m, "malformed JSON: %s (line %d)", jerr.text, jerr.line);
        reject(r, 400, "malformed", m);
        return answer_error(r);
    }
    struct store_batch *b = &r->chunk[0];
    struct norm_opts o = {"tunnel", r->received_ms};
    const char *err = NULL;
    json_t *ev = NULL;

    switch (r->route) {
    case R_EVENTS:
        o.via = "worker";
        err = push_events(r, events, &ps, body, b, &o);
        break;
    case R_NOTIFY:
        if (!json_is_object(body)) err = "a notification must be a JSON object";
        else ev = norm_notification(body, &o);
        break;
    case R_GENERIC:
        if (!json_is_object(body)) err = "a hook body must be a JSON object";
        else ev = norm_generic(r->name, r->body.p, r->body.len, body, &o);
        break;
    case R_XPLAT: {
        /* It came through xplat's Worker. */
        o.via = "worker";
        json_t *evs = json_array();
        size_t bad = 0, i;
        json_t *e;
        if (norm_xplat(body, &o, evs, &bad, &err) >= 0) {
            json_array_foreach(evs, i, e) {
                json_incref(e);
                if (add_event(r, b, e)) break;
            }
        }
        json_decref(evs);
        if (bad) store_count(r->srv->store, "rejected.bad_record", (int64_t)bad);
        break;
    }
    default:
        err = "no such route";
    }
    json_decref(body);
    push_scan_free(&ps);
    body_release(r); /* parsed: the events hold what is needed */
    if (err) {
        char m[200];
        snprintf(m, sizeof m, "%s", err);
        reject(r, 400, "malformed", m);
    }
    if (ev) add_event(r, b, ev);
    if (r->status) {
        store_batch_clear(b);
        return answer_error(r);
    }
    finish_async(r, b);
    return MHD_YES;
}

/* ---- buffering JSON bodies ------------------------------------------------ */

static size_t beyond_free(size_t cap) { return cap > BODY_FREE ? cap - BODY_FREE : 0; }

/* Appends to a JSON route's body, growing it here rather than in buf_append
 * so that the growth is charged to the server's budget before it happens.
 * Refuses (413, or 503 when the budget is spent) without appending. */
static void body_append(struct req *r, const char *data, size_t n)
{
    struct buf *b = &r->body;
    if (n > b->max - b->len) {
        reject(r, 413, "too_large", "body larger than the configured limit");
        body_release(r); /* the rest is only drained */
        return;
    }
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) cap *= 2;
        if (cap > b->max + 1) cap = b->max + 1;
        size_t charge = beyond_free(cap) - beyond_free(b->cap);
        if (charge) {
            size_t before = atomic_fetch_add(&r->srv->body_charged, charge);
            if (before + charge > r->srv->body_budget) {
                atomic_fetch_sub(&r->srv->body_charged, charge);
                reject(r, 503, "busy", "too many request bodies being received at once; retry later");
                body_release(r);
                return;
            }
            r->charged += charge;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            reject(r, 500, "internal", "out of memory");
            body_release(r);
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    buf_append(b, data, n); /* fits: cannot fail */
}

/* ---- routing -------------------------------------------------------------- */

static int bearer_ok(struct req *r, const char *token)
{
    if (!token) return 1;
    const char *h = header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    return ct_equal(h + 7, strlen(h + 7), token, strlen(token));
}

/* Chooses the route and checks what can be checked before the body. */
static void route(struct req *r, const char *method, const char *url)
{
    const struct server_config *c = &r->srv->cfg;
    int post = strcmp(method, "POST") == 0;
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    const char *rest;
    size_t maxlen = c->max_body;

    if (strcmp(url, "/healthz") == 0) r->route = R_HEALTHZ;
    else if (strcmp(url, "/readyz") == 0) r->route = R_READYZ;
    else if (strcmp(url, "/metrics") == 0 && c->metrics) r->route = R_METRICS;
    else if (strcmp(url, "/") == 0 && get && c->page) r->route = R_PAGE;
    else if (strcmp(url, "/v1/events") == 0) r->route = R_EVENTS;
    else if (strcmp(url, "/hooks/notifications") == 0) r->route = R_NOTIFY;
    else if (strcmp(url, "/") == 0) r->route = R_XPLAT;
    else if ((rest = url + strlen("/hooks/logpush/"), strncmp(url, "/hooks/logpush/", 15) == 0) &&
             norm_valid_dataset(rest)) {
        r->route = R_LOGPUSH;
        snprintf(r->name, sizeof r->name, "%s", rest);
        maxlen = c->max_logpush_body;
    } else if ((rest = url + strlen("/hooks/generic/"), strncmp(url, "/hooks/generic/", 15) == 0) &&
               norm_valid_hook_name(rest)) {
        r->route = R_GENERIC;
        snprintf(r->name, sizeof r->name, "%s", rest);
    }

    if (r->route == R_NONE) {
        reject(r, 404, "not_found", "no such route");
        return;
    }
    if (r->route == R_HEALTHZ || r->route == R_READYZ || r->route == R_METRICS) {
        if (!get) reject(r, 405, "method_not_allowed", "use GET");
        return;
    }
    if (r->route == R_PAGE) {
        /* The page shows event data: loopback clients only. */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!is_loopback(ci ? ci->client_addr : NULL)) reject(r, 404, "not_found", "the status page is served to loopback clients only");
        return;
    }
    if (!post) {
        reject(r, 405, "method_not_allowed", "use POST");
        return;
    }

    const char *cl = header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    r->declared = cl ? strtoull(cl, NULL, 10) : 0;
    if (r->declared > maxlen) {
        reject(r, 413, "too_large", "body larger than the configured limit");
        return;
    }
    if (r->route != R_LOGPUSH && !is_json_type(header(r, MHD_HTTP_HEADER_CONTENT_TYPE), r->route == R_EVENTS)) {
        reject(r, 415, "unsupported_media_type", "expected a JSON content type");
        return;
    }
    int ok = 1;
    switch (r->route) {
    case R_NOTIFY: {
        const char *h = header(r, "cf-webhook-auth");
        const char *s = c->notify_secret;
        ok = !s || (h && ct_equal(h, strlen(h), s, strlen(s)));
        break;
    }
    case R_LOGPUSH:
    case R_GENERIC:
    case R_XPLAT: ok = bearer_ok(r, c->hook_token); break;
    default: break;
    }
    if (!ok) {
        reject(r, 401, "unauthorized", "missing or wrong credentials");
        return;
    }
    r->body.max = maxlen;
    if (r->route == R_LOGPUSH) lp_init(&r->lp, logpush_line, r, c->max_decompressed, c->max_line);
}

static enum MHD_Result answer_get(struct req *r)
{
    if (r->route == R_HEALTHZ) return send_json(r->conn, 200, json_pack("{s:b}", "ok", 1));
    if (r->route == R_METRICS || r->route == R_PAGE) {
        struct buf out = {.max = 16u << 20};
        if (r->route == R_PAGE) r->srv->cfg.page(r->srv->cfg.metrics_arg, &out);
        else r->srv->cfg.metrics(r->srv->cfg.metrics_arg, &out);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(out.len, out.p ? out.p : (char *)"", out.p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->route == R_PAGE ? "text/html; charset=utf-8" : "text/plain; version=0.0.4; charset=utf-8");
        if (r->route == R_PAGE)
            MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'");
        enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    json_t *checks = json_object();
    int ok;
    if (r->srv->cfg.ready) ok = r->srv->cfg.ready(r->srv->cfg.ready_arg, checks);
    else {
        ok = store_healthy(r->srv->store);
        json_object_set_new(checks, "store", json_string(ok ? "ok" : "last commit failed"));
    }
    return send_json(r->conn, ok ? 200 : 503, json_pack("{s:b,s:o}", "ready", ok, "checks", checks));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct server *srv = cls;
    struct req *r = *con_cls;

    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->srv = srv;
        r->conn = conn;
        r->received_ms = now_ms();
        pthread_mutex_init(&r->mu, NULL);
        pthread_cond_init(&r->cv, NULL);
        *con_cls = r;
        atomic_fetch_add(&srv->active, 1);
        route(r, method, url);
        /* A refusal is answered at once when there is no body worth
         * draining; otherwise after the body (see DRAIN_MAX). */
        if (r->status && (r->declared == 0 || r->declared > DRAIN_MAX)) return answer_error(r);
        if (r->route == R_HEALTHZ || r->route == R_READYZ || r->route == R_METRICS || r->route == R_PAGE) return answer_get(r);
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->status) {
            r->drained += n;
            return r->drained > DRAIN_MAX ? answer_error(r) : MHD_YES;
        }
        if (r->route == R_LOGPUSH) {
            if (n > r->body.max - r->body.len) reject(r, 413, "too_large", "body larger than the configured limit");
            else {
                r->body.len += n; /* only counted: the reader keeps no copy */
                logpush_feed(r, upload_data, n);
            }
        } else {
            body_append(r, upload_data, n);
        }
        return MHD_YES;
    }

    /* The body is complete: either now, or after the store resumed us. */
    if (r->final) return answer_result(r);
    if (r->status) return answer_error(r);
    if (r->route == R_LOGPUSH) return logpush_final(r);
    return json_final(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct server *srv = cls;
    struct req *r = *con_cls;
    if (!r) return;
    /* A connection dropped mid-upload may still have a chunk with the store. */
    pthread_mutex_lock(&r->mu);
    while (r->inflight) pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    if (r->route == R_LOGPUSH) lp_free(&r->lp);
    store_batch_clear(&r->chunk[0]);
    store_batch_clear(&r->chunk[1]);
    body_release(r);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->active, 1);
}

/* ---- start and stop ------------------------------------------------------ */

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, int *loopback, char *err,
                        size_t errlen)
{
    char host[256];
    const char *spec = listen;
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen) goto bad;
    size_t hn = (size_t)(colon - listen);
    if (listen[0] == '[' && hn >= 2 && listen[hn - 1] == ']') {
        listen++;
        hn -= 2;
    }
    if (hn >= sizeof host) goto bad;
    memcpy(host, listen, hn);
    host[hn] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || colon[1] == '\0' || colon[1] == '-' || colon[1] == '+') goto bad;
    if (port > 65535) {
        snprintf(err, errlen, "listen address %s: port %s is out of range (0-65535)", spec, colon + 1);
        return -1;
    }
    if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0) goto bad;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    if (ss->ss_family == AF_INET) ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    *loopback = is_loopback((const struct sockaddr *)ss);
    return 0;
bad:
    snprintf(err, errlen, "listen address %s is not HOST:PORT with a numeric host", spec);
    return -1;
}

/* The listening socket, bound here rather than by libmicrohttpd so that a
 * taken port is an error that names itself. SO_REUSEADDR only (a restart
 * binds while the last run's connections sit in TIME_WAIT); never
 * SO_REUSEPORT, with which a second synccf would bind the same port and the
 * kernel would split the requests between two stores. */
static int bind_listen(const char *spec, const struct sockaddr_storage *ss, socklen_t len, char *err, size_t errlen)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss->ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        if (e == EADDRINUSE) snprintf(err, errlen, "cannot listen on %s: address already in use", spec);
        else snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(e));
        close(fd);
        return -1;
    }
    return fd;
}

struct server *server_start(const struct server_config *c, struct store *st, char *err, size_t errlen,
                            int *usage_error)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int loopback = 0;
    *usage_error = 1;
    if (parse_listen(c->listen, &ss, &sslen, &loopback, err, errlen) != 0) return NULL;
    const char *open_routes[3];
    int nopen = 0;
    if (!c->push_secret) open_routes[nopen++] = "/v1/events (SYNCCF_PUSH_SECRET)";
    if (!c->notify_secret) open_routes[nopen++] = "/hooks/notifications (SYNCCF_NOTIFY_SECRET)";
    if (!c->hook_token) open_routes[nopen++] = "/hooks/logpush, /hooks/generic, / (SYNCCF_HOOK_TOKEN)";
    if (nopen && !loopback) {
        snprintf(err, errlen, "refusing to listen on %s without authentication on every route; set %s", c->listen,
                 open_routes[0]);
        return NULL;
    }
    struct server *s = calloc(1, sizeof *s);
    s->cfg = *c;
    s->store = st;
    s->body_budget = c->max_body < BODY_BUDGET / 2 ? BODY_BUDGET : 2 * (c->max_body + 1);
    if (c->push_secret) {
        if (webhook_key_parse(c->push_secret, &s->push_key) != 0) {
            snprintf(err, errlen, "the push secret must be whsec_ followed by base64");
            free(s);
            return NULL;
        }
        s->have_push_key = 1;
    }
    *usage_error = 0;
    for (int i = 0; i < nopen; i++)
        log_msg(LOG_WARN, "route open without authentication (loopback only)", "route", open_routes[i], NULL);

    /* One client must not hold every connection (slow-loris). On a public
     * address each peer gets an eighth of them by default. On loopback every
     * client shares one address -- cloudflared's connections, a local
     * proxy's -- so a per-address limit would only cap the legitimate ones. */
    unsigned per_ip = c->max_connections_per_ip;
    if (!per_ip && !loopback) per_ip = c->max_connections / 8 ? c->max_connections / 8 : 1;
    if (per_ip) {
        char n[16];
        snprintf(n, sizeof n, "%u", per_ip);
        log_msg(LOG_INFO, "connections per client address limited", "max", n, NULL);
    }
    int lfd = bind_listen(c->listen, &ss, sslen, err, errlen);
    if (lfd < 0) {
        if (s->have_push_key) webhook_key_free(&s->push_key);
        free(s);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, lfd,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                              c->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, c->timeout_s,
                              MHD_OPTION_THREAD_POOL_SIZE, c->threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                              (size_t)(16 * 1024), MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
                              MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "cannot serve on %s", c->listen);
        /* Not closed here: libmicrohttpd closes the socket it was given when
         * it fails to start, and a second close could hit a descriptor
         * another thread has opened since. */
        if (s->have_push_key) webhook_key_free(&s->push_key);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    return s;
}

unsigned server_port(const struct server *s) { return s->port; }

void server_stop(struct server *s)
{
    if (!s) return;
    /* Quiescing hands the listening socket back to us to close. */
    MHD_socket lfd = MHD_quiesce_daemon(s->mhd);
    /* In-flight requests finish their commits and get their answers. */
    for (int i = 0; i < 1000 && atomic_load(&s->active) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->mhd);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    if (s->have_push_key) webhook_key_free(&s->push_key);
    free(s);
}
