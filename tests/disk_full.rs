//! Full disks and read-only places: every persistent write (single files through
//! `files::write_atomic`: sidecars, exports, feature cache entries; folders through
//! `model_dir::write_dir_atomically`: models and checkpoints) fails with a message naming the
//! path, leaves the previous version intact and leaves no temporary file behind.
//!
//! The tests mount a small tmpfs (a real full file system), which needs root; elsewhere they
//! are skipped, saying so.

use std::path::{Path, PathBuf};
use std::process::Command;

use captioner::export::{CaptionSource, ExportRow, write_file, write_sidecars};
use captioner::features::cache::FeatureCache;
use captioner::files::write_atomic;
use captioner::model_dir::{ModelDirError, write_dir_atomically, write_file_synced};

/// A tmpfs of `kib` KiB mounted on a temporary folder, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(kib: usize) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "skipped: cannot mount a tmpfs (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount_read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount read-only failed");
    }

    /// Fills the file system with a filler file until it is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![7u8; 4096];
        while f.write_all(&block).is_ok() {}
        // Whatever is left is smaller than a page: leave it.
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Names in `dir` (recursively) that look like temporary files or folders.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".tmp-") || name.contains(".old-") {
            found.push(path.clone());
        }
        if path.is_dir() {
            found.extend(temporaries(&path));
        }
    }
    found
}

#[test]
fn write_atomic_on_a_full_disk_keeps_the_old_file() {
    let Some(fs) = Tmpfs::mount(256) else { return };
    let target = fs.path().join("captions.csv");
    write_atomic(&target, b"old contents\n").unwrap();
    fs.fill();
    let err = write_atomic(&target, &vec![b'x'; 64 * 1024]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
    assert!(err.to_string().contains("cannot write"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"old contents\n");
    assert!(
        temporaries(fs.path()).is_empty(),
        "{:?}",
        temporaries(fs.path())
    );

    // An export reports the file it could not write.
    let report = write_file(&target, &vec![b'y'; 64 * 1024], 3);
    assert_eq!(report.written, 0);
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].contains("captions.csv"),
        "{:?}",
        report.failed
    );
    assert!(
        report.failed[0].contains("No space left"),
        "{:?}",
        report.failed
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"old contents\n");
    assert!(temporaries(fs.path()).is_empty());
}

#[test]
fn a_read_only_folder_is_named_and_left_alone() {
    let Some(fs) = Tmpfs::mount(256) else { return };
    let photo = fs.path().join("dog.jpg");
    std::fs::write(&photo, b"a photo").unwrap();
    let sidecar = fs.path().join("dog.txt");
    std::fs::write(&sidecar, "the old caption\n").unwrap();
    let model = fs.path().join("model");
    write_dir_atomically(&model, &mut |tmp| {
        write_file_synced(&tmp.join("config.json"), b"{\"old\": true}")
    })
    .unwrap();
    fs.remount_read_only();

    let err = write_atomic(&sidecar, b"new\n").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ReadOnlyFilesystem, "{err}");
    assert!(
        err.to_string().contains(&fs.path().display().to_string()),
        "{err}"
    );

    let rows = vec![ExportRow::new(
        "dog.jpg".to_string(),
        photo.clone(),
        "a dog".to_string(),
        CaptionSource::Machine,
    )];
    let report = write_sidecars(&rows, captioner::export::Existing::Overwrite);
    assert_eq!(report.written, 0);
    assert!(report.failed[0].contains("dog.txt"), "{:?}", report.failed);
    assert!(
        report.failed[0].contains("Read-only"),
        "{:?}",
        report.failed
    );

    let cache = FeatureCache::new(fs.path(), "enc");
    let err = cache.put("abcdef", &[1.0, 2.0]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("abcdef.safetensors"), "{msg}");
    assert!(msg.contains("Read-only"), "{msg}");

    let err = write_dir_atomically(&model, &mut |tmp| {
        write_file_synced(&tmp.join("config.json"), b"{\"new\": true}")
    })
    .unwrap_err();
    assert!(matches!(err, ModelDirError::NotWritten { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with(&model.display().to_string()), "{msg}");
    assert!(msg.contains("previous version is unchanged"), "{msg}");

    assert_eq!(
        std::fs::read_to_string(&sidecar).unwrap(),
        "the old caption\n"
    );
    assert_eq!(
        std::fs::read(model.join("config.json")).unwrap(),
        b"{\"old\": true}"
    );
    assert!(temporaries(fs.path()).is_empty());
}

#[test]
fn model_folder_and_feature_cache_on_a_full_disk() {
    let Some(fs) = Tmpfs::mount(512) else { return };
    let model = fs.path().join("runs/last");
    write_dir_atomically(&model, &mut |tmp| {
        write_file_synced(&tmp.join("weights.safetensors"), &[1u8; 1000])?;
        write_file_synced(&tmp.join("config.json"), b"{}")
    })
    .unwrap();
    let cache = FeatureCache::new(fs.path(), "enc");
    cache.put("aa11", &[0.5; 16]).unwrap();
    fs.fill();

    // A checkpoint-sized write into a full disk: the previous folder stays whole.
    let err = write_dir_atomically(&model, &mut |tmp| {
        write_file_synced(&tmp.join("weights.safetensors"), &vec![2u8; 200 * 1024])?;
        write_file_synced(&tmp.join("config.json"), b"{\"new\": 1}")
    })
    .unwrap_err();
    assert!(matches!(err, ModelDirError::NotWritten { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("runs/last"), "{msg}");
    assert!(
        msg.contains("No space left") || msg.contains("file is missing"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(model.join("weights.safetensors")).unwrap(),
        vec![1u8; 1000]
    );
    assert_eq!(std::fs::read(model.join("config.json")).unwrap(), b"{}");

    // A cache entry that does not fit: an error naming the entry; the old entry still reads.
    let err = cache.put("bb22", &vec![0.25; 64 * 1024]).unwrap_err();
    assert!(err.to_string().contains("bb22.safetensors"), "{err}");
    assert_eq!(cache.get("bb22").unwrap(), None);
    assert_eq!(cache.get("aa11").unwrap(), Some(vec![0.5; 16]));
    assert!(
        temporaries(fs.path()).is_empty(),
        "{:?}",
        temporaries(fs.path())
    );
}
