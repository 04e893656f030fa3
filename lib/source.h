/* source.h -- what the background loops (pull, queue, poll and tunnel)
 * share: a thread that can be stopped promptly, interruptible waits, and the
 * state that `synccf status` shows for each of them. */
#ifndef SYNCCF_SOURCE_H
#define SYNCCF_SOURCE_H

#include <jansson.h>
#include <pthread.h>

#include "store.h"
#include "util.h"

/* What a source is doing, as `synccf status`, /metrics and the page show it
 * (the names are what they read from meta "source.<kind>"). */
enum source_state {
    SOURCE_STARTING,
    SOURCE_CONNECTED,    /* pull, tunnel: the stream or the tunnel is up */
    SOURCE_OK,           /* queue, poll: the last round succeeded */
    SOURCE_IDLE,         /* queue: nothing to pull */
    SOURCE_STANDBY,      /* poll: another way in covers the audit log */
    SOURCE_RECONNECTING, /* pull */
    SOURCE_RESTARTING,   /* tunnel: cloudflared exited */
    SOURCE_BACKING_OFF,
    SOURCE_RATE_LIMITED,
    SOURCE_AUTH_ERROR,
    SOURCE_ERROR,
    SOURCE_STOPPED,
    SOURCE_NSTATES
};
extern const char *const source_state_names[SOURCE_NSTATES];
/* The state named name, or -1. */
int source_state_parse(const char *name);
/* Whether a source in this state counts as up (synccf_source_up). */
int source_state_up(enum source_state st);

struct source {
    const char *kind;           /* "pull", "queue", "poll", "tunnel": also the status key */
    struct store *store;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int running;                /* the thread exists: source_stop joins it */
    enum source_state state;
    char last_error[256];
    char last_success[TIME_BUF];
};

void source_init(struct source *s, const char *kind, struct store *st);
/* calloc(1, size) for a source's owner; NULL with err "kind: out of memory". */
void *source_alloc(size_t size, const char *kind, char *err, size_t errlen);
/* source_init then source_start: -1 when the thread cannot be created (the
 * owner then stops itself, which tears the source down cleanly). */
int source_launch(struct source *s, const char *kind, struct store *st, void *(*fn)(void *), void *arg, char *err,
                  size_t errlen);
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
