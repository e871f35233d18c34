//! Training a [`ConceptDetector`]: the vocabulary (the K most frequent content words of the
//! training captions in their [`concept_word`] form), labels per photo from its captions, and
//! one L2-regularised logistic regression per word on the standardised pooled feature, fitted
//! together by mini-batch Adam (the matrix products through candle on the CPU), then measured
//! by average precision on dev.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::Serialize;

use super::{
    CONCEPT_VERSION, ConceptDetector, ConceptError, ConceptInfo, FEATURE_POOLED, concept_word,
};

/// Words left out of the vocabulary besides [`crate::dataset::text::STOP_WORDS`]: pronouns,
/// prepositions and other words that name nothing in a photo.
pub const EXTRA_STOP_WORDS: &[&str] = &[
    "he",
    "she",
    "they",
    "them",
    "him",
    "we",
    "you",
    "i",
    "onto",
    "around",
    "behind",
    "off",
    "across",
    "along",
    "top",
    "side",
    "very",
    "something",
    "someone",
    "being",
    "while",
    "four",
    "five",
    "several",
    "many",
    "few",
    "another",
    "others",
    "all",
    "both",
    "back",
    "away",
    "not",
    "just",
    "so",
    "but",
    "what",
    "which",
    "where",
    "like",
    "about",
    "after",
    "before",
    "than",
    "then",
    "can",
    "does",
    "doing",
    "looks",
    "looking",
    "get",
    "gets",
    "getting",
    "s",
    "'s",
    "towards",
    "toward",
    "against",
    "during",
    "beside",
    "between",
    "above",
    "below",
    "inside",
    "outside",
    "together",
    "other",
    "each",
    "only",
    "own",
    "also",
    "with",
    "without",
];

/// How a photo's captions become its label for a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Labels {
    /// 1 when at least one caption mentions the word, else 0.
    Any,
    /// The share of the photo's captions that mention the word.
    Soft,
}

/// Training settings.
#[derive(Clone, Debug, Serialize)]
pub struct ConceptOptions {
    /// Words kept (at most).
    pub words: usize,
    /// A word needs at least this many training photos whose captions mention it.
    pub min_photos: usize,
    pub labels: Labels,
    /// L2 penalty on the weights (per photo: the loss is the mean over photos).
    pub l2: f32,
    pub learning_rate: f32,
    pub epochs: usize,
    pub batch: usize,
    pub seed: u64,
}

impl Default for ConceptOptions {
    fn default() -> Self {
        ConceptOptions {
            words: 500,
            min_photos: 10,
            labels: Labels::Any,
            // Chosen on the Flickr8k dev split (default model's features, K = 500, mAP):
            // L2 1e-3 0.191, 1e-2 0.211, 3e-2 0.226, 0.1 0.231, 0.3 0.221 (30 epochs, Adam
            // 3e-3); soft labels 0.222 against 0.231 at L2 0.1; 15 epochs 0.230.
            l2: 0.1,
            learning_rate: 3e-3,
            epochs: 30,
            batch: 256,
            seed: 22,
        }
    }
}

/// A photo to train on or measure: its pooled feature and its captions as words.
pub struct Example<'a> {
    pub feature: &'a [f32],
    pub captions: Vec<Vec<String>>,
}

/// What training measured.
#[derive(Clone, Debug, Serialize)]
pub struct ConceptReport {
    pub words: usize,
    pub train_photos: usize,
    pub dev_photos: usize,
    pub dev_map: Option<f32>,
    /// Words with a positive dev photo, best AP first: (word, AP, dev photos mentioning it).
    pub ranked: Vec<(String, f32, usize)>,
    pub seconds: f64,
}

impl ConceptReport {
    /// The `n` best-detected words.
    pub fn best(&self, n: usize) -> &[(String, f32, usize)] {
        &self.ranked[..n.min(self.ranked.len())]
    }

    /// The `n` worst-detected words, worst first.
    pub fn worst(&self, n: usize) -> Vec<(String, f32, usize)> {
        self.ranked.iter().rev().take(n).cloned().collect()
    }
}

