//! The command line's model commands: `classify`, `features`, `train`, `caption`, `eval`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{BatchArgs, CaptionArgs, ClassifyArgs, EvalArgs, FeaturesArgs, TrainArgs};
use crate::dataset::Split;
use crate::decoder::DecoderKind;
use crate::encoder::ClassNames;
use crate::export::{self, ExportKind, ExportRow, MetadataTarget};
use crate::features::{ExtractOptions, FeatureCache};
use crate::jobs::caption::{self, CaptionInput, FolderOptions};
use crate::jobs::evaluate::EvalOptions;
use crate::jobs::models::{self, ModelChoice};
use crate::jobs::train::{TrainPlaces, TrainResources, TrainSettings};
use crate::jobs::{CancelToken, Job, JobEvent};
use crate::pipeline::{self, Captioner, DecodeOptions};
use crate::train::{TrainConfig, TrainEvent};

/// A flag set by Ctrl-C, so long jobs stop cleanly (a second Ctrl-C kills at once).
fn interrupt_token() -> CancelToken {
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

fn device() -> candle_core::Device {
    let (device, note) = pipeline::pick_device();
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    eprintln!("device: {}", pipeline::device_name(&device));
    device
}

pub fn classify(args: &ClassifyArgs) -> anyhow::Result<ExitCode> {
    let device = device();
    let encoder = pipeline::load_encoder(&device)?;
    let names_path = pipeline::models_root().join(pipeline::CLASS_NAMES);
    let names = ClassNames::load(&names_path)?;
    let mut failed = 0;
    let mut json = Vec::new();
    for path in &args.images {
        let result = encoder
            .preprocess_file(path)
            .map_err(anyhow::Error::from)
            .and_then(|img| Ok(encoder.encode(&[img])?))
            .and_then(|out| Ok(encoder.classify(&out, &names, args.top.max(1))?));
        match result {
            Ok(mut preds) => {
                let preds = preds.pop().unwrap_or_default();
                if args.json {
                    json.push(serde_json::json!({
                        "image": path,
                        "top": preds.iter().map(|p| serde_json::json!({
                            "index": p.index, "name": p.label, "probability": p.probability
                        })).collect::<Vec<_>>(),
                    }));
                } else {
                    println!("{}", path.display());
                    for p in &preds {
                        println!(
                            "  {:>4}  {:>6.2}%  {}",
                            p.index,
                            100.0 * p.probability,
                            p.label
                        );
                    }
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
                if args.json {
                    json.push(serde_json::json!({"image": path, "error": format!("{e:#}")}));
                }
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
struct Renderer {
    quiet: bool,
    json_lines: bool,
    bar: Option<(Job, ProgressBar)>,
    /// Where `--resume` continues (named when training stops).
    out_dir: Option<PathBuf>,
}

impl Renderer {
    fn new(quiet: bool, json_lines: bool) -> Renderer {
        Renderer {
            quiet,
            json_lines,
            bar: None,
            out_dir: None,
        }
    }

    fn message(&self, text: &str) {
        match &self.bar {
            Some((_, bar)) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// A result line on stdout (above the progress bar).
    fn output(&self, text: &str) {
        match &self.bar {
            Some((_, bar)) => bar.suspend(|| println!("{text}")),
            None => println!("{text}"),
        }
    }

    fn finish_bar(&mut self) {
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

    fn event(&mut self, event: JobEvent) {
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

pub fn features(args: &FeaturesArgs) -> anyhow::Result<ExitCode> {
    let cancel = interrupt_token();
    let mut renderer = Renderer::new(args.json, false);
    let events = &mut |e| renderer.event(e);
    let ds = crate::jobs::import::import(&args.dir, &args.text.import_options(), events, &cancel)?;
    let device = device();
    let encoder = pipeline::load_encoder(&device)?;
    let cache = FeatureCache::new(
        &crate::paths::cache_dir(args.cache.as_deref()),
        encoder.id(),
    );
    let paths: Vec<PathBuf> = ds.images.iter().map(|e| e.path.clone()).collect();
    let options = ExtractOptions {
        batch_size: args.batch.max(1),
        spatial: args.spatial,
        ..ExtractOptions::default()
    };
    let report =
        crate::jobs::extract::extract(&encoder, &cache, &paths, &options, events, &cancel)?;
    renderer.finish_bar();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "images": report.total,
                "cached": report.cached,
                "computed": report.computed,
                "failed": report.failed.iter().map(|(p, r)| serde_json::json!({"image": p, "reason": r})).collect::<Vec<_>>(),
                "stopped": report.stopped,
                "seconds": report.seconds,
                "cache": cache.dir(),
                "encoder": encoder.id(),
            }))?
        );
    } else {
        println!(
            "{} images: {} computed, {} already cached, {} skipped, in {:.1} s{}",
            report.total,
            report.computed,
            report.cached,
            report.failed.len(),
            report.seconds,
            if report.stopped {
                " (stopped early; run again to resume)"
            } else {
                ""
            }
        );
        println!("cache: {}", cache.dir().display());
    }
    Ok(if report.stopped {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// The training settings of `captioner train`'s arguments.
pub fn train_settings(args: &TrainArgs) -> anyhow::Result<TrainSettings> {
    let decoder = match args.decoder.as_str() {
        "merge" => DecoderKind::Merge,
        "inject" => DecoderKind::Inject,
        "attention" => DecoderKind::Attention,
        other => {
            anyhow::bail!("--decoder must be `merge`, `inject` or `attention`, not `{other}`")
        }
    };
    let defaults = TrainSettings::default();
    let attention = decoder == DecoderKind::Attention;
    // The attention decoder's defaults are the PyTorch baseline's.
    let hidden = args
        .hidden
        .unwrap_or(if attention { 512 } else { defaults.hidden_dim });
    let lr = args
        .lr
        .unwrap_or(if attention { 4e-4 } else { defaults.train.lr });
    if args.resume && args.out.is_none() {
        anyhow::bail!("--resume needs --out DIR: the folder of the run to continue");
    }
    Ok(TrainSettings {
        dataset_dir: Some(args.dir.clone()),
        import: args.text.import_options(),
        decoder,
        embed_dim: args.embed,
        hidden_dim: hidden,
        attention_dim: args.attention_dim,
        dropout: args.dropout,
        train: TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch,
            lr,
            early_stop_patience: args.patience,
            dev_bleu_images: args.dev_bleu_images,
            seed: args.seed,
            engine: args.engine,
            ..TrainConfig::default()
        },
        out_dir: args.out.clone(),
        from: args.from.as_ref().map(|f| {
            if f.as_os_str() == "default" && !f.exists() {
                pipeline::default_model_dir()
            } else {
                f.clone()
            }
        }),
    })
}

pub fn train(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let settings = train_settings(args)?;
    let cancel = interrupt_token();
    let device = device();
    let encoder = pipeline::load_encoder(&device)?;
    let places = TrainPlaces {
        cache_dir: crate::paths::cache_dir(args.cache.as_deref()),
        models_dir: crate::jobs::train::default_models_dir(),
    };
    let mut renderer = Renderer::new(false, args.json);
    let outcome = crate::jobs::train::train(
        &settings,
        &places,
        args.resume,
        TrainResources {
            device: &device,
            encoder: &encoder,
        },
        &mut |e| renderer.event(e),
        &cancel,
    )?;
    renderer.finish_bar();
    if outcome.stopped_in_features {
        eprintln!("stopped during feature extraction; finished features are cached");
    } else if !args.json {
        println!("best model: {}", outcome.best_dir.display());
        println!("last checkpoint: {}", outcome.last_dir.display());
    }
    Ok(if outcome.stopped {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
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

fn decode_options(d: &crate::cli::DecodeArgs) -> anyhow::Result<DecodeOptions> {
    if d.max_len == 0 {
        anyhow::bail!("--max-len must be at least 1");
    }
    if d.beam == 0 {
        anyhow::bail!("--beam must be at least 1");
    }
    if !d.length_alpha.is_finite() || !(0.0..=4.0).contains(&d.length_alpha) {
        anyhow::bail!("--length-alpha must be between 0 and 4");
    }
    Ok(DecodeOptions {
        beam: d.beam,
        max_len: d.max_len,
        search: crate::decoder::SearchOptions {
            block_ngram: d.block_ngram,
            length_alpha: d.length_alpha,
        },
    })
}

fn load_captioner(
    model: Option<&std::path::Path>,
    device: &candle_core::Device,
) -> anyhow::Result<Captioner> {
    let encoder = pipeline::load_encoder(device)?;
    Ok(models::load_captioner(
        &ModelChoice::from_dir(model),
        encoder,
        device,
    )?)
}

pub fn caption(args: &CaptionArgs) -> anyhow::Result<ExitCode> {
    let images: Vec<&PathBuf> = args.images.iter().chain(&args.image).collect();
    if images.is_empty() {
        anyhow::bail!("no image given: captioner caption PHOTO.jpg (or -i PHOTO.jpg)");
    }
    let options = decode_options(&args.decode)?;
    let device = device();
    let captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    if let Some(note) = &captioner.trust_note {
        eprintln!("note: {note}");
    }
    let mut failed = 0;
    let mut json = Vec::new();
    for path in images {
        match caption::caption_one(&captioner, CaptionInput::File(path.clone()), &options) {
            Ok(one) => {
                let c = one.result;
                if let Some(dir) = &args.attention {
                    match &c.attention {
                        Some(maps) => {
                            let stem = path
                                .file_stem()
                                .map(|s| s.to_string_lossy().into_owned())
                                .unwrap_or_else(|| "photo".into());
                            let words: Vec<String> =
                                c.words.iter().map(|w| w.word.clone()).collect();
                            match crate::attention_view::write_word_pngs(
                                dir, &stem, &one.image, &words, maps,
                            ) {
                                Ok(files) => eprintln!(
                                    "{}: {} attention maps in {}",
                                    path.display(),
                                    files.len(),
                                    dir.display()
                                ),
                                Err(e) => {
                                    failed += 1;
                                    eprintln!("error: {}: attention maps: {e}", path.display());
                                }
                            }
                        }
                        None => {
                            failed += 1;
                            eprintln!(
                                "error: {}: no attention maps: {}",
                                path.display(),
                                no_attention_reason(&captioner)
                            );
                        }
                    }
                }
                if args.json {
                    let row =
                        ExportRow::machine(path.display().to_string(), path.clone(), &c, "", "");
                    json.push(serde_json::to_value(&row)?);
                } else if args.verbose {
                    println!("{}: {}", path.display(), c.text);
                    println!("  {}", trust_line(&c, captioner.trust_note.as_deref()));
                    println!("  tags: {}", c.tags.join(", "));
                    let words: Vec<String> = c
                        .words
                        .iter()
                        .map(|w| format!("{} ({:.0}%)", w.word, 100.0 * w.probability))
                        .collect();
                    println!("  words: {}", words.join(" "));
                    for a in c.alternatives.iter().skip(1) {
                        println!("  alt {:>7.3}  {}", a.score, a.text);
                    }
                    println!("  {:.0} ms", c.millis);
                } else if args.images.len() + args.image.len() == 1 {
                    println!("{}", c.text);
                } else {
                    println!("{}: {}", path.display(), c.text);
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {}", path.display(), e.report());
                if args.json {
                    json.push(serde_json::json!({"image": path, "error": e.report()}));
                }
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Why a model gives no attention maps, in words.
pub fn no_attention_reason(captioner: &pipeline::Captioner) -> String {
    format!(
        "this model's {} decoder sees the photo as one pooled vector, so there is no map of \
         where it looked (models trained with --decoder attention have them)",
        captioner.model.config.decoder.kind
    )
}

pub fn eval(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let split = match args.split.as_str() {
        "train" => Split::Train,
        "dev" => Split::Dev,
        "test" => Split::Test,
        other => anyhow::bail!("--split must be train, dev or test, not `{other}`"),
    };
    let options = EvalOptions {
        split,
        import: args.text.import_options(),
        decode: decode_options(&args.decode)?,
    };
    let cancel = interrupt_token();
    let device = device();
    let captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    let mut renderer = Renderer::new(args.json, false);
    let report = crate::jobs::evaluate::evaluate(
        &captioner,
        &args.dir,
        &crate::paths::cache_dir(args.cache.as_deref()),
        &options,
        &mut |e| renderer.event(e),
        &cancel,
    )?;
    renderer.finish_bar();
    if args.store {
        crate::jobs::models::store_evaluation(&captioner.model_dir, &args.dir, &report)?;
        eprintln!(
            "stored in {}",
            captioner
                .model_dir
                .join(crate::model_dir::META_FILE)
                .display()
        );
    }
    let mix = if args.extra.is_empty() {
        None
    } else {
        let m = crate::jobs::evaluate::evaluate_mix(
            &captioner,
            &args.dir,
            &crate::paths::cache_dir(args.cache.as_deref()),
            &options,
            &args.extra,
            &mut |e| renderer.event(e),
            &cancel,
        )?;
        renderer.finish_bar();
        Some(m)
    };
    if args.json {
        match &mix {
            Some(m) => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"eval": report, "mix": m}))?
            ),
            None => println!("{}", serde_json::to_string_pretty(&report)?),
        }
    } else {
        println!(
            "{} split, {} images, {}: BLEU-1 {:.4}  BLEU-2 {:.4}  BLEU-3 {:.4}  BLEU-4 {:.4}  CIDEr-D {:.4}",
            report.split,
            report.images,
            if report.beam <= 1 {
                "greedy".to_string()
            } else {
                format!("beam {}", report.beam)
            },
            report.bleu[0],
            report.bleu[1],
            report.bleu[2],
            report.bleu[3],
            report.cider_d
        );
        println!("model: {}", captioner.model_dir.display());
        match &report.trust {
            Some(t) => {
                let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
                println!(
                    "confidence: AUROC {} (word probability {}) for telling the {} bad captions (per-photo CIDEr-D < {}) from the good",
                    f(t.auroc_confidence),
                    f(t.auroc_word_geomean),
                    t.bad,
                    crate::trust::calibration::ACCEPTABLE_CIDER
                );
                println!(
                    "needs_review: {} flagged, precision {:.3}, recall {:.3}, good captions flagged {:.1}%",
                    t.review.flagged,
                    t.review.precision,
                    t.review.recall,
                    100.0 * t.review.good_flagged_rate
                );
            }
            None => {
                if let Some(note) = &captioner.trust_note {
                    println!("no confidence figures: {note}");
                }
            }
        }
        if !report.skipped.is_empty() {
            println!("skipped {} images", report.skipped.len());
        }
        if let Some(m) = &mix {
            print_mix(m);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The figures of a split mixed with extra photos (`eval --extra`, `calibrate --unfamiliar`).
fn print_mix(m: &crate::trust::fit::MixFigures) {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    println!(
        "{} split + {} extra photos ({} with bad captions): AUROC confidence {}  word probability {}  familiarity (extra vs split) {}",
        m.dev_photos,
        m.unfamiliar_photos,
        m.unfamiliar_bad,
        f(m.auroc_confidence),
        f(m.auroc_word_geomean),
        f(m.auroc_similarity_unfamiliar_vs_dev)
    );
    println!(
        "  with the extra photos weighted to half of the mix: AUROC confidence {}  word probability {}",
        f(m.auroc_confidence_balanced),
        f(m.auroc_word_geomean_balanced)
    );
    println!(
        "  needs_review: {:.0}% of the extra photos' bad captions, {:.1}% of the split's good captions; precision {:.3}",
        100.0 * m.unfamiliar_bad_flagged,
        100.0 * m.dev_good_flagged,
        m.review.precision
    );
    for p in &m.photos {
        println!("  {p}");
    }
}

pub fn batch(args: &BatchArgs) -> anyhow::Result<ExitCode> {
    let options = FolderOptions {
        decode: decode_options(&args.decode)?,
        ..FolderOptions::default()
    };
    let (images, unreadable) = caption::list_photos(&args.dir)?;
    for (dir, reason) in &unreadable {
        eprintln!("skipped folder {}: {reason}", dir.display());
    }
    if images.is_empty() {
        anyhow::bail!("{}: no photos found", args.dir.display());
    }
    let cancel = interrupt_token();
    let device = device();
    let captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    if let Some(note) = &captioner.trust_note {
        eprintln!("note: {note}");
    }
    let mut renderer = Renderer::new(false, false);
    let mut rows = Vec::new();
    let report = caption::caption_folder(
        &captioner,
        &images,
        &options,
        &mut |event| match event {
            JobEvent::Captioned { path, result, .. } => {
                let name = path
                    .strip_prefix(&args.dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                match result {
                    Ok(c) => {
                        let text = with_prefix_suffix(&c.text, &args.prefix, &args.suffix);
                        renderer.output(&format!(
                            "{name}: {text}{}",
                            if c.needs_review == Some(true) {
                                "  [needs review]"
                            } else {
                                ""
                            }
                        ));
                        rows.push(ExportRow::machine(
                            name,
                            path,
                            &c,
                            &args.prefix,
                            &args.suffix,
                        ));
                    }
                    Err(e) => renderer.message(&format!("error: {}", e.report())),
                }
            }
            other => renderer.event(other),
        },
        &cancel,
    )?;
    renderer.finish_bar();
    eprintln!(
        "{} captioned, {} could not be read{}, {:.1} photos/s",
        report.captioned,
        report.failed,
        if report.stopped {
            ", stopped early"
        } else {
            ""
        },
        (report.captioned + report.failed) as f64 / report.seconds.max(1e-9)
    );
    let mut export_failed = false;
    if args.sidecars {
        let r = export::write_sidecars(&rows, args.existing());
        eprintln!("{}", r.describe("sidecars"));
        export_failed |= !r.failed.is_empty();
    }
    for (flag, target, what) in [
        (
            args.xmp_sidecars,
            MetadataTarget::XmpSidecar,
            "XMP sidecars",
        ),
        (
            args.embed,
            MetadataTarget::Embedded,
            "embedded descriptions",
        ),
    ] {
        if flag {
            let r = export::write_metadata(&rows, target, args.existing());
            eprintln!("{}", r.describe(what));
            for f in r.failed.iter().skip(1) {
                eprintln!("  failed: {f}");
            }
            export_failed |= !r.failed.is_empty();
        }
    }
    let title = format!("Photos in {}", args.dir.display());
    for (kind, file) in [
        (ExportKind::AltHtml, &args.alt_html),
        (ExportKind::AltCsv, &args.alt_csv),
        (ExportKind::AltJson, &args.alt_json),
        (ExportKind::Csv, &args.csv),
        (ExportKind::Json, &args.json),
    ] {
        if let Some(file) = file {
            let r = export::export_file(&rows, kind, file, &title);
            eprintln!("{}", r.describe(&file.display().to_string()));
            export_failed |= !r.failed.is_empty();
        }
    }
    Ok(
        if report.failed == 0 && !export_failed && !report.stopped && unreadable.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// The trust figures of a caption for people.
fn trust_line(c: &pipeline::CaptionResult, note: Option<&str>) -> String {
    let pct = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{:.0}%", 100.0 * v));
    let mut s = format!(
        "confidence {}{}  familiarity {}  word probability (geometric mean) {:.0}%",
        pct(c.confidence),
        if c.confidence_overruled() && c.confidence.is_some() {
            " (see the warning)"
        } else {
            ""
        },
        pct(c.familiarity),
        100.0 * c.word_probability_geomean()
    );
    match (c.needs_review, c.review_reason) {
        (Some(true), Some(r)) => {
            s.push_str(&format!("\n  NEEDS REVIEW: {}", r.warning()));
            if let Some(d) = &c.review_detail {
                s.push_str(&format!(" {d}"));
            }
        }
        (Some(false), _) => s.push_str("  (no review needed)"),
        _ => {
            if let Some(n) = note {
                s.push_str(&format!("\n  ({n})"));
            }
        }
    }
    s
}

pub fn calibrate(args: &crate::cli::CalibrateArgs) -> anyhow::Result<ExitCode> {
    let options = crate::trust::fit::CalibrateOptions {
        import: args.text.import_options(),
        decode: decode_options(&args.decode)?,
        unfamiliar: args.unfamiliar.clone(),
        write: !args.dry_run,
        min_dev_photos: crate::trust::fit::MIN_DEV_PHOTOS,
        signals_csv: args.signals.clone(),
    };
    let cancel = interrupt_token();
    let device = device();
    let mut captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    let mut renderer = Renderer::new(args.json, false);
    let report = crate::trust::fit::calibrate(
        &mut captioner,
        &args.dir,
        &crate::paths::cache_dir(args.cache.as_deref()),
        &options,
        &mut |e| renderer.event(e),
        &cancel,
    )?;
    renderer.finish_bar();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    println!(
        "dev: {} photos, {} acceptable (per-photo CIDEr-D >= {})",
        report.dev_photos, report.dev_acceptable, report.acceptable_cider
    );
    println!(
        "AUROC on dev: confidence (fitted on the other half) {}  word probability {}",
        f(report.auroc_confidence_held_out),
        f(report.auroc_word_geomean)
    );
    for (name, a) in &report.auroc_signals {
        println!("  signal {name}: AUROC {}", f(*a));
    }
    let r = &report.review_dev;
    println!(
        "needs_review on dev: {} flagged, precision {:.3}, recall {:.3}, good captions flagged {:.1}%",
        r.flagged,
        r.precision,
        r.recall,
        100.0 * r.good_flagged_rate
    );
    println!(
        "familiarity: {:.3} ms per photo; all trust figures: {:.2} ms per photo; tag threshold {:.1}",
        report.familiarity_ms_per_photo,
        report.trust_ms_per_photo,
        report.calibration.tag_threshold
    );
    if let Some(m) = &report.mix {
        print_mix(m);
    }
    if options.write {
        println!("wrote the calibration into {}", report.model.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `prefix caption suffix` ([`export::with_prefix_suffix`]).
pub fn with_prefix_suffix(caption: &str, prefix: &str, suffix: &str) -> String {
    export::with_prefix_suffix(caption, prefix, suffix)
}

/// `captioner models`: the shipped and trained models ([`crate::jobs::models::list_all`]).
pub fn models(args: &crate::cli::ModelsArgs) -> anyhow::Result<ExitCode> {
    let dir = args
        .models_dir
        .clone()
        .unwrap_or_else(crate::jobs::train::default_models_dir);
    let all = crate::jobs::models::list_all(&dir);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    let figure = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.4}"));
    println!(
        "{:<40} {:<14} {:<7} {:>6} {:>6} {:<20} {:>8} {:>8}  folder",
        "name", "dataset", "decoder", "vocab", "epochs", "trained", "BLEU-4", "CIDEr-D"
    );
    for m in &all {
        println!(
            "{:<40} {:<14} {:<7} {:>6} {:>6} {:<20} {:>8} {:>8}  {}",
            m.name,
            m.dataset,
            m.decoder,
            m.vocab_size,
            m.epochs,
            m.created,
            figure(m.dev_bleu4),
            figure(m.dev_cider_d),
            m.dir.display()
        );
        if let Some(p) = &m.problem {
            println!("  problem: {p}");
        }
    }
    println!("trained models are kept in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}
