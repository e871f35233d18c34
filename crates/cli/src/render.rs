//! What the commands share at run time: Ctrl-C handling, the device, loading a caption model,
//! and rendering job events on the terminal (progress bars, messages, JSON lines).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

use captioner::jobs::models::{self, ModelChoice};
use captioner::jobs::{CancelToken, Job, JobEvent};
use captioner::pipeline::{self, Captioner};
use captioner::train::TrainEvent;

/// A flag set by Ctrl-C, so long jobs stop cleanly (a second Ctrl-C kills at once).
pub fn interrupt_token() -> CancelToken {
    let token = CancelToken::new();
    let t = token.clone();
    let second = Arc::new(AtomicBool::new(false));
    let _ = ctrlc::set_handler(move || {
        if second.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        t.cancel();
        eprintln!("\nstopping after the current batch (Ctrl-C again to quit at once)");
    });
    token
}

/// The device to run on, named on stderr (with a note when the preferred one is missing).
pub fn device() -> candle_core::Device {
    let (device, note) = pipeline::pick_device();
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    eprintln!("device: {}", pipeline::device_name(&device));
    device
}

/// The encoder and the caption model in `model` (the shipped model when `None`).
pub fn load_captioner(
    model: Option<&Path>,
    device: &candle_core::Device,
) -> anyhow::Result<Captioner> {
    let encoder = pipeline::load_encoder(device)?;
    Ok(models::load_captioner(
        &ModelChoice::from_dir(model),
        encoder,
        device,
    )?)
}

