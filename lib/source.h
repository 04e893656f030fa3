/* source.h -- what the background loops (pull, queue, poll and tunnel)
 * share: a thread that can be stopped promptly, interruptible waits, and the
 * state that `synccf status` shows for each of them. */
#ifndef SYNCCF_SOURCE_H
#define SYNCCF_SOURCE_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

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
    unsigned seed;              /* the thread's backoff jitter (source_backoff) */
};

/* A source's owner (struct pull, queue, poll, tunnel) begins with its struct
 * source, so that the source can start and end the whole owner: each owner's
 * file states it with SOURCE_OWNER. */
#define SOURCE_OWNER(type) _Static_assert(offsetof(type, src) == 0, #type " begins with its struct source")

void source_init(struct source *s, const char *kind, struct store *st);
/* calloc(1, size) for a source's owner; NULL with err "kind: out of memory". */
void *source_alloc(size_t size, const char *kind, char *err, size_t errlen);
/* source_init on owner's source, then its thread runs fn(owner): owner, or
 * NULL with err when the thread cannot be created (owner is then closed). */
void *source_launch(void *owner, const char *kind, struct store *st, void *(*fn)(void *), void (*release)(void *owner),
                    char *err, size_t errlen);
/* Starts the thread; -1 when it cannot be created, with err saying so (then
 * source_stop still tears down cleanly). */
int source_start(struct source *s, void *(*fn)(void *), void *arg, char *err, size_t errlen);
/* Asks the thread to stop and waits for it. */
void source_stop(struct source *s);
/* An owner's end: source_stop, then release(owner) for what else the owner
 * holds (NULL: nothing), then free(owner). NULL owner: nothing. */
void source_close(void *owner, void (*release)(void *owner));
/* The next wait after n failures in a row, with this source's jitter
 * (backoff_ms); called from the source's thread only. */
long source_backoff(struct source *s, int n, long base_ms, long max_ms);
int source_stopping(struct source *s);
/* Sleeps up to ms; returns early when asked to stop. */
void source_nap(struct source *s, long ms);
/* Records state (and extra fields, taken over) as meta "source.<kind>". */
void source_note(struct source *s, json_t *extra);

#endif
