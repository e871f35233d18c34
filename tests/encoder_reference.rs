//! Numerical checks of the EfficientNet-Lite0 encoder against PyTorch reference outputs.
//!
//! Needs `models/efficientnet-lite0.safetensors` and `tests/fixtures/encoder/` (reference.json,
//! pixels/*.rgb, images/*.jpg); each test prints a message and skips when they are missing.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use captioner::encoder::{
    ClassNames, Config, Encoder, PreprocessedImage, preprocess_raw_rgb_file, top_k_probabilities,
};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn weights_path() -> PathBuf {
    root().join("models/efficientnet-lite0.safetensors")
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/encoder")
}

fn load_encoder() -> Option<Encoder> {
    let path = weights_path();
    if !path.exists() {
        eprintln!("SKIP: {} not found", path.display());
        return None;
    }
    Some(Encoder::load(&path, Config::lite0(), &Device::Cpu).unwrap())
}

fn load_reference() -> Option<Value> {
    let path = fixtures().join("reference.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).unwrap()),
        Err(_) => {
            eprintln!("SKIP: {} not found", path.display());
            None
        }
    }
}

struct RefImage {
    name: String,
    /// Raw pixels file relative to the fixtures directory.
    pixels: String,
    feature: Vec<f32>,
    top5: Vec<usize>,
    top5_labels: Vec<String>,
}

