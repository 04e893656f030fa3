/* testutil.h -- helpers for the cmocka unit tests (header-only). */
#ifndef SYNCCF_TESTUTIL_H
#define SYNCCF_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../lib/jsonx.h"

/* Whole file into memory (NUL-terminated); NULL if unreadable. */
static inline char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        fclose(f);
        return NULL;
    }
    p[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return p;
}

/* A JSON file parsed as the daemon parses input (integers past 64 bits
 * kept: some vectors hold them); fails the test if it cannot be read. */
static inline json_t *load_json(const char *path)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    assert_non_null(text);
    json_t *v = jx_loadb(text, len, 0, NULL);
    free(text);
    assert_non_null(v);
    return v;
}

#endif
