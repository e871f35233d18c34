//! The Batch panel as a caption editor, driven headlessly (no model needed here; see
//! `app_batch_model.rs` for captioning runs): a folder opens with the captions its `.txt` files
//! hold, bad sidecars are shown and left alone, edits are saved only where they changed, undone
//! and redone from the keyboard, kept in a session across a restart, and the toolbar fits a
//! small window. Everything is written to a temporary copy of the fixtures.

mod app_support;

use std::path::{Path, PathBuf};

use app_support::{app, copy_dir, drop_files, fixtures, status, wait_until};
use captioner_app::batch::session::{Disk, Photo, Session, Source};
use captioner_app::batch::{Ask, BatchPanel};
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

fn txt(dir: &Path, image: &str) -> PathBuf {
    dir.join(image.replace(".jpg", ".txt"))
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

#[test]
fn a_folder_opens_with_its_sidecars_and_bad_ones_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    std::fs::write(txt(&dir, &names[0]), "\u{feff}a dog on the grass  \r\n").unwrap();
    std::fs::write(
        txt(&dir, &names[1]),
        "two dogs play\nsecond caption\nthird\n",
    )
    .unwrap();
    std::fs::write(txt(&dir, &names[2]), b"caf\xe9 au lait\n").unwrap();
    // A "sidecar" that is a folder cannot be read.
    std::fs::create_dir(txt(&dir, &names[3])).unwrap();

    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    open(&mut h, &dir, names.len());
    let entries = h.state().panels.batch.entries().to_vec();
    assert_eq!(entries[0].cell.caption, "a dog on the grass");
    assert_eq!(entries[0].cell.source, Source::Existing);
    assert_eq!(entries[1].cell.caption, "two dogs play");
    assert!(matches!(&entries[2].disk, Disk::Unreadable(m) if m.contains("not UTF-8")));
    assert!(matches!(&entries[3].disk, Disk::Unreadable(m) if m.contains("cannot read")));
    assert_eq!(entries[4].cell.source, Source::Empty);
    let s = status(&h);
    assert!(s.contains("2 with a caption"), "{s}");
    assert!(s.contains("2 .txt files could not be read"), "{s}");

    // The grid shows them, with their source, for screen readers too.
    h.get_by_label_contains("a dog on the grass (existing)");
    h.get_by_label_contains("two dogs play (existing)");
    // The first photo is selected: its caption is in the preview's text box.
    assert_eq!(h.state().panels.batch.selected(), Some(0));
    assert_eq!(
        text_box(&h, "Selected caption").value().as_deref(),
        Some("a dog on the grass")
    );

    // Edit the multi-line one and the not-UTF-8 one; save writes only those, keeps the extra
    // lines, and asks before replacing the file it could not read.
    {
        let b = &mut h.state_mut().panels.batch;
        b.edit_caption(1, "two dogs play in the snow");
        b.edit_caption(2, "a cup of coffee");
    }
    h.step();
    let before0 = std::fs::read(txt(&dir, &names[0])).unwrap();
    h.get_by_label("Save 2").click();
    wait_until(&mut h, 10, "the question", |a| {
        a.panels.batch.asking().is_some()
    });
    assert_eq!(
        h.state().panels.batch.asking(),
        Some(&Ask::Conflicts(vec![names[2].replace(".jpg", ".txt")]))
    );
    h.get_by_label("Leave them").click();
    wait_until(&mut h, 10, "the save", |a| {
        a.panels.batch.last_report().is_some()
    });
    assert_eq!(
        std::fs::read_to_string(txt(&dir, &names[1])).unwrap(),
        "two dogs play in the snow\nsecond caption\nthird\n"
    );
    assert_eq!(
        std::fs::read(txt(&dir, &names[2])).unwrap(),
        b"caf\xe9 au lait\n",
        "not overwritten unless asked"
    );
    assert_eq!(std::fs::read(txt(&dir, &names[0])).unwrap(), before0);
    assert!(
        !txt(&dir, &names[4]).exists(),
        "nothing written for photos without captions"
    );
    assert_eq!(h.state().panels.batch.unsaved(), 1);

    // Asked, it is replaced.
    h.get_by_label("Save 1").click();
    wait_until(&mut h, 10, "the question", |a| {
        a.panels.batch.asking().is_some()
    });
    h.get_by_label("Overwrite them").click();
    h.step();
    assert_eq!(
        std::fs::read_to_string(txt(&dir, &names[2])).unwrap(),
        "a cup of coffee\n"
    );
    assert_eq!(h.state().panels.batch.unsaved(), 0);

    // CSV and JSON, written where asked (the dialog is bypassed here).
    let csv_path = tmp.path().join("out/captions.csv");
    {
        let app = h.state_mut();
        app.panels
            .batch
            .export_csv(csv_path.clone(), &mut app.shared);
    }
    wait_until(&mut h, 30, "the CSV", |_| csv_path.exists());
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(
        csv.starts_with(
            "image,caption,confidence,edited,needs_review,tags,source,review_reason,review_detail\n"
        ),
        "{csv}"
    );
    assert!(csv.contains("two dogs play in the snow"));
}

