#!/usr/bin/env python3
"""Reference embeddings for /v1/embeddings (issue 19): for a few texts, the mean over positions of the final-normed
hidden states (gemma3_ref.py's Gemma3Ref.hidden: float64 compute, float32 storage between ops), scaled to unit
length, in float64. Token ids come from `gemma tokenize --json --no-special` (BOS first, special tokens as text), as
the server tokenizes an input string.

Usage: python3 scripts/reference/make_embedding_refs.py MODEL --gemma-bin .build/release/gemma
       [--out Tests/Fixtures/reference-embeddings.json]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gemma3_ref import Gemma3Ref  # noqa: E402

TEXTS = ["The cat sat on the mat.", "A dog runs in the park.", "Quantum chromodynamics describes the strong force.",
         "Le chat est sur le tapis."]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--gemma-bin", default=".build/release/gemma")
    ap.add_argument("--out", default="Tests/Fixtures/reference-embeddings.json")
    args = ap.parse_args()
    m = Gemma3Ref(args.model)
    items = []
    for text in TEXTS:
        ids = json.loads(subprocess.run([args.gemma_bin, "tokenize", "-m", args.model, "--json", "--no-special", text],
                                        check=True, capture_output=True, text=True).stdout)["ids"]
        h = np.asarray(m.hidden(ids), dtype=np.float64)
        e = h.mean(axis=0)
        e /= np.linalg.norm(e)
        items.append({"text": text, "ids": ids, "embedding": [float(x) for x in e]})
    sims = [[float(np.dot(a["embedding"], b["embedding"])) for b in items] for a in items]
    out = {"description": "Mean-pooled final-normed hidden states scaled to unit length, per text (float64 over "
                          "gemma3_ref.py's hidden states); cosine similarities between the texts in 'cosine'.",
           "model": os.path.basename(args.model), "reference": "scripts/reference/make_embedding_refs.py",
           "items": items, "cosine": sims}
    with open(args.out, "w") as f:
        json.dump(out, f)
    print(f"wrote {args.out}: {len(items)} texts; cosine between the first two {sims[0][1]:.4f}")


if __name__ == "__main__":
    main()
