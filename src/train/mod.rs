//! Training a caption decoder: whole captions with teacher forcing, Adam with gradient-norm
//! clipping and learning-rate decay on plateau, dev loss and free-running dev BLEU-4 every
//! epoch, early stopping, and exactly resumable checkpoints.
//!
//! The forward and backward passes run in one of two engines ([`Engine`]): the hand-written
//! CPU [`cpu_engine`] (the fast path on the CPU; see `engine.rs` for why and how), or
//! [`candle_engine`], candle's autograd on any device (CPU or CUDA), which every decoder
//! supports through [`Decoder::forward_packed`]. Both compute the same loss and gradients,
//! draw the same dropout masks, and write the same checkpoints, so a run may resume on the
//! other engine. The candle [`Decoder`] is used for decoding.
//!
//! Layout of `out_dir`:
//! - `last/`: the checkpoint after the latest completed epoch, or at the exact step where a
//!   stop request was honoured;
//! - `best/`: the checkpoint of the epoch with the best dev BLEU-4.
//!
//! Both are complete model directories (loadable by [`crate::model_dir::load_model`]) plus
//! `optimizer.safetensors` and `train_state.json`, each written atomically.
//!
//! Determinism: batch order is a function of `seed` and the epoch, dropout masks of `seed`,
//! epoch and step, and every reduction runs in a fixed order, so a run stopped and resumed
//! ends with the same weights, bit for bit, as a run that never stopped (on the same machine
//! and thread count).

pub mod adam;
mod attention_engine;
pub mod batch;
pub mod batches;
pub mod candle_engine;
pub mod checkpoint;
pub mod cpu_engine;
mod engine;
mod layers;
pub mod params;

mod run;

mod summary;

pub use adam::Adam;
pub use batch::{BatchLoss, EngineError, Example, Features, Packed};
pub use candle_engine::{CandleEngine, CandleGrads};
pub use checkpoint::{DataFingerprint, TrainState, load_checkpoint, load_weights, save_checkpoint};
pub use cpu_engine::Engine as CpuEngine;
pub use params::Params;
pub use summary::{LayerSummary, ModelSummary, model_summary};

use crate::decoder::{self, Decoder, DecoderConfig, DecoderError, END, PAD, START};
use crate::model_dir::ModelDirError;
pub use crate::rng::Rng;
use candle_core::{Device, Tensor};
pub use run::{TrainRun, train, train_from};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Name of the latest checkpoint inside `out_dir`.
pub const LAST_DIR: &str = "last";
/// Name of the best checkpoint inside `out_dir`.
pub const BEST_DIR: &str = "best";

/// Which implementation runs the forward and backward passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The CPU engine on a CPU device, candle on a GPU.
    #[default]
    Auto,
    /// The hand-written CPU engine (training runs on the CPU whatever the device).
    Cpu,
    /// Candle's autograd on the training device.
    Candle,
}

impl Engine {
    /// The engine that runs on `device` (`Auto` resolved).
    pub fn resolve(self, device: &Device) -> Engine {
        match self {
            Engine::Auto if device.is_cpu() => Engine::Cpu,
            Engine::Auto => Engine::Candle,
            other => other,
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Auto => "auto",
            Engine::Cpu => "cpu",
            Engine::Candle => "candle",
        })
    }
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Engine::Auto),
            "cpu" => Ok(Engine::Cpu),
            "candle" => Ok(Engine::Candle),
            other => Err(format!(
                "unknown engine {other:?} (expected auto, cpu or candle)"
            )),
        }
    }
}

