#!/usr/bin/env python3
"""Make reference vectors for captioner's eval module (src/eval/).

Runs the reference COCO caption evaluation code, pycocoevalcap's Bleu(4) and Cider
(which is CIDEr-D: clipped, with the Gaussian length penalty), on a few dozen small
evaluation sets (hand-made edge cases plus seeded random ones) and writes inputs and
outputs to tests/fixtures/eval_vectors.json, which tests/eval_metrics.rs checks the
Rust implementation against.

The PTB tokenizer of pycocoevalcap needs Java, so it is not used: captions are tokenised
by `tokenize` below, the twin of src/eval/tokenize.rs, and the tokens joined by single
spaces are what the scorers see (they split on whitespace).

Usage (from the crate root):
    python3 -m venv venv && venv/bin/pip install pycocoevalcap==1.2
    venv/bin/python tools/make_eval_vectors.py [OUTPUT.json]
"""

import json
import random
import string
import sys
from pathlib import Path

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

# Same set as src/eval/tokenize.rs: string.punctuation plus a few non-ASCII quotes/dashes.
EXTRA_PUNCTUATION = "\u2018\u2019\u201a\u201c\u201d\u201e\u2013\u2014\u2026\u00ab\u00bb\u00a1\u00bf"
DELETE = str.maketrans("", "", string.punctuation + EXTRA_PUNCTUATION)


def tokenize(s):
    """Lowercase, delete punctuation characters, split on whitespace, keep every word."""
    return s.lower().translate(DELETE).split()


def score(hyps, refs):
    """Run pycocoevalcap on one evaluation set of raw captions."""
    hyp_tokens = [tokenize(h) for h in hyps]
    ref_tokens = [[tokenize(r) for r in rs] for rs in refs]
    res = {i: [" ".join(t)] for i, t in enumerate(hyp_tokens)}
    gts = {i: [" ".join(t) for t in rs] for i, rs in enumerate(ref_tokens)}
    bleu, bleu_lists = Bleu(4).compute_score(gts, res, verbose=0)
    cider, cider_list = Cider().compute_score(gts, res)
    return {
        "hyp_tokens": hyp_tokens,
        "ref_tokens": ref_tokens,
        "bleu": [float(b) for b in bleu],
        # bleu_lists is [order][image]; store [image][order].
        "bleu_per_sentence": [[float(bleu_lists[k][i]) for k in range(4)] for i in range(len(hyps))],
        "cider_d": float(cider),
        "cider_d_per_image": [float(c) for c in cider_list],
    }


def hand_cases():
    """Edge cases, each a (name, hyps, refs) evaluation set of at least two images
    (CIDEr-D is 0 for any single-image set, because ln(1) = 0)."""
    return [
        (
            "paper_example",
            ["The cat sat on the mat.", "A dog runs."],
            [["the cat is on the mat", "There is a cat on the mat!"], ["A dog runs on the grass."]],
        ),
        (
            "perfect_match",
            ["a man rides a horse", "two dogs play in the snow"],
            [["A man rides a horse."], ["Two dogs play in the snow ."]],
        ),
        (
            "too_short",
            ["a dog", "man"],
            [["a dog is running through the tall green grass"], ["a man is standing on a rock"]],
        ),
        (
            "repeated_words",
            ["the the the the the the", "dog dog dog", "a a a a"],
            [["the cat is on the mat", "the dog"], ["a dog and a dog"], ["a a"]],
        ),
        (
            "hyp_longer_than_refs",
            [
                "a little girl in a pink dress is climbing up the stairs of a wooden house in the park",
                "a black dog and a spotted dog are fighting on the road near a car",
            ],
            [["a girl climbs stairs", "little girl in pink"], ["two dogs fight", "a black dog and a spotted dog"]],
        ),
        (
            "refs_of_different_lengths_tie",
            # hypothesis of 4 words, references of 3 and 5 words: the tie goes to 3.
            ["dog runs on grass", "a boy jumps into the water"],
            [["dog runs fast", "a dog runs on grass"], ["boy jumps", "a young boy jumps into the blue water"]],
        ),
        (
            "refs_of_different_lengths",
            ["a man on a bike", "people at a market"],
            [
                ["man", "a man rides", "a man on a red bike", "a man in a helmet rides a bike down a hill"],
                ["crowd", "many people shop at an outdoor market", "people"],
            ],
        ),
        (
            "empty_hypothesis",
            ["", "a dog runs", "..."],
            [["a cat sleeps"], ["a dog runs in the park"], ["a bird flies"]],
        ),
        (
            "empty_reference_among_others",
            ["a cat", "a dog runs"],
            [["", "a cat sits"], ["a dog runs", "!"]],
        ),
        (
            "single_word_hypotheses",
            ["dog", "cat", "bird"],
            [["dog"], ["a cat"], ["the bird sings"]],
        ),
        (
            "punctuation_case_digits",
            ["Two   dogs\tplay; in 2 PARKS...", "A 4x4 truck -- on the road's edge", "Tri-colored dog's ball \u201cred\u201d"],
            [
                ["2 dogs play in the parks", "TWO DOGS, PLAYING!"],
                ["a 4x4 truck on the roads edge", "a truck"],
                ["a tricolored dogs ball", "the \u2018red\u2019 ball \u2014 a dog\u2019s"],
            ],
        ),
        (
            "no_overlap",
            ["zebra giraffe elephant", "blue sky"],
            [["a dog runs"], ["green grass grows"]],
        ),
        (
            "identical_hypotheses_across_images",
            ["a dog runs in the grass"] * 4,
            [
                ["a dog runs in the grass", "a brown dog runs"],
                ["a cat sleeps on a sofa"],
                ["a dog runs", "the dog is running in the grass", "dog in grass"],
                ["two men play football", "men playing a game"],
            ],
        ),
        (
            "five_refs_flickr_style",
            ["a child in a pink dress climbs stairs", "a black dog and a white dog fight"],
            [
                [
                    "A child in a pink dress is climbing up a set of stairs in an entry way .",
                    "A girl going into a wooden building .",
                    "A little girl climbing into a wooden playhouse .",
                    "A little girl climbing the stairs to her playhouse .",
                    "A little girl in a pink dress going into a wooden cabin .",
                ],
                [
                    "A black dog and a spotted dog are fighting",
                    "A black dog and a tri-colored dog playing with each other on the road .",
                    "A black dog and a white dog with brown spots are staring at each other in the street .",
                    "Two dogs of different breeds looking at each other on the road .",
                    "Two dogs on pavement moving toward each other .",
                ],
            ],
        ),
    ]