fn reference_images(reference: &Value) -> Vec<RefImage> {
    reference["images"]
        .as_array()
        .map(|images| {
            images
                .iter()
                .map(|img| RefImage {
                    name: img["image"].as_str().unwrap().to_string(),
                    pixels: img["pixels_file"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| {
                            format!("pixels/{}.rgb", stem(img["image"].as_str().unwrap()))
                        }),
                    feature: img["feature"]
                        .as_array()
                        .map(|f| f.iter().map(|v| v.as_f64().unwrap() as f32).collect())
                        .unwrap_or_default(),
                    top5: img["top5_idx"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_u64().unwrap() as usize)
                        .collect(),
                    top5_labels: img["top5_label"]
                        .as_array()
                        .map(|l| l.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn stem(name: &str) -> &str {
    Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap()
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den).sqrt()
}

/// (a) raw reference pixels -> pooled feature within 1e-4 relative error, same top-5.
#[test]
fn pooled_features_match_reference_from_raw_pixels() {
    let (Some(encoder), Some(reference)) = (load_encoder(), load_reference()) else {
        return;
    };
    let mut checked = 0;
    for img in reference_images(&reference) {
        let pixels = fixtures()
            .join("pixels")
            .join(format!("{}.rgb", stem(&img.name)));
        if !pixels.exists() || img.feature.is_empty() {
            continue;
        }
        let input = preprocess_raw_rgb_file(&pixels, 224).unwrap();
        let out = encoder.encode(&[input]).unwrap();
        let pooled = out.pooled.squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        let logits = out.logits.squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        let err = rel_err(&pooled, &img.feature);
        let max_abs = pooled
            .iter()
            .zip(&img.feature)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let top5: Vec<usize> = top_k_probabilities(&logits, 5)
            .iter()
            .map(|p| p.0)
            .collect();
        println!(
            "{}: relative error {err:.3e}, max abs diff {max_abs:.2e}, top-5 {top5:?} (reference {:?})",
            img.name, img.top5
        );
        assert!(err <= 1e-4, "{}: relative error {err:e} > 1e-4", img.name);
        assert_eq!(top5, img.top5, "{}: top-5 differs", img.name);
        checked += 1;
    }
    if checked == 0 {
        eprintln!("SKIP: no pixels/*.rgb with a reference feature");
    }
}

/// Per-layer statistics of the first reference image (pinpoints the first diverging layer).
#[test]
fn layer_statistics_match_reference() {
    let (Some(encoder), Some(reference)) = (load_encoder(), load_reference()) else {
        return;
    };
    let Some(stats) = reference["layer_stats_image0"].as_array() else {
        eprintln!("SKIP: reference.json has no layer_stats_image0");
        return;
    };
    let first = &reference_images(&reference)[0];
    let pixels = fixtures()
        .join("pixels")
        .join(format!("{}.rgb", stem(&first.name)));
    if !pixels.exists() {
        eprintln!("SKIP: {} not found", pixels.display());
        return;
    }
    let input = preprocess_raw_rgb_file(&pixels, 224).unwrap();
    let xs = encoder.batch_tensor(&[input]).unwrap();
    let layers = encoder.model().layer_outputs(&xs).unwrap();
    assert_eq!(layers.len(), stats.len(), "layer count");
    for ((name, t), s) in layers.iter().zip(stats) {
        // reference shapes are CHW, ours NHWC
        let shape: Vec<usize> = s["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let (_, h, w, c) = t.dims4().unwrap();
        assert_eq!(vec![c, h, w], shape, "{name}: shape");
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        // torch.std is the unbiased estimate
        let std = (v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0))
            .sqrt();
        let abs_sum: f64 = v.iter().map(|&x| f64::from(x).abs()).sum();
        let ref_std = s["std"].as_f64().unwrap();
        let ref_abs = s["abs_sum"].as_f64().unwrap();
        let ref_mean = s["mean"].as_f64().unwrap();
        // first 8 values of channel 0 in CHW order = (y=0, x=0..8, c=0)
        let first8: Vec<f32> = (0..8.min(w)).map(|x| v[x * c]).collect();
        let ref_first8: Vec<f32> = s["first8"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let d8 = first8
            .iter()
            .zip(&ref_first8)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        println!(
            "{name}: mean {mean:.6} (ref {ref_mean:.6}) std {std:.6} (ref {ref_std:.6}) abs_sum {abs_sum:.2} (ref {ref_abs:.2}) first8 max diff {d8:.2e}"
        );
        assert!(
            (std - ref_std).abs() <= 1e-5 * ref_std.max(1.0),
            "{name}: std {std} vs {ref_std}"
        );
        assert!(
            (abs_sum - ref_abs).abs() <= 1e-4 * ref_abs,
            "{name}: abs_sum {abs_sum} vs {ref_abs}"
        );
        assert!(
            (mean - ref_mean).abs() <= 1e-4 * ref_std.max(1.0),
            "{name}: mean {mean} vs {ref_mean}"
        );
        assert!(
            d8 <= 1e-3 * ref_std.max(1.0) as f32,
            "{name}: first8 {first8:?} vs {ref_first8:?}"
        );
    }
}

/// (b) the committed JPEGs, decoded by our pipeline: same top-1 as the reference, and the
/// reference top-1 within our top-5.
#[test]
fn fixture_jpegs_are_classified_like_the_reference() {
    let (Some(encoder), Some(reference)) = (load_encoder(), load_reference()) else {
        return;
    };
    let names = ClassNames::load(&root().join("models/imagenet_classes.txt")).ok();
    let mut checked = 0;
    for img in reference_images(&reference) {
        let path = fixtures().join("images").join(&img.name);
        if !path.exists() {
            continue;
        }
        let input = encoder.preprocess_file(&path).unwrap();
        let out = encoder.encode(&[input]).unwrap();
        let logits = out.logits.squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        let top5: Vec<usize> = top_k_probabilities(&logits, 5)
            .iter()
            .map(|p| p.0)
            .collect();
        let pooled = out.pooled.squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        let err = if img.feature.is_empty() {
            f64::NAN
        } else {
            rel_err(&pooled, &img.feature)
        };
        println!(
            "{}: top-5 {top5:?} (reference {:?}), feature relative error {err:.3e}",
            img.name, img.top5
        );
        assert_eq!(top5[0], img.top5[0], "{}: top-1 differs", img.name);
        assert!(top5.contains(&img.top5[0]));
        if let Some(names) = &names {
            let ours = encoder.classify(&out, names, 5).unwrap().remove(0);
            assert_eq!(ours[0].index, img.top5[0]);
            if let Some(label) = img.top5_labels.first() {
                assert_eq!(&ours[0].label, label, "{}: top-1 label", img.name);
            }
        }
        checked += 1;
    }
    if checked == 0 {
        eprintln!("SKIP: no fixture images found");
    }
}

/// Our JPEG decoder against the reference decoder's pixels (information; decoders may differ by
/// a few levels).
#[test]
fn jpeg_decoding_is_close_to_reference_pixels() {
    let Some(reference) = load_reference() else {
        return;
    };
    for img in reference_images(&reference) {
        let jpeg = fixtures().join("images").join(&img.name);
        let raw = fixtures()
            .join("pixels")
            .join(format!("{}.rgb", stem(&img.name)));
        if !jpeg.exists() || !raw.exists() {
            continue;
        }
        let ours = captioner::encoder::load_rgb(&jpeg).unwrap();
        let theirs = std::fs::read(&raw).unwrap();
        if ours.as_raw().len() != theirs.len() {
            continue; // not a 224x224 source: resized, not comparable byte for byte
        }
        let diffs: Vec<i32> = ours
            .as_raw()
            .iter()
            .zip(&theirs)
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .collect();
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        let max = diffs.iter().copied().max().unwrap_or(0);
        println!("{}: mean |diff| {mean:.3} levels, max {max}", img.name);
        assert!(
            mean < 2.0,
            "{}: decoded pixels differ by {mean} levels on average",
            img.name
        );
    }
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().map(|x| x.abs()).fold(0f32, f32::max).max(1e-6);
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
        / scale
}

fn synthetic_batch(n: usize, h: usize, w: usize) -> Tensor {
    // deterministic pseudo-random pixels in the normalised range
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<f32> = (0..n * h * w * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state % 256) as f32 - 127.0) / 128.0
        })
        .collect();
    Tensor::from_vec(data, (n, h, w, 3), &Device::Cpu).unwrap()
}

/// (c) fast NHWC path and generic candle conv2d path agree with the real weights, at the
/// model's size (batch of 2) and at an odd, non-square size.
#[test]
fn fast_path_matches_generic_path_with_real_weights() {
    let Some(encoder) = load_encoder() else {
        return;
    };
    let model = encoder.model();
    assert!(model.has_fast_path());
    let mut inputs = vec![synthetic_batch(2, 224, 224), synthetic_batch(1, 97, 130)];
    let pixels = load_reference()
        .and_then(|r| reference_images(&r).into_iter().next())
        .map(|img| fixtures().join(img.pixels));
    if let Some(pixels) = pixels.filter(|p| p.exists()) {
        let img: PreprocessedImage = preprocess_raw_rgb_file(&pixels, 224).unwrap();
        inputs.push(encoder.batch_tensor(&[img]).unwrap());
    }
    for xs in inputs {
        let fast = model.forward_fast(&xs).unwrap();
        let generic = model
            .forward_generic(&xs.permute((0, 3, 1, 2)).unwrap().contiguous().unwrap())
            .unwrap();
        assert_eq!(fast.feature_map.dims(), generic.feature_map.dims());
        let d_pool = max_rel_diff(&fast.pooled, &generic.pooled);
        let d_logit = max_rel_diff(&fast.logits, &generic.logits);
        let d_map = max_rel_diff(&fast.feature_map, &generic.feature_map);
        println!(
            "input {:?}: max rel diff pooled {d_pool:.2e} logits {d_logit:.2e} map {d_map:.2e}",
            xs.dims()
        );
        assert!(d_pool < 1e-4 && d_logit < 1e-4 && d_map < 1e-4);
    }
}

/// Batch-independence of the fast path: one image alone or inside a batch gives the same result.
#[test]
fn batching_does_not_change_features() {
    let Some(mut encoder) = load_encoder() else {
        return;
    };
    let xs = synthetic_batch(3, 224, 224);
    let images: Vec<PreprocessedImage> = (0..3)
        .map(|i| PreprocessedImage {
            width: 224,
            height: 224,
            data: xs
                .get(i)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
        })
        .collect();
    encoder.set_micro_batch(1);
    let singles = encoder.encode(&images).unwrap();
    encoder.set_micro_batch(8);
    let batched = encoder.encode(&images).unwrap();
    assert_eq!(batched.pooled.dims(), &[3, 1280]);
    assert_eq!(batched.feature_map.dims(), &[3, 7, 7, 1280]);
    assert!(max_rel_diff(&singles.pooled, &batched.pooled) < 1e-5);
}
