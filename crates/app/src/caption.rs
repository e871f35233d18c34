//! The Caption panel: drop a photo anywhere on the window (or open one, or paste one) to see
//! it with its caption, the beam's alternatives with their scores, and each word's
//! probability; copy the caption; choose the model (the shipped default or a trained one).

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Shared;
use super::tasks::{self, Dialog, Pending};
use super::widgets::{
    DOUBT_LEGEND, TypedPathPrompt, confidence_color, grounding_hover, grounding_of, paint_doubt,
};
use captioner::pipeline::CaptionSource;
use captioner::worker::{CaptionOutput, Command, Event, ImageInput, ModelChoice, ModelEntry};

#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct CaptionPanel {
    /// Beam width (1 = greedy).
    pub beam: usize,
    /// The model to caption with.
    pub model: ModelChoice,
    /// Where the last image was opened from.
    pub last_dir: Option<PathBuf>,

    #[serde(skip)]
    busy: bool,
    #[serde(skip)]
    shown: Option<Shown>,
    #[serde(skip)]
    last_input: Option<ImageInput>,
    #[serde(skip)]
    error: Option<String>,
    #[serde(skip)]
    dialog: Option<Pending<Option<PathBuf>>>,
    #[serde(skip)]
    models: Vec<ModelEntry>,
    /// The loaded model, in words.
    #[serde(skip)]
    model_info: Option<String>,
    #[serde(skip)]
    model_requested: bool,
    /// Overwrite an existing `.txt` beside the photo when saving the caption.
    pub overwrite_sidecar: bool,
    /// "Start with": words the caption must begin with, which the model goes on from
    /// (empty: none). Not kept between runs, so that a new session's captions are the model's
    /// own.
    #[serde(skip)]
    pub start_with: String,
    /// The start the caption on show (or being written) was asked with.
    #[serde(skip)]
    captioned_with: String,
    /// Whether a file dialog can open here (detected on first use), or why not.
    #[serde(skip)]
    dialog_service: Option<Result<(), String>>,
    /// The typed-path prompt of "Open image…" where no file dialog can open.
    #[serde(skip)]
    typed_path: Option<TypedPathPrompt>,
    /// The caption's text box while the caption is being edited.
    #[serde(skip)]
    edit_buffer: Option<String>,
    /// "Save caption" was pressed on a caption flagged for review: asking before saving.
    #[serde(skip)]
    confirm_save: bool,
}

/// The image on show and its caption.
pub struct Shown {
    pub source: String,
    pub output: CaptionOutput,
    /// The photo's file (none for a pasted image).
    pub path: Option<PathBuf>,
    /// Which of the beam's alternatives is the caption (0: the best).
    pub chosen: usize,
    /// The caption as the user edited it (`None`: not edited); Copy and Save take it.
    pub edited: Option<String>,
    texture: Option<egui::TextureHandle>,
    /// The photo as shown, to lay attention maps over.
    preview: Option<Arc<egui::ColorImage>>,
    /// The word whose attention map is shown while nothing is hovered (clicked).
    pub focus_word: Option<usize>,
    /// The word under the pointer last frame.
    hover_word: Option<usize>,
    /// The photo with a word's map over it, for that word.
    overlay: Option<(usize, egui::TextureHandle)>,
    /// One small map per word.
    thumbs: Vec<egui::TextureHandle>,
}

impl Shown {
    /// The caption taken: the chosen alternative's text (the best one unless another was
    /// clicked).
    pub fn caption(&self) -> &str {
        if let Some(text) = &self.edited {
            return text;
        }
        self.model_caption()
    }

    /// The model's caption taken (the chosen alternative), whatever the user edited.
    pub fn model_caption(&self) -> &str {
        match self.output.alternatives.get(self.chosen) {
            Some(alt) if self.chosen > 0 => &alt.text,
            _ => &self.output.text,
        }
    }

    /// The word whose attention map is on show (hovered, else clicked), when the caption on
    /// show has maps.
    pub fn map_word(&self) -> Option<usize> {
        let maps = self.output.attention.as_ref()?;
        if self.chosen != 0 {
            return None;
        }
        self.hover_word
            .or(self.focus_word)
            .filter(|&w| w < maps.words.len())
    }

    /// Whether the photo is shown with word `word`'s attention map over it.
    pub fn overlay_word(&self) -> Option<usize> {
        self.overlay.as_ref().map(|(w, _)| *w)
    }

