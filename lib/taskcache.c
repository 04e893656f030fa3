/* taskcache.c -- the task-cache handler: makes go-task (Taskfile) redo work
 * after a deployment, by invalidating exactly the cache entries a rule names.
 *
 * go-task keeps its state under TASK_TEMP_DIR (default .task, relative to the
 * Taskfile's directory):
 *   remote/<key>.yaml|.timestamp|.checksum  remote Taskfiles it included, where
 *       for HTTP(S) <key> = "http." host "." [lastdir "."] filename "." sha256hex(url)
 *       (go-task's taskfile/node_http.go CacheKey, taskfile/node_cache.go)
 *   checksum/<task>    a task's fingerprint under method checksum
 *   timestamp/<task>   under method timestamp
 * with <task> the name with every rune outside [A-z0-9] replaced by '-'.
 *
 * Safety: every path removed is built from the rule's directory and a name
 * read from that directory (or normalized so it cannot hold '/' or '..');
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

#include "handler.h"
#include "util.h"

struct job {
    const struct taskcache_rule *rule;
    char temp[PATH_MAX - 64]; /* room for "/remote/<name>" etc. below it */
    json_t *removed, *aged;
    struct handler_result *res;
};

void taskcache_normalize_name(const char *name, char *out)
{
    /* Go's regexp works on runes: one multi-byte character becomes one '-',
     * and each byte of an invalid sequence becomes one '-'. */
    const unsigned char *p = (const unsigned char *)name;
    size_t o = 0;
    while (*p) {
        unsigned char c = *p;
        if (c < 0x80) {
            out[o++] = ((c >= 'A' && c <= 'z') || (c >= '0' && c <= '9')) ? (char)c : '-';
            p++;
            continue;
        }
        int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 1;
        if (c >= 0xe0 && c < 0xf0) len = 3;
        int ok = len > 1;
        for (int i = 1; ok && i < len; i++) ok = (p[i] & 0xc0) == 0x80;
        out[o++] = '-';
        p += ok ? len : 1;
    }
    out[o] = '\0';
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

/* Removes dir/name if it is a file or a link; a missing one is fine. */
static int remove_entry(struct job *j, const char *dir, const char *name)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return 0;
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : fail(j, 0, "cannot inspect %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return 0;
    if (unlink(path) != 0 && errno != ENOENT) return fail(j, 0, "cannot remove %s: %s", path, strerror(errno));
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

static int invalidate_remote(struct job *j, const json_t *ev)
{
    const struct taskcache_rule *r = j->rule;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.4000s/remote", j->temp);
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *subject = json_string_value(json_object_get(ev, "subject"));
    /* A Pages event names its project; its hosts are <project>.pages.dev and
     * the preview subdomains. A subject unfit for a hostname matches nothing. */
    const char *project = (type && subject && strncmp(type, "com.cloudflare.pages.", 21) == 0 && hostname_ok(subject))
                              ? subject : NULL;
    if (!r->remote_all && !project && !r->hosts) return 0;

    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : fail(j, 0, "cannot read %s: %s", dir, strerror(errno));
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
        if (r->remote_all) {
            rc = remove_entry(j, dir, name);
            continue;
        }
        size_t suf = cache_suffix(name);
        if (!suf || strncmp(name, "http.", 5) != 0) continue;
        if (!r->remote_checksum && strcmp(name + strlen(name) - 9, ".checksum") == 0) continue;
        if (key_matches(name + 5, strlen(name) - 5 - suf + 1, project, r->hosts)) rc = remove_entry(j, dir, name);
    }
    closedir(d);
    return rc;
}

static int invalidate_tasks(struct job *j)
{
    const struct taskcache_rule *r = j->rule;
    static const char *const kinds[] = {"checksum", "timestamp"};
    for (size_t k = 0; k < 2; k++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%.4000s/%.16s", j->temp, kinds[k]);
        if (r->all_tasks) {
            DIR *d = opendir(dir);
            if (!d) {
                if (errno == ENOENT) continue;
                return fail(j, 0, "cannot read %s: %s", dir, strerror(errno));
            }
            struct dirent *de;
            int rc = 0;
            while (rc == 0 && (de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) rc = remove_entry(j, dir, de->d_name);
            closedir(d);
            if (rc) return rc;
            continue;
        }
        /* Only the fingerprint kind of the rule's method. */
        if ((r->method == TASKCACHE_CHECKSUM) != (k == 0)) continue;
        for (char *const *t = r->tasks; t && *t; t++) {
            char norm[1024];
            if (strlen(*t) >= sizeof norm) continue;
            taskcache_normalize_name(*t, norm);
            if (remove_entry(j, dir, norm)) return -1;
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
    struct job j = {.rule = rule, .removed = json_array(), .aged = json_array(), .res = res};
    res->ok = 1;
    const char *t = rule->temp_dir ? rule->temp_dir : ".task";
    if (!rule->dir || rule->dir[0] != '/') {
        fail(&j, 1, "dir must be an absolute path%s%s", "", NULL);
    } else if (t[0] == '/') {
        snprintf(j.temp, sizeof j.temp, "%s", t);
    } else {
        snprintf(j.temp, sizeof j.temp, "%s/%s", rule->dir, t);
    }
    if (res->ok && (strstr(j.temp, "/../") || strstr(j.temp, "/./")))
        fail(&j, 1, "temp_dir %s must not contain . or .. components%s", j.temp, NULL);
    if (res->ok && invalidate_remote(&j, ev) == 0 && invalidate_tasks(&j) == 0) age_generates(&j);
    res->detail = json_pack("{s:o,s:o}", "removed", j.removed, "aged", j.aged);
}
