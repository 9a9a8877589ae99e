#!/usr/bin/env bash
# End-to-end checks of `gemma serve` with the official openai Python client (scripts/server_tests.py): installs
# `openai` from PyPI if missing, starts .build/release/gemma serve on a free 127.0.0.1 port, runs the checks, stops
# it with SIGTERM. Prints one line per check and "server: N passed, N failed"; exits non-zero on failure.
# Usage: scripts/server-tests.sh [path/to/gemma]   (build first: make build)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release/gemma}"
if ! python3 -c "import openai" 2>/dev/null; then
    python3 -m pip install --quiet openai 2>/dev/null || python3 -m pip install --quiet --break-system-packages openai
fi
exec python3 scripts/server_tests.py --binary "$BIN" ${GEMMA_MODEL:+--model "$GEMMA_MODEL"}
