//! The Models view: the shipped model and every trained one, with their names, dataset,
//! decoder, vocabulary, training date and dev figures, sortable by any column; rename, delete
//! (with confirmation; the shipped model cannot be), use for captioning, and evaluate on a
//! dataset (the shared evaluation job on the worker; the scores are kept in the model's
//! `meta.json`). The logic lives in [`captioner::jobs::models`]; this file only shows it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Shared;
use super::tasks::{self, Dialog, Pending};
use captioner::dataset::{ImportOptions, Split};
use captioner::jobs::evaluate::EvalOptions;
use captioner::jobs::models::{self, ModelEntry};
use captioner::pipeline::{DecodeOptions, EvalReport};
use captioner::worker::{CancelToken, Command, Event, Job, ModelChoice};

/// A column to sort by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortBy {
    Name,
    Dataset,
    Decoder,
    Vocab,
    Epochs,
    #[default]
    Trained,
    Bleu4,
    CiderD,
}

/// What the panel asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelsAction {
    /// Caption with this model (the Caption panel takes it).
    Use(ModelChoice),
    /// This model's folder was deleted.
    Deleted(PathBuf),
}

#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct ModelsPanel {
    pub sort: SortBy,
    pub descending: bool,
    /// The dataset to evaluate on when the Dataset panel has none loaded.
    pub eval_dataset: Option<PathBuf>,
    /// Beam width of evaluations.
    pub eval_beam: usize,
    /// List each training run's last checkpoint under its best one (a run is listed once, as
    /// its best model, otherwise).
    pub show_last: bool,

    #[serde(skip)]
    entries: Vec<ModelEntry>,
    #[serde(skip)]
    listed: bool,
    /// The model being renamed and the name typed so far.
    #[serde(skip)]
    renaming: Option<(PathBuf, String)>,
    /// The model waiting for the user to confirm its deletion.
    #[serde(skip)]
    confirm_delete: Option<ModelEntry>,
    #[serde(skip)]
    evaluation: Option<Evaluation>,
    /// The latest finished evaluation: the model and its scores.
    #[serde(skip)]
    last_report: Option<(String, EvalReport)>,
    #[serde(skip)]
    dialog: Option<Pending<Option<PathBuf>>>,
    /// The model whose row was clicked (the actions above the table act on it).
    #[serde(skip)]
    selected: Option<PathBuf>,
}

/// An evaluation in progress.
struct Evaluation {
    model: ModelChoice,
    name: String,
    cancel: CancelToken,
    phase: String,
    progress: Option<(usize, usize)>,
}

impl Default for ModelsPanel {
    fn default() -> Self {
        ModelsPanel {
            sort: SortBy::Trained,
            descending: true,
            eval_dataset: None,
            eval_beam: 3,
            show_last: false,
            entries: Vec::new(),
            listed: false,
            renaming: None,
            confirm_delete: None,
            evaluation: None,
            last_report: None,
            dialog: None,
            selected: None,
        }
    }
}

impl ModelsPanel {
    /// The models listed: one per training run (its best checkpoint, with the last one in
    /// [`ModelEntry::last`]), in the order shown.
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// The rows shown: the entries, each followed by its run's last checkpoint when
    /// [`ModelsPanel::show_last`] is on.
    pub fn rows(&self) -> Vec<&ModelEntry> {
        self.entries
            .iter()
            .flat_map(|e| {
                let last = e.last.as_deref().filter(|_| self.show_last);
                std::iter::once(e).chain(last)
            })
            .collect()
    }

    /// The listed model in `dir`, a run's last checkpoint included.
    fn find(&self, dir: &Path) -> Option<&ModelEntry> {
        self.entries
            .iter()
            .flat_map(ModelEntry::with_last)
            .find(|e| e.dir == dir)
    }

    pub fn is_evaluating(&self) -> bool {
        self.evaluation.is_some()
    }

    /// The latest finished evaluation (model name, scores).
    pub fn last_report(&self) -> Option<&(String, EvalReport)> {
        self.last_report.as_ref()
    }

    /// Reads the models folder again (a few small JSON files).
    pub fn refresh(&mut self, shared: &Shared) {
        self.entries = models::list_all(&shared.paths.models_dir);
        self.listed = true;
        self.sort_entries();
    }

