//! The Caption, Train and Batch panels with real models, driven headlessly: drop a photo and
//! read its caption; start, stop and resume a short training run on the fixtures; caption a
//! folder (with a broken image in it) and export the captions.

mod app_support;

use app_support::{app, copy_dir, drop_files, fixtures, wait_until};
use captioner_app::Tab;
use captioner_app::batch::session::Source;
use egui_kittest::kittest::Queryable;

#[test]
fn dropping_a_photo_shows_its_caption() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(tmp.path(), Tab::Dataset);
    let dog = fixtures().join("encoder/images/246231741_882b45c4e1.jpg");
    drop_files(&mut h, std::slice::from_ref(&dog));
    assert_eq!(
        h.state().panels.tab,
        Tab::Caption,
        "a dropped photo opens the Caption panel"
    );
    wait_until(&mut h, 60, "the caption", |a| {
        a.panels.caption.shown().is_some() || a.panels.caption.error().is_some()
    });
    assert_eq!(h.state().panels.caption.error(), None);
    let shown = h.state().panels.caption.shown().unwrap();
    let text = shown.output.text.clone();
    assert!(text.contains("dog") || text.contains("shepherd"), "{text}");
    assert_eq!(shown.output.words.len(), text.split_whitespace().count());
    assert!(!shown.output.alternatives.is_empty());
    assert!(h.state().panels.caption.model_info().is_some());
    // The caption is on screen.
    h.get_by_label(&text);
}

#[test]
fn training_starts_stops_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(tmp.path(), Tab::Dataset);
    drop_files(&mut h, &[fixtures().join("flickr8k_mini")]);
    wait_until(&mut h, 60, "the import", |a| {
        a.panels.dataset.loaded().is_some()
    });
    h.state_mut().panels.tab = Tab::Train;
    {
        let s = &mut h.state_mut().panels.train.settings;
        s.embed_dim = 16;
        s.hidden_dim = 16;
        s.import.min_count = 1;
        s.train.batch_size = 2;
        s.train.epochs = 100_000;
        s.train.early_stop_patience = 0;
        s.train.dev_bleu_images = 4;
    }
    h.step();
    h.get_by_label("Start").click();
    wait_until(&mut h, 120, "training steps", |a| {
        a.panels
            .train
            .run()
            .is_some_and(|r| r.step_losses.len() >= 3)
    });
    assert!(h.state().panels.train.is_running());
    assert!(
        h.state()
            .panels
            .train
            .run()
            .unwrap()
            .device
            .as_deref()
            .unwrap_or("")
            .contains("CPU")
    );
    h.get_by_label("Stop").click();
    wait_until(&mut h, 60, "the stop", |a| !a.panels.train.is_running());
    let run = h.state().panels.train.run().unwrap();
    assert_eq!(run.phase, "stopped");
    assert!(run.error.is_none(), "{:?}", run.error);
    let out = run.out_dir.clone().unwrap();
    assert!(out.join("last/train_state.json").is_file());
    let steps_before = run.step_losses.len();

    // Resume and let it finish two more epochs than the checkpoint holds. However fast the
    // machine, the stop may land after any number of epochs: the target is counted from where
    // the checkpoint says the run stopped, not from a guess about how far it got.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("last/train_state.json")).unwrap()).unwrap();
    let stopped_in_epoch = state["epoch"].as_u64().unwrap() as usize;
    h.state_mut().panels.train.settings.train.epochs = stopped_in_epoch + 2;
    h.step();
    h.get_by_label("Resume").click();
    wait_until(&mut h, 180, "the resumed run to end", |a| {
        a.panels
            .train
            .run()
            .is_some_and(|r| !r.running && r.finished.is_some())
    });
    let run = h.state().panels.train.run().unwrap();
    assert!(run.error.is_none(), "{:?}", run.error);
    assert!(run.step_losses.len() > steps_before);
    assert!(!run.epochs.is_empty());
    assert!(run.summary.is_some());
    assert!(out.join("best/weights.safetensors").is_file());
    // The run's models are named after what they hold now, not what they held at the stop,
    // and the run is one entry of the lists, its last epoch under its best.
    let epochs_now = stopped_in_epoch + 2;
    let last = captioner::jobs::models::entry_of(&out.join("last"));
    assert_eq!(last.epochs, epochs_now);
    assert!(
        last.name.ends_with(&format!("{epochs_now} epochs (last)")),
        "{}",
        last.name
    );
    let best = captioner::jobs::models::entry_of(&out.join("best"));
    let n = best.epochs;
    assert!(
        best.name.ends_with(&format!(
            "{n} epoch{} (best)",
            if n == 1 { "" } else { "s" }
        )),
        "{}",
        best.name
    );
    let listed = captioner::jobs::models::list_models(&tmp.path().join("models"));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].last.as_deref(), Some(&last));
}

