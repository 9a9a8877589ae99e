#!/usr/bin/env python3
"""Compares engine logit rows with a long-context reference (reference-long-context*.json) the way
Tests/GemmaModelTests/LongContextTests.swift does: the same top-1, except near ties (reference top-1 - top-2 < 0.05),
and the max |logit difference| over the reference's top-32 ids; with --ref-logits (the full float32 reference rows,
make_long_context_refs.py --logits-out) also the max |difference| over the whole vocabulary and KL(ref || engine).

Usage:
  python3 scripts/reference/compare_long_context.py Tests/Fixtures/reference-long-context-32k.json ENGINE_ROWS.npy \
      [--ref-logits REF_LOGITS.npy] [--json]
ENGINE_ROWS.npy: [positions x vocab] float32 in the reference's position order (engine_logit_rows.py writes it).
"""
import argparse
import json

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference")
    ap.add_argument("engine")
    ap.add_argument("--ref-logits")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ref = json.load(open(args.reference))
    eng = np.load(args.engine)
    full = np.load(args.ref_logits) if args.ref_logits else None
    positions = ref["positions"]
    if eng.shape[0] != len(positions):
        raise SystemExit(f"{eng.shape[0]} engine rows for {len(positions)} reference positions")
    rows, agree, ties, worst, worst_all, kls = [], 0, 0, 0.0, 0.0, []
    for j, p in enumerate(positions):
        top = ref["top"][j]
        e = eng[j]
        mine = int(np.argmax(e))
        same = mine == top[0][0]
        margin = top[0][1] - top[1][1]
        agree += same
        ties += (not same) and margin < 0.05
        d32 = max(abs(float(e[i]) - v) for i, v in top)
        worst = max(worst, d32)
        row = {"position": p, "ref_top1": top[0][0], "engine_top1": mine, "ref_margin": round(margin, 4),
               "max_abs_top32": round(d32, 5)}
        if full is not None:
            r, x = full[j].astype(np.float64), e.astype(np.float64)
            lr = r - (r.max() + np.log(np.exp(r - r.max()).sum()))
            lx = x - (x.max() + np.log(np.exp(x - x.max()).sum()))
            kl = float((np.exp(lr) * (lr - lx)).sum())
            dall = float(np.abs(r - x).max())
            worst_all = max(worst_all, dall)
            kls.append(kl)
            row.update({"max_abs_all": round(dall, 5), "kl": kl})
        rows.append(row)
    out = {"positions": len(positions), "top1_agree": agree, "near_ties": ties, "max_abs_top32": round(worst, 5)}
    if full is not None:
        out.update({"max_abs_all": round(worst_all, 5), "mean_kl": float(np.mean(kls)), "max_kl": float(np.max(kls))})
    if args.json:
        out["per_position"] = rows
        print(json.dumps(out, indent=1))
        return
    for r in rows:
        print("  ".join(f"{k} {v}" for k, v in r.items()))
    print(f"top-1 {agree}/{len(positions)} (disagreements that are near ties < 0.05: {ties}), "
          f"max |dlogit| over the reference top-32 {worst:.4g}"
          + (f", over the vocabulary {worst_all:.4g}, KL mean {np.mean(kls):.3g} max {np.max(kls):.3g}" if kls else ""))


if __name__ == "__main__":
    main()
