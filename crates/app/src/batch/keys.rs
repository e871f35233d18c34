//! The Batch panel's keyboard: app-wide shortcuts (undo, redo, save) and the review keys that
//! move the selection, accept a caption, edit it, take a beam alternative, select several
//! photos (Ctrl+A, Escape), and move or remove the focused tag chip (Alt+arrows, Delete).

use egui::{InputState, Key, KeyboardShortcut, Modifiers};

use super::BatchPanel;
use crate::Shared;

/// Redo: Ctrl+Shift+Z or Ctrl+Y (Cmd on a Mac).
const REDO: [KeyboardShortcut; 2] = [
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::Z),
    KeyboardShortcut::new(Modifiers::COMMAND, Key::Y),
];
const UNDO: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::Z);
const SAVE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::S);
/// Export CSV: Ctrl+E; Export JSON: Ctrl+Shift+E.
const EXPORT_CSV: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::E);
const EXPORT_JSON: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::E);

/// The keys that move the selection, in the order they are read.
const MOVE_KEYS: [Key; 8] = [
    Key::ArrowLeft,
    Key::ArrowRight,
    Key::ArrowUp,
    Key::ArrowDown,
    Key::PageUp,
    Key::PageDown,
    Key::Home,
    Key::End,
];

/// 1-9: take that beam alternative.
const DIGITS: [Key; 9] = [
    Key::Num1,
    Key::Num2,
    Key::Num3,
    Key::Num4,
    Key::Num5,
    Key::Num6,
    Key::Num7,
    Key::Num8,
    Key::Num9,
];

/// The shortcuts pressed this frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shortcuts {
    pub undo: bool,
    pub redo: bool,
    pub save: bool,
    pub export_csv: bool,
    pub export_json: bool,
}

/// Takes the undo, redo, save and export shortcuts out of this frame's input. Redo is read
/// first, as Ctrl+Z also matches Ctrl+Shift+Z (and Ctrl+Shift+E before Ctrl+E).
pub fn take_shortcuts(i: &mut InputState) -> Shortcuts {
    let redo = REDO.iter().any(|s| i.consume_shortcut(s));
    let export_json = i.consume_shortcut(&EXPORT_JSON);
    Shortcuts {
        redo,
        undo: i.consume_shortcut(&UNDO),
        save: i.consume_shortcut(&SAVE),
        export_csv: i.consume_shortcut(&EXPORT_CSV),
        export_json,
    }
}

/// What the review keys asked for this frame, in the order to carry it out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Review {
    /// Selection moves, in photos of grid order.
    pub moves: Vec<isize>,
    /// Enter: accept the caption and move on.
    pub accept: bool,
    /// F2: give the caption text box the keyboard.
    pub edit: bool,
    /// 1-9: take this alternative (0-based; the last digit pressed).
    pub take: Option<usize>,
    /// Ctrl+A: select every photo shown.
    pub select_all: bool,
    /// Escape: clear the selection of several photos.
    pub clear: bool,
    /// Alt+Left / Alt+Right on a focused tag chip: move it by this many places.
    pub tag_move: Option<isize>,
    /// Delete or Backspace on a focused tag chip: remove it.
    pub tag_remove: bool,
}

/// How far `key` moves the selection in a grid of `columns` columns showing `page` photos at a
/// time; Home and End go as far as there is.
pub fn move_delta(key: Key, columns: isize, page: isize) -> Option<isize> {
    Some(match key {
        Key::ArrowLeft => -1,
        Key::ArrowRight => 1,
        Key::ArrowUp => -columns,
        Key::ArrowDown => columns,
        Key::PageUp => -page,
        Key::PageDown => page,
        Key::Home => isize::MIN / 2,
        Key::End => isize::MAX / 2,
        _ => return None,
    })
}

/// Takes the review keys out of this frame's input, for a grid of `shape` (columns, visible
/// rows). Enter is left alone when a button has the focus (Tab navigation), so it can press it;
/// with a tag chip focused, Alt+arrows move it and Delete or Backspace remove it.
pub fn take_review(
    i: &mut InputState,
    shape: (usize, usize),
    button_focused: bool,
    chip_focused: bool,
) -> Review {
    let (columns, rows) = shape;
    let page = (columns * rows.max(1)) as isize;
    let columns = columns.max(1) as isize;
    let mut review = Review::default();
    if chip_focused {
        // Before the plain arrows, which would take Alt+arrows too.
        for (key, delta) in [(Key::ArrowLeft, -1), (Key::ArrowRight, 1)] {
            if i.consume_key(Modifiers::ALT, key) {
                review.tag_move = Some(delta);
            }
        }
        review.tag_remove = i.consume_key(Modifiers::NONE, Key::Delete)
            | i.consume_key(Modifiers::NONE, Key::Backspace);
    }
    review.select_all = i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::A));
    for key in MOVE_KEYS {
        let Some(delta) = move_delta(key, columns, page) else {
            continue;
        };
        // `consume_key` takes every press of the key this frame: they move once.
        if i.consume_key(Modifiers::NONE, key) {
            review.moves.push(delta);
        }
    }
    review.accept = !button_focused && i.consume_key(Modifiers::NONE, Key::Enter);
    review.edit = i.consume_key(Modifiers::NONE, Key::F2);
    for (k, key) in DIGITS.into_iter().enumerate() {
        if i.consume_key(Modifiers::NONE, key) {
            review.take = Some(k);
        }
    }
    review.clear = i.key_pressed(Key::Escape);
    review
}

