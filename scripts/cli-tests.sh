#!/usr/bin/env bash
# End-to-end checks of the release `gemma` binary on the real model and on corrupt files.
# Prints one line per check and closes with "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/swift-flags.sh
MODEL="${GEMMA_MODEL:-$(scripts/fetch-model.sh)}"
pass=0; fail=0
check() {  # check NAME COMMAND...
  local name="$1"; shift
  if out="$("$@" 2>&1)"; then pass=$((pass + 1)); echo "ok   $name"
  else fail=$((fail + 1)); echo "FAIL $name"; echo "$out" | head -20 | sed 's/^/     /'; fi
}

info_json() {
  "$GEMMA_BIN" info "$MODEL" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
want = {"architecture": "gemma3", "tensor_count": 236, "block_count": 18, "embedding_length": 640,
        "head_count": 4, "head_count_kv": 1, "key_length": 256, "sliding_window": 512, "context_length": 32768,
        "vocab_size": 262144, "global_layers": [5, 11, 17], "feed_forward_length": 2048}
bad = {k: (d.get(k), v) for k, v in want.items() if d.get(k) != v}
assert not bad, bad
assert d["tensors_by_type"] == {"F32": 109, "Q4_K": 27, "Q5_0": 81, "Q6_K": 9, "Q8_0": 10}, d["tensors_by_type"]
assert d["parameter_count"] == 268098176, d["parameter_count"]
print(json.dumps(d))'
}
check "info --json on the real model" info_json
check "info (text) names the architecture" bash -c "'$GEMMA_BIN' info '$MODEL' | grep -q 'architecture *gemma3'"

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
head -c 100000 "$MODEL" > "$tmp/truncated.gguf"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\377' > "$tmp/hostile.gguf"
echo "not a model" > "$tmp/text.gguf"
corrupt() {  # corrupt FILE PATTERN: must exit non-zero and print an error containing PATTERN
  local out; out="$("$GEMMA_BIN" info "$1" 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "$2" || { echo "no '$2' in: $out"; return 1; }
  echo "$out"
}
check "info on a Hugging Face folder reads its config and tensors" bash -c "'$GEMMA_BIN' info --json Tests/Fixtures/gemma3-tiny-text | grep -q '\"format\":\"safetensors\".*\"head_count_kv\":1'"
check "info on a truncated model fails naming the cut" corrupt "$tmp/truncated.gguf" "needs"
check "info on a hostile count fails" corrupt "$tmp/hostile.gguf" "tensor_count"
check "info on a text file fails naming the magic" corrupt "$tmp/text.gguf" "not a GGUF file"
check "info on a missing file fails" corrupt "$tmp/absent.gguf" "no model file"

