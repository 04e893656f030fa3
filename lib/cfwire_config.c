/* cfwire_config.c -- owns the `cloudflare:` section of synccf.yaml (and of
 * sync.cloudflare in an xplat.yaml): what `synccf cloudflare setup` wires.
 * Strict like the rest of the file: an unknown key or a bad value is an
 * error naming the file, the line and the key. Also the defaults the
 * handlers imply (a task-cache rule for Pages project P wants P's deployment
 * notifications). Kept apart from config.c, which only hands the section
 * over. */
#include "cfwire.h"

#include <stddef.h>
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

/* The keys of a list's items, a table each: where a key's value goes and
 * how it is read (and freed). */
enum item_kind {
    I_STR,     /* char *, 1..max characters */
    I_JSON,    /* char *, 1..max characters of a JSON object */
    I_LIST,    /* char **, NULL-terminated */
    I_FILTERS, /* json_t *: {name: [values]} */
    I_UINT,    /* unsigned, min..max */
    I_SIZE,    /* size_t, min..max bytes */
    I_SECONDS, /* unsigned seconds, from a duration of min..max ms */
};

struct item_key {
    const char *key;
    enum item_kind kind;
    size_t off;
    unsigned long long min, max;
    const char *as;   /* another spelling of this key: the one errors name (and that frees it) */
    const char *want; /* I_JSON, I_SIZE, I_SECONDS: the error */
};

#define ALERT(f) offsetof(struct cfwire_alert, f)
static const struct item_key alert_keys[] = {
    {"type", I_STR, ALERT(type), 0, 100, NULL, NULL},
    {"name", I_STR, ALERT(name), 0, 100, NULL, NULL},
    {"filters", I_FILTERS, ALERT(filters), 0, 0, NULL, NULL},
    {NULL, I_STR, 0, 0, 0, NULL, NULL},
};

#define LOGPUSH(f) offsetof(struct cfwire_logpush, f)
static const struct item_key logpush_keys[] = {
    {"dataset", I_STR, LOGPUSH(dataset), 0, 64, NULL, NULL},
    {"zone_id", I_STR, LOGPUSH(zone_id), 0, 64, NULL, NULL},
    {"fields", I_LIST, LOGPUSH(fields), 0, 0, NULL, NULL},
    {"filter", I_JSON, LOGPUSH(filter), 0, 4096, NULL, "expected Logpush filter JSON, e.g. {\"where\":{...}}%s"},
    {"max_upload_bytes", I_SIZE, LOGPUSH(max_upload_bytes), 5000000, 1000000000, NULL,
     "expected a size from 5000000 (5 MB) to 1000000000 (1 GB)%s"},
    {"max_upload_records", I_UINT, LOGPUSH(max_upload_records), 1000, 1000000, NULL, NULL},
    {"max_upload_interval", I_SECONDS, LOGPUSH(max_upload_interval_s), 30000, 300000, NULL,
     "expected a duration from 30s to 300s%s"},
    {NULL, I_STR, 0, 0, 0, NULL, NULL},
};

#define SUB(f) offsetof(struct cfwire_sub, f)
static const struct item_key sub_keys[] = {
    {"source", I_STR, SUB(source), 0, 64, NULL, NULL},
    {"resource", I_STR, SUB(resource), 0, 255, NULL, NULL},
    {"worker_name", I_STR, SUB(resource), 0, 255, "resource", NULL},
    {"script_tag", I_STR, SUB(resource), 0, 255, "resource", NULL},
    {"workflow_name", I_STR, SUB(resource), 0, 255, "resource", NULL},
    {"model_name", I_STR, SUB(resource), 0, 255, "resource", NULL},
    {"events", I_LIST, SUB(events), 0, 0, NULL, NULL},
    {NULL, I_STR, 0, 0, 0, NULL, NULL},
};

