//! The Batch panel's captions as plain data (no egui): each photo's caption and where it came
//! from, what its sidecar on disk holds, undo/redo, and the session file that keeps unsaved
//! work across a crash or a close.
//!
//! Nothing here touches the UI; the panel drives it and the unit tests below check it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use captioner::sidecar::{self, Sidecar, WriteMode, WriteOutcome};

/// Where a caption came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// No caption yet.
    #[default]
    Empty,
    /// Read from the photo's `.txt` sidecar.
    Existing,
    /// Written by the model.
    Machine,
    /// Typed (or changed) by the user.
    Edited,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Empty => "uncaptioned",
            Source::Existing => "existing",
            Source::Machine => "machine",
            Source::Edited => "edited",
        }
    }
}

/// What undo and redo restore: a caption with its source, confidence, beam alternatives, tags
/// and review mark.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub caption: String,
    pub source: Source,
    /// The model's confidence for machine captions: calibrated when the model has a
    /// calibration, else the geometric mean of the word probabilities.
    pub confidence: Option<f32>,
    /// The beam's captions, best first.
    pub alternatives: Vec<String>,
    /// The model flagged the caption as probably wrong (machine captions of calibrated models).
    #[serde(default)]
    pub needs_review: Option<bool>,
    /// Why, for people (the model's worded warning and its specifics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_note: Option<String>,
    /// The model's reason for the flag and its specifics, for the exports (the same fields
    /// as `captioner batch --json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<captioner::trust::ReviewReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_detail: Option<String>,
    /// The photo's keywords as shown and exported (CSV, JSON, XMP `dc:subject`): the image
    /// classifier's, then the caption's content words; the user's own when `tags_edited`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The tags the image classifier gave, when the tags came from the model (`None`: they
    /// did not, or a session file older than this field). The other tags follow the caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier_tags: Option<Vec<String>>,
    /// The user added, removed or moved tags: they stay as they are when the caption changes.
    #[serde(default)]
    pub tags_edited: bool,
    /// Accepted (Enter, "Accept and next", or "Accept" on a selection).
    #[serde(default)]
    pub reviewed: bool,
    /// Where the model looked for each word of its caption (attention models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<CellAttention>,
    /// How well the photo supports each content word of the model's own caption (grounded
    /// captions, the best caption only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding: Option<CellGrounding>,
    /// Where the machine caption came from when not from the decoder, or why it is not
    /// grounded (the model's words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding_note: Option<String>,
}

/// A photo's name in the batch: its path inside the folder, or the whole path when it is
/// outside (or there is no folder).
fn shown_name(root: Option<&Path>, path: &Path) -> String {
    root.and_then(|r| path.strip_prefix(r).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The content words of a caption as tags: lower case, no stop words, no punctuation, each once.
pub fn caption_tags(caption: &str) -> Vec<String> {
    captioner::trust::content_words(
        caption
            .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-'))
            .map(|w| w.trim_matches(|c: char| c == '\'' || c == '-')),
    )
}

/// A tag as typed: trimmed, inner spaces collapsed, commas (the exports' separator) left out.
pub fn clean_tag(tag: &str) -> String {
    tag.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Cell {
    /// Sets the caption; tags that came from the model follow it (the classifier's stay, the
    /// caption's words are the new caption's), tags the user edited stay as they are.
    pub fn set_caption(&mut self, caption: String) {
        if !self.tags_edited && self.classifier_tags.is_none() && !self.tags.is_empty() {
            // A session file from before the classifier's tags were kept apart: the tags that
            // are no word of the model's captions are the classifier's.
            let words: Vec<String> = std::iter::once(&self.caption)
                .chain(&self.alternatives)
                .flat_map(|c| caption_tags(c))
                .collect();
            self.classifier_tags = Some(
                self.tags
                    .iter()
                    .filter(|t| !words.contains(t))
                    .cloned()
                    .collect(),
            );
        }
        self.caption = caption;
        self.retag();
    }

    /// Recomputes model tags from the classifier's and the caption's words (a machine caption
    /// the model flagged as probably wrong lends no words); leaves tags the user edited alone.
    pub fn retag(&mut self) {
        if self.tags_edited {
            return;
        }
        let Some(classifier) = &self.classifier_tags else {
            return;
        };
        let mut tags = classifier.clone();
        if !(self.source == Source::Machine && self.needs_review == Some(true)) {
            captioner::trust::add_word_tags(&mut tags, caption_tags(&self.caption));
        }
        self.tags = tags;
    }
}

/// The words of a machine caption with how well the photo supports each content word.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellGrounding {
    /// The model's caption, word by word.
    pub words: Vec<String>,
    /// Its content words' support.
    pub support: Vec<captioner::trust::grounding::WordGrounding>,
}

/// A machine caption's words and the attention map of each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellAttention {
    pub words: Vec<String>,
    pub maps: captioner::decoder::AttentionMaps,
}

/// The photo's sidecar as last read from (or written to) disk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Disk {
    #[default]
    Missing,
    Text(Sidecar),
    /// Not UTF-8 text, or not readable: the message. Never overwritten unless the user asks.
    Unreadable(String),
}

impl Disk {
    /// Reads the sidecar of `image`.
    pub fn read(image: &Path) -> Disk {
        match sidecar::read(&sidecar::sidecar_path(image)) {
            Ok(None) => Disk::Missing,
            Ok(Some(s)) => Disk::Text(s),
            Err(e) => Disk::Unreadable(e.to_string()),
        }
    }

    fn caption(&self) -> &str {
        match self {
            Disk::Text(s) => &s.caption,
            _ => "",
        }
    }
}

/// Size and modification time of a photo, to notice a photo that changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub len: u64,
    pub modified_ns: u128,
}

impl Stamp {
    pub fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        let modified_ns = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Some(Stamp {
            len: m.len(),
            modified_ns,
        })
    }
}

/// Whether the photo is still as it was when opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Photo {
    #[default]
    Present,
    /// Deleted or moved away since the folder was opened.
    Missing,
    /// Its bytes changed since it was opened (or captioned).
    Changed,
}

/// One photo of the batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub path: PathBuf,
    /// Path relative to the folder (the file's path for loose files).
    pub name: String,
    pub cell: Cell,
    pub disk: Disk,
    /// Why the model could not caption it.
    pub failed: Option<String>,
    pub stamp: Option<Stamp>,
    pub photo: Photo,
    /// Where session files before version 2.1 kept the review mark (now `cell.reviewed`);
    /// still written, for older versions of the app.
    #[serde(default, rename = "reviewed")]
    legacy_reviewed: bool,
    /// The description the photo's metadata holds (an XMP sidecar or embedded XMP/EXIF),
    /// shown as the existing caption when there is no `.txt` sidecar.
    #[serde(default)]
    pub metadata_caption: Option<String>,
    /// Bumped on every change of `cell`, so a batch result does not overwrite a caption the
    /// user changed while the batch ran.
    #[serde(skip)]
    pub revision: u64,
}

