//! The Caption panel: the caption can be edited before Copy or Save (the edit is what is
//! saved, marked as the user's); Save of a caption flagged for review asks first; the
//! alternatives show their share of the beam, not a "100%" beside a low confidence; "Open
//! image…" without a file-dialog service asks for a typed path and says why; a pasted path
//! captions its photo.

mod app_support;

use app_support::{app, drop_files, fixtures, status, wait_until};
use captioner_app::caption::beam_shares;
use captioner_app::{CaptionerApp, Tab};
use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use std::path::PathBuf;

fn text_box<'a>(h: &'a Harness<'static, CaptionerApp>, label: &'a str) -> egui_kittest::Node<'a> {
    h.get_all_by_label(label)
        .find(|n| {
            matches!(
                n.accesskit_node().role(),
                egui::accesskit::Role::TextInput | egui::accesskit::Role::MultilineTextInput
            )
        })
        .unwrap_or_else(|| panic!("no text box labelled {label}"))
}

/// A copy of the dog photo in a folder of its own, and the app with it captioned.
fn captioned(tmp: &std::path::Path, beam: usize) -> (Harness<'static, CaptionerApp>, PathBuf) {
    let photos = tmp.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let dog = photos.join("dog.jpg");
    std::fs::copy(
        fixtures().join("encoder/images/246231741_882b45c4e1.jpg"),
        &dog,
    )
    .unwrap();
    let mut h = app(&tmp.join("data"), Tab::Caption);
    h.state_mut().panels.caption.beam = beam;
    drop_files(&mut h, std::slice::from_ref(&dog));
    wait_until(&mut h, 60, "the caption", |a| {
        a.panels.caption.shown().is_some() || a.panels.caption.error().is_some()
    });
    assert_eq!(h.state().panels.caption.error(), None);
    (h, photos)
}

#[test]
fn shares_of_the_beam_make_100_percent() {
    let s = beam_shares(&[-1.0, -1.0 - std::f32::consts::LN_2]);
    assert!(
        (s[0] - 66.667).abs() < 1e-2 && (s[1] - 33.333).abs() < 1e-2,
        "{s:?}"
    );
    let s = beam_shares(&[-0.9, -1.0, -1.05]);
    assert!((s.iter().sum::<f32>() - 100.0).abs() < 1e-3);
    assert!(s[0] < 40.0, "three close captions share the beam: {s:?}");
    assert_eq!(beam_shares(&[-2.0]), vec![100.0]);
    assert_eq!(beam_shares(&[]), Vec::<f32>::new());
}

#[test]
fn alternatives_show_their_share_not_100_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = captioned(tmp.path(), 4);
    let shown = h.state().panels.caption.shown().unwrap();
    assert!(shown.output.alternatives.len() >= 2);
    assert!(h.get_all_by_label("share of the beam").count() == 1);
    assert_eq!(
        h.query_all_by_label("100%").count(),
        0,
        "no caption is 100%"
    );
    let scores: Vec<f32> = shown.output.alternatives.iter().map(|a| a.score).collect();
    let best = format!("{:.0}%", beam_shares(&scores)[0]);
    assert!(h.get_all_by_label(&best).count() >= 1, "{best}");
}

#[test]
fn an_edited_caption_is_what_is_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut h, photos) = captioned(tmp.path(), 3);
    let machine = h
        .state()
        .panels
        .caption
        .shown()
        .unwrap()
        .caption()
        .to_string();
    h.get_by_label("Edit caption").click();
    h.step();
    h.step();
    assert!(h.state().panels.caption.is_editing());
    text_box(&h, "Caption text").click();
    h.step();
    // Select all and type the new caption.
    let want = format!("{machine} at dusk");
    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::A);
    h.step();
    text_box(&h, "Caption text").type_text(&want);
    h.step();
    let shown = h.state().panels.caption.shown().unwrap();
    assert_eq!(shown.caption(), want);
    assert!(shown.edited.is_some());
    h.get_by_label("Done").click();
    h.step();
    h.step();
    assert!(!h.state().panels.caption.is_editing());
    assert!(h.get_all_by_label_contains("Edited by you").count() >= 1);
    h.get_by_label("Save caption").click();
    h.step();
    assert_eq!(
        std::fs::read_to_string(photos.join("dog.txt")).unwrap(),
        format!("{want}\n")
    );
    // Taking an alternative drops the edit.
    h.state_mut().panels.caption.choose_alternative(0);
    assert_eq!(h.state().panels.caption.shown().unwrap().caption(), machine);
}

