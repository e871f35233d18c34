//! The pieces the command line and the app share above the model layers: where the shipped
//! models are, a loaded encoder + decoder pair that captions images ([`Captioner`]), turning an
//! imported dataset and its cached features into training data, and evaluation on a split.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::dataset::{self, Cleaning, Dataset, Split, Vocab};
pub use crate::decoder::geometric_mean_probability;
use crate::decoder::{self, Caption};
use crate::encoder::{Config, Encoder, EncoderError, ImageLoadError, PreprocessedImage};
use crate::features::{self, FeatureCache};
use crate::model_dir::{self, LoadedModel, ModelDirError};
use crate::train::{ModelInfo, TrainData};

/// Loads the shipped encoder.
pub fn load_encoder(device: &Device) -> Result<Encoder, EncoderError> {
    Encoder::load(&crate::paths::encoder_weights(), Config::lite0(), device)
}

/// The compute device: CUDA when built with the `cuda` feature and a GPU is present, else the
/// CPU. The note says why the CPU is used when a GPU build finds no GPU.
pub fn pick_device() -> (Device, Option<String>) {
    #[cfg(feature = "cuda")]
    {
        match Device::new_cuda(0) {
            Ok(d) => return (d, None),
            Err(e) => {
                // candle's error text carries a backtrace: the first line says what failed.
                let text = e.to_string();
                let why = text.lines().next().unwrap_or("unknown error").trim();
                return (
                    Device::Cpu,
                    Some(format!("no usable CUDA GPU ({why}); running on the CPU")),
                );
            }
        }
    }
    #[allow(unreachable_code)]
    (Device::Cpu, None)
}

/// A short name of a device for people.
pub fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => format!(
            "CPU ({} threads)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        Device::Cuda(_) => "CUDA GPU".to_string(),
        Device::Metal(_) => "Metal GPU".to_string(),
    }
}

/// Errors of loading or running a captioner.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Model(#[from] ModelDirError),
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    #[error(transparent)]
    Image(#[from] ImageLoadError),
    #[error(transparent)]
    Decoder(#[from] decoder::DecoderError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(
        "{model}: the model was trained on features of encoder `{wanted}`, but the encoder here is `{have}`"
    )]
    EncoderMismatch {
        model: PathBuf,
        wanted: String,
        have: String,
    },
    #[error(transparent)]
    Instances(#[from] crate::eval::chair::InstancesError),
    #[error("{0}")]
    Other(String),
}

/// How to decode.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecodeOptions {
    /// Beam width; 1 is greedy decoding.
    pub beam: usize,
    /// Longest caption in words.
    pub max_len: usize,
    /// Repeated n-gram blocking and length normalisation.
    #[serde(default)]
    pub search: decoder::SearchOptions,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            beam: 3,
            max_len: 30,
            search: decoder::SearchOptions::default(),
        }
    }
}

/// One word of a caption with the model's probability for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredWord {
    pub word: String,
    pub probability: f32,
}

/// Another caption of the beam, with its length-normalised log-probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredCaption {
    pub text: String,
    pub score: f32,
}

/// A caption of one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaptionResult {
    pub text: String,
    pub words: Vec<ScoredWord>,
    /// The beam's captions, best first (the first is `text`).
    pub alternatives: Vec<ScoredCaption>,
    /// Encode + decode time in milliseconds.
    pub millis: f64,
    /// The calibrated probability that the caption is acceptable (0..1); `None` when the model
    /// folder has no calibration (see [`Captioner::trust_note`]).
    #[serde(default)]
    pub confidence: Option<f32>,
    /// How much the photo looks like the model's training photos (0..1: the share of dev
    /// photos no more familiar); `None` without familiarity data.
    #[serde(default)]
    pub familiarity: Option<f32>,
    /// The caption should be checked by a person; `None` without calibration.
    #[serde(default)]
    pub needs_review: Option<bool>,
    /// Why it needs review (`review_reason.warning()` words it).
    #[serde(default)]
    pub review_reason: Option<crate::trust::ReviewReason>,
    /// Specifics of the reason for people (which animal the caption names and which the
    /// image classifier sees), when there are any.
    #[serde(default)]
    pub review_detail: Option<String>,
    /// Plain-word keywords: from the ImageNet classes above the calibrated threshold, then
    /// the caption's content words.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where the decoder looked for each word of `text` (attention decoders only; `None` for
    /// the merge and inject decoders, which see the photo as one pooled vector).
    #[serde(default)]
    pub attention: Option<decoder::AttentionMaps>,
}