    /// Makes the textures the attention display needs: the overlay of the word on show and the
    /// row of per-word maps.
    fn prepare_attention(&mut self, ctx: &egui::Context) {
        let Some(maps) = self.output.attention.clone() else {
            return;
        };
        if self.thumbs.is_empty() {
            const SIDE: usize = 40;
            for i in 0..maps.words.len() {
                if let Some(rgb) = captioner::attention_view::thumbnail(&maps, i, SIDE) {
                    self.thumbs.push(ctx.load_texture(
                        format!("attention-thumb-{i}"),
                        egui::ColorImage::from_rgb([SIDE, SIDE], &rgb),
                        egui::TextureOptions::LINEAR,
                    ));
                }
            }
        }
        let want = self.map_word();
        if self.overlay_word() == want {
            return;
        }
        self.overlay = None;
        let (Some(word), Some(preview)) = (want, &self.preview) else {
            return;
        };
        let [w, h] = preview.size;
        let rgb: Vec<u8> = preview
            .pixels
            .iter()
            .flat_map(|p| [p.r(), p.g(), p.b()])
            .collect();
        if let Some(out) = captioner::attention_view::overlay(&rgb, w, h, &maps, word) {
            let texture = ctx.load_texture(
                "caption-attention",
                egui::ColorImage::from_rgb([w, h], &out),
                egui::TextureOptions::LINEAR,
            );
            self.overlay = Some((word, texture));
        }
    }
}

/// Each of the beam's captions' share of the beam, in percent (summing to 100): its per-word
/// probability (the exponential of its score, a mean log-probability per word) over the sum
/// of theirs. A share compares the beam's captions with each other; it is not how likely a
/// caption is to be right (that is the calibrated confidence), so the best of three close
/// captions has about 33%, not 100%.
pub fn beam_shares(scores: &[f32]) -> Vec<f32> {
    let best = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !best.is_finite() {
        return vec![100.0 / scores.len().max(1) as f32; scores.len()];
    }
    let weights: Vec<f32> = scores.iter().map(|s| (s - best).exp()).collect();
    let sum: f32 = weights.iter().sum();
    weights.iter().map(|w| w / sum * 100.0).collect()
}

impl Default for CaptionPanel {
    fn default() -> Self {
        CaptionPanel {
            beam: 3,
            model: ModelChoice::Default,
            last_dir: None,
            busy: false,
            shown: None,
            last_input: None,
            error: None,
            dialog: None,
            models: Vec::new(),
            model_info: None,
            model_requested: false,
            overwrite_sidecar: false,
            start_with: String::new(),
            captioned_with: String::new(),
            dialog_service: None,
            typed_path: None,
            edit_buffer: None,
            confirm_save: false,
        }
    }
}

impl CaptionPanel {
    /// The caption on show.
    pub fn shown(&self) -> Option<&Shown> {
        self.shown.as_ref()
    }

    /// The caption on show, to change (tests: a caption flagged for review).
    pub fn shown_mut(&mut self) -> Option<&mut Shown> {
        self.shown.as_mut()
    }

    pub fn is_busy(&self) -> bool {
        self.busy
    }

    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub fn model_info(&self) -> Option<&str> {
        self.model_info.as_deref()
    }

    /// The models listed by the worker (trained ones).
    pub fn models(&self) -> &[ModelEntry] {
        &self.models
    }

    /// Takes the beam's alternative `index` as the caption (an edit is dropped).
    pub fn choose_alternative(&mut self, index: usize) {
        if let Some(shown) = &mut self.shown
            && index < shown.output.alternatives.len().max(1)
        {
            shown.chosen = index;
            shown.edited = None;
            self.edit_buffer = None;
            self.confirm_save = false;
        }
    }

    /// Pretends no file-dialog service exists (tests), or restores detection with `None`.
    pub fn set_dialog_service(&mut self, service: Option<Result<(), String>>) {
        self.dialog_service = service;
    }

    /// Whether the typed-path prompt of "Open image…" is showing (no file dialog), and why.
    pub fn typed_path_reason(&self) -> Option<&str> {
        self.typed_path.as_ref().map(|t| t.why.as_str())
    }

    /// Whether the caption is being edited in its text box.
    pub fn is_editing(&self) -> bool {
        self.edit_buffer.is_some()
    }

    /// Whether the panel is asking before saving a caption flagged for review.
    pub fn is_confirming_save(&self) -> bool {
        self.confirm_save
    }

    /// "Save caption": saves at once, or first asks when the caption is flagged for review
    /// and the user has not edited it.
    fn request_save(&mut self, shared: &mut Shared) {
        let Some(shown) = &self.shown else { return };
        let flagged = shown.output.needs_review == Some(true) && shown.chosen == 0;
        if flagged && shown.edited.is_none() && !self.confirm_save {
            self.confirm_save = true;
            return;
        }
        self.confirm_save = false;
        self.save_caption(shared);
    }

    /// Writes the caption taken beside the photo as `<photo>.txt` (atomically; an existing
    /// file is left alone unless `overwrite_sidecar`), and says what happened on the status line.
    pub fn save_caption(&mut self, shared: &mut Shared) {
        let Some(shown) = &self.shown else { return };
        let Some(path) = shown.path.clone() else {
            shared
                .status
                .warn("a pasted image has no file to save its caption beside; use Copy caption");
            return;
        };
        let row = captioner::export::ExportRow::new(
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path.clone(),
            shown.caption().to_string(),
            if shown.chosen > 0 || shown.edited.is_some() {
                captioner::export::CaptionSource::Edited
            } else {
                captioner::export::CaptionSource::Machine
            },
        );
        let report = captioner::export::write_sidecars(
            &[row],
            if self.overwrite_sidecar {
                captioner::export::Existing::Overwrite
            } else {
                captioner::export::Existing::Skip
            },
        );
        let target = captioner::sidecar::sidecar_path(&path);
        if let Some(failure) = report.failed.first() {
            shared
                .status
                .error(format!("cannot save the caption: {failure}"));
        } else if report.skipped > 0 {
            shared.status.warn(format!(
                "{} exists and was left alone; tick \"overwrite\" to replace it",
                target.display()
            ));
        } else if shown.output.needs_review == Some(true) && shown.edited.is_none() {
            shared.status.warn(format!(
                "caption saved to {}; it was flagged for review",
                target.display()
            ));
        } else {
            shared
                .status
                .info(format!("caption saved to {}", target.display()));
        }
    }

