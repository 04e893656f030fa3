/* cfwire.c -- owns `synccf cloudflare setup | check | teardown`: from the
 * configuration, the Cloudflare objects that deliver what the handlers need,
 * and the v4 API calls that create, compare and remove them.
 *
 * Objects (all named with the "synccf" prefix, the only ones ever changed):
 *   Notifications webhook destination "synccf" -> <target>/hooks/notifications
 *     (secret: notify_secret, the Worker's NOTIFY_SECRET);
 *   policies "synccf-pages-<project>" (pages_event_alert) and
 *     "synccf-<alert name>" pointing at that destination;
 *   Logpush jobs "synccf-<dataset, '_' as '-'>" -> <target>/hooks/logpush/<dataset>
 *     with header_Authorization=Bearer%20<hook_token>;
 *   event subscriptions "synccf-<source>[-<resource>]" into queue_id.
 *
 * Every run lists what exists first, so setup is idempotent: a present
 * object that matches is left alone (no changing call), a drifted one is
 * updated, a missing one created; a partial failure leaves a state the next
 * setup completes. Secrets Cloudflare does not hand back (the destination's
 * secret, the token in a Logpush URL) cannot be compared; they are sent
 * whenever the object is created or updated. */
#include "cfwire.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "normalize.h"
#include "util.h"

/* Logpush's batch bounds (uncompressed), as Cloudflare documents them. */
#define LOGPUSH_MIN_BYTES 5000000u
#define LOGPUSH_MAX_BYTES 1000000000u
/* What a Logpush job aimed at the Worker may send: its MAX_DECOMPRESSED is
 * 64 MiB by default and an isolate has 128 MB, so stay well below
 * (docs/worker.md). */
#define WORKER_LOGPUSH_BYTES 50000000u
#define MAX_ATTEMPTS 6

struct run {
    const struct config *c;
    const struct cfwire_opts *o;
    FILE *out;
    char target[2048];
    int target_is_worker;
    int problems; /* check: rows not ok; setup/teardown: failed calls */
    int created, updated, removed, unchanged;
    json_t *rows; /* check */
};

/* ---- calls ------------------------------------------------------------------ */

/* The permission a kind of object needs, named as the token editor shows it. */
static const char *scope_of(const char *kind)
{
    if (!strcmp(kind, "destination") || !strcmp(kind, "policy")) return "Account > Notifications > Edit";
    if (!strcmp(kind, "logpush")) return "Account > Logs > Edit (zone jobs: Zone > Logs > Edit)";
    if (!strcmp(kind, "pages")) return "Account > Cloudflare Pages > Read";
    if (!strcmp(kind, "subscription")) return "Account > Queues > Edit";
    if (!strcmp(kind, "workers")) return "Account > Workers Scripts > Read";
    return "the permission for this call";
}

static int contains_ci(const char *hay, const char *needle) { return hay && strcasestr(hay, needle) != NULL; }

/* Cloudflare's answer in plain words, with what to do about it. */
static void explain(struct run *r, const char *kind, const char *what, enum cf_outcome oc, long status, const char *msg)
{
    fprintf(stderr, "synccf: %s: %s\n", what, msg);
    if (oc == CF_AUTH)
        fprintf(stderr, "  the API token was refused: give it %s (and check CLOUDFLARE_ACCOUNT_ID)\n", scope_of(kind));
    else if (contains_ci(msg, "plan") || contains_ci(msg, "entitle"))
        fprintf(stderr, "  webhook destinations need a zone on a paid plan in this account; without one, use the Pages "
                        "poller (pages_projects) or Logpush\n");
    else if (!strcmp(kind, "policy") && (contains_ci(msg, "alert_type") || contains_ci(msg, "alert type")))
        fprintf(stderr, "  the alert type is not known to Cloudflare: see the account's available alerts "
                        "(GET /accounts/{account_id}/alerting/v3/available_alerts) and fix cloudflare.alerts\n");
    else if (oc == CF_RATE_LIMIT)
        fprintf(stderr, "  rate limited by Cloudflare after %d attempts: run the command again in a few minutes\n", MAX_ATTEMPTS);
    else if (oc == CF_NOT_FOUND && !strcmp(kind, "pages"))
        fprintf(stderr, "  no such Pages project in this account: fix cloudflare.pages (or the handler's subject)\n");
    else if (status == 0 || oc == CF_RETRY) fprintf(stderr, "  Cloudflare's API did not answer: check the network and --api-base\n");
    r->problems++;
}

/* Secrets never reach the terminal: the destination's secret and the token
 * inside a Logpush URL. */
static char *redacted(const json_t *body)
{
    if (!body) return strdup("");
    json_t *b = json_deep_copy(body);
    if (!b) return NULL;
    if (json_object_get(b, "secret")) json_object_set_new(b, "secret", json_string("(redacted)"));
    const char *dc = json_string_value(json_object_get(b, "destination_conf"));
    if (dc) {
        const char *h = strstr(dc, "header_Authorization=");
        if (h) {
            char tmp[4200];
            snprintf(tmp, sizeof tmp, "%.*sheader_Authorization=(redacted)", (int)(h - dc), dc);
            json_object_set_new(b, "destination_conf", json_string(tmp));
        }
    }
    char *s = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(b);
    return s;
}

/* One API call: retried on 429 (Retry-After) and 5xx; in a dry run the
 * changing ones are printed, not made. Returns the envelope's result (a new
 * reference; json_null() for an empty one) or NULL after printing why. */
