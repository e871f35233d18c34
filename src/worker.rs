//! The desktop app's worker: one background thread that owns the caption model and the compute
//! device, and runs the same library jobs as the command line.
//!
//! The UI thread never touches tensors. It sends [`Command`]s and receives [`Event`]s over
//! crossbeam channels; after each event the worker calls `ctx.request_repaint()`, so the UI
//! wakes only when there is news. Long jobs carry a [`CancelToken`] that the UI holds and the
//! job checks between batches, so Stop reaches a busy worker without queueing behind it.
//! Jobs that need no model (dataset import) run on a short-lived thread of their own, so they
//! never wait behind a training run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use candle_core::Device;

use crate::dataset::{self, Dataset, ImportOptions, Summary};
use crate::encoder::{Encoder, image_io};
use crate::features::{self, FeatureCache};
use crate::model_dir;
use crate::pipeline::{self, Captioner, DecodeOptions};

/// A flag the UI sets to stop a long job; the job checks it between batches.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag itself, as the library's job functions take it.
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }
}

/// The kinds of job, for progress and error reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Job {
    Import,
    Features,
    Train,
    LoadModel,
    Caption,
    Batch,
    Evaluate,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::Import => "dataset import",
            Job::Features => "feature extraction",
            Job::Train => "training",
            Job::LoadModel => "model loading",
            Job::Caption => "captioning",
            Job::Batch => "batch captioning",
            Job::Evaluate => "evaluation",
        }
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One word of a caption and the model's probability for it.
#[derive(Clone, Debug, PartialEq)]
pub struct WordScore {
    pub word: String,
    pub probability: f32,
}

/// Another caption the beam search found, with its score (sum of word log-probabilities,
/// length-normalised as the decoder reports it).
#[derive(Clone, Debug, PartialEq)]
pub struct Alternative {
    pub text: String,
    pub score: f32,
}

/// A caption as the app shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptionOutput {
    pub text: String,
    pub words: Vec<WordScore>,
    /// The beam's captions, best first (the first is `text`); empty for greedy decoding.
    pub alternatives: Vec<Alternative>,
    /// Time to encode and decode, in milliseconds.
    pub millis: f64,
}

impl CaptionOutput {
    /// The geometric mean of the word probabilities (0 for an empty caption).
    pub fn confidence(&self) -> f32 {
        pipeline::confidence(self.words.iter().map(|w| w.probability))
    }
}

/// The image to caption.
#[derive(Clone, Debug)]
pub enum ImageInput {
    File(PathBuf),
    /// Pixels pasted from the clipboard.
    Pasted(Arc<egui::ColorImage>),
}

impl ImageInput {
    pub fn label(&self) -> String {
        match self {
            ImageInput::File(p) => p.display().to_string(),
            ImageInput::Pasted(img) => format!("pasted image ({}x{})", img.size[0], img.size[1]),
        }
    }
}

/// Which caption model to use.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ModelChoice {
    /// The model shipped in `models/`.
    #[default]
    Default,
    /// A model trained in the app (or by the command line), by its folder.
    Trained(PathBuf),
}

impl ModelChoice {
    pub fn label(&self) -> String {
        match self {
            ModelChoice::Default => "default (shipped)".to_string(),
            ModelChoice::Trained(dir) => dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| dir.display().to_string()),
        }
    }
}

/// A trained model found in the models folder.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelEntry {
    pub dir: PathBuf,
    pub name: String,
    pub description: String,
}

/// What the UI asks the worker to do.
pub enum Command {
    /// Load a caption model (the next captions use it).
    LoadModel(ModelChoice),
    /// List the trained models in the models folder.
    ListModels,
    /// Read and check a dataset folder.
    ImportDataset {
        dir: PathBuf,
        options: ImportOptions,
    },
    /// Caption one image.
    Caption { input: ImageInput, beam: usize },
    /// Caption many images; one [`Event::BatchItem`] each (a bad image is reported and the
    /// batch goes on), then [`Event::BatchDone`].
    CaptionBatch {
        id: u64,
        paths: Vec<PathBuf>,
        /// The Batch panel's own model choice (the Caption panel's model stays loaded).
        model: ModelChoice,
        beam: usize,
        /// Longest caption in words.
        max_len: usize,
        cancel: CancelToken,
    },
    /// Extract features, then train a caption model (or continue one with `resume`).
    /// Reports [`Event::Training`] as it goes and [`Event::TrainFinished`] at the end.
    Train {
        settings: TrainSettings,
        resume: bool,
        cancel: CancelToken,
    },
    /// Finish the current job and end the thread.
    Shutdown,
}

