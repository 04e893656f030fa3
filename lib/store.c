/* store.c -- owns state.db: schema and migrations, the compact form of
 * stored events (schema 4, below), and the single writer thread that commits
 * events and runs retention's pruning (lib/retention.c) between them.
 *
 * Durability: WAL with synchronous=FULL. Under NORMAL a commit can be rolled
 * back by power loss after we have answered 2xx and the sender has stopped
 * retrying, so every acknowledged commit is fsynced. The one exception is a
 * group of provisional batches only (store.h): nobody has been answered for
 * them yet, and the fsync that the caller's last batch waits for flushes the
 * whole WAL, theirs included. A Logpush body of 100 MB is 80 chunks; each
 * waiting for its own fsync cost the writer 1.4 s of a 5 s batch (measured).
 *
 * Throughput: one fsync per event caps out around 4,000 events/s. Instead all
 * batches that are waiting when the writer becomes free are committed in one
 * transaction (group commit); requests keep arriving while an fsync runs, so
 * the groups grow with the load and the cost of an fsync is shared. Nobody is
 * answered before the transaction holding their events has committed.
 *
 * Checkpoints: SQLite's automatic checkpoint runs inside the commit that
 * crosses 1,000 WAL pages, on the writer thread, and fsyncs the database file
 * while every request of the next group waits. Here the writer only notes the
 * WAL's size and a checkpointer thread with its own connection copies pages
 * back (PASSIVE: it never blocks the writer, which keeps appending), once per
 * 1,000 new WAL pages: a page written again and again between two passes
 * (a leaf of ids, the tail of event_rows) is copied once, not once per pass.
 * Under sustained load the WAL never ends up fully copied while the writer
 * keeps appending, so it could only start over if the writer stopped: past
 * WAL_CAP_BYTES the writer itself runs a RESTART checkpoint between two
 * groups. The passes have already copied all but the last few hundred pages
 * and synced what they copied, so that stall is short; and the writer does
 * not have to win its own write lock from a busy-waiting thread (a RESTART
 * from the checkpointer starved for seconds under load, measured). */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "idtail.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "retention.h"
#include "util.h"

#define MAX_COUNTERS 64
/* Pages of 8 KiB: a page of 4 KiB holds 9-10 rows of a Logpush record and
 * wastes 10% on the remainder; 8 KiB halves that (measured: 1.60x -> 1.52x
 * NDJSON bytes before times were stored as integers). */
#define PAGE_SIZE 8192
#define SHAPE_CACHE 16            /* recent shapes, looked up without SQL */
#define MIGRATE_CHUNK 2000        /* events converted per transaction by the v4 migration */
#define CHECKPOINT_PAGES 1000          /* new WAL pages per checkpoint pass (SQLite's default threshold) */
#define WAL_CAP_BYTES (64ll << 20)     /* past this the writer restarts the WAL */
#define WAL_CAP_PAGES ((int)(WAL_CAP_BYTES / PAGE_SIZE))
/* What a reset WAL file is cut back to: above the cap, so that the file is
 * reused in place instead of being cut and grown again (new blocks to
 * allocate and zero) on every restart. */
#define WAL_SIZE_LIMIT (2 * WAL_CAP_BYTES)
/* The dedupe keys' tail (lib/idtail.h): frozen and merged into ids once this
 * many are waiting or the oldest has waited this long; each group merges at
 * least TAIL_STEP of the frozen keys, and twice what it added itself, so the
 * frozen set is gone before the next one is due. */
#define TAIL_MERGE_AT 32768
#define TAIL_MERGE_AFTER_MS 60000
#define TAIL_STEP 1024

/* A new run of the outbox: pending (the column's default) and due now. */
#define RUN_INSERT_SQL \
    "INSERT INTO runs(seq,idx,handler,subject_key,updated) VALUES(?,?,?,?,strftime('%Y-%m-%dT%H:%M:%fZ'))"

struct counter {
    char name[48];
    int64_t delta;
};

struct store {
    sqlite3 *db;
    char *path;
    int readonly;
    sqlite3_stmt *ins, *cnt, *cur, *meta, *run, *rec;
    sqlite3_stmt *id_get, *id_row, *id_put, *id_merge, *shape_get, *shape_put;
    /* The dedupe keys of the newest events (see "Dedupe keys" above
     * put_event); loaded from event_rows by the first group. */
    struct idtail idt;
    int idt_loaded;
    struct shape_cache {
        sqlite3_int64 id;
        char *tmpl, *type, *source, *via;
    } shapes[SHAPE_CACHE];
    unsigned shape_next;
    struct retention *ret; /* pruning, run by the writer between groups */
    /* /metrics' source labels (writer thread): at most max_series sources
     * get counters of their own, the first ones seen; later ones are counted
     * under "other". Admitting at count time, not when /metrics renders,
     * keeps every series a counter that only grows: a new source can never
     * take an older one's place. 0: no bound. */
    unsigned max_series;
    int unsynced_mode; /* the writer's connection is at synchronous=NORMAL (set_sync) */
    /* The sources admitted so far, read from the counters once and then kept
     * here: asking the counters table on every commit cost the writer a
     * statement prepare and a scan per group. NULL: not read yet. */
    char **sources;
    long nsources;
    void (*on_runs)(void *arg);
    void *on_runs_arg;

    pthread_t thread;
    int started, stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct store_batch *head, *tail;
    struct counter counters[MAX_COUNTERS];
    size_t ncounters;
    char last_error[256];
    int error_dirty;
    struct {
        char key[48];
        char *value;
    } notes[8]; /* pending meta, flushed with the next commit */
    atomic_int last_failed;
    long failed_run;       /* consecutive failed commits (writer thread only) */
    int64_t failed_logged; /* when the last "commit failed" line was written */
    atomic_long commits;
    struct hist commit_hist;

    /* The checkpointer (see the top of the file). */
    sqlite3 *ckdb;
    pthread_t ckthread;
    int ck_started, ck_wanted, ck_stopping;
    int ck_running; /* a pass is under way */
    int ck_held;    /* the writer is about to restart the WAL: no new pass */
    int wal_pages;  /* the WAL's size after the last commit */
    int ck_done;    /* WAL pages the last pass had copied (0 after a restart) */
    pthread_mutex_t ckmu;
    pthread_cond_t ckcv;   /* the checkpointer waits here for work */
    pthread_cond_t ckidle; /* and says here that a pass has ended */
};

/* Each entry upgrades the schema by one version; PRAGMA user_version holds
 * how many have been applied. Never edit a shipped entry: append. */
static const char *const migrations[] = {
    /* 1: the event journal, counters, source cursors, notes. */
    "CREATE TABLE events("
    "  seq INTEGER PRIMARY KEY,"       /* local arrival order */
    "  id TEXT NOT NULL UNIQUE,"       /* dedupe key (docs/events.md#ids) */
    "  type TEXT NOT NULL, source TEXT NOT NULL, subject TEXT,"
    "  time TEXT NOT NULL, via TEXT NOT NULL, received TEXT NOT NULL,"
    "  body TEXT NOT NULL);"           /* the CloudEvent as JSON */
    "CREATE INDEX events_type ON events(type, seq);"
    "CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE cursors(name TEXT PRIMARY KEY, value TEXT NOT NULL, updated TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    /* 2: the outbox. One row per (event, handler), written in the same
     * transaction as the event, so a crash between storing an event and
     * running its handlers loses nothing. state: pending (due at next_at,
     * unix ms), ok, gave_up. subject_key orders runs of one subject. */
    "CREATE TABLE runs("
    "  seq INTEGER NOT NULL REFERENCES events(seq), idx INTEGER NOT NULL,"
    "  handler TEXT NOT NULL, subject_key TEXT NOT NULL,"
    "  state TEXT NOT NULL DEFAULT '" RUN_NAME_PENDING "', attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL DEFAULT 0, last_error TEXT, detail TEXT, updated TEXT,"
    "  PRIMARY KEY(seq, idx)) WITHOUT ROWID;"
    "CREATE INDEX runs_open ON runs(state, subject_key, seq, idx);",
    /* 3: the dispatcher takes the oldest due runs first. Without an index in
     * that order SQLite sorted every pending run on each claim, so draining
     * a backlog of n runs cost O(n^2 log n): 64 runs/s at 5,000 pending. */
    "CREATE INDEX runs_due ON runs(state, seq, idx);",
};
#define SQL_VERSIONS ((int)(sizeof migrations / sizeof *migrations))
/* 4: compact rows, see migrate_v4; 5: ids may lag event_rows (the tail of
 * dedupe keys, see put_event), so a synccf that would not know to read the
 * tail back must not open the store. */
