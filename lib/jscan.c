/* jscan.c -- see jscan.h. A recursive-descent recognizer of the subset of
 * JSON whose compact jansson dump is the text itself. It never allocates;
 * nesting is bounded by JSCAN_MAX_DEPTH, so its stack is too.
 *
 * What jansson 2.14 writes, and so what is accepted here:
 *   - no whitespace; members in the order given (JSON_PRESERVE_ORDER);
 *   - strings: UTF-8 as is; escaped only '"', '\\', and characters below
 *     0x20, as \b \f \n \r \t or else \u00XX with uppercase hex ('/' and
 *     everything from 0x7f up are written raw); \u0000 is refused on load;
 *   - integers as %lld: no "-0", within 64 bits (beyond, jansson refuses);
 *   - reals are written with %.17g, rarely their input text: left to jansson;
 *   - a duplicate key keeps its first position with the last value: left
 *     to jansson. */
#include "jscan.h"

#include <stdint.h>
#include <string.h>

struct st {
    const unsigned char *p, *end;
};

/* Length of the valid UTF-8 sequence (2-4 bytes) at p, or 0: no overlong
 * forms, no surrogates, nothing above U+10FFFF (as jansson checks). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t v;
    if (c >= 0xc2 && c <= 0xdf) n = 2, v = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 3, v = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, v = c & 0x07;
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    return n;
}

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1; /* lowercase hex is valid JSON but not jansson's form */
}

/* Whether any of the 8 bytes in v is '"', '\\', below 0x20 or above 0x7f:
 * the bytes a string cannot simply pass over (the usual SWAR tests, exact
 * as a yes/no answer). */
static int special8(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v) | v) & high ? 1 : 0;
}