impl CaptionResult {
    /// The geometric mean of the word probabilities (see [`geometric_mean_probability`]).
    pub fn word_probability_geomean(&self) -> f32 {
        geometric_mean_probability(self.words.iter().map(|w| w.probability))
    }

    /// The caption needs review for a reason other than its confidence (an unfamiliar photo,
    /// the wrong animal): the confidence may still be high, as the calibration never saw
    /// such photos, and the warning overrules it.
    pub fn confidence_overruled(&self) -> bool {
        self.needs_review == Some(true)
            && self.review_reason != Some(crate::trust::ReviewReason::LowConfidence)
    }
}

/// An encoder and a caption model that belong together.
pub struct Captioner {
    pub encoder: Encoder,
    pub model: LoadedModel,
    pub model_dir: PathBuf,
    /// Familiarity, calibration and tags of the model (those its folder has).
    pub trust: crate::trust::Trust,
    /// Why captions lack a confidence, if they do (no calibration, or it could not be read).
    pub trust_note: Option<String>,
}

impl Captioner {
    /// Loads the caption model in `model_dir` and the shipped encoder, and checks that the
    /// model was trained on this encoder's features.
    pub fn load(model_dir: &Path, device: &Device) -> Result<Captioner, PipelineError> {
        let model = model_dir::load_model(model_dir, device)?;
        let encoder = load_encoder(device)?;
        Captioner::new(encoder, model, model_dir)
    }

    /// Pairs an already loaded encoder with a model.
    pub fn new(
        encoder: Encoder,
        model: LoadedModel,
        model_dir: &Path,
    ) -> Result<Captioner, PipelineError> {
        let wanted = &model.config.encoder_id;
        if !wanted.is_empty() && wanted != encoder.id() {
            return Err(PipelineError::EncoderMismatch {
                model: model_dir.to_path_buf(),
                wanted: wanted.clone(),
                have: encoder.id().to_string(),
            });
        }
        let dim = model.decoder.config().feature_dim;
        if dim != encoder.feature_dim() {
            return Err(PipelineError::Other(format!(
                "{}: the model expects {dim}-d features, the encoder gives {}",
                model_dir.display(),
                encoder.feature_dim()
            )));
        }
        // A model without (or with unreadable) trust files still captions; the note says so.
        let (mut trust, problems) = crate::trust::Trust::load(model_dir, encoder.weights_path());
        let trust_note = if problems.is_empty() {
            trust.note()
        } else {
            // A damaged trust file: captions come without a confidence, and say why.
            trust.calibration = None;
            let why = problems
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            let what_to_do = if why.contains("captioner calibrate") {
                ""
            } else {
                " (run `captioner calibrate` again)"
            };
            Some(format!(
                "no confidence for this model's captions: {why}{what_to_do}"
            ))
        };
        trust.set_vocab(&model.vocab);
        Ok(Captioner {
            encoder,
            model,
            model_dir: model_dir.to_path_buf(),
            trust,
            trust_note,
        })
    }

    /// Captions one preprocessed image.
    pub fn caption_image(
        &self,
        image: PreprocessedImage,
        options: &DecodeOptions,
    ) -> Result<CaptionResult, PipelineError> {
        let started = Instant::now();
        let out = self.encoder.encode(&[image])?;
        let input = self
            .decoder_inputs(&out)?
            .into_iter()
            .next()
            .ok_or_else(|| PipelineError::Other("the encoder returned no features".into()))?;
        let mut result = self.caption_features(&input, options)?;
        result.millis = started.elapsed().as_secs_f64() * 1e3;
        Ok(result)
    }

