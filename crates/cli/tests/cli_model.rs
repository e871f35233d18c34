//! The model commands as a user runs them: classify, features, train, caption, eval.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn captioner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_captioner"))
}

fn fixture(p: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("tests/fixtures")
        .join(p)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn classify_prints_top5_and_names_bad_files() {
    let out = run(captioner()
        .arg("classify")
        .arg("--json")
        .arg(fixture("encoder/images/2529205842_bdcb49d65b.jpg"))
        .arg(fixture("encoder/images/246231741_882b45c4e1.jpg"))
        .arg(fixture("broken_flickr8k/Flicker8k_Dataset/notes.jpg")));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad file makes the exit status 1"
    );
    let v = json(&out);
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 3);
    let top = &items[0]["top"];
    assert_eq!(top.as_array().unwrap().len(), 5);
    assert_eq!(top[0]["name"], "basketball");
    assert!(top[0]["probability"].as_f64().unwrap() > 0.5);
    assert!(
        items[1]["top"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("German shepherd")
    );
    assert!(items[2]["error"].as_str().unwrap().contains("notes.jpg"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.jpg"));
}

#[test]
fn features_caches_then_finds_everything_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let features = |extra: &[&str]| {
        let mut c = captioner();
        c.arg("features")
            .arg(fixture("flickr8k_mini"))
            .arg("--cache")
            .arg(tmp.path())
            .arg("--json")
            .args(extra);
        run(&mut c)
    };
    let out = features(&["--batch", "5"]);
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!(v["images"], 24);
    assert_eq!(v["computed"], 24);
    let out = features(&[]);
    let v = json(&out);
    assert_eq!(v["computed"], 0);
    assert_eq!(v["cached"], 24);
}

/// Train on the 24-image fixture, resume, caption with the result and evaluate it.
#[test]
fn train_resume_caption_and_eval_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let train = |epochs: &str, resume: bool| {
        let mut c = captioner();
        c.arg("train")
            .arg(fixture("flickr8k_mini"))
            .args(["--epochs", epochs, "--batch", "16", "--min-count", "1"])
            .args(["--hidden", "32", "--embed", "32", "--json"])
            .arg("--out")
            .arg(&run_dir)
            .arg("--cache")
            .arg(&cache);
        if resume {
            c.arg("--resume");
        }
        run(&mut c)
    };
    let out = train("2", false);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let epochs: Vec<&serde_json::Value> = lines.iter().filter(|v| v["event"] == "epoch").collect();
    assert_eq!(epochs.len(), 2);
    for e in &epochs {
        assert!(e["train_loss"].as_f64().unwrap().is_finite());
        let b = e["dev_bleu4"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&b));
    }
    assert!(lines.iter().any(|v| v["event"] == "finished"));
    for f in [
        "config.json",
        "vocab.json",
        "weights.safetensors",
        "meta.json",
    ] {
        assert!(run_dir.join("best").join(f).is_file(), "{f}");
        assert!(run_dir.join("last").join(f).is_file(), "{f}");
    }

    let out = train("3", true);
    assert!(out.status.success());
    let started: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"] == "started")
        .unwrap();
    assert_eq!(started["start_epoch"], 3);

    let image = fixture("flickr8k_mini/Flicker8k_Dataset/1191338263_a4fa073154.jpg");
    let out = run(captioner()
        .arg("caption")
        .arg("--model")
        .arg(run_dir.join("best"))
        .args(["--beam", "2", "--json"])
        .arg(&image));
    assert!(out.status.success());
    let v = json(&out);
    let c = &v[0];
    let text = c["caption"].as_str().unwrap();
    let words = c["words"].as_array().unwrap();
    assert_eq!(text.split_whitespace().count(), words.len());
    for w in words {
        let p = w["probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
    }
    assert!(!c["alternatives"].as_array().unwrap().is_empty());

    let out = run(captioner()
        .arg("eval")
        .arg(fixture("flickr8k_mini"))
        .arg("--model")
        .arg(run_dir.join("best"))
        .arg("--cache")
        .arg(&cache)
        .args(["--split", "dev", "--beam", "1", "--json", "--store"]));
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!(v["images"], 8);
    assert_eq!(v["split"], "dev");
    let bleu = v["bleu"].as_array().unwrap();
    assert_eq!(bleu.len(), 4);
    for b in bleu {
        assert!((0.0..=1.0).contains(&b.as_f64().unwrap()));
    }
    // --store kept the scores in the model's meta.json.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("best").join("meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["evaluation"]["split"], "dev");
    assert_eq!(meta["evaluation"]["bleu"], v["bleu"]);
    assert_eq!(meta["evaluation"]["cider_d"], v["cider_d"]);
}

