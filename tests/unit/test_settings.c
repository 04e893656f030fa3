/* test_settings.c -- the settings table: the defaults it gives, the flags and
 * variables it derives from the keys, and that a section's key is not a
 * top-level one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/config.h"
#include "testutil.h"

static void test_defaults(void **st)
{
    (void)st;
    struct config c;
    config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:9091");
    assert_string_equal(c.api_base, "https://api.cloudflare.com");
    assert_int_equal(c.limits.max_body, 1u << 20);
    assert_int_equal(c.limits.max_logpush_body, 256u << 20);
    assert_int_equal(c.limits.max_decompressed, 1024u << 20);
    assert_int_equal(c.limits.max_connections, 512);
    assert_int_equal(c.limits.max_connections_per_ip, 0);
    assert_int_equal(c.limits.timeout_s, 30);
    assert_int_equal(c.heartbeat_s, 15);
    assert_int_equal(c.failover_ms, 120000);
    assert_int_equal(c.status_page, 1);
    assert_int_equal(c.poll_audit, 1);
    assert_int_equal(c.poll_interval_ms, 300000);
    assert_int_equal(c.queue_idle_min_ms, 1000);
    assert_int_equal(c.max_backoff_ms, 300000);
    assert_int_equal(c.metrics_max_series, 200);
    assert_int_equal(c.mode, MODE_AUTO);
    assert_null(c.state_dir);
    config_free(&c);
}

static void test_names(void **st)
{
    (void)st;
    char name[96];
    assert_string_equal(config_flag_key("--limits-max-body"), "limits.max_body");
    assert_string_equal(config_flag_key("--poll-interval"), "poll_interval");
    assert_string_equal(config_flag_key("--push-secret-file"), "push_secret_file");
    assert_null(config_flag_key("--push-secret")); /* a secret has no flag */
    assert_null(config_flag_key("limits-max-body"));
    assert_string_equal(config_setting("max_body"), "limits.max_body");
    assert_string_equal(config_setting("nonesuch"), "nonesuch");
    config_env_name("limits.max_body", name, sizeof name);
    assert_string_equal(name, "SYNCCF_LIMITS_MAX_BODY");
    assert_int_equal(config_flag_name("api_token", name, sizeof name), 0);
    assert_int_equal(config_flag_name("dispatch.backoff", name, sizeof name), 1);
    assert_string_equal(name, "--dispatch-backoff");
}

static void test_top_level_only(void **st)
{
    (void)st;
    struct config c;
    char err[256] = "";
    config_defaults(&c);
    assert_int_equal(config_set(&c, "max_body", "2M", "--max-body", err, sizeof err), -1);
    assert_string_equal(err, "--max-body: key 'max_body': unknown key");
    assert_int_equal(config_set(&c, "limits.max_body", "2M", "--limits-max-body", err, sizeof err), 0);
    assert_int_equal(c.limits.max_body, 2u << 20);
    assert_int_equal(config_set(&c, "limits.threads", "99", "--limits-threads", err, sizeof err), -1);
    assert_string_equal(err, "--limits-threads: key 'threads': expected a whole number in 1..64");
    assert_int_equal(config_set(&c, "mode", "sideways", "--mode", err, sizeof err), -1);
    assert_string_equal(err, "--mode: key 'mode': expected worker, queue, tunnel, poll or hybrid");
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_top_level_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
