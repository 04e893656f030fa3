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

/* The text event_dump(event_build(...)) gives, assembled directly instead
 * of through a tree: time and received are formatted (time_format_ms),
 * subject (may be NULL) is given escaped as it appears between quotes in
 * JSON, and data is the stored form of the data (see jscan.h). subject and
 * data are copied as they are; the caller vouches for them. Returns a
 * malloc'd string with its length in *len, or NULL (out of memory). */
char *event_text(const char *id, const char *source, const char *type, const char *subject, size_t subjectlen,
                 const char *time, const char *account, const struct norm_opts *o, const char *received,
                 const char *data, size_t datalen, size_t *len);

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

/* What event_accept added to an event, for event_kept_text. */
#define EVENT_ADDED_VIA 1
#define EVENT_ADDED_RECEIVED 2
/* Which of synccfvia / synccfreceived event_accept will add to ev. */
int event_will_add(const json_t *ev);

/* The stored text of an event that arrived as text, without serializing it
 * again: its own bytes, which the caller has found already in event_dump's
 * form (jscan_canonical), with the members event_accept added (added, from
 * event_will_add before it ran) appended where jansson appends them, last.
 * Valid only while validation adds nothing else to the tree. NULL when out
 * of memory or ev lacks them. */
char *event_kept_text(const json_t *ev, const char *text, size_t len, int added);

/* The tree of an event whose text jscan_canonical accepted, built from the
 * scan rather than by jansson's parser: what validation and routing read.
 * Objects and arrays (data's, as only data may hold one) are parsed only
 * when with_data is set; otherwise each is an empty one of its kind
 * (validation looks at the attributes, and at data only for its type), and
 * the stored text, not this tree, is what the event is. NULL when not an
 * object, or out of memory. */
json_t *event_tree(const char *text, size_t len, int with_data);

/* Compact serialization with attribute order kept: the byte-for-byte form
 * shared with the Worker. Caller frees. */
char *event_dump(const json_t *ev);

/* Limits of the event model. */
#define EVENT_ID_MAX 256
#define EVENT_SUBJECT_MAX 256

#endif