#[test]
fn keyboard_flow_arrows_enter_typing_and_undo() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    std::fs::write(txt(&dir, &names[0]), "a dog\n").unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    open(&mut h, &dir, names.len());
    let sel = |h: &Harness<'static, CaptionerApp>| h.state().panels.batch.selected();
    assert_eq!(sel(&h), Some(0));
    h.key_press(Key::ArrowRight);
    h.step();
    assert_eq!(sel(&h), Some(1));
    h.key_press(Key::End);
    h.step();
    assert_eq!(sel(&h), Some(names.len() - 1));
    h.key_press(Key::Home);
    h.step();
    assert_eq!(sel(&h), Some(0));
    h.key_press(Key::ArrowDown);
    h.step();
    let columns = sel(&h).unwrap();
    assert!(columns >= 1, "down moves one row");
    h.key_press(Key::ArrowUp);
    h.step();
    assert_eq!(sel(&h), Some(0));

    // Enter accepts and moves on.
    h.key_press(Key::Enter);
    h.step();
    assert_eq!(sel(&h), Some(1));
    assert!(h.state().panels.batch.entries()[0].cell.reviewed);

    // F2 edits the selected caption; typing, then Enter accepts and moves to the next photo,
    // and the text box lets go of the keyboard (the arrows move the selection again).
    h.key_press(Key::F2);
    h.step();
    h.step();
    assert!(text_box(&h, "Selected caption").is_focused());
    text_box(&h, "Selected caption").type_text("a cat");
    h.step();
    assert_eq!(h.state().panels.batch.entries()[1].cell.caption, "a cat");
    assert_eq!(
        h.state().panels.batch.entries()[1].cell.source,
        Source::Edited
    );
    h.key_press(Key::Enter);
    h.step();
    h.step();
    assert_eq!(sel(&h), Some(2));
    assert!(
        !text_box(&h, "Selected caption").is_focused(),
        "Enter leaves the text box"
    );
    h.key_press(Key::F2);
    h.step();
    h.step();
    assert!(text_box(&h, "Selected caption").is_focused());
    // A pasted paragraph becomes one line.
    h.input_mut()
        .events
        .push(egui::Event::Paste("two birds\nin a tree".into()));
    h.step();
    assert_eq!(
        h.state().panels.batch.entries()[2].cell.caption,
        "two birds in a tree"
    );
    // Esc leaves the text box; the arrows move again.
    h.key_press(Key::Escape);
    h.step();
    assert!(!text_box(&h, "Selected caption").is_focused());
    h.key_press(Key::ArrowLeft);
    h.step();
    assert_eq!(sel(&h), Some(1));

    // Ctrl+Z undoes the paste, then the accept (Enter), then the typing; Ctrl+Shift+Z redoes.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(h.state().panels.batch.entries()[2].cell.caption, "");
    assert!(h.state().panels.batch.entries()[1].cell.reviewed);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert!(!h.state().panels.batch.entries()[1].cell.reviewed);
    assert_eq!(h.state().panels.batch.entries()[1].cell.caption, "a cat");
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(h.state().panels.batch.entries()[1].cell.caption, "");
    assert_eq!(
        h.state().panels.batch.entries()[1].cell.source,
        Source::Empty
    );
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.step();
    assert_eq!(h.state().panels.batch.entries()[1].cell.caption, "a cat");
    // A click selects; the keys go on from there.
    h.get_by_label_contains(&format!("{}: ", names[5])).click();
    h.step();
    assert_eq!(sel(&h), Some(5));
    h.key_press(Key::Enter);
    h.step();
    assert_eq!(sel(&h), Some(6));
    // Nothing was written to disk by any of this.
    assert!(!txt(&dir, &names[1]).exists());
    assert_eq!(
        std::fs::read_to_string(txt(&dir, &names[0])).unwrap(),
        "a dog\n"
    );
}

