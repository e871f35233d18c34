//! Grounded captions (issue 22): the docs/photos cases, per-word grounding in `caption
//! --json`, `--grounding off` keeping the captions of before, and a model folder without a
//! concept detector.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::Device;
use captioner::jobs::caption::{CaptionInput, caption_one};
use captioner::pipeline::{CaptionResult, CaptionSource, Captioner, DecodeOptions, Grounding};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn shipped(name: &str) -> Captioner {
    Captioner::load(&root().join("models").join(name), &Device::Cpu).unwrap()
}

fn caption(c: &Captioner, photo: &Path, grounding: Grounding) -> CaptionResult {
    let options = DecodeOptions {
        grounding,
        ..DecodeOptions::default()
    };
    caption_one(c, CaptionInput::File(photo.to_path_buf()), &options)
        .unwrap()
        .result
}

fn photo(name: &str) -> PathBuf {
    root().join("docs/photos").join(name)
}

fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

#[test]
fn the_docs_photos_get_what_they_show() {
    let c = shipped("default");
    let cat = caption(&c, &photo("chelsea.jpg"), Grounding::On);
    assert!(words(&cat.text).contains(&"cat"), "{}", cat.text);
    let coffee = caption(&c, &photo("coffee.jpg"), Grounding::On);
    let w = words(&coffee.text);
    assert!(
        w.contains(&"coffee") || w.contains(&"cup"),
        "{}",
        coffee.text
    );
    let astronaut = caption(&c, &photo("astronaut.jpg"), Grounding::On);
    let w = words(&astronaut.text);
    assert!(
        !w.contains(&"dog") && !w.contains(&"dogs"),
        "{}",
        astronaut.text
    );
    for r in [&cat, &coffee, &astronaut] {
        assert!(!r.grounding.is_empty(), "{}: no grounding", r.text);
        for g in &r.grounding {
            assert_eq!(r.words[g.position].word, g.word);
            assert!((0.0..=1.0).contains(&g.support));
            assert_eq!(g.weak, g.note.is_some());
        }
    }
}

/// The captions of `main` before grounding (the default model, beam 3), which
/// `--grounding off` must keep.
const BEFORE: &[(&str, &str)] = &[
    (
        "1191338263_a4fa073154.jpg",
        "a woman sits in front of a store",
    ),
    (
        "1579798212_d30844b4c5.jpg",
        "a young boy in a blue shirt is standing in the water",
    ),
    (
        "1679557684_50a206e4a9.jpg",
        "a dog jumps to catch a frisbee",
    ),
    (
        "2090545563_a4e66ec76b.jpg",
        "a man in a red shirt is sitting on a bench",
    ),
    (
        "218342358_1755a9cce1.jpg",
        "a person in a red helmet is riding a bike on the beach",
    ),
    (
        "2294598473_40637b5c04.jpg",
        "a dog catching a frisbee in a field",
    ),
    ("2513260012_03d33305cf.jpg", "two dogs play in the snow"),
    (
        "269650644_059a84ece5.jpg",
        "a group of people stand in the snow",
    ),
    ("3356369156_074750c6cc.jpg", "a boat in the water"),
    (
        "488416045_1c6d903fe0.jpg",
        "a brown dog is running on the beach",
    ),
    ("docs/photos/astronaut.jpg", "two men are playing in a race"),
    (
        "docs/photos/chelsea.jpg",
        "a little boy is playing with a toy",
    ),
    (
        "docs/photos/coffee.jpg",
        "a brown dog is laying in a blue and blue toy",
    ),
];

fn before_path(name: &str) -> PathBuf {
    if name.starts_with("docs/") {
        root().join(name)
    } else {
        root()
            .join("tests/fixtures/flickr8k_mini/Flicker8k_Dataset")
            .join(name)
    }
}

#[test]
fn grounding_off_keeps_the_captions_of_before() {
    let c = shipped("default");
    // One photo at a time ...
    for (name, text) in BEFORE {
        let r = caption(&c, &before_path(name), Grounding::Off);
        assert_eq!(r.text, *text, "{name}");
        assert!(r.grounding.is_empty());
        assert_eq!(r.source, CaptionSource::Decoder);
        assert!(r.grounding_note.is_some());
    }
    // ... and the command line's batched search.
    let out = Command::new(env!("CARGO_BIN_EXE_captioner"))
        .arg("caption")
        .args(["--grounding", "off"])
        .args(BEFORE.iter().map(|(n, _)| before_path(n)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let got: Vec<&str> = stdout
        .lines()
        .map(|l| l.rsplit_once(": ").unwrap().1)
        .collect();
    let want: Vec<&str> = BEFORE.iter().map(|(_, t)| *t).collect();
    assert_eq!(got, want);
}

#[test]
fn caption_json_grounds_every_content_word() {
    let out = Command::new(env!("CARGO_BIN_EXE_captioner"))
        .args(["caption", "--json"])
        .arg(photo("chelsea.jpg"))
        .arg(photo("coffee.jpg"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for record in v.as_array().unwrap() {
        let words = record["words"].as_array().unwrap();
        let grounding = record["grounding"].as_array().unwrap();
        assert!(!grounding.is_empty(), "{record}");
        let content = words
            .iter()
            .filter(|w| !captioner::trust::STOP_WORDS.contains(&w["word"].as_str().unwrap()))
            .count();
        assert_eq!(grounding.len(), content, "{record}");
        for g in grounding {
            let pos = g["position"].as_u64().unwrap() as usize;
            assert_eq!(words[pos]["word"], g["word"]);
            assert!(g["support"].as_f64().unwrap() >= 0.0);
            assert!(g["weak"].is_boolean());
        }
        let source = record["caption_source"].as_str().unwrap();
        assert!(source == "decoder" || source == "classifier", "{source}");
    }
}

#[test]
fn a_model_without_a_concept_detector_captions_ungrounded_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let shipped_dir = root().join("models/default");
    for entry in std::fs::read_dir(&shipped_dir).unwrap() {
        let name = entry.unwrap().file_name();
        let name = name.to_string_lossy().into_owned();
        if captioner::concepts::CONCEPT_FILES.contains(&name.as_str()) {
            continue;
        }
        std::fs::copy(shipped_dir.join(&name), dir.path().join(&name)).unwrap();
    }
    let bare = Captioner::load(dir.path(), &Device::Cpu).unwrap();
    assert!(bare.trust.concepts.is_none());
    let full = shipped("default");
    for name in ["chelsea.jpg", "coffee.jpg"] {
        let r = caption(&bare, &photo(name), Grounding::On);
        assert!(r.grounding.is_empty(), "{name}");
        assert_eq!(r.source, CaptionSource::Decoder);
        let note = r.grounding_note.clone().unwrap();
        assert!(note.contains("no concept detector"), "{note}");
        // The plain search's caption, as with grounding off.
        assert_eq!(r.text, caption(&full, &photo(name), Grounding::Off).text);
        // Its trust figures still come (the calibration is in the folder).
        assert!(r.confidence.is_some());
    }
}
