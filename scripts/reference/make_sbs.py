#!/usr/bin/env python3
"""Builds small gemma.cpp .sbs files by hand, from the format's description (docs: the project's formats.md section
1.6, and what gemma.cpp's io/blob_store.cc, io/fields.cc, util/mat.h, gemma/configs.h, gemma/tensor_info.cc,
gemma/weights.cc and gemma/model_store.cc establish; no gemma.cpp code is used or copied), with numpy and struct only
and the SFP8 encoder of sfp8.py beside this file. Writes to Tests/Fixtures/sbs/:

    tiny-v2.sbs       V2 layout (header with no blobs at 0, blobs from 256, directory + header at the end, 64 KiB
                      end padding): config, tokenizer, toc and one blob per tensor, written in gemma.cpp's order
                      (tensors first); matrices SFP8 with per-tensor scales, one f32, embedding and norms bf16 / f32
    tiny-v1.sbs       the same blobs in the V1 layout (header and directory at 0, no end padding, as older files)
    tiny-legacy.sbs   a pre-2025 file: V1 layout, keys with a type prefix ($ SFP, B bf16, F f32), no config, no toc,
                      no tokenizer, SFP scales in an `Fscales` blob in gemma.cpp's visit order
    expected.json     what each file holds: blob names, stored config, every tensor decoded (f32 values), and every
                      weight in transformers' layout (q/k/v/o/gate/up/down/norms) computed here with numpy from the
                      decoded gemma.cpp tensors (qkv_ein rows: q, then per KV head k and v; att_ein [H*d, hd] is
                      o_proj's [d, H*hd] regrouped by head; gating_ein: gate then up)

    python3 scripts/reference/make_sbs.py [--check]   # --check: rebuild in memory and compare with the files
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfp8  # noqa: E402  (scripts/reference/sfp8.py, a copy of the project's shared reference)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "sbs")

# The tiny model: vocab 32, width 8, FFN 12, 2 layers (local window 3, then global), 4 heads over 2 KV heads of 4.
VOCAB, D, FF, LAYERS, H, KV, HD, WINDOW, MAX_SEQ = 32, 8, 12, 2, 4, 2, 4, 3, 16
TYPE = {"f32": 1, "bf16": 2, "sfp": 3}
MAGIC = 0x0A534253


# ---- fields.cc serialization: u32 words --------------------------------------------------------------------------

class Words:
    def __init__(self):
        self.w = []

    def u32(self, v):
        self.w.append(v & 0xFFFFFFFF)

    def i32(self, v):
        self.w.append(v & 0xFFFFFFFF)

    def f32(self, v):
        self.w.append(struct.unpack("<I", struct.pack("<f", v))[0])

    def bool(self, v):
        self.w.append(1 if v else 0)

    def string(self, s):
        b = s.encode("ascii")
        n = (len(b) + 3) // 4
        self.u32(n)
        b = b + b"\0" * (4 * n - len(b))
        for i in range(n):
            self.w.append(struct.unpack("<I", b[4 * i:4 * i + 4])[0])

    def struct(self, fill):
        """A nested IFields: a word with the number of words that follow, then the fields."""
        at = len(self.w)
        self.w.append(0)
        fill(self)
        self.w[at] = len(self.w) - at - 1

    def bytes(self):
        return b"".join(struct.pack("<I", x) for x in self.w)


def layer_config(w):
    # LayerConfig::VisitFields: model_dim, griffin_dim (unused), ff_hidden_dim, heads, kv_heads, qkv_dim,
    # conv1d_width (unused), ff_biases, softmax_attn_output_biases (unused), optimized_gating, post_norm (1 Scale),
    # type (0 Gemma), activation (0 GELU), post_qk (0 RoPE), use_qk_norm.
    for v in (D, 0, FF, H, KV, HD, 0):
        w.u32(v)
    for v in (False, False, True):
        w.bool(v)
    for v in (1, 0, 0, 0):
        w.u32(v)
    w.bool(True)


def vit_config(w):
    # VitConfig::VisitFields: model_dim, seq_len, num_scales, patch_width, image_size, layer_configs, pool_dim.
    for v in (0, 0, 0, 14, 224, 0, 1):
        w.u32(v)


def model_config(w, name):
    # ModelConfig::VisitFields, in its order.
    w.u32(1)                      # model_family_version
    w.string(name)                # display_name
    w.u32(0)                      # model: UNKNOWN (no published size)
    w.u32(1)                      # wrapping: GEMMA_PT
    w.u32(TYPE["sfp"])            # weight: the smallest type in the toc
    for v in (LAYERS, D, VOCAB, MAX_SEQ, 0):
        w.u32(v)                  # num_layers, model_dim, vocab_size, max_seq_len, num_tensor_scales (unused)
    w.f32(0.0)                    # att_cap
    w.f32(0.0)                    # final_cap
    w.bool(False)                 # absolute_pe
    w.bool(False)                 # use_local_attention (unused)
    w.u32(0)                      # query_scale: 1/sqrt(qkv_dim)
    w.u32(LAYERS)                 # layer_configs: count, then each a nested struct
    for _ in range(LAYERS):
        w.struct(layer_config)
    windows = [WINDOW, MAX_SEQ]   # layer 1 global: its window is max_seq_len
    w.u32(len(windows))
    for v in windows:
        w.u32(v)
    w.u32(1)                      # norm_num_groups
    w.struct(vit_config)          # vit_config (empty)
    w.u32(1)                      # pool_dim
    w.i32(1)                      # eos_id
    w.i32(106)                    # secondary_eos_id
    names = ["att_ein", "qkv_ein", "gr_lin_x_w", "gr_lin_y_w", "gr_lin_out_w", "gr_gate_w", "gating_ein", "linear_w"]
    w.u32(len(names))             # scale_base_names
    for s in names:
        w.string(s)


def mat_ptr(w, name, typ, rows, cols, scale):
    # MatPtr::VisitFields: name, type, element_bytes, num_elements, rows, cols, scale, stride (= cols, packed).
    def fill(w):
        w.string(name)
        w.u32(TYPE[typ])
        w.u32({"f32": 4, "bf16": 2, "sfp": 1}[typ])
        w.u32(rows * cols)
        w.u32(rows)
        w.u32(cols)
        w.f32(scale)
        w.u32(cols)
    w.struct(fill)


# ---- tensor encodings ---------------------------------------------------------------------------------------------

def encode(values, typ):
    """float32 [rows, cols] -> (bytes, scale, decoded float32 values)."""
    v = np.ascontiguousarray(values, dtype=np.float32)
    if typ == "f32":
        return v.astype("<f4").tobytes(), 1.0, v
    if typ == "bf16":   # round to nearest even
        bits = v.view(np.uint32).astype(np.uint64)
        h = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        return h.astype("<u2").tobytes(), 1.0, (h.astype(np.uint32) << 16).view(np.float32)
    # SFP8: one scale per tensor (gemma.cpp ScaleWeights), values times float(1 / double(scale)), clamped, encoded.
    m = np.float32(np.abs(v).max())
    scale = np.float32(m / np.float32(sfp8.MAX)) if m > sfp8.MAX else np.float32(1.0)
    inv = np.float32(1.0 / float(scale))
    scaled = np.clip(v * inv, -sfp8.MAX, sfp8.MAX).astype(np.float32)
    codes = np.array([sfp8.encode(float(x)) for x in scaled.ravel()], dtype=np.uint8).reshape(v.shape)
    decoded = (np.array([sfp8.decode(int(c)) for c in codes.ravel()], dtype=np.float32).reshape(v.shape) * scale)
    return codes.tobytes(), float(scale), decoded.astype(np.float32)


# ---- the model -----------------------------------------------------------------------------------------------------

def hf_weights():
    """Random weights in transformers' layout (rows = output features); a few large values so SFP8 needs scales."""
    rng = np.random.default_rng(20261206)
    g = lambda *s, sd=0.3: (rng.standard_normal(s) * sd).astype(np.float32)  # noqa: E731
    w = {"embed": g(VOCAB, D, sd=0.5), "norm": g(D, sd=0.1)}
    for l in range(LAYERS):
        w.update({f"q{l}": g(H * HD, D), f"k{l}": g(KV * HD, D), f"v{l}": g(KV * HD, D), f"o{l}": g(D, H * HD),
                  f"gate{l}": g(FF, D), f"up{l}": g(FF, D), f"down{l}": g(D, FF)})
        for n in ("in", "post_att", "pre_ff", "post_ff"):
            w[f"{n}{l}"] = g(D, sd=0.1)
        w[f"qn{l}"], w[f"kn{l}"] = g(HD, sd=0.1), g(HD, sd=0.1)
        w[f"q{l}"][0, 0], w[f"o{l}"][1, 2], w[f"gate{l}"][3, 4] = 2.6, -3.1, 4.0
    return w


