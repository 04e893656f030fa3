/* normalize.h -- Cloudflare's formats to normalized events (docs/events.md). */
#ifndef SYNCCF_NORMALIZE_H
#define SYNCCF_NORMALIZE_H

#include <jansson.h>
#include <stddef.h>

#include "event.h"
#include "util.h"

/* A Notifications webhook body (Pages deployment alerts included). */
json_t *norm_notification(json_t *body, const struct norm_opts *o);

/* A generic hook call: raw is the request body exactly as received (its
 * bytes feed the id), body the parsed object. */
json_t *norm_generic(const char *name, const char *raw, size_t rawlen, json_t *body,
                     const struct norm_opts *o);

/* One Logpush line (without its terminator). Returns 1 with *ev set for a
 * record, 0 for Logpush's destination check record (nothing to store), -1
 * for a line that is not a JSON object, with the reason in err. */
int norm_logpush_line(const char *dataset, const char *line, size_t len, const struct norm_opts *o, json_t **ev,
                      char *err, size_t errlen);

/* A Logpush record's event as its stored text (event_dump's form), with the
 * attributes the store indexes. */
struct norm_text {
    char *text; /* malloc'd */
    size_t len;
    char id[64], source[128], type[128], time[TIME_BUF], received[TIME_BUF];
    char subject[EVENT_SUBJECT_MAX + 1];
    int has_subject;
};

/* norm_logpush_line's event, built as text around the line itself when the
 * line is already in its stored form (jscan.h), with no tree: most of what a
 * record costs otherwise. 1 with *ev filled (free ev->text), 0 for the
 * destination check record, 2 when the line is not in that form (then
 * norm_logpush_line decides), -1 out of memory. */
int norm_logpush_text(const char *dataset, const char *line, size_t len, const struct norm_opts *o,
                      struct norm_text *ev);

/* An event from xplat's sync Worker ({type, timestamp, account_id, zone_id,
 * action, resource, source, metadata, raw}): appends the events it carries
 * to out (a Logpush raw batch may carry several) and returns how many; -1
 * with *err when it cannot be converted. Bad Logpush lines are counted in
 * *rejected. */
int norm_xplat(json_t *body, const struct norm_opts *o, json_t *out, size_t *rejected, const char **err);

/* One Audit Logs entry: v2 (GET .../logs/audit) when v2 is 1, else v1
 * (GET .../audit_logs). NULL when the entry has no usable id. */
json_t *norm_audit(json_t *entry, int v2, const struct norm_opts *o);

/* One Cloudflare Event Subscription message body (from a Queue), with the
 * queue message's id (stable across redeliveries). NULL if it is not one. */
json_t *norm_evsub(json_t *body, const char *msg_id, const struct norm_opts *o);

/* One deployment from the Pages API's deployments list
 * (GET .../pages/projects/{name}/deployments). It is turned into the
 * Notifications webhook Cloudflare sends for that deployment's state
 * (pages_event_alert) and normalized as one, so that a polled deployment and
 * its notification are the same event. Returns 1 with *ev set, 0 for a
 * deployment with no notification counterpart (skipped or canceled), -1 when
 * it is not a deployment object. */
int norm_pages_deployment(json_t *dep, const char *account, const struct norm_opts *o, json_t **ev);

/* Pages project names as the API accepts them: [a-z0-9-], at most 58. */
int norm_valid_pages_project(const char *s);

/* The URL-borne names, checked before they become part of a type. */
int norm_valid_dataset(const char *s);
int norm_valid_hook_name(const char *s);

#endif
