#!/usr/bin/env bash
# Bit-for-bit comparison of two builds of the gemma tool on the same model: every position's logits of the first
# 1024 tokens of ppl-public.txt (prompt path: steps of 64; decode path: steps of 1; f32 products with --exact; f32
# KV), greedy ids of the 14 reference prompts, and perplexity. Prints one line per check and exits non-zero on any
# difference. Usage: scripts/compare-builds.sh OLD_GEMMA NEW_GEMMA [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2
model=${3:-${GEMMA_MODEL:-$HOME/.cache/swift-gemma/gemma-3-270m-q4_k_m.gguf}}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
check() {  # name, then the files to compare
    if cmp -s "$2" "$3"; then echo "identical: $1"; else echo "DIFFERENT: $1"; status=1; fi
}
ids=Tests/Fixtures/reference-topk.json
for variant in "--batch 64" "--batch 1" "--batch 64 --exact" "--batch 64 --kv f32"; do
    for b in old new; do
        bin=${!b}
        # shellcheck disable=SC2086
        "$bin" dump-logits --model "$model" --ids-file "$ids" --out "$tmp/$b.f32" $variant >/dev/null
    done
    check "logits of 1024 positions, dump-logits $variant" "$tmp/old.f32" "$tmp/new.f32"
done
python3 - "$tmp/prompts.txt" <<'PY'
import json, sys
g = json.load(open("Tests/Fixtures/reference-greedy.json"))
with open(sys.argv[1], "w") as f:
    for it in g["results"]:
        f.write(",".join(map(str, it["prompt_ids"])) + "\n")
PY
for b in old new; do
    bin=${!b}
    : > "$tmp/$b.greedy"
    while read -r line; do
        "$bin" generate --model "$model" --ids "$line" -n 32 --temp 0 --ignore-eos --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"])' >> "$tmp/$b.greedy"
    done < "$tmp/prompts.txt"
    "$bin" perplexity --model "$model" --file Tests/Fixtures/ppl-public.txt --ctx 512 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["ppl"], d["chunks"], d["scored"])' > "$tmp/$b.ppl"
done
check "greedy ids, $(wc -l < "$tmp/prompts.txt") prompts x 32 tokens" "$tmp/old.greedy" "$tmp/new.greedy"
check "perplexity of ppl-public.txt at ctx 512: $(cat "$tmp/new.ppl")" "$tmp/old.ppl" "$tmp/new.ppl"
exit $status
