//! Training data from an imported dataset and its cached features ([`prepare_training_data`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::PipelineError;
use crate::dataset::{self, Cleaning, Dataset, Split, Vocab};
use crate::features::{self, FeatureCache};
use crate::train::{ModelInfo, TrainData};

/// Text settings stored in a model's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextSettings {
    pub cleaning: Cleaning,
    pub min_count: usize,
}

/// Training data built from a dataset and its cached features.
pub struct PreparedData {
    pub data: TrainData,
    pub vocab: Vocab,
    /// Train/dev images left out because they have no cached feature.
    pub without_features: Vec<PathBuf>,
    /// The feature maps' grid (rows, cols) when prepared with spatial features.
    pub grid: Option<(usize, usize)>,
    /// Words of the train and dev captions that are not in the vocabulary (they train as
    /// `<unk>`).
    pub unknown: UnknownWords,
}

/// Caption words outside a vocabulary (for fine-tuning a model on new captions: its
/// vocabulary stays, so new words count as unknown).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnknownWords {
    /// Word occurrences in the captions (train and dev).
    pub total: usize,
    /// Occurrences of words outside the vocabulary.
    pub unknown: usize,
    /// The unknown words with their counts, most frequent first (ties alphabetical).
    pub words: Vec<(String, usize)>,
}

impl UnknownWords {
    /// "37 of 2,410 words (1.5%) are not in the model's vocabulary and count as unknown:
    /// frisbee (12), ..." (the first `shown` words).
    pub fn describe(&self, shown: usize) -> String {
        if self.unknown == 0 {
            return format!(
                "all {} words of the captions are in the model's vocabulary",
                self.total
            );
        }
        let share = 100.0 * self.unknown as f64 / self.total.max(1) as f64;
        let mut s = format!(
            "{} of {} words ({share:.1}%) are not in the model's vocabulary and count as \
             unknown ({} different words",
            self.unknown,
            self.total,
            self.words.len()
        );
        let first: Vec<String> = self
            .words
            .iter()
            .take(shown)
            .map(|(w, n)| format!("{w} {n}"))
            .collect();
        if !first.is_empty() {
            s.push_str(": ");
            s.push_str(&first.join(", "));
            if self.words.len() > shown {
                s.push_str(", ...");
            }
        }
        s.push(')');
        s
    }
}

/// Number of fixed dev images whose captions are shown every epoch.
pub const SAMPLE_IMAGES: usize = 5;

/// Builds training data from the train and dev splits of `dataset`, with the features in
/// `cache` (run [`features::extract`] first). Images without a cached feature are left out
/// and listed.
pub fn prepare_training_data(
    dataset: &Dataset,
    cache: &FeatureCache,
    encoder_id: &str,
    min_count: usize,
) -> Result<PreparedData, PipelineError> {
    prepare_training_data_with(
        dataset,
        cache,
        encoder_id,
        dataset.vocab_with(min_count),
        false,
    )
}

/// [`prepare_training_data`] with a given vocabulary (a model's, when fine-tuning it: caption
/// words outside it become `<unk>` and are counted in [`PreparedData::unknown`]) and, with
/// `spatial`, each image's cached feature map before pooling (row-major `[rows, cols, dim]`,
/// as f32; for the attention decoder) instead of the pooled feature. Every map must have the
/// same grid ([`PreparedData::grid`]).
pub fn prepare_training_data_with(
    dataset: &Dataset,
    cache: &FeatureCache,
    encoder_id: &str,
    vocab: Vocab,
    spatial: bool,
) -> Result<PreparedData, PipelineError> {
    let min_count = vocab.min_count;
    let train_captions: Vec<&String> = dataset
        .images
        .iter()
        .filter(|e| e.split == Split::Train)
        .flat_map(|e| e.captions.iter())
        .collect();
    if train_captions.iter().all(|c| c.trim().is_empty()) {
        return Err(PipelineError::Other(format!(
            "{}: no captions found in the train split ({} photos): there is nothing to learn from",
            dataset.root.display(),
            dataset
                .images
                .iter()
                .filter(|e| e.split == Split::Train)
                .count()
        )));
    }
    if vocab.words.len() <= crate::dataset::text::SPECIALS.len() {
        return Err(PipelineError::Other(format!(
            "{}: no usable words in the train split's {} captions: after cleaning ({}) no word \
             occurs at least {min_count} times (--min-count)",
            dataset.root.display(),
            train_captions.len(),
            dataset.options.cleaning.name()
        )));
    }
    let mut unknown_counts: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    let mut total_words = 0usize;
    let wanted: Vec<&dataset::ImageEntry> = dataset
        .images
        .iter()
        .filter(|e| matches!(e.split, Split::Train | Split::Dev))
        .collect();
    let paths: Vec<PathBuf> = wanted.iter().map(|e| e.path.clone()).collect();
    let mut grid_found = None;
    let cached: Vec<Option<Vec<f32>>> = if spatial {
        let maps = features::load_cached_spatial(cache, &paths);
        let mut grid = None;
        let mut out = Vec::with_capacity(maps.len());
        for (map, path) in maps.into_iter().zip(&paths) {
            out.push(match map {
                Some(m) => {
                    let g = (m.rows, m.cols, m.dim);
                    if *grid.get_or_insert(g) != g {
                        return Err(PipelineError::Other(format!(
                            "{}: its cached feature map is {}x{}x{}, other photos' {:?}",
                            path.display(),
                            m.rows,
                            m.cols,
                            m.dim,
                            grid
                        )));
                    }
                    Some(m.to_f32())
                }
                None => None,
            });
        }
        grid_found = grid.map(|(r, c, _)| (r, c));
        out
    } else {
        features::load_cached(cache, &paths)
    };
    let mut data = TrainData {
        id_to_word: vocab.words.clone(),
        info: ModelInfo {
            encoder_id: encoder_id.to_string(),
            text: serde_json::to_value(TextSettings {
                cleaning: dataset.options.cleaning,
                min_count,
            })
            .unwrap_or(serde_json::Value::Null),
            dataset: dataset
                .root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            split: "train".into(),
        },
        ..TrainData::default()
    };
    let mut without_features = Vec::new();
    let mut n = 0usize;
    for (entry, feature) in wanted.iter().zip(cached) {
        let Some(feature) = feature else {
            without_features.push(entry.path.clone());
            continue;
        };
        let index = n;
        n += 1;
        data.features.extend_from_slice(&feature);
        let cleaned = dataset.cleaned(entry);
        let target = if entry.split == Split::Train {
            &mut data.train
        } else {
            &mut data.dev
        };
        for words in &cleaned {
            if !words.is_empty() {
                let ids = vocab.encode(words);
                total_words += ids.len();
                for (w, &id) in words.iter().zip(&ids) {
                    if id == crate::dataset::text::UNK_ID {
                        *unknown_counts.entry(w.clone()).or_default() += 1;
                    }
                }
                target.push((index, ids));
            }
        }
        if entry.split == Split::Dev {
            let refs: Vec<Vec<String>> = entry
                .captions
                .iter()
                .map(|c| crate::eval::tokenize(c))
                .collect();
            if data.sample_images.len() < SAMPLE_IMAGES {
                data.sample_images.push((index, entry.name.clone()));
            }
            data.dev_refs.push((index, refs));
        }
    }
    let mut words: Vec<(String, usize)> = unknown_counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(PreparedData {
        data,
        vocab,
        without_features,
        unknown: UnknownWords {
            total: total_words,
            unknown: words.iter().map(|(_, n)| n).sum(),
            words,
        },
        grid: grid_found,
    })
}
