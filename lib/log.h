/* log.h -- structured logs on stderr (logfmt, or JSON lines). */
#ifndef SYNCCF_LOG_H
#define SYNCCF_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Process-wide settings, chosen once at start-up before threads exist. */
void log_setup(enum log_level min, int json);
int log_level_parse(const char *s, enum log_level *out);

/* log_msg(LOG_WARN, "request rejected", "reason", "bad_signature", NULL):
 * key/value string pairs ending with NULL. Values are escaped; never pass
 * secrets or request bodies. */
void log_msg(enum log_level lvl, const char *msg, ...) __attribute__((sentinel));

#endif
