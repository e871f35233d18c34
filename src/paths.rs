//! Where captioner's files are: the one set of path rules, for the command line and the app.
//!
//! | what | where |
//! | --- | --- |
//! | the shipped models ([`shipped_models_dir`]) | `$CAPTIONER_MODELS` when set, else `models/` beside the executable when it holds the encoder weights (an installed copy), else the source checkout's `models/` (a `cargo run`) |
//! | the per-user data folder ([`data_dir`]) | the OS data folder (`~/.local/share/captioner` on Linux), else [`FALLBACK_DATA_DIR`] |
//! | feature caches ([`cache_dir`]) | `--cache DIR` when given, else `cache/` in the data folder |
//! | trained models ([`trained_models_dir`]) | `models/` in the data folder |
//!
//! The one fallback: when the OS names no data folder (no home folder), the data folder is
//! [`FALLBACK_DATA_DIR`], `.captioner` in the working folder, so that the cache and new runs
//! are `.captioner/cache` and `.captioner/models` there (never the shipped `models/` of a
//! source checkout). Nothing is written inside a dataset or photo folder unless the user asks.
//!
//! This module is the bottom layer: it imports nothing from the crate.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// File name of the shipped encoder weights inside the shipped models folder.
pub const ENCODER_WEIGHTS: &str = "efficientnet-lite0.safetensors";
/// Folder name of the shipped caption model inside the shipped models folder.
pub const DEFAULT_MODEL: &str = "default";
/// ImageNet class names inside the shipped models folder.
pub const CLASS_NAMES: &str = "imagenet_classes.txt";
/// The data folder when the OS names none (relative to the working folder).
pub const FALLBACK_DATA_DIR: &str = ".captioner";

/// The folder with the shipped models: `$CAPTIONER_MODELS` when set, else `models/` beside the
/// executable (an installed copy), else the source checkout's `models/` (a `cargo run`).
pub fn shipped_models_dir() -> PathBuf {
    shipped_models_dir_from(
        std::env::var_os("CAPTIONER_MODELS"),
        std::env::current_exe().ok(),
    )
}

fn shipped_models_dir_from(env: Option<OsString>, exe: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = env {
        return PathBuf::from(dir);
    }
    if let Some(dir) = exe
        .and_then(|exe| exe.parent().map(|p| p.join("models")))
        .filter(|d| d.join(ENCODER_WEIGHTS).is_file())
    {
        return dir;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// The shipped caption model's folder.
pub fn default_model_dir() -> PathBuf {
    shipped_models_dir().join(DEFAULT_MODEL)
}

/// The shipped encoder weights.
pub fn encoder_weights() -> PathBuf {
    shipped_models_dir().join(ENCODER_WEIGHTS)
}

/// The shipped ImageNet class names.
pub fn class_names() -> PathBuf {
    shipped_models_dir().join(CLASS_NAMES)
}

/// The per-user data folder: the OS's (e.g. `~/.local/share/captioner` on Linux), else
/// [`FALLBACK_DATA_DIR`].
pub fn data_dir() -> PathBuf {
    data_dir_from(
        directories::ProjectDirs::from("", "", "captioner").map(|d| d.data_dir().to_path_buf()),
    )
}

fn data_dir_from(os: Option<PathBuf>) -> PathBuf {
    os.unwrap_or_else(|| PathBuf::from(FALLBACK_DATA_DIR))
}

/// The feature cache folder: `explicit` (`--cache DIR`) when given, else `cache/` in the data
/// folder.
pub fn cache_dir(explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(p) => p.to_path_buf(),
        None => data_dir().join("cache"),
    }
}

/// The folder for new training runs (and where trained models are listed from): `models/` in
/// the data folder.
pub fn trained_models_dir() -> PathBuf {
    data_dir().join("models")
}

/// The atomic file write, under its old path: `captioner-app`'s `batch` module still calls it from here. Use
/// [`crate::files::write_atomic`].
pub use crate::files::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_the_shipped_models() {
        let exe = Some(PathBuf::from("/nowhere/bin/captioner"));
        assert_eq!(
            shipped_models_dir_from(Some("/opt/m".into()), exe.clone()),
            PathBuf::from("/opt/m")
        );
        // No models beside the executable: the source checkout's.
        assert_eq!(
            shipped_models_dir_from(None, exe),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
        );
    }

    #[test]
    fn models_beside_the_executable_win_over_the_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        std::fs::create_dir(&models).unwrap();
        let exe = dir.path().join("captioner");
        // Only a folder that holds the encoder weights counts.
        assert_ne!(shipped_models_dir_from(None, Some(exe.clone())), models);
        std::fs::write(models.join(ENCODER_WEIGHTS), b"").unwrap();
        assert_eq!(shipped_models_dir_from(None, Some(exe)), models);
    }

    #[test]
    fn one_fallback_for_the_data_folder() {
        assert_eq!(
            data_dir_from(Some("/home/u/.local/share/captioner".into())),
            PathBuf::from("/home/u/.local/share/captioner")
        );
        assert_eq!(data_dir_from(None), PathBuf::from(".captioner"));
    }

    #[test]
    fn cache_and_runs_live_in_the_data_folder() {
        assert_eq!(cache_dir(None), data_dir().join("cache"));
        assert_eq!(
            cache_dir(Some(Path::new("/tmp/c"))),
            PathBuf::from("/tmp/c")
        );
        assert_eq!(trained_models_dir(), data_dir().join("models"));
        assert_eq!(default_model_dir(), shipped_models_dir().join("default"));
        assert_eq!(
            encoder_weights().file_name().unwrap(),
            "efficientnet-lite0.safetensors"
        );
        assert_eq!(class_names().parent(), Some(shipped_models_dir().as_path()));
    }
}