/// Whether a word can be a concept (not a stop word, has a letter).
fn is_content(word: &str) -> bool {
    !crate::dataset::text::STOP_WORDS.contains(&word)
        && !EXTRA_STOP_WORDS.contains(&word)
        && word.chars().any(|c| c.is_alphabetic())
}

/// The concept words each caption of a photo mentions, one set per caption.
fn caption_concepts(captions: &[Vec<String>]) -> Vec<Vec<String>> {
    captions
        .iter()
        .map(|c| {
            let mut out: Vec<String> = Vec::new();
            for w in c {
                let w = concept_word(w);
                if is_content(&w) && !out.contains(&w) {
                    out.push(w);
                }
            }
            out
        })
        .collect()
}

/// The vocabulary: words mentioned by at least `min_photos` photos' captions, most photos
/// first (ties by the word), at most `k`; with each one's photo count.
pub fn vocabulary(examples: &[Example], k: usize, min_photos: usize) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in examples {
        let mut seen: Vec<String> = caption_concepts(&e.captions).concat();
        seen.sort();
        seen.dedup();
        for w in seen {
            *counts.entry(w).or_default() += 1;
        }
    }
    let mut words: Vec<(String, usize)> = counts
        .into_iter()
        .filter(|(_, c)| *c >= min_photos.max(1))
        .collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    words.truncate(k);
    words
}

/// The labels of the examples for `words` (examples x words, row-major).
fn label_matrix(examples: &[Example], index: &HashMap<&str, usize>, labels: Labels) -> Vec<f32> {
    let k = index.len();
    let mut y = vec![0f32; examples.len() * k];
    for (n, e) in examples.iter().enumerate() {
        let caps = caption_concepts(&e.captions);
        let share = 1.0 / caps.len().max(1) as f32;
        let row = &mut y[n * k..(n + 1) * k];
        for c in &caps {
            for w in c {
                if let Some(&i) = index.get(w.as_str()) {
                    match labels {
                        Labels::Any => row[i] = 1.0,
                        Labels::Soft => row[i] += share,
                    }
                }
            }
        }
    }
    y
}

/// Average precision of `scores` against 0/1 `truth` (`None` without a positive).
pub fn average_precision(scores: &[f32], truth: &[bool]) -> Option<f32> {
    let positives = truth.iter().filter(|t| **t).count();
    if positives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut hits = 0usize;
    let mut sum = 0f64;
    for (rank, &i) in order.iter().enumerate() {
        if truth[i] {
            hits += 1;
            sum += hits as f64 / (rank + 1) as f64;
        }
    }
    Some((sum / positives as f64) as f32)
}

/// Each word's dev AP of `detector` (`None` for words without a positive dev photo), and the
/// dev photos mentioning each word.
pub fn dev_average_precision(
    detector: &ConceptDetector,
    dev: &[Example],
) -> (Vec<Option<f32>>, Vec<usize>) {
    let k = detector.words().len();
    let index: HashMap<&str, usize> = detector
        .words()
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i))
        .collect();
    let truth = label_matrix(dev, &index, Labels::Any);
    let probs: Vec<Vec<f32>> = dev.iter().map(|e| detector.logits(e.feature)).collect();
    let mut aps = Vec::with_capacity(k);
    let mut counts = Vec::with_capacity(k);
    for w in 0..k {
        let scores: Vec<f32> = probs.iter().map(|p| p[w]).collect();
        let t: Vec<bool> = (0..dev.len()).map(|n| truth[n * k + w] > 0.5).collect();
        counts.push(t.iter().filter(|b| **b).count());
        aps.push(average_precision(&scores, &t));
    }
    (aps, counts)
}

/// The mean of the APs that exist.
pub fn mean_ap(aps: &[Option<f32>]) -> Option<f32> {
    let v: Vec<f32> = aps.iter().flatten().copied().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f32>() / v.len() as f32)
}

