//! On-disk feature cache: one small safetensors file per image, keyed by the SHA-256 of the
//! image file's bytes and by the encoder's id, so that a changed photo or another encoder never
//! reuses a stale feature, and a renamed or copied photo reuses its feature.
//!
//! Layout: `<cache>/features/<encoder id>/<first 2 hex>/<sha256>.safetensors`, each holding one
//! tensor `pooled` of shape `[dim]` (f32); and, for attention decoders,
//! `<cache>/features/<encoder id>/spatial/<first 2 hex>/<sha256>.safetensors`, holding one tensor
//! `spatial` of shape `[rows, cols, dim]` in half precision: the encoder's last feature map
//! before pooling (7x7x1280 for EfficientNet-Lite0 at 224 px, 125 KB a photo). Files are written
//! atomically (temporary file, then rename), so an interrupted extraction leaves only whole
//! entries and resumes where it stopped.

use std::path::{Path, PathBuf};

/// Why a cache entry could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: damaged cache entry ({message})")]
    Damaged { path: PathBuf, message: String },
}

/// One photo's feature map before pooling: `rows x cols` cells of `dim` values, row-major
/// (`values[(r * cols + c) * dim + k]`), in half precision.
#[derive(Clone, Debug, PartialEq)]
pub struct SpatialFeature {
    pub rows: usize,
    pub cols: usize,
    pub dim: usize,
    pub values: Vec<half::f16>,
}

impl SpatialFeature {
    /// From f32 values (rounded to half precision); `None` when the sizes do not match.
    pub fn from_f32(rows: usize, cols: usize, dim: usize, values: &[f32]) -> Option<Self> {
        if rows == 0 || cols == 0 || dim == 0 || values.len() != rows * cols * dim {
            return None;
        }
        Some(SpatialFeature {
            rows,
            cols,
            dim,
            values: values.iter().map(|&v| half::f16::from_f32(v)).collect(),
        })
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.rows * self.cols
    }

    /// The values as f32.
    pub fn to_f32(&self) -> Vec<f32> {
        self.values.iter().map(|v| v.to_f32()).collect()
    }

    /// The mean over the cells (the pooled feature, up to half-precision rounding).
    pub fn mean(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.dim];
        for cell in self.values.chunks_exact(self.dim) {
            for (o, v) in out.iter_mut().zip(cell) {
                *o += v.to_f32();
            }
        }
        let n = self.cells().max(1) as f32;
        out.iter_mut().for_each(|o| *o /= n);
        out
    }
}

/// Cached pooled features of one encoder.
#[derive(Clone, Debug)]
pub struct FeatureCache {
    dir: PathBuf,
}

impl FeatureCache {
    /// The cache for `encoder_id` under `root` (created on first write).
    pub fn new(root: &Path, encoder_id: &str) -> FeatureCache {
        let safe: String = encoder_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        FeatureCache {
            dir: root.join("features").join(safe),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, hash: &str) -> PathBuf {
        let prefix = hash.get(..2).unwrap_or("00");
        self.dir.join(prefix).join(format!("{hash}.safetensors"))
    }

    fn spatial_entry(&self, hash: &str) -> PathBuf {
        let prefix = hash.get(..2).unwrap_or("00");
        self.dir
            .join("spatial")
            .join(prefix)
            .join(format!("{hash}.safetensors"))
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.entry(hash).is_file()
    }

    /// Whether the photo's feature map is cached.
    pub fn contains_spatial(&self, hash: &str) -> bool {
        self.spatial_entry(hash).is_file()
    }

    /// The cached feature map, `Ok(None)` when there is none.
    pub fn get_spatial(&self, hash: &str) -> Result<Option<SpatialFeature>, CacheError> {
        let path = self.spatial_entry(hash);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        let damaged = |message: String| CacheError::Damaged {
            path: path.clone(),
            message,
        };
        let st =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| damaged(e.to_string()))?;
        let view = st.tensor("spatial").map_err(|e| damaged(e.to_string()))?;
        let shape = view.shape();
        if view.dtype() != safetensors::Dtype::F16 || shape.len() != 3 || shape.contains(&0) {
            return Err(damaged(format!(
                "expected an f16 [rows, cols, dim] map, found {:?} {:?}",
                view.dtype(),
                shape
            )));
        }
        let values: Vec<half::f16> = view
            .data()
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
            .collect();
        Ok(Some(SpatialFeature {
            rows: shape[0],
            cols: shape[1],
            dim: shape[2],
            values,
        }))
    }

