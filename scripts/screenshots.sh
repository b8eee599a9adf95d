#!/usr/bin/env bash
# Regenerates docs/screenshots/ with Playwright driving Debian's Chromium (see scripts/screenshots.py).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/screenshots.py "$@"
