//! The grid of photos: which ones show (filter, search) and in what order, and the thumbnails
//! with their badges.

use serde::{Deserialize, Serialize};

use super::BatchPanel;
use super::entry::{flagged_by_model, problems, source_badge};
use super::session::{Disk, Entry, Photo, Source};
use crate::Shared;
use crate::widgets::{confidence_shown_color, thumbnail_ui};

/// Which photos the grid shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Filter {
    #[default]
    All,
    Uncaptioned,
    Existing,
    Machine,
    Edited,
    Unsaved,
    Failed,
    /// Machine captions the model flagged as probably wrong.
    NeedsReview,
}

impl Filter {
    pub const ALL: [Filter; 8] = [
        Filter::All,
        Filter::Uncaptioned,
        Filter::Existing,
        Filter::Machine,
        Filter::Edited,
        Filter::Unsaved,
        Filter::Failed,
        Filter::NeedsReview,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Filter::All => "all photos",
            Filter::Uncaptioned => "uncaptioned",
            Filter::Existing => "existing",
            Filter::Machine => "machine",
            Filter::Edited => "edited",
            Filter::Unsaved => "not saved",
            Filter::Failed => "failed or problems",
            Filter::NeedsReview => "needs review",
        }
    }

    fn keeps(self, e: &Entry) -> bool {
        match self {
            Filter::All => true,
            Filter::Uncaptioned => !e.has_caption(),
            Filter::Existing => e.cell.source == Source::Existing,
            Filter::Machine => e.cell.source == Source::Machine,
            Filter::Edited => e.cell.source == Source::Edited,
            Filter::Unsaved => e.is_dirty(),
            Filter::Failed => {
                e.failed.is_some()
                    || e.photo != Photo::Present
                    || matches!(e.disk, Disk::Unreadable(_))
            }
            Filter::NeedsReview => flagged_by_model(e),
        }
    }
}

/// Grid order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sort {
    #[default]
    Name,
    /// Least confident first (captions without a confidence last).
    Confidence,
}

impl Sort {
    pub fn label(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Confidence => "confidence",
        }
    }
}

/// The photos shown, as indices into `entries` in grid order: those `filter` keeps, with the
/// tag `tag` (if any), whose name or caption contains `search` (ignoring case), sorted by
/// `sort`.
pub fn shown(
    entries: &[Entry],
    filter: Filter,
    tag: Option<&str>,
    sort: Sort,
    search: &str,
) -> Vec<usize> {
    let needle = search.trim().to_lowercase();
    let mut shown: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| filter.keeps(e))
        .filter(|(_, e)| tag.is_none_or(|t| e.cell.tags.iter().any(|x| x == t)))
        .filter(|(_, e)| {
            needle.is_empty()
                || e.name.to_lowercase().contains(&needle)
                || e.cell.caption.to_lowercase().contains(&needle)
        })
        .map(|(i, _)| i)
        .collect();
    if sort == Sort::Confidence {
        shown.sort_by(|&a, &b| {
            let key = |i: usize| entries[i].cell.confidence.unwrap_or(f32::INFINITY);
            key(a).total_cmp(&key(b)).then(a.cmp(&b))
        });
    }
    shown
}

/// The grid's layout and scrolling, as of the last frame.
#[derive(Debug)]
pub struct GridView {
    /// Columns and visible rows, for the arrow and page keys.
    pub shape: (usize, usize),
    /// The scroll offset.
    pub offset: f32,
    /// Scroll to the top next frame (a new folder).
    pub scroll_top: bool,
    /// Scroll the selected photo into view next frame (keyboard).
    pub scroll_to_selected: bool,
    /// Give the selected photo's cell the keyboard next frame (a folder opened with Enter,
    /// "Accept and next" clicked).
    pub focus_selected: bool,
    /// The grid cell that had the keyboard last frame: Enter there accepts (it does not
    /// click).
    pub focused_cell: Option<egui::Id>,
    /// The keyboard is in the grid: the focus follows the selection (the review keys move
    /// it), until it goes elsewhere (Tab, a click, Escape).
    pub keyboard: bool,
}

