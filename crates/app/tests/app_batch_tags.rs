//! The Batch panel's tags and selections, driven headlessly (no model needed): tags are chips
//! in the preview, added, removed and moved from the keyboard and the mouse, one undo step
//! each, kept in the session across a restart and written to CSV, JSON and XMP `dc:subject`;
//! the folder's tag list filters the grid; several photos selected at once take one bulk
//! action per undo step.

mod app_support;

use std::path::{Path, PathBuf};

use app_support::{app, copy_dir, drop_files, fixtures, wait_until};
use captioner_app::batch::BatchPanel;
use captioner_app::batch::Filter;
use captioner_app::{AppPaths, CaptionerApp, Panels, Tab};
use egui::{Key, Modifiers};
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

fn open(h: &mut Harness<'static, CaptionerApp>, dir: &Path, n: usize) {
    drop_files(h, &[dir.to_path_buf()]);
    wait_until(h, 30, "the folder listing", |a| {
        a.panels.batch.entries().len() == n && !a.panels.batch.is_listing()
    });
}

/// The text box labelled `label` (the label itself is a node of that name too).
fn text_box<'a>(h: &'a Harness<'static, CaptionerApp>, label: &'a str) -> egui_kittest::Node<'a> {
    h.get_all_by_label(label)
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::TextInput)
        .unwrap_or_else(|| panic!("no text box labelled {label}"))
}

fn tags(h: &Harness<'static, CaptionerApp>, i: usize) -> Vec<String> {
    h.state().panels.batch.entries()[i].cell.tags.clone()
}

fn undo_len(h: &Harness<'static, CaptionerApp>) -> usize {
    h.state()
        .panels
        .batch
        .session()
        .map_or(0, |s| s.history.undo_len())
}

/// Types `text` into the box labelled `label` and presses Enter.
fn type_and_enter(h: &mut Harness<'static, CaptionerApp>, label: &str, text: &str) {
    text_box(h, label).focus();
    h.step();
    text_box(h, label).type_text(text);
    h.step();
    h.key_press(Key::Enter);
    h.step();
    h.step();
}

fn app_with_folder(data: &Path, folder: &Path) -> Harness<'static, CaptionerApp> {
    let paths = AppPaths::under(data);
    let folder = folder.display().to_string();
    Harness::builder()
        .with_size([1280.0, 820.0])
        .build_eframe(move |cc| {
            let mut batch = BatchPanel::default();
            batch.settings.folder = folder;
            let panels = Panels {
                tab: Tab::Batch,
                batch,
                ..Panels::default()
            };
            CaptionerApp::with_panels(&cc.egui_ctx, paths, panels)
        })
}

