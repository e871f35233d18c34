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

/// Below this width the toolbar is one flow of controls, the decoding options in a menu.
const NARROW: f32 = 1000.0;

impl BatchPanel {
    pub(super) fn toolbar_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        if ui.available_width() < NARROW {
            // A small window: the controls packed into four rows, the decoding options in
            // the Decoding menu, so the photos keep most of the height.
            ui.horizontal_wrapped(|ui| {
                self.size_ui(ui);
                self.folder_row(ui, shared, true);
            });
            ui.horizontal_wrapped(|ui| {
                self.run_row(ui, shared, true);
                self.save_ui(ui, shared);
            });
            ui.horizontal_wrapped(|ui| {
                self.exports_ui(ui, shared);
                self.search_box_ui(ui);
            });
            ui.horizontal_wrapped(|ui| self.filters_ui(ui, shared));
        } else {
            ui.horizontal_wrapped(|ui| self.folder_row(ui, shared, false));
            ui.horizontal_wrapped(|ui| self.run_row(ui, shared, false));
            ui.horizontal_wrapped(|ui| {
                // First in its row: a slider does not wrap to the next line as buttons do.
                self.size_ui(ui);
                self.save_ui(ui, shared);
                self.exports_ui(ui, shared);
            });
            ui.horizontal_wrapped(|ui| {
                self.search_box_ui(ui);
                self.filters_ui(ui, shared);
            });
        }
        if !self.marked.is_empty() {
            ui.horizontal_wrapped(|ui| self.selection_row(ui, shared));
        }
    }

    /// With several photos selected: their count, Accept, Caption again, and a tag to add to
    /// or remove from all of them (each one undo step); Find and replace acts on them too.
    fn selection_row(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let busy = self.running.is_some();
        let n = self.marked.len();
        ui.strong(format!("{n} selected"))
            .on_hover_text("Ctrl-click toggles a photo, Shift-click a range, Ctrl+A all shown");
        if ui
            .add_enabled(!busy, egui::Button::new("Accept"))
            .on_hover_text("mark the selected captions as reviewed")
            .clicked()
        {
            self.accept_marked(shared);
        }
        if ui
            .add_enabled(!busy, egui::Button::new("Caption again"))
            .on_hover_text("caption the selected photos again (asks before replacing captions)")
            .clicked()
        {
            self.caption_selected(shared);
        }
        let label = ui.label("Tag");
        let r = ui
            .add_enabled(
                !busy,
                egui::TextEdit::singleline(&mut self.bulk_tag)
                    .hint_text("tag")
                    .desired_width(80.0),
            )
            .labelled_by(label.id);
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let tag = self.bulk_tag.trim().to_string();
        if ui
            .add_enabled(
                !busy && !tag.is_empty(),
                egui::Button::new("Add to selected"),
            )
            .clicked()
            || (enter && !tag.is_empty())
        {
            self.add_tag_to_marked(&tag, shared);
        }
        let mut tags: Vec<String> = Vec::new();
        for &i in &self.marked {
            for t in self
                .entries()
                .get(i)
                .map_or(&[][..], |e| e.cell.tags.as_slice())
            {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
        }
        ui.add_enabled_ui(!busy && !tags.is_empty(), |ui| {
            ui.menu_button("Remove tag", |ui| {
                for t in &tags {
                    if ui.button(t).clicked() {
                        self.remove_tag_from_marked(t, shared);
                        ui.close();
                    }
                }
            })
            .response
            .on_hover_text("remove a tag from every selected photo");
        });
        if ui
            .button("Clear selection")
            .on_hover_text("Escape")
            .clicked()
        {
            self.clear_marked();
        }
    }

    /// The folder's tags with how many photos carry each, most common first: a click filters
    /// the grid to the photos with that tag (with the other filters), a second click clears it.
    fn tags_menu(&mut self, ui: &mut egui::Ui) {
        let counts = self
            .session
            .as_ref()
            .map(|s| s.tag_counts())
            .unwrap_or_default();
        let mut chosen = None;
        ui.add_enabled_ui(!counts.is_empty(), |ui| {
            ui.menu_button("Tag list", |ui| {
                ui.label("Show only the photos with the tag:");
                egui::ScrollArea::vertical()
                    .max_height(300.0)
                    .show(ui, |ui| {
                        for (tag, n) in &counts {
                            let on = self.tag_filter.as_deref() == Some(tag.as_str());
                            if ui.selectable_label(on, format!("{tag} ({n})")).clicked() {
                                chosen = Some(tag.clone());
                                ui.close();
                            }
                        }
                    });
            })
            .response
            .on_hover_text("the folder's tags, most common first; click one to filter the grid");
        });
        if let Some(t) = chosen {
            self.toggle_tag_filter(Some(&t));
        }
        if let Some(t) = self.tag_filter.clone()
            && ui
                .button(format!("tag: {t} ×"))
                .on_hover_text("show the photos with any tag again")
                .clicked()
        {
            self.toggle_tag_filter(None);
        }
    }

    /// The thumbnail size.
    fn size_ui(&mut self, ui: &mut egui::Ui) {
        let label = ui.label("Size");
        ui.add(egui::Slider::new(&mut self.settings.thumb_side, 72.0..=256.0).show_value(false))
            .labelled_by(label.id)
            .on_hover_text("thumbnail size");
    }

    /// Folder, Browse…, Open, Recent, Rescan.
    fn folder_row(&mut self, ui: &mut egui::Ui, shared: &mut Shared, narrow: bool) {
        let busy = self.running.is_some();
        let label = ui.label("Folder");
        let width = if narrow {
            200.0
        } else {
            (ui.available_width() - 330.0).clamp(160.0, 480.0)
        };
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
            if enter {
                // The keyboard goes on to the grid, not back to the start of the window.
                self.grid.focus_selected = true;
            }
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
        let mut watching = self.is_watching();
        if ui
            .add_enabled(
                has_root || watching,
                egui::Checkbox::new(&mut watching, "Watch this folder"),
            )
            .on_hover_text(
                "while on, photos that appear in this folder or its sub-folders (copied, saved \
                 or moved in) are added to the grid and captioned once they are fully written; \
                 captions you wrote or edited are never touched, and nothing is saved until \
                 you Save",
            )
            .changed()
        {
            self.set_watching(watching, shared);
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
    /// (Cancel while a run goes on). `narrow`: Beam, Words, Prefix and Suffix are in the
    /// Decoding menu.
    fn run_row(&mut self, ui: &mut egui::Ui, shared: &mut Shared, narrow: bool) {
        let busy = self.running.is_some();
        let label = ui.label("Model");
        ui.add_enabled_ui(!busy, |ui| self.model_menu(ui, label.id));
        if narrow {
            ui.add_enabled_ui(!busy, |ui| {
                ui.menu_button("Decoding", |ui| {
                    ui.horizontal_wrapped(|ui| {
                        self.decoding_fields_ui(ui, false);
                        self.affixes_ui(ui, false);
                    });
                    ui.separator();
                    self.search_menu(ui);
                })
                .response
                .on_hover_text("beam, caption length, prefix and suffix, n-gram blocking");
            });
        } else {
            self.decoding_ui(ui, busy);
            self.affixes_ui(ui, busy);
        }
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
                        .selectable_label(*current == choice, m.label())
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
        self.decoding_fields_ui(ui, busy);
        ui.add_enabled_ui(!busy, |ui| {
            ui.menu_button("Decoding", |ui| self.search_menu(ui))
                .response
                .on_hover_text("repeated n-gram blocking and length normalisation");
        });
    }

    /// Beam, Words min and max.
    fn decoding_fields_ui(&mut self, ui: &mut egui::Ui, busy: bool) {
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

    /// Save, Undo, Redo.
    fn save_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
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
    }

    /// Whether an export can start: captions to export, no run or export going on.
    pub(super) fn can_export(&self) -> bool {
        self.running.is_none()
            && self.export.is_none()
            && self.entries().iter().any(Entry::has_caption)
    }

    /// The exports and "Train on this folder…".
    fn exports_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let can_export = self.can_export();
        if ui
            .add_enabled(can_export, egui::Button::new("Export CSV…"))
            .on_hover_text("Ctrl+E")
            .clicked()
        {
            self.open_dialog(DialogFor::Export(ExportKind::Csv), shared);
        }
        if ui
            .add_enabled(can_export, egui::Button::new("Export JSON…"))
            .on_hover_text("Ctrl+Shift+E")
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

    /// Search (name or caption).
    fn search_box_ui(&mut self, ui: &mut egui::Ui) {
        let label = ui.label("Search");
        ui.add(
            egui::TextEdit::singleline(&mut self.search)
                .hint_text("name or caption")
                .desired_width(130.0),
        )
        .labelled_by(label.id);
    }

    /// Show (filter), Sort, the tag list, and Find … with … / Replace in N.
    fn filters_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let busy = self.running.is_some();
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
        self.tags_menu(ui);
        self.replace_ui(ui, shared, busy);
    }

    /// Find … with …, and "Replace in N" (the captions holding it; only the selected photos'
    /// when several are selected).
    fn replace_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared, busy: bool) {
        let label = ui.label("Find");
        ui.add(egui::TextEdit::singleline(&mut self.find).desired_width(90.0))
            .labelled_by(label.id);
        let label = ui.label("with");
        ui.add(egui::TextEdit::singleline(&mut self.replace_with).desired_width(90.0))
            .labelled_by(label.id);
        let only = (!self.marked.is_empty()).then(|| self.marked());
        let (captions, matches) = self
            .session
            .as_ref()
            .map_or((0, 0), |s| s.count_matches_in(&self.find, only.as_deref()));
        let place = if only.is_some() { " selected" } else { "" };
        if ui
            .add_enabled(
                captions > 0 && !busy,
                egui::Button::new(format!("Replace in {captions}{place}")),
            )
            .on_hover_text(format!(
                "{matches} matches in {captions}{place} captions (case-sensitive; undoable)"
            ))
            .clicked()
            && let Some(s) = &mut self.session
        {
            let n = s.replace_in(&self.find, &self.replace_with, only.as_deref());
            shared.status.info(format!(
                "replaced in {}; Ctrl+Z undoes it",
                super::plural(n, "caption", "captions")
            ));
        }
    }
}
