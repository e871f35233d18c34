//! Where captioner's files are: the one set of path rules, for the command line and the app.
//!
//! | what | where |
//! | --- | --- |
//! | the shipped models ([`shipped_models_dir`]) | `$CAPTIONER_MODELS` when set, else `models/` beside the executable when it holds the encoder weights (a copy with its models beside it), else `../share/captioner/models` from the executable's folder when it holds the encoder weights or `../share/captioner` is there and is not the per-user data folder (an installed package: `/usr/share/captioner/models` for `/usr/bin/captioner`, `share/captioner/models` in the unpacked `.tar.gz`), else the source checkout's `models/` when it is there (a `cargo run`), else the installed place again (so that what is missing is named where a package puts it) |
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

/// Where an installed copy keeps its shipped models, from the executable's folder:
/// `../share/captioner/models` (`/usr/share/captioner/models` for `/usr/bin/captioner`).
pub const INSTALLED_MODELS: &str = "../share/captioner/models";

/// The folder with the shipped models: `$CAPTIONER_MODELS` when set, else `models/` beside the
/// executable when it holds the encoder weights, else [`INSTALLED_MODELS`] when the executable
/// is installed (`../share/captioner` is there and is not the per-user data folder, whatever
/// state its models are in, so that a broken installation is reported as such; or the folder
/// holds the encoder weights), else the source checkout's `models/` (a
/// `cargo run`), else [`INSTALLED_MODELS`] again. Whether the folder holds what it should is
/// for the loaders to say (each names the file that is missing or wrong).
pub fn shipped_models_dir() -> PathBuf {
    shipped_models_dir_from(
        std::env::var_os("CAPTIONER_MODELS"),
        std::env::current_exe().ok(),
    )
}

fn shipped_models_dir_from(env: Option<OsString>, exe: Option<PathBuf>) -> PathBuf {
    shipped_models_dir_in(
        env,
        exe,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
        &data_dir(),
    )
}

/// [`shipped_models_dir_from`] with the source checkout's `models/` and the per-user data
/// folder given. The data folder is never taken for an installation: for an executable in
/// `~/.local/bin`, `~/.local/share/captioner` is the user's data folder (its `models/` the
/// trained ones), unless it holds the encoder weights.
fn shipped_models_dir_in(
    env: Option<OsString>,
    exe: Option<PathBuf>,
    checkout: &Path,
    data: &Path,
) -> PathBuf {
    if let Some(dir) = env {
        return PathBuf::from(dir);
    }
    let exe_dir = exe.as_deref().and_then(Path::parent);
    if let Some(dir) = exe_dir
        .map(|d| d.join("models"))
        .filter(|d| d.join(ENCODER_WEIGHTS).is_file())
    {
        return dir;
    }
    // `/usr/bin/../share/captioner/models`, written without the `..` so that messages name
    // `/usr/share/captioner/models/...`.
    let installed = exe_dir.map(|d| {
        let prefix = d.parent().unwrap_or(d);
        prefix.join("share").join("captioner").join("models")
    });
    if let Some(dir) = installed.as_ref().filter(|d| {
        d.join(ENCODER_WEIGHTS).is_file() || d.parent().is_some_and(|p| p.is_dir() && p != data)
    }) {
        return dir.clone();
    }
    if checkout.is_dir() {
        return checkout.to_path_buf();
    }
    installed.unwrap_or_else(|| checkout.to_path_buf())
}

/// What to do when a file of the shipped models folder is missing or damaged, said for the
/// way this copy found the folder ([`shipped_models_dir`]): point `$CAPTIONER_MODELS`
/// elsewhere, restore the source checkout's `models/`, or reinstall.
pub fn shipped_models_fix() -> String {
    let env = std::env::var_os("CAPTIONER_MODELS").is_some();
    fix_for(
        env,
        &shipped_models_dir(),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
    )
}

