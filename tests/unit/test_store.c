/* test_store.c -- the store: dedupe, group commit under concurrency, cursors,
 * migrations, permissions, refusing files it must not touch, the compact
 * rows' exact text, and retention. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/wait.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/event.h"
#include "../../lib/query.h"
#include "../../lib/retention.h"
#include "../../lib/jsonx.h"
#include "../../lib/store.h"
#include "../../lib/util.h"
#include "testutil.h"

static char dir[256];
static char db[300];

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/synccf-test-%d/nested/state", (int)getpid());
    snprintf(db, sizeof db, "%s/state.db", dir);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/synccf-test-%d", (int)getpid());
    return system(cmd);
}

static void make_event(struct store_event *se, const char *id, const char *via)
{
    struct norm_opts o = {via, 1763633000000};
    json_t *data = json_pack("{s:s}", "k", id);
    json_t *ev = event_build(id, "/test", "com.example.test", NULL, -1, NULL, &o, data);
    assert_int_equal(store_event_from_json(ev, se), 0);
    json_decref(ev);
    json_decref(data);
}

static long count_rows(struct store *s, const char *sql)
{
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    long n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return n;
}

static void test_dedupe_and_perms(void **st)
{
    (void)st;
    char err[256];
    struct store *s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    struct stat sb;
    assert_int_equal(stat(db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    store_start(s);

    struct store_batch b = {0};
    struct store_event e;
    make_event(&e, "a", "tunnel");
    store_batch_add(&b, &e);
    make_event(&e, "b", "tunnel");
    store_batch_add(&b, &e);
    make_event(&e, "a", "tunnel"); /* the same id twice in one batch */
    store_batch_add(&b, &e);
    assert_int_equal(store_commit(s, &b), 0);
    assert_int_equal(b.accepted, 2);
    assert_int_equal(b.duplicates, 1);
    store_batch_clear(&b);

    make_event(&e, "b", "worker");
    store_batch_add(&b, &e);
    b.cursor_name = "pull:default";
    b.cursor_value = strdup("42");
    assert_int_equal(store_commit(s, &b), 0);
    assert_int_equal(b.accepted, 0);
    assert_int_equal(b.duplicates, 1);
    store_batch_clear(&b);
    store_count(s, "rejected.bad_signature", 3);
    store_close(s);

    s = store_open(db, 1, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events"), 2);
    assert_int_equal(count_rows(s, "SELECT value FROM counters WHERE name='duplicates.tunnel'"), 1);
    assert_int_equal(count_rows(s, "SELECT value FROM counters WHERE name='duplicates.worker'"), 1);
    assert_int_equal(count_rows(s, "SELECT value FROM counters WHERE name='rejected.bad_signature'"), 3);
    assert_int_equal(count_rows(s, "SELECT value FROM cursors WHERE name='pull:default'"), 42);
    assert_int_equal(count_rows(s, "PRAGMA user_version"), 5);
    json_t *status = query_status(store_db(s), db);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(status, "events"), "total")), 2);
    json_decref(status);
    json_t *one = query_event(store_db(s), "b");
    assert_non_null(one);
    assert_string_equal(json_string_value(json_object_get(json_object_get(one, "event"), "synccfvia")), "tunnel");
    json_decref(one);
    store_close(s);
}

#define THREADS 8
#define PER_THREAD 200

struct worker_arg {
    struct store *s;
    int t;
};

static void *writer_thread(void *p)
{
    struct worker_arg *a = p;
    for (int i = 0; i < PER_THREAD; i++) {
        struct store_batch b = {0};
        struct store_event e;
        char id[32];
        snprintf(id, sizeof id, "t%d-%d", a->t, i);
        make_event(&e, id, "tunnel");
        store_batch_add(&b, &e);
        if (store_commit(a->s, &b) != 0 || b.accepted != 1) return (void *)1;
        store_batch_clear(&b);
    }
    return NULL;
}

static void test_group_commit(void **st)
{
    (void)st;
    char err[256];
    struct store *s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    store_start(s);
    pthread_t th[THREADS];
    struct worker_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (struct worker_arg){s, t};
        pthread_create(&th[t], NULL, writer_thread, &args[t]);
    }
    for (int t = 0; t < THREADS; t++) {
        void *rv;
        pthread_join(th[t], &rv);
        assert_null(rv);
    }
    /* Every batch was its own commit request; concurrent ones must share. */
    long commits = store_commits(s);
    assert_true(commits < THREADS * PER_THREAD);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events"), THREADS * PER_THREAD);
    store_close(s);
}

/* The writer leaves checkpoints to its own thread (store.c): pages written
 * to the WAL must still reach the database file while the store is open, or
 * the WAL would grow without end. */
static void test_checkpoints(void **st)
{
    (void)st;
    char err[256];
    struct store *s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    store_start(s);
    struct stat sb;
    assert_int_equal(stat(db, &sb), 0);
    off_t before = sb.st_size;
    char pad[2048];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    struct norm_opts o = {"tunnel", 1763633000000};
    for (int g = 0; g < 20; g++) { /* 4,000 events of ~2 KiB: ~2,000 pages */
        struct store_batch b = {0};
        for (int i = 0; i < 200; i++) {
            char id[32];
            snprintf(id, sizeof id, "ck%d-%d", g, i);
            json_t *data = json_pack("{s:s}", "pad", pad);
            json_t *ev = event_build(id, "/test", "com.example.test", NULL, -1, NULL, &o, data);
            struct store_event e;
            assert_int_equal(store_event_from_json(ev, &e), 0);
            json_decref(ev);
            json_decref(data);
            store_batch_add(&b, &e);
        }
        assert_int_equal(store_commit(s, &b), 0);
        assert_int_equal(b.accepted, 200);
        store_batch_clear(&b);
    }
    /* The checkpointer copies at least the first 1,000 pages back. */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(stat(db, &sb), 0);
        if (sb.st_size - before >= 1000 * 4096) break;
        usleep(50 * 1000);
    }
    assert_true(sb.st_size - before >= 1000 * 4096);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events"), 4000);
    store_close(s);
}

