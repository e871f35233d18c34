//! `captioner watch DIR` (issue 25, watched folders): photos copied into the folder, into a
//! new sub-folder, and one written slowly in two halves get their `.txt` sidecars; a photo
//! with a sidecar already is left alone; the folder being renamed or deleted, and Ctrl-C,
//! end the watch cleanly. Every wait is for a file or a line, with a generous time limit
//! (stretched by `CAPTIONER_TEST_PATIENCE`).

#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("tests/fixtures/encoder/images")
        .join(name)
}

const PHOTO: &str = "2529205842_bdcb49d65b.jpg";
const OTHER: &str = "246231741_882b45c4e1.jpg";

fn patience() -> Duration {
    let factor: u64 = std::env::var("CAPTIONER_TEST_PATIENCE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    Duration::from_secs(120 * factor)
}

/// Waits until `ready` holds, or fails the test with `what` after [`patience`].
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience();
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `captioner watch`, its output collected line by line.
struct Watch {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Watch {
    fn start(home: &Path, args: &[&str]) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_captioner"))
            .arg("watch")
            .args(args)
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let collect = |r: Box<dyn std::io::Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let l = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    l.lock().unwrap().push(line);
                }
            });
            lines
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        let watch = Watch {
            child,
            stdout,
            stderr,
        };
        watch.wait_for_stderr("the startup line", |l| {
            l.starts_with("watching ") && l.contains("Ctrl-C stops")
        });
        watch
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    fn wait_for_stderr(&self, what: &str, line: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + patience();
        while !self.stderr.lock().unwrap().iter().any(|l| line(l)) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to end (it is killed, and the test fails, after [`patience`]).
    fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + patience();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the readers take the last lines.
                let _ = self.child.wait();
                std::thread::sleep(Duration::from_millis(200));
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the watcher did not stop; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn first_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn new_photos_get_sidecars_and_the_watch_ends_when_the_folder_is_renamed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inbox");
    std::fs::create_dir(&dir).unwrap();
    // A photo already there is not the watcher's business; one whose caption is there already
    // is left alone when it arrives.
    std::fs::copy(fixture(OTHER), dir.join("before.jpg")).unwrap();
    std::fs::write(dir.join("kept.txt"), "my own words\n").unwrap();

    let mut watch = Watch::start(tmp.path(), &[dir.to_str().unwrap(), "--sidecars"]);

    let copied = Instant::now();
    std::fs::copy(fixture(PHOTO), dir.join("copied.jpg")).unwrap();
    wait_until("copied.txt", || dir.join("copied.txt").exists());
    eprintln!(
        "copy to sidecar: {:.2} s (this machine, loaded or not)",
        copied.elapsed().as_secs_f64()
    );

    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::copy(fixture(OTHER), dir.join("sub").join("nested.jpg")).unwrap();
    std::fs::copy(fixture(OTHER), dir.join("kept.jpg")).unwrap();

    // Written slowly: half, a pause longer than the watcher's settling time, the rest.
    let bytes = std::fs::read(fixture(PHOTO)).unwrap();
    let mut slow = std::fs::File::create(dir.join("slow.jpg")).unwrap();
    slow.write_all(&bytes[..bytes.len() / 2]).unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    slow.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(slow);

    wait_until("sub/nested.txt", || {
        dir.join("sub").join("nested.txt").exists()
    });
    wait_until("slow.txt", || dir.join("slow.txt").exists());
    watch.wait_for_stderr("kept.jpg left alone", |l| {
        l.starts_with("skipped ") && l.contains("kept.jpg") && l.contains("already has a caption")
    });

    let caption = first_line(&dir.join("copied.txt"));
    assert!(caption.split_whitespace().count() >= 3, "{caption:?}");
    // The photo written in two halves was read whole: the same caption as its copy.
    assert_eq!(first_line(&dir.join("slow.txt")), caption);
    assert!(
        !watch.stderr().contains("error"),
        "no read errors: {}",
        watch.stderr()
    );
    assert_eq!(first_line(&dir.join("kept.txt")), "my own words");
    assert!(
        !dir.join("before.txt").exists(),
        "photos already there are not captioned"
    );
    let stdout = watch.stdout();
    for name in ["copied.jpg", "sub/nested.jpg", "slow.jpg"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{name}: "))),
            "{name} in {stdout}"
        );
    }
    assert!(!stdout.contains("kept.jpg"), "{stdout}");
    // Our sidecars did not bring the photos back: each is captioned once.
    assert_eq!(stdout.lines().count(), 3, "{stdout}");

    std::fs::rename(&dir, tmp.path().join("renamed")).unwrap();
    let status = watch.wait_for_exit();
    assert!(status.success(), "{status:?}: {}", watch.stderr());
    assert!(
        watch.stderr().contains("was renamed, moved or deleted"),
        "{}",
        watch.stderr()
    );
}

#[test]
fn a_deleted_folder_and_ctrl_c_end_the_watch_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gone");
    std::fs::create_dir(&dir).unwrap();
    let mut watch = Watch::start(tmp.path(), &[dir.to_str().unwrap(), "--sidecars"]);
    std::fs::remove_dir_all(&dir).unwrap();
    let status = watch.wait_for_exit();
    assert!(status.success(), "{status:?}: {}", watch.stderr());
    assert!(
        watch.stderr().contains("was renamed, moved or deleted"),
        "{}",
        watch.stderr()
    );

    let dir = tmp.path().join("stays");
    std::fs::create_dir(&dir).unwrap();
    let mut watch = Watch::start(tmp.path(), &[dir.to_str().unwrap(), "--sidecars"]);
    let pid = watch.child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let status = watch.wait_for_exit();
    assert!(status.success(), "{status:?}: {}", watch.stderr());
    let stderr = watch.stderr();
    assert!(
        stderr.lines().any(|l| l.starts_with("stopped;")),
        "{stderr}"
    );
}
