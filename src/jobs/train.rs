//! Training a caption model from a dataset folder: import, image features (cached), training
//! data, training with checkpoints. The one sequence both front ends run.

use std::path::PathBuf;

use candle_core::Device;

use super::{CancelToken, Job, JobContext, JobError, JobEvent, Sink};
use crate::dataset::{ImportOptions, Split};
use crate::decoder::{DecoderConfig, DecoderKind};
use crate::encoder::Encoder;
use crate::features::{ExtractOptions, FeatureCache};
use crate::pipeline;
use crate::train::{self, TrainConfig};

/// What to train: the settings of the Train panel and of `captioner train`, with the one set
/// of defaults both use.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    pub dataset_dir: Option<PathBuf>,
    pub import: ImportOptions,
    pub decoder: DecoderKind,
    pub embed_dim: usize,
    pub hidden_dim: usize,
    /// The attention decoder's attention size.
    #[serde(default = "default_attention_dim")]
    pub attention_dim: usize,
    pub dropout: f32,
    pub train: TrainConfig,
    /// The run's folder (checkpoints `last/` and `best/`); `None` makes a new one.
    pub out_dir: Option<PathBuf>,
    /// Fine-tune this model folder instead of training a new model: start from its weights,
    /// keep its decoder, vocabulary and cleaning (caption words outside the vocabulary count
    /// as unknown).
    pub from: Option<PathBuf>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            dataset_dir: None,
            import: ImportOptions::default(),
            decoder: DecoderKind::Merge,
            embed_dim: 256,
            hidden_dim: 256,
            attention_dim: default_attention_dim(),
            dropout: 0.5,
            train: TrainConfig::default(),
            out_dir: None,
            from: None,
        }
    }
}

fn default_attention_dim() -> usize {
    256
}

/// The learning rate fine-tuning starts with (the Train panel's default once a model to start
/// from is chosen): 0.0001, the rate of the measured fine-tuning runs (docs/quality.md) and of
/// the README's `captioner train FOLDER --from default --lr 0.0001`. A new model's rate (0.001
/// or 0.0004) moves a trained model too far from what it knew.
pub const FINE_TUNE_LR: f32 = 1e-4;

/// The epochs a fine-tuning run trains by default, and its early-stop patience (0: never
/// stops early): the README's recipe (`--epochs 3 --patience 0`), measured in
/// docs/quality.md. A new model's 20 epochs would fit a small folder's captions by heart.
pub const FINE_TUNE_EPOCHS: usize = 3;
pub const FINE_TUNE_PATIENCE: usize = 0;

/// Fewer training photos than this, for a new model, get a warning before and during training:
/// the shipped models learned from Flickr8k's 6,000; from a few hundred a new model learns
/// little beyond the most frequent words ("a a a a a"), and fine-tuning a trained model suits
/// such a folder better.
pub const FEW_TRAIN_PHOTOS: usize = 1000;

/// Fewer training photos than this, when fine-tuning, get a warning: a handful of photos
/// barely moves the model, and its dev figure says little.
pub const FEW_FINE_TUNE_PHOTOS: usize = 50;

/// What is worth knowing before training on `train` training photos and `dev` dev photos
/// (`fine_tuning`: starting from a trained model): too little data to learn from, and too few
/// dev photos to calibrate the confidence ([`super::calibrate::MIN_DEV_PHOTOS`]) or to trust
/// the dev BLEU-4. Empty when the data are enough.
pub fn data_warnings(train: usize, dev: usize, fine_tuning: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    let photos = |n: usize| format!("{n} photo{}", if n == 1 { "" } else { "s" });
    if fine_tuning && train < FEW_FINE_TUNE_PHOTOS {
        warnings.push(format!(
            "only {} to train on: fine-tuning on fewer than {FEW_FINE_TUNE_PHOTOS} barely \
             changes the model",
            photos(train)
        ));
    } else if !fine_tuning && train < FEW_TRAIN_PHOTOS {
        warnings.push(format!(
            "only {} to train on: a new model needs thousands (the shipped ones learned from \
             6,000); from fewer than {FEW_TRAIN_PHOTOS} it learns little beyond the commonest \
             words (captions like \"a a a a\"). Fine-tuning a trained model (\"Start from\", \
             --from) suits a small folder better",
            photos(train)
        ));
    }
    let min_dev = super::calibrate::MIN_DEV_PHOTOS;
    if dev < min_dev {
        warnings.push(format!(
            "only {} in the dev split: with fewer than {min_dev} the confidence is not \
             calibrated (captions come without one until `captioner calibrate` adds it), and \
             the dev BLEU-4 of so few photos is a rough figure",
            photos(dev)
        ));
    }
    warnings
}

