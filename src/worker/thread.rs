//! The worker thread: its queue and the state it owns (device, encoder, loaded caption model).
//! Each command runs a job from [`crate::jobs`] and forwards the job's events to the UI.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Device;
use crossbeam_channel::{Receiver, Sender};

use super::WorkerConfig;
use super::messages::{Command, Event, ImageInput};
use crate::dataset::ImportOptions;
use crate::encoder::Encoder;
use crate::jobs::caption::{self, CaptionInput, FolderOptions};
use crate::jobs::models::{self, ModelChoice};
use crate::jobs::train::{TrainPlaces, TrainResources};
use crate::jobs::{CancelToken, Job, JobContext, JobError, JobEvent, TrainSettings};
use crate::pipeline::{self, Captioner, DecodeOptions};

/// Sends events to the UI and wakes it.
#[derive(Clone)]
pub(super) struct Outbox {
    pub(super) tx: Sender<Event>,
    pub(super) ctx: egui::Context,
}

impl Outbox {
    fn send(&self, event: Event) {
        // The UI may be gone (window closed); nothing to tell then.
        let _ = self.tx.send(event);
        self.ctx.request_repaint();
    }

    /// Sends a frequent event (a training step): the UI repaints at most every 100 ms for
    /// these, so a fast training loop does not keep the UI thread (and a CPU core) busy.
    fn send_frequent(&self, event: Event) {
        let _ = self.tx.send(event);
        self.ctx.request_repaint_after(Duration::from_millis(100));
    }

    fn failed(&self, job: Job, error: JobError) {
        self.send(Event::Failed { job, error });
    }

    /// A batch that could not run (or broke off): the error, then its end.
    fn batch_failed(&self, id: u64, error: JobError) {
        self.failed(Job::Batch, error);
        self.send(Event::BatchDone {
            id,
            done: 0,
            failed: 0,
            stopped: true,
            seconds: 0.0,
        });
    }

    /// Forwards a job event of `job` to the UI.
    fn forward(&self, job: Job, event: JobEvent) {
        // An evaluation's stages (import, features) are all reported as the evaluation's.
        let route = |stage: Job| if job == Job::Evaluate { job } else { stage };
        match event {
            JobEvent::Phase {
                job: stage,
                message,
            }
            | JobEvent::Warning {
                job: stage,
                message,
            } => self.send(Event::Progress {
                job: if job == Job::Train { job } else { route(stage) },
                done: 0,
                total: 0,
                eta: None,
                message,
            }),
            JobEvent::Progress {
                job: stage,
                done,
                total,
                eta,
            } => self.send(Event::Progress {
                job: route(stage),
                done,
                total,
                eta,
                message: match stage {
                    Job::Features => format!("image features {done} of {total}"),
                    Job::Batch => format!("captioned {done} of {total}"),
                    other => format!("{other}: {done} of {total}"),
                },
            }),
            JobEvent::Skipped {
                job: stage,
                path,
                reason,
            } => self.send(Event::Progress {
                job: route(stage),
                done: 0,
                total: 0,
                eta: None,
                message: format!("skipped {}: {reason}", path.display()),
            }),
            JobEvent::TrainStarted {
                out_dir,
                device,
                engine,
            } => self.send(Event::TrainStarted {
                out_dir,
                device,
                engine,
            }),
            JobEvent::Train(e @ crate::train::TrainEvent::Step { .. }) => {
                self.send_frequent(Event::Training(e))
            }
            JobEvent::Train(e) => self.send(Event::Training(e)),
            JobEvent::FineTune {
                base,
                base_dir,
                unknown,
            } => self.send(Event::FineTuning {
                base,
                base_dir,
                unknown,
            }),
            // Folder captions are turned into BatchItems by the batch command itself.
            JobEvent::Captioned { .. } => {}
        }
    }
}

/// The state the worker thread owns: the device, the encoder and the loaded caption model.
struct State {
    outbox: Outbox,
    config: WorkerConfig,
    device: Device,
    device_note: Option<String>,
    encoder: Option<Encoder>,
    captioner: Option<(ModelChoice, Captioner)>,
    /// The Batch panel's model when it differs from the Caption panel's.
    batch_captioner: Option<(ModelChoice, Captioner)>,
    /// The command queue, read between training steps too (see [`State::train`]).
    commands: Receiver<Command>,
    /// Commands that arrived during a long job and wait for it to end.
    deferred: VecDeque<Command>,
    /// Set when the app closes.
    abort: CancelToken,
}

