/* test_core.c -- time reading, Standard Webhooks, the Logpush reader, the SSE
 * reader, filters:
 * table-driven cases, including hostile ones. */
#include <jansson.h>
#include <string.h>
#include <zlib.h>

#include "../../lib/auth.h"
#include "../../lib/event.h"
#include "../../lib/filter.h"
#include "../../lib/jsonx.h"
#include "../../lib/logpush.h"
#include "../../lib/sse.h"
#include "../../lib/util.h"
#include "../../lib/webhook.h"
#include "testutil.h"

static void test_time_strings(void **st)
{
    (void)st;
    static const struct {
        const char *in, *out; /* out NULL: must be refused */
    } cases[] = {
        {"2026-11-20T10:00:01Z", "2026-11-20T10:00:01Z"},
        {"2026-11-20t10:00:01z", "2026-11-20T10:00:01Z"},
        {"2026-11-20 10:00:01Z", "2026-11-20T10:00:01Z"},
        {"2026-11-20T10:00:01.5Z", "2026-11-20T10:00:01.500Z"},
        {"2026-11-20T10:00:01.123999Z", "2026-11-20T10:00:01.123Z"},
        {"2026-11-20T11:00:00.123456+02:00", "2026-11-20T09:00:00.123Z"},
        {"2026-01-01T00:30:00-01:00", "2026-01-01T01:30:00Z"},
        {"2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},
        {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"},
        {"2025-02-29T00:00:00Z", NULL},
        {"2026-13-01T00:00:00Z", NULL},
        {"2026-11-20T24:00:00Z", NULL},
        {"2026-11-20T10:00:01", NULL},
        {"2026-11-20T10:00:01.Z", NULL},
        {"2026-11-20T10:00:01+0200", NULL},
        {"1969-12-31T23:59:59Z", NULL},
        {"yesterday", NULL},
        {"", NULL},
        {"2026-11-20T10:00:01Zjunk", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t ms;
        int rc = time_parse_rfc3339(cases[i].in, &ms);
        if (!cases[i].out) {
            if (rc == 0) fail_msg("accepted %s", cases[i].in);
            continue;
        }
        if (rc != 0) fail_msg("refused %s", cases[i].in);
        char out[TIME_BUF];
        time_format_ms(ms, out);
        assert_string_equal(out, cases[i].out);
    }
}

static void test_time_numbers(void **st)
{
    (void)st;
    static const struct {
        const char *json, *out;
    } cases[] = {
        {"1763633000", "2025-11-20T10:03:20Z"},           /* seconds */
        {"1763633000123", "2025-11-20T10:03:20.123Z"},    /* milliseconds */
        {"1763633000123456", "2025-11-20T10:03:20.123Z"}, /* microseconds */
        {"1763633000123456789", "2025-11-20T10:03:20.123Z"},
        {"1763633000.75", "2025-11-20T10:03:20.750Z"},
        {"-5", NULL},
        {"1e12", NULL}, /* non-integer numbers are seconds below 1e11 only */
        {"true", NULL},
        {"null", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        int64_t ms;
        int rc = time_from_json(v, &ms);
        json_decref(v);
        if (!cases[i].out) {
            if (rc == 0) fail_msg("accepted %s", cases[i].json);
            continue;
        }
        assert_int_equal(rc, 0);
        char out[TIME_BUF];
        time_format_ms(ms, out);
        assert_string_equal(out, cases[i].out);
    }
}

/* time_format_ms formats by arithmetic; libc's gmtime_r + strftime is the
 * oracle, over the edges (epoch, leap days, century years, the last
 * millisecond of 9999) and a million pseudo-random instants. */
static void time_check_libc(int64_t ms)
{
    char want[64], got[TIME_BUF];
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    assert_non_null(gmtime_r(&sec, &tm));
    size_t n = strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ms % 1000) snprintf(want + n, sizeof want - n, ".%03dZ", (int)(ms % 1000));
    else snprintf(want + n, sizeof want - n, "Z");
    time_format_ms(ms, got);
    if (strcmp(want, got) != 0) fail_msg("%lld: %s, libc %s", (long long)ms, got, want);
}

static void test_time_format_vs_libc(void **st)
{
    (void)st;
    static const int64_t edges[] = {0, 1, 999, 1000, 86399999, 86400000, 951782400000 /* 2000-02-29 */,
                                    4107542400000 /* 2100-03-01 */, 68256000000 /* 1972-02-29 */,
                                    253402300799999 /* 9999-12-31T23:59:59.999 */};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) time_check_libc(edges[i]);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 1000000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        time_check_libc((int64_t)(x % 253402300800000ull));
    }
    char out[TIME_BUF];
    time_format_ms(-5, out); /* out of range: clamped, as before */
    assert_string_equal(out, "1970-01-01T00:00:00Z");
}

/* Standard Webhooks' own published example: secret, id, timestamp, body and
 * the signature its reference libraries compute. */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS "1614265330"
#define SW_BODY "{\"test\": 2432232314}"
#define SW_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void test_webhook(void **st)
{
    (void)st;
    struct webhook_key k;
    assert_int_equal(webhook_key_parse(SW_SECRET, &k), 0);
    int64_t now = 1614265330;
    size_t bl = strlen(SW_BODY);
    assert_int_equal(webhook_verify(&k, SW_ID, SW_TS, SW_SIG, SW_BODY, bl, now), WEBHOOK_OK);
    /* rotation: any one of several signatures */
    assert_int_equal(webhook_verify(&k, SW_ID, SW_TS, "v1,AAAA v2,xyz " SW_SIG, SW_BODY, bl, now), WEBHOOK_OK);
    /* body, id or timestamp changed */
    assert_int_equal(webhook_verify(&k, SW_ID, SW_TS, SW_SIG, "{\"test\": 2432232315}", bl, now), WEBHOOK_BAD_SIG);
    assert_int_equal(webhook_verify(&k, "msg_other", SW_TS, SW_SIG, SW_BODY, bl, now), WEBHOOK_BAD_SIG);
    /* tolerance: 5 minutes either way */
    assert_int_equal(webhook_verify(&k, SW_ID, SW_TS, SW_SIG, SW_BODY, bl, now + 300), WEBHOOK_OK);
    assert_int_equal(webhook_verify(&k, SW_ID, SW_TS, SW_SIG, SW_BODY, bl, now + 301), WEBHOOK_STALE);
    assert_int_equal(webhook_verify(&k, SW_ID, SW_TS, SW_SIG, SW_BODY, bl, now - 301), WEBHOOK_STALE);
    /* malformed headers */
    assert_int_equal(webhook_verify(&k, SW_ID, "16142653x0", SW_SIG, SW_BODY, bl, now), WEBHOOK_MISSING);
    assert_int_equal(webhook_verify(&k, NULL, SW_TS, SW_SIG, SW_BODY, bl, now), WEBHOOK_MISSING);
    assert_int_equal(webhook_verify(&k, SW_ID, SW_TS, NULL, SW_BODY, bl, now), WEBHOOK_MISSING);
    assert_int_equal(webhook_verify(&k, SW_ID, SW_TS, "v1,not-base64!", SW_BODY, bl, now), WEBHOOK_BAD_SIG);
    /* another key */
    struct webhook_key k2;
    assert_int_equal(webhook_key_parse("whsec_c2VjcmV0", &k2), 0);
    assert_int_equal(webhook_verify(&k2, SW_ID, SW_TS, SW_SIG, SW_BODY, bl, now), WEBHOOK_BAD_SIG);
    /* signing round trip */
    char sig[80];
    webhook_sign(&k, SW_ID, SW_TS, SW_BODY, bl, sig, sizeof sig);
    assert_string_equal(sig, SW_SIG);
    /* bad secrets */
    webhook_key_free(&k2);
    webhook_key_free(&k);
    assert_int_equal(webhook_key_parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &k2), -1);
    assert_int_equal(webhook_key_parse("whsec_", &k2), -1);
    assert_int_equal(webhook_key_parse("whsec_%%%%", &k2), -1);
}