/// What the Train panel asks for.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    pub dataset_dir: Option<PathBuf>,
    pub import: ImportOptions,
    pub decoder: crate::decoder::DecoderKind,
    pub embed_dim: usize,
    pub hidden_dim: usize,
    pub dropout: f32,
    pub train: crate::train::TrainConfig,
    /// The run's folder (checkpoints `last/` and `best/`); `None` makes a new one.
    pub out_dir: Option<PathBuf>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            dataset_dir: None,
            import: ImportOptions::default(),
            decoder: crate::decoder::DecoderKind::Merge,
            embed_dim: 256,
            hidden_dim: 256,
            dropout: 0.5,
            train: crate::train::TrainConfig::default(),
            out_dir: None,
        }
    }
}

impl TrainSettings {
    /// The decoder configuration for a vocabulary of `vocab_size` ids and `feature_dim` features.
    pub fn decoder_config(
        &self,
        vocab_size: usize,
        feature_dim: usize,
    ) -> crate::decoder::DecoderConfig {
        crate::decoder::DecoderConfig {
            kind: self.decoder,
            feature_dim,
            embed_dim: self.embed_dim,
            hidden_dim: self.hidden_dim,
            vocab_size,
            dropout: self.dropout,
        }
    }
}

/// What the worker reports.
#[derive(Debug)]
pub enum Event {
    Progress {
        job: Job,
        done: usize,
        total: usize,
        eta: Option<Duration>,
        message: String,
    },
    DatasetImported {
        dataset: Arc<Dataset>,
        summary: Box<Summary>,
        seconds: f64,
    },
    ModelLoaded {
        choice: ModelChoice,
        description: String,
        seconds: f64,
    },
    ModelsListed(Vec<ModelEntry>),
    Captioned {
        source: String,
        output: CaptionOutput,
        /// The image, downscaled for display.
        preview: Option<Arc<egui::ColorImage>>,
    },
    BatchItem {
        id: u64,
        /// Position in the command's `paths`.
        index: usize,
        result: Result<CaptionOutput, String>,
    },
    BatchDone {
        id: u64,
        done: usize,
        failed: usize,
        stopped: bool,
        seconds: f64,
    },
    Failed {
        job: Job,
        message: String,
    },
    /// Training has its data and starts (or resumes) in `out_dir`.
    TrainStarted {
        out_dir: PathBuf,
        device: String,
    },
    /// A training event (steps, epochs, checkpoints).
    Training(crate::train::TrainEvent),
    /// Training ended: finished, early-stopped or stopped on request (resumable).
    TrainFinished {
        out_dir: PathBuf,
        best_dir: PathBuf,
        stopped: bool,
        best_bleu4: f64,
        epochs_completed: usize,
    },
}

/// Sends events to the UI and wakes it.
#[derive(Clone)]
struct Outbox {
    tx: Sender<Event>,
    ctx: egui::Context,
}

impl Outbox {
    fn send(&self, event: Event) {
        // The UI may be gone (window closed); nothing to tell then.
        let _ = self.tx.send(event);
        self.ctx.request_repaint();
    }

    /// Sends a frequent event (a training step): the UI repaints at most every 100 ms for
    /// these, so a fast training loop does not keep the UI thread (and a CPU core) busy.
    fn send_frequent(&self, event: Event) {
        let _ = self.tx.send(event);
        self.ctx.request_repaint_after(Duration::from_millis(100));
    }

    fn failed(&self, job: Job, message: impl Into<String>) {
        self.send(Event::Failed {
            job,
            message: message.into(),
        });
    }
}

/// Where the worker finds and keeps files.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Feature caches.
    pub cache_dir: PathBuf,
    /// Trained models, one folder each.
    pub models_dir: PathBuf,
}

/// The UI's handle on the worker thread.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
    /// Set when the app closes: running jobs stop at their next batch (training leaves a
    /// resumable checkpoint) so that closing never waits for a long job.
    abort: CancelToken,
}