pub(super) fn run(
    commands: Receiver<Command>,
    outbox: Outbox,
    config: WorkerConfig,
    abort: CancelToken,
) {
    let (device, device_note) = pipeline::pick_device();
    let mut state = State {
        outbox,
        config,
        device,
        device_note,
        encoder: None,
        captioner: None,
        batch_captioner: None,
        commands,
        deferred: VecDeque::new(),
        abort,
    };
    loop {
        let command = match state.deferred.pop_front() {
            Some(c) => c,
            None => match state.commands.recv() {
                Ok(c) => c,
                Err(_) => break,
            },
        };
        if matches!(command, Command::Shutdown) {
            break;
        }
        let job = job_of(&command);
        // A bug in a job must not take the worker down with it: report it and go on.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            state.handle(command);
        }));
        if let Err(panic) = outcome {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".to_string());
            state.outbox.failed(
                job,
                JobError::msg(format!("internal error during {job}: {what}")),
            );
        }
    }
}

fn job_of(command: &Command) -> Job {
    match command {
        Command::ImportDataset { .. } => Job::Import,
        Command::LoadModel(_) | Command::ListModels => Job::LoadModel,
        Command::Caption { .. } => Job::Caption,
        Command::CaptionBatch { .. } => Job::Batch,
        Command::Train { .. } => Job::Train,
        Command::EvaluateModel { .. } => Job::Evaluate,
        Command::Shutdown => Job::Import,
    }
}

impl State {
    fn handle(&mut self, command: Command) {
        match command {
            Command::ImportDataset { dir, options } => self.import_dataset(dir, options),
            Command::ListModels => {
                let models = models::list_all(&self.config.models_dir);
                self.outbox.send(Event::ModelsListed(models));
            }
            Command::LoadModel(choice) => {
                if let Err(e) = self.load_model(&choice) {
                    self.outbox.failed(Job::LoadModel, e);
                }
            }
            Command::Caption {
                input,
                beam,
                start_with,
            } => {
                if let Err(e) = self.caption(input, beam, start_with) {
                    self.outbox.failed(Job::Caption, e);
                }
            }
            Command::CaptionBatch {
                id,
                paths,
                model,
                options,
                cancel,
            } => self.caption_batch(id, paths, &model, &options, cancel),
            Command::Train {
                settings,
                resume,
                cancel,
            } => {
                if let Err(e) = self.train(settings, resume, cancel) {
                    self.outbox.failed(Job::Train, e);
                }
            }
            Command::EvaluateModel {
                model,
                dataset_dir,
                options,
                cancel,
            } => {
                if let Err(e) = self.evaluate(model, dataset_dir, options, cancel) {
                    self.outbox.failed(Job::Evaluate, e);
                }
            }
            Command::Shutdown => {}
        }
    }

    fn evaluate(
        &mut self,
        model: ModelChoice,
        dataset_dir: PathBuf,
        options: crate::jobs::evaluate::EvalOptions,
        cancel: CancelToken,
    ) -> Result<(), JobError> {
        let encoder = self.encoder()?.clone();
        let outbox = self.outbox.clone();
        let abort = self.abort.clone();
        let report = models::evaluate_and_store(
            &model,
            encoder,
            &self.device,
            &dataset_dir,
            &self.config.cache_dir,
            &options,
            &mut |event| {
                if abort.is_cancelled() {
                    cancel.cancel();
                }
                outbox.forward(Job::Evaluate, event);
            },
            &cancel,
        )?;
        self.outbox.send(Event::Evaluated { model, report });
        Ok(())
    }

    fn encoder(&mut self) -> Result<&Encoder, JobError> {
        if self.encoder.is_none() {
            let encoder =
                pipeline::load_encoder(&self.device).job_context(|| "loading the image encoder")?;
            self.encoder = Some(encoder);
        }
        self.encoder
            .as_ref()
            .ok_or_else(|| JobError::msg("the image encoder is not loaded"))
    }