struct lines {
    int n;
    char last[64];
};

static int count_line(void *arg, const char *line, size_t len, unsigned long lineno)
{
    (void)lineno;
    struct lines *l = arg;
    l->n++;
    snprintf(l->last, sizeof l->last, "%.*s", (int)len, line);
    return 0;
}

static unsigned char *gz(const void *in, size_t n, size_t *outlen)
{
    uLong cap = compressBound((uLong)n) + 64;
    unsigned char *out = malloc(cap);
    z_stream z = {0};
    deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    *outlen = z.total_out;
    deflateEnd(&z);
    return out;
}

static void test_logpush_reader(void **st)
{
    (void)st;
    struct lp_reader r;
    struct lines l = {0};
    const char *plain = "{\"a\":1}\n\n{\"a\":2}\r\n{\"a\":3}";
    lp_init(&r, count_line, &l, 1 << 20, 1024);
    assert_int_equal(lp_feed(&r, plain, strlen(plain)), 0);
    assert_int_equal(lp_finish(&r), 0);
    lp_free(&r);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.last, "{\"a\":3}");

    /* two gzip members back to back read as one stream */
    size_t n1, n2;
    unsigned char *g1 = gz("{\"m\":1}\n", 8, &n1), *g2 = gz("{\"m\":2}\n", 8, &n2);
    unsigned char *both = malloc(n1 + n2);
    memcpy(both, g1, n1);
    memcpy(both + n1, g2, n2);
    memset(&l, 0, sizeof l);
    lp_init(&r, count_line, &l, 1 << 20, 1024);
    for (size_t i = 0; i < n1 + n2; i++) assert_int_equal(lp_feed(&r, both + i, 1), 0);
    assert_int_equal(lp_finish(&r), 0);
    lp_free(&r);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.last, "{\"m\":2}");

    /* truncated gzip */
    memset(&l, 0, sizeof l);
    lp_init(&r, count_line, &l, 1 << 20, 1024);
    assert_int_equal(lp_feed(&r, g1, n1 - 4), 0);
    assert_int_equal(lp_finish(&r), -1);
    assert_int_equal(r.kind, LP_TRUNCATED);
    lp_free(&r);

    /* corrupt gzip */
    g1[n1 / 2] ^= 0xff;
    g1[n1 / 2 + 1] ^= 0xff;
    lp_init(&r, count_line, &l, 1 << 20, 1024);
    int rc = lp_feed(&r, g1, n1);
    if (rc == 0) rc = lp_finish(&r);
    assert_int_equal(rc, -1);
    lp_free(&r);
    free(g1);
    free(g2);
    free(both);

    /* gzip bomb: 64 MiB of zeros compresses to ~64 KiB; bound at 1 MiB */
    size_t big = 64u << 20, bl;
    char *zeros = calloc(1, big);
    unsigned char *bomb = gz(zeros, big, &bl);
    free(zeros);
    assert_true(bl < 200000);
    memset(&l, 0, sizeof l);
    lp_init(&r, count_line, &l, 1 << 20, 1 << 20);
    rc = lp_feed(&r, bomb, bl);
    assert_int_equal(rc, -1);
    assert_int_equal(r.kind, LP_TOO_LARGE);
    assert_true(r.total <= (1u << 20));
    lp_free(&r);
    free(bomb);

    /* a record longer than the line limit */
    char longline[300];
    memset(longline, 'x', sizeof longline);
    lp_init(&r, count_line, &l, 1 << 20, 256);
    assert_int_equal(lp_feed(&r, longline, sizeof longline), -1);
    assert_int_equal(r.kind, LP_LONG_LINE);
    lp_free(&r);

    /* a one-byte body is plain text */
    memset(&l, 0, sizeof l);
    lp_init(&r, count_line, &l, 1 << 20, 256);
    assert_int_equal(lp_feed(&r, "x", 1), 0);
    assert_int_equal(lp_finish(&r), 0);
    lp_free(&r);
    assert_int_equal(l.n, 1);
}

