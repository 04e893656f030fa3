/* sse.c -- reads a text/event-stream (the Worker's GET /v1/stream) into
 * events, as the HTML Living Standard's "interpreting an event stream" says,
 * with every buffer bounded: a line or an event longer than the limit is an
 * error, never an allocation the peer controls. Lines end in LF, CRLF or a
 * lone CR; a CR at the end of one chunk followed by an LF at the start of the
 * next is one line end (the reader remembers it), so any split of the bytes
 * yields the same events -- the fuzz target checks exactly that. */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

void sse_init(struct sse *s, size_t max, sse_event_fn fn, void *arg)
{
    memset(s, 0, sizeof *s);
    s->line.max = max;
    s->data.max = max;
    s->id = -1;
    s->on_event = fn;
    s->arg = arg;
}

void sse_reset(struct sse *s)
{
    s->line.len = 0;
    s->data.len = 0;
    s->type[0] = '\0';
    s->too_long = 0;
}

void sse_free(struct sse *s)
{
    buf_free(&s->line);
    buf_free(&s->data);
}

/* An id is kept only when it is a plain non-negative decimal that fits: the
 * Worker's sequence numbers. Anything else leaves the last id as it was. */
static void set_id(struct sse *s, const char *v, size_t n)
{
    long long x = 0;
    if (n == 0 || n > 18) return;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return;
        x = x * 10 + (v[i] - '0');
    }
    s->id = x;
}

static int dispatch(struct sse *s)
{
    int rc = SSE_OK;
    if (s->too_long) rc = SSE_TOO_LONG;
    else if (s->data.len && s->on_event &&
             s->on_event(s->arg, s->id, s->type, s->data.p ? s->data.p : "", s->data.len) != 0)
        rc = SSE_STOPPED;
    s->data.len = 0;
    s->type[0] = '\0';
    s->too_long = 0;
    return rc;
}

static int field(struct sse *s, const char *l, size_t n)
{
    if (n == 0) return dispatch(s);
    if (l[0] == ':') return SSE_OK; /* a comment: the heartbeat */
    const char *colon = memchr(l, ':', n);
    size_t fl = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    if (v < l + n && *v == ' ') v++;
    size_t vl = n - (size_t)(v - l);
    if (fl == 2 && memcmp(l, "id", 2) == 0) {
        set_id(s, v, vl);
    } else if (fl == 5 && memcmp(l, "event", 5) == 0) {
        if (vl >= sizeof s->type) vl = sizeof s->type - 1; /* no type we know is that long */
        memcpy(s->type, v, vl);
        s->type[vl] = '\0';
    } else if (fl == 4 && memcmp(l, "data", 4) == 0 && !s->too_long) {
        if ((s->data.len && buf_append(&s->data, "\n", 1) != 0) || buf_append(&s->data, v, vl) != 0)
            s->too_long = 1; /* reported when the event ends */
    }
    return SSE_OK;
}

int sse_feed(struct sse *s, const char *p, size_t n)
{
    static const char cr = '\r';
    while (n) {
        /* A CR ended the previous line: an LF right after it belongs to it. */
        if (s->line.len == 1 && s->line.p[0] == cr) {
            s->line.len = 0;
            if (*p == '\n') {
                p++, n--;
                continue;
            }
        }
        const char *lf = memchr(p, '\n', n), *crp = memchr(p, '\r', n);
        const char *end = lf && (!crp || lf < crp) ? lf : crp;
        size_t take = end ? (size_t)(end - p) : n;
        if (buf_append(&s->line, p, take) != 0) return SSE_TOO_LONG;
        if (!end) return SSE_OK;
        int rc = field(s, s->line.p ? s->line.p : "", s->line.len);
        s->line.len = 0;
        p += take + 1, n -= take + 1;
        if (*end == '\r') {
            if (n && *p == '\n') p++, n--;
            else if (!n) buf_append(&s->line, &cr, 1); /* decided by the next chunk */
        }
        if (rc != SSE_OK) return rc;
    }
    return SSE_OK;
}