/// Save leaves a read-only sidecar as it is (contents and mode bits, so this holds as root
/// too), says so by name, and writes the others.
#[cfg(unix)]
#[test]
fn save_leaves_a_read_only_sidecar_alone() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let locked = txt(&dir, &names[0]);
    std::fs::write(&locked, "mine\n").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o444)).unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    open(&mut h, &dir, names.len());
    {
        let b = &mut h.state_mut().panels.batch;
        b.edit_caption(0, "a new caption");
        b.edit_caption(1, "another caption");
    }
    h.step();
    h.get_by_label("Save 2").click();
    wait_until(&mut h, 10, "the save", |a| {
        a.panels.batch.last_report().is_some()
    });
    let report = h
        .state()
        .panels
        .batch
        .last_report()
        .unwrap_or_default()
        .to_string();
    assert!(
        report.contains(&format!(
            "{}: the file is read-only; left unchanged",
            locked.display()
        )),
        "{report}"
    );
    assert_eq!(std::fs::read_to_string(&locked).unwrap(), "mine\n");
    let mode = std::fs::metadata(&locked).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444);
    assert_eq!(
        std::fs::read_to_string(txt(&dir, &names[1])).unwrap(),
        "another caption\n"
    );
    assert_eq!(h.state().panels.batch.unsaved(), 1);
}

/// A save killed after some sidecars were renamed into place but before the session file was
/// written: the folder's leftover temporary files (`.NAME.txt.tmp-PID-N` of a process that is
/// gone) are removed when it is opened again, nothing else is, and the next Save does not ask
/// about the sidecars that already hold the captions it writes.
#[cfg(target_os = "linux")]
#[test]
fn after_a_killed_save_leftovers_go_and_the_own_captions_are_no_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let data = tmp.path().join("data");
    let mut h = app(&data, Tab::Batch);
    open(&mut h, &dir, names.len());
    h.state_mut().panels.batch.edit_caption(0, "a dog runs");
    h.state_mut().panels.batch.edit_caption(1, "a cat sleeps");
    {
        let app = h.state_mut();
        app.panels.batch.persist_now(&mut app.shared);
    }
    drop(h);
    // What the killed save left: one sidecar in place, temporary files beside it.
    std::fs::write(txt(&dir, &names[0]), "a dog runs\n").unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    let leftover = dir.join(format!(
        ".{}.tmp-{gone}-7",
        txt(&dir, &names[1]).file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&leftover, "a cat sl").unwrap();
    let mine = dir.join(format!(".notes.txt.tmp-{gone}"));
    std::fs::write(&mine, "not the app's naming").unwrap();

    let mut h = app(&data, Tab::Batch);
    open(&mut h, &dir, names.len());
    assert!(!leftover.exists(), "{}", status(&h));
    assert!(mine.exists());
    let s = status(&h);
    assert!(s.contains("removed 1 temporary file(s)"), "{s}");
    assert_eq!(h.state().panels.batch.unsaved(), 2, "{s}");
    h.get_by_label("Save 2").click();
    wait_until(&mut h, 10, "the save", |a| {
        a.panels.batch.last_report().is_some() || a.panels.batch.asking().is_some()
    });
    assert_eq!(h.state().panels.batch.asking(), None);
    assert_eq!(h.state().panels.batch.unsaved(), 0);
    assert_eq!(
        std::fs::read_to_string(txt(&dir, &names[1])).unwrap(),
        "a cat sleeps\n"
    );
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
fn a_session_survives_closing_and_reopening_the_app() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let data = tmp.path().join("data");
    let mut h = app(&data, Tab::Batch);
    open(&mut h, &dir, names.len());
    h.state_mut()
        .panels
        .batch
        .edit_caption(3, "an unsaved caption");
    h.step();

    // Closing asks first.
    h.input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    h.step();
    assert!(
        h.output()
            .viewport_output
            .values()
            .any(|v| v.commands.contains(&egui::ViewportCommand::CancelClose)),
        "the close was held back"
    );
    h.step();
    assert!(matches!(
        h.state().panels.batch.asking(),
        Some(Ask::Unsaved { count: 1, .. })
    ));
    h.get_by_label("Cancel").click();
    h.step();
    assert!(h.state().panels.batch.asking().is_none());

    wait_until(&mut h, 30, "the session file", |a| {
        a.panels.batch.session_persisted()
    });
    // The app goes away without saving the sidecars (as in a crash).
    drop(h);
    assert!(!txt(&dir, &names[3]).exists());

    // Started again on the same folder, the edit is back, still unsaved.
    let mut h = app_with_folder(&data, &dir);
    wait_until(&mut h, 30, "the restored session", |a| {
        a.panels.batch.entries().len() == names.len()
    });
    let e = &h.state().panels.batch.entries()[3];
    assert_eq!(e.cell.caption, "an unsaved caption");
    assert_eq!(e.cell.source, Source::Edited);
    assert_eq!(h.state().panels.batch.unsaved(), 1);
    assert!(status(&h).contains("came back"), "{}", status(&h));
}

