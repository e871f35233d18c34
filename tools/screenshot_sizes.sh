#!/usr/bin/env bash
# Screenshots of the Caption panel at 640x480, 800x500, 1280x800 and 1920x1080 and of the Models view at
# 800x500, in the real app window under Xvfb (the window resized with xdotool), into
# screenshots/caption-WxH.png and screenshots/models-800x500.png. The app's data folder is a
# temporary one, so the shipped default model is used.
# Usage: [WAIT=seconds] tools/screenshot_sizes.sh   (needs: xvfb xdotool x11-apps imagemagick)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p screenshots
# shellcheck source=tools/xvfb_shot.sh
source tools/xvfb_shot.sh

dog=tests/fixtures/encoder/images/246231741_882b45c4e1.jpg
xvfb_shot caption-640x480 640 480 "${WAIT:-10}" "$work/data" --tab caption "$dog"
xvfb_shot caption-800x500 800 500 "${WAIT:-10}" "$work/data" --tab caption "$dog"
xvfb_shot caption-1280x800 1280 800 "${WAIT:-10}" "$work/data" --tab caption "$dog"
xvfb_shot caption-1920x1080 1920 1080 "${WAIT:-10}" "$work/data" --tab caption "$dog"
xvfb_shot models-800x500 800 500 "${WAIT:-8}" "$work/data" --tab models
