/* retention.c -- owns the retention rules and the pruning of state.db (the
 * retention: section's scalars are rows of config.c's settings table).
 *
 * Events are removed by age, by count (per rule and for the whole store) and
 * by the size of the file, oldest first. Pruning never holds the write lock
 * on its own: the store's writer calls retention_step() inside each group's
 * transaction, just before COMMIT, and it removes a bounded number of events
 * there (a little more than the group inserted, so that it keeps up), in a
 * savepoint so that a failure undoes the pruning and not the group. With
 * nothing to insert the writer still wakes once a second and commits a
 * transaction of pruning alone when retention_due() says so.
 *
 * What is never pruned: an event with a handler run still pending (it would
 * take the run's event away from the dispatcher). What outlives an event: its
 * id's hash in ids, marked pruned, for dedupe_window, so that a late retry of
 * it is still a duplicate and runs no handler again.
 *
 * Space: freed pages are reused by new events; when more than an eighth of
 * the file is free (after a limit was lowered, say) a few of them are handed
 * back to the file system per step (incremental vacuum).
 *
 * Counts per shape (see store.c) are kept in memory, read once from the
 * index and then updated by inserts and prunes, so that count limits cost
 * nothing per group. Changes made in a transaction are kept apart until it
 * commits. */
#include "retention.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dispatch.h"
#include "log.h"
#include "util.h"

#define STEP_MIN 256           /* events pruned per step at least (when due) */
#define STEP_SECONDS 0.002     /* ...but no longer than this per step: the group waits */
#define STEP_SURE 16           /* events a step removes before it looks at the clock */
#define AGE_EVERY_MS 1000      /* age rules are checked this often once caught up */
#define SIZE_EVERY_MS 200
#define SWEEP_EVERY_MS 10000   /* expired dedupe entries */
#define SWEEP_CHUNK 2000
/* Pruned ids are kept at least this long, whatever dedupe_window says: the
 * store merges the newest events' keys into ids within about a minute
 * (lib/store.c, put_event), and until then the row written here when such an
 * event is pruned is all that makes a retry of it a duplicate. */
#define SWEEP_KEEP_MIN_MS (5 * 60 * 1000)
#define VACUUM_PAGES 256

/* ---- configuration: the rules (the scalars are settings: lib/config.c) ---- */

void retention_config_defaults(struct retention_config *c)
{
    memset(c, 0, sizeof *c);
    c->dedupe_ms = RETENTION_DEDUPE_DEFAULT_MS;
}

void retention_config_free(struct retention_config *c)
{
    for (size_t i = 0; i < c->nrules; i++) free(c->rules[i].type);
    free(c->rules);
    c->rules = NULL;
    c->nrules = 0;
}

int retention_parse_duration(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0 || *s == '-') return -1;
    int64_t mul;
    if (strcmp(end, "ms") == 0) mul = 1;
    else if (!*end || strcmp(end, "s") == 0) mul = 1000;
    else if (strcmp(end, "m") == 0) mul = 60000;
    else if (strcmp(end, "h") == 0) mul = 3600000;
    else if (strcmp(end, "d") == 0) mul = 86400000;
    else return -1;
    if (v > 100LL * 365 * 86400000 / mul) return -1;
    *ms = v * mul;
    return 0;
}

int retention_parse_count(const char *s, int64_t *n)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1000000000000LL) return -1;
    *n = v;
    return 0;
}

int retention_parse_bytes(const char *s, int64_t *n)
{
    size_t v = 0;
    if (strcmp(s, "0") != 0 && parse_size(s, &v) != 0) return -1;
    *n = (int64_t)v;
    return 0;
}

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Writes the reason and returns -1. */
static int say(char *buf, size_t len, const char *msg)
{
    snprintf(buf, len, "%s", msg);
    return -1;
}

static int get_dur(yaml_node_t *v, int64_t *dst, char *err, size_t errlen)
{
    const char *s = scalar(v);
    return s && retention_parse_duration(s, dst) == 0 ? 0 : say(err, errlen, RETENTION_WANT_DURATION);
}

static int get_count(yaml_node_t *v, int64_t *dst, char *err, size_t errlen)
{
    const char *s = scalar(v);
    return s && retention_parse_count(s, dst) == 0 ? 0 : say(err, errlen, RETENTION_WANT_COUNT);
}

