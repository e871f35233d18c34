//! The Batch panel: a caption editor over a folder of photos.
//!
//! Opening a folder loads the captions it already has (`.txt` sidecars); every caption shows
//! where it came from (existing, machine, edited). "Caption" fills only photos without a caption;
//! replacing captions is an explicit, confirmed and undoable choice. Every change is undoable
//! (Ctrl+Z / Ctrl+Shift+Z), the session is kept continuously in the data folder, and "Save"
//! writes only the sidecars that changed, atomically. Review is keyboard-first: a selected photo
//! (arrows, PageUp/PageDown, Home/End), a large preview with the caption, the beam's
//! alternatives (1-9) and the confidence; Enter accepts and moves on.
//!
//! The captions, their sources, undo and the session file are plain data in [`session`].

pub mod session;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Shared;
use super::dataset::thumbnail_ui;
use super::status::clock;
use super::tasks::{self, Dialog, Pending};
use crate::export::{self, ExportReport, ExportRow};
use crate::worker::{CancelToken, CaptionOutput, Command, Event, ModelChoice, ModelEntry};
use session::{Cell, Disk, Entry, Photo, Session, Source};

/// A folder and the images found in it, or why it could not be listed.
/// A folder, its photos (a rescan) or its new session (an open), or why it could not be read.
type Listing = Result<(PathBuf, Vec<PathBuf>, Option<Session>), String>;

/// How long the session waits for typing to pause before it is written to disk.
const PERSIST_DEBOUNCE: Duration = Duration::from_millis(400);
/// ... and the longest it waits while changes keep coming.
const PERSIST_MAX_DELAY: Duration = Duration::from_secs(3);
/// Folders remembered in "Recent".
const RECENT: usize = 8;

/// A batch run in progress.
struct Running {
    id: u64,
    /// Entry index and its revision when sent, per path sent.
    items: Vec<(usize, u64)>,
    fill_only: bool,
    cancel: CancelToken,
    started: Instant,
    done: usize,
    failed: usize,
    eta: Option<Duration>,
    /// The run's changes: one undo step when it ends.
    changes: Vec<(usize, Cell, Cell)>,
    /// Captions of the user's the run left alone.
    kept: usize,
}

pub use crate::export::ExportKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DialogFor {
    Folder,
    Export(ExportKind),
}

/// Which photos the grid shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Filter {
    #[default]
    All,
    Uncaptioned,
    Existing,
    Machine,
    Edited,
    Unsaved,
    Failed,
    /// Machine captions the model flagged as probably wrong.
    NeedsReview,
}

impl Filter {
    pub const ALL: [Filter; 8] = [
        Filter::All,
        Filter::Uncaptioned,
        Filter::Existing,
        Filter::Machine,
        Filter::Edited,
        Filter::Unsaved,
        Filter::Failed,
        Filter::NeedsReview,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Filter::All => "all photos",
            Filter::Uncaptioned => "uncaptioned",
            Filter::Existing => "existing",
            Filter::Machine => "machine",
            Filter::Edited => "edited",
            Filter::Unsaved => "not saved",
            Filter::Failed => "failed or problems",
            Filter::NeedsReview => "needs review",
        }
    }

    fn keeps(self, e: &Entry) -> bool {
        match self {
            Filter::All => true,
            Filter::Uncaptioned => !e.has_caption(),
            Filter::Existing => e.cell.source == Source::Existing,
            Filter::Machine => e.cell.source == Source::Machine,
            Filter::Edited => e.cell.source == Source::Edited,
            Filter::Unsaved => e.is_dirty(),
            Filter::Failed => {
                e.failed.is_some()
                    || e.photo != Photo::Present
                    || matches!(e.disk, Disk::Unreadable(_))
            }
            Filter::NeedsReview => flagged_by_model(e),
        }
    }
}

/// Grid order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sort {
    #[default]
    Name,
    /// Least confident first (captions without a confidence last).
    Confidence,
}

/// A question the panel is asking.
#[derive(Clone, Debug, PartialEq)]
pub enum Ask {
    /// "Caption all again" would replace this many captions.
    Replace(usize),
    /// Saving: these sidecars changed on disk since they were read, or are not UTF-8 text.
    Conflicts(usize),
    /// Unsaved captions, before doing `then`.
    Unsaved { count: usize, then: Then },
}

/// What waits for the answer to [`Ask::Unsaved`].
#[derive(Clone, Debug, PartialEq)]
pub enum Then {
    Open(PathBuf),
    OpenFiles(Vec<PathBuf>),
    /// Close the app.
    Close,
}

/// The typed-path fallback when no file-dialog service exists.
struct TypedPath {
    purpose: DialogFor,
    text: String,
    why: String,
}

/// The session file being written in the background.
struct Persist {
    /// Session generation last written (or being written).
    written: u64,
    /// The generation seen last frame, and when it first changed since the last write.
    seen: u64,
    changed_at: Option<Instant>,
    last_change: Option<Instant>,
    pending: Option<Pending<Result<(), String>>>,
}

#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct BatchPanel {
    /// The batch folder, as typed or last chosen.
    pub folder: String,
    /// The Batch panel's own model (not the Caption panel's).
    pub model: ModelChoice,
    /// Beam width (1 = greedy).
    pub beam: usize,
    /// Shortest caption in words: the best beam caption at least this long is taken.
    pub min_len: usize,
    /// Longest caption in words.
    pub max_len: usize,
    /// Thumbnail side in points.
    pub thumb_side: f32,
    /// Recently opened folders, newest first.
    pub recent: Vec<String>,
    pub filter: Filter,
    pub sort: Sort,
    /// Put before every machine caption (a trigger word, say).
    pub prefix: String,
    /// Put after every machine caption.
    pub suffix: String,
    /// What the photo-metadata export does with a description already there.
    pub existing: export::Existing,
    /// "Train on this folder" was pressed: the app takes the folder to the Train panel.
    #[serde(skip)]
    pub train_request: Option<TrainRequest>,
    /// The word whose attention map the preview keeps over the photo (clicked).
    #[serde(skip)]
    pub attention_word: Option<usize>,

    #[serde(skip)]
    session: Option<Session>,
    #[serde(skip)]
    selected: Option<usize>,
    #[serde(skip)]
    listing: Option<(bool, Pending<Listing>)>,
    #[serde(skip)]
    running: Option<Running>,
    #[serde(skip)]
    next_id: u64,
    #[serde(skip)]
    dialog: Option<(DialogFor, Pending<Option<PathBuf>>)>,
    #[serde(skip)]
    typed_path: Option<TypedPath>,
    #[serde(skip)]
    dialog_service: Option<Result<(), String>>,
    #[serde(skip)]
    ask: Option<Ask>,
    #[serde(skip)]
    export: Option<Pending<(String, ExportReport)>>,
    #[serde(skip)]
    last_report: Option<String>,
    #[serde(skip)]
    search: String,
    #[serde(skip)]
    find: String,
    #[serde(skip)]
    replace_with: String,
    #[serde(skip)]
    persist: Option<Persist>,
    #[serde(skip)]
    models: Option<Vec<ModelEntry>>,
    #[serde(skip)]
    models_pending: Option<Pending<Vec<ModelEntry>>>,
    /// Scroll the grid to the top (new folder) or to the selected photo (keyboard).
    #[serde(skip)]
    scroll_top: bool,
    #[serde(skip)]
    scroll_to_selected: bool,
    #[serde(skip)]
    focus_caption: bool,
    /// Grid columns and visible rows last frame, for the arrow and page keys.
    #[serde(skip)]
    grid_shape: (usize, usize),
    /// The grid's scroll offset last frame.
    #[serde(skip)]
    grid_offset: f32,
    /// The user chose to close with unsaved captions.
    #[serde(skip)]
    close_allowed: bool,
    /// The last folder was reopened (when its session file exists) at startup.
    #[serde(skip)]
    tried_restore: bool,
}

impl Default for BatchPanel {
    fn default() -> Self {
        BatchPanel {
            folder: String::new(),
            model: ModelChoice::Default,
            beam: 3,
            min_len: 0,
            max_len: 30,
            thumb_side: 136.0,
            recent: Vec::new(),
            filter: Filter::All,
            sort: Sort::Name,
            prefix: String::new(),
            suffix: String::new(),
            existing: export::Existing::Skip,
            train_request: None,
            attention_word: None,
            session: None,
            selected: None,
            listing: None,
            running: None,
            next_id: 1,
            dialog: None,
            typed_path: None,
            dialog_service: None,
            ask: None,
            export: None,
            last_report: None,
            search: String::new(),
            find: String::new(),
            replace_with: String::new(),
            persist: None,
            models: None,
            models_pending: None,
            scroll_top: false,
            scroll_to_selected: false,
            focus_caption: false,
            grid_shape: (1, 1),
            grid_offset: 0.0,
            close_allowed: false,
            tried_restore: false,
        }
    }
}

