//! Dataset import: every layout, every kind of bad input, and the full Flickr8k figures.

use std::path::{Path, PathBuf};

use captioner::dataset::{self, Cleaning, DatasetError, ImportOptions, Layout, Split, SplitSource};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn import(path: &Path) -> dataset::Dataset {
    dataset::import(path, &ImportOptions::default()).unwrap()
}

/// Problems whose file name ends with `file` and whose message contains `needle`.
fn problems_matching<'a>(
    ds: &'a dataset::Dataset,
    file: &str,
    needle: &str,
) -> Vec<&'a dataset::Problem> {
    ds.problems
        .iter()
        .filter(|p| p.file.to_string_lossy().ends_with(file) && p.message.contains(needle))
        .collect()
}

#[test]
fn flickr8k_mini_imports_cleanly() {
    let ds = import(&fixture("flickr8k_mini"));
    assert_eq!(ds.layout, Layout::Flickr8k);
    assert_eq!(ds.images.len(), 24);
    assert_eq!(ds.caption_count(), 120);
    assert_eq!(ds.split(Split::Train).count(), 16);
    assert_eq!(ds.split(Split::Dev).count(), 8);
    assert_eq!(ds.split_source, SplitSource::Files);
    assert!(ds.problems.is_empty(), "{:?}", ds.problems);
    assert!(ds.missing.is_empty() && ds.uncaptioned.is_empty());
    let s = ds.summary();
    assert_eq!(s.captions, 120);
    assert!(s.vocab_size > 4);
    assert!(s.caption_length.max >= s.caption_length.p95);
    assert!(s.caption_length.mean > 5.0 && s.caption_length.mean < 20.0);
}

#[test]
fn broken_flickr8k_imports_the_good_lines_and_reports_the_rest() {
    let ds = import(&fixture("broken_flickr8k"));
    let token = "Flickr8k.token.txt";
    let line_of = |needle: &str| -> Vec<Option<usize>> {
        problems_matching(&ds, token, needle)
            .iter()
            .map(|p| p.line)
            .collect()
    };
    // Line 1 starts with a byte-order mark and line 2 ends with CR LF: both import cleanly.
    let a = ds
        .images
        .iter()
        .find(|e| e.name == "1191338263_a4fa073154.jpg")
        .unwrap();
    assert_eq!(
        a.captions,
        vec![
            "A dog runs across the grass .",
            "A brown dog is running outside ."
        ]
    );
    assert_eq!(line_of("no tab"), vec![Some(3)]);
    assert_eq!(line_of("no '#N'"), vec![Some(4)]);
    assert_eq!(line_of("empty caption"), vec![Some(5)]);
    assert_eq!(line_of("UTF-8"), vec![Some(6)]);
    assert_eq!(line_of("duplicate entry"), vec![Some(8)]);
    assert_eq!(line_of("missing_on_disk.jpg"), vec![Some(9)]);
    assert_eq!(line_of("not a caption number"), vec![Some(13)]);
    // The zero-byte file and the text file named .jpg are reported by file name.
    assert_eq!(problems_matching(&ds, "empty.jpg", "empty file").len(), 1);
    assert_eq!(problems_matching(&ds, "notes.jpg", "not an image").len(), 1);
    assert_eq!(ds.unreadable, vec!["empty.jpg", "notes.jpg"]);
    assert_eq!(ds.missing, vec!["missing_on_disk.jpg"]);
    assert_eq!(ds.uncaptioned, vec!["uncaptioned.jpg"]);
    // An image in two split files is reported.
    assert_eq!(
        problems_matching(&ds, "Flickr_8k.devImages.txt", "already in the train split").len(),
        1
    );
    assert_eq!(ds.images.len(), 3);
    assert_eq!(ds.caption_count(), 4);
    // Every problem names its file, and the lines of the token file carry line numbers.
    for p in &ds.problems {
        assert!(p.file.exists(), "{p}");
        let shown = p.to_string();
        assert!(shown.contains(&*p.file.to_string_lossy()), "{shown}");
    }
}

#[test]
fn kaggle_csv_with_commas_and_quotes() {
    let ds = import(&fixture("kaggle_mini"));
    assert_eq!(ds.layout, Layout::KaggleCsv);
    let a = ds
        .images
        .iter()
        .find(|e| e.name == "1191338263_a4fa073154.jpg")
        .unwrap();
    assert_eq!(a.captions[0], "A dog, brown and white, runs on the grass .");
    assert_eq!(a.captions[1], "A dog says \"woof\" to a cat .");
    assert_eq!(a.captions.len(), 3);
    assert_eq!(ds.caption_count(), 5);
    assert_eq!(
        problems_matching(&ds, "captions.txt", "empty caption").len(),
        1
    );
    assert_eq!(
        problems_matching(&ds, "captions.txt", "duplicate caption").len(),
        1
    );
    assert_eq!(
        problems_matching(&ds, "captions.txt", "expected 2 fields").len(),
        1
    );
    assert_eq!(ds.missing, vec!["missing.jpg"]);
    let lines: Vec<_> = ds.problems.iter().map(|p| p.line).collect();
    assert!(
        lines.contains(&Some(6)) && lines.contains(&Some(7)),
        "{lines:?}"
    );
    // No split files: splits come from a hash of the name.
    assert_eq!(ds.split_source, SplitSource::Hash);
}

