/* cfwire.h -- `synccf cloudflare setup | check | teardown`: the Cloudflare
 * objects that make Cloudflare send what the handlers need (a Notifications
 * webhook destination and its policies, Logpush jobs, Queue event
 * subscriptions), their `cloudflare:` configuration section, and the calls
 * that create, compare and remove them. */
#ifndef SYNCCF_CFWIRE_H
#define SYNCCF_CFWIRE_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

struct config;

/* Every object synccf creates is named with this prefix; the only ones it
 * ever updates or deletes. */
#define CFWIRE_PREFIX "synccf"

/* Pages deployments: a pages_event_alert policy per project. */
#define CFWIRE_ENV_PRODUCTION 1u
#define CFWIRE_ENV_PREVIEW 2u
#define CFWIRE_EV_STARTED 1u
#define CFWIRE_EV_SUCCESS 2u
#define CFWIRE_EV_FAILED 4u

struct cfwire_pages {
    char *project;
    unsigned envs, events; /* masks; 0 = all */
};

struct cfwire_alert {
    char *type;    /* alert_type */
    char *name;    /* policy name suffix; default the type */
    json_t *filters; /* object of string lists, or NULL */
};

struct cfwire_logpush {
    char *dataset;
    char *zone_id; /* NULL: an account-scoped job */
    char **fields; /* NULL-terminated; NULL: the dataset's defaults */
    char *filter;  /* Logpush filter JSON text, or NULL */
    size_t max_upload_bytes;          /* 0: what the target accepts */
    unsigned max_upload_records;      /* 0: Cloudflare's default */
    unsigned max_upload_interval_s;   /* 0: Cloudflare's default */
};

struct cfwire_sub {
    char *source;   /* workersBuilds.worker, workers.script, ... */
    char *resource; /* the source's worker_name / script_tag / workflow_name / ..., or NULL */
    char **events;  /* NULL-terminated */
};

struct cfwire_config {
    char *target;          /* where Cloudflare sends; NULL: worker_url */
    size_t target_max;     /* largest Logpush batch the target takes; 0: derived */
    int pages_from_handlers; /* derive Pages projects from the handlers (default on) */
    struct cfwire_pages *pages;
    size_t npages;
    struct cfwire_alert *alerts;
    size_t nalerts;
    struct cfwire_logpush *logpush;
    size_t nlogpush;
    struct cfwire_sub *subs;
    size_t nsubs;
};

/* Reads the `cloudflare:` section (a libyaml document and mapping node);
 * errors name the file, line and key like the rest of the configuration. */
int cfwire_config_parse(struct cfwire_config **out, void *yaml_doc, void *yaml_node, const char *file, char *err,
                        size_t errlen);
void cfwire_config_free(struct cfwire_config *w);
/* The section as `config check` shows it, with the defaults the handlers
 * imply filled in. */
json_t *cfwire_config_json(const struct config *c);

/* What the command was asked to do. */
enum cfwire_op { CFWIRE_SETUP, CFWIRE_CHECK, CFWIRE_TEARDOWN };

struct cfwire_opts {
    enum cfwire_op op;
    int dry_run; /* setup/teardown: print the changing calls, make none */
    int json;    /* check: JSON rows */
    FILE *out;
    /* An existing directory where setup records the zones it wired Logpush
     * jobs in (cloudflare-zones), so a zone dropped from the file is still
     * visited; NULL or absent: only the configured zones are. */
    const char *state_dir;
};

/* Runs op against Cloudflare's API for configuration c. Returns 0 when all
 * is done (check: all ok), 1 when something is not (printed, with what to
 * do), 2 for a configuration that cannot be wired (printed). */
int cfwire_run(const struct config *c, const struct cfwire_opts *o);

/* For tests and fuzzing: reads one v4 list answer (an envelope) into the
 * objects it holds; NULL when it is not one. */
json_t *cfwire_parse_list(const char *body, size_t len);

#endif
