//! The training loop: [`train`] and [`train_from`] check a resume against its checkpoint (or
//! start afresh), set up the run's state, and run epochs of batches, each ended by the dev
//! evaluation, the learning-rate and early-stopping schedule, and the checkpoints.

use super::batches;
use super::checkpoint::{self, DataFingerprint, TrainState, load_checkpoint, save_checkpoint};
use super::{
    Adam, BEST_DIR, Backend, CandleEngine, CpuBackend, CpuEngine, Engine, EpochReport, Example,
    Features, LAST_DIR, ModelSummary, Params, Rng, TrainConfig, TrainData, TrainError, TrainEvent,
    TrainSummary, dev_words, model_summary,
};
use crate::decoder::DecoderConfig;
use crate::model_dir::{self, FORMAT_VERSION};
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// One training run: what it trains, on which data, and where it writes.
pub struct TrainRun<'a> {
    pub decoder: &'a DecoderConfig,
    pub train: &'a TrainConfig,
    pub data: &'a TrainData,
    /// Checkpoints go to `out_dir/last/` and `out_dir/best/`.
    pub out_dir: &'a Path,
    /// Continue from `out_dir/last/` instead of starting afresh.
    pub resume: bool,
    /// Starting weights instead of random ones (fine-tuning a model; the optimizer starts
    /// afresh). Ignored on resume, which continues from the checkpoint.
    pub init: Option<Params>,
    /// The candle engine's device, and the device of the decoder used for the dev BLEU and
    /// sample captions.
    pub device: &'a Device,
}

/// Trains (or, with `resume`, continues training from `out_dir/last/`) a decoder.
///
/// `train_cfg.engine` picks the engine: the CPU engine trains on the CPU whatever `device`
/// is; the candle engine trains on `device`; `Auto` is the CPU engine on a CPU device and
/// candle on a GPU. `device` also hosts the decoder used for the dev BLEU and sample captions. `stop` is checked before every batch: when set, a
/// checkpoint of the exact position is written to `out_dir/last/` and the function returns
/// with [`TrainSummary::stopped`]. On resume, the decoder configuration, data, batch size and
/// seed must match the checkpoint; `epochs` and the patience settings may change, and the
/// learning rate continues from the checkpoint.
#[allow(clippy::too_many_arguments)]
pub fn train(
    decoder_cfg: &DecoderConfig,
    train_cfg: &TrainConfig,
    data: &TrainData,
    out_dir: &Path,
    resume: bool,
    device: &Device,
    on_event: &mut dyn FnMut(TrainEvent),
    stop: &AtomicBool,
) -> Result<TrainSummary, TrainError> {
    let run = TrainRun {
        decoder: decoder_cfg,
        train: train_cfg,
        data,
        out_dir,
        resume,
        init: None,
        device,
    };
    train_from(run, on_event, stop)
}

/// [`train`] as described by `run` (which may start from given weights).
pub fn train_from(
    mut run: TrainRun<'_>,
    on_event: &mut dyn FnMut(TrainEvent),
    stop: &AtomicBool,
) -> Result<TrainSummary, TrainError> {
    run.decoder.validate()?;
    run.train.validate()?;
    run.data.validate(run.decoder)?;
    let last_dir = run.out_dir.join(LAST_DIR);
    let best_dir = run.out_dir.join(BEST_DIR);
    model_dir::recover_interrupted_write(&last_dir)?;
    model_dir::recover_interrupted_write(&best_dir)?;
    let fingerprint = run.data.fingerprint(run.decoder);
    let (params, adam, state) = if run.resume {
        resume_state(&run, &last_dir, &fingerprint)?
    } else {
        let init = run.init.take();
        fresh_state(run.decoder, run.train, init, fingerprint)?
    };
    let mut state = RunState::new(&run, params, adam, state, last_dir, best_dir)?;
    on_event(state.started());
    while state.state.epoch < run.train.epochs && !state.state.early_stopped {
        if let Some(step) = state.run_epoch(on_event, stop)? {
            state.checkpoint_stopped(on_event)?;
            on_event(TrainEvent::Stopped {
                epoch: state.state.epoch + 1,
                step,
            });
            return Ok(state.summary(true));
        }
    }
    on_event(TrainEvent::Finished {
        best_epoch: state.state.best_epoch,
        best_bleu4: state.state.best_bleu4.unwrap_or(0.0),
    });
    Ok(state.summary(false))
}

