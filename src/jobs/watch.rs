//! Watched folders: photos that appear in a folder (copied, saved or moved in; in sub-folders
//! too) are captioned, and their sidecars or metadata written, as they arrive.
//!
//! Two parts, so that both front ends use the same detection:
//!
//! - [`FolderWatcher`] watches a folder recursively (`notify` with the full debouncer) and
//!   hands out photos once they have stopped changing: every photo noticed waits in a
//!   [`PhotoQueue`] (paths only, de-duplicated, so a burst of 10,000 costs little memory)
//!   until its size and modification time are the same at two checks [`WatchTiming::settle`]
//!   apart. A new sub-folder is listed when it appears (its photos may be there before its
//!   own watch is). Our own writes (the `.txt` and `.xmp` sidecars and their hidden temporary
//!   files are not photos; a photo we embedded a caption into is remembered by its new size
//!   and time) do not bring a photo back. The watched folder itself being renamed or deleted
//!   is noticed by its identity (device and inode), whatever events the system sends.
//! - [`watch`] is the job of `captioner watch`: it takes the ready photos a batch at a time
//!   through [`super::caption::caption_folder`] (the batched pipeline of `captioner batch`),
//!   writes what [`WatchOptions`] asks with the writers of [`crate::export`], and leaves alone
//!   the photos that already have a caption (the rule of `batch --existing skip`) unless told
//!   otherwise. A photo that fails to decode while its file is only seconds old is taken to be
//!   still on its way (a copy that paused) and is tried again once it settles, instead of
//!   being reported half-written.
//!
//! The Batch panel runs a [`FolderWatcher`] on a thread of its own and sends the ready photos
//! to the app's worker, as its "Caption N" button does.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode};

use super::caption::{FolderOptions, caption_folder, list_photos};
use super::{CancelToken, Job, JobError, JobEvent, Sink};
use crate::encoder::image_io::ImageLoadError;
use crate::export::{self, Existing, ExportRow, MetadataTarget};

/// A file's size and modification time: a photo is ready when two checks give the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    pub modified: Option<SystemTime>,
}

impl Stamp {
    /// The stamp of the file at `path` (following links).
    pub fn of(path: &Path) -> std::io::Result<Stamp> {
        let m = std::fs::metadata(path)?;
        Ok(Stamp {
            len: m.len(),
            modified: m.modified().ok(),
        })
    }
}

/// How long the watcher waits, and for what.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchTiming {
    /// The debouncer's quiet time: events of one file closer together than this are one.
    pub debounce: Duration,
    /// Time between the two checks of a photo's size and modification time.
    pub settle: Duration,
    /// A photo that cannot be decoded while its file is younger than this is taken to be
    /// still being written and is tried again; an older one is reported.
    pub still_writing: Duration,
    /// Photos handled are remembered this long, so late events about them (and our own
    /// writes into them) do not bring them back.
    pub remember: Duration,
}

impl Default for WatchTiming {
    fn default() -> Self {
        WatchTiming {
            debounce: Duration::from_millis(250),
            settle: Duration::from_millis(500),
            still_writing: Duration::from_secs(10),
            remember: Duration::from_secs(120),
        }
    }
}

/// A photo waiting in a [`PhotoQueue`]: what its last check saw, and when to check it next.
#[derive(Clone, Debug)]
struct Waiting {
    last: Option<Stamp>,
    due: Instant,
}

/// What [`PhotoQueue::take_ready`] found.
#[derive(Debug, Default)]
pub struct Taken {
    /// Photos whose size and time stayed the same between two checks, with that stamp.
    pub ready: Vec<(PathBuf, Stamp)>,
    /// Photos that are gone (moved away or deleted before they could be read).
    pub gone: Vec<PathBuf>,
    /// Photos whose file could not be looked at, with the error.
    pub failed: Vec<(PathBuf, std::io::Error)>,
}

/// The photos noticed but not yet handed out: a de-duplicated first-in first-out queue of
/// paths, each waiting until its file stops changing. Memory: one path and a few numbers per
/// photo.
#[derive(Debug)]
pub struct PhotoQueue {
    order: VecDeque<PathBuf>,
    waiting: HashMap<PathBuf, Waiting>,
    settle: Duration,
}

