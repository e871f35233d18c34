//! Weights loading (good and damaged files), the encoder id and the ImageNet class names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use captioner::encoder::{
    ClassNames, Config, Encoder, EncoderError, LabelsError, encoder_id, load_model,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A complete synthetic Lite0 checkpoint (small constant values) written as safetensors.
fn synthetic_checkpoint(
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut HashMap<String, Tensor>),
) -> PathBuf {
    let mut tensors = HashMap::new();
    for (name, shape) in Config::lite0().checkpoint_tensors() {
        let value = if name.ends_with("running_var") {
            1.0
        } else {
            0.01
        };
        tensors.insert(
            name,
            Tensor::full(value as f32, shape, &Device::Cpu).unwrap(),
        );
    }
    edit(&mut tensors);
    let path = dir.join(name);
    candle_core::safetensors::save(&tensors, &path).unwrap();
    path
}

fn load_err(path: &Path) -> EncoderError {
    match Encoder::load(path, Config::lite0(), &Device::Cpu) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e,
    }
}

#[test]
fn synthetic_checkpoint_loads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = synthetic_checkpoint(dir.path(), "ok.safetensors", |_| {});
    let encoder = Encoder::load(&path, Config::lite0(), &Device::Cpu).unwrap();
    assert!(encoder.id().starts_with("efficientnet-lite0-"));
    assert_eq!(encoder.id().len(), "efficientnet-lite0-".len() + 12);
    assert_eq!(encoder.input_size(), 224);
    assert_eq!(encoder.feature_dim(), 1280);
    let image = captioner::encoder::PreprocessedImage {
        width: 224,
        height: 224,
        data: vec![0.5; 224 * 224 * 3],
    };
    let out = encoder.encode(&[image.clone(), image]).unwrap();
    assert_eq!(out.logits.dims(), &[2, 1000]);
    // wrong input size is an error, not a panic
    let small = captioner::encoder::PreprocessedImage {
        width: 10,
        height: 10,
        data: vec![0.0; 300],
    };
    assert!(matches!(
        encoder.encode(&[small]),
        Err(EncoderError::InputSize { .. })
    ));
    assert!(encoder.encode(&[]).is_err());
}

#[test]
fn missing_weights_file() {
    let err = load_err(Path::new(
        "/definitely/not/here/efficientnet-lite0.safetensors",
    ));
    assert!(matches!(err, EncoderError::WeightsNotFound { .. }), "{err}");
    assert!(err.to_string().contains("efficientnet-lite0.safetensors"));
}

