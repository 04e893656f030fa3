#!/usr/bin/env bash
# End-to-end latency from POST to go-task cache invalidation (p50/p99),
# synccf (durable commit, then its task-cache handler) beside adnanh/webhook
# running `rm -f` as a command hook, in the same run. Writes bench/results/latency.md.
#   N=300 bench/latency.sh   (SYNCCF=path/to/synccf: another build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300}
OUT=bench/results
mkdir -p "$OUT"
scripts/deps.sh webhook >/dev/null
make -s all >/dev/null
SYNCCF=${SYNCCF:-build/synccf}
WORK=$(mktemp -d /tmp/synccf-latency.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

PROJ=$WORK/project
mkdir -p "$PROJ/.task/checksum"
TOKEN=bench-token
cat > "$WORK/synccf.yaml" <<YAML
handlers:
  - name: bench-cache
    match: { type: dev.synccf.hook.bench }
    task_cache: { dir: $PROJ, tasks: [build], remote: false }
YAML
SYNCCF_HOOK_TOKEN=$TOKEN "$SYNCCF" --state "$WORK/state" --config "$WORK/synccf.yaml" --log-level error \
    receive --listen 127.0.0.1:18181 &
PIDS+=($!)
cat > "$WORK/hooks.json" <<JSON
[{ "id": "bench", "execute-command": "/bin/rm", "pass-arguments-to-command": [{ "source": "string", "name": "-f" }, { "source": "string", "name": "$PROJ/.task/checksum/build" }],
   "trigger-rule": { "match": { "type": "payload-hmac-sha256", "secret": "$TOKEN", "parameter": { "source": "header", "name": "X-Signature" } } } }]
JSON
webhook -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port 18183 >/dev/null 2>&1 &
PIDS+=($!)
wait_port 18181; wait_port 18183

F=$(node bench/latency.mjs http://127.0.0.1:18181/hooks/generic/bench - "$N" floor | grep RESULT)
S=$(node bench/latency.mjs http://127.0.0.1:18181/hooks/generic/bench "$PROJ/.task/checksum/build" "$N" synccf "$TOKEN" | grep RESULT)
W=$(node bench/latency.mjs http://127.0.0.1:18183/hooks/bench "$PROJ/.task/checksum/build" "$N" webhook "$TOKEN" | grep RESULT)
row() { eval "${2#RESULT }"; echo "| $1 | $n | $p50_ms | $p99_ms | $max_ms |"; }
{
    echo "# End-to-end latency: POST to go-task cache invalidation"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r). Command: \`N=$N bench/latency.sh\` (sequential requests over loopback, one kept-alive connection)."
    echo
    echo "| server | samples | p50 ms | p99 ms | max ms |"
    echo "|---|---:|---:|---:|---:|"
    row "synccf (commit, outbox, task-cache handler)" "$S"
    row "adnanh/webhook (command hook: rm -f)" "$W"
    row "floor: the same POST refused (401, no work)" "$F"
} | tee "$OUT/latency.md"
