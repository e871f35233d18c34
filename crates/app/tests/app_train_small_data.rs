//! Training on too little data says so: before the run (the Train panel, from the imported
//! dataset's splits), during it (the warnings stay on the panel, the calibration's included),
//! and in its results (sample captions that only repeat words are called out; a near-zero
//! BLEU-4 does not stretch the chart's axis to "0.000000001").

mod app_support;

use app_support::{app, drop_files, fixtures, wait_until};
use captioner::train::{EpochReport, TrainEvent};
use captioner::worker::Event;
use captioner_app::Tab;
use captioner_app::train::axis_text;
use egui_kittest::kittest::Queryable;

#[test]
fn a_tiny_dataset_is_warned_about_before_during_and_after_training() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(tmp.path(), Tab::Dataset);
    drop_files(&mut h, &[fixtures().join("flickr8k_mini")]);
    wait_until(&mut h, 60, "the import", |a| {
        a.panels.dataset.loaded().is_some()
    });
    let splits = h
        .state()
        .panels
        .dataset
        .loaded()
        .unwrap()
        .summary
        .splits
        .clone();
    assert!(splits.train < 1000 && splits.dev < 100, "{splits:?}");
    h.state_mut().panels.tab = Tab::Train;
    {
        let s = &mut h.state_mut().panels.train.settings;
        s.embed_dim = 16;
        s.hidden_dim = 16;
        s.train.batch_size = 8;
        s.train.epochs = 1;
        s.train.dev_bleu_images = 4;
    }
    h.step();
    h.step();
    // Before: the settings say it.
    let train_warning = format!("only {} photos to train on", splits.train);
    let dev_warning = format!("only {} photos in the dev split", splits.dev);
    assert!(h.query_by_label_contains(&train_warning).is_some());
    assert!(h.query_by_label_contains(&dev_warning).is_some());
    assert!(
        h.query_by_label_contains("the confidence is not calibrated")
            .is_some()
    );

    h.get_by_label("Start").click();
    wait_until(&mut h, 600, "the run to end", |a| {
        a.panels
            .train
            .run()
            .is_some_and(|r| !r.running && (r.end.is_some() || r.error.is_some()))
    });
    let run = h.state().panels.train.run().unwrap();
    assert!(run.error.is_none(), "{:?}", run.error);
    // During and after: the warnings stay with the run, the calibration's too.
    let warnings = run.warnings.clone();
    assert!(
        warnings.iter().any(|w| w.contains(&train_warning)),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("no calibrated confidence") && w.contains("too few dev photos")),
        "{warnings:?}"
    );
    for w in &warnings {
        let start: String = w.chars().take(60).collect();
        assert!(
            h.query_all_by_label_contains(&start).count() >= 1,
            "{w} not shown"
        );
    }

    // An epoch whose samples only repeat words, with a near-zero BLEU-4 (as three epochs on
    // 170 photos gave): called out.
    let epoch = EpochReport {
        epoch: 2,
        train_loss: 5.0,
        dev_loss: 5.5,
        dev_bleu4: 1.74e-10,
        dev_bleu: [0.1, 0.01, 1e-5, 1.74e-10],
        samples: vec![
            ("1.jpg".into(), "a a a a a".into()),
            ("2.jpg".into(), "a dog runs on the grass".into()),
        ],
        seconds: 1.0,
        eta_seconds: 0.0,
        lr: 1e-3,
        improved: true,
    };
    {
        let app = h.state_mut();
        app.panels
            .train
            .on_event(Event::Training(TrainEvent::Epoch(epoch)), &mut app.shared);
    }
    h.step();
    h.step();
    assert!(
        h.query_by_label_contains("1 of 2 sample captions repeat words")
            .is_some()
    );
    assert!(h.query_by_label_contains("a a a a a").is_some());
    // The figure itself is still told from zero.
    assert!(h.query_by_label_contains("1.74e-10").is_some());
}

#[test]
fn the_bleu_axis_has_plain_labels() {
    assert_eq!(axis_text(1e-9), "0");
    assert_eq!(axis_text(0.0), "0");
    assert_eq!(axis_text(-1e-12), "0");
    assert_eq!(axis_text(0.01), "0.01");
    assert_eq!(axis_text(0.05), "0.05");
    assert_eq!(axis_text(0.1), "0.1");
    assert_eq!(axis_text(0.2148), "0.215");
    assert_eq!(axis_text(1.0), "1");
}
