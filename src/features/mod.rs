//! Feature extraction for whole datasets: images are read, hashed and decoded on a producer
//! thread (in parallel, through rayon) while the encoder runs on the previous batch; finished
//! features go to the on-disk [`FeatureCache`], keyed by content hash and encoder id, so an
//! interrupted run resumes where it stopped and a second run only hashes files.

pub mod cache;

pub use cache::{CacheError, FeatureCache, SpatialFeature};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::encoder::image_io::{
    DecodeLimits, ImageLoadError, decode_rgb, normalize_rgb, resize_rgb,
};
use crate::encoder::{Encoder, EncoderError, PreprocessedImage};
use crate::files::{bytes_hash, content_hash};

/// Why extraction as a whole failed (a bad image never fails it: it is reported and skipped).
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("feature extraction: {0}")]
    Other(String),
}

/// Progress of an extraction.
#[derive(Clone, Debug, PartialEq)]
pub enum ExtractEvent {
    /// Work is known: `total` images; `cached` of the first batch were already in the cache
    /// (the whole count is in the final [`ExtractReport`]).
    Started { total: usize, cached: usize },
    /// `done` of `total` images handled (cached, computed or failed).
    Progress {
        done: usize,
        total: usize,
        computed: usize,
        images_per_second: f64,
        eta_seconds: f64,
    },
    /// An image was skipped.
    Failed { path: PathBuf, reason: String },
}

/// What an extraction did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExtractReport {
    pub total: usize,
    /// Images found in the cache (not recomputed).
    pub cached: usize,
    /// Images encoded this run.
    pub computed: usize,
    /// Images skipped, with the reason.
    pub failed: Vec<(PathBuf, String)>,
    /// True when a stop request ended the run early (finished images are cached).
    pub stopped: bool,
    pub seconds: f64,
}

/// Extraction settings.
#[derive(Clone, Debug)]
pub struct ExtractOptions {
    /// Images per encoder pass.
    pub batch_size: usize,
    pub limits: DecodeLimits,
    /// Also cache each photo's feature map before pooling ([`SpatialFeature`], for attention
    /// decoders); a photo counts as cached only when both are.
    pub spatial: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            batch_size: 32,
            limits: DecodeLimits::default(),
            spatial: false,
        }
    }
}

/// One image the producer has prepared.
enum Prepared {
    Cached,
    Ready {
        hash: String,
        image: PreprocessedImage,
    },
    Failed {
        path: PathBuf,
        reason: String,
    },
}

fn prepare(
    path: &Path,
    cache: &FeatureCache,
    size: u32,
    limits: &DecodeLimits,
    spatial: bool,
) -> Prepared {
    let failed = |reason: String| Prepared::Failed {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return failed(e.to_string()),
    };
    let hash = bytes_hash(&bytes);
    if cache.contains(&hash) && (!spatial || cache.contains_spatial(&hash)) {
        return Prepared::Cached;
    }
    match decode_rgb(&bytes, path, limits) {
        Ok(rgb) => Prepared::Ready {
            hash,
            image: normalize_rgb(&resize_rgb(rgb, size)),
        },
        Err(e) => failed(reason_of(&e)),
    }
}

/// The reason of an image error without the path (callers print the path themselves).
fn reason_of(e: &ImageLoadError) -> String {
    let full = e.to_string();
    let prefix = format!("{}: ", e.path().display());
    full.strip_prefix(&prefix)
        .map(str::to_string)
        .unwrap_or(full)
}

