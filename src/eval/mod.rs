//! Caption evaluation metrics: corpus BLEU-1..4 and CIDEr-D, and object hallucination
//! ([`chair`]: CHAIR-s, CHAIR-i).
//!
//! Both metrics reproduce the reference COCO caption evaluation code (`pycocoevalcap`,
//! `bleu/bleu_scorer.py` and `cider/cider_scorer.py`) operation for operation, so that
//! scores agree with it to floating-point rounding (checked against vectors it produced:
//! `tests/fixtures/eval_vectors.json`, made by `tools/make_eval_vectors.py`). The only
//! deliberate difference is tokenisation: instead of the Java PTB tokenizer we use
//! [`tokenize`] (lowercase, delete punctuation, split on whitespace).
//!
//! Inputs are parallel slices: `hyps[i]` is the one hypothesis for image `i` and
//! `refs[i]` its reference captions. Where the Python code would fail, these functions
//! return a defined value instead of panicking:
//!
//! - If the slices differ in length, only the first `min(hyps.len(), refs.len())` images
//!   are evaluated (like Python's `zip`; the Python wrappers assert equal key sets).
//! - An empty evaluation set gives BLEU `[0.0; 4]` (what the Python formula itself gives)
//!   and CIDEr-D `0.0` (Python's `np.mean([])` would be NaN).
//! - An image with no references (Python asserts against it) adds its hypothesis to the
//!   BLEU n-gram totals with nothing correct and a reference length of 0, and scores
//!   CIDEr-D `0.0` while still counting in the number of images.
//! - A hypothesis with no words is valid in Python too and is computed the same way
//!   (it scores 0 on both metrics).
//! - If no reference in the whole set has a word, Python's CIDEr-D raises (`max()` of an
//!   empty sequence); we return `0.0`.

mod bleu;
pub mod chair;
mod cider;
mod tokenize;

use std::collections::HashMap;

pub use bleu::{BLEU_N, BleuScores, bleu_scores, corpus_bleu};
pub use cider::{CIDER_N, CIDER_SIGMA, CiderScores, cider_d, cider_d_scores};
pub use tokenize::{is_eval_punctuation, tokenize};

/// Corpus-level scores of a set of hypotheses against their references.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// BLEU-1, BLEU-2, BLEU-3, BLEU-4 (0..=1), as pycocoevalcap's `Bleu(4)`.
    pub bleu: [f64; 4],
    /// CIDEr-D (0..=10), as pycocoevalcap's `Cider` (papers often print it ×100).
    pub cider_d: f64,
}

/// Tokenises raw hypotheses and references with [`tokenize`] and computes corpus BLEU-1..4
/// and CIDEr-D. `hyps[i]` is the caption generated for image `i`, `refs[i]` its
/// reference captions. See the module documentation for degenerate inputs.
pub fn evaluate(hyps: &[String], refs: &[Vec<String>]) -> Scores {
    let hyp_tokens: Vec<Vec<String>> = hyps.iter().map(|h| tokenize(h)).collect();
    let ref_tokens: Vec<Vec<Vec<String>>> = refs
        .iter()
        .map(|rs| rs.iter().map(|r| tokenize(r)).collect())
        .collect();
    Scores {
        bleu: corpus_bleu(&hyp_tokens, &ref_tokens),
        cider_d: cider_d(&hyp_tokens, &ref_tokens),
    }
}

/// The n-gram counts of one sentence for n = 1..=max_n, as Python's `precook`:
/// a count per distinct n-gram, and the distinct n-grams in the order a Python dict
/// would iterate them (all 1-grams by first occurrence, then all 2-grams, ...), so that
/// sums over n-grams are taken in the same order as the reference code.
pub(crate) struct NgramCounts<'a> {
    order: Vec<&'a [String]>,
    counts: HashMap<&'a [String], usize>,
}

impl<'a> NgramCounts<'a> {
    pub(crate) fn new(words: &'a [String], max_n: usize) -> Self {
        let mut order = Vec::new();
        let mut counts: HashMap<&'a [String], usize> = HashMap::new();
        for k in 1..=max_n {
            for gram in words.windows(k) {
                let count = counts.entry(gram).or_insert(0);
                if *count == 0 {
                    order.push(gram);
                }
                *count += 1;
            }
        }
        Self { order, counts }
    }

    /// How often `gram` occurs (0 if never).
    pub(crate) fn get(&self, gram: &[String]) -> usize {
        self.counts.get(gram).copied().unwrap_or(0)
    }

    /// Distinct n-grams with their counts, in Python dict order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'a [String], usize)> + '_ {
        self.order.iter().map(|&g| (g, self.get(g)))
    }
}
