//! Reading a captioned photo folder.

use std::path::Path;

use super::{CancelToken, Job, JobContext, JobError, JobEvent, Sink};
use crate::dataset::{self, Dataset, ImportOptions};

/// Reads and checks the dataset in `dir` (any supported layout). Problems with single files
/// or lines are in [`Dataset::problems`]; only an unusable dataset is an error.
pub fn import(
    dir: &Path,
    options: &ImportOptions,
    events: Sink,
    _cancel: &CancelToken,
) -> Result<Dataset, JobError> {
    events(JobEvent::Phase {
        job: Job::Import,
        message: format!("reading {}", dir.display()),
    });
    dataset::import(dir, options)
        .job_context(|| format!("reading the dataset in {}", dir.display()))
}