/* The value of key f of an item at dst; errors name it "<list>.<key>". */
static void read_item_key(struct wctx *x, const char *list, const struct item_key *f, yaml_node_t *v, void *dst)
{
    char name[64];
    snprintf(name, sizeof name, "%s.%s", list, f->as ? f->as : f->key);
    const char *s = wscalar(v);
    unsigned long long ms;
    switch (f->kind) {
    case I_STR: wstr(x, v, name, dst, f->max); break;
    case I_JSON:
        if (!wstr(x, v, name, dst, f->max)) {
            json_t *j = json_loads(*(char **)dst, 0, NULL);
            if (!json_is_object(j)) wfail(x, v, name, f->want, NULL);
            json_decref(j);
        }
        break;
    case I_LIST: wlist(x, v, name, dst); break;
    case I_FILTERS: *(json_t **)dst = parse_filters(x, v); break;
    case I_UINT: wuint(x, v, name, dst, (unsigned)f->min, (unsigned)f->max); break;
    case I_SIZE:
        if (!s || parse_size(s, dst) || *(size_t *)dst < f->min || *(size_t *)dst > f->max) wfail(x, v, name, f->want, NULL);
        break;
    case I_SECONDS:
        if (!s || parse_duration_ms(s, &ms) || ms < f->min || ms > f->max) wfail(x, v, name, f->want, NULL);
        else *(unsigned *)dst = (unsigned)(ms / 1000);
        break;
    }
}

/* What an item holds, by its table. */
static void free_item(const struct item_key *keys, void *elem)
{
    for (const struct item_key *f = keys; f->key; f++) {
        void *p = (char *)elem + f->off;
        if (f->as) continue; /* freed under the key it spells */
        if (f->kind == I_STR || f->kind == I_JSON) free(*(char **)p);
        else if (f->kind == I_LIST) free_list(*(char ***)p);
        else if (f->kind == I_FILTERS) json_decref(*(json_t **)p);
    }
}

/* alerts: an item once its keys are read. */
static int alert_check(struct wctx *x, yaml_node_t *m, const void *elem, const struct cfwire_config *w)
{
    const struct cfwire_alert *a = elem;
    (void)w;
    if (!a->type) return wfail(x, m, "alerts", "type is required (an alert_type, e.g. dos_attack_l7)%s", NULL);
    if (!str_of_class(a->type, strlen(a->type), "abcdefghijklmnopqrstuvwxyz0123456789_", 100))
        return wfail(x, m, "alerts.type", "'%s' is not an alert type (a-z 0-9 _)", a->type);
    if (!strcmp(a->type, "pages_event_alert"))
        return wfail(x, m, "alerts.type", "pages_event_alert is set with cloudflare.pages%s", NULL);
    const char *nm = a->name ? a->name : a->type;
    if (!str_of_class(nm, strlen(nm), NAME_CHARS, 100)) return wfail(x, m, "alerts.name", "'%s': use a-z A-Z 0-9 . - _", nm);
    return 0;
}

/* logpush: an item, and that no other names the same dataset and scope. */
static int logpush_check(struct wctx *x, yaml_node_t *m, const void *elem, const struct cfwire_config *w)
{
    const struct cfwire_logpush *l = elem;
    if (!l->dataset) return wfail(x, m, "logpush", "dataset is required (e.g. workers_trace_events, http_requests)%s", NULL);
    if (!str_of_class(l->dataset, strlen(l->dataset), "abcdefghijklmnopqrstuvwxyz0123456789_", 64))
        return wfail(x, m, "logpush.dataset", "'%s' is not a dataset name", l->dataset);
    if (l->zone_id && !str_of_class(l->zone_id, strlen(l->zone_id), "abcdef0123456789", 32))
        return wfail(x, m, "logpush.zone_id", "'%s' is not a zone id (32 hex digits)", l->zone_id);
    for (size_t j = 0; j + 1 < w->nlogpush; j++)
        if (!strcmp(w->logpush[j].dataset, l->dataset) && !!w->logpush[j].zone_id == !!l->zone_id &&
            (!l->zone_id || !strcmp(w->logpush[j].zone_id, l->zone_id)))
            return wfail(x, m, "logpush", "dataset %s is listed twice for the same scope", l->dataset);
    return 0;
}

