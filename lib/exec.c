/* exec.c -- the exec handler: runs a configured argv with the event on stdin.
 *
 * This file owns everything about running a command for an event: building
 * its environment, starting it (spawn.c: vfork + execve, never a shell),
 * feeding it the event, collecting the tail of its output, enforcing the
 * timeout, killing what it leaves behind, and reporting the outcome as a
 * handler_result.
 *
 * Security: argv comes from the configuration only; the event reaches the
 * command through stdin and SYNCCF_EVENT_* variables, never through a shell
 * or an argument. The environment is built from scratch because the daemon's
 * own holds secrets (push secrets, API tokens).
 *
 * Robustness: the command runs in its own process group so that a timeout
 * kills everything it started; stdin is written and output read in a single
 * poll() loop so neither side can deadlock the other; only the last
 * HANDLER_OUTPUT_TAIL bytes of output are kept. exec_run is called from
 * several dispatcher threads at once, so it uses no globals. The child is
 * started by spawn.c (signals reset, descriptors closed, its own group). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handler.h"
#include "spawn.h"

/* Between SIGTERM and SIGKILL of the group: long enough for a well-behaved
 * command to clean up, short enough not to hold a dispatcher thread. */
#define KILL_GRACE_MS 1000
/* How long output is still read after the command itself has exited: a
 * background grandchild may hold the output pipe open indefinitely, and we
 * must not wait for it. */
#define DRAIN_MS 200
/* Without a pidfd the command's exit is noticed by polling at this period. */
#define EXIT_POLL_MS 50
#define READ_CHUNK 65536

/* ---- output tail ------------------------------------------------------------ */

struct ring {
    char b[HANDLER_OUTPUT_TAIL];
    size_t len, pos; /* bytes held, next write position */
};

static void ring_put(struct ring *r, const char *p, size_t n)
{
    if (n >= sizeof r->b) { /* only the last sizeof r->b bytes can survive */
        memcpy(r->b, p + n - sizeof r->b, sizeof r->b);
        r->pos = 0;
        r->len = sizeof r->b;
        return;
    }
    size_t first = sizeof r->b - r->pos;
    if (first > n) first = n;
    memcpy(r->b + r->pos, p, first);
    memcpy(r->b, p + first, n - first);
    r->pos = (r->pos + n) % sizeof r->b;
    r->len = r->len + n > sizeof r->b ? sizeof r->b : r->len + n;
}

/* Length of the valid UTF-8 sequence at p (n bytes available), 0 if none:
 * the same rules jansson applies (no overlongs, surrogates or values past
 * U+10FFFF). NUL counts as invalid: readers of the tail use C strings. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c == 0) return 0;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return len;
}

/* The tail as a JSON string. The tail may start inside a multi-byte
 * character and commands may print anything, so every byte that is not part
 * of valid UTF-8 becomes U+FFFD: jansson refuses invalid strings, and losing
 * the whole output over one byte would hide the reason a command failed. */