/* One key of a rule: 0, or -1 with why set. */
static int rule_key(struct retention_rule *r, const char *key, yaml_node_t *v, char *why, size_t whylen)
{
    if (!key) return say(why, whylen, "keys must be strings");
    if (strcmp(key, "type") == 0) {
        const char *s = scalar(v);
        if (!s || !*s) return say(why, whylen, "expected a type glob");
        free(r->type);
        return (r->type = strdup(s)) ? 0 : say(why, whylen, "out of memory");
    }
    if (strcmp(key, "max_age") == 0) return get_dur(v, &r->max_age_ms, why, whylen);
    if (strcmp(key, "max_events") == 0) return get_count(v, &r->max_events, why, whylen);
    return say(why, whylen, "unknown key");
}

/* One rule, a mapping; errors read "rules: key '<key>': <why>" with *at on
 * the key. */
static int parse_rule(struct retention_rule *r, yaml_document_t *doc, yaml_node_t *map, yaml_node_t **at, char *err,
                      size_t errlen)
{
    *at = map;
    if (!map || map->type != YAML_MAPPING_NODE) return say(err, errlen, "a rule is a mapping");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        const char *key = scalar(k);
        char why[200] = "";
        *at = k;
        if (rule_key(r, key, yaml_document_get_node(doc, p->value), why, sizeof why))
            return snprintf(err, errlen, "rules: key '%s': %s", key ? key : "?", why), -1;
    }
    if (!r->type) return say(err, errlen, "rules: a rule needs a type (a glob such as com.cloudflare.logpush.*)");
    return 0;
}

int retention_rules_parse(struct retention_config *c, yaml_document_t *doc, yaml_node_t *v, yaml_node_t **at,
                          char *err, size_t errlen)
{
    if (!v || v->type != YAML_SEQUENCE_NODE) return say(err, errlen, "key 'rules': expected a list of rules");
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    struct retention_rule *rules = calloc(n ? n : 1, sizeof *rules);
    if (!rules) return say(err, errlen, "key 'rules': out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *rn = yaml_document_get_node(doc, v->data.sequence.items.start[i]);
        if (parse_rule(&rules[i], doc, rn, at, err, errlen)) {
            for (size_t j = 0; j <= i; j++) free(rules[j].type);
            free(rules);
            return -1;
        }
    }
    retention_config_free(c);
    c->rules = rules;
    c->nrules = n;
    return 0;
}

int retention_active(const struct retention_config *c)
{
    if (c->max_age_ms || c->max_events || c->max_bytes) return 1;
    for (size_t i = 0; i < c->nrules; i++)
        if (c->rules[i].max_age_ms || c->rules[i].max_events) return 1;
    return 0;
}

json_t *retention_config_json(const struct retention_config *c)
{
    json_t *rules = json_array();
    for (size_t i = 0; i < c->nrules; i++)
        json_array_append_new(rules, json_pack("{s:s,s:I,s:I}", "type", c->rules[i].type, "max_age_ms",
                                               (json_int_t)c->rules[i].max_age_ms, "max_events",
                                               (json_int_t)c->rules[i].max_events));
    return json_pack("{s:o,s:I,s:I,s:I,s:I}", "rules", rules, "max_age_ms", (json_int_t)c->max_age_ms, "max_events",
                     (json_int_t)c->max_events, "max_bytes", (json_int_t)c->max_bytes, "dedupe_window_ms",
                     (json_int_t)c->dedupe_ms);
}

/* ---- the pruner ------------------------------------------------------------ */

int64_t retention_id_hash(const char *id)
{
    const void *parts[] = {id};
    size_t lens[] = {strlen(id)};
    return hash64(parts, lens, 1);
}

/* Limits are numbered: rules 0..nrules-1, then the catch-all age, then the
 * store's event count and size; each has a counter "pruned.<label>". */
enum { L_DEFAULT_AGE = 0, L_STORE_EVENTS = 1, L_STORE_BYTES = 2, L_FIXED = 3 };

struct shape_state {
    int rule;      /* index of the rule for its type; -1 none; -2 not looked up yet */
    int64_t count; /* committed */
    int64_t delta; /* in the open transaction */
    int64_t pdelta; /* in the open savepoint */
};

