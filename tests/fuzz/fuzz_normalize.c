/* fuzz_normalize.c -- libFuzzer target: request bodies of the JSON routes
 * (notification, generic hook, xplat event, CloudEvents batch) through
 * parsing, normalization and serialization. The first byte picks the route. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../lib/event.h"
#include "../../lib/normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int route = data[0] % 4;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!j) return 0;
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
