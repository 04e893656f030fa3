/* test_exec.c -- the exec handler (lib/exec.c) on its own: what the command
 * receives (stdin, environment, descriptors, signal state, process group),
 * how its end is reported (exit status, signal, exec failure, timeout),
 * the output tail, deadlock-prone I/O, hostile event data, and concurrent
 * runs. The configured commands are /bin/sh scripts written into a temp
 * directory, or plain programs; exec_run itself never uses a shell. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/handler.h"
#include "testutil.h"

/* KILL_GRACE_MS of lib/exec.c: the bound on how long a command that ignores
 * SIGTERM survives its timeout. */
#define GRACE_MS 1000
/* Slack for a loaded machine (and sanitizer builds) in timing assertions. */
#define MARGIN_MS 1500

static char dir[64];

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/synccf-exec-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* dir/name with the given sh body, executable; returns a static path. */
static const char *script(const char *name, const char *body)
{
    static char path[2][128];
    static int which;
    char *p = path[which ^= 1];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(p, 0755);
    return p;
}

static json_t *event(const char *id, const char *subject)
{
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s}", "id", id, "type", "com.example.thing.done", "source", "/src/a",
                           "time", "2026-11-20T10:00:00Z");
    if (subject) json_object_set_new(ev, "subject", json_string(subject));
    return ev;
}

static void run(char **argv, unsigned timeout_ms, const char *cwd, const json_t *ev, const char *json,
                struct handler_result *res)
{
    struct exec_rule r = {.argv = argv, .timeout_ms = timeout_ms, .cwd = (char *)cwd};
    memset(res, 0, sizeof *res);
    exec_run(&r, ev, json, res);
    assert_non_null(res->detail);
    /* The detail must always serialize: the dispatcher stores it. */
    char *s = json_dumps(res->detail, JSON_COMPACT);
    assert_non_null(s);
    free(s);
}

static const char *output(const struct handler_result *res)
{
    const char *s = json_string_value(json_object_get(res->detail, "output"));
    assert_non_null(s);
    return s;
}

static json_int_t detail_int(const struct handler_result *res, const char *k)
{
    return json_integer_value(json_object_get(res->detail, k));
}

static char *path_in(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static pid_t read_pid(const char *name)
{
    char *s = read_file(path_in(name), NULL);
    assert_non_null(s);
    pid_t pid = (pid_t)atoi(s);
    free(s);
    assert_true(pid > 1);
    return pid;
}

/* 1 when no live (non-zombie) process is left in group pgid (or, with
 * pgid < 0, when process -pgid is dead). Orphans killed by exec_run become
 * zombies of init, which may be slow to reap them: those are dead. A SIGKILL
 * takes a moment to land, so this waits up to 1 s. */
static int group_gone(pid_t pgid)
{
    for (int tries = 0; tries < 50; tries++) {
        int alive = 0;
        DIR *d = opendir("/proc");
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
            char p[300], line[1024];
            snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
            FILE *f = fopen(p, "r");
            if (!f) continue;
            char *ok = fgets(line, sizeof line, f);
            fclose(f);
            char *rp = ok ? strrchr(line, ')') : NULL; /* comm may hold spaces and ')' */
            char state;
            int ppid, pgrp;
            if (rp && sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 && state != 'Z' &&
                (pgid > 0 ? pgrp == pgid : atoi(e->d_name) == -pgid))
                alive++;
        }
        closedir(d);
        if (!alive) return 1;
        usleep(20000);
    }
    return 0;
}

/* ---- what the command receives --------------------------------------------- */

