//! The Batch panel's tags and undo with the shipped model: a machine caption's tags are the
//! image classifier's and its words; editing the caption takes the edited caption's words
//! (the classifier's stay) into the tags the preview shows and the exports write; taking an
//! alternative (key 2), accepting it (Enter) and undoing brings back the whole earlier state,
//! the review mark included.

mod app_support;

use app_support::{app, copy_dir, drop_files, fixtures, wait_until};
use captioner_app::Tab;
use captioner_app::batch::session::{Source, caption_tags};
use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;

#[test]
fn tags_follow_the_edited_caption_and_undo_restores_the_review_mark() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    copy_dir(&fixtures().join("encoder/images"), &photos);
    let mut names: Vec<String> = std::fs::read_dir(&photos)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let n = names.len();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    drop_files(&mut h, std::slice::from_ref(&photos));
    wait_until(&mut h, 30, "the folder listing", |a| {
        a.panels.batch.entries().len() == n
    });
    h.get_by_label(&format!("Caption {n}")).click();
    wait_until(&mut h, 180, "the batch", |a| {
        !a.panels.batch.is_running() && a.panels.batch.entries().iter().all(|e| e.has_caption())
    });
    let entries = h.state().panels.batch.entries().to_vec();
    for e in &entries {
        assert_eq!(e.cell.source, Source::Machine);
        let classifier = e
            .cell
            .classifier_tags
            .clone()
            .expect("the classifier's tags");
        assert!(e.cell.tags.starts_with(&classifier), "{:?}", e.cell);
    }

    // Point 3: 2 takes the second alternative, Enter accepts it, Ctrl+Z undoes the accept
    // (the caption is the alternative, not reviewed), Ctrl+Z again the alternative.
    let i = entries
        .iter()
        .position(|e| e.cell.alternatives.len() >= 2)
        .expect("a photo with two alternatives");
    let before = entries[i].cell.clone();
    // A click on the photo (which also leaves no button with the keyboard).
    h.get_by_label_contains(&format!("{}: ", names[i])).click();
    h.step();
    assert_eq!(h.state().panels.batch.selected(), Some(i));
    h.key_press(Key::Num2);
    h.step();
    assert_eq!(
        h.state().panels.batch.entries()[i].cell.caption,
        before.alternatives[1]
    );
    h.key_press(Key::Enter);
    h.step();
    assert!(h.state().panels.batch.entries()[i].cell.reviewed);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    let undone = &h.state().panels.batch.entries()[i].cell;
    assert!(!undone.reviewed, "undo takes the review mark back");
    assert_eq!(undone.caption, before.alternatives[1]);
    assert_eq!(h.state().panels.batch.selected(), Some(i));
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(h.state().panels.batch.entries()[i].cell, before);

    // Point 2: an edited caption's words replace the old caption's in the tags; the
    // classifier's stay; the exports write what is shown.
    let new = "a man holds a surfboard on sand dunes";
    h.state_mut().panels.batch.edit_caption(i, new);
    h.step();
    let cell = h.state().panels.batch.entries()[i].cell.clone();
    let classifier = before.classifier_tags.clone().unwrap();
    let mut expected = classifier.clone();
    for w in caption_tags(new) {
        if !expected.contains(&w) {
            expected.push(w);
        }
    }
    assert_eq!(cell.tags, expected);
    for gone in caption_tags(&before.caption) {
        if !classifier.contains(&gone) && !caption_tags(new).contains(&gone) {
            assert!(!cell.tags.contains(&gone), "{gone} is still a tag");
        }
    }
    h.get_by_label("surfboard");
    let csv = tmp.path().join("captions.csv");
    {
        let app = h.state_mut();
        app.panels.batch.export_csv(csv.clone(), &mut app.shared);
    }
    wait_until(&mut h, 30, "the CSV", |a| {
        !a.panels.batch.is_exporting() && csv.exists()
    });
    let text = std::fs::read_to_string(&csv).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(new))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&expected.join(", ")), "{line}");
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
    let xmp = captioner::metadata::read_description(&photos.join(&names[i]))
        .unwrap()
        .expect("an XMP sidecar");
    assert_eq!(xmp.caption, new);
    assert_eq!(xmp.subjects, expected);

    // Two photos selected, captioned again: asked first (one is the user's), one undo step,
    // the photos not selected untouched.
    let (a, b) = (if i == 0 { 1 } else { 0 }, i);
    let other = (0..n).find(|&k| k != a && k != b).unwrap();
    h.state_mut()
        .panels
        .batch
        .edit_caption(other, "not selected");
    h.step();
    h.get_by_label_contains(&format!("{}: ", names[a])).click();
    h.step();
    h.get_by_label_contains(&format!("{}: ", names[b]))
        .click_modifiers(Modifiers::COMMAND);
    h.step();
    assert_eq!(h.state().panels.batch.marked().len(), 2);
    h.get_by_label("Caption again").click();
    h.step();
    h.step();
    assert!(matches!(
        h.state().panels.batch.asking(),
        Some(captioner_app::batch::Ask::ReplaceSelected { captions: 2, .. })
    ));
    h.get_by_label("Replace 2 captions").click();
    wait_until(&mut h, 180, "the selection's batch", |a| {
        !a.panels.batch.is_running()
    });
    let after = h.state().panels.batch.entries().to_vec();
    assert_eq!(
        after[b].cell.source,
        Source::Machine,
        "the edit was replaced"
    );
    assert_eq!(after[other].cell.caption, "not selected");
    let history = &h.state().panels.batch.session().unwrap().history;
    assert_eq!(history.next_undo(), Some("caption 2 selected photos again"));
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(h.state().panels.batch.entries()[b].cell.caption, new);
    assert_eq!(h.state().panels.batch.entries()[b].cell.tags, expected);
}
