#!/usr/bin/env python3
"""Makes the big-photo folder for `captioner bench batch`: the first N Flickr8k photos (by
name), upscaled to 4000x3000 pixels (12 megapixels) with a bicubic filter and saved as
baseline JPEGs at quality 90, like a phone camera's files. Needs Pillow (`pip install pillow`).

    python3 tools/make_big_photos.py ../shared/flickr8k/Flicker8k_Dataset /tmp/big12mp 200
"""
import os
import sys

from PIL import Image


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(dst, exist_ok=True)
    names = sorted(f for f in os.listdir(src) if f.lower().endswith((".jpg", ".jpeg")))[:n]
    for name in names:
        out = os.path.join(dst, name)
        if os.path.exists(out):
            continue
        with Image.open(os.path.join(src, name)) as im:
            big = im.convert("RGB").resize((4000, 3000), Image.BICUBIC)
            tmp = out + ".tmp"
            big.save(tmp, "JPEG", quality=90)
            os.replace(tmp, out)
    print(f"{len(names)} photos of 4000x3000 in {dst}")


if __name__ == "__main__":
    main()