/// Training hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Epochs to train (a resumed run may raise it to train further).
    pub epochs: usize,
    pub batch_size: usize,
    /// Initial learning rate of Adam.
    pub lr: f32,
    /// Global gradient-norm clipping threshold (0 disables clipping).
    pub clip_norm: f32,
    /// Factor applied to the learning rate after `lr_patience` epochs without a better dev
    /// BLEU-4 (1 disables decay).
    pub lr_decay: f32,
    /// Epochs without improvement before the learning rate is cut (0 disables decay).
    pub lr_patience: usize,
    /// Epochs without improvement before training stops (0 disables early stopping).
    pub early_stop_patience: usize,
    /// Size of the fixed dev subset (the first images of `TrainData::dev_refs`) decoded
    /// greedily each epoch for BLEU-4.
    pub dev_bleu_images: usize,
    /// Longest caption (in words) decoded for dev BLEU and samples.
    pub max_len: usize,
    /// Seeds the initial weights, batch order and dropout.
    pub seed: u64,
    /// Which engine trains (checkpoints of older versions, without it, load as `Auto`).
    pub engine: Engine,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 64,
            lr: 1e-3,
            clip_norm: 5.0,
            lr_decay: 0.5,
            lr_patience: 2,
            early_stop_patience: 5,
            dev_bleu_images: 1000,
            max_len: 30,
            seed: 42,
            engine: Engine::Auto,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("lr = {} (must be positive)", self.lr));
        }
        if !(self.clip_norm.is_finite() && self.clip_norm >= 0.0) {
            return bad(format!("clip_norm = {} (must be >= 0)", self.clip_norm));
        }
        if !(self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return bad(format!("lr_decay = {} (must be in (0, 1])", self.lr_decay));
        }
        if self.dev_bleu_images == 0 {
            return bad("dev_bleu_images must be at least 1".into());
        }
        if self.max_len == 0 {
            return bad("max_len must be at least 1".into());
        }
        Ok(())
    }
}

/// Where a model comes from; written into every checkpoint's `config.json` and `meta.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub encoder_id: String,
    /// The caller's text settings (cleaning mode, minimum count, ...), stored verbatim.
    pub text: serde_json::Value,
    pub dataset: String,
    pub split: String,
}

/// Everything training reads.
#[derive(Clone, Debug, Default)]
pub struct TrainData {
    /// Image features, row-major `[n_images, input_dim]` (the pooled features, or the
    /// attention decoder's feature maps; see [`DecoderConfig::input_dim`]).
    pub features: Vec<f32>,
    /// Training captions: (image index, word ids without START/END).
    pub train: Vec<(usize, Vec<u32>)>,
    /// Dev captions for the teacher-forced dev loss.
    pub dev: Vec<(usize, Vec<u32>)>,
    /// Dev images with their reference captions (as words) for BLEU; the first
    /// `TrainConfig::dev_bleu_images` are decoded.
    pub dev_refs: Vec<(usize, Vec<Vec<String>>)>,
    /// Token id -> word (the vocabulary saved with the model).
    pub id_to_word: Vec<String>,
    /// Images captioned after every epoch to show progress: (image index, display name).
    pub sample_images: Vec<(usize, String)>,
    pub info: ModelInfo,
}

/// Results of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    /// Mean token cross-entropy over the epoch's batches (with dropout).
    pub train_loss: f64,
    /// Mean token cross-entropy on the dev captions (teacher forcing, no dropout).
    pub dev_loss: f64,
    /// Corpus BLEU-4 on the dev subset, beam [`DEV_BEAM`] with the default search options.
    pub dev_bleu4: f64,
    /// BLEU-1..4 of the same captions.
    pub dev_bleu: [f64; 4],
    /// (sample name, its dev caption: beam [`DEV_BEAM`]).
    pub samples: Vec<(String, String)>,
    /// Wall-clock seconds of the epoch (training and evaluation).
    pub seconds: f64,
    /// Estimated seconds for the remaining epochs.
    pub eta_seconds: f64,
    /// Learning rate for the next epoch (after any decay).
    pub lr: f32,
    /// Whether dev BLEU-4 beat every earlier epoch (a new `best/` checkpoint).
    pub improved: bool,
}

/// Progress reports, in order: `Started`, then `Step`s and an `Epoch` per epoch with its
/// `Checkpoint`s, then `Stopped` (stop request) or `Finished`.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainEvent {
    Started {
        total_epochs: usize,
        steps_per_epoch: usize,
        /// 1-based epoch and completed steps in it where this run begins.
        start_epoch: usize,
        start_step: usize,
        train_captions: usize,
        dev_captions: usize,
        summary: ModelSummary,
        /// The engine that runs (`Cpu` or `Candle`, never `Auto`).
        engine: Engine,
    },
    Step {
        /// 1-based.
        epoch: usize,
        /// Steps completed in this epoch (1..=steps_per_epoch).
        step: usize,
        steps_per_epoch: usize,
        /// Mean token loss of this batch.
        loss: f32,
        /// Mean token loss of the epoch so far.
        avg_loss: f32,
        lr: f32,
    },
    Epoch(EpochReport),
    Checkpoint {
        path: PathBuf,
        best: bool,
    },
    /// A stop request was honoured; `resume` continues at this 1-based epoch after `step`
    /// completed steps.
    Stopped {
        epoch: usize,
        step: usize,
    },
    Finished {
        best_epoch: usize,
        best_bleu4: f64,
    },
}

