/* config.c -- reads synccf.yaml (or the sync.cloudflare section of an
 * xplat.yaml) into struct config, strictly: an unknown key or a bad value is
 * an error naming the file, the line and the key, never a silent default.
 * Every scalar setting is one line of config_settings[] (below): adding one
 * is that line and its field in struct config (retention's limits included).
 * Lists, handlers, retention rules and the cloudflare: section have their
 * own readers. Also the environment layers and the state directory; routing
 * events to handlers is route.c's. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cfwire.h"
#include "jsonx.h"
#include "normalize.h"
#include "store.h"
#include "util.h"

#define LOWER_NAME "abcdefghijklmnopqrstuvwxyz0123456789_-"

/* ---- the settings -------------------------------------------------------- */

#define FIELD(c, s, T) ((T *)(void *)((char *)(c) + (s)->off))
#define AT(f) offsetof(struct config, f)

#define WANT_STRING "expected a string"
#define WANT_BOOL "expected true or false"
#define WANT_DURATION "expected a duration like 500ms, 30s, 5m or 1h"
#define WANT_SIZE "expected a size like 512k, 8M or 1G"

/* Every scalar setting, one line each: the defaults, the file's reader (top
 * level and the limits/dispatch/metrics/retention sections), both
 * environment layers, the flags and `config check` come from here. The flag
 * and the variable are derived from the key: limits.max_body is
 * --limits-max-body and SYNCCF_LIMITS_MAX_BODY; a secret has no flag (ps would show it) but a
 * <key>_file setting that reads it from a file. tests/install/options.sh
 * reads this table: keep one entry a line. */
const struct setting config_settings[] = {
    /* key, type, field, min, max, default, as config check shows it, read as it is by config_env */
    {"mode", SET_MODE, AT(mode), 0, 0, NULL, "mode", NULL},
    {"state", SET_PATH, AT(state_dir), 0, 0, NULL, "state", "SYNCCF_STATE"},
    {"listen", SET_STR, AT(listen), 0, 0, "127.0.0.1:9091", "listen", "SYNCCF_LISTEN"},
    {"worker_url", SET_STR, AT(worker_url), 0, 0, NULL, "worker_url", "SYNCCF_WORKER_URL"},
    {"push_secret", SET_SECRET, AT(push_secret), 0, 0, NULL, "push_secret", "SYNCCF_PUSH_SECRET"},
    {"notify_secret", SET_SECRET, AT(notify_secret), 0, 0, NULL, "notify_secret", "SYNCCF_NOTIFY_SECRET"},
    {"hook_token", SET_SECRET, AT(hook_token), 0, 0, NULL, "hook_token", "SYNCCF_HOOK_TOKEN"},
    {"pull_token", SET_SECRET, AT(pull_token), 0, 0, NULL, "pull_token", "SYNCCF_PULL_TOKEN"},
    {"api_token", SET_SECRET, AT(api_token), 0, 0, NULL, "api_token", "CLOUDFLARE_API_TOKEN"},
    {"account_id", SET_STR, AT(account_id), 0, 0, NULL, "account_id", "CLOUDFLARE_ACCOUNT_ID"},
    {"api_base", SET_URL, AT(api_base), 0, 0, "https://api.cloudflare.com", "api_base", "CLOUDFLARE_API_BASE_URL"},
    {"queue_id", SET_STR, AT(queue_id), 0, 0, NULL, "queue_id", "SYNCCF_QUEUE_ID"},
    {"heartbeat", SET_SECONDS, AT(heartbeat_s), 0, 0, "15s", "heartbeat_s", NULL},
    {"status_page", SET_BOOL, AT(status_page), 0, 0, "true", "status_page", NULL},
    {"cloudflared", SET_STR, AT(cloudflared), 0, 0, NULL, "cloudflared", NULL},
    {"tunnel_token", SET_SECRET, AT(tunnel_token), 0, 0, NULL, "tunnel_token", NULL},
    {"notify_webhook_id", SET_STR, AT(notify_webhook_id), 0, 0, NULL, "notify_webhook_id", NULL},
    {"poll_audit", SET_BOOL, AT(poll_audit), 0, 0, "true", "poll_audit", NULL},
    {"limits.max_body", SET_SIZE, AT(limits.max_body), 0, 0, "1M", "limits.max_body", NULL},
    {"limits.max_logpush_body", SET_SIZE, AT(limits.max_logpush_body), 0, 0, "256M", "limits.max_logpush_body", NULL},
    {"limits.max_decompressed", SET_SIZE, AT(limits.max_decompressed), 0, 0, "1G", "limits.max_decompressed", NULL},
    {"limits.max_line", SET_SIZE, AT(limits.max_line), 0, 0, "1M", "limits.max_line", NULL},
    {"limits.max_connections", SET_UINT, AT(limits.max_connections), 1, 100000, "512", "limits.max_connections", NULL},
    {"limits.max_connections_per_ip", SET_UINT, AT(limits.max_connections_per_ip), 0, 100000, "0", "limits.max_connections_per_ip", NULL},
    {"limits.timeout", SET_SECONDS, AT(limits.timeout_s), 0, 0, "30s", "limits.timeout_s", NULL},
    {"limits.threads", SET_UINT, AT(limits.threads), 1, 64, "2", "limits.threads", NULL},
    {"dispatch.max_attempts", SET_UINT, AT(max_attempts), 1, 1000, "8", "dispatch.max_attempts", NULL},
    {"dispatch.backoff", SET_MS, AT(backoff_ms), 0, 0, "1s", "dispatch.backoff_ms", NULL},
    {"dispatch.max_backoff", SET_MS, AT(max_backoff_ms), 0, 0, "5m", "dispatch.max_backoff_ms", NULL},
    {"dispatch.concurrency", SET_UINT, AT(concurrency), 1, 64, "4", "dispatch.concurrency", NULL},
    {"poll_interval", SET_MS, AT(poll_interval_ms), 0, 0, "5m", "poll.interval_ms", NULL},
    {"poll_overlap", SET_MS, AT(poll_overlap_ms), 0, 0, "10m", "poll.overlap_ms", NULL},
    {"poll_max_pages", SET_UINT, AT(poll_max_pages), 1, 10000, "50", "poll.max_pages", NULL},
    {"failover_after", SET_MS, AT(failover_ms), 0, 0, "2m", "poll.failover_after_ms", NULL},
    {"queue_batch", SET_UINT, AT(queue_batch), 1, 100, "100", "queue.batch", NULL},
    {"queue_visibility", SET_MS, AT(queue_visibility_ms), 0, 0, "60s", "queue.visibility_ms", NULL},
    {"queue_idle_min", SET_MS, AT(queue_idle_min_ms), 0, 0, "1s", "queue.idle_min_ms", NULL},
    {"queue_idle_max", SET_MS, AT(queue_idle_max_ms), 0, 0, "30s", "queue.idle_max_ms", NULL},
    {"metrics.max_series", SET_UINT, AT(metrics_max_series), 1, 100000, "200", "metrics.max_series", NULL},
    {"retention.max_age", SET_LIMIT_MS, AT(retention.max_age_ms), 0, 0, NULL, NULL, NULL},
    {"retention.max_events", SET_LIMIT_COUNT, AT(retention.max_events), 0, 0, NULL, NULL, NULL},
    {"retention.max_bytes", SET_LIMIT_BYTES, AT(retention.max_bytes), 0, 0, NULL, NULL, NULL},
    {"retention.dedupe_window", SET_LIMIT_MS, AT(retention.dedupe_ms), 0, 0, NULL, NULL, NULL},
    {NULL, SET_STR, 0, 0, 0, NULL, NULL, NULL},
};

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? strdup(v) : NULL;
}

