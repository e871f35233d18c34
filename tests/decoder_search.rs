//! Decoder shapes and greedy / beam-search decoding on small random models.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use captioner::decoder::{
    DecodeState, Decoder, DecoderConfig, DecoderKind, END, PAD, START, UNK, beam_search, greedy,
};
use captioner::train::{Params, Rng};
use std::collections::HashMap;

fn small(kind: DecoderKind, vocab: usize) -> DecoderConfig {
    DecoderConfig {
        kind,
        feature_dim: 24,
        embed_dim: 16,
        hidden_dim: 20,
        vocab_size: vocab,
        dropout: 0.5,
    }
}

/// A decoder with random weights (biases included), reproducible from `seed`.
fn random_decoder(cfg: &DecoderConfig, seed: u64) -> Decoder {
    let mut p = Params::init(cfg, seed).unwrap();
    let mut rng = Rng::new(seed + 1);
    for x in p.as_mut_slice() {
        *x += (rng.next_f32() - 0.5) * 0.5;
    }
    p.to_decoder(&Device::Cpu).unwrap()
}

fn features(n: usize, dim: usize, seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let v: Vec<f32> = (0..n * dim).map(|_| rng.next_f32() * 2.0).collect();
    Tensor::from_vec(v, (n, dim), &Device::Cpu).unwrap()
}

#[test]
fn builds_from_a_var_builder_with_one_initialisation() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = small(kind, 30);
        // No second initialisation scheme: an empty VarBuilder is refused, not filled.
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let err = Decoder::new(&cfg, vb).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(vm.all_vars().is_empty());
        // `Decoder::init` is the training engines' initialisation.
        let d = Decoder::init(&cfg, 7, &Device::Cpu).unwrap();
        assert_eq!(d.config(), &cfg);
        let p = Params::init(&cfg, 7).unwrap();
        let t = d.tensors().unwrap();
        for (spec, values) in p.iter() {
            let got = t[&spec.name]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_eq!(got, values, "{}", spec.name);
        }
        let caps = greedy(&d, &features(2, 24, 1), 5).unwrap();
        assert_eq!(caps.len(), 2);
    }
}

#[test]
fn step_shapes_and_normalised_log_probs() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = small(kind, 30);
        let d = random_decoder(&cfg, 1);
        let state: DecodeState = d.start(&features(3, 24, 2)).unwrap();
        assert_eq!(state.batch_size(), 3);
        let (lp, next) = d.step(&state, &[START, 5, 7]).unwrap();
        assert_eq!(lp.dims(), &[3, 30]);
        let sums = lp.exp().unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap();
        for s in sums {
            assert!((s - 1.0).abs() < 1e-5);
        }
        let sel = next.select(&[2, 2, 0, 1]).unwrap();
        assert_eq!(sel.batch_size(), 4);
        assert!(next.select(&[3]).is_err());
        assert!(
            d.step(&state, &[START]).is_err(),
            "token count must match rows"
        );
        assert!(
            d.step(&state, &[START, 1, 30]).is_err(),
            "token out of vocabulary"
        );
        // One image may be given as [F].
        let one = features(1, 24, 3).squeeze(0).unwrap();
        assert_eq!(d.start(&one).unwrap().batch_size(), 1);
        assert!(d.start(&features(2, 23, 3)).is_err());
    }
}

#[test]
fn exported_tensors_rebuild_the_same_decoder() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = small(kind, 30);
        let d = random_decoder(&cfg, 4);
        let t = d.tensors().unwrap();
        let specs = cfg.param_specs();
        assert_eq!(t.len(), specs.len());
        for s in &specs {
            assert_eq!(t[&s.name].dims(), s.shape.as_slice(), "{}", s.name);
        }
        let d2 = Decoder::from_tensors(&cfg, t, &Device::Cpu).unwrap();
        let f = features(2, 24, 5);
        let a = greedy(&d, &f, 10).unwrap();
        let b = greedy(&d2, &f, 10).unwrap();
        assert_eq!(a, b);
        // A wrong shape is refused with the tensor's name.
        let mut bad: HashMap<String, Tensor> = d.tensors().unwrap();
        bad.insert(
            "embed.weight".into(),
            Tensor::zeros((29, 16), DType::F32, &Device::Cpu).unwrap(),
        );
        let err = Decoder::from_tensors(&cfg, bad, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("embed.weight"), "{err}");
    }
}

#[test]
fn greedy_equals_beam_width_one() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = small(kind, 40);
        let d = random_decoder(&cfg, 7);
        let f = features(6, 24, 8);
        let batched = greedy(&d, &f, 12).unwrap();
        for (i, from_batch) in batched.iter().enumerate() {
            let one = f.narrow(0, i, 1).unwrap();
            let g = greedy(&d, &one, 12).unwrap().remove(0);
            let b = beam_search(&d, &one, 1, 12).unwrap();
            assert_eq!(b.len(), 1);
            assert_eq!(b[0].tokens, g.tokens, "{kind} image {i}");
            assert_eq!(b[0].ended, g.ended);
            assert!((b[0].log_prob - g.log_prob).abs() < 1e-5);
            assert!((b[0].score - g.score).abs() < 1e-5);
            // The batched greedy decodes the same captions.
            assert_eq!(from_batch.tokens, g.tokens);
            assert!((from_batch.log_prob - g.log_prob).abs() < 1e-4);
        }
    }
}

