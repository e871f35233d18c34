//! Training and decoding speed on synthetic data with the real shapes: 6,000 images with
//! 1280-d features, 30,000 captions whose lengths follow the Flickr8k training split's
//! histogram (mean 10.8 words, max 36), a 2,531-word vocabulary, batch 64.
//!
//! `cargo bench --bench train` prints criterion's ms per training step (forward, backward,
//! clipping and Adam) and per decode, then the time of each phase of a step, then times one
//! whole epoch through `train::train` for each decoder kind (set `EPOCH_BENCH=0` to skip).
//! Each line notes the load average: on a shared machine, compare runs made side by side.

use candle_core::{Device, Tensor};
use captioner::decoder::{DecoderConfig, DecoderKind, beam_search, greedy};
use captioner::train::{
    Adam, CandleEngine, CpuEngine as Engine, Example, Features, Params, Rng, TrainConfig,
    TrainData, TrainEvent, batches, train,
};
use criterion::{Criterion, criterion_group};
use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

const VOCAB: usize = 2531;
const IMAGES: usize = 6000;
const FEATURE_DIM: usize = 1280;

/// (caption length in words, number of training captions) in Flickr8k's training split.
const LENGTHS: [(usize, usize); 33] = [
    (2, 15),
    (3, 125),
    (4, 344),
    (5, 858),
    (6, 1962),
    (7, 2517),
    (8, 2928),
    (9, 3321),
    (10, 3309),
    (11, 3141),
    (12, 2762),
    (13, 2336),
    (14, 1856),
    (15, 1339),
    (16, 974),
    (17, 667),
    (18, 521),
    (19, 352),
    (20, 214),
    (21, 132),
    (22, 109),
    (23, 74),
    (24, 51),
    (25, 35),
    (26, 19),
    (27, 11),
    (28, 8),
    (29, 8),
    (30, 4),
    (31, 4),
    (32, 1),
    (33, 2),
    (36, 1),
];

/// A Zipf-like word id in 4..VOCAB.
fn word(rng: &mut Rng) -> u32 {
    let u = rng.next_f32().max(1e-6);
    let rank = ((VOCAB - 4) as f32).powf(u) as usize;
    (4 + rank.min(VOCAB - 5)) as u32
}

fn captions(rng: &mut Rng, images: std::ops::Range<usize>) -> Vec<(usize, Vec<u32>)> {
    let mut lengths: Vec<usize> = LENGTHS
        .iter()
        .flat_map(|&(len, count)| std::iter::repeat_n(len, count))
        .collect();
    let per_image = 5;
    let n = images.len() * per_image;
    rng.shuffle(&mut lengths);
    lengths.truncate(n);
    lengths
        .into_iter()
        .enumerate()
        .map(|(k, len)| {
            (
                images.start + k / per_image,
                (0..len).map(|_| word(rng)).collect(),
            )
        })
        .collect()
}

