#!/usr/bin/env python3
"""The tiny vision fixture's weights in every container and layout the encoder reads, and a reference for each.

Reads Tests/Fixtures/gemma3-tiny-vision (model.safetensors, config.json, fixtures.safetensors: transformers 5.23's
outputs) and writes under Tests/Fixtures/generated/gemma3-tiny-vision-weights/ (git-ignored; run by scripts/test.sh,
read by Tests/GemmaVisionTests/MMProj*Tests.swift and EncoderCheckpointTests.swift):

  llama.cpp mmproj GGUF files (gguf-py's GGUFWriter and quantizer):
  f32.gguf      every tensor F32 (but the projection, see below)
  f16.gguf      as convert_hf_to_gguf.py --mmproj --outtype f16 writes Gemma 3: matrices F16, `.embeddings.` tensors
                (patch and position embedding) forced F32, mm.input_projection forced F16, vectors F32
  bf16.gguf     the same with BF16 matrices (the projection still forced F16)
  q8_0.gguf     the same with Q8_0 matrices (gguf-py's quantizer)
  old-swapped.gguf   as f32.gguf with fc1 stored as v.blk.N.ffn_down and fc2 as ffn_up, as the old
                examples/llava/gemma3_convert_encoder_to_gguf.py wrote them
  Hugging Face folders (the safetensors library; the fixture's config.json):
  hf-sharded/   f32, transformers 4.5x's names (model.vision_tower.vision_model.*, model.multi_modal_projector.*,
                model.language_model.*) in two shards under model.safetensors.index.json
  hf-bf16/      every tensor rounded to bf16 (round to nearest even), names model.vision_tower.* (no vision_model.)
  hf-f16/       every tensor as f16, the hub's names (vision_tower.vision_model.*)

  reference.safetensors   per variant, `{variant}.last_hidden_state.pas` [4, 256, 32] and `{variant}.soft_tokens.pas`
                [4, 16, 80]: scripts/reference/siglip_ref.py (NumPy, float64) on that variant's tensors as gguf-py's
                GGUFReader / dequantize or the safetensors library read them back (mmproj names mapped to
                transformers' by siglip_ref), on the fixture's 4-image Pan & Scan pixel values
  manifest.json   generator version (hash of this file and siglip_ref.py), sha256 of every file, and how far each
                variant's reference lies from transformers' f32 outputs

mmproj names and metadata are what the converter writes (Gemma3VisionModel + MmprojModel.set_gguf_parameters:
general.architecture "clip", general.type "mmproj", general.file_type, clip.has_vision_encoder, clip.projector_type
"gemma3", clip.vision.{image_size, patch_size, embedding_length, feed_forward_length, block_count,
attention.head_count, attention.layer_norm_epsilon, projection_dim, image_mean, image_std}, clip.use_gelu; no
clip.vision.projector.scale_factor, since this model pools 4 x 4 as the released ones do); mm.soft_emb_norm holds
1 + w. Before writing, the script checks that siglip_ref on the f32 weights reproduces transformers' fixture.

Usage: python3 scripts/reference/make_vision_weight_fixtures.py [--out DIR] [--force]
Skips the work when manifest.json records the same generator version. Needs numpy, gguf (gguf-py), safetensors.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType as T
from gguf.quants import dequantize, quantize
from safetensors.numpy import load_file, save_file
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import siglip_ref  # noqa: E402

FIXTURE = os.path.join(REPO, "Tests", "Fixtures", "gemma3-tiny-vision")
DEFAULT_OUT = os.path.join(REPO, "Tests", "Fixtures", "generated", "gemma3-tiny-vision-weights")
VARIANTS = {"f32": T.F32, "f16": T.F16, "bf16": T.BF16, "q8_0": T.Q8_0, "old-swapped": T.F32}
# Hugging Face folders: (tower prefix, projector prefix, language-model prefix, dtype, shards).
HF_VARIANTS = {
    "hf-sharded": ("model.vision_tower.vision_model.", "model.multi_modal_projector.", "model.language_model.", "f32", 2),
    "hf-bf16": ("model.vision_tower.", "model.multi_modal_projector.", "model.language_model.", "bf16", 1),
    "hf-f16": ("vision_tower.vision_model.", "multi_modal_projector.", "language_model.model.", "f16", 1),
}
# llama.cpp's LlamaFileType for general.file_type: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32.
FILE_TYPE = {T.F32: 0, T.F16: 1, T.Q8_0: 7, T.BF16: 32}


def version():
    h = hashlib.sha256()
    for f in (__file__, siglip_ref.__file__):
        h.update(open(f, "rb").read())
    return h.hexdigest()[:16]


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def mmproj_tensors(W, layers):
    """transformers' names -> [(mmproj name, float32 array)] in the converter's naming (ffn_up = fc1)."""
    vt, mm = siglip_ref.VT, siglip_ref.MM
    out = [("v.patch_embd.weight", W[vt + "embeddings.patch_embedding.weight"]),
           ("v.patch_embd.bias", W[vt + "embeddings.patch_embedding.bias"]),
           ("v.position_embd.weight", W[vt + "embeddings.position_embedding.weight"])]
    names = [("ln1", "layer_norm1"), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
             ("attn_v", "self_attn.v_proj"), ("attn_out", "self_attn.out_proj"), ("ln2", "layer_norm2"),
             ("ffn_up", "mlp.fc1"), ("ffn_down", "mlp.fc2")]
    for i in range(layers):
        for g, h in names:
            for part in ("weight", "bias"):
                out.append((f"v.blk.{i}.{g}.{part}", W[f"{vt}encoder.layers.{i}.{h}.{part}"]))
    out += [("v.post_ln.weight", W[vt + "post_layernorm.weight"]), ("v.post_ln.bias", W[vt + "post_layernorm.bias"]),
            ("mm.soft_emb_norm.weight", (W[mm + "mm_soft_emb_norm.weight"] + np.float32(1)).astype(np.float32)),
            ("mm.input_projection.weight", W[mm + "mm_input_projection_weight"])]
    return out


def stored_type(name, array, matrices):
    """The converter's type choice: vectors F32, `.embeddings.` F32, the projection F16, other matrices `matrices`."""
    if array.ndim == 1 or name.startswith(("v.patch_embd", "v.position_embd")):
        return T.F32
    if name.startswith("mm.input_projection"):
        return T.F16
    return matrices


