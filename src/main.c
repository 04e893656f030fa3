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

/* Every subcommand: its dispatch, its line in `synccf help` and its --help.
 * This table is the one place the command line is described; README.md's
 * usage block, the man page and shell completion are checked against it.
 * A new subcommand is one entry here. */
#define DAEMON_LIMITS                                                                                                   \
    "  --max-body BYTES, --max-logpush-body BYTES, --max-decompressed BYTES, --max-line BYTES\n"                    \
    "  --max-connections N, --max-connections-per-ip N, --timeout SECONDS, --threads N\n"                            \
    "                          receiver limits (see README.md, Configuration)\n"
#define DAEMON_COMMON                                                                                                   \
    "  --listen HOST:PORT      where the receiver listens (127.0.0.1:9091; port 0 picks one)\n"                      \
    "  --concurrency N         handler runs at once (4)\n"                                                             \
    "  --status-page on|off    the status page at GET / for loopback clients (on)\n"                                 \
    "One daemon runs per state directory: a second one exits 1 naming the first's pid.\n"

static const struct command {
    const char *name;
    int (*run)(struct cli *c, int argc, char **argv);
    const char *synopsis; /* after "synccf "; one line per form */
    const char *summary;  /* one line, for `synccf help` */
    const char *options;  /* the rest of its --help */
    int settings;         /* 1: its --help also lists every setting's flag */
} commands[] = {
    {"run", cmd_run, "run [--mode " SYNCCF_MODE_LIST "] [OPTIONS]",
     "everything the config's mode asks for, plus the receiver",
     "  --mode MODE             worker (follow the Worker), queue, tunnel (the receiver only), poll, or\n"
     "                          hybrid; by default worker when worker_url is set, else tunnel\n"
     "  --worker-url URL, --heartbeat SECONDS, --queue-id ID, --account-id ID, --api-base URL,\n"
     "  --interval DURATION, --overlap DURATION, --pages-project NAME, --filter [DATASET.]FIELD=GLOB\n"
     "                          as for pull, queue, poll and receive\n" DAEMON_COMMON DAEMON_LIMITS
     "SIGHUP reloads the handler rules; SIGTERM drains and exits 0.\n", 1},
    {"receive", cmd_receive, "receive [--listen HOST:PORT] [--filter [DATASET.]FIELD=GLOB]... [OPTIONS]",
     "accept Cloudflare events over HTTP (loopback :9091 by default)",
     "  --filter [DATASET.]FIELD=GLOB\n"
     "                          keep only the Logpush records that match (repeatable)\n" DAEMON_COMMON DAEMON_LIMITS, 1},
    {"tunnel", cmd_tunnel, "tunnel [--cloudflared PATH] [OPTIONS]",
     "the receiver plus cloudflared, supervised; prints the public URL",
     "  --cloudflared PATH      the cloudflared binary (found on PATH by default); a named tunnel\n"
     "                          with tunnel_token in the config, else a quick tunnel\n" DAEMON_COMMON DAEMON_LIMITS, 1},
    {"pull", cmd_pull, "pull --worker-url URL [--heartbeat SECONDS] [OPTIONS]",
     "follow the synccf Worker's event stream (token: SYNCCF_PULL_TOKEN)",
     "  --worker-url URL        the Worker (also SYNCCF_WORKER_URL or worker_url)\n"
     "  --heartbeat SECONDS     the stream's heartbeat; three missed ones drop it (15)\n" DAEMON_COMMON, 1},
    {"queue", cmd_queue, "queue [--queue-id ID] [--account-id ID] [--api-base URL] [OPTIONS]",
     "consume a Cloudflare Queue (CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN)",
     "  --queue-id ID           the Queue (also SYNCCF_QUEUE_ID or queue_id)\n"
     "  --account-id ID         the account (also CLOUDFLARE_ACCOUNT_ID)\n"
     "  --api-base URL          the API's address (https://api.cloudflare.com)\n" DAEMON_COMMON, 1},
    {"poll", cmd_poll,
     "poll [--interval 5m] [--overlap 10m] [--account-id ID] [--api-base URL] [--pages-project NAME]... [OPTIONS]",
     "read the Audit Logs API (CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN)",
     "  --interval DURATION     time between polls (5m)\n"
     "  --overlap DURATION      how far back each poll reaches again (10m)\n"
     "  --account-id ID         the account (also CLOUDFLARE_ACCOUNT_ID)\n"
     "  --api-base URL          the API's address (https://api.cloudflare.com)\n"
     "  --pages-project NAME    also poll this Pages project's deployments (repeatable)\n" DAEMON_COMMON, 1},
    {"status", cmd_status, "status [--json]",
     "what the store holds: events by source and type, sources, duplicates, rejections, handler runs",
     "  --json                  the same as one JSON object\n"
     "Reads the store only; works beside a running daemon.\n", 0},
    {"events", cmd_events, "events list [--type GLOB] [--since TIME] [--limit N] [--json]\n"
                           "events show ID [--json]\n"
                           "events tail [--lines N] [--json]",
     "list stored events, show one with its handler runs, or follow new ones",
     "  list                    the newest events, oldest first\n"
     "    --type GLOB           only events whose type matches, e.g. 'com.cloudflare.pages.*'\n"
     "    --since TIME          only events received at or after an RFC 3339 time\n"
     "    --limit N             at most N events (20)\n"
     "  show ID                 one stored event and its handler runs\n"
     "  tail                    the last events, then new events and handler outcomes as they happen\n"
     "    --lines N             how many earlier events to show first (10)\n"
     "  --json                  one JSON object per line (show: one object)\n"
     "Reads the store only; works beside a running daemon.\n", 0},
    {"replay", cmd_replay, "replay ID", "run an event's handlers again",
     "With a daemon running on the state directory, queues the event's handler runs for its\n"
     "dispatcher; with none, takes the state directory and runs them itself, once each (a run\n"
     "that fails stays pending for the daemon's retries). Exits 1 when a run failed.\n", 0},
    {"config", cmd_config, "config check",
     "validate the configuration and print it (secrets redacted)",
     "Loads the file and the environment as the daemon would; reports the first error with its\n"
     "file, line and key (exit 2), or prints the effective settings as JSON.\n", 0},
    {"cloudflare", cmd_cloudflare, "cloudflare setup [--dry-run] [--api-base URL]\n"
                                   "cloudflare check [--json] [--api-base URL]\n"
                                   "cloudflare teardown [--dry-run] [--api-base URL]",
     "wire Cloudflare to send what the handlers need, say what drifted, or undo it (docs/cloudflare.md)",
     "  setup                   create what is missing, update what drifted (every name starts with synccf)\n"
     "  check                   one row per wired object: ok, missing, drifted: FIELDS, failing: WHY;\n"
     "                          exit 1 unless all are ok\n"
     "  teardown                remove every object setup created\n"
     "  --dry-run               print each changing call (secrets redacted) and make none\n"
     "  --json                  check's rows as JSON\n"
     "  --api-base URL          the API's address (https://api.cloudflare.com)\n"
     "Needs CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID (or xplat's CF_API_TOKEN, CF_ACCOUNT_ID).\n", 0},
    {"version", NULL, "version", "print the version (also --version)", "", 0},
    {"help", NULL, "help [COMMAND]", "list the commands, or one command's options (also COMMAND --help)", "", 0},
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

static const char global_usage[] =
    "usage: synccf [--config FILE] [--env-file FILE] [--state DIR] [--log-format logfmt|json] [--log-level LEVEL] COMMAND [ARGS]\n";
static const char global_options[] =
    "common options (before or after COMMAND):\n"
    "  --config FILE           the config file (SYNCCF_CONFIG; synccf.yaml, or xplat.yaml's sync.cloudflare)\n"
    "  --env-file FILE         KEY=value lines read into the environment first (the process\n"
    "                          environment wins; xplat's .env names are understood)\n"
    "  --state DIR             the state directory (SYNCCF_STATE, the file's state; ~/.xplat/cache/synccf)\n"
    "  --log-format logfmt|json, --log-level debug|info|warn|error\n"
    "exit status: 0 success, 1 runtime failure, 2 usage or configuration error\n";

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

/* Each form of c's synopsis on its own line, after lead (and indent for the
 * ones after the first). */
static void print_synopsis(FILE *f, const struct command *c, const char *lead, const char *indent)
{
    const char *p = c->synopsis;
    for (int first = 1; *p; first = 0) {
        size_t n = strcspn(p, "\n");
        fprintf(f, "%ssynccf %.*s\n", first ? lead : indent, (int)n, p);
        p += n + (p[n] == '\n');
    }
}

static void print_usage(FILE *f)
{
    fputs(global_usage, f);
    fputs("\ncommands:\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        print_synopsis(f, &commands[i], "  ", "  ");
        fprintf(f, "      %s\n", commands[i].summary);
    }
    fputc('\n', f);
    fputs(global_options, f);
}

/* What a setting's flag takes, by its type. */
static const char *setting_arg(const struct setting *s)
{
    switch (s->type) {
    case SET_PATH: return "PATH";
    case SET_URL: return "URL";
    case SET_BOOL: return "true|false";
    case SET_UINT:
    case SET_LIMIT_COUNT: return "N";
    case SET_MS:
    case SET_SECONDS:
    case SET_LIMIT_MS: return "DURATION";
    case SET_SIZE:
    case SET_LIMIT_BYTES: return "SIZE";
    case SET_MODE: return "MODE";
    default: return "VALUE";
    }
}

/* Every setting of the config file as its flag, from the settings table
 * (lib/config.c): a setting added there is listed here without a word
 * more. Secrets have no flag that holds them, only a file that does. */
static void print_settings(FILE *f)
{
    fputs("\nsettings (each also a key of the config file and a SYNCCF_<KEY> variable; a flag wins):\n", f);
    for (const struct setting *s = config_settings; s->key; s++) {
        char flag[96];
        if (s->type == SET_SECRET) {
            char key[80];
            snprintf(key, sizeof key, "%s_file", s->key);
            if (!config_flag_name(key, flag, sizeof flag)) continue;
            fprintf(f, "  %s PATH\n", flag);
        } else if (config_flag_name(s->key, flag, sizeof flag)) {
            fprintf(f, "  %s %s%s%s%s\n", flag, setting_arg(s), s->def ? " (" : "", s->def ? s->def : "",
                    s->def ? ")" : "");
        }
    }
}

void cli_help(FILE *f, const char *name)
{
    const struct command *c = find_command(name);
    if (!c) return;
    print_synopsis(f, c, "usage: ", "       ");
    fprintf(f, "\n%s\n", c->summary);
    if (*c->options) fprintf(f, "\n%s", c->options);
    if (c->settings) print_settings(f);
    fputc('\n', f);
    fputs(global_options, f);
}

/* The option whose value was missing at the last cli_value, for the error
 * (a copy: the caller's name may be a buffer of its own). */
static char missing_value[128];

int cli_bad_option(const char *cmd, const char *arg)
{
    if (*missing_value && strcmp(arg, missing_value) == 0) fprintf(stderr, "synccf %s: %s needs a value\n", cmd, arg);
    else fprintf(stderr, "synccf %s: unknown option '%s' (synccf %s --help lists them)\n", cmd, arg, cmd);
    return EXIT_USAGE;
}

const char *cli_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0') return NULL;
    /* A following option is not this one's value: `--listen --json` is a
     * forgotten value, not a listen address. */
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0) {
        snprintf(missing_value, sizeof missing_value, "%s", name);
        return NULL;
    }
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