impl Entry {
    pub fn new(path: PathBuf, name: String) -> Entry {
        let disk = Disk::read(&path);
        let mut metadata_caption = None;
        let cell = match &disk {
            Disk::Text(s) if !s.caption.is_empty() => Cell {
                caption: s.caption.clone(),
                source: Source::Existing,
                ..Cell::default()
            },
            // No caption in a `.txt` sidecar: the photo's own metadata may hold one. A photo
            // whose metadata cannot be read simply has none here (the captioner reports
            // unreadable photos when it reads them).
            _ => match captioner::metadata::read_description(&path) {
                Ok(Some(d)) if !d.caption.trim().is_empty() => {
                    let caption = sidecar::one_line(&d.caption);
                    metadata_caption = Some(caption.clone());
                    Cell {
                        caption,
                        source: Source::Existing,
                        ..Cell::default()
                    }
                }
                _ => Cell::default(),
            },
        };
        Entry {
            stamp: Stamp::of(&path),
            path,
            name,
            cell,
            disk,
            failed: None,
            photo: Photo::Present,
            legacy_reviewed: false,
            metadata_caption,
            revision: 0,
        }
    }

    /// The caption differs from what its sidecar holds (there is something to save).
    pub fn is_dirty(&self) -> bool {
        let caption = self.cell.caption.trim();
        match &self.disk {
            Disk::Unreadable(_) => {
                !caption.is_empty() && matches!(self.cell.source, Source::Machine | Source::Edited)
            }
            Disk::Missing if self.metadata_caption.as_deref() == Some(caption) => false,
            d => caption != d.caption(),
        }
    }

    /// Whether saving over `now` (what the sidecar holds) needs asking: it changed on disk since
    /// it was read, or it is not UTF-8 text. A sidecar that already holds this caption (written
    /// by a save that was killed before the session file was) is no conflict: writing it loses
    /// nothing.
    pub fn conflicts_with(&self, now: &Disk) -> bool {
        let own =
            matches!(now, Disk::Text(t) if t.caption == sidecar::one_line(&self.cell.caption));
        (matches!(now, Disk::Unreadable(_)) || *now != self.disk) && !own
    }

    pub fn has_caption(&self) -> bool {
        !self.cell.caption.trim().is_empty()
    }
}

/// One undoable action: each changed entry with its cell before and after.
#[derive(Clone, Debug)]
pub struct Step {
    pub label: String,
    pub changes: Vec<(usize, Cell, Cell)>,
    /// Typing into one caption: later keystrokes on the same entry join this step.
    typing: Option<usize>,
}

/// Undo and redo stacks.
#[derive(Debug, Default)]
pub struct History {
    undo: Vec<Step>,
    redo: Vec<Step>,
    /// Whether the last step may still absorb keystrokes.
    open: bool,
}

/// Undo steps kept (the oldest are dropped beyond this).
pub const UNDO_LIMIT: usize = 500;

impl History {
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    pub fn undo_len(&self) -> usize {
        self.undo.len()
    }

    pub fn next_undo(&self) -> Option<&str> {
        self.undo.last().map(|s| s.label.as_str())
    }

    pub fn next_redo(&self) -> Option<&str> {
        self.redo.last().map(|s| s.label.as_str())
    }

    fn push(&mut self, step: Step) {
        if step.changes.is_empty() {
            return;
        }
        self.open = step.typing.is_some();
        self.undo.push(step);
        self.redo.clear();
        if self.undo.len() > UNDO_LIMIT {
            self.undo.remove(0);
        }
    }

    /// Ends the keystroke run: the next edit starts a new step.
    pub fn seal(&mut self) {
        self.open = false;
    }
}

/// Why a session file was not used.
#[derive(Debug, thiserror::Error)]
pub enum SessionFileError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: damaged session file ({source}); started clean, the old file is kept as {}", path.display(), kept.display())]
    Corrupt {
        path: PathBuf,
        kept: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: session file of version {found} (this app writes {}); started clean, the old file is kept as {}", path.display(), SESSION_VERSION, kept.display())]
    OtherVersion {
        path: PathBuf,
        kept: PathBuf,
        found: u64,
    },
}

/// The version of the session file format.
pub const SESSION_VERSION: u64 = 2;

#[derive(Serialize, Deserialize)]
struct SessionFile {
    version: u64,
    key: String,
    entries: Vec<Entry>,
}

/// A folder (or a set of loose photos) open in the Batch panel.
#[derive(Debug, Default)]
pub struct Session {
    /// Identifies the folder: its path, or the photos' paths for loose files.
    pub key: String,
    pub root: Option<PathBuf>,
    pub entries: Vec<Entry>,
    pub history: History,
    next_revision: u64,
}

/// What saving the captions to sidecars did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SaveReport {
    pub written: usize,
    /// Sidecars changed by someone else since they were read, or not UTF-8 text; left alone.
    pub conflicts: Vec<usize>,
    /// Empty captions: never written (a sidecar is not emptied).
    pub empty: usize,
    /// Photos gone from the folder: their captions are kept in the session, not written.
    pub missing: usize,
    /// `file: reason` for each sidecar that could not be written.
    pub failed: Vec<String>,
    /// Photos whose sidecar another photo of this save just wrote (`a.jpg` and `a.png` share
    /// `a.txt`): never overwritten, even with `overwrite_conflicts`, so neither caption is lost.
    pub shared: Vec<String>,
}

impl SaveReport {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "saved {}",
            super::plural(self.written, "caption", "captions")
        );
        if !self.shared.is_empty() {
            s.push_str(&format!(
                ", {} not saved because another photo's caption went to the same .txt file ({}; \
                 export those as XMP sidecars or CSV instead)",
                self.shared.len(),
                self.shared.join(", ")
            ));
        }
        if !self.conflicts.is_empty() {
            s.push_str(&format!(
                ", {} left alone (changed on disk or not UTF-8 text)",
                self.conflicts.len()
            ));
        }
        if self.empty > 0 {
            s.push_str(&format!(", {} empty not written", self.empty));
        }
        if self.missing > 0 {
            s.push_str(&format!(
                ", {} gone",
                super::plural(self.missing, "photo", "photos")
            ));
        }
        if !self.failed.is_empty() {
            s.push_str(&format!(
                ", {} failed (first: {})",
                self.failed.len(),
                self.failed[0]
            ));
        }
        s
    }
}

/// What to do with a batch result.
pub enum Apply {
    Applied,
    /// The user changed (or filled) this caption while the batch ran: it was kept.
    KeptUserCaption,
}

impl Session {
    /// A session over these photos, their sidecars read now.
    pub fn open(key: String, root: Option<PathBuf>, photos: Vec<PathBuf>) -> Session {
        let entries = photos
            .into_iter()
            .map(|path| {
                let name = shown_name(root.as_deref(), &path);
                Entry::new(path, name)
            })
            .collect();
        Session {
            key,
            root,
            entries,
            ..Session::default()
        }
    }

    /// Changes whenever anything in the session changes (for the session file).
    pub fn generation(&self) -> u64 {
        self.next_revision
    }

    /// Records a change that is not a caption edit (a save, a rescan, a failure).
    pub fn touch(&mut self) {
        self.next_revision += 1;
    }

