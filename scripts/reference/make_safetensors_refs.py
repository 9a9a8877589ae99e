#!/usr/bin/env python3
"""Reference data for Tests/GemmaFormatsTests/SafetensorsTests.swift, made by the safetensors library (the format's
reference implementation: its Rust core parses and writes), never by this repository's code.

Writes, under Tests/Fixtures/:
- safetensors-dtypes.safetensors: one small tensor of every dtype the library's Python binding accepts (the Rust core
  also knows F6_E2M3 and F6_E3M2, which the binding does not take), a scalar, an empty tensor, and a name that JSON must
  escape, written by `safetensors.serialize` with one metadata entry. Our writer must reproduce it byte for byte.
- safetensors-reference.json: for that file and for gemma3-tiny-text/{model,bf16/model}.safetensors, every tensor as
  the library reads it (`safetensors.deserialize`): dtype, shape, byte count, FNV-1a 64 of the bytes, and for F32 and
  BF16 the float64 sum of the values (NumPy) with the first and last value as float32 bit patterns; plus each file's
  metadata.

Usage, from the repository root: python3 scripts/reference/make_safetensors_refs.py
Needs: safetensors (0.8.0 was used), numpy.
"""
import json
import os

import numpy as np
import safetensors

FIXTURES = "Tests/Fixtures"
CHECKPOINTS = ["gemma3-tiny-text/model.safetensors", "gemma3-tiny-text/bf16/model.safetensors"]
DTYPES_FILE = "safetensors-dtypes.safetensors"


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def values(dtype: str, data: bytes):
    if dtype == "F32":
        return np.frombuffer(data, dtype="<f4").astype(np.float64)
    if dtype == "BF16":
        return (np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return None


def describe(path: str) -> dict:
    with open(path, "rb") as f:
        raw = f.read()
    tensors = {}
    for name, t in safetensors.deserialize(raw):
        data = bytes(t["data"])
        entry = {"dtype": t["dtype"], "shape": list(t["shape"]), "bytes": len(data), "fnv1a64": fnv1a64(data)}
        v = values(t["dtype"], data)
        if v is not None and v.size > 0:
            bits = v.astype(np.float32).view(np.uint32)  # exact as integers (JSON readers differ on decimals)
            entry.update(sum=float(v.sum()), first_bits=int(bits[0]), last_bits=int(bits[-1]))
        tensors[name] = entry
    with safetensors.safe_open(path, framework="numpy") as f:
        metadata = f.metadata() or {}
    return {"metadata": metadata, "count": len(tensors), "tensors": dict(sorted(tensors.items()))}


def make_dtypes_file(path: str) -> None:
    rng = np.random.default_rng(20261206)
    # (name, binding dtype, storage shape, bytes): F4 takes a storage shape, two values per byte.
    spec = [
        ("f64.vector", "float64", [3], 24),
        ("f32.matrix", "float32", [2, 3], 24),
        ("c64.pair", "complex64", [2], 16),
        ("i64.scalar", "int64", [], 8),
        ("u64.vector", "uint64", [2], 16),
        ("bf16.matrix", "bfloat16", [3, 2], 12),
        ("f16.row", "float16", [1, 5], 10),
        ("i32.vector", "int32", [3], 12),
        ("u32.vector", "uint32", [1], 4),
        ("i16.vector", "int16", [3], 6),
        ("u16.vector", "uint16", [2], 4),
        ("f8_e4m3.vector", "float8_e4m3fn", [3], 3),
        ("f8_e5m2.vector", "float8_e5m2", [2], 2),
        ("f8_e8m0.vector", "float8_e8m0fnu", [2], 2),
        ("f4.matrix", "float4_e2m1fn_x2", [2, 2], 4),
        ("u8.empty", "uint8", [0, 4], 0),
        ("i8.vector", "int8", [5], 5),
        ("bool.flags", "bool", [4], 4),
        ('weird "name"\n\té ▁', "float32", [1], 4),
    ]
    keep = []
    tensors = {}
    for name, dtype, shape, n in spec:
        data = rng.integers(0, 256, size=max(n, 1), dtype=np.uint8)
        if dtype == "bool":
            data = data & 1
        if dtype == "float32":  # finite values, so the sums are numbers
            data = rng.standard_normal(max(n // 4, 1)).astype("<f4").view(np.uint8)
        keep.append(data)
        tensors[name] = safetensors.TensorSpec(dtype=dtype, shape=shape, data_ptr=data.ctypes.data, data_len=n)
    out = safetensors.serialize(tensors, {"source": 'scripts/reference/make_safetensors_refs.py "serialize"'})
    with open(path, "wb") as f:
        f.write(out)


def main() -> None:
    make_dtypes_file(os.path.join(FIXTURES, DTYPES_FILE))
    ref = {
        "generator": "scripts/reference/make_safetensors_refs.py",
        "versions": {"safetensors": safetensors.__version__, "numpy": np.__version__},
        "files": {name: describe(os.path.join(FIXTURES, name)) for name in CHECKPOINTS + [DTYPES_FILE]},
    }
    with open(os.path.join(FIXTURES, "safetensors-reference.json"), "w") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
