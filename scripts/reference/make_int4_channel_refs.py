#!/usr/bin/env python3
"""Per-channel int4 (dm/gemma's inference quantization) on a few rows, written independently of the Swift engine.

Follows google-deepmind/gemma `gemma/peft/_quantization_utils.py` (`uniform_quantize`, PER_CHANNEL, bitwidth 4) as
summarized in the project's formats notes (section 2.2), in float32 NumPy:
    scale = 7 * (1 / max|w|)            the source's `upper_bound * jnp.array(1.0 / max_)`: two f32 roundings
    q     = clip(round_half_even(w * scale), -8, 7)
    stored scale = max(scale, 1e-6)     `jnp.maximum(scales, _NON_ZERO_DIVISION_EPS)`
    w'    = q / stored scale            (dequantization is a division)
An all-zero row gives max 0, scale inf and w * scale = 0 * inf = NaN; the int4 cast of NaN is taken as 0 (a
saturating float-to-int conversion: XLA:CPU's, LLVM fptosi.sat). NumPy's cast of NaN is undefined, so it is done
explicitly here.

The engine's row layout (not dm/gemma's, which keeps an int4 array and a scale array): the f32 scale (little-endian),
then per 32 weights 16 bytes, byte j = (q[j] + 8) | (q[j + 16] + 8) << 4 (llama.cpp's Q4_0 `qs` packing).

Rows (each 64 or 96 wide): Gaussian weights at two scales, exact ties (w * scale = k + 1/2 for every k the clip
allows, both signs: round half to even must give the even neighbour), an all-zero row, a row whose max is 1e7 (the
1e-6 floor), a row with its max negative, -0.0 and subnormals.

Writes Tests/Fixtures/int4-channel-reference.json: per row the input and the dequantized values as float32 bit
patterns, the row's bytes (hex), the stored scale's bits. Usage: python3 scripts/reference/make_int4_channel_refs.py
[--out PATH]. Needs numpy.
"""
import argparse
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
F = np.float32


def quantize(w):
    w = np.asarray(w, dtype=F)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        max_ = np.max(np.abs(w))
        scale = F(7) * (F(1) / max_)              # float32 throughout
        r = np.round(w * scale)                  # numpy rounds half to even
    r = np.where(np.isnan(r), F(0), r)
    q = np.clip(r, -8, 7).astype(np.int8)
    stored = np.maximum(scale, F(1e-6)).astype(F)
    return q, stored


def dequantize(q, stored):
    with np.errstate(divide="ignore"):
        return (q.astype(F) / stored).astype(F)


def pack(q, stored):
    n = q.size
    assert n % 32 == 0
    out = bytearray(np.array([stored], dtype="<f4").tobytes())
    u = (q.astype(np.int16) + 8).astype(np.uint8)
    for b in range(n // 32):
        blk = u[32 * b:32 * b + 32]
        out += bytes(((blk[:16] & 15) | (blk[16:] << 4)).astype(np.uint8))
    return bytes(out)


def tie_row():
    """A row whose scale is exactly a power of two, with w * scale = k + 1/2 exactly for every k in -7 ... 6."""
    for m in [F(7), F(3.5), F(14), F(1.75), F(28), F(0.875)]:
        s = F(7) * (F(1) / m)
        mant, _ = np.frexp(s)
        if mant == 0.5:  # a power of two: k + 1/2 divided by it is exact, and so is the product back
            break
    else:
        raise SystemExit("no power-of-two scale among the candidates")
    halves = [F(k + 0.5) / s for k in range(-7, 7)]           # -6.5 ... 6.5 times 1/s
    w = np.array(halves + [m] + [-h for h in halves] + [F(0)] * (64 - 29), dtype=F)
    assert np.max(np.abs(w)) == m and np.all((w * s) * 2 == np.round((w * s) * 2))
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "Tests", "Fixtures", "int4-channel-reference.json"))
    args = ap.parse_args()
    rng = np.random.default_rng(20261207)
    rows = {
        "gaussian-0.05": (rng.standard_normal(64) * 0.05).astype(F),
        "gaussian-1-wide96": rng.standard_normal(96).astype(F),
        "ties": tie_row(),
        "zero": np.zeros(64, dtype=F),
        "floor-1e7": np.concatenate([[F(1e7), F(-3e6), F(5e5)], (rng.standard_normal(61) * 1e6)]).astype(F),
        "negative-max": np.concatenate([[F(-2.5)], rng.uniform(-2.4, 2.4, 63)]).astype(F),
        "signed-zero-subnormal": np.array([-0.0, 1e-45, -1e-45, 3e-39] + list(rng.standard_normal(60) * 1e-3), dtype=F),
    }
    out = []
    for name, w in rows.items():
        q, stored = quantize(w)
        deq = dequantize(q, stored)
        b = pack(q, stored)
        out.append({
            "name": name,
            "input_bits": [int(x) for x in w.view(np.uint32)],
            "q": [int(x) for x in q],
            "scale_bits": int(np.array([stored], dtype=F).view(np.uint32)[0]),
            "bytes": b.hex(),
            "dequantized_bits": [int(x) for x in deq.view(np.uint32)],
        })
        print(f"{name}: scale {stored!r}, q range {q.min()}..{q.max()}")
    doc = {"generator": "scripts/reference/make_int4_channel_refs.py", "numpy": np.__version__, "rows": out}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
