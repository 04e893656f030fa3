/* webhook.h -- Standard Webhooks signatures (webhook-id/-timestamp/-signature). */
#ifndef SYNCCF_WEBHOOK_H
#define SYNCCF_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_TOLERANCE_S 300
#define WEBHOOK_KEY_MAX 128

/* A decoded "whsec_<base64>" secret, with an HMAC context keyed once and
 * copied for each message (keying and algorithm lookup are the expensive
 * part of an HMAC in OpenSSL 3). */
struct webhook_key {
    unsigned char k[WEBHOOK_KEY_MAX];
    size_t len;
    struct evp_mac_ctx_st *tmpl;
};

/* 0 on success, -1 when the secret is not whsec_ + base64 of 1..128 bytes. */
int webhook_key_parse(const char *secret, struct webhook_key *key);
void webhook_key_free(struct webhook_key *key);

enum webhook_result {
    WEBHOOK_OK = 0,
    WEBHOOK_MISSING,   /* a header is absent or malformed */
    WEBHOOK_STALE,     /* timestamp more than the tolerance away from now */
    WEBHOOK_BAD_SIG,   /* no signature matches */
};

/* Verifies in constant time; sig_header may hold several space-separated
 * "v1,<base64>" signatures (secret rotation), any one valid suffices. */
enum webhook_result webhook_verify(const struct webhook_key *key, const char *id, const char *timestamp,
                                   const char *sig_header, const void *body, size_t len, int64_t now_s);

/* "v1,<base64>" for id.timestamp.body, into out (at least 64 bytes). */
void webhook_sign(const struct webhook_key *key, const char *id, const char *timestamp, const void *body,
                  size_t len, char *out, size_t outlen);

#endif
