#!/usr/bin/env bash
# The multi-host suite: builds (or reuses the cached) llama-server and tiny model as
# test-real.sh does, then runs test/nodes/*.nodes.ts. Those tests build their hosts as network
# namespaces joined by veths (test/nodes/netns.ts), which needs root and `ip` (iproute2); without
# them they say so and use loopback addresses 127.0.0.2, 127.0.0.3, … instead. Files run one at a
# time (each makes and removes its own hosts). Extra arguments go to `bun test`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(bash scripts/build-llama-server.sh | tail -n 1)"
export LLAMA_SERVER_DIR="$dir"
exec node_modules/.bin/bun test --timeout 180000 "$@" $(ls test/nodes/*.nodes.ts | sed 's#^#./#')