#[test]
fn tag_chips_are_edited_undone_exported_and_survive_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let data = tmp.path().join("data");
    let mut h = app(&data, Tab::Batch);
    open(&mut h, &dir, names.len());
    h.state_mut()
        .panels
        .batch
        .edit_caption(0, "a dog runs in a park");
    h.step();
    let steps = undo_len(&h);

    // Typed: commas separate tags, Enter adds them, and the box keeps the keyboard.
    type_and_enter(&mut h, "Tags", "dog, grass");
    assert_eq!(tags(&h, 0), ["dog", "grass"]);
    assert!(text_box(&h, "Tags").is_focused(), "ready for the next tag");
    text_box(&h, "Tags").type_text("park");
    h.step();
    h.key_press(Key::Enter);
    h.step();
    h.step();
    assert_eq!(tags(&h, 0), ["dog", "grass", "park"]);
    assert_eq!(undo_len(&h), steps + 2, "one undo step per tag edit");
    h.key_press(Key::Escape);
    h.step();

    // The chip's × removes it.
    h.get_by_label("remove tag grass").click();
    h.step();
    h.step();
    assert_eq!(tags(&h, 0), ["dog", "park"]);

    // A focused chip moves with Alt+Left and keeps the keyboard; Delete removes it.
    h.get_by_label("park").focus();
    h.step();
    h.step();
    h.key_press_modifiers(Modifiers::ALT, Key::ArrowLeft);
    h.step();
    h.step();
    assert_eq!(tags(&h, 0), ["park", "dog"]);
    assert_eq!(
        h.state().panels.batch.selected(),
        Some(0),
        "the photo stays"
    );
    assert!(
        h.get_by_label("park").is_focused(),
        "the moved chip keeps focus"
    );
    h.key_press_modifiers(Modifiers::ALT, Key::ArrowRight);
    h.step();
    h.step();
    assert_eq!(tags(&h, 0), ["dog", "park"]);
    h.key_press(Key::Delete);
    h.step();
    h.step();
    assert_eq!(tags(&h, 0), ["dog"]);
    assert_eq!(undo_len(&h), steps + 6);

    // Undo and redo, one tag edit at a time.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(tags(&h, 0), ["dog", "park"]);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(tags(&h, 0), ["park", "dog"]);
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.step();
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.step();
    assert_eq!(tags(&h, 0), ["dog"]);
    type_and_enter(&mut h, "Tags", "puppy");
    h.key_press(Key::Escape);
    h.step();
    assert_eq!(tags(&h, 0), ["dog", "puppy"]);

    // The tags shown are the tags exported: CSV, JSON and XMP dc:subject.
    let csv = tmp.path().join("out/captions.csv");
    let json = tmp.path().join("out/captions.json");
    {
        let app = h.state_mut();
        app.panels.batch.export_csv(csv.clone(), &mut app.shared);
    }
    wait_until(&mut h, 30, "the CSV", |a| {
        !a.panels.batch.is_exporting() && csv.exists()
    });
    {
        let app = h.state_mut();
        app.panels.batch.export_json(json.clone(), &mut app.shared);
    }
    wait_until(&mut h, 30, "the JSON", |a| {
        !a.panels.batch.is_exporting() && json.exists()
    });
    {
        let app = h.state_mut();
        app.panels.batch.export_metadata(
            captioner::export::MetadataTarget::XmpSidecar,
            captioner::export::Existing::Overwrite,
            &mut app.shared,
        );
    }
    wait_until(&mut h, 30, "the XMP sidecars", |a| {
        !a.panels.batch.is_exporting()
    });
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv.contains("\"dog, puppy\""), "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        json[0]["tags"],
        serde_json::json!(["dog", "puppy"]),
        "{json}"
    );
    let xmp = captioner::metadata::read_description(&dir.join(&names[0]))
        .unwrap()
        .expect("an XMP sidecar");
    assert_eq!(xmp.subjects, ["dog", "puppy"]);

    // Closed and opened again: the tags are back, as the user's.
    {
        let app = h.state_mut();
        app.panels.batch.persist_now(&mut app.shared);
    }
    drop(h);
    let mut h = app_with_folder(&data, &dir);
    wait_until(&mut h, 30, "the restored session", |a| {
        a.panels.batch.entries().len() == names.len()
    });
    let cell = &h.state().panels.batch.entries()[0].cell;
    assert_eq!(cell.tags, ["dog", "puppy"]);
    assert!(cell.tags_edited);
    h.get_by_label("puppy");
}

