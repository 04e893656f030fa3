/* event.c -- builds normalized events and checks the ones that arrive ready-made.
 *
 * Attribute order is part of the contract with the Worker (docs/events.md), so
 * events are assembled with jansson's insertion order and dumped with
 * JSON_PRESERVE_ORDER; JSON.stringify keeps insertion order too. */
#include "event.h"

#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "util.h"

json_t *event_build(const char *id, const char *source, const char *type, const char *subject,
                    int64_t time_ms, const char *account, const struct norm_opts *o, json_t *data)
{
    char tbuf[TIME_BUF], rbuf[TIME_BUF];
    time_format_ms(o->received_ms, rbuf);
    if (time_ms >= 0)
        time_format_ms(time_ms, tbuf);
    else
        memcpy(tbuf, rbuf, sizeof tbuf);
    json_t *e = json_object();
    json_object_set_new(e, "specversion", json_string("1.0"));
    json_object_set_new(e, "id", json_string(id));
    json_object_set_new(e, "source", json_string(source));
    json_object_set_new(e, "type", json_string(type));
    if (subject) json_object_set_new(e, "subject", json_string(subject));
    json_object_set_new(e, "time", json_string(tbuf));
    json_object_set_new(e, "datacontenttype", json_string("application/json"));
    if (account) json_object_set_new(e, "cfaccount", json_string(account));
    json_object_set_new(e, "synccfvia", json_string(o->via));
    json_object_set_new(e, "synccfreceived", json_string(rbuf));
    json_object_set(e, "data", data);
    return e;
}

/* Appends ,"name": (or {"name": for the first) and the quoted value. */
static char *put_attr(char *o, const char *name, const char *v, int first)
{
    *o++ = first ? '{' : ',';
    *o++ = '"';
    size_t n = strlen(name);
    memcpy(o, name, n);
    o += n;
    memcpy(o, "\":", 2);
    return o + 2 + jscan_quote(o + 2, v, strlen(v));
}

char *event_text(const char *id, const char *source, const char *type, const char *subject, size_t subjectlen,
                 const char *time, const char *account, const struct norm_opts *o, const char *received,
                 const char *data, size_t datalen, size_t *len)
{
    /* Quoting at most sextuples a string (\u00XX); 256 covers the names
     * and punctuation (about 170 bytes). */
    const char *q[] = {id, source, type, time, account ? account : "", o->via, received};
    size_t cap = 256 + subjectlen + datalen;
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) cap += 6 * strlen(q[i]);
    char *out = malloc(cap), *p = out;
    if (!out) return NULL;
    p = put_attr(p, "specversion", "1.0", 1);
    p = put_attr(p, "id", id, 0);
    p = put_attr(p, "source", source, 0);
    p = put_attr(p, "type", type, 0);
    if (subject) {
        memcpy(p, ",\"subject\":\"", 12);
        p += 12;
        memcpy(p, subject, subjectlen);
        p += subjectlen;
        *p++ = '"';
    }
    p = put_attr(p, "time", time, 0);
    p = put_attr(p, "datacontenttype", "application/json", 0);
    if (account) p = put_attr(p, "cfaccount", account, 0);
    p = put_attr(p, "synccfvia", o->via, 0);
    p = put_attr(p, "synccfreceived", received, 0);
    memcpy(p, ",\"data\":", 8);
    p += 8;
    memcpy(p, data, datalen);
    p += datalen;
    *p++ = '}';
    *p = '\0';
    *len = (size_t)(p - out);
    return out;
}

static int nonempty_string(json_t *v, size_t max)
{
    return json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= max;
}

/* CloudEvents 1.0: attribute names are lowercase letters and digits, at
 * most 20 characters. */
static int valid_attr_name(const char *k)
{
    return str_of_class(k, strlen(k), "abcdefghijklmnopqrstuvwxyz0123456789", 20);
}

