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

use crate::dataset::{self, Dataset, ImportOptions, Summary};

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
        if self.words.is_empty() {
            return 0.0;
        }
        let mean_log = self
            .words
            .iter()
            .map(|w| f64::from(w.probability.max(1e-12)).ln())
            .sum::<f64>()
            / self.words.len() as f64;
        mean_log.exp() as f32
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
        beam: usize,
        cancel: CancelToken,
    },
    /// Finish the current job and end the thread.
    Shutdown,
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
        let thread = std::thread::Builder::new()
            .name("captioner-worker".into())
            .spawn(move || run(command_rx, outbox, config))?;
        Ok(Worker {
            commands: command_tx,
            events: event_rx,
            thread: Some(thread),
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
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// Until the caption model lands in the library.
const UNAVAILABLE: &str = "no caption model in this build yet";

/// The state the worker thread owns.
struct State {
    outbox: Outbox,
    #[allow(dead_code)]
    config: WorkerConfig,
}

fn run(commands: Receiver<Command>, outbox: Outbox, config: WorkerConfig) {
    let mut state = State { outbox, config };
    for command in commands {
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
        Command::Shutdown => Job::Import,
    }
}

impl State {
    fn handle(&mut self, command: Command) {
        match command {
            Command::ImportDataset { dir, options } => self.import_dataset(dir, options),
            Command::ListModels => self.outbox.send(Event::ModelsListed(Vec::new())),
            Command::LoadModel(_) => self.outbox.failed(Job::LoadModel, UNAVAILABLE),
            Command::Caption { .. } => self.outbox.failed(Job::Caption, UNAVAILABLE),
            Command::CaptionBatch { id, paths, .. } => {
                for index in 0..paths.len() {
                    self.outbox.send(Event::BatchItem {
                        id,
                        index,
                        result: Err(UNAVAILABLE.to_string()),
                    });
                }
                self.outbox.send(Event::BatchDone {
                    id,
                    done: 0,
                    failed: paths.len(),
                    stopped: false,
                    seconds: 0.0,
                });
            }
            Command::Shutdown => {}
        }
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