static json_t *call(struct run *r, const char *kind, const char *what, const char *method, const char *path, const json_t *body,
                    enum cf_outcome *oc_out)
{
    int changing = strcmp(method, "GET") != 0;
    if (changing && r->o->dry_run) {
        char *b = redacted(body);
        fprintf(r->out, "would %s %s%s%s\n", method, path, b && *b ? " " : "", b ? b : "");
        free(b);
        if (oc_out) *oc_out = CF_OK;
        return json_pack("{s:s}", "id", "(new)");
    }
    char url[4096];
    snprintf(url, sizeof url, "%s/client/v4%s", r->c->api_base, path);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    enum cf_outcome oc = CF_BAD;
    json_t *env = NULL;
    char msg[300];
    long status = 0;
    for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        struct http_resp resp;
        oc = cf_call(method, url, r->c->api_token, text, &resp, &env, msg, sizeof msg);
        status = resp.status;
        long wait = resp.retry_after_s;
        http_resp_free(&resp);
        if (oc != CF_RATE_LIMIT && oc != CF_RETRY) break;
        if (attempt == MAX_ATTEMPTS) break;
        /* Retry-After when given (bounded), else 1, 2, 4, ... s: one command
         * run by a person, so no jitter. */
        if (oc != CF_RATE_LIMIT || wait < 0) wait = backoff_ms(NULL, attempt, 1000, 60000) / 1000;
        if (wait > 60) wait = 60;
        fprintf(stderr, "synccf: %s: %s; retrying in %ld s\n", what, msg, wait);
        sleep((unsigned)wait);
    }
    if (text) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
    if (oc_out) *oc_out = oc;
    if (oc != CF_OK) {
        if (!(oc == CF_NOT_FOUND && oc_out)) explain(r, kind, what, oc, status, msg); /* a caller asking for the outcome handles 404 */
        return NULL;
    }
    json_t *res = json_incref(json_object_get(env, "result"));
    json_decref(env);
    return res ? res : json_null();
}

/* Our objects are named exactly "synccf" or "synccf-...": a user's
 * "synccfoo" or "synccf_prod" is not ours to change or remove. */
static int ours_name(const char *n)
{
    size_t pl = strlen(CFWIRE_PREFIX);
    return n && strncmp(n, CFWIRE_PREFIX, pl) == 0 && (n[pl] == '\0' || n[pl] == '-');
}

/* A list, all pages of it (page-number pagination where the API has it). */
static json_t *list_all(struct run *r, const char *kind, const char *path, int paged)
{
    json_t *all = json_array();
    for (int page = 1; page <= 100; page++) {
        char p[2048];
        if (paged) snprintf(p, sizeof p, "%s?page=%d&per_page=100", path, page);
        else snprintf(p, sizeof p, "%s", path);
        char what[256];
        snprintf(what, sizeof what, "listing %ss", kind);
        json_t *res = call(r, kind, what, "GET", p, NULL, NULL);
        if (!res) {
            json_decref(all);
            return NULL;
        }
        size_t got = json_array_size(res);
        json_array_extend(all, res);
        json_decref(res);
        if (!paged || got < 100) break;
    }
    return all;
}

json_t *cfwire_parse_list(const char *body, size_t len)
{
    if (len > (32u << 20)) return NULL;
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *res = json_object_get(j, "result");
    if (!json_is_true(json_object_get(j, "success")) || !json_is_array(res)) {
        json_decref(j);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(res, i, o)
    {
        const char *name = json_string_value(json_object_get(o, "name"));
        if (json_is_object(o) && ours_name(name)) json_array_append(out, o);
    }
    json_decref(j);
    return out;
}

/* ---- what is wanted -------------------------------------------------------- */

static int ours(const json_t *o) { return ours_name(json_string_value(json_object_get(o, "name"))); }

static json_t *find_named(json_t *list, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        const char *n = json_string_value(json_object_get(o, "name"));
        if (n && !strcmp(n, name)) return o;
    }
    return NULL;
}

/* A literal glob (no wildcard) names one thing. */
static int literal(const char *s) { return s && *s && !strpbrk(s, "*?["); }

static void add_project(struct cfwire_pages **pp, size_t *n, const char *project, unsigned envs, unsigned events)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*pp)[i].project, project)) {
            (*pp)[i].envs = (*pp)[i].envs && envs ? (*pp)[i].envs | envs : 0;
            (*pp)[i].events = (*pp)[i].events && events ? (*pp)[i].events | events : 0;
            return;
        }
    struct cfwire_pages *p = realloc(*pp, (*n + 1) * sizeof **pp);
    if (!p) return;
    *pp = p;
    p[*n].project = strdup(project);
    p[*n].envs = envs;
    p[*n].events = events;
    if (p[*n].project) (*n)++;
}

/* The Pages projects to be notified about: configured ones, then (unless
 * turned off) those the handlers name: a handler on Pages events whose
 * subject is a literal project name, narrowed by its type and its
 * data.environment match where those are literal. */
static struct cfwire_pages *wanted_pages(const struct config *c, size_t *n)
{
    const struct cfwire_config *w = c->cloudflare;
    struct cfwire_pages *out = NULL;
    *n = 0;
    for (size_t i = 0; w && i < w->npages; i++) add_project(&out, n, w->pages[i].project, w->pages[i].envs, w->pages[i].events);
    if (w && !w->pages_from_handlers) return out;
    for (size_t i = 0; i < c->nhandlers; i++) {
        const struct handler_def *h = &c->handlers[i];
        const char *t = h->match_type;
        if (!literal(h->match_subject) || !norm_valid_pages_project(h->match_subject)) continue;
        if (t && !glob_match(t, "com.cloudflare.pages.deployment.success") && !glob_match(t, "com.cloudflare.pages.deployment.failed") &&
            !glob_match(t, "com.cloudflare.pages.deployment.started"))
            continue;
        if (!t && h->kind != HANDLER_TASK_CACHE) continue; /* "any event" on a subject: only a task-cache rule means Pages */
        unsigned ev = 0, env = 0;
        if (t && glob_match(t, "com.cloudflare.pages.deployment.started")) ev |= CFWIRE_EV_STARTED;
        if (t && glob_match(t, "com.cloudflare.pages.deployment.success")) ev |= CFWIRE_EV_SUCCESS;
        if (t && glob_match(t, "com.cloudflare.pages.deployment.failed")) ev |= CFWIRE_EV_FAILED;
        if (ev == (CFWIRE_EV_STARTED | CFWIRE_EV_SUCCESS | CFWIRE_EV_FAILED)) ev = 0;
        for (size_t k = 0; k < h->nmatch_data; k++) {
            const char *p = h->match_data[k].path, *v = h->match_data[k].value;
            if (strcmp(p, "data.environment") && strcmp(p, "environment")) continue;
            if (v && (!strcmp(v, "ENVIRONMENT_PRODUCTION") || !strcmp(v, "production"))) env = CFWIRE_ENV_PRODUCTION;
            else if (v && (!strcmp(v, "ENVIRONMENT_PREVIEW") || !strcmp(v, "preview"))) env = CFWIRE_ENV_PREVIEW;
        }
        add_project(&out, n, h->match_subject, env, ev);
    }
    return out;
}

