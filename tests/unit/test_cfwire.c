/* test_cfwire.c -- the `cloudflare:` configuration section (full, under
 * xplat.yaml's sync.cloudflare, bad values with file, line and key), the
 * Pages projects the handlers imply, the env-file parser and the xplat
 * fallbacks, and the reader of Cloudflare's list answers. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/cfwire.h"
#include "../../lib/config.h"
#include "../../lib/envfile.h"
#include "testutil.h"

static char path[256];

static void write_cfg(const char *text)
{
    snprintf(path, sizeof path, "/tmp/synccf-cfwire-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char full[] =
    "worker_url: https://synccf.example.workers.dev\n"
    "handlers:\n"
    "  - name: site\n"
    "    match:\n"
    "      type: com.cloudflare.pages.deployment.success\n"
    "      subject: marketing-site\n"
    "      data: { data.environment: ENVIRONMENT_PREVIEW }\n"
    "    task_cache: { dir: /srv/site }\n"
    "  - name: any-pages\n"
    "    match: { type: 'com.cloudflare.pages.*', subject: 'docs-*' }\n" /* a glob names no project */
    "    exec: { argv: [/bin/true] }\n"
    "cloudflare:\n"
    "  target: https://hooks.example.com/\n"
    "  target_max_body: 32M\n"
    "  pages:\n"
    "    - shop\n"
    "    - project: blog\n"
    "      environments: [production]\n"
    "      events: [failed, started]\n"
    "  alerts:\n"
    "    - type: dos_attack_l7\n"
    "      name: ddos\n"
    "      filters: { zones: [023e105f4ecef8ad9ca31a8372d0c353], enabled: 'true' }\n"
    "  logpush:\n"
    "    - dataset: workers_trace_events\n"
    "      fields: [Event, Outcome]\n"
    "      max_upload_bytes: 20M\n"
    "      max_upload_records: 5000\n"
    "      max_upload_interval: 1m\n"
    "    - dataset: http_requests\n"
    "      zone_id: 023e105f4ecef8ad9ca31a8372d0c353\n"
    "      filter: '{\"where\":{\"key\":\"EdgeResponseStatus\",\"operator\":\"geq\",\"value\":500}}'\n"
    "  subscriptions:\n"
    "    - source: workersBuilds.worker\n"
    "      worker_name: my-worker\n"
    "      events: [build.succeeded]\n";

static void test_full_section(void **st)
{
    (void)st;
    write_cfg(full);
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, err, sizeof err), 0);
    const struct cfwire_config *w = c.cloudflare;
    assert_non_null(w);
    assert_string_equal(w->target, "https://hooks.example.com");
    assert_int_equal(w->target_max, 32u << 20);
    assert_int_equal(w->npages, 2);
    assert_string_equal(w->pages[0].project, "shop");
    assert_int_equal(w->pages[0].envs, 0);
    assert_int_equal(w->pages[1].envs, CFWIRE_ENV_PRODUCTION);
    assert_int_equal(w->pages[1].events, CFWIRE_EV_FAILED | CFWIRE_EV_STARTED);
    assert_int_equal(w->nalerts, 1);
    assert_string_equal(w->alerts[0].name, "ddos");
    assert_string_equal(json_string_value(json_array_get(json_object_get(w->alerts[0].filters, "enabled"), 0)), "true");
    assert_int_equal(w->nlogpush, 2);
    assert_int_equal(w->logpush[0].max_upload_bytes, 20u << 20);
    assert_int_equal(w->logpush[0].max_upload_records, 5000);
    assert_int_equal(w->logpush[0].max_upload_interval_s, 60);
    assert_string_equal(w->logpush[0].fields[1], "Outcome");
    assert_null(w->logpush[0].zone_id);
    assert_string_equal(w->logpush[1].zone_id, "023e105f4ecef8ad9ca31a8372d0c353");
    assert_int_equal(w->nsubs, 1);
    assert_string_equal(w->subs[0].resource, "my-worker");

    /* The handler on marketing-site's preview successes adds that project. */
    json_t *j = cfwire_config_json(&c);
    json_t *pages = json_object_get(j, "pages");
    assert_int_equal(json_array_size(pages), 3);
    json_t *m = json_array_get(pages, 2);
    assert_string_equal(json_string_value(json_object_get(m, "project")), "marketing-site");
    assert_int_equal(json_array_size(json_object_get(m, "environment")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(m, "environment"), 0)), "ENVIRONMENT_PREVIEW");
    assert_string_equal(json_string_value(json_array_get(json_object_get(m, "event"), 0)), "EVENT_DEPLOYMENT_SUCCESS");
    json_decref(j);
    config_free(&c);
}

