#!/usr/bin/env bash
# `gemma pull`, `gemma list`, `gemma rm` and --model ORG/REPO against a loopback stand-in for the Hugging Face hub
# (scripts/hub_mirror.py: the hub's endpoints, redirects to a CDN on another host, ETags, Range, and faults on
# purpose). Never reaches the real hub. Also checks the cache against huggingface_hub both ways.
# Prints one line per check and closes with "N passed, N failed"; exits non-zero on any failure.
#
#   scripts/pull-tests.sh [GEMMA_BINARY]
set -uo pipefail
cd "$(dirname "$0")/.."
GEMMA_BIN="$(realpath "${1:-${GEMMA_BIN:-.build/release/gemma}}")"
MODEL="${GEMMA_MODEL:-$(scripts/fetch-model.sh)}"
pass=0; fail=0
check() {  # check NAME COMMAND...
  local name="$1"; shift
  if out="$("$@" 2>&1)"; then pass=$((pass + 1)); echo "ok   $name"
  else fail=$((fail + 1)); echo "FAIL $name"; echo "$out" | tail -20 | sed 's/^/     /'; fi
}

tmp="$(mktemp -d)"
mirror_pid=""
trap '[ -n "$mirror_pid" ] && kill "$mirror_pid" 2>/dev/null; rm -rf "$tmp"' EXIT

# The repositories the mirror serves.
root="$tmp/root"
g="$root/google/gemma-3-270m-GGUF"
mkdir -p "$g" "$root/tiny/text-folder/original" "$root/tiny/vision-GGUF"
ln -s "$(realpath "$MODEL")" "$g/gemma-3-270m-Q4_K_M.gguf"
"$GEMMA_BIN" quantize "$MODEL" "$g/gemma-3-270m-Q8_0.gguf" --to q8_0 >/dev/null 2>&1
echo "# Gemma 3 270M" > "$g/README.md"
touch "$root/google/gemma-3-270m-GGUF.gated"
for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json; do
  cp "Tests/Fixtures/gemma3-tiny-text/$f" "$root/tiny/text-folder/"
done
echo "# not a model file" > "$root/tiny/text-folder/README.md"
echo "decoy" > "$root/tiny/text-folder/pytorch_model.bin"
echo "{}" > "$root/tiny/text-folder/original/params.json"
"$GEMMA_BIN" convert Tests/Fixtures/gemma3-tiny-vision "$root/tiny/vision-GGUF/tiny-vision-F32.gguf" >/dev/null 2>&1
cp Tests/Fixtures/generated/gemma3-tiny-vision-weights/f16.gguf "$root/tiny/vision-GGUF/mmproj-tiny-vision-f16.gguf"
cp Tests/Fixtures/generated/gemma3-tiny-vision-weights/f32.gguf "$root/tiny/vision-GGUF/mmproj-tiny-vision-f32.gguf"

