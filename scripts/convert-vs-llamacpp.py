#!/usr/bin/env python3
"""llama.cpp reads the GGUF files `gemma convert` writes as we do (issue 15 must-have 5).

From a Hugging Face folder (by default the 270M exported as f32 by `gemma convert MODEL DIR --type f32`, made here
when --folder is not given), writes GGUF files with `gemma convert DIR out.gguf --type T` for each type, loads each
with llama.cpp (llama-cpp-python, 2 threads) and compares greedy ids with ours on the same file, for the 14 prompts
of Tests/Fixtures/reference-greedy.json (prompt ids as given) x 32 tokens:
  - llama.cpp: argmax of its logits at every step (ties to the lowest id), no sampler, no end-of-sequence stop;
  - ours: `gemma generate -m out.gguf --ids ... -n 32 --temp 0 --ignore-eos --json`, in default precision and
    with --exact.
Where two lists differ it prints the first differing step with both engines' top-1 minus top-2 logit margins there
(ours from `gemma dump-logits` on the same prefix): a margin near 0 is a near tie that two correct implementations
may break differently. Also checks that llama.cpp reads the metadata we wrote (context, layers, vocabulary size).

Bytes: llama.cpp's own quantizer (llama_model_quantize, what llama-quantize runs) is given our f32 file and asked for
each type, with the settings under which its choice of tensor types is ours (q4_k: `pure`, since no mixture is
applied, and the embedding at the type our rule gives it); its file is then compared with ours tensor by tensor
(names, types, shapes, data bytes). Identical data means the metadata, the names, the norm shift, the embedding
rule, the fallbacks and the quantizers agree with llama.cpp, and a greedy difference is the engines' arithmetic.

Usage: scripts/convert-vs-llamacpp.py [--folder DIR] [--types f32,q8_0,bf16] [--bytes q8_0,q4_0,bf16,f16,q4_k]
                                      [--work DIR] [--gemma BIN] [-n 32]
Needs llama-cpp-python, gguf and numpy. Not part of the unit-test suite.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def run(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{res.stderr.strip()[-2000:]}")
    return res.stdout


def llama_greedy(llm, prompt_ids, n):
    """n argmax tokens of llama.cpp's logits after prompt_ids, and the top-1 minus top-2 margin at each step."""
    llm.reset()
    llm.eval(list(prompt_ids))
    out, margins = [], []
    for _ in range(n):
        logits = np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        top = np.argsort(-logits, kind="stable")[:2]
        out.append(int(top[0]))
        margins.append(float(logits[top[0]] - logits[top[1]]))
        llm.eval([out[-1]])
    return out, margins


def our_greedy(gemma, model, prompt_ids, n, exact):
    cmd = [gemma, "generate", "-m", model, "-t", "2", "--ids", ",".join(map(str, prompt_ids)), "-n", str(n),
           "--temp", "0", "--ignore-eos", "--json"] + (["--exact"] if exact else [])
    return json.loads(run(cmd))["tokens"]


def our_margin(gemma, model, ids, exact, work):
    """Our top-2 at the last position of `ids` (logits of every position from `gemma dump-logits`)."""
    ids_file, out = os.path.join(work, "ids.json"), os.path.join(work, "logits.f32")
    json.dump(ids, open(ids_file, "w"))
    run([gemma, "dump-logits", "-m", model, "-t", "2", "--ids-file", ids_file, "--out", out] + (["--exact"] if exact else []))
    logits = np.fromfile(out, dtype=np.float32).reshape(len(ids), -1)[-1].astype(np.float64)
    os.remove(out)
    top = np.argsort(-logits, kind="stable")[:2]
    return [int(t) for t in top], float(logits[top[0]] - logits[top[1]])


# llama_ftype values (llama.h) and ggml types for the byte comparison.
FTYPES = {"f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q4_k": 14, "q6_k": 18, "bf16": 32}
GGML_Q8_0 = 8


def llama_quantize(llama_cpp, src, dst, t, embedding_type=None):
    """llama.cpp's quantizer on src -> dst at type t; its log (one line per tensor) goes to dst + '.log'."""
    import ctypes
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = FTYPES[t]
    p.nthread = 2
    if t == "q4_k":
        p.pure = True  # Q4_K everywhere it fits, as our q4_k; without it llama.cpp mixes in Q5_K (Q4_K_S)
    if embedding_type is not None:
        p.token_embedding_type = embedding_type
    saved = os.dup(2)
    with open(dst + ".log", "w") as log:
        os.dup2(log.fileno(), 2)
        try:
            rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    if rc != 0:
        sys.exit(f"llama_model_quantize {src} -> {dst} ({t}) failed: see {dst}.log")


