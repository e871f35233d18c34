//! How much to trust a caption: familiarity of the photo, a calibrated confidence, a
//! needs-review flag and plain-word tags (issue 12).
//!
//! A model folder may hold `familiarity.safetensors` + `familiarity.json` (written when the
//! model is trained, or by `captioner calibrate`) and `calibration.json` (written by
//! `captioner calibrate`, fitted on a dev split). [`Trust::load`] reads what is there; a folder
//! without them still captions, with `confidence: None` and [`Trust::note`] saying why.

pub mod calibration;
pub mod familiarity;
pub mod grounding;
pub mod tags;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use calibration::{Calibration, auroc};
pub use familiarity::Familiarity;
pub use grounding::{CaptionSource, Evidence, Grounding, WordGrounding};
pub use tags::Classifier;

/// Why trust information could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Concepts(#[from] crate::concepts::ConceptError),
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrustError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| TrustError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    crate::files::write_atomic(path, &bytes).map_err(|e| TrustError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrustError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrustError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    serde_json::from_str(&text).map_err(|e| TrustError::File {
        path: path.to_path_buf(),
        message: format!("line {}: {e}", e.line()),
    })
}

// The caption-text helpers live with the rest of caption text (dataset::text), below both
// trust and concepts, so neither imports the other for them.
pub use crate::dataset::text::{STOP_WORDS, add_word_tags, content_words};

/// What a caption's trust is computed from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// ln of the geometric mean of the word probabilities.
    pub log_word_geomean: f32,
    /// ln of the least word probability.
    pub log_word_min: f32,
    /// Familiarity similarity: mean cosine similarity to the nearest training photos
    /// ([`familiarity`]).
    pub similarity: f32,
    /// Mean centred similarity to the nearest training photos by that measure.
    #[serde(default)]
    pub centred_similarity: f32,
    /// CIDEr-D of the caption against the captions of the
    /// [`familiarity::AGREEMENT_NEIGHBOURS`] nearest training photos by centred similarity
    /// (with the training captions' document frequencies).
    pub neighbour_agreement: f32,
    /// Probability mass of the ImageNet classes whose plain words the caption uses.
    pub class_agreement: f32,
    /// The top ImageNet class's probability.
    pub top_class: f32,
    /// Mean overlap of content words between the caption and the beam's other captions.
    pub beam_agreement: f32,
    /// The lowest support ([`grounding`]) of the caption's object words (those naming one of
    /// the 80 COCO categories); 1 when it names none that grounding can check.
    #[serde(default)]
    pub object_support: f32,
    /// The caption names an animal the image classifier does not see, while it sees another
    /// (a rule of its own for needs_review, not one of the calibrated signals).
    #[serde(default)]
    pub animal_mismatch: Option<tags::AnimalMismatch>,
}

impl Signals {
    pub const NAMES: [&'static str; 9] = [
        "log_word_geomean",
        "log_word_min",
        "similarity",
        "centred_similarity",
        "neighbour_agreement",
        "class_agreement",
        "top_class",
        "beam_agreement",
        "object_support",
    ];

    pub fn values(&self) -> [f32; 9] {
        [
            self.log_word_geomean,
            self.log_word_min,
            self.similarity,
            self.centred_similarity,
            self.neighbour_agreement,
            self.class_agreement,
            self.top_class,
            self.beam_agreement,
            self.object_support,
        ]
    }
}

/// Why a caption needs review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// The photo is unlike the photos the model learned from.
    Unfamiliar,
    /// The caption names an animal the image classifier does not see in the photo.
    AnimalMismatch,
    /// The calibrated confidence is low.
    LowConfidence,
}

impl ReviewReason {
    /// A warning for people.
    pub fn warning(self) -> &'static str {
        match self {
            ReviewReason::Unfamiliar => {
                "This photo is unlike the photos this model learned from; its caption is probably wrong."
            }
            ReviewReason::AnimalMismatch => {
                "The caption names an animal that the image classifier does not see in this photo; it is probably wrong."
            }
            ReviewReason::LowConfidence => {
                "The model is unsure of this caption; it is probably wrong. Check it before you use it."
            }
        }
    }
}

