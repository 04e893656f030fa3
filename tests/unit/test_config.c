/* test_config.c -- the YAML configuration: a full file, xplat.yaml's section,
 * secrets from the environment and files, routing, and a table of bad files
 * whose errors must name the file, line and key. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "../../include/synccf.h"
#include "../../lib/config.h"
#include "../../lib/jsonx.h"
#include "testutil.h"

static char path[256];

static void write_cfg(const char *text)
{
    snprintf(path, sizeof path, "/tmp/synccf-config-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_full_file(void **st)
{
    (void)st;
    char secret_file[300];
    snprintf(secret_file, sizeof secret_file, "/tmp/synccf-secret-%d", (int)getpid());
    FILE *f = fopen(secret_file, "w");
    fputs("from-a-file\n", f);
    fclose(f);
    setenv("TEST_PUSH_SECRET", "whsec_c2VjcmV0", 1);
    char text[2048];
    snprintf(text, sizeof text,
             "mode: worker\n"
             "state: /var/lib/synccf\n"
             "listen: 127.0.0.1:9999\n"
             "push_secret: ${TEST_PUSH_SECRET}\n"
             "notify_secret_file: %s\n"
             "logpush_filters: [\"http_requests.EdgeResponseStatus=5*\"]\n"
             "pages_projects: [marketing-site, docs]\n"
             "limits: { max_body: 2M, timeout: 10s, threads: 3, max_connections_per_ip: 16 }\n"
             "dispatch: { max_attempts: 3, backoff: 250ms, max_backoff: 1m, concurrency: 2 }\n"
             "handlers:\n"
             "  - name: site\n"
             "    match:\n"
             "      type: com.cloudflare.pages.deployment.*\n"
             "      subject: marketing-*\n"
             "      data: { data.environment: ENVIRONMENT_PRODUCTION }\n"
             "    task_cache: { dir: /srv/site, tasks: [build, deploy], hosts: [docs.example.com], method: timestamp, generates: [dist/*],\n"
             "                  remote_cache_dir: ~/.cache/task, taskfile: ci/Taskfile.yml, includes: [shared],\n"
             "                  env: { TASK_TEMP_DIR: /var/tmp/task, HOME: /home/ci } }\n"
             "  - name: hook\n"
             "    exec: { argv: [/usr/bin/logger, -t, synccf], timeout: 5s, cwd: /tmp }\n",
             secret_file);
    write_cfg(text);
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    int rc = config_load(&c, path, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_string_equal(mode_name(c.mode), "worker");
    assert_string_equal(c.state_dir, "/var/lib/synccf");
    assert_string_equal(c.push_secret, "whsec_c2VjcmV0");
    assert_string_equal(c.notify_secret, "from-a-file");
    assert_string_equal(c.filters[0], "http_requests.EdgeResponseStatus=5*");
    assert_string_equal(c.pages_projects[1], "docs");
    assert_null(c.pages_projects[2]);
    assert_int_equal(c.limits.max_body, 2u << 20);
    assert_int_equal(c.limits.timeout_s, 10);
    assert_int_equal(c.limits.threads, 3);
    assert_int_equal(c.limits.max_connections_per_ip, 16);
    assert_int_equal(c.max_attempts, 3);
    assert_int_equal(c.backoff_ms, 250);
    assert_int_equal(c.max_backoff_ms, 60000);
    assert_int_equal(c.nhandlers, 2);
    assert_int_equal(c.handlers[0].kind, HANDLER_TASK_CACHE);
    assert_int_equal(c.handlers[0].tc.remote, 1);
    assert_int_equal(c.handlers[0].tc.method, TASKCACHE_TIMESTAMP);
    assert_string_equal(c.handlers[0].tc.tasks[1], "deploy");
    assert_null(c.handlers[0].tc.tasks[2]);
    assert_string_equal(c.handlers[0].tc.remote_cache_dir, "~/.cache/task"); /* go-task expands it, with the rule's HOME */
    assert_string_equal(c.handlers[0].tc.taskfile, "ci/Taskfile.yml");
    assert_string_equal(c.handlers[0].tc.includes[0], "shared");
    assert_string_equal(c.handlers[0].tc.env[0], "TASK_TEMP_DIR=/var/tmp/task");
    assert_string_equal(c.handlers[0].tc.env[1], "HOME=/home/ci");
    assert_null(c.handlers[0].tc.env[2]);
    assert_int_equal(c.handlers[1].kind, HANDLER_EXEC);
    assert_string_equal(c.handlers[1].ex.argv[2], "synccf");
    assert_int_equal(c.handlers[1].ex.timeout_ms, 5000);

    /* routing */
    router_publish_config(&c, 0);
    json_t *ev = json_pack("{s:s,s:s,s:{s:{s:s}}}", "type", "com.cloudflare.pages.deployment.success", "subject",
                   "marketing-site", "data", "data", "environment", "ENVIRONMENT_PRODUCTION");
    const char **r = router_route(&c.router, ev);
    assert_non_null(r);
    assert_string_equal(r[0], "site");
    assert_string_equal(r[1], "hook");
    assert_null(r[2]);
    free(r);
    json_object_set_new(ev, "subject", json_string("docs"));
    r = router_route(&c.router, ev);
    assert_string_equal(r[0], "hook");
    assert_null(r[1]);
    free(r);
    json_decref(ev);
    config_free(&c);
    unlink(secret_file);
}