/// What a call to [`train`] achieved.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSummary {
    /// 1-based epoch of the best dev BLEU-4 (0 when no epoch completed).
    pub best_epoch: usize,
    pub best_bleu4: f64,
    /// Completed epochs, over all resumed runs.
    pub epochs_completed: usize,
    /// True when a stop request ended the run (resumable).
    pub stopped: bool,
    pub early_stopped: bool,
    pub history: Vec<EpochReport>,
    pub best_dir: PathBuf,
    pub last_dir: PathBuf,
}

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("invalid training data: {0}")]
    Data(String),
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("training diverged at epoch {epoch}, step {step}: the loss or gradient is not finite")]
    Diverged { epoch: usize, step: usize },
    #[error(transparent)]
    ModelDir(#[from] ModelDirError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Decoder(#[from] DecoderError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

fn check_captions(
    what: &str,
    captions: &[(usize, Vec<u32>)],
    n_images: usize,
    vocab: usize,
) -> Result<(), TrainError> {
    for (k, (img, words)) in captions.iter().enumerate() {
        if *img >= n_images {
            return Err(TrainError::Data(format!(
                "{what} caption {k}: image index {img} out of range ({n_images} images)"
            )));
        }
        if let Some(w) = words
            .iter()
            .find(|&&w| w as usize >= vocab || w == PAD || w == START || w == END)
        {
            return Err(TrainError::Data(format!(
                "{what} caption {k}: word id {w} is a special token or outside the vocabulary of {vocab}"
            )));
        }
    }
    Ok(())
}

impl TrainData {
    /// Number of images (rows of `features`).
    pub fn n_images(&self, feature_dim: usize) -> usize {
        self.features.len() / feature_dim.max(1)
    }

    /// Checks the data against a decoder configuration.
    pub fn validate(&self, cfg: &DecoderConfig) -> Result<(), TrainError> {
        let f = cfg.input_dim();
        if self.features.is_empty() || !self.features.len().is_multiple_of(f) {
            return Err(TrainError::Data(format!(
                "{} feature values do not form rows of {f}",
                self.features.len()
            )));
        }
        if let Some(i) = self.features.iter().position(|x| !x.is_finite()) {
            return Err(TrainError::Data(format!(
                "image {} has a non-finite feature value",
                i / f
            )));
        }
        let n = self.n_images(f);
        let v = cfg.vocab_size;
        if self.train.is_empty() {
            return Err(TrainError::Data("no training captions".into()));
        }
        if self.dev.is_empty() || self.dev_refs.is_empty() {
            return Err(TrainError::Data(
                "no dev captions (dev loss and BLEU need a dev split)".into(),
            ));
        }
        check_captions("train", &self.train, n, v)?;
        check_captions("dev", &self.dev, n, v)?;
        if let Some((img, _)) = self.dev_refs.iter().find(|(i, _)| *i >= n) {
            return Err(TrainError::Data(format!(
                "dev reference image {img} out of range ({n} images)"
            )));
        }
        if let Some((img, _)) = self.sample_images.iter().find(|(i, _)| *i >= n) {
            return Err(TrainError::Data(format!(
                "sample image {img} out of range ({n} images)"
            )));
        }
        if self.id_to_word.len() != v {
            return Err(TrainError::Data(format!(
                "vocabulary has {} words, the decoder expects {v}",
                self.id_to_word.len()
            )));
        }
        Ok(())
    }

    fn fingerprint(&self, cfg: &DecoderConfig) -> DataFingerprint {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |x: u64| {
            for b in x.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for (img, words) in &self.train {
            mix(*img as u64);
            mix(words.len() as u64);
            for &w in words {
                mix(u64::from(w));
            }
        }
        DataFingerprint {
            n_images: self.n_images(cfg.input_dim()),
            train_captions: self.train.len(),
            dev_captions: self.dev.len(),
            train_hash: h,
        }
    }

    fn features_of(
        &self,
        images: &[usize],
        dim: usize,
        device: &Device,
    ) -> Result<Tensor, TrainError> {
        let mut rows = Vec::with_capacity(images.len() * dim);
        for &i in images {
            rows.extend_from_slice(&self.features[i * dim..(i + 1) * dim]);
        }
        Ok(Tensor::from_vec(rows, (images.len(), dim), device)?)
    }

    fn words(&self, tokens: &[u32]) -> Vec<String> {
        tokens
            .iter()
            .map(|&t| {
                self.id_to_word
                    .get(t as usize)
                    .cloned()
                    .unwrap_or_else(|| decoder::SPECIAL_WORDS[3].to_string())
            })
            .collect()
    }
}

/// The beam width of the per-epoch dev captions: `captioner eval`'s default, so the epoch
/// training keeps is chosen on the figure the documentation reports.
pub const DEV_BEAM: usize = 3;

/// Photos in flight in the per-epoch dev search (beam rows = this x [`DEV_BEAM`]).
const DEV_SEARCH_BATCH: usize = 16;

/// The per-epoch dev captions (as words) for images: beam search with `captioner eval`'s
/// default decoding ([`DEV_BEAM`], n-gram blocking and length normalisation as
/// [`decoder::SearchOptions::default`]), over many photos at once ([`decoder::beam_search_many`],
/// the same captions as one photo at a time).
pub(crate) fn dev_words(
    dec: &Decoder,
    data: &TrainData,
    images: &[usize],
    max_len: usize,
) -> Result<Vec<Vec<String>>, TrainError> {
    let dim = dec.config().input_dim();
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(500) {
        let inputs = chunk
            .iter()
            .map(|&i| data.features_of(&[i], dim, dec.device()))
            .collect::<Result<Vec<_>, _>>()?;
        let found = decoder::beam_search_many(
            dec,
            &inputs,
            DEV_BEAM,
            max_len,
            &decoder::SearchOptions::default(),
            DEV_SEARCH_BATCH,
        )?;
        for captions in found {
            let tokens = captions.first().map(|c| c.tokens.as_slice()).unwrap_or(&[]);
            out.push(data.words(tokens));
        }
    }
    Ok(out)
}

/// Mean teacher-forced token loss over `captions` without dropout.
pub fn dev_loss(
    engine: &mut CpuEngine,
    params: &Params,
    features: Features<'_>,
    captions: &[(usize, Vec<u32>)],
    batch_size: usize,
) -> Result<f64, TrainError> {
    mean_loss(captions, batch_size, &mut |batch| {
        Ok(engine.eval_loss(params, features, batch)?)
    })
}

/// [`dev_loss`] on the candle engine.
pub fn dev_loss_candle(
    engine: &CandleEngine,
    features: Features<'_>,
    captions: &[(usize, Vec<u32>)],
    batch_size: usize,
) -> Result<f64, TrainError> {
    mean_loss(captions, batch_size, &mut |batch| {
        Ok(engine.eval_loss(features, batch)?)
    })
}

/// Mean token loss over `captions` in batches of similar length.
fn mean_loss(
    captions: &[(usize, Vec<u32>)],
    batch_size: usize,
    eval: &mut dyn FnMut(&[Example<'_>]) -> Result<BatchLoss, TrainError>,
) -> Result<f64, TrainError> {
    let mut order: Vec<usize> = (0..captions.len()).collect();
    order.sort_by_key(|&i| captions[i].1.len());
    let mut total = BatchLoss::default();
    for chunk in order.chunks(batch_size.max(1)) {
        let batch: Vec<Example<'_>> = chunk
            .iter()
            .map(|&i| Example {
                image: captions[i].0,
                words: &captions[i].1,
            })
            .collect();
        let l = eval(&batch)?;
        total.sum += l.sum;
        total.tokens += l.tokens;
    }
    Ok(total.mean())
}

/// One engine's weights, optimizer and passes, as the training loop sees them.
trait Backend {
    /// Forward, backward and (when the loss and gradient norm are finite) one clipped Adam
    /// update. Returns the batch loss and the gradient norm before clipping.
    fn train_step(
        &mut self,
        features: Features<'_>,
        batch: &[Example<'_>],
        rng: &mut Rng,
        clip_norm: f32,
    ) -> Result<(BatchLoss, f64), TrainError>;
    fn dev_loss(
        &mut self,
        features: Features<'_>,
        captions: &[(usize, Vec<u32>)],
        batch_size: usize,
    ) -> Result<f64, TrainError>;
    /// A decoder with the current weights on `device` (for dev BLEU and samples).
    fn decoder(&self, device: &Device) -> Result<Decoder, TrainError>;
    /// Hands the host copies of weights and optimizer state to `save`.
    fn with_state(
        &self,
        save: &mut dyn FnMut(&Params, &Adam) -> Result<(), TrainError>,
    ) -> Result<(), TrainError>;
    fn lr(&self) -> f32;
    fn set_lr(&mut self, lr: f32);
    fn adam_step(&self) -> u64;
}

struct CpuBackend {
    engine: CpuEngine,
    params: Params,
    grads: Params,
    adam: Adam,
}

impl Backend for CpuBackend {
    fn train_step(
        &mut self,
        features: Features<'_>,
        batch: &[Example<'_>],
        rng: &mut Rng,
        clip_norm: f32,
    ) -> Result<(BatchLoss, f64), TrainError> {
        let loss =
            self.engine
                .train_step(&self.params, &mut self.grads, features, batch, Some(rng))?;
        let norm = Adam::grad_norm(self.grads.as_slice());
        if loss.sum.is_finite() && norm.is_finite() {
            self.adam.update(
                self.params.as_mut_slice(),
                self.grads.as_slice(),
                Adam::clip_factor(norm, clip_norm),
            );
        }
        Ok((loss, norm))
    }

    fn dev_loss(
        &mut self,
        features: Features<'_>,
        captions: &[(usize, Vec<u32>)],
        batch_size: usize,
    ) -> Result<f64, TrainError> {
        dev_loss(
            &mut self.engine,
            &self.params,
            features,
            captions,
            batch_size,
        )
    }

    fn decoder(&self, device: &Device) -> Result<Decoder, TrainError> {
        Ok(self.params.to_decoder(device)?)
    }

    fn with_state(
        &self,
        save: &mut dyn FnMut(&Params, &Adam) -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        save(&self.params, &self.adam)
    }

    fn lr(&self) -> f32 {
        self.adam.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.adam.lr = lr;
    }

    fn adam_step(&self) -> u64 {
        self.adam.step
    }
}

impl Backend for CandleEngine {
    fn train_step(
        &mut self,
        features: Features<'_>,
        batch: &[Example<'_>],
        rng: &mut Rng,
        clip_norm: f32,
    ) -> Result<(BatchLoss, f64), TrainError> {
        let (loss, grads) = self.backward(features, batch, Some(rng))?;
        let norm = grads.norm()?;
        if loss.sum.is_finite() && norm.is_finite() {
            self.update(&grads, Adam::clip_factor(norm, clip_norm))?;
        }
        Ok((loss, norm))
    }

    fn dev_loss(
        &mut self,
        features: Features<'_>,
        captions: &[(usize, Vec<u32>)],
        batch_size: usize,
    ) -> Result<f64, TrainError> {
        dev_loss_candle(self, features, captions, batch_size)
    }

    fn decoder(&self, device: &Device) -> Result<Decoder, TrainError> {
        if device.is_cpu() {
            // The CPU fast path decodes several times faster than candle ops.
            let (params, _) = self.snapshot()?;
            Ok(params.to_decoder(device)?)
        } else {
            Ok(Decoder::from_tensors(
                self.config(),
                self.decoder().tensors()?,
                device,
            )?)
        }
    }

    fn with_state(
        &self,
        save: &mut dyn FnMut(&Params, &Adam) -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        let (params, adam) = self.snapshot()?;
        save(&params, &adam)
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn adam_step(&self) -> u64 {
        self.step
    }
}
