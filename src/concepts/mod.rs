//! The visual-concept detector of a model: from a photo's pooled encoder feature, the
//! probability that each of the K most frequent content words of the training captions
//! ("man", "dog", "water", "grass", "snow", ...) applies to the photo (after Fang et al., "From
//! Captions to Visual Concepts and Back", CVPR 2015, here as one logistic regression per word
//! on the standardised pooled feature).
//!
//! Stored in the model folder as [`CONCEPT_FILES`]: `concepts.json` ([`ConceptInfo`]: the
//! words and how the detector was made and measured) and `concepts.safetensors` (the
//! feature standardisation `mean` and `scale`, f32, `dim` each; the `weight`, f16, words x
//! dim; the `bias`, f32, one per word). Trained by [`train::train`] at the end of every
//! training run and by `captioner concepts`.
//!
//! Words are compared in their [`concept_word`] form, so "dogs" finds "dog" and "men" finds
//! "man".

pub mod train;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

/// The version of the stored detector this build reads and writes.
pub const CONCEPT_VERSION: u32 = 1;

/// The detector's description (words and figures).
pub const CONCEPT_JSON: &str = "concepts.json";

/// The detector's numbers.
pub const CONCEPT_TENSORS: &str = "concepts.safetensors";

/// The files of a detector in a model folder.
pub const CONCEPT_FILES: [&str; 2] = [CONCEPT_JSON, CONCEPT_TENSORS];

/// The feature a detector reads: the encoder's pooled vector (for attention models the mean
/// over the spatial cells, [`crate::features::SpatialFeature::mean`]).
pub const FEATURE_POOLED: &str = "pooled";

/// A detector file that cannot be used, or a detector that cannot be trained.
#[derive(Debug, thiserror::Error)]
pub enum ConceptError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `concepts.json` is not valid.
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// `concepts.safetensors` cannot be read or written.
    #[error("{path}: {source}")]
    Tensors {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    /// A file reads but holds something this build cannot use (wrong version or shape).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// Training cannot go on (too few photos, features of different sizes, ...).
    #[error("training the concept detector: {0}")]
    Train(String),
}

/// How a detector was made and how well it does (`concepts.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConceptInfo {
    /// [`CONCEPT_VERSION`] when written.
    pub version: u32,
    /// The words, in their [`concept_word`] form, most frequent first (K of them).
    pub words: Vec<String>,
    /// Length of the feature the detector reads.
    pub dim: usize,
    /// Which feature: [`FEATURE_POOLED`].
    pub feature: String,
    /// The encoder whose features it was trained on.
    pub encoder: String,
    /// Training photos it was fitted on.
    pub train_photos: usize,
    /// Dev photos it was measured on.
    pub dev_photos: usize,
    /// Mean over the words with a positive dev photo of the average precision on dev.
    pub dev_map: Option<f32>,
    /// Each word's dev average precision (same order as `words`; `None` without a positive
    /// dev photo).
    #[serde(default)]
    pub dev_ap: Vec<Option<f32>>,
    /// Photos (of the training split) whose captions mention each word.
    #[serde(default)]
    pub train_counts: Vec<usize>,
    /// The dataset it was trained on (its folder name).
    pub trained_on: String,
    /// How the labels were made and the fitting settings.
    #[serde(default)]
    pub settings: serde_json::Value,
}

/// A trained detector, ready to give word probabilities.
#[derive(Clone, Debug)]
pub struct ConceptDetector {
    info: ConceptInfo,
    /// Feature standardisation: `(x - mean) * scale`.
    mean: Vec<f32>,
    scale: Vec<f32>,
    /// words x dim, row-major.
    weight: Vec<f32>,
    bias: Vec<f32>,
    index: HashMap<String, usize>,
}

