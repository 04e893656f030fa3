/* normalize.c -- turns each Cloudflare input format into the normalized event.
 *
 * Every rule here is specified in docs/events.md and mirrored by
 * worker/src/normalize.js; tests/vectors/ proves the two agree. Change both,
 * and the vectors, or neither. */
#include "normalize.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "jsonx.h"
#include "jscan.h"
#include "util.h"

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

int norm_valid_dataset(const char *s) { return str_of_class(s, strlen(s), LOWER_DIGITS "_", 64); }
int norm_valid_hook_name(const char *s) { return str_of_class(s, strlen(s), LOWER_DIGITS "_-", 64); }

/* A string member usable as subject or account: non-empty, bounded. */
static const char *short_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!jx_is_string(v)) return NULL;
    size_t n = json_string_length(v);
    if (n == 0 || n > EVENT_SUBJECT_MAX) return NULL;
    return json_string_value(v);
}

static const char *str_or_empty(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return jx_is_string(v) ? json_string_value(v) : "";
}

/* Lowercase, [a-z0-9_] only, at most 64 characters. */
static void sanitize_segment(const char *in, char out[65])
{
    size_t i = 0;
    for (; in[i] && i < 64; i++) {
        unsigned char c = (unsigned char)tolower((unsigned char)in[i]);
        out[i] = (strchr(LOWER_DIGITS "_", c) && c) ? (char)c : '_';
    }
    out[i] = '\0';
}

static int64_t time_of(json_t *v)
{
    int64_t ms;
    return (v && time_from_json(v, &ms) == 0) ? ms : -1;
}

/* The hash of fields joined by newlines (at most 7 fields). */
static void hash_lines(const char *const f[], int nf, char out[HASH_HEX])
{
    const void *parts[13];
    size_t lens[13], k = 0;
    for (int i = 0; i < nf && i < 7; i++) {
        if (i) {
            parts[k] = "\n";
            lens[k++] = 1;
        }
        parts[k] = f[i];
        lens[k++] = strlen(f[i]);
    }
    hash_hex32(parts, lens, k, out);
}

static void notification_hash(json_t *b, char out[HASH_HEX])
{
    char ts[32] = "";
    json_t *t = json_object_get(b, "ts");
    if (json_is_integer(t)) snprintf(ts, sizeof ts, "%" JSON_INTEGER_FORMAT, json_integer_value(t));
    const char *f[7] = {str_or_empty(b, "alert_type"),
                        str_or_empty(b, "policy_id"),
                        str_or_empty(b, "alert_correlation_id"),
                        str_or_empty(b, "alert_event"),
                        ts,
                        str_or_empty(b, "name"),
                        str_or_empty(b, "text")};
    hash_lines(f, 7, out);
}

json_t *norm_notification(json_t *body, const struct norm_opts *o)
{
    if (!json_is_object(body)) return NULL;
    json_t *data = json_object_get(body, "data");
    if (!json_is_object(data)) data = NULL;
    const char *account = short_str(body, "account_id");
    int64_t t = time_of(json_object_get(body, "ts"));
    json_t *at = json_object_get(body, "alert_type");
    char h[HASH_HEX], id[EVENT_ID_MAX], type[128], seg[65];

    if (jx_is_string(at) && strcmp(json_string_value(at), "pages_event_alert") == 0) {
        static const char pfx[] = "EVENT_DEPLOYMENT_";
        const char *evn = data ? str_or_empty(data, "event") : "";
        if (strncmp(evn, pfx, sizeof pfx - 1) == 0 && evn[sizeof pfx - 1])
            sanitize_segment(evn + sizeof pfx - 1, seg);
        else
            strcpy(seg, "unknown");
        const char *subject = data ? short_str(data, "project_name") : NULL;
        if (!subject && data) subject = short_str(data, "project_id");
        const char *dep = data ? str_or_empty(data, "deployment_id") : "";
        if (str_of_class(dep, strlen(dep), ID_CHARS, 64)) {
            snprintf(id, sizeof id, "pages-%s-%s", dep, seg);
        } else {
            notification_hash(body, h);
            snprintf(id, sizeof id, "notify-%s", h);
        }
        snprintf(type, sizeof type, "com.cloudflare.pages.deployment.%s", seg);
        return event_build(id, "/cloudflare/pages", type, subject, t, account, o, body);
    }

    if (jx_is_string(at) && json_string_length(at) > 0)
        sanitize_segment(json_string_value(at), seg);
    else
        strcpy(seg, "test");
    notification_hash(body, h);
    snprintf(id, sizeof id, "notify-%s", h);
    snprintf(type, sizeof type, "com.cloudflare.notification.%s", seg);
    return event_build(id, "/cloudflare/notifications", type, data ? short_str(data, "zone_name") : NULL, t,
                       account, o, body);
}