int cli_config_env(const struct cli *c, struct config *cfg)
{
    char err[512];
    if (cli_config(c, cfg) != 0) return -1;
    config_env(cfg);
    if (config_env_all(cfg, err, sizeof err) != 0) {
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
        else if (*missing_value) {
            fprintf(stderr, "synccf: %s needs a value\n", missing_value);
            return -1;
        } else argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    enum log_level lvl;
    if (log_level_parse(level, &lvl) != 0 || (strcmp(fmt, "logfmt") != 0 && strcmp(fmt, "json") != 0)) {
        fprintf(stderr, "synccf: --log-format is logfmt or json; --log-level is debug, info, warn or error\n");
        return -1;
    }
    log_setup(lvl, strcmp(fmt, "json") == 0);
    char err[512];
    if (config_state_dir(state, c->config, c->state_dir, sizeof c->state_dir, err, sizeof err) < 0) {
        fprintf(stderr, "synccf: %s\n", err);
        return -1;
    }
    snprintf(c->db_path, sizeof c->db_path, "%s/state.db", c->state_dir);
    return 0;
}

/* Is argv[*i] one of cli_common's options? Steps *i over its value. */
static int global_option(int argc, char **argv, int *i)
{
    static const char *const with_value[] = {"--env-file", "--state", "--config", "--log-format", "--log-level"};
    const char *a = argv[*i];
    if (strcmp(a, "--json") == 0) return 1;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) {
        size_t n = strlen(with_value[k]);
        if (strncmp(a, with_value[k], n) != 0) continue;
        if (a[n] == '=') return 1;
        if (a[n] != '\0') continue;
        if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) ++*i;
        return 1;
    }
    return 0;
}

