//! The Batch panel's "Watch this folder" switch (issue 25, watched folders): with it on, a
//! photo copied into the open folder joins the grid and is captioned by the shipped model;
//! a photo arriving with its own caption keeps it; renaming the folder turns the watch off and
//! the status line says so.

mod app_support;

use app_support::{app, copy_dir, drop_files, fixtures, status, wait_until};
use captioner_app::Tab;
use captioner_app::batch::session::Source;
use egui_kittest::kittest::Queryable;

#[test]
fn a_photo_copied_into_a_watched_folder_appears_captioned() {
    let tmp = tempfile::tempdir().unwrap();
    let images = fixtures().join("encoder/images");
    let photos = tmp.path().join("photos");
    copy_dir(&images, &photos);
    let n = std::fs::read_dir(&photos).unwrap().count();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    drop_files(&mut h, std::slice::from_ref(&photos));
    wait_until(&mut h, 30, "the folder listing", |a| {
        a.panels.batch.entries().len() == n && !a.panels.batch.is_listing()
    });
    assert!(!h.state().panels.batch.is_watching());

    h.get_by_label("Watch this folder").click();
    wait_until(&mut h, 10, "the switch", |a| a.panels.batch.is_watching());

    // One photo copied in, and one that brings its own caption.
    std::fs::write(photos.join("mine.txt"), "my own words\n").unwrap();
    std::fs::copy(
        images.join("246231741_882b45c4e1.jpg"),
        photos.join("mine.jpg"),
    )
    .unwrap();
    std::fs::create_dir(photos.join("later")).unwrap();
    std::fs::copy(
        images.join("2529205842_bdcb49d65b.jpg"),
        photos.join("later").join("new.jpg"),
    )
    .unwrap();
    wait_until(&mut h, 120, "the new photo, captioned", |a| {
        let b = &a.panels.batch;
        !b.is_running()
            && b.entries().iter().any(|e| {
                e.name == "later/new.jpg" && e.cell.source == Source::Machine && e.has_caption()
            })
    });
    let entries = h.state().panels.batch.entries().to_vec();
    assert_eq!(entries.len(), n + 2);
    let mine = entries.iter().find(|e| e.name == "mine.jpg").unwrap();
    assert_eq!(mine.cell.caption, "my own words");
    assert_eq!(mine.cell.source, Source::Existing);
    let new = entries.iter().find(|e| e.name == "later/new.jpg").unwrap();
    assert!(
        new.cell.caption.split_whitespace().count() >= 3,
        "{:?}",
        new.cell
    );
    // The photos that were there are not captioned by the watch; nothing is written to disk.
    assert!(
        entries
            .iter()
            .filter(|e| e.cell.source == Source::Machine)
            .count()
            == 1
    );
    assert!(!photos.join("later").join("new.txt").exists());

    // The folder renamed: the watch ends and says so.
    std::fs::rename(&photos, tmp.path().join("renamed")).unwrap();
    wait_until(&mut h, 60, "the watch to end", |a| {
        !a.panels.batch.is_watching()
    });
    let s = status(&h);
    assert!(s.contains("was renamed, moved or deleted"), "{s}");
}
