/* disk.c -- the disk's own floor for bench/ingest.sh: what a durable
 * acknowledgement costs on this disk with nothing else in the way. One thread
 * commits groups the way synccf's writer does -- everything that arrived
 * while the previous group was being written goes into the next one, as one
 * pwrite and one fdatasync -- with no HTTP, no SQLite and no other thread.
 *   disk DIR RATE SECONDS BYTES_PER_EVENT INFLIGHT
 * RATE > 0: events arrive on a fixed schedule (like bench/wrk/post.lua's
 * pacing); an event's latency runs from its scheduled arrival to the end of
 * the fdatasync that covers it. RATE 0: INFLIGHT events are always waiting
 * (a closed loop with no client time), the most this disk can acknowledge.
 * Prints "RESULT requests=N duration_us=D p50_us=P p99_us=Q max_us=M".
 * The file is written in place, 64 MiB, wrapping, as synccf's WAL is once it
 * has reached its cap; its blocks are allocated before the clock starts. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILE_BYTES (64ll << 20)
#define ALIGN 4096

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what)
{
    fprintf(stderr, "disk: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: disk DIR RATE SECONDS BYTES_PER_EVENT INFLIGHT\n");
        return 2;
    }
    double rate = atof(argv[2]), secs = atof(argv[3]);
    long bpe = atol(argv[4]), inflight = atol(argv[5]);
    if (rate < 0 || secs <= 0 || bpe <= 0 || inflight <= 0) {
        fprintf(stderr, "disk: bad arguments\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/disk.bin", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) die(path);
    size_t chunk = 1 << 20, bufcap = (size_t)(inflight * bpe + ALIGN);
    if (bufcap < chunk) bufcap = chunk;
    char *buf = malloc(bufcap);
    if (!buf) die("memory");
    memset(buf, 'x', bufcap);
    for (long long off = 0; off < FILE_BYTES; off += (long long)chunk)
        if (pwrite(fd, buf, chunk, off) != (ssize_t)chunk) die("pwrite");
    if (fsync(fd) != 0) die("fsync");

    /* Latencies of every event, or at most this many (the rest are counted). */
    size_t cap = rate > 0 ? (size_t)(rate * secs) + 1 : 1 << 24, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    if (!lat) die("memory");
    long long off = 0, events = 0;
    double start = now(), end = start + secs, interval = rate > 0 ? 1 / rate : 0;
    long long next = 0; /* the next scheduled arrival's index (paced) */
    for (;;) {
        double t = now();
        if (t >= end) break;
        long k; /* events in this group */
        if (rate > 0) {
            double at = start + (double)next * interval;
            if (at > t) {
                sleep_until(at);
                t = now();
            }
            k = (long)((t - start) / interval) + 1 - next;
            if (k < 1) k = 1;
        } else {
            k = inflight;
        }
        size_t bytes = ((size_t)(k * bpe) + ALIGN - 1) / ALIGN * ALIGN;
        while (bytes) { /* a group larger than the buffer (a backlog) is written in pieces */
            size_t w = bytes < bufcap ? bytes : bufcap;
            if (off + (long long)w > FILE_BYTES) off = 0;
            if (pwrite(fd, buf, w, off) != (ssize_t)w) die("pwrite");
            off += (long long)w;
            bytes -= w;
        }
        if (fdatasync(fd) != 0) die("fdatasync");
        double done = now();
        for (long i = 0; i < k; i++) {
            double arrived = rate > 0 ? start + (double)(next + i) * interval : t;
            if (n < cap) lat[n++] = (done - arrived) * 1e6;
        }
        events += k;
        next += k;
    }
    double dur = now() - start;
    close(fd);
    unlink(path);
    qsort(lat, n, sizeof *lat, cmp);
    printf("RESULT requests=%lld duration_us=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f\n", events, dur * 1e6,
           n ? lat[n / 2] : 0, n ? lat[n * 99 / 100] : 0, n ? lat[n - 1] : 0);
    free(lat);
    free(buf);
    return 0;
}
