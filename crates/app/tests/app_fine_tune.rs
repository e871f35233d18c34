//! Training on your own captions from the app: the Batch panel's "Train on this folder…"
//! takes the folder (its saved `.txt` captions) to the Train panel, set to fine-tune the Batch
//! panel's model; the run says how many caption words are outside that model's vocabulary,
//! and the new model records what it was fine-tuned from. Prefix and suffix go around new
//! machine captions.

mod app_support;

use app_support::{app, drop_files, fixtures, wait_until};
use captioner::jobs::ModelChoice;
use captioner_app::Tab;
use egui_kittest::kittest::Queryable;

#[test]
fn train_on_this_folder_fine_tunes_the_batch_model() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("my photos");
    std::fs::create_dir(&folder).unwrap();
    let images = fixtures().join("flickr8k_mini/Flicker8k_Dataset");
    let mut photos: Vec<_> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    photos.sort();
    for p in photos.iter().take(10) {
        let name = p.file_name().unwrap();
        std::fs::copy(p, folder.join(name)).unwrap();
        std::fs::write(
            folder.join(name).with_extension("txt"),
            "a dog runs on the grass\na quokka sits in the sun\n",
        )
        .unwrap();
    }
    let mut h = app(&tmp.path().join("data"), Tab::Batch);
    drop_files(&mut h, std::slice::from_ref(&folder));
    wait_until(&mut h, 30, "the folder listing", |a| {
        a.panels.batch.entries().len() == 10 && !a.panels.batch.is_listing()
    });
    h.get_by_label("Train on this folder…").click();
    h.step();
    h.step();
    assert_eq!(h.state().panels.tab, Tab::Train);
    assert_eq!(
        h.state().panels.train.settings.from,
        Some(ModelChoice::Default.dir())
    );
    wait_until(&mut h, 60, "the import", |a| {
        a.panels
            .dataset
            .loaded()
            .is_some_and(|l| l.dataset.root == folder)
    });
    {
        let s = &mut h.state_mut().panels.train.settings;
        s.train.epochs = 1;
        s.train.lr = 1e-5;
        s.train.dev_bleu_images = 2;
        s.import.fractions = captioner::dataset::SplitFractions::parse("50/50/0").unwrap();
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
    let note = run.fine_tune.clone().expect("the fine-tuning note");
    // "quokka" is not in the shipped model's vocabulary: once per photo.
    assert!(
        note.contains("count as unknown") && note.contains("quokka 10"),
        "{note}"
    );
    h.get_by_label(&note);
    let out = run.out_dir.clone().unwrap();
    let meta = captioner::model_dir::read_meta(&out.join("last")).unwrap();
    let shipped_dir = ModelChoice::Default.dir().display().to_string();
    assert!(
        meta.base_model.contains(&shipped_dir),
        "{}",
        meta.base_model
    );
    let shipped = captioner::model_dir::read_config(&ModelChoice::Default.dir()).unwrap();
    let tuned = captioner::model_dir::read_config(&out.join("last")).unwrap();
    assert_eq!(tuned.decoder, shipped.decoder);
}

#[test]
fn fine_tune_settings_show_the_base_model_and_its_rate() {
    use captioner::jobs::train::FINE_TUNE_LR;
    use egui_kittest::kittest::NodeT;
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(tmp.path(), Tab::Dataset);
    drop_files(&mut h, &[fixtures().join("flickr8k_mini")]);
    wait_until(&mut h, 60, "the import", |a| {
        a.panels.dataset.loaded().is_some()
    });
    h.state_mut().panels.tab = Tab::Train;
    h.step();
    let shipped = ModelChoice::Default.dir();
    let base = captioner::model_dir::read_config(&shipped).unwrap().decoder;
    assert_eq!(base.kind.to_string(), "attention");
    let train = &mut h.state_mut().panels.train;
    assert_eq!(train.settings.decoder.to_string(), "merge");
    assert_eq!(train.settings.train.lr, 1e-3);
    train.set_from(Some(shipped.clone()));
    // The recommended fine-tuning rate, which the note names.
    assert_eq!(h.state().panels.train.settings.train.lr, FINE_TUNE_LR);
    h.step();
    h.step();
    assert!(
        h.query_by_label_contains(&format!("learning rate of {FINE_TUNE_LR}"))
            .is_some()
    );
    // The decoder box says the base model's decoder; it and the sizes cannot be edited, and
    // show the base model's values.
    let decoder_box = h
        .get_all_by_role(egui::accesskit::Role::ComboBox)
        .find(|n| n.accesskit_node().label().as_deref() == Some("Decoder"))
        .expect("the Decoder box");
    assert_eq!(
        decoder_box.value().as_deref(),
        Some("attention (the base model's)"),
        "{decoder_box:?}"
    );
    assert!(decoder_box.accesskit_node().is_disabled());
    let field = |h: &egui_kittest::Harness<'_, captioner_app::CaptionerApp>, name: &str| {
        h.get_all_by_role(egui::accesskit::Role::TextInput)
            .find(|n| n.accesskit_node().label().as_deref() == Some(name))
            .map(|n| {
                (
                    n.value().unwrap_or_default(),
                    n.accesskit_node().is_disabled(),
                )
            })
            .unwrap_or_else(|| panic!("no {name} box"))
    };
    assert_eq!(field(&h, "LSTM size"), (base.hidden_dim.to_string(), true));
    assert_eq!(
        field(&h, "Embedding size"),
        (base.embed_dim.to_string(), true)
    );
    assert!(field(&h, "Learning rate").0.starts_with("0.0001"));
    assert!(!field(&h, "Learning rate").1);
    // The README's recipe: 3 epochs, no early stop (a new model's 20 would learn a small
    // folder by heart).
    assert_eq!(field(&h, "Epochs"), ("3".to_string(), false));
    assert_eq!(field(&h, "Early-stop patience"), ("0".to_string(), false));
    // The run folder is named after the decoder it trains.
    h.get_by_label("Start").click();
    h.step();
    let run_dir = h.state().panels.train.last_run.clone().unwrap();
    let name = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.contains("-attention-"), "{name}");
    h.get_by_label("Stop").click();
    wait_until(&mut h, 300, "the stop", |a| !a.panels.train.is_running());
    // Back to a new model: its own decoder, sizes and rate again.
    h.state_mut().panels.train.set_from(None);
    h.step();
    h.step();
    assert_eq!(h.state().panels.train.settings.train.lr, 1e-3);
    assert_eq!(field(&h, "Epochs"), ("20".to_string(), false));
    assert_eq!(field(&h, "LSTM size"), ("256".to_string(), false));
}