#[test]
fn a_damaged_or_older_session_file_starts_clean_and_is_kept_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let data = tmp.path().join("data");
    let sessions = data.join("batch-sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let file = Session::file_for(&sessions, &dir.display().to_string());
    for (bytes, expect) in [
        (
            &b"{\"version\": 2, \"entries\": [tru"[..],
            "damaged session file",
        ),
        (&b"{\"version\": 1}"[..], "version 1"),
    ] {
        std::fs::write(&file, bytes).unwrap();
        let mut h = app(&data, Tab::Batch);
        open(&mut h, &dir, names.len());
        let s = status(&h);
        assert!(s.contains(expect), "{s}");
        assert!(s.contains("started clean"), "{s}");
        assert!(!file.exists() || std::fs::read(&file).unwrap() != bytes);
        let kept = std::fs::read_dir(&sessions)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| std::fs::read(p).unwrap() == bytes)
            .count();
        assert_eq!(kept, 1, "the old file is kept aside");
        assert!(
            h.state()
                .panels
                .batch
                .entries()
                .iter()
                .all(|e| !e.is_dirty())
        );
    }
}

#[test]
fn opening_another_folder_with_unsaved_captions_asks_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let other = tmp.path().join("other");
    copy_dir(&fixtures().join("encoder/images"), &other);
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    open(&mut h, &dir, names.len());
    h.state_mut().panels.batch.edit_caption(0, "mine");
    drop_files(&mut h, std::slice::from_ref(&other));
    h.step();
    assert!(matches!(
        h.state().panels.batch.asking(),
        Some(Ask::Unsaved { count: 1, .. })
    ));
    h.get_by_label("Save them").click();
    wait_until(&mut h, 30, "the other folder", |a| {
        a.panels.batch.session().and_then(|s| s.root.as_deref()) == Some(other.as_path())
            && !a.panels.batch.is_listing()
    });
    assert_eq!(
        std::fs::read_to_string(txt(&dir, &names[0])).unwrap(),
        "mine\n"
    );
    // A new folder starts at the top, with its first photo selected.
    assert_eq!(h.state().panels.batch.selected(), Some(0));

    // Scrolled to the end of one folder, the next one still opens at the top.
    h.set_size(egui::vec2(800.0, 500.0));
    drop_files(&mut h, std::slice::from_ref(&dir));
    wait_until(&mut h, 30, "the first folder again", |a| {
        a.panels.batch.entries().len() == names.len() && !a.panels.batch.is_listing()
    });
    h.key_press(Key::End);
    h.step();
    h.step();
    assert!(
        h.state().panels.batch.grid_scroll() > 0.0,
        "End scrolls down"
    );
    drop_files(&mut h, std::slice::from_ref(&other));
    wait_until(&mut h, 30, "the other folder", |a| {
        a.panels.batch.session().and_then(|s| s.root.as_deref()) == Some(other.as_path())
            && !a.panels.batch.is_listing()
    });
    h.step();
    assert_eq!(h.state().panels.batch.grid_scroll(), 0.0);
}

#[test]
fn photos_that_vanish_or_change_while_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    open(&mut h, &dir, names.len());
    h.state_mut().panels.batch.edit_caption(0, "kept after all");
    std::fs::remove_file(dir.join(&names[0])).unwrap();
    let changed = dir.join(&names[1]);
    let mut bytes = std::fs::read(&changed).unwrap();
    bytes.extend_from_slice(b"more");
    std::fs::write(&changed, bytes).unwrap();
    h.get_by_label("Rescan").click();
    wait_until(&mut h, 30, "the rescan", |a| {
        a.panels.batch.entries()[0].photo == Photo::Missing
    });
    let e = h.state().panels.batch.entries();
    assert_eq!(e[0].cell.caption, "kept after all");
    assert_eq!(e[1].photo, Photo::Changed);
    assert!(status(&h).contains("1 gone, 1 changed"), "{}", status(&h));
    // Saving does not recreate a sidecar for a photo that is gone.
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    h.step();
    assert!(!txt(&dir, &names[0]).exists());
    assert!(
        h.state()
            .panels
            .batch
            .last_report()
            .is_some_and(|r| r.contains("1 photo gone"))
    );
}

