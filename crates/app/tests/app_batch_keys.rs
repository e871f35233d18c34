//! The Batch panel from the keyboard (issue 29, point 9): Enter in the Folder box opens the
//! folder and leaves the keyboard on the grid; Enter in the caption box accepts and lets go of
//! the keyboard; "Accept and next" leaves a visible focus on the next photo.

mod app_support;

use std::path::{Path, PathBuf};

use app_support::{app, copy_dir, fixtures, wait_until};
use captioner_app::{CaptionerApp, Tab};
use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

/// A copy of the mini Flickr8k photos, sorted names.
fn photos(tmp: &Path) -> (PathBuf, Vec<String>) {
    let photos = tmp.join("photos");
    copy_dir(&fixtures().join("flickr8k_mini/Flicker8k_Dataset"), &photos);
    let mut names: Vec<String> = std::fs::read_dir(&photos)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    names.sort();
    (photos, names)
}

fn text_box<'a>(h: &'a Harness<'static, CaptionerApp>, label: &'a str) -> egui_kittest::Node<'a> {
    h.get_all_by_label(label)
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::TextInput)
        .unwrap_or_else(|| panic!("no text box labelled {label}"))
}

fn cell_focused(h: &Harness<'static, CaptionerApp>, name: &str) -> bool {
    h.get_by_label_contains(&format!("{name}: ")).is_focused()
}

#[test]
fn the_keyboard_goes_from_the_folder_box_to_the_grid_and_stays_visible() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    h.step();
    text_box(&h, "Folder").focus();
    h.step();
    text_box(&h, "Folder").type_text(&dir.display().to_string());
    h.step();
    h.key_press(Key::Enter);
    wait_until(&mut h, 30, "the folder listing", |a| {
        a.panels.batch.entries().len() == names.len() && !a.panels.batch.is_listing()
    });
    h.step();
    h.step();
    assert!(
        cell_focused(&h, &names[0]),
        "the first photo has the keyboard"
    );
    // The review keys work from there, and the focus follows the selection.
    h.key_press(Key::ArrowRight);
    h.step();
    h.step();
    assert_eq!(h.state().panels.batch.selected(), Some(1));
    assert!(cell_focused(&h, &names[1]));
    h.key_press(Key::Enter);
    h.step();
    h.step();
    assert_eq!(
        h.state().panels.batch.selected(),
        Some(2),
        "Enter accepts, not clicks"
    );
    assert!(h.state().panels.batch.entries()[1].cell.reviewed);
    assert!(cell_focused(&h, &names[2]));

    // F2, typing, Enter: accepted, and the text box lets go on the next photo.
    h.key_press(Key::F2);
    h.step();
    h.step();
    text_box(&h, "Selected caption").type_text("a dog");
    h.step();
    h.key_press(Key::Enter);
    h.step();
    h.step();
    assert_eq!(h.state().panels.batch.selected(), Some(3));
    assert!(!text_box(&h, "Selected caption").is_focused());
    h.key_press(Key::ArrowRight);
    h.step();
    assert_eq!(
        h.state().panels.batch.selected(),
        Some(4),
        "the arrows move the photo"
    );

    // "Accept and next" clicked: the next photo's cell shows the keyboard's place.
    h.get_by_label("Accept and next").click();
    h.step();
    h.step();
    assert_eq!(h.state().panels.batch.selected(), Some(5));
    assert!(cell_focused(&h, &names[5]));
    // The arrows move it with the selection, also out of sight and back.
    h.key_press(Key::End);
    h.step();
    h.step();
    h.key_press(Key::Home);
    h.step();
    h.step();
    h.step();
    assert!(cell_focused(&h, &names[0]));
    // Tab takes the keyboard out of the grid, and it stays out.
    h.key_press(Key::Tab);
    h.step();
    h.step();
    h.step();
    assert!(!cell_focused(&h, &names[0]));
    assert!(
        h.state().shared.ctx.memory(|m| m.focused()).is_some(),
        "another widget has it"
    );
}

/// Without a file dialog, the path box of an export (and of Browse…) opens with the keyboard.
#[test]
fn a_typed_path_box_opens_focused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    h.state_mut()
        .panels
        .batch
        .set_dialog_service(Some(Err("no file-dialog service (test)".into())));
    app_support::drop_files(&mut h, &[dir]);
    wait_until(&mut h, 30, "the folder listing", |a| {
        a.panels.batch.entries().len() == names.len() && !a.panels.batch.is_listing()
    });
    h.state_mut().panels.batch.edit_caption(0, "a dog");
    h.step();
    h.get_by_label("Export CSV…").click();
    h.step();
    h.step();
    h.step();
    assert!(
        text_box(&h, "Path").is_focused(),
        "the path box has the keyboard"
    );
    h.key_press(Key::Escape);
    h.step();
}

/// Ctrl+E and Ctrl+Shift+E: the CSV and JSON exports from the keyboard, their path box
/// focused; Enter writes the file.
#[test]
fn ctrl_e_exports_from_the_keyboard() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    h.state_mut()
        .panels
        .batch
        .set_dialog_service(Some(Err("no file-dialog service (test)".into())));
    app_support::drop_files(&mut h, &[dir]);
    wait_until(&mut h, 30, "the folder listing", |a| {
        a.panels.batch.entries().len() == names.len() && !a.panels.batch.is_listing()
    });
    // Nothing to export yet: the status says so, no path box.
    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::E);
    h.step();
    h.step();
    assert!(h.query_all_by_label("Path").next().is_none());
    h.state_mut().panels.batch.edit_caption(0, "a dog");
    h.step();
    for (modifiers, ext) in [
        (egui::Modifiers::COMMAND, "csv"),
        (egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, "json"),
    ] {
        h.key_press_modifiers(modifiers, Key::E);
        h.step();
        h.step();
        h.step();
        let path_box = text_box(&h, "Path");
        assert!(path_box.is_focused(), "the {ext} path box has the keyboard");
        let path = PathBuf::from(path_box.value().unwrap_or_default());
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some(ext),
            "{path:?}"
        );
        let path = tmp.path().join(format!("out.{ext}"));
        h.state_mut()
            .panels
            .batch
            .set_typed_path(&path.to_string_lossy());
        h.step();
        h.key_press(Key::Enter);
        h.step();
        wait_until(&mut h, 30, "the export", |a| {
            !a.panels.batch.is_exporting() && path.exists()
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("a dog"), "{text}");
    }
}
