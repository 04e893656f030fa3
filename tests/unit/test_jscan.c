/* test_jscan.c -- the text-built Logpush event must be byte for byte the
 * event the jansson path makes, for every vector line and for lines made to
 * sit on the edges of what jscan recognizes (big integers, escapes, unicode,
 * duplicates, reals, nesting). */
#include <dirent.h>
#include <jansson.h>
#include <string.h>

#include "../../lib/event.h"
#include "../../lib/jscan.h"
#include "../../lib/jsonx.h"
#include "../../lib/logpush.h"
#include "../../lib/normalize.h"
#include "../../lib/store.h"
#include "../../lib/util.h"
#include "testutil.h"

static int fast_lines; /* lines that took the text path */

static void same_attr(const char *a, const char *b)
{
    if (!a || !b) assert_ptr_equal(a, b);
    else assert_string_equal(a, b);
}

/* The differential check: whatever norm_logpush_text answers must agree
 * with norm_logpush_line; jscan's "canonical" must agree with jansson. */
static void check_line(const char *dataset, const char *line, size_t len)
{
    struct norm_opts o = {"tunnel", 1763633000123};
    json_t *ev = NULL;
    char err[160];
    int k1 = norm_logpush_line(dataset, line, len, &o, &ev, err, sizeof err);
    struct norm_text t;
    int k2 = norm_logpush_text(dataset, line, len, &o, &t);
    if (jscan_canonical(line, len, NULL, 0, NULL)) {
        json_t *j = json_loadb(line, len, JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        char *d = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        assert_non_null(d);
        assert_int_equal(strlen(d), len);
        assert_memory_equal(d, line, len);
        free(d);
        json_decref(j);
    }
    if (k2 == 2) {
        json_decref(ev);
        return;
    }
    assert_int_equal(k2, k1);
    if (k2 == 1) {
        fast_lines++;
        char *want = event_dump(ev);
        assert_string_equal(t.text, want);
        assert_int_equal(t.len, strlen(want));
        struct store_event a, b;
        assert_int_equal(store_event_from_json(ev, &a), 0);
        assert_int_equal(store_event_from_text(t.id, t.type, t.source, t.has_subject ? t.subject : NULL, t.time,
                                               o.via, t.received, t.text, &b), 0);
        same_attr(a.id, b.id);
        same_attr(a.type, b.type);
        same_attr(a.source, b.source);
        same_attr(a.subject, b.subject);
        same_attr(a.time, b.time);
        same_attr(a.via, b.via);
        same_attr(a.received, b.received);
        same_attr(a.body, b.body);
        store_event_free(&a);
        store_event_free(&b);
        free(want);
    }
    json_decref(ev);
}

static int on_line(void *arg, const char *line, size_t len, unsigned long lineno)
{
    (void)lineno;
    check_line(arg, line, len);
    return 0;
}

static void test_vector_lines(void **state)
{
    (void)state;
    static const char *const files[][2] = {
        {"http_requests.ndjson", "http_requests"},
        {"http_requests.ndjson.gz", "http_requests"},
        {"http_requests-unixnano.ndjson", "http_requests"},
        {"mixed.ndjson", "firewall_events"},
        {"workers_trace_events.ndjson", "workers_trace_events"},
        {"workers_trace_events.ndjson.gz", "workers_trace_events"},
        {"validation-test.txt.gz", "http_requests"},
    };
    fast_lines = 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/vectors/inputs/%s", files[i][0]);
        size_t len = 0;
        char *raw = read_file(path, &len);
        assert_non_null(raw);
        struct lp_reader r;
        lp_init(&r, on_line, (void *)files[i][1], 1u << 30, 1u << 20);
        assert_int_equal(lp_feed(&r, raw, len), 0);
        assert_int_equal(lp_finish(&r), 0);
        lp_free(&r);
        free(raw);
    }
    assert_true(fast_lines > 0);
}