static json_t *ring_json(const struct ring *r)
{
    unsigned char lin[HANDLER_OUTPUT_TAIL];
    char out[3 * HANDLER_OUTPUT_TAIL + 1];
    size_t start = (r->pos + sizeof r->b - r->len) % sizeof r->b, o = 0;
    for (size_t i = 0; i < r->len; i++) lin[i] = (unsigned char)r->b[(start + i) % sizeof r->b];
    for (size_t i = 0; i < r->len;) {
        size_t k = utf8_len(lin + i, r->len - i);
        if (k) {
            memcpy(out + o, lin + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return json_stringn(out, o);
}

/* ---- preparation (before fork) ---------------------------------------------- */

static const char *attr(const json_t *ev, const char *k)
{
    const char *v = json_string_value(json_object_get(ev, k));
    return v ? v : "";
}

static int add_env(char **envp, int *ne, const char *k, const char *v)
{
    if (asprintf(&envp[*ne], "%s=%s", k, v) < 0) return -1;
    (*ne)++;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the parent ------------------------------------------------------------- */

/* 1 once pid has exited, without reaping it: the zombie keeps its pid, and
 * so the process group id, from being reused until we have killed the
 * group for the last time. *lost: the status is gone (SIGCHLD ignored). */
static int child_exited(pid_t pid, int *lost)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno == EINTR) return 0;
        *lost = 1;
        return 1;
    }
    return si.si_pid == pid;
}

static void kill_group(pid_t pid, int sig)
{
    kill(-pid, sig);
    kill(pid, sig); /* in case the command moved itself to another group */
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* One command's run, from its start to its outcome. */
struct run {
    const struct exec_rule *rule;
    int64_t t0;
    int in[2], out[2], st[2], pidfd; /* stdin, output and status pipes; -1 once closed */
    pid_t pid;
    const char *wp;                  /* what is left of the event to write */
    size_t left;
    struct ring ring;
    int status, timed_out, lost, got_epipe;
    struct spawn_report rep;
    char *error;                     /* the handler_result's, set on a failure of ours */
    size_t errlen;
};

/* The command's environment, built from scratch: PATH, a few locale and home
 * variables, and the event's attributes. Returns nonzero when out of memory. */
static int build_env(const json_t *ev, const char *path, char **envp, int *ne)
{
    static const char *const pass[] = {"HOME", "LANG", "LC_ALL"};
    int oom = add_env(envp, ne, "PATH", path);
    for (size_t i = 0; i < sizeof pass / sizeof *pass; i++) {
        const char *v = getenv(pass[i]);
        if (v) oom |= add_env(envp, ne, pass[i], v);
    }
    oom |= add_env(envp, ne, "SYNCCF_EVENT_ID", attr(ev, "id"));
    oom |= add_env(envp, ne, "SYNCCF_EVENT_TYPE", attr(ev, "type"));
    oom |= add_env(envp, ne, "SYNCCF_EVENT_SUBJECT", attr(ev, "subject"));
    oom |= add_env(envp, ne, "SYNCCF_EVENT_SOURCE", attr(ev, "source"));
    oom |= add_env(envp, ne, "SYNCCF_EVENT_TIME", attr(ev, "time"));
    envp[*ne] = NULL;
    return oom;
}

/* The pipes, then the child; 0, or -1 with r->error set. */
static int start(struct run *r, char **envp, char **cands)
{
    /* O_CLOEXEC: another thread's fork + exec must not keep our pipes open
     * (a stray write end would keep us waiting for EOF). */
    if (pipe2(r->in, O_CLOEXEC) || pipe2(r->out, O_CLOEXEC) || pipe2(r->st, O_CLOEXEC)) {
        snprintf(r->error, r->errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    r->in[0] = spawn_above_stdio(r->in[0]);
    r->out[1] = spawn_above_stdio(r->out[1]);
    r->st[1] = spawn_above_stdio(r->st[1]);
    if (r->in[0] < 0 || r->out[1] < 0 || r->st[1] < 0) {
        snprintf(r->error, r->errlen, "fcntl: %s", strerror(errno));
        return -1;
    }

    /* The child: its own group, signals reset, only these three descriptors
     * (spawn.c). */
    struct spawn sp = {r->rule->argv, envp, cands, r->rule->cwd, r->in[0], r->out[1], r->st[1]};
    r->pid = spawn_start(&sp);
    if (r->pid < 0) {
        snprintf(r->error, r->errlen, "fork: %s", strerror(errno));
        return -1;
    }
    close_fd(&r->in[0]);
    close_fd(&r->out[1]);
    close_fd(&r->st[1]);
#ifdef SYS_pidfd_open
    r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0); /* readable at exit; -1 on old kernels */
#endif
    set_nonblock(r->in[1]);
    set_nonblock(r->out[0]);
    if (!r->left) close_fd(&r->in[1]);
    return 0;
}

/* One round of I/O on whatever poll() found ready. */
static void pump(struct run *r, const struct pollfd *p, int i_out, int i_in, int i_st)
{
    if (i_out >= 0 && p[i_out].revents) {
        char buf[READ_CHUNK];
        ssize_t n = read(r->out[0], buf, sizeof buf);
        if (n > 0) ring_put(&r->ring, buf, (size_t)n);
        else if (n == 0 || (errno != EAGAIN && errno != EINTR)) close_fd(&r->out[0]);
    }
    if (i_in >= 0 && r->in[1] >= 0 && p[i_in].revents) {
        size_t chunk = r->left > READ_CHUNK ? READ_CHUNK : r->left;
        ssize_t n = write(r->in[1], r->wp, chunk);
        if (n > 0) {
            r->wp += n;
            r->left -= (size_t)n;
        } else if (n < 0 && errno == EPIPE)
            r->got_epipe = 1;
        if (r->left == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            close_fd(&r->in[1]); /* done (EOF for the command), or it stopped reading */
    }
    if (i_st >= 0 && p[i_st].revents) {
        /* Data: exec failed and the child is about to exit. EOF: exec
         * succeeded (the CLOEXEC write end closed) or the child died. */
        ssize_t n = read(r->st[0], &r->rep, sizeof r->rep);
        if (n != (ssize_t)sizeof r->rep) r->rep.stage = 0;
        close_fd(&r->st[0]);
    }
}

/* Feeds the event, collects output and enforces the timeout until the
 * command has exited and its output is drained (or DRAIN_MS has passed). */
static void supervise(struct run *r)
{
    int exited = 0, term_sent = 0, kill_sent = 0;
    int64_t deadline = r->rule->timeout_ms ? r->t0 + r->rule->timeout_ms : -1, exited_at = 0, term_at = 0;
    for (;;) {
        int64_t now = mono_ms();
        if (!exited && child_exited(r->pid, &r->lost)) {
            exited = 1;
            exited_at = now;
            close_fd(&r->in[1]); /* nobody we care about will read the rest */
        }
        if (!exited && deadline >= 0 && !term_sent && now >= deadline) {
            r->timed_out = term_sent = 1;
            term_at = now;
            kill_group(r->pid, SIGTERM);
        }
        if (term_sent && !kill_sent && now >= term_at + KILL_GRACE_MS) {
            kill_sent = 1;
            kill_group(r->pid, SIGKILL);
        }
        if (exited && (r->out[0] < 0 || now >= exited_at + DRAIN_MS)) break;

        /* Sleep until I/O or the next thing due. */
        int64_t wake = -1;
#define WAKE_AT(t) (wake = wake < 0 || (t) < wake ? (t) : wake)
        if (!exited && deadline >= 0 && !term_sent) WAKE_AT(deadline);
        if (term_sent && !kill_sent) WAKE_AT(term_at + KILL_GRACE_MS);
        if (exited) WAKE_AT(exited_at + DRAIN_MS);
        if (!exited && r->pidfd < 0) WAKE_AT(now + EXIT_POLL_MS);
#undef WAKE_AT
        struct pollfd p[4];
        nfds_t np = 0;
        int i_out = -1, i_in = -1, i_st = -1;
        if (r->out[0] >= 0) p[i_out = (int)np++] = (struct pollfd){r->out[0], POLLIN, 0};
        if (r->in[1] >= 0) p[i_in = (int)np++] = (struct pollfd){r->in[1], POLLOUT, 0};
        if (r->st[0] >= 0) p[i_st = (int)np++] = (struct pollfd){r->st[0], POLLIN, 0};
        if (!exited && r->pidfd >= 0) p[np++] = (struct pollfd){r->pidfd, POLLIN, 0};
        int64_t tmo = wake < 0 ? -1 : wake - now;
        if (tmo > INT_MAX) tmo = INT_MAX;
        if (poll(p, np, (int)tmo) < 0) {
            if (errno == EINTR) continue;
            snprintf(r->error, r->errlen, "poll: %s", strerror(errno));
            break; /* cannot supervise it: killed and reaped below */
        }
        pump(r, p, i_out, i_in, i_st);
    }
}

/* Whatever the command left behind in its group goes with it, timeout or
 * not: a handler run must not leave processes running. The zombie is reaped
 * only now, so the group id cannot have been reused. */
static void reap(struct run *r)
{
    kill_group(r->pid, SIGKILL);
    if (!r->lost)
        while (waitpid(r->pid, &r->status, 0) < 0)
            if (errno != EINTR) {
                r->lost = 1;
                break;
            }
    if (r->st[0] >= 0) { /* the child is gone: this read cannot block */
        if (read(r->st[0], &r->rep, sizeof r->rep) != (ssize_t)sizeof r->rep) r->rep.stage = 0;
    }
}

/* The run's detail and its verdict, into res. */
static void outcome(const struct run *r, struct handler_result *res)
{
    const struct exec_rule *rule = r->rule;
    int code = !r->lost && WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
    int sig = !r->lost && WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0;
    json_t *d = json_object();
    json_object_set_new(d, "exit", code >= 0 ? json_integer(code) : json_null());
    json_object_set_new(d, "signal", sig ? json_integer(sig) : json_null());
    json_object_set_new(d, "timed_out", json_boolean(r->timed_out));
    json_object_set_new(d, "output", ring_json(&r->ring));
    json_object_set_new(d, "ms", json_integer(mono_ms() - r->t0));
    res->detail = d;

    if (res->error[0]) return; /* poll failed */
    if (r->rep.stage) {
        int e = r->rep.err;
        if (r->rep.stage == SPAWN_CHDIR)
            snprintf(res->error, sizeof res->error, "cannot change to directory %s: %s", rule->cwd, strerror(e));
        else if (r->rep.stage == SPAWN_SETUP)
            snprintf(res->error, sizeof res->error, "cannot set up %s: %s", rule->argv[0], strerror(e));
        else
            snprintf(res->error, sizeof res->error, "cannot run %s: %s", rule->argv[0], strerror(e));
        /* A missing or unusable program or directory is a configuration
         * problem; retrying cannot help. Resource errors (EMFILE, ENOMEM,
         * ETXTBSY) may pass. */
        res->permanent = r->rep.stage != SPAWN_SETUP && (e == ENOENT || e == EACCES || e == ENOTDIR || e == ENOEXEC ||
                                                         e == ELOOP || e == ENAMETOOLONG || e == EPERM);
    } else if (r->timed_out) {
        snprintf(res->error, sizeof res->error, "timed out after %u ms", rule->timeout_ms);
    } else if (r->lost) {
        snprintf(res->error, sizeof res->error, "exit status of %s lost (is SIGCHLD ignored?)", rule->argv[0]);
    } else if (sig) {
        snprintf(res->error, sizeof res->error, "killed by signal %d", sig);
    } else if (code != 0) {
        snprintf(res->error, sizeof res->error, "exit status %d", code);
    } else {
        res->ok = 1;
    }
}

void exec_run(const struct exec_rule *rule, const json_t *ev, const char *ev_json, struct handler_result *res)
{
    res->ok = 0;
    res->permanent = 0;
    res->error[0] = '\0';
    if (!rule || !rule->argv || !rule->argv[0] || !rule->argv[0][0]) {
        res->permanent = 1;
        snprintf(res->error, sizeof res->error, "no command configured");
        return;
    }
    if (!ev_json) ev_json = "";

    /* Everything the child needs is prepared before fork: between fork and
     * exec only async-signal-safe calls are allowed in a threaded process
     * (another thread may hold the malloc lock at the moment of fork). */
    struct run r = {.rule = rule, .t0 = mono_ms(), .in = {-1, -1}, .out = {-1, -1}, .st = {-1, -1}, .pidfd = -1,
                    .pid = -1, .wp = ev_json, .left = strlen(ev_json), .error = res->error,
                    .errlen = sizeof res->error};
    char *envp[10];
    int ne = 0;
    const char *path = spawn_path();
    int oom = build_env(ev, path, envp, &ne);
    char **cands = spawn_candidates(rule->argv[0], path);

    /* SIGPIPE: writing to a command that exited without reading its stdin
     * fails with EPIPE and raises SIGPIPE on this thread. The daemon ignores
     * it, but a program embedding the library may not, so it is blocked on
     * this thread for the run and a SIGPIPE we caused is taken afterwards. */
    sigset_t pipe_set, old_mask, pend;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    sigemptyset(&pend);
    sigpending(&pend);
    int pipe_was_pending = sigismember(&pend, SIGPIPE) == 1;

    if (oom || !cands) snprintf(res->error, sizeof res->error, "out of memory");
    else if (start(&r, envp, cands) == 0) {
        supervise(&r);
        reap(&r);
    }

    if (r.got_epipe && !pipe_was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {}
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    for (int i = 0; i < 2; i++) {
        close_fd(&r.in[i]);
        close_fd(&r.out[i]);
        close_fd(&r.st[i]);
    }
    close_fd(&r.pidfd);
    for (int i = 0; i < ne; i++) free(envp[i]);
    spawn_free_strv(cands);
    if (r.pid < 0) return; /* never started: res->error says why; retrying may help */
    outcome(&r, res);
}
