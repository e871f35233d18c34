//! Two app windows over one data folder (issue 30): the second does not open a folder the
//! first has open (their session-file writes would overwrite each other's edits: last writer
//! wins), says why, and opens it once the first window is gone. The first window's edits come
//! back in the second after that.

mod app_support;

use std::path::{Path, PathBuf};

use app_support::{app, copy_dir, drop_files, fixtures, wait_until};
use captioner_app::{CaptionerApp, Tab};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

fn photos(tmp: &Path) -> (PathBuf, usize) {
    let photos = tmp.join("photos");
    copy_dir(&fixtures().join("flickr8k_mini/Flicker8k_Dataset"), &photos);
    let n = std::fs::read_dir(&photos)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".jpg"))
        })
        .count();
    (photos, n)
}

fn open(h: &mut Harness<'static, CaptionerApp>, dir: &Path, n: usize) {
    drop_files(h, &[dir.to_path_buf()]);
    wait_until(h, 30, "the folder listing", |a| {
        (a.panels.batch.entries().len() == n || a.panels.batch.refused().is_some())
            && !a.panels.batch.is_listing()
    });
}

#[test]
fn a_second_window_leaves_a_folder_the_first_has_open_and_gets_it_after() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, n) = photos(tmp.path());
    let data = tmp.path().join("data");

    let mut first = app(&data, Tab::Batch);
    first.step();
    open(&mut first, &dir, n);
    assert_eq!(first.state().panels.batch.entries().len(), n);
    first
        .state_mut()
        .panels
        .batch
        .edit_caption(0, "a caption typed in the first window");
    first.step();

    let mut second = app(&data, Tab::Batch);
    second.step();
    open(&mut second, &dir, n);
    let refused = second
        .state()
        .panels
        .batch
        .refused()
        .map(str::to_string)
        .expect("the second window refuses the folder");
    assert!(
        refused.contains("is open in another captioner window"),
        "{refused}"
    );
    assert!(
        second.state().panels.batch.entries().is_empty(),
        "the second window shows none of the folder"
    );
    // It says so in the panel, not only in the status line.
    second.step();
    assert_eq!(
        second
            .query_all_by_label_contains("is open in another captioner window")
            .count(),
        2,
        "the panel and the status line say it"
    );

    // The first window is closed (it writes its session on the way, and asks about the
    // unsaved caption; the app is gone all the same, as after "Close without saving"); now
    // the second gets the folder, with the first window's edit.
    first
        .input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    first.step();
    drop(first);
    open(&mut second, &dir, n);
    assert_eq!(second.state().panels.batch.refused(), None);
    assert_eq!(second.state().panels.batch.entries().len(), n);
    assert_eq!(
        second.state().panels.batch.entries()[0].cell.caption,
        "a caption typed in the first window"
    );
}
