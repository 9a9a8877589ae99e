#!/usr/bin/env python3
"""The quality and cost of each release format on the Gemma 3 270M (issue 16, item 5): the table in the README.

  scripts/format-table.py [--formats sfp8,int4-channel,int4-block,q8_0,q4_k,q6_k,bf16,f16] [--work DIR]
                          [--ref REF.npy] [--reps 3] [--threads 2] [--no-llama] [--json OUT.json]

Every format is made by `gemma quantize` from the fetched Q4_K_M GGUF (the only Gemma weights this project can
download), so requantized formats compound two roundings: the table gives each format's error against the exact
result of the Q4_K_M weights (what a perfect engine computes on the source file) and, per tensor kind, the relative
RMSE of its weights against the Q4_K_M weights (`gemma quantize` prints it).

Per format:
  file bytes, bits per weight (8 x file bytes / parameters of the source GGUF),
  perplexity of Tests/Fixtures/ppl-public.txt at ctx 512 (`gemma perplexity`: llama-perplexity's method),
  mean KL(ref || engine) over the full softmax and top-1 agreement at the 1024 positions of
    Tests/Fixtures/reference-topk.json (`gemma dump-logits` scored by scripts/reference/fidelity.py against REF.npy,
    the exact reference of the Q4_K_M weights: scripts/reference/gemma3_ref.py, made here when missing, ~2-4 min),
  tg128 and pp512 (`gemma bench -r REPS`, median),
  and for the formats llama.cpp runs (ggml types): llama.cpp's perplexity (llama-perplexity's method, on the same
  token ids), KL / top-1 (its logits of the same 1024 ids), pp512 / tg128 (llama-cpp-python, as
  scripts/bench-vs-llamacpp.py measures it; each in a process of its own).
Takes ~3 minutes per format on 2 cores; wants a quiet machine for the speed columns.
"""
import argparse
import ctypes
import importlib.util
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.expanduser(os.environ.get("GEMMA_MODEL", "~/.cache/swift-gemma/gemma-3-270m-q4_k_m.gguf"))
IDS_FILE = os.path.join(ROOT, "Tests/Fixtures/reference-topk.json")
PPL_TEXT = os.path.join(ROOT, "Tests/Fixtures/ppl-public.txt")
EXT = {"sfp8": ".sbs"}


def log(msg):
    print(f"[format-table] {msg}", file=sys.stderr, flush=True)


def bench_module():
    spec = importlib.util.spec_from_file_location("bench_vs_llamacpp", os.path.join(ROOT, "scripts/bench-vs-llamacpp.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p.stdout


def parameters(path):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from gguf import GGUFReader  # gguf-py, installed by scripts/setup.sh for the reference scripts
    return sum(int(np.prod(t.shape)) for t in GGUFReader(path).tensors)


def log_softmax_rows(x):
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))


def perplexity_from(chunks_logits, chunks_ids, ctx):
    """llama-perplexity's score: positions ctx/2 ... ctx-2 of each chunk predict the next token."""
    nll, n = 0.0, 0
    for logits, ids in zip(chunks_logits, chunks_ids):
        first = ctx // 2
        lp = log_softmax_rows(logits[first:ctx - 1])
        targets = np.array(ids[first + 1:ctx])
        nll -= lp[np.arange(len(targets)), targets].sum()
        n += len(targets)
    return float(np.exp(nll / n))


# ---------------------------------------------------------------- llama.cpp worker (a process per model)