/* help, --help, -h, version, --version and COMMAND --help need nothing
 * loaded, so they are answered before cli_common reads --env-file and the
 * configuration: a broken file must not hide the help that explains it.
 * Returns the exit code, or -1 when the command line asks for something else. */
static int help_or_version(int argc, char **argv)
{
    const char *cmd = NULL, *next = NULL;
    int help_after = 0;
    for (int i = 1; i < argc; i++) {
        if (global_option(argc, argv, &i)) continue;
        if (!cmd) cmd = argv[i];
        else {
            if (!next) next = argv[i];
            if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) help_after = 1;
        }
    }
    if (!cmd) return -1;
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        if (strcmp(cmd, "help") == 0 && next) {
            if (!find_command(next)) {
                fprintf(stderr, "synccf help: unknown command '%s'\n", next);
                return EXIT_USAGE;
            }
            cli_help(stdout, next);
        } else {
            print_usage(stdout);
        }
        return EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("synccf %s\n", synccf_version());
        return EXIT_OK;
    }
    /* --help anywhere after the command wins, before anything is opened:
     * `synccf replay --help` must not look for an event named --help. */
    const struct command *k = find_command(cmd);
    if (k && k->run && help_after) {
        cli_help(stdout, cmd);
        return EXIT_OK;
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct cli c = {0};
    int early = help_or_version(argc, argv);
    if (early >= 0) return early;
    if (cli_common(&c, &argc, argv) != 0) return EXIT_USAGE;
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (cmd[0] == '-') {
        fprintf(stderr, "synccf: unknown option '%s'\n\n", cmd);
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const struct command *k = find_command(cmd);
    if (!k || !k->run) {
        fprintf(stderr, "synccf: unknown command '%s'\n\n", cmd);
        print_usage(stderr);
        return EXIT_USAGE;
    }
    return k->run(&c, argc - 1, argv + 1);
}