def gemma_tensors(w, legacy):
    """gemma.cpp's tensors in its visit order: (name, type, [rows, cols] float32)."""
    out = [("c_embedding", "bf16", w["embed"]), ("c_final_norm", "bf16", w["norm"][None, :])]
    for l in range(LAYERS):
        # att_ein [H*d, hd]: row h*d + m is o_proj row m, columns h*hd ..< (h+1)*hd.
        att = w[f"o{l}"].reshape(D, H, HD).transpose(1, 0, 2).reshape(H * D, HD)
        # qkv_ein: q's rows, then for each KV head its k rows and its v rows.
        kv = np.stack([w[f"k{l}"].reshape(KV, HD, D), w[f"v{l}"].reshape(KV, HD, D)], axis=1).reshape(2 * KV * HD, D)
        qkv = np.concatenate([w[f"q{l}"], kv])
        gating = np.concatenate([w[f"gate{l}"], w[f"up{l}"]])
        down_type = "f32" if (l == 1 and not legacy) else "sfp"
        norm_type = "f32" if (l == 1 and not legacy) else "bf16"
        out += [(f"att_ein_{l}", "sfp", att), (f"qkv_ein_{l}", "sfp", qkv), (f"gating_ein_{l}", "sfp", gating),
                (f"linear_w_{l}", down_type, w[f"down{l}"])]
        for name, key in (("pre_att_ns", "in"), ("pre_ff_ns", "pre_ff"), ("post_att_ns", "post_att"),
                          ("post_ff_ns", "post_ff"), ("key_norm", "kn"), ("query_norm", "qn")):
            out.append((f"{name}_{l}", norm_type, w[f"{key}{l}"][None, :]))
    return out


