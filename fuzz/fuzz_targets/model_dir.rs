//! Fuzz target: a model folder (`config.json`, `vocab.json`, `weights.safetensors`,
//! `meta.json`) loaded by `model_dir::load_model`. The input holds the four files separated
//! by `#FILE#`. Any damage is an error naming the file; nothing panics or allocates wildly.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use captioner::model_dir::{CONFIG_FILE, META_FILE, VOCAB_FILE, WEIGHTS_FILE, load_model};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch().join(format!("captioner-fuzz-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn split<'a>(mut data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = data.windows(sep.len()).position(|w| w == sep) {
        parts.push(&data[..at]);
        data = &data[at + sep.len()..];
    }
    parts.push(data);
    parts
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
    let parts = split(data, b"#FILE#");
    let dir = dir();
    for (i, name) in [CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, META_FILE]
        .iter()
        .enumerate()
    {
        let path = dir.join(name);
        match parts.get(i) {
            Some(bytes) => std::fs::write(&path, bytes).unwrap(),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    if let Err(e) = load_model(dir, &candle_core::Device::Cpu) {
        let msg = e.to_string();
        assert!(msg.contains(&dir.display().to_string()), "{msg}");
    }
});