/// Whether a sample caption shows a model that has not learned to caption yet: empty, one
/// word said three times in a row ("a a a"), or four words or more with fewer than three
/// different ones.
pub fn degenerate_caption(caption: &str) -> bool {
    let words: Vec<&str> = caption.split_whitespace().collect();
    if words.is_empty() {
        return true;
    }
    let repeated = words.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]);
    let mut distinct = words.clone();
    distinct.sort_unstable();
    distinct.dedup();
    repeated || (words.len() >= 4 && distinct.len() < 3)
}

impl TrainSettings {
    /// The decoder the run trains: the base model's when fine-tuning (read from its
    /// `config.json`), else the one chosen.
    pub fn effective_decoder(&self) -> DecoderKind {
        self.from
            .as_deref()
            .and_then(|f| crate::model_dir::read_config(f).ok())
            .map_or(self.decoder, |c| c.decoder.kind)
    }

    /// Chooses the model to start from (`None`: a new model). The learning rate, epochs and
    /// early-stop patience follow where they still hold the defaults of what was chosen
    /// before: [`FINE_TUNE_LR`], [`FINE_TUNE_EPOCHS`] and [`FINE_TUNE_PATIENCE`] for
    /// fine-tuning, the decoder's defaults for a new model; a value set by hand stays.
    pub fn set_from(&mut self, from: Option<PathBuf>) {
        let new = TrainSettings::for_decoder(self.decoder).train;
        let fine = (FINE_TUNE_LR, FINE_TUNE_EPOCHS, FINE_TUNE_PATIENCE);
        let new = (new.lr, new.epochs, new.early_stop_patience);
        let (was, becomes) = match (self.from.is_some(), from.is_some()) {
            (false, true) => (new, fine),
            (true, false) => (fine, new),
            _ => (new, new),
        };
        if self.train.lr == was.0 {
            self.train.lr = becomes.0;
        }
        if self.train.epochs == was.1 {
            self.train.epochs = becomes.1;
        }
        if self.train.early_stop_patience == was.2 {
            self.train.early_stop_patience = becomes.2;
        }
        self.from = from;
    }

    /// The defaults for a new model with `decoder`: [`TrainSettings::default`] (the tutorial's
    /// sizes: LSTM 256, Adam 1e-3) for merge and inject; the attention decoder's are the
    /// issue's PyTorch baseline's (LSTM 512, attention 256, Adam 4e-4).
    pub fn for_decoder(decoder: DecoderKind) -> TrainSettings {
        let mut settings = TrainSettings {
            decoder,
            ..TrainSettings::default()
        };
        if decoder == DecoderKind::Attention {
            settings.hidden_dim = 512;
            settings.train.lr = 4e-4;
        }
        settings
    }

    /// After `decoder` changed from `before` (the Train panel's choice): the LSTM size and
    /// the learning rate that still hold `before`'s defaults move to the new decoder's; values
    /// set by hand stay.
    pub fn decoder_changed(&mut self, before: DecoderKind) {
        let (old, new) = (
            TrainSettings::for_decoder(before),
            TrainSettings::for_decoder(self.decoder),
        );
        if self.hidden_dim == old.hidden_dim {
            self.hidden_dim = new.hidden_dim;
        }
        if self.train.lr == old.train.lr {
            self.train.lr = new.train.lr;
        }
    }

