#!/usr/bin/env python3
"""Which pass Pillow's resize runs first, measured: Sources/GemmaVision/Image/Resample.swift follows the rule this
checks. Pillow rounds the intermediate image to 8 bits, so the two orders differ by +-1 on most images; comparing
`im.resize((w, h), f)` with resize-width-then-height and resize-height-then-width (each one pass) tells which order the
library used. The rule, from python-pillow/Pillow#9549 ("If height is scaled down significantly more than width,
resize vertically first") as Pillow 13.0.0 behaves: vertical first iff h < H and H - h > 2 (W - w).

Usage: python3 scripts/reference/pillow_resize_order.py [cases]   (Pillow and NumPy; 13.0.0 and 2.4.6 were used)
"""
import random
import sys

import numpy as np
import PIL
from PIL import Image


def order(rng, W, H, w, h, f):
    """'H' or 'V' for the pass Pillow ran first, None when the two orders agree on this image."""
    im = Image.fromarray(rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8))
    full = np.asarray(im.resize((w, h), f)).astype(int)
    hv = np.asarray(im.resize((w, H), f).resize((w, h), f)).astype(int)
    vh = np.asarray(im.resize((W, h), f).resize((w, h), f)).astype(int)
    same_hv, same_vh = (full == hv).all(), (full == vh).all()
    if same_hv and not same_vh:
        return "H"
    if same_vh and not same_hv:
        return "V"
    return None


def main():
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    rng = np.random.default_rng(0)
    random.seed(5)
    checked = bad = 0
    for _ in range(cases):
        W, H, w, h = (random.randint(5, 400) for _ in range(4))
        if w == W or h == H:
            continue  # one pass only
        measured = order(rng, W, H, w, h, random.choice([1, 2, 3, 4, 5]))
        if measured is None:
            continue
        rule = "V" if h < H and H - h > 2 * (W - w) else "H"
        checked += 1
        if rule != measured:
            bad += 1
            print(f"mismatch: {W}x{H} -> {w}x{h}: Pillow ran {measured} first, the rule says {rule}")
    print(f"Pillow {PIL.__version__}: {checked} sizes where the order shows, {bad} against the rule")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
