/* cmd_cloudflare.c -- `synccf cloudflare setup | check | teardown`: the
 * command line of lib/cfwire.c (which owns the objects and the calls). The
 * configuration is read as the daemon reads it, so the secrets sent to
 * Cloudflare are the ones the Worker and the receiver check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/cfwire.h"
#include "../lib/config.h"
#include "cli.h"

int cmd_cloudflare(struct cli *c, int argc, char **argv)
{
    struct cfwire_opts o = {.json = c->json, .out = stdout, .state_dir = c->state_dir};
    const char *api_base = NULL, *sub = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--dry-run") == 0) o.dry_run = 1;
        else if ((v = cli_value(argc, argv, &i, "--api-base"))) api_base = v;
        else if (!sub && argv[i][0] != '-') sub = argv[i];
        else {
            return cli_bad_option("cloudflare", argv[i]);
        }
    }
    if (!sub) {
        cli_help(stderr, "cloudflare");
        return EXIT_USAGE;
    }
    if (!strcmp(sub, "setup")) o.op = CFWIRE_SETUP;
    else if (!strcmp(sub, "check")) o.op = CFWIRE_CHECK;
    else if (!strcmp(sub, "teardown")) o.op = CFWIRE_TEARDOWN;
    else {
        fprintf(stderr, "synccf cloudflare: unknown command '%s' (setup, check or teardown)\n", sub);
        return EXIT_USAGE;
    }
    if (o.dry_run && o.op == CFWIRE_CHECK) {
        fprintf(stderr, "synccf cloudflare: check changes nothing; --dry-run is for setup and teardown\n");
        return EXIT_USAGE;
    }
    struct config cfg;
    char err[512];
    if (cli_config_env(c, &cfg) != 0) return EXIT_USAGE;
    if (api_base && config_set(&cfg, "api_base", api_base, "--api-base", err, sizeof err) != 0) {
        fprintf(stderr, "synccf: %s\n", err);
        config_free(&cfg);
        return EXIT_USAGE;
    }
    int rc = cfwire_run(&cfg, &o);
    config_free(&cfg);
    return rc == 2 ? EXIT_USAGE : rc ? EXIT_RUNTIME : EXIT_OK;
}
