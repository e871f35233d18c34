//! Decoder shapes and greedy / beam-search decoding on small random models.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use captioner::decoder::{
    DecodeState, Decoder, DecoderConfig, DecoderKind, END, PAD, START, SearchOptions, UNK,
    beam_search, beam_search_with_options, greedy, greedy_with_options,
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
        attention: None,
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
                let n = c.tokens.len() + usize::from(c.ended);
                let want = SearchOptions::default().score(f64::from(c.log_prob), n) as f32;
                assert!((c.score - want).abs() < 1e-5);
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

/// A decoder whose next word depends only on the last one: START -> 4 -> 5 -> 6 -> 4 -> ..
/// with probability about 0.99 (END is the second choice), like a
/// model stuck in "on a bench on a bench". Either kind: for merge the image projection is
/// zero and the hidden layer the identity.
fn cycle_decoder(kind: DecoderKind) -> Decoder {
    let v = 10;
    let cfg = DecoderConfig {
        kind,
        feature_dim: 4,
        embed_dim: v,
        hidden_dim: v,
        vocab_size: v,
        dropout: 0.0,
        attention: None,
    };
    let eye = |scale: f32| -> Vec<f32> {
        let mut m = vec![0.0; v * v];
        for i in 0..v {
            m[i * v + i] = scale;
        }
        m
    };
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: &str, values: Vec<f32>, shape: &[usize]| {
        t.insert(
            name.to_string(),
            Tensor::from_vec(values, shape, &Device::Cpu).unwrap(),
        );
    };
    put("embed.weight", eye(1.0), &[v, v]);
    // Gates i, f, g, o: input and output gates open, forget gate shut, cell input 3x.
    let mut w_ih = vec![0.0; 4 * v * v];
    w_ih[2 * v * v..3 * v * v].copy_from_slice(&eye(3.0));
    put("lstm.weight_ih_l0", w_ih, &[4 * v, v]);
    put("lstm.weight_hh_l0", vec![0.0; 4 * v * v], &[4 * v, v]);
    let mut b = vec![0.0; 4 * v];
    b[..v].fill(10.0);
    b[v..2 * v].fill(-10.0);
    b[3 * v..].fill(10.0);
    put("lstm.bias_ih_l0", b, &[4 * v]);
    put("lstm.bias_hh_l0", vec![0.0; 4 * v], &[4 * v]);
    let mut out = vec![0.0; v * v];
    for (from, to) in [(START, 4), (4, 5), (5, 6), (6, 4)] {
        out[to as usize * v + from as usize] = 10.0;
    }
    put("output.weight", out, &[v, v]);
    // END is the clear second choice.
    let mut out_b = vec![0.0; v];
    out_b[END as usize] = 2.0;
    put("output.bias", out_b, &[v]);
    match kind {
        DecoderKind::Merge => {
            put("image.weight", vec![0.0; v * 4], &[v, 4]);
            put("image.bias", vec![0.0; v], &[v]);
            put("hidden.weight", eye(1.0), &[v, v]);
            put("hidden.bias", vec![0.0; v], &[v]);
        }
        _ => {
            put("init_h.weight", vec![0.0; v * 4], &[v, 4]);
            put("init_h.bias", vec![0.0; v], &[v]);
            put("init_c.weight", vec![0.0; v * 4], &[v, 4]);
            put("init_c.bias", vec![0.0; v], &[v]);
        }
    }
    Decoder::from_tensors(&cfg, t, &Device::Cpu).unwrap()
}

/// The first n-gram of `tokens` that occurs twice, if any.
fn repeated_ngram(tokens: &[u32], n: usize) -> Option<Vec<u32>> {
    let grams: Vec<&[u32]> = tokens.windows(n).collect();
    for (i, g) in grams.iter().enumerate() {
        if grams[i + 1..].contains(g) {
            return Some(g.to_vec());
        }
    }
    None
}

