#!/usr/bin/env python3
"""Dequantizes every tensor of a GGUF model with gguf-py and writes them as F32 tensors (same names, same ggml
dimensions, same order) into a GGUF at OUT: the reference for Tests/GemmaFormatsTests/ModelDequantTests.swift.

Usage: python3 scripts/dequant_model_reference.py MODEL OUT
  e.g. python3 scripts/dequant_model_reference.py ~/.cache/swift-gemma/gemma-3-270m-q4_k_m.gguf /tmp/swift-gemma-dequant-ref.gguf
The output (about 1 GB for Gemma 3 270M) records the model's path, size and mtime in the metadata keys
dequant_ref.model_path / dequant_ref.model_size / dequant_ref.model_mtime, and is written to OUT.tmp first and
renamed, so a finished OUT is always complete.
"""
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType as T
from gguf.quants import dequantize


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model, out = sys.argv[1], sys.argv[2]
    reader = GGUFReader(model)
    tmp = out + ".tmp"
    writer = GGUFWriter(tmp, arch="dequant-reference")
    stat = os.stat(model)
    writer.add_string("dequant_ref.model_path", os.path.abspath(model))
    writer.add_uint64("dequant_ref.model_size", stat.st_size)
    writer.add_uint64("dequant_ref.model_mtime", int(stat.st_mtime))
    elements = 0
    for t in reader.tensors:
        dims = [int(d) for d in t.shape]  # ggml order: dims[0] is the row length
        numpy_shape = tuple(reversed(dims))
        if t.tensor_type in (T.I8, T.I16, T.I32):
            values = np.asarray(t.data).astype(np.float32)
        else:
            values = dequantize(np.asarray(t.data), t.tensor_type)
        values = np.ascontiguousarray(values, dtype=np.float32).reshape(numpy_shape)
        writer.add_tensor(t.name, values)
        elements += values.size
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)
    print(f"wrote {out}: {len(reader.tensors)} tensors, {elements} elements")


if __name__ == "__main__":
    main()
