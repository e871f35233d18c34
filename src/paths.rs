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
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
