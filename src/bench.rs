//! `captioner bench ...`: the speed figures the README reports, measured the same way as the
//! PyTorch scripts in tools/ so both can run side by side (`tools/bench_side_by_side.sh`).
//!
//! - `encoder`: images/s at each batch size, decode included (read + decode + resize +
//!   normalise + forward) and excluded (forward only on prepared inputs); one warm-up pass,
//!   then `reps` timed passes, median reported.
//! - `train`: one training epoch of the decoder over the Flickr8k training captions from
//!   cached features (the training loop only, as tools/bench_torch_decoder.py times it), on
//!   the CPU engine, or with `--engine candle` on candle's autograd beside the CPU engine.
//! - `caption`: warm single-photo latency (decode + encoder + beam search), median of `n`.
//! - `batch`: a folder through the "caption a folder" job (read + decode + encode + beam
//!   search, pipelined), photos/s, beside the encoder's own images/s on the folder's first
//!   photos (read + decode + forward at the same batch size, one after the other).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde_json::json;

use crate::dataset::{self, ImportOptions};
use crate::decoder::{DecoderConfig, DecoderKind};
use crate::encoder::PreprocessedImage;
use crate::features::FeatureCache;
use crate::jobs::CancelToken;
use crate::jobs::caption::{CaptionInput, FolderOptions, caption_folder, caption_one, list_photos};
use crate::jobs::train::TrainSettings;
use crate::pipeline::{self, Captioner, DecodeOptions};
use crate::train::{Engine, TrainConfig, TrainData, TrainEvent};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// CPU time (user + system) this process has used, in seconds (Linux; NaN elsewhere).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

/// The first `n` JPEGs of `dir`, sorted by name.
pub fn jpegs(dir: &Path, n: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
        })
        .collect();
    v.sort();
    v.truncate(n);
    if v.is_empty() {
        anyhow::bail!("no JPEG images in {}", dir.display());
    }
    Ok(v)
}

/// Encoder images/s; returns one JSON object.
pub fn encoder(
    dir: &Path,
    n: usize,
    batches: &[usize],
    reps: usize,
) -> anyhow::Result<serde_json::Value> {
    let load_start = loadavg();
    let device = candle_core::Device::Cpu;
    let encoder = pipeline::load_encoder(&device)?;
    let paths = jpegs(dir, n)?;
    let n = paths.len();
    let prepared: Vec<PreprocessedImage> = encoder
        .preprocess_files(&paths)
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut results = serde_json::Map::new();
    for &bs in batches {
        let bs = bs.max(1);
        let pass_included = || -> anyhow::Result<()> {
            for chunk in paths.chunks(bs) {
                let images: Vec<PreprocessedImage> = encoder
                    .preprocess_files(chunk)
                    .into_iter()
                    .collect::<Result<_, _>>()?;
                encoder.encode(&images)?;
            }
            Ok(())
        };
        let pass_excluded = || -> anyhow::Result<()> {
            for chunk in prepared.chunks(bs) {
                encoder.encode(chunk)?;
            }
            Ok(())
        };
        for (name, pass) in [
            (
                "decode_included",
                &pass_included as &dyn Fn() -> anyhow::Result<()>,
            ),
            ("decode_excluded", &pass_excluded),
        ] {
            pass()?; // warm-up
            let mut rates = Vec::new();
            for _ in 0..reps.max(1) {
                let t = Instant::now();
                pass()?;
                rates.push(n as f64 / t.elapsed().as_secs_f64());
            }
            results.insert(
                format!("{name}_batch{bs}"),
                json!({"images_per_s": median(rates.clone()), "passes": rates}),
            );
        }
    }
    Ok(json!({
        "bench": "rust_encoder",
        "threads": rayon::current_num_threads(),
        "images": n,
        "reps": reps,
        "loadavg_1min_start_end": [load_start, loadavg()],
        "results": results,
    }))
}