    /// The decoder configuration for a vocabulary of `vocab_size` ids and `feature_dim` features
    /// (per cell of a `grid` (rows, cols) feature map for the attention decoder).
    pub fn decoder_config(
        &self,
        vocab_size: usize,
        feature_dim: usize,
        grid: (usize, usize),
    ) -> DecoderConfig {
        DecoderConfig {
            kind: self.decoder,
            feature_dim,
            embed_dim: self.embed_dim,
            hidden_dim: self.hidden_dim,
            vocab_size,
            dropout: self.dropout,
            attention: (self.decoder == DecoderKind::Attention).then_some(
                crate::decoder::AttentionConfig {
                    rows: grid.0,
                    cols: grid.1,
                    attention_dim: self.attention_dim,
                },
            ),
        }
    }
}

/// Where a training job keeps its files.
#[derive(Clone, Debug)]
pub struct TrainPlaces {
    /// The feature cache's root folder.
    pub cache_dir: PathBuf,
    /// Where new run folders are made when the settings name none.
    pub models_dir: PathBuf,
}

/// Why a training run ended (a failure is the job's error instead).
#[derive(Clone, Debug, PartialEq)]
pub enum EndReason {
    /// Every configured epoch was trained.
    Finished { epochs: usize },
    /// Early stopping: `without_improvement` epochs in a row did not beat the best dev BLEU-4,
    /// reached at epoch `best_epoch`.
    EarlyStopped {
        epochs: usize,
        without_improvement: usize,
        best_epoch: usize,
    },
    /// Stopped on request; the run can be resumed.
    Stopped { epochs: usize },
    /// Stopped on request while computing image features, before training began.
    StoppedInFeatures,
}

impl EndReason {
    /// From what the training engine reports.
    pub fn of(summary: &train::TrainSummary) -> EndReason {
        let epochs = summary.epochs_completed;
        if summary.stopped {
            EndReason::Stopped { epochs }
        } else if summary.early_stopped {
            EndReason::EarlyStopped {
                epochs,
                without_improvement: epochs.saturating_sub(summary.best_epoch),
                best_epoch: summary.best_epoch,
            }
        } else {
            EndReason::Finished { epochs }
        }
    }

    /// The ending in words, for the Train panel and the command line.
    pub fn describe(&self) -> String {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        match *self {
            EndReason::Finished { epochs } => {
                format!("finished all {epochs} epoch{}", plural(epochs))
            }
            EndReason::EarlyStopped {
                epochs,
                without_improvement,
                best_epoch,
            } => format!(
                "stopped early after {epochs} epoch{}: {without_improvement} epoch{} without a \
                 better dev BLEU-4 (best at epoch {best_epoch})",
                plural(epochs),
                plural(without_improvement)
            ),
            EndReason::Stopped { epochs } => format!(
                "stopped by the user after {epochs} complete epoch{}; Resume continues",
                plural(epochs)
            ),
            EndReason::StoppedInFeatures => {
                "stopped by the user while computing image features".to_string()
            }
        }
    }
}

/// How a training job ended.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOutcome {
    pub out_dir: PathBuf,
    pub best_dir: PathBuf,
    pub last_dir: PathBuf,
    /// Stopped on request (during feature extraction or training); `--resume` continues.
    pub stopped: bool,
    /// Stopped before training began (while computing image features).
    pub stopped_in_features: bool,
    pub best_bleu4: f64,
    /// 1-based epoch of the best dev BLEU-4 (0: none).
    pub best_epoch: usize,
    pub epochs_completed: usize,
    pub end: EndReason,
}

/// The device training runs on and the encoder that computes its features.
pub struct TrainResources<'a> {
    pub device: &'a Device,
    pub encoder: &'a Encoder,
}

/// The model a fine-tuning run starts from.
struct BaseModel {
    dir: PathBuf,
    config: crate::model_dir::ModelConfig,
    vocab: crate::dataset::Vocab,
    cleaning: crate::dataset::Cleaning,
    params: train::Params,
    name: String,
}

