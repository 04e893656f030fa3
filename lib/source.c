/* source.c -- the thread, waits and status shared by pull, queue, poll and
 * tunnel. */
#include "source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

const char *const source_state_names[SOURCE_NSTATES] = {
    [SOURCE_STARTING] = "starting",         [SOURCE_CONNECTED] = "connected",
    [SOURCE_OK] = "ok",                     [SOURCE_IDLE] = "idle",
    [SOURCE_STANDBY] = "standby",           [SOURCE_RECONNECTING] = "reconnecting",
    [SOURCE_RESTARTING] = "restarting",     [SOURCE_BACKING_OFF] = "backing_off",
    [SOURCE_RATE_LIMITED] = "rate_limited", [SOURCE_AUTH_ERROR] = "auth_error",
    [SOURCE_ERROR] = "error",               [SOURCE_STOPPED] = "stopped",
};

int source_state_parse(const char *name)
{
    for (int i = 0; name && i < SOURCE_NSTATES; i++)
        if (strcmp(name, source_state_names[i]) == 0) return i;
    return -1;
}

int source_state_up(enum source_state st)
{
    return st == SOURCE_CONNECTED || st == SOURCE_OK || st == SOURCE_IDLE || st == SOURCE_STANDBY;
}

void source_init(struct source *s, const char *kind, struct store *st)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->store = st;
    s->state = SOURCE_STARTING;
    s->seed = (unsigned)now_ms();
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

int source_start(struct source *s, void *(*fn)(void *), void *arg, char *err, size_t errlen)
{
    if (pthread_create(&s->thread, NULL, fn, arg) != 0) {
        snprintf(err, errlen, "%s: cannot start a thread", s->kind);
        return -1;
    }
    pthread_setname_np(s->thread, s->kind); /* for top -H, ps -L, perf: pull, queue, poll, tunnel */
    s->running = 1;
    return 0;
}

void *source_alloc(size_t size, const char *kind, char *err, size_t errlen)
{
    void *p = calloc(1, size);
    if (!p) snprintf(err, errlen, "%s: out of memory", kind);
    return p;
}

void *source_launch(void *owner, const char *kind, struct store *st, void *(*fn)(void *), void (*release)(void *owner),
                    char *err, size_t errlen)
{
    struct source *s = owner; /* SOURCE_OWNER */
    source_init(s, kind, st);
    if (source_start(s, fn, owner, err, errlen) == 0) return owner;
    source_close(owner, release);
    return NULL;
}

void source_stop(struct source *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->running) pthread_join(s->thread, NULL);
    s->running = 0;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

void source_close(void *owner, void (*release)(void *owner))
{
    if (!owner) return;
    source_stop(owner); /* SOURCE_OWNER: the owner begins with its source */
    if (release) release(owner);
    free(owner);
}

long source_backoff(struct source *s, int n, long base_ms, long max_ms) { return backoff_ms(&s->seed, n, base_ms, max_ms); }

int source_stopping(struct source *s)
{
    pthread_mutex_lock(&s->mu);
    int v = s->stop;
    pthread_mutex_unlock(&s->mu);
    return v;
}

void source_nap(struct source *s, long ms)
{
    struct timespec ts = deadline_ms(ms);
    pthread_mutex_lock(&s->mu);
    if (!s->stop) pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    pthread_mutex_unlock(&s->mu);
}

void source_note(struct source *s, json_t *extra)
{
    json_t *j = json_pack("{s:s,s:s,s:s?,s:s?}", "kind", s->kind, "state", source_state_names[s->state], "last_success",
                          s->last_success[0] ? s->last_success : NULL, "last_error",
                          s->last_error[0] ? s->last_error : NULL);
    if (extra) json_object_update(j, extra);
    json_decref(extra);
    char *txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char key[48];
    snprintf(key, sizeof key, "source.%s", s->kind);
    if (txt) store_note_meta(s->store, key, txt); /* out of memory: the last note stays */
    free(txt);
    json_decref(j);
}
