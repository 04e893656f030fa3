/* taskcache.h -- the task-cache handler: go-task (Taskfile) cache
 * invalidation. Owns the rule (what the file's task_cache: section says) and
 * its run; docs/task-cache.md. */
#ifndef SYNCCF_TASKCACHE_H
#define SYNCCF_TASKCACHE_H

#include <jansson.h>
#include <stddef.h>

struct handler_result;

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

#endif