/// Reads the model in `dir` to fine-tune it on features of `encoder_id`.
fn load_base(dir: &std::path::Path, encoder_id: &str) -> Result<BaseModel, JobError> {
    let what = || format!("reading the model to fine-tune in {}", dir.display());
    let config = crate::model_dir::read_config(dir).job_context(what)?;
    if !config.encoder_id.is_empty() && config.encoder_id != encoder_id {
        return Err(JobError::msg(format!(
            "the model in {} was trained on features of the encoder {}, not of {encoder_id}",
            dir.display(),
            config.encoder_id
        )));
    }
    let words = crate::model_dir::read_vocab(dir, config.decoder.vocab_size).job_context(what)?;
    let text: Option<pipeline::TextSettings> = serde_json::from_value(config.text.clone()).ok();
    let (cleaning, min_count) = text.map_or((crate::dataset::Cleaning::Natural, 1), |t| {
        (t.cleaning, t.min_count)
    });
    let vocab = crate::dataset::Vocab::from_words(words, min_count, cleaning);
    let params = train::load_weights(dir, &config.decoder).job_context(what)?;
    let name = crate::model_dir::read_meta(dir)
        .ok()
        .map(|m| m.display_name(Some(&config.decoder.kind.to_string())))
        .unwrap_or_else(|| dir.display().to_string());
    Ok(BaseModel {
        dir: dir.to_path_buf(),
        config,
        vocab,
        cleaning,
        params,
        name,
    })
}