#[test]
fn coco_captions() {
    let ds = import(&fixture("coco_mini"));
    assert_eq!(ds.layout, Layout::Coco);
    assert_eq!(ds.images.len(), 3);
    assert_eq!(ds.caption_count(), 4);
    assert_eq!(ds.split_source, SplitSource::Files);
    let train: Vec<_> = ds.split(Split::Train).map(|e| e.name.as_str()).collect();
    assert_eq!(
        train,
        vec!["train2017/000000000001.jpg", "train2017/000000000002.jpg"]
    );
    assert_eq!(ds.split(Split::Dev).count(), 1);
    assert_eq!(
        problems_matching(&ds, "captions_train2017.json", "image id 99").len(),
        1
    );
    assert_eq!(
        problems_matching(&ds, "captions_train2017.json", "empty caption").len(),
        1
    );
}

#[test]
fn sidecar_folder() {
    let ds = import(&fixture("sidecar_mini"));
    assert_eq!(ds.layout, Layout::Sidecar);
    assert_eq!(ds.images.len(), 2);
    let dog = ds.images.iter().find(|e| e.name == "dog.jpg").unwrap();
    assert_eq!(
        dog.captions,
        vec!["A dog runs across the grass.", "A brown dog outside."]
    );
    let kids = ds.images.iter().find(|e| e.name == "kids.jpg").unwrap();
    assert_eq!(kids.captions, vec!["Children play in the park."]);
    assert_eq!(ds.uncaptioned, vec!["nocaption.jpg"]);
    assert_eq!(
        problems_matching(&ds, "dog.txt", "duplicate caption")[0].line,
        Some(4)
    );
    assert_eq!(
        problems_matching(&ds, "orphan.txt", "without a matching image").len(),
        1
    );
}

#[test]
fn unusable_inputs_fail_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = ImportOptions::default();

    let missing = tmp.path().join("does-not-exist");
    let e = dataset::import(&missing, &opts).unwrap_err();
    assert!(matches!(e, DatasetError::NotFound(_)));
    assert!(e.to_string().contains("does-not-exist"));

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = dataset::import(&empty, &opts).unwrap_err();
    assert!(matches!(e, DatasetError::Empty(_)), "{e}");
    assert!(e.to_string().contains("empty"));

    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.md"), "hello").unwrap();
    let e = dataset::import(&other, &opts).unwrap_err();
    assert!(matches!(e, DatasetError::UnknownLayout(_)), "{e}");
    assert!(e.to_string().contains("Flickr8k"));

    let file = tmp.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let e = dataset::import(&file, &opts).unwrap_err();
    assert!(matches!(e, DatasetError::NotADirectory(_)), "{e}");

    // A Flickr8k token file whose every line is bad, or whose images are all missing.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(bad.join("Flickr8k_text")).unwrap();
    std::fs::create_dir_all(bad.join("Flicker8k_Dataset")).unwrap();
    std::fs::write(
        bad.join("Flickr8k_text/Flickr8k.token.txt"),
        "garbage\nx.jpg#0\tA caption .\n",
    )
    .unwrap();
    let e = dataset::import(&bad, &opts).unwrap_err();
    assert!(matches!(e, DatasetError::Unusable { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("no captioned image"), "{msg}");
    assert!(msg.contains("Flickr8k.token.txt:1"), "{msg}");

    // A token file but no images folder.
    let noimg = tmp.path().join("noimg");
    std::fs::create_dir_all(noimg.join("Flickr8k_text")).unwrap();
    std::fs::write(
        noimg.join("Flickr8k_text/Flickr8k.token.txt"),
        "x.jpg#0\tA caption .\n",
    )
    .unwrap();
    let e = dataset::import(&noimg, &opts).unwrap_err();
    assert!(e.to_string().contains("no images folder"), "{e}");

    // A broken COCO file.
    let coco = tmp.path().join("coco");
    std::fs::create_dir_all(&coco).unwrap();
    std::fs::write(
        coco.join("captions_train.json"),
        "{\"images\": [\n  {\"id\": 1,,}\n",
    )
    .unwrap();
    let e = dataset::import(&coco, &opts).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("captions_train.json:2"), "{msg}");
}

#[test]
fn import_never_writes_into_the_dataset() {
    let dir = fixture("broken_flickr8k");
    let listing = |p: &Path| {
        let mut v: Vec<_> = walk(p)
            .into_iter()
            .map(|f| (f.clone(), std::fs::metadata(&f).unwrap().len()))
            .collect();
        v.sort();
        v
    };
    let before = listing(&dir);
    let _ = import(&dir).summary();
    assert_eq!(before, listing(&dir));
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn tutorial_cleaning_shrinks_the_vocabulary() {
    let dir = fixture("flickr8k_mini");
    let natural = import(&dir).vocab_with(1);
    let tutorial = dataset::import(
        &dir,
        &ImportOptions {
            cleaning: Cleaning::Tutorial,
            ..Default::default()
        },
    )
    .unwrap()
    .vocab_with(1);
    assert!(natural.words.iter().any(|w| w == "a"));
    assert!(!tutorial.words.iter().any(|w| w == "a"));
    assert!(tutorial.len() < natural.len());
}

/// The figures the issue names, on the full Flickr8k copy beside the repository.
#[test]
fn full_flickr8k_figures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/flickr8k");
    if !dir.is_dir() {
        eprintln!(
            "skipped: {} is not here (the full Flickr8k set is needed)",
            dir.display()
        );
        return;
    }
    let ds = import(&dir);
    let s = ds.summary();
    assert_eq!(s.layout, Layout::Flickr8k);
    assert_eq!(s.images, 7000);
    assert_eq!(s.captions, 35000);
    assert_eq!(s.splits.train, 6000);
    assert_eq!(s.splits.dev, 1000);
    assert_eq!(s.missing_images, 0);
    assert!(
        s.problems.is_empty(),
        "{:?}",
        &s.problems[..s.problems.len().min(5)]
    );
}