    /// Asks the worker for the chosen model and the list of trained ones, once.
    pub fn ensure_model(&mut self, shared: &mut Shared) {
        if self.model_requested {
            return;
        }
        self.model_requested = true;
        shared.send(Command::ListModels);
        shared.send(Command::LoadModel(self.model.clone()));
    }

    /// Captions an image with the chosen model.
    pub fn caption(&mut self, input: ImageInput, shared: &mut Shared) {
        self.ensure_model(shared);
        if let ImageInput::File(p) = &input {
            self.last_dir = p.parent().map(PathBuf::from);
        }
        self.last_input = Some(input.clone());
        self.captioned_with = self.start_with.trim().to_string();
        if shared.send(Command::Caption {
            input,
            beam: self.beam.max(1),
            start_with: self.captioned_with.clone(),
        }) {
            self.busy = true;
            self.error = None;
        }
    }

    /// Switches to another model.
    pub fn choose_model(&mut self, choice: ModelChoice, shared: &mut Shared) {
        self.model = choice.clone();
        self.model_info = None;
        self.model_requested = true;
        if shared.send(Command::LoadModel(choice)) {
            // Caption the image on show again with the new model.
            if let Some(input) = self.last_input.clone() {
                self.caption(input, shared);
            }
        }
    }

    pub fn poll(&mut self, shared: &mut Shared) {
        match tasks::take_ready(&mut self.dialog) {
            Some(Ok(Some(path))) => self.caption(ImageInput::File(path), shared),
            Some(Ok(None)) => {}
            Some(Err(e)) => shared.status.error(e),
            None => {}
        }
    }

    pub fn on_event(&mut self, event: Event, shared: &mut Shared) {
        match event {
            Event::Captioned {
                source,
                output,
                preview,
            } => {
                self.busy = false;
                self.error = None;
                let texture = preview.as_ref().map(|img| {
                    shared.ctx.load_texture(
                        "caption-preview",
                        egui::ColorImage::clone(img),
                        egui::TextureOptions::LINEAR,
                    )
                });
                shared.status.info(format!(
                    "{}: \"{}\" ({:.0} ms)",
                    source, output.text, output.millis
                ));
                let path = match &self.last_input {
                    Some(ImageInput::File(p)) if p.display().to_string() == source => {
                        Some(p.clone())
                    }
                    _ => None,
                };
                self.edit_buffer = None;
                self.confirm_save = false;
                self.shown = Some(Shown {
                    source,
                    output,
                    path,
                    chosen: 0,
                    edited: None,
                    texture,
                    preview,
                    focus_word: None,
                    hover_word: None,
                    overlay: None,
                    thumbs: Vec::new(),
                });
            }
            Event::ModelLoaded {
                choice,
                description,
                seconds,
            } => {
                if choice == self.model {
                    self.model_info = Some(description.clone());
                }
                shared
                    .status
                    .info(format!("model loaded in {seconds:.1} s: {description}"));
            }
            Event::ModelsListed(models) => self.models = models,
            Event::Failed { job, error } => {
                let message = error.report();
                self.busy = false;
                if job == captioner::worker::Job::LoadModel {
                    self.model_info = Some(format!("not loaded: {message}"));
                }
                shared.status.error(format!("{job} failed: {message}"));
                self.error = Some(message);
            }
            _ => {}
        }
    }

