#!/usr/bin/env bash
# Takes a screenshot of the real app window under Xvfb.
# Usage: tools/screenshot.sh OUT.png [SECONDS]   (needs: xvfb x11-apps imagemagick)
set -euo pipefail
out=${1:-screenshots/app.png}
wait=${2:-8}
cd "$(dirname "$0")/.."
cargo build --release --quiet
display=:$((90 + RANDOM % 9))
Xvfb "$display" -screen 0 1280x860x24 >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
sleep 2
DISPLAY=$display ./target/release/captioner &
app=$!
sleep "$wait"
mkdir -p "$(dirname "$out")"
DISPLAY=$display xwd -root -silent | convert xwd:- -trim "$out"
kill $app 2>/dev/null || true
echo "wrote $out"
