//! `train::train` end to end on a tiny learnable data set: events, checkpoints, stop and
//! resume (bit-identical weights), early stopping, learning-rate decay and bad inputs.

use candle_core::Device;
use captioner::decoder::{DecoderConfig, DecoderKind};
use captioner::model_dir::load_model;
use captioner::train::{
    TrainConfig, TrainData, TrainError, TrainEvent, TrainSummary, checkpoint, train,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

const IMAGES: usize = 24;
const TRAIN_IMAGES: usize = 20;
const F: usize = 12;

fn cfg(kind: DecoderKind, dropout: f32) -> DecoderConfig {
    DecoderConfig {
        kind,
        feature_dim: F,
        embed_dim: 8,
        hidden_dim: 16,
        vocab_size: 30,
        dropout,
        attention: None,
    }
}

fn tcfg() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 16,
        lr: 0.01,
        clip_norm: 5.0,
        lr_decay: 0.5,
        lr_patience: 2,
        early_stop_patience: 5,
        dev_bleu_images: 4,
        max_len: 8,
        seed: 9,
        ..TrainConfig::default()
    }
}

/// Image `i` belongs to class `i % 4`; its captions are the class's sentence with one word
/// varied per caption.
fn data() -> TrainData {
    let mut features = vec![0.0f32; IMAGES * F];
    for i in 0..IMAGES {
        let class = i % 4;
        for j in 0..F {
            features[i * F + j] = if j % 4 == class {
                1.0
            } else {
                0.1 * ((i + j) % 3) as f32
            };
        }
    }
    let sentence = |class: usize, k: usize| -> Vec<u32> {
        let base = 4 + 5 * class as u32;
        let mut w = vec![base, base + 1, base + 2, base + 3];
        if k % 2 == 1 {
            w.push(24 + (k as u32 % 5));
        }
        w
    };
    let mut train = Vec::new();
    let mut dev = Vec::new();
    for i in 0..IMAGES {
        for k in 0..5 {
            let c = (i, sentence(i % 4, k));
            if i < TRAIN_IMAGES {
                train.push(c);
            } else {
                dev.push(c);
            }
        }
    }
    let mut id_to_word: Vec<String> = ["<pad>", "<start>", "<end>", "<unk>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    id_to_word.extend((4..30).map(|i| format!("w{i}")));
    let dev_refs = (TRAIN_IMAGES..IMAGES)
        .map(|i| {
            let refs = (0..5)
                .map(|k| {
                    sentence(i % 4, k)
                        .iter()
                        .map(|&t| id_to_word[t as usize].clone())
                        .collect()
                })
                .collect();
            (i, refs)
        })
        .collect();
    TrainData {
        features,
        train,
        dev,
        dev_refs,
        id_to_word,
        sample_images: vec![(20, "img20.jpg".into()), (21, "img21.jpg".into())],
        info: captioner::train::ModelInfo {
            encoder_id: "test-encoder".into(),
            text: serde_json::json!({"cleaning": "tutorial", "min_count": 1}),
            dataset: "synthetic".into(),
            split: "train".into(),
        },
    }
}

fn run(
    dc: &DecoderConfig,
    tc: &TrainConfig,
    d: &TrainData,
    out: &Path,
    resume: bool,
    stop_at: Option<(usize, usize)>,
) -> (Result<TrainSummary, TrainError>, Vec<TrainEvent>) {
    let stop = AtomicBool::new(false);
    let mut events = Vec::new();
    let r = train(
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
    );
    (r, events)
}

fn file(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn trains_reports_and_writes_loadable_checkpoints() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let dir = tempfile::tempdir().unwrap();
        let mut tc = tcfg();
        tc.epochs = 6;
        let (r, events) = run(&cfg(kind, 0.1), &tc, &data(), dir.path(), false, None);
        let s = r.unwrap();
        assert!(!s.stopped);
        assert_eq!(s.epochs_completed, 6);
        assert!(matches!(
            events.first(),
            Some(TrainEvent::Started {
                steps_per_epoch: 7,
                start_epoch: 1,
                ..
            })
        ));
        assert!(matches!(events.last(), Some(TrainEvent::Finished { .. })));
        let steps = events
            .iter()
            .filter(|e| matches!(e, TrainEvent::Step { .. }))
            .count();
        assert_eq!(steps, 6 * 7);
        let h = &s.history;
        assert!(
            h[5].train_loss < h[0].train_loss * 0.6,
            "{:?}",
            h.iter().map(|r| r.train_loss).collect::<Vec<_>>()
        );
        assert!(h[5].dev_loss < h[0].dev_loss);
        assert!(h.iter().all(|r| r.samples.len() == 2 && r.seconds > 0.0));
        assert!(
            s.best_bleu4 > 0.3,
            "learnable captions: best BLEU-4 {}",
            s.best_bleu4
        );
        assert_eq!(h[s.best_epoch - 1].dev_bleu4, s.best_bleu4);
        assert_eq!(
            entries(dir.path()),
            vec!["best", "last"],
            "no temporary directories left"
        );
        for sub in ["best", "last"] {
            let m = load_model(&dir.path().join(sub), &Device::Cpu).unwrap();
            assert_eq!(m.config.decoder, cfg(kind, 0.1));
            assert_eq!(m.config.encoder_id, "test-encoder");
            assert_eq!(m.config.text["cleaning"], "tutorial");
            assert_eq!(m.vocab.len(), 30);
            assert_eq!(m.meta.dataset, "synthetic");
            assert!(m.meta.metrics.contains_key("dev_bleu4"));
            let names = entries(&dir.path().join(sub));
            assert!(names.contains(&checkpoint::OPTIMIZER_FILE.to_string()));
            assert!(names.contains(&checkpoint::STATE_FILE.to_string()));
        }
        assert_eq!(
            load_model(&dir.path().join("last"), &Device::Cpu)
                .unwrap()
                .meta
                .epochs,
            6
        );
    }
}

