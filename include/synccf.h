/* synccf.h -- public interface of libsynccf.
 *
 * libsynccf receives Cloudflare events (Notifications, Logpush, Pages, the
 * synccf Worker), normalizes them to CloudEvents 1.0, stores each exactly once
 * in SQLite and runs handlers for them. The synccf command is built on it. */
#ifndef SYNCCF_H
#define SYNCCF_H

#ifdef __cplusplus
extern "C" {
#endif

#define SYNCCF_VERSION "0.1.0"

/* The library's version string, e.g. "0.1.0". */
const char *synccf_version(void);

#ifdef __cplusplus
}
#endif

#endif
