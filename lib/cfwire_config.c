/* cfwire_config.c -- owns the `cloudflare:` section of synccf.yaml (and of
 * sync.cloudflare in an xplat.yaml): what `synccf cloudflare setup` wires.
 * Strict like the rest of the file: an unknown key or a bad value is an
 * error naming the file, the line and the key. Also the defaults the
 * handlers imply (a task-cache rule for Pages project P wants P's deployment
 * notifications). Kept apart from config.c, which only hands the section
 * over. */
#include "cfwire.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"
#include "normalize.h"
#include "util.h"

struct wctx {
    yaml_document_t *doc;
    const char *file;
    char *err;
    size_t errlen;
    int failed;
};

static int wfail(struct wctx *x, yaml_node_t *n, const char *key, const char *msg, const char *detail)
{
    if (x->failed) return -1;
    x->failed = 1;
    char m[256];
    snprintf(m, sizeof m, msg, detail ? detail : "");
    snprintf(x->err, x->errlen, "%s:%lu: key 'cloudflare.%s': %s", x->file, n ? (unsigned long)n->start_mark.line + 1 : 0UL,
             key, m);
    return -1;
}

static yaml_node_t *wnode(struct wctx *x, int id) { return yaml_document_get_node(x->doc, id); }
static const char *wscalar(yaml_node_t *n) { return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL; }

static int wstr(struct wctx *x, yaml_node_t *n, const char *key, char **dst, size_t max)
{
    const char *v = wscalar(n);
    if (!v || !*v || strlen(v) > max) return wfail(x, n, key, "expected a string (1..%s characters)", max > 255 ? "4096" : "255");
    char *s = strdup(v);
    if (!s) return wfail(x, n, key, "out of memory%s", NULL);
    free(*dst);
    *dst = s;
    return 0;
}

static void free_list(char **l)
{
    for (char **p = l; p && *p; p++) free(*p);
    free(l);
}

static int wlist(struct wctx *x, yaml_node_t *n, const char *key, char ***dst)
{
    if (!n || n->type != YAML_SEQUENCE_NODE) return wfail(x, n, key, "expected a list%s", NULL);
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt > 1000) return wfail(x, n, key, "more than 1000 items%s", NULL);
    char **l = calloc(cnt + 1, sizeof *l);
    if (!l) return wfail(x, n, key, "out of memory%s", NULL);
    size_t i = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
        if (wstr(x, wnode(x, *it), key, &l[i], 255)) {
            free_list(l);
            return -1;
        }
    }
    free_list(*dst);
    *dst = l;
    return 0;
}

static int wuint(struct wctx *x, yaml_node_t *n, const char *key, unsigned *dst, unsigned min, unsigned max)
{
    const char *v = wscalar(n);
    char *end;
    unsigned long u = v ? strtoul(v, &end, 10) : 0;
    if (!v || !*v || *end || *v == '-' || u < min || u > max) {
        char r[64];
        snprintf(r, sizeof r, "%u..%u", min, max);
        return wfail(x, n, key, "expected a whole number in %s", r);
    }
    *dst = (unsigned)u;
    return 0;
}

static int wbool(struct wctx *x, yaml_node_t *n, const char *key, int *dst)
{
    const char *v = wscalar(n);
    if (v && (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))) *dst = 1;
    else if (v && (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))) *dst = 0;
    else return wfail(x, n, key, "expected true or false%s", NULL);
    return 0;
}

/* Each item of a sequence of mappings, with a fresh zeroed element. */
static void *grow(void **arr, size_t *n, size_t size)
{
    char *p = realloc(*arr, (*n + 1) * size);
    if (!p) return NULL;
    *arr = p;
    memset(p + *n * size, 0, size);
    return p + (*n)++ * size;
}

/* A list of words -> the mask of their bits; expect names the words in the
 * error for any other. */
struct word {
    const char *name;
    unsigned bit;
};

