//! Computing and caching the image features of a dataset.

use std::path::PathBuf;
use std::time::Duration;

use super::{CancelToken, Job, JobContext, JobError, JobEvent, Sink};
use crate::encoder::Encoder;
use crate::features::{self, ExtractEvent, ExtractOptions, ExtractReport, FeatureCache};

/// Encodes every image of `paths` that is not in `cache` yet, and caches its features.
/// Unreadable images are reported ([`JobEvent::Skipped`]) and left out; a cancel stops after
/// the current batch, keeping what is finished.
pub fn extract(
    encoder: &Encoder,
    cache: &FeatureCache,
    paths: &[PathBuf],
    options: &ExtractOptions,
    events: Sink,
    cancel: &CancelToken,
) -> Result<ExtractReport, JobError> {
    events(JobEvent::Phase {
        job: Job::Features,
        message: format!("image features of {} photos", paths.len()),
    });
    features::extract(
        encoder,
        cache,
        paths,
        options,
        cancel.flag(),
        &mut |e| match e {
            ExtractEvent::Started { total, .. } => {
                events(JobEvent::Progress {
                    job: Job::Features,
                    done: 0,
                    total,
                    eta: None,
                });
            }
            ExtractEvent::Progress {
                done,
                total,
                eta_seconds,
                ..
            } => events(JobEvent::Progress {
                job: Job::Features,
                done,
                total,
                eta: (eta_seconds.is_finite() && eta_seconds >= 0.0)
                    .then(|| Duration::from_secs_f64(eta_seconds)),
            }),
            ExtractEvent::Failed { path, reason } => events(JobEvent::Skipped {
                job: Job::Features,
                path,
                reason,
            }),
        },
    )
    .job_context(|| format!("computing image features into {}", cache.dir().display()))
}
