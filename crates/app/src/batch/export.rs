//! The batch's captions out: CSV and JSON files, alt text (an HTML page, CSV, JSON) and photo
//! metadata (XMP sidecars or embedded), each written on a thread of its own.

use std::path::PathBuf;

use super::BatchPanel;
use super::entry::flagged_by_model;
use super::session::{Entry, Source};
use crate::Shared;
use crate::tasks::{self, Pending};
use captioner::export::{self, ExportRow};

pub use captioner::export::ExportKind;

/// The rows an export writes: every photo with a caption, in folder order. Only a machine
/// caption carries the model's review flag (the user's word settles an edited one).
pub fn export_rows(entries: &[Entry]) -> Vec<ExportRow> {
    entries
        .iter()
        .filter(|e| e.has_caption())
        .map(|e| ExportRow {
            confidence: e.cell.confidence,
            needs_review: (e.cell.source == Source::Machine)
                .then_some(e.cell.needs_review)
                .flatten(),
            review_reason: flagged_by_model(e)
                .then_some(e.cell.review_reason)
                .flatten(),
            review_detail: flagged_by_model(e)
                .then(|| e.cell.review_detail.clone())
                .flatten(),
            tags: e.cell.tags.clone(),
            alternatives: e
                .cell
                .alternatives
                .iter()
                .map(export::Alternative::unscored)
                .collect(),
            ..ExportRow::new(
                e.name.clone(),
                e.path.clone(),
                e.cell.caption.trim().to_string(),
                match e.cell.source {
                    Source::Edited => export::CaptionSource::Edited,
                    Source::Machine => export::CaptionSource::Machine,
                    Source::Existing | Source::Empty => export::CaptionSource::Existing,
                },
            )
        })
        .collect()
}

impl BatchPanel {
    /// Writes the CSV or JSON file to `path` (atomically).
    pub fn export_to_file(&mut self, kind: ExportKind, path: PathBuf, shared: &mut Shared) {
        let rows = export_rows(self.entries());
        match Pending::spawn(&shared.ctx, "export-file", move || {
            let what = path.display().to_string();
            let report = export::export_file(&rows, kind, &path, "Photo descriptions");
            (what, report)
        }) {
            Ok(p) => self.export = Some(p),
            Err(e) => shared.status.error(e),
        }
    }

    /// Writes the captions (and tags) as photo metadata: XMP sidecars or embedded in the photos.
    /// A description already there is kept, replaced or appended to, as `existing` says.
    pub fn export_metadata(
        &mut self,
        target: export::MetadataTarget,
        existing: export::Existing,
        shared: &mut Shared,
    ) {
        let rows = export_rows(self.entries());
        match Pending::spawn(&shared.ctx, "export-metadata", move || {
            let what = match target {
                export::MetadataTarget::XmpSidecar => "XMP sidecars",
                export::MetadataTarget::Embedded => "descriptions embedded in photos",
            };
            (
                what.to_string(),
                export::write_metadata(&rows, target, existing),
            )
        }) {
            Ok(p) => self.export = Some(p),
            Err(e) => shared.status.error(e),
        }
    }

    /// Exports as CSV to `path`.
    pub fn export_csv(&mut self, path: PathBuf, shared: &mut Shared) {
        self.export_to_file(ExportKind::Csv, path, shared);
    }

    /// Exports as JSON to `path`.
    pub fn export_json(&mut self, path: PathBuf, shared: &mut Shared) {
        self.export_to_file(ExportKind::Json, path, shared);
    }

    /// Reports a finished export on the status line.
    pub(super) fn poll_export(&mut self, shared: &mut Shared) {
        match tasks::take_ready(&mut self.export) {
            Some(Ok((what, report))) => {
                let text = report.describe(&what);
                if report.failed.is_empty() {
                    shared.status.info(&text);
                } else {
                    shared.status.error(&text);
                }
                self.last_report = Some(text);
            }
            Some(Err(e)) => shared.status.error(e),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::session::Cell;

    #[test]
    fn only_captioned_photos_are_exported_and_only_machine_captions_keep_the_flag() {
        let mut entries: Vec<Entry> = ["a.jpg", "b.jpg", "c.jpg"]
            .iter()
            .map(|n| Entry::new(PathBuf::from("/no/such").join(n), n.to_string()))
            .collect();
        entries[0].cell = Cell {
            caption: "  a dog runs ".into(),
            source: Source::Machine,
            confidence: Some(0.4),
            needs_review: Some(true),
            review_reason: Some(captioner::trust::ReviewReason::Unfamiliar),
            review_detail: Some("unlike the training photos".into()),
            tags: vec!["dog".into()],
            ..Cell::default()
        };
        entries[2].cell = Cell {
            caption: "my cat".into(),
            source: Source::Edited,
            needs_review: Some(true),
            ..Cell::default()
        };
        let rows = export_rows(&entries);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].image, "a.jpg");
        assert_eq!(rows[0].caption, "a dog runs");
        assert_eq!(rows[0].needs_review, Some(true));
        assert_eq!(rows[0].confidence, Some(0.4));
        assert_eq!(rows[0].tags, ["dog"]);
        assert_eq!(
            rows[0].review_reason,
            Some(captioner::trust::ReviewReason::Unfamiliar)
        );
        assert_eq!(
            rows[0].review_detail.as_deref(),
            Some("unlike the training photos")
        );
        assert!(!rows[0].edited());
        assert_eq!(rows[1].image, "c.jpg");
        assert!(rows[1].edited());
        assert_eq!(rows[1].needs_review, None);
        assert_eq!(rows[1].review_reason, None);
    }

    #[test]
    fn each_kind_suggests_a_name_with_its_extension() {
        for kind in [
            ExportKind::Csv,
            ExportKind::Json,
            ExportKind::AltHtml,
            ExportKind::AltCsv,
            ExportKind::AltJson,
        ] {
            let name = kind.file_name();
            assert!(name.ends_with(&format!(".{}", kind.extension())), "{name}");
        }
        assert_eq!(ExportKind::AltHtml.file_name(), "alt-text.html");
        assert_eq!(ExportKind::Json.file_name(), "captions.json");
    }
}
