/* retention.h -- how long the store keeps events, and the pruning that
 * enforces it (run by the store's writer, inside its group transactions). */
#ifndef SYNCCF_RETENTION_H
#define SYNCCF_RETENTION_H

#include <jansson.h>
#include <stdint.h>
#include <yaml.h>

struct sqlite3;
struct sqlite3_stmt;

/* One rule: events whose type matches the glob are kept at most max_age_ms
 * (0: no age limit) and at most max_events of them (0: no limit). The first
 * rule that matches an event's type is the one that applies to it. */
struct retention_rule {
    char *type;
    int64_t max_age_ms;
    int64_t max_events;
};

/* The retention: section of the configuration. */
struct retention_config {
    struct retention_rule *rules;
    size_t nrules;
    int64_t max_age_ms;   /* for types no rule matches; 0: kept */
    int64_t max_events;   /* the whole store; 0: no limit */
    int64_t max_bytes;    /* state.db (pages in use); 0: no limit */
    int64_t dedupe_ms;    /* how long a pruned id still makes a retry a duplicate */
};

#define RETENTION_DEDUPE_DEFAULT_MS (30LL * 24 * 3600 * 1000)

void retention_config_defaults(struct retention_config *c);
void retention_config_free(struct retention_config *c);
/* Reads the rules: list of the retention: section, replacing all rules (its
 * scalars are settings of config_settings[]). On error returns -1 with the
 * reason in err and *at on the rule's key at fault (left as it is when list
 * is not a list). */
int retention_rules_parse(struct retention_config *c, yaml_document_t *doc, yaml_node_t *list, yaml_node_t **at,
                          char *err, size_t errlen);
/* 1 when anything is pruned at all. */
int retention_active(const struct retention_config *c);
/* The retention in force, as status and the meta row show it. */
json_t *retention_config_json(const struct retention_config *c);

/* The values of retention's limits, each 0 for none: 0 or -1 when s is not
 * one, and what the reader is told then. */
#define RETENTION_WANT_DURATION "expected a duration like 30s, 12h or 7d (0: no limit)"
#define RETENTION_WANT_COUNT "expected a whole number of events (0: no limit)"
#define RETENTION_WANT_BYTES "expected a size like 512M or 20G (0: no limit)"
/* "2d", "36h", "90m", "30s", "500ms" -> ms. */
int retention_parse_duration(const char *s, int64_t *ms);
/* A number of events, up to 10^12. */
int retention_parse_count(const char *s, int64_t *n);
/* "0", or a size as parse_size reads it ("512M", "20G"). */
int retention_parse_bytes(const char *s, int64_t *n);

/* An id's key in the ids table: the first 8 bytes of its SHA-256, big
 * endian, as a signed integer (store_id_hash). */
int64_t retention_id_hash(const char *id);

/* The pruner. Everything below runs on the store's writer thread. */
struct retention;
struct retention *retention_new(const struct retention_config *c);
void retention_free(struct retention *r);
/* An event of this shape was inserted in the open transaction. */
void retention_note_insert(struct retention *r, int64_t shape);
/* Prunes a bounded amount in the open transaction (a savepoint within it);
 * cnt is the store's counter upsert (name, delta). */
void retention_step(struct retention *r, struct sqlite3 *db, struct sqlite3_stmt *cnt);
/* 1 when there is pruning to do even with nothing to insert. */
int retention_due(struct retention *r);
/* 1 when the last step stopped before it had done all there was to do: the
 * writer comes back soon rather than in a second. */
int retention_more(const struct retention *r);
/* The open transaction committed, or rolled back. */
void retention_committed(struct retention *r);
void retention_rolled_back(struct retention *r);

#endif
