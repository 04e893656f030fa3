/* store.h -- the durable event store (SQLite) and its group-commit writer. */
#ifndef SYNCCF_STORE_H
#define SYNCCF_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* An event's compact row (store.c, schema 4), made by store_batch_add on the
 * caller's thread, so that the writer, the one thread every request waits
 * on, only binds it. */
struct store_row {
    char *tmpl;                   /* the body with id, subject, time, received and data cut out */
    size_t data_off, data_len;    /* data's text within body; data_len 0: none */
    int64_t id_hash;              /* the dedupe key */
    int64_t time_ms, received_ms; /* -1: stored as text */
};

/* An event ready for the store: its indexed attributes and its serialized form. */
struct store_event {
    char *id, *type, *source, *subject, *time, *via, *received;
    char *body;
    char **handlers; /* handlers to run (outbox), NULL-terminated or NULL */
    struct store_row row;
};
int store_event_from_json(const json_t *ev, struct store_event *out);
/* The same from attributes and the event's text made elsewhere (so never
 * serialized again); body is taken over, and freed on failure. subject may
 * be NULL. 0, or -1 out of memory. */
int store_event_from_text(const char *id, const char *type, const char *source, const char *subject,
                          const char *time, const char *via, const char *received, char *body,
                          struct store_event *out);
void store_event_free(struct store_event *e);

/* A handler run's outcome (lib/dispatch.c). The dispatcher hands it to the
 * writer instead of writing it on a connection of its own, so that the writer
 * is the one thread writing the file: a second writer's commit held the write
 * lock for an fsync while the next event waited behind it, and it emptied the
 * writer's page cache (SQLite drops a connection's cache when another one
 * has written). */
struct store_outcome {
    int64_t seq;
    int idx, attempts;
    const char *state;         /* a run state's name (dispatch.h) */
    int64_t next_at;           /* unix ms */
    const char *error, *detail; /* NULL: none */
};

/* A unit of work for the writer: events committed together (with an optional
 * cursor in the same transaction), and the caller told when they are on disk. */
struct store_batch {
    struct store_event *ev;
    size_t n, cap;
    const char *cursor_name; /* optional: set with cursor_value in the same transaction */
    char *cursor_value;
    const struct store_outcome *outcome; /* optional: recorded in the same transaction */
    /* 1: nobody is answered for these events before a later batch of the
     * same caller is done (a Logpush body's chunks but its last), so their
     * commit need not wait for the disk. A group of such batches only is
     * committed without an fsync; the fsync of the later batch's commit
     * covers it, the WAL being one file written in order. */
    int provisional;

    /* Results, valid when done() runs (on the writer thread). */
    int failed;               /* 1: nothing of this batch is stored */
    size_t accepted, duplicates;
    void (*done)(struct store_batch *b, void *arg);
    void *arg;
    struct store_batch *next; /* writer queue link */
};
/* Moves ev into the batch (on success ev is emptied). */
int store_batch_add(struct store_batch *b, struct store_event *ev);
void store_batch_clear(struct store_batch *b);

/* Opens (creating with mode 0600 in a 0700 directory, and migrating) the
 * store at path. readonly opens for inspection without creating anything. */
struct store *store_open(const char *path, int readonly, char *err, size_t errlen);
void store_close(struct store *s);

/* Prunes by these rules (lib/retention.c), on the writer, from store_start
 * on; also records them in meta for status. Before store_start only. */
struct retention_config;
int store_set_retention(struct store *s, const struct retention_config *c);

/* Bounds /metrics' source labels: only the first max_series sources seen
 * are counted under their own name, later ones under "other" (0: no
 * bound). Before store_start only. */
void store_set_max_series(struct store *s, unsigned max_series);

/* The 64-bit key of an id in the ids table (dedupe, and what is left of an
 * event after retention has removed it). */
int64_t store_id_hash(const char *id);
/* The meta key saying up to which seq every event's key is in ids; the
 * events after it have theirs in the writer's memory (lib/store.c). */
#define STORE_TAIL_MARKER "ids.merged"

/* Starts the writer thread that commits queued batches in groups. */
int store_start(struct store *s);
/* Queues b; b->done is called once it is committed or failed. */
void store_submit(struct store *s, struct store_batch *b);
/* Queues b and waits; returns 0 when committed. */
int store_commit(struct store *s, struct store_batch *b);

/* Called on the writer thread after a commit that queued handler runs (under
 * the writer's lock: fn must not wait on the store); fn NULL stops the calls,
 * before what arg points to goes away. */
void store_on_runs(struct store *s, void (*fn)(void *arg), void *arg);

/* Adds to a named counter; flushed to disk with the next commit. */
void store_count(struct store *s, const char *name, int64_t delta);
/* Remembers the last error for status; flushed like counters. */
void store_note_error(struct store *s, const char *msg);
/* Sets meta[key] = value (e.g. a source's state as JSON), flushed like
 * counters; the latest value per key wins. */
void store_note_meta(struct store *s, const char *key, const char *value);

/* Commit latency (seconds), for /metrics. */
struct hist *store_commit_hist(struct store *s);

/* Transactions committed since open (group commit makes this smaller than
 * the number of batches). */
long store_commits(struct store *s);

/* 0 when the last commit failed (disk full, locked, read-only...). */
int store_healthy(struct store *s);

/* Queues the runs of the stored event seq (id, subject: its attributes)
 * again, for `synccf replay`: resets them to pending, or when it has none,
 * creates runs for handlers (NULL-terminated), ordered as the writer orders
 * an event's runs. One BEGIN IMMEDIATE transaction on a store opened
 * writable and not started. Returns the runs queued, -2 when the store
 * refused. */
int store_replay(struct store *s, long long seq, const char *id, const char *subject, const char *const *handlers);

/* A source's committed cursor (e.g. "pull:<url>"), or NULL. Caller frees.
 * Any thread. */
char *store_cursor(struct store *s, const char *name);

/* The SQLite handle for read-only queries (status, events); the caller must
 * not use it from several threads at once. */
struct sqlite3 *store_db(struct store *s);
const char *store_path(struct store *s);

/* Default location: $SYNCCF_STATE or ~/.xplat/cache/synccf. */
void store_default_dir(char *out, size_t outlen);

#endif