/// Imports the dataset, computes the missing features, builds the training data and trains
/// (or, with `resume`, continues the run in `settings.out_dir` from its last checkpoint).
/// A cancel stops within one batch, leaving a resumable checkpoint.
pub fn train(
    settings: &TrainSettings,
    places: &TrainPlaces,
    resume: bool,
    resources: TrainResources,
    events: Sink,
    cancel: &CancelToken,
) -> Result<TrainOutcome, JobError> {
    let dir = settings.dataset_dir.clone().ok_or_else(|| {
        JobError::msg("no dataset folder chosen (Dataset panel, or `captioner train DIR`)")
    })?;
    let out_dir = match (&settings.out_dir, resume) {
        (Some(out), _) => out.clone(),
        (None, true) => {
            return Err(JobError::msg(
                "resuming needs the folder of the run to continue (--out DIR)",
            ));
        }
        (None, false) => {
            super::models::new_run_dir(&places.models_dir, &dir, settings.effective_decoder())
        }
    };
    let outcome = |stopped_in_features: bool| TrainOutcome {
        best_dir: out_dir.join(train::BEST_DIR),
        last_dir: out_dir.join(train::LAST_DIR),
        out_dir: out_dir.clone(),
        stopped: true,
        stopped_in_features,
        best_bleu4: 0.0,
        best_epoch: 0,
        epochs_completed: 0,
        end: EndReason::StoppedInFeatures,
    };

    // Fine-tuning starts from a model's weights and keeps its vocabulary and cleaning. A
    // resumed fine-tuning run continues from its checkpoint, with the vocabulary it started with.
    let base = match &settings.from {
        Some(from) if resume => {
            let last = out_dir.join(train::LAST_DIR);
            Some(load_base(
                if last.is_dir() { &last } else { from },
                resources.encoder.id(),
            )?)
        }
        Some(from) => Some(load_base(from, resources.encoder.id())?),
        None => None,
    };
    let mut import = settings.import.clone();
    if let Some(b) = &base {
        if import.cleaning != b.cleaning {
            events(JobEvent::Warning {
                job: Job::Train,
                message: format!(
                    "captions are cleaned the {} way, as for the model being fine-tuned",
                    b.cleaning.name()
                ),
            });
        }
        import.cleaning = b.cleaning;
    }
    let ds = super::import::import(&dir, &import, events, cancel)?;
    report_problems(&ds, events);
    for message in data_warnings(
        ds.split(Split::Train).count(),
        ds.split(Split::Dev).count(),
        base.is_some(),
    ) {
        events(JobEvent::Warning {
            job: Job::Train,
            message,
        });
    }
    let encoder = resources.encoder;
    let cache = FeatureCache::new(&places.cache_dir, encoder.id());
    let paths: Vec<PathBuf> = ds
        .images
        .iter()
        .filter(|e| matches!(e.split, Split::Train | Split::Dev))
        .map(|e| e.path.clone())
        .collect();
    let kind = base
        .as_ref()
        .map_or(settings.decoder, |b| b.config.decoder.kind);
    let spatial = kind == DecoderKind::Attention;
    let report = super::extract::extract(
        encoder,
        &cache,
        &paths,
        &ExtractOptions {
            spatial,
            ..ExtractOptions::default()
        },
        events,
        cancel,
    )?;
    if report.stopped || cancel.is_cancelled() {
        return Ok(outcome(true));
    }
    events(JobEvent::Phase {
        job: Job::Train,
        message: "preparing the training data".into(),
    });
    let vocab = match &base {
        Some(b) => b.vocab.clone(),
        None => ds.vocab_with(settings.import.min_count),
    };
    let prepared = pipeline::prepare_training_data_with(&ds, &cache, encoder.id(), vocab, spatial)
        .job_context(|| format!("preparing training data from {}", dir.display()))?;
    if let Some(b) = &base {
        events(JobEvent::FineTune {
            base: b.name.clone(),
            base_dir: b.dir.clone(),
            unknown: prepared.unknown.clone(),
        });
    }
    if !prepared.without_features.is_empty() {
        events(JobEvent::Warning {
            job: Job::Train,
            message: format!(
                "left out {} image{} without a feature",
                prepared.without_features.len(),
                if prepared.without_features.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ),
        });
    }
    let decoder_cfg = match &base {
        Some(b) => DecoderConfig {
            dropout: settings.dropout,
            ..b.config.decoder.clone()
        },
        None => settings.decoder_config(
            prepared.vocab.len(),
            encoder.feature_dim(),
            prepared.grid.unwrap_or((1, 1)),
        ),
    };
    events(JobEvent::Phase {
        job: Job::Train,
        message: format!(
            "training a {} decoder ({} parameters, vocabulary {}) on {} train / {} dev captions into {}",
            decoder_cfg.kind,
            decoder_cfg.num_params(),
            decoder_cfg.vocab_size,
            prepared.data.train.len(),
            prepared.data.dev.len(),
            out_dir.display()
        ),
    });
    events(JobEvent::TrainStarted {
        out_dir: out_dir.clone(),
        device: pipeline::device_name(resources.device),
        engine: format!("{} engine", settings.train.engine.resolve(resources.device)),
    });
    // Names given to the run's checkpoints before (a resumed run keeps them).
    let checkpoints = [out_dir.join(train::BEST_DIR), out_dir.join(train::LAST_DIR)];
    let names: Vec<Option<String>> = checkpoints
        .iter()
        .map(|d| {
            crate::model_dir::read_meta(d)
                .ok()
                .map(|m| m.name)
                .filter(|n| !n.trim().is_empty())
        })
        .collect();
    let base_dir = base.as_ref().map(|b| b.dir.clone());
    let base_label = base
        .as_ref()
        .map(|b| format!("{} ({})", b.name, b.dir.display()));
    let run = train::TrainRun {
        decoder: &decoder_cfg,
        train: &settings.train,
        data: &prepared.data,
        out_dir: &out_dir,
        resume,
        init: base.map(|b| b.params),
        device: resources.device,
    };
    let summary = train::train_from(run, &mut |e| events(JobEvent::Train(e)), cancel.flag())
        .job_context(|| format!("training into {}", out_dir.display()))?;
    // Familiarity data (issue 12) from the training photos' cached features, so that the new
    // model's captions get a familiarity figure, then the confidence calibrated on dev.
    if !summary.stopped {
        events(JobEvent::Phase {
            job: Job::Train,
            message: "computing the familiarity data".into(),
        });
        match familiarity_of(&prepared.data, encoder.id(), decoder_cfg.cells()) {
            Ok(fam) => {
                for dir in [&summary.best_dir, &summary.last_dir] {
                    if dir.is_dir()
                        && let Err(e) = fam.save(dir)
                    {
                        events(JobEvent::Warning {
                            job: Job::Train,
                            message: format!("no familiarity data for {}: {e}", dir.display()),
                        });
                    }
                }
            }
            Err(e) => events(JobEvent::Warning {
                job: Job::Train,
                message: format!("no familiarity data: {e}"),
            }),
        }
        // The calibrated confidence, fitted on dev (a failure is a warning).
        crate::jobs::calibrate::calibrate_after_training(
            &[&summary.best_dir, &summary.last_dir],
            &ds,
            &cache,
            encoder,
            resources.device,
            events,
            cancel,
        );
        // The concept detector (issue 22), beside the calibration.
        crate::jobs::concepts::concepts_after_training(
            &[&summary.best_dir, &summary.last_dir],
            base_dir.as_deref(),
            &ds,
            &cache,
            encoder.id(),
            events,
            cancel,
        );
    }
    for (dir, name) in checkpoints.iter().zip(&names) {
        if let Some(label) = &base_label
            && dir.join(crate::model_dir::META_FILE).is_file()
        {
            crate::model_dir::update_meta(dir, |m| {
                if m.base_model.is_empty() {
                    m.base_model = label.clone();
                }
            })
            .job_context(|| format!("recording the base model in {}", dir.display()))?;
        }
        super::models::name_models(std::slice::from_ref(dir), name.as_deref())?;
    }
    // The best epoch's figure as measured (its report in the run's history).
    let best = summary
        .history
        .iter()
        .find(|r| r.epoch == summary.best_epoch);
    let end = EndReason::of(&summary);
    Ok(TrainOutcome {
        out_dir: out_dir.clone(),
        best_dir: summary.best_dir,
        last_dir: summary.last_dir,
        stopped: summary.stopped,
        stopped_in_features: false,
        best_bleu4: best.map_or(summary.best_bleu4, |r| r.dev_bleu4),
        best_epoch: summary.best_epoch,
        epochs_completed: summary.epochs_completed,
        end,
    })
}