    /// Stores a feature map atomically.
    pub fn put_spatial(&self, hash: &str, spatial: &SpatialFeature) -> Result<(), CacheError> {
        let path = self.spatial_entry(hash);
        let damaged = |message: String| CacheError::Damaged {
            path: path.clone(),
            message,
        };
        let bytes: Vec<u8> = spatial
            .values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let view = safetensors::tensor::TensorView::new(
            safetensors::Dtype::F16,
            vec![spatial.rows, spatial.cols, spatial.dim],
            &bytes,
        )
        .map_err(|e| damaged(e.to_string()))?;
        let encoded = safetensors::serialize([("spatial", view)], None)
            .map_err(|e| damaged(e.to_string()))?;
        crate::files::write_atomic(&path, &encoded)
            .map_err(|source| CacheError::Io { path, source })
    }

    /// The cached feature, `Ok(None)` when there is none.
    pub fn get(&self, hash: &str) -> Result<Option<Vec<f32>>, CacheError> {
        let path = self.entry(hash);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        let damaged = |message: String| CacheError::Damaged {
            path: path.clone(),
            message,
        };
        let st =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| damaged(e.to_string()))?;
        let view = st.tensor("pooled").map_err(|e| damaged(e.to_string()))?;
        if view.dtype() != safetensors::Dtype::F32 || view.shape().len() != 1 {
            return Err(damaged(format!(
                "expected an f32 vector, found {:?} {:?}",
                view.dtype(),
                view.shape()
            )));
        }
        let data = view.data();
        Ok(Some(
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }

    /// Stores a feature atomically.
    pub fn put(&self, hash: &str, pooled: &[f32]) -> Result<(), CacheError> {
        let path = self.entry(hash);
        let bytes: Vec<u8> = pooled.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(
            safetensors::Dtype::F32,
            vec![pooled.len()],
            &bytes,
        )
        .map_err(|e| CacheError::Damaged {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let encoded =
            safetensors::serialize([("pooled", view)], None).map_err(|e| CacheError::Damaged {
                path: path.clone(),
                message: e.to_string(),
            })?;
        crate::files::write_atomic(&path, &encoded)
            .map_err(|source| CacheError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::bytes_hash;

    #[test]
    fn round_trip_and_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(tmp.path(), "enc/1");
        let h = bytes_hash(b"photo");
        assert!(!cache.contains(&h));
        assert_eq!(cache.get(&h).unwrap(), None);
        cache.put(&h, &[1.0, -2.5, 3.25]).unwrap();
        assert!(cache.contains(&h));
        assert_eq!(cache.get(&h).unwrap(), Some(vec![1.0, -2.5, 3.25]));
        // No temporary files are left behind.
        let dir = cache.entry(&h).parent().unwrap().to_path_buf();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::write(cache.entry(&h), b"garbage").unwrap();
        assert!(matches!(cache.get(&h), Err(CacheError::Damaged { .. })));
    }

    #[test]
    fn spatial_round_trip_in_half_precision() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(tmp.path(), "enc");
        let h = bytes_hash(b"photo");
        assert!(!cache.contains_spatial(&h));
        assert_eq!(cache.get_spatial(&h).unwrap(), None);
        let values: Vec<f32> = (0..2 * 3 * 4).map(|i| i as f32 * 0.37 - 2.0).collect();
        assert!(SpatialFeature::from_f32(2, 3, 5, &values).is_none());
        let sf = SpatialFeature::from_f32(2, 3, 4, &values).unwrap();
        cache.put_spatial(&h, &sf).unwrap();
        assert!(cache.contains_spatial(&h) && !cache.contains(&h));
        let back = cache.get_spatial(&h).unwrap().unwrap();
        assert_eq!(back, sf);
        for (a, b) in back.to_f32().iter().zip(&values) {
            assert!((a - b).abs() <= b.abs() * 1e-3 + 1e-3, "{a} vs {b}");
        }
        // 2 bytes a value plus a small header.
        let len = std::fs::metadata(cache.spatial_entry(&h)).unwrap().len();
        assert!(len < 24 * 2 + 200, "{len}");
        let mean = back.mean();
        assert_eq!(mean.len(), 4);
        let want0: f32 = (0..6).map(|c| back.to_f32()[c * 4]).sum::<f32>() / 6.0;
        assert!((mean[0] - want0).abs() < 1e-6);
        std::fs::write(cache.spatial_entry(&h), b"garbage").unwrap();
        assert!(matches!(
            cache.get_spatial(&h),
            Err(CacheError::Damaged { .. })
        ));
        // A pooled entry where a map is expected is damage, not a panic.
        let pooled = {
            cache.put(&h, &[1.0, 2.0]).unwrap();
            std::fs::read(cache.entry(&h)).unwrap()
        };
        std::fs::write(cache.spatial_entry(&h), pooled).unwrap();
        assert!(cache.get_spatial(&h).is_err());
    }
}
