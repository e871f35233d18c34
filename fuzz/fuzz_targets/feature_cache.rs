//! Fuzz target: a feature cache entry (`<hash>.safetensors`) read back by `FeatureCache::get`.
//! A damaged entry is an error naming the file, never a panic or a wrong-sized vector.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use captioner::features::cache::{CacheError, FeatureCache};
use libfuzzer_sys::fuzz_target;

const HASH: &str = "ab0123456789";

fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = scratch().join(format!("captioner-fuzz-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A folder in memory where there is one (/dev/shm), so that writing each input is cheap.
fn scratch() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

fuzz_target!(|data: &[u8]| {
    let cache = FeatureCache::new(root(), "fuzz");
    let entry = cache
        .dir()
        .join(&HASH[..2])
        .join(format!("{HASH}.safetensors"));
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    std::fs::write(&entry, data).unwrap();
    match cache.get(HASH) {
        Ok(Some(values)) => {
            // A vector of f32 values that fits in the file.
            assert!(values.len() * 4 <= data.len());
        }
        Ok(None) => panic!("an existing entry read as absent"),
        Err(CacheError::Damaged { path, .. }) | Err(CacheError::Io { path, .. }) => {
            assert_eq!(path, entry);
        }
    }
});
