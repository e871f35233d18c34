//! The visual-concept detector (issue 22, item 2): storing and loading it, damaged files,
//! training it on the Flickr8k fixture, the word forms it uses, and the shipped models'
//! detectors on a dog photo.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use captioner::concepts::train::ConceptOptions;
use captioner::concepts::{
    CONCEPT_FILES, CONCEPT_JSON, CONCEPT_TENSORS, ConceptDetector, concept_word,
};
use captioner::jobs::CancelToken;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A detector trained on the 16 training photos of the Flickr8k fixture (a word needs 3 of
/// them) and the pooled features of its 8 dev photos, made once for all tests here.
struct Mini {
    detector: ConceptDetector,
    dev: Vec<Vec<f32>>,
}

fn mini() -> &'static Mini {
    static MINI: OnceLock<Mini> = OnceLock::new();
    MINI.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("a temporary folder");
        let cancel = CancelToken::new();
        let encoder = captioner::pipeline::load_encoder(&Device::Cpu).expect("the encoder");
        let ds = captioner::jobs::import::import(
            &root().join("tests/fixtures/flickr8k_mini"),
            &captioner::dataset::ImportOptions {
                min_count: 1,
                ..Default::default()
            },
            &mut |_| {},
            &cancel,
        )
        .expect("the fixture");
        let cache = captioner::features::FeatureCache::new(tmp.path(), encoder.id());
        let paths: Vec<PathBuf> = ds.images.iter().map(|e| e.path.clone()).collect();
        captioner::jobs::extract::extract(
            &encoder,
            &cache,
            &paths,
            &captioner::features::ExtractOptions::default(),
            &mut |_| {},
            &cancel,
        )
        .expect("features");
        let options = ConceptOptions {
            min_photos: 3,
            ..ConceptOptions::default()
        };
        let outcome =
            captioner::jobs::concepts::train_on_dataset(&ds, &cache, encoder.id(), &options)
                .expect("a detector");
        assert_eq!(outcome.report.train_photos, 16);
        assert_eq!(outcome.report.dev_photos, 8);
        let dev_paths: Vec<PathBuf> = ds
            .split(captioner::dataset::Split::Dev)
            .map(|e| e.path.clone())
            .collect();
        let dev = captioner::features::load_cached(&cache, &dev_paths)
            .into_iter()
            .map(|f| f.expect("a cached dev feature"))
            .collect();
        Mini {
            detector: outcome.detector,
            dev,
        }
    })
}

/// The detector of `mini()` stored in a fresh folder.
fn stored() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    mini().detector.save(dir.path()).expect("saved");
    dir
}

