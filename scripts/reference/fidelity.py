#!/usr/bin/env python3
"""Fidelity of an engine's logits against the exact reference: the metrics of Tests/Fixtures/fidelity-llamacpp.txt.

Usage:
  python3 scripts/reference/fidelity.py REF.npy ENGINE(.npy | raw float32 file) [--vocab 262144] [--positions N]
                                        [--skip-first K] [--json] [--per-position OUT.json]

REF.npy: float32 (or float64) logits [positions x vocab], e.g. from
  python3 scripts/reference/gemma3_ref.py MODEL --ids-file IDS.json --out REF.npy
ENGINE: the engine's logits for the same ids and positions: an .npy, or a raw little-endian float32 file of
  positions x vocab values (row-major, one position after another).

Metrics, per position over the full softmax, in float64:
  KL(ref || engine) = sum_v p_ref(v) * (log p_ref(v) - log p_engine(v))  (nats),
  reported as mean and p99 (numpy percentile, linear interpolation) over positions, plus the max;
  top-1 agreement: argmax(ref) == argmax(engine) (np.argmax: ties go to the lowest id), count and %;
  max abs logit difference over all positions and ids.
Rows are processed in blocks, so 4097 x 262144 inputs are fine (they are memory-mapped).
"""
import argparse
import json
import os
import sys

import numpy as np


def load_logits(path, vocab, rows=None):
    if path.endswith(".npy"):
        a = np.load(path, mmap_mode="r")
        if a.ndim == 1:
            a = a.reshape(-1, vocab)
        return a
    size = os.path.getsize(path)
    if size % (4 * vocab):
        raise SystemExit(f"{path}: {size} bytes is not a multiple of 4 * vocab ({vocab})")
    return np.memmap(path, dtype="<f4", mode="r", shape=(size // (4 * vocab), vocab))


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    y = x - m
    return y - np.log(np.exp(y).sum(-1, keepdims=True))


def compare(ref, eng, block=64):
    n = ref.shape[0]
    kl = np.empty(n)
    top1 = np.empty(n, dtype=bool)
    maxdiff = 0.0
    for s in range(0, n, block):
        e = min(n, s + block)
        r = np.asarray(ref[s:e], dtype=np.float64)
        g = np.asarray(eng[s:e], dtype=np.float64)
        if not np.all(np.isfinite(g)):
            raise SystemExit(f"engine logits are not finite in rows {s}..{e - 1}")
        lr, lg = log_softmax(r), log_softmax(g)
        kl[s:e] = (np.exp(lr) * (lr - lg)).sum(-1)
        top1[s:e] = r.argmax(-1) == g.argmax(-1)
        maxdiff = max(maxdiff, float(np.abs(r - g).max()))
    return kl, top1, maxdiff


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference")
    ap.add_argument("engine")
    ap.add_argument("--vocab", type=int, default=262144, help="row width for raw files (default 262144)")
    ap.add_argument("--positions", type=int, help="use only the first N positions of both")
    ap.add_argument("--skip-first", type=int, default=0, help="ignore the first K positions")
    ap.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    ap.add_argument("--per-position", metavar="OUT.json", help="also write per-position KL and top-1 agreement")
    args = ap.parse_args()

    ref = load_logits(args.reference, args.vocab)
    eng = load_logits(args.engine, ref.shape[1])
    if eng.shape[1] != ref.shape[1]:
        raise SystemExit(f"vocab differs: reference {ref.shape[1]}, engine {eng.shape[1]}")
    n = min(ref.shape[0], eng.shape[0]) if args.positions else ref.shape[0]
    if args.positions:
        n = min(n, args.positions)
    elif eng.shape[0] != ref.shape[0]:
        raise SystemExit(f"positions differ: reference {ref.shape[0]}, engine {eng.shape[0]} (use --positions N)")
    ref, eng = ref[args.skip_first:n], eng[args.skip_first:n]
    kl, top1, maxdiff = compare(ref, eng)
    m = len(kl)
    res = {
        "positions": m,
        "skip_first": args.skip_first,
        "vocab": int(ref.shape[1]),
        "mean_kl": float(kl.mean()),
        "p99_kl": float(np.percentile(kl, 99)),
        "max_kl": float(kl.max()),
        "max_kl_position": int(kl.argmax()) + args.skip_first,
        "top1_agree": int(top1.sum()),
        "top1_agree_pct": 100.0 * float(top1.mean()),
        "max_abs_logit_diff": maxdiff,
    }
    if args.per_position:
        with open(args.per_position, "w") as f:
            json.dump({"kl": [float(x) for x in kl], "top1_agree": [bool(x) for x in top1],
                       "first_position": args.skip_first}, f)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"positions {m} (from {args.skip_first}), vocab {res['vocab']}")
        print(f"mean KL {res['mean_kl']:.3g}  p99 KL {res['p99_kl']:.3g}  max KL {res['max_kl']:.3g} "
              f"(position {res['max_kl_position']})")
        print(f"top-1 agrees {res['top1_agree']}/{m} = {res['top1_agree_pct']:.2f}%  "
              f"max abs logit diff {res['max_abs_logit_diff']:.3g}")


if __name__ == "__main__":
    main()
