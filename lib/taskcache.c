/* taskcache.c -- the task-cache handler: makes go-task (Taskfile) redo work
 * after a deployment, by invalidating exactly the cache entries a rule names.
 *
 * go-task (v3.44 and later) keeps its state in two places (gotask.h names
 * the files, taskcache_dirs finds the places as go-task's setup.go does):
 *   <remote dir>/remote/<key>.yaml|.timestamp|.checksum  remote Taskfiles it
 *       included, <key> = gotask_http_key(url)
 *   <fingerprint dir>/checksum/<name>   a task's fingerprint, method checksum
 *       (<name>: the task's label, else its full or matched name)
 *   <fingerprint dir>/timestamp/<task>  method timestamp (the declared name)
 * with names normalized; v3.52 changed how, so both spellings are removed.
 *
 * Remote entries are removed by their exact keys, computed from the URLs the
 * rule's Taskfile includes (and the Taskfiles it includes in turn); only when
 * the Taskfile cannot be read or names a URL by a template are cache files
 * matched by host instead ("prefix"), since removing too much costs one
 * download while removing too little leaves the stale Taskfile in use.
 *
 * Safety: every path removed is built from go-task's directories and a name
 * read from that directory, normalized, or a computed key (none can hold '/'
 * or be "..");
 * symlinks are removed as links and never followed; event data only selects
 * among entries, it never becomes a path. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gotask.h"
#include "handler.h"
#include "util.h"

struct job {
    const struct taskcache_rule *rule;
    char fp[PATH_MAX - 64];     /* fingerprints: <fp>/checksum, <fp>/timestamp */
    char remote[PATH_MAX - 64]; /* remote Taskfiles: <remote>/<key>.<ext> */
    const char *project;        /* a Pages event's project, fit for a host name, or NULL */
    struct gotask_file tf;      /* the rule's Taskfile, when tf_ok */
    int tf_ok;
    int files;                  /* Taskfiles read while following includes */
    int keyless;                /* a remote include whose key cannot be computed */
    int remote_fd;              /* <remote> opened by open_dir, or -1 */
    const char *mode;
    json_t *removed, *aged;
    struct handler_result *res;
};

void taskcache_normalize_name(const char *name, char *out) { gotask_normalize(name, GOTASK_NAMES_CURRENT, 0, out); }

/* The rule's setting for an environment variable, else the daemon's; empty
 * counts as unset, as go-task's env.GetTaskEnv callers treat it. */