struct retention {
    struct retention_config cfg;
    struct shape_state *shapes;
    size_t nshapes;
    int loaded;
    int64_t inserted; /* in the open transaction, sets the step's budget */
    int64_t next_age, next_size, next_sweep;
    int64_t sweep_from; /* the dedupe sweep's position (a hash) */
    int more;           /* the last step stopped at its budget */
    double deadline;    /* the running step stops here (mono_s) */
    int64_t *pruned;    /* per limit, in the open savepoint */
    int64_t *pending;   /* per limit, in the open transaction, not yet counted */
    sqlite3 *db;
    sqlite3_stmt *oldest_of_shape, *oldest, *has_pending, *del_runs, *del_event, *mark_id, *shape_type;
};

static size_t nlimits(const struct retention *r) { return r->cfg.nrules + L_FIXED; }

static int copy_config(struct retention_config *dst, const struct retention_config *src)
{
    *dst = *src;
    dst->rules = calloc(src->nrules ? src->nrules : 1, sizeof *dst->rules);
    if (!dst->rules) return -1;
    for (size_t i = 0; i < src->nrules; i++) {
        dst->rules[i] = src->rules[i];
        if (!(dst->rules[i].type = strdup(src->rules[i].type))) {
            dst->nrules = i;
            retention_config_free(dst);
            return -1;
        }
    }
    return 0;
}

struct retention *retention_new(const struct retention_config *c)
{
    struct retention *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->sweep_from = INT64_MIN; /* the first sweep starts at the table's start, not at hash 0 */
    if (copy_config(&r->cfg, c)) {
        free(r);
        return NULL;
    }
    r->pruned = calloc(nlimits(r), sizeof *r->pruned);
    r->pending = calloc(nlimits(r), sizeof *r->pending);
    if (!r->pruned || !r->pending) {
        retention_free(r);
        return NULL;
    }
    return r;
}

static void finalize_all(struct retention *r)
{
    sqlite3_stmt *all[] = {r->oldest_of_shape, r->oldest, r->has_pending, r->del_runs, r->del_event, r->mark_id,
                           r->shape_type};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) sqlite3_finalize(all[i]);
    r->oldest_of_shape = r->oldest = r->has_pending = r->del_runs = r->del_event = r->mark_id = r->shape_type = NULL;
}

void retention_free(struct retention *r)
{
    if (!r) return;
    finalize_all(r);
    retention_config_free(&r->cfg);
    free(r->shapes);
    free(r->pruned);
    free(r->pending);
    free(r);
}

static struct shape_state *shape(struct retention *r, int64_t id)
{
    if (id < 0 || id > 10000000) return NULL;
    if ((size_t)id >= r->nshapes) {
        size_t n = r->nshapes ? r->nshapes : 64;
        while (n <= (size_t)id) n *= 2;
        struct shape_state *p = realloc(r->shapes, n * sizeof *p);
        if (!p) return NULL;
        for (size_t i = r->nshapes; i < n; i++) p[i] = (struct shape_state){-2, 0, 0, 0};
        r->shapes = p;
        r->nshapes = n;
    }
    return &r->shapes[id];
}

void retention_note_insert(struct retention *r, int64_t id)
{
    struct shape_state *s = shape(r, id);
    if (s) s->delta++;
    r->inserted++;
}

static int64_t live(const struct shape_state *s) { return s->count + s->delta + s->pdelta; }

void retention_committed(struct retention *r)
{
    for (size_t i = 0; i < r->nshapes; i++) {
        r->shapes[i].count += r->shapes[i].delta;
        r->shapes[i].delta = 0;
    }
    memset(r->pending, 0, nlimits(r) * sizeof *r->pending);
    r->inserted = 0;
}

void retention_rolled_back(struct retention *r)
{
    for (size_t i = 0; i < r->nshapes; i++) r->shapes[i].delta = r->shapes[i].pdelta = 0;
    /* The pruned counts were written in the transaction that rolled back:
     * they go with it, as the events stay. */
    memset(r->pending, 0, nlimits(r) * sizeof *r->pending);
    r->inserted = 0;
    r->more = 1;
}

int retention_more(const struct retention *r) { return r->more; }