/// The Batch panel's folder, to train on its saved captions (new model, or fine-tuning `model`).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainRequest {
    pub folder: PathBuf,
    /// The Batch panel's model, offered for fine-tuning.
    pub model: ModelChoice,
}

/// A machine caption as the session keeps it: the best beam caption with at least `min_len`
/// words (the best one when none is that long), its alternatives and confidence.
/// `prefix` and `suffix` (a trigger word, say) go around the caption and its alternatives.
pub fn machine_cell(output: &CaptionOutput, min_len: usize, prefix: &str, suffix: &str) -> Cell {
    let mut alternatives: Vec<String> =
        output.alternatives.iter().map(|a| a.text.clone()).collect();
    if alternatives.is_empty() {
        alternatives.push(output.text.clone());
    }
    let caption = alternatives
        .iter()
        .find(|a| a.split_whitespace().count() >= min_len)
        .cloned()
        .unwrap_or_else(|| output.text.clone());
    let best = caption == output.text;
    let confidence = best.then(|| {
        output
            .confidence
            .unwrap_or_else(|| output.word_probability_geomean())
    });
    let affix = |c: &str| export::with_prefix_suffix(c, prefix, suffix);
    let caption = affix(&caption);
    let alternatives = alternatives.iter().map(|a| affix(a)).collect();
    Cell {
        caption,
        source: Source::Machine,
        confidence,
        alternatives,
        needs_review: if best { output.needs_review } else { None },
        review_note: if best && output.needs_review == Some(true) {
            output.review_reason.map(|r| match &output.review_detail {
                Some(d) => format!("{} {d}", r.warning()),
                None => r.warning().to_string(),
            })
        } else {
            None
        },
        tags: output.tags.clone(),
        attention: output
            .attention
            .clone()
            .filter(|m| m.words.len() == output.words.len())
            .map(|maps| session::CellAttention {
                words: output.words.iter().map(|w| w.word.clone()).collect(),
                maps,
            }),
    }
}

impl BatchPanel {
    /// The photos, in folder order.
    pub fn entries(&self) -> &[Entry] {
        self.session.as_ref().map_or(&[], |s| &s.entries)
    }

    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    pub fn selected(&self) -> Option<usize> {
        self.selected
    }

