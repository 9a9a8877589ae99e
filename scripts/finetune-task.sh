#!/usr/bin/env bash
# A task the base 270M cannot do, learned (issue 21): 1,000 generated examples of a fixed-format extraction
# (scripts/finetune_task.py: a sentence about a person -> one line of JSON), exact match on 200 held-out examples
# before and after fine-tuning, and the same after int4-per-block quantization of a plainly trained model (PTQ) and of
# one trained with --qat int4-block (QAT), with the held-out loss (perplexity = exp(loss)) of each.
#
#   scripts/finetune-task.sh [--out DIR] [--model GGUF] [--skip-base] [--skip-qat] [-- extra finetune options]
#
# Defaults: the fetched 270M Q4_K_M, LoRA rank 16 (alpha 32) on every projection, 1 epoch of batches of 8, peak
# learning rate 1e-3 (warm-up 5%, cosine), seed 0; the held-out answers are the server's greedy replies
# (`gemma serve`, chat template, temperature 0), compared after stripping surrounding white space. Everything goes to
# DIR (default .build/finetune-task): data/, the models, their logs, and results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/finetune-task
model=${GEMMA_MODEL:-$HOME/.cache/swift-gemma/gemma-3-270m-q4_k_m.gguf}
skip_base=0 skip_qat=0
extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --model) model=$2; shift 2 ;;
        --skip-base) skip_base=1; shift ;;
        --skip-qat) skip_qat=1; shift ;;
        --) shift; extra=("$@"); break ;;
        *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
GEMMA=${GEMMA_BIN:-.build/release/gemma}
[ -x "$GEMMA" ] || { echo "build first: make (or scripts/setup.sh)" >&2; exit 1; }
[ -f "$model" ] || { echo "no model at $model (scripts/fetch-model.sh)" >&2; exit 1; }
mkdir -p "$out"
results=$out/results.txt
echo "# $(date -u +%FT%TZ)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) threads" | tee "$results"
python3 scripts/finetune_task.py data "$out/data" --train 1000 --test 200 --seed 7

# Exact match of a model's greedy replies on the held-out examples, through a server of its own.
accuracy() {
    local m=$1 name=$2 port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$GEMMA" serve -m "$m" --port "$port" --parallel 4 2>"$out/serve-$name.log" &
    local pid=$!
    for _ in $(seq 1 120); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
        sleep 0.5
    done
    local line
    line=$(python3 scripts/finetune_task.py eval --url "http://127.0.0.1:$port" --data "$out/data/test.jsonl" --show 2 | tee "$out/eval-$name.txt" | tail -1)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$name: $line" | tee -a "$results"
}

# The held-out loss (mean cross-entropy per answer token) of a model, as `gemma finetune --eval-only` computes it.
heldout_loss() {
    local m=$1 name=$2 loss
    loss=$("$GEMMA" finetune -m "$m" --data "$out/data/test.jsonl" --eval-only 2>&1 | sed -n 's/^eval loss \([0-9.]*\).*/\1/p' | tail -1)
    python3 -c "import math; print(f'$name: held-out loss $loss, perplexity {math.exp($loss):.4f}')" | tee -a "$results"
}

train() {  # train NAME [finetune options]
    local name=$1; shift
    local start=$SECONDS
    "$GEMMA" finetune -m "$model" --data "$out/data/train.jsonl" --out "$out/$name.gguf" \
        --lora-rank 16 --epochs 1 --batch 8 --lr 1e-3 --save-every 0 --adapter-out "$out/$name-adapter" \
        "$@" "${extra[@]}" 2>&1 | tr '\r' '\n' | grep -v '^$' > "$out/train-$name.log"
    echo "$name: trained in $((SECONDS - start)) s; $(grep '^step' "$out/train-$name.log" | tail -1)" | tee -a "$results"
}

[ "$skip_base" = 1 ] || { accuracy "$model" base; heldout_loss "$model" base; }
train lora
accuracy "$out/lora.gguf" lora
heldout_loss "$out/lora.gguf" lora
if [ "$skip_qat" = 0 ]; then
    "$GEMMA" quantize "$out/lora.gguf" "$out/lora-ptq-q4_0.gguf" --to int4-block --force 2>/dev/null
    accuracy "$out/lora-ptq-q4_0.gguf" "ptq-int4-block"
    heldout_loss "$out/lora-ptq-q4_0.gguf" "ptq-int4-block"
    train qat --qat int4-block
    "$GEMMA" quantize "$out/qat.gguf" "$out/qat-q4_0.gguf" --to int4-block --force 2>/dev/null
    accuracy "$out/qat-q4_0.gguf" "qat-int4-block"
    heldout_loss "$out/qat-q4_0.gguf" "qat-int4-block"
fi
echo "results: $results"