/// The checkpoint in `last_dir`, checked against the run: the same data, batch size and seed.
fn resume_state(
    run: &TrainRun<'_>,
    last_dir: &Path,
    fingerprint: &DataFingerprint,
) -> Result<(Params, Adam, TrainState), TrainError> {
    if !last_dir.join(checkpoint::STATE_FILE).is_file() {
        return Err(TrainError::Resume(format!(
            "no checkpoint in {}",
            last_dir.display()
        )));
    }
    let (params, adam, state) = load_checkpoint(last_dir, run.decoder)?;
    if state.data != *fingerprint {
        return Err(TrainError::Resume(
            "the training data differ from the checkpoint's".into(),
        ));
    }
    let cfg = run.train;
    if state.train.batch_size != cfg.batch_size || state.train.seed != cfg.seed {
        return Err(TrainError::Resume(format!(
            "batch_size and seed must stay as in the checkpoint ({} and {})",
            state.train.batch_size, state.train.seed
        )));
    }
    Ok((params, adam, state))
}

/// The starting weights (given or drawn from the seed), a fresh optimizer and the state at
/// epoch 0.
fn fresh_state(
    decoder_cfg: &DecoderConfig,
    cfg: &TrainConfig,
    init: Option<Params>,
    fingerprint: DataFingerprint,
) -> Result<(Params, Adam, TrainState), TrainError> {
    let params = match init {
        Some(p) if p.config() == decoder_cfg => p,
        Some(_) => {
            return Err(TrainError::Config(
                "the starting weights were made for a different decoder configuration".into(),
            ));
        }
        None => Params::init(decoder_cfg, cfg.seed)?,
    };
    let adam = Adam::new(params.len(), cfg.lr);
    let state = TrainState {
        format_version: FORMAT_VERSION,
        decoder: decoder_cfg.clone(),
        train: cfg.clone(),
        epoch: 0,
        step: 0,
        lr: cfg.lr,
        adam_step: 0,
        loss_sum: 0.0,
        loss_tokens: 0,
        epoch_seconds: 0.0,
        best_bleu4: None,
        best_epoch: 0,
        since_improvement: 0,
        plateau: 0,
        early_stopped: false,
        history: Vec::new(),
        data: fingerprint,
    };
    Ok((params, adam, state))
}

/// Everything a run carries from batch to batch: the engine, the position and history
/// ([`TrainState`], what the checkpoints store) and what the loop reads every epoch.
struct RunState<'a> {
    cfg: &'a TrainConfig,
    data: &'a TrainData,
    device: &'a Device,
    engine: Engine,
    /// The model's layers (reported when the run starts).
    model: ModelSummary,
    backend: Box<dyn Backend>,
    state: TrainState,
    features: Features<'a>,
    /// Caption lengths (what batching reads).
    lengths: Vec<usize>,
    steps_per_epoch: usize,
    /// The dev images of the BLEU score and their reference captions.
    bleu_images: Vec<usize>,
    bleu_refs: Vec<Vec<Vec<String>>>,
    sample_images: Vec<usize>,
    last_dir: PathBuf,
    best_dir: PathBuf,
}

/// The dev evaluation of one epoch.
struct Evaluation {
    dev_loss: f64,
    bleu: [f64; 4],
    samples: Vec<(String, String)>,
}

impl<'a> RunState<'a> {
    fn new(
        run: &TrainRun<'a>,
        params: Params,
        mut adam: Adam,
        mut state: TrainState,
        last_dir: PathBuf,
        best_dir: PathBuf,
    ) -> Result<Self, TrainError> {
        let (cfg, data, decoder_cfg) = (run.train, run.data, run.decoder);
        state.train = cfg.clone();
        adam.lr = state.lr;
        let engine = cfg.engine.resolve(run.device);
        let backend: Box<dyn Backend> = match engine {
            Engine::Candle => Box::new(CandleEngine::new(&params, &adam, run.device)?),
            _ => Box::new(CpuBackend {
                engine: CpuEngine::new(decoder_cfg)?,
                grads: Params::zeros(decoder_cfg)?,
                params,
                adam,
            }),
        };
        let features = Features::new(&data.features, decoder_cfg.input_dim())?;
        let n_bleu = cfg.dev_bleu_images.min(data.dev_refs.len());
        Ok(Self {
            cfg,
            data,
            device: run.device,
            engine,
            model: model_summary(decoder_cfg),
            backend,
            state,
            features,
            lengths: data.train.iter().map(|(_, w)| w.len()).collect(),
            steps_per_epoch: batches::steps_per_epoch(data.train.len(), cfg.batch_size),
            bleu_images: data.dev_refs[..n_bleu].iter().map(|(i, _)| *i).collect(),
            bleu_refs: data.dev_refs[..n_bleu]
                .iter()
                .map(|(_, r)| r.clone())
                .collect(),
            sample_images: data.sample_images.iter().map(|(i, _)| *i).collect(),
            last_dir,
            best_dir,
        })
    }

