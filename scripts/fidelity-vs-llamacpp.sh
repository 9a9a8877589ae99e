#!/usr/bin/env bash
# The engine's fidelity against the exact reference, beside llama.cpp's (issue 5 item 6).
#
# Text: the first 1024 tokens of ppl-public.txt (the "input_ids" of Tests/Fixtures/reference-topk.json, as
# llama-perplexity tokenizes them), one causal sequence from position 0, logits at every position.
# Reference: scripts/reference/gemma3_ref.py (exact f64 compute, f32 between ops) -> REF.npy (1024 x 262144 f32).
# Engine: `gemma dump-logits` (hidden subcommand) in each mode -> raw f32; metrics by scripts/reference/fidelity.py:
# mean / p99 / max KL(ref || engine) over the full softmax, top-1 agreement, max |logit difference|.
# llama.cpp's figures are those of Tests/Fixtures/fidelity-llamacpp.txt (measured with llama.cpp 0c1e57098).
#
# Usage: scripts/fidelity-vs-llamacpp.sh [--modes fast:f16,exact:f32] [--ref REF.npy] [--work DIR] [--batch 64]
#                                        [--threads T] [--keep] [--json]
#   --modes   PRECISION:KV pairs (precision fast|exact, KV f32|f16|bf16|q8_0); default fast:f16 (the engine's
#             default path) and exact:f32 (--exact --kv f32)
#   --ref     reference logits; default: $WORK/ref1024.npy, else computed there (~2 min).
#             Whatever file is used is first checked against reference-topk.json (top-32 logits of all 1024
#             positions within 1e-4), so a file made from other ids is never used.
#   --work    scratch folder (default /tmp/fidelity-vs-llamacpp); the engine's logits need 1 GB per mode there
#             and are deleted after scoring unless --keep
#   Env: GEMMA_MODEL (default: scripts/fetch-model.sh), GEMMA_BIN (default .build/release/gemma, built if missing).
# Not part of the unit-test suite: it takes a few minutes and 2-3 GB of disk.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_GEMMA_BIN="${GEMMA_BIN:-}"
source scripts/swift-flags.sh
GEMMA_BIN="${ENV_GEMMA_BIN:-$GEMMA_BIN}"

MODES="fast:f16,exact:f32"; REF=""; WORK="/tmp/fidelity-vs-llamacpp"; BATCH=64; THREADS="$(nproc)"; KEEP=0; JSON=0
while [ $# -gt 0 ]; do
  case "$1" in
    --modes) MODES="$2"; shift 2 ;;
    --ref) REF="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --threads|-t) THREADS="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --json) JSON=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "[fidelity] $*" >&2; }
MODEL="${GEMMA_MODEL:-$(scripts/fetch-model.sh)}"
if [ ! -x "$GEMMA_BIN" ]; then
  log "building $GEMMA_BIN"
  swift build "${SWIFT_FLAGS[@]}" --product gemma >&2
fi
if ! "$GEMMA_BIN" dump-logits --help >/dev/null 2>&1; then
  echo "$GEMMA_BIN has no dump-logits subcommand (rebuild it, or set GEMMA_BIN)" >&2; exit 1
fi
python3 -c 'import numpy, gguf' 2>/dev/null || { log "installing numpy and gguf"; pip install -q numpy gguf >&2; }

IDS="Tests/Fixtures/reference-topk.json"
GOLDEN="Tests/Fixtures/fidelity-llamacpp.txt"
mkdir -p "$WORK"

# A reference file is used only if its logits match the fixture's top-32 (same ids, same model, exact path).
ref_ok() {
  python3 - "$1" "$IDS" <<'EOF'
import json, sys
import numpy as np
ref = np.load(sys.argv[1], mmap_mode="r")
fx = json.load(open(sys.argv[2]))
n = len(fx["input_ids"])
if ref.ndim != 2 or ref.shape[0] != n:
    sys.exit(f"{sys.argv[1]}: shape {ref.shape}, want ({n}, vocab)")
worst = 0.0
for p in range(n):
    ids = [t[0] for t in fx["top"][p]]
    vals = np.array([t[1] for t in fx["top"][p]])
    worst = max(worst, float(np.abs(np.asarray(ref[p, ids], dtype=np.float64) - vals).max()))
if worst > 1e-4:
    sys.exit(f"{sys.argv[1]}: top-32 logits differ from {sys.argv[2]} by up to {worst:.3g}")
print(f"{sys.argv[1]}: matches {sys.argv[2]} (top-32 logits of {n} positions within {worst:.1e})")
EOF
}

