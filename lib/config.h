/* config.h -- synccf's settings: defaults, the YAML file, the environment.
 *
 * Precedence is flag > environment > file > default: config_defaults(), then
 * config_load() for the file, then config_env(), then the caller's flags.
 * The scalar settings, their flags and variables are one table,
 * config_settings[]; the modes are SYNCCF_MODES. */
#ifndef SYNCCF_CONFIG_H
#define SYNCCF_CONFIG_H

#include <stddef.h>

#include "handler.h"
#include "retention.h"
#include "route.h"
#include "server.h"

struct cfwire_config;

/* The modes `synccf run` knows, named in this one place: X(ENUM, name),
 * separated by SEP. The enum, the names, the usage line and the error all
 * come from it. */
#define SYNCCF_MODES(X, SEP) X(WORKER, worker) SEP X(QUEUE, queue) SEP X(TUNNEL, tunnel) SEP X(POLL, poll) SEP X(HYBRID, hybrid)
#define SYNCCF_MODE_ENUM_(E, s) MODE_##E
#define SYNCCF_MODE_NAME_(E, s) #s
#define SYNCCF_COMMA_ ,
#define SYNCCF_BAR_ "|"
/* "worker|queue|tunnel|poll|hybrid", for usage lines. */
#define SYNCCF_MODE_LIST SYNCCF_MODES(SYNCCF_MODE_NAME_, SYNCCF_BAR_)

/* MODE_AUTO: none set (config_mode chooses). */
enum run_mode { MODE_AUTO, SYNCCF_MODES(SYNCCF_MODE_ENUM_, SYNCCF_COMMA_) };

/* A mode's name; NULL for MODE_AUTO. */
const char *mode_name(enum run_mode m);
/* The mode of that name: 0, or -1 when there is none. */
int mode_parse(const char *name, enum run_mode *m);
/* "worker, queue, tunnel, poll or hybrid" into out, for messages. */
void mode_choices(char *out, size_t n);

struct config {
    char *file; /* where it was loaded from, for messages */
    enum run_mode mode; /* MODE_AUTO: see config_mode */
    char *state_dir;
    char *listen;
    char *worker_url;
    char *push_secret, *notify_secret, *hook_token, *pull_token;
    char **filters; /* Logpush record filters, NULL-terminated */
    struct server_limits limits; /* limits: what the receiver takes (lib/server.h) */
    unsigned heartbeat_s; /* the Worker's SSE heartbeat period */
    unsigned failover_ms;    /* hybrid: the Worker stream down this long, polling takes over */
    int status_page;         /* GET / for loopback clients */
    char *cloudflared;       /* binary; NULL = from PATH */
    char *tunnel_token;      /* named tunnel; NULL = quick tunnel */
    char *notify_webhook_id; /* Notifications destination to point at the tunnel */

    /* Cloudflare's API: the poller and the queue consumer. */
    char *api_base, *api_token, *account_id, *queue_id;
    unsigned poll_interval_ms, poll_overlap_ms, poll_max_pages;
    char **pages_projects; /* the poller also reads these projects' deployments; NULL-terminated */
    int poll_audit;        /* the poller reads the audit log (off: Pages deployments only) */
    unsigned queue_batch, queue_visibility_ms, queue_idle_min_ms, queue_idle_max_ms;

    unsigned max_attempts;   /* a handler run is given up after this many failures */
    unsigned backoff_ms;     /* first retry delay; doubles each time, with jitter */
    unsigned max_backoff_ms;
    unsigned concurrency;    /* handler runs at once */

    struct cfwire_config *cloudflare; /* the `cloudflare:` section (lib/cfwire_config.c), or NULL */
    unsigned metrics_max_series; /* /metrics series per input-fed label set; beyond, "other" */
    struct retention_config retention; /* retention: (lib/retention.c) */

    struct handler_def *handlers; /* as loaded; router_publish() makes them live */
    size_t nhandlers;
    struct router router; /* the live handlers (lib/route.c) */
};

/* ---- the settings table (lib/config.c): one line per scalar setting -------- */