static void free_pages(struct cfwire_pages *p, size_t n)
{
    for (size_t i = 0; i < n; i++) free(p[i].project);
    free(p);
}

static json_t *pages_filters(const struct cfwire_pages *p, const char *project_id)
{
    json_t *env = json_array(), *ev = json_array();
    if (!p->envs || (p->envs & CFWIRE_ENV_PRODUCTION)) json_array_append_new(env, json_string("ENVIRONMENT_PRODUCTION"));
    if (!p->envs || (p->envs & CFWIRE_ENV_PREVIEW)) json_array_append_new(env, json_string("ENVIRONMENT_PREVIEW"));
    if (!p->events || (p->events & CFWIRE_EV_STARTED)) json_array_append_new(ev, json_string("EVENT_DEPLOYMENT_STARTED"));
    if (!p->events || (p->events & CFWIRE_EV_SUCCESS)) json_array_append_new(ev, json_string("EVENT_DEPLOYMENT_SUCCESS"));
    if (!p->events || (p->events & CFWIRE_EV_FAILED)) json_array_append_new(ev, json_string("EVENT_DEPLOYMENT_FAILED"));
    return json_pack("{s:[s],s:o,s:o}", "project_id", project_id, "environment", env, "event", ev);
}

/* The Logpush batch size the target can take. */
static size_t target_max(const struct run *r)
{
    const struct cfwire_config *w = r->c->cloudflare;
    size_t m = w && w->target_max ? w->target_max : r->target_is_worker ? WORKER_LOGPUSH_BYTES : r->c->limits.max_decompressed;
    if (m > LOGPUSH_MAX_BYTES) m = LOGPUSH_MAX_BYTES;
    return m;
}

static char *url_encode(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = e ? strdup(e) : NULL;
    curl_free(e);
    return out;
}

/* ---- comparing ------------------------------------------------------------- */

/* Appends field to the drift list when want (if given) differs from have. */
static void cmp(char *drift, size_t n, const char *field, const json_t *want, const json_t *have)
{
    if (!want || json_equal((json_t *)want, (json_t *)have)) return;
    size_t l = strlen(drift);
    snprintf(drift + l, n - l, "%s%s", l ? ", " : "", field);
}

/* A filter map: equal when each wanted list has the same members, and the
 * object holds no other non-empty list. */
static void cmp_filters(char *drift, size_t n, const json_t *want, const json_t *have)
{
    const char *k;
    json_t *v;
    int differs = 0;
    json_object_foreach((json_t *)want, k, v) if (!json_equal(v, json_object_get(have, k))) differs = 1;
    json_object_foreach((json_t *)have, k, v) if (json_array_size(v) && !json_object_get(want, k)) differs = 1;
    if (differs) cmp(drift, n, "filters", json_true(), json_false());
}

static void row(struct run *r, const char *kind, const char *name, const char *state)
{
    if (strcmp(state, "ok") != 0) r->problems++;
    if (r->o->op != CFWIRE_CHECK) return;
    json_array_append_new(r->rows, json_pack("{s:s,s:s,s:s}", "kind", kind, "name", name, "state", state));
}

/* One wanted object against what exists: check reports, setup creates or
 * updates. Returns the object's id (new reference) or NULL. */
static json_t *reconcile(struct run *r, const char *kind, const char *name, json_t *have, const char *drift, const char *failing,
                         const char *create_path, const char *update_method, const char *update_base, json_t *create_body,
                         json_t *update_body)
{
    char state[600], what[300];
    if (r->o->op == CFWIRE_CHECK) {
        if (!have) snprintf(state, sizeof state, "missing");
        else if (*drift) snprintf(state, sizeof state, "drifted: %s", drift);
        else if (failing) snprintf(state, sizeof state, "failing: %s", failing);
        else snprintf(state, sizeof state, "ok");
        row(r, kind, name, state);
        return have ? json_incref(json_object_get(have, "id")) : NULL;
    }
    if (!have) {
        snprintf(what, sizeof what, "creating %s %s", kind, name);
        json_t *res = call(r, kind, what, "POST", create_path, create_body, NULL);
        if (!res) return NULL;
        r->created++;
        fprintf(r->out, "%s %s %s\n", r->o->dry_run ? "to create" : "created", kind, name);
        json_t *id = json_incref(json_object_get(res, "id"));
        json_decref(res);
        return id;
    }
    json_t *id = json_object_get(have, "id");
    if (!*drift) {
        r->unchanged++;
        fprintf(r->out, "ok %s %s%s%s\n", kind, name, failing ? " (Cloudflare reports failures: " : "", failing ? failing : "");
        if (failing) fprintf(r->out, ")\n");
        return json_incref(id);
    }
    char path[2048];
    json_t *idv = id;
    char idbuf[64];
    if (json_is_integer(idv)) snprintf(idbuf, sizeof idbuf, "%" JSON_INTEGER_FORMAT, json_integer_value(idv));
    else snprintf(idbuf, sizeof idbuf, "%s", json_string_value(idv) ? json_string_value(idv) : "");
    snprintf(path, sizeof path, "%s/%s", update_base, idbuf);
    snprintf(what, sizeof what, "updating %s %s", kind, name);
    json_t *res = call(r, kind, what, update_method, path, update_body, NULL);
    if (!res) return NULL;
    json_decref(res);
    r->updated++;
    fprintf(r->out, "%s %s %s (%s)\n", r->o->dry_run ? "to update" : "updated", kind, name, drift);
    return json_incref(id);
}