    /// Loads a caption model (no-op when it is the one loaded).
    fn load_model(&mut self, choice: &ModelChoice) -> Result<(), JobError> {
        if self.captioner.as_ref().is_some_and(|(c, _)| c == choice) {
            return Ok(());
        }
        let started = Instant::now();
        let encoder = self.encoder()?.clone();
        let captioner = models::load_captioner(choice, encoder, &self.device)?;
        let mut description = models::describe_model(&captioner.model);
        description.push_str(&format!(", on the {}", pipeline::device_name(&self.device)));
        if let Some(note) = &self.device_note {
            description.push_str(&format!(" ({note})"));
        }
        self.captioner = Some((choice.clone(), captioner));
        self.outbox.send(Event::ModelLoaded {
            choice: choice.clone(),
            description,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    fn captioner(&mut self) -> Result<&Captioner, JobError> {
        if self.captioner.is_none() {
            self.load_model(&ModelChoice::Default)?;
        }
        self.captioner
            .as_ref()
            .map(|(_, c)| c)
            .ok_or_else(|| JobError::msg("no caption model is loaded"))
    }

    fn caption(
        &mut self,
        input: ImageInput,
        beam: usize,
        start_with: String,
    ) -> Result<(), JobError> {
        let outbox = self.outbox.clone();
        let captioner = self.captioner()?;
        caption_with(captioner, &outbox, input, beam, start_with)
    }

    /// The captioner for a batch: the loaded one when it is `choice`, else `choice` loaded
    /// beside it (so a batch never changes the Caption panel's model).
    fn batch_captioner(&mut self, choice: &ModelChoice) -> Result<&Captioner, JobError> {
        if self.captioner.as_ref().is_some_and(|(c, _)| c == choice) {
            return self.captioner();
        }
        if !self
            .batch_captioner
            .as_ref()
            .is_some_and(|(c, _)| c == choice)
        {
            self.batch_captioner = None;
            let encoder = self.encoder()?.clone();
            let captioner = models::load_captioner(choice, encoder, &self.device)?;
            self.batch_captioner = Some((choice.clone(), captioner));
        }
        self.batch_captioner
            .as_ref()
            .map(|(_, c)| c)
            .ok_or_else(|| JobError::msg("no caption model is loaded"))
    }

    fn caption_batch(
        &mut self,
        id: u64,
        paths: Vec<PathBuf>,
        model: &ModelChoice,
        options: &FolderOptions,
        cancel: CancelToken,
    ) {
        let outbox = self.outbox.clone();
        let abort = self.abort.clone();
        let captioner = match self.batch_captioner(model) {
            Ok(c) => c,
            Err(e) => {
                outbox.batch_failed(id, e);
                return;
            }
        };
        let result = caption::caption_folder(
            captioner,
            &paths,
            options,
            &mut |event| {
                if abort.is_cancelled() {
                    cancel.cancel();
                }
                match event {
                    JobEvent::Captioned { index, result, .. } => {
                        outbox.send(Event::BatchItem { id, index, result })
                    }
                    other => outbox.forward(Job::Batch, other),
                }
            },
            &cancel,
        );
        match result {
            Ok(report) => outbox.send(Event::BatchDone {
                id,
                done: report.captioned,
                failed: report.failed,
                stopped: report.stopped,
                seconds: report.seconds,
            }),
            Err(e) => {
                outbox.batch_failed(id, e);
            }
        }
    }

    fn train(
        &mut self,
        settings: TrainSettings,
        resume: bool,
        cancel: CancelToken,
    ) -> Result<(), JobError> {
        let encoder = self.encoder()?.clone();
        // Have a caption model ready, so photos dropped during training are captioned between
        // two training steps instead of waiting for the run to end.
        if self.captioner.is_none()
            && let Err(e) = self.load_model(&ModelChoice::Default)
        {
            self.outbox
                .failed(Job::LoadModel, e.context("captions during training"));
        }
        let outbox = self.outbox.clone();
        let abort = self.abort.clone();
        let captioner = self.captioner.as_ref().map(|(_, c)| c);
        let commands = &self.commands;
        let deferred = &mut self.deferred;
        let models_dir = &self.config.models_dir;
        let places = TrainPlaces {
            cache_dir: self.config.cache_dir.clone(),
            models_dir: self.config.models_dir.clone(),
        };
        let outcome = crate::jobs::train::train(
            &settings,
            &places,
            resume,
            TrainResources {
                device: &self.device,
                encoder: &encoder,
            },
            &mut |event| {
                if abort.is_cancelled() {
                    cancel.cancel();
                }
                // Between two training steps: caption dropped photos, answer quick questions,
                // keep everything else for after the run.
                while let Ok(command) = commands.try_recv() {
                    match command {
                        Command::Caption {
                            input,
                            beam,
                            start_with,
                        } => {
                            let result = match captioner {
                                Some(c) => caption_with(c, &outbox, input, beam, start_with),
                                None => Err(JobError::msg("no caption model is loaded")),
                            };
                            if let Err(e) = result {
                                outbox.failed(Job::Caption, e);
                            }
                        }
                        Command::ListModels => {
                            outbox.send(Event::ModelsListed(models::list_all(models_dir)))
                        }
                        Command::Shutdown => {
                            cancel.cancel();
                            deferred.push_back(Command::Shutdown);
                        }
                        other => deferred.push_back(other),
                    }
                }
                outbox.forward(Job::Train, event);
            },
            &cancel,
        )?;
        self.outbox.send(Event::TrainFinished(outcome));
        Ok(())
    }

    /// Imports on a thread of its own: reading a big dataset needs no model and must not wait
    /// behind training.
    fn import_dataset(&mut self, dir: PathBuf, options: ImportOptions) {
        let outbox = self.outbox.clone();
        let spawned = std::thread::Builder::new()
            .name("dataset-import".into())
            .spawn(move || {
                let start = Instant::now();
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::jobs::import::import(
                        &dir,
                        &options,
                        &mut |e| outbox.forward(Job::Import, e),
                        &CancelToken::new(),
                    )
                    .map(|d| {
                        let summary = d.summary();
                        (d, summary)
                    })
                }));
                match result {
                    Ok(Ok((dataset, summary))) => outbox.send(Event::DatasetImported {
                        dataset: Arc::new(dataset),
                        summary: Box::new(summary),
                        seconds: start.elapsed().as_secs_f64(),
                    }),
                    Ok(Err(e)) => outbox.failed(Job::Import, e),
                    Err(_) => outbox.failed(
                        Job::Import,
                        JobError::msg(format!("internal error while importing {}", dir.display())),
                    ),
                }
            });
        if let Err(e) = spawned {
            self.outbox
                .failed(Job::Import, JobError::new(e).context("starting the import"));
        }
    }
}

