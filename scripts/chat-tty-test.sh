#!/usr/bin/env bash
# Drives `gemma chat` in a real terminal (a tmux pane): two turns with statistics, a cold run of the same
# conversation, Ctrl-C during a reply, /reset, multi-line input, /exit. Greedy (--temp 0), so replies are fixed.
# Then `gemma run` against the chat, seeded sampling across processes, and a stop string spanning tokens.
# Prints one line per check and "chat-tty: N passed, N failed"; exits non-zero on any failure. The pane's transcript
# is written to $CHAT_TRANSCRIPT (default: a temporary file, path printed at the end).
# Usage: scripts/chat-tty-test.sh   (uses .build/release/gemma; GEMMA_BIN and GEMMA_MODEL override)
set -uo pipefail
cd "$(dirname "$0")/.."
GEMMA_BIN="${GEMMA_BIN:-.build/release/gemma}"
MODEL="${GEMMA_MODEL:-$(scripts/fetch-model.sh)}"
N=24
[ -x "$GEMMA_BIN" ] || { echo "FAIL no binary at $GEMMA_BIN (build it first)"; exit 1; }
if ! command -v tmux >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq tmux >/dev/null || { echo "FAIL cannot install tmux"; exit 1; }
fi

pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "$2" | head -20 | sed 's/^/     /'; }

S="gemma-chat-test-$$"
TRANSCRIPT="${CHAT_TRANSCRIPT:-$(mktemp /tmp/gemma-chat-transcript.XXXXXX)}"
cleanup() { tmux capture-pane -p -J -t "$S" -S - > "$TRANSCRIPT" 2>/dev/null; tmux kill-session -t "$S" 2>/dev/null; }
trap cleanup EXIT

