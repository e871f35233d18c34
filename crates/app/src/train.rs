//! The Train panel: settings, Start / Stop / Resume, live charts of the step loss, the epoch
//! train and dev losses and dev BLEU-4, sample captions of fixed dev images every epoch, epoch
//! time and ETA, the device, and a summary of the model being trained.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use egui_plot::{Legend, Line, Plot, PlotPoints, Points};
use serde::{Deserialize, Serialize};

use super::Shared;
use super::status::clock;
use captioner::dataset::Cleaning;
use captioner::decoder::DecoderConfig;
use captioner::decoder::DecoderKind;
use captioner::jobs::EndReason;
use captioner::jobs::train::{FINE_TUNE_EPOCHS, FINE_TUNE_LR, data_warnings, degenerate_caption};
use captioner::train::{EpochReport, ModelSummary, TrainEvent};
use captioner::worker::{CancelToken, Command, Event, Job, TrainSettings};

#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainPanel {
    pub settings: TrainSettings,
    /// The folder of the latest run (for Resume).
    pub last_run: Option<PathBuf>,

    #[serde(skip)]
    run: Option<Run>,
    /// The text typed into each number field, and why it was refused (when it was).
    #[serde(skip)]
    fields: HashMap<&'static str, Field>,
    /// Whether the latest run's checkpoint was looked for (after a restart).
    #[serde(skip)]
    restored: bool,
    /// The models there are, for "Start from" (from the worker's list).
    #[serde(skip)]
    models: Vec<captioner::jobs::ModelEntry>,
    /// The decoder of the model chosen to start from (read once per choice; `None` inside
    /// when its `config.json` cannot be read).
    #[serde(skip)]
    base: Option<(PathBuf, Option<DecoderConfig>)>,
}

/// A number field's text and, when the text is refused, why.
#[derive(Default)]
struct Field {
    text: String,
    error: Option<String>,
}

/// What the panel knows about the run on show.
#[derive(Default)]
pub struct Run {
    pub running: bool,
    pub cancel: CancelToken,
    pub out_dir: Option<PathBuf>,
    pub device: Option<String>,
    pub phase: String,
    pub features: Option<(usize, usize)>,
    /// The feature extraction's estimate of the time it has left.
    pub features_eta: Option<std::time::Duration>,
    pub summary: Option<ModelSummary>,
    pub total_epochs: usize,
    pub steps_per_epoch: usize,
    pub epoch: usize,
    pub step: usize,
    pub avg_loss: f32,
    /// (global step, loss)
    pub step_losses: Vec<[f64; 2]>,
    pub epochs: Vec<EpochReport>,
    pub started: Option<Instant>,
    /// The first step this session saw (global step, when), for the run's ETA.
    pub first_step: Option<(usize, Instant)>,
    pub finished: Option<String>,
    /// Why the run ended.
    pub end: Option<EndReason>,
    pub error: Option<String>,
    /// Shown from the checkpoint of an earlier session (not running in this one).
    pub restored: bool,
    /// Whether Resume can continue the run: its last checkpoint exists and the run neither
    /// finished nor stopped early.
    pub resumable: bool,
    /// For a fine-tuning run: the model it starts from, and how many caption words are
    /// outside its vocabulary.
    pub fine_tune: Option<String>,
    /// What the run should be warned about: too little data (from the start), and the job's
    /// own warnings (no calibration, photos left out).
    pub warnings: Vec<String>,
}

/// The job's progress messages that are warnings worth keeping on the panel (the rest are
/// phases, shown one at a time).
const WARNING_STARTS: [&str; 5] = [
    "no calibrated confidence",
    "no familiarity data",
    "left out ",
    "only ",
    "captions are cleaned",
];

/// Whether a progress message of the training job is one of its warnings.
pub fn is_warning(message: &str) -> bool {
    WARNING_STARTS.iter().any(|s| message.starts_with(s))
}

/// A y-axis label for BLEU figures: at most three decimals, trailing zeros dropped ("0.05",
/// "0.1", "0"), never the float noise of a tiny range ("0.000000001").
pub fn axis_text(v: f64) -> String {
    let t = format!("{v:.3}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    match t {
        "" | "-0" => "0".to_string(),
        t => t.to_string(),
    }
}

/// The sample captions of an epoch that show the model has not learned to caption yet.
pub fn degenerate_samples(report: &EpochReport) -> usize {
    report
        .samples
        .iter()
        .filter(|(_, c)| degenerate_caption(c))
        .count()
}