#[test]
fn without_a_file_dialog_service_paths_are_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    h.state_mut()
        .panels
        .batch
        .set_dialog_service(Some(Err("no file-dialog service (test)".into())));
    h.step();
    h.get_by_label("Browse…").click();
    h.step();
    h.step();
    assert_eq!(
        h.state().panels.batch.typed_path_reason(),
        Some("no file-dialog service (test)")
    );
    let why =
        "No file dialog is available here (no file-dialog service (test)). Type the path instead.";
    assert!(h.query_all_by_value(why).count() > 0, "the reason is shown");
    let path = text_box(&h, "Path");
    path.focus();
    path.type_text(&dir.display().to_string());
    h.step();
    h.get_by_label("OK").click();
    wait_until(&mut h, 30, "the folder", |a| {
        a.panels.batch.entries().len() == names.len()
    });
    assert!(h.state().panels.batch.typed_path_reason().is_none());
}

/// A typed export path (no file dialog) asks before replacing a file, and refuses a folder
/// and a photo: the file and the photo are left as they were.
#[test]
fn typed_export_paths_ask_before_replacing_and_never_write_over_a_photo() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    std::fs::write(txt(&dir, &names[1]), "a dog on the grass").unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    open(&mut h, &dir, names.len());
    h.state_mut()
        .panels
        .batch
        .set_dialog_service(Some(Err("no file-dialog service (test)".into())));
    let existing = tmp.path().join("exist.json");
    std::fs::write(&existing, "keep me").unwrap();
    let photo = dir.join(&names[0]);
    let photo_bytes = std::fs::read(&photo).unwrap();
    let type_path = |h: &mut Harness<'static, CaptionerApp>, p: &Path| {
        text_box(h, "Path").focus();
        h.step();
        // Empty the box, then type the path.
        let typed = text_box(h, "Path").value().unwrap_or_default();
        h.key_press(Key::End);
        for _ in typed.chars() {
            h.key_press(Key::Backspace);
        }
        h.step();
        text_box(h, "Path").type_text(&p.display().to_string());
        h.step();
        assert_eq!(
            text_box(h, "Path").value().as_deref(),
            Some(p.display().to_string().as_str())
        );
        h.get_by_label("OK").click();
        h.step();
        h.step();
    };
    h.get_by_label("Export JSON…").click();
    h.step();
    h.step();
    assert!(h.state().panels.batch.typed_path_reason().is_some());

    // A photo of the folder: refused, the prompt stays, the photo is unchanged.
    type_path(&mut h, &photo);
    assert!(
        h.query(egui_kittest::kittest::By::new().label_contains("never write over a photo"))
            .is_some()
    );
    assert!(h.state().panels.batch.typed_path_reason().is_some());
    // The folder itself: refused.
    type_path(&mut h, &dir);
    assert!(
        h.query(egui_kittest::kittest::By::new().label_contains("is a folder"))
            .is_some()
    );
    // An existing file: asked first; "Keep it" leaves it.
    type_path(&mut h, &existing);
    assert!(
        h.query(egui_kittest::kittest::By::new().label_contains("already exists. Replace it?"))
            .is_some()
    );
    h.get_by_label("Keep it").click();
    h.step();
    h.step();
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
    // Asked again, "Replace" writes it.
    h.get_by_label("OK").click();
    h.step();
    h.step();
    h.get_by_label("Replace").click();
    wait_until(&mut h, 30, "the export", |_| {
        std::fs::read_to_string(&existing).is_ok_and(|t| t.starts_with('[') || t.starts_with('{'))
    });
    assert!(h.state().panels.batch.typed_path_reason().is_none());
    assert_eq!(std::fs::read(&photo).unwrap(), photo_bytes);
}

