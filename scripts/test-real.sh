#!/usr/bin/env bash
# The real-llama-server suite: builds (or reuses the cached) llama-server and tiny model, then
# runs test/e2e/*.real.ts against them. Extra arguments go to `bun test`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(bash scripts/build-llama-server.sh | tail -n 1)"
export LLAMA_SERVER_DIR="$dir"
exec node_modules/.bin/bun test --timeout 120000 "$@" $(ls test/e2e/*.real.ts | sed 's#^#./#')