impl Default for GridView {
    fn default() -> Self {
        GridView {
            shape: (1, 1),
            offset: 0.0,
            scroll_top: false,
            scroll_to_selected: false,
            focus_selected: false,
            focused_cell: None,
            keyboard: false,
        }
    }
}

/// The sizes of one grid cell for a grid `width` wide.
struct CellSize {
    /// Thumbnail side.
    side: f32,
    width: f32,
    height: f32,
}

impl BatchPanel {
    /// The photos the grid shows (search, filter and tag filter), in grid order.
    pub fn shown_photos(&self) -> Vec<usize> {
        self.shown()
    }

    /// The photos shown, in grid order.
    pub(super) fn shown(&self) -> Vec<usize> {
        let s = &self.settings;
        shown(
            self.entries(),
            s.filter,
            self.tag_filter.as_deref(),
            s.sort,
            &self.search,
        )
    }

    pub(super) fn grid_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let shown = self.shown();
        if shown.is_empty() {
            ui.weak("No photo matches the search and filter.");
            return;
        }
        let width = ui.available_width();
        let spacing = ui.spacing().item_spacing.x;
        let side = self.settings.thumb_side.min(width - 24.0).max(48.0);
        let text_height = ui.text_style_height(&egui::TextStyle::Body);
        let narrowest = (side + 40.0).min(width);
        let columns = (((width + spacing) / (narrowest + spacing)).floor() as usize).max(1);
        // The columns share the whole width: what is left over goes to the captions, not to
        // a strip of unused space beside the grid.
        let shared_width = ((width + spacing) / columns as f32 - spacing - 0.5).max(narrowest);
        let cell = CellSize {
            side,
            width: shared_width.min(width),
            height: side + text_height * 3.0 + 20.0,
        };
        let rows = shown.len().div_ceil(columns);
        let visible_rows = ((ui.available_height() / cell.height).floor() as usize).max(1);
        self.grid.shape = (columns, visible_rows);
        let scroll = self.grid_scroll_area(ui, &shown, columns, cell.height);
        let mut clicked = None;
        // The keyboard goes to the selected cell when asked, and stays with the selection
        // while it is in the grid (the review keys moved the selection; the cell that had it
        // may be scrolled away). Another widget with the keyboard takes it out of the grid.
        let now = ui.memory(|m| m.focused());
        if now.is_some() && now != self.grid.focused_cell {
            self.grid.keyboard = false;
        }
        let focus = std::mem::take(&mut self.grid.focus_selected) || self.grid.keyboard;
        let marks = Marks {
            selected: self.selected,
            marked: &self.marked,
            focus,
        };
        let mut focused_cell = None;
        let entries = self
            .session
            .as_ref()
            .map_or(&[][..], |s| s.entries.as_slice());
        let out = scroll.show_rows(ui, cell.height, rows, |ui, row_range| {
            for row in row_range {
                let start = (row * columns).min(shown.len());
                let end = (start + columns).min(shown.len());
                let row = &shown[start..end];
                let (c, f) = grid_row_ui(ui, shared, entries, row, &cell, &marks);
                if let Some(i) = c {
                    clicked = Some(i);
                }
                focused_cell = focused_cell.or(f);
            }
        });
        self.grid.offset = out.state.clamped_offset().y;
        self.grid.focused_cell = focused_cell;
        self.grid.keyboard = focused_cell.is_some() || (self.grid.keyboard && now.is_none());
        if let Some(i) = clicked {
            self.grid.keyboard = false;
            // The modifiers of the click itself (they may be released in the same frame).
            let modifiers = ui.input(|inp| {
                inp.events
                    .iter()
                    .rev()
                    .find_map(|e| match e {
                        egui::Event::PointerButton {
                            pressed: false,
                            modifiers,
                            ..
                        } => Some(*modifiers),
                        _ => None,
                    })
                    .unwrap_or(inp.modifiers)
            });
            self.click_photo(i, modifiers);
            self.grid.scroll_to_selected = false;
        }
    }

    /// The grid's scroll area, scrolled to the top (a new folder) or so that the selected
    /// photo is in view (only when it is outside).
    fn grid_scroll_area(
        &mut self,
        ui: &egui::Ui,
        shown: &[usize],
        columns: usize,
        row_height: f32,
    ) -> egui::ScrollArea {
        let mut scroll = egui::ScrollArea::vertical()
            .id_salt("batch_grid")
            .auto_shrink(false);
        if std::mem::take(&mut self.grid.scroll_top) {
            scroll = scroll.vertical_scroll_offset(0.0);
        }
        if std::mem::take(&mut self.grid.scroll_to_selected)
            && let Some(pos) = self
                .selected
                .and_then(|i| shown.iter().position(|&k| k == i))
        {
            let row = pos / columns;
            let top = row as f32 * (row_height + ui.spacing().item_spacing.y);
            let current = self.grid.offset;
            let view = ui.available_height();
            if top < current {
                scroll = scroll.vertical_scroll_offset(top);
            } else if top + row_height > current + view {
                scroll = scroll.vertical_scroll_offset(top + row_height - view);
            }
        }
        scroll
    }
}