impl PhotoQueue {
    /// An empty queue whose photos are checked `settle` apart.
    pub fn new(settle: Duration) -> PhotoQueue {
        PhotoQueue {
            order: VecDeque::new(),
            waiting: HashMap::new(),
            settle,
        }
    }

    /// How many photos wait.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether `path` waits.
    pub fn contains(&self, path: &Path) -> bool {
        self.waiting.contains_key(path)
    }

    /// Queues a photo, to be checked from `now` on. A photo already waiting keeps its place
    /// (the next check sees whether it changed).
    pub fn push(&mut self, path: PathBuf, now: Instant) {
        if self.waiting.contains_key(&path) {
            return;
        }
        self.waiting.insert(
            path.clone(),
            Waiting {
                last: None,
                due: now,
            },
        );
        self.order.push_back(path);
    }

    /// Forgets every photo (the watched folder is gone).
    pub fn clear(&mut self) {
        self.order.clear();
        self.waiting.clear();
    }

    /// When the next check is due, if anything waits.
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting.values().map(|w| w.due).min()
    }

    /// Checks the photos that are due, in the order they came, with `stat` (the file's
    /// [`Stamp`]): a photo whose stamp is the one its previous check saw is ready and leaves
    /// the queue (at most `max` of them); one that changed (or is checked for the first time)
    /// waits another `settle`; one that is gone or cannot be looked at leaves the queue and is
    /// reported.
    pub fn take_ready(
        &mut self,
        now: Instant,
        max: usize,
        mut stat: impl FnMut(&Path) -> std::io::Result<Stamp>,
    ) -> Taken {
        let mut taken = Taken::default();
        let mut leaving = Vec::new();
        for path in &self.order {
            if taken.ready.len() >= max {
                break;
            }
            let Some(w) = self.waiting.get_mut(path) else {
                continue;
            };
            if w.due > now {
                continue;
            }
            match stat(path) {
                Ok(stamp) if w.last == Some(stamp) => {
                    taken.ready.push((path.clone(), stamp));
                    leaving.push(path.clone());
                }
                Ok(stamp) => {
                    w.last = Some(stamp);
                    w.due = now + self.settle;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    taken.gone.push(path.clone());
                    leaving.push(path.clone());
                }
                Err(e) => {
                    taken.failed.push((path.clone(), e));
                    leaving.push(path.clone());
                }
            }
        }
        if !leaving.is_empty() {
            for path in &leaving {
                self.waiting.remove(path);
            }
            let waiting = &self.waiting;
            self.order.retain(|p| waiting.contains_key(p));
        }
        taken
    }
}

/// Something the watcher noticed besides photos to caption.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// A photo went away (moved out or deleted) before it could be read.
    Vanished(PathBuf),
    /// A folder or file that could not be read or watched; watching goes on.
    Problem { path: PathBuf, message: String },
}

/// What one [`FolderWatcher::poll`] found.
#[derive(Debug, Default)]
pub struct Poll {
    /// Photos that stopped changing, oldest first.
    pub ready: Vec<PathBuf>,
    pub notes: Vec<Note>,
    /// The watched folder was renamed, moved or deleted: the watcher has stopped.
    pub folder_gone: bool,
}

/// The identity of a folder: a folder renamed away and another made in its place differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FolderId(u64, u64);

