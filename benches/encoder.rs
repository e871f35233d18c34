//! Encoder throughput (images/s, criterion's "elem/s") at batch 1 and batch 32, with decoding
//! (JPEG decode + resize + normalise + forward) and without (forward only).
//!
//! Needs `models/efficientnet-lite0.safetensors`. Images: the first JPEGs of
//! /work/shared/flickr8k/Flicker8k_Dataset when present (or $ENCODER_BENCH_IMAGES), otherwise the
//! fixture images in tests/fixtures/encoder/images. Run with `cargo bench --bench encoder`.

use std::path::{Path, PathBuf};

use candle_core::Device;
use captioner::encoder::{Config, Encoder, PreprocessedImage};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FLICKR_DIR: &str = "/work/shared/flickr8k/Flicker8k_Dataset";

fn jpegs_in(dir: &Path, limit: usize) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
        })
        .collect();
    files.sort();
    files.truncate(limit);
    files
}

fn bench_images() -> Vec<PathBuf> {
    let dir = std::env::var("ENCODER_BENCH_IMAGES").unwrap_or_else(|_| FLICKR_DIR.to_string());
    let files = jpegs_in(Path::new(&dir), 64);
    if !files.is_empty() {
        println!("bench images: {} JPEGs from {dir}", files.len());
        return files;
    }
    println!("{dir} not found: falling back to the fixture images");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoder/images");
    let files = jpegs_in(&fixtures, 64);
    println!(
        "bench images: {} JPEGs from {}",
        files.len(),
        fixtures.display()
    );
    files
}

fn encoder_benches(c: &mut Criterion) {
    let weights =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/efficientnet-lite0.safetensors");
    if !weights.exists() {
        println!("SKIP: {} not found", weights.display());
        return;
    }
    let files = bench_images();
    if files.is_empty() {
        println!("SKIP: no JPEG images to benchmark with");
        return;
    }
    let encoder = match Encoder::load(&weights, Config::lite0(), &Device::Cpu) {
        Ok(e) => e,
        Err(e) => {
            println!("SKIP: cannot load the encoder: {e}");
            return;
        }
    };
    println!(
        "threads: {}, kernels: {}",
        rayon::current_num_threads(),
        captioner::encoder::kernels::kernel_variant()
    );
    let batch32: Vec<PathBuf> = files.iter().cycle().take(32).cloned().collect();
    let decoded: Vec<PreprocessedImage> = encoder
        .preprocess_files(&batch32)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("bench images decode");

    let mut group = c.benchmark_group("encoder_forward_only");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("batch1", |b| {
        b.iter(|| {
            i = (i + 1) % decoded.len();
            encoder
                .encode(std::slice::from_ref(&decoded[i]))
                .expect("forward")
        })
    });
    group.throughput(Throughput::Elements(32));
    group.sample_size(10);
    group.bench_function("batch32", |b| {
        b.iter(|| encoder.encode(&decoded).expect("forward"))
    });
    let mut whole = encoder.clone();
    whole.set_micro_batch(32);
    group.bench_function("batch32_single_pass", |b| {
        b.iter(|| whole.encode(&decoded).expect("forward"))
    });
    group.finish();

    let mut group = c.benchmark_group("encoder_decode_and_forward");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    let mut j = 0;
    group.bench_function("batch1", |b| {
        b.iter(|| {
            j = (j + 1) % files.len();
            let img = encoder.preprocess_file(&files[j]).expect("decode");
            encoder.encode(&[img]).expect("forward")
        })
    });
    group.throughput(Throughput::Elements(32));
    group.sample_size(10);
    group.bench_function("batch32", |b| {
        b.iter(|| encoder.encode_files(&batch32).expect("forward"))
    });
    group.finish();

    let mut group = c.benchmark_group("encoder_decode_only");
    group.sample_size(10);
    group.throughput(Throughput::Elements(32));
    group.bench_function("batch32", |b| b.iter(|| encoder.preprocess_files(&batch32)));
    group.finish();
}

criterion_group!(benches, encoder_benches);
criterion_main!(benches);