int retention_due(struct retention *r)
{
    if (!retention_active(&r->cfg) && !r->cfg.dedupe_ms) return 0;
    int64_t now = now_ms();
    return r->more || now >= r->next_sweep ||
           (retention_active(&r->cfg) && (now >= r->next_age || (r->cfg.max_bytes && now >= r->next_size)));
}

static int prepare(struct retention *r, sqlite3 *db)
{
    if (r->db == db && r->oldest) return 0;
    finalize_all(r);
    r->db = db;
    const struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        /* Events with a pending run are passed over here (and checked again
         * in prune_one, which is what guarantees it). */
        {&r->oldest_of_shape, "SELECT seq, id, received FROM event_rows e WHERE shape = ? AND NOT EXISTS "
                              "(SELECT 1 FROM runs r WHERE r.seq = e.seq AND r.state = '" RUN_NAME_PENDING "') ORDER BY seq LIMIT ?"},
        {&r->oldest, "SELECT seq, id, shape FROM event_rows e WHERE NOT EXISTS "
                     "(SELECT 1 FROM runs r WHERE r.seq = e.seq AND r.state = '" RUN_NAME_PENDING "') ORDER BY seq LIMIT ?"},
        {&r->has_pending, "SELECT 1 FROM runs WHERE seq = ? AND state = '" RUN_NAME_PENDING "' LIMIT 1"},
        {&r->del_runs, "DELETE FROM runs WHERE seq = ?"},
        {&r->del_event, "DELETE FROM event_rows WHERE seq = ?"},
        /* An event whose key is still in the store's tail (not yet merged)
         * has no row in ids: this one is it, and the merge leaves it. */
        {&r->mark_id, "INSERT INTO ids(h, seq, pruned) VALUES(?2, ?3, ?1) "
                      "ON CONFLICT(h) DO UPDATE SET pruned = excluded.pruned WHERE seq = excluded.seq"},
        {&r->shape_type, "SELECT type FROM shapes WHERE id = ?"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++)
        if (sqlite3_prepare_v2(db, stmts[i].sql, -1, stmts[i].st, NULL) != SQLITE_OK) return -1;
    return 0;
}

static int load_counts(struct retention *r, sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT shape, count(*) FROM event_rows GROUP BY shape", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct shape_state *s = shape(r, sqlite3_column_int64(st, 0));
        /* The query sees this transaction's inserts, which delta holds. */
        if (s) s->count = sqlite3_column_int64(st, 1) - s->delta;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return -1;
    r->loaded = 1;
    return 0;
}

/* The rule for a shape's type: the first that matches; then the catch-all
 * max_age (L_DEFAULT_AGE, reported as nrules); -1 when none limits it. */
static int rule_of(struct retention *r, int64_t id)
{
    struct shape_state *s = shape(r, id);
    if (!s) return -1;
    if (s->rule != -2) return s->rule;
    s->rule = -1;
    sqlite3_bind_int64(r->shape_type, 1, id);
    if (sqlite3_step(r->shape_type) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(r->shape_type, 0);
        for (size_t i = 0; i < r->cfg.nrules; i++)
            if (glob_match(r->cfg.rules[i].type, type)) {
                s->rule = (int)i;
                break;
            }
        if (s->rule < 0 && r->cfg.max_age_ms) s->rule = (int)r->cfg.nrules + L_DEFAULT_AGE;
    }
    sqlite3_reset(r->shape_type);
    return s->rule;
}

static int64_t rule_age(const struct retention *r, int rule)
{
    if (rule < 0) return 0;
    return (size_t)rule < r->cfg.nrules ? r->cfg.rules[rule].max_age_ms : r->cfg.max_age_ms;
}

