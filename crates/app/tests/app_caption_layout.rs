//! The Caption panel in a small window (issue 29, point 11): at 800x500 every alternative and
//! every per-word attention map stays inside the window (they wrap instead of running off the
//! right edge).

mod app_support;

use app_support::{app, drop_files, fixtures, wait_until};
use captioner_app::{CaptionerApp, Tab};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};

/// The Caption panel (at `size`, else the harness's) with a dog photo captioned.
fn captioned_dog(
    tmp: &std::path::Path,
    size: Option<egui::Vec2>,
) -> Harness<'static, CaptionerApp> {
    let photos = tmp.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let dog = photos.join("dog.jpg");
    std::fs::copy(
        fixtures().join("encoder/images/246231741_882b45c4e1.jpg"),
        &dog,
    )
    .unwrap();
    let mut h = app(&tmp.join("data"), Tab::Caption);
    if let Some(size) = size {
        h.set_size(size);
    }
    drop_files(&mut h, std::slice::from_ref(&dog));
    wait_until(&mut h, 60, "the caption", |a| {
        a.panels.caption.shown().is_some() || a.panels.caption.error().is_some()
    });
    assert_eq!(h.state().panels.caption.error(), None);
    h.run_ok();
    h
}

#[test]
fn at_800x500_the_alternatives_and_word_maps_stay_inside_the_window() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = captioned_dog(tmp.path(), Some(egui::vec2(800.0, 500.0)));
    h.step();
    let shown = h.state().panels.caption.shown().unwrap();
    let alternatives: Vec<String> = shown
        .output
        .alternatives
        .iter()
        .map(|a| a.text.clone())
        .collect();
    let words = shown.output.words.len();
    assert!(alternatives.len() >= 2);
    for text in &alternatives {
        for node in h.get_all_by_label(text) {
            let r = node.rect();
            assert!(r.max.x <= 800.5, "\"{text}\" runs to x = {}", r.max.x);
        }
    }
    let maps: Vec<egui::Rect> = h
        .get_all_by_label_contains("attention map of")
        .map(|n| n.rect())
        .collect();
    assert_eq!(maps.len(), words, "one map per word");
    // ... and inside the photo's column, left of the caption's buttons.
    let buttons = h.get_by_label("Copy caption").rect().min.x;
    for r in maps {
        assert!(r.max.x <= 800.5, "a word map runs to x = {}", r.max.x);
        assert!(
            r.max.x < buttons,
            "a word map (to x = {}) reaches into the caption's column (from x = {buttons})",
            r.max.x
        );
    }
}

/// Ctrl+1 to Ctrl+5 go to the tabs from the keyboard (issue 29, point 9: the Caption panel
/// was about 18 Tab stops away), even while a text box has the keyboard.
#[test]
fn ctrl_and_a_digit_go_to_each_tab() {
    use egui::{Key, Modifiers};
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    h.step();
    let tab = |h: &Harness<'static, CaptionerApp>| h.state().panels.tab;
    for (key, want) in [
        (Key::Num4, Tab::Caption),
        (Key::Num1, Tab::Dataset),
        (Key::Num2, Tab::Train),
        (Key::Num3, Tab::Models),
        (Key::Num5, Tab::Batch),
    ] {
        h.key_press_modifiers(Modifiers::COMMAND, key);
        h.step();
        assert_eq!(tab(&h), want);
    }
    // From inside the Batch panel's Folder box too.
    h.get_all_by_label("Folder")
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::TextInput)
        .expect("the Folder box")
        .focus();
    h.step();
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num4);
    h.step();
    assert_eq!(tab(&h), Tab::Caption);
}

/// A caption word's hover text opens above the word, so it does not cover Copy and Save under
/// the caption (issue 29, point 11).
#[test]
fn a_words_hover_text_leaves_copy_and_save_visible() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = captioned_dog(tmp.path(), None);
    let word = h.state().panels.caption.shown().unwrap().output.words[0]
        .word
        .clone();
    let copy = h.get_by_label("Copy caption").rect();
    let save = h.get_by_label("Save caption").rect();
    // The first word of the caption (the largest text; its label is the word alone).
    let word_rect = h
        .get_all_by_label(&word)
        .map(|n| n.rect())
        .max_by(|a, b| a.height().total_cmp(&b.height()))
        .expect("the caption's first word");
    h.hover_at(word_rect.center());
    let mut tip = None;
    for _ in 0..200 {
        h.step();
        if let Some(n) = h.query_by_label_contains("p = 0.") {
            tip = Some(n.rect());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let tip = tip.expect("the word's hover text opens");
    assert!(
        tip.max.y <= word_rect.min.y + 1.0,
        "the hover text {tip:?} must open above the word {word_rect:?}"
    );
    assert!(!tip.intersects(copy) && !tip.intersects(save), "{tip:?}");
}