    /// Ctrl+V: pasted pixels, or a pasted path to an image file.
    pub fn handle_paste(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let typing = ctx.memory(|m| m.focused().is_some());
        let pasted: Vec<ImageInput> = ctx.input(|i| {
            i.events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::PasteImage(img) => Some(ImageInput::Pasted(Arc::clone(img))),
                    egui::Event::Paste(text) if !typing => pasted_path(text).map(ImageInput::File),
                    _ => None,
                })
                .collect()
        });
        if let Some(input) = pasted.into_iter().last() {
            self.caption(input, shared);
        }
    }

    /// Opens a file dialog for a photo, or asks for a typed path where none can open.
    fn open_dialog(&mut self, shared: &mut Shared) {
        let service = self
            .dialog_service
            .get_or_insert_with(tasks::dialog_service)
            .clone();
        if let Err(why) = service {
            shared.status.warn(format!("{why}; type the path instead"));
            let text = self
                .last_dir
                .as_ref()
                .map(|d| format!("{}/", d.display()))
                .unwrap_or_default();
            self.typed_path = Some(TypedPathPrompt::new("Open a photo", why, text));
            return;
        }
        match tasks::open_dialog(&shared.ctx, Dialog::PickImage, self.last_dir.as_deref()) {
            Ok(p) => self.dialog = Some(p),
            Err(e) => shared.status.error(e),
        }
    }

    /// The typed-path prompt, and the photo it names once OK'd.
    fn typed_path_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let Some(t) = &mut self.typed_path else {
            return;
        };
        match t.show(ui.ctx(), "caption_typed_path") {
            Some(true) => {
                let path = PathBuf::from(t.text.trim());
                // The prompt stays open: the keyboard goes back to the path box.
                t.focus = true;
                if !path.is_file() {
                    t.problem = Some(format!("{} is not a file.", path.display()));
                } else if !captioner::dataset::has_image_extension(&path) {
                    t.problem = Some(format!(
                        "{} is not a photo (JPEG, PNG, ...).",
                        path.display()
                    ));
                } else {
                    self.typed_path = None;
                    self.caption(ImageInput::File(path), shared);
                }
            }
            Some(false) => self.typed_path = None,
            None => {}
        }
    }

    pub fn panel_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        self.ensure_model(shared);
        self.typed_path_ui(ui, shared);
        self.toolbar_ui(ui, shared);
        ui.separator();
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        match &self.shown {
            None => self.empty_ui(ui, shared),
            Some(_) => self.result_ui(ui, shared),
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        // Wraps onto more lines in a narrow window rather than running off its edge.
        ui.horizontal_wrapped(|ui| {
            if ui
                .add_enabled(self.dialog.is_none(), egui::Button::new("Open image…"))
                .clicked()
            {
                self.open_dialog(shared);
            }
            ui.weak("or drop a photo, or paste (Ctrl+V) a photo or its path");
            ui.separator();
            let label = ui.label("Beam");
            let beam = ui
                .add(egui::DragValue::new(&mut self.beam).range(1..=10))
                .labelled_by(label.id)
                .on_hover_text("1 = greedy decoding; more = beam search, with alternatives");
            let beam_set = beam.drag_stopped() || (beam.changed() && !beam.dragged());
            if let Some(input) = self.last_input.clone().filter(|_| beam_set) {
                self.caption(input, shared);
            }
            ui.separator();
            let label = ui.label("Start with");
            let start = ui
                .add(
                    egui::TextEdit::singleline(&mut self.start_with)
                        .hint_text("(model's choice)")
                        .desired_width(140.0),
                )
                .labelled_by(label.id)
                .on_hover_text(
                    "The caption starts with these words and the model goes on from them \
                     (\"a cat\" -> \"a cat sitting on a windowsill\"); empty: the model \
                     chooses every word. Press Enter to caption the photo again.",
                );
            let start_set = start.lost_focus() && self.start_with.trim() != self.captioned_with;
            if let Some(input) = self.last_input.clone().filter(|_| start_set) {
                self.caption(input, shared);
            }
            ui.separator();
            let label = ui.label("Model");
            let mut chosen = None;
            let width = (ui.available_width() - 40.0).clamp(160.0, 260.0);
            egui::ComboBox::from_id_salt("model_choice")
                .selected_text(self.model.display_name(&self.models))
                .width(width)
                .truncate()
                .show_ui(ui, |ui| {
                    if ui
                        .selectable_label(
                            self.model == ModelChoice::Default,
                            ModelChoice::Default.display_name(&self.models),
                        )
                        .clicked()
                    {
                        chosen = Some(ModelChoice::Default);
                    }
                    for m in self.models.iter().filter(|m| !m.shipped) {
                        let choice = m.choice();
                        if ui
                            .selectable_label(self.model == choice, m.label())
                            .on_hover_text(format!("{}\n{}", m.folder, m.description))
                            .clicked()
                        {
                            chosen = Some(choice);
                        }
                    }
                    if ui.button("Refresh list").clicked() {
                        shared.send(Command::ListModels);
                    }
                })
                .response
                .labelled_by(label.id);
            if let Some(choice) = chosen.filter(|c| *c != self.model) {
                self.choose_model(choice, shared);
            }
            if self.busy {
                ui.spinner();
            }
        });
        // The loaded model in words, on a line of its own, cut to the window's width.
        match &self.model_info {
            Some(info) => {
                ui.add(egui::Label::new(egui::RichText::new(info).weak()).truncate())
                    .on_hover_text(info);
            }
            None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.weak("loading model…");
                });
            }
        }
    }

    fn empty_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let size = ui.available_size();
        let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click());
        let stroke = egui::Stroke::new(2.0, ui.visuals().weak_text_color());
        ui.painter()
            .rect_stroke(rect.shrink(16.0), 12.0, stroke, egui::StrokeKind::Inside);
        let text = if self.busy {
            "Writing a caption…"
        } else {
            "Drop a photo here (or anywhere on the window),\nclick to open one, or paste a photo or its path with Ctrl+V."
        };
        ui.painter().text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            text,
            egui::FontId::proportional(20.0),
            ui.visuals().weak_text_color(),
        );
        if response.clicked() && self.dialog.is_none() {
            self.open_dialog(shared);
        }
    }

    fn result_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        if let Some(shown) = &mut self.shown {
            shown.prepare_attention(ui.ctx());
        }
        let Some(shown) = &self.shown else { return };
        let mut action = None;
        let mut hovered = None;
        let avail = ui.available_size();
        // Side by side when there is room for a caption column of at least 320 points beside
        // a useful photo; else the photo above (at most 45% of the height) and the caption below.
        let side_by_side = avail.x >= 700.0;
        let has_maps = shown.output.attention.is_some() && shown.chosen == 0;
        // Room under the photo for the row of per-word maps and the colour scale.
        let maps_h = if has_maps { 110.0 } else { 0.0 };
        let image_ui = |ui: &mut egui::Ui, max: egui::Vec2| -> (Option<Action>, Option<usize>) {
            let mut out = (None, None);
            let texture = match &shown.overlay {
                Some((_, t)) => Some(t),
                None => shown.texture.as_ref(),
            };
            if let Some(texture) = texture {
                // Fills the space it has (up to twice the preview's size), keeping its shape.
                let size = texture.size_vec2();
                let max = egui::vec2(max.x, (max.y - maps_h).max(120.0));
                let scale = (max.x / size.x.max(1.0))
                    .min(max.y / size.y.max(1.0))
                    .min(2.0);
                let alt = match shown.overlay_word().and_then(|w| shown.output.words.get(w)) {
                    Some(w) => format!(
                        "The photo, showing where the model looked for \"{}\"",
                        w.word
                    ),
                    None => "The photo".to_string(),
                };
                ui.add(
                    egui::Image::new(texture)
                        .fit_to_exact_size(size * scale)
                        .corner_radius(6.0)
                        .alt_text(alt),
                );
            }
            if has_maps {
                out = attention_row_ui(ui, shown);
            }
            out
        };
        if side_by_side {
            let image_w = (avail.x * 0.5).min(avail.x - 340.0).max(200.0);
            ui.horizontal_top(|ui| {
                let (a, h) = ui
                    .allocate_ui_with_layout(
                        egui::vec2(image_w, avail.y),
                        egui::Layout::top_down(egui::Align::Center),
                        |ui| image_ui(ui, egui::vec2(image_w, avail.y - 8.0)),
                    )
                    .inner;
                (action, hovered) = (a, h);
                ui.separator();
                ui.vertical(|ui| {
                    egui::ScrollArea::vertical()
                        .id_salt("caption-details")
                        .show(ui, |ui| {
                            let (a, h) = caption_details_ui(
                                ui,
                                shown,
                                &mut self.overwrite_sidecar,
                                &mut self.edit_buffer,
                                self.confirm_save,
                            );
                            action = action.take().or(a);
                            hovered = hovered.or(h);
                        });
                });
            });
        } else {
            egui::ScrollArea::vertical()
                .id_salt("caption-details")
                .show(ui, |ui| {
                    let (a, h) = ui
                        .vertical_centered(|ui| {
                            image_ui(
                                ui,
                                egui::vec2(avail.x, (avail.y * 0.45).max(160.0) + maps_h),
                            )
                        })
                        .inner;
                    (action, hovered) = (a, h);
                    let (a, h) = caption_details_ui(
                        ui,
                        shown,
                        &mut self.overwrite_sidecar,
                        &mut self.edit_buffer,
                        self.confirm_save,
                    );
                    action = action.take().or(a);
                    hovered = hovered.or(h);
                });
        }
        if let Some(shown) = &mut self.shown
            && shown.hover_word != hovered
        {
            shown.hover_word = hovered;
            ui.ctx().request_repaint();
        }
        match action {
            Some(Action::Choose(i)) => self.choose_alternative(i),
            Some(Action::Save) => self.request_save(shared),
            Some(Action::CancelSave) => self.confirm_save = false,
            Some(Action::Focus(w)) => self.focus_word(w),
            Some(Action::Edit) => {
                self.edit_buffer = self.shown.as_ref().map(|s| s.caption().to_string());
            }
            Some(Action::Edited(text)) => {
                if let Some(shown) = &mut self.shown {
                    let text = text.trim().to_string();
                    shown.edited = (text != shown.model_caption()).then_some(text);
                }
            }
            Some(Action::DoneEditing) => self.edit_buffer = None,
            None => {}
        }
    }

    /// Shows word `word`'s attention map over the photo until another is chosen (`None`: the
    /// plain photo).
    pub fn focus_word(&mut self, word: Option<usize>) {
        if let Some(shown) = &mut self.shown {
            shown.focus_word = word;
        }
    }
}

