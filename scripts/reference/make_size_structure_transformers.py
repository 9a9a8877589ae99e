#!/usr/bin/env python3
"""transformers as a second, independent reference for the size-structure models (make_size_structure_refs.py).

Loads each generated Hugging Face folder (Tests/Fixtures/generated/size-structures/SIZE/hf) into transformers'
Gemma3ForCausalLM (float32, eager attention; the text config taken from config.json's top level or its text_config,
the weights renamed from the folder's layout to model.*), runs the reference sequence, and writes
Tests/Fixtures/size-structures-transformers.json: per size the weights' and ids' checksums (as the generator's
manifest computes them) and, at 12 positions around the window's edge and at the end, the log-sum-exp and the top-8
[id, logit]. It also compares them with the NumPy reference's logits of the f32 GGUF (reference.safetensors) and fails
if they differ by more than the tolerance recorded in the file.

The generator (`--check-transformers`) and SizeStructureTests.swift read the file, so that both the GGUF semantics
(through the NumPy reference) and the Hugging Face semantics (through the engine's folder loader) are tied to
transformers. The file is committed; remake it only when the generator's weights change (its checksums say so):

  python3 -m venv VENV && VENV/bin/pip install torch transformers==5.23.0 safetensors numpy gguf
  python3 scripts/reference/make_size_structure_refs.py
  VENV/bin/python scripts/reference/make_size_structure_transformers.py
"""
import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
import transformers
from safetensors.numpy import load_file
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_size_structure_refs as gen  # noqa: E402

OUT = os.path.join(gen.REPO, "Tests", "Fixtures", "size-structures-transformers.json")
TOP = 8
# transformers computes RoPE angles in float32 (the NumPy reference and the engine in float64): 5e-4 apart at
# these positions (make_size_structure_refs.py --sensitivity, "RoPE angles f32").
TOLERANCE = 2e-3


def positions_for(window, n):
    return sorted({0, 1, window // 2, window - 2, window - 1, window, window + 1, window + 2, window + 50,
                   n - 3, n - 2, n - 1})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=gen.DEFAULT_OUT)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--sizes", default=",".join(gen.SIZES))
    args = ap.parse_args()
    torch.manual_seed(0)
    doc = {
        "description": "transformers' logits for the size-structure models of scripts/reference/"
                       "make_size_structure_refs.py (Gemma3ForCausalLM, float32, eager attention, on each size's "
                       "hf/ folder): per position the log-sum-exp (float64 over the float32 logits) and the top-8 "
                       "[id, logit]. weights_sha256 / ids_sha256 are the generator manifest's checksums.",
        "transformers": transformers.__version__, "torch": torch.__version__, "tolerance": TOLERANCE, "sizes": {},
    }
    ok = True
    for size in [s for s in args.sizes.split(",") if s]:
        d = os.path.join(args.dir, size)
        man = json.load(open(os.path.join(d, "manifest.json")))
        cfg = json.load(open(os.path.join(d, "hf", "config.json")))
        text = cfg.get("text_config", cfg) if cfg.get("model_type") == "gemma3" else cfg
        text = {k: v for k, v in text.items() if k not in ("architectures", "transformers_version", "torch_dtype", "dtype")}
        config = Gemma3TextConfig(**text)
        config._attn_implementation = "eager"
        model = Gemma3ForCausalLM(config).eval()
        tensors = load_file(os.path.join(d, "hf", "model.safetensors"))
        prefix = gen.HF_PREFIX[size]
        state = {"model." + k[len(prefix):]: torch.from_numpy(v) for k, v in tensors.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [m for m in missing if m != "lm_head.weight"]:
            raise SystemExit(f"{size}: missing {missing}, unexpected {unexpected}")
        model.tie_weights()
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        # The checksum of the weights as the generator computes it (GGUF-style keys, HF's norm convention).
        inverse = {v: k for k, v in gen.HF_NAMES.items()}
        W = {"token_embd": tensors[prefix + "embed_tokens.weight"], "output_norm": tensors[prefix + "norm.weight"]}
        for k, v in tensors.items():
            if ".layers." in k:
                i, rest = k[len(prefix) + len("layers."):].split(".", 1)
                W[f"blk.{i}.{inverse[rest[:-len('.weight')]]}"] = v
        ref = load_file(os.path.join(d, "reference.safetensors"))
        ids = ref["input_ids"]
        import hashlib
        ids_sha = hashlib.sha256(ids.astype("<i8").tobytes()).hexdigest()
        weights_sha = gen.weights_checksum(W)
        assert weights_sha == man["weights_sha256"] and ids_sha == man["ids_sha256"], size
        window = man["structure"]["sliding_window"]
        # The config transformers built is the structure meant.
        layer_types = list(config.layer_types)
        assert layer_types == ["full_attention" if gen.is_global(i) else "sliding_attention" for i in range(gen.LAYERS)], layer_types
        assert config.sliding_window == window and config.query_pre_attn_scalar == man["structure"]["query_pre_attn_scalar"]
        with torch.no_grad():
            logits = model(torch.from_numpy(ids)[None], use_cache=False).logits[0].float().numpy()
        pos = positions_for(window, len(ids))
        lses, tops = [], []
        worst, worst_all = 0.0, 0.0
        np_ref = ref["logits.f32"]
        for p in pos:
            row = logits[p].astype(np.float64)
            mx = row.max()
            lses.append(round(float(mx + np.log(np.exp(row - mx).sum())), 6))
            order = np.lexsort((np.arange(len(row)), -row))[:TOP]
            tops.append([[int(i), round(float(logits[p][i]), 6)] for i in order])
        worst = float(np.abs(logits[pos] - np_ref[pos]).max())
        worst_all = float(np.abs(logits - np_ref).max())
        top1 = int((logits.argmax(-1) == np_ref.argmax(-1)).sum())
        print(f"{size}: transformers vs NumPy reference (f32 GGUF): max |Δlogit| {worst:.2e} at the recorded "
              f"positions, {worst_all:.2e} over all {len(ids)}; top-1 {top1}/{len(ids)}", file=sys.stderr)
        ok &= worst_all <= TOLERANCE
        doc["sizes"][size] = {"weights_sha256": weights_sha, "ids_sha256": ids_sha, "sequence_length": len(ids),
                              "window": window, "max_abs_diff_vs_numpy_all_positions": round(worst_all, 7),
                              "top1_agreement_vs_numpy": f"{top1}/{len(ids)}",
                              "positions": pos, "lse": lses, "top": tops}
    if not ok:
        raise SystemExit("transformers and the NumPy reference disagree")
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
