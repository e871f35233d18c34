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