/// One training epoch of a new `decoder` (with the sizes and learning rate `captioner train`
/// gives it, [`TrainSettings::for_decoder`]) over the training captions of `dataset`, from
/// cached features (run `captioner features` first, with `--spatial` for the attention
/// decoder), on the CPU with `engine` (`Auto` is the CPU engine). With `Engine::Candle` the
/// CPU engine's epoch is measured too, so the two speeds stand side by side.
pub fn train(
    dataset_dir: &Path,
    cache_dir: &Path,
    batch: usize,
    engine: Engine,
    decoder: DecoderKind,
    max_batches: Option<usize>,
) -> anyhow::Result<serde_json::Value> {
    let load_start = loadavg();
    let device = candle_core::Device::Cpu;
    let attention = decoder == DecoderKind::Attention;
    let ds = dataset::import(dataset_dir, &ImportOptions::default())?;
    let encoder = pipeline::load_encoder(&device)?;
    let cache = FeatureCache::new(cache_dir, encoder.id());
    let prepared = pipeline::prepare_training_data_with(
        &ds,
        &cache,
        encoder.id(),
        ds.vocab_with(5),
        attention,
    )?;
    if !prepared.without_features.is_empty() {
        anyhow::bail!(
            "{} images have no cached feature{}: run `captioner features {}{}` first",
            prepared.without_features.len(),
            if attention { " map" } else { "" },
            dataset_dir.display(),
            if attention { " --spatial" } else { "" },
        );
    }
    let settings = TrainSettings::for_decoder(decoder);
    let cfg = settings.decoder_config(
        prepared.vocab.len(),
        encoder.feature_dim(),
        prepared.grid.unwrap_or((7, 7)),
    );
    let lr = settings.train.lr;
    let engines = match engine.resolve(&device) {
        Engine::Candle => vec![Engine::Cpu, Engine::Candle],
        other => vec![other],
    };
    let mut results = Vec::new();
    for engine in engines {
        results.push(train_epoch(
            &cfg,
            &prepared.data,
            batch,
            lr,
            max_batches,
            engine,
            &device,
        )?);
    }
    let ratio = match results.as_slice() {
        [cpu, candle] => candle["epoch_s"]
            .as_f64()
            .zip(cpu["epoch_s"].as_f64())
            .map(|(a, b)| a / b),
        _ => None,
    };
    Ok(json!({
        "bench": format!("rust_decoder_{}_train", cfg.kind),
        "lr": lr,
        "max_batches": max_batches,
        "threads": rayon::current_num_threads(),
        "vocab_size": cfg.vocab_size,
        "parameters": cfg.num_params(),
        "train_captions": prepared.data.train.len(),
        "batch": batch,
        "engines": results,
        "candle_over_cpu_epoch_time": ratio,
        "loadavg_1min_start_end": [load_start, loadavg()],
    }))
}

