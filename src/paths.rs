//! Where captioner keeps its own files: caches and trained models live in the OS data
//! directory (never inside a dataset folder), or under a folder the user names.

use std::path::{Path, PathBuf};

/// The per-user data directory, e.g. `~/.local/share/captioner` on Linux.
pub fn data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "captioner").map(|d| d.data_dir().to_path_buf())
}

/// The cache directory: `--cache DIR` when given, else `<data dir>/cache`, else `./.captioner-cache`.
pub fn cache_dir(explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(p) => p.to_path_buf(),
        None => data_dir()
            .map(|d| d.join("cache"))
            .unwrap_or_else(|| PathBuf::from(".captioner-cache")),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed over the target. Readers see the old file or the new one, never half of one.
///
/// On failure (a full disk, a read-only or missing folder, ...) the previous file is left as
/// it was, the temporary file is removed, and the error says which step failed (the caller
/// names `path`). Concurrent writers of the same path (threads or processes) each use their own
/// temporary file; the last rename wins.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let context =
        |what: String, e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| context(format!("cannot create the folder {}", dir.display()), e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| {
            context(
                format!("cannot create a temporary file in {}", dir.display()),
                e,
            )
        })?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| context(format!("cannot write {} bytes", bytes.len()), e));
    drop(file);
    let result = written.and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| context("cannot replace the file".to_string(), e))
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable; a failure here does not undo the (complete) write.
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
