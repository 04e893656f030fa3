/* auth.c -- owns authentication of the ingest routes: the push signature,
 * the notification secret, the hook bearer token, and which routes a
 * configuration leaves open. server.c passes header values in and turns a
 * verdict into its answer; every comparison with a secret is constant-time. */
#include "auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

int auth_init(struct auth *a, const struct auth_secrets *s, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->s = *s;
    if (!s->push_secret) return 0;
    if (webhook_key_parse(s->push_secret, &a->push_key) != 0) {
        snprintf(err, errlen, "the push secret must be whsec_ followed by base64");
        return -1;
    }
    a->have_push_key = 1;
    return 0;
}

void auth_free(struct auth *a)
{
    if (a->have_push_key) webhook_key_free(&a->push_key);
    a->have_push_key = 0;
}

/* A secret unset lets everything through; a set one must match exactly. */
static int secret_ok(const char *given, const char *secret)
{
    return !secret || (given && ct_equal(given, strlen(given), secret, strlen(secret)));
}

enum auth_verdict auth_route(const struct auth *a, enum ingest_route route, const struct auth_headers *h)
{
    int ok = 1;
    switch (route) {
    case INGEST_NOTIFY: ok = secret_ok(h->cf_webhook_auth, a->s.notify_secret); break;
    case INGEST_LOGPUSH:
    case INGEST_GENERIC:
    case INGEST_XPLAT: {
        const char *v = h->authorization;
        if (a->s.hook_token) ok = v && strncasecmp(v, "Bearer ", 7) == 0 && secret_ok(v + 7, a->s.hook_token);
        break;
    }
    default: break;
    }
    return ok ? AUTH_OK : AUTH_UNAUTHORIZED;
}

enum auth_verdict auth_push(const struct auth *a, const struct auth_headers *h, const void *body, size_t len,
                            int64_t now_s)
{
    if (!a->have_push_key) return AUTH_OK;
    switch (webhook_verify(&a->push_key, h->webhook_id, h->webhook_timestamp, h->webhook_signature, body, len,
                           now_s)) {
    case WEBHOOK_OK: return AUTH_OK;
    case WEBHOOK_MISSING: return AUTH_MISSING;
    case WEBHOOK_STALE: return AUTH_STALE;
    case WEBHOOK_BAD_SIG: break;
    }
    return AUTH_BAD_SIG;
}

static const struct {
    const char *reason, *message;
} answers[] = {
    [AUTH_OK] = {"ok", "authenticated"},
    [AUTH_UNAUTHORIZED] = {"unauthorized", "missing or wrong credentials"},
    [AUTH_MISSING] = {"unauthorized", "missing or malformed webhook-id/-timestamp/-signature"},
    [AUTH_STALE] = {"stale_timestamp", "webhook-timestamp is more than 5 minutes off"},
    [AUTH_BAD_SIG] = {"bad_signature", "no webhook-signature matches"},
};

const char *auth_reason(enum auth_verdict v) { return answers[v].reason; }
const char *auth_message(enum auth_verdict v) { return answers[v].message; }

int auth_open_routes(const struct auth_secrets *s, const char *out[AUTH_OPEN_MAX])
{
    int n = 0;
    if (!s->push_secret) out[n++] = "/v1/events (SYNCCF_PUSH_SECRET)";
    if (!s->notify_secret) out[n++] = "/hooks/notifications (SYNCCF_NOTIFY_SECRET)";
    if (!s->hook_token) out[n++] = "/hooks/logpush, /hooks/generic, / (SYNCCF_HOOK_TOKEN)";
    return n;
}