static void test_filters(void **st)
{
    (void)st;
    struct filter *f = NULL;
    assert_int_equal(filter_add(&f, "http_requests.EdgeResponseStatus=5*"), 0);
    assert_int_equal(filter_add(&f, "Outcome=exception"), 0);
    assert_int_equal(filter_add(&f, "=x"), -1);
    assert_int_equal(filter_add(&f, "Bad-Dataset.x=y"), -1);
    assert_int_equal(filter_add(&f, "noequals"), -1);
    json_t *a = json_pack("{s:i,s:s}", "EdgeResponseStatus", 522, "Outcome", "exception");
    json_t *b = json_pack("{s:i,s:s}", "EdgeResponseStatus", 200, "Outcome", "exception");
    json_t *c = json_pack("{s:i,s:s}", "EdgeResponseStatus", 200, "Outcome", "ok");
    assert_true(filter_keep(f, "http_requests", a));
    assert_false(filter_keep(f, "http_requests", b));
    assert_true(filter_keep(f, "workers_trace_events", b)); /* status filter is per dataset */
    assert_false(filter_keep(f, "workers_trace_events", c));
    assert_true(filter_keep(NULL, "x", c));
    json_decref(a);
    json_decref(b);
    json_decref(c);
    filter_free(f);
}

/* Collects events as "id|type|data;" into a string. */
static int sse_collect(void *arg, long long id, const char *type, const char *data, size_t len)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 1024 - n, "%lld|%s|%.*s;", id, type, (int)len, data);
    return strstr(data, "STOP") != NULL;
}