static void test_from_handlers_off_and_xplat(void **st)
{
    (void)st;
    write_cfg("project: demo\n"
              "sync:\n"
              "  cloudflare:\n"
              "    handlers:\n"
              "      - name: site\n"
              "        match: { subject: marketing-site }\n"
              "        task_cache: { dir: /srv/site }\n"
              "    cloudflare:\n"
              "      pages_from_handlers: false\n"
              "      pages: [shop]\n");
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, err, sizeof err), 0);
    json_t *j = cfwire_config_json(&c);
    assert_int_equal(json_array_size(json_object_get(j, "pages")), 1);
    json_decref(j);
    c.cloudflare->pages_from_handlers = 1; /* a task-cache rule on a literal subject is a Pages project */
    j = cfwire_config_json(&c);
    assert_int_equal(json_array_size(json_object_get(j, "pages")), 2);
    json_decref(j);
    config_free(&c);
}

static void test_bad_sections(void **st)
{
    (void)st;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"cloudflare:\n  bogus: 1\n", ":2: key 'cloudflare.bogus': unknown key"},
        {"cloudflare:\n  target: ftp://x\n", ":2: key 'cloudflare.target': expected an http(s):// URL"},
        {"cloudflare:\n  pages:\n    - project: Not_A_Project\n", "key 'cloudflare.pages.project'"},
        {"cloudflare:\n  pages:\n    - project: a\n      environments: [staging]\n", ":4: key 'cloudflare.pages.environments': 'staging'"},
        {"cloudflare:\n  pages:\n    - project: a\n      events: [done]\n", "expected started, success or failed"},
        {"cloudflare:\n  alerts:\n    - name: x\n", ":3: key 'cloudflare.alerts': type is required"},
        {"cloudflare:\n  alerts:\n    - type: pages_event_alert\n", "set with cloudflare.pages"},
        {"cloudflare:\n  alerts:\n    - type: dos_attack_l7\n      filters: [a]\n", "expected a mapping of lists"},
        {"cloudflare:\n  logpush:\n    - dataset: http_requests\n      max_upload_bytes: 2M\n", ":4: key 'cloudflare.logpush.max_upload_bytes'"},
        {"cloudflare:\n  logpush:\n    - dataset: http_requests\n      max_upload_interval: 5s\n", "from 30s to 300s"},
        {"cloudflare:\n  logpush:\n    - dataset: http_requests\n      filter: 'not json'\n", "Logpush filter JSON"},
        {"cloudflare:\n  logpush:\n    - dataset: http_requests\n      zone_id: nothex\n", "is not a zone id"},
        {"cloudflare:\n  logpush:\n    - dataset: a\n    - dataset: a\n", "listed twice"},
        {"cloudflare:\n  logpush:\n    - fields: [a]\n", "dataset is required"},
        {"cloudflare:\n  subscriptions:\n    - source: pages\n      events: [x]\n", "key 'cloudflare.subscriptions.source'"},
        {"cloudflare:\n  subscriptions:\n    - source: kv\n", "at least one event type"},
        {"cloudflare: [1]\n", "expected a mapping"},
        {"cloudflare:\n  target_max_body: 1M\n", "at least 5000000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_cfg(bad[i].text);
        struct config c;
        char err[512] = "";
        config_defaults(&c);
        int rc = config_load(&c, path, err, sizeof err);
        if (rc == 0 || !strstr(err, bad[i].want)) fail_msg("case %zu: rc=%d err='%s' want '%s'", i, rc, err, bad[i].want);
        assert_non_null(strstr(err, path));
        config_free(&c);
    }
}

struct seen {
    char keys[16][64], vals[16][256];
    int n;
};

static int collect(const char *k, const char *v, void *arg)
{
    struct seen *s = arg;
    if (s->n < 16) {
        snprintf(s->keys[s->n], sizeof s->keys[0], "%s", k);
        snprintf(s->vals[s->n], sizeof s->vals[0], "%s", v);
        s->n++;
    }
    return 0;
}

