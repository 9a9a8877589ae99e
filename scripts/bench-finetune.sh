#!/usr/bin/env bash
# Training speed, gemma finetune beside PyTorch (transformers + PEFT, f32, eager attention) on the same model, data,
# batch and threads, interleaved over rounds (issue 21).
#
#   scripts/bench-finetune.sh [--rounds 2] [--steps 4] [--batch 8] [--threads 2] [--full] [--data FILE.jsonl]
#                             [--model GGUF|HF_FOLDER] [--qlora]
#
# The model is the fetched 270M Q4_K_M unless --model says otherwise; PyTorch gets a GGUF as an f32 Hugging Face
# folder (`gemma convert`, the same values), a folder as it is (for the 1B's shapes:
# scripts/reference/make_random_size.py makes one with random weights). The data default to the extraction task of scripts/finetune_task.py; gemma tokenizes it
# (`gemma finetune --dump-tokens`) and PyTorch trains on those very ids, padded per batch. LoRA rank 16 on every
# projection unless --full. Each side runs STEPS + 1 steps and the first (warm-up) is left out; tokens/s counts real
# tokens (not padding). transformers computes the head on every position, gemma on the learned ones only: what each
# user gets. Needs the reference venv (.venv-ref, see scripts/reference/make_training_refs.py) with peft.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=2 steps=4 batch=8 threads=2 full=0 data="" qlora=0
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --full) full=1; shift ;;
        --data) data=$2; shift 2 ;;
        --model) GEMMA_MODEL=$2; shift 2 ;;
        --qlora) qlora=1; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
GEMMA=${GEMMA_BIN:-.build/release/gemma}
PY=${REF_PYTHON:-.venv-ref/bin/python}
model=${GEMMA_MODEL:-$HOME/.cache/swift-gemma/gemma-3-270m-q4_k_m.gguf}
out=.build/bench-finetune
mkdir -p "$out"
[ -x "$PY" ] || { echo "no reference venv at $PY: python3 -m venv .venv-ref && .venv-ref/bin/pip install /opt/wheels/torch-*.whl transformers==5.23.0 safetensors peft" >&2; exit 1; }
if [ -z "$data" ]; then
    python3 scripts/finetune_task.py data "$out/data" >/dev/null
    data=$out/data/train.jsonl
fi
if [ -d "$model" ]; then
    hf=$model
else
    hf=$out/hf-f32
    [ -d "$hf" ] || "$GEMMA" convert "$model" "$hf" --type f32 >/dev/null 2>&1
fi
"$GEMMA" finetune -m "$model" --data "$data" --dump-tokens "$out/tokens.json" 2>/dev/null
mode=(--lora-rank 16); torch_mode=(--lora-rank 16)
[ "$qlora" = 1 ] && mode+=(--qlora)
[ "$full" = 1 ] && { mode=(--full); torch_mode=(--full); }
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $threads threads; $model; batch $batch, $steps steps after a warm-up step; ${mode[*]}"
for r in $(seq 1 "$rounds"); do
    "$GEMMA" finetune -m "$model" --data "$data" "${mode[@]}" --steps $((steps + 1)) --batch "$batch" --threads "$threads" \
        --lr 1e-4 --save-every 0 --out "$out/trained$([ -d "$model" ] || echo .gguf)" 2>&1 | tr '\r' '\n' > "$out/gemma.log"
    g=$(python3 - "$out/gemma.log" <<'EOF'
import re, sys
rows = [tuple(map(float, m.groups())) for m in re.finditer(r"step (\d+)/\d+ .*?(\d+) tokens in ([\d.]+) s", open(sys.argv[1]).read())]
rows = [(t, s) for (k, t, s) in rows if k > 1]
print(f"{sum(t for t, _ in rows) / sum(s for _, s in rows):.1f}")
EOF
)
    t=$("$PY" scripts/reference/torch_finetune_speed.py "$hf" "$out/tokens.json" "${torch_mode[@]}" --steps "$steps" \
        --batch "$batch" --threads "$threads" 2>/dev/null | python3 -c 'import json, sys; print("%.1f" % json.load(sys.stdin)["tokens_per_second"])')
    echo "round $r  gemma $g tok/s  pytorch $t tok/s  ratio $(python3 -c "print(f'{$g / $t:.2f}')")"
done
