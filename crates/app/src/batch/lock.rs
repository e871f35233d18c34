//! One window per folder: a lock file beside a folder's session file says which app window has
//! the folder open, so a second window does not open it too (two windows' edits of one
//! folder would overwrite each other's session file, and only the last writer's edits would
//! come back after a crash).
//!
//! The lock file `<session file>.lock` holds `PID INSTANCE`: the process and the app instance
//! (several instances can live in one process: the tests open two). A lock is stale, and taken
//! over, when its process is gone (Linux's `/proc`) or, in this process, when no live instance
//! holds it. When the lock cannot be written at all (a full disk, a read-only data folder) the
//! folder still opens: the session file cannot be written there either, and that is reported
//! on its own.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// The locks this process holds, by lock file.
static HELD: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// A held lock; dropping it removes the lock file (when it is still ours).
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
    token: String,
}

/// What trying to lock a folder's session gave.
#[derive(Debug)]
pub enum Acquired {
    /// This window has the folder.
    Held(FolderLock),
    /// Another window has it: its process id.
    Elsewhere { pid: u32 },
    /// The lock file could not be written (the reason); the folder opens without one.
    Unlocked(String),
}

/// The lock file of a session file.
pub fn lock_path(session_file: &Path) -> PathBuf {
    let mut name = session_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn held<R>(f: impl FnOnce(&mut HashSet<PathBuf>) -> R) -> R {
    let mut guard = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(HashSet::new))
}

/// The process id in a lock file's text, if it reads as one.
fn pid_of(text: &str) -> Option<u32> {
    text.split_whitespace().next()?.parse().ok()
}

/// Locks the folder whose session is written to `session_file`.
pub fn acquire(session_file: &Path) -> Acquired {
    let path = lock_path(session_file);
    let token = format!(
        "{} {}\n",
        std::process::id(),
        NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed)
    );
    if let Some(dir) = path.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return Acquired::Unlocked(format!("{}: {e}", dir.display()));
    }
    for _ in 0..3 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                use std::io::Write;
                if let Err(e) = file.write_all(token.as_bytes()) {
                    let _ = std::fs::remove_file(&path);
                    return Acquired::Unlocked(format!("{}: {e}", path.display()));
                }
                held(|h| h.insert(path.clone()));
                return Acquired::Held(FolderLock { path, token });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let live = match pid_of(&text) {
                    Some(pid) if pid == std::process::id() => held(|h| h.contains(&path)),
                    Some(pid) => captioner::files::may_be_running(pid),
                    // Half-written or damaged: nobody can prove a claim with it.
                    None => false,
                };
                if live {
                    return Acquired::Elsewhere {
                        pid: pid_of(&text).unwrap_or(0),
                    };
                }
                // Stale: its window is gone. Remove it and try again.
                let _ = std::fs::remove_file(&path);
            }
            Err(e) => return Acquired::Unlocked(format!("{}: {e}", path.display())),
        }
    }
    Acquired::Unlocked(format!(
        "{}: another window keeps taking the lock",
        path.display()
    ))
}

impl FolderLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        held(|h| h.remove(&self.path));
        if std::fs::read_to_string(&self.path).is_ok_and(|t| t == self.token) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(dir: &Path) -> PathBuf {
        dir.join("batch-sessions").join("abc.json")
    }

    #[test]
    fn a_second_window_is_refused_until_the_first_lets_go() {
        let tmp = tempfile::tempdir().unwrap();
        let file = session(tmp.path());
        let Acquired::Held(first) = acquire(&file) else {
            panic!("the first window gets the folder");
        };
        assert!(first.path().is_file());
        match acquire(&file) {
            Acquired::Elsewhere { pid } => assert_eq!(pid, std::process::id()),
            other => panic!("the second window must be refused: {other:?}"),
        }
        drop(first);
        assert!(
            !lock_path(&file).exists(),
            "the lock file goes with its window"
        );
        assert!(matches!(acquire(&file), Acquired::Held(_)));
    }

    #[test]
    fn a_lock_left_by_a_gone_process_or_a_damaged_one_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let file = session(tmp.path());
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        // Process ids above the kernel's limit (4194304) never run.
        std::fs::write(lock_path(&file), "4294967 1\n").unwrap();
        if Path::new("/proc/self").exists() {
            assert!(matches!(acquire(&file), Acquired::Held(_)));
        }
        std::fs::write(lock_path(&file), "").unwrap();
        assert!(matches!(acquire(&file), Acquired::Held(_)));
        // This process's own lock that no live window holds (a window that crashed in a test).
        std::fs::write(lock_path(&file), format!("{} 999999\n", std::process::id())).unwrap();
        assert!(matches!(acquire(&file), Acquired::Held(_)));
    }

    #[test]
    fn a_lock_that_cannot_be_written_lets_the_folder_open() {
        let tmp = tempfile::tempdir().unwrap();
        // The data folder is a file: nothing can be made under it.
        let blocker = tmp.path().join("data");
        std::fs::write(&blocker, "").unwrap();
        let file = blocker.join("batch-sessions").join("abc.json");
        assert!(matches!(acquire(&file), Acquired::Unlocked(_)));
    }

    #[test]
    fn dropping_a_lock_another_window_took_over_leaves_theirs() {
        let tmp = tempfile::tempdir().unwrap();
        let file = session(tmp.path());
        let Acquired::Held(mine) = acquire(&file) else {
            panic!("held");
        };
        // Someone replaced it (say, after deciding ours was stale).
        std::fs::write(lock_path(&file), "1 1\n").unwrap();
        drop(mine);
        assert_eq!(std::fs::read_to_string(lock_path(&file)).unwrap(), "1 1\n");
    }
}
