/* sse.h -- a bounded reader of Server-Sent Events. */
#ifndef SYNCCF_SSE_H
#define SYNCCF_SSE_H

#include <stddef.h>

#include "util.h"

/* Called once per complete event that carries data; a nonzero return stops
 * the reader (sse_feed then returns SSE_STOPPED). `type` is "" when the
 * event named none; `id` is the last valid id seen on the stream, -1 if
 * none. `data` is NUL-terminated. */
typedef int (*sse_event_fn)(void *arg, long long id, const char *type, const char *data, size_t len);

struct sse {
    struct buf line, data;
    long long id;
    char type[32];
    int too_long; /* the current event's data passed the limit */
    sse_event_fn on_event;
    void *arg;
};

enum { SSE_OK = 0, SSE_TOO_LONG = -1, SSE_STOPPED = -2 };

void sse_init(struct sse *s, size_t max, sse_event_fn fn, void *arg);
/* Feeds n bytes, in any split; returns SSE_OK, SSE_TOO_LONG when a line or
 * an event's data passes `max` bytes, or SSE_STOPPED. */
int sse_feed(struct sse *s, const char *p, size_t n);
/* Forgets a partial line and event (a new connection); keeps the last id. */
void sse_reset(struct sse *s);
void sse_free(struct sse *s);

#endif
