/* store.c -- owns state.db: schema and migrations, and the single writer
 * thread that commits events.
 *
 * Durability: WAL with synchronous=FULL. Under NORMAL a commit can be rolled
 * back by power loss after we have answered 2xx and the sender has stopped
 * retrying, so every acknowledged commit is fsynced.
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
 * back (PASSIVE: it never blocks the writer, which keeps appending). */
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

#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define MAX_COUNTERS 64
#define CHECKPOINT_PAGES 1000        /* SQLite's own default threshold */
#define WAL_SIZE_LIMIT (64ll << 20) /* what a reset WAL file is cut back to */
#define WAL_CAP_PAGES 16000           /* ~64 MiB: past this, catch up (RESTART) */

struct counter {
    char name[48];
    int64_t delta;
};

struct store {
    sqlite3 *db;
    char *path;
    int readonly;
    sqlite3_stmt *ins, *cnt, *cur, *meta, *run;
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
    int wal_pages; /* the WAL's size after the last commit */
    pthread_mutex_t ckmu;
    pthread_cond_t ckcv;
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
    "  state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL DEFAULT 0, last_error TEXT, detail TEXT, updated TEXT,"
    "  PRIMARY KEY(seq, idx)) WITHOUT ROWID;"
    "CREATE INDEX runs_open ON runs(state, subject_key, seq, idx);",
    /* 3: the dispatcher takes the oldest due runs first. Without an index in
     * that order SQLite sorted every pending run on each claim, so draining
     * a backlog of n runs cost O(n^2 log n): 64 runs/s at 5,000 pending. */
    "CREATE INDEX runs_due ON runs(state, seq, idx);",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))

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
    out->id = strdup(id);
    out->type = strdup(type);
    out->source = strdup(source);
    out->subject = subject ? strdup(subject) : NULL;
    out->time = strdup(time);
    out->via = strdup(via);
    out->received = strdup(received);
    if (!out->id || !out->type || !out->source || (subject && !out->subject) || !out->time || !out->via ||
        !out->received || !out->body) {
        store_event_free(out);
        return -1;
    }
    return 0;
}

void store_event_free(struct store_event *e)
{
    free(e->id);
    free(e->type);
    free(e->source);
    free(e->subject);
    free(e->time);
    free(e->via);
    free(e->received);
    free(e->body);
    for (char **h = e->handlers; h && *h; h++) free(*h);
    free(e->handlers);
    memset(e, 0, sizeof *e);
}

