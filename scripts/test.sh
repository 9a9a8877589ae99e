#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, fetches the model, makes the reference data,
# builds in release for this CPU, and runs every test. `make test` and .ci/run call this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/swift-flags.sh

# Generated kernel files first: a hand edit or a stale template fails here, before the long build.
scripts/check-generated.sh
scripts/setup.sh
MODEL="$(scripts/fetch-model.sh)"
export GEMMA_MODEL="$MODEL"
CACHE="$(dirname "$MODEL")"

# Reference data made by independent implementations (gguf-py), never by our own code.
if [ -f scripts/make_quant_fixtures.py ]; then
  python3 scripts/make_quant_fixtures.py
fi
if [ -f scripts/dequant_model_reference.py ]; then
  export GEMMA_DEQUANT_REF="$CACHE/reference/dequant-$(basename "$MODEL" .gguf)-f32.gguf"
  if [ ! -f "$GEMMA_DEQUANT_REF" ]; then
    mkdir -p "$CACHE/reference"
    echo "test: dequantizing every tensor of the model with gguf-py (once)..." >&2
    python3 scripts/dequant_model_reference.py "$MODEL" "$GEMMA_DEQUANT_REF.tmp"
    mv "$GEMMA_DEQUANT_REF.tmp" "$GEMMA_DEQUANT_REF"
  fi
fi

# Small random-weight models with the attention structure of each published size (1B, 4B, 12B, 27B) as GGUF files and
# Hugging Face folders, and the NumPy reference's logits for them (a minute or two once, then skipped while up to
# date); checked against transformers' record of the same weights (Tests/Fixtures/size-structures-transformers.json).
python3 scripts/reference/make_size_structure_refs.py \
  --check-transformers Tests/Fixtures/size-structures-transformers.json

# The tiny vision fixture's weights as llama.cpp mmproj GGUF files (f32, f16, bf16, q8_0, an old swapped-FFN file) and
# Hugging Face folders (sharded f32, bf16, f16; three name layouts), with a NumPy reference for each (seconds, skipped
# while up to date); read by Tests/GemmaVisionTests.
python3 scripts/reference/make_vision_weight_fixtures.py

# The tokenizer.json transformers makes of the model's vocabulary (33 MB, once): TokenizerJSONTests read it and check
# that it is the file Tests/Fixtures/tokenizer-hf-270m.json was made from.
if [ ! -f Tests/Fixtures/generated/gemma-3-270m-hf/tokenizer.json ]; then
  echo "test: converting the model's vocabulary to tokenizer.json with transformers (once)..." >&2
  python3 scripts/reference/make_hf_tokenizer_refs.py gguf "$MODEL" --no-fixture
fi

echo "test: building (release, tuned for this CPU)..." >&2
swift build --build-tests "${SWIFT_FLAGS[@]}"

# The fuzzers measure peak RSS, so each runs in a process of its own.
swift test --skip-build "${SWIFT_FLAGS[@]}" --filter GGUFFuzzTests
swift test --skip-build "${SWIFT_FLAGS[@]}" --filter SafetensorsFuzzTests
swift test --skip-build "${SWIFT_FLAGS[@]}" --filter ImageFuzzTests
# The rest one test at a time: the model tests each use every core through the worker pool, so running them side by
# side only makes them wait on each other (a parallel run took 1717 s and timed out server requests on 2 cores).
swift test --skip-build "${SWIFT_FLAGS[@]}" --skip 'GGUFFuzzTests|SafetensorsFuzzTests|ImageFuzzTests' --no-parallel
# End-to-end checks of the release binary: every script runs, and any failure fails the suite at the end.
status=0
scripts/cli-tests.sh || status=1
scripts/chat-tty-test.sh || status=1
scripts/server-tests.sh .build/release/gemma || status=1
scripts/browser-tests.sh .build/release/gemma || status=1
scripts/pull-tests.sh .build/release/gemma || status=1
exit $status