    pub fn dirty_count(&self) -> usize {
        self.entries.iter().filter(|e| e.is_dirty()).count()
    }

    fn bump(&mut self, index: usize) {
        self.next_revision += 1;
        if let Some(e) = self.entries.get_mut(index) {
            e.revision = self.next_revision;
        }
    }

    pub fn revision(&self, index: usize) -> u64 {
        self.entries.get(index).map_or(0, |e| e.revision)
    }

    /// The user typed: `text` becomes the caption (on one line). Consecutive keystrokes in
    /// one caption form one undo step.
    pub fn edit(&mut self, index: usize, text: &str) {
        let Some(entry) = self.entries.get(index) else {
            return;
        };
        let text = without_line_breaks(text);
        if entry.cell.caption == text {
            return;
        }
        let before = entry.cell.clone();
        let mut after = Cell {
            source: Source::Edited,
            confidence: None,
            needs_review: None,
            review_note: None,
            review_reason: None,
            review_detail: None,
            // The support of the model's own words stays (shown as such); its note on where
            // the caption came from no longer applies to the user's words.
            grounding_note: None,
            ..before.clone()
        };
        after.set_caption(text);
        self.bump(index);
        self.entries[index].cell = after.clone();
        if self.history.open
            && let Some(last) = self.history.undo.last_mut()
            && last.typing == Some(index)
            && let Some(change) = last.changes.first_mut()
        {
            change.2 = after;
            self.history.redo.clear();
            return;
        }
        self.history.push(Step {
            label: "edit caption".into(),
            changes: vec![(index, before, after)],
            typing: Some(index),
        });
    }

    /// Sets several cells as one undo step.
    pub fn apply_step(&mut self, label: &str, changes: Vec<(usize, Cell)>) {
        let mut step = Step {
            label: label.into(),
            changes: Vec::new(),
            typing: None,
        };
        for (index, after) in changes {
            let Some(entry) = self.entries.get(index) else {
                continue;
            };
            if entry.cell == after {
                continue;
            }
            step.changes
                .push((index, entry.cell.clone(), after.clone()));
            self.bump(index);
            self.entries[index].cell = after;
        }
        self.history.seal();
        self.history.push(step);
    }

    /// Takes the beam's `k`-th alternative as the caption (undoable).
    pub fn take_alternative(&mut self, index: usize, k: usize) -> bool {
        let Some(entry) = self.entries.get(index) else {
            return false;
        };
        let Some(text) = entry.cell.alternatives.get(k) else {
            return false;
        };
        let mut cell = entry.cell.clone();
        cell.source = if k == 0 && entry.cell.source == Source::Machine {
            Source::Machine
        } else {
            Source::Edited
        };
        cell.set_caption(text.clone());
        self.apply_step(&format!("take alternative {}", k + 1), vec![(index, cell)]);
        true
    }

    /// A batch result for `index`, sent when the entry was at `revision`. With `fill_only`, a
    /// caption that appeared meanwhile is kept; a caption changed after the batch started is
    /// always kept. Returns the change for the batch's undo step.
    pub fn batch_result(
        &mut self,
        index: usize,
        revision: u64,
        fill_only: bool,
        cell: Cell,
    ) -> Option<(usize, Cell, Cell)> {
        let entry = self.entries.get_mut(index)?;
        entry.failed = None;
        if entry.revision != revision || (fill_only && entry.has_caption()) {
            // Keep the user's caption, but offer the model's as alternatives.
            if entry.cell.alternatives.is_empty() {
                entry.cell.alternatives = cell.alternatives;
            }
            return None;
        }
        let mut cell = cell;
        if entry.cell.tags_edited {
            // Tags the user edited stay as they are, whatever the caption.
            cell.tags = entry.cell.tags.clone();
            cell.tags_edited = true;
        }
        let before = std::mem::replace(&mut entry.cell, cell.clone());
        if entry.photo == Photo::Changed {
            entry.photo = Photo::Present;
            entry.stamp = Stamp::of(&entry.path);
        }
        self.bump(index);
        Some((index, before, cell))
    }

    /// Records a finished batch as one undo step.
    pub fn push_batch_step(&mut self, label: &str, changes: Vec<(usize, Cell, Cell)>) {
        self.history.seal();
        self.history.push(Step {
            label: label.into(),
            changes,
            typing: None,
        });
    }

    /// Undoes the last step; returns the entries it touched.
    pub fn undo(&mut self) -> Option<Vec<usize>> {
        let step = self.history.undo.pop()?;
        self.history.open = false;
        let touched = self.restore_step(&step, true);
        self.history.redo.push(step);
        Some(touched)
    }

    pub fn redo(&mut self) -> Option<Vec<usize>> {
        let step = self.history.redo.pop()?;
        self.history.open = false;
        let touched = self.restore_step(&step, false);
        self.history.undo.push(step);
        Some(touched)
    }

    fn restore_step(&mut self, step: &Step, before: bool) -> Vec<usize> {
        let mut touched = Vec::new();
        for (index, b, a) in step.changes.iter().rev() {
            if *index < self.entries.len() {
                self.entries[*index].cell = if before { b.clone() } else { a.clone() };
                self.bump(*index);
                touched.push(*index);
            }
        }
        touched.reverse();
        touched
    }

    /// Captions in which `find` occurs (exact, case-sensitive), and how many times in all.
    pub fn count_matches(&self, find: &str) -> (usize, usize) {
        self.count_matches_in(find, None)
    }

