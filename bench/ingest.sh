#!/usr/bin/env bash
# Ingest benchmark: signed ~1 KiB events over loopback with wrk against
#   synccf receive      (Standard Webhooks check, normalization, durable commit)
#   nginx               (static 200: the HTTP ceiling of this machine)
#   adnanh/webhook      (HMAC check, then a command doing the task-cache removal)
# in the same run, with the same load, and the disk's own floor: bench/disk.c
# committing groups of synccf's bytes per event with one pwrite and one
# fdatasync each, at the same pace, with nothing else running (what a durable
# acknowledgement costs on this disk alone). Writes bench/results/ingest.md.
#   DURATION=10 CONNS=64 THREADS=2 bench/ingest.sh   (SYNCCF=path/to/synccf: another build;
#   IDS=random: event ids in no order, see bench/wrk/post.lua)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
OUT=bench/results
mkdir -p "$OUT"
scripts/deps.sh wrk webhook nginx-light >/dev/null
make -s all >/dev/null
SYNCCF=${SYNCCF:-build/synccf}

WORK=$(mktemp -d /tmp/synccf-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$WORK/disk" bench/disk.c

SECRET="whsec_$(head -c 24 /dev/urandom | base64)"
HOOKSECRET="bench-hook-secret"
CLK=$(getconf CLK_TCK)

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not open" >&2; return 1; }
rss_kib() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmRSS/{print $2}' /proc/"$p"/status))); done; echo "$t"; }
hwm_kib() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmHWM/{print $2}' /proc/"$p"/status))); done; echo "$t"; }
cpu_ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' /proc/"$p"/stat))); done; echo "$t"; }
# Bytes the processes wrote (files and sockets: the WAL, the database, the answers).
wchar() { local t=0; for p in "$@"; do t=$((t + $(awk '/^wchar/ {print $2}' /proc/"$p"/io))); done; echo "$t"; }
# Runs wrk; prints "rps p50_ms p99_ms non2xx errors requests".
load() { # url mode rate
    local line
    line=$(MODE=$2 SECRET=$3 RATE=$4 CONNS=$CONNS THREADS=$THREADS wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s \
        -s bench/wrk/post.lua "$1" | grep '^RESULT')
    eval "${line#RESULT }"
    awk -v r="$requests" -v d="$duration_us" -v p50="$p50_us" -v p99="$p99_us" -v n="$non2xx" -v e="$errors" \
        'BEGIN { printf "%.0f %.2f %.2f %d %d %d\n", r / (d / 1e6), p50 / 1000, p99 / 1000, n, e, r }'
}

# --- the three servers, one at a time ---------------------------------------
# Each server runs alone, so that one's leftovers (webhook keeps running the
# commands it queued after its load ends) cannot slow the next.
TASKDIR=$WORK/project
mkdir -p "$TASKDIR/.task/checksum"

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

run() { # name url mode secret rate pids...
    local name=$1 url=$2 mode=$3 secret=$4 rate=$5; shift 5
    local c0 c1 w0 w1 res
    c0=$(cpu_ticks "$@")
    w0=$(wchar "$@")
    res=$(load "$url" "$mode" "$secret" "$rate")
    c1=$(cpu_ticks "$@")
    w1=$(wchar "$@")
    set -- $res "$@"
    local reqs=$6
    local cpu_us kib
    cpu_us=$(awk -v c=$((c1 - c0)) -v k="$CLK" -v n="$reqs" 'BEGIN { printf "%.1f", n ? c / k * 1e6 / n : 0 }')
    kib=$(awk -v w=$((w1 - w0)) -v n="$reqs" 'BEGIN { printf "%.1f", n ? w / 1024 / n : 0 }')
    echo "$name $res $cpu_us $kib"
}
# bench_one NAME URL MODE SECRET PORT -- command...: prints "max|paced|idle|peak"
bench_one() {
    local name=$1 url=$2 mode=$3 secret=$4 port=$5; shift 6
    "$@" &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$port"
    sleep 0.5
    local pids="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
    local idle max paced peak
    # shellcheck disable=SC2086
    idle=$(rss_kib $pids)
    # shellcheck disable=SC2086
    max=$(run "$name" "$url" "$mode" "$secret" 0 $pids)
    if [ -z "${PACED:-}" ]; then PACED=$(awk -v r="$(echo "$max" | cut -d' ' -f2)" 'BEGIN { printf "%d", r / 4 }'); fi
    # shellcheck disable=SC2086
    paced=$(run "$name" "$url" "$mode" "$secret" "$PACED" $pids)
    # shellcheck disable=SC2086
    peak=$(hwm_kib $pids)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    pkill -P "$pid" 2>/dev/null || true
    sleep 1
    echo "$max|$paced|$idle|$peak"
}

echo "running: ${DURATION}s at full load and ${DURATION}s paced, per server; $THREADS threads, $CONNS connections" >&2
PACED=""
N=$(bench_one nginx http://127.0.0.1:18082/ plain x 18082 -- nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;')
PACED=$(awk -v r="$(echo "$N" | cut -d' ' -f2)" 'BEGIN { printf "%d", r / 4 }')
S=$(SYNCCF_PUSH_SECRET=$SECRET bench_one synccf http://127.0.0.1:18081/v1/events synccf "$SECRET" 18081 -- \
    "$SYNCCF" --state "$WORK/state" --log-level error receive --listen 127.0.0.1:18081)
W=$(bench_one webhook http://127.0.0.1:18083/hooks/ingest webhook "$HOOKSECRET" 18083 -- \
    webhook -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port 18083)
# The disk alone, with synccf's bytes per event (the WAL, the checkpoints):
# as many events in flight as wrk's connections, then the same pace.
disk() { # rate -> "name rps p50 p99 0 0 requests - kib"
    local line
    line=$("$WORK/disk" "$WORK" "$1" "$DURATION" "$DISK_BPE" "$CONNS")
    eval "${line#RESULT }"
    awk -v r="$requests" -v d="$duration_us" -v p50="$p50_us" -v p99="$p99_us" -v kib="$SKIB" \
        'BEGIN { printf "disk %.0f %.2f %.2f 0 0 %d - %s\n", r / (d / 1e6), p50 / 1000, p99 / 1000, r, kib }'
}
SKIB=$(echo "$S" | cut -d'|' -f1 | cut -d' ' -f9)
DISK_BPE=$(awk -v k="$SKIB" 'BEGIN { b = int(k * 1024); print (b > 0 ? b : 1024) }')
D="$(disk 0)|$(disk "$PACED")|0|0"
HALF=$PACED
STORED=$("$SYNCCF" --state "$WORK/state" status --json | awk -F': ' '/"total"/ { gsub(",", "", $2); print $2; exit }')
SREQ=$(( $(echo "$S" | cut -d'|' -f1 | cut -d' ' -f7) + $(echo "$S" | cut -d'|' -f2 | cut -d' ' -f7) ))

{
    echo "# Ingest benchmark"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)."
    echo "Command: \`DURATION=$DURATION CONNS=$CONNS THREADS=$THREADS IDS=${IDS:-seq} bench/ingest.sh\` (wrk, ~1 KiB signed events, loopback; wrk shares the cores)."
    echo
    echo "| server | max events/s | × nginx | p50 ms | p99 ms | errors | CPU µs/event | written KiB/event | paced at $HALF/s: achieved | p50 ms | p99 ms | idle RSS MiB | peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    NRPS=$(echo "$N" | cut -d' ' -f2)
    for t in "synccf receive (durable)|$S" "nginx static 200|$N" "adnanh/webhook + rm command|$W" \
        "disk alone: pwrite + fdatasync per group, synccf's bytes (bench/disk.c)|$D"; do
        IFS='|' read -r label max half idle peak <<<"$t"
        read -r _ rps p50 p99 non2xx err _ cpu kib <<<"$max"
        read -r _ hrps hp50 hp99 _ _ _ _ _ <<<"$half"
        awk -v l="$label" -v rps="$rps" -v n="$NRPS" -v p50="$p50" -v p99="$p99" -v bad=$((non2xx + err)) -v cpu="$cpu" \
            -v kib="$kib" -v hrps="$hrps" -v hp50="$hp50" -v hp99="$hp99" -v idle="$idle" -v peak="$peak" \
            'BEGIN { if (cpu == "-") { printf "| %s | %d | %.2f | %.2f | %.2f | %d | - | %.1f | %d | %.2f | %.2f | - | - |\n",
                                           l, rps, rps / n, p50, p99, bad, kib, hrps, hp50, hp99; exit }
                     printf "| %s | %d | %.2f | %.2f | %.2f | %d | %.1f | %.1f | %d | %.2f | %.2f | %.1f | %.1f |\n",
                     l, rps, rps / n, p50, p99, bad, cpu, kib, hrps, hp50, hp99, idle / 1024, peak / 1024 }'
    done
    echo
    echo "synccf answered $SREQ requests 2xx and its store holds $STORED events: every acknowledgement is a committed row."
    echo "Paced: each wrk thread sends on a fixed schedule (bench/wrk/post.lua) at a quarter of nginx's maximum (half of the 0.5 x nginx aim); 'achieved' is what was sent and answered."
    echo "Disk alone: no HTTP, no SQLite, no client on the cores; $CONNS events always waiting for the maximum, the same schedule for the paced run. Its latencies are the floor of a durable acknowledgement on this disk; the gap to synccf's is what the rest of the path and the shared cores add."
} | tee "$OUT/ingest.md"
