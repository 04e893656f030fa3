/* exec.c -- the exec handler: runs a configured argv with the event on stdin.
 *
 * No shell is ever involved: argv comes from the configuration only, and the
 * event reaches the command through stdin and SYNCCF_EVENT_* variables. The
 * environment is built from scratch (the daemon's holds secrets). The command
 * runs in its own process group so that a timeout kills everything it started,
 * and only the last 4 KiB of its output are kept. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handler.h"
#include "util.h"

#define KILL_GRACE_MS 1000 /* between SIGTERM and SIGKILL of the group */
#define DRAIN_MS 200       /* output still read after the command has exited */

extern char **environ;

struct ring {
    char b[HANDLER_OUTPUT_TAIL];
    size_t len, pos; /* bytes held, next write position */
};

static void ring_put(struct ring *r, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        r->b[r->pos] = p[i];
        r->pos = (r->pos + 1) % sizeof r->b;
        if (r->len < sizeof r->b) r->len++;
    }
}

/* The tail as a JSON string; NUL and, if the tail is not UTF-8, every
 * non-ASCII byte become '?'. */
static json_t *ring_json(const struct ring *r)
{
    char out[HANDLER_OUTPUT_TAIL + 1];
    size_t start = (r->pos + sizeof r->b - r->len) % sizeof r->b;
    for (size_t i = 0; i < r->len; i++) {
        out[i] = r->b[(start + i) % sizeof r->b];
        if (out[i] == '\0') out[i] = '?'; /* readers of the tail use C strings */
    }
    out[r->len] = '\0';
    json_t *s = json_stringn(out, r->len);
    if (s) return s;
    for (size_t i = 0; i < r->len; i++)
        if ((unsigned char)out[i] >= 0x80 || out[i] == '\0') out[i] = '?';
    return json_stringn(out, r->len);
}

static char *env_pair(const char *k, const char *v)
{
    size_t n = strlen(k) + strlen(v) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%s=%s", k, v);
    return s;
}