    /// What the caption model reads of each encoded image: the pooled feature, or, for an
    /// attention decoder, the feature map before pooling (row-major `[rows, cols, dim]`).
    pub fn decoder_inputs(
        &self,
        out: &crate::encoder::EncoderOutput,
    ) -> Result<Vec<Vec<f32>>, PipelineError> {
        let cfg = self.model.decoder.config();
        let t = if cfg.kind == decoder::DecoderKind::Attention {
            let map = out.feature_map.to_dtype(candle_core::DType::F32)?;
            let (n, rows, cols, dim) = map.dims4()?;
            if rows * cols * dim != cfg.input_dim() {
                return Err(PipelineError::Other(format!(
                    "{}: the model attends over {} cells of {} values, the encoder gives a {rows}x{cols}x{dim} map",
                    self.model_dir.display(),
                    cfg.cells(),
                    cfg.feature_dim
                )));
            }
            map.reshape((n, rows * cols * dim))?
        } else {
            out.pooled.to_dtype(candle_core::DType::F32)?
        };
        Ok(t.to_device(&Device::Cpu)?.to_vec2::<f32>()?)
    }

    /// Whether the model reads feature maps (an attention decoder) rather than pooled features.
    pub fn wants_spatial(&self) -> bool {
        self.model.decoder.config().kind == decoder::DecoderKind::Attention
    }

    /// Captions an image file.
    pub fn caption_file(
        &self,
        path: &Path,
        options: &DecodeOptions,
    ) -> Result<CaptionResult, PipelineError> {
        let started = Instant::now();
        let image = self.encoder.preprocess_file(path)?;
        let mut result = self.caption_image(image, options)?;
        result.millis = started.elapsed().as_secs_f64() * 1e3;
        Ok(result)
    }

    /// Captions from one image's decoder input ([`Captioner::decoder_inputs`]: the pooled
    /// feature, `feature_dim` values, or an attention decoder's feature map).
    pub fn caption_features(
        &self,
        features: &[f32],
        options: &DecodeOptions,
    ) -> Result<CaptionResult, PipelineError> {
        let t = Tensor::from_slice(features, (1, features.len()), self.model.decoder.device())?;
        self.caption_tensor(&t, &self.pooled_of(features), options)
    }

    /// The pooled feature of a decoder input, which the trust figures read: the input itself,
    /// or an attention decoder's map averaged over its cells.
    pub fn pooled_of(&self, features: &[f32]) -> Vec<f32> {
        let cfg = self.model.decoder.config();
        if cfg.kind == decoder::DecoderKind::Attention && features.len() == cfg.input_dim() {
            let f = cfg.feature_dim;
            let mut mean = vec![0.0f32; f];
            for cell in features.chunks_exact(f) {
                for (m, x) in mean.iter_mut().zip(cell) {
                    *m += x;
                }
            }
            let n = cfg.cells() as f32;
            mean.iter_mut().for_each(|m| *m /= n);
            mean
        } else {
            features.to_vec()
        }
    }