static void test_sse_reader(void **st)
{
    (void)st;
    static const struct {
        const char *in, *out;
        int rc;
    } cases[] = {
        {"id: 1\nevent: cloudevent\ndata: {\"a\":1}\n\n", "1|cloudevent|{\"a\":1};", SSE_OK},
        {"data:x\r\n\r\ndata:y\r\rdata: z\n\n", "-1||x;-1||y;-1||z;", SSE_OK},
        {": heartbeat\n\n: another\n\n", "", SSE_OK},                  /* comments only */
        {"id: 7\n\ndata: a\ndata: b\n\n", "7||a\nb;", SSE_OK},           /* id persists, data lines join */
        {"id: 5\ndata: a\n\nid: x5\ndata: b\n\nid: -3\ndata: c\n\n", "5||a;5||b;5||c;", SSE_OK},
        {"id: 99999999999999999999\ndata: a\n\n", "-1||a;", SSE_OK},   /* does not fit: ignored */
        {"data\n\ndata:\n\n", "", SSE_OK},                             /* empty data is no event */
        {"event: a-very-long-event-type-name-cut-here\ndata: d\n\n", "-1|a-very-long-event-type-name-cut|d;", SSE_OK},
        {"data: partial", "", SSE_OK},                                     /* no blank line yet */
        {"retry: 10\nfoo: bar\ndata: q\n\n", "-1||q;", SSE_OK},           /* unknown fields ignored */
        {"data: STOP\n\ndata: after\n\n", "-1||STOP;", SSE_STOPPED},
        {"data: 01234567890123456789012345678901234567890123456789\n\n", "", SSE_TOO_LONG}, /* line > 48 */
        {"data: 012345678901234567890123456789\ndata: 012345678901234567890123456789\n\ndata: next\n\n", "", SSE_TOO_LONG}, /* data > 48 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* Whole, then one byte at a time: the same events either way. */
        for (int split = 0; split < 2; split++) {
            char out[1024] = "";
            struct sse s;
            sse_init(&s, 48, sse_collect, out);
            size_t n = strlen(cases[i].in);
            int rc = SSE_OK;
            if (!split) rc = sse_feed(&s, cases[i].in, n);
            else
                for (size_t k = 0; k < n && rc == SSE_OK; k++) rc = sse_feed(&s, cases[i].in + k, 1);
            if (rc != cases[i].rc || strcmp(out, cases[i].out) != 0)
                fail_msg("case %zu split %d: rc %d out \"%s\"", i, split, rc, out);
            sse_free(&s);
        }
    }
}

