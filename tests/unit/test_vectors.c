/* test_vectors.c -- runs every shared vector in tests/vectors/ through the C
 * normalizers and requires byte-for-byte the expected events. The Worker's
 * test suite runs the same files. */
#include <dirent.h>
#include <jansson.h>
#include <string.h>

#include "../../lib/event.h"
#include "../../lib/jsonx.h"
#include "../../lib/logpush.h"
#include "../../lib/normalize.h"
#include "../../lib/util.h"
#include "testutil.h"

#define VDIR "tests/vectors"

struct collect {
    json_t *events;
    const char *dataset;
    struct norm_opts o;
    int rejected;
};

static int on_line(void *arg, const char *line, size_t len, unsigned long lineno)
{
    (void)lineno;
    struct collect *c = arg;
    json_t *ev;
    char err[160];
    int k = norm_logpush_line(c->dataset, line, len, &c->o, &ev, err, sizeof err);
    if (k < 0) c->rejected++;
    if (k > 0) json_array_append_new(c->events, ev);
    return 0;
}

static void run_vector(void **state)
{
    const char *file = *state;
    char path[512];
    snprintf(path, sizeof path, VDIR "/%s", file);
    json_error_t jerr;
    /* Vectors may hold integers past 64 bits: read as the daemon reads. */
    size_t vlen = 0;
    char *vtext = read_file(path, &vlen);
    assert_non_null(vtext);
    json_t *v = jx_loadb(vtext, vlen, 0, &jerr);
    free(vtext);
    if (!v) fail_msg("%s: %s", file, jerr.text);
    const char *kind = json_string_value(json_object_get(v, "kind"));
    const char *received = json_string_value(json_object_get(v, "received"));
    assert_non_null(kind);
    snprintf(path, sizeof path, VDIR "/%s", json_string_value(json_object_get(v, "input")));
    size_t len = 0;
    char *raw = read_file(path, &len);
    assert_non_null(raw);

    struct collect c = {.events = json_array()};
    c.o.via = json_string_value(json_object_get(v, "via"));
    assert_int_equal(time_parse_rfc3339(received, &c.o.received_ms), 0);

    if (strcmp(kind, "logpush") == 0) {
        c.dataset = json_string_value(json_object_get(v, "dataset"));
        struct lp_reader r;
        lp_init(&r, on_line, &c, 1u << 30, 1u << 20);
        /* Feed in small pieces: the reader must not depend on chunking. */
        for (size_t off = 0; off < len; off += 7) assert_int_equal(lp_feed(&r, raw + off, len - off < 7 ? len - off : 7), 0);
        assert_int_equal(lp_finish(&r), 0);
        lp_free(&r);
    } else {
        json_t *body = jx_loadb(raw, len, 0, &jerr);
        if (!body) fail_msg("%s: %s", file, jerr.text);
        json_t *ev = NULL;
        const char *err = NULL;
        size_t bad = 0;
        if (strcmp(kind, "notification") == 0) ev = norm_notification(body, &c.o);
        else if (strcmp(kind, "generic") == 0)
            ev = norm_generic(json_string_value(json_object_get(v, "name")), raw, len, body, &c.o);
        else if (strcmp(kind, "audit") == 0) {
            int v2 = json_integer_value(json_object_get(v, "version")) == 2;
            size_t i;
            json_t *e;
            json_array_foreach(json_object_get(body, "result"), i, e) {
                json_t *x = norm_audit(e, v2, &c.o);
                if (x) json_array_append_new(c.events, x);
            }
        } else if (strcmp(kind, "queue") == 0) {
            size_t i;
            json_t *m;
            json_array_foreach(json_object_get(json_object_get(body, "result"), "messages"), i, m) {
                json_t *b = json_loads(json_string_value(json_object_get(m, "body")), 0, NULL);
                json_t *x = norm_evsub(b, json_string_value(json_object_get(m, "id")), &c.o);
                if (x) json_array_append_new(c.events, x);
                json_decref(b);
            }
        } else if (strcmp(kind, "pages") == 0) {
            size_t i;
            json_t *d;
            json_array_foreach(json_object_get(body, "result"), i, d) {
                json_t *x;
                int k = norm_pages_deployment(d, json_string_value(json_object_get(v, "account")), &c.o, &x);
                if (k > 0) json_array_append_new(c.events, x);
                if (k < 0) c.rejected++;
            }
        } else if (strcmp(kind, "xplat") == 0) {
            assert_true(norm_xplat(body, &c.o, c.events, &bad, &err) >= 0);
            c.rejected = (int)bad;
        } else if (strcmp(kind, "cloudevents") == 0) {
            /* Each candidate is accepted as expected or refused with the
             * vector's message, which names the attribute. */
            json_t *verdicts = json_object_get(v, "verdicts");
            assert_int_equal(json_array_size(verdicts), json_array_size(body));
            size_t i;
            json_t *e;
            json_array_foreach(body, i, e) {
                json_t *want_err = json_object_get(json_array_get(verdicts, i), "error");
                json_t *x = json_deep_copy(e);
                const char *why = event_accept(x, &c.o);
                if (json_is_null(want_err) && why) fail_msg("%s case %zu refused: %s", file, i, why);
                if (json_is_string(want_err) && (!why || strcmp(why, json_string_value(want_err)) != 0))
                    fail_msg("%s case %zu: got %s, want %s", file, i, why ? why : "accepted", json_string_value(want_err));
                if (why) c.rejected++;
                else json_array_append(c.events, x);
                json_decref(x);
            }
        } else fail_msg("unknown vector kind %s", kind);
        if (ev) json_array_append_new(c.events, ev);
        json_decref(body);
    }

    json_t *want = json_object_get(v, "expected");
    assert_int_equal(json_array_size(c.events), json_array_size(want));
    assert_int_equal(c.rejected, json_integer_value(json_object_get(v, "rejected")));
    for (size_t i = 0; i < json_array_size(want); i++) {
        char *a = event_dump(json_array_get(c.events, i));
        char *b = event_dump(json_array_get(want, i));
        if (strcmp(a, b) != 0) fail_msg("%s event %zu\n got: %s\nwant: %s", file, i, a, b);
        free(a);
        free(b);
    }
    json_decref(c.events);
    json_decref(v);
    free(raw);
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }
static int is_vector(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

int main(void)
{
    struct dirent **names;
    int n = scandir(VDIR, &names, is_vector, by_name);
    if (n <= 0) {
        fprintf(stderr, "no vectors in " VDIR " (run from the project root)\n");
        return 1;
    }
    struct CMUnitTest *tests = calloc((size_t)n, sizeof *tests);
    for (int i = 0; i < n; i++) {
        tests[i].name = strdup(names[i]->d_name);
        tests[i].test_func = run_vector;
        tests[i].initial_state = (void *)tests[i].name;
        free(names[i]);
    }
    free(names);
    int rc = _cmocka_run_group_tests("vectors", tests, (size_t)n, NULL, NULL);
    for (int i = 0; i < n; i++) free((void *)tests[i].name);
    free(tests);
    return rc;
}
