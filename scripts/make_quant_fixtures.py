#!/usr/bin/env python3
"""Writes Tests/Fixtures/generated/quant-fixtures.gguf: reference data for the Swift quantization tests.

For every tensor type T that GemmaFormats dequantizes:
  T.q    random raw data of type T (random bytes whose f16/f32 scale fields are replaced by random finite values,
         so that no NaN or infinity arises), ROWS x COLS elements;
  T.ref  its f32 dequantization by gguf-py (`gguf.quants.dequantize`). gguf-py 0.19 does not dequantize Q8_K,
         I8, I16 or I32; their references are computed here with numpy from ggml's definitions (listed in the
         metadata key quant_fixtures.own_reference_types).
For every type gguf-py quantizes (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0):
  T.src    f32 input (random values plus edge cases: zero blocks, ties of +-max, tiny and huge values);
  T.quant  gguf-py's quantization of T.src (`gguf.quants.quantize`), stored raw.
And kquant.src: f32 data for the K-quant quantizer error-bound tests.

Deterministic: the same gguf-py and numpy give the same file, byte for byte.
Usage: python3 scripts/make_quant_fixtures.py [OUT]   (default Tests/Fixtures/generated/quant-fixtures.gguf)
"""
import os
import sys

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

ROWS, COLS = 4, 1024
SEED = 20261123

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "Tests", "Fixtures", "generated", "quant-fixtures.gguf")

# Byte offsets of the f16 scale fields within a block (see Sources/GemmaFormats/Quantization/BlockLayouts.swift).
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
DEQUANT_TYPES = [T.F32, T.F16, T.BF16, T.I8, T.I16, T.I32, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
                 T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_K]
QUANT_TYPES = [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
OWN_REFERENCE = [T.Q8_K, T.I8, T.I16, T.I32]


def random_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    """n finite f16 scales: mostly log-uniform magnitudes in [2^-16, 2^2] with random signs, some zeros and
    subnormals, returned as little-endian bytes (n, 2)."""
    mag = np.exp2(rng.uniform(-16, 2, n))
    sign = np.where(rng.random(n) < 0.2, -1.0, 1.0)
    vals = (mag * sign).astype(np.float16)
    special = rng.random(n)
    vals[special < 0.02] = np.float16(0)
    sub = (special >= 0.02) & (special < 0.04)
    vals[sub] = (rng.integers(1, 0x400, int(sub.sum()), dtype=np.uint16)).view(np.float16)  # subnormals
    assert np.all(np.isfinite(vals))
    return vals.astype("<f2").view(np.uint8).reshape(n, 2)


def finite_bits16(rng: np.random.Generator, n: int, exp_mask: int) -> np.ndarray:
    """n random 16-bit patterns whose exponent is not all ones (finite f16 with 0x7C00, finite bf16 with 0x7F80)."""
    bits = rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)
    bad = (bits & exp_mask) == exp_mask
    bits[bad] &= np.uint16(~(exp_mask & ~(exp_mask >> 1)) & 0xFFFF)  # clear the exponent's top bit
    return bits


def raw_tensor(rng: np.random.Generator, qtype: T) -> np.ndarray:
    """Random data of type qtype, ROWS x COLS elements, as an array gguf-py can dequantize and write."""
    n = ROWS * COLS
    if qtype == T.F32:
        vals = rng.standard_normal(n).astype(np.float32) * np.exp2(rng.integers(-30, 30, n)).astype(np.float32)
        return vals.reshape(ROWS, COLS)
    if qtype == T.F16:
        return finite_bits16(rng, n, 0x7C00).view(np.float16).reshape(ROWS, COLS)
    if qtype == T.BF16:
        return finite_bits16(rng, n, 0x7F80).view(np.uint8).reshape(ROWS, COLS * 2)
    if qtype == T.I8:
        return rng.integers(-128, 128, n, dtype=np.int8).reshape(ROWS, COLS)
    if qtype == T.I16:
        return rng.integers(-(1 << 15), 1 << 15, n, dtype=np.int16).reshape(ROWS, COLS)
    if qtype == T.I32:
        return rng.integers(-(1 << 31), 1 << 31, n, dtype=np.int32).reshape(ROWS, COLS)
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    n_blocks = n // block_size
    blocks = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    if qtype == T.Q8_K:
        d = (rng.standard_normal(n_blocks) * np.exp2(rng.uniform(-20, 0, n_blocks))).astype("<f4")
        blocks[:, 0:4] = d.view(np.uint8).reshape(n_blocks, 4)
        # bsums: the sums of each 16 quants, as ggml's quantizer writes them (unused by dequantization).
        qs = blocks[:, 4:260].view(np.int8).astype(np.int16).reshape(n_blocks, 16, 16).sum(axis=-1)
        blocks[:, 260:292] = qs.astype("<i2").view(np.uint8).reshape(n_blocks, 32)
    else:
        for off in F16_FIELDS[qtype]:
            blocks[:, off:off + 2] = random_scales(rng, n_blocks)
    return blocks.reshape(ROWS, -1)


