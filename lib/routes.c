/* routes.c -- owns the map from an ingest route to its normalizer: the body
 * of a request that server.c has authenticated and bounded becomes the events
 * of one store batch (a Logpush batch, one line at a time). It mirrors the
 * Worker's route map (worker/src/index.js, route()), which receives the same
 * formats at the edge. Nothing here knows HTTP: refusals are results, which
 * server.c turns into answers. */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "ingest.h"
#include "jscan.h"
#include "jsonx.h"
#include "log.h"
#include "normalize.h"

/* The most events of one push whose text can be kept (push_events). */
#define PUSH_SPANS 4096

/* ---- the Worker's push ---------------------------------------------------- */

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
static json_t *push_scan(const struct ingest_ctx *c, const char *text, size_t len, struct push_scan *ps)
{
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
    int with_data = c->router && router_has_handlers(c->router);
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

/* Adds the validated events of a push, each with its kept text when ps has
 * it (added: which ones validation added attributes to). */
static enum ingest_result push_add(const struct ingest_ctx *c, json_t *events, const struct push_scan *ps,
                                   const unsigned char *added, struct store_batch *b)
{
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        char *t = NULL;
        if (ps->spans && !(t = event_kept_text(e, ps->spans[i].val, ps->spans[i].vallen, added[i])))
            return INGEST_NOMEM;
        if (ingest_add_kept(b, json_incref(e), t, c->router) != 0) return INGEST_NOMEM;
    }
    return INGEST_OK;
}

/* The events of a push, all validated before any is kept: events (from
 * push_scan, with ps; taken over) or else body, the parsed request. */
static enum ingest_result push_events(const struct ingest_ctx *c, json_t *events, const struct push_scan *ps,
                                      json_t *body, const struct norm_opts *o, struct store_batch *b, char *msg,
                                      size_t msglen)
{
    if (!events) {
        if (json_is_object(body)) {
            events = json_array();
            if (!events || json_array_append(events, body) != 0) {
                json_decref(events);
                return INGEST_NOMEM;
            }
        } else if (json_is_array(body)) {
            events = json_incref(body);
        } else {
            snprintf(msg, msglen, "body must be a CloudEvent or an array of them");
            return INGEST_MALFORMED;
        }
    }
    int kept = ps->spans != NULL;
    unsigned char *added = kept ? calloc(ps->n + 1, 1) : NULL; /* + 1: "[]" too */
    if (kept && !added) {
        json_decref(events);
        return INGEST_NOMEM;
    }
    enum ingest_result res = INGEST_OK;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        /* Validation may add synccfvia / synccfreceived, which the kept
         * text gets too; it must change nothing else. */
        if (kept) added[i] = (unsigned char)event_will_add(e);
        const char *why = event_accept(e, o);
        if (why) {
            snprintf(msg, msglen, "event %zu: %s", i, why);
            res = INGEST_MALFORMED;
            break;
        }
    }
    if (res == INGEST_OK) res = push_add(c, events, ps, added, b);
    free(added);
    json_decref(events);
    return res;
}

/* ---- the other JSON routes ------------------------------------------------ */

/* xplat's batch: its bad records are counted, the rest kept. */
static enum ingest_result xplat_events(const struct ingest_ctx *c, json_t *body, const struct norm_opts *o,
                                       struct store_batch *b, const char **err)
{
    enum ingest_result res = INGEST_OK;
    json_t *evs = json_array();
    size_t bad = 0, i;
    json_t *e;
    if (norm_xplat(body, o, evs, &bad, err) >= 0) {
        json_array_foreach(evs, i, e) {
            json_incref(e);
            if (ingest_add(b, e, c->router) != 0) {
                res = INGEST_NOMEM;
                break;
            }
        }
    }
    json_decref(evs);
    if (bad) store_count(c->store, "rejected.bad_record", (int64_t)bad);
    return res;
}

/* The body parsed (events from a push's scan, or else jansson's tree), then
 * handed to its route's normalizer. */
enum ingest_result ingest_body(const struct ingest_ctx *c, enum ingest_route route, const char *name,
                               const char *body, size_t len, struct store_batch *b, char *msg, size_t msglen)
{
    struct push_scan ps = {0};
    json_t *events = route == INGEST_EVENTS ? push_scan(c, body, len, &ps) : NULL;
    json_error_t jerr;
    json_t *tree = events ? json_null() : jx_loadb(body ? body : "", len, 0, &jerr);
    if (!tree) {
        snprintf(msg, msglen, "malformed JSON: %s (line %d)", jerr.text, jerr.line);
        return INGEST_MALFORMED;
    }
    struct norm_opts o = {"tunnel", c->received_ms};
    enum ingest_result res = INGEST_OK;
    const char *err = NULL;
    json_t *ev = NULL;

    switch (route) {
    case INGEST_EVENTS:
        o.via = "worker";
        res = push_events(c, events, &ps, tree, &o, b, msg, msglen);
        break;
    case INGEST_NOTIFY:
        if (!json_is_object(tree)) err = "a notification must be a JSON object";
        else ev = norm_notification(tree, &o);
        break;
    case INGEST_GENERIC:
        if (!json_is_object(tree)) err = "a hook body must be a JSON object";
        else ev = norm_generic(name, body, len, tree, &o);
        break;
    case INGEST_XPLAT:
        o.via = "worker"; /* it came through xplat's Worker */
        res = xplat_events(c, tree, &o, b, &err);
        break;
    default:
        err = "no such route";
    }
    json_decref(tree);
    push_scan_free(&ps);
    if (res == INGEST_OK && err) {
        snprintf(msg, msglen, "%s", err);
        res = INGEST_MALFORMED;
    }
    if (ev && ingest_add(b, ev, c->router) != 0 && res == INGEST_OK) res = INGEST_NOMEM;
    return res;
}

/* ---- Logpush ---------------------------------------------------------------- */

/* Whether a filter applies to the dataset: filters read the record's tree. */
static int filtered_dataset(const struct filter *f, const char *dataset)
{
    for (; f; f = f->next)
        if (!f->dataset[0] || strcmp(f->dataset, dataset) == 0) return 1;
    return 0;
}

enum ingest_line ingest_logpush_line(const struct ingest_ctx *c, const char *dataset, const char *line, size_t len,
                                     unsigned long lineno, struct store_batch *b)
{
    struct norm_opts o = {"tunnel", c->received_ms};
    if (!filtered_dataset(c->filters, dataset)) {
        /* A record already in its stored form becomes its event as text. */
        struct norm_text t;
        int k = norm_logpush_text(dataset, line, len, &o, &t);
        if (k == 0) return LINE_SKIPPED;
        if (k == 1) return ingest_add_text(b, &t, o.via, c->router) != 0 ? LINE_NOMEM : LINE_ADDED;
        if (k < 0) return LINE_NOMEM;
    }
    json_t *ev;
    char why[160];
    int kind = norm_logpush_line(dataset, line, len, &o, &ev, why, sizeof why);
    if (kind < 0) {
        char no[24];
        snprintf(no, sizeof no, "%lu", lineno);
        log_msg(LOG_WARN, "logpush record rejected", "dataset", dataset, "line", no, "error", why, NULL);
        store_count(c->store, "rejected.bad_record", 1);
        return LINE_REJECTED;
    }
    if (kind == 0) return LINE_SKIPPED;
    if (!filter_keep(c->filters, dataset, json_object_get(ev, "data"))) {
        json_decref(ev);
        store_count(c->store, "filtered.logpush", 1);
        return LINE_FILTERED;
    }
    return ingest_add(b, ev, c->router) != 0 ? LINE_NOMEM : LINE_ADDED;
}
