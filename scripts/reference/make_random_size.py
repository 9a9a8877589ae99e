#!/usr/bin/env python3
"""A Gemma 3 text model of a real size's shapes with random weights, for timing training at that size (issue 21).

    make_random_size.py TOKENIZER_FOLDER OUT_FOLDER [--size 1b] [--seed 0] [--dtype float32|bfloat16]

No 1B weights can be downloaded here; this makes a model with the 1B's structure (formats.md section 3.4: 26 layers,
d_model 1152, 4 heads / 1 KV head of 256, feed-forward 6912, window 512, 262,144 tokens, 5 local : 1 global) and
transformers' own initialization (normal, std 0.02; norms at zero, so 1 + w = 1), saved with the tokenizer files of
TOKENIZER_FOLDER (e.g. `gemma convert` of the 270M). Only speed means anything on it: its predictions are noise.
"""
import argparse
import shutil
from pathlib import Path

import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

SIZES = {
    "270m": dict(num_hidden_layers=18, hidden_size=640, num_attention_heads=4, num_key_value_heads=1,
                 intermediate_size=2048, sliding_window=512),
    "1b": dict(num_hidden_layers=26, hidden_size=1152, num_attention_heads=4, num_key_value_heads=1,
               intermediate_size=6912, sliding_window=512),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("tokenizer")
    p.add_argument("out")
    p.add_argument("--size", default="1b", choices=sorted(SIZES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    a = p.parse_args()
    s = SIZES[a.size]
    layers = s["num_hidden_layers"]
    config = Gemma3TextConfig(
        vocab_size=262144, head_dim=256, query_pre_attn_scalar=256, max_position_embeddings=32768,
        rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
        layer_types=["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(layers)],
        rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0}},
        bos_token_id=2, eos_token_id=[1, 106], pad_token_id=0, **s)
    torch.manual_seed(a.seed)
    model = Gemma3ForCausalLM(config).to(getattr(torch, a.dtype))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="100GB")
    for name in ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        if (Path(a.tokenizer) / name).exists():
            shutil.copy(Path(a.tokenizer) / name, out / name)
    print(f"{out}: {sum(t.numel() for t in model.parameters()) / 1e6:.1f}M parameters ({a.size}, {a.dtype})")


if __name__ == "__main__":
    main()
