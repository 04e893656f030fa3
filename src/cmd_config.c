/* cmd_config.c -- `synccf config check`: loads the configuration the way the
 * daemon would (file, then environment), reports the first error with its
 * file, line and key, or prints the effective settings, secrets redacted:
 * the scalar ones as lib/config.c's settings table names them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/cfwire.h"
#include "../lib/config.h"
#include "../lib/envfile.h"
#include "cli.h"

static json_t *str(const char *v) { return v ? json_string(v) : json_null(); }

static json_t *list(char **l)
{
    json_t *a = json_array();
    for (char **p = l; p && *p; p++) json_array_append_new(a, json_string(*p));
    return a;
}

/* Sets v at a dotted path of out ("poll.interval_ms"), making the sections. */
static void show(json_t *out, const char *path, json_t *v)
{
    const char *dot = strchr(path, '.');
    if (!dot) {
        json_object_set_new(out, path, v);
        return;
    }
    char section[64];
    snprintf(section, sizeof section, "%.*s", (int)(dot - path), path);
    json_t *sub = json_object_get(out, section);
    if (!sub) json_object_set_new(out, section, sub = json_object());
    json_object_set_new(sub, dot + 1, v);
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
    json_t *out = json_pack("{s:o}", "file", str(c->config));
    for (const struct setting *s = config_settings; s->key; s++)
        if (s->show) show(out, s->show, config_setting_json(&cfg, s));
    json_object_set_new(out, "logpush_filters", list(cfg.filters));
    json_object_set_new(out, "pages_projects", list(cfg.pages_projects));
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
