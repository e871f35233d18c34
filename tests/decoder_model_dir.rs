//! Model directories: round trip, atomic writes, and clear errors for every bad file.

use candle_core::{DType, Device, Tensor};
use captioner::decoder::{DecoderConfig, DecoderKind, greedy};
use captioner::model_dir::{
    self, CONFIG_FILE, META_FILE, ModelConfig, ModelDirError, ModelMeta, VOCAB_FILE, WEIGHTS_FILE,
    load_model, recover_interrupted_write, save_model, save_model_with, write_dir_atomically,
};
use captioner::train::{Params, Rng};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn cfg(kind: DecoderKind) -> DecoderConfig {
    DecoderConfig {
        kind,
        feature_dim: 10,
        embed_dim: 6,
        hidden_dim: 8,
        vocab_size: 12,
        dropout: 0.5,
        attention: None,
    }
}

fn vocab() -> Vec<String> {
    (0..12).map(|i| format!("w{i}")).collect()
}

fn weights(c: &DecoderConfig, seed: u64) -> HashMap<String, Tensor> {
    let mut p = Params::init(c, seed).unwrap();
    let mut rng = Rng::new(seed);
    for x in p.as_mut_slice() {
        *x += rng.next_f32() - 0.5;
    }
    p.to_tensors(&Device::Cpu).unwrap()
}

fn save(dir: &Path, kind: DecoderKind, seed: u64) {
    let c = cfg(kind);
    let mut meta = ModelMeta::now("flickr8k", "train", 7, "efficientnet-lite0");
    meta.metrics.insert("dev_bleu4".into(), 0.21);
    save_model(
        dir,
        &ModelConfig::new(
            c.clone(),
            "efficientnet-lite0",
            serde_json::json!({"min_count": 5}),
        ),
        &vocab(),
        &weights(&c, seed),
        &meta,
    )
    .unwrap();
}

fn siblings(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p != dir)
        .collect();
    v.sort();
    v
}

fn load_err(dir: &Path) -> ModelDirError {
    load_model(dir, &Device::Cpu).unwrap_err()
}

/// The error names `file` (its Display mentions the file name).
fn names(err: &ModelDirError, file: &str) -> bool {
    err.to_string().contains(file)
}

#[test]
fn round_trip_keeps_everything() {
    for kind in [DecoderKind::Merge, DecoderKind::Inject] {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("model");
        save(&dir, kind, 3);
        let m = load_model(&dir, &Device::Cpu).unwrap();
        assert_eq!(m.config.decoder, cfg(kind));
        assert_eq!(m.config.format_version, model_dir::FORMAT_VERSION);
        assert_eq!(m.config.text["min_count"], 5);
        assert_eq!(m.vocab, vocab());
        assert_eq!(m.meta.dataset, "flickr8k");
        assert_eq!(m.meta.epochs, 7);
        assert_eq!(m.meta.metrics["dev_bleu4"], 0.21);
        assert!(m.meta.created.ends_with('Z'));
        let w = weights(&cfg(kind), 3);
        let back = m.decoder.tensors().unwrap();
        for (name, t) in &w {
            let a = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = back[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(a, b, "{name}");
        }
        let f = Tensor::ones((2, 10), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(greedy(&m.decoder, &f, 5).unwrap().len(), 2);
        assert!(siblings(&dir).is_empty(), "no temporary directories left");
        // Saving again replaces the model atomically.
        save(&dir, kind, 4);
        assert!(siblings(&dir).is_empty());
        let again = load_model(&dir, &Device::Cpu).unwrap();
        let t = again.decoder.tensors().unwrap();
        assert_eq!(
            t["output.bias"].to_vec1::<f32>().unwrap(),
            weights(&cfg(kind), 4)["output.bias"]
                .to_vec1::<f32>()
                .unwrap()
        );
    }
}

#[test]
fn failed_write_leaves_the_old_model_intact() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    save(&dir, DecoderKind::Merge, 1);
    let before: Vec<(String, Vec<u8>)> = [CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, META_FILE]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap()))
        .collect();
    let c = cfg(DecoderKind::Merge);
    let err = save_model_with(
        &dir,
        &ModelConfig::new(c.clone(), "enc", serde_json::Value::Null),
        &vocab(),
        &weights(&c, 2),
        &ModelMeta::default(),
        &mut |tmp| {
            // Half of the new checkpoint is on disk when the failure happens.
            std::fs::write(tmp.join("optimizer.safetensors"), b"partial").unwrap();
            Err(ModelDirError::Invalid {
                path: tmp.join("optimizer.safetensors"),
                msg: "disk full".into(),
            })
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("disk full"));
    for (f, bytes) in before {
        assert_eq!(std::fs::read(dir.join(&f)).unwrap(), bytes, "{f} changed");
    }
    assert!(!dir.join("optimizer.safetensors").exists());
    assert!(
        siblings(&dir).is_empty(),
        "temporary directory removed: {:?}",
        siblings(&dir)
    );
    load_model(&dir, &Device::Cpu).unwrap();

    // A bad model is refused before anything is written.
    let mut w = weights(&c, 2);
    w.remove("lstm.weight_hh_l0");
    let err = save_model(
        &dir,
        &ModelConfig::new(c.clone(), "enc", serde_json::Value::Null),
        &vocab(),
        &w,
        &ModelMeta::default(),
    )
    .unwrap_err();
    assert!(
        names(&err, "lstm.weight_hh_l0") && names(&err, WEIGHTS_FILE),
        "{err}"
    );
    let err = save_model(
        &dir,
        &ModelConfig::new(c.clone(), "enc", serde_json::Value::Null),
        &vocab()[..11],
        &weights(&c, 2),
        &ModelMeta::default(),
    )
    .unwrap_err();
    assert!(names(&err, VOCAB_FILE), "{err}");
    assert!(siblings(&dir).is_empty());
}