/// Which photos the grid marks: the one selected, and those selected together.
struct Marks<'a> {
    selected: Option<usize>,
    marked: &'a std::collections::BTreeSet<usize>,
    /// Give the selected cell the keyboard.
    focus: bool,
}

/// The id of a photo's grid cell.
fn cell_id(e: &Entry) -> egui::Id {
    egui::Id::unique(("batch_cell", &e.path))
}

/// One row of the grid: the photos `row` (indices into `entries`). Returns the one clicked,
/// and the cell of the row that has the keyboard.
fn grid_row_ui(
    ui: &mut egui::Ui,
    shared: &mut Shared,
    entries: &[Entry],
    row: &[usize],
    cell: &CellSize,
    marks: &Marks,
) -> (Option<usize>, Option<egui::Id>) {
    let mut clicked = None;
    let mut focused = None;
    ui.horizontal(|ui| {
        for &index in row {
            let Some(e) = entries.get(index) else { break };
            let r = ui
                .allocate_ui_with_layout(
                    egui::vec2(cell.width, cell.height),
                    egui::Layout::top_down(egui::Align::Center),
                    |ui| {
                        ui.set_min_size(egui::vec2(cell.width, cell.height));
                        ui.set_max_width(cell.width);
                        cell_ui(
                            ui,
                            shared,
                            e,
                            cell.side,
                            marks.selected == Some(index),
                            marks.marked.contains(&index),
                        )
                    },
                )
                .inner;
            if marks.focus && marks.selected == Some(index) && !r.has_focus() {
                r.request_focus();
            }
            // A click selects without keeping the keyboard (see below).
            if r.has_focus() && !r.clicked() {
                focused = Some(r.id);
                // The arrows are the review keys' (they move the selection, and the focus
                // follows it), not egui's focus moves.
                ui.memory_mut(|m| {
                    m.set_focus_lock_filter(
                        r.id,
                        egui::EventFilter {
                            horizontal_arrows: true,
                            vertical_arrows: true,
                            ..Default::default()
                        },
                    )
                });
            }
            if r.clicked() {
                // The grid is driven by the review keys, not by widget focus.
                r.surrender_focus();
                clicked = Some(index);
            }
        }
    });
    (clicked, focused)
}

