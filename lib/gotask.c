/* gotask.c -- go-task's naming of its cache files and the go-task files
 * (taskrc, Taskfile) that say where they are and what they belong to.
 *
 * Every rule here mirrors go-task's source (github.com/go-task/task):
 * internal/fingerprint/sources_checksum.go normalizeFilename,
 * taskfile/node_http.go CacheKey, taskfile/node.go getScheme,
 * taskrc/taskrc.go GetConfig and taskrc/ast/taskrc.go Merge,
 * taskfile/taskfile.go DefaultTaskfiles. Files are read with a size cap and
 * parsed with libyaml; nothing read here ever becomes a path component
 * without going through gotask_normalize or gotask_http_key. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "gotask.h"
#include "util.h"

#define FILE_MAX (4u << 20)
#define ITEMS_MAX 4096

void gotask_normalize(const char *name, enum gotask_names v, int keep_star, char *out)
{
    /* Go's regexp works on runes: one multi-byte character becomes one '-',
     * and each byte of an invalid sequence becomes one '-'. [[:alnum:]] is
     * ASCII-only in Go. */
    const unsigned char *p = (const unsigned char *)name;
    size_t o = 0;
    while (*p) {
        unsigned char c = *p;
        if (c < 0x80) {
            int keep = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       (v == GOTASK_NAMES_LEGACY && c >= 'A' && c <= 'z') || (keep_star && c == '*');
            out[o++] = keep ? (char)c : '-';
            p++;
            continue;
        }
        int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 1;
        int ok = len > 1;
        for (int i = 1; ok && i < len; i++) ok = (p[i] & 0xc0) == 0x80;
        out[o++] = '-';
        p += ok ? len : 1;
    }
    out[o] = '\0';
}

int gotask_star_match(const char *pat, const char *s)
{
    /* Iterative, with one backtrack point: linear enough for names. */
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pat == '*') {
            star = pat++;
            resume = s;
        } else if (*pat == *s) {
            pat++;
            s++;
        } else if (star) {
            pat = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*pat == '*') pat++;
    return *pat == '\0';
}

/* ---- remote Taskfile keys ------------------------------------------------- */

struct url_parts {
    const char *scheme_end; /* the ':' of "://" */
    const char *auth, *auth_end;
    const char *host;       /* after any userinfo */
    const char *path, *path_end;
};

static int url_split(const char *url, struct url_parts *u)
{
    /* getScheme: the text before "://"; only http and https are HTTP nodes. */
    const char *sep = strstr(url, "://");
    if (!sep) return -1;
    size_t sl = (size_t)(sep - url);
    if (!((sl == 4 && strncmp(url, "http", 4) == 0) || (sl == 5 && strncmp(url, "https", 5) == 0))) return -1;
    u->scheme_end = sep;
    u->auth = sep + 3;
    u->auth_end = u->auth + strcspn(u->auth, "/?#");
    u->host = u->auth;
    for (const char *p = u->auth; p < u->auth_end; p++)
        if (*p == '@') u->host = p + 1;
    if (u->host == u->auth_end) return -1;
    u->path = u->auth_end;
    u->path_end = u->path + strcspn(u->path, "?#");
    /* Templates cannot be named before go-task expands them. */
    if (strstr(url, "{{")) return -1;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) return -1;
    return 0;
}

