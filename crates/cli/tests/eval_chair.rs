//! Object hallucination in `captioner eval` (issue 22, item 1): CHAIR-s, CHAIR-i and the
//! grounded share for the split, for each `--extra` folder and for the captions not flagged for
//! review, in the text output and in `--json`; COCO instance annotations as ground truth.

use std::path::{Path, PathBuf};
use std::process::Command;

use captioner::eval::chair::{ChairReport, FolderChair, Truth, objects_of_references};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn eval(dataset: &Path, extra: &[PathBuf], cache: &Path, json: bool) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_captioner"));
    c.arg("eval").arg(dataset).arg("--cache").arg(cache);
    for e in extra {
        c.arg("--extra").arg(e);
    }
    c.args(["--min-count", "1"]);
    if json {
        c.arg("--json");
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The reference captions of an extra folder, by photo.
fn references(folder: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(folder.join("captions.txt")).unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, caption) = line.split_once('\t').unwrap();
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => c.push(caption.to_string()),
            None => out.push((name.to_string(), vec![caption.to_string()])),
        }
    }
    out
}

#[test]
fn eval_reports_hallucination_for_the_split_and_each_extra_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let unfamiliar = root().join("tests/fixtures/unfamiliar");
    let dataset = root().join("tests/fixtures/flickr8k_mini");
    let out = eval(
        &dataset,
        std::slice::from_ref(&unfamiliar),
        tmp.path(),
        true,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();

    // The split: every caption measured, against its references; beam 3 with the calibrated
    // shipped model, so the unflagged captions are measured too.
    let split: ChairReport = serde_json::from_value(v["eval"]["chair"].clone()).unwrap();
    assert_eq!(split.truth, Truth::References);
    assert_eq!(split.all.captions, 8);
    assert!(split.all.mentions >= split.all.hallucinated_mentions);
    for x in [split.all.chair_s, split.all.chair_i, split.all.grounded] {
        assert!((0.0..=1.0).contains(&x), "{split:?}");
    }
    let nf = split.not_flagged.clone().unwrap();
    assert!(nf.captions <= 8);

    // The extra folder: the figures are those of its captions (as listed per photo) against
    // its reference captions.
    let mix = &v["mix"];
    let folders: Vec<FolderChair> = serde_json::from_value(mix["chair"].clone()).unwrap();
    assert_eq!(folders.len(), 1);
    assert_eq!(folders[0].folder, unfamiliar);
    assert!(mix["chair_all_extra"].is_null());
    let refs = references(&unfamiliar);
    let photos = mix["photos"].as_array().unwrap();
    assert_eq!(photos.len(), refs.len());
    let mut captions = Vec::new();
    let mut truths = Vec::new();
    let mut flagged = Vec::new();
    for (name, r) in &refs {
        let p = photos.iter().find(|p| p["photo"] == name.as_str()).unwrap();
        captions.push(p["caption"].as_str().unwrap().to_string());
        flagged.push(p["needs_review"].as_bool().unwrap());
        truths.push(objects_of_references(r));
    }
    let expected = ChairReport::measure(&captions, &truths, Some(&flagged), Truth::References);
    assert_eq!(folders[0].chair, expected);
    assert_eq!(
        expected.not_flagged.as_ref().unwrap().captions,
        flagged.iter().filter(|f| !**f).count()
    );

    // The text output prints the same figures.
    let text = eval(
        &dataset,
        std::slice::from_ref(&unfamiliar),
        tmp.path(),
        false,
    );
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line `{prefix}` in\n{text}"))
            .to_string()
    };
    let s = line("hallucination on dev split (objects the reference captions mention): ");
    assert!(s.contains(&split.all.summary()), "{s}");
    assert!(
        s.contains(&format!("CHAIR-s {:.3}", split.all.chair_s)),
        "{s}"
    );
    let u = line(&format!("hallucination on {}", unfamiliar.display()));
    assert!(u.contains(&expected.all.summary()), "{u}");
    let not_flagged: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  captions not flagged for review: CHAIR-s "))
        .collect();
    assert_eq!(not_flagged.len(), 2, "{text}");
    assert!(not_flagged[1].contains(&expected.not_flagged.unwrap().summary()));
}

#[test]
fn coco_instance_annotations_join_the_references_as_ground_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let coco = tmp.path().join("coco");
    for dir in ["annotations", "train2017", "val2017"] {
        let from = root().join("tests/fixtures/coco_mini").join(dir);
        std::fs::create_dir_all(coco.join(dir)).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), coco.join(dir).join(e.file_name())).unwrap();
        }
    }
    let cache = tmp.path().join("cache");
    let chair = |out: String| -> ChairReport {
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        serde_json::from_value(v["chair"].clone()).unwrap()
    };
    let before = chair(eval(&coco, &[], &cache, true));
    assert_eq!(before.truth, Truth::References);
    assert_eq!(before.all.captions, 1);

    // An instances file that puts every category in the dev photo: nothing the caption names
    // can be invented, and every caption that names an object is grounded.
    let categories: Vec<serde_json::Value> = captioner::eval::chair::CATEGORIES
        .iter()
        .enumerate()
        .map(|(i, name)| serde_json::json!({"id": i + 1, "name": name}))
        .collect();
    let annotations: Vec<serde_json::Value> = (1..=categories.len())
        .map(|c| serde_json::json!({"id": 100 + c, "image_id": 3, "category_id": c}))
        .collect();
    let instances = serde_json::json!({
        "images": [{"id": 3, "file_name": "000000000003.jpg"}],
        "annotations": annotations,
        "categories": categories,
    });
    std::fs::write(
        coco.join("annotations/instances_val2017.json"),
        serde_json::to_string(&instances).unwrap(),
    )
    .unwrap();
    let after = chair(eval(&coco, &[], &cache, true));
    assert_eq!(after.truth, Truth::ReferencesAndInstances);
    assert_eq!(after.all.captions, 1);
    assert_eq!(after.all.hallucinating_captions, 0);
    assert_eq!(after.all.hallucinated_mentions, 0);
    assert_eq!(after.all.grounded_captions, after.all.captions_with_objects);
    assert_eq!(after.all.mentions, before.all.mentions);

    // A damaged instances file fails the evaluation and names the file.
    std::fs::write(coco.join("annotations/instances_val2017.json"), "{").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_captioner"))
        .arg("eval")
        .arg(&coco)
        .arg("--cache")
        .arg(&cache)
        .args(["--min-count", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("instances_val2017.json"), "{err}");
}
