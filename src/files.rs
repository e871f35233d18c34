//! Writing and identifying files, for every module that stores something.
//!
//! - [`write_atomic`] is the one way a file is written (sidecars, exports, metadata in photos,
//!   feature cache entries, trust files, `meta.json`, attention PNGs): a temporary sibling,
//!   synced, then renamed over the target. Readers see the old file or the new one, never half
//!   of one. [`crate::model_dir::write_dir_atomically`] does the same for whole folders, with
//!   the same temporary names ([`temp_sibling`]) and folder syncing ([`sync_dir`]).
//! - [`content_hash`] and [`bytes_hash`] name a file by its contents (the feature cache's keys,
//!   the encoder weights' id).
//!
//! This module is the bottom layer: it imports nothing from the crate.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder (created if
/// missing), synced, then renamed over the target. A file that is replaced keeps its
/// permissions.
///
/// On failure (a full disk, a read-only or missing folder, ...) the previous file is left as
/// it was, the temporary file is removed, and the error says which step failed (the caller
/// names `path`). Concurrent writers of the same path (threads or processes) each use their own
/// temporary file; the last rename wins.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write(path, bytes, None)
}

/// Fault injection for tests: [`write_atomic`] failing after `fail_after` bytes of the
/// temporary file, as a crash would (the target is left as it was, the temporary file removed).
#[doc(hidden)]
pub fn write_atomic_interrupted(
    path: &Path,
    bytes: &[u8],
    fail_after: usize,
) -> std::io::Result<()> {
    write(path, bytes, Some(fail_after))
}

fn write(path: &Path, bytes: &[u8], fail_after: Option<usize>) -> std::io::Result<()> {
    let context =
        |what: String, e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"));
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir)
        .map_err(|e| context(format!("cannot create the folder {}", dir.display()), e))?;
    let permissions = std::fs::metadata(path).ok().map(|m| m.permissions());
    if permissions.as_ref().is_some_and(|p| p.readonly()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            READ_ONLY,
        ));
    }
    let tmp = temp_sibling(path, "tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| {
            context(
                format!("cannot create a temporary file in {}", dir.display()),
                e,
            )
        })?;
    let written = match fail_after {
        Some(n) => file
            .write_all(&bytes[..n.min(bytes.len())])
            .and_then(|()| file.flush())
            .and_then(|()| Err(std::io::Error::other("simulated interruption of the write"))),
        None => file.write_all(bytes),
    }
    .and_then(|()| match permissions {
        Some(p) => file.set_permissions(p),
        None => Ok(()),
    })
    .and_then(|()| file.sync_all())
    .map_err(|e| context(format!("cannot write {} bytes", bytes.len()), e));
    drop(file);
    let result = written.and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| context("cannot replace the file".to_string(), e))
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable; a failure here does not undo the (complete) write.
    let _ = sync_dir(dir);
    Ok(())
}

/// What a refused write of a read-only file says (as photos' metadata does).
pub const READ_ONLY: &str = "the file is read-only; left unchanged";

/// Whether `path` exists and its mode bits allow no writing (checked on the bits, not by
/// opening it, so the answer is the same for root).
pub fn is_read_only(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly())
}