#define SCHEMA_VERSION (SQL_VERSIONS + 2)
static const char schema5[] = "INSERT OR REPLACE INTO meta(key, value) "
                              "SELECT '" STORE_TAIL_MARKER "', coalesce(max(seq), 0) FROM event_rows;"
                              "PRAGMA user_version=5;";
#define STR_(x) #x
#define STR(x) STR_(x)

static char *attr(const json_t *ev, const char *k)
{
    json_t *v = json_object_get(ev, k);
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

int store_event_from_json(const json_t *ev, struct store_event *out)
{
    memset(out, 0, sizeof *out);
    out->id = attr(ev, "id");
    out->type = attr(ev, "type");
    out->source = attr(ev, "source");
    out->subject = attr(ev, "subject");
    out->time = attr(ev, "time");
    out->via = attr(ev, "synccfvia");
    out->received = attr(ev, "synccfreceived");
    out->body = jx_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!out->id || !out->type || !out->source || !out->time || !out->via || !out->received || !out->body) {
        store_event_free(out);
        return -1;
    }
    return 0;
}

int store_event_from_text(const char *id, const char *type, const char *source, const char *subject,
                          const char *time, const char *via, const char *received, char *body,
                          struct store_event *out)
{
    memset(out, 0, sizeof *out);
    out->body = body;
    const char *from[] = {id, type, source, subject, time, via, received};
    char **to[] = {&out->id, &out->type, &out->source, &out->subject, &out->time, &out->via, &out->received};
    int ok = body != NULL;
    for (size_t i = 0; i < sizeof from / sizeof *from; i++) {
        if (from[i]) ok &= (*to[i] = strdup(from[i])) != NULL;
        else ok &= to[i] == &out->subject; /* subject alone may be absent */
    }
    if (!ok) {
        store_event_free(out);
        return -1;
    }
    return 0;
}

void store_event_free(struct store_event *e)
{
    char *owned[] = {e->id, e->type, e->source, e->subject, e->time, e->via, e->received, e->body};
    for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) free(owned[i]);
    for (char **h = e->handlers; h && *h; h++) free(*h);
    free(e->handlers);
    free(e->row.tmpl);
    memset(e, 0, sizeof *e);
}

static int make_row(struct store_event *e);

int store_batch_add(struct store_batch *b, struct store_event *ev)
{
    if (!ev->row.tmpl && make_row(ev)) return -1;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        struct store_event *p = realloc(b->ev, cap * sizeof *p);
        if (!p) return -1;
        b->ev = p;
        b->cap = cap;
    }
    b->ev[b->n++] = *ev;
    memset(ev, 0, sizeof *ev);
    return 0;
}

void store_batch_clear(struct store_batch *b)
{
    for (size_t i = 0; i < b->n; i++) store_event_free(&b->ev[i]);
    free(b->ev);
    free(b->cursor_value);
    b->ev = NULL;
    b->cursor_value = NULL;
    b->n = b->cap = 0;
    b->provisional = 0;
}

void store_default_dir(char *out, size_t outlen)
{
    const char *e = getenv("SYNCCF_STATE");
    if (e && *e) {
        snprintf(out, outlen, "%s", e);
        return;
    }
    const char *home = getenv("HOME");
    snprintf(out, outlen, "%s/.xplat/cache/synccf", home && *home ? home : ".");
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int mkdirs(const char *dir)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- compact rows (schema 4) ------------------------------------------------
 *
 * Up to schema 3 each event was stored twice over: its attributes as columns
 * (for the indexes) and again inside the body, the exact text handed to pull,
 * handlers and replay; a Logpush record cost about three times its NDJSON
 * bytes. Since schema 4 an event is cut in two:
 *
 *   - the members that differ from one event to the next -- id, subject,
 *     time, synccfreceived and data -- stored once, as columns of event_rows;
 *   - the rest of the text, with one marker byte (0x01..0x05) where each cut
 *     value stood: its "shape". Events of one source share one shape (every
 *     record of a Logpush job has the same envelope), so it is stored once in
 *     shapes, with the type, source and way in it implies.
 *
 * The view events puts the text back together with replace() and nothing
 * else, so that the sqlite3 shell and older tools read the same rows. A value
 * is cut only when its text in the body is exactly '"' + the column + '"' (no
 * escapes), so putting it back gives the same bytes; anything else stays in
 * the shape verbatim. Marker bytes cannot occur in JSON text (control
 * characters are escaped inside strings and are not whitespace outside them).
 *
 * Dedupe no longer needs an index on the id text: ids holds a 64-bit hash of
 * each id (the first 8 bytes of its SHA-256) with the seq of its event, and
 * keeps it, marked pruned, after retention has removed the event, so that a
 * late retry of a pruned event is still a duplicate. A hash that matches a
 * live event is checked against its id; one that matches a pruned id is taken
 * as a duplicate (two ids of the same 64-bit hash within the dedupe window:
 * about 1 in 10^5 after 500 million ids). */

#define M_ID "\x01"
#define M_SUBJECT "\x02"
#define M_TIME "\x03"
#define M_RECEIVED "\x04"
#define M_DATA "\x05"

static const char schema4_tables[] =
    "CREATE TABLE IF NOT EXISTS shapes("
    "  id INTEGER PRIMARY KEY, h INTEGER NOT NULL UNIQUE,"
    "  type TEXT NOT NULL, source TEXT NOT NULL, via TEXT NOT NULL, tmpl TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS event_rows("
    "  seq INTEGER PRIMARY KEY, shape INTEGER NOT NULL,"
    "  id TEXT NOT NULL, subject TEXT, time NOT NULL, received NOT NULL, data TEXT);" /* no affinity: see TIME_TEXT */
    "CREATE INDEX IF NOT EXISTS event_rows_shape ON event_rows(shape, seq);"
    "CREATE TABLE IF NOT EXISTS ids(h INTEGER PRIMARY KEY, seq INTEGER NOT NULL, pruned INTEGER) WITHOUT ROWID;";

/* time and received are stored as integer milliseconds when the text is the
 * one time_format_ms() writes for them (always, for received), which takes
 * 6 bytes instead of 20-24; any other spelling is kept as text. */
#define TIME_TEXT(c)                                                                                   \
    "CASE WHEN typeof(" c ") = 'integer' THEN strftime('%Y-%m-%dT%H:%M:%S', " c " / 1000, 'unixepoch') || " \
    "CASE WHEN " c " % 1000 THEN printf('.%03dZ', " c " % 1000) ELSE 'Z' END ELSE " c " END"

/* Runs now refer to event_rows; the table is rebuilt because SQLite cannot
 * change a foreign key in place. Then the old table goes and the view takes
 * its name. */
static const char schema4_finish[] =
    "CREATE TABLE runs_v4("
    "  seq INTEGER NOT NULL REFERENCES event_rows(seq), idx INTEGER NOT NULL,"
    "  handler TEXT NOT NULL, subject_key TEXT NOT NULL,"
    "  state TEXT NOT NULL DEFAULT '" RUN_NAME_PENDING "', attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL DEFAULT 0, last_error TEXT, detail TEXT, updated TEXT,"
    "  PRIMARY KEY(seq, idx)) WITHOUT ROWID;"
    "INSERT INTO runs_v4 SELECT seq, idx, handler, subject_key, state, attempts, next_at, last_error, detail, updated "
    "  FROM runs;"
    "DROP TABLE runs;"
    "ALTER TABLE runs_v4 RENAME TO runs;"
    "CREATE INDEX runs_open ON runs(state, subject_key, seq, idx);"
    "CREATE INDEX runs_due ON runs(state, seq, idx);"
    "DROP TABLE events;"
    "CREATE VIEW events(seq, id, type, source, subject, time, via, received, body) AS"
    "  SELECT e.seq, e.id, s.type, s.source, e.subject, " TIME_TEXT("e.time") " AS time, s.via, "
    TIME_TEXT("e.received") " AS received,"
    "    replace(replace(replace(replace(replace(s.tmpl,"
    "      char(1), '\"' || e.id || '\"'),"
    "      char(2), coalesce('\"' || e.subject || '\"', '')),"
    "      char(3), '\"' || " TIME_TEXT("e.time") " || '\"'),"
    "      char(4), '\"' || " TIME_TEXT("e.received") " || '\"'),"
    "      char(5), coalesce(e.data, ''))"
    "  FROM event_rows e JOIN shapes s ON s.id = e.shape;"
    "DELETE FROM meta WHERE key = 'migrate4.seq';"
    "PRAGMA user_version=4;";

int64_t store_id_hash(const char *id) { return retention_id_hash(id); }

/* Skips one JSON value starting at p (the text is known to be valid JSON:
 * it was parsed before it reached the store); returns where it ends, or NULL
 * if the text ends first. */
static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *skip_string(const char *p)
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && !*++p) return NULL;
    return *p ? p + 1 : NULL;
}

