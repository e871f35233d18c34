//! Opening photos: a folder (listed and read on a background thread) or loose files, a rescan,
//! the last folder again at startup, and the "Recent" list.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::lock;
use super::persist::{Persist, session_dir};
use super::session::{Disk, Session};
use super::{Ask, BatchPanel, Then};
use crate::Shared;
use crate::tasks::{self, Pending};

/// A folder, its photos (a rescan) or its new session (an open) and the leftover temporary
/// files removed from it, or why it could not be read.
pub type Listing = Result<Listed, String>;

/// A folder listed off the UI thread.
pub struct Listed {
    pub dir: PathBuf,
    /// The photos found (a rescan's; an opening's are in `session`).
    pub files: Vec<PathBuf>,
    /// The new session of an opening.
    pub session: Option<Session>,
    /// Leftover temporary files of an interrupted save, removed.
    pub removed: Vec<PathBuf>,
    /// Sub-folders that could not be read, with why: their photos are not in the batch.
    pub skipped: captioner::jobs::caption::Unreadable,
}

/// Says which sub-folders could not be read (their photos are missing from the batch).
pub fn report_skipped_folders(skipped: &captioner::jobs::caption::Unreadable, shared: &mut Shared) {
    for (dir, reason) in skipped {
        shared.status.warn(format!(
            "{}: folder skipped, its photos are not in the batch: {reason}",
            dir.display()
        ));
    }
}

/// Removes the temporary sidecar files an interrupted save left (`.NAME.txt.tmp-PID-N`, of a
/// process that is gone: [`captioner::files::remove_stale_temporaries`]) from the folders of
/// `photos` and from `root`. Returns the files removed.
pub fn remove_leftover_temporaries<'a>(
    root: Option<&Path>,
    photos: impl IntoIterator<Item = &'a Path>,
) -> Vec<PathBuf> {
    let mut dirs: BTreeSet<&Path> = photos.into_iter().filter_map(Path::parent).collect();
    dirs.extend(root);
    dirs.into_iter()
        .flat_map(|d| captioner::files::remove_stale_temporaries(d, ".txt"))
        .collect()
}

/// Says in the status line which leftover temporary files were removed.
pub fn report_removed_temporaries(removed: &[PathBuf], shared: &mut Shared) {
    if let Some(first) = removed.first() {
        shared.status.info(format!(
            "removed {} temporary file(s) an interrupted save left behind (such as {})",
            removed.len(),
            first.display()
        ));
    }
}

/// Folders remembered in "Recent".
pub const RECENT: usize = 8;

/// Puts `folder` first in `recent` (once), keeping the [`RECENT`] newest.
pub fn remember(recent: &mut Vec<String>, folder: String) {
    recent.retain(|x| x != &folder);
    recent.insert(0, folder);
    recent.truncate(RECENT);
}

/// What opening a session found, for the status line: the photos, how many have a caption in
/// their `.txt` file, how many `.txt` files could not be read. `None` when there are no photos.
fn opened_summary(session: &Session) -> Option<(String, bool)> {
    let what = session
        .root
        .as_ref()
        .map_or_else(|| "photos".to_string(), |r| r.display().to_string());
    let n = session.entries.len();
    if n == 0 {
        return None;
    }
    // Photos whose .txt sidecar holds a caption (whether the cell shows it as "existing"
    // or, restored from the last session, as the machine or edited caption saved there).
    let existing = session
        .entries
        .iter()
        .filter(|e| matches!(&e.disk, Disk::Text(t) if !t.caption.is_empty()))
        .count();
    let unreadable = session
        .entries
        .iter()
        .filter(|e| matches!(e.disk, Disk::Unreadable(_)))
        .count();
    let mut text = format!("{what}: {n} photos, {existing} with a caption from their .txt file");
    if unreadable > 0 {
        text.push_str(&format!(
            ", {unreadable} .txt files could not be read (left as they are; filter \u{201c}failed or problems\u{201d})"
        ));
    }
    Some((text, unreadable > 0))
}

impl BatchPanel {
    /// Lists the images in `dir` (on a background thread) and shows them with their captions.
    /// Asks first when captions are not saved yet.
    pub fn open_folder(&mut self, dir: PathBuf, shared: &mut Shared) {
        let unsaved = self.unsaved();
        if unsaved > 0
            && self.session.as_ref().and_then(|s| s.root.as_deref()) != Some(dir.as_path())
        {
            self.ask = Some(Ask::Unsaved {
                count: unsaved,
                then: Then::Open(dir),
            });
            return;
        }
        self.open_folder_now(dir, shared);
    }