#[test]
fn an_interrupted_swap_is_recovered() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("last");
    save(&dir, DecoderKind::Inject, 1);
    // Simulate a kill between "move old aside" and "move new into place".
    let old = root.path().join(".last.old-123-0");
    std::fs::rename(&dir, &old).unwrap();
    std::fs::create_dir(root.path().join(".last.tmp-123-1")).unwrap();
    let err = load_err(&dir);
    assert!(err.to_string().contains(".last.old-123-0"), "{err}");
    assert!(recover_interrupted_write(&dir).unwrap());
    assert!(siblings(&dir).is_empty());
    load_model(&dir, &Device::Cpu).unwrap();
    assert!(!recover_interrupted_write(&dir).unwrap());
}

#[test]
fn write_dir_atomically_replaces_whole_directories() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("d");
    write_dir_atomically(&dir, &mut |tmp| {
        model_dir::write_file_synced(&tmp.join("a"), b"1")
    })
    .unwrap();
    write_dir_atomically(&dir, &mut |tmp| {
        model_dir::write_file_synced(&tmp.join("b"), b"2")
    })
    .unwrap();
    assert!(
        !dir.join("a").exists(),
        "old files do not survive a replacement"
    );
    assert_eq!(std::fs::read(dir.join("b")).unwrap(), b"2");
    assert!(siblings(&dir).is_empty());
}

fn fresh(kind: DecoderKind) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("m");
    save(&dir, kind, 5);
    (root, dir)
}

#[test]
fn missing_or_broken_files_are_named() {
    let (_r, dir) = fresh(DecoderKind::Merge);
    assert!(names(&load_err(&dir.join("nope")), "nope"));
    for f in [CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, META_FILE] {
        let (_r, dir) = fresh(DecoderKind::Merge);
        std::fs::remove_file(dir.join(f)).unwrap();
        let err = load_err(&dir);
        assert!(matches!(err, ModelDirError::Missing { .. }), "{f}: {err}");
        assert!(names(&err, f), "{err}");
    }
    for f in [CONFIG_FILE, VOCAB_FILE, META_FILE] {
        let (_r, dir) = fresh(DecoderKind::Merge);
        std::fs::write(dir.join(f), b"{ not json").unwrap();
        let err = load_err(&dir);
        assert!(matches!(err, ModelDirError::Json { .. }), "{f}: {err}");
        assert!(names(&err, f), "{err}");
    }
}

