"""A plain NumPy SigLIP vision tower and Gemma 3 multimodal projector in float64, written from transformers'
modeling_siglip.py / modeling_gemma3.py semantics (the project's vision.md §a): an independent reference for
Tests/GemmaVisionTests, never derived from the Swift code.

Weights are a dict with transformers' names under `vision_tower.vision_model.` / `multi_modal_projector.`
(`hf_names_from_mmproj` maps a llama.cpp mmproj GGUF's tensors to them). Norm weight of the projector: w (the
forward computes 1 + w).
"""
import math

import numpy as np

VT = "vision_tower.vision_model."
MM = "multi_modal_projector."


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def siglip(W, cfg, pixels):
    """pixels [B, C, S, S] -> (embeddings, [layer outputs], last_hidden_state), each [B, patches, hidden], float64."""
    W = {k: np.asarray(v, dtype=np.float64) for k, v in W.items()}
    p, hid, nh = cfg["patch_size"], cfg["hidden_size"], cfg["num_attention_heads"]
    B, C, S, _ = pixels.shape
    g = S // p
    x = pixels.astype(np.float64)[:, :, :g * p, :g * p]
    patches = x.reshape(B, C, g, p, g, p).transpose(0, 2, 4, 1, 3, 5).reshape(B, g * g, C * p * p)
    x = patches @ W[VT + "embeddings.patch_embedding.weight"].reshape(hid, -1).T + W[VT + "embeddings.patch_embedding.bias"]
    x = x + W[VT + "embeddings.position_embedding.weight"][None]
    emb, outs, hd, eps = x.copy(), [], hid // nh, cfg["layer_norm_eps"]
    for i in range(cfg["num_hidden_layers"]):
        L = f"{VT}encoder.layers.{i}."

        def lin(h, name):
            return h @ W[L + name + ".weight"].T + W[L + name + ".bias"]

        h = layer_norm(x, W[L + "layer_norm1.weight"], W[L + "layer_norm1.bias"], eps)
        q, k, v = (lin(h, "self_attn." + n).reshape(B, -1, nh, hd).transpose(0, 2, 1, 3) for n in ("q_proj", "k_proj", "v_proj"))
        s = q @ k.transpose(0, 1, 3, 2) * hd ** -0.5
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        x = x + lin(a.transpose(0, 2, 1, 3).reshape(B, -1, hid), "self_attn.out_proj")
        h = layer_norm(x, W[L + "layer_norm2.weight"], W[L + "layer_norm2.bias"], eps)
        x = x + lin(gelu_tanh(lin(h, "mlp.fc1")), "mlp.fc2")
        outs.append(x.copy())
    return emb, outs, layer_norm(x, W[VT + "post_layernorm.weight"], W[VT + "post_layernorm.bias"], eps)


def projector(W, vcfg, mm_tokens, hidden_states):
    """[B, patches, hidden] -> (pooled, normed, soft tokens [B, mm_tokens, text hidden]), float64."""
    B, N, D = hidden_states.shape
    P = vcfg["image_size"] // vcfg["patch_size"]
    t = int(round(mm_tokens ** 0.5))
    k = P // t
    pooled = hidden_states.reshape(B, t, k, t, k, D).mean(axis=(2, 4)).reshape(B, t * t, D)
    w = np.asarray(W[MM + "mm_soft_emb_norm.weight"], dtype=np.float64)
    normed = pooled / np.sqrt((pooled ** 2).mean(-1, keepdims=True) + vcfg["layer_norm_eps"]) * (1.0 + w)
    return pooled, normed, normed @ np.asarray(W[MM + "mm_input_projection_weight"], dtype=np.float64)


def hf_names_from_mmproj(tensors, layers):
    """{mmproj name: float array} -> {transformers name: array}: v.* / mm.* to vision_tower.vision_model.* /
    multi_modal_projector.*, the stored 1 + w of the projector norm back to w, and old files' swapped FFN (ffn_down
    holding fc1, recognised by shape as clip.cpp does) back to fc1 / fc2."""
    out = {
        VT + "embeddings.patch_embedding.weight": tensors["v.patch_embd.weight"],
        VT + "embeddings.patch_embedding.bias": tensors["v.patch_embd.bias"],
        VT + "embeddings.position_embedding.weight": tensors["v.position_embd.weight"],
        VT + "post_layernorm.weight": tensors["v.post_ln.weight"],
        VT + "post_layernorm.bias": tensors["v.post_ln.bias"],
        MM + "mm_soft_emb_norm.weight": tensors["mm.soft_emb_norm.weight"] - 1.0,
        MM + "mm_input_projection_weight": tensors["mm.input_projection.weight"],
    }
    names = {"ln1": "layer_norm1", "ln2": "layer_norm2", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_out": "self_attn.out_proj", "ffn_up": "mlp.fc1", "ffn_down": "mlp.fc2"}
    for i in range(layers):
        hidden = tensors[f"v.blk.{i}.ln1.weight"].shape[0]
        swapped = tensors[f"v.blk.{i}.ffn_down.weight"].shape[1] == hidden and \
            tensors[f"v.blk.{i}.ffn_down.weight"].shape[0] != hidden
        for g, h in names.items():
            if swapped and g in ("ffn_up", "ffn_down"):
                h = names["ffn_down" if g == "ffn_up" else "ffn_up"]
            for part in ("weight", "bias"):
                out[f"{VT}encoder.layers.{i}.{h}.{part}"] = tensors[f"v.blk.{i}.{g}.{part}"]
    return out