/* Under load that never pauses, a passive checkpoint never copies the whole
 * WAL, and only a fully copied WAL starts over: past 64 MiB the writer
 * restarts it itself (store.c). Four threads commit 80 MiB of events without
 * a pause; the WAL file stays near the cap instead of holding them all. */
static void *wal_thread(void *p)
{
    struct worker_arg *a = p;
    static char pad[2048];
    memset(pad, 'w', sizeof pad - 1);
    struct norm_opts o = {"tunnel", 1763633000000};
    for (int g = 0; g < 50; g++) { /* 10,000 events of ~2 KiB per thread */
        struct store_batch b = {0};
        for (int i = 0; i < 200; i++) {
            char id[48];
            snprintf(id, sizeof id, "wal%d-%d-%d", a->t, g, i);
            json_t *data = json_pack("{s:s}", "pad", pad);
            json_t *ev = event_build(id, "/test", "com.example.test", NULL, -1, NULL, &o, data);
            struct store_event e;
            int bad = store_event_from_json(ev, &e);
            json_decref(ev);
            json_decref(data);
            if (bad) return (void *)1;
            store_batch_add(&b, &e);
        }
        if (store_commit(a->s, &b) != 0 || b.accepted != 200) return (void *)1;
        store_batch_clear(&b);
    }
    return NULL;
}

struct wal_watch {
    const char *path;
    atomic_int done;
    off_t max;
};

static void *wal_watcher(void *p)
{
    struct wal_watch *w = p;
    struct stat sb;
    while (!atomic_load(&w->done)) {
        if (stat(w->path, &sb) == 0 && sb.st_size > w->max) w->max = sb.st_size;
        usleep(1000);
    }
    return NULL;
}

/* The WAL file's largest size while 4 threads commit 40,000 events of
 * ~2 KiB (its restarts past 64 MiB keep it near that). */
static off_t wal_max_under_load(void)
{
    char err[256];
    struct store *s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    store_start(s);
    char wal[400];
    snprintf(wal, sizeof wal, "%s-wal", db);
    struct wal_watch w = {.path = wal};
    pthread_t watcher;
    assert_int_equal(pthread_create(&watcher, NULL, wal_watcher, &w), 0);
    pthread_t th[4];
    struct worker_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (struct worker_arg){s, t};
        assert_int_equal(pthread_create(&th[t], NULL, wal_thread, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        void *rv;
        pthread_join(th[t], &rv);
        assert_null(rv);
    }
    atomic_store(&w.done, 1);
    pthread_join(watcher, NULL);
    assert_true(w.max > (8ll << 20)); /* the load did reach the WAL */
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events"), 40000);
    store_close(s);
    return w.max;
}

static void test_wal_restarts(void **st)
{
    (void)st;
    assert_true(wal_max_under_load() < (72ll << 20));
}

/* ---- durability: which commits wait for the disk ---------------------- */

/* A VFS over the default one that watches the WAL: whether bytes were
 * written to it since its last sync, and how many syncs it had. SQLite's
 * own tests observe I/O the same way (a shim VFS). */
static sqlite3_vfs *real_vfs;
static atomic_int wal_dirty, wal_syncs, wal_full; /* wal_full: writes to the WAL fail (disk full) */
static atomic_int db_sync_ms; /* each sync of the database file takes this long (a slow disk) */
/* Bytes other threads (the checkpointer) wrote to the database file since its
 * last sync, and the most of them that a sync on the store's writer thread
 * had to flush. */
static atomic_llong db_unsynced, writer_db_flush_max;
static atomic_int writer_db_syncs;
static atomic_int db_write_us; /* each write to the database file by another thread than the writer takes this long */
struct watched {
    sqlite3_file base;
    sqlite3_file *real; /* follows this struct, real_vfs->szOsFile bytes */
    int wal, main;
};
static struct watched *W(sqlite3_file *f) { return (struct watched *)f; }
static int on_writer(void)
{
    char name[16] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    return strcmp(name, "writer") == 0;
}
static int w_close(sqlite3_file *f) { return W(f)->real->pMethods->xClose(W(f)->real); }
static int w_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o) { return W(f)->real->pMethods->xRead(W(f)->real, p, n, o); }
static int w_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o)
{
    if (W(f)->wal && atomic_load(&wal_full)) return SQLITE_FULL;
    if (W(f)->wal) atomic_store(&wal_dirty, 1);
    if (W(f)->main && !on_writer()) {
        if (atomic_load(&db_write_us)) usleep((useconds_t)atomic_load(&db_write_us));
        atomic_fetch_add(&db_unsynced, n);
    }
    return W(f)->real->pMethods->xWrite(W(f)->real, p, n, o);
}
static int w_truncate(sqlite3_file *f, sqlite3_int64 n) { return W(f)->real->pMethods->xTruncate(W(f)->real, n); }
static int w_sync(sqlite3_file *f, int flags)
{
    if (W(f)->main) {
        if (atomic_load(&db_sync_ms)) usleep((useconds_t)atomic_load(&db_sync_ms) * 1000);
        long long flushed = atomic_exchange(&db_unsynced, 0);
        if (on_writer()) {
            atomic_fetch_add(&writer_db_syncs, 1);
            if (flushed > atomic_load(&writer_db_flush_max)) atomic_store(&writer_db_flush_max, flushed);
        }
    }
    int rc = W(f)->real->pMethods->xSync(W(f)->real, flags);
    if (W(f)->wal && rc == SQLITE_OK) {
        atomic_store(&wal_dirty, 0);
        atomic_fetch_add(&wal_syncs, 1);
    }
    return rc;
}
static int w_size(sqlite3_file *f, sqlite3_int64 *n) { return W(f)->real->pMethods->xFileSize(W(f)->real, n); }
static int w_lock(sqlite3_file *f, int l) { return W(f)->real->pMethods->xLock(W(f)->real, l); }
static int w_unlock(sqlite3_file *f, int l) { return W(f)->real->pMethods->xUnlock(W(f)->real, l); }
static int w_reserved(sqlite3_file *f, int *r) { return W(f)->real->pMethods->xCheckReservedLock(W(f)->real, r); }
static int w_fcntl(sqlite3_file *f, int op, void *a) { return W(f)->real->pMethods->xFileControl(W(f)->real, op, a); }
static int w_sector(sqlite3_file *f) { return W(f)->real->pMethods->xSectorSize(W(f)->real); }
static int w_dev(sqlite3_file *f) { return W(f)->real->pMethods->xDeviceCharacteristics(W(f)->real); }
static int w_shmmap(sqlite3_file *f, int i, int sz, int ext, void volatile **p)
{
    return W(f)->real->pMethods->xShmMap(W(f)->real, i, sz, ext, p);
}
static int w_shmlock(sqlite3_file *f, int o, int n, int fl) { return W(f)->real->pMethods->xShmLock(W(f)->real, o, n, fl); }
static void w_shmbarrier(sqlite3_file *f) { W(f)->real->pMethods->xShmBarrier(W(f)->real); }
static int w_shmunmap(sqlite3_file *f, int del) { return W(f)->real->pMethods->xShmUnmap(W(f)->real, del); }
static const sqlite3_io_methods watched_io = {2, w_close, w_read, w_write, w_truncate, w_sync, w_size, w_lock, w_unlock,
                                               w_reserved, w_fcntl, w_sector, w_dev, w_shmmap, w_shmlock, w_shmbarrier,
                                               w_shmunmap, NULL, NULL};