#[test]
fn resume_without_out_and_bad_decoder_are_clear_errors() {
    let out = run(captioner()
        .arg("train")
        .arg(fixture("flickr8k_mini"))
        .arg("--resume"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));
    let out = run(captioner()
        .arg("train")
        .arg(fixture("flickr8k_mini"))
        .args(["--decoder", "transformer"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("merge"));
}

#[test]
fn caption_with_a_missing_model_or_a_bad_image_says_which() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(captioner()
        .arg("caption")
        .arg("--model")
        .arg(tmp.path().join("nope"))
        .arg(fixture("encoder/images/2529205842_bdcb49d65b.jpg")));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

/// The shipped model: `captioner caption photo.jpg` and the tutorial's `-i` form.
#[test]
fn shipped_model_captions_photos() {
    let model = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("models/default");
    assert!(
        model.join("weights.safetensors").is_file(),
        "the default model must ship in models/default"
    );
    let dog = fixture("encoder/images/246231741_882b45c4e1.jpg");
    let out = run(captioner().arg("caption").arg(&dog));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("dog") || text.contains("shepherd"),
        "caption of a German shepherd: {text}"
    );
    let out = run(captioner().arg("-i").arg(&dog));
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), text);
    // A bad image among good ones: reported by name, the others still captioned.
    let out = run(captioner()
        .arg("caption")
        .arg(fixture("broken_flickr8k/Flicker8k_Dataset/empty.jpg"))
        .arg(&dog));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty.jpg"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("246231741_882b45c4e1.jpg"), "{stdout}");
}

/// `captioner bench caption` measures warm latency with the shipped model.
#[test]
fn bench_caption_reports_latency() {
    let out = run(captioner()
        .args(["bench", "caption", "--n", "2", "--beam", "2"])
        .arg(fixture("encoder/images/2529205842_bdcb49d65b.jpg")));
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!(v["runs"], 2);
    assert_eq!(v["beam"], 2);
    let median = v["median_ms"].as_f64().unwrap();
    assert!(median > 0.0 && median <= v["max_ms"].as_f64().unwrap());
}

/// `captioner batch`: captions a folder, names bad files, writes sidecars without touching
/// existing ones unless asked, and CSV/JSON.
#[test]
fn batch_captions_a_folder_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(photos.join("sub")).unwrap();
    for name in ["2529205842_bdcb49d65b.jpg", "246231741_882b45c4e1.jpg"] {
        std::fs::copy(fixture("encoder/images").join(name), photos.join(name)).unwrap();
    }
    std::fs::copy(
        fixture("encoder/images/93922153_8d831f7f01.jpg"),
        photos.join("sub/cliff.jpg"),
    )
    .unwrap();
    std::fs::write(photos.join("broken.jpg"), b"not a jpeg").unwrap();
    std::fs::write(photos.join("246231741_882b45c4e1.txt"), "mine\n").unwrap();
    let csv = tmp.path().join("out.csv");
    let out = run(captioner()
        .arg("batch")
        .arg(&photos)
        .args(["--sidecars", "--beam", "2"])
        .arg("--csv")
        .arg(&csv));
    assert_eq!(out.status.code(), Some(1), "one photo is broken");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.contains("sub/cliff.jpg: "));
    // The existing sidecar is left alone; the others are written.
    assert_eq!(
        std::fs::read_to_string(photos.join("246231741_882b45c4e1.txt")).unwrap(),
        "mine\n"
    );
    let written = std::fs::read_to_string(photos.join("sub/cliff.txt")).unwrap();
    assert!(stdout.contains(&format!("sub/cliff.jpg: {}", written.trim())));
    assert!(!photos.join("broken.txt").exists());
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // --overwrite replaces it.
    let out = run(captioner()
        .arg("batch")
        .arg(&photos)
        .args(["--sidecars", "--overwrite"]));
    assert_eq!(out.status.code(), Some(1));
    assert_ne!(
        std::fs::read_to_string(photos.join("246231741_882b45c4e1.txt")).unwrap(),
        "mine\n"
    );
}

