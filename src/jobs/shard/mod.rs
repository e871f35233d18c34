//! Captioning millions of photos on many machines: deterministic shards, resumable runs and
//! their completion manifests (`captioner batch --shard K/N --out OUT`), and merging the
//! shards back into one file (`captioner merge`). A cluster scheduler (Slurm job arrays,
//! Kubernetes Indexed Jobs, GNU parallel) runs one shard per task; `docs/cluster.md` shows how.
//!
//! A shard is the K-th of N contiguous parts of the sorted photo list ([`photos`]). Its files
//! in `OUT`:
//!
//! | file | what it holds |
//! | --- | --- |
//! | `shard-K-of-N.state.json` | written (atomically) when the shard starts: the photo list's hash, the model's name and hash, the options ([`ShardState`]) |
//! | `shard-K-of-N.jsonl` | one caption record per line (`batch --json`'s records, `docs/formats.md`), appended a line at a time, synced every batch |
//! | `shard-K-of-N.failed.jsonl` | one line per photo that could not be read: `{"image", "path", "error"}` |
//! | `shard-K-of-N.done.json` | the completion manifest ([`Manifest`]), written when every photo of the shard is handled |
//!
//! Run again with the same arguments, an interrupted shard goes on after the last complete
//! line (a torn last line is dropped and its photo captioned again); a shard with a manifest
//! is skipped; a run with another model, other options or another photo list is refused
//! ([`ShardError::Mismatch`]) rather than mixing captions of two settings in one shard.

mod merge;
pub mod photos;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use merge::{Merged, ShardFailure, merge};
pub use photos::{Photo, PhotoList, PhotoSource};

use super::caption::{self, FolderOptions, FolderReport};
use super::{CancelToken, Job, JobError, JobEvent, Sink};
use crate::export::ExportRow;
use crate::pipeline::{Captioner, DecodeOptions};

/// The version of the state and manifest files this program writes and reads.
pub const FORMAT: u32 = 1;

/// Errors of shard runs and merges; each names the file (and line) it is about.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("--shard {0:?}: give it as K/N, the K-th of N shards counting from 0 (0/4 .. 3/4)")]
    Spec(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    List {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("{}: cannot read the tar archive: {source}", path.display())]
    Tar {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}, line {line}: not a caption record ({message}); the file is damaged: delete the shard's files to caption it again",
        path.display()
    )]
    Record {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: cannot read it: {message}", path.display())]
    BadFile { path: PathBuf, message: String },
    #[error(
        "{}: this shard was started with other settings, and its captions must not be mixed with this run's: {differences}. Run it with the settings it started with, or give another --out folder (or delete the shard's files to start it again)",
        path.display()
    )]
    Mismatch { path: PathBuf, differences: String },
    #[error(
        "{} is there but {} is not: it was not written by a shard run this program can continue; delete it or give another --out folder",
        found.display(),
        state.display()
    )]
    Foreign { found: PathBuf, state: PathBuf },
    #[error("{}: no shard files (shard-K-of-N.*) in this folder", out.display())]
    NoShards { out: PathBuf },
    #[error("{}: the folder holds shards of different splits ({}): merge one split at a time", out.display(), counts)]
    MixedSplits { out: PathBuf, counts: String },
    #[error("{}: {}", out.display(), incomplete(*shards, missing, unfinished))]
    Incomplete {
        out: PathBuf,
        shards: usize,
        missing: Vec<usize>,
        unfinished: Vec<usize>,
    },
    #[error("{}: {differences}, unlike shard 0's manifest: the shards were not made by the same run", path.display())]
    Disagree { path: PathBuf, differences: String },
}

fn incomplete(shards: usize, missing: &[usize], unfinished: &[usize]) -> String {
    let list = |v: &[usize]| {
        v.iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "shard{} {} of {shards} missing (no files)",
            if missing.len() == 1 { "" } else { "s" },
            list(missing)
        ));
    }
    if !unfinished.is_empty() {
        parts.push(format!(
            "shard{} {} of {shards} not finished (no manifest: run {} again)",
            if unfinished.len() == 1 { "" } else { "s" },
            list(unfinished),
            if unfinished.len() == 1 { "it" } else { "them" }
        ));
    }
    parts.join("; ")
}