impl Run {
    /// Steps of the whole run done and in all.
    pub fn overall_steps(&self) -> (usize, usize) {
        let total = self.total_epochs * self.steps_per_epoch;
        let done = (self.epoch.saturating_sub(1) * self.steps_per_epoch + self.step).min(total);
        (done, total)
    }

    /// Estimated time left for the whole run (all configured epochs; early stopping can end it
    /// sooner): from the last epoch's duration, else from the steps timed in this session.
    pub fn run_eta(&self) -> Option<std::time::Duration> {
        let (done, total) = self.overall_steps();
        if total == 0 || self.steps_per_epoch == 0 {
            return None;
        }
        let left = total.saturating_sub(done) as f64;
        let per_step = match self.epochs.last() {
            Some(r) if r.seconds > 0.0 => r.seconds / self.steps_per_epoch as f64,
            _ => {
                let (first, at) = self.first_step?;
                let steps = done.checked_sub(first).filter(|n| *n > 0)?;
                at.elapsed().as_secs_f64() / steps as f64
            }
        };
        std::time::Duration::try_from_secs_f64(left * per_step).ok()
    }

    /// The best dev BLEU-4 so far (epoch, figure), as measured.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.epochs
            .iter()
            .filter(|r| r.dev_bleu4.is_finite())
            .fold(None, |best: Option<&EpochReport>, r| match best {
                Some(b) if b.dev_bleu4 >= r.dev_bleu4 => Some(b),
                _ => Some(r),
            })
            .map(|r| (r.epoch, r.dev_bleu4))
    }
}

/// A BLEU figure with enough digits to tell a small score from zero.
pub fn bleu_text(v: f64) -> String {
    if v == 0.0 || v.abs() >= 0.001 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}

/// The run recorded in `run_dir/last` (its training state), shown after a restart.
pub fn restore_run(run_dir: &Path) -> Option<Run> {
    let path = run_dir
        .join(captioner::train::LAST_DIR)
        .join(captioner::train::checkpoint::STATE_FILE);
    let bytes = std::fs::read(&path).ok()?;
    let state: captioner::train::TrainState = serde_json::from_slice(&bytes).ok()?;
    let completed = state.history.len();
    let resumable = !state.early_stopped && state.epoch < state.train.epochs;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let finished = if state.early_stopped {
        let best = state.best_epoch;
        let without = completed.saturating_sub(best);
        format!(
            "last run: stopped early after {completed} epoch{}: {without} epoch{} without a \
             better dev BLEU-4 (best at epoch {best}); it cannot be resumed",
            plural(completed),
            plural(without)
        )
    } else if resumable {
        format!(
            "last run: {completed} of {} epoch{} done (stopped at epoch {}, step {}); Resume \
             continues it from {}",
            state.train.epochs,
            plural(state.train.epochs),
            state.epoch + 1,
            state.step,
            path.parent().unwrap_or(run_dir).display()
        )
    } else {
        format!(
            "last run: finished all {} epoch{}; it cannot be resumed",
            state.train.epochs,
            plural(state.train.epochs)
        )
    };
    Some(Run {
        out_dir: Some(run_dir.to_path_buf()),
        phase: "not running".into(),
        total_epochs: state.train.epochs,
        epoch: completed,
        epochs: state.history,
        finished: Some(finished),
        restored: true,
        resumable,
        ..Run::default()
    })
}

impl TrainPanel {
    pub fn run(&self) -> Option<&Run> {
        self.run.as_ref()
    }

    pub fn is_running(&self) -> bool {
        self.run.as_ref().is_some_and(|r| r.running)
    }

    /// Chooses the model to start from (`None`: a new model); the learning rate follows
    /// ([`captioner::jobs::TrainSettings::set_from`]).
    pub fn set_from(&mut self, from: Option<PathBuf>) {
        self.settings.set_from(from);
    }

    /// The decoder of the model chosen to start from, when fine-tuning.
    pub fn base_decoder(&mut self) -> Option<&DecoderConfig> {
        let from = self.settings.from.as_ref()?;
        if self.base.as_ref().is_none_or(|(d, _)| d != from) {
            let config = captioner::model_dir::read_config(from)
                .ok()
                .map(|c| c.decoder);
            self.base = Some((from.clone(), config));
        }
        self.base.as_ref().and_then(|(_, c)| c.as_ref())
    }

