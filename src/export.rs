//! Writing a batch's captions out: `.txt` sidecars next to the images, one CSV, or one JSON
//! file. Every file is written atomically (temporary file, then rename), and a sidecar that
//! already exists is overwritten only when the caller says so.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::files::write_atomic;

fn lossy_path<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// The exact bytes of a path that is not valid UTF-8, in hexadecimal (`None` for UTF-8 paths).
fn non_utf8_hex(path: &Path) -> Option<String> {
    if path.to_str().is_some() {
        return None;
    }
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().into_owned().into_bytes();
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// One captioned image to export.
///
/// File names that are not valid UTF-8 (possible on Linux) cannot be JSON or CSV strings: they
/// are written with U+FFFD in place of the bad bytes, and JSON adds `path_hex`, the exact bytes
/// of the path in hexadecimal, so nothing is lost. Newlines, tabs, commas and quotes in names
/// are quoted as CSV and JSON require.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportRow {
    /// The image's name relative to the batch folder (its file name for loose files).
    pub image: String,
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    pub caption: String,
    /// Geometric mean of the word probabilities (absent for captions typed by hand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    /// Whether the caption was edited by hand.
    pub edited: bool,
    /// The model's flag that the caption is probably wrong (absent without a calibrated model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_review: Option<bool>,
    /// Keywords for the photo (written to metadata as `dc:subject`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// What an export did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportReport {
    pub written: usize,
    /// Sidecars left alone because they existed and overwriting was not chosen.
    pub skipped: usize,
    /// `path: reason` for each file that could not be written.
    pub failed: Vec<String>,
}

impl ExportReport {
    pub fn describe(&self, what: &str) -> String {
        let mut s = format!("{what}: {} written", self.written);
        if self.skipped > 0 {
            s.push_str(&format!(", {} existing left alone", self.skipped));
        }
        if !self.failed.is_empty() {
            s.push_str(&format!(
                ", {} failed (first: {})",
                self.failed.len(),
                self.failed[0]
            ));
        }
        s
    }
}

/// The sidecar of an image: same path, `.txt` extension.
pub fn sidecar_path(image: &Path) -> PathBuf {
    crate::sidecar::sidecar_path(image)
}

/// How many of these images already have a sidecar.
pub fn count_existing_sidecars(images: &[PathBuf]) -> usize {
    images.iter().filter(|p| sidecar_path(p).exists()).count()
}

/// What an export does with a caption that is already there (a `.txt` sidecar, or a
/// description in the photo's metadata).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Existing {
    /// Leave it as it is (the photo is counted as skipped).
    #[default]
    Skip,
    /// Replace it with the new caption.
    Overwrite,
    /// Keep it and add the new caption after it ([`appended`]).
    Append,
}

impl Existing {
    pub const ALL: [Existing; 3] = [Existing::Skip, Existing::Overwrite, Existing::Append];

    /// For `--existing`.
    pub fn parse(s: &str) -> Result<Existing, String> {
        match s {
            "skip" => Ok(Existing::Skip),
            "overwrite" | "replace" => Ok(Existing::Overwrite),
            "append" => Ok(Existing::Append),
            other => Err(format!("`{other}`: expected skip, overwrite or append")),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Existing::Skip => "keep existing captions",
            Existing::Overwrite => "replace existing captions",
            Existing::Append => "append to existing captions",
        }
    }
}

