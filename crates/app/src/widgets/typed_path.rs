//! The typed-path prompt where no file dialog can open (no file-dialog service): a modal
//! window that says why, with a path box, OK and Cancel.

/// What the prompt shows and holds.
pub struct TypedPathPrompt {
    /// The window's heading ("Open a photo").
    pub heading: &'static str,
    /// Why there is no file dialog ([`crate::tasks::dialog_service`]'s reason).
    pub why: String,
    /// The path as typed.
    pub text: String,
    /// Why the path typed last cannot be used (the prompt stays open).
    pub problem: Option<String>,
    /// Give the path box the keyboard next frame (when the prompt opens, and after a problem).
    pub focus: bool,
}

impl TypedPathPrompt {
    /// A prompt with `text` in its path box.
    pub fn new(heading: &'static str, why: String, text: String) -> Self {
        TypedPathPrompt {
            heading,
            why,
            text,
            problem: None,
            focus: true,
        }
    }

    /// Shows the prompt as a modal window: `Some(true)` when OK (or Enter), `Some(false)`
    /// when cancelled or closed, `None` while it is open.
    pub fn show(&mut self, ctx: &egui::Context, id: &'static str) -> Option<bool> {
        let mut done = None;
        let modal = egui::Modal::new(egui::Id::unique(id)).show(ctx, |ui| {
            ui.set_max_width(480.0);
            ui.heading(self.heading);
            ui.label(format!(
                "No file dialog is available here ({}). Type the path instead.",
                self.why
            ));
            let label = ui.label("Path");
            let r = ui
                .add(egui::TextEdit::singleline(&mut self.text).desired_width(440.0))
                .labelled_by(label.id);
            if std::mem::take(&mut self.focus) {
                r.request_focus();
            }
            if r.changed() {
                self.problem = None;
            }
            let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if let Some(problem) = &self.problem {
                ui.colored_label(ui.visuals().error_fg_color, problem);
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
}
