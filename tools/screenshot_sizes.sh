#!/usr/bin/env bash
# Screenshots of the Caption panel at 640x480, 800x500 and 1920x1080 and of the Models view at
# 800x500, in the real app window under Xvfb (the window resized with xdotool), into
# screenshots/caption-WxH.png and screenshots/models-800x500.png. The app's data folder is a
# temporary one, so the shipped default model is used.
# Usage: tools/screenshot_sizes.sh   (needs: xvfb xdotool x11-apps imagemagick)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p screenshots

shot() { # NAME WIDTH HEIGHT WAIT ARGS...
  local name=$1 w=$2 h=$3 wait=$4
  shift 4
  local display=:$((90 + RANDOM % 9))
  Xvfb "$display" -screen 0 "$((w + 40))x$((h + 40))x24" >/dev/null 2>&1 &
  local xvfb=$!
  sleep 2
  XDG_DATA_HOME=$work/data DISPLAY=$display ./target/release/captioner app "$@" &
  local app=$!
  local wid=""
  for _ in $(seq 1 50); do
    wid=$(DISPLAY=$display xdotool search --name '^captioner$' 2>/dev/null | head -1 || true)
    [ -n "$wid" ] && break
    sleep 0.2
  done
  DISPLAY=$display xdotool windowsize "$wid" "$w" "$h"
  sleep "$wait"
  DISPLAY=$display xwd -id "$wid" -silent | convert xwd:- "screenshots/$name.png"
  kill $app 2>/dev/null || true
  wait $app 2>/dev/null || true
  kill $xvfb 2>/dev/null || true
  echo "wrote screenshots/$name.png"
}

dog=tests/fixtures/encoder/images/246231741_882b45c4e1.jpg
shot caption-640x480 640 480 10 --tab caption "$dog"
shot caption-800x500 800 500 10 --tab caption "$dog"
shot caption-1920x1080 1920 1080 10 --tab caption "$dog"
shot models-800x500 800 500 8 --tab models