/* s->p is past the opening quote; on success it is past the closing one. */
static int string(struct st *s, const char **start, size_t *len)
{
    const unsigned char *p = s->p, *e = s->end;
    *start = (const char *)p;
    while (p < e) {
        /* Plain ASCII, most of most strings, eight bytes at a time. */
        uint64_t w;
        while (e - p >= 8 && (memcpy(&w, p, 8), !special8(w))) p += 8;
        if (p >= e) break;
        unsigned c = *p;
        if (c == '"') {
            *len = (size_t)(p - (const unsigned char *)*start);
            s->p = p + 1;
            return 1;
        }
        if (c < 0x20) return 0;
        if (c == '\\') {
            if (e - p < 2) return 0;
            switch (p[1]) {
            case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't': p += 2; continue;
            case 'u': {
                if (e - p < 6 || p[2] != '0' || p[3] != '0' || (p[4] != '0' && p[4] != '1')) return 0;
                int lo = hexval(p[5]);
                if (lo < 0) return 0;
                int v = (p[4] - '0') * 16 + lo;
                if (v == 0 || v == '\b' || v == '\f' || v == '\n' || v == '\r' || v == '\t') return 0;
                p += 6;
                continue;
            }
            default: return 0;
            }
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_len(p, e);
        if (!k) return 0;
        p += k;
    }
    return 0;
}

static int integer(struct st *s)
{
    const unsigned char *p = s->p, *e = s->end;
    int neg = *p == '-';
    if (neg) p++;
    const unsigned char *d = p;
    if (p >= e || *p < '0' || *p > '9') return 0;
    if (*p == '0') {
        if (neg) return 0; /* "-0" is dumped as "0" */
        p++;
    } else {
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9'))) return 0;
    size_t nd = (size_t)(p - d);
    if (nd > 19) return 0;
    if (nd == 19 && memcmp(d, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0) return 0;
    s->p = p;
    return 1;
}

static int literal(struct st *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return 0;
    s->p += n;
    return 1;
}

static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static int value(struct st *s, int depth, struct jmember *top, size_t maxtop, size_t *ntop, enum jkind *kind,
                 const char **vstart, size_t *vlen);

/* s->p is at '{' or '['. top (depth 0 only) receives the members. */
static int container(struct st *s, int depth, struct jmember *top, size_t maxtop, size_t *ntop)
{
    int obj = *s->p == '{';
    unsigned char close = obj ? '}' : ']';
    uint64_t keys[JSCAN_MAX_KEYS];
    size_t n = 0;
    if (depth >= JSCAN_MAX_DEPTH) return 0;
    s->p++;
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 1;
    }
    for (;;) {
        struct jmember m = {"", NULL, 0, 0, JK_NULL};
        if (obj) {
            if (s->p >= s->end || *s->p != '"') return 0;
            s->p++;
            if (!string(s, &m.key, &m.keylen)) return 0;
            if (n == JSCAN_MAX_KEYS) return 0;
            /* A hash collision is taken for a duplicate: the answer is
             * then only "not known", never wrong. */
            uint64_t h = fnv(m.key, m.keylen);
            for (size_t i = 0; i < n; i++)
                if (keys[i] == h) return 0;
            keys[n] = h;
            if (s->p >= s->end || *s->p != ':') return 0;
            s->p++;
        }
        n++;
        if (!value(s, depth + 1, NULL, 0, NULL, &m.kind, &m.val, &m.vallen)) return 0;
        if (top) {
            if (*ntop == maxtop) return 0;
            top[(*ntop)++] = m;
        }
        if (s->p >= s->end) return 0;
        if (*s->p == close) {
            s->p++;
            return 1;
        }
        if (*s->p != ',') return 0;
        s->p++;
    }
}

static int value(struct st *s, int depth, struct jmember *top, size_t maxtop, size_t *ntop, enum jkind *kind,
                 const char **vstart, size_t *vlen)
{
    if (s->p >= s->end) return 0;
    const unsigned char *start = s->p;
    int ok;
    switch (*s->p) {
    case '{':
    case '[':
        *kind = *s->p == '{' ? JK_OBJECT : JK_ARRAY;
        ok = container(s, depth, top, maxtop, ntop);
        break;
    case '"':
        *kind = JK_STRING;
        s->p++;
        /* A string's span is its escaped text, without the quotes. */
        return string(s, vstart, vlen);
    case 't': *kind = JK_TRUE; ok = literal(s, "true", 4); break;
    case 'f': *kind = JK_FALSE; ok = literal(s, "false", 5); break;
    case 'n': *kind = JK_NULL; ok = literal(s, "null", 4); break;
    default: *kind = JK_INTEGER; ok = integer(s); break;
    }
    *vstart = (const char *)start;
    *vlen = (size_t)(s->p - start);
    return ok;
}

int jscan_canonical(const char *s, size_t n, struct jmember *top, size_t maxtop, size_t *ntop)
{
    struct st st = {(const unsigned char *)s, (const unsigned char *)s + n};
    enum jkind kind;
    const char *v;
    size_t vn, dummy = 0;
    if (!ntop) ntop = &dummy;
    *ntop = 0;
    if (!value(&st, 0, top, top ? maxtop : 0, top ? ntop : NULL, &kind, &v, &vn)) return 0;
    return st.p == st.end;
}

/* JSON's one-letter escapes: a character, then the letter after its backslash. */
static const char SHORT_ESCAPES[] = "\bb\ff\nn\rr\tt";

/* The pair whose side (0: the character, 1: the letter) is c, or NULL. */
static const char *short_escape(char c, int side)
{
    for (const char *p = SHORT_ESCAPES; *p; p += 2)
        if (p[side] == c) return p;
    return NULL;
}

size_t jscan_quote(char *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *o = out;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        const char *e = short_escape((char)c, 0);
        if (c == '"' || c == '\\') *o++ = (char)c;
        else if (e) *o++ = e[1];
        else {
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
    }
    *o++ = '"';
    return (size_t)(o - out);
}

size_t jscan_unescape(char *out, const char *s, size_t n)
{
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            *o++ = s[i];
            continue;
        }
        char c = s[++i];
        const char *e = short_escape(c, 1);
        if (e) *o++ = e[0];
        else if (c == 'u') { /* \u00XX, XX < 0x20: the only \u form jscan_canonical lets through */
            *o++ = (char)((s[i + 3] - '0') * 16 + hexval((unsigned char)s[i + 4]));
            i += 4;
        } else *o++ = c; /* '"' or '\\' */
    }
    return (size_t)(o - out);
}