impl Worker {
    /// Starts the worker thread.
    pub fn spawn(ctx: &egui::Context, config: WorkerConfig) -> std::io::Result<Worker> {
        let (command_tx, command_rx) = crossbeam_channel::unbounded();
        let (event_tx, event_rx) = crossbeam_channel::unbounded();
        let outbox = Outbox {
            tx: event_tx,
            ctx: ctx.clone(),
        };
        let abort = CancelToken::new();
        let worker_abort = abort.clone();
        let thread = std::thread::Builder::new()
            .name("captioner-worker".into())
            .spawn(move || run(command_rx, outbox, config, worker_abort))?;
        Ok(Worker {
            commands: command_tx,
            events: event_rx,
            thread: Some(thread),
            abort,
        })
    }

    /// Queues a command. Returns false when the worker thread is gone.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// Events that arrived since the last call.
    pub fn poll(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    /// Whether the worker thread has ended (it ends only on shutdown or a bug).
    pub fn is_gone(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.abort.cancel();
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The state the worker thread owns: the device, the encoder and the loaded caption model.
struct State {
    outbox: Outbox,
    config: WorkerConfig,
    device: Device,
    device_note: Option<String>,
    encoder: Option<Encoder>,
    captioner: Option<(ModelChoice, Captioner)>,
    /// The Batch panel's model when it differs from the Caption panel's.
    batch_captioner: Option<(ModelChoice, Captioner)>,
    /// The command queue, read between training steps too (see [`State::train`]).
    commands: Receiver<Command>,
    /// Commands that arrived during a long job and wait for it to end.
    deferred: std::collections::VecDeque<Command>,
    abort: CancelToken,
}

fn run(commands: Receiver<Command>, outbox: Outbox, config: WorkerConfig, abort: CancelToken) {
    let (device, device_note) = pipeline::pick_device();
    let mut state = State {
        outbox,
        config,
        device,
        device_note,
        encoder: None,
        captioner: None,
        batch_captioner: None,
        commands,
        deferred: std::collections::VecDeque::new(),
        abort,
    };
    loop {
        let command = match state.deferred.pop_front() {
            Some(c) => c,
            None => match state.commands.recv() {
                Ok(c) => c,
                Err(_) => break,
            },
        };
        if matches!(command, Command::Shutdown) {
            break;
        }
        let job = job_of(&command);
        // A bug in a job must not take the worker down with it: report it and go on.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            state.handle(command);
        }));
        if let Err(panic) = outcome {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".to_string());
            state
                .outbox
                .failed(job, format!("internal error during {job}: {what}"));
        }
    }
}

fn job_of(command: &Command) -> Job {
    match command {
        Command::ImportDataset { .. } => Job::Import,
        Command::LoadModel(_) | Command::ListModels => Job::LoadModel,
        Command::Caption { .. } => Job::Caption,
        Command::CaptionBatch { .. } => Job::Batch,
        Command::Train { .. } => Job::Train,
        Command::Shutdown => Job::Import,
    }
}

impl State {
    fn handle(&mut self, command: Command) {
        match command {
            Command::ImportDataset { dir, options } => self.import_dataset(dir, options),
            Command::ListModels => {
                let models = list_models(&self.config.models_dir);
                self.outbox.send(Event::ModelsListed(models));
            }
            Command::LoadModel(choice) => {
                if let Err(e) = self.load_model(&choice) {
                    self.outbox.failed(Job::LoadModel, e);
                }
            }
            Command::Caption { input, beam } => {
                if let Err(e) = self.caption(input, beam) {
                    self.outbox.failed(Job::Caption, e);
                }
            }
            Command::CaptionBatch {
                id,
                paths,
                model,
                beam,
                max_len,
                cancel,
            } => self.caption_batch(id, paths, &model, beam, max_len, cancel),
            Command::Train {
                settings,
                resume,
                cancel,
            } => {
                if let Err(e) = self.train(settings, resume, cancel) {
                    self.outbox.failed(Job::Train, e);
                }
            }
            Command::Shutdown => {}
        }
    }

    fn encoder(&mut self) -> Result<&Encoder, String> {
        if self.encoder.is_none() {
            let encoder = pipeline::load_encoder(&self.device).map_err(|e| e.to_string())?;
            self.encoder = Some(encoder);
        }
        self.encoder
            .as_ref()
            .ok_or_else(|| "the encoder is not loaded".to_string())
    }

