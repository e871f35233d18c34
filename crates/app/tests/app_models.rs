//! The Models view: the shipped model and a trained one listed with their names and dev
//! figures; renaming one (kept in its meta.json), deleting one (asks first; the folder is
//! gone), and the shipped model cannot be deleted.

mod app_support;

use std::path::{Path, PathBuf};

use app_support::{app, copy_dir, wait_until};
use captioner::jobs::models;
use captioner_app::Tab;
use egui_kittest::kittest::Queryable;

/// The shipped merge model (trained runs here are copies of it).
fn shipped_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("models/merge")
}

/// A trained run `models/NAME/best` (a copy of the shipped merge model's files).
fn trained_model(models_dir: &Path, name: &str) -> PathBuf {
    let best = models_dir.join(name).join("best");
    copy_dir(&shipped_dir(), &best);
    // A run fresh from training: not evaluated yet.
    captioner::model_dir::update_meta(&best, |m| m.evaluation = None).unwrap();
    best
}

#[test]
fn renaming_and_deleting_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let models_dir = tmp.path().join("models");
    let best = trained_model(&models_dir, "flickr8k-merge-run");
    let mut h = app(tmp.path(), Tab::Models);
    h.step();
    h.step();

    let entries = h.state().panels.models.entries().to_vec();
    // The shipped models (default first, then merge) and the trained one.
    assert_eq!(
        entries.iter().filter(|e| !e.shipped).count(),
        1,
        "{entries:?}"
    );
    let shipped = entries.iter().find(|e| e.shipped).unwrap();
    assert!(shipped.dev_bleu4.unwrap() > 0.1, "{shipped:?}");
    let trained = entries.iter().find(|e| !e.shipped).unwrap();
    // A folder without a name gets one from its record.
    assert_eq!(trained.name, "flickr8k merge, 3 epochs (best)");
    assert_eq!(trained.decoder, "merge");
    assert!(trained.vocab_size > 1000);
    assert_eq!(trained.dev_cider_d, None, "not evaluated yet");
    h.get_by_label("flickr8k merge, 3 epochs (shipped)");
    h.get_by_label("flickr8k merge, 3 epochs (best)");

    // The shipped model offers no Rename or Delete.
    h.get_by_label("flickr8k merge, 3 epochs (shipped)").click();
    h.step();
    h.step();
    assert!(h.query_by_label("Rename").is_none());
    assert!(h.query_by_label("Delete").is_none());
    h.get_by_label("Use for captioning");

    // Rename the trained one.
    h.get_by_label("flickr8k merge, 3 epochs (best)").click();
    h.step();
    h.step();
    h.get_by_label("Rename").click();
    h.step();
    h.step();
    // The only text field: the new name.
    h.get_all_by_role(egui::accesskit::Role::TextInput)
        .next()
        .unwrap()
        .focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_all_by_role(egui::accesskit::Role::TextInput)
        .next()
        .unwrap()
        .type_text("my first model");
    h.step();
    h.get_by_label("Save name").click();
    h.step();
    h.step();
    let meta = captioner::model_dir::read_meta(&best).unwrap();
    assert_eq!(meta.name, "my first model");
    assert!(h.get_all_by_label("my first model").count() >= 1);
    assert!(
        h.state()
            .panels
            .models
            .entries()
            .iter()
            .any(|e| e.name == "my first model" && !e.shipped)
    );
    // The Caption panel's model list shows the name too.
    wait_until(&mut h, 30, "the caption panel's model list", |a| {
        a.panels
            .caption
            .models()
            .iter()
            .any(|e| e.name == "my first model")
    });
    let choice = captioner::jobs::ModelChoice::Trained(best.clone());
    assert_eq!(
        choice.display_name(h.state().panels.caption.models()),
        "my first model"
    );

    // Delete: asks first; "Keep it" keeps it.
    h.get_by_label("Delete").click();
    for _ in 0..4 {
        h.step();
    }
    assert!(h.state().panels.models.pending_delete().is_some());
    h.get_by_label("Keep it").click();
    h.step();
    h.step();
    assert!(best.is_dir());
    h.get_by_label("Delete").click();
    for _ in 0..4 {
        h.step();
    }
    h.get_by_label("Delete model").click();
    for _ in 0..4 {
        h.step();
    }
    assert!(!best.exists(), "the model's folder is gone");
    assert!(
        !models_dir.join("flickr8k-merge-run").exists(),
        "the run folder left without a checkpoint is gone"
    );
    let entries = h.state().panels.models.entries();
    assert!(
        !entries.is_empty() && entries.iter().all(|e| e.shipped),
        "{entries:?}"
    );
    assert!(h.query_by_label("Delete").is_none());
    assert!(shipped_dir().join("config.json").is_file());
}

