#!/bin/sh
# Installs what building and testing synccf needs on Debian 12, and nothing
# that is already there. Safe to run again.
set -eu

PKGS="gcc make pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev libssl-dev libsystemd-dev
zlib1g-dev libyaml-dev libcmocka-dev clang chromium sqlite3
prometheus lintian debhelper dpkg-dev fakeroot man-db groff-base bash-completion systemd mandoc strace adduser $*"
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
command -v python3 >/dev/null 2>&1 || PKGS="$PKGS python3"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
