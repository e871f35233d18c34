//! The hand-written training engine against the candle decoder and finite differences.

use candle_core::{Device, Tensor};
use captioner::decoder::{DecoderConfig, DecoderKind, END, START};
use captioner::train::{Adam, CpuEngine as Engine, Example, Features, Params, Rng};

fn small(kind: DecoderKind) -> DecoderConfig {
    DecoderConfig {
        kind,
        feature_dim: 12,
        embed_dim: 8,
        hidden_dim: 10,
        vocab_size: 23,
        dropout: 0.0,
        attention: None,
    }
}

/// `n` captions of varied lengths (including an empty one) over `images` images.
fn captions(n: usize, images: usize, vocab: usize, seed: u64) -> Vec<(usize, Vec<u32>)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let len = if i == 0 { 0 } else { 1 + rng.below(9) };
            let words = (0..len).map(|_| 3 + rng.below(vocab - 3) as u32).collect();
            (rng.below(images), words)
        })
        .collect()
}

fn random_features(images: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..images * dim).map(|_| rng.next_f32() * 2.0).collect()
}

fn examples(caps: &[(usize, Vec<u32>)]) -> Vec<Example<'_>> {
    caps.iter()
        .map(|(i, w)| Example {
            image: *i,
            words: w,
        })
        .collect()
}

/// Random weights everywhere (biases included), so no gradient is trivially zero.
fn random_params(cfg: &DecoderConfig, seed: u64) -> Params {
    let mut p = Params::init(cfg, seed).unwrap();
    let mut rng = Rng::new(seed + 1);
    for x in p.as_mut_slice() {
        *x += (rng.next_f32() - 0.5) * 0.3;
    }
    p
}

#[test]
fn engine_loss_matches_step_by_step_candle_decoding() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = small(kind);
        let params = random_params(&cfg, 3);
        let feats = random_features(5, cfg.feature_dim, 4);
        let caps = captions(9, 5, cfg.vocab_size, 5);
        let mut engine = Engine::new(&cfg).unwrap();
        let f = Features::new(&feats, cfg.feature_dim).unwrap();
        let loss = engine.eval_loss(&params, f, &examples(&caps)).unwrap();
        let expected_tokens: usize = caps.iter().map(|(_, w)| w.len() + 1).sum();
        assert_eq!(loss.tokens, expected_tokens);

        let dec = params.to_decoder(&Device::Cpu).unwrap();
        let mut sum = 0.0f64;
        for (img, words) in &caps {
            let row = &feats[img * cfg.feature_dim..(img + 1) * cfg.feature_dim];
            let ft = Tensor::from_slice(row, (1, cfg.feature_dim), &Device::Cpu).unwrap();
            let mut state = dec.start(&ft).unwrap();
            let mut input = START;
            for t in 0..=words.len() {
                let target = if t < words.len() { words[t] } else { END };
                let (lp, next) = dec.step(&state, &[input]).unwrap();
                let lp = lp.squeeze(0).unwrap().to_vec1::<f32>().unwrap();
                sum -= f64::from(lp[target as usize]);
                state = next;
                input = target;
            }
        }
        let mean = sum / expected_tokens as f64;
        assert!(
            (loss.mean() - mean).abs() < 1e-4 * mean.abs().max(1.0),
            "{kind}: engine {} vs candle {mean}",
            loss.mean()
        );
    }
}

#[test]
fn gradients_match_finite_differences() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = small(kind);
        let mut params = random_params(&cfg, 8);
        let feats = random_features(4, cfg.feature_dim, 9);
        let caps = captions(7, 4, cfg.vocab_size, 10);
        let batch = examples(&caps);
        let f = Features::new(&feats, cfg.feature_dim).unwrap();
        let mut engine = Engine::new(&cfg).unwrap();
        let mut grads = Params::zeros(&cfg).unwrap();
        let base = engine
            .train_step(&params, &mut grads, f, &batch, None)
            .unwrap();
        let eval = engine.eval_loss(&params, f, &batch).unwrap();
        assert!((base.mean() - eval.mean()).abs() < 1e-9);

        let specs: Vec<_> = params.specs().to_vec();
        for spec in &specs {
            let range = params.range(&spec.name).unwrap();
            // The three largest analytic gradients of this tensor.
            let mut idx: Vec<usize> = range.clone().collect();
            idx.sort_by(|&a, &b| {
                grads.as_slice()[b]
                    .abs()
                    .total_cmp(&grads.as_slice()[a].abs())
            });
            for &i in idx.iter().take(3) {
                let analytic = f64::from(grads.as_slice()[i]);
                let eps = 3e-3f32;
                let orig = params.as_slice()[i];
                params.as_mut_slice()[i] = orig + eps;
                let up = engine.eval_loss(&params, f, &batch).unwrap().mean();
                params.as_mut_slice()[i] = orig - eps;
                let down = engine.eval_loss(&params, f, &batch).unwrap().mean();
                params.as_mut_slice()[i] = orig;
                let numeric = (up - down) / (2.0 * f64::from(eps));
                let tol = 2e-3 + 3e-2 * analytic.abs().max(numeric.abs());
                assert!(
                    (analytic - numeric).abs() <= tol,
                    "{kind} {}[{}]: analytic {analytic:.6} numeric {numeric:.6}",
                    spec.name,
                    i - range.start
                );
            }
        }
    }
}

