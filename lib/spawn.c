/* spawn.c -- starts child processes for the exec handler and the tunnel.
 *
 * The daemon is threaded, ignores SIGPIPE and blocks SIGTERM/SIGINT/SIGHUP,
 * and holds sockets, the store and other children's pipes open. A child must
 * inherit none of that: ignored dispositions and the signal mask survive
 * exec, and so does every descriptor without FD_CLOEXEC. So the child resets
 * all dispositions, clears the mask, closes every descriptor but its three,
 * and runs in its own process group so that one kill(-pid) reaches
 * everything it starts.
 *
 * vfork, not fork: fork copies the page tables of the whole daemon (~12 ms
 * here, most of a short handler's run), vfork shares them and suspends the
 * calling thread until the child has exec'd or exited. The child therefore
 * makes only system calls on what the caller prepared before, and changes
 * nothing the daemon uses. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

const char *spawn_path(void)
{
    const char *path = getenv("PATH");
    return path && *path ? path : SPAWN_DEFAULT_PATH;
}

/* Resolved before vfork because execvp is not async-signal-safe and, on
 * ENOEXEC, would run the file with /bin/sh. */
char **spawn_candidates(const char *argv0, const char *path)
{
    size_t n = 2;
    for (const char *p = path; *p; p++) n += *p == ':';
    char **c = calloc(n, sizeof *c);
    if (!c) return NULL;
    if (strchr(argv0, '/')) {
        if (!(c[0] = strdup(argv0))) goto fail;
        return c;
    }
    size_t i = 0;
    for (const char *p = path;; p++) {
        const char *e = strchr(p, ':');
        size_t dl = e ? (size_t)(e - p) : strlen(p);
        if (asprintf(&c[i], "%.*s%s%s", (int)dl, p, dl ? "/" : "", argv0) < 0) {
            c[i] = NULL;
            goto fail;
        }
        i++;
        if (!e) break;
        p = e;
    }
    return c;
fail:
    spawn_free_strv(c);
    return NULL;
}

void spawn_free_strv(char **v)
{
    if (!v) return;
    for (size_t i = 0; v[i]; i++) free(v[i]);
    free(v);
}

int spawn_find(const char *name, char *out, size_t n)
{
    char **cands = spawn_candidates(name, spawn_path());
    int rc = -1;
    for (char **c = cands; c && *c && rc != 0; c++) {
        if (access(*c, X_OK) == 0 && (size_t)snprintf(out, n, "%s", *c) < n) rc = 0;
    }
    spawn_free_strv(cands);
    return rc;
}

int spawn_above_stdio(int fd)
{
    if (fd > 2 || fd < 0) return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return n;
}

/* ---- the child (between vfork and exec: async-signal-safe calls only) ------ */

/* Closes every descriptor from 3 up but keep (-1: none kept). close_range
 * needs Linux 5.9; the loops are the fallback. */
static void close_above_stdio(int keep, int maxfd)
{
    unsigned from = 3;
    if (keep >= 3) {
        if ((unsigned)keep > from && close_range(from, (unsigned)keep - 1, 0) != 0)
            for (int fd = (int)from; fd < keep; fd++) close(fd);
        from = (unsigned)keep + 1;
    }
    if (close_range(from, ~0U, 0) != 0)
        for (int fd = (int)from; fd < maxfd; fd++) close(fd);
}

static _Noreturn void child_fail(int fd, int stage, int err)
{
    struct spawn_report rep = {stage, err};
    if (fd >= 0) {
        ssize_t w = write(fd, &rep, sizeof rep); /* <= PIPE_BUF: atomic */
        (void)w;
    }
    _exit(127);
}

static _Noreturn void child(const struct spawn *sp, int maxfd)
{
    setpgid(0, 0); /* its own group: a kill(-pid) reaches everything it starts */

    /* Handlers are reset first while everything is still blocked (the parent
     * blocked all signals around vfork), then the mask is cleared. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL); /* EINVAL for reserved ones: fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* in, out and report_fd are above 2, so dup2 onto 0..2 clobbers nothing
     * and gives descriptors without FD_CLOEXEC. */
    if (dup2(sp->in, 0) < 0 || dup2(sp->out, 1) < 0 || dup2(sp->out, 2) < 0)
        child_fail(sp->report_fd, SPAWN_SETUP, errno);
    /* Every other descriptor of the daemon (sockets, the store, other
     * children's pipes) is closed; report_fd closes itself at exec. */
    close_above_stdio(sp->report_fd, maxfd);

    if (sp->cwd && chdir(sp->cwd) != 0) child_fail(sp->report_fd, SPAWN_CHDIR, errno);

    /* execvp's search, without its shell fallback: EACCES is remembered and
     * the search goes on; ENOENT-like errors go on; anything else stops. */
    int err = ENOENT, eacces = 0;
    for (char *const *c = sp->cands; *c; c++) {
        execve(*c, sp->argv, sp->envp);
        err = errno;
        if (err == EACCES) eacces = 1;
        else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV && err != ETIMEDOUT &&
                 err != ELOOP && err != ENAMETOOLONG)
            break;
    }
    child_fail(sp->report_fd, SPAWN_EXEC, eacces && (err == ENOENT || err == ENOTDIR) ? EACCES : err);
}

/* vfork's second return, kept apart from spawn_start so that it can clobber
 * none of its caller's variables. */
static __attribute__((noinline)) pid_t vfork_child(const struct spawn *sp, int maxfd)
{
    pid_t pid = vfork();
    if (pid == 0) child(sp, maxfd);
    return pid;
}

pid_t spawn_start(const struct spawn *sp)
{
    struct rlimit rl;
    int maxfd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < INT_MAX
                    ? (int)rl.rlim_cur
                    : 65536;
    /* All signals blocked across vfork: the child must not run one of the
     * daemon's handlers before it has reset them. */
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &before);
    pid_t pid = vfork_child(sp, maxfd);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    if (pid < 0) {
        errno = saved;
        return -1;
    }
    setpgid(pid, pid); /* also from here, so the group exists before any kill(-pid) */
    return pid;
}
