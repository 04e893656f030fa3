/* route.c -- owns routing: which live handlers an event reaches (type and
 * subject globs, data matches), and the lifetime of the handler sets that
 * reload publishes. */
#include "route.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jsonx.h"
#include "util.h"

/* A copy of the C API callback h for a new set: its name and type glob (the
 * only conditions a callback has); the function and argument are shared. */
static int keep_callback(struct rules *r, const struct handler_def *old)
{
    struct handler_def *grown = realloc(r->h, (r->n + 1) * sizeof *r->h);
    if (!grown) return -1;
    r->h = grown;
    struct handler_def *h = &r->h[r->n];
    *h = *old;
    h->name = strdup(old->name);
    h->match_type = old->match_type ? strdup(old->match_type) : NULL;
    h->match_subject = NULL;
    h->match_data = NULL;
    h->nmatch_data = 0;
    if (!h->name || (old->match_type && !h->match_type)) {
        free(h->name);
        free(h->match_type);
        return -1;
    }
    r->n++;
    return 0;
}

void router_publish(struct router *rt, struct handler_def *h, size_t n, int keep_callbacks)
{
    struct rules *old = atomic_load(&rt->rules);
    struct rules *r = calloc(1, sizeof *r);
    if (!r) {
        /* Out of memory: the set in use stays; the new one is dropped. */
        for (size_t i = 0; i < n; i++) handler_def_free(&h[i]);
        free(h);
        return;
    }
    r->h = h;
    r->n = n;
    for (size_t i = 0; keep_callbacks && old && i < old->n; i++)
        if (old->h[i].kind == HANDLER_CALLBACK && keep_callback(r, &old->h[i]) != 0) break;
    r->retired = old;
    atomic_store(&rt->rules, r);
}

void router_publish_config(struct config *c, int keep_callbacks)
{
    router_publish(&c->router, c->handlers, c->nhandlers, keep_callbacks);
    c->handlers = NULL;
    c->nhandlers = 0;
}

int router_reload(struct router *r, const char *file, char *err, size_t errlen)
{
    if (!file) {
        snprintf(err, errlen, "no configuration file to reload");
        return -1;
    }
    struct config fresh;
    config_defaults(&fresh);
    if (config_load(&fresh, file, err, errlen) != 0) {
        config_free(&fresh);
        return -1;
    }
    router_publish(r, fresh.handlers, fresh.nhandlers, 1);
    fresh.handlers = NULL;
    fresh.nhandlers = 0;
    config_free(&fresh);
    return 0;
}

void router_free(struct router *rt)
{
    for (struct rules *r = atomic_load(&rt->rules), *next; r; r = next) {
        next = r->retired;
        for (size_t i = 0; i < r->n; i++) handler_def_free(&r->h[i]);
        free(r->h);
        free(r);
    }
    atomic_store(&rt->rules, NULL);
}

/* The value's text as a data match compares it: a string as it is, an
 * integer past 64 bits by its digits (the parser keeps it as a marked string,
 * whose marker strcmp would read as an empty string), other scalars as JSON
 * writes them. 0 for objects and arrays, which match nothing. */
static int value_text(const json_t *v, char *text, size_t n)
{
    if (jx_is_bigint(v)) snprintf(text, n, "%s", json_string_value(v) + 1);
    else if (json_is_integer(v)) snprintf(text, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_true(v)) snprintf(text, n, "true");
    else if (json_is_false(v)) snprintf(text, n, "false");
    else if (json_is_null(v)) snprintf(text, n, "null");
    else if (json_is_real(v)) snprintf(text, n, "%.17g", json_real_value(v));
    else return 0;
    return 1;
}

static int data_matches(const json_t *ev, const struct data_match *m)
{
    const json_t *v = json_object_get(ev, "data");
    char seg[128];
    const char *p = m->path;
    while (v && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof seg) return 0;
        memcpy(seg, p, n);
        seg[n] = '\0';
        v = json_is_object(v) ? json_object_get(v, seg) : NULL;
        p += n + (p[n] == '.');
    }
    if (!v) return 0;
    if (json_is_string(v) && !jx_is_bigint(v)) return strcmp(json_string_value(v), m->value) == 0;
    char text[256];
    return value_text(v, text, sizeof text) && strcmp(text, m->value) == 0;
}

static const struct handler_def *live(const struct router *rt, size_t *n)
{
    struct rules *r = atomic_load(&((struct router *)rt)->rules);
    *n = r ? r->n : 0;
    return r ? r->h : NULL;
}

static int handler_matches(const struct handler_def *h, const json_t *ev, const char *type, const char *subject)
{
    if (h->match_type && (!type || !glob_match(h->match_type, type))) return 0;
    if (h->match_subject && (!subject || !glob_match(h->match_subject, subject))) return 0;
    for (size_t j = 0; j < h->nmatch_data; j++)
        if (!data_matches(ev, &h->match_data[j])) return 0;
    return 1;
}

const char **router_route(const struct router *rt, const json_t *ev)
{
    const char **out = NULL;
    size_t n = 0, nh;
    const struct handler_def *hs = live(rt, &nh);
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *subject = json_string_value(json_object_get(ev, "subject"));
    for (size_t i = 0; i < nh; i++) {
        if (!handler_matches(&hs[i], ev, type, subject)) continue;
        const char **grown = realloc(out, (n + 2) * sizeof *out);
        if (!grown) break; /* out of memory: the handlers found so far */
        out = grown;
        out[n++] = hs[i].name;
        out[n] = NULL;
    }
    return out;
}

int router_has_handlers(const struct router *rt)
{
    size_t n;
    live(rt, &n);
    return n > 0;
}

const struct handler_def *router_handler(const struct router *rt, const char *name)
{
    size_t nh;
    const struct handler_def *hs = live(rt, &nh);
    for (size_t i = 0; i < nh; i++)
        if (strcmp(hs[i].name, name) == 0) return &hs[i];
    return NULL;
}