    pub fn select(&mut self, index: usize) {
        if index < self.entries().len() {
            if self.selected != Some(index)
                && let Some(s) = &mut self.session
            {
                s.history.seal();
            }
            self.selected = Some(index);
            self.scroll_to_selected = true;
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// How far the grid is scrolled down, in points (as of the last frame).
    pub fn grid_scroll(&self) -> f32 {
        self.grid_offset
    }

    pub fn is_listing(&self) -> bool {
        self.listing.is_some()
    }

    pub fn is_exporting(&self) -> bool {
        self.export.is_some()
    }

    /// The last save or export's outcome, in words.
    pub fn last_report(&self) -> Option<&str> {
        self.last_report.as_deref()
    }

    /// The question being asked, if any.
    pub fn asking(&self) -> Option<&Ask> {
        self.ask.as_ref()
    }

    /// Captions not yet written to their sidecars.
    pub fn unsaved(&self) -> usize {
        self.session.as_ref().map_or(0, Session::dirty_count)
    }

    /// Whether the session file on disk holds every change.
    pub fn session_persisted(&self) -> bool {
        match (&self.session, &self.persist) {
            (None, _) => true,
            (Some(s), Some(p)) => p.written == s.generation() && p.pending.is_none(),
            (Some(_), None) => false,
        }
    }

    /// Pretends no file-dialog service exists (tests), or restores detection with `None`.
    pub fn set_dialog_service(&mut self, service: Option<Result<(), String>>) {
        self.dialog_service = service;
    }

    /// Whether a typed-path prompt is showing (no file-dialog service), and why.
    pub fn typed_path_reason(&self) -> Option<&str> {
        self.typed_path.as_ref().map(|t| t.why.as_str())
    }

    /// Replaces a caption as if typed by hand.
    pub fn edit_caption(&mut self, index: usize, caption: &str) {
        if let Some(s) = &mut self.session {
            s.edit(index, caption);
        }
    }

    pub fn undo(&mut self, shared: &mut Shared) {
        let Some(s) = &mut self.session else { return };
        let label = s.history.next_undo().map(str::to_string);
        match s.undo() {
            Some(touched) => {
                if let Some(&first) = touched.first() {
                    self.select(first);
                }
                shared
                    .status
                    .info(format!("undone: {}", label.unwrap_or_default()));
            }
            None => shared.status.info("nothing to undo"),
        }
    }

    pub fn redo(&mut self, shared: &mut Shared) {
        let Some(s) = &mut self.session else { return };
        let label = s.history.next_redo().map(str::to_string);
        match s.redo() {
            Some(touched) => {
                if let Some(&first) = touched.first() {
                    self.select(first);
                }
                shared
                    .status
                    .info(format!("redone: {}", label.unwrap_or_default()));
            }
            None => shared.status.info("nothing to redo"),
        }
    }

    /// Lists the images in `dir` (on a background thread) and shows them with their captions.
    /// Asks first when captions are not saved yet.
    pub fn open_folder(&mut self, dir: PathBuf, shared: &mut Shared) {
        let unsaved = self.unsaved();
        if unsaved > 0
            && self.session.as_ref().and_then(|s| s.root.as_deref()) != Some(dir.as_path())
        {
            self.ask = Some(Ask::Unsaved {
                count: unsaved,
                then: Then::Open(dir),
            });
            return;
        }
        self.open_folder_now(dir, shared);
    }

    fn open_folder_now(&mut self, dir: PathBuf, shared: &mut Shared) {
        self.cancel();
        self.persist_now(shared);
        self.folder = dir.display().to_string();
        match Pending::spawn(&shared.ctx, "list-folder", move || {
            // Reading every photo's caption (sidecar or metadata) happens here, off the UI
            // thread, so a folder of 100,000 photos does not freeze the window.
            crate::jobs::caption::list_photos(&dir)
                .map(|(files, _)| {
                    let session =
                        Session::open(dir.display().to_string(), Some(dir.clone()), files);
                    (dir, Vec::new(), Some(session))
                })
                .map_err(|e| e.report())
        }) {
            Ok(p) => self.listing = Some((false, p)),
            Err(e) => shared.status.error(e),
        }
    }

    /// Lists the folder again: new photos are added, vanished or changed ones are marked.
    pub fn rescan(&mut self, shared: &mut Shared) {
        let Some(root) = self.session.as_ref().and_then(|s| s.root.clone()) else {
            return;
        };
        match Pending::spawn(&shared.ctx, "list-folder", move || {
            crate::jobs::caption::list_photos(&root)
                .map(|(files, _)| (root, files, None))
                .map_err(|e| e.report())
        }) {
            Ok(p) => self.listing = Some((true, p)),
            Err(e) => shared.status.error(e),
        }
    }

    /// Shows these image files as the batch.
    pub fn open_files(&mut self, files: Vec<PathBuf>, shared: &mut Shared) {
        let unsaved = self.unsaved();
        if unsaved > 0 {
            self.ask = Some(Ask::Unsaved {
                count: unsaved,
                then: Then::OpenFiles(files),
            });
            return;
        }
        self.cancel();
        self.persist_now(shared);
        let mut sorted = files;
        sorted.sort();
        let key = sorted
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n");
        self.start_session(Session::open(key, None, sorted), shared);
    }

    fn start_session(&mut self, mut session: Session, shared: &mut Shared) {
        let file = Session::file_for(&session_dir(shared), &session.key);
        match session.restore(&file) {
            Ok(0) => {}
            Ok(n) => shared.status.info(format!(
                "{n} captions not saved to sidecars yet came back from the last session"
            )),
            Err(e) => shared.status.warn(e.to_string()),
        }
        let n = session.entries.len();
        // Photos whose .txt sidecar holds a caption (whether the cell shows it as "existing"
        // or, restored from the last session, as the machine or edited caption saved there).
        let existing = session
            .entries
            .iter()
            .filter(|e| matches!(&e.disk, Disk::Text(t) if !t.caption.is_empty()))
            .count();
        let unreadable = session
            .entries
            .iter()
            .filter(|e| matches!(e.disk, Disk::Unreadable(_)))
            .count();
        let what = session
            .root
            .as_ref()
            .map_or_else(|| "photos".to_string(), |r| r.display().to_string());
        if n == 0 {
            shared.status.warn(format!("{what}: no image files found"));
        } else {
            let mut text =
                format!("{what}: {n} photos, {existing} with a caption from their .txt file");
            if unreadable > 0 {
                text.push_str(&format!(
                    ", {unreadable} .txt files could not be read (left as they are; filter \u{201c}failed or problems\u{201d})"
                ));
                shared.status.warn(text);
            } else {
                shared.status.info(text);
            }
        }
        if let Some(root) = &session.root {
            let r = root.display().to_string();
            self.recent.retain(|x| x != &r);
            self.recent.insert(0, r);
            self.recent.truncate(RECENT);
        }
        self.persist = Some(Persist {
            written: session.generation(),
            seen: session.generation(),
            changed_at: None,
            last_change: None,
            pending: None,
        });
        self.selected = (n > 0).then_some(0);
        self.session = Some(session);
        self.last_report = None;
        self.scroll_top = true;
    }

    /// How many captions "Caption" fills, and how many "Caption all again" replaces.
    pub fn counts(&self) -> (usize, usize) {
        let entries = self.entries();
        let todo = entries
            .iter()
            .filter(|e| !e.has_caption() && e.photo != Photo::Missing)
            .count();
        let replace = entries.iter().filter(|e| e.has_caption()).count();
        (todo, replace)
    }

    /// Captions the photos without a caption; with `replace_all`, every photo (asks first
    /// when that replaces captions: see [`BatchPanel::confirm_replace`]).
    pub fn caption_all(&mut self, replace_all: bool, shared: &mut Shared) {
        if replace_all {
            let (_, replace) = self.counts();
            if replace > 0 {
                self.ask = Some(Ask::Replace(replace));
                return;
            }
        }
        self.start_run(replace_all, shared);
    }

    /// The user confirmed replacing captions.
    pub fn confirm_replace(&mut self, shared: &mut Shared) {
        self.ask = None;
        self.start_run(true, shared);
    }

    fn start_run(&mut self, replace_all: bool, shared: &mut Shared) {
        if self.running.is_some() {
            return;
        }
        let Some(s) = &self.session else { return };
        let todo: Vec<(usize, u64)> = s
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.photo != Photo::Missing && (replace_all || !e.has_caption()))
            .map(|(i, e)| (i, e.revision))
            .collect();
        if todo.is_empty() {
            shared.status.info("every photo has a caption already");
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let cancel = CancelToken::new();
        let paths = todo
            .iter()
            .map(|&(i, _)| s.entries[i].path.clone())
            .collect();
        if shared.send(Command::CaptionBatch {
            id,
            paths,
            model: self.model.clone(),
            beam: self.beam.max(1),
            max_len: self.max_len.max(1),
            cancel: cancel.clone(),
        }) {
            self.running = Some(Running {
                id,
                items: todo,
                fill_only: !replace_all,
                cancel,
                started: Instant::now(),
                done: 0,
                failed: 0,
                eta: None,
                changes: Vec::new(),
                kept: 0,
            });
        }
    }

    /// Stops the batch run after the image being captioned.
    pub fn cancel(&mut self) {
        if let Some(r) = &self.running {
            r.cancel.cancel();
        }
    }

    /// Writes the changed captions to their sidecars (asks first about sidecars that changed
    /// on disk or are not UTF-8 text).
    pub fn save(&mut self, shared: &mut Shared) {
        let Some(s) = &self.session else { return };
        let conflicts = s.conflicts().len();
        if conflicts > 0 {
            self.ask = Some(Ask::Conflicts(conflicts));
            return;
        }
        self.save_now(false, shared);
    }

    /// Writes the changed captions; sidecars in conflict only with `overwrite_conflicts`.
    pub fn save_now(&mut self, overwrite_conflicts: bool, shared: &mut Shared) {
        self.ask = None;
        let Some(s) = &mut self.session else { return };
        let report = s.save(overwrite_conflicts);
        s.touch();
        let text = report.describe();
        if report.failed.is_empty() && report.conflicts.is_empty() && report.shared.is_empty() {
            shared.status.info(&text);
        } else {
            shared.status.error(&text);
        }
        self.last_report = Some(text);
        self.persist_now(shared);
    }

    /// Takes finished background work: folder listing, dialogs, exports, the session file.
    pub fn poll(&mut self, shared: &mut Shared) {
        if !self.tried_restore {
            self.tried_restore = true;
            let dir = PathBuf::from(self.folder.trim());
            if self.session.is_none()
                && self.listing.is_none()
                && !self.folder.trim().is_empty()
                && dir.is_dir()
                && Session::file_for(&session_dir(shared), &dir.display().to_string()).is_file()
            {
                self.open_folder_now(dir, shared);
            }
        }
        let listing = self.listing.as_mut().map(|(rescan, p)| (*rescan, p.poll()));
        if let Some((rescan, poll)) = listing {
            let result = match poll {
                tasks::Poll::Waiting => None,
                tasks::Poll::Ready(r) => Some(r),
                tasks::Poll::Lost => Some(Err("listing the folder failed".to_string())),
            };
            if let Some(result) = result {
                self.listing = None;
                match result {
                    Ok((dir, files, _)) if rescan => {
                        if let Some(s) = &mut self.session {
                            let (added, missing, changed) = s.rescan(files);
                            s.touch();
                            shared.status.info(format!(
                                "{}: {added} new photos, {missing} gone, {changed} changed",
                                dir.display()
                            ));
                        }
                    }
                    Ok((_, _, Some(session))) => self.start_session(session, shared),
                    Ok((dir, _, None)) => shared
                        .status
                        .error(format!("{}: the folder was not read", dir.display())),
                    Err(e) => shared.status.error(e),
                }
            }
        }
        if let Some((purpose, pending)) = &self.dialog {
            let answer = match pending.poll() {
                tasks::Poll::Waiting => None,
                tasks::Poll::Ready(a) => Some(a),
                tasks::Poll::Lost => Some(None),
            };
            if let Some(answer) = answer {
                let purpose = *purpose;
                self.dialog = None;
                if let Some(path) = answer {
                    self.dialog_answer(purpose, path, shared);
                }
            }
        }
        match tasks::take_ready(&mut self.export) {
            Some(Ok((what, report))) => {
                let text = report.describe(&what);
                if report.failed.is_empty() {
                    shared.status.info(&text);
                } else {
                    shared.status.error(&text);
                }
                self.last_report = Some(text);
            }
            Some(Err(e)) => shared.status.error(e),
            None => {}
        }
        match tasks::take_ready(&mut self.models_pending) {
            Some(Ok(models)) => self.models = Some(models),
            Some(Err(e)) => shared.status.error(e),
            None => {}
        }
        self.persist_debounced(shared);
    }

    /// Writes the session file once typing pauses (or at least every few seconds).
    fn persist_debounced(&mut self, shared: &mut Shared) {
        let (Some(s), Some(p)) = (&self.session, &mut self.persist) else {
            return;
        };
        match tasks::take_ready(&mut p.pending) {
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(e)) | Err(e)) => {
                shared.status.error(e);
                // Try again on the next change.
                p.written = u64::MAX;
            }
            None => {}
        }
        let generation = s.generation();
        let now = Instant::now();
        if generation != p.seen {
            p.seen = generation;
            p.last_change = Some(now);
            p.changed_at.get_or_insert(now);
        }
        if generation == p.written || p.pending.is_some() {
            return;
        }
        let quiet = p
            .last_change
            .is_none_or(|t| now.duration_since(t) >= PERSIST_DEBOUNCE);
        let overdue = p
            .changed_at
            .is_some_and(|t| now.duration_since(t) >= PERSIST_MAX_DELAY);
        if !(quiet || overdue) {
            shared.ctx.request_repaint_after(PERSIST_DEBOUNCE);
            return;
        }
        let bytes = match s.to_json() {
            Ok(b) => b,
            Err(e) => {
                shared
                    .status
                    .error(format!("cannot save the batch session: {e}"));
                p.written = generation;
                return;
            }
        };
        let file = Session::file_for(&session_dir(shared), &s.key);
        p.written = generation;
        p.changed_at = None;
        match Pending::spawn(&shared.ctx, "save-session", move || {
            crate::paths::write_atomic(&file, &bytes)
                .map_err(|e| format!("{}: cannot save the batch session: {e}", file.display()))
        }) {
            Ok(pending) => p.pending = Some(pending),
            Err(e) => shared.status.error(e),
        }
    }

