//! The Batch panel with the shipped model: "Caption" fills only photos without a caption, so
//! existing and edited captions survive it; "Replace all…" asks with the number of captions it
//! replaces, and Ctrl+Z brings them back.

mod app_support;

use app_support::{app, copy_dir, drop_files, fixtures, wait_until};
use captioner_app::Tab;
use captioner_app::batch::Ask;
use captioner_app::batch::session::Source;
use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;

#[test]
fn edits_survive_caption_and_replacing_them_asks_and_undoes() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    copy_dir(&fixtures().join("encoder/images"), &photos);
    let mut names: Vec<String> = std::fs::read_dir(&photos)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let n = names.len();
    std::fs::write(
        photos.join(names[0].replace(".jpg", ".txt")),
        "my own caption\n",
    )
    .unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    drop_files(&mut h, std::slice::from_ref(&photos));
    wait_until(&mut h, 30, "the folder listing", |a| {
        a.panels.batch.entries().len() == n
    });
    h.state_mut()
        .panels
        .batch
        .edit_caption(1, "a hand written caption");
    // A trigger word before, and a word after, every new machine caption.
    h.state_mut().panels.batch.settings.prefix = "sks,".into();
    h.state_mut().panels.batch.settings.suffix = "(auto)".into();
    h.step();

    h.get_by_label(&format!("Caption {}", n - 2)).click();
    wait_until(&mut h, 180, "the batch", |a| {
        !a.panels.batch.is_running() && a.panels.batch.entries().iter().all(|e| e.has_caption())
    });
    let e = h.state().panels.batch.entries().to_vec();
    assert_eq!(e[0].cell.caption, "my own caption");
    assert_eq!(e[0].cell.source, Source::Existing);
    assert_eq!(e[1].cell.caption, "a hand written caption");
    assert_eq!(e[1].cell.source, Source::Edited);
    for x in &e[2..] {
        assert_eq!(x.cell.source, Source::Machine, "{}", x.name);
        assert!(x.cell.confidence.is_some());
        assert!(!x.cell.alternatives.is_empty());
        for c in std::iter::once(&x.cell.caption).chain(&x.cell.alternatives) {
            assert!(c.starts_with("sks, ") && c.ends_with(" (auto)"), "{c}");
        }
    }
    // Nothing is written to disk until Save.
    assert!(!photos.join(names[1].replace(".jpg", ".txt")).exists());

    // Replacing asks, with the count.
    h.get_by_label("Replace all…").click();
    h.step();
    h.step();
    assert_eq!(h.state().panels.batch.asking(), Some(&Ask::Replace(n)));
    h.get_by_label("Cancel").click();
    h.step();
    assert!(h.state().panels.batch.asking().is_none());
    assert_eq!(
        h.state().panels.batch.entries()[1].cell.caption,
        "a hand written caption"
    );
    h.get_by_label("Replace all…").click();
    h.step();
    h.step();
    h.get_by_label(&format!("Replace {n} captions")).click();
    wait_until(&mut h, 180, "the second batch", |a| {
        !a.panels.batch.is_running()
            && a.panels
                .batch
                .entries()
                .iter()
                .all(|e| e.cell.source == Source::Machine)
    });
    // One Ctrl+Z undoes the whole run.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    let e = h.state().panels.batch.entries().to_vec();
    assert_eq!(e[0].cell.caption, "my own caption");
    assert_eq!(e[0].cell.source, Source::Existing);
    assert_eq!(e[1].cell.caption, "a hand written caption");
    assert_eq!(e[1].cell.source, Source::Edited);

    // Number keys take a beam alternative of the selected photo.
    h.state_mut().panels.batch.select(2);
    h.step();
    let alts = h.state().panels.batch.entries()[2]
        .cell
        .alternatives
        .clone();
    assert!(alts.len() >= 2, "beam 3 gives alternatives: {alts:?}");
    h.key_press(Key::Num2);
    h.step();
    assert_eq!(h.state().panels.batch.entries()[2].cell.caption, alts[1]);
    assert_eq!(
        h.state().panels.batch.entries()[2].cell.source,
        Source::Edited
    );
}
