#!/bin/sh
# Prints what the man pages must name, one per line, as "KIND NAME":
#   option --x    every option the command accepts: from `synccf help`, each
#                 command's --help, the option strings in src/*.c (the
#                 subcommands' own options), and the flag of every setting
#                 in lib/config.c
#   setting k     every setting the flags and variables reach (config.c's
#                 list of settable keys; the page names its last part)
#   env VAR       every variable read: SYNCCF_<KEY> of each setting, and each
#                 SYNCCF_* / CLOUDFLARE_* name in the source
# Usage: tests/install/options.sh SYNCCF_BINARY   (from the tree root)
set -eu
bin=$1

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
{
    "$bin" help | grep -oE -- '--[a-z][a-z0-9-]*'
    # Each command's own help, where it has one (a scratch store and home:
    # a command that does not know --help must not touch the real ones).
    for cmd in $("$bin" help | sed -n '/^commands:/,/^$/p' | awk '$1 == "synccf" { print $2 }' | sort -u); do
        HOME=$scratch SYNCCF_STATE=$scratch timeout 5 "$bin" "$cmd" --help </dev/null 2>&1 | grep -oE -- '--[a-z][a-z0-9-]*' || true
    done
    grep -ohE '"--[a-z][a-z0-9-]*' src/*.c | tr -d '"'
} | sort -u | sed 's/^/option /'

# The settable keys: the list that config_flag_key and config_env_all walk.
keys=$(sed -n '/^static const char \*const settable\[\]/,/NULL};/p' lib/config.c | grep -oE '"[a-z_.]+"' | tr -d '"')
[ "$(echo "$keys" | wc -w)" -ge 40 ] || { echo "options.sh: cannot read the settable keys from lib/config.c" >&2; exit 1; }
for k in $keys; do
    echo "setting ${k##*.}"
    echo "env SYNCCF_$(echo "$k" | tr 'a-z.' 'A-Z_')"
    case $k in
        *_secret|*_token) ;; # no flag: a secret is never on the command line
        *) echo "option --$(echo "$k" | tr '._' '--')" ;;
    esac
done | sort -u

grep -ohE '"(SYNCCF|CLOUDFLARE)_[A-Z_]+"' src/*.c lib/*.c | tr -d '"' | sort -u | sed 's/^/env /'
