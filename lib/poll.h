/* poll.h -- reads Cloudflare's Audit Logs API on an interval. */
#ifndef SYNCCF_POLL_H
#define SYNCCF_POLL_H

#include <stddef.h>

#include "config.h"
#include "store.h"

struct poll;
/* Starts polling with cfg's account, token, base URL and interval, from the
 * high-water mark committed in st. */
struct poll *poll_start(struct store *st, const struct config *cfg, char *err, size_t errlen);
/* Hybrid mode: polls only while active(arg) says so (the Worker stream is
 * down), standing by otherwise. */
void poll_set_standby(struct poll *p, int (*active)(void *arg), void *arg);
/* 1 unless the last run failed (standby counts as fine). */
int poll_healthy(struct poll *p);
int poll_run(struct poll *p, char *err, size_t errlen); /* starts the thread; -1 when it cannot */
void poll_stop(struct poll *p);

#endif