static const char *attr(const json_t *ev, const char *k)
{
    const char *v = json_string_value(json_object_get(ev, k));
    return v ? v : "";
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void exec_run(const struct exec_rule *rule, const json_t *ev, const char *ev_json, struct handler_result *res)
{
    /* Everything the child needs is prepared before fork: between fork and
     * exec only async-signal-safe calls are allowed in a threaded process. */
    char *envp[12];
    int ne = 0;
    const char *path = getenv("PATH");
    envp[ne++] = env_pair("PATH", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    if (getenv("HOME")) envp[ne++] = env_pair("HOME", getenv("HOME"));
    if (getenv("LANG")) envp[ne++] = env_pair("LANG", getenv("LANG"));
    envp[ne++] = env_pair("SYNCCF_EVENT_ID", attr(ev, "id"));
    envp[ne++] = env_pair("SYNCCF_EVENT_TYPE", attr(ev, "type"));
    envp[ne++] = env_pair("SYNCCF_EVENT_SUBJECT", attr(ev, "subject"));
    envp[ne++] = env_pair("SYNCCF_EVENT_SOURCE", attr(ev, "source"));
    envp[ne++] = env_pair("SYNCCF_EVENT_TIME", attr(ev, "time"));
    envp[ne] = NULL;

    int in[2] = {-1, -1}, out[2] = {-1, -1}, st[2] = {-1, -1};
    struct ring ring = {.len = 0};
    int64_t t0 = mono_ms();
    int status = 0, timed_out = 0, exec_errno = 0;
    pid_t pid = -1;

    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(st, O_CLOEXEC)) {
        snprintf(res->error, sizeof res->error, "pipe: %s", strerror(errno));
        goto done;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(res->error, sizeof res->error, "fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) {
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        int keep = st[1];
        /* Close every other descriptor the daemon holds (sockets, the store). */
        if (keep > 3) close_range(3, (unsigned)keep - 1, 0);
        close_range((unsigned)keep + 1, ~0U, 0);
        if (rule->cwd && chdir(rule->cwd) != 0) {
            int e = errno;
            ssize_t w = write(keep, &e, sizeof e);
            (void)w;
            _exit(127);
        }
        execvpe(rule->argv[0], rule->argv, envp);
        int e = errno;
        ssize_t w = write(keep, &e, sizeof e);
        (void)w;
        _exit(127);
    }
    setpgid(pid, pid); /* also from here: no race with the child's own call */
    close(in[0]);
    close(out[1]);
    close(st[1]);
    in[0] = out[1] = st[1] = -1;
    /* exec failed if the child wrote errno before its CLOEXEC pipe closed. */
    if (read(st[0], &exec_errno, sizeof exec_errno) != (ssize_t)sizeof exec_errno) exec_errno = 0;

    /* A command that exits without reading its stdin makes our write fail
     * with EPIPE; the SIGPIPE that comes with it must not kill the caller
     * (the daemon ignores it; a program embedding the library may not). It
     * is blocked on this thread while writing and any pending one taken. */
    sigset_t pipe_set, old_mask;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);

    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    size_t left = strlen(ev_json);
    const char *wp = ev_json;
    if (!left) {
        close(in[1]);
        in[1] = -1;
    }
    int exited = 0, killed_term = 0;
    int64_t deadline = rule->timeout_ms ? t0 + rule->timeout_ms : 0, exited_at = 0, term_at = 0;
    while (out[0] >= 0) {
        int64_t now = mono_ms();
        if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
            exited = 1;
            exited_at = now;
        }
        if (exited && now - exited_at >= DRAIN_MS) break; /* a grandchild holds the pipe */
        if (!exited && deadline && now >= deadline && !killed_term) {
            timed_out = killed_term = 1;
            term_at = now;
            kill(-pid, SIGTERM);
        }
        if (!exited && killed_term && now - term_at >= KILL_GRACE_MS) kill(-pid, SIGKILL);

        struct pollfd p[2] = {{out[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
        int np = in[1] >= 0 ? 2 : 1;
        poll(p, (nfds_t)np, 20);
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[8192];
            ssize_t n = read(out[0], buf, sizeof buf);
            if (n > 0) ring_put(&ring, buf, (size_t)n);
            else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(out[0]);
                out[0] = -1;
            }
        }
        if (np == 2 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in[1], wp, left);
            if (n > 0) {
                wp += n;
                left -= (size_t)n;
            }
            if (left == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                close(in[1]); /* done, or the command stopped reading (EPIPE) */
                in[1] = -1;
            }
        }
    }
    /* Whatever the command left behind in its group goes with it. */
    kill(-pid, SIGKILL);
    if (!exited) waitpid(pid, &status, 0);
    if (in[1] >= 0) {
        close(in[1]);
        in[1] = -1;
    }
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {}
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);

done:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0) close(in[i]);
        if (out[i] >= 0) close(out[i]);
        if (st[i] >= 0) close(st[i]);
    }
    for (int i = 0; i < ne; i++) free(envp[i]);
    if (pid < 0) {
        res->permanent = 0;
        return;
    }
    json_t *d = json_object();
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    json_object_set_new(d, "exit", code >= 0 ? json_integer(code) : json_null());
    json_object_set_new(d, "signal", sig ? json_integer(sig) : json_null());
    json_object_set_new(d, "timed_out", json_boolean(timed_out));
    json_object_set_new(d, "output", ring_json(&ring));
    json_object_set_new(d, "ms", json_integer(mono_ms() - t0));
    res->detail = d;
    if (exec_errno) {
        snprintf(res->error, sizeof res->error, "cannot run %s: %s", rule->argv[0], strerror(exec_errno));
        res->permanent = exec_errno == ENOENT || exec_errno == EACCES || exec_errno == ENOTDIR;
    } else if (timed_out) {
        snprintf(res->error, sizeof res->error, "timed out after %u ms", rule->timeout_ms);
    } else if (sig) {
        snprintf(res->error, sizeof res->error, "killed by signal %d", sig);
    } else if (code != 0) {
        snprintf(res->error, sizeof res->error, "exit status %d", code);
    } else {
        res->ok = 1;
    }
}
