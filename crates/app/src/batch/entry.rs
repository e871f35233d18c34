//! How one photo's state reads, in the grid and the preview alike: where its caption came from,
//! what is wrong with it, and whether the model flagged its caption.

use super::session::{Disk, Entry, Photo, Source};

/// A machine caption the model flagged for review.
pub fn flagged_by_model(e: &Entry) -> bool {
    e.cell.source == Source::Machine && e.cell.needs_review == Some(true)
}

/// What is wrong with a photo or its sidecar, in words.
pub fn problems(e: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(f) = &e.failed {
        out.push(format!("could not caption: {f}"));
    }
    if let Disk::Unreadable(m) = &e.disk {
        out.push(m.clone());
    }
    if let Disk::Text(s) = &e.disk
        && !s.extra.is_empty()
    {
        out.push(format!(
            "its .txt file has {} more lines, kept when saving",
            s.extra.len()
        ));
    }
    match e.photo {
        Photo::Present => {}
        Photo::Missing => out.push("the photo is gone from the folder".into()),
        Photo::Changed => out.push("the photo changed since it was opened".into()),
    }
    out
}

/// Where the caption came from, as a small coloured word with an explanation on hover.
pub fn source_badge(ui: &mut egui::Ui, e: &Entry) -> egui::Response {
    let (text, color) = match e.cell.source {
        Source::Empty if e.failed.is_some() => ("failed", ui.visuals().error_fg_color),
        Source::Empty => ("uncaptioned", ui.visuals().weak_text_color()),
        Source::Existing => ("existing", egui::Color32::from_rgb(110, 160, 230)),
        Source::Machine => ("machine", egui::Color32::from_rgb(200, 170, 90)),
        Source::Edited => ("edited", egui::Color32::from_rgb(120, 200, 120)),
    };
    ui.label(egui::RichText::new(text).small().color(color))
        .on_hover_text(match e.cell.source {
            Source::Empty => "no caption yet",
            Source::Existing => "read from the photo's .txt file or its metadata",
            Source::Machine => "written by the model",
            Source::Edited => "changed by you",
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::session::Cell;

    fn entry() -> Entry {
        Entry::new("/no/such/photo.jpg".into(), "photo.jpg".into())
    }

    #[test]
    fn only_machine_captions_can_be_flagged() {
        let mut e = entry();
        e.cell = Cell {
            caption: "a dog".into(),
            source: Source::Machine,
            needs_review: Some(true),
            ..Cell::default()
        };
        assert!(flagged_by_model(&e));
        e.cell.needs_review = Some(false);
        assert!(!flagged_by_model(&e));
        e.cell.needs_review = Some(true);
        // The user's edit settles it.
        e.cell.source = Source::Edited;
        assert!(!flagged_by_model(&e));
    }

    #[test]
    fn problems_name_each_thing_wrong() {
        let mut e = entry();
        assert!(problems(&e).is_empty());
        e.failed = Some("not a JPEG".into());
        e.photo = Photo::Missing;
        e.disk = Disk::Unreadable("photo.txt: line 1 is not UTF-8".into());
        assert_eq!(
            problems(&e),
            [
                "could not caption: not a JPEG",
                "photo.txt: line 1 is not UTF-8",
                "the photo is gone from the folder",
            ]
        );
        e.photo = Photo::Changed;
        assert!(
            problems(&e)
                .last()
                .is_some_and(|p| p.contains("changed since"))
        );
    }
}
