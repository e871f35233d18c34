//! `captioner batch --shard K/N --out OUT` and `captioner merge` (issue 28): shards merged
//! give what one run gives; an interrupted shard goes on without captioning its finished
//! photos again (counted); a torn last line is dropped and redone; other options or another
//! model are refused; a missing shard is named by number; tar archives are read in place.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first `n` photos of the everyday fixtures (by name), copied into a new folder.
fn photos(n: usize) -> (tempfile::TempDir, Vec<PathBuf>) {
    let mut all: Vec<PathBuf> = std::fs::read_dir(fixture("everyday"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    all.sort();
    assert!(all.len() >= n);
    let dir = tempfile::tempdir().unwrap();
    let copies = all[..n]
        .iter()
        .map(|p| {
            let to = dir.path().join(p.file_name().unwrap());
            std::fs::copy(p, &to).unwrap();
            to
        })
        .collect();
    (dir, copies)
}

fn json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: {}",
            path.display(),
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// The records without `millis` (the time each took, which differs between runs).
fn without_millis(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("millis");
            r
        })
        .collect()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn shard(input: &Path, spec: &str, out: &Path) -> Command {
    let mut c = captioner();
    c.arg("batch")
        .arg(input)
        .args(["--shard", spec, "--out"])
        .arg(out);
    c
}

#[test]
fn shards_merged_are_the_single_run() {
    let (dir, images) = photos(10);
    let t = tempfile::tempdir().unwrap();
    let (single_json, single_csv) = (t.path().join("single.json"), t.path().join("single.csv"));
    let out = run(captioner()
        .arg("batch")
        .arg(dir.path())
        .arg("--json")
        .arg(&single_json)
        .arg("--csv")
        .arg(&single_csv));
    assert!(out.status.success());

    let shards = t.path().join("shards");
    // Run out of order: the merge follows the photo list, not the order shards finished in.
    for k in [2, 0, 3, 1] {
        let out = run(&mut shard(dir.path(), &format!("{k}/4"), &shards));
        assert!(out.status.success(), "shard {k}");
        let manifest = json(&shards.join(format!("shard-{k}-of-4.done.json")));
        assert_eq!(manifest["shard"], k);
        assert_eq!(manifest["photos_total"], 10);
        assert_eq!(manifest["failed"], 0);
        assert!(manifest["model"]["hash"].as_str().unwrap().len() == 64);
        assert_eq!(manifest["options"]["decode"]["beam"], 3);
        assert!(manifest["timings"]["photos_per_second"].as_f64().unwrap() > 0.0);
    }
    // Every photo in exactly one shard.
    let counted: usize = (0..4)
        .map(|k| lines(&shards.join(format!("shard-{k}-of-4.jsonl"))).len())
        .sum();
    assert_eq!(counted, images.len());

    let (merged_json, merged_csv) = (t.path().join("merged.json"), t.path().join("merged.csv"));
    let out = run(captioner()
        .arg("merge")
        .arg(&shards)
        .arg("--json")
        .arg(&merged_json)
        .arg("--csv")
        .arg(&merged_csv));
    assert!(out.status.success());
    let (single, merged) = (json(&single_json), json(&merged_json));
    assert_eq!(merged.as_array().unwrap().len(), 10);
    assert_eq!(without_millis(&merged), without_millis(&single));
    // The CSV has no timings: the same bytes.
    assert_eq!(
        std::fs::read(&merged_csv).unwrap(),
        std::fs::read(&single_csv).unwrap()
    );

    // Sidecars from the merge: each photo's caption beside it.
    let out = run(captioner().arg("merge").arg(&shards).arg("--sidecars"));
    assert!(out.status.success());
    for (photo, record) in images.iter().zip(single.as_array().unwrap()) {
        let sidecar = std::fs::read_to_string(photo.with_extension("txt")).unwrap();
        assert_eq!(sidecar.trim(), record["caption"].as_str().unwrap());
    }

    // A shard with its manifest is skipped: nothing is captioned again.
    let before = std::fs::read(shards.join("shard-1-of-4.jsonl")).unwrap();
    let out = run(&mut shard(dir.path(), "1/4", &shards));
    assert!(out.status.success());
    assert!(stderr(&out).contains("already done"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(shards.join("shard-1-of-4.jsonl")).unwrap(),
        before
    );
}

/// Waits until `path` has at least `n` complete lines (or the child has ended).
fn wait_for_lines(path: &Path, n: usize, child: &mut std::process::Child) {
    let patience: u64 = std::env::var("CAPTIONER_TEST_PATIENCE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let deadline = Instant::now() + Duration::from_secs(300 * patience);
    while lines(path).len() < n {
        assert!(
            Instant::now() < deadline,
            "{} never got {n} lines",
            path.display()
        );
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_killed_shard_resumes_without_captioning_its_finished_photos_again() {
    let (dir, images) = photos(40);
    let t = tempfile::tempdir().unwrap();
    let out_dir = t.path().join("shards");
    let records = out_dir.join("shard-0-of-1.jsonl");
    let mut child = shard(dir.path(), "0/1", &out_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lines(&records, 3, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = lines(&records);
    assert!(
        !out_dir.join("shard-0-of-1.done.json").exists(),
        "the shard finished before it could be killed"
    );
    assert!(
        kept.len() >= 3 && kept.len() < images.len(),
        "{}",
        kept.len()
    );

    let out = run(&mut shard(dir.path(), "0/1", &out_dir));
    assert!(out.status.success());
    let all = lines(&records);
    assert_eq!(all.len(), images.len());
    // The lines written before the kill are still there, unchanged (their timings too), and
    // the second run captioned only the others.
    assert_eq!(all[..kept.len()], kept[..]);
    let manifest = json(&out_dir.join("shard-0-of-1.done.json"));
    assert_eq!(manifest["timings"]["resumed_at"], kept.len());
    assert_eq!(
        manifest["timings"]["photos_this_run"],
        images.len() - kept.len()
    );
    assert_eq!(manifest["captioned"], images.len());
    assert!(
        stderr(&out).contains(&format!(
            "{} of {} photos already done",
            kept.len(),
            images.len()
        )),
        "{}",
        stderr(&out)
    );
    // In the order of the photo list, each once.
    let names: Vec<String> = all
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["image"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted);
}

#[test]
fn a_torn_last_line_is_dropped_and_its_photo_captioned_again() {
    let (dir, images) = photos(6);
    let t = tempfile::tempdir().unwrap();
    let out_dir = t.path().join("shards");
    assert!(
        run(&mut shard(dir.path(), "0/1", &out_dir))
            .status
            .success()
    );
    let records = out_dir.join("shard-0-of-1.jsonl");
    let full = lines(&records);
    // As if the run had been killed while writing the fourth line: three lines and a half.
    let mut torn = full[..3].join("\n");
    torn.push('\n');
    torn.push_str(&full[3][..full[3].len() / 2]);
    std::fs::write(&records, &torn).unwrap();
    std::fs::remove_file(out_dir.join("shard-0-of-1.done.json")).unwrap();

    let out = run(&mut shard(dir.path(), "0/1", &out_dir));
    assert!(out.status.success());
    assert!(stderr(&out).contains("cut short"), "{}", stderr(&out));
    let again = lines(&records);
    assert_eq!(again.len(), images.len());
    assert_eq!(again[..3], full[..3]);
    for l in &again {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
    let manifest = json(&out_dir.join("shard-0-of-1.done.json"));
    assert_eq!(manifest["timings"]["photos_this_run"], images.len() - 3);
    let caption =
        |l: &str| serde_json::from_str::<serde_json::Value>(l).unwrap()["caption"].clone();
    assert_eq!(caption(&again[3]), caption(&full[3]));
}

#[test]
fn other_options_or_another_model_are_refused() {
    let (dir, _) = photos(4);
    let t = tempfile::tempdir().unwrap();
    let out_dir = t.path().join("shards");
    assert!(
        run(&mut shard(dir.path(), "0/2", &out_dir))
            .status
            .success()
    );
    // Unfinished (no manifest), so a run would append to it.
    std::fs::remove_file(out_dir.join("shard-0-of-2.done.json")).unwrap();
    let records = out_dir.join("shard-0-of-2.jsonl");
    let before = std::fs::read(&records).unwrap();

    let out = run(shard(dir.path(), "0/2", &out_dir).args(["--beam", "5"]));
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("shard-0-of-2.state.json"), "{e}");
    assert!(e.contains("decode.beam: 5 here, 3 then"), "{e}");

    let out = run(shard(dir.path(), "0/2", &out_dir)
        .arg("--model")
        .arg(fixture("../../models/merge")));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("the model: "), "{}", stderr(&out));

    // A finished shard refuses too, rather than passing for one made with these options.
    assert!(
        run(&mut shard(dir.path(), "1/2", &out_dir))
            .status
            .success()
    );
    let out = run(shard(dir.path(), "1/2", &out_dir).args(["--prefix", "sks"]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("prefix: \"sks\" here, \"\" then"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&records).unwrap(), before);
}

#[test]
fn merge_names_missing_unfinished_and_failed_shards() {
    let (dir, _) = photos(5);
    // A photo that cannot be read goes into its shard's failures; the shard finishes.
    std::fs::write(dir.path().join("zz_broken.jpg"), b"not a jpeg").unwrap();
    let t = tempfile::tempdir().unwrap();
    let out_dir = t.path().join("shards");
    let merged = t.path().join("merged.json");
    for k in [0, 2] {
        run(&mut shard(dir.path(), &format!("{k}/3"), &out_dir));
    }
    let out = run(captioner()
        .arg("merge")
        .arg(&out_dir)
        .arg("--json")
        .arg(&merged));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("shard 1 of 3 missing"),
        "{}",
        stderr(&out)
    );
    assert!(!merged.exists());

    // Started but not finished.
    run(&mut shard(dir.path(), "1/3", &out_dir));
    std::fs::remove_file(out_dir.join("shard-1-of-3.done.json")).unwrap();
    let out = run(captioner().arg("merge").arg(&out_dir));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("shard 1 of 3 not finished"),
        "{}",
        stderr(&out)
    );

    // Finished: merged, and the shard with the broken photo named (exit status 1, as batch).
    let out = run(&mut shard(dir.path(), "1/3", &out_dir));
    assert!(out.status.success());
    let out = run(captioner()
        .arg("merge")
        .arg(&out_dir)
        .arg("--json")
        .arg(&merged));
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("shard 2: zz_broken.jpg"), "{e}");
    assert!(
        e.contains("shard 2 of 3 had photos that could not be read"),
        "{e}"
    );
    assert_eq!(json(&merged).as_array().unwrap().len(), 5);
    let manifest = json(&out_dir.join("shard-2-of-3.done.json"));
    assert_eq!(manifest["failed"], 1);
    assert_eq!(manifest["failures"][0]["image"], "zz_broken.jpg");
}

/// A tar archive in the WebDataset layout: `000000.jpg`, `000000.txt`, ... (the order of the
/// members shuffled: the list is sorted all the same).
fn webdataset(images: &[PathBuf], tar_path: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(tar_path).unwrap());
    for (i, p) in images.iter().enumerate().rev() {
        b.append_path_with_name(p, format!("{i:06}.jpg")).unwrap();
        let text = b"a caption";
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("{i:06}.txt"), &text[..])
            .unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn tar_archives_are_read_in_place() {
    let (dir, images) = photos(6);
    let t = tempfile::tempdir().unwrap();
    // The same photos as files named as in the archive: the single run to compare with.
    let named = t.path().join("named");
    std::fs::create_dir(&named).unwrap();
    for (i, p) in images.iter().enumerate() {
        std::fs::copy(p, named.join(format!("{i:06}.jpg"))).unwrap();
    }
    let single = t.path().join("single.json");
    assert!(
        run(captioner()
            .arg("batch")
            .arg(&named)
            .arg("--json")
            .arg(&single))
        .status
        .success()
    );
    let tar_path = t.path().join("photos.tar");
    webdataset(&images, &tar_path);
    drop(dir);

    let out_dir = t.path().join("shards");
    for k in 0..2 {
        assert!(
            run(&mut shard(&tar_path, &format!("{k}/2"), &out_dir))
                .status
                .success()
        );
    }
    let merged = t.path().join("merged.json");
    assert!(
        run(captioner()
            .arg("merge")
            .arg(&out_dir)
            .arg("--json")
            .arg(&merged))
        .status
        .success()
    );
    let (single, merged) = (json(&single), json(&merged));
    let field = |v: &serde_json::Value, k: &str| -> Vec<serde_json::Value> {
        v.as_array().unwrap().iter().map(|r| r[k].clone()).collect()
    };
    assert_eq!(field(&merged, "image"), field(&single, "image"));
    assert_eq!(field(&merged, "caption"), field(&single, "caption"));
    assert_eq!(field(&merged, "confidence"), field(&single, "confidence"));
    assert_eq!(
        merged[0]["path"],
        tar_path.join("000000.jpg").display().to_string()
    );

    // A list naming the archive: the same captions, the names under the archive's.
    let list = t.path().join("list.txt");
    std::fs::write(&list, "photos.tar\n").unwrap();
    let listed = t.path().join("listed");
    let out = run(captioner()
        .args(["batch", "--files-from"])
        .arg(&list)
        .args(["--shard", "0/1", "--out"])
        .arg(&listed));
    assert!(out.status.success());
    let rows = lines(&listed.join("shard-0-of-1.jsonl"));
    assert_eq!(rows.len(), images.len());
    let first: serde_json::Value = serde_json::from_str(&rows[0]).unwrap();
    assert_eq!(first["image"], "photos.tar/000000.jpg");
    assert_eq!(first["caption"], single[0]["caption"]);

    // Sidecars cannot be written beside photos inside an archive: refused, not attempted.
    let out = run(captioner().arg("batch").arg(&tar_path).arg("--sidecars"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("tar archive"), "{}", stderr(&out));
}
