/* handler.c -- the shared part of handler results. */
#include "handler.h"

void handler_result_free(struct handler_result *r)
{
    json_decref(r->detail);
    r->detail = NULL;
}
