//! The desktop app (eframe/egui): four panels over one worker thread.
//!
//! The UI thread owns only UI state. Everything slow (the model, dataset import, image
//! decoding, file dialogs, exports) runs elsewhere: model jobs on the [`captioner::worker`] thread,
//! thumbnails on [`thumbnails::Thumbnails`]' pool, dialogs and file writes on short-lived
//! threads ([`tasks`]). Results come back over channels and wake the UI with a repaint.
//!
//! Panels persist their settings (last folders, training settings, chosen model) through
//! eframe's storage; runtime state is `#[serde(skip)]`.

pub mod batch;
pub mod caption;
pub mod dataset;
pub mod models;
pub mod status;
pub mod tasks;
pub mod thumbnails;
pub mod train;
pub mod widgets;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use batch::BatchPanel;
use caption::CaptionPanel;
use captioner::worker::{Event, Job, Worker, WorkerConfig};
use dataset::DatasetPanel;
use models::{ModelsAction, ModelsPanel};
use status::Status;
use thumbnails::Thumbnails;
use train::TrainPanel;

/// Where the app keeps its files. Tests point this at a temporary folder.
#[derive(Clone, Debug)]
pub struct AppPaths {
    /// The per-user data folder.
    pub data_dir: PathBuf,
    /// Feature caches.
    pub cache_dir: PathBuf,
    /// Trained models, one folder each.
    pub models_dir: PathBuf,
}

impl AppPaths {
    /// The OS data directory (e.g. `~/.local/share/captioner`), by the rules of
    /// [`captioner::paths`].
    pub fn from_os() -> AppPaths {
        AppPaths {
            data_dir: captioner::paths::data_dir(),
            cache_dir: captioner::paths::cache_dir(None),
            models_dir: captioner::paths::trained_models_dir(),
        }
    }

    /// Everything under one folder.
    pub fn under(root: &Path) -> AppPaths {
        AppPaths {
            data_dir: root.to_path_buf(),
            cache_dir: root.join("cache"),
            models_dir: root.join("models"),
        }
    }
}

/// What to do right after the window opens (`captioner app --tab .. --open ..`).
#[derive(Clone, Debug, Default)]
pub struct Startup {
    pub tab: Option<Tab>,
    /// Opened as if dropped on the window: a photo is captioned, a folder imported.
    pub open: Vec<PathBuf>,
    /// Start the panel's job on what was opened: training on the Train panel (once the
    /// dataset is imported), captioning every photo on the Batch panel.
    pub run: bool,
    /// Caption with this model folder (the Caption and Batch panels) instead of the one chosen
    /// last time.
    pub model: Option<PathBuf>,
}

/// Opens the desktop window and runs until it is closed.
pub fn run() -> anyhow::Result<()> {
    run_with(Startup::default())
}