static void test_stdin_and_env(void **st)
{
    (void)st;
    setenv("SYNCCF_PUSH_SECRET", "whsec_must_not_leak", 1);
    setenv("SYNCCF_SOME_OTHER", "not-for-children", 1);
    setenv("LC_ALL", "C.UTF-8", 1);
    setenv("LANG", "C.UTF-8", 1);
    if (!getenv("HOME")) setenv("HOME", "/root", 1);

    /* stdin: exactly the event bytes, quotes, newlines and UTF-8 included. */
    char body[256];
    snprintf(body, sizeof body, "cat > '%s/stdin.bin'", dir);
    char *argv[] = {(char *)script("in.sh", body), NULL};
    json_t *ev = event("ev-1", "site");
    const char *json = "{\"id\":\"ev-1\",\"data\":{\"msg\":\"caf\xC3\xA9 \\\"q\\\"\\n\",\"n\":[1,2]}}\n";
    struct handler_result res;
    run(argv, 5000, NULL, ev, json, &res);
    assert_true(res.ok);
    assert_string_equal(res.error, "");
    assert_int_equal(detail_int(&res, "exit"), 0);
    assert_true(json_is_null(json_object_get(res.detail, "signal")));
    assert_true(json_is_false(json_object_get(res.detail, "timed_out")));
    handler_result_free(&res);
    size_t len;
    char *in = read_file(path_in("stdin.bin"), &len);
    assert_non_null(in);
    assert_int_equal(len, strlen(json));
    assert_memory_equal(in, json, len);
    free(in);

    /* The environment, straight from env(1) (a shell would add its own
     * variables): the allowed names only, with the event's values. "env" is
     * found through PATH. The subject is absent: the variable is empty. */
    json_decref(ev);
    ev = event("ev-2", NULL);
    char *envv[] = {"env", NULL};
    run(envv, 5000, NULL, ev, "{}", &res);
    assert_true(res.ok);
    char *lines = strdup(output(&res));
    char expect_path[4200];
    snprintf(expect_path, sizeof expect_path, "PATH=%s", getenv("PATH"));
    static const char *const allowed[] = {"PATH=", "HOME=", "LANG=", "LC_ALL=", "SYNCCF_EVENT_ID=",
                                          "SYNCCF_EVENT_TYPE=", "SYNCCF_EVENT_SUBJECT=", "SYNCCF_EVENT_SOURCE=",
                                          "SYNCCF_EVENT_TIME="};
    int seen = 0, n = 0;
    char *save;
    for (char *l = strtok_r(lines, "\n", &save); l; l = strtok_r(NULL, "\n", &save), n++) {
        int ok = 0;
        for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
            if (strncmp(l, allowed[i], strlen(allowed[i])) == 0) ok = 1;
        if (!ok) fail_msg("unexpected variable in the command's environment: %s", l);
        static const char *const want[] = {"SYNCCF_EVENT_ID=ev-2",
                                           "SYNCCF_EVENT_TYPE=com.example.thing.done",
                                           "SYNCCF_EVENT_SUBJECT=",
                                           "SYNCCF_EVENT_SOURCE=/src/a",
                                           "SYNCCF_EVENT_TIME=2026-11-20T10:00:00Z",
                                           "LANG=C.UTF-8",
                                           "LC_ALL=C.UTF-8"};
        for (size_t i = 0; i < sizeof want / sizeof *want; i++)
            if (strcmp(l, want[i]) == 0) seen |= 1 << i;
        if (strcmp(l, expect_path) == 0) seen |= 1 << 7;
        if (strncmp(l, "HOME=", 5) == 0 && strcmp(l + 5, getenv("HOME")) == 0) seen |= 1 << 8;
    }
    assert_int_equal(seen, 0x1ff);
    assert_int_equal(n, 9);
    assert_null(strstr(output(&res), "whsec_must_not_leak"));
    free(lines);
    handler_result_free(&res);
    json_decref(ev);
    unsetenv("SYNCCF_PUSH_SECRET");
    unsetenv("SYNCCF_SOME_OTHER");
}

/* The daemon blocks SIGTERM/SIGINT/SIGHUP in every thread and ignores
 * SIGPIPE; it also holds descriptors without CLOEXEC. None of that may
 * reach the command, which runs as the leader of its own process group. */
static void test_child_state(void **st)
{
    (void)st;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, 100), 100); /* no CLOEXEC */
    json_t *ev = event("ev", "s");
    struct handler_result res;

    char *status[] = {"/bin/cat", "/proc/self/status", NULL};
    run(status, 5000, NULL, ev, "", &res);
    assert_true(res.ok);
    assert_non_null(strstr(output(&res), "\nSigBlk:\t0000000000000000\n"));
    /* Signals 32 and 33 are glibc's own (thread cancellation, setxid): no
     * process can change their disposition, so they pass through exec as
     * the parent had them (make, for one, starts commands with them ignored). */
    const char *ign = strstr(output(&res), "\nSigIgn:\t");
    assert_non_null(ign);
    unsigned long long mask = strtoull(ign + 9, NULL, 16);
    assert_int_equal(mask & ~0x180000000ULL, 0);
    handler_result_free(&res);

    char *fds[] = {"/bin/ls", "/proc/self/fd", NULL}; /* 3 is ls's own handle on the directory */
    run(fds, 5000, NULL, ev, "", &res);
    assert_true(res.ok);
    assert_string_equal(output(&res), "0\n1\n2\n3\n");
    handler_result_free(&res);

    char *stat[] = {"/bin/cat", "/proc/self/stat", NULL};
    run(stat, 5000, NULL, ev, "", &res);
    assert_true(res.ok);
    int pid, pgrp;
    const char *rp = strrchr(output(&res), ')');
    assert_non_null(rp);
    assert_int_equal(sscanf(output(&res), "%d", &pid), 1);
    assert_int_equal(sscanf(rp + 1, " %*c %*d %d", &pgrp), 1);
    assert_int_equal(pgrp, pid);
    assert_int_not_equal(pgrp, getpgrp());
    handler_result_free(&res);

    /* cwd, when configured. */
    char *pwd[] = {"/bin/pwd", NULL};
    run(pwd, 5000, dir, ev, "", &res);
    assert_true(res.ok);
    char want[80];
    snprintf(want, sizeof want, "%s\n", dir);
    assert_string_equal(output(&res), want);
    handler_result_free(&res);

    close(100);
    close(fd);
    signal(SIGPIPE, old_pipe);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    json_decref(ev);
}