fn synthetic_data() -> TrainData {
    let mut rng = Rng::new(2024);
    let n_images = IMAGES + 300;
    let features: Vec<f32> = (0..n_images * FEATURE_DIM)
        .map(|_| rng.next_f32() * 2.0)
        .collect();
    let train = captions(&mut rng, 0..IMAGES);
    let dev = captions(&mut rng, IMAGES..n_images);
    let mut id_to_word: Vec<String> = ["<pad>", "<start>", "<end>", "<unk>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    id_to_word.extend((4..VOCAB).map(|i| format!("w{i}")));
    let dev_refs = (IMAGES..n_images)
        .map(|img| {
            let refs = dev
                .iter()
                .filter(|(i, _)| *i == img)
                .map(|(_, w)| w.iter().map(|&t| id_to_word[t as usize].clone()).collect())
                .collect();
            (img, refs)
        })
        .collect();
    TrainData {
        features,
        train,
        dev,
        dev_refs,
        id_to_word,
        sample_images: vec![(IMAGES, "dev-0.jpg".into())],
        info: Default::default(),
    }
}

fn bench_steps(c: &mut Criterion) {
    let data = synthetic_data();
    let lengths: Vec<usize> = data.train.iter().map(|(_, w)| w.len()).collect();
    let order = batches::epoch_batches(&lengths, 64, 1, 0);
    let mut group = c.benchmark_group("train_step_b64_v2531");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(8));
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = DecoderConfig {
            kind,
            ..DecoderConfig::merge(VOCAB)
        };
        let mut params = Params::init(&cfg, 1).unwrap();
        let mut grads = Params::zeros(&cfg).unwrap();
        let mut adam = Adam::new(params.len(), 1e-3);
        let mut engine = Engine::new(&cfg).unwrap();
        let features = Features::new(&data.features, FEATURE_DIM).unwrap();
        let mut k = 0usize;
        // Cycles through the epoch's batches, so the mean is the mean step of an epoch.
        group.bench_function(format!("{kind}"), |b| {
            b.iter(|| {
                let batch: Vec<Example<'_>> = order[k % order.len()]
                    .iter()
                    .map(|&i| Example {
                        image: data.train[i].0,
                        words: &data.train[i].1,
                    })
                    .collect();
                let mut rng = Rng::new(k as u64);
                k += 1;
                let loss = engine
                    .train_step(&params, &mut grads, features, &batch, Some(&mut rng))
                    .unwrap();
                let norm = Adam::grad_norm(grads.as_slice());
                adam.update(
                    params.as_mut_slice(),
                    grads.as_slice(),
                    Adam::clip_factor(norm, 5.0),
                );
                black_box(loss)
            })
        });
        // The candle engine (autograd on the CPU device) on the same batches.
        let mut candle = CandleEngine::new(&params, &adam, &Device::Cpu).unwrap();
        let mut k = 0usize;
        group.bench_function(format!("{kind}_candle"), |b| {
            b.iter(|| {
                let batch: Vec<Example<'_>> = order[k % order.len()]
                    .iter()
                    .map(|&i| Example {
                        image: data.train[i].0,
                        words: &data.train[i].1,
                    })
                    .collect();
                let mut rng = Rng::new(k as u64);
                k += 1;
                let (loss, grads) = candle.backward(features, &batch, Some(&mut rng)).unwrap();
                let norm = grads.norm().unwrap();
                candle.update(&grads, Adam::clip_factor(norm, 5.0)).unwrap();
                black_box(loss)
            })
        });
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let cfg = DecoderConfig::merge(VOCAB);
    let params = Params::init(&cfg, 3).unwrap();
    let dec = params.to_decoder(&Device::Cpu).unwrap();
    let mut rng = Rng::new(5);
    let feats: Vec<f32> = (0..300 * FEATURE_DIM)
        .map(|_| rng.next_f32() * 2.0)
        .collect();
    let all = Tensor::from_vec(feats, (300, FEATURE_DIM), &Device::Cpu).unwrap();
    let one = all.narrow(0, 0, 1).unwrap();
    // Fixed length decodes: a random model rarely predicts END, so every caption runs to
    // max_len; 12 is about a real caption's length plus END.
    let mut group = c.benchmark_group("decode_v2531");
    group.sample_size(30);
    group.bench_function("beam3_one_image_12_steps", |b| {
        b.iter(|| black_box(beam_search(&dec, &one, 3, 12).unwrap()))
    });
    // The same search on the candle_nn layers (what the flat-buffer path must beat to stay).
    let candle = dec.clone().without_cpu_fast_path();
    group.bench_function("beam3_one_image_12_steps_candle_nn", |b| {
        b.iter(|| black_box(beam_search(&candle, &one, 3, 12).unwrap()))
    });
    group.bench_function("greedy_one_image_12_steps", |b| {
        b.iter(|| black_box(greedy(&dec, &one, 12).unwrap()))
    });
    group.sample_size(10);
    group.bench_function("greedy_300_images_12_steps", |b| {
        b.iter(|| black_box(greedy(&dec, &all, 12).unwrap()))
    });
    group.finish();
}