#[test]
fn beam_results_are_ranked_and_consistent() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = small(kind, 40);
        let d = random_decoder(&cfg, 11);
        for i in 0..4 {
            let f = features(1, 24, 100 + i);
            let caps = beam_search(&d, &f, 4, 15).unwrap();
            assert_eq!(caps.len(), 4);
            for w in caps.windows(2) {
                assert!(w[0].score >= w[1].score);
            }
            for c in &caps {
                assert_eq!(c.tokens.len(), c.word_probs.len());
                assert!(c.tokens.len() <= 15);
                let n = (c.tokens.len() + usize::from(c.ended)).max(1);
                assert!((c.score - c.log_prob / n as f32).abs() < 1e-5);
                assert!(c.log_prob <= 0.0);
                let words: f32 = c.word_probs.iter().map(|p| p.ln()).sum();
                assert!(words >= c.log_prob - 1e-4, "END adds a non-positive term");
                for &p in &c.word_probs {
                    assert!(p > 0.0 && p <= 1.0, "probability {p}");
                }
                assert!(!c.ended || !c.tokens.contains(&END));
            }
            // The best beam caption is at least as good (by raw log-prob, same length
            // normalisation aside) as some greedy caption cannot be guaranteed; but a wider
            // beam never returns fewer captions.
            assert_eq!(beam_search(&d, &f, 2, 15).unwrap().len(), 2);
        }
    }
}

#[test]
fn decoding_never_emits_unk_pad_or_start() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = small(kind, 25);
        let d = random_decoder(&cfg, 21);
        // Make the banned tokens by far the most likely ones.
        let mut t = d.tensors().unwrap();
        let mut bias = t["output.bias"].to_vec1::<f32>().unwrap();
        bias[UNK as usize] = 50.0;
        bias[PAD as usize] = 40.0;
        bias[START as usize] = 30.0;
        t.insert(
            "output.bias".into(),
            Tensor::new(bias.as_slice(), &Device::Cpu).unwrap(),
        );
        let d = Decoder::from_tensors(&cfg, t, &Device::Cpu).unwrap();
        let f = features(5, 24, 22);
        for c in greedy(&d, &f, 10).unwrap() {
            assert!(c.tokens.iter().all(|&x| x > UNK), "{:?}", c.tokens);
        }
        for i in 0..5 {
            let one = f.narrow(0, i, 1).unwrap();
            for c in beam_search(&d, &one, 3, 10).unwrap() {
                assert!(c.tokens.iter().all(|&x| x > UNK), "{:?}", c.tokens);
                for &p in &c.word_probs {
                    // Tiny next to the banned tokens' mass, but still a probability.
                    assert!(p > 0.0 && p <= 1.0);
                }
            }
        }
    }
}

#[test]
fn bad_arguments_are_errors() {
    let cfg = small(DecoderKind::Merge, 30);
    let d = random_decoder(&cfg, 1);
    let f = features(2, 24, 1);
    assert!(beam_search(&d, &f, 3, 10).is_err(), "two images");
    let one = f.narrow(0, 0, 1).unwrap();
    assert!(beam_search(&d, &one, 0, 10).is_err());
    assert!(beam_search(&d, &one, 3, 0).is_err());
    assert!(greedy(&d, &f, 0).is_err());
    assert!(greedy(&d, &features(2, 7, 1), 5).is_err());
    let mut bad = cfg.clone();
    bad.vocab_size = 3;
    assert!(bad.validate().is_err());
    bad = cfg.clone();
    bad.dropout = 1.0;
    assert!(bad.validate().is_err());
}

#[test]
fn cpu_fast_path_matches_candle_ops() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = small(kind, 40);
        let fast = random_decoder(&cfg, 31);
        let slow = fast.clone().without_cpu_fast_path();
        assert!(fast.has_cpu_fast_path() && !slow.has_cpu_fast_path());
        let f = features(5, 24, 32);
        let a = greedy(&fast, &f, 12).unwrap();
        let b = greedy(&slow, &f, 12).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.tokens, y.tokens, "{kind}");
            assert!((x.log_prob - y.log_prob).abs() < 1e-4);
            for (p, q) in x.word_probs.iter().zip(&y.word_probs) {
                assert!((p - q).abs() < 1e-5);
            }
        }
        for i in 0..5 {
            let one = f.narrow(0, i, 1).unwrap();
            let a = beam_search(&fast, &one, 3, 12).unwrap();
            let b = beam_search(&slow, &one, 3, 12).unwrap();
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.tokens, y.tokens, "{kind} image {i}");
                assert!((x.score - y.score).abs() < 1e-4);
            }
            // Width 1 equals greedy on the candle path too.
            let g = greedy(&slow, &one, 12).unwrap().remove(0);
            assert_eq!(beam_search(&slow, &one, 1, 12).unwrap()[0].tokens, g.tokens);
        }
    }
}
