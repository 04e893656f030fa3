/* envfile.c -- owns the KEY=value file reader behind `--env-file` and the
 * xplat variable names synccf accepts as fallbacks for its own, so that an
 * xplat project's existing .env runs synccf unchanged.
 *
 * The syntax is the common ground of systemd's EnvironmentFile=, docker's
 * --env-file and dotenv: comments, "export ", single and double quotes.
 * Parsing is bounded (line count, value size) because the file may come
 * from anywhere a deployment puts it. */
#include "envfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_MAX (64u << 10)
#define FILE_MAX (1u << 20)

static int is_key_start(int c) { return isalpha(c) || c == '_'; }
static int is_key_char(int c) { return isalnum(c) || c == '_'; }

int envfile_parse(const char *text, size_t len, envfile_fn fn, void *arg, char *err, size_t errlen)
{
    size_t i = 0;
    unsigned line = 1;
    char *val = malloc(VALUE_MAX + 1);
    if (!val) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
#define FAIL(...)                                                                                                        \
    do {                                                                                                                 \
        int n_ = snprintf(err, errlen, "line %u: ", line);                                                               \
        if (n_ > 0 && (size_t)n_ < errlen) snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__);                        \
        rc = -1;                                                                                                         \
        goto out;                                                                                                        \
    } while (0)
    while (i < len) {
        while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r')) i++;
        if (i < len && text[i] == '\n') {
            i++, line++;
            continue;
        }
        if (i >= len) break;
        if (text[i] == '#' || text[i] == ';') { /* systemd also takes ';' */
            while (i < len && text[i] != '\n') i++;
            continue;
        }
        if (len - i > 7 && memcmp(text + i, "export", 6) == 0 && (text[i + 6] == ' ' || text[i + 6] == '\t')) {
            i += 6;
            while (i < len && (text[i] == ' ' || text[i] == '\t')) i++;
        }
        char key[256];
        size_t k = 0;
        if (i >= len || !is_key_start((unsigned char)text[i])) FAIL("expected KEY=value");
        while (i < len && is_key_char((unsigned char)text[i])) {
            if (k >= sizeof key - 1) FAIL("name longer than %zu characters", sizeof key - 1);
            key[k++] = text[i++];
        }
        key[k] = '\0';
        while (i < len && (text[i] == ' ' || text[i] == '\t')) i++;
        if (i >= len || text[i] != '=') FAIL("expected '=' after %s", key);
        i++;
        while (i < len && (text[i] == ' ' || text[i] == '\t')) i++;
        size_t v = 0;
        unsigned start_line = line;
        if (i < len && (text[i] == '\'' || text[i] == '"')) {
            char q = text[i++];
            for (;;) {
                if (i >= len) {
                    line = start_line;
                    FAIL("%s: unterminated %s quote", key, q == '"' ? "double" : "single");
                }
                char ch = text[i++];
                if (ch == q) break;
                if (ch == '\n') line++;
                if (q == '"' && ch == '\\' && i < len) {
                    char e = text[i++];
                    switch (e) {
                    case 'n': ch = '\n'; break;
                    case 't': ch = '\t'; break;
                    case 'r': ch = '\r'; break;
                    case '\n': line++; continue; /* a continued line */
                    default: ch = e; break;      /* \" \\ \$ \` and the rest: the character itself */
                    }
                }
                if (v >= VALUE_MAX) FAIL("%s: value longer than %u bytes", key, VALUE_MAX);
                val[v++] = ch;
            }
            /* Only a comment may follow the closing quote. */
            while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r')) i++;
            if (i < len && text[i] == '#')
                while (i < len && text[i] != '\n') i++;
            if (i < len && text[i] != '\n') FAIL("%s: unexpected text after the closing quote", key);
        } else {
            while (i < len && text[i] != '\n') {
                /* " #" starts a comment in a bare value (dotenv); a '#'
                 * inside a word (a URL's fragment, a password) does not. */
                if (text[i] == '#' && v > 0 && (val[v - 1] == ' ' || val[v - 1] == '\t')) {
                    while (i < len && text[i] != '\n') i++;
                    break;
                }
                if (text[i] == '\\' && i + 1 < len && text[i + 1] == '\n') { /* systemd's continuation */
                    i += 2, line++;
                    continue;
                }
                if (v >= VALUE_MAX) FAIL("%s: value longer than %u bytes", key, VALUE_MAX);
                val[v++] = text[i++];
            }
            while (v && (val[v - 1] == ' ' || val[v - 1] == '\t' || val[v - 1] == '\r')) v--;
        }
        val[v] = '\0';
        if (memchr(val, '\0', v)) FAIL("%s: value holds a NUL byte", key);
        if (fn && fn(key, val, arg)) break;
    }
