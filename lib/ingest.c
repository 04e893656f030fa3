/* ingest.c -- turns a normalized event into a store_event and picks its
 * handlers, on the caller's thread, so that the outbox rows can be written
 * in the same transaction as the event. Every way in (receiver, pull, queue,
 * poll) goes through here. */
#include "ingest.h"

#include <stdlib.h>
#include <string.h>

int ingest_add(struct store_batch *b, json_t *ev, const struct config *routes)
{
    struct store_event se;
    int rc = store_event_from_json(ev, &se);
    const char **names = (rc == 0 && routes) ? config_route(routes, ev) : NULL;
    if (names) {
        size_t n = 0;
        while (names[n]) n++;
        se.handlers = calloc(n + 1, sizeof *se.handlers);
        for (size_t i = 0; i < n; i++) se.handlers[i] = strdup(names[i]);
        free(names);
    }
    json_decref(ev);
    if (rc == 0 && store_batch_add(b, &se) != 0) {
        store_event_free(&se);
        rc = -1;
    }
    return rc;
}
