/* query.h -- questions about the store: status, sources, event listings
 * and `events tail`. */
#ifndef SYNCCF_QUERY_H
#define SYNCCF_QUERY_H

#include <jansson.h>
#include <sqlite3.h>

/* Everything `synccf status --json` shows. */
json_t *query_status(sqlite3 *db, const char *path);

/* Each source's last noted state (source.c), by kind, in kind order:
 * {"pull":{"state":...,"last_success":...},...}; an unreadable note is null. */
json_t *query_sources(sqlite3 *db);

/* Events in arrival order: the last `limit` matching type glob (NULL: all)
 * and received at or after since (RFC 3339, NULL: any). An array of
 * {"seq":N,"event":{...}}. */
json_t *query_events(sqlite3 *db, const char *type_glob, const char *since, long limit);

/* The retention in force (as the daemon recorded it), what each limit has
 * removed, and the file's bytes in use and free. Part of query_status. */
json_t *query_retention(sqlite3 *db);

/* One event by id: {"seq":N,"event":{...},"runs":[...]}, or NULL. */
json_t *query_event(sqlite3 *db, const char *id);

/* `events tail`: what has been stored since the last look. Opens on db
 * (which must outlive it) with the last backlog events still to show and
 * run outcomes from now on; NULL out of memory. */
struct query_tail;
struct query_tail *query_tail_open(sqlite3 *db, long backlog);
/* The events stored since the last call, in order (at most 500 a call). */
void query_tail_events(struct query_tail *t, void (*fn)(void *arg, long long seq, const char *body), void *arg);
/* The run outcomes recorded since the last call, in order: f is the event's
 * id, handler, state, attempts, last_error (NULL when none) and updated. */
void query_tail_runs(struct query_tail *t, void (*fn)(void *arg, const char *const f[6]), void *arg);
void query_tail_close(struct query_tail *t);

#endif
