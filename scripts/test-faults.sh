#!/usr/bin/env bash
# The fault suite: llamactl and its backends as real processes under faults (killed backends,
# crash loops, a killed llamactl, a read-only or full disk), plus the load and fuzz runs. The
# mid-stream test also uses the real llama-server, built (or reused) as for test-real.sh.
# Runs test/faults/*.fault.ts; extra arguments go to `bun test`. The disk tests mount small
# file systems and are skipped, saying so, where mounting is not permitted.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(bash scripts/build-llama-server.sh | tail -n 1)"
export LLAMA_SERVER_DIR="$dir"
exec node_modules/.bin/bun test --timeout 300000 "$@" $(ls test/faults/*.fault.ts | sed 's#^#./#')