    /// Starts a new run (`resume == false`) or continues the latest one.
    /// `splits`: the train and dev photos of the dataset, when known (the Dataset panel's
    /// import), for the warnings about too little data.
    pub fn start(&mut self, dataset_dir: Option<PathBuf>, resume: bool, shared: &mut Shared) {
        self.start_with(dataset_dir, None, resume, shared);
    }

    /// [`TrainPanel::start`], warned about too little data in `splits` (train, dev photos).
    pub fn start_with(
        &mut self,
        dataset_dir: Option<PathBuf>,
        splits: Option<(usize, usize)>,
        resume: bool,
        shared: &mut Shared,
    ) {
        if self.is_running() {
            return;
        }
        let mut settings = self.settings.clone();
        settings.dataset_dir = dataset_dir.or(settings.dataset_dir);
        if settings.dataset_dir.is_none() {
            shared
                .status
                .warn("choose a dataset on the Dataset panel before training");
            return;
        }
        settings.out_dir = if resume {
            match &self.last_run {
                Some(dir) => Some(dir.clone()),
                None => {
                    shared.status.warn("there is no run to resume");
                    return;
                }
            }
        } else {
            Some(captioner::jobs::models::new_run_dir(
                &shared.paths.models_dir,
                settings
                    .dataset_dir
                    .as_deref()
                    .unwrap_or(std::path::Path::new("dataset")),
                settings.effective_decoder(),
            ))
        };
        self.settings.dataset_dir = settings.dataset_dir.clone();
        self.last_run = settings.out_dir.clone();
        let cancel = CancelToken::new();
        let mut run = Run {
            running: true,
            cancel: cancel.clone(),
            out_dir: settings.out_dir.clone(),
            phase: "preparing".into(),
            started: Some(Instant::now()),
            warnings: splits
                .map(|(train, dev)| data_warnings(train, dev, settings.from.is_some()))
                .unwrap_or_default(),
            ..Run::default()
        };
        // A resumed run keeps the charts of the run it continues.
        if resume && let Some(old) = self.run.take() {
            run.step_losses = old.step_losses;
            run.epochs = old.epochs;
            run.summary = old.summary;
            run.total_epochs = old.total_epochs;
        }
        if shared.send(Command::Train {
            settings,
            resume,
            cancel,
        }) {
            self.run = Some(run);
        }
    }

    /// Asks the running job to stop after the current batch (it leaves a resumable checkpoint).
    pub fn stop(&mut self) {
        if let Some(run) = &mut self.run
            && run.running
        {
            run.cancel.cancel();
            run.phase = "stopping after the current batch".into();
        }
    }

    pub fn on_event(&mut self, event: Event, shared: &mut Shared) {
        if let Event::ModelsListed(list) = &event {
            self.models = list.clone();
            return;
        }
        let Some(run) = self.run.as_mut() else {
            return;
        };
        match event {
            Event::Progress {
                job: Job::Features,
                done,
                total,
                message,
                eta,
            } => {
                if total > 0 {
                    run.features = Some((done, total));
                    run.features_eta = eta;
                    run.phase = "extracting image features".into();
                } else {
                    shared.status.warn(message);
                }
            }
            Event::Progress { message, .. } if is_warning(&message) => {
                // Kept once each (a resumed run repeats its warnings).
                run.warnings.retain(|w| *w != message);
                run.warnings.push(message);
            }
            Event::Progress { message, .. } => run.phase = message,
            Event::TrainStarted {
                out_dir,
                device,
                engine,
            } => {
                run.out_dir = Some(out_dir);
                run.device = Some(format!("{device}, {engine}"));
                run.phase = "training".into();
            }
            Event::Training(e) => on_train_event(run, e),
            Event::FineTuning {
                base,
                base_dir: _,
                unknown,
            } => {
                run.fine_tune = Some(format!("Fine-tuning {base}: {}.", unknown.describe(8)));
            }
            Event::TrainFinished(outcome) => {
                run.running = false;
                let mut text = outcome.end.describe();
                if outcome.best_epoch > 0 {
                    text.push_str(&format!(
                        "; best dev BLEU-4 {} at epoch {}",
                        bleu_text(outcome.best_bleu4),
                        outcome.best_epoch
                    ));
                }
                if !matches!(outcome.end, EndReason::StoppedInFeatures) {
                    text.push_str(&format!("; best model in {}", outcome.best_dir.display()));
                }
                shared.status.info(format!("training {text}"));
                run.resumable = matches!(
                    outcome.end,
                    EndReason::Stopped { .. } | EndReason::StoppedInFeatures
                );
                run.phase = match outcome.end {
                    EndReason::Finished { .. } => "finished",
                    EndReason::EarlyStopped { .. } => "stopped early",
                    EndReason::Stopped { .. } | EndReason::StoppedInFeatures => "stopped",
                }
                .into();
                run.finished = Some(text);
                run.end = Some(outcome.end);
                shared.send(Command::ListModels);
            }
            Event::Failed { job, error } => {
                run.running = false;
                run.resumable = true;
                run.phase = "failed".into();
                let message = error.report();
                shared.status.error(format!("{job} failed: {message}"));
                run.error = Some(message);
            }
            _ => {}
        }
    }

