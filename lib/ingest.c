/* ingest.c -- turns a normalized event into a store_event and picks its
 * handlers, on the caller's thread, so that the outbox rows can be written
 * in the same transaction as the event. Every way in (receiver, pull, queue,
 * poll) goes through here. */
#include "ingest.h"

#include <stdlib.h>
#include <string.h>

/* Sets se->handlers to the handlers router picks for ev. -1 out of memory. */
static int route(struct store_event *se, const json_t *ev, const struct router *router)
{
    const char **names = router ? router_route(router, ev) : NULL;
    if (!names) return 0;
    size_t n = 0;
    while (names[n]) n++;
    int rc = 0;
    se->handlers = calloc(n + 1, sizeof *se->handlers);
    for (size_t i = 0; se->handlers && i < n; i++)
        if (!(se->handlers[i] = strdup(names[i]))) rc = -1;
    if (!se->handlers) rc = -1;
    free(names);
    return rc;
}

int ingest_add(struct store_batch *b, json_t *ev, const struct router *router)
{
    struct store_event se;
    int rc = store_event_from_json(ev, &se);
    if (rc == 0) rc = route(&se, ev, router);
    json_decref(ev);
    if (rc == 0 && store_batch_add(b, &se) != 0) rc = -1;
    if (rc) store_event_free(&se);
    return rc;
}

static const char *str(const json_t *ev, const char *k) { return json_string_value(json_object_get(ev, k)); }

int ingest_add_kept(struct store_batch *b, json_t *ev, char *text, const struct router *router)
{
    const char *id = str(ev, "id"), *type = str(ev, "type"), *source = str(ev, "source"), *time = str(ev, "time"),
               *via = str(ev, "synccfvia"), *received = str(ev, "synccfreceived");
    if (!text || !id || !type || !source || !time || !via || !received) {
        free(text);
        return ingest_add(b, ev, router);
    }
    struct store_event se;
    int rc = store_event_from_text(id, type, source, str(ev, "subject"), time, via, received, text, &se);
    if (rc == 0) rc = route(&se, ev, router);
    json_decref(ev);
    if (rc == 0 && store_batch_add(b, &se) != 0) rc = -1;
    if (rc) store_event_free(&se);
    return rc;
}

int ingest_add_text(struct store_batch *b, struct norm_text *t, const char *via, const struct router *router)
{
    struct store_event se;
    char *text = t->text;
    t->text = NULL;
    int rc = store_event_from_text(t->id, t->type, t->source, t->has_subject ? t->subject : NULL, t->time, via,
                                   t->received, text, &se);
    /* Handlers match on the event's tree; it is built only when some
     * handler could want it. */
    if (rc == 0 && router && router_has_handlers(router)) {
        json_t *ev = json_loadb(se.body, t->len, 0, NULL);
        rc = ev ? route(&se, ev, router) : -1;
        json_decref(ev);
    }
    if (rc == 0 && store_batch_add(b, &se) != 0) rc = -1;
    if (rc) store_event_free(&se);
    return rc;
}