def hf_from_decoded(t):
    """Transformers' layout of the decoded gemma.cpp tensors (the inverse of gemma_tensors' mapping)."""
    p = "model."
    out = {p + "embed_tokens.weight": t["c_embedding"], p + "norm.weight": t["c_final_norm"][0]}
    for l in range(LAYERS):
        q = f"{p}layers.{l}."
        qkv = t[f"qkv_ein_{l}"]
        pairs = qkv[H * HD:].reshape(KV, 2, HD, D)
        att = t[f"att_ein_{l}"].reshape(H, D, HD).transpose(1, 0, 2).reshape(D, H * HD)
        out.update({q + "self_attn.q_proj.weight": qkv[:H * HD], q + "self_attn.k_proj.weight": pairs[:, 0].reshape(KV * HD, D),
                    q + "self_attn.v_proj.weight": pairs[:, 1].reshape(KV * HD, D), q + "self_attn.o_proj.weight": att,
                    q + "mlp.gate_proj.weight": t[f"gating_ein_{l}"][:FF], q + "mlp.up_proj.weight": t[f"gating_ein_{l}"][FF:],
                    q + "mlp.down_proj.weight": t[f"linear_w_{l}"]})
        for name, hf in (("pre_att_ns", "input_layernorm"), ("post_att_ns", "post_attention_layernorm"),
                         ("pre_ff_ns", "pre_feedforward_layernorm"), ("post_ff_ns", "post_feedforward_layernorm"),
                         ("query_norm", "self_attn.q_norm"), ("key_norm", "self_attn.k_norm")):
            out[f"{q}{hf}.weight"] = t[f"{name}_{l}"][0]
    return out


# ---- BlobStore layouts ---------------------------------------------------------------------------------------------

def short(values):
    """float32 values as the shortest decimals that read back as the same float32 (a smaller JSON)."""
    return [float(np.format_float_positional(np.float32(x), unique=True, trim="0")) for x in np.ravel(values)]


def roundup(n, a=256):
    return (n + a - 1) // a * a


def directory(blobs, offsets):
    keys = b"".join(name.encode("ascii").ljust(16, b"\0") for name, _ in blobs)
    ranges = b"".join(struct.pack("<QQ", off, len(data)) for (_, data), off in zip(blobs, offsets))
    return keys + ranges


def v1(blobs):
    """Header (num_blobs > 0) + directory + zeros to 256, blobs padded to 256, no end padding."""
    first = roundup(16 + 32 * len(blobs))
    offsets, at = [], first
    for _, data in blobs:
        offsets.append(at)
        at = roundup(at + len(data))
    body = b"".join(data + b"\0" * (roundup(len(data)) - len(data)) for _, data in blobs)
    head = struct.pack("<IIQ", MAGIC, len(blobs), first + len(body)) + directory(blobs, offsets)
    return head + b"\0" * (first - len(head)) + body