def llama_worker(args):
    b = bench_module()
    L = b.import_llama_cpp()
    llm = b.Llama(args.model, args.ctx, args.threads, n_batch=args.ctx, n_ubatch=512)
    ids = json.load(open(args.ids))
    out = {}

    def logits_of(seq):
        llm.L.llama_memory_clear(llm.mem, True)
        batch = L.llama_batch_init(len(seq), 0, 1)
        for i, t in enumerate(seq):
            batch.token[i] = t
            batch.pos[i] = i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1
        batch.n_tokens = len(seq)
        rc = L.llama_decode(llm.ctx, batch)
        L.llama_batch_free(batch)
        if rc != 0:
            raise SystemExit(f"llama_decode returned {rc}")
        return np.stack([np.ctypeslib.as_array(L.llama_get_logits_ith(llm.ctx, i), shape=(llm.n_vocab,)).copy()
                         for i in range(len(seq))])

    if args.mode == "fidelity":
        np.save(args.out, logits_of(ids["input_ids"]).astype(np.float32))
        out["ok"] = True
    else:
        toks, ctx = ids["ids"], args.ctx
        chunks = [toks[i * ctx:(i + 1) * ctx] for i in range(len(toks) // ctx)]
        logits, seqs = [], []
        for c in chunks:
            c = [llm.bos] + c[1:]
            logits.append(logits_of(c))
            seqs.append(c)
        out["ppl"] = perplexity_from(logits, seqs, ctx)
        out["chunks"] = len(chunks)
    print(json.dumps(out))


# ---------------------------------------------------------------- driver

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--formats", default="sfp8,int4-channel,int4-block,q8_0,q4_k,q6_k,bf16,f16")
    ap.add_argument("--work", default="/tmp/format-table")
    ap.add_argument("--ref")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--gemma-bin", default=os.path.join(ROOT, ".build/release/gemma"))
    # worker mode (internal)
    ap.add_argument("--worker", choices=["llama"])
    ap.add_argument("--mode")
    ap.add_argument("--model")
    ap.add_argument("--ids")
    ap.add_argument("--out")
    ap.add_argument("--ctx", type=int, default=512)
    args = ap.parse_args()
    if args.worker:
        return llama_worker(args)

    g = args.gemma_bin
    os.makedirs(args.work, exist_ok=True)
    ref = args.ref or os.path.join(args.work, "ref1024.npy")
    if not os.path.exists(ref):
        log("exact reference of the Q4_K_M weights -> " + ref)
        run([sys.executable, os.path.join(ROOT, "scripts/reference/gemma3_ref.py"), SOURCE, "--ids-file", IDS_FILE, "--out", ref])
    ppl_ids = os.path.join(args.work, "ppl-ids.json")
    if not os.path.exists(ppl_ids):
        text = open(PPL_TEXT, encoding="utf-8").read()
        text = text[:-1] if text.endswith("\n") else text
        tmp = os.path.join(args.work, "ppl-text.txt")
        open(tmp, "w", encoding="utf-8").write(text)
        ids = json.loads(run([g, "tokenize", "-m", SOURCE, "--no-special", "--json", "--file", tmp]))["ids"]
        json.dump({"ids": ids}, open(ppl_ids, "w"))
    params = parameters(SOURCE)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    log(f"{cpu}, {os.cpu_count()} CPUs, {params} parameters in the source")

    rows = []
    for f in args.formats.split(","):
        path = os.path.join(args.work, f"270m-{f}{EXT.get(f, '.gguf')}")
        log(f"{f}: gemma quantize")
        q = run([g, "quantize", SOURCE, path, "--to", f, "--force", "-t", str(args.threads)])
        m = re.search(r"relative RMSE against the input's weights: (.*)", q)
        rmse = {k: float(v) for k, v in (p.split(" ") for p in m.group(1).split(", "))} if m else {}
        row = {"format": f, "file": os.path.basename(path), "bytes": os.path.getsize(path),
               "bpw": 8 * os.path.getsize(path) / params, "rmse": rmse}
        log(f"{f}: perplexity")
        row["ppl"] = json.loads(run([g, "perplexity", "-m", path, "--file", PPL_TEXT, "--json", "-t", str(args.threads)]))["ppl"]
        log(f"{f}: logits of 1024 positions")
        raw = os.path.join(args.work, f"{f}.f32")
        run([g, "dump-logits", "-m", path, "--ids-file", IDS_FILE, "--out", raw, "--batch", "64", "-t", str(args.threads)])
        fid = json.loads(run([sys.executable, os.path.join(ROOT, "scripts/reference/fidelity.py"), ref, raw, "--json"]))
        os.remove(raw)
        row["kl"], row["top1"] = fid["mean_kl"], fid["top1_agree_pct"] / 100
        log(f"{f}: gemma bench")
        b = json.loads(run([g, "bench", "-m", path, "-p", "512", "-n", "128", "-r", str(args.reps), "--json", "-t", str(args.threads)]).strip().splitlines()[-1])
        row["pp512"], row["tg128"] = b["pp"]["tok_s"], b["tg"]["tok_s"]
        if not args.no_llama and path.endswith(".gguf") and f != "int4-channel":
            log(f"{f}: llama.cpp")
            me = os.path.abspath(__file__)
            lp = json.loads(run([sys.executable, me, "--worker", "llama", "--mode", "ppl", "--model", path, "--ids", ppl_ids,
                                 "--ctx", "512", "--threads", str(args.threads)]).strip().splitlines()[-1])
            npy = os.path.join(args.work, f"{f}-llama.npy")
            run([sys.executable, me, "--worker", "llama", "--mode", "fidelity", "--model", path, "--ids", IDS_FILE,
                 "--ctx", "1024", "--out", npy, "--threads", str(args.threads)])
            lf = json.loads(run([sys.executable, os.path.join(ROOT, "scripts/reference/fidelity.py"), ref, npy, "--json"]))
            os.remove(npy)
            bm = bench_module()
            bargs = argparse.Namespace(model=path, threads=args.threads)
            lb = bm.llama_bench(bargs, 512, 128, args.reps)
            row["llama"] = {"ppl": lp["ppl"], "kl": lf["mean_kl"], "top1": lf["top1_agree_pct"] / 100, "pp512": lb["pp"], "tg128": lb["tg"]}
        rows.append(row)
        log(json.dumps(row))

    print(f"\n{cpu}, {args.threads} threads; source {os.path.basename(SOURCE)}; reference: exact result of its weights\n")
    print("| format | file MB | bits/weight | ppl | mean KL | top-1 | pp512 t/s | tg128 t/s | llama.cpp ppl / KL / top-1 / pp512 / tg128 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        l = r.get("llama")
        lc = f"{l['ppl']:.4f} / {l['kl']:.2e} / {100 * l['top1']:.1f}% / {l['pp512']:.0f} / {l['tg128']:.1f}" if l else "-"
        print(f"| {r['format']} | {r['bytes'] / 1e6:.1f} | {r['bpw']:.2f} | {r['ppl']:.4f} | {r['kl']:.2e} | {100 * r['top1']:.1f}% | "
              f"{r['pp512']:.0f} | {r['tg128']:.1f} | {lc} |")
    kinds = list(rows[0]["rmse"].keys()) if rows else []
    print("\nrelative RMSE of the weights against the Q4_K_M weights, per tensor kind\n")
    print("| format | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for r in rows:
        print(f"| {r['format']} | " + " | ".join(f"{r['rmse'].get(k, float('nan')):.2e}" for k in kinds) + " |")
    if args.json:
        json.dump({"cpu": cpu, "threads": args.threads, "rows": rows}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
