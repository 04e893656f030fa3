/* test_route.c -- routing: which live handlers an event reaches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/config.h"
#include "../../lib/jsonx.h"
#include "../../lib/route.h"
#include "testutil.h"

static char path[256];

static void write_cfg(const char *text)
{
    snprintf(path, sizeof path, "/tmp/synccf-route-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* An integer past 64 bits matches on its digits, and an empty value does not
 * match it (the parser keeps such numbers as marked strings). */
static void test_bigint_match(void **st)
{
    (void)st;
    write_cfg("handlers:\n"
              "  - name: big\n"
              "    match: { data: { id: \"123456789012345678901234567890\" } }\n"
              "    exec: { argv: [/bin/true] }\n"
              "  - name: empty\n"
              "    match: { data: { id: \"\" } }\n"
              "    exec: { argv: [/bin/true] }\n");
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    if (config_load(&c, path, err, sizeof err)) fail_msg("%s", err);
    router_publish_config(&c, 0);
    json_error_t je;
    json_t *ev = jx_loads("{\"type\":\"t\",\"data\":{\"id\":123456789012345678901234567890}}", 0, &je);
    assert_non_null(ev);
    const char **r = router_route(&c.router, ev);
    assert_non_null(r);
    assert_string_equal(r[0], "big");
    assert_null(r[1]);
    free(r);
    json_decref(ev);
    config_free(&c);
    unlink(path);
}

/* Reload replaces the set; a name of the old set is no longer found. */
static void test_reload(void **st)
{
    (void)st;
    write_cfg("handlers:\n  - name: one\n    exec: { argv: [/bin/true] }\n");
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    if (config_load(&c, path, err, sizeof err)) fail_msg("%s", err);
    router_publish_config(&c, 0);
    assert_non_null(router_handler(&c.router, "one"));
    write_cfg("handlers:\n  - name: two\n    exec: { argv: [/bin/true] }\n");
    if (router_reload(&c.router, c.file, err, sizeof err)) fail_msg("%s", err);
    assert_null(router_handler(&c.router, "one"));
    assert_non_null(router_handler(&c.router, "two"));
    assert_int_equal(router_has_handlers(&c.router), 1);
    config_free(&c);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bigint_match),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
