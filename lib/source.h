/* source.h -- what the background loops (pull, queue, poll and tunnel)
 * share: a thread that can be stopped promptly, interruptible waits, and the
 * state that `synccf status` shows for each of them. */
#ifndef SYNCCF_SOURCE_H
#define SYNCCF_SOURCE_H

#include <jansson.h>
#include <pthread.h>

#include "store.h"
#include "util.h"

struct source {
    const char *kind;           /* "pull", "queue", "poll", "tunnel": also the status key */
    struct store *store;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int running;                /* the thread exists: source_stop joins it */
    char state[32];             /* starting, connected, ok, backing_off, auth_error, ... */
    char last_error[256];
    char last_success[TIME_BUF];
};

void source_init(struct source *s, const char *kind, struct store *st);
/* Starts the thread; -1 when it cannot be created, with err saying so (then
 * source_stop still tears down cleanly). */
int source_start(struct source *s, void *(*fn)(void *), void *arg, char *err, size_t errlen);
/* Asks the thread to stop and waits for it. */
void source_stop(struct source *s);
int source_stopping(struct source *s);
/* Sleeps up to ms; returns early when asked to stop. */
void source_nap(struct source *s, long ms);
/* Records state (and extra fields, taken over) as meta "source.<kind>". */
void source_note(struct source *s, json_t *extra);

#endif
