//! The Train panel: settings, Start / Stop / Resume, live charts of the step loss, the epoch
//! train and dev losses and dev BLEU-4, sample captions of fixed dev images every epoch, epoch
//! time and ETA, the device, and a summary of the model being trained.

use std::path::PathBuf;
use std::time::Instant;

use egui_plot::{Legend, Line, Plot, PlotPoints, Points};
use serde::{Deserialize, Serialize};

use super::Shared;
use super::status::clock;
use crate::dataset::Cleaning;
use crate::decoder::DecoderKind;
use crate::train::{EpochReport, ModelSummary, TrainEvent};
use crate::worker::{CancelToken, Command, Event, Job, TrainSettings};

#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainPanel {
    pub settings: TrainSettings,
    /// The folder of the latest run (for Resume).
    pub last_run: Option<PathBuf>,

    #[serde(skip)]
    run: Option<Run>,
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
    pub finished: Option<String>,
    pub error: Option<String>,
}

impl TrainPanel {
    pub fn run(&self) -> Option<&Run> {
        self.run.as_ref()
    }

    pub fn is_running(&self) -> bool {
        self.run.as_ref().is_some_and(|r| r.running)
    }

    /// Starts a new run (`resume == false`) or continues the latest one.
    pub fn start(&mut self, dataset_dir: Option<PathBuf>, resume: bool, shared: &mut Shared) {
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
            Some(crate::jobs::models::new_run_dir(
                &shared.paths.models_dir,
                settings
                    .dataset_dir
                    .as_deref()
                    .unwrap_or(std::path::Path::new("dataset")),
                settings.decoder,
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
            ..Run::default()
        };
        // A resumed run keeps the charts of the run it continues.
        if resume && let Some(old) = self.run.take() {
            run.step_losses = old.step_losses;
            run.epochs = old.epochs;
            run.summary = old.summary;
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
        let Some(run) = self.run.as_mut() else {
            return;
        };
        match event {
            Event::Progress {
                job: Job::Features,
                done,
                total,
                message,
                ..
            } => {
                if total > 0 {
                    run.features = Some((done, total));
                    run.phase = "extracting image features".into();
                } else {
                    shared.status.warn(message);
                }
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
            Event::TrainFinished(crate::jobs::TrainOutcome {
                out_dir,
                stopped,
                best_bleu4,
                epochs_completed,
                best_dir,
                ..
            }) => {
                run.running = false;
                let text = if stopped {
                    format!(
                        "stopped; Resume continues from {}",
                        out_dir.join(crate::train::LAST_DIR).display()
                    )
                } else {
                    format!(
                        "finished after {epochs_completed} epochs; best dev BLEU-4 {best_bleu4:.4}, model in {}",
                        best_dir.display()
                    )
                };
                shared.status.info(format!("training {text}"));
                run.phase = if stopped { "stopped" } else { "finished" }.into();
                run.finished = Some(text);
                shared.send(Command::ListModels);
            }
            Event::Failed { job, error } => {
                run.running = false;
                run.phase = "failed".into();
                let message = error.report();
                shared.status.error(format!("{job} failed: {message}"));
                run.error = Some(message);
            }
            _ => {}
        }
    }

    pub fn panel_ui(
        &mut self,
        ui: &mut egui::Ui,
        shared: &mut Shared,
        dataset_dir: Option<PathBuf>,
    ) {
        egui::Panel::left("train-settings")
            .resizable(false)
            .default_size(300.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .show(ui, |ui| self.settings_ui(ui, shared, dataset_dir));
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
    ) {
        let running = self.is_running();
        ui.heading("Settings");
        let dataset = dataset_dir.clone().or(self.settings.dataset_dir.clone());
        match &dataset {
            Some(d) => ui.label(format!("Dataset: {}", d.display())),
            None => ui.label("Dataset: none (import one on the Dataset panel)"),
        };
        ui.add_enabled_ui(!running, |ui| {
            let s = &mut self.settings;
            egui::Grid::new("train-grid").num_columns(2).show(ui, |ui| {
                ui.label("Epochs");
                ui.add(egui::DragValue::new(&mut s.train.epochs).range(1..=500));
                ui.end_row();
                ui.label("Batch size");
                ui.add(egui::DragValue::new(&mut s.train.batch_size).range(1..=1024));
                ui.end_row();
                ui.label("Learning rate");
                ui.add(
                    egui::DragValue::new(&mut s.train.lr)
                        .range(1e-6..=1.0)
                        .speed(1e-4)
                        .max_decimals(5),
                );
                ui.end_row();
                ui.label("Decoder");
                egui::ComboBox::from_id_salt("decoder-kind")
                    .selected_text(s.decoder.to_string())
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut s.decoder, DecoderKind::Merge, "merge (tutorial)");
                        ui.selectable_value(
                            &mut s.decoder,
                            DecoderKind::Inject,
                            "inject (Show and Tell)",
                        );
                    });
                ui.end_row();
                ui.label("Embedding size");
                ui.add(egui::DragValue::new(&mut s.embed_dim).range(8..=2048));
                ui.end_row();
                ui.label("LSTM size");
                ui.add(egui::DragValue::new(&mut s.hidden_dim).range(8..=2048));
                ui.end_row();
                ui.label("Dropout");
                ui.add(
                    egui::DragValue::new(&mut s.dropout)
                        .range(0.0..=0.9)
                        .speed(0.01),
                );
                ui.end_row();
                ui.label("Vocabulary min count");
                ui.add(egui::DragValue::new(&mut s.import.min_count).range(1..=100));
                ui.end_row();
                ui.label("Cleaning");
                egui::ComboBox::from_id_salt("cleaning")
                    .selected_text(s.import.cleaning.name())
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut s.import.cleaning, Cleaning::Natural, "natural");
                        ui.selectable_value(&mut s.import.cleaning, Cleaning::Tutorial, "tutorial");
                    });
                ui.end_row();
                ui.label("Early-stop patience");
                ui.add(egui::DragValue::new(&mut s.train.early_stop_patience).range(0..=50));
                ui.end_row();
                ui.label("Dev images for BLEU");
                ui.add(egui::DragValue::new(&mut s.train.dev_bleu_images).range(1..=5000));
                ui.end_row();
            });
        });
        ui.separator();
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!running && dataset.is_some(), egui::Button::new("Start"))
                .on_hover_text("Train a new model from scratch")
                .clicked()
            {
                self.start(dataset.clone(), false, shared);
            }
            if ui
                .add_enabled(running, egui::Button::new("Stop"))
                .on_hover_text("Stop after the current batch; the checkpoint can be resumed")
                .clicked()
            {
                self.stop();
            }
            let can_resume = !running && dataset.is_some() && self.last_run.is_some();
            if ui
                .add_enabled(can_resume, egui::Button::new("Resume"))
                .on_hover_text("Continue the latest run from its last checkpoint")
                .clicked()
            {
                self.start(dataset.clone(), true, shared);
            }
        });
        if let Some(dir) = &self.last_run {
            ui.small(format!("Run folder: {}", dir.display()));
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
                egui::ProgressBar::new(done as f32 / total.max(1) as f32)
                    .text(format!("image features {done} / {total}")),
            );
        }
        if run.steps_per_epoch > 0 {
            let last = run.epochs.last();
            let eta = last.map(|r| r.eta_seconds).unwrap_or(f64::NAN);
            let per_epoch = last.map(|r| r.seconds).unwrap_or(f64::NAN);
            ui.add(
                egui::ProgressBar::new(run.step as f32 / run.steps_per_epoch as f32).text(format!(
                    "epoch {} of {}, step {} / {}, loss {:.3}",
                    run.epoch, run.total_epochs, run.step, run.steps_per_epoch, run.avg_loss
                )),
            );
            if per_epoch.is_finite() {
                ui.label(format!(
                    "last epoch {:.1} s, about {} left",
                    per_epoch,
                    clock(std::time::Duration::from_secs_f64(eta.max(0.0)))
                ));
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
            Plot::new("dev-bleu")
                .height(200.0)
                .allow_scroll(false)
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
            egui::Grid::new("samples").striped(true).show(ui, |ui| {
                for (image, caption) in &last.samples {
                    ui.label(image);
                    ui.label(caption);
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