    /// `splits`: the loaded dataset's train and dev photos, for the warnings about too little
    /// data.
    pub fn panel_ui(
        &mut self,
        ui: &mut egui::Ui,
        shared: &mut Shared,
        dataset_dir: Option<PathBuf>,
        splits: Option<(usize, usize)>,
    ) {
        if self.run.is_none() && !self.restored {
            self.restored = true;
            self.run = self.last_run.as_deref().and_then(restore_run);
        }
        egui::Panel::left("train-settings")
            .resizable(false)
            .default_size(300.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .show(ui, |ui| self.settings_ui(ui, shared, dataset_dir, splits));
            });
        egui::CentralPanel::default_margins().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.run_ui(ui));
        });
    }

    fn settings_ui(
        &mut self,
        ui: &mut egui::Ui,
        shared: &mut Shared,
        dataset_dir: Option<PathBuf>,
        splits: Option<(usize, usize)>,
    ) {
        let running = self.is_running();
        ui.heading("Settings");
        let dataset = dataset_dir.clone().or(self.settings.dataset_dir.clone());
        match &dataset {
            Some(d) => ui.label(format!("Dataset: {}", d.display())),
            None => ui.label("Dataset: none (import one on the Dataset panel)"),
        };
        ui.add_enabled_ui(!running, |ui| self.start_from_ui(ui));
        let fine_tuning = self.settings.from.is_some();
        let base = self.base_decoder().cloned();
        if let Some((train, dev)) = splits {
            for w in data_warnings(train, dev, fine_tuning) {
                ui.colored_label(ui.visuals().warn_fg_color, format!("Warning: {w}."));
            }
        }
        let fields = &mut self.fields;
        ui.add_enabled_ui(!running, |ui| {
            let s = &mut self.settings;
            egui::Grid::new("train-grid").num_columns(2).show(ui, |ui| {
                number_row(ui, fields, "Epochs", "Passes over the training captions. Early stopping may end the run sooner.", &mut s.train.epochs, 1, 500, true);
                number_row(ui, fields, "Batch size", "Captions per training step. Larger batches give smoother but fewer updates per epoch.", &mut s.train.batch_size, 1, 1024, true);
                let lr_hint = if fine_tuning {
                    format!("Adam's step size at the start (0.000001 to 0.1). Fine-tuning starts at {FINE_TUNE_LR}: higher rates move the model far from what it knew.")
                } else {
                    "Adam's step size at the start (0.000001 to 0.1). Too high diverges, too low learns slowly; 0.001 is a good start.".to_string()
                };
                number_row(ui, fields, "Learning rate", &lr_hint, &mut s.train.lr, 1e-6, 0.1, true);
                let decoder_label = ui.label("Decoder").on_hover_text(
                    "merge: the image is joined with the LSTM's output (as in the Keras tutorial); \
                     inject: the image is the LSTM's first input (Show and Tell); \
                     attention: the LSTM looks at a different part of the photo for each word \
                     (Show, Attend and Tell; best with LSTM size 512 and learning rate 0.0004)",
                );
                let before = s.decoder;
                // Fine-tuning keeps the base model's decoder: shown, not editable.
                let shown_kind = base.as_ref().map_or(s.decoder, |b| b.kind);
                let mut kind = shown_kind;
                ui.add_enabled_ui(!fine_tuning, |ui| {
                egui::ComboBox::from_id_salt("decoder-kind")
                    .selected_text(if fine_tuning {
                        format!("{shown_kind} (the base model's)")
                    } else {
                        shown_kind.to_string()
                    })
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut kind, DecoderKind::Merge, "merge (tutorial)");
                        ui.selectable_value(
                            &mut kind,
                            DecoderKind::Inject,
                            "inject (Show and Tell)",
                        );
                        ui.selectable_value(
                            &mut kind,
                            DecoderKind::Attention,
                            "attention (Show, Attend and Tell)",
                        );
                    })
                    .response
                    .labelled_by(decoder_label.id)
                    .on_disabled_hover_text("Fine-tuning keeps the base model's decoder");
                });
                if !fine_tuning && kind != before {
                    s.decoder = kind;
                    s.decoder_changed(before);
                }
                ui.end_row();
                // Fine-tuning keeps the base model's sizes and vocabulary: they are shown,
                // greyed out, and not used.
                let sizes = !fine_tuning;
                let (mut embed, mut hidden) = (s.embed_dim, s.hidden_dim);
                if let Some(b) = &base {
                    (embed, hidden) = (b.embed_dim, b.hidden_dim);
                }
                number_row(ui, fields, "Embedding size", "Length of the vector each word is turned into (8 to 2048).", &mut embed, 8, 2048, sizes);
                number_row(ui, fields, "LSTM size", "Memory cells of the LSTM (8 to 2048): larger can learn more, but trains slower.", &mut hidden, 8, 2048, sizes);
                if sizes {
                    (s.embed_dim, s.hidden_dim) = (embed, hidden);
                }
                number_row(ui, fields, "Dropout", "Share of values randomly zeroed while training (0 to 0.9), against overfitting.", &mut s.dropout, 0.0, 0.9, true);
                number_row(ui, fields, "Vocabulary min count", "A word must appear at least this often in the training captions to be in the vocabulary; rarer words become <unk>.", &mut s.import.min_count, 1, 100, sizes);
                let cleaning_label = ui.label("Cleaning").on_hover_text(
                    "How captions are cleaned: natural keeps words like \"a\"; tutorial drops \
                     one-letter words and numbers as the Keras tutorial does",
                );
                ui.add_enabled_ui(sizes, |ui| {
                    egui::ComboBox::from_id_salt("cleaning")
                        .selected_text(s.import.cleaning.name())
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut s.import.cleaning, Cleaning::Natural, "natural");
                            ui.selectable_value(&mut s.import.cleaning, Cleaning::Tutorial, "tutorial");
                        })
                        .response
                        .labelled_by(cleaning_label.id)
                        .on_disabled_hover_text("Fine-tuning keeps the base model's cleaning");
                });
                ui.end_row();
                number_row(ui, fields, "Early-stop patience", "Stop after this many epochs in a row without a better dev BLEU-4 (0 = never stop early).", &mut s.train.early_stop_patience, 0, 50, true);
                number_row(ui, fields, "Dev images for BLEU", "Dev images captioned after every epoch to measure BLEU-4 (1 to 5000): more is steadier but slower.", &mut s.train.dev_bleu_images, 1, 5000, true);
            });
            for (label, f) in fields.iter() {
                if let Some(e) = &f.error {
                    ui.colored_label(ui.visuals().error_fg_color, format!("{label}: {e}"));
                }
            }
        });
        ui.separator();
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!running && dataset.is_some(), egui::Button::new("Start"))
                .on_hover_text(if fine_tuning {
                    "Fine-tune the chosen model on this dataset (into a new run folder; the \
                     model itself is left as it is)"
                } else {
                    "Train a new model from scratch"
                })
                .clicked()
            {
                self.start_with(dataset.clone(), splits, false, shared);
            }
            if ui
                .add_enabled(running, egui::Button::new("Stop"))
                .on_hover_text("Stop after the current batch; the checkpoint can be resumed")
                .clicked()
            {
                self.stop();
            }
            let resumable = self.run.as_ref().is_none_or(|r| r.resumable);
            let can_resume = !running && dataset.is_some() && self.last_run.is_some() && resumable;
            if ui
                .add_enabled(can_resume, egui::Button::new("Resume"))
                .on_hover_text("Continue the latest run from its last checkpoint")
                .on_disabled_hover_text(if self.last_run.is_none() {
                    "There is no run to resume"
                } else if !resumable {
                    "The latest run finished or stopped early; start a new one"
                } else {
                    "Choose the run's dataset on the Dataset panel first"
                })
                .clicked()
            {
                self.start_with(dataset.clone(), splits, true, shared);
            }
        });
        if let Some(dir) = &self.last_run {
            ui.label(format!("Run folder: {}", dir.display()));
        }
    }

    /// "Start from": a new model, or one of the models there are (fine-tuning).
    fn start_from_ui(&mut self, ui: &mut egui::Ui) {
        let label_of = |dir: &Path, models: &[captioner::jobs::ModelEntry]| {
            models
                .iter()
                .flat_map(captioner::jobs::ModelEntry::with_last)
                .find(|m| m.dir == dir)
                .map(|m| m.label())
                .unwrap_or_else(|| captioner::jobs::models::model_label(dir))
        };
        let selected = match &self.settings.from {
            None => "a new model".to_string(),
            Some(dir) => format!("fine-tune {}", label_of(dir, &self.models)),
        };
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Start from").on_hover_text(
                "A new model learns from scratch. Fine-tuning starts from a trained model's \
                 weights and keeps its decoder and vocabulary: good for a few hundred captioned \
                 photos of your own. Words outside its vocabulary count as unknown.",
            );
            let mut from = self.settings.from.clone();
            egui::ComboBox::from_id_salt("train-from")
                .selected_text(selected)
                .width(220.0)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut from, None, "a new model");
                    for m in &self.models {
                        ui.selectable_value(
                            &mut from,
                            Some(m.dir.clone()),
                            format!("fine-tune {} ({})", m.label(), m.folder),
                        );
                    }
                    // A model chosen elsewhere (the Batch panel) that the list lacks.
                    if let Some(dir) = self.settings.from.clone()
                        && !self.models.iter().any(|m| m.dir == dir)
                    {
                        ui.selectable_value(
                            &mut from,
                            Some(dir.clone()),
                            format!("fine-tune {}", captioner::jobs::models::model_label(&dir)),
                        );
                    }
                })
                .response
                .labelled_by(label.id);
            if from != self.settings.from {
                self.set_from(from);
            }
        });
        if self.settings.from.is_some() {
            ui.label(format!(
                "Fine-tuning keeps the model's decoder, sizes, vocabulary and cleaning (greyed \
                 out below). It starts with the README's recipe, measured in \
                 docs/quality.md: a learning rate of {FINE_TUNE_LR}, {FINE_TUNE_EPOCHS} epochs, \
                 no early stop."
            ));
        }
    }

    fn run_ui(&mut self, ui: &mut egui::Ui) {
        let Some(run) = &self.run else {
            ui.heading("No training run yet");
            ui.label(
                "Import a dataset on the Dataset panel, check the settings, and press Start. \
                 Image features are computed once and cached; training then reports its loss \
                 after every batch and dev BLEU-4 with sample captions after every epoch.",
            );
            return;
        };
        ui.horizontal(|ui| {
            ui.strong(format!("Status: {}", run.phase));
            if let Some(d) = &run.device {
                ui.separator();
                ui.label(format!("Device: {d}"));
            }
            if let Some(t) = run.started
                && run.running
            {
                ui.separator();
                ui.label(format!("elapsed {}", clock(t.elapsed())));
            }
        });
        if let Some(note) = &run.fine_tune {
            ui.label(note);
        }
        for w in &run.warnings {
            ui.colored_label(ui.visuals().warn_fg_color, format!("Warning: {w}"));
        }
        if let Some(e) = &run.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        if let Some(f) = &run.finished {
            ui.label(f);
        }
        if let Some((done, total)) = run.features
            && done < total
            && run.running
        {
            ui.add(
                egui::ProgressBar::new(done as f32 / total.max(1) as f32).text(features_text(
                    done,
                    total,
                    run.features_eta,
                )),
            );
        }
        if let Some((epoch, bleu)) = run.best() {
            ui.label(format!(
                "Best dev BLEU-4 so far: {} (epoch {epoch})",
                bleu_text(bleu)
            ));
        }
        if run.steps_per_epoch > 0 && (run.running || !run.restored) {
            let (done, total) = run.overall_steps();
            let eta = run
                .run_eta()
                .filter(|_| run.running)
                .map(|d| format!(", about {} left", clock(d)))
                .unwrap_or_default();
            ui.add(
                egui::ProgressBar::new(done as f32 / total.max(1) as f32).text(format!(
                    "run: epoch {} of {}, step {done} / {total}{eta}",
                    run.epoch, run.total_epochs
                )),
            )
            .on_hover_text(
                "The whole run: every configured epoch (early stopping may end it sooner)",
            );
            ui.add(
                egui::ProgressBar::new(run.step as f32 / run.steps_per_epoch as f32).text(format!(
                    "this epoch: step {} / {}, loss {:.3}",
                    run.step, run.steps_per_epoch, run.avg_loss
                )),
            );
            if let Some(last) = run.epochs.last() {
                ui.label(format!("last epoch took {:.1} s", last.seconds));
            }
        }
        ui.columns(3, |cols| {
            cols[0].label("Step loss");
            Plot::new("step-loss")
                .height(200.0)
                .allow_scroll(false)
                .x_axis_label("step")
                .show(&mut cols[0], |p| {
                    p.line(
                        Line::new("loss", PlotPoints::from(run.step_losses.clone()))
                            .color(TRAIN_COLOR),
                    );
                });
            cols[1].label("Epoch loss");
            let train: Vec<[f64; 2]> = run
                .epochs
                .iter()
                .map(|r| [r.epoch as f64, r.train_loss])
                .collect();
            let dev: Vec<[f64; 2]> = run
                .epochs
                .iter()
                .map(|r| [r.epoch as f64, r.dev_loss])
                .collect();
            Plot::new("epoch-loss")
                .height(200.0)
                .allow_scroll(false)
                .legend(Legend::default())
                .x_axis_label("epoch")
                .show(&mut cols[1], |p| {
                    p.line(Line::new("train", PlotPoints::from(train.clone())).color(TRAIN_COLOR));
                    p.points(
                        Points::new("train", PlotPoints::from(train))
                            .radius(3.0)
                            .color(TRAIN_COLOR),
                    );
                    p.line(Line::new("dev", PlotPoints::from(dev.clone())).color(DEV_COLOR));
                    p.points(
                        Points::new("dev", PlotPoints::from(dev))
                            .radius(3.0)
                            .color(DEV_COLOR),
                    );
                });
            cols[2].label("Dev BLEU-4");
            let bleu: Vec<[f64; 2]> = run
                .epochs
                .iter()
                .map(|r| [r.epoch as f64, r.dev_bleu4])
                .collect();
            // From 0, and at least to 0.05, so that a near-zero score (a model on too little
            // data) does not stretch the axis to labels like "0.000000001".
            Plot::new("dev-bleu")
                .height(200.0)
                .allow_scroll(false)
                .include_y(0.0)
                .include_y(0.05)
                .y_axis_formatter(|mark, _| axis_text(mark.value))
                .x_axis_label("epoch")
                .show(&mut cols[2], |p| {
                    p.line(Line::new("BLEU-4", PlotPoints::from(bleu.clone())).color(DEV_COLOR));
                    p.points(
                        Points::new("BLEU-4", PlotPoints::from(bleu))
                            .radius(3.0)
                            .color(DEV_COLOR),
                    );
                });
        });
        if let Some(last) = run.epochs.last() {
            ui.separator();
            ui.strong(format!("Sample captions after epoch {}", last.epoch));
            let bad = degenerate_samples(last);
            if bad > 0 {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!(
                        "Warning: {bad} of {} sample captions repeat words: the model has not learned \
                         to caption yet (too little data, or too few epochs)",
                        last.samples.len()
                    ),
                );
            }
            egui::Grid::new("samples").striped(true).show(ui, |ui| {
                for (image, caption) in &last.samples {
                    ui.label(image);
                    if degenerate_caption(caption) {
                        ui.colored_label(
                            ui.visuals().warn_fg_color,
                            format!("{caption}  (repeated words)"),
                        )
                        .on_hover_text("Repeated words: not a caption yet");
                    } else {
                        ui.label(caption);
                    }
                    ui.end_row();
                }
            });
        }
        if let Some(summary) = &run.summary {
            ui.separator();
            ui.collapsing(
                format!(
                    "Model: {} decoder, {} parameters",
                    summary.kind, summary.total_params
                ),
                |ui| {
                    egui::Grid::new("model-summary")
                        .striped(true)
                        .show(ui, |ui| {
                            ui.strong("layer");
                            ui.strong("type");
                            ui.strong("input");
                            ui.strong("output shape");
                            ui.strong("parameters");
                            ui.end_row();
                            for l in &summary.layers {
                                ui.label(&l.name);
                                ui.label(&l.kind);
                                ui.label(&l.input);
                                ui.label(&l.output_shape);
                                ui.label(l.params.to_string());
                                ui.end_row();
                            }
                        });
                },
            );
        }
    }
}

