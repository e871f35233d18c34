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
# shellcheck source=tools/xvfb_shot.sh
source tools/xvfb_shot.sh

xvfb_shot batch 1280 800 "${BATCH_WAIT:-25}" "$work/data" --tab batch --run "$photos"
xvfb_shot batch_800x500 800 500 "${BATCH_WAIT:-25}" "$work/data" --tab batch --run "$photos"
