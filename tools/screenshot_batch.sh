#!/usr/bin/env bash
# Screenshots of the Batch panel in the real app window under Xvfb, at 1280x800 and 800x500,
# into screenshots/batch.png and screenshots/batch_800x500.png.
# Usage: tools/screenshot_batch.sh   (needs: xvfb xdotool x11-apps imagemagick)
# A copy of the mini Flickr8k photos gets a few .txt captions of its own (one with a second
# line, one that is not UTF-8); the app opens it on the Batch panel and captions the rest with
# the shipped model. The app's data folder is a temporary one.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
photos=$work/photos
mkdir -p "$photos"
cp tests/fixtures/flickr8k_mini/Flicker8k_Dataset/*.jpg "$photos/"
mapfile -t names < <(ls "$photos" | sort)
printf 'a black dog runs through the grass\n' >"$photos/${names[0]%.jpg}.txt"
printf 'two dogs play in the snow\r\na second caption, kept when saving\r\n' >"$photos/${names[2]%.jpg}.txt"
printf 'caf\xe9 au lait\n' >"$photos/${names[4]%.jpg}.txt"
mkdir -p screenshots

shot() { # NAME WIDTH HEIGHT
  local name=$1 w=$2 h=$3
  local display=:$((90 + RANDOM % 9))
  Xvfb "$display" -screen 0 "$((w + 40))x$((h + 40))x24" >/dev/null 2>&1 &
  local xvfb=$!
  sleep 2
  XDG_DATA_HOME=$work/data DISPLAY=$display ./target/release/captioner app --tab batch --run "$photos" &
  local app=$!
  local wid=""
  for _ in $(seq 1 50); do
    wid=$(DISPLAY=$display xdotool search --name '^captioner$' 2>/dev/null | head -1 || true)
    [ -n "$wid" ] && break
    sleep 0.2
  done
  DISPLAY=$display xdotool windowsize "$wid" "$w" "$h"
  sleep "${BATCH_WAIT:-25}"
  DISPLAY=$display xwd -id "$wid" -silent | convert xwd:- "screenshots/$name.png"
  kill $app 2>/dev/null || true
  wait $app 2>/dev/null || true
  kill $xvfb 2>/dev/null || true
  echo "wrote screenshots/$name.png"
}

shot batch 1280 800
shot batch_800x500 800 500
