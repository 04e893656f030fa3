/* query.c -- owns the questions asked of state.db: status, the sources'
 * notes, event listings and `events tail`. Only reads; what changes the
 * store is store.c's (a replay's runs: store_replay).
 *
 * Separate from the writer: SQLite's WAL lets these run from another process
 * (the CLI) while the daemon commits. */
#include "query.h"

#include "dispatch.h"
#include "jsonx.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static json_t *col_json(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: return json_integer(sqlite3_column_int64(st, i));
    case SQLITE_NULL: return json_null();
    default: return json_string((const char *)sqlite3_column_text(st, i));
    }
}

/* {"<col0>": <col1>, ...} from a two-column query. */
static json_t *pairs(sqlite3 *db, const char *sql)
{
    json_t *o = json_object();
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return o;
    while (sqlite3_step(st) == SQLITE_ROW)
        json_object_set_new(o, (const char *)sqlite3_column_text(st, 0), col_json(st, 1));
    sqlite3_finalize(st);
    return o;
}

static json_t *one_row(sqlite3 *db, const char *sql)
{
    json_t *o = json_object();
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return o;
    if (sqlite3_step(st) == SQLITE_ROW)
        for (int i = 0; i < sqlite3_column_count(st); i++)
            json_object_set_new(o, sqlite3_column_name(st, i), col_json(st, i));
    sqlite3_finalize(st);
    return o;
}

static int has_table(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st;
    int yes = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        yes = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    return yes;
}

static off_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : 0;
}

json_t *query_sources(sqlite3 *db)
{
    json_t *src = json_object();
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT substr(key, 8), value FROM meta WHERE key LIKE 'source.%' ORDER BY key", -1, &st,
                           NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_t *sv = jx_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
            json_object_set_new(src, (const char *)sqlite3_column_text(st, 0), sv ? sv : json_null());
        }
        sqlite3_finalize(st);
    }
    return src;
}

