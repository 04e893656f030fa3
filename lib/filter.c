/* filter.c -- decides which Logpush records are kept (a local policy, applied
 * after normalization has validated the record, before it reaches the store). */
#include "filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "normalize.h"
#include "util.h"

int filter_add(struct filter **list, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec) return -1;
    struct filter *f = calloc(1, sizeof *f);
    if (!f) return -1;
    const char *dot = memchr(spec, '.', (size_t)(eq - spec));
    const char *field = spec;
    if (dot) {
        size_t n = (size_t)(dot - spec);
        if (n >= sizeof f->dataset) goto bad;
        memcpy(f->dataset, spec, n);
        if (!norm_valid_dataset(f->dataset)) goto bad;
        field = dot + 1;
    }
    size_t fn = (size_t)(eq - field);
    if (fn == 0 || fn >= sizeof f->field) goto bad;
    memcpy(f->field, field, fn);
    if (!(f->glob = strdup(eq + 1))) goto bad;
    f->next = *list;
    *list = f;
    return 0;
bad:
    free(f);
    return -1;
}

static void value_text(const json_t *v, char *out, size_t n)
{
    if (!v) out[0] = '\0';
    else if (jx_is_bigint(v)) snprintf(out, n, "%s", json_string_value(v) + 1); /* its digits */
    else if (json_is_string(v)) snprintf(out, n, "%s", json_string_value(v));
    else if (json_is_integer(v)) snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v)) snprintf(out, n, "%.17g", json_real_value(v));
    else if (json_is_true(v)) snprintf(out, n, "true");
    else if (json_is_false(v)) snprintf(out, n, "false");
    else if (json_is_null(v)) snprintf(out, n, "null");
    else out[0] = '\0'; /* objects and arrays match only "*" */
}

int filter_keep(const struct filter *f, const char *dataset, const json_t *rec)
{
    char text[1024];
    for (; f; f = f->next) {
        if (f->dataset[0] && strcmp(f->dataset, dataset) != 0) continue;
        value_text(json_object_get(rec, f->field), text, sizeof text);
        if (!glob_match(f->glob, text)) return 0;
    }
    return 1;
}

void filter_free(struct filter *f)
{
    while (f) {
        struct filter *n = f->next;
        free(f->glob);
        free(f);
        f = n;
    }
}
