#!/usr/bin/env bash
# Builds a real llama-server (and a tiny random-weight model) from the llama.cpp source that
# the node-llama-cpp npm package ships as a git bundle. CPU only; about 10 minutes on 2 cores
# the first time, then cached outside the checkout, keyed by the package version. An
# interrupted build resumes where it stopped.
#
# Prints the cache folder on its last line. Inside it:
#   bin/llama-server        the server
#   models/tiny-llama.gguf  a tiny random-weight llama model
#   models/tiny-llama-moe.gguf  the same with mixture-of-experts layers (a second model)
set -euo pipefail

version="${NODE_LLAMA_CPP_VERSION:-3.22.1}"
cache_root="${LLAMACTL_LLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llamactl-llama}"
out="$cache_root/node-llama-cpp-$version"
work="$cache_root/work-$version"

if [ -x "$out/bin/llama-server" ] && [ -f "$out/models/tiny-llama.gguf" ]; then
  if [ ! -f "$out/models/tiny-llama-moe.gguf" ]; then
    # The second test model (router and estimate tests) came later: a cache built before it gets
    # it from the same test-llama-archs run, or from the built tool, without building again.
    if [ ! -f "$work/models/llama-moe.gguf" ] && [ -x "$work/build/bin/test-llama-archs" ]; then
      mkdir -p "$work/models"
      "$work/build/bin/test-llama-archs" -a '^llama$' -o "$work/models" >"$work/archs.log" 2>&1 || true
    fi
    if [ -f "$work/models/llama-moe.gguf" ]; then cp "$work/models/llama-moe.gguf" "$out/models/tiny-llama-moe.gguf"; fi
  fi
  if [ -f "$out/models/tiny-llama-moe.gguf" ]; then
    echo "$out"
    exit 0
  fi
fi

for tool in cmake g++ git; do
  command -v "$tool" >/dev/null || { echo "build-llama-server: $tool is needed (apt-get install cmake g++ git)" >&2; exit 1; }
done

mkdir -p "$work"
cd "$work"
if [ ! -d src/.git ]; then
  echo "build-llama-server: fetching node-llama-cpp@$version from the npm registry" >&2
  rm -rf src package ./*.tgz
  npm pack --silent "node-llama-cpp@$version" >/dev/null
  tar xzf "node-llama-cpp-$version.tgz" package/llama/gitRelease.bundle
  git clone -q package/llama/gitRelease.bundle src 2>/dev/null
  rm -rf package ./*.tgz
fi
echo "build-llama-server: building llama-server and test-llama-archs (log: $work/build.log)" >&2
cmake -S src -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=ON -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF \
  >cmake.log 2>&1 || { tail -40 cmake.log >&2; exit 1; }
cmake --build build -j"$(nproc)" --target llama-server test-llama-archs >build.log 2>&1 || { tail -40 build.log >&2; exit 1; }

rm -rf stage && mkdir -p stage/bin stage/models models
cp build/bin/llama-server stage/bin/
# test-llama-archs -o writes one random-weight model per matching architecture into an existing folder.
./build/bin/test-llama-archs -a '^llama$' -o "$work/models" >archs.log 2>&1 || { tail -40 archs.log >&2; exit 1; }
model="$(find "$work/models" -name '*.gguf' | sort | head -n 1)"
[ -n "$model" ] || { echo "build-llama-server: test-llama-archs wrote no model" >&2; tail -40 archs.log >&2; exit 1; }
cp "$model" stage/models/tiny-llama.gguf
[ -f "$work/models/llama-moe.gguf" ] || { echo "build-llama-server: test-llama-archs wrote no llama-moe.gguf" >&2; tail -40 archs.log >&2; exit 1; }
cp "$work/models/llama-moe.gguf" stage/models/tiny-llama-moe.gguf
rm -rf "$out" && mv stage "$out"
echo "$out"