static int mask_of(struct wctx *x, yaml_node_t *n, const char *key, const struct word *words, const char *expect,
                   unsigned *mask)
{
    char **l = NULL;
    if (wlist(x, n, key, &l)) return -1;
    *mask = 0;
    for (char **p = l; *p; p++) {
        const struct word *w = words;
        while (w->name && strcmp(*p, w->name)) w++;
        if (w->name) {
            *mask |= w->bit;
            continue;
        }
        char fmt[128]; /* "'%s': expected ...", the word as wfail's detail */
        snprintf(fmt, sizeof fmt, "'%%s': expected %s", expect);
        wfail(x, n, key, fmt, *p);
        break;
    }
    free_list(l);
    return x->failed ? -1 : 0;
}

static int envs_of(struct wctx *x, yaml_node_t *n, unsigned *mask)
{
    static const struct word w[] = {{"production", CFWIRE_ENV_PRODUCTION}, {"preview", CFWIRE_ENV_PREVIEW}, {NULL, 0}};
    return mask_of(x, n, "pages.environments", w, "production or preview", mask);
}

static int events_of(struct wctx *x, yaml_node_t *n, unsigned *mask)
{
    static const struct word w[] = {
        {"started", CFWIRE_EV_STARTED}, {"success", CFWIRE_EV_SUCCESS}, {"failed", CFWIRE_EV_FAILED}, {NULL, 0}};
    return mask_of(x, n, "pages.events", w, "started, success or failed", mask);
}

static int is_map(yaml_node_t *n) { return n && n->type == YAML_MAPPING_NODE; }

#define EACH_PAIR(x, map, kvar, vnode, knode)                                                                          \
    for (yaml_node_pair_t *p_ = (map)->data.mapping.pairs.start; p_ < (map)->data.mapping.pairs.top && !(x)->failed; p_++) \
        for (yaml_node_t *knode = wnode(x, p_->key), *vnode = wnode(x, p_->value), *once_ = knode; once_; once_ = NULL)  \
            for (const char *kvar = wscalar(knode) ? wscalar(knode) : ""; once_; once_ = NULL)

/* Name parts of policies and subscriptions. Logpush job names are only
 * [a-zA-Z0-9.-]: they are made from the dataset with '_' turned into '-'. */
#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"

static int parse_pages(struct wctx *x, yaml_node_t *seq, struct cfwire_config *w)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE) return wfail(x, seq, "pages", "expected a list%s", NULL);
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top && !x->failed; it++) {
        yaml_node_t *m = wnode(x, *it);
        struct cfwire_pages *pg = grow((void **)&w->pages, &w->npages, sizeof *pg);
        if (!pg) return wfail(x, m, "pages", "out of memory%s", NULL);
        if (wscalar(m)) { /* "- my-site" is short for "- project: my-site" */
            wstr(x, m, "pages.project", &pg->project, 58);
        } else if (is_map(m)) {
            EACH_PAIR(x, m, k, v, kn)
            {
                if (!strcmp(k, "project")) wstr(x, v, "pages.project", &pg->project, 58);
                else if (!strcmp(k, "environments")) envs_of(x, v, &pg->envs);
                else if (!strcmp(k, "events")) events_of(x, v, &pg->events);
                else wfail(x, kn, "pages", "unknown key '%s'", k);
            }
        } else return wfail(x, m, "pages", "expected a project name or a mapping%s", NULL);
        if (x->failed) return -1;
        if (!pg->project) return wfail(x, m, "pages", "project is required%s", NULL);
        if (!norm_valid_pages_project(pg->project))
            return wfail(x, m, "pages.project", "'%s' is not a Pages project name ([a-z0-9-], at most 58)", pg->project);
    }
    return x->failed ? -1 : 0;
}

