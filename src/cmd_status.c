/* cmd_status.c -- `synccf status` and `synccf events`: read the store and
 * print for people (tables) or scripts (--json). */
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/config.h"
#include "../lib/dispatch.h"
#include "../lib/lock.h"
#include "../lib/jsonx.h"
#include "../lib/query.h"
#include "../lib/store.h"
#include "../lib/util.h"
#include "cli.h"

/* The store has not been created: no daemon has run on this state directory
 * yet (or another one was meant). Not an error, and nothing is created. */
static int no_store(struct cli *c)
{
    struct stat sb;
    return stat(c->db_path, &sb) != 0 && errno == ENOENT;
}

static void say_no_store(struct cli *c, FILE *f) { fprintf(f, "no events yet (store %s not created)\n", c->db_path); }

static struct store *open_ro(struct cli *c)
{
    char err[512];
    struct store *st = store_open(c->db_path, 1, err, sizeof err);
    if (!st) {
        /* SQLite's messages may start with the path already. */
        size_t n = strlen(c->db_path);
        const char *why = strncmp(err, c->db_path, n) == 0 && strncmp(err + n, ": ", 2) == 0 ? err + n + 2 : err;
        fprintf(stderr, "synccf: cannot read the store %s: %s\n", c->db_path, why);
    }
    return st;
}

static void print_pairs(const char *title, json_t *o)
{
    const char *k;
    json_t *v;
    printf("%s\n", title);
    if (!json_object_size(o)) printf("  (none)\n");
    json_object_foreach(o, k, v) printf("  %-50s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
}

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : "-";
}

/* One line per outbound way in (pull, queue, poll): what README.md promises
 * status shows. Each writes its own fields (source.c); the cursor is the
 * Worker stream's sequence number or the audit log's high-water mark. */
static void print_sources(json_t *src)
{
    printf("sources (way in, state, last success, last error, cursor, lag)\n");
    if (!json_object_size(src)) printf("  (none: no pull, queue or poll has run on this store)\n");
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) {
        char cursor[64] = "-", lag[32] = "-";
        json_t *cur = json_object_get(v, "cursor");
        if (json_is_integer(cur)) snprintf(cursor, sizeof cursor, "%" JSON_INTEGER_FORMAT, json_integer_value(cur));
        else if (json_is_string(json_object_get(v, "high_water_mark")))
            snprintf(cursor, sizeof cursor, "%s", json_string_value(json_object_get(v, "high_water_mark")));
        json_t *l = json_object_get(v, "lag_ms");
        if (json_is_integer(l)) snprintf(lag, sizeof lag, "%.1fs", (double)json_integer_value(l) / 1000);
        printf("  %-8s state=%s last_success=%s last_error=%s cursor=%s lag=%s\n", k, str(v, "state"),
               str(v, "last_success"), json_is_string(json_object_get(v, "last_error")) ? str(v, "last_error") : "-",
               cursor, lag);
    }
}

static void print_duration(const char *label, json_int_t ms)
{
    if (!ms) return;
    if (ms % 86400000 == 0) printf("%s %" JSON_INTEGER_FORMAT "d", label, ms / 86400000);
    else if (ms % 3600000 == 0) printf("%s %" JSON_INTEGER_FORMAT "h", label, ms / 3600000);
    else printf("%s %" JSON_INTEGER_FORMAT "s", label, ms / 1000);
}

/* The retention: section of status (query_retention). */
static void print_retention(json_t *r)
{
    json_t *cfg = json_object_get(r, "config");
    printf("retention  ");
    if (!json_is_object(cfg)) {
        printf(" not recorded (the daemon has not run with this version)\n");
    } else {
        size_t i;
        json_t *rule;
        int any = 0;
        json_array_foreach(json_object_get(cfg, "rules"), i, rule) {
            printf("%s %s:", any++ ? ";" : "", str(rule, "type"));
            print_duration(" max_age", json_integer_value(json_object_get(rule, "max_age_ms")));
            json_int_t n = json_integer_value(json_object_get(rule, "max_events"));
            if (n) printf(" max_events %" JSON_INTEGER_FORMAT, n);
        }
        json_int_t age = json_integer_value(json_object_get(cfg, "max_age_ms"));
        json_int_t n = json_integer_value(json_object_get(cfg, "max_events"));
        json_int_t b = json_integer_value(json_object_get(cfg, "max_bytes"));
        if (age) printf("%s other types:", any++ ? ";" : ""), print_duration(" max_age", age);
        if (n) printf("%s store max_events %" JSON_INTEGER_FORMAT, any++ ? ";" : "", n);
        if (b) printf("%s store max_bytes %" JSON_INTEGER_FORMAT, any++ ? ";" : "", b);
        if (!any) printf(" keep everything");
        print_duration("; dedupe window", json_integer_value(json_object_get(cfg, "dedupe_window_ms")));
        printf("\n");
    }
    printf("store pages %" JSON_INTEGER_FORMAT " bytes, %" JSON_INTEGER_FORMAT " free (reused first)\n",
           json_integer_value(json_object_get(r, "file_bytes")), json_integer_value(json_object_get(r, "free_bytes")));
    print_pairs("pruned (by limit)", json_object_get(r, "pruned"));
}

