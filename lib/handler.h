/* handler.h -- what a handler is given and what it reports back.
 *
 * A handler run is one attempt of one handler on one event. It reports
 * success or failure, a message, and details worth keeping (the files it
 * invalidated, the exit status and the tail of the output), which the
 * dispatcher records with the run. The rules of each kind are in taskcache.h
 * and exec.h; which handlers an event reaches is route.h's. */
#ifndef SYNCCF_HANDLER_H
#define SYNCCF_HANDLER_H

#include <jansson.h>
#include <stddef.h>

#include "exec.h"
#include "taskcache.h"

#define HANDLER_OUTPUT_TAIL 4096

struct handler_result {
    int ok;             /* 1 success, 0 failure (retried with backoff) */
    int permanent;      /* with ok == 0: retrying cannot help (bad config) */
    char error[256];    /* why it failed, for status and logs */
    json_t *detail;     /* owned by the result: e.g. {"removed":[...]} or {"exit":0,"output":"..."} */
};

void handler_result_free(struct handler_result *r);

/* ---- the handler definition: which events, and what runs ----------------- */

enum handler_kind { HANDLER_TASK_CACHE, HANDLER_EXEC, HANDLER_CALLBACK };

struct data_match {
    char *path;  /* dotted path into the event's data, e.g. "data.environment" */
    char *value; /* compared with the value's text (numbers and booleans as JSON writes them) */
};

struct handler_def {
    char *name;
    enum handler_kind kind;
    /* Which events: all given conditions must hold. */
    char *match_type;    /* glob on type; NULL = any */
    char *match_subject; /* glob on subject; NULL = any */
    struct data_match *match_data;
    size_t nmatch_data;

    struct taskcache_rule tc;
    struct exec_rule ex;
    /* HANDLER_CALLBACK (the C API): returns 0 on success. */
    int (*fn)(const char *event_json, void *arg);
    void *arg;
};

/* Frees what h holds (not h itself). */
void handler_def_free(struct handler_def *h);

#endif