static int w_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)v;
    struct watched *w = W(f);
    w->real = (sqlite3_file *)(w + 1);
    w->wal = (flags & SQLITE_OPEN_WAL) != 0;
    w->main = (flags & SQLITE_OPEN_MAIN_DB) != 0;
    int rc = real_vfs->xOpen(real_vfs, name, w->real, flags, out);
    f->pMethods = rc == SQLITE_OK ? &watched_io : NULL;
    return rc;
}
static sqlite3_vfs watched_vfs;

static void watch_wal(int on)
{
    if (on) {
        real_vfs = sqlite3_vfs_find(NULL);
        watched_vfs = *real_vfs;
        watched_vfs.zName = "watched";
        watched_vfs.pNext = NULL;
        watched_vfs.szOsFile = (int)sizeof(struct watched) + real_vfs->szOsFile;
        watched_vfs.xOpen = w_open;
        assert_int_equal(sqlite3_vfs_register(&watched_vfs, 1), SQLITE_OK);
    } else {
        sqlite3_vfs_unregister(&watched_vfs);
        sqlite3_vfs_register(real_vfs, 1);
    }
}

/* A disk whose fsyncs of the database file are slow keeps the checkpointer
 * in its passes for long: the writer's RESTART at the cap must wait for the
 * pass under way, not fail at once and let the WAL grow a group per try
 * (it reached 72 MiB that way). */
static void test_wal_restarts_slow_disk(void **st)
{
    (void)st;
    watch_wal(1);
    atomic_store(&db_sync_ms, 100);
    off_t max = wal_max_under_load();
    atomic_store(&db_sync_ms, 0);
    watch_wal(0);
    assert_true(max < (72ll << 20));
}

/* Under load that never pauses, a checkpointer pass never catches up with
 * the WAL, and SQLite syncs the database only in a pass that does: the
 * passes' pages (up to the whole 64 MiB WAL's worth) waited for the writer's
 * RESTART to flush them while every request waited (11-17 ms measured; here
 * 32-62 MiB). The checkpointer syncs after each pass, so the writer's sync
 * flushes only what the RESTART copied itself. */
static void test_restart_flushes_little(void **st)
{
    (void)st;
    watch_wal(1);
    atomic_store(&db_unsynced, 0);
    atomic_store(&writer_db_flush_max, 0);
    atomic_store(&writer_db_syncs, 0);
    /* Slow page writes by the checkpointer make every pass long enough for
     * commits to come during it, so that no pass catches up with the WAL,
     * however fast the writer is (otherwise passes sometimes caught up and
     * the WAL started over without a RESTART, or SQLite synced them). */
    atomic_store(&db_write_us, 50);
    wal_max_under_load();
    atomic_store(&db_write_us, 0);
    watch_wal(0);
    assert_true(atomic_load(&writer_db_syncs) > 0); /* the writer did restart the WAL */
    assert_int_equal(atomic_load(&writer_db_flush_max), 0);
}

static void mark_done(struct store_batch *b, void *arg)
{
    (void)b;
    atomic_store((atomic_int *)arg, 1);
}

static int commit_one(struct store *s, const char *id, int provisional)
{
    struct store_batch b = {0};
    struct store_event e;
    make_event(&e, id, "tunnel");
    store_batch_add(&b, &e);
    b.provisional = provisional;
    int rc = store_commit(s, &b) == 0 && b.accepted == 1 ? 0 : -1;
    store_batch_clear(&b);
    return rc;
}

/* A provisional batch (store.h) is committed without a sync of the WAL;
 * any other batch is done only once the WAL, with everything before it,
 * is synced; a cleared batch is durable again. */
