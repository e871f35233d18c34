//! Corpus BLEU-1..4, as pycocoevalcap's `Bleu(4)`, i.e. `BleuScorer.compute_score(option=
//! 'closest')` in `bleu/bleu_scorer.py`.
//!
//! For each image: the hypothesis n-gram counts are clipped by the maximum count of that
//! n-gram in any one reference; the number of guesses for order k is `max(0, len - k + 1)`;
//! the effective reference length is the reference length closest to the hypothesis
//! length, ties going to the shorter reference (Python's `min((abs(l - testlen), l))`).
//!
//! The corpus score sums correct counts, guesses, hypothesis lengths and reference lengths
//! over all images first (it is not a mean of sentence scores), then
//!
//! ```text
//! p_k    = (correct_k + 1e-15) / (guess_k + 1e-9)
//! BLEU-n = (p_1 * ... * p_n)^(1/n) * BP,
//! ratio  = (testlen + 1e-15) / (reflen + 1e-9),  BP = exp(1 - 1/ratio) if ratio < 1, else 1
//! ```
//!
//! Two consequences of those constants, kept on purpose because the reference has them:
//! a perfect match scores `1 - 1.7e-10`-ish rather than exactly 1 (ratio is a hair under 1),
//! and an order with no guesses at all (a 3-word hypothesis has no 4-grams) has
//! `p_k = 1e-15 / 1e-9 = 1e-6`, not 0 or 1.

use std::collections::HashMap;

use super::NgramCounts;

/// The highest n-gram order of BLEU (BLEU-1..BLEU-4).
pub const BLEU_N: usize = 4;

/// Added to the denominators (guesses, reference length) to avoid dividing by zero.
const SMALL: f64 = 1e-9;
/// Added to the numerators (correct n-grams, hypothesis length), "so that if guess is 0
/// still return 0" in the reference's words.
const TINY: f64 = 1e-15;

/// Corpus BLEU and the per-sentence BLEU list that pycocoevalcap returns alongside it.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScores {
    /// Corpus BLEU-1..4 (what papers report as BLEU).
    pub corpus: [f64; BLEU_N],
    /// BLEU-1..4 of each image on its own, same formula with that image's counts.
    pub per_sentence: Vec<[f64; BLEU_N]>,
}

/// What BLEU needs to know about one image (Python's `cook_test` result with the
/// effective reference length already chosen).
struct Cooked {
    testlen: usize,
    reflen: usize,
    guess: [usize; BLEU_N],
    correct: [usize; BLEU_N],
}

fn cook(hyp: &[String], refs: &[Vec<String>]) -> Cooked {
    let mut max_counts: HashMap<&[String], usize> = HashMap::new();
    for r in refs {
        for (gram, count) in NgramCounts::new(r, BLEU_N).iter() {
            let best = max_counts.entry(gram).or_insert(0);
            *best = (*best).max(count);
        }
    }

    let testlen = hyp.len();
    // Closest reference length; ties go to the shorter one. No references: 0.
    let reflen = refs
        .iter()
        .map(Vec::len)
        .min_by_key(|&l| (l.abs_diff(testlen), l))
        .unwrap_or(0);

    let mut guess = [0; BLEU_N];
    for (k, g) in guess.iter_mut().enumerate() {
        // Order k + 1 has max(0, testlen - (k + 1) + 1) n-grams.
        *g = testlen.saturating_sub(k);
    }

    let mut correct = [0; BLEU_N];
    for (gram, count) in NgramCounts::new(hyp, BLEU_N).iter() {
        let clip = max_counts.get(gram).copied().unwrap_or(0);
        correct[gram.len() - 1] += count.min(clip);
    }

    Cooked {
        testlen,
        reflen,
        guess,
        correct,
    }
}

/// BLEU-1..4 from summed counts, exactly the arithmetic of `compute_score`.
fn bleu_from_counts(
    correct: &[usize; BLEU_N],
    guess: &[usize; BLEU_N],
    testlen: usize,
    reflen: usize,
) -> [f64; BLEU_N] {
    let mut out = [0.0; BLEU_N];
    let mut product = 1.0_f64;
    for k in 0..BLEU_N {
        product *= (correct[k] as f64 + TINY) / (guess[k] as f64 + SMALL);
        out[k] = product.powf(1.0 / (k + 1) as f64);
    }
    let ratio = (testlen as f64 + TINY) / (reflen as f64 + SMALL);
    if ratio < 1.0 {
        let brevity_penalty = (1.0 - 1.0 / ratio).exp();
        for b in &mut out {
            *b *= brevity_penalty;
        }
    }
    out
}

/// Corpus BLEU-1..4 and per-sentence BLEU of tokenised hypotheses against tokenised
/// references (`hyps[i]` against `refs[i]`). See the module docs of `eval` for degenerate
/// inputs; an empty set gives `[0.0; 4]` and no sentences.
pub fn bleu_scores(hyps: &[Vec<String>], refs: &[Vec<Vec<String>>]) -> BleuScores {
    let mut total_correct = [0usize; BLEU_N];
    let mut total_guess = [0usize; BLEU_N];
    let mut total_testlen = 0usize;
    let mut total_reflen = 0usize;
    let mut per_sentence = Vec::with_capacity(hyps.len().min(refs.len()));

    for (hyp, image_refs) in hyps.iter().zip(refs) {
        let c = cook(hyp, image_refs);
        total_testlen += c.testlen;
        total_reflen += c.reflen;
        for k in 0..BLEU_N {
            total_correct[k] += c.correct[k];
            total_guess[k] += c.guess[k];
        }
        per_sentence.push(bleu_from_counts(&c.correct, &c.guess, c.testlen, c.reflen));
    }

    BleuScores {
        corpus: bleu_from_counts(&total_correct, &total_guess, total_testlen, total_reflen),
        per_sentence,
    }
}

/// Corpus BLEU-1..4 (pycocoevalcap `Bleu(4)`, option `closest`) of tokenised hypotheses
/// against tokenised references. An empty set gives `[0.0; 4]`.
pub fn corpus_bleu(hyps: &[Vec<String>], refs: &[Vec<Vec<String>>]) -> [f64; BLEU_N] {
    bleu_scores(hyps, refs).corpus
}
