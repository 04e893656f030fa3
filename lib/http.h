/* http.h -- small, bounded HTTP requests with libcurl, for talking to the
 * Worker and to Cloudflare's API. */
#ifndef SYNCCF_HTTP_H
#define SYNCCF_HTTP_H

#include <stddef.h>

#include <jansson.h>

#include "util.h"

struct http_resp {
    long status;         /* 0 when no response arrived */
    struct buf body;     /* capped at the request's max_body */
    long retry_after_s;  /* Retry-After in seconds, -1 when absent */
    char error[256];     /* transport error, when status is 0 */
    int too_large;       /* the body passed max_body: the transfer was cut */
};

/* method "GET" or "POST"; headers NULL-terminated "Name: value" lines;
 * body may be NULL. Returns 0 when a response arrived (any status). */
int http_request(const char *method, const char *url, const char *const *headers, const char *body,
                 size_t max_body, long timeout_ms, struct http_resp *out);
void http_resp_free(struct http_resp *r);

/* Cloudflare's v4 API: what a call came to. */
enum cf_outcome {
    CF_OK,          /* 2xx with success: true; *envelope holds the parsed body */
    CF_RATE_LIMIT,  /* 429: wait r->retry_after_s (or a default) */
    CF_AUTH,        /* 401/403: the token is wrong or lacks a permission; do not hammer */
    CF_NOT_FOUND,   /* 404 (e.g. an API version this account does not have) */
    CF_RETRY,       /* 5xx, transport error: back off and retry */
    CF_BAD,         /* anything else, or a body that is not the v4 envelope */
};

/* One call with "Authorization: Bearer token"; body is JSON or NULL. The
 * message says what went wrong, including Cloudflare's own error text. */
enum cf_outcome cf_call(const char *method, const char *url, const char *token, const char *body,
                        struct http_resp *r, json_t **envelope, char *msg, size_t msglen);

#endif