/// The position in `shown` (grid order) `delta` photos from the one `selected` (an index
/// into the entries), clamped to the grid; the first photo when none of those shown is selected.
pub fn step(shown: &[usize], selected: Option<usize>, delta: isize) -> Option<usize> {
    if shown.is_empty() {
        return None;
    }
    let at = selected.and_then(|i| shown.iter().position(|&k| k == i));
    Some(match at {
        None => 0,
        Some(p) => (p as isize + delta).clamp(0, shown.len() as isize - 1) as usize,
    })
}

impl BatchPanel {
    /// App-wide shortcuts of the Batch panel: undo and redo (also while typing), save. Call
    /// before the panel's widgets run, so a text box does not take them.
    pub fn handle_shortcuts(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        if self.ask.is_some() || self.dialogs.typed_path.is_some() {
            return;
        }
        let keys = ctx.input_mut(take_shortcuts);
        if keys.redo {
            self.redo(shared);
        }
        if keys.undo {
            self.undo(shared);
        }
        if keys.save {
            self.save(shared);
        }
        for (asked, kind) in [
            (keys.export_csv, super::ExportKind::Csv),
            (keys.export_json, super::ExportKind::Json),
        ] {
            if !asked {
                continue;
            }
            if self.can_export() {
                self.open_dialog(super::dialogs::DialogFor::Export(kind), shared);
            } else if self.session.is_some() && self.running.is_none() && self.export.is_none() {
                shared
                    .status
                    .info("nothing to export yet: caption the photos first");
            }
        }
    }

    /// Review keys when no text box has the keyboard.
    pub(super) fn review_keys(&mut self, ctx: &egui::Context) {
        if ctx.text_edit_focused() || self.ask.is_some() || self.dialogs.typed_path.is_some() {
            return;
        }
        let focused = ctx.memory(|m| m.focused());
        // A grid cell with the keyboard is the grid's: Enter accepts there, it does not click.
        let button_focused = focused.is_some() && focused != self.grid.focused_cell;
        let chip = self
            .tag_focus
            .filter(|&(_, id)| focused == Some(id))
            .map(|(k, _)| k);
        let shape = self.grid.shape;
        let review = ctx.input_mut(|i| take_review(i, shape, button_focused, chip.is_some()));
        if review.select_all {
            self.select_all_shown();
        }
        if review.clear {
            self.clear_marked();
            self.grid.keyboard = false;
        }
        if let (Some(k), Some(i), Some(s)) = (chip, self.selected, &mut self.session) {
            if let Some(delta) = review.tag_move {
                let to = k.saturating_add_signed(delta);
                if s.move_tag(i, k, to) {
                    self.focus_tag = Some(to.min(s.entries[i].cell.tags.len() - 1));
                }
            }
            if review.tag_remove
                && let Some(tag) = s.entries[i].cell.tags.get(k).cloned()
            {
                s.remove_tag(&[i], &tag);
                self.focus_tag = Some(k.min(s.entries[i].cell.tags.len().saturating_sub(1)));
            }
        }
        for delta in review.moves {
            self.move_selection(delta);
        }
        if review.accept {
            self.accept_and_next();
        }
        if review.edit {
            self.focus_caption = true;
        }
        if let (Some(k), Some(i), Some(s)) = (review.take, self.selected, &mut self.session) {
            s.take_alternative(i, k);
        }
    }