/// One photo of the grid: its thumbnail, badges, name and caption, clickable as a whole.
fn cell_ui(
    ui: &mut egui::Ui,
    shared: &mut Shared,
    e: &Entry,
    side: f32,
    selected: bool,
    marked: bool,
) -> egui::Response {
    let top = ui.cursor().min;
    thumbnail_ui(ui, &mut shared.thumbs, &e.path, side);
    ui.horizontal(|ui| badges_ui(ui, e));
    let caption = if e.has_caption() {
        egui::RichText::new(&e.cell.caption)
    } else {
        egui::RichText::new("no caption").weak()
    };
    ui.add(egui::Label::new(caption).truncate());
    let rect = egui::Rect::from_min_size(top, ui.min_rect().size().max(egui::vec2(side, side)));
    let rect = rect.union(ui.min_rect());
    // Only the selected photo is a Tab stop (one for the whole grid; the arrows move within
    // it): Tab gets into the grid and out of it at once.
    let sense = if selected {
        egui::Sense::click()
    } else {
        egui::Sense::CLICK
    };
    let response = ui.interact(rect, cell_id(e), sense);
    let label = format!(
        "{}: {} ({})",
        e.name,
        if e.has_caption() {
            e.cell.caption.as_str()
        } else {
            "no caption"
        },
        e.cell.source.label()
    );
    response.widget_info(|| {
        egui::WidgetInfo::selected(egui::Role::Button, true, selected || marked, &label)
    });
    if marked {
        // Selected together with others: a tinted background under the whole cell.
        let fill = ui.visuals().selection.bg_fill.gamma_multiply(0.35);
        ui.painter().rect_filled(rect.expand(2.0), 4.0, fill);
    }
    let stroke = if response.has_focus() {
        // The keyboard is here (Tab, or after "Accept and next"): a ring that shows it.
        Some(ui.visuals().widgets.active.fg_stroke)
    } else if selected {
        Some(egui::Stroke::new(2.0, ui.visuals().selection.stroke.color))
    } else if response.hovered() {
        Some(ui.visuals().widgets.hovered.bg_stroke)
    } else {
        None
    };
    if let Some(stroke) = stroke {
        ui.painter()
            .rect_stroke(rect.expand(2.0), 4.0, stroke, egui::StrokeKind::Outside);
    }
    response
}

/// The small line under a thumbnail: source, review flag, confidence, unsaved and problem
/// marks, and the file name.
fn badges_ui(ui: &mut egui::Ui, e: &Entry) {
    source_badge(ui, e);
    let flagged = flagged_by_model(e);
    if flagged {
        ui.label(
            egui::RichText::new("review")
                .small()
                .strong()
                .color(ui.visuals().warn_fg_color),
        )
        .on_hover_text(
            e.cell
                .review_note
                .as_deref()
                .unwrap_or("The model thinks this caption is probably wrong: check it"),
        );
    }
    if let Some((text, c)) = confidence_badge(e) {
        ui.label(
            egui::RichText::new(text)
                .small()
                .color(confidence_shown_color(ui, c, flagged)),
        );
    }
    if e.is_dirty() {
        ui.label(egui::RichText::new("•").small())
            .on_hover_text("not saved to its .txt file yet");
    }
    if !problems(e).is_empty() {
        ui.label(
            egui::RichText::new("!")
                .small()
                .color(ui.visuals().error_fg_color),
        );
    }
    ui.add(egui::Label::new(egui::RichText::new(&e.name).small()).truncate());
}

