/* gotask.h -- go-task's own conventions, read from its files: fingerprint
 * file names, remote Taskfile cache keys, the taskrc settings that move its
 * cache, and the parts of a Taskfile (includes, task labels) that say which
 * cache files belong to what. The task-cache handler (taskcache.c) decides
 * what to remove; this module only knows how go-task names things. */
#ifndef SYNCCF_GOTASK_H
#define SYNCCF_GOTASK_H

#include <stddef.h>

/* go-task's normalizeFilename. go-task v3.52.0 and later replace every rune
 * matching [^[:alnum:]] with '-'; v3.51 and earlier [^A-z0-9], which keeps
 * [ \ ] ^ _ and the backtick (GOTASK_NAMES_LEGACY). With keep_star a '*' is
 * kept, so that the result can be used as a pattern (gotask_star_match).
 * out must hold strlen(name)+1 bytes. */
enum gotask_names { GOTASK_NAMES_CURRENT, GOTASK_NAMES_LEGACY };
void gotask_normalize(const char *name, enum gotask_names v, int keep_star, char *out);

/* Does s match pattern, where '*' stands for any run of characters and every
 * other character for itself (go-task's wildcard task names work this way). */
int gotask_star_match(const char *pattern, const char *s);

/* go-task's HTTPNode.CacheKey (v3.44.0 and later) for an http(s) URL:
 * "http." host[:port] "." [lastdir "."] filename "." sha256hex(redacted URL).
 * Returns 0, or -1 when url is not an http(s) URL this can name exactly
 * (a git URL, a template, bad escapes) or the key would not fit in n. */
#define GOTASK_KEY_MAX 256
int gotask_http_key(const char *url, char *out, size_t n);
/* The host[:port] part of an http(s) URL (after any userinfo); 0 or -1. */
int gotask_url_host(const char *url, char *out, size_t n);

/* The taskrc settings that move go-task's cache. NULL = not set. */
struct gotask_rc {
    char *temp_dir;         /* temp-dir */
    char *remote_cache_dir; /* remote: { cache-dir } */
};
/* Reads one taskrc file; the settings it has replace those in rc (go-task's
 * TaskRC.Merge). Returns 1 if read, 0 if there is no such file, -1 if it
 * cannot be read or parsed (rc untouched). */
int gotask_taskrc_file(const char *path, struct gotask_rc *rc);
/* Every taskrc go-task reads for a Taskfile in dir, merged in go-task's order
 * (taskrc/taskrc.go GetConfig): $XDG_CONFIG_HOME/task/taskrc.yml|.yaml, then
 * $HOME/.taskrc.yml|.yaml, then .taskrc.yml|.yaml in each directory from the
 * farthest ancestor of dir (up to where the owner changes) down to dir itself,
 * nearer ones overriding. xdg and home may be NULL or empty. Files that cannot
 * be parsed are skipped (go-task would refuse to run). */
void gotask_taskrc(const char *dir, const char *home, const char *xdg, struct gotask_rc *rc);
void gotask_rc_free(struct gotask_rc *rc);

/* What a Taskfile says about its cache entries. */
struct gotask_include {
    char *ns;  /* the include's namespace (its key under includes:) */
    char *url; /* its taskfile: the string, or the map's taskfile: */
};
struct gotask_task {
    char *name;  /* the key under tasks: (may hold '*': a wildcard task) */
    char *label; /* its label:, or NULL */
};
struct gotask_file {
    struct gotask_include *inc;
    size_t ninc;
    struct gotask_task *tasks;
    size_t ntasks;
};
/* The Taskfile go-task would run in dir: the first of go-task's default
 * names that exists (Taskfile.yml, taskfile.yml, Taskfile.yaml, ...). 0 with
 * its path in out, or -1. */
int gotask_find_taskfile(const char *dir, char *out, size_t n);
/* Reads path (at most 4 MiB, 4096 includes and tasks). 0, or -1 with errno
 * set (EINVAL: not YAML or not a Taskfile mapping). */
int gotask_file_read(const char *path, struct gotask_file *f);
void gotask_file_free(struct gotask_file *f);

#endif