int norm_valid_pages_project(const char *s) { return str_of_class(s, strlen(s), LOWER_DIGITS "-", 58); }

/* A deployment's state, as the notification's EVENT_DEPLOYMENT_<X> would
 * say it: the deploy stage's success is SUCCESS, a failed stage FAILED, any
 * stage still queued or running STARTED. */
static const char *deployment_state(json_t *dep)
{
    json_t *st = json_object_get(dep, "latest_stage");
    const char *name = json_is_object(st) ? str_or_empty(st, "name") : "";
    const char *status = json_is_object(st) ? str_or_empty(st, "status") : "";
    json_t *skipped = json_object_get(dep, "is_skipped");
    if (json_is_true(skipped) || strcmp(status, "canceled") == 0 || strcmp(status, "skipped") == 0) return NULL;
    if (strcmp(status, "failure") == 0) return "FAILED";
    if (strcmp(status, "success") == 0 && strcmp(name, "deploy") == 0) return "SUCCESS";
    if (strcmp(status, "success") == 0 || strcmp(status, "active") == 0 || strcmp(status, "idle") == 0)
        return "STARTED";
    return NULL;
}

int norm_pages_deployment(json_t *dep, const char *account, const struct norm_opts *o, json_t **ev)
{
    *ev = NULL;
    const char *id = json_is_object(dep) ? short_str(dep, "id") : NULL;
    if (!id) return -1;
    const char *state = deployment_state(dep);
    if (!state) return 0;
    /* The notification's ts: when the state was reached. */
    json_t *st = json_object_get(dep, "latest_stage");
    json_t *when = strcmp(state, "STARTED") == 0 ? json_object_get(dep, "created_on")
                                                 : json_object_get(st, "ended_on");
    int64_t ms = time_of(when);
    if (ms < 0) ms = time_of(json_object_get(dep, "modified_on"));
    if (ms < 0) ms = time_of(json_object_get(dep, "created_on"));
    if (ms < 0) return -1;
    const char *project = str_or_empty(dep, "project_name");
    const char *shortid = str_or_empty(dep, "short_id");
    char env[80], event[64], text[200];
    char seg[65];
    sanitize_segment(str_or_empty(dep, "environment"), seg);
    for (char *p = seg; *p; p++) *p = (char)toupper((unsigned char)*p);
    snprintf(env, sizeof env, "ENVIRONMENT_%s", seg[0] ? seg : "UNSPECIFIED");
    snprintf(event, sizeof event, "EVENT_DEPLOYMENT_%s", state);
    snprintf(text, sizeof text, "Deployment %.16s for project %.58s %s", shortid[0] ? shortid : id, project,
             strcmp(state, "SUCCESS") == 0 ? "succeeded" : strcmp(state, "FAILED") == 0 ? "failed" : "started");
    json_t *data = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "project_id", str_or_empty(dep, "project_id"), "project_name",
                             project, "deployment_id", id, "environment", env, "event", event, "url",
                             str_or_empty(dep, "url"));
    json_t *body = json_pack("{s:s?,s:s,s:s,s:s,s:o,s:I}", "account_id", account, "alert_type", "pages_event_alert", "name",
                             "Pages deployments (polled)", "text", text, "data", data, "ts", (json_int_t)(ms / 1000));
    if (!body) return -1;
    *ev = norm_notification(body, o);
    json_decref(body);
    return *ev ? 1 : -1;
}

json_t *norm_generic(const char *name, const char *raw, size_t rawlen, json_t *body,
                     const struct norm_opts *o)
{
    if (!json_is_object(body)) return NULL;
    char h[HASH_HEX], id[64], src[128], type[128];
    json_t *bid = json_object_get(body, "id");
    const void *parts[3] = {name, "\n", NULL};
    size_t lens[3] = {strlen(name), 1, 0};
    if (jx_is_string(bid) && json_string_length(bid) >= 1 && json_string_length(bid) <= 128) {
        parts[2] = json_string_value(bid);
        lens[2] = json_string_length(bid);
    } else {
        parts[2] = raw;
        lens[2] = rawlen;
    }
    hash_hex32(parts, lens, 3, h);
    snprintf(id, sizeof id, "hook-%s", h);
    snprintf(src, sizeof src, "/synccf/hooks/%s", name);
    snprintf(type, sizeof type, "dev.synccf.hook.%s", name);
    const char *subject = short_str(body, "subject");
    if (!subject) subject = short_str(body, "project");
    json_t *tv = json_object_get(body, "time");
    if (!tv) tv = json_object_get(body, "timestamp");
    return event_build(id, src, type, subject, time_of(tv), NULL, o, body);
}