/// Every toolbar control is inside the window, and no grid cell spills past its right edge,
/// at 800x500 and at the 640-pixel minimum width.
#[test]
fn small_window_keeps_every_toolbar_control_reachable() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = photos(tmp.path());
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    open(&mut h, &dir, names.len());
    h.state_mut().panels.batch.settings.thumb_side = 256.0;
    for size in [egui::vec2(800.0, 500.0), egui::vec2(640.0, 480.0)] {
        h.set_size(size);
        h.run_ok();
        h.step();
        let window = egui::Rect::from_min_size(egui::Pos2::ZERO, size);
        for label in [
            "Folder",
            "Browse…",
            "Open",
            "Recent",
            "Rescan",
            "Model",
            "Decoding",
            &format!("Caption {}", names.len()),
            "Replace all…",
            "Save 0",
            "Undo",
            "Redo",
            "Export CSV…",
            "Export JSON…",
            "Alt text",
            "Photo metadata",
            "Train on this folder…",
            "Size",
            "Search",
            "Show",
            "Sort",
            "Find",
            "with",
            "Tag list",
            "Replace in 0",
        ] {
            for node in h.get_all_by_label(label) {
                let r = node.rect();
                assert!(
                    window.contains_rect(r),
                    "{label} at {r:?} is outside the {size:?} window"
                );
            }
        }
        // The decoding options are in the Decoding menu in a small window.
        h.get_by_label("Decoding").click();
        h.run_ok();
        for label in ["Beam", "Words min", "max", "Prefix", "Suffix"] {
            for node in h.get_all_by_label(label) {
                let r = node.rect();
                assert!(
                    window.contains_rect(r),
                    "{label} at {r:?} is outside the {size:?} window"
                );
            }
        }
        h.key_press(Key::Escape);
        h.run_ok();
        let grid_right = text_box(&h, "Selected caption").rect().min.x;
        let cells = h.query_all_by_label_contains("(uncaptioned)").count();
        assert!(cells >= 1, "at least one photo shows at {size:?}");
        for n in h.query_all_by_label_contains("(uncaptioned)") {
            assert!(
                n.rect().max.x <= grid_right + 1.0,
                "cell at {:?} overlaps the preview at {size:?}",
                n.rect()
            );
        }
    }
}

/// The Decoding menu holds the search options the command line has (n-gram blocking, length
/// exponent) and puts them back to the library's defaults; a run takes them from the settings.
#[test]
fn the_decoding_menu_reaches_every_search_option() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    h.run_ok();
    let defaults = captioner::decoder::SearchOptions::default();
    {
        let search = &mut h.state_mut().panels.batch.settings.search;
        search.block_ngram = 4;
        search.length_alpha = 0.25;
    }
    let decode = h.state().panels.batch.settings.folder_options().decode;
    assert_eq!(decode.search.block_ngram, 4);
    assert_eq!(decode.search.length_alpha, 0.25);
    h.get_by_label("Decoding").click();
    h.run_ok();
    assert!(h.query_by_label("Block repeated n-grams").is_some());
    assert!(h.query_by_label("Length exponent").is_some());
    // Grounded decoding is on by default; the checkbox turns it off for the run's options.
    use captioner::pipeline::Grounding;
    assert_eq!(h.state().panels.batch.settings.grounding, Grounding::On);
    h.get_by_label("Grounded decoding").click();
    h.run_ok();
    assert_eq!(h.state().panels.batch.settings.grounding, Grounding::Off);
    assert_eq!(
        h.state()
            .panels
            .batch
            .settings
            .folder_options()
            .decode
            .grounding,
        Grounding::Off
    );
    if h.query_by_label("Library defaults").is_none() {
        // The click closed the menu: open it again.
        h.get_by_label("Decoding").click();
        h.run_ok();
    }
    h.get_by_label("Library defaults").click();
    h.run_ok();
    assert_eq!(h.state().panels.batch.settings.search, defaults);
    assert_eq!(h.state().panels.batch.settings.grounding, Grounding::On);
}

/// A photo that cannot be read says why in the preview as soon as it is selected, before
/// anyone presses Caption (issue 30 item 7).
#[test]
fn an_unreadable_photo_says_why_before_captioning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("photos");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken.jpg"), b"this is not a JPEG").unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    h.step();
    open(&mut h, &dir, 1);
    assert_eq!(h.state().panels.batch.selected(), Some(0));
    let mut shown = false;
    for _ in 0..2000 {
        h.step();
        if h.query_by_label_contains("Cannot show this photo: ")
            .is_some()
        {
            shown = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(shown, "the preview says why the photo cannot be shown");
    let node = h.get_by_label_contains("Cannot show this photo: ");
    let n = node.accesskit_node();
    let text = n.label().or(n.value()).unwrap_or_default();
    assert!(text.contains("broken.jpg"), "{text}");
}
