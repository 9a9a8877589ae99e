#!/usr/bin/env python3
"""Speed and memory of `gemma` beside llama.cpp on the same GGUF, threads and sizes (issues 5 and 6).

  scripts/bench-vs-llamacpp.py [--pp 512] [--tg 128] [--rounds 3] [--reps 1] [--threads 2]
                               [--long 8192,32768] [--long-rounds 1] [--rss] [--rss-prompt 64] [--rss-tokens 128]
                               [--model M] [--gemma-bin B] [--json]

Speed (always): every round runs A = `gemma bench -p PP -n TG -t T -r REPS --json` and then B = llama.cpp doing the
same in a fresh Python process (llama-cpp-python's low-level API: the GGUF loaded as llama.cpp loads it, a context
with llama.cpp's default parameters except n_ctx = PP+TG, n_batch = n_ubatch = 512, n_threads = n_threads_batch = T).
Both sides do one uncounted warm-up of each test, then REPS timed repetitions, as llama-bench does:
  ppN: one llama_decode of N prompt tokens (in 512-token ubatches) from an empty cache, logits of the last only;
  tgN: N single-token llama_decode calls from an empty cache (the first token BOS), each with its logits.
Token ids are fixed pseudo-random ids (llama-bench uses random ids too). Rounds are interleaved A/B/A/B so that
load changes on this shared machine hit both sides alike; the summary gives per-round numbers, both medians over
rounds, the ratios gemma/llama.cpp and tg as a share of the memory-bandwidth roofline (bandwidth / bytes read per
token: ~30 GB/s / 246 MB = ~122 tok/s by default; --bytes-per-token and --bandwidth change it, --roofline sets it).

--long 8192,32768: prompt processing at long context, `gemma bench -p L -n 0` vs llama.cpp decoding an L-token
prompt from an empty cache with n_ctx = L and n_batch = n_ubatch = 512 (llama.cpp's default ubatch), --long-rounds
rounds of one warm-up + REPS repetitions each.

--rss: peak resident set size of `gemma generate --ids (the first --rss-prompt ids of ppl-public.txt) -n 128
--temp 0 --ignore-eos` vs a small Python driver that loads the model with llama-cpp-python and greedily generates
the same number of tokens after the same ids (n_ctx = the sequence rounded up to 256, and again at llama.cpp's
default n_ctx = the model's 32768). Peak RSS is the child's ru_maxrss (os.wait4). The driver's Python interpreter
with llama_cpp imported but no model is measured too and shown, since it is part of the driver's figure.

llama.cpp keeps its defaults throughout: flash attention auto (resolves to on for this CPU build; the value it
resolved to is printed), f16 K and V cache, sliding-window KV cache (not --swa-full), mmap'd weights. These are the
settings of llama.cpp's llama-bench figures in the project's shared goldens (bench-llamacpp.txt). llama-cpp-python is installed with pip when missing (it
compiles llama.cpp: slow, once per machine). Not part of the unit-test suite: it takes minutes and wants a quiet
machine; the 2-vCPU VMs this was written on vary by +-15% run to run. llama.cpp's CPU build uses OpenMP, whose
threads spin at every barrier: when other processes hold the CPUs its multi-thread numbers collapse far more than
gemma's (tg128 of 2.6-23 tok/s at load 4 on 2 vCPUs, against 92 quiet), so numbers taken under load are not a
comparison. The script warns when the load average is above half the CPU count.
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLAMA_CPP_PIP = os.environ.get("LLAMA_CPP_PYTHON_SPEC", "llama-cpp-python")


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else None


def ids_stream(n, seed=42):
    """The same deterministic ids as `gemma bench` (an LCG over the ordinary-text range)."""
    out, s = [], seed
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        out.append(1000 + (s >> 33) % 200_000)
    return out


# ---------------------------------------------------------------- llama.cpp side (runs in a child process)

def llama_cpp_build_env():
    """The environment for compiling llama.cpp here: on Intel CPUs with AMX its native build dies with SIGILL in these
    VMs, so the AMX instructions are switched off in the C and C++ flags (through CMAKE_ARGS, which pip passes on)."""
    env = dict(os.environ)
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        flags = ""
    if "amx_tile" in flags:
        no_amx = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
        log(f"this CPU has AMX: building llama.cpp with {no_amx}")
        env["CMAKE_ARGS"] = (env.get("CMAKE_ARGS", "") + f' -DCMAKE_C_FLAGS="{no_amx}" -DCMAKE_CXX_FLAGS="{no_amx}"').strip()
    return env


def import_llama_cpp():
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        log(f"llama-cpp-python is missing: pip install {LLAMA_CPP_PIP} (compiles llama.cpp, several minutes)")
        subprocess.run([sys.executable, "-m", "pip", "install", LLAMA_CPP_PIP], check=True, stdout=sys.stderr,
                       env=llama_cpp_build_env())
        import llama_cpp  # noqa: F401
    import llama_cpp
    return llama_cpp


class Llama:
    """A llama.cpp model and context through the low-level API, with llama.cpp's default context parameters."""

    def __init__(self, model, n_ctx, threads, n_batch=None, n_ubatch=None):
        L = self.L = import_llama_cpp()
        self.logs = []

        @L.llama_log_callback
        def on_log(level, text, user_data):  # keep llama.cpp quiet, but remember what it said
            self.logs.append(text.decode("utf-8", "replace") if text else "")

        self._on_log = on_log  # the callback must outlive the library's use of it
        L.llama_log_set(on_log, None)
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(model.encode(), mp)
        if not self.model:
            raise SystemExit(f"llama.cpp could not load {model}")
        # llama.cpp's defaults: flash_attn_type AUTO, type_k/type_v F16. The C API's default swa_full is true, but
        # llama.cpp's tools (llama-bench, llama-cli, llama-completion) set it false: a sliding-window KV cache.
        cp = L.llama_context_default_params()
        cp.swa_full = False
        cp.n_ctx = n_ctx
        if n_batch:
            cp.n_batch = n_batch
        if n_ubatch:
            cp.n_ubatch = n_ubatch
        cp.n_threads = cp.n_threads_batch = threads
        self.params = cp
        self.ctx = L.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise SystemExit("llama.cpp could not create a context")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.bos = L.llama_vocab_bos(self.vocab)
        self.mem = L.llama_get_memory(self.ctx)

    def settings(self):
        text = "".join(self.logs)
        fa = "enabled" if "Flash Attention enabled" in text else "disabled" if "Flash Attention was auto, set to disabled" in text or "flash_attn            = disabled" in text else "auto (not reported)"
        types = {0: "f32", 1: "f16", 30: "bf16", 8: "q8_0"}
        return {"llama_cpp_python": getattr(self.L, "__version__", "?"),
                "n_ctx": self.L.llama_n_ctx(self.ctx), "n_batch": self.params.n_batch, "n_ubatch": self.params.n_ubatch,
                "threads": self.params.n_threads, "flash_attn_type_param": self.params.flash_attn_type,
                "flash_attn": fa, "type_k": types.get(self.params.type_k, self.params.type_k),
                "type_v": types.get(self.params.type_v, self.params.type_v), "swa_full": bool(self.params.swa_full)}

    def decode(self, arr, n):
        rc = self.L.llama_decode(self.ctx, self.L.llama_batch_get_one(arr, n))
        if rc != 0:
            raise SystemExit(f"llama_decode returned {rc}")

    def pp(self, ids):
        """Seconds for one prompt of len(ids) tokens from an empty cache, in n_batch chunks (as llama-bench)."""
        nb = self.params.n_batch
        chunks = [(ctypes.c_int32 * len(ids[i:i + nb]))(*ids[i:i + nb]) for i in range(0, len(ids), nb)]
        self.L.llama_memory_clear(self.mem, True)
        t0 = time.perf_counter()
        for c in chunks:
            self.decode(c, len(c))
        self.L.llama_synchronize(self.ctx)
        return time.perf_counter() - t0

    def tg(self, n, ids):
        """Seconds for n single-token decodes from an empty cache (first token BOS, then fixed ids; as llama-bench)."""
        one = (ctypes.c_int32 * 1)(self.bos)
        self.L.llama_memory_clear(self.mem, True)
        t0 = time.perf_counter()
        for i in range(n):
            self.decode(one, 1)
            self.L.llama_synchronize(self.ctx)
            one[0] = ids[i % len(ids)]
        return time.perf_counter() - t0

    def greedy(self, prompt, n):
        import numpy as np
        self.L.llama_memory_clear(self.mem, True)
        arr = (ctypes.c_int32 * len(prompt))(*prompt)
        t0 = time.perf_counter()
        self.decode(arr, len(prompt))
        t1 = time.perf_counter()
        out, one = [], (ctypes.c_int32 * 1)()
        for i in range(n):
            logits = np.ctypeslib.as_array(self.L.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))
            out.append(int(logits.argmax()))
            if i + 1 < n:
                one[0] = out[-1]
                self.decode(one, 1)
        t2 = time.perf_counter()
        return out, t1 - t0, t2 - t1