static void remove_obj(struct run *r, const char *kind, const json_t *o, const char *base)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    json_t *id = json_object_get(o, "id");
    char path[2048], what[300];
    if (json_is_integer(id)) snprintf(path, sizeof path, "%s/%" JSON_INTEGER_FORMAT, base, json_integer_value(id));
    else snprintf(path, sizeof path, "%s/%s", base, json_string_value(id) ? json_string_value(id) : "");
    if (r->o->op == CFWIRE_CHECK) {
        row(r, kind, name, "stale: not in the configuration (setup removes it)");
        return;
    }
    snprintf(what, sizeof what, "removing %s %s", kind, name);
    json_t *res = call(r, kind, what, "DELETE", path, NULL, NULL);
    if (!res) return;
    json_decref(res);
    r->removed++;
    fprintf(r->out, "%s %s %s\n", r->o->dry_run ? "to remove" : "removed", kind, name);
}

/* Removes each object of ours in list but those whose name is in keep (the
 * configuration's; NULL on teardown: none) and the one whose id is keep_id. */
static void remove_ours(struct run *r, const char *kind, const json_t *list, const json_t *keep, const char *base,
                         const char *keep_id)
{
    size_t i, j;
    json_t *o, *k;
    json_array_foreach(list, i, o)
    {
        int wanted = 0;
        json_array_foreach(keep, j, k) if (json_equal(k, json_object_get(o, "name"))) wanted = 1;
        const char *id = json_string_value(json_object_get(o, "id"));
        if (ours(o) && !wanted && !(keep_id && id && !strcmp(id, keep_id))) remove_obj(r, kind, o, base);
    }
}

/* Cloudflare's own report of failed deliveries, when it has one. */
static const char *dest_failing(const json_t *d)
{
    const char *f = json_string_value(json_object_get(d, "last_failure"));
    const char *s = json_string_value(json_object_get(d, "last_success"));
    int64_t fm, sm;
    if (!f || time_parse_rfc3339(f, &fm)) return NULL;
    if (s && !time_parse_rfc3339(s, &sm) && sm >= fm) return NULL;
    return "the last delivery to the destination failed";
}

static const char *job_failing(const json_t *j, char *buf, size_t n)
{
    const char *e = json_string_value(json_object_get(j, "last_error"));
    const char *ok = json_string_value(json_object_get(j, "last_complete"));
    int64_t em, om;
    if (!e || time_parse_rfc3339(e, &em)) return NULL;
    if (ok && !time_parse_rfc3339(ok, &om) && om >= em) return NULL;
    const char *msg = json_string_value(json_object_get(j, "error_message"));
    snprintf(buf, n, "last error %s%s%.200s", e, msg ? ": " : "", msg ? msg : "");
    return buf;
}

/* ---- the three kinds ------------------------------------------------------- */

static int notifications(struct run *r, const char *acct)
{
    const struct config *c = r->c;
    const struct cfwire_config *w = c->cloudflare;
    size_t np = 0;
    struct cfwire_pages *pages = r->o->op == CFWIRE_TEARDOWN ? NULL : wanted_pages(c, &np);
    size_t na = w && r->o->op != CFWIRE_TEARDOWN ? w->nalerts : 0;
    char dbase[512], pbase[512];
    snprintf(dbase, sizeof dbase, "%s/alerting/v3/destinations/webhooks", acct);
    snprintf(pbase, sizeof pbase, "%s/alerting/v3/policies", acct);
    int rc = 0;
    json_t *dests = NULL, *policies = NULL, *dest_id = NULL;
    if (!np && !na && r->o->op != CFWIRE_TEARDOWN) {
        /* Nothing to be notified about: only leftovers of ours to clean. */
    } else if (r->o->op != CFWIRE_TEARDOWN && !c->notify_secret) {
        fprintf(stderr, "synccf: Notifications need a secret: set notify_secret (SYNCCF_NOTIFY_SECRET, notify_secret_file, "
                        "or xplat's CF_WEBHOOK_SECRET), the same as the Worker's NOTIFY_SECRET\n");
        free_pages(pages, np);
        return 2;
    }
    policies = list_all(r, "policy", pbase, 0);
    dests = policies ? list_all(r, "destination", dbase, 0) : NULL;
    if (!policies || !dests) {
        rc = 1;
        goto out;
    }
    if (r->o->op == CFWIRE_TEARDOWN) {
        remove_ours(r, "policy", policies, NULL, pbase, NULL);
        /* notify_webhook_id names the user's own destination (synccf tunnel
         * points it at the tunnel and names it synccf): never removed. */
        remove_ours(r, "destination", dests, NULL, dbase, c->notify_webhook_id);
        goto out;
    }
    json_t *keep = json_array(); /* names wanted */
    if (np || na) {
        char url[2300];
        snprintf(url, sizeof url, "%s/hooks/notifications", r->target);
        json_t *have = find_named(dests, CFWIRE_PREFIX);
        char drift[512] = "";
        json_t *want_url = json_string(url);
        if (have) cmp(drift, sizeof drift, "url", want_url, json_object_get(have, "url"));
        json_t *body = json_pack("{s:s,s:s,s:s}", "name", CFWIRE_PREFIX, "url", url, "secret", c->notify_secret);
        dest_id = reconcile(r, "destination", CFWIRE_PREFIX, have, drift, have ? dest_failing(have) : NULL, dbase, "PUT", dbase, body, body);
        json_decref(body);
        json_decref(want_url);
        json_array_append_new(keep, json_string(CFWIRE_PREFIX));
    }
    /* Policies point at the destination by id; in a check of a missing
     * destination, or a dry run creating it, that id is not known. */
    const char *did = json_string_value(dest_id) ? json_string_value(dest_id) : "(new)";
    for (size_t i = 0; i < np + na; i++) {
        char name[200];
        json_t *filters, *body;
        const char *type;
        if (i < np) {
            snprintf(name, sizeof name, CFWIRE_PREFIX "-pages-%s", pages[i].project);
            type = "pages_event_alert";
            /* The policy filters on the project's id, which only the Pages API knows. */
            char ppath[512], what[200];
            snprintf(ppath, sizeof ppath, "%s/pages/projects/%s", acct, pages[i].project);
            snprintf(what, sizeof what, "reading Pages project %s", pages[i].project);
            enum cf_outcome oc;
            json_t *proj = call(r, "pages", what, "GET", ppath, NULL, &oc);
            const char *pid = json_string_value(json_object_get(proj, "id"));
            if (!pid) {
                if (proj || oc == CF_NOT_FOUND) explain(r, "pages", what, CF_NOT_FOUND, 404, "no such project");
                json_decref(proj);
                rc = 1;
                json_array_append_new(keep, json_string(name)); /* not known now is not unwanted: never removed for it */
                continue;
            }
            filters = pages_filters(&pages[i], pid);
            json_decref(proj);
        } else {
            const struct cfwire_alert *a = &w->alerts[i - np];
            snprintf(name, sizeof name, CFWIRE_PREFIX "-%s", a->name ? a->name : a->type);
            type = a->type;
            filters = a->filters ? json_incref(a->filters) : json_object();
        }
        body = json_pack("{s:s,s:s,s:b,s:{s:[{s:s}]},s:o,s:s}", "name", name, "alert_type", type, "enabled", 1, "mechanisms",
                         "webhooks", "id", did, "filters", filters, "description", "managed by synccf cloudflare setup");
        json_t *have = find_named(policies, name);
        char drift[512] = "";
        if (have) {
            cmp(drift, sizeof drift, "alert_type", json_object_get(body, "alert_type"), json_object_get(have, "alert_type"));
            cmp(drift, sizeof drift, "enabled", json_true(), json_object_get(have, "enabled"));
            cmp_filters(drift, sizeof drift, filters, json_object_get(have, "filters"));
            json_t *hw = json_object_get(json_object_get(have, "mechanisms"), "webhooks");
            json_t *ww = json_object_get(json_object_get(body, "mechanisms"), "webhooks");
            int same = json_array_size(hw) == 1 &&
                       json_equal(json_object_get(json_array_get(hw, 0), "id"), json_object_get(json_array_get(ww, 0), "id"));
            if (!same) cmp(drift, sizeof drift, "mechanisms", json_true(), json_false());
        }
        json_t *id = reconcile(r, "policy", name, have, drift, NULL, pbase, "PUT", pbase, body, body);
        if (!id && r->o->op == CFWIRE_SETUP) rc = 1;
        json_decref(id);
        json_decref(body);
        json_array_append_new(keep, json_string(name));
    }
    /* Ours but no longer wanted: a project or alert taken out of the file.
     * The tunnel's configured destination stays: `synccf tunnel` keeps it
     * pointed at its URL. */
    remove_ours(r, "policy", policies, keep, pbase, NULL);
    remove_ours(r, "destination", dests, keep, dbase, c->notify_webhook_id);
    json_decref(keep);
out:
    json_decref(dest_id);
    json_decref(dests);
    json_decref(policies);
    free_pages(pages, np);
    return rc;
}

