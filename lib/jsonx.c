/* jsonx.c -- see jsonx.h. Both passes are linear in the text and allocate at
 * most one copy of it, so they add no new bound to what they are given. */
#include "jsonx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* int64's extremes, as the digits a token is compared with. */
static const char I64_MAX[] = "9223372036854775807";
static const char I64_MIN[] = "9223372036854775808"; /* after its '-' */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Whether the integer digits d[0..n) (no sign, no leading zero) exceed
 * int64, negative or not. */
static int over_range(const char *d, size_t n, int neg)
{
    const char *lim = neg ? I64_MIN : I64_MAX;
    if (n != 19) return n > 19;
    return memcmp(d, lim, 19) > 0;
}

/* The length of the number token at p (JSON grammar), 0 if it is not one;
 * *integer says whether it has neither fraction nor exponent. */
static size_t number_token(const char *p, const char *end, int *integer)
{
    const char *q = p;
    *integer = 1;
    if (q < end && *q == '-') q++;
    if (q >= end || !is_digit(*q)) return 0;
    if (*q == '0') q++;
    else
        while (q < end && is_digit(*q)) q++;
    if (q < end && *q == '.') {
        *integer = 0;
        q++;
        if (q >= end || !is_digit(*q)) return 0;
        while (q < end && is_digit(*q)) q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        *integer = 0;
        q++;
        if (q < end && (*q == '+' || *q == '-')) q++;
        if (q >= end || !is_digit(*q)) return 0;
        while (q < end && is_digit(*q)) q++;
    }
    return (size_t)(q - p);
}

#define MAX_DEPTH 2048 /* jansson's own nesting limit */

/* One walk over the text, counting (out NULL) or copying into out. An
 * over-range integer token in a value's place is counted, or copied quoted
 * as a marker. Returns the number of such tokens, or -1 when a string holds
 * an escaped NUL (markers could not be told from data: the text is left to
 * jansson, which refuses it). Malformed text stops the rewriting, never the
 * copy: jansson then says where it is wrong. */
static long walk(const char *buf, size_t len, char *out, size_t *outlen)
{
    unsigned char stack[MAX_DEPTH / 8] = {0}; /* 1: object */
    size_t depth = 0;
    char prev = 0; /* the last structural character; 0 at the start */
    int rewriting = 1;
    const char *p = buf, *end = buf + len;
    char *o = out;
    long marks = 0;
    while (p < end) {
        char c = *p;
        const char *s = p;
        if (c == '"') {
            for (p++; p < end && *p != '"'; p++) {
                if (*p != '\\') continue;
                if (end - p >= 6 && memcmp(p, "\\u0000", 6) == 0) return -1;
                if (p + 1 < end) p++; /* the escaped character, a quote included */
            }
            if (p < end) p++;
            prev = '"';
        } else if (rewriting && (c == '-' || is_digit(c))) {
            int integer, obj = depth && (stack[(depth - 1) / 8] >> ((depth - 1) % 8) & 1);
            size_t n = number_token(p, end, &integer);
            int neg = c == '-';
            int value_place = prev == 0 || prev == ':' || prev == '[' || (prev == ',' && !obj);
            if (n && integer && value_place && over_range(p + neg, n - (size_t)neg, neg)) {
                marks++;
                if (o) {
                    memcpy(o, "\"\\u0000", 7);
                    memcpy(o + 7, p, n);
                    o[7 + n] = '"';
                    o += n + 8;
                }
                p += n;
                prev = '0';
                continue;
            }
            if (!n) rewriting = 0;
            p += n ? n : 1;
            prev = '0';
        } else {
            p++;
            if (c == '{' || c == '[') {
                if (depth == MAX_DEPTH) rewriting = 0;
                else {
                    if (c == '{') stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
                    else stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
                    depth++;
                }
            } else if ((c == '}' || c == ']') && depth) {
                depth--;
            }
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') prev = c;
        }
        if (o) {
            memcpy(o, s, (size_t)(p - s));
            o += p - s;
        }
    }
    if (outlen) *outlen = (size_t)(o - out);
    return marks;
}

json_t *jx_loadb(const char *buf, size_t len, size_t flags, json_error_t *err)
{
    long marks = walk(buf, len, NULL, NULL);
    if (marks <= 0) return json_loadb(buf, len, flags, err);
    /* Each marker adds "\u0000" and two quotes to its token. */
    char *out = malloc(len + (size_t)marks * 8);
    if (!out) {
        if (err) {
            memset(err, 0, sizeof *err);
            snprintf(err->text, sizeof err->text, "out of memory");
        }
        return NULL;
    }
    size_t n = 0;
    walk(buf, len, out, &n);
    json_t *j = json_loadb(out, n, flags | JSON_ALLOW_NUL, err);
    free(out);
    return j;
}

json_t *jx_loads(const char *s, size_t flags, json_error_t *err)
{
    return jx_loadb(s, strlen(s), flags, err);
}

int jx_is_bigint(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 1 && json_string_value(v)[0] == '\0';
}

int jx_is_string(const json_t *v) { return json_is_string(v) && !jx_is_bigint(v); }

char *jx_dumps(const json_t *j, size_t flags)
{
    char *s = json_dumps(j, flags);
    if (!s || !strstr(s, "\"\\u0000")) return s;
    /* Unquote each marker in place: the output only shrinks. A marker is a
     * whole string "\u0000<digits>"; every other string is copied. */
    char *p = s, *o = s;
    while (*p) {
        if (*p != '"') {
            *o++ = *p++;
            continue;
        }
        if (strncmp(p, "\"\\u0000", 7) == 0) {
            p += 7;
            while (*p && *p != '"') *o++ = *p++;
            if (*p) p++;
            continue;
        }
        *o++ = *p++;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1]) *o++ = *p++;
            *o++ = *p++;
        }
        if (*p) *o++ = *p++;
    }
    *o = '\0';
    return s;
}
