#!/bin/sh
# A first look at synccf on the embedded defaults: builds it, starts
# `synccf receive` on loopback with a throwaway store, sends it what Cloudflare
# sends (a Pages deployment alert, a DDoS alert, a gzip Logpush batch with its
# destination check, a deploy hook, a signed push from the Worker), sends it all
# again to show duplicates being dropped, then shows the store and stops.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh curl >/dev/null
make -s all

STATE=$(mktemp -d /tmp/synccf-demo.XXXXXX)
PORT=${PORT:-9091}
SECRET="whsec_$(head -c 24 /dev/urandom | base64)"
F=tests/vectors/inputs
SYNCCF="build/synccf --state $STATE"

SYNCCF_PUSH_SECRET=$SECRET $SYNCCF receive --listen 127.0.0.1:$PORT 2>"$STATE/daemon.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$STATE"' EXIT INT TERM
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

send() { # label path file [content-type]
    printf '  %-44s -> ' "$1"
    curl -s -X POST "http://127.0.0.1:$PORT$2" -H "content-type: ${4:-application/json}" --data-binary "@$3"
    echo
}
push() { # a CloudEvents batch signed the way the Worker signs it (Standard Webhooks)
    body='[{"specversion":"1.0","id":"demo-worker-1","source":"/cloudflare/pages","type":"com.cloudflare.pages.deployment.success","subject":"docs","time":"2026-11-20T10:00:00Z","datacontenttype":"application/json","synccfvia":"worker","data":{"project_name":"docs"}}]'
    id="msg_demo"; ts=$(date +%s)
    key=$(printf '%s' "${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
    sig=$(printf '%s.%s.%s' "$id" "$ts" "$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)
    printf '  %-44s -> ' "signed push from the Worker"
    curl -s -X POST "http://127.0.0.1:$PORT/v1/events" -H 'content-type: application/cloudevents-batch+json' \
        -H "webhook-id: $id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" --data-binary "$body"
    echo
}
round() {
    send "Pages deployment succeeded (Notifications)" /hooks/notifications $F/pages-deployment-success.json
    send "L7 DDoS alert (Notifications)" /hooks/notifications $F/ddos-l7.json
    send "Logpush destination check" /hooks/logpush/http_requests $F/validation-test.txt.gz application/octet-stream
    send "Logpush batch, gzip, 4 records" /hooks/logpush/http_requests $F/http_requests.ndjson.gz application/octet-stream
    send "deploy hook from CI" /hooks/generic/deploy $F/generic-deploy.json
    push
}

echo "synccf receive is listening on 127.0.0.1:$PORT, store $STATE/state.db"
echo
echo "1. Cloudflare sends its events:"
round
echo
echo "2. ... and sends them all again (retries, two paths): duplicates, nothing new stored:"
round
echo
echo "3. A forged push is refused:"
printf '  %-44s -> ' "push with a wrong signature"
curl -s -X POST "http://127.0.0.1:$PORT/v1/events" -H 'content-type: application/cloudevents-batch+json' \
    -H 'webhook-id: x' -H "webhook-timestamp: $(date +%s)" -H 'webhook-signature: v1,AAAA' --data-binary '[]'
echo
sleep 1.2 # counters reach the store within a second
echo
echo "4. synccf events list"
$SYNCCF events list
echo
echo "5. synccf status"
$SYNCCF status
echo
echo "Events flowed: Cloudflare payloads in, normalized CloudEvents stored once, duplicates and forgeries counted."