/// The trust figures of one caption.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assessment {
    pub confidence: Option<f32>,
    pub familiarity: Option<f32>,
    pub needs_review: Option<bool>,
    pub review_reason: Option<ReviewReason>,
    /// Specifics of the reason, for people (the animal mismatch's names).
    pub review_detail: Option<String>,
    pub tags: Vec<String>,
    /// The part of `tags` the image classifier gave (the first ones); the rest are the
    /// caption's content words.
    pub classifier_tags: Vec<String>,
    pub signals: Signals,
}

/// The trust parts of a caption model (each optional).
#[derive(Clone, Debug, Default)]
pub struct Trust {
    pub familiarity: Option<Familiarity>,
    pub calibration: Option<Calibration>,
    pub classifier: Option<Classifier>,
    /// Caption word -> the ImageNet classes whose tags are that word (with the classifier).
    pub class_index: Option<grounding::ClassIndex>,
    /// The model's concept detector (`concepts.*` in its folder), if it has one.
    pub concepts: Option<crate::concepts::ConceptDetector>,
    /// The concept detector's words, looked up (with the detector).
    pub concept_words: Option<grounding::ConceptWords>,
    /// The caption model's word -> id (see [`Trust::set_vocab`]).
    pub word_ids: std::collections::HashMap<String, u32>,
    /// The caption model's object words (see [`Trust::set_vocab`]).
    pub object_words: Vec<ObjectWord>,
}

/// A word of the caption model's vocabulary that names a thing grounding can check: one of
/// the 80 COCO object categories, or an ImageNet tag.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectWord {
    pub token: u32,
    pub word: String,
    /// The COCO category it names, if it names one.
    pub category: Option<&'static str>,
}

/// ImageNet tag threshold used when the model has no calibration.
pub const DEFAULT_TAG_THRESHOLD: f32 = 0.3;

impl Trust {
    /// Reads the trust files of `model_dir` (those present), and the ImageNet classifier from
    /// the encoder weights with the tag list beside them. Each part is read on its own: one
    /// that cannot be read is left out and its error returned, the others still work.
    pub fn load(model_dir: &Path, encoder_weights: &Path) -> (Trust, Vec<TrustError>) {
        fn keep<T>(r: Result<Option<T>, TrustError>, problems: &mut Vec<TrustError>) -> Option<T> {
            r.unwrap_or_else(|e| {
                problems.push(e);
                None
            })
        }
        let mut problems = Vec::new();
        let tags_file = encoder_weights.parent().map(|d| d.join(tags::TAGS_FILE));
        let classifier = keep(
            match &tags_file {
                Some(t) if t.is_file() => Classifier::load(encoder_weights, t).map(Some),
                _ => Ok(None),
            },
            &mut problems,
        );
        let familiarity = keep(Familiarity::load(model_dir), &mut problems);
        let calibration = keep(Calibration::load(model_dir), &mut problems);
        let class_index = classifier
            .as_ref()
            .map(|c| grounding::ClassIndex::new(c, c.classes()));
        let concepts = keep(
            crate::concepts::ConceptDetector::load(model_dir).map_err(TrustError::from),
            &mut problems,
        );
        let concept_words = concepts
            .as_ref()
            .map(|d| grounding::ConceptWords::new(d.words()));
        (
            Trust {
                familiarity,
                calibration,
                classifier,
                class_index,
                concepts,
                concept_words,
                word_ids: Default::default(),
                object_words: Vec::new(),
            },
            problems,
        )
    }