/* A reconciler's opening: what is there at <scope>/<path> (written to base
 * for the calls that follow), listed; on teardown it removes all of ours
 * there and returns NULL with *rc 0. NULL with *rc 1: the listing failed. */
static json_t *list_or_remove(struct run *r, const char *kind, const char *scope, const char *path, int paged,
                              char *base, size_t baselen, int *rc)
{
    snprintf(base, baselen, "%s/%s", scope, path);
    json_t *all = list_all(r, kind, base, paged);
    *rc = !all;
    if (all && r->o->op == CFWIRE_TEARDOWN) {
        remove_ours(r, kind, all, NULL, base, NULL);
        json_decref(all);
        return NULL;
    }
    return all;
}

static int logpush_scope(struct run *r, const char *scope_path, const char *zone)
{
    const struct cfwire_config *w = r->c->cloudflare;
    char base[512];
    int rc;
    json_t *jobs = list_or_remove(r, "logpush", scope_path, "logpush/jobs", 0, base, sizeof base, &rc);
    if (!jobs) return rc;
    json_t *keep = json_array();
    char *tok = url_encode(r->c->hook_token);
    if (!keep || !tok) {
        fprintf(stderr, "synccf: logpush: out of memory\n");
        rc = 1;
    }
    for (size_t n = 0; w && n < w->nlogpush && tok && keep; n++) {
        const struct cfwire_logpush *l = &w->logpush[n];
        if (!!zone != !!l->zone_id || (zone && strcmp(zone, l->zone_id))) continue;
        char name[128], dest[4200], base_url[2300];
        /* Cloudflare's job names are [a-zA-Z0-9.-]; datasets have '_'. A job
         * under the old spelling (synccf-http_requests) is still ours: not in
         * keep, it is replaced by the new name and then removed. */
        snprintf(name, sizeof name, CFWIRE_PREFIX "-%s", l->dataset);
        for (char *p = name; *p; p++)
            if (*p == '_') *p = '-';
        /* Kept before anything can skip it: a job the file still lists is
         * never removed, even when this pass cannot update it. */
        json_array_append_new(keep, json_string(name));
        snprintf(base_url, sizeof base_url, "%s/hooks/logpush/%s", r->target, l->dataset);
        snprintf(dest, sizeof dest, "%s?header_Authorization=Bearer%%20%s", base_url, tok);
        size_t maxb = l->max_upload_bytes ? l->max_upload_bytes : target_max(r);
        if (maxb > target_max(r)) {
            fprintf(stderr, "synccf: logpush %s: max_upload_bytes %zu is more than the target accepts (%zu): lower it, or raise "
                            "cloudflare.target_max_body with the Worker's MAX_DECOMPRESSED\n", l->dataset, maxb, target_max(r));
            rc = 2;
            continue;
        }
        json_t *opts = json_pack("{s:s,s:s}", "output_type", "ndjson", "timestamp_format", "rfc3339");
        if (l->fields) {
            json_t *f = json_array();
            for (char **p = l->fields; *p; p++) json_array_append_new(f, json_string(*p));
            json_object_set_new(opts, "field_names", f);
        }
        json_t *upd = json_pack("{s:s,s:b,s:o,s:I}", "destination_conf", dest, "enabled", 1, "output_options", opts,
                                "max_upload_bytes", (json_int_t)maxb);
        if (l->filter) json_object_set_new(upd, "filter", json_string(l->filter));
        if (l->max_upload_records) json_object_set_new(upd, "max_upload_records", json_integer(l->max_upload_records));
        if (l->max_upload_interval_s) json_object_set_new(upd, "max_upload_interval_seconds", json_integer(l->max_upload_interval_s));
        json_t *create = json_deep_copy(upd);
        json_object_set_new(create, "name", json_string(name));
        json_object_set_new(create, "dataset", json_string(l->dataset));
        json_t *have = find_named(jobs, name);
        char drift[512] = "", fbuf[300];
        if (have) {
            /* The URL's token is not compared: Cloudflare may not return it as sent. */
            const char *hd = json_string_value(json_object_get(have, "destination_conf"));
            size_t bl = strlen(base_url);
            if (!hd || strncmp(hd, base_url, bl) != 0 || (hd[bl] != '?' && hd[bl] != '\0') || !strstr(hd, "header_Authorization="))
                cmp(drift, sizeof drift, "destination_conf", json_true(), json_false());
            cmp(drift, sizeof drift, "dataset", json_object_get(create, "dataset"), json_object_get(have, "dataset"));
            cmp(drift, sizeof drift, "enabled", json_true(), json_object_get(have, "enabled"));
            cmp(drift, sizeof drift, "max_upload_bytes", json_object_get(upd, "max_upload_bytes"), json_object_get(have, "max_upload_bytes"));
            cmp(drift, sizeof drift, "max_upload_records", json_object_get(upd, "max_upload_records"), json_object_get(have, "max_upload_records"));
            cmp(drift, sizeof drift, "max_upload_interval_seconds", json_object_get(upd, "max_upload_interval_seconds"),
                json_object_get(have, "max_upload_interval_seconds"));
            cmp(drift, sizeof drift, "output_options.field_names", json_object_get(opts, "field_names"),
                json_object_get(json_object_get(have, "output_options"), "field_names"));
            if (json_object_get(have, "filter")) {
                json_t *hf = json_loads(json_string_value(json_object_get(have, "filter")) ? json_string_value(json_object_get(have, "filter")) : "null", JSON_DECODE_ANY, NULL);
                json_t *wf = l->filter ? json_loads(l->filter, 0, NULL) : json_null();
                if (!json_equal(hf ? hf : json_null(), wf ? wf : json_null()) && !(json_is_null(wf) && (!hf || json_is_null(hf))))
                    cmp(drift, sizeof drift, "filter", json_true(), json_false());
                json_decref(hf);
                json_decref(wf);
            }
        }
        json_t *id = reconcile(r, "logpush", name, have, drift, have ? job_failing(have, fbuf, sizeof fbuf) : NULL, base, "PUT",
                               base, create, upd);
        if (!id && r->o->op == CFWIRE_SETUP) rc = rc ? rc : 1;
        json_decref(id);
        json_decref(create);
        json_decref(upd);
    }
    if (tok) {
        explicit_bzero(tok, strlen(tok));
        free(tok);
    }
    /* After an error the pass may not have seen every job it should keep:
     * removing nothing is the safe side (the next clean setup tidies up). */
    if (rc == 0) remove_ours(r, "logpush", jobs, keep, base, NULL);
    json_decref(keep);
    json_decref(jobs);
    return rc;
}

