/* notify.h -- systemd readiness and watchdog notifications. */
#ifndef SYNCCF_NOTIFY_H
#define SYNCCF_NOTIFY_H

void notify_ready(void);
void notify_stopping(void);
void notify_alive(void);
/* The watchdog period systemd asked for, in ms; 0 when none. */
long notify_watchdog_ms(void);

#endif
