/* envfile.h -- `--env-file FILE`: KEY=value files as systemd's
 * EnvironmentFile= and docker's --env-file write them, and the xplat names
 * read as fallbacks for synccf's own variables. */
#ifndef SYNCCF_ENVFILE_H
#define SYNCCF_ENVFILE_H

#include <stddef.h>

/* Called for each assignment; return non-zero to stop. */
typedef int (*envfile_fn)(const char *key, const char *value, void *arg);

/* Parses text (len bytes, need not be NUL-terminated): one KEY=value a line,
 * optional "export ", '#' comments, values bare, 'single-quoted' (literal)
 * or "double-quoted" (\" \\ \n \t \$ escapes; may span lines). Keys are
 * [A-Za-z_][A-Za-z0-9_]*, values at most 64 KiB. -1 with "line N: why". */
int envfile_parse(const char *text, size_t len, envfile_fn fn, void *arg, char *err, size_t errlen);

/* Reads the file (at most 1 MiB) and sets each variable not already in the
 * environment: what the process was started with wins over the file. */
int envfile_load(const char *path, char *err, size_t errlen);

/* Sets synccf's variables from xplat's where synccf's own are unset
 * (CF_API_TOKEN -> CLOUDFLARE_API_TOKEN, ...). Call once, before the
 * configuration is read. */
void env_xplat_fallbacks(void);

/* The fallbacks taken by env_xplat_fallbacks, for `config check`:
 * pairs {synccf's name, the name it was read from}, NULL-terminated. */
const char *const *env_fallbacks_used(void);

#endif
