//! Dataset import speed: `cargo bench --bench dataset`.
//!
//! Imports the full Flickr8k copy in `../shared/flickr8k` (7,000 images, 35,000 captions) and
//! summarises it, as `captioner dataset inspect` does. Falls back to the small fixture when
//! the full set is absent.

use std::path::Path;

use captioner::dataset::{ImportOptions, import};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench_import(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let full = root.join("../shared/flickr8k");
    let (name, dir) = if full.is_dir() {
        ("import flickr8k (7,000 images)", full)
    } else {
        eprintln!("../shared/flickr8k is absent: benchmarking the 24-image fixture instead");
        (
            "import flickr8k_mini (24 images)",
            root.join("tests/fixtures/flickr8k_mini"),
        )
    };
    let options = ImportOptions::default();
    let mut group = c.benchmark_group("dataset");
    group.sample_size(20);
    group.bench_function(name, |b| {
        b.iter(|| {
            let ds = import(&dir, &options).expect("import");
            ds.summary()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_import);
criterion_main!(benches);
