/* routes.h -- one entry point from an ingest route's body to the events of
 * a store batch; the route -> normalizer map (routes.c). */
#ifndef SYNCCF_ROUTES_H
#define SYNCCF_ROUTES_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "filter.h"
#include "store.h"

/* The routes events come in by. The Worker's route() in worker/src/index.js
 * is the same map on the edge: a route added on one side belongs on both. */
enum ingest_route {
    INGEST_NONE,
    INGEST_EVENTS,  /* POST /v1/events: the Worker's push, CloudEvents */
    INGEST_NOTIFY,  /* POST /hooks/notifications: Cloudflare Notifications */
    INGEST_LOGPUSH, /* POST /hooks/logpush/<dataset>: NDJSON, maybe gzip */
    INGEST_GENERIC, /* POST /hooks/generic/<name>: any JSON object */
    INGEST_XPLAT,   /* POST /: xplat's sync Worker */
};

/* What every route's events need besides the body. */
struct ingest_ctx {
    const struct router *router;  /* handlers to queue per event; NULL none */
    const struct filter *filters; /* Logpush record filters */
    struct store *store;          /* for counters */
    int64_t received_ms;
};

enum ingest_result {
    INGEST_OK,
    INGEST_MALFORMED, /* the body is refused; msg says why */
    INGEST_NOMEM,
};

/* A JSON route's whole body (already authenticated) into b: name is the
 * generic hook's name. Nothing is added unless every event is valid, except
 * xplat's batches, whose bad records are counted and skipped. */
enum ingest_result ingest_body(const struct ingest_ctx *c, enum ingest_route route, const char *name,
                               const char *body, size_t len, struct store_batch *b, char *msg, size_t msglen);

/* What became of one Logpush record. */
enum ingest_line {
    LINE_ADDED,    /* into b */
    LINE_SKIPPED,  /* Logpush's destination check, nothing to store */
    LINE_REJECTED, /* not a record: logged and counted */
    LINE_FILTERED, /* dropped by a filter: counted */
    LINE_NOMEM,
};

/* One line of a Logpush batch for dataset (lineno names it in the log). */
enum ingest_line ingest_logpush_line(const struct ingest_ctx *c, const char *dataset, const char *line, size_t len,
                                     unsigned long lineno, struct store_batch *b);

#endif