static int sub_check(struct wctx *x, yaml_node_t *m, const void *elem, const struct cfwire_config *w)
{
    static const char *const sources[] = {"workersBuilds.worker", "workers.script", "workflows.workflow", "workersAi.model",
                                          "r2", "kv", "images", "superSlurper", "vectorize", NULL};
    const struct cfwire_sub *s = elem;
    (void)w;
    const char *const *src = sources;
    while (*src && (!s->source || strcmp(*src, s->source) != 0)) src++;
    if (!*src)
        return wfail(x, m, "subscriptions.source",
                     "expected workersBuilds.worker, workers.script, workflows.workflow, workersAi.model, r2, kv, images, "
                     "superSlurper or vectorize%s", NULL);
    if (!s->events || !s->events[0]) return wfail(x, m, "subscriptions.events", "at least one event type (e.g. build.succeeded)%s", NULL);
    if (s->resource && !str_of_class(s->resource, strlen(s->resource), NAME_CHARS, 255))
        return wfail(x, m, "subscriptions.resource", "'%s': use a-z A-Z 0-9 . - _", s->resource);
    return 0;
}

/* The lists of mappings under cloudflare:: each item is a fresh zeroed
 * element of the array at arr (its count at n), its keys those of keys[]
 * and the whole checked by check(); expect says what an item must hold. */
struct list_key {
    const char *key, *expect;
    size_t arr, n, size;
    const struct item_key *keys;
    int (*check)(struct wctx *x, yaml_node_t *m, const void *elem, const struct cfwire_config *w);
};

#define LIST_KEY(key, expect, field, count, prefix)                                                                   \
    {key, expect, offsetof(struct cfwire_config, field), offsetof(struct cfwire_config, count),                       \
     sizeof *((struct cfwire_config *)0)->field, prefix##_keys, prefix##_check}

static const struct list_key list_keys[] = {
    LIST_KEY("alerts", "expected a mapping with type%s", alerts, nalerts, alert),
    LIST_KEY("logpush", "expected a mapping with dataset%s", logpush, nlogpush, logpush),
    LIST_KEY("subscriptions", "expected a mapping with source and events%s", subs, nsubs, sub),
};
#define NLIST_KEYS (sizeof list_keys / sizeof *list_keys)

/* The array of a list in w, and its count. */
static void **list_items(struct cfwire_config *w, const struct list_key *l) { return (void **)((char *)w + l->arr); }
static size_t *list_count(struct cfwire_config *w, const struct list_key *l) { return (size_t *)((char *)w + l->n); }

static int each_mapping(struct wctx *x, yaml_node_t *seq, const struct list_key *l, struct cfwire_config *w)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE) return wfail(x, seq, l->key, "expected a list%s", NULL);
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top && !x->failed; it++) {
        yaml_node_t *m = wnode(x, *it);
        void *elem = grow(list_items(w, l), list_count(w, l), l->size);
        if (!elem) return wfail(x, m, l->key, "out of memory%s", NULL);
        if (!is_map(m)) return wfail(x, m, l->key, l->expect, NULL);
        EACH_PAIR(x, m, k, v, kn)
        {
            const struct item_key *f = l->keys;
            while (f->key && strcmp(f->key, k) != 0) f++;
            if (f->key) read_item_key(x, l->key, f, v, (char *)elem + f->off);
            else wfail(x, kn, l->key, "unknown key '%s'", k);
        }
        if (x->failed || l->check(x, m, elem, w)) return -1;
    }
    return x->failed ? -1 : 0;
}

/* 1 when k is one of list_keys (read into w), else 0. */
static int parse_list_key(struct wctx *x, const char *k, yaml_node_t *v, struct cfwire_config *w)
{
    for (size_t i = 0; i < NLIST_KEYS; i++)
        if (strcmp(k, list_keys[i].key) == 0) return each_mapping(x, v, &list_keys[i], w), 1;
    return 0;
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
        else if (!parse_list_key(&x, k, v, w)) wfail(&x, kn, k, "unknown key%s", NULL);
    }
    return x.failed ? -1 : 0;
}

void cfwire_config_free(struct cfwire_config *w)
{
    if (!w) return;
    free(w->target);
    for (size_t i = 0; i < w->npages; i++) free(w->pages[i].project);
    free(w->pages);
    for (const struct list_key *l = list_keys; l < list_keys + NLIST_KEYS; l++) {
        char *items = *list_items(w, l);
        for (size_t i = 0; i < *list_count(w, l); i++) free_item(l->keys, items + i * l->size);
        free(items);
    }
    free(w);
}
