//! `captioner models`: the shipped model with its dev figures, and trained models with the
//! names kept in their meta.json.

use std::path::Path;
use std::process::Command;

fn captioner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_captioner"))
}

#[test]
fn models_json_lists_the_shipped_model_with_its_dev_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let models_dir = tmp.path().join("models");
    // A trained run with a name and one without (copies of the shipped merge model).
    let merge = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("models/merge");
    let shipped = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("models/default");
    for (run, name) in [("run-a", Some("my model")), ("run-b", None)] {
        let best = models_dir.join(run).join("best");
        std::fs::create_dir_all(&best).unwrap();
        for f in [
            "config.json",
            "vocab.json",
            "weights.safetensors",
            "meta.json",
        ] {
            std::fs::copy(merge.join(f), best.join(f)).unwrap();
        }
        if let Some(name) = name {
            captioner::jobs::models::rename(&best, name).unwrap();
        }
    }
    let out = captioner()
        .args(["models", "--json", "--models-dir"])
        .arg(&models_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    // The shipped models, then the two trained ones.
    let n_shipped = captioner::jobs::models::shipped_models().len();
    assert_eq!(list.len(), n_shipped + 2, "{list:?}");
    let first = &list[0];
    assert_eq!(first["shipped"], true);
    assert_eq!(first["dataset"], "flickr8k");
    assert_eq!(first["decoder"], "attention");
    assert_eq!(first["vocab_size"], 2535);
    // The dev BLEU-4 recorded when the shipped model was trained.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shipped.join("meta.json")).unwrap()).unwrap();
    let recorded = meta["evaluation"]
        .get("bleu")
        .filter(|_| meta["evaluation"]["split"] == "dev")
        .map(|b| b[3].as_f64().unwrap())
        .unwrap_or_else(|| meta["metrics"]["dev_bleu4"].as_f64().unwrap());
    assert!((first["dev_bleu4"].as_f64().unwrap() - recorded).abs() < 1e-12);
    assert!(recorded > 0.1);
    // CIDEr-D is there once the model is evaluated on the dev split, and null until then.
    match meta["evaluation"]["split"].as_str() {
        Some("dev") => assert!(first["dev_cider_d"].as_f64().unwrap() > 0.0),
        _ => assert!(first["dev_cider_d"].is_null()),
    }
    let names: Vec<&str> = list.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"my model"), "{names:?}");
    assert!(names.contains(&"flickr8k merge, 3 epochs"), "{names:?}");
    assert!(
        names.contains(&"flickr8k merge, 3 epochs (best)"),
        "{names:?}"
    );

    // The table names the models too.
    let out = captioner()
        .args(["models", "--models-dir"])
        .arg(&models_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("my model") && text.contains(&format!("{recorded:.4}")),
        "{text}"
    );
}
