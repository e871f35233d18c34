//! The Train panel says why a run ended: an early-stopped run on the fixture (tiny model,
//! patience 1) reports "stopped early" with its best epoch, and after a restart the panel
//! shows that run from its checkpoint and that it cannot be resumed.

mod app_support;

use app_support::{app, drop_files, fixtures, wait_until};
use captioner::jobs::EndReason;
use captioner_app::{AppPaths, CaptionerApp, Panels, Tab};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

#[test]
fn an_early_stopped_run_says_so_and_is_shown_after_a_restart() {
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
        s.train.batch_size = 16;
        // Far more epochs than it takes a tiny model on 4 dev images to stop improving.
        s.train.epochs = 60;
        s.train.early_stop_patience = 1;
        s.train.dev_bleu_images = 4;
    }
    h.step();
    h.get_by_label("Start").click();
    wait_until(&mut h, 600, "the run to end", |a| {
        a.panels
            .train
            .run()
            .is_some_and(|r| !r.running && (r.end.is_some() || r.error.is_some()))
    });
    let run = h.state().panels.train.run().unwrap();
    assert!(run.error.is_none(), "{:?}", run.error);
    let Some(EndReason::EarlyStopped {
        epochs,
        without_improvement,
        best_epoch,
    }) = run.end.clone()
    else {
        panic!("not stopped early: {:?}", run.end);
    };
    assert_eq!(without_improvement, 1);
    assert_eq!(best_epoch + 1, epochs);
    assert_eq!(run.epochs.len(), epochs);
    assert!(epochs < 60);
    assert_eq!(run.phase, "stopped early");
    let text = run.finished.clone().unwrap();
    assert!(
        text.contains(&format!("stopped early after {epochs} epochs"))
            && text.contains(&format!("best at epoch {best_epoch}")),
        "{text}"
    );
    // The best figure shown is the one measured at the best epoch.
    let measured = run.epochs[best_epoch - 1].dev_bleu4;
    assert!(
        text.contains(&captioner_app::train::bleu_text(measured)),
        "{text}"
    );
    assert!(!run.resumable);
    h.get_by_label(&text);
    let out_dir = run.out_dir.clone().unwrap();
    // The trained model is named after its record (no name is stored, so it cannot go
    // stale when a run is resumed).
    let meta = captioner::model_dir::read_meta(&out_dir.join("best")).unwrap();
    assert_eq!(meta.name, "");
    assert_eq!(
        captioner::jobs::models::entry_of(&out_dir.join("best")).name,
        format!(
            "flickr8k_mini merge, {best_epoch} epoch{} (best)",
            if best_epoch == 1 { "" } else { "s" }
        )
    );
    drop(h);

    // After a restart: the last run, its charts and that it cannot be resumed.
    let paths = AppPaths::under(tmp.path());
    let mut h = Harness::builder()
        .with_size([1280.0, 820.0])
        .build_eframe(move |cc| {
            let mut panels = Panels {
                tab: Tab::Train,
                ..Panels::default()
            };
            panels.train.last_run = Some(out_dir.clone());
            CaptionerApp::with_panels(&cc.egui_ctx, paths, panels)
        });
    h.step();
    h.step();
    let run = h.state().panels.train.run().expect("the last run is shown");
    assert!(run.restored);
    assert!(!run.resumable);
    assert_eq!(run.epochs.len(), epochs);
    let text = run.finished.clone().unwrap();
    assert!(text.contains("stopped early"), "{text}");
    h.get_by_label(&text);
}