/* ---- how its end is reported ------------------------------------------------ */

static void test_exit_status(void **st)
{
    (void)st;
    json_t *ev = event("ev", "s");
    struct handler_result res;

    char *fail[] = {(char *)script("fail.sh", "echo out; echo err >&2; exit 3"), NULL};
    run(fail, 5000, NULL, ev, "{}", &res);
    assert_false(res.ok);
    assert_false(res.permanent);
    assert_string_equal(res.error, "exit status 3");
    assert_int_equal(detail_int(&res, "exit"), 3);
    assert_true(json_is_null(json_object_get(res.detail, "signal")));
    assert_string_equal(output(&res), "out\nerr\n"); /* one pipe: stdout and stderr in order */
    assert_true(json_is_integer(json_object_get(res.detail, "ms")));
    handler_result_free(&res);

    char *killed[] = {(char *)script("killed.sh", "kill -KILL $$"), NULL};
    run(killed, 5000, NULL, ev, "{}", &res);
    assert_false(res.ok);
    assert_false(res.permanent);
    assert_string_equal(res.error, "killed by signal 9");
    assert_true(json_is_null(json_object_get(res.detail, "exit")));
    assert_int_equal(detail_int(&res, "signal"), 9);
    handler_result_free(&res);

    /* Arguments are passed as configured, one word each. */
    char *args[] = {(char *)script("args.sh", "printf '[%s]' \"$@\""), "a b", "$HOME", "", NULL};
    run(args, 5000, NULL, ev, "{}", &res);
    assert_true(res.ok);
    assert_string_equal(output(&res), "[a b][$HOME][]");
    handler_result_free(&res);
    json_decref(ev);
}

static void test_exec_failures(void **st)
{
    (void)st;
    json_t *ev = event("ev", "s");
    struct handler_result res;

    char *missing[] = {"/nonexistent/program", NULL};
    run(missing, 5000, NULL, ev, "{}", &res);
    assert_false(res.ok);
    assert_true(res.permanent);
    assert_string_equal(res.error, "cannot run /nonexistent/program: No such file or directory");
    handler_result_free(&res);

    char *unknown[] = {"synccf-no-such-command", NULL}; /* searched in PATH */
    run(unknown, 5000, NULL, ev, "{}", &res);
    assert_true(res.permanent);
    assert_string_equal(res.error, "cannot run synccf-no-such-command: No such file or directory");
    handler_result_free(&res);

    char *noexec[] = {(char *)script("noexec.sh", "exit 0"), NULL};
    chmod(noexec[0], 0644);
    run(noexec, 5000, NULL, ev, "{}", &res);
    assert_true(res.permanent);
    assert_non_null(strstr(res.error, ": Permission denied"));
    handler_result_free(&res);

    /* No #! line: execvp would hand the file to /bin/sh; exec_run refuses. */
    char canary[128], body[256];
    snprintf(canary, sizeof canary, "%s/ran-by-shell", dir);
    snprintf(body, sizeof body, "touch '%s'\n", canary);
    char *bare[] = {path_in("bare"), NULL};
    FILE *f = fopen(bare[0], "w");
    fputs(body, f);
    fclose(f);
    chmod(bare[0], 0755);
    run(bare, 5000, NULL, ev, "{}", &res);
    assert_false(res.ok);
    assert_true(res.permanent);
    assert_non_null(strstr(res.error, "Exec format error"));
    assert_int_not_equal(access(canary, F_OK), 0);
    handler_result_free(&res);

    char *pwd[] = {"/bin/pwd", NULL};
    run(pwd, 5000, "/nonexistent/dir", ev, "{}", &res);
    assert_true(res.permanent);
    assert_string_equal(res.error, "cannot change to directory /nonexistent/dir: No such file or directory");
    handler_result_free(&res);

    /* A plain failure is worth retrying. */
    char *f1[] = {"/bin/false", NULL};
    run(f1, 5000, NULL, ev, "{}", &res);
    assert_false(res.ok);
    assert_false(res.permanent);
    assert_string_equal(res.error, "exit status 1");
    handler_result_free(&res);
    json_decref(ev);
}