/// Trains a detector on `train` and measures it on `dev` (which may be empty: no dev mAP).
pub fn train(
    train: &[Example],
    dev: &[Example],
    options: &ConceptOptions,
    encoder: &str,
    trained_on: &str,
) -> Result<(ConceptDetector, ConceptReport), ConceptError> {
    let started = Instant::now();
    let err = |m: String| ConceptError::Train(m);
    let Some(first) = train.first() else {
        return Err(err("no training photos".into()));
    };
    let d = first.feature.len();
    if d == 0 {
        return Err(err("training features are empty".into()));
    }
    if let Some(e) = train.iter().chain(dev).find(|e| e.feature.len() != d) {
        return Err(err(format!(
            "features of different sizes ({} and {d})",
            e.feature.len()
        )));
    }
    let vocab = vocabulary(train, options.words, options.min_photos);
    if vocab.is_empty() {
        return Err(err(format!(
            "no word is mentioned by the captions of {} training photos or more",
            options.min_photos
        )));
    }
    let words: Vec<String> = vocab.iter().map(|(w, _)| w.clone()).collect();
    let k = words.len();
    let n = train.len();
    let index: HashMap<&str, usize> = words
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i))
        .collect();
    let y = label_matrix(train, &index, options.labels);

    // Standardisation from the training features.
    let mut mean = vec![0f64; d];
    for e in train {
        for (m, x) in mean.iter_mut().zip(e.feature) {
            *m += *x as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0f64; d];
    for e in train {
        for ((v, x), m) in var.iter_mut().zip(e.feature).zip(&mean) {
            *v += (*x as f64 - m).powi(2);
        }
    }
    let mean: Vec<f32> = mean.iter().map(|m| *m as f32).collect();
    let scale: Vec<f32> = var
        .iter()
        .map(|v| {
            let sd = (v / n as f64).sqrt();
            if sd > 1e-6 { (1.0 / sd) as f32 } else { 0.0 }
        })
        .collect();
    let mut x = vec![0f32; n * d];
    for (row, e) in x.chunks_exact_mut(d).zip(train) {
        for i in 0..d {
            row[i] = (e.feature[i] - mean[i]) * scale[i];
        }
    }

    // Bias starts at the log-odds of each word's base rate.
    let mut bias: Vec<f32> = (0..k)
        .map(|w| {
            let p = ((0..n).map(|i| y[i * k + w]).sum::<f32>() / n as f32).clamp(1e-4, 1.0 - 1e-4);
            (p / (1.0 - p)).ln()
        })
        .collect();
    let mut weight = vec![0f32; k * d];
    let cpu = Device::Cpu;
    let cerr = |e: candle_core::Error| err(e.to_string());
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut mw = vec![0f32; k * d];
    let mut vw = vec![0f32; k * d];
    let mut mb = vec![0f32; k];
    let mut vb = vec![0f32; k];
    let mut step = 0i32;
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = crate::rng::Rng::new(options.seed);
    let batch = options.batch.max(1);
    let mut xb = Vec::with_capacity(batch * d);
    let mut yb = Vec::with_capacity(batch * k);
    for _ in 0..options.epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(batch) {
            let b = chunk.len();
            xb.clear();
            yb.clear();
            for &i in chunk {
                xb.extend_from_slice(&x[i * d..(i + 1) * d]);
                yb.extend_from_slice(&y[i * k..(i + 1) * k]);
            }
            let xt = Tensor::from_slice(&xb, (b, d), &cpu).map_err(cerr)?;
            let wt = Tensor::from_slice(&weight, (k, d), &cpu).map_err(cerr)?;
            let logits = xt
                .matmul(&wt.t().map_err(cerr)?)
                .map_err(cerr)?
                .to_vec2::<f32>()
                .map_err(cerr)?;
            // g = (sigmoid(logit) - y) / b, batch x words.
            let mut g = vec![0f32; b * k];
            let mut gb = vec![0f32; k];
            for (r, row) in logits.iter().enumerate() {
                for w in 0..k {
                    let v = (super::sigmoid(row[w] + bias[w]) - yb[r * k + w]) / b as f32;
                    g[r * k + w] = v;
                    gb[w] += v;
                }
            }
            let gt = Tensor::from_slice(&g, (b, k), &cpu).map_err(cerr)?;
            let gw = gt
                .t()
                .and_then(|t| t.matmul(&xt))
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(cerr)?;
            step += 1;
            let lr = options.learning_rate * (1.0 - b2.powi(step)).sqrt() / (1.0 - b1.powi(step));
            for i in 0..k * d {
                let gi = gw[i] + options.l2 * weight[i];
                mw[i] = b1 * mw[i] + (1.0 - b1) * gi;
                vw[i] = b2 * vw[i] + (1.0 - b2) * gi * gi;
                weight[i] -= lr * mw[i] / (vw[i].sqrt() + eps);
            }
            for w in 0..k {
                mb[w] = b1 * mb[w] + (1.0 - b1) * gb[w];
                vb[w] = b2 * vb[w] + (1.0 - b2) * gb[w] * gb[w];
                bias[w] -= lr * mb[w] / (vb[w].sqrt() + eps);
            }
        }
    }

    let info = ConceptInfo {
        version: CONCEPT_VERSION,
        words,
        dim: d,
        feature: FEATURE_POOLED.into(),
        encoder: encoder.to_string(),
        train_photos: n,
        dev_photos: dev.len(),
        dev_map: None,
        dev_ap: vec![],
        train_counts: vocab.iter().map(|(_, c)| *c).collect(),
        trained_on: trained_on.to_string(),
        settings: serde_json::to_value(options).unwrap_or(serde_json::Value::Null),
    };
    // Measured as stored: with the weights through f16.
    let mut detector = ConceptDetector::new(info, mean, scale, weight, bias)
        .map_err(err)?
        .through_f16();
    let (aps, dev_counts) = dev_average_precision(&detector, dev);
    let dev_map = mean_ap(&aps);
    let mut ranked: Vec<(String, f32, usize)> = detector
        .words()
        .iter()
        .zip(&aps)
        .zip(&dev_counts)
        .filter_map(|((w, ap), c)| ap.map(|ap| (w.clone(), ap, *c)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    detector.info.dev_map = dev_map;
    detector.info.dev_ap = aps;
    let report = ConceptReport {
        words: k,
        train_photos: n,
        dev_photos: dev.len(),
        dev_map,
        ranked,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((detector, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_precision_of_perfect_and_reversed_rankings() {
        let t = [true, false, true, false];
        assert_eq!(average_precision(&[0.9, 0.1, 0.8, 0.2], &t), Some(1.0));
        let ap = average_precision(&[0.1, 0.9, 0.2, 0.8], &t).expect("positives");
        assert!((ap - (1.0 / 3.0 + 2.0 / 4.0) / 2.0).abs() < 1e-6);
        assert_eq!(average_precision(&[0.1, 0.2], &[false, false]), None);
    }

    fn caps(c: &[&str]) -> Vec<Vec<String>> {
        c.iter()
            .map(|s| s.split_whitespace().map(String::from).collect())
            .collect()
    }

    #[test]
    fn a_separable_word_is_learned() {
        // Feature 0 says "dog", feature 1 says "snow".
        let mut feats = Vec::new();
        let mut captions = Vec::new();
        for i in 0..60 {
            let dog = i % 2 == 0;
            let snow = i % 3 == 0;
            feats.push(vec![
                if dog { 1.0 } else { 0.0 },
                if snow { 1.0 } else { 0.0 },
                (i % 7) as f32 * 0.1,
            ]);
            let mut c = vec!["a photo".to_string()];
            if dog {
                c.push("two dogs are running".into());
            }
            if snow {
                c.push("a man in the snow".into());
            }
            captions.push(c);
        }
        let examples: Vec<Example> = feats
            .iter()
            .zip(&captions)
            .map(|(f, c)| Example {
                feature: f,
                captions: caps(&c.iter().map(String::as_str).collect::<Vec<_>>()),
            })
            .collect();
        let options = ConceptOptions {
            min_photos: 5,
            epochs: 60,
            batch: 16,
            learning_rate: 0.05,
            ..ConceptOptions::default()
        };
        let (det, report) = train(&examples, &examples, &options, "test", "toy").expect("trains");
        assert!(det.words().contains(&"dog".to_string()));
        assert!(!det.words().contains(&"a".to_string()));
        let dog = det.index_of("dogs").expect("dog");
        let p_dog = det.probabilities(&[1.0, 0.0, 0.3]);
        let p_not = det.probabilities(&[0.0, 0.0, 0.3]);
        assert!(p_dog[dog] > 0.8 && p_not[dog] < 0.2, "{p_dog:?} {p_not:?}");
        assert!(report.dev_map.expect("dev mAP") > 0.9);
    }
}