const char *event_accept(json_t *ev, const struct norm_opts *o)
{
    if (!json_is_object(ev)) return "event is not a JSON object";
    json_t *sv = json_object_get(ev, "specversion");
    if (!json_is_string(sv) || strcmp(json_string_value(sv), "1.0") != 0)
        return "specversion must be \"1.0\"";
    if (!nonempty_string(json_object_get(ev, "id"), EVENT_ID_MAX))
        return "id must be a non-empty string of at most 256 bytes";
    if (!nonempty_string(json_object_get(ev, "source"), 1024)) return "source must be a non-empty string";
    if (!nonempty_string(json_object_get(ev, "type"), 256)) return "type must be a non-empty string";
    int64_t ms;
    json_t *t = json_object_get(ev, "time");
    if (!json_is_string(t) || time_parse_rfc3339(json_string_value(t), &ms) != 0)
        return "time must be an RFC 3339 string";
    json_t *subj = json_object_get(ev, "subject");
    if (subj && !nonempty_string(subj, EVENT_SUBJECT_MAX)) return "subject must be a string of at most 256 bytes";
    const char *k;
    json_t *v;
    json_object_foreach(ev, k, v) {
        if (!valid_attr_name(k)) return "attribute names must be 1-20 lowercase letters or digits";
        if (strcmp(k, "data") != 0 && (json_is_object(v) || json_is_array(v)))
            return "only data may hold an object or array";
    }
    json_t *via = json_object_get(ev, "synccfvia");
    if (via && !json_is_string(via)) return "synccfvia must be a string";
    if (!via) json_object_set_new(ev, "synccfvia", json_string(o->via));
    json_t *rc = json_object_get(ev, "synccfreceived");
    if (rc && (!json_is_string(rc) || time_parse_rfc3339(json_string_value(rc), &ms) != 0))
        return "synccfreceived must be an RFC 3339 string";
    if (!rc) {
        char rbuf[TIME_BUF];
        time_format_ms(o->received_ms, rbuf);
        json_object_set_new(ev, "synccfreceived", json_string(rbuf));
    }
    return NULL;
}

int event_will_add(const json_t *ev)
{
    return (json_object_get(ev, "synccfvia") ? 0 : EVENT_ADDED_VIA) |
           (json_object_get(ev, "synccfreceived") ? 0 : EVENT_ADDED_RECEIVED);
}

char *event_kept_text(const json_t *ev, const char *text, size_t len, int added)
{
    /* "{}" (never a valid event) would need no comma: left to event_dump. */
    if (len < 3 || text[0] != '{' || text[len - 1] != '}') return NULL;
    const char *via = json_string_value(json_object_get(ev, "synccfvia"));
    const char *rc = json_string_value(json_object_get(ev, "synccfreceived"));
    if (!via || !rc) return NULL;
    size_t cap = len + 64 + 6 * (strlen(via) + strlen(rc));
    char *out = malloc(cap), *p = out;
    if (!out) return NULL;
    memcpy(p, text, len - 1);
    p += len - 1;
    if (added & EVENT_ADDED_VIA) p = put_attr(p, "synccfvia", via, 0);
    if (added & EVENT_ADDED_RECEIVED) p = put_attr(p, "synccfreceived", rc, 0);
    *p++ = '}';
    *p = '\0';
    return out;
}

/* A top-level value from its scanned span. */
static json_t *scanned_value(const struct jmember *m, int parse)
{
    switch (m->kind) {
    case JK_STRING: {
        char small[256], *dec = m->vallen <= sizeof small ? small : malloc(m->vallen);
        if (!dec) return NULL;
        json_t *v = json_stringn_nocheck(dec, jscan_unescape(dec, m->val, m->vallen));
        if (dec != small) free(dec);
        return v;
    }
    case JK_INTEGER: {
        char num[24]; /* jscan bounds integers to 64 bits: at most 20 bytes */
        memcpy(num, m->val, m->vallen);
        num[m->vallen] = '\0';
        return json_integer(strtoll(num, NULL, 10));
    }
    case JK_TRUE: return json_true();
    case JK_FALSE: return json_false();
    case JK_NULL: return json_null();
    case JK_OBJECT: return parse ? json_loadb(m->val, m->vallen, 0, NULL) : json_object();
    case JK_ARRAY: return parse ? json_loadb(m->val, m->vallen, JSON_DECODE_ANY, NULL) : json_array();
    }
    return NULL;
}

json_t *event_tree(const char *text, size_t len, int with_data)
{
    struct jmember m[JSCAN_MAX_KEYS];
    size_t n;
    if (len == 0 || text[0] != '{' || !jscan_canonical(text, len, m, JSCAN_MAX_KEYS, &n)) return NULL;
    json_t *ev = json_object();
    for (size_t i = 0; ev && i < n; i++) {
        char small[64], *key = m[i].keylen <= sizeof small ? small : malloc(m[i].keylen);
        json_t *v = key ? scanned_value(&m[i], with_data) : NULL;
        if (!v || json_object_setn_new_nocheck(ev, key, jscan_unescape(key, m[i].key, m[i].keylen), v) != 0) {
            json_decref(ev);
            ev = NULL;
        }
        if (key != small) free(key);
    }
    return ev;
}

char *event_dump(const json_t *ev)
{
    return json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
}