pane() { tmux capture-pane -p -J -t "$S" -S - 2>/dev/null; }
# wait_for COUNT PATTERN [SECONDS]: until the pane has at least COUNT lines matching the extended regex PATTERN.
wait_for() {
  local count="$1" pattern="$2" limit="${3:-60}" t=0
  while [ "$t" -lt $((limit * 10)) ]; do
    [ "$(pane | grep -cE -- "$pattern")" -ge "$count" ] && return 0
    sleep 0.1; t=$((t + 1))
  done
  return 1
}
# send TEXT: type a line and press Enter.
send() { tmux send-keys -t "$S" -l -- "$1"; tmux send-keys -t "$S" Enter; }
reply_after() {  # reply_after PATTERN: the reply printed after the first line matching PATTERN, up to "[" or ">"
  pane | awk -v pat="$1" '
    !on && $0 ~ pat { on = 1; next }
    on && /^(\[|>( |$))/ { exit }
    on { print }'
}
stat_field() {  # stat_field K FIELD: from the K-th stats line, FIELD in prompt|reused|prefilled|generated|stop
  pane | grep -E '^\[prompt ' | sed -n "$1p" | sed -E \
    's/^\[prompt ([0-9]+) tokens: ([0-9]+) reused, ([0-9]+) prefilled.*\| ([0-9]+) generated .* stop: ([a-z_]+).*/\1 \2 \3 \4 \5/' |
    awk -v f="$2" '{ i = (f == "prompt") ? 1 : (f == "reused") ? 2 : (f == "prefilled") ? 3 : (f == "generated") ? 4 : 5; print $i }'
}

tmux kill-session -t "$S" 2>/dev/null
# The pane's shell records gemma's exit status in a file (tmux leaves #{pane_dead_status} empty in some runs);
# it ignores SIGINT itself, and gemma installs its own handler, so Ctrl-C still reaches the chat.
STATUS_FILE="$(mktemp /tmp/gemma-chat-status.XXXXXX)"
tmux new-session -d -s "$S" -x 220 -y 60 "trap '' INT; $GEMMA_BIN chat --model '$MODEL' --temp 0 -n $N --stats; echo \$? > '$STATUS_FILE'"
tmux set-option -t "$S" remain-on-exit on >/dev/null

if wait_for 1 '^>( |$)' 60; then ok "chat starts and shows its prompt"; else bad "chat starts and shows its prompt" "$(pane)"; fi

# Turn 1 and turn 2.
send "Name a color."
if wait_for 1 '^\[prompt ' 60 && [ "$(stat_field 1 reused)" = 0 ] && pane | grep -qE '^\[prompt .*tok/s'; then
  ok "turn 1 streams a reply and reports tok/s ($(stat_field 1 prompt) prompt tokens, $(stat_field 1 generated) generated, stop $(stat_field 1 stop))"
else bad "turn 1 streams a reply and reports tok/s" "$(pane)"; fi
wait_for 2 '^>( |$)' 10
send "Another one?"
wait_for 2 '^\[prompt ' 60
p1=$(stat_field 1 prompt); g1=$(stat_field 1 generated); s1=$(stat_field 1 stop)
p2=$(stat_field 2 prompt); r2=$(stat_field 2 reused); f2=$(stat_field 2 prefilled)
# The new tokens: <end_of_turn>\n closing reply 1, the user turn, <start_of_turn>model\n; plus reply 1's last token
# when it ended by length (sampled but never run through the model).
new=$("$GEMMA_BIN" tokenize --no-bos --json $'<end_of_turn>\n<start_of_turn>user\nAnother one?<end_of_turn>\n<start_of_turn>model\n' |
  python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ids"]))')
extra=1; [ "$s1" = stop ] && extra=0
expected=$((new + extra))
if [ -n "$p2" ] && [ "$r2" = $((p1 + g1 - 1)) ] && [ "$f2" = "$expected" ]; then
  ok "turn 2 prefills only its new tokens (prompt $p2 = $r2 reused + $f2 prefilled; expected $expected new)"
else bad "turn 2 prefills only its new tokens" "p1=$p1 g1=$g1 s1=$s1 p2=$p2 r2=$r2 f2=$f2 expected=$expected"; fi

# A cold run of the same conversation (its token ids, from /tokens: the first p2 ids are turn 2's prompt) in a fresh
# process gives the same greedy reply.
wait_for 3 '^>( |$)' 10
send "/tokens"
wait_for 1 '^\[2,' 10
ids="$(pane | grep -E '^\[2,' | tail -1 | tr -d '[]' | cut -d, -f1-"$p2")"
reply1="$(reply_after '^> Name a color\.$')"; reply2="$(reply_after '^> Another one\?$')"
cold="$("$GEMMA_BIN" generate --model "$MODEL" --ids "$ids" --temp 0 -n $N 2>/dev/null)"
trim() { sed -e 's/[[:space:]]*$//' | grep -v '^$'; }
if [ -n "$reply2" ] && [ "$(echo "$cold" | trim)" = "$(echo "$reply2" | trim)" ]; then
  ok "turn 2's greedy reply equals a cold run of the whole conversation"
else bad "turn 2's greedy reply equals a cold run of the whole conversation" "chat: $reply2
cold: $cold"; fi

# Ctrl-C during a reply stops it and keeps the chat.
wait_for 4 '^>( |$)' 10
send "Tell me a long story about a dragon."
wait_for 1 '^> Tell me a long story' 10
before=$(pane | grep -c .)
t=0; while [ "$(pane | grep -c .)" -le "$before" ] && [ $t -lt 300 ]; do sleep 0.05; t=$((t + 1)); done
tmux send-keys -t "$S" C-c
if wait_for 1 '^\[reply stopped\]' 20 && wait_for 5 '^>( |$)' 10 && [ "$(pane | grep -cE '^\[prompt ')" = 2 ]; then
  ok "Ctrl-C during a reply stops it without quitting ($(reply_after '^> Tell me a long story' | wc -w) words shown)"
else bad "Ctrl-C during a reply stops it without quitting" "$(pane | grep . | tail -8)"; fi

# /reset, then the first message again as a multi-line block: a fresh conversation, the same greedy reply.
send "/reset"
wait_for 1 '^\[conversation reset\]' 10
send '"""'; send "Name a color."; send '"""'
if wait_for 3 '^\[prompt ' 60 && [ "$(stat_field 3 prompt)" = "$p1" ] && [ "$(reply_after '^\.\.\. """$')" = "$reply1" ]; then
  ok "/reset forgets the conversation; a \"\"\" block is one message (same prompt and reply as turn 1)"
else bad "/reset forgets the conversation; a \"\"\" block is one message" "prompt $(stat_field 3 prompt) vs $p1
$(reply_after '^\.\.\. """$')
vs
$reply1"; fi

wait_for 7 '^>( |$)' 10
send "/exit"
t=0; while [ "$(tmux display -p -t "$S" '#{pane_dead}')" != 1 ] && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
t=0; while [ ! -s "$STATUS_FILE" ] && [ $t -lt 50 ]; do sleep 0.1; t=$((t + 1)); done
if [ "$(tmux display -p -t "$S" '#{pane_dead}')" = 1 ] && [ "$(cat "$STATUS_FILE")" = 0 ]; then ok "/exit quits with status 0"
else bad "/exit quits with status 0" "pane dead $(tmux display -p -t "$S" '#{pane_dead}'), exit status '$(cat "$STATUS_FILE")'"; fi
rm -f "$STATUS_FILE"

# Non-interactive: `gemma run` is one chat turn (the same greedy reply as the chat's first turn); seeded sampling
# repeats across processes; a stop string spanning tokens is honoured and never printed.
run_reply="$("$GEMMA_BIN" run --model "$MODEL" --temp 0 -n $N "Name a color." 2>/dev/null)"
if [ "$(echo "$run_reply" | trim)" = "$(echo "$reply1" | trim)" ]; then ok "gemma run gives the chat's first reply"
else bad "gemma run gives the chat's first reply" "run: $run_reply
chat: $reply1"; fi
seeded() { "$GEMMA_BIN" run --model "$MODEL" --temp 1.0 --seed "$1" -n 12 "Tell me a story." 2>/dev/null; }
a="$(seeded 7)"; b="$(seeded 7)"; c="$(seeded 8)"
if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$c" ]; then ok "seeded sampling repeats across runs (--seed 7 twice equal, --seed 8 differs)"
else bad "seeded sampling repeats across runs" "seed 7: $a
seed 7: $b
seed 8: $c"; fi
stopped="$("$GEMMA_BIN" generate --model "$MODEL" --temp 0 -n 8 --stop "er th" "The quick brown fox" 2>/dev/null)"
if [ "$stopped" = " jumps ov" ]; then ok "a stop string spanning tokens (\"er th\" over \" over\" + \" the\") ends generation unprinted"
else bad "a stop string spanning tokens ends generation unprinted" "got: '$stopped'"; fi

cleanup; trap - EXIT
echo "chat-tty: transcript in $TRANSCRIPT"
echo "chat-tty: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
