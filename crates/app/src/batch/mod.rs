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
//! The panel is [`BatchPanel`]: its persisted [`Settings`] (in `app.ron`) and its runtime
//! state. Each part lives in its own file:
//!
//! - [`session`]: the captions, their sources, undo and the session file (plain data, no egui);
//! - `settings.rs`: what persists, and the decoding options a run sends to the worker;
//! - `folder.rs`: opening a folder or loose photos, rescanning, "Recent";
//! - `run.rs`: captioning runs (the worker's events turned into captions) and their progress;
//! - `toolbar.rs`: the four toolbar rows, one function each;
//! - `grid.rs`: which photos show and in what order, and the thumbnail grid;
//! - `preview.rs`: the selected photo, its caption, attention and alternatives;
//! - `keys.rs`: the keyboard (shortcuts, review keys);
//! - `export.rs`: CSV, JSON, alt text and photo metadata;
//! - `dialogs.rs`: file dialogs (or a typed path) and the questions the panel asks;
//! - `persist.rs`: writing the session file as you work;
//! - `entry.rs`: how one photo's state reads (source badge, problems, review flag).

mod dialogs;
mod entry;
mod export;
mod folder;
mod grid;
mod keys;
pub mod lock;
mod persist;
mod preview;
mod run;
pub mod session;
mod settings;
mod toolbar;
mod watch;

use std::path::PathBuf;

use super::Shared;
use super::tasks::Pending;
use captioner::export::ExportReport;
use captioner::worker::ModelEntry;
use dialogs::Dialogs;
use folder::Listing;
use grid::GridView;
use persist::Persist;
use run::Running;
use session::{Entry, Session};

pub use dialogs::{Ask, Then};
pub use export::ExportKind;
pub use grid::{Filter, Sort};
pub use run::machine_cell;
pub use settings::Settings;

/// The Batch panel: its persisted settings and its runtime state. It persists as its
/// [`Settings`] alone (see `settings.rs`).
pub struct BatchPanel {
    /// What persists between runs.
    pub settings: Settings,
    /// "Train on this folder" was pressed: the app takes the folder to the Train panel.
    pub train_request: Option<TrainRequest>,
    /// The word whose attention map the preview keeps over the photo (clicked).
    pub attention_word: Option<usize>,

    session: Option<Session>,
    selected: Option<usize>,
    /// A folder being listed: whether it is a rescan, and the listing.
    listing: Option<(bool, Pending<Listing>)>,
    running: Option<Running>,
    /// The id of the next batch run.
    next_id: u64,
    dialogs: Dialogs,
    ask: Option<Ask>,
    export: Option<Pending<(String, ExportReport)>>,
    last_report: Option<String>,
    /// The grid's search text (name or caption).
    search: String,
    /// Find and replace in the captions.
    find: String,
    replace_with: String,
    persist: Option<Persist>,
    /// The trained models the model menu offers, once listed.
    models: Option<Vec<ModelEntry>>,
    models_pending: Option<Pending<Vec<ModelEntry>>>,
    grid: GridView,
    /// Give the caption text box the keyboard next frame (F2).
    focus_caption: bool,
    /// The user chose to close with unsaved captions.
    close_allowed: bool,
    /// The last folder was reopened (when its session file exists) at startup.
    tried_restore: bool,
    /// Photos selected together (Ctrl/Shift-click, Ctrl+A) for the bulk actions; `selected`
    /// is the one the preview shows.
    marked: std::collections::BTreeSet<usize>,
    /// Where a Shift-click range starts.
    anchor: Option<usize>,
    /// The grid shows only photos with this tag (the tag list's filter).
    tag_filter: Option<String>,
    /// The preview's "add a tag" box.
    new_tag: String,
    /// The selection row's tag box (add to or remove from the selected photos).
    bulk_tag: String,
    /// The preview's "Start with" box: words the next "Caption again" of the selected
    /// photos starts with (the toolbar's "Start with" is the folder's).
    photo_start: String,
    /// The tag chip that had the keyboard last frame (Delete, Alt+arrows act on it).
    tag_focus: Option<(usize, egui::Id)>,
    /// Give this tag chip the keyboard next frame (after a move or a removal).
    focus_tag: Option<usize>,
    /// This window's claim on the open folder's session (one window per folder).
    lock: Option<lock::FolderLock>,
    /// The folder last asked for is open in another window: what to tell the user.
    refused: Option<String>,
    /// "Watch this folder" is on: the watcher of the open folder.
    watch: Option<watch::FolderWatch>,
}

impl Default for BatchPanel {
    fn default() -> Self {
        BatchPanel::with_settings(Settings::default())
    }
}

/// The Batch panel's folder, to train on its saved captions (new model, or fine-tuning `model`).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainRequest {
    pub folder: PathBuf,
    /// The Batch panel's model, offered for fine-tuning.
    pub model: captioner::worker::ModelChoice,
}

