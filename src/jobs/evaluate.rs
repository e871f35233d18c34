//! Scoring a caption model on a split of a dataset (BLEU-1..4, CIDEr-D).

use std::path::{Path, PathBuf};

use super::{CancelToken, Job, JobContext, JobError, JobEvent, Sink};
use crate::dataset::{ImportOptions, Split};
use crate::features::{ExtractEvent, FeatureCache};
use crate::pipeline::{self, Captioner, DecodeOptions, EvalReport};

/// What to evaluate on.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub split: Split,
    pub import: ImportOptions,
    pub decode: DecodeOptions,
}

/// Imports the dataset in `dir`, computes the missing features of `split` into the cache under
/// `cache_dir`, captions every image of the split and scores the captions.
pub fn evaluate(
    captioner: &Captioner,
    dir: &Path,
    cache_dir: &Path,
    options: &EvalOptions,
    events: Sink,
    cancel: &CancelToken,
) -> Result<EvalReport, JobError> {
    let ds = super::import::import(dir, &options.import, events, cancel)?;
    let cache = FeatureCache::new(cache_dir, captioner.encoder.id());
    events(JobEvent::Phase {
        job: Job::Evaluate,
        message: format!(
            "captioning the {} split of {}",
            options.split.name(),
            dir.display()
        ),
    });
    pipeline::evaluate(
        captioner,
        &ds,
        options.split,
        &cache,
        &options.decode,
        cancel.flag(),
        &mut |e| match e {
            ExtractEvent::Started { total, .. } => events(JobEvent::Progress {
                job: Job::Features,
                done: 0,
                total,
                eta: None,
            }),
            ExtractEvent::Progress { done, total, .. } => events(JobEvent::Progress {
                job: Job::Features,
                done,
                total,
                eta: None,
            }),
            ExtractEvent::Failed { path, reason } => events(JobEvent::Skipped {
                job: Job::Features,
                path,
                reason,
            }),
        },
    )
    .job_context(|| {
        format!(
            "evaluating {} on the {} split of {}",
            captioner.model_dir.display(),
            options.split.name(),
            dir.display()
        )
    })
}

/// Measures the model's stored calibration on `options.split` of the dataset in `dir` mixed
/// with the photos in the folders `extra` (each with `captions.txt`, one photo name, a tab and its caption per line): how well
/// the confidence ranks good and bad captions over the mix, and what needs_review flags.
/// Nothing is fitted (`captioner eval DIR --extra FOLDER`).
pub fn evaluate_mix(
    captioner: &Captioner,
    dir: &Path,
    cache_dir: &Path,
    options: &EvalOptions,
    extra: &[PathBuf],
    events: Sink,
    cancel: &CancelToken,
) -> Result<crate::jobs::calibrate::MixFigures, JobError> {
    let ds = super::import::import(dir, &options.import, events, cancel)?;
    let cache = FeatureCache::new(cache_dir, captioner.encoder.id());
    let entries: Vec<&crate::dataset::ImageEntry> = ds.split(options.split).collect();
    let paths: Vec<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    let spatial = captioner.wants_spatial();
    super::extract::extract(
        &captioner.encoder,
        &cache,
        &paths,
        &crate::features::ExtractOptions {
            spatial,
            ..crate::features::ExtractOptions::default()
        },
        events,
        cancel,
    )?;
    let feats = crate::features::load_cached(&cache, &paths);
    // An attention model captions from the feature maps.
    let maps = crate::jobs::calibrate::load_maps(&cache, &paths, spatial);
    let rows = crate::jobs::calibrate::dev_rows(&entries, &feats, &maps, spatial);
    crate::jobs::calibrate::measure_stored_on_mix(
        captioner,
        &rows,
        extra,
        &options.decode,
        events,
        cancel,
    )
    .map_err(|e| {
        e.context(format!(
            "measuring the confidence on the {} split of {} with {}",
            options.split.name(),
            dir.display(),
            crate::jobs::calibrate::display_list(extra)
        ))
    })
}
