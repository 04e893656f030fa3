/* cli.h -- what the synccf command's subcommands share. */
#ifndef SYNCCF_CLI_H
#define SYNCCF_CLI_H

#include <stddef.h>
#include <stdio.h>

/* Exit statuses (man/synccf.1, EXIT STATUS): success, runtime failure, usage
 * or configuration. */
#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* Options every subcommand accepts, resolved flag > environment > default. */
struct cli {
    char state_dir[4096];
    char db_path[4200];
    const char *config;  /* --config FILE or SYNCCF_CONFIG */
    int json;            /* --json output */
};

/* Takes the common options out of argv (compacting it); -1 on a bad one. */
int cli_common(struct cli *c, int *argc, char **argv);
/* The defaults, then the --config file if one was given; on an error it is
 * printed, cfg is freed and -1 returned. */
struct config;
int cli_config(const struct cli *c, struct config *cfg);
/* cli_config, then the environment over it (config_env, config_env_all), as
 * `config check` and `cloudflare` see it; on an error it is printed, cfg is
 * freed and -1 returned. */
int cli_config_env(const struct cli *c, struct config *cfg);
/* Value of "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i. NULL
 * when argv[*i] is another option, or is this one without its value (then
 * cli_bad_option says so). */
const char *cli_value(int argc, char **argv, int *i, const char *name);
/* Reports arg as an unknown option of cmd, or as an option without its
 * value; returns EXIT_USAGE. */
int cli_bad_option(const char *cmd, const char *arg);
/* Prints cmd's --help (synopsis and options) from the command table. */
void cli_help(FILE *f, const char *cmd);

int cmd_receive(struct cli *c, int argc, char **argv);
int cmd_pull(struct cli *c, int argc, char **argv);
int cmd_poll(struct cli *c, int argc, char **argv);
int cmd_queue(struct cli *c, int argc, char **argv);
int cmd_run(struct cli *c, int argc, char **argv);
int cmd_config(struct cli *c, int argc, char **argv);
int cmd_tunnel(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_events(struct cli *c, int argc, char **argv);
int cmd_replay(struct cli *c, int argc, char **argv);
int cmd_cloudflare(struct cli *c, int argc, char **argv);

#endif
