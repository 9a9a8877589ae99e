#!/usr/bin/env python3
"""Independent NumPy reference of the Gemma 3 text model, read straight from a GGUF file.

The repo's own exact reference (see scripts/reference/README.md): it does not share code with the Swift engine.
Weights are dequantized with gguf-py (bit-identical to ggml's own dequantization), promoted to float64, and the
whole forward pass is computed in float64. By default every op's result is stored as float32 (as an f32 engine
stores its activations; `--storage f64` keeps float64 throughout); the logits are returned as float32.

Semantics (docs/gemma3-semantics.md), in GGUF conventions:
  * embeddings: token_embd[ids] * sqrt(hidden). Default the exact f32 sqrtf(hidden) as llama.cpp
    (25.298221588134766 for 270M); `--embed-scale bf16` uses the bf16-rounded value (25.25) of HF/JAX/gemma.cpp.
  * RMSNorm: x * rsqrt(mean(x^2) + eps) * w. llama.cpp's converter already stored Gemma's (1 + w) in the GGUF.
  * per layer (sandwich): attn_norm -> attention -> post_attention_norm -> +residual ->
    ffn_norm -> down(gelu_tanh(gate(x)) * up(x)) -> post_ffw_norm -> +residual; final output_norm; tied head.
  * attention: per-head QK-norm (attn_q_norm/attn_k_norm) BEFORE RoPE; RoPE NeoX (rotate_half) over head_dim;
    GQA (query head j uses kv head j // (n_head / n_head_kv)); query scale query_pre_attn_scalar^-0.5 =
    head_dim^-0.5, except 27B (62 layers) where it is (hidden / n_head)^-0.5 (as llama.cpp; override with
    --query-scale); softmax in float64; no softcapping.
  * layer i is global iff (i + 1) % 6 == 0 (gemma3.attention.sliding_window_pattern if the GGUF carries it).
    Local layers: sliding window W = gemma3.attention.sliding_window, window INCLUDES the current token (key k is
    visible from query p iff 0 <= p - k < W), RoPE base 10000, no scaling. Global layers: causal, RoPE base
    gemma3.rope.freq_base, linear scaling (positions / factor) if gemma3.rope.scaling.type == linear.
  * RoPE angles are computed in float64 (pos * base^(-2i/d)); `--rope-f32` computes them like HF/ggml in float32.

Command line:
  python3 scripts/reference/gemma3_ref.py MODEL --ids-file IDS.json --out LOGITS.npy
          [--positions all|last|2048,4096] [--dtype float32] [--topk-json OUT.json K]
  IDS.json: a JSON list of ids, or an object with "input_ids" or "ids" (e.g. reference-topk.json).
  --out writes float32 logits [n_positions x vocab] (an .npy written through a memory map, so 4097 x 262144 is fine).
  --topk-json writes per position the log-sum-exp (float64 over the float32 logits) and the top-K [id, logit]
  sorted by logit, ties by lowest id: the format of Tests/Fixtures/reference-topk.json.
  --greedy N: greedy-decode N tokens after the ids (argmax, ties by lowest id) and print them as JSON.
As a library: `m = Gemma3Ref(path); m.logits(ids, positions)` or `m.forward_blocks(ids, positions)`.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as T
from gguf.quants import dequantize


def _field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


class Gemma3Ref:
    def __init__(self, path, embed_scale="f32", storage="f32", dtype=np.float64, rope_f32=False,
                 query_scale=None, emulate=None, verbose=True):
        t0 = time.time()
        r = GGUFReader(path)
        arch = _field(r, "general.architecture")
        if arch != "gemma3":
            raise SystemExit(f"{path}: general.architecture is {arch!r}, expected 'gemma3'")
        a = arch + "."
        self.n_embd = int(_field(r, a + "embedding_length"))
        self.n_layer = int(_field(r, a + "block_count"))
        self.n_ff = int(_field(r, a + "feed_forward_length"))
        self.n_head = int(_field(r, a + "attention.head_count"))
        self.n_head_kv = int(_field(r, a + "attention.head_count_kv", self.n_head))
        self.head_dim = int(_field(r, a + "attention.key_length", self.n_embd // self.n_head))
        self.eps = float(_field(r, a + "attention.layer_norm_rms_epsilon", 1e-6))
        self.freq_base = float(_field(r, a + "rope.freq_base", 1e6))
        self.freq_base_local = 10000.0  # llama.cpp: rope_freq_base_train_swa = 10000 for gemma3; HF rope_local_base_freq
        self.window = int(_field(r, a + "attention.sliding_window", 512))
        pattern = _field(r, a + "attention.sliding_window_pattern", 6)
        if isinstance(pattern, (list, tuple)):  # per-layer bools (True = sliding) in some newer GGUFs
            self.is_global = [not bool(b) for b in pattern]
        else:
            self.is_global = [(i + 1) % int(pattern) == 0 for i in range(self.n_layer)]
        stype = _field(r, a + "rope.scaling.type")
        sfactor = _field(r, a + "rope.scaling.factor")
        self.rope_factor = float(sfactor) if (stype == "linear" and sfactor) else 1.0
        if stype not in (None, "none", "linear"):
            raise SystemExit(f"unsupported rope.scaling.type {stype!r}")
        if query_scale is not None:
            self.q_scale = float(query_scale)
        elif self.n_layer == 62:  # 27B: query_pre_attn_scalar = hidden / heads (llama.cpp special case)
            self.q_scale = (self.n_embd / self.n_head) ** -0.5
        else:
            self.q_scale = self.head_dim ** -0.5  # query_pre_attn_scalar = head_dim = 256
        if embed_scale == "f32":
            self.embed_scale = float(np.sqrt(np.float32(self.n_embd), dtype=np.float32))
        elif embed_scale == "bf16":
            self.embed_scale = float(bf16_round(np.array([math.sqrt(self.n_embd)], np.float32))[0])
        else:
            self.embed_scale = float(embed_scale)
        self.dt = np.dtype(dtype)
        self.storage = storage
        self.rope_f32 = rope_f32

        self.emulate = set(emulate or ())  # NOT exact: llama.cpp's shortcuts, for calibrating fidelity metrics
        self.wtype = {}
        W = {}
        for t in r.tensors:
            self.wtype[t.name] = t.tensor_type
            shape = tuple(reversed([int(d) for d in t.shape]))  # numpy order: rows = output features
            if t.tensor_type in (T.F32,):
                v = np.asarray(t.data, dtype=np.float32)
            elif t.tensor_type in (T.F16,):
                v = np.asarray(t.data).astype(np.float32)
            else:
                v = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32, copy=False)
            W[t.name] = np.ascontiguousarray(v.reshape(shape))
        self.embd = W.pop("token_embd.weight")  # [vocab, n_embd] float32, also the tied output head
        self.vocab = self.embd.shape[0]
        if "output.weight" in W:
            self.head = W.pop("output.weight")
        else:
            self.head = self.embd
        self.head_cache = None
        dt = self.dt
        self.out_norm = W.pop("output_norm.weight").astype(dt)
        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            L = {}
            for name in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
                L[name] = np.ascontiguousarray(W.pop(p + name + ".weight").astype(dt).T)  # [in, out]
            for name in ("attn_norm", "attn_q_norm", "attn_k_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"):
                L[name] = W.pop(p + name + ".weight").astype(dt)
            L["types"] = {name: self.wtype[p + name + ".weight"] for name in
                          ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")}
            self.layers.append(L)
        if W:
            raise SystemExit(f"unused tensors: {sorted(W)[:8]}")
        self.load_seconds = time.time() - t0
        if verbose:
            print(f"[gemma3_ref] loaded {os.path.basename(path)}: {self.n_layer} layers, hidden {self.n_embd}, "
                  f"heads {self.n_head}/{self.n_head_kv}x{self.head_dim}, ff {self.n_ff}, vocab {self.vocab}, "
                  f"window {self.window}, global layers {[i for i, g in enumerate(self.is_global) if g]}, "
                  f"rope base {self.freq_base_local:g}/{self.freq_base:g} factor {self.rope_factor:g}, "
                  f"q scale {self.q_scale:.9g}, embed scale {self.embed_scale!r}, eps {self.eps:g}, "
                  f"compute {dt.name}, storage {storage}"
                  f"{', EMULATING llama.cpp ' + '+'.join(sorted(self.emulate)) if self.emulate else ''} "
                  f"({self.load_seconds:.1f}s)", file=sys.stderr)

    # ---- helpers
    def st(self, x):
        """Store an op result: round to float32 (default) or keep the compute precision."""
        if self.storage == "f32":
            return x.astype(np.float32).astype(self.dt)
        return x

    def mm(self, x, L, name):
        """x @ W. With emulate 'q8': x is first rounded the way ggml's CPU backend quantizes activations for a
        quantized weight (Q8_0 blocks of 32 for Q4_0/Q5_0/Q8_0..., Q8_K blocks of 256 for K-quants)."""
        if "q8" in self.emulate:
            t = L["types"][name] if isinstance(L, dict) else L
            x = quantize_act(x, t).astype(self.dt)
        return x @ (L[name] if isinstance(L, dict) else name)

    def gelu(self, x):
        if "gelu16" in self.emulate:  # ggml GGML_GELU_FP16: f16 input -> f16 table of gelu -> f32; |x| >= 10 exact
            x32 = x.astype(np.float32)
            y = gelu_tanh(x32.astype(np.float16).astype(np.float64)).astype(np.float16).astype(self.dt)
            y = np.where(x32 <= -10, 0.0, np.where(x32 >= 10, x, y))
            return y
        return gelu_tanh(x)

    def rms(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope_tables(self, pos, is_global):
        hd = self.head_dim
        base = self.freq_base if is_global else self.freq_base_local
        factor = self.rope_factor if is_global else 1.0
        if self.rope_f32:
            inv = (1.0 / (np.float32(base) ** (np.arange(0, hd, 2, dtype=np.float32) / np.float32(hd)))).astype(np.float32)
            inv = inv / np.float32(factor)
            ang = pos.astype(np.float32)[:, None] * inv[None, :]
            cos, sin = np.cos(ang).astype(self.dt), np.sin(ang).astype(self.dt)
        else:
            inv = base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd) / factor
            ang = pos.astype(np.float64)[:, None] * inv[None, :]
            cos, sin = np.cos(ang).astype(self.dt), np.sin(ang).astype(self.dt)
        return cos, sin  # [L, hd/2]

    @staticmethod
    def rope(x, cos, sin):
        """NeoX / rotate_half: pairs (i, i + hd/2). x [L, H, hd], cos/sin [L, hd/2]."""
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        c, s = cos[:, None, :], sin[:, None, :]
        return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)

    def attention(self, q, k, v, is_global, qblock=256, spans=()):
        """q [L, nh, hd], k/v [L, nkv, hd]; causal (+ sliding window on local layers), plus: rows of a bidirectional
        span (s, e) see every key of the span (transformers' token_type_ids or-mask, on local and global layers).
        Returns [L, nh*hd]."""
        L = q.shape[0]
        rep = self.n_head // self.n_head_kv
        out = np.empty((L, self.n_head, self.head_dim), dtype=self.dt)
        W = self.window
        for s in range(0, L, qblock):
            e = min(L, s + qblock)
            k0 = 0 if is_global else max(0, s - W + 1)
            ke = max([e] + [se for (ss, se) in spans if ss < e and se > s])
            qp = np.arange(s, e)[:, None]
            kp = np.arange(k0, ke)[None, :]
            visible = kp <= qp
            if not is_global:
                visible &= (qp - kp) < W
            for (ss, se) in spans:
                visible |= (qp >= ss) & (qp < se) & (kp >= ss) & (kp < se)
            for g in range(self.n_head_kv):
                qg = q[s:e, g * rep:(g + 1) * rep, :].transpose(1, 0, 2)  # [rep, B, hd]
                kg = k[k0:ke, g, :]                                        # [K, hd]
                vg = v[k0:ke, g, :]
                sc = (qg @ kg.T) * self.q_scale                            # [rep, B, K]
                sc = np.where(visible[None], sc, -np.inf)
                sc = sc - sc.max(-1, keepdims=True)
                p = np.exp(sc)
                p /= p.sum(-1, keepdims=True)
                out[s:e, g * rep:(g + 1) * rep, :] = (p @ vg).transpose(1, 0, 2)
        return out.reshape(L, self.n_head * self.head_dim)

    # ---- model
    def hidden(self, ids, embeds=None, spans=()):
        """Final-normed hidden states [L, n_embd] (compute dtype, f32-stored) for one sequence: causal, except the
        bidirectional `spans` [(start, end)]. `embeds` {position: row [n_embd]} replaces those positions' input rows
        (used as given, not scaled: what an image's soft tokens are)."""
        st, rms = self.st, self.rms
        ids = np.asarray(ids, dtype=np.int64)
        L = len(ids)
        pos = np.arange(L)
        x = st(self.embd[ids].astype(self.dt) * self.dt.type(self.embed_scale))
        for p, row in (embeds or {}).items():
            x[p] = st(np.asarray(row, dtype=self.dt))
        tables = {g: self.rope_tables(pos, g) for g in set(self.is_global)}
        for i, Lw in enumerate(self.layers):
            g = self.is_global[i]
            h = st(rms(x, Lw["attn_norm"]))
            q = st(self.mm(h, Lw, "attn_q")).reshape(L, self.n_head, self.head_dim)
            k = st(self.mm(h, Lw, "attn_k")).reshape(L, self.n_head_kv, self.head_dim)
            v = st(self.mm(h, Lw, "attn_v")).reshape(L, self.n_head_kv, self.head_dim)
            q = st(rms(q, Lw["attn_q_norm"]))
            k = st(rms(k, Lw["attn_k_norm"]))
            cos, sin = tables[g]
            q = st(self.rope(q, cos, sin))
            k = st(self.rope(k, cos, sin))
            if "kv16" in self.emulate:  # f16 KV cache
                k, v = k.astype(np.float16).astype(self.dt), v.astype(np.float16).astype(self.dt)
            a = st(self.attention(q, k, v, g, spans=spans))
            a = st(self.mm(a, Lw, "attn_output"))
            x = st(x + st(rms(a, Lw["post_attention_norm"])))
            h = st(rms(x, Lw["ffn_norm"]))
            gt = st(self.mm(h, Lw, "ffn_gate"))
            up = st(self.mm(h, Lw, "ffn_up"))
            m = st(st(self.gelu(gt)) * up)
            d = st(self.mm(m, Lw, "ffn_down"))
            x = st(x + st(rms(d, Lw["post_ffw_norm"])))
        return st(rms(x, self.out_norm))

    def head_logits(self, xn, vchunk=32768, out=None):
        """Logits [P, vocab] as float32 from normed hidden states [P, n_embd]; the head is processed in row chunks."""
        P = xn.shape[0]
        if out is None:
            out = np.empty((P, self.vocab), dtype=np.float32)
        if P <= 8 and self.head_cache is None:  # decoding: keep a compute-dtype copy of the head (1.3 GB for 270M f64)
            self.head_cache = self.head.astype(self.dt)
        if "q8" in self.emulate:
            xn = quantize_act(xn, self.wtype["token_embd.weight" if self.head is self.embd else "output.weight"])
            xn = xn.astype(self.dt)
        for c in range(0, self.vocab, vchunk):
            e = min(self.vocab, c + vchunk)
            w = self.head_cache[c:e] if self.head_cache is not None else self.head[c:e].astype(self.dt)
            out[:, c:e] = (xn @ w.T).astype(np.float32)
        return out

    def logits(self, ids, positions=None):
        xn = self.hidden(ids)
        if positions is not None:
            xn = xn[np.asarray(positions)]
        return self.head_logits(xn)

    def greedy(self, prompt_ids, n):
        ids = list(prompt_ids)
        out, margins = [], []
        for _ in range(n):
            lg = self.logits(ids, [len(ids) - 1])[0]
            t = int(np.argmax(lg))  # first maximum = lowest id on ties
            top2 = np.partition(lg, -2)[-2:]
            margins.append(float(top2[1] - top2[0]))
            out.append(t)
            ids.append(t)
        return out, margins


def quantize_act(x, wtype):
    """Round activations [.., K] as ggml's CPU backend does before a product with a weight of type wtype
    (x86 paths): Q8_0 (32-blocks, d = amax/127 stored f16, q = rint(x*127/amax)) for the legacy quants,
    Q8_K (256-blocks, iscale = -127/max with max the signed value of largest |x|, q = nearest(iscale*x) <= 127,
    d = 1/iscale f32) for the K-quants; float weights leave x alone. Returns float32 dequantized values."""
    x = np.asarray(x, dtype=np.float32)
    if wtype in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        b = x.reshape(*x.shape[:-1], -1, 32)
        amax = np.abs(b).max(-1, keepdims=True)
        d = (amax / np.float32(127)).astype(np.float32)
        inv = np.where(amax > 0, np.float32(127) / np.where(amax > 0, amax, 1), 0).astype(np.float32)
        q = np.rint(b * inv)
        d16 = d.astype(np.float16).astype(np.float32)
        return (q * d16).reshape(x.shape)
    if wtype in (T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K):
        b = x.reshape(*x.shape[:-1], -1, 256)
        idx = np.abs(b).argmax(-1)[..., None]
        mx = np.take_along_axis(b, idx, -1)
        iscale = np.where(mx != 0, np.float32(-127) / np.where(mx != 0, mx, 1), 0).astype(np.float32)
        q = np.minimum(127, np.rint(b * iscale))  # nearest_int: round half to even (the 1.5*2^23 trick)
        d = np.where(iscale != 0, np.float32(1) / np.where(iscale != 0, iscale, 1), 0).astype(np.float32)
        return (q * d).astype(np.float32).reshape(x.shape)
    return x


def bf16_round(x):
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16
    return u.astype(np.uint32).view(np.float32)


def lse_topk(logits, k):
    """Per row: log-sum-exp in float64 over the float32 logits, and the top-k (id, logit) by logit, ties by lowest id."""
    lg = logits.astype(np.float64)
    mx = lg.max(-1, keepdims=True)
    lse = (mx[:, 0] + np.log(np.exp(lg - mx).sum(-1)))
    tops = []
    for row in logits:
        cand = np.argpartition(row, -(k + 16))[-(k + 16):]  # slack so that ties at the boundary sort by id
        kth = row[cand].min()
        cand = np.nonzero(row >= kth)[0]
        order = np.lexsort((cand, -row[cand].astype(np.float64)))
        sel = cand[order[:k]]
        tops.append([[int(i), float(row[i])] for i in sel])
    return lse, tops


def load_ids(path):
    d = json.load(open(path))
    if isinstance(d, dict):
        for key in ("input_ids", "ids", "token_ids"):
            if key in d:
                return [int(i) for i in d[key]]
        raise SystemExit(f"{path}: no input_ids/ids key")
    return [int(i) for i in d]


def parse_positions(spec, n):
    if spec in (None, "all"):
        return np.arange(n)
    if spec == "last":
        return np.array([n - 1])
    pos = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            pos.extend(range(int(a), int(b) + 1))
        else:
            pos.append(int(part))
    pos = np.array(pos)
    if pos.min() < 0 or pos.max() >= n:
        raise SystemExit(f"positions out of range 0..{n - 1}")
    return pos


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--ids-file", help="token ids (JSON list, or object with input_ids/ids)")
    ap.add_argument("--n-tokens", type=int, help="use only the first N ids")
    ap.add_argument("--out", help="write float32 logits [positions x vocab] as .npy")
    ap.add_argument("--positions", default="all", help="all | last | comma list (ranges a-b allowed)")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"], help="compute precision")
    ap.add_argument("--storage", default="f32", choices=["f32", "f64"], help="precision stored between ops")
    ap.add_argument("--embed-scale", default="f32", help="f32 (exact sqrtf(hidden), llama.cpp) | bf16 | a number")
    ap.add_argument("--rope-f32", action="store_true", help="compute RoPE angles in float32 (HF/ggml style)")
    ap.add_argument("--query-scale", type=float)
    ap.add_argument("--topk-json", nargs=2, metavar=("OUT.json", "K"))
    ap.add_argument("--greedy", type=int, metavar="N", help="greedy-decode N tokens after the ids")
    ap.add_argument("--pos-block", type=int, default=1024, help="positions per head/output block")
    ap.add_argument("--emulate-llamacpp", default="", metavar="q8,gelu16,kv16",
                    help="NOT exact: add llama.cpp CPU shortcuts (8-bit activations before quantized products, "
                         "f16 GELU table, f16 KV), to calibrate fidelity metrics against fidelity-llamacpp.txt")
    ap.add_argument("--check-greedy", metavar="REFERENCE_GREEDY.json",
                    help="validate: greedy-decode the prompts of this file and compare with its generated_ids")
    ap.add_argument("--n-prompts", type=int, default=3, help="with --check-greedy: how many prompts (default 3)")
    ap.add_argument("--check-topk", metavar="REFERENCE_TOPK.json",
                    help="validate: compare --topk-json output (or a topk JSON given as --ids-file run) with this file")
    ap.add_argument("--perplexity", type=int, metavar="CTX",
                    help="perplexity of --ids-file (the whole text's ids) by llama-perplexity's method at context CTX")
    ap.add_argument("--check-perplexity", metavar="REFERENCE_PERPLEXITY.json", help="with --perplexity: compare")
    ap.add_argument("--max-chunks", type=int, help="with --perplexity: only the first N chunks")
    args = ap.parse_args()

    m = Gemma3Ref(args.model, embed_scale=args.embed_scale, storage=args.storage,
                  dtype=np.float64 if args.dtype == "float64" else np.float32,
                  rope_f32=args.rope_f32, query_scale=args.query_scale,
                  emulate=[e for e in args.emulate_llamacpp.split(",") if e])
    if args.check_greedy:
        ref = json.load(open(args.check_greedy))
        all_ok = True
        for r in ref["results"][:args.n_prompts]:
            t0 = time.time()
            n = len(r["generated_ids"])
            gen, margins = m.greedy(r["prompt_ids"], n)
            agree = next((i for i, (a, b) in enumerate(zip(gen, r["generated_ids"])) if a != b), n)
            dm = max(abs(a - b) for a, b in zip(margins, r["margins_top1_top2"]))
            all_ok &= agree == n
            print(f"{r['name']}: {agree}/{n} tokens agree, max |margin diff| {dm:.2g}, {time.time() - t0:.1f}s")
        print("GREEDY OK" if all_ok else "GREEDY MISMATCH")
        sys.exit(0 if all_ok else 1)
    if not args.ids_file:
        ap.error("--ids-file is required")
    ids = load_ids(args.ids_file)
    if args.n_tokens:
        ids = ids[:args.n_tokens]
    if args.greedy:
        t0 = time.time()
        gen, margins = m.greedy(ids, args.greedy)
        print(json.dumps({"prompt_ids": ids, "generated_ids": gen,
                          "margins_top1_top2": [round(x, 5) for x in margins], "seconds": round(time.time() - t0, 1)}))
        return
    if args.perplexity:
        sys.exit(run_perplexity(m, ids, args.perplexity, args.max_chunks, args.check_perplexity))
    pos = parse_positions(args.positions, len(ids))
    t0 = time.time()
    xn = m.hidden(ids)[pos]
    t_body = time.time() - t0
    out = None
    if args.out:
        out = np.lib.format.open_memmap(args.out + ".tmp.npy", mode="w+", dtype=np.float32, shape=(len(pos), m.vocab))
    lses, tops = [], []
    k = int(args.topk_json[1]) if args.topk_json else 0
    for s in range(0, len(pos), args.pos_block):
        e = min(len(pos), s + args.pos_block)
        lg = m.head_logits(xn[s:e])
        if out is not None:
            out[s:e] = lg
        if k:
            l, t = lse_topk(lg, k)
            lses.extend(float(x) for x in l)
            tops.extend(t)
    t_all = time.time() - t0
    if out is not None:
        out.flush()
        del out
        os.replace(args.out + ".tmp.npy", args.out)
    if k:
        doc = {
            "description": "Per position p (of one causal sequence from position 0): logsumexp of the full logit vector "
                           "(float64 over the float32 logits) and the top-K [id, logit] sorted by logit (ties by lowest id). "
                           "log p(id) = logit - lse.",
            "model": os.path.basename(args.model),
            "reference": f"scripts/reference/gemma3_ref.py: GGUF weights dequantized with gguf-py, {args.dtype} compute, "
                         f"storage {args.storage}, embed scale {m.embed_scale!r}, rope {'f32' if args.rope_f32 else 'f64'}"
                         + (f", EMULATING llama.cpp {args.emulate_llamacpp}" if m.emulate else ""),
            "n_tokens": len(ids),
            "positions": [int(p) for p in pos],
            "input_ids": ids,
            "topk": k,
            "lse": [round(x, 6) for x in lses],
            "top": [[[i, round(v, 5)] for i, v in t] for t in tops],
            "seconds": round(t_all, 1),
        }
        with open(args.topk_json[0], "w") as f:
            json.dump(doc, f)
    print(f"[gemma3_ref] {len(ids)} tokens, {len(pos)} output positions: body {t_body:.1f}s, total {t_all:.1f}s "
          f"(+ load {m.load_seconds:.1f}s)", file=sys.stderr)
    if args.check_topk and k:
        ok = compare_topk(doc, json.load(open(args.check_topk)))
        sys.exit(0 if ok else 1)


def run_perplexity(m, ids, ctx, max_chunks=None, check=None):
    """llama-perplexity's method: floor(n/ctx) chunks, first token of each replaced by BOS, each evaluated from an
    empty cache; the predictions made at positions ctx/2 .. ctx-2 are scored. Returns a process exit code."""
    n_chunks = len(ids) // ctx
    if max_chunks:
        n_chunks = min(n_chunks, max_chunks)
    first = ctx // 2
    nll_all, per_chunk = [], []
    t0 = time.time()
    for c in range(n_chunks):
        chunk = list(ids[c * ctx:(c + 1) * ctx])
        chunk[0] = 2
        pos = np.arange(first, ctx - 1)
        lg = m.logits(chunk, pos)
        l64 = lg.astype(np.float64)
        mx = l64.max(-1)
        lse = mx + np.log(np.exp(l64 - mx[:, None]).sum(-1))
        tgt = np.array(chunk)[pos + 1]
        nll = lse - l64[np.arange(len(pos)), tgt]
        nll_all.extend(nll.tolist())
        per_chunk.append(float(np.exp(nll.mean())))
        print(f"chunk {c + 1}/{n_chunks}: ppl {per_chunk[-1]:.6f}, cumulative {math.exp(np.mean(nll_all)):.6f} "
              f"({time.time() - t0:.0f}s)", file=sys.stderr)
    ppl = math.exp(np.mean(nll_all))
    print(json.dumps({"ctx": ctx, "n_tokens": len(ids), "n_chunks": n_chunks, "n_scored": len(nll_all),
                      "ppl": ppl, "mean_nll": float(np.mean(nll_all)), "per_chunk": per_chunk,
                      "seconds": round(time.time() - t0, 1)}))
    if check:
        ref = json.load(open(check))
        k = min(len(per_chunk), len(ref["per_chunk"]))
        d = max(abs(a - b) / b for a, b in zip(per_chunk[:k], ref["per_chunk"][:k]))
        ok = d < 1e-5
        if k == ref["n_chunks"]:
            d2 = abs(ppl - ref["ppl"]) / ref["ppl"]
            ok &= d2 < 1e-5
            print(f"ppl {ppl:.8f} vs {ref['ppl']:.8f} (rel diff {d2:.2g})")
        print(f"{k} chunks: per-chunk ppl max rel diff {d:.2g} -> {'PPL OK' if ok else 'PPL MISMATCH'}")
        return 0 if ok else 1
    return 0


def compare_topk(a, b, tol=1e-4):
    """Compares two top-K JSON documents position by position (by position index when both carry "positions")."""
    pa = a.get("positions", list(range(len(a["lse"]))))
    pb = b.get("positions", list(range(len(b["lse"]))))
    ib = {p: j for j, p in enumerate(pb)}
    common = [(i, ib[p]) for i, p in enumerate(pa) if p in ib]
    dl, dv, top1, order, sets = 0.0, 0.0, 0, 0, 0
    for i, j in common:
        dl = max(dl, abs(a["lse"][i] - b["lse"][j]))
        ta, tb = dict((x, v) for x, v in a["top"][i]), dict((x, v) for x, v in b["top"][j])
        top1 += a["top"][i][0][0] == b["top"][j][0][0]
        order += [x for x, _ in a["top"][i]] != [x for x, _ in b["top"][j]]
        sets += set(ta) != set(tb)
        for x in set(ta) & set(tb):
            dv = max(dv, abs(ta[x] - tb[x]))
    n = len(common)
    ok = n > 0 and dl <= tol and dv <= tol and top1 == n
    print(f"{n} common positions: lse max|diff| {dl:.3g}, top-K logit max|diff| {dv:.3g}, top-1 same {top1}/{n}, "
          f"top-K order differs at {order}, top-K set differs at {sets} -> {'TOPK OK' if ok else 'TOPK MISMATCH'}")
    return ok


if __name__ == "__main__":
    main()