#[test]
fn repeated_ngrams_are_blocked_in_greedy_and_beam_search() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        for fast in [true, false] {
            let mut d = cycle_decoder(kind);
            if !fast {
                d = d.without_cpu_fast_path();
            }
            let f = Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap();
            // Without blocking the model loops until max_len.
            let plain = greedy_with_options(&d, &f, 12, &SearchOptions::plain()).unwrap();
            assert_eq!(plain[0].tokens[..7], [4, 5, 6, 4, 5, 6, 4], "{kind}");
            assert!(!plain[0].ended);
            assert!(repeated_ngram(&plain[0].tokens, 3).is_some());
            let plain_beam =
                beam_search_with_options(&d, &f, 3, 12, &SearchOptions::plain()).unwrap();
            assert!(
                plain_beam
                    .iter()
                    .any(|c| repeated_ngram(&c.tokens, 3).is_some())
            );
            // Blocking repeated 3-grams ends the loop at "4 5 6 4 5".
            let three = SearchOptions {
                block_ngram: 3,
                ..SearchOptions::default()
            };
            let g = greedy_with_options(&d, &f, 12, &three).unwrap().remove(0);
            assert_eq!(g.tokens, [4, 5, 6, 4, 5], "{kind} fast {fast}");
            assert!(g.ended);
            for c in beam_search_with_options(&d, &f, 3, 12, &three).unwrap() {
                assert_eq!(repeated_ngram(&c.tokens, 3), None, "{kind} {:?}", c.tokens);
            }
            // The default blocks repeated 2-grams: one word earlier ("6 4" is new, "4 5" is
            // not).
            let g = greedy(&d, &f, 12).unwrap().remove(0);
            assert_eq!(g.tokens, [4, 5, 6, 4]);
            assert!(g.ended);
            for c in beam_search(&d, &f, 4, 12).unwrap() {
                assert_eq!(repeated_ngram(&c.tokens, 2), None, "{kind} {:?}", c.tokens);
            }
        }
    }
}

#[test]
fn random_models_never_repeat_an_ngram() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        // A small vocabulary makes repeats likely without blocking.
        let cfg = small(kind, 8);
        let mut repeats_without = 0;
        for seed in 0..6 {
            let d = random_decoder(&cfg, 300 + seed);
            let f = features(4, 24, 400 + seed);
            let plain = greedy_with_options(&d, &f, 20, &SearchOptions::plain()).unwrap();
            repeats_without += plain
                .iter()
                .filter(|c| repeated_ngram(&c.tokens, 3).is_some())
                .count();
            let n = SearchOptions::default().block_ngram;
            assert!(n >= 2);
            for c in greedy(&d, &f, 20).unwrap() {
                assert_eq!(repeated_ngram(&c.tokens, n), None, "{:?}", c.tokens);
            }
            for i in 0..4 {
                let one = f.narrow(0, i, 1).unwrap();
                for c in beam_search(&d, &one, 4, 20).unwrap() {
                    assert_eq!(repeated_ngram(&c.tokens, n), None, "{:?}", c.tokens);
                }
            }
        }
        assert!(
            repeats_without > 0,
            "{kind}: the test needs models that repeat"
        );
    }
}

#[test]
fn beam_alternatives_are_distinct_sentences() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let cfg = small(kind, 12);
        for seed in 0..4 {
            let d = random_decoder(&cfg, 500 + seed);
            let f = features(1, 24, 600 + seed);
            for options in [SearchOptions::default(), SearchOptions::plain()] {
                let caps = beam_search_with_options(&d, &f, 6, 10, &options).unwrap();
                assert!(!caps.is_empty());
                for (i, a) in caps.iter().enumerate() {
                    for b in &caps[i + 1..] {
                        assert_ne!(a.tokens, b.tokens, "{kind} seed {seed}");
                    }
                }
            }
        }
    }
}

#[test]
fn length_normalisation_follows_alpha() {
    let cfg = small(DecoderKind::Merge, 30);
    let d = random_decoder(&cfg, 41);
    let f = features(1, 24, 42);
    for alpha in [0.0f32, 0.5, 1.0, 1.5] {
        let options = SearchOptions {
            length_alpha: alpha,
            ..SearchOptions::default()
        };
        let caps = beam_search_with_options(&d, &f, 4, 15, &options).unwrap();
        for c in &caps {
            let n = (c.tokens.len() + usize::from(c.ended)) as f32;
            let want = c.log_prob / n.powf(alpha);
            assert!((c.score - want).abs() < 1e-4, "alpha {alpha}");
        }
        for w in caps.windows(2) {
            assert!(w[0].score >= w[1].score);
        }
        if alpha == 0.0 {
            // Plain log-probability: the best caption is the most probable one.
            for w in caps.windows(2) {
                assert!(w[0].log_prob >= w[1].log_prob);
            }
        }
    }
    let bad = SearchOptions {
        length_alpha: f32::NAN,
        ..SearchOptions::default()
    };
    assert!(beam_search_with_options(&d, &f, 3, 10, &bad).is_err());
    assert!(greedy_with_options(&d, &f, 10, &bad).is_err());
}
