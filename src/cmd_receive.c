/* cmd_receive.c -- `synccf receive`: open the store, serve HTTP until
 * SIGTERM/SIGINT, then drain. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/filter.h"
#include "../lib/log.h"
#include "../lib/server.h"
#include "../lib/store.h"
#include "cli.h"

/* "512", "64k", "8M", "1G" */
static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s) return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end || v == 0) return -1;
    *out = (size_t)v;
    return 0;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int cmd_receive(struct cli *c, int argc, char **argv)
{
    struct server_config sc;
    struct filter *filters = NULL;
    server_config_defaults(&sc);
    if (env("SYNCCF_LISTEN")) sc.listen = env("SYNCCF_LISTEN");
    sc.push_secret = env("SYNCCF_PUSH_SECRET");
    sc.notify_secret = env("SYNCCF_NOTIFY_SECRET");
    sc.hook_token = env("SYNCCF_HOOK_TOKEN");

    for (int i = 1; i < argc; i++) {
        const char *v;
        size_t *size = NULL;
        unsigned *num = NULL;
        if ((v = cli_value(argc, argv, &i, "--listen"))) sc.listen = v;
        else if ((v = cli_value(argc, argv, &i, "--max-body"))) size = &sc.max_body;
        else if ((v = cli_value(argc, argv, &i, "--max-logpush-body"))) size = &sc.max_logpush_body;
        else if ((v = cli_value(argc, argv, &i, "--max-decompressed"))) size = &sc.max_decompressed;
        else if ((v = cli_value(argc, argv, &i, "--max-line"))) size = &sc.max_line;
        else if ((v = cli_value(argc, argv, &i, "--max-connections"))) num = &sc.max_connections;
        else if ((v = cli_value(argc, argv, &i, "--timeout"))) num = &sc.timeout_s;
        else if ((v = cli_value(argc, argv, &i, "--threads"))) num = &sc.threads;
        else if ((v = cli_value(argc, argv, &i, "--filter"))) {
            if (filter_add(&filters, v) != 0) {
                fprintf(stderr, "synccf receive: bad --filter '%s' (want [DATASET.]FIELD=GLOB)\n", v);
                return EXIT_USAGE;
            }
            continue;
        } else {
            fprintf(stderr, "synccf receive: unknown option '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
        if (size && parse_size(v, size) != 0) {
            fprintf(stderr, "synccf receive: bad size '%s' for %s\n", v, argv[i - 1]);
            return EXIT_USAGE;
        }
        if (num) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            if (*end || n == 0 || n > 1000000) {
                fprintf(stderr, "synccf receive: bad number '%s'\n", v);
                return EXIT_USAGE;
            }
            *num = (unsigned)n;
        }
    }
    sc.filters = filters;

    /* Signals are taken synchronously by this thread; every thread started
     * below inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    struct store *st = store_open(c->db_path, 0, err, sizeof err);
    if (!st) {
        log_msg(LOG_ERROR, "cannot open the store", "path", c->db_path, "error", err, NULL);
        filter_free(filters);
        return EXIT_RUNTIME;
    }
    store_start(st);
    int usage_error = 0;
    struct server *srv = server_start(&sc, st, err, sizeof err, &usage_error);
    if (!srv) {
        log_msg(LOG_ERROR, "cannot start the receiver", "error", err, NULL);
        store_close(st);
        filter_free(filters);
        return usage_error ? EXIT_USAGE : EXIT_RUNTIME;
    }
    char port[16];
    snprintf(port, sizeof port, "%u", server_port(srv));
    log_msg(LOG_INFO, "listening", "listen", sc.listen, "port", port, "store", c->db_path, NULL);

    int sig = 0;
    sigwait(&set, &sig);
    log_msg(LOG_INFO, "shutting down", "signal", sig == SIGTERM ? "TERM" : "INT", NULL);
    server_stop(srv);
    char commits[24];
    snprintf(commits, sizeof commits, "%ld", store_commits(st));
    store_close(st);
    filter_free(filters);
    log_msg(LOG_INFO, "stopped", "commits", commits, NULL);
    return EXIT_OK;
}
