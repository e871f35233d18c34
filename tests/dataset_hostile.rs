//! Hostile dataset files: a few bad entries among good ones are reported one by one (file and
//! position) and the rest is imported, in every layout; only an unusable dataset fails.

use std::path::{Path, PathBuf};

use captioner::dataset::{self, DatasetError, ImportOptions, Layout, Split};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn import(path: &Path) -> dataset::Dataset {
    dataset::import(path, &ImportOptions::default()).unwrap()
}

/// Messages of the problems about files whose name ends with `file`.
fn messages(ds: &dataset::Dataset, file: &str) -> Vec<String> {
    ds.problems
        .iter()
        .filter(|p| p.file.to_string_lossy().ends_with(file))
        .map(|p| p.message.clone())
        .collect()
}

fn coco_dir(tmp: &Path, json: &str) -> PathBuf {
    let dir = tmp.join("coco");
    std::fs::create_dir_all(dir.join("annotations")).unwrap();
    std::fs::create_dir_all(dir.join("train2017")).unwrap();
    for i in 1..=2 {
        let name = format!("00000000000{i}.jpg");
        std::fs::copy(
            fixture("coco_mini/train2017").join(&name),
            dir.join("train2017").join(&name),
        )
        .unwrap();
    }
    std::fs::write(dir.join("annotations/captions_train2017.json"), json).unwrap();
    dir
}

#[test]
fn coco_bad_annotations_are_skipped_one_by_one() {
    let tmp = tempfile::tempdir().unwrap();
    let json = r#"{
      "images": [
        {"id": 1, "file_name": "000000000001.jpg"},
        {"id": 2, "file_name": "000000000002.jpg"},
        {"id": 3},
        {"id": 4, "file_name": null},
        {"id": 1, "file_name": "other.jpg"},
        {"id": 5, "file_name": "../../etc/passwd"},
        null,
        {"file_name": "000000000002.jpg"}
      ],
      "annotations": [
        {"id": 10, "image_id": 1, "caption": "A dog runs on the grass."},
        {"id": 11, "image_id": 1},
        {"id": 12, "image_id": 1, "caption": 42},
        null,
        {"id": 13, "image_id": 77, "caption": "No such image."},
        {"id": 10, "image_id": 2, "caption": "Same id as the first."},
        {"id": 14, "image_id": 3, "caption": "An image without a file name."},
        {"id": 15, "image_id": 2, "caption": "Children playing in a park."},
        {"id": 16, "caption": "No image id."},
        "just a string",
        {"id": 17, "image_id": "2", "caption": "An image id written as a string."},
        {"id": 18, "image_id": 1, "caption": ["a", "list"]}
      ]
    }"#;
    let dir = coco_dir(tmp.path(), json);
    let ds = import(&dir);
    assert_eq!(ds.layout, Layout::Coco);
    assert_eq!(ds.images.len(), 2);
    let dog = &ds.images[0];
    assert_eq!(dog.name, "train2017/000000000001.jpg");
    assert_eq!(dog.captions, vec!["A dog runs on the grass."]);
    assert_eq!(
        ds.images[1].captions,
        vec![
            "Children playing in a park.",
            "An image id written as a string."
        ]
    );
    let got = messages(&ds, "captions_train2017.json");
    let expect = [
        "images[2]: image 3: no \"file_name\" (missing or null); skipped",
        "images[3]: image 4: no \"file_name\" (missing or null); skipped",
        "images[4]: image id 1 is given twice (first at images[0]); skipped",
        "images[5]: image 5: \"file_name\" '../../etc/passwd' is not a plain relative name; skipped",
        "images[6]: expected an image object, found null; skipped",
        "images[7]: no \"id\" (missing or null); skipped",
        "annotations[1] (id 11): no \"caption\" (missing or null); skipped",
        "annotations[2] (id 12): \"caption\" is a number, not a string; skipped",
        "annotations[3]: expected an annotation object, found null; skipped",
        "annotations[4] (id 13): image id 77 is not in \"images\"; skipped",
        "annotations[5] (id 10): annotation id 10 is given twice (first at annotations[0]); skipped",
        "annotations[6] (id 14): image id 3 is not in \"images\"; skipped",
        "annotations[8] (id 16): no \"image_id\" (missing or null); skipped",
        "annotations[9]: expected an annotation object, found a string; skipped",
        "annotations[11] (id 18): \"caption\" is an array, not a string; skipped",
    ];
    for e in expect {
        assert!(got.iter().any(|m| m == e), "missing {e:?} in {got:#?}");
    }
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    // Every problem names the file; printed, it reads `FILE: annotations[N] ...`.
    let shown = ds.problems[0].to_string();
    assert!(shown.contains("captions_train2017.json: "), "{shown}");
}