/// Which shard: the K-th (`index`, from 0) of N (`count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for ShardSpec {
    type Err = ShardError;

    /// `K/N`, 0 <= K < N.
    fn from_str(s: &str) -> Result<ShardSpec, ShardError> {
        let bad = || ShardError::Spec(s.to_string());
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(ShardSpec { index, count })
    }
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The files of one shard in its output folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardFiles {
    /// `shard-K-of-N.jsonl`: the caption records.
    pub records: PathBuf,
    /// `shard-K-of-N.failed.jsonl`: the photos that could not be read.
    pub failed: PathBuf,
    /// `shard-K-of-N.state.json`: what the shard was started with.
    pub state: PathBuf,
    /// `shard-K-of-N.done.json`: the completion manifest.
    pub done: PathBuf,
}

impl ShardFiles {
    /// The files of shard `spec` in `out`.
    pub fn new(out: &Path, spec: ShardSpec) -> ShardFiles {
        let stem = format!("shard-{}-of-{}", spec.index, spec.count);
        ShardFiles {
            records: out.join(format!("{stem}.jsonl")),
            failed: out.join(format!("{stem}.failed.jsonl")),
            state: out.join(format!("{stem}.state.json")),
            done: out.join(format!("{stem}.done.json")),
        }
    }
}

/// The model a shard was captioned with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelStamp {
    /// Its name as the model lists show it.
    pub name: String,
    /// Its folder on the machine that ran the shard.
    pub dir: PathBuf,
    /// The SHA-256 of its files (all but `meta.json`, which holds only its name and record)
    /// and of the encoder's id: the same hash, the same captions.
    pub hash: String,
    /// The image encoder's id (name and weights hash).
    pub encoder: String,
}

impl ModelStamp {
    /// The stamp of the model `captioner` captions with (its folder's files are hashed).
    pub fn of(captioner: &Captioner) -> Result<ModelStamp, ShardError> {
        let dir = &captioner.model_dir;
        let io = |path: &Path, source| ShardError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.file_name() != Some(crate::model_dir::META_FILE.as_ref()))
            .collect();
        files.sort();
        let mut summary = format!("encoder {}\n", captioner.encoder.id());
        for f in &files {
            let hash = crate::files::content_hash(f).map_err(|e| io(f, e))?;
            let name = f.file_name().unwrap_or_default().to_string_lossy();
            summary.push_str(&format!("{hash}  {name}\n"));
        }
        Ok(ModelStamp {
            name: super::models::model_label(dir),
            dir: dir.clone(),
            hash: crate::files::bytes_hash(summary.as_bytes()),
            encoder: captioner.encoder.id().to_string(),
        })
    }
}

/// How a shard captions: what changes its records (so a resumed shard must use the same).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    pub decode: DecodeOptions,
    /// Text put before and after every caption (`--prefix`, `--suffix`).
    pub prefix: String,
    pub suffix: String,
}

/// Settings of a shard run.
#[derive(Clone, Debug, Default)]
pub struct ShardOptions {
    pub folder: FolderOptions,
    pub prefix: String,
    pub suffix: String,
}

impl ShardOptions {
    fn run_options(&self) -> RunOptions {
        RunOptions {
            decode: self.folder.decode.clone(),
            prefix: self.prefix.clone(),
            suffix: self.suffix.clone(),
        }
    }
}

/// What a shard was started with (`shard-K-of-N.state.json`), and what its manifest repeats:
/// two runs may write into one shard only when these agree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardState {
    pub format: u32,
    pub shard: usize,
    pub shards: usize,
    /// Photos in the whole list, and the hash of their names ([`PhotoList::hash`]).
    pub photos_total: usize,
    pub list_hash: String,
    /// Photos in this shard, and the first and last of them.
    pub photos: usize,
    pub first: Option<String>,
    pub last: Option<String>,
    pub model: ModelStamp,
    pub options: RunOptions,
    /// When the shard was started (ISO 8601 UTC).
    pub started: String,
    /// The captioner version that started it.
    pub version: String,
}