    /// Writes the session file now (on close, before opening another folder).
    pub fn persist_now(&mut self, shared: &mut Shared) {
        let (Some(s), Some(p)) = (&self.session, &mut self.persist) else {
            return;
        };
        if let Some(pending) = p.pending.take() {
            // Let the background write finish first, so it cannot land after this one.
            while matches!(pending.poll(), tasks::Poll::Waiting) {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if p.written == s.generation() {
            return;
        }
        let file = Session::file_for(&session_dir(shared), &s.key);
        let result = s
            .to_json()
            .map_err(|e| e.to_string())
            .and_then(|b| crate::paths::write_atomic(&file, &b).map_err(|e| e.to_string()));
        match result {
            Ok(()) => p.written = s.generation(),
            Err(e) => shared.status.error(format!(
                "{}: cannot save the batch session: {e}",
                file.display()
            )),
        }
    }

    pub fn on_event(&mut self, event: Event, shared: &mut Shared) {
        match event {
            Event::BatchItem { id, index, result } => {
                let Some(run) = self.running.as_mut().filter(|r| r.id == id) else {
                    return;
                };
                let Some(s) = &mut self.session else { return };
                run.done += 1;
                run.eta = crate::jobs::eta(run.started, run.done, run.items.len());
                let Some(&(i, revision)) = run.items.get(index) else {
                    return;
                };
                match result {
                    Ok(output) => {
                        let cell = machine_cell(&output, self.min_len, &self.prefix, &self.suffix);
                        match s.batch_result(i, revision, run.fill_only, cell) {
                            Some(change) => run.changes.push(change),
                            None => run.kept += 1,
                        }
                    }
                    Err(error) => {
                        run.failed += 1;
                        if let Some(e) = s.entries.get_mut(i) {
                            e.failed = Some(error.report());
                        }
                        s.touch();
                    }
                }
            }
            Event::BatchDone {
                id,
                done,
                failed,
                stopped,
                seconds,
            } => {
                let Some(run) = self.running.take_if(|r| r.id == id) else {
                    return;
                };
                let changed = run.changes.len();
                if let Some(s) = &mut self.session {
                    let label = if run.fill_only {
                        format!("caption {changed} photos")
                    } else {
                        format!("caption all again ({changed} photos)")
                    };
                    s.push_batch_step(&label, run.changes);
                }
                let mut text = format!("batch: {done} captioned in {seconds:.1} s");
                if run.kept > 0 {
                    text.push_str(&format!(
                        ", {} captions of yours kept (the model's are offered as alternatives)",
                        run.kept
                    ));
                }
                if failed > 0 {
                    text.push_str(&format!(", {failed} could not be read (marked in red)"));
                }
                if stopped {
                    text.push_str(", cancelled");
                }
                if changed > 0 {
                    text.push_str("; Ctrl+Z undoes it, Save writes the sidecars");
                }
                if failed > 0 {
                    shared.status.warn(text);
                } else {
                    shared.status.info(text);
                }
            }
            Event::Failed { error, .. } => {
                let message = error.report();
                if let Some(run) = self.running.take()
                    && let Some(s) = &mut self.session
                {
                    s.push_batch_step("caption (stopped)", run.changes);
                }
                shared
                    .status
                    .error(format!("batch captioning failed: {message}"));
            }
            _ => {}
        }
    }

    fn export_rows(&self) -> Vec<ExportRow> {
        self.entries()
            .iter()
            .filter(|e| e.has_caption())
            .map(|e| ExportRow {
                confidence: e.cell.confidence,
                needs_review: (e.cell.source == Source::Machine)
                    .then_some(e.cell.needs_review)
                    .flatten(),
                tags: e.cell.tags.clone(),
                alternatives: e
                    .cell
                    .alternatives
                    .iter()
                    .map(export::Alternative::unscored)
                    .collect(),
                ..ExportRow::new(
                    e.name.clone(),
                    e.path.clone(),
                    e.cell.caption.trim().to_string(),
                    match e.cell.source {
                        Source::Edited => export::CaptionSource::Edited,
                        Source::Machine => export::CaptionSource::Machine,
                        Source::Existing | Source::Empty => export::CaptionSource::Existing,
                    },
                )
            })
            .collect()
    }

    /// Writes the CSV or JSON file to `path` (atomically).
    pub fn export_to_file(&mut self, kind: ExportKind, path: PathBuf, shared: &mut Shared) {
        let rows = self.export_rows();
        match Pending::spawn(&shared.ctx, "export-file", move || {
            let what = path.display().to_string();
            let report = export::export_file(&rows, kind, &path, "Photo descriptions");
            (what, report)
        }) {
            Ok(p) => self.export = Some(p),
            Err(e) => shared.status.error(e),
        }
    }

    /// Writes the captions (and tags) as photo metadata: XMP sidecars or embedded in the photos.
    /// A description already there is kept, replaced or appended to, as `existing` says.
    pub fn export_metadata(
        &mut self,
        target: export::MetadataTarget,
        existing: export::Existing,
        shared: &mut Shared,
    ) {
        let rows = self.export_rows();
        match Pending::spawn(&shared.ctx, "export-metadata", move || {
            let what = match target {
                export::MetadataTarget::XmpSidecar => "XMP sidecars",
                export::MetadataTarget::Embedded => "descriptions embedded in photos",
            };
            (
                what.to_string(),
                export::write_metadata(&rows, target, existing),
            )
        }) {
            Ok(p) => self.export = Some(p),
            Err(e) => shared.status.error(e),
        }
    }

    /// Exports as CSV to `path`.
    pub fn export_csv(&mut self, path: PathBuf, shared: &mut Shared) {
        self.export_to_file(ExportKind::Csv, path, shared);
    }

    /// Exports as JSON to `path`.
    pub fn export_json(&mut self, path: PathBuf, shared: &mut Shared) {
        self.export_to_file(ExportKind::Json, path, shared);
    }

    fn dialog_answer(&mut self, purpose: DialogFor, path: PathBuf, shared: &mut Shared) {
        match purpose {
            DialogFor::Folder => self.open_folder(path, shared),
            DialogFor::Export(kind) => self.export_to_file(kind, path, shared),
        }
    }

    fn open_dialog(&mut self, purpose: DialogFor, shared: &mut Shared) {
        let service = self
            .dialog_service
            .get_or_insert_with(tasks::dialog_service)
            .clone();
        let start = self
            .session
            .as_ref()
            .and_then(|s| s.root.clone())
            .or_else(|| Some(PathBuf::from(&self.folder)));
        if let Err(why) = service {
            let text = match purpose {
                DialogFor::Folder => self.folder.clone(),
                DialogFor::Export(kind) => start
                    .unwrap_or_default()
                    .join(match kind {
                        ExportKind::Csv => "captions.csv",
                        ExportKind::Json => "captions.json",
                        ExportKind::AltHtml => "alt-text.html",
                        ExportKind::AltCsv => "alt-text.csv",
                        ExportKind::AltJson => "alt-text.json",
                    })
                    .display()
                    .to_string(),
            };
            shared.status.warn(format!("{why}; type the path instead"));
            self.typed_path = Some(TypedPath { purpose, text, why });
            return;
        }
        let dialog = match &purpose {
            DialogFor::Folder => Dialog::PickFolder,
            DialogFor::Export(ExportKind::Csv) => Dialog::SaveFile {
                name: "captions.csv".into(),
                extension: "csv",
            },
            DialogFor::Export(ExportKind::Json) => Dialog::SaveFile {
                name: "captions.json".into(),
                extension: "json",
            },
            DialogFor::Export(ExportKind::AltHtml) => Dialog::SaveFile {
                name: "alt-text.html".into(),
                extension: "html",
            },
            DialogFor::Export(ExportKind::AltCsv) => Dialog::SaveFile {
                name: "alt-text.csv".into(),
                extension: "csv",
            },
            DialogFor::Export(ExportKind::AltJson) => Dialog::SaveFile {
                name: "alt-text.json".into(),
                extension: "json",
            },
        };
        match tasks::open_dialog(&shared.ctx, dialog, start.as_deref()) {
            Ok(p) => self.dialog = Some((purpose, p)),
            Err(e) => shared.status.error(e),
        }
    }

    /// The close button was pressed: returns whether the app may close now (else it asks).
    pub fn may_close(&mut self, shared: &mut Shared) -> bool {
        self.persist_now(shared);
        let unsaved = self.unsaved();
        if self.close_allowed || unsaved == 0 {
            return true;
        }
        if self.ask.is_none() {
            self.ask = Some(Ask::Unsaved {
                count: unsaved,
                then: Then::Close,
            });
        }
        false
    }

    /// Answers the unsaved-captions question: `Some(true)` saves first, `Some(false)` goes on
    /// without saving (the captions stay in the session), `None` cancels.
    pub fn answer_unsaved(&mut self, save: Option<bool>, shared: &mut Shared) {
        let Some(Ask::Unsaved { then, .. }) = self.ask.take() else {
            return;
        };
        let Some(save) = save else { return };
        if save {
            self.save_now(false, shared);
        }
        self.persist_now(shared);
        match then {
            Then::Open(dir) => self.open_folder_now(dir, shared),
            Then::OpenFiles(files) => {
                self.session = None;
                self.open_files(files, shared);
            }
            Then::Close => {
                self.close_allowed = true;
                shared.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    /// The photos shown, in grid order.
    fn shown(&self) -> Vec<usize> {
        let Some(s) = &self.session else {
            return Vec::new();
        };
        let needle = self.search.trim().to_lowercase();
        let mut shown: Vec<usize> = s
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| self.filter.keeps(e))
            .filter(|(_, e)| {
                needle.is_empty()
                    || e.name.to_lowercase().contains(&needle)
                    || e.cell.caption.to_lowercase().contains(&needle)
            })
            .map(|(i, _)| i)
            .collect();
        if self.sort == Sort::Confidence {
            shown.sort_by(|&a, &b| {
                let key = |i: usize| s.entries[i].cell.confidence.unwrap_or(f32::INFINITY);
                key(a).total_cmp(&key(b)).then(a.cmp(&b))
            });
        }
        shown
    }

    /// Moves the selection by `delta` photos in grid order (clamped).
    fn move_selection(&mut self, delta: isize) {
        let shown = self.shown();
        if shown.is_empty() {
            return;
        }
        let at = self
            .selected
            .and_then(|i| shown.iter().position(|&k| k == i));
        let target = match at {
            None => 0,
            Some(p) => (p as isize + delta).clamp(0, shown.len() as isize - 1) as usize,
        };
        self.select(shown[target]);
    }

    /// Marks the selected caption as reviewed and moves to the next photo.
    pub fn accept_and_next(&mut self) {
        if let (Some(i), Some(s)) = (self.selected, &mut self.session) {
            s.history.seal();
            if let Some(e) = s.entries.get_mut(i) {
                e.reviewed = true;
            }
            s.touch();
        }
        self.move_selection(1);
    }

    /// App-wide shortcuts of the Batch panel: undo and redo (also while typing), save. Call
    /// before the panel's widgets run, so a text box does not take them.
    pub fn handle_shortcuts(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        use egui::{Key, KeyboardShortcut, Modifiers};
        if self.ask.is_some() || self.typed_path.is_some() {
            return;
        }
        let redo = ctx.input_mut(|i| {
            i.consume_shortcut(&KeyboardShortcut::new(
                Modifiers::COMMAND | Modifiers::SHIFT,
                Key::Z,
            )) || i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::Y))
        });
        if redo {
            self.redo(shared);
        }
        if ctx.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::Z)))
        {
            self.undo(shared);
        }
        if ctx.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::S)))
        {
            self.save(shared);
        }
    }

    /// Review keys when no text box has the keyboard.
    fn review_keys(&mut self, ctx: &egui::Context) {
        use egui::{Key, Modifiers};
        if ctx.text_edit_focused() || self.ask.is_some() || self.typed_path.is_some() {
            return;
        }
        // A focused button (Tab navigation) keeps Enter for itself.
        let button_focused = ctx.memory(|m| m.focused()).is_some();
        let (columns, rows) = self.grid_shape;
        let page = (columns * rows.max(1)) as isize;
        let columns = columns.max(1) as isize;
        let mut moves: Vec<isize> = Vec::new();
        let mut accept = false;
        let mut edit = false;
        let mut take = None;
        ctx.input_mut(|i| {
            for (key, delta) in [
                (Key::ArrowLeft, -1),
                (Key::ArrowRight, 1),
                (Key::ArrowUp, -columns),
                (Key::ArrowDown, columns),
                (Key::PageUp, -page),
                (Key::PageDown, page),
                (Key::Home, isize::MIN / 2),
                (Key::End, isize::MAX / 2),
            ] {
                while i.consume_key(Modifiers::NONE, key) {
                    moves.push(delta);
                }
            }
            accept = !button_focused && i.consume_key(Modifiers::NONE, Key::Enter);
            edit = i.consume_key(Modifiers::NONE, Key::F2);
            let digits = [
                Key::Num1,
                Key::Num2,
                Key::Num3,
                Key::Num4,
                Key::Num5,
                Key::Num6,
                Key::Num7,
                Key::Num8,
                Key::Num9,
            ];
            for (k, key) in digits.into_iter().enumerate() {
                if i.consume_key(Modifiers::NONE, key) {
                    take = Some(k);
                }
            }
        });
        for delta in moves {
            self.move_selection(delta);
        }
        if accept {
            self.accept_and_next();
        }
        if edit {
            self.focus_caption = true;
        }
        if let (Some(k), Some(i), Some(s)) = (take, self.selected, &mut self.session) {
            s.take_alternative(i, k);
        }
    }

    pub fn panel_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        if self.models.is_none() && self.models_pending.is_none() {
            let dir = shared.paths.models_dir.clone();
            match Pending::spawn(&shared.ctx, "list-models", move || {
                crate::jobs::models::list_models(&dir)
            }) {
                Ok(p) => self.models_pending = Some(p),
                Err(e) => shared.status.error(e),
            }
        }
        self.review_keys(ui.ctx());
        self.toolbar_ui(ui, shared);
        self.progress_ui(ui);
        ui.separator();
        self.questions_ui(ui, shared);
        self.typed_path_ui(ui, shared);
        if self.entries().is_empty() {
            if self.listing.is_some() {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Listing images…");
                });
            } else {
                ui.weak(
                    "Choose a folder of photos, or drop one (or several photos) on the window. \
                     Captions already in .txt files beside the photos are loaded.",
                );
            }
            return;
        }
        let width = ui.available_width();
        let preview_width = (width * 0.38).clamp(230.0, 440.0);
        egui::Panel::right("batch_preview")
            .resizable(false)
            .exact_size(preview_width)
            .show(ui, |ui| self.preview_ui(ui, shared));
        egui::CentralPanel::default_margins().show(ui, |ui| self.grid_ui(ui, shared));
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let busy = self.running.is_some();
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Folder");
            let width = (ui.available_width() - 330.0).clamp(160.0, 480.0);
            let edit = ui
                .add_enabled(
                    !busy,
                    egui::TextEdit::singleline(&mut self.folder)
                        .hint_text("a folder of photos")
                        .desired_width(width),
                )
                .labelled_by(label.id);
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui
                .add_enabled(!busy && self.dialog.is_none(), egui::Button::new("Browse…"))
                .on_hover_text("choose a folder")
                .clicked()
            {
                self.open_dialog(DialogFor::Folder, shared);
            }
            let can_open = !busy && !self.folder.trim().is_empty();
            if ui
                .add_enabled(can_open, egui::Button::new("Open"))
                .clicked()
                || (enter && can_open)
            {
                let dir = PathBuf::from(self.folder.trim());
                self.open_folder(dir, shared);
            }
            ui.add_enabled_ui(!busy && !self.recent.is_empty(), |ui| {
                ui.menu_button("Recent", |ui| {
                    for r in self.recent.clone() {
                        if ui.button(&r).clicked() {
                            self.open_folder(PathBuf::from(r), shared);
                            ui.close();
                        }
                    }
                });
            });
            let has_root = self.session.as_ref().is_some_and(|s| s.root.is_some());
            if ui
                .add_enabled(has_root && !busy, egui::Button::new("Rescan"))
                .on_hover_text("look for new, vanished and changed photos")
                .clicked()
            {
                self.rescan(shared);
            }
        });
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Model");
            let mut chosen = None;
            ui.add_enabled_ui(!busy, |ui| {
                egui::ComboBox::from_id_salt("batch_model")
                    .selected_text(self.model.label())
                    .show_ui(ui, |ui| {
                        if ui
                            .selectable_label(
                                self.model == ModelChoice::Default,
                                ModelChoice::Default.label(),
                            )
                            .clicked()
                        {
                            chosen = Some(ModelChoice::Default);
                        }
                        for m in self.models.as_deref().unwrap_or_default() {
                            let choice = ModelChoice::Trained(m.dir.clone());
                            if ui
                                .selectable_label(self.model == choice, &m.name)
                                .on_hover_text(&m.description)
                                .clicked()
                            {
                                chosen = Some(choice);
                            }
                        }
                    })
                    .response
                    .labelled_by(label.id)
                    .on_hover_text("the Batch panel's model; the Caption panel has its own");
            });
            if let Some(c) = chosen {
                self.model = c;
            }
            let label = ui.label("Beam");
            ui.add_enabled(!busy, egui::DragValue::new(&mut self.beam).range(1..=10))
                .labelled_by(label.id)
                .on_hover_text("1 = greedy decoding; more = beam search (slower, often better)");
            let label = ui.label("Words min");
            ui.add_enabled(
                !busy,
                egui::DragValue::new(&mut self.min_len).range(0..=self.max_len),
            )
            .labelled_by(label.id)
            .on_hover_text("take the best beam caption with at least this many words");
            let label = ui.label("max");
            ui.add_enabled(
                !busy,
                egui::DragValue::new(&mut self.max_len).range(self.min_len.max(1)..=60),
            )
            .labelled_by(label.id)
            .on_hover_text("longest caption in words");
            let label = ui.label("Prefix");
            ui.add_enabled(
                !busy,
                egui::TextEdit::singleline(&mut self.prefix)
                    .hint_text("trigger word")
                    .desired_width(70.0),
            )
            .labelled_by(label.id)
            .on_hover_text("put before every new machine caption (and its alternatives)");
            let label = ui.label("Suffix");
            ui.add_enabled(
                !busy,
                egui::TextEdit::singleline(&mut self.suffix).desired_width(70.0),
            )
            .labelled_by(label.id)
            .on_hover_text("put after every new machine caption (and its alternatives)");
            let (todo, replace) = self.counts();
            let has_items = !self.entries().is_empty();
            if busy {
                if ui.button("Cancel").clicked() {
                    self.cancel();
                }
            } else {
                if ui
                    .add_enabled(todo > 0, egui::Button::new(format!("Caption {todo}")))
                    .on_hover_text("captions the photos without a caption; never replaces one")
                    .clicked()
                {
                    self.caption_all(false, shared);
                }
                if ui
                    .add_enabled(has_items, egui::Button::new("Replace all…"))
                    .on_hover_text(format!(
                        "captions every photo again, replacing {replace} captions (asks first; undoable)"
                    ))
                    .clicked()
                {
                    self.caption_all(true, shared);
                }
            }
        });
        ui.horizontal_wrapped(|ui| {
            // First in its row: a slider does not wrap to the next line as buttons do.
            let label = ui.label("Size");
            ui.add(egui::Slider::new(&mut self.thumb_side, 72.0..=256.0).show_value(false))
                .labelled_by(label.id)
                .on_hover_text("thumbnail size");
            let busy = self.running.is_some();
            let unsaved = self.unsaved();
            if ui
                .add_enabled(
                    !busy && unsaved > 0,
                    egui::Button::new(format!("Save {unsaved}")),
                )
                .on_hover_text("write the changed captions to their .txt files (Ctrl+S)")
                .clicked()
            {
                self.save(shared);
            }
            let can_undo = self.session.as_ref().is_some_and(|s| s.history.can_undo());
            let can_redo = self.session.as_ref().is_some_and(|s| s.history.can_redo());
            let undo_hint = self
                .session
                .as_ref()
                .and_then(|s| s.history.next_undo())
                .map_or("Ctrl+Z".to_string(), |l| format!("undo {l} (Ctrl+Z)"));
            if ui
                .add_enabled(can_undo, egui::Button::new("Undo"))
                .on_hover_text(undo_hint)
                .clicked()
            {
                self.undo(shared);
            }
            if ui
                .add_enabled(can_redo, egui::Button::new("Redo"))
                .on_hover_text("Ctrl+Shift+Z")
                .clicked()
            {
                self.redo(shared);
            }
            let has_captions = self.entries().iter().any(Entry::has_caption);
            let can_export = !busy && self.export.is_none() && has_captions;
            if ui.add_enabled(can_export, egui::Button::new("Export CSV…")).clicked() {
                self.open_dialog(DialogFor::Export(ExportKind::Csv), shared);
            }
            if ui.add_enabled(can_export, egui::Button::new("Export JSON…")).clicked() {
                self.open_dialog(DialogFor::Export(ExportKind::Json), shared);
            }
            ui.add_enabled_ui(can_export, |ui| ui.menu_button("Alt text", |ui| {
                ui.label("Alt text for screen readers, from the captions.");
                let items = [
                    ("Web page (HTML)…", ExportKind::AltHtml, "one <img alt=\"caption\"> per photo"),
                    ("CSV…", ExportKind::AltCsv, "file, alt_text, confidence, tags"),
                    ("JSON…", ExportKind::AltJson, "[{file, alt_text, confidence, tags}]"),
                ];
                for (label, kind, hint) in items {
                    if ui.button(label).on_hover_text(hint).clicked() {
                        self.open_dialog(DialogFor::Export(kind), shared);
                        ui.close();
                    }
                }
            }));
            ui.add_enabled_ui(can_export, |ui| ui.menu_button("Photo metadata", |ui| {
                use export::MetadataTarget::{Embedded, XmpSidecar};
                ui.label("Where photo managers (digiKam, Lightroom, darktable) read captions.")
                    .on_hover_text("dc:description and dc:subject (tags)");
                ui.label("A photo that already has a description:");
                for e in export::Existing::ALL {
                    ui.radio_value(&mut self.existing, e, e.label());
                }
                ui.separator();
                let existing = self.existing;
                let items = [
                    ("Write XMP sidecars", XmpSidecar),
                    ("Embed in the photos", Embedded),
                ];
                for (label, target) in items {
                    if ui.button(format!("{label} ({})", existing.label())).clicked() {
                        self.export_metadata(target, existing, shared);
                        ui.close();
                    }
                }
                ui.label("Embedding changes the photo files' metadata only; the image data stays byte-identical.");
            }));
            let unsaved = self.unsaved();
            let saved = self.entries().iter().filter(|e| e.has_caption()).count();
            if ui
                .add_enabled(can_export && unsaved == 0, egui::Button::new("Train on this folder…"))
                .on_hover_text(format!(
                    "Train a caption model on this folder's {saved} saved captions (.txt \
                     files): a new model, or fine-tune {} (chosen on the Train panel)",
                    self.model.label()
                ))
                .on_disabled_hover_text(format!(
                    "Save the {unsaved} changed captions first: training reads the .txt files"
                ))
                .clicked()
            {
                match self.session.as_ref().and_then(|s| s.root.clone()) {
                    Some(folder) => {
                        self.train_request = Some(TrainRequest {
                            folder,
                            model: self.model.clone(),
                        })
                    }
                    None => shared
                        .status
                        .warn("open a folder (not loose photos) to train on its captions"),
                }
            }
                    if self.export.is_some() {
                ui.spinner();
            }
        });
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Search");
            ui.add(
                egui::TextEdit::singleline(&mut self.search)
                    .hint_text("name or caption")
                    .desired_width(130.0),
            )
            .labelled_by(label.id);
            let label = ui.label("Show");
            egui::ComboBox::from_id_salt("batch_filter")
                .selected_text(self.filter.label())
                .show_ui(ui, |ui| {
                    for f in Filter::ALL {
                        ui.selectable_value(&mut self.filter, f, f.label());
                    }
                })
                .response
                .labelled_by(label.id);
            let label = ui.label("Sort");
            egui::ComboBox::from_id_salt("batch_sort")
                .selected_text(match self.sort {
                    Sort::Name => "name",
                    Sort::Confidence => "confidence",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.sort, Sort::Name, "name");
                    ui.selectable_value(&mut self.sort, Sort::Confidence, "confidence")
                        .on_hover_text("least confident first");
                })
                .response
                .labelled_by(label.id);
            let label = ui.label("Find");
            ui.add(egui::TextEdit::singleline(&mut self.find).desired_width(90.0))
                .labelled_by(label.id);
            let label = ui.label("with");
            ui.add(egui::TextEdit::singleline(&mut self.replace_with).desired_width(90.0))
                .labelled_by(label.id);
            let (captions, matches) = self
                .session
                .as_ref()
                .map_or((0, 0), |s| s.count_matches(&self.find));
            if ui
                .add_enabled(
                    captions > 0 && !busy,
                    egui::Button::new(format!("Replace in {captions}")),
                )
                .on_hover_text(format!(
                    "{matches} matches in {captions} captions (case-sensitive; undoable)"
                ))
                .clicked()
                && let Some(s) = &mut self.session
            {
                let n = s.replace_all(&self.find, &self.replace_with);
                shared
                    .status
                    .info(format!("replaced in {n} captions; Ctrl+Z undoes it"));
            }
        });
    }

    fn progress_ui(&mut self, ui: &mut egui::Ui) {
        let Some(run) = &self.running else { return };
        let total = run.items.len().max(1);
        let fraction = run.done as f32 / total as f32;
        let eta = run
            .eta
            .map(|d| format!(" · {} left", clock(d)))
            .unwrap_or_default();
        let failed = if run.failed > 0 {
            format!(" · {} failed", run.failed)
        } else {
            String::new()
        };
        let rate = run.done as f64 / run.started.elapsed().as_secs_f64().max(1e-3);
        ui.add(
            egui::ProgressBar::new(fraction)
                .show_percentage()
                .text(format!(
                    "{}/{} · {rate:.1} images/s{eta}{failed}",
                    run.done,
                    run.items.len()
                )),
        );
        // Elapsed time and ETA move on between events.
        ui.ctx().request_repaint_after(Duration::from_millis(500));
    }

    fn questions_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let Some(ask) = self.ask.clone() else {
            return;
        };
        #[derive(Clone, Copy)]
        enum Choice {
            Yes,
            No,
            Cancel,
        }
        let (title, text, yes, no) = match &ask {
            Ask::Replace(n) => (
                "Replace captions?",
                format!(
                    "Captioning all photos again replaces {n} captions, your own and existing \
                     ones included. Ctrl+Z undoes it."
                ),
                format!("Replace {n} captions"),
                None,
            ),
            Ask::Conflicts(n) => (
                "Some caption files changed",
                format!(
                    "{n} .txt files changed on disk since they were read, or are not UTF-8 text. \
                     Overwrite them, or leave them as they are and save only the others?"
                ),
                "Overwrite them".to_string(),
                Some("Leave them".to_string()),
            ),
            Ask::Unsaved { count, then } => (
                "Unsaved captions",
                format!(
                    "{count} captions are not written to their .txt files yet. They stay in the \
                     session either way{}.",
                    if matches!(then, Then::Close) {
                        " and come back when you open this folder again"
                    } else {
                        ""
                    }
                ),
                "Save them".to_string(),
                Some(
                    if matches!(then, Then::Close) {
                        "Close without saving"
                    } else {
                        "Don't save"
                    }
                    .to_string(),
                ),
            ),
        };
        let modal = egui::Modal::new(egui::Id::unique("batch_question")).show(ui.ctx(), |ui| {
            ui.set_max_width(440.0);
            ui.heading(title);
            ui.label(text);
            ui.add_space(8.0);
            let mut choice = None;
            ui.horizontal_wrapped(|ui| {
                if ui.button(&yes).clicked() {
                    choice = Some(Choice::Yes);
                }
                if let Some(no) = &no
                    && ui.button(no).clicked()
                {
                    choice = Some(Choice::No);
                }
                if ui.button("Cancel").clicked() {
                    choice = Some(Choice::Cancel);
                }
            });
            choice
        });
        let choice = if modal.should_close() {
            Some(Choice::Cancel)
        } else {
            modal.inner
        };
        let Some(choice) = choice else { return };
        match (&ask, choice) {
            (_, Choice::Cancel) if !matches!(ask, Ask::Unsaved { .. }) => self.ask = None,
            (Ask::Replace(_), _) => self.confirm_replace(shared),
            (Ask::Conflicts(_), Choice::Yes) => self.save_now(true, shared),
            (Ask::Conflicts(_), _) => self.save_now(false, shared),
            (Ask::Unsaved { .. }, Choice::Yes) => self.answer_unsaved(Some(true), shared),
            (Ask::Unsaved { .. }, Choice::No) => self.answer_unsaved(Some(false), shared),
            (Ask::Unsaved { .. }, Choice::Cancel) => self.answer_unsaved(None, shared),
        }
    }

    fn typed_path_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let Some(t) = &mut self.typed_path else {
            return;
        };
        let mut done = None;
        let modal = egui::Modal::new(egui::Id::unique("batch_typed_path")).show(ui.ctx(), |ui| {
            ui.set_max_width(480.0);
            ui.heading(match t.purpose {
                DialogFor::Folder => "Open a folder",
                DialogFor::Export(_) => "Export to a file",
            });
            ui.label(format!(
                "No file dialog is available here ({}). Type the path instead.",
                t.why
            ));
            let label = ui.label("Path");
            let r = ui
                .add(egui::TextEdit::singleline(&mut t.text).desired_width(440.0))
                .labelled_by(label.id);
            let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.horizontal(|ui| {
                if ui.button("OK").clicked() || enter {
                    done = Some(true);
                }
                if ui.button("Cancel").clicked() {
                    done = Some(false);
                }
            });
        });
        if modal.should_close() {
            done = Some(false);
        }
        match done {
            Some(true) => {
                if let Some(t) = self.typed_path.take() {
                    let path = PathBuf::from(t.text.trim());
                    if !t.text.trim().is_empty() {
                        self.dialog_answer(t.purpose, path, shared);
                    }
                }
            }
            Some(false) => self.typed_path = None,
            None => {}
        }
    }

    fn preview_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let locked = self.running.is_some();
        let Some(i) = self.selected.filter(|&i| i < self.entries().len()) else {
            ui.weak("Select a photo (click, or use the arrow keys).");
            return;
        };
        let focus = std::mem::take(&mut self.focus_caption);
        let mut accept_now = false;
        let mut refocus = false;
        let Some(s) = &mut self.session else { return };
        let shown_total = s.entries.len();
        egui::ScrollArea::vertical()
            .id_salt("batch_preview_scroll")
            .auto_shrink(false)
            .show(ui, |ui| {
                let side = (ui.available_width() - 4.0).max(120.0);
                let e = &s.entries[i];
                let image_rect =
                    thumbnail_ui(ui, shared, &e.path, side.min(ui.available_height() * 0.55));
                if let Some(att) = &e.cell.attention {
                    // Where the model looked: point at (or click) a word to see its map over
                    // the photo.
                    let mut hovered = None;
                    ui.horizontal_wrapped(|ui| {
                        // After an edit the maps are still those of the model's own caption:
                        // say so, as its words no longer match the caption below.
                        ui.weak(if e.cell.source == Source::Machine {
                            "Where it looked:"
                        } else {
                            "Where the model looked for its own caption:"
                        });
                        for (k, w) in att.words.iter().enumerate() {
                            let on = self.attention_word == Some(k);
                            let r = ui
                                .selectable_label(on, w)
                                .on_hover_text("where the model looked for this word");
                            if r.hovered() {
                                hovered = Some(k);
                            }
                            if r.clicked() {
                                self.attention_word = (!on).then_some(k);
                            }
                        }
                    });
                    if let (Some(rect), Some(k)) = (image_rect, hovered.or(self.attention_word)) {
                        super::caption::paint_attention(ui.painter(), rect, &att.maps, k);
                    }
                }
                ui.horizontal_wrapped(|ui| {
                    ui.strong(&e.name)
                        .on_hover_text(e.path.display().to_string());
                    ui.weak(format!("{} of {shown_total}", i + 1));
                });
                ui.horizontal_wrapped(|ui| {
                    source_badge(ui, e);
                    if let Some(c) = e.cell.confidence {
                        let flagged = flagged_by_model(e);
                        ui.label(
                            egui::RichText::new(format!("confidence {:.0}%", c * 100.0))
                                .color(confidence_shown_color(ui, c, flagged)),
                        )
                        .on_hover_text(if flagged {
                            "How likely the caption is acceptable (calibrated models), else the \
                             geometric mean of the word probabilities. Greyed: the model flagged \
                             this caption for review, and the warning overrules this figure."
                        } else {
                            "How likely the caption is acceptable (calibrated models), else the \
                             geometric mean of the word probabilities"
                        });
                    }
                    if e.reviewed {
                        ui.weak("reviewed");
                    }
                    if e.is_dirty() {
                        ui.weak("not saved");
                    }
                });
                if flagged_by_model(e) {
                    ui.colored_label(
                        ui.visuals().warn_fg_color,
                        format!(
                            "Needs review: {}",
                            e.cell
                                .review_note
                                .as_deref()
                                .unwrap_or("the model thinks this caption is probably wrong.")
                        ),
                    );
                }
                if !e.cell.tags.is_empty() {
                    ui.horizontal_wrapped(|ui| {
                        ui.weak("Tags:");
                        ui.label(e.cell.tags.join(", "));
                    });
                }
                for problem in problems(e) {
                    ui.colored_label(ui.visuals().error_fg_color, problem);
                }
                let label = ui.label("Selected caption");
                let mut text = e.cell.caption.clone();
                let r = ui
                    .add_enabled(
                        !locked,
                        egui::TextEdit::singleline(&mut text)
                            .id_salt("batch_caption")
                            .hint_text("no caption yet")
                            .desired_width(f32::INFINITY),
                    )
                    .labelled_by(label.id);
                if focus {
                    r.request_focus();
                }
                if r.changed() {
                    s.edit(i, &text);
                }
                let accept = r.lost_focus() && ui.input(|inp| inp.key_pressed(egui::Key::Enter));
                ui.horizontal_wrapped(|ui| {
                    if ui
                        .button("Accept and next")
                        .on_hover_text("Enter")
                        .clicked()
                        || accept
                    {
                        refocus = accept;
                        accept_now = true;
                    }
                });
                let alternatives = s.entries[i].cell.alternatives.clone();
                if !alternatives.is_empty() {
                    ui.add_space(6.0);
                    ui.label("Beam alternatives (press 1-9 to take one)");
                    for (k, alt) in alternatives.iter().enumerate().take(9) {
                        let current = *alt == s.entries[i].cell.caption;
                        if ui
                            .add_enabled(
                                !locked,
                                egui::Button::selectable(current, format!("{}  {alt}", k + 1)),
                            )
                            .clicked()
                        {
                            s.take_alternative(i, k);
                        }
                    }
                }
                ui.add_space(8.0);
                ui.weak(
                    "Keys: arrows, PageUp/PageDown, Home/End move · F2 edits · Enter accepts and \
                     moves on · Esc leaves the text box · 1-9 take an alternative · Ctrl+Z / \
                     Ctrl+Shift+Z undo and redo · Ctrl+S saves",
                );
            });
        if accept_now {
            self.accept_and_next();
            self.focus_caption = refocus;
        }
    }

    fn grid_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let shown = self.shown();
        if shown.is_empty() {
            ui.weak("No photo matches the search and filter.");
            return;
        }
        let width = ui.available_width();
        let spacing = ui.spacing().item_spacing.x;
        let side = self.thumb_side.min(width - 24.0).max(48.0);
        let cell_width = (side + 40.0).min(width);
        let text_height = ui.text_style_height(&egui::TextStyle::Body);
        let row_height = side + text_height * 3.0 + 20.0;
        let columns = (((width + spacing) / (cell_width + spacing)).floor() as usize).max(1);
        let rows = shown.len().div_ceil(columns);
        let visible_rows = ((ui.available_height() / row_height).floor() as usize).max(1);
        self.grid_shape = (columns, visible_rows);
        let mut scroll = egui::ScrollArea::vertical()
            .id_salt("batch_grid")
            .auto_shrink(false);
        if std::mem::take(&mut self.scroll_top) {
            scroll = scroll.vertical_scroll_offset(0.0);
        }
        if std::mem::take(&mut self.scroll_to_selected)
            && let Some(pos) = self
                .selected
                .and_then(|i| shown.iter().position(|&k| k == i))
        {
            // Keep the selected row in view: scroll only when it is outside.
            let row = pos / columns;
            let top = row as f32 * (row_height + ui.spacing().item_spacing.y);
            let current = self.grid_offset;
            let view = ui.available_height();
            if top < current {
                scroll = scroll.vertical_scroll_offset(top);
            } else if top + row_height > current + view {
                scroll = scroll.vertical_scroll_offset(top + row_height - view);
            }
        }
        let mut clicked = None;
        let selected = self.selected;
        let entries = self.entries();
        let out = scroll.show_rows(ui, row_height, rows, |ui, row_range| {
            for row in row_range {
                ui.horizontal(|ui| {
                    for col in 0..columns {
                        let k = row * columns + col;
                        let Some(&index) = shown.get(k) else { break };
                        let Some(e) = entries.get(index) else { break };
                        let r = ui
                            .allocate_ui_with_layout(
                                egui::vec2(cell_width, row_height),
                                egui::Layout::top_down(egui::Align::Center),
                                |ui| {
                                    ui.set_min_size(egui::vec2(cell_width, row_height));
                                    ui.set_max_width(cell_width);
                                    cell_ui(ui, shared, e, side, selected == Some(index))
                                },
                            )
                            .inner;
                        if r.clicked() {
                            // The grid is driven by the review keys, not by widget focus.
                            r.surrender_focus();
                            clicked = Some(index);
                        }
                    }
                });
            }
        });
        self.grid_offset = out.state.clamped_offset().y;
        if let Some(i) = clicked {
            self.select(i);
            self.scroll_to_selected = false;
        }
    }
}