static int unhex(int c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

int gotask_url_host(const char *url, char *out, size_t n)
{
    struct url_parts u;
    if (url_split(url, &u)) return -1;
    size_t hl = (size_t)(u.auth_end - u.host);
    if (hl >= n) return -1;
    memcpy(out, u.host, hl);
    out[hl] = '\0';
    return 0;
}

int gotask_http_key(const char *url, char *out, size_t n)
{
    struct url_parts u;
    if (url_split(url, &u)) return -1;
    /* go-task's getScheme sends these to its git node instead. */
    char gitpart[2048];
    size_t pl = (size_t)(u.path_end - u.path);
    if (pl >= sizeof gitpart) return -1;
    memcpy(gitpart, u.path, pl);
    gitpart[pl] = '\0';
    char *dbl = strstr(gitpart, "//");
    if (dbl) *dbl = '\0';
    size_t gl = strlen(gitpart);
    if ((gl >= 4 && strcmp(gitpart + gl - 4, ".git") == 0) || strstr(gitpart, "/_git/")) return -1;

    /* url.Path is the decoded path. */
    char path[2048];
    size_t o = 0;
    for (const char *p = u.path; p < u.path_end; p++) {
        int c = (unsigned char)*p;
        if (c == '%') {
            int h = p + 2 < u.path_end ? unhex(p[1]) : -1, l = h >= 0 ? unhex(p[2]) : -1;
            if (h < 0 || l < 0) return -1;
            c = h * 16 + l;
            if (c == 0) return -1;
            p += 2;
        }
        path[o++] = (char)c;
    }
    path[o] = '\0';

    /* dir, filename := filepath.Split(path); lastDir := filepath.Base(dir) */
    char *slash = strrchr(path, '/');
    const char *file = slash ? slash + 1 : path;
    char dir[2048] = "";
    if (slash) {
        size_t dl = (size_t)(slash - path);
        while (dl > 0 && path[dl - 1] == '/') dl--; /* Base drops trailing slashes */
        size_t start = dl;
        while (start > 0 && path[start - 1] != '/') start--;
        snprintf(dir, sizeof dir, "%.*s", (int)(dl - start), path + start);
        if (dl == 0) snprintf(dir, sizeof dir, "/"); /* Base("/") */
    } else {
        snprintf(dir, sizeof dir, ".");                /* Base("") */
    }

    /* url.Redacted(): the whole URL, a password replaced by "xxxxx". */
    char red[4096];
    const char *colon = memchr(u.auth, ':', (size_t)(u.host - u.auth));
    int rl;
    if (u.host != u.auth && colon)
        rl = snprintf(red, sizeof red, "%.*s:xxxxx@%s", (int)(colon - url), url, u.host);
    else
        rl = snprintf(red, sizeof red, "%s", url);
    if (rl < 0 || (size_t)rl >= sizeof red) return -1;

    unsigned char md[32];
    const void *part[] = {red};
    size_t plen[] = {(size_t)rl};
    if (sha256_parts(part, plen, 1, md)) return -1;
    char hex[65];
    for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);

    int k = strlen(dir) > 1
                ? snprintf(out, n, "http.%.*s.%s.%s.%s", (int)(u.auth_end - u.host), u.host, dir, file, hex)
                : snprintf(out, n, "http.%.*s.%s.%s", (int)(u.auth_end - u.host), u.host, file, hex);
    /* The key is one file name: it must fit (with ".timestamp") and hold no '/'. */
    if (k < 0 || (size_t)k >= n || k + 10 > 255 || strchr(out, '/')) return -1;
    return 0;
}

/* ---- YAML files ------------------------------------------------------------- */

/* Loads path as one YAML document. 1 loaded, 0 no such file, -1 error. */
static int yaml_load(const char *path, yaml_document_t *doc)
{
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer and hold the dispatcher's slot; the S_ISREG check then refuses
     * it. A regular file ignores the flag, which is cleared anyway. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > (off_t)FILE_MAX) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    FILE *f = fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return -1;
    }
    unsigned char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        fclose(f);
        return -1;
    }
    size_t len = fread(buf, 1, (size_t)sb.st_size, f);
    fclose(f);
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        free(buf);
        errno = ENOMEM;
        return -1;
    }
    yaml_parser_set_input_string(&p, buf, len);
    int ok = yaml_parser_load(&p, doc);
    yaml_parser_delete(&p);
    free(buf);
    if (!ok) {
        errno = EINVAL;
        return -1;
    }
    if (!yaml_document_get_root_node(doc)) { /* empty file */
        yaml_document_delete(doc);
        errno = EINVAL;
        return -1;
    }
    return 1;
}