def compare_bytes(ours_path, theirs_path):
    """(tensors, identical, differences) between two GGUF files, by tensor name."""
    import gguf
    a = {t.name: t for t in gguf.GGUFReader(ours_path).tensors}
    b = {t.name: t for t in gguf.GGUFReader(theirs_path).tensors}
    diffs = []
    if set(a) != set(b):
        diffs.append(f"tensor names differ: {sorted(set(a) ^ set(b))[:5]}")
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x.tensor_type != y.tensor_type or list(x.shape) != list(y.shape):
            diffs.append(f"{name}: ours {x.tensor_type.name} {list(x.shape)}, llama.cpp {y.tensor_type.name} {list(y.shape)}")
        elif bytes(x.data.tobytes()) != bytes(y.data.tobytes()):
            xb, yb = np.frombuffer(x.data.tobytes(), np.uint8), np.frombuffer(y.data.tobytes(), np.uint8)
            diffs.append(f"{name} ({x.tensor_type.name}): {int((xb != yb).sum())} of {xb.size} bytes differ")
    return len(a), len(a) - len(diffs), diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folder", help="f32 Hugging Face folder (default: the fetched 270M exported with --type f32)")
    ap.add_argument("--types", default="f32,q8_0,bf16")
    ap.add_argument("--bytes", default="q8_0,q4_0,bf16,f16,q4_k", help="types to compare with llama.cpp's quantizer")
    ap.add_argument("--work", help="where the GGUF files go (default: a temporary folder)")
    ap.add_argument("--gemma", default=str(REPO / ".build/release/gemma"))
    ap.add_argument("-n", type=int, default=32)
    a = ap.parse_args()

    import llama_cpp
    work = a.work or tempfile.mkdtemp(prefix="convert-vs-llamacpp-")
    os.makedirs(work, exist_ok=True)
    folder = a.folder
    if folder is None:
        model = os.environ.get("GEMMA_MODEL") or run([str(REPO / "scripts/fetch-model.sh")]).strip()
        folder = os.path.join(work, "gemma-3-270m-f32")
        print(f"gemma convert {model} {folder} --type f32", flush=True)
        run([a.gemma, "convert", model, folder, "--type", "f32", "--force"])
    fixture = json.load(open(REPO / "Tests/Fixtures/reference-greedy.json"))["results"]
    print(f"llama-cpp-python {llama_cpp.__version__}; {len(fixture)} prompts x {a.n} greedy tokens", flush=True)

    summary = []
    f32 = os.path.join(work, "gemma-3-270m-f32.gguf")
    if a.bytes:
        run([a.gemma, "convert", folder, f32, "--type", "f32", "--force"])
        for t in filter(None, a.bytes.split(",")):
            ours_path, theirs_path = os.path.join(work, f"gemma-3-270m-{t}.gguf"), os.path.join(work, f"llama-{t}.gguf")
            run([a.gemma, "convert", folder, ours_path, "--type", t, "--force"])
            # Our embedding for q4_k: rows of 640 are not whole 256-blocks, so q8_0 (llama.cpp's tied-output rule).
            llama_quantize(llama_cpp, f32, theirs_path, t, embedding_type=GGML_Q8_0 if t == "q4_k" else None)
            n, same, diffs = compare_bytes(ours_path, theirs_path)
            print(f"bytes {t:5s}: {same} of {n} tensors identical to llama.cpp's quantization of our f32 file"
                  + "".join(f"\n   {d}" for d in diffs[:8]) + (f"\n   ... {len(diffs) - 8} more" if len(diffs) > 8 else ""),
                  flush=True)
            summary.append((t, "bytes", same, n))
    for t in filter(None, a.types.split(",")):
        gguf = os.path.join(work, f"gemma-3-270m-{t}.gguf")
        run([a.gemma, "convert", folder, gguf, "--type", t, "--force"])
        # logits_all keeps each evaluated position's logits in llm.scores (the library's samplers are not used).
        llm = llama_cpp.Llama(model_path=gguf, n_ctx=256, n_batch=256, n_threads=2, n_threads_batch=2,
                              logits_all=True, verbose=False, seed=0)
        m = llm.model
        print(f"\n== {t}: {os.path.getsize(gguf) / 1e6:.0f} MB; llama.cpp reads {llama_cpp.llama_model_n_layer(m)} layers, "
              f"width {llm.n_embd()}, vocabulary {llm.n_vocab()}, training context {llama_cpp.llama_model_n_ctx_train(m)}, "
              f"window {llama_cpp.llama_model_n_swa(m)}, {llm._model.desc()}", flush=True)
        theirs = {r["name"]: llama_greedy(llm, r["prompt_ids"], a.n) for r in fixture}
        del llm
        for exact in (False, True):
            mode = "exact" if exact else "default"
            same = 0
            for r in fixture:
                lc, lc_margins = theirs[r["name"]]
                mine = our_greedy(a.gemma, gguf, r["prompt_ids"], a.n, exact)
                if mine == lc:
                    same += 1
                    continue
                i = next(i for i, (x, y) in enumerate(zip(lc, mine)) if x != y)
                top2, margin = our_margin(a.gemma, gguf, r["prompt_ids"] + mine[:i], exact, work)
                print(f"   {mode:7s} {r['name']:24s} first difference at step {i}: llama.cpp {lc[i]} "
                      f"(its top-2 margin {lc_margins[i]:.4f}), ours {mine[i]} (our top-2 {top2}, margin {margin:.4f})")
            print(f"   {mode:7s} precision: {same} of {len(fixture)} prompts identical to llama.cpp", flush=True)
            summary.append((t, mode, same, len(fixture)))
    print("\nsummary: " + "; ".join(f"{t} {m}: {s}/{n}" for t, m, s, n in summary))


if __name__ == "__main__":
    main()
