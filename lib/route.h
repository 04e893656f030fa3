/* route.h -- which handlers an event reaches, and the live handler set.
 *
 * The router holds the handler set in use. Reload (SIGHUP) replaces it whole:
 * router_publish() swaps in a new set atomically and keeps the replaced one
 * until router_free(), because a run in progress may still point into it. */
#ifndef SYNCCF_ROUTE_H
#define SYNCCF_ROUTE_H

#include <jansson.h>
#include <stddef.h>

#include "handler.h"

/* One published handler set; retired points at the set it replaced. */
struct rules {
    struct handler_def *h;
    size_t n;
    struct rules *retired;
};

struct router {
    struct rules *_Atomic rules; /* NULL until the first router_publish() */
};

/* Makes h[0..n) the live set (the router takes them over); with
 * keep_callbacks the C API's callbacks of the previous set carry over. */
void router_publish(struct router *r, struct handler_def *h, size_t n, int keep_callbacks);
/* Makes c's loaded handlers (c->handlers) the live set of c->router. */
struct config;
void router_publish_config(struct config *c, int keep_callbacks);
/* Loads file again and, if it is valid, makes its handlers live; the other
 * settings need a restart. -1 with the reason when it is not valid. */
int router_reload(struct router *r, const char *file, char *err, size_t errlen);
/* Frees every set, the live one and the retired ones. */
void router_free(struct router *r);

/* Names of the handlers that match ev (a CloudEvent), in configuration
 * order, NULL-terminated; NULL when none. Free with free(). */
const char **router_route(const struct router *r, const json_t *ev);
const struct handler_def *router_handler(const struct router *r, const char *name);
/* Whether any handler is live (router_route can match something). */
int router_has_handlers(const struct router *r);

#endif
