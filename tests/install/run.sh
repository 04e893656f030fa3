#!/bin/bash
# `make install` into a scratch DESTDIR, then: every file where the layout
# says and nothing else; the installed binary runs; examples/on_event.c builds
# against the installed library with pkg-config; the man pages render without
# warnings and name every option, setting and variable the code accepts; the
# installed unit passes systemd-analyze verify; the bash completion completes
# subcommands, options and stored event ids; `make uninstall` removes it all.
# Usage: tests/install/run.sh   (after `make`; from anywhere)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
tmp=$(mktemp -d)
daemon=""
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$tmp"' EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}

dest=$tmp/dest
P=/usr/local
make -s install DESTDIR="$dest" BUILD="$BUILD" >/dev/null

# ---- the layout ------------------------------------------------------------
expected="0755 $P/bin/synccf
0644 $P/include/synccf.h
0644 $P/lib/libsynccf.a
0644 $P/lib/pkgconfig/synccf.pc
0644 $P/lib/systemd/system/synccf.service
0644 $P/share/bash-completion/completions/synccf
0644 $P/share/doc/synccf/on_event.c
0644 $P/share/doc/synccf/synccf.yaml
0644 $P/share/man/man1/synccf.1
0644 $P/share/man/man5/synccf.yaml.5"
actual=$(cd "$dest" && find . -type f -printf '%m /%P\n' | sed 's/^\([0-7]\{3\}\) /0\1 /' | sort -k2)
check "make install puts exactly the layout's files, with their modes" [ "$actual" = "$expected" ]
[ "$actual" = "$expected" ] || diff <(echo "$expected") <(echo "$actual") || true
check "the unit's ExecStart is the installed binary" grep -q "^ExecStart=$P/bin/synccf " "$dest$P/lib/systemd/system/synccf.service"
check "nothing of the templates is left unsubstituted" bash -c "! grep -rIn '@[a-z]*@' '$dest'"

# ---- the installed binary ----------------------------------------------------
bin=$dest$P/bin/synccf
check "the installed synccf runs (version)" bash -c "'$bin' version | grep -qx 'synccf $(sed -n 's/^#define SYNCCF_VERSION "\(.*\)"/\1/p' include/synccf.h)'"
check "the installed example config passes config check" bash -c "HOME='$tmp' '$bin' --config '$dest$P/share/doc/synccf/synccf.yaml' config check | head -1 | grep -qx 'configuration ok'"

# ---- pkg-config: the example builds against the installed library only -----
export PKG_CONFIG_PATH=$dest$P/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs synccf)
check "pkg-config points into the install (sysroot): $flags" bash -c "case '$flags' in *'-I$dest$P/include'*'-L$dest$P/lib'*) exit 0;; *) exit 1;; esac"
check "pkg-config --modversion is the header's version" [ "$(pkg-config --modversion synccf)" = "$(sed -n 's/^#define SYNCCF_VERSION "\(.*\)"/\1/p' include/synccf.h)" ]
# Built from the installed copy, in a directory with no synccf.h of the tree.
# shellcheck disable=SC2086
check "examples/on_event.c builds with cc \$(pkg-config --cflags --libs synccf)" \
    cc -o "$tmp/on_event" "$dest$P/share/doc/synccf/on_event.c" $flags
unset PKG_CONFIG_SYSROOT_DIR
flags2=$(pkg-config --define-prefix --cflags --libs synccf 2>/dev/null || true)
# shellcheck disable=SC2086
check "... and with pkg-config --define-prefix (a relocated prefix)" \
    bash -c "[ -n '$flags2' ] && case '$flags2' in *'$dest$P/lib'*) cc -o '$tmp/on_event2' '$dest$P/share/doc/synccf/on_event.c' $flags2;; *) exit 1;; esac"
unset PKG_CONFIG_PATH
if [ -x "$tmp/on_event" ]; then
    "$tmp/on_event" --state "$tmp/ev" --listen 127.0.0.1:0 >"$tmp/on_event.log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do [ -f "$tmp/ev/state.db" ] && break; sleep 0.1; done
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"; rc=$?
    check "the example built against the install opens its store and stops on SIGTERM (exit $rc)" bash -c "[ -f '$tmp/ev/state.db' ] && [ $rc -eq 0 ]"
fi

# ---- man pages -----------------------------------------------------------------
for page in man1/synccf.1 man5/synccf.yaml.5; do
    f=$dest$P/share/man/$page
    warn=$(MANWIDTH=1000 man --warnings -E ascii -l "$f" 2>&1 >/dev/null)
    check "man --warnings renders $page without a warning${warn:+: $warn}" [ -z "$warn" ]
    if command -v mandoc >/dev/null; then
        lint=$(mandoc -T lint -W warning "$f" 2>&1)
        check "mandoc -T lint finds no warning in $page${lint:+: $lint}" [ -z "$lint" ]
    fi