# gemma finetune on the tiny fixture model: eight prompt/completion pairs (plus a broken line and an empty reply,
# reported by number and skipped), 40 steps of full fine-tuning; the written folder then answers each prompt.
finetune_tiny() {
  python3 - "$tmp/ft.jsonl" <<'PY'
import json, sys
pairs = [("one", "red"), ("two", "green"), ("three", "blue"), ("four", "black"), ("five", "white"), ("six", "pink"), ("seven", "grey"), ("eight", "brown")]
with open(sys.argv[1], "w") as f:
    for a, b in pairs: f.write(json.dumps({"prompt": a, "completion": b}) + "\n")
    f.write('{"prompt": "nine"\n')
    f.write(json.dumps({"messages": [{"role": "user", "content": "ten"}, {"role": "assistant", "content": ""}]}) + "\n")
PY
  local log; log="$("$GEMMA_BIN" finetune -m Tests/Fixtures/gemma3-tiny-text --data "$tmp/ft.jsonl" --full --steps 40 --lr 1e-2 --out "$tmp/ft-out" 2>&1)" || { echo "$log"; return 1; }
  echo "$log" | grep -q "line 9: not valid JSON" || { echo "no line 9 report: $log"; return 1; }
  echo "$log" | grep -q "line 10: an empty reply" || { echo "no line 10 report: $log"; return 1; }
  local q a got
  for qa in one:red four:black eight:brown; do
    q="${qa%%:*}"; a="${qa##*:}"
    got="$("$GEMMA_BIN" run -m "$tmp/ft-out" --temp 0 -n 6 "$q" 2>/dev/null)"
    [ "$got" = "$a" ] || { echo "$q -> '$got', expected '$a'"; return 1; }
  done
  ! "$GEMMA_BIN" finetune -m Tests/Fixtures/gemma3-tiny-text --data "$tmp/ft.jsonl" --full --steps 1 --strict --out "$tmp/ft-strict" 2>/dev/null || return 1
  # LoRA (with dropout): the merged folder answers too; the PEFT adapter folder is written.
  log="$("$GEMMA_BIN" finetune -m Tests/Fixtures/gemma3-tiny-text --data "$tmp/ft.jsonl" --lora-rank 8 --lora-dropout 0.1 --steps 60 --lr 2e-2 --out "$tmp/lo-out" --adapter-out "$tmp/lo-ad" 2>&1)" || { echo "$log"; return 1; }
  for qa in two:green seven:grey; do
    q="${qa%%:*}"; a="${qa##*:}"
    got="$("$GEMMA_BIN" run -m "$tmp/lo-out" --temp 0 -n 6 "$q" 2>/dev/null)"
    [ "$got" = "$a" ] || { echo "LoRA: $q -> '$got', expected '$a'"; return 1; }
  done
  [ -s "$tmp/lo-ad/adapter_model.safetensors" ] && grep -q '"peft_type": "LORA"' "$tmp/lo-ad/adapter_config.json" \
    && grep -q '"lora_dropout": 0.1,' "$tmp/lo-ad/adapter_config.json" || return 1
  # --eval-only: the fine-tuned model's loss on the pairs is far below the base model's.
  local before after
  before="$("$GEMMA_BIN" finetune -m Tests/Fixtures/gemma3-tiny-text --data "$tmp/ft.jsonl" --eval-only 2>/dev/null | sed -n 's/^eval loss \([0-9.]*\).*/\1/p')"
  after="$("$GEMMA_BIN" finetune -m "$tmp/ft-out" --data "$tmp/ft.jsonl" --eval-only 2>/dev/null | sed -n 's/^eval loss \([0-9.]*\).*/\1/p')"
  python3 -c "import sys; b, a = float('$before'), float('$after'); sys.exit(0 if b > 5 and a < 0.1 * b else 1)" || { echo "eval-only: $before -> $after"; return 1; }
  # QLoRA (the base read from its stored tensors) learns the mapping as well.
  log="$("$GEMMA_BIN" finetune -m Tests/Fixtures/gemma3-tiny-text --data "$tmp/ft.jsonl" --lora-rank 8 --qlora --steps 60 --lr 2e-2 --out "$tmp/ql-out" 2>&1)" || { echo "$log"; return 1; }
  got="$("$GEMMA_BIN" run -m "$tmp/ql-out" --temp 0 -n 6 five 2>/dev/null)"
  [ "$got" = white ] || { echo "QLoRA: five -> '$got'"; return 1; }
  # Distillation: the base model learns from the fine-tuned one as teacher.
  log="$("$GEMMA_BIN" finetune -m Tests/Fixtures/gemma3-tiny-text --data "$tmp/ft.jsonl" --full --steps 40 --lr 1e-2 --distill-from "$tmp/ft-out" --out "$tmp/d-out" 2>&1)" || { echo "$log"; return 1; }
  got="$("$GEMMA_BIN" run -m "$tmp/d-out" --temp 0 -n 6 three 2>/dev/null)"
  [ "$got" = blue ] || { echo "distilled: three -> '$got'"; return 1; }
}
check "finetune: the tiny model learns a mapping (full, LoRA with dropout, QLoRA, distilled); bad lines reported; --strict refuses; --eval-only" finetune_tiny

