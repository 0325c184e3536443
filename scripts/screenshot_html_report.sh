#!/usr/bin/env bash
# Render a --ts-html report in headless Chromium (Debian's `chromium` package) to a PNG, to
# look at what a CI reader sees. Usage: scripts/screenshot_html_report.sh report.html out.png
set -euo pipefail
page=$(realpath "$1")
out=${2:-report.png}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1400,1800 --screenshot="$out" "file://$page" \
  2>/dev/null
echo "wrote $out"
