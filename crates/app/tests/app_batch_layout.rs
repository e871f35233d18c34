//! The Batch panel's layout (issue 29, point 11): at 1280x800 the grid's cells share its whole
//! width (no strip of unused space beside them), and at 800x500 the toolbar leaves most of the
//! window to the photos.

mod app_support;

use std::path::Path;

use app_support::{app, copy_dir, drop_files, fixtures, wait_until};
use captioner_app::{CaptionerApp, Tab};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

fn open_photos(tmp: &Path) -> (Harness<'static, CaptionerApp>, Vec<String>) {
    let dir = tmp.join("photos");
    copy_dir(&fixtures().join("flickr8k_mini/Flicker8k_Dataset"), &dir);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    names.sort();
    let mut h = app(&tmp.join("data"), Tab::Batch);
    drop_files(&mut h, &[dir]);
    let n = names.len();
    wait_until(&mut h, 30, "the folder listing", |a| {
        a.panels.batch.entries().len() == n && !a.panels.batch.is_listing()
    });
    (h, names)
}

fn cells(h: &Harness<'static, CaptionerApp>, names: &[String]) -> Vec<egui::Rect> {
    names
        .iter()
        .filter_map(|n| {
            h.query_by_label_contains(&format!("{n}: "))
                .map(|c| c.rect())
        })
        .collect()
}

fn preview_left(h: &Harness<'static, CaptionerApp>) -> f32 {
    h.get_all_by_label("Selected caption")
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::TextInput)
        .expect("the caption box")
        .rect()
        .min
        .x
}

#[test]
fn the_grid_uses_its_width_and_the_toolbar_leaves_room_for_photos() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut h, names) = open_photos(tmp.path());
    for size in [egui::vec2(1280.0, 800.0), egui::vec2(1920.0, 1080.0)] {
        h.set_size(size);
        h.run_ok();
        h.step();
        let cells = cells(&h, &names);
        assert!(!cells.is_empty());
        let right = cells.iter().map(|r| r.max.x).fold(0.0, f32::max);
        let width = cells[0].width();
        let unused = preview_left(&h) - right;
        eprintln!("{size:?}: cell width {width}, unused {unused}");
        assert!(
            unused < 40.0,
            "{unused} px beside the grid unused at {size:?} (cells {width} wide)"
        );
    }
    let size = egui::vec2(800.0, 500.0);
    h.set_size(size);
    h.run_ok();
    h.step();
    let top = cells(&h, &names)
        .iter()
        .map(|r| r.min.y)
        .fold(f32::INFINITY, f32::min);
    eprintln!("800x500: the grid starts at {top}");
    assert!(
        top <= 0.3 * size.y,
        "the toolbar takes {top} of {} px",
        size.y
    );
    // The decoding options are a click away there, in the Decoding menu.
    assert!(h.query_by_label("Beam").is_none());
    h.get_by_label("Decoding").click();
    h.run_ok();
    for label in [
        "Beam",
        "Words min",
        "max",
        "Prefix",
        "Suffix",
        "Block repeated n-grams",
    ] {
        assert!(
            h.query_by_label(label).is_some(),
            "{label} in the Decoding menu"
        );
    }
}