    /// Sets the caption model's vocabulary (id -> word), for comparing captions with the
    /// stored neighbour captions.
    pub fn set_vocab(&mut self, vocab: &[String]) {
        self.word_ids = vocab
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        self.object_words = vocab
            .iter()
            .enumerate()
            .filter(|(_, w)| !STOP_WORDS.contains(&w.as_str()))
            .filter_map(|(i, w)| {
                let category = grounding::category_of(w);
                let tagged = self
                    .class_index
                    .as_ref()
                    .is_some_and(|c| c.classes_of(w).is_some());
                (category.is_some() || tagged).then(|| ObjectWord {
                    token: i as u32,
                    word: w.clone(),
                    category,
                })
            })
            .collect();
    }

    /// The token biases of grounded decoding for a photo ([`grounding::GroundingParams`]):
    /// a penalty on each object word of the vocabulary the photo shows little sign of, a
    /// bonus for each the image classifier is sure of.
    pub fn token_bias(
        &self,
        evidence: &Evidence,
        params: &grounding::GroundingParams,
    ) -> Vec<crate::decoder::TokenBias> {
        let mut out = Vec::new();
        for o in &self.object_words {
            let mut bias = 0.0;
            if o.category.is_some()
                && self
                    .support(evidence, &o.word)
                    .is_some_and(|s| s < grounding::WEAK_BELOW)
            {
                bias -= params.penalty;
            }
            if o.category.is_some_and(|c| c != "person")
                && let Some(index) = &self.class_index
                && index
                    .mass(&o.word, &evidence.classes)
                    .is_some_and(|m| m >= params.bonus_sure)
            {
                bias += params.bonus;
            }
            if bias != 0.0 {
                out.push(crate::decoder::TokenBias {
                    token: o.token,
                    bias,
                });
            }
        }
        out
    }

    /// The lowest support of the object words ([`Trust::is_object_word`]) of a caption
    /// (`None` when it has none that a source knows).
    pub fn lowest_object_support(&self, evidence: &Evidence, words: &[String]) -> Option<f32> {
        words
            .iter()
            .filter(|w| self.is_object_word(w))
            .filter_map(|w| self.support(evidence, w))
            .min_by(f32::total_cmp)
    }

    /// Whether a caption word names one of the 80 COCO object categories (the objects
    /// hallucination is measured on, [`crate::eval::chair`]).
    pub fn is_object_word(&self, word: &str) -> bool {
        !STOP_WORDS.contains(&word) && grounding::category_of(word).is_some()
    }

    /// Says what is missing, if anything.
    pub fn note(&self) -> Option<String> {
        match (&self.calibration, &self.familiarity) {
            (Some(_), Some(_)) if self.classifier.is_none() => Some(format!(
                "the ImageNet tag list ({}) is missing beside the encoder weights: captions have no confidence or review flag",
                tags::TAGS_FILE
            )),
            (Some(_), Some(_)) => None,
            (None, _) => Some(
                "this model is not calibrated: captions have no confidence or review flag (run `captioner calibrate DATASET --model DIR`)"
                    .into(),
            ),
            (Some(_), None) => Some(
                "this model has no familiarity data: captions have no confidence or review flag (run `captioner calibrate DATASET --model DIR`)"
                    .into(),
            ),
        }
    }

