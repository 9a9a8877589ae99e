#!/usr/bin/env python3
"""Small random-weight Gemma 3 models with the attention structure of each published size, and their exact logits.

For each of 1b, 4b, 12b, 27b this writes, under Tests/Fixtures/generated/size-structures/SIZE/ (git-ignored; run by
scripts/test.sh, which the Swift suite Tests/GemmaModelTests/SizeStructureTests.swift reads):

  model-f32.gguf, model-q8_0.gguf, model-mixed.gguf   the same weights as GGUF files written with gguf-py's
        GGUFWriter as llama.cpp's converter writes Gemma 3 (token_embd / blk.N.* names, norms stored as 1 + w,
        gemma3.* metadata, a minimal SentencePiece-style vocabulary). f32: every tensor f32. q8_0: every matrix and
        the embedding Q8_0 (gguf-py's quantizer). mixed: attn_q Q4_0, attn_k Q5_0, attn_v Q8_0, ffn_gate Q5_0,
        ffn_up Q4_0 (gguf-py's quantizers), the embedding Q8_0, and attn_output / ffn_down in Q6_K / Q4_K (1b, 12b:
        attn_output Q6_K, ffn_down Q4_K; 4b, 27b: the other way round). gguf-py 0.19 cannot quantize K-quants, so
        the Q4_K / Q6_K blocks come from the simple round-to-nearest quantizers below (not llama.cpp's); their
        dequantization, and so every reference, is gguf-py's.
  hf/        the same weights as a Hugging Face folder: config.json (1b: Gemma3ForCausalLM in transformers 5's
        schema; 4b: Gemma3ForConditionalGeneration, transformers 5's schema under text_config, names
        model.language_model.*; 12b: Gemma3ForCausalLM in the hub's older schema; 27b: Gemma3ForConditionalGeneration
        with a minimal hub-style text_config as Google's, names language_model.model.*), model.safetensors (f32,
        the safetensors library's numpy API, norms stored as w).
  reference.safetensors   input_ids [n] (int64) and, per variant, logits.f32 / logits.q8_0 / logits.mixed [n, vocab]
        (float32): the repo's independent NumPy reference (gemma3_ref.py, float64 compute, float32 storage) on each
        GGUF file, at every position of one sequence of window + 100 random ids (BOS first).
  manifest.json   the structure, the files' sha256, the weights' checksum (sha256 of the f32 tensors in name order,
        as tied to transformers by Tests/Fixtures/size-structures-transformers.json), logit spread and margins.

The structure of each size is the real one (heads / KV heads / head dim, query_pre_attn_scalar, sliding window,
RoPE bases 10k local / 1M global, linear RoPE x8 on global layers for 4b+, 5 local : 1 global, here 7 layers so
that a local layer follows the global one); what is small is the width (hidden 64), the vocabulary (512) and the
depth. The FFN is 4352 = 17 x 256 wide, so ffn_down's rows (4352 weights) are longer than 4096 and K-quantized.
27b's GGUF stores gemma3.attention.query_pre_attn_scalar = 168 (as `gemma convert` does when llama.cpp's rule,
which keys on 62 layers, would give head_dim); the reference is given that scale explicitly.

Usage: python3 scripts/reference/make_size_structure_refs.py [--out DIR] [--sizes 1b,4b] [--force]
       [--check-transformers Tests/Fixtures/size-structures-transformers.json] [--sensitivity]
Skips a size whose manifest records the same generator version (a hash of this file and gemma3_ref.py).
--sensitivity prints how far the f32 reference moves when one semantic detail is changed (window -1 / +1, no linear
RoPE, query scale head_dim^-0.5, RoPE angles in float32): what a test with a given tolerance can see.
Needs numpy, gguf (gguf-py) and safetensors.
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType as T, GGUFReader
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import quantize, dequantize
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from gemma3_ref import Gemma3Ref  # noqa: E402

DEFAULT_OUT = os.path.join(REPO, "Tests", "Fixtures", "generated", "size-structures")

HIDDEN = 64
VOCAB = 512
LAYERS = 7
FFN = 4352  # 17 x 256: K-quant rows longer than 4096 weights
EXTRA = 100  # sequence = window + EXTRA tokens

# name: (heads, kv heads, head dim, query_pre_attn_scalar, window, linear RoPE factor or None, context, seed)
SIZES = {
    "1b": dict(heads=4, kv=1, head_dim=256, qpas=256, window=512, factor=None, ctx=32768, seed=1001),
    "4b": dict(heads=8, kv=4, head_dim=256, qpas=256, window=1024, factor=8.0, ctx=131072, seed=1004),
    "12b": dict(heads=16, kv=8, head_dim=256, qpas=256, window=1024, factor=8.0, ctx=131072, seed=1012),
    "27b": dict(heads=32, kv=16, head_dim=128, qpas=168, window=1024, factor=8.0, ctx=131072, seed=1027),
}
VARIANTS = ("f32", "q8_0", "mixed")
MATRICES = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
NORMS = ("attn_norm", "attn_q_norm", "attn_k_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm")
# GGUF name -> transformers name (inside the layer)
HF_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "post_attention_norm": "post_attention_layernorm", "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
}
HF_PREFIX = {"1b": "model.", "4b": "model.language_model.", "12b": "model.", "27b": "language_model.model."}


def is_global(i):
    return (i + 1) % 6 == 0


def mixed_type(size, name):
    k_out, k_down = (T.Q6_K, T.Q4_K) if size in ("1b", "12b") else (T.Q4_K, T.Q6_K)
    return {"attn_q": T.Q4_0, "attn_k": T.Q5_0, "attn_v": T.Q8_0, "attn_output": k_out,
            "ffn_gate": T.Q5_0, "ffn_up": T.Q4_0, "ffn_down": k_down}[name]


# ---------------------------------------------------------------- weights (HF convention: norms are w, used as 1 + w)

def make_weights(size):
    """Deterministic f32 weights {GGUF-style key: array in PyTorch order [out, in]}; norm entries hold HF's w."""
    s = SIZES[size]
    rng = np.random.default_rng(s["seed"])
    qd, kvd = s["heads"] * s["head_dim"], s["kv"] * s["head_dim"]

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm(n, mean=0.0, std=0.1):
        return (mean + std * rng.standard_normal(n)).astype(np.float32)

    # The head is tied to the embedding, so a large embedding makes every top-1 the input token itself: the
    # embedding is kept small (input rows of RMS 2 after the x8 scale) and the layers' post-norms large (scale ~2),
    # so that the logits come from the layers (attention and FFN) rather than from the token's own row.
    W = {"token_embd": (0.25 * rng.standard_normal((VOCAB, HIDDEN))).astype(np.float32),
         "output_norm": norm(HIDDEN, 1.0)}
    for i in range(LAYERS):
        p = f"blk.{i}."
        W[p + "attn_q"] = mat(qd, HIDDEN)
        W[p + "attn_k"] = mat(kvd, HIDDEN)
        W[p + "attn_v"] = mat(kvd, HIDDEN)
        W[p + "attn_output"] = mat(HIDDEN, qd)
        W[p + "ffn_gate"] = mat(FFN, HIDDEN)
        W[p + "ffn_up"] = mat(FFN, HIDDEN)
        W[p + "ffn_down"] = mat(HIDDEN, FFN)
        W[p + "attn_norm"] = norm(HIDDEN)
        # QK-norm weights well above 0 (scale ~1.6): attention is peaked enough that the window's edge matters.
        W[p + "attn_q_norm"] = norm(s["head_dim"], 0.6, 0.15)
        W[p + "attn_k_norm"] = norm(s["head_dim"], 0.6, 0.15)
        W[p + "post_attention_norm"] = norm(HIDDEN, 1.0)
        W[p + "ffn_norm"] = norm(HIDDEN)
        W[p + "post_ffw_norm"] = norm(HIDDEN, 1.0)
    return W


