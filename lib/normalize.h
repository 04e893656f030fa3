/* normalize.h -- Cloudflare's formats to normalized events (docs/events.md). */
#ifndef SYNCCF_NORMALIZE_H
#define SYNCCF_NORMALIZE_H

#include <jansson.h>
#include <stddef.h>

#include "event.h"

/* A Notifications webhook body (Pages deployment alerts included). */
json_t *norm_notification(json_t *body, const struct norm_opts *o);

/* A generic hook call: raw is the request body exactly as received (its
 * bytes feed the id), body the parsed object. */
json_t *norm_generic(const char *name, const char *raw, size_t rawlen, json_t *body,
                     const struct norm_opts *o);

/* One Logpush record: line is the record's bytes without terminator. */
json_t *norm_logpush_record(const char *dataset, const char *line, size_t len, json_t *rec,
                            const struct norm_opts *o);

/* 1 if rec is Logpush's destination check record {"content":"tests"}. */
int norm_is_logpush_check(json_t *rec);

/* An event from xplat's sync Worker; NULL and *err set when it cannot be
 * converted. */
json_t *norm_xplat(json_t *body, const struct norm_opts *o, const char **err);

/* The URL-borne names, checked before they become part of a type. */
int norm_valid_dataset(const char *s);
int norm_valid_hook_name(const char *s);

#endif
