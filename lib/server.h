/* server.h -- the HTTP receiver: Cloudflare's formats and the Worker's push in. */
#ifndef SYNCCF_SERVER_H
#define SYNCCF_SERVER_H

#include <jansson.h>
#include <stddef.h>

#include "filter.h"
#include "store.h"
#include "util.h"

struct router;

/* The receiver's limits: the limits: section of the configuration (struct
 * config holds one, its defaults in the settings table), handed over whole. */
struct server_limits {
    size_t max_body;           /* JSON bodies */
    size_t max_logpush_body;   /* Logpush bodies as sent (compressed) */
    size_t max_decompressed;   /* Logpush bodies decompressed */
    size_t max_line;           /* one Logpush record */
    unsigned max_connections;
    unsigned max_connections_per_ip; /* 0: max_connections/8 off loopback, none on it (docs/wire.md#limits) */
    unsigned timeout_s;        /* idle connection timeout */
    unsigned threads;
};

struct server_config {
    const char *listen;        /* "HOST:PORT"; port 0 picks a free one */
    const char *push_secret;   /* whsec_..., for POST /v1/events */
    const char *notify_secret; /* cf-webhook-auth, for /hooks/notifications */
    const char *hook_token;    /* bearer, for Logpush, generic hooks and xplat's POST / */
    struct server_limits limits;
    const struct filter *filters;
    const struct router *router; /* handlers to queue per event; NULL = none */
    /* /readyz: fills checks ({"name":"ok"|"why"}) and returns 1 when ready;
     * NULL checks the store only. */
    int (*ready)(void *arg, json_t *checks);
    void *ready_arg;
    /* GET /metrics: appends the Prometheus text; NULL = no such route. */
    void (*metrics)(void *arg, struct buf *out);
    void *metrics_arg;
    /* GET /: the status page, answered to loopback clients only; NULL = off. */
    void (*page)(void *arg, struct buf *out);
    /* Requests arrive through cloudflared, which connects from 127.0.0.1:
     * loopback is then as public as any address (every route needs its secret). */
    int behind_tunnel;
};

struct server;
/* Checks the configuration (a non-loopback address needs every route
 * authenticated), binds and starts serving. NULL with err on failure;
 * *usage_error is set when the cause is the configuration. */
struct server *server_start(const struct server_config *c, struct store *st, char *err, size_t errlen,
                            int *usage_error);
unsigned server_port(const struct server *s);
/* Stops accepting, waits for requests in flight (their commits included),
 * then closes every connection. */
void server_stop(struct server *s);

#endif