enum setting_type {
    SET_STR,       /* char *; "${NAME}" reads the environment */
    SET_PATH,      /* char *; "~/" is $HOME */
    SET_URL,       /* char *; a trailing /client/v4 dropped */
    SET_SECRET,    /* char *; redacted, no flag, and a <key>_file setting */
    SET_BOOL,      /* int */
    SET_UINT,      /* unsigned, min..max */
    SET_MS,        /* unsigned: a duration in milliseconds */
    SET_SECONDS,   /* unsigned: a duration in whole seconds (at least 1) */
    SET_SIZE,      /* size_t: 512k, 8M, 1G */
    SET_MODE,      /* enum run_mode */
    SET_LIMIT_MS,    /* int64_t: a retention limit, a duration up to days (0: none) */
    SET_LIMIT_COUNT, /* int64_t: a retention limit, a number of events (0: none) */
    SET_LIMIT_BYTES, /* int64_t: a retention limit, a size (0: none) */
};

struct setting {
    const char *key;        /* the file's key; "section.name" inside a section */
    enum setting_type type;
    size_t off;             /* the field in struct config */
    unsigned min, max;      /* SET_UINT */
    const char *def;        /* the default, as the file would write it; NULL: unset */
    const char *show;       /* its name in `config check` ("poll.interval_ms"); NULL: not shown */
    const char *env;        /* the variable config_env reads as it is (no checks); NULL: none */
};

/* Ends with a NULL key. */
extern const struct setting config_settings[];
/* s's value in c as `config check` shows it: secrets redacted. */
json_t *config_setting_json(const struct config *c, const struct setting *s);
/* SYNCCF_<KEY> for a setting's key: dots and letters as SYNCCF_LIMITS_MAX_BODY. */
void config_env_name(const char *key, char *out, size_t n);
/* The flag of a setting's key (--limits-max-body); 0 when it has none (a
 * secret, or no such setting). */
int config_flag_name(const char *key, char *out, size_t n);

void config_defaults(struct config *c);
/* Reads a synccf.yaml, or the sync.cloudflare section of an xplat.yaml.
 * Errors name the file, line and key. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
/* Applies SYNCCF_* environment variables (and the secrets from them). */
void config_env(struct config *c);

/* The state directory, decided here for every command and the library:
 * flag (NULL: none) > SYNCCF_STATE > file's state (file NULL: none; read
 * only when it decides) > ~/.xplat/cache/synccf. 1 when a flag or the
 * variable named it (it beats the file), 0 otherwise, -1 with err when the
 * file cannot be read. */
int config_state_dir(const char *flag, const char *file, char *out, size_t n, char *err, size_t errlen);

/* One setting by its file key ("mode", "limits.max_body"), checked exactly as
 * the file's would be; origin names it in errors (a flag, a variable). */
int config_set(struct config *c, const char *key, const char *value, const char *origin, char *err, size_t errlen);
/* Every scalar setting from SYNCCF_<KEY> (dots as _): SYNCCF_LIMITS_MAX_BODY. */
int config_env_all(struct config *c, char *err, size_t errlen);
/* Appends a copy of value to a NULL-terminated list (NULL: an empty one). */
void config_list_add(char ***list, const char *value);
/* The mode `synccf run` starts: the one set, else worker when worker_url is
 * set, else tunnel. */
enum run_mode config_mode(const struct config *c);
/* Appends a Pages project whose deployments the poller reads (checked). */
int config_add_pages_project(struct config *c, const char *name, char *err, size_t errlen);
/* The setting a name stands for: itself, or the one of that name within a
 * section ("max_body" -> "limits.max_body"); an unknown name is returned as
 * it is, for config_set to refuse. */
const char *config_setting(const char *name);
/* The setting a flag names (--limits-max-body), or NULL. */
const char *config_flag_key(const char *flag);
void config_free(struct config *c);

/* "90", "500ms", "30s", "5m", "1h" -> milliseconds; "1M"-style sizes -> bytes. */
int parse_duration_ms(const char *s, unsigned long long *ms);
int parse_size(const char *s, size_t *out);

#endif
