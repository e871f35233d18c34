//! Opening a huge folder in the Batch panel: `cargo bench --bench open_folder [-- DIR N]`.
//!
//! Makes (once) a folder of N small photos (default 100,000 copies of a 224x224 fixture JPEG
//! under /tmp/captioner-100k), then times what opening it costs off the UI thread: listing the
//! photos (`jobs::caption::list_photos`) and building the session (`Session::open`: each
//! photo's `.txt` sidecar and metadata read), and writing and restoring the session file.
//! Prints one JSON object with the times and the process's peak resident memory (VmHWM).

use std::path::{Path, PathBuf};
use std::time::Instant;

use captioner_app::batch::session::Session;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn make_folder(dir: &Path, n: usize) {
    let source = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("tests/fixtures/encoder/images/2529205842_bdcb49d65b.jpg");
    let bytes = std::fs::read(&source).expect("fixture photo");
    let have = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    if have >= n {
        return;
    }
    for i in 0..n {
        // 100 sub-folders of 1,000 photos, as cameras and phones lay them out.
        let sub = dir.join(format!("{:03}", i / 1000));
        std::fs::create_dir_all(&sub).expect("folder");
        let p = sub.join(format!("IMG_{i:06}.jpg"));
        if !p.exists() {
            std::fs::write(&p, &bytes).expect("photo");
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/captioner-100k"));
    let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(100_000);
    make_folder(&dir, n);

    let t = Instant::now();
    let (photos, _) = captioner::jobs::caption::list_photos(&dir).expect("listing");
    let list_s = t.elapsed().as_secs_f64();
    let count = photos.len();
    let t = Instant::now();
    let session = Session::open(dir.display().to_string(), Some(dir.clone()), photos);
    let open_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let json = session.to_json().expect("session JSON");
    let file = std::env::temp_dir().join("captioner-100k-session.json");
    std::fs::write(&file, &json).expect("session file");
    let save_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut again = Session::open(
        dir.display().to_string(),
        Some(dir.clone()),
        session.entries.iter().map(|e| e.path.clone()).collect(),
    );
    let reopen_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let restored = again.restore(&file).expect("restore");
    let restore_s = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    println!(
        "{}",
        serde_json::json!({
            "bench": "open_folder",
            "photos": count,
            "list_s": list_s,
            "open_session_s": open_s,
            "list_and_open_s": list_s + open_s,
            "session_file_mb": json.len() as f64 / 1e6,
            "write_session_s": save_s,
            "reopen_s": reopen_s,
            "restore_s": restore_s,
            "restored_captions": restored,
            "peak_rss_mb": peak_rss_mb(),
        })
    );
}
