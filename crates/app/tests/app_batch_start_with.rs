//! "Start with" for one photo in the Batch panel's preview: the selected photo is captioned
//! again starting with the typed words (the other photos keep theirs), the user's own caption
//! is replaced only after the question, and Ctrl+Z brings the old caption back.

mod app_support;

use app_support::{app, copy_dir, drop_files, fixtures, wait_until};
use captioner_app::batch::Ask;
use captioner_app::batch::session::Source;
use captioner_app::{CaptionerApp, Tab};
use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

/// The text box labelled `label` whose id salt is not the toolbar's (the preview's box comes
/// after the toolbar's in the tree, so the last one).
fn last_text_box<'a>(
    h: &'a Harness<'static, CaptionerApp>,
    label: &'a str,
) -> egui_kittest::Node<'a> {
    h.get_all_by_label(label)
        .rfind(|n| n.accesskit_node().role() == egui::accesskit::Role::TextInput)
        .unwrap_or_else(|| panic!("no text box labelled {label}"))
}

#[test]
fn one_photo_is_captioned_again_from_the_typed_words() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    copy_dir(&fixtures().join("encoder/images"), &photos);
    let n = std::fs::read_dir(&photos).unwrap().count();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    drop_files(&mut h, std::slice::from_ref(&photos));
    wait_until(&mut h, 30, "the folder listing", |a| {
        a.panels.batch.entries().len() == n && !a.panels.batch.is_listing()
    });
    h.get_by_label(&format!("Caption {n}")).click();
    wait_until(&mut h, 180, "the batch", |a| {
        !a.panels.batch.is_running() && a.panels.batch.entries().iter().all(|e| e.has_caption())
    });
    let before: Vec<String> = h
        .state()
        .panels
        .batch
        .entries()
        .iter()
        .map(|e| e.cell.caption.clone())
        .collect();
    assert!(
        before.iter().all(|c| !c.starts_with("a cat ")),
        "{before:?}"
    );

    // The second photo: its own caption, then "a cat" in the preview's box and Enter.
    h.state_mut().panels.batch.select(1);
    h.state_mut()
        .panels
        .batch
        .edit_caption(1, "my own words for it");
    h.step();
    last_text_box(&h, "Start with").click();
    h.step();
    last_text_box(&h, "Start with").type_text("a cat");
    h.step();
    // The toolbar's box, the folder's setting, is left as it was.
    assert_eq!(h.state().panels.batch.settings.start_with, "");
    h.key_press(Key::Enter);
    h.step();
    h.step();
    // The user's caption is not replaced without a question.
    assert_eq!(
        h.state().panels.batch.asking(),
        Some(&Ask::ReplaceSelected {
            photos: vec![1],
            captions: 1,
            start_with: Some("a cat".into()),
        })
    );
    assert_eq!(
        h.state().panels.batch.entries()[1].cell.caption,
        "my own words for it"
    );
    h.get_by_label("Replace 1 caption").click();
    wait_until(&mut h, 120, "the caption starting with the words", |a| {
        !a.panels.batch.is_running()
            && a.panels.batch.entries()[1]
                .cell
                .caption
                .starts_with("a cat ")
    });
    let e = h.state().panels.batch.entries().to_vec();
    assert_eq!(e[1].cell.source, Source::Machine);
    assert!(
        e[1].cell
            .alternatives
            .iter()
            .all(|a| a.starts_with("a cat ")),
        "{:?}",
        e[1].cell.alternatives
    );
    // Only the selected photo changed.
    for (i, x) in e.iter().enumerate().filter(|&(i, _)| i != 1) {
        assert_eq!(x.cell.caption, before[i], "{}", x.name);
    }

    // Ctrl+Z: the user's words again.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    let e1 = &h.state().panels.batch.entries()[1];
    assert_eq!(e1.cell.caption, "my own words for it");
    assert_eq!(e1.cell.source, Source::Edited);
}
