/* logpush.c -- reads a Logpush batch as it arrives, one record at a time.
 *
 * Batches may be 1 GB uncompressed, so nothing here holds more than one
 * record (bounded by max_line) plus zlib's window. Cloudflare does not always
 * send Content-Encoding, so gzip is recognised by its magic bytes, and a body
 * made of several gzip members is read as their concatenation, as gzip(1)
 * does. */
#include "logpush.h"

#include <string.h>

#define FAIL(r, k, msg) ((r)->kind = (k), (r)->err = (msg), -1)

void lp_init(struct lp_reader *r, lp_line_fn fn, void *arg, size_t max_decompressed, size_t max_line)
{
    memset(r, 0, sizeof *r);
    r->on_line = fn;
    r->arg = arg;
    r->max_decompressed = max_decompressed;
    r->max_line = max_line;
    r->line.max = max_line;
}

static int emit_line(struct lp_reader *r)
{
    char *p = r->line.p;
    size_t n = r->line.len;
    r->lineno++;
    if (n && p[n - 1] == '\r') n--;
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
    int rc = 0;
    if (i < n) rc = r->on_line(r->arg, p, n, r->lineno);
    r->line.len = 0;
    return rc;
}

/* Decompressed (or plain) bytes: split into lines. */
static int take(struct lp_reader *r, const char *p, size_t n)
{
    if (n > r->max_decompressed - r->total)
        return FAIL(r, LP_TOO_LARGE, "batch larger than the decompressed size limit");
    r->total += n;
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;
        if (buf_append(&r->line, p, k) != 0) return FAIL(r, LP_LONG_LINE, "record longer than the line limit");
        if (!nl) break;
        int rc = emit_line(r);
        if (rc) return rc;
        p += k + 1;
        n -= k + 1;
    }
    return 0;
}

static int inflate_some(struct lp_reader *r, const unsigned char *data, size_t n)
{
    unsigned char out[16384];
    r->z.next_in = (unsigned char *)data;
    r->z.avail_in = (uInt)n;
    while (r->z.avail_in > 0) {
        if (r->mode == 3) {
            /* Another gzip member follows the one that ended. */
            if (inflateReset(&r->z) != Z_OK) return FAIL(r, LP_BAD_GZIP, "gzip reset failed");
            r->mode = 2;
        }
        r->z.next_out = out;
        r->z.avail_out = sizeof out;
        int zr = inflate(&r->z, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
            return FAIL(r, LP_BAD_GZIP, "body is not valid gzip");
        int rc = take(r, (const char *)out, sizeof out - r->z.avail_out);
        if (rc) return rc;
        if (zr == Z_STREAM_END) r->mode = 3;
        else if (zr == Z_BUF_ERROR && r->z.avail_out != 0) break;
    }
    return 0;
}

static int feed_body(struct lp_reader *r, const unsigned char *d, size_t n)
{
    if (r->mode == 1) return take(r, (const char *)d, n);
    return inflate_some(r, d, n);
}

int lp_feed(struct lp_reader *r, const void *data, size_t n)
{
    const unsigned char *d = data;
    if (r->err) return -1;
    if (r->mode == 0) {
        while (n && r->nsniff < 2) {
            r->sniff[r->nsniff++] = *d++;
            n--;
        }
        if (r->nsniff < 2) return 0;
        if (r->sniff[0] == 0x1f && r->sniff[1] == 0x8b) {
            if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK) return FAIL(r, LP_ZLIB, "zlib init failed");
            r->zinit = 1;
            r->mode = 2;
        } else {
            r->mode = 1;
        }
        int rc = feed_body(r, r->sniff, 2);
        if (rc) return rc;
    }
    return n ? feed_body(r, d, n) : 0;
}

int lp_finish(struct lp_reader *r)
{
    if (r->err) return -1;
    if (r->mode == 0 && r->nsniff == 1) {
        r->mode = 1;
        int rc = take(r, (const char *)r->sniff, 1);
        if (rc) return rc;
    }
    if (r->mode == 2) return FAIL(r, LP_TRUNCATED, "gzip body is truncated");
    if (r->line.len) return emit_line(r);
    return 0;
}

void lp_free(struct lp_reader *r)
{
    if (r->zinit) inflateEnd(&r->z);
    r->zinit = 0;
    buf_free(&r->line);
}
