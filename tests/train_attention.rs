//! The attention decoder: the hand-written CPU engine against candle's autograd (same loss
//! and gradients, doubly stochastic regularisation included, with and without identical
//! dropout masks), and decoding that returns each word's attention map.

use candle_core::{Device, Tensor};
use captioner::decoder::{
    AttentionConfig, Decoder, DecoderConfig, DecoderKind, SearchOptions, beam_search,
    beam_search_with_options, greedy,
};
use captioner::train::{Adam, CandleEngine, CpuEngine, Example, Features, Params, Rng};

fn small(dropout: f32) -> DecoderConfig {
    DecoderConfig {
        kind: DecoderKind::Attention,
        feature_dim: 12,
        embed_dim: 8,
        hidden_dim: 10,
        vocab_size: 30,
        dropout,
        attention: Some(AttentionConfig {
            rows: 2,
            cols: 3,
            attention_dim: 7,
        }),
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

fn perturbed(cfg: &DecoderConfig, seed: u64) -> Params {
    let mut rng = Rng::new(seed);
    let mut params = Params::init(cfg, seed).unwrap();
    for x in params.as_mut_slice() {
        *x += (rng.next_f32() - 0.5) * 0.4;
    }
    params
}

#[test]
fn cpu_engine_and_candle_autograd_agree_on_loss_and_gradients() {
    for dropout in [0.0, 0.3] {
        let cfg = small(dropout);
        let dim = cfg.input_dim();
        assert_eq!(dim, 6 * 12);
        let mut rng = Rng::new(3);
        let feats: Vec<f32> = (0..10 * dim).map(|_| rng.next_f32() * 2.0).collect();
        let features = Features::new(&feats, dim).unwrap();
        let caps = captions(12, 10, 30, 5);
        let batch: Vec<Example<'_>> = caps
            .iter()
            .map(|(i, w)| Example {
                image: *i,
                words: w,
            })
            .collect();
        let params = perturbed(&cfg, 11);
        let adam = Adam::new(params.len(), 1e-3);

        let mut cpu = CpuEngine::new(&cfg).unwrap();
        let mut cpu_grads = Params::zeros(&cfg).unwrap();
        let mut r1 = Rng::derive(&[1, 2, 3]);
        let cpu_loss = cpu
            .train_step(&params, &mut cpu_grads, features, &batch, Some(&mut r1))
            .unwrap();
        let reg = cpu.last_regularisation();
        assert!(reg > 0.0);

        let candle = CandleEngine::new(&params, &adam, &Device::Cpu).unwrap();
        let mut r2 = Rng::derive(&[1, 2, 3]);
        let (candle_loss, grads) = candle.backward(features, &batch, Some(&mut r2)).unwrap();
        let candle_grads = grads.to_params(&cfg).unwrap();

        let what = format!("dropout {dropout}");
        assert_eq!(cpu_loss.tokens, candle_loss.tokens, "{what}");
        let (a, b) = (cpu_loss.mean(), candle_loss.mean());
        assert!((a - b).abs() / a <= 1e-4, "{what}: loss {a} vs {b}");
        for (spec, want) in cpu_grads.iter() {
            let got = candle_grads.get(&spec.name).unwrap();
            if spec.name == "att_full.bias" {
                // A shift of every score leaves the softmax unchanged: zero up to rounding.
                assert!(
                    want[0].abs() < 1e-5 && got[0].abs() < 1e-5,
                    "{want:?} {got:?}"
                );
                continue;
            }
            let e = rel_err(want, got);
            assert!(e <= 1e-4, "{what}: gradient of {} off by {e}", spec.name);
            assert!(
                got.iter().any(|&x| x != 0.0),
                "{what}: {} unused",
                spec.name
            );
        }
        let e1 = cpu.eval_loss(&params, features, &batch).unwrap().mean();
        let e2 = candle.eval_loss(features, &batch).unwrap().mean();
        assert!((e1 - e2).abs() / e1 <= 1e-4, "{what}: eval {e1} vs {e2}");
    }
}

#[test]
fn the_regularisation_is_in_the_gradient() {
    // A finite-difference check of the attention scorer's bias-free weight: with the
    // regularisation the objective is mean token loss + reg, and the engine's gradient says
    // how it changes.
    let cfg = small(0.0);
    let dim = cfg.input_dim();
    let mut rng = Rng::new(8);
    let feats: Vec<f32> = (0..6 * dim).map(|_| rng.next_f32()).collect();
    let features = Features::new(&feats, dim).unwrap();
    let caps = captions(5, 6, 30, 9);
    let batch: Vec<Example<'_>> = caps
        .iter()
        .map(|(i, w)| Example {
            image: *i,
            words: w,
        })
        .collect();
    let params = perturbed(&cfg, 4);
    let mut cpu = CpuEngine::new(&cfg).unwrap();
    let mut grads = Params::zeros(&cfg).unwrap();
    cpu.train_step(&params, &mut grads, features, &batch, None)
        .unwrap();
    let objective = |p: &Params, cpu: &mut CpuEngine| -> f64 {
        let mut g = Params::zeros(&cfg).unwrap();
        let l = cpu.train_step(p, &mut g, features, &batch, None).unwrap();
        l.mean() + cpu.last_regularisation()
    };
    let r = params.range("att_full.weight").unwrap();
    for k in 0..3 {
        let i = r.start + k;
        let h = 1e-2f32;
        let mut plus = params.clone();
        plus.as_mut_slice()[i] += h;
        let mut minus = params.clone();
        minus.as_mut_slice()[i] -= h;
        let numeric =
            (objective(&plus, &mut cpu) - objective(&minus, &mut cpu)) / f64::from(2.0 * h);
        let analytic = f64::from(grads.as_slice()[i]);
        assert!(
            (numeric - analytic).abs() <= 2e-3 * (1.0 + analytic.abs()),
            "att_full.weight[{k}]: numeric {numeric} vs engine {analytic}"
        );
    }
}

#[test]
fn greedy_and_beam_search_return_one_attention_map_per_word() {
    let cfg = small(0.0);
    let dim = cfg.input_dim();
    let params = perturbed(&cfg, 21);
    let d: Decoder = params.to_decoder(&Device::Cpu).unwrap();
    let mut rng = Rng::new(22);
    let feats: Vec<f32> = (0..3 * dim).map(|_| rng.next_f32()).collect();
    let f = Tensor::from_vec(feats, (3, dim), &Device::Cpu).unwrap();
    let check = |c: &captioner::decoder::Caption| {
        assert_eq!(c.attention.len(), c.tokens.len());
        for map in &c.attention {
            assert_eq!(map.len(), 6);
            let s: f32 = map.iter().sum();
            assert!((s - 1.0).abs() < 1e-4, "sum {s}");
            assert!(map.iter().all(|&w| (0.0..=1.0).contains(&w)));
        }
    };
    for c in greedy(&d, &f, 12).unwrap() {
        check(&c);
    }
    for i in 0..3 {
        let one = f.narrow(0, i, 1).unwrap();
        let caps = beam_search(&d, &one, 3, 12).unwrap();
        assert!(!caps.is_empty());
        for c in &caps {
            check(c);
        }
        // Width 1 is greedy, maps included.
        let g = greedy(&d, &one, 12).unwrap().remove(0);
        let b = beam_search_with_options(&d, &one, 1, 12, &SearchOptions::default()).unwrap();
        assert_eq!(b[0].tokens, g.tokens);
        for (x, y) in b[0].attention.iter().zip(&g.attention) {
            for (p, q) in x.iter().zip(y) {
                assert!((p - q).abs() < 1e-5);
            }
        }
    }
    // A merge decoder's captions carry no maps.
    let merge = DecoderConfig::merge(30);
    let m = Decoder::init(&merge, 1, &Device::Cpu).unwrap();
    let pooled = Tensor::zeros((1, 1280), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(greedy(&m, &pooled, 5).unwrap()[0].attention.is_empty());
}

#[test]
fn a_model_folder_records_the_kind_and_the_grid() {
    use captioner::model_dir::{ModelConfig, ModelMeta, load_model, save_model};
    let cfg = small(0.5);
    let params = perturbed(&cfg, 31);
    let vocab: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    save_model(
        &dir,
        &ModelConfig::new(cfg.clone(), "enc", serde_json::json!({"min_count": 5})),
        &vocab,
        &params.to_tensors(&Device::Cpu).unwrap(),
        &ModelMeta::now("flickr8k", "train", 1, "enc"),
    )
    .unwrap();
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(text.contains("\"attention\": {"), "{text}");
    assert!(
        text.contains("\"rows\": 2") && text.contains("\"cols\": 3"),
        "{text}"
    );
    let m = load_model(&dir, &Device::Cpu).unwrap();
    assert_eq!(m.config.decoder, cfg);
    assert_eq!(m.decoder.config().cells(), 6);
    let feats: Vec<f32> = (0..cfg.input_dim()).map(|i| (i % 7) as f32 * 0.1).collect();
    let f = Tensor::from_vec(feats, (1, cfg.input_dim()), &Device::Cpu).unwrap();
    let a = greedy(&m.decoder, &f, 8).unwrap();
    let b = greedy(&params.to_decoder(&Device::Cpu).unwrap(), &f, 8).unwrap();
    assert_eq!(a, b);
    // A config without its grid is refused with a reason, not a panic.
    let broken = text.replace("\"attention\": {", "\"grid_removed\": {");
    assert_ne!(broken, text);
    std::fs::write(dir.join("config.json"), broken).unwrap();
    let err = load_model(&dir, &Device::Cpu).unwrap_err();
    assert!(
        format!("{err:#}").contains("grid") || err.to_string().contains("grid"),
        "{err}"
    );
    // A merge config with a grid is refused too.
    let mut merge = DecoderConfig::merge(30);
    merge.attention = cfg.attention;
    assert!(merge.validate().is_err());
}

#[test]
fn the_cpu_fast_path_decodes_as_candle_ops() {
    let cfg = small(0.0);
    let dim = cfg.input_dim();
    let fast = perturbed(&cfg, 41).to_decoder(&Device::Cpu).unwrap();
    let slow = fast.clone().without_cpu_fast_path();
    assert!(fast.has_cpu_fast_path() && !slow.has_cpu_fast_path());
    let mut rng = Rng::new(42);
    let feats: Vec<f32> = (0..4 * dim).map(|_| rng.next_f32()).collect();
    let f = Tensor::from_vec(feats, (4, dim), &Device::Cpu).unwrap();
    let close = |x: &captioner::decoder::Caption, y: &captioner::decoder::Caption| {
        assert_eq!(x.tokens, y.tokens);
        assert!((x.log_prob - y.log_prob).abs() < 1e-4);
        assert_eq!(x.attention.len(), y.attention.len());
        for (a, b) in x.attention.iter().zip(&y.attention) {
            for (p, q) in a.iter().zip(b) {
                assert!((p - q).abs() < 1e-5, "{p} vs {q}");
            }
        }
    };
    let a = greedy(&fast, &f, 12).unwrap();
    let b = greedy(&slow, &f, 12).unwrap();
    for (x, y) in a.iter().zip(&b) {
        close(x, y);
    }
    for i in 0..4 {
        let one = f.narrow(0, i, 1).unwrap();
        let a = beam_search(&fast, &one, 3, 12).unwrap();
        let b = beam_search(&slow, &one, 3, 12).unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            close(x, y);
        }
    }
}

#[test]
fn the_shipped_attention_model_fills_caption_results_with_maps() {
    use captioner::paths::{default_model_dir, shipped_models_dir};
    use captioner::pipeline::{Captioner, DecodeOptions};
    let dir = default_model_dir();
    let photo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/flickr8k_mini/Flicker8k_Dataset/1191338263_a4fa073154.jpg");
    let c = Captioner::load(&dir, &Device::Cpu).unwrap();
    assert!(c.wants_spatial());
    for beam in [1, 3] {
        let options = DecodeOptions {
            beam,
            ..DecodeOptions::default()
        };
        let r = c.caption_file(&photo, &options).unwrap();
        let maps = r
            .attention
            .as_ref()
            .expect("an attention model's caption has maps");
        assert_eq!((maps.rows, maps.cols), (7, 7));
        assert_eq!(maps.words.len(), r.words.len(), "{}", r.text);
        for m in &maps.words {
            assert_eq!(m.len(), 49);
            let s: f32 = m.iter().sum();
            assert!((s - 1.0).abs() < 1e-4, "sum {s}");
        }
    }
    // The merge model's captions have none.
    let merge = Captioner::load(&shipped_models_dir().join("merge"), &Device::Cpu).unwrap();
    let r = merge
        .caption_file(&photo, &DecodeOptions::default())
        .unwrap();
    assert!(r.attention.is_none());
}

#[test]
fn the_word_dog_looks_at_the_dog() {
    use captioner::paths::default_model_dir;
    use captioner::pipeline::{Captioner, DecodeOptions};
    // A 224x224 fixture photo of a black-and-white dog leaping for a frisbee. Its head and
    // chest lie in x 48..160, y 32..128 (chosen by looking at the photo): cells 1..5 of rows
    // 1..4 of the 7x7 grid (32 px a cell), 12 of the 49 cells.
    let photo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/flickr8k_mini/Flicker8k_Dataset/2294598473_40637b5c04.jpg");
    let c = Captioner::load(&default_model_dir(), &Device::Cpu).unwrap();
    let r = c.caption_file(&photo, &DecodeOptions::default()).unwrap();
    let maps = r.attention.as_ref().unwrap();
    let i = r
        .words
        .iter()
        .position(|w| w.word == "dog")
        .unwrap_or_else(|| panic!("no \"dog\" in {:?}", r.text));
    let map = &maps.words[i];
    let on_dog: f32 = (1..4)
        .flat_map(|row| (1..5).map(move |col| row * 7 + col))
        .map(|cell| map[cell])
        .sum();
    let uniform = 12.0 / 49.0;
    assert!(
        on_dog > 2.0 * uniform,
        "\"dog\" puts {on_dog:.2} of its attention on the dog (uniform: {uniform:.2})"
    );
}