static const char *skip_value(const char *p)
{
    if (*p == '"') return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') {
                if (!(p = skip_string(p))) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0) return p + 1;
            p++;
        }
        return NULL;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') p++;
    return p;
}

/* 1 if the value text [v, end) is exactly '"' + want + '"'. */
static int plain_string(const char *v, const char *end, const char *want)
{
    size_t n = want ? strlen(want) : 0;
    return want && (size_t)(end - v) == n + 2 && v[0] == '"' && memcmp(v + 1, want, n) == 0 && v[n + 1] == '"';
}

/* Builds e's shape into out and finds its data member's text. */
static int split_body(const struct store_event *e, struct buf *out, const char **data, size_t *datalen)
{
    static const size_t klen[] = {4, 9, 6, 16, 6};
    static const char *const keys[] = {"\"id\"", "\"subject\"", "\"time\"", "\"synccfreceived\"", "\"data\""};
    static const char markers[] = {'\x01', '\x02', '\x03', '\x04', '\x05'};
    const char *want[] = {e->id, e->subject, e->time, e->received, NULL};
    int cut[5] = {0};
    const char *body = e->body, *copied = body, *p = skip_ws(body);
    out->len = 0;
    *data = NULL;
    *datalen = 0;
    if (*p == '{') {
        p = skip_ws(p + 1);
        while (*p == '"') {
            const char *k = p, *ke = skip_string(p);
            if (!ke) break;
            p = skip_ws(ke);
            if (*p != ':') break;
            const char *v = skip_ws(p + 1), *ve = skip_value(v);
            if (!ve) break;
            for (int i = 0; i < 5; i++) {
                if (cut[i] || (size_t)(ke - k) != klen[i] || memcmp(k, keys[i], klen[i]) != 0) continue;
                if (i < 4 && !plain_string(v, ve, want[i])) break;
                if (buf_append(out, copied, v - copied) || buf_append(out, &markers[i], 1)) return -1;
                copied = ve;
                cut[i] = 1;
                if (i == 4) {
                    *data = v;
                    *datalen = ve - v;
                }
                break;
            }
            p = skip_ws(ve);
            if (*p != ',') break;
            p = skip_ws(p + 1);
        }
    }
    if (buf_append(out, copied, strlen(copied))) return -1;
    return 0;
}

/* A time attribute as integer ms when that gives back the same text, else -1
 * (kept as text). */
static int64_t time_ms(const char *text)
{
    int64_t ms;
    char back[TIME_BUF];
    if (text && time_parse_rfc3339(text, &ms) == 0 && ms >= 0) {
        time_format_ms(ms, back);
        if (strcmp(back, text) == 0) return ms;
    }
    return -1;
}

static void bind_time(sqlite3_stmt *st, int i, int64_t ms, const char *text)
{
    if (ms >= 0) sqlite3_bind_int64(st, i, ms);
    else sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
}

/* e's compact row (store.h). 0, or -1 out of memory. */
static int make_row(struct store_event *e)
{
    struct buf tmpl = {.max = SIZE_MAX};
    const char *data;
    size_t datalen;
    if (split_body(e, &tmpl, &data, &datalen)) {
        buf_free(&tmpl);
        return -1;
    }
    e->row = (struct store_row){.tmpl = tmpl.p, .data_off = data ? (size_t)(data - e->body) : 0,
                                .data_len = data ? datalen : 0, .id_hash = store_id_hash(e->id),
                                .time_ms = time_ms(e->time), .received_ms = time_ms(e->received)};
    return 0;
}

/* Binds e's row to INSERT INTO event_rows(..., id, subject, time, received,
 * data), whose id is parameter `at`. */
static void bind_row(sqlite3_stmt *st, int at, const struct store_event *e)
{
    sqlite3_bind_text(st, at, e->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, at + 1, e->subject, -1, SQLITE_STATIC);
    bind_time(st, at + 2, e->row.time_ms, e->time);
    bind_time(st, at + 3, e->row.received_ms, e->received);
    if (e->row.data_len) sqlite3_bind_text(st, at + 4, e->body + e->row.data_off, (int)e->row.data_len, SQLITE_STATIC);
}

static int shape_matches(const struct shape_cache *c, const char *tmpl, const struct store_event *e)
{
    return c->tmpl && strcmp(c->tmpl, tmpl) == 0 && strcmp(c->type, e->type) == 0 &&
           strcmp(c->source, e->source) == 0 && strcmp(c->via, e->via) == 0;
}

static void shape_cache_free(struct shape_cache *c)
{
    free(c->tmpl);
    free(c->type);
    free(c->source);
    free(c->via);
    memset(c, 0, sizeof *c);
}

static void cache_shape(struct store *s, sqlite3_int64 id, const char *tmpl, const struct store_event *e)
{
    struct shape_cache *c = &s->shapes[s->shape_next++ % SHAPE_CACHE];
    shape_cache_free(c);
    c->tmpl = strdup(tmpl);
    c->type = strdup(e->type);
    c->source = strdup(e->source);
    c->via = strdup(e->via);
    if (!c->tmpl || !c->type || !c->source || !c->via) shape_cache_free(c);
    else c->id = id;
}

/* The id of the shape of (tmpl, e's type, source, way in), added if new.
 * Shapes are keyed by a hash of all four; on a collision the next key is
 * tried. */
static sqlite3_int64 shape_id(struct store *s, const char *tmpl, const struct store_event *e)
{
    for (int i = 0; i < SHAPE_CACHE; i++)
        if (shape_matches(&s->shapes[i], tmpl, e)) return s->shapes[i].id;
    const char *parts[] = {tmpl, e->type, e->source, e->via};
    size_t lens[4];
    for (int i = 0; i < 4; i++) lens[i] = strlen(parts[i]) + 1; /* each with its NUL, as a separator */
    uint64_t h = (uint64_t)hash64((const void *const *)parts, lens, 4);
    sqlite3_int64 id = -1;
    for (int probe = 0; probe < 64 && id < 0; probe++, h++) {
        sqlite3_bind_int64(s->shape_get, 1, (sqlite3_int64)h);
        int rc = sqlite3_step(s->shape_get);
        if (rc == SQLITE_ROW) {
            int same = 1;
            for (int i = 0; i < 4; i++)
                same &= strcmp((const char *)sqlite3_column_text(s->shape_get, i + 1), parts[i]) == 0;
            if (same) id = sqlite3_column_int64(s->shape_get, 0);
            sqlite3_reset(s->shape_get);
            continue;
        }
        sqlite3_reset(s->shape_get);
        if (rc != SQLITE_DONE) return -1;
        sqlite3_bind_int64(s->shape_put, 1, (sqlite3_int64)h);
        for (int i = 0; i < 4; i++) sqlite3_bind_text(s->shape_put, i + 2, parts[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(s->shape_put);
        sqlite3_reset(s->shape_put);
        if (rc != SQLITE_DONE) return -1;
        id = sqlite3_last_insert_rowid(s->db);
    }
    /* A shape added by a transaction that rolls back is forgotten with it:
     * commit_group empties the cache after a failure. */
    if (id >= 0) cache_shape(s, id, tmpl, e);
    return id;
}

/* Dedupe keys. An id's hash is a random key: inserted into ids one event at
 * a time, every event dirtied a page of ids of its own, and the group's
 * commit wrote and fsynced 8 KiB of WAL per 1 KiB event, then the
 * checkpointer copied it again (measured: 14 KiB written per event; the
 * events without their ids inserts went 37% faster). So the newest events'
 * keys wait in memory (lib/idtail.c) and are merged into ids in key order,
 * many per page, a slice per group (merge_slice). The tail needs no writes of
 * its own: its events are in event_rows, and meta STORE_TAIL_MARKER says where the
 * merged part ends, so the first group after a start reads the rest back
 * (load_tail). A key is looked up in ids first, then in the tail; pruning an
 * event whose key is still in the tail writes its ids row itself
 * (lib/retention.c), which the merge then leaves alone. */

/* Stores one event in the compact form. *inserted is 0 for a duplicate. */
static int put_event(struct store *s, const struct store_event *e, int *inserted, sqlite3_int64 *seq_out,
                     sqlite3_int64 *shape_out)
{
    *inserted = 0;
    if (!e->row.tmpl) return -1; /* made by store_batch_add, the only way in */
    sqlite3_int64 h = e->row.id_hash, other = 0;
    sqlite3_bind_int64(s->id_get, 1, h);
    int rc = sqlite3_step(s->id_get);
    if (rc == SQLITE_ROW) {
        other = sqlite3_column_int64(s->id_get, 0);
        int pruned = sqlite3_column_type(s->id_get, 1) != SQLITE_NULL;
        sqlite3_reset(s->id_get);
        if (pruned) return 0;
    } else {
        sqlite3_reset(s->id_get);
        if (rc != SQLITE_DONE) return -1;
        other = idtail_find(&s->idt, h);
    }
    int known = other != 0;
    if (known) {
        sqlite3_bind_int64(s->id_row, 1, other);
        rc = sqlite3_step(s->id_row);
        int same = rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s->id_row, 0), e->id) == 0;
        sqlite3_reset(s->id_row);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return -1;
        if (same) return 0;
        /* Another id with the same hash: stored, without a dedupe entry of
         * its own (a retry of it would be stored again). */
    }
    sqlite3_int64 shape = shape_id(s, e->row.tmpl, e);
    if (shape < 0) return -1;
    sqlite3_bind_int64(s->ins, 1, shape);
    bind_row(s->ins, 2, e);
    if (step_done(s->ins)) return -1;
    sqlite3_int64 seq = sqlite3_last_insert_rowid(s->db);
    if (!known && idtail_add(&s->idt, h, seq, now_ms())) return -1;
    *inserted = 1;
    *seq_out = seq;
    *shape_out = shape;
    return 0;
}