static void test_edges(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"a\":1}",
        "{\"EdgeStartTimestamp\":1763633000000000000,\"ZoneName\":\"ex\\\"ample\",\"x\":\"\\u0001\\u001F\\t\"}",
        "{\"a\":123456789012345678901234567890}",
        "{\"a\":9223372036854775807,\"b\":-9223372036854775808}",
        "{\"a\":9223372036854775808}",
        "{\"a\":-9223372036854775809}",
        "{\"a\":\"\\u00e9\",\"ZoneName\":\"z\"}",
        "{\"ZoneName\":\"\xc3\xa9.example\",\"When\":\"2025-01-02T03:04:05Z\"}",
        "{\"ZoneName\":\"\xed\xa0\x80\"}",
        "{\"ZoneName\":\"\xc0\xaf\"}",
        "{\"a\":1.5,\"Timestamp\":1.5e9}",
        "{\"a\":1,\"a\":2}",
        "{\"content\":\"tests\"}",
        "{\"content\":\"tests\",\"x\":1}",
        "{\"When\":\"2025-01-02T03:04:05.120Z\",\"ScriptName\":\"\",\"ClientRequestHost\":\"h\"}",
        "{\"Datetime\":\"bad\",\"ClientRequestHost\":\"h\"}",
        "{\"EventTimestampMs\":-5,\"Datetime\":1700000000}",
        "{\"EventTimestampMs\":true}",
        "{\"EventTimestampMs\":null,\"When\":1}",
        "{\"a\":[1,{\"b\":null,\"c\":true,\"d\":false}],\"e\":{},\"f\":[]}",
        "{\"a\":\"\\/\"}",
        "{\"a\":\"\\u001f\"}",
        "{\"a\":\"\\u0000\"}",
        "{\"a\":\"\\u000a\"}",
        "[1]",
        "\"s\"",
        "{\"a\":-0}",
        "{\"a\":01}",
        "{\"a\":1} ",
        "{ \"a\":1}",
        "{\"a\":1}x",
        "{\"a\":tru}",
        "{\"a\":\"x\x7f\"}",
        "{\"ZoneName\":\"a\\u0001b\\\\c\"}",
        "{\"ZoneName\":\"\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001A\"}",
        "{}",
        "{\"a\":{\"b\":{\"c\":{\"d\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}}}",
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) check_line("http_requests", lines[i], strlen(lines[i]));
    /* A subject at and beyond EVENT_SUBJECT_MAX, and one just within it
     * only once its escapes are decoded. */
    char big[2048];
    for (size_t n = EVENT_SUBJECT_MAX - 1; n <= EVENT_SUBJECT_MAX + 1; n++) {
        int k = snprintf(big, sizeof big, "{\"ZoneName\":\"");
        memset(big + k, 'z', n);
        k += (int)n;
        k += snprintf(big + k, sizeof big - (size_t)k, "\",\"ScriptName\":\"s\"}");
        check_line("http_requests", big, (size_t)k);
    }
    int k = snprintf(big, sizeof big, "{\"ZoneName\":\"");
    for (int i = 0; i < EVENT_SUBJECT_MAX; i++) k += snprintf(big + k, sizeof big - (size_t)k, "\\u0001");
    k += snprintf(big + k, sizeof big - (size_t)k, "\"}");
    check_line("http_requests", big, (size_t)k);
    /* Each byte a string cannot pass over, at every offset around the
     * 8-byte steps of the scanner's fast path. */
    static const char *const odd[] = {"\\\"", "\\\\", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xff", "\\u001F", "\\n", " "};
    for (size_t o = 0; o < sizeof odd / sizeof *odd; o++)
        for (int pos = 0; pos < 20; pos++) {
            int k2 = snprintf(big, sizeof big, "{\"ZoneName\":\"%.*s%s%.*s\"}", pos, "abcdefghijklmnopqrstuvwxyz", odd[o],
                              20 - pos, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
            check_line("http_requests", big, (size_t)k2);
        }
    /* More members than jscan follows: left to jansson. */
    k = snprintf(big, sizeof big, "{");
    for (int i = 0; i < JSCAN_MAX_KEYS + 1; i++) k += snprintf(big + k, sizeof big - (size_t)k, "%s\"k%d\":1", i ? "," : "", i);
    k += snprintf(big + k, sizeof big - (size_t)k, "}");
    check_line("http_requests", big, (size_t)k);
}

static void test_quote(void **state)
{
    (void)state;
    const char s[] = "a\"b\\c\b\f\n\r\t\x01\x1f\x7f/\xc3\xa9 \xe2\x80\xa8";
    char out[6 * sizeof s + 2];
    size_t n = jscan_quote(out, s, sizeof s - 1);
    json_t *j = json_stringn(s, sizeof s - 1);
    char *d = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    assert_int_equal(n, strlen(d));
    assert_memory_equal(out, d, n);
    char back[sizeof out];
    size_t bn = jscan_unescape(back, out + 1, n - 2);
    assert_int_equal(bn, sizeof s - 1);
    assert_memory_equal(back, s, bn);
    free(d);
    json_decref(j);
}

/* A pushed event as the server takes it (event_tree, then validation, then
 * the kept text) equals the jansson path: parse, validate, event_dump. */
static int check_push(const char *text, size_t len)
{
    if (!jscan_canonical(text, len, NULL, 0, NULL)) return 0;
    struct norm_opts o = {"worker", 1763633000123};
    json_t *ev = json_loadb(text, len, 0, NULL);
    assert_non_null(ev);
    json_t *full = event_tree(text, len, 1), *shallow = event_tree(text, len, 0);
    assert_non_null(full);
    assert_non_null(shallow);
    assert_true(json_equal(full, ev));
    int added = event_will_add(shallow);
    assert_int_equal(added, event_will_add(ev));
    const char *why = event_accept(ev, &o);
    const char *why2 = event_accept(shallow, &o);
    assert_ptr_equal(why, why2);
    if (why) {
        json_decref(ev);
        json_decref(full);
        json_decref(shallow);
        return 0;
    }
    char *kept = event_kept_text(shallow, text, len, added);
    char *want = event_dump(ev);
    assert_non_null(kept);
    assert_string_equal(kept, want);
    const char *attrs[] = {"id", "type", "source", "subject", "time", "synccfvia", "synccfreceived"};
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++)
        assert_true(json_equal(json_object_get(ev, attrs[i]), json_object_get(shallow, attrs[i])) ||
                    (!json_object_get(ev, attrs[i]) && !json_object_get(shallow, attrs[i])));
    free(kept);
    free(want);
    json_decref(ev);
    json_decref(full);
    json_decref(shallow);
    return 1;
}

/* Every expected event of every vector, as the Worker would push it: whole,
 * and without the synccf attributes that validation then adds. */
static void test_push_vectors(void **state)
{
    (void)state;
    DIR *d = opendir("tests/vectors");
    assert_non_null(d);
    struct dirent *de;
    int kept = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
        char path[512];
        snprintf(path, sizeof path, "tests/vectors/%s", de->d_name);
        json_t *v = load_json(path);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(v, "expected"), i, e) {
            for (int drop = 0; drop < 4; drop++) {
                json_t *c = json_deep_copy(e);
                if (drop & 1) json_object_del(c, "synccfvia");
                if (drop & 2) json_object_del(c, "synccfreceived");
                char *t = event_dump(c);
                kept += check_push(t, strlen(t));
                free(t);
                json_decref(c);
            }
        }
        json_decref(v);
    }
    closedir(d);
    assert_true(kept > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_vector_lines), cmocka_unit_test(test_edges),
                                       cmocka_unit_test(test_push_vectors),
                                       cmocka_unit_test(test_quote)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
