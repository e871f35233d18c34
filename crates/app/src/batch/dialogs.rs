//! The panel's dialogs: file dialogs (or a typed path where no file-dialog service exists) and
//! the questions it asks before replacing captions, overwriting changed sidecars or leaving
//! unsaved captions.

use std::path::{Path, PathBuf};

use super::BatchPanel;
use super::export::ExportKind;
use crate::Shared;
use crate::tasks::{self, Dialog, Pending};

/// What a file dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogFor {
    Folder,
    Export(ExportKind),
}

impl DialogFor {
    /// The dialog to open.
    fn dialog(self) -> Dialog {
        match self {
            DialogFor::Folder => Dialog::PickFolder,
            DialogFor::Export(kind) => Dialog::SaveFile {
                name: kind.file_name().into(),
                extension: kind.extension(),
            },
        }
    }
}

/// The typed-path fallback when no file-dialog service exists.
pub struct TypedPath {
    pub purpose: DialogFor,
    pub text: String,
    pub why: String,
    /// Why the path typed last cannot be used (shown in the prompt, which stays open).
    pub problem: Option<String>,
    /// The typed export file exists: the prompt asks before replacing it.
    pub replace: Option<PathBuf>,
    /// The path box takes the keyboard when the prompt opens (then it is the user's).
    pub focus: bool,
}

/// What a typed export path allows, as a file dialog would have settled it.
#[derive(Clone, Debug, PartialEq)]
pub enum TypedExport {
    /// A new file: write it.
    Write,
    /// An existing file that is not a photo: ask before replacing it.
    AskReplace,
    /// Never written: a folder, or a photo (the exports write text, never over a photo).
    Refuse(String),
}

/// Checks a typed export path (no file dialog to ask): a folder or a photo is refused, an
/// existing file asks first.
pub fn typed_export(path: &Path) -> TypedExport {
    if path.is_dir() {
        return TypedExport::Refuse(format!(
            "{} is a folder: type the name of the file to write.",
            path.display()
        ));
    }
    if captioner::dataset::has_image_extension(path) {
        return TypedExport::Refuse(format!(
            "{} is a photo's name: exports are text and never write over a photo.",
            path.display()
        ));
    }
    if std::fs::symlink_metadata(path).is_ok() {
        TypedExport::AskReplace
    } else {
        TypedExport::Write
    }
}

/// The file dialog open, or the typed path asked for instead.
#[derive(Default)]
pub struct Dialogs {
    pub open: Option<(DialogFor, Pending<Option<PathBuf>>)>,
    pub typed_path: Option<TypedPath>,
    /// Whether file dialogs can open here (found out when first needed; tests set it).
    pub service: Option<Result<(), String>>,
}

/// A question the panel is asking.
#[derive(Clone, Debug, PartialEq)]
pub enum Ask {
    /// "Caption all again" would replace this many captions.
    Replace(usize),
    /// "Caption again" on the selected photos would replace `captions` captions; the new
    /// captions start with `start_with` when it is `Some` (the preview's box).
    ReplaceSelected {
        photos: Vec<usize>,
        captions: usize,
        start_with: Option<String>,
    },
    /// Saving: these sidecars changed on disk since they were read, or are not UTF-8 text.
    /// The sidecars (names in the folder) that changed on disk or are not UTF-8 text.
    Conflicts(Vec<String>),
    /// Unsaved captions, before doing `then`.
    Unsaved { count: usize, then: Then },
}

/// What waits for the answer to [`Ask::Unsaved`].
#[derive(Clone, Debug, PartialEq)]
pub enum Then {
    Open(PathBuf),
    OpenFiles(Vec<PathBuf>),
    /// Close the app.
    Close,
}

/// A question in words: its title, text, and the buttons besides Cancel.
#[derive(Clone, Debug, PartialEq)]
pub struct Wording {
    pub title: &'static str,
    pub text: String,
    pub yes: String,
    pub no: Option<String>,
}

/// The answer to a question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Yes,
    No,
    Cancel,
}