/// `captioner batch --sidecars --existing overwrite`: a read-only sidecar is left as it is
/// (contents and mode), reported by name, and the other photos' sidecars are still written.
/// The mode bits are what counts, so this holds when the tests run as root too.
#[cfg(unix)]
#[test]
fn batch_leaves_a_read_only_sidecar_alone() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for name in ["2529205842_bdcb49d65b.jpg", "246231741_882b45c4e1.jpg"] {
        std::fs::copy(fixture("encoder/images").join(name), photos.join(name)).unwrap();
    }
    let locked = photos.join("246231741_882b45c4e1.txt");
    std::fs::write(&locked, "mine\n").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o444)).unwrap();
    let out =
        run(captioner()
            .arg("batch")
            .arg(&photos)
            .args(["--sidecars", "--existing", "overwrite"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("246231741_882b45c4e1.txt: the file is read-only; left unchanged"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&locked).unwrap(), "mine\n");
    let mode = std::fs::metadata(&locked).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444);
    assert!(
        photos.join("2529205842_bdcb49d65b.txt").is_file(),
        "{stderr}"
    );
}

/// `captioner batch --xmp-sidecars --embed --alt-html`: captions land where photo managers
/// and web pages read them; a photo that already has a description keeps it unless
/// --overwrite; the prefix is applied.
#[test]
fn batch_writes_metadata_and_alt_text() {
    use captioner::metadata::{self, Described};
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for name in ["2529205842_bdcb49d65b.jpg", "246231741_882b45c4e1.jpg"] {
        std::fs::copy(fixture("encoder/images").join(name), photos.join(name)).unwrap();
    }
    let mine = photos.join("246231741_882b45c4e1.jpg");
    metadata::embed_description(
        &mine,
        &Described {
            caption: "my own \"words\" <kept>".into(),
            subjects: vec![],
        },
    )
    .unwrap();
    let mine_before = std::fs::read(&mine).unwrap();
    let page = tmp.path().join("alt.html");
    let out = run(captioner()
        .arg("batch")
        .arg(&photos)
        .args(["--embed", "--xmp-sidecars", "--prefix", "photo:"])
        .arg("--alt-html")
        .arg(&page)
        .arg("--alt-csv")
        .arg(tmp.path().join("alt.csv"))
        .arg("--alt-json")
        .arg(tmp.path().join("alt.json")));
    assert!(out.status.success());
    let csv = std::fs::read_to_string(tmp.path().join("alt.csv")).unwrap();
    assert!(csv.starts_with("file,alt_text,confidence,tags\n"), "{csv}");
    assert!(
        csv.contains("photos/2529205842_bdcb49d65b.jpg,photo: "),
        "{csv}"
    );
    let alt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("alt.json")).unwrap()).unwrap();
    assert_eq!(alt.as_array().unwrap().len(), 2);
    for row in alt.as_array().unwrap() {
        assert!(
            row["file"].as_str().unwrap().starts_with("photos/"),
            "{row}"
        );
        assert!(
            row["alt_text"].as_str().unwrap().starts_with("photo: "),
            "{row}"
        );
        let c = row["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c));
    }
    let other = photos.join("2529205842_bdcb49d65b.jpg");
    let d = metadata::read_description(&other).unwrap().unwrap();
    assert!(d.caption.starts_with("photo: "), "{}", d.caption);
    assert!(photos.join("2529205842_bdcb49d65b.xmp").is_file());
    // The photo that had a description is untouched, byte for byte.
    assert_eq!(std::fs::read(&mine).unwrap(), mine_before);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("photos/2529205842_bdcb49d65b.jpg"), "{html}");
    assert!(html.contains(&format!("alt=\"{}\"", d.caption)), "{html}");
    // --existing append keeps the description and adds the caption after it, once.
    for _ in 0..2 {
        let out =
            run(captioner()
                .arg("batch")
                .arg(&photos)
                .args(["--embed", "--existing", "append"]));
        assert!(out.status.success());
    }
    let d = metadata::read_description(&mine).unwrap().unwrap();
    let (old, new) = d.caption.split_once(", ").unwrap();
    assert_eq!(old, "my own \"words\" <kept>");
    assert!(!new.is_empty() && !new.contains(", "), "{}", d.caption);
    // --overwrite replaces it.
    let out = run(captioner()
        .arg("batch")
        .arg(&photos)
        .args(["--embed", "--overwrite"]));
    assert!(out.status.success());
    let d = metadata::read_description(&mine).unwrap().unwrap();
    assert!(!d.caption.contains("my own"), "{}", d.caption);
}