/// Runs straight through, and again with stops at `stops` and resumes; the final weights,
/// optimizer state and metrics must be identical.
fn check_resume(kind: DecoderKind, dropout: f32, stops: &[(usize, usize)]) {
    let dc = cfg(kind, dropout);
    let tc = tcfg();
    let d = data();
    let straight = tempfile::tempdir().unwrap();
    let a = run(&dc, &tc, &d, straight.path(), false, None).0.unwrap();

    let resumed = tempfile::tempdir().unwrap();
    let mut resume = false;
    for &(epoch, step) in stops {
        let (r, events) = run(&dc, &tc, &d, resumed.path(), resume, Some((epoch, step)));
        let s = r.unwrap();
        assert!(s.stopped, "stop at {epoch}/{step}");
        let (stopped_epoch, stopped_step) = if step == 7 {
            (epoch + 1, 0)
        } else {
            (epoch, step)
        };
        assert!(
            matches!(events.last(), Some(TrainEvent::Stopped { epoch: e, step: st }) if *e == stopped_epoch && *st == stopped_step),
            "{:?}",
            events.last()
        );
        if resume {
            assert!(matches!(events.first(), Some(TrainEvent::Started { .. })));
        }
        resume = true;
    }
    let (r, events) = run(&dc, &tc, &d, resumed.path(), true, None);
    let b = r.unwrap();
    assert!(!b.stopped);
    assert!(matches!(events.last(), Some(TrainEvent::Finished { .. })));
    let (la, lb) = (straight.path().join("last"), resumed.path().join("last"));
    assert!(
        file(&la, "weights.safetensors") == file(&lb, "weights.safetensors"),
        "{kind} weights differ after resume"
    );
    assert!(file(&la, "optimizer.safetensors") == file(&lb, "optimizer.safetensors"));
    let (ba, bb) = (straight.path().join("best"), resumed.path().join("best"));
    assert!(file(&ba, "weights.safetensors") == file(&bb, "weights.safetensors"));
    assert_eq!(a.history.len(), b.history.len());
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!(x.train_loss, y.train_loss);
        assert_eq!(x.dev_loss, y.dev_loss);
        assert_eq!(x.dev_bleu, y.dev_bleu);
        assert_eq!(x.samples, y.samples);
        assert_eq!(x.lr, y.lr);
        assert_eq!(x.improved, y.improved);
    }
    assert_eq!(a.best_epoch, b.best_epoch);
}

#[test]
fn stop_and_resume_is_exact_mid_epoch_with_dropout() {
    check_resume(DecoderKind::Merge, 0.5, &[(2, 3)]);
    check_resume(DecoderKind::Inject, 0.5, &[(1, 5)]);
}

#[test]
fn stop_and_resume_is_exact_over_several_stops_and_epoch_boundaries() {
    check_resume(DecoderKind::Merge, 0.0, &[(1, 1), (1, 7), (3, 2)]);
}

#[test]
fn stop_before_the_first_step_leaves_a_resumable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(true);
    let s = train(
        &cfg(DecoderKind::Merge, 0.0),
        &tcfg(),
        &data(),
        dir.path(),
        false,
        &Device::Cpu,
        &mut |_| {},
        &stop,
    )
    .unwrap();
    assert!(s.stopped);
    assert_eq!(entries(dir.path()), vec!["last"]);
    let (r, _) = run(
        &cfg(DecoderKind::Merge, 0.0),
        &tcfg(),
        &data(),
        dir.path(),
        true,
        None,
    );
    assert_eq!(r.unwrap().epochs_completed, 3);
}

