/* fuzz_logpush.c -- libFuzzer target: a Logpush body (gzip or plain) through
 * the streaming reader and the per-line normalizer, fed in pieces whose
 * sizes come from the input itself. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../lib/logpush.h"
#include "../../lib/normalize.h"

static int on_line(void *arg, const char *line, size_t len, unsigned long lineno)
{
    (void)arg;
    (void)lineno;
    struct norm_opts o = {"tunnel", 1763633000000};
    json_t *ev;
    char err[160];
    if (norm_logpush_line("http_requests", line, len, &o, &ev, err, sizeof err) > 0) json_decref(ev);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t step = (size_t)data[0] + 1;
    struct lp_reader r;
    lp_init(&r, on_line, NULL, 1u << 22, 1u << 16);
    for (size_t off = 1; off < size; off += step)
        if (lp_feed(&r, data + off, size - off < step ? size - off : step) != 0) break;
    lp_finish(&r);
    lp_free(&r);
    return 0;
}
