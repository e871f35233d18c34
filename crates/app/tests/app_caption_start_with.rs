//! "Start with" in the Caption panel (the caption continues from the typed words; changing
//! them captions the photo again; empty is the model's own caption) and in the Batch panel's
//! settings (put into the run's options).

mod app_support;

use app_support::{app, drop_files, fixtures, wait_until};
use captioner_app::{CaptionerApp, Tab};
use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

fn text_box<'a>(h: &'a Harness<'static, CaptionerApp>, label: &'a str) -> egui_kittest::Node<'a> {
    h.get_all_by_label(label)
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::TextInput)
        .unwrap_or_else(|| panic!("no text box labelled {label}"))
}

fn caption_text(a: &CaptionerApp) -> Option<String> {
    a.panels.caption.shown().map(|s| s.output.text.clone())
}

#[test]
fn the_caption_panel_continues_from_the_typed_words() {
    let tmp = tempfile::tempdir().unwrap();
    let dog = fixtures().join("encoder/images/246231741_882b45c4e1.jpg");
    let mut h = app(&tmp.path().join("data"), Tab::Caption);
    drop_files(&mut h, std::slice::from_ref(&dog));
    wait_until(&mut h, 60, "the caption", |a| {
        a.panels.caption.shown().is_some() || a.panels.caption.error().is_some()
    });
    let plain = caption_text(h.state()).unwrap();
    assert!(!plain.starts_with("a cat"), "{plain}");

    text_box(&h, "Start with").click();
    h.step();
    text_box(&h, "Start with").type_text("a cat");
    h.step();
    // Typing alone does not caption again; Enter does.
    assert!(!h.state().panels.caption.is_busy());
    h.key_press(Key::Enter);
    h.step();
    wait_until(&mut h, 60, "the caption starting with the words", |a| {
        caption_text(a).is_some_and(|t| t.starts_with("a cat "))
    });
    let shown = h.state().panels.caption.shown().unwrap();
    assert_eq!(shown.output.given_words, 2);
    assert!(
        shown
            .output
            .alternatives
            .iter()
            .all(|a| a.text.starts_with("a cat "))
    );

    // Emptied: the model's own caption again.
    h.state_mut().panels.caption.start_with.clear();
    text_box(&h, "Start with").click();
    h.step();
    h.key_press(Key::Enter);
    h.step();
    wait_until(&mut h, 60, "the plain caption", |a| {
        caption_text(a).as_deref() == Some(plain.as_str())
    });
    assert_eq!(
        h.state().panels.caption.shown().unwrap().output.given_words,
        0
    );
}

#[test]
fn the_batch_panel_start_goes_into_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    h.step();
    text_box(&h, "Start with").click();
    h.step();
    text_box(&h, "Start with").type_text("two dogs");
    h.step();
    let settings = &h.state().panels.batch.settings;
    assert_eq!(settings.start_with, "two dogs");
    assert_eq!(settings.folder_options().decode.start_with, "two dogs");
}