    /// The signals of a caption (`words`: the caption's words and probabilities; `alternatives`:
    /// the beam's captions; `evidence`: what the classifier and the concept detector see).
    pub fn signals(
        &self,
        feature: &[f32],
        words: &[(String, f32)],
        alternatives: &[String],
        evidence: &Evidence,
    ) -> Signals {
        let class_probs = (self.classifier.is_some() && !evidence.classes.is_empty())
            .then_some(evidence.classes.as_slice());
        let probs: Vec<f32> = words.iter().map(|w| w.1).collect();
        let geo = crate::decoder::geometric_mean_probability(probs.iter().copied());
        let min = probs.iter().copied().fold(1.0f32, f32::min);
        let caption: Vec<&str> = words.iter().map(|w| w.0.as_str()).collect();
        let content = content_words(caption.iter().copied());
        let mut s = Signals {
            log_word_geomean: geo.max(1e-6).ln(),
            log_word_min: min.max(1e-6).ln(),
            beam_agreement: beam_agreement(&content, alternatives),
            object_support: {
                let words: Vec<String> = caption.iter().map(|w| w.to_string()).collect();
                self.lowest_object_support(evidence, &words).unwrap_or(1.0)
            },
            ..Signals::default()
        };
        if let Some(f) = &self.familiarity {
            let nb = match &evidence.neighbours {
                Some(nb) => nb.clone(),
                None => f.neighbours(feature),
            };
            s.similarity = nb.similarity;
            s.centred_similarity = nb.centred_similarity;
            let unk = self.word_ids.get("<unk>").copied().unwrap_or(u32::MAX);
            let ids: Vec<u32> = caption
                .iter()
                .map(|w| self.word_ids.get(*w).copied().unwrap_or(unk))
                .collect();
            s.neighbour_agreement = f.neighbour_cider(&ids, &nb.indices);
        }
        if let (Some(c), Some(p)) = (&self.classifier, class_probs) {
            s.animal_mismatch = c.animal_mismatch(&caption, p);
            s.top_class = p.iter().copied().fold(0.0, f32::max);
            let words: HashSet<&str> = content.iter().map(String::as_str).collect();
            s.class_agreement = p
                .iter()
                .enumerate()
                .filter(|(_, q)| **q >= 0.01)
                .filter(|(i, _)| {
                    c.tags(*i)
                        .iter()
                        .any(|t| t.split(' ').any(|w| words.contains(w)))
                })
                .map(|(_, q)| q)
                .sum::<f32>()
                .min(1.0);
        }
        s
    }

    /// What the grounding sources see in the photo with pooled `feature`.
    pub fn evidence(&self, feature: &[f32]) -> Evidence {
        let concepts = self
            .concepts
            .as_ref()
            .filter(|d| d.dim() == feature.len())
            .map(|d| d.probabilities(feature));
        let categories = match (&self.concept_words, &concepts) {
            (Some(w), Some(p)) => w.category_support(p),
            _ => Vec::new(),
        };
        let neighbours = self.familiarity.as_ref().map(|f| f.neighbours(feature));
        let unfamiliar = match (&neighbours, &self.calibration) {
            (Some(n), Some(c)) => n.similarity < c.unfamiliar_below,
            _ => false,
        };
        Evidence {
            unfamiliar,
            neighbours,
            classes: self
                .classifier
                .as_ref()
                .map(|c| c.probabilities(feature))
                .unwrap_or_default(),
            concepts,
            categories,
        }
    }

    /// How well the photo (its `evidence`) supports `word` (see [`grounding`]); `None` when
    /// no source knows the word.
    pub fn support(&self, evidence: &Evidence, word: &str) -> Option<f32> {
        let classes = self
            .class_index
            .as_ref()
            .filter(|_| !evidence.classes.is_empty())
            .and_then(|index| index.mass(word, &evidence.classes));
        let concept = match (&self.concept_words, &evidence.concepts) {
            (Some(words), Some(probs)) => words.index_of(word).and_then(|i| probs.get(i).copied()),
            _ => None,
        };
        let category = if evidence.categories.is_empty() {
            None
        } else {
            grounding::category_of(word).and_then(|c| {
                evidence
                    .categories
                    .iter()
                    .find(|(k, _)| *k == c)
                    .map(|(_, p)| *p)
            })
        };
        [classes, concept, category]
            .into_iter()
            .flatten()
            .max_by(f32::total_cmp)
    }

    /// The grounding of each content word of a caption's `words`.
    pub fn ground(&self, evidence: &Evidence, words: &[String]) -> Vec<WordGrounding> {
        grounding::ground_words(words, &mut |w| self.support(evidence, w))
    }

