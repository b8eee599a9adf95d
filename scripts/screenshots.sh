#!/usr/bin/env bash
# Placeholder: screenshots of the web interface (Playwright driving Debian's /usr/bin/chromium)
# are not written yet.
echo "make screenshots: not written yet (scripts/screenshots.sh is a placeholder)." >&2
exit 2
