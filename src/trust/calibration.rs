//! The calibrated confidence: a logistic regression from a caption's [`Signals`] to the
//! probability that the caption is acceptable (per-photo CIDEr-D at least
//! [`ACCEPTABLE_CIDER`] against the reference captions), fitted on a dev split and stored in
//! the model folder as `calibration.json`, with the needs-review and tag thresholds.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ReviewReason, Signals, TrustError};

/// The file inside a model folder.
pub const CALIBRATION_JSON: &str = "calibration.json";
/// A caption is acceptable when its per-photo CIDEr-D is at least this.
pub const ACCEPTABLE_CIDER: f64 = 0.1;

/// `calibration.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The signals, in the order of `mean`, `scale` and `weights`.
    pub signals: Vec<String>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub weights: Vec<f32>,
    pub bias: f32,
    /// needs_review when the confidence is below this ...
    pub review_below: f32,
    /// ... or the photo's mean similarity to its nearest training photos is below this (the
    /// 1st percentile of the dev photos').
    pub unfamiliar_below: f32,
    /// An ImageNet class gives tags when its probability is at least this.
    pub tag_threshold: f32,
    /// What it was fitted on and how well it did (measured by `captioner calibrate`).
    pub fitted: serde_json::Value,
}

impl Calibration {
    /// The probability that the caption is acceptable.
    pub fn confidence(&self, s: &Signals) -> f32 {
        let x = s.values();
        let mut z = self.bias;
        for (i, v) in x.iter().enumerate() {
            let (m, sc, w) = (
                self.mean.get(i).copied().unwrap_or(0.0),
                self.scale.get(i).copied().unwrap_or(1.0),
                self.weights.get(i).copied().unwrap_or(0.0),
            );
            z += w * (v - m) / sc.max(1e-6);
        }
        1.0 / (1.0 + (-z).exp())
    }

    /// Whether (and why) a caption with signals `s` and confidence `confidence` needs review:
    /// the photo is less familiar than nearly all dev photos, or the caption names an animal
    /// the image classifier does not see, or the confidence is below the threshold.
    pub fn review(&self, s: &Signals, confidence: f32) -> Option<ReviewReason> {
        if s.similarity < self.unfamiliar_below {
            Some(ReviewReason::Unfamiliar)
        } else if s.animal_mismatch.is_some() {
            Some(ReviewReason::AnimalMismatch)
        } else if confidence < self.review_below {
            Some(ReviewReason::LowConfidence)
        } else {
            None
        }
    }

    pub fn save(&self, dir: &Path) -> Result<(), TrustError> {
        super::write_json(&dir.join(CALIBRATION_JSON), self)
    }

    /// Reads `calibration.json` from `dir`; `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<Calibration>, TrustError> {
        let path = dir.join(CALIBRATION_JSON);
        if !path.is_file() {
            return Ok(None);
        }
        let c: Calibration = super::read_json(&path)?;
        let n = Signals::NAMES.len();
        if c.signals != Signals::NAMES
            || c.mean.len() != n
            || c.scale.len() != n
            || c.weights.len() != n
        {
            return Err(TrustError::File {
                path,
                message: format!(
                    "the calibration is for the signals {:?}; this version computes {:?} (run `captioner calibrate` again)",
                    c.signals,
                    Signals::NAMES
                ),
            });
        }
        Ok(Some(c))
    }
}