#[test]
fn the_library_refuses_to_delete_the_shipped_model_or_foreign_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let models_dir = tmp.path().join("models");
    std::fs::create_dir_all(&models_dir).unwrap();
    let err = models::delete(&models_dir, &shipped_dir()).unwrap_err();
    assert!(err.report().contains("shipped"), "{}", err.report());
    assert!(shipped_dir().join("config.json").is_file());

    // A folder outside the models folder is left alone, even with a model in it.
    let outside = tmp.path().join("elsewhere");
    copy_dir(&shipped_dir(), &outside);
    let err = models::delete(&models_dir, &outside).unwrap_err();
    assert!(err.report().contains("not a model in"), "{}", err.report());
    assert!(outside.join("config.json").is_file());

    // Deleting `best/` keeps the run while its `last/` remains.
    let best = trained_model(&models_dir, "run");
    let last = models_dir.join("run/last");
    copy_dir(&shipped_dir(), &last);
    let deleted = models::delete(&models_dir, &best).unwrap();
    assert_eq!(deleted.run, None);
    assert!(!best.exists() && last.is_dir());

    // Renames are checked and kept.
    assert!(models::rename(&last, "   ").is_err());
    assert!(models::rename(&last, &"x".repeat(200)).is_err());
    let entry = models::rename(&last, "  kept  ").unwrap();
    assert_eq!(entry.name, "kept");
    assert_eq!(captioner::model_dir::read_meta(&last).unwrap().name, "kept");
}

#[test]
fn evaluating_a_model_shows_and_keeps_its_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let models_dir = tmp.path().join("models");
    let best = trained_model(&models_dir, "run");
    let mut h = app(tmp.path(), Tab::Models);
    h.state_mut().panels.models.eval_dataset = Some(app_support::fixtures().join("flickr8k_mini"));
    h.step();
    h.get_by_label("flickr8k merge, 3 epochs (best)").click();
    h.step();
    h.step();
    h.get_by_label("Evaluate").click();
    h.step();
    assert!(h.state().panels.models.is_evaluating());
    wait_until(&mut h, 300, "the evaluation", |a| {
        !a.panels.models.is_evaluating()
    });
    let (name, report) = h
        .state()
        .panels
        .models
        .last_report()
        .cloned()
        .expect("scores");
    assert_eq!(name, "flickr8k merge, 3 epochs (best)");
    assert_eq!(report.split, "dev");
    assert!(report.images > 0);
    assert!(report.bleu.iter().all(|b| (0.0..=1.0).contains(b)));
    assert!(report.cider_d >= 0.0);
    // Kept in meta.json, and shown in the list.
    let stored = captioner::model_dir::read_meta(&best)
        .unwrap()
        .evaluation
        .unwrap();
    assert_eq!(stored.bleu, report.bleu);
    assert_eq!(stored.cider_d, report.cider_d);
    assert_eq!(stored.images, report.images);
    let entry = h
        .state()
        .panels
        .models
        .entries()
        .iter()
        .find(|e| e.dir == best)
        .unwrap()
        .clone();
    assert_eq!(entry.dev_cider_d, Some(report.cider_d));
    assert_eq!(entry.dev_bleu4, Some(report.bleu[3]));
    // A figure from a few dev photos says on how many, in the table itself.
    assert!(report.images < models::FEW_DEV_PHOTOS);
    assert_eq!(entry.dev_bleu4_photos, Some(report.images));
    h.step();
    h.step();
    let cell = format!("{:.4} (on {} dev photos)", report.bleu[3], report.images);
    assert!(h.query_by_label(&cell).is_some(), "{cell} not shown");
}

#[test]
fn a_run_is_one_model_with_its_last_epoch_reachable() {
    let tmp = tempfile::tempdir().unwrap();
    let models_dir = tmp.path().join("models");
    let best = trained_model(&models_dir, "ds200-merge-run");
    let last = models_dir.join("ds200-merge-run/last");
    copy_dir(&shipped_dir(), &last);
    // Resumed to 20 epochs, best at 18; the names an earlier version stored at the first stop
    // (9 and 11 epochs) are stale.
    captioner::model_dir::update_meta(&best, |m| {
        m.epochs = 18;
        m.name = "flickr8k merge, 9 epochs (best)".into();
    })
    .unwrap();
    captioner::model_dir::update_meta(&last, |m| {
        m.epochs = 20;
        m.evaluation = None;
        m.name = "flickr8k merge, 11 epochs (last)".into();
    })
    .unwrap();
    let mut h = app(tmp.path(), Tab::Models);
    h.step();
    h.step();
    let trained: Vec<_> = h
        .state()
        .panels
        .models
        .entries()
        .iter()
        .filter(|e| !e.shipped)
        .cloned()
        .collect();
    assert_eq!(trained.len(), 1, "one entry per run: {trained:?}");
    assert_eq!(trained[0].name, "flickr8k merge, 18 epochs (best)");
    assert_eq!(
        trained[0].last.as_ref().map(|l| l.name.as_str()),
        Some("flickr8k merge, 20 epochs (last)")
    );
    h.get_by_label("flickr8k merge, 18 epochs (best)");
    assert!(h.query_by_label_contains("9 epochs").is_none());
    assert!(h.query_by_label_contains("20 epochs (last)").is_none());
    // The toggle shows the last epoch under it, selectable like any model.
    h.get_by_label("Show each run's last epoch").click();
    h.step();
    h.step();
    h.get_by_label_contains("flickr8k merge, 20 epochs (last)")
        .click();
    h.step();
    h.step();
    h.get_by_label("Use for captioning").click();
    h.step();
    assert_eq!(
        h.state().panels.caption.model,
        captioner::jobs::ModelChoice::Trained(last.clone())
    );
    // The Caption panel names it as the Models view does.
    assert_eq!(
        captioner::jobs::ModelChoice::Trained(last).label(),
        "flickr8k merge, 20 epochs (last)"
    );
}
