//! `captioner caption --start-with TEXT` and `captioner batch --start-with TEXT`: every
//! caption starts with the given words; the JSON keeps its shape; without the flag nothing
//! changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn captioner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_captioner"))
}

fn fixture(p: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("tests/fixtures")
        .join(p)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

/// The keys of each object of a JSON array.
fn keys(v: &serde_json::Value) -> Vec<Vec<String>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_object().unwrap().keys().cloned().collect())
        .collect()
}

#[test]
fn caption_starts_with_the_given_words() {
    let dog = fixture("encoder/images/246231741_882b45c4e1.jpg");
    let out = run(captioner()
        .args(["caption", "--start-with", "a cat"])
        .arg(&dog));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.trim();
    assert!(line.starts_with("a cat "), "{line}");
    assert!(line.split(' ').count() > 2, "{line}");

    // JSON: the same fields as without the flag, the caption starting with the words.
    let with = run(captioner()
        .args(["caption", "--json", "--start-with", "A Zorblat"])
        .arg(&dog));
    let plain = run(captioner().args(["caption", "--json"]).arg(&dog));
    assert!(with.status.success() && plain.status.success());
    let (with, plain) = (json(&with.stdout), json(&plain.stdout));
    assert_eq!(keys(&with), keys(&plain));
    let caption = with[0]["caption"].as_str().unwrap();
    assert!(caption.starts_with("A Zorblat "), "{caption}");
    assert!(!caption.contains("<unk>"), "{caption}");
    assert!(
        !plain[0]["caption"]
            .as_str()
            .unwrap()
            .starts_with("A Zorblat"),
        "{plain}"
    );

    // An empty start is no start.
    let empty = run(captioner()
        .args(["caption", "--json", "--start-with", ""])
        .arg(&dog));
    let without_time = |mut v: serde_json::Value| {
        v[0].as_object_mut().unwrap().remove("millis");
        v
    };
    assert_eq!(without_time(json(&empty.stdout)), without_time(plain));
}

#[test]
fn batch_starts_every_caption_with_the_given_words() {
    let tmp = tempfile::tempdir().unwrap();
    let out_json = tmp.path().join("captions.json");
    let out = run(captioner()
        .arg("batch")
        .arg(fixture("sidecar_mini"))
        .args(["--start-with", "two dogs", "--json"])
        .arg(&out_json));
    assert!(out.status.success());
    let v = json(&std::fs::read(&out_json).unwrap());
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v}");
    for row in rows {
        let caption = row["caption"].as_str().unwrap();
        assert!(caption.starts_with("two dogs "), "{caption}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches(": two dogs ").count(), 3, "{stdout}");
}

#[test]
fn help_names_the_flag() {
    for command in ["caption", "batch"] {
        let out = run(captioner().args([command, "--help"]));
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("--start-with <TEXT>"), "{command}: {help}");
        assert!(
            help.contains("Start every caption with these words"),
            "{help}"
        );
    }
}