impl ShardState {
    /// What differs between two states, in words ("" when they agree). The model's name and
    /// folder, the start time and the version may differ.
    fn differences(&self, was: &ShardState) -> String {
        let mut d = Vec::new();
        if (self.photos_total, &self.list_hash) != (was.photos_total, &was.list_hash)
            || (self.shard, self.shards) != (was.shard, was.shards)
        {
            d.push(format!(
                "the photo list: {} photos (list hash {}) here, {} photos (list hash {}) then",
                self.photos_total,
                short(&self.list_hash),
                was.photos_total,
                short(&was.list_hash)
            ));
        }
        if self.model.hash != was.model.hash {
            d.push(format!(
                "the model: {} (hash {}) here, {} (hash {}) then",
                self.model.name,
                short(&self.model.hash),
                was.model.name,
                short(&was.model.hash)
            ));
        }
        d.extend(option_differences(&self.options, &was.options));
        d.join("; ")
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The options that differ, each "name: value here, value then".
fn option_differences(now: &RunOptions, was: &RunOptions) -> Vec<String> {
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&name, v, out);
                }
            }
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let values = |o: &RunOptions| {
        let mut out = Vec::new();
        flatten("", &serde_json::to_value(o).unwrap_or_default(), &mut out);
        out
    };
    let (now, was) = (values(now), values(was));
    let mut d = Vec::new();
    for (name, value) in &now {
        let then = was
            .iter()
            .find(|(n, _)| n == name)
            .map_or("(unset)", |(_, v)| v.as_str());
        if then != value {
            d.push(format!("{name}: {value} here, {then} then"));
        }
    }
    d
}

/// A photo of a shard that could not be read (a line of `shard-K-of-N.failed.jsonl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedPhoto {
    pub image: String,
    pub path: String,
    pub error: String,
}

/// How long a shard took and on what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// When the shard was started and finished (ISO 8601 UTC).
    pub started: String,
    pub finished: String,
    /// Photos already handled when the last run began (0 unless it resumed).
    pub resumed_at: usize,
    /// The last run: photos handled, seconds, and photos per second.
    pub photos_this_run: usize,
    pub seconds: f64,
    pub photos_per_second: f64,
    /// The threads and device it ran on.
    pub threads: usize,
    pub device: String,
}

/// A finished shard (`shard-K-of-N.done.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(flatten)]
    pub state: ShardState,
    /// Photos captioned (the lines of `shard-K-of-N.jsonl`) and photos that could not be read.
    pub captioned: usize,
    pub failed: usize,
    pub failures: Vec<FailedPhoto>,
    pub timings: Timings,
}

/// What a shard run did.
#[derive(Clone, Debug, PartialEq)]
pub enum ShardOutcome {
    /// The shard already had its manifest: nothing was done.
    AlreadyDone(Manifest),
    /// Every photo of the shard is handled and the manifest written.
    Done(Manifest),
    /// Stopped (cancelled) before the end: `handled` of `photos` are in the shard's files,
    /// and a run with the same arguments goes on from there.
    Stopped { handled: usize, photos: usize },
}

/// How a resumed shard found its files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resumed {
    /// Photos already handled (captioned or failed) when the run began.
    pub done: usize,
    /// A last line cut short by the interruption, dropped (its photo is captioned again).
    pub torn: bool,
}