/// `SUCCESS` when nothing failed, else `FAILURE`.
pub fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!(
        "{what} [{{bar:30}}] {{pos}}/{{len}} {{per_sec}} elapsed {{elapsed_precise}} ETA {{eta}} {{msg}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Renders job events on the terminal: a progress bar per stage and messages on stderr, or,
/// with `json_lines`, training events as JSON lines on stdout. `quiet` hides bars and phase
/// messages (the command prints one JSON document at the end).
pub struct Renderer {
    quiet: bool,
    json_lines: bool,
    bar: Option<(Job, ProgressBar)>,
    /// Where `--resume` continues (named when training stops).
    out_dir: Option<PathBuf>,
}

impl Renderer {
    /// A renderer; see the type's documentation for `quiet` and `json_lines`.
    pub fn new(quiet: bool, json_lines: bool) -> Renderer {
        Renderer {
            quiet,
            json_lines,
            bar: None,
            out_dir: None,
        }
    }

    /// A message on stderr (above the progress bar).
    pub fn message(&self, text: &str) {
        // One message, one line: a file name with a line break must not split it.
        let text = captioner::files::shown_text(text);
        match &self.bar {
            Some((_, bar)) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// A result line on stdout (above the progress bar).
    pub fn output(&self, text: &str) {
        let text = captioner::files::shown_text(text);
        match &self.bar {
            Some((_, bar)) => bar.suspend(|| println!("{text}")),
            None => println!("{text}"),
        }
    }

    /// Clears the progress bar, if there is one.
    pub fn finish_bar(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn bar_for(&mut self, job: Job, len: u64, title: &str) -> &ProgressBar {
        if !matches!(&self.bar, Some((j, b)) if *j == job && b.length() == Some(len)) {
            self.finish_bar();
            let bar = if self.quiet || self.json_lines {
                ProgressBar::hidden()
            } else {
                progress_bar(len, title)
            };
            self.bar = Some((job, bar));
        }
        match &self.bar {
            Some((_, bar)) => bar,
            None => unreachable!("the bar was just set"),
        }
    }

    /// Shows one job event.
    pub fn event(&mut self, event: JobEvent) {
        match event {
            JobEvent::Phase { message, .. } => {
                if !self.quiet && !self.json_lines {
                    self.message(&message);
                }
            }
            JobEvent::Warning { message, .. } => self.message(&format!("warning: {message}")),
            JobEvent::Skipped { path, reason, .. } => {
                self.message(&format!("skipped {}: {reason}", path.display()))
            }
            JobEvent::Progress {
                job, done, total, ..
            } => {
                let title = match job {
                    Job::Features => "features",
                    Job::Batch => "captioning",
                    _ => job.name(),
                };
                let bar = self.bar_for(job, total as u64, title);
                bar.set_position(done as u64);
                if done >= total {
                    self.finish_bar();
                }
            }
            JobEvent::TrainStarted {
                out_dir,
                device,
                engine,
            } => {
                if !self.json_lines {
                    self.message(&format!("training on the {device} ({engine})"));
                }
                self.out_dir = Some(out_dir);
            }
            JobEvent::FineTune {
                base,
                base_dir,
                unknown,
            } => {
                if self.json_lines {
                    println!(
                        "{}",
                        serde_json::json!({"event": "fine_tune", "base": base,
                            "base_dir": base_dir, "words": unknown.total,
                            "unknown_words": unknown.unknown,
                            "distinct_unknown_words": unknown.words.len()})
                    );
                } else {
                    self.message(&format!(
                        "fine-tuning {base} ({}): {}",
                        base_dir.display(),
                        unknown.describe(10)
                    ));
                }
            }
            JobEvent::Train(e) => self.train_event(e),
            JobEvent::Captioned { .. } => {}
        }
    }

    fn train_event(&mut self, event: TrainEvent) {
        if self.json_lines {
            if let Some(line) = event_json(&event) {
                println!("{line}");
            }
            return;
        }
        match &event {
            TrainEvent::Started {
                start_epoch,
                start_step,
                ..
            } => {
                if *start_epoch > 1 || *start_step > 0 {
                    self.message(&format!(
                        "resuming at epoch {start_epoch}, after step {start_step}"
                    ));
                }
            }
            TrainEvent::Step {
                epoch,
                step,
                steps_per_epoch,
                avg_loss,
                ..
            } => {
                let bar = self.bar_for(
                    Job::Train,
                    *steps_per_epoch as u64,
                    &format!("epoch {epoch}"),
                );
                bar.set_position(*step as u64);
                bar.set_message(format!("loss {avg_loss:.3}"));
            }
            TrainEvent::Epoch(r) => {
                self.finish_bar();
                println!(
                    "epoch {:>3}  train loss {:.4}  dev loss {:.4}  dev BLEU-4 {:.4}{}  lr {:.2e}  {:.1} s  ETA {:.0} s",
                    r.epoch,
                    r.train_loss,
                    r.dev_loss,
                    r.dev_bleu4,
                    if r.improved { " *" } else { "  " },
                    r.lr,
                    r.seconds,
                    r.eta_seconds
                );
                for (name, caption) in &r.samples {
                    println!("    {name}: {caption}");
                }
            }
            TrainEvent::Checkpoint { .. } => {}
            TrainEvent::Stopped { epoch, step } => {
                self.finish_bar();
                let out = self
                    .out_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                eprintln!(
                    "stopped in epoch {epoch} after step {step}; continue with --resume --out {out}"
                );
            }
            TrainEvent::Finished {
                best_epoch,
                best_bleu4,
            } => {
                println!("best: epoch {best_epoch} with dev BLEU-4 {best_bleu4:.4}");
            }
        }
    }
}

/// One JSON line per training event (steps every 50 only, to keep logs short).
fn event_json(event: &TrainEvent) -> Option<String> {
    let v = match event {
        TrainEvent::Started {
            total_epochs,
            steps_per_epoch,
            start_epoch,
            start_step,
            train_captions,
            dev_captions,
            summary,
            ..
        } => serde_json::json!({"event": "started", "total_epochs": total_epochs,
            "steps_per_epoch": steps_per_epoch, "start_epoch": start_epoch, "start_step": start_step,
            "train_captions": train_captions, "dev_captions": dev_captions,
            "parameters": summary.total_params}),
        TrainEvent::Step {
            epoch,
            step,
            loss,
            avg_loss,
            lr,
            ..
        } => {
            if step % 50 != 0 {
                return None;
            }
            serde_json::json!({"event": "step", "epoch": epoch, "step": step, "loss": loss, "avg_loss": avg_loss, "lr": lr})
        }
        TrainEvent::Epoch(r) => {
            let mut v = serde_json::to_value(r).ok()?;
            v["event"] = "epoch".into();
            v
        }
        TrainEvent::Checkpoint { path, best } => {
            serde_json::json!({"event": "checkpoint", "path": path, "best": best})
        }
        TrainEvent::Stopped { epoch, step } => {
            serde_json::json!({"event": "stopped", "epoch": epoch, "step": step})
        }
        TrainEvent::Finished {
            best_epoch,
            best_bleu4,
        } => {
            serde_json::json!({"event": "finished", "best_epoch": best_epoch, "best_bleu4": best_bleu4})
        }
    };
    Some(v.to_string())
}
