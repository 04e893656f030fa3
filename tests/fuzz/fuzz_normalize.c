/* fuzz_normalize.c -- libFuzzer target: request bodies of the JSON routes
 * (notification, generic hook, xplat event, CloudEvents batch) through
 * parsing (jx_loadb: integers past 64 bits kept), the CloudEvents checks,
 * normalization and serialization. The first byte picks the route. Whatever
 * parses must serialize to text that parses again to the same text: the
 * big-integer markers never leak into, or get lost from, what is stored. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/event.h"
#include "../../lib/jsonx.h"
#include "../../lib/normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int route = data[0] % 4;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    json_t *j = jx_loadb(body, len, JSON_DECODE_ANY, NULL);
    if (!j) return 0;
    char *text = jx_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (text) {
        json_t *again = jx_loadb(text, strlen(text), JSON_DECODE_ANY, NULL);
        if (!again) abort();
        char *text2 = jx_dumps(again, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (!text2 || strcmp(text, text2) != 0) abort();
        free(text2);
        json_decref(again);
        free(text);
    }
    struct norm_opts o = {"tunnel", 1763633000000};
    json_t *ev = NULL;
    const char *err = NULL;
    switch (route) {
    case 0: ev = norm_notification(j, &o); break;
    case 1: ev = norm_generic("fuzz", body, len, j, &o); break;
    case 2: {
        json_t *out = json_array();
        size_t bad = 0;
        norm_xplat(j, &o, out, &bad, &err);
        json_decref(out);
        break;
    }
    case 3:
        if (json_is_array(j)) {
            size_t i;
            json_t *e;
            json_array_foreach(j, i, e) if (event_accept(e, &o)) break;
        } else {
            event_check(j);
        }
        break;
    }
    if (ev) {
        char *s = event_dump(ev);
        free(s);
        json_decref(ev);
    }
    json_decref(j);
    return 0;
}
