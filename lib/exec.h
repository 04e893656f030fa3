/* exec.h -- the exec handler: a command with the event on stdin. Owns the
 * rule (what the file's exec: section says) and its run. */
#ifndef SYNCCF_EXEC_H
#define SYNCCF_EXEC_H

#include <jansson.h>

struct handler_result;

struct exec_rule {
    char **argv;        /* NULL-terminated; argv[0] absolute or found in PATH */
    unsigned timeout_ms;
    char *cwd;          /* may be NULL */
};

/* Runs argv without a shell, event JSON on stdin, SYNCCF_EVENT_ID, _TYPE,
 * _SUBJECT, _SOURCE and _TIME in a minimal environment (PATH, HOME, LANG:
 * nothing else of the daemon's environment, so no secrets). Kills the
 * process group at the timeout. detail: {"exit":N|null,"signal":N|null,
 * "timed_out":bool,"output":"<last 4 KiB of stdout+stderr>"} */
void exec_run(const struct exec_rule *rule, const json_t *ev, const char *ev_json, struct handler_result *res);

#endif