static void test_xplat_yaml(void **st)
{
    (void)st;
    write_cfg("tasks: { anything: goes }\n"
              "sync:\n"
              "  cloudflare:\n"
              "    mode: hybrid\n"
              "    worker_url: https://sync.example.workers.dev\n");
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, err, sizeof err), 0);
    assert_string_equal(mode_name(c.mode), "hybrid");
    assert_string_equal(c.worker_url, "https://sync.example.workers.dev");
    config_free(&c);
}

static void test_bad_files(void **st)
{
    (void)st;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"bogus: 1\n", ":1: key 'bogus': unknown key"},
        {"mode: sideways\n", ":1: key 'mode': expected worker, queue, tunnel, poll or hybrid"},
        {"limits:\n  max_body: lots\n", ":2: key 'max_body': expected a size"},
        {"limits:\n  threads: 0\n", ":2: key 'threads': expected a whole number in 1..64"},
        {"limits:\n  max_connections_per_ip: -1\n", ":2: key 'max_connections_per_ip': expected a whole number in 0..100000"},
        {"dispatch:\n  backoff: soon\n", ":2: key 'backoff': expected a duration"},
        {"push_secret: ${SYNCCF_TEST_UNSET_VAR}\n", ":1: key 'push_secret': environment variable SYNCCF_TEST_UNSET_VAR is not set"},
        {"hook_token_file: /nonexistent/file\n", ":1: key 'hook_token_file': cannot read /nonexistent/file"},
        {"handlers:\n  - match: { type: x }\n    exec: { argv: [/bin/true] }\n", ":2: key 'handlers': every handler needs a name"},
        {"handlers:\n  - name: Bad Name\n    exec: { argv: [/bin/true] }\n", ":2: key 'name': handler names are"},
        {"handlers:\n  - name: x\n    match: { type: a }\n", ":2: key 'x': needs task_cache or exec"},
        {"handlers:\n  - name: x\n    exec: { argv: [a] }\n    task_cache: { dir: /a }\n", ":4: key 'task_cache': a handler has one of"},
        {"handlers:\n  - name: x\n    task_cache: { dir: rel }\n", ":3: key 'dir': must be an absolute path"},
        {"handlers:\n  - name: x\n    task_cache: { dir: /a, method: fast }\n", ":3: key 'method': expected checksum or timestamp"},
        {"handlers:\n  - name: x\n    task_cache: { dir: /a, env: { A-B: 1 } }\n", ":3: key 'A-B': not an environment variable name"},
        {"handlers:\n  - name: x\n    task_cache: { dir: /a, env: [TASK_TEMP_DIR] }\n", ":3: key 'env': expected a mapping"},
        {"handlers:\n  - name: x\n    exec: { timeout: 1s }\n", ":3: key 'exec': argv is required"},
        {"handlers:\n  - name: x\n    exec: { argv: [a] }\n  - name: x\n    exec: { argv: [b] }\n", ":4: key 'x': handler name used twice"},
        {"handlers:\n  - name: x\n    match: { color: red }\n    exec: { argv: [a] }\n", ":3: key 'color': unknown key"},
        {"sync:\n  other: 1\n", ":2: key 'sync': has no cloudflare section"},
        {"pages_projects: [ok, ../etc]\n", ":1: key 'pages_projects': '../etc' is not a Pages project name"},
        {"pages_projects: marketing-site\n", ":1: key 'pages_projects': expected a list"},
        {"poll_audit: sometimes\n", ":1: key 'poll_audit': expected true or false"},
        {"mode: [a\n", ":2: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_cfg(cases[i].text);
        struct config c;
        char err[512] = "";
        config_defaults(&c);
        if (config_load(&c, path, err, sizeof err) == 0) fail_msg("accepted case %zu", i);
        if (strncmp(err, path, strlen(path)) != 0 || !strstr(err, cases[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, err, cases[i].want);
        config_free(&c);
    }
}

/* The commented example shipped in examples/ must stay loadable. */
static void test_example_file(void **st)
{
    (void)st;
    setenv("SYNCCF_PUSH_SECRET", "whsec_c2VjcmV0", 1);
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    int rc = config_load(&c, "examples/synccf.yaml", err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_int_equal(c.nhandlers, 2);
    config_free(&c);
}

/* examples/process-compose.yaml: synccf run with probes on /readyz and /healthz. */
static const char *pc_get(yaml_document_t *d, yaml_node_t *n, const char *at)
{
    char key[64];
    while (n && *at) {
        size_t k = strcspn(at, ".");
        snprintf(key, sizeof key, "%.*s", (int)k, at);
        yaml_node_t *next = NULL;
        if (n->type == YAML_MAPPING_NODE)
            for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
                yaml_node_t *kn = yaml_document_get_node(d, p->key);
                if (kn->type == YAML_SCALAR_NODE && strcmp((char *)kn->data.scalar.value, key) == 0)
                    next = yaml_document_get_node(d, p->value);
            }
        n = next;
        at += k + (at[k] == '.');
    }
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static void test_process_compose_example(void **st)
{
    (void)st;
    FILE *f = fopen("examples/process-compose.yaml", "rb");
    assert_non_null(f);
    yaml_parser_t p;
    yaml_document_t d;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    assert_true(yaml_parser_load(&p, &d));
    yaml_node_t *root = yaml_document_get_root_node(&d);
    assert_non_null(strstr(pc_get(&d, root, "processes.synccf.command"), "synccf --config synccf.yaml run"));
    assert_string_equal(pc_get(&d, root, "processes.synccf.readiness_probe.http_get.path"), "/readyz");
    assert_string_equal(pc_get(&d, root, "processes.synccf.readiness_probe.http_get.port"), "9091");
    assert_string_equal(pc_get(&d, root, "processes.synccf.liveness_probe.http_get.path"), "/healthz");
    assert_string_equal(pc_get(&d, root, "processes.dev-server.depends_on.synccf.condition"), "process_healthy");
    yaml_document_delete(&d);
    yaml_parser_delete(&p);
    fclose(f);
}

/* flag > environment > file > default, through one set of checks. */
static void test_precedence(void **st)
{
    (void)st;
    write_cfg("dispatch: { max_attempts: 5, backoff: 2s }\nlimits: { threads: 3 }\n");
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    assert_int_equal(c.max_attempts, 8); /* default */
    assert_int_equal(config_load(&c, path, err, sizeof err), 0);
    assert_int_equal(c.max_attempts, 5); /* file */
    setenv("SYNCCF_DISPATCH_MAX_ATTEMPTS", "7", 1);
    assert_int_equal(config_env_all(&c, err, sizeof err), 0);
    assert_int_equal(c.max_attempts, 7); /* environment */
    assert_int_equal(config_set(&c, config_flag_key("--dispatch-max-attempts"), "9", "--dispatch-max-attempts", err, sizeof err), 0);
    assert_int_equal(c.max_attempts, 9); /* flag */
    assert_int_equal(c.backoff_ms, 2000);
    assert_int_equal(c.limits.threads, 3);
    assert_string_equal(config_flag_key("--limits-max-body"), "limits.max_body");
    assert_string_equal(config_flag_key("--poll-interval"), "poll_interval");
    assert_null(config_flag_key("--handlers"));
    /* Secrets never as flags (ps shows argv); their *_file paths are fine. */
    assert_null(config_flag_key("--push-secret"));
    assert_null(config_flag_key("--api-token"));
    assert_string_equal(config_flag_key("--push-secret-file"), "push_secret_file");
    assert_int_equal(c.metrics_max_series, 200); /* default */
    setenv("SYNCCF_METRICS_MAX_SERIES", "50", 1);
    assert_int_equal(config_env_all(&c, err, sizeof err), 0);
    unsetenv("SYNCCF_METRICS_MAX_SERIES");
    assert_int_equal(c.metrics_max_series, 50);
    assert_string_equal(config_flag_key("--metrics-max-series"), "metrics.max_series");
    assert_int_equal(config_set(&c, "metrics.max_series", "0", "--metrics-max-series", err, sizeof err), -1);
    assert_non_null(strstr(err, "key 'max_series': expected a whole number in 1..100000"));
    assert_int_equal(config_set(&c, "status_page", "off", "--status-page", err, sizeof err), 0);
    assert_int_equal(c.status_page, 0);
    setenv("SYNCCF_DISPATCH_MAX_ATTEMPTS", "lots", 1);
    assert_int_equal(config_env_all(&c, err, sizeof err), -1);
    assert_string_equal(err, "SYNCCF_DISPATCH_MAX_ATTEMPTS: key 'max_attempts': expected a whole number in 1..1000");
    unsetenv("SYNCCF_DISPATCH_MAX_ATTEMPTS");
    assert_int_equal(config_set(&c, "limits.timeout", "soon", "--limits-timeout", err, sizeof err), -1);
    assert_non_null(strstr(err, "--limits-timeout: key 'timeout'"));
    config_free(&c);
}

/* synccf_set (the flags' path) checks values as the file does. */
static void test_synccf_set(void **st)
{
    (void)st;
    char err[512] = "";
    synccf *s = synccf_open(NULL, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(synccf_set(s, "failover_after", "2m", err, sizeof err), 0);
    assert_int_equal(synccf_set(s, "max_connections_per_ip", "0", err, sizeof err), 0);
    assert_int_equal(synccf_set(s, "status_page", "no", err, sizeof err), 0);
    assert_int_equal(synccf_set(s, "timeout", "30", err, sizeof err), 0);
    assert_int_equal(synccf_set(s, "threads", "100", err, sizeof err), -1);
    assert_non_null(strstr(err, "expected a whole number in 1..64"));
    assert_int_equal(synccf_set(s, "max_body", "lots", err, sizeof err), -1);
    assert_non_null(strstr(err, "expected a size"));
    assert_int_equal(synccf_set(s, "mode", "sideways", err, sizeof err), -1);
    assert_int_equal(synccf_set(s, "pages_project", "Not A Project", err, sizeof err), -1);
    synccf_close(s);
}

/* No mode set: worker when a Worker is configured, else tunnel. */
static void test_default_mode(void **st)
{
    (void)st;
    struct config c;
    config_defaults(&c);
    assert_string_equal(mode_name(config_mode(&c)), "tunnel");
    c.worker_url = strdup("https://synccf.example.workers.dev");
    assert_string_equal(mode_name(config_mode(&c)), "worker");
    c.mode = MODE_POLL;
    assert_string_equal(mode_name(config_mode(&c)), "poll");
    config_free(&c);
}

/* wrangler's CLOUDFLARE_API_BASE_URL ends in /client/v4; synccf adds it. */
static void test_api_base(void **st)
{
    (void)st;
    struct config c;
    char err[256];
    config_defaults(&c);
    setenv("CLOUDFLARE_API_BASE_URL", "https://api.cloudflare.com/client/v4/", 1);
    config_env(&c);
    unsetenv("CLOUDFLARE_API_BASE_URL");
    assert_string_equal(c.api_base, "https://api.cloudflare.com");
    assert_int_equal(config_set(&c, "api_base", "http://127.0.0.1:8787/client/v4", "--api-base", err, sizeof err), 0);
    assert_string_equal(c.api_base, "http://127.0.0.1:8787");
    assert_int_equal(config_set(&c, "api_base", "http://127.0.0.1:8787/", "--api-base", err, sizeof err), 0);
    assert_string_equal(c.api_base, "http://127.0.0.1:8787");
    config_free(&c);
}

static void test_parsers(void **st)
{
    (void)st;
    unsigned long long ms;
    size_t sz;
    assert_int_equal(parse_duration_ms("90", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(parse_duration_ms("5m", &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(parse_duration_ms("-1s", &ms), -1);
    assert_int_equal(parse_duration_ms("1d", &ms), -1);
    assert_int_equal(parse_size("64k", &sz), 0);
    assert_int_equal(sz, 65536);
    assert_int_equal(parse_size("0", &sz), -1);
    assert_int_equal(parse_size("1T", &sz), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_xplat_yaml),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_process_compose_example),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_synccf_set),
        cmocka_unit_test(test_default_mode),
        cmocka_unit_test(test_api_base),
        cmocka_unit_test(test_parsers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    return rc;
}
