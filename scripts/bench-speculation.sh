#!/usr/bin/env bash
# Speculative decoding against plain decoding, interleaved: for each prompt of Benchmarks/speculation (copy-*: text
# the model rewrites with small edits; free-*: free generation), each round runs plain decoding and each proposer
# once, in turn, with the same sampling and seed (round r: seed 41 + r). Prints the tokens generated (up to -n, or
# <eos>), the median decode tok/s of each, the ratio to plain, and the acceptance of the first round (tokens
# accepted of tokens proposed).
#
#   scripts/bench-speculation.sh [--rounds R] [-n TOKENS] [--temp T] [--draft-max N] [--model TARGET]
#                                [--draft-model PATH] [--threads T]
#
# Greedy (--temp 0, the default) also checks that every run's tokens are the plain run's.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/swift-flags.sh

rounds=3 tokens=320 temp=0 draft_max=3 draft_model="" threads="" model=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        -n) tokens=$2; shift 2 ;;
        --temp) temp=$2; shift 2 ;;
        --model) model=$2; shift 2 ;;
        --draft-max) draft_max=$2; shift 2 ;;
        --draft-model) draft_model=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

[ -x "$GEMMA_BIN" ] || swift build --product gemma "${SWIFT_FLAGS[@]}"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; ${threads:-$(nproc)} threads"
echo "$rounds rounds, $tokens tokens, temperature $temp, draft-max $draft_max, model ${model:-the default (270M Q4_K_M)}"

modes=("plain" "ngram")
[ -n "$draft_model" ] && modes+=("$draft_model")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq "$rounds"); do
    for prompt in Benchmarks/speculation/*.txt; do
        name=$(basename "$prompt" .txt)
        for i in "${!modes[@]}"; do
            mode=${modes[$i]}
            args=(generate --file "$prompt" -n "$tokens" --temp "$temp" --seed $((41 + r)) --json)
            [ -n "$threads" ] && args+=(-t "$threads")
            [ -n "$model" ] && args+=(-m "$model")
            [ "$mode" != plain ] && args+=(--draft "$mode" --draft-max "$draft_max")
            "$GEMMA_BIN" "${args[@]}" 2>/dev/null > "$out/$name.$i.$r.json"
        done
    done
done
python3 - "$out" "$rounds" "$temp" "${modes[@]}" <<'EOF'
import json, statistics, sys, glob, os
out, rounds, temp, modes = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
names = sorted({os.path.basename(p).split('.')[0] for p in glob.glob(f"{out}/*.json")})
label = lambda m: m if m in ("plain", "ngram") else "model " + os.path.basename(m.rstrip('/'))
print(f"| prompt | tokens | {' | '.join(label(m) + ' tok/s' for m in modes)} | {' | '.join(label(m) + ' x' for m in modes[1:])} | acceptance |")
print("|---" * (2 * len(modes)) + "|---|---|")
bad = 0
for n in names:
    speeds, acc, counts = [], [], []
    for i, m in enumerate(modes):
        runs = [json.load(open(f"{out}/{n}.{i}.{r}.json")) for r in range(1, rounds + 1)]
        speeds.append(statistics.median(len(j["tokens"]) / j["generate_ms"] * 1000 for j in runs))
        counts += [len(j["tokens"]) for j in runs]
        if i > 0:
            acc.append(f"{runs[0]['draft_accepted']}/{runs[0]['draft_proposed']}")
        if temp == 0 and i > 0:
            plain = json.load(open(f"{out}/{n}.0.1.json"))["tokens"]
            bad += sum(j["tokens"] != plain for j in runs)
    cells = [f"{s:.1f}" for s in speeds] + [f"{s / speeds[0]:.2f}" for s in speeds[1:]]
    print(f"| {n} | {min(counts)}-{max(counts)} | {' | '.join(cells)} | {', '.join(acc)} |")
if temp == 0:
    print("greedy tokens identical to plain decoding in every run" if bad == 0 else f"MISMATCH: {bad} runs differ from plain decoding")
    sys.exit(1 if bad else 0)
EOF