    fn sort_entries(&mut self) {
        let key = self.sort;
        let by_figure = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => a.total_cmp(&b),
            (a, b) => a.is_some().cmp(&b.is_some()),
        };
        self.entries.sort_by(|a, b| {
            let order = match key {
                SortBy::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                SortBy::Dataset => a.dataset.cmp(&b.dataset),
                SortBy::Decoder => a.decoder.cmp(&b.decoder),
                SortBy::Vocab => a.vocab_size.cmp(&b.vocab_size),
                SortBy::Epochs => a.epochs.cmp(&b.epochs),
                SortBy::Trained => a.created_unix.cmp(&b.created_unix),
                SortBy::Bleu4 => by_figure(a.dev_bleu4, b.dev_bleu4),
                SortBy::CiderD => by_figure(a.dev_cider_d, b.dev_cider_d),
            }
            .then_with(|| a.folder.cmp(&b.folder));
            if self.descending {
                order.reverse()
            } else {
                order
            }
        });
    }

    /// Sorts by `column`; the same column again flips the order.
    pub fn sort_by(&mut self, column: SortBy) {
        if self.sort == column {
            self.descending = !self.descending;
        } else {
            self.sort = column;
            self.descending = matches!(
                column,
                SortBy::Trained | SortBy::Bleu4 | SortBy::CiderD | SortBy::Epochs
            );
        }
        self.sort_entries();
    }

    /// Selects the model in `dir` (the row clicked).
    pub fn select(&mut self, dir: &Path) {
        if self.selected.as_deref() != Some(dir) {
            self.renaming = None;
        }
        self.selected = Some(dir.to_path_buf());
    }

    /// Starts renaming the model in `dir`.
    pub fn start_rename(&mut self, dir: &Path) {
        let name = self.find(dir).map(|e| e.name.clone()).unwrap_or_default();
        self.renaming = Some((dir.to_path_buf(), name));
    }

    /// Keeps the name typed for the model being renamed.
    pub fn commit_rename(&mut self, shared: &mut Shared) {
        let Some((dir, name)) = self.renaming.take() else {
            return;
        };
        match models::rename(&dir, &name) {
            Ok(entry) => {
                shared
                    .status
                    .info(format!("renamed {} to \"{}\"", entry.folder, entry.name));
                self.refresh(shared);
                shared.send(Command::ListModels);
            }
            Err(e) => {
                shared
                    .status
                    .error(format!("cannot rename: {}", e.report()));
                // Let the user correct the name.
                self.renaming = Some((dir, name));
            }
        }
    }

    /// Asks for confirmation before deleting the model in `dir`.
    pub fn ask_delete(&mut self, dir: &Path) {
        self.confirm_delete = self.find(dir).cloned();
    }

    /// The model waiting for a confirmation of its deletion.
    pub fn pending_delete(&self) -> Option<&ModelEntry> {
        self.confirm_delete.as_ref()
    }

    /// Deletes the model waiting for confirmation.
    pub fn confirm_delete(&mut self, shared: &mut Shared) -> Option<ModelsAction> {
        let entry = self.confirm_delete.take()?;
        let result = models::delete(&shared.paths.models_dir, &entry.dir);
        self.refresh(shared);
        match result {
            Ok(deleted) => {
                let what = match &deleted.run {
                    Some(run) => format!("{} and its empty run folder", run.display()),
                    None => deleted.model.display().to_string(),
                };
                shared
                    .status
                    .info(format!("deleted \"{}\" ({what})", entry.label()));
                shared.send(Command::ListModels);
                Some(ModelsAction::Deleted(entry.dir))
            }
            Err(e) => {
                shared.status.error(format!(
                    "cannot delete \"{}\": {}",
                    entry.label(),
                    e.report()
                ));
                None
            }
        }
    }

    /// Scores `entry` on the dev split of `dataset_dir` on the worker.
    pub fn evaluate(&mut self, entry: &ModelEntry, dataset_dir: PathBuf, shared: &mut Shared) {
        if self.evaluation.is_some() {
            return;
        }
        let cancel = CancelToken::new();
        let options = EvalOptions {
            split: Split::Dev,
            import: ImportOptions::default(),
            decode: DecodeOptions {
                beam: self.eval_beam.clamp(1, 10),
                ..DecodeOptions::default()
            },
        };
        if shared.send(Command::EvaluateModel {
            model: entry.choice(),
            dataset_dir: dataset_dir.clone(),
            options,
            cancel: cancel.clone(),
        }) {
            self.evaluation = Some(Evaluation {
                model: entry.choice(),
                name: entry.label(),
                cancel,
                phase: format!("evaluating on the dev split of {}", dataset_dir.display()),
                progress: None,
            });
        }
    }

    pub fn on_event(&mut self, event: Event, shared: &mut Shared) {
        match event {
            Event::Progress {
                job: Job::Evaluate,
                done,
                total,
                message,
                ..
            } => {
                if let Some(ev) = &mut self.evaluation {
                    if total > 0 {
                        ev.progress = Some((done, total));
                    }
                    ev.phase = message;
                }
            }
            Event::Failed {
                job: Job::Evaluate,
                error,
            } => {
                self.evaluation = None;
                shared
                    .status
                    .error(format!("evaluation failed: {}", error.report()));
            }
            Event::Evaluated { model, report } => {
                let name = match self.evaluation.take() {
                    Some(ev) if ev.model == model => ev.name,
                    _ => model.label(),
                };
                shared.status.info(format!(
                    "{name} on the {} split, {}: BLEU-4 {:.4}, CIDEr-D {:.4}",
                    report.split,
                    super::status::count(report.images, "photo"),
                    report.bleu[3],
                    report.cider_d
                ));
                self.last_report = Some((name, report));
                self.refresh(shared);
                shared.send(Command::ListModels);
            }
            Event::ModelsListed(list) => {
                self.entries = list;
                self.listed = true;
                self.sort_entries();
            }
            Event::TrainFinished(_) => self.refresh(shared),
            _ => {}
        }
    }

    pub fn poll(&mut self, shared: &mut Shared) {
        match tasks::take_ready(&mut self.dialog) {
            Some(Ok(Some(dir))) => self.eval_dataset = Some(dir),
            Some(Ok(None)) => {}
            Some(Err(e)) => shared.status.error(e),
            None => {}
        }
    }

    pub fn panel_ui(
        &mut self,
        ui: &mut egui::Ui,
        shared: &mut Shared,
        loaded_dataset: Option<PathBuf>,
    ) -> Option<ModelsAction> {
        if !self.listed {
            self.refresh(shared);
        }
        ui.horizontal_wrapped(|ui| {
            ui.heading("Models");
            if ui.button("Refresh").clicked() {
                self.refresh(shared);
            }
            ui.checkbox(&mut self.show_last, "Show each run's last epoch")
                .on_hover_text(
                    "A training run keeps two models: the epoch with the best dev BLEU-4 \
                     (listed) and its last epoch (listed under it when this is on)",
                );
            ui.weak(format!(
                "trained models live in {}",
                shared.paths.models_dir.display()
            ));
        });
        let dataset = loaded_dataset.or_else(|| self.eval_dataset.clone());
        self.evaluation_ui(ui, dataset.as_deref());
        ui.separator();
        let mut action = self.actions_ui(ui, shared, dataset.as_deref());
        ui.separator();
        egui::ScrollArea::both().show(ui, |ui| self.table_ui(ui));
        if let Some(a) = self.delete_modal_ui(ui, shared) {
            action = Some(a);
        }
        action
    }

    fn evaluation_ui(&mut self, ui: &mut egui::Ui, dataset: Option<&Path>) {
        ui.horizontal_wrapped(|ui| {
            ui.label("Evaluate on:");
            match dataset {
                Some(d) => ui.label(d.display().to_string()),
                None => ui.weak("no dataset (import one on the Dataset panel, or choose a folder)"),
            }
            .on_hover_text("Evaluate scores a model on this dataset's dev split");
            if ui
                .add_enabled(self.dialog.is_none(), egui::Button::new("Choose folder…"))
                .clicked()
            {
                match tasks::open_dialog(&ui.ctx().clone(), Dialog::PickFolder, dataset) {
                    Ok(p) => self.dialog = Some(p),
                    Err(e) => {
                        ui.colored_label(ui.visuals().error_fg_color, e);
                    }
                }
            }
            let label = ui.label("Beam");
            ui.add(egui::DragValue::new(&mut self.eval_beam).range(1..=10))
                .labelled_by(label.id)
                .on_hover_text("Beam width of the evaluation's captions (1 = greedy)");
        });
        if let Some(ev) = &self.evaluation {
            ui.horizontal_wrapped(|ui| {
                ui.spinner();
                ui.label(format!("{}: {}", ev.name, ev.phase));
                if let Some((done, total)) = ev.progress {
                    ui.add(
                        egui::ProgressBar::new(done as f32 / total.max(1) as f32)
                            .desired_width(200.0)
                            .text(format!("{done} / {total}")),
                    );
                }
                if ui.button("Stop").clicked() {
                    ev.cancel.cancel();
                }
            });
        }
        if let Some((name, r)) = &self.last_report {
            ui.label(format!(
                "{name}: {} split, {}, beam {}: BLEU-1 {:.4}  BLEU-2 {:.4}  BLEU-3 {:.4}  \
                 BLEU-4 {:.4}  CIDEr-D {:.4}",
                r.split,
                super::status::count(r.images, "photo"),
                r.beam,
                r.bleu[0],
                r.bleu[1],
                r.bleu[2],
                r.bleu[3],
                r.cider_d
            ));
        }
    }

    /// What can be done with the selected model: use, evaluate, rename, delete.
    fn actions_ui(
        &mut self,
        ui: &mut egui::Ui,
        shared: &mut Shared,
        dataset: Option<&Path>,
    ) -> Option<ModelsAction> {
        let Some(entry) = self.selected.as_ref().and_then(|d| self.find(d)).cloned() else {
            ui.weak("Click a model to use it for captioning, evaluate, rename or delete it.");
            return None;
        };
        let mut action = None;
        let mut commit = false;
        let mut cancel_rename = false;
        let evaluating = self.evaluation.is_some();
        ui.horizontal_wrapped(|ui| {
            if let Some((_, name)) = &mut self.renaming {
                let label = ui.label("New name");
                let edit = ui
                    .add(egui::TextEdit::singleline(name).desired_width(260.0))
                    .labelled_by(label.id);
                if edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                    commit = true;
                }
                if ui.button("Save name").clicked() {
                    commit = true;
                }
                if ui.button("Cancel").clicked() {
                    cancel_rename = true;
                }
                return;
            }
            ui.strong(entry.label());
            if ui
                .button("Use for captioning")
                .on_hover_text("Caption photos with this model (Caption and Batch panels)")
                .clicked()
            {
                action = Some(ModelsAction::Use(entry.choice()));
            }
            let can_evaluate = !evaluating && dataset.is_some();
            if ui
                .add_enabled(can_evaluate, egui::Button::new("Evaluate"))
                .on_hover_text(
                    "Score it on the dev split of the dataset above (BLEU-1..4, CIDEr-D); the \
                     scores are kept with the model",
                )
                .on_disabled_hover_text(if evaluating {
                    "An evaluation is running"
                } else {
                    "Choose a dataset to evaluate on first"
                })
                .clicked()
                && let Some(dir) = dataset
            {
                self.evaluate(&entry, dir.to_path_buf(), shared);
            }
            if entry.shipped {
                ui.weak("shipped with the program: it cannot be renamed or deleted");
            } else {
                if ui.button("Rename").clicked() {
                    self.start_rename(&entry.dir);
                }
                if ui
                    .button("Delete")
                    .on_hover_text("Delete this model's folder (asks first)")
                    .clicked()
                {
                    self.ask_delete(&entry.dir);
                }
            }
        });
        if cancel_rename {
            self.renaming = None;
        } else if commit {
            self.commit_rename(shared);
        }
        action
    }

    fn table_ui(&mut self, ui: &mut egui::Ui) {
        let mut sort = None;
        let mut select = None;
        egui::Grid::new("models-table")
            .striped(true)
            .spacing([10.0, 6.0])
            .show(ui, |ui| {
                let columns = [
                    (SortBy::Name, "Name", "The model's name (trained ones can be renamed)"),
                    (SortBy::Dataset, "Dataset", "The dataset it was trained on"),
                    (SortBy::Decoder, "Decoder", "merge (image joined after the LSTM) or inject (image as the LSTM's first input)"),
                    (SortBy::Vocab, "Vocab", "Words the model knows"),
                    (SortBy::Epochs, "Epochs", "Epochs trained"),
                    (SortBy::Trained, "Trained", "When it was saved (UTC)"),
                    (SortBy::Bleu4, "Dev BLEU-4", "BLEU-4 on the dev split: of the latest evaluation, else measured during training (on the dev photos training scores, often fewer); hover a figure for how it was measured"),
                    (SortBy::CiderD, "Dev CIDEr-D", "CIDEr-D on the dev split; none until the model is evaluated"),
                ];
                for (key, title, hint) in columns {
                    let sorted = (self.sort == key).then_some(self.descending);
                    ui.horizontal(|ui| {
                        ui.spacing_mut().item_spacing.x = 3.0;
                        if ui
                            .add(egui::Button::new(egui::RichText::new(title).strong()).frame(false))
                            .on_hover_text(format!("{hint}. Click to sort."))
                            .clicked()
                        {
                            sort = Some(key);
                        }
                        if let Some(descending) = sorted {
                            sort_arrow(ui, descending);
                        }
                    });
                }
                ui.end_row();
                let rows = self.rows();
                for e in rows {
                    let is_last = self
                        .entries
                        .iter()
                        .any(|b| b.last.as_deref().is_some_and(|l| l.dir == e.dir));
                    let mut name = egui::RichText::new(if is_last {
                        format!("      {}", e.label())
                    } else {
                        e.label()
                    });
                    if e.shipped {
                        name = name.italics();
                    }
                    let last_note = match (&e.last, is_last) {
                        (Some(l), _) => format!(
                            "\nThe run's last epoch is a model too: {} (tick \"Show each run's \
                             last epoch\")",
                            l.dir.display()
                        ),
                        (None, true) => "\nThe last epoch of the run above".to_string(),
                        (None, false) => String::new(),
                    };
                    let selected = self.selected.as_deref() == Some(e.dir.as_path());
                    if ui
                        .selectable_label(selected, name)
                        .on_hover_text(format!(
                            "{}\n{}\n{}{last_note}",
                            e.folder,
                            e.dir.display(),
                            e.description
                        ))
                        .clicked()
                    {
                        select = Some(e.dir.clone());
                    }
                    ui.label(&e.dataset);
                    ui.label(&e.decoder);
                    ui.label(e.vocab_size.to_string());
                    ui.label(e.epochs.to_string());
                    // Date and minutes (UTC).
                    ui.label(e.created.replace('T', " ").chars().take(16).collect::<String>())
                        .on_hover_text(&e.created);
                    figure_ui(ui, e.dev_bleu4, e);
                    figure_ui(ui, e.dev_cider_d, e);
                    ui.end_row();
                }
            });
        if let Some(key) = sort {
            self.sort_by(key);
        }
        if let Some(dir) = select {
            self.select(&dir);
        }
    }

    fn delete_modal_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) -> Option<ModelsAction> {
        let entry = self.confirm_delete.clone()?;
        let mut confirmed = false;
        let mut cancelled = false;
        let modal =
            egui::Modal::new(egui::Id::unique("confirm-delete-model")).show(ui.ctx(), |ui| {
                ui.set_max_width(420.0);
                ui.heading(format!("Delete \"{}\"?", entry.name));
                ui.label(format!(
                    "This deletes the folder {} and everything in it (a run folder left with no \
                 checkpoint goes too). It cannot be undone.",
                    entry.dir.display()
                ));
                ui.horizontal(|ui| {
                    if ui.button("Delete model").clicked() {
                        confirmed = true;
                    }
                    if ui.button("Keep it").clicked() {
                        cancelled = true;
                    }
                });
            });
        if cancelled || (modal.should_close() && !confirmed) {
            self.confirm_delete = None;
            return None;
        }
        if confirmed {
            return self.confirm_delete(shared);
        }
        None
    }
}