json_t *query_status(sqlite3 *db, const char *path)
{
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", path);
    json_t *s = json_object();
    json_object_set_new(s, "store", json_pack("{s:s,s:I,s:I}", "path", path, "bytes", (json_int_t)file_size(path),
                                              "wal_bytes", (json_int_t)file_size(wal)));
    json_t *ev;
    if (!has_table(db, "events")) {
        /* A daemon starting on a new directory has made the file but not
         * yet its tables: no events, in the same shape as ever, so a
         * reader polling "total" sees 0 rather than no number at all. */
        ev = json_pack("{s:i,s:n,s:n,s:n,s:{},s:{},s:{}}", "total", 0, "first_received", "last_received", "last_time",
                       "by_source", "by_type", "by_via");
    } else if (has_table(db, "event_rows")) {
        /* Schema 4: counts from the (shape, seq) index and the few shapes,
         * ends by seq -- no pass over the events themselves, which took
         * seconds for a million of them. */
        ev = one_row(db, "SELECT (SELECT count(*) FROM event_rows) AS total,"
                         " (SELECT received FROM events ORDER BY seq LIMIT 1) AS first_received,"
                         " (SELECT received FROM events ORDER BY seq DESC LIMIT 1) AS last_received,"
                         " (SELECT time FROM events ORDER BY seq DESC LIMIT 1) AS last_time");
        static const char *const by[][2] = {{"by_source", "source"}, {"by_type", "type"}, {"by_via", "via"}};
        for (int i = 0; i < 3; i++) {
            char sql[300];
            snprintf(sql, sizeof sql,
                     "SELECT s.%s, sum(c.n) FROM (SELECT shape, count(*) AS n FROM event_rows GROUP BY shape) c "
                     "JOIN shapes s ON s.id = c.shape GROUP BY s.%s ORDER BY 2 DESC",
                     by[i][1], by[i][1]);
            json_object_set_new(ev, by[i][0], pairs(db, sql));
        }
    } else {
        ev = one_row(db, "SELECT count(*) AS total, min(received) AS first_received, "
                         "max(received) AS last_received, max(time) AS last_time FROM events");
        json_object_set_new(ev, "by_source", pairs(db, "SELECT source, count(*) FROM events GROUP BY source ORDER BY 2 DESC"));
        json_object_set_new(ev, "by_type", pairs(db, "SELECT type, count(*) FROM events GROUP BY type ORDER BY 2 DESC"));
        json_object_set_new(ev, "by_via", pairs(db, "SELECT via, count(*) FROM events GROUP BY via ORDER BY 2 DESC"));
    }
    json_object_set_new(s, "events", ev);
    json_object_set_new(s, "duplicates",
                        pairs(db, "SELECT substr(name, 12), value FROM counters WHERE name LIKE 'duplicates.%' ORDER BY 1"));
    json_object_set_new(s, "rejected",
                        pairs(db, "SELECT substr(name, 10), value FROM counters WHERE name LIKE 'rejected.%' ORDER BY 1"));
    json_object_set_new(s, "filtered",
                        pairs(db, "SELECT substr(name, 10), value FROM counters WHERE name LIKE 'filtered.%' ORDER BY 1"));
    json_t *le = pairs(db, "SELECT key, value FROM meta WHERE key='last_error'");
    json_t *v = json_object_get(le, "last_error");
    json_object_set(s, "last_error", v ? v : json_null());
    json_decref(le);
    json_object_set_new(s, "cursors", pairs(db, "SELECT name, value FROM cursors ORDER BY name"));
    json_object_set_new(s, "sources", query_sources(db));
    json_t *h = pairs(db, "SELECT CASE WHEN state = '" RUN_NAME_PENDING "' AND attempts > 0 THEN '" RUN_NAME_RETRYING "' "
                          "ELSE state END AS k, "
                          "count(*) FROM runs GROUP BY k ORDER BY k");
    json_t *problems = json_array();
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT e.id, r.handler, r.state, r.attempts, r.last_error, r.updated FROM runs r "
                           "JOIN events e ON e.seq = r.seq WHERE r.last_error IS NOT NULL AND r.state != '" RUN_NAME_OK "' "
                           "ORDER BY r.updated DESC LIMIT 10",
                           -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_t *o = json_object();
            for (int i = 0; i < 6; i++) json_object_set_new(o, sqlite3_column_name(st, i), col_json(st, i));
            json_array_append_new(problems, o);
        }
        sqlite3_finalize(st);
    }
    json_object_set_new(s, "handlers", json_pack("{s:o,s:o}", "runs", h, "failing", problems));
    json_object_set_new(s, "retention", query_retention(db));
    return s;
}

json_t *query_retention(sqlite3 *db)
{
    json_t *r = json_object();
    json_t *cfg = NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'retention'", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) cfg = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        sqlite3_finalize(st);
    }
    json_object_set_new(r, "config", cfg ? cfg : json_null());
    json_object_set_new(r, "pruned",
                        pairs(db, "SELECT substr(name, 8), value FROM counters WHERE name LIKE 'pruned.%' ORDER BY 1"));
    /* Pages in use and free: the file's size is what retention bounds (by
     * pages in use); free pages are reused before the file grows. */
    json_t *pages = one_row(db, "SELECT (SELECT page_count FROM pragma_page_count()) * "
                                "(SELECT page_size FROM pragma_page_size()) AS file_bytes,"
                                "(SELECT freelist_count FROM pragma_freelist_count()) * "
                                "(SELECT page_size FROM pragma_page_size()) AS free_bytes");
    json_object_update(r, pages);
    json_decref(pages);
    return r;
}

static json_t *row_event(sqlite3_stmt *st)
{
    json_t *ev = jx_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
    return json_pack("{s:I,s:o}", "seq", (json_int_t)sqlite3_column_int64(st, 0), "event", ev ? ev : json_null());
}

json_t *query_events(sqlite3 *db, const char *type_glob, const char *since, long limit)
{
    json_t *arr = json_array();
    sqlite3_stmt *st;
    const char *sql = "SELECT seq, body FROM (SELECT seq, body FROM events "
                      "WHERE (?1 IS NULL OR type GLOB ?1) AND (?2 IS NULL OR received >= ?2) "
                      "ORDER BY seq DESC LIMIT ?3) ORDER BY seq";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return arr;
    sqlite3_bind_text(st, 1, type_glob, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, since, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, limit);
    while (sqlite3_step(st) == SQLITE_ROW) json_array_append_new(arr, row_event(st));
    sqlite3_finalize(st);
    return arr;
}