fn fix_for(env: bool, dir: &Path, checkout: &Path) -> String {
    if env {
        format!(
            "CAPTIONER_MODELS names {}: point it at a folder with captioner's shipped models, \
             or unset it",
            dir.display()
        )
    } else if dir == checkout {
        "restore the source checkout's models/ (git checkout -- models/, with Git LFS files \
         pulled if the clone uses them)"
            .to_string()
    } else {
        "reinstall captioner (sudo apt install --reinstall captioner for the Debian package, \
         or unpack its .tar.gz again), or set CAPTIONER_MODELS to a folder with its shipped \
         models"
            .to_string()
    }
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
    fn an_installed_copy_finds_its_models_under_share() {
        // /usr/bin/captioner and /usr/share/captioner/models, inside a temporary folder.
        let prefix = tempfile::tempdir().unwrap();
        let bin = prefix.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let exe = Some(bin.join("captioner"));
        let checkout = prefix.path().join("checkout").join("models");
        std::fs::create_dir_all(&checkout).unwrap();
        let data = prefix.path().join("home").join("data");
        let installed = prefix.path().join("share").join("captioner").join("models");
        // Not installed: the source checkout's.
        assert_eq!(
            shipped_models_dir_in(None, exe.clone(), &checkout, &data),
            checkout
        );
        // Installed: found there with no environment variable, and named without `..`.
        std::fs::create_dir_all(&installed).unwrap();
        std::fs::write(installed.join(ENCODER_WEIGHTS), b"").unwrap();
        assert_eq!(
            shipped_models_dir_in(None, exe.clone(), &checkout, &data),
            installed
        );
        // The environment still wins, and so do models beside the executable.
        assert_eq!(
            shipped_models_dir_in(Some("/opt/m".into()), exe.clone(), &checkout, &data),
            PathBuf::from("/opt/m")
        );
        std::fs::create_dir(bin.join("models")).unwrap();
        std::fs::write(bin.join("models").join(ENCODER_WEIGHTS), b"").unwrap();
        assert_eq!(
            shipped_models_dir_in(None, exe, &checkout, &data),
            bin.join("models")
        );
    }

    #[test]
    fn a_broken_installation_is_not_covered_up_by_the_checkout() {
        let prefix = tempfile::tempdir().unwrap();
        let exe = Some(prefix.path().join("bin").join("captioner"));
        let checkout = prefix.path().join("checkout").join("models");
        std::fs::create_dir_all(&checkout).unwrap();
        std::fs::write(checkout.join(ENCODER_WEIGHTS), b"").unwrap();
        let data = prefix.path().join("home").join("data");
        let installed = prefix.path().join("share").join("captioner").join("models");
        // share/captioner is there but its models are gone: that folder, so that the loaders
        // name the installed file that is missing, not the checkout's.
        std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
        assert_eq!(
            shipped_models_dir_in(None, exe.clone(), &checkout, &data),
            installed
        );
        // Neither installed nor a checkout: the installed place, where a package puts them.
        std::fs::remove_dir(installed.parent().unwrap()).unwrap();
        let gone = prefix.path().join("no-checkout");
        assert_eq!(shipped_models_dir_in(None, exe, &gone, &data), installed);
        // No executable path at all: the checkout's, as before.
        assert_eq!(shipped_models_dir_in(None, None, &gone, &data), gone);
    }

    #[test]
    fn the_users_data_folder_is_not_an_installation() {
        // ~/.local/bin/captioner, with ~/.local/share/captioner the user's data folder (its
        // models/ holds trained runs, not the shipped models).
        let home = tempfile::tempdir().unwrap();
        let exe = Some(home.path().join(".local").join("bin").join("captioner"));
        let data = home.path().join(".local").join("share").join("captioner");
        std::fs::create_dir_all(data.join("models")).unwrap();
        let checkout = home.path().join("src").join("captioner").join("models");
        std::fs::create_dir_all(&checkout).unwrap();
        assert_eq!(
            shipped_models_dir_in(None, exe.clone(), &checkout, &data),
            checkout
        );
        // Shipped models put there (the encoder weights in it) are taken, though.
        std::fs::write(data.join("models").join(ENCODER_WEIGHTS), b"").unwrap();
        assert_eq!(
            shipped_models_dir_in(None, exe, &checkout, &data),
            data.join("models")
        );
    }

    #[test]
    fn the_fix_follows_how_the_models_were_found() {
        let checkout = Path::new("/src/captioner/models");
        assert!(
            fix_for(true, Path::new("/opt/m"), checkout).contains("CAPTIONER_MODELS names /opt/m")
        );
        assert!(fix_for(false, checkout, checkout).contains("git checkout -- models/"));
        let installed = fix_for(false, Path::new("/usr/share/captioner/models"), checkout);
        assert!(
            installed.contains("apt install --reinstall captioner"),
            "{installed}"
        );
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