/* The API's base URL without its path: synccf adds /client/v4/... itself,
 * while wrangler's CLOUDFLARE_API_BASE_URL ends in /client/v4 -- accept both
 * spellings of the same address rather than ask for a different one. */
static void trim_api_base(char *s)
{
    if (!s) return;
    size_t n = strlen(s);
    while (n && s[n - 1] == '/') s[--n] = '\0';
    if (n >= 10 && strcmp(s + n - 10, "/client/v4") == 0) s[n -= 10] = '\0';
    while (n && s[n - 1] == '/') s[--n] = '\0';
}

/* "~/x" is relative to $HOME. */
static char *expand_home(char *p)
{
    if (!p || p[0] != '~' || (p[1] && p[1] != '/')) return p;
    const char *home = getenv("HOME");
    char *out = malloc(strlen(home ? home : "") + strlen(p) + 1);
    if (out) sprintf(out, "%s%s", home ? home : "", p + 1);
    free(p);
    return out;
}

/* "${NAME}" reads the environment: its value, or NULL with why. */
static const char *expand_env(const char *v, char *why, size_t n)
{
    size_t len = strlen(v);
    if (len > 3 && v[0] == '$' && v[1] == '{' && v[len - 1] == '}') {
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(len - 3), v + 2);
        const char *e = getenv(name);
        if (!e) snprintf(why, n, "environment variable %s is not set", name);
        return e;
    }
    return v;
}

/* YAML 1.1's spellings, which libyaml leaves to the reader. */
static int parse_bool(const char *v, int *dst)
{
    if (v && (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0)) *dst = 1;
    else if (v && (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "off") == 0)) *dst = 0;
    else return -1;
    return 0;
}

static int parse_ms(const char *v, unsigned *dst_ms)
{
    unsigned long long ms;
    if (!v || parse_duration_ms(v, &ms) || ms > 0xffffffffULL) return -1;
    *dst_ms = (unsigned)ms;
    return 0;
}