/// The confidence figure under a thumbnail, with its value. A caption flagged for review for
/// another reason than a low confidence (an unfamiliar photo, the wrong animal) can have a high
/// one, which the warning overrules: "review 90%" would say two opposite things, so the figure
/// is left out there (the preview shows it, with the warning).
fn confidence_badge(e: &Entry) -> Option<(String, f32)> {
    let c = e.cell.confidence?;
    if flagged_by_model(e) && c >= 0.5 {
        return None;
    }
    Some((format!("{:.0}%", c * 100.0), c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::session::{Cell, Session};

    /// Four photos that do not exist (no sidecars, no metadata): names b, a, d, c.
    fn entries() -> Vec<Entry> {
        let paths = ["b.jpg", "a.jpg", "d.jpg", "c.jpg"]
            .iter()
            .map(|n| std::path::PathBuf::from("/no/such/folder").join(n))
            .collect();
        let mut s = Session::open("test".into(), None, paths);
        let machine = |caption: &str, confidence, review| Cell {
            caption: caption.into(),
            source: Source::Machine,
            confidence,
            needs_review: review,
            ..Cell::default()
        };
        s.entries[0].cell = machine("a Dog runs", Some(0.9), Some(false));
        s.entries[1].cell = machine("a cat sleeps", Some(0.2), Some(true));
        s.entries[2].cell = Cell {
            caption: "my own words".into(),
            source: Source::Edited,
            ..Cell::default()
        };
        s.entries
    }

    #[test]
    fn filters_keep_what_they_say() {
        let e = entries();
        let all = shown(&e, Filter::All, None, Sort::Name, "");
        assert_eq!(all, [0, 1, 2, 3]);
        assert_eq!(shown(&e, Filter::Uncaptioned, None, Sort::Name, ""), [3]);
        assert_eq!(shown(&e, Filter::Machine, None, Sort::Name, ""), [0, 1]);
        assert_eq!(shown(&e, Filter::Edited, None, Sort::Name, ""), [2]);
        assert_eq!(shown(&e, Filter::NeedsReview, None, Sort::Name, ""), [1]);
        assert!(shown(&e, Filter::Existing, None, Sort::Name, "").is_empty());
    }

    #[test]
    fn search_looks_at_names_and_captions_ignoring_case() {
        let e = entries();
        assert_eq!(shown(&e, Filter::All, None, Sort::Name, " dog "), [0]);
        assert_eq!(shown(&e, Filter::All, None, Sort::Name, "C.JPG"), [3]);
        assert_eq!(
            shown(&e, Filter::Machine, None, Sort::Name, "words"),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn the_tag_filter_combines_with_the_others() {
        let mut e = entries();
        e[0].cell.tags = vec!["dog".into(), "grass".into()];
        e[1].cell.tags = vec!["dog".into()];
        e[2].cell.tags = vec!["dog".into()];
        assert_eq!(
            shown(&e, Filter::All, Some("dog"), Sort::Name, ""),
            [0, 1, 2]
        );
        assert_eq!(
            shown(&e, Filter::Machine, Some("dog"), Sort::Name, ""),
            [0, 1]
        );
        assert_eq!(shown(&e, Filter::All, Some("dog"), Sort::Name, "cat"), [1]);
        assert_eq!(shown(&e, Filter::All, Some("grass"), Sort::Name, ""), [0]);
        assert!(shown(&e, Filter::All, Some("do"), Sort::Name, "").is_empty());
    }

    #[test]
    fn a_warning_that_overrules_a_high_confidence_hides_the_figure() {
        let mut e = entries().remove(0);
        e.cell.source = Source::Machine;
        e.cell.caption = "a dog".into();
        e.cell.confidence = Some(0.9);
        e.cell.needs_review = Some(true);
        assert_eq!(confidence_badge(&e), None, "not 'review 90%'");
        e.cell.confidence = Some(0.18);
        assert_eq!(confidence_badge(&e), Some(("18%".into(), 0.18)));
        e.cell.needs_review = Some(false);
        e.cell.confidence = Some(0.9);
        assert_eq!(confidence_badge(&e), Some(("90%".into(), 0.9)));
    }

    #[test]
    fn confidence_order_is_least_confident_first_and_unknown_last() {
        let e = entries();
        assert_eq!(
            shown(&e, Filter::All, None, Sort::Confidence, ""),
            [1, 0, 2, 3]
        );
    }
}
