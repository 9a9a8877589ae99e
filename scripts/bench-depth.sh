#!/usr/bin/env bash
# Decoding deep in a context and long prompts, gemma beside llama.cpp's llama-bench on the same GGUF (issue 18).
#
#   scripts/bench-depth.sh [--depths 8192,32768] [--kv f16,q8_0] [--pp 16384,32768] [--tg 64] [--rounds 2]
#                          [--reps 2] [--threads 2] [--model M]
#
# Each round runs, for every depth D and KV type K, `gemma bench -p 0 -n TG -d D --kv K` and then
# `llama-bench -p 0 -n TG -d D -ctk K -ctv K` (llama.cpp's defaults otherwise: flash attention auto, mmap), and for
# every prompt length L `gemma bench -p L -n 0` then `llama-bench -p L -n 0`: interleaved, so that load changes hit
# both sides alike. Both tools prefill the depth untimed and print tok/s over REPS repetitions (median for gemma,
# mean for llama-bench). Prints one line per test and round, then the ratios of the medians over rounds. A depth
# plus TG must stay within the model's context (32,768 on 270M: use --depths 32640 for "after 32K").
#
# llama-bench: $LLAMA_BENCH, else scripts/llama-peer.sh's (llama-cpp-python's llama.cpp, built once into
# .build/llama.cpp-peer; about 10-15 minutes on 2 cores). Wants a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/swift-flags.sh

DEPTHS=8192,32768 KVS=f16,q8_0 PPS=16384,32768 TG=64 ROUNDS=2 REPS=2 THREADS=2 MODEL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --depths) DEPTHS=$2; shift 2 ;;
        --kv) KVS=$2; shift 2 ;;
        --pp) PPS=$2; shift 2 ;;
        --tg) TG=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --threads|-t) THREADS=$2; shift 2 ;;
        --model|-m) MODEL=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$MODEL" ] || MODEL=$(scripts/fetch-model.sh)
[ -x "$GEMMA_BIN" ] || swift build --product gemma "${SWIFT_FLAGS[@]}"

[ -n "${LLAMA_BENCH:-}" ] || LLAMA_BENCH=$(scripts/llama-peer.sh)/llama-bench

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) vCPU, threads $THREADS, load $(cut -d' ' -f1 /proc/loadavg)"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
# tok/s of one run, or nan with the tool's error on stderr (e.g. a depth past the model's context).
gemma_tps() { "$GEMMA_BIN" bench -m "$MODEL" -t "$THREADS" -r "$REPS" --json "$@" |
    python3 -c 'import json,sys; t=sys.stdin.read(); print(next(v for k, v in json.loads(t).items() if k in ("tg", "pp"))["tok_s"] if t.strip() else "nan")'; }
llama_tps() { "$LLAMA_BENCH" -m "$MODEL" -t "$THREADS" -r "$REPS" -o json "$@" 2>/dev/null |
    python3 -c 'import json,sys; t=sys.stdin.read(); print(json.loads(t)[0]["avg_ts"] if t.strip() else "nan")'; }
for round in $(seq "$ROUNDS"); do
    for d in ${DEPTHS//,/ }; do
        for kv in ${KVS//,/ }; do
            g=$(gemma_tps -p 0 -n "$TG" -d "$d" --kv "$kv"); l=$(llama_tps -p 0 -n "$TG" -d "$d" -ctk "$kv" -ctv "$kv")
            echo "round $round  tg$TG @ d$d  kv $kv  gemma $g  llama.cpp $l" | tee -a "$results"
        done
    done
    for p in ${PPS//,/ }; do
        g=$(gemma_tps -p "$p" -n 0); l=$(llama_tps -p "$p" -n 0)
        echo "round $round  pp$p  kv f16  gemma $g  llama.cpp $l" | tee -a "$results"
    done
done
python3 - "$results" <<'EOF'
import statistics, sys, collections
rows = collections.defaultdict(lambda: ([], []))
for line in open(sys.argv[1]):
    f = line.split()
    key = " ".join(f[2:f.index("gemma")])
    rows[key][0].append(float(f[f.index("gemma") + 1])); rows[key][1].append(float(f[f.index("llama.cpp") + 1]))
print("medians over rounds (tok/s):")
for key, (g, l) in rows.items():
    mg, ml = statistics.median(g), statistics.median(l)
    print(f"  {key:28s} gemma {mg:8.1f}  llama.cpp {ml:8.1f}  {mg / ml:.2f}x")
EOF