/// `captioner batch` on a big folder stops cleanly on Ctrl-C (SIGINT) and keeps what it
/// captioned in its exports. The signal is sent when the first caption is printed, so the
/// test waits for an event, not for a time.
#[cfg(unix)]
#[test]
fn batch_stops_on_ctrl_c_and_keeps_what_is_done() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let bytes = std::fs::read(fixture("encoder/images/2529205842_bdcb49d65b.jpg")).unwrap();
    let total = 3000;
    for i in 0..total {
        std::fs::write(photos.join(format!("p{i:05}.jpg")), &bytes).unwrap();
    }
    let csv = tmp.path().join("done.csv");
    let mut child = captioner()
        .arg("batch")
        .arg(&photos)
        .arg("--csv")
        .arg(&csv)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().expect("a caption line").unwrap();
    assert!(first.contains(": "), "{first}");
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let printed = 1 + lines.count();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped early"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The CSV holds exactly the photos captioned before the stop.
    let csv = std::fs::read_to_string(&csv).unwrap();
    let rows = csv.lines().count() - 1;
    assert_eq!(rows, printed, "{stderr}");
    assert!(rows >= 1 && rows < total, "{rows} of {total}");
}

/// `train DIR --from MODEL` fine-tunes: it keeps the model's vocabulary and decoder (the size
/// arguments are ignored), starts from its weights (with a tiny learning rate the weights
/// barely move, which a fresh start would not give), counts the caption words outside the
/// vocabulary, and records the base model in meta.json.
#[test]
fn train_from_keeps_the_vocabulary_and_starts_from_the_base_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let base_run = tmp.path().join("base");
    let out = run(captioner()
        .arg("train")
        .arg(fixture("flickr8k_mini"))
        .args([
            "--epochs",
            "1",
            "--batch",
            "16",
            "--min-count",
            "1",
            "--seed",
            "5",
        ])
        .args(["--hidden", "32", "--embed", "32", "--json"])
        .arg("--out")
        .arg(&base_run)
        .arg("--cache")
        .arg(&cache));
    assert!(out.status.success());
    let base = base_run.join("last");

    // A folder of the user's own captions (sidecar layout) with a word the base never saw.
    let folder = tmp.path().join("mine");
    std::fs::create_dir(&folder).unwrap();
    let images = fixture("flickr8k_mini/Flicker8k_Dataset");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    names.sort();
    for (i, p) in names.iter().take(10).enumerate() {
        let name = p.file_name().unwrap();
        std::fs::copy(p, folder.join(name)).unwrap();
        std::fs::write(
            folder.join(name).with_extension("txt"),
            format!("a zorblax dog runs\na dog number {i} plays in the grass\n"),
        )
        .unwrap();
    }
    let tuned = tmp.path().join("tuned");
    let out = run(captioner()
        .arg("train")
        .arg(&folder)
        .arg("--from")
        .arg(&base)
        .args([
            "--epochs",
            "1",
            "--lr",
            "0.000001",
            "--split-fractions",
            "50/50/0",
        ])
        .args(["--hidden", "64", "--embed", "64", "--json"])
        .arg("--out")
        .arg(&tuned)
        .arg("--cache")
        .arg(&cache));
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fine = lines
        .iter()
        .find(|v| v["event"] == "fine_tune")
        .expect("a fine_tune event");
    // "zorblax" once per photo, and the digits are unknown unless the base's captions had them.
    assert!(fine["unknown_words"].as_u64().unwrap() >= 10, "{fine}");
    assert!(fine["words"].as_u64().unwrap() > fine["unknown_words"].as_u64().unwrap());

    let read = |dir: &Path, f: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(f)).unwrap()).unwrap()
    };
    let last = tuned.join("last");
    assert_eq!(read(&last, "vocab.json"), read(&base, "vocab.json"));
    assert!(
        !read(&last, "vocab.json")
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "zorblax")
    );
    assert_eq!(
        read(&last, "config.json")["decoder"],
        read(&base, "config.json")["decoder"]
    );
    assert_eq!(read(&last, "config.json")["decoder"]["hidden_dim"], 32);
    assert!(
        read(&last, "meta.json")["base_model"]
            .as_str()
            .unwrap()
            .contains(&base.display().to_string())
    );

    let cfg = captioner::model_dir::read_config(&base).unwrap().decoder;
    let before = captioner::train::load_weights(&base, &cfg).unwrap();
    let after = captioner::train::load_weights(&last, &cfg).unwrap();
    let moved = before
        .as_slice()
        .iter()
        .zip(after.as_slice())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // Adam moves each weight by at most about lr per step; a fresh start would differ by far more.
    assert!(moved < 1e-4, "weights moved by up to {moved}");
    // The fine-tuning run's own seed (42) would start elsewhere.
    let fresh = captioner::train::Params::init(&cfg, 42).unwrap();
    let apart = before
        .as_slice()
        .iter()
        .zip(fresh.as_slice())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        apart > 1e-2,
        "the base differs from a fresh start by {apart}"
    );

    // A model for another encoder is refused with a clear message.
    let mut config = read(&base, "config.json");
    config["encoder_id"] = serde_json::json!("some-other-encoder");
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    for f in ["vocab.json", "weights.safetensors", "meta.json"] {
        std::fs::copy(base.join(f), other.join(f)).unwrap();
    }
    std::fs::write(other.join("config.json"), config.to_string()).unwrap();
    let out = run(captioner()
        .arg("train")
        .arg(&folder)
        .arg("--from")
        .arg(&other)
        .args(["--epochs", "1", "--split-fractions", "50/50/0"])
        .arg("--out")
        .arg(tmp.path().join("refused"))
        .arg("--cache")
        .arg(&cache));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("some-other-encoder"), "{err}");
}