    /// Captions many images' decoder inputs with one batched beam search
    /// ([`CaptionStream`], [`CAPTION_BATCH`] photos in flight): the same results as
    /// [`Captioner::caption_features`] on each, in order, several times faster.
    pub fn caption_many(
        &self,
        features: &[&[f32]],
        options: &DecodeOptions,
    ) -> Result<Vec<CaptionResult>, PipelineError> {
        let mut stream = self.stream(options)?;
        let mut out: Vec<Option<CaptionResult>> = vec![None; features.len()];
        let mut next = 0;
        while next < features.len() || stream.in_flight() > 0 {
            while next < features.len() && stream.in_flight() < CAPTION_BATCH {
                stream.push(next, features[next])?;
                next += 1;
            }
            for (id, result) in stream.step()? {
                out[id] = Some(result?);
            }
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| PipelineError::Other("a photo got no caption".into())))
            .collect()
    }

    /// A batched caption search to push photos into and take captions out of as they finish
    /// (the folder pipeline keeps it fed while the encoder works on the next photos).
    pub fn stream(&self, options: &DecodeOptions) -> Result<CaptionStream<'_>, PipelineError> {
        Ok(CaptionStream {
            captioner: self,
            search: decoder::BatchSearch::new(
                &self.model.decoder,
                options.beam.max(1),
                options.max_len,
                &options.search,
            )?,
            pooled: HashMap::new(),
        })
    }

    /// Greedy captions of many decoder inputs at once (`n * input_dim` values), by the
    /// batched search with a beam of one.
    pub fn greedy_many(
        &self,
        features: &[f32],
        options: &DecodeOptions,
    ) -> Result<Vec<Vec<String>>, PipelineError> {
        let dim = self.model.decoder.config().input_dim();
        let device = self.model.decoder.device();
        let inputs = features
            .chunks_exact(dim.max(1))
            .map(|f| Tensor::from_slice(f, (1, dim), device))
            .collect::<Result<Vec<_>, _>>()?;
        let captions = decoder::beam_search_many(
            &self.model.decoder,
            &inputs,
            1,
            options.max_len,
            &options.search,
            3 * CAPTION_BATCH,
        )?;
        Ok(captions
            .iter()
            .map(|c| c.first().map(|c| self.words(&c.tokens)).unwrap_or_default())
            .collect())
    }

    fn caption_tensor(
        &self,
        input: &Tensor,
        feature: &[f32],
        options: &DecodeOptions,
    ) -> Result<CaptionResult, PipelineError> {
        let pooled = input;
        let captions: Vec<Caption> = if options.beam <= 1 {
            decoder::greedy_with_options(
                &self.model.decoder,
                pooled,
                options.max_len,
                &options.search,
            )?
        } else {
            decoder::beam_search_with_options(
                &self.model.decoder,
                pooled,
                options.beam,
                options.max_len,
                &options.search,
            )?
        };
        self.result_from(&captions, feature)
    }

    /// The caption result of a search's captions (best first) of the photo with pooled
    /// `feature`: words, alternatives, attention maps and trust figures.
    fn result_from(
        &self,
        captions: &[Caption],
        feature: &[f32],
    ) -> Result<CaptionResult, PipelineError> {
        let best = captions
            .first()
            .ok_or_else(|| PipelineError::Other("the decoder returned no caption".into()))?;
        let best_words = self.words(&best.tokens);
        let text = best_words.join(" ");
        let words: Vec<ScoredWord> = best_words
            .into_iter()
            .zip(&best.word_probs)
            .map(|(word, &probability)| ScoredWord { word, probability })
            .collect();
        let mut result = CaptionResult {
            text,
            words,
            alternatives: captions
                .iter()
                .map(|c| ScoredCaption {
                    text: self.words(&c.tokens).join(" "),
                    score: c.score,
                })
                .collect(),
            millis: 0.0,
            confidence: None,
            familiarity: None,
            needs_review: None,
            review_reason: None,
            review_detail: None,
            tags: Vec::new(),
            attention: self.model.decoder.config().attention.and_then(|g| {
                (best.attention.len() == best.tokens.len()).then(|| decoder::AttentionMaps {
                    rows: g.rows,
                    cols: g.cols,
                    words: best.attention.clone(),
                })
            }),
        };
        let a = self.assess(feature, &result);
        result.confidence = a.confidence;
        result.familiarity = a.familiarity;
        result.needs_review = a.needs_review;
        result.review_reason = a.review_reason;
        result.review_detail = a.review_detail;
        result.tags = a.tags;
        Ok(result)
    }

    /// The trust figures (and their signals) of a caption of the photo with pooled `feature`.
    pub fn assess(&self, feature: &[f32], result: &CaptionResult) -> crate::trust::Assessment {
        let words: Vec<(String, f32)> = result
            .words
            .iter()
            .map(|w| (w.word.clone(), w.probability))
            .collect();
        let alternatives: Vec<String> =
            result.alternatives.iter().map(|a| a.text.clone()).collect();
        self.trust.assess(feature, &words, &alternatives)
    }

    fn words(&self, tokens: &[u32]) -> Vec<String> {
        tokens
            .iter()
            .map(|&t| {
                self.model
                    .vocab
                    .get(t as usize)
                    .cloned()
                    .unwrap_or_else(|| decoder::SPECIAL_WORDS[3].to_string())
            })
            .collect()
    }
}