def weights_checksum(W):
    h = hashlib.sha256()
    for k in sorted(W):
        h.update(k.encode())
        h.update(np.ascontiguousarray(W[k], dtype="<f4").tobytes())
    return h.hexdigest()


def is_norm(key):
    return key.endswith("norm")


# ---------------------------------------------------------------- K-quants (round to nearest; gguf-py has no quantizer)

def f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def quantize_q4_k(x):
    """[rows, cols] f32 (cols % 256 == 0) -> [rows, cols / 256 * 144] uint8 Q4_K blocks:
    per super-block d, dmin (f16), 8 sub-blocks of 32 with 6-bit scale and min, 4-bit quants; x ~ d*sc*q - dmin*m."""
    rows, cols = x.shape
    b = x.reshape(-1, 8, 32).astype(np.float32)
    nb = b.shape[0]
    lo = np.minimum(b.min(-1), 0.0)                     # sub-block min (<= 0)
    hi = b.max(-1)
    scale = np.maximum(hi - lo, 1e-12) / 15.0           # [nb, 8]
    mins = -lo                                          # >= 0
    d = f16(scale.max(-1) / 63.0).astype(np.float32)    # [nb]
    dmin = f16(mins.max(-1) / 63.0).astype(np.float32)
    ls = np.clip(np.rint(scale / np.where(d > 0, d, 1)[:, None]), 1, 63).astype(np.uint8)
    lm = np.clip(np.rint(mins / np.where(dmin > 0, dmin, 1)[:, None]), 0, 63).astype(np.uint8)
    step = d[:, None] * ls                              # [nb, 8]
    off = dmin[:, None] * lm
    q = np.clip(np.rint((b + off[..., None]) / step[..., None]), 0, 15).astype(np.uint8)  # [nb, 8, 32]
    out = np.zeros((nb, 144), np.uint8)
    out[:, 0:2] = f16(d).view(np.uint8).reshape(nb, 2)
    out[:, 2:4] = f16(dmin).view(np.uint8).reshape(nb, 2)
    sc = np.zeros((nb, 12), np.uint8)
    for j in range(8):
        if j < 4:
            sc[:, j] = ls[:, j]
            sc[:, j + 4] = lm[:, j]
        else:
            sc[:, j + 4] = (ls[:, j] & 0xF) | ((lm[:, j] & 0xF) << 4)
            sc[:, j - 4] |= (ls[:, j] >> 4) << 6
            sc[:, j] |= (lm[:, j] >> 4) << 6
    out[:, 4:16] = sc
    qf = q.reshape(nb, 256)
    qs = np.zeros((nb, 128), np.uint8)
    for j in range(0, 256, 64):  # 64 quants -> 32 bytes: low nibbles the first 32, high nibbles the next 32
        qs[:, j // 2:j // 2 + 32] = qf[:, j:j + 32] | (qf[:, j + 32:j + 64] << 4)
    out[:, 16:] = qs
    return out.reshape(rows, -1)


def quantize_q6_k(x):
    """[rows, cols] f32 (cols % 256 == 0) -> [rows, cols / 256 * 210] uint8 Q6_K blocks:
    ql[128], qh[64], 16 int8 scales (one per 16), d (f16); x ~ d * sc * (q - 32)."""
    rows, cols = x.shape
    b = x.reshape(-1, 16, 16).astype(np.float32)
    nb = b.shape[0]
    amax = np.abs(b).max(-1)                             # [nb, 16]
    sub = amax / 31.0
    d = f16(sub.max(-1) / 127.0).astype(np.float32)
    sc = np.clip(np.rint(sub / np.where(d > 0, d, 1)[:, None]), 1, 127).astype(np.int8)
    step = d[:, None] * sc.astype(np.float32)
    L = (np.clip(np.rint(b / step[..., None]), -32, 31) + 32).astype(np.uint8).reshape(nb, 256)
    ql = np.zeros((nb, 128), np.uint8)
    qh = np.zeros((nb, 64), np.uint8)
    for n in range(2):
        q1, q2, q3, q4 = (L[:, n * 128 + o:n * 128 + o + 32] for o in (0, 32, 64, 96))
        ql[:, n * 64:n * 64 + 32] = (q1 & 0xF) | ((q3 & 0xF) << 4)
        ql[:, n * 64 + 32:n * 64 + 64] = (q2 & 0xF) | ((q4 & 0xF) << 4)
        qh[:, n * 32:n * 32 + 32] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
    out = np.concatenate([ql, qh, sc.view(np.uint8), f16(d).view(np.uint8).reshape(nb, 2)], axis=1)
    return out.reshape(rows, -1)


def encode(x, qtype):
    """An array GGUFWriter.add_tensor takes for `qtype` (raw bytes for quantized types), and gguf-py's f32 dequantization."""
    if qtype == T.F32:
        return x, x
    if qtype == T.Q4_K:
        raw = quantize_q4_k(x)
    elif qtype == T.Q6_K:
        raw = quantize_q6_k(x)
    else:
        raw = quantize(x, qtype)
    back = dequantize(raw, qtype).reshape(x.shape)
    rel = float(np.sqrt(np.mean((back - x) ** 2) / np.mean(x ** 2)))
    limit = {T.Q8_0: 0.01, T.Q6_K: 0.05, T.Q5_0: 0.06, T.Q4_K: 0.12, T.Q4_0: 0.12}[qtype]
    if not rel < limit:
        raise SystemExit(f"{qtype.name} quantization error {rel:.3g} (limit {limit}): quantizer broken")
    return raw, back


# ---------------------------------------------------------------- files

def write_gguf(path, size, W, variant):
    s = SIZES[size]
    w = GGUFWriter(path + ".tmp", "gemma3")
    a = "gemma3."
    w.add_name(f"size-structure-{size}-{variant}")
    w.add_uint32("general.file_type", {"f32": 0, "q8_0": 7, "mixed": 15}[variant])  # ALL_F32, MOSTLY_Q8_0, MOSTLY_Q4_K_M
    if variant != "f32":
        w.add_uint32("general.quantization_version", 2)
    w.add_uint32(a + "context_length", s["ctx"])
    w.add_uint32(a + "embedding_length", HIDDEN)
    w.add_uint32(a + "block_count", LAYERS)
    w.add_uint32(a + "feed_forward_length", FFN)
    w.add_uint32(a + "attention.head_count", s["heads"])
    w.add_uint32(a + "attention.head_count_kv", s["kv"])
    w.add_float32(a + "attention.layer_norm_rms_epsilon", 1e-6)
    w.add_uint32(a + "attention.key_length", s["head_dim"])
    w.add_uint32(a + "attention.value_length", s["head_dim"])
    w.add_float32(a + "rope.freq_base", 1_000_000.0)
    w.add_uint32(a + "attention.sliding_window", s["window"])
    if s["factor"]:
        w.add_string(a + "rope.scaling.type", "linear")
        w.add_float32(a + "rope.scaling.factor", s["factor"])
    if s["qpas"] != s["head_dim"]:  # what llama.cpp's rule (hidden / heads only at 62 layers) would miss
        w.add_float32(a + "attention.query_pre_attn_scalar", float(s["qpas"]))
    # A minimal SentencePiece-style vocabulary: the Gemma special ids, the 256 byte pieces, then plain pieces.
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [3, 3, 3, 2] + [6] * 256
    tokens += [f"\u2581t{i}" for i in range(VOCAB - len(tokens))]
    types += [1] * (VOCAB - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 260 + [-float(i) for i in range(VOCAB - 260)])
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)

    deq = {}
    for key in ["token_embd", "output_norm"] + [f"blk.{i}.{n}" for i in range(LAYERS) for n in MATRICES + NORMS]:
        x = W[key]
        if is_norm(key):
            x = (np.float32(1) + x).astype(np.float32)  # llama.cpp's converter stores Gemma's 1 + w
            qtype = T.F32
        elif variant == "f32":
            qtype = T.F32
        elif variant == "q8_0" or key == "token_embd":
            qtype = T.Q8_0
        else:
            qtype = mixed_type(size, key.split(".")[-1])
        data, back = encode(x, qtype)
        deq[key] = back
        if qtype == T.F32:
            w.add_tensor(key + ".weight", np.ascontiguousarray(data, dtype=np.float32))
        else:
            w.add_tensor(key + ".weight", data, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".tmp", path)
    return deq


