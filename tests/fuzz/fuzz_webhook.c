/* fuzz_webhook.c -- libFuzzer target: Standard Webhooks headers and secrets.
 * Input: secret \0 id \0 timestamp \0 signature-header \0 body. */
#include <stdint.h>
#include <string.h>

#include "../../lib/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[4096];
    if (size >= sizeof buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *f[5] = {buf, "", "", "", ""};
    char *p = buf;
    for (int i = 1; i < 5; i++) {
        p = memchr(p, '\0', (size_t)(buf + size - p));
        if (!p) break;
        f[i] = ++p;
        if (p >= buf + size) break;
    }
    struct webhook_key k;
    if (webhook_key_parse(f[0], &k) != 0 && webhook_key_parse("whsec_c2VjcmV0", &k) != 0) return 0;
    webhook_verify(&k, f[1], f[2], f[3], f[4], strlen(f[4]), 1763633000);
    webhook_key_free(&k);
    return 0;
}
