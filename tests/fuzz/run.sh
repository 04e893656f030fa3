#!/bin/sh
# Builds the libFuzzer targets with ASan+UBSan and runs each for SECONDS
# (default 30) from a seed corpus made of the test vectors' inputs.
#   tests/fuzz/run.sh [SECONDS]
set -eu
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-30}
OUT=build-fuzz
mkdir -p "$OUT"
PKGS="jansson zlib libcrypto sqlite3 yaml-0.1"
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lpthread -lm"
LIBSRC="lib/sse.c lib/event.c lib/normalize.c lib/logpush.c lib/webhook.c lib/util.c lib/log.c lib/config.c lib/retention.c lib/handler.c"
for t in normalize logpush webhook sources config sse; do
    clang $CFLAGS -o "$OUT/fuzz_$t" "tests/fuzz/fuzz_$t.c" $LIBSRC $LIBS
    corpus="$OUT/corpus_$t"
    mkdir -p "$corpus"
    case $t in
        normalize) for f in tests/vectors/inputs/*.json; do { printf '\000'; cat "$f"; } > "$corpus/n-$(basename "$f")"; { printf '\001'; cat "$f"; } > "$corpus/g-$(basename "$f")"; done ;;
        logpush) for f in tests/vectors/inputs/*.ndjson* tests/vectors/inputs/*.gz; do { printf '\377'; cat "$f"; } > "$corpus/$(basename "$f")"; done ;;
        sources) cp tests/vectors/inputs/audit-*.json tests/vectors/inputs/pages-deployments.json tests/vectors/inputs/queue-pull-response.json "$corpus/" ;;
        config) cp examples/synccf.yaml "$corpus/"; printf 'sync:\n  cloudflare:\n    mode: hybrid\n' > "$corpus/xplat.yaml" ;;
        sse) printf '\003: hello\n\nid: 1\nevent: cloudevent\ndata: {"specversion":"1.0"}\n\nid: 2\r\ndata: a\r\ndata: b\r\n\r\n' > "$corpus/seed" ;;
        webhook) printf 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\000msg_p5jXN8AQM9LWM0D4loKWxJek\0001614265330\000v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\000{"test": 2432232314}' > "$corpus/seed" ;;
    esac
    echo "== fuzz_$t for ${SECONDS_EACH}s"
    "$OUT/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=1024 -print_final_stats=0 "$corpus" 2>&1 | tail -3
done