done
MANWIDTH=1000 man -E ascii -l "$dest$P/share/man/man1/synccf.1" 2>/dev/null >"$tmp/synccf.1.txt"
MANWIDTH=1000 man -E ascii -l "$dest$P/share/man/man5/synccf.yaml.5" 2>/dev/null >"$tmp/synccf.yaml.5.txt"
tests/install/options.sh "$bin" >"$tmp/names"
check "options.sh found the options, settings and variables ($(wc -l <"$tmp/names"))" [ "$(wc -l <"$tmp/names")" -ge 100 ]
missing=""
while read -r kind name; do
    # Options in synccf(1); settings in synccf.yaml(5); variables in either
    # (synccf(1)'s ENVIRONMENT has those that are no setting's).
    case $kind in
        option) pages=$tmp/synccf.1.txt ;;
        setting) pages=$tmp/synccf.yaml.5.txt ;;
        *) pages="$tmp/synccf.1.txt $tmp/synccf.yaml.5.txt" ;;
    esac
    # shellcheck disable=SC2086
    cat $pages | grep -qE -- "(^|[^A-Za-z0-9_-])$name([^A-Za-z0-9_-]|$)" || missing="$missing $kind:$name"
done <"$tmp/names"
check "synccf(1) names every option, synccf.yaml(5) every setting and variable${missing:+ (missing:$missing)}" [ -z "$missing" ]
missing=""
for cmd in $("$bin" help | sed -n '/^commands:/,/^$/p' | awk '$1 == "synccf" { print $2 }' | sort -u); do
    grep -qE "^     $cmd( |$)" "$tmp/synccf.1.txt" || missing="$missing $cmd"
done
check "synccf(1) has an entry for every command of synccf help${missing:+ (missing:$missing)}" [ -z "$missing" ]

# ---- the unit ------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
    # verify wants ExecStart's binary to exist: point it at the installed one.
    sed "s|^ExecStart=$P/bin/synccf|ExecStart=$bin|" "$dest$P/lib/systemd/system/synccf.service" >"$tmp/synccf.service"
    out=$(systemd-analyze verify --man=no "$tmp/synccf.service" 2>&1) && rc=0 || rc=$?
    check "systemd-analyze verify accepts the installed unit${out:+: $out}" [ "$rc-$out" = "0-" ]
fi

# ---- bash completion --------------------------------------------------------------
if [ -f /usr/share/bash-completion/bash_completion ]; then
    # A store with two events in it, for the ids.
    "$bin" --state "$tmp/st" receive --listen 127.0.0.1:0 >"$tmp/recv.log" 2>&1 &
    daemon=$!
    port=""
    for _ in $(seq 50); do
        port=$(sed -n 's/.*listening.*port=\([0-9]*\).*/\1/p' "$tmp/recv.log" | head -1)
        [ -n "$port" ] && break; sleep 0.1
    done
    python3 -c '
import json, sys, urllib.request
for i in ("build-1", "build-2"):
    urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%s/hooks/generic/deploy" % sys.argv[1],
        json.dumps({"id": i, "subject": "docs"}).encode(), {"content-type": "application/json"}), timeout=10)
' "$port" || true
    kill -TERM "$daemon"; wait "$daemon" || true; daemon=""
    ids=$("$bin" --state "$tmp/st" events list | awk 'NR > 1 { print $4 }' | sort | tr '\n' ' ')
    complete_words() { # complete_words WORD... : COMPREPLY for the last word, sorted
        PATH=$dest$P/bin:$PATH bash -c '
            source /usr/share/bash-completion/bash_completion
            source "$0"
            COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
            _synccf synccf "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' "$dest$P/share/bash-completion/completions/synccf" "$@"
    }
    got=$(complete_words synccf "")
    check "completion: the commands ($got)" [ "$got" = "$(printf '%s\n' cloudflare config events help poll pull queue receive replay run status tunnel version --config --env-file --help --json --log-format --log-level --state --version | sort | tr '\n' ' ')" ]
    got=$(complete_words synccf events "")
    check "completion: events subcommands ($got)" [ "$got" = "list show tail " ]
    got=$(complete_words synccf receive --max-c)
    check "completion: daemon options ($got)" [ "$got" = "--max-connections --max-connections-per-ip " ]
    got=$(complete_words synccf run --mode "")
    check "completion: --mode values ($got)" [ "$got" = "hybrid poll queue tunnel worker " ]
    check "the store has the two events for the id test ($ids)" [ "$(echo "$ids" | wc -w)" -eq 2 ]
    got=$(complete_words synccf --state "$tmp/st" events show "")
    check "completion: events show completes stored ids ($got)" [ "$got" = "$ids" ]
    got=$(complete_words synccf --state "$tmp/st" replay "")
    check "completion: replay completes stored ids" [ "$got" = "$ids" ]
    # Every option of the daemon commands that the code accepts is offered.
    offered="$(complete_words synccf run --) $(complete_words synccf cloudflare setup --)"
    miss=""
    for o in $(grep '^option' "$tmp/names" | awk '{ print $2 }'); do
        case " $offered " in *" $o "*) ;; *) case $o in --type|--since|--limit|--lines) ;; *) miss="$miss $o" ;; esac ;; esac
    done
    check "completion offers every option of the daemon commands${miss:+ (missing:$miss)}" [ -z "$miss" ]
fi

# ---- uninstall -------------------------------------------------------------------
make -s uninstall DESTDIR="$dest" >/dev/null
left=$(find "$dest" -type f)
check "make uninstall removes every installed file${left:+ (left: $left)}" [ -z "$left" ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
