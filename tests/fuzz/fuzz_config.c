/* fuzz_config.c -- libFuzzer target: the YAML configuration loader, fed
 * through a file as synccf reads it. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "../../lib/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/synccf-fuzz-config-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct config c;
    char err[512];
    config_defaults(&c);
    if (config_load(&c, path, err, sizeof err) == 0) router_publish_config(&c, 0);
    config_free(&c);
    return 0;
}