    /// [`Session::count_matches`] over the entries `only` (every entry with `None`).
    pub fn count_matches_in(&self, find: &str, only: Option<&[usize]>) -> (usize, usize) {
        if find.is_empty() {
            return (0, 0);
        }
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, _)| only.is_none_or(|o| o.contains(i)))
            .fold((0, 0), |(c, n), (_, e)| {
                let k = e.cell.caption.matches(find).count();
                (c + usize::from(k > 0), n + k)
            })
    }

    /// Replaces `find` by `with` in every caption, as one undo step. Returns the number of
    /// captions changed.
    pub fn replace_all(&mut self, find: &str, with: &str) -> usize {
        self.replace_in(find, with, None)
    }

    /// Replaces `find` by `with` in the captions of the entries `only` (every entry with
    /// `None`), as one undo step; tags that came from the model follow the new captions.
    /// Returns the number of captions changed.
    pub fn replace_in(&mut self, find: &str, with: &str, only: Option<&[usize]>) -> usize {
        if find.is_empty() {
            return 0;
        }
        let changes: Vec<(usize, Cell)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(i, e)| only.is_none_or(|o| o.contains(i)) && e.cell.caption.contains(find))
            .map(|(i, e)| {
                let mut cell = e.cell.clone();
                cell.source = Source::Edited;
                cell.confidence = None;
                cell.set_caption(sidecar::one_line(&e.cell.caption.replace(find, with)));
                (i, cell)
            })
            .collect();
        let n = changes.len();
        let place = if only.is_some() {
            " in the selection"
        } else {
            ""
        };
        self.apply_step(
            &format!("replace \u{201c}{find}\u{201d}{place} ({n} captions)"),
            changes,
        );
        n
    }

    /// Marks the captions of `indices` as accepted, as one undo step. Returns how many were
    /// newly marked.
    pub fn accept(&mut self, indices: &[usize]) -> usize {
        let changes: Vec<(usize, Cell)> = indices
            .iter()
            .filter_map(|&i| self.entries.get(i).map(|e| (i, e)))
            .filter(|(_, e)| !e.cell.reviewed)
            .map(|(i, e)| {
                let mut cell = e.cell.clone();
                cell.reviewed = true;
                (i, cell)
            })
            .collect();
        let n = changes.len();
        let label = if n == 1 {
            "accept".to_string()
        } else {
            format!("accept {n} captions")
        };
        self.apply_step(&label, changes);
        n
    }

    /// Adds `tag` (typed: see [`clean_tag`]; commas separate several) at the end of the tags
    /// of `indices` that lack it, as one undo step. Returns how many photos got it.
    pub fn add_tag(&mut self, indices: &[usize], tag: &str) -> usize {
        let new: Vec<String> = tag
            .split(',')
            .map(clean_tag)
            .filter(|t| !t.is_empty())
            .collect();
        self.edit_tags(indices, &format!("add tag {}", new.join(", ")), |tags| {
            for t in &new {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
        })
    }

    /// Removes `tag` from the tags of `indices`, as one undo step. Returns how many photos
    /// lost it.
    pub fn remove_tag(&mut self, indices: &[usize], tag: &str) -> usize {
        self.edit_tags(indices, &format!("remove tag {tag}"), |tags| {
            tags.retain(|t| t != tag)
        })
    }

    /// Moves tag `from` of entry `index` to position `to` (clamped), as one undo step.
    pub fn move_tag(&mut self, index: usize, from: usize, to: usize) -> bool {
        let Some(tag) = self
            .entries
            .get(index)
            .and_then(|e| e.cell.tags.get(from))
            .cloned()
        else {
            return false;
        };
        let n = self.edit_tags(&[index], &format!("move tag {tag}"), |tags| {
            let t = tags.remove(from);
            tags.insert(to.min(tags.len()), t);
        });
        n > 0
    }

    /// Changes the tags of `indices` by `change`, as one undo step; the photos whose tags
    /// changed keep them as edited. Returns how many changed.
    fn edit_tags(
        &mut self,
        indices: &[usize],
        label: &str,
        mut change: impl FnMut(&mut Vec<String>),
    ) -> usize {
        let changes: Vec<(usize, Cell)> = indices
            .iter()
            .filter_map(|&i| self.entries.get(i).map(|e| (i, e)))
            .filter_map(|(i, e)| {
                let mut cell = e.cell.clone();
                change(&mut cell.tags);
                (cell.tags != e.cell.tags).then(|| {
                    cell.tags_edited = true;
                    (i, cell)
                })
            })
            .collect();
        let n = changes.len();
        let label = if indices.len() > 1 {
            format!("{label} ({n} photos)")
        } else {
            label.to_string()
        };
        self.apply_step(&label, changes);
        n
    }

    /// How many photos carry each tag, most common first (ties by name).
    pub fn tag_counts(&self) -> Vec<(String, usize)> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for e in &self.entries {
            for t in &e.cell.tags {
                *counts.entry(t.as_str()).or_insert(0) += 1;
            }
        }
        let mut v: Vec<(String, usize)> = counts
            .into_iter()
            .map(|(t, n)| (t.to_string(), n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// Sidecars that would be overwritten although they changed on disk since they were read,
    /// or are not UTF-8 text.
    pub fn conflicts(&self) -> Vec<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_dirty() && e.has_caption() && e.photo != Photo::Missing)
            .filter(|(_, e)| e.conflicts_with(&Disk::read(&e.path)))
            .map(|(i, _)| i)
            .collect()
    }

    /// Writes the captions that changed to their sidecars, atomically, keeping the sidecars'
    /// extra lines. Sidecars that changed on disk or are not UTF-8 text are written only with
    /// `overwrite_conflicts`.
    pub fn save(&mut self, overwrite_conflicts: bool) -> SaveReport {
        let mut report = SaveReport::default();
        // Sidecars more than one photo maps to (`a.jpg` and `a.png` share `a.txt`).
        let mut users: HashMap<PathBuf, usize> = HashMap::new();
        for e in &self.entries {
            *users.entry(sidecar::sidecar_path(&e.path)).or_insert(0) += 1;
        }
        for (i, e) in self.entries.iter_mut().enumerate() {
            if !e.is_dirty() {
                continue;
            }
            if !e.has_caption() {
                report.empty += 1;
                continue;
            }
            if !e.path.exists() {
                e.photo = Photo::Missing;
                report.missing += 1;
                continue;
            }
            let now = Disk::read(&e.path);
            let conflict = e.conflicts_with(&now);
            let path = sidecar::sidecar_path(&e.path);
            if conflict && users.get(&path).is_some_and(|&n| n > 1) {
                // Another photo's caption may be what changed it: never overwritten.
                report.shared.push(format!(
                    "{} shares {} with another photo",
                    e.path.display(),
                    path.display()
                ));
                continue;
            }
            if conflict && !overwrite_conflicts {
                report.conflicts.push(i);
                continue;
            }
            let extra = match &now {
                Disk::Text(s) => s.extra.clone(),
                _ => Vec::new(),
            };
            let new = Sidecar {
                caption: sidecar::one_line(&e.cell.caption),
                extra,
            };
            match sidecar::write(&path, &new, WriteMode::Overwrite) {
                Ok(WriteOutcome::Written | WriteOutcome::Unchanged) => {
                    report.written += 1;
                    e.disk = Disk::Text(new);
                }
                Ok(WriteOutcome::SkippedExisting) => report.conflicts.push(i),
                Err(err) => report.failed.push(err.to_string()),
            }
        }
        report
    }

    /// Compares the listing with the photos on disk: photos that vanished are marked missing,
    /// photos whose bytes changed are marked changed, new ones are added. Returns (new,
    /// missing, changed).
    pub fn rescan(&mut self, listed: Vec<PathBuf>) -> (usize, usize, usize) {
        let known: HashMap<PathBuf, usize> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.clone(), i))
            .collect();
        let mut missing = 0;
        let mut changed = 0;
        for e in &mut self.entries {
            match Stamp::of(&e.path) {
                None => {
                    if e.photo != Photo::Missing {
                        missing += 1;
                    }
                    e.photo = Photo::Missing;
                }
                Some(s) => {
                    if e.stamp.is_some_and(|old| old != s) {
                        if e.photo != Photo::Changed {
                            changed += 1;
                        }
                        e.photo = Photo::Changed;
                    } else if e.photo == Photo::Missing {
                        e.photo = Photo::Present;
                    }
                    e.stamp = Some(s);
                }
            }
        }
        let root = self.root.clone();
        let mut added = 0;
        for path in listed {
            if known.contains_key(&path) {
                continue;
            }
            let name = shown_name(root.as_deref(), &path);
            self.entries.push(Entry::new(path, name));
            added += 1;
        }
        (added, missing, changed)
    }

    /// Adds photos that appeared in the folder (a watched folder's): each new one is a new
    /// entry; one already in the batch is marked present again, and a failure it had is
    /// forgotten (it was probably read while still being written). Returns the entries of
    /// `paths`, in order, and how many are new.
    pub fn add_photos(&mut self, paths: Vec<PathBuf>) -> (Vec<usize>, usize) {
        let mut known: HashMap<PathBuf, usize> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.clone(), i))
            .collect();
        let root = self.root.clone();
        let mut indices = Vec::with_capacity(paths.len());
        let mut added = 0;
        for path in paths {
            if let Some(&i) = known.get(&path) {
                let e = &mut self.entries[i];
                e.photo = Photo::Present;
                e.stamp = Stamp::of(&path);
                if !e.has_caption() {
                    e.failed = None;
                }
                indices.push(i);
                continue;
            }
            let name = shown_name(root.as_deref(), &path);
            known.insert(path.clone(), self.entries.len());
            indices.push(self.entries.len());
            self.entries.push(Entry::new(path, name));
            added += 1;
        }
        if !indices.is_empty() {
            self.touch();
        }
        (indices, added)
    }

    /// The session file of a folder (or set of photos) inside `dir`.
    pub fn file_for(dir: &Path, key: &str) -> PathBuf {
        // FNV-1a: a stable name from the key.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in key.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        dir.join(format!("{h:016x}.json"))
    }

    /// The session as JSON (what [`Session::restore`] reads).
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&SessionFile {
            version: SESSION_VERSION,
            key: self.key.clone(),
            entries: self
                .entries
                .iter()
                .map(|e| Entry {
                    legacy_reviewed: e.cell.reviewed,
                    ..e.clone()
                })
                .collect(),
        })
    }

    /// Merges the session saved at `path` into this freshly opened one: captions not yet
    /// saved come back, sidecars that changed on disk meanwhile win over saved-but-unchanged
    /// captions, photos that changed are marked. A damaged file or one of another version is
    /// moved aside and reported. Returns how many unsaved captions came back.
    pub fn restore(&mut self, path: &Path) -> Result<usize, SessionFileError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(SessionFileError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let kept = |tag: &str| {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let aside = path.with_extension(format!("{tag}-{stamp}.json"));
            match std::fs::rename(path, &aside) {
                Ok(()) => aside,
                Err(_) => path.to_path_buf(),
            }
        };
        #[derive(Deserialize)]
        struct Version {
            version: u64,
        }
        let version = match serde_json::from_slice::<Version>(&bytes) {
            Ok(v) => v.version,
            Err(source) => {
                return Err(SessionFileError::Corrupt {
                    path: path.to_path_buf(),
                    kept: kept("damaged"),
                    source,
                });
            }
        };
        if version != SESSION_VERSION {
            return Err(SessionFileError::OtherVersion {
                path: path.to_path_buf(),
                kept: kept(&format!("v{version}")),
                found: version,
            });
        }
        let file: SessionFile = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(source) => {
                return Err(SessionFileError::Corrupt {
                    path: path.to_path_buf(),
                    kept: kept("damaged"),
                    source,
                });
            }
        };
        if file.key != self.key {
            return Ok(0);
        }
        let saved: HashMap<&str, &Entry> =
            file.entries.iter().map(|e| (e.name.as_str(), e)).collect();
        let mut restored = 0;
        for e in &mut self.entries {
            let Some(old) = saved.get(e.name.as_str()) else {
                continue;
            };
            e.failed = old.failed.clone();
            if old.is_dirty() {
                // Unsaved work comes back, even if the sidecar changed meanwhile (saving then
                // asks before overwriting it).
                e.cell = old.cell.clone();
                e.disk = old.disk.clone();
                restored += 1;
            } else if e.disk == old.disk {
                e.cell = old.cell.clone();
            } else if old.cell.tags_edited {
                // The caption changed on disk meanwhile; the user's own tags stay.
                e.cell.tags = old.cell.tags.clone();
                e.cell.tags_edited = true;
            }
            e.cell.reviewed = old.cell.reviewed || old.legacy_reviewed;
            if old.stamp.is_some() && e.stamp != old.stamp {
                e.photo = Photo::Changed;
            }
        }
        // Photos that are gone, with captions not yet saved: kept, marked missing.
        let present: std::collections::HashSet<String> =
            self.entries.iter().map(|e| e.name.clone()).collect();
        for old in &file.entries {
            if !present.contains(&old.name) && old.is_dirty() {
                let mut e = old.clone();
                e.cell.reviewed |= e.legacy_reviewed;
                e.photo = Photo::Missing;
                self.entries.push(e);
                restored += 1;
            }
        }
        Ok(restored)
    }
}