/* A string setting from its text (${NAME} read), then what its type asks. */
static int parse_text(struct config *c, const struct setting *s, const char *v, char *why, size_t n)
{
    if (!v) return snprintf(why, n, WANT_STRING), -1;
    if (!(v = expand_env(v, why, n))) return -1;
    if (s->type == SET_MODE) {
        if (mode_parse(v, FIELD(c, s, enum run_mode)) == 0) return 0;
        char choices[128];
        mode_choices(choices, sizeof choices);
        return snprintf(why, n, "expected %s", choices), -1;
    }
    char **dst = FIELD(c, s, char *);
    set_str(dst, v);
    if (s->type == SET_PATH) *dst = expand_home(*dst);
    if (!*dst) return snprintf(why, n, "out of memory"), -1;
    if (s->type == SET_URL) trim_api_base(*dst);
    return 0;
}

/* Sets s from its text (NULL: the value is not a scalar); -1 with why. */
static int setting_parse(struct config *c, const struct setting *s, const char *v, char *why, size_t n)
{
    unsigned ms;
    char *end;
    unsigned long u;
    switch (s->type) {
    case SET_BOOL:
        return parse_bool(v, FIELD(c, s, int)) ? (snprintf(why, n, WANT_BOOL), -1) : 0;
    case SET_UINT:
        u = v ? strtoul(v, &end, 10) : 0;
        if (!v || !*v || *end || *v == '-' || u < s->min || u > s->max)
            return snprintf(why, n, "expected a whole number in %u..%u", s->min, s->max), -1;
        *FIELD(c, s, unsigned) = (unsigned)u;
        return 0;
    case SET_MS:
    case SET_SECONDS:
        if (parse_ms(v, &ms)) return snprintf(why, n, WANT_DURATION), -1;
        *FIELD(c, s, unsigned) = s->type == SET_MS ? ms : ms < 1000 ? 1 : ms / 1000;
        return 0;
    case SET_SIZE:
        return !v || parse_size(v, FIELD(c, s, size_t)) ? (snprintf(why, n, WANT_SIZE), -1) : 0;
    case SET_LIMIT_MS:
        return !v || retention_parse_duration(v, FIELD(c, s, int64_t)) ? (snprintf(why, n, RETENTION_WANT_DURATION), -1) : 0;
    case SET_LIMIT_COUNT:
        return !v || retention_parse_count(v, FIELD(c, s, int64_t)) ? (snprintf(why, n, RETENTION_WANT_COUNT), -1) : 0;
    case SET_LIMIT_BYTES:
        return !v || retention_parse_bytes(v, FIELD(c, s, int64_t)) ? (snprintf(why, n, RETENTION_WANT_BYTES), -1) : 0;
    default:
        return parse_text(c, s, v, why, n);
    }
}

/* The setting key names, and whether it is a secret's <key>_file. */
static const struct setting *setting_find(const char *key, int *file)
{
    for (const struct setting *s = config_settings; s->key; s++) {
        size_t n = strlen(s->key);
        *file = s->type == SET_SECRET && strncmp(key, s->key, n) == 0 && strcmp(key + n, "_file") == 0;
        if (*file || strcmp(key, s->key) == 0) return s;
    }
    return NULL;
}

/* The i-th name of s: its key, then (for a secret) <key>_file. 0 when s has
 * no such name. */
static int setting_name(const struct setting *s, int i, char *out, size_t n)
{
    if (i > (s->type == SET_SECRET)) return 0;
    snprintf(out, n, "%s%s", s->key, i ? "_file" : "");
    return 1;
}

json_t *config_setting_json(const struct config *c, const struct setting *s)
{
    switch (s->type) {
    case SET_MODE: return json_string(mode_name(config_mode(c)));
    case SET_SECRET: return *FIELD(c, s, char *const) ? json_string("(set, redacted)") : json_null();
    case SET_STR:
    case SET_PATH:
    case SET_URL: return *FIELD(c, s, char *const) ? json_string(*FIELD(c, s, char *const)) : json_null();
    case SET_BOOL: return json_boolean(*FIELD(c, s, const int));
    case SET_SIZE: return json_integer((json_int_t)*FIELD(c, s, const size_t));
    case SET_LIMIT_MS:
    case SET_LIMIT_COUNT:
    case SET_LIMIT_BYTES: return json_integer((json_int_t)*FIELD(c, s, const int64_t));
    default: return json_integer((json_int_t)*FIELD(c, s, const unsigned));
    }
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    char why[256];
    /* A default that fails is out of memory: the setting stays unset. */
    for (const struct setting *s = config_settings; s->key; s++)
        if (s->def) (void)setting_parse(c, s, s->def, why, sizeof why);
    retention_config_defaults(&c->retention);
}

void config_env(struct config *c)
{
    for (const struct setting *s = config_settings; s->key; s++) {
        const char *v = s->env ? getenv(s->env) : NULL;
        if (!v || !*v) continue;
        char **dst = FIELD(c, s, char *);
        set_str(dst, v);
        if (s->type == SET_URL) trim_api_base(*dst);
    }
}