#[test]
fn truncated_weights_are_refused() {
    let (_r, dir) = fresh(DecoderKind::Inject);
    let bytes = std::fs::read(dir.join(WEIGHTS_FILE)).unwrap();
    for keep in [0, 5, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(dir.join(WEIGHTS_FILE), &bytes[..keep]).unwrap();
        let err = load_err(&dir);
        assert!(names(&err, WEIGHTS_FILE), "{keep}: {err}");
    }
}

fn write_config(dir: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(CONFIG_FILE)).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(dir.join(CONFIG_FILE), serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn mismatches_are_refused() {
    // Newer format.
    let (_r, dir) = fresh(DecoderKind::Merge);
    write_config(&dir, |v| v["format_version"] = 99.into());
    let err = load_err(&dir);
    assert!(
        matches!(err, ModelDirError::TooNew { found: 99, .. }),
        "{err}"
    );
    assert!(names(&err, CONFIG_FILE));
    // No format version.
    let (_r, dir) = fresh(DecoderKind::Merge);
    write_config(&dir, |v| {
        v.as_object_mut().unwrap().remove("format_version");
    });
    assert!(names(&load_err(&dir), CONFIG_FILE));
    // Vocabulary size differs from the config.
    let (_r, dir) = fresh(DecoderKind::Merge);
    std::fs::write(dir.join(VOCAB_FILE), br#"["a","b","c"]"#).unwrap();
    let err = load_err(&dir);
    assert!(
        names(&err, VOCAB_FILE) && err.to_string().contains("3 words"),
        "{err}"
    );
    // Config says another size: the weights no longer fit.
    let (_r, dir) = fresh(DecoderKind::Merge);
    write_config(&dir, |v| v["decoder"]["hidden_dim"] = 9.into());
    let err = load_err(&dir);
    assert!(
        names(&err, WEIGHTS_FILE) && err.to_string().contains("shape"),
        "{err}"
    );
    // Config says another kind: tensors are missing.
    let (_r, dir) = fresh(DecoderKind::Merge);
    write_config(&dir, |v| v["decoder"]["kind"] = "inject".into());
    let err = load_err(&dir);
    assert!(
        names(&err, WEIGHTS_FILE) && err.to_string().contains("missing"),
        "{err}"
    );
    // An impossible configuration.
    let (_r, dir) = fresh(DecoderKind::Merge);
    write_config(&dir, |v| v["decoder"]["vocab_size"] = 2.into());
    assert!(names(&load_err(&dir), CONFIG_FILE));
    let (_r, dir) = fresh(DecoderKind::Merge);
    write_config(&dir, |v| v["decoder"]["kind"] = "transformer".into());
    assert!(names(&load_err(&dir), CONFIG_FILE));
    // Wrong dtype.
    let (_r, dir) = fresh(DecoderKind::Merge);
    let c = cfg(DecoderKind::Merge);
    let mut w = weights(&c, 1);
    let half = w["output.bias"].to_dtype(DType::F16).unwrap();
    w.insert("output.bias".into(), half);
    candle_core::safetensors::save(&w, dir.join(WEIGHTS_FILE)).unwrap();
    let err = load_err(&dir);
    assert!(
        names(&err, WEIGHTS_FILE) && err.to_string().contains("F16"),
        "{err}"
    );
}

#[test]
fn meta_is_lenient() {
    let (_r, dir) = fresh(DecoderKind::Merge);
    std::fs::write(
        dir.join(META_FILE),
        br#"{"format_version": 7, "dataset": "coco", "new_field": {"x": 1}}"#,
    )
    .unwrap();
    let m = load_model(&dir, &Device::Cpu).unwrap();
    assert_eq!(m.meta.dataset, "coco");
    assert_eq!(m.meta.epochs, 0);
    assert!(m.meta.metrics.is_empty());
    std::fs::write(dir.join(META_FILE), b"{}").unwrap();
    load_model(&dir, &Device::Cpu).unwrap();
}
