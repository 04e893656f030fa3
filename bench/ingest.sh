#!/usr/bin/env bash
# Ingest benchmark: signed ~1 KiB events over loopback with wrk against
#   synccf receive      (Standard Webhooks check, normalization, durable commit)
#   nginx               (static 200: the HTTP ceiling of this machine)
#   adnanh/webhook      (HMAC check, then a command doing the task-cache removal)
# in the same run, with the same load. Writes bench/results/ingest.md.
#   DURATION=10 CONNS=64 THREADS=2 bench/ingest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
OUT=bench/results
mkdir -p "$OUT"
scripts/deps.sh wrk webhook nginx-light >/dev/null
make -s all >/dev/null

WORK=$(mktemp -d /tmp/synccf-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

SECRET="whsec_$(head -c 24 /dev/urandom | base64)"
HOOKSECRET="bench-hook-secret"
CLK=$(getconf CLK_TCK)

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not open" >&2; return 1; }
rss_kib() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmRSS/{print $2}' /proc/"$p"/status))); done; echo "$t"; }
hwm_kib() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmHWM/{print $2}' /proc/"$p"/status))); done; echo "$t"; }
cpu_ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' /proc/"$p"/stat))); done; echo "$t"; }
# Runs wrk; prints "rps p50_ms p99_ms non2xx errors requests".
load() { # url mode rate
    local line
    line=$(MODE=$2 SECRET=$3 RATE=$4 CONNS=$CONNS wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s \
        -s bench/wrk/post.lua "$1" | grep '^RESULT')
    eval "${line#RESULT }"
    awk -v r="$requests" -v d="$duration_us" -v p50="$p50_us" -v p99="$p99_us" -v n="$non2xx" -v e="$errors" \
        'BEGIN { printf "%.0f %.2f %.2f %d %d %d\n", r / (d / 1e6), p50 / 1000, p99 / 1000, n, e, r }'
}

# --- the three servers ------------------------------------------------------
TASKDIR=$WORK/project
mkdir -p "$TASKDIR/.task/checksum"

SYNCCF_PUSH_SECRET=$SECRET build/synccf --state "$WORK/state" --log-level error receive --listen 127.0.0.1:18081 &
PIDS+=($!); SYNCCF_PID=$!

mkdir -p "$WORK/nginx/logs"
cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log crit;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    server {
        listen 127.0.0.1:18082;
        location / { return 200 '{"accepted":1,"duplicates":0}'; }
    }
}
NGINX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!); NGINX_MASTER=$!

cat > "$WORK/invalidate.sh" <<SH
#!/bin/sh
exec rm -f "$TASKDIR/.task/checksum/build"
SH
chmod +x "$WORK/invalidate.sh"
cat > "$WORK/hooks.json" <<JSON
[{ "id": "ingest", "execute-command": "$WORK/invalidate.sh",
   "trigger-rule": { "match": { "type": "payload-hmac-sha256", "secret": "$HOOKSECRET",
                                "parameter": { "source": "header", "name": "X-Signature" } } } }]
JSON
webhook -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port 18083 >/dev/null 2>&1 &
PIDS+=($!); WEBHOOK_PID=$!

wait_port 18081; wait_port 18082; wait_port 18083
sleep 0.5
NGINX_PIDS="$NGINX_MASTER $(pgrep -P "$NGINX_MASTER" | tr '\n' ' ')"
# shellcheck disable=SC2086
IDLE_SYNCCF=$(rss_kib $SYNCCF_PID); IDLE_NGINX=$(rss_kib $NGINX_PIDS); IDLE_WEBHOOK=$(rss_kib $WEBHOOK_PID)

run() { # name url mode secret rate pids...
    local name=$1 url=$2 mode=$3 secret=$4 rate=$5; shift 5
    local c0 c1 res
    c0=$(cpu_ticks "$@")
    res=$(load "$url" "$mode" "$secret" "$rate")
    c1=$(cpu_ticks "$@")
    set -- $res "$@"
    local rps=$1 reqs=$6
    local cpu_us
    cpu_us=$(awk -v c=$((c1 - c0)) -v k="$CLK" -v n="$reqs" 'BEGIN { printf "%.1f", n ? c / k * 1e6 / n : 0 }')
    echo "$name $res $cpu_us"
}