#[test]
fn empty_and_truncated_weights_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    let err = load_err(&empty);
    assert!(matches!(err, EncoderError::InvalidWeights { .. }), "{err}");
    assert!(err.to_string().contains("empty.safetensors"));

    let good = synthetic_checkpoint(dir.path(), "good.safetensors", |_| {});
    let bytes = std::fs::read(&good).unwrap();
    for (i, cut) in [bytes.len() / 2, bytes.len() - 1, 100, 7]
        .into_iter()
        .enumerate()
    {
        let path = dir.path().join(format!("truncated{i}.safetensors"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = load_err(&path);
        assert!(
            matches!(err, EncoderError::InvalidWeights { .. }),
            "cut {cut}: {err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("truncated{i}.safetensors"))
        );
    }

    let text = dir.path().join("text.safetensors");
    std::fs::write(&text, "not a safetensors file at all").unwrap();
    assert!(matches!(
        load_err(&text),
        EncoderError::InvalidWeights { .. }
    ));
}

#[test]
fn real_weights_file_truncated() {
    let real = root().join("models/efficientnet-lite0.safetensors");
    let Ok(bytes) = std::fs::read(&real) else {
        eprintln!("SKIP: {} not found", real.display());
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("efficientnet-lite0.safetensors");
    std::fs::write(&path, &bytes[..bytes.len() * 3 / 4]).unwrap();
    let err = load_err(&path);
    assert!(matches!(err, EncoderError::InvalidWeights { .. }), "{err}");
}

#[test]
fn wrong_shapes_and_missing_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = synthetic_checkpoint(dir.path(), "wrong.safetensors", |t| {
        t.insert(
            "_blocks.3._depthwise_conv.weight".into(),
            Tensor::zeros((144, 1, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let err = load_err(&wrong);
    assert!(matches!(err, EncoderError::InvalidWeights { .. }), "{err}");
    assert!(
        err.to_string().contains("_blocks.3._depthwise_conv.weight"),
        "{err}"
    );

    let missing = synthetic_checkpoint(dir.path(), "missing.safetensors", |t| {
        t.remove("_fc.weight");
    });
    let err = load_err(&missing);
    assert!(matches!(err, EncoderError::InvalidWeights { .. }), "{err}");
    assert!(err.to_string().contains("_fc.weight"), "{err}");

    let missing_bn = synthetic_checkpoint(dir.path(), "missing_bn.safetensors", |t| {
        t.remove("_blocks.7._bn1.running_var");
    });
    let err = load_err(&missing_bn);
    assert!(
        err.to_string().contains("_blocks.7._bn1.running_var"),
        "{err}"
    );

    // a Lite1 checkpoint is not a Lite0 one
    let lite1 = dir.path().join("lite1.safetensors");
    let tensors: HashMap<String, Tensor> = Config::lite1()
        .checkpoint_tensors()
        .into_iter()
        .map(|(n, s)| {
            (
                n,
                Tensor::ones(s, candle_core::DType::F32, &Device::Cpu).unwrap(),
            )
        })
        .collect();
    candle_core::safetensors::save(&tensors, &lite1).unwrap();
    assert!(matches!(
        load_err(&lite1),
        EncoderError::InvalidWeights { .. }
    ));
    // ... but loads as Lite1
    assert!(load_model(&lite1, &Config::lite1(), &Device::Cpu).is_ok());
}

#[test]
fn encoder_id_depends_on_the_weights_content() {
    let dir = tempfile::tempdir().unwrap();
    let a = synthetic_checkpoint(dir.path(), "a.safetensors", |_| {});
    let b = synthetic_checkpoint(dir.path(), "b.safetensors", |t| {
        t.insert(
            "_fc.bias".into(),
            Tensor::ones(1000, candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let id_a = encoder_id(&Config::lite0(), &a).unwrap();
    assert_eq!(id_a, encoder_id(&Config::lite0(), &a).unwrap());
    assert_ne!(id_a, encoder_id(&Config::lite0(), &b).unwrap());
    assert!(id_a.starts_with("efficientnet-lite0-"));
    let hex = &id_a["efficientnet-lite0-".len()..];
    assert_eq!(hex.len(), 12);
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert!(matches!(
        encoder_id(&Config::lite0(), Path::new("/no/such/file")),
        Err(EncoderError::WeightsNotFound { .. })
    ));
}

#[test]
fn imagenet_class_names() {
    let path = root().join("models/imagenet_classes.txt");
    if !path.exists() {
        eprintln!("SKIP: {} not found", path.display());
        return;
    }
    let names = ClassNames::load(&path).unwrap();
    assert_eq!(names.len(), 1000);
    assert!(
        names.name(0).unwrap().to_lowercase().contains("tench"),
        "{:?}",
        names.name(0)
    );
    let mut logits = vec![0f32; 1000];
    logits[355] = 10.0;
    let top = names.top_k(&logits, 3).unwrap();
    assert_eq!(top[0].index, 355);
    assert!(
        top[0].label.to_lowercase().contains("llama"),
        "{}",
        top[0].label
    );
    assert!(top[0].probability > 0.9);
}

#[test]
fn class_names_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        ClassNames::load(&dir.path().join("none.txt")),
        Err(LabelsError::NotFound { .. })
    ));
    let blank = dir.path().join("blank.txt");
    std::fs::write(&blank, "a\n\nb\n").unwrap();
    let err = ClassNames::load(&blank).unwrap_err();
    assert!(matches!(err, LabelsError::Invalid { .. }) && err.to_string().contains("blank.txt"));
}

#[test]
fn encoder_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Encoder>();
    assert_send_sync::<captioner::encoder::EncoderOutput>();
}