def worker_main(args):
    if args.worker == "baseline":
        import_llama_cpp()
        print(json.dumps({"ok": True}))
        return
    if args.worker == "bench":
        n_ctx = max(args.pp + args.tg, 256)
        llm = Llama(args.model, n_ctx, args.threads, n_batch=512, n_ubatch=512)
        ids = ids_stream(max(args.pp, args.tg, 1))
        pp, tg = [], []
        for rep in range(-1, args.reps):  # one warm-up of each, not counted
            if args.pp:
                s = llm.pp(ids[:args.pp])
                if rep >= 0:
                    pp.append(args.pp / s)
            if args.tg:
                s = llm.tg(args.tg, ids)
                if rep >= 0:
                    tg.append(args.tg / s)
        print(json.dumps({"pp": pp, "tg": tg, "settings": llm.settings()}))
        return
    if args.worker == "rss":
        prompt = json.loads(args.ids)
        llm = Llama(args.model, args.n_ctx, args.threads)
        tokens, ps, gs = llm.greedy(prompt, args.tg)
        print(json.dumps({"tokens": tokens, "prompt_s": ps, "generate_s": gs, "settings": llm.settings()}))


# ---------------------------------------------------------------- driver

def run_child(cmd):
    """Runs cmd, returns (stdout, seconds, peak RSS in bytes from wait4)."""
    import selectors
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    sel.register(p.stderr, selectors.EVENT_READ)
    bufs = {p.stdout: [], p.stderr: []}
    open_pipes = 2  # read both pipes until EOF, then reap the child with wait4 for its own rusage
    while open_pipes:
        for key, _ in sel.select():
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                open_pipes -= 1
            else:
                bufs[key.fileobj].append(chunk)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    secs = time.perf_counter() - t0
    out, err = b"".join(bufs[p.stdout]).decode(), b"".join(bufs[p.stderr]).decode()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{err[-2000:]}")
    return out, secs, ru.ru_maxrss * 1024