impl Ask {
    /// The question in words.
    pub fn wording(&self) -> Wording {
        match self {
            Ask::Replace(n) => Wording {
                title: "Replace captions?",
                text: format!(
                    "Captioning all photos again replaces {n} captions, your own and existing \
                     ones included. Ctrl+Z undoes it."
                ),
                yes: format!("Replace {n} captions"),
                no: None,
            },
            Ask::ReplaceSelected {
                photos,
                captions,
                start_with,
            } => Wording {
                title: "Replace captions?",
                text: format!(
                    "Captioning {} again{} replaces {}, your own and existing ones \
                     included. Ctrl+Z undoes it.",
                    if photos.len() == 1 {
                        "this photo".to_string()
                    } else {
                        format!("the {} selected photos", photos.len())
                    },
                    match start_with.as_deref().map(str::trim) {
                        Some(start) if !start.is_empty() => format!(", starting with \"{start}\","),
                        _ => String::new(),
                    },
                    super::plural(*captions, "caption", "captions"),
                ),
                yes: format!(
                    "Replace {}",
                    super::plural(*captions, "caption", "captions")
                ),
                no: None,
            },
            Ask::Conflicts(names) => Wording {
                title: "Some caption files changed",
                text: format!(
                    "{} changed on disk since {} read, or {} not UTF-8 text: {}. \
                     Overwrite {}, or leave {} as {} {} and save only the others?",
                    super::plural(names.len(), ".txt file", ".txt files"),
                    if names.len() == 1 {
                        "it was"
                    } else {
                        "they were"
                    },
                    if names.len() == 1 { "is" } else { "are" },
                    listed(names, 8),
                    if names.len() == 1 { "it" } else { "them" },
                    if names.len() == 1 { "it" } else { "them" },
                    if names.len() == 1 { "it" } else { "they" },
                    if names.len() == 1 { "is" } else { "are" },
                ),
                yes: "Overwrite them".to_string(),
                no: Some("Leave them".to_string()),
            },
            Ask::Unsaved { count, then } => {
                let closing = matches!(then, Then::Close);
                Wording {
                    title: "Unsaved captions",
                    text: format!(
                        "{} not written to {} .txt {} yet. They stay in the session either \
                         way{}.",
                        super::plural(*count, "caption is", "captions are"),
                        if *count == 1 { "its" } else { "their" },
                        if *count == 1 { "file" } else { "files" },
                        if closing {
                            " and come back when you open this folder again"
                        } else {
                            ""
                        }
                    ),
                    yes: "Save them".to_string(),
                    no: Some(
                        if closing {
                            "Close without saving"
                        } else {
                            "Don't save"
                        }
                        .to_string(),
                    ),
                }
            }
        }
    }
}

impl BatchPanel {
    /// Pretends no file-dialog service exists (tests), or restores detection with `None`.
    pub fn set_dialog_service(&mut self, service: Option<Result<(), String>>) {
        self.dialogs.service = service;
    }

    /// Replaces the text of the typed-path prompt, when one is showing (tests type a path
    /// this way instead of key by key).
    pub fn set_typed_path(&mut self, text: &str) {
        if let Some(t) = &mut self.dialogs.typed_path {
            t.text = text.to_string();
        }
    }

    /// Whether a typed-path prompt is showing (no file-dialog service), and why.
    pub fn typed_path_reason(&self) -> Option<&str> {
        self.dialogs.typed_path.as_ref().map(|t| t.why.as_str())
    }

    /// Whether a file dialog is open.
    pub(super) fn dialog_open(&self) -> bool {
        self.dialogs.open.is_some()
    }

    fn dialog_answer(&mut self, purpose: DialogFor, path: PathBuf, shared: &mut Shared) {
        match purpose {
            DialogFor::Folder => self.open_folder(path, shared),
            // A file dialog asked before replacing; still, an export never writes over a photo.
            DialogFor::Export(_) if captioner::dataset::has_image_extension(&path) => {
                shared.status.error(format!(
                    "{}: not exported; exports are text and never write over a photo",
                    path.display()
                ));
            }
            DialogFor::Export(kind) => self.export_to_file(kind, path, shared),
        }
    }

    /// Opens a file dialog for `purpose`, or asks for a typed path where there is none.
    pub(super) fn open_dialog(&mut self, purpose: DialogFor, shared: &mut Shared) {
        let service = self
            .dialogs
            .service
            .get_or_insert_with(tasks::dialog_service)
            .clone();
        let start = self
            .session
            .as_ref()
            .and_then(|s| s.root.clone())
            .or_else(|| Some(PathBuf::from(&self.settings.folder)));
        if let Err(why) = service {
            let text = match purpose {
                DialogFor::Folder => self.settings.folder.clone(),
                DialogFor::Export(kind) => start
                    .unwrap_or_default()
                    .join(kind.file_name())
                    .display()
                    .to_string(),
            };
            shared.status.warn(format!("{why}; type the path instead"));
            self.dialogs.typed_path = Some(TypedPath {
                purpose,
                text,
                why,
                problem: None,
                replace: None,
                focus: true,
            });
            return;
        }
        match tasks::open_dialog(&shared.ctx, purpose.dialog(), start.as_deref()) {
            Ok(p) => self.dialogs.open = Some((purpose, p)),
            Err(e) => shared.status.error(e),
        }
    }

