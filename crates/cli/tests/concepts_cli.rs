//! Model folders with and without a concept detector (issue 22, item 6): one without it still
//! captions, evaluates, calibrates and fine-tunes; a fine-tune from one with it keeps it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::Device;
use captioner::concepts::{CONCEPT_FILES, ConceptDetector};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn mini() -> PathBuf {
    root().join("tests/fixtures/flickr8k_mini")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the captioner binary runs");
    eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed");
    out
}

/// models/merge copied into `dir`, without the concept files unless `with_concepts`.
fn copy_of_merge(dir: &Path, with_concepts: bool) {
    std::fs::create_dir_all(dir).expect("a folder");
    let merge = root().join("models/merge");
    for e in std::fs::read_dir(&merge).expect("models/merge") {
        let p = e.expect("an entry").path();
        let name = p
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if !with_concepts && CONCEPT_FILES.contains(&name.as_str()) {
            continue;
        }
        std::fs::copy(&p, dir.join(&name)).expect("copied");
    }
}

/// `captioner train MINI --from BASE` for one epoch at a tiny learning rate: the JSON events
/// and what it wrote on stderr (the warnings).
fn fine_tune(base: &Path, out: &Path, cache: &Path) -> (Vec<serde_json::Value>, String) {
    let out = run(Command::new(env!("CARGO_BIN_EXE_captioner"))
        .arg("train")
        .arg(mini())
        .arg("--from")
        .arg(base)
        .args(["--epochs", "1", "--lr", "0.000001", "--json"])
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(cache));
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    (events, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_model_without_a_detector_captions_evaluates_calibrates_and_fine_tunes() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let bare = tmp.path().join("bare");
    copy_of_merge(&bare, false);
    let cache = tmp.path().join("cache");
    assert!(ConceptDetector::load(&bare).expect("no error").is_none());

    // Captions.
    let photo = mini().join("Flicker8k_Dataset/1191338263_a4fa073154.jpg");
    let out = run(Command::new(env!("CARGO_BIN_EXE_captioner"))
        .args(["caption", "--json", "--model"])
        .arg(&bare)
        .arg(&photo));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        !v[0]["caption"].as_str().expect("a caption").is_empty(),
        "{v}"
    );

    // Evaluates on the fixture's dev split.
    let out = run(Command::new(env!("CARGO_BIN_EXE_captioner"))
        .arg("eval")
        .arg(mini())
        .arg("--model")
        .arg(&bare)
        .arg("--cache")
        .arg(&cache)
        .args(["--min-count", "1", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["images"], 8, "{v}");
    let cider = v["cider_d"].as_f64().expect("CIDEr-D");
    assert!(cider.is_finite() && cider >= 0.0, "{v}");

    // Calibrates (on the fixture's 8 dev photos, the minimum lowered as training's tests do).
    let cancel = captioner::jobs::CancelToken::new();
    let encoder = captioner::pipeline::load_encoder(&Device::Cpu).expect("the encoder");
    let ds = captioner::jobs::import::import(
        &mini(),
        &captioner::dataset::ImportOptions {
            min_count: 1,
            ..Default::default()
        },
        &mut |_| {},
        &cancel,
    )
    .expect("the fixture");
    let features = captioner::features::FeatureCache::new(&cache, encoder.id());
    let paths: Vec<PathBuf> = ds.images.iter().map(|e| e.path.clone()).collect();
    captioner::jobs::extract::extract(
        &encoder,
        &features,
        &paths,
        &captioner::features::ExtractOptions::default(),
        &mut |_| {},
        &cancel,
    )
    .expect("features");
    let options = captioner::jobs::calibrate::AutoCalibrateOptions {
        min_dev_photos: 8,
        ..Default::default()
    };
    let fitted = captioner::jobs::calibrate::calibrate_model_dir(
        &bare,
        &ds,
        &features,
        &encoder,
        &Device::Cpu,
        &options,
        &mut |_| {},
        &cancel,
    )
    .expect("calibrated");
    assert_eq!(fitted.calibration.fitted["photos"], 8);

    // Fine-tunes: the new model captions; it gets a detector of its own only when the
    // fixture's 16 training photos give one (a word needs 10 of them), else a warning says why.
    let tuned = tmp.path().join("tuned");
    let (events, stderr) = fine_tune(&bare, &tuned, &cache);
    assert!(
        events.iter().any(|e| e["event"] == "finished"),
        "{events:?}"
    );
    let last = tuned.join("last");
    assert!(last.join("weights.safetensors").is_file());
    match ConceptDetector::load(&last).expect("no damaged detector") {
        Some(d) => assert_eq!(d.info().train_photos, 16),
        None => assert!(
            stderr.contains("warning: no concept detector"),
            "no detector and no warning: {stderr}"
        ),
    }
    let out = run(Command::new(env!("CARGO_BIN_EXE_captioner"))
        .args(["caption", "--json", "--model"])
        .arg(&last)
        .arg(&photo));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        !v[0]["caption"].as_str().expect("a caption").is_empty(),
        "{v}"
    );
}

#[test]
fn a_fine_tune_keeps_its_base_models_detector() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let base = tmp.path().join("base");
    copy_of_merge(&base, true);
    let tuned = tmp.path().join("tuned");
    let (events, stderr) = fine_tune(&base, &tuned, &tmp.path().join("cache"));
    // No warning about the detector: the base's is kept, not trained again or refused.
    assert!(!stderr.contains("concept detector"), "{stderr}");
    assert!(
        events.iter().any(|e| e["event"] == "finished"),
        "{events:?}"
    );
    let original = ConceptDetector::load(&base)
        .expect("loads")
        .expect("models/merge has a detector");
    let probe: Vec<f32> = (0..original.dim()).map(|i| (i % 13) as f32 * 0.1).collect();
    for dir in [tuned.join("best"), tuned.join("last")] {
        let kept = ConceptDetector::load(&dir)
            .expect("loads")
            .unwrap_or_else(|| panic!("{} has no detector", dir.display()));
        assert_eq!(kept.info(), original.info(), "{}", dir.display());
        assert_eq!(kept.probabilities(&probe), original.probabilities(&probe));
    }
}