/// A dev figure with four decimals, or "—" when the model has none.
fn figure_ui(ui: &mut egui::Ui, value: Option<f64>, e: &ModelEntry) {
    match value {
        Some(v) => {
            let from = match &e.evaluation {
                Some(ev) if ev.split == "dev" => format!(
                    "{}: evaluated {} on the dev split of {}",
                    e.dev_bleu4_how,
                    ev.when,
                    ev.dataset_dir.display(),
                ),
                _ => format!(
                    "{}; press Evaluate to score it on the whole dev split",
                    e.dev_bleu4_how
                ),
            };
            // A figure from a small dev set says so: it is not comparable with the others.
            let text = match e.dev_bleu4_photos {
                Some(n) if n < models::FEW_DEV_PHOTOS => format!("{v:.4} (on {n} dev photos)"),
                _ => format!("{v:.4}"),
            };
            ui.label(text).on_hover_text(from);
        }
        None => {
            ui.weak("—")
                .on_hover_text("not evaluated yet: press Evaluate");
        }
    }
}

/// A small triangle: pointing down for a descending sort, up for an ascending one.
fn sort_arrow(ui: &mut egui::Ui, descending: bool) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(8.0, 8.0), egui::Sense::hover());
    let c = rect.center();
    let (tip, base) = if descending { (3.5, -3.5) } else { (-3.5, 3.5) };
    let points = vec![
        c + egui::vec2(-4.0, base),
        c + egui::vec2(4.0, base),
        c + egui::vec2(0.0, tip),
    ];
    ui.painter().add(egui::Shape::convex_polygon(
        points,
        ui.visuals().strong_text_color(),
        egui::Stroke::NONE,
    ));
}