const TRAIN_COLOR: egui::Color32 = egui::Color32::from_rgb(90, 160, 255);
const DEV_COLOR: egui::Color32 = egui::Color32::from_rgb(255, 160, 60);

fn on_train_event(run: &mut Run, event: TrainEvent) {
    match event {
        TrainEvent::Started {
            total_epochs,
            steps_per_epoch,
            start_epoch,
            start_step,
            summary,
            ..
        } => {
            run.total_epochs = total_epochs;
            run.steps_per_epoch = steps_per_epoch;
            run.epoch = start_epoch;
            run.step = start_step;
            run.summary = Some(summary);
            // Drop chart points past the checkpoint a resumed run restarts from.
            let resume_at = (start_epoch.saturating_sub(1) * steps_per_epoch + start_step) as f64;
            run.step_losses.retain(|p| p[0] < resume_at);
            run.epochs.retain(|r| r.epoch < start_epoch);
        }
        TrainEvent::Step {
            epoch,
            step,
            steps_per_epoch,
            loss,
            avg_loss,
            ..
        } => {
            if run.first_step.is_none() {
                let global = epoch.saturating_sub(1) * steps_per_epoch + step;
                run.first_step = Some((global, Instant::now()));
            }
            run.epoch = epoch;
            run.step = step;
            run.steps_per_epoch = steps_per_epoch;
            run.avg_loss = avg_loss;
            run.step_losses.push([
                (epoch.saturating_sub(1) * steps_per_epoch + step) as f64,
                f64::from(loss),
            ]);
        }
        TrainEvent::Epoch(report) => run.epochs.push(report),
        TrainEvent::Checkpoint { .. } => {}
        TrainEvent::Stopped { .. } => run.phase = "stopped".into(),
        TrainEvent::Finished { .. } => {}
    }
}