static void test_provisional_commits(void **st)
{
    (void)st;
    watch_wal(1);
    char err[256];
    struct store *s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(store_start(s), 0);
    assert_int_equal(commit_one(s, "d0", 0), 0);
    assert_int_equal(atomic_load(&wal_dirty), 0);

    int syncs = atomic_load(&wal_syncs);
    assert_int_equal(commit_one(s, "p1", 1), 0);
    assert_int_equal(commit_one(s, "p2", 1), 0);
    assert_int_equal(atomic_load(&wal_dirty), 1); /* written, not yet synced */
    assert_int_equal(atomic_load(&wal_syncs), syncs);

    assert_int_equal(commit_one(s, "d1", 0), 0);
    assert_int_equal(atomic_load(&wal_dirty), 0); /* the provisional ones with it */
    assert_true(atomic_load(&wal_syncs) > syncs);

    /* Mixed in one group or not, the durable batch is done only when synced. */
    struct store_batch p = {0};
    struct store_event e;
    make_event(&e, "p3", "tunnel");
    store_batch_add(&p, &e);
    p.provisional = 1;
    atomic_int p_done = 0;
    p.done = mark_done;
    p.arg = &p_done;
    store_submit(s, &p);
    assert_int_equal(commit_one(s, "d2", 0), 0);
    assert_int_equal(atomic_load(&wal_dirty), 0);
    while (!atomic_load(&p_done)) usleep(1000);
    store_batch_clear(&p);
    assert_int_equal(p.provisional, 0);

    assert_int_equal(count_rows(s, "SELECT count(*) FROM events"), 6);
    store_close(s);
    watch_wal(0);
}

/* The store at db, open for writing with its writer started. */
static struct store *open_started(void)
{
    char err[256];
    struct store *s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    store_start(s);
    return s;
}

/* Commits one batch of ids prefix0..prefix(n-1); returns how many were new. */
static long commit_ids(struct store *s, const char *prefix, int from, int n)
{
    struct store_batch b = {0};
    struct store_event e;
    char id[64];
    for (int i = from; i < from + n; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        make_event(&e, id, "tunnel");
        store_batch_add(&b, &e);
    }
    long accepted = store_commit(s, &b) == 0 ? (long)b.accepted : -1;
    store_batch_clear(&b);
    return accepted;
}

static long meta_marker(struct store *s)
{
    return count_rows(s, "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = '" STORE_TAIL_MARKER
                         "'), -1)");
}

/* The newest events' dedupe keys live in the writer's memory until merged
 * into ids in key order: a retry is a duplicate before the merge, after a
 * restart (the keys are read back from event_rows), and after the merge;
 * the merge leaves no event without its key; lookups by id find events of
 * either part. */
static void test_dedupe_tail(void **st)
{
    (void)st;
    struct store *s = open_started();
    assert_int_equal(commit_ids(s, "t", 0, 100), 100);
    assert_int_equal(commit_ids(s, "t", 0, 100), 0);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM ids"), 0); /* all in the tail */
    assert_int_equal(meta_marker(s), 0);
    json_t *ev = query_event(store_db(s), "t7");
    assert_non_null(ev);
    json_decref(ev);
    store_close(s);

    s = open_started();
    assert_int_equal(commit_ids(s, "t", 0, 100), 0); /* read back */
    for (int i = 100; i < 40100; i += 1000) assert_int_equal(commit_ids(s, "t", i, 1000), 1000);
    /* Past TAIL_MERGE_AT the keys are frozen and merged a slice per group. */
    for (int i = 0; i < 200 && count_rows(s, "SELECT count(*) FROM ids") < 32768; i++) commit_ids(s, "none", 0, 0);
    long marker = meta_marker(s);
    assert_true(marker >= 32768);
    assert_true(count_rows(s, "SELECT count(*) FROM ids") >= 32768);
    char q[200];
    /* EXCEPT, not NOT EXISTS: ids has no index on seq, and a scan of it per
     * event was 27 of this test's 28 seconds. */
    snprintf(q, sizeof q, "SELECT count(*) FROM (SELECT seq FROM event_rows WHERE seq <= %ld EXCEPT SELECT seq FROM ids)",
             marker);
    assert_int_equal(count_rows(s, q), 0);
    assert_true(count_rows(s, "SELECT max(seq) FROM event_rows") > marker); /* and a tail again */
    for (int i = 0; i < 40100; i += 1000) assert_int_equal(commit_ids(s, "t", i, i < 40000 ? 1000 : 100), 0);
    store_close(s);

    s = open_started();
    for (int i = 0; i < 40100; i += 1000) assert_int_equal(commit_ids(s, "t", i, i < 40000 ? 1000 : 100), 0);
    assert_int_equal(commit_ids(s, "u", 0, 10), 10);
    const char *some[] = {"t0", "t5000", "t40099", "u9"};
    for (size_t i = 0; i < 4; i++) {
        ev = query_event(store_db(s), some[i]);
        assert_non_null(ev);
        assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "event"), "id")), some[i]);
        json_decref(ev);
    }
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events"), 40110);
    store_close(s);
}

/* A group that fails takes its keys out of the tail with it: the seq it
 * had is given to the next event, and a key left pointing there would make
 * the failed event look like a hash collision (stored again on each
 * retry). */
static void test_tail_rollback(void **st)
{
    (void)st;
    watch_wal(1);
    struct store *s = open_started();
    assert_int_equal(commit_ids(s, "ok", 0, 3), 3);
    atomic_store(&wal_full, 1);
    assert_int_equal(commit_ids(s, "lost", 0, 1), -1);
    atomic_store(&wal_full, 0);
    assert_int_equal(commit_ids(s, "next", 0, 1), 1); /* takes lost0's seq */
    assert_int_equal(commit_ids(s, "lost", 0, 1), 1);
    assert_int_equal(commit_ids(s, "lost", 0, 1), 0);
    assert_int_equal(commit_ids(s, "next", 0, 1), 0);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events"), 5);
    store_close(s);
    watch_wal(0);
}