/// Fits a logistic regression (standardised inputs, L2 penalty `l2`) of `good` on `x`.
/// Returns (mean, scale, weights, bias).
pub fn fit_logistic(x: &[Vec<f32>], good: &[bool], l2: f64) -> (Vec<f32>, Vec<f32>, Vec<f32>, f32) {
    let n = x.len().max(1);
    let k = x.first().map_or(0, Vec::len);
    let mut mean = vec![0f64; k];
    for r in x {
        for j in 0..k {
            mean[j] += f64::from(r[j]) / n as f64;
        }
    }
    let mut scale = vec![0f64; k];
    for r in x {
        for j in 0..k {
            scale[j] += (f64::from(r[j]) - mean[j]).powi(2) / n as f64;
        }
    }
    let scale: Vec<f64> = scale.iter().map(|v| v.sqrt().max(1e-6)).collect();
    let z: Vec<Vec<f64>> = x
        .iter()
        .map(|r| {
            (0..k)
                .map(|j| (f64::from(r[j]) - mean[j]) / scale[j])
                .collect()
        })
        .collect();
    let mut w = vec![0f64; k];
    let mut b = 0f64;
    // Newton's method (k is small).
    for _ in 0..50 {
        let mut grad = vec![0f64; k + 1];
        let mut hess = vec![vec![0f64; k + 1]; k + 1];
        for (r, &y) in z.iter().zip(good) {
            let s: f64 = b + r.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>();
            let p = 1.0 / (1.0 + (-s).exp());
            let e = p - if y { 1.0 } else { 0.0 };
            let h = (p * (1.0 - p)).max(1e-9);
            let mut xr = r.clone();
            xr.push(1.0);
            for i in 0..=k {
                grad[i] += e * xr[i];
                for j in 0..=k {
                    hess[i][j] += h * xr[i] * xr[j];
                }
            }
        }
        for i in 0..k {
            grad[i] += l2 * w[i];
            hess[i][i] += l2;
        }
        let Some(step) = solve(hess, grad) else { break };
        for i in 0..k {
            w[i] -= step[i];
        }
        b -= step[k];
        if step.iter().map(|s| s.abs()).fold(0.0, f64::max) < 1e-8 {
            break;
        }
    }
    (
        mean.iter().map(|&v| v as f32).collect(),
        scale.iter().map(|&v| v as f32).collect(),
        w.iter().map(|&v| v as f32).collect(),
        b as f32,
    )
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[p][c].abs() < 1e-12 {
            return None;
        }
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..n {
            let (top, bottom) = a.split_at_mut(r);
            let (pivot, row) = (&top[c], &mut bottom[0]);
            let f = row[c] / pivot[c];
            for (x, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                *x -= f * p;
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0f64; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Some(x)
}

/// The area under the ROC curve of `score` for telling `good` (positive) from bad: the
/// probability that a random good one scores above a random bad one (ties count half).
/// `None` when either class is empty.
pub fn auroc(score: &[f32], good: &[bool]) -> Option<f64> {
    auroc_weighted(score, good, &vec![1.0; score.len()])
}

/// AUROC with a weight per item: the weighted share of (good, bad) pairs that `score` orders
/// rightly (ties count half). With equal weights it equals [`auroc`]; an item of weight 2
/// counts as two items.
pub fn auroc_weighted(score: &[f32], good: &[bool], weight: &[f64]) -> Option<f64> {
    let mut items: Vec<(f32, bool, f64)> = score
        .iter()
        .zip(good)
        .zip(weight)
        .map(|((s, g), w)| (*s, *g, *w))
        .collect();
    items.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total_good: f64 = items.iter().filter(|i| i.1).map(|i| i.2).sum();
    let total_bad: f64 = items.iter().filter(|i| !i.1).map(|i| i.2).sum();
    if total_good <= 0.0 || total_bad <= 0.0 {
        return None;
    }
    let (mut right, mut bad_below) = (0.0, 0.0);
    let mut i = 0;
    while i < items.len() {
        let mut j = i;
        while j < items.len() && items[j].0 == items[i].0 {
            j += 1;
        }
        let good_here: f64 = items[i..j].iter().filter(|t| t.1).map(|t| t.2).sum();
        let bad_here: f64 = items[i..j].iter().filter(|t| !t.1).map(|t| t.2).sum();
        right += good_here * (bad_below + 0.5 * bad_here);
        bad_below += bad_here;
        i = j;
    }
    Some(right / (total_good * total_bad))
}

/// Precision and recall of `flagged` for finding the bad captions (`!good`), and the share of
/// good captions flagged.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewFigures {
    pub flagged: usize,
    pub bad: usize,
    pub precision: f64,
    pub recall: f64,
    pub good_flagged_rate: f64,
}

pub fn review_figures(flagged: &[bool], good: &[bool]) -> ReviewFigures {
    let tp = flagged
        .iter()
        .zip(good)
        .filter(|(f, g)| **f && !**g)
        .count();
    let nflag = flagged.iter().filter(|f| **f).count();
    let bad = good.iter().filter(|g| !**g).count();
    let ngood = good.len() - bad;
    let fp = nflag - tp;
    ReviewFigures {
        flagged: nflag,
        bad,
        precision: if nflag > 0 {
            tp as f64 / nflag as f64
        } else {
            0.0
        },
        recall: if bad > 0 { tp as f64 / bad as f64 } else { 0.0 },
        good_flagged_rate: if ngood > 0 {
            fp as f64 / ngood as f64
        } else {
            0.0
        },
    }
}

/// The calibrated confidence of each caption's signals.
pub fn confidences(cal: &Calibration, signals: &[Signals]) -> Vec<f32> {
    signals.iter().map(|s| cal.confidence(s)).collect()
}

/// A calibration fitted on `signals` (regularised logistic regression on whether each caption
/// is acceptable, `good`), with the needs-review thresholds off and the default tag threshold.
pub fn fit(signals: &[Signals], good: &[bool]) -> Calibration {
    let x: Vec<Vec<f32>> = signals.iter().map(|s| s.values().to_vec()).collect();
    let (mean, scale, weights, bias) = fit_logistic(&x, good, 1.0);
    Calibration {
        signals: Signals::NAMES.iter().map(|s| s.to_string()).collect(),
        mean,
        scale,
        weights,
        bias,
        review_below: 0.0,
        unfamiliar_below: f32::NEG_INFINITY,
        tag_threshold: super::DEFAULT_TAG_THRESHOLD,
        fitted: serde_json::Value::Null,
    }
}

/// The smallest class probability (of 0.1, 0.2, ... 0.9) at which at least 60% of the dev
/// photos' class tags appear in their reference captions (`dev`: pooled feature and reference
/// captions of each photo), and that share (the default
/// threshold and `None` when no threshold reaches it).
pub fn tag_threshold(
    classifier: Option<&super::Classifier>,
    dev: &[(&[f32], &[String])],
) -> (f32, Option<f64>) {
    let Some(c) = classifier else {
        return (super::DEFAULT_TAG_THRESHOLD, None);
    };
    let probs: Vec<(Vec<f32>, std::collections::HashSet<String>)> = dev
        .iter()
        .map(|(f, captions)| {
            let words = captions
                .iter()
                .flat_map(|c| crate::eval::tokenize(c))
                .collect();
            (c.probabilities(f), words)
        })
        .collect();
    for step in 1..10 {
        let t = step as f32 / 10.0;
        let (mut right, mut all) = (0usize, 0usize);
        for (p, words) in &probs {
            for (i, _) in p.iter().enumerate().filter(|(_, q)| **q >= t) {
                all += 1;
                if c.tags(i)
                    .iter()
                    .any(|tag| tag.split(' ').any(|w| words.contains(w)))
                {
                    right += 1;
                }
            }
        }
        if all > 0 && right as f64 / all as f64 >= 0.6 {
            return (t, Some(right as f64 / all as f64));
        }
    }
    (super::DEFAULT_TAG_THRESHOLD, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_orders() {
        assert_eq!(
            auroc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(
            auroc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]),
            Some(0.0)
        );
        assert_eq!(auroc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auroc(&[0.5], &[true]), None);
    }

    #[test]
    fn weighted_auroc_counts_weights_as_copies() {
        let score = [0.1, 0.4, 0.35, 0.8, 0.5, 0.5, 0.2];
        let good = [false, true, false, true, false, true, true];
        let ones = [1.0; 7];
        assert_eq!(auroc_weighted(&score, &good, &ones), auroc(&score, &good));
        // Weight 2 on the third item = the third item twice.
        let w = [1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0];
        let mut s2 = score.to_vec();
        s2.push(0.35);
        let mut g2 = good.to_vec();
        g2.push(false);
        let a = auroc_weighted(&score, &good, &w).unwrap();
        assert!((a - auroc(&s2, &g2).unwrap()).abs() < 1e-12);
        assert_eq!(auroc_weighted(&[0.5], &[true], &[1.0]), None);
    }

    #[test]
    fn logistic_separates() {
        let x: Vec<Vec<f32>> = (0..200).map(|i| vec![i as f32, (i % 7) as f32]).collect();
        let y: Vec<bool> = (0..200).map(|i| i >= 100).collect();
        let (m, s, w, b) = fit_logistic(&x, &y, 1.0);
        let p = |v: f32| {
            let z = b + w[0] * (v - m[0]) / s[0] + w[1] * (3.0 - m[1]) / s[1];
            1.0 / (1.0 + (-z).exp())
        };
        assert!(p(10.0) < 0.1 && p(190.0) > 0.9);
    }
}
