/* synccf.h -- public interface of libsynccf.
 *
 * libsynccf receives Cloudflare events (Notifications, Logpush, Pages, the
 * synccf Worker), normalizes them to CloudEvents 1.0, stores each exactly once
 * in SQLite and runs handlers for them with retries that survive restarts.
 * The synccf command is built on it; a program can embed the same receiver,
 * store and dispatcher and add its own handlers:
 *
 *     synccf *s = synccf_open(NULL, err, sizeof err);        // defaults + SYNCCF_* env
 *     synccf_set(s, "state", "/var/lib/myapp", err, sizeof err);
 *     synccf_on_event(s, "deploys", "com.cloudflare.pages.deployment.*", on_deploy, NULL);
 *     synccf_start(s, err, sizeof err);                      // serve until synccf_close()
 *
 * A callback gets the event as CloudEvents JSON; returning non-zero marks the
 * run failed, and it is retried with backoff (also after a restart, which is
 * why a callback is registered under a stable name). */
#ifndef SYNCCF_H
#define SYNCCF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SYNCCF_VERSION "0.1.0"

typedef struct synccf synccf;

/* Returns 0 when the event was handled; anything else is a failure to retry. */
typedef int (*synccf_handler_fn)(const char *event_json, void *arg);

/* The library's version string, e.g. "0.1.0". */
const char *synccf_version(void);

/* Settings from the defaults, then config_file (a synccf.yaml, or an
 * xplat.yaml with a sync.cloudflare section; NULL for none), then the SYNCCF_*
 * environment. NULL with a message in err on a configuration error. */
synccf *synccf_open(const char *config_file, char *err, size_t errlen);

/* Overrides one setting, as a command-line flag would, checked as the file
 * checks it: any top-level key of the file ("state", "listen", "mode",
 * "worker_url", "heartbeat", "poll_interval", ...), the limits and dispatch
 * settings by their own name ("max_body", "max_logpush_body",
 * "max_decompressed", "max_line", "max_connections", "max_connections_per_ip",
 * "timeout", "threads", "max_attempts", "backoff", "max_backoff",
 * "concurrency", "max_series"), and "filter" and "pages_project" (each call adds one). */
int synccf_set(synccf *s, const char *key, const char *value, char *err, size_t errlen);

/* Registers a handler for events whose type matches type_glob (NULL: all).
 * name identifies its runs in the store: keep it stable across restarts.
 * Call before synccf_start. */
int synccf_on_event(synccf *s, const char *name, const char *type_glob, synccf_handler_fn fn, void *arg);

/* Opens the store, starts the receiver and the dispatcher. Returns 0, 1 on a
 * runtime failure (the port is taken; another process runs on the state
 * directory, whose lock file DIR/lock is held until synccf_close), 2 on a
 * configuration error. */
int synccf_start(synccf *s, char *err, size_t errlen);

/* Opens the store and starts the dispatcher and, instead of the receiver,
 * `what`: "pull" (follow the Worker at the worker_url setting). Returns as
 * synccf_start does. */
int synccf_start_source(synccf *s, const char *what, char *err, size_t errlen);

/* Starts what the mode setting asks for (worker: pull; queue; poll; hybrid:
 * pull with the poller taking over while the Worker is unreachable; tunnel:
 * the receiver only), always with the receiver for health checks. */
int synccf_run(synccf *s, char *err, size_t errlen);

/* The receiver plus cloudflared (quick tunnel, or named with the
 * tunnel_token setting), supervised; 1 with a message on how to install
 * cloudflared when it is missing. */
int synccf_tunnel(synccf *s, char *err, size_t errlen);

/* Reloads the handler rules from the configuration file (as SIGHUP does);
 * connections, sources and runs in progress carry on. -1 with the reason
 * when the file is not valid: the rules in use stay. */
int synccf_reload(synccf *s, char *err, size_t errlen);

/* The port the receiver listens on (useful with port 0). */
unsigned synccf_port(const synccf *s);

/* Path of the store (state.db). */
const char *synccf_db_path(const synccf *s);

/* Stops accepting, lets requests and handler runs in progress finish, frees. */
void synccf_close(synccf *s);

#ifdef __cplusplus
}
#endif

#endif
