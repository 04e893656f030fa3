#!/bin/bash
# The unit's SystemCallFilter= against what the daemon really calls. Where
# systemd is not PID 1 the filter cannot be applied by running the unit, so
# the daemon runs under strace instead, under load: the receiver taking
# concurrent requests whose events run an exec handler (its child is under
# the same filter), a SIGHUP reload, the systemd watchdog, `run` following a
# Worker that is down (libcurl's path), and a SIGTERM drain. Every system call
# seen must be in the set the unit allows, as systemd-analyze syscall-filter
# expands its groups.
# Usage: tests/install/syscalls.sh [SYNCCF_BINARY]   (default build/synccf)
set -eu
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-build/synccf}")
unit=dist/synccf.service.in
tmp=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }

# ---- the allowed set: the unit's SystemCallFilter= lines, in order ------------
expand() { # expand NAME...: system calls of each group, recursively
    local n
    for n in "$@"; do
        case $n in
            @*) systemd-analyze syscall-filter --no-pager "$n" | sed -n '2,$p' | grep -v '^ *#' | awk 'NF { print $1 }' |
                    while read -r m; do expand "$m"; done ;;
            *) echo "$n" ;;
        esac
    done
}
: >"$tmp/allowed"
while read -r line; do
    v=${line#SystemCallFilter=}
    if [ "${v#\~}" != "$v" ]; then
        # shellcheck disable=SC2086
        expand ${v#\~} | sort -u >"$tmp/deny"
        comm -23 "$tmp/allowed" "$tmp/deny" >"$tmp/a2" && mv "$tmp/a2" "$tmp/allowed"
    else
        # shellcheck disable=SC2086
        { cat "$tmp/allowed"; expand $v; } | sort -u >"$tmp/a2" && mv "$tmp/a2" "$tmp/allowed"
    fi
done < <(grep '^SystemCallFilter=' "$unit")
n=$(wc -l <"$tmp/allowed")
if [ "$n" -gt 200 ]; then ok "the unit's filter allows $n system calls"; else not_ok "the unit's filter expanded to only $n system calls"; fi

# ---- the daemon under strace, under load -----------------------------------
# As the service runs it: not as root (SQLite, for one, calls fchown only as
# root). strace -u drops to the user for the daemon alone.
as_user=()
if [ "$(id -u)" -eq 0 ]; then
    as_user=(-u nobody)
    chown nobody "$tmp"
fi
cat >"$tmp/synccf.yaml" <<EOF
listen: 127.0.0.1:0
handlers:
  - name: run-true
    match:
      type: "*"
    exec:
      argv: [/bin/sh, -c, "cat >/dev/null; /bin/true"]
      timeout: 10s
dispatch:
  concurrency: 4
EOF
: >"$tmp/d.log"
NOTIFY_SOCKET=$tmp/notify.sock WATCHDOG_USEC=1000000 \
    strace "${as_user[@]}" -f -qq -c -U name -o "$tmp/receive.trace" "$bin" --config "$tmp/synccf.yaml" --state "$tmp/st" receive >"$tmp/d.log" 2>&1 &
spid=$!
pids="$spid"
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening.*port=\([0-9]*\).*/\1/p' "$tmp/d.log" | head -1)
    [ -n "$port" ] && break; sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/d.log"; not_ok "the daemon started under strace"; }
python3 - "$port" <<'EOF'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
port = sys.argv[1]
def post(i):
    body = json.dumps({"id": f"load-{i}", "subject": f"site-{i % 7}"}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/hooks/generic/deploy", body, {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status
with ThreadPoolExecutor(16) as ex:
    codes = list(ex.map(post, range(400)))
bad = [c for c in codes if c // 100 != 2]
print(f"load: {len(codes)} requests, {len(bad)} not 2xx")
sys.exit(1 if bad else 0)
EOF
load_rc=$?
# Let the handler runs happen, reload, then drain.
for _ in $(seq 100); do
    n=$("$bin" --state "$tmp/st" status --json 2>/dev/null | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))' | grep -o '"ok": *[0-9]*' | head -1 | grep -o '[0-9]*$' || true)
    [ "${n:-0}" -ge 400 ] && break; sleep 0.2
done
dpid=$(pgrep -P "$spid" -x synccf | head -1 || true)
[ -n "$dpid" ] && kill -HUP "$dpid" && sleep 0.5 && kill -TERM "$dpid"
wait "$spid" && rc=0 || rc=$?
if [ "$load_rc" -eq 0 ] && [ "$rc" -eq 0 ]; then ok "receive took 400 concurrent requests, ran their handlers (${n:-?} ok), reloaded and drained under strace"
else not_ok "receive under load (load $load_rc, exit $rc, ${n:-?} runs ok)"; tail -5 "$tmp/d.log"; fi

# run following a Worker that is not there: libcurl's connect and retry path.
: >"$tmp/r.log"
strace "${as_user[@]}" -f -qq -c -U name -o "$tmp/run.trace" "$bin" --config "$tmp/synccf.yaml" --state "$tmp/st" run \
    --mode worker --worker-url http://127.0.0.1:9/ >"$tmp/r.log" 2>&1 &
spid=$!
pids="$spid"
sleep 3
dpid=$(pgrep -P "$spid" -x synccf | head -1 || true)
[ -n "$dpid" ] && kill -TERM "$dpid"
wait "$spid" && rc=0 || rc=$?
if [ "$rc" -eq 0 ] && grep -qi 'worker\|pull' "$tmp/r.log"; then ok "run --mode worker retried a Worker that is down and stopped under strace"
else not_ok "run --mode worker under strace (exit $rc)"; tail -5 "$tmp/r.log"; fi

# ---- every call seen is allowed ----------------------------------------------
cat "$tmp/receive.trace" "$tmp/run.trace" | awk 'NF == 1 && $1 ~ /^[a-z_0-9]+$/ && $1 != "syscall" && $1 != "total" { print $1 }' | sort -u >"$tmp/seen"
seen=$(wc -l <"$tmp/seen")
if [ "$seen" -ge 40 ] && grep -qx execve "$tmp/seen" && grep -qx accept4 "$tmp/seen" && grep -qx connect "$tmp/seen"; then
    ok "strace saw $seen distinct system calls, the handler's execve, accept4 and connect among them"
else
    not_ok "strace saw only $seen distinct system calls"
fi
outside=$(comm -23 "$tmp/seen" "$tmp/allowed" | tr '\n' ' ')
if [ -z "$outside" ]; then ok "every system call the daemon and its handlers made is allowed by the unit's filter"
else not_ok "system calls outside the unit's filter: $outside"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