/* The zones setup wired Logpush jobs in, one id a line in
 * <state_dir>/cloudflare-zones: Cloudflare can only list jobs per zone, so a
 * zone dropped from the file is found here. Adds each id not yet in zones. */
static void zones_read(const struct run *r, json_t *zones)
{
    char path[4200];
    if (!r->o->state_dir || snprintf(path, sizeof path, "%s/cloudflare-zones", r->o->state_dir) >= (int)sizeof path) return;
    FILE *f = fopen(path, "re");
    if (!f) return;
    char line[128];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strlen(line) != 32 || !str_of_class(line, 32, "abcdef0123456789", 32)) continue;
        size_t i;
        json_t *z;
        int seen = 0;
        json_array_foreach(zones, i, z) seen |= !strcmp(json_string_value(z), line);
        if (!seen) json_array_append_new(zones, json_string(line));
    }
    fclose(f);
}

/* Records the first n zones (none: the file is removed). Written to a
 * temporary file and renamed, so a crash leaves the old list or the new. A
 * missing state directory is not created: nothing is recorded then. */
static void zones_write(const struct run *r, const json_t *zones, size_t n)
{
    char path[4200], tmp[4300];
    if (!r->o->state_dir || r->o->dry_run || snprintf(path, sizeof path, "%s/cloudflare-zones", r->o->state_dir) >= (int)sizeof path)
        return;
    if (!n) {
        if (unlink(path) != 0 && errno != ENOENT) fprintf(stderr, "synccf: cannot remove %s: %s\n", path, strerror(errno));
        return;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno != ENOENT) fprintf(stderr, "synccf: cannot record the Logpush zones in %s: %s\n", tmp, strerror(errno));
        return;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return;
    }
    for (size_t i = 0; i < n; i++) fprintf(f, "%s\n", json_string_value(json_array_get(zones, i)));
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "synccf: cannot record the Logpush zones in %s: %s\n", path, strerror(errno));
        unlink(tmp);
    }
}