/* filters: {name: [values]} (a single value is a one-item list). */
static json_t *parse_filters(struct wctx *x, yaml_node_t *m)
{
    if (!is_map(m)) return wfail(x, m, "alerts.filters", "expected a mapping of lists%s", NULL), NULL;
    json_t *o = json_object();
    if (!o) return NULL;
    EACH_PAIR(x, m, k, v, kn)
    {
        (void)kn;
        json_t *a = json_array();
        if (wscalar(v)) json_array_append_new(a, json_string(wscalar(v)));
        else if (v && v->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                const char *s = wscalar(wnode(x, *it));
                if (!s) {
                    wfail(x, v, "alerts.filters", "'%s': expected a list of strings", k);
                    break;
                }
                json_array_append_new(a, json_string(s));
            }
        } else wfail(x, v, "alerts.filters", "'%s': expected a list of strings", k);
        json_object_set_new(o, k, a);
    }
    if (x->failed) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A list of mappings under key, each read by one() into a fresh zeroed
 * element of *arr; expect says what a mapping must hold. */
static int each_mapping(struct wctx *x, yaml_node_t *seq, const char *key, const char *expect, void **arr, size_t *n,
                        size_t size, int (*one)(struct wctx *x, yaml_node_t *m, void *elem, struct cfwire_config *w),
                        struct cfwire_config *w)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE) return wfail(x, seq, key, "expected a list%s", NULL);
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top && !x->failed; it++) {
        yaml_node_t *m = wnode(x, *it);
        void *elem = grow(arr, n, size);
        if (!elem) return wfail(x, m, key, "out of memory%s", NULL);
        if (!is_map(m)) return wfail(x, m, key, expect, NULL);
        if (one(x, m, elem, w)) return -1;
    }
    return x->failed ? -1 : 0;
}

static int alert_one(struct wctx *x, yaml_node_t *m, void *elem, struct cfwire_config *w)
{
    struct cfwire_alert *a = elem;
    (void)w;
    EACH_PAIR(x, m, k, v, kn)
    {
        if (!strcmp(k, "type")) wstr(x, v, "alerts.type", &a->type, 100);
        else if (!strcmp(k, "name")) wstr(x, v, "alerts.name", &a->name, 100);
        else if (!strcmp(k, "filters")) a->filters = parse_filters(x, v);
        else wfail(x, kn, "alerts", "unknown key '%s'", k);
    }
    if (x->failed) return -1;
    if (!a->type) return wfail(x, m, "alerts", "type is required (an alert_type, e.g. dos_attack_l7)%s", NULL);
    if (!str_of_class(a->type, strlen(a->type), "abcdefghijklmnopqrstuvwxyz0123456789_", 100))
        return wfail(x, m, "alerts.type", "'%s' is not an alert type (a-z 0-9 _)", a->type);
    if (!strcmp(a->type, "pages_event_alert"))
        return wfail(x, m, "alerts.type", "pages_event_alert is set with cloudflare.pages%s", NULL);
    const char *nm = a->name ? a->name : a->type;
    if (!str_of_class(nm, strlen(nm), NAME_CHARS, 100)) return wfail(x, m, "alerts.name", "'%s': use a-z A-Z 0-9 . - _", nm);
    return x->failed ? -1 : 0;
}

static int parse_alerts(struct wctx *x, yaml_node_t *seq, struct cfwire_config *w)
{
    return each_mapping(x, seq, "alerts", "expected a mapping with type%s", (void **)&w->alerts, &w->nalerts,
                        sizeof *w->alerts, alert_one, w);
}

