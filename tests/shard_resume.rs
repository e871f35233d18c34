//! `jobs::shard::run_shard` stopped (Ctrl-C: the cancel token) partway, then run again: it
//! goes on from the photos it had handled, captions each photo once, and records an
//! unreadable photo once, among the others in list order.

use std::path::Path;

use candle_core::Device;
use captioner::jobs::shard::{self, PhotoList, PhotoSource, ShardOptions, ShardOutcome, ShardSpec};
use captioner::jobs::{CancelToken, JobEvent};
use captioner::paths::default_model_dir;
use captioner::pipeline::Captioner;

fn fixture(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

#[test]
fn a_cancelled_shard_goes_on_where_it_stopped() {
    let photos = tempfile::tempdir().unwrap();
    let mut names: Vec<_> = std::fs::read_dir(fixture("everyday"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    names.sort();
    for p in &names[..7] {
        std::fs::copy(p, photos.path().join(p.file_name().unwrap())).unwrap();
    }
    // Sorted among the others: the sixth photo of the list cannot be read.
    std::fs::write(photos.path().join("bee_broken.jpg"), b"not a jpeg").unwrap();
    let list = PhotoList::open(&PhotoSource::Path(photos.path().to_path_buf())).unwrap();
    assert_eq!(list.photos.len(), 8);

    let captioner = Captioner::load(&default_model_dir(), &Device::Cpu).unwrap();
    let out = tempfile::tempdir().unwrap();
    let spec = ShardSpec { index: 0, count: 1 };
    let options = ShardOptions {
        folder: captioner::jobs::caption::FolderOptions {
            batch: 2,
            ..Default::default()
        },
        ..ShardOptions::default()
    };

    // Stop after five photos.
    let cancel = CancelToken::new();
    let mut seen = Vec::new();
    let first = shard::run_shard(
        &captioner,
        &list,
        spec,
        &options,
        out.path(),
        &mut |e| {
            if let JobEvent::Captioned { path, .. } = e {
                seen.push(path);
                if seen.len() == 5 {
                    cancel.cancel();
                }
            }
        },
        &cancel,
    )
    .unwrap();
    let ShardOutcome::Stopped { handled, photos } = first else {
        panic!("not stopped: {first:?}");
    };
    assert_eq!(photos, 8);
    assert!((5..8).contains(&handled), "{handled}");

    let mut again = Vec::new();
    let second = shard::run_shard(
        &captioner,
        &list,
        spec,
        &options,
        out.path(),
        &mut |e| {
            if let JobEvent::Captioned { path, .. } = e {
                again.push(path);
            }
        },
        &CancelToken::new(),
    )
    .unwrap();
    let ShardOutcome::Done(manifest) = second else {
        panic!("not done: {second:?}");
    };
    // Only the photos not handled before were captioned the second time.
    assert_eq!(again.len(), 8 - handled);
    let expected: Vec<_> = list.photos[handled..]
        .iter()
        .map(|p| p.path.clone())
        .collect();
    assert_eq!(again, expected);
    assert_eq!(manifest.timings.resumed_at, handled);
    assert_eq!((manifest.captioned, manifest.failed), (7, 1));
    assert_eq!(manifest.failures[0].image, "bee_broken.jpg");

    let files = shard::ShardFiles::new(out.path(), spec);
    let records = std::fs::read_to_string(&files.records).unwrap();
    let images: Vec<String> = records
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["image"].to_string())
        .collect();
    let wanted: Vec<String> = list
        .photos
        .iter()
        .filter(|p| p.image != "bee_broken.jpg")
        .map(|p| format!("{:?}", p.image))
        .collect();
    assert_eq!(images, wanted);
    assert_eq!(
        std::fs::read_to_string(&files.failed)
            .unwrap()
            .lines()
            .count(),
        1
    );
}