/// Under the photo: one small map per word (click to keep it on the photo) and the colour
/// scale. Returns a click and the word under the pointer.
fn attention_row_ui(ui: &mut egui::Ui, shown: &Shown) -> (Option<Action>, Option<usize>) {
    let mut action = None;
    let mut hovered = None;
    ui.add_space(4.0);
    // The maps go onto more rows in a narrow column (nothing is cut off or hidden): each in a
    // cell of the same width, its word cut with "…" when longer.
    const CELL: egui::Vec2 = egui::vec2(50.0, 58.0);
    let gap = ui.spacing().item_spacing.x;
    let per_row = (((ui.available_width() + gap) / (CELL.x + gap)).floor() as usize).max(1);
    let items: Vec<(
        usize,
        (&egui::TextureHandle, &captioner::pipeline::ScoredWord),
    )> = shown
        .thumbs
        .iter()
        .zip(&shown.output.words)
        .enumerate()
        .collect();
    for row in items.chunks(per_row) {
        ui.horizontal(|ui| {
            for &(i, (thumb, w)) in row {
                let selected = shown.focus_word == Some(i);
                let r = ui
                    .allocate_ui_with_layout(
                        CELL,
                        egui::Layout::top_down(egui::Align::Center),
                        |ui| {
                            ui.set_width(CELL.x);
                            let img = ui.add(
                                egui::Image::new(thumb)
                                    .fit_to_exact_size(egui::vec2(40.0, 40.0))
                                    .corner_radius(3.0)
                                    .sense(egui::Sense::click())
                                    .alt_text(format!("attention map of \"{}\"", w.word)),
                            );
                            let text = egui::RichText::new(&w.word).small();
                            ui.add(
                                egui::Label::new(if selected { text.strong() } else { text })
                                    .truncate(),
                            );
                            img
                        },
                    )
                    .inner;
                if selected {
                    ui.painter().rect_stroke(
                        r.rect.expand(1.5),
                        3.0,
                        egui::Stroke::new(2.0, ui.visuals().selection.stroke.color),
                        egui::StrokeKind::Outside,
                    );
                }
                if r.hovered() {
                    hovered = Some(i);
                }
                if r.clicked() {
                    action = Some(Action::Focus((!selected).then_some(i)));
                }
            }
        });
    }
    ui.horizontal(|ui| {
        ui.small("less attention");
        let (rect, _) = ui.allocate_exact_size(egui::vec2(120.0, 10.0), egui::Sense::hover());
        let steps = 24;
        for k in 0..steps {
            let c = captioner::attention_view::color(k as f32 / (steps - 1) as f32);
            let x0 = rect.left() + rect.width() * k as f32 / steps as f32;
            let x1 = rect.left() + rect.width() * (k + 1) as f32 / steps as f32;
            ui.painter().rect_filled(
                egui::Rect::from_min_max(egui::pos2(x0, rect.top()), egui::pos2(x1, rect.bottom())),
                0.0,
                egui::Color32::from_rgb(c[0], c[1], c[2]),
            );
        }
        ui.small("more");
    });
    (action, hovered)
}