int cmd_status(struct cli *c, int argc, char **argv)
{
    if (argc > 1) return cli_bad_option("status", argv[1]);
    if (no_store(c)) {
        if (c->json) {
            json_t *o = json_pack("{s:{s:s,s:b},s:{s:i}}", "store", "path", c->db_path, "created", 0, "events", "total", 0);
            char *out = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
            if (out) puts(out);
            free(out);
            json_decref(o);
        } else {
            say_no_store(c, stdout);
        }
        return EXIT_OK;
    }
    struct store *st = open_ro(c);
    if (!st) return EXIT_RUNTIME;
    json_t *s = query_status(store_db(st), c->db_path);
    store_close(st);
    if (c->json) {
        char *out = json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(out);
        free(out);
        json_decref(s);
        return EXIT_OK;
    }
    json_t *store = json_object_get(s, "store"), *ev = json_object_get(s, "events");
    printf("store       %s (%" JSON_INTEGER_FORMAT " bytes + %" JSON_INTEGER_FORMAT " WAL)\n", str(store, "path"),
           json_integer_value(json_object_get(store, "bytes")), json_integer_value(json_object_get(store, "wal_bytes")));
    printf("events      %" JSON_INTEGER_FORMAT " (first received %s, last received %s)\n",
           json_integer_value(json_object_get(ev, "total")), str(ev, "first_received"), str(ev, "last_received"));
    print_pairs("by source", json_object_get(ev, "by_source"));
    print_pairs("by type", json_object_get(ev, "by_type"));
    print_pairs("by way in", json_object_get(ev, "by_via"));
    print_pairs("duplicates (by way in)", json_object_get(s, "duplicates"));
    print_pairs("rejected (by reason)", json_object_get(s, "rejected"));
    print_pairs("filtered", json_object_get(s, "filtered"));
    print_sources(json_object_get(s, "sources"));
    print_retention(json_object_get(s, "retention"));
    json_t *le = json_object_get(s, "last_error");
    printf("last error  %s\n", json_is_string(le) ? json_string_value(le) : "none");
    json_t *h = json_object_get(s, "handlers");
    print_pairs("handler runs (" RUN_NAME_PENDING ", " RUN_NAME_RETRYING ", " RUN_NAME_OK ", " RUN_NAME_GAVE_UP ")",
                json_object_get(h, "runs"));
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(h, "failing"), i, p) {
        if (i == 0) printf("failing handler runs (most recent first)\n");
        printf("  %-42s %-16s %-8s attempts=%" JSON_INTEGER_FORMAT " %s\n", str(p, "id"), str(p, "handler"),
               str(p, "state"), json_integer_value(json_object_get(p, "attempts")), str(p, "last_error"));
    }
    json_decref(s);
    return EXIT_OK;
}