/* ---- timeouts and what the command leaves behind ----------------------------- */

static void test_timeout_kills_group(void **st)
{
    (void)st;
    json_t *ev = event("ev", "s");
    char body[256];
    snprintf(body, sizeof body, "echo $$ > '%s/pid'; sleep 1000 & echo $! > '%s/gc'; wait", dir, dir);
    char *argv[] = {(char *)script("hang.sh", body), NULL};
    struct handler_result res;
    run(argv, 300, NULL, ev, "{}", &res);
    assert_false(res.ok);
    assert_false(res.permanent);
    assert_string_equal(res.error, "timed out after 300 ms");
    assert_true(json_is_true(json_object_get(res.detail, "timed_out")));
    json_int_t ms = detail_int(&res, "ms");
    assert_true(ms >= 300);
    assert_true(ms < 300 + GRACE_MS); /* SIGTERM was enough: no grace spent */
    assert_int_equal(detail_int(&res, "signal"), SIGTERM);
    handler_result_free(&res);
    pid_t pgid = read_pid("pid"), gc = read_pid("gc");
    assert_true(group_gone(pgid));
    assert_true(group_gone(-gc)); /* the backgrounded grandchild too */
    json_decref(ev);
}

static void test_timeout_ignores_term(void **st)
{
    (void)st;
    json_t *ev = event("ev", "s");
    char body[256];
    snprintf(body, sizeof body, "trap '' TERM; echo $$ > '%s/pid'; sleep 1000 & wait", dir);
    char *argv[] = {(char *)script("stubborn.sh", body), NULL};
    struct handler_result res;
    run(argv, 300, NULL, ev, "{}", &res);
    assert_false(res.ok);
    assert_true(json_is_true(json_object_get(res.detail, "timed_out")));
    json_int_t ms = detail_int(&res, "ms");
    assert_true(ms >= 300 + GRACE_MS - 50);
    assert_true(ms < 300 + GRACE_MS + MARGIN_MS);
    assert_int_equal(detail_int(&res, "signal"), SIGKILL);
    handler_result_free(&res);
    assert_true(group_gone(read_pid("pid")));
    json_decref(ev);
}

/* A command that exits but leaves a background process holding its output
 * pipe: with no timeout configured, exec_run must still return, and the
 * leftover goes with the group. */
static void test_grandchild_holds_output(void **st)
{
    (void)st;
    json_t *ev = event("ev", "s");
    char body[256];
    snprintf(body, sizeof body, "echo $$ > '%s/pid'; sleep 1000 & echo done", dir);
    char *argv[] = {(char *)script("bg.sh", body), NULL};
    struct handler_result res;
    run(argv, 0, NULL, ev, "{}", &res);
    assert_true(res.ok);
    assert_string_equal(output(&res), "done\n");
    assert_true(detail_int(&res, "ms") < MARGIN_MS);
    handler_result_free(&res);
    assert_true(group_gone(read_pid("pid")));
    json_decref(ev);
}

/* ---- output and stdin volume -------------------------------------------------- */