/// [`run`] with startup actions.
pub fn run_with(startup: Startup) -> anyhow::Result<()> {
    let paths = AppPaths::from_os();
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("captioner")
        .with_inner_size([1180.0, 780.0])
        .with_min_inner_size([640.0, 420.0])
        .with_drag_and_drop(true);
    match window_icon() {
        Ok(icon) => viewport = viewport.with_icon(icon),
        // No icon is no reason not to open the window.
        Err(e) => eprintln!("captioner: no window icon: {e}"),
    }
    let options = eframe::NativeOptions {
        viewport,
        persistence_path: Some(paths.data_dir.join("app.ron")),
        ..Default::default()
    };
    eframe::run_native(
        "captioner",
        options,
        Box::new(move |cc| {
            let mut app = CaptionerApp::new(cc, paths);
            app.apply_startup(startup);
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

/// The app's icon, 256 px (drawn in `assets/captioner.svg`; `assets/icons/` has it at every
/// size from 16 to 512 px).
pub const ICON_PNG: &[u8] = include_bytes!("../../../assets/icons/captioner-256.png");

/// The window icon, decoded from [`ICON_PNG`].
pub fn window_icon() -> Result<egui::IconData, image::ImageError> {
    let rgba = image::load_from_memory_with_format(ICON_PNG, image::ImageFormat::Png)?.into_rgba8();
    let (width, height) = rgba.dimensions();
    Ok(egui::IconData {
        rgba: rgba.into_raw(),
        width,
        height,
    })
}

/// The panel that what `captioner app` opens belongs on, when `--tab` names none: one photo
/// on the Caption panel, a folder or several photos on the Batch panel (`None`: nothing
/// opened, the tab used last).
pub fn startup_tab(open: &[PathBuf]) -> Option<Tab> {
    match open {
        [] => None,
        [one] if !one.is_dir() => Some(Tab::Caption),
        _ => Some(Tab::Batch),
    }
}

/// The panels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Tab {
    Dataset,
    Train,
    Models,
    #[default]
    Caption,
    Batch,
}

/// The keys that, with Ctrl (Cmd), go to each tab of [`Tab::ALL`].
const TAB_KEYS: [egui::Key; 5] = [
    egui::Key::Num1,
    egui::Key::Num2,
    egui::Key::Num3,
    egui::Key::Num4,
    egui::Key::Num5,
];

impl Tab {
    pub const ALL: [Tab; 5] = [
        Tab::Dataset,
        Tab::Train,
        Tab::Models,
        Tab::Caption,
        Tab::Batch,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Dataset => "Dataset",
            Tab::Train => "Train",
            Tab::Models => "Models",
            Tab::Caption => "Caption",
            Tab::Batch => "Batch",
        }
    }
}

/// What persists between runs: each panel's settings (runtime state inside is skipped).
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Panels {
    pub tab: Tab,
    pub dataset: DatasetPanel,
    pub caption: CaptionPanel,
    pub batch: BatchPanel,
    pub train: TrainPanel,
    pub models: ModelsPanel,
}

/// What all panels use: the worker, the thumbnail pool, the status line, the app's folders.
pub struct Shared {
    pub ctx: egui::Context,
    pub paths: AppPaths,
    pub worker: Option<Worker>,
    pub thumbs: Thumbnails,
    pub status: Status,
}

impl Shared {
    /// Sends a command to the worker; reports on the status line when it cannot.
    pub fn send(&mut self, command: captioner::worker::Command) -> bool {
        let sent = self.worker.as_ref().is_some_and(|w| w.send(command));
        if !sent {
            self.status
                .error("the background worker is not running; restart the app");
        }
        sent
    }
}

pub struct CaptionerApp {
    pub panels: Panels,
    pub shared: Shared,
    /// Start training (Train tab) or batch captioning (Batch tab) once the input is loaded.
    pending_run: bool,
    /// Frame-time statistics, printed when `CAPTIONER_FRAME_STATS` is set.
    frame_stats: Option<FrameStats>,
    /// The window title last sent.
    title: String,
}

/// How long the app's own per-frame work (events, layout, widgets) takes: with
/// `CAPTIONER_FRAME_STATS=1` the app prints, every 5 seconds, the number of frames, the mean and
/// the slowest, so UI responsiveness during training or batch runs can be measured.
#[derive(Debug)]
pub struct FrameStats {
    window_start: std::time::Instant,
    frame_start: Option<std::time::Instant>,
    frames: usize,
    total: std::time::Duration,
    slowest: std::time::Duration,
    slowest_ever: std::time::Duration,
}

impl FrameStats {
    fn new() -> FrameStats {
        FrameStats {
            window_start: std::time::Instant::now(),
            frame_start: None,
            frames: 0,
            total: std::time::Duration::ZERO,
            slowest: std::time::Duration::ZERO,
            slowest_ever: std::time::Duration::ZERO,
        }
    }

    fn begin(&mut self) {
        self.frame_start = Some(std::time::Instant::now());
    }

    fn end(&mut self) {
        let Some(start) = self.frame_start.take() else {
            return;
        };
        let d = start.elapsed();
        self.frames += 1;
        self.total += d;
        self.slowest = self.slowest.max(d);
        self.slowest_ever = self.slowest_ever.max(d);
        if self.window_start.elapsed() >= std::time::Duration::from_secs(5) {
            eprintln!(
                "frames: {} in the last {:.1} s, mean {:.2} ms, slowest {:.2} ms (slowest so far {:.2} ms)",
                self.frames,
                self.window_start.elapsed().as_secs_f64(),
                self.total.as_secs_f64() * 1e3 / self.frames.max(1) as f64,
                self.slowest.as_secs_f64() * 1e3,
                self.slowest_ever.as_secs_f64() * 1e3,
            );
            self.window_start = std::time::Instant::now();
            self.frames = 0;
            self.total = std::time::Duration::ZERO;
            self.slowest = std::time::Duration::ZERO;
        }
    }
}

impl CaptionerApp {
    /// Builds the app, restoring saved settings when eframe has storage.
    pub fn new(cc: &eframe::CreationContext<'_>, paths: AppPaths) -> CaptionerApp {
        let panels: Panels = cc
            .storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default();
        CaptionerApp::with_panels(&cc.egui_ctx, paths, panels)
    }

    /// Builds the app with the given settings (tests use this).
    pub fn with_panels(ctx: &egui::Context, paths: AppPaths, panels: Panels) -> CaptionerApp {
        let mut status = Status::default();
        let worker = match Worker::spawn(
            ctx,
            WorkerConfig {
                cache_dir: paths.cache_dir.clone(),
                models_dir: paths.models_dir.clone(),
            },
        ) {
            Ok(w) => Some(w),
            Err(e) => {
                status.error(format!("cannot start the background worker: {e}"));
                None
            }
        };
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
        CaptionerApp {
            panels,
            shared: Shared {
                ctx: ctx.clone(),
                paths,
                worker,
                thumbs: Thumbnails::new(ctx, threads, 800),
                status,
            },
            pending_run: false,
            title: String::new(),
            frame_stats: std::env::var_os("CAPTIONER_FRAME_STATS").map(|_| FrameStats::new()),
        }
    }

    fn start_pending_run(&mut self) {
        match self.panels.tab {
            Tab::Train => {
                if let Some(root) = self.panels.dataset.loaded().map(|l| l.dataset.root.clone()) {
                    self.pending_run = false;
                    let splits = self.dataset_splits();
                    self.panels
                        .train
                        .start_with(Some(root), splits, false, &mut self.shared);
                }
            }
            Tab::Batch => {
                if !self.panels.batch.is_listing() && !self.panels.batch.entries().is_empty() {
                    self.pending_run = false;
                    self.panels.batch.caption_all(false, &mut self.shared);
                }
            }
            Tab::Dataset | Tab::Caption | Tab::Models => self.pending_run = false,
        }
    }

    /// The loaded dataset's train and dev photos (for the Train panel's warnings).
    fn dataset_splits(&self) -> Option<(usize, usize)> {
        self.panels
            .dataset
            .loaded()
            .map(|l| (l.summary.splits.train, l.summary.splits.dev))
    }

    /// Runs the startup actions: open files as if dropped, pick a tab, start training.
    /// What is opened decides the tab unless `--tab` names one, whatever tab was used last:
    /// one photo opens on the Caption panel and is captioned, a folder or several photos on
    /// the Batch panel.
    pub fn apply_startup(&mut self, startup: Startup) {
        if let Some(tab) = startup.tab.or_else(|| startup_tab(&startup.open)) {
            self.panels.tab = tab;
        }
        if let Some(dir) = startup.model {
            let choice = captioner::jobs::ModelChoice::Trained(dir);
            self.panels.batch.settings.model = choice.clone();
            self.panels.caption.choose_model(choice, &mut self.shared);
        }
        self.handle_dropped(startup.open);
        if let Some(tab) = startup.tab {
            self.panels.tab = tab;
        }
        self.pending_run = startup.run;
    }

    /// Routes the worker's events to the panels.
    fn handle_events(&mut self) {
        let events = match &self.shared.worker {
            Some(w) => w.poll(),
            None => return,
        };
        for event in events {
            self.handle_event(event);
        }
    }

    fn handle_event(&mut self, event: Event) {
        let p = &mut self.panels;
        let shared = &mut self.shared;
        match event {
            Event::Progress { job, .. } | Event::Failed { job, .. } => match job {
                Job::Import => p.dataset.on_event(event, shared),
                Job::Batch => p.batch.on_event(event, shared),
                Job::LoadModel | Job::Caption => p.caption.on_event(event, shared),
                Job::Features | Job::Train => p.train.on_event(event, shared),
                Job::Evaluate => p.models.on_event(event, shared),
            },
            Event::TrainStarted { .. } | Event::Training(_) | Event::FineTuning { .. } => {
                p.train.on_event(event, shared)
            }
            Event::TrainFinished(outcome) => {
                p.models
                    .on_event(Event::TrainFinished(outcome.clone()), shared);
                p.train.on_event(Event::TrainFinished(outcome), shared);
            }
            Event::Evaluated { .. } => p.models.on_event(event, shared),
            Event::ModelsListed(list) => {
                p.models.on_event(Event::ModelsListed(list.clone()), shared);
                p.train.on_event(Event::ModelsListed(list.clone()), shared);
                p.caption.on_event(Event::ModelsListed(list), shared);
            }
            Event::DatasetImported { .. } => p.dataset.on_event(event, shared),
            Event::ModelLoaded { .. } | Event::Captioned { .. } => {
                p.caption.on_event(event, shared)
            }
            Event::BatchItem { .. } | Event::BatchDone { .. } => p.batch.on_event(event, shared),
        }
    }

    /// Files dropped on the window: an image is captioned, a folder is imported as a dataset
    /// (or opened for batch captioning on the Batch panel), several images form a batch.
    /// The Batch panel's "Train on this folder": the folder becomes the dataset (its `.txt`
    /// captions, read by the sidecar importer), and the Train panel opens, set to fine-tune the
    /// Batch panel's model (its "Start from" choice can make it a new model instead).
    pub fn train_on_folder(&mut self, request: batch::TrainRequest) {
        if self.panels.train.is_running() {
            self.shared
                .status
                .warn("a training run is going on; stop it before training on this folder");
            return;
        }
        self.panels
            .dataset
            .import(request.folder.clone(), &mut self.shared);
        let train = &mut self.panels.train;
        train.settings.dataset_dir = Some(request.folder.clone());
        train.set_from(Some(request.model.dir()));
        self.panels.tab = Tab::Train;
        self.shared.status.info(format!(
            "training on the captions in {}: fine-tuning {} (change \"Start from\" for a new model), then press Start",
            request.folder.display(),
            request.model.label()
        ));
    }

    pub fn handle_dropped(&mut self, paths: Vec<PathBuf>) {
        if paths.is_empty() {
            return;
        }
        let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) =
            paths.into_iter().partition(|p| p.is_dir());
        let (images, others): (Vec<PathBuf>, Vec<PathBuf>) = files
            .into_iter()
            .partition(|p| captioner::dataset::has_image_extension(p));
        for other in &others {
            self.shared.status.warn(format!(
                "{}: not an image or a folder; drop a photo to caption it or a folder to import it",
                other.display()
            ));
        }
        if let Some(dir) = dirs.into_iter().next() {
            if self.panels.tab == Tab::Batch {
                self.panels.batch.open_folder(dir, &mut self.shared);
            } else {
                self.panels.tab = Tab::Dataset;
                self.panels.dataset.import(dir, &mut self.shared);
            }
            return;
        }
        if images.len() > 1 || (self.panels.tab == Tab::Batch && !images.is_empty()) {
            self.panels.tab = Tab::Batch;
            self.panels.batch.open_files(images, &mut self.shared);
        } else if let Some(image) = images.into_iter().next() {
            self.panels.tab = Tab::Caption;
            self.panels
                .caption
                .caption(captioner::worker::ImageInput::File(image), &mut self.shared);
        }
    }

    /// The window title: what the panel on show has open (the photo on the Caption panel, the
    /// folder on the Batch panel, the dataset on the Dataset and Train panels), then the
    /// program's name.
    pub fn window_title(&self) -> String {
        let p = &self.panels;
        let open = match p.tab {
            Tab::Caption => p.caption.shown().map(|s| {
                s.path
                    .as_ref()
                    .map_or(s.source.clone(), |f| f.display().to_string())
            }),
            Tab::Batch => p.batch.session().map(|s| match &s.root {
                Some(root) => root.display().to_string(),
                None => format!(
                    "{} photo{}",
                    s.entries.len(),
                    if s.entries.len() == 1 { "" } else { "s" }
                ),
            }),
            Tab::Dataset | Tab::Train => p
                .dataset
                .loaded()
                .map(|l| l.dataset.root.display().to_string()),
            Tab::Models => None,
        };
        match open {
            Some(what) => format!("{what} — captioner"),
            None => "captioner".to_string(),
        }
    }

    /// Carries out what the Models view asked for.
    fn apply_models_action(&mut self, action: ModelsAction) {
        match action {
            ModelsAction::Use(choice) => {
                self.panels.caption.choose_model(choice, &mut self.shared);
                self.panels.tab = Tab::Caption;
            }
            ModelsAction::Deleted(dir) => {
                if self.panels.caption.model == captioner::jobs::ModelChoice::Trained(dir) {
                    self.panels
                        .caption
                        .choose_model(captioner::jobs::ModelChoice::Default, &mut self.shared);
                }
            }
        }
    }

    /// Ctrl+1 to Ctrl+5 (Cmd on a Mac) go to the tabs, in the tab bar's order, from anywhere
    /// (a text box keeps plain digits; the Batch panel's 1-9 take alternatives).
    fn tab_shortcuts(&mut self, ctx: &egui::Context) {
        for (k, tab) in Tab::ALL.into_iter().enumerate() {
            if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, TAB_KEYS[k])) {
                self.panels.tab = tab;
            }
        }
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("captioner");
            ui.separator();
            for (k, tab) in Tab::ALL.into_iter().enumerate() {
                let shortcut = ui.ctx().format_shortcut(&egui::KeyboardShortcut::new(
                    egui::Modifiers::COMMAND,
                    TAB_KEYS[k],
                ));
                ui.selectable_value(&mut self.panels.tab, tab, tab.title())
                    .on_hover_text(shortcut);
            }
        });
    }

    fn drop_overlay_ui(&mut self, ui: &mut egui::Ui) {
        let hovering = ui.ctx().input(|i| !i.raw.hovered_files.is_empty());
        if !hovering {
            return;
        }
        let rect = ui.ctx().content_rect();
        let painter = ui.ctx().layer_painter(egui::LayerId::new(
            egui::Order::Foreground,
            egui::Id::unique("drop_overlay"),
        ));
        painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(170));
        let text = if self.panels.tab == Tab::Batch {
            "Drop a folder or images to caption them all"
        } else {
            "Drop a photo to caption it, or a dataset folder to import it"
        };
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            text,
            egui::FontId::proportional(26.0),
            egui::Color32::WHITE,
        );
    }
}