def gemma_bench(args, p, n, reps):
    out, _, _ = run_child([args.gemma_bin, "bench", "-m", args.model, "-p", str(p), "-n", str(n), "-t", str(args.threads),
                           "-r", str(reps), "--json"])
    d = json.loads(out.strip().splitlines()[-1])
    return {"pp": d["pp"]["tok_s"] if "pp" in d else None, "tg": d["tg"]["tok_s"] if "tg" in d else None}


def llama_bench(args, p, n, reps):
    out, _, _ = run_child([sys.executable, os.path.abspath(__file__), "--worker", "bench", "--model", args.model,
                           "--pp", str(p), "--tg", str(n), "--threads", str(args.threads), "--reps", str(reps)])
    d = json.loads(out.strip().splitlines()[-1])
    return {"pp": median(d["pp"]), "tg": median(d["tg"]), "settings": d["settings"]}


def fmt(x, w=8):
    return f"{x:{w}.1f}" if x is not None else f"{'-':>{w}}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pp", type=int, default=512, help="prompt tokens of the pp test (0 to skip)")
    ap.add_argument("--tg", type=int, default=128, help="generated tokens of the tg test (0 to skip)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved A/B rounds")
    ap.add_argument("--reps", type=int, default=1, help="timed repetitions per side per round (after one warm-up)")
    ap.add_argument("--threads", "-t", type=int, default=2)
    ap.add_argument("--long", default="", help="comma list of long prompt lengths, e.g. 8192,32768")
    ap.add_argument("--long-rounds", type=int, default=1)
    ap.add_argument("--rss", action="store_true", help="also compare peak RSS of a generation")
    ap.add_argument("--rss-prompt", type=int, default=64, help="prompt ids for --rss (from ppl-public.txt, BOS first)")
    ap.add_argument("--rss-tokens", type=int, default=128, help="tokens generated for --rss")
    ap.add_argument("--bytes-per-token", type=float, default=246e6, help="weight bytes read per decoded token")
    ap.add_argument("--bandwidth", type=float, default=30e9, help="memory bandwidth, bytes/s")
    ap.add_argument("--roofline", type=float, help="tg roofline in tok/s (default: bandwidth / bytes per token)")
    ap.add_argument("--model", "-m", default=None, help="GGUF (default $GEMMA_MODEL, else scripts/fetch-model.sh)")
    ap.add_argument("--gemma-bin", default=os.environ.get("GEMMA_BIN", os.path.join(ROOT, ".build/release/gemma")))
    ap.add_argument("--json", action="store_true", help="print one JSON object (human-readable lines go to stderr)")
    ap.add_argument("--worker", choices=["bench", "rss", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--n-ctx", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--ids", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        return worker_main(args)

    if args.model is None:
        args.model = os.environ.get("GEMMA_MODEL") or subprocess.run(
            [os.path.join(ROOT, "scripts/fetch-model.sh")], check=True, capture_output=True, text=True).stdout.strip()
    if not os.path.exists(args.gemma_bin):
        log(f"building {args.gemma_bin}")
        subprocess.run(["swift", "build", "-c", "release", "-Xswiftc", "-target-cpu", "-Xswiftc", "native",
                        "--product", "gemma"], cwd=ROOT, check=True, stdout=sys.stderr)
    import_llama_cpp()  # install before timing anything
    out = sys.stderr if args.json else sys.stdout

    def say(s=""):
        print(s, file=out, flush=True)

    roofline = args.roofline or args.bandwidth / args.bytes_per_token
    result = {"model": args.model, "threads": args.threads, "pp": args.pp, "tg": args.tg, "rounds": args.rounds,
              "reps": args.reps, "roofline_tok_s": roofline, "load_before": os.getloadavg(), "cpus": os.cpu_count()}
    say(f"model {os.path.basename(args.model)}, {args.threads} threads, {os.cpu_count()} CPUs, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        say("WARNING: the machine is busy; llama.cpp's OpenMP threads suffer far more than gemma's from that, "
            "so these numbers are not a fair comparison")

    # ---- pp / tg, interleaved
    rounds, settings = [], None
    if args.pp or args.tg:
        say(f"\npp{args.pp} / tg{args.tg}: {args.rounds} rounds of A = gemma bench, B = llama.cpp "
            f"(each: 1 warm-up + {args.reps} timed), tok/s")
        say(f"{'round':>5}  {'gemma pp':>9} {'llama pp':>9}  {'gemma tg':>9} {'llama tg':>9}   load")
        for r in range(args.rounds):
            a = gemma_bench(args, args.pp, args.tg, args.reps)
            b = llama_bench(args, args.pp, args.tg, args.reps)
            settings = b.pop("settings")
            rounds.append({"gemma": a, "llamacpp": b, "load": os.getloadavg()[0]})
            say(f"{r + 1:>5}  {fmt(a['pp'], 9)} {fmt(b['pp'], 9)}  {fmt(a['tg'], 9)} {fmt(b['tg'], 9)}   {os.getloadavg()[0]:.2f}")
        med = {side: {k: median([x[side][k] for x in rounds if x[side][k] is not None])
                      for k in ("pp", "tg")} for side in ("gemma", "llamacpp")}
        ratio = {k: (med["gemma"][k] / med["llamacpp"][k] if med["gemma"][k] and med["llamacpp"][k] else None)
                 for k in ("pp", "tg")}
        result.update(rounds_detail=rounds, median=med, ratio=ratio, llamacpp_settings=settings,
                      tg_roofline_pct={s: (100 * med[s]["tg"] / roofline if med[s]["tg"] else None) for s in med})

    # ---- long prompts
    longs = [int(x) for x in args.long.split(",") if x.strip()]
    if longs:
        result["long"] = []
        say(f"\nlong prompts (n_batch = n_ubatch = 512, llama.cpp n_ctx = prompt), {args.long_rounds} round(s), pp tok/s")
        for L in longs:
            ga, lb = [], []
            for _ in range(args.long_rounds):
                ga.append(gemma_bench(args, L, 0, args.reps)["pp"])
                b = llama_bench(args, L, 0, args.reps)
                lb.append(b["pp"])
                say(f"  pp{L:<6} gemma {ga[-1]:8.1f}   llama.cpp {lb[-1]:8.1f}   (n_ctx {b['settings']['n_ctx']}, "
                    f"flash attention {b['settings']['flash_attn']}, load {os.getloadavg()[0]:.2f})")
            result["long"].append({"n": L, "gemma": ga, "llamacpp": lb, "gemma_median": median(ga),
                                   "llamacpp_median": median(lb), "ratio": median(ga) / median(lb)})

    # ---- peak RSS
    if args.rss:
        fx = json.load(open(os.path.join(ROOT, "Tests/Fixtures/reference-topk.json")))
        prompt = fx["input_ids"][:args.rss_prompt]
        n = args.rss_tokens
        say(f"\npeak RSS: {len(prompt)}-token prompt (ppl-public.txt, BOS first), {n} greedy tokens, {args.threads} threads")
        gout, gsecs, grss = run_child([args.gemma_bin, "generate", "-m", args.model, "--ids", ",".join(map(str, prompt)),
                                       "-n", str(n), "--temp", "0", "--ignore-eos", "-t", str(args.threads), "--json"])
        g = json.loads(gout.strip().splitlines()[-1])
        seq = len(prompt) + n
        rss = {"prompt_tokens": len(prompt), "generated": n,
               "gemma": {"peak_rss_bytes": grss, "self_reported_peak_rss_bytes": g.get("peak_rss_bytes"),
                         "kv_cache_bytes": g.get("kv_cache_bytes"), "wall_s": gsecs,
                         "generate_tok_s": len(g["tokens"]) / (g["generate_ms"] / 1000) if g.get("generate_ms") else None}}
        say(f"  gemma generate                          peak RSS {grss / 2**20:7.1f} MiB  (KV cache "
            f"{(g.get('kv_cache_bytes') or 0) / 2**20:.2f} MiB, {rss['gemma']['generate_tok_s'] or 0:.1f} tok/s)")
        _, _, base = run_child([sys.executable, os.path.abspath(__file__), "--worker", "baseline"])
        rss["python_baseline_bytes"] = base
        for label, n_ctx in (("sized", -(-(seq + 1) // 256) * 256), ("default_ctx", 0)):
            lout, lsecs, lrss = run_child([sys.executable, os.path.abspath(__file__), "--worker", "rss", "--model", args.model,
                                           "--n-ctx", str(n_ctx), "--threads", str(args.threads), "--tg", str(n),
                                           "--ids", json.dumps(prompt)])
            d = json.loads(lout.strip().splitlines()[-1])
            same = next((i for i, (x, y) in enumerate(zip(d["tokens"], g["tokens"])) if x != y), min(len(d["tokens"]), len(g["tokens"])))
            rss[f"llamacpp_{label}"] = {"peak_rss_bytes": lrss, "n_ctx": d["settings"]["n_ctx"], "wall_s": lsecs,
                                        "generate_tok_s": (n - 1) / d["generate_s"] if d["generate_s"] else None,
                                        "tokens_equal_to_gemma": same, "settings": d["settings"]}
            say(f"  llama.cpp (Python driver, n_ctx {d['settings']['n_ctx']:>5})   peak RSS {lrss / 2**20:7.1f} MiB  "
                f"(minus Python+llama_cpp import {(lrss - base) / 2**20:.1f} MiB; first {same}/{n} tokens = gemma's)")
        say(f"  Python interpreter with llama_cpp imported, no model: {base / 2**20:.1f} MiB")
        result["rss"] = rss

    # ---- summary
    result["load_after"] = os.getloadavg()
    say("\nsummary (medians over rounds, tok/s)")
    if rounds:
        med, ratio = result["median"], result["ratio"]
        say(f"  {'test':<10} {'gemma':>9} {'llama.cpp':>10} {'gemma/llama':>12}")
        for k, n in (("pp", args.pp), ("tg", args.tg)):
            if n:
                say(f"  {k}{n:<8} {med['gemma'][k]:9.1f} {med['llamacpp'][k]:10.1f} {ratio[k]:12.2f}")
        if args.tg:
            basis = "given" if args.roofline else f"{args.bytes_per_token / 1e6:.0f} MB/token at {args.bandwidth / 1e9:.0f} GB/s"
            say(f"  tg roofline {roofline:.0f} tok/s ({basis}): "
                f"gemma {result['tg_roofline_pct']['gemma']:.0f}%, llama.cpp {result['tg_roofline_pct']['llamacpp']:.0f}%")
    for x in result.get("long", []):
        say(f"  pp{x['n']:<8} {x['gemma_median']:9.1f} {x['llamacpp_median']:10.1f} {x['ratio']:12.2f}")
    if args.rss:
        r = result["rss"]
        say(f"  peak RSS   gemma {r['gemma']['peak_rss_bytes'] / 2**20:.1f} MiB; llama.cpp {r['llamacpp_sized']['peak_rss_bytes'] / 2**20:.1f} MiB "
            f"(n_ctx {r['llamacpp_sized']['n_ctx']}), {r['llamacpp_default_ctx']['peak_rss_bytes'] / 2**20:.1f} MiB (n_ctx "
            f"{r['llamacpp_default_ctx']['n_ctx']}); Python baseline {r['python_baseline_bytes'] / 2**20:.1f} MiB")
    s = settings or (result.get("rss", {}).get("llamacpp_sized", {}).get("settings"))
    if s:
        say(f"  llama.cpp: llama-cpp-python {s['llama_cpp_python']}, default settings: flash attention auto "
            f"(resolved: {s['flash_attn']}), KV {s['type_k']}/{s['type_v']}, swa_full {s['swa_full']}, "
            f"n_batch/n_ubatch {s['n_batch']}/{s['n_ubatch']}, mmap")
    say(f"  load average before {' '.join(f'{x:.2f}' for x in result['load_before'])}, "
        f"after {' '.join(f'{x:.2f}' for x in result['load_after'])}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
