#!/usr/bin/env python3
"""Benchmark PyTorch training speed of captioner's soft-attention decoder on Flickr8k.

One epoch over the train split (6,000 images x 5 captions) from 7x7x1280 feature maps, on
CPU with a fixed number of threads. The PyTorch counterpart of `captioner bench train
--decoder attention`; conventions (tokens, vocabulary, batching, JSON fields) follow
tools/bench_torch_decoder.py.

Model (captioner's `--decoder attention`, src/decoder/mod.rs AttentionConfig, layer for layer;
Show, Attend and Tell soft attention as in sgrvinod's PyTorch tutorial), F=1280, P=49 cells,
E=256, H=512, A=256:
    a = feature map [P, F];  h0 = init_h(mean a), c0 = init_c(mean a)   (Linear, no tanh)
    each step, with the previous state h:
        e_i   = att_full(tanh(att_enc(a_i) + att_dec(h)))                (att_enc once a batch)
        alpha = softmax(e) over the P cells
        z     = sigmoid(f_beta(h)) * sum_i alpha_i a_i
        h, c  = LSTMCell([Dropout(embed(word)), z], (h, c))             (input E + F)
        logits = output(Dropout(h))
Training: teacher forcing (input <start> w1..wn, target w1..wn <end>); captions sorted by
length, time loop over decreasing batch sizes (step t computes only the captions still
running, so the output rows are in PackedSequence order and padding never reaches any
layer); loss = mean token cross-entropy + ATTENTION_REG (1.0) * mean over captions and cells
of (1 - sum_t alpha_ti)^2; Adam lr 4e-4 (captioner's `train --decoder attention` default),
gradient-norm clip 5, batch 64 captions, shuffled each epoch. Initialisation as captioner's
DecoderConfig::init_values (Glorot-uniform kernels, uniform(+-1/sqrt(H)) recurrent kernel,
uniform(+-0.05) embeddings, zero biases except the LSTM forget gate's bias_ih = 1), drawn
from torch's generator.

Tokenisation and vocabulary: as tools/bench_torch_decoder.py (lowercase, ASCII punctuation
stripped, tokens with digits dropped; words with count >= --min-count after <pad>, <start>,
<end>, <unk>).

Features: random normal [6000, 49, 1280] float32 (seeded; only the rows a run trains on are
drawn) unless --features-cache DIR is given: captioner's feature cache (the encoder's folder
`.../captioner/cache/features/<encoder id>`, or the cache folder above it when it holds one
encoder), where each photo's map is `spatial/<hash[:2]>/<sha256 of the JPEG>.safetensors`,
tensor `spatial` [7, 7, 1280] float16 (read as float32, as captioner trains).

--init-from FILE loads a captioner attention model's weights.safetensors (names as ours, the
LSTM's `_l0` suffix dropped) instead of the fresh initialisation and reports, before training,
the model's teacher-forced cross-entropy without dropout on the batches to be trained: with
real features and models/default/weights.safetensors it checks that this network is ours.

Prints one JSON line. With --max-batches N the epoch is cut short and the full epoch's time
is extrapolated (fields `extrapolated_*`, from the mean time per batch and per target token).

Usage:
    python tools/bench_torch_attention.py [--flickr DIR] [--threads 2] [--epochs 1]
        [--batch 64] [--max-batches N] [--min-count 5] [--features-cache DIR]
        [--init-from FILE] [--compare-weights FILE]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import string
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as fn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

PAD, START, END, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<start>", "<end>", "<unk>"]
PUNCT = str.maketrans("", "", string.punctuation)
ATTENTION_REG = 1.0  # src/decoder/mod.rs
LR = 4e-4  # TrainSettings::for_decoder (src/jobs/train.rs): the default --lr of `train --decoder attention`
ROWS, COLS, FEAT, EMBED, HIDDEN, ATT, DROPOUT = 7, 7, 1280, 256, 512, 256, 0.5


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


def cache_dir(path: str) -> str:
    """The encoder's folder of a captioner feature cache (the one holding `spatial/`)."""
    if os.path.isdir(os.path.join(path, "spatial")):
        return path
    for base in (path, os.path.join(path, "features")):
        if os.path.isdir(base):
            subs = [d for d in sorted(os.listdir(base))
                    if os.path.isdir(os.path.join(base, d, "spatial"))]
            if len(subs) == 1:
                return os.path.join(base, subs[0])
            if len(subs) > 1:
                raise ValueError(f"{base} holds several encoders' caches ({', '.join(subs)}): "
                                 "pass one of them")
    raise ValueError(f"{path}: no feature maps (spatial/) of a captioner feature cache")


