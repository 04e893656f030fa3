/* http.h -- small, bounded HTTP requests with libcurl, for talking to the
 * Worker and to Cloudflare's API. */
#ifndef SYNCCF_HTTP_H
#define SYNCCF_HTTP_H

#include <stddef.h>

#include "util.h"

struct http_resp {
    long status;         /* 0 when no response arrived */
    struct buf body;     /* capped at the request's max_body */
    long retry_after_s;  /* Retry-After in seconds, -1 when absent */
    char error[256];     /* transport error, when status is 0 */
};

/* method "GET" or "POST"; headers NULL-terminated "Name: value" lines;
 * body may be NULL. Returns 0 when a response arrived (any status). */
int http_request(const char *method, const char *url, const char *const *headers, const char *body,
                 size_t max_body, long timeout_ms, struct http_resp *out);
void http_resp_free(struct http_resp *r);

#endif
