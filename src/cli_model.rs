//! The command line's model commands: `classify`, `features`, `train`, `caption`, `eval`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::app::export::{self, ExportRow};
use crate::cli::{BatchArgs, CaptionArgs, ClassifyArgs, EvalArgs, FeaturesArgs, TrainArgs};
use crate::dataset::{self, Split};
use crate::decoder::{DecoderConfig, DecoderKind};
use crate::encoder::ClassNames;
use crate::features::{self, ExtractEvent, ExtractOptions, ExtractReport, FeatureCache};
use crate::pipeline::{self, Captioner, DecodeOptions};
use crate::train::{self, TrainConfig, TrainEvent};

/// A flag set by Ctrl-C, so long jobs stop cleanly (a second Ctrl-C kills at once).
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after the current batch (Ctrl-C again to quit at once)");
    });
    flag
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

/// Extracts the features of `paths` with a progress bar (hidden with `quiet`).
fn extract_with_progress(
    encoder: &crate::encoder::Encoder,
    cache: &FeatureCache,
    paths: &[PathBuf],
    batch: usize,
    stop: &AtomicBool,
    quiet: bool,
) -> anyhow::Result<ExtractReport> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        progress_bar(paths.len() as u64, "features")
    };
    let options = ExtractOptions {
        batch_size: batch.max(1),
        ..ExtractOptions::default()
    };
    let report = features::extract(encoder, cache, paths, &options, stop, &mut |e| match e {
        ExtractEvent::Started { cached, .. } => {
            if cached > 0 {
                bar.set_message(format!("({cached} cached)"));
            }
        }
        ExtractEvent::Progress { done, .. } => bar.set_position(done as u64),
        ExtractEvent::Failed { path, reason } => {
            bar.suspend(|| eprintln!("skipped {}: {reason}", path.display()));
        }
    })?;
    bar.finish_and_clear();
    Ok(report)
}

