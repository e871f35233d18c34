#!/usr/bin/env python3
"""Builds a folder of Flickr8k photos of one theme in the sidecar layout (photo.jpg +
photo.txt, one caption per line), as a user's own captioned folder would look.

Only dev-split photos are used, so the shipped model (trained on the train split) has never
seen them. A photo belongs to the theme when at least --min-captions of its five captions
contain one of the theme's words.

    python3 tools/make_theme_folder.py ../shared/flickr8k /tmp/dogs --theme dog

Then (README "Fine-tuning on your own captions"):

    captioner eval /tmp/dogs --split test --split-fractions 70/10/20
    captioner train /tmp/dogs --from default --split-fractions 70/10/20 --out /tmp/dogs-run
    captioner eval /tmp/dogs --split test --split-fractions 70/10/20 --model /tmp/dogs-run/best
"""
import argparse
import collections
import os
import shutil
import sys

THEMES = {
    "dog": ["dog", "dogs", "puppy", "puppies"],
    "water": ["water", "swim", "swims", "swimming", "surf", "surfer", "surfing", "ocean",
              "lake", "pool", "wave", "waves", "river"],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("flickr8k")
    ap.add_argument("out")
    ap.add_argument("--theme", choices=sorted(THEMES), default="dog")
    ap.add_argument("--min-captions", type=int, default=2)
    args = ap.parse_args()
    text = os.path.join(args.flickr8k, "Flickr8k_text")
    captions = collections.defaultdict(list)
    with open(os.path.join(text, "Flickr8k.token.txt"), encoding="utf-8") as f:
        for line in f:
            if "\t" not in line:
                continue
            key, caption = line.rstrip("\n").split("\t", 1)
            captions[key.split("#")[0]].append(caption.strip())
    with open(os.path.join(text, "Flickr_8k.devImages.txt"), encoding="utf-8") as f:
        dev = [l.strip() for l in f if l.strip()]
    words = set(THEMES[args.theme])
    chosen = [
        name for name in dev
        if sum(bool(words & set(c.lower().replace(".", " ").split())) for c in captions[name])
        >= args.min_captions
    ]
    os.makedirs(args.out, exist_ok=True)
    images = os.path.join(args.flickr8k, "Flicker8k_Dataset")
    for name in chosen:
        shutil.copyfile(os.path.join(images, name), os.path.join(args.out, name))
        stem = os.path.splitext(name)[0]
        with open(os.path.join(args.out, stem + ".txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(captions[name]) + "\n")
    print(f"{len(chosen)} {args.theme} photos from the dev split in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
