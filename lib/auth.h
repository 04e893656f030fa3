/* auth.h -- who may post to the ingest routes: the secrets in, a verdict
 * out, from the header values a request carries (no HTTP library here). */
#ifndef SYNCCF_AUTH_H
#define SYNCCF_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "routes.h"
#include "webhook.h"

/* Each NULL when unset: its routes are then open (loopback only). */
struct auth_secrets {
    const char *push_secret;   /* whsec_..., for POST /v1/events */
    const char *notify_secret; /* cf-webhook-auth, for /hooks/notifications */
    const char *hook_token;    /* bearer, for Logpush, generic hooks and xplat's POST / */
};

struct auth {
    struct auth_secrets s;
    struct webhook_key push_key;
    int have_push_key;
};

/* The header values a verdict reads; NULL when absent. */
struct auth_headers {
    const char *authorization;   /* Authorization */
    const char *cf_webhook_auth; /* cf-webhook-auth */
    const char *webhook_id, *webhook_timestamp, *webhook_signature;
};

enum auth_verdict {
    AUTH_OK,
    AUTH_UNAUTHORIZED, /* missing or wrong secret */
    AUTH_MISSING,      /* push: a webhook-* header is absent or malformed */
    AUTH_STALE,        /* push: webhook-timestamp too far from now */
    AUTH_BAD_SIG,      /* push: no signature matches */
};

/* 0, or -1 with err when the push secret is not whsec_ + base64. */
int auth_init(struct auth *a, const struct auth_secrets *s, char *err, size_t errlen);
void auth_free(struct auth *a);

/* What can be checked before the body: the notification secret or the
 * bearer token. A push is checked once its body is in (auth_push). */
enum auth_verdict auth_route(const struct auth *a, enum ingest_route route, const struct auth_headers *h);

/* A push's Standard Webhooks signature over its body. */
enum auth_verdict auth_push(const struct auth *a, const struct auth_headers *h, const void *body, size_t len,
                            int64_t now_s);

/* The reason (a counter's name) and message a refusal is answered with. */
const char *auth_reason(enum auth_verdict v);
const char *auth_message(enum auth_verdict v);

/* The routes s leaves without a secret, each named with the variable that
 * closes it, into out; returns how many. */
#define AUTH_OPEN_MAX 3
int auth_open_routes(const struct auth_secrets *s, const char *out[AUTH_OPEN_MAX]);

#endif