echo "running: max load ${DURATION}s each, $THREADS threads, $CONNS connections" >&2
# shellcheck disable=SC2086
S_MAX=$(run synccf http://127.0.0.1:18081/v1/events synccf "$SECRET" 0 $SYNCCF_PID)
# shellcheck disable=SC2086
N_MAX=$(run nginx http://127.0.0.1:18082/ plain x 0 $NGINX_PIDS)
# shellcheck disable=SC2086
W_MAX=$(run webhook http://127.0.0.1:18083/hooks/ingest webhook "$HOOKSECRET" 0 $WEBHOOK_PID)
HALF=$(awk -v r="$(echo "$N_MAX" | cut -d' ' -f2)" 'BEGIN { printf "%d", r / 4 }')
echo "running: paced at $HALF/s (half of 0.5 x nginx)" >&2
# shellcheck disable=SC2086
S_HALF=$(run synccf http://127.0.0.1:18081/v1/events synccf "$SECRET" "$HALF" $SYNCCF_PID)
# shellcheck disable=SC2086
N_HALF=$(run nginx http://127.0.0.1:18082/ plain x "$HALF" $NGINX_PIDS)
# shellcheck disable=SC2086
W_HALF=$(run webhook http://127.0.0.1:18083/hooks/ingest webhook "$HOOKSECRET" "$HALF" $WEBHOOK_PID)
# shellcheck disable=SC2086
PEAK_SYNCCF=$(hwm_kib $SYNCCF_PID); PEAK_NGINX=$(hwm_kib $NGINX_PIDS); PEAK_WEBHOOK=$(hwm_kib $WEBHOOK_PID)

STORED=$(build/synccf --state "$WORK/state" status --json | awk -F': ' '/"total"/ { gsub(",", "", $2); print $2; exit }')

row() { # label max half idle peak
    set -- "$1" $2 $3 "$4" "$5"
    # $2 name $3 rps $4 p50 $5 p99 $6 non2xx $7 err $8 reqs $9 cpu ; half: ${10}.. 
    echo "$@"
}
{
    echo "# Ingest benchmark"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)."
    echo "Command: \`DURATION=$DURATION CONNS=$CONNS THREADS=$THREADS bench/ingest.sh\` (wrk, ~1 KiB signed events, loopback; wrk shares the cores)."
    echo
    echo "| server | max events/s | × nginx | p50 ms | p99 ms | non-2xx | CPU µs/event | paced $HALF/s: p50 ms | p99 ms | idle RSS MiB | peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    NRPS=$(echo "$N_MAX" | cut -d' ' -f2)
    for t in "synccf receive (durable)|$S_MAX|$S_HALF|$IDLE_SYNCCF|$PEAK_SYNCCF" \
             "nginx static 200|$N_MAX|$N_HALF|$IDLE_NGINX|$PEAK_NGINX" \
             "adnanh/webhook + rm command|$W_MAX|$W_HALF|$IDLE_WEBHOOK|$PEAK_WEBHOOK"; do
        IFS='|' read -r label max half idle peak <<<"$t"
        read -r _ rps p50 p99 non2xx err _ cpu <<<"$max"
        read -r _ hrps hp50 hp99 _ _ _ _ <<<"$half"
        awk -v l="$label" -v rps="$rps" -v n="$NRPS" -v p50="$p50" -v p99="$p99" -v bad=$((non2xx + err)) -v cpu="$cpu" \
            -v hp50="$hp50" -v hp99="$hp99" -v idle="$idle" -v peak="$peak" \
            'BEGIN { printf "| %s | %d | %.2f | %.2f | %.2f | %d | %.1f | %.2f | %.2f | %.1f | %.1f |\n",
                     l, rps, rps / n, p50, p99, bad, cpu, hp50, hp99, idle / 1024, peak / 1024 }'
    done
    echo
    echo "synccf stored $STORED events during the run (every 2xx is a committed row)."
} | tee "$OUT/ingest.md"