/// Line breaks (a pasted paragraph) become single spaces; other spaces are left as typed.
pub fn without_line_breaks(text: &str) -> String {
    if !text.contains(['\n', '\r']) {
        return text.to_string();
    }
    text.replace("\r\n", " ").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Session) {
        let tmp = tempfile::tempdir().unwrap();
        let mut photos = Vec::new();
        for (name, bytes) in files {
            let p = tmp.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            if name.ends_with(".jpg") {
                photos.push(p);
            }
        }
        photos.sort();
        let s = Session::open(
            tmp.path().display().to_string(),
            Some(tmp.path().to_path_buf()),
            photos,
        );
        (tmp, s)
    }

    fn machine(text: &str) -> Cell {
        Cell {
            caption: text.into(),
            source: Source::Machine,
            confidence: Some(0.5),
            alternatives: vec![text.into(), format!("{text} too")],
            needs_review: None,
            review_note: None,
            tags: Vec::new(),
            attention: None,
            ..Cell::default()
        }
    }

    #[test]
    fn opening_reads_sidecars_of_every_kind() {
        let (_t, s) = folder(&[
            ("a.jpg", b"x"),
            ("a.txt", b"\xEF\xBB\xBFa dog  \r\nsecond\r\n"),
            ("b.jpg", b"x"),
            ("c.jpg", b"x"),
            ("c.txt", b"bad \xff\n"),
        ]);
        assert_eq!(s.entries[0].cell.caption, "a dog");
        assert_eq!(s.entries[0].cell.source, Source::Existing);
        assert_eq!(s.entries[1].cell.source, Source::Empty);
        assert!(matches!(&s.entries[2].disk, Disk::Unreadable(m) if m.contains("line 1")));
        assert_eq!(s.dirty_count(), 0);
    }

    #[test]
    fn opening_reads_descriptions_from_photo_metadata() {
        let t = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_pixel(16, 16, image::Rgb([90, 120, 30]));
        for name in ["a.jpg", "b.jpg"] {
            img.save(t.path().join(name)).unwrap();
        }
        captioner::metadata::embed_description(
            &t.path().join("a.jpg"),
            &captioner::metadata::Described {
                caption: "a field at dusk".into(),
                subjects: vec!["field".into()],
            },
        )
        .unwrap();
        captioner::metadata::write_sidecar(
            &t.path().join("b.jpg"),
            &captioner::metadata::Described {
                caption: "a green square".into(),
                subjects: vec![],
            },
        )
        .unwrap();
        let photos = vec![t.path().join("a.jpg"), t.path().join("b.jpg")];
        let s = Session::open("k".into(), Some(t.path().to_path_buf()), photos);
        assert_eq!(s.entries[0].cell.caption, "a field at dusk");
        assert_eq!(s.entries[0].cell.source, Source::Existing);
        assert_eq!(s.entries[1].cell.caption, "a green square");
        // Nothing to save: the captions are where they were found.
        assert_eq!(s.dirty_count(), 0);
    }

    #[test]
    fn save_writes_only_changes_keeps_extra_lines_and_leaves_bad_files() {
        let (t, mut s) = folder(&[
            ("a.jpg", b"x"),
            ("a.txt", b"a dog\r\nsecond\r\n"),
            ("b.jpg", b"x"),
            ("b.txt", b"untouched\n"),
            ("c.jpg", b"x"),
            ("c.txt", b"bad \xff\n"),
        ]);
        let b_before = std::fs::metadata(t.path().join("b.txt"))
            .unwrap()
            .modified()
            .unwrap();
        s.edit(0, "a brown dog");
        s.edit(2, "a cat");
        assert_eq!(s.dirty_count(), 2);
        let r = s.save(false);
        assert_eq!(r.written, 1);
        assert_eq!(r.conflicts, vec![2]);
        assert_eq!(
            std::fs::read_to_string(t.path().join("a.txt")).unwrap(),
            "a brown dog\nsecond\n"
        );
        assert_eq!(
            std::fs::read(t.path().join("c.txt")).unwrap(),
            b"bad \xff\n"
        );
        let b_after = std::fs::metadata(t.path().join("b.txt"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(b_before, b_after, "an unchanged sidecar is not rewritten");
        let r = s.save(true);
        assert_eq!(r.written, 1);
        assert_eq!(
            std::fs::read_to_string(t.path().join("c.txt")).unwrap(),
            "a cat\n"
        );
        assert_eq!(s.dirty_count(), 0);
    }

    #[test]
    fn photos_sharing_a_sidecar_never_overwrite_each_other() {
        let tmp = tempfile::tempdir().unwrap();
        let (jpg, png) = (tmp.path().join("a.jpg"), tmp.path().join("a.png"));
        std::fs::write(&jpg, b"x").unwrap();
        std::fs::write(&png, b"x").unwrap();
        let mut s = Session::open(
            tmp.path().display().to_string(),
            Some(tmp.path().to_path_buf()),
            vec![jpg.clone(), png.clone()],
        );
        s.edit(0, "a dog on a beach");
        s.edit(1, "a cat on a sofa");
        for overwrite in [false, true] {
            let r = s.save(overwrite);
            assert_eq!(r.shared.len(), 1, "{r:?}");
            assert!(r.describe().contains("same .txt file"), "{}", r.describe());
            assert_eq!(
                std::fs::read_to_string(tmp.path().join("a.txt")).unwrap(),
                "a dog on a beach\n"
            );
        }
        // The other photo's caption is kept in the session, still unsaved.
        assert_eq!(s.dirty_count(), 1);
    }

    #[test]
    fn sidecar_changed_by_someone_else_is_a_conflict() {
        let (t, mut s) = folder(&[("a.jpg", b"x"), ("a.txt", b"mine\n")]);
        s.edit(0, "ours");
        std::fs::write(t.path().join("a.txt"), "theirs\n").unwrap();
        assert_eq!(s.conflicts(), vec![0]);
        let r = s.save(false);
        assert_eq!(r.conflicts, vec![0]);
        assert_eq!(
            std::fs::read_to_string(t.path().join("a.txt")).unwrap(),
            "theirs\n"
        );
    }

    #[test]
    fn unwritable_sidecar_is_reported_and_stays_unsaved() {
        let (t, mut s) = folder(&[("a.jpg", b"x")]);
        s.edit(0, "a dog");
        // The sidecar's place is taken by a folder, which no rename can replace (this holds
        // for root too, unlike a read-only folder).
        std::fs::create_dir(t.path().join("a.txt")).unwrap();
        let r = s.save(true);
        assert_eq!(r.written, 0);
        assert_eq!(r.failed.len(), 1, "{r:?}");
        assert!(r.failed[0].contains("a.txt"), "{r:?}");
        assert_eq!(s.dirty_count(), 1);
    }

    #[test]
    fn read_only_folder_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let (t, mut s) = folder(&[("a.jpg", b"x")]);
        s.edit(0, "a dog");
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        let probe = t.path().join(".probe");
        if std::fs::write(&probe, "x").is_ok() {
            let _ = std::fs::remove_file(&probe);
            std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            eprintln!("skipped: running as root, a read-only folder is still writable");
            return;
        }
        let r = s.save(true);
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(r.failed.len(), 1, "{r:?}");
        assert_eq!(s.dirty_count(), 1);
    }

    #[test]
    fn undo_redo_typing_and_bulk_steps() {
        let (_t, mut s) = folder(&[("a.jpg", b"x"), ("b.jpg", b"x"), ("a.txt", b"mine\n")]);
        s.edit(0, "mine!");
        s.edit(0, "mine!!");
        assert_eq!(s.history.undo_len(), 1, "keystrokes join one step");
        s.history.seal();
        s.edit(0, "mine!!!");
        assert_eq!(s.history.undo_len(), 2);
        s.undo();
        assert_eq!(s.entries[0].cell.caption, "mine!!");
        s.undo();
        assert_eq!(s.entries[0].cell.caption, "mine");
        assert_eq!(s.entries[0].cell.source, Source::Existing);
        s.redo();
        assert_eq!(s.entries[0].cell.caption, "mine!!");
        let rev = s.revision(1);
        let c = s.batch_result(1, rev, true, machine("a dog")).unwrap();
        s.push_batch_step("caption", vec![c]);
        assert_eq!(s.entries[1].cell.source, Source::Machine);
        s.undo();
        assert_eq!(s.entries[1].cell.source, Source::Empty);
        assert!(s.history.can_redo());
        s.edit(1, "x");
        assert!(!s.history.can_redo(), "a new edit clears redo");
    }

    #[test]
    fn undo_keeps_at_least_a_hundred_steps() {
        let (_t, mut s) = folder(&[("a.jpg", b"x")]);
        for i in 0..(UNDO_LIMIT + 20) {
            s.history.seal();
            s.edit(0, &format!("v{i}"));
        }
        assert_eq!(s.history.undo_len(), UNDO_LIMIT);
        let mut n = 0;
        while s.undo().is_some() {
            n += 1;
        }
        assert!(n >= 100);
        assert_eq!(s.entries[0].cell.caption, "v19");
    }

    #[test]
    fn batch_results_never_overwrite_user_changes() {
        let (_t, mut s) = folder(&[("a.jpg", b"x"), ("b.jpg", b"x"), ("a.txt", b"mine\n")]);
        let r0 = s.revision(0);
        let r1 = s.revision(1);
        // Fill-only keeps the existing caption.
        assert!(s.batch_result(0, r0, true, machine("a dog")).is_none());
        assert_eq!(s.entries[0].cell.caption, "mine");
        assert_eq!(
            s.entries[0].cell.alternatives.len(),
            2,
            "offered as alternatives"
        );
        // The user typed while the batch ran.
        s.edit(1, "typed");
        assert!(s.batch_result(1, r1, false, machine("a cat")).is_none());
        assert_eq!(s.entries[1].cell.caption, "typed");
    }

    #[test]
    fn find_and_replace_counts_and_undoes() {
        let (_t, mut s) = folder(&[
            ("a.jpg", b"x"),
            ("a.txt", b"a dog and a dog\n"),
            ("b.jpg", b"x"),
            ("b.txt", b"a cat\n"),
        ]);
        assert_eq!(s.count_matches("dog"), (1, 2));
        assert_eq!(s.replace_all("dog", "puppy"), 1);
        assert_eq!(s.entries[0].cell.caption, "a puppy and a puppy");
        assert_eq!(s.entries[0].cell.source, Source::Edited);
        s.undo();
        assert_eq!(s.entries[0].cell.caption, "a dog and a dog");
        assert_eq!(s.entries[0].cell.source, Source::Existing);
        assert_eq!(s.replace_all("", "x"), 0);
    }

    #[test]
    fn alternatives_are_taken_undoably() {
        let (_t, mut s) = folder(&[("a.jpg", b"x")]);
        let rev = s.revision(0);
        let c = s.batch_result(0, rev, true, machine("a dog")).unwrap();
        s.push_batch_step("caption", vec![c]);
        assert!(s.take_alternative(0, 1));
        assert_eq!(s.entries[0].cell.caption, "a dog too");
        assert!(!s.take_alternative(0, 5));
        s.undo();
        assert_eq!(s.entries[0].cell.caption, "a dog");
    }

    #[test]
    fn session_file_round_trip_and_bad_files() {
        let (t, mut s) = folder(&[("a.jpg", b"x"), ("b.jpg", b"x"), ("b.txt", b"old\n")]);
        s.edit(0, "unsaved");
        let data = tempfile::tempdir().unwrap();
        let file = Session::file_for(data.path(), &s.key);
        std::fs::write(&file, s.to_json().unwrap()).unwrap();
        // Someone changes b.txt while the app is closed: the disk wins for unedited captions.
        std::fs::write(t.path().join("b.txt"), "new\n").unwrap();
        let photos = vec![t.path().join("a.jpg"), t.path().join("b.jpg")];
        let mut again = Session::open(s.key.clone(), s.root.clone(), photos.clone());
        assert_eq!(again.restore(&file).unwrap(), 1);
        assert_eq!(again.entries[0].cell.caption, "unsaved");
        assert_eq!(again.entries[0].cell.source, Source::Edited);
        assert_eq!(again.entries[1].cell.caption, "new");

        // Damaged.
        std::fs::write(&file, b"{ not json").unwrap();
        let mut fresh = Session::open(s.key.clone(), s.root.clone(), photos.clone());
        let e = fresh.restore(&file).unwrap_err();
        assert!(matches!(e, SessionFileError::Corrupt { .. }), "{e}");
        assert!(!file.exists(), "moved aside");
        let kept: Vec<_> = std::fs::read_dir(data.path()).unwrap().collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(fresh.entries[0].cell.caption, "");

        // Older version.
        std::fs::write(&file, br#"{"version": 1, "captions": {}}"#).unwrap();
        let e = fresh.restore(&file).unwrap_err();
        assert!(
            matches!(e, SessionFileError::OtherVersion { found: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("version 1"));
        assert!(!file.exists());
    }

    /// A machine caption whose tags are the classifier's "beach" and the caption's words.
    fn tagged(caption: &str) -> Cell {
        let mut c = machine(caption);
        c.classifier_tags = Some(vec!["beach".into()]);
        c.retag();
        c
    }

    /// Captions entry 0 by the model, as one batch step.
    fn caption_by_model(s: &mut Session, i: usize, cell: Cell) {
        let rev = s.revision(i);
        let c = s.batch_result(i, rev, false, cell).unwrap();
        s.push_batch_step("caption", vec![c]);
    }

    #[test]
    fn tags_follow_an_edited_caption_and_the_classifiers_stay() {
        let (_t, mut s) = folder(&[("a.jpg", b"x")]);
        caption_by_model(&mut s, 0, tagged("a man in a blue shirt standing"));
        assert_eq!(
            s.entries[0].cell.tags,
            ["beach", "man", "blue", "shirt", "standing"]
        );
        s.edit(0, "a man holds a surfboard on sand dunes.");
        assert_eq!(
            s.entries[0].cell.tags,
            ["beach", "man", "holds", "surfboard", "sand", "dunes"]
        );
        // Undo brings the old caption back with its tags; redo the new ones.
        s.undo();
        assert_eq!(
            s.entries[0].cell.tags[1..],
            ["man", "blue", "shirt", "standing"]
        );
        s.redo();
        assert!(s.entries[0].cell.tags.contains(&"surfboard".to_string()));
        // Find and replace, and an alternative taken, retag too.
        s.replace_all("surfboard", "kite");
        assert!(s.entries[0].cell.tags.contains(&"kite".to_string()));
        assert!(!s.entries[0].cell.tags.contains(&"surfboard".to_string()));
        assert!(s.take_alternative(0, 1));
        assert_eq!(
            s.entries[0].cell.tags,
            ["beach", "man", "blue", "shirt", "standing", "too"]
        );
        // A caption without a model's tags gets none from typing.
        let (_t, mut s) = folder(&[("a.jpg", b"x"), ("a.txt", b"a dog\n")]);
        s.edit(0, "a dog on a beach");
        assert!(s.entries[0].cell.tags.is_empty());
    }

    #[test]
    fn tags_the_user_edited_stay_whatever_the_caption() {
        let (_t, mut s) = folder(&[("a.jpg", b"x")]);
        caption_by_model(&mut s, 0, tagged("a dog on grass"));
        assert_eq!(s.add_tag(&[0], " golden  retriever "), 1);
        assert_eq!(s.remove_tag(&[0], "grass"), 1);
        assert_eq!(s.entries[0].cell.tags, ["beach", "dog", "golden retriever"]);
        s.history.seal();
        s.edit(0, "a cat on a sofa");
        assert_eq!(s.entries[0].cell.tags, ["beach", "dog", "golden retriever"]);
        // Captioned again by the model: the caption is new, the user's tags stay.
        caption_by_model(&mut s, 0, tagged("a bird in a tree"));
        assert_eq!(s.entries[0].cell.caption, "a bird in a tree");
        assert_eq!(s.entries[0].cell.tags, ["beach", "dog", "golden retriever"]);
    }

    #[test]
    fn tags_of_an_older_session_file_follow_the_caption_too() {
        let (_t, mut s) = folder(&[("a.jpg", b"x")]);
        let mut old = machine("a man on a beach");
        // Before the classifier's tags were kept apart: one list.
        old.tags = vec!["seashore".into(), "man".into(), "beach".into()];
        s.entries[0].cell = old;
        s.edit(0, "a woman on sand");
        assert_eq!(s.entries[0].cell.tags, ["seashore", "woman", "sand"]);
    }

    #[test]
    fn tag_edits_move_remove_and_add_several_each_one_step() {
        let (_t, mut s) = folder(&[("a.jpg", b"x"), ("b.jpg", b"x"), ("c.jpg", b"x")]);
        assert_eq!(s.add_tag(&[0, 1, 2], "dog, park"), 3);
        assert_eq!(s.history.undo_len(), 1, "a bulk action is one step");
        assert_eq!(s.entries[2].cell.tags, ["dog", "park"]);
        assert!(s.move_tag(0, 1, 0));
        assert_eq!(s.entries[0].cell.tags, ["park", "dog"]);
        assert!(!s.move_tag(0, 5, 0));
        assert_eq!(s.remove_tag(&[0, 1], "dog"), 2);
        assert_eq!(s.history.undo_len(), 3);
        assert_eq!(s.add_tag(&[0], " , "), 0, "nothing to add");
        assert_eq!(
            s.tag_counts(),
            [("park".to_string(), 3), ("dog".to_string(), 1)]
        );
        s.undo();
        assert_eq!(s.entries[1].cell.tags, ["dog", "park"]);
        assert_eq!(s.entries[0].cell.tags, ["park", "dog"]);
    }

    #[test]
    fn every_undoable_action_restores_the_whole_cell() {
        let (_t, mut s) = folder(&[("a.jpg", b"x"), ("b.jpg", b"x"), ("b.txt", b"a dog\n")]);
        caption_by_model(&mut s, 0, tagged("a man on sand"));
        type Action = fn(&mut Session);
        let actions: [(&str, Action); 9] = [
            ("edit", |s| s.edit(0, "a man surfs")),
            ("alternative", |s| {
                s.take_alternative(0, 1);
            }),
            ("accept", |s| {
                s.accept(&[0, 1]);
            }),
            ("add tag", |s| {
                s.add_tag(&[0, 1], "sea");
            }),
            ("remove tag", |s| {
                s.remove_tag(&[0], "beach");
            }),
            ("move tag", |s| {
                s.move_tag(0, 0, 2);
            }),
            ("replace", |s| {
                s.replace_in("man", "woman", Some(&[0]));
            }),
            ("caption again", |s| {
                let rev = s.revision(1);
                let c = s.batch_result(1, rev, false, tagged("a dog runs")).unwrap();
                s.push_batch_step("caption", vec![c]);
            }),
            ("edit after accept", |s| s.edit(1, "my dog")),
        ];
        for (name, action) in actions {
            s.history.seal();
            let before: Vec<Cell> = s.entries.iter().map(|e| e.cell.clone()).collect();
            action(&mut s);
            let after: Vec<Cell> = s.entries.iter().map(|e| e.cell.clone()).collect();
            assert_ne!(before, after, "{name} changed nothing");
            s.undo();
            let undone: Vec<Cell> = s.entries.iter().map(|e| e.cell.clone()).collect();
            assert_eq!(undone, before, "undo of {name}");
            s.redo();
            let redone: Vec<Cell> = s.entries.iter().map(|e| e.cell.clone()).collect();
            assert_eq!(redone, after, "redo of {name}");
        }
    }

    #[test]
    fn take_alternative_accept_and_undo_leave_nothing_behind() {
        let (_t, mut s) = folder(&[("a.jpg", b"x")]);
        caption_by_model(&mut s, 0, tagged("a dog"));
        assert!(s.take_alternative(0, 1));
        assert_eq!(s.accept(&[0]), 1);
        assert!(s.entries[0].cell.reviewed);
        s.undo();
        assert!(!s.entries[0].cell.reviewed, "the accept is undone");
        assert_eq!(s.entries[0].cell.caption, "a dog too");
        s.undo();
        assert_eq!(s.entries[0].cell.caption, "a dog");
        assert_eq!(s.entries[0].cell.source, Source::Machine);
        assert!(!s.entries[0].cell.reviewed);
        assert_eq!(s.entries[0].cell.tags, ["beach", "dog"]);
    }

    #[test]
    fn tags_and_review_marks_survive_the_session_file() {
        let (t, mut s) = folder(&[("a.jpg", b"x"), ("a.txt", b"a dog\n"), ("b.jpg", b"x")]);
        s.add_tag(&[0], "pet");
        s.move_tag(0, 0, 0);
        s.accept(&[0]);
        let data = tempfile::tempdir().unwrap();
        let file = Session::file_for(data.path(), &s.key);
        let json = s.to_json().unwrap();
        std::fs::write(&file, &json).unwrap();
        let photos = vec![t.path().join("a.jpg"), t.path().join("b.jpg")];
        let mut again = Session::open(s.key.clone(), s.root.clone(), photos.clone());
        again.restore(&file).unwrap();
        assert_eq!(again.entries[0].cell.tags, ["pet"]);
        assert!(again.entries[0].cell.tags_edited);
        assert!(again.entries[0].cell.reviewed);
        // Older apps read the review mark from the entry: it is still written there.
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["entries"][0]["reviewed"], true);
        // A file of an older app: the mark on the entry, no tag fields in the cell.
        let old = serde_json::json!({"version": SESSION_VERSION, "key": s.key, "entries": [{
            "path": t.path().join("a.jpg"), "name": "a.jpg",
            "cell": {"caption": "a dog", "source": "Existing", "confidence": null,
                     "alternatives": []},
            "disk": {"Text": {"caption": "a dog", "extra": []}}, "failed": null,
            "stamp": null, "photo": "Present", "reviewed": true}]});
        std::fs::write(&file, serde_json::to_vec(&old).unwrap()).unwrap();
        let mut again = Session::open(s.key.clone(), s.root.clone(), photos);
        again.restore(&file).unwrap();
        assert!(again.entries[0].cell.reviewed);
        assert!(again.entries[0].cell.tags.is_empty());
    }

    #[test]
    fn vanished_and_changed_photos() {
        let (t, mut s) = folder(&[("a.jpg", b"x"), ("b.jpg", b"x")]);
        s.edit(0, "kept");
        std::fs::remove_file(t.path().join("a.jpg")).unwrap();
        std::fs::write(t.path().join("b.jpg"), b"different bytes").unwrap();
        std::fs::write(t.path().join("c.jpg"), b"x").unwrap();
        let (added, missing, changed) =
            s.rescan(vec![t.path().join("b.jpg"), t.path().join("c.jpg")]);
        assert_eq!((added, missing, changed), (1, 1, 1));
        assert_eq!(s.entries[0].photo, Photo::Missing);
        assert_eq!(s.entries[0].cell.caption, "kept", "the caption is not lost");
        assert_eq!(s.entries[1].photo, Photo::Changed);
        let r = s.save(false);
        assert_eq!(r.missing, 1);
        assert!(!t.path().join("a.txt").exists());
    }
}