static void test_refuses_foreign_files(void **st)
{
    (void)st;
    char err[256];
    /* A file that is not a database: refused, and left as it was. */
    char path[320];
    snprintf(path, sizeof path, "/tmp/synccf-test-%d/garbage.db", (int)getpid());
    char mk[400];
    snprintf(mk, sizeof mk, "mkdir -p /tmp/synccf-test-%d && head -c 8192 /dev/urandom > %s", (int)getpid(), path);
    assert_int_equal(system(mk), 0);
    size_t before_len, after_len;
    char *before = read_file(path, &before_len);
    struct store *s = store_open(path, 0, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "not a database"));
    char *after = read_file(path, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);

    /* A store from a newer synccf: refused with the versions named. */
    s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(sqlite3_exec(store_db(s), "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    store_close(s);
    assert_null(store_open(db, 0, err, sizeof err));
    assert_non_null(strstr(err, "newer"));
}

/* ---- schema 4: exact text, migration, retention ------------------------- */

/* The schema a store of version 3 has (the previous synccf's, as SQL). */
static const char v3_schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE events(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    "  type TEXT NOT NULL, source TEXT NOT NULL, subject TEXT,"
    "  time TEXT NOT NULL, via TEXT NOT NULL, received TEXT NOT NULL, body TEXT NOT NULL);"
    "CREATE INDEX events_type ON events(type, seq);"
    "CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE cursors(name TEXT PRIMARY KEY, value TEXT NOT NULL, updated TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE runs(seq INTEGER NOT NULL REFERENCES events(seq), idx INTEGER NOT NULL,"
    "  handler TEXT NOT NULL, subject_key TEXT NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL DEFAULT 0, last_error TEXT, detail TEXT, updated TEXT,"
    "  PRIMARY KEY(seq, idx)) WITHOUT ROWID;"
    "CREATE INDEX runs_open ON runs(state, subject_key, seq, idx);"
    "CREATE INDEX runs_due ON runs(state, seq, idx);"
    "PRAGMA user_version=3;";

/* Bodies whose text the compact form must give back byte for byte: members
 * in any order, whitespace, escapes where the column holds the decoded
 * value, times in spellings other than synccf's, no subject, data of every
 * JSON type, duplicate members. {id, subject, time, received, body}. */
static const char *const odd[][5] = {
    {"o1", "s", "2026-11-20T10:05:00Z", "2026-11-25T12:00:00.5Z",
     "{\"specversion\":\"1.0\",\"id\":\"o1\",\"source\":\"/x\",\"type\":\"t.odd\",\"subject\":\"s\","
     "\"time\":\"2026-11-20T10:05:00Z\",\"synccfvia\":\"tunnel\",\"synccfreceived\":\"2026-11-25T12:00:00.5Z\"}"},
    {"o2", NULL, "2026-11-20T10:05:00.000Z", "2026-11-25T12:00:00Z",
     "{ \"data\" : [1, {\"id\":\"x\"}, \"]\"] ,\n \"id\": \"o2\", \"specversion\":\"1.0\",\"source\":\"/x\","
     "\"type\":\"t.odd\",\"time\":\"2026-11-20T10:05:00.000Z\",\"synccfvia\":\"tunnel\","
     "\"synccfreceived\":\"2026-11-25T12:00:00Z\" }"},
    {"o\"3", "\xc3\xa9t\xc3\xa9", "2026-11-20T11:05:00+01:00", "2026-11-25T12:00:00.123Z",
     "{\"specversion\":\"1.0\",\"id\":\"o\\\"3\",\"source\":\"/x\",\"type\":\"t.odd\",\"subject\":\"\\u00e9t\xc3\xa9\","
     "\"time\":\"2026-11-20T11:05:00+01:00\",\"synccfvia\":\"tunnel\",\"synccfreceived\":\"2026-11-25T12:00:00.123Z\","
     "\"data\":\"a \\u0001 \\\\ string\"}"},
    {"o4", "s", "2026-11-20T10:05:00Z", "2026-11-25T12:00:00Z",
     "{\"specversion\":\"1.0\",\"id\":\"o4\",\"id\":\"o4\",\"source\":\"/x\",\"type\":\"t.odd\",\"subject\":\"s\","
     "\"time\":\"2026-11-20T10:05:00Z\",\"synccfvia\":\"tunnel\",\"synccfreceived\":\"2026-11-25T12:00:00Z\","
     "\"data\":null,\"data\":12.50e3}"},
    {"o5", "s", "1969-12-31T23:59:59Z", "2026-11-25T12:00:00Z",
     "{\"specversion\":\"1.0\",\"id\":\"o5\",\"source\":\"/x\",\"type\":\"t.odd\",\"subject\":\"s\","
     "\"time\":\"1969-12-31T23:59:59Z\",\"synccfvia\":\"tunnel\",\"synccfreceived\":\"2026-11-25T12:00:00Z\","
     "\"data_base64\":\"AAEC\",\"data\":true}"},
};

static void odd_event(struct store_event *e, int i)
{
    memset(e, 0, sizeof *e);
    e->id = strdup(odd[i][0]);
    e->type = strdup("t.odd");
    e->source = strdup("/x");
    e->subject = odd[i][1] ? strdup(odd[i][1]) : NULL;
    e->time = strdup(odd[i][2]);
    e->via = strdup("tunnel");
    e->received = strdup(odd[i][3]);
    e->body = strdup(odd[i][4]);
}

/* Every vector's expected events, serialized as the store gets them. */
static size_t vector_events(struct store_batch *b)
{
    FILE *ls = popen("ls tests/vectors/*.json", "r");
    assert_non_null(ls);
    char path[512];
    size_t n = 0;
    while (fgets(path, sizeof path, ls)) {
        path[strcspn(path, "\n")] = '\0';
        json_t *v = load_json(path);
        size_t i;
        json_t *ev;
        json_array_foreach(json_object_get(v, "expected"), i, ev) {
            struct store_event e;
            assert_int_equal(store_event_from_json(ev, &e), 0);
            assert_int_equal(store_batch_add(b, &e), 0);
            n++;
        }
        json_decref(v);
    }
    pclose(ls);
    return n;
}

static const char *body_of(struct store *s, const char *id, char *out, size_t len)
{
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(store_db(s), "SELECT body FROM events WHERE id = ?", -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    const char *r = NULL;
    if (sqlite3_step(q) == SQLITE_ROW) {
        snprintf(out, len, "%s", (const char *)sqlite3_column_text(q, 0));
        r = out;
    }
    sqlite3_finalize(q);
    return r;
}

/* The stored form gives back the exact text of every shared vector's events
 * and of the odd bodies, through the events view and query_event. */
static void test_exact_text(void **st)
{
    (void)st;
    char err[256];
    struct store *s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    store_start(s);
    struct store_batch b = {0};
    size_t n = vector_events(&b);
    assert_true(n > 20);
    for (int i = 0; i < (int)(sizeof odd / sizeof *odd); i++) {
        struct store_event e;
        odd_event(&e, i);
        store_batch_add(&b, &e);
    }
    struct store_batch want = {0};
    for (size_t i = 0; i < b.n; i++) {
        struct store_event c = {0};
        c.id = strdup(b.ev[i].id);
        c.body = strdup(b.ev[i].body);
        store_batch_add(&want, &c);
    }
    assert_int_equal(store_commit(s, &b), 0);
    store_batch_clear(&b);
    store_close(s);

    s = store_open(db, 1, err, sizeof err);
    assert_non_null(s);
    static char got[1 << 16];
    for (size_t i = 0; i < want.n; i++) {
        int seen = 0; /* an id in two vectors: the first one is stored */
        for (size_t k = 0; k < i; k++) seen |= strcmp(want.ev[k].id, want.ev[i].id) == 0;
        if (seen) continue;
        assert_non_null(body_of(s, want.ev[i].id, got, sizeof got));
        assert_string_equal(got, want.ev[i].body);
        json_t *q = query_event(store_db(s), want.ev[i].id);
        assert_non_null(q);
        json_decref(q);
    }
    /* Logpush records and the vectors' envelopes share a handful of shapes. */
    assert_true(count_rows(s, "SELECT count(*) FROM shapes") < (long)want.n);
    store_batch_clear(&want);
    store_close(s);
}

static void make_v3(const char *path, int nevents)
{
    sqlite3 *raw;
    char mk[400];
    snprintf(mk, sizeof mk, "mkdir -p %s", dir);
    assert_int_equal(system(mk), 0);
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, v3_schema, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *ins;
    assert_int_equal(sqlite3_prepare_v2(raw,
                                        "INSERT INTO events(id,type,source,subject,time,via,received,body) "
                                        "VALUES(?,?,?,?,?,?,?,?)",
                                        -1, &ins, NULL),
                     SQLITE_OK);
    sqlite3_exec(raw, "BEGIN", NULL, NULL, NULL);
    for (int i = 0; i < (int)(sizeof odd / sizeof *odd) + nevents; i++) {
        struct store_event e;
        if (i < (int)(sizeof odd / sizeof *odd)) {
            odd_event(&e, i);
        } else {
            char id[32];
            snprintf(id, sizeof id, "m%d", i);
            make_event(&e, id, "tunnel");
        }
        const char *v[8] = {e.id, e.type, e.source, e.subject, e.time, e.via, e.received, e.body};
        for (int k = 0; k < 8; k++) sqlite3_bind_text(ins, k + 1, v[k], -1, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
        store_event_free(&e);
    }
    sqlite3_finalize(ins);
    assert_int_equal(sqlite3_exec(raw,
                                  "INSERT INTO runs(seq, idx, handler, subject_key) SELECT seq, 0, 'h', 'k' FROM events "
                                  "WHERE id = 'o2';"
                                  "INSERT INTO cursors VALUES('pull:x', '7', 'now');"
                                  "COMMIT;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
}

static char *dump_events(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "sqlite3 %s 'SELECT seq, id, type, source, subject, time, via, received, body "
                              "FROM events ORDER BY seq' | md5sum", path);
    FILE *f = popen(cmd, "r");
    static char out[64];
    assert_non_null(fgets(out, sizeof out, f));
    pclose(f);
    return strdup(out);
}

/* A version-3 store is converted in place: every event's attributes and text
 * unchanged, runs and cursors kept, ids deduped as before. */
static void test_migration_3_to_4(void **st)
{
    (void)st;
    char err[256];
    make_v3(db, 100);
    char *before = dump_events(db);
    struct store *s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(count_rows(s, "PRAGMA user_version"), 5);
    assert_int_equal(count_rows(s, "PRAGMA auto_vacuum"), 2);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM sqlite_master WHERE name='events' AND type='view'"), 1);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM runs r JOIN events e USING(seq) WHERE e.id='o2'"), 1);
    assert_int_equal(count_rows(s, "SELECT value FROM cursors WHERE name='pull:x'"), 7);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM meta WHERE key='migrate4.seq'"), 0);
    store_start(s);
    struct store_batch b = {0};
    struct store_event e;
    make_event(&e, "m50", "tunnel");
    store_batch_add(&b, &e);
    odd_event(&e, 2);
    store_batch_add(&b, &e);
    assert_int_equal(store_commit(s, &b), 0);
    assert_int_equal(b.duplicates, 2);
    store_batch_clear(&b);
    store_close(s);
    char *after = dump_events(db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* Killed (SIGKILL) half way through, the migration resumes where its last
 * chunk committed and loses nothing. */
static void test_migration_killed(void **st)
{
    (void)st;
    char err[256];
    make_v3(db, 30000);
    char *before = dump_events(db);
    int killed = 0;
    for (int attempt = 0; attempt < 3 && !killed; attempt++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct store *c = store_open(db, 0, err, sizeof err);
            _exit(c ? 0 : 1);
        }
        /* Kill it once a chunk has committed (or let it finish). */
        for (;;) {
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid) break;
            sqlite3 *raw;
            sqlite3_int64 at = 0;
            if (sqlite3_open_v2(db, &raw, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
                sqlite3_stmt *q;
                if (sqlite3_prepare_v2(raw, "SELECT value FROM meta WHERE key='migrate4.seq'", -1, &q, NULL) ==
                    SQLITE_OK) {
                    if (sqlite3_step(q) == SQLITE_ROW) at = sqlite3_column_int64(q, 0);
                    sqlite3_finalize(q);
                }
                sqlite3_close(raw);
            }
            if (at > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                killed = 1;
                break;
            }
            usleep(1000);
        }
    }
    struct store *s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(count_rows(s, "PRAGMA user_version"), 5);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM event_rows"), 30000 + (long)(sizeof odd / sizeof *odd));
    assert_int_equal(count_rows(s, "SELECT count(*) FROM ids"), 30000 + (long)(sizeof odd / sizeof *odd));
    store_close(s);
    char *after = dump_events(db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void old_event(struct store_event *se, const char *id, const char *type, int64_t received_ms, int runs)
{
    struct norm_opts o = {"tunnel", received_ms};
    json_t *data = json_pack("{s:s}", "k", id);
    json_t *ev = event_build(id, "/test", type, NULL, -1, NULL, &o, data);
    assert_int_equal(store_event_from_json(ev, se), 0);
    json_decref(ev);
    json_decref(data);
    if (runs) {
        se->handlers = calloc(2, sizeof *se->handlers);
        se->handlers[0] = strdup("h");
    }
}

static struct store *open_with(struct retention_config *rc)
{
    char err[256];
    struct store *s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(store_set_retention(s, rc), 0);
    store_start(s);
    return s;
}

static void commit_events(struct store *s, const char *prefix, const char *type, int n, int64_t received_ms, int runs,
                          size_t *accepted)
{
    struct store_batch b = {0};
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s%d", prefix, i);
        struct store_event e;
        old_event(&e, id, type, received_ms, runs);
        store_batch_add(&b, &e);
    }
    assert_int_equal(store_commit(s, &b), 0);
    if (accepted) *accepted = b.accepted;
    store_batch_clear(&b);
}

/* Pruning is bounded per commit (in time, so a slow build does less each
 * time): empty commits drive it to the end -- each one removes something
 * while anything is due. */
static void settle(struct store *s)
{
    for (int i = 0; i < 2000; i++) {
        struct store_batch b = {0};
        assert_int_equal(store_commit(s, &b), 0);
    }
}

static struct retention_config rules_cfg(void)
{
    struct retention_config rc;
    retention_config_defaults(&rc);
    rc.nrules = 2;
    rc.rules = calloc(2, sizeof *rc.rules);
    rc.rules[0] = (struct retention_rule){strdup("com.example.logs.*"), 3600 * 1000, 0};
    rc.rules[1] = (struct retention_rule){strdup("com.example.deploy"), 365LL * 86400 * 1000, 0};
    return rc;
}

/* Age per type: the first rule matching the type applies; kept otherwise.
 * What was removed is counted by rule; a late retry of a pruned id is still
 * a duplicate and queues no handler run. */
static void test_retention_age(void **st)
{
    (void)st;
    struct retention_config rc = rules_cfg();
    int64_t now = now_ms(), hours2 = now - 2 * 3600 * 1000, days400 = now - 400LL * 86400 * 1000;
    struct store *s = open_with(&rc);
    commit_events(s, "oldlog", "com.example.logs.http", 50, hours2, 0, NULL);
    commit_events(s, "newlog", "com.example.logs.http", 10, now, 0, NULL);
    /* Age is judged in arrival order (received only grows): ancient first. */
    commit_events(s, "ancient", "com.example.deploy", 3, days400, 0, NULL);
    commit_events(s, "deploy", "com.example.deploy", 5, hours2, 0, NULL);
    commit_events(s, "other", "com.example.other", 5, days400, 0, NULL);
    settle(s);
    store_close(s);

    s = open_with(&rc);
    /* The retry of a pruned log record, with a handler this time. */
    size_t acc = 99;
    commit_events(s, "oldlog", "com.example.logs.http", 3, now, 1, &acc);
    assert_int_equal(acc, 0);
    settle(s);
    store_close(s);
    s = store_open(db, 1, NULL, 0);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events WHERE id LIKE 'oldlog%'"), 0);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events WHERE id LIKE 'newlog%'"), 10);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events WHERE id LIKE 'deploy%'"), 5);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events WHERE id LIKE 'ancient%'"), 0);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events WHERE id LIKE 'other%'"), 5);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM runs"), 0);
    assert_int_equal(count_rows(s, "SELECT value FROM counters WHERE name='pruned.rule:com.example.logs.*'"), 50);
    assert_int_equal(count_rows(s, "SELECT value FROM counters WHERE name='pruned.rule:com.example.deploy'"), 3);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM ids WHERE pruned IS NOT NULL"), 53);
    assert_int_equal(count_rows(s, "SELECT value FROM counters WHERE name='duplicates.tunnel'"), 3);
    json_t *stj = query_status(store_db(s), db);
    json_t *ret = json_object_get(stj, "retention");
    assert_non_null(ret);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ret, "pruned"), "rule:com.example.logs.*")), 50);
    assert_non_null(json_object_get(ret, "config"));
    json_decref(stj);
    store_close(s);
    retention_config_free(&rc);
}

