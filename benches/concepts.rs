//! The concept detector's speed: `cargo bench --bench concepts`.
//!
//! `ConceptDetector::probabilities` of the shipped default model's detector (500 words,
//! 1280-d pooled feature) on one photo's pooled encoder feature (the German shepherds of
//! `tests/fixtures/encoder/images`), the work grounding adds per photo. Issue 22's budget is
//! 1 ms per photo.

use std::path::Path;
use std::time::Duration;

use candle_core::{DType, Device};
use captioner::concepts::ConceptDetector;
use criterion::{Criterion, criterion_group, criterion_main};

fn bench_probabilities(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let detector = match ConceptDetector::load(&root.join("models/default")) {
        Ok(Some(d)) => d,
        Ok(None) => {
            println!("SKIP: models/default has no concept detector");
            return;
        }
        Err(e) => {
            println!("SKIP: {e}");
            return;
        }
    };
    let encoder = match captioner::pipeline::load_encoder(&Device::Cpu) {
        Ok(e) => e,
        Err(e) => {
            println!("SKIP: no encoder: {e}");
            return;
        }
    };
    let photo = root.join("tests/fixtures/encoder/images/246231741_882b45c4e1.jpg");
    let pooled = match encoder
        .encode_files(&[photo])
        .map_err(|e| e.to_string())
        .and_then(|o| {
            o.pooled
                .to_dtype(DType::F32)
                .and_then(|t| t.to_vec2::<f32>())
                .map_err(|e| e.to_string())
        }) {
        Ok(mut rows) => rows.remove(0),
        Err(e) => {
            println!("SKIP: encoding the photo: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group("concepts");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(3));
    group.bench_function(
        format!(
            "probabilities ({} words, {}-d pooled feature)",
            detector.words().len(),
            detector.dim()
        ),
        |b| b.iter(|| detector.probabilities(std::hint::black_box(&pooled))),
    );
    group.finish();
}

criterion_group!(benches, bench_probabilities);
criterion_main!(benches);
