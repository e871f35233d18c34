//! What the UI and the worker thread say to each other.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::dataset::{Dataset, ImportOptions, Summary};
use crate::jobs::caption::FolderOptions;
use crate::jobs::evaluate::EvalOptions;
use crate::jobs::{
    CancelToken, Job, JobError, ModelChoice, ModelEntry, TrainOutcome, TrainSettings,
};
use crate::pipeline::EvalReport;

pub use crate::pipeline::{
    CaptionResult as CaptionOutput, ScoredCaption as Alternative, ScoredWord as WordScore,
};

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
    Caption {
        input: ImageInput,
        beam: usize,
        /// Words the caption must start with ([`crate::pipeline::DecodeOptions::start_with`];
        /// empty: none).
        start_with: String,
    },
    /// Caption many images; one [`Event::BatchItem`] each (a bad image is reported and the
    /// batch goes on), then [`Event::BatchDone`].
    CaptionBatch {
        id: u64,
        paths: Vec<PathBuf>,
        /// The Batch panel's own model choice (the Caption panel's model stays loaded).
        model: ModelChoice,
        /// How to decode and read the photos, as the panel set them.
        options: FolderOptions,
        cancel: CancelToken,
    },
    /// Extract features, then train a caption model (or continue one with `resume`).
    /// Reports [`Event::Training`] as it goes and [`Event::TrainFinished`] at the end.
    Train {
        settings: TrainSettings,
        resume: bool,
        cancel: CancelToken,
    },
    /// Score a model on a split of a dataset (BLEU-1..4, CIDEr-D) and keep the result in its
    /// `meta.json`; reports [`Event::Evaluated`].
    EvaluateModel {
        model: ModelChoice,
        dataset_dir: PathBuf,
        options: EvalOptions,
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
        result: Result<CaptionOutput, JobError>,
    },
    BatchDone {
        id: u64,
        done: usize,
        failed: usize,
        stopped: bool,
        seconds: f64,
    },
    /// A job failed; `error` keeps its whole cause chain ([`JobError::report`]).
    Failed {
        job: Job,
        error: JobError,
    },
    /// Training has its data and starts (or resumes) in `out_dir`.
    TrainStarted {
        out_dir: PathBuf,
        device: String,
        engine: String,
    },
    /// The training run fine-tunes `base`; `unknown` counts caption words outside its
    /// vocabulary.
    FineTuning {
        base: String,
        base_dir: PathBuf,
        unknown: crate::pipeline::UnknownWords,
    },
    /// A training event (steps, epochs, checkpoints).
    Training(crate::train::TrainEvent),
    /// Training ended: finished, early-stopped or stopped on request (resumable).
    TrainFinished(TrainOutcome),
    /// A model was scored (and the scores kept in its `meta.json`).
    Evaluated {
        model: ModelChoice,
        report: EvalReport,
    },
}
