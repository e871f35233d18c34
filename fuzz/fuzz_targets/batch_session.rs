//! Fuzz target: the Batch panel's session file (`batch-sessions/<hash>.json`), restored into a
//! freshly opened session exactly as the panel does (`Session::restore`). A damaged file or
//! one of another version is an error naming the file (and is moved aside), never a panic;
//! whatever was restored can be written again.
#![no_main]

use std::path::PathBuf;

use captioner_app::batch::session::Session;
use libfuzzer_sys::fuzz_target;

fn scratch() -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("captioner-fuzz-session-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("session.json");
    if std::fs::write(&file, data).is_err() {
        return;
    }
    let photos = vec![
        PathBuf::from("/nonexistent-fuzz/a.jpg"),
        PathBuf::from("/nonexistent-fuzz/sub/b.jpg"),
    ];
    let mut session = Session::open("k".into(), Some(PathBuf::from("/nonexistent-fuzz")), photos);
    if let Err(e) = session.restore(&file) {
        assert!(
            e.to_string().contains("session.json"),
            "the error names the file: {e}"
        );
    }
    let _ = session.to_json();
    // Files moved aside must not pile up between inputs.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
});
