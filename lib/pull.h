/* pull.h -- follows the synccf Worker's event log (catch-up pages, then SSE). */
#ifndef SYNCCF_PULL_H
#define SYNCCF_PULL_H

#include <stddef.h>

#include "config.h"
#include "store.h"

struct pull;

/* Starts following url (the Worker's base URL) with the bearer token, from
 * the cursor committed in st. heartbeat_s is the Worker's
 * heartbeat period: three missed ones end a silent connection. */
struct pull *pull_start(const char *url, const char *token, unsigned heartbeat_s, struct store *st,
                        const struct router *router, char *err, size_t errlen);
void pull_stop(struct pull *p);
/* 1 while the stream is connected, or has been down for less than grace_ms
 * (counted from start when it never connected). */
int pull_reachable(struct pull *p, long long grace_ms);

#endif