static int logpush(struct run *r, const char *acct)
{
    const struct cfwire_config *w = r->c->cloudflare;
    if (r->o->op != CFWIRE_TEARDOWN && w && w->nlogpush && !r->c->hook_token) {
        fprintf(stderr, "synccf: Logpush needs a token: set hook_token (SYNCCF_HOOK_TOKEN, hook_token_file, or xplat's SYNC_TOKEN), "
                        "the same as the Worker's HOOK_TOKEN\n");
        return 2;
    }
    /* The account's jobs are always read: leftovers of ours are removed even
     * when the file no longer lists any. */
    int rc = logpush_scope(r, acct, NULL);
    /* The configured zones, then those recorded by an earlier setup: a job
     * left in a zone the file no longer names is removed (or shown stale). */
    json_t *zones = json_array();
    if (!zones) {
        fprintf(stderr, "synccf: logpush: out of memory\n");
        return 1;
    }
    for (size_t i = 0; w && i < w->nlogpush; i++) {
        const char *z = w->logpush[i].zone_id;
        if (!z) continue;
        int seen = 0;
        for (size_t k = 0; k < i; k++) seen |= w->logpush[k].zone_id && !strcmp(w->logpush[k].zone_id, z);
        if (!seen) json_array_append_new(zones, json_string(z));
    }
    size_t nconf = json_array_size(zones);
    zones_read(r, zones);
    /* Recorded before any job is created, so an interrupted setup still
     * remembers where it may have left one. */
    if (r->o->op == CFWIRE_SETUP && nconf) zones_write(r, zones, json_array_size(zones));
    size_t i;
    json_t *zv;
    json_array_foreach(zones, i, zv) {
        char zp[128];
        snprintf(zp, sizeof zp, "/zones/%s", json_string_value(zv));
        int zrc = logpush_scope(r, zp, json_string_value(zv));
        if (zrc > rc) rc = zrc;
    }
    /* Once clean, only the zones the file names are left to remember. */
    if (rc == 0 && r->o->op == CFWIRE_SETUP) zones_write(r, zones, nconf);
    if (rc == 0 && r->o->op == CFWIRE_TEARDOWN) zones_write(r, zones, 0);
    json_decref(zones);
    return rc;
}

/* The field of a source that names its resource, per Cloudflare's API. */
static const char *resource_field(const char *source)
{
    if (!strcmp(source, "workersBuilds.worker")) return "worker_name";
    if (!strcmp(source, "workers.script")) return "script_tag";
    if (!strcmp(source, "workflows.workflow")) return "workflow_name";
    if (!strcmp(source, "workersAi.model")) return "model_name";
    return NULL;
}

static int subscriptions(struct run *r, const char *acct)
{
    const struct cfwire_config *w = r->c->cloudflare;
    size_t ns = w && r->o->op != CFWIRE_TEARDOWN ? w->nsubs : 0;
    if (ns && !r->c->queue_id) {
        fprintf(stderr, "synccf: event subscriptions deliver into a Queue: set queue_id (SYNCCF_QUEUE_ID) to the Queue synccf "
                        "consumes\n");
        return 2;
    }
    char base[512];
    int rc;
    json_t *subs = list_or_remove(r, "subscription", acct, "event_subscriptions/subscriptions", 1, base, sizeof base, &rc);
    if (!subs) return rc;
    json_t *keep = json_array();
    for (size_t n = 0; n < ns; n++) {
        const struct cfwire_sub *s = &w->subs[n];
        char name[400];
        int k = snprintf(name, sizeof name, CFWIRE_PREFIX "-%s%s%s", s->source, s->resource ? "-" : "", s->resource ? s->resource : "");
        for (int q = 0; q < k && q < (int)sizeof name; q++)
            if (name[q] == '.') name[q] = '-';
        json_t *events = json_array();
        for (char **p = s->events; *p; p++) json_array_append_new(events, json_string(*p));
        json_t *src = json_pack("{s:s}", "type", s->source);
        const char *rf = resource_field(s->source);
        if (rf && s->resource) json_object_set_new(src, rf, json_string(s->resource));
        json_t *dest = json_pack("{s:s,s:s}", "type", "queues.queue", "queue_id", r->c->queue_id);
        json_t *upd = json_pack("{s:s,s:b,s:O,s:O}", "name", name, "enabled", 1, "events", events, "destination", dest);
        json_t *create = json_pack("{s:s,s:b,s:o,s:o,s:o}", "name", name, "enabled", 1, "source", src, "events", events, "destination", dest);
        json_t *have = find_named(subs, name);
        char drift[512] = "";
        if (have) {
            cmp(drift, sizeof drift, "source", json_object_get(create, "source"), json_object_get(have, "source"));
            cmp(drift, sizeof drift, "events", json_object_get(create, "events"), json_object_get(have, "events"));
            cmp(drift, sizeof drift, "enabled", json_true(), json_object_get(have, "enabled"));
            cmp(drift, sizeof drift, "destination", json_object_get(create, "destination"), json_object_get(have, "destination"));
        }
        if (have && strstr(drift, "source")) {
            /* A subscription's source cannot be changed: a new one replaces it. */
            if (r->o->op == CFWIRE_SETUP) {
                remove_obj(r, "subscription", have, base);
                have = NULL;
            }
        }
        json_t *id = reconcile(r, "subscription", name, have, drift, NULL, base, "PATCH", base, create, upd);
        if (!id && r->o->op == CFWIRE_SETUP) rc = 1;
        json_decref(id);
        json_decref(create);
        json_decref(upd);
        json_array_append_new(keep, json_string(name));
    }
    remove_ours(r, "subscription", subs, keep, base, NULL);
    json_decref(keep);
    json_decref(subs);
    return rc;
}

/* ---- the target -------------------------------------------------------------- */

/* cloudflare.target, else worker_url, else the Worker xplat names
 * (CLOUDFLARE_WORKER_NAME on the account's workers.dev subdomain), else
 * xplat's CLOUDFLARE_SYNC_ENDPOINT (a receiver reached directly). */
static int resolve_target(struct run *r, const char *acct)
{
    const struct config *c = r->c;
    const struct cfwire_config *w = c->cloudflare;
    const char *wn = getenv("CLOUDFLARE_WORKER_NAME"), *se = getenv("CLOUDFLARE_SYNC_ENDPOINT");
    if (w && w->target) snprintf(r->target, sizeof r->target, "%s", w->target);
    else if (c->worker_url) snprintf(r->target, sizeof r->target, "%s", c->worker_url);
    else if (wn && *wn && str_of_class(wn, strlen(wn), "abcdefghijklmnopqrstuvwxyz0123456789-", 63)) {
        char p[256];
        snprintf(p, sizeof p, "%s/workers/subdomain", acct);
        json_t *res = call(r, "workers", "reading the account's workers.dev subdomain", "GET", p, NULL, NULL);
        const char *sub = json_string_value(json_object_get(res, "subdomain"));
        if (sub) snprintf(r->target, sizeof r->target, "https://%s.%s.workers.dev", wn, sub);
        json_decref(res);
        if (!sub) return -1;
        r->target_is_worker = 1;
    } else if (se && *se && (!strncmp(se, "https://", 8) || !strncmp(se, "http://", 7))) {
        snprintf(r->target, sizeof r->target, "%s", se);
    } else {
        fprintf(stderr, "synccf: no target: set cloudflare.target or worker_url (SYNCCF_WORKER_URL) to where Cloudflare "
                        "should send events (deploy the Worker first: cd worker && npm run deploy)\n");
        return -2;
    }
    size_t n = strlen(r->target);
    while (n > 8 && r->target[n - 1] == '/') r->target[--n] = '\0';
    /* The Worker unless the target is the receiver's own address. */
    if (!r->target_is_worker) r->target_is_worker = !(w && w->target) || (c->worker_url && !strcmp(r->target, c->worker_url)) ||
                                                    strstr(r->target, ".workers.dev") != NULL;
    if (se && *se && !(w && w->target) && !c->worker_url && !(wn && *wn)) r->target_is_worker = 0;
    return 0;
}