/// Runs shard `spec` of `list` into `out`: starts it, or resumes it, or skips it when its
/// manifest is there; refuses to continue a shard started with another model, other options
/// or another photo list. Photos that cannot be read are recorded and the shard goes on.
pub fn run_shard(
    captioner: &Captioner,
    list: &PhotoList,
    spec: ShardSpec,
    options: &ShardOptions,
    out: &Path,
    events: Sink,
    cancel: &CancelToken,
) -> Result<ShardOutcome, JobError> {
    let run_started = Instant::now();
    std::fs::create_dir_all(out).map_err(|source| {
        JobError::new(ShardError::Io {
            path: out.to_path_buf(),
            source,
        })
    })?;
    let files = ShardFiles::new(out, spec);
    let range = list.part(spec.index, spec.count);
    let photos = &list.photos[range.clone()];
    let state = ShardState {
        format: FORMAT,
        shard: spec.index,
        shards: spec.count,
        photos_total: list.photos.len(),
        list_hash: list.hash(),
        photos: photos.len(),
        first: photos.first().map(|p| p.image.clone()),
        last: photos.last().map(|p| p.image.clone()),
        model: ModelStamp::of(captioner).map_err(JobError::new)?,
        options: options.run_options(),
        started: crate::model_dir::iso8601_utc(unix_now()),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };

    if files.done.exists() {
        let manifest: Manifest = read_json(&files.done).map_err(JobError::new)?;
        check_same(&state, &manifest.state, &files.done)?;
        return Ok(ShardOutcome::AlreadyDone(manifest));
    }
    let (resumed, mut failures, started) = if files.state.exists() {
        let was: ShardState = read_json(&files.state).map_err(JobError::new)?;
        check_same(&state, &was, &files.state)?;
        let (resumed, failures) = resume(&files, photos).map_err(JobError::new)?;
        (resumed, failures, was.started)
    } else {
        for found in [&files.records, &files.failed] {
            if found.exists() {
                return Err(JobError::new(ShardError::Foreign {
                    found: found.clone(),
                    state: files.state.clone(),
                }));
            }
        }
        write_json(&files.state, &state).map_err(JobError::new)?;
        (Resumed::default(), Vec::new(), state.started.clone())
    };
    if resumed.torn {
        events(JobEvent::Warning {
            job: Job::Batch,
            message: format!(
                "{}: the last line was cut short (the run was interrupted while writing it); dropped, and its photo captioned again",
                files.records.display()
            ),
        });
    }
    if resumed.done > 0 {
        events(JobEvent::Phase {
            job: Job::Batch,
            message: format!(
                "resuming shard {spec}: {} of {} photos already done",
                resumed.done,
                photos.len()
            ),
        });
    }

    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| {
            JobError::new(ShardError::Io {
                path: path.clone(),
                source,
            })
        }
    };
    let append = |path: &Path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))
    };
    let mut records = append(&files.records)?;
    let mut failed_file = append(&files.failed)?;
    let rest = &photos[resumed.done..];
    let paths: Vec<PathBuf> = rest.iter().map(|p| p.path.clone()).collect();
    let first = range.start + resumed.done;
    let stop = CancelToken::new();
    let mut write_error: Option<JobError> = None;
    // The handled photos so far that were captioned (the others failed).
    let mut captioned = resumed.done - failures.len().min(resumed.done);
    let mut unsynced = 0usize;
    let sync_every = options.folder.batch.max(1);
    let report: FolderReport = caption::caption_photos(
        captioner,
        &paths,
        &|i| list.read(first + i),
        &options.folder,
        &mut |event| {
            if cancel.is_cancelled() {
                stop.cancel();
            }
            if write_error.is_some() {
                return;
            }
            if let JobEvent::Captioned { index, result, .. } = &event {
                let photo = &rest[*index];
                let written = match result {
                    Ok(c) => {
                        let row = ExportRow::machine(
                            photo.image.clone(),
                            photo.path.clone(),
                            c,
                            &options.prefix,
                            &options.suffix,
                        );
                        captioned += 1;
                        append_line(&mut records, &row).map_err(io(&files.records))
                    }
                    Err(e) => {
                        let f = FailedPhoto {
                            image: photo.image.clone(),
                            path: photo.path.to_string_lossy().into_owned(),
                            error: e.report(),
                        };
                        let w = append_line(&mut failed_file, &f).map_err(io(&files.failed));
                        failures.push(f);
                        w
                    }
                };
                unsynced += 1;
                let synced = if unsynced >= sync_every {
                    unsynced = 0;
                    sync(&records, &files.records).and_then(|()| sync(&failed_file, &files.failed))
                } else {
                    Ok(())
                };
                if let Err(e) = written.and(synced) {
                    write_error = Some(e);
                    stop.cancel();
                    return;
                }
            }
            events(event);
        },
        &stop,
    )?;
    if let Some(e) = write_error {
        return Err(e);
    }
    sync(&records, &files.records)?;
    sync(&failed_file, &files.failed)?;
    let handled = resumed.done + report.captioned + report.failed;
    if report.stopped || handled < photos.len() {
        return Ok(ShardOutcome::Stopped {
            handled,
            photos: photos.len(),
        });
    }
    let seconds = run_started.elapsed().as_secs_f64();
    let this_run = report.captioned + report.failed;
    let manifest = Manifest {
        state: ShardState {
            started: started.clone(),
            ..state
        },
        captioned,
        failed: failures.len(),
        failures,
        timings: Timings {
            started,
            finished: crate::model_dir::iso8601_utc(unix_now()),
            resumed_at: resumed.done,
            photos_this_run: this_run,
            seconds,
            photos_per_second: this_run as f64 / seconds.max(1e-9),
            threads: rayon::current_num_threads(),
            device: crate::pipeline::device_name(captioner.encoder.device()),
        },
    };
    write_json(&files.done, &manifest).map_err(JobError::new)?;
    Ok(ShardOutcome::Done(manifest))
}

