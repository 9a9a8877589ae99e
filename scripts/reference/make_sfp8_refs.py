#!/usr/bin/env python3
"""SFP8 reference data for Tests/GemmaFormatsTests (SFP8Tests): the 256 codes' values, the golden vectors of gemma.cpp's
sfp_test.cc with their codes, and the bytes of 1M pseudo-random weights encoded as gemma.cpp encodes them, summarized
by an FNV-1a 64-bit hash and a histogram of codes (the Swift test regenerates the same weights and compares).

The encoder is scripts/reference/sfp8.py, an executable description of formats.md sections 1.1-1.4 written from the
format's description (a copy of ../shared/reference/sfp8.py), not from gemma.cpp's code or from ours.

    python3 scripts/reference/make_sfp8_refs.py > Tests/Fixtures/sfp8-reference.json

Weights: SplitMix64 (seeds below), each draw u gives the f32 with sign bit u >> 63, exponent -26 + (u >> 32) % 28
(2^-26 ... 2^1) and mantissa u & 0x7fffff; the scaled set is encoded with the tensor scale max|w| / 1.875 (values
times float32(1 / float64(scale)) in f32, clamped to +-1.875), the unscaled set has exponents up to 2^0 with values
above 1.875 clamped (scale 1).
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfp8  # noqa: E402

MASK = (1 << 64) - 1


def splitmix64(seed):
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def weights(seed, count, exponents):
    g = splitmix64(seed)
    bits = []
    for _ in range(count):
        u = next(g)
        e = -26 + (u >> 32) % exponents
        bits.append(((u >> 63) << 31) | ((e + 127) << 23) | (u & 0x7FFFFF))
    return np.array(bits, dtype=np.uint32).view(np.float32)


def f32(x):
    return np.float32(x)


def encode_tensor(w, scaled):
    if scaled:
        m = np.max(np.abs(w))
        scale = f32(m) / f32(sfp8.MAX) if m > sfp8.MAX else f32(1)
    else:
        scale = f32(1)
    inverse = f32(1.0 / float(scale))
    v = np.clip(w * inverse, f32(-sfp8.MAX), f32(sfp8.MAX)).astype(np.float32)
    h16 = (v.view(np.uint32) >> 16).astype(np.int64)
    table = {}
    out = bytearray(len(v))
    for i, h in enumerate(h16.tolist()):
        c = table.get(h)
        if c is None:
            c = table[h] = sfp8.encode_bf16_bits(h)
        out[i] = c
    return scale, bytes(out)


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def main():
    sets = []
    for seed, count, exponents, scaled in [(8101, 1 << 19, 28, True), (8102, 1 << 19, 27, False)]:
        w = weights(seed, count, exponents)
        scale, data = encode_tensor(w, scaled)
        hist = [0] * 256
        for b in data:
            hist[b] += 1
        sets.append({"seed": seed, "count": count, "exponents": exponents, "scaled": scaled,
                     "scale_bits": int(np.array([scale], dtype=np.float32).view(np.uint32)[0]),
                     "fnv1a64": f"{fnv1a64(data):016x}", "histogram": hist,
                     "first_codes": list(data[:64])})
    golden = []
    for x, want in sfp8.GOLDEN:
        for sign in (1.0, -1.0):
            code = sfp8.encode(sign * x)
            golden.append({"input": sign * x, "decoded": sfp8.decode(code), "code": code})
    table = [struct.unpack("<I", struct.pack("<f", sfp8.decode(c)))[0] for c in range(256)]
    json.dump({"provenance": "scripts/reference/make_sfp8_refs.py (encoder: scripts/reference/sfp8.py, formats.md 1.1-1.4)",
               "decoded_bits": table, "golden": golden, "random": sets}, sys.stdout, indent=None)
    print()


if __name__ == "__main__":
    main()
