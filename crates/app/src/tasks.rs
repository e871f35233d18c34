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

/// Whether a native file dialog can open here, or why not. On Linux the dialogs need the
/// xdg-desktop-portal D-Bus service or the `zenity` program; without either, the dialog would
/// close at once and say nothing, so the app asks for a typed path instead.
pub fn dialog_service() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    let on_path = |program: &str| {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        })
    };
    if on_path("zenity") {
        return Ok(());
    }
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty());
    let data_dirs = std::env::var("XDG_DATA_DIRS")
        .unwrap_or_else(|_| "/usr/local/share:/usr/share".to_string());
    let portal = data_dirs.split(':').filter(|d| !d.is_empty()).any(|d| {
        Path::new(d)
            .join("dbus-1/services/org.freedesktop.portal.Desktop.service")
            .is_file()
    });
    match (bus, portal) {
        (true, true) => Ok(()),
        (false, _) => Err(
            "no file-dialog service: there is no D-Bus session for xdg-desktop-portal, and zenity is not installed"
                .to_string(),
        ),
        (true, false) => Err(
            "no file-dialog service: neither xdg-desktop-portal nor zenity is installed"
                .to_string(),
        ),
    }
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
                d.add_filter("images", &captioner::dataset::IMAGE_EXTENSIONS)
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