fn check_same(now: &ShardState, was: &ShardState, path: &Path) -> Result<(), JobError> {
    if was.format > FORMAT {
        return Err(JobError::new(ShardError::BadFile {
            path: path.to_path_buf(),
            message: format!(
                "written by a newer captioner (format {}; this one reads {FORMAT}): use a newer captioner",
                was.format
            ),
        }));
    }
    let differences = now.differences(was);
    if differences.is_empty() {
        Ok(())
    } else {
        Err(JobError::new(ShardError::Mismatch {
            path: path.to_path_buf(),
            differences,
        }))
    }
}

/// Reads what an interrupted shard wrote: the complete lines of both files that belong to
/// the photos handled in order; a torn last line and anything after the first photo not
/// handled is cut off the files, so that the run goes on from there.
fn resume(files: &ShardFiles, photos: &[Photo]) -> Result<(Resumed, Vec<FailedPhoto>), ShardError> {
    let (rows, rows_torn) = read_lines::<ExportRow>(&files.records, true)?;
    let (fails, fails_torn) = read_lines::<FailedPhoto>(&files.failed, true)?;
    let (mut r, mut f) = (0, 0);
    let mut done = 0;
    for photo in photos {
        if rows.get(r).is_some_and(|(row, _)| row.image == photo.image) {
            r += 1;
        } else if fails
            .get(f)
            .is_some_and(|(fail, _)| fail.image == photo.image)
        {
            f += 1;
        } else {
            break;
        }
        done += 1;
    }
    fn keep<T>(lines: &[(T, u64)], n: usize) -> Option<u64> {
        lines.get(n).map(|(_, at)| *at)
    }
    // Cut each file after its last line that is kept (a torn line, or lines of photos after
    // a gap, are captioned again).
    for (path, cut, torn) in [
        (&files.records, keep(&rows, r), rows_torn),
        (&files.failed, keep(&fails, f), fails_torn),
    ] {
        let at = match (cut, torn) {
            (Some(at), _) => Some(at),
            (None, Some(at)) => Some(at),
            (None, None) => None,
        };
        if let Some(at) = at {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|source| ShardError::Io {
                    path: path.clone(),
                    source,
                })?;
            file.set_len(at)
                .and_then(|()| file.sync_all())
                .map_err(|source| ShardError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
    }
    let failures = fails.into_iter().take(f).map(|(x, _)| x).collect();
    Ok((
        Resumed {
            done,
            torn: rows_torn.is_some() || fails_torn.is_some(),
        },
        failures,
    ))
}

/// The records of a JSON-lines file, each with the offset of its line, and the offset of a
/// torn last line (see [`read_lines`]).
pub(crate) type Lines<T> = (Vec<(T, u64)>, Option<u64>);

/// The lines of a JSON-lines file, each with the byte offset where it starts, and the
/// offset of a torn last line (unterminated, or not a record) when `allow_torn`; a missing
/// file has none. A bad line before the last is an error naming the file and line.
pub(crate) fn read_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
    allow_torn: bool,
) -> Result<Lines<T>, ShardError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(source) => {
            return Err(ShardError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut line_no = 0;
    while at < bytes.len() {
        line_no += 1;
        let end = bytes[at..].iter().position(|&b| b == b'\n').map(|i| at + i);
        let line = &bytes[at..end.unwrap_or(bytes.len())];
        let parsed = serde_json::from_slice::<T>(line);
        let last = end.is_none_or(|e| e + 1 >= bytes.len());
        match (parsed, end) {
            (Ok(v), Some(e)) => {
                out.push((v, at as u64));
                at = e + 1;
            }
            (_, _) if last && allow_torn => return Ok((out, Some(at as u64))),
            (Ok(_), None) => {
                return Err(ShardError::Record {
                    path: path.to_path_buf(),
                    line: line_no,
                    message: "the line is not finished".into(),
                });
            }
            (Err(e), _) => {
                return Err(ShardError::Record {
                    path: path.to_path_buf(),
                    line: line_no,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok((out, None))
}

/// Appends one record as one complete line, in a single write.
fn append_line(file: &mut File, value: &impl Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    file.write_all(&line)
}

fn sync(file: &File, path: &Path) -> Result<(), JobError> {
    file.sync_data().map_err(|source| {
        JobError::new(ShardError::Io {
            path: path.to_path_buf(),
            source,
        })
    })
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ShardError> {
    let bytes = std::fs::read(path).map_err(|source| ShardError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ShardError::BadFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), ShardError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| ShardError::BadFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    crate::files::write_atomic(path, &bytes).map_err(|source| ShardError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The threads a shard should use: `--threads` when given, else `SLURM_CPUS_PER_TASK` (the
/// cores Slurm gave the task) when it is a positive number, else `None` (all the cores).
pub fn threads_for(threads: Option<usize>, slurm_cpus_per_task: Option<&str>) -> Option<usize> {
    threads.filter(|&n| n > 0).or_else(|| {
        slurm_cpus_per_task
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
    })
}

/// Makes every parallel part of captioning (decoding, the encoder, the search's products)
/// use `threads` threads; call it before anything else runs in parallel.
pub fn use_threads(threads: usize) -> Result<(), JobError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build_global()
        .map_err(|e| JobError::msg(format!("cannot set up {threads} threads: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_parse_and_refuse_nonsense() {
        let s: ShardSpec = "2/4".parse().unwrap();
        assert_eq!(s, ShardSpec { index: 2, count: 4 });
        assert_eq!(s.to_string(), "2/4");
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2", ""] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn threads_come_from_the_flag_then_slurm() {
        assert_eq!(threads_for(Some(3), Some("8")), Some(3));
        assert_eq!(threads_for(None, Some("8")), Some(8));
        assert_eq!(threads_for(None, Some(" 2\n")), Some(2));
        assert_eq!(threads_for(None, Some("lots")), None);
        assert_eq!(threads_for(None, Some("0")), None);
        assert_eq!(threads_for(None, None), None);
        assert_eq!(threads_for(Some(0), None), None);
    }

    #[test]
    fn a_torn_last_line_is_found_and_a_bad_middle_line_named() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.jsonl");
        std::fs::write(
            &p,
            "{\"error\":\"x\",\"image\":\"a\",\"path\":\"a\"}\n{\"ima",
        )
        .unwrap();
        let (lines, torn) = read_lines::<FailedPhoto>(&p, true).unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(torn, Some(37));
        assert!(read_lines::<FailedPhoto>(&p, false).is_err());
        std::fs::write(
            &p,
            "{\"ima\n{\"error\":\"x\",\"image\":\"a\",\"path\":\"a\"}\n",
        )
        .unwrap();
        let e = read_lines::<FailedPhoto>(&p, true).unwrap_err().to_string();
        assert!(e.contains("s.jsonl, line 1"), "{e}");
    }

    #[test]
    fn differences_say_what_changed() {
        let a = RunOptions {
            decode: DecodeOptions::default(),
            prefix: String::new(),
            suffix: String::new(),
        };
        let b = RunOptions {
            decode: DecodeOptions {
                beam: 5,
                ..DecodeOptions::default()
            },
            ..a.clone()
        };
        assert!(option_differences(&a, &a).is_empty());
        assert_eq!(option_differences(&b, &a), ["decode.beam: 5 here, 3 then"]);
    }
}