# The model options every command that runs the model shares: --kv and --exact on generate.
kv_exact() {
  local f16 f32
  f16="$("$GEMMA_BIN" generate --model "$MODEL" --temp 0 -n 8 --ignore-eos --json "The quick brown fox")" || return 1
  f32="$("$GEMMA_BIN" generate --model "$MODEL" --kv f32 --exact --temp 0 -n 8 --ignore-eos --json "The quick brown fox")" || return 1
  python3 -c '
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert len(b["tokens"]) == 8 and b["text"], b
assert b["kv_cache_bytes"] == 2 * a["kv_cache_bytes"], (a["kv_cache_bytes"], b["kv_cache_bytes"])
print("f32 KV + exact:", b["tokens"], "KV bytes", b["kv_cache_bytes"], "(f16:", a["kv_cache_bytes"], ")")' "$f16" "$f32"
}
check "generate --kv f32 --exact runs (f32 KV: twice the f16 bytes)" kv_exact
bad_kv() {
  local out; out="$("$GEMMA_BIN" generate --model "$MODEL" --kv f8 -n 1 "Hi" 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q -- "--kv" && echo "$out" | grep -q "q8_0" || { echo "unclear: $out"; return 1; }
  echo "$out" | head -3
}
check "a bad --kv value is a clear error naming the choices" bad_kv

# gemma convert on the tiny fixture: folder -> q8_0 GGUF -> folder, progress on stderr, refusals.
TINY=Tests/Fixtures/gemma3-tiny-text
convert_round_trip() {
  local err
  err="$("$GEMMA_BIN" convert "$TINY" "$tmp/tiny.gguf" --type q8_0 2>&1 >/dev/null)" || { echo "$err"; return 1; }
  echo "$err" | grep -q '^\[106/106\] output_norm.weight F32$' || { echo "no progress line: $err"; return 1; }
  "$GEMMA_BIN" convert "$tmp/tiny.gguf" "$tmp/tiny-hf" 2>/dev/null || return 1
  for f in config.json generation_config.json model.safetensors tokenizer.model tokenizer_config.json; do
    [ -f "$tmp/tiny-hf/$f" ] || { echo "no $f"; return 1; }
  done
  "$GEMMA_BIN" generate --model "$tmp/tiny-hf" --ids 2,10,20 -n 4 --temp 0 --ignore-eos --json | grep -q '"tokens":\['
}
check "convert: folder -> q8_0 GGUF -> folder that generates" convert_round_trip
convert_refuses() {
  local out
  out="$("$GEMMA_BIN" convert "$TINY" "$tmp/tiny.gguf" 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "exists: pass --force" || { echo "unclear: $out"; return 1; }
  out="$("$GEMMA_BIN" convert "$TINY" "$tmp/x.gguf" --type q3_k 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "q4_k, q6_k" || { echo "unclear: $out"; return 1; }
  out="$("$GEMMA_BIN" convert "$tmp/tiny.gguf" "$tmp/q-hf" --type q8_0 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "not q8_0" || { echo "unclear: $out"; return 1; }
  [ ! -e "$tmp/x.gguf" ] && [ ! -e "$tmp/q-hf" ] || { echo "left output behind"; return 1; }
}
check "convert refuses an existing output, an unknown type, a quantized folder" convert_refuses

