/* synccf.c -- the public API: assembles config, store, receiver and
 * dispatcher into one running synccf, in the one order that is safe (store
 * before the receiver that writes into it, dispatcher before the first
 * commit that could wake it) and stops them in reverse. */
#include "synccf.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dispatch.h"
#include "filter.h"
#include "lock.h"
#include "log.h"
#include "metrics.h"
#include "page.h"
#include "poll.h"
#include "pull.h"
#include "queue.h"
#include "tunnel.h"
#include "server.h"
#include "store.h"

struct synccf {
    struct config cfg;
    struct filter *filters;
    char db_path[4200];
    struct store *store;
    struct server *server;
    struct dispatch *dispatch;
    struct pull *pull;
    struct poll *poll;
    struct queue *queue;
    struct tunnel *tunnel;
    int behind_tunnel; /* synccf tunnel: the receiver is public (server.h) */
    pthread_mutex_t scrape_mu; /* one scrape at a time on scrape_db */
    struct store *scrape_db;
    int lockfd; /* the state directory's lock (lock.c), -1 until start */
};

synccf *synccf_open(const char *config_file, char *err, size_t errlen)
{
    synccf *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->lockfd = -1;
    pthread_mutex_init(&s->scrape_mu, NULL);
    config_defaults(&s->cfg);
    if (config_file && config_load(&s->cfg, config_file, err, errlen) != 0) {
        config_free(&s->cfg);
        free(s);
        return NULL;
    }
    config_env(&s->cfg);
    if (config_env_all(&s->cfg, err, errlen) != 0) {
        config_free(&s->cfg);
        free(s);
        return NULL;
    }
    return s;
}

int synccf_set(synccf *s, const char *key, const char *value, char *err, size_t errlen)
{
    /* The keys are the flags' names; each is a setting of the file, where it
     * may sit in a section. Everything goes through config_set so that a
     * value is checked once, in one way, whether it comes from a flag, the
     * environment or the file. The lists take one value per call. */
    struct config *c = &s->cfg;
    if (strcmp(key, "pages_project") == 0) return config_add_pages_project(c, value, err, errlen);
    if (strcmp(key, "filter") == 0) {
        config_list_add(&c->filters, value);
        return 0;
    }
    return config_set(c, config_setting(key), value, key, err, errlen);
}

int synccf_on_event(synccf *s, const char *name, const char *type_glob, synccf_handler_fn fn, void *arg)
{
    struct config *c = &s->cfg;
    if (!name || !fn || s->store || router_handler(&c->router, name)) return -1;
    for (size_t i = 0; i < c->nhandlers; i++)
        if (strcmp(c->handlers[i].name, name) == 0) return -1;
    char *nm = strdup(name), *glob = type_glob ? strdup(type_glob) : NULL;
    struct handler_def *grown = nm && (glob || !type_glob) ? realloc(c->handlers, (c->nhandlers + 1) * sizeof *c->handlers) : NULL;
    if (!grown) {
        free(nm);
        free(glob);
        return -1;
    }
    c->handlers = grown;
    struct handler_def *h = &c->handlers[c->nhandlers++];
    memset(h, 0, sizeof *h);
    h->name = nm;
    h->kind = HANDLER_CALLBACK;
    h->match_type = glob;
    h->fn = fn;
    h->arg = arg;
    return 0;
}

/* The store and the dispatcher: what every way in needs. */
static int start_core(synccf *s, char *err, size_t errlen)
{
    struct config *c = &s->cfg;
    if (s->store) return 0;
    router_publish_config(c, 0);
    char dir[4096];
    config_state_dir(c->state_dir, NULL, dir, sizeof dir, NULL, 0); /* already layered: set, or the default */
    snprintf(s->db_path, sizeof s->db_path, "%s/state.db", dir);
    for (char **f = c->filters; f && *f; f++)
        if (filter_add(&s->filters, *f) != 0) {
            snprintf(err, errlen, "bad Logpush filter '%s' (want [DATASET.]FIELD=GLOB)", *f);
            return 2;
        }
    /* One dispatcher per store: before anything is opened, so a second
     * daemon changes nothing on its way out. */
    long holder;
    int fd = state_lock(dir, &holder, err, errlen);
    if (fd < 0) return 1;
    s->lockfd = fd;
    s->store = store_open(s->db_path, 0, err, errlen);
    if (!s->store) return 1;
    store_set_max_series(s->store, c->metrics_max_series);
    if (store_set_retention(s->store, &c->retention) != 0) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    s->dispatch = dispatch_start(s->db_path, c, s->store, err, errlen);
    if (!s->dispatch) return 1;
    store_on_runs(s->store, dispatch_wake, s->dispatch);
    store_start(s->store);
    return 0;
}