impl eframe::App for CaptionerApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let _ = ctx;
        if let Some(stats) = &mut self.frame_stats {
            stats.begin();
        }
        self.handle_events();
        if self.pending_run {
            self.start_pending_run();
        }
        self.panels.dataset.poll(&mut self.shared);
        self.panels.caption.poll(&mut self.shared);
        self.panels.batch.poll(&mut self.shared);
        self.panels.models.poll(&mut self.shared);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let dropped: Vec<PathBuf> = ui.ctx().input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        self.handle_dropped(dropped);
        if let Some(request) = self.panels.batch.train_request.take() {
            self.train_on_folder(request);
        }
        // Closing with captions not written to their sidecars asks first (the Batch panel).
        if ui.ctx().input(|i| i.viewport().close_requested())
            && !self.panels.batch.may_close(&mut self.shared)
        {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.panels.tab = Tab::Batch;
        }
        self.tab_shortcuts(ui.ctx());
        if self.panels.tab == Tab::Batch {
            // Undo, redo and save, before any text box can take the keys.
            self.panels
                .batch
                .handle_shortcuts(ui.ctx(), &mut self.shared);
        }
        if self.panels.tab == Tab::Caption {
            self.panels.caption.handle_paste(ui.ctx(), &mut self.shared);
        }

        egui::Panel::top("tabs").show(ui, |ui| self.top_bar_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.shared.status.bar_ui(ui));
        egui::CentralPanel::default_margins().show(ui, |ui| match self.panels.tab {
            Tab::Dataset => self.panels.dataset.panel_ui(ui, &mut self.shared),
            Tab::Train => {
                let dataset_dir = self.panels.dataset.loaded().map(|l| l.dataset.root.clone());
                let splits = self.dataset_splits();
                self.panels
                    .train
                    .panel_ui(ui, &mut self.shared, dataset_dir, splits)
            }
            Tab::Models => {
                let dataset_dir = self.panels.dataset.loaded().map(|l| l.dataset.root.clone());
                if let Some(action) = self
                    .panels
                    .models
                    .panel_ui(ui, &mut self.shared, dataset_dir)
                {
                    self.apply_models_action(action);
                }
            }
            Tab::Caption => self.panels.caption.panel_ui(ui, &mut self.shared),
            Tab::Batch => self.panels.batch.panel_ui(ui, &mut self.shared),
        });
        self.drop_overlay_ui(ui);
        let title = self.window_title();
        if title != self.title {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
        self.shared.thumbs.end_frame(ui.ctx());
        if let Some(stats) = &mut self.frame_stats {
            stats.end();
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.panels.batch.persist_now(&mut self.shared);
        eframe::set_value(storage, eframe::APP_KEY, &self.panels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_icon_decodes_and_every_size_is_there() {
        let icon = window_icon().expect("the embedded icon decodes");
        assert_eq!((icon.width, icon.height), (256, 256));
        assert_eq!(icon.rgba.len(), 256 * 256 * 4);
        // Transparent corners, an opaque middle: a drawn icon, not an empty one.
        assert_eq!(icon.rgba[3], 0);
        let middle = (128 * 256 + 128) * 4;
        assert_eq!(icon.rgba[middle + 3], 255);
        let assets = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets"));
        assert!(assets.join("captioner.svg").is_file());
        for n in [16u32, 32, 48, 64, 128, 256, 512] {
            let png = assets.join(format!("icons/captioner-{n}.png"));
            let img = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
            assert_eq!((img.width(), img.height()), (n, n), "{}", png.display());
        }
    }

    #[test]
    fn what_is_opened_picks_the_tab() {
        let photo = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/encoder/images/246231741_882b45c4e1.jpg"
        ));
        let folder = photo.parent().unwrap();
        assert_eq!(startup_tab(&[]), None);
        assert_eq!(startup_tab(&[photo.to_path_buf()]), Some(Tab::Caption));
        assert_eq!(startup_tab(&[folder.to_path_buf()]), Some(Tab::Batch));
        assert_eq!(
            startup_tab(&[photo.to_path_buf(), photo.to_path_buf()]),
            Some(Tab::Batch)
        );
    }
}
