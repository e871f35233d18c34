#!/usr/bin/env bash
# Measures how long the app's frames take (its own per-frame work: events, layout, widgets)
# in the real window under Xvfb while it trains and while it batch-captions a folder.
# Prints the app's CAPTIONER_FRAME_STATS lines (every 5 s: frames, mean, slowest).
# Usage: tools/frame_stats.sh [FLICKR8K_DIR] [SECONDS]   (needs: xvfb)
set -euo pipefail
cd "$(dirname "$0")/.."
flickr=${1:-../shared/flickr8k}
secs=${2:-60}
[ -d "$flickr" ] || flickr=tests/fixtures/flickr8k_mini
cargo build --release --quiet
display=:$((80 + RANDOM % 9))
Xvfb "$display" -screen 0 1280x860x24 >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
sleep 2
run() { # LABEL ARGS...
  local label=$1
  shift
  echo "== $label"
  CAPTIONER_FRAME_STATS=1 DISPLAY=$display ./target/release/captioner app "$@" 2>&1 | grep --line-buffered '^frames:' &
  local pipeline=$!
  sleep "$secs"
  pkill -f "target/release/captioner app" || true
  wait "$pipeline" || true
}
run "training on $flickr" --tab train --run "$flickr"
run "batch captioning $flickr/Flicker8k_Dataset" --tab batch --run "$flickr/Flicker8k_Dataset"
