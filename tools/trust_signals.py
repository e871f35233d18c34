#!/usr/bin/env python3
"""Tries other forms of the calibrated confidence on the signals `captioner calibrate` measured.

Input: the CSV written by
    captioner calibrate DATASET --model DIR --unfamiliar tests/fixtures/unfamiliar \
        --dry-run --signals signals.csv
(one row per dev photo and per extra photo: its signals, per-photo CIDEr-D and whether that is
acceptable, >= 0.1).

Each variant is a logistic regression (standardised inputs, L2 penalty, Newton's method, as
src/trust/calibration.rs) fitted on the dev rows only. Printed per variant:
  dev-cv  AUROC on dev, each photo scored by the fit on the other nine tenths (10 folds)
  mix     AUROC over dev (those cross-validated scores) + the extra photos (scored by the fit
          on all of dev: held out)
  extra   AUROC over the extra photos alone (few photos: a rough figure)

Usage: python3 tools/trust_signals.py signals.csv     (needs numpy)
"""
import csv
import sys

import numpy as np

PERSON = {"man", "woman", "men", "women", "girl", "boy", "girls", "boys", "people", "person",
          "child", "children", "kid", "kids", "lady", "player", "guy"}


def auroc(score, good):
    score, good = np.asarray(score, float), np.asarray(good, bool)
    order = np.argsort(score, kind="mergesort")
    s, g = score[order], good[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        ranks[i:j] = (i + j + 1) / 2
        i = j
    pos = g.sum()
    neg = len(g) - pos
    return (ranks[g].sum() - pos * (pos + 1) / 2) / (pos * neg)


def fit(x, y, l2=1.0):
    m, s = x.mean(0), x.std(0) + 1e-6
    z = np.hstack([(x - m) / s, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = np.eye(len(w)) * l2
    reg[-1, -1] = 0
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ w))
        step = np.linalg.solve((z * (p * (1 - p))[:, None]).T @ z + reg, z.T @ (p - y) + reg @ w)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return lambda xn: 1 / (1 + np.exp(-(np.hstack([(xn - m) / s, np.ones((len(xn), 1))]) @ w)))


def main(path):
    reader = csv.DictReader(open(path))
    # The signal columns: those between `acceptable` and `caption`.
    head = reader.fieldnames
    signals = head[head.index("acceptable") + 1:head.index("caption")]
    rows = list(reader)
    x0 = np.array([[float(r[k]) for k in signals] for r in rows])
    y = np.array([r["acceptable"] == "true" for r in rows])
    dev = np.array([r["set"] == "dev" for r in rows])
    words = [r["caption"].split() for r in rows]
    print(f"{dev.sum()} dev photos ({y[dev].sum()} acceptable), "
          f"{(~dev).sum()} extra photos ({y[~dev].sum()} acceptable)")
    for j, k in enumerate(signals):
        print(f"  {k:20s} alone: AUROC dev {auroc(x0[dev, j], y[dev]):.3f}")
    col = {k: x0[:, j] for j, k in enumerate(signals)}
    g, sim, na = col["log_word_geomean"], col["similarity"], col["neighbour_agreement"]
    ca, tc = col["class_agreement"], col["top_class"]
    length = np.array([len(w) for w in words], float)
    person = np.array([any(t in PERSON for t in w) for w in words], float)
    dog = np.array([any(t in ("dog", "dogs", "puppy") for t in w) for w in words], float)
    disagree = tc * (ca < 0.01)

    def hinge(x, ref, nb):
        cols = []
        for j in range(x.shape[1]):
            cols.append(x[:, j:j + 1])
            for q in np.quantile(ref[:, j], np.linspace(0, 1, nb + 1)[1:-1]):
                cols.append(np.maximum(x[:, j:j + 1] - q, 0))
        return np.hstack(cols)

    variants = [
        ("the signals (shipped), L2 1", x0, 1.0),
        ("the signals, L2 30", x0, 30.0),
        ("+ interactions (word prob x familiarity, ...)", np.column_stack(
            [x0, g * sim, na * sim, g * na]), 1.0),
        ("+ squares and log neighbour agreement", np.column_stack(
            [x0, sim ** 2, na ** 2, g ** 2, np.log(na + 0.01)]), 1.0),
        ("+ caption length, names a person, names a dog", np.column_stack(
            [x0, length, person, dog]), 1.0),
        ("+ class disagreement (top class, none named)", np.column_stack([x0, disagree]), 1.0),
        ("hinge features (3 knots per signal), L2 30", hinge(x0, x0[dev], 3), 30.0),
    ]
    print(f"{'variant':48s} dev-cv   mix   extra")
    for name, x, l2 in variants:
        xd, yd, n = x[dev], y[dev], dev.sum()
        cv = np.zeros(n)
        for k in range(10):
            test = np.arange(n) % 10 == k
            cv[test] = fit(xd[~test], yd[~test], l2)(xd[test])
        extra = fit(xd, yd, l2)(x[~dev])
        mix = auroc(np.concatenate([cv, extra]), np.concatenate([yd, y[~dev]]))
        print(f"{name:48s} {auroc(cv, yd):.3f}  {mix:.3f}  {auroc(extra, y[~dev]):.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
