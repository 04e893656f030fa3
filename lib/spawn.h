/* spawn.h -- starting a child process from the threaded daemon: the PATH
 * search, and vfork + execve with the child in its own process group, its
 * signal dispositions and mask reset and every other descriptor closed.
 * The exec handler (exec.c) and cloudflared (tunnel.c) both start theirs
 * here, so they get the same care. */
#ifndef SYNCCF_SPAWN_H
#define SYNCCF_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

/* PATH when it is unset or empty. */
#define SPAWN_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* The PATH children get and are searched on: the environment's, or
 * SPAWN_DEFAULT_PATH when it is unset or empty. */
const char *spawn_path(void);

/* The execve candidates for argv0, in execvp's order: argv0 itself if it has
 * a slash, else argv0 in each directory of path (an empty entry is the
 * working directory). NULL-terminated; NULL on ENOMEM. Free with
 * spawn_free_strv. */
char **spawn_candidates(const char *argv0, const char *path);
void spawn_free_strv(char **v);

/* The first of name's candidates on spawn_path() that this process may
 * execute (access X_OK), into out; 0, or -1 when there is none. */
int spawn_find(const char *name, char *out, size_t n);

/* Moves a descriptor out of 0..2 (the result is close-on-exec): the child
 * dup2()s onto those, and a descriptor that happened to be one of them (a
 * daemon started with stdin closed) would be clobbered first. -1 on error. */
int spawn_above_stdio(int fd);

/* What the child writes to report_fd when it cannot exec: the stage it
 * failed at and its errno. */
enum { SPAWN_SETUP = 1, SPAWN_CHDIR, SPAWN_EXEC };
struct spawn_report {
    int stage;
    int err;
};

struct spawn {
    char *const *argv;
    char *const *envp;  /* the whole environment: nothing is inherited */
    char *const *cands; /* from spawn_candidates(argv[0], ...) */
    const char *cwd;    /* NULL: the daemon's */
    int in;             /* becomes the child's stdin */
    int out;            /* becomes its stdout and stderr */
    int report_fd;      /* close-on-exec write end for a spawn_report, or -1 */
};
/* in, out and report_fd must be above 2 (spawn_above_stdio). Everything the
 * child uses is prepared by the caller: between vfork and exec only
 * async-signal-safe calls are made. Returns the child's pid (also its
 * process group id), or -1 with errno set. A child that cannot exec exits
 * with status 127. */
pid_t spawn_start(const struct spawn *sp);

#endif
