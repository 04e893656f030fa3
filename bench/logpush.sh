#!/usr/bin/env bash
# Logpush ingest: one gzip batch of ~100 MB uncompressed (http_requests
# records) posted to `synccf receive`; MB/s and the daemon's peak RSS, beside
# two ceilings from the same run: `gzip -dc > /dev/null` on the same file, and
# a plain program (bench/ceiling.c) inserting the events synccf stored into
# the same schema in one transaction, with the same durability settings.
#   MB=100 bench/logpush.sh        (SYNCCF=path/to/synccf to bench another build)
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${MB:-100}
make -s all >/dev/null
SYNCCF=${SYNCCF:-build/synccf}
WORK=$(mktemp -d /tmp/synccf-logpush.XXXXXX)
cc -std=c11 -D_GNU_SOURCE -O2 -o "$WORK/ceiling" bench/ceiling.c $(pkg-config --cflags --libs sqlite3)
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
node -e '
const { createGzip } = require("node:zlib"); const fs = require("node:fs");
const out = fs.createWriteStream(process.argv[1]); const gz = createGzip({ level: 6 }); gz.pipe(out);
const target = Number(process.argv[2]) * 1e6; let n = 0, bytes = 0;
(function write() { let ok = true;
  while (bytes < target && ok) {
    const l = JSON.stringify({ RayID: "8c" + n.toString(16).padStart(14, "0"), EdgeStartTimestamp: 1763633000000000000 + n, ClientRequestHost: "www.example.com", ClientRequestMethod: "GET", ClientRequestURI: "/page/" + n + "?q=" + "x".repeat(60), EdgeResponseStatus: 200 + (n % 7 === 0 ? 304 : 0), CacheCacheStatus: n % 3 ? "hit" : "miss", ZoneName: "example.com" }) + "\n";
    bytes += l.length; n++; ok = gz.write(l); }
  if (bytes < target) gz.once("drain", write); else gz.end(); })();
out.on("finish", () => fs.writeFileSync(process.argv[1] + ".meta", JSON.stringify({ records: n, bytes })));
' "$WORK/batch.gz" "$MB"
meta() { node -e 'console.log(JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"))[process.argv[2]])' "$WORK/batch.gz.meta" "$1"; }
RECORDS=$(meta records)
BYTES=$(meta bytes)
GZ=$(stat -c %s "$WORK/batch.gz")

t0=$(date +%s.%N); gzip -dc "$WORK/batch.gz" > /dev/null; t1=$(date +%s.%N)
GZIP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')

"$SYNCCF" --state "$WORK/state" --log-level error receive --listen 127.0.0.1:18281 --max-logpush-body 1G &
PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18281) 2>/dev/null && break; sleep 0.05; done
t0=$(date +%s.%N)
RESP=$(curl -s -X POST --data-binary @"$WORK/batch.gz" http://127.0.0.1:18281/hooks/logpush/http_requests)
t1=$(date +%s.%N)
SYNC_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
PEAK=$(awk '/VmHWM/{print $2}' /proc/$PID/status)
ACCEPTED=$(echo "$RESP" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).accepted))')
[ "$ACCEPTED" = "$RECORDS" ] || { echo "accepted $ACCEPTED of $RECORDS: $RESP" >&2; exit 1; }
# Stopped, the store checkpoints and removes its WAL: what stays is the database.
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
DISK=$(stat -c %s "$WORK/state/state.db")
read -r CEIL_S CEIL_N CEIL_DISK < <("$WORK/ceiling" "$WORK/state/state.db" "$WORK/ceiling.db")
[ "$CEIL_N" = "$RECORDS" ] || { echo "ceiling inserted $CEIL_N of $RECORDS" >&2; exit 1; }
awk -v mb="$(awk -v b="$BYTES" 'BEGIN { print b / 1e6 }')" -v gz="$GZ" -v r="$RECORDS" -v g="$GZIP_S" -v s="$SYNC_S" -v peak="$PEAK" \
    -v c="$CEIL_S" -v disk="$DISK" -v cdisk="$CEIL_DISK" 'BEGIN {
  printf "| what | seconds | MB/s (uncompressed) | records/s | time × insert ceiling | bytes on disk per record | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|\n";
  printf "| `gzip -dc > /dev/null` (ceiling) | %.2f | %.0f | %.0f | - | - | - |\n", g, mb / g, r / g;
  printf "| plain inserts of the same events, same schema, one transaction (ceiling) | %.2f | %.0f | %.0f | 1.00 | %.0f | - |\n", c, mb / c, r / c, cdisk / r;
  printf "| synccf receive: %.0f MB (%.1f MB gzip), %d records, all stored durably | %.2f | %.0f | %.0f | %.2f | %.0f | %.1f |\n", mb, gz / 1e6, r, s, mb / s, r / s, s / c, disk / r, peak / 1024 }'
