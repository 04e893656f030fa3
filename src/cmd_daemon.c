/* cmd_daemon.c -- the daemon commands: `synccf receive`, `run`, `pull`,
 * `queue`, `poll` and `tunnel`.
 *
 * Each opens the library on the config, applies its flags, starts what it
 * names (the receiver alone, the receiver and the configured sources, one
 * outbound source, or the receiver and cloudflared) with the store and the
 * handler dispatcher, then waits for SIGTERM/SIGINT (SIGHUP reloads the
 * handler rules) and drains. */
#include <signal.h>
#include <sys/prctl.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "cli.h"
#include "notify.h"
#include "synccf.h"

/* The daemon commands differ only in what they start (source: NULL for the
 * receiver alone, "run", "tunnel", or one outbound source). */
static int serve(struct cli *c, int argc, char **argv, const char *source);

int cmd_receive(struct cli *c, int argc, char **argv) { return serve(c, argc, argv, NULL); }
int cmd_pull(struct cli *c, int argc, char **argv) { return serve(c, argc, argv, "pull"); }
int cmd_poll(struct cli *c, int argc, char **argv) { return serve(c, argc, argv, "poll"); }
int cmd_queue(struct cli *c, int argc, char **argv) { return serve(c, argc, argv, "queue"); }
int cmd_run(struct cli *c, int argc, char **argv) { return serve(c, argc, argv, "run"); }
int cmd_tunnel(struct cli *c, int argc, char **argv) { return serve(c, argc, argv, "tunnel"); }

static int serve(struct cli *c, int argc, char **argv, const char *source)
{
    /* The daemon holds secrets: keep them out of core dumps (and away from
     * same-user ptrace). */
    prctl(PR_SET_DUMPABLE, 0);
    static const char *const flags[][2] = {
        {"--listen", "listen"},           {"--filter", "filter"},
        {"--max-body", "max_body"},       {"--max-logpush-body", "max_logpush_body"},
        {"--max-decompressed", "max_decompressed"}, {"--max-line", "max_line"},
        {"--max-connections", "max_connections"},   {"--timeout", "timeout"},
        {"--max-connections-per-ip", "max_connections_per_ip"},
        {"--threads", "threads"},         {"--concurrency", "concurrency"},
        {"--worker-url", "worker_url"},   {"--heartbeat", "heartbeat"},
        {"--api-base", "api_base"},       {"--account-id", "account_id"},
        {"--queue-id", "queue_id"},       {"--interval", "poll_interval"},
        {"--overlap", "poll_overlap"},    {"--mode", "mode"},
        {"--cloudflared", "cloudflared"}, {"--status-page", "status_page"},
        {"--pages-project", "pages_project"},
    };
    char err[512];
    synccf *s = synccf_open(c->config, err, sizeof err);
    if (!s) {
        fprintf(stderr, "synccf: %s\n", err);
        return EXIT_USAGE;
    }
    synccf_set(s, "state", c->state_dir, err, sizeof err); /* config_state_dir's choice */
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        size_t k = 0;
        for (; k < sizeof flags / sizeof *flags; k++)
            if ((v = cli_value(argc, argv, &i, flags[k][0]))) break;
        const char *key = v ? flags[k][1] : NULL;
        if (!v) {
            /* Every other setting of the file, as --section-key VALUE. */
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(argv[i], "="), argv[i]);
            key = config_flag_key(name);
            if (key) v = cli_value(argc, argv, &i, name);
        }
        if (!v) {
            synccf_close(s);
            return cli_bad_option(argv[0], argv[i]);
        }
        if (synccf_set(s, key, v, err, sizeof err) != 0) {
            fprintf(stderr, "synccf %s: %s\n", argv[0], err);
            synccf_close(s);
            return EXIT_USAGE;
        }
    }

    /* Signals are taken synchronously by this thread; every thread started
     * below inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Past a file-size limit (ulimit -f) a write should fail like a full
     * disk (the commit fails, the sender gets 503), not kill the daemon. */
    signal(SIGXFSZ, SIG_IGN);

    int rc = !source                       ? synccf_start(s, err, sizeof err)
             : strcmp(source, "run") == 0 ? synccf_run(s, err, sizeof err)
             : strcmp(source, "tunnel") == 0 ? synccf_tunnel(s, err, sizeof err)
                                          : synccf_start_source(s, source, err, sizeof err);
    if (rc != 0) {
        log_msg(LOG_ERROR, "cannot start", "error", err, NULL);
        synccf_close(s);
        return rc == 2 ? EXIT_USAGE : EXIT_RUNTIME;
    }
    char port[16];
    snprintf(port, sizeof port, "%u", synccf_port(s));
    if (source && strcmp(source, "run") != 0 && strcmp(source, "tunnel") != 0) log_msg(LOG_INFO, "started", "source", source, "store", synccf_db_path(s), NULL);
    else log_msg(LOG_INFO, "listening", "port", port, "store", synccf_db_path(s), NULL);

    notify_ready();
    /* Wait for a signal; under a systemd watchdog, say we are alive at half
     * its period meanwhile. */
    int sig = -1;
    long wd = notify_watchdog_ms();
    while (sig < 0) {
        if (wd > 0) {
            struct timespec ts = {wd / 2000, (wd / 2 % 1000) * 1000000L};
            sig = sigtimedwait(&set, NULL, &ts);
            if (sig < 0) notify_alive();
        } else if (sigwait(&set, &sig) != 0) {
            sig = -1;
        }
        if (sig == SIGHUP) {
            if (synccf_reload(s, err, sizeof err) == 0) log_msg(LOG_INFO, "handler rules reloaded", NULL);
            else log_msg(LOG_ERROR, "reload refused; the rules in use stay", "error", err, NULL);
            sig = -1;
        }
    }
    notify_stopping();
    log_msg(LOG_INFO, "shutting down", "signal", sig == SIGTERM ? "TERM" : "INT", NULL);
    synccf_close(s);
    log_msg(LOG_INFO, "stopped", NULL);
    return EXIT_OK;
}
