#!/bin/bash
# The Debian package: builds it with dpkg-buildpackage in a copy of the tree
# (the tree stays clean), runs lintian (no error, no warning), installs it
# for real with dpkg -i (as root: CI's machine is disposable), checks the
# system user, the state directory, the conffile, the enabled-but-not-started
# service, runs the installed synccf as the service would, builds
# examples/on_event.c against libsynccf-dev with pkg-config, then purges both
# packages and checks that nothing is left but the system user (kept on
# purge, as Debian does; see debian/synccf.README.Debian).
# Usage: tests/install/deb.sh   (as root, from anywhere)
set -eu
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "tests/install/deb.sh installs a package: run it as root"; exit 1; }
tmp=$(mktemp -d)
cleanup() {
    dpkg --purge synccf libsynccf-dev >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
arch=$(dpkg --print-architecture)
before=$(git status --porcelain --ignored 2>/dev/null || true)

# ---- build, in a copy of the tree's files (no build output, no node_modules)
src=$tmp/synccf-$version
mkdir -p "$src"
git ls-files -co --exclude-standard -z | grep -zv '^worker/\|^bench/\|^tests/' | xargs -0 cp --parents -t "$src"
if (cd "$src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
    ok "dpkg-buildpackage -us -uc -b builds"
else
    not_ok "dpkg-buildpackage -us -uc -b builds"; tail -40 "$tmp/build.log"
fi
check "the tree is as it was (the build used a copy)" [ "$(git status --porcelain --ignored 2>/dev/null || true)" = "$before" ]
deb=$tmp/synccf_${version}_$arch.deb
dev=$tmp/libsynccf-dev_${version}_$arch.deb
check "both packages were built" test -f "$deb" -a -f "$dev"

# ---- lintian: no error, no warning (overrides, if any, say why in a comment)
lintian --fail-on error,warning "$tmp/synccf_${version}_$arch.changes" >"$tmp/lintian.log" 2>&1 && rc=0 || rc=$?
grep -E '^[EW]: ' "$tmp/lintian.log" || true
check "lintian reports no error and no warning (exit $rc)" bash -c "[ $rc -eq 0 ] && ! grep -qE '^[EW]: ' '$tmp/lintian.log'"

# ---- what the package holds
contents=$(dpkg-deb -c "$deb" | awk '{ print $1, $6 }')
for f in ./usr/bin/synccf ./usr/share/man/man1/synccf.1.gz ./usr/share/man/man5/synccf.yaml.5.gz \
         ./usr/share/bash-completion/completions/synccf ./lib/systemd/system/synccf.service \
         ./etc/synccf/synccf.yaml ./usr/share/doc/synccf/synccf.yaml; do
    check "synccf.deb has $f" grep -q " $f\$" <<<"$contents"
done
devc=$(dpkg-deb -c "$dev" | awk '{ print $6 }')
for f in ./usr/include/synccf.h "./usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libsynccf.a" \
         "./usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/pkgconfig/synccf.pc"; do
    check "libsynccf-dev.deb has $f" grep -qx "$f" <<<"$devc"
done
unit=$(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./lib/systemd/system/synccf.service)
for k in Type=notify ProtectSystem=strict ReadWritePaths=/var/lib/synccf NoNewPrivileges=yes PrivateTmp=yes \
         SystemCallFilter=@system-service User=synccf ExecStart=/usr/bin/synccf; do
    check "the unit has $k" grep -q "^$k" <<<"$unit"
done

# ---- install
dpkg --purge synccf libsynccf-dev >/dev/null 2>&1 || true
dpkg -i "$deb" "$dev" >"$tmp/install.log" 2>&1 && rc=0 || { rc=$?; cat "$tmp/install.log"; }
check "dpkg -i installs both" [ "$rc" -eq 0 ]
check "the system user synccf exists, a system uid without a login shell" \
    bash -c 'u=$(getent passwd synccf) && uid=$(echo "$u" | cut -d: -f3) && [ "$uid" -lt 1000 ] && case "$u" in *nologin|*false) ;; *) exit 1;; esac'
check "/var/lib/synccf is 0700 synccf:synccf" [ "$(stat -c '%a %U:%G' /var/lib/synccf 2>/dev/null)" = "700 synccf:synccf" ]
check "/etc/synccf/synccf.yaml is a conffile" grep -qx ' /etc/synccf/synccf.yaml [0-9a-f]*' <<<"$(dpkg-query -W -f='${Conffiles}\n' synccf)"
check "the service is enabled" test -L /etc/systemd/system/multi-user.target.wants/synccf.service
check "synccf version runs as installed" bash -c "synccf version | grep -qx 'synccf $version'"
check "config check passes as the service user on the installed config" \
    bash -c "runuser -u synccf -- synccf --config /etc/synccf/synccf.yaml --state /var/lib/synccf config check | head -1 | grep -qx 'configuration ok'"
out=$(systemd-analyze verify --man=no /lib/systemd/system/synccf.service 2>&1) && rc=0 || rc=$?
check "systemd-analyze verify accepts the installed unit${out:+: $out}" [ "$rc-$out" = "0-" ]
check "man synccf and man synccf.yaml find the installed pages" bash -c 'man -w synccf >/dev/null && man -w 5 synccf.yaml >/dev/null'
# The daemon as the service runs it: its store in the state directory.
: >"$tmp/d.log"
setpriv --reuid synccf --regid synccf --init-groups synccf --config /etc/synccf/synccf.yaml --state /var/lib/synccf receive --listen 127.0.0.1:0 >"$tmp/d.log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q listening "$tmp/d.log" && break; sleep 0.1; done
check "the daemon started as synccf on /var/lib/synccf" grep -q listening "$tmp/d.log"
kill -TERM "$pid"; wait "$pid" && rc=0 || rc=$?
check "... and stops cleanly on SIGTERM (exit $rc)" [ "$rc" -eq 0 ]
check "its store is 0600 synccf" [ "$(stat -c '%a %U' /var/lib/synccf/state.db 2>/dev/null)" = "600 synccf" ]
# The library, built as README's Install section says.
# shellcheck disable=SC2046
check "examples/on_event.c builds with cc \$(pkg-config --cflags --libs synccf)" \
    cc -o "$tmp/on_event" examples/on_event.c $(pkg-config --cflags --libs synccf)
check "the build used the installed header" bash -c "cc -M examples/on_event.c \$(pkg-config --cflags synccf) | grep -q /usr/include/synccf.h"

# ---- purge
dpkg --purge synccf libsynccf-dev >"$tmp/purge.log" 2>&1 && rc=0 || rc=$?
check "dpkg --purge removes both" [ "$rc" -eq 0 ]
left=$(ls -d /var/lib/synccf /etc/synccf /usr/bin/synccf /lib/systemd/system/synccf.service \
    /etc/systemd/system/multi-user.target.wants/synccf.service /usr/include/synccf.h /usr/share/doc/synccf 2>/dev/null || true)
check "nothing is left behind${left:+ (left: $left)}" [ -z "$left" ]
check "dpkg knows nothing of them" bash -c '! dpkg-query -W synccf libsynccf-dev >/dev/null 2>&1'
check "the system user synccf is kept (Debian's practice; README.Debian)" getent passwd synccf >/dev/null

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