int store_batch_add(struct store_batch *b, struct store_event *ev)
{
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
    if (version == SCHEMA_VERSION || s->readonly) return 0;
    if (exec_sql(s->db, "BEGIN IMMEDIATE", err, errlen)) return -1;
    for (int v = version; v < SCHEMA_VERSION; v++) {
        if (exec_sql(s->db, migrations[v], err, errlen)) goto rollback;
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", SCHEMA_VERSION);
    if (exec_sql(s->db, sql, err, errlen) || exec_sql(s->db, "COMMIT", err, errlen)) goto rollback;
    return 0;
rollback:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
sqlerr:
    snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
    return -1;
}

/* The writer meets a lock held by the dispatcher's connection recording a
 * handler's outcome (a commit: about an fsync long). SQLite's own busy
 * handler (sqlite3_busy_timeout) first sleeps 1 ms, then 2, 5, 10..., so
 * each such meeting cost a commit at least 1 ms; this one retries every
 * 100 µs, for the same 2 s in all. */
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
    s->path = strdup(path);
    s->readonly = readonly;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->ckmu, NULL);
    pthread_cond_init(&s->ckcv, NULL);
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
    /* cache_size: event ids are hashes, so inserts land all over the id
     * index; with SQLite's default 2 MiB cache each group re-read most of
     * the pages it touched from the file once the index outgrew it (a fifth
     * of the writer's CPU in pread at 160,000 records). 16 MiB holds the
     * index of about 300,000 events; it is allocated only as pages are used. */
    if (!readonly && exec_sql(s->db,
                              "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                              "PRAGMA cache_size=-16384;",
                              err, errlen))
        goto fail;
    if (migrate(s, err, errlen)) goto fail;
    if (!readonly) {
        const char *ins = "INSERT OR IGNORE INTO events(id,type,source,subject,time,via,received,body) "
                          "VALUES(?,?,?,?,?,?,?,?)";
        const char *cnt = "INSERT INTO counters(name,value) VALUES(?,?) "
                          "ON CONFLICT(name) DO UPDATE SET value=value+excluded.value";
        const char *cur = "INSERT INTO cursors(name,value,updated) VALUES(?,?,strftime('%Y-%m-%dT%H:%M:%fZ')) "
                          "ON CONFLICT(name) DO UPDATE SET value=excluded.value, updated=excluded.updated";
        const char *meta = "INSERT INTO meta(key,value) VALUES(?,?) "
                           "ON CONFLICT(key) DO UPDATE SET value=excluded.value";
        const char *run = "INSERT INTO runs(seq,idx,handler,subject_key,updated) "
                          "VALUES(?,?,?,?,strftime('%Y-%m-%dT%H:%M:%fZ'))";
        if (sqlite3_prepare_v2(s->db, ins, -1, &s->ins, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->db, cnt, -1, &s->cnt, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->db, cur, -1, &s->cur, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->db, meta, -1, &s->meta, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->db, run, -1, &s->run, NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    return s;
fail:
    store_close(s);
    return NULL;
}

struct sqlite3 *store_db(struct store *s) { return s->db; }
void store_on_runs(struct store *s, void (*fn)(void *arg), void *arg)
{
    s->on_runs = fn;
    s->on_runs_arg = arg;
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

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Inserts the event and, if it is new, its handler runs. */
static int insert_event(struct store *s, const struct store_event *e, int *inserted, int *runs)
{
    const char *v[8] = {e->id, e->type, e->source, e->subject, e->time, e->via, e->received, e->body};
    for (int i = 0; i < 8; i++) sqlite3_bind_text(s->ins, i + 1, v[i], -1, SQLITE_STATIC);
    if (step_done(s->ins)) return -1;
    *inserted = sqlite3_changes(s->db) > 0;
    if (!*inserted || !e->handlers) return 0;
    sqlite3_int64 seq = sqlite3_last_insert_rowid(s->db);
    /* Runs of one subject are kept in order; an event without a subject is
     * its own ordering domain. */
    char key[300];
    if (e->subject) snprintf(key, sizeof key, "s:%s", e->subject);
    else snprintf(key, sizeof key, "e:%s", e->id);
    for (int i = 0; e->handlers[i]; i++) {
        sqlite3_bind_int64(s->run, 1, seq);
        sqlite3_bind_int(s->run, 2, i);
        sqlite3_bind_text(s->run, 3, e->handlers[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(s->run, 4, key, -1, SQLITE_TRANSIENT);
        if (step_done(s->run)) return -1;
        (*runs)++;
    }
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

    /* Stored events per (way in, source), counted in the same transaction. */
    struct per_source {
        const char *via, *source;
        int64_t n;
    } per[32];
    size_t nper = 0;
    double t0 = mono_s();
    int ok = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
    for (struct store_batch *b = list; ok && b; b = b->next) {
        b->accepted = b->duplicates = 0;
        for (size_t i = 0; ok && i < b->n; i++) {
            int inserted = 0;
            ok = insert_event(s, &b->ev[i], &inserted, runs) == 0;
            if (inserted) {
                b->accepted++;
                size_t k = 0;
                while (k < nper && (strcmp(per[k].via, b->ev[i].via) || strcmp(per[k].source, b->ev[i].source))) k++;
                if (k == nper && nper < 32) per[nper++] = (struct per_source){b->ev[i].via, b->ev[i].source, 0};
                if (k < nper) {
                    per[k].n++;
                } else { /* more pairs than per holds: this one is counted alone */
                    char name[400];
                    snprintf(name, sizeof name, "events.%s|%s", b->ev[i].via, b->ev[i].source);
                    sqlite3_bind_text(s->cnt, 1, name, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_int64(s->cnt, 2, 1);
                    ok = step_done(s->cnt) == 0;
                }
            } else {
                b->duplicates++;
            }
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
            sqlite3_bind_text(s->cnt, 1, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(s->cnt, 2, (sqlite3_int64)b->duplicates);
            ok = step_done(s->cnt) == 0;
        }
    }
    for (size_t k = 0; ok && k < nper; k++) {
        char name[400];
        snprintf(name, sizeof name, "events.%s|%s", per[k].via, per[k].source);
        sqlite3_bind_text(s->cnt, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s->cnt, 2, per[k].n);
        ok = step_done(s->cnt) == 0;
    }
    for (size_t i = 0; ok && i < npending; i++) {
        if (!pending[i].delta) continue;
        sqlite3_bind_text(s->cnt, 1, pending[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->cnt, 2, pending[i].delta);
        ok = step_done(s->cnt) == 0;
    }
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
    if (ok) ok = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    if (ok) {
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

    /* Read the reason before ROLLBACK replaces it. A full disk or a lock
     * held elsewhere fails every commit until it clears: log the first
     * failure, then at most one line every 10 s, and the recovery. */
    char why[160], msg[200], n[24];
    int sys = sqlite3_system_errno(s->db);
    if (sys)
        snprintf(why, sizeof why, "%s (%s)", sqlite3_errmsg(s->db), strerror(sys));
    else
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(s->db));
    snprintf(msg, sizeof msg, "store commit failed: %s", why);
    if (sqlite3_get_autocommit(s->db) == 0) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->failed_run++;
    if (s->failed_run == 1 || now_ms() - s->failed_logged >= 10000) {
        snprintf(n, sizeof n, "%ld", s->failed_run);
        log_msg(LOG_ERROR, "commit failed, answering 503 until it succeeds", "error", why, "failed_commits", n,
                "db", s->path, NULL);
        s->failed_logged = now_ms();
    }
    for (size_t i = 0; i < npending; i++) store_count(s, pending[i].name, pending[i].delta);
    store_note_error(s, msg);
    return -1;
}

static void *writer(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        /* Counters alone are flushed at most once a second, with a deadline
         * fixed before waiting so that a stream of rejections cannot keep
         * postponing it. */
        struct timespec deadline = deadline_ms(1000);
        while (!s->head && !s->stopping) {
            if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT) {
                if (s->ncounters || s->error_dirty || s->notes[0].value) break;
                deadline = deadline_ms(1000);
            }
        }
        struct store_batch *list = s->head;
        s->head = s->tail = NULL;
        int stop = s->stopping && !list;
        pthread_mutex_unlock(&s->mu);

        int runs = 0;
        int rc = commit_group(s, list, &runs);
        atomic_store(&s->last_failed, rc != 0);
        if (rc == 0 && runs && s->on_runs) s->on_runs(s->on_runs_arg);
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
    if (pages >= CHECKPOINT_PAGES) {
        pthread_mutex_lock(&s->ckmu);
        s->ck_wanted = 1;
        s->wal_pages = pages;
        pthread_cond_signal(&s->ckcv);
        pthread_mutex_unlock(&s->ckmu);
    }
    return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->ckmu);
    while (!s->ck_stopping) {
        if (!s->ck_wanted) {
            pthread_cond_wait(&s->ckcv, &s->ckmu);
            continue;
        }
        s->ck_wanted = 0;
        /* Under sustained load a passive checkpoint never catches up with
         * the writer, and the WAL can only start over once it has: it would
         * grow for as long as the load lasts. Past WAL_CAP_PAGES the
         * checkpoint holds the writer back (RESTART) until it has caught up,
         * which is what SQLite's own checkpoint does every 1,000 pages. */
        int mode = s->wal_pages >= WAL_CAP_PAGES ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE;
        pthread_mutex_unlock(&s->ckmu);
        /* A failure (disk full, a lock held elsewhere) loses nothing: the
         * pages stay in the WAL and the next commit asks again. */
        int wal = 0, done = 0;
        sqlite3_wal_checkpoint_v2(s->ckdb, NULL, mode, &wal, &done);
        pthread_mutex_lock(&s->ckmu);
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
    s->ck_started = 1;
    sqlite3_wal_hook(s->db, on_wal, s);
}

int store_start(struct store *s)
{
    if (s->readonly || s->started) return -1;
    checkpointer_start(s); /* first: it sets up s->db, which is the writer's from then on */
    if (pthread_create(&s->thread, NULL, writer, s) != 0) return -1;
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

void store_close(struct store *s)
{
    if (!s) return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    if (s->ck_started) {
        pthread_mutex_lock(&s->ckmu);
        s->ck_stopping = 1;
        pthread_cond_signal(&s->ckcv);
        pthread_mutex_unlock(&s->ckmu);
        pthread_join(s->ckthread, NULL);
        sqlite3_close(s->ckdb);
    }
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->cnt);
    sqlite3_finalize(s->cur);
    sqlite3_finalize(s->meta);
    sqlite3_finalize(s->run);
    if (s->db) sqlite3_close(s->db);
    for (int i = 0; i < 8; i++) free(s->notes[i].value);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->ckmu);
    pthread_cond_destroy(&s->ckcv);
    free(s->path);
    free(s);
}
