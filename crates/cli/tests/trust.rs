//! Captions you can trust (issue 12): the tag mapping, storing and loading the calibration and
//! familiarity data, models without them, and the shipped model on photos unlike Flickr8k.

use std::path::{Path, PathBuf};

use candle_core::Device;
use captioner::jobs::calibrate;
use captioner::jobs::caption::{CaptionInput, caption_one};
use captioner::pipeline::{self, Captioner, DecodeOptions};
use captioner::trust::calibration::{CALIBRATION_JSON, Calibration};
use captioner::trust::{Familiarity, ReviewReason, Signals, tags};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn caption(c: &Captioner, photo: &Path) -> captioner::pipeline::CaptionResult {
    caption_one(
        c,
        CaptionInput::File(photo.to_path_buf()),
        &DecodeOptions::default(),
    )
    .unwrap()
    .result
}

#[test]
fn tag_mapping_covers_every_imagenet_class() {
    let classes = std::fs::read_to_string(root().join("models/imagenet_classes.txt")).unwrap();
    let text = std::fs::read_to_string(root().join("models").join(tags::TAGS_FILE)).unwrap();
    let t = tags::parse_tags(&text);
    assert_eq!(classes.lines().count(), 1000);
    assert_eq!(t.len(), 1000, "one line of tags per class");
    for (i, (tags, class)) in t.iter().zip(classes.lines()).enumerate() {
        assert!(!tags.is_empty(), "class {i} ({class}) has no tag");
        for tag in tags {
            assert_eq!(
                tag,
                &tag.to_lowercase(),
                "class {i}: `{tag}` is not plain lower case"
            );
        }
        // The class's own first name is one of its tags.
        let first = class.split(',').next().unwrap().trim().to_lowercase();
        assert!(tags.contains(&first), "class {i}: {tags:?} lacks `{first}`");
    }
    let has = |i: usize, w: &str| t[i].iter().any(|x| x == w);
    for (first, last, word) in [(151, 268, "dog"), (281, 285, "cat")] {
        for (i, tags) in t.iter().enumerate().take(last + 1).skip(first) {
            assert!(has(i, word), "class {i} {tags:?}");
        }
    }
    assert!(has(967, "coffee"), "espresso is coffee: {:?}", t[967]);
    assert!(has(817, "car"), "sports car is a car: {:?}", t[817]);
}

#[test]
fn a_caption_naming_an_animal_the_classifier_does_not_see_is_caught() {
    let models = root().join("models");
    let c = tags::Classifier::load(
        &models.join("efficientnet-lite0.safetensors"),
        &models.join(tags::TAGS_FILE),
    )
    .unwrap();
    // The animal classes end where the objects begin.
    let names = std::fs::read_to_string(models.join("imagenet_classes.txt")).unwrap();
    let names: Vec<&str> = names.lines().collect();
    assert!(names[tags::ANIMAL_CLASSES - 1].starts_with("puffer"));
    assert_eq!(names[tags::ANIMAL_CLASSES], "abacus");
    let probs = |class: usize, p: f32| -> Vec<f32> {
        let mut v = vec![(1.0 - p) / 999.0; 1000];
        v[class] = p;
        v
    };
    let (ice_bear, golden_retriever, abacus) = (296, 207, 398);
    let words = |s: &'static str| -> Vec<&'static str> { s.split(' ').collect() };
    let m = c
        .animal_mismatch(
            &words("a white dog is walking through the snow"),
            &probs(ice_bear, 0.95),
        )
        .expect("a dog caption of a polar bear");
    assert_eq!((m.named.as_str(), m.seen.as_str()), ("dog", "ice bear"));
    assert!(m.describe().contains("\"dog\"") && m.describe().contains("ice bear (95%)"));
    let flags = |caption: &'static str, class: usize, p: f32| {
        c.animal_mismatch(&words(caption), &probs(class, p))
            .is_some()
    };
    // Plurals name the animal too.
    assert!(flags("two dogs in the snow", ice_bear, 0.95));
    // Not when the classifier sees the animal named, or the caption uses the seen animal's
    // name, or the classifier is unsure, or sees no animal, or the caption names none.
    assert!(!flags("a white dog", golden_retriever, 0.6));
    assert!(!flags("a dog and a bear", ice_bear, 0.95));
    assert!(!flags("a white dog", ice_bear, 0.3));
    assert!(!flags("a white dog", abacus, 0.9));
    assert!(!flags("a man in the snow", ice_bear, 0.95));
}

