//! "Watch this folder": a [`FolderWatcher`] on a thread of its own tells the panel about the
//! photos that appear in the open folder (once they stop changing); the panel adds them to the
//! grid and captions those without a caption with the run "Caption N" starts
//! ([`BatchPanel::start_run_on`]), so a caption the user wrote or edited is never touched.
//! The watch stops when the switch is turned off, when another folder is opened, and when the
//! folder is renamed or deleted (the status line says so).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::BatchPanel;
use crate::Shared;
use captioner::jobs::watch::{FolderWatcher, Note, WatchTiming};

/// What the watcher thread tells the panel.
#[derive(Debug)]
pub enum News {
    /// Photos that appeared and stopped changing.
    Photos(Vec<PathBuf>),
    /// Something worth a line in the status bar (a folder that cannot be read).
    Note(String),
    /// The folder was renamed, moved or deleted; the thread has ended.
    Gone,
}

/// A watched folder: the thread and what it sent that the panel has not taken yet.
pub struct FolderWatch {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    news: crossbeam_channel::Receiver<News>,
    /// Photos that arrived while a run was going, waiting for it to end.
    waiting: Vec<PathBuf>,
}

impl FolderWatch {
    /// Starts watching `dir` on a thread of its own, waking the UI with `ctx` when something
    /// arrives. The watch is set up before this returns, so a photo that arrives once the
    /// switch is on is seen.
    pub fn start(dir: PathBuf, ctx: egui::Context) -> Result<FolderWatch, String> {
        let watcher =
            FolderWatcher::start(&dir, &WatchTiming::default()).map_err(|e| e.report())?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, news) = crossbeam_channel::unbounded();
        let thread_stop = stop.clone();
        std::thread::Builder::new()
            .name("watch-folder".into())
            .spawn(move || watch_thread(watcher, &thread_stop, &tx, &ctx))
            .map_err(|e| e.to_string())?;
        Ok(FolderWatch {
            dir,
            stop,
            news,
            waiting: Vec::new(),
        })
    }

    /// The watched folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        // The thread sees it within one poll (a fraction of a second) and ends.
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn watch_thread(
    mut watcher: FolderWatcher,
    stop: &AtomicBool,
    tx: &crossbeam_channel::Sender<News>,
    ctx: &egui::Context,
) {
    let send = |news: News| {
        let ok = tx.send(news).is_ok();
        ctx.request_repaint();
        ok
    };
    while !stop.load(Ordering::SeqCst) {
        let poll = watcher.poll(Duration::from_millis(200), 256);
        for note in poll.notes {
            let text = match note {
                Note::Vanished(p) => format!(
                    "{}: gone (moved away or deleted) before it could be read",
                    p.display()
                ),
                Note::Problem { path, message } => format!("{}: {message}", path.display()),
            };
            if !send(News::Note(text)) {
                return;
            }
        }
        if poll.folder_gone {
            send(News::Gone);
            return;
        }
        if !poll.ready.is_empty() {
            for p in &poll.ready {
                watcher.handled(p);
            }
            if !send(News::Photos(poll.ready)) {
                return;
            }
        }
    }
}

impl BatchPanel {
    /// Whether the open folder is being watched.
    pub fn is_watching(&self) -> bool {
        self.watch.is_some()
    }

    /// Turns "Watch this folder" on (for the open folder) or off.
    pub fn set_watching(&mut self, on: bool, shared: &mut Shared) {
        if !on {
            if let Some(w) = self.watch.take() {
                shared
                    .status
                    .info(format!("stopped watching {}", w.dir().display()));
            }
            return;
        }
        if self.watch.is_some() {
            return;
        }
        let Some(root) = self.session.as_ref().and_then(|s| s.root.clone()) else {
            shared
                .status
                .warn("open a folder first: only a folder can be watched");
            return;
        };
        match FolderWatch::start(root.clone(), shared.ctx.clone()) {
            Ok(w) => {
                shared.status.info(format!(
                    "watching {}: photos that appear in it (or its sub-folders) are added and \
                     captioned",
                    root.display()
                ));
                self.watch = Some(w);
            }
            // The library's message names the folder and says what failed.
            Err(e) => shared.status.error(e),
        }
    }

    /// Takes what the watcher sent: new photos join the grid and, once no run is going, the
    /// ones without a caption are captioned.
    pub(super) fn poll_watch(&mut self, shared: &mut Shared) {
        let Some(w) = &mut self.watch else { return };
        let root = self.session.as_ref().and_then(|s| s.root.as_deref());
        if root != Some(w.dir()) {
            // Another folder (or loose photos) was opened, or the folder was closed.
            let dir = w.dir().display().to_string();
            self.watch = None;
            shared.status.info(format!("stopped watching {dir}"));
            return;
        }
        let mut ended = None;
        for news in w.news.try_iter() {
            match news {
                News::Photos(paths) => w.waiting.extend(paths),
                News::Note(text) => shared.status.warn(text),
                News::Gone => {
                    ended = Some(format!(
                        "{} was renamed, moved or deleted: stopped watching it",
                        w.dir().display()
                    ))
                }
            }
        }
        if let Some(text) = ended {
            self.watch = None;
            shared.status.warn(text);
            return;
        }
        if self.running.is_some() || w.waiting.is_empty() {
            return;
        }
        let paths = std::mem::take(&mut w.waiting);
        let Some(s) = &mut self.session else { return };
        let (indices, added) = s.add_photos(paths);
        let todo: Vec<usize> = indices
            .into_iter()
            .filter(|&i| s.entries.get(i).is_some_and(|e| !e.has_caption()))
            .collect();
        if added > 0 {
            shared.status.info(format!(
                "watched folder: {} new, {} of them to caption",
                super::plural(added, "photo", "photos"),
                todo.len()
            ));
        }
        if !todo.is_empty() {
            self.start_run_on(Some(todo), false, None, shared);
        }
    }
}
