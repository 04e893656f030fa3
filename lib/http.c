/* http.c -- one-shot HTTP requests over libcurl with a bounded response
 * body (a misbehaving server cannot make us buffer without limit) and the
 * Retry-After header read for callers that honour rate limits. */
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct http_resp *r = arg;
    size_t len = size * n;
    if (buf_append(&r->body, p, len) != 0) { /* over the cap: abort */
        r->too_large = 1;
        return 0;
    }
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct http_resp *r = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        char v[32];
        snprintf(v, sizeof v, "%.*s", (int)(len - 12 < 31 ? len - 12 : 31), p + 12);
        char *end;
        long s = strtol(v, &end, 10);
        if (end != v && s >= 0) r->retry_after_s = s;
    }
    return len;
}

int http_request(const char *method, const char *url, const char *const *headers, const char *body,
                 size_t max_body, long timeout_ms, struct http_resp *out)
{
    memset(out, 0, sizeof *out);
    out->retry_after_s = -1;
    out->body.max = max_body;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(out->error, sizeof out->error, "curl_easy_init failed");
        return -1;
    }
    struct curl_slist *hl = NULL;
    for (const char *const *h = headers; h && *h; h++) hl = curl_slist_append(hl, *h);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "synccf");
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    else if (out->too_large) snprintf(out->error, sizeof out->error, "response larger than %zu bytes", max_body);
    else snprintf(out->error, sizeof out->error, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

void http_resp_free(struct http_resp *r) { buf_free(&r->body); }

enum cf_outcome cf_call(const char *method, const char *url, const char *token, const char *body,
                        struct http_resp *r, json_t **envelope, char *msg, size_t msglen)
{
    char auth[600];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    const char *headers[] = {auth, "Content-Type: application/json", "Accept: application/json", NULL};
    *envelope = NULL;
    msg[0] = '\0';
    if (http_request(method, url, headers, body, 32u << 20, 60000, r) != 0) {
        snprintf(msg, msglen, "%.200s", r->error);
        return CF_RETRY;
    }
    json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, NULL);
    json_t *errs = json_object_get(j, "errors");
    json_t *e0 = json_array_get(errs, 0);
    const char *cfmsg = json_string_value(json_object_get(e0, "message"));
    snprintf(msg, msglen, "HTTP %ld%s%.200s", r->status, cfmsg ? ": " : "", cfmsg ? cfmsg : "");
    enum cf_outcome out;
    if (r->status == 429) out = CF_RATE_LIMIT;
    else if (r->status == 401 || r->status == 403) out = CF_AUTH;
    else if (r->status == 404) out = CF_NOT_FOUND;
    else if (r->status >= 500) out = CF_RETRY;
    else if (r->status >= 200 && r->status < 300 && json_is_true(json_object_get(j, "success"))) out = CF_OK;
    else {
        if (r->status >= 200 && r->status < 300) snprintf(msg, msglen, "HTTP %ld with a body that is not a successful v4 envelope", r->status);
        out = CF_BAD;
    }
    if (out == CF_OK) *envelope = j;
    else json_decref(j);
    return out;
}
