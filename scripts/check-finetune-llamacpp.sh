#!/usr/bin/env bash
# A LoRA fine-tune as llama.cpp runs it, beside the engine (issue 21): the merged GGUF and the adapter GGUF that
# `gemma finetune --lora-rank R --out MERGED.gguf --adapter-out DIR` writes (DIR/adapter.gguf) give our greedy answers.
#
#   scripts/check-finetune-llamacpp.sh BASE.gguf MERGED.gguf ADAPTER.gguf PROMPTS.txt [-n 32] [--threads T]
#
# PROMPTS.txt: one raw prompt a line (no chat template; BOS added; \n, \t and \\ escapes understood; blank lines
# skipped). For each prompt, greedily (temperature 0, top-k 1, at most N tokens, stopping at end of generation):
#   merged    llama.cpp's llama-completion on MERGED.gguf
#   lora      llama-completion on BASE.gguf with --lora ADAPTER.gguf (the adapter applied at run time, unmerged)
#   gemma     `gemma generate --temp 0` on MERGED.gguf
# and compares the texts (and whether each stopped at end of generation). Prints same/different per prompt and the
# totals; exits 1 if any differ. The merged GGUF's trained tensors are f32, so both engines compute them nearly
# exactly; the LoRA run multiplies the quantized base with llama.cpp's 8-bit-quantized activations, so where the top
# two logits are within about 0.1 of each other it can pick the other token (as llama.cpp on the base model alone
# does): compare the margin (`gemma dump-logits`) before calling a difference a bug.
# llama.cpp: scripts/llama-peer.sh (built once). Env: GEMMA_BIN (default .build/release/gemma, built if missing).
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
BASE=$(realpath "$1") MERGED=$(realpath "$2") ADAPTER=$(realpath "$3") PROMPTS=$(realpath "$4")
shift 4
N=32 THREADS=$(nproc)
while [ $# -gt 0 ]; do
    case "$1" in
        -n) N=$2; shift 2 ;;
        --threads|-t) THREADS=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
ENV_GEMMA_BIN="${GEMMA_BIN:-}"
source scripts/swift-flags.sh
GEMMA_BIN="${ENV_GEMMA_BIN:-$GEMMA_BIN}"
[ -x "$GEMMA_BIN" ] || swift build --product gemma "${SWIFT_FLAGS[@]}" >&2
LLAMA=$(scripts/llama-peer.sh)/llama-completion

python3 - "$BASE" "$MERGED" "$ADAPTER" "$PROMPTS" "$N" "$THREADS" "$LLAMA" "$GEMMA_BIN" <<'EOF'
import json, os, subprocess, sys, tempfile
base, merged, adapter, prompts, n, threads, llama, gemma = sys.argv[1:]

def unescape(line):
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in "nt\\":
            out.append({"n": "\n", "t": "\t", "\\": "\\"}[line[i + 1]]); i += 2
        else:
            out.append(line[i]); i += 1
    return "".join(out)

def llama_cpp(model, prompt, lora=None):
    # llama-completion drops one trailing newline of a prompt file: add one so that the prompt stays as given.
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(prompt + "\n")
    cmd = [llama, "-m", model, "-f", f.name, "--no-escape", "-no-cnv", "--no-display-prompt", "--temp", "0",
           "--top-k", "1", "--seed", "0", "-n", n, "-c", "1024", "-t", threads, "--no-warmup"]
    if lora: cmd += ["--lora", lora]
    r = subprocess.run(cmd, capture_output=True)
    os.unlink(f.name)
    if r.returncode != 0:
        sys.exit(f"llama-completion failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr.decode(errors='replace')[-2000:]}")
    # stdout: the generated text, " [end of text]\n" when it stopped at end of generation, then "\n\n".
    out = r.stdout.decode(errors="replace")
    if out.endswith("\n\n"): out = out[:-2]
    eog = out.endswith(" [end of text]\n")
    return (out[:-len(" [end of text]\n")] if eog else out), eog

def ours(model, prompt):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(prompt)
    cmd = [gemma, "generate", "-m", model, "--file", f.name, "--temp", "0", "-n", n, "-t", threads, "--json"]
    r = subprocess.run(cmd, capture_output=True)
    os.unlink(f.name)
    if r.returncode != 0:
        sys.exit(f"gemma generate failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr.decode(errors='replace')[-2000:]}")
    j = json.loads(r.stdout)
    return j["text"], j["stop_reason"] != "length"

lines = [unescape(l.rstrip("\n")) for l in open(prompts, encoding="utf-8")]
lines = [l for l in lines if l.strip()]
same = {"merged": 0, "lora": 0}
for i, p in enumerate(lines, 1):
    g = ours(merged, p)
    runs = {"merged": llama_cpp(merged, p), "lora": llama_cpp(base, p, lora=adapter)}
    verdict = "  ".join(f"{k} {'same' if v == g else 'DIFFERENT'}" for k, v in runs.items())
    print(f"prompt {i}: {verdict}  {json.dumps(p)} -> {json.dumps(g[0])}{' <eog>' if g[1] else ''}")
    for k, v in runs.items():
        if v == g: same[k] += 1
        else: print(f"    llama.cpp {k}: {json.dumps(v[0])}{' <eog>' if v[1] else ''}")
    sys.stdout.flush()
total = len(lines)
print(f"identical to gemma: merged {same['merged']}/{total}, base + LoRA {same['lora']}/{total}")
sys.exit(0 if same["merged"] == total and same["lora"] == total else 1)
EOF
