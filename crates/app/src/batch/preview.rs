//! The preview beside the grid: the selected photo large, where the model looked for each
//! word, the caption's source, confidence and problems, the caption to edit, and the beam's
//! alternatives.

use super::BatchPanel;
use super::entry::{flagged_by_model, problems, source_badge};
use super::session::{CellAttention, Entry, Session, Source};
use crate::Shared;
use crate::widgets::{
    DOUBT_LEGEND, confidence_shown_color, grounding_hover, grounding_of, paint_attention,
    paint_doubt, thumbnail_ui,
};

/// What the caption editor asked for.
#[derive(Clone, Copy, Debug, Default)]
struct Editor {
    /// Accept the caption and move to the next photo.
    accept: bool,
    /// Enter was pressed in the text box: the keyboard goes back to the grid (the arrows move
    /// the selection again, F2 edits the next caption).
    from_text_box: bool,
}

impl BatchPanel {
    pub(super) fn preview_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let locked = self.running.is_some();
        let Some(i) = self.selected.filter(|&i| i < self.entries().len()) else {
            ui.weak("Select a photo (click, or use the arrow keys).");
            return;
        };
        let focus = std::mem::take(&mut self.focus_caption);
        let Some(s) = &mut self.session else { return };
        let attention_word = &mut self.attention_word;
        let mut tags = TagEditor {
            new_tag: &mut self.new_tag,
            focused: &mut self.tag_focus,
            focus: self.focus_tag.take(),
        };
        let marked = self.marked.len();
        let photo_start = &mut self.photo_start;
        let mut again = false;
        let editor = egui::ScrollArea::vertical()
            .id_salt("batch_preview_scroll")
            .auto_shrink(false)
            .show(ui, |ui| {
                photo_ui(ui, shared, &s.entries[i], attention_word);
                if marked > 1 {
                    ui.label(format!(
                        "{marked} photos selected: the buttons under the toolbar act on all \
                         of them; this one is shown."
                    ));
                }
                details_ui(ui, &s.entries[i], i, s.entries.len());
                tags_ui(ui, s, i, locked, &mut tags);
                let editor = caption_editor_ui(ui, s, i, locked, focus);
                again = start_again_ui(ui, photo_start, locked, marked);
                alternatives_ui(ui, s, i, locked);
                ui.add_space(8.0);
                ui.weak(
                    "Keys: arrows, PageUp/PageDown, Home/End move · F2 edits · Enter accepts and \
                     moves on · Esc leaves the text box · 1-9 take an alternative · Ctrl+Z / \
                     Ctrl+Shift+Z undo and redo · Ctrl+S saves · Ctrl+E / Ctrl+Shift+E export CSV / JSON · \
                     Ctrl-click, Shift-click, \
                     Ctrl+A select several photos, Esc clears · on a tag: Delete removes it, \
                     Alt+Left/Right moves it",
                );
                editor
            })
            .inner;
        if again {
            let start = self.photo_start.trim().to_string();
            let start = (!start.is_empty()).then_some(start);
            self.caption_selected_starting_with(start, shared);
        }
        if editor.accept {
            self.accept_and_next();
            if !editor.from_text_box {
                // "Accept and next" clicked: the selected photo's cell shows the focus.
                self.grid.focus_selected = true;
            }
        }
    }
}

/// The photo, and (for an attention model) its words: point at or click one to see where the
/// model looked for it over the photo.
fn photo_ui(ui: &mut egui::Ui, shared: &mut Shared, e: &Entry, attention_word: &mut Option<usize>) {
    let side = (ui.available_width() - 4.0).max(120.0);
    let side = side.min(ui.available_height() * 0.55);
    let image_rect = thumbnail_ui(ui, &mut shared.thumbs, &e.path, side);
    // Why the photo cannot be shown, in words, before anyone presses Caption.
    if let crate::thumbnails::Thumb::Failed(message) = shared.thumbs.get(&e.path) {
        let message = message.to_string();
        ui.add(egui::Label::new(
            egui::RichText::new(format!("Cannot show this photo: {message}"))
                .color(ui.visuals().error_fg_color),
        ));
    }
    let Some(att) = &e.cell.attention else { return };
    let hovered = attention_words_ui(ui, att, e.cell.source, attention_word);
    if let (Some(rect), Some(k)) = (image_rect, hovered.or(*attention_word)) {
        paint_attention(ui.painter(), rect, &att.maps, k);
    }
}

/// The caption's words, each selectable to keep its map over the photo. Returns the word under
/// the pointer.
fn attention_words_ui(
    ui: &mut egui::Ui,
    att: &CellAttention,
    source: Source,
    attention_word: &mut Option<usize>,
) -> Option<usize> {
    let mut hovered = None;
    ui.horizontal_wrapped(|ui| {
        // After an edit the maps are still those of the model's own caption: say so, as its
        // words no longer match the caption below.
        ui.weak(if source == Source::Machine {
            "Where it looked:"
        } else {
            "Where the model looked for its own caption:"
        });
        for (k, w) in att.words.iter().enumerate() {
            let on = *attention_word == Some(k);
            let r = ui
                .selectable_label(on, w)
                .on_hover_text("where the model looked for this word");
            if r.hovered() {
                hovered = Some(k);
            }
            if r.clicked() {
                *attention_word = (!on).then_some(k);
            }
        }
    });
    hovered
}