static int events_list(struct cli *c, int argc, char **argv)
{
    const char *type = NULL, *since = NULL;
    long limit = 20;
    char since_buf[TIME_BUF];
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = cli_value(argc, argv, &i, "--type"))) type = v;
        else if ((v = cli_value(argc, argv, &i, "--since"))) {
            int64_t ms;
            if (time_parse_rfc3339(v, &ms) != 0) {
                fprintf(stderr, "synccf events: --since wants an RFC 3339 time, e.g. 2026-11-20T10:00:00Z\n");
                return EXIT_USAGE;
            }
            time_format_ms(ms, since_buf);
            since = since_buf;
        } else if ((v = cli_value(argc, argv, &i, "--limit"))) {
            char *end;
            limit = strtol(v, &end, 10);
            if (*end || limit <= 0) {
                fprintf(stderr, "synccf events: --limit wants a positive number\n");
                return EXIT_USAGE;
            }
        } else {
            return cli_bad_option("events list", argv[i]);
        }
    }
    if (no_store(c)) {
        say_no_store(c, c->json ? stderr : stdout);
        return EXIT_OK;
    }
    struct store *st = open_ro(c);
    if (!st) return EXIT_RUNTIME;
    json_t *arr = query_events(store_db(st), type, since, limit);
    store_close(st);
    size_t i;
    json_t *row;
    if (!c->json) printf("%-8s %-24s %-48s %-42s %s\n", "SEQ", "TIME", "TYPE", "ID", "SUBJECT");
    json_array_foreach(arr, i, row) {
        json_t *e = json_object_get(row, "event");
        if (c->json) {
            char *s = jx_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
            puts(s);
            free(s);
        } else {
            printf("%-8" JSON_INTEGER_FORMAT " %-24s %-48s %-42s %s\n", json_integer_value(json_object_get(row, "seq")),
                   str(e, "time"), str(e, "type"), str(e, "id"), str(e, "subject"));
        }
    }
    json_decref(arr);
    return EXIT_OK;
}

static int events_show(struct cli *c, int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: synccf events show ID [--json]\n");
        return EXIT_USAGE;
    }
    if (no_store(c)) {
        fprintf(stderr, "synccf: no event with id '%s': ", argv[2]);
        say_no_store(c, stderr);
        return EXIT_RUNTIME;
    }
    struct store *st = open_ro(c);
    if (!st) return EXIT_RUNTIME;
    json_t *row = query_event(store_db(st), argv[2]);
    store_close(st);
    if (!row) {
        fprintf(stderr, "synccf: no event with id '%s'\n", argv[2]);
        return EXIT_RUNTIME;
    }
    char *s = jx_dumps(c->json ? row : json_object_get(row, "event"), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(s);
    free(s);
    if (!c->json) {
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(row, "runs"), i, r) {
            if (i == 0) printf("\nhandler runs\n");
            printf("  %-20s %-8s attempts=%" JSON_INTEGER_FORMAT " updated=%s%s%s\n", str(r, "handler"), str(r, "state"),
                   json_integer_value(json_object_get(r, "attempts")), str(r, "updated"),
                   json_is_string(json_object_get(r, "last_error")) ? " error=" : "",
                   json_is_string(json_object_get(r, "last_error")) ? str(r, "last_error") : "");
            json_t *d = json_object_get(r, "detail");
            if (json_is_object(d)) {
                char *ds = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
                printf("    %s\n", ds);
                free(ds);
            }
        }
    }
    json_decref(row);
    return EXIT_OK;
}

/* `synccf replay ID`. The handler runs are reset to pending in the store;
 * who runs them depends on the state directory's lock (lock.c): a daemon
 * holding it runs them with its dispatcher (which looks at the outbox at
 * least every second), and replay only queues. With no daemon, replay takes
 * the lock -- so that none starts meanwhile and runs them too -- and runs
 * them itself, once each. */