void config_free(struct config *c)
{
    free(c->file);
    /* Every string setting is a string the config owns. */
    for (const struct setting *s = config_settings; s->key; s++)
        if (s->type == SET_STR || s->type == SET_URL || s->type == SET_PATH || s->type == SET_SECRET)
            free(*FIELD(c, s, char *));
    strv_free(c->filters);
    strv_free(c->pages_projects);
    cfwire_config_free(c->cloudflare);
    retention_config_free(&c->retention);
    for (size_t i = 0; i < c->nhandlers; i++) handler_def_free(&c->handlers[i]);
    free(c->handlers);
    router_free(&c->router);
    memset(c, 0, sizeof *c);
}

int config_state_dir(const char *flag, const char *file, char *out, size_t n, char *err, size_t errlen)
{
    const char *env = getenv("SYNCCF_STATE");
    if (flag || (env && *env)) {
        snprintf(out, n, "%s", flag ? flag : env);
        return 1;
    }
    /* The file is read only when it decides: a flag or a variable that names
     * the directory makes a broken file no reason to refuse it. */
    struct config c;
    config_defaults(&c);
    if (file && config_load(&c, file, err, errlen) != 0) {
        config_free(&c);
        return -1;
    }
    if (c.state_dir) snprintf(out, n, "%s", c.state_dir);
    else store_default_dir(out, n);
    config_free(&c);
    return 0;
}

/* ---- value parsers -------------------------------------------------------- */

int parse_duration_ms(const char *s, unsigned long long *ms)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || *s == '-') return -1;
    unsigned long long mul;
    if (!*end || strcmp(end, "s") == 0) mul = 1000;
    else if (strcmp(end, "ms") == 0) mul = 1;
    else if (strcmp(end, "m") == 0) mul = 60000;
    else if (strcmp(end, "h") == 0) mul = 3600000;
    else return -1;
    if (v > 100ULL * 24 * 3600 * 1000 / mul) return -1;
    *ms = v * mul;
    return 0;
}

int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || *s == '-') return -1;
    int shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end || v == 0 || v > (1ULL << (40 - shift))) return -1;
    *out = (size_t)(v << shift);
    return 0;
}

/* ---- the YAML walk -------------------------------------------------------- */

struct ctx {
    yaml_document_t *doc;
    const char *file;
    char *err;
    size_t errlen;
    int failed;
    int nolines; /* a flag or a variable, not a file: no line numbers */
};

static int fail(struct ctx *x, yaml_node_t *n, const char *key, const char *fmt, const char *detail)
{
    if (x->failed) return -1;
    x->failed = 1;
    char msg[256];
    snprintf(msg, sizeof msg, fmt, detail ? detail : "");
    if (x->nolines)
        snprintf(x->err, x->errlen, "%s: %s%s%s", x->file, key ? "key '" : "", key ? key : "", key ? "': " : "");
    else
        snprintf(x->err, x->errlen, "%s:%lu: %s%s%s", x->file, n ? (unsigned long)n->start_mark.line + 1 : 0UL,
                 key ? "key '" : "", key ? key : "", key ? "': " : "");
    size_t l = strlen(x->err);
    snprintf(x->err + l, x->errlen - l, "%s", msg);
    return -1;
}

static yaml_node_t *node(struct ctx *x, int id) { return yaml_document_get_node(x->doc, id); }

static const char *scalar(yaml_node_t *n) { return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL; }

/* A string value: "${NAME}" reads the environment. */
static int get_str(struct ctx *x, yaml_node_t *n, const char *key, char **dst)
{
    char why[200];
    const char *v = scalar(n);
    if (!v) return fail(x, n, key, WANT_STRING "%s", NULL);
    if (!(v = expand_env(v, why, sizeof why))) return fail(x, n, key, "%s", why);
    set_str(dst, v);
    return *dst ? 0 : fail(x, n, key, "out of memory%s", NULL);
}

/* "<key>_file: PATH": the value is the file's content, without the final newline. */
static int get_file(struct ctx *x, yaml_node_t *n, const char *key, char **dst)
{
    char *path = NULL;
    if (get_str(x, n, key, &path)) return -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        fail(x, n, key, "cannot read %s", path);
        free(path);
        return -1;
    }
    char buf[4096];
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = '\0';
    while (k && (buf[k - 1] == '\n' || buf[k - 1] == '\r')) buf[--k] = '\0';
    free(path);
    if (!k) return fail(x, n, key, "the file is empty%s", NULL);
    set_str(dst, buf);
    return 0;
}

static int get_bool(struct ctx *x, yaml_node_t *n, const char *key, int *dst)
{
    return parse_bool(scalar(n), dst) ? fail(x, n, key, WANT_BOOL "%s", NULL) : 0;
}

static int get_duration(struct ctx *x, yaml_node_t *n, const char *key, unsigned *dst_ms)
{
    return parse_ms(scalar(n), dst_ms) ? fail(x, n, key, WANT_DURATION "%s", NULL) : 0;
}

static int get_list(struct ctx *x, yaml_node_t *n, const char *key, char ***dst)
{
    if (!n || n->type != YAML_SEQUENCE_NODE) return fail(x, n, key, "expected a list%s", NULL);
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **l = calloc(cnt + 1, sizeof *l);
    if (!l) return fail(x, n, key, "out of memory%s", NULL);
    size_t i = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
        if (get_str(x, node(x, *it), key, &l[i])) {
            strv_free(l);
            return -1;
        }
    }
    strv_free(*dst);
    *dst = l;
    return 0;
}

