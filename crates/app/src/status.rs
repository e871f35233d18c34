//! The status line: the latest message at the bottom of the window, and a log of the earlier
//! ones. Every error the app meets ends up here, in words; each message is also written to
//! stderr, one line each ("captioner: warning: ..."), so a terminal, the system journal or
//! tools/chaos.sh keeps the app's record of what it did (saves included) after it closes.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

#[derive(Clone, Debug)]
pub struct Message {
    pub level: Level,
    pub text: String,
    pub at: Instant,
}

/// How many messages the log keeps.
const KEEP: usize = 200;

#[derive(Default)]
pub struct Status {
    messages: Vec<Message>,
    show_log: bool,
}

impl Status {
    pub fn info(&mut self, text: impl Into<String>) {
        self.push(Level::Info, text.into());
    }

    pub fn warn(&mut self, text: impl Into<String>) {
        self.push(Level::Warning, text.into());
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.push(Level::Error, text.into());
    }

    fn push(&mut self, level: Level, text: String) {
        let kind = match level {
            Level::Info => "",
            Level::Warning => "warning: ",
            Level::Error => "error: ",
        };
        eprintln!("captioner: {kind}{}", text.replace(['\n', '\r'], " "));
        self.messages.push(Message {
            level,
            text,
            at: Instant::now(),
        });
        if self.messages.len() > KEEP {
            let excess = self.messages.len() - KEEP;
            self.messages.drain(..excess);
        }
    }

    pub fn latest(&self) -> Option<&Message> {
        self.messages.last()
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The status bar: the latest message and a button for the log.
    pub fn bar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = format!("Log ({})", self.messages.len());
            if ui.selectable_label(self.show_log, label).clicked() {
                self.show_log = !self.show_log;
            }
            if let Some(m) = self.messages.last() {
                let text = egui::RichText::new(&m.text).color(color(ui, m.level));
                ui.add(egui::Label::new(text).truncate())
                    .on_hover_text(format!("{} ago: {}", ago(m.at.elapsed()), m.text));
            } else {
                ui.weak("Ready.");
            }
        });
        if self.show_log {
            let mut open = true;
            egui::Window::new("Log")
                .open(&mut open)
                .default_size([560.0, 300.0])
                .show(ui.ctx(), |ui| {
                    if ui.button("Clear").clicked() {
                        self.messages.clear();
                    }
                    egui::ScrollArea::vertical()
                        .stick_to_bottom(true)
                        .show(ui, |ui| {
                            for m in &self.messages {
                                ui.horizontal_wrapped(|ui| {
                                    ui.weak(format!("{:>5} ago", ago(m.at.elapsed())));
                                    ui.label(
                                        egui::RichText::new(&m.text).color(color(ui, m.level)),
                                    );
                                });
                            }
                        });
                });
            self.show_log = open;
        }
    }
}

fn color(ui: &egui::Ui, level: Level) -> egui::Color32 {
    match level {
        Level::Info => ui.visuals().text_color(),
        Level::Warning => ui.visuals().warn_fg_color,
        Level::Error => ui.visuals().error_fg_color,
    }
}

/// A short human duration: "4 s", "3 min", "2 h".
pub fn ago(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", s / 60)
    } else {
        format!("{} h", s / 3600)
    }
}

/// A count with its noun: "1 image", "2 images" (`one` takes an "s" for any other count).
pub fn count(n: usize, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

/// A duration as "1:05:09" or "5:09".
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_formats() {
        assert_eq!(clock(Duration::from_secs(309)), "5:09");
        assert_eq!(clock(Duration::from_secs(3909)), "1:05:09");
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1, "epoch"), "1 epoch");
        assert_eq!(count(0, "image"), "0 images");
        assert_eq!(count(20, "caption"), "20 captions");
    }

    #[test]
    fn log_is_bounded() {
        let mut s = Status::default();
        for i in 0..(KEEP + 10) {
            s.info(format!("{i}"));
        }
        assert_eq!(s.messages().len(), KEEP);
        assert_eq!(s.latest().map(|m| m.text.as_str()), Some("209"));
    }
}