json_t *query_event(sqlite3 *db, const char *id)
{
    sqlite3_stmt *st;
    json_t *out = NULL;
    /* By the id's hash (ids), checked against the id, or among the events
     * whose keys are not yet merged into ids (lib/store.c, put_event); a
     * store not yet migrated (read-only, by an older schema) is searched by
     * id. */
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, body FROM events WHERE seq = (SELECT seq FROM ids WHERE h = ?2) AND id = ?1 "
                           "UNION ALL SELECT seq, body FROM events WHERE seq > coalesce(CAST((SELECT value FROM meta "
                           "WHERE key = '" STORE_TAIL_MARKER "') AS INTEGER), 9223372036854775807) AND id = ?1 LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT seq, body FROM events WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(st) > 1) sqlite3_bind_int64(st, 2, store_id_hash(id));
    if (sqlite3_step(st) == SQLITE_ROW) out = row_event(st);
    sqlite3_finalize(st);
    if (!out) return NULL;
    json_t *runs = json_array();
    if (sqlite3_prepare_v2(db,
                           "SELECT handler, state, attempts, last_error, detail, updated, next_at FROM runs "
                           "WHERE seq = ? ORDER BY idx",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, json_integer_value(json_object_get(out, "seq")));
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_t *r = json_object();
            for (int i = 0; i < 7; i++) {
                json_t *v = col_json(st, i);
                if (i == 4 && json_is_string(v)) { /* detail is JSON */
                    json_t *d = json_loads(json_string_value(v), 0, NULL);
                    json_decref(v);
                    v = d ? d : json_null();
                }
                json_object_set_new(r, sqlite3_column_name(st, i), v);
            }
            json_array_append_new(runs, r);
        }
        sqlite3_finalize(st);
    }
    json_object_set_new(out, "runs", runs);
    return out;
}

struct query_tail {
    sqlite3_stmt *evs, *runs;
    long long last;       /* the last event shown */
    char since[TIME_BUF]; /* the last run outcome shown (runs.updated) */
};

struct query_tail *query_tail_open(sqlite3 *db, long backlog)
{
    struct query_tail *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    sqlite3_prepare_v2(db, "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT 500", -1, &t->evs, NULL);
    /* Outcomes: every run recorded since, except one queued and not yet tried. */
    sqlite3_prepare_v2(db,
                       "SELECT e.id, r.handler, r.state, r.attempts, r.last_error, r.updated FROM runs r JOIN events e ON "
                       "e.seq = r.seq WHERE r.updated > ? AND (r.state != '" RUN_NAME_PENDING "' OR r.attempts > 0) "
                       "ORDER BY r.updated",
                       -1, &t->runs, NULL);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(db, "SELECT coalesce(max(seq), 0) FROM events", -1, &q, NULL);
    if (sqlite3_step(q) == SQLITE_ROW) t->last = sqlite3_column_int64(q, 0) - backlog;
    sqlite3_finalize(q);
    time_format_ms(now_ms(), t->since);
    return t;
}

void query_tail_events(struct query_tail *t, void (*fn)(void *arg, long long seq, const char *body), void *arg)
{
    sqlite3_bind_int64(t->evs, 1, t->last);
    while (sqlite3_step(t->evs) == SQLITE_ROW) {
        t->last = sqlite3_column_int64(t->evs, 0);
        fn(arg, t->last, (const char *)sqlite3_column_text(t->evs, 1));
    }
    sqlite3_reset(t->evs);
}

void query_tail_runs(struct query_tail *t, void (*fn)(void *arg, const char *const f[6]), void *arg)
{
    sqlite3_bind_text(t->runs, 1, t->since, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(t->runs) == SQLITE_ROW) {
        const char *f[6];
        for (int i = 0; i < 6; i++) f[i] = (const char *)sqlite3_column_text(t->runs, i);
        snprintf(t->since, sizeof t->since, "%s", f[5]);
        fn(arg, f);
    }
    sqlite3_reset(t->runs);
}

void query_tail_close(struct query_tail *t)
{
    if (!t) return;
    sqlite3_finalize(t->evs);
    sqlite3_finalize(t->runs);
    free(t);
}