def v2(blobs):
    """Header with no blobs (file_bytes 64 KiB) + zeros to 256, blobs padded to 256, zeros, directory, header;
    the file is roundup(256 + blobs + roundup(16 + 32 n, 256), 64 KiB) bytes."""
    offsets, at = [], 256
    for _, data in blobs:
        offsets.append(at)
        at = roundup(at + len(data))
    body = b"".join(data + b"\0" * (roundup(len(data)) - len(data)) for _, data in blobs)
    size = roundup(256 + len(body) + roundup(16 + 32 * len(blobs)), 64 * 1024)
    tail = directory(blobs, offsets) + struct.pack("<IIQ", MAGIC, len(blobs), size)
    head = struct.pack("<IIQ", MAGIC, 0, 64 * 1024).ljust(256, b"\0")
    return head + body + b"\0" * (size - 256 - len(body) - len(tail)) + tail


# ---- the files -----------------------------------------------------------------------------------------------------

TOKENIZER = b"\x0a\x0b\x0a\x05<pad>\x15\x00\x00\x00\x00"   # stand-in bytes: the blob is checked byte for byte


def build():
    w = hf_weights()
    files, expected = {}, {"model": {"vocab": VOCAB, "hidden": D, "ffn": FF, "layers": LAYERS, "heads": H,
                                     "kv_heads": KV, "head_dim": HD, "window": WINDOW, "max_seq_len": MAX_SEQ,
                                     "global_layers": [1], "query_pre_attn_scalar": HD, "eos": [1, 106]}}
    for kind in ("v2", "v1", "legacy"):
        legacy = kind == "legacy"
        tensors, blobs, toc, decoded = [], [], Words(), {}
        for name, typ, values in gemma_tensors(w, legacy):
            data, scale, dec = encode(values, typ)
            key = ({"f32": "F", "bf16": "B", "sfp": "$"}[typ] + name) if legacy else name
            blobs.append((key, data))
            if not legacy:
                mat_ptr(toc, name, typ, values.shape[0], values.shape[1], scale)
            decoded[name] = dec
            tensors.append({"name": name, "type": typ, "rows": values.shape[0], "cols": values.shape[1],
                            "scale": scale, "values": short(dec)})
        if legacy:
            # Fscales: per layer, the tensors of scale_base_names present, in visit order (att_ein, qkv_ein,
            # gating_ein, linear_w); every SFP matrix of this file.
            scales = [t["scale"] for t in tensors if t["name"].rsplit("_", 1)[0] in ("att_ein", "qkv_ein", "gating_ein", "linear_w")]
            blobs.append(("Fscales", struct.pack(f"<{len(scales)}f", *scales)))
        else:
            cfg = Words()
            cfg.struct(lambda x: model_config(x, "tiny " + kind))
            blobs += [("config", cfg.bytes()), ("tokenizer", TOKENIZER), ("toc", toc.bytes())]
        data = v2(blobs) if kind == "v2" else v1(blobs)
        files[f"tiny-{kind}.sbs"] = data
        expected[kind] = {"file": f"tiny-{kind}.sbs", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                          "layout": "v2" if kind == "v2" else "v1", "blobs": [k for k, _ in blobs],
                          "display_name": None if legacy else "tiny " + kind,
                          "tokenizer": None if legacy else list(TOKENIZER)}
        if kind == "v1":   # the same tensors as the V2 file, not repeated
            assert [t["values"] for t in tensors] == [t["values"] for t in expected["v2"]["tensors"]]
            expected[kind]["tensors_as"] = "v2"
        else:
            expected[kind].update({"tensors_as": kind, "tensors": tensors,
                                   "hf": {k: {"shape": list(v.shape), "values": short(v)}
                                          for k, v in hf_from_decoded(decoded).items()}})
    files["expected.json"] = (json.dumps(expected, indent=None, separators=(",", ":")) + "\n").encode()
    return files


def main():
    files = build()
    if "--check" in sys.argv:
        bad = [n for n, data in files.items() if open(os.path.join(OUT, n), "rb").read() != data]
        print("differ: " + ", ".join(bad) if bad else "all files match")
        sys.exit(1 if bad else 0)
    os.makedirs(OUT, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