pub fn features(args: &FeaturesArgs) -> anyhow::Result<ExitCode> {
    let stop = interrupt_flag();
    let ds = dataset::import(&args.dir, &args.text.import_options())?;
    let device = device();
    let encoder = pipeline::load_encoder(&device)?;
    let cache = FeatureCache::new(
        &crate::paths::cache_dir(args.cache.as_deref()),
        encoder.id(),
    );
    let paths: Vec<PathBuf> = ds.images.iter().map(|e| e.path.clone()).collect();
    let report = extract_with_progress(&encoder, &cache, &paths, args.batch, &stop, args.json)?;
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

pub fn train(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let stop = interrupt_flag();
    let kind = match args.decoder.as_str() {
        "merge" => DecoderKind::Merge,
        "inject" => DecoderKind::Inject,
        other => anyhow::bail!("--decoder must be `merge` or `inject`, not `{other}`"),
    };
    let out = match (&args.out, args.resume) {
        (Some(out), _) => out.clone(),
        (None, true) => {
            anyhow::bail!("--resume needs --out DIR: the folder of the run to continue")
        }
        (None, false) => pipeline::new_run_dir(
            &crate::paths::data_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("models"),
            &args.dir,
            kind,
        ),
    };
    let ds = dataset::import(&args.dir, &args.text.import_options())?;
    for p in ds.problems.iter().take(5) {
        eprintln!("warning: {p}");
    }
    if ds.problems.len() > 5 {
        eprintln!(
            "warning: {} more problems (see `captioner dataset inspect`)",
            ds.problems.len() - 5
        );
    }
    let device = device();
    let encoder = pipeline::load_encoder(&device)?;
    let cache = FeatureCache::new(
        &crate::paths::cache_dir(args.cache.as_deref()),
        encoder.id(),
    );
    let paths: Vec<PathBuf> = ds
        .images
        .iter()
        .filter(|e| matches!(e.split, Split::Train | Split::Dev))
        .map(|e| e.path.clone())
        .collect();
    let report = extract_with_progress(&encoder, &cache, &paths, 32, &stop, args.json)?;
    if report.stopped {
        eprintln!("stopped during feature extraction; finished features are cached");
        return Ok(ExitCode::from(130));
    }
    let prepared = pipeline::prepare_training_data(&ds, &cache, encoder.id(), args.text.min_count)?;
    if !prepared.without_features.is_empty() {
        eprintln!(
            "left out {} images without a feature",
            prepared.without_features.len()
        );
    }
    let decoder_cfg = DecoderConfig {
        kind,
        feature_dim: encoder.feature_dim(),
        embed_dim: args.embed,
        hidden_dim: args.hidden,
        vocab_size: prepared.vocab.len(),
        dropout: args.dropout,
    };
    let train_cfg = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch,
        lr: args.lr,
        early_stop_patience: args.patience,
        dev_bleu_images: args.dev_bleu_images,
        seed: args.seed,
        ..TrainConfig::default()
    };
    eprintln!(
        "training a {kind} decoder ({} parameters, vocabulary {}) on {} train / {} dev captions into {}",
        decoder_cfg.num_params(),
        decoder_cfg.vocab_size,
        prepared.data.train.len(),
        prepared.data.dev.len(),
        out.display()
    );
    let json = args.json;
    let mut bar: Option<ProgressBar> = None;
    let mut on_event = |event: TrainEvent| {
        if json {
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
                    eprintln!("resuming at epoch {start_epoch}, after step {start_step}");
                }
            }
            TrainEvent::Step {
                epoch,
                step,
                steps_per_epoch,
                avg_loss,
                ..
            } => {
                let b = bar.get_or_insert_with(|| {
                    progress_bar(*steps_per_epoch as u64, &format!("epoch {epoch}"))
                });
                b.set_position(*step as u64);
                b.set_message(format!("loss {avg_loss:.3}"));
            }
            TrainEvent::Epoch(r) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
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
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                eprintln!(
                    "stopped in epoch {epoch} after step {step}; continue with --resume --out {}",
                    out.display()
                );
            }
            TrainEvent::Finished {
                best_epoch,
                best_bleu4,
            } => {
                println!("best: epoch {best_epoch} with dev BLEU-4 {best_bleu4:.4}");
            }
        }
    };
    let summary = train::train(
        &decoder_cfg,
        &train_cfg,
        &prepared.data,
        &out,
        args.resume,
        &device,
        &mut on_event,
        &stop,
    )
    .with_context(|| format!("training into {}", out.display()))?;
    if !json {
        println!("best model: {}", summary.best_dir.display());
        println!("last checkpoint: {}", summary.last_dir.display());
    }
    Ok(if summary.stopped {
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
    Ok(DecodeOptions {
        beam: d.beam,
        max_len: d.max_len,
    })
}

fn load_captioner(model: Option<&Path>, device: &candle_core::Device) -> anyhow::Result<Captioner> {
    let dir = model
        .map(Path::to_path_buf)
        .unwrap_or_else(pipeline::default_model_dir);
    Captioner::load(&dir, device).with_context(|| {
        if model.is_none() {
            format!(
                "loading the shipped model from {} (pass --model DIR to use another)",
                dir.display()
            )
        } else {
            format!("loading the model in {}", dir.display())
        }
    })
}

pub fn caption(args: &CaptionArgs) -> anyhow::Result<ExitCode> {
    let images: Vec<&PathBuf> = args.images.iter().chain(&args.image).collect();
    if images.is_empty() {
        anyhow::bail!("no image given: captioner caption PHOTO.jpg (or -i PHOTO.jpg)");
    }
    let options = decode_options(&args.decode)?;
    let device = device();
    let captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    let mut failed = 0;
    let mut json = Vec::new();
    for path in images {
        match captioner.caption_file(path, &options) {
            Ok(c) => {
                if args.json {
                    json.push(serde_json::json!({"image": path, "caption": c.text,
                        "words": c.words, "alternatives": c.alternatives, "millis": c.millis}));
                } else if args.verbose {
                    println!("{}: {}", path.display(), c.text);
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
                eprintln!("error: {}: {e}", path.display());
                if args.json {
                    json.push(serde_json::json!({"image": path, "error": e.to_string()}));
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

pub fn eval(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let split = match args.split.as_str() {
        "train" => Split::Train,
        "dev" => Split::Dev,
        "test" => Split::Test,
        other => anyhow::bail!("--split must be train, dev or test, not `{other}`"),
    };
    let options = decode_options(&args.decode)?;
    let stop = interrupt_flag();
    let device = device();
    let captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    let ds = dataset::import(&args.dir, &args.text.import_options())?;
    let cache = FeatureCache::new(
        &crate::paths::cache_dir(args.cache.as_deref()),
        captioner.encoder.id(),
    );
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        progress_bar(0, "features")
    };
    let report =
        pipeline::evaluate(
            &captioner,
            &ds,
            split,
            &cache,
            &options,
            &stop,
            &mut |e| match e {
                ExtractEvent::Started { total, .. } => bar.set_length(total as u64),
                ExtractEvent::Progress { done, .. } => bar.set_position(done as u64),
                ExtractEvent::Failed { path, reason } => {
                    bar.suspend(|| eprintln!("skipped {}: {reason}", path.display()))
                }
            },
        )?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
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
        if !report.skipped.is_empty() {
            println!("skipped {} images", report.skipped.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn batch(args: &BatchArgs) -> anyhow::Result<ExitCode> {
    let options = decode_options(&args.decode)?;
    let images = crate::app::batch::list_images_recursive(&args.dir).map_err(anyhow::Error::msg)?;
    if images.is_empty() {
        anyhow::bail!("{}: no photos found", args.dir.display());
    }
    let stop = interrupt_flag();
    let device = device();
    let captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    let bar = progress_bar(images.len() as u64, "captioning");
    let mut rows = Vec::new();
    let mut failed = 0;
    for path in &images {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let name = path
            .strip_prefix(&args.dir)
            .unwrap_or(path)
            .display()
            .to_string();
        match captioner.caption_file(path, &options) {
            Ok(c) => {
                bar.suspend(|| println!("{name}: {}", c.text));
                let confidence = pipeline::confidence(c.words.iter().map(|w| w.probability));
                rows.push(ExportRow {
                    image: name,
                    path: path.clone(),
                    caption: c.text,
                    confidence: Some(confidence),
                    edited: false,
                });
            }
            Err(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("error: {}: {e}", path.display()));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let stopped = rows.len() + failed < images.len();
    eprintln!(
        "{} captioned, {failed} could not be read{}",
        rows.len(),
        if stopped { ", stopped early" } else { "" }
    );
    let mut export_failed = false;
    if args.sidecars {
        let r = export::write_sidecars(&rows, args.overwrite);
        eprintln!("{}", r.describe("sidecars"));
        export_failed |= !r.failed.is_empty();
    }
    for (target, bytes) in [
        (&args.csv, args.csv.as_ref().map(|_| export::to_csv(&rows))),
        (
            &args.json,
            args.json.as_ref().map(|_| export::to_json(&rows)),
        ),
    ] {
        if let (Some(target), Some(bytes)) = (target, bytes) {
            let bytes = bytes.map_err(anyhow::Error::msg)?;
            let r = export::write_file(target, &bytes, rows.len());
            eprintln!("{}", r.describe(&target.display().to_string()));
            export_failed |= !r.failed.is_empty();
        }
    }
    Ok(if failed == 0 && !export_failed && !stopped {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
