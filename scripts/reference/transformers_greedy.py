#!/usr/bin/env python3
"""transformers reads an exported folder as we do: greedy ids of Gemma3ForCausalLM against `gemma generate`.

`gemma convert model.gguf DIR --type f32` writes a Hugging Face folder; this loads DIR with transformers
(AutoModelForCausalLM in float32, eager attention, CPU) and its tokenizer (AutoTokenizer, from the exported
tokenizer.model + tokenizer_config.json), and for prompts of Tests/Fixtures/reference-greedy.json:
  - checks that the tokenizer gives the fixture's prompt ids (llama.cpp's tokenization, BOS added);
  - decodes greedily (argmax of the full recomputation at every step, no end-of-sequence stop) and compares the ids
    with `gemma generate --ids ... -n N --temp 0 --ignore-eos --json --exact -m DIR`.
Where they differ it prints the first differing step and transformers' top-1 minus top-2 logit margin there (a near
tie explains a flip between two correct f32 implementations).

With --tiny, DIR is instead a folder made from Tests/Fixtures/gemma3-tiny-text (e.g. converted to GGUF and back): its
logits in transformers are compared with the ones transformers computed from the original folder
(fixtures.safetensors), which checks that the exported config.json means the same model (query_pre_attn_scalar 48,
window 6, linear RoPE x8 on the global layer).

Usage: scripts/reference/transformers_greedy.py DIR [--prompts 4] [-n 32] [--gemma .build/release/gemma]
       scripts/reference/transformers_greedy.py DIR --tiny
Needs torch (CPU), transformers (5.23), sentencepiece and protobuf. Not part of the unit-test suite.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

REPO = Path(__file__).resolve().parents[2]


def greedy(model, prompt_ids, n):
    """n argmax tokens after prompt_ids, each step recomputing the whole sequence; also each step's top-2 margin."""
    ids = list(prompt_ids)
    out, margins = [], []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids])).logits[0, -1].double()
            top = torch.topk(logits, 2)
            out.append(int(top.indices[0]))
            margins.append(float(top.values[0] - top.values[1]))
            ids.append(out[-1])
    return out, margins


def ours(gemma, folder, prompt_ids, n):
    cmd = [gemma, "generate", "-m", folder, "--ids", ",".join(map(str, prompt_ids)), "-n", str(n), "--temp", "0",
           "--ignore-eos", "--json", "--exact"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {res.stderr.strip()}")
    return json.loads(res.stdout)["tokens"]


def tiny(folder):
    from safetensors.torch import load_file
    fx = load_file(str(REPO / "Tests/Fixtures/gemma3-tiny-text/fixtures.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    worst = 0.0
    for s in ["chat", "window_plus", "long"]:
        with torch.no_grad():
            logits = model(fx[s + ".input_ids"].long()[None]).logits[0]
        d = float((logits - fx[s + ".logits"]).abs().max())
        worst = max(worst, d)
        print(f"{s:12s} max |logit - transformers' logit of the original folder| = {d:.3g}")
    sys.exit(0 if worst < 1e-4 else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--prompts", type=int, default=4, help="how many of the 14 prompts (default 4)")
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--gemma", default=str(REPO / ".build/release/gemma"))
    ap.add_argument("--tiny", action="store_true", help="DIR comes from the tiny fixture: compare its logits")
    a = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    if a.tiny:
        tiny(a.folder)
    model = AutoModelForCausalLM.from_pretrained(a.folder, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    tok = AutoTokenizer.from_pretrained(a.folder)
    print(f"loaded {type(model).__name__} ({sum(p.numel() for p in model.parameters()):,} parameters), "
          f"tokenizer {type(tok).__name__}")

    fixture = json.load(open(REPO / "Tests/Fixtures/reference-greedy.json"))
    same_ids = same_tok = 0
    results = fixture["results"][: a.prompts]
    for r in results:
        enc = tok(r["prompt"])["input_ids"]
        tok_ok = enc == r["prompt_ids"]
        same_tok += tok_ok
        theirs, margins = greedy(model, r["prompt_ids"], a.n)
        mine = ours(a.gemma, a.folder, r["prompt_ids"], a.n)
        if theirs == mine:
            same_ids += 1
            detail = "identical"
        else:
            i = next(i for i, (x, y) in enumerate(zip(theirs, mine)) if x != y)
            detail = (f"first difference at step {i}: transformers {theirs[i]}, ours {mine[i]} "
                      f"(transformers' top-2 margin there {margins[i]:.4f})")
        print(f"{r['name']:24s} tokenizer {'==' if tok_ok else '!='} fixture ids; {a.n} greedy ids {detail}")
    print(f"transformers vs gemma (--exact) on {len(results)} prompts: {same_ids} identical greedy id lists, "
          f"{same_tok} tokenizations equal to llama.cpp's")
    sys.exit(0 if same_ids == len(results) and same_tok == len(results) else 1)


if __name__ == "__main__":
    main()
