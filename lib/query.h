/* query.h -- questions about the store (status, event listings, cursors)
 * and the one change the CLI makes to it: queueing an event's runs again. */
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

/* One event by id: {"seq":N,"event":{...},"runs":[...]}, or NULL. */
/* The retention in force (as the daemon recorded it), what each limit has
 * removed, and the file's bytes in use and free. Part of query_status. */
json_t *query_retention(sqlite3 *db);
json_t *query_event(sqlite3 *db, const char *id);

/* Queues the event's handlers again: resets its runs to pending, or when it
 * has none, creates runs for the given handler names (NULL-terminated).
 * Returns the number of runs queued, -1 if there is no such event. */
int query_replay(sqlite3 *db, const char *id, const char *const *handlers);

/* A source's committed cursor (e.g. "pull:<url>"), or NULL. Caller frees. */
char *query_cursor(sqlite3 *db, const char *name);

#endif