static int is_logpush_check(json_t *rec)
{
    json_t *c = json_object_get(rec, "content");
    return json_object_size(rec) == 1 && jx_is_string(c) && strcmp(json_string_value(c), "tests") == 0;
}

static const char *const time_fields[] = {"EdgeStartTimestamp", "EventTimestampMs", "Datetime", "Timestamp",
                                          "When"};
static const char *const subject_fields[] = {"ZoneName", "ScriptName", "ClientRequestHost"};

int norm_logpush_line(const char *dataset, const char *line, size_t len, const struct norm_opts *o, json_t **ev,
                      char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *rec = jx_loadb(line, len, 0, &jerr);
    *ev = NULL;
    if (!json_is_object(rec)) {
        snprintf(err, errlen, "%s", rec ? "not a JSON object" : jerr.text);
        json_decref(rec);
        return -1;
    }
    if (is_logpush_check(rec)) {
        json_decref(rec);
        return 0;
    }
    char h[HASH_HEX], id[64], src[128], type[128];
    const void *parts[3] = {dataset, "\n", line};
    size_t lens[3] = {strlen(dataset), 1, len};
    hash_hex32(parts, lens, 3, h);
    snprintf(id, sizeof id, "lp-%s", h);
    snprintf(src, sizeof src, "/cloudflare/logpush/%s", dataset);
    snprintf(type, sizeof type, "com.cloudflare.logpush.%s", dataset);
    int64_t t = -1;
    for (size_t i = 0; i < sizeof time_fields / sizeof *time_fields; i++) {
        json_t *v = json_object_get(rec, time_fields[i]);
        if (v) {
            t = time_of(v);
            break;
        }
    }
    const char *subject = NULL;
    for (size_t i = 0; i < sizeof subject_fields / sizeof *subject_fields && !subject; i++)
        subject = short_str(rec, subject_fields[i]);
    *ev = event_build(id, src, type, subject, t, NULL, o, rec);
    json_decref(rec);
    return 1;
}

static const struct jmember *member(const struct jmember *m, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (m[i].keylen == kl && memcmp(m[i].key, key, kl) == 0) return &m[i];
    return NULL;
}

int norm_logpush_text(const char *dataset, const char *line, size_t len, const struct norm_opts *o,
                      struct norm_text *ev)
{
    struct jmember m[JSCAN_MAX_KEYS];
    size_t n;
    memset(ev, 0, offsetof(struct norm_text, subject));
    ev->subject[0] = '\0';
    ev->has_subject = 0;
    if (len == 0 || line[0] != '{' || !jscan_canonical(line, len, m, JSCAN_MAX_KEYS, &n)) return 2;
    if (n == 1 && m[0].kind == JK_STRING && m[0].keylen == 7 && memcmp(m[0].key, "content", 7) == 0 &&
        m[0].vallen == 5 && memcmp(m[0].val, "tests", 5) == 0)
        return 0;

    /* The same rules as norm_logpush_line, read from the scanned members:
     * the first time field present decides, even if unusable. */
    int64_t t = -1;
    for (size_t i = 0; i < sizeof time_fields / sizeof *time_fields; i++) {
        const struct jmember *v = member(m, n, time_fields[i]);
        if (!v) continue;
        int64_t ms;
        if (v->kind == JK_INTEGER) {
            char num[24];
            memcpy(num, v->val, v->vallen); /* at most 20 bytes: jscan bounds integers to 64 bits */
            num[v->vallen] = '\0';
            if (time_from_integer(strtoll(num, NULL, 10), &ms) == 0) t = ms;
        } else if (v->kind == JK_STRING) {
            char ts[256];
            if (v->vallen >= sizeof ts) return 2;
            ts[jscan_unescape(ts, v->val, v->vallen)] = '\0';
            if (time_parse_rfc3339(ts, &ms) == 0) t = ms;
        }
        break;
    }
    /* Subjects as short_str takes them: 1 to EVENT_SUBJECT_MAX bytes once
     * decoded (an escape is at most 6 bytes for one). */
    const struct jmember *subj = NULL;
    for (size_t i = 0; i < sizeof subject_fields / sizeof *subject_fields && !subj; i++) {
        const struct jmember *v = member(m, n, subject_fields[i]);
        if (!v || v->kind != JK_STRING || v->vallen == 0 || v->vallen > 6 * EVENT_SUBJECT_MAX) continue;
        char dec[6 * EVENT_SUBJECT_MAX];
        size_t dn = jscan_unescape(dec, v->val, v->vallen);
        if (dn > EVENT_SUBJECT_MAX) continue;
        memcpy(ev->subject, dec, dn);
        ev->subject[dn] = '\0';
        ev->has_subject = 1;
        subj = v;
    }