/// The photo's name and place, where its caption came from, the confidence, the review
/// warning, tags and problems.
fn details_ui(ui: &mut egui::Ui, e: &Entry, i: usize, total: usize) {
    ui.horizontal_wrapped(|ui| {
        ui.strong(&e.name)
            .on_hover_text(e.path.display().to_string());
        ui.weak(format!("{} of {total}", i + 1));
    });
    ui.horizontal_wrapped(|ui| {
        source_badge(ui, e);
        if let Some(c) = e.cell.confidence {
            confidence_ui(ui, c, flagged_by_model(e));
        }
        if e.cell.reviewed {
            ui.weak("reviewed");
        }
        if e.is_dirty() {
            ui.weak("not saved");
        }
    });
    if flagged_by_model(e) {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "Needs review: {}",
                e.cell
                    .review_note
                    .as_deref()
                    .unwrap_or("the model thinks this caption is probably wrong.")
            ),
        );
    }
    grounding_ui(ui, e);
    for problem in problems(e) {
        ui.colored_label(ui.visuals().error_fg_color, problem);
    }
}

/// The tag chips' state between frames.
struct TagEditor<'a> {
    /// The "add a tag" box.
    new_tag: &'a mut String,
    /// The chip that has the keyboard (its place and id), for the keys next frame.
    focused: &'a mut Option<(usize, egui::Id)>,
    /// Give this chip the keyboard (after it moved, or the one before it was removed).
    focus: Option<usize>,
}

/// The photo's tags as chips: × (or Delete on a focused chip) removes one, dragging a chip
/// onto another (or Alt+Left/Right on a focused one) moves it, the box adds one (Enter; commas
/// separate several). Each change is one undo step.
fn tags_ui(ui: &mut egui::Ui, s: &mut Session, i: usize, locked: bool, ed: &mut TagEditor) {
    let tags = s.entries[i].cell.tags.clone();
    let had_focus = ed.focused.take().map(|(k, _)| k);
    let mut remove = None;
    let mut moved = None;
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 3.0;
        let label = ui.label("Tags");
        if tags.is_empty() {
            ui.weak("none");
        }
        for (k, tag) in tags.iter().enumerate() {
            let id = egui::Id::unique(("batch_tag", i, k));
            // The chip with the keyboard shows it (its text is a frameless button).
            let stroke = if had_focus == Some(k) {
                ui.visuals().selection.stroke
            } else {
                ui.visuals().widgets.inactive.bg_stroke
            };
            let frame = egui::Frame::new()
                .fill(ui.visuals().faint_bg_color)
                .stroke(stroke)
                .corner_radius(8.0)
                .inner_margin(egui::Margin::symmetric(4, 1))
                .show(ui, |ui| {
                    ui.spacing_mut().item_spacing.x = 1.0;
                    // The tag's text is the drag handle; the × beside it stays a plain button.
                    let chip = ui
                        .dnd_drag_source(id.with("drag"), k, |ui| {
                            ui.push_id(id, |ui| {
                                ui.add_enabled(
                                    !locked,
                                    egui::Button::new(tag.as_str()).frame(false),
                                )
                            })
                            .inner
                        })
                        .inner
                        .on_hover_text(
                            "drag it onto another tag to move it; with the keyboard: \
                             Alt+Left/Right moves it, Delete removes it",
                        );
                    if chip.clicked() || ed.focus == Some(k) {
                        chip.request_focus();
                    }
                    if chip.has_focus() {
                        *ed.focused = Some((k, chip.id));
                    }
                    let x = ui
                        .add_enabled(!locked, egui::Button::new("×").frame(false).small())
                        .on_hover_text("remove this tag");
                    x.widget_info(|| {
                        egui::WidgetInfo::labeled(
                            egui::Role::Button,
                            !locked,
                            format!("remove tag {tag}"),
                        )
                    });
                    if x.clicked() {
                        remove = Some(tag.clone());
                    }
                });
            if let Some(from) = frame.response.dnd_release_payload::<usize>()
                && *from != k
            {
                moved = Some((*from, k));
            }
        }
        let r = ui
            .add_enabled(
                !locked,
                egui::TextEdit::singleline(&mut *ed.new_tag)
                    .id_salt("batch_new_tag")
                    .hint_text("add a tag")
                    .desired_width(90.0),
            )
            .labelled_by(label.id)
            .on_hover_text("type a tag and press Enter (commas separate several)");
        if r.lost_focus() && ui.input(|inp| inp.key_pressed(egui::Key::Enter)) {
            let typed = std::mem::take(&mut *ed.new_tag);
            if s.add_tag(&[i], &typed) > 0 {
                // Ready for the next one.
                r.request_focus();
            }
        }
    });
    if let Some(tag) = remove {
        s.remove_tag(&[i], &tag);
    }
    if let Some((from, to)) = moved {
        s.move_tag(i, from, to);
    }
}