static int step_ok(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* Removes one event unless a run of it is pending: 1 removed, 0 kept, -1 error. */
static int prune_one(struct retention *r, int64_t seq, const char *id, int64_t shape_id, int limit, int64_t now)
{
    sqlite3_bind_int64(r->has_pending, 1, seq);
    int rc = sqlite3_step(r->has_pending);
    sqlite3_reset(r->has_pending);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return -1;
    sqlite3_bind_int64(r->del_runs, 1, seq);
    sqlite3_bind_int64(r->del_event, 1, seq);
    sqlite3_bind_int64(r->mark_id, 1, now / 1000);
    sqlite3_bind_int64(r->mark_id, 2, retention_id_hash(id));
    sqlite3_bind_int64(r->mark_id, 3, seq);
    if (step_ok(r->del_runs) || step_ok(r->del_event) || step_ok(r->mark_id)) return -1;
    struct shape_state *s = shape(r, shape_id);
    if (s) s->pdelta--;
    r->pruned[limit]++;
    return 1;
}

/* Up to budget events of one shape, oldest first, that are older than
 * cutoff (received before it; 0: any) -- all when excess is set, else only
 * those. Returns how many were removed, or -1. */
static int64_t prune_shape(struct retention *r, int64_t id, const char *cutoff, int64_t cutoff_ms, int64_t budget,
                           int limit, int64_t now)
{
    int64_t n = 0;
    sqlite3_bind_int64(r->oldest_of_shape, 1, id);
    sqlite3_bind_int64(r->oldest_of_shape, 2, budget);
    /* Collected first: the statement reads the index the deletes change. */
    int64_t *seqs = malloc(budget * sizeof *seqs);
    char **ids = calloc(budget, sizeof *ids);
    int64_t k = 0;
    int rc = SQLITE_DONE;
    if (seqs && ids) {
        while (k < budget && (rc = sqlite3_step(r->oldest_of_shape)) == SQLITE_ROW) {
            /* received is integer ms, or text in another spelling. */
            int newer;
            if (sqlite3_column_type(r->oldest_of_shape, 2) == SQLITE_INTEGER)
                newer = sqlite3_column_int64(r->oldest_of_shape, 2) >= cutoff_ms;
            else
                newer = strcmp((const char *)sqlite3_column_text(r->oldest_of_shape, 2), cutoff ? cutoff : "") >= 0;
            if (cutoff && newer) {
                rc = SQLITE_DONE;
                break;
            }
            seqs[k] = sqlite3_column_int64(r->oldest_of_shape, 0);
            if (!(ids[k] = strdup((const char *)sqlite3_column_text(r->oldest_of_shape, 1)))) break;
            k++;
        }
    }
    sqlite3_reset(r->oldest_of_shape);
    if (!seqs || !ids || (rc != SQLITE_DONE && rc != SQLITE_ROW)) n = -1;
    for (int64_t i = 0; n >= 0 && i < k && (i < STEP_SURE || mono_s() < r->deadline); i++) {
        int one = prune_one(r, seqs[i], ids[i], id, limit, now);
        if (one < 0) n = -1;
        else n += one;
    }
    for (int64_t i = 0; ids && i < k; i++) free(ids[i]);
    free(ids);
    free(seqs);
    return n;
}

/* The oldest events of the whole store, for its count and size limits. */
static int64_t prune_oldest(struct retention *r, int64_t budget, int limit, int64_t now)
{
    int64_t n = 0, k = 0;
    int64_t *seqs = malloc(budget * sizeof *seqs), *shapes = malloc(budget * sizeof *shapes);
    char **ids = calloc(budget, sizeof *ids);
    int rc = SQLITE_DONE;
    sqlite3_bind_int64(r->oldest, 1, budget);
    if (seqs && shapes && ids)
        while (k < budget && (rc = sqlite3_step(r->oldest)) == SQLITE_ROW) {
            seqs[k] = sqlite3_column_int64(r->oldest, 0);
            shapes[k] = sqlite3_column_int64(r->oldest, 2);
            if (!(ids[k] = strdup((const char *)sqlite3_column_text(r->oldest, 1)))) break;
            k++;
        }
    sqlite3_reset(r->oldest);
    if (!seqs || !shapes || !ids || (rc != SQLITE_DONE && rc != SQLITE_ROW)) n = -1;
    for (int64_t i = 0; n >= 0 && i < k && (i < STEP_SURE || mono_s() < r->deadline); i++) {
        int one = prune_one(r, seqs[i], ids[i], shapes[i], limit, now);
        if (one < 0) n = -1;
        else n += one;
    }
    for (int64_t i = 0; ids && i < k; i++) free(ids[i]);
    free(ids);
    free(seqs);
    free(shapes);
    return n;
}

static int64_t pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Forgets pruned ids older than the dedupe window, SWEEP_CHUNK hashes of the
 * table at a time, walking it in hash order and starting over at the end. */
static int sweep_ids(struct retention *r, sqlite3 *db, int64_t now)
{
    sqlite3_stmt *st;
    int64_t hi = 0;
    int last = 1;
    if (sqlite3_prepare_v2(db, "SELECT h FROM ids WHERE h > ? ORDER BY h LIMIT 1 OFFSET " "1999", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, r->sweep_from);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        hi = sqlite3_column_int64(st, 0);
        last = 0;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return -1;
    if (sqlite3_prepare_v2(db, "DELETE FROM ids WHERE h > ?1 AND (?2 OR h <= ?3) AND pruned < ?4", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, r->sweep_from);
    sqlite3_bind_int(st, 2, last);
    sqlite3_bind_int64(st, 3, hi);
    int64_t keep = r->cfg.dedupe_ms > SWEEP_KEEP_MIN_MS ? r->cfg.dedupe_ms : SWEEP_KEEP_MIN_MS;
    sqlite3_bind_int64(st, 4, (now - keep) / 1000);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return -1;
    r->sweep_from = last ? INT64_MIN : hi;
    return last;
}

static int do_step(struct retention *r, sqlite3 *db, int64_t now)
{
    int64_t budget = STEP_MIN + 2 * r->inserted, done = 0;
    int capped = 0;
    r->deadline = mono_s() + STEP_SECONDS;
    if (!r->loaded && retention_active(&r->cfg) && load_counts(r, db)) return -1;
    r->loaded = 1;

    /* Age: per shape, oldest first, while older than its rule's limit. */
    if (now >= r->next_age) {
        int all = 1;
        for (size_t i = 0; i < r->nshapes && done < budget; i++) {
            if (live(&r->shapes[i]) <= 0) continue;
            int rule = rule_of(r, (int64_t)i);
            int64_t age = rule_age(r, rule);
            if (!age) continue;
            char cutoff[TIME_BUF];
            time_format_ms(now - age, cutoff);
            int limit = (size_t)rule < r->cfg.nrules ? rule : (int)r->cfg.nrules + L_DEFAULT_AGE;
            int64_t n = prune_shape(r, (int64_t)i, cutoff, now - age, budget - done, limit, now);
            if (n < 0) return -1;
            done += n;
        }
        if (done >= budget || mono_s() >= r->deadline) all = 0;
        if (all) r->next_age = now + AGE_EVERY_MS;
        else capped = 1;
    }

    /* Count per rule: the oldest of the rule's shapes, one shape at a time
     * (the one whose oldest event is oldest would be exact; per shape is
     * close enough for the usual one-shape-per-source case). */
    for (size_t rule = 0; rule < r->cfg.nrules && done < budget; rule++) {
        int64_t max = r->cfg.rules[rule].max_events;
        if (!max) continue;
        int64_t total = 0, removed = 0;
        for (size_t i = 0; i < r->nshapes; i++)
            if (live(&r->shapes[i]) > 0 && rule_of(r, (int64_t)i) == (int)rule) total += live(&r->shapes[i]);
        for (size_t i = 0; i < r->nshapes && total > max && done < budget; i++) {
            if (live(&r->shapes[i]) <= 0 || rule_of(r, (int64_t)i) != (int)rule) continue;
            int64_t want = total - max < budget - done ? total - max : budget - done;
            int64_t n = prune_shape(r, (int64_t)i, NULL, 0, want, (int)rule, now);
            if (n < 0) return -1;
            done += n;
            total -= n;
            removed += n;
        }
        /* Over the limit only by events with pending runs: nothing to do
         * until they finish (checked again within a second). */
        if (total > max && removed) capped = 1;
    }

    /* The whole store's count. */
    /* The store's limits act only once the rules are done for this step, so
     * that what a rule removes is counted under that rule. */
    if (r->cfg.max_events && done < budget && mono_s() < r->deadline) {
        int64_t total = 0;
        for (size_t i = 0; i < r->nshapes; i++) total += live(&r->shapes[i]);
        if (total > r->cfg.max_events) {
            int64_t want = total - r->cfg.max_events < budget - done ? total - r->cfg.max_events : budget - done;
            int64_t n = prune_oldest(r, want, (int)r->cfg.nrules + L_STORE_EVENTS, now);
            if (n < 0) return -1;
            done += n;
            if (total - n > r->cfg.max_events && n) capped = 1;
        }
    }

    /* The file's size: pages in use, so that pages freed and reused do not
     * count twice. */
    if (r->cfg.max_bytes && done < budget && now >= r->next_size && mono_s() < r->deadline) {
        int64_t pages = pragma_int(db, "PRAGMA page_count"), free_pages = pragma_int(db, "PRAGMA freelist_count"),
                psize = pragma_int(db, "PRAGMA page_size");
        if (pages < 0 || free_pages < 0 || psize < 0) return -1;
        if ((pages - free_pages) * psize > r->cfg.max_bytes) {
            int64_t n = prune_oldest(r, budget - done, (int)r->cfg.nrules + L_STORE_BYTES, now);
            if (n < 0) return -1;
            done += n;
            capped = n > 0;
        } else {
            r->next_size = now + SIZE_EVERY_MS;
        }
    }

    if (now >= r->next_sweep) {
        int wrapped = sweep_ids(r, db, now);
        if (wrapped < 0) return -1;
        if (wrapped) r->next_sweep = now + SWEEP_EVERY_MS;
    }

    /* Give free pages back a few at a time once a good part of the file is
     * free (steady pruning frees about what the next inserts reuse). */
    int64_t pages = pragma_int(db, "PRAGMA page_count"), free_pages = pragma_int(db, "PRAGMA freelist_count");
    if (pages > 0 && free_pages > VACUUM_PAGES && free_pages * 8 > pages) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%d)", VACUUM_PAGES);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) return -1;
        capped = 1;
    }
    r->more = capped || mono_s() >= r->deadline;
    return 0;
}

static const char *limit_label(const struct retention *r, size_t i, char *buf, size_t len)
{
    if (i < r->cfg.nrules) {
        snprintf(buf, len, "rule:%s", r->cfg.rules[i].type);
        return buf;
    }
    switch (i - r->cfg.nrules) {
    case L_DEFAULT_AGE: return "max_age";
    case L_STORE_EVENTS: return "max_events";
    default: return "max_bytes";
    }
}

void retention_step(struct retention *r, sqlite3 *db, sqlite3_stmt *cnt)
{
    int64_t now = now_ms();
    /* Count limits are checked after every insert (in memory); the rest
     * when due. */
    int counts = r->cfg.max_events != 0;
    for (size_t i = 0; i < r->cfg.nrules; i++) counts |= r->cfg.rules[i].max_events != 0;
    if (r->loaded && !retention_due(r) && !(counts && r->inserted)) return;
    if (prepare(r, db)) {
        finalize_all(r);
        return;
    }
    if (sqlite3_exec(db, "SAVEPOINT prune", NULL, NULL, NULL) != SQLITE_OK) return;
    memset(r->pruned, 0, nlimits(r) * sizeof *r->pruned);
    int ok = do_step(r, db, now) == 0;

    for (size_t i = 0; ok && i < nlimits(r); i++) {
        if (!r->pruned[i]) continue;
        char name[300], lb[280];
        snprintf(name, sizeof name, "pruned.%s", limit_label(r, i, lb, sizeof lb));
        sqlite3_bind_text(cnt, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(cnt, 2, r->pruned[i]);
        ok = step_ok(cnt) == 0;
        sqlite3_clear_bindings(cnt);
    }
    if (!ok) {
        log_msg(LOG_WARN, "pruning failed; retried with the next commit", "error", sqlite3_errmsg(db), NULL);
        sqlite3_exec(db, "ROLLBACK TO prune", NULL, NULL, NULL);
        for (size_t i = 0; i < r->nshapes; i++) r->shapes[i].pdelta = 0;
        r->next_age = now + AGE_EVERY_MS; /* not a tight loop on a persistent error */
        r->more = 0;
    } else {
        for (size_t i = 0; i < r->nshapes; i++) {
            r->shapes[i].delta += r->shapes[i].pdelta;
            r->shapes[i].pdelta = 0;
        }
        for (size_t i = 0; i < nlimits(r); i++) r->pending[i] += r->pruned[i];
    }
    sqlite3_exec(db, "RELEASE prune", NULL, NULL, NULL);
}
