/* server.c -- owns the HTTP side of `synccf receive`: matching a request to
 * its route, limits, and answering only after the store has committed. What
 * a route's secret is checked against is auth.c's; what its body becomes is
 * routes.c's.
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

#include "auth.h"
#include "log.h"
#include "logpush.h"
#include "normalize.h"
#include "routes.h"
#include "util.h"

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

/* The JSON routes hold a body whole before it can be checked (a push's
 * signature covers its body), so each of max_connections unauthenticated
 * clients could make the server hold max_body: 512 MiB by default. A request
 * may buffer BODY_FREE bytes of its own; beyond that it draws on a budget
 * shared by the whole server (BODY_BUDGET, or room for two bodies of the
 * largest size allowed), and one that finds the budget spent is answered 503
 * with Retry-After, which the Worker retries, instead of growing memory. */
#define BODY_FREE (64u << 10)
#define BODY_BUDGET (32u << 20)

/* The ingest routes keep routes.h's values, so that a request's route is
 * its ingest_route; the rest are this server's own. */
enum route {
    R_NONE = INGEST_NONE,
    R_EVENTS = INGEST_EVENTS,
    R_NOTIFY = INGEST_NOTIFY,
    R_LOGPUSH = INGEST_LOGPUSH,
    R_GENERIC = INGEST_GENERIC,
    R_XPLAT = INGEST_XPLAT,
    R_HEALTHZ,
    R_READYZ,
    R_METRICS,
    R_PAGE
};

