//! File names with line breaks stay on one line of the command line's output (issue 30 item
//! 7): one caption per line, as the JSON and CSV exports keep them whole by quoting.

#![cfg(unix)]

use std::path::Path;
use std::process::Command;

#[test]
fn a_photo_named_with_a_newline_prints_on_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let images = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("tests/fixtures/encoder/images");
    std::fs::copy(
        images.join("2529205842_bdcb49d65b.jpg"),
        photos.join("two\nlines.jpg"),
    )
    .unwrap();
    std::fs::copy(
        images.join("246231741_882b45c4e1.jpg"),
        photos.join("plain.jpg"),
    )
    .unwrap();
    std::fs::write(photos.join("bad\nname.jpg"), b"not a photo").unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_captioner"))
            .args(args)
            .env("HOME", tmp.path())
            .env("XDG_DATA_HOME", tmp.path().join("data"))
            .env("XDG_CACHE_HOME", tmp.path().join("cache"))
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir = photos.display().to_string();
    let (stdout, stderr) = run(&["batch", &dir]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one line per captioned photo: {stdout}");
    assert!(
        lines.iter().any(|l| l.starts_with("two\\nlines.jpg: ")),
        "{stdout}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("plain.jpg: ")),
        "{stdout}"
    );
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("the bad photo is reported: {stderr}"));
    assert!(error.contains("bad\\nname.jpg"), "{stderr}");

    let one = photos.join("two\nlines.jpg").display().to_string();
    let plain = photos.join("plain.jpg").display().to_string();
    let (stdout, _) = run(&["caption", &one, &plain]);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.contains("two\\nlines.jpg: "), "{stdout}");
}