static void check_target(struct run *r)
{
    char url[2300];
    snprintf(url, sizeof url, "%s/healthz", r->target);
    struct http_resp resp;
    const char *h[] = {NULL};
    int rc = http_request("GET", url, h, NULL, 65536, 10000, &resp);
    char state[400];
    if (rc != 0) snprintf(state, sizeof state, "failing: %.300s", resp.error);
    else if (resp.status != 200) snprintf(state, sizeof state, "failing: HTTP %ld", resp.status);
    else snprintf(state, sizeof state, "ok");
    http_resp_free(&resp);
    row(r, "target", url, state);
}

int cfwire_run(const struct config *c, const struct cfwire_opts *o)
{
    struct run r = {.c = c, .o = o, .out = o->out ? o->out : stdout};
    if (!c->api_token || !c->account_id) {
        fprintf(stderr, "synccf: set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID (or api_token_file and account_id in the "
                        "file; xplat's CF_API_TOKEN and CF_ACCOUNT_ID are read too)\n");
        return 2;
    }
    if (!str_of_class(c->account_id, strlen(c->account_id), "abcdefABCDEF0123456789", 64)) {
        fprintf(stderr, "synccf: account id '%s' is not an account id (hex digits)\n", c->account_id);
        return 2;
    }
    char acct[128];
    snprintf(acct, sizeof acct, "/accounts/%s", c->account_id);
    if (o->op != CFWIRE_TEARDOWN) {
        int t = resolve_target(&r, acct);
        if (t == -2) return 2;
        if (t) return 1;
    }
    r.rows = json_array();
    if (o->op == CFWIRE_CHECK) check_target(&r);
    int rc = notifications(&r, acct);
    int k = logpush(&r, acct);
    if (k > rc) rc = k;
    k = subscriptions(&r, acct);
    if (k > rc) rc = k;
    if (o->op == CFWIRE_CHECK) {
        if (o->json) {
            char *s = json_dumps(r.rows, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            fprintf(r.out, "%s\n", s ? s : "[]");
            free(s);
        } else {
            size_t i;
            json_t *row_;
            fprintf(r.out, "%-13s %-40s %s\n", "KIND", "NAME", "STATE");
            json_array_foreach(r.rows, i, row_)
                fprintf(r.out, "%-13s %-40s %s\n", json_string_value(json_object_get(row_, "kind")),
                        json_string_value(json_object_get(row_, "name")), json_string_value(json_object_get(row_, "state")));
        }
    } else {
        fprintf(r.out, "%s%s: %d created, %d updated, %d removed, %d unchanged%s\n", o->dry_run ? "dry run: " : "",
                o->op == CFWIRE_SETUP ? "setup" : "teardown", r.created, r.updated, r.removed, r.unchanged,
                r.problems ? " (with errors: run it again once fixed)" : "");
    }
    json_decref(r.rows);
    if (rc == 2) return 2;
    return rc || r.problems ? 1 : 0;
}

json_t *cfwire_config_json(const struct config *c)
{
    const struct cfwire_config *w = c->cloudflare;
    size_t np = 0;
    struct cfwire_pages *pages = wanted_pages(c, &np);
    json_t *pj = json_array();
    for (size_t i = 0; i < np; i++) {
        json_t *f = pages_filters(&pages[i], "(project id)");
        json_object_del(f, "project_id");
        json_object_set_new(f, "project", json_string(pages[i].project));
        json_array_append_new(pj, f);
    }
    free_pages(pages, np);
    json_t *aj = json_array(), *lj = json_array(), *sj = json_array();
    for (size_t i = 0; w && i < w->nalerts; i++)
        json_array_append_new(aj, json_pack("{s:s,s:s,s:O?}", "type", w->alerts[i].type, "name",
                                            w->alerts[i].name ? w->alerts[i].name : w->alerts[i].type, "filters", w->alerts[i].filters));
    for (size_t i = 0; w && i < w->nlogpush; i++) {
        const struct cfwire_logpush *l = &w->logpush[i];
        json_t *f = json_array();
        for (char **p = l->fields; p && *p; p++) json_array_append_new(f, json_string(*p));
        json_array_append_new(lj, json_pack("{s:s,s:s?,s:o,s:s?,s:I,s:I,s:I}", "dataset", l->dataset, "zone_id", l->zone_id, "fields", f,
                                            "filter", l->filter, "max_upload_bytes", (json_int_t)l->max_upload_bytes,
                                            "max_upload_records", (json_int_t)l->max_upload_records, "max_upload_interval_s",
                                            (json_int_t)l->max_upload_interval_s));
    }
    for (size_t i = 0; w && i < w->nsubs; i++) {
        json_t *e = json_array();
        for (char **p = w->subs[i].events; p && *p; p++) json_array_append_new(e, json_string(*p));
        json_array_append_new(sj, json_pack("{s:s,s:s?,s:o}", "source", w->subs[i].source, "resource", w->subs[i].resource, "events", e));
    }
    return json_pack("{s:s?,s:I,s:o,s:o,s:o,s:o}", "target", w && w->target ? w->target : c->worker_url, "target_max_body",
                     (json_int_t)(w ? w->target_max : 0), "pages", pj, "alerts", aj, "logpush", lj, "subscriptions", sj);
}