/// The 1-minute load average (Linux), to tell a quiet machine from a busy one.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn epoch_timing() {
    let data = synthetic_data();
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = DecoderConfig {
            kind,
            ..DecoderConfig::merge(VOCAB)
        };
        let tcfg = TrainConfig {
            epochs: 1,
            ..TrainConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let load_before = load_average();
        let start = Instant::now();
        let mut train_done = None;
        let mut steps = 0;
        let mut report = None;
        let stop = AtomicBool::new(false);
        train(
            &cfg,
            &tcfg,
            &data,
            dir.path(),
            false,
            &Device::Cpu,
            &mut |e| match e {
                TrainEvent::Step {
                    step,
                    steps_per_epoch,
                    ..
                } => {
                    steps = steps_per_epoch;
                    if step == steps_per_epoch {
                        train_done = Some(start.elapsed());
                    }
                }
                TrainEvent::Epoch(r) => report = Some(r),
                _ => {}
            },
            &stop,
        )
        .unwrap();
        let total = start.elapsed();
        let train_s = train_done.map_or(0.0, |d| d.as_secs_f64());
        let r = report.unwrap();
        println!(
            "epoch {kind}: {} captions, {steps} steps of 64: training {train_s:.1} s \
             ({:.1} ms/step); whole epoch with dev loss ({} captions), greedy dev BLEU \
             ({} images) and checkpoints: {:.1} s (train_loss {:.3}, dev_loss {:.3}; \
             load average {load_before} before, {} after)",
            data.train.len(),
            1000.0 * train_s / steps.max(1) as f64,
            data.dev.len(),
            tcfg.dev_bleu_images,
            total.as_secs_f64(),
            r.train_loss,
            r.dev_loss,
            load_average(),
        );
    }
}

/// Mean wall-clock time of each phase of a training step (merge decoder, 20 steps).
fn phase_breakdown() {
    let data = synthetic_data();
    let lengths: Vec<usize> = data.train.iter().map(|(_, w)| w.len()).collect();
    let order = batches::epoch_batches(&lengths, 64, 1, 0);
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = DecoderConfig {
            kind,
            ..DecoderConfig::merge(VOCAB)
        };
        let mut params = Params::init(&cfg, 1).unwrap();
        let mut grads = Params::zeros(&cfg).unwrap();
        let mut adam = Adam::new(params.len(), 1e-3);
        let mut engine = Engine::new(&cfg).unwrap();
        let features = Features::new(&data.features, FEATURE_DIM).unwrap();
        engine.set_profiling(true);
        let steps = 20;
        let mut adam_s = 0.0;
        let start = Instant::now();
        for (k, b) in order.iter().take(steps).enumerate() {
            let batch: Vec<Example<'_>> = b
                .iter()
                .map(|&i| Example {
                    image: data.train[i].0,
                    words: &data.train[i].1,
                })
                .collect();
            let mut rng = Rng::new(k as u64);
            engine
                .train_step(&params, &mut grads, features, &batch, Some(&mut rng))
                .unwrap();
            let t = Instant::now();
            let norm = Adam::grad_norm(grads.as_slice());
            adam.update(
                params.as_mut_slice(),
                grads.as_slice(),
                Adam::clip_factor(norm, 5.0),
            );
            adam_s += t.elapsed().as_secs_f64();
        }
        let total = start.elapsed().as_secs_f64();
        println!(
            "{kind} step phases (mean of {steps} steps, {:.1} ms per step, load average {}):",
            1e3 * total / steps as f64,
            load_average()
        );
        for (name, s) in engine.phase_times() {
            println!("  {name:<36} {:7.2} ms", 1e3 * s / steps as f64);
        }
        println!(
            "  {:<36} {:7.2} ms",
            "adam: norm, clipping, update",
            1e3 * adam_s / steps as f64
        );
    }
}

criterion_group!(benches, bench_steps, bench_decode);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    phase_breakdown();
    if std::env::var("EPOCH_BENCH").map_or(true, |v| v != "0") {
        epoch_timing();
    }
}
