/* handler.h -- what a handler is given and what it reports back.
 *
 * A handler run is one attempt of one handler on one event. It reports
 * success or failure, a message, and details worth keeping (the files it
 * invalidated, the exit status and the tail of the output), which the
 * dispatcher records with the run. */
#ifndef SYNCCF_HANDLER_H
#define SYNCCF_HANDLER_H

#include <jansson.h>
#include <stddef.h>

#define HANDLER_OUTPUT_TAIL 4096

struct handler_result {
    int ok;             /* 1 success, 0 failure (retried with backoff) */
    int permanent;      /* with ok == 0: retrying cannot help (bad config) */
    char error[256];    /* why it failed, for status and logs */
    json_t *detail;     /* owned by the result: e.g. {"removed":[...]} or {"exit":0,"output":"..."} */
};

void handler_result_free(struct handler_result *r);

/* ---- task-cache: go-task (Taskfile) cache invalidation --------------------- */

enum taskcache_method { TASKCACHE_CHECKSUM, TASKCACHE_TIMESTAMP };

struct taskcache_rule {
    char *dir;          /* the Taskfile's directory (absolute) */
    char *temp_dir;     /* go-task's --temp-dir: absolute, ~/, or relative to dir; NULL = as go-task finds it */
    char *remote_cache_dir; /* go-task's --remote-cache-dir; NULL = as go-task finds it */
    char *taskfile;     /* the Taskfile (absolute or relative to dir); NULL = go-task's default names in dir */
    char **env;         /* "NAME=value" the rule sets for go-task (TASK_TEMP_DIR, HOME...); others from the daemon */

    /* Remote Taskfile cache (<temp>/remote/) */
    int remote;         /* invalidate cached remote Taskfiles at all */
    int remote_all;     /* all: true -- remove the whole remote cache, as xplat did */
    int remote_checksum;/* also remove <key>.checksum (the user's trust decision) */
    char **hosts;       /* extra host globs; NULL-terminated, may be NULL */
    char **includes;    /* namespaces of the Taskfile's includes: whose cache to drop for any event */

    /* Task fingerprints (<temp>/checksum/<name>, <temp>/timestamp/<name>) */
    char **tasks;       /* task names; NULL-terminated, may be NULL */
    int all_tasks;      /* every fingerprint in the directory */
    enum taskcache_method method;
    char **generates;   /* method timestamp: globs (relative to dir) of the tasks' generated files */
};

/* Invalidates what rule names for event ev (a normalized CloudEvent: a Pages
 * deployment's subject is its project, whose <project>.pages.dev host and
 * preview subdomains are matched). Idempotent; a missing file is success;
 * never touches anything outside go-task's cache directories (or, for
 * generates, outside dir). Finds those directories as go-task does (rule,
 * then TASK_* environment, then taskrc files; docs/task-cache.md).
 * detail: {"removed":[...],"aged":[...],"remote":"exact"|"prefix"|"all"|"none",
 *          "fingerprint_dir":..., "remote_dir":...} */
void taskcache_run(const struct taskcache_rule *rule, const json_t *ev, struct handler_result *res);

/* Where go-task keeps the fingerprints and the remote cache for rule
 * (the latter ending in "/remote"). 0, or -1 with why. */
int taskcache_dirs(const struct taskcache_rule *rule, char *fp, size_t fpn, char *remote, size_t rn, char *why, size_t whyn);

/* go-task's file name for a task's fingerprint (v3.52.0 and later): every
 * character outside [[:alnum:]] becomes '-'. out must hold strlen(name)+1
 * bytes. gotask.h has both go-task spellings. */
void taskcache_normalize_name(const char *name, char *out);

/* ---- exec: a command with the event on stdin ------------------------------ */

struct exec_rule {
    char **argv;        /* NULL-terminated; argv[0] absolute or found in PATH */
    unsigned timeout_ms;
    char *cwd;          /* may be NULL */
};

/* Runs argv without a shell, event JSON on stdin, SYNCCF_EVENT_ID, _TYPE,
 * _SUBJECT, _SOURCE and _TIME in a minimal environment (PATH, HOME, LANG:
 * nothing else of the daemon's environment, so no secrets). Kills the
 * process group at the timeout. detail: {"exit":N|null,"signal":N|null,
 * "timed_out":bool,"output":"<last 4 KiB of stdout+stderr>"} */
void exec_run(const struct exec_rule *rule, const json_t *ev, const char *ev_json, struct handler_result *res);

#endif