#[test]
fn coco_with_only_bad_annotations_is_unusable() {
    let tmp = tempfile::tempdir().unwrap();
    let mut anns = Vec::new();
    for i in 0..50 {
        anns.push(format!("{{\"id\": {i}, \"image_id\": 1}}"));
    }
    let json = format!(
        "{{\"images\": [{{\"id\": 1, \"file_name\": \"000000000001.jpg\"}}], \"annotations\": [{}]}}",
        anns.join(",")
    );
    let dir = coco_dir(tmp.path(), &json);
    let e = dataset::import(&dir, &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, DatasetError::Unusable { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("annotations[0] (id 0): no \"caption\" (missing or null)"),
        "{msg}"
    );
    // The message stays short however many entries are bad.
    assert!(msg.contains("and 45 more problems"), "{msg}");
    assert!(msg.len() < 2_000, "{}", msg.len());
}

#[test]
fn coco_file_without_arrays_is_reported_and_others_import() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = coco_dir(
        tmp.path(),
        r#"{"images": [{"id": 1, "file_name": "000000000001.jpg"}],
            "annotations": [{"id": 1, "image_id": 1, "caption": "A dog."}]}"#,
    );
    std::fs::write(
        dir.join("annotations/captions_val2017.json"),
        r#"{"images": {"id": 3}, "annotations": 7}"#,
    )
    .unwrap();
    let ds = import(&dir);
    assert_eq!(ds.caption_count(), 1);
    let got = messages(&ds, "captions_val2017.json");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("not a COCO captions file"), "{got:?}");
}

/// Whether this process can still read a file after `chmod 000` (root can).
fn chmod_blocks_reading(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::read(path).is_err()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn an_unreadable_sidecar_or_split_file_does_not_reject_the_set() {
    let tmp = tempfile::tempdir().unwrap();
    let side = tmp.path().join("side");
    copy_tree(&fixture("sidecar_mini"), &side);
    if !chmod_blocks_reading(&side.join("kids.txt")) {
        eprintln!("skipped: running as root, chmod 000 does not make a file unreadable");
        return;
    }
    let ds = import(&side);
    assert_eq!(ds.images.len(), 1);
    assert!(
        messages(&ds, "kids.txt")
            .iter()
            .any(|m| m.contains("cannot be read")),
        "{:?}",
        ds.problems
    );

    let flickr = tmp.path().join("flickr");
    copy_tree(&fixture("flickr8k_mini"), &flickr);
    assert!(chmod_blocks_reading(
        &flickr.join("Flickr8k_text/Flickr_8k.devImages.txt")
    ));
    let ds = import(&flickr);
    assert_eq!(ds.images.len(), 24);
    assert_eq!(ds.split(Split::Train).count(), 16);
    assert!(
        messages(&ds, "Flickr_8k.devImages.txt")
            .iter()
            .any(|m| m.contains("split file ignored")),
        "{:?}",
        ds.problems
    );
}

#[test]
fn one_bad_line_never_rejects_a_set() {
    let tmp = tempfile::tempdir().unwrap();
    // Kaggle CSV: an unterminated quote and a line of invalid UTF-8 among good rows.
    let kaggle = tmp.path().join("kaggle");
    copy_tree(&fixture("kaggle_mini"), &kaggle);
    let mut csv = std::fs::read(kaggle.join("captions.txt")).unwrap();
    csv.extend_from_slice(b"bad\xff\xfe.jpg,caption\n");
    std::fs::write(kaggle.join("captions.txt"), &csv).unwrap();
    let before = import(&fixture("kaggle_mini")).caption_count();
    let ds = import(&kaggle);
    assert_eq!(ds.caption_count(), before);
    assert!(
        messages(&ds, "captions.txt")
            .iter()
            .any(|m| m.contains("UTF-8")),
        "{:?}",
        ds.problems
    );

    // Flickr8k token file with a binary line.
    let flickr = tmp.path().join("flickr");
    copy_tree(&fixture("flickr8k_mini"), &flickr);
    let token = flickr.join("Flickr8k_text/Flickr8k.token.txt");
    let mut text = std::fs::read(&token).unwrap();
    // Invalid UTF-8, no image name, and a blank line (skipped without a problem).
    text.extend_from_slice(b"\x00\x01\x02\xff\n#\t\n\t\t\t\n");
    std::fs::write(&token, &text).unwrap();
    let ds = import(&flickr);
    assert_eq!(ds.caption_count(), 120);
    assert_eq!(
        messages(&ds, "Flickr8k.token.txt").len(),
        2,
        "{:?}",
        ds.problems
    );
}

#[test]
fn heic_photos_are_reported_at_import_like_the_loader_does() {
    let tmp = tempfile::tempdir().unwrap();
    let side = tmp.path().join("side");
    copy_tree(&fixture("sidecar_mini"), &side);
    std::fs::copy(fixture("images/tiny.heic"), side.join("phone.jpg")).unwrap();
    std::fs::write(side.join("phone.txt"), "A photo from a phone.\n").unwrap();
    let ds = import(&side);
    assert_eq!(ds.unreadable, vec!["phone.jpg"]);
    let got = messages(&ds, "phone.jpg");
    assert_eq!(
        got,
        vec!["HEIC/HEIF images are not supported; convert the file to JPEG or PNG"]
    );
}
