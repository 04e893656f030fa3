/* log.c -- one line per record on stderr, logfmt by default or JSON.
 *
 * The only process-wide state in the library: the log format and level, set
 * once by log_setup() before any thread starts and read-only afterwards. A
 * line is formatted into a local buffer and written with one write(2), so
 * lines from different threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static enum log_level min_level = LOG_INFO;
static int json_mode;

static const char *const names[] = {"debug", "info", "warn", "error"};

void log_setup(enum log_level min, int json)
{
    min_level = min;
    json_mode = json;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    return -1;
}

struct line {
    char b[2048];
    size_t n;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > sizeof l->b - 2 - l->n) n = sizeof l->b - 2 - l->n;
    memcpy(l->b + l->n, s, n);
    l->n += n;
}

/* Quoted value: JSON string escaping, which logfmt readers also accept. */
static void put_quoted(struct line *l, const char *v)
{
    put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p && l->n < sizeof l->b - 16; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(l, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            put(l, esc, 6);
        } else {
            put(l, (const char *)p, 1);
        }
    }
    put(l, "\"", 1);
}

static int needs_quotes(const char *v)
{
    if (!*v) return 1;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f) return 1;
    return 0;
}

static void field(struct line *l, const char *k, const char *v, int first)
{
    if (json_mode) {
        if (!first) put(l, ",", 1);
        put_quoted(l, k);
        put(l, ":", 1);
        put_quoted(l, v);
    } else {
        if (!first) put(l, " ", 1);
        put(l, k, strlen(k));
        put(l, "=", 1);
        if (needs_quotes(v)) put_quoted(l, v);
        else put(l, v, strlen(v));
    }
}

void log_msg(enum log_level lvl, const char *msg, ...)
{
    if (lvl < min_level) return;
    struct line l = {.n = 0};
    char ts[TIME_BUF];
    time_format_ms(now_ms(), ts);
    if (json_mode) put(&l, "{", 1);
    field(&l, "time", ts, 1);
    field(&l, "level", names[lvl], 0);
    field(&l, "msg", msg, 0);
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        field(&l, k, v ? v : "", 0);
    }
    va_end(ap);
    if (json_mode) put(&l, "}", 1);
    l.b[l.n++] = '\n';
    ssize_t w = write(2, l.b, l.n);
    (void)w;
}