    pub(super) fn open_folder_now(&mut self, dir: PathBuf, shared: &mut Shared) {
        self.cancel();
        self.persist_now(shared);
        self.settings.folder = dir.display().to_string();
        match Pending::spawn(&shared.ctx, "list-folder", move || {
            // Reading every photo's caption (sidecar or metadata) happens here, off the UI
            // thread, so a folder of 100,000 photos does not freeze the window.
            captioner::jobs::caption::list_photos(&dir)
                .map(|(files, skipped)| {
                    let removed =
                        remove_leftover_temporaries(Some(&dir), files.iter().map(PathBuf::as_path));
                    let session =
                        Session::open(dir.display().to_string(), Some(dir.clone()), files);
                    Listed {
                        dir,
                        files: Vec::new(),
                        session: Some(session),
                        removed,
                        skipped,
                    }
                })
                .map_err(|e| e.report())
        }) {
            Ok(p) => self.listing = Some((false, p)),
            Err(e) => shared.status.error(e),
        }
    }

    /// Lists the folder again: new photos are added, vanished or changed ones are marked.
    pub fn rescan(&mut self, shared: &mut Shared) {
        let Some(root) = self.session.as_ref().and_then(|s| s.root.clone()) else {
            return;
        };
        match Pending::spawn(&shared.ctx, "list-folder", move || {
            captioner::jobs::caption::list_photos(&root)
                .map(|(files, skipped)| Listed {
                    dir: root,
                    files,
                    session: None,
                    removed: Vec::new(),
                    skipped,
                })
                .map_err(|e| e.report())
        }) {
            Ok(p) => self.listing = Some((true, p)),
            Err(e) => shared.status.error(e),
        }
    }

    /// Shows these image files as the batch.
    pub fn open_files(&mut self, files: Vec<PathBuf>, shared: &mut Shared) {
        let unsaved = self.unsaved();
        if unsaved > 0 {
            self.ask = Some(Ask::Unsaved {
                count: unsaved,
                then: Then::OpenFiles(files),
            });
            return;
        }
        self.cancel();
        self.persist_now(shared);
        let mut sorted = files;
        sorted.sort();
        let key = sorted
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n");
        self.start_session(Session::open(key, None, sorted), shared);
    }

    /// Shows `session`, with what its session file kept from last time.
    fn start_session(&mut self, mut session: Session, shared: &mut Shared) {
        let file = Session::file_for(&session_dir(shared), &session.key);
        // One window per folder: a second window's edits would overwrite the first's in the
        // session file (last writer wins), so the second does not open it.
        let ours = self
            .lock
            .as_ref()
            .is_some_and(|l| l.path() == lock::lock_path(&file));
        if !ours {
            match lock::acquire(&file) {
                lock::Acquired::Held(l) => self.lock = Some(l),
                lock::Acquired::Elsewhere { pid } => {
                    let what = session
                        .root
                        .as_ref()
                        .map_or_else(|| "These photos".to_string(), |r| r.display().to_string());
                    let text = format!(
                        "{what} is open in another captioner window (process {pid}), so it is \
                         not opened here: two windows would overwrite each other's edits. \
                         Close it there, then open it here again."
                    );
                    shared.status.error(&text);
                    self.refused = Some(text);
                    return;
                }
                lock::Acquired::Unlocked(reason) => {
                    self.lock = None;
                    shared.status.warn(format!(
                        "cannot mark the folder as open in this window ({reason}); \
                         do not open it in a second window"
                    ));
                }
            }
        }
        self.refused = None;
        match session.restore(&file) {
            Ok(0) => {}
            Ok(n) => shared.status.info(format!(
                "{n} captions not saved to sidecars yet came back from the last session"
            )),
            Err(e) => shared.status.warn(e.to_string()),
        }
        match opened_summary(&session) {
            None => {
                let what = session
                    .root
                    .as_ref()
                    .map_or_else(|| "photos".to_string(), |r| r.display().to_string());
                shared.status.warn(format!("{what}: no image files found"));
            }
            Some((text, true)) => shared.status.warn(text),
            Some((text, false)) => shared.status.info(text),
        }
        if let Some(root) = &session.root {
            remember(&mut self.settings.recent, root.display().to_string());
        }
        self.persist = Some(Persist::new(session.generation()));
        self.selected = (!session.entries.is_empty()).then_some(0);
        self.marked.clear();
        self.anchor = None;
        self.tag_filter = None;
        self.session = Some(session);
        self.last_report = None;
        self.grid.scroll_top = true;
    }

