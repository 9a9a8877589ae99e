#!/usr/bin/env bash
# The chat page of `gemma serve` in a real browser: scripts/browser_tests.py drives Debian's Chromium (headless) with
# Playwright for Python against servers it starts and stops itself (the text model, the same with --api-key, and the
# tiny vision fixture): streamed replies and their figures, Stop freeing the slot in /metrics, conversations kept
# across reloads, export, markup in model or user text shown as text, the API key, a path prefix, images, phone width.
# Installs the Debian package chromium (scripts/setup-system.sh) and Playwright from PyPI if missing; Playwright's own
# browser download (`playwright install`) is never used. Exits non-zero on failure.
# Usage: scripts/browser-tests.sh [path/to/gemma] [browser_tests.py options: --port P, --screenshots docs]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release/gemma}"
shift $(( $# > 0 ? 1 : 0 ))
scripts/setup-system.sh chromium
if ! python3 -c "import playwright.sync_api" 2>/dev/null; then
    python3 -m pip install --quiet playwright 2>/dev/null || python3 -m pip install --quiet --break-system-packages playwright
fi
exec python3 scripts/browser_tests.py --binary "$BIN" ${GEMMA_MODEL:+--model "$GEMMA_MODEL"} "$@"
