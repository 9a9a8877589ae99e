#!/usr/bin/env bash
# The llama.cpp the project measures against, built once: prints the folder holding its tools.
#
#   BIN=$(scripts/llama-peer.sh)     # then "$BIN/llama-completion", "$BIN/llama-bench"
#
# Source: llama-cpp-python 0.3.36's source archive from PyPI (its vendored llama.cpp), configured with cmake into
# .build/llama.cpp-peer/llama_cpp_python-0.3.36/build and built for llama-completion (a raw prompt, greedy,
# non-interactive with -no-cnv, with --lora; this version's llama-cli only chats) and llama-bench. About 10-15
# minutes on 2 cores the first time (run it under nice on a shared machine); afterwards it only prints the folder.
# On Intel CPUs with AMX the native build dies with SIGILL in these VMs: the build then passes -mno-amx-*.
# The build's output goes to .build/llama.cpp-peer/build.log.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.3.36
peer=.build/llama.cpp-peer
src=$peer/llama_cpp_python-$version
targets=(llama-completion llama-bench)

missing=()
for t in "${targets[@]}"; do [ -x "$src/build/bin/$t" ] || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
    mkdir -p "$peer"
    if [ ! -d "$src/vendor/llama.cpp" ]; then
        # The source archive only: --no-binary :all: would also build pip's build tools (cmake) from source.
        python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python "llama-cpp-python==$version" -d "$peer" >&2
        tar -xzf "$peer/llama_cpp_python-$version.tar.gz" -C "$peer"
    fi
    command -v cmake >/dev/null || python3 -m pip install --quiet cmake >&2
    log=$peer/build.log
    echo "building ${missing[*]} of llama.cpp (llama-cpp-python $version) into $src/build; log in $log" >&2
    if [ ! -f "$src/build/CMakeCache.txt" ]; then
        flags=""
        if grep -q amx_tile /proc/cpuinfo; then flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"; fi
        cmake -S "$src/vendor/llama.cpp" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
            -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" >"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
    fi
    cmake --build "$src/build" --target "${missing[@]}" -j "$(nproc)" >>"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
fi
echo "$(pwd)/$src/build/bin"
