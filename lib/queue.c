/* queue.c -- `synccf queue`: consumes a Cloudflare Queue over its HTTP pull
 * consumer API (Event Subscriptions publish straight into queues; the synccf
 * Worker can too).
 *
 * Pull a batch with a visibility timeout, normalize, commit, and only then
 * acknowledge the leases: a crash before the ack means Cloudflare delivers the
 * messages again after the lease expires, and since the event ids are stable
 * across redeliveries the store keeps them once. A message that can never be
 * parsed is acknowledged (counted as rejected) so it does not come back
 * forever; when the store cannot commit, the leases are handed back with a
 * delay instead. Several consumers on one queue share the work: Cloudflare
 * leases each message to one of them. */
#include "queue.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "jsonx.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "normalize.h"
#include "source.h"

struct queue {
    struct source src; /* first: SOURCE_OWNER */
    const struct config *cfg;
    char base[2048];
    long pulled, acked, rejected;
    atomic_int healthy;
};
SOURCE_OWNER(struct queue);

static void note(struct queue *q)
{
    source_note(&q->src, json_pack("{s:s,s:I,s:I,s:I}", "queue", q->cfg->queue_id, "pulled", (json_int_t)q->pulled,
                                   "acked", (json_int_t)q->acked, "rejected", (json_int_t)q->rejected));
}

/* The event a message carries, or NULL (with why) when it cannot be one. */
static json_t *message_event(json_t *m, const char **why)
{
    json_t *body = json_object_get(m, "body");
    json_t *parsed = NULL;
    if (json_is_string(body)) body = parsed = jx_loadb(json_string_value(body), json_string_length(body), 0, NULL);
    struct norm_opts o = {"queue", now_ms()};
    json_t *ev = NULL;
    *why = NULL;
    if (!json_is_object(body)) {
        *why = "the message body is not a JSON object";
    } else if (json_object_get(body, "specversion")) {
        /* A CloudEvent the synccf Worker published. */
        *why = event_accept(body, &o);
        if (!*why) ev = json_incref(body);
    } else {
        ev = norm_evsub(body, json_string_value(json_object_get(m, "id")), &o);
        if (!ev) *why = "neither a CloudEvent nor an Event Subscription event";
    }
    json_decref(parsed);
    return ev;
}

static void add_lease(json_t *arr, json_t *m, int delay_s)
{
    json_t *l = json_object_get(m, "lease_id");
    if (!json_is_string(l)) return;
    json_t *o = json_pack("{s:O}", "lease_id", l);
    if (delay_s) json_object_set_new(o, "delay_seconds", json_integer(delay_s));
    json_array_append_new(arr, o);
}

/* One pull; returns the number of messages, or -1 after a failed call (the
 * wait already done). */