/// The app's folder for batch session files.
fn session_dir(shared: &Shared) -> PathBuf {
    shared.paths.data_dir.join("batch-sessions")
}

/// What is wrong with a photo or its sidecar, in words.
fn problems(e: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(f) = &e.failed {
        out.push(format!("could not caption: {f}"));
    }
    if let Disk::Unreadable(m) = &e.disk {
        out.push(m.clone());
    }
    if let Disk::Text(s) = &e.disk
        && !s.extra.is_empty()
    {
        out.push(format!(
            "its .txt file has {} more lines, kept when saving",
            s.extra.len()
        ));
    }
    match e.photo {
        Photo::Present => {}
        Photo::Missing => out.push("the photo is gone from the folder".into()),
        Photo::Changed => out.push("the photo changed since it was opened".into()),
    }
    out
}

fn source_badge(ui: &mut egui::Ui, e: &Entry) -> egui::Response {
    let (text, color) = match e.cell.source {
        Source::Empty if e.failed.is_some() => ("failed", ui.visuals().error_fg_color),
        Source::Empty => ("uncaptioned", ui.visuals().weak_text_color()),
        Source::Existing => ("existing", egui::Color32::from_rgb(110, 160, 230)),
        Source::Machine => ("machine", egui::Color32::from_rgb(200, 170, 90)),
        Source::Edited => ("edited", egui::Color32::from_rgb(120, 200, 120)),
    };
    ui.label(egui::RichText::new(text).small().color(color))
        .on_hover_text(match e.cell.source {
            Source::Empty => "no caption yet",
            Source::Existing => "read from the photo's .txt file or its metadata",
            Source::Machine => "written by the model",
            Source::Edited => "changed by you",
        })
}