/// Extracts and caches the pooled feature of every image in `paths` (and its feature map
/// before pooling with [`ExtractOptions::spatial`]).
///
/// Images already cached are only hashed. Unreadable images are reported through `on_event`
/// and in the report, and the rest goes on. `stop` is checked between batches.
pub fn extract(
    encoder: &Encoder,
    cache: &FeatureCache,
    paths: &[PathBuf],
    options: &ExtractOptions,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(ExtractEvent),
) -> Result<ExtractReport, FeatureError> {
    let started = Instant::now();
    let total = paths.len();
    let batch = options.batch_size.max(1);
    let size = encoder.input_size();
    // Pre-count what is cached, so the progress bar's ETA counts only real work.
    let mut report = ExtractReport {
        total,
        ..ExtractReport::default()
    };
    let (tx, rx) = crossbeam_channel::bounded::<Vec<Prepared>>(2);
    let limits = options.limits;
    let spatial = options.spatial;
    let mut done = 0usize;
    let mut first_event = true;
    let result = std::thread::scope(|scope| -> Result<(), FeatureError> {
        let producer_stop = stop;
        scope.spawn(move || {
            use rayon::prelude::*;
            for chunk in paths.chunks(batch) {
                if producer_stop.load(Ordering::Relaxed) {
                    break;
                }
                let prepared: Vec<Prepared> = chunk
                    .par_iter()
                    .map(|p| prepare(p, cache, size, &limits, spatial))
                    .collect();
                if tx.send(prepared).is_err() {
                    break;
                }
            }
        });
        let compute_started = Instant::now();
        for prepared in rx.iter() {
            if stop.load(Ordering::Relaxed) {
                report.stopped = true;
                break;
            }
            let mut hashes = Vec::new();
            let mut images = Vec::new();
            for p in prepared {
                done += 1;
                match p {
                    Prepared::Cached => report.cached += 1,
                    Prepared::Ready { hash, image } => {
                        hashes.push(hash);
                        images.push(image);
                    }
                    Prepared::Failed { path, reason } => {
                        on_event(ExtractEvent::Failed {
                            path: path.clone(),
                            reason: reason.clone(),
                        });
                        report.failed.push((path, reason));
                    }
                }
            }
            if first_event {
                first_event = false;
                on_event(ExtractEvent::Started {
                    total,
                    cached: report.cached,
                });
            }
            if !images.is_empty() {
                let out = encoder.encode(&images)?;
                let pooled = out
                    .pooled
                    .to_device(&candle_core::Device::Cpu)
                    .and_then(|t| t.to_dtype(candle_core::DType::F32))
                    .and_then(|t| t.to_vec2::<f32>())
                    .map_err(EncoderError::from)?;
                for (hash, row) in hashes.iter().zip(pooled) {
                    cache.put(hash, &row)?;
                }
                if spatial {
                    let map = out
                        .feature_map
                        .to_device(&candle_core::Device::Cpu)
                        .and_then(|t| t.to_dtype(candle_core::DType::F32))
                        .map_err(EncoderError::from)?;
                    let (n, rows, cols, dim) = map.dims4().map_err(EncoderError::from)?;
                    let flat = map
                        .flatten_all()
                        .and_then(|t| t.to_vec1::<f32>())
                        .map_err(EncoderError::from)?;
                    let per = rows * cols * dim;
                    for (hash, i) in hashes.iter().zip(0..n) {
                        let sf = SpatialFeature::from_f32(
                            rows,
                            cols,
                            dim,
                            &flat[i * per..(i + 1) * per],
                        )
                        .ok_or_else(|| {
                            FeatureError::Other(format!(
                                "the encoder returned an empty feature map {:?}",
                                map.dims()
                            ))
                        })?;
                        cache.put_spatial(hash, &sf)?;
                    }
                }
                report.computed += images.len();
            }
            let elapsed = compute_started.elapsed().as_secs_f64().max(1e-9);
            let rate = done as f64 / elapsed;
            on_event(ExtractEvent::Progress {
                done,
                total,
                computed: report.computed,
                images_per_second: rate,
                eta_seconds: (total - done) as f64 / rate.max(1e-9),
            });
        }
        // Dropping the receiver makes a still-running producer stop at its next send.
        drop(rx);
        Ok(())
    });
    result?;
    if !report.stopped && done < total && stop.load(Ordering::Relaxed) {
        report.stopped = true;
    }
    if first_event {
        on_event(ExtractEvent::Started {
            total,
            cached: report.cached,
        });
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Reads the cached features of `paths` (hashing each file), in order; `None` for an image
/// without a cached feature or that cannot be read.
pub fn load_cached(cache: &FeatureCache, paths: &[PathBuf]) -> Vec<Option<Vec<f32>>> {
    use rayon::prelude::*;
    paths
        .par_iter()
        .map(|p| {
            let hash = content_hash(p).ok()?;
            cache.get(&hash).ok().flatten()
        })
        .collect()
}

/// Reads the cached feature maps of `paths` (hashing each file), in order; `None` for an image
/// without a cached map or that cannot be read.
pub fn load_cached_spatial(cache: &FeatureCache, paths: &[PathBuf]) -> Vec<Option<SpatialFeature>> {
    use rayon::prelude::*;
    paths
        .par_iter()
        .map(|p| {
            let hash = content_hash(p).ok()?;
            cache.get_spatial(&hash).ok().flatten()
        })
        .collect()
}
