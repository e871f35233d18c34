//! The ImageNet classifier head (from the encoder weights) and plain-word tags per class
//! (`models/imagenet_tags.txt`, one line per class in the order of `imagenet_classes.txt`,
//! made by `tools/make_imagenet_tags.py`).

use std::path::Path;

use candle_core::{DType, Device};

use super::TrustError;

/// The tag file beside the encoder weights.
pub const TAGS_FILE: &str = "imagenet_tags.txt";

/// The encoder's classifier (`logits = W pooled + b`) and the tags of its classes.
#[derive(Clone, Debug)]
pub struct Classifier {
    weight: Vec<f32>,
    bias: Vec<f32>,
    dim: usize,
    tags: Vec<Vec<String>>,
}

/// Parses a tag file: one line per class, tags separated by commas.
pub fn parse_tags(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| {
            l.split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .collect()
}

impl Classifier {
    pub fn load(weights: &Path, tags_file: &Path) -> Result<Classifier, TrustError> {
        let text = std::fs::read_to_string(tags_file).map_err(|e| TrustError::Io {
            path: tags_file.to_path_buf(),
            source: e,
        })?;
        let tags = parse_tags(&text);
        let bad = |message: String| TrustError::File {
            path: weights.to_path_buf(),
            message,
        };
        let tensors = candle_core::safetensors::load(weights, &Device::Cpu)
            .map_err(|e| bad(e.to_string()))?;
        let w = tensors
            .get("_fc.weight")
            .ok_or_else(|| bad("no tensor `_fc.weight`".into()))?;
        let (classes, dim) = w.dims2().map_err(|e| bad(e.to_string()))?;
        let weight = w
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| bad(e.to_string()))?;
        let bias = tensors
            .get("_fc.bias")
            .ok_or_else(|| bad("no tensor `_fc.bias`".into()))?
            .to_dtype(DType::F32)
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| bad(e.to_string()))?;
        if tags.len() != classes || bias.len() != classes {
            return Err(TrustError::File {
                path: tags_file.to_path_buf(),
                message: format!(
                    "{} lines of tags for {classes} classes of {}",
                    tags.len(),
                    weights.display()
                ),
            });
        }
        Ok(Classifier {
            weight,
            bias,
            dim,
            tags,
        })
    }

    /// The class probabilities (softmax of the logits) of a pooled feature.
    pub fn probabilities(&self, feature: &[f32]) -> Vec<f32> {
        if feature.len() != self.dim {
            return vec![0.0; self.bias.len()];
        }
        let logits: Vec<f32> = self
            .weight
            .chunks(self.dim)
            .zip(&self.bias)
            .map(|(row, b)| b + row.iter().zip(feature).map(|(a, c)| a * c).sum::<f32>())
            .collect();
        crate::encoder::labels::softmax(&logits)
    }

    /// The plain-word tags of class `i`.
    pub fn tags(&self, i: usize) -> &[String] {
        self.tags.get(i).map_or(&[], Vec::as_slice)
    }
}