/// `captioner train --decoder attention` on the fixture, then `caption --attention DIR`: one
/// PNG per word of the caption, the maps in `--json` sum to 1 over the 7x7 cells; a merge model
/// asked for maps says why it has none.
#[test]
fn attention_model_writes_one_map_per_word() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let out = run(captioner()
        .arg("train")
        .arg(fixture("flickr8k_mini"))
        .args(["--decoder", "attention", "--epochs", "1", "--batch", "16"])
        .args([
            "--min-count",
            "1",
            "--hidden",
            "16",
            "--embed",
            "16",
            "--attention-dim",
            "8",
        ])
        .arg("--out")
        .arg(&run_dir)
        .arg("--cache")
        .arg(tmp.path().join("cache")));
    assert!(out.status.success());
    let image = fixture("flickr8k_mini/Flicker8k_Dataset/1191338263_a4fa073154.jpg");
    let maps_dir = tmp.path().join("maps");
    let out = run(captioner()
        .arg("caption")
        .arg("--model")
        .arg(run_dir.join("last"))
        .args(["--beam", "2", "--json", "--max-len", "8"])
        .arg("--attention")
        .arg(&maps_dir)
        .arg(&image));
    assert!(out.status.success());
    let v = json(&out);
    let c = &v[0];
    let words = c["words"].as_array().unwrap().len();
    assert!(words >= 1);
    let att = &c["attention"];
    assert_eq!(
        (att["rows"].as_u64(), att["cols"].as_u64()),
        (Some(7), Some(7))
    );
    let maps = att["words"].as_array().unwrap();
    assert_eq!(maps.len(), words);
    for m in maps {
        let sum: f64 = m
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-3, "{sum}");
    }
    let pngs: Vec<_> = std::fs::read_dir(&maps_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pngs.len(), words, "{pngs:?}");
    assert!(
        pngs.iter()
            .all(|p| p.starts_with("1191338263_a4fa073154-") && p.ends_with(".png"))
    );

    // The shipped merge model has no maps and says why (the caption still prints).
    let merge = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("models/merge");
    let out = run(captioner()
        .arg("caption")
        .arg("--model")
        .arg(&merge)
        .arg("--attention")
        .arg(tmp.path().join("none"))
        .arg(&image));
    assert!(!out.status.success());
    assert!(!out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no attention maps") && err.contains("merge decoder"),
        "{err}"
    );
}