/// A labelled number field with an explanation on hover: what is typed is taken when it is a
/// number within `min..=max`, else refused with a message (and the setting kept).
#[allow(clippy::too_many_arguments)]
fn number_row<T>(
    ui: &mut egui::Ui,
    fields: &mut HashMap<&'static str, Field>,
    label: &'static str,
    hint: &str,
    value: &mut T,
    min: T,
    max: T,
    enabled: bool,
) where
    T: Copy + PartialOrd + std::fmt::Display + std::str::FromStr,
{
    let field = fields.entry(label).or_default();
    let label_response = ui.label(label).on_hover_text(hint);
    let edit = egui::TextEdit::singleline(&mut field.text)
        .desired_width(110.0)
        .id_salt(label);
    let response = ui
        .add_enabled(enabled, edit)
        .labelled_by(label_response.id)
        .on_hover_text(format!("{hint}\nFrom {min} to {max}."))
        .on_disabled_hover_text("Fine-tuning keeps the base model's value");
    if response.changed() {
        match field.text.trim().parse::<T>() {
            Ok(v) if v >= min && v <= max => {
                *value = v;
                field.error = None;
            }
            Ok(_) => {
                field.error = Some(format!(
                    "{} is outside {min} to {max}; keeping {}",
                    field.text.trim(),
                    value
                ))
            }
            Err(_) => {
                field.error = Some(format!(
                    "\"{}\" is not a number from {min} to {max}; keeping {}",
                    field.text.trim(),
                    value
                ))
            }
        }
    }
    // Shows the setting itself while the field is not being edited; a refusal's message stays
    // until a valid value is typed.
    if response.lost_focus() || (!response.has_focus() && field.error.is_none()) {
        field.text = value.to_string();
    }
    ui.end_row();
}

/// The feature extraction's progress in words, with the time it has left once it knows.
fn features_text(done: usize, total: usize, eta: Option<std::time::Duration>) -> String {
    let left = eta
        .map(|d| format!(", about {} left", clock(d)))
        .unwrap_or_default();
    format!("image features {done} / {total}{left}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_extraction_says_how_long_it_has_left() {
        assert_eq!(features_text(0, 7000, None), "image features 0 / 7000");
        let text = features_text(1184, 7000, Some(std::time::Duration::from_secs(95)));
        assert!(
            text.starts_with("image features 1184 / 7000, about "),
            "{text}"
        );
        assert!(text.ends_with(&format!(
            "{} left",
            clock(std::time::Duration::from_secs(95))
        )));
    }
}