static sqlite3_int64 meta_int(sqlite3 *db, const char *key);

/* Reads the keys of the events past STORE_TAIL_MARKER back into the tail, in the
 * order they were first added (a later event of the same hash has none). */
static int load_tail(struct store *s)
{
    sqlite3_stmt *st;
    idtail_clear(&s->idt);
    if (sqlite3_prepare_v2(s->db, "SELECT seq, id FROM event_rows WHERE seq > ? ORDER BY seq", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, meta_int(s->db, STORE_TAIL_MARKER));
    int rc, bad = 0;
    int64_t now = now_ms();
    while (!bad && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 h = store_id_hash((const char *)sqlite3_column_text(st, 1));
        sqlite3_bind_int64(s->id_get, 1, h);
        int in_ids = sqlite3_step(s->id_get);
        sqlite3_reset(s->id_get);
        if (in_ids == SQLITE_DONE && !idtail_find(&s->idt, h))
            bad = idtail_add(&s->idt, h, sqlite3_column_int64(st, 0), now);
        else if (in_ids != SQLITE_ROW && in_ids != SQLITE_DONE)
            bad = -1;
    }
    sqlite3_finalize(st);
    if (bad || rc != SQLITE_DONE) {
        idtail_clear(&s->idt);
        return -1;
    }
    s->idt_loaded = 1;
    return 0;
}

/* Inserts the next slice of the frozen keys into ids (in key order, so a
 * page takes many); the last slice also moves STORE_TAIL_MARKER. Returns how many
 * were inserted (idtail_merged once the transaction commits), or -1. */
static long merge_slice(struct store *s, size_t want)
{
    struct idtail *t = &s->idt;
    size_t n = t->nfrozen - t->merged < want ? t->nfrozen - t->merged : want;
    for (size_t i = t->merged; i < t->merged + n; i++) {
        sqlite3_bind_int64(s->id_merge, 1, t->frozen[i].h);
        sqlite3_bind_int64(s->id_merge, 2, t->frozen[i].seq);
        if (step_done(s->id_merge)) return -1;
    }
    if (n && t->merged + n == t->nfrozen) {
        sqlite3_bind_text(s->meta, 1, STORE_TAIL_MARKER, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->meta, 2, t->frozen_max);
        if (step_done(s->meta)) return -1;
    }
    return (long)n;
}

static int prepare_writer(struct store *s, char *err, size_t errlen)
{
    const struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&s->ins, "INSERT INTO event_rows(shape,id,subject,time,received,data) VALUES(?,?,?,?,?,?)"},
        {&s->cnt, "INSERT INTO counters(name,value) VALUES(?,?) "
                  "ON CONFLICT(name) DO UPDATE SET value=value+excluded.value"},
        {&s->cur, "INSERT INTO cursors(name,value,updated) VALUES(?,?,strftime('%Y-%m-%dT%H:%M:%fZ')) "
                  "ON CONFLICT(name) DO UPDATE SET value=excluded.value, updated=excluded.updated"},
        {&s->meta, "INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value"},
        {&s->run, RUN_INSERT_SQL},
        {&s->rec, RUN_RECORD_SQL},
        {&s->id_get, "SELECT seq, pruned FROM ids WHERE h = ?"},
        {&s->id_row, "SELECT id FROM event_rows WHERE seq = ?"},
        {&s->id_put, "INSERT INTO ids(h, seq) VALUES(?, ?)"},
        {&s->id_merge, "INSERT OR IGNORE INTO ids(h, seq) VALUES(?, ?)"},
        {&s->shape_get, "SELECT id, tmpl, type, source, via FROM shapes WHERE h = ?"},
        {&s->shape_put, "INSERT INTO shapes(h, tmpl, type, source, via) VALUES(?,?,?,?,?)"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++)
        if (sqlite3_prepare_v2(s->db, stmts[i].sql, -1, stmts[i].st, NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
            return -1;
        }
    return 0;
}

static void finalize_writer(struct store *s)
{
    sqlite3_stmt *all[] = {s->ins, s->cnt, s->cur, s->meta, s->run, s->rec, s->id_get, s->id_row, s->id_put,
                           s->id_merge, s->shape_get, s->shape_put};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) sqlite3_finalize(all[i]);
    s->ins = s->cnt = s->cur = s->meta = s->run = s->rec = s->id_get = s->id_row = s->id_put = s->id_merge = NULL;
    s->shape_get = s->shape_put = NULL;
}

static sqlite3_int64 meta_int(sqlite3 *db, const char *key)
{
    sqlite3_stmt *st;
    sqlite3_int64 v = 0;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) != SQLITE_OK) return 0;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Schema 3 -> 4 in place. Each chunk of MIGRATE_CHUNK events is converted in
 * its own transaction, which also records in meta the last seq converted: a
 * migration killed half way resumes there, and one that had to copy 10^8
 * events never holds a transaction (or the WAL) the size of the store. Seqs
 * are kept, so runs still point at their events. The file is then switched to
 * incremental auto-vacuum, which needs one VACUUM. */