static int pull_down(void *arg)
{
    synccf *s = arg;
    return !pull_reachable(s->pull, s->cfg.failover_ms);
}

/* The audit log poller; with standby, it polls only while the Worker stream
 * is down (hybrid mode). */
static int start_poll(synccf *s, int standby, char *err, size_t errlen)
{
    s->poll = poll_start(s->store, &s->cfg, err, errlen);
    if (!s->poll) return 2;
    if (standby) poll_set_standby(s->poll, pull_down, s);
    return poll_run(s->poll, err, errlen) != 0 ? 1 : 0;
}

int synccf_start_source(synccf *s, const char *what, char *err, size_t errlen)
{
    int rc = start_core(s, err, errlen);
    if (rc) return rc;
    if (strcmp(what, "pull") == 0) {
        if (!s->cfg.worker_url) {
            snprintf(err, errlen, "pull needs the Worker's URL (--worker-url, SYNCCF_WORKER_URL or worker_url)");
            return 2;
        }
        s->pull = pull_start(s->cfg.worker_url, s->cfg.pull_token, s->cfg.heartbeat_s, s->store, &s->cfg.router, err,
                             errlen);
        return s->pull ? 0 : 2;
    }
    if (strcmp(what, "poll") == 0) {
        return start_poll(s, 0, err, errlen);
    }
    if (strcmp(what, "queue") == 0) {
        s->queue = queue_start(s->store, &s->cfg, err, errlen);
        return s->queue ? 0 : 2;
    }
    snprintf(err, errlen, "unknown source '%s'", what);
    return 2;
}

/* /readyz: the store, and each source this process runs. */
static int ready(void *arg, json_t *checks)
{
    synccf *s = arg;
    int ok = 1;
    int store_ok = store_healthy(s->store);
    json_object_set_new(checks, "store", json_string(store_ok ? "ok" : "last commit failed"));
    ok &= store_ok;
    if (s->pull) {
        int up = pull_reachable(s->pull, s->cfg.failover_ms);
        json_object_set_new(checks, "pull", json_string(up ? "ok" : "the Worker stream is unreachable"));
        /* In hybrid mode the poller covers for a lost stream. */
        ok &= up || (s->poll && poll_healthy(s->poll));
    }
    if (s->poll) {
        int up = poll_healthy(s->poll);
        json_object_set_new(checks, "poll", json_string(up ? "ok" : "the last audit log poll failed"));
        ok &= up;
    }
    if (s->queue) {
        int up = queue_healthy(s->queue);
        json_object_set_new(checks, "queue", json_string(up ? "ok" : "pulling from the queue fails"));
        ok &= up;
    }
    return ok;
}

/* Renders the store through the read-only connection that /metrics and the
 * status page share (opened on first use), one scrape at a time. */
static void render_scrape(synccf *s, void (*render)(synccf *s, sqlite3 *db, struct buf *out), struct buf *out)
{
    pthread_mutex_lock(&s->scrape_mu);
    char err[256];
    if (!s->scrape_db) s->scrape_db = store_open(s->db_path, 1, err, sizeof err);
    if (s->scrape_db) render(s, store_db(s->scrape_db), out);
    pthread_mutex_unlock(&s->scrape_mu);
}

static void metrics_rows(synccf *s, sqlite3 *db, struct buf *out)
{
    metrics_render_store(db, s->cfg.metrics_max_series, out);
}

static void page_rows(synccf *s, sqlite3 *db, struct buf *out)
{
    (void)s;
    page_render(db, out);
}