fn load_error(dir: &Path) -> String {
    match ConceptDetector::load(dir) {
        Ok(_) => panic!("{} loads", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn training_on_the_fixture_finds_its_frequent_nouns() {
    let m = mini();
    let words = m.detector.words();
    // The nouns three or more of the 16 training photos' captions mention.
    for w in ["dog", "shirt", "water", "girl", "camera"] {
        assert!(words.iter().any(|x| x == w), "{w} missing from {words:?}");
    }
    for w in ["a", "the", "in", "is", "with", "and", "of", "she"] {
        assert!(!words.iter().any(|x| x == w), "stop word {w} in {words:?}");
    }
    // Most frequent first.
    let counts = &m.detector.info().train_counts;
    assert_eq!(counts.len(), words.len());
    assert!(counts.windows(2).all(|c| c[0] >= c[1]), "{counts:?}");
    assert!(counts.iter().all(|c| *c >= 3));
    assert_eq!(m.detector.dim(), 1280);
    let map = m.detector.info().dev_map.expect("a dev mAP");
    assert!((0.0..=1.0).contains(&map), "{map}");
    for f in &m.dev {
        let p = m.detector.probabilities(f);
        assert_eq!(p.len(), words.len());
        assert!(p.iter().all(|p| p.is_finite() && (0.0..=1.0).contains(p)));
    }
}

#[test]
fn save_then_load_gives_the_same_probabilities() {
    let m = mini();
    let dir = stored();
    for f in CONCEPT_FILES {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let back = ConceptDetector::load(dir.path())
        .expect("loads")
        .expect("a detector");
    assert_eq!(back.info(), m.detector.info());
    assert_eq!(back.words(), m.detector.words());
    for f in &m.dev {
        assert_eq!(back.probabilities(f), m.detector.probabilities(f));
    }
    let dog = m.detector.index_of("dogs").expect("dog");
    assert_eq!(
        back.probability_of(&m.dev[0], "Dogs"),
        Some(m.detector.probabilities(&m.dev[0])[dog])
    );
}

#[test]
fn a_folder_without_the_files_has_no_detector() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    assert!(
        ConceptDetector::load(dir.path())
            .expect("no error")
            .is_none()
    );
    // One file without the other is an error naming the missing one.
    let dir = stored();
    std::fs::remove_file(dir.path().join(CONCEPT_TENSORS)).expect("removed");
    let e = load_error(dir.path());
    assert!(e.contains(CONCEPT_TENSORS), "{e}");
    let dir = stored();
    std::fs::remove_file(dir.path().join(CONCEPT_JSON)).expect("removed");
    let e = load_error(dir.path());
    assert!(e.contains(CONCEPT_JSON), "{e}");
}

#[test]
fn a_corrupt_description_is_an_error_naming_it() {
    let dir = stored();
    std::fs::write(
        dir.path().join(CONCEPT_JSON),
        "{\"version\": 1, \"words\": [",
    )
    .expect("w");
    let e = load_error(dir.path());
    assert!(e.contains(CONCEPT_JSON), "{e}");
    // A newer version is refused with what to do.
    let dir = stored();
    let p = dir.path().join(CONCEPT_JSON);
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
    v["version"] = serde_json::json!(99);
    std::fs::write(&p, v.to_string()).expect("w");
    let e = load_error(dir.path());
    assert!(
        e.contains(CONCEPT_JSON) && e.contains("captioner concepts"),
        "{e}"
    );
}

#[test]
fn a_truncated_tensor_file_is_an_error_naming_it() {
    let dir = stored();
    let p = dir.path().join(CONCEPT_TENSORS);
    let bytes = std::fs::read(&p).expect("read");
    for len in [0, 5, 200, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&p, &bytes[..len]).expect("w");
        let e = load_error(dir.path());
        assert!(e.contains(CONCEPT_TENSORS), "{len} bytes: {e}");
    }
}

#[test]
fn a_wrong_shaped_weight_is_an_error_naming_the_file() {
    let m = mini();
    let (k, d) = (m.detector.words().len(), m.detector.dim());
    let cpu = Device::Cpu;
    let write = |dir: &Path, weight: Tensor| {
        let mut t = std::collections::HashMap::new();
        t.insert(
            "mean",
            Tensor::zeros(d, candle_core::DType::F32, &cpu).expect("t"),
        );
        t.insert(
            "scale",
            Tensor::ones(d, candle_core::DType::F32, &cpu).expect("t"),
        );
        t.insert("weight", weight);
        t.insert(
            "bias",
            Tensor::zeros(k, candle_core::DType::F32, &cpu).expect("t"),
        );
        let bytes = safetensors::serialize(t, None).expect("serialised");
        std::fs::write(dir.join(CONCEPT_TENSORS), bytes).expect("w");
    };
    let f16 = candle_core::DType::F16;
    for shape in [(k, d - 1), (d, k), (k + 1, d)] {
        let dir = stored();
        write(
            dir.path(),
            Tensor::zeros(shape, f16, &cpu).expect("a weight"),
        );
        let e = load_error(dir.path());
        assert!(e.contains(CONCEPT_TENSORS), "{shape:?}: {e}");
    }
    // The right shape loads (the helper itself is sound).
    let dir = stored();
    write(
        dir.path(),
        Tensor::zeros((k, d), f16, &cpu).expect("a weight"),
    );
    let back = ConceptDetector::load(dir.path())
        .expect("loads")
        .expect("some");
    assert!(back.probabilities(&m.dev[0]).iter().all(|p| *p == 0.5));
    // A missing tensor is named too.
    let dir = stored();
    let mut t = std::collections::HashMap::new();
    t.insert(
        "mean",
        Tensor::zeros(d, candle_core::DType::F32, &cpu).expect("t"),
    );
    let bytes = safetensors::serialize(t, None).expect("serialised");
    std::fs::write(dir.path().join(CONCEPT_TENSORS), bytes).expect("w");
    let e = load_error(dir.path());
    assert!(e.contains(CONCEPT_TENSORS) && e.contains("scale"), "{e}");
}

#[test]
fn concept_words_are_singular_nouns() {
    for (a, b) in [
        ("dogs", "dog"),
        ("Dog", "dog"),
        ("men", "man"),
        ("women", "woman"),
        ("people", "person"),
        ("children", "child"),
        ("puppies", "puppy"),
        ("benches", "bench"),
        ("grass", "grass"),
        ("glasses", "glasses"),
        ("sunglasses", "sunglasses"),
        ("shorts", "shorts"),
        ("dress", "dress"),
        ("bus", "bus"),
        ("running", "running"),
    ] {
        assert_eq!(concept_word(a), b, "{a}");
    }
}

/// The German shepherds of the encoder fixture (a Flickr8k dev photo, not trained on).
fn dog_photo_pooled() -> Vec<f32> {
    let encoder = captioner::pipeline::load_encoder(&Device::Cpu).expect("the encoder");
    let photo = root().join("tests/fixtures/encoder/images/246231741_882b45c4e1.jpg");
    let out = encoder.encode_files(&[photo]).expect("encoded");
    out.pooled
        .to_dtype(candle_core::DType::F32)
        .and_then(|t| t.to_vec2::<f32>())
        .expect("pooled")
        .remove(0)
}

#[test]
fn the_shipped_detectors_see_the_dog() {
    let pooled = dog_photo_pooled();
    for name in ["default", "merge"] {
        let dir = root().join("models").join(name);
        let d = ConceptDetector::load(&dir)
            .expect("loads")
            .unwrap_or_else(|| panic!("models/{name} has a concept detector"));
        assert_eq!(d.words().len(), 500, "{name}");
        assert_eq!(d.dim(), pooled.len());
        let map = d.info().dev_map.expect("a dev mAP");
        assert!((0.2..0.3).contains(&map), "{name}: {map}");
        let p = d.probabilities(&pooled);
        let dog = p[d.index_of("dogs").expect("dog")];
        let below = p.iter().filter(|q| **q < dog).count();
        eprintln!(
            "models/{name}: p(dog) {dog:.3}, above {below} of {} words",
            p.len()
        );
        assert!(dog > 0.5, "{name}: p(dog) {dog}");
        assert!(
            below >= p.len() * 98 / 100,
            "{name}: dog above only {below}"
        );
        for w in ["surfer", "snow", "pizza"] {
            if let Some(q) = d.probability_of(&pooled, w) {
                assert!(q < dog, "{name}: {w} {q} against dog {dog}");
            }
        }
    }
}
