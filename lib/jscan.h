/* jscan.h -- recognizes JSON text that is already in its stored form.
 *
 * Events are stored as jansson's compact dump with member order kept
 * (event_dump). Text that a sender or Logpush produced compact is often
 * byte for byte that dump already; then it can be kept as it is instead of
 * being parsed into a tree and serialized again, which is most of the CPU a
 * record costs. jscan_canonical answers only "certainly identical" (1) or
 * "not known" (0): anything it does not fully understand -- whitespace,
 * reals, escapes jansson would write differently, duplicate keys, integers
 * beyond 64 bits, deep nesting, invalid JSON -- answers 0, and the caller
 * takes the jansson path, which decides validity and the exact form. */
#ifndef SYNCCF_JSCAN_H
#define SYNCCF_JSCAN_H

#include <stddef.h>

enum jkind { JK_OBJECT = 'o', JK_ARRAY = 'a', JK_STRING = 's', JK_INTEGER = 'i', JK_TRUE = 't', JK_FALSE = 'f', JK_NULL = 'n' };

/* One top-level member (of an object: key without its quotes, value) or
 * element (of an array: key empty). A string value's span excludes the
 * quotes and is its escaped text, which is also its stored form. */
struct jmember {
    const char *key, *val;
    size_t keylen, vallen;
    enum jkind kind;
};

/* Nesting deeper than this, or an object with more members than
 * JSCAN_MAX_KEYS, is left to jansson (answer 0): it bounds the scanner's
 * stack and the cost of the duplicate-key check. */
#define JSCAN_MAX_DEPTH 32
#define JSCAN_MAX_KEYS 128

/* 1 when s[0..n) is one JSON value that json_loadb accepts and whose
 * json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER) is exactly s; else 0.
 * With 1, the value's top-level members (if it is an object or an array)
 * are in top[0..*ntop); more than maxtop of them answers 0. */
int jscan_canonical(const char *s, size_t n, struct jmember *top, size_t maxtop, size_t *ntop);

/* Appends to out the JSON string literal (with quotes) jansson writes for
 * the valid UTF-8 string s[0..n). out must have room for 6 * n + 2 bytes;
 * returns the bytes written. */
size_t jscan_quote(char *out, const char *s, size_t n);

/* Decodes a string span from jscan_canonical (escaped text without quotes)
 * into out, which has room for n bytes (decoding never lengthens). Returns
 * the decoded length; the result has no NUL (\u0000 is never canonical). */
size_t jscan_unescape(char *out, const char *s, size_t n);

#endif
