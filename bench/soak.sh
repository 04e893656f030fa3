#!/usr/bin/env bash
# Soak: a steady mixed load with retention active (bench/soak.mjs), reported
# per minute (RSS, store size, push p50/p99, errors), then an end check that
# every acknowledged event is stored or was pruned by a rule naming it.
#   SOAK_MINUTES=3 bench/soak.sh      (default 30; see bench/soak.mjs for the rates)
set -euo pipefail
cd "$(dirname "$0")/.."
make -s all >/dev/null
exec node bench/soak.mjs