/* Iterates a mapping: for each pair calls fn(key, value node). */
typedef int (*pair_fn)(struct ctx *x, const char *key, yaml_node_t *k, yaml_node_t *v, void *obj);

static int each_pair(struct ctx *x, yaml_node_t *map, const char *what, pair_fn fn, void *obj)
{
    if (!map || map->type != YAML_MAPPING_NODE) return fail(x, map, what, "expected a mapping%s", NULL);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(x, p->key), *v = node(x, p->value);
        const char *key = scalar(k);
        if (!key) return fail(x, k, what, "keys must be strings%s", NULL);
        if (fn(x, key, k, v, obj)) return fail(x, k, key, "unknown key%s", NULL);
        if (x->failed) return -1;
    }
    return 0;
}

static yaml_node_t *map_get(struct ctx *x, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = scalar(node(x, p->key));
        if (k && strcmp(k, key) == 0) return node(x, p->value);
    }
    return NULL;
}

static int data_pair(struct ctx *x, const char *k, yaml_node_t *kn, yaml_node_t *v, void *obj)
{
    (void)kn;
    struct handler_def *h = obj;
    struct data_match *grown = realloc(h->match_data, (h->nmatch_data + 1) * sizeof *h->match_data);
    if (!grown) return fail(x, v, k, "out of memory%s", NULL), 0;
    h->match_data = grown;
    struct data_match *m = &h->match_data[h->nmatch_data++];
    m->path = strdup(k);
    m->value = NULL;
    if (!m->path) return fail(x, v, k, "out of memory%s", NULL), 0;
    get_str(x, v, k, &m->value);
    return 0;
}