/// One epoch of `engine`: the training loop's time and the whole call's.
/// With `max_batches` only that many batches are trained and the epoch time is extrapolated
/// from them (`extrapolated` says so).
fn train_epoch(
    cfg: &DecoderConfig,
    data: &TrainData,
    batch: usize,
    lr: f32,
    max_batches: Option<usize>,
    engine: Engine,
    device: &candle_core::Device,
) -> anyhow::Result<serde_json::Value> {
    let train_cfg = TrainConfig {
        epochs: 1,
        batch_size: batch,
        lr,
        dev_bleu_images: 1,
        engine,
        ..TrainConfig::default()
    };
    let out = std::env::temp_dir().join(format!("captioner-bench-{}-{engine}", std::process::id()));
    let mut started: Option<Instant> = None;
    let mut loop_seconds = f64::NAN;
    let mut steps = 0;
    let mut loss = f64::NAN;
    let mut ran = None;
    let mut trained = 0;
    let stop = AtomicBool::new(false);
    let mut on_event = |e: TrainEvent| match e {
        TrainEvent::Started { engine, .. } => {
            ran = Some(engine);
            started = Some(Instant::now());
        }
        TrainEvent::Step {
            step,
            steps_per_epoch,
            avg_loss,
            ..
        } => {
            let last = max_batches.map_or(steps_per_epoch, |m| m.clamp(1, steps_per_epoch));
            if step == last
                && let Some(t) = started
            {
                loop_seconds = t.elapsed().as_secs_f64() * steps_per_epoch as f64 / last as f64;
                steps = steps_per_epoch;
                trained = last;
                loss = f64::from(avg_loss);
                if last < steps_per_epoch {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        _ => {}
    };
    let t = Instant::now();
    let result = crate::train::train(
        cfg,
        &train_cfg,
        data,
        &out,
        false,
        device,
        &mut on_event,
        &stop,
    );
    let _ = std::fs::remove_dir_all(&out);
    result?;
    Ok(json!({
        "engine": ran.map(|e| e.to_string()),
        "steps_per_epoch": steps,
        "steps_trained": trained,
        "extrapolated": trained < steps,
        "epoch_s": loop_seconds,
        "epoch_with_dev_eval_and_checkpoint_s": t.elapsed().as_secs_f64(),
        "epoch_mean_loss": loss,
    }))
}

/// Warm latency of captioning single photos (decode + encode + beam search).
pub fn caption(
    images: &[PathBuf],
    model: &Path,
    beam: usize,
    n: usize,
) -> anyhow::Result<serde_json::Value> {
    let load_start = loadavg();
    let device = candle_core::Device::Cpu;
    let t = Instant::now();
    let captioner = Captioner::load(model, &device)?;
    let load_s = t.elapsed().as_secs_f64();
    let options = DecodeOptions {
        beam,
        ..DecodeOptions::default()
    };
    let one = |p: &PathBuf| caption_one(&captioner, CaptionInput::File(p.clone()), &options);
    // Warm-up.
    for p in images.iter().take(3) {
        one(p)?;
    }
    let mut ms = Vec::new();
    for i in 0..n.max(1) {
        let p = &images[i % images.len()];
        let t = Instant::now();
        one(p)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(json!({
        "bench": "rust_caption_latency",
        "model": model.display().to_string(),
        "threads": rayon::current_num_threads(),
        "beam": beam,
        "runs": ms.len(),
        "model_load_s": load_s,
        "median_ms": median(ms.clone()),
        "mean_ms": ms.iter().sum::<f64>() / ms.len() as f64,
        "max_ms": ms.iter().copied().fold(0.0, f64::max),
        "loadavg_1min_start_end": [load_start, loadavg()],
    }))
}

/// A folder through the "caption a folder" job; returns one JSON object.
pub fn batch(
    dir: &Path,
    model: &Path,
    beam: usize,
    batch: usize,
    limit: Option<usize>,
) -> anyhow::Result<serde_json::Value> {
    let load_start = loadavg();
    let device = candle_core::Device::Cpu;
    let captioner = Captioner::load(model, &device)?;
    let (mut photos, _) = list_photos(dir)?;
    if let Some(n) = limit {
        photos.truncate(n);
    }
    if photos.is_empty() {
        anyhow::bail!("no photos in {}", dir.display());
    }
    let options = FolderOptions {
        decode: DecodeOptions {
            beam,
            ..DecodeOptions::default()
        },
        batch: batch.max(1),
        ..FolderOptions::default()
    };
    let cancel = CancelToken::new();
    // Warm-up on a few photos (weights paged in, buffers allocated).
    let warm = &photos[..photos.len().min(batch.max(1))];
    caption_folder(&captioner, warm, &options, &mut |_| {}, &cancel)?;

    // The encoder alone on the first photos: read + decode + forward, batch by batch.
    let sample = &photos[..photos.len().min(8 * batch.max(1))];
    let t = Instant::now();
    for chunk in sample.chunks(batch.max(1)) {
        let images: Vec<PreprocessedImage> = chunk
            .iter()
            .filter_map(|p| {
                crate::jobs::caption::load_for_encoder(
                    p,
                    captioner.encoder.input_size(),
                    &options.limits,
                )
                .ok()
            })
            .collect();
        if !images.is_empty() {
            captioner.encoder.encode(&images)?;
        }
    }
    let encoder_per_s = sample.len() as f64 / t.elapsed().as_secs_f64();

    // Beam search alone on the same photos' features.
    let images: Vec<PreprocessedImage> = sample
        .iter()
        .filter_map(|p| {
            crate::jobs::caption::load_for_encoder(
                p,
                captioner.encoder.input_size(),
                &options.limits,
            )
            .ok()
        })
        .collect();
    let mut inputs: Vec<Vec<f32>> = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch.max(1)) {
        let out = captioner.encoder.encode(chunk)?;
        inputs.extend(captioner.decoder_inputs(&out)?);
    }
    let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let t = Instant::now();
    let cpu0 = process_cpu_seconds();
    captioner.caption_many(&views, &options.decode)?;
    let beam_per_s = inputs.len() as f64 / t.elapsed().as_secs_f64();
    let beam_cpu_ms = (process_cpu_seconds() - cpu0) * 1e3 / inputs.len().max(1) as f64;

    let mut failed = 0usize;
    let cpu0 = process_cpu_seconds();
    let report = caption_folder(
        &captioner,
        &photos,
        &options,
        &mut |e| {
            if let crate::jobs::JobEvent::Captioned { result: Err(_), .. } = e {
                failed += 1;
            }
        },
        &cancel,
    )?;
    let per_s = report.total as f64 / report.seconds;
    let cpu_ms = (process_cpu_seconds() - cpu0) * 1e3 / report.total.max(1) as f64;
    Ok(json!({
        "bench": "rust_caption_folder",
        "model": model.display().to_string(),
        "decoder": captioner.model.decoder.config().kind.to_string(),
        "threads": rayon::current_num_threads(),
        "dir": dir,
        "photos": report.total,
        "failed": failed,
        "beam": beam,
        "batch": batch,
        "seconds": report.seconds,
        "photos_per_s": per_s,
        "encoder_only_sample": sample.len(),
        "encoder_only_images_per_s": encoder_per_s,
        "ratio_to_encoder": per_s / encoder_per_s,
        "cpu_ms_per_photo": cpu_ms,
        "beam_only_per_s": beam_per_s,
        "beam_only_cpu_ms_per_photo": beam_cpu_ms,
        "loadavg_1min_start_end": [load_start, loadavg()],
    }))
}