    /// Loads a caption model (no-op when it is the one loaded).
    fn load_model(&mut self, choice: &ModelChoice) -> Result<(), String> {
        if self.captioner.as_ref().is_some_and(|(c, _)| c == choice) {
            return Ok(());
        }
        let started = Instant::now();
        let dir = match choice {
            ModelChoice::Default => pipeline::default_model_dir(),
            ModelChoice::Trained(dir) => dir.clone(),
        };
        let encoder = self.encoder()?.clone();
        let model = model_dir::load_model(&dir, &self.device).map_err(|e| e.to_string())?;
        let captioner = Captioner::new(encoder, model, &dir).map_err(|e| e.to_string())?;
        let mut description = describe_model(&captioner.model);
        description.push_str(&format!(", on the {}", pipeline::device_name(&self.device)));
        if let Some(note) = &self.device_note {
            description.push_str(&format!(" ({note})"));
        }
        self.captioner = Some((choice.clone(), captioner));
        self.outbox.send(Event::ModelLoaded {
            choice: choice.clone(),
            description,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    fn captioner(&mut self) -> Result<&Captioner, String> {
        if self.captioner.is_none() {
            self.load_model(&ModelChoice::Default)?;
        }
        self.captioner
            .as_ref()
            .map(|(_, c)| c)
            .ok_or_else(|| "no caption model is loaded".to_string())
    }

    fn caption(&mut self, input: ImageInput, beam: usize) -> Result<(), String> {
        let outbox = self.outbox.clone();
        let captioner = self.captioner()?;
        caption_with(captioner, &outbox, input, beam)
    }

    /// The captioner for a batch: the loaded one when it is `choice`, else `choice` loaded
    /// beside it (so a batch never changes the Caption panel's model).
    fn batch_captioner(&mut self, choice: &ModelChoice) -> Result<&Captioner, String> {
        if self.captioner.as_ref().is_some_and(|(c, _)| c == choice) {
            return self.captioner();
        }
        if !self
            .batch_captioner
            .as_ref()
            .is_some_and(|(c, _)| c == choice)
        {
            self.batch_captioner = None;
            let dir = match choice {
                ModelChoice::Default => pipeline::default_model_dir(),
                ModelChoice::Trained(dir) => dir.clone(),
            };
            let encoder = self.encoder()?.clone();
            let model = model_dir::load_model(&dir, &self.device).map_err(|e| e.to_string())?;
            let captioner = Captioner::new(encoder, model, &dir).map_err(|e| e.to_string())?;
            self.batch_captioner = Some((choice.clone(), captioner));
        }
        self.batch_captioner
            .as_ref()
            .map(|(_, c)| c)
            .ok_or_else(|| "no caption model is loaded".to_string())
    }

    fn caption_batch(
        &mut self,
        id: u64,
        paths: Vec<PathBuf>,
        model: &ModelChoice,
        beam: usize,
        max_len: usize,
        cancel: CancelToken,
    ) {
        let started = Instant::now();
        let total = paths.len();
        let outbox = self.outbox.clone();
        let abort = self.abort.clone();
        let captioner = match self.batch_captioner(model) {
            Ok(c) => c,
            Err(e) => {
                outbox.failed(Job::Batch, e);
                outbox.send(Event::BatchDone {
                    id,
                    done: 0,
                    failed: 0,
                    stopped: true,
                    seconds: 0.0,
                });
                return;
            }
        };
        let options = DecodeOptions {
            beam: beam.max(1),
            max_len: max_len.max(1),
        };
        let (mut done, mut failed) = (0, 0);
        let mut stopped = false;
        // Decode the next few images on another thread while this one runs the model.
        let size = captioner.encoder.input_size();
        let (tx, rx) = crossbeam_channel::bounded(4);
        std::thread::scope(|scope| {
            let cancel_reader = cancel.clone();
            let paths_ref = &paths;
            scope.spawn(move || {
                for (index, path) in paths_ref.iter().enumerate() {
                    if cancel_reader.is_cancelled() {
                        break;
                    }
                    let image = crate::encoder::preprocess_file(path, size);
                    if tx.send((index, image)).is_err() {
                        break;
                    }
                }
            });
            for (index, image) in rx.iter() {
                if abort.is_cancelled() {
                    cancel.cancel();
                }
                if cancel.is_cancelled() {
                    stopped = true;
                    break;
                }
                let result = image
                    .map_err(|e| e.to_string())
                    .and_then(|img| {
                        captioner
                            .caption_image(img, &options)
                            .map_err(|e| e.to_string())
                    })
                    .map(caption_output);
                match &result {
                    Ok(_) => done += 1,
                    Err(_) => failed += 1,
                }
                outbox.send(Event::BatchItem { id, index, result });
                outbox.send(Event::Progress {
                    job: Job::Batch,
                    done: done + failed,
                    total,
                    eta: eta(started, done + failed, total),
                    message: format!("captioned {} of {total}", done + failed),
                });
            }
            drop(rx);
        });
        if cancel.is_cancelled() && done + failed < total {
            stopped = true;
        }
        outbox.send(Event::BatchDone {
            id,
            done,
            failed,
            stopped,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    fn train(
        &mut self,
        settings: TrainSettings,
        resume: bool,
        cancel: CancelToken,
    ) -> Result<(), String> {
        let dir = settings
            .dataset_dir
            .clone()
            .ok_or_else(|| "choose a dataset folder first (Dataset panel)".to_string())?;
        let progress = |message: String| Event::Progress {
            job: Job::Train,
            done: 0,
            total: 0,
            eta: None,
            message,
        };
        self.outbox
            .send(progress(format!("reading {}", dir.display())));
        let ds = dataset::import(&dir, &settings.import).map_err(|e| e.to_string())?;
        let outbox = self.outbox.clone();
        let abort = self.abort.clone();
        let encoder = self.encoder()?.clone();
        let cache = FeatureCache::new(&self.config.cache_dir, encoder.id());
        let paths: Vec<PathBuf> = ds
            .images
            .iter()
            .filter(|e| matches!(e.split, dataset::Split::Train | dataset::Split::Dev))
            .map(|e| e.path.clone())
            .collect();
        let report = features::extract(
            &encoder,
            &cache,
            &paths,
            &features::ExtractOptions::default(),
            cancel.flag(),
            &mut |e| {
                if abort.is_cancelled() {
                    cancel.cancel();
                }
                match e {
                    features::ExtractEvent::Progress {
                        done,
                        total,
                        eta_seconds,
                        ..
                    } => outbox.send(Event::Progress {
                        job: Job::Features,
                        done,
                        total,
                        eta: eta_seconds
                            .is_finite()
                            .then(|| Duration::from_secs_f64(eta_seconds.max(0.0))),
                        message: format!("image features {done} of {total}"),
                    }),
                    features::ExtractEvent::Failed { path, reason } => {
                        outbox.send(Event::Progress {
                            job: Job::Features,
                            done: 0,
                            total: 0,
                            eta: None,
                            message: format!("skipped {}: {reason}", path.display()),
                        })
                    }
                    features::ExtractEvent::Started { .. } => {}
                }
            },
        )
        .map_err(|e| e.to_string())?;
        let out_dir = settings.out_dir.clone().unwrap_or_else(|| {
            pipeline::new_run_dir(&self.config.models_dir, &dir, settings.decoder)
        });
        if report.stopped {
            self.outbox.send(Event::TrainFinished {
                out_dir: out_dir.clone(),
                best_dir: out_dir.join(crate::train::BEST_DIR),
                stopped: true,
                best_bleu4: 0.0,
                epochs_completed: 0,
            });
            return Ok(());
        }
        let prepared =
            pipeline::prepare_training_data(&ds, &cache, encoder.id(), settings.import.min_count)
                .map_err(|e| e.to_string())?;
        let decoder_cfg = settings.decoder_config(prepared.vocab.len(), encoder.feature_dim());
        self.outbox.send(Event::TrainStarted {
            out_dir: out_dir.clone(),
            device: pipeline::device_name(&self.device),
        });
        // Have a caption model ready, so photos dropped during training are captioned between
        // two training steps instead of waiting for the run to end.
        if self.captioner.is_none()
            && let Err(e) = self.load_model(&ModelChoice::Default)
        {
            self.outbox
                .failed(Job::LoadModel, format!("captions during training: {e}"));
        }
        let outbox = self.outbox.clone();
        let captioner = self.captioner.as_ref().map(|(_, c)| c);
        let commands = &self.commands;
        let deferred = &mut self.deferred;
        let models_dir = &self.config.models_dir;
        let device = &self.device;
        let mut on_event = |event: crate::train::TrainEvent| {
            if abort.is_cancelled() {
                cancel.cancel();
            }
            while let Ok(command) = commands.try_recv() {
                match command {
                    Command::Caption { input, beam } => {
                        let result = match captioner {
                            Some(c) => caption_with(c, &outbox, input, beam),
                            None => Err("no caption model is loaded".to_string()),
                        };
                        if let Err(e) = result {
                            outbox.failed(Job::Caption, e);
                        }
                    }
                    Command::ListModels => {
                        outbox.send(Event::ModelsListed(list_models(models_dir)))
                    }
                    Command::Shutdown => {
                        cancel.cancel();
                        deferred.push_back(Command::Shutdown);
                    }
                    other => deferred.push_back(other),
                }
            }
            match event {
                crate::train::TrainEvent::Step { .. } => {
                    outbox.send_frequent(Event::Training(event))
                }
                _ => outbox.send(Event::Training(event)),
            }
        };
        let summary = crate::train::train(
            &decoder_cfg,
            &settings.train,
            &prepared.data,
            &out_dir,
            resume,
            device,
            &mut on_event,
            cancel.flag(),
        )
        .map_err(|e| e.to_string())?;
        self.outbox.send(Event::TrainFinished {
            out_dir,
            best_dir: summary.best_dir,
            stopped: summary.stopped,
            best_bleu4: summary.best_bleu4,
            epochs_completed: summary.epochs_completed,
        });
        Ok(())
    }

    /// Imports on a thread of its own: reading a big dataset needs no model and must not wait
    /// behind training.
    fn import_dataset(&mut self, dir: PathBuf, options: ImportOptions) {
        let outbox = self.outbox.clone();
        let spawned = std::thread::Builder::new()
            .name("dataset-import".into())
            .spawn(move || {
                outbox.send(Event::Progress {
                    job: Job::Import,
                    done: 0,
                    total: 0,
                    eta: None,
                    message: format!("reading {}", dir.display()),
                });
                let start = Instant::now();
                let result = std::panic::catch_unwind(|| {
                    dataset::import(&dir, &options).map(|d| {
                        let summary = d.summary();
                        (d, summary)
                    })
                });
                match result {
                    Ok(Ok((dataset, summary))) => outbox.send(Event::DatasetImported {
                        dataset: Arc::new(dataset),
                        summary: Box::new(summary),
                        seconds: start.elapsed().as_secs_f64(),
                    }),
                    Ok(Err(e)) => outbox.failed(Job::Import, e.to_string()),
                    Err(_) => outbox.failed(
                        Job::Import,
                        format!("internal error while importing {}", dir.display()),
                    ),
                }
            });
        if let Err(e) = spawned {
            self.outbox
                .failed(Job::Import, format!("cannot start the import: {e}"));
        }
    }
}

/// Trained models under `models_dir`: every folder with a `config.json`, and the `best/` of
/// every training run.
pub fn list_models(models_dir: &std::path::Path) -> Vec<ModelEntry> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(models_dir) else {
        return found;
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let run_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let candidates = [
            (dir.clone(), run_name.clone()),
            (
                dir.join(crate::train::BEST_DIR),
                format!("{run_name} (best)"),
            ),
            (
                dir.join(crate::train::LAST_DIR),
                format!("{run_name} (last)"),
            ),
        ];
        for (model, name) in candidates {
            if !model.join(model_dir::CONFIG_FILE).is_file() {
                continue;
            }
            let description = match model_dir::read_meta(&model) {
                Ok(meta) => describe_meta(&meta),
                Err(e) => format!("unreadable: {e}"),
            };
            found.push(ModelEntry {
                dir: model,
                name,
                description,
            });
        }
    }
    found
}

fn describe_meta(meta: &model_dir::ModelMeta) -> String {
    let mut s = format!("{} epochs on {}", meta.epochs, meta.dataset);
    if let Some(b) = meta.metrics.get("dev_bleu4") {
        s.push_str(&format!(", dev BLEU-4 {b:.3}"));
    }
    s
}

fn describe_model(model: &model_dir::LoadedModel) -> String {
    format!(
        "{} decoder, {} words, {}",
        model.config.decoder.kind,
        model.vocab.len(),
        describe_meta(&model.meta)
    )
}

/// Captions one image and sends the result (with a preview) to the UI.
fn caption_with(
    captioner: &Captioner,
    outbox: &Outbox,
    input: ImageInput,
    beam: usize,
) -> Result<(), String> {
    let source = input.label();
    let started = Instant::now();
    let rgb = match &input {
        ImageInput::File(path) => crate::encoder::load_rgb(path).map_err(|e| e.to_string())?,
        ImageInput::Pasted(img) => color_image_to_rgb(img)?,
    };
    let preview = preview_of(&rgb);
    let size = captioner.encoder.input_size();
    let image = image_io::normalize_rgb(&image_io::resize_rgb(rgb, size));
    let options = DecodeOptions {
        beam: beam.max(1),
        ..DecodeOptions::default()
    };
    let result = captioner
        .caption_image(image, &options)
        .map_err(|e| format!("{source}: {e}"))?;
    let mut output = caption_output(result);
    output.millis = started.elapsed().as_secs_f64() * 1e3;
    outbox.send(Event::Captioned {
        source,
        output,
        preview: Some(Arc::new(preview)),
    });
    Ok(())
}

fn caption_output(r: pipeline::CaptionResult) -> CaptionOutput {
    CaptionOutput {
        text: r.text,
        words: r
            .words
            .into_iter()
            .map(|w| WordScore {
                word: w.word,
                probability: w.probability,
            })
            .collect(),
        alternatives: r
            .alternatives
            .into_iter()
            .map(|a| Alternative {
                text: a.text,
                score: a.score,
            })
            .collect(),
        millis: r.millis,
    }
}

fn color_image_to_rgb(img: &egui::ColorImage) -> Result<image::RgbImage, String> {
    let [w, h] = img.size;
    let mut raw = Vec::with_capacity(w * h * 3);
    for p in &img.pixels {
        raw.extend_from_slice(&[p.r(), p.g(), p.b()]);
    }
    image::RgbImage::from_raw(w as u32, h as u32, raw)
        .ok_or_else(|| format!("pasted image has an inconsistent size {w}x{h}"))
}

/// The image scaled to at most 640 pixels on its longer side, for display.
fn preview_of(rgb: &image::RgbImage) -> egui::ColorImage {
    let (w, h) = rgb.dimensions();
    let scale = (640.0 / w.max(h).max(1) as f32).min(1.0);
    let (pw, ph) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    let small = if (pw, ph) == (w, h) {
        rgb.clone()
    } else {
        image::imageops::resize(rgb, pw, ph, image::imageops::FilterType::Triangle)
    };
    egui::ColorImage::from_rgb([pw as usize, ph as usize], small.as_raw())
}

/// Estimates the time left from the time taken so far.
pub fn eta(started: Instant, done: usize, total: usize) -> Option<Duration> {
    if done == 0 || done > total {
        return None;
    }
    let per_item = started.elapsed().as_secs_f64() / done as f64;
    Some(Duration::from_secs_f64(per_item * (total - done) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(dir: &std::path::Path) -> (egui::Context, Worker) {
        let ctx = egui::Context::default();
        let w = Worker::spawn(
            &ctx,
            WorkerConfig {
                cache_dir: dir.join("cache"),
                models_dir: dir.join("models"),
            },
        )
        .unwrap();
        (ctx, w)
    }

    fn wait_for(w: &Worker, mut pred: impl FnMut(&Event) -> bool) -> Event {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for e in w.poll() {
                if pred(&e) {
                    return e;
                }
            }
            assert!(Instant::now() < deadline, "no matching event");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn imports_a_dataset() {
        let tmp = tempfile::tempdir().unwrap();
        let (_ctx, w) = worker(tmp.path());
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flickr8k_mini");
        assert!(w.send(Command::ImportDataset {
            dir,
            options: ImportOptions::default()
        }));
        let e = wait_for(&w, |e| {
            matches!(e, Event::DatasetImported { .. } | Event::Failed { .. })
        });
        match e {
            Event::DatasetImported { summary, .. } => assert!(summary.images > 0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn import_failure_is_an_event() {
        let tmp = tempfile::tempdir().unwrap();
        let (_ctx, w) = worker(tmp.path());
        assert!(w.send(Command::ImportDataset {
            dir: tmp.path().join("nope"),
            options: ImportOptions::default()
        }));
        let e = wait_for(&w, |e| {
            matches!(e, Event::DatasetImported { .. } | Event::Failed { .. })
        });
        match e {
            Event::Failed { job, message } => {
                assert_eq!(job, Job::Import);
                assert!(message.contains("no such file"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn eta_is_proportional() {
        assert_eq!(eta(Instant::now(), 0, 10), None);
        assert!(eta(Instant::now(), 5, 10).is_some());
        assert_eq!(eta(Instant::now(), 11, 10), None);
    }
}