static const char *rule_env(const struct taskcache_rule *r, const char *name)
{
    size_t nl = strlen(name);
    for (char *const *e = r->env; e && *e; e++)
        if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=') return (*e)[nl + 1] ? *e + nl + 1 : NULL;
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* go-task's path rules: absolute or "~" (home) as is, else SmartJoin(dir, p). */
static int place(const struct taskcache_rule *r, const char *p, char *out, size_t n, char *why, size_t whyn)
{
    int k;
    if (p[0] == '~') {
        const char *home = rule_env(r, "HOME");
        if ((p[1] && p[1] != '/') || !home) {
            snprintf(why, whyn, "cannot expand %.200s (only ~ and ~/ with HOME set)", p);
            return -1;
        }
        k = snprintf(out, n, "%s%s", home, p + 1);
    } else if (p[0] == '/') {
        k = snprintf(out, n, "%s", p);
    } else {
        k = snprintf(out, n, "%s/%s", r->dir, p);
    }
    if (k < 0 || (size_t)k >= n) {
        snprintf(why, whyn, "path too long: %.200s", p);
        return -1;
    }
    /* filepath.Join would clean these; refusing them keeps every removal
     * inside the directory the path plainly names. */
    size_t l = strlen(out);
    while (l > 1 && out[l - 1] == '/') out[--l] = '\0';
    if (strstr(out, "/../") || strstr(out, "/./") || (l >= 3 && strcmp(out + l - 3, "/..") == 0) ||
        (l >= 2 && strcmp(out + l - 2, "/.") == 0)) {
        snprintf(why, whyn, "%.200s must not contain . or .. components", out);
        return -1;
    }
    return 0;
}

int taskcache_dirs(const struct taskcache_rule *r, char *fp, size_t fpn, char *remote, size_t rn, char *why, size_t whyn)
{
    if (!r->dir || r->dir[0] != '/') {
        snprintf(why, whyn, "dir must be an absolute path");
        return -1;
    }
    why[0] = '\0';
    struct gotask_rc rc = {0};
    gotask_taskrc(r->dir, rule_env(r, "HOME"), rule_env(r, "XDG_CONFIG_HOME"), &rc);
    /* setup.go: flag > TASK_TEMP_DIR > taskrc temp-dir > ".task"; the rule's
     * temp_dir stands for the flag. */
    const char *t = r->temp_dir && *r->temp_dir ? r->temp_dir : rule_env(r, "TASK_TEMP_DIR");
    if (!t) t = rc.temp_dir ? rc.temp_dir : ".task";
    /* flag > TASK_REMOTE_CACHE_DIR > taskrc remote.cache-dir > TASK_REMOTE_DIR */
    const char *rcd = r->remote_cache_dir && *r->remote_cache_dir ? r->remote_cache_dir : rule_env(r, "TASK_REMOTE_CACHE_DIR");
    if (!rcd) rcd = rc.remote_cache_dir ? rc.remote_cache_dir : rule_env(r, "TASK_REMOTE_DIR");

    char base[PATH_MAX];
    int rcode = place(r, t, base, sizeof base, why, whyn);
    if (rcode == 0) {
        if (t[0] == '/' || t[0] == '~') {
            /* An absolute temp dir is shared: fingerprints go under the
             * project's name (the base name of the Taskfile's directory). */
            const char *d = r->dir;
            size_t dl = strlen(d);
            while (dl > 1 && d[dl - 1] == '/') dl--;
            size_t s = dl;
            while (s > 0 && d[s - 1] != '/') s--;
            if (snprintf(fp, fpn, "%s/%.*s", base, (int)(dl - s), d + s) >= (int)fpn) rcode = -1;
        } else if (snprintf(fp, fpn, "%s", base) >= (int)fpn) {
            rcode = -1;
        }
        char rbase[PATH_MAX];
        if (rcode == 0 && rcd) rcode = place(r, rcd, rbase, sizeof rbase, why, whyn);
        else snprintf(rbase, sizeof rbase, "%s", base);
        if (rcode == 0 && snprintf(remote, rn, "%s/remote", rbase) >= (int)rn) rcode = -1;
        if (rcode && !*why) snprintf(why, whyn, "path too long");
    }
    gotask_rc_free(&rc);
    return rcode;
}

static int fail(struct job *j, int permanent, const char *fmt, const char *a, const char *b)
{
    /* Paths can be long; the message keeps their last part, which names the file. */
    char abuf[161];
    size_t al = strlen(a);
    snprintf(abuf, sizeof abuf, "%s", al > 160 ? a + al - 160 : a);
    j->res->ok = 0;
    j->res->permanent = permanent;
    snprintf(j->res->error, sizeof j->res->error, fmt, abuf, b ? b : "");
    return -1;
}

/* Opens the directory path without following a symlink in any component
 * below the rule's directory (.task, .task/checksum, .task/remote can be
 * committed to the project as links to anywhere). The rule's directory itself
 * is the operator's and may be reached through links; a path outside it (a
 * remote cache configured elsewhere) has its last component opened without
 * following. Returns a descriptor, or -1 with errno (ELOOP/ENOTDIR for a link). */
static int open_dir(const struct job *j, const char *path)
{
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    char base[PATH_MAX];
    size_t bl = strlen(j->rule->dir);
    while (bl > 1 && j->rule->dir[bl - 1] == '/') bl--;
    const char *rest;
    if (strncmp(path, j->rule->dir, bl) == 0 && path[bl] == '/') {
        memcpy(base, path, bl);
        base[bl] = '\0';
        rest = path + bl + 1;
    } else {
        const char *slash = strrchr(path, '/');
        if (!slash || (size_t)(slash - path) >= sizeof base) {
            errno = EINVAL;
            return -1;
        }
        memcpy(base, path, (size_t)(slash - path));
        base[slash - path] = '\0';
        if (!base[0]) snprintf(base, sizeof base, "/");
        rest = slash + 1;
    }
    int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd >= 0 && *rest) {
        char comp[NAME_MAX + 1];
        size_t n = strcspn(rest, "/");
        if (n > NAME_MAX) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, rest, n);
        comp[n] = '\0';
        rest += n;
        while (*rest == '/') rest++;
        if (!n || strcmp(comp, ".") == 0) continue;
        int next = openat(fd, comp, flags);
        int e = errno;
        close(fd);
        errno = e;
        fd = next;
    }
    return fd;
}