/* task_cache env: { NAME: value }, kept as "NAME=value" for go-task's lookups. */
static int taskcache_env_pair(struct ctx *x, const char *k, yaml_node_t *kn, yaml_node_t *v, void *obj)
{
    char ***env = &((struct handler_def *)obj)->tc.env;
    char *val = NULL;
    if (!str_of_class(k, strlen(k), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_", 128))
        return fail(x, kn, k, "not an environment variable name%s", NULL), 0;
    if (get_str(x, v, k, &val)) return 0;
    size_t n = 0;
    while (*env && (*env)[n]) n++;
    char **l = realloc(*env, (n + 2) * sizeof *l);
    char *e = malloc(strlen(k) + strlen(val) + 2);
    if (l) *env = l;
    if (!l || !e) {
        free(e);
        free(val);
        return fail(x, v, k, "out of memory%s", NULL), 0;
    }
    sprintf(e, "%s=%s", k, val);
    free(val);
    l[n] = e;
    l[n + 1] = NULL;
    return 0;
}

static int get_method(struct ctx *x, yaml_node_t *n, const char *key, enum taskcache_method *dst)
{
    const char *m = scalar(n);
    if (m && strcmp(m, "checksum") == 0) *dst = TASKCACHE_CHECKSUM;
    else if (m && strcmp(m, "timestamp") == 0) *dst = TASKCACHE_TIMESTAMP;
    else return fail(x, n, key, "expected checksum or timestamp%s", NULL);
    return 0;
}

/* The keys of a handler's match:, task_cache: and exec: mappings, one line
 * each: the field of struct handler_def a key sets and how its value is
 * read. */
enum rule_key_kind {
    K_STR,      /* char * */
    K_PATH,     /* char *; "~/" is $HOME */
    K_LIST,     /* char **, NULL-terminated */
    K_BOOL,     /* int */
    K_DURATION, /* unsigned milliseconds */
    K_METHOD,   /* enum taskcache_method */
    K_PAIRS,    /* a mapping: pairs() reads each of its pairs, given the handler */
};

struct rule_key {
    const char *section, *key;
    enum rule_key_kind kind;
    size_t off;
    pair_fn pairs;
};

#define HANDLER(f) offsetof(struct handler_def, f)
static const struct rule_key rule_keys[] = {
    {"match", "type", K_STR, HANDLER(match_type), NULL},
    {"match", "subject", K_STR, HANDLER(match_subject), NULL},
    {"match", "data", K_PAIRS, 0, data_pair},
    {"task_cache", "dir", K_PATH, HANDLER(tc.dir), NULL},
    {"task_cache", "temp_dir", K_STR, HANDLER(tc.temp_dir), NULL},
    {"task_cache", "remote_cache_dir", K_STR, HANDLER(tc.remote_cache_dir), NULL},
    {"task_cache", "taskfile", K_STR, HANDLER(tc.taskfile), NULL},
    {"task_cache", "includes", K_LIST, HANDLER(tc.includes), NULL},
    {"task_cache", "env", K_PAIRS, 0, taskcache_env_pair},
    {"task_cache", "remote", K_BOOL, HANDLER(tc.remote), NULL},
    {"task_cache", "remote_all", K_BOOL, HANDLER(tc.remote_all), NULL},
    {"task_cache", "remote_checksum", K_BOOL, HANDLER(tc.remote_checksum), NULL},
    {"task_cache", "hosts", K_LIST, HANDLER(tc.hosts), NULL},
    {"task_cache", "tasks", K_LIST, HANDLER(tc.tasks), NULL},
    {"task_cache", "all_tasks", K_BOOL, HANDLER(tc.all_tasks), NULL},
    {"task_cache", "generates", K_LIST, HANDLER(tc.generates), NULL},
    {"task_cache", "method", K_METHOD, HANDLER(tc.method), NULL},
    {"exec", "argv", K_LIST, HANDLER(ex.argv), NULL},
    {"exec", "timeout", K_DURATION, HANDLER(ex.timeout_ms), NULL},
    {"exec", "cwd", K_PATH, HANDLER(ex.cwd), NULL},
    {NULL, NULL, K_STR, 0, NULL},
};

/* A mapping read by a table: the object it fills and the section's name
 * (limits, dispatch, metrics, retention of struct config by the settings
 * table; match, task_cache, exec of a struct handler_def by rule_keys). */
struct section {
    void *obj;
    const char *name;
};

static int rule_pair(struct ctx *x, const char *k, yaml_node_t *kn, yaml_node_t *v, void *arg)
{
    (void)kn;
    const struct section *sec = arg;
    const struct rule_key *f = rule_keys;
    while (f->key && (strcmp(f->section, sec->name) != 0 || strcmp(f->key, k) != 0)) f++;
    if (!f->key) return 1;
    void *dst = (char *)sec->obj + f->off;
    switch (f->kind) {
    case K_STR: get_str(x, v, k, dst); break;
    case K_PATH:
        if (!get_str(x, v, k, dst)) *(char **)dst = expand_home(*(char **)dst);
        break;
    case K_LIST: get_list(x, v, k, dst); break;
    case K_BOOL: get_bool(x, v, k, dst); break;
    case K_DURATION: get_duration(x, v, k, dst); break;
    case K_METHOD: get_method(x, v, k, dst); break;
    case K_PAIRS: each_pair(x, v, k, f->pairs, sec->obj); break;
    }
    return 0;
}

static int handler_pair(struct ctx *x, const char *k, yaml_node_t *kn, yaml_node_t *v, void *obj)
{
    struct handler_def *h = obj;
    if (strcmp(k, "name") == 0) {
        if (!get_str(x, v, k, &h->name) && !str_of_class(h->name, strlen(h->name), LOWER_NAME, 64))
            fail(x, v, k, "handler names are 1-64 of a-z 0-9 _ -%s", NULL);
    } else if (strcmp(k, "match") == 0) each_pair(x, v, k, rule_pair, &(struct section){h, k});
    else if (strcmp(k, "task_cache") == 0 || strcmp(k, "exec") == 0) {
        if (h->kind != HANDLER_CALLBACK) return fail(x, kn, k, "a handler has one of task_cache or exec%s", NULL), 0;
        if (k[0] == 't') {
            h->kind = HANDLER_TASK_CACHE;
            h->tc.remote = 1;
            each_pair(x, v, k, rule_pair, &(struct section){h, k});
            if (!x->failed && !h->tc.dir) fail(x, v, k, "dir is required%s", NULL);
            if (!x->failed && h->tc.dir[0] != '/') fail(x, v, "dir", "must be an absolute path (or start with ~/)%s", NULL);
        } else {
            h->kind = HANDLER_EXEC;
            h->ex.timeout_ms = 60000;
            each_pair(x, v, k, rule_pair, &(struct section){h, k});
            if (!x->failed && (!h->ex.argv || !h->ex.argv[0])) fail(x, v, k, "argv is required%s", NULL);
        }
    } else return 1;
    return 0;
}

/* A scalar setting from the file (or a flag or variable made a document):
 * file for a secret's <key>_file, whose value is a path to read it from. */
static void read_setting(struct ctx *x, struct config *c, const struct setting *s, int file, const char *k, yaml_node_t *v)
{
    char why[256];
    if (file) get_file(x, v, k, FIELD(c, s, char *));
    else if (setting_parse(c, s, scalar(v), why, sizeof why) != 0) fail(x, v, k, "%s", why);
}

static int section_pair(struct ctx *x, const char *k, yaml_node_t *kn, yaml_node_t *v, void *obj)
{
    (void)kn;
    const struct section *sec = obj;
    char key[128];
    int file;
    snprintf(key, sizeof key, "%s.%s", sec->name, k);
    const struct setting *s = setting_find(key, &file);
    if (!s || file) return 1;
    read_setting(x, sec->obj, s, 0, k, v);
    return 0;
}

/* retention: the table's settings and the rules list (lib/retention.c). */
static int retention_pair(struct ctx *x, const char *k, yaml_node_t *kn, yaml_node_t *v, void *obj)
{
    struct config *c = obj;
    if (strcmp(k, "rules") != 0) return section_pair(x, k, kn, v, &(struct section){c, "retention"});
    char why[256];
    yaml_node_t *at = kn;
    if (retention_rules_parse(&c->retention, x->doc, v, &at, why, sizeof why)) fail(x, at, "retention", "%s", why);
    return 0;
}

/* Whether name is a section of the table's scalar settings. */
static int is_section(const char *name)
{
    size_t n = strlen(name);
    for (const struct setting *s = config_settings; s->key; s++)
        if (strncmp(s->key, name, n) == 0 && s->key[n] == '.') return 1;
    return 0;
}

static int top_pair(struct ctx *x, const char *k, yaml_node_t *kn, yaml_node_t *v, void *obj)
{
    struct config *c = obj;
    int file;
    const struct setting *s = setting_find(k, &file);
    if (s && !strchr(s->key, '.')) read_setting(x, c, s, file, k, v);
    else if (strcmp(k, "retention") == 0) each_pair(x, v, k, retention_pair, c);
    else if (is_section(k)) each_pair(x, v, k, section_pair, &(struct section){c, k});
    else if (strcmp(k, "logpush_filters") == 0) get_list(x, v, k, &c->filters);
    else if (strcmp(k, "pages_projects") == 0) {
        if (get_list(x, v, k, &c->pages_projects)) return 0;
        for (char **p = c->pages_projects; *p; p++)
            if (!norm_valid_pages_project(*p)) return fail(x, v, k, "'%s' is not a Pages project name ([a-z0-9-], at most 58)", *p), 0;
    }
    else if (strcmp(k, "cloudflare") == 0) { /* what `synccf cloudflare setup` wires: lib/cfwire_config.c */
        if (cfwire_config_parse(&c->cloudflare, x->doc, v, x->file, x->err, x->errlen) != 0) x->failed = 1;
    }
    else if (strcmp(k, "handlers") == 0) {
        if (!v || v->type != YAML_SEQUENCE_NODE) return fail(x, v, k, "expected a list%s", NULL), 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top && !x->failed; it++) {
            struct handler_def *grown = realloc(c->handlers, (c->nhandlers + 1) * sizeof *c->handlers);
            if (!grown) return fail(x, v, k, "out of memory%s", NULL), 0;
            c->handlers = grown;
            struct handler_def *h = &c->handlers[c->nhandlers++];
            memset(h, 0, sizeof *h);
            h->kind = HANDLER_CALLBACK; /* "none yet" until task_cache or exec */
            yaml_node_t *hn = node(x, *it);
            each_pair(x, hn, k, handler_pair, h);
            if (x->failed) break;
            if (!h->name) fail(x, hn, k, "every handler needs a name%s", NULL);
            else if (h->kind == HANDLER_CALLBACK) fail(x, hn, h->name, "needs task_cache or exec%s", NULL);
            for (size_t j = 0; !x->failed && j + 1 < c->nhandlers; j++)
                if (strcmp(c->handlers[j].name, h->name) == 0) fail(x, hn, h->name, "handler name used twice%s", NULL);
        }
    } else {
        (void)kn;
        return 1;
    }
    return 0;
}

/* Runs the same walk as a file over a parsed document: every source of
 * settings (file, flags, environment) is checked by the same code. */
static int apply_document(struct config *c, yaml_document_t *doc, const char *name, int nolines, char *err,
                          size_t errlen)
{
    struct ctx x = {doc, name, err, errlen, 0, nolines};
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (root) {
        /* An xplat.yaml holds synccf's settings under sync.cloudflare; its
         * other sections belong to xplat and are not ours to judge. */
        yaml_node_t *sync = map_get(&x, root, "sync");
        if (sync) root = map_get(&x, sync, "cloudflare");
        if (!root) fail(&x, sync, "sync", "has no cloudflare section%s", NULL);
        else each_pair(&x, root, "top level", top_pair, c);
    }
    return x.failed ? -1 : 0;
}

int config_set(struct config *c, const char *key, const char *value, const char *origin, char *err, size_t errlen)
{
    /* "limits.max_body" + "2M" becomes the document {limits: {max_body: "2M"}}. */
    char seg[2][64];
    const char *dot = strchr(key, '.');
    int depth = dot ? 2 : 1;
    if (dot) {
        snprintf(seg[0], sizeof seg[0], "%.*s", (int)(dot - key), key);
        snprintf(seg[1], sizeof seg[1], "%s", dot + 1);
    } else {
        snprintf(seg[0], sizeof seg[0], "%s", key);
    }
    yaml_document_t doc;
    if (!yaml_document_initialize(&doc, NULL, NULL, NULL, 1, 1)) return -1;
    /* The first node added is the document's root. */
    int map = yaml_document_add_mapping(&doc, NULL, YAML_BLOCK_MAPPING_STYLE);
    for (int i = 0; i < depth; i++) {
        int k = yaml_document_add_scalar(&doc, NULL, (yaml_char_t *)seg[i], (int)strlen(seg[i]), YAML_PLAIN_SCALAR_STYLE);
        int v = i + 1 < depth ? yaml_document_add_mapping(&doc, NULL, YAML_BLOCK_MAPPING_STYLE)
                              : yaml_document_add_scalar(&doc, NULL, (yaml_char_t *)value, (int)strlen(value),
                                                         YAML_PLAIN_SCALAR_STYLE);
        yaml_document_append_mapping_pair(&doc, map, k, v);
        map = v;
    }
    int rc = apply_document(c, &doc, origin, 1, err, errlen);
    yaml_document_delete(&doc);
    return rc;
}

const char *config_setting(const char *name)
{
    for (const struct setting *s = config_settings; s->key; s++) {
        const char *dot = strchr(s->key, '.');
        if (dot && strcmp(dot + 1, name) == 0) return s->key;
    }
    return name;
}

int config_env_all(struct config *c, char *err, size_t errlen)
{
    const char *pages = getenv("SYNCCF_PAGES_PROJECTS");
    if (pages && *pages) {
        strv_free(c->pages_projects);
        c->pages_projects = NULL;
        char *copy = strdup(pages), *save = NULL;
        if (!copy) return snprintf(err, errlen, "SYNCCF_PAGES_PROJECTS: out of memory"), -1;
        for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
            if (config_add_pages_project(c, t, err, errlen) != 0) {
                free(copy);
                return -1;
            }
        }
        free(copy);
    }
    char key[96], name[96];
    for (const struct setting *s = config_settings; s->key; s++)
        for (int i = 0; setting_name(s, i, key, sizeof key); i++) {
            config_env_name(key, name, sizeof name);
            const char *v = getenv(name);
            if (v && *v && config_set(c, key, v, name, err, errlen) != 0) return -1;
        }
    return 0;
}