impl ConceptDetector {
    /// A detector from its parts; `Err` when the sizes do not agree with `info`.
    pub fn new(
        info: ConceptInfo,
        mean: Vec<f32>,
        scale: Vec<f32>,
        weight: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<ConceptDetector, String> {
        let (k, d) = (info.words.len(), info.dim);
        if k == 0 || d == 0 {
            return Err(format!("{k} words of {d}-d features"));
        }
        if mean.len() != d || scale.len() != d || weight.len() != k * d || bias.len() != k {
            return Err(format!(
                "sizes do not match {k} words of {d}-d features (mean {}, scale {}, weight {}, bias {})",
                mean.len(),
                scale.len(),
                weight.len(),
                bias.len()
            ));
        }
        if !info.dev_ap.is_empty() && info.dev_ap.len() != k {
            return Err(format!("{} dev APs for {k} words", info.dev_ap.len()));
        }
        if mean
            .iter()
            .chain(&scale)
            .chain(&weight)
            .chain(&bias)
            .any(|v| !v.is_finite())
        {
            return Err("numbers that are not finite".into());
        }
        let mut index = HashMap::new();
        for (i, w) in info.words.iter().enumerate() {
            if index.insert(w.clone(), i).is_some() {
                return Err(format!("the word `{w}` twice"));
            }
        }
        Ok(ConceptDetector {
            info,
            mean,
            scale,
            weight,
            bias,
            index,
        })
    }

    /// Reads the detector of a model folder: `Ok(None)` when the folder has none of
    /// [`CONCEPT_FILES`]; `Err` naming the file when one is missing, unreadable or wrong.
    pub fn load(model_dir: &Path) -> Result<Option<ConceptDetector>, ConceptError> {
        let json = model_dir.join(CONCEPT_JSON);
        let path = model_dir.join(CONCEPT_TENSORS);
        if !json.exists() && !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&json).map_err(|e| ConceptError::Io {
            path: json.clone(),
            source: e,
        })?;
        let info: ConceptInfo = serde_json::from_str(&text).map_err(|e| ConceptError::Json {
            path: json.clone(),
            source: e,
        })?;
        if info.version != CONCEPT_VERSION {
            return Err(ConceptError::Invalid {
                path: json,
                message: format!(
                    "concept detector of version {} (this build reads {CONCEPT_VERSION}): run `captioner concepts --model DIR` again",
                    info.version
                ),
            });
        }
        if info.feature != FEATURE_POOLED {
            return Err(ConceptError::Invalid {
                path: json,
                message: format!(
                    "reads the `{}` feature, not `{FEATURE_POOLED}`",
                    info.feature
                ),
            });
        }
        let bytes = std::fs::read(&path).map_err(|e| ConceptError::Io {
            path: path.clone(),
            source: e,
        })?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| {
            ConceptError::Tensors {
                path: path.clone(),
                source: e,
            }
        })?;
        let (k, d) = (info.words.len(), info.dim);
        // Shapes are checked, not only lengths: a transposed weight has the right length.
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, ConceptError> {
            let t = tensors.get(name).ok_or_else(|| ConceptError::Invalid {
                path: path.clone(),
                message: format!("no tensor `{name}`"),
            })?;
            if t.dims() != shape {
                return Err(ConceptError::Invalid {
                    path: path.clone(),
                    message: format!(
                        "tensor `{name}` is {:?}, not {shape:?} ({k} words of {d}-d features, as {} describes it)",
                        t.dims(),
                        json.display()
                    ),
                });
            }
            t.flatten_all()
                .and_then(|t| t.to_dtype(DType::F32))
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| ConceptError::Tensors {
                    path: path.clone(),
                    source: e,
                })
        };
        let mean = get("mean", &[d])?;
        let scale = get("scale", &[d])?;
        let weight = get("weight", &[k, d])?;
        let bias = get("bias", &[k])?;
        ConceptDetector::new(info, mean, scale, weight, bias)
            .map(Some)
            .map_err(|message| ConceptError::Invalid {
                path: path.clone(),
                message: format!("{message} (as {} describes it)", json.display()),
            })
    }

    /// Writes [`CONCEPT_FILES`] into `model_dir`, each atomically (numbers first, then the
    /// description).
    pub fn save(&self, model_dir: &Path) -> Result<(), ConceptError> {
        let path = model_dir.join(CONCEPT_TENSORS);
        let tensors_err = |e: candle_core::Error| ConceptError::Tensors {
            path: path.clone(),
            source: e,
        };
        let cpu = Device::Cpu;
        let (k, d) = (self.info.words.len(), self.info.dim);
        let mut tensors = HashMap::new();
        tensors.insert(
            "mean",
            Tensor::from_slice(&self.mean, d, &cpu).map_err(tensors_err)?,
        );
        tensors.insert(
            "scale",
            Tensor::from_slice(&self.scale, d, &cpu).map_err(tensors_err)?,
        );
        tensors.insert(
            "weight",
            Tensor::from_slice(&self.weight, (k, d), &cpu)
                .and_then(|t| t.to_dtype(DType::F16))
                .map_err(tensors_err)?,
        );
        tensors.insert(
            "bias",
            Tensor::from_slice(&self.bias, k, &cpu).map_err(tensors_err)?,
        );
        let bytes = safetensors::serialize(tensors, None).map_err(|e| ConceptError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        crate::files::write_atomic(&path, &bytes).map_err(|e| ConceptError::Io {
            path: path.clone(),
            source: e,
        })?;
        let json = model_dir.join(CONCEPT_JSON);
        let text = serde_json::to_vec_pretty(&self.info).map_err(|e| ConceptError::Json {
            path: json.clone(),
            source: e,
        })?;
        crate::files::write_atomic(&json, &text).map_err(|e| ConceptError::Io {
            path: json.clone(),
            source: e,
        })
    }

    /// The words, in their [`concept_word`] form.
    pub fn words(&self) -> &[String] {
        &self.info.words
    }

    /// Length of the feature [`ConceptDetector::probabilities`] takes.
    pub fn dim(&self) -> usize {
        self.info.dim
    }

    /// How it was made and measured.
    pub fn info(&self) -> &ConceptInfo {
        &self.info
    }

    /// The same detector with the weights rounded through f16 as [`ConceptDetector::save`]
    /// stores them (what a loaded detector computes with).
    pub fn through_f16(mut self) -> ConceptDetector {
        for w in &mut self.weight {
            *w = half::f16::from_f32(*w).to_f32();
        }
        self
    }

    /// The logit of each word for a pooled feature (`dim` floats; a shorter or longer
    /// feature is read as far as both go, zeros beyond).
    pub fn logits(&self, pooled: &[f32]) -> Vec<f32> {
        let d = self.info.dim;
        let z: Vec<f32> = (0..d)
            .map(|i| {
                (pooled.get(i).copied().unwrap_or(self.mean[i]) - self.mean[i]) * self.scale[i]
            })
            .collect();
        self.weight
            .chunks_exact(d)
            .zip(&self.bias)
            .map(|(w, b)| crate::decoder::linalg::dot(w, &z) + b)
            .collect()
    }

    /// The probability (0..1) of each word of [`ConceptDetector::words`] for a photo's pooled
    /// encoder feature (for attention models the mean over the spatial cells).
    pub fn probabilities(&self, pooled: &[f32]) -> Vec<f32> {
        let mut p = self.logits(pooled);
        for v in &mut p {
            *v = sigmoid(*v);
        }
        p
    }

    /// The index of a word in [`ConceptDetector::words`], for any caption form of it ("dogs",
    /// "Men").
    pub fn index_of(&self, word: &str) -> Option<usize> {
        self.index.get(&concept_word(word)).copied()
    }

    /// The probability of one word for a photo (`None` for a word the detector lacks).
    pub fn probability_of(&self, pooled: &[f32], word: &str) -> Option<f32> {
        let i = self.index_of(word)?;
        let d = self.info.dim;
        let z: Vec<f32> = (0..d)
            .map(|j| {
                (pooled.get(j).copied().unwrap_or(self.mean[j]) - self.mean[j]) * self.scale[j]
            })
            .collect();
        Some(sigmoid(
            crate::decoder::linalg::dot(&self.weight[i * d..(i + 1) * d], &z) + self.bias[i],
        ))
    }
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Plural nouns whose singular is not the word less its "s" (and the words that only look
/// plural). "people" counts as "person".
const IRREGULAR: &[(&str, &str)] = &[
    ("men", "man"),
    ("women", "woman"),
    ("children", "child"),
    ("people", "person"),
    ("persons", "person"),
    ("feet", "foot"),
    ("teeth", "tooth"),
    ("geese", "goose"),
    ("mice", "mouse"),
    ("knives", "knife"),
    ("leaves", "leaf"),
    ("wolves", "wolf"),
    ("shelves", "shelf"),
    ("scarves", "scarf"),
    ("buses", "bus"),
    ("cookies", "cookie"),
    ("ties", "tie"),
    ("pies", "pie"),
    ("movies", "movie"),
    ("goalies", "goalie"),
    ("hippies", "hippie"),
    ("selfies", "selfie"),
    ("dice", "die"),
];

/// Words ending in "s" that stay as they are.
const KEEP: &[&str] = &[
    "shorts",
    "pants",
    "jeans",
    "trousers",
    "clothes",
    "glasses",
    "sunglasses",
    "goggles",
    "overalls",
    "stairs",
    "tights",
    "sweatpants",
    "news",
    "lens",
    "series",
    "species",
    "always",
    "was",
    "has",
    "his",
    "hers",
    "its",
    "this",
    "is",
    "as",
    "us",
    "yes",
    "gas",
    "bus",
    "plus",
    "across",
    "christmas",
    "sans",
    "tennis",
    "chess",
    "dress",
    "grass",
];

/// The normalised form of a caption word used for the detector's words and lookups: lower
/// case, plural nouns made singular ("dogs" -> "dog", "benches" -> "bench", "puppies" ->
/// "puppy", "men" -> "man", "children" -> "child", "people" -> "person"), words that only look
/// plural kept ("grass", "dress", "bus", "shorts", "jeans", "glasses", "is", "his"). Other
/// words (verbs, adjectives) are returned in lower case, otherwise unchanged.
pub fn concept_word(word: &str) -> String {
    let w = word.trim().to_lowercase();
    if let Some((_, s)) = IRREGULAR.iter().find(|(p, _)| *p == w) {
        return (*s).to_string();
    }
    let n = w.chars().count();
    if n <= 3 || !w.ends_with('s') || KEEP.contains(&w.as_str()) || !w.is_ascii() {
        return w;
    }
    if w.ends_with("ss") || w.ends_with("us") || w.ends_with("is") || w.ends_with("ous") {
        return w;
    }
    if let Some(stem) = w.strip_suffix("ies")
        && stem.len() >= 2
    {
        return format!("{stem}y");
    }
    for suffix in ["sses", "shes", "ches", "xes", "zzes"] {
        if w.ends_with(suffix) {
            return w[..w.len() - 2].to_string();
        }
    }
    w[..w.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concept_word_makes_plurals_singular() {
        for (a, b) in [
            ("dogs", "dog"),
            ("Dogs", "dog"),
            ("men", "man"),
            ("women", "woman"),
            ("children", "child"),
            ("people", "person"),
            ("benches", "bench"),
            ("dresses", "dress"),
            ("boxes", "box"),
            ("puppies", "puppy"),
            ("horses", "horse"),
            ("leaves", "leaf"),
            ("buses", "bus"),
            ("waves", "wave"),
            ("girls", "girl"),
        ] {
            assert_eq!(concept_word(a), b, "{a}");
        }
    }

    #[test]
    fn concept_word_keeps_words_that_only_look_plural() {
        for w in [
            "grass", "dress", "bus", "shorts", "jeans", "glasses", "is", "his", "tennis", "dog",
            "running", "red", "famous", "cactus", "gas",
        ] {
            assert_eq!(concept_word(w), w);
        }
    }

    fn tiny() -> ConceptDetector {
        let info = ConceptInfo {
            version: CONCEPT_VERSION,
            words: vec!["dog".into(), "man".into()],
            dim: 3,
            feature: FEATURE_POOLED.into(),
            encoder: "test".into(),
            train_photos: 1,
            dev_photos: 0,
            dev_map: None,
            dev_ap: vec![],
            train_counts: vec![],
            trained_on: "none".into(),
            settings: serde_json::Value::Null,
        };
        ConceptDetector::new(
            info,
            vec![0.0; 3],
            vec![1.0; 3],
            vec![1.0, 0.0, 0.0, 0.0, -2.0, 0.0],
            vec![0.0, 0.5],
        )
        .expect("a valid detector")
    }

    #[test]
    fn probabilities_are_the_logistic_of_the_logits() {
        let d = tiny();
        let p = d.probabilities(&[2.0, 1.0, 0.0]);
        assert!((p[0] - sigmoid(2.0)).abs() < 1e-6);
        assert!((p[1] - sigmoid(-1.5)).abs() < 1e-6);
        assert_eq!(d.index_of("Dogs"), Some(0));
        assert_eq!(d.index_of("men"), Some(1));
        assert_eq!(d.index_of("cat"), None);
        let one = d.probability_of(&[2.0, 1.0, 0.0], "men").expect("man");
        assert!((one - p[1]).abs() < 1e-6);
    }

    #[test]
    fn wrong_sizes_are_refused() {
        let d = tiny();
        let r = ConceptDetector::new(
            d.info.clone(),
            vec![0.0; 3],
            vec![1.0; 3],
            vec![1.0; 5],
            vec![0.0; 2],
        );
        assert!(r.is_err());
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..21).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..21).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((crate::decoder::linalg::dot(&a, &b) - plain).abs() < 1e-3);
    }
}
