#!/bin/sh
# Prints what the man pages must name, one per line, as "KIND NAME":
#   option --x    every option the command accepts: from `synccf help`, each
#                 command's --help, the option strings in src/*.c (the
#                 subcommands' own options), and the flag of every setting
#                 in lib/config.c
#   setting k     every setting the flags and variables reach (config.c's
#                 settings table; the page names its last part)
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

# The settable keys: lib/config.c's settings table, one entry a line; a
# secret (SET_SECRET) has no flag but a <key>_file setting that has one.
table=$(sed -n '/^const struct setting config_settings\[\]/,/^};/p' lib/config.c | grep -E '^ *\{"[a-z_.]+"')
keys=$(echo "$table" | grep -oE '^ *\{"[a-z_.]+"' | grep -oE '[a-z_.]+')
secrets=$(echo "$table" | grep SET_SECRET | grep -oE '^ *\{"[a-z_.]+"' | grep -oE '[a-z_.]+')
[ "$(echo "$keys" | wc -w)" -ge 40 ] || { echo "options.sh: cannot read the settings table from lib/config.c" >&2; exit 1; }
{
    for k in $keys; do
        echo "setting ${k##*.}"
        echo "env SYNCCF_$(echo "$k" | tr 'a-z.' 'A-Z_')"
        case " $(echo $secrets) " in
            *" $k "*) ;; # no flag: a secret is never on the command line
            *) echo "option --$(echo "$k" | tr '._' '--')" ;;
        esac
    done
    for k in $secrets; do
        echo "setting ${k}_file"
        echo "env SYNCCF_$(echo "${k}_file" | tr 'a-z.' 'A-Z_')"
        echo "option --$(echo "${k}_file" | tr '._' '--')"
    done
} | sort -u

grep -ohE '"(SYNCCF|CLOUDFLARE)_[A-Z_]+"' src/*.c lib/*.c | tr -d '"' | sort -u | sed 's/^/env /'
