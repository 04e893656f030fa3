/* util.h -- small helpers shared by the library: time, hashing, buffers. */
#ifndef SYNCCF_UTIL_H
#define SYNCCF_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

/* Milliseconds since the epoch, and the RFC 3339 form the event model uses
 * (UTC, ".mmm" only when not zero). TIME_BUF fits the longest form. */
#define TIME_BUF 32
int64_t now_ms(void);
/* Seconds on the monotonic clock, for measuring durations. */
double mono_s(void);
/* The CLOCK_REALTIME instant ms milliseconds from now, as
 * pthread_cond_timedwait wants its deadline. */
struct timespec deadline_ms(long ms);
void time_format_ms(int64_t ms, char out[TIME_BUF]);
/* Strict RFC 3339 reader; returns 0 and sets *ms, or -1. */
int time_parse_rfc3339(const char *s, int64_t *ms);
/* The event model's reading of a JSON time value (docs/events.md#time). */
int time_from_json(const json_t *v, int64_t *ms);
/* The integer case of time_from_json (seconds, ms, µs or ns by magnitude). */
int time_from_integer(int64_t i, int64_t *ms);

/* Exponential backoff: the n-th (1-based) wait in ms, base_ms doubled n-1
 * times and capped at max_ms. With a seed, jitter draws it from [d/2, d] so
 * that many loops failing together do not retry together; seed NULL gives d
 * itself. Every retry loop (dispatch, pull, queue, poll, tunnel, cfwire)
 * takes its waits from here. */
long backoff_ms(unsigned *seed, int n, long base_ms, long max_ms);

/* SHA-256 over the concatenation of the given parts (the algorithm fetched
 * from OpenSSL once per process). 0, or -1 out of memory. */
int sha256_parts(const void *const parts[], const size_t lens[], size_t n, unsigned char md[32]);
/* The first 8 bytes of SHA-256 over the parts, big-endian: the store's ids and
 * shapes keys. */
int64_t hash64(const void *const parts[], const size_t lens[], size_t n);
/* H(x) of docs/events.md: the first 32 hex digits of SHA-256 over the
 * concatenation of the given parts. */
#define HASH_HEX 33
void hash_hex32(const void *const parts[], const size_t lens[], size_t n, char out[HASH_HEX]);

/* Constant-time equality of two byte strings; the length is not secret. */
int ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* A growable byte buffer with a hard cap, for bodies and lines. */
struct buf {
    char *p;
    size_t len, cap, max;
};
/* Returns 0, or -1 when the append would pass b->max (nothing appended). */
int buf_append(struct buf *b, const void *data, size_t n);
void buf_free(struct buf *b);

/* Frees a NULL-terminated list of strings and the list (NULL: nothing). */
void strv_free(char **l);

/* Matches s against a shell-style glob (*, ?, [...]); 1 on match. */
int glob_match(const char *pattern, const char *s);

/* 1 if s (len n) holds only characters of the set and 1..max of them. */
int str_of_class(const char *s, size_t n, const char *set, size_t max);

#endif