if [ -z "$REF" ]; then
  if [ -f "$WORK/ref1024.npy" ] && ref_ok "$WORK/ref1024.npy" >&2; then REF="$WORK/ref1024.npy"; fi
  if [ -z "$REF" ]; then
    REF="$WORK/ref1024.npy"
    log "computing the reference logits -> $REF (a few minutes)"
    python3 scripts/reference/gemma3_ref.py "$MODEL" --ids-file "$IDS" --out "$REF" >&2
    ref_ok "$REF" >&2
  fi
else
  ref_ok "$REF" >&2
fi

RESULTS="$WORK/results.jsonl"; : > "$RESULTS"
IFS=',' read -r -a mode_list <<< "$MODES"
for mode in "${mode_list[@]}"; do
  precision="${mode%%:*}"; kv="${mode#*:}"
  case "$precision" in fast) flag=() ;; exact) flag=(--exact) ;; *) echo "bad mode $mode (precision fast|exact)" >&2; exit 2 ;; esac
  out="$WORK/engine-$precision-$kv.f32"
  log "gemma dump-logits ${flag[*]:-} --kv $kv --batch $BATCH -t $THREADS"
  "$GEMMA_BIN" dump-logits --model "$MODEL" --ids-file "$IDS" --out "$out" "${flag[@]}" --kv "$kv" --batch "$BATCH" -t "$THREADS" >&2
  metrics="$(python3 scripts/reference/fidelity.py "$REF" "$out" --json)"
  echo "{\"mode\":\"$mode\",\"metrics\":$metrics}" >> "$RESULTS"
  [ "$KEEP" = 1 ] || rm -f "$out"
done

python3 - "$RESULTS" "$GOLDEN" "$JSON" "$BATCH" <<'EOF'
import json, re, sys
results = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
golden_path, as_json, batch = sys.argv[2], sys.argv[3] == "1", sys.argv[4]
# llama.cpp rows of the goldens file ("| setting | mean KL | p99 KL | n/N = x% | max diff |"); fall back to the
# default row's published numbers if the file cannot be read.
llama = []
try:
    for line in open(golden_path):
        m = re.match(r"\|\s*(.+?)\s*\|\s*([\d.e+-]+)\s*\|\s*([\d.e+-]+)\s*\|\s*(\d+)/(\d+)\s*=\s*([\d.]+)%\s*\|\s*([\d.]+)\s*\|", line)
        if m and not m.group(1).startswith("llama.cpp default vs"):
            llama.append({"setting": "llama.cpp " + m.group(1), "mean_kl": float(m.group(2)), "p99_kl": float(m.group(3)),
                          "top1_agree": int(m.group(4)), "positions": int(m.group(5)), "top1_agree_pct": float(m.group(6)),
                          "max_abs_logit_diff": float(m.group(7))})
except OSError:
    pass
if not llama:
    llama = [{"setting": "llama.cpp default: 2 threads, flash attention on, f16 KV", "mean_kl": 5.32e-3, "p99_kl": 3.20e-2,
              "top1_agree": 987, "positions": 1024, "top1_agree_pct": 96.39, "max_abs_logit_diff": 7.75}]
names = {"fast:f16": "engine default (fast precision, f16 KV)", "exact:f32": "engine --exact --kv f32"}
rows = [{"setting": names.get(r["mode"], f"engine {r['mode'].replace(':', ' precision, ')} KV"), **r["metrics"]} for r in results]
if as_json:
    print(json.dumps({"text": "first 1024 tokens of ppl-public.txt", "batch": int(batch), "engine": rows, "llamacpp": llama}))
    sys.exit()
print("Fidelity vs the exact reference: first 1024 tokens of ppl-public.txt, one causal sequence, all positions;")
print(f"KL(reference || engine) over the full 262,144-entry softmax in float64 (engine prompt chunks of {batch} tokens).")
print(f"{'':58} {'mean KL':>9} {'p99 KL':>9} {'max KL':>9} {'top-1 agrees':>19} {'max |dlogit|':>12}")
for r in rows + llama:
    mx = f"{r['max_kl']:9.2e}" if "max_kl" in r else f"{'':9}"
    print(f"{r['setting'][:58]:58} {r['mean_kl']:9.2e} {r['p99_kl']:9.2e} {mx} "
          f"{r['top1_agree']:>5}/{r['positions']} = {r['top1_agree_pct']:6.2f}% {r['max_abs_logit_diff']:12.3g}")
print(f"llama.cpp rows: {golden_path} (llama.cpp 0c1e57098, CPU; its default is flash attention auto = on, f16 KV).")
EOF
