#!/usr/bin/env bash
# Renders an HTML page (default: report/index.html) in headless Chromium and saves a
# full-page screenshot, so the report can be looked at as a browser shows it.
# Needs Debian's chromium package: apt-get install chromium
# Usage: tools/screenshot.sh [PAGE.html] [OUT.png] [HEIGHT]
set -euo pipefail
page="${1:-report/index.html}"
out="${2:-report/screenshot.png}"
height="${3:-6000}"
[ -f "$page" ] || { echo "no such page: $page" >&2; exit 1; }
browser="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$browser" ] || { echo "chromium not found: apt-get install chromium" >&2; exit 1; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$profile" --window-size=1280,"$height" \
  --screenshot="$(realpath -m "$out")" "file://$(realpath "$page")" 2>/dev/null
echo "$out"