    /// Once, at startup: reopens the last folder when its session file exists.
    pub(super) fn restore_last_folder(&mut self, shared: &mut Shared) {
        if self.tried_restore {
            return;
        }
        self.tried_restore = true;
        let folder = self.settings.folder.trim();
        let dir = PathBuf::from(folder);
        if self.session.is_none()
            && self.listing.is_none()
            && !folder.is_empty()
            && dir.is_dir()
            && Session::file_for(&session_dir(shared), &dir.display().to_string()).is_file()
        {
            self.open_folder_now(dir, shared);
        }
    }

    /// Takes a finished folder listing: a new session, or a rescan's changes.
    pub(super) fn poll_listing(&mut self, shared: &mut Shared) {
        let Some((rescan, pending)) = &self.listing else {
            return;
        };
        let rescan = *rescan;
        let result = match pending.poll() {
            tasks::Poll::Waiting => return,
            tasks::Poll::Ready(r) => r,
            tasks::Poll::Lost => Err("listing the folder failed".to_string()),
        };
        self.listing = None;
        self.take_listing(rescan, result, shared);
    }

    /// Shows a finished folder listing: a new session, or a rescan's changes, and what could not
    /// be read.
    pub(super) fn take_listing(&mut self, rescan: bool, result: Listing, shared: &mut Shared) {
        match result {
            Ok(l) if rescan => {
                if let Some(s) = &mut self.session {
                    let (added, missing, changed) = s.rescan(l.files);
                    s.touch();
                    shared.status.info(format!(
                        "{}: {added} new photos, {missing} gone, {changed} changed",
                        l.dir.display()
                    ));
                }
                report_skipped_folders(&l.skipped, shared);
            }
            Ok(Listed {
                session: Some(session),
                removed,
                skipped,
                ..
            }) => {
                self.start_session(session, shared);
                report_removed_temporaries(&removed, shared);
                report_skipped_folders(&skipped, shared);
            }
            Ok(l) => shared
                .status
                .error(format!("{}: the folder was not read", l.dir.display())),
            Err(e) => shared.status.error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_sub_folder_is_said_not_skipped_silently() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = egui::Context::default();
        let mut shared = crate::Shared {
            ctx: ctx.clone(),
            paths: crate::AppPaths::under(tmp.path()),
            worker: None,
            thumbs: crate::thumbnails::Thumbnails::new(&ctx, 1, 8),
            status: crate::status::Status::default(),
        };
        let mut panel = BatchPanel::default();
        let dir = tmp.path().to_path_buf();
        let listed = Listed {
            session: Some(Session::open(
                dir.display().to_string(),
                Some(dir.clone()),
                Vec::new(),
            )),
            dir: dir.clone(),
            files: Vec::new(),
            removed: Vec::new(),
            skipped: vec![(
                dir.join("private"),
                "Permission denied (os error 13)".into(),
            )],
        };
        panel.take_listing(false, Ok(listed), &mut shared);
        let said: Vec<String> = shared
            .status
            .messages()
            .iter()
            .map(|m| m.text.clone())
            .collect();
        assert!(
            said.iter().any(|m| m.contains(
                "private: folder skipped, its photos are not in the batch: Permission denied"
            )),
            "{said:?}"
        );
    }

    #[test]
    fn recent_folders_are_newest_first_once_each_and_at_most_eight() {
        let mut recent = Vec::new();
        for k in 0..10 {
            remember(&mut recent, format!("/f{k}"));
        }
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0], "/f9");
        assert_eq!(recent[7], "/f2");
        remember(&mut recent, "/f5".into());
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0], "/f5");
        assert_eq!(recent.iter().filter(|r| *r == "/f5").count(), 1);
    }

    #[test]
    fn the_summary_counts_captions_and_unreadable_sidecars() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        for (name, bytes) in [
            ("a.jpg", &b"x"[..]),
            ("a.txt", b"a dog\n"),
            ("b.jpg", b"x"),
            ("c.jpg", b"x"),
            ("c.txt", b"bad \xff\n"),
        ] {
            std::fs::write(dir.join(name), bytes).expect("write");
        }
        let photos = ["a.jpg", "b.jpg", "c.jpg"].map(|n| dir.join(n)).to_vec();
        let s = Session::open("k".into(), Some(dir.to_path_buf()), photos);
        let (text, warn) = opened_summary(&s).expect("photos");
        assert!(text.ends_with(
            ": 3 photos, 1 with a caption from their .txt file, 1 .txt files could not be read \
             (left as they are; filter \u{201c}failed or problems\u{201d})"
        ));
        assert!(warn);
        assert!(opened_summary(&Session::open("k".into(), None, Vec::new())).is_none());
    }
}
