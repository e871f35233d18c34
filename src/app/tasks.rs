//! Small background tasks for the UI thread: file dialogs, folder listings and exports run on a
//! thread of their own and hand back one result, which the UI polls each frame.

use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, TryRecvError};

/// A result that a background thread will deliver.
pub struct Pending<T> {
    rx: Receiver<T>,
}

/// What [`Pending::poll`] found.
pub enum Poll<T> {
    Ready(T),
    Waiting,
    /// The thread ended without a result (it panicked).
    Lost,
}

impl<T: Send + 'static> Pending<T> {
    /// Runs `f` on a new thread; wakes the UI when it is done.
    pub fn spawn(
        ctx: &egui::Context,
        name: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Pending<T>, String> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _ = tx.send(f());
                ctx.request_repaint();
            })
            .map_err(|e| format!("cannot start a thread for {name}: {e}"))?;
        Ok(Pending { rx })
    }

    pub fn poll(&self) -> Poll<T> {
        match self.rx.try_recv() {
            Ok(v) => Poll::Ready(v),
            Err(TryRecvError::Empty) => Poll::Waiting,
            Err(TryRecvError::Disconnected) => Poll::Lost,
        }
    }
}

/// Polls an optional pending task: returns its result once, clearing the slot.
pub fn take_ready<T: Send + 'static>(slot: &mut Option<Pending<T>>) -> Option<Result<T, String>> {
    let result = match slot.as_ref()?.poll() {
        Poll::Waiting => return None,
        Poll::Ready(v) => Ok(v),
        Poll::Lost => Err("a background task ended unexpectedly".to_string()),
    };
    *slot = None;
    Some(result)
}

/// Which native dialog to open.
pub enum Dialog {
    PickFolder,
    PickImage,
    SaveFile {
        name: String,
        extension: &'static str,
    },
}

/// Opens a native file dialog without blocking the UI thread. Resolves to `None` when the
/// user cancels.
pub fn open_dialog(
    ctx: &egui::Context,
    dialog: Dialog,
    start: Option<&Path>,
) -> Result<Pending<Option<PathBuf>>, String> {
    let start = start.map(Path::to_path_buf);
    Pending::spawn(ctx, "file-dialog", move || {
        let mut d = rfd::AsyncFileDialog::new();
        if let Some(dir) = start.filter(|d| d.is_dir()) {
            d = d.set_directory(dir);
        }
        let handle = match dialog {
            Dialog::PickFolder => pollster::block_on(d.pick_folder()),
            Dialog::PickImage => pollster::block_on(
                d.add_filter("images", &crate::dataset::IMAGE_EXTENSIONS)
                    .pick_file(),
            ),
            Dialog::SaveFile { name, extension } => pollster::block_on(
                d.set_file_name(name)
                    .add_filter(extension, &[extension])
                    .save_file(),
            ),
        };
        handle.map(|h| h.path().to_path_buf())
    })
}