/// `prefix caption suffix`, with single spaces where the parts meet (a trigger word before
/// every caption, say).
pub fn with_prefix_suffix(caption: &str, prefix: &str, suffix: &str) -> String {
    [prefix.trim(), caption.trim(), suffix.trim()]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `old` with `new` added after it: `"sks dog" + "a dog runs"` is `"sks dog, a dog runs"`
/// (after a sentence's end, just a space). An `old` that already ends with `new` (an append
/// done before) stays as it is, so exporting twice does not repeat the caption.
pub fn appended(old: &str, new: &str) -> String {
    let (old, new) = (old.trim(), new.trim());
    if old.is_empty() {
        return new.to_string();
    }
    if new.is_empty() || old.ends_with(new) {
        return old.to_string();
    }
    let sep = if old.ends_with(['.', '!', '?', ',', ';', ':']) {
        " "
    } else {
        ", "
    };
    format!("{old}{sep}{new}")
}

/// Writes each row's caption to the `.txt` sidecar beside its image (atomically). Existing
/// sidecars are handled as `existing` says; the lines after an existing sidecar's first are
/// kept; a sidecar that is not UTF-8 text is replaced only with [`Existing::Overwrite`].
/// Photos that share a sidecar (`a.jpg` and `a.png` -> `a.txt`): only the first row's caption
/// is written; the others are reported as not written, never written over it.
pub fn write_sidecars(rows: &[ExportRow], existing: Existing) -> ExportReport {
    use crate::sidecar::{WriteMode, WriteOutcome, read, replace_caption};
    let mut report = ExportReport::default();
    let mut taken: std::collections::HashMap<PathBuf, &Path> = Default::default();
    for row in rows {
        let path = sidecar_path(&row.path);
        if let Some(first) = taken.get(&path) {
            report.failed.push(format!(
                "{}: not written for {}: {} shares this sidecar and its caption was kept",
                path.display(),
                row.path.display(),
                first.display()
            ));
            continue;
        }
        taken.insert(path.clone(), &row.path);
        let (caption, mode) = match existing {
            Existing::Skip => (row.caption.clone(), WriteMode::Skip),
            Existing::Overwrite => (row.caption.clone(), WriteMode::Overwrite),
            Existing::Append => match read(&path) {
                Ok(old) => (
                    appended(
                        old.map(|o| o.caption).as_deref().unwrap_or(""),
                        &row.caption,
                    ),
                    WriteMode::Overwrite,
                ),
                Err(e) => {
                    report.failed.push(e.to_string());
                    continue;
                }
            },
        };
        match replace_caption(&path, &caption, mode) {
            Ok(WriteOutcome::Written | WriteOutcome::Unchanged) => report.written += 1,
            Ok(WriteOutcome::SkippedExisting) => report.skipped += 1,
            Err(e) => report.failed.push(e.to_string()),
        }
    }
    report
}

/// The rows as CSV with header `image,caption` (the Kaggle captions layout), plus the
/// confidence.
pub fn to_csv(rows: &[ExportRow]) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| format!("cannot write CSV: {e}");
    w.write_record([
        "image",
        "caption",
        "confidence",
        "edited",
        "needs_review",
        "tags",
    ])
    .map_err(err)?;
    for r in rows {
        let confidence = r.confidence.map(|c| format!("{c:.4}")).unwrap_or_default();
        let review = match r.needs_review {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        w.write_record([
            r.image.as_str(),
            r.caption.trim(),
            confidence.as_str(),
            if r.edited { "yes" } else { "no" },
            review,
            r.tags.join(", ").as_str(),
        ])
        .map_err(err)?;
    }
    w.into_inner().map_err(|e| format!("cannot write CSV: {e}"))
}

/// The rows as a JSON array (a path that is not UTF-8 also gets `path_hex`, see [`ExportRow`]).
pub fn to_json(rows: &[ExportRow]) -> Result<Vec<u8>, String> {
    let err = |e: serde_json::Error| format!("cannot write JSON: {e}");
    let values = rows
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).map_err(err)?;
            if let (Some(hex), Some(obj)) = (non_utf8_hex(&r.path), v.as_object_mut()) {
                obj.insert("path_hex".into(), hex.into());
            }
            Ok(v)
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut bytes = serde_json::to_vec_pretty(&values).map_err(err)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Where a metadata export writes the caption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataTarget {
    /// `photo.xmp` beside the photo (`dc:description`, `dc:subject`).
    XmpSidecar,
    /// Into the JPEG or PNG itself (XMP, and EXIF `ImageDescription` for JPEG), without
    /// re-encoding the image data.
    Embedded,
}

/// Writes each caption (and its tags) as photo metadata. A photo that already carries a
/// description (in a sidecar or embedded) is handled as `existing` says; a photo that
/// cannot be written (read-only, not JPEG/PNG, corrupt) is reported and left byte-for-byte
/// as it was; the rest go on.
pub fn write_metadata(
    rows: &[ExportRow],
    target: MetadataTarget,
    existing: Existing,
) -> ExportReport {
    use crate::metadata::{self, Described};
    let mut report = ExportReport::default();
    for row in rows {
        let mut caption = row.caption.trim().to_string();
        if caption.is_empty() {
            continue;
        }
        let mut subjects = row.tags.clone();
        if existing != Existing::Overwrite {
            match metadata::read_description(&row.path) {
                Ok(Some(_)) if existing == Existing::Skip => {
                    report.skipped += 1;
                    continue;
                }
                Ok(Some(old)) => {
                    caption = appended(&old.caption, &caption);
                    // The tags already there stay, first; new ones follow.
                    let mut all = old.subjects;
                    for t in subjects {
                        if !all.contains(&t) {
                            all.push(t);
                        }
                    }
                    subjects = all;
                }
                Ok(None) => {}
                Err(e) => {
                    report.failed.push(e.to_string());
                    continue;
                }
            }
        }
        let described = Described { caption, subjects };
        let result = match target {
            MetadataTarget::XmpSidecar => {
                metadata::write_sidecar(&row.path, &described).map(|_| ())
            }
            MetadataTarget::Embedded => metadata::embed_description(&row.path, &described),
        };
        match result {
            Ok(()) => report.written += 1,
            Err(e) => report.failed.push(e.to_string()),
        }
    }
    report
}

fn alt_list(rows: &[ExportRow]) -> Vec<crate::metadata::alt_text::AltText> {
    rows.iter()
        .map(|r| crate::metadata::alt_text::AltText {
            file: r.path.clone(),
            alt: r.caption.trim().to_string(),
            confidence: r.confidence,
            tags: r.tags.clone(),
        })
        .collect()
}

/// An HTML page with one `<img src alt>` per photo, for alt text (paths relative to the page's
/// folder `out_dir`).
pub fn to_alt_html(rows: &[ExportRow], out_dir: &Path, title: &str) -> Vec<u8> {
    crate::metadata::alt_text::html_page(&alt_list(rows), out_dir, title).into_bytes()
}

/// Alt text as CSV with the columns accessibility tools take: `file,alt_text,confidence,tags`
/// (files relative to the CSV's folder `out_dir`).
pub fn to_alt_csv(rows: &[ExportRow], out_dir: &Path) -> Result<Vec<u8>, String> {
    crate::metadata::alt_text::csv(&alt_list(rows), out_dir)
        .map(String::into_bytes)
        .map_err(|e| format!("cannot write CSV: {e}"))
}

/// Alt text as a JSON array of `{"file", "alt_text", "confidence", "tags"}`.
pub fn to_alt_json(rows: &[ExportRow], out_dir: &Path) -> Result<Vec<u8>, String> {
    crate::metadata::alt_text::json(&alt_list(rows), out_dir)
        .map(|mut s| {
            s.push('\n');
            s.into_bytes()
        })
        .map_err(|e| format!("cannot write JSON: {e}"))
}

/// Writes `bytes` to `path` atomically and reports it.
pub fn write_file(path: &Path, bytes: &[u8], rows: usize) -> ExportReport {
    match write_atomic(path, bytes) {
        Ok(()) => ExportReport {
            written: rows,
            ..ExportReport::default()
        },
        Err(e) => ExportReport {
            failed: vec![format!("{}: {e}", path.display())],
            ..ExportReport::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(dir: &Path, name: &str, caption: &str) -> ExportRow {
        ExportRow {
            image: name.to_string(),
            path: dir.join(name),
            caption: caption.to_string(),
            confidence: Some(0.5),
            edited: false,
            needs_review: None,
            tags: Vec::new(),
        }
    }

    #[test]
    fn appended_joins_once() {
        assert_eq!(appended("sks dog", "a dog runs"), "sks dog, a dog runs");
        assert_eq!(
            appended("A dog runs.", "It is wet"),
            "A dog runs. It is wet"
        );
        assert_eq!(appended("", " a dog "), "a dog");
        assert_eq!(appended("mine", ""), "mine");
        // Appending again does not repeat the caption.
        let once = appended("sks dog", "a dog runs");
        assert_eq!(appended(&once, "a dog runs"), once);
        assert_eq!(Existing::parse("append"), Ok(Existing::Append));
        assert!(Existing::parse("merge").is_err());
    }

    #[test]
    fn sidecars_append_keeps_the_old_caption_and_extra_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("a.txt"), "sks photo\nsecond line\n").unwrap();
        std::fs::write(d.join("c.txt"), b"bad \xff\n").unwrap();
        let rows = vec![
            row(d, "a.jpg", "a dog"),
            row(d, "b.jpg", "a cat"),
            row(d, "c.jpg", "a cow"),
        ];
        let r = write_sidecars(&rows, Existing::Append);
        assert_eq!((r.written, r.skipped, r.failed.len()), (2, 0, 1), "{r:?}");
        assert!(r.failed[0].contains("c.txt"), "{:?}", r.failed);
        assert_eq!(
            std::fs::read_to_string(d.join("a.txt")).unwrap(),
            "sks photo, a dog\nsecond line\n"
        );
        assert_eq!(std::fs::read_to_string(d.join("b.txt")).unwrap(), "a cat\n");
        assert_eq!(std::fs::read(d.join("c.txt")).unwrap(), b"bad \xff\n");
        // A second export changes nothing.
        write_sidecars(&rows, Existing::Append);
        assert_eq!(
            std::fs::read_to_string(d.join("a.txt")).unwrap(),
            "sks photo, a dog\nsecond line\n"
        );
    }

    #[test]
    fn metadata_skip_overwrite_and_append() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        image::RgbImage::new(8, 8).save(d.join("a.png")).unwrap();
        let mut r0 = row(d, "a.png", "old words");
        r0.tags = vec!["old".into()];
        let r = write_metadata(&[r0], MetadataTarget::XmpSidecar, Existing::Overwrite);
        assert_eq!(r.written, 1, "{r:?}");
        let mut new = row(d, "a.png", "a dog runs");
        new.tags = vec!["dog".into(), "old".into()];
        let r = write_metadata(
            std::slice::from_ref(&new),
            MetadataTarget::XmpSidecar,
            Existing::Skip,
        );
        assert_eq!((r.written, r.skipped), (0, 1));
        let read = || {
            crate::metadata::read_description(&d.join("a.png"))
                .unwrap()
                .unwrap()
        };
        assert_eq!(read().caption, "old words");
        let r = write_metadata(
            std::slice::from_ref(&new),
            MetadataTarget::XmpSidecar,
            Existing::Append,
        );
        assert_eq!(r.written, 1);
        assert_eq!(read().caption, "old words, a dog runs");
        assert_eq!(read().subjects, vec!["old".to_string(), "dog".to_string()]);
        write_metadata(
            std::slice::from_ref(&new),
            MetadataTarget::XmpSidecar,
            Existing::Overwrite,
        );
        assert_eq!(read().caption, "a dog runs");
    }

    #[test]
    fn sidecars_skip_existing_unless_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("a.txt"), "mine\n").unwrap();
        let rows = vec![row(d, "a.jpg", "a dog"), row(d, "b.jpg", "a cat ")];
        assert_eq!(
            count_existing_sidecars(&[d.join("a.jpg"), d.join("b.jpg")]),
            1
        );
        let r = write_sidecars(&rows, Existing::Skip);
        assert_eq!((r.written, r.skipped), (1, 1));
        assert_eq!(std::fs::read_to_string(d.join("a.txt")).unwrap(), "mine\n");
        assert_eq!(std::fs::read_to_string(d.join("b.txt")).unwrap(), "a cat\n");
        let r = write_sidecars(&rows, Existing::Overwrite);
        assert_eq!((r.written, r.skipped), (2, 0));
        assert_eq!(std::fs::read_to_string(d.join("a.txt")).unwrap(), "a dog\n");
        // A sidecar with more lines keeps them when its caption is replaced.
        std::fs::write(d.join("a.txt"), "old\r\nsecond caption\r\n").unwrap();
        write_sidecars(&rows, Existing::Overwrite);
        assert_eq!(
            std::fs::read_to_string(d.join("a.txt")).unwrap(),
            "a dog\nsecond caption\n"
        );
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn photos_sharing_a_sidecar_never_write_over_each_other() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let rows = vec![
            row(d, "a.jpg", "a dog"),
            row(d, "a.png", "a cat"),
            row(d, "b.jpg", "a bird"),
        ];
        for existing in Existing::ALL {
            let r = write_sidecars(&rows, existing);
            assert_eq!(r.failed.len(), 1, "{existing:?}: {:?}", r.failed);
            assert!(
                r.failed[0].contains("a.png") && r.failed[0].contains("a.jpg"),
                "{:?}",
                r.failed
            );
            assert_eq!(
                std::fs::read_to_string(d.join("a.txt")).unwrap(),
                "a dog\n",
                "{existing:?}"
            );
            assert_eq!(
                std::fs::read_to_string(d.join("b.txt")).unwrap(),
                "a bird\n"
            );
        }
    }

    #[test]
    fn unwritable_sidecar_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("file-not-dir");
        std::fs::write(&missing, "x").unwrap();
        // The image's folder is a file: the sidecar cannot be created.
        let rows = vec![row(&missing, "a.jpg", "a dog")];
        let r = write_sidecars(&rows, Existing::Skip);
        assert_eq!(r.written, 0);
        assert_eq!(r.failed.len(), 1);
        assert!(r.describe("sidecars").contains("1 failed"));
    }

    #[test]
    fn csv_and_json_round_trip() {
        let d = Path::new("/x");
        let rows = vec![
            row(d, "a.jpg", "a dog, running"),
            row(d, "b.jpg", "say \"hi\""),
        ];
        let csv_bytes = to_csv(&rows).unwrap();
        let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
        let recs: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(&recs[0][1], "a dog, running");
        assert_eq!(&recs[1][1], "say \"hi\"");
        let json: serde_json::Value = serde_json::from_slice(&to_json(&rows).unwrap()).unwrap();
        assert_eq!(json[0]["caption"], "a dog, running");
        assert_eq!(json[1]["image"], "b.jpg");
    }
}