    /// Takes the file dialog's answer, once there is one.
    pub(super) fn poll_dialog(&mut self, shared: &mut Shared) {
        let Some((purpose, pending)) = &self.dialogs.open else {
            return;
        };
        let answer = match pending.poll() {
            tasks::Poll::Waiting => return,
            tasks::Poll::Ready(a) => a,
            tasks::Poll::Lost => None,
        };
        let purpose = *purpose;
        self.dialogs.open = None;
        if let Some(path) = answer {
            self.dialog_answer(purpose, path, shared);
        }
    }

    /// The question being asked, as a modal window, and what its answer does.
    pub(super) fn questions_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let Some(ask) = self.ask.clone() else {
            return;
        };
        let Some(choice) = question_ui(ui, &ask.wording()) else {
            return;
        };
        match (&ask, choice) {
            (_, Choice::Cancel) if !matches!(ask, Ask::Unsaved { .. }) => self.ask = None,
            (Ask::Replace(_), _) => self.confirm_replace(shared),
            (
                Ask::ReplaceSelected {
                    photos, start_with, ..
                },
                _,
            ) => {
                self.ask = None;
                self.start_run_on(Some(photos.clone()), true, start_with.clone(), shared);
            }
            (Ask::Conflicts(_), Choice::Yes) => self.save_now(true, shared),
            (Ask::Conflicts(_), _) => self.save_now(false, shared),
            (Ask::Unsaved { .. }, Choice::Yes) => self.answer_unsaved(Some(true), shared),
            (Ask::Unsaved { .. }, Choice::No) => self.answer_unsaved(Some(false), shared),
            (Ask::Unsaved { .. }, Choice::Cancel) => self.answer_unsaved(None, shared),
        }
    }

    /// The typed-path prompt (no file dialog here), and what its path is for.
    pub(super) fn typed_path_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let Some(t) = &mut self.dialogs.typed_path else {
            return;
        };
        match typed_path_modal(ui, t) {
            Some(true) => {
                let path = PathBuf::from(t.text.trim());
                if t.text.trim().is_empty() {
                    return;
                }
                if let DialogFor::Export(_) = t.purpose {
                    // Asked already about this very path: the answer was "Replace".
                    let confirmed = t.replace.as_deref() == Some(path.as_path());
                    match typed_export(&path) {
                        TypedExport::Refuse(why) => {
                            t.problem = Some(why);
                            t.replace = None;
                            return;
                        }
                        TypedExport::AskReplace if !confirmed => {
                            t.problem = None;
                            t.replace = Some(path);
                            return;
                        }
                        _ => {}
                    }
                }
                if let Some(t) = self.dialogs.typed_path.take() {
                    self.dialog_answer(t.purpose, path, shared);
                }
            }
            Some(false) => self.dialogs.typed_path = None,
            None => {}
        }
    }
}

/// A question as a modal window. Returns the answer, once given (closing it cancels).
fn question_ui(ui: &mut egui::Ui, wording: &Wording) -> Option<Choice> {
    let modal = egui::Modal::new(egui::Id::unique("batch_question")).show(ui.ctx(), |ui| {
        ui.set_max_width(440.0);
        ui.heading(wording.title);
        ui.label(&wording.text);
        ui.add_space(8.0);
        let mut choice = None;
        ui.horizontal_wrapped(|ui| {
            if ui.button(&wording.yes).clicked() {
                choice = Some(Choice::Yes);
            }
            if let Some(no) = &wording.no
                && ui.button(no).clicked()
            {
                choice = Some(Choice::No);
            }
            if ui.button("Cancel").clicked() {
                choice = Some(Choice::Cancel);
            }
        });
        choice
    });
    if modal.should_close() {
        Some(Choice::Cancel)
    } else {
        modal.inner
    }
}

/// The typed-path prompt as a modal window: `Some(true)` OK, `Some(false)` cancelled.
fn typed_path_modal(ui: &mut egui::Ui, t: &mut TypedPath) -> Option<bool> {
    let mut done = None;
    let modal = egui::Modal::new(egui::Id::unique("batch_typed_path")).show(ui.ctx(), |ui| {
        ui.set_max_width(480.0);
        ui.heading(match t.purpose {
            DialogFor::Folder => "Open a folder",
            DialogFor::Export(_) => "Export to a file",
        });
        ui.label(format!(
            "No file dialog is available here ({}). Type the path instead.",
            t.why
        ));
        let label = ui.label("Path");
        let r = ui
            .add(egui::TextEdit::singleline(&mut t.text).desired_width(440.0))
            .labelled_by(label.id);
        if std::mem::take(&mut t.focus) {
            r.request_focus();
        }
        if r.changed() {
            // A new path: the question about the old one no longer applies.
            t.replace = None;
            t.problem = None;
        }
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if let Some(problem) = &t.problem {
            ui.colored_label(ui.visuals().error_fg_color, problem);
        }
        if let Some(existing) = &t.replace {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("{} already exists. Replace it?", existing.display()),
            );
            ui.horizontal(|ui| {
                if ui.button("Replace").clicked() {
                    done = Some(true);
                }
                if ui.button("Keep it").clicked() {
                    t.replace = None;
                }
            });
            return;
        }
        ui.horizontal(|ui| {
            if ui.button("OK").clicked() || enter {
                done = Some(true);
            }
            if ui.button("Cancel").clicked() {
                done = Some(false);
            }
        });
    });
    if modal.should_close() {
        done = Some(false);
    }
    done
}

