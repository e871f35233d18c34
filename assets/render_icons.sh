#!/bin/sh
# Renders assets/captioner.svg to assets/icons/captioner-N.png at every size the desktops ask
# for (rsvg-convert from librsvg2-bin; ImageMagick's convert when it is missing).
set -eu
cd "$(dirname "$0")/.."
mkdir -p assets/icons
for n in 16 32 48 64 128 256 512; do
    out="assets/icons/captioner-$n.png"
    if command -v rsvg-convert >/dev/null 2>&1; then
        rsvg-convert -w "$n" -h "$n" assets/captioner.svg -o "$out"
    else
        convert -background none -density 384 assets/captioner.svg -resize "${n}x$n" "$out"
    fi
    echo "$out"
done