struct server {
    struct server_config cfg;
    struct store *store;
    struct MHD_Daemon *mhd;
    struct auth auth;
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

/* What every route's events need besides the body (routes.h). */
static struct ingest_ctx req_ctx(const struct req *r)
{
    return (struct ingest_ctx){r->srv->cfg.router, r->srv->cfg.filters, r->srv->store, r->received_ms};
}

/* ---- Logpush ------------------------------------------------------------ */

/* Hands the current chunk to the store once it is full and one more record
 * of the body has arrived: that record (just added, the chunk's last) moves
 * to the next chunk, and the full one goes provisional (store.h) -- its
 * commit does not wait for the disk. So the body's last chunk is never
 * empty, and the answer always waits for a commit that reached the disk,
 * which carries every chunk before it. */
static int chunk_added(struct req *r, size_t len)
{
    struct store_batch *b = &r->chunk[r->cur];
    size_t before = r->chunk_bytes; /* without this record */
    r->chunk_bytes += len;
    if (b->n - 1 < CHUNK_EVENTS && before < CHUNK_BYTES) return 0;

    /* Wait for the previous chunk: the next one is free once it is done. */
    pthread_mutex_lock(&r->mu);
    while (r->inflight) pthread_cond_wait(&r->cv, &r->mu);
    int failed = r->store_failed;
    pthread_mutex_unlock(&r->mu);
    if (failed) return -1;
    struct store_batch *next = &r->chunk[r->cur ^ 1];
    store_batch_clear(next); /* committed: the writer is done with it */
    if (store_batch_add(next, &b->ev[b->n - 1]) != 0) {
        reject(r, 500, "internal", "out of memory");
        return -1;
    }
    b->n--;
    b->provisional = 1;
    pthread_mutex_lock(&r->mu);
    r->inflight++;
    pthread_mutex_unlock(&r->mu);
    submit(r, b);
    r->cur ^= 1;
    r->chunk_bytes = len;
    return 0;
}

/* One Logpush record into the current chunk (routes.c). */
static int logpush_line(void *arg, const char *line, size_t len, unsigned long lineno)
{
    struct req *r = arg;
    struct ingest_ctx c = req_ctx(r);
    switch (ingest_logpush_line(&c, r->name, line, len, lineno, &r->chunk[r->cur])) {
    case LINE_ADDED: return chunk_added(r, len);
    case LINE_REJECTED: r->rejected++; return 0;
    case LINE_FILTERED: r->filtered++; return 0;
    case LINE_NOMEM: reject(r, 500, "internal", "out of memory"); return -1;
    case LINE_SKIPPED: break;
    }
    return 0;
}

/* The answer to each way a Logpush batch is refused (logpush.h). A zlib
 * that cannot start keeps the reason its callers have always counted. */
static const struct {
    int status;
    const char *reason;
} lp_answers[] = {
    [LP_OK] = {500, "internal"},          [LP_TOO_LARGE] = {413, "too_large"}, [LP_LONG_LINE] = {413, "too_large"},
    [LP_BAD_GZIP] = {400, "malformed"},   [LP_TRUNCATED] = {400, "malformed"}, [LP_ZLIB] = {500, "malformed"},
};

/* After lp_feed or lp_finish returned rc: refuses the request when the
 * reader failed for a reason of its own (not one logpush_line gave). */
static void logpush_failed(struct req *r, int rc)
{
    if (rc != 0 && !r->status && r->lp.err)
        reject(r, lp_answers[r->lp.kind].status, lp_answers[r->lp.kind].reason, r->lp.err);
}

static void logpush_feed(struct req *r, const char *data, size_t n) { logpush_failed(r, lp_feed(&r->lp, data, n)); }

static enum MHD_Result logpush_final(struct req *r)
{
    logpush_failed(r, lp_finish(&r->lp));
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

/* The header values authentication reads (auth.h). */
static struct auth_headers auth_headers(struct req *r)
{
    struct auth_headers h = {0};
    if (r->route == R_EVENTS) {
        h.webhook_id = header(r, "webhook-id");
        h.webhook_timestamp = header(r, "webhook-timestamp");
        h.webhook_signature = header(r, "webhook-signature");
    } else {
        h.authorization = header(r, "Authorization");
        h.cf_webhook_auth = header(r, "cf-webhook-auth");
    }
    return h;
}

/* Refuses the request unless v is AUTH_OK: always 401. */
static int authorized(struct req *r, enum auth_verdict v)
{
    if (v == AUTH_OK) return 1;
    reject(r, 401, auth_reason(v), auth_message(v));
    return 0;
}

static int verify_push(struct req *r)
{
    struct auth_headers h = auth_headers(r);
    return authorized(r, auth_push(&r->srv->auth, &h, r->body.p, r->body.len, now_ms() / 1000)) ? 0 : -1;
}

/* Hands a buffered body to its route's normalizer, as one batch. */
static enum MHD_Result json_final(struct req *r)
{
    if (r->route == R_EVENTS && verify_push(r) != 0) return answer_error(r);
    struct ingest_ctx c = req_ctx(r);
    struct store_batch *b = &r->chunk[0];
    char m[200];
    enum ingest_result res = ingest_body(&c, (enum ingest_route)r->route, r->name, r->body.p, r->body.len, b, m, sizeof m);
    body_release(r); /* parsed: the events hold what is needed */
    if (res == INGEST_NOMEM) reject(r, 500, "internal", "out of memory");
    else if (res == INGEST_MALFORMED) reject(r, 400, "malformed", m);
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

/* A Content-Length value (NULL: absent, 0) as a count of bytes: digits only,
 * all of them (-1 otherwise), within 64 bits (-2 otherwise). libmicrohttpd
 * checks the header too; the bound the body is held to does not rely on it. */
static int content_length(const char *v, unsigned long long *n)
{
    *n = 0;
    if (!v) return 0;
    if (*v < '0' || *v > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end != '\0') return -1;
    if (errno == ERANGE) return -2;
    *n = x;
    return 0;
}

/* Chooses the route and checks what can be checked before the body. */
static void route(struct req *r, const char *method, const char *url)
{
    const struct server_config *c = &r->srv->cfg;
    int post = strcmp(method, "POST") == 0;
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    const char *rest;
    size_t maxlen = c->limits.max_body;

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
        maxlen = c->limits.max_logpush_body;
    } else if ((rest = url + strlen("/hooks/generic/"), strncmp(url, "/hooks/generic/", 15) == 0) &&
               norm_valid_hook_name(rest)) {
        r->route = R_GENERIC;
        snprintf(r->name, sizeof r->name, "%s", rest);
    }

