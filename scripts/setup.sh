#!/usr/bin/env bash
# Installs what the build, the tests and scripts need on a fresh machine: the Debian packages of the image decoders that
# GemmaVision links through pkg-config (libjpeg-turbo, libpng, libwebp), and Python packages from PyPI (gguf-py, numpy,
# safetensors; for the tokenizer references, sentencepiece, protobuf, tokenizers and transformers without torch; the
# official openai client for the server checks).
# Swift and its packages come with the machine image.
set -euo pipefail
"$(dirname "$0")/setup-system.sh"
need=()
python3 -c "import numpy" 2>/dev/null || need+=(numpy)
python3 -c "import gguf" 2>/dev/null || need+=("gguf>=0.17")
python3 -c "import safetensors" 2>/dev/null || need+=(safetensors)
python3 -c "import sentencepiece" 2>/dev/null || need+=(sentencepiece)
python3 -c "import google.protobuf" 2>/dev/null || need+=(protobuf)
python3 -c "import tokenizers" 2>/dev/null || need+=("tokenizers==0.23.3")
python3 -c "import transformers" 2>/dev/null || need+=("transformers==5.23.0")
python3 -c "import openai" 2>/dev/null || need+=(openai)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: pip install ${need[*]}" >&2
  python3 -m pip install --quiet --disable-pip-version-check "${need[@]}" >&2
fi