def load_cached_maps(cache: str, flickr: str, names: list[str], rows: list[int],
                     out: torch.Tensor) -> None:
    """Fills out[row] with the cached [P, F] map of names[row] for every row in rows."""
    from safetensors import safe_open

    images = os.path.join(flickr, "Flicker8k_Dataset")
    missing = []
    for row in rows:
        with open(os.path.join(images, names[row]), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        entry = os.path.join(cache, "spatial", digest[:2], digest + ".safetensors")
        if not os.path.isfile(entry):
            missing.append(names[row])
            continue
        with safe_open(entry, "pt") as st:
            t = st.get_tensor("spatial")
        if tuple(t.shape) != (ROWS, COLS, FEAT):
            raise ValueError(f"{entry}: feature map {tuple(t.shape)}, expected {(ROWS, COLS, FEAT)}")
        out[row] = t.float().reshape(ROWS * COLS, FEAT)
    if missing:
        raise ValueError(f"{cache}: no cached feature map for {len(missing)} images, e.g. "
                         f"{missing[:3]} (run `captioner features --spatial DIR` first)")


class AttentionDecoder(nn.Module):
    """captioner's attention decoder; parameter names as ours (LSTM: `lstm.weight_ih`)."""

    def __init__(self, vocab: int):
        super().__init__()
        self.init_h = nn.Linear(FEAT, HIDDEN)
        self.init_c = nn.Linear(FEAT, HIDDEN)
        self.att_enc = nn.Linear(FEAT, ATT)
        self.att_dec = nn.Linear(HIDDEN, ATT)
        self.att_full = nn.Linear(ATT, 1)
        self.f_beta = nn.Linear(HIDDEN, FEAT)
        self.embed = nn.Embedding(vocab, EMBED)
        self.lstm = nn.LSTMCell(EMBED + FEAT, HIDDEN)
        self.output = nn.Linear(HIDDEN, vocab)
        self.drop = nn.Dropout(DROPOUT)

    @torch.no_grad()
    def init_like_captioner(self, gen: torch.Generator) -> None:
        """DecoderConfig::init_values' distributions (not its random stream)."""
        for name, p in self.named_parameters():
            if name == "embed.weight":
                p.uniform_(-0.05, 0.05, generator=gen)
            elif name == "lstm.weight_hh":
                bound = 1.0 / HIDDEN ** 0.5
                p.uniform_(-bound, bound, generator=gen)
            elif p.dim() == 2:
                bound = (6.0 / (p.shape[0] + p.shape[1])) ** 0.5
                p.uniform_(-bound, bound, generator=gen)
            else:
                p.zero_()
        self.lstm.bias_ih[HIDDEN:2 * HIDDEN].fill_(1.0)

    def forward(self, enc: torch.Tensor, inputs: torch.Tensor, batch_sizes: list[int]):
        """enc [B, P, F] and inputs [B, T] (padded) sorted by caption length, longest first;
        batch_sizes[t] = captions still running at step t. Returns the logits of every real
        position in packed (time-major) order [sum(batch_sizes), V] and the attention
        weights in the same order [sum(batch_sizes), P]."""
        mean = enc.mean(1)
        h, c = self.init_h(mean), self.init_c(mean)
        att1 = self.att_enc(enc)  # [B, P, A], once a batch
        emb = self.drop(self.embed(inputs))  # [B, T, E]
        hs, alphas = [], []
        for t, n in enumerate(batch_sizes):
            h, c = h[:n], c[:n]
            att2 = self.att_dec(h).unsqueeze(1)  # [n, 1, A]
            e = self.att_full(torch.tanh(att1[:n] + att2)).squeeze(2)  # [n, P]
            alpha = torch.softmax(e, dim=1)
            ctx = torch.bmm(alpha.unsqueeze(1), enc[:n]).squeeze(1)  # [n, F]
            z = torch.sigmoid(self.f_beta(h)) * ctx
            h, c = self.lstm(torch.cat([emb[:n, t], z], dim=1), (h, c))
            hs.append(h)
            alphas.append(alpha)
        logits = self.output(self.drop(torch.cat(hs)))
        return logits, torch.cat(alphas)


def captioner_tensors(path: str) -> dict[str, torch.Tensor]:
    """A captioner weights.safetensors with our module's names (`lstm.*_l0` -> `lstm.*`)."""
    from safetensors.torch import load_file

    return {(k[:-3] if k.startswith("lstm.") and k.endswith("_l0") else k): v
            for k, v in load_file(path).items()}


def make_batch(samples, idx, feats):
    batch = sorted((samples[i] for i in idx), key=lambda x: -len(x[1]))
    rows = torch.tensor([r for r, _ in batch])
    seqs = [torch.tensor(t) for _, t in batch]
    lengths = torch.tensor([len(t) - 1 for t in seqs])
    inputs = pad_sequence([t[:-1] for t in seqs], batch_first=True, padding_value=PAD)
    targets = pad_sequence([t[1:] for t in seqs], batch_first=True, padding_value=PAD)
    packed = pack_padded_sequence(targets, lengths, batch_first=True, enforce_sorted=True)
    batch_sizes = packed.batch_sizes.tolist()
    # caption (row of the sorted batch) of every packed position: 0..n_t-1 at each step
    caption_of = torch.cat([torch.arange(n) for n in batch_sizes])
    return feats[rows], inputs, packed.data, batch_sizes, caption_of


def objective(model, enc, inputs, targets, batch_sizes, caption_of):
    logits, alphas = model(enc, inputs, batch_sizes)
    ce = fn.cross_entropy(logits, targets)
    alpha_sum = torch.zeros(enc.shape[0], enc.shape[1]).index_add(0, caption_of, alphas)
    reg = ATTENTION_REG * ((1.0 - alpha_sum) ** 2).mean()
    return ce, reg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flickr", default="../shared/flickr8k", help="Flickr8k root")
    ap.add_argument("--features-cache", help="captioner feature cache with the spatial maps "
                    "(default: random normal features)")
    ap.add_argument("--init-from", help="start from a captioner attention weights.safetensors")
    ap.add_argument("--compare-weights", default="models/default/weights.safetensors",
                    help="captioner weights whose names, shapes and parameter count are "
                    "compared with this model's (skipped when the file is absent)")
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-batches", "--max-steps", dest="max_batches", type=int, default=0,
                    help="stop each epoch after this many batches (0 = full epoch); the "
                    "full epoch's time is then extrapolated")
    args = ap.parse_args()
    if args.batch < 1 or args.epochs < 1 or args.threads < 1 or args.max_batches < 0:
        ap.error("--batch, --epochs and --threads must be >= 1, --max-batches >= 0")

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

    # Every epoch's batches, drawn up front, so that only the images trained on are loaded.
    plans = []
    for _ in range(args.epochs):
        order = list(range(len(samples)))
        rng.shuffle(order)
        starts = list(range(0, len(order), args.batch))
        steps_full = len(starts)
        if args.max_batches:
            starts = starts[: args.max_batches]
        plans.append([order[s:s + args.batch] for s in starts])
    used = sorted({samples[i][0] for plan in plans for idx in plan for i in idx})

    cells = ROWS * COLS
    feats = torch.empty(len(names), cells, FEAT)  # pages of unused rows are never touched
    t_feat = time.perf_counter()
    if args.features_cache:
        cache = cache_dir(args.features_cache)
        load_cached_maps(cache, args.flickr, names, used, feats)
        feat_source = f"captioner cache {cache} (float16 -> float32)"
    else:
        gen = torch.Generator().manual_seed(args.seed)
        feats[used] = torch.randn(len(used), cells, FEAT, generator=gen)
        feat_source = "random"
    feat_load_s = time.perf_counter() - t_feat

    model = AttentionDecoder(len(vocab))
    model.init_like_captioner(torch.Generator().manual_seed(args.seed))
    n_params = sum(p.numel() for p in model.parameters())

    compare = None
    if args.compare_weights and os.path.isfile(args.compare_weights):
        ours = captioner_tensors(args.compare_weights)
        mine = {k: tuple(p.shape) for k, p in model.named_parameters()}
        theirs = {k: tuple(v.shape) for k, v in ours.items()}
        compare = {
            "file": args.compare_weights,
            "captioner_parameters": sum(v.numel() for v in ours.values()),
            "same_names_and_shapes": mine == theirs,
            "differences": sorted(k for k in set(mine) | set(theirs)
                                  if mine.get(k) != theirs.get(k)),
        }

    init_eval = None
    if args.init_from:
        model.load_state_dict(captioner_tensors(args.init_from), strict=True)
        model.eval()
        ce_sum, tok = 0.0, 0
        reg_sum = 0.0
        with torch.no_grad():
            for idx in plans[0]:
                enc, inputs, targets, bs, cap = make_batch(samples, idx, feats)
                ce, reg = objective(model, enc, inputs, targets, bs, cap)
                ce_sum += ce.item() * targets.numel()
                reg_sum += reg.item()
                tok += targets.numel()
        init_eval = {"file": args.init_from, "batches": len(plans[0]),
                     "eval_ce": round(ce_sum / tok, 4),
                     "eval_attention_reg": round(reg_sum / len(plans[0]), 4)}

    opt = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()

    step_ms: list[float] = []
    step_tokens: list[int] = []
    epoch_s: list[float] = []
    epoch_cpu_s: list[float] = []
    epoch_loss: list[float] = []
    epoch_reg: list[float] = []
    for plan in plans:
        t_epoch, c_epoch = time.perf_counter(), time.process_time()
        loss_sum, tok_sum, reg_sum = 0.0, 0, 0.0
        for idx in plan:
            t0 = time.perf_counter()
            enc, inputs, targets, batch_sizes, caption_of = make_batch(samples, idx, feats)
            ce, reg = objective(model, enc, inputs, targets, batch_sizes, caption_of)
            loss = ce + reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            step_ms.append(1000 * (time.perf_counter() - t0))
            step_tokens.append(targets.numel())
            loss_sum += ce.item() * targets.numel()
            tok_sum += targets.numel()
            reg_sum += reg.item()
        epoch_s.append(time.perf_counter() - t_epoch)
        epoch_cpu_s.append(time.process_time() - c_epoch)
        epoch_loss.append(loss_sum / tok_sum)
        epoch_reg.append(reg_sum / len(plan))

    steps = len(step_ms) // args.epochs
    out = {
        "bench": "torch_decoder_attention_train",
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
        "feature_images_loaded": len(used),
        "feature_load_s": round(feat_load_s, 2),
        "grid": [ROWS, COLS],
        "feature_dim": FEAT,
        "embed_dim": EMBED,
        "hidden_dim": HIDDEN,
        "attention_dim": ATT,
        "attention_reg": ATTENTION_REG,
        "lr": LR,
        "parameters": n_params,
        "compare_weights": compare,
        "init_from": init_eval,
        "batch": args.batch,
        "steps_per_epoch": steps_full,
        "steps_run_per_epoch": steps,
        "epoch_s": [round(t, 2) for t in epoch_s],
        "epoch_cpu_s": [round(t, 2) for t in epoch_cpu_s],
        "first50_ms_per_step": round(float(np.mean(step_ms[:50])), 2),
        "mean_ms_per_step": round(float(np.mean(step_ms)), 2),
        "median_ms_per_step": round(float(np.median(step_ms)), 2),
        "epoch_mean_loss": [round(x, 4) for x in epoch_loss],
        "epoch_mean_attention_reg": [round(x, 4) for x in epoch_reg],
    }
    if steps < steps_full:
        # A cut epoch: its time scaled to the whole epoch, by batches and by target tokens.
        ms_per_token = sum(step_ms) / sum(step_tokens)
        out["extrapolated_epoch_s_by_steps"] = round(float(np.mean(step_ms)) * steps_full / 1000, 1)
        out["extrapolated_epoch_s_by_tokens"] = round(ms_per_token * n_tokens / 1000, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
