//! Runs training steps with the real shapes for profiling: `cargo run --release --example
//! profile_step -- [merge|inject] [steps]`.
use captioner::decoder::{DecoderConfig, DecoderKind};
use captioner::train::{Adam, Engine, Example, Features, Params, Rng};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = if args.get(1).map(String::as_str) == Some("inject") {
        DecoderKind::Inject
    } else {
        DecoderKind::Merge
    };
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50);
    let cfg = DecoderConfig {
        kind,
        ..DecoderConfig::merge(2531)
    };
    let mut rng = Rng::new(1);
    let feats: Vec<f32> = (0..1000 * 1280).map(|_| rng.next_f32()).collect();
    let caps: Vec<(usize, Vec<u32>)> = (0..64)
        .map(|i| {
            (
                i % 1000,
                (0..11).map(|_| 4 + rng.below(2500) as u32).collect(),
            )
        })
        .collect();
    let batch: Vec<Example<'_>> = caps
        .iter()
        .map(|(i, w)| Example {
            image: *i,
            words: w,
        })
        .collect();
    let mut params = Params::init(&cfg, 1).unwrap();
    let mut grads = Params::zeros(&cfg).unwrap();
    let mut adam = Adam::new(params.len(), 1e-3);
    let mut engine = Engine::new(&cfg).unwrap();
    let f = Features::new(&feats, 1280).unwrap();
    // gemm reference speed right now
    let n = 512;
    let a = vec![1.0f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let t = Instant::now();
    for _ in 0..10 {
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                a.as_ptr(),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(rayon::current_num_threads()),
            );
        }
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "gemm 512^3: {:.1} GFLOPS ({} threads)",
        10.0 * 2.0 * (n * n * n) as f64 / el / 1e9,
        rayon::current_num_threads()
    );
    let t = Instant::now();
    for _ in 0..steps {
        engine.eval_loss(&params, f, &batch).unwrap();
    }
    let fwd = t.elapsed().as_secs_f64();
    engine.set_profiling(true);
    let mut adam_s = 0.0;
    let t = Instant::now();
    for s in 0..steps {
        let mut r = Rng::new(s as u64);
        engine
            .train_step(&params, &mut grads, f, &batch, Some(&mut r))
            .unwrap();
        let ta = Instant::now();
        let norm = Adam::grad_norm(grads.as_slice());
        adam.update(
            params.as_mut_slice(),
            grads.as_slice(),
            Adam::clip_factor(norm, 5.0),
        );
        adam_s += ta.elapsed().as_secs_f64();
    }
    let total = t.elapsed().as_secs_f64();
    println!(
        "{kind}: forward only {:.1} ms; training step {:.1} ms",
        1e3 * fwd / steps as f64,
        1e3 * total / steps as f64
    );
    for (name, s) in engine.phase_times() {
        println!("  {name:<36} {:7.2} ms", 1e3 * s / steps as f64);
    }
    println!(
        "  {:<36} {:7.2} ms",
        "adam (norm, clip, update)",
        1e3 * adam_s / steps as f64
    );
}
