//! The Caption panel: the beam's alternatives with plain scores, clicking one takes it as the
//! caption, and "Save caption" writes it beside the photo (skip or overwrite an existing one).

mod app_support;

use app_support::{app, drop_files, fixtures, wait_until};
use captioner_app::Tab;
use captioner_app::caption::beam_shares;
use egui_kittest::kittest::Queryable;

#[test]
fn beam_shares_are_percentages_of_the_beam() {
    let s = beam_shares(&[-1.0, -1.0]);
    assert_eq!(s, vec![50.0, 50.0]);
    assert!(beam_shares(&[-1.0, -9.0])[1] < 0.1);
}

#[test]
fn clicking_an_alternative_takes_it_and_save_writes_a_sidecar() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let dog = photos.join("dog.jpg");
    std::fs::copy(
        fixtures().join("encoder/images/246231741_882b45c4e1.jpg"),
        &dog,
    )
    .unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Caption);
    h.state_mut().panels.caption.beam = 4;
    drop_files(&mut h, std::slice::from_ref(&dog));
    wait_until(&mut h, 60, "the caption", |a| {
        a.panels.caption.shown().is_some() || a.panels.caption.error().is_some()
    });
    assert_eq!(h.state().panels.caption.error(), None);
    let shown = h.state().panels.caption.shown().unwrap();
    let alternatives = shown.output.alternatives.clone();
    assert!(alternatives.len() >= 2, "{alternatives:?}");
    assert_eq!(shown.caption(), shown.output.text);
    // Each alternative shows its share of the beam, as a plain percentage (none is 100%).
    assert!(h.get_all_by_label("share of the beam").count() == 1);
    assert_eq!(h.query_all_by_label("100%").count(), 0);
    let second = alternatives[1].text.clone();
    assert_ne!(second, shown.output.text);

    h.get_by_label(&second).click();
    h.step();
    h.step();
    let shown = h.state().panels.caption.shown().unwrap();
    assert_eq!(shown.chosen, 1);
    assert_eq!(shown.caption(), second);

    // Save: writes `dog.txt` beside the photo.
    h.get_by_label("Save caption").click();
    h.step();
    let sidecar = photos.join("dog.txt");
    assert_eq!(
        std::fs::read_to_string(&sidecar).unwrap(),
        format!("{second}\n")
    );
    // An existing sidecar is left alone unless "overwrite" is ticked.
    h.get_by_label(&alternatives[0].text).click();
    h.step();
    h.get_by_label("Save caption").click();
    h.step();
    assert_eq!(
        std::fs::read_to_string(&sidecar).unwrap(),
        format!("{second}\n")
    );
    h.get_by_label("overwrite").click();
    h.step();
    h.get_by_label("Save caption").click();
    h.step();
    assert_eq!(
        std::fs::read_to_string(&sidecar).unwrap(),
        format!("{}\n", alternatives[0].text)
    );
    // Nothing else was written in the photo folder (no temporary files left).
    let mut names: Vec<String> = std::fs::read_dir(&photos)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["dog.jpg", "dog.txt"]);
}
