/* filter.h -- Logpush record filters: keep only the records that matter. */
#ifndef SYNCCF_FILTER_H
#define SYNCCF_FILTER_H

#include <jansson.h>

/* "DATASET.FIELD=GLOB" or "FIELD=GLOB" (every dataset). A record is kept when
 * every filter that applies to its dataset matches; a missing field reads as
 * the empty string. */
struct filter {
    char dataset[65]; /* "" = any */
    char field[128];
    char *glob;
    struct filter *next;
};

/* Parses spec and prepends it to *list; returns -1 on a bad spec. */
int filter_add(struct filter **list, const char *spec);
int filter_keep(const struct filter *list, const char *dataset, const json_t *rec);
void filter_free(struct filter *list);

#endif