/* A pruned id is forgotten after the dedupe window, but never before five
 * minutes: a key can still be in the writer's memory (not yet in ids) for
 * about a minute, and its pruned row is what keeps a retry a duplicate. */
static void test_retention_sweep(void **st)
{
    (void)st;
    struct retention_config rc = rules_cfg();
    rc.dedupe_ms = 1;
    int64_t now = now_ms();
    struct store *s = open_with(&rc);
    commit_events(s, "gone", "com.example.logs.http", 20, now - 2 * 3600 * 1000, 0, NULL);
    settle(s);
    store_close(s);
    sleep(2); /* pruned times are in seconds: now past a 1 ms window for sure */
    s = open_with(&rc); /* a new start sweeps at its first step */
    settle(s);
    size_t acc = 99;
    commit_events(s, "gone", "com.example.logs.http", 20, now, 0, &acc);
    assert_int_equal(acc, 0);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM ids WHERE pruned IS NOT NULL"), 20);
    store_close(s);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "UPDATE ids SET pruned = pruned - 301 WHERE pruned IS NOT NULL", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    s = open_with(&rc);
    settle(s);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM ids WHERE pruned IS NOT NULL"), 0);
    commit_events(s, "gone", "com.example.logs.http", 20, now, 0, &acc);
    assert_int_equal(acc, 20);
    store_close(s);
    retention_config_free(&rc);
}