    char h[HASH_HEX];
    const void *parts[3] = {dataset, "\n", line};
    size_t lens[3] = {strlen(dataset), 1, len};
    hash_hex32(parts, lens, 3, h);
    snprintf(ev->id, sizeof ev->id, "lp-%s", h);
    snprintf(ev->source, sizeof ev->source, "/cloudflare/logpush/%s", dataset);
    snprintf(ev->type, sizeof ev->type, "com.cloudflare.logpush.%s", dataset);
    time_format_ms(o->received_ms, ev->received);
    if (t >= 0) time_format_ms(t, ev->time);
    else memcpy(ev->time, ev->received, sizeof ev->time);
    ev->text = event_text(ev->id, ev->source, ev->type, subj ? subj->val : NULL, subj ? subj->vallen : 0, ev->time,
                          NULL, o, ev->received, line, len, &ev->len);
    return ev->text ? 1 : -1;
}

/* xplat's Worker wraps the Cloudflare body in `raw`, as an object or as the
 * body's text. Converting from raw gives the same ids as the direct path;
 * only what carries no raw Cloudflare body gets an xplat-specific event. */
static json_t *xplat_raw(json_t *body, json_t **parsed)
{
    json_t *raw = json_object_get(body, "raw");
    *parsed = NULL;
    if (jx_is_string(raw)) {
        *parsed = jx_loadb(json_string_value(raw), json_string_length(raw), 0, NULL);
        return *parsed ? *parsed : raw;
    }
    return raw;
}

static const char *xplat_dataset(json_t *body)
{
    json_t *md = json_object_get(body, "metadata");
    const char *c[2] = {json_is_object(md) ? str_or_empty(md, "dataset") : "", str_or_empty(body, "resource")};
    for (int i = 0; i < 2; i++)
        if (norm_valid_dataset(c[i])) return c[i];
    return NULL;
}

static int add_line(const char *ds, const char *line, size_t len, const struct norm_opts *o, json_t *out,
                    size_t *rejected)
{
    json_t *ev;
    char why[160];
    int k = norm_logpush_line(ds, line, len, o, &ev, why, sizeof why);
    if (k < 0) (*rejected)++;
    if (k > 0) json_array_append_new(out, ev);
    return k > 0;
}

static int xplat_logpush(const char *ds, json_t *raw, const struct norm_opts *o, json_t *out, size_t *rejected)
{
    int n = 0;
    if (jx_is_string(raw)) {
        /* NDJSON text: every line keeps its exact bytes, hence its id. */
        const char *p = json_string_value(raw), *end = p + json_string_length(raw);
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
            const char *next = nl ? nl + 1 : end;
            if (len && p[len - 1] == '\r') len--;
            size_t i = 0;
            while (i < len && (p[i] == ' ' || p[i] == '\t')) i++;
            if (i < len) n += add_line(ds, p, len, o, out, rejected);
            p = next;
        }
        return n;
    }
    /* Parsed records: their compact form is what Logpush writes. */
    json_t *one = json_is_object(raw) ? json_pack("[O]", raw) : json_incref(raw);
    size_t i;
    json_t *rec;
    json_array_foreach(one, i, rec) {
        char *line = jx_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line) n += add_line(ds, line, strlen(line), o, out, rejected);
        free(line);
    }
    json_decref(one);
    return n;
}

