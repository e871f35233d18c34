//! Training on a folder whose captions give nothing to learn says so in words (issue 30),
//! instead of failing deep inside with "vocab_size = 4 (must hold the 4 special tokens...)".

use std::path::Path;
use std::process::Command;

fn images() -> std::path::PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/encoder/images")
}

/// A folder of photos with `.txt` sidecars, each holding `caption`; returns the temp folder.
fn folder(caption: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for entry in std::fs::read_dir(images()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        std::fs::copy(&path, photos.join(&name)).unwrap();
        std::fs::write(photos.join(&name).with_extension("txt"), caption).unwrap();
    }
    tmp
}

fn train(tmp: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_captioner"))
        .arg("train")
        .arg(tmp.join("photos"))
        .args(["--epochs", "1", "--out"])
        .arg(tmp.join("out"))
        .env("HOME", tmp)
        .env("XDG_DATA_HOME", tmp.join("data"))
        .env("XDG_CACHE_HOME", tmp.join("cache"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn captions_of_punctuation_only_say_there_are_no_usable_words() {
    let tmp = folder("!!! ... ???\n");
    let (ok, stderr) = train(tmp.path());
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("no usable words in the train split's"),
        "{stderr}"
    );
    assert!(stderr.contains("--min-count"), "{stderr}");
    assert!(!stderr.contains("vocab_size"), "{stderr}");
    assert!(
        !tmp.path().join("out").exists(),
        "no model folder is left behind"
    );
}