fn calibration() -> Calibration {
    Calibration {
        signals: Signals::NAMES.iter().map(|s| s.to_string()).collect(),
        mean: vec![0.1; Signals::NAMES.len()],
        scale: vec![1.0; Signals::NAMES.len()],
        weights: vec![0.5, 0.2, 1.0, 0.4, 0.3, 0.2, 0.1, 0.1, 0.3],
        bias: -0.2,
        review_below: 0.4,
        unfamiliar_below: 0.3,
        tag_threshold: 0.3,
        fitted: serde_json::json!({"split": "dev"}),
    }
}

#[test]
fn calibration_is_stored_and_loaded() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Calibration::load(dir.path()).unwrap().is_none());
    let cal = calibration();
    cal.save(dir.path()).unwrap();
    let back = Calibration::load(dir.path()).unwrap().unwrap();
    assert_eq!(back, cal);
    let s = Signals {
        log_word_geomean: -1.0,
        similarity: 0.5,
        ..Signals::default()
    };
    assert_eq!(back.confidence(&s), cal.confidence(&s));
    assert!((0.0..=1.0).contains(&back.confidence(&s)));
    // A damaged file is an error naming it (with the line).
    std::fs::write(dir.path().join(CALIBRATION_JSON), "{\n  \"signals\": [").unwrap();
    let e = Calibration::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains(CALIBRATION_JSON) && e.contains("line"), "{e}");
    // A calibration for other signals is refused, saying so.
    let mut other = calibration();
    other.signals[0] = "something_else".into();
    other.save(dir.path()).unwrap();
    let e = Calibration::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("calibrate"), "{e}");
}

#[test]
fn familiarity_is_stored_and_loaded() {
    // 40 training "photos" in two clusters, 10 dev photos of the first cluster.
    let feature = |cluster: usize, k: usize| -> Vec<f32> {
        (0..32)
            .map(|j| {
                let base = if (j < 16) == (cluster == 0) { 1.0 } else { 0.0 };
                base + 0.05 * (((k * 31 + j * 7) % 11) as f32 - 5.0)
            })
            .collect()
    };
    let train: Vec<Vec<f32>> = (0..40).map(|k| feature(k % 2, k)).collect();
    let dev: Vec<Vec<f32>> = (0..10).map(|k| feature(0, 100 + k)).collect();
    let captions: Vec<Vec<Vec<u32>>> = (0..40)
        .map(|k| vec![vec![4, 5, k as u32 + 6], vec![7, 8]])
        .collect();
    let tr: Vec<&[f32]> = train.iter().map(Vec::as_slice).collect();
    let dv: Vec<&[f32]> = dev.iter().map(Vec::as_slice).collect();
    let fam = Familiarity::build("enc", &tr, captions, &dv, 8).unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert!(Familiarity::load(dir.path()).unwrap().is_none());
    fam.save(dir.path()).unwrap();
    let back = Familiarity::load(dir.path()).unwrap().unwrap();
    assert_eq!(back.info, fam.info);
    let q = feature(0, 500);
    let (a, b) = (fam.neighbours(&q), back.neighbours(&q));
    assert_eq!(a, b);
    // The nearest photos (the 20 of the same cluster first) are of the same cluster, and
    // their captions came back.
    assert_eq!(a.indices.len(), 40);
    assert!(a.indices[..20].iter().all(|i| i % 2 == 0), "{a:?}");
    assert!(a.similarity > 0.9 && a.centred_similarity > 0.5, "{a:?}");
    assert_eq!(back.captions(3), &[vec![4, 5, 9], vec![7, 8]]);
    let f = back.familiarity(a.similarity);
    assert!((0.0..=1.0).contains(&f));
    // A photo unlike the training photos is less familiar than the dev photos.
    let odd: Vec<f32> = (0..32)
        .map(|j| if j % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    assert!(back.familiarity(back.neighbours(&odd).similarity) < 0.05);

    // Familiarity data written by an older version is refused with a message saying what to
    // do (the folder still captions, without a confidence: see `a_model_without_calibration_still_captions_and_says_so`).
    let json = dir
        .path()
        .join(captioner::trust::familiarity::FAMILIARITY_JSON);
    let mut info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    info.as_object_mut().unwrap().remove("version");
    std::fs::write(&json, info.to_string()).unwrap();
    let err = Familiarity::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("older") && err.contains("captioner calibrate"),
        "{err}"
    );
}

