//! The installed layout without installing (issue 25): a copy of the binary in `PREFIX/bin`
//! finds its models in `PREFIX/share/captioner/models` with no `CAPTIONER_MODELS`, run from a
//! folder outside the checkout with an empty `HOME`; with that folder broken it names the
//! file and says what to do. `tools/package-test.sh` does the same with the real package, as
//! root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).to_path_buf()
}

/// `PREFIX/bin/captioner`, a copy of the binary under test.
fn install_binary(prefix: &Path) -> PathBuf {
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("captioner");
    std::fs::copy(env!("CARGO_BIN_EXE_captioner"), &exe).unwrap();
    exe
}

/// Links every file of the repository's `models/` into `dest` (no 66 MB copy).
fn link_models(dest: &Path) {
    fn link_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                link_dir(&entry.path(), &target);
            } else {
                std::os::unix::fs::symlink(entry.path().canonicalize().unwrap(), &target).unwrap();
            }
        }
    }
    link_dir(&repo().join("models"), dest);
}

/// Runs `exe args` from an empty folder with an empty `HOME` and no `CAPTIONER_MODELS`.
fn run_outside(exe: &Path, args: &[&str], tmp: &Path) -> Output {
    let home = tmp.join("home");
    std::fs::create_dir_all(&home).unwrap();
    Command::new(exe)
        .args(args)
        .env_remove("CAPTIONER_MODELS")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", &home)
        .current_dir(&home)
        .output()
        .unwrap()
}

fn photo() -> String {
    repo()
        .join("tests/fixtures/everyday/duck.jpg")
        .canonicalize()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn an_installed_copy_captions_with_the_models_under_share() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("usr");
    let exe = install_binary(&prefix);
    let models = prefix.join("share/captioner/models");
    link_models(&models);

    let out = run_outside(&exe, &["caption", &photo()], tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .count()
            >= 3,
        "no caption: {stdout}"
    );

    let out = run_outside(&exe, &["models"], tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The shipped models are listed from the installed folder, not the checkout.
    let shown = models.join("default").display().to_string();
    assert!(stdout.contains(&shown), "{shown} not in:\n{stdout}");
}

#[test]
fn a_broken_installation_names_the_file_and_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("usr");
    let exe = install_binary(&prefix);
    let models = prefix.join("share/captioner/models");
    // The package's folder is there, its models are not: that folder is named, not the
    // checkout's models/ (which this machine has).
    std::fs::create_dir_all(models.parent().unwrap()).unwrap();
    let out = run_outside(&exe, &["caption", &photo()], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let weights = models.join("efficientnet-lite0.safetensors");
    assert!(stderr.contains(&weights.display().to_string()), "{stderr}");
    assert!(stderr.contains("reinstall captioner"), "{stderr}");

    // The default model's weights cut short: that file is named.
    link_models(&models);
    let cut = models.join("default/weights.safetensors");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::remove_file(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let out = run_outside(&exe, &["caption", &photo()], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&cut.display().to_string()), "{stderr}");
    assert!(stderr.contains("reinstall captioner"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