def write(path, tensors, vcfg, text_hidden, qtype):
    w = GGUFWriter(path + ".tmp", arch="clip")
    w.add_type("mmproj")
    w.add_file_type(FILE_TYPE[qtype])
    w.add_clip_has_vision_encoder(True)
    w.add_vision_projection_dim(text_hidden)
    w.add_vision_image_size(vcfg["image_size"])
    w.add_vision_patch_size(vcfg["patch_size"])
    w.add_vision_embedding_length(vcfg["hidden_size"])
    w.add_vision_feed_forward_length(vcfg["intermediate_size"])
    w.add_vision_block_count(vcfg["num_hidden_layers"])
    w.add_vision_head_count(vcfg["num_attention_heads"])
    w.add_vision_image_mean([0.5, 0.5, 0.5])
    w.add_vision_image_std([0.5, 0.5, 0.5])
    w.add_clip_projector_type("gemma3")
    w.add_vision_attention_layernorm_eps(vcfg.get("layer_norm_eps", 1e-6))
    w.add_vision_use_gelu(True)
    for name, a in tensors:
        t = stored_type(name, a, qtype)
        a = np.ascontiguousarray(a, dtype=np.float32)
        if t == T.F32:
            w.add_tensor(name, a)
        elif t == T.F16:
            w.add_tensor(name, a.astype(np.float16))
        else:
            w.add_tensor(name, quantize(a, t), raw_dtype=t)  # bytes; gguf-py derives the element shape
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".tmp", path)


def read_back(path):
    """The file's tensors as gguf-py reads and dequantizes them, PyTorch-order shapes."""
    out = {}
    for t in GGUFReader(path).tensors:
        shape = [int(d) for d in reversed(t.shape)]
        if t.tensor_type in (T.F32, T.F16):
            v = np.asarray(t.data).astype(np.float32)
        else:
            v = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32)
        out[t.name] = v.reshape(shape)
    return out