def reference(raw: np.ndarray, qtype: T) -> np.ndarray:
    """The f32 dequantization of raw: gguf-py's, or (for types gguf-py lacks) ggml's definition in numpy."""
    if qtype in (T.I8, T.I16, T.I32):
        return raw.astype(np.float32)
    if qtype == T.Q8_K:
        blocks = raw.reshape(-1, 292)
        d = blocks[:, 0:4].copy().view("<f4").astype(np.float32)
        qs = blocks[:, 4:260].view(np.int8).astype(np.float32)
        return (d * qs).reshape(ROWS, COLS)
    out = dequantize(raw, qtype)
    assert out.dtype == np.float32 and out.shape == (ROWS, COLS), (qtype, out.dtype, out.shape)
    return out


def quant_source(rng: np.random.Generator, qtype: T) -> np.ndarray:
    """f32 input for quantization to qtype: random values with per-block magnitudes, plus edge cases."""
    n = ROWS * COLS
    x = rng.standard_normal(n).astype(np.float32)
    scale = np.repeat(np.exp2(rng.uniform(-12, 4, n // 32)), 32).astype(np.float32)
    x *= scale
    x[0:32] = 0                                   # an all-zero block
    x[32:64] = rng.integers(-3, 4, 32)            # small integers: ties of +-max, exact halves after scaling
    x[40], x[41] = -3, 3
    x[64:96] = rng.standard_normal(32).astype(np.float32) * np.float32(1e-30)  # tiny (f16 scale underflows)
    x[96:128] = rng.standard_normal(32).astype(np.float32) * np.float32(1e6)   # huge (f16 scale overflows)
    x[128:160] = np.float32(0.75)                 # constant block
    x[160:192] = -np.abs(x[160:192])              # all negative
    if qtype in (T.F16, T.BF16):
        # Rounding ties and overflow: values exactly halfway between two f16 / bf16 numbers, and beyond the max.
        half_ulp = 13 if qtype == T.F16 else 16
        base = rng.integers(0x3C00_0000 >> 16, 0x4200_0000 >> 16, 64, dtype=np.uint32) << 16
        x[192:256] = (base | (np.uint32(1) << np.uint32(half_ulp - 1)) | rng.integers(0, 2, 64, dtype=np.uint32) << np.uint32(half_ulp)).view(np.float32)
        x[256:260] = [65504, 65520, 70000, -1e30]
        x[260:270] = np.float32(2.0) ** np.arange(-30, -20, dtype=np.float32)  # f16 subnormals / underflow
        if qtype == T.BF16:
            x[270:274] = [np.inf, -np.inf, np.nan, -np.nan]
            x[274] = np.uint32(0x7F80_0001).view(np.float32)  # signalling NaN: must stay NaN
            x[275] = np.uint32(0x7FFF_FFFF).view(np.float32)  # NaN whose rounding would carry
            x[276] = np.finfo(np.float32).max                   # rounds up to infinity
    return x.reshape(ROWS, COLS)


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    rng = np.random.default_rng(SEED)
    writer = GGUFWriter(out, arch="quant-fixtures")
    writer.add_uint32("quant_fixtures.seed", SEED)
    writer.add_array("quant_fixtures.dequant_types", [t.name for t in DEQUANT_TYPES])
    writer.add_array("quant_fixtures.quant_types", [t.name for t in QUANT_TYPES])
    writer.add_array("quant_fixtures.own_reference_types", [t.name for t in OWN_REFERENCE])

    for qtype in DEQUANT_TYPES:
        raw = raw_tensor(rng, qtype)
        ref = reference(raw, qtype)
        if raw.dtype == np.uint8:
            writer.add_tensor(f"{qtype.name}.q", raw, raw_dtype=qtype)
        else:
            writer.add_tensor(f"{qtype.name}.q", raw)
        writer.add_tensor(f"{qtype.name}.ref", np.ascontiguousarray(ref, dtype=np.float32))

    for qtype in QUANT_TYPES:
        src = quant_source(rng, qtype)
        with np.errstate(over="ignore"):  # scales of the huge block overflow f16 on purpose
            q = quantize(src, qtype)
        writer.add_tensor(f"{qtype.name}.src", src)
        if qtype == T.F16:
            writer.add_tensor(f"{qtype.name}.quant", q)
        else:
            writer.add_tensor(f"{qtype.name}.quant", q, raw_dtype=qtype)

    # K-quant quantizer input: Gaussian rows of varied scale with a few outliers, 16 rows of 4096.
    k = rng.standard_normal((16, 4096)).astype(np.float32)
    k *= np.exp2(rng.uniform(-8, 2, (16, 1))).astype(np.float32)
    outliers = rng.integers(0, k.size, 64)
    k.reshape(-1)[outliers] *= np.float32(12)
    k[0, 0:256] = 0                              # an all-zero super-block
    k[1, 0:256] = np.abs(k[1, 0:256])            # an all-positive super-block (exercises the min)
    writer.add_tensor("kquant.src", k)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
