//! ImageNet class names and top-k predictions from logits.

use std::path::{Path, PathBuf};

/// Errors reading a class-name file.
#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("class-name file not found: {}", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot read class-name file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("class-name file {} is invalid: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
}

/// One ranked class.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Class index into the logits.
    pub index: usize,
    /// Human-readable class name.
    pub label: String,
    /// Softmax probability.
    pub probability: f32,
}

/// Class names, one per logit (ImageNet: 1000, in the standard order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassNames {
    names: Vec<String>,
}

impl ClassNames {
    /// Loads a text file with one class name per line (e.g. `models/imagenet_classes.txt`).
    /// Blank trailing lines are ignored; blank lines in the middle are an error.
    pub fn load(path: &Path) -> Result<Self, LabelsError> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LabelsError::NotFound {
                path: path.to_path_buf(),
            },
            _ => LabelsError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        Self::parse(&text).map_err(|detail| LabelsError::Invalid {
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parses one class name per line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let names: Vec<String> = text
            .trim_end()
            .lines()
            .map(|l| l.trim().to_string())
            .collect();
        if names.is_empty() || (names.len() == 1 && names[0].is_empty()) {
            return Err("no class names".to_string());
        }
        if let Some(i) = names.iter().position(|n| n.is_empty()) {
            return Err(format!("line {} is blank", i + 1));
        }
        Ok(Self { names })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn name(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(String::as_str)
    }

    /// The `k` most probable classes of one row of logits, most probable first.
    /// Errors when the number of logits differs from the number of names.
    pub fn top_k(&self, logits: &[f32], k: usize) -> Result<Vec<Prediction>, String> {
        if logits.len() != self.names.len() {
            return Err(format!(
                "{} logits but {} class names",
                logits.len(),
                self.names.len()
            ));
        }
        Ok(top_k_probabilities(logits, k)
            .into_iter()
            .map(|(index, probability)| Prediction {
                index,
                label: self.names[index].clone(),
                probability,
            })
            .collect())
    }
}

/// Numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

/// Indices and softmax probabilities of the `k` largest logits, largest first (ties by index).
pub fn top_k_probabilities(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    let probs = softmax(logits);
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order.truncate(k);
    order.into_iter().map(|i| (i, probs[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_orders() {
        let p = softmax(&[1.0, 3.0, 2.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(
            top_k_probabilities(&[1.0, 3.0, 2.0], 2)
                .iter()
                .map(|x| x.0)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
    }

    #[test]
    fn parse_rejects_blank_lines() {
        assert!(ClassNames::parse("a\n\nb\n").is_err());
        assert!(ClassNames::parse("").is_err());
        let names = ClassNames::parse("cat\ndog\n\n").unwrap();
        assert_eq!(names.len(), 2);
        let top = names.top_k(&[0.0, 1.0], 1).unwrap();
        assert_eq!(top[0].label, "dog");
        assert!(names.top_k(&[0.0], 1).is_err());
    }
}
