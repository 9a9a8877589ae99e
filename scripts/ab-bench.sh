#!/usr/bin/env bash
# Interleaved A/B of two builds of the gemma tool: `gemma bench` pp512 + tg128 and the 4-sequence batched decode
# (`--batch 4`), alternating A and B for ROUNDS rounds (default 5) so that both see the same machine drift; prints
# each round and the medians. Usage: scripts/ab-bench.sh A_GEMMA B_GEMMA [ROUNDS] [MODEL]
set -euo pipefail
a=$1 b=$2 rounds=${3:-5}
model=${4:-${GEMMA_MODEL:-$HOME/.cache/swift-gemma/gemma-3-270m-q4_k_m.gguf}}
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$a" "$b" "$rounds" "$model" <<'PY'
import json, statistics, subprocess, sys
a, b, rounds, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def bench(binary, *args):
    out = subprocess.run([binary, "bench", "--model", model, "-t", "2", "-r", "3", "--json", *args],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)
res = {k: {"pp512": [], "tg128": [], "batch4": []} for k in "AB"}
for r in range(rounds):
    for k, binary in (("A", a), ("B", b)):
        d = bench(binary, "-p", "512", "-n", "128")
        res[k]["pp512"].append(d["pp"]["tok_s"]); res[k]["tg128"].append(d["tg"]["tok_s"])
        res[k]["batch4"].append(bench(binary, "-p", "0", "-n", "64", "--batch", "4")["tg"]["tok_s"])
    print(f"round {r + 1}: " + "  ".join(f"{k} pp512 {res[k]['pp512'][-1]:.1f} tg128 {res[k]['tg128'][-1]:.1f} "
                                         f"batch4 {res[k]['batch4'][-1]:.1f}" for k in "AB"), flush=True)
for t in ("pp512", "tg128", "batch4"):
    ma, mb = statistics.median(res["A"][t]), statistics.median(res["B"][t])
    print(f"median {t}: A {ma:.1f}  B {mb:.1f}  B/A {mb / ma:.3f}  (A {min(res['A'][t]):.1f}-{max(res['A'][t]):.1f}, "
          f"B {min(res['B'][t]):.1f}-{max(res['B'][t]):.1f})")
PY
