//! The candle training engine against the hand-written CPU engine: same loss and gradients on
//! a batch (with and without identical host-drawn dropout masks), one epoch on the fixture
//! data set ending at the same loss, and exact resume from a candle-engine checkpoint.

use candle_core::Device;
use captioner::dataset::{self, ImportOptions, Split};
use captioner::decoder::{DecoderConfig, DecoderKind};
use captioner::train::{
    Adam, CandleEngine, CpuEngine, Engine, Example, Features, ModelInfo, Params, Rng, TrainConfig,
    TrainData, TrainEvent, TrainSummary, checkpoint, train,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

fn small(kind: DecoderKind, dropout: f32) -> DecoderConfig {
    DecoderConfig {
        kind,
        feature_dim: 24,
        embed_dim: 16,
        hidden_dim: 20,
        vocab_size: 40,
        dropout,
        attention: None,
    }
}

fn captions(n: usize, images: usize, vocab: usize, seed: u64) -> Vec<(usize, Vec<u32>)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let len = 1 + rng.below(9);
            let words = (0..len).map(|_| 4 + rng.below(vocab - 4) as u32).collect();
            (rng.below(images), words)
        })
        .collect()
}

/// Relative error of `got` against `want` (L2 norms).
fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    let diff: f64 = got
        .iter()
        .zip(want)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = want
        .iter()
        .map(|&b| f64::from(b).powi(2))
        .sum::<f64>()
        .sqrt();
    diff / norm.max(1e-12)
}

#[test]
fn both_engines_give_the_same_loss_and_gradients() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        for dropout in [0.0, 0.3] {
            let cfg = small(kind, dropout);
            let mut rng = Rng::new(3);
            let feats: Vec<f32> = (0..10 * 24).map(|_| rng.next_f32() * 2.0).collect();
            let features = Features::new(&feats, 24).unwrap();
            let caps = captions(12, 10, 40, 5);
            let batch: Vec<Example<'_>> = caps
                .iter()
                .map(|(i, w)| Example {
                    image: *i,
                    words: w,
                })
                .collect();
            // Perturbed weights so that every bias matters.
            let mut params = Params::init(&cfg, 11).unwrap();
            for x in params.as_mut_slice() {
                *x += (rng.next_f32() - 0.5) * 0.2;
            }
            let adam = Adam::new(params.len(), 1e-3);

            let mut cpu = CpuEngine::new(&cfg).unwrap();
            let mut cpu_grads = Params::zeros(&cfg).unwrap();
            let mut r1 = Rng::derive(&[1, 2, 3]);
            let cpu_loss = cpu
                .train_step(&params, &mut cpu_grads, features, &batch, Some(&mut r1))
                .unwrap();

            let candle = CandleEngine::new(&params, &adam, &Device::Cpu).unwrap();
            let mut r2 = Rng::derive(&[1, 2, 3]);
            let (candle_loss, grads) = candle.backward(features, &batch, Some(&mut r2)).unwrap();
            let candle_grads = grads.to_params(&cfg).unwrap();

            let what = format!("{kind}, dropout {dropout}");
            assert_eq!(cpu_loss.tokens, candle_loss.tokens, "{what}");
            let (a, b) = (cpu_loss.mean(), candle_loss.mean());
            assert!((a - b).abs() / a <= 1e-4, "{what}: loss {a} vs {b}");
            for (spec, want) in cpu_grads.iter() {
                let got = candle_grads.get(&spec.name).unwrap();
                let e = rel_err(got, want);
                assert!(e <= 1e-4, "{what}: gradient of {} off by {e}", spec.name);
            }
            let norm = Adam::grad_norm(cpu_grads.as_slice());
            let candle_norm = grads.norm().unwrap();
            assert!((norm - candle_norm).abs() / norm <= 1e-4, "{what}");
            // Without dropout the evaluation loss is the same as well.
            let e1 = cpu.eval_loss(&params, features, &batch).unwrap().mean();
            let e2 = candle.eval_loss(features, &batch).unwrap().mean();
            assert!(
                (e1 - e2).abs() / e1 <= 1e-4,
                "{what}: eval loss {e1} vs {e2}"
            );
        }
    }
}

