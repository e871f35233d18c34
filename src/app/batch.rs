//! The Batch panel: a folder of photos as a thumbnail grid (only the visible rows are built, so
//! 10,000 photos scroll smoothly), captioned all at once on the worker with a progress bar, ETA
//! and Cancel; any caption can be edited in place; the result is exported as `.txt` sidecars
//! (existing ones are overwritten only when the user says so), CSV or JSON.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Shared;
use super::dataset::thumbnail_ui;
use super::status::clock;
use super::tasks::{self, Dialog, Pending};
use crate::export::{self, ExportReport, ExportRow};
use crate::worker::{CancelToken, Command, Event};

/// One photo of the batch.
#[derive(Clone, Debug)]
pub struct Item {
    pub path: PathBuf,
    /// Path relative to the batch folder (or the file name).
    pub name: String,
    pub caption: String,
    pub state: ItemState,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ItemState {
    /// Not captioned yet.
    Waiting,
    /// Captioned by the model; `confidence` is the mean word probability.
    Captioned { confidence: f32 },
    /// Edited by hand.
    Edited,
    /// The image could not be captioned; the batch went on without it.
    Failed(String),
}

/// A folder and the images found in it, or why it could not be listed.
type Listing = Result<(PathBuf, Vec<PathBuf>), String>;

/// A batch run in progress.
struct Running {
    id: u64,
    /// Item index of each path sent.
    items: Vec<usize>,
    cancel: CancelToken,
    started: Instant,
    done: usize,
    failed: usize,
    eta: Option<Duration>,
}

/// A file export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    Csv,
    Json,
}

enum DialogFor {
    Folder,
    Export(ExportKind),
}

#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct BatchPanel {
    /// The batch folder, as typed or last chosen.
    pub folder: String,
    /// Beam width (1 = greedy).
    pub beam: usize,
    /// Thumbnail side in points.
    pub thumb_side: f32,

    #[serde(skip)]
    items: Vec<Item>,
    #[serde(skip)]
    root: Option<PathBuf>,
    #[serde(skip)]
    listing: Option<Pending<Listing>>,
    #[serde(skip)]
    running: Option<Running>,
    #[serde(skip)]
    next_id: u64,
    #[serde(skip)]
    dialog: Option<(DialogFor, Pending<Option<PathBuf>>)>,
    #[serde(skip)]
    sidecar_check: Option<Pending<usize>>,
    /// Existing sidecars found: the user is asked whether to skip or overwrite them.
    #[serde(skip)]
    ask_overwrite: Option<usize>,
    #[serde(skip)]
    export: Option<Pending<(String, ExportReport)>>,
    #[serde(skip)]
    last_report: Option<String>,
    #[serde(skip)]
    filter_failed: bool,
}

impl Default for BatchPanel {
    fn default() -> Self {
        BatchPanel {
            folder: String::new(),
            beam: 3,
            thumb_side: 136.0,
            items: Vec::new(),
            root: None,
            listing: None,
            running: None,
            next_id: 1,
            dialog: None,
            sidecar_check: None,
            ask_overwrite: None,
            export: None,
            last_report: None,
            filter_failed: false,
        }
    }
}

impl BatchPanel {
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    pub fn is_listing(&self) -> bool {
        self.listing.is_some()
    }

    pub fn is_exporting(&self) -> bool {
        self.export.is_some() || self.sidecar_check.is_some()
    }

    /// The last export's outcome, in words.
    pub fn last_report(&self) -> Option<&str> {
        self.last_report.as_deref()
    }

    /// Whether the user is being asked about existing sidecars.
    pub fn asking_overwrite(&self) -> Option<usize> {
        self.ask_overwrite
    }

    /// Replaces a caption as if typed by hand.
    pub fn edit_caption(&mut self, index: usize, caption: &str) {
        if let Some(item) = self.items.get_mut(index) {
            item.caption = caption.to_string();
            item.state = ItemState::Edited;
        }
    }

