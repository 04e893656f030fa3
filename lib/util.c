/* util.c -- time, hashing, constant-time comparison and capped buffers.
 *
 * Time handling is hand-written rather than left to strptime()/timegm() because
 * the event model needs exactly the same reading on the C side and in the
 * Worker (docs/events.md#time); a small explicit parser is easier to prove
 * identical than two platform libraries. */
#include "util.h"

#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

long backoff_ms(unsigned *seed, int n, long base_ms, long max_ms)
{
    long d = base_ms;
    for (int i = 1; i < n && d < max_ms; i++) d *= 2;
    if (d > max_ms) d = max_ms;
    if (!seed || d < 2) return d;
    return d / 2 + (long)(rand_r(seed) % (unsigned long)(d / 2 + 1));
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec deadline_ms(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Days since 1970-01-01 (>= 0) to the proleptic Gregorian date: the
 * days-from-civil inverse of Howard Hinnant's date algorithms. gmtime_r and
 * strftime gave the same text, but cost a tenth of a Logpush record's path
 * (a time-zone lock and a format interpreter for a fixed layout). */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468; /* days from 0000-03-01 */
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;                                     /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);              /* [0, 365] from March 1 */
    int64_t mp = (5 * doy + 2) / 153;                                   /* [0, 11] from March */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static char *put_digits(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
    return p + n;
}

void time_format_ms(int64_t ms, char out[TIME_BUF])
{
    if (ms < 0) ms = 0;
    if (ms > MAX_MS) ms = MAX_MS;
    int64_t sec = ms / 1000, days = sec / 86400, rem = sec % 86400;
    int y, mo, d;
    civil_from_days(days, &y, &mo, &d);
    char *p = put_digits(out, y, 4);
    *p++ = '-';
    p = put_digits(p, mo, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, (int)(rem / 3600), 2);
    *p++ = ':';
    p = put_digits(p, (int)(rem / 60 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (int)(rem % 60), 2);
    if (ms % 1000) {
        *p++ = '.';
        p = put_digits(p, (int)(ms % 1000), 3);
    }
    *p++ = 'Z';
    *p = '\0';
}

static int digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

int time_parse_rfc3339(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac = 0;
    size_t n = strlen(s);
    if (n < 20) return -1;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        int nd = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 3) frac = frac * 10 + (*p - '0');
        if (nd == 0) return -1;
        for (; nd < 3; nd++) frac *= 10;
    }
    int off = 0;
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        off = 0;
    } else if ((p[0] == '+' || p[0] == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || digits(p + 4, 2, &om) || oh > 23 || om > 59) return -1;
        off = (oh * 60 + om) * (p[0] == '+' ? 1 : -1);
    } else {
        return -1;
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59)
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap) return -1;
    int64_t t = (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
                 (int64_t)off * 60) * 1000 + frac;
    if (t < 0 || t > MAX_MS) return -1;
    *ms = t;
    return 0;
}

int time_from_integer(int64_t i, int64_t *ms)
{
    int64_t t;
    if (i < 0) return -1;
    if (i < 100000000000LL) t = i * 1000;
    else if (i < 100000000000000LL) t = i;
    else if (i < 100000000000000000LL) t = i / 1000;
    else t = i / 1000000;
    if (t > MAX_MS) return -1;
    *ms = t;
    return 0;
}

int time_from_json(const json_t *v, int64_t *ms)
{
    int64_t t;
    if (json_is_string(v)) return time_parse_rfc3339(json_string_value(v), ms);
    if (json_is_integer(v)) return time_from_integer(json_integer_value(v), ms);
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (!(x >= 0 && x < 1e11)) return -1;
        t = (int64_t)floor(x * 1000);
    } else {
        return -1;
    }
    if (t > MAX_MS) return -1;
    *ms = t;
    return 0;
}

/* Fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up again on
 * every EVP_DigestInit, which costs more than hashing a small event. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }
static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md;
}

int sha256_parts(const void *const parts[], const size_t lens[], size_t n, unsigned char md[32])
{
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    const EVP_MD *alg = sha256();
    int ok = c && alg && EVP_DigestInit_ex(c, alg, NULL);
    for (size_t i = 0; ok && i < n; i++) ok = EVP_DigestUpdate(c, parts[i], lens[i]);
    ok = ok && EVP_DigestFinal_ex(c, md, &mdlen) && mdlen == 32;
    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

int64_t hash64(const void *const parts[], const size_t lens[], size_t n)
{
    unsigned char md[32] = {0};
    (void)sha256_parts(parts, lens, n, md); /* out of memory: 0, a key like any other */
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) h = h << 8 | md[i];
    return (int64_t)h;
}

void hash_hex32(const void *const parts[], const size_t lens[], size_t n, char out[HASH_HEX])
{
    unsigned char md[32] = {0};
    (void)sha256_parts(parts, lens, n, md);
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[32] = '\0';
}

int ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen) return 0;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
    if (n > b->max - b->len) return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int glob_match(const char *pattern, const char *s)
{
    return fnmatch(pattern, s, 0) == 0;
}

int str_of_class(const char *s, size_t n, const char *set, size_t max)
{
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || !strchr(set, s[i])) return 0;
    return 1;
}

void strv_free(char **l)
{
    for (char **p = l; p && *p; p++) free(*p);
    free(l);
}