int config_add_pages_project(struct config *c, const char *name, char *err, size_t errlen)
{
    if (!norm_valid_pages_project(name)) {
        snprintf(err, errlen, "pages project: '%s' is not a Pages project name ([a-z0-9-], at most 58)", name);
        return -1;
    }
    config_list_add(&c->pages_projects, name);
    return 0;
}

static const char *const mode_names[] = {NULL, SYNCCF_MODES(SYNCCF_MODE_NAME_, SYNCCF_COMMA_)};
#define NMODES (sizeof mode_names / sizeof *mode_names)

const char *mode_name(enum run_mode m) { return (size_t)m < NMODES ? mode_names[m] : NULL; }

int mode_parse(const char *name, enum run_mode *m)
{
    for (size_t i = 1; i < NMODES; i++)
        if (strcmp(name, mode_names[i]) == 0) return *m = (enum run_mode)i, 0;
    return -1;
}

void mode_choices(char *out, size_t n)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 1; i < NMODES && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%s", i == 1 ? "" : i + 1 == NMODES ? " or " : ", ", mode_names[i]);
}

enum run_mode config_mode(const struct config *c)
{
    /* The Worker is the recommended way in, and the mode when one is
     * configured; without one, the receiver alone is what can run. */
    if (c->mode != MODE_AUTO) return c->mode;
    return c->worker_url ? MODE_WORKER : MODE_TUNNEL;
}