/// Photos in flight in [`Captioner::caption_many`] and the folder pipeline: 16 photos at
/// beam 3 make the per-step products about 40 rows, enough to be compute-bound.
pub const CAPTION_BATCH: usize = 16;

/// A photo whose search ended: its id and its result.
pub type Finished = (usize, Result<CaptionResult, PipelineError>);

/// A batched caption search ([`Captioner::stream`]): push photos' decoder inputs, step, and
/// take each photo's [`CaptionResult`] when its search ends.
pub struct CaptionStream<'a> {
    captioner: &'a Captioner,
    search: decoder::BatchSearch<'a>,
    /// The pooled feature of each photo in flight, for its trust figures.
    pooled: HashMap<usize, Vec<f32>>,
}

impl CaptionStream<'_> {
    /// Starts captioning one photo from its decoder input; `id` comes back with its result.
    pub fn push(&mut self, id: usize, features: &[f32]) -> Result<(), PipelineError> {
        let device = self.captioner.model.decoder.device();
        let t = Tensor::from_slice(features, (1, features.len()), device)?;
        self.search.push(id, &t)?;
        self.pooled.insert(id, self.captioner.pooled_of(features));
        Ok(())
    }

    /// Photos being captioned.
    pub fn in_flight(&self) -> usize {
        self.search.in_flight()
    }

    /// One decoding step for every photo in flight: the photos that are done, each with its
    /// result (in no particular order).
    pub fn step(&mut self) -> Result<Vec<Finished>, PipelineError> {
        let done = self.search.step()?;
        Ok(done
            .into_iter()
            .map(|(id, captions)| {
                let pooled = self.pooled.remove(&id).unwrap_or_default();
                (id, self.captioner.result_from(&captions, &pooled))
            })
            .collect())
    }
}

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

/// Scores of an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub split: String,
    pub images: usize,
    pub beam: usize,
    pub bleu: [f64; 4],
    pub cider_d: f64,
    /// Images skipped (no feature could be computed), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    pub seconds: f64,
    /// How well the calibrated confidence ranks good and bad captions (beam search with a
    /// calibrated model only).
    #[serde(default)]
    pub trust: Option<TrustFigures>,
    /// Object hallucination (CHAIR-s, CHAIR-i, grounded share), over all captions and over
    /// those not flagged for review; `None` only in reports stored before it was measured.
    #[serde(default)]
    pub chair: Option<crate::eval::chair::ChairReport>,
}

/// How well the confidence and needs_review find bad captions (per-photo CIDEr-D below
/// [`crate::trust::calibration::ACCEPTABLE_CIDER`]) on an evaluated split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrustFigures {
    pub bad: usize,
    pub auroc_confidence: Option<f64>,
    pub auroc_word_geomean: Option<f64>,
    pub review: crate::trust::calibration::ReviewFigures,
}