/// The familiarity data of a model trained on `data`: its training photos (features and
/// captions) and, for the distribution, its dev photos. With `cells > 1` the features are
/// feature maps of that many cells (an attention decoder's), pooled here by their mean, as
/// familiarity always reads pooled features.
pub fn familiarity_of(
    data: &train::TrainData,
    encoder_id: &str,
    cells: usize,
) -> Result<crate::trust::Familiarity, crate::trust::TrustError> {
    let n = data
        .train
        .iter()
        .chain(&data.dev)
        .map(|(i, _)| i + 1)
        .max()
        .unwrap_or(0);
    let dim = data.features.len().checked_div(n).unwrap_or(0);
    let row = |i: usize| &data.features[i * dim..(i + 1) * dim];
    let mut train_images: Vec<usize> = Vec::new();
    let mut captions: Vec<Vec<Vec<u32>>> = Vec::new();
    for (i, tokens) in &data.train {
        if train_images.last() != Some(i) {
            train_images.push(*i);
            captions.push(Vec::new());
        }
        if let Some(c) = captions.last_mut() {
            c.push(tokens.clone());
        }
    }
    let mut dev_images: Vec<usize> = data.dev.iter().map(|(i, _)| *i).collect();
    dev_images.dedup();
    if dim == 0 || data.features.len() < n * dim {
        return Err(crate::trust::TrustError::Invalid(
            "no training features".into(),
        ));
    }
    let cells = cells.max(1);
    if !dim.is_multiple_of(cells) {
        return Err(crate::trust::TrustError::Invalid(format!(
            "{dim} feature values do not form {cells} cells"
        )));
    }
    let pool = |i: usize| -> Vec<f32> {
        let f = dim / cells;
        let mut mean = vec![0.0f32; f];
        for cell in row(i).chunks_exact(f) {
            for (m, x) in mean.iter_mut().zip(cell) {
                *m += x;
            }
        }
        mean.iter_mut().for_each(|m| *m /= cells as f32);
        mean
    };
    let pooled_train: Vec<Vec<f32>> = train_images.iter().map(|&i| pool(i)).collect();
    let pooled_dev: Vec<Vec<f32>> = dev_images.iter().map(|&i| pool(i)).collect();
    let train_rows: Vec<&[f32]> = pooled_train.iter().map(Vec::as_slice).collect();
    let dev_rows: Vec<&[f32]> = pooled_dev.iter().map(Vec::as_slice).collect();
    crate::trust::Familiarity::build(
        encoder_id,
        &train_rows,
        captions,
        &dev_rows,
        crate::trust::familiarity::DEFAULT_DIM,
    )
}

