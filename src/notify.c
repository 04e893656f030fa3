/* notify.c -- tells systemd (Type=notify) when synccf is ready, that it is
 * alive (WatchdogSec=), and when it stops; nothing without libsystemd or
 * outside systemd. */
#include "notify.h"

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

void notify_ready(void) { sd_notify(0, "READY=1\nSTATUS=receiving"); }
void notify_stopping(void) { sd_notify(0, "STOPPING=1"); }
void notify_alive(void) { sd_notify(0, "WATCHDOG=1"); }
long notify_watchdog_ms(void)
{
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? (long)(usec / 1000) : 0;
}
#else
void notify_ready(void) {}
void notify_stopping(void) {}
void notify_alive(void) {}
long notify_watchdog_ms(void) { return 0; }
#endif
