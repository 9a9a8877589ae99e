#!/usr/bin/env python3
"""128K context on a random-weight model with Gemma 3 4B's attention layout: our engine against an independent
NumPy reference (issue 18, "Long context at speed").

The model (written with gguf-py's GGUFWriter, the metadata keys llama.cpp's converter writes for Gemma 3, f32
tensors): 34 layers, 8 query heads over 4 KV heads, head_dim 32, query_pre_attn_scalar = head_dim, sliding window
1024, local RoPE base 10k, global RoPE base 1M with linear scaling x8 on global layers only (layers 5, 11, 17, 23,
29), context 131072; small widths (hidden 64, FFN 128, vocabulary 512), seeded weights scaled as
make_size_structure_refs.py scales them (small embedding, post-norms ~2, QK-norm ~1.6) so that the logits come from
the layers.

Steps (each skipped when its output exists; --force remakes):
  model      OUT/model-4b-layout-f32.gguf, OUT/prompt-T.txt (seeded random text) and OUT/ids-T.json (its T ids
             by `gemma tokenize`: BOS + one byte piece per character)
  engine     `gemma dump-logits` on the T ids (one causal sequence from position 0) under /usr/bin/time -v: wall,
             prefill seconds as the CLI prints them, peak RSS; the rows at the sampled positions are kept
  decode     `gemma generate --file PROMPT -n N --temp 0 --ignore-eos --json` on the same T ids (prefill, then N
             greedy tokens) under /usr/bin/time -v: prefill and decode ms, KV bytes and peak RSS as the CLI reports
             them, peak RSS and wall from time -v. (`gemma bench` also runs this model now, but on its own
             pseudo-random ids, not these.)
  memory     `gemma memory --model MODEL --context T --kv KV --json`: the planned KV bytes
  reference  the NumPy reference (gemma3_ref.py's Gemma3Ref, float64 compute with float32 storage between ops)
             with the global layers' attention computed flash-style: blocks of queries x blocks of keys with a running
             softmax, the score and value products in float32 (BLAS), the running max / sum / output accumulator in
             float64 (see --global-dtype); local layers as gemma3_ref.py (float64, only the keys in the window)
  compare    top-1 agreement (near-ties: reference top-1 - top-2 < 0.05) and max |logit difference| over the
             reference's top-32 and over the whole vocabulary at the sampled positions

Usage:
  python3 scripts/reference/long_context_128k.py --gemma-bin .build/release/gemma [--tokens 131072]
      [--out /tmp/long128k] [--kv f16] [--decode 16] [--positions 1023,1024,...] [--steps model,engine,...]
Needs numpy and gguf (gguf-py).
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
from gguf import GGUFWriter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gemma3_ref import Gemma3Ref  # noqa: E402

HIDDEN, HEAD_DIM, HEADS, KV_HEADS, FFN, VOCAB, LAYERS = 64, 32, 8, 4, 128, 512, 34
WINDOW, FACTOR, CTX, SEED = 1024, 8.0, 131072, 18128
NORMS = ("attn_norm", "attn_q_norm", "attn_k_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm")
MATRICES = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def default_positions(T):
    base = [1023, 1024, 2047, 4095, 8191, 16383, 32767, 65535, 98303, 131071, T // 2 - 1, T - 2, T - 1]
    return sorted({p for p in base if p < T})


# ---------------------------------------------------------------- model

def make_weights():
    rng = np.random.default_rng(SEED)

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm(n, mean=0.0, std=0.1):
        return (mean + std * rng.standard_normal(n)).astype(np.float32)

    W = {"token_embd": (0.25 * rng.standard_normal((VOCAB, HIDDEN))).astype(np.float32), "output_norm": norm(HIDDEN, 1.0)}
    for i in range(LAYERS):
        p = f"blk.{i}."
        W[p + "attn_q"] = mat(HEADS * HEAD_DIM, HIDDEN)
        W[p + "attn_k"] = mat(KV_HEADS * HEAD_DIM, HIDDEN)
        W[p + "attn_v"] = mat(KV_HEADS * HEAD_DIM, HIDDEN)
        W[p + "attn_output"] = mat(HIDDEN, HEADS * HEAD_DIM)
        W[p + "ffn_gate"] = mat(FFN, HIDDEN)
        W[p + "ffn_up"] = mat(FFN, HIDDEN)
        W[p + "ffn_down"] = mat(HIDDEN, FFN)
        W[p + "attn_norm"] = norm(HIDDEN)
        W[p + "attn_q_norm"] = norm(HEAD_DIM, 0.6, 0.15)
        W[p + "attn_k_norm"] = norm(HEAD_DIM, 0.6, 0.15)
        W[p + "post_attention_norm"] = norm(HIDDEN, 1.0)
        W[p + "ffn_norm"] = norm(HIDDEN)
        W[p + "post_ffw_norm"] = norm(HIDDEN, 1.0)
    return W


def write_gguf(path):
    W = make_weights()
    w = GGUFWriter(path + ".tmp", "gemma3")
    a = "gemma3."
    w.add_name("random-4b-layout-128k")
    w.add_uint32("general.file_type", 0)  # ALL_F32
    w.add_uint32(a + "context_length", CTX)
    w.add_uint32(a + "embedding_length", HIDDEN)
    w.add_uint32(a + "block_count", LAYERS)
    w.add_uint32(a + "feed_forward_length", FFN)
    w.add_uint32(a + "attention.head_count", HEADS)
    w.add_uint32(a + "attention.head_count_kv", KV_HEADS)
    w.add_float32(a + "attention.layer_norm_rms_epsilon", 1e-6)
    w.add_uint32(a + "attention.key_length", HEAD_DIM)
    w.add_uint32(a + "attention.value_length", HEAD_DIM)
    w.add_float32(a + "rope.freq_base", 1_000_000.0)
    w.add_uint32(a + "attention.sliding_window", WINDOW)
    w.add_string(a + "rope.scaling.type", "linear")
    w.add_float32(a + "rope.scaling.factor", FACTOR)
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
    for key in ["token_embd", "output_norm"] + [f"blk.{i}.{n}" for i in range(LAYERS) for n in MATRICES + NORMS]:
        x = W[key]
        if key.endswith("norm"):
            x = (np.float32(1) + x).astype(np.float32)  # llama.cpp's converter stores Gemma's 1 + w
        w.add_tensor(key + ".weight", np.ascontiguousarray(x, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".tmp", path)


PROMPT_CHARS = "abcdefghijklmnopqrsuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?-"  # no space, no 't': no "\u2581tN" piece


def make_prompt(T):
    """Seeded random text of T - 1 ASCII characters without spaces: the toy vocabulary's byte pieces, one token per
    character (id 4 + byte), so that `gemma generate --file` and `gemma dump-logits` see the same T ids (BOS first)."""
    rng = np.random.default_rng(SEED + 1)
    return "".join(PROMPT_CHARS[i] for i in rng.integers(0, len(PROMPT_CHARS), T - 1))


# ---------------------------------------------------------------- reference with flash-style global attention

class LongRef(Gemma3Ref):
    """gemma3_ref.py's model; global layers' attention by blocks of queries x blocks of keys with a running softmax."""

    def __init__(self, path, global_dtype=np.float32, qblock=512, kblock=2048, **kw):
        super().__init__(path, **kw)
        self.gdt = np.dtype(global_dtype)
        self.qblock, self.kblock = qblock, kblock
        self.global_seconds = 0.0
        self.layer_seconds = []

    def attention(self, q, k, v, is_global, qblock=256, spans=()):
        if not is_global or spans:
            return super().attention(q, k, v, is_global, qblock, spans)
        t0 = time.time()
        L = q.shape[0]
        rep = self.n_head // self.n_head_kv
        hd = self.head_dim
        gdt = self.gdt
        out = np.empty((L, self.n_head, hd), dtype=self.dt)
        QB, KB = self.qblock, self.kblock
        for g in range(self.n_head_kv):
            # the query scale applied in float64 before the product (one rounding to gdt)
            qg = np.ascontiguousarray((q[:, g * rep:(g + 1) * rep, :] * self.q_scale).transpose(1, 0, 2)).astype(gdt)
            kg = np.ascontiguousarray(k[:, g, :]).astype(gdt)   # [L, hd]
            vg = np.ascontiguousarray(v[:, g, :]).astype(gdt)
            for s in range(0, L, QB):
                e = min(L, s + QB)
                B = e - s
                qb = qg[:, s:e, :].reshape(rep * B, hd)
                m = np.full(rep * B, -np.inf)                  # running max (float64)
                lsum = np.zeros(rep * B)                       # running sum of exp (float64)
                acc = np.zeros((rep * B, hd))                  # running sum of exp * v (float64)
                for c in range(0, e, KB):
                    ce = min(e, c + KB)
                    sc = qb @ kg[c:ce].T                       # [rep*B, K] in gdt
                    if ce > s:                                 # the block reaches the diagonal: causal mask
                        qp = np.tile(np.arange(s, e), rep)[:, None]
                        kp = np.arange(c, ce)[None, :]
                        sc[kp > qp] = -np.inf
                    mb = sc.max(1).astype(np.float64)
                    mn = np.maximum(m, mb)
                    alpha = np.exp(m - mn)
                    sc -= mn.astype(gdt)[:, None]              # exact: mn is one of the gdt scores (or -inf first)
                    np.exp(sc, out=sc)
                    lsum = lsum * alpha + sc.sum(1, dtype=np.float64)
                    acc = acc * alpha[:, None] + (sc @ vg[c:ce]).astype(np.float64)
                    m = mn
                o = (acc / lsum[:, None]).reshape(rep, B, hd).transpose(1, 0, 2)
                out[s:e, g * rep:(g + 1) * rep, :] = o
        self.global_seconds += time.time() - t0
        print(f"[long-ref] global layer attention over {L} positions: {time.time() - t0:.1f}s", file=sys.stderr, flush=True)
        return out.reshape(L, self.n_head * hd)


# ---------------------------------------------------------------- runs

def time_v(stderr):
    """Peak RSS (KiB) and wall seconds from /usr/bin/time -v."""
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", stderr)
    secs = None
    if wall:
        parts = [float(x) for x in wall.group(1).split(":")]
        secs = sum(x * 60 ** i for i, x in enumerate(reversed(parts)))
    return (int(rss.group(1)) if rss else None), secs


def run_timed(cmd, what):
    """Runs cmd (under /usr/bin/time -v), echoes the tail of its stderr, fails clearly; returns (process, wall s)."""
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    sys.stderr.write(p.stderr[-3000:])
    if p.returncode != 0:
        raise SystemExit(f"{what} failed ({p.returncode})")
    return p, wall


def run_engine(args, model, ids_path, positions, out_json):
    raw = os.path.join(args.out, f"engine-{args.tokens}-{args.kv}.f32")
    cmd = ["/usr/bin/time", "-v", args.gemma_bin, "dump-logits", "-m", model, "--ids-file", ids_path, "--kv", args.kv,
           "--batch", str(args.batch), "--out", raw] + (["-t", str(args.threads)] if args.threads else [])
    p, wall = run_timed(cmd, "dump-logits")
    lg = np.memmap(raw, dtype=np.float32, mode="r").reshape(-1, VOCAB)
    rows = np.array(lg[positions])
    rss, _ = time_v(p.stderr)
    m = re.search(r"batch \d+, ([\d.]+) s\)", p.stderr)
    rec = {"kv": args.kv, "tokens": args.tokens, "wall_seconds": round(wall, 1),
           "forward_seconds": float(m.group(1)) if m else None, "peak_rss_kib": rss,
           "positions": positions, "rows": rows.tolist()}
    json.dump(rec, open(out_json, "w"))
    del lg
    os.unlink(raw)
    return rec


def run_decode(args, model, prompt_path, out_json):
    cmd = ["/usr/bin/time", "-v", args.gemma_bin, "generate", "-m", model, "--kv", args.kv, "--file", prompt_path,
           "-n", str(args.decode), "--temp", "0", "--ignore-eos", "--json"] + (["-t", str(args.threads)] if args.threads else [])
    p, wall = run_timed(cmd, "generate")
    rss, _ = time_v(p.stderr)
    g = json.loads(p.stdout)
    rec = {"kv": args.kv, "prompt_tokens": len(g["prompt_tokens"]), "decode_tokens": len(g["tokens"]),
           "wall_seconds": round(wall, 1), "peak_rss_kib": rss,
           "generate": {k: v for k, v in g.items() if k not in ("prompt_tokens", "text")},
           "prompt_ids_sha256": hashlib.sha256(json.dumps(g["prompt_tokens"]).encode()).hexdigest()}
    json.dump(rec, open(out_json, "w"), indent=1)
    return rec


def run_memory(args, model):
    p = subprocess.run([args.gemma_bin, "memory", "--model", model, "--context", str(args.tokens), "--kv", args.kv,
                        "--json"], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def run_reference(args, model, ids, positions, out_npy):
    m = LongRef(model, global_dtype=np.float32 if args.global_dtype == "float32" else np.float64)
    t0 = time.time()
    xn = m.hidden(ids)[np.array(positions)]
    lg = m.head_logits(xn)
    secs = time.time() - t0
    np.save(out_npy, lg)
    meta = {"seconds": round(secs, 1), "global_attention_seconds": round(m.global_seconds, 1),
            "global_dtype": args.global_dtype, "positions": positions}
    json.dump(meta, open(os.path.splitext(out_npy)[0] + ".json", "w"))
    print(f"[long-ref] {len(ids)} tokens: {secs:.1f}s (global attention {m.global_seconds:.1f}s)", file=sys.stderr)
    return lg, meta


def compare(ref, eng, positions):
    rows = []
    top1 = ties = 0
    worst32 = worst_all = 0.0
    for j, p in enumerate(positions):
        r, e = ref[j].astype(np.float64), eng[j].astype(np.float64)
        order = np.lexsort((np.arange(len(r)), -r))
        t32 = order[:32]
        margin = r[order[0]] - r[order[1]]
        same = int(np.argmax(e)) == int(order[0])
        top1 += same
        ties += (not same) and margin < 0.05
        d32 = float(np.abs(r[t32] - e[t32]).max())
        dall = float(np.abs(r - e).max())
        worst32, worst_all = max(worst32, d32), max(worst_all, dall)
        rows.append({"position": p, "ref_top1": int(order[0]), "engine_top1": int(np.argmax(e)),
                     "margin": round(float(margin), 4), "max_abs_top32": d32, "max_abs_all": dall})
    return {"positions": len(positions), "top1_agree": top1, "near_ties": ties, "max_abs_top32": worst32,
            "max_abs_all": worst_all, "per_position": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gemma-bin", default="gemma")
    ap.add_argument("--tokens", type=int, default=CTX)
    ap.add_argument("--out", default="/tmp/long128k")
    ap.add_argument("--kv", default="f16", choices=["f32", "f16", "bf16", "q8_0"])
    ap.add_argument("--batch", type=int, default=64, help="dump-logits tokens per forward step")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--decode", type=int, default=16)
    ap.add_argument("--positions")
    ap.add_argument("--global-dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--steps", default="model,memory,engine,decode,reference,compare")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    steps = set(args.steps.split(","))
    T = args.tokens
    positions = sorted({int(p) for p in args.positions.split(",")}) if args.positions else default_positions(T)
    model = os.path.join(args.out, "model-4b-layout-f32.gguf")
    ids_path = os.path.join(args.out, f"ids-{T}.json")
    if "model" in steps and (args.force or not os.path.exists(model)):
        write_gguf(model)
        print(f"wrote {model}", file=sys.stderr)
    prompt_path = os.path.join(args.out, f"prompt-{T}.txt")
    if not os.path.exists(ids_path) or args.force:
        with open(prompt_path, "w") as f:
            f.write(make_prompt(T))
        out = subprocess.run([args.gemma_bin, "tokenize", "-m", model, "--json", "--file", prompt_path],
                             capture_output=True, text=True, check=True).stdout
        toks = json.loads(out)["ids"]
        if len(toks) != T or toks[0] != 2:
            raise SystemExit(f"the prompt tokenizes to {len(toks)} ids, expected {T}")
        json.dump(toks, open(ids_path, "w"))
    ids = json.load(open(ids_path))
    summary = {"tokens": T, "kv": args.kv, "positions": positions}
    if "memory" in steps:
        summary["memory"] = run_memory(args, model)
        print(json.dumps(summary["memory"]), file=sys.stderr)
    eng_json = os.path.join(args.out, f"engine-{T}-{args.kv}.json")
    if "engine" in steps and (args.force or not os.path.exists(eng_json)):
        run_engine(args, model, ids_path, positions, eng_json)
    dec_json = os.path.join(args.out, f"decode-{T}-{args.kv}.json")
    if "decode" in steps and args.decode and (args.force or not os.path.exists(dec_json)):
        run_decode(args, model, prompt_path, dec_json)
    ref_npy = os.path.join(args.out, f"reference-{T}.npy")
    if "reference" in steps and (args.force or not os.path.exists(ref_npy)):
        run_reference(args, model, ids, positions, ref_npy)
    if os.path.exists(eng_json):
        e = json.load(open(eng_json))
        summary["engine"] = {k: e[k] for k in ("wall_seconds", "forward_seconds", "peak_rss_kib")}
    if os.path.exists(dec_json):
        d = json.load(open(dec_json))
        summary["decode"] = {k: d[k] for k in ("wall_seconds", "peak_rss_kib")}
        summary["decode"]["generate"] = d["generate"]
    if "compare" in steps and os.path.exists(ref_npy) and os.path.exists(eng_json):
        ref = np.load(ref_npy)
        e = json.load(open(eng_json))
        ref_meta = json.load(open(os.path.splitext(ref_npy)[0] + ".json"))
        if e["positions"] != positions or ref_meta["positions"] != positions:
            raise SystemExit("engine / reference positions differ from --positions")
        summary["reference"] = {k: ref_meta[k] for k in ("seconds", "global_attention_seconds", "global_dtype")}
        summary["compare"] = compare(ref, np.array(e["rows"], dtype=np.float32), positions)
        if os.path.exists(dec_json) and positions[-1] == T - 1:
            first = json.load(open(dec_json))["generate"]["tokens"][0]
            summary["compare"]["generate_first_token"] = first
            summary["compare"]["reference_top1_at_last_position"] = int(np.argmax(ref[-1]))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