int norm_xplat(json_t *body, const struct norm_opts *o, json_t *out, size_t *rejected, const char **err)
{
    if (!json_is_object(body)) {
        *err = "an xplat event must be a JSON object";
        return -1;
    }
    const char *xtype = str_or_empty(body, "type");
    if (!*xtype) {
        *err = "an xplat event needs a string type";
        return -1;
    }
    json_t *parsed;
    json_t *raw = xplat_raw(body, &parsed);
    int n = -1;
    if ((strcmp(xtype, "alert") == 0 || strcmp(xtype, "pages_deploy") == 0) && json_is_object(raw) &&
        (json_object_get(raw, "alert_type") || (json_object_get(raw, "text") && json_object_get(raw, "ts")))) {
        json_array_append_new(out, norm_notification(raw, o));
        n = 1;
    } else if (strcmp(xtype, "logpush") == 0 && xplat_dataset(body) &&
               (jx_is_string(raw) || json_is_object(raw) || json_is_array(raw))) {
        n = xplat_logpush(xplat_dataset(body), raw, o, out, rejected);
    }
    json_decref(parsed);
    if (n >= 0) return n;

    /* No Cloudflare body to convert: an event of xplat's own. */
    char seg[65], type[128], src[128], id[64], h[HASH_HEX], ts[32] = "";
    sanitize_segment(xtype, seg);
    json_t *tv = json_object_get(body, "timestamp");
    if (jx_is_string(tv)) snprintf(ts, sizeof ts, "%.31s", json_string_value(tv));
    else if (json_is_integer(tv)) snprintf(ts, sizeof ts, "%" JSON_INTEGER_FORMAT, json_integer_value(tv));
    const char *f[6] = {xtype, ts, str_or_empty(body, "account_id"), str_or_empty(body, "zone_id"),
                        str_or_empty(body, "action"), str_or_empty(body, "resource")};
    hash_lines(f, 6, h);
    snprintf(id, sizeof id, "xplat-%s", h);
    snprintf(type, sizeof type, "com.cloudflare.xplat.%s", seg);
    snprintf(src, sizeof src, "/xplat/%s", seg);
    json_array_append_new(out, event_build(id, src, type, short_str(body, "resource"), time_of(tv),
                                           short_str(body, "account_id"), o, body));
    return 1;
}

json_t *norm_audit(json_t *entry, int v2, const struct norm_opts *o)
{
    if (!json_is_object(entry)) return NULL;
    const char *eid = str_or_empty(entry, "id");
    if (!str_of_class(eid, strlen(eid), ID_CHARS, 128)) return NULL;
    json_t *action = json_object_get(entry, "action");
    const char *act = json_is_object(action) ? str_or_empty(action, "type") : "";
    char seg[65], id[160], type[128];
    if (*act) sanitize_segment(act, seg);
    else strcpy(seg, "unknown");
    snprintf(id, sizeof id, "audit-%s", eid);
    snprintf(type, sizeof type, "com.cloudflare.audit.%s", seg);
    json_t *res = json_object_get(entry, "resource");
    const char *subject = json_is_object(res) ? short_str(res, "id") : NULL;
    json_t *acct = json_object_get(entry, v2 ? "account" : "owner");
    const char *account = json_is_object(acct) ? short_str(acct, "id") : NULL;
    json_t *tv = v2 ? (json_is_object(action) ? json_object_get(action, "time") : NULL) : json_object_get(entry, "when");
    return event_build(id, "/cloudflare/audit", type, subject, time_of(tv), account, o, entry);
}

json_t *norm_evsub(json_t *body, const char *msg_id, const struct norm_opts *o)
{
    if (!json_is_object(body)) return NULL;
    const char *type = str_or_empty(body, "type");
    if (!str_of_class(type, strlen(type), ID_CHARS ".", 128)) return NULL;
    json_t *md = json_object_get(body, "metadata");
    json_t *src = json_object_get(body, "source");
    json_t *payload = json_object_get(body, "payload");
    if (!json_is_object(md)) return NULL;
    const char *own = json_is_object(payload) ? str_or_empty(payload, "buildUuid") : "";
    if (!*own) own = msg_id ? msg_id : "";
    char ts[32] = "";
    json_t *st = json_object_get(md, "eventTimestamp");
    if (jx_is_string(st)) snprintf(ts, sizeof ts, "%.31s", json_string_value(st));
    const char *f[4] = {type, str_or_empty(md, "eventSubscriptionId"), ts, own};
    char h[HASH_HEX], id[64], source[128];
    hash_lines(f, 4, h);
    snprintf(id, sizeof id, "evsub-%s", h);
    const char *stype = json_is_object(src) ? str_or_empty(src, "type") : "";
    if (str_of_class(stype, strlen(stype), ID_CHARS ".", 64)) snprintf(source, sizeof source, "/cloudflare/%s", stype);
    else snprintf(source, sizeof source, "/cloudflare/event-subscriptions");
    /* The subject: the resource the event is about (workerName, bucketName...). */
    const char *subject = NULL;
    if (json_is_object(src)) {
        const char *k2;
        json_t *v;
        json_object_foreach(src, k2, v) {
            if (strcmp(k2, "type") != 0 && jx_is_string(v) && (subject = short_str(src, k2))) break;
        }
    }
    return event_build(id, source, type, subject, time_of(st), short_str(md, "accountId"), o, body);
}
