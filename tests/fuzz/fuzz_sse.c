/* fuzz_sse.c -- libFuzzer target: the Server-Sent Events reader (pull's
 * stream). Input: one byte choosing how to split, then the stream bytes.
 * Beyond not crashing, it checks that the split does not matter: the events
 * and the result read in one piece and in chunks must be identical. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/sse.h"

struct log {
    char *p;
    size_t len;
};

static int record(void *arg, long long id, const char *type, const char *data, size_t len)
{
    struct log *l = arg;
    size_t tl = strlen(type);
    if (tl >= 32 || len > 256 || data[len] != '\0') abort(); /* the bounds the reader promises */
    l->p = realloc(l->p, l->len + sizeof id + tl + len + 2);
    memcpy(l->p + l->len, &id, sizeof id);
    memcpy(l->p + l->len + sizeof id, type, tl + 1);
    memcpy(l->p + l->len + sizeof id + tl + 1, data, len + 1);
    l->len += sizeof id + tl + len + 2;
    return 0;
}

static int read_all(const uint8_t *d, size_t n, unsigned split, struct log *l)
{
    struct sse s;
    sse_init(&s, 256, record, l);
    int rc = SSE_OK;
    for (size_t i = 0; i < n && rc == SSE_OK;) {
        size_t k = split ? 1 + (i * 7 + split) % (split + 1) : n;
        if (k > n - i) k = n - i;
        rc = sse_feed(&s, (const char *)d + i, k);
        i += k;
    }
    sse_free(&s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    struct log a = {0}, b = {0};
    int ra = read_all(data + 1, size - 1, 0, &a);
    int rb = read_all(data + 1, size - 1, data[0] % 16 + 1, &b);
    if (ra != rb || a.len != b.len || (a.len && memcmp(a.p, b.p, a.len) != 0)) abort();
    free(a.p);
    free(b.p);
    return 0;
}