static void test_ct_and_glob(void **st)
{
    (void)st;
    assert_true(ct_equal("abc", 3, "abc", 3));
    assert_false(ct_equal("abc", 3, "abd", 3));
    assert_false(ct_equal("abc", 3, "abcd", 4));
    assert_true(glob_match("com.cloudflare.pages.*", "com.cloudflare.pages.deployment.success"));
    assert_false(glob_match("com.cloudflare.pages.*", "com.cloudflare.notification.x"));
    assert_true(str_of_class("http_requests", 13, "abcdefghijklmnopqrstuvwxyz_", 64));
    assert_false(str_of_class("", 0, "a", 64));
}

/* Integers past 64 bits survive jansson digit for digit, and only where a
 * value is: everything else is left for jansson to judge. */
static void test_big_integers(void **st)
{
    (void)st;
    static const struct {
        const char *in, *out; /* out NULL: refused */
    } cases[] = {
        {"{\"a\":12345678901234567890}", "{\"a\":12345678901234567890}"},
        {"[ -98765432109876543210 , 9223372036854775807,-9223372036854775808 ]",
         "[-98765432109876543210,9223372036854775807,-9223372036854775808]"},
        {"[9223372036854775808,-9223372036854775809]", "[9223372036854775808,-9223372036854775809]"},
        {"{\"s\":\"12345678901234567890\",\"t\":\"\\\"\",\"n\":[{\"x\":[123456789012345678901234567890]}]}",
         "{\"s\":\"12345678901234567890\",\"t\":\"\\\"\",\"n\":[{\"x\":[123456789012345678901234567890]}]}"},
        {"{\"a\":1.5e3,\"b\":100000000000000000000.0}", "{\"a\":1500.0,\"b\":1e20}"},
        /* A key cannot be a number, marked or not. */
        {"{12345678901234567890:1}", NULL},
        {"{\"a\":1,12345678901234567890:1}", NULL},
        /* Leading zeros stay malformed; an escaped NUL stays refused. */
        {"[012345678901234567890]", NULL},
        {"{\"a\":12345678901234567890,\"b\":\"\\u0000\"}", NULL},
        {"{\"a\":12345678901234567890", NULL},
        {"\"\\", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_error_t err;
        json_t *j = jx_loads(cases[i].in, 0, &err);
        if (!cases[i].out) {
            if (j) fail_msg("case %zu accepted: %s", i, cases[i].in);
            continue;
        }
        if (!j) fail_msg("case %zu refused: %s (%s)", i, cases[i].in, err.text);
        char *s = jx_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        assert_string_equal(s, cases[i].out);
        free(s);
        json_decref(j);
    }
    /* A marker is no string to the code that reads events. */
    json_t *j = jx_loads("{\"a\":12345678901234567890,\"b\":\"x\"}", 0, NULL);
    assert_true(jx_is_bigint(json_object_get(j, "a")));
    assert_false(jx_is_string(json_object_get(j, "a")));
    assert_true(jx_is_string(json_object_get(j, "b")));
    json_decref(j);
}

/* URI checks behind source (URI-reference) and dataschema (absolute URI). */
static void test_uris(void **st)
{
    (void)st;
    static const struct {
        const char *s;
        int ref, abs;
    } cases[] = {
        {"/cloudflare/pages", 1, 0},      {"https://example.com/a?b=c#d", 1, 1}, {"urn:uuid:6e8bc430", 1, 1},
        {"mailto:a@b.c", 1, 1},           {"1-555-123-4567", 1, 0},              {"a/b:c", 1, 0},
        {"http://[::1]:80/x", 1, 1},      {"/x/[y]", 0, 0},                      {"1a:b", 0, 0},
        {"not a uri", 0, 0},              {"/a%2", 0, 0},                        {"/a%2g", 0, 0},
        {"/a%2F", 1, 0},                  {"#a#b", 0, 0},                        {"", 0, 0},
        {"caf\xc3\xa9", 0, 0},              {"a\"b", 0, 0},                       {"x:", 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = strlen(cases[i].s);
        if (event_valid_uri(cases[i].s, n, 0) != cases[i].ref) fail_msg("URI-reference %s", cases[i].s);
        if (event_valid_uri(cases[i].s, n, 1) != cases[i].abs) fail_msg("absolute URI %s", cases[i].s);
    }
}

/* auth.c: header values in, a verdict out. */
static void test_auth(void **state)
{
    (void)state;
    char err[128];
    struct auth a;
    const char *open[AUTH_OPEN_MAX];

    /* Nothing set: every route open, and listed so. */
    struct auth_secrets none = {0};
    assert_int_equal(auth_init(&a, &none, err, sizeof err), 0);
    struct auth_headers h = {0};
    assert_int_equal(auth_route(&a, INGEST_LOGPUSH, &h), AUTH_OK);
    assert_int_equal(auth_route(&a, INGEST_NOTIFY, &h), AUTH_OK);
    assert_int_equal(auth_push(&a, &h, "{}", 2, 0), AUTH_OK);
    assert_int_equal(auth_open_routes(&none, open), 3);
    auth_free(&a);

    struct auth_secrets bad = {.push_secret = "not-whsec"};
    assert_int_equal(auth_init(&a, &bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "whsec_"));

    struct auth_secrets all = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "n-secret", "h-token"};
    assert_int_equal(auth_open_routes(&all, open), 0);
    assert_int_equal(auth_init(&a, &all, err, sizeof err), 0);
    /* The bearer token: the scheme in any case, the token exactly. */
    struct auth_headers bearer[] = {{.authorization = "Bearer h-token"}, {.authorization = "bearer h-token"},
                                    {.authorization = "Bearer h-toke"},  {.authorization = "h-token"},
                                    {.authorization = NULL}};
    enum auth_verdict want[] = {AUTH_OK, AUTH_OK, AUTH_UNAUTHORIZED, AUTH_UNAUTHORIZED, AUTH_UNAUTHORIZED};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_int_equal(auth_route(&a, INGEST_GENERIC, &bearer[i]), want[i]);
        assert_int_equal(auth_route(&a, INGEST_XPLAT, &bearer[i]), want[i]);
    }
    /* The notification secret is its own header, not the bearer. */
    struct auth_headers n = {.cf_webhook_auth = "n-secret", .authorization = "Bearer h-token"};
    assert_int_equal(auth_route(&a, INGEST_NOTIFY, &n), AUTH_OK);
    n.cf_webhook_auth = "h-token";
    assert_int_equal(auth_route(&a, INGEST_NOTIFY, &n), AUTH_UNAUTHORIZED);
    /* A push is checked with its body: before it, anything passes. */
    assert_int_equal(auth_route(&a, INGEST_EVENTS, &h), AUTH_OK);
    assert_int_equal(auth_push(&a, &h, "{}", 2, 0), AUTH_MISSING);
    char sig[128];
    webhook_sign(&a.push_key, "msg_1", "1000", "{}", 2, sig, sizeof sig);
    struct auth_headers p = {.webhook_id = "msg_1", .webhook_timestamp = "1000", .webhook_signature = sig};
    assert_int_equal(auth_push(&a, &p, "{}", 2, 1000), AUTH_OK);
    assert_int_equal(auth_push(&a, &p, "{} ", 3, 1000), AUTH_BAD_SIG);
    assert_int_equal(auth_push(&a, &p, "{}", 2, 1000 + WEBHOOK_TOLERANCE_S + 1), AUTH_STALE);
    assert_string_equal(auth_reason(AUTH_BAD_SIG), "bad_signature");
    assert_string_equal(auth_reason(AUTH_MISSING), "unauthorized");
    auth_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_strings), cmocka_unit_test(test_time_numbers),
        cmocka_unit_test(test_time_format_vs_libc),
        cmocka_unit_test(test_webhook),      cmocka_unit_test(test_logpush_reader),
        cmocka_unit_test(test_filters),      cmocka_unit_test(test_ct_and_glob),
        cmocka_unit_test(test_sse_reader),   cmocka_unit_test(test_big_integers),
        cmocka_unit_test(test_uris),         cmocka_unit_test(test_auth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