#[test]
fn adam_on_the_device_matches_the_host() {
    let cfg = small(DecoderKind::Merge, 0.0);
    let mut rng = Rng::new(4);
    let feats: Vec<f32> = (0..10 * 24).map(|_| rng.next_f32()).collect();
    let features = Features::new(&feats, 24).unwrap();
    let caps = captions(8, 10, 40, 6);
    let batch: Vec<Example<'_>> = caps
        .iter()
        .map(|(i, w)| Example {
            image: *i,
            words: w,
        })
        .collect();
    let mut params = Params::init(&cfg, 1).unwrap();
    let mut adam = Adam::new(params.len(), 0.01);
    let mut candle = CandleEngine::new(&params, &adam, &Device::Cpu).unwrap();
    for _ in 0..3 {
        let (_, grads) = candle.backward(features, &batch, None).unwrap();
        let host = grads.to_params(&cfg).unwrap();
        candle.update(&grads, 0.5).unwrap();
        adam.update(params.as_mut_slice(), host.as_slice(), 0.5);
    }
    let (p, a) = candle.snapshot().unwrap();
    assert_eq!(a.step, 3);
    assert!(rel_err(p.as_slice(), params.as_slice()) < 1e-6);
    let (m1, v1) = a.moments();
    let (m2, v2) = adam.moments();
    assert!(rel_err(m1, m2) < 1e-6);
    assert!(rel_err(v1, v2) < 1e-6);
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Training data from the `flickr8k_mini` fixture (its splits and captions, vocabulary of
/// every training word) with the photos' stored EfficientNet-Lite0 features.
fn fixture_data() -> TrainData {
    let opts = ImportOptions {
        min_count: 1,
        ..ImportOptions::default()
    };
    let ds = dataset::import(&fixture().join("flickr8k_mini"), &opts).unwrap();
    let mut stored = candle_core::safetensors::load(
        fixture().join("decoder_features.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let all = stored.remove("features").unwrap();
    // Rows follow the photo files sorted by name.
    let mut files: Vec<String> =
        std::fs::read_dir(fixture().join("flickr8k_mini/Flicker8k_Dataset"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    files.sort();
    let vocab = ds.vocab_with(1);
    let mut data = TrainData {
        id_to_word: vocab.words.clone(),
        info: ModelInfo::default(),
        ..TrainData::default()
    };
    let mut n = 0;
    for entry in &ds.images {
        if !matches!(entry.split, Split::Train | Split::Dev) {
            continue;
        }
        let row = files.iter().position(|f| *f == entry.name).unwrap();
        let feature = all.get(row).unwrap().to_vec1::<f32>().unwrap();
        data.features.extend_from_slice(&feature);
        for words in ds.cleaned(entry) {
            if words.is_empty() {
                continue;
            }
            let caption = (n, vocab.encode(&words));
            if entry.split == Split::Train {
                data.train.push(caption);
            } else {
                data.dev.push(caption);
            }
        }
        if entry.split == Split::Dev {
            let refs = entry
                .captions
                .iter()
                .map(|c| captioner::eval::tokenize(c))
                .collect();
            data.dev_refs.push((n, refs));
        }
        n += 1;
    }
    assert!(!data.train.is_empty() && !data.dev.is_empty());
    data
}

fn fixture_cfg(kind: DecoderKind, data: &TrainData) -> DecoderConfig {
    DecoderConfig {
        kind,
        feature_dim: 1280,
        embed_dim: 32,
        hidden_dim: 32,
        vocab_size: data.id_to_word.len(),
        dropout: 0.5,
        attention: None,
    }
}

fn tcfg(engine: Engine, epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 8,
        lr: 3e-3,
        dev_bleu_images: 4,
        max_len: 12,
        seed: 5,
        engine,
        ..TrainConfig::default()
    }
}

fn run(
    dc: &DecoderConfig,
    tc: &TrainConfig,
    d: &TrainData,
    out: &Path,
    resume: bool,
    stop_at: Option<(usize, usize)>,
) -> (TrainSummary, Vec<TrainEvent>) {
    let stop = AtomicBool::new(false);
    let mut events = Vec::new();
    let s = train(
        dc,
        tc,
        d,
        out,
        resume,
        &Device::Cpu,
        &mut |e| {
            if let TrainEvent::Step { epoch, step, .. } = &e
                && Some((*epoch, *step)) == stop_at
            {
                stop.store(true, Ordering::Relaxed);
            }
            events.push(e);
        },
        &stop,
    )
    .unwrap();
    (s, events)
}

#[test]
fn one_epoch_on_the_fixture_ends_at_the_same_loss() {
    let data = fixture_data();
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let dc = fixture_cfg(kind, &data);
        let mut losses = Vec::new();
        for engine in [Engine::Cpu, Engine::Candle] {
            let dir = tempfile::tempdir().unwrap();
            let (s, events) = run(&dc, &tcfg(engine, 1), &data, dir.path(), false, None);
            assert!(matches!(
                events.first(),
                Some(TrainEvent::Started { engine: e, .. }) if *e == engine
            ));
            assert_eq!(s.epochs_completed, 1);
            let r = &s.history[0];
            losses.push((r.train_loss, r.dev_loss));
        }
        let ((t1, d1), (t2, d2)) = (losses[0], losses[1]);
        eprintln!("{kind}: train loss cpu {t1} candle {t2}, dev loss cpu {d1} candle {d2}");
        assert!((t1 - t2).abs() <= 1e-3, "{kind}: train loss {t1} vs {t2}");
        assert!((d1 - d2).abs() <= 1e-3, "{kind}: dev loss {d1} vs {d2}");
    }
}

#[test]
fn a_candle_checkpoint_resumes_exactly() {
    let data = fixture_data();
    let dc = fixture_cfg(DecoderKind::Merge, &data);
    let tc = tcfg(Engine::Candle, 2);
    let whole = tempfile::tempdir().unwrap();
    run(&dc, &tc, &data, whole.path(), false, None);
    let parts = tempfile::tempdir().unwrap();
    let (s, events) = run(&dc, &tc, &data, parts.path(), false, Some((1, 3)));
    assert!(s.stopped);
    assert!(matches!(
        events.last(),
        Some(TrainEvent::Stopped { epoch: 1, step: 3 })
    ));
    let (s, events) = run(&dc, &tc, &data, parts.path(), true, None);
    assert!(!s.stopped);
    assert!(matches!(
        events.first(),
        Some(TrainEvent::Started {
            start_epoch: 1,
            start_step: 3,
            engine: Engine::Candle,
            ..
        })
    ));
    let a = checkpoint::load_checkpoint(&whole.path().join("last"), &dc).unwrap();
    let b = checkpoint::load_checkpoint(&parts.path().join("last"), &dc).unwrap();
    assert_eq!(a.0, b.0, "weights");
    assert_eq!(a.1, b.1, "optimizer state");
    assert_eq!(a.2.history.len(), 2);
    assert_eq!(a.2.history[1].train_loss, b.2.history[1].train_loss);
    // The CPU engine continues a candle checkpoint (same format).
    let mut cpu = tc.clone();
    cpu.engine = Engine::Cpu;
    cpu.epochs = 3;
    let (s, _) = run(&dc, &cpu, &data, parts.path(), true, None);
    assert_eq!(s.epochs_completed, 3);
}

#[test]
fn engine_names_parse_and_print() {
    for e in [Engine::Auto, Engine::Cpu, Engine::Candle] {
        assert_eq!(e.to_string().parse::<Engine>().unwrap(), e);
        assert_eq!(serde_json::to_string(&e).unwrap(), format!("\"{e}\""));
    }
    assert!("gpu".parse::<Engine>().is_err());
    assert_eq!(Engine::default(), Engine::Auto);
    assert_eq!(Engine::Auto.resolve(&Device::Cpu), Engine::Cpu);
    assert_eq!(Engine::Candle.resolve(&Device::Cpu), Engine::Candle);
    // A training state written before the engine setting existed still loads.
    let old = serde_json::json!({"epochs": 3, "batch_size": 4});
    let tc: TrainConfig = serde_json::from_value(old).unwrap();
    assert_eq!(tc.engine, Engine::Auto);
}