static int pull_once(struct queue *q, int *failures)
{
    const struct config *c = q->cfg;
    char url[2300], body[128], msg[240];
    snprintf(url, sizeof url, "%s/messages/pull", q->base);
    snprintf(body, sizeof body, "{\"batch_size\":%u,\"visibility_timeout_ms\":%u}", c->queue_batch, c->queue_visibility_ms);
    struct http_resp r;
    json_t *env;
    enum cf_outcome o = cf_call("POST", url, c->api_token, body, &r, &env, msg, sizeof msg);
    long retry_after = r.retry_after_s;
    http_resp_free(&r);
    atomic_store(&q->healthy, o == CF_OK);
    if (o != CF_OK) {
        snprintf(q->src.last_error, sizeof q->src.last_error, "pull: %s", msg);
        q->src.state = o == CF_AUTH ? SOURCE_AUTH_ERROR : SOURCE_BACKING_OFF;
        note(q);
        log_msg(o == CF_AUTH ? LOG_ERROR : LOG_WARN, "queue pull failed", "error", msg, NULL);
        (*failures)++;
        long wait = o == CF_RATE_LIMIT && retry_after >= 0 ? retry_after * 1000
                    : o == CF_AUTH                          ? 60000
                                                            : source_backoff(&q->src, *failures, 1000, 60000);
        source_nap(&q->src, wait);
        return -1;
    }
    *failures = 0;
    json_t *msgs = json_object_get(json_object_get(env, "result"), "messages");
    size_t n = json_array_size(msgs);
    if (!n) {
        json_decref(env);
        return 0;
    }
    struct store_batch b = {0};
    json_t *acks = json_array(), *retries = json_array(), *good = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *why;
        json_t *ev = message_event(m, &why);
        if (!ev) {
            log_msg(LOG_WARN, "queue message rejected", "id", json_string_value(json_object_get(m, "id")), "error", why, NULL);
            store_count(q->src.store, "rejected.bad_message", 1);
            q->rejected++;
            add_lease(acks, m, 0);
            continue;
        }
        ingest_add(&b, ev, &c->router);
        json_array_append(good, m);
    }
    int committed = b.n == 0 || store_commit(q->src.store, &b) == 0;
    store_batch_clear(&b);
    json_array_foreach(good, i, m) add_lease(committed ? acks : retries, m, committed ? 0 : 30);
    if (!committed) snprintf(q->src.last_error, sizeof q->src.last_error, "the store could not commit; leases handed back");
    json_t *ackreq = json_pack("{s:o,s:o}", "acks", acks, "retries", retries);
    char *ack = json_dumps(ackreq, JSON_COMPACT);
    json_decref(ackreq);
    snprintf(url, sizeof url, "%s/messages/ack", q->base);
    json_t *aenv;
    if (ack) {
        o = cf_call("POST", url, c->api_token, ack, &r, &aenv, msg, sizeof msg);
        http_resp_free(&r);
        json_decref(aenv);
    } else {
        o = CF_RETRY;
        snprintf(msg, sizeof msg, "out of memory");
    }
    if (o != CF_OK) {
        /* Unacknowledged messages come back after their lease: duplicates,
         * which the store drops. */
        snprintf(q->src.last_error, sizeof q->src.last_error, "ack: %s", msg);
        log_msg(LOG_WARN, "queue ack failed; the messages will be redelivered", "error", msg, NULL);
    } else if (committed) {
        q->acked += (long)json_array_size(good);
        time_format_ms(now_ms(), q->src.last_success);
    }
    free(ack);
    json_decref(good);
    json_decref(env);
    q->pulled += (long)n;
    q->src.state = SOURCE_OK;
    note(q);
    return (int)n;
}

static void *run(void *arg)
{
    struct queue *q = arg;
    long idle = q->cfg->queue_idle_min_ms;
    int failures = 0;
    while (!source_stopping(&q->src)) {
        int n = pull_once(q, &failures);
        if (n > 0) {
            idle = q->cfg->queue_idle_min_ms;
            continue;
        }
        if (n == 0) {
            /* Empty: back off from the floor to the ceiling. */
            if (q->src.state != SOURCE_IDLE) {
                q->src.state = SOURCE_IDLE;
                note(q);
            }
            source_nap(&q->src, idle);
            idle = idle * 2 > (long)q->cfg->queue_idle_max_ms ? (long)q->cfg->queue_idle_max_ms : idle * 2;
        }
    }
    return NULL;
}

struct queue *queue_start(struct store *st, const struct config *cfg, char *err, size_t errlen)
{
    if (!cfg->account_id || !cfg->api_token || !cfg->queue_id) {
        snprintf(err, errlen, "queue needs CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN and SYNCCF_QUEUE_ID (or account_id, api_token, queue_id)");
        return NULL;
    }
    struct queue *q = source_alloc(sizeof *q, "queue", err, errlen);
    if (!q) return NULL;
    q->cfg = cfg;
    snprintf(q->base, sizeof q->base, "%s/client/v4/accounts/%s/queues/%s", cfg->api_base, cfg->account_id, cfg->queue_id);
    atomic_store(&q->healthy, 1);
    return source_launch(q, "queue", st, run, NULL, err, errlen);
}

void queue_stop(struct queue *q) { source_close(q, NULL); }

int queue_healthy(struct queue *q) { return atomic_load(&q->healthy); }