static void test_output_tail(void **st)
{
    (void)st;
    json_t *ev = event("ev", "s");
    struct handler_result res;

    /* ~2 MB of distinct lines: the tail must be exactly the last 4 KiB. */
    enum { LINES = 300000 };
    size_t cap = 8 * LINES, len = 0;
    char *all = malloc(cap);
    for (int i = 1; i <= LINES; i++) len += (size_t)snprintf(all + len, cap - len, "%d\n", i);
    char *argv[] = {(char *)script("seq.sh", "seq 1 300000"), NULL};
    run(argv, 20000, NULL, ev, "{}", &res);
    assert_true(res.ok);
    assert_int_equal(strlen(output(&res)), HANDLER_OUTPUT_TAIL);
    assert_memory_equal(output(&res), all + len - HANDLER_OUTPUT_TAIL, HANDLER_OUTPUT_TAIL);
    handler_result_free(&res);

    /* Output and a 1 MB stdin at once: the command writes 2 MB before it
     * reads anything, so both pipes fill unless the parent does both. */
    char *big = malloc((1 << 20) + 1);
    for (size_t i = 0; i < 1 << 20; i++) big[i] = (char)('a' + i % 26);
    big[1 << 20] = '\0';
    char body[256];
    snprintf(body, sizeof body, "seq 1 300000; cat > '%s/stdin.bin'", dir);
    char *both[] = {(char *)script("both.sh", body), NULL};
    run(both, 20000, NULL, ev, big, &res);
    assert_true(res.ok);
    assert_memory_equal(output(&res), all + len - HANDLER_OUTPUT_TAIL, HANDLER_OUTPUT_TAIL);
    handler_result_free(&res);
    size_t n;
    char *in = read_file(path_in("stdin.bin"), &n);
    assert_non_null(in);
    assert_int_equal(n, 1 << 20);
    assert_memory_equal(in, big, n);
    free(in);
    free(big);
    free(all);
    json_decref(ev);
}

/* A command that never reads its stdin, with an event far larger than a pipe
 * holds: no deadlock, and the EPIPE (whose SIGPIPE is not ignored in this
 * process) neither kills the caller nor fails the run. */
static void test_unread_stdin(void **st)
{
    (void)st;
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_DFL);
    json_t *ev = event("ev", "s");
    char *big = malloc((1 << 20) + 1);
    memset(big, 'x', 1 << 20);
    big[1 << 20] = '\0';
    struct handler_result res;

    char *quiet[] = {(char *)script("quiet.sh", "echo started; exit 0"), NULL};
    run(quiet, 10000, NULL, ev, big, &res);
    assert_true(res.ok);
    assert_string_equal(output(&res), "started\n");
    assert_true(detail_int(&res, "ms") < MARGIN_MS);
    handler_result_free(&res);

    /* Closes stdin and keeps running: the parent's next write is an EPIPE. */
    char *closer[] = {(char *)script("closer.sh", "exec 0<&-; sleep 0.2; echo still here"), NULL};
    run(closer, 10000, NULL, ev, big, &res);
    assert_true(res.ok);
    assert_string_equal(output(&res), "still here\n");
    handler_result_free(&res);

    /* 1 MB of output while 1 MB of stdin waits unread. */
    char *loud[] = {(char *)script("loud.sh", "head -c 1048576 /dev/zero | tr '\\0' a; printf END"), NULL};
    run(loud, 10000, NULL, ev, big, &res);
    assert_true(res.ok);
    const char *out = output(&res);
    assert_int_equal(strlen(out), HANDLER_OUTPUT_TAIL);
    assert_memory_equal(out + HANDLER_OUTPUT_TAIL - 3, "END", 3);
    assert_int_equal(strspn(out, "a"), HANDLER_OUTPUT_TAIL - 3);
    handler_result_free(&res);

    free(big);
    json_decref(ev);
    signal(SIGPIPE, old_pipe);
}

static void test_output_not_utf8(void **st)
{
    (void)st;
    json_t *ev = event("ev", "s");
    struct handler_result res;
    char *bad[] = {(char *)script("bad.sh", "printf 'ok \\377\\376 caf\\303\\251\\000z \\355\\240\\200\\n'"), NULL};
    run(bad, 5000, NULL, ev, "{}", &res);
    assert_true(res.ok);
    /* Invalid bytes, NUL and an encoded surrogate each become U+FFFD. */
    assert_string_equal(output(&res), "ok \xEF\xBF\xBD\xEF\xBF\xBD caf\xC3\xA9\xEF\xBF\xBDz "
                                      "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\n");
    handler_result_free(&res);

    /* The tail starts inside a two-byte character: its orphan byte is replaced. */
    char *cut[] = {(char *)script("cut.sh", "printf '\\303\\251'; head -c 4095 /dev/zero | tr '\\0' x"), NULL};
    run(cut, 5000, NULL, ev, "{}", &res);
    assert_true(res.ok);
    const char *out = output(&res);
    assert_int_equal(strlen(out), 3 + 4095);
    assert_memory_equal(out, "\xEF\xBF\xBD", 3);
    assert_int_equal(strspn(out + 3, "x"), 4095);
    handler_result_free(&res);
    json_decref(ev);
}

