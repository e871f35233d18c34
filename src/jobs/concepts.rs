//! Training a model's concept detector ([`crate::concepts`]) on a dataset's train split and
//! measuring it on dev: `captioner concepts` and the step at the end of every training run.

use std::path::{Path, PathBuf};

use crate::concepts::ConceptDetector;
use crate::concepts::train::{ConceptOptions, ConceptReport, Example};
use crate::dataset::{Dataset, ImageEntry, ImportOptions, Split};
use crate::features::{ExtractOptions, FeatureCache, load_cached, load_cached_spatial};
use crate::jobs::{CancelToken, Job, JobContext, JobError, JobEvent, Sink};

/// A trained detector and what training measured.
#[derive(Clone, Debug)]
pub struct ConceptOutcome {
    pub detector: ConceptDetector,
    pub report: ConceptReport,
}

/// The pooled features of `entries` from the cache (the mean of the feature map where only
/// that is cached); photos without either are left out.
fn examples<'a>(
    ds: &Dataset,
    entries: &[&ImageEntry],
    feats: &'a [Option<Vec<f32>>],
) -> Vec<Example<'a>> {
    entries
        .iter()
        .zip(feats)
        .filter_map(|(e, f)| {
            Some(Example {
                feature: f.as_deref()?,
                captions: ds.cleaned(e),
            })
        })
        .collect()
}

/// The cached pooled features of `paths`, falling back on the mean of a cached feature map.
fn pooled_features(cache: &FeatureCache, paths: &[PathBuf]) -> Vec<Option<Vec<f32>>> {
    let mut feats = load_cached(cache, paths);
    let missing: Vec<usize> = (0..paths.len()).filter(|&i| feats[i].is_none()).collect();
    if !missing.is_empty() {
        let some: Vec<PathBuf> = missing.iter().map(|&i| paths[i].clone()).collect();
        for (i, m) in missing.into_iter().zip(load_cached_spatial(cache, &some)) {
            feats[i] = m.map(|m| m.mean());
        }
    }
    feats
}