fn folder_id(dir: &Path) -> Option<FolderId> {
    let m = std::fs::metadata(dir).ok()?;
    if !m.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(FolderId(m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        Some(FolderId(0, 0))
    }
}

/// Watches a folder and its sub-folders for photos that appear; see the module's
/// documentation.
pub struct FolderWatcher {
    root: PathBuf,
    id: Option<FolderId>,
    started: SystemTime,
    timing: WatchTiming,
    debouncer: Option<
        notify_debouncer_full::Debouncer<
            notify::RecommendedWatcher,
            notify_debouncer_full::RecommendedCache,
        >,
    >,
    events: mpsc::Receiver<notify_debouncer_full::DebounceEventResult>,
    queue: PhotoQueue,
    /// Photos handled lately, with their stamp after we were done with them.
    handled: HashMap<PathBuf, (Stamp, Instant)>,
    notes: Vec<Note>,
}

impl FolderWatcher {
    /// Starts watching `dir` (recursively). Photos already there are not queued: only those
    /// that appear from now on.
    pub fn start(dir: &Path, timing: &WatchTiming) -> Result<FolderWatcher, JobError> {
        let id = folder_id(dir);
        if id.is_none() {
            return Err(JobError::msg(format!(
                "{}: not a folder (or it cannot be read)",
                dir.display()
            )));
        }
        std::fs::read_dir(dir)
            .map_err(|e| JobError::msg(format!("cannot read the folder {}: {e}", dir.display())))?;
        let (tx, rx) = mpsc::channel();
        let mut debouncer = notify_debouncer_full::new_debouncer(timing.debounce, None, tx)
            .map_err(|e| {
                JobError::msg(format!(
                    "cannot watch {} for new photos: {e}",
                    dir.display()
                ))
            })?;
        debouncer
            .watch(dir, RecursiveMode::Recursive)
            .map_err(|e| {
                JobError::msg(format!(
                    "cannot watch {} for new photos: {}",
                    dir.display(),
                    watch_error_text(&e)
                ))
            })?;
        Ok(FolderWatcher {
            root: dir.to_path_buf(),
            id,
            started: SystemTime::now(),
            timing: timing.clone(),
            debouncer: Some(debouncer),
            events: rx,
            queue: PhotoQueue::new(timing.settle),
            handled: HashMap::new(),
            notes: Vec::new(),
        })
    }

    /// The watched folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many photos wait to settle.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Waits up to `wait` for something to happen (less when a queued photo is due sooner),
    /// then gives at most `max` photos that stopped changing, and what else was noticed.
    pub fn poll(&mut self, wait: Duration, max: usize) -> Poll {
        let mut poll = Poll::default();
        if self.debouncer.is_none() {
            poll.folder_gone = true;
            return poll;
        }
        let now = Instant::now();
        let until = match self.queue.next_due() {
            Some(due) => due.saturating_duration_since(now).min(wait),
            None => wait,
        };
        match self.events.recv_timeout(until) {
            Ok(result) => self.take_events(result),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
        }
        while let Ok(result) = self.events.try_recv() {
            self.take_events(result);
        }
        if folder_id(&self.root) != self.id {
            self.stop();
            poll.folder_gone = true;
            poll.notes = std::mem::take(&mut self.notes);
            return poll;
        }
        let now = Instant::now();
        let remember = self.timing.remember;
        self.handled
            .retain(|_, (_, at)| now.duration_since(*at) < remember);
        let taken = self.queue.take_ready(now, max.max(1), Stamp::of);
        for (path, stamp) in taken.ready {
            if self.handled.get(&path).is_some_and(|(s, _)| *s == stamp) {
                continue;
            }
            poll.ready.push(path);
        }
        for path in taken.gone {
            self.notes.push(Note::Vanished(path));
        }
        for (path, e) in taken.failed {
            let message = format!("cannot look at the photo: {e}");
            self.notes.push(Note::Problem { path, message });
        }
        poll.notes = std::mem::take(&mut self.notes);
        poll
    }

    /// Marks a photo as handled (captioned, written, or left alone): events about it that
    /// come later, our own write into it included, do not bring it back unless it changes.
    pub fn handled(&mut self, path: &Path) {
        if let Ok(stamp) = Stamp::of(path) {
            self.handled
                .insert(path.to_path_buf(), (stamp, Instant::now()));
        }
    }

    /// Queues a photo again (it could not be decoded yet: probably still being written).
    pub fn retry(&mut self, path: PathBuf) {
        self.handled.remove(&path);
        self.queue.push(path, Instant::now());
    }

    /// Stops watching (also done when the watcher is dropped).
    pub fn stop(&mut self) {
        if let Some(d) = self.debouncer.take() {
            d.stop_nonblocking();
        }
        self.queue.clear();
    }

    fn take_events(&mut self, result: notify_debouncer_full::DebounceEventResult) {
        let now = Instant::now();
        match result {
            Ok(events) => {
                for e in events {
                    self.take_event(&e.event, now);
                }
            }
            Err(errors) => {
                for e in errors {
                    let path = e
                        .paths
                        .first()
                        .cloned()
                        .unwrap_or_else(|| self.root.clone());
                    let message = format!("cannot watch it: {}", watch_error_text(&e));
                    self.notes.push(Note::Problem { path, message });
                }
            }
        }
    }

    fn take_event(&mut self, event: &notify::Event, now: Instant) {
        if event.need_rescan() {
            self.rescan(now);
            return;
        }
        let paths: &[PathBuf] = match event.kind {
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_)) => &event.paths,
            EventKind::Modify(ModifyKind::Any | ModifyKind::Other) => &event.paths,
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => return,
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => match event.paths.last() {
                Some(to) => std::slice::from_ref(to),
                None => return,
            },
            EventKind::Modify(ModifyKind::Name(_)) => &event.paths,
            // Reads, removals and metadata changes (permissions, a touch) bring no new photo.
            _ => return,
        };
        for path in paths {
            self.noticed(path, now);
        }
    }

    /// A path that was created, written or moved in.
    fn noticed(&mut self, path: &Path, now: Instant) {
        if !is_watched_path(&self.root, path) {
            return;
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => self.add_folder(path, now, None),
            Ok(_) | Err(_) if crate::dataset::has_image_extension(path) => {
                self.queue.push(path.to_path_buf(), now)
            }
            _ => {}
        }
    }

    /// Queues the photos of a folder that appeared (its photos may be there before its own
    /// watch is), or, with `since`, the photos changed after that time.
    fn add_folder(&mut self, dir: &Path, now: Instant, since: Option<SystemTime>) {
        match list_photos(dir) {
            Ok((photos, unreadable)) => {
                for photo in photos {
                    if let Some(since) = since {
                        let changed = std::fs::metadata(&photo).is_ok_and(|m| arrived(&m) >= since);
                        if !changed {
                            continue;
                        }
                    }
                    self.queue.push(photo, now);
                }
                for (path, reason) in unreadable {
                    self.notes.push(Note::Problem {
                        path,
                        message: format!("cannot be read ({reason}); its photos are not captioned"),
                    });
                }
            }
            Err(e) => self.notes.push(Note::Problem {
                path: dir.to_path_buf(),
                message: format!(
                    "cannot be read ({}); its photos are not captioned",
                    e.report()
                ),
            }),
        }
    }

    /// The system dropped events (too many at once): the folder is listed again and the
    /// photos changed since watching began are queued (those handled are not brought back).
    fn rescan(&mut self, now: Instant) {
        let root = self.root.clone();
        let since = self
            .started
            .checked_sub(Duration::from_secs(2))
            .unwrap_or(self.started);
        self.add_folder(&root, now, Some(since));
    }
}