static const char *yscalar(yaml_document_t *d, int id)
{
    yaml_node_t *n = yaml_document_get_node(d, id);
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *ymap_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = yscalar(d, p->key);
        if (k && strcmp(k, key) == 0) return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static int set_dup(char **dst, const char *v)
{
    char *c = strdup(v);
    if (!c) return -1;
    free(*dst);
    *dst = c;
    return 0;
}

int gotask_taskrc_file(const char *path, struct gotask_rc *rc)
{
    yaml_document_t doc;
    int r = yaml_load(path, &doc);
    if (r <= 0) return r;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rcode = 1;
    if (root->type != YAML_MAPPING_NODE) {
        rcode = -1;
    } else {
        /* Merge: a setting the file has replaces the one before (cmp.Or). */
        yaml_node_t *t = ymap_get(&doc, root, "temp-dir");
        yaml_node_t *remote = ymap_get(&doc, root, "remote");
        yaml_node_t *cd = ymap_get(&doc, remote, "cache-dir");
        const char *ts = t && t->type == YAML_SCALAR_NODE ? (const char *)t->data.scalar.value : NULL;
        const char *cs = cd && cd->type == YAML_SCALAR_NODE ? (const char *)cd->data.scalar.value : NULL;
        if (ts && *ts && set_dup(&rc->temp_dir, ts)) rcode = -1;
        if (cs && *cs && set_dup(&rc->remote_cache_dir, cs)) rcode = -1;
    }
    yaml_document_delete(&doc);
    return rcode;
}

/* The first of names found in dir, merged into rc. */
static void taskrc_in(const char *dir, const char *const names[2], struct gotask_rc *rc)
{
    for (int i = 0; i < 2; i++) {
        char p[4096];
        if (snprintf(p, sizeof p, "%s/%s", dir, names[i]) >= (int)sizeof p) return;
        struct stat sb;
        if (stat(p, &sb) != 0) continue;
        gotask_taskrc_file(p, rc); /* SearchPath takes the first that exists */
        return;
    }
}

void gotask_taskrc(const char *dir, const char *home, const char *xdg, struct gotask_rc *rc)
{
    static const char *const xdg_names[2] = {"taskrc.yml", "taskrc.yaml"};
    static const char *const names[2] = {".taskrc.yml", ".taskrc.yaml"};
    char p[4096];
    if (xdg && *xdg && snprintf(p, sizeof p, "%s/task", xdg) < (int)sizeof p) taskrc_in(p, xdg_names, rc);
    if (home && *home) taskrc_in(home, names, rc);

    /* fsext.SearchAll: dir and its ancestors while the owner stays the same,
     * then applied farthest first so that nearer files override. Each
     * ancestor is a prefix of dir, so only the prefix lengths are kept. */
    size_t ends[256];
    int n = 0;
    struct stat sb;
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p || p[0] != '/' || stat(p, &sb) != 0) return;
    uid_t owner = sb.st_uid;
    size_t l = strlen(p);
    while (l > 1 && p[l - 1] == '/') p[--l] = '\0';
    for (;;) {
        ends[n++] = l;
        if (n == 256 || l == 1) break;
        size_t s = l;
        while (s > 0 && p[s - 1] != '/') s--;
        l = s > 1 ? s - 1 : 1; /* the parent, without its trailing '/' (but "/" stays) */
        while (l > 1 && p[l - 1] == '/') l--;
        char save = p[l];
        p[l] = '\0';
        int same = stat(p, &sb) == 0 && sb.st_uid == owner;
        p[l] = save;
        if (!same) break;
    }
    while (n-- > 0) {
        char d[4096];
        snprintf(d, sizeof d, "%.*s", (int)ends[n], p);
        taskrc_in(d, names, rc);
    }
}

void gotask_rc_free(struct gotask_rc *rc)
{
    free(rc->temp_dir);
    free(rc->remote_cache_dir);
    rc->temp_dir = rc->remote_cache_dir = NULL;
}