def hf_config(size):
    s = SIZES[size]
    layer_types = ["full_attention" if is_global(i) else "sliding_attention" for i in range(LAYERS)]
    full = {"rope_type": "linear", "factor": s["factor"], "rope_theta": 1_000_000.0} if s["factor"] else \
        {"rope_type": "default", "rope_theta": 1_000_000.0}
    modern = {
        "model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"],
        "vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
        "num_attention_heads": s["heads"], "num_key_value_heads": s["kv"], "head_dim": s["head_dim"],
        "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": s["ctx"], "rms_norm_eps": 1e-6,
        "query_pre_attn_scalar": s["qpas"], "sliding_window": s["window"], "layer_types": layer_types,
        "_sliding_window_pattern": 6,
        "rope_parameters": {"full_attention": full, "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
        "final_logit_softcapping": None, "attn_logit_softcapping": None, "attention_bias": False,
        "attention_dropout": 0.0, "use_bidirectional_attention": False, "tie_word_embeddings": True,
        "bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0, "dtype": "float32",
        "transformers_version": "5.23.0",
    }
    hub = {
        "model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"],
        "vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
        "num_attention_heads": s["heads"], "num_key_value_heads": s["kv"], "head_dim": s["head_dim"],
        "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": s["ctx"], "rms_norm_eps": 1e-6,
        "query_pre_attn_scalar": s["qpas"], "sliding_window": s["window"], "sliding_window_pattern": 6,
        "rope_theta": 1_000_000.0, "rope_local_base_freq": 10000.0,
        "rope_scaling": {"rope_type": "linear", "factor": s["factor"]} if s["factor"] else None,
        "final_logit_softcapping": None, "attn_logit_softcapping": None, "attention_bias": False,
        "bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0, "torch_dtype": "float32",
        "transformers_version": "4.50.0.dev0",
    }
    if size == "1b":
        return modern
    if size == "12b":
        return hub
    if size == "4b":
        text = dict(modern)
        text.pop("architectures")
        return {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "text_config": text,
                "boi_token_index": 255999, "eoi_token_index": 256000, "image_token_index": 262144,
                "mm_tokens_per_image": 256, "dtype": "float32", "transformers_version": "5.23.0"}
    # 27b: Google's minimal text_config (the rest from Gemma3TextConfig's defaults)
    text = {k: hub[k] for k in ("hidden_size", "intermediate_size", "model_type", "num_attention_heads",
                                "num_hidden_layers", "num_key_value_heads", "head_dim", "query_pre_attn_scalar",
                                "rope_scaling", "sliding_window", "vocab_size")}
    return {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "text_config": text,
            "boi_token_index": 255999, "eoi_token_index": 256000, "image_token_index": 262144,
            "eos_token_id": [1, 106], "mm_tokens_per_image": 256, "torch_dtype": "float32",
            "transformers_version": "4.50.0.dev0"}


