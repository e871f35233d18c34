//! The Dataset panel: choose a folder (dialog, typed path, or dropped on the window), import
//! it on the worker, and show the summary, the problems found (file:line), a caption-length
//! histogram, and every image with its reference captions.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Shared;
use super::status::count;
use super::tasks::{self, Dialog, Pending};
use super::widgets::thumbnail_ui;
use captioner::dataset::{Cleaning, Dataset, ImportOptions, Split, Summary};
use captioner::worker::{Command, Event};

/// Height of one row of the image list.
const ROW_HEIGHT: f32 = 96.0;

#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct DatasetPanel {
    /// The dataset folder, as typed or last chosen.
    pub folder: String,
    pub cleaning: Cleaning,
    pub min_count: usize,
    pub check_images: bool,

    #[serde(skip)]
    busy: bool,
    #[serde(skip)]
    loaded: Option<Loaded>,
    #[serde(skip)]
    error: Option<String>,
    #[serde(skip)]
    dialog: Option<Pending<Option<PathBuf>>>,
    #[serde(skip)]
    filter: Filter,
    /// Indices into the dataset's images that pass the filter.
    #[serde(skip)]
    view: Vec<usize>,
    #[serde(skip)]
    view_of: Option<Filter>,
    /// Whether file dialogs can open here (found out when first needed; tests set it).
    #[serde(skip)]
    dialog_service: Option<Result<(), String>>,
    /// Why "Browse…" asked for a typed path instead (no file-dialog service).
    #[serde(skip)]
    typed_path_reason: Option<String>,
    /// Move the keyboard focus to the Folder box (after "Browse…" found no dialog).
    #[serde(skip)]
    focus_folder: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Filter {
    text: String,
    split: Option<Split>,
}

/// An imported dataset and its summary.
pub struct Loaded {
    pub dataset: Arc<Dataset>,
    pub summary: Summary,
    pub seconds: f64,
}

impl Default for DatasetPanel {
    fn default() -> Self {
        let defaults = ImportOptions::default();
        DatasetPanel {
            folder: String::new(),
            cleaning: defaults.cleaning,
            min_count: defaults.min_count,
            check_images: defaults.check_images,
            busy: false,
            loaded: None,
            error: None,
            dialog: None,
            filter: Filter::default(),
            view: Vec::new(),
            view_of: None,
            dialog_service: None,
            typed_path_reason: None,
            focus_folder: false,
        }
    }
}

impl DatasetPanel {
    /// The imported dataset, if any.
    pub fn loaded(&self) -> Option<&Loaded> {
        self.loaded.as_ref()
    }

    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Pretends no file-dialog service exists (tests), or restores detection with `None`.
    pub fn set_dialog_service(&mut self, service: Option<Result<(), String>>) {
        self.dialog_service = service;
    }

    /// Why "Browse…" asked for a typed path instead of opening a dialog, when it did.
    pub fn typed_path_reason(&self) -> Option<&str> {
        self.typed_path_reason.as_deref()
    }

    /// "Browse…": a folder dialog, or, where no file-dialog service exists, the Folder box
    /// focused for a typed path, with the reason shown.
    pub fn browse(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let service = self
            .dialog_service
            .get_or_insert_with(tasks::dialog_service)
            .clone();
        if let Err(why) = service {
            shared
                .status
                .warn(format!("{why}; type the dataset folder's path instead"));
            self.typed_path_reason = Some(why);
            self.focus_folder = true;
            return;
        }
        let start = PathBuf::from(&self.folder);
        match tasks::open_dialog(ctx, Dialog::PickFolder, Some(&start)) {
            Ok(p) => self.dialog = Some(p),
            Err(e) => shared.status.error(e),
        }
    }

