//! The Batch panel, driven headlessly: open a folder, edit captions in place, export sidecars
//! (asking before overwriting), CSV and JSON. Everything is written to a temporary copy of the
//! fixtures.

mod app_support;

use app_support::{app, copy_dir, drop_files, fixtures, wait_until};
use captioner::app::Tab;
use egui_kittest::kittest::{NodeT, Queryable};

#[test]
fn edit_and_export_without_overwriting() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    copy_dir(&fixtures().join("flickr8k_mini/Flicker8k_Dataset"), &photos);
    let names: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&photos)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    // One photo already has a sidecar, which must survive a "skip" export.
    let existing = photos.join(names[0].replace(".jpg", ".txt"));
    std::fs::write(&existing, "my own caption\n").unwrap();

    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    drop_files(&mut h, std::slice::from_ref(&photos));
    wait_until(&mut h, 30, "the folder listing", |a| {
        !a.panels.batch.items().is_empty()
    });
    assert_eq!(h.state().panels.batch.items().len(), names.len());

    // Type a caption into the first cell.
    h.state_mut()
        .panels
        .batch
        .edit_caption(1, "a hand written caption");
    h.step();
    let edit = h
        .get_all_by_value("a hand written caption")
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::MultilineTextInput)
        .unwrap();
    edit.focus();
    edit.type_text(" here");
    h.step();
    h.step();
    assert_eq!(
        h.state().panels.batch.items()[1].caption,
        "a hand written caption here"
    );
    h.state_mut()
        .panels
        .batch
        .edit_caption(0, "replacement for the existing file");

    h.get_by_label("Export .txt sidecars").click();
    wait_until(&mut h, 30, "the overwrite question", |a| {
        a.panels.batch.asking_overwrite().is_some()
    });
    assert_eq!(h.state().panels.batch.asking_overwrite(), Some(1));
    h.get_by_label("Skip existing").click();
    wait_until(&mut h, 30, "the export", |a| {
        a.panels.batch.last_report().is_some()
    });
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        "my own caption\n"
    );
    let second = photos.join(names[1].replace(".jpg", ".txt"));
    assert_eq!(
        std::fs::read_to_string(&second).unwrap(),
        "a hand written caption here\n"
    );

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
        csv.starts_with("image,caption,confidence,edited\n"),
        "{csv}"
    );
    assert!(csv.contains("a hand written caption here"));
    let json_path = tmp.path().join("out/captions.json");
    {
        let app = h.state_mut();
        app.panels
            .batch
            .export_json(json_path.clone(), &mut app.shared);
    }
    wait_until(&mut h, 30, "the JSON", |_| json_path.exists());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
}