#[cfg(all(test, unix))]
mod odd_names {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// Names that are not UTF-8, or hold newlines, tabs, commas and quotes, survive CSV, JSON
    /// and sidecars.
    #[test]
    fn odd_file_names_survive_every_export() {
        let t = tempfile::tempdir().unwrap();
        let names: Vec<std::ffi::OsString> = vec![
            std::ffi::OsStr::from_bytes(b"caf\xe9 latin1.jpg").to_os_string(),
            "line\nbreak, \"quoted\"\ttab.jpg".into(),
        ];
        let rows: Vec<ExportRow> = names
            .iter()
            .map(|n| {
                let path = t.path().join(n);
                std::fs::write(&path, b"x").unwrap();
                ExportRow {
                    image: path.file_name().unwrap().to_string_lossy().into_owned(),
                    path,
                    caption: "a \"dog\", running".into(),
                    confidence: Some(0.5),
                    edited: false,
                    needs_review: None,
                    tags: Vec::new(),
                }
            })
            .collect();
        // JSON: the exact bytes come back from path_hex.
        let json: serde_json::Value = serde_json::from_slice(&to_json(&rows).unwrap()).unwrap();
        let hex = json[0]["path_hex"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(bytes, rows[0].path.as_os_str().as_bytes());
        assert!(json[1].get("path_hex").is_none());
        assert_eq!(json[1]["image"], "line\nbreak, \"quoted\"\ttab.jpg");
        // CSV: quoted fields read back whole.
        let csv_bytes = to_csv(&rows).unwrap();
        let mut r = csv::Reader::from_reader(csv_bytes.as_slice());
        let records: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(&records[1][0], "line\nbreak, \"quoted\"\ttab.jpg");
        assert_eq!(&records[1][1], "a \"dog\", running");
        // Sidecars land beside each photo, whatever its name.
        let report = write_sidecars(&rows, Existing::Skip);
        assert_eq!(report.written, 2, "{:?}", report.failed);
        for row in &rows {
            let text = std::fs::read_to_string(sidecar_path(&row.path)).unwrap();
            assert_eq!(text, "a \"dog\", running\n");
        }
    }
}
