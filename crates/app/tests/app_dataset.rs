//! The Dataset panel, driven headlessly: drop a dataset folder, see its summary and problems.

mod app_support;

use app_support::{app, drop_files, fixtures, wait_until};
use captioner_app::Tab;
use egui_kittest::kittest::Queryable;

#[test]
fn dropping_a_dataset_folder_imports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(tmp.path(), Tab::Caption);
    drop_files(&mut h, &[fixtures().join("flickr8k_mini")]);
    assert_eq!(h.state().panels.tab, Tab::Dataset);
    wait_until(&mut h, 60, "the import", |a| {
        a.panels.dataset.loaded().is_some()
    });
    let summary = &h.state().panels.dataset.loaded().unwrap().summary;
    assert_eq!(summary.images, 24);
    assert!(
        h.query_by_label_contains("Flickr8k (Flicker8k_Dataset")
            .is_some()
    );
    assert!(h.query_by_label("Caption lengths").is_some());
    // The image list shows reference captions.
    let first = &h.state().panels.dataset.loaded().unwrap().dataset.images[0];
    let caption = first.captions[0].clone();
    assert!(
        h.query_by_label(&caption).is_some(),
        "caption {caption:?} not shown"
    );
}

#[test]
fn problems_are_listed_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(tmp.path(), Tab::Dataset);
    let dir = fixtures().join("broken_flickr8k");
    h.state_mut().panels.dataset.folder = dir.display().to_string();
    h.step();
    h.get_by_label("Import").click();
    wait_until(&mut h, 60, "the import", |a| {
        a.panels.dataset.loaded().is_some()
    });
    let problems = &h.state().panels.dataset.loaded().unwrap().summary.problems;
    assert!(!problems.is_empty());
    let with_line = problems
        .iter()
        .find(|p| p.line.is_some())
        .unwrap()
        .to_string();
    assert!(with_line.contains("Flickr8k.token.txt:"), "{with_line}");
    assert!(
        h.query_by_label(&with_line).is_some(),
        "problem {with_line:?} not shown"
    );
}

#[test]
fn a_bad_folder_is_an_error_in_the_window() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(tmp.path(), Tab::Dataset);
    let missing = tmp.path().join("no-such-dataset");
    h.state_mut().panels.dataset.folder = missing.display().to_string();
    h.step();
    h.get_by_label("Import").click();
    wait_until(&mut h, 30, "the error", |a| {
        a.panels.dataset.error().is_some()
    });
    assert!(h.state().panels.dataset.loaded().is_none());
    // In the panel and on the status line.
    assert!(
        h.query_all_by_label_contains("no such file or folder")
            .count()
            >= 1
    );
}

#[test]
fn browse_without_a_file_dialog_asks_for_a_typed_path_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(tmp.path(), Tab::Dataset);
    let why = "no file-dialog service: neither xdg-desktop-portal nor zenity is installed";
    h.state_mut()
        .panels
        .dataset
        .set_dialog_service(Some(Err(why.to_string())));
    h.step();
    h.get_by_label("Browse…").click();
    h.step();
    h.step();
    assert_eq!(h.state().panels.dataset.typed_path_reason(), Some(why));
    // Said in the panel, and the Folder box has the keyboard focus.
    assert!(
        h.query_by_label_contains("Type the dataset folder's path in the Folder box")
            .is_some()
    );
    let dir = fixtures().join("flickr8k_mini");
    h.get_all_by_role(egui::accesskit::Role::TextInput)
        .next()
        .unwrap()
        .type_text(&dir.display().to_string());
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    wait_until(&mut h, 60, "the import", |a| {
        a.panels.dataset.loaded().is_some()
    });
    assert_eq!(h.state().panels.dataset.loaded().unwrap().dataset.root, dir);
    assert_eq!(h.state().panels.dataset.typed_path_reason(), None);
}

#[test]
fn at_800_by_500_the_image_list_stays_inside_the_window() {
    use egui_kittest::kittest::NodeT;
    let tmp = tempfile::tempdir().unwrap();
    let paths = captioner_app::AppPaths::under(tmp.path());
    let mut h = egui_kittest::Harness::builder()
        .with_size([800.0, 500.0])
        .build_eframe(move |cc| {
            let panels = captioner_app::Panels {
                tab: Tab::Dataset,
                ..captioner_app::Panels::default()
            };
            captioner_app::CaptionerApp::with_panels(&cc.egui_ctx, paths, panels)
        });
    drop_files(&mut h, &[fixtures().join("flickr8k_mini")]);
    wait_until(&mut h, 60, "the import", |a| {
        a.panels.dataset.loaded().is_some()
    });
    for _ in 0..4 {
        h.step();
    }
    let first = &h.state().panels.dataset.loaded().unwrap().dataset.images[0];
    let name = first.name.clone();
    // The photo's name and its captions are there, cut to the column with "…" rather than
    // running past the window's right edge; so is everything else.
    assert!(h.query_by_label_contains(&name).is_some());
    let mut outside = Vec::new();
    for node in h.root().query_all(egui_kittest::kittest::by()) {
        let Some(label) = node.accesskit_node().label().or_else(|| node.value()) else {
            continue;
        };
        let rect = node.rect();
        if rect.width() > 0.0 && rect.max.x > 800.5 {
            outside.push(format!("{label:?} ends at {:.0}", rect.max.x));
        }
    }
    assert!(outside.is_empty(), "past the right edge: {outside:?}");
}