/// The model's caption word by word, with a dotted underline under each word the photo shows
/// little sign of (pointing at a word says how well the photo supports it), and the model's
/// note on where the caption came from.
fn grounding_ui(ui: &mut egui::Ui, e: &Entry) {
    if let Some(note) = &e.cell.grounding_note {
        ui.weak(egui::RichText::new(note).small());
    }
    let Some(g) = &e.cell.grounding else { return };
    if !g.support.iter().any(|w| w.weak) {
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 4.0;
        // After an edit the support is still that of the model's own caption: say so.
        ui.weak(if e.cell.source == Source::Machine {
            "In the photo?"
        } else {
            "In the photo? (the model's own caption)"
        });
        for (k, w) in g.words.iter().enumerate() {
            let found = grounding_of(&g.support, k);
            let r = ui.label(w);
            if let Some(found) = found {
                let r = r.on_hover_text(grounding_hover(found));
                if found.weak {
                    paint_doubt(ui.painter(), r.rect, ui.visuals().warn_fg_color);
                }
            }
        }
    });
    ui.weak(egui::RichText::new(DOUBT_LEGEND).small());
}

/// "confidence 87%", greyed when the model flagged the caption.
fn confidence_ui(ui: &mut egui::Ui, c: f32, flagged: bool) {
    ui.label(
        egui::RichText::new(format!("confidence {:.0}%", c * 100.0))
            .color(confidence_shown_color(ui, c, flagged)),
    )
    .on_hover_text(if flagged {
        "How likely the caption is acceptable (calibrated models), else the geometric mean of \
         the word probabilities. Greyed: the model flagged this caption for review, and the \
         warning overrules this figure."
    } else {
        "How likely the caption is acceptable (calibrated models), else the geometric mean of \
         the word probabilities"
    });
}

/// The selected caption's text box and "Accept and next".
fn caption_editor_ui(
    ui: &mut egui::Ui,
    s: &mut Session,
    i: usize,
    locked: bool,
    focus: bool,
) -> Editor {
    let mut editor = Editor::default();
    let label = ui.label("Selected caption");
    let mut text = s.entries[i].cell.caption.clone();
    let r = ui
        .add_enabled(
            !locked,
            egui::TextEdit::singleline(&mut text)
                .id_salt("batch_caption")
                .hint_text("no caption yet")
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
    if focus {
        r.request_focus();
    }
    if r.changed() {
        s.edit(i, &text);
    }
    let enter = r.lost_focus() && ui.input(|inp| inp.key_pressed(egui::Key::Enter));
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Accept and next")
            .on_hover_text("Enter")
            .clicked()
            || enter
        {
            editor = Editor {
                accept: true,
                from_text_box: enter,
            };
        }
    });
    editor
}

/// "Caption again, starting with": words this photo's caption (or the selected photos')
/// must start with ("a cat" -> "a cat sitting on a windowsill"), for this one run; the
/// toolbar's "Start with" box is the whole folder's. True when the user asked for it (the
/// button, or Enter in the box).
fn start_again_ui(ui: &mut egui::Ui, start: &mut String, locked: bool, marked: usize) -> bool {
    let mut again = false;
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("Start with");
        let r = ui
            .add_enabled(
                !locked,
                egui::TextEdit::singleline(start)
                    .id_salt("batch_photo_start")
                    .hint_text("e.g. a cat")
                    .desired_width(140.0),
            )
            .labelled_by(label.id)
            .on_hover_text(
                "words the new caption must start with; the model writes the rest (empty: the \
                 toolbar's Start with)",
            );
        let enter = r.lost_focus() && ui.input(|inp| inp.key_pressed(egui::Key::Enter));
        let what = if marked > 1 {
            format!("Caption the {marked} selected again")
        } else {
            "Caption again".to_string()
        };
        let clicked = ui
            .add_enabled(!locked, egui::Button::new(what))
            .on_hover_text("asks before it replaces a caption; Ctrl+Z undoes it")
            .clicked();
        again = !locked && (clicked || (enter && !start.trim().is_empty()));
    });
    again
}

/// The beam's alternatives, 1-9, the current one selected; clicking one takes it.
fn alternatives_ui(ui: &mut egui::Ui, s: &mut Session, i: usize, locked: bool) {
    let alternatives = s.entries[i].cell.alternatives.clone();
    if alternatives.is_empty() {
        return;
    }
    ui.add_space(6.0);
    ui.label("Beam alternatives (press 1-9 to take one)");
    for (k, alt) in alternatives.iter().enumerate().take(9) {
        let current = *alt == s.entries[i].cell.caption;
        if ui
            .add_enabled(
                !locked,
                egui::Button::selectable(current, format!("{}  {alt}", k + 1)),
            )
            .clicked()
        {
            s.take_alternative(i, k);
        }
    }
}
