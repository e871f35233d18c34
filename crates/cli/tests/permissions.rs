//! The user's permissions hold as an ordinary user, not only as root (issue 30): the
//! `captioner` binary runs as `nobody` (through `setpriv` when the tests run as root, as on CI;
//! directly when they already run as an ordinary user) on a folder with a read-only sidecar,
//! an unreadable sidecar and a read-only sub-folder. Atomic replacement (write a temporary
//! file, then rename) could otherwise replace a file the user may not write, since renaming
//! needs only the folder's permission.
//!
//! Skipped, saying so, where neither is possible (not Unix; root without `setpriv`).

#![cfg(unix)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn is_root() -> bool {
    // The owner of a file this process just made is its user.
    let probe = tempfile::NamedTempFile::new().expect("a temporary file");
    probe.as_file().metadata().is_ok_and(|m| m.uid() == 0)
}

/// The command words that run a program as another user, and that user's ids (none: this
/// user already is an ordinary one).
type AsUser = (Vec<String>, Option<(u32, u32)>);

/// How to run the binary as an ordinary user; the reason where that cannot be done here.
fn as_ordinary_user() -> Result<AsUser, String> {
    if !is_root() {
        return Ok((Vec::new(), None));
    }
    let found = Command::new("setpriv").arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        return Err("running as root and setpriv (util-linux) is missing".into());
    }
    let (uid, gid) = (65534, 65534); // nobody, nogroup
    Ok((
        vec![
            "setpriv".into(),
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
            "--".into(),
        ],
        Some((uid, gid)),
    ))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Gives everything under `dir` to the user `ids` (a no-op without ids).
fn give(dir: &Path, ids: Option<(u32, u32)>) {
    let Some((uid, gid)) = ids else { return };
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "chown -R {}", dir.display());
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn an_ordinary_users_read_only_and_unreadable_sidecars_are_left_alone() {
    let (prefix, ids) = match as_ordinary_user() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The binary and the shipped default model where that user may read them (the checkout
    // may be under a home folder others cannot enter).
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir_all(bin_dir.join("models")).unwrap();
    let bin = bin_dir.join("captioner");
    std::fs::copy(env!("CARGO_BIN_EXE_captioner"), &bin).unwrap();
    let models = PathBuf::from(ROOT).join("models");
    for name in [
        "efficientnet-lite0.safetensors",
        "imagenet_classes.txt",
        "imagenet_tags.txt",
    ] {
        std::fs::copy(models.join(name), bin_dir.join("models").join(name)).unwrap();
    }
    copy_dir(&models.join("default"), &bin_dir.join("models/default"));

    let photos = tmp.path().join("photos");
    let sub = photos.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let images = PathBuf::from(ROOT).join("tests/fixtures/encoder/images");
    for (name, dir) in [
        ("2529205842_bdcb49d65b.jpg", &photos),
        ("246231741_882b45c4e1.jpg", &photos),
        ("3393035454_2d2370ffd4.jpg", &photos),
        ("2529205842_bdcb49d65b.jpg", &sub),
    ] {
        std::fs::copy(images.join(name), dir.join(name)).unwrap();
    }
    let read_only = photos.join("246231741_882b45c4e1.txt");
    std::fs::write(&read_only, "mine\n").unwrap();
    let unreadable = photos.join("3393035454_2d2370ffd4.txt");
    std::fs::write(&unreadable, "secret\n").unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    give(&photos, ids);
    give(&home, ids);
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o555)).unwrap();

    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    let out = cmd
        .arg("batch")
        .arg(&photos)
        .args(["--sidecars", "--existing", "overwrite"])
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env_remove("CAPTIONER_MODELS")
        .current_dir(&home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // It ran as that user: the sidecar it wrote belongs to them.
    let written = photos.join("2529205842_bdcb49d65b.txt");
    assert!(written.is_file(), "stdout: {stdout}\nstderr: {stderr}");
    if let Some((uid, _)) = ids {
        assert_eq!(std::fs::metadata(&written).unwrap().uid(), uid);
    }
    // The read-only sidecar: same text, same mode, said by name.
    assert!(
        stderr.contains("246231741_882b45c4e1.txt: the file is read-only; left unchanged"),
        "{stderr}"
    );
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(std::fs::read_to_string(&read_only).unwrap(), "mine\n");
    assert_eq!(mode(&read_only), 0o444);
    // The unreadable one: not replaced (its text is still there), and said by name.
    assert_eq!(std::fs::read_to_string(&unreadable).unwrap(), "secret\n");
    assert!(stderr.contains("3393035454_2d2370ffd4.txt"), "{stderr}");
    // The read-only folder: its photo is captioned but no sidecar appears, and it says so.
    assert!(!sub.join("2529205842_bdcb49d65b.txt").exists(), "{stderr}");
    assert!(stderr.contains("sub/2529205842_bdcb49d65b.txt"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
}
