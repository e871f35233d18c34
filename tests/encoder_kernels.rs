//! The fast NHWC CPU path against candle's generic conv2d path, with synthetic weights (no
//! files needed), for all Lite presets and odd input sizes.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use captioner::encoder::{Config, EfficientNetLite};

struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [-1, 1).
    fn sym(&mut self) -> f32 {
        2.0 * self.next_f32() - 1.0
    }
}

/// Deterministic synthetic checkpoint for `cfg`: scaled conv weights and plausible batch norms.
fn synthetic_weights(cfg: &Config, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = Rng(seed | 1);
    let mut out = HashMap::new();
    for (name, shape) in cfg.checkpoint_tensors() {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = if name.ends_with("running_var") {
            (0..n).map(|_| 0.5 + rng.next_f32()).collect()
        } else if name.ends_with("running_mean") || name.ends_with("bias") {
            (0..n).map(|_| 0.2 * rng.sym()).collect()
        } else if shape.len() == 1 {
            // batch-norm gamma
            (0..n).map(|_| 0.8 + 0.4 * rng.next_f32()).collect()
        } else {
            let fan_in: usize = shape[1..].iter().product();
            let scale = (3.0 / fan_in as f32).sqrt();
            (0..n).map(|_| scale * rng.sym()).collect()
        };
        out.insert(name, Tensor::from_vec(data, shape, &Device::Cpu).unwrap());
    }
    out
}

fn synthetic_model(cfg: &Config, seed: u64) -> EfficientNetLite {
    let vb = VarBuilder::from_tensors(synthetic_weights(cfg, seed), DType::F32, &Device::Cpu);
    EfficientNetLite::new(cfg, vb).unwrap()
}

fn input(n: usize, h: usize, w: usize, seed: u64) -> Tensor {
    let mut rng = Rng(seed | 1);
    let data: Vec<f32> = (0..n * h * w * 3).map(|_| rng.sym()).collect();
    Tensor::from_vec(data, (n, h, w, 3), &Device::Cpu).unwrap()
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().map(|x| x.abs()).fold(0f32, f32::max).max(1e-6);
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
        / scale
}

#[test]
fn fast_and_generic_paths_agree_on_odd_sizes() {
    let cfg = Config::lite0();
    let model = synthetic_model(&cfg, 7);
    for (n, h, w) in [(2, 64, 64), (1, 33, 47), (1, 1, 1), (3, 50, 17)] {
        let xs = input(n, h, w, (h * 131 + w) as u64);
        let fast = model.forward_fast(&xs).unwrap();
        let generic = model
            .forward_generic(&xs.permute((0, 3, 1, 2)).unwrap().contiguous().unwrap())
            .unwrap();
        assert_eq!(fast.feature_map.dims(), generic.feature_map.dims());
        let side = |s: usize| (0..5).fold(s, |s, _| s.div_ceil(2));
        assert_eq!(fast.feature_map.dims(), &[n, side(h), side(w), 1280]);
        let d = [
            max_rel_diff(&fast.feature_map, &generic.feature_map),
            max_rel_diff(&fast.pooled, &generic.pooled),
            max_rel_diff(&fast.logits, &generic.logits),
        ];
        println!("{n}x{h}x{w}: max rel diffs (map, pooled, logits) {d:?}");
        assert!(d.iter().all(|&x| x < 1e-4), "{n}x{h}x{w}: {d:?}");
        // the NCHW entry point dispatches to the fast path on the CPU
        let via_forward = model.forward(&xs.permute((0, 3, 1, 2)).unwrap()).unwrap();
        assert!(max_rel_diff(&via_forward.pooled, &fast.pooled) == 0.0);
    }
}

#[test]
fn every_layer_agrees_between_paths() {
    let cfg = Config::lite0();
    let model = synthetic_model(&cfg, 11);
    let xs = input(1, 40, 40, 5);
    let fast = model.layer_outputs(&xs).unwrap();
    let generic = model.layer_outputs_generic(&xs).unwrap();
    assert_eq!(fast.len(), 18);
    assert_eq!(generic.len(), 18);
    for ((name, f), (gname, g)) in fast.iter().zip(&generic) {
        assert_eq!(name, gname);
        assert_eq!(f.dims(), g.dims(), "{name}");
        let d = max_rel_diff(f, g);
        assert!(d < 1e-4, "{name}: max rel diff {d}");
    }
    let expected_channels: Vec<usize> = std::iter::once(32)
        .chain(cfg.blocks().iter().map(|b| b.output_channels))
        .chain(std::iter::once(1280))
        .collect();
    let channels: Vec<usize> = fast.iter().map(|(_, t)| t.dims4().unwrap().3).collect();
    assert_eq!(channels, expected_channels);
}

#[test]
fn all_presets_build_and_run_at_their_resolution() {
    for (cfg, side) in [
        (Config::lite0(), 7),
        (Config::lite1(), 8),
        (Config::lite2(), 9),
        (Config::lite3(), 9),
        (Config::lite4(), 10),
    ] {
        let model = synthetic_model(&cfg, 3);
        let size = cfg.image_size;
        assert_eq!(cfg.feature_map_size(size), side, "{}", cfg.name);
        let out = model.forward_fast(&input(1, size, size, 9)).unwrap();
        assert_eq!(
            out.feature_map.dims(),
            &[1, side, side, 1280],
            "{}",
            cfg.name
        );
        assert_eq!(out.pooled.dims(), &[1, 1280]);
        assert_eq!(out.logits.dims(), &[1, 1000]);
        let pooled = out.pooled.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(
            pooled
                .iter()
                .all(|v| v.is_finite() && *v >= 0.0 && *v <= 6.0),
            "{}",
            cfg.name
        );
    }
}

#[test]
fn bad_input_shapes_are_errors() {
    let model = synthetic_model(&Config::lite0(), 1);
    let gray = Tensor::zeros((1, 32, 32, 1), DType::F32, &Device::Cpu).unwrap();
    assert!(model.forward_fast(&gray).is_err());
    assert!(model.forward_nhwc(&gray).is_err());
    let three_d = Tensor::zeros((32, 32, 3), DType::F32, &Device::Cpu).unwrap();
    assert!(model.forward_nhwc(&three_d).is_err());
    let f64_input = Tensor::zeros((1, 32, 32, 3), DType::F64, &Device::Cpu).unwrap();
    assert!(model.forward_nhwc(&f64_input).is_err());
}
