/* lock.c -- owns the state directory's lock file (DIR/lock): the one process
 * that runs handlers for a store holds it for its whole life.
 *
 * Why: the dispatcher claims a run in memory before it runs it, so two
 * processes dispatching from one store would both run every run. A second
 * daemon therefore refuses to start, and `synccf replay` runs handlers itself
 * only while it holds the lock.
 *
 * flock(2) rather than a pid file: the kernel drops the lock when the last
 * descriptor of it closes, so a daemon killed with SIGKILL never leaves a
 * stale lock behind to block its restart. The descriptor is close-on-exec so
 * that handler commands and cloudflared do not inherit (and outlive us
 * holding) it. The pid written into the file is only there to name the
 * holder in the error. */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* mkdir -p, 0700 for what it creates. */
static int mkdirs(const char *dir)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* The pid the holder wrote, 0 if none could be read. The holder writes it
 * just after taking the lock, so an empty file is read again for a moment. */
static long read_holder(int fd)
{
    for (int tries = 0; tries < 50; tries++) {
        char buf[32];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            char *end;
            long pid = strtol(buf, &end, 10);
            if (end != buf && (*end == '\n' || *end == '\0') && pid > 0) return pid;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int state_lock(const char *dir, long *holder, char *err, size_t errlen)
{
    *holder = 0;
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 077)) {
        /* It holds events, handler output and cursors: others should not
         * read it. Created here it is 0700; an existing one is the user's,
         * so say so rather than change it. */
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", (unsigned)(sb.st_mode & 07777));
        log_msg(LOG_WARN, "state directory is open to other users; chmod 700 it", "dir", dir, "mode", mode, NULL);
    }
    if (mkdirs(dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    int writable = fd >= 0;
    /* On a read-only file system the lock still works on a read-only
     * descriptor (flock needs no write access); the store then says what is
     * wrong with the directory. */
    if (fd < 0 && (errno == EROFS || errno == EACCES)) fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            *holder = read_holder(fd);
            if (*holder) snprintf(err, errlen, "state directory %s is in use by pid %ld", dir, *holder);
            else snprintf(err, errlen, "state directory %s is in use by another process", dir);
        } else {
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
        }
        close(fd);
        return e == EWOULDBLOCK ? -2 : -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (writable && (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)) {
        /* The lock is held all the same; only the name in a rival's error
         * is missing. */
        log_msg(LOG_WARN, "cannot write the pid into the lock file", "path", path, "error", strerror(errno), NULL);
    }
    return fd;
}

void state_unlock(int fd)
{
    if (fd < 0) return;
    /* Empty it first, so that nobody names a pid that no longer holds it. */
    if (ftruncate(fd, 0) != 0) {}
    close(fd);
}