    /// The trust figures of a caption.
    pub fn assess(
        &self,
        feature: &[f32],
        words: &[(String, f32)],
        alternatives: &[String],
    ) -> Assessment {
        self.assess_with(feature, words, alternatives, &self.evidence(feature))
    }

    /// [`Trust::assess`] with the photo's evidence already computed.
    pub fn assess_with(
        &self,
        feature: &[f32],
        words: &[(String, f32)],
        alternatives: &[String],
        evidence: &Evidence,
    ) -> Assessment {
        let class_probs = (self.classifier.is_some()).then_some(evidence.classes.as_slice());
        let signals = self.signals(feature, words, alternatives, evidence);
        let familiarity = self
            .familiarity
            .as_ref()
            .map(|f| f.familiarity(signals.similarity));
        let (confidence, needs_review, review_reason) = match (&self.calibration, &self.familiarity)
        {
            (Some(cal), Some(_)) => {
                let c = cal.confidence(&signals);
                let reason = cal.review(&signals, c);
                (Some(c), Some(reason.is_some()), reason)
            }
            _ => (None, None, None),
        };
        let threshold = self
            .calibration
            .as_ref()
            .map_or(DEFAULT_TAG_THRESHOLD, |c| c.tag_threshold);
        let mut tags: Vec<String> = Vec::new();
        if let (Some(c), Some(p)) = (&self.classifier, class_probs) {
            let mut ranked: Vec<(usize, f32)> = p
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, q)| *q >= threshold)
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            for (i, _) in ranked {
                for t in c.tags(i) {
                    if !tags.contains(t) {
                        tags.push(t.clone());
                    }
                }
            }
        }
        let classifier_tags = tags.clone();
        // A caption flagged as probably wrong lends no words to the tags: only what the
        // image classifier saw is kept then.
        if needs_review != Some(true) {
            add_word_tags(&mut tags, content_words(words.iter().map(|w| w.0.as_str())));
        }
        let review_detail = match review_reason {
            Some(ReviewReason::AnimalMismatch) => {
                signals.animal_mismatch.as_ref().map(|m| m.describe())
            }
            _ => None,
        };
        Assessment {
            confidence,
            familiarity,
            needs_review,
            review_reason,
            review_detail,
            tags,
            classifier_tags,
            signals,
        }
    }
}

fn beam_agreement(content: &[String], alternatives: &[String]) -> f32 {
    let mine: HashSet<&str> = content.iter().map(String::as_str).collect();
    let others: Vec<f32> = alternatives
        .iter()
        .skip(1)
        .map(|a| {
            let theirs: HashSet<String> = content_words(a.split_whitespace()).into_iter().collect();
            let inter = theirs.iter().filter(|w| mine.contains(w.as_str())).count();
            let union = mine.len() + theirs.len() - inter;
            if union == 0 {
                1.0
            } else {
                inter as f32 / union as f32
            }
        })
        .collect();
    if others.is_empty() {
        1.0
    } else {
        others.iter().sum::<f32>() / others.len() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classifier_tags_come_apart_from_the_caption_words() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let empty = tempfile::tempdir().unwrap();
        let (trust, problems) =
            Trust::load(empty.path(), &models.join("efficientnet-lite0.safetensors"));
        assert!(problems.is_empty(), "{problems:?}");
        // The tench ("tench, fish") is sure; the caption adds its own words.
        let mut classes = vec![0.0; 1000];
        classes[0] = 0.9;
        let evidence = Evidence {
            classes,
            ..Evidence::default()
        };
        let words: Vec<(String, f32)> = ["a", "man", "holds", "a", "fish"]
            .iter()
            .map(|w| (w.to_string(), 0.8))
            .collect();
        let a = trust.assess_with(&[0.0; 1280], &words, &[], &evidence);
        assert_eq!(a.classifier_tags, ["tench", "fish"]);
        assert_eq!(a.tags, ["tench", "fish", "man", "holds"]);
    }
}
