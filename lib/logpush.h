/* logpush.h -- streaming reader for Logpush HTTP batches (gzip or plain NDJSON). */
#ifndef SYNCCF_LOGPUSH_H
#define SYNCCF_LOGPUSH_H

#include <stddef.h>
#include <zlib.h>

#include "util.h"

/* Why a batch was refused for its input (or zlib); lp_reader.err says it in
 * words. The receiver maps each kind to its answer (server.c, lp_answers). */
enum lp_error {
    LP_OK,
    LP_TOO_LARGE,   /* the batch decompresses past max_decompressed */
    LP_LONG_LINE,   /* one record is longer than max_line */
    LP_BAD_GZIP,    /* not a valid gzip stream, or a member cannot follow */
    LP_TRUNCATED,   /* the gzip stream ends early */
    LP_ZLIB,        /* zlib could not start */
};

/* Called once per non-blank line, without its terminator. A non-zero return
 * stops the reader (lp_feed/lp_finish then return that value). */
typedef int (*lp_line_fn)(void *arg, const char *line, size_t len, unsigned long lineno);

struct lp_reader {
    lp_line_fn on_line;
    void *arg;
    size_t max_decompressed; /* bound on the whole batch, against gzip bombs */
    size_t max_line;         /* bound on one record */

    /* state */
    int mode; /* 0 undecided, 1 plain, 2 gzip, 3 gzip member ended */
    unsigned char sniff[2];
    size_t nsniff;
    z_stream z;
    int zinit;
    struct buf line;
    size_t total;
    unsigned long lineno;
    const char *err;    /* set when a feed fails for a reason of the input */
    enum lp_error kind; /* with err */
};

void lp_init(struct lp_reader *r, lp_line_fn fn, void *arg, size_t max_decompressed, size_t max_line);
int lp_feed(struct lp_reader *r, const void *data, size_t n);
int lp_finish(struct lp_reader *r);
void lp_free(struct lp_reader *r);

#endif