    fn started(&self) -> TrainEvent {
        TrainEvent::Started {
            total_epochs: self.cfg.epochs,
            steps_per_epoch: self.steps_per_epoch,
            start_epoch: self.state.epoch + 1,
            start_step: self.state.step,
            train_captions: self.data.train.len(),
            dev_captions: self.data.dev.len(),
            summary: self.model.clone(),
            engine: self.engine,
        }
    }

    fn summary(&self, stopped: bool) -> TrainSummary {
        let state = &self.state;
        TrainSummary {
            best_epoch: state.best_epoch,
            best_bleu4: state.best_bleu4.unwrap_or(0.0),
            epochs_completed: state.history.len(),
            stopped,
            early_stopped: state.early_stopped,
            history: state.history.clone(),
            best_dir: self.best_dir.clone(),
            last_dir: self.last_dir.clone(),
        }
    }

    /// The rest of the current epoch's batches, then its end. Returns the step at which a
    /// stop request was honoured (the state then holds the exact position), or `None` when
    /// the epoch completed.
    fn run_epoch(
        &mut self,
        on_event: &mut dyn FnMut(TrainEvent),
        stop: &AtomicBool,
    ) -> Result<Option<usize>, TrainError> {
        let (cfg, data) = (self.cfg, self.data);
        let epoch = self.state.epoch;
        let started = Instant::now();
        let carried = self.state.epoch_seconds;
        let order = batches::epoch_batches(&self.lengths, cfg.batch_size, cfg.seed, epoch);
        let mut batch: Vec<Example<'_>> = Vec::with_capacity(cfg.batch_size);
        while self.state.step < order.len() {
            let step = self.state.step;
            if stop.load(Ordering::Relaxed) {
                self.state.epoch_seconds = carried + started.elapsed().as_secs_f64();
                return Ok(Some(step));
            }
            batch.clear();
            batch.extend(order[step].iter().map(|&i| Example {
                image: data.train[i].0,
                words: &data.train[i].1,
            }));
            let mut rng = Rng::derive(&[cfg.seed, epoch as u64, step as u64, 0xD4]);
            let (loss, norm) =
                self.backend
                    .train_step(self.features, &batch, &mut rng, cfg.clip_norm)?;
            if !loss.sum.is_finite() || !norm.is_finite() {
                return Err(TrainError::Diverged {
                    epoch: epoch + 1,
                    step: step + 1,
                });
            }
            let state = &mut self.state;
            state.loss_sum += loss.sum;
            state.loss_tokens += loss.tokens as u64;
            state.step = step + 1;
            on_event(TrainEvent::Step {
                epoch: epoch + 1,
                step: step + 1,
                steps_per_epoch: self.steps_per_epoch,
                loss: loss.mean() as f32,
                avg_loss: (state.loss_sum / state.loss_tokens.max(1) as f64) as f32,
                lr: self.backend.lr(),
            });
        }
        self.end_epoch(on_event, started, carried)?;
        Ok(None)
    }

