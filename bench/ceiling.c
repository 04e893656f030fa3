/* ceiling.c -- the insert ceiling for bench/logpush.sh: the events a run
 * stored, inserted again into the same schema by a plain program in one
 * transaction, with the store's durability and cache settings (WAL,
 * synchronous=FULL, a 16 MiB page cache).
 *   ceiling SRC.db DST.db   ->  "seconds records bytes_on_disk"
 * The rows of every table are read into memory first; only the inserts and
 * the commit are timed. The schema is copied from SRC, so it follows the
 * store's (compact rows: event_rows, shapes and ids, as the writer fills them). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct cell {
    int type;
    sqlite3_int64 i;
    double d;
    char *p;
    int n;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "ceiling: %s: %s\n", what, db ? sqlite3_errmsg(db) : "out of memory");
    exit(1);
}

struct table {
    char *name;
    int ncol;
    size_t nrows;
    struct cell *cells;
};

/* All of a table's rows, in memory (reading is not timed). */
static void read_table(sqlite3 *src, const char *name, struct table *t)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", name);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(src, sql, -1, &st, NULL) != SQLITE_OK) die(src, "select");
    t->name = strdup(name);
    if (!t->name) die(NULL, "name");
    t->ncol = sqlite3_column_count(st);
    t->nrows = 0;
    t->cells = NULL;
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (t->nrows == cap) {
            cap = cap ? 2 * cap : 4096;
            t->cells = realloc(t->cells, cap * (size_t)t->ncol * sizeof *t->cells);
            if (!t->cells) die(NULL, "rows");
        }
        for (int c = 0; c < t->ncol; c++) {
            struct cell *x = &t->cells[t->nrows * (size_t)t->ncol + (size_t)c];
            x->type = sqlite3_column_type(st, c);
            x->i = sqlite3_column_int64(st, c);
            x->d = sqlite3_column_double(st, c);
            x->p = NULL;
            if (x->type == SQLITE_TEXT || x->type == SQLITE_BLOB) {
                const void *v = x->type == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, c) : sqlite3_column_blob(st, c);
                x->n = sqlite3_column_bytes(st, c);
                if (!(x->p = malloc((size_t)x->n + 1))) die(NULL, "row");
                if (x->n) memcpy(x->p, v, (size_t)x->n);
            }
        }
        t->nrows++;
    }
    sqlite3_finalize(st);
}

static void insert_table(sqlite3 *dst, const struct table *t)
{
    char sql[4096];
    int k = snprintf(sql, sizeof sql, "INSERT INTO \"%s\" VALUES(", t->name);
    for (int c = 0; c < t->ncol; c++) k += snprintf(sql + k, sizeof sql - (size_t)k, "%s?", c ? "," : "");
    snprintf(sql + k, sizeof sql - (size_t)k, ")");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(dst, sql, -1, &st, NULL) != SQLITE_OK) die(dst, "insert");
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncol; c++) {
            const struct cell *x = &t->cells[r * (size_t)t->ncol + (size_t)c];
            switch (x->type) {
            case SQLITE_INTEGER: sqlite3_bind_int64(st, c + 1, x->i); break;
            case SQLITE_FLOAT: sqlite3_bind_double(st, c + 1, x->d); break;
            case SQLITE_TEXT: sqlite3_bind_text(st, c + 1, x->p, x->n, SQLITE_STATIC); break;
            case SQLITE_BLOB: sqlite3_bind_blob(st, c + 1, x->p, x->n, SQLITE_STATIC); break;
            default: sqlite3_bind_null(st, c + 1);
            }
        }
        if (sqlite3_step(st) != SQLITE_DONE) die(dst, "step");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

int main(int argc, char **argv)
{
    sqlite3 *src, *dst;
    sqlite3_stmt *st;
    if (argc != 3) {
        fprintf(stderr, "usage: ceiling SRC.db DST.db\n");
        return 2;
    }
    if (sqlite3_open_v2(argv[1], &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) die(src, "open source");
    if (sqlite3_open(argv[2], &dst) != SQLITE_OK) die(dst, "open destination");
    if (sqlite3_exec(dst, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-16384;", NULL, NULL,
                     NULL) != SQLITE_OK)
        die(dst, "pragmas");
    if (sqlite3_prepare_v2(src, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
                                "ORDER BY rowid", -1, &st, NULL) != SQLITE_OK)
        die(src, "schema");
    while (sqlite3_step(st) == SQLITE_ROW)
        if (sqlite3_exec(dst, (const char *)sqlite3_column_text(st, 0), NULL, NULL, NULL) != SQLITE_OK)
            die(dst, "create");
    sqlite3_finalize(st);

    /* Every table's rows (event rows, shapes, ids, counters...): whatever
     * the store keeps per event, the ceiling writes too. */
    struct table tabs[32];
    size_t ntabs = 0;
    if (sqlite3_prepare_v2(src, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                                "ORDER BY rowid", -1, &st, NULL) != SQLITE_OK)
        die(src, "tables");
    while (ntabs < sizeof tabs / sizeof *tabs && sqlite3_step(st) == SQLITE_ROW)
        read_table(src, (const char *)sqlite3_column_text(st, 0), &tabs[ntabs++]);
    sqlite3_finalize(st);
    size_t records = 0;
    if (sqlite3_prepare_v2(src, "SELECT count(*) FROM events", -1, &st, NULL) != SQLITE_OK) die(src, "count");
    if (sqlite3_step(st) == SQLITE_ROW) records = (size_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);

    double t0 = now();
    if (sqlite3_exec(dst, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) die(dst, "begin");
    for (size_t t = 0; t < ntabs; t++) insert_table(dst, &tabs[t]);
    if (sqlite3_exec(dst, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) die(dst, "commit");
    double t1 = now();
    sqlite3_close(dst); /* the last connection checkpoints and removes the WAL */
    sqlite3_close(src);
    struct stat sb;
    long long bytes = stat(argv[2], &sb) == 0 ? (long long)sb.st_size : 0;
    printf("%.3f %zu %lld\n", t1 - t0, records, bytes);
    for (size_t t = 0; t < ntabs; t++) {
        for (size_t i = 0; i < tabs[t].nrows * (size_t)tabs[t].ncol; i++) free(tabs[t].cells[i].p);
        free(tabs[t].cells);
        free(tabs[t].name);
    }
    return 0;
}