/// The folder `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A fresh name beside `path` for a temporary file or folder: `.NAME.KIND-PID-N` (`KIND` is
/// `tmp` for what is being written, `old` for a previous version moved aside). No two calls
/// of one process return the same name.
pub fn temp_sibling(path: &Path, kind: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    parent_dir(path).join(format!(
        ".{name}.{kind}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// How old a leftover temporary file of a process that may still run must be before
/// [`remove_stale_temporaries`] removes it.
pub const STALE_TEMPORARY_AGE: Duration = Duration::from_secs(15 * 60);

/// The parts of a [`temp_sibling`] name `.NAME.KIND-PID-N`: `(NAME, KIND, PID)`, or `None` for
/// any other name.
pub fn parse_temp_name(file_name: &str) -> Option<(&str, &str, u32)> {
    let rest = file_name.strip_prefix('.')?;
    let (rest, n) = rest.rsplit_once('-')?;
    let (rest, pid) = rest.rsplit_once('-')?;
    let (name, kind) = rest.rsplit_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if name.is_empty() || !digits(n) || !digits(pid) || !matches!(kind, "tmp" | "old") {
        return None;
    }
    Some((name, kind, pid.parse().ok()?))
}

/// Whether process `pid` may be running: `false` only where it can be told that it is not
/// (Linux's `/proc`), and never for this process.
pub fn may_be_running(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

/// Removes the temporary files that an interrupted [`write_atomic`] (a kill, a power cut) left
/// in `dir` (not in its sub-folders): plain files named `.NAME.tmp-PID-N` where `NAME` ends
/// with `suffix` (`.txt`), whose process is gone or that are older than
/// [`STALE_TEMPORARY_AGE`]. Nothing else is touched. Returns the files removed; a folder or
/// file that cannot be read or removed is passed over.
pub fn remove_stale_temporaries(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        let Some((target, "tmp", pid)) = parse_temp_name(name) else {
            continue;
        };
        if !target.ends_with(suffix) || target.len() == suffix.len() {
            continue;
        }
        // Not followed: a link or folder of that name is left alone.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_TEMPORARY_AGE);
        if (old || !may_be_running(pid)) && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed.sort();
    removed
}

/// Flushes a folder's entries (a rename into it) to disk, where the platform can; elsewhere
/// does nothing.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The SHA-256 of a file's contents, in lowercase hex.
pub fn content_hash(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The SHA-256 of bytes in memory, in lowercase hex.
pub fn bytes_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A path as one line of terminal output: the lossy UTF-8 of `display()`, with line breaks,
/// tabs and other control characters written as escapes (`\n`, `\t`, `\u{1b}`), so a file
/// named with a newline cannot split or forge a line of output (backslashes stay as they are:
/// Windows paths read as usual).
/// (Exports quote such names their own way: CSV and JSON.)
pub fn shown(path: &Path) -> String {
    shown_text(&path.display().to_string())
}

/// [`shown`] for any text that holds file names (an error message, say): one line of output.
pub fn shown_text(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn shown_paths_stay_on_one_line() {
        assert_eq!(shown(Path::new("/photos/a dog.jpg")), "/photos/a dog.jpg");
        assert_eq!(
            shown(Path::new("line\nbreak\tand\r\u{1b}[31m.jpg")),
            "line\\nbreak\\tand\\r\\u{1b}[31m.jpg"
        );
        assert_eq!(shown(Path::new("C:\\photos\\a.jpg")), "C:\\photos\\a.jpg");
        assert!(!shown(Path::new("a\nb")).contains('\n'));
    }

    #[test]
    fn writes_replace_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(listing(&dir.path().join("sub")), vec!["a.txt"]);
    }

    #[test]
    fn an_interrupted_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"old").unwrap();
        for after in [0, 2, 100] {
            let err = write_atomic_interrupted(&path, b"new contents", after).unwrap_err();
            assert!(err.to_string().contains("cannot write 12 bytes"), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), b"old");
            assert_eq!(listing(dir.path()), vec!["a.txt"]);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"new").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_file_is_not_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        assert!(is_read_only(&path));
        let err = write_atomic(&path, b"new").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(err.to_string(), READ_ONLY);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o444);
        assert_eq!(listing(dir.path()), vec!["a.txt"]);
    }

    #[test]
    fn temporary_names_are_hidden_siblings_and_unique() {
        let a = temp_sibling(Path::new("dir/model"), "tmp");
        let b = temp_sibling(Path::new("dir/model"), "tmp");
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("dir")));
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".model.tmp-"), "{name}");
        let bare = temp_sibling(Path::new("x"), "old");
        assert_eq!(bare.parent(), Some(Path::new(".")));
    }

    #[test]
    fn temporary_names_parse_back() {
        let t = temp_sibling(Path::new("dir/dog.txt"), "tmp");
        let name = t.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            parse_temp_name(name),
            Some(("dog.txt", "tmp", std::process::id()))
        );
        assert_eq!(
            parse_temp_name(".a-b.c.txt.tmp-12-3"),
            Some(("a-b.c.txt", "tmp", 12))
        );
        for other in [
            "dog.txt",
            ".dog.txt",
            "dog.txt.tmp-1-2",
            ".dog.txt.tmp-1",
            ".dog.txt.tmp-x-2",
            ".dog.txt.tmp-1-2x",
            ".dog.txt.tmp--2",
            ".dog.txt.bak-1-2",
            "..tmp-1-2",
        ] {
            assert_eq!(parse_temp_name(other), None, "{other}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_stale_temporaries_of_the_app_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // A process id that is not running: one of a child that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let keep = [
            // This process may still be writing it.
            format!(".dog.txt.tmp-{}-0", std::process::id()),
            // Not a sidecar's, not the pattern, or the user's own.
            format!(".dog.jpg.tmp-{gone}-0"),
            format!(".dog.txt.old-{gone}-0"),
            format!("dog.txt.tmp-{gone}-0"),
            format!(".dog.txt.tmp-{gone}-0.bak"),
            "notes.txt".to_string(),
        ];
        let remove = [
            format!(".dog.txt.tmp-{gone}-1"),
            format!(".a b.txt.tmp-{gone}-22"),
        ];
        for name in keep.iter().chain(&remove) {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        // A folder of the pattern is not a file: kept.
        let folder = format!(".cat.txt.tmp-{gone}-3");
        std::fs::create_dir(dir.path().join(&folder)).unwrap();
        let mut removed: Vec<String> = remove_stale_temporaries(dir.path(), ".txt")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        removed.sort();
        let mut want = remove.to_vec();
        want.sort();
        assert_eq!(removed, want);
        let mut left: Vec<String> = keep.to_vec();
        left.push(folder);
        left.sort();
        assert_eq!(listing(dir.path()), left);
    }

    #[test]
    fn hashes_are_sha256_hex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, b"abc").unwrap();
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(bytes_hash(b"abc"), want);
        assert_eq!(content_hash(&path).unwrap(), want);
    }
}