    if (r->route == R_NONE) {
        reject(r, 404, "not_found", "no such route");
        return;
    }
    /* cloudflared connects from loopback but forwards the internet's
     * requests, and Cloudflare marks each one: those never see the page or
     * the metrics (event types, sources), whatever the mode. */
    if ((r->route == R_PAGE || r->route == R_METRICS) && (header(r, "Cf-Connecting-IP") || header(r, "Cf-Ray"))) {
        reject(r, 404, "not_found", "the status page and metrics are not served through Cloudflare");
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

    if (content_length(header(r, MHD_HTTP_HEADER_CONTENT_LENGTH), &r->declared) != 0) {
        reject(r, 400, "bad_length", "Content-Length is not a whole number of bytes");
        return;
    }
    if (r->declared > maxlen) {
        reject(r, 413, "too_large", "body larger than the configured limit");
        return;
    }
    if (r->route != R_LOGPUSH && !is_json_type(header(r, MHD_HTTP_HEADER_CONTENT_TYPE), r->route == R_EVENTS)) {
        reject(r, 415, "unsupported_media_type", "expected a JSON content type");
        return;
    }
    struct auth_headers h = auth_headers(r);
    if (!authorized(r, auth_route(&r->srv->auth, (enum ingest_route)r->route, &h))) return;
    r->body.max = maxlen;
    if (r->route == R_LOGPUSH) lp_init(&r->lp, logpush_line, r, c->limits.max_decompressed, c->limits.max_line);
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

/* A request's context from its request line until on_request's first call.
 * libmicrohttpd answers a head it cannot read (a Content-Length that is not
 * a number, headers too large) itself, without on_request; such a request
 * reaches on_completed with this, so that its refusal is still counted. */
static char head_only;

static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)uri;
    (void)conn;
    return &head_only;
}

/* A request libmicrohttpd refused before on_request: counted and logged as
 * ours are when the reason was its Content-Length (bad_length); other
 * refusals of its own (headers too large, a malformed head) are not. */
static void head_refused(struct server *srv, struct MHD_Connection *conn)
{
    unsigned long long n;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int bad = cl ? content_length(cl, &n) : 0;
    if (!bad) return;
    struct req *r = calloc(1, sizeof *r);
    if (!r) return;
    r->srv = srv;
    r->conn = conn;
    /* Its status, as libmicrohttpd answered: 413 for a number too large. */
    reject(r, bad == -2 ? 413 : 400, "bad_length", "Content-Length is not a whole number of bytes");
    free(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct server *srv = cls;
    struct req *r = *con_cls == &head_only ? NULL : *con_cls;

    if (!r) {
        *con_cls = NULL;
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
    struct server *srv = cls;
    struct req *r = *con_cls;
    if (r == (void *)&head_only) {
        if (toe == MHD_REQUEST_TERMINATED_WITH_ERROR) head_refused(srv, conn);
        *con_cls = NULL;
        return;
    }
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
    struct auth_secrets secrets = {c->push_secret, c->notify_secret, c->hook_token};
    const char *open_routes[AUTH_OPEN_MAX];
    int nopen = auth_open_routes(&secrets, open_routes);
    if (nopen && (!loopback || c->behind_tunnel)) {
        if (c->behind_tunnel)
            snprintf(err, errlen, "refusing to serve through a tunnel (public, though on %s) without authentication on every route; set %s",
                     c->listen, open_routes[0]);
        else
            snprintf(err, errlen, "refusing to listen on %s without authentication on every route; set %s", c->listen,
                     open_routes[0]);
        return NULL;
    }
    struct server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        *usage_error = 0;
        return NULL;
    }
    s->cfg = *c;
    s->store = st;
    s->body_budget = c->limits.max_body < BODY_BUDGET / 2 ? BODY_BUDGET : 2 * (c->limits.max_body + 1);
    if (auth_init(&s->auth, &secrets, err, errlen) != 0) {
        free(s);
        return NULL;
    }
    *usage_error = 0;
    for (int i = 0; i < nopen; i++)
        log_msg(LOG_WARN, "route open without authentication (loopback only)", "route", open_routes[i], NULL);

    /* One client must not hold every connection (slow-loris). On a public
     * address each peer gets an eighth of them by default. On loopback every
     * client shares one address -- cloudflared's connections, a local
     * proxy's -- so a per-address limit would only cap the legitimate ones. */
    unsigned per_ip = c->limits.max_connections_per_ip;
    if (!per_ip && !loopback) per_ip = c->limits.max_connections / 8 ? c->limits.max_connections / 8 : 1;
    if (per_ip) {
        char n[16];
        snprintf(n, sizeof n, "%u", per_ip);
        log_msg(LOG_INFO, "connections per client address limited", "max", n, NULL);
    }
    int lfd = bind_listen(c->listen, &ss, sslen, err, errlen);
    if (lfd < 0) {
        auth_free(&s->auth);
        free(s);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, lfd,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_URI_LOG_CALLBACK,
                              on_request_line, NULL, MHD_OPTION_CONNECTION_LIMIT,
                              c->limits.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, c->limits.timeout_s,
                              MHD_OPTION_THREAD_POOL_SIZE, c->limits.threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                              (size_t)(16 * 1024), MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
                              MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "cannot serve on %s", c->listen);
        /* Not closed here: libmicrohttpd closes the socket it was given when
         * it fails to start, and a second close could hit a descriptor
         * another thread has opened since. */
        auth_free(&s->auth);
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
    auth_free(&s->auth);
    free(s);
}