#[test]
fn saving_a_caption_flagged_for_review_asks_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut h, photos) = captioned(tmp.path(), 3);
    let sidecar = photos.join("dog.txt");
    h.state_mut()
        .panels
        .caption
        .shown_mut()
        .unwrap()
        .output
        .needs_review = Some(true);
    h.step();
    h.get_by_label("Save caption").click();
    h.step();
    h.step();
    assert!(!sidecar.exists(), "nothing is saved before the answer");
    assert!(h.state().panels.caption.is_confirming_save());
    h.get_by_label("Cancel").click();
    h.step();
    h.step();
    assert!(!sidecar.exists());
    assert!(!h.state().panels.caption.is_confirming_save());
    h.get_by_label("Save caption").click();
    h.step();
    h.step();
    h.get_by_label("Save anyway").click();
    h.step();
    assert!(sidecar.exists());
    assert!(status(&h).contains("flagged for review"), "{}", status(&h));
}

#[test]
fn open_image_without_a_file_dialog_asks_for_a_typed_path() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Caption);
    h.state_mut()
        .panels
        .caption
        .set_dialog_service(Some(Err("no file-dialog service: none here".into())));
    h.step();
    h.get_by_label("Open image…").click();
    h.step();
    h.step();
    assert_eq!(
        h.state().panels.caption.typed_path_reason(),
        Some("no file-dialog service: none here")
    );
    assert!(
        status(&h).contains("type the path instead"),
        "{}",
        status(&h)
    );
    h.step();
    // The path box has the keyboard: a newcomer just types.
    assert!(
        text_box(&h, "Path").is_focused(),
        "the path box has the keyboard"
    );
    // Not a photo: the prompt stays open and says why.
    text_box(&h, "Path").click();
    h.step();
    text_box(&h, "Path").type_text(&fixtures().join("no-such.jpg").display().to_string());
    h.step();
    h.get_by_label("OK").click();
    h.step();
    h.step();
    assert!(h.state().panels.caption.typed_path_reason().is_some());
    assert!(h.get_all_by_label_contains("is not a file").count() >= 1);
    h.state_mut().panels.caption.set_dialog_service(None);
    // A photo: captioned.
    let dog = fixtures().join("encoder/images/246231741_882b45c4e1.jpg");
    text_box(&h, "Path").click();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::A);
    h.step();
    text_box(&h, "Path").type_text(&dog.display().to_string());
    h.step();
    h.get_by_label("OK").click();
    h.step();
    wait_until(&mut h, 60, "the typed photo's caption", |a| {
        a.panels.caption.shown().is_some()
    });
    assert_eq!(h.state().panels.caption.typed_path_reason(), None);
    assert_eq!(
        h.state().panels.caption.shown().unwrap().source,
        dog.display().to_string()
    );
}

#[test]
fn a_pasted_path_captions_its_photo_and_the_hint_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Caption);
    h.step();
    assert!(h.get_all_by_label_contains("or its path").count() >= 1);
    let dog = fixtures().join("encoder/images/246231741_882b45c4e1.jpg");
    h.input_mut()
        .events
        .push(egui::Event::Paste(dog.display().to_string()));
    h.step();
    wait_until(&mut h, 60, "the pasted path's caption", |a| {
        a.panels.caption.shown().is_some()
    });
    assert_eq!(
        h.state().panels.caption.shown().unwrap().source,
        dog.display().to_string()
    );
}
