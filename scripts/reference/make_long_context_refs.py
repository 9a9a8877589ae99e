#!/usr/bin/env python3
"""Writes Tests/Fixtures/reference-long-context.json: exact reference next-token distributions at positions past
several sliding windows (512 for 270M) of ONE causal sequence of the first N (default 4097) tokens of ppl-public.txt.

Tokenization is llama-perplexity's: the file minus ONE trailing '\\n', BOS (id 2) added, special spellings NOT parsed.
The ids come from one of:
  --ids-file IDS.json      a JSON list of ids (or {"ids": [...]} / {"input_ids": [...]}), the whole text or its prefix;
  --gemma-bin PATH         the repo's CLI: runs `PATH tokenize --model MODEL --no-special --json --file TMP` on the
                           stripped text (BOS is added by the CLI).
Either way the first 1024 ids are checked against reference-topk.json (llama.cpp's tokenization), and when the whole
text is given, its length against llama-perplexity's 9883 tokens.

Usage:
  python3 scripts/reference/make_long_context_refs.py MODEL (--ids-file IDS.json | --gemma-bin .build/release/gemma)
      [--text Tests/Fixtures/ppl-public.txt] [--n-tokens 4097] [--positions 511,512,...] [--topk 32]
      [--out Tests/Fixtures/reference-long-context.json] [--logits-out LOGITS.npy]
      [--check-topk Tests/Fixtures/reference-topk.json]

The default positions straddle every 512-window boundary up to 4096, and include 511/512/1023 (also in
reference-topk.json, computed there from a 1024-token sequence: a cross-check, since causal attention makes them
independent of later tokens). --logits-out also saves the full float32 logits at those positions for fidelity.py.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gemma3_ref import Gemma3Ref, compare_topk, load_ids, lse_topk  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_POSITIONS = [511, 512, 1023, 1024, 1535, 1536, 2047, 2048, 2559, 2560, 3071, 3072, 3583, 3584, 4095, 4096]
LLAMA_PERPLEXITY_TOKENS = 9883  # perplexity-llamacpp.txt: ppl-public.txt with BOS, trailing newline stripped


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def tokenize_with_cli(gemma_bin, model, text_path, repeats=1):
    data = open(text_path, "rb").read() * repeats  # copies joined as the file is: each ends with its newline
    if data.endswith(b"\n"):
        data = data[:-1]  # llama-perplexity strips ONE trailing newline
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as f:
        f.write(data)
        tmp = f.name
    try:
        out = subprocess.run([gemma_bin, "tokenize", "--model", model, "--no-special", "--json", "--file", tmp],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(tmp)
    return [int(i) for i in json.loads(out)["ids"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--ids-file")
    ap.add_argument("--gemma-bin")
    ap.add_argument("--text", default=os.path.join(REPO, "Tests/Fixtures/ppl-public.txt"))
    ap.add_argument("--n-tokens", type=int, default=4097)
    ap.add_argument("--positions", default=",".join(map(str, DEFAULT_POSITIONS)))
    ap.add_argument("--topk", type=int, default=32)
    ap.add_argument("--out", default=os.path.join(REPO, "Tests/Fixtures/reference-long-context.json"))
    ap.add_argument("--logits-out", help="also save the float32 logits [positions x vocab] as .npy")
    ap.add_argument("--check-topk", default=os.path.join(REPO, "Tests/Fixtures/reference-topk.json"),
                    help="reference-topk.json: its ids must prefix ours, and overlapping positions must agree")
    ap.add_argument("--embed-scale", default="f32")
    ap.add_argument("--repeat-text", action="store_true",
                    help="with --gemma-bin: when the text is shorter than --n-tokens, tokenize it repeated k times "
                         "(the file's bytes concatenated k times, so the copies are separated by its trailing newline, "
                         "then ONE trailing newline stripped) for the smallest k that is long enough")
    ap.add_argument("--ids-out", help="also write the --n-tokens ids used as a JSON list (for gemma dump-logits)")
    args = ap.parse_args()

    if bool(args.ids_file) == bool(args.gemma_bin):
        ap.error("give exactly one of --ids-file and --gemma-bin")
    if args.ids_file:
        all_ids, source = load_ids(args.ids_file), f"ids file {os.path.basename(args.ids_file)}"
    else:
        all_ids, source = tokenize_with_cli(args.gemma_bin, args.model, args.text), "gemma tokenize --no-special"
        repeats = 1
        if args.repeat_text and len(all_ids) < args.n_tokens:
            repeats = -(-args.n_tokens // (len(all_ids) - 1)) + 1
            while repeats > 1 and len(tokenize_with_cli(args.gemma_bin, args.model, args.text, repeats - 1)) >= args.n_tokens:
                repeats -= 1
            n_once = len(all_ids)
            all_ids = tokenize_with_cli(args.gemma_bin, args.model, args.text, repeats)
            source += f" of the text repeated {repeats} times"
            print(f"the text is {n_once} ids once; repeated {repeats} times: {len(all_ids)} ids", file=sys.stderr)
    print(f"{len(all_ids)} ids from {source}", file=sys.stderr)
    if all_ids[0] != 2:
        raise SystemExit("the ids must start with BOS (2)")
    if len(all_ids) > args.n_tokens and len(all_ids) != LLAMA_PERPLEXITY_TOKENS and "repeated" not in source:
        print(f"warning: {len(all_ids)} ids for the whole text, llama-perplexity has {LLAMA_PERPLEXITY_TOKENS}",
              file=sys.stderr)
    if len(all_ids) < args.n_tokens:
        raise SystemExit(f"need {args.n_tokens} ids, got {len(all_ids)}")
    ids = all_ids[:args.n_tokens]
    if args.ids_out:
        with open(args.ids_out, "w") as f:
            json.dump(ids, f)
    golden = None
    if args.check_topk and os.path.exists(args.check_topk):
        golden = json.load(open(args.check_topk))
        g = golden["input_ids"][:len(ids)]
        if ids[:len(g)] != g:
            bad = next(i for i, (a, b) in enumerate(zip(ids, g)) if a != b)
            raise SystemExit(f"ids differ from {args.check_topk} at index {bad}: {ids[bad]} vs {g[bad]}")
        print(f"first {len(g)} ids agree with {os.path.basename(args.check_topk)}", file=sys.stderr)

    positions = sorted({int(p) for p in args.positions.split(",")})
    if positions[-1] >= len(ids):
        raise SystemExit(f"position {positions[-1]} needs more than {len(ids)} tokens")
    m = Gemma3Ref(args.model, embed_scale=args.embed_scale)
    t0 = time.time()
    xn = m.hidden(ids)[np.array(positions)]
    logits = m.head_logits(xn)
    seconds = time.time() - t0
    lse, top = lse_topk(logits, args.topk)
    if args.logits_out:
        np.save(args.logits_out, logits)
    doc = {
        "description": (f"Reference next-token distributions at positions past several sliding windows: the first "
                        f"{len(ids)} tokens of ppl-public.txt{' repeated (' + source + ')' if 'repeated' in source else ''} (llama-perplexity tokenization: BOS, no special parsing, "
                        f"one trailing newline stripped) evaluated as ONE causal sequence from position 0. For each "
                        f"listed position p (0-based; the prediction of token p+1): logsumexp of the full logit vector "
                        f"(float64 over the float32 logits) and the top-{args.topk} [id, logit] sorted by logit (ties by "
                        f"lowest id). log p(id) = logit - lse. next_id is input_ids[p+1] when it exists and "
                        f"next_logprob its log-probability."),
        "model": f"{os.path.basename(args.model)} sha256 {sha256(args.model)}",
        "reference": (f"scripts/reference/gemma3_ref.py: GGUF weights dequantized exactly (gguf-py), float32 storage "
                      f"between ops, float64 compute, RoPE angles in float64, embed scale {m.embed_scale!r}"
                      f"{' (exact f32 sqrt(640), as llama.cpp)' if args.embed_scale == 'f32' else ''}, sliding window "
                      f"{m.window} including the current token, global layers "
                      f"{[i for i, g in enumerate(m.is_global) if g]}"),
        "generated_on": time.strftime("%Y-%m-%d", time.gmtime()),
        "text": "ppl-public.txt" + (f" repeated {source.split('repeated ')[1]}" if "repeated" in source else ""),
        "ids_source": source,
        "n_tokens": len(ids),
        "input_ids": ids,
        "topk": args.topk,
        "positions": positions,
        "lse": [round(float(x), 6) for x in lse],
        "top": [[[i, round(v, 5)] for i, v in t] for t in top],
        "next_id": [ids[p + 1] if p + 1 < len(ids) else None for p in positions],
        "next_logprob": [round(float(logits[j, ids[p + 1]] - lse[j]), 6) if p + 1 < len(ids) else None
                         for j, p in enumerate(positions)],
        "seconds": round(seconds, 1),
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(positions)} positions of a {len(ids)}-token sequence ({seconds:.1f}s)", file=sys.stderr)
    if golden is not None:
        ok = compare_topk(doc, golden)
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