int cmd_replay(struct cli *c, int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        if (argc == 2) return cli_bad_option("replay", argv[1]);
        fprintf(stderr, "usage: synccf replay ID\n");
        return EXIT_USAGE;
    }
    const char *id = argv[1];
    if (no_store(c)) {
        fprintf(stderr, "synccf: no event with id '%s': ", id);
        say_no_store(c, stderr);
        return EXIT_RUNTIME;
    }
    struct config cfg;
    char err[512];
    if (cli_config(c, &cfg) != 0) return EXIT_USAGE;
    config_env(&cfg);
    long holder = 0;
    int lock = state_lock(c->state_dir, &holder, err, sizeof err);
    if (lock == -1) {
        fprintf(stderr, "synccf: %s\n", err);
        config_free(&cfg);
        return EXIT_RUNTIME;
    }
    struct store *st = store_open(c->db_path, 0, err, sizeof err);
    if (!st) {
        fprintf(stderr, "synccf: cannot open the store: %s\n", err);
        state_unlock(lock);
        config_free(&cfg);
        return EXIT_RUNTIME;
    }
    json_t *row = query_event(store_db(st), id);
    long long seq = row ? (long long)json_integer_value(json_object_get(row, "seq")) : 0;
    router_publish_config(&cfg, 0);
    const char **names = row ? router_route(&cfg.router, json_object_get(row, "event")) : NULL;
    const char *subject = json_string_value(json_object_get(json_object_get(row, "event"), "subject"));
    int n = row ? store_replay(st, seq, id, subject, names) : -1;
    free(names);
    json_decref(row);
    store_close(st);
    int rc = EXIT_OK;
    if (n == -1) {
        fprintf(stderr, "synccf: no event with id '%s'\n", id);
        rc = EXIT_RUNTIME;
    } else if (n < 0) {
        fprintf(stderr, "synccf: could not queue the runs (is the store writable?)\n");
        rc = EXIT_RUNTIME;
    } else if (lock < 0) {
        if (holder)
            printf("%d handler run%s queued for %s; the daemon (pid %ld) runs them\n", n, n == 1 ? "" : "s", id, holder);
        else
            printf("%d handler run%s queued for %s; the running daemon runs them\n", n, n == 1 ? "" : "s", id);
    } else if (n == 0) {
        printf("no handler matches %s\n", id);
    } else {
        int ok = 0;
        int ran = dispatch_run_event(c->db_path, &cfg, seq, &ok, err, sizeof err);
        if (ran < 0) {
            fprintf(stderr, "synccf: %s\n", err);
            rc = EXIT_RUNTIME;
        } else {
            printf("%d handler run%s for %s: %d ok", ran, ran == 1 ? "" : "s", id, ok);
            if (ran > ok) printf(", %d failed (see synccf events show %s; a daemon retries them)", ran - ok, id);
            printf("\n");
            if (ran > ok) rc = EXIT_RUNTIME;
        }
    }
    state_unlock(lock);
    config_free(&cfg);
    return rc;
}

/* `events tail`: new events and handler outcomes as they happen, like tail -f.
 * Reads the store every 300 ms; the daemon keeps writing it meanwhile. */
static volatile sig_atomic_t tail_stop;
static void on_tail_signal(int sig) { (void)sig; tail_stop = 1; }

static void tail_event(void *arg, long long seq, const char *body)
{
    const struct cli *c = arg;
    if (c->json) {
        printf("{\"kind\":\"event\",\"seq\":%lld,\"event\":%s}\n", seq, body);
        return;
    }
    json_t *e = jx_loads(body, 0, NULL);
    printf("%s  event   %-48s %-42s %s\n", str(e, "synccfreceived"), str(e, "type"), str(e, "id"), str(e, "subject"));
    json_decref(e);
}

static void tail_run(void *arg, const char *const f[6])
{
    const struct cli *c = arg;
    if (c->json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s?,s:s}", "kind", "run", "event", f[0], "handler", f[1], "state",
                              f[2], "attempts", atoi(f[3]), "error", f[4], "updated", f[5]);
        char *t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        puts(t);
        free(t);
        json_decref(o);
    } else {
        printf("%s  handler %-20s %-8s attempt %s  %s%s\n", f[5], f[1], f[2], f[3], f[0], f[4] ? "  error: " : "");
        if (f[4]) printf("      %s\n", f[4]);
    }
}

static int events_tail(struct cli *c, int argc, char **argv)
{
    long backlog = 10;
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = cli_value(argc, argv, &i, "--lines"))) backlog = strtol(v, NULL, 10);
        else return cli_bad_option("events tail", argv[i]);
    }
    if (no_store(c)) {
        say_no_store(c, c->json ? stderr : stdout);
        return EXIT_OK;
    }
    struct store *st = open_ro(c);
    if (!st) return EXIT_RUNTIME;
    struct query_tail *t = query_tail_open(store_db(st), backlog);
    if (!t) {
        store_close(st);
        fprintf(stderr, "synccf: out of memory\n");
        return EXIT_RUNTIME;
    }
    signal(SIGINT, on_tail_signal);
    signal(SIGTERM, on_tail_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (!tail_stop) {
        query_tail_events(t, tail_event, c);
        query_tail_runs(t, tail_run, c);
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    query_tail_close(t);
    store_close(st);
    return EXIT_OK;
}

int cmd_events(struct cli *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "tail") == 0) return events_tail(c, argc, argv);
    if (argc < 2 || strcmp(argv[1], "list") == 0) return events_list(c, argc < 2 ? 1 : argc, argv);
    if (strcmp(argv[1], "show") == 0) return events_show(c, argc, argv);
    cli_help(stderr, "events");
    return EXIT_USAGE;
}
