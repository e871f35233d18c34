#!/usr/bin/env python3
"""Write the 1000 ImageNet-1k class names, one per line, in class-index order.

Each line is the class's WordNet lemma list, e.g. "tricycle, trike, velocipede" or
"Shetland sheepdog, Shetland sheep dog, Shetland" (the same labels as the PyTorch
reference in shared/reference/efficientnet-lite0-dev-reference.json). A short display
name is the text before the first comma (note: two classes are then both "crane",
134 the bird and 517 the machine).

Source: the PyPI package timm (pure-Python wheel), files
    timm/data/_info/imagenet_synsets.txt        1000 WordNet ids in class-index order
    timm/data/_info/imagenet_synset_to_lemma.txt  "nXXXXXXXX<TAB>lemma, lemma, ..."
The wheel is fetched with `pip download --no-deps` into a temporary directory and read
as a zip: nothing is imported or executed, torch is not needed. Standard library only.

Usage:
    python3 tools/imagenet_classes.py --out models/imagenet_classes.txt
    python3 tools/imagenet_classes.py --wheel path/to/timm-*.whl --out x.txt
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

DEFAULT_SPEC = "timm==1.0.31"
SYNSETS = "timm/data/_info/imagenet_synsets.txt"
LEMMAS = "timm/data/_info/imagenet_synset_to_lemma.txt"


def read_classes(wheel: str) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        synsets = z.read(SYNSETS).decode("utf-8").split()
        lemma_text = z.read(LEMMAS).decode("utf-8")
    lemmas = {}
    for line in lemma_text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("\t")
        if not sep:
            raise ValueError(f"malformed line in {LEMMAS}: {line!r}")
        lemmas[key.strip()] = value.strip()
    missing = [s for s in synsets if s not in lemmas]
    if missing:
        raise ValueError(f"no lemma for synsets {missing[:5]}")
    return [lemmas[s] for s in synsets]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output text file")
    ap.add_argument("--spec", default=DEFAULT_SPEC,
                    help=f"pip requirement to download (default {DEFAULT_SPEC})")
    ap.add_argument("--wheel", help="use this timm wheel instead of downloading")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="timm-") as tmp:
        wheel = args.wheel
        if not wheel:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                            "-d", tmp, args.spec], check=True)
            wheels = glob.glob(os.path.join(tmp, "*.whl"))
            if len(wheels) != 1:
                raise RuntimeError(f"expected one wheel, found {wheels}")
            wheel = wheels[0]
        classes = read_classes(wheel)
        wheel_name = os.path.basename(wheel)

    if len(classes) != 1000:
        raise ValueError(f"expected 1000 classes, got {len(classes)}")
    if any("\n" in c or not c for c in classes):
        raise ValueError("a class name is empty or contains a newline")
    data = "".join(c + "\n" for c in classes).encode("utf-8")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(data)
    print(f"wrote {len(classes)} classes from {wheel_name} to {args.out} "
          f"(sha256 {hashlib.sha256(data).hexdigest()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