fn cell_ui(
    ui: &mut egui::Ui,
    shared: &mut Shared,
    e: &Entry,
    side: f32,
    selected: bool,
) -> egui::Response {
    let top = ui.cursor().min;
    thumbnail_ui(ui, shared, &e.path, side);
    ui.horizontal(|ui| {
        source_badge(ui, e);
        if flagged_by_model(e) {
            ui.label(
                egui::RichText::new("review")
                    .small()
                    .strong()
                    .color(ui.visuals().warn_fg_color),
            )
            .on_hover_text(
                e.cell
                    .review_note
                    .as_deref()
                    .unwrap_or("The model thinks this caption is probably wrong: check it"),
            );
        }
        if let Some(c) = e.cell.confidence {
            ui.label(
                egui::RichText::new(format!("{:.0}%", c * 100.0))
                    .small()
                    .color(confidence_shown_color(ui, c, flagged_by_model(e))),
            );
        }
        if e.is_dirty() {
            ui.label(egui::RichText::new("•").small())
                .on_hover_text("not saved to its .txt file yet");
        }
        if !problems(e).is_empty() {
            ui.label(
                egui::RichText::new("!")
                    .small()
                    .color(ui.visuals().error_fg_color),
            );
        }
        ui.add(egui::Label::new(egui::RichText::new(&e.name).small()).truncate());
    });
    let caption = if e.has_caption() {
        egui::RichText::new(&e.cell.caption)
    } else {
        egui::RichText::new("no caption").weak()
    };
    ui.add(egui::Label::new(caption).truncate());
    let rect = egui::Rect::from_min_size(top, ui.min_rect().size().max(egui::vec2(side, side)));
    let rect = rect.union(ui.min_rect());
    let response = ui.interact(
        rect,
        egui::Id::unique(("batch_cell", &e.path)),
        egui::Sense::click(),
    );
    let label = format!(
        "{}: {} ({})",
        e.name,
        if e.has_caption() {
            e.cell.caption.as_str()
        } else {
            "no caption"
        },
        e.cell.source.label()
    );
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, selected, &label));
    if selected {
        ui.painter().rect_stroke(
            rect.expand(2.0),
            4.0,
            egui::Stroke::new(2.0, ui.visuals().selection.stroke.color),
            egui::StrokeKind::Outside,
        );
    } else if response.hovered() {
        ui.painter().rect_stroke(
            rect.expand(2.0),
            4.0,
            ui.visuals().widgets.hovered.bg_stroke,
            egui::StrokeKind::Outside,
        );
    }
    response
}

/// A machine caption the model flagged for review.
fn flagged_by_model(e: &Entry) -> bool {
    e.cell.source == Source::Machine && e.cell.needs_review == Some(true)
}

/// The colour of a confidence figure: by its value, or grey when the model flagged the caption
/// for review (a photo unlike the training photos can get a high figure that the warning
/// overrules: a green 93% beside "review" would say the opposite of the warning).
fn confidence_shown_color(ui: &egui::Ui, p: f32, flagged: bool) -> egui::Color32 {
    if flagged {
        ui.visuals().weak_text_color()
    } else {
        confidence_color(p)
    }
}

/// Green for confident captions, through yellow, to red.
pub fn confidence_color(p: f32) -> egui::Color32 {
    let p = p.clamp(0.0, 1.0);
    if p >= 0.5 {
        let t = (p - 0.5) * 2.0;
        egui::Color32::from_rgb(
            (220.0 * (1.0 - t) + 60.0 * t) as u8,
            (190.0 * (1.0 - t) + 180.0 * t) as u8,
            70,
        )
    } else {
        let t = p * 2.0;
        egui::Color32::from_rgb(225, (80.0 * (1.0 - t) + 190.0 * t) as u8, 70)
    }
}
