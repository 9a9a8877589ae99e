#!/usr/bin/env bash
# Fidelity of the long path on the real 270M (issue 18): one causal sequence of 32,768 tokens, the reference's
# top-32 at 18 positions from 511 to 32,767 against our engine's logits with each KV storage type.
#
#   scripts/reference/long_context_32k.sh [GEMMA_BIN] [MODEL] [WORKDIR] [KV types...]
#   defaults: .build/release/gemma, ~/.cache/swift-gemma/gemma-3-270m-q4_k_m.gguf, /tmp/long32k, f16 f32
#
# 1. make_long_context_refs.py: ppl-public.txt is 9,883 tokens, so the text is repeated (4 copies, joined by its
#    trailing newline) and tokenized by `gemma tokenize --no-special`; the first 32,768 ids are one sequence.
#    Writes Tests/Fixtures/reference-long-context-32k.json (top-32 + lse; float64 reference, gemma3_ref.py) and the
#    reference's full float32 logits at those positions (WORKDIR/ref32k-logits.npy). 20-60 min on 2 cores.
# 2. engine_logit_rows.py: `gemma dump-logits --kv KV` over the same ids; only the rows at the 18 positions are kept
#    (the 34 GB dump is read as it is written and hole-punched behind).
# 3. compare_long_context.py: top-1 agreement (near ties < 0.05), max |dlogit| over the reference top-32, over the
#    vocabulary, KL.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-.build/release/gemma}
MODEL=${2:-$HOME/.cache/swift-gemma/gemma-3-270m-q4_k_m.gguf}
WORK=${3:-/tmp/long32k}
shift $(( $# < 3 ? $# : 3 )) || true
KVS=${*:-f16 f32}
PY=${PYTHON:-python3}
POS=511,512,1023,1024,4095,4096,8191,8192,9882,12287,16383,16384,20479,24575,24576,28671,32766,32767
mkdir -p "$WORK"
if [ ! -f "$WORK/ref32k-logits.npy" ]; then
  /usr/bin/time -f "reference: wall %e s, peak RSS %M KiB" \
    "$PY" scripts/reference/make_long_context_refs.py "$MODEL" --gemma-bin "$BIN" --repeat-text --n-tokens 32768 \
      --positions "$POS" --out Tests/Fixtures/reference-long-context-32k.json --ids-out "$WORK/ids32k.json" \
      --logits-out "$WORK/ref32k-logits.npy"
fi
for kv in $KVS; do
  if [ ! -f "$WORK/eng-$kv.npy" ]; then
    "$PY" scripts/reference/engine_logit_rows.py --positions "$POS" --vocab 262144 --out "$WORK/eng-$kv.npy" \
      --tmp "$WORK/dump-$kv.f32" -- /usr/bin/time -v "$BIN" dump-logits -m "$MODEL" --ids-file "$WORK/ids32k.json" --kv "$kv"
  fi
  echo "== KV $kv"
  "$PY" scripts/reference/compare_long_context.py Tests/Fixtures/reference-long-context-32k.json "$WORK/eng-$kv.npy" \
    --ref-logits "$WORK/ref32k-logits.npy"
done