static void test_envfile(void **st)
{
    (void)st;
    static const char text[] = "# xplat's .env\n"
                               "\n"
                               "CF_API_TOKEN=abc123\n"
                               "export CF_ACCOUNT_ID=\"9035f5\"   # quoted\n"
                               "  SPACED = value with spaces  \n"
                               "SINGLE='lit $HOME \\n'\n"
                               "DOUBLE=\"a\\\"b\\\\c\\nd\"\n"
                               "URL=https://x.example.com/#frag # comment\n"
                               "EMPTY=\n"
                               "MULTI=\"line1\nline2\"\n"
                               "CONT=one\\\ntwo\n"
                               "; systemd comment\n"
                               "LAST=x";
    struct seen s = {0};
    char err[256] = "";
    assert_int_equal(envfile_parse(text, strlen(text), collect, &s, err, sizeof err), 0);
    static const char *const want[][2] = {
        {"CF_API_TOKEN", "abc123"}, {"CF_ACCOUNT_ID", "9035f5"}, {"SPACED", "value with spaces"}, {"SINGLE", "lit $HOME \\n"},
        {"DOUBLE", "a\"b\\c\nd"},   {"URL", "https://x.example.com/#frag"}, {"EMPTY", ""}, {"MULTI", "line1\nline2"},
        {"CONT", "onetwo"},         {"LAST", "x"},
    };
    assert_int_equal(s.n, (int)(sizeof want / sizeof *want));
    for (int i = 0; i < s.n; i++) {
        assert_string_equal(s.keys[i], want[i][0]);
        assert_string_equal(s.vals[i], want[i][1]);
    }
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"A=1\nB=\"open\n", "line 2: B: unterminated double quote"},
        {"A=1\n=x\n", "line 2: expected KEY=value"},
        {"1A=x\n", "line 1: expected KEY=value"},
        {"A x\n", "line 1: expected '=' after A"},
        {"A='x' trailing\n", "line 1: A: unexpected text after the closing quote"},
        {"A=\"a\\\nb\"\nC=\"x\n", "line 3: C: unterminated"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        int rc = envfile_parse(bad[i].text, strlen(bad[i].text), NULL, NULL, err, sizeof err);
        if (rc == 0 || !strstr(err, bad[i].want)) fail_msg("case %zu: rc=%d err='%s' want '%s'", i, rc, err, bad[i].want);
    }
    /* A NUL inside a value is refused, not cut short silently. */
    assert_int_equal(envfile_parse("A=x\0y\n", 6, NULL, NULL, err, sizeof err), -1);
}

static void test_fallbacks(void **st)
{
    (void)st;
    unsetenv("CLOUDFLARE_API_TOKEN");
    setenv("CLOUDFLARE_ACCOUNT_ID", "own", 1);
    setenv("CF_API_TOKEN", "from-xplat", 1);
    setenv("CF_ACCOUNT_ID", "xplat-account", 1);
    unsetenv("SYNCCF_LISTEN");
    setenv("CLOUDFLARE_RECEIVER_PORT", "8788", 1);
    env_xplat_fallbacks();
    assert_string_equal(getenv("CLOUDFLARE_API_TOKEN"), "from-xplat");
    assert_string_equal(getenv("CLOUDFLARE_ACCOUNT_ID"), "own"); /* synccf's own name wins */
    assert_string_equal(getenv("SYNCCF_LISTEN"), "127.0.0.1:8788");
    const char *const *u = env_fallbacks_used();
    assert_string_equal(u[0], "CLOUDFLARE_API_TOKEN");
    assert_string_equal(u[1], "CF_API_TOKEN");
    int n = 0;
    while (u[n]) n++;
    assert_int_equal(n, 4);
    unsetenv("CLOUDFLARE_API_TOKEN");
    unsetenv("CLOUDFLARE_ACCOUNT_ID");
    unsetenv("CF_API_TOKEN");
    unsetenv("CF_ACCOUNT_ID");
    unsetenv("SYNCCF_LISTEN");
    unsetenv("CLOUDFLARE_RECEIVER_PORT");
}

static void test_parse_list(void **st)
{
    (void)st;
    const char *body = "{\"success\":true,\"errors\":[],\"messages\":[],\"result\":[{\"id\":\"1\",\"name\":\"synccf-pages-x\"},"
                       "{\"id\":\"2\",\"name\":\"theirs\"},{\"id\":3},\"junk\"]}";
    json_t *l = cfwire_parse_list(body, strlen(body));
    assert_non_null(l);
    assert_int_equal(json_array_size(l), 1); /* only ours */
    json_decref(l);
    assert_null(cfwire_parse_list("{\"success\":false,\"result\":[]}", 29));
    assert_null(cfwire_parse_list("{\"success\":true,\"result\":{}}", 28));
    assert_null(cfwire_parse_list("nope", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_section),
        cmocka_unit_test(test_from_handlers_off_and_xplat),
        cmocka_unit_test(test_bad_sections),
        cmocka_unit_test(test_envfile),
        cmocka_unit_test(test_fallbacks),
        cmocka_unit_test(test_parse_list),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    return rc;
}
