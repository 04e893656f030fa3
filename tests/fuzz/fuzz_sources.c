/* fuzz_sources.c -- libFuzzer target: what Cloudflare's API returns to the
 * poller and the queue consumer: audit-log pages (v2 and v1 entries), Pages
 * deployments lists, and queue messages (Event Subscription bodies and
 * CloudEvents). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../lib/event.h"
#include "../../lib/normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (!j) return 0;
    struct norm_opts o = {"poll", 1763633000000};
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(j, "result"), i, e) {
        for (int v2 = 0; v2 < 2; v2++) {
            json_t *ev = norm_audit(e, v2, &o);
            if (ev) free(event_dump(ev));
            json_decref(ev);
        }
        json_t *ev = NULL;
        if (norm_pages_deployment(e, "9035f53656c247e895c5a6939ae8a0e0", &o, &ev) > 0) free(event_dump(ev));
        json_decref(ev);
    }
    json_array_foreach(json_object_get(json_object_get(j, "result"), "messages"), i, e) {
        json_t *body = json_object_get(e, "body");
        json_t *parsed = json_is_string(body) ? json_loads(json_string_value(body), 0, NULL) : json_incref(body);
        json_t *ev = norm_evsub(parsed, json_string_value(json_object_get(e, "id")), &o);
        if (ev) free(event_dump(ev));
        json_decref(ev);
        if (parsed && !event_accept(parsed, &o)) free(event_dump(parsed));
        json_decref(parsed);
    }
    json_decref(j);
    return 0;
}