/// The app as `captioner app PATH` opens it, with a profile last left on `tab` with `folder`
/// in the Batch panel's Folder box.
fn opened_with(
    data: &std::path::Path,
    tab: Tab,
    folder: &str,
    open: std::path::PathBuf,
) -> egui_kittest::Harness<'static, captioner_app::CaptionerApp> {
    let paths = captioner_app::AppPaths::under(data);
    let folder = folder.to_string();
    egui_kittest::Harness::builder()
        .with_size([1280.0, 820.0])
        .build_eframe(move |cc| {
            let mut panels = captioner_app::Panels {
                tab,
                ..captioner_app::Panels::default()
            };
            panels.batch.settings.folder = folder;
            let mut app = captioner_app::CaptionerApp::with_panels(&cc.egui_ctx, paths, panels);
            app.apply_startup(captioner_app::Startup {
                open: vec![open],
                ..captioner_app::Startup::default()
            });
            app
        })
}

#[test]
fn app_photo_opens_the_caption_panel_whatever_tab_was_last() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old folder");
    std::fs::create_dir(&old).unwrap();
    let dog = fixtures().join("encoder/images/246231741_882b45c4e1.jpg");
    let mut h = opened_with(
        tmp.path(),
        Tab::Batch,
        &old.display().to_string(),
        dog.clone(),
    );
    assert_eq!(h.state().panels.tab, Tab::Caption);
    wait_until(&mut h, 60, "the caption", |a| {
        a.panels.caption.shown().is_some() || a.panels.caption.error().is_some()
    });
    assert_eq!(h.state().panels.caption.error(), None);
    assert_eq!(
        h.state().panels.caption.shown().unwrap().path.as_deref(),
        Some(dog.as_path())
    );
    assert!(
        h.state().panels.batch.session().is_none(),
        "no one-photo batch"
    );
    // The window title names the photo.
    assert!(
        h.state()
            .window_title()
            .starts_with(&dog.display().to_string()),
        "{}",
        h.state().window_title()
    );
}

#[test]
fn app_folder_opens_the_batch_panel_on_that_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    copy_dir(&fixtures().join("encoder/images"), &photos);
    let mut h = opened_with(tmp.path(), Tab::Caption, "/somewhere/else", photos.clone());
    assert_eq!(h.state().panels.tab, Tab::Batch);
    wait_until(&mut h, 30, "the folder listing", |a| {
        !a.panels.batch.is_listing() && !a.panels.batch.entries().is_empty()
    });
    assert_eq!(
        h.state().panels.batch.settings.folder,
        photos.display().to_string()
    );
    assert_eq!(
        h.state()
            .panels
            .batch
            .session()
            .and_then(|s| s.root.clone()),
        Some(photos.clone())
    );
    assert_eq!(
        h.state().window_title(),
        format!("{} — captioner", photos.display())
    );
}

#[test]
fn batch_captions_a_folder_marks_bad_images_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    copy_dir(&fixtures().join("encoder/images"), &photos);
    std::fs::write(photos.join("broken.jpg"), b"not a jpeg at all").unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    drop_files(&mut h, std::slice::from_ref(&photos));
    wait_until(&mut h, 30, "the folder listing", |a| {
        a.panels.batch.entries().len() == 7
    });
    h.get_by_label("Caption 7").click();
    wait_until(&mut h, 120, "the batch", |a| {
        !a.panels.batch.is_running()
            && a.panels
                .batch
                .entries()
                .iter()
                .all(|e| e.has_caption() || e.failed.is_some())
    });
    let entries = h.state().panels.batch.entries().to_vec();
    for e in &entries {
        if e.name == "broken.jpg" {
            assert!(e.failed.is_some(), "{e:?}");
            assert!(!e.has_caption());
        } else {
            assert_eq!(e.cell.source, Source::Machine, "{e:?}");
            assert!(e.has_caption());
        }
    }
    h.get_by_label("Save 6").click();
    wait_until(&mut h, 30, "the save", |a| {
        a.panels.batch.last_report().is_some()
    });
    for e in entries.iter().filter(|e| e.name != "broken.jpg") {
        let sidecar = e.path.with_extension("txt");
        assert_eq!(
            std::fs::read_to_string(&sidecar).unwrap(),
            format!("{}\n", e.cell.caption)
        );
    }
    assert!(!photos.join("broken.txt").exists());
}

/// Closing the window during training stops the run at the next batch, leaving a resumable
/// checkpoint, instead of waiting for the run to end (this run would take days).
#[test]
fn closing_during_training_stops_it_with_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(tmp.path(), Tab::Dataset);
    drop_files(&mut h, &[fixtures().join("flickr8k_mini")]);
    wait_until(&mut h, 60, "the import", |a| {
        a.panels.dataset.loaded().is_some()
    });
    h.state_mut().panels.tab = Tab::Train;
    {
        let s = &mut h.state_mut().panels.train.settings;
        s.embed_dim = 16;
        s.hidden_dim = 16;
        s.import.min_count = 1;
        s.train.batch_size = 2;
        s.train.epochs = 100_000;
        s.train.early_stop_patience = 0;
    }
    h.step();
    h.get_by_label("Start").click();
    wait_until(&mut h, 120, "training steps", |a| {
        a.panels
            .train
            .run()
            .is_some_and(|r| !r.step_losses.is_empty())
    });
    let out = h
        .state()
        .panels
        .train
        .run()
        .unwrap()
        .out_dir
        .clone()
        .unwrap();
    drop(h); // joins the worker thread
    assert!(out.join("last/train_state.json").is_file());
}