# gemma quantize on the tiny fixture: a release format's policy, --keep, the weights' error line, refusals.
quantize_policy() {
  local out err
  out="$("$GEMMA_BIN" quantize "$TINY" "$tmp/q.gguf" --to int4-block --keep 'blk.*.attn_output.weight=q8_0' 2>"$tmp/q.err")" || { cat "$tmp/q.err"; return 1; }
  grep -q '^policy: every matrix q4_0' "$tmp/q.err" && grep -q '^wrote .*q.gguf: 106 tensors' "$tmp/q.err" || { cat "$tmp/q.err"; return 1; }
  echo "$out" | grep -q '^relative RMSE against the input.s weights: token_embd .*, attn_output [0-9.e-]*' || { echo "no RMSE line: $out"; return 1; }
  "$GEMMA_BIN" info --json "$tmp/q.gguf" | grep -q '"tensors_by_type":{"F16":49,"F32":49,"Q8_0":8}' || { echo "types: $("$GEMMA_BIN" info --json "$tmp/q.gguf" | head -c 300)"; return 1; }
  "$GEMMA_BIN" generate --model "$tmp/q.gguf" --ids 2,10,20 -n 4 --temp 0 --ignore-eos --json | grep -q '"tokens":\['
}
check "quantize: int4-block with --keep, the weights' error per kind, a model that generates" quantize_policy
quantize_refuses() {
  local out
  out="$("$GEMMA_BIN" quantize "$TINY" "$tmp/z.gguf" --to q5_9 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "sfp8, int4-channel, int4-block" || { echo "unclear: $out"; return 1; }
  out="$("$GEMMA_BIN" quantize "$TINY" "$tmp/z.gguf" --to q8_0 --keep 'nothing=q8_0' 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "no tensor of the output is named so" || { echo "unclear: $out"; return 1; }
  [ ! -e "$tmp/z.gguf" ] || { echo "left output behind"; return 1; }
}
check "quantize refuses an unknown format and an override that matches nothing" quantize_refuses
quantize_sfp8() {
  local out
  out="$("$GEMMA_BIN" quantize "$MODEL" "$tmp/q.sbs" --to sfp8 2>"$tmp/s.err")" || { cat "$tmp/s.err"; return 1; }
  grep -q '^wrote .*q.sbs: 182 tensors (72 sfp8)' "$tmp/s.err" || { cat "$tmp/s.err"; return 1; }
  echo "$out" | grep -q '^relative RMSE against the input.s weights: ' || { echo "no RMSE line: $out"; return 1; }
  "$GEMMA_BIN" info "$tmp/q.sbs" >/dev/null || return 1
  "$GEMMA_BIN" generate --model "$tmp/q.sbs" --ids 2,10,20 -n 4 --temp 0 --ignore-eos --json | grep -q '"tokens":\[' || return 1
  rm -f "$tmp/q.sbs"
  out="$("$GEMMA_BIN" quantize "$TINY" "$tmp/q.sbs" --to sfp8 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "query_pre_attn_scalar 48.0 is neither head_dim" || { echo "unclear: $out"; return 1; }
  [ ! -e "$tmp/q.sbs" ] || { echo "left output behind"; return 1; }
  out="$("$GEMMA_BIN" quantize "$TINY" "$tmp/q.sbs" --to sfp8 --force --keep 'x=q8_0' 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q -- "--keep is for GGUF outputs" || { echo "unclear: $out"; return 1; }
  out="$("$GEMMA_BIN" quantize "$TINY" "$tmp/q.gguf" --to sfp8 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "name OUTPUT ...\.sbs" || { echo "unclear: $out"; return 1; }
}
check "quantize --to sfp8 writes a gemma.cpp .sbs that loads and generates; refuses what gemma.cpp cannot express" quantize_sfp8