/// Captions every image of `split` and scores the captions against the references.
/// Features come from `cache` (computed and cached first where missing).
pub fn evaluate(
    captioner: &Captioner,
    dataset: &Dataset,
    split: Split,
    cache: &FeatureCache,
    options: &DecodeOptions,
    stop: &std::sync::atomic::AtomicBool,
    on_extract: &mut dyn FnMut(features::ExtractEvent),
) -> Result<EvalReport, PipelineError> {
    let started = Instant::now();
    let entries: Vec<&dataset::ImageEntry> = dataset.split(split).collect();
    if entries.is_empty() {
        return Err(PipelineError::Other(format!(
            "{}: the dataset has no {} split",
            dataset.root.display(),
            split.name()
        )));
    }
    let paths: Vec<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    let spatial = captioner.wants_spatial();
    let report = features::extract(
        &captioner.encoder,
        cache,
        &paths,
        &features::ExtractOptions {
            spatial,
            ..features::ExtractOptions::default()
        },
        stop,
        on_extract,
    )
    .map_err(|e| PipelineError::Other(e.to_string()))?;
    let cached: Vec<Option<Vec<f32>>> = if spatial {
        features::load_cached_spatial(cache, &paths)
            .into_iter()
            .map(|m| m.map(|m| m.to_f32()))
            .collect()
    } else {
        features::load_cached(cache, &paths)
    };
    let mut hyps = Vec::new();
    let mut refs = Vec::new();
    let mut skipped = report.failed.clone();
    let mut inputs: Vec<Vec<f32>> = Vec::new();
    // The objects in each captioned photo: those its references mention, and a COCO dataset's
    // instance categories where it has `instances_*.json`.
    let instances = match dataset.layout {
        dataset::Layout::Coco => crate::eval::chair::instance_categories(&dataset.caption_files)?,
        _ => None,
    };
    let mut truths = Vec::new();
    for (entry, feature) in entries.iter().zip(cached) {
        let Some(feature) = feature else {
            if !skipped.iter().any(|(p, _)| p == &entry.path) {
                skipped.push((entry.path.clone(), "no feature in the cache".into()));
            }
            continue;
        };
        inputs.push(feature);
        let mut truth = crate::eval::chair::objects_of_references(&entry.captions);
        if let Some(found) = instances
            .as_ref()
            .and_then(|i| crate::eval::chair::instances_of(i, &entry.name))
        {
            truth.extend(found);
        }
        truths.push(truth);
        refs.push(entry.captions.clone());
    }
    // (confidence, word geomean, needs_review) of each beam-searched caption.
    let mut trust_rows: Vec<(Option<f32>, f32, Option<bool>)> = Vec::new();
    if options.beam <= 1 {
        for words in captioner.greedy_many(&inputs.concat(), options)? {
            hyps.push(words.join(" "));
        }
    } else {
        let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        for c in captioner.caption_many(&views, options)? {
            trust_rows.push((c.confidence, c.word_probability_geomean(), c.needs_review));
            hyps.push(c.text);
        }
    }
    let scores = crate::eval::evaluate(&hyps, &refs);
    let trust = trust_figures(&hyps, &refs, &trust_rows);
    let flagged: Option<Vec<bool>> = (trust_rows.len() == hyps.len())
        .then(|| {
            trust_rows
                .iter()
                .map(|r| r.2)
                .collect::<Option<Vec<bool>>>()
        })
        .flatten();
    let chair = crate::eval::chair::ChairReport::measure(
        &hyps,
        &truths,
        flagged.as_deref(),
        if instances.is_some() {
            crate::eval::chair::Truth::ReferencesAndInstances
        } else {
            crate::eval::chair::Truth::References
        },
    );
    Ok(EvalReport {
        split: split.name().to_string(),
        images: hyps.len(),
        beam: options.beam.max(1),
        bleu: scores.bleu,
        cider_d: scores.cider_d,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
        trust,
        chair: Some(chair),
    })
}

fn trust_figures(
    hyps: &[String],
    refs: &[Vec<String>],
    rows: &[(Option<f32>, f32, Option<bool>)],
) -> Option<TrustFigures> {
    if rows.len() != hyps.len() || rows.iter().any(|r| r.0.is_none() || r.2.is_none()) {
        return None;
    }
    let h: Vec<Vec<String>> = hyps.iter().map(|t| crate::eval::tokenize(t)).collect();
    let r: Vec<Vec<Vec<String>>> = refs
        .iter()
        .map(|rs| rs.iter().map(|t| crate::eval::tokenize(t)).collect())
        .collect();
    let cider = crate::eval::cider_d_scores(&h, &r).per_image;
    let good: Vec<bool> = cider
        .iter()
        .map(|c| *c >= crate::trust::calibration::ACCEPTABLE_CIDER)
        .collect();
    let conf: Vec<f32> = rows.iter().map(|r| r.0.unwrap_or(0.0)).collect();
    let geo: Vec<f32> = rows.iter().map(|r| r.1).collect();
    let flagged: Vec<bool> = rows.iter().map(|r| r.2.unwrap_or(false)).collect();
    Some(TrustFigures {
        bad: good.iter().filter(|g| !**g).count(),
        auroc_confidence: crate::trust::auroc(&conf, &good),
        auroc_word_geomean: crate::trust::auroc(&geo, &good),
        review: crate::trust::calibration::review_figures(&flagged, &good),
    })
}