python3 scripts/hub_mirror.py "$root" --port-file "$tmp/port" --token secret-token > "$tmp/mirror.log" 2>&1 &
mirror_pid=$!
for _ in $(seq 1 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$tmp/port")"
export HF_ENDPOINT="$url" HF_HOME="$tmp/hf" GEMMA_PULL_ATTEMPTS=4
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_CACHE HF_HUB_OFFLINE
cache="$tmp/hf/hub"
faults() { curl -sf -X POST --data "$1" "$url/_faults" >/dev/null; }
log() { curl -sf "$url/_log"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
q4=$(sha "$MODEL")

gated() {
  local out
  out="$("$GEMMA_BIN" pull google/gemma-3-270m-GGUF 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "401" && echo "$out" | grep -q "licence" && echo "$out" | grep -q "HF_TOKEN" || { echo "$out"; return 1; }
  out="$(HF_TOKEN=wrong "$GEMMA_BIN" pull google/gemma-3-270m-GGUF 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "403" && echo "$out" | grep -q "licence" || { echo "$out"; return 1; }
  [ -z "$(ls -A "$cache/models--google--gemma-3-270m-GGUF/blobs" 2>/dev/null)" ] || { echo "a refused pull left blobs"; return 1; }
}
check "a gated repository without a token: 401, naming the licence step and HF_TOKEN; a wrong token: 403; nothing cached" gated

export HF_TOKEN=secret-token
pull_default() {
  local path dir commit
  path="$("$GEMMA_BIN" pull google/gemma-3-270m-GGUF 2>"$tmp/pull.err")" || { cat "$tmp/pull.err"; return 1; }
  dir="$cache/models--google--gemma-3-270m-GGUF"
  commit="$(cat "$dir/refs/main")"
  [ "$path" = "$dir/snapshots/$commit/gemma-3-270m-Q4_K_M.gguf" ] || { echo "path $path"; return 1; }
  [ "$(readlink "$path")" = "../../blobs/$q4" ] || { echo "link $(readlink "$path")"; return 1; }
  [ "$(sha "$dir/blobs/$q4")" = "$q4" ] || return 1
  [ "$(ls "$dir/snapshots/$commit")" = "gemma-3-270m-Q4_K_M.gguf" ] || { echo "snapshot: $(ls "$dir/snapshots/$commit")"; return 1; }
  [ "$(ls "$dir/blobs")" = "$q4" ] || { echo "blobs: $(ls "$dir/blobs")"; return 1; }
  log | python3 -c '
import json, sys
seen = json.load(sys.stdin)
cdn = [r for r in seen if r["path"].startswith("/cdn/")]
assert any(r["path"].endswith("/revision/main") for r in seen), seen
assert any("/resolve/" in r["path"] for r in seen) and len(cdn) == 1, seen'
}
check "pull by name: Q4_K_M chosen over Q8_0 and README, blob named by its sha256, relative snapshot link, refs/main (the CDN on another host, sent no token)" pull_default

run_by_name() {
  local a b
  a="$("$GEMMA_BIN" generate -m google/gemma-3-270m-GGUF --temp 0 -n 12 --ignore-eos "The capital of France is" 2>/dev/null)" || return 1
  b="$("$GEMMA_BIN" generate -m "$MODEL" --temp 0 -n 12 --ignore-eos "The capital of France is" 2>/dev/null)" || return 1
  [ -n "$a" ] && [ "$a" = "$b" ] || { echo "by name: '$a'"; echo "by path: '$b'"; return 1; }
  echo "$a"
}
check "the pulled default model runs by name (--model ORG/REPO) and answers as the file does" run_by_name

quant() {
  local path out
  path="$("$GEMMA_BIN" pull google/gemma-3-270m-GGUF:q8_0 2>/dev/null)" || return 1
  [ "$(basename "$path")" = gemma-3-270m-Q8_0.gguf ] && [ "$(sha "$path")" = "$(sha "$g/gemma-3-270m-Q8_0.gguf")" ] || return 1
  out="$("$GEMMA_BIN" pull google/gemma-3-270m-GGUF:Q5_K 2>&1)" && return 1
  echo "$out" | grep -q "no Q5_K file" && echo "$out" | grep -q "gemma-3-270m-Q4_K_M.gguf" || { echo "$out"; return 1; }
}
check "a named quantization (:q8_0) is pulled; an absent one (:Q5_K) is refused listing the files" quant

drop() {
  rm -rf "$cache/models--google--gemma-3-270m-GGUF"
  log >/dev/null
  faults '{"drop": {"gemma-3-270m-Q4_K_M.gguf": 50000000}}'
  local path; path="$("$GEMMA_BIN" pull google/gemma-3-270m-GGUF 2>"$tmp/pull.err")" || { cat "$tmp/pull.err"; return 1; }
  [ "$(sha "$path")" = "$q4" ] || return 1
  grep -q "resuming at" "$tmp/pull.err" || { cat "$tmp/pull.err"; return 1; }
  log | python3 -c '
import json, sys
ranges = [r["range"] for r in json.load(sys.stdin) if r["path"].startswith("/cdn/")]
assert len(ranges) == 2 and ranges[0] is None and ranges[1].startswith("bytes=") and int(ranges[1][6:-1]) >= 49000000, ranges
print(ranges)'
}
check "a transfer dropped mid-file (at 50 MB) is resumed with a Range request and the blob checks out" drop

resume() {
  local dir="$cache/models--google--gemma-3-270m-GGUF"
  rm -rf "$dir"; mkdir -p "$dir/blobs"
  head -c 10000000 "$MODEL" > "$dir/blobs/$q4.incomplete"
  log >/dev/null
  local path; path="$("$GEMMA_BIN" pull google/gemma-3-270m-GGUF 2>"$tmp/pull.err")" || { cat "$tmp/pull.err"; return 1; }
  [ "$(sha "$path")" = "$q4" ] && [ ! -e "$dir/blobs/$q4.incomplete" ] || return 1
  log | python3 -c '
import json, sys
ranges = [r["range"] for r in json.load(sys.stdin) if r["path"].startswith("/cdn/")]
assert ranges == ["bytes=10000000-"], ranges'
}
check "an interrupted earlier pull (a 10 MB .incomplete blob) resumes from byte 10,000,000" resume

corrupt() {
  faults '{"corrupt": ["model.safetensors"]}'
  local out dir="$cache/models--tiny--text-folder" s
  s=$(sha "$root/tiny/text-folder/model.safetensors")
  out="$("$GEMMA_BIN" pull tiny/text-folder 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "do not match the hub's hash" || { echo "$out"; return 1; }
  [ ! -e "$dir/blobs/$s" ] && [ ! -e "$dir/blobs/$s.incomplete" ] || { echo "bad bytes kept"; ls "$dir/blobs"; return 1; }
  ! ls "$dir"/snapshots/*/model.safetensors 2>/dev/null || { echo "bad file linked"; return 1; }
  faults '{}'
  "$GEMMA_BIN" pull tiny/text-folder >/dev/null 2>&1 || return 1
  [ "$(sha "$dir"/snapshots/*/model.safetensors)" = "$s" ] || return 1
}
check "bytes that do not match the hub's sha256 are refused (removed, not linked); the next pull fetches them whole" corrupt

disk_full() {
  # The partial blob is /dev/full: every write fails with ENOSPC, as on a full disk.
  local dir="$cache/models--google--gemma-3-270m-GGUF" out
  rm -rf "$dir"; mkdir -p "$dir/blobs"
  ln -s /dev/full "$dir/blobs/$q4.incomplete"
  out="$("$GEMMA_BIN" pull google/gemma-3-270m-GGUF 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -qi "space" && echo "$out" | grep -q "kept: pull again to resume" || { echo "$out"; return 1; }
  [ ! -e "$dir/blobs/$q4" ] && ! ls "$dir"/snapshots/*/* 2>/dev/null || { echo "something was linked"; return 1; }
  rm "$dir/blobs/$q4.incomplete"
  local path; path="$("$GEMMA_BIN" pull google/gemma-3-270m-GGUF 2>/dev/null)" && [ "$(sha "$path")" = "$q4" ]
}
check "a full disk while writing: a clear error, nothing linked; the next pull completes" disk_full

folder() {
  local path; path="$("$GEMMA_BIN" pull tiny/text-folder 2>/dev/null)" || return 1
  [ "$(cd "$path" && find . -mindepth 1 | sort | tr '\n' ' ')" = "./config.json ./generation_config.json ./model.safetensors ./tokenizer.json ./tokenizer_config.json " ] || { (cd "$path" && find . | sort); return 1; }
  "$GEMMA_BIN" generate -m tiny/text-folder --temp 0 -n 4 --ignore-eos hello >/dev/null 2>&1 || return 1
}
check "a Hugging Face folder: config, tokenizer, generation config and safetensors only (no README, .bin, original/); it runs by name" folder

retries() {
  rm -rf "$cache/models--tiny--text-folder"
  faults '{"status": {"/resolve/": [429, 500], "/revision/": [503]}}'
  log >/dev/null
  "$GEMMA_BIN" pull tiny/text-folder 2>"$tmp/pull.err" >/dev/null || { cat "$tmp/pull.err"; return 1; }
  grep -q "HTTP 429" "$tmp/pull.err" && grep -q "HTTP 500" "$tmp/pull.err" && grep -q "HTTP 503" "$tmp/pull.err" || { cat "$tmp/pull.err"; return 1; }
  faults '{}'
}
check "429, 500 and 503 answers are retried after Retry-After and the pull completes" retries

not_found() {
  local out
  out="$("$GEMMA_BIN" pull tiny/absent 2>&1)" && return 1
  echo "$out" | grep -q "404" || { echo "$out"; return 1; }
  out="$("$GEMMA_BIN" pull tiny/text-folder@nope 2>&1)" && return 1
  echo "$out" | grep -q "404" || { echo "$out"; return 1; }
  out="$("$GEMMA_BIN" pull not-a-reference 2>&1)" && return 1
  echo "$out" | grep -q "ORG/REPO" || { echo "$out"; return 1; }
}
check "an unknown repository or revision: 404 named; a malformed reference refused" not_found

no_network() {
  local out dead
  dead="http://127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  out="$(HF_ENDPOINT="$dead" GEMMA_PULL_ATTEMPTS=2 "$GEMMA_BIN" pull tiny/other 2>&1)" && return 1
  echo "$out" | grep -qi "after 2 attempts" || { echo "$out"; return 1; }
  # Offline: what the cache holds, no request.
  out="$(HF_ENDPOINT="$dead" HF_HUB_OFFLINE=1 "$GEMMA_BIN" pull google/gemma-3-270m-GGUF 2>&1)" || { echo "$out"; return 1; }
  out="$(HF_ENDPOINT="$dead" HF_HUB_OFFLINE=1 "$GEMMA_BIN" pull tiny/other 2>&1)" && return 1
  echo "$out" | grep -q "HF_HUB_OFFLINE" || { echo "$out"; return 1; }
}
check "no network: a clear error after the attempts; HF_HUB_OFFLINE=1 serves the cache and names itself when it cannot" no_network

model_option() {
  local out
  rm -rf "$cache/models--tiny--vision-GGUF"
  out="$("$GEMMA_BIN" info tiny/vision-GGUF 2>&1)" && return 1
  echo "$out" | grep -q "gemma pull tiny/vision-GGUF" || { echo "$out"; return 1; }
  "$GEMMA_BIN" generate -m tiny/vision-GGUF --pull --temp 0 -n 2 --ignore-eos "Describe" >/dev/null 2>"$tmp/gen.err" || { cat "$tmp/gen.err"; return 1; }
  ls "$cache"/models--tiny--vision-GGUF/snapshots/*/ | tr '\n' ' ' | grep -qx "mmproj-tiny-vision-f16.gguf tiny-vision-F32.gguf " || { ls "$cache"/models--tiny--vision-GGUF/snapshots/*/; return 1; }
  # The server loads the repository's mmproj with it: its model card says it reads images.
  local port pid ok=1
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$GEMMA_BIN" serve -m tiny/vision-GGUF --port "$port" 2>"$tmp/serve.err" &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/v1/models" | python3 -c 'import json, sys; m = json.load(sys.stdin)["data"][0]; assert m["meta"]["modalities"]["vision"] is True, m' && ok=0
  kill "$pid"; wait "$pid" 2>/dev/null
  [ $ok = 0 ] || { cat "$tmp/serve.err"; return 1; }
}
check "--model ORG/REPO not cached: refused naming gemma pull; with --pull fetched (the model and its f16 mmproj), run, and served reading images" model_option

hf_reads_ours() {
  HF_HUB_OFFLINE=1 python3 - "$q4" <<'EOF'
import hashlib, sys
from huggingface_hub import hf_hub_download, snapshot_download
p = hf_hub_download("google/gemma-3-270m-GGUF", "gemma-3-270m-Q4_K_M.gguf")
assert hashlib.sha256(open(p, "rb").read()).hexdigest() == sys.argv[1], p
d = snapshot_download("tiny/text-folder", allow_patterns=["*.json", "*.safetensors"])
import os
assert sorted(os.listdir(d)) == ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"], os.listdir(d)
print(p, d)
EOF
}
check "huggingface_hub (offline) reads the cache gemma pull made" hf_reads_ours

ours_reads_hf() {
  local home="$tmp/hf-python"
  HF_HOME="$home" python3 - <<'EOF' || return 1
from huggingface_hub import hf_hub_download, snapshot_download
hf_hub_download("google/gemma-3-270m-GGUF", "gemma-3-270m-Q4_K_M.gguf")
snapshot_download("tiny/text-folder")
EOF
  local path
  path="$(HF_HOME="$home" HF_HUB_OFFLINE=1 "$GEMMA_BIN" pull google/gemma-3-270m-GGUF 2>/dev/null)" || return 1
  [ "$(sha "$path")" = "$q4" ] || return 1
  HF_HOME="$home" HF_HUB_OFFLINE=1 "$GEMMA_BIN" generate -m tiny/text-folder --temp 0 -n 2 --ignore-eos hi >/dev/null 2>&1 || return 1
  # Online, with every file already there: nothing is downloaded again.
  log >/dev/null
  HF_HOME="$home" "$GEMMA_BIN" pull google/gemma-3-270m-GGUF >/dev/null 2>&1 || return 1
  log | python3 -c 'import json, sys; s = json.load(sys.stdin); assert not [r for r in s if r["path"].startswith("/cdn/")], s'
}
check "a cache huggingface_hub made is read by gemma (offline, and online without fetching again)" ours_reads_hf

list_rm() {
  local out
  out="$("$GEMMA_BIN" list)" || return 1
  echo "$out" | grep -q "google/gemma-3-270m-GGUF .*GB  GGUF gemma-3-270m-Q4_K_M.gguf" || { echo "$out"; return 1; }
  echo "$out" | grep -q "tiny/text-folder .*HF folder (text)" && echo "$out" | grep -q "mmproj mmproj-tiny-vision-f16.gguf" || { echo "$out"; return 1; }
  "$GEMMA_BIN" list --json | python3 -c 'import json, sys; rows = [json.loads(l) for l in sys.stdin]; assert {r["repo"] for r in rows} == {"google/gemma-3-270m-GGUF", "tiny/text-folder", "tiny/vision-GGUF"}, rows'
  "$GEMMA_BIN" rm tiny/text-folder 2>/dev/null || return 1
  [ ! -e "$cache/models--tiny--text-folder" ] || return 1
  "$GEMMA_BIN" list | grep -q tiny/text-folder && return 1
  ! "$GEMMA_BIN" rm tiny/text-folder 2>/dev/null
}
check "gemma list shows each repository's size and kind (GGUF, HF folder, mmproj); gemma rm removes one" list_rm

together() {
  # Two pulls of one file at once: the second waits on the blob's lock (huggingface_hub's .locks file), then finds it whole.
  local dir="$cache/models--google--gemma-3-270m-GGUF" a b
  rm -rf "$dir"
  "$GEMMA_BIN" pull google/gemma-3-270m-GGUF >"$tmp/a.out" 2>"$tmp/a.err" & a=$!
  "$GEMMA_BIN" pull google/gemma-3-270m-GGUF >"$tmp/b.out" 2>"$tmp/b.err" & b=$!
  wait $a || { cat "$tmp/a.err"; return 1; }
  wait $b || { cat "$tmp/b.err"; return 1; }
  [ "$(sha "$(cat "$tmp/a.out")")" = "$q4" ] && [ "$(cat "$tmp/a.out")" = "$(cat "$tmp/b.out")" ] || return 1
  [ "$(ls "$dir/blobs")" = "$q4" ] || { ls "$dir/blobs"; return 1; }
  [ -e "$cache/.locks/models--google--gemma-3-270m-GGUF/$q4.lock" ] || return 1
  grep -h "waiting" "$tmp/a.err" "$tmp/b.err" || echo "(the second pull started after the first had finished)"
}
check "two pulls of one model at once: one downloads, the other waits on the lock; one whole blob" together

head_only() {
  # A mirror whose listing has names only (no sizes or hashes): they come from each file's HEAD, X-Linked-Etag /
  # ETag and X-Linked-Size, as huggingface_hub reads them.
  python3 scripts/hub_mirror.py "$root" --port-file "$tmp/port2" --token secret-token --no-blobs > "$tmp/mirror2.log" 2>&1 &
  local pid=$! path ok=1
  for _ in $(seq 1 50); do [ -s "$tmp/port2" ] && break; sleep 0.1; done
  path="$(HF_ENDPOINT="http://127.0.0.1:$(cat "$tmp/port2")" HF_HOME="$tmp/hf-head" "$GEMMA_BIN" pull google/gemma-3-270m-GGUF 2>"$tmp/pull.err")" \
    && [ "$(readlink "$path")" = "../../blobs/$q4" ] && [ "$(sha "$path")" = "$q4" ] \
    && path="$(HF_ENDPOINT="http://127.0.0.1:$(cat "$tmp/port2")" HF_HOME="$tmp/hf-head" "$GEMMA_BIN" pull tiny/text-folder 2>>"$tmp/pull.err")" \
    && [ "$(readlink "$path/config.json")" = "../../blobs/$(git hash-object "$root/tiny/text-folder/config.json")" ] && ok=0
  kill "$pid" 2>/dev/null
  [ $ok = 0 ] || { cat "$tmp/pull.err"; return 1; }
}
check "a listing without hashes: each file's HEAD gives its sha256 (X-Linked-Etag) or git blob id (ETag) and size" head_only

terminal() {
  # On a terminal (script(1) gives it one): a progress line redrawn in place with percentage, rate and time left.
  rm -rf "$cache/models--google--gemma-3-270m-GGUF"
  script -qfec "'$GEMMA_BIN' pull google/gemma-3-270m-GGUF" /dev/null > "$tmp/tty.out" 2>&1 || { cat "$tmp/tty.out"; return 1; }
  grep -aq $'\r\e\[K\[1/1\] gemma-3-270m-Q4_K_M.gguf .*%.*MB/s.*left' "$tmp/tty.out" || { cat -v "$tmp/tty.out" | head -c 2000; return 1; }
  grep -aq "checking its sha256" "$tmp/tty.out" && grep -aq "253.1 MB in .* s (.*MB/s)" "$tmp/tty.out" || { cat -v "$tmp/tty.out" | head -c 2000; return 1; }
}
check "on a terminal: one progress line per file redrawn in place (percentage, bytes, rate, time left), then the check" terminal

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
