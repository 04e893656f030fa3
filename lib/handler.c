/* handler.c -- the shared part of handler results and definitions. */
#include "handler.h"

#include <stdlib.h>

void handler_result_free(struct handler_result *r)
{
    json_decref(r->detail);
    r->detail = NULL;
}

static void free_list(char **l)
{
    for (char **p = l; p && *p; p++) free(*p);
    free(l);
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
    free_list(h->tc.env);
    free_list(h->tc.includes);
    free_list(h->tc.hosts);
    free_list(h->tc.tasks);
    free_list(h->tc.generates);
    free_list(h->ex.argv);
    free(h->ex.cwd);
}
