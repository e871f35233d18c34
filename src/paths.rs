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

/// The atomic file write, under its old path: `src/app/batch` still calls it from here. Use
/// [`crate::files::write_atomic`].
pub use crate::files::write_atomic;
