/* page.h -- the status page served at GET /. */
#ifndef SYNCCF_PAGE_H
#define SYNCCF_PAGE_H

#include <sqlite3.h>

#include "util.h"

/* Appends the whole HTML page for the store behind db to out. */
void page_render(sqlite3 *db, struct buf *out);

#endif
