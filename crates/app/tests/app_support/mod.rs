//! Helpers shared by the `app_*` tests: a headless app over a temporary data folder, dropped
//! files, and waiting for the worker.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use captioner_app::{AppPaths, CaptionerApp, Panels, Tab};
use egui_kittest::Harness;

pub fn fixtures() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures")
}

/// The app on a given tab, with its data folder under `data`.
pub fn app(data: &Path, tab: Tab) -> Harness<'static, CaptionerApp> {
    let paths = AppPaths::under(data);
    Harness::builder()
        .with_size([1280.0, 820.0])
        .build_eframe(move |cc| {
            let panels = Panels {
                tab,
                ..Panels::default()
            };
            CaptionerApp::with_panels(&cc.egui_ctx, paths, panels)
        })
}

/// Steps the app until `done` holds. The tests wait for states, not for time: `secs` is only
/// a guard against a hang, stretched tenfold (and by `CAPTIONER_TEST_PATIENCE`, a further
/// factor) so that a slow or loaded machine never trips it.
pub fn wait_until(
    harness: &mut Harness<'static, CaptionerApp>,
    secs: u64,
    what: &str,
    mut done: impl FnMut(&CaptionerApp) -> bool,
) {
    let patience: u64 = std::env::var("CAPTIONER_TEST_PATIENCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let deadline = Instant::now() + Duration::from_secs(secs * 10 * patience.max(1));
    loop {
        harness.step();
        if done(harness.state()) {
            // One more frame so the UI shows what arrived.
            harness.step();
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(15));
    }
}

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Drops files on the window, as a file manager would.
pub fn drop_files(harness: &mut Harness<'static, CaptionerApp>, paths: &[PathBuf]) {
    for p in paths {
        harness
            .input_mut()
            .dropped_files
            .push(Arc::new(Dropped(p.clone())));
    }
    harness.step();
}

/// Copies the files of `from` (not sub-folders) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The status line's messages so far, one per line.
pub fn status(h: &Harness<'static, CaptionerApp>) -> String {
    h.state()
        .shared
        .status
        .messages()
        .iter()
        .map(|m| m.text.clone())
        .collect::<Vec<_>>()
        .join("\n")
}
