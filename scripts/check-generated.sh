#!/usr/bin/env bash
# The generated kernel files must be exactly what their generators make from the committed templates
# (scripts/kernels): regenerates them into a temporary folder and compares them with Sources/GemmaKernels, and the
# transpose sequence gemm_int16/tr.json with what tr.py makes. Fails, naming each file that differs, when a generated
# file was edited by hand or a template or generator changed without `make kernels`. Likewise the chat page
# Sources/GemmaServer/ChatPage.swift with what scripts/embed-chat-page.py makes of ChatPage/chat.html. scripts/test.sh
# runs it first.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp -R scripts/kernels "$tmp/kernels"
rm -f "$tmp/kernels/gemm_int16/tr.json"
mkdir "$tmp/out"
python3 "$tmp/kernels/gemm_int16/tr.py" > /dev/null
OUT="$tmp/out" python3 "$tmp/kernels/gemm_int16/gen.py"
OUT="$tmp/out" python3 "$tmp/kernels/gen_row_kernels.py"

status=0
check() {  # committed file, regenerated file
  if ! cmp -s "$1" "$2"; then
    echo "check-generated: $1 is not what scripts/kernels makes of the committed templates (first lines of the diff," \
         "committed -> regenerated, below). Edit the template or generator, not the generated file, and run \`make kernels\`." >&2
    diff -u "$1" "$2" | head -n 40 >&2 || true
    status=1
  fi
}
check scripts/kernels/gemm_int16/tr.json "$tmp/kernels/gemm_int16/tr.json"
generated=0
for f in "$tmp/out"/*.swift; do
  check "Sources/GemmaKernels/$(basename "$f")" "$f"
  generated=$((generated + 1))
done
python3 scripts/embed-chat-page.py --out "$tmp/ChatPage.swift"
if ! cmp -s Sources/GemmaServer/ChatPage.swift "$tmp/ChatPage.swift"; then
  echo "check-generated: Sources/GemmaServer/ChatPage.swift is not what scripts/embed-chat-page.py makes of" \
       "Sources/GemmaServer/ChatPage/chat.html: edit the page, then run the script." >&2
  diff -u Sources/GemmaServer/ChatPage.swift "$tmp/ChatPage.swift" | head -n 20 >&2 || true
  status=1
fi
if [ "$status" = 0 ]; then
  echo "check-generated: the $generated generated kernel files, tr.json and the chat page match their generators" >&2
fi
exit "$status"