/// The shipped model in a folder of its own, without its trust files.
fn bare_copy_of_default() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "config.json",
        "vocab.json",
        "weights.safetensors",
        "meta.json",
    ] {
        std::fs::copy(
            captioner::paths::default_model_dir().join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    dir
}

#[test]
fn a_model_without_calibration_still_captions_and_says_so() {
    let dir = bare_copy_of_default();
    let c = Captioner::load(dir.path(), &Device::Cpu).unwrap();
    let note = c.trust_note.clone().unwrap();
    assert!(note.contains("not calibrated"), "{note}");
    let photo = root().join("tests/fixtures/unfamiliar/chelsea.jpg");
    let r = caption(&c, &photo);
    assert!(!r.text.is_empty());
    assert_eq!(r.confidence, None);
    assert_eq!(r.needs_review, None);
    assert_eq!(r.familiarity, None);
    assert!(r.tags.iter().any(|t| t == "cat"), "{:?}", r.tags);
    // The command line says so too, and its JSON has the fields (null).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_captioner"))
        .args(["caption", "--json", "--model"])
        .arg(dir.path())
        .arg(&photo)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not calibrated"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v[0]["confidence"].is_null() && v[0]["needs_review"].is_null());
    assert!(v[0]["tags"].as_array().unwrap().len() > 1);
}

#[test]
fn a_damaged_calibration_leaves_captioning_working() {
    let dir = bare_copy_of_default();
    std::fs::write(dir.path().join(CALIBRATION_JSON), "not json").unwrap();
    let c = Captioner::load(dir.path(), &Device::Cpu).unwrap();
    let note = c.trust_note.clone().unwrap();
    assert!(note.contains(CALIBRATION_JSON), "{note}");
    let r = caption(&c, &root().join("tests/fixtures/unfamiliar/coffee.jpg"));
    assert!(!r.text.is_empty() && r.confidence.is_none());
}

#[test]
fn shipped_model_flags_unfamiliar_photos_and_tags_them() {
    let c = Captioner::load(&captioner::paths::default_model_dir(), &Device::Cpu).unwrap();
    assert_eq!(c.trust_note, None, "the shipped model is calibrated");
    let unf = root().join("tests/fixtures/unfamiliar");
    let cat = caption(&c, &unf.join("chelsea.jpg"));
    assert_eq!(cat.needs_review, Some(true), "{cat:?}");
    assert!(cat.tags.iter().any(|t| t == "cat"), "{:?}", cat.tags);
    // A caption flagged as probably wrong ("a little boy ...") lends no words to the tags.
    assert!(
        !cat.tags.iter().any(|t| t == "boy" || t == "girl"),
        "{:?}",
        cat.tags
    );
    // The astronaut (a NASA portrait in an orange flight suit) gets a people caption that
    // is flagged too.
    let astronaut = caption(&c, &unf.join("astronaut.jpg"));
    assert_eq!(astronaut.needs_review, Some(true), "{astronaut:?}");
    let coffee = caption(&c, &unf.join("coffee.jpg"));
    assert_eq!(coffee.needs_review, Some(true), "{coffee:?}");
    assert_eq!(coffee.review_reason, Some(ReviewReason::Unfamiliar));
    assert!(
        coffee.tags.iter().any(|t| t == "coffee" || t == "espresso"),
        "{:?}",
        coffee.tags
    );
    // A polar bear captioned as a dog: the warning says what the classifier sees, and the
    // caption's words ("dog") are not among the tags.
    let bear = caption(&c, &root().join("tests/fixtures/everyday/polar_bear.jpg"));
    assert!(bear.text.contains("dog"), "{bear:?}");
    assert_eq!(bear.needs_review, Some(true), "{bear:?}");
    assert_eq!(bear.review_reason, Some(ReviewReason::AnimalMismatch));
    let detail = bear.review_detail.clone().unwrap();
    assert!(
        detail.contains("dog") && detail.contains("ice bear"),
        "{detail}"
    );
    assert!(bear.tags.iter().any(|t| t == "bear"), "{:?}", bear.tags);
    assert!(!bear.tags.iter().any(|t| t == "dog"), "{:?}", bear.tags);
    // Most of the 81 everyday photos unlike Flickr8k (animals, food, objects, buildings) are
    // flagged (65 when the calibration was made: the rest got captions such as "a group of
    // people are standing in front of a building" for a hotel).
    let (everyday, _) =
        captioner::jobs::caption::list_photos(&root().join("tests/fixtures/everyday")).unwrap();
    assert_eq!(everyday.len(), 81);
    let flagged = everyday
        .iter()
        .filter(|p| caption(&c, p).needs_review == Some(true))
        .count();
    assert!(flagged * 4 >= everyday.len() * 3, "{flagged} of 81 flagged");
    for r in [&cat, &coffee] {
        let conf = r.confidence.unwrap();
        assert!((0.0..=1.0).contains(&conf));
        assert!(r.familiarity.unwrap() < 0.05, "{r:?}");
    }
    // The Flickr8k fixture photos: none whose caption is acceptable (per-photo CIDEr-D >= 0.1
    // against its five references) is flagged, and at most 2 of the 24 are flagged at all;
    // 2851304910 is, rightly, though its caption scores above 0.1 on "red shirt" alone: "a man
    // in a red shirt is standing on a rocky path" for a woman filming hills (the merge model:
    // "a man in a blue shirt is sitting on a dirt path").
    let mini = root().join("tests/fixtures/flickr8k_mini");
    let tokens = std::fs::read_to_string(mini.join("Flickr8k_text/Flickr8k.token.txt")).unwrap();
    let (photos, _) =
        captioner::jobs::caption::list_photos(&mini.join("Flicker8k_Dataset")).unwrap();
    assert_eq!(photos.len(), 24);
    let mut hyps = Vec::new();
    let mut refs = Vec::new();
    let mut flags = Vec::new();
    for p in &photos {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let r = caption(&c, p);
        assert!(r.familiarity.unwrap() > 0.05, "{name}: {r:?}");
        flags.push(r.needs_review.unwrap());
        hyps.push(captioner::eval::tokenize(&r.text));
        refs.push(
            tokens
                .lines()
                .filter(|l| l.starts_with(&format!("{name}#")))
                .map(|l| captioner::eval::tokenize(l.split_once('\t').unwrap().1))
                .collect::<Vec<_>>(),
        );
    }
    let cider = captioner::eval::cider_d_scores(&hyps, &refs).per_image;
    for ((p, flag), score) in photos.iter().zip(&flags).zip(&cider) {
        let rightly = p.to_string_lossy().contains("2851304910");
        if *score >= 0.1 && !rightly {
            assert!(!flag, "{}: acceptable caption flagged", p.display());
        }
    }
    let flagged = flags.iter().filter(|f| **f).count();
    assert!(flagged <= 2, "{flagged} of 24 Flickr8k photos flagged");
}

#[test]
fn training_data_gives_familiarity_data() {
    // 12 images of 16-d features: 0..10 train (two captions each), 10..12 dev.
    let mut data = captioner::train::TrainData::default();
    for i in 0..12 {
        // Each image differs from the others (the 0.5 at position i).
        data.features.extend((0..16).map(|j| {
            let base = if (i + j) % 3 == 0 {
                1.0
            } else {
                0.1 * j as f32
            };
            base + if j == i { 0.5 } else { 0.0 }
        }));
    }
    for i in 0..10 {
        data.train.push((i, vec![4, 5 + i as u32]));
        data.train.push((i, vec![6, 7]));
    }
    for i in 10..12 {
        data.dev.push((i, vec![4, 5]));
    }
    let fam = captioner::jobs::train::familiarity_of(&data, "enc", 1).unwrap();
    assert_eq!(fam.info.train_photos, 10);
    assert_eq!(fam.captions(2), &[vec![4, 7], vec![6, 7]]);
    // A training photo's own caption agrees with itself more than an unrelated one.
    let nb = fam.neighbours(&data.features[2 * 16..3 * 16]);
    assert_eq!(nb.indices[0], 2);
    assert!(fam.neighbour_cider(&[4, 7], &[2]) > fam.neighbour_cider(&[9, 9], &[2]));
    // An attention decoder's feature maps (here 3 cells averaging to the pooled feature)
    // give the same familiarity as the pooled features.
    let mut maps = data.clone();
    maps.features = data
        .features
        .chunks(16)
        .flat_map(|r| {
            let (a, b): (Vec<f32>, Vec<f32>) = r.iter().map(|x| (x - 0.25, x + 0.5)).unzip();
            let c: Vec<f32> = r.iter().map(|x| x - 0.25).collect();
            [a, b, c].concat()
        })
        .collect();
    let fam3 = captioner::jobs::train::familiarity_of(&maps, "enc", 3).unwrap();
    let nb3 = fam3.neighbours(&data.features[2 * 16..3 * 16]);
    assert_eq!(nb3.indices, nb.indices);
    assert!(captioner::jobs::train::familiarity_of(&maps, "enc", 5).is_err());
    // No training data is an error, not a panic.
    assert!(
        captioner::jobs::train::familiarity_of(&captioner::train::TrainData::default(), "enc", 1)
            .is_err()
    );
}

/// The Flickr8k fixture as a dataset, its features in a cache under `tmp`.
fn fixture_dataset_and_features(
    tmp: &Path,
    encoder: &captioner::encoder::Encoder,
) -> (
    captioner::dataset::Dataset,
    captioner::features::FeatureCache,
) {
    let cancel = captioner::jobs::CancelToken::new();
    let import = captioner::dataset::ImportOptions {
        min_count: 1,
        ..Default::default()
    };
    let ds = captioner::jobs::import::import(
        &root().join("tests/fixtures/flickr8k_mini"),
        &import,
        &mut |_| {},
        &cancel,
    )
    .unwrap();
    let cache = captioner::features::FeatureCache::new(&tmp.join("cache"), encoder.id());
    let paths: Vec<PathBuf> = ds.images.iter().map(|e| e.path.clone()).collect();
    // Feature maps too: the shipped default model is an attention model.
    let options = captioner::features::ExtractOptions {
        spatial: true,
        ..Default::default()
    };
    captioner::jobs::extract::extract(encoder, &cache, &paths, &options, &mut |_| {}, &cancel)
        .unwrap();
    (ds, cache)
}

#[test]
fn a_model_folder_is_calibrated_on_a_dev_split() {
    // The shipped model with its familiarity data but no calibration, calibrated on the
    // fixture's 8 dev photos (the minimum lowered from 100 for the fixture), as training does.
    let dir = bare_copy_of_default();
    for f in [
        captioner::trust::familiarity::FAMILIARITY_JSON,
        captioner::trust::familiarity::FAMILIARITY_TENSORS,
    ] {
        std::fs::copy(
            captioner::paths::default_model_dir().join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let encoder = pipeline::load_encoder(&Device::Cpu).unwrap();
    let (ds, cache) = fixture_dataset_and_features(tmp.path(), &encoder);
    let cancel = captioner::jobs::CancelToken::new();
    let options = calibrate::AutoCalibrateOptions {
        min_dev_photos: 8,
        ..Default::default()
    };
    let fitted = calibrate::calibrate_model_dir(
        dir.path(),
        &ds,
        &cache,
        &encoder,
        &Device::Cpu,
        &options,
        &mut |_| {},
        &cancel,
    )
    .unwrap();
    assert_eq!(fitted.calibration.fitted["photos"], 8);
    let back = Calibration::load(dir.path()).unwrap().unwrap();
    assert_eq!(back, fitted.calibration);
    // The model's captions now have a confidence.
    let c = Captioner::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(c.trust_note, None);
    let r = caption(&c, &root().join("tests/fixtures/unfamiliar/coffee.jpg"));
    assert!((0.0..=1.0).contains(&r.confidence.unwrap()));
    // With the default minimum, 8 dev photos are too few: an error that says so, no file.
    std::fs::remove_file(dir.path().join(CALIBRATION_JSON)).unwrap();
    let e = calibrate::calibrate_model_dir(
        dir.path(),
        &ds,
        &cache,
        &encoder,
        &Device::Cpu,
        &calibrate::AutoCalibrateOptions::default(),
        &mut |_| {},
        &cancel,
    )
    .unwrap_err();
    assert!(e.report().contains("too few dev photos"), "{}", e.report());
    assert!(!dir.path().join(CALIBRATION_JSON).exists());
}

#[test]
fn training_ends_by_calibrating_or_warns_why_not() {
    use captioner::jobs::JobEvent;
    use captioner::jobs::train::{TrainPlaces, TrainResources, TrainSettings};
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::Cpu;
    let encoder = pipeline::load_encoder(&device).unwrap();
    let settings = TrainSettings {
        dataset_dir: Some(root().join("tests/fixtures/flickr8k_mini")),
        import: captioner::dataset::ImportOptions {
            min_count: 1,
            ..Default::default()
        },
        embed_dim: 16,
        hidden_dim: 16,
        train: captioner::train::TrainConfig {
            epochs: 1,
            batch_size: 16,
            ..Default::default()
        },
        out_dir: Some(tmp.path().join("run")),
        ..Default::default()
    };
    let places = TrainPlaces {
        cache_dir: tmp.path().join("cache"),
        models_dir: tmp.path().join("models"),
    };
    let (mut phases, mut warnings) = (Vec::new(), Vec::new());
    let outcome = captioner::jobs::train::train(
        &settings,
        &places,
        false,
        TrainResources {
            device: &device,
            encoder: &encoder,
        },
        &mut |e| match e {
            JobEvent::Phase { message, .. } => phases.push(message),
            JobEvent::Warning { message, .. } => warnings.push(message),
            _ => {}
        },
        &captioner::jobs::CancelToken::new(),
    )
    .unwrap();
    assert!(!outcome.stopped && outcome.epochs_completed == 1);
    // Both checkpoints are calibrated in turn; the fixture's 8 dev photos are too few, which
    // is a warning, not a failed run.
    let calibrating: Vec<&String> = phases
        .iter()
        .filter(|p| p.starts_with("calibrating the confidence on dev"))
        .collect();
    assert_eq!(calibrating.len(), 2, "{phases:?}");
    let why: Vec<&String> = warnings
        .iter()
        .filter(|w| w.contains("no calibrated confidence"))
        .collect();
    assert_eq!(why.len(), 2, "{warnings:?}");
    assert!(why[0].contains("too few dev photos"), "{}", why[0]);
    for d in [&outcome.best_dir, &outcome.last_dir] {
        assert!(
            d.join(captioner::trust::familiarity::FAMILIARITY_JSON)
                .is_file()
        );
        assert!(!d.join(CALIBRATION_JSON).exists());
        // Such a model still captions, and says why it has no confidence.
        let c = Captioner::load(d, &device).unwrap();
        assert!(c.trust_note.unwrap().contains("not calibrated"));
    }
}

#[test]
fn eval_measures_the_confidence_on_a_split_mixed_with_extra_photos() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_captioner"))
        .arg("eval")
        .arg(root().join("tests/fixtures/flickr8k_mini"))
        .arg("--extra")
        .arg(root().join("tests/fixtures/unfamiliar"))
        .arg("--cache")
        .arg(tmp.path())
        .args(["--min-count", "1", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["eval"]["images"], 8);
    let mix = &v["mix"];
    assert_eq!(mix["dev_photos"], 8);
    let photos = mix["photos"].as_array().unwrap();
    let listed = std::fs::read_to_string(root().join("tests/fixtures/unfamiliar/captions.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(mix["unfamiliar_photos"], listed.len());
    assert_eq!(photos.len(), listed.len());
    for p in photos {
        let c = p["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c), "{p}");
    }
    let review = |name: &str| {
        photos.iter().find(|p| p["photo"] == name).unwrap()["needs_review"]
            .as_bool()
            .unwrap()
    };
    assert!(review("chelsea.jpg") && review("coffee.jpg"));
    let share = mix["unfamiliar_bad_flagged"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share));
    for k in ["auroc_confidence", "auroc_word_geomean"] {
        let a = mix[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&a), "{k}: {a}");
    }
    // A folder without captions.txt is an error that names the file.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_captioner"))
        .arg("eval")
        .arg(root().join("tests/fixtures/flickr8k_mini"))
        .arg("--extra")
        .arg(tmp.path())
        .arg("--cache")
        .arg(tmp.path())
        .args(["--min-count", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("captions.txt"));
}
