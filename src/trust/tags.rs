//! The ImageNet classifier head (from the encoder weights) and plain-word tags per class
//! (`models/imagenet_tags.txt`, one line per class in the order of `imagenet_classes.txt`,
//! made by `tools/make_imagenet_tags.py`).

use std::path::Path;

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use super::TrustError;

/// The tag file beside the encoder weights.
pub const TAGS_FILE: &str = "imagenet_tags.txt";

/// ImageNet's first 398 classes (tench ... puffer) are animals; 398 is the abacus.
pub const ANIMAL_CLASSES: usize = 398;
/// A caption names the wrong animal when the classifier gives at least this probability to
/// one animal class whose names the caption does not use ...
pub const MISMATCH_SEEN: f32 = 0.4;
/// ... and less than this to all the classes of the animals the caption names.
///
/// Both chosen by looking at the Flickr8k dev split and the extra photos in tests/fixtures
/// with the default model (tools/trust_signals.py's data): at 0.4 / 0.1 the rule fires on 2
/// of the 1,000 dev photos (a bald eagle and a chicken beside a dog, both captioned as dogs
/// alone: rightly) and on 8 of the 105 extra photos (an alpaca, a cow, a duck, lemurs, a
/// panda, a polar bear, a sheep and a toucan, all captioned as dogs).
pub const MISMATCH_SUPPORT: f32 = 0.1;

/// The encoder's classifier (`logits = W pooled + b`) and the tags of its classes.
#[derive(Clone, Debug)]
pub struct Classifier {
    weight: Vec<f32>,
    bias: Vec<f32>,
    dim: usize,
    tags: Vec<Vec<String>>,
    /// One-word tags of the animal classes -> those classes.
    animal_words: std::collections::HashMap<String, Vec<usize>>,
}

/// A caption that names an animal the classifier does not see, while it sees another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnimalMismatch {
    /// The animal word of the caption ("dog").
    pub named: String,
    /// The probability the classifier gives to the classes of the animals the caption names.
    pub named_probability: f32,
    /// The animal class the classifier sees ("ice bear").
    pub seen: String,
    pub seen_probability: f32,
}

impl AnimalMismatch {
    /// For people: `The caption says "dog", but the image classifier sees: ice bear (95%).`
    pub fn describe(&self) -> String {
        format!(
            "The caption says \"{}\", but the image classifier sees: {} ({:.0}%).",
            self.named,
            self.seen,
            100.0 * self.seen_probability
        )
    }
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
        let mut animal_words: std::collections::HashMap<String, Vec<usize>> = Default::default();
        for (i, class_tags) in tags.iter().enumerate().take(ANIMAL_CLASSES) {
            for t in class_tags.iter().filter(|t| !t.contains(' ')) {
                animal_words.entry(t.clone()).or_default().push(i);
            }
        }
        Ok(Classifier {
            weight,
            bias,
            dim,
            tags,
            animal_words,
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
            .map(|(row, b)| b + super::familiarity::dot(row, feature))
            .collect();
        crate::encoder::labels::softmax(&logits)
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.bias.len()
    }

    /// The plain-word tags of class `i`.
    pub fn tags(&self, i: usize) -> &[String] {
        self.tags.get(i).map_or(&[], Vec::as_slice)
    }

    /// The classes of an animal word of a caption ("dog", or its plural "dogs"), if it names
    /// one.
    fn animal_classes(&self, word: &str) -> Option<&[usize]> {
        self.animal_words
            .get(word)
            .or_else(|| {
                word.strip_suffix('s')
                    .and_then(|w| self.animal_words.get(w))
            })
            .map(Vec::as_slice)
    }

    /// Whether a caption (its words) names an animal that the classifier (class probabilities
    /// `p`) does not see while it sees another: see [`MISMATCH_SEEN`] and [`MISMATCH_SUPPORT`].
    pub fn animal_mismatch(&self, words: &[&str], p: &[f32]) -> Option<AnimalMismatch> {
        let named: Vec<(&str, &[usize])> = words
            .iter()
            .filter_map(|w| self.animal_classes(w).map(|c| (*w, c)))
            .collect();
        let first = named.first()?.0;
        let classes: std::collections::HashSet<usize> =
            named.iter().flat_map(|(_, c)| c.iter().copied()).collect();
        let support: f32 = classes.iter().filter_map(|&c| p.get(c)).sum();
        let (top, top_p) = p
            .iter()
            .copied()
            .enumerate()
            .take(ANIMAL_CLASSES)
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        let uses_its_name = self
            .tags(top)
            .iter()
            .any(|t| t.split(' ').any(|w| words.contains(&w)));
        (top_p >= MISMATCH_SEEN && support < MISMATCH_SUPPORT && !uses_its_name).then(|| {
            AnimalMismatch {
                named: first.to_string(),
                named_probability: support,
                seen: self.tags(top).first().cloned().unwrap_or_default(),
                seen_probability: top_p,
            }
        })
    }
}
