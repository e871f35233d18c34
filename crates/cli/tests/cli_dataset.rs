//! The `captioner dataset inspect` command as a user runs it.

use std::path::Path;
use std::process::Command;

fn captioner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_captioner"))
}

#[test]
fn inspect_json_reports_the_figures() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("tests/fixtures/flickr8k_mini");
    let out = captioner()
        .args(["dataset", "inspect", "--json"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["layout"], "flickr8k");
    assert_eq!(v["images"], 24);
    assert_eq!(v["captions"], 120);
    assert_eq!(v["splits"]["train"], 16);
    assert_eq!(v["splits"]["dev"], 8);
    assert_eq!(v["missing_images"], 0);
    assert!(v["vocab_size"].as_u64().unwrap() > 4);
    assert!(v["caption_length"]["p95"].as_u64().unwrap() > 0);
}

#[test]
fn inspect_text_lists_problems_with_file_and_line() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("tests/fixtures/broken_flickr8k");
    let out = captioner()
        .args(["dataset", "inspect"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Flickr8k.token.txt:3: no tab"), "{text}");
    assert!(text.contains("notes.jpg: not an image"), "{text}");
}

#[test]
fn unusable_dataset_exits_non_zero_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let out = captioner()
        .args(["dataset", "inspect"])
        .arg(tmp.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nope") && err.contains("no such file"),
        "{err}"
    );

    let out = captioner()
        .args(["dataset", "inspect"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}