void config_list_add(char ***list, const char *value)
{
    size_t k = 0;
    while (*list && (*list)[k]) k++;
    char **l = realloc(*list, (k + 2) * sizeof *l);
    if (!l) return;
    l[k] = strdup(value); /* NULL (out of memory): the list ends before it */
    l[k + 1] = NULL;
    *list = l;
}

void config_env_name(const char *key, char *out, size_t n)
{
    size_t k = (size_t)snprintf(out, n, "SYNCCF_");
    for (const char *p = key; *p && k + 1 < n; p++) out[k++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    out[k < n ? k : n - 1] = '\0';
}

int config_flag_name(const char *key, char *out, size_t n)
{
    int file;
    const struct setting *s = setting_find(key, &file);
    /* No secret on the command line, where ps shows it to every user: the
     * environment, the file, or a <key>_file path. */
    if (!s || (s->type == SET_SECRET && !file)) return 0;
    size_t k = (size_t)snprintf(out, n, "--");
    for (const char *p = key; *p && k + 1 < n; p++) out[k++] = (*p == '.' || *p == '_') ? '-' : *p;
    out[k < n ? k : n - 1] = '\0';
    return 1;
}

const char *config_flag_key(const char *flag)
{
    /* --limits-max-body -> limits.max_body; --poll-interval -> poll_interval */
    static __thread char key[96];
    char name[96], f[100];
    for (const struct setting *s = config_settings; s->key; s++)
        for (int i = 0; setting_name(s, i, name, sizeof name); i++)
            if (config_flag_name(name, f, sizeof f) && strcmp(flag, f) == 0) {
                snprintf(key, sizeof key, "%s", name);
                return key;
            }
    return NULL;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%lu: %s", path, (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "YAML syntax error");
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    int rc = apply_document(c, &doc, path, 0, err, errlen);
    set_str(&c->file, path);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}