    /// Moves the selection by `delta` photos in grid order (clamped).
    pub(super) fn move_selection(&mut self, delta: isize) {
        let shown = self.shown();
        if let Some(p) = step(&shown, self.selected, delta) {
            self.select(shown[p]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one frame with these key presses and returns what `take` read from them.
    fn with_keys<T>(keys: &[(Modifiers, Key)], take: impl FnOnce(&mut InputState) -> T) -> T {
        let ctx = egui::Context::default();
        let events = keys
            .iter()
            .map(|&(modifiers, key)| egui::Event::Key {
                key,
                physical_key: None,
                pressed: true,
                repeat: false,
                modifiers,
            })
            .collect();
        let raw = egui::RawInput {
            events,
            ..Default::default()
        };
        let mut take = Some(take);
        let mut out = None;
        let _ = ctx.run_ui(raw, |ui| {
            if let Some(take) = take.take() {
                out = Some(ui.ctx().input_mut(take));
            }
        });
        out.expect("one frame ran")
    }

    #[test]
    fn ctrl_shift_z_redoes_and_does_not_undo() {
        let keys = with_keys(
            &[(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z)],
            take_shortcuts,
        );
        assert_eq!(
            keys,
            Shortcuts {
                redo: true,
                ..Shortcuts::default()
            }
        );
    }

    #[test]
    fn ctrl_z_undoes_ctrl_y_redoes_ctrl_s_saves() {
        assert!(with_keys(&[(Modifiers::COMMAND, Key::Z)], take_shortcuts).undo);
        assert!(with_keys(&[(Modifiers::COMMAND, Key::Y)], take_shortcuts).redo);
        let save = with_keys(&[(Modifiers::COMMAND, Key::S)], take_shortcuts);
        assert_eq!(
            save,
            Shortcuts {
                save: true,
                ..Shortcuts::default()
            }
        );
        // A plain Z is typing, not a shortcut.
        assert_eq!(
            with_keys(&[(Modifiers::NONE, Key::Z)], take_shortcuts),
            Shortcuts::default()
        );
    }

    #[test]
    fn ctrl_e_exports_csv_and_ctrl_shift_e_json() {
        assert_eq!(
            with_keys(&[(Modifiers::COMMAND, Key::E)], take_shortcuts),
            Shortcuts {
                export_csv: true,
                ..Shortcuts::default()
            }
        );
        assert_eq!(
            with_keys(
                &[(Modifiers::COMMAND | Modifiers::SHIFT, Key::E)],
                take_shortcuts
            ),
            Shortcuts {
                export_json: true,
                ..Shortcuts::default()
            }
        );
        assert_eq!(
            with_keys(&[(Modifiers::NONE, Key::E)], take_shortcuts),
            Shortcuts::default()
        );
    }

    #[test]
    fn arrows_and_pages_move_by_photo_row_and_screen() {
        assert_eq!(move_delta(Key::ArrowLeft, 4, 12), Some(-1));
        assert_eq!(move_delta(Key::ArrowRight, 4, 12), Some(1));
        assert_eq!(move_delta(Key::ArrowUp, 4, 12), Some(-4));
        assert_eq!(move_delta(Key::ArrowDown, 4, 12), Some(4));
        assert_eq!(move_delta(Key::PageUp, 4, 12), Some(-12));
        assert_eq!(move_delta(Key::PageDown, 4, 12), Some(12));
        assert_eq!(move_delta(Key::Enter, 4, 12), None);
    }

    #[test]
    fn review_keys_are_read_from_the_input() {
        // Two presses of a key in one frame move once, as before the split.
        let none = Modifiers::NONE;
        let review = with_keys(
            &[
                (none, Key::ArrowDown),
                (none, Key::ArrowDown),
                (none, Key::PageUp),
                (none, Key::Enter),
                (none, Key::F2),
                (none, Key::Num3),
            ],
            |i| take_review(i, (5, 2), false, false),
        );
        assert_eq!(
            review,
            Review {
                moves: vec![5, -10],
                accept: true,
                edit: true,
                take: Some(2),
                ..Review::default()
            }
        );
    }

    #[test]
    fn a_focused_chip_takes_alt_arrows_and_delete_and_ctrl_a_selects_all() {
        let keys = [
            (Modifiers::ALT, Key::ArrowRight),
            (Modifiers::NONE, Key::Delete),
            (Modifiers::COMMAND, Key::A),
        ];
        let review = with_keys(&keys, |i| take_review(i, (3, 3), true, true));
        assert_eq!(review.tag_move, Some(1));
        assert!(review.tag_remove);
        assert!(review.select_all);
        assert!(
            review.moves.is_empty(),
            "Alt+Right moves the chip, not the photo"
        );
        // Without a focused chip, Delete is not taken and Alt+Right moves the photo.
        let review = with_keys(&keys, |i| take_review(i, (3, 3), true, false));
        assert_eq!(review.tag_move, None);
        assert!(!review.tag_remove);
        assert_eq!(review.moves, [1]);
    }

    #[test]
    fn enter_stays_with_a_focused_button_and_modified_keys_are_not_review_keys() {
        let review = with_keys(
            &[
                (Modifiers::NONE, Key::Enter),
                (Modifiers::COMMAND, Key::ArrowDown),
            ],
            |i| take_review(i, (3, 3), true, false),
        );
        assert_eq!(review, Review::default());
    }

    #[test]
    fn a_page_is_at_least_one_row() {
        let review = with_keys(&[(Modifiers::NONE, Key::PageDown)], |i| {
            take_review(i, (0, 0), false, false)
        });
        assert_eq!(review.moves, [0]);
        let review = with_keys(&[(Modifiers::NONE, Key::ArrowDown)], |i| {
            take_review(i, (0, 0), false, false)
        });
        assert_eq!(review.moves, [1]);
    }

    #[test]
    fn steps_are_clamped_to_the_grid() {
        let shown = [7, 3, 5, 1];
        assert_eq!(step(&shown, Some(3), 1), Some(2));
        assert_eq!(step(&shown, Some(3), -5), Some(0));
        assert_eq!(step(&shown, Some(3), isize::MAX / 2), Some(3));
        assert_eq!(step(&shown, Some(5), isize::MIN / 2), Some(0));
        // Nothing selected, or the selected photo filtered away: the first one.
        assert_eq!(step(&shown, None, 2), Some(0));
        assert_eq!(step(&shown, Some(4), 2), Some(0));
        assert_eq!(step(&[], Some(4), 1), None);
    }
}
