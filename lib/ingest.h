/* ingest.h -- the last step before the store, shared by every way in: an
 * event becomes a store_event with the handler runs it needs. */
#ifndef SYNCCF_INGEST_H
#define SYNCCF_INGEST_H

#include <jansson.h>

#include "config.h"
#include "normalize.h"
#include "store.h"

/* Adds ev (a normalized CloudEvent; the reference is taken over) to b, with
 * its handler runs chosen by router (NULL: none). 0, or -1 out of memory. */
int ingest_add(struct store_batch *b, json_t *ev, const struct router *router);

/* The same with ev's stored text already made (event_kept_text), so that
 * it is not serialized again; text is taken over, and NULL means "none":
 * then it is ingest_add. */
int ingest_add_kept(struct store_batch *b, json_t *ev, char *text, const struct router *router);

/* The same for an event made as text (norm_logpush_text); t->text is taken
 * over. 0, or -1 out of memory. */
int ingest_add_text(struct store_batch *b, struct norm_text *t, const char *via, const struct router *router);

#endif