/// What the caption's details asked for.
enum Action {
    Choose(usize),
    /// "Save caption" (or "Save anyway" when asked).
    Save,
    /// "Cancel" of the question before saving a caption flagged for review.
    CancelSave,
    /// "Edit caption": the caption in a text box.
    Edit,
    /// The caption's text box now holds this.
    Edited(String),
    /// "Done" editing.
    DoneEditing,
    /// Keep this word's attention map on the photo (`None`: none).
    Focus(Option<usize>),
}

/// The caption, its figures and alternatives. Returns what was asked for and the caption word
/// under the pointer (for its attention map).
fn caption_details_ui(
    ui: &mut egui::Ui,
    shown: &Shown,
    overwrite: &mut bool,
    edit_buffer: &mut Option<String>,
    confirm_save: bool,
) -> (Option<Action>, Option<usize>) {
    let mut action = None;
    let mut hovered = None;
    let has_maps = shown.output.attention.is_some();
    let out = &shown.output;
    ui.add(egui::Label::new(egui::RichText::new(&shown.source).weak().small()).truncate());
    ui.add_space(6.0);
    if out.needs_review == Some(true) {
        let warning = out
            .review_reason
            .map(|r| r.warning())
            .unwrap_or("This caption is probably wrong; check it before you use it.");
        egui::Frame::new()
            .fill(egui::Color32::from_rgb(90, 40, 20))
            .corner_radius(4.0)
            .inner_margin(8.0)
            .show(ui, |ui| {
                ui.label(
                    egui::RichText::new(format!("Needs review: {warning}"))
                        .color(egui::Color32::from_rgb(255, 210, 160))
                        .strong(),
                );
                if let Some(detail) = &out.review_detail {
                    ui.label(
                        egui::RichText::new(detail).color(egui::Color32::from_rgb(255, 210, 160)),
                    );
                }
            });
        ui.add_space(6.0);
    }
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 6.0;
        if let Some(buffer) = edit_buffer {
            let label = ui.label("Caption text");
            let r = ui
                .add(
                    egui::TextEdit::multiline(buffer)
                        .desired_rows(2)
                        .desired_width(ui.available_width().min(520.0))
                        .font(egui::FontId::proportional(20.0)),
                )
                .labelled_by(label.id);
            if r.changed() {
                action = Some(Action::Edited(buffer.clone()));
            }
            if ui.button("Done").clicked() {
                action = Some(Action::DoneEditing);
            }
        } else if shown.edited.is_some() {
            ui.label(egui::RichText::new(shown.caption()).size(24.0));
        } else if shown.chosen == 0 && !out.words.is_empty() {
            // Each word coloured by the model's probability for it, with the figure on hover.
            for (i, w) in out.words.iter().enumerate() {
                let text = egui::RichText::new(&w.word)
                    .size(24.0)
                    .color(confidence_color(w.probability));
                // How well the photo supports the word (content words of grounded
                // captions), on its own line of the hover text.
                let grounding = grounding_of(&out.grounding, i);
                let support = grounding
                    .map(|g| format!("\n{}", grounding_hover(g)))
                    .unwrap_or_default();
                let r = if has_maps {
                    let text = if shown.focus_word == Some(i) {
                        text.underline()
                    } else {
                        text
                    };
                    hover_above(
                        ui.add(egui::Label::new(text).sense(egui::Sense::click())),
                        format!(
                            "p = {:.3}; the photo shows where the model looked for this word \
                             (click to keep it){support}",
                            w.probability
                        ),
                    )
                } else {
                    hover_above(ui.label(text), format!("p = {:.3}{support}", w.probability))
                };
                if grounding.is_some_and(|g| g.weak) {
                    paint_doubt(ui.painter(), r.rect, ui.visuals().warn_fg_color);
                }
                if has_maps && r.hovered() {
                    hovered = Some(i);
                }
                if has_maps && r.clicked() {
                    action = Some(Action::Focus((shown.focus_word != Some(i)).then_some(i)));
                }
            }
        } else {
            ui.label(egui::RichText::new(shown.caption()).size(24.0));
        }
    });
    if shown.edited.is_some() {
        ui.label(
            egui::RichText::new(
                "Edited by you: Copy and Save take your text; the figures below are the model's caption's.",
            )
            .small()
            .color(ui.visuals().warn_fg_color),
        );
    } else if shown.chosen == 0 {
        grounding_notes_ui(ui, out);
    }
    if confirm_save {
        egui::Frame::new()
            .fill(egui::Color32::from_rgb(90, 40, 20))
            .corner_radius(4.0)
            .inner_margin(8.0)
            .show(ui, |ui| {
                ui.label(
                    egui::RichText::new(
                        "This caption is flagged for review (see the warning above). Save it anyway?",
                    )
                    .color(egui::Color32::from_rgb(255, 210, 160))
                    .strong(),
                );
                ui.horizontal(|ui| {
                    if ui.button("Save anyway").clicked() {
                        action = Some(Action::Save);
                    }
                    if ui.button("Cancel").clicked() {
                        action = Some(Action::CancelSave);
                    }
                });
            });
    }
    ui.add_space(4.0);
    ui.horizontal_wrapped(|ui| {
        if ui.button("Copy caption").clicked() {
            ui.ctx().copy_text(shown.caption().to_string());
        }
        if edit_buffer.is_none()
            && ui
                .button("Edit caption")
                .on_hover_text("Change the caption's words before you copy or save it")
                .clicked()
        {
            action = Some(Action::Edit);
        }
        let save = ui
            .add_enabled(shown.path.is_some(), egui::Button::new("Save caption"))
            .on_hover_text(match &shown.path {
                Some(p) => format!(
                    "Write the caption to {} (beside the photo)",
                    captioner::sidecar::sidecar_path(p).display()
                ),
                None => "A pasted image has no file to save beside".to_string(),
            })
            .on_disabled_hover_text("A pasted image has no file to save beside");
        if save.clicked() {
            action = Some(Action::Save);
        }
        ui.checkbox(overwrite, "overwrite")
            .on_hover_text("Replace an existing .txt beside the photo (else it is left alone)");
        if shown.chosen == 0 {
            match out.confidence {
                Some(c) => {
                    let about = "How likely the caption is acceptable, calibrated on the model's \
                         dev photos from its word probabilities, how familiar the photo looks, \
                         and how well it agrees with similar training photos and the image classes";
                    if out.confidence_overruled() {
                        ui.weak(format!("confidence {:.0}% (see the warning)", c * 100.0))
                            .on_hover_text(format!(
                                "{about}. It was fitted on photos like the model's training \
                                 photos and does not know what the warning above says: trust \
                                 the warning."
                            ));
                    } else {
                        ui.label(format!("confidence {:.0}%", c * 100.0))
                            .on_hover_text(about);
                    }
                }
                None => {
                    ui.weak("no calibrated confidence").on_hover_text(
                        "This model has not been calibrated (`captioner calibrate DATASET \
                         --model MODEL`); only its word probabilities are known",
                    );
                }
            }
            ui.weak(format!(
                "word probability {:.0}% (geometric mean) · {:.0} ms",
                out.word_probability_geomean() * 100.0,
                out.millis
            ));
            if let Some(f) = out.familiarity {
                ui.weak(format!("familiarity {:.0}%", f * 100.0))
                    .on_hover_text(
                        "How much the photo looks like the photos the model learned from \
                     (the share of its dev photos that look less familiar)",
                    );
            }
        }
    });
    if !out.tags.is_empty() {
        ui.horizontal_wrapped(|ui| {
            ui.weak("Tags:");
            ui.label(out.tags.join(", "));
        });
    }
    if shown.chosen == 0 && !out.words.is_empty() {
        ui.add_space(4.0);
        ui.horizontal_wrapped(|ui| {
            ui.weak("word probability:");
            for (p, label) in [
                (0.9, "high"),
                (0.6, "medium"),
                (0.3, "low"),
                (0.05, "very low"),
            ] {
                ui.label(
                    egui::RichText::new(label)
                        .small()
                        .color(confidence_color(p)),
                );
            }
        });
    }
    if !has_maps && shown.chosen == 0 && !out.words.is_empty() {
        ui.weak(
            "No attention map: this model sees the photo as one pooled vector, so it cannot \
                 show where it looked for each word (attention models can).",
        );
    } else if has_maps && shown.chosen == 0 {
        ui.weak(
            "Point at a word (or its small map under the photo) to see where the model \
                 looked for it; click to keep it.",
        );
    }
    if out.alternatives.len() > 1 {
        ui.add_space(10.0);
        ui.strong("Other captions the beam found")
            .on_hover_text("Click one to take it as the caption");
        let scores: Vec<f32> = out.alternatives.iter().map(|a| a.score).collect();
        let shares = beam_shares(&scores);
        // One row per caption, the text wrapping within the panel (a narrow window cuts
        // nothing off).
        ui.weak("share of the beam").on_hover_text(
            "How the model splits its per-word likelihood among these captions. It compares \
             them with each other; how likely the caption is right is the confidence above.",
        );
        for (i, (alt, pct)) in out.alternatives.iter().zip(&shares).enumerate() {
            ui.horizontal(|ui| {
                ui.add_sized(
                    egui::vec2(36.0, 18.0),
                    egui::Label::new(format!("{pct:.0}%")),
                )
                .on_hover_text(format!(
                    "This caption's share of the beam's per-word likelihood (all the \
                         shares make 100%); not the confidence. Mean log-probability per \
                         word: {:.3}",
                    alt.score
                ));
                if ui
                    .add(egui::Button::selectable(shown.chosen == i, alt.text.as_str()).wrap())
                    .on_hover_text("Click to take this as the caption")
                    .clicked()
                {
                    action = Some(Action::Choose(i));
                }
            });
        }
    }
    (action, hovered)
}