def bf16_round(a):
    """float32 -> the nearest bfloat16 (ties to even), as float32 values and as the raw uint16 bits."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32), bits


def write_hf(folder, saved, prefixes, dtype, shards):
    """The fixture's tensors renamed to `prefixes` (tower, projector, language model) in `dtype`, as model.safetensors
    or `shards` files under model.safetensors.index.json, with the fixture's config.json. Returns the vision and
    projector tensors under siglip_ref's names, as the file stores them (float32 values)."""
    tower, projector, lm = prefixes
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    shutil.copyfile(os.path.join(FIXTURE, "config.json"), os.path.join(folder, "config.json"))
    renamed, stored = {}, {}
    for k, v in saved.items():
        if k.startswith("vision_tower."):
            name, ref = tower + k[len("vision_tower."):], siglip_ref.VT + k[len("vision_tower."):]
        elif k.startswith("multi_modal_projector."):
            name, ref = projector + k[len("multi_modal_projector."):], k
        elif k.startswith("language_model.model."):
            name, ref = lm + k[len("language_model.model."):], None
        else:
            name, ref = k, None
        if dtype == "bf16":
            values, bits = bf16_round(v)
            renamed[name] = bits  # written below with dtype BF16
        elif dtype == "f16":
            renamed[name] = v.astype(np.float16)
            values = renamed[name].astype(np.float32)
        else:
            renamed[name] = np.ascontiguousarray(v, dtype=np.float32)
            values = renamed[name]
        if ref is not None:
            stored[ref] = values
    names = sorted(renamed)
    groups = [names[i::shards] for i in range(shards)]
    files = ["model.safetensors"] if shards == 1 else [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    for file, group in zip(files, groups):
        path = os.path.join(folder, file)
        if dtype == "bf16":
            write_bf16_safetensors(path, {n: renamed[n] for n in group})
        else:
            save_file({n: renamed[n] for n in group}, path, metadata={"format": "pt"})
    if shards > 1:
        index = {"metadata": {"total_size": int(sum(renamed[n].nbytes for n in names))},
                 "weight_map": {n: files[i] for i, group in enumerate(groups) for n in group}}
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)
    return stored


