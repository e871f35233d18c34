//! Decode timing: `cargo run --release --example profile_decode`.
use candle_core::{Device, Tensor};
use captioner::decoder::{DecoderConfig, beam_search, greedy};
use captioner::train::{Params, Rng};
use std::time::Instant;

fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ut: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    (ut + st) / 100.0
}

fn main() {
    let cfg = DecoderConfig::merge(2531);
    let params = Params::init(&cfg, 3).unwrap();
    let dec = params.to_decoder(&Device::Cpu).unwrap();
    let mut rng = Rng::new(5);
    let feats: Vec<f32> = (0..1280).map(|_| rng.next_f32() * 2.0).collect();
    let one = Tensor::from_vec(feats, (1, 1280), &Device::Cpu).unwrap();
    let reps = 200;
    for (name, width) in [("greedy", 0usize), ("beam 3", 3), ("beam 5", 5)] {
        let c0 = cpu_secs();
        let t = Instant::now();
        let mut steps = 0;
        for _ in 0..reps {
            let caps = if width == 0 {
                greedy(&dec, &one, 12).unwrap()
            } else {
                beam_search(&dec, &one, width, 12).unwrap()
            };
            steps += caps[0].tokens.len();
        }
        let wall = t.elapsed().as_secs_f64() / reps as f64;
        let cpu = (cpu_secs() - c0) / reps as f64;
        println!(
            "{name}: {:.2} ms wall, {:.2} ms CPU per image (best caption {} words)",
            wall * 1e3,
            cpu * 1e3,
            steps / reps
        );
    }
}
