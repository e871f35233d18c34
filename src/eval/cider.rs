//! CIDEr-D, as pycocoevalcap's `Cider` class (`cider/cider_scorer.py`), which despite its
//! name is CIDEr-D: it clips the hypothesis weights by the reference weights and applies
//! the Gaussian length penalty.
//!
//! With N images in the evaluation set:
//!
//! - document frequency `df(g)` = number of images whose references (any of them) contain
//!   n-gram `g`; it is computed over the set being evaluated, so a corpus score depends on
//!   the whole set and is not a mean of independently computed image scores;
//! - each sentence becomes, for n = 1..4, a vector of `tf(g) * (ln N - ln max(1, df(g)))`;
//! - for the hypothesis h and each reference r of an image, for each n:
//!   `sim_n = sum_g min(h_g, r_g) * r_g / (|h| |r|)` (no division if a norm is 0),
//!   multiplied by `exp(-delta^2 / (2 * 6^2))`, where `delta` is the difference of the
//!   sentences' *bigram* counts (the reference code counts `length` when `n == 1`, i.e.
//!   for 2-grams; we do the same, though it never changes a score: for non-empty
//!   sentences it equals the word-count difference, and an empty sentence has no n-grams,
//!   so its similarity is 0 whatever the penalty);
//! - image score = 10 * mean over n of (sum over references of sim_n) / number of references;
//! - corpus score = mean of the image scores.
//!
//! With a single image, `ln N = 0` makes every weight 0, so CIDEr-D is 0 whatever the
//! captions: that is the reference behaviour.

use std::collections::{HashMap, HashSet};

use super::NgramCounts;

/// The highest n-gram order of CIDEr-D.
pub const CIDER_N: usize = 4;
/// Standard deviation of the Gaussian length penalty.
pub const CIDER_SIGMA: f64 = 6.0;

/// Corpus CIDEr-D and the per-image scores that pycocoevalcap returns alongside it.
#[derive(Debug, Clone, PartialEq)]
pub struct CiderScores {
    /// Mean of `per_image` (0 for an empty set).
    pub corpus: f64,
    /// CIDEr-D of each image (computed with the document frequencies of the whole set).
    pub per_image: Vec<f64>,
}

/// Tf-idf vectors of one sentence, per n-gram order (Python's `counts2vec`).
struct TfIdf<'a> {
    /// For each order, the n-grams with their weights, in Python dict order.
    vec: [Vec<(&'a [String], f64)>; CIDER_N],
    /// All weights, for look-up by n-gram.
    lookup: HashMap<&'a [String], f64>,
    /// Euclidean norm of each order's vector.
    norm: [f64; CIDER_N],
    /// Number of bigrams, the reference code's "length".
    length: usize,
}

impl<'a> TfIdf<'a> {
    fn new(counts: &NgramCounts<'a>, df: &HashMap<&[String], f64>, ref_len: f64) -> Self {
        let mut vec: [Vec<(&'a [String], f64)>; CIDER_N] = Default::default();
        let mut lookup = HashMap::new();
        let mut norm = [0.0_f64; CIDER_N];
        let mut length = 0usize;
        for (gram, term_freq) in counts.iter() {
            let doc_freq = df.get(gram).copied().unwrap_or(0.0);
            let idf = ref_len - doc_freq.max(1.0).ln();
            let n = gram.len() - 1;
            let weight = term_freq as f64 * idf;
            vec[n].push((gram, weight));
            lookup.insert(gram, weight);
            norm[n] += weight * weight;
            if n == 1 {
                length += term_freq;
            }
        }
        for x in &mut norm {
            *x = x.sqrt();
        }
        Self {
            vec,
            lookup,
            norm,
            length,
        }
    }
}

/// Clipped cosine similarity per order with the length penalty (Python's `sim`).
fn sim(hyp: &TfIdf<'_>, reference: &TfIdf<'_>, sigma: f64) -> [f64; CIDER_N] {
    let delta = hyp.length as f64 - reference.length as f64;
    let penalty = std::f64::consts::E.powf(-(delta * delta) / (2.0 * (sigma * sigma)));
    let mut val = [0.0_f64; CIDER_N];
    for (n, v) in val.iter_mut().enumerate() {
        for &(gram, h) in &hyp.vec[n] {
            let r = reference.lookup.get(gram).copied().unwrap_or(0.0);
            *v += h.min(r) * r;
        }
        if hyp.norm[n] != 0.0 && reference.norm[n] != 0.0 {
            *v /= hyp.norm[n] * reference.norm[n];
        }
        *v *= penalty;
    }
    val
}

/// Corpus CIDEr-D and per-image CIDEr-D of tokenised hypotheses against tokenised
/// references (`hyps[i]` against `refs[i]`), with document frequencies taken over these
/// references. See the module docs of `eval` for degenerate inputs.
pub fn cider_d_scores(hyps: &[Vec<String>], refs: &[Vec<Vec<String>>]) -> CiderScores {
    let images = hyps.len().min(refs.len());
    let (hyps, refs) = (&hyps[..images], &refs[..images]);

    let cooked_refs: Vec<Vec<NgramCounts<'_>>> = refs
        .iter()
        .map(|rs| rs.iter().map(|r| NgramCounts::new(r, CIDER_N)).collect())
        .collect();

    // Document frequency: in how many images' reference sets each n-gram occurs.
    let mut df: HashMap<&[String], f64> = HashMap::new();
    for image_refs in &cooked_refs {
        let mut seen = HashSet::new();
        for r in image_refs {
            for (gram, _) in r.iter() {
                if seen.insert(gram) {
                    *df.entry(gram).or_insert(0.0) += 1.0;
                }
            }
        }
    }
    if df.is_empty() {
        // No reference has a word (or there are no images): Python raises here.
        return CiderScores {
            corpus: 0.0,
            per_image: vec![0.0; images],
        };
    }

    let ref_len = (images as f64).ln();
    let mut per_image = Vec::with_capacity(images);
    for (hyp, image_refs) in hyps.iter().zip(&cooked_refs) {
        if image_refs.is_empty() {
            per_image.push(0.0);
            continue;
        }
        let hyp_counts = NgramCounts::new(hyp, CIDER_N);
        let hyp_vec = TfIdf::new(&hyp_counts, &df, ref_len);
        let mut score = [0.0_f64; CIDER_N];
        for r in image_refs {
            let ref_vec = TfIdf::new(r, &df, ref_len);
            for (s, v) in score.iter_mut().zip(sim(&hyp_vec, &ref_vec, CIDER_SIGMA)) {
                *s += v;
            }
        }
        let mut score_avg = score.iter().sum::<f64>() / CIDER_N as f64;
        score_avg /= image_refs.len() as f64;
        score_avg *= 10.0;
        per_image.push(score_avg);
    }

    let corpus = per_image.iter().sum::<f64>() / images as f64;
    CiderScores { corpus, per_image }
}

/// Corpus CIDEr-D (pycocoevalcap `Cider`, n = 4, sigma = 6) of tokenised hypotheses
/// against tokenised references. An empty set gives `0.0`.
pub fn cider_d(hyps: &[Vec<String>], refs: &[Vec<Vec<String>>]) -> f64 {
    cider_d_scores(hyps, refs).corpus
}
