#!/usr/bin/env python3
"""A random full-size Gemma 3 vision tower as a llama.cpp mmproj GGUF, for timing encoders on the same weights.

SigLIP So400m/14 at 896 px (hidden 1152, MLP 4304, 27 layers, 16 heads, 4096 patches) and Gemma 3's projector into
a text width of 2560 (4B; --text-hidden 3840 for 12B, 5376 for 27B), written as convert_hf_to_gguf.py --mmproj
--outtype f16 writes the released checkpoints: the names, metadata and type choices of make_vision_weight_fixtures.py
(matrices F16, patch / position embeddings F32, mm.input_projection F16, vectors F32; ~0.84 GB). Weights are
Gaussian with variance 1 / fan-in (LayerNorm weights near 1, biases small), so activations stay of order one
through all layers and attention is neither flat nor one-hot: the work is a real image's work. Not a model.

Usage: python3 scripts/reference/make_random_mmproj.py [OUT] [--text-hidden 2560] [--seed 0]
OUT defaults to $GEMMA_CACHE (else $XDG_CACHE_HOME/swift-gemma, else ~/.cache/swift-gemma)
/bench/mmproj-gemma3-random-f16.gguf. Prints the path. Needs numpy and gguf (gguf-py).
Time it with llama.cpp as: llama-mtmd-cli -m TEXT.gguf --mmproj OUT --image IMG -t 2 (the lead's comparison), and
with this engine as: .build/release/vision-encoder-bench OUT --threads 2.
"""
import argparse
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_vision_weight_fixtures import mmproj_tensors, write  # noqa: E402
import siglip_ref  # noqa: E402


def default_out():
    cache = os.environ.get("GEMMA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "swift-gemma")
    return os.path.join(cache, "bench", "mmproj-gemma3-random-f16.gguf")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=default_out())
    ap.add_argument("--text-hidden", type=int, default=2560)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    vcfg = {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27, "num_attention_heads": 16,
            "image_size": 896, "patch_size": 14, "layer_norm_eps": 1e-6}
    d, f, n = vcfg["hidden_size"], vcfg["intermediate_size"], (896 // 14) ** 2
    rng = np.random.default_rng(args.seed)

    def gauss(*shape, std):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    vt, mm = siglip_ref.VT, siglip_ref.MM
    W = {vt + "embeddings.patch_embedding.weight": gauss(d, 3, 14, 14, std=588 ** -0.5),
         vt + "embeddings.patch_embedding.bias": gauss(d, std=0.02),
         vt + "embeddings.position_embedding.weight": gauss(n, d, std=0.5),
         vt + "post_layernorm.weight": 1 + gauss(d, std=0.1), vt + "post_layernorm.bias": gauss(d, std=0.02),
         mm + "mm_soft_emb_norm.weight": gauss(d, std=0.1),
         mm + "mm_input_projection_weight": gauss(d, args.text_hidden, std=d ** -0.5)}
    for i in range(vcfg["num_hidden_layers"]):
        L = f"{vt}encoder.layers.{i}."
        for norm in ("layer_norm1", "layer_norm2"):
            W[L + norm + ".weight"] = 1 + gauss(d, std=0.1)
            W[L + norm + ".bias"] = gauss(d, std=0.02)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            W[L + "self_attn." + proj + ".weight"] = gauss(d, d, std=d ** -0.5)
            W[L + "self_attn." + proj + ".bias"] = gauss(d, std=0.02)
        W[L + "mlp.fc1.weight"] = gauss(f, d, std=d ** -0.5)
        W[L + "mlp.fc1.bias"] = gauss(f, std=0.02)
        W[L + "mlp.fc2.weight"] = gauss(d, f, std=f ** -0.5)
        W[L + "mlp.fc2.bias"] = gauss(d, std=0.02)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write(args.out, mmproj_tensors(W, vcfg["num_hidden_layers"]), vcfg, args.text_hidden, T.F16)
    print(args.out)


if __name__ == "__main__":
    main()
