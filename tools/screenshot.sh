#!/usr/bin/env bash
# Screenshots of each panel of the real app window under Xvfb, into screenshots/.
# Usage: tools/screenshot.sh [FLICKR8K_DIR]   (needs: xvfb x11-apps imagemagick)
# The Train shot starts a real training run on the dataset and waits for a few epochs
# (TRAIN_WAIT seconds, default 170; run `captioner features DIR` first so that it trains at
# once); without FLICKR8K_DIR it uses the test fixtures. Uses your normal data folder.
set -euo pipefail
cd "$(dirname "$0")/.."
flickr=${1:-../shared/flickr8k}
[ -d "$flickr" ] || flickr=tests/fixtures/flickr8k_mini
cargo build --release --quiet
display=:$((90 + RANDOM % 9))
Xvfb "$display" -screen 0 1280x860x24 >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
sleep 2
mkdir -p screenshots

shot() { # NAME SECONDS ARGS...   ($SHOTS, e.g. "train caption", limits which are taken)
  local name=$1 wait=$2
  shift 2
  if [ -n "${SHOTS:-}" ] && [[ " $SHOTS " != *" $name "* ]]; then return 0; fi
  DISPLAY=$display ./target/release/captioner app "$@" &
  local app=$!
  sleep "$wait"
  DISPLAY=$display xwd -root -silent | convert xwd:- -trim "screenshots/$name.png"
  kill $app 2>/dev/null || true
  wait $app 2>/dev/null || true
  echo "wrote screenshots/$name.png"
}

shot caption 10 --tab caption tests/fixtures/encoder/images/246231741_882b45c4e1.jpg
shot caption-unfamiliar 10 --tab caption docs/photos/chelsea.jpg
shot caption-animal 10 --tab caption tests/fixtures/everyday/cow.jpg
shot batch 20 --tab batch --run tests/fixtures/encoder/images
shot dataset 12 --tab dataset "$flickr"
shot train "${TRAIN_WAIT:-170}" --tab train --run "$flickr"
