#!/usr/bin/env bash
# Every benchmark, one after the other, into bench/results/README.md:
#   bench/run.sh          (about 4 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/results
mkdir -p "$OUT"
scripts/deps.sh wrk webhook nginx-light >/dev/null
make -s all >/dev/null
(cd worker && [ -d node_modules/miniflare ] || npm ci --no-audit --no-fund --loglevel=error)
{
    echo "# synccf benchmarks"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r). Command: \`bench/run.sh\`."
    echo
    echo "## Ingest (signed ~1 KiB events over loopback, wrk)"
    echo
    DURATION=${DURATION:-10} bench/ingest.sh 2>/dev/null | sed -n '/^| server/,$p'
    echo
    echo "## End to end"
    echo
    echo "| path | samples | p50 ms | p99 ms |"
    echo "|---|---:|---:|---:|"
    N=${N:-300} bench/latency.sh 2>/dev/null | grep '^| synccf\|^| adnanh\|^| floor' | awk -F'|' '{ printf "| POST →%s|%s|%s|%s|\n", $2, $3, $4, $5 }'
    node bench/e2e.mjs "${N:-200}"
    echo
    echo "## Logpush batch"
    echo
    bench/logpush.sh
    echo
    echo "## Outbound ways in"
    echo
    node bench/sources.mjs "${EVENTS:-100000}"
} | tee "$OUT/README.md"