VISION=Tests/Fixtures/gemma3-tiny-vision
vision_generate() {  # the processor's prompt with one image: the processor's ids (fixtures.json), 8 tokens
  printf '<start_of_turn>user\n<start_of_image>Describe this image.<end_of_turn>\n<start_of_turn>model\n' > "$tmp/vprompt.txt"
  "$GEMMA_BIN" generate -m "$VISION" --image "$VISION/images/wide.png" --file "$tmp/vprompt.txt" --temp 0 -n 8 --json > "$tmp/v.json" || return 1
  python3 - "$tmp/v.json" "$VISION/fixtures.json" <<'PY'
import json, sys
out, ref = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert out["prompt_tokens"] == ref["processor"]["single"]["input_ids"], out["prompt_tokens"]
assert len(out["tokens"]) == 8, out
print(out)
PY
}
check "generate --image: the processor's prompt ids with an image, then 8 tokens" vision_generate
vision_run() {  # Pan & Scan of the 1000x400 image: the whole image and 3 crops, 98 prompt tokens as the processor's
  out="$("$GEMMA_BIN" run -m "$VISION" --image "$VISION/images/wide.png" --pan-and-scan --temp 0 -n 4 --stats "Describe this image." 2>&1)" || { echo "$out"; return 1; }
  echo "$out" | grep -q "prompt 98 tokens" || { echo "no 98-token prompt: $out"; return 1; }
  # The same image as a data: URL gives the same reply.
  url="data:image/png;base64,$(base64 -w0 "$VISION/images/wide.png")"
  a="$("$GEMMA_BIN" run -m "$VISION" --image "$VISION/images/wide.png" --temp 0 -n 4 "Describe this image." 2>/dev/null)"
  b="$("$GEMMA_BIN" run -m "$VISION" --image "$url" --temp 0 -n 4 "Describe this image." 2>/dev/null)"
  [ -n "$a" ] && [ "$a" = "$b" ] || { echo "file and data: URL differ: '$a' vs '$b'"; return 1; }
}
check "run --image --pan-and-scan (98 prompt tokens); a data: URL reads as the file" vision_run
vision_http() {  # an http URL from a loopback server; a 404 and a non-image are clear errors
  port=$((20000 + RANDOM % 20000))
  (cd "$VISION/images" && exec python3 -m http.server "$port" --bind 127.0.0.1) >/dev/null 2>&1 &
  srv=$!
  for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
  a="$("$GEMMA_BIN" run -m "$VISION" --image "$VISION/images/tall.png" --temp 0 -n 4 "What is it?" 2>/dev/null)"
  b="$("$GEMMA_BIN" run -m "$VISION" --image "http://127.0.0.1:$port/tall.png" --temp 0 -n 4 "What is it?" 2>&1)"
  c="$("$GEMMA_BIN" run -m "$VISION" --image "http://127.0.0.1:$port/absent.png" "hi" 2>&1)"; rc=$?
  kill "$srv"
  [ -n "$a" ] && [ "$a" = "$b" ] || { echo "file and http URL differ: '$a' vs '$b'"; return 1; }
  [ $rc -ne 0 ] && echo "$c" | grep -q "HTTP status 404" || { echo "404 unclear (rc $rc): $c"; return 1; }
}
check "run --image with an http URL (loopback server) reads as the file; a 404 is a clear error" vision_http
vision_refuses() {
  out="$("$GEMMA_BIN" run -m Tests/Fixtures/gemma3-tiny-text --image "$VISION/images/wide.png" "hi" 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "no vision encoder" || { echo "unclear: $out"; return 1; }
  out="$("$GEMMA_BIN" run -m "$VISION" --image "$VISION/README.md" "hi" 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "not a JPEG, PNG or WebP image" || { echo "unclear: $out"; return 1; }
  head -c 3000 "$VISION/images/wide.png" > "$tmp/cut.png"
  out="$("$GEMMA_BIN" run -m "$VISION" --image "$tmp/cut.png" "hi" 2>&1)" && { echo "exited 0: $out"; return 1; }
  echo "$out" | grep -q "cut.png" || { echo "unclear: $out"; return 1; }
  echo "$out"
}
check "images refused clearly: a text-only model, a text file, a truncated PNG" vision_refuses
vision_chat() {  # chat's /image attaches to the next message: the reply is run's; turn 2 reuses the image from the cache
  ref="$("$GEMMA_BIN" run -m "$VISION" --image "$VISION/images/wide.png" --temp 0 -n 8 "Describe this image." 2>/dev/null)"
  out="$(printf '/image %s\nDescribe this image.\nWhat colour is it?\n/image %s/README.md\n' "$VISION/images/wide.png" "$VISION" |
    "$GEMMA_BIN" chat -m "$VISION" --temp 0 -n 8 --stats 2>&1)" || { echo "$out"; return 1; }
  python3 - "$out" "$ref" <<'PY'
import re, sys
out, ref = sys.argv[1], sys.argv[2]
assert "[image attached to your next message: 1 view(s), 16 soft tokens]" in out, out
# The first reply: what follows the prompt after the attach note, up to the first stats line.
first = out.split("soft tokens]\n> ", 1)[1].split("\n[prompt ", 1)[0]
assert first == ref, (first, ref)
stats = [tuple(map(int, m)) for m in re.findall(r"\[prompt (\d+) tokens: (\d+) reused, (\d+) prefilled.*?\| (\d+) generated", out)]
assert len(stats) == 2, out
(p1, r1, f1, g1), (p2, r2, f2, g2) = stats
assert p1 == 32 and r1 == 0, stats           # the processor's 32 tokens (fixtures.json processor.single)
assert r2 == p1 + g1 - 1 and p2 == r2 + f2, stats   # turn 2 keeps turn 1, image included, from the cache
assert "not a JPEG, PNG or WebP image" in out, out  # a bad /image is an error line; the chat goes on
print(stats)
PY
  out="$(printf '/image %s\n' "$VISION/images/wide.png" | "$GEMMA_BIN" chat -m Tests/Fixtures/gemma3-tiny-text 2>&1)"
  echo "$out" | grep -q "no vision encoder" || { echo "unclear: $out"; return 1; }
}
check "chat: /image attaches to the next message (reply as run's, 32 prompt tokens), turn 2 reuses the image; refusals" vision_chat