static int migrate_v4(struct store *s, char *err, size_t errlen)
{
    if (exec_sql(s->db, "BEGIN IMMEDIATE", err, errlen)) return -1;
    if (exec_sql(s->db, schema4_tables, err, errlen) ||
        exec_sql(s->db, "INSERT OR IGNORE INTO meta(key, value) VALUES('migrate4.seq', 0)", err, errlen) ||
        exec_sql(s->db, "COMMIT", err, errlen))
        goto rollback;
    if (prepare_writer(s, err, errlen)) return -1;
    sqlite3_stmt *rd = NULL, *prog = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT seq, id, type, source, subject, time, via, received, body FROM events "
                           "WHERE seq > ? ORDER BY seq LIMIT " STR(MIGRATE_CHUNK),
                           -1, &rd, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "UPDATE meta SET value = ? WHERE key = 'migrate4.seq'", -1, &prog, NULL) !=
            SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
        sqlite3_finalize(rd);
        goto fail;
    }
    sqlite3_int64 done = meta_int(s->db, "migrate4.seq");
    long chunks = 0;
    for (;;) {
        if (exec_sql(s->db, "BEGIN IMMEDIATE", err, errlen)) goto fail_st;
        sqlite3_bind_int64(rd, 1, done);
        int n = 0, rc;
        while ((rc = sqlite3_step(rd)) == SQLITE_ROW) {
            struct store_event e = {0};
            char **f[] = {&e.id, &e.type, &e.source, &e.subject, &e.time, &e.via, &e.received, &e.body};
            for (int i = 0; i < 8; i++) *f[i] = (char *)sqlite3_column_text(rd, i + 1);
            sqlite3_int64 seq = sqlite3_column_int64(rd, 0);
            sqlite3_int64 shape;
            if (make_row(&e)) break;
            shape = shape_id(s, e.row.tmpl, &e);
            if (shape < 0) {
                free(e.row.tmpl);
                break;
            }
            sqlite3_stmt *ins;
            if (sqlite3_prepare_v2(s->db,
                                   "INSERT INTO event_rows(seq,shape,id,subject,time,received,data) "
                                   "VALUES(?,?,?,?,?,?,?)",
                                   -1, &ins, NULL) != SQLITE_OK) {
                free(e.row.tmpl);
                break;
            }
            sqlite3_bind_int64(ins, 1, seq);
            sqlite3_bind_int64(ins, 2, shape);
            bind_row(ins, 3, &e);
            int irc = sqlite3_step(ins);
            sqlite3_finalize(ins);
            free(e.row.tmpl);
            if (irc != SQLITE_DONE) break;
            /* Ids were unique in schema 3; a hash collision keeps the first. */
            sqlite3_bind_int64(s->id_put, 1, e.row.id_hash);
            sqlite3_bind_int64(s->id_put, 2, seq);
            sqlite3_step(s->id_put);
            sqlite3_reset(s->id_put);
            done = seq;
            n++;
        }
        sqlite3_reset(rd);
        if (rc != SQLITE_DONE) {
            snprintf(err, errlen, "migrating events: %s", sqlite3_errmsg(s->db));
            goto rollback_st;
        }
        sqlite3_bind_int64(prog, 1, done);
        if (step_done(prog) || exec_sql(s->db, "COMMIT", err, errlen)) goto rollback_st;
        if (!n) break;
        if (++chunks % 50 == 0) {
            char c[24];
            snprintf(c, sizeof c, "%lld", (long long)done);
            log_msg(LOG_INFO, "migrating the store to compact rows", "seq", c, NULL);
        }
    }
    sqlite3_finalize(rd);
    sqlite3_finalize(prog);
    finalize_writer(s);
    if (exec_sql(s->db, "BEGIN IMMEDIATE", err, errlen)) return -1;
    if (exec_sql(s->db, schema4_finish, err, errlen) || exec_sql(s->db, "COMMIT", err, errlen)) goto rollback;
    return 0;
rollback_st:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
fail_st:
    sqlite3_finalize(rd);
    sqlite3_finalize(prog);
fail:
    finalize_writer(s);
    return -1;
rollback:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    finalize_writer(s);
    return -1;
}

/* Incremental auto-vacuum lets retention give pages back to the file system a
 * few at a time. A new file gets it before its first table; an existing one
 * needs a VACUUM (a full copy, once; if it is killed, the old file stays as
 * it was and the next start does it again). */
static int ensure_incremental_vacuum(struct store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int mode = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA auto_vacuum", -1, &st, NULL) != SQLITE_OK) return 0;
    if (sqlite3_step(st) == SQLITE_ROW) mode = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (mode == 2) return 0;
    log_msg(LOG_INFO, "switching the store to incremental vacuum (one VACUUM)", "db", s->path, NULL);
    /* Out of WAL mode the same VACUUM also sets the page size; it needs the
     * file to itself, so if a reader holds it the VACUUM runs in WAL mode and
     * keeps the old page size. */
    int rolled = sqlite3_exec(s->db, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) == SQLITE_OK;
    int rc = exec_sql(s->db, "PRAGMA page_size=" STR(PAGE_SIZE) "; PRAGMA auto_vacuum=INCREMENTAL; VACUUM;", err, errlen);
    if (rolled && exec_sql(s->db, "PRAGMA journal_mode=WAL", err, errlen)) return -1;
    return rc;
}

/* Versions 1-3 are plain SQL; 4 converts rows (migrate_v4). */
static int migrate(struct store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) goto sqlerr;
    if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > SCHEMA_VERSION) {
        snprintf(err, errlen, "schema version %d is newer than this synccf understands (%d)", version,
                 SCHEMA_VERSION);
        return -1;
    }
    if (s->readonly) return 0;
    if (version == SCHEMA_VERSION) return ensure_incremental_vacuum(s, err, errlen);
    if (version < SQL_VERSIONS) {
        if (exec_sql(s->db, "BEGIN IMMEDIATE", err, errlen)) return -1;
        for (int v = version; v < SQL_VERSIONS; v++) {
            if (exec_sql(s->db, migrations[v], err, errlen)) goto rollback;
        }
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", SQL_VERSIONS);
        if (exec_sql(s->db, sql, err, errlen) || exec_sql(s->db, "COMMIT", err, errlen)) goto rollback;
    }
    if (version < SQL_VERSIONS + 1 && migrate_v4(s, err, errlen)) return -1;
    /* Every event so far has its key in ids. */
    if (exec_sql(s->db, "BEGIN IMMEDIATE", err, errlen)) return -1;
    if (exec_sql(s->db, schema5, err, errlen) || exec_sql(s->db, "COMMIT", err, errlen)) goto rollback;
    return ensure_incremental_vacuum(s, err, errlen);
rollback:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
sqlerr:
    snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
    return -1;
}

/* The writer can meet a lock held by another connection: the checkpointer's,
 * `synccf replay` recording an outcome on its own, a backup. (The daemon's
 * dispatcher used to be one, a commit about an fsync long before each of a
 * fifth of sequential hook calls; its outcomes now go through the writer.)
 * SQLite's own busy handler (sqlite3_busy_timeout) first sleeps 1 ms, then
 * 2, 5, 10..., so each such meeting cost a commit at least 1 ms; this one
 * retries every 100 µs, for the same 2 s in all. */
#define BUSY_STEP_US 100
#define BUSY_TOTAL_US (2000 * 1000)
static int busy_wait(void *arg, int n)
{
    (void)arg;
    if ((long)n * BUSY_STEP_US >= BUSY_TOTAL_US) return 0;
    struct timespec ts = {0, BUSY_STEP_US * 1000};
    nanosleep(&ts, NULL);
    return 1;
}

struct store *store_open(const char *path, int readonly, char *err, size_t errlen)
{
    struct store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    s->readonly = readonly;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->ckmu, NULL);
    pthread_cond_init(&s->ckcv, NULL);
    pthread_cond_init(&s->ckidle, NULL);
    hist_init(&s->commit_hist);

    if (!readonly) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            if (mkdirs(dir) != 0) {
                snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
                goto fail;
            }
        }
        /* Create the file ourselves so it is 0600 from its first byte;
         * SQLite gives -wal and -shm the database file's mode. */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            goto fail;
        }
        close(fd);
    }
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_handler(s->db, busy_wait, NULL);
    /* Reading the schema is what detects a file that is not a database. */
    if (exec_sql(s->db, "SELECT count(*) FROM sqlite_master", err, errlen)) goto fail;
    /* The page size and auto-vacuum are set here for a new file only (an
     * existing one gets them from ensure_incremental_vacuum's VACUUM): setting
     * auto_vacuum takes the write lock, and a store locked by another process
     * must still open (and answer 503 until the lock goes). */
    if (!readonly) {
        sqlite3_stmt *pc;
        int fresh = 0;
        if (sqlite3_prepare_v2(s->db, "PRAGMA page_count", -1, &pc, NULL) == SQLITE_OK) {
            fresh = sqlite3_step(pc) == SQLITE_ROW && sqlite3_column_int64(pc, 0) == 0;
            sqlite3_finalize(pc);
        }
        if (fresh && exec_sql(s->db, "PRAGMA page_size=" STR(PAGE_SIZE) "; PRAGMA auto_vacuum=INCREMENTAL;", err, errlen))
            goto fail;
        if (exec_sql(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err, errlen)) goto fail;
    }
    /* Foreign keys are checked from here on, not during migrations, which
     * rebuild tables that refer to each other. */
    if (migrate(s, err, errlen)) goto fail;
    /* The writer's page cache: 16 MiB instead of SQLite's 2. Dedupe inserts
     * land on random pages of ids; in a store of a million Logpush records
     * 100,000 more went in at ~7,800/s with 2 MiB, ~10,900/s with 16 MiB
     * (~15,000/s with 32 MiB, but 50 MiB peak RSS instead of 32). The
     * cache fills only as pages are used: idle RSS does not change.
     * mmap_size was measured too and dropped: no gain, +130 MiB RSS. */
    if (!readonly && (exec_sql(s->db, "PRAGMA foreign_keys=ON; PRAGMA cache_size=-16384", err, errlen) ||
                      prepare_writer(s, err, errlen)))
        goto fail;
    return s;
