/* test_store.c -- the store: dedupe, group commit under concurrency, cursors,
 * migrations, permissions, and refusing files it must not touch. */
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/event.h"
#include "../../lib/query.h"
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
    assert_int_equal(count_rows(s, "PRAGMA user_version"), 3);
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

/* A version-2 file (before the runs_due index) is upgraded in place: its
 * events and runs kept, the index added. */
static void test_migration_2_to_3(void **st)
{
    (void)st;
    char err[256];
    struct store *s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    store_start(s);
    struct store_batch b = {0};
    struct store_event e;
    make_event(&e, "old", "tunnel");
    store_batch_add(&b, &e);
    assert_int_equal(store_commit(s, &b), 0);
    store_batch_clear(&b);
    sqlite3 *raw = store_db(s);
    assert_int_equal(sqlite3_exec(raw,
                                  "INSERT INTO runs(seq, idx, handler, subject_key) SELECT seq, 0, 'h', 'k' FROM events;"
                                  "DROP INDEX runs_due; PRAGMA user_version=2;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    store_close(s);

    s = store_open(db, 0, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(count_rows(s, "PRAGMA user_version"), 3);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM sqlite_master WHERE name='runs_due'"), 1);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM events WHERE id='old'"), 1);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM runs WHERE state='pending'"), 1);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_dedupe_and_perms, setup),
        cmocka_unit_test_setup(test_group_commit, setup),
        cmocka_unit_test_setup(test_checkpoints, setup),
        cmocka_unit_test_setup(test_refuses_foreign_files, setup),
        cmocka_unit_test_setup(test_migration_2_to_3, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    setup(NULL);
    return rc;
}
