//! The toolbar, one function per row: the folder; the model, decoding and run; saving,
//! history, exports and training; search, filter, sort and find-and-replace.

use std::path::PathBuf;

use super::dialogs::DialogFor;
use super::grid::{Filter, Sort};
use super::session::Entry;
use super::settings::{LENGTH_ALPHA, MAX_BEAM, MAX_BLOCK_NGRAM, MAX_WORDS};
use super::{BatchPanel, ExportKind, TrainRequest};
use crate::Shared;
use captioner::export::{Existing, MetadataTarget};
use captioner::pipeline::Grounding;
use captioner::worker::ModelChoice;

impl BatchPanel {
    pub(super) fn toolbar_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.horizontal_wrapped(|ui| self.folder_row(ui, shared));
        ui.horizontal_wrapped(|ui| self.run_row(ui, shared));
        ui.horizontal_wrapped(|ui| self.files_row(ui, shared));
        ui.horizontal_wrapped(|ui| self.search_row(ui, shared));
    }

    /// Folder, Browse…, Open, Recent, Rescan.
    fn folder_row(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let busy = self.running.is_some();
        let label = ui.label("Folder");
        let width = (ui.available_width() - 330.0).clamp(160.0, 480.0);
        let edit = ui
            .add_enabled(
                !busy,
                egui::TextEdit::singleline(&mut self.settings.folder)
                    .hint_text("a folder of photos")
                    .desired_width(width),
            )
            .labelled_by(label.id);
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui
            .add_enabled(!busy && !self.dialog_open(), egui::Button::new("Browse…"))
            .on_hover_text("choose a folder")
            .clicked()
        {
            self.open_dialog(DialogFor::Folder, shared);
        }
        let can_open = !busy && !self.settings.folder.trim().is_empty();
        if ui
            .add_enabled(can_open, egui::Button::new("Open"))
            .clicked()
            || (enter && can_open)
        {
            let dir = PathBuf::from(self.settings.folder.trim());
            self.open_folder(dir, shared);
        }
        ui.add_enabled_ui(!busy && !self.settings.recent.is_empty(), |ui| {
            ui.menu_button("Recent", |ui| self.recent_menu(ui, shared));
        });
        let has_root = self.session.as_ref().is_some_and(|s| s.root.is_some());
        if ui
            .add_enabled(has_root && !busy, egui::Button::new("Rescan"))
            .on_hover_text("look for new, vanished and changed photos")
            .clicked()
        {
            self.rescan(shared);
        }
    }

    fn recent_menu(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        for r in self.settings.recent.clone() {
            if ui.button(&r).clicked() {
                self.open_folder(PathBuf::from(r), shared);
                ui.close();
            }
        }
    }

    /// Model, Beam, Words min and max, Decoding, Prefix, Suffix, and Caption / Replace all…
    /// (Cancel while a run goes on).
    fn run_row(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let busy = self.running.is_some();
        let label = ui.label("Model");
        ui.add_enabled_ui(!busy, |ui| self.model_menu(ui, label.id));
        self.decoding_ui(ui, busy);
        self.affixes_ui(ui, busy);
        if busy {
            if ui.button("Cancel").clicked() {
                self.cancel();
            }
        } else {
            self.run_buttons(ui, shared);
        }
    }

    /// The Batch panel's model (the Caption panel has its own).
    fn model_menu(&mut self, ui: &mut egui::Ui, label: egui::Id) {
        let mut chosen = None;
        let models = self.models.as_deref().unwrap_or_default();
        egui::ComboBox::from_id_salt("batch_model")
            .selected_text(self.settings.model.label())
            .show_ui(ui, |ui| {
                let current = &self.settings.model;
                let default = ModelChoice::Default;
                if ui
                    .selectable_label(*current == default, default.label())
                    .clicked()
                {
                    chosen = Some(default);
                }
                for m in models {
                    let choice = ModelChoice::Trained(m.dir.clone());
                    if ui
                        .selectable_label(*current == choice, &m.name)
                        .on_hover_text(&m.description)
                        .clicked()
                    {
                        chosen = Some(choice);
                    }
                }
            })
            .response
            .labelled_by(label)
            .on_hover_text("the Batch panel's model; the Caption panel has its own");
        if let Some(c) = chosen {
            self.settings.model = c;
        }
    }

    /// Beam, Words min and max, and the Decoding menu with the search's other options.
    fn decoding_ui(&mut self, ui: &mut egui::Ui, busy: bool) {
        let s = &mut self.settings;
        let label = ui.label("Beam");
        ui.add_enabled(!busy, egui::DragValue::new(&mut s.beam).range(1..=MAX_BEAM))
            .labelled_by(label.id)
            .on_hover_text("1 = greedy decoding; more = beam search (slower, often better)");
        let label = ui.label("Words min");
        ui.add_enabled(
            !busy,
            egui::DragValue::new(&mut s.min_len).range(0..=s.max_len),
        )
        .labelled_by(label.id)
        .on_hover_text("take the best beam caption with at least this many words");
        let label = ui.label("max");
        ui.add_enabled(
            !busy,
            egui::DragValue::new(&mut s.max_len).range(s.min_len.max(1)..=MAX_WORDS),
        )
        .labelled_by(label.id)
        .on_hover_text("longest caption in words");
        s.start_with_ui(ui, !busy);
        ui.add_enabled_ui(!busy, |ui| {
            ui.menu_button("Decoding", |ui| self.search_menu(ui))
                .response
                .on_hover_text("repeated n-gram blocking and length normalisation");
        });
    }

    /// The search options beyond beam and length, with the library's defaults a click away.
    fn search_menu(&mut self, ui: &mut egui::Ui) {
        let search = &mut self.settings.search;
        ui.label("How the beam search chooses words.");
        egui::Grid::new("batch_decoding")
            .num_columns(2)
            .show(ui, |ui| {
                let label = ui.label("Block repeated n-grams");
                ui.add(egui::DragValue::new(&mut search.block_ngram).range(0..=MAX_BLOCK_NGRAM))
                    .labelled_by(label.id)
                    .on_hover_text(
                        "no run of this many words occurs twice in a caption (0: no blocking)",
                    );
                ui.end_row();
                let label = ui.label("Length exponent");
                ui.add(
                    egui::DragValue::new(&mut search.length_alpha)
                        .range(LENGTH_ALPHA)
                        .speed(0.05)
                        .fixed_decimals(2),
                )
                .labelled_by(label.id)
                .on_hover_text(
                    "captions are ranked by log-probability / length^exponent: 0 favours short \
                     captions, 1 ranks by the mean per word",
                );
                ui.end_row();
            });
        let mut grounded = self.settings.grounding == Grounding::On;
        if ui
            .checkbox(&mut grounded, "Grounded decoding")
            .on_hover_text(
                "prefer captions whose words the photo supports, and say less (from the image \
                 classifier) rather than name what is not there; off: the plain beam search",
            )
            .changed()
        {
            self.settings.grounding = if grounded {
                Grounding::On
            } else {
                Grounding::Off
            };
        }
        if ui
            .button("Library defaults")
            .on_hover_text("the defaults of `captioner caption` and `captioner batch`")
            .clicked()
        {
            self.settings.reset_search();
        }
    }

    /// Prefix and Suffix around every new machine caption.
    fn affixes_ui(&mut self, ui: &mut egui::Ui, busy: bool) {
        let label = ui.label("Prefix");
        ui.add_enabled(
            !busy,
            egui::TextEdit::singleline(&mut self.settings.prefix)
                .hint_text("trigger word")
                .desired_width(70.0),
        )
        .labelled_by(label.id)
        .on_hover_text("put before every new machine caption (and its alternatives)");
        let label = ui.label("Suffix");
        ui.add_enabled(
            !busy,
            egui::TextEdit::singleline(&mut self.settings.suffix).desired_width(70.0),
        )
        .labelled_by(label.id)
        .on_hover_text("put after every new machine caption (and its alternatives)");
    }

    /// "Caption N" (photos without a caption) and "Replace all…".
    fn run_buttons(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let (todo, replace) = self.counts();
        let has_items = !self.entries().is_empty();
        if ui
            .add_enabled(todo > 0, egui::Button::new(format!("Caption {todo}")))
            .on_hover_text("captions the photos without a caption; never replaces one")
            .clicked()
        {
            self.caption_all(false, shared);
        }
        if ui
            .add_enabled(has_items, egui::Button::new("Replace all…"))
            .on_hover_text(format!(
                "captions every photo again, replacing {replace} captions (asks first; undoable)"
            ))
            .clicked()
        {
            self.caption_all(true, shared);
        }
    }

    /// Size, Save, Undo, Redo, the exports and "Train on this folder…".
    fn files_row(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        // First in its row: a slider does not wrap to the next line as buttons do.
        let label = ui.label("Size");
        ui.add(egui::Slider::new(&mut self.settings.thumb_side, 72.0..=256.0).show_value(false))
            .labelled_by(label.id)
            .on_hover_text("thumbnail size");
        let busy = self.running.is_some();
        let unsaved = self.unsaved();
        if ui
            .add_enabled(
                !busy && unsaved > 0,
                egui::Button::new(format!("Save {unsaved}")),
            )
            .on_hover_text("write the changed captions to their .txt files (Ctrl+S)")
            .clicked()
        {
            self.save(shared);
        }
        self.history_buttons(ui, shared);
        let has_captions = self.entries().iter().any(Entry::has_caption);
        let can_export = !busy && self.export.is_none() && has_captions;
        if ui
            .add_enabled(can_export, egui::Button::new("Export CSV…"))
            .clicked()
        {
            self.open_dialog(DialogFor::Export(ExportKind::Csv), shared);
        }
        if ui
            .add_enabled(can_export, egui::Button::new("Export JSON…"))
            .clicked()
        {
            self.open_dialog(DialogFor::Export(ExportKind::Json), shared);
        }
        ui.add_enabled_ui(can_export, |ui| {
            ui.menu_button("Alt text", |ui| self.alt_text_menu(ui, shared));
        });
        ui.add_enabled_ui(can_export, |ui| {
            ui.menu_button("Photo metadata", |ui| self.metadata_menu(ui, shared));
        });
        self.train_button(ui, shared, can_export);
        if self.export.is_some() {
            ui.spinner();
        }
    }

    /// Undo and Redo, the next undo step named on hover.
    fn history_buttons(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let history = self.session.as_ref().map(|s| &s.history);
        let can_undo = history.is_some_and(|h| h.can_undo());
        let can_redo = history.is_some_and(|h| h.can_redo());
        let undo_hint = history
            .and_then(|h| h.next_undo())
            .map_or("Ctrl+Z".to_string(), |l| format!("undo {l} (Ctrl+Z)"));
        if ui
            .add_enabled(can_undo, egui::Button::new("Undo"))
            .on_hover_text(undo_hint)
            .clicked()
        {
            self.undo(shared);
        }
        if ui
            .add_enabled(can_redo, egui::Button::new("Redo"))
            .on_hover_text("Ctrl+Shift+Z")
            .clicked()
        {
            self.redo(shared);
        }
    }

    fn alt_text_menu(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.label("Alt text for screen readers, from the captions.");
        let items = [
            (
                "Web page (HTML)…",
                ExportKind::AltHtml,
                "one <img alt=\"caption\"> per photo",
            ),
            (
                "CSV…",
                ExportKind::AltCsv,
                "file, alt_text, confidence, tags",
            ),
            (
                "JSON…",
                ExportKind::AltJson,
                "[{file, alt_text, confidence, tags}]",
            ),
        ];
        for (label, kind, hint) in items {
            if ui.button(label).on_hover_text(hint).clicked() {
                self.open_dialog(DialogFor::Export(kind), shared);
                ui.close();
            }
        }
    }

    fn metadata_menu(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.label("Where photo managers (digiKam, Lightroom, darktable) read captions.")
            .on_hover_text("dc:description and dc:subject (tags)");
        ui.label("A photo that already has a description:");
        for e in Existing::ALL {
            ui.radio_value(&mut self.settings.existing, e, e.label());
        }
        ui.separator();
        let existing = self.settings.existing;
        let items = [
            ("Write XMP sidecars", MetadataTarget::XmpSidecar),
            ("Embed in the photos", MetadataTarget::Embedded),
        ];
        for (label, target) in items {
            if ui
                .button(format!("{label} ({})", existing.label()))
                .clicked()
            {
                self.export_metadata(target, existing, shared);
                ui.close();
            }
        }
        ui.label(
            "Embedding changes the photo files' metadata only; the image data stays \
             byte-identical.",
        );
    }

    /// "Train on this folder…": the app takes the folder (its saved captions) to the Train
    /// panel.
    fn train_button(&mut self, ui: &mut egui::Ui, shared: &mut Shared, can_export: bool) {
        let unsaved = self.unsaved();
        let saved = self.entries().iter().filter(|e| e.has_caption()).count();
        let clicked = ui
            .add_enabled(
                can_export && unsaved == 0,
                egui::Button::new("Train on this folder…"),
            )
            .on_hover_text(format!(
                "Train a caption model on this folder's {saved} saved captions (.txt \
                 files): a new model, or fine-tune {} (chosen on the Train panel)",
                self.settings.model.label()
            ))
            .on_disabled_hover_text(format!(
                "Save the {unsaved} changed captions first: training reads the .txt files"
            ))
            .clicked();
        if !clicked {
            return;
        }
        match self.session.as_ref().and_then(|s| s.root.clone()) {
            Some(folder) => {
                self.train_request = Some(TrainRequest {
                    folder,
                    model: self.settings.model.clone(),
                })
            }
            None => shared
                .status
                .warn("open a folder (not loose photos) to train on its captions"),
        }
    }

    /// Search, Show (filter), Sort, and Find … with … / Replace in N.
    fn search_row(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let busy = self.running.is_some();
        let label = ui.label("Search");
        ui.add(
            egui::TextEdit::singleline(&mut self.search)
                .hint_text("name or caption")
                .desired_width(130.0),
        )
        .labelled_by(label.id);
        let s = &mut self.settings;
        let label = ui.label("Show");
        egui::ComboBox::from_id_salt("batch_filter")
            .selected_text(s.filter.label())
            .show_ui(ui, |ui| {
                for f in Filter::ALL {
                    ui.selectable_value(&mut s.filter, f, f.label());
                }
            })
            .response
            .labelled_by(label.id);
        let label = ui.label("Sort");
        egui::ComboBox::from_id_salt("batch_sort")
            .selected_text(s.sort.label())
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut s.sort, Sort::Name, Sort::Name.label());
                ui.selectable_value(&mut s.sort, Sort::Confidence, Sort::Confidence.label())
                    .on_hover_text("least confident first");
            })
            .response
            .labelled_by(label.id);
        self.replace_ui(ui, shared, busy);
    }

    /// Find … with …, and "Replace in N" (the captions holding it).
    fn replace_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared, busy: bool) {
        let label = ui.label("Find");
        ui.add(egui::TextEdit::singleline(&mut self.find).desired_width(90.0))
            .labelled_by(label.id);
        let label = ui.label("with");
        ui.add(egui::TextEdit::singleline(&mut self.replace_with).desired_width(90.0))
            .labelled_by(label.id);
        let (captions, matches) = self
            .session
            .as_ref()
            .map_or((0, 0), |s| s.count_matches(&self.find));
        if ui
            .add_enabled(
                captions > 0 && !busy,
                egui::Button::new(format!("Replace in {captions}")),
            )
            .on_hover_text(format!(
                "{matches} matches in {captions} captions (case-sensitive; undoable)"
            ))
            .clicked()
            && let Some(s) = &mut self.session
        {
            let n = s.replace_all(&self.find, &self.replace_with);
            shared
                .status
                .info(format!("replaced in {n} captions; Ctrl+Z undoes it"));
        }
    }
}
