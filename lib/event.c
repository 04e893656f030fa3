/* event.c -- builds normalized events and checks the ones that arrive ready-made.
 *
 * Attribute order is part of the contract with the Worker (docs/events.md), so
 * events are assembled with jansson's insertion order and dumped with
 * JSON_PRESERVE_ORDER; JSON.stringify keeps insertion order too. */
#include "event.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "jsonx.h"
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
    return jx_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= max;
}

/* CloudEvents 1.0: attribute names are lowercase letters and digits, at
 * most 20 characters. */
static int valid_attr_name(const char *k)
{
    return str_of_class(k, strlen(k), "abcdefghijklmnopqrstuvwxyz0123456789", 20);
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_hex(char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

int event_valid_uri(const char *s, size_t n, int absolute)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                                "-._~!$&'()*+,;=:/?#@[]";
    if (n == 0) return 0;
    /* A scheme is what precedes the first ':' when no '/', '?' or '#' comes
     * before it; a relative reference cannot have a ':' there. */
    size_t colon = strcspn(s, ":/?#");
    size_t start = 0;
    if (colon < n && s[colon] == ':') {
        if (!is_alpha(s[0])) return 0;
        for (size_t i = 1; i < colon; i++)
            if (!is_alpha(s[i]) && !(s[i] >= '0' && s[i] <= '9') && !strchr("+-.", s[i])) return 0;
        start = colon + 1;
    } else if (absolute) {
        return 0;
    }
    /* '[' and ']' only in the authority (an IPv6 host); '#' once. */
    size_t auth_end = start;
    if (n - start >= 2 && s[start] == '/' && s[start + 1] == '/') auth_end = start + 2 + strcspn(s + start + 2, "/?#");
    int frag = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return 0;
            i += 2;
            continue;
        }
        if (!c || !strchr(chars, c)) return 0;
        if ((c == '[' || c == ']') && (i < start + 2 || i >= auth_end)) return 0;
        if (c == '#' && frag++) return 0;
    }
    return 1;
}

/* RFC 4648 base64 with padding (the empty string included). */
static int valid_base64(const char *s, size_t n)
{
    if (n % 4) return 0;
    size_t pad = n && s[n - 1] == '=' ? (n > 1 && s[n - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < n - pad; i++)
        if (!s[i] || !strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", s[i])) return 0;
    return 1;
}

/* CloudEvents' Integer: 32-bit signed. JavaScript reads 1.0 as the integer
 * 1, so an integral real is one too. */
static int ce_integer(json_t *v)
{
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v)) d = json_real_value(v);
    else return 0;
    return d >= -2147483648.0 && d <= 2147483647.0 && d == floor(d);
}

static const char *const context_attrs[] = {"specversion", "id",   "source", "type",        "subject",  "time",
                                            "datacontenttype", "dataschema", "data", "data_base64", NULL};

static int is_context_attr(const char *k)
{
    for (const char *const *a = context_attrs; *a; a++)
        if (strcmp(k, *a) == 0) return 1;
    return 0;
}

static _Thread_local char ext_msg[112];

/* Printable ASCII but the quote and backslash, which JSON would escape. */
#define NAME_SHOWN                                                                                                     \
    "!#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~"

const char *event_check(json_t *ev)
{
    if (!json_is_object(ev)) return "event is not a JSON object";
    json_t *sv = json_object_get(ev, "specversion");
    if (!jx_is_string(sv) || strcmp(json_string_value(sv), "1.0") != 0) return "specversion must be \"1.0\"";
    if (!nonempty_string(json_object_get(ev, "id"), EVENT_ID_MAX))
        return "id must be a non-empty string of at most 256 bytes";
    json_t *src = json_object_get(ev, "source");
    if (!nonempty_string(src, 1024) || !event_valid_uri(json_string_value(src), json_string_length(src), 0))
        return "source must be a URI-reference of at most 1024 bytes";
    if (!nonempty_string(json_object_get(ev, "type"), 256)) return "type must be a non-empty string of at most 256 bytes";
    int64_t ms;
    json_t *t = json_object_get(ev, "time");
    if (!jx_is_string(t) || time_parse_rfc3339(json_string_value(t), &ms) != 0) return "time must be an RFC 3339 string";
    json_t *v = json_object_get(ev, "subject");
    if (v && !nonempty_string(v, EVENT_SUBJECT_MAX)) return "subject must be a non-empty string of at most 256 bytes";
    v = json_object_get(ev, "datacontenttype");
    if (v && !nonempty_string(v, 256)) return "datacontenttype must be a non-empty string of at most 256 bytes";
    v = json_object_get(ev, "dataschema");
    if (v && (!nonempty_string(v, 1024) || !event_valid_uri(json_string_value(v), json_string_length(v), 1)))
        return "dataschema must be an absolute URI of at most 1024 bytes";
    v = json_object_get(ev, "data_base64");
    if (v && (!jx_is_string(v) || !valid_base64(json_string_value(v), json_string_length(v))))
        return "data_base64 must be a base64 string";
    if (v && json_object_get(ev, "data")) return "data and data_base64 must not both be present";
    if (json_object_get(ev, "schemaurl")) return "schemaurl is not a CloudEvents 1.0 attribute (use dataschema)";
    const char *k;
    json_object_foreach(ev, k, v) {
        if (strcmp(k, "data_base64") == 0 || valid_attr_name(k)) continue;
        /* Named when it can be shown as it is (printable ASCII, short). */
        if (str_of_class(k, strlen(k), NAME_SHOWN, 40)) {
            snprintf(ext_msg, sizeof ext_msg, "attribute name %s is not 1-20 lowercase letters or digits", k);
            return ext_msg;
        }
        return "attribute names must be 1-20 lowercase letters or digits";
    }
    json_object_foreach(ev, k, v) {
        if (is_context_attr(k) || jx_is_string(v) || json_is_boolean(v) || ce_integer(v)) continue;
        snprintf(ext_msg, sizeof ext_msg, "extension attribute %s must be a string, boolean or 32-bit integer", k);
        return ext_msg;
    }
    v = json_object_get(ev, "synccfvia");
    if (v) {
        const char *via = jx_is_string(v) ? json_string_value(v) : "";
        if (strcmp(via, "worker") != 0 && strcmp(via, "tunnel") != 0 && strcmp(via, "queue") != 0 &&
            strcmp(via, "poll") != 0)
            return "synccfvia must be worker, tunnel, queue or poll";
    }
    v = json_object_get(ev, "synccfreceived");
    if (v && (!jx_is_string(v) || time_parse_rfc3339(json_string_value(v), &ms) != 0))
        return "synccfreceived must be an RFC 3339 string";
    return NULL;
}

const char *event_accept(json_t *ev, const struct norm_opts *o)
{
    const char *why = event_check(ev);
    if (why) return why;
    if (!json_object_get(ev, "synccfvia")) json_object_set_new(ev, "synccfvia", json_string(o->via));
    if (!json_object_get(ev, "synccfreceived")) {
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
    return jx_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
}
