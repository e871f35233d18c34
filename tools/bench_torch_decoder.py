#!/usr/bin/env python3
"""Benchmark PyTorch training speed of the "merge" captioning decoder on Flickr8k.

One epoch over the train split (6,000 images x 5 captions) from precomputed image
features, on CPU with a fixed number of threads.

Model (the tutorial's "merge" architecture):
    image feature (1280) -> Dropout(0.5) -> Linear(1280, 256) + ReLU          -> f
    words -> Embedding(V, 256) -> Dropout(0.5) -> LSTM(256, 256)               -> h_t
    f + h_t -> Linear(256, 256) + ReLU -> Linear(256, V)                       -> logits_t
Training: teacher forcing over whole captions (input <start> w1..wn, target w1..wn <end>),
cross-entropy on real tokens only, Adam lr 1e-3, gradient-norm clip 5, batch 64 captions
(shuffled each epoch); each batch is sorted by length, padded, run through the LSTM as a
PackedSequence, so padding positions never reach the output layers.

Tokenisation ("natural" cleaning): lowercase, strip ASCII punctuation, drop tokens that
contain a digit, keep one-letter words. Vocabulary: words with count >= --min-count
(default 5) in the train captions, most frequent first (ties alphabetical), after 4
specials <pad>=0, <start>=1, <end>=2, <unk>=3.

Features: random normal (seeded) of shape [6000, 1280] unless --features FILE.safetensors
is given: either one float32 tensor of shape [1280] per image, named by the image file name
("1000268201_693b08cb0e.jpg"), or a tensor "features" [N, 1280] with the N image names as
a JSON list in the header metadata key "names".

Prints one JSON line.

Usage:
    python tools/bench_torch_decoder.py [--flickr DIR] [--threads 2] [--min-count 5]
                                        [--features FILE] [--epochs 1]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import string
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

PAD, START, END, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<start>", "<end>", "<unk>"]
PUNCT = str.maketrans("", "", string.punctuation)


def clean(caption: str) -> list[str]:
    words = caption.lower().translate(PUNCT).split()
    return [w for w in words if not any(c.isdigit() for c in w)]


def load_captions(flickr: str) -> dict[str, list[list[str]]]:
    text = os.path.join(flickr, "Flickr8k_text")
    with open(os.path.join(text, "Flickr_8k.trainImages.txt")) as f:
        train = {line.strip() for line in f if line.strip()}
    caps: dict[str, list[list[str]]] = collections.defaultdict(list)
    with open(os.path.join(text, "Flickr8k.token.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            key, sep, cap = line.partition("\t")
            if not sep:
                continue
            image = key.split("#", 1)[0]
            if image in train:
                caps[image].append(clean(cap))
    return dict(sorted(caps.items()))


def build_vocab(caps: dict[str, list[list[str]]], min_count: int) -> list[str]:
    counts = collections.Counter(w for cs in caps.values() for c in cs for w in c)
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return SPECIALS + words


def load_features(path: str, names: list[str]) -> torch.Tensor:
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        keys = set(f.keys())
        if "features" in keys:
            meta = f.metadata() or {}
            if "names" not in meta:
                raise ValueError(f"{path}: tensor 'features' but no 'names' metadata")
            order = json.loads(meta["names"])
            table = f.get_tensor("features")
            index = {n: i for i, n in enumerate(order)}
            missing = [n for n in names if n not in index]
            if missing:
                raise ValueError(f"{path}: no features for {len(missing)} images, e.g. {missing[:3]}")
            return table[[index[n] for n in names]].float()
        missing = [n for n in names if n not in keys]
        if missing:
            raise ValueError(f"{path}: no features for {len(missing)} images, e.g. {missing[:3]}")
        return torch.stack([f.get_tensor(n).float().reshape(-1) for n in names])


class MergeDecoder(nn.Module):
    def __init__(self, vocab: int, feat_dim: int = 1280, hidden: int = 256):
        super().__init__()
        self.img = nn.Sequential(nn.Dropout(0.5), nn.Linear(feat_dim, hidden), nn.ReLU())
        self.embed = nn.Embedding(vocab, hidden, padding_idx=PAD)
        self.drop = nn.Dropout(0.5)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, vocab))

    def forward(self, feats: torch.Tensor, inputs: torch.Tensor, lengths: torch.Tensor):
        """feats [B, F]; inputs [B, T] padded, sorted by length desc; returns [N_real, V]."""
        f = self.img(feats)  # [B, H]
        e = self.drop(self.embed(inputs))  # [B, T, H]
        packed = pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=True)
        h, _ = self.lstm(packed)
        # the image vector for every packed (real) position, in the same packed order
        f_rep = pack_padded_sequence(f.unsqueeze(1).expand(-1, inputs.shape[1], -1), lengths,
                                     batch_first=True, enforce_sorted=True).data
        return self.out(h.data + f_rep)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flickr", default="/work/shared/flickr8k", help="Flickr8k root")
    ap.add_argument("--features", help="safetensors file with real features (default random)")
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=0,
                    help="stop each epoch after this many steps (smoke test; 0 = full epoch)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    caps = load_captions(args.flickr)
    names = list(caps)
    vocab = build_vocab(caps, args.min_count)
    index = {w: i for i, w in enumerate(vocab)}
    samples = []  # (image row, token ids incl. <start> ... <end>)
    for row, name in enumerate(names):
        for c in caps[name]:
            samples.append((row, [START] + [index.get(w, UNK) for w in c] + [END]))
    n_tokens = sum(len(s) - 1 for _, s in samples)
    unk = sum(t == UNK for _, s in samples for t in s)

    if args.features:
        feats = load_features(args.features, names)
        feat_source = args.features
    else:
        feats = torch.randn(len(names), 1280, generator=torch.Generator().manual_seed(args.seed))
        feat_source = "random normal"

    model = MergeDecoder(len(vocab), feats.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()

    step_ms: list[float] = []
    epoch_s: list[float] = []
    epoch_cpu_s: list[float] = []
    epoch_loss: list[float] = []
    for _ in range(args.epochs):
        order = list(range(len(samples)))
        rng.shuffle(order)
        t_epoch, c_epoch = time.perf_counter(), time.process_time()
        loss_sum, tok_sum = 0.0, 0
        starts = list(range(0, len(order), args.batch))
        if args.max_steps:
            starts = starts[: args.max_steps]
        for s in starts:
            t0 = time.perf_counter()
            batch = sorted((samples[i] for i in order[s:s + args.batch]), key=lambda x: -len(x[1]))
            rows = torch.tensor([r for r, _ in batch])
            seqs = [torch.tensor(t) for _, t in batch]
            lengths = torch.tensor([len(t) - 1 for t in seqs])
            inputs = pad_sequence([t[:-1] for t in seqs], batch_first=True, padding_value=PAD)
            targets = pad_sequence([t[1:] for t in seqs], batch_first=True, padding_value=PAD)
            targets = pack_padded_sequence(targets, lengths, batch_first=True, enforce_sorted=True).data

            logits = model(feats[rows], inputs, lengths)
            loss = loss_fn(logits, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            step_ms.append(1000 * (time.perf_counter() - t0))
            loss_sum += loss.item() * targets.numel()
            tok_sum += targets.numel()
        epoch_s.append(time.perf_counter() - t_epoch)
        epoch_cpu_s.append(time.process_time() - c_epoch)
        epoch_loss.append(loss_sum / tok_sum)

    steps = len(step_ms) // args.epochs
    print(json.dumps({
        "bench": "torch_decoder_merge_train",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "loadavg_1min_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "min_count": args.min_count,
        "vocab_size": len(vocab),
        "train_images": len(names),
        "train_captions": len(samples),
        "target_tokens_per_epoch": n_tokens,
        "unk_tokens": unk,
        "max_caption_tokens": max(len(s) for _, s in samples),
        "features": feat_source,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": args.batch,
        "steps_per_epoch": steps,
        "epoch_s": [round(t, 2) for t in epoch_s],
        "epoch_cpu_s": [round(t, 2) for t in epoch_cpu_s],
        "first50_ms_per_step": round(float(np.mean(step_ms[:50])), 2),
        "mean_ms_per_step": round(float(np.mean(step_ms)), 2),
        "median_ms_per_step": round(float(np.median(step_ms)), 2),
        "epoch_mean_loss": [round(x, 4) for x in epoch_loss],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