#[test]
fn several_photos_selected_take_one_bulk_action_per_undo_step() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    open(&mut h, &dir, names.len());
    for (i, caption) in [(0, "a dog"), (2, "a dog on sand"), (3, "a dog and a ball")] {
        h.state_mut().panels.batch.edit_caption(i, caption);
    }
    h.step();
    let cell = |h: &Harness<'static, CaptionerApp>, i: usize| {
        h.state().panels.batch.entries()[i].cell.clone()
    };
    let photo = |i: usize| format!("{}: ", names[i]);

    // Click, Ctrl-click, Shift-click.
    h.get_by_label_contains(&photo(0)).click();
    h.step();
    h.get_by_label_contains(&photo(2))
        .click_modifiers(Modifiers::COMMAND);
    h.step();
    assert_eq!(h.state().panels.batch.marked(), [0, 2]);
    h.get_by_label_contains(&photo(4))
        .click_modifiers(Modifiers::SHIFT);
    h.step();
    h.step();
    assert_eq!(h.state().panels.batch.marked(), [2, 3, 4]);
    assert_eq!(h.state().panels.batch.selected(), Some(4));
    // Visible: the count in the toolbar, the photos marked selected in the grid.
    h.get_by_label("3 selected");
    for i in 0..5 {
        let selected = h
            .get_by_label_contains(&photo(i))
            .accesskit_node()
            .toggled()
            == Some(egui::accesskit::Toggled::True);
        assert_eq!(selected, [2, 3, 4].contains(&i), "photo {i}");
    }

    // A tag for all three: one undo step.
    let steps = undo_len(&h);
    type_and_enter(&mut h, "Tag", "beach");
    for i in [2, 3, 4] {
        assert_eq!(cell(&h, i).tags, ["beach"], "photo {i}");
    }
    assert!(cell(&h, 0).tags.is_empty());
    assert_eq!(undo_len(&h), steps + 1);

    // Find and replace, only in the selection.
    text_box(&h, "Find").focus();
    h.step();
    text_box(&h, "Find").type_text("dog");
    h.step();
    text_box(&h, "with").focus();
    h.step();
    text_box(&h, "with").type_text("cat");
    h.step();
    h.get_by_label("Replace in 2 selected").click();
    h.step();
    assert_eq!(cell(&h, 2).caption, "a cat on sand");
    assert_eq!(cell(&h, 3).caption, "a cat and a ball");
    assert_eq!(cell(&h, 0).caption, "a dog", "not selected");
    assert_eq!(undo_len(&h), steps + 2);

    // Accept all three, then undo it in one step.
    h.get_by_label("Accept").click();
    h.step();
    assert!([2, 3, 4].iter().all(|&i| cell(&h, i).reviewed));
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert!([2, 3, 4].iter().all(|&i| !cell(&h, i).reviewed));
    assert_eq!(
        cell(&h, 2).caption,
        "a cat on sand",
        "only the accept undone"
    );
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(cell(&h, 2).caption, "a dog on sand");
    assert_eq!(cell(&h, 3).caption, "a dog and a ball");

    // Remove the tag from all of them.
    h.get_by_label("Remove tag").click();
    h.run_ok();
    // The menu's "beach" (the preview's chip of the same name is further down).
    h.get_all_by_label("beach")
        .min_by(|a, b| a.rect().min.y.total_cmp(&b.rect().min.y))
        .unwrap()
        .click();
    h.step();
    assert!([2, 3, 4].iter().all(|&i| cell(&h, i).tags.is_empty()));
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert!([2, 3, 4].iter().all(|&i| cell(&h, i).tags == ["beach"]));

    // Ctrl+A selects every photo shown, Escape clears.
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.step();
    assert_eq!(
        h.state().panels.batch.marked(),
        (0..names.len()).collect::<Vec<_>>()
    );
    h.key_press(Key::Escape);
    h.step();
    h.step();
    assert!(h.state().panels.batch.marked().is_empty());
    assert!(h.query_by_label("3 selected").is_none());

    // The folder's tag list: a click filters the grid, with the other filters; again clears.
    h.get_by_label("Tag list").click();
    h.run_ok();
    h.get_by_label("beach (3)").click();
    h.step();
    h.step();
    assert_eq!(h.state().panels.batch.tag_filter(), Some("beach"));
    assert_eq!(h.state().panels.batch.shown_photos(), [2, 3, 4]);
    h.state_mut().panels.batch.settings.filter = Filter::Edited;
    h.step();
    assert_eq!(h.state().panels.batch.shown_photos(), [2, 3]);
    h.state_mut().panels.batch.settings.filter = Filter::All;
    h.step();
    h.get_by_label("Tag list").click();
    h.run_ok();
    h.get_by_label("beach (3)").click();
    h.step();
    h.step();
    assert_eq!(h.state().panels.batch.tag_filter(), None);
    assert_eq!(h.state().panels.batch.shown_photos().len(), names.len());
    // The clear button.
    h.state_mut().panels.batch.toggle_tag_filter(Some("beach"));
    h.step();
    h.get_by_label("tag: beach ×").click();
    h.step();
    assert_eq!(h.state().panels.batch.tag_filter(), None);
}

#[test]
fn a_tag_chip_dragged_onto_another_moves_there() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    open(&mut h, &dir, names.len());
    type_and_enter(&mut h, "Tags", "ant, bee, cat");
    h.key_press(Key::Escape);
    h.step();
    assert_eq!(tags(&h, 0), ["ant", "bee", "cat"]);
    let from = h.get_by_label("cat").rect().center();
    let to = h.get_by_label("ant").rect().center();
    let button = egui::PointerButton::Primary;
    let event = |h: &mut Harness<'static, CaptionerApp>, e: egui::Event| {
        h.input_mut().events.push(e);
        h.step();
    };
    event(&mut h, egui::Event::PointerMoved(from));
    event(
        &mut h,
        egui::Event::PointerButton {
            pos: from,
            button,
            pressed: true,
            modifiers: Modifiers::NONE,
        },
    );
    for k in 1..=8 {
        let t = k as f32 / 8.0;
        event(&mut h, egui::Event::PointerMoved(from + (to - from) * t));
    }
    event(
        &mut h,
        egui::Event::PointerButton {
            pos: to,
            button,
            pressed: false,
            modifiers: Modifiers::NONE,
        },
    );
    h.step();
    assert_eq!(tags(&h, 0), ["cat", "ant", "bee"]);
    // One undo step puts it back.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(tags(&h, 0), ["ant", "bee", "cat"]);
}