static void metrics(void *arg, struct buf *out)
{
    synccf *s = arg;
    render_scrape(s, metrics_rows, out);
    buf_printf(out, "# HELP synccf_commit_duration_seconds How long each store commit (one group) takes.\n"
                    "# TYPE synccf_commit_duration_seconds histogram\n");
    hist_render(store_commit_hist(s->store), "synccf_commit_duration_seconds", "", out);
    dispatch_render(s->dispatch, out);
}

static void page(void *arg, struct buf *out) { render_scrape(arg, page_rows, out); }

int synccf_run(synccf *s, char *err, size_t errlen)
{
    enum run_mode mode = config_mode(&s->cfg);
    int rc = start_core(s, err, errlen);
    if (rc) return rc;
    if (mode == MODE_WORKER || mode == MODE_HYBRID) {
        rc = synccf_start_source(s, "pull", err, errlen);
        if (rc) return rc;
    }
    /* Hybrid runs every way in the file configures: the Worker stream, the
     * Queue when it names one, and the poller standing by for the stream. */
    int queue = mode == MODE_QUEUE || (mode == MODE_HYBRID && s->cfg.queue_id);
    if (queue && (rc = synccf_start_source(s, "queue", err, errlen))) return rc;
    if (mode == MODE_POLL && (rc = synccf_start_source(s, "poll", err, errlen))) return rc;
    if (mode == MODE_HYBRID) {
        if ((rc = start_poll(s, 1, err, errlen))) return rc;
    }
    /* The receiver runs in every mode: it takes pushes and tunnelled
     * webhooks, and answers /healthz and /readyz. */
    return synccf_start(s, err, errlen);
}

int synccf_start(synccf *s, char *err, size_t errlen)
{
    struct config *c = &s->cfg;
    int rc = start_core(s, err, errlen);
    if (rc) return rc;

    struct server_config sc = {0}; /* every limit comes from the config, which owns the defaults */
    sc.listen = c->listen;
    sc.push_secret = c->push_secret;
    sc.notify_secret = c->notify_secret;
    sc.hook_token = c->hook_token;
    sc.limits = c->limits;
    sc.filters = s->filters;
    sc.router = &c->router;
    sc.ready = ready;
    sc.ready_arg = s;
    sc.metrics = metrics;
    sc.metrics_arg = s;
    sc.page = c->status_page ? page : NULL;
    /* synccf tunnel starts cloudflared; mode tunnel with cloudflared set says
     * one runs in front of this receiver. Either way the internet reaches it. */
    sc.behind_tunnel = s->behind_tunnel || (config_mode(c) == MODE_TUNNEL && c->cloudflared);
    int usage = 0;
    s->server = server_start(&sc, s->store, err, errlen, &usage);
    if (!s->server) return usage ? 2 : 1;
    return 0;
}

int synccf_tunnel(synccf *s, char *err, size_t errlen)
{
    s->behind_tunnel = 1;
    int rc = synccf_start(s, err, errlen);
    if (rc) return rc;
    s->tunnel = tunnel_start(s->store, &s->cfg, synccf_port(s), err, errlen);
    return s->tunnel ? 0 : 1;
}

int synccf_reload(synccf *s, char *err, size_t errlen) { return router_reload(&s->cfg.router, s->cfg.file, err, errlen); }

unsigned synccf_port(const synccf *s) { return s->server ? server_port(s->server) : 0; }
const char *synccf_db_path(const synccf *s) { return s->db_path; }

void synccf_close(synccf *s)
{
    if (!s) return;
    tunnel_stop(s->tunnel);
    server_stop(s->server);
    pull_stop(s->pull);
    poll_stop(s->poll);
    queue_stop(s->queue);
    store_close(s->scrape_db);
    /* Runs in progress finish and record their outcomes through the store's
     * writer, so the dispatcher stops first (no more wake-ups from the
     * writer once it is gone); then the store commits what the receiver
     * handed over, and only then is another dispatcher let in. */
    if (s->store) store_on_runs(s->store, NULL, NULL);
    dispatch_stop(s->dispatch);
    store_close(s->store);
    state_unlock(s->lockfd);
    filter_free(s->filters);
    config_free(&s->cfg);
    free(s);
}