static int logpush_one(struct wctx *x, yaml_node_t *m, void *elem, struct cfwire_config *w)
{
    struct cfwire_logpush *l = elem;
    EACH_PAIR(x, m, k, v, kn)
    {
        if (!strcmp(k, "dataset")) wstr(x, v, "logpush.dataset", &l->dataset, 64);
        else if (!strcmp(k, "zone_id")) wstr(x, v, "logpush.zone_id", &l->zone_id, 64);
        else if (!strcmp(k, "fields")) wlist(x, v, "logpush.fields", &l->fields);
        else if (!strcmp(k, "filter")) {
            if (!wstr(x, v, "logpush.filter", &l->filter, 4096)) {
                json_t *j = json_loads(l->filter, 0, NULL);
                if (!json_is_object(j)) wfail(x, v, "logpush.filter", "expected Logpush filter JSON, e.g. {\"where\":{...}}%s", NULL);
                json_decref(j);
            }
        } else if (!strcmp(k, "max_upload_bytes")) {
            const char *s = wscalar(v);
            if (!s || parse_size(s, &l->max_upload_bytes) || l->max_upload_bytes < 5000000 || l->max_upload_bytes > 1000000000)
                wfail(x, v, "logpush.max_upload_bytes", "expected a size from 5000000 (5 MB) to 1000000000 (1 GB)%s", NULL);
        } else if (!strcmp(k, "max_upload_records")) wuint(x, v, "logpush.max_upload_records", &l->max_upload_records, 1000, 1000000);
        else if (!strcmp(k, "max_upload_interval")) {
            unsigned long long ms;
            const char *s = wscalar(v);
            if (!s || parse_duration_ms(s, &ms) || ms < 30000 || ms > 300000)
                wfail(x, v, "logpush.max_upload_interval", "expected a duration from 30s to 300s%s", NULL);
            else l->max_upload_interval_s = (unsigned)(ms / 1000);
        } else wfail(x, kn, "logpush", "unknown key '%s'", k);
    }
    if (x->failed) return -1;
    if (!l->dataset) return wfail(x, m, "logpush", "dataset is required (e.g. workers_trace_events, http_requests)%s", NULL);
    if (!str_of_class(l->dataset, strlen(l->dataset), "abcdefghijklmnopqrstuvwxyz0123456789_", 64))
        return wfail(x, m, "logpush.dataset", "'%s' is not a dataset name", l->dataset);
    if (l->zone_id && !str_of_class(l->zone_id, strlen(l->zone_id), "abcdef0123456789", 32))
        return wfail(x, m, "logpush.zone_id", "'%s' is not a zone id (32 hex digits)", l->zone_id);
    for (size_t j = 0; j + 1 < w->nlogpush; j++)
        if (!strcmp(w->logpush[j].dataset, l->dataset) && !!w->logpush[j].zone_id == !!l->zone_id &&
            (!l->zone_id || !strcmp(w->logpush[j].zone_id, l->zone_id)))
            return wfail(x, m, "logpush", "dataset %s is listed twice for the same scope", l->dataset);
    return x->failed ? -1 : 0;
}

static int parse_logpush(struct wctx *x, yaml_node_t *seq, struct cfwire_config *w)
{
    return each_mapping(x, seq, "logpush", "expected a mapping with dataset%s", (void **)&w->logpush, &w->nlogpush,
                        sizeof *w->logpush, logpush_one, w);
}

static int sub_one(struct wctx *x, yaml_node_t *m, void *elem, struct cfwire_config *w)
{
    struct cfwire_sub *s = elem;
    (void)w;
    EACH_PAIR(x, m, k, v, kn)
    {
        if (!strcmp(k, "source")) wstr(x, v, "subscriptions.source", &s->source, 64);
        else if (!strcmp(k, "resource") || !strcmp(k, "worker_name") || !strcmp(k, "script_tag") ||
                 !strcmp(k, "workflow_name") || !strcmp(k, "model_name"))
            wstr(x, v, "subscriptions.resource", &s->resource, 255);
        else if (!strcmp(k, "events")) wlist(x, v, "subscriptions.events", &s->events);
        else wfail(x, kn, "subscriptions", "unknown key '%s'", k);
    }
    if (x->failed) return -1;
    static const char *const sources[] = {"workersBuilds.worker", "workers.script", "workflows.workflow", "workersAi.model",
                                          "r2", "kv", "images", "superSlurper", "vectorize", NULL};
    const char *const *src = sources;
    while (*src && (!s->source || strcmp(*src, s->source) != 0)) src++;
    if (!*src)
        return wfail(x, m, "subscriptions.source",
                     "expected workersBuilds.worker, workers.script, workflows.workflow, workersAi.model, r2, kv, images, "
                     "superSlurper or vectorize%s", NULL);
    if (!s->events || !s->events[0]) return wfail(x, m, "subscriptions.events", "at least one event type (e.g. build.succeeded)%s", NULL);
    if (s->resource && !str_of_class(s->resource, strlen(s->resource), NAME_CHARS, 255))
        return wfail(x, m, "subscriptions.resource", "'%s': use a-z A-Z 0-9 . - _", s->resource);
    return x->failed ? -1 : 0;
}