/// When a file last changed or arrived: its modification time, or on Unix its status change
/// time when that is later (a copy that keeps the original's modification time, `cp -a`, or a
/// photo moved in, arrives now with an old modification time).
fn arrived(m: &std::fs::Metadata) -> SystemTime {
    let modified = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let changed = u64::try_from(m.ctime()).ok().map(|s| {
            SystemTime::UNIX_EPOCH + Duration::new(s, m.ctime_nsec().clamp(0, 999_999_999) as u32)
        });
        if let Some(c) = changed {
            return modified.max(c);
        }
    }
    modified
}

/// Whether a path is one the watcher looks at: inside the watched folder, and neither it nor a
/// folder on the way hidden (a name starting with a dot, as our temporary files are).
fn is_watched_path(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    !rel.components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
}

/// A watch error in plain words; running out of inotify watches says what to do.
fn watch_error_text(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => "the system's limit on watched folders is reached \
             (raise fs.inotify.max_user_watches with sysctl)"
            .to_string(),
        _ => e.to_string(),
    }
}

/// Settings of a watched folder.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// How photos are captioned (the batch job's settings).
    pub folder: FolderOptions,
    /// Write a `.txt` sidecar beside each photo.
    pub sidecars: bool,
    /// Also write the caption as photo metadata (XMP sidecar, embedded).
    pub metadata: Vec<MetadataTarget>,
    /// What to do with a caption already there.
    pub existing: Existing,
    /// Put around every caption, after captioning.
    pub prefix: String,
    pub suffix: String,
    /// The most photos captioned in one pass of the pipeline.
    pub batch: usize,
    pub timing: WatchTiming,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            folder: FolderOptions::default(),
            sidecars: false,
            metadata: Vec::new(),
            existing: Existing::Skip,
            prefix: String::new(),
            suffix: String::new(),
            batch: 64,
            timing: WatchTiming::default(),
        }
    }
}