/* ---- hostile event data --------------------------------------------------------- */

static void test_injection(void **st)
{
    (void)st;
    char canary[64], victim[128];
    snprintf(canary, sizeof canary, "/tmp/pwned-%d", (int)getpid());
    snprintf(victim, sizeof victim, "%s/victim", dir);
    unlink(canary);
    assert_int_equal(mkdir(victim, 0755), 0);

    char id[128], subject[512], type[256];
    snprintf(id, sizeof id, "$(touch %s)", canary);
    snprintf(subject, sizeof subject, "`touch %s`; rm -rf %s; touch %s", canary, victim, canary);
    snprintf(type, sizeof type, "t'\"; touch %s #\n$(touch %s)", canary, canary);
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", id, "subject", subject, "type", type, "source",
                           "|touch /tmp/x", "time", "2026-11-20T10:00:00Z");
    json_object_set_new(ev, "data", json_string(subject));
    char *json = json_dumps(ev, JSON_COMPACT);

    /* Even a script that uses the values (quoted, as it should) gets them verbatim. */
    char *argv[] = {(char *)script("use.sh", "printf '%s|' \"$SYNCCF_EVENT_ID\" \"$SYNCCF_EVENT_SUBJECT\" "
                                             "\"$SYNCCF_EVENT_TYPE\" \"$SYNCCF_EVENT_SOURCE\"; cat"),
                    "$(touch /tmp/never)", NULL};
    struct handler_result res;
    run(argv, 5000, NULL, ev, json, &res);
    assert_true(res.ok);
    char want[4096];
    snprintf(want, sizeof want, "%s|%s|%s||touch /tmp/x|%s", id, subject, type, json);
    assert_string_equal(output(&res), want);
    handler_result_free(&res);

    /* And without any shell, env(1) shows them unchanged. */
    char *envv[] = {"/usr/bin/env", NULL};
    run(envv, 5000, NULL, ev, json, &res);
    assert_true(res.ok);
    char line[600];
    snprintf(line, sizeof line, "SYNCCF_EVENT_ID=%s\n", id);
    assert_non_null(strstr(output(&res), line));
    snprintf(line, sizeof line, "SYNCCF_EVENT_SUBJECT=%s\n", subject);
    assert_non_null(strstr(output(&res), line));
    handler_result_free(&res);

    assert_int_not_equal(access(canary, F_OK), 0);
    assert_int_equal(access(victim, F_OK), 0);
    free(json);
    json_decref(ev);
}

/* ---- concurrency -------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 5

struct worker {
    int n;
    const char *script;
    int failures;
    char why[1024];
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        char tag[16], id[32], json[64], want[128];
        snprintf(tag, sizeof tag, "t%d", w->n);
        snprintf(id, sizeof id, "ev-%d-%d", w->n, i);
        snprintf(json, sizeof json, "{\"n\":%d,\"i\":%d}", w->n, i);
        snprintf(want, sizeof want, "%s:%s:%s", tag, id, json);
        char *argv[] = {(char *)w->script, tag, NULL};
        struct exec_rule r = {.argv = argv, .timeout_ms = 10000};
        json_t *ev = event(id, "s");
        struct handler_result res = {0};
        exec_run(&r, ev, json, &res);
        const char *out = json_string_value(json_object_get(res.detail, "output"));
        if (!res.ok || !out || strcmp(out, want) != 0) {
            w->failures++;
            snprintf(w->why, sizeof w->why, "round %d: ok=%d error=%s output=%s want=%s", i, res.ok, res.error,
                     out ? out : "(none)", want);
        }
        handler_result_free(&res);
        json_decref(ev);
    }
    return NULL;
}

static void test_concurrent(void **st)
{
    (void)st;
    /* Each run prints its argument, its event id and its stdin; the sleep
     * keeps runs overlapping so forks happen while other pipes are open. */
    const char *s = script("conc.sh", "printf '%s:%s:' \"$1\" \"$SYNCCF_EVENT_ID\"; cat; sleep 0.05");
    struct worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.n = i, .script = s};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++)
        if (w[i].failures) fail_msg("thread %d: %d failures, last %s", i, w[i].failures, w[i].why);
}

int main(void)
{
    /* A regression in exec_run shows up as a hang (a pipe never drained, a
     * group never killed): fail the binary rather than stall the suite. */
    alarm(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stdin_and_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kills_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_ignores_term, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grandchild_holds_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unread_stdin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_not_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