/// Under the caption: where it came from when not from the decoder, why it is not grounded,
/// and what the dotted underline means when a word has it.
fn grounding_notes_ui(ui: &mut egui::Ui, out: &CaptionOutput) {
    if let Some(note) = &out.grounding_note {
        let text = egui::RichText::new(note).small();
        if out.source == CaptionSource::Classifier {
            ui.label(text.color(ui.visuals().warn_fg_color));
        } else {
            ui.weak(text);
        }
    }
    if out.grounding.iter().any(|g| g.weak) {
        ui.weak(egui::RichText::new(DOUBT_LEGEND).small());
    }
}

/// Where a caption word's hover text goes: above the word, else below it.
const ABOVE_FIRST: [egui::RectAlign; 2] =
    [egui::RectAlign::TOP_START, egui::RectAlign::BOTTOM_START];

/// A caption word's hover text, shown above the word: below it, the tooltip covered the Copy
/// and Save buttons under the caption (issue 29, point 11). Also its accessible description,
/// as `on_hover_text` gives.
fn hover_above(r: egui::Response, text: String) -> egui::Response {
    if r.ctx.has_accesskit_node(r.id) {
        r.ctx.accesskit_node_builder(r.id, |node| {
            if node.description().is_none() {
                node.set_description(text.clone());
            }
        });
    }
    let mut tip = egui::Tooltip::for_enabled(&r);
    tip.popup = tip
        .popup
        .align(egui::RectAlign::TOP_START)
        .align_alternatives(&ABOVE_FIRST);
    tip.show(|ui| {
        ui.set_max_width(ui.spacing().tooltip_width);
        ui.label(text);
    });
    r
}

/// A pasted text that names an existing image file (as file managers copy it), if it does.
fn pasted_path(text: &str) -> Option<PathBuf> {
    let line = text.lines().next()?.trim();
    let line = line.strip_prefix("file://").unwrap_or(line);
    let path = PathBuf::from(percent_decode(line));
    (captioner::dataset::has_image_extension(&path) && path.is_file()).then_some(path)
}

/// Decodes `%20`-style escapes in a file URI.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b/c.jpg"), "/a b/c.jpg");
        assert_eq!(percent_decode("/100%"), "/100%");
        assert_eq!(percent_decode("/x%2"), "/x%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn pasted_path_needs_an_existing_image() {
        let dog = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/sidecar_mini/dog.jpg"
        );
        assert_eq!(
            pasted_path(&format!("file://{dog}\n")),
            Some(PathBuf::from(dog))
        );
        assert_eq!(pasted_path("hello"), None);
        assert_eq!(pasted_path("/no/such/file.jpg"), None);
    }
}