/// Why a watch ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WatchEnd {
    /// Stopped on request (Ctrl-C), after the photos in progress.
    #[default]
    Cancelled,
    /// The watched folder was renamed, moved or deleted.
    FolderGone,
}

/// What a watch did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WatchReport {
    pub captioned: usize,
    /// Left alone: a caption was already there, or the photo was gone before it was read.
    pub skipped: usize,
    /// Could not be read, or their caption could not be written.
    pub failed: usize,
    pub end: WatchEnd,
}

/// Why a photo is left alone under [`Existing::Skip`]: every place the options write to
/// already holds a caption (a `.txt` sidecar, a description in its metadata), as
/// `batch --existing skip` would leave it. `None`: it is to be captioned.
pub fn already_captioned(photo: &Path, options: &WatchOptions) -> Option<String> {
    if options.existing != Existing::Skip || (!options.sidecars && options.metadata.is_empty()) {
        return None;
    }
    let mut reasons = Vec::new();
    if options.sidecars {
        let sidecar = crate::sidecar::sidecar_path(photo);
        if !sidecar.exists() {
            return None;
        }
        reasons.push(format!(
            "{} is there",
            sidecar
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
    }
    if !options.metadata.is_empty() {
        match crate::metadata::read_description(photo) {
            Ok(Some(_)) => reasons.push("its metadata has a description".to_string()),
            _ => return None,
        }
    }
    Some(format!(
        "already has a caption ({}); --existing overwrite or append to caption it anyway",
        reasons.join(", ")
    ))
}

/// Writes one photo's caption where the options say; the failures, each naming its file.
fn write_row(row: &ExportRow, options: &WatchOptions) -> Result<(), String> {
    let rows = std::slice::from_ref(row);
    let mut failed = Vec::new();
    if options.sidecars {
        failed.extend(export::write_sidecars(rows, options.existing).failed);
    }
    for &target in &options.metadata {
        failed.extend(export::write_metadata(rows, target, options.existing).failed);
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// Whether a photo that failed to be read looks like one still being written: its content
/// is short or broken, and its file is younger than `still_writing`.
fn still_being_written(path: &Path, error: &JobError, still_writing: Duration) -> bool {
    let incomplete = error.0.chain().any(|e| {
        matches!(
            e.downcast_ref::<ImageLoadError>(),
            Some(
                ImageLoadError::Empty { .. }
                    | ImageLoadError::Corrupt { .. }
                    | ImageLoadError::NotAnImage { .. }
                    | ImageLoadError::Unsupported { .. }
            )
        )
    });
    incomplete
        && std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < still_writing)
}

/// Watches `dir` and captions the photos that appear in it (see the module's documentation)
/// until `cancel` is set or the folder goes away.
///
/// Events: a [`JobEvent::Phase`] once the folder is watched; then per photo a
/// [`JobEvent::Captioned`] (`Ok`: captioned and written; `Err`: it could not be read, or its
/// caption could not be written, the message naming the file) or a [`JobEvent::Skipped`]
/// (a caption was already there; it was gone before it could be read); a
/// [`JobEvent::Warning`] for a folder that cannot be read or watched. None of these stop the
/// watch. Cancelling stops after the batch in progress.
pub fn watch(
    captioner: &crate::pipeline::Captioner,
    dir: &Path,
    options: &WatchOptions,
    events: Sink,
    cancel: &CancelToken,
) -> Result<WatchReport, JobError> {
    let mut watcher = FolderWatcher::start(dir, &options.timing)?;
    events(JobEvent::Phase {
        job: Job::Batch,
        message: format!(
            "watching {} and its sub-folders for new photos",
            dir.display()
        ),
    });
    let mut report = WatchReport::default();
    let mut index = 0;
    let tick = Duration::from_millis(200);
    loop {
        if cancel.is_cancelled() {
            report.end = WatchEnd::Cancelled;
            break;
        }
        let poll = watcher.poll(tick, options.batch.max(1));
        for note in poll.notes {
            match note {
                Note::Vanished(path) => {
                    report.skipped += 1;
                    events(JobEvent::Skipped {
                        job: Job::Batch,
                        path,
                        reason: "it was gone (moved away or deleted) before it could be read"
                            .to_string(),
                    });
                }
                Note::Problem { path, message } => events(JobEvent::Warning {
                    job: Job::Batch,
                    message: format!("{}: {message}", path.display()),
                }),
            }
        }
        if poll.folder_gone {
            report.end = WatchEnd::FolderGone;
            break;
        }
        let mut todo = Vec::with_capacity(poll.ready.len());
        for path in poll.ready {
            match already_captioned(&path, options) {
                Some(reason) => {
                    watcher.handled(&path);
                    report.skipped += 1;
                    events(JobEvent::Skipped {
                        job: Job::Batch,
                        path,
                        reason,
                    });
                }
                None => todo.push(path),
            }
        }
        if todo.is_empty() {
            continue;
        }
        let mut retry = Vec::new();
        let still_writing = options.timing.still_writing;
        caption_folder(
            captioner,
            &todo,
            &options.folder,
            &mut |event| match event {
                JobEvent::Captioned { path, result, .. } => {
                    let result = match result {
                        Ok(caption) => {
                            let name = path
                                .strip_prefix(dir)
                                .unwrap_or(&path)
                                .display()
                                .to_string();
                            let row = ExportRow::machine(
                                name,
                                path.clone(),
                                &caption,
                                &options.prefix,
                                &options.suffix,
                            );
                            match write_row(&row, options) {
                                Ok(()) => Ok(caption),
                                Err(why) => Err(JobError::msg(format!(
                                    "{}: captioned (\"{}\") but not saved: {why}",
                                    path.display(),
                                    row.caption
                                ))),
                            }
                        }
                        Err(e) if still_being_written(&path, &e, still_writing) => {
                            retry.push(path);
                            return;
                        }
                        Err(e) => Err(e),
                    };
                    watcher.handled(&path);
                    match &result {
                        Ok(_) => report.captioned += 1,
                        Err(_) => report.failed += 1,
                    }
                    events(JobEvent::Captioned {
                        index,
                        path,
                        result,
                    });
                    index += 1;
                }
                // Per-batch progress means little while watching.
                JobEvent::Progress { .. } => {}
                other => events(other),
            },
            cancel,
        )?;
        for path in retry {
            watcher.retry(path);
        }
    }
    watcher.stop();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(len: u64) -> Stamp {
        Stamp {
            len,
            modified: None,
        }
    }

    #[test]
    fn a_photo_is_ready_when_two_checks_agree() {
        let settle = Duration::from_millis(500);
        let mut q = PhotoQueue::new(settle);
        let t0 = Instant::now();
        q.push("a.jpg".into(), t0);
        let mut size = 10;
        // First check: seen, not ready.
        let taken = q.take_ready(t0, 10, |_| Ok(stamp(size)));
        assert!(taken.ready.is_empty());
        // Before `settle`: not checked again.
        size = 20;
        let taken = q.take_ready(t0 + settle / 2, 10, |_| panic!("checked too early"));
        assert!(taken.ready.is_empty());
        // Changed since: waits again.
        let taken = q.take_ready(t0 + settle, 10, |_| Ok(stamp(size)));
        assert!(taken.ready.is_empty());
        assert_eq!(q.len(), 1);
        // Same as the last check: ready, and gone from the queue.
        let taken = q.take_ready(t0 + settle * 2, 10, |_| Ok(stamp(size)));
        assert_eq!(taken.ready, vec![(PathBuf::from("a.jpg"), stamp(20))]);
        assert!(q.is_empty());
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn the_queue_holds_each_path_once_in_order() {
        let mut q = PhotoQueue::new(Duration::ZERO);
        let t0 = Instant::now();
        for round in 0..3 {
            for i in 0..10_000 {
                q.push(PathBuf::from(format!("{i:05}.jpg")), t0);
            }
            assert_eq!(q.len(), 10_000, "round {round}");
        }
        q.take_ready(t0, usize::MAX, |_| Ok(stamp(1)));
        let taken = q.take_ready(t0, 16, |_| Ok(stamp(1)));
        let names: Vec<String> = taken
            .ready
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        assert_eq!(names.len(), 16);
        assert_eq!(names[0], "00000.jpg");
        assert_eq!(names[15], "00015.jpg");
        assert_eq!(q.len(), 10_000 - 16);
        let rest = q.take_ready(t0, usize::MAX, |_| Ok(stamp(1)));
        assert_eq!(rest.ready.len(), 10_000 - 16);
        assert_eq!(rest.ready[0].0, PathBuf::from("00016.jpg"));
        assert!(q.is_empty());
    }

    #[test]
    fn vanished_and_unreadable_photos_leave_the_queue() {
        let mut q = PhotoQueue::new(Duration::ZERO);
        let t0 = Instant::now();
        q.push("gone.jpg".into(), t0);
        q.push("locked.jpg".into(), t0);
        q.push("fine.jpg".into(), t0);
        let stat = |p: &Path| match p.to_str() {
            Some("gone.jpg") => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
            Some("locked.jpg") => Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
            _ => Ok(stamp(5)),
        };
        let first = q.take_ready(t0, 10, stat);
        assert_eq!(first.gone, vec![PathBuf::from("gone.jpg")]);
        assert_eq!(first.failed.len(), 1);
        assert_eq!(first.failed[0].0, PathBuf::from("locked.jpg"));
        assert!(first.ready.is_empty());
        let second = q.take_ready(t0, 10, stat);
        assert_eq!(second.ready.len(), 1);
        assert!(second.gone.is_empty() && second.failed.is_empty());
        assert!(q.is_empty());
    }

    #[test]
    fn hidden_files_and_folders_and_paths_outside_are_not_watched() {
        let root = Path::new("/photos");
        assert!(is_watched_path(root, Path::new("/photos/a.jpg")));
        assert!(is_watched_path(root, Path::new("/photos/sub/a.jpg")));
        assert!(!is_watched_path(root, Path::new("/photos/.a.jpg.tmp-1-2")));
        assert!(!is_watched_path(root, Path::new("/photos/.thumbs/a.jpg")));
        assert!(!is_watched_path(root, Path::new("/elsewhere/a.jpg")));
    }

    #[test]
    fn photos_with_a_caption_are_left_alone_only_when_skipping() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("a.jpg");
        std::fs::write(&photo, b"x").unwrap();
        let options = WatchOptions {
            sidecars: true,
            ..WatchOptions::default()
        };
        assert_eq!(already_captioned(&photo, &options), None);
        // Nothing to write: nothing to leave alone.
        assert_eq!(already_captioned(&photo, &WatchOptions::default()), None);
        std::fs::write(dir.path().join("a.txt"), "a dog\n").unwrap();
        let reason = already_captioned(&photo, &options).unwrap();
        assert!(reason.contains("a.txt"), "{reason}");
        let overwrite = WatchOptions {
            existing: Existing::Overwrite,
            ..options.clone()
        };
        assert_eq!(already_captioned(&photo, &overwrite), None);
        // Sidecar there, but the metadata asked for has no description: captioned.
        let both = WatchOptions {
            metadata: vec![MetadataTarget::XmpSidecar],
            ..options.clone()
        };
        assert_eq!(already_captioned(&photo, &both), None);
    }

    /// The watcher itself, on a real folder: a photo copied in comes out once it settles, a
    /// sub-folder's photo too, sidecars do not, and the folder being renamed stops it.
    #[test]
    fn a_real_folder_is_watched_until_it_is_renamed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("watched");
        std::fs::create_dir(&dir).unwrap();
        let timing = WatchTiming {
            debounce: Duration::from_millis(50),
            settle: Duration::from_millis(50),
            ..WatchTiming::default()
        };
        let mut w = FolderWatcher::start(&dir, &timing).unwrap();
        std::fs::write(dir.join("a.jpg"), b"jpeg").unwrap();
        std::fs::write(dir.join("a.txt"), b"a caption").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub").join("b.png"), b"png").unwrap();
        let patience = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        while seen.len() < 2 && Instant::now() < patience {
            let poll = w.poll(Duration::from_millis(100), 10);
            assert!(!poll.folder_gone);
            for p in poll.ready {
                w.handled(&p);
                seen.push(p.strip_prefix(&dir).unwrap().display().to_string());
            }
        }
        seen.sort();
        assert_eq!(seen, ["a.jpg", "sub/b.png"]);
        std::fs::rename(&dir, tmp.path().join("renamed")).unwrap();
        let mut gone = false;
        while !gone && Instant::now() < patience {
            let poll = w.poll(Duration::from_millis(100), 10);
            assert!(poll.ready.is_empty(), "{:?}", poll.ready);
            gone = poll.folder_gone;
        }
        assert!(gone, "the renamed folder is noticed");
    }
}
