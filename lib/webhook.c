/* webhook.c -- verification and signing per the Standard Webhooks scheme.
 *
 * The signed content is "<webhook-id>.<webhook-timestamp>.<body>", the MAC is
 * HMAC-SHA256 keyed with the base64-decoded part of "whsec_...". Comparison is
 * constant-time (CRYPTO_memcmp) on the decoded MAC, so a forger learns nothing
 * from timing; lengths are public. */
#include "webhook.h"

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strict base64 decode (standard alphabet, padding required). Returns the
 * decoded length or -1. EVP_DecodeBlock counts padding as zero bytes, so the
 * padding is subtracted here. */
static int b64_decode(const char *in, size_t n, unsigned char *out, size_t outmax)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > outmax) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                 c == '/' || (c == '=' && i >= n - 2);
        if (!ok) return -1;
    }
    if (in[n - 2] == '=' && in[n - 1] != '=') return -1;
    int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (len < 0) return -1;
    if (in[n - 1] == '=') len--;
    if (in[n - 2] == '=') len--;
    return len;
}

int webhook_key_parse(const char *secret, struct webhook_key *key)
{
    memset(key, 0, sizeof *key);
    if (!secret || strncmp(secret, "whsec_", 6) != 0) return -1;
    unsigned char tmp[WEBHOOK_KEY_MAX + 3];
    int n = b64_decode(secret + 6, strlen(secret + 6), tmp, sizeof tmp);
    if (n <= 0 || n > WEBHOOK_KEY_MAX) return -1;
    memcpy(key->k, tmp, (size_t)n);
    key->len = (size_t)n;
    OPENSSL_cleanse(tmp, sizeof tmp);

    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!m) return -1;
    key->tmpl = EVP_MAC_CTX_new(m);
    EVP_MAC_free(m);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (!key->tmpl || !EVP_MAC_init(key->tmpl, key->k, key->len, params)) {
        webhook_key_free(key);
        return -1;
    }
    return 0;
}

void webhook_key_free(struct webhook_key *key)
{
    EVP_MAC_CTX_free(key->tmpl);
    OPENSSL_cleanse(key, sizeof *key);
}

static void mac(const struct webhook_key *key, const char *id, const char *ts, const void *body, size_t len,
                unsigned char out[32])
{
    size_t olen = 0;
    EVP_MAC_CTX *c = EVP_MAC_CTX_dup(key->tmpl);
    EVP_MAC_update(c, (const unsigned char *)id, strlen(id));
    EVP_MAC_update(c, (const unsigned char *)".", 1);
    EVP_MAC_update(c, (const unsigned char *)ts, strlen(ts));
    EVP_MAC_update(c, (const unsigned char *)".", 1);
    EVP_MAC_update(c, body, len);
    EVP_MAC_final(c, out, &olen, 32);
    EVP_MAC_CTX_free(c);
}

static int parse_ts(const char *s, int64_t *out)
{
    if (!s || !*s || strlen(s) > 12) return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

enum webhook_result webhook_verify(const struct webhook_key *key, const char *id, const char *timestamp,
                                   const char *sig_header, const void *body, size_t len, int64_t now_s)
{
    int64_t ts;
    if (!id || !*id || strlen(id) > 256 || !sig_header || parse_ts(timestamp, &ts) != 0) return WEBHOOK_MISSING;
    if (ts < now_s - WEBHOOK_TOLERANCE_S || ts > now_s + WEBHOOK_TOLERANCE_S) return WEBHOOK_STALE;
    unsigned char want[32];
    mac(key, id, timestamp, body, len, want);
    int ok = 0;
    const char *p = sig_header;
    /* Bounded: at most 8 candidate signatures are tried. */
    for (int tries = 0; *p && tries < 8; tries++) {
        while (*p == ' ') p++;
        const char *end = strchr(p, ' ');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 3 && strncmp(p, "v1,", 3) == 0) {
            unsigned char got[48];
            int gl = b64_decode(p + 3, n - 3, got, sizeof got);
            if (gl == 32 && CRYPTO_memcmp(got, want, 32) == 0) ok = 1;
        }
        p += n;
    }
    OPENSSL_cleanse(want, sizeof want);
    return ok ? WEBHOOK_OK : WEBHOOK_BAD_SIG;
}

void webhook_sign(const struct webhook_key *key, const char *id, const char *timestamp, const void *body,
                  size_t len, char *out, size_t outlen)
{
    unsigned char m[32];
    unsigned char b64[48];
    mac(key, id, timestamp, body, len, m);
    EVP_EncodeBlock(b64, m, 32);
    snprintf(out, outlen, "v1,%s", b64);
}