VOCAB = (
    "a a a the the man woman dog dogs girl boy child two in on with of is are "
    "running runs plays playing red blue black white water grass snow ball street"
).split()


def random_sentence(rng, lo, hi):
    return [rng.choice(VOCAB) for _ in range(rng.randint(lo, hi))]


def perturb(rng, words):
    out = list(words)
    for _ in range(rng.randint(0, 4)):
        op = rng.random()
        if op < 0.4 and out:
            out[rng.randrange(len(out))] = rng.choice(VOCAB)
        elif op < 0.7 and out:
            del out[rng.randrange(len(out))]
        else:
            out.insert(rng.randint(0, len(out)), rng.choice(VOCAB))
    return out


def decorate(rng, words):
    """Turn tokens back into a raw caption with some case and punctuation noise."""
    if not words:
        return rng.choice(["", " ", ".", "!?"])
    s = " ".join(words)
    if rng.random() < 0.5:
        s = s[0].upper() + s[1:]
    if rng.random() < 0.5:
        s += rng.choice([" .", ".", "!", " ,"])
    if rng.random() < 0.2:
        s = s.replace(" ", "  ", 1)
    return s


def random_case(rng, images, max_refs):
    hyps, refs = [], []
    for _ in range(images):
        rs = [random_sentence(rng, 1 if rng.random() < 0.9 else 0, 12) for _ in range(rng.randint(1, max_refs))]
        kind = rng.random()
        if kind < 0.5:
            hyp = perturb(rng, rng.choice(rs))
        elif kind < 0.65:
            hyp = list(rng.choice(rs))
        elif kind < 0.75:
            hyp = [rng.choice(VOCAB)] * rng.randint(1, 6)
        elif kind < 0.8:
            hyp = []
        else:
            hyp = random_sentence(rng, 1, 16)
        hyps.append(decorate(rng, hyp))
        refs.append([decorate(rng, r) for r in rs])
    return hyps, refs


def main():
    here = Path(__file__).resolve().parent
    # The crate root: this folder, or its parent when run as tools/make_eval_vectors.py.
    root = here if (here / "Cargo.toml").exists() else here.parent
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "tests/fixtures/eval_vectors.json"
    rng = random.Random(20240607)
    cases = []
    for name, hyps, refs in hand_cases():
        cases.append({"name": name, "hyps": hyps, "refs": refs, **score(hyps, refs)})
    for i in range(24):
        images = rng.choice([2, 2, 3, 4, 5, 8, 13, 30])
        hyps, refs = random_case(rng, images, rng.choice([1, 3, 5]))
        cases.append({"name": f"random_{i:02}", "hyps": hyps, "refs": refs, **score(hyps, refs)})
    hyps, refs = random_case(rng, 300, 5)
    cases.append({"name": "random_large", "hyps": hyps, "refs": refs, **score(hyps, refs)})

    header = {
        "generator": "tools/make_eval_vectors.py",
        "reference": "pycocoevalcap 1.2: Bleu(4).compute_score (option 'closest'), Cider().compute_score",
    }
    # One case per line: compact, yet diffs stay readable.
    text = json.dumps(header)[:-1] + ', "cases": [\n' + ",\n".join(json.dumps(c) for c in cases) + "\n]}\n"
    json.loads(text)  # sanity check
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