/// The first few dataset problems as warnings, and how many more there are.
fn report_problems(ds: &crate::dataset::Dataset, events: Sink) {
    const SHOWN: usize = 5;
    for p in ds.problems.iter().take(SHOWN) {
        events(JobEvent::Warning {
            job: Job::Import,
            message: p.to_string(),
        });
    }
    if ds.problems.len() > SHOWN {
        events(JobEvent::Warning {
            job: Job::Import,
            message: format!(
                "{} more problems (see `captioner dataset inspect`)",
                ds.problems.len() - SHOWN
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_decoder_has_its_defaults_and_a_change_keeps_what_was_set_by_hand() {
        let merge = TrainSettings::for_decoder(DecoderKind::Merge);
        assert_eq!(merge, TrainSettings::default());
        let attention = TrainSettings::for_decoder(DecoderKind::Attention);
        assert_eq!((attention.hidden_dim, attention.train.lr), (512, 4e-4));
        assert_eq!(attention.attention_dim, 256);

        let mut s = TrainSettings {
            decoder: DecoderKind::Attention,
            ..TrainSettings::default()
        };
        s.decoder_changed(DecoderKind::Merge);
        assert_eq!((s.hidden_dim, s.train.lr), (512, 4e-4));
        s.train.lr = 1e-4;
        s.decoder = DecoderKind::Inject;
        s.decoder_changed(DecoderKind::Attention);
        assert_eq!((s.hidden_dim, s.train.lr), (256, 1e-4));
    }

    #[test]
    fn fine_tuning_takes_the_base_decoder_and_the_fine_tuning_rate() {
        let shipped = crate::paths::default_model_dir();
        let base = crate::model_dir::read_config(&shipped)
            .unwrap()
            .decoder
            .kind;
        let mut s = TrainSettings::default();
        assert_eq!(s.decoder, DecoderKind::Merge);
        s.set_from(Some(shipped.clone()));
        assert_eq!(s.effective_decoder(), base);
        assert_eq!(s.train.lr, FINE_TUNE_LR);
        assert_eq!((s.train.epochs, s.train.early_stop_patience), (3, 0));
        // Back to a new model: the decoder's own defaults again.
        s.set_from(None);
        assert_eq!(s.effective_decoder(), DecoderKind::Merge);
        assert_eq!(s.train.lr, 1e-3);
        assert_eq!((s.train.epochs, s.train.early_stop_patience), (20, 5));
        // Values set by hand stay either way.
        s.train.lr = 3e-4;
        s.train.epochs = 7;
        s.set_from(Some(shipped.clone()));
        assert_eq!(s.train.lr, 3e-4);
        assert_eq!((s.train.epochs, s.train.early_stop_patience), (7, 0));
        s.train.early_stop_patience = 2;
        s.set_from(None);
        assert_eq!((s.train.epochs, s.train.early_stop_patience), (7, 2));
        // The README's recipe and the constants agree.
        let readme = include_str!("../../README.md");
        assert!(readme.contains("--from default --lr 0.0001 --epochs 3 --patience 0"));
        assert_eq!(FINE_TUNE_LR.to_string(), "0.0001");
    }

    #[test]
    fn small_data_is_called_out() {
        assert!(data_warnings(6000, 1000, false).is_empty());
        assert!(data_warnings(200, 150, true).is_empty());
        let w = data_warnings(170, 24, false);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("only 170 photos to train on"), "{}", w[0]);
        assert!(
            w[1].contains("only 24 photos in the dev split") && w[1].contains("fewer than 100")
        );
        assert_eq!(data_warnings(30, 500, true).len(), 1);
        assert!(data_warnings(1, 500, false)[0].contains("only 1 photo to"));
    }

    #[test]
    fn degenerate_captions_are_told_from_real_ones() {
        for bad in ["a a a a a", "", "a dog a dog a dog", "a man in a a a shirt"] {
            assert!(degenerate_caption(bad), "{bad:?}");
        }
        for good in ["a dog runs on the grass", "two dogs", "a man and a woman"] {
            assert!(!degenerate_caption(good), "{good:?}");
        }
    }
}
