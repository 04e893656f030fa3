/* main.c -- the synccf command: option handling shared by all subcommands
 * and dispatch to them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/config.h"
#include "../lib/envfile.h"
#include "../lib/log.h"
#include "../lib/store.h"
#include "cli.h"
#include "synccf.h"

static const char usage[] =
    "usage: synccf [--config FILE] [--env-file FILE] [--state DIR] [--log-format logfmt|json] [--log-level LEVEL] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  run                 everything the config's mode asks for (worker, queue, tunnel, poll, hybrid)\n"
    "  receive             accept Cloudflare events over HTTP (loopback :9091 by default)\n"
    "  tunnel              the receiver plus cloudflared, supervised; prints the public URL\n"
    "  pull                follow the synccf Worker (--worker-url URL, SYNCCF_PULL_TOKEN)\n"
    "  queue               consume a Cloudflare Queue (--queue-id, CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN)\n"
    "  poll                read the Audit Logs API (--interval 5m, CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN)\n"
    "  status [--json]     what the store holds: events by source and type, duplicates, rejections\n"
    "  events list [--type GLOB] [--since TIME] [--limit N] [--json]\n"
    "  events show ID      one stored event and its handler runs\n"
    "  events tail [--json] follow new events and handler outcomes\n"
    "  replay ID           run an event's handlers again\n"
    "  config check        validate the configuration and print it (secrets redacted)\n"
    "  cloudflare setup [--dry-run] | check [--json] | teardown [--dry-run]\n"
    "                      wire Cloudflare to send what the handlers need (docs/cloudflare.md)\n"
    "  version             print the version\n"
    "\n"
    "config file: --config FILE, SYNCCF_CONFIG (synccf.yaml, or xplat.yaml's sync.cloudflare)\n"
    "environment file: --env-file FILE (KEY=value lines; the process environment wins)\n"
    "state directory: --state DIR, SYNCCF_STATE, the file's state, default ~/.xplat/cache/synccf\n";

const char *cli_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0') return NULL;
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

int cli_config(const struct cli *c, struct config *cfg)
{
    char err[512];
    config_defaults(cfg);
    if (c->config && config_load(cfg, c->config, err, sizeof err) != 0) {
        fprintf(stderr, "synccf: %s\n", err);
        config_free(cfg);
        return -1;
    }
    return 0;
}

int cli_common(struct cli *c, int *argc, char **argv)
{
    const char *state = NULL, *fmt = "logfmt", *level = "info";
    int out = 1;
    /* --env-file first: the file may set SYNCCF_CONFIG and SYNCCF_STATE. */
    for (int i = 1; i < *argc; i++) {
        const char *v;
        char err[512];
        if (!(v = cli_value(*argc, argv, &i, "--env-file"))) argv[out++] = argv[i];
        else if (envfile_load(v, err, sizeof err) != 0) {
            fprintf(stderr, "synccf: --env-file %s\n", err);
            return -1;
        }
    }
    *argc = out;
    out = 1;
    env_xplat_fallbacks();
    c->config = getenv("SYNCCF_CONFIG") && *getenv("SYNCCF_CONFIG") ? getenv("SYNCCF_CONFIG") : NULL;
    for (int i = 1; i < *argc; i++) {
        const char *v;
        if ((v = cli_value(*argc, argv, &i, "--state"))) state = v;
        else if ((v = cli_value(*argc, argv, &i, "--config"))) c->config = v;
        else if ((v = cli_value(*argc, argv, &i, "--log-format"))) fmt = v;
        else if ((v = cli_value(*argc, argv, &i, "--log-level"))) level = v;
        else if (strcmp(argv[i], "--json") == 0) c->json = 1;
        else argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    enum log_level lvl;
    if (log_level_parse(level, &lvl) != 0 || (strcmp(fmt, "logfmt") != 0 && strcmp(fmt, "json") != 0)) {
        fprintf(stderr, "synccf: --log-format is logfmt or json; --log-level is debug, info, warn or error\n");
        return -1;
    }
    log_setup(lvl, strcmp(fmt, "json") == 0);
    if (!state && getenv("SYNCCF_STATE") && *getenv("SYNCCF_STATE")) state = getenv("SYNCCF_STATE");
    c->state_explicit = state != NULL;
    if (state) snprintf(c->state_dir, sizeof c->state_dir, "%s", state);
    else store_default_dir(c->state_dir, sizeof c->state_dir);
    if (c->config && !state) {
        /* The file may name the state directory. */
        struct config cfg;
        if (cli_config(c, &cfg) != 0) return -1;
        if (cfg.state_dir) snprintf(c->state_dir, sizeof c->state_dir, "%s", cfg.state_dir);
        config_free(&cfg);
    }
    snprintf(c->db_path, sizeof c->db_path, "%s/state.db", c->state_dir);
    return 0;
}

int main(int argc, char **argv)
{
    struct cli c = {0};
    if (cli_common(&c, &argc, argv) != 0) return EXIT_USAGE;
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("synccf %s\n", synccf_version());
        return EXIT_OK;
    }
    if (strcmp(cmd, "receive") == 0) return cmd_receive(&c, argc - 1, argv + 1);
    if (strcmp(cmd, "pull") == 0) return cmd_pull(&c, argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0) return cmd_run(&c, argc - 1, argv + 1);
    if (strcmp(cmd, "config") == 0) return cmd_config(&c, argc - 1, argv + 1);
    if (strcmp(cmd, "tunnel") == 0) return cmd_tunnel(&c, argc - 1, argv + 1);
    if (strcmp(cmd, "poll") == 0) return cmd_poll(&c, argc - 1, argv + 1);
    if (strcmp(cmd, "queue") == 0) return cmd_queue(&c, argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0) return cmd_status(&c, argc - 1, argv + 1);
    if (strcmp(cmd, "events") == 0) return cmd_events(&c, argc - 1, argv + 1);
    if (strcmp(cmd, "replay") == 0) return cmd_replay(&c, argc - 1, argv + 1);
    if (strcmp(cmd, "cloudflare") == 0) return cmd_cloudflare(&c, argc - 1, argv + 1);
    fprintf(stderr, "synccf: unknown command '%s'\n\n%s", cmd, usage);
    return EXIT_USAGE;
}