/* Counts (per rule and for the store) keep the newest; an event with a run
 * still pending is never pruned, and goes once its run has finished. */
static void test_retention_count_and_pending(void **st)
{
    (void)st;
    struct retention_config rc = rules_cfg();
    rc.rules[0].max_age_ms = 0;
    rc.rules[0].max_events = 20;
    rc.max_events = 100;
    int64_t now = now_ms();
    struct store *s = open_with(&rc);
    commit_events(s, "pend", "com.example.logs.http", 5, now - 1000, 1, NULL);
    for (int g = 0; g < 10; g++) {
        char p[16];
        snprintf(p, sizeof p, "l%d-", g);
        commit_events(s, p, "com.example.logs.http", 10, now, 0, NULL);
    }
    for (int g = 0; g < 10; g++) {
        char p[16];
        snprintf(p, sizeof p, "o%d-", g);
        commit_events(s, p, "com.example.other", 10, now, 0, NULL);
    }
    settle(s);
    store_close(s);
    s = store_open(db, 0, NULL, 0);
    /* The rule kept 5 pending + the 15 newest logs; then the store's limit
     * took the oldest: those 15 logs and 5 of the others, not the pending. */
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events WHERE id LIKE 'pend%'"), 5);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events WHERE type = 'com.example.logs.http'"), 5);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events"), 100);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events WHERE id LIKE 'o0-%'"), 5);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events WHERE id LIKE 'o9-%'"), 10);
    assert_int_equal(count_rows(s, "SELECT value FROM counters WHERE name='pruned.rule:com.example.logs.*'"), 85);
    assert_int_equal(count_rows(s, "SELECT value FROM counters WHERE name='pruned.max_events'"), 20);
    assert_int_equal(sqlite3_exec(store_db(s), "UPDATE runs SET state = 'ok'", NULL, NULL, NULL), SQLITE_OK);
    store_close(s);
    s = open_with(&rc);
    commit_events(s, "late", "com.example.other", 5, now, 0, NULL);
    settle(s);
    store_close(s);
    s = store_open(db, 1, NULL, 0);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events WHERE id LIKE 'pend%'"), 0);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events"), 100);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM runs"), 0);
    store_close(s);
    retention_config_free(&rc);
}

