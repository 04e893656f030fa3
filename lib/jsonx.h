/* jsonx.h -- JSON text in and out of jansson without losing integers past
 * 64 bits.
 *
 * jansson refuses an integer token outside int64 ("too big integer") while
 * the Worker keeps it digit for digit (JSON.rawJSON). Both sides must keep
 * the same events, so such a token is carried through jansson as a marker
 * string -- a NUL character followed by its digits -- and written back as the
 * bare number by jx_dumps. Input strings cannot hold a NUL (jansson refuses
 * \u0000 unless JSON_ALLOW_NUL, and jx_loadb only allows it for its own
 * markers), so a marker is never confused with data. */
#ifndef SYNCCF_JSONX_H
#define SYNCCF_JSONX_H

#include <jansson.h>
#include <stddef.h>

/* json_loadb with integers past 64 bits kept as markers. */
json_t *jx_loadb(const char *buf, size_t len, size_t flags, json_error_t *err);
json_t *jx_loads(const char *s, size_t flags, json_error_t *err);

/* json_dumps with markers written back as their digits. Caller frees. */
char *jx_dumps(const json_t *j, size_t flags);

/* A marker: an integer past 64 bits. */
int jx_is_bigint(const json_t *v);
/* A real string (not a marker). */
int jx_is_string(const json_t *v);

#endif