fail:
    store_close(s);
    return NULL;
}

struct sqlite3 *store_db(struct store *s) { return s->db; }
void store_on_runs(struct store *s, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->on_runs = fn;
    s->on_runs_arg = arg;
    pthread_mutex_unlock(&s->mu);
}

struct hist *store_commit_hist(struct store *s) { return &s->commit_hist; }

long store_commits(struct store *s) { return atomic_load(&s->commits); }
int store_healthy(struct store *s) { return !atomic_load(&s->last_failed); }
const char *store_path(struct store *s) { return s->path; }

void store_count(struct store *s, const char *name, int64_t delta)
{
    pthread_mutex_lock(&s->mu);
    size_t i = 0;
    while (i < s->ncounters && strcmp(s->counters[i].name, name) != 0) i++;
    if (i == s->ncounters && i < MAX_COUNTERS) {
        snprintf(s->counters[i].name, sizeof s->counters[i].name, "%s", name);
        s->counters[i].delta = 0;
        s->ncounters++;
    }
    if (i < s->ncounters) s->counters[i].delta += delta;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void store_note_error(struct store *s, const char *msg)
{
    char tbuf[TIME_BUF];
    time_format_ms(now_ms(), tbuf);
    pthread_mutex_lock(&s->mu);
    snprintf(s->last_error, sizeof s->last_error, "%s %s", tbuf, msg);
    s->error_dirty = 1;
    pthread_mutex_unlock(&s->mu);
}

void store_note_meta(struct store *s, const char *key, const char *value)
{
    pthread_mutex_lock(&s->mu);
    size_t i = 0;
    while (i < 8 && s->notes[i].value && strcmp(s->notes[i].key, key) != 0) i++;
    if (i < 8) {
        snprintf(s->notes[i].key, sizeof s->notes[i].key, "%s", key);
        free(s->notes[i].value);
        s->notes[i].value = strdup(value);
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- the outbox (table runs) ------------------------------------------------ */

/* The ordering key of an event's runs: runs of one subject are kept in order
 * (dispatch.c claims a run only when no earlier run of its key is pending);
 * an event without a subject is its own ordering domain. */
static void run_key(char *key, size_t keylen, const char *subject, const char *id)
{
    if (subject) snprintf(key, keylen, "s:%s", subject);
    else snprintf(key, keylen, "e:%s", id);
}

/* One pending run (the column's default state) on st, RUN_INSERT_SQL. */
static int insert_run(sqlite3_stmt *st, sqlite3_int64 seq, int idx, const char *handler, const char *key)
{
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int(st, 2, idx);
    sqlite3_bind_text(st, 3, handler, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, key, -1, SQLITE_TRANSIENT);
    return step_done(st);
}

int store_replay(struct store *s, long long seq, const char *id, const char *subject, const char *const *handlers)
{
    sqlite3 *db = s->db;
    sqlite3_stmt *st;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return -2;
    int n = -1;
    if (sqlite3_prepare_v2(db, "UPDATE runs SET state='" RUN_NAME_PENDING "', attempts=0, next_at=0, last_error=NULL, "
                               "updated=strftime('%Y-%m-%dT%H:%M:%fZ') WHERE seq = ?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, seq);
        if (sqlite3_step(st) == SQLITE_DONE) n = sqlite3_changes(db);
        sqlite3_finalize(st);
    }
    if (n == 0 && handlers) {
        char key[300];
        run_key(key, sizeof key, subject, id);
        if (sqlite3_prepare_v2(db, RUN_INSERT_SQL, -1, &st, NULL) == SQLITE_OK) {
            for (int i = 0; handlers[i]; i++)
                if (insert_run(st, seq, i, handlers[i], key) == 0) n++;
            sqlite3_finalize(st);
        }
    }
    if (n < 0 || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        n = -2;
    }
    return n;
}

char *store_cursor(struct store *s, const char *name)
{
    /* A connection of its own: the store's is the writer thread's. */
    sqlite3 *db;
    sqlite3_stmt *st;
    char *out = NULL;
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK) {
        sqlite3_busy_handler(db, busy_wait, NULL);
        if (sqlite3_prepare_v2(db, "SELECT value FROM cursors WHERE name = ?", -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            /* NULL out of memory: read as no cursor */
            if (sqlite3_step(st) == SQLITE_ROW) out = strdup((const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    return out;
}

/* Inserts the event and, if it is new, its handler runs. */
static int insert_event(struct store *s, const struct store_event *e, int *inserted, int *runs)
{
    sqlite3_int64 seq = 0, shape = 0;
    if (put_event(s, e, inserted, &seq, &shape)) return -1;
    if (*inserted && s->ret) retention_note_insert(s->ret, shape);
    if (!*inserted || !e->handlers) return 0;
    char key[300];
    run_key(key, sizeof key, e->subject, e->id);
    for (int i = 0; e->handlers[i]; i++) {
        if (insert_run(s->run, seq, i, e->handlers[i], key)) return -1;
        (*runs)++;
    }
    return 0;
}

static void sources_free(struct store *s)
{
    for (long i = 0; i < s->nsources; i++) free(s->sources[i]);
    free(s->sources);
    s->sources = NULL;
    s->nsources = 0;
}

/* Reads the admitted sources from the counters; 0, or -1 out of memory or
 * on an error of SQLite (then nothing is kept and the next commit asks again). */
static int sources_load(struct store *s)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT DISTINCT substr(name, instr(name, '|') + 1) FROM counters "
                           "WHERE name LIKE 'events.%' AND substr(name, instr(name, '|') + 1) <> 'other'",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    /* Room for every admitted source: more than max_series only in a store
     * whose bound was lowered since. */
    size_t cap = s->max_series, n = 0;
    char **v = calloc(cap, sizeof *v);
    int rc = v ? SQLITE_ROW : SQLITE_NOMEM;
    while (rc == SQLITE_ROW && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            char **w = realloc(v, (cap *= 2) * sizeof *v);
            if (!w) { rc = SQLITE_NOMEM; break; }
            v = w;
        }
        if (!(v[n] = strdup((const char *)sqlite3_column_text(st, 0)))) rc = SQLITE_NOMEM;
        else n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        while (n) free(v[--n]);
        free(v);
        return -1;
    }
    s->sources = v;
    s->nsources = (long)n;
    return 0;
}

/* The source label an event of (via, source) is counted under: its own
 * when it already has a counter or fewer than max_series sources have one,
 * else "other" (see struct store). Writer thread, inside the transaction. */
static const char *source_label(struct store *s, const char *source)
{
    if (!s->max_series || strcmp(source, "other") == 0) return source;
    if (!s->sources && sources_load(s)) return "other";
    for (long i = 0; i < s->nsources; i++)
        if (strcmp(s->sources[i], source) == 0) return source;
    if (s->nsources >= (long)s->max_series) return "other";
    char *copy = strdup(source);
    if (!copy) return "other";
    s->sources[s->nsources++] = copy;
    return source;
}

void store_set_max_series(struct store *s, unsigned max_series)
{
    sources_free(s);
    s->max_series = max_series;
}

/* Adds n to the counter name, in the open transaction. */
static int add_counter(struct store *s, const char *name, int64_t n)
{
    sqlite3_bind_text(s->cnt, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s->cnt, 2, n);
    return step_done(s->cnt) == 0;
}

/* Stored events per (way in, source), counted in the same transaction. */
struct per_source {
    const char *via, *source;
    int64_t n;
};
#define PER_SOURCE 32

/* Inserts one batch's events and its cursor, and counts its duplicates; 1,
 * or 0 when a statement failed. */
static int insert_batch(struct store *s, struct store_batch *b, struct per_source *per, size_t *nper, int *runs)
{
    int ok = 1;
    b->accepted = b->duplicates = 0;
    for (size_t i = 0; ok && i < b->n; i++) {
        int inserted = 0;
        ok = insert_event(s, &b->ev[i], &inserted, runs) == 0;
        if (!inserted) {
            b->duplicates++;
            continue;
        }
        b->accepted++;
        size_t k = 0;
        while (k < *nper && (strcmp(per[k].via, b->ev[i].via) || strcmp(per[k].source, b->ev[i].source))) k++;
        if (k == *nper && *nper < PER_SOURCE) per[(*nper)++] = (struct per_source){b->ev[i].via, b->ev[i].source, 0};
        if (k < *nper) {
            per[k].n++;
        } else { /* more pairs than per holds: this one is counted alone */
            char name[400];
            snprintf(name, sizeof name, "events.%s|%s", b->ev[i].via, source_label(s, b->ev[i].source));
            ok = add_counter(s, name, 1);
        }
    }
    const struct store_outcome *o = b->outcome;
    if (ok && o) {
        run_record_bind(s->rec, o);
        ok = step_done(s->rec) == 0;
    }
    if (ok && b->cursor_name) {
        sqlite3_bind_text(s->cur, 1, b->cursor_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->cur, 2, b->cursor_value ? b->cursor_value : "", -1, SQLITE_STATIC);
        ok = step_done(s->cur) == 0;
    }
    /* Duplicates are counted per way in, in the same transaction. */
    if (ok && b->duplicates) {
        char name[48];
        snprintf(name, sizeof name, "duplicates.%s", b->n ? b->ev[0].via : "unknown");
        ok = add_counter(s, name, (int64_t)b->duplicates);
    }
    return ok;
}

/* After a failed commit: rolls back, logs (the first failure, then at most
 * one line every 10 s) and puts the group's counters back for the next one. */
static void commit_failed(struct store *s, const struct counter *pending, size_t npending)
{
    /* Read the reason before ROLLBACK replaces it. A full disk or a lock
     * held elsewhere fails every commit until it clears. */
    char why[160], msg[200], n[24];
    int sys = sqlite3_system_errno(s->db);
    if (sys)
        snprintf(why, sizeof why, "%s (%s)", sqlite3_errmsg(s->db), strerror(sys));
    else
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(s->db));
    snprintf(msg, sizeof msg, "store commit failed: %s", why);
    if (sqlite3_get_autocommit(s->db) == 0) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < SHAPE_CACHE; i++) shape_cache_free(&s->shapes[i]);
    if (s->ret) retention_rolled_back(s->ret);
    s->failed_run++;
    if (s->failed_run == 1 || now_ms() - s->failed_logged >= 10000) {
        snprintf(n, sizeof n, "%ld", s->failed_run);
        log_msg(LOG_ERROR, "commit failed, answering 503 until it succeeds", "error", why, "failed_commits", n,
                "db", s->path, NULL);
        s->failed_logged = now_ms();
    }
    for (size_t i = 0; i < npending; i++) store_count(s, pending[i].name, pending[i].delta);
    store_note_error(s, msg);
}

/* Whether the tail's keys are due to be frozen and merged (TAIL_MERGE_AT). */
static int tail_due(const struct store *s)
{
    const struct idtail *t = &s->idt;
    return !t->nfrozen && t->nlive && (t->nlive >= TAIL_MERGE_AT || now_ms() - t->since >= TAIL_MERGE_AFTER_MS);
}

/* Whether the group's commit must reach the disk before anyone is told it
 * is done: unless every batch in it is provisional. No batch at all
 * (counters, notes) keeps the fsync too: only Logpush bodies skip it. */
static int group_needs_sync(const struct store_batch *list)
{
    if (!list) return 1;
    for (const struct store_batch *b = list; b; b = b->next)
        if (!b->provisional) return 1;
    return 0;
}

/* PRAGMA synchronous for the next commit: FULL (sync) or NORMAL. Writer
 * thread, outside a transaction. -1 when FULL could not be set. */
static int set_sync(struct store *s, int sync)
{
    if (sync == !s->unsynced_mode) return 0;
    if (sqlite3_exec(s->db, sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK)
        return sync ? -1 : 0;
    s->unsynced_mode = !sync;
    return 0;
}

/* Commits one group. Counters and the last error pending at the start ride in
 * the same transaction; if it fails they are put back for the next one. */
static int commit_group(struct store *s, struct store_batch *list, int *runs)
{
    struct counter pending[MAX_COUNTERS];
    size_t npending;
    char errnote[256] = "";
    pthread_mutex_lock(&s->mu);
    npending = s->ncounters;
    memcpy(pending, s->counters, npending * sizeof *pending);
    s->ncounters = 0;
    if (s->error_dirty) {
        memcpy(errnote, s->last_error, sizeof errnote);
        s->error_dirty = 0;
    }
    char notek[8][48];
    char *notev[8] = {0};
    for (int i = 0; i < 8 && s->notes[i].value; i++) {
        memcpy(notek[i], s->notes[i].key, sizeof notek[i]);
        notev[i] = s->notes[i].value;
        s->notes[i].value = NULL;
    }
    pthread_mutex_unlock(&s->mu);

    struct per_source per[PER_SOURCE];
    size_t nper = 0;
    double t0 = mono_s();
    /* Out of memory here, the keys stay live and the freeze is tried again. */
    if (s->idt_loaded && tail_due(s)) idtail_freeze(&s->idt);
    int ok = set_sync(s, group_needs_sync(list)) == 0;
    if (ok) ok = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
    if (ok && !s->idt_loaded) ok = load_tail(s) == 0;
    idtail_begin(&s->idt);
    for (struct store_batch *b = list; ok && b; b = b->next) ok = insert_batch(s, b, per, &nper, runs);
    long merged = 0;
    if (ok && s->idt.nfrozen) {
        size_t added = s->idt.nlive - s->idt.mark;
        /* An idle group (list NULL) has time for more. */
        merged = merge_slice(s, !list ? 8 * TAIL_STEP : added * 2 > TAIL_STEP ? added * 2 : TAIL_STEP);
        ok = merged >= 0;
    }
    for (size_t k = 0; ok && k < nper; k++) {
        char name[400];
        snprintf(name, sizeof name, "events.%s|%s", per[k].via, source_label(s, per[k].source));
        ok = add_counter(s, name, per[k].n);
    }
    for (size_t i = 0; ok && i < npending; i++)
        if (pending[i].delta) ok = add_counter(s, pending[i].name, pending[i].delta);
    if (ok && errnote[0]) {
        sqlite3_bind_text(s->meta, 1, "last_error", -1, SQLITE_STATIC);
        sqlite3_bind_text(s->meta, 2, errnote, -1, SQLITE_STATIC);
        ok = step_done(s->meta) == 0;
    }
    for (int i = 0; ok && i < 8 && notev[i]; i++) {
        sqlite3_bind_text(s->meta, 1, notek[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(s->meta, 2, notev[i], -1, SQLITE_STATIC);
        ok = step_done(s->meta) == 0;
    }
    for (int i = 0; i < 8; i++) free(notev[i]); /* a newer state will follow if this one was lost */
    /* Retention rides in the group's transaction (it shares its fsync and
     * never holds the write lock on its own), a bounded amount per group, in a
     * savepoint: a failure there undoes the pruning, not the group. */
    if (ok && s->ret) retention_step(s->ret, s->db, s->cnt);
    if (ok) ok = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    if (!ok) {
        idtail_undo(&s->idt);
        commit_failed(s, pending, npending);
        return -1;
    }
    idtail_merged(&s->idt, (size_t)merged);
    if (s->failed_run) {
        char n[24];
        snprintf(n, sizeof n, "%ld", s->failed_run);
        log_msg(LOG_INFO, "store recovered", "failed_commits", n, NULL);
        s->failed_run = 0;
    }
    atomic_fetch_add(&s->commits, 1);
    hist_observe(&s->commit_hist, mono_s() - t0);
    return 0;
}

/* Past WAL_CAP_BYTES, between two groups: copies what the passes have not
 * yet copied and makes the next commit start the WAL over (see the top of
 * the file). The RESTART copies the rest and fsyncs the database while the
 * next group waits: up to a whole pass's worth (8 MiB) when it came right
 * before the next pass, 6-10 ms here, once a second at 18,000 events/s, most
 * of the p99 (and more before the passes synced their own pages: db_sync).
 * So at the cap the checkpointer is asked for a pass first, and
 * the writer restarts once that pass has left at most RESTART_LEFT pages;
 * WAL_CAP_SLACK bounds the wait.
 *
 * SQLite's checkpoint lock has no busy handler: a RESTART begun while the
 * checkpointer is in a pass fails at once (SQLITE_BUSY), and the WAL grew by
 * a group for each such try until a pass happened to end between two
 * groups (measured: 70.8 MiB, and past 72 MiB on a slow disk). So the writer
 * holds further passes off, waits for the one under way to end (bounded by
 * RESTART_WAIT_MS; each pass is at most CHECKPOINT_PAGES plus what was
 * added during it), then restarts. Writer thread only. */
#define RESTART_LEFT 128
#define WAL_CAP_SLACK (CHECKPOINT_PAGES / 2)
#define RESTART_WAIT_MS 2000
static void wal_restart(struct store *s)
{
    pthread_mutex_lock(&s->ckmu);
    int over = 0;
    if (s->ck_started && s->wal_pages >= WAL_CAP_PAGES) {
        over = s->wal_pages - s->ck_done <= RESTART_LEFT || s->wal_pages >= WAL_CAP_PAGES + WAL_CAP_SLACK;
        if (!over) {
            s->ck_wanted = 1;
            pthread_cond_signal(&s->ckcv);
        }
    }
    if (!over) {
        pthread_mutex_unlock(&s->ckmu);
        return;
    }
    s->ck_held = 1;
    struct timespec deadline = deadline_ms(RESTART_WAIT_MS);
    while (s->ck_running && pthread_cond_timedwait(&s->ckidle, &s->ckmu, &deadline) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&s->ckmu);
    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
    pthread_mutex_lock(&s->ckmu);
    s->ck_held = 0;
    if (s->ck_wanted) pthread_cond_signal(&s->ckcv);
    pthread_mutex_unlock(&s->ckmu);
}

static void *writer(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        /* Counters alone are flushed at most once a second, with a deadline
         * fixed before waiting so that a stream of rejections cannot keep
         * postponing it. */
        /* Retention with work left comes back after 5 ms, between groups. */
        long wait = s->ret && retention_more(s->ret) ? 5 : 1000;
        struct timespec deadline = deadline_ms(wait);
        while (!s->head && !s->stopping) {
            if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT) {
                if (s->ncounters || s->error_dirty || s->notes[0].value) break;
                if (s->ret && retention_due(s->ret)) break;
                if (tail_due(s) || s->idt.nfrozen) break;
                deadline = deadline_ms(wait);
            }
        }
        struct store_batch *list = s->head;
        s->head = s->tail = NULL;
        int stop = s->stopping && !list;
        pthread_mutex_unlock(&s->mu);

        int runs = 0;
        int rc = commit_group(s, list, &runs);
        atomic_store(&s->last_failed, rc != 0);
        wal_restart(s);
        if (rc == 0 && s->ret) retention_committed(s->ret);
        if (rc == 0 && runs) {
            /* Under mu: store_on_runs(NULL) before the dispatcher is freed
             * must not race with a call already under way. */
            pthread_mutex_lock(&s->mu);
            if (s->on_runs) s->on_runs(s->on_runs_arg);
            pthread_mutex_unlock(&s->mu);
        }
        for (struct store_batch *b = list, *next; b; b = next) {
            next = b->next;
            b->next = NULL;
            b->failed = rc != 0;
            if (rc) b->accepted = b->duplicates = 0;
            b->done(b, b->arg);
        }
        pthread_mutex_lock(&s->mu);
        if (stop) break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Called by SQLite on the writer thread after each commit. Replaces the
 * automatic checkpoint (installing a WAL hook turns it off). */
static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    struct store *s = arg;
    pthread_mutex_lock(&s->ckmu);
    if (pages < s->ck_done) s->ck_done = 0; /* the WAL started over */
    s->wal_pages = pages;
    if (pages - s->ck_done >= CHECKPOINT_PAGES) {
        s->ck_wanted = 1;
        pthread_cond_signal(&s->ckcv);
    }
    pthread_mutex_unlock(&s->ckmu);
    return SQLITE_OK;
}

/* SQLite syncs the database at the end of a pass only if no commit came
 * during it, which under steady load is never: the passes' pages, up to the
 * WAL's 64 MiB, stayed unsynced until the writer's RESTART flushed them all
 * while the next group waited (11-17 ms measured at 12,000 events/s, five
 * times in 8 s). Synced here, off the writer's path, after every pass, the
 * RESTART's own sync took 0.4-0.7 ms instead. */
static void db_sync(sqlite3 *db)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) == SQLITE_OK && f && f->pMethods)
        f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
}

static void *checkpointer(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->ckmu);
    while (!s->ck_stopping) {
        if (!s->ck_wanted || s->ck_held) {
            pthread_cond_wait(&s->ckcv, &s->ckmu);
            continue;
        }
        s->ck_wanted = 0;
        s->ck_running = 1;
        pthread_mutex_unlock(&s->ckmu);
        /* A failure (disk full, a lock held elsewhere) loses nothing: the
         * pages stay in the WAL and the next commit asks again. */
        int wal = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(s->ckdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &wal, &done);
        if (rc == SQLITE_OK && done > 0) db_sync(s->ckdb);
        pthread_mutex_lock(&s->ckmu);
        s->ck_running = 0;
        pthread_cond_broadcast(&s->ckidle);
        if (rc == SQLITE_OK && done > 0 && done <= s->wal_pages) s->ck_done = done;
    }
    pthread_mutex_unlock(&s->ckmu);
    return NULL;
}

/* Opens the checkpointer's connection and starts it; without one SQLite's
 * automatic checkpoint stays in place. */
static void checkpointer_start(struct store *s)
{
    char lim[64];
    snprintf(lim, sizeof lim, "PRAGMA journal_size_limit=%lld", WAL_SIZE_LIMIT);
    sqlite3_exec(s->db, lim, NULL, NULL, NULL);
    if (sqlite3_open_v2(s->path, &s->ckdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(s->ckdb, 2000) != SQLITE_OK ||
        sqlite3_exec(s->ckdb, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK ||
        pthread_create(&s->ckthread, NULL, checkpointer, s) != 0) {
        sqlite3_close(s->ckdb);
        s->ckdb = NULL;
        return;
    }
    pthread_setname_np(s->ckthread, "checkpointer");
    s->ck_started = 1;
    sqlite3_wal_hook(s->db, on_wal, s);
}

int store_set_retention(struct store *s, const struct retention_config *c)
{
    if (s->started || s->readonly) return -1;
    struct retention *r = retention_new(c);
    if (!r) return -1;
    retention_free(s->ret);
    s->ret = r;
    /* What status and /metrics show as the retention in force. */
    json_t *j = retention_config_json(c);
    char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (txt) store_note_meta(s, "retention", txt);
    free(txt);
    return 0;
}

int store_start(struct store *s)
{
    if (s->readonly || s->started) return -1;
    checkpointer_start(s); /* first: it sets up s->db, which is the writer's from then on */
    if (pthread_create(&s->thread, NULL, writer, s) != 0) return -1;
    pthread_setname_np(s->thread, "writer");
    s->started = 1;
    return 0;
}

void store_submit(struct store *s, struct store_batch *b)
{
    b->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->tail) s->tail->next = b;
    else s->head = b;
    s->tail = b;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
};

static void wake(struct store_batch *b, void *arg)
{
    (void)b;
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int store_commit(struct store *s, struct store_batch *b)
{
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    b->done = wake;
    b->arg = &w;
    store_submit(s, b);
    pthread_mutex_lock(&w.mu);
    while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    return b->failed ? -1 : 0;
}

/* Sets *flag under mu, wakes the thread waiting on cv and waits for it. */
static void stop_thread(pthread_mutex_t *mu, pthread_cond_t *cv, int *flag, pthread_t thread)
{
    pthread_mutex_lock(mu);
    *flag = 1;
    pthread_cond_signal(cv);
    pthread_mutex_unlock(mu);
    pthread_join(thread, NULL);
}

void store_close(struct store *s)
{
    if (!s) return;
    if (s->started) stop_thread(&s->mu, &s->cv, &s->stopping, s->thread);
    if (s->ck_started) {
        stop_thread(&s->ckmu, &s->ckcv, &s->ck_stopping, s->ckthread);
        sqlite3_close(s->ckdb);
    }
    finalize_writer(s);
    idtail_free(&s->idt);
    retention_free(s->ret);
    sources_free(s);
    for (int i = 0; i < SHAPE_CACHE; i++) shape_cache_free(&s->shapes[i]);
    if (s->db) sqlite3_close(s->db);
    for (int i = 0; i < 8; i++) free(s->notes[i].value);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->ckmu);
    pthread_cond_destroy(&s->ckcv);
    pthread_cond_destroy(&s->ckidle);
    free(s->path);
    free(s);
}