/* The size limit holds the pages in use near max_bytes, and the file gives
 * space back once the limit is lowered. */
static void test_retention_size(void **st)
{
    (void)st;
    struct retention_config rc;
    retention_config_defaults(&rc);
    char pad[2048];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    struct store *s = open_with(&rc);
    struct norm_opts o = {"tunnel", now_ms()};
    for (int g = 0; g < 20; g++) {
        struct store_batch b = {0};
        for (int i = 0; i < 100; i++) {
            char id[32];
            snprintf(id, sizeof id, "z%d-%d", g, i);
            json_t *data = json_pack("{s:s}", "pad", pad);
            json_t *ev = event_build(id, "/test", "com.example.big", NULL, -1, NULL, &o, data);
            struct store_event e;
            assert_int_equal(store_event_from_json(ev, &e), 0);
            json_decref(ev);
            json_decref(data);
            store_batch_add(&b, &e);
        }
        assert_int_equal(store_commit(s, &b), 0);
        store_batch_clear(&b);
    }
    store_close(s);
    s = store_open(db, 0, NULL, 0);
    long pages_before = count_rows(s, "PRAGMA page_count");
    store_close(s);
    rc.max_bytes = 1 << 20;
    s = open_with(&rc);
    settle(s);
    store_close(s);
    s = store_open(db, 0, NULL, 0);
    long used = (count_rows(s, "PRAGMA page_count") - count_rows(s, "PRAGMA freelist_count")) *
                count_rows(s, "PRAGMA page_size");
    assert_true(used <= (1 << 20) + 64 * 1024);
    assert_true(count_rows(s, "SELECT count(*) FROM events") > 100);
    assert_true(count_rows(s, "SELECT value FROM counters WHERE name='pruned.max_bytes'") > 1000);
    assert_true(count_rows(s, "PRAGMA page_count") < pages_before);
    store_close(s);
    retention_config_free(&rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_dedupe_and_perms, setup),
        cmocka_unit_test_setup(test_group_commit, setup),
        cmocka_unit_test_setup(test_checkpoints, setup),
        cmocka_unit_test_setup(test_wal_restarts, setup),
        cmocka_unit_test_setup(test_wal_restarts_slow_disk, setup),
        cmocka_unit_test_setup(test_restart_flushes_little, setup),
        cmocka_unit_test_setup(test_provisional_commits, setup),
        cmocka_unit_test_setup(test_dedupe_tail, setup),
        cmocka_unit_test_setup(test_tail_rollback, setup),
        cmocka_unit_test_setup(test_refuses_foreign_files, setup),
        cmocka_unit_test_setup(test_exact_text, setup),
        cmocka_unit_test_setup(test_migration_3_to_4, setup),
        cmocka_unit_test_setup(test_migration_killed, setup),
        cmocka_unit_test_setup(test_retention_age, setup),
        cmocka_unit_test_setup(test_retention_count_and_pending, setup),
        cmocka_unit_test_setup(test_retention_sweep, setup),
        cmocka_unit_test_setup(test_retention_size, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    setup(NULL);
    return rc;
}