serve_env() {  # GEMMA_* variables set serve's options; an option on the command line beats its variable
  local port1 port2
  port1=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  env -u GEMMA_API_KEY GEMMA_PORT=$port1 GEMMA_PARALLEL=2 GEMMA_CTX=512 "$GEMMA_BIN" serve -m "$MODEL" --port "$port2" >"$tmp/env-serve.log" 2>&1 &
  local pid=$!
  local ok=1
  for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$port2/health" >/dev/null 2>&1; then ok=0; break; fi
    sleep 0.2
  done
  local models; models=$(curl -s "http://127.0.0.1:$port2/v1/models")
  curl -sf -m 1 "http://127.0.0.1:$port1/health" >/dev/null 2>&1 && ok=1   # --port beat GEMMA_PORT
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ $ok -eq 0 ] && echo "$models" | grep -q '"n_ctx":512,"n_parallel":2' || { echo "models: $models"; cat "$tmp/env-serve.log"; return 1; }
}
check "serve: GEMMA_CTX / GEMMA_PARALLEL set options, --port beats GEMMA_PORT" serve_env

serve_cors() {  # --cors-origin: preflight answered before the key check; other origins get no CORS headers; --access-log
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$GEMMA_BIN" serve -m "$MODEL" --port "$port" --api-key k --cors-origin https://app.example --access-log >"$tmp/cors.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.2; done
  local pre other ok=0
  pre=$(curl -s -i -X OPTIONS "http://127.0.0.1:$port/v1/chat/completions" -H "Origin: https://app.example" \
        -H "Access-Control-Request-Method: POST" -H "Access-Control-Request-Headers: authorization,content-type")
  other=$(curl -s -i "http://127.0.0.1:$port/v1/models" -H "Authorization: Bearer k" -H "Origin: https://evil.example")
  echo "$pre" | grep -q "^HTTP/1.1 204" && echo "$pre" | grep -qi "^access-control-allow-origin: https://app.example" || ok=1
  echo "$other" | grep -qi "^access-control-allow-origin" && ok=1
  sleep 0.3
  grep -q "hb.request.id=.*method=OPTIONS.*path=/v1/chat/completions status=204" "$tmp/cors.log" || ok=1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ $ok -eq 0 ] || { echo "$pre"; echo "$other"; cat "$tmp/cors.log"; return 1; }
}
check "serve: --cors-origin answers preflights (204, before the key), not other origins; --access-log logs each request" serve_cors

# The roofline: this machine's read bandwidth beside the weights read per step (the loaded model's, 246.6 MB for the
# 270M Q4_K_M: Q5_0 as stored on AVX-512 CPUs, as Q8_0 elsewhere), tg as a share of bandwidth / bytes.
bench_roofline() {
  "$GEMMA_BIN" bench --model "$MODEL" -p 0 -n 16 -r 1 --roofline --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
r = d["roofline"]
assert r["read_gb_s"] > 1 and r["bytes_per_step"] > 200e6, r
assert abs(r["tok_s"] - r["read_gb_s"] * 1e9 / r["bytes_per_step"]) < 0.02 * r["tok_s"], r
assert abs(r["tg_share"] - d["tg"]["tok_s"] / r["tok_s"]) < 0.01 and 0 < r["tg_share"] < 1.5, (d, r)
print(d)'
}
check "bench --roofline: read bandwidth, bytes per step and tg as a share of their roofline" bench_roofline

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