/* Removes dir/name (dfd is dir, opened by open_dir) if it is a file or a
 * link; a missing one is fine. */
static int remove_entry(struct job *j, int dfd, const char *dir, const char *name)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return 0;
    struct stat sb;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : fail(j, 0, "cannot inspect %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return 0;
    if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT) return fail(j, 0, "cannot remove %s: %s", path, strerror(errno));
    json_array_append_new(j->removed, json_string(path));
    return 0;
}

/* "<64 lowercase hex>.<ext>" at the end of name, ext one of go-task's. */
static size_t cache_suffix(const char *name)
{
    static const char *const exts[] = {".yaml", ".timestamp", ".checksum"};
    size_t n = strlen(name);
    for (size_t e = 0; e < 3; e++) {
        size_t el = strlen(exts[e]);
        if (n < el + 65 || strcmp(name + n - el, exts[e]) != 0) continue;
        const char *hex = name + n - el - 64;
        if (hex[-1] != '.') continue;
        size_t i = 0;
        while (i < 64 && ((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'))) i++;
        if (i == 64) return el + 65;
    }
    return 0;
}

/* A label set a hostname can have: nothing that could act as a glob or a path. */
static int hostname_ok(const char *s)
{
    if (!*s || strlen(s) > 253 || s[0] == '.' || strstr(s, "..")) return 0;
    return str_of_class(s, strlen(s), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.", 253);
}

/* Does any host candidate of the cache key "host.[lastdir.]file" match?
 * Hosts contain dots, so each prefix ending at a dot is a candidate. */
static int key_matches(const char *key, size_t keylen, const char *project, char *const *hosts)
{
    char cand[512], want[300];
    for (size_t i = 1; i < keylen && i < sizeof cand; i++) {
        if (key[i] != '.') continue;
        memcpy(cand, key, i);
        cand[i] = '\0';
        if (project) {
            snprintf(want, sizeof want, "%s.pages.dev", project);
            if (strcasecmp(cand, want) == 0) return 1;
            snprintf(want, sizeof want, "*.%s.pages.dev", project);
            if (glob_match(want, cand)) return 1;
        }
        for (char *const *h = hosts; h && *h; h++)
            if (glob_match(*h, cand)) return 1;
    }
    return 0;
}

/* Does host[:port] belong to the deployed project or the rule's hosts? */
static int host_selected(struct job *j, const char *hostport)
{
    char host[300];
    snprintf(host, sizeof host, "%s", hostport);
    char *colon = strrchr(host, ':');
    if (colon && !strchr(host, ']')) *colon = '\0';
    if (j->project) {
        char want[300];
        snprintf(want, sizeof want, "%s.pages.dev", j->project);
        if (strcasecmp(host, want) == 0) return 1;
        snprintf(want, sizeof want, "*.%s.pages.dev", j->project);
        if (glob_match(want, host)) return 1;
    }
    for (char *const *h = j->rule->hosts; h && *h; h++)
        if (glob_match(*h, host) || glob_match(*h, hostport)) return 1;
    return 0;
}

static int listed(char *const *l, const char *s)
{
    for (; l && *l; l++)
        if (strcmp(*l, s) == 0) return 1;
    return 0;
}

static int is_http(const char *u) { return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0; }

/* The remote cache files of one selected include, by their exact key. */
static int remove_key(struct job *j, const char *key)
{
    static const char *const exts[] = {"yaml", "timestamp", "checksum"};
    if (j->remote_fd < 0) {
        j->remote_fd = open_dir(j, j->remote);
        if (j->remote_fd < 0) return errno == ENOENT ? 0 : fail(j, 0, "cannot open %s: %s", j->remote, strerror(errno));
    }
    for (size_t e = 0; e < 3; e++) {
        if (e == 2 && !j->rule->remote_checksum) continue;
        char name[GOTASK_KEY_MAX + 16];
        snprintf(name, sizeof name, "%s.%s", key, exts[e]);
        if (remove_entry(j, j->remote_fd, j->remote, name)) return -1;
    }
    return 0;
}

/* Follows f's includes: a remote one is removed when selected (its namespace
 * listed in the rule, or its host the project's or a rule host), after the
 * Taskfile cached for it has been read for includes of its own; a local one
 * (relative to base, a file or a directory with a Taskfile) is read for its
 * includes. Bounded in depth and in files read. */
static int follow_includes(struct job *j, const struct gotask_file *f, const char *base, int depth)
{
    for (size_t i = 0; i < f->ninc; i++) {
        const char *url = f->inc[i].url;
        char path[PATH_MAX];
        if (is_http(url)) {
            char key[GOTASK_KEY_MAX], host[300];
            if (gotask_http_key(url, key, sizeof key) || gotask_url_host(url, host, sizeof host)) {
                /* A git URL has no http cache entry; anything else (a
                 * template) cannot be named: prefix matching must cover it. */
                if (!strstr(url, ".git") && !strstr(url, "/_git/")) j->keyless = 1;
                continue;
            }
            int sel = listed(j->rule->includes, f->inc[i].ns) || host_selected(j, host);
            if (depth < 4 && j->files < 64 && snprintf(path, sizeof path, "%s/%s.yaml", j->remote, key) < (int)sizeof path) {
                struct gotask_file sub;
                j->files++;
                if (gotask_file_read(path, &sub) == 0) {
                    /* Relative includes of a remote Taskfile are URLs relative
                     * to it; only its absolute ones are followed. */
                    int rc = follow_includes(j, &sub, NULL, depth + 1);
                    gotask_file_free(&sub);
                    if (rc) return rc;
                }
            }
            if (sel && remove_key(j, key)) return -1;
            continue;
        }
        if (!base || strstr(url, "://") || strstr(url, "{{") || depth >= 4 || j->files >= 64) continue;
        char file[PATH_MAX];
        if (snprintf(path, sizeof path, url[0] == '/' ? "%s" : "%s/%s", url[0] == '/' ? url : base, url) >= (int)sizeof path)
            continue;
        struct stat sb;
        if (stat(path, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) {
            if (gotask_find_taskfile(path, file, sizeof file)) continue;
        } else {
            snprintf(file, sizeof file, "%s", path);
        }
        struct gotask_file sub;
        j->files++;
        if (gotask_file_read(file, &sub) != 0) continue;
        char *slash = strrchr(file, '/');
        if (slash) *slash = '\0';
        int rc = follow_includes(j, &sub, file, depth + 1);
        gotask_file_free(&sub);
        if (rc) return rc;
    }
    return 0;
}

static int invalidate_remote(struct job *j)
{
    const struct taskcache_rule *r = j->rule;
    const char *dir = j->remote;
    if (r->remote_all) {
        j->mode = "all";
    } else {
        if (!j->project && !r->hosts && !r->includes) return 0;
        if (j->tf_ok) {
            j->mode = "exact";
            if (follow_includes(j, &j->tf, r->dir, 0)) return -1;
            if (!j->keyless) return 0;
        }
        j->mode = "prefix";
        if (!j->project && !r->hosts) return 0;
    }

    int fd = open_dir(j, dir);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int e = errno;
        if (fd >= 0) close(fd);
        return e == ENOENT ? 0 : fail(j, 0, "cannot read %s: %s", dir, strerror(e));
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
        if (r->remote_all) {
            rc = remove_entry(j, dirfd(d), dir, name);
            continue;
        }
        size_t suf = cache_suffix(name);
        if (!suf || strncmp(name, "http.", 5) != 0) continue;
        if (!r->remote_checksum && strcmp(name + strlen(name) - 9, ".checksum") == 0) continue;
        if (key_matches(name + 5, strlen(name) - 5 - suf + 1, j->project, r->hosts)) rc = remove_entry(j, dirfd(d), dir, name);
    }
    closedir(d);
    return rc;
}

/* Removes kind/<name> in both go-task spellings; a name with '*' (pattern)
 * removes every entry it matches. */
static int remove_fingerprint(struct job *j, const char *dir, const char *name, int pattern)
{
    char norm[2][1024];
    if (strlen(name) >= sizeof norm[0]) return 0;
    gotask_normalize(name, GOTASK_NAMES_CURRENT, pattern, norm[0]);
    gotask_normalize(name, GOTASK_NAMES_LEGACY, pattern, norm[1]);
    int n = strcmp(norm[0], norm[1]) ? 2 : 1;
    int fd = open_dir(j, dir);
    if (fd < 0) return errno == ENOENT ? 0 : fail(j, 0, "cannot read %s: %s", dir, strerror(errno));
    if (!pattern) {
        int rc = 0;
        for (int i = 0; rc == 0 && i < n; i++) rc = remove_entry(j, fd, dir, norm[i]);
        close(fd);
        return rc;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return fail(j, 0, "cannot read %s: %s", dir, strerror(errno));
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue; /* go-task's names never start with '.' */
        for (int i = 0; i < n; i++)
            if (gotask_star_match(norm[i], de->d_name)) {
                rc = remove_entry(j, fd, dir, de->d_name);
                break;
            }
    }
    closedir(d);
    return rc;
}

/* A label as a pattern: each {{ template }} becomes '*', since its value is
 * only known when go-task runs the task. Returns 1 if it has templates. */
static int label_pattern(const char *label, char *out, size_t n)
{
    size_t o = 0;
    int templ = 0;
    for (const char *p = label; *p && o + 1 < n;) {
        const char *close;
        if (p[0] == '{' && p[1] == '{' && (close = strstr(p + 2, "}}"))) {
            if (!o || out[o - 1] != '*') out[o++] = '*';
            p = close + 2;
            templ = 1;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return templ;
}

static int invalidate_tasks(struct job *j)
{
    const struct taskcache_rule *r = j->rule;
    static const char *const kinds[] = {"checksum", "timestamp"};
    for (size_t k = 0; k < 2; k++) {
        char dir[PATH_MAX];
        /* A cut path would name another directory: refuse the run instead. */
        int dl = snprintf(dir, sizeof dir, "%s/%s", j->fp, kinds[k]);
        if (dl < 0 || (size_t)dl >= sizeof dir) return fail(j, 1, "fingerprint directory %s/%s: path too long", j->fp, kinds[k]);
        if (r->all_tasks) {
            int fd = open_dir(j, dir);
            DIR *d = fd < 0 ? NULL : fdopendir(fd);
            if (!d) {
                int e = errno;
                if (fd >= 0) close(fd);
                if (e == ENOENT) continue;
                return fail(j, 0, "cannot read %s: %s", dir, strerror(e));
            }
            struct dirent *de;
            int rc = 0;
            while (rc == 0 && (de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) rc = remove_entry(j, fd, dir, de->d_name);
            closedir(d);
            if (rc) return rc;
            continue;
        }
        /* Only the fingerprint kind of the rule's method. */
        if ((r->method == TASKCACHE_CHECKSUM) != (k == 0)) continue;
        for (char *const *t = r->tasks; t && *t; t++) {
            /* The name as written in `task NAME` (a wildcard task's matched
             * name, which is also its checksum file) or a pattern. */
            if (remove_fingerprint(j, dir, *t, strchr(*t, '*') != NULL)) return -1;
            for (size_t i = 0; j->tf_ok && i < j->tf.ntasks; i++) {
                const struct gotask_task *d = &j->tf.tasks[i];
                if (strcmp(d->name, *t) != 0 && !(strchr(d->name, '*') && gotask_star_match(d->name, *t))) continue;
                if (k == 0 && d->label) {
                    /* checksum files are named after the label. */
                    char pat[1024];
                    int templ = label_pattern(d->label, pat, sizeof pat);
                    if (remove_fingerprint(j, dir, pat, templ)) return -1;
                } else if (k == 1 && strcmp(d->name, *t) != 0) {
                    /* timestamp files after the declared (wildcard) name. */
                    if (remove_fingerprint(j, dir, d->name, 0)) return -1;
                }
            }
        }
    }
    return 0;
}

/* Method timestamp: go-task runs a task again when a source is newer than its
 * generated files (the timestamp file only stands in for generates when there
 * are none), so the generated files are given the oldest possible mtime.
 * Their content is not touched. */
static int age_generates(struct job *j)
{
    const struct taskcache_rule *r = j->rule;
    if (r->method != TASKCACHE_TIMESTAMP || !r->generates) return 0;
    char root[PATH_MAX];
    if (!realpath(r->dir, root)) return fail(j, 0, "cannot resolve %s: %s", r->dir, strerror(errno));
    size_t rl = strlen(root);
    for (char *const *g = r->generates; *g; g++) {
        if ((*g)[0] == '/' || strstr(*g, "..")) return fail(j, 1, "generates pattern %s must stay inside %s", *g, r->dir);
        char pat[PATH_MAX + 256];
        if (snprintf(pat, sizeof pat, "%s/%.255s", root, *g) >= (int)sizeof pat) continue;
        glob_t gl;
        int grc = glob(pat, GLOB_NOSORT, NULL, &gl);
        if (grc == GLOB_NOMATCH) continue;
        if (grc != 0) return fail(j, 0, "cannot expand %s%s", *g, NULL);
        for (size_t i = 0; i < gl.gl_pathc; i++) {
            char real[PATH_MAX];
            struct stat sb;
            /* The file itself (not a link's target) must be inside dir. */
            if (lstat(gl.gl_pathv[i], &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
            if (!realpath(gl.gl_pathv[i], real) || strncmp(real, root, rl) != 0 || real[rl] != '/') continue;
            if (sb.st_mtime == 0) continue; /* already aged: idempotent */
            struct timespec ts[2] = {{0, UTIME_OMIT}, {0, 0}};
            if (utimensat(AT_FDCWD, real, ts, AT_SYMLINK_NOFOLLOW) != 0) {
                globfree(&gl);
                return fail(j, 0, "cannot set the time of %s: %s", real, strerror(errno));
            }
            json_array_append_new(j->aged, json_string(real));
        }
        globfree(&gl);
    }
    return 0;
}

void taskcache_run(const struct taskcache_rule *rule, const json_t *ev, struct handler_result *res)
{
    struct job j = {.rule = rule, .removed = json_array(), .aged = json_array(), .res = res, .mode = "none", .remote_fd = -1};
    res->ok = 1;
    if (!j.removed || !j.aged) {
        json_decref(j.removed);
        json_decref(j.aged);
        res->ok = 0;
        snprintf(res->error, sizeof res->error, "out of memory");
        return;
    }
    char why[256];
    if (taskcache_dirs(rule, j.fp, sizeof j.fp, j.remote, sizeof j.remote, why, sizeof why) != 0)
        fail(&j, 1, "%s%s", why, NULL);

    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *subject = json_string_value(json_object_get(ev, "subject"));
    /* A Pages event names its project; its hosts are <project>.pages.dev and
     * the preview subdomains. A subject unfit for a hostname matches nothing. */
    j.project = (type && subject && strncmp(type, "com.cloudflare.pages.", 21) == 0 && hostname_ok(subject)) ? subject : NULL;

    if (res->ok) {
        char tf[PATH_MAX];
        int found = rule->taskfile ? snprintf(tf, sizeof tf, rule->taskfile[0] == '/' ? "%s" : "%s/%s",
                                              rule->taskfile[0] == '/' ? rule->taskfile : rule->dir, rule->taskfile) < (int)sizeof tf
                                   : gotask_find_taskfile(rule->dir, tf, sizeof tf) == 0;
        j.tf_ok = found && gotask_file_read(tf, &j.tf) == 0;
    }
    if (res->ok && invalidate_remote(&j) == 0 && invalidate_tasks(&j) == 0) age_generates(&j);
    if (j.tf_ok) gotask_file_free(&j.tf);
    if (j.remote_fd >= 0) close(j.remote_fd);
    res->detail = json_pack("{s:o,s:o,s:s,s:s,s:s}", "removed", j.removed, "aged", j.aged, "remote", j.mode,
                            "fingerprint_dir", j.fp, "remote_dir", j.remote);
}
