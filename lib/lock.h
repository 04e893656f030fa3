/* lock.h -- one process at a time runs handlers for a state directory. */
#ifndef SYNCCF_LOCK_H
#define SYNCCF_LOCK_H

#include <stddef.h>

/* Takes the exclusive lock on dir/lock (creating dir 0700 and the file 0600)
 * and writes this process's pid into it; the lock lasts until state_unlock
 * or the process's end, however it ends. Warns in the log when dir already
 * existed with group or other permission bits.
 * Returns the lock's descriptor; -1 with err set on a failure; -2 when
 * another process holds it (err then says "state directory DIR is in use by
 * pid N", and *holder is N, or 0 when it could not be read). */
int state_lock(const char *dir, long *holder, char *err, size_t errlen);
void state_unlock(int fd);

#endif
