#!/bin/sh
# Builds the libFuzzer targets with ASan+UBSan and runs each for SECONDS
# (default 30) from a seed corpus made of the test vectors' inputs.
#   tests/fuzz/run.sh [SECONDS]
set -eu
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-30}
OUT=build-fuzz
mkdir -p "$OUT"
PKGS="libmicrohttpd jansson zlib libcrypto sqlite3 yaml-0.1 libcurl"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 $SAN -Iinclude $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lpthread -lm"
# The library as the Makefile lists it, instrumented once into an archive:
# each target links only the objects it uses.
rm -f "$OUT/libsynccf.a"
mkdir -p "$OUT/lib"
for src in $(make -s --no-print-directory print-lib-src); do
    obj="$OUT/lib/$(basename "$src" .c).o"
    clang $CFLAGS -fsanitize=fuzzer-no-link -c -o "$obj" "$src"
    ar rcs "$OUT/libsynccf.a" "$obj"
done
for t in ${FUZZ_TARGETS:-normalize logpush webhook sources config sse envfile jscan}; do
    clang $CFLAGS -fsanitize=fuzzer -o "$OUT/fuzz_$t" "tests/fuzz/fuzz_$t.c" "$OUT/libsynccf.a" $LIBS
    corpus="$OUT/corpus_$t"
    mkdir -p "$corpus"
    case $t in
        normalize) for f in tests/vectors/inputs/*.json; do { printf '\000'; cat "$f"; } > "$corpus/n-$(basename "$f")"; { printf '\001'; cat "$f"; } > "$corpus/g-$(basename "$f")"; done
                   { printf '\003'; cat tests/vectors/inputs/cloudevents.json; } > "$corpus/ce-batch" ;;
        logpush) for f in tests/vectors/inputs/*.ndjson* tests/vectors/inputs/*.gz; do { printf '\377'; cat "$f"; } > "$corpus/$(basename "$f")"; done ;;
        jscan) for f in tests/vectors/inputs/*.ndjson; do i=0; while IFS= read -r l; do i=$((i + 1)); for m in 0 1; do printf "\\$m%s" "$l" > "$corpus/$m-$i-$(basename "$f")"; done; done < "$f"; done
               node -e 'for (const f of require("fs").readdirSync("tests/vectors").filter(f => f.endsWith(".json"))) for (const [i, e] of (JSON.parse(require("fs").readFileSync("tests/vectors/" + f)).expected || []).entries()) require("fs").writeFileSync(process.argv[1] + "/p-" + i + "-" + f, "\x02" + JSON.stringify(e))' "$corpus" ;;
        sources) cp tests/vectors/inputs/audit-*.json tests/vectors/inputs/pages-deployments.json tests/vectors/inputs/queue-pull-response.json "$corpus/" ;;
        config) cp examples/synccf.yaml "$corpus/"; printf 'sync:\n  cloudflare:\n    mode: hybrid\n' > "$corpus/xplat.yaml"
                printf 'cloudflare:\n  target: https://x.example\n  pages: [a, {project: b, environments: [preview], events: [failed]}]\n  alerts: [{type: dos_attack_l7, filters: {zones: [z]}}]\n  logpush: [{dataset: http_requests, zone_id: 023e105f4ecef8ad9ca31a8372d0c353, max_upload_bytes: 8M}]\n  subscriptions: [{source: kv, events: [x]}]\n' > "$corpus/cloudflare.yaml" ;;
        envfile) { printf '\000'; printf 'CF_API_TOKEN=abc\nexport A="x\\"y" # c\nB=\x27lit\x27\n'; } > "$corpus/env"
                 { printf '\001'; cat tests/vectors/inputs/queue-pull-response.json; } > "$corpus/list" ;;
        sse) printf '\003: hello\n\nid: 1\nevent: cloudevent\ndata: {"specversion":"1.0"}\n\nid: 2\r\ndata: a\r\ndata: b\r\n\r\n' > "$corpus/seed" ;;
        webhook) printf 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\000msg_p5jXN8AQM9LWM0D4loKWxJek\0001614265330\000v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\000{"test": 2432232314}' > "$corpus/seed" ;;
    esac
    echo "== fuzz_$t for ${SECONDS_EACH}s"
    "$OUT/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=1024 -print_final_stats=0 "$corpus" 2>&1 | tail -3
done