/// Trains a detector on `ds`'s train split (measured on its dev split) from the features
/// `cache` holds for `encoder_id`; photos without a cached feature are left out.
pub fn train_on_dataset(
    ds: &Dataset,
    cache: &FeatureCache,
    encoder_id: &str,
    options: &ConceptOptions,
) -> Result<ConceptOutcome, JobError> {
    let train: Vec<&ImageEntry> = ds.split(Split::Train).collect();
    let dev: Vec<&ImageEntry> = ds.split(Split::Dev).collect();
    let paths = |es: &[&ImageEntry]| es.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
    let train_f = pooled_features(cache, &paths(&train));
    let dev_f = pooled_features(cache, &paths(&dev));
    let train_x = examples(ds, &train, &train_f);
    let dev_x = examples(ds, &dev, &dev_f);
    if train_x.is_empty() {
        return Err(JobError::msg(format!(
            "{}: no training photo has a cached image feature",
            ds.root.display()
        )));
    }
    let trained_on = ds.root.file_name().map_or_else(
        || ds.root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (detector, report) =
        crate::concepts::train::train(&train_x, &dev_x, options, encoder_id, &trained_on)
            .job_context(|| "training the concept detector")?;
    Ok(ConceptOutcome { detector, report })
}

/// `captioner concepts`: reads the dataset, computes the missing image features, trains the
/// detector and (with `write`) stores it in `model_dir`.
#[allow(clippy::too_many_arguments)]
pub fn concepts(
    model_dir: &Path,
    dataset_dir: &Path,
    cache_dir: &Path,
    encoder: &crate::encoder::Encoder,
    import: &ImportOptions,
    options: &ConceptOptions,
    write: bool,
    events: Sink,
    cancel: &CancelToken,
) -> Result<ConceptOutcome, JobError> {
    if !model_dir.join(crate::model_dir::META_FILE).is_file() {
        return Err(JobError::msg(format!(
            "{} is not a model folder (no {})",
            model_dir.display(),
            crate::model_dir::META_FILE
        )));
    }
    let ds = crate::jobs::import::import(dataset_dir, import, events, cancel)?;
    let cache = FeatureCache::new(cache_dir, encoder.id());
    let paths: Vec<PathBuf> = ds
        .split(Split::Train)
        .chain(ds.split(Split::Dev))
        .map(|e| e.path.clone())
        .collect();
    if paths.is_empty() {
        return Err(JobError::msg(format!(
            "{}: training the concept detector needs a train split",
            dataset_dir.display()
        )));
    }
    crate::jobs::extract::extract(
        encoder,
        &cache,
        &paths,
        &ExtractOptions::default(),
        events,
        cancel,
    )?;
    if cancel.is_cancelled() {
        return Err(JobError::msg("cancelled"));
    }
    events(JobEvent::Phase {
        job: Job::Train,
        message: format!(
            "training the concept detector ({} words at most)",
            options.words
        ),
    });
    let outcome = train_on_dataset(&ds, &cache, encoder.id(), options)?;
    if write {
        outcome
            .detector
            .save(model_dir)
            .job_context(|| format!("writing the concept detector into {}", model_dir.display()))?;
    }
    Ok(outcome)
}

/// The step at the end of a training run: trains the detector once from the cached features
/// and writes it into each of `model_dirs` that exists; a failure is a warning. A fine-tuned
/// model (`base`: the model it started from) keeps its base model's detector when that has
/// one, as a user's folder is usually too small to learn hundreds of words from; a base
/// without a detector (an older model folder) gets one trained on the new dataset.
pub fn concepts_after_training(
    model_dirs: &[&Path],
    base: Option<&Path>,
    ds: &Dataset,
    cache: &FeatureCache,
    encoder_id: &str,
    events: Sink,
    cancel: &CancelToken,
) {
    let dirs: Vec<&Path> = model_dirs.iter().copied().filter(|d| d.is_dir()).collect();
    if dirs.is_empty() || cancel.is_cancelled() {
        return;
    }
    if let Some(base) = base {
        match ConceptDetector::load(base) {
            Ok(Some(d)) if d.info().encoder == encoder_id => {
                events(JobEvent::Phase {
                    job: Job::Train,
                    message: format!("keeping the concept detector of {}", base.display()),
                });
                for dir in dirs {
                    if let Err(e) = d.save(dir) {
                        events(JobEvent::Warning {
                            job: Job::Train,
                            message: format!("no concept detector for {}: {e}", dir.display()),
                        });
                    }
                }
                return;
            }
            Ok(_) => {}
            Err(e) => events(JobEvent::Warning {
                job: Job::Train,
                message: format!("the base model's concept detector is not used: {e}"),
            }),
        }
    }
    events(JobEvent::Phase {
        job: Job::Train,
        message: "training the concept detector".into(),
    });
    match train_on_dataset(ds, cache, encoder_id, &ConceptOptions::default()) {
        Ok(outcome) => {
            events(JobEvent::Phase {
                job: Job::Train,
                message: format!(
                    "concept detector: {} words, dev mAP {} ({:.1} s)",
                    outcome.report.words,
                    outcome
                        .report
                        .dev_map
                        .map_or("-".to_string(), |m| format!("{m:.3}")),
                    outcome.report.seconds
                ),
            });
            for dir in dirs {
                if let Err(e) = outcome.detector.save(dir) {
                    events(JobEvent::Warning {
                        job: Job::Train,
                        message: format!(
                            "no concept detector for {} (`captioner concepts` can add it later): {e}",
                            dir.display()
                        ),
                    });
                }
            }
        }
        Err(e) => events(JobEvent::Warning {
            job: Job::Train,
            message: format!(
                "no concept detector (`captioner concepts` can add it later): {}",
                e.report()
            ),
        }),
    }
}
