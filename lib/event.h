/* event.h -- the normalized event: building and checking CloudEvents 1.0. */
#ifndef SYNCCF_EVENT_H
#define SYNCCF_EVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Where an event came from and when this machine (or the Worker) saw it. */
struct norm_opts {
    const char *via;     /* "worker", "tunnel", "queue", "poll" */
    int64_t received_ms; /* synccfreceived */
};

/* Builds an event with the attributes in the order docs/events.md fixes.
 * subject and account may be NULL; time_ms < 0 means "use received".
 * Takes a new reference to data. */
json_t *event_build(const char *id, const char *source, const char *type, const char *subject,
                    int64_t time_ms, const char *account, const struct norm_opts *o, json_t *data);

/* The CloudEvents 1.0 rules an event from elsewhere must meet (those the
 * cloudevents SDK enforces in strict mode, and synccf's own: RFC 3339 time,
 * bounded id/subject, a documented synccfvia). NULL if it meets them, else a
 * message naming the attribute. The Worker's checkEvent (normalize.js) is
 * its twin; tests/vectors/cloudevents-*.json prove they agree. */
const char *event_check(json_t *ev);

/* Whether s[0..n) is a URI-reference (RFC 3986), or an absolute URI when
 * absolute is set: the characters a URI may hold, a well-formed scheme, and
 * percent-escapes of two hex digits. */
int event_valid_uri(const char *s, size_t n, int absolute);

/* Checks an event that arrived already normalized (from the Worker) with
 * event_check.
 * Returns NULL if valid, else a message naming what is wrong. Fills in a
 * missing synccfvia / synccfreceived from o. */
const char *event_accept(json_t *ev, const struct norm_opts *o);

/* Compact serialization with attribute order kept: the byte-for-byte form
 * shared with the Worker. Caller frees. */
char *event_dump(const json_t *ev);

/* Limits of the event model. */
#define EVENT_ID_MAX 256
#define EVENT_SUBJECT_MAX 256

#endif
