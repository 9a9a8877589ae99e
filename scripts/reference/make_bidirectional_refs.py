#!/usr/bin/env python3
"""Writes Tests/Fixtures/reference-bidirectional.json: exact reference logits of the 270M for a prompt whose
positions 10..25 are rows of embeddings (not tokens) forming one bidirectional span, as an image's 256 soft tokens
do in Gemma 3 (transformers' token_type_ids or-mask: rows of one image see each other, on local and global layers).

The other 24 positions are the first tokens of reference-topk.json. The span's rows are seeded Gaussian float32
values (stored as their bit patterns, so both sides use the same floats), used as given (not scaled by
sqrt(hidden)). For each position the file holds the log-sum-exp and the top-K [id, logit] of the bidirectional run
("bidirectional") and, as a control, of the same inputs with a causal mask everywhere ("causal").

Usage: python3 scripts/reference/make_bidirectional_refs.py MODEL [--out Tests/Fixtures/reference-bidirectional.json]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gemma3_ref import Gemma3Ref, lse_topk  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--out", default=os.path.join(REPO, "Tests/Fixtures/reference-bidirectional.json"))
    ap.add_argument("--topk", type=int, default=16)
    args = ap.parse_args()

    with open(os.path.join(REPO, "Tests/Fixtures/reference-topk.json")) as f:
        base = json.load(f)["input_ids"]
    n, span = 40, (10, 26)
    ids = list(base[:n])
    m = Gemma3Ref(args.model)
    rng = np.random.default_rng(20261206)
    rows = (rng.standard_normal((span[1] - span[0], m.n_embd)) * 0.8).astype(np.float32)
    embeds = {span[0] + i: rows[i].astype(np.float64) for i in range(len(rows))}
    out = {
        "description": "270M logits with positions 10..25 as embedding rows in one bidirectional span "
                       "(scripts/reference/make_bidirectional_refs.py; NumPy f64 reference, f32-stored)",
        "input_ids": ids,
        "span": list(span),
        "rows_f32_bits": rows.view(np.uint32).reshape(-1).tolist(),
        "hidden": int(m.n_embd),
    }
    for name, spans in (("bidirectional", [span]), ("causal", [])):
        xn = m.hidden(ids, embeds=embeds, spans=spans)
        logits = m.head_logits(xn)
        lses, tops = lse_topk(logits, args.topk)
        out[name] = {"lse": [float(x) for x in lses], "top": tops}
        print(f"{name}: top-1 at the span's first row {tops[span[0]][0]}, after it {tops[span[1]][0]}", file=sys.stderr)
    with open(args.out + ".tmp", "w") as f:
        json.dump(out, f)
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
