/* fuzz_envfile.c -- libFuzzer target: the --env-file parser and the reader
 * of Cloudflare's v4 list answers that `synccf cloudflare` trusts. The first
 * byte picks which. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/cfwire.h"
#include "../../lib/envfile.h"

static int count(const char *k, const char *v, void *arg)
{
    /* Touch what the parser hands over: it must be NUL-terminated. */
    *(size_t *)arg += strlen(k) + strlen(v);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        json_t *l = cfwire_parse_list(p, n);
        json_decref(l);
    } else {
        size_t total = 0;
        char err[256];
        envfile_parse(p, n, count, &total, err, sizeof err);
    }
    return 0;
}
