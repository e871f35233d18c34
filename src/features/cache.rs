//! On-disk feature cache: one small safetensors file per image, keyed by the SHA-256 of the
//! image file's bytes and by the encoder's id, so that a changed photo or another encoder never
//! reuses a stale feature, and a renamed or copied photo reuses its feature.
//!
//! Layout: `<cache>/features/<encoder id>/<first 2 hex>/<sha256>.safetensors`, each holding one
//! tensor `pooled` of shape `[dim]`. Files are written atomically (temporary file, then
//! rename), so an interrupted extraction leaves only whole entries and resumes where it stopped.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The SHA-256 of a file's contents, in lowercase hex.
pub fn content_hash(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The SHA-256 of bytes in memory, in lowercase hex.
pub fn bytes_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

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

    pub fn contains(&self, hash: &str) -> bool {
        self.entry(hash).is_file()
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
        crate::paths::write_atomic(&path, &encoded)
            .map_err(|source| CacheError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