def write_bf16_safetensors(path, bits):
    """safetensors with BF16 tensors from their uint16 bits: the safetensors library's numpy API has no bfloat16,
    so the header is written here by the format's rules (u64 header length, JSON, 8-byte padding, data)."""
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for n in sorted(bits):
        b = np.ascontiguousarray(bits[n]).tobytes()
        header[n] = {"dtype": "BF16", "shape": list(bits[n].shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_hf(folder):
    """Every vision / projector tensor of a folder as the safetensors library reads it (BF16 from its bits), under
    siglip_ref's names whatever the folder's prefixes."""
    out = {}
    for file in sorted(os.listdir(folder)):
        if not file.endswith(".safetensors"):
            continue
        raw = open(os.path.join(folder, file), "rb").read()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        data = raw[8 + n:]
        for name, info in header.items():
            if name == "__metadata__":
                continue
            b, e = info["data_offsets"]
            kind = {"F32": "<f4", "F16": "<f2", "BF16": "<u2"}[info["dtype"]]
            v = np.frombuffer(data[b:e], dtype=kind)
            v = (v.astype(np.uint32) << 16).view(np.float32) if info["dtype"] == "BF16" else v.astype(np.float32)
            v = v.reshape(info["shape"])
            for tower in ("model.vision_tower.vision_model.", "vision_tower.vision_model.", "model.vision_tower.", "vision_tower."):
                if name.startswith(tower):
                    out[siglip_ref.VT + name[len(tower):]] = v
                    break
            else:
                for proj in ("model.multi_modal_projector.", "multi_modal_projector."):
                    if name.startswith(proj):
                        out[siglip_ref.MM + name[len(proj):]] = v
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    manifest_path = os.path.join(args.out, "manifest.json")
    ver = version()
    if not args.force and os.path.exists(manifest_path):
        try:
            if json.load(open(manifest_path)).get("generator_version") == ver and all(
                    os.path.exists(os.path.join(args.out, f))
                    for f in [f"{v}.gguf" for v in VARIANTS] + list(HF_VARIANTS) + ["reference.safetensors"]):
                return
        except (OSError, ValueError):
            pass
    os.makedirs(args.out, exist_ok=True)
    if os.path.exists(manifest_path):
        os.remove(manifest_path)

    cfg = json.load(open(os.path.join(FIXTURE, "config.json")))
    vcfg, text_hidden, mm_tokens = cfg["vision_config"], cfg["text_config"]["hidden_size"], cfg["mm_tokens_per_image"]
    layers = vcfg["num_hidden_layers"]
    saved = load_file(os.path.join(FIXTURE, "model.safetensors"))
    # transformers 5 saves vision_tower.* (no vision_model.); siglip_ref uses the hub's names.
    W = {}
    for k, v in saved.items():
        if k.startswith("vision_tower."):
            W[siglip_ref.VT + k[len("vision_tower."):]] = v
        elif k.startswith("multi_modal_projector."):
            W[k] = v
    fx = load_file(os.path.join(FIXTURE, "fixtures.safetensors"))
    pixels = fx["pixel_values.pas"]

    def run(weights):
        _, _, last = siglip_ref.siglip(weights, vcfg, pixels)
        return last, siglip_ref.projector(weights, vcfg, mm_tokens, last)[2]

    def rel(a, b):
        return float(np.abs(a - b).max() / np.abs(b).max())

    # The reference itself against transformers, before it is trusted with anything else.
    last, soft = run(W)
    for name, got, want in (("last_hidden_state", last, fx["vision.last_hidden_state.pas"]),
                            ("soft_tokens", soft, fx["projector.soft_tokens.pas"])):
        if not rel(got, want) < 1e-5:
            raise SystemExit(f"siglip_ref's {name} is {rel(got, want):.3g} (relative) from transformers': reference broken")

    reference, files, distance = {}, {}, {}
    for variant, qtype in VARIANTS.items():
        tensors = mmproj_tensors(W, layers)
        if variant == "old-swapped":
            swap = {".ffn_up.": ".ffn_down.", ".ffn_down.": ".ffn_up."}
            tensors = [(next((n.replace(a, b) for a, b in swap.items() if a in n), n), t) for n, t in tensors]
        path = os.path.join(args.out, f"{variant}.gguf")
        write(path, tensors, vcfg, text_hidden, qtype)
        back = siglip_ref.hf_names_from_mmproj(read_back(path), layers)
        last, soft = run(back)
        reference[f"{variant}.last_hidden_state.pas"] = last.astype(np.float32)
        reference[f"{variant}.soft_tokens.pas"] = soft.astype(np.float32)
        files[f"{variant}.gguf"] = sha256(path)
        distance[variant] = {"last_hidden_state": rel(last, fx["vision.last_hidden_state.pas"]),
                             "soft_tokens": rel(soft, fx["projector.soft_tokens.pas"])}
    for variant, (tower, projector, lm, dtype, shards) in HF_VARIANTS.items():
        folder = os.path.join(args.out, variant)
        written = write_hf(folder, saved, (tower, projector, lm), dtype, shards)
        back = read_hf(folder)
        if set(back) != set(written) or any(not np.array_equal(back[k], written[k]) for k in written):
            raise SystemExit(f"{variant}: the folder does not read back as written")
        last, soft = run(back)
        reference[f"{variant}.last_hidden_state.pas"] = last.astype(np.float32)
        reference[f"{variant}.soft_tokens.pas"] = soft.astype(np.float32)
        for file in sorted(os.listdir(folder)):
            files[f"{variant}/{file}"] = sha256(os.path.join(folder, file))
        distance[variant] = {"last_hidden_state": rel(last, fx["vision.last_hidden_state.pas"]),
                             "soft_tokens": rel(soft, fx["projector.soft_tokens.pas"])}
    ref_path = os.path.join(args.out, "reference.safetensors")
    save_file(reference, ref_path)
    files["reference.safetensors"] = sha256(ref_path)
    manifest = {"generator_version": ver, "files": files, "relative_distance_to_transformers_f32": distance,
                "fixture_model_sha256": sha256(os.path.join(FIXTURE, "model.safetensors"))}
    with open(manifest_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(manifest_path + ".tmp", manifest_path)
    print(f"make_vision_weight_fixtures: wrote {len(VARIANTS)} mmproj files and {len(HF_VARIANTS)} folders to {args.out}",
          file=sys.stderr)
    for v, d in distance.items():
        print(f"  {v}: reference vs transformers f32, relative max |Δ| last_hidden_state {d['last_hidden_state']:.3g}, "
              f"soft_tokens {d['soft_tokens']:.3g}", file=sys.stderr)


if __name__ == "__main__":
    main()