/// Which way [`BatchPanel::step_history`] goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Undo,
    Redo,
}

impl BatchPanel {
    /// A panel with these settings and nothing open.
    pub fn with_settings(settings: Settings) -> BatchPanel {
        BatchPanel {
            settings,
            train_request: None,
            attention_word: None,
            session: None,
            selected: None,
            listing: None,
            running: None,
            next_id: 1,
            dialogs: Dialogs::default(),
            ask: None,
            export: None,
            last_report: None,
            lock: None,
            refused: None,
            search: String::new(),
            find: String::new(),
            replace_with: String::new(),
            persist: None,
            models: None,
            models_pending: None,
            grid: GridView::default(),
            focus_caption: false,
            close_allowed: false,
            tried_restore: false,
            marked: Default::default(),
            anchor: None,
            tag_filter: None,
            new_tag: String::new(),
            bulk_tag: String::new(),
            photo_start: String::new(),
            tag_focus: None,
            focus_tag: None,
            watch: None,
        }
    }

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
            self.grid.scroll_to_selected = true;
        }
    }

    /// The photos selected together (Ctrl/Shift-click, Ctrl+A), in folder order.
    pub fn marked(&self) -> Vec<usize> {
        self.marked.iter().copied().collect()
    }

    /// What the bulk actions act on: the photos selected together, else the selected one.
    pub fn targets(&self) -> Vec<usize> {
        if self.marked.is_empty() {
            self.selected.into_iter().collect()
        } else {
            self.marked()
        }
    }

    /// A click on photo `index` of the grid: Ctrl (Cmd) toggles it in the selection, Shift
    /// selects the range from the last clicked photo in grid order, a plain click selects it
    /// alone.
    pub fn click_photo(&mut self, index: usize, modifiers: egui::Modifiers) {
        if index >= self.entries().len() {
            return;
        }
        if modifiers.shift {
            let shown = self.shown();
            let from = self.anchor.or(self.selected).unwrap_or(index);
            if let (Some(a), Some(b)) = (
                shown.iter().position(|&k| k == from),
                shown.iter().position(|&k| k == index),
            ) {
                if !modifiers.command {
                    self.marked.clear();
                }
                self.marked.extend(&shown[a.min(b)..=a.max(b)]);
            }
        } else if modifiers.command {
            if self.marked.is_empty()
                && let Some(current) = self.selected
                && current != index
            {
                self.marked.insert(current);
            }
            if !self.marked.remove(&index) {
                self.marked.insert(index);
            }
            self.anchor = Some(index);
        } else {
            self.marked.clear();
            self.anchor = Some(index);
        }
        self.select(index);
    }

    /// Selects every photo the grid shows (Ctrl+A).
    pub fn select_all_shown(&mut self) {
        self.marked = self.shown().into_iter().collect();
    }

    /// Clears the selection of several photos (Escape).
    pub fn clear_marked(&mut self) {
        self.marked.clear();
    }

    /// The tag the grid is filtered by, if any.
    pub fn tag_filter(&self) -> Option<&str> {
        self.tag_filter.as_deref()
    }

    /// Filters the grid to photos with `tag`; the same tag again (or `None`) clears it.
    pub fn toggle_tag_filter(&mut self, tag: Option<&str>) {
        self.tag_filter = match tag {
            Some(t) if self.tag_filter.as_deref() != Some(t) => Some(t.to_string()),
            _ => None,
        };
        self.grid.scroll_top = true;
    }

    /// Accepts the selected photos' captions as one undo step.
    pub fn accept_marked(&mut self, shared: &mut Shared) {
        let targets = self.targets();
        if let Some(s) = &mut self.session {
            let n = s.accept(&targets);
            shared
                .status
                .info(format!("accepted {}", plural(n, "caption", "captions")));
        }
    }

    /// Adds `tag` to the selected photos (one undo step).
    pub fn add_tag_to_marked(&mut self, tag: &str, shared: &mut Shared) {
        let targets = self.targets();
        if let Some(s) = &mut self.session {
            let n = s.add_tag(&targets, tag);
            shared
                .status
                .info(format!("tag added to {}", plural(n, "photo", "photos")));
        }
    }

    /// Removes `tag` from the selected photos (one undo step).
    pub fn remove_tag_from_marked(&mut self, tag: &str, shared: &mut Shared) {
        let targets = self.targets();
        if let Some(s) = &mut self.session {
            let n = s.remove_tag(&targets, tag);
            shared
                .status
                .info(format!("tag removed from {}", plural(n, "photo", "photos")));
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// How far the grid is scrolled down, in points (as of the last frame).
    pub fn grid_scroll(&self) -> f32 {
        self.grid.offset
    }

    pub fn is_listing(&self) -> bool {
        self.listing.is_some()
    }

    pub fn is_exporting(&self) -> bool {
        self.export.is_some()
    }

    /// The last save or export's outcome, in words.
    /// Why the folder last asked for was not opened (it is open in another window).
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

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

    /// Replaces a caption as if typed by hand.
    pub fn edit_caption(&mut self, index: usize, caption: &str) {
        if let Some(s) = &mut self.session {
            s.edit(index, caption);
        }
    }

    pub fn undo(&mut self, shared: &mut Shared) {
        self.step_history(Direction::Undo, shared);
    }

    pub fn redo(&mut self, shared: &mut Shared) {
        self.step_history(Direction::Redo, shared);
    }

    /// Undoes or redoes one step, selects the first photo it touched and says what it was.
    fn step_history(&mut self, direction: Direction, shared: &mut Shared) {
        let Some(s) = &mut self.session else { return };
        let (label, touched, done, nothing) = match direction {
            Direction::Undo => {
                let label = s.history.next_undo().map(str::to_string);
                (label, s.undo(), "undone", "nothing to undo")
            }
            Direction::Redo => {
                let label = s.history.next_redo().map(str::to_string);
                (label, s.redo(), "redone", "nothing to redo")
            }
        };
        match touched {
            Some(touched) => {
                if let Some(&first) = touched.first() {
                    self.select(first);
                }
                shared
                    .status
                    .info(format!("{done}: {}", label.unwrap_or_default()));
            }
            None => shared.status.info(nothing),
        }
    }

    /// Writes the changed captions to their sidecars (asks first about sidecars that changed
    /// on disk or are not UTF-8 text).
    pub fn save(&mut self, shared: &mut Shared) {
        let Some(s) = &self.session else { return };
        let conflicts: Vec<String> = s
            .conflicts()
            .into_iter()
            .filter_map(|i| s.entries.get(i))
            .map(|e| {
                captioner::files::shown(&captioner::sidecar::sidecar_path(std::path::Path::new(
                    &e.name,
                )))
            })
            .collect();
        if !conflicts.is_empty() {
            self.ask = Some(Ask::Conflicts(conflicts));
            return;
        }
        self.save_now(false, shared);
    }

    /// Writes the changed captions; sidecars in conflict only with `overwrite_conflicts`.
    pub fn save_now(&mut self, overwrite_conflicts: bool, shared: &mut Shared) {
        self.ask = None;
        let Some(s) = &mut self.session else { return };
        // Temporary files a killed save left beside the sidecars about to be written.
        let removed = folder::remove_leftover_temporaries(
            None,
            s.entries
                .iter()
                .filter(|e| e.is_dirty())
                .map(|e| e.path.as_path()),
        );
        let report = s.save(overwrite_conflicts);
        s.touch();
        let text = report.describe();
        if report.failed.is_empty() && report.conflicts.is_empty() && report.shared.is_empty() {
            shared.status.info(&text);
        } else {
            shared.status.error(&text);
        }
        self.last_report = Some(text);
        folder::report_removed_temporaries(&removed, shared);
        self.persist_now(shared);
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

    /// Marks the selected caption as reviewed (one undo step) and moves to the next photo.
    pub fn accept_and_next(&mut self) {
        if let (Some(i), Some(s)) = (self.selected, &mut self.session) {
            s.accept(&[i]);
        }
        self.move_selection(1);
    }

    /// Takes finished background work: folder listing, dialogs, exports, the session file.
    pub fn poll(&mut self, shared: &mut Shared) {
        self.restore_last_folder(shared);
        self.poll_listing(shared);
        self.poll_watch(shared);
        self.poll_dialog(shared);
        self.poll_export(shared);
        match super::tasks::take_ready(&mut self.models_pending) {
            Some(Ok(models)) => self.models = Some(models),
            Some(Err(e)) => shared.status.error(e),
            None => {}
        }
        self.persist_debounced(shared);
    }

    /// Lists the trained models for the model menu, once.
    fn list_models(&mut self, shared: &mut Shared) {
        if self.models.is_some() || self.models_pending.is_some() {
            return;
        }
        let dir = shared.paths.models_dir.clone();
        match Pending::spawn(&shared.ctx, "list-models", move || {
            captioner::jobs::models::list_models(&dir)
        }) {
            Ok(p) => self.models_pending = Some(p),
            Err(e) => shared.status.error(e),
        }
    }

    pub fn panel_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        self.list_models(shared);
        self.review_keys(ui.ctx());
        self.toolbar_ui(ui, shared);
        self.progress_ui(ui);
        if let Some(text) = &self.refused {
            ui.colored_label(ui.visuals().warn_fg_color, text.as_str());
        }
        if let Some(e) = self.session_save_failure() {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "The batch session is not saved (captions are kept while the app runs).",
            )
            .on_hover_text(e);
        }
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
}

/// "1 photo", "3 photos".
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
