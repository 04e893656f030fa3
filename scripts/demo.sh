#!/bin/sh
# The first-five-minutes demo (README's first command): installs what it
# needs, builds synccf, and runs scripts/demo.mjs -- the Worker in workerd,
# `synccf run` following it, Cloudflare's payloads replayed, the go-task cache
# invalidated. DEMO_WAIT=1 keeps it running until Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh >/dev/null
make -s all
(cd worker && [ -d node_modules/miniflare ] || npm ci --no-audit --no-fund --loglevel=error)
exec node scripts/demo.mjs