#[test]
fn dropout_is_reproducible_and_changes_the_loss() {
    let mut cfg = small(DecoderKind::Merge);
    cfg.dropout = 0.5;
    let params = random_params(&cfg, 12);
    let feats = random_features(4, cfg.feature_dim, 13);
    let caps = captions(8, 4, cfg.vocab_size, 14);
    let batch = examples(&caps);
    let f = Features::new(&feats, cfg.feature_dim).unwrap();
    let mut engine = Engine::new(&cfg).unwrap();
    let mut g1 = Params::zeros(&cfg).unwrap();
    let mut g2 = Params::zeros(&cfg).unwrap();
    let a = engine
        .train_step(&params, &mut g1, f, &batch, Some(&mut Rng::new(5)))
        .unwrap();
    let b = engine
        .train_step(&params, &mut g2, f, &batch, Some(&mut Rng::new(5)))
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(g1, g2);
    let c = engine
        .train_step(&params, &mut g2, f, &batch, Some(&mut Rng::new(6)))
        .unwrap();
    assert_ne!(a.sum, c.sum);
    let clean = engine.eval_loss(&params, f, &batch).unwrap();
    assert_ne!(clean.sum, a.sum);
}

#[test]
fn loss_falls_when_overfitting_a_tiny_set() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = small(kind);
        let mut params = Params::init(&cfg, 1).unwrap();
        let feats = random_features(4, cfg.feature_dim, 2);
        let caps = captions(8, 4, cfg.vocab_size, 3);
        let batch = examples(&caps);
        let f = Features::new(&feats, cfg.feature_dim).unwrap();
        let mut engine = Engine::new(&cfg).unwrap();
        let mut grads = Params::zeros(&cfg).unwrap();
        let mut adam = Adam::new(params.len(), 0.02);
        let first = engine.eval_loss(&params, f, &batch).unwrap().mean();
        for _ in 0..300 {
            engine
                .train_step(&params, &mut grads, f, &batch, None)
                .unwrap();
            let norm = Adam::grad_norm(grads.as_slice());
            adam.update(
                params.as_mut_slice(),
                grads.as_slice(),
                Adam::clip_factor(norm, 5.0),
            );
        }
        let last = engine.eval_loss(&params, f, &batch).unwrap().mean();
        assert!(first > 2.5, "{kind}: starts near ln(vocab): {first}");
        assert!(last < 0.3, "{kind}: {first} -> {last}");
    }
}

#[test]
fn bad_batches_are_errors() {
    let cfg = small(DecoderKind::Merge);
    let params = Params::init(&cfg, 1).unwrap();
    let feats = random_features(2, cfg.feature_dim, 2);
    let f = Features::new(&feats, cfg.feature_dim).unwrap();
    let mut engine = Engine::new(&cfg).unwrap();
    let words = [4u32, 5];
    let bad_image = [Example {
        image: 2,
        words: &words,
    }];
    assert!(engine.eval_loss(&params, f, &bad_image).is_err());
    let bad_word = [4u32, 23];
    let bad_token = [Example {
        image: 0,
        words: &bad_word,
    }];
    assert!(engine.eval_loss(&params, f, &bad_token).is_err());
    assert!(Features::new(&feats, 5).is_err());
    let wrong_dim = Features::new(&feats, 8).unwrap();
    assert!(engine.eval_loss(&params, wrong_dim, &[]).is_err());
    assert_eq!(engine.eval_loss(&params, f, &[]).unwrap().tokens, 0);
}

/// An empty batch's gradient is zero, whatever the engine computed before it (it once
/// repeated the backward pass of the last forward pass, here an evaluation's).
#[test]
fn an_empty_batch_has_zero_gradients() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = DecoderConfig {
            dropout: 0.3,
            ..small(kind)
        };
        let params = random_params(&cfg, 5);
        let feats = random_features(4, cfg.feature_dim, 6);
        let f = Features::new(&feats, cfg.feature_dim).unwrap();
        let caps = captions(6, 4, cfg.vocab_size, 7);
        let batch = examples(&caps);
        let mut engine = Engine::new(&cfg).unwrap();
        let mut grads = Params::zeros(&cfg).unwrap();
        let mut rng = Rng::new(8);
        engine
            .train_step(&params, &mut grads, f, &batch, Some(&mut rng))
            .unwrap();
        assert!(grads.as_slice().iter().any(|&g| g != 0.0));
        engine.eval_loss(&params, f, &batch).unwrap();
        let loss = engine
            .train_step(&params, &mut grads, f, &[], Some(&mut rng))
            .unwrap();
        assert_eq!(loss.tokens, 0, "{kind:?}");
        assert!(grads.as_slice().iter().all(|&g| g == 0.0), "{kind:?}");
    }
}

#[test]
fn full_size_steps_are_bitwise_reproducible() {
    // Large enough for the multi-threaded matrix products: the same step twice must give the
    // same bits (exact resume depends on it).
    let cfg = DecoderConfig::merge(2531);
    let params = Params::init(&cfg, 1).unwrap();
    let feats = random_features(70, cfg.feature_dim, 2);
    let caps = captions(64, 70, cfg.vocab_size, 3);
    let batch = examples(&caps);
    let f = Features::new(&feats, cfg.feature_dim).unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut engine = Engine::new(&cfg).unwrap();
        let mut grads = Params::zeros(&cfg).unwrap();
        let loss = engine
            .train_step(&params, &mut grads, f, &batch, Some(&mut Rng::new(9)))
            .unwrap();
        runs.push((loss, grads));
    }
    assert_eq!(runs[0].0, runs[1].0);
    assert!(
        runs[0].1 == runs[1].1,
        "gradients differ between identical steps"
    );
}
