#!/usr/bin/env bash
# End-to-end checks of `gemma serve` with the official openai Python client: scripts/server_tests.py (the real
# model: chat, completions, errors, load, disconnects, throughput), scripts/structured_output_tests.py (the real
# model: Pydantic models through the client's parse, json_object / json_schema, GBNF, a tool round trip, bad schemas
# and tool messages; 30 samples here, --samples 100 for the issue's figure), scripts/ollama_client_tests.py (the
# official `ollama` client on Ollama's routes) and scripts/server_vision_tests.py (image_url parts on the tiny vision
# fixture, against `gemma run --image`). Installs `openai`, `pydantic`, `jsonschema` and `ollama` from PyPI if missing; each script starts
# its own server on a free 127.0.0.1 port and stops it with SIGTERM. Prints one line per check and a summary per
# script; exits non-zero on failure.
# Usage: scripts/server-tests.sh [path/to/gemma] [all|text|vision]   (build first: make build)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release/gemma}"
if ! python3 -c "import openai, pydantic, jsonschema, ollama" 2>/dev/null; then
    python3 -m pip install --quiet openai pydantic jsonschema ollama 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages openai pydantic jsonschema ollama
fi
WHICH="${2:-all}"
status=0
if [ "$WHICH" != vision ]; then python3 scripts/server_tests.py --binary "$BIN" ${GEMMA_MODEL:+--model "$GEMMA_MODEL"} || status=1; fi
if [ "$WHICH" != vision ]; then
    python3 scripts/structured_output_tests.py --binary "$BIN" --samples 30 ${GEMMA_MODEL:+--model "$GEMMA_MODEL"} || status=1
    python3 scripts/ollama_client_tests.py --binary "$BIN" ${GEMMA_MODEL:+--model "$GEMMA_MODEL"} || status=1
fi
if [ "$WHICH" != text ]; then python3 scripts/server_vision_tests.py --binary "$BIN" || status=1; fi
exit $status