out:
#undef FAIL
    /* The buffer last held a value, often a secret: wipe it before free. */
    if (val) explicit_bzero(val, VALUE_MAX + 1);
    free(val);
    return rc;
}

static int set_unset(const char *key, const char *value, void *arg)
{
    (void)arg;
    setenv(key, value, 0);
    return 0;
}

int envfile_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = malloc(FILE_MAX + 1);
    if (!text) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t n = fread(text, 1, FILE_MAX + 1, f);
    fclose(f);
    if (n > FILE_MAX) {
        free(text);
        snprintf(err, errlen, "%s: larger than %u bytes", path, FILE_MAX);
        return -1;
    }
    char why[256];
    int rc = envfile_parse(text, n, set_unset, NULL, why, sizeof why);
    if (rc != 0) snprintf(err, errlen, "%s: %s", path, why);
    explicit_bzero(text, n); /* it holds secrets */
    free(text);
    return rc;
}

/* synccf's name <- xplat's. The order is the precedence: the first set wins
 * (synccf's own name always beats the fallbacks, as setenv(.., 0) keeps it). */
static const char *const fallbacks[][2] = {
    {"CLOUDFLARE_API_TOKEN", "CF_API_TOKEN"},
    {"CLOUDFLARE_ACCOUNT_ID", "CF_ACCOUNT_ID"},
    {"SYNCCF_NOTIFY_SECRET", "CF_WEBHOOK_SECRET"}, /* the Notifications destination secret (NOTIFY_SECRET) */
    {"SYNCCF_NOTIFY_SECRET", "NOTIFY_SECRET"},
    {"SYNCCF_HOOK_TOKEN", "SYNC_TOKEN"}, /* xplat's Worker -> receiver bearer token */
    {"SYNCCF_HOOK_TOKEN", "HOOK_TOKEN"},
};
static const char *used[2 * (sizeof fallbacks / sizeof *fallbacks) + 3];

void env_xplat_fallbacks(void)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof fallbacks / sizeof *fallbacks; i++) {
        const char *have = getenv(fallbacks[i][0]), *alt = getenv(fallbacks[i][1]);
        if ((have && *have) || !alt || !*alt) continue;
        setenv(fallbacks[i][0], alt, 1);
        used[n++] = fallbacks[i][0];
        used[n++] = fallbacks[i][1];
    }
    /* xplat's receiver port: synccf's receiver listens there, on loopback. */
    const char *port = getenv("CLOUDFLARE_RECEIVER_PORT");
    const char *listen = getenv("SYNCCF_LISTEN");
    if (port && *port && (!listen || !*listen) && strlen(port) <= 5 && strspn(port, "0123456789") == strlen(port)) {
        char addr[32];
        snprintf(addr, sizeof addr, "127.0.0.1:%s", port);
        setenv("SYNCCF_LISTEN", addr, 1);
        used[n++] = "SYNCCF_LISTEN";
        used[n++] = "CLOUDFLARE_RECEIVER_PORT";
    }
    used[n] = NULL;
}

const char *const *env_fallbacks_used(void) { return used; }
