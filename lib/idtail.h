/* idtail.h -- the dedupe keys of the newest events, kept in memory until the
 * store's writer merges them into the ids table in key order (lib/store.c
 * says why). Owned and used by the writer thread only. */
#ifndef SYNCCF_IDTAIL_H
#define SYNCCF_IDTAIL_H

#include <stddef.h>
#include <stdint.h>

struct idtail_entry {
    int64_t h;   /* the id's hash, the ids table's key */
    int64_t seq; /* the event holding it */
};

struct idtail {
    /* Live: keys added since the last freeze, in arrival order (so in seq
     * order: idtail_add is given increasing seqs), with an
     * open-addressing index (slot = position + 1; 0 = empty). */
    struct idtail_entry *live;
    size_t nlive, cap;
    uint32_t *slots;
    size_t nslots; /* a power of two, at least twice cap */
    size_t mark;   /* nlive when the current transaction began */
    int64_t since; /* when the oldest live key arrived (ms) */
    /* Frozen: the live keys of the last freeze, sorted by h, being merged;
     * [0, merged) are in the ids table. */
    struct idtail_entry *frozen;
    size_t nfrozen, merged;
    int64_t frozen_max; /* the highest seq frozen */
};

void idtail_init(struct idtail *t);
void idtail_free(struct idtail *t);
/* Adds a key not yet held; 0, or -1 out of memory (the tail is unchanged). */
int idtail_add(struct idtail *t, int64_t h, int64_t seq, int64_t now_ms);
/* The seq holding h, live or frozen; 0 if none. */
int64_t idtail_find(const struct idtail *t, int64_t h);
/* A transaction begins (idtail_undo forgets what is added after this). */
void idtail_begin(struct idtail *t);
void idtail_undo(struct idtail *t);
/* Moves the live keys to the frozen set, sorted; only when nothing is frozen.
 * 0, or -1 out of memory (nothing moves). */
int idtail_freeze(struct idtail *t);
/* Frozen keys merged into the ids table by a committed transaction; frees the
 * frozen set when all are. */
void idtail_merged(struct idtail *t, size_t n);
void idtail_clear(struct idtail *t);

#endif