def hf_tensors(size, W):
    p = HF_PREFIX[size]
    out = {p + "embed_tokens.weight": W["token_embd"], p + "norm.weight": W["output_norm"]}
    for i in range(LAYERS):
        for n in MATRICES + NORMS:
            out[f"{p}layers.{i}.{HF_NAMES[n]}.weight"] = W[f"blk.{i}.{n}"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def write_hf(folder, size, W):
    tmp = folder + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(hf_config(size), f, indent=2)
    save_file(hf_tensors(size, W), os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)
    os.replace(tmp, folder)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def generator_version():
    h = hashlib.sha256()
    for name in ("make_size_structure_refs.py", "gemma3_ref.py"):
        with open(os.path.join(HERE, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def make_ids(size):
    s = SIZES[size]
    rng = np.random.default_rng(s["seed"] + 500)
    n = s["window"] + EXTRA
    ids = rng.integers(4, VOCAB, n)
    ids[0] = 2  # BOS
    return ids.astype(np.int64)


def reference(path, size, **kw):
    s = SIZES[size]
    m = Gemma3Ref(path, query_scale=s["qpas"] ** -0.5, verbose=False, **kw)
    return m


def check_structure(m, size):
    """The reference read the GGUF as this size's structure (so the files say what we mean)."""
    s = SIZES[size]
    got = (m.n_head, m.n_head_kv, m.head_dim, m.window, m.rope_factor, m.freq_base, m.freq_base_local,
           [i for i, g in enumerate(m.is_global) if g], m.embed_scale)
    want = (s["heads"], s["kv"], s["head_dim"], s["window"], s["factor"] or 1.0, 1e6, 1e4, [5], 8.0)
    if got != want:
        raise SystemExit(f"{size}: reference reads {got}, expected {want}")


def stats(logits, ids):
    top = np.sort(logits, axis=-1)
    self_top1 = float((logits.argmax(-1) == ids).mean())
    margin = top[:, -1] - top[:, -2]
    am = logits.argmax(-1)
    return {"logit_std_mean": round(float(logits.std(-1).mean()), 4),
            "logit_range_mean": round(float((top[:, -1] - top[:, 0]).mean()), 4),
            "distinct_top1": int(len(np.unique(am))),
            "top1_is_input_token": round(self_top1, 3),
            "min_top1_margin": round(float(margin.min()), 6),
            "positions_margin_below_0.01": int((margin < 0.01).sum())}


def make_size(out_dir, size, force):
    d = os.path.join(out_dir, size)
    manifest_path = os.path.join(d, "manifest.json")
    version = generator_version()
    if not force and os.path.exists(manifest_path):
        try:
            old = json.load(open(manifest_path))
            files = [os.path.join(d, f) for f in old.get("files", {})]
            if old.get("generator") == version and all(os.path.exists(f) for f in files):
                print(f"size-structures {size}: up to date", file=sys.stderr)
                return old
        except (OSError, ValueError):
            pass
    t0 = time.time()
    os.makedirs(d, exist_ok=True)
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    s = SIZES[size]
    W = make_weights(size)
    ids = make_ids(size)
    refs, summary = {}, {}
    for variant in VARIANTS:
        path = os.path.join(d, f"model-{variant}.gguf")
        write_gguf(path, size, W, variant)
        m = reference(path, size)
        check_structure(m, size)
        t1 = time.time()
        lg = m.logits(ids)
        refs["logits." + variant] = lg
        summary[variant] = stats(lg, ids)
        summary[variant]["reference_seconds"] = round(time.time() - t1, 1)
        if variant != "f32":
            summary[variant]["max_abs_diff_vs_f32"] = round(float(np.abs(lg - refs["logits.f32"]).max()), 4)
    write_hf(os.path.join(d, "hf"), size, W)
    # The HF folder's tensors are the f32 GGUF's exactly (norms: 1 + w there, w here).
    r = GGUFReader(os.path.join(d, "model-f32.gguf"))
    g = {t.name: np.asarray(t.data) for t in r.tensors}
    for k, v in W.items():
        want = (np.float32(1) + v) if is_norm(k) else v
        if not np.array_equal(g[k + ".weight"].reshape(v.shape), want.astype(np.float32)):
            raise SystemExit(f"{size}: {k} differs between the f32 GGUF and the weights")
    ref_path = os.path.join(d, "reference.safetensors")
    save_file({"input_ids": ids, **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in refs.items()}},
              ref_path + ".tmp", metadata={"window": str(s["window"])})
    os.replace(ref_path + ".tmp", ref_path)
    files = [f"model-{v}.gguf" for v in VARIANTS] + ["hf/config.json", "hf/model.safetensors", "reference.safetensors"]
    manifest = {
        "size": size, "generator": version,
        "structure": {"hidden": HIDDEN, "vocab": VOCAB, "layers": LAYERS, "ffn": FFN, "heads": s["heads"],
                      "kv_heads": s["kv"], "head_dim": s["head_dim"], "query_pre_attn_scalar": s["qpas"],
                      "sliding_window": s["window"], "rope_linear_factor_global": s["factor"],
                      "rope_base_local": 10000.0, "rope_base_global": 1000000.0,
                      "global_layers": [i for i in range(LAYERS) if is_global(i)]},
        "mixed_types": {n: mixed_type(size, n).name for n in MATRICES},
        "sequence_length": int(len(ids)), "seed": s["seed"],
        "weights_sha256": weights_checksum(W),
        "ids_sha256": hashlib.sha256(ids.astype("<i8").tobytes()).hexdigest(),
        "reference": "scripts/reference/gemma3_ref.py on each GGUF: gguf-py dequantization, float64 compute, float32 "
                     f"storage, query scale {s['qpas']}^-0.5, embed scale sqrt(64) = 8, RoPE angles in float64",
        "logits": summary,
        "files": {f: sha256(os.path.join(d, f)) for f in files},
        "seconds": round(time.time() - t0, 1),
    }
    with open(manifest_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(manifest_path + ".tmp", manifest_path)
    print(f"size-structures {size}: {len(ids)} tokens (window {s['window']}), "
          + ", ".join(f"{v}: logit std {summary[v]['logit_std_mean']}, {summary[v]['distinct_top1']} distinct top-1, "
                      f"min margin {summary[v]['min_top1_margin']}" for v in VARIANTS)
          + f" ({manifest['seconds']} s)", file=sys.stderr)
    return manifest


def check_transformers(out_dir, sizes, path):
    """The NumPy reference (on the f32 GGUF) against transformers' logits (on the HF folder) of the same weights."""
    doc = json.load(open(path))
    tol = doc["tolerance"]
    ok = True
    for size in sizes:
        t = doc["sizes"][size]
        man = json.load(open(os.path.join(out_dir, size, "manifest.json")))
        if t["weights_sha256"] != man["weights_sha256"] or t["ids_sha256"] != man["ids_sha256"]:
            print(f"{size}: transformers' record is for other weights or ids (numpy's random streams changed?)",
                  file=sys.stderr)
            ok = False
            continue
        from safetensors.numpy import load_file
        ref = load_file(os.path.join(out_dir, size, "reference.safetensors"))["logits.f32"]
        worst = 0.0
        for p, lse, top in zip(t["positions"], t["lse"], t["top"]):
            row = ref[p].astype(np.float64)
            mx = row.max()
            worst = max(worst, abs(mx + np.log(np.exp(row - mx).sum()) - lse))
            for i, v in top:
                worst = max(worst, abs(row[i] - v))
            if int(np.argmax(ref[p])) != top[0][0]:
                print(f"{size}: position {p}: numpy top-1 {int(np.argmax(ref[p]))}, transformers {top[0][0]}", file=sys.stderr)
                ok = False
        print(f"size-structures {size}: numpy reference vs transformers {doc['transformers']}: max |Δ| {worst:.2e} "
              f"over {len(t['positions'])} positions (tolerance {tol})", file=sys.stderr)
        ok &= worst <= tol
    return ok


def sensitivity(out_dir, size):
    """How far the f32 reference moves when one semantic detail is changed."""
    s = SIZES[size]
    path = os.path.join(out_dir, size, "model-f32.gguf")
    ids = make_ids(size)
    base = reference(path, size).logits(ids)
    out = {}
    for label, kw, tweak in [("window - 1", {}, lambda m: setattr(m, "window", m.window - 1)),
                             ("window + 1", {}, lambda m: setattr(m, "window", m.window + 1)),
                             ("no linear RoPE", {}, lambda m: setattr(m, "rope_factor", 1.0)),
                             ("query scale head_dim^-0.5", {}, lambda m: setattr(m, "q_scale", m.head_dim ** -0.5)),
                             ("RoPE angles f32", {"rope_f32": True}, lambda m: None)]:
        if label == "no linear RoPE" and not s["factor"]:
            continue
        if label.startswith("query scale") and s["qpas"] == s["head_dim"]:
            continue
        m = reference(path, size, **kw)
        tweak(m)
        d = np.abs(m.logits(ids) - base).max(-1)
        out[label] = (float(d.max()), int((d > 1e-3).sum()))
        print(f"{size} {label}: max |Δlogit| {d.max():.3g}, positions over 1e-3: {int((d > 1e-3).sum())}/{len(ids)}",
              file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--force", action="store_true", help="remake even when up to date")
    ap.add_argument("--check-transformers", metavar="JSON", help="compare with transformers' record of the same weights")
    ap.add_argument("--sensitivity", action="store_true")
    args = ap.parse_args()
    sizes = [x for x in args.sizes.split(",") if x]
    for size in sizes:
        if size not in SIZES:
            raise SystemExit(f"unknown size {size} (known: {', '.join(SIZES)})")
        make_size(args.out, size, args.force)
    if args.sensitivity:
        for size in sizes:
            sensitivity(args.out, size)
    if args.check_transformers:
        if not check_transformers(args.out, sizes, args.check_transformers):
            raise SystemExit("numpy reference and transformers disagree")


if __name__ == "__main__":
    main()
