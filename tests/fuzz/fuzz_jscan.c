/* fuzz_jscan.c -- libFuzzer target, differential: whatever jscan calls
 * canonical must be what jansson dumps, and the events built as text (a
 * Logpush record, a kept push) must equal the jansson path's, byte for
 * byte. The first input byte picks the check; the rest is the text. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/event.h"
#include "../../lib/jscan.h"
#include "../../lib/normalize.h"

static void logpush(const char *s, size_t n)
{
    struct norm_opts o = {"tunnel", 1763633000123};
    json_t *ev = NULL;
    char err[160];
    int k1 = norm_logpush_line("http_requests", s, n, &o, &ev, err, sizeof err);
    struct norm_text t;
    int k2 = norm_logpush_text("http_requests", s, n, &o, &t);
    if (k2 != 2) {
        if (k2 != k1) abort();
        if (k2 == 1) {
            char *want = event_dump(ev);
            const char *subj = json_string_value(json_object_get(ev, "subject"));
            if (!want || strcmp(want, t.text) != 0 || t.len != strlen(want)) abort();
            if (strcmp(t.id, json_string_value(json_object_get(ev, "id"))) != 0 ||
                strcmp(t.time, json_string_value(json_object_get(ev, "time"))) != 0 ||
                (subj ? !t.has_subject || strcmp(subj, t.subject) != 0 : t.has_subject))
                abort();
            free(want);
            free(t.text);
        }
    }
    json_decref(ev);
}

static void canonical(const char *s, size_t n)
{
    struct jmember top[16];
    size_t ntop;
    if (!jscan_canonical(s, n, top, 16, &ntop)) return;
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY, NULL);
    if (!j) abort();
    char *d = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!d || strlen(d) != n || memcmp(d, s, n) != 0) abort();
    if ((json_is_object(j) && json_object_size(j) != ntop) || (json_is_array(j) && json_array_size(j) != ntop)) abort();
    for (size_t i = 0; json_is_object(j) && i < ntop; i++) {
        if (top[i].keylen > 4096) continue;
        char key[4096];
        size_t kn = jscan_unescape(key, top[i].key, top[i].keylen);
        json_t *v = json_object_getn(j, key, kn);
        if (!v) abort();
        if (top[i].kind == JK_STRING) {
            char *dec = malloc(top[i].vallen + 1);
            if (!dec) return;
            size_t vn = jscan_unescape(dec, top[i].val, top[i].vallen);
            if (!json_is_string(v) || json_string_length(v) != vn || memcmp(json_string_value(v), dec, vn) != 0) abort();
            free(dec);
        }
    }
    free(d);
    json_decref(j);
}

/* A push as the server takes it (event_tree, validation, kept text) against
 * the jansson path (parse, validation, event_dump). */
static void push(const char *s, size_t n)
{
    if (!jscan_canonical(s, n, NULL, 0, NULL)) return;
    json_t *ev = json_loadb(s, n, JSON_DECODE_ANY, NULL);
    if (!ev) abort();
    json_t *full = event_tree(s, n, 1), *shallow = event_tree(s, n, 0);
    if (json_is_object(ev) != (full != NULL) || (full && !json_equal(full, ev))) abort();
    if (shallow) {
        int added = event_will_add(shallow);
        struct norm_opts o = {"worker", 1763633000123};
        const char *why = event_accept(ev, &o), *why2 = event_accept(shallow, &o);
        if (why != why2) abort();
        if (!why) {
            char *kept = event_kept_text(shallow, s, n, added), *want = event_dump(ev);
            if (kept && strcmp(kept, want) != 0) abort();
            free(kept);
            free(want);
        }
    }
    json_decref(full);
    json_decref(shallow);
    json_decref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: logpush(s, n); break;
    case 1: canonical(s, n); break;
    default: push(s, n); break;
    }
    return 0;
}
