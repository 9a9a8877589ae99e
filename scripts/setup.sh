#!/usr/bin/env bash
# Installs what the tests and scripts need on a fresh machine: Python packages from PyPI (gguf-py, numpy).
# Swift and its packages come with the machine image; nothing else is needed yet.
set -euo pipefail
need=()
python3 -c "import numpy" 2>/dev/null || need+=(numpy)
python3 -c "import gguf" 2>/dev/null || need+=("gguf>=0.17")
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: pip install ${need[*]}" >&2
  python3 -m pip install --quiet --disable-pip-version-check "${need[@]}" >&2
fi