#[test]
fn plateau_decays_the_learning_rate_and_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    let mut tc = tcfg();
    tc.lr = 1e-9; // nothing changes, so dev BLEU never improves after epoch 1
    tc.epochs = 10;
    tc.lr_patience = 1;
    tc.early_stop_patience = 3;
    let (r, _) = run(
        &cfg(DecoderKind::Merge, 0.0),
        &tc,
        &data(),
        dir.path(),
        false,
        None,
    );
    let s = r.unwrap();
    assert!(s.early_stopped);
    assert_eq!(s.epochs_completed, 4);
    assert_eq!(s.best_epoch, 1);
    let lrs: Vec<f32> = s.history.iter().map(|r| r.lr).collect();
    assert_eq!(lrs, vec![1e-9, 5e-10, 2.5e-10, 1.25e-10]);
    assert!(s.history.iter().skip(1).all(|r| !r.improved));
    assert_eq!(s.history.last().unwrap().eta_seconds, 0.0);
    // Resuming a run that stopped early does nothing more.
    let (r, events) = run(
        &cfg(DecoderKind::Merge, 0.0),
        &tc,
        &data(),
        dir.path(),
        true,
        None,
    );
    assert_eq!(r.unwrap().epochs_completed, 4);
    assert!(!events.iter().any(|e| matches!(e, TrainEvent::Step { .. })));
}

#[test]
fn resume_refuses_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let dc = cfg(DecoderKind::Merge, 0.0);
    let (r, _) = run(&dc, &tcfg(), &data(), dir.path(), true, None);
    assert!(matches!(r, Err(TrainError::Resume(_))), "nothing to resume");
    run(&dc, &tcfg(), &data(), dir.path(), false, Some((1, 2)))
        .0
        .unwrap();
    let mut tc = tcfg();
    tc.batch_size = 8;
    assert!(matches!(
        run(&dc, &tc, &data(), dir.path(), true, None).0,
        Err(TrainError::Resume(_))
    ));
    let other = cfg(DecoderKind::Inject, 0.0);
    let err = run(&other, &tcfg(), &data(), dir.path(), true, None)
        .0
        .unwrap_err();
    assert!(err.to_string().contains("train_state.json"), "{err}");
    let mut d = data();
    d.train.pop();
    assert!(matches!(
        run(&dc, &tcfg(), &d, dir.path(), true, None).0,
        Err(TrainError::Resume(_))
    ));
    // A longer run continues from the checkpoint.
    let mut tc = tcfg();
    tc.epochs = 4;
    let s = run(&dc, &tc, &data(), dir.path(), true, None).0.unwrap();
    assert_eq!(s.epochs_completed, 4);
}

#[test]
fn bad_data_and_settings_are_errors() {
    let dc = cfg(DecoderKind::Merge, 0.0);
    let dir = tempfile::tempdir().unwrap();
    let bad =
        |d: TrainData, tc: TrainConfig| run(&dc, &tc, &d, dir.path(), false, None).0.unwrap_err();

    let mut d = data();
    d.train[3].1.push(30);
    assert!(matches!(bad(d, tcfg()), TrainError::Data(_)));
    let mut d = data();
    d.train[0].1.insert(0, 2); // END inside a caption
    assert!(matches!(bad(d, tcfg()), TrainError::Data(_)));
    let mut d = data();
    d.dev[0].0 = IMAGES;
    assert!(matches!(bad(d, tcfg()), TrainError::Data(_)));
    let mut d = data();
    d.dev.clear();
    assert!(matches!(bad(d, tcfg()), TrainError::Data(_)));
    let mut d = data();
    d.id_to_word.pop();
    assert!(matches!(bad(d, tcfg()), TrainError::Data(_)));
    let mut d = data();
    d.features.pop();
    assert!(matches!(bad(d, tcfg()), TrainError::Data(_)));
    let mut d = data();
    d.features[5] = f32::NAN;
    assert!(matches!(bad(d, tcfg()), TrainError::Data(_)));
    let mut d = data();
    d.sample_images.push((99, "x".into()));
    assert!(matches!(bad(d, tcfg()), TrainError::Data(_)));
    for tc in [
        TrainConfig {
            batch_size: 0,
            ..tcfg()
        },
        TrainConfig {
            lr: f32::NAN,
            ..tcfg()
        },
        TrainConfig {
            lr_decay: 0.0,
            ..tcfg()
        },
        TrainConfig {
            max_len: 0,
            ..tcfg()
        },
    ] {
        assert!(matches!(bad(data(), tc), TrainError::Config(_)));
    }
    assert!(
        entries(dir.path()).is_empty(),
        "nothing written for bad input"
    );
}