#[test]
fn models_lists_a_run_once_and_its_last_epoch_can_still_be_named() {
    let tmp = tempfile::tempdir().unwrap();
    let models_dir = tmp.path().join("models");
    let merge = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("models/merge");
    let run_dir = models_dir.join("ds200-merge-run");
    for (leaf, epochs) in [("best", 18), ("last", 20)] {
        let dir = run_dir.join(leaf);
        std::fs::create_dir_all(&dir).unwrap();
        for f in [
            "config.json",
            "vocab.json",
            "weights.safetensors",
            "meta.json",
        ] {
            std::fs::copy(merge.join(f), dir.join(f)).unwrap();
        }
        // A name an earlier version stored at the first stop, stale since.
        captioner::model_dir::update_meta(&dir, |m| {
            m.epochs = epochs;
            m.name = format!("flickr8k merge, 9 epochs ({leaf})");
        })
        .unwrap();
    }
    let out = run(captioner()
        .args(["models", "--json", "--models-dir"])
        .arg(&models_dir));
    assert!(out.status.success());
    let list = json(&out);
    let trained: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["shipped"] == false)
        .collect();
    assert_eq!(trained.len(), 1, "one entry per run: {trained:?}");
    assert_eq!(trained[0]["name"], "flickr8k merge, 18 epochs (best)");
    assert_eq!(
        trained[0]["last"]["name"],
        "flickr8k merge, 20 epochs (last)"
    );
    // The table names both, each with its folder, so either can be passed to --model.
    let out = run(captioner()
        .args(["models", "--models-dir"])
        .arg(&models_dir));
    let text = String::from_utf8_lossy(&out.stdout);
    for (name, leaf) in [
        ("flickr8k merge, 18 epochs (best)", "best"),
        ("flickr8k merge, 20 epochs (last)", "last"),
    ] {
        let row = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}: {text}"));
        assert!(
            row.ends_with(&run_dir.join(leaf).display().to_string()),
            "{row}"
        );
    }
    assert!(!text.contains("9 epochs"), "{text}");
    // The shipped model under its one name.
    assert!(text.contains("(shipped)"), "{text}");
}
