//! The long jobs, written once for both front ends.
//!
//! A job is a library function: options in, a typed result out, [`JobEvent`]s to a sink, and a
//! [`CancelToken`] checked between units of work (a batch of images, a training step). The
//! command line renders the events as progress bars or JSON lines (`cli_model.rs`); the app's
//! worker thread forwards them to the UI (`worker/`). Neither front end holds job logic.
//!
//! | job | function |
//! | --- | --- |
//! | read a dataset | [`import::import`] |
//! | compute and cache image features | [`extract::extract`] |
//! | train a caption model | [`train::train`] |
//! | caption one photo | [`caption::caption_one`] |
//! | caption a folder | [`caption::caption_folder`] |
//! | caption one shard of a photo list, resumably; merge the shards | [`shard::run_shard`], [`shard::merge`] |
//! | score a model on a split | [`evaluate::evaluate`] |
//! | caption the photos that appear in a watched folder | [`watch::watch`] ([`watch::FolderWatcher`] for the app) |
//! | train a model's concept detector | [`concepts::concepts`] |
//!
//! Errors are [`JobError`]s: they keep the whole cause chain (file, line, underlying I/O or
//! decoding error) until a front end shows them.

pub mod calibrate;
pub mod caption;
pub mod concepts;
pub mod evaluate;
pub mod extract;
pub mod import;
pub mod models;
pub mod shard;
pub mod train;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use caption::{CaptionInput, FolderReport};
pub use models::{ModelChoice, ModelEntry};
pub use train::{EndReason, TrainOutcome, TrainSettings};

/// Asks a running job to stop at its next checkpoint (a batch, a training step).
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The flag itself, for library functions that take an `&AtomicBool`.
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }
}

/// Which job (or stage of a job) an event or error belongs to.
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

/// A job's error with its whole cause chain, cheap to clone (it travels over channels).
///
/// `Display` shows the outermost message and [`std::error::Error::source`] the rest, so
/// `anyhow`'s `{:#}` prints the chain once; [`JobError::report`] gives the whole chain as one
/// line for a status bar or a dialog.
#[derive(Clone)]
pub struct JobError(Arc<anyhow::Error>);

impl JobError {
    pub fn new(error: impl Into<anyhow::Error>) -> JobError {
        JobError(Arc::new(error.into()))
    }

    /// A plain message (no underlying cause).
    pub fn msg(message: impl std::fmt::Display + std::fmt::Debug + Send + Sync + 'static) -> Self {
        JobError::new(anyhow::Error::msg(message))
    }

    /// The error with `context` put in front, keeping the chain.
    pub fn context(self, context: impl std::fmt::Display + Send + Sync + 'static) -> JobError {
        JobError::new(anyhow::Error::new(self).context(context))
    }

    /// The whole chain: "outer: cause: root cause" (see [`report`]).
    pub fn report(&self) -> String {
        let error: &(dyn std::error::Error + Send + Sync + 'static) = (*self.0).as_ref();
        report(error)
    }

    /// Each message of the chain, outermost first.
    pub fn chain(&self) -> Vec<String> {
        self.0.chain().map(|e| e.to_string()).collect()
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::fmt::Debug for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for JobError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// An error with its whole cause chain on one line, "outer: cause: root cause", for people.
///
/// Many of our errors put their cause's text into their own message (so that they read well
/// alone) and also keep the cause as their `source()`; a cause whose text the line already
/// ends with is therefore left out, so it is not said twice ("cannot read d.jpg: Is a
/// directory (os error 21)", not "...: Is a directory (os error 21): Is a directory (os error
/// 21)").
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = cause.source();
    }
    line
}

/// Turns any error into a [`JobError`] with a context message.
pub trait JobContext<T> {
    fn job_context<C: std::fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> Result<T, JobError>;
}

impl<T, E: Into<anyhow::Error>> JobContext<T> for Result<T, E> {
    fn job_context<C: std::fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> Result<T, JobError> {
        self.map_err(|e| JobError::new(e.into().context(context())))
    }
}

/// What a running job reports.
#[derive(Debug)]
pub enum JobEvent {
    /// The job starts a new stage ("reading DIR", "image features", ...).
    Phase { job: Job, message: String },
    /// `done` of `total` units of `job` (images, captions) handled.
    Progress {
        job: Job,
        done: usize,
        total: usize,
        eta: Option<Duration>,
    },
    /// A note the user should see; the job goes on.
    Warning { job: Job, message: String },
    /// An input could not be used (an unreadable image); the job goes on without it.
    Skipped {
        job: Job,
        path: PathBuf,
        reason: String,
    },
    /// Training has its data and starts (or resumes) in `out_dir`.
    TrainStarted {
        out_dir: PathBuf,
        device: String,
        engine: String,
    },
    /// A training run fine-tunes the model `base` (in `base_dir`); `unknown` counts the
    /// caption words outside its vocabulary.
    FineTune {
        base: String,
        base_dir: PathBuf,
        unknown: crate::pipeline::UnknownWords,
    },
    /// A training event (steps, epochs, checkpoints).
    Train(crate::train::TrainEvent),
    /// One photo of a folder: its caption, or why it has none.
    Captioned {
        /// Position in the job's list of photos.
        index: usize,
        path: PathBuf,
        result: Result<crate::pipeline::CaptionResult, JobError>,
    },
}

/// Where a job sends its events.
pub type Sink<'a> = &'a mut dyn FnMut(JobEvent);

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

    #[derive(Debug, thiserror::Error)]
    #[error("root cause")]
    struct Root;

    #[test]
    fn job_error_keeps_the_chain() {
        let e: Result<(), Root> = Err(Root);
        let e = e.job_context(|| "reading photo.jpg").unwrap_err();
        let e = e.context("captioning the folder");
        assert_eq!(
            e.chain(),
            vec!["captioning the folder", "reading photo.jpg", "root cause"]
        );
        assert_eq!(
            e.report(),
            "captioning the folder: reading photo.jpg: root cause"
        );
        // anyhow prints the chain once, not twice.
        let any = anyhow::Error::new(e.clone());
        assert_eq!(format!("{any:#}"), e.report());
        assert_eq!(e.to_string(), "captioning the folder");
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::other("Is a directory (os error 21)");
        let e = crate::encoder::ImageLoadError::Io {
            path: "d.jpg".into(),
            source: io,
        };
        let e = Err::<(), _>(e)
            .job_context(|| "d.jpg: reading the photo")
            .unwrap_err();
        assert_eq!(
            e.report(),
            "d.jpg: reading the photo: cannot read image file d.jpg: Is a directory (os error 21)"
        );
        // A cause not in the message is still said.
        let e = Err::<(), _>(Root).job_context(|| "outer").unwrap_err();
        assert_eq!(e.report(), "outer: root cause");
    }

    #[test]
    fn eta_is_none_before_the_first_item() {
        assert_eq!(eta(Instant::now(), 0, 10), None);
        assert!(eta(Instant::now(), 5, 10).is_some());
        assert_eq!(eta(Instant::now(), 11, 10), None);
    }
}