/// Up to `most` names, comma-separated, then "and N more".
fn listed(names: &[String], most: usize) -> String {
    let mut text = names
        .iter()
        .take(most)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > most {
        text.push_str(&format!(" and {} more", names.len() - most));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_exports_refuse_folders_and_photos_and_ask_before_replacing() {
        let tmp = tempfile::tempdir().unwrap();
        let existing = tmp.path().join("exist.json");
        std::fs::write(&existing, "{}").unwrap();
        let photo = tmp.path().join("victim.JPG");
        std::fs::write(&photo, "not really").unwrap();
        assert_eq!(
            typed_export(&tmp.path().join("new.json")),
            TypedExport::Write
        );
        assert_eq!(typed_export(&existing), TypedExport::AskReplace);
        assert!(
            matches!(typed_export(tmp.path()), TypedExport::Refuse(w) if w.contains("is a folder"))
        );
        assert!(
            matches!(typed_export(&photo), TypedExport::Refuse(w) if w.contains("never write over a photo"))
        );
        // A photo's name is refused even before the photo exists.
        assert!(matches!(
            typed_export(&tmp.path().join("later.png")),
            TypedExport::Refuse(_)
        ));
    }

    #[test]
    fn unsaved_captions_on_close_say_they_come_back() {
        let w = Ask::Unsaved {
            count: 3,
            then: Then::Close,
        }
        .wording();
        assert!(
            w.text
                .starts_with("3 captions are not written to their .txt files")
        );
        let one = Ask::Unsaved {
            count: 1,
            then: Then::Close,
        }
        .wording();
        assert!(
            one.text
                .starts_with("1 caption is not written to its .txt file yet."),
            "{}",
            one.text
        );
        assert!(w.text.contains("come back when you open this folder again"));
        assert_eq!(w.no.as_deref(), Some("Close without saving"));
        let w = Ask::Unsaved {
            count: 3,
            then: Then::Open(PathBuf::from("/x")),
        }
        .wording();
        assert!(!w.text.contains("come back"));
        assert_eq!(w.no.as_deref(), Some("Don't save"));
    }

    #[test]
    fn replacing_has_one_answer_and_conflicts_two() {
        let w = Ask::Replace(7).wording();
        assert_eq!(w.yes, "Replace 7 captions");
        let w = Ask::ReplaceSelected {
            photos: vec![1, 2],
            captions: 1,
            start_with: None,
        }
        .wording();
        assert_eq!(w.yes, "Replace 1 caption");
        assert!(
            w.text.contains("the 2 selected photos again replaces"),
            "{}",
            w.text
        );
        let w = Ask::ReplaceSelected {
            photos: vec![1],
            captions: 1,
            start_with: Some(" a cat ".into()),
        }
        .wording();
        assert!(
            w.text
                .contains("Captioning this photo again, starting with \"a cat\", replaces"),
            "{}",
            w.text
        );
        assert_eq!(w.no, None);
        let w = Ask::Conflicts(vec!["a.txt".into(), "sub/b.txt".into()]).wording();
        assert!(w.text.starts_with("2 .txt files changed"), "{}", w.text);
        assert!(w.text.contains(": a.txt, sub/b.txt."), "{}", w.text);
        let many: Vec<String> = (0..11).map(|i| format!("{i}.txt")).collect();
        let w2 = Ask::Conflicts(many).wording();
        assert!(w2.text.contains("7.txt and 3 more"), "{}", w2.text);
        assert!(!w2.text.contains("8.txt"), "{}", w2.text);
        assert_eq!(w.yes, "Overwrite them");
        assert_eq!(w.no.as_deref(), Some("Leave them"));
    }

    #[test]
    fn export_dialogs_suggest_the_kinds_file() {
        match DialogFor::Export(ExportKind::AltCsv).dialog() {
            Dialog::SaveFile { name, extension } => {
                assert_eq!(name, "alt-text.csv");
                assert_eq!(extension, "csv");
            }
            _ => panic!("a save dialog"),
        }
        assert!(matches!(DialogFor::Folder.dialog(), Dialog::PickFolder));
    }
}