int gotask_find_taskfile(const char *dir, char *out, size_t n)
{
    static const char *const names[] = {"Taskfile.yml",      "taskfile.yml",      "Taskfile.yaml",      "taskfile.yaml",
                                        "Taskfile.dist.yml", "taskfile.dist.yml", "Taskfile.dist.yaml", "taskfile.dist.yaml"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        struct stat sb;
        if (snprintf(out, n, "%s/%s", dir, names[i]) >= (int)n) return -1;
        if (stat(out, &sb) == 0 && S_ISREG(sb.st_mode)) return 0;
    }
    return -1;
}

void gotask_file_free(struct gotask_file *f)
{
    for (size_t i = 0; i < f->ninc; i++) {
        free(f->inc[i].ns);
        free(f->inc[i].url);
    }
    for (size_t i = 0; i < f->ntasks; i++) {
        free(f->tasks[i].name);
        free(f->tasks[i].label);
    }
    free(f->inc);
    free(f->tasks);
    memset(f, 0, sizeof *f);
}

static char *dup_or_null(const char *s, int *oom)
{
    if (!s) return NULL;
    char *c = strdup(s);
    if (!c) *oom = 1;
    return c;
}

int gotask_file_read(const char *path, struct gotask_file *f)
{
    memset(f, 0, sizeof *f);
    yaml_document_t doc;
    int r = yaml_load(path, &doc);
    if (r == 0) errno = ENOENT;
    if (r <= 0) return -1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root->type != YAML_MAPPING_NODE) {
        yaml_document_delete(&doc);
        errno = EINVAL;
        return -1;
    }
    int oom = 0;
    yaml_node_t *inc = ymap_get(&doc, root, "includes");
    if (inc && inc->type == YAML_MAPPING_NODE) {
        size_t cnt = (size_t)(inc->data.mapping.pairs.top - inc->data.mapping.pairs.start);
        if (cnt > ITEMS_MAX) cnt = ITEMS_MAX;
        f->inc = calloc(cnt + 1, sizeof *f->inc);
        if (!f->inc) oom = 1;
        for (yaml_node_pair_t *p = inc->data.mapping.pairs.start; !oom && p < inc->data.mapping.pairs.start + cnt; p++) {
            /* includes: { ns: URL } or { ns: { taskfile: URL, ... } } */
            yaml_node_t *v = yaml_document_get_node(&doc, p->value);
            const char *ns = yscalar(&doc, p->key), *url = NULL;
            if (v && v->type == YAML_SCALAR_NODE) url = (const char *)v->data.scalar.value;
            else if (v && v->type == YAML_MAPPING_NODE) {
                yaml_node_t *t = ymap_get(&doc, v, "taskfile");
                if (t && t->type == YAML_SCALAR_NODE) url = (const char *)t->data.scalar.value;
            }
            if (!ns || !url) continue;
            struct gotask_include *e = &f->inc[f->ninc++];
            e->ns = dup_or_null(ns, &oom);
            e->url = dup_or_null(url, &oom);
        }
    }
    yaml_node_t *tasks = ymap_get(&doc, root, "tasks");
    if (!oom && tasks && tasks->type == YAML_MAPPING_NODE) {
        size_t cnt = (size_t)(tasks->data.mapping.pairs.top - tasks->data.mapping.pairs.start);
        if (cnt > ITEMS_MAX) cnt = ITEMS_MAX;
        f->tasks = calloc(cnt + 1, sizeof *f->tasks);
        if (!f->tasks) oom = 1;
        for (yaml_node_pair_t *p = tasks->data.mapping.pairs.start; !oom && p < tasks->data.mapping.pairs.start + cnt; p++) {
            const char *name = yscalar(&doc, p->key);
            if (!name) continue;
            yaml_node_t *l = ymap_get(&doc, yaml_document_get_node(&doc, p->value), "label");
            struct gotask_task *t = &f->tasks[f->ntasks++];
            t->name = dup_or_null(name, &oom);
            t->label = l && l->type == YAML_SCALAR_NODE && l->data.scalar.length ? dup_or_null((const char *)l->data.scalar.value, &oom) : NULL;
        }
    }
    yaml_document_delete(&doc);
    if (oom) {
        gotask_file_free(f);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}
