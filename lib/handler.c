/* handler.c -- the shared part of handler results and definitions. */
#include "handler.h"

#include <stdlib.h>

#include "util.h"

void handler_result_free(struct handler_result *r)
{
    json_decref(r->detail);
    r->detail = NULL;
}

void handler_def_free(struct handler_def *h)
{
    free(h->name);
    free(h->match_type);
    free(h->match_subject);
    for (size_t i = 0; i < h->nmatch_data; i++) {
        free(h->match_data[i].path);
        free(h->match_data[i].value);
    }
    free(h->match_data);
    free(h->tc.dir);
    free(h->tc.temp_dir);
    free(h->tc.remote_cache_dir);
    free(h->tc.taskfile);
    strv_free(h->tc.env);
    strv_free(h->tc.includes);
    strv_free(h->tc.hosts);
    strv_free(h->tc.tasks);
    strv_free(h->tc.generates);
    strv_free(h->ex.argv);
    free(h->ex.cwd);
}
