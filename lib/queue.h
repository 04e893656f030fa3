/* queue.h -- consumes a Cloudflare Queue over the HTTP pull consumer API. */
#ifndef SYNCCF_QUEUE_H
#define SYNCCF_QUEUE_H

#include <stddef.h>

#include "config.h"
#include "store.h"

struct queue;
struct queue *queue_start(struct store *st, const struct config *cfg, char *err, size_t errlen);
void queue_stop(struct queue *q);
/* 0 while pulls fail (token refused, API unreachable). */
int queue_healthy(struct queue *q);

#endif
