/* cmd_config.c -- `synccf config check`: loads the configuration the way the
 * daemon would (file, then environment), reports the first error with its
 * file, line and key, or prints the effective settings, secrets redacted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/cfwire.h"
#include "../lib/config.h"
#include "../lib/envfile.h"
#include "cli.h"

static json_t *secret(const char *v) { return v ? json_string("(set, redacted)") : json_null(); }
static json_t *str(const char *v) { return v ? json_string(v) : json_null(); }

static json_t *list(char **l)
{
    json_t *a = json_array();
    for (char **p = l; p && *p; p++) json_array_append_new(a, json_string(*p));
    return a;
}

int cmd_config(struct cli *c, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "usage: synccf [--config FILE] config check\n");
        return EXIT_USAGE;
    }
    struct config cfg;
    if (cli_config_env(c, &cfg) != 0) return EXIT_USAGE;
    /* The directory every command uses (config_state_dir), not only the file's. */
    free(cfg.state_dir);
    if (!(cfg.state_dir = strdup(c->state_dir))) {
        fprintf(stderr, "synccf: out of memory\n");
        config_free(&cfg);
        return EXIT_RUNTIME;
    }
    json_t *h = json_array();
    for (size_t i = 0; i < cfg.nhandlers; i++) {
        const struct handler_def *d = &cfg.handlers[i];
        json_t *m = json_pack("{s:o,s:o}", "type", str(d->match_type), "subject", str(d->match_subject));
        json_t *data = json_object();
        for (size_t k = 0; k < d->nmatch_data; k++) json_object_set_new(data, d->match_data[k].path, json_string(d->match_data[k].value));
        json_object_set_new(m, "data", data);
        json_t *o = json_pack("{s:s,s:o}", "name", d->name, "match", m);
        if (d->kind == HANDLER_TASK_CACHE)
            json_object_set_new(o, "task_cache",
                                json_pack("{s:s,s:o,s:b,s:b,s:b,s:o,s:o,s:b,s:s,s:o}", "dir", d->tc.dir, "temp_dir",
                                          str(d->tc.temp_dir), "remote", d->tc.remote, "remote_all", d->tc.remote_all,
                                          "remote_checksum", d->tc.remote_checksum, "hosts", list(d->tc.hosts), "tasks",
                                          list(d->tc.tasks), "all_tasks", d->tc.all_tasks, "method",
                                          d->tc.method == TASKCACHE_TIMESTAMP ? "timestamp" : "checksum", "generates",
                                          list(d->tc.generates)));
        else
            json_object_set_new(o, "exec", json_pack("{s:o,s:I,s:o}", "argv", list(d->ex.argv), "timeout_ms",
                                                     (json_int_t)d->ex.timeout_ms, "cwd", str(d->ex.cwd)));
        if (d->kind == HANDLER_TASK_CACHE) {
            json_t *tc = json_object_get(o, "task_cache");
            json_object_set_new(tc, "remote_cache_dir", str(d->tc.remote_cache_dir));
            json_object_set_new(tc, "taskfile", str(d->tc.taskfile));
            json_object_set_new(tc, "includes", list(d->tc.includes));
            json_object_set_new(tc, "env", list(d->tc.env));
        }
        json_array_append_new(h, o);
    }
    json_t *out = json_pack(
        "{s:o,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "file", str(c->config), "mode", mode_name(config_mode(&cfg)), "state",
        cfg.state_dir, "listen", cfg.listen, "worker_url", str(cfg.worker_url), "push_secret", secret(cfg.push_secret),
        "notify_secret", secret(cfg.notify_secret), "hook_token", secret(cfg.hook_token), "pull_token",
        secret(cfg.pull_token), "api_token", secret(cfg.api_token), "account_id", str(cfg.account_id), "api_base",
        str(cfg.api_base), "queue_id", str(cfg.queue_id), "logpush_filters", list(cfg.filters));
    json_object_set_new(out, "heartbeat_s", json_integer(cfg.heartbeat_s));
    json_object_set_new(out, "status_page", json_boolean(cfg.status_page));
    json_object_set_new(out, "cloudflared", str(cfg.cloudflared));
    json_object_set_new(out, "tunnel_token", secret(cfg.tunnel_token));
    json_object_set_new(out, "notify_webhook_id", str(cfg.notify_webhook_id));
    json_object_set_new(out, "pages_projects", list(cfg.pages_projects));
    json_object_set_new(out, "poll_audit", json_boolean(cfg.poll_audit));
    json_object_set_new(out, "limits", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "max_body", (json_int_t)cfg.max_body,
                                                 "max_logpush_body", (json_int_t)cfg.max_logpush_body, "max_decompressed",
                                                 (json_int_t)cfg.max_decompressed, "max_line", (json_int_t)cfg.max_line,
                                                 "max_connections", (json_int_t)cfg.max_connections,
                                                 "max_connections_per_ip", (json_int_t)cfg.max_connections_per_ip, "timeout_s",
                                                 (json_int_t)cfg.timeout_s, "threads", (json_int_t)cfg.threads));
    json_object_set_new(out, "dispatch", json_pack("{s:I,s:I,s:I,s:I}", "max_attempts", (json_int_t)cfg.max_attempts,
                                                   "backoff_ms", (json_int_t)cfg.backoff_ms, "max_backoff_ms",
                                                   (json_int_t)cfg.max_backoff_ms, "concurrency", (json_int_t)cfg.concurrency));
    json_object_set_new(out, "poll", json_pack("{s:I,s:I,s:I,s:I}", "interval_ms", (json_int_t)cfg.poll_interval_ms,
                                               "overlap_ms", (json_int_t)cfg.poll_overlap_ms, "max_pages",
                                               (json_int_t)cfg.poll_max_pages, "failover_after_ms", (json_int_t)cfg.failover_ms));
    json_object_set_new(out, "queue", json_pack("{s:I,s:I,s:I,s:I}", "batch", (json_int_t)cfg.queue_batch, "visibility_ms",
                                                (json_int_t)cfg.queue_visibility_ms, "idle_min_ms",
                                                (json_int_t)cfg.queue_idle_min_ms, "idle_max_ms",
                                                (json_int_t)cfg.queue_idle_max_ms));
    json_object_set_new(out, "metrics", json_pack("{s:I}", "max_series", (json_int_t)cfg.metrics_max_series));
    json_object_set_new(out, "handlers", h);
    json_object_set_new(out, "cloudflare", cfwire_config_json(&cfg));
    json_t *fb = json_object(); /* synccf's variables read from xplat's names (lib/envfile.c) */
    for (const char *const *u = env_fallbacks_used(); u && *u; u += 2) json_object_set_new(fb, u[0], json_string(u[1]));
    json_object_set_new(out, "env_fallbacks", fb);
    char *s = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("configuration ok\n%s\n", s);
    free(s);
    json_decref(out);
    config_free(&cfg);
    return EXIT_OK;
}