/// Captions one image (its captions starting with `start_with`, if not empty) and sends the
/// result (with a preview) to the UI.
fn caption_with(
    captioner: &Captioner,
    outbox: &Outbox,
    input: ImageInput,
    beam: usize,
    start_with: String,
) -> Result<(), JobError> {
    let source = input.label();
    let input = match input {
        ImageInput::File(path) => CaptionInput::File(path),
        ImageInput::Pasted(img) => CaptionInput::Pixels {
            label: source.clone(),
            image: color_image_to_rgb(&img)?,
        },
    };
    let options = DecodeOptions {
        beam: beam.max(1),
        start_with,
        ..DecodeOptions::default()
    };
    let one =
        caption::caption_one(captioner, input, &options).map_err(|e| e.context(source.clone()))?;
    outbox.send(Event::Captioned {
        source,
        output: one.result,
        preview: Some(Arc::new(preview_of(&one.image))),
    });
    Ok(())
}

fn color_image_to_rgb(img: &egui::ColorImage) -> Result<image::RgbImage, JobError> {
    let [w, h] = img.size;
    let mut raw = Vec::with_capacity(w * h * 3);
    for p in &img.pixels {
        raw.extend_from_slice(&[p.r(), p.g(), p.b()]);
    }
    image::RgbImage::from_raw(w as u32, h as u32, raw)
        .ok_or_else(|| JobError::msg(format!("pasted image has an inconsistent size {w}x{h}")))
}

/// The image scaled to at most 640 pixels on its longer side, for display.
fn preview_of(rgb: &image::RgbImage) -> egui::ColorImage {
    let (w, h) = rgb.dimensions();
    let scale = (640.0 / w.max(h).max(1) as f32).min(1.0);
    let (pw, ph) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    let small = if (pw, ph) == (w, h) {
        rgb.clone()
    } else {
        image::imageops::resize(rgb, pw, ph, image::imageops::FilterType::Triangle)
    };
    egui::ColorImage::from_rgb([pw as usize, ph as usize], small.as_raw())
}