    /// The last import error, if the last import failed.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub fn import_options(&self) -> ImportOptions {
        ImportOptions {
            cleaning: self.cleaning,
            min_count: self.min_count.max(1),
            check_images: self.check_images,
            ..ImportOptions::default()
        }
    }

    /// Starts importing `dir` on the worker.
    pub fn import(&mut self, dir: PathBuf, shared: &mut Shared) {
        self.folder = dir.display().to_string();
        self.typed_path_reason = None;
        let options = self.import_options();
        if shared.send(Command::ImportDataset { dir, options }) {
            self.busy = true;
            self.error = None;
        }
    }

    /// Takes the folder dialog's answer.
    pub fn poll(&mut self, shared: &mut Shared) {
        match tasks::take_ready(&mut self.dialog) {
            Some(Ok(Some(dir))) => self.import(dir, shared),
            Some(Ok(None)) => {}
            Some(Err(e)) => shared.status.error(e),
            None => {}
        }
    }

    pub fn on_event(&mut self, event: Event, shared: &mut Shared) {
        match event {
            Event::DatasetImported {
                dataset,
                summary,
                seconds,
            } => {
                self.busy = false;
                self.error = None;
                shared.status.info(format!(
                    "imported {}: {}, {}, {} ({seconds:.1} s)",
                    summary.root.display(),
                    count(summary.images, "image"),
                    count(summary.captions, "caption"),
                    count(summary.problems.len(), "problem"),
                ));
                self.loaded = Some(Loaded {
                    dataset,
                    summary: *summary,
                    seconds,
                });
                self.view_of = None;
            }
            Event::Failed { error, .. } => {
                let message = error.report();
                self.busy = false;
                shared.status.error(format!("import failed: {message}"));
                self.error = Some(message);
            }
            Event::Progress { message, .. } if !message.is_empty() => {
                shared.status.info(message);
            }
            _ => {}
        }
    }

    pub fn panel_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        self.folder_ui(ui, shared);
        ui.separator();
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        if self.loaded.is_none() {
            if !self.busy {
                ui.weak(
                    "Choose a dataset folder, or drop one on the window. Recognised layouts: \
                     Flickr8k as distributed, Kaggle (Images/ + captions.txt), COCO captions, \
                     and image folders with .txt sidecar captions.",
                );
            }
            return;
        }
        // The summary takes at most 40% of a narrow window, so that the image list beside it
        // keeps room for its controls (at 800 px wide, 320 px and the rest).
        let summary_width = (ui.available_width() * 0.4).clamp(240.0, 380.0);
        let most = (ui.available_width() * 0.6).max(240.0);
        egui::Panel::left("dataset_summary")
            .resizable(true)
            .default_size(summary_width)
            .min_size(220.0)
            .max_size(most)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.summary_ui(ui));
            });
        egui::CentralPanel::no_frame().show(ui, |ui| self.images_ui(ui, shared));
    }

    fn folder_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.horizontal(|ui| {
            let label = ui.label("Folder");
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut self.folder)
                        .hint_text("path to a dataset folder")
                        .desired_width(ui.available_width() - 220.0),
                )
                .labelled_by(label.id);
            if std::mem::take(&mut self.focus_folder) {
                edit.request_focus();
            }
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui
                .add_enabled(self.dialog.is_none(), egui::Button::new("Browse…"))
                .on_hover_text("Choose the folder in a file dialog (or type its path in the box)")
                .clicked()
            {
                self.browse(&ui.ctx().clone(), shared);
            }
            let can_import = !self.busy && !self.folder.trim().is_empty();
            if ui
                .add_enabled(can_import, egui::Button::new("Import"))
                .clicked()
                || (enter && can_import)
            {
                let dir = PathBuf::from(self.folder.trim());
                self.import(dir, shared);
            }
            if self.busy {
                ui.spinner();
            }
        });
        if let Some(why) = &self.typed_path_reason {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "{why}. Type the dataset folder's path in the Folder box and press Enter or \
                     Import (or drop the folder on the window)."
                ),
            );
        }
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Cleaning");
            egui::ComboBox::from_id_salt("cleaning")
                .selected_text(self.cleaning.name())
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.cleaning, Cleaning::Natural, "natural")
                        .on_hover_text("lowercase, no punctuation or digits; keeps \"a\"");
                    ui.selectable_value(&mut self.cleaning, Cleaning::Tutorial, "tutorial")
                        .on_hover_text("as the tutorial: also drops one-letter words");
                })
                .response
                .labelled_by(label.id);
            let label = ui.label("Min word count");
            ui.add(egui::DragValue::new(&mut self.min_count).range(1..=100))
                .labelled_by(label.id);
            ui.checkbox(&mut self.check_images, "Check image files");
        });
    }

    fn summary_ui(&mut self, ui: &mut egui::Ui) {
        let Some(loaded) = &self.loaded else { return };
        let s = &loaded.summary;
        ui.heading("Summary");
        // Long values (a folder, a layout) wrap inside the column instead of widening it past
        // the window's edge.
        let value_width = (ui.available_width() - 150.0).max(80.0);
        egui::Grid::new("dataset_summary_grid")
            .num_columns(2)
            .striped(true)
            .max_col_width(value_width)
            .show(ui, |ui| {
                let mut row = |k: &str, v: String| {
                    ui.label(k);
                    ui.add(egui::Label::new(v).wrap());
                    ui.end_row();
                };
                row("Folder", s.root.display().to_string());
                row("Layout", s.layout.to_string());
                row("Images", s.images.to_string());
                row("Captions", s.captions.to_string());
                row(
                    "Splits",
                    format!(
                        "train {} · dev {} · test {}{} ({})",
                        s.splits.train,
                        s.splits.dev,
                        s.splits.test,
                        if s.splits.unassigned > 0 {
                            format!(" · none {}", s.splits.unassigned)
                        } else {
                            String::new()
                        },
                        match s.splits.source {
                            captioner::dataset::SplitSource::Files => "from split files",
                            captioner::dataset::SplitSource::Hash => "by name hash",
                        }
                    ),
                );
                row(
                    "Vocabulary",
                    format!(
                        "{} words (min count {}, {} cleaning)",
                        s.vocab_size, s.min_count, s.cleaning
                    ),
                );
                row(
                    "Caption length",
                    format!(
                        "mean {:.1} · p95 {} · max {} words",
                        s.caption_length.mean, s.caption_length.p95, s.caption_length.max
                    ),
                );
                row("Missing images", s.missing_images.to_string());
                row("Unreadable images", s.unreadable_images.to_string());
                row("Uncaptioned images", s.uncaptioned_images.to_string());
                row("Import time", format!("{:.2} s", loaded.seconds));
            });
        ui.add_space(8.0);
        ui.heading("Caption lengths");
        length_histogram_ui(ui, &s.caption_length.histogram);
        ui.add_space(8.0);
        ui.heading(format!("Problems ({})", s.problems.len()));
        if s.problems.is_empty() {
            ui.weak("None.");
        } else {
            let text_height = ui.text_style_height(&egui::TextStyle::Body);
            egui::ScrollArea::vertical()
                .id_salt("problems")
                .max_height(240.0)
                .show_rows(ui, text_height, s.problems.len(), |ui, range| {
                    for p in &s.problems[range] {
                        ui.add(
                            egui::Label::new(
                                egui::RichText::new(p.to_string()).monospace().small(),
                            )
                            .truncate(),
                        )
                        .on_hover_text(p.to_string());
                    }
                });
        }
    }

    fn refresh_view(&mut self) {
        if self.view_of.as_ref() == Some(&self.filter) {
            return;
        }
        let Some(loaded) = &self.loaded else {
            self.view.clear();
            return;
        };
        let needle = self.filter.text.to_lowercase();
        self.view = loaded
            .dataset
            .images
            .iter()
            .enumerate()
            .filter(|(_, e)| self.filter.split.is_none_or(|s| e.split == s))
            .filter(|(_, e)| {
                needle.is_empty()
                    || e.name.to_lowercase().contains(&needle)
                    || e.captions
                        .iter()
                        .any(|c| c.to_lowercase().contains(&needle))
            })
            .map(|(i, _)| i)
            .collect();
        self.view_of = Some(self.filter.clone());
    }

    fn images_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Find");
            let width = (ui.available_width() - 160.0).clamp(100.0, 200.0);
            ui.add(
                egui::TextEdit::singleline(&mut self.filter.text)
                    .hint_text("word or file name")
                    .desired_width(width),
            )
            .labelled_by(label.id);
            let label = ui.label("Split");
            egui::ComboBox::from_id_salt("split_filter")
                .selected_text(self.filter.split.map_or("all", Split::name))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.filter.split, None, "all");
                    for s in [Split::Train, Split::Dev, Split::Test, Split::None] {
                        ui.selectable_value(&mut self.filter.split, Some(s), s.name());
                    }
                })
                .response
                .labelled_by(label.id);
        });
        self.refresh_view();
        let Some(loaded) = &self.loaded else { return };
        ui.weak(format!(
            "{} of {}",
            self.view.len(),
            count(loaded.dataset.images.len(), "image")
        ));
        let images = &loaded.dataset.images;
        let view = &self.view;
        egui::ScrollArea::vertical()
            .id_salt("dataset_images")
            .auto_shrink(false)
            .show_rows(ui, ROW_HEIGHT, view.len(), |ui, range| {
                for &i in &view[range] {
                    let Some(entry) = images.get(i) else { continue };
                    ui.horizontal(|ui| {
                        ui.set_height(ROW_HEIGHT);
                        thumbnail_ui(ui, &mut shared.thumbs, &entry.path, ROW_HEIGHT);
                        ui.vertical(|ui| {
                            ui.horizontal(|ui| {
                                ui.weak(entry.split.name());
                                ui.add(
                                    egui::Label::new(egui::RichText::new(&entry.name).strong())
                                        .truncate(),
                                )
                                .on_hover_text(&entry.name);
                            });
                            for c in entry.captions.iter().take(5) {
                                ui.add(egui::Label::new(egui::RichText::new(c).small()).truncate())
                                    .on_hover_text(c);
                            }
                        });
                    });
                }
            });
    }
}

/// A bar chart of caption lengths: `histogram[n]` captions have `n` words.
fn length_histogram_ui(ui: &mut egui::Ui, histogram: &[usize]) {
    use egui_plot::{Bar, BarChart, Plot};
    let bars: Vec<Bar> = histogram
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(len, n)| Bar::new(len as f64, *n as f64).width(0.9))
        .collect();
    Plot::new("caption_lengths")
        .height(160.0)
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom(false)
        .x_axis_label("words")
        .y_axis_label("captions")
        .show(ui, |plot| plot.bar_chart(BarChart::new("captions", bars)));
}