    /// The end of an epoch: evaluate, schedule, report, checkpoint.
    fn end_epoch(
        &mut self,
        on_event: &mut dyn FnMut(TrainEvent),
        started: Instant,
        carried: f64,
    ) -> Result<(), TrainError> {
        let epoch = self.state.epoch;
        let eval = self.evaluate()?;
        let bleu4 = eval.bleu[3];
        let improved = self.schedule(bleu4);
        let state = &mut self.state;
        let seconds = carried + started.elapsed().as_secs_f64();
        let done = state.history.len() + 1;
        let mean_seconds =
            (state.history.iter().map(|r| r.seconds).sum::<f64>() + seconds) / done as f64;
        let remaining = if state.early_stopped {
            0
        } else {
            self.cfg.epochs.saturating_sub(epoch + 1)
        };
        let report = EpochReport {
            epoch: epoch + 1,
            train_loss: state.loss_sum / state.loss_tokens.max(1) as f64,
            dev_loss: eval.dev_loss,
            dev_bleu4: bleu4,
            dev_bleu: eval.bleu,
            samples: eval.samples,
            seconds,
            eta_seconds: mean_seconds * remaining as f64,
            lr: self.backend.lr(),
            improved,
        };
        state.history.push(report.clone());
        state.epoch = epoch + 1;
        state.step = 0;
        state.loss_sum = 0.0;
        state.loss_tokens = 0;
        state.epoch_seconds = 0.0;
        self.save(improved)?;
        on_event(TrainEvent::Epoch(report));
        on_event(TrainEvent::Checkpoint {
            path: self.last_dir.clone(),
            best: false,
        });
        if improved {
            on_event(TrainEvent::Checkpoint {
                path: self.best_dir.clone(),
                best: true,
            });
        }
        Ok(())
    }

    /// Dev loss, BLEU of greedy captions of the BLEU images, and the sample captions.
    fn evaluate(&mut self) -> Result<Evaluation, TrainError> {
        let (cfg, data) = (self.cfg, self.data);
        let dev_loss = self
            .backend
            .dev_loss(self.features, &data.dev, cfg.batch_size)?;
        let dec = self.backend.decoder(self.device)?;
        let hyps = dev_words(&dec, data, &self.bleu_images, cfg.max_len)?;
        let bleu = crate::eval::corpus_bleu(&hyps, &self.bleu_refs);
        let samples = dev_words(&dec, data, &self.sample_images, cfg.max_len)?
            .into_iter()
            .zip(&data.sample_images)
            .map(|(words, (_, name))| (name.clone(), words.join(" ")))
            .collect();
        Ok(Evaluation {
            dev_loss,
            bleu,
            samples,
        })
    }

    /// The schedule after an epoch with dev BLEU-4 `bleu4`: a new best, or a plateau that
    /// decays the learning rate after `lr_patience` epochs and stops the run after
    /// `early_stop_patience`. Returns whether the epoch is the best so far.
    fn schedule(&mut self, bleu4: f64) -> bool {
        let (cfg, state) = (self.cfg, &mut self.state);
        let improved = state.best_bleu4.is_none_or(|b| bleu4 > b);
        if improved {
            state.best_bleu4 = Some(bleu4);
            state.best_epoch = state.epoch + 1;
            state.since_improvement = 0;
            state.plateau = 0;
        } else {
            state.since_improvement += 1;
            state.plateau += 1;
            if cfg.lr_patience > 0 && state.plateau >= cfg.lr_patience {
                self.backend.set_lr(self.backend.lr() * cfg.lr_decay);
                state.plateau = 0;
            }
        }
        if cfg.early_stop_patience > 0 && state.since_improvement >= cfg.early_stop_patience {
            state.early_stopped = true;
        }
        improved
    }

    /// Checkpoints at a stop request (the exact position) and reports it.
    fn checkpoint_stopped(
        &mut self,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError> {
        self.save(false)?;
        on_event(TrainEvent::Checkpoint {
            path: self.last_dir.clone(),
            best: false,
        });
        Ok(())
    }

    /// Writes the state with the engine's weights and optimizer to `last/` (and to `best/`
    /// first when `best`).
    fn save(&mut self, best: bool) -> Result<(), TrainError> {
        self.state.lr = self.backend.lr();
        self.state.adam_step = self.backend.adam_step();
        let (state, data) = (&self.state, self.data);
        let (last_dir, best_dir) = (&self.last_dir, &self.best_dir);
        let n_bleu = self.bleu_images.len();
        self.backend.with_state(&mut |params, adam| {
            if best {
                save_checkpoint(
                    best_dir,
                    params,
                    adam,
                    state,
                    &data.id_to_word,
                    &data.info,
                    n_bleu,
                )?;
            }
            Ok(save_checkpoint(
                last_dir,
                params,
                adam,
                state,
                &data.id_to_word,
                &data.info,
                n_bleu,
            )?)
        })
    }
}
