//! Feature extraction over a folder: cache, resume, bad images skipped with the reason.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use captioner::features::{self, ExtractEvent, ExtractOptions, FeatureCache};
use captioner::pipeline;

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

fn images_of(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn extracts_caches_skips_bad_images_and_resumes() {
    let device = candle_core::Device::Cpu;
    let encoder = pipeline::load_encoder(&device).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = FeatureCache::new(tmp.path(), encoder.id());
    let mut paths = images_of(&fixture("encoder/images"));
    // A zero-byte file and a text file named .jpg from the broken fixture.
    paths.push(fixture("broken_flickr8k/Flicker8k_Dataset/empty.jpg"));
    paths.push(fixture("broken_flickr8k/Flicker8k_Dataset/notes.jpg"));
    paths.push(tmp.path().join("missing.jpg"));
    let options = ExtractOptions {
        batch_size: 4,
        ..ExtractOptions::default()
    };

    // A stop request before the first batch leaves nothing half done.
    let stop = AtomicBool::new(true);
    let r = features::extract(&encoder, &cache, &paths, &options, &stop, &mut |_| {}).unwrap();
    assert!(r.stopped);
    assert_eq!(r.computed, 0);

    let stop = AtomicBool::new(false);
    let mut failed_events = Vec::new();
    let mut last_progress = 0;
    let r = features::extract(
        &encoder,
        &cache,
        &paths,
        &options,
        &stop,
        &mut |e| match e {
            ExtractEvent::Failed { path, reason } => failed_events.push((path, reason)),
            ExtractEvent::Progress { done, .. } => last_progress = done,
            ExtractEvent::Started { .. } => {}
        },
    )
    .unwrap();
    assert!(!r.stopped);
    assert_eq!(r.total, 9);
    assert_eq!(r.computed, 6);
    assert_eq!(r.failed.len(), 3, "{:?}", r.failed);
    assert_eq!(failed_events.len(), 3);
    assert_eq!(last_progress, 9);
    let names: Vec<String> = r
        .failed
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"empty.jpg".to_string()));
    assert!(names.contains(&"notes.jpg".to_string()));
    assert!(names.contains(&"missing.jpg".to_string()));
    for (_, reason) in &r.failed {
        assert!(!reason.is_empty());
    }

    // The cached features are the encoder's own.
    let good = images_of(&fixture("encoder/images"));
    let cached = features::load_cached(&cache, &good);
    let direct = encoder.encode_files(&good).unwrap();
    let direct = direct.pooled.to_vec2::<f32>().unwrap();
    for (c, d) in cached.iter().zip(&direct) {
        let c = c.as_ref().expect("cached");
        assert_eq!(c.len(), 1280);
        let max = c
            .iter()
            .zip(d)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max < 1e-4, "cached feature differs by {max}");
    }

    // A second run only hashes: everything is found in the cache.
    let r = features::extract(&encoder, &cache, &paths, &options, &stop, &mut |_| {}).unwrap();
    assert_eq!(r.computed, 0);
    assert_eq!(r.cached, 6);
    assert_eq!(r.failed.len(), 3);
}

#[test]
fn an_interrupted_run_resumes_without_recomputing() {
    let device = candle_core::Device::Cpu;
    let encoder = pipeline::load_encoder(&device).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = FeatureCache::new(tmp.path(), encoder.id());
    let paths = images_of(&fixture("encoder/images"));
    let options = ExtractOptions {
        batch_size: 2,
        ..ExtractOptions::default()
    };
    // Stop after the first batch has been written.
    let stop = AtomicBool::new(false);
    let r = features::extract(&encoder, &cache, &paths, &options, &stop, &mut |e| {
        if let ExtractEvent::Progress { done, .. } = e
            && done >= 2
        {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .unwrap();
    assert!(r.stopped);
    assert_eq!(r.computed, 2);
    let stop = AtomicBool::new(false);
    let r = features::extract(&encoder, &cache, &paths, &options, &stop, &mut |_| {}).unwrap();
    assert_eq!(r.cached, 2);
    assert_eq!(r.computed, 4);
}

#[test]
fn spatial_maps_are_cached_in_half_precision_and_pool_to_the_pooled_feature() {
    let device = candle_core::Device::Cpu;
    let encoder = pipeline::load_encoder(&device).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = FeatureCache::new(tmp.path(), encoder.id());
    let paths = images_of(&fixture("encoder/images"));
    let n = paths.len();
    let stop = AtomicBool::new(false);
    // Pooled features first, as a cache made before attention decoders would hold.
    let pooled_only = ExtractOptions::default();
    let r = features::extract(&encoder, &cache, &paths, &pooled_only, &stop, &mut |_| {}).unwrap();
    assert_eq!(r.computed, n);
    assert!(
        features::load_cached_spatial(&cache, &paths)
            .iter()
            .all(Option::is_none)
    );
    // Asking for maps computes them for photos that only have the pooled feature.
    let spatial = ExtractOptions {
        batch_size: 4,
        spatial: true,
        ..ExtractOptions::default()
    };
    let r = features::extract(&encoder, &cache, &paths, &spatial, &stop, &mut |_| {}).unwrap();
    assert_eq!((r.computed, r.cached), (n, 0));
    let r = features::extract(&encoder, &cache, &paths, &spatial, &stop, &mut |_| {}).unwrap();
    assert_eq!(
        (r.computed, r.cached),
        (0, n),
        "a second run finds them all"
    );
    let pooled = features::load_cached(&cache, &paths);
    let maps = features::load_cached_spatial(&cache, &paths);
    for ((p, pooled), map) in paths.iter().zip(pooled).zip(maps) {
        let pooled = pooled.unwrap();
        let map = map.unwrap();
        assert_eq!(
            (map.rows, map.cols, map.dim),
            (7, 7, 1280),
            "{}",
            p.display()
        );
        // The map's mean over the cells is the pooled feature (up to half precision).
        let mean = map.mean();
        let scale = pooled.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (a, b) in mean.iter().zip(&pooled) {
            assert!((a - b).abs() <= 2e-3 * scale.max(1.0), "{a} vs {b}");
        }
        // The encoder's own map, rounded to half precision.
        let image = encoder.preprocess_file(p).unwrap();
        let fm = encoder.encode(&[image]).unwrap().feature_map;
        let want: Vec<f32> = fm.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in map.to_f32().iter().zip(&want) {
            assert!((a - b).abs() <= b.abs() * 1e-3 + 1e-4, "{a} vs {b}");
        }
    }
    // On disk: half precision, so 7,000 photos stay far under 1.5 GB.
    let mut sizes = Vec::new();
    for e in walk(&cache.dir().join("spatial")) {
        sizes.push(std::fs::metadata(e).unwrap().len());
    }
    assert_eq!(sizes.len(), n);
    for s in sizes {
        assert!(s <= 7 * 7 * 1280 * 2 + 256, "{s} bytes");
        assert!(s * 7000 < 1_500_000_000);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
