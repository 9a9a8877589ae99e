#!/usr/bin/env bash
# Installs the Debian packages the build needs when they are missing: pkg-config and the image decoders that
# GemmaVision links (libjpeg-turbo, libpng, libwebp). Fast when they are present (dpkg checks only). Run by
# `make build` (so `make run` works on a fresh machine) and by scripts/setup.sh. Packages named as arguments are added
# to the list: scripts/browser-tests.sh asks for chromium (the headless browser of the chat page's test), which the
# build itself does not need.
set -euo pipefail
debs=()
for p in pkg-config libjpeg62-turbo-dev libpng-dev libwebp-dev "$@"; do
  dpkg -s "$p" >/dev/null 2>&1 || debs+=("$p")
done
if [ ${#debs[@]} -gt 0 ]; then
  echo "setup: apt-get install ${debs[*]}" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq "${debs[@]}" >&2
fi