    /// Lists the images in `dir` (on a background thread) and shows them.
    pub fn open_folder(&mut self, dir: PathBuf, shared: &mut Shared) {
        self.cancel();
        self.folder = dir.display().to_string();
        match Pending::spawn(&shared.ctx, "list-folder", move || {
            crate::jobs::caption::list_photos(&dir)
                .map(|(files, _)| (dir, files))
                .map_err(|e| e.report())
        }) {
            Ok(p) => self.listing = Some(p),
            Err(e) => shared.status.error(e),
        }
    }

    /// Shows these image files as the batch.
    pub fn open_files(&mut self, files: Vec<PathBuf>, shared: &mut Shared) {
        self.cancel();
        self.root = None;
        self.set_items(None, files);
        shared
            .status
            .info(format!("{} images ready to caption", self.items.len()));
    }

    fn set_items(&mut self, root: Option<&Path>, files: Vec<PathBuf>) {
        self.items = files
            .into_iter()
            .map(|path| {
                let name = root
                    .and_then(|r| path.strip_prefix(r).ok())
                    .map(|p| p.to_string_lossy().into_owned())
                    .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| path.display().to_string());
                Item {
                    path,
                    name,
                    caption: String::new(),
                    state: ItemState::Waiting,
                }
            })
            .collect();
        self.root = root.map(Path::to_path_buf);
        self.last_report = None;
    }

    /// Captions the items not captioned yet (all of them with `all`).
    pub fn caption_all(&mut self, all: bool, shared: &mut Shared) {
        if self.running.is_some() {
            return;
        }
        let todo: Vec<usize> = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, it)| all || matches!(it.state, ItemState::Waiting | ItemState::Failed(_)))
            .map(|(i, _)| i)
            .collect();
        if todo.is_empty() {
            shared.status.info("nothing left to caption");
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let cancel = CancelToken::new();
        let paths = todo.iter().map(|&i| self.items[i].path.clone()).collect();
        if shared.send(Command::CaptionBatch {
            id,
            paths,
            beam: self.beam.max(1),
            cancel: cancel.clone(),
        }) {
            self.running = Some(Running {
                id,
                items: todo,
                cancel,
                started: Instant::now(),
                done: 0,
                failed: 0,
                eta: None,
            });
        }
    }

    /// Stops the batch run after the image being captioned.
    pub fn cancel(&mut self) {
        if let Some(r) = &self.running {
            r.cancel.cancel();
        }
    }

    /// Takes finished background work: folder listing, dialogs, exports.
    pub fn poll(&mut self, shared: &mut Shared) {
        match tasks::take_ready(&mut self.listing) {
            Some(Ok(Ok((dir, files)))) => {
                let n = files.len();
                self.set_items(Some(&dir), files);
                if n == 0 {
                    shared
                        .status
                        .warn(format!("{}: no image files found", dir.display()));
                } else {
                    shared
                        .status
                        .info(format!("{}: {n} images ready to caption", dir.display()));
                }
            }
            Some(Ok(Err(e))) | Some(Err(e)) => shared.status.error(e),
            None => {}
        }
        if let Some((purpose, pending)) = &self.dialog {
            let answer = match pending.poll() {
                tasks::Poll::Waiting => None,
                tasks::Poll::Ready(a) => Some(a),
                tasks::Poll::Lost => Some(None),
            };
            if let Some(answer) = answer {
                let purpose = match purpose {
                    DialogFor::Folder => None,
                    DialogFor::Export(k) => Some(*k),
                };
                self.dialog = None;
                if let Some(path) = answer {
                    match purpose {
                        None => self.open_folder(path, shared),
                        Some(kind) => self.export_to_file(kind, path, shared),
                    }
                }
            }
        }
        match tasks::take_ready(&mut self.sidecar_check) {
            Some(Ok(0)) => self.export_sidecars(false, shared),
            Some(Ok(n)) => self.ask_overwrite = Some(n),
            Some(Err(e)) => shared.status.error(e),
            None => {}
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
    }

    pub fn on_event(&mut self, event: Event, shared: &mut Shared) {
        match event {
            Event::BatchItem { id, index, result } => {
                let Some(run) = self.running.as_mut().filter(|r| r.id == id) else {
                    return;
                };
                run.done += 1;
                run.eta = crate::jobs::eta(run.started, run.done, run.items.len());
                let Some(item) = run.items.get(index).and_then(|&i| self.items.get_mut(i)) else {
                    return;
                };
                match result {
                    Ok(output) => {
                        item.caption = output.text.clone();
                        item.state = ItemState::Captioned {
                            confidence: output.word_probability_geomean(),
                        };
                    }
                    Err(error) => {
                        run.failed += 1;
                        item.state = ItemState::Failed(error.report());
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
                if self.running.as_ref().is_some_and(|r| r.id == id) {
                    self.running = None;
                }
                let mut text = format!("batch: {done} captioned in {seconds:.1} s");
                if failed > 0 {
                    text.push_str(&format!(", {failed} could not be read (marked in red)"));
                }
                if stopped {
                    text.push_str(", cancelled");
                }
                if failed > 0 {
                    shared.status.warn(text);
                } else {
                    shared.status.info(text);
                }
            }
            Event::Failed { error, .. } => {
                self.running = None;
                shared
                    .status
                    .error(format!("batch captioning failed: {}", error.report()));
            }
            _ => {}
        }
    }

    fn export_rows(&self) -> Vec<ExportRow> {
        self.items
            .iter()
            .filter(|it| !it.caption.trim().is_empty())
            .map(|it| ExportRow {
                image: it.name.clone(),
                path: it.path.clone(),
                caption: it.caption.trim().to_string(),
                confidence: match it.state {
                    ItemState::Captioned { confidence } => Some(confidence),
                    _ => None,
                },
                edited: it.state == ItemState::Edited,
            })
            .collect()
    }

    /// Starts a sidecar export: first counts the sidecars that already exist, and asks
    /// whether to overwrite them when there are any.
    pub fn start_sidecar_export(&mut self, shared: &mut Shared) {
        let paths: Vec<PathBuf> = self.export_rows().into_iter().map(|r| r.path).collect();
        if paths.is_empty() {
            shared.status.warn("no captions to export yet");
            return;
        }
        match Pending::spawn(&shared.ctx, "check-sidecars", move || {
            export::count_existing_sidecars(&paths)
        }) {
            Ok(p) => self.sidecar_check = Some(p),
            Err(e) => shared.status.error(e),
        }
    }

    /// Writes the sidecars; existing ones only with `overwrite`.
    pub fn export_sidecars(&mut self, overwrite: bool, shared: &mut Shared) {
        self.ask_overwrite = None;
        let rows = self.export_rows();
        match Pending::spawn(&shared.ctx, "export-sidecars", move || {
            (
                ".txt sidecars".to_string(),
                export::write_sidecars(&rows, overwrite),
            )
        }) {
            Ok(p) => self.export = Some(p),
            Err(e) => shared.status.error(e),
        }
    }

    /// Writes the CSV or JSON file to `path` (atomically).
    pub fn export_to_file(&mut self, kind: ExportKind, path: PathBuf, shared: &mut Shared) {
        let rows = self.export_rows();
        match Pending::spawn(&shared.ctx, "export-file", move || {
            let bytes = match kind {
                ExportKind::Csv => export::to_csv(&rows),
                ExportKind::Json => export::to_json(&rows),
            };
            let what = path.display().to_string();
            let report = match bytes {
                Ok(b) => export::write_file(&path, &b, rows.len()),
                Err(e) => ExportReport {
                    failed: vec![e],
                    ..ExportReport::default()
                },
            };
            (what, report)
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

    fn open_dialog(&mut self, purpose: DialogFor, shared: &mut Shared) {
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
        };
        let start = self
            .root
            .clone()
            .or_else(|| Some(PathBuf::from(&self.folder)));
        match tasks::open_dialog(&shared.ctx, dialog, start.as_deref()) {
            Ok(p) => self.dialog = Some((purpose, p)),
            Err(e) => shared.status.error(e),
        }
    }

    pub fn panel_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        self.toolbar_ui(ui, shared);
        self.progress_ui(ui);
        ui.separator();
        self.overwrite_question_ui(ui, shared);
        if self.items.is_empty() {
            if self.listing.is_some() {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Listing images…");
                });
            } else {
                ui.weak(
                    "Choose a folder of photos, or drop one (or several photos) on the window.",
                );
            }
            return;
        }
        self.grid_ui(ui, shared);
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let busy = self.running.is_some();
        ui.horizontal(|ui| {
            let label = ui.label("Folder");
            let edit = ui
                .add_enabled(
                    !busy,
                    egui::TextEdit::singleline(&mut self.folder)
                        .hint_text("a folder of photos")
                        .desired_width((ui.available_width() - 200.0).max(120.0)),
                )
                .labelled_by(label.id);
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui
                .add_enabled(!busy && self.dialog.is_none(), egui::Button::new("Browse…"))
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
        });
        ui.horizontal(|ui| {
            let has_items = !self.items.is_empty();
            let label = ui.label("Beam");
            ui.add_enabled(!busy, egui::DragValue::new(&mut self.beam).range(1..=10))
                .labelled_by(label.id)
                .on_hover_text("1 = greedy decoding; more = beam search (slower, often better)");
            if busy {
                if ui.button("Cancel").clicked() {
                    self.cancel();
                }
            } else {
                let waiting = self
                    .items
                    .iter()
                    .filter(|i| matches!(i.state, ItemState::Waiting | ItemState::Failed(_)))
                    .count();
                if ui
                    .add_enabled(
                        waiting > 0,
                        egui::Button::new(format!("Caption {waiting} remaining")),
                    )
                    .clicked()
                {
                    self.caption_all(false, shared);
                }
                if ui
                    .add_enabled(has_items, egui::Button::new("Caption all again"))
                    .on_hover_text("replaces every caption, edited ones included")
                    .clicked()
                {
                    self.caption_all(true, shared);
                }
            }
            ui.separator();
            let can_export = !busy && self.export.is_none() && self.sidecar_check.is_none();
            let has_captions = self.items.iter().any(|i| !i.caption.trim().is_empty());
            ui.add_enabled_ui(can_export && has_captions, |ui| {
                if ui
                    .button("Export .txt sidecars")
                    .on_hover_text("writes <image>.txt next to each photo; asks before overwriting")
                    .clicked()
                {
                    self.start_sidecar_export(shared);
                }
                if ui.button("Export CSV…").clicked() {
                    self.open_dialog(DialogFor::Export(ExportKind::Csv), shared);
                }
                if ui.button("Export JSON…").clicked() {
                    self.open_dialog(DialogFor::Export(ExportKind::Json), shared);
                }
            });
            if self.export.is_some() || self.sidecar_check.is_some() {
                ui.spinner();
            }
            ui.separator();
            ui.checkbox(&mut self.filter_failed, "Only failed");
            ui.add(egui::Slider::new(&mut self.thumb_side, 72.0..=256.0).text("size"));
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

    fn overwrite_question_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let Some(existing) = self.ask_overwrite else {
            return;
        };
        let modal = egui::Modal::new(egui::Id::unique("overwrite_sidecars")).show(ui.ctx(), |ui| {
            ui.set_width(420.0);
            ui.heading("Some captions files exist");
            ui.label(format!(
                "{existing} of these photos already have a .txt file next to them. \
                 Overwrite them, or leave them as they are and write only the others?"
            ));
            ui.add_space(8.0);
            let mut choice = None;
            ui.horizontal(|ui| {
                if ui.button("Skip existing").clicked() {
                    choice = Some(false);
                }
                if ui.button("Overwrite existing").clicked() {
                    choice = Some(true);
                }
                if ui.button("Cancel").clicked() {
                    self.ask_overwrite = None;
                }
            });
            choice
        });
        if modal.should_close() {
            self.ask_overwrite = None;
        }
        if let Some(overwrite) = modal.inner {
            self.export_sidecars(overwrite, shared);
        }
    }

    fn grid_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let shown: Vec<usize> = if self.filter_failed {
            self.items
                .iter()
                .enumerate()
                .filter(|(_, it)| matches!(it.state, ItemState::Failed(_)))
                .map(|(i, _)| i)
                .collect()
        } else {
            Vec::new()
        };
        let count = if self.filter_failed {
            shown.len()
        } else {
            self.items.len()
        };
        let side = self.thumb_side;
        let cell_width = side + 64.0;
        let text_height = ui.text_style_height(&egui::TextStyle::Body);
        let row_height = side + text_height * 4.0 + 16.0;
        let spacing = ui.spacing().item_spacing.x;
        let columns =
            (((ui.available_width() + spacing) / (cell_width + spacing)).floor() as usize).max(1);
        let rows = count.div_ceil(columns);
        let editing_locked = self.running.is_some();
        egui::ScrollArea::vertical()
            .id_salt("batch_grid")
            .auto_shrink(false)
            .show_rows(ui, row_height, rows, |ui, row_range| {
                for row in row_range {
                    ui.horizontal(|ui| {
                        for col in 0..columns {
                            let k = row * columns + col;
                            if k >= count {
                                break;
                            }
                            let index = if self.filter_failed { shown[k] } else { k };
                            let Some(item) = self.items.get_mut(index) else {
                                break;
                            };
                            ui.allocate_ui_with_layout(
                                egui::vec2(cell_width, row_height),
                                egui::Layout::top_down(egui::Align::Center),
                                |ui| {
                                    ui.set_min_size(egui::vec2(cell_width, row_height));
                                    ui.set_max_width(cell_width);
                                    cell_ui(ui, shared, item, side, editing_locked);
                                },
                            );
                        }
                    });
                }
            });
    }
}

fn cell_ui(ui: &mut egui::Ui, shared: &mut Shared, item: &mut Item, side: f32, locked: bool) {
    thumbnail_ui(ui, shared, &item.path, side);
    let (badge, color) = match &item.state {
        ItemState::Waiting => (String::new(), ui.visuals().weak_text_color()),
        ItemState::Captioned { confidence } => (
            format!("{:.0}%", confidence * 100.0),
            confidence_color(*confidence),
        ),
        ItemState::Edited => ("edited".to_string(), ui.visuals().weak_text_color()),
        ItemState::Failed(_) => ("failed".to_string(), ui.visuals().error_fg_color),
    };
    ui.horizontal(|ui| {
        ui.add(egui::Label::new(egui::RichText::new(&item.name).small()).truncate())
            .on_hover_text(item.path.display().to_string());
        if !badge.is_empty() {
            let r = ui.label(egui::RichText::new(badge).small().color(color));
            if matches!(item.state, ItemState::Captioned { .. }) {
                r.on_hover_text("the model's mean word probability for this caption");
            }
        }
    });
    if let ItemState::Failed(message) = &item.state {
        ui.add(
            egui::Label::new(
                egui::RichText::new(message)
                    .small()
                    .color(ui.visuals().error_fg_color),
            )
            .truncate(),
        )
        .on_hover_text(message.as_str());
    }
    let response = ui.add_enabled(
        !locked,
        egui::TextEdit::multiline(&mut item.caption)
            .desired_rows(2)
            .desired_width(f32::INFINITY)
            .hint_text("caption"),
    );
    if response.changed() {
        item.state = ItemState::Edited;
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