static int parse_subs(struct wctx *x, yaml_node_t *seq, struct cfwire_config *w)
{
    return each_mapping(x, seq, "subscriptions", "expected a mapping with source and events%s", (void **)&w->subs,
                        &w->nsubs, sizeof *w->subs, sub_one, w);
}

int cfwire_config_parse(struct cfwire_config **out, void *docp, void *nodep, const char *file, char *err, size_t errlen)
{
    struct wctx x = {docp, file, err, errlen, 0};
    yaml_node_t *root = nodep;
    if (!is_map(root)) return wfail(&x, root, "", "expected a mapping%s", NULL);
    struct cfwire_config *w = *out;
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) return wfail(&x, root, "", "out of memory%s", NULL);
        w->pages_from_handlers = 1;
        *out = w;
    }
    EACH_PAIR(&x, root, k, v, kn)
    {
        if (!strcmp(k, "target")) {
            if (!wstr(&x, v, "target", &w->target, 2000) && strncmp(w->target, "https://", 8) && strncmp(w->target, "http://", 7))
                wfail(&x, v, "target", "expected an http(s):// URL%s", NULL);
            else if (w->target) {
                size_t n = strlen(w->target);
                while (n > 8 && w->target[n - 1] == '/') w->target[--n] = '\0';
            }
        } else if (!strcmp(k, "target_max_body")) {
            const char *s = wscalar(v);
            if (!s || parse_size(s, &w->target_max) || w->target_max < 5000000)
                wfail(&x, v, "target_max_body", "expected a size of at least 5000000 (Logpush's smallest batch)%s", NULL);
        } else if (!strcmp(k, "pages_from_handlers")) wbool(&x, v, "pages_from_handlers", &w->pages_from_handlers);
        else if (!strcmp(k, "pages")) parse_pages(&x, v, w);
        else if (!strcmp(k, "alerts")) parse_alerts(&x, v, w);
        else if (!strcmp(k, "logpush")) parse_logpush(&x, v, w);
        else if (!strcmp(k, "subscriptions")) parse_subs(&x, v, w);
        else wfail(&x, kn, k, "unknown key%s", NULL);
    }
    return x.failed ? -1 : 0;
}

void cfwire_config_free(struct cfwire_config *w)
{
    if (!w) return;
    free(w->target);
    for (size_t i = 0; i < w->npages; i++) free(w->pages[i].project);
    free(w->pages);
    for (size_t i = 0; i < w->nalerts; i++) {
        free(w->alerts[i].type);
        free(w->alerts[i].name);
        json_decref(w->alerts[i].filters);
    }
    free(w->alerts);
    for (size_t i = 0; i < w->nlogpush; i++) {
        free(w->logpush[i].dataset);
        free(w->logpush[i].zone_id);
        free_list(w->logpush[i].fields);
        free(w->logpush[i].filter);
    }
    free(w->logpush);
    for (size_t i = 0; i < w->nsubs; i++) {
        free(w->subs[i].source);
        free(w->subs[i].resource);
        free_list(w->subs[i].events);
    }
    free(w->subs);
    free(w);
}
