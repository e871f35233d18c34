//! Writing a batch's captions out, for both front ends (`captioner batch` and the Batch panel
//! call the same functions): `.txt` sidecars next to the images, photo metadata, alt text, and
//! one CSV or JSON file of [`ExportRow`] records (the format is documented in
//! `docs/formats.md`). Every file is written atomically (temporary file, then rename), and a
//! caption that already exists is replaced only when the caller says so.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::decoder::AttentionMaps;
use crate::files::write_atomic;
use crate::pipeline::{CaptionResult, ScoredWord, WordGrounding};

/// Which part of the model wrote a machine caption (`caption_source` in JSON: `decoder` or
/// `classifier`); the same as [`crate::pipeline::CaptionSource`].
pub type GeneratedBy = crate::pipeline::CaptionSource;
use crate::trust::ReviewReason;

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

/// Where an exported caption came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptionSource {
    /// Written by the model (in this run, or in the Batch panel's session).
    Machine,
    /// Typed or changed by a person (a beam alternative picked by hand counts as edited).
    Edited,
    /// Already there: read from the photo's `.txt` sidecar or its metadata.
    Existing,
}

impl CaptionSource {
    /// The name written in JSON and CSV (`machine`, `edited`, `existing`).
    pub fn name(self) -> &'static str {
        match self {
            CaptionSource::Machine => "machine",
            CaptionSource::Edited => "edited",
            CaptionSource::Existing => "existing",
        }
    }
}

/// One of the beam's captions.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Alternative {
    pub text: String,
    /// Its length-normalised log-probability (`None` where the front end does not keep it:
    /// the Batch panel's session keeps only the texts).
    pub score: Option<f32>,
}

impl Alternative {
    /// An alternative without its score.
    pub fn unscored(text: impl Into<String>) -> Alternative {
        Alternative {
            text: text.into(),
            score: None,
        }
    }
}

/// What the model reported about a caption beyond its confidence, review flag and tags. The
/// command line has them for every caption it writes; the Batch panel's session does not keep
/// them, so its exports have `None` (written as `null` and `[]`, see `docs/formats.md`).
#[derive(Clone, Debug, PartialEq)]
pub struct CaptionDetails {
    /// How much the photo looks like the model's training photos (0..1).
    pub familiarity: Option<f32>,
    /// The geometric mean of the word probabilities.
    pub word_probability_geomean: f32,
    /// The model's caption word by word, each with its probability (before prefix and suffix).
    pub words: Vec<ScoredWord>,
    /// Encode + decode time in milliseconds.
    pub millis: f64,
    /// Where the decoder looked for each of `words` (attention models only).
    pub attention: Option<AttentionMaps>,
    /// How well the photo supports each content word (empty when not grounded).
    pub grounding: Vec<WordGrounding>,
    /// Whether the decoder or the image classifier wrote the caption.
    pub caption_source: GeneratedBy,
    /// Why the caption is not grounded, or that the classifier wrote it.
    pub grounding_note: Option<String>,
}

/// One captioned image to export: the one record both front ends write (`captioner batch`
/// and the Batch panel), as CSV ([`to_csv`]), JSON ([`to_json`], the record's [`Serialize`]
/// form), sidecars or metadata. `docs/formats.md` documents the JSON and CSV fields.
///
/// File names that are not valid UTF-8 (possible on Linux) cannot be JSON or CSV strings: they
/// are written with U+FFFD in place of the bad bytes, and JSON adds `path_hex`, the exact bytes
/// of the path in hexadecimal, so nothing is lost. Newlines, tabs, commas and quotes in names
/// are quoted as CSV and JSON require.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportRow {
    /// The image's name relative to the batch folder (its file name for loose files).
    pub image: String,
    /// The image file.
    pub path: PathBuf,
    /// The caption as exported (prefix and suffix included).
    pub caption: String,
    /// Where the caption came from.
    pub source: CaptionSource,
    /// The model's confidence in the caption (0..1; absent for captions typed by hand).
    pub confidence: Option<f32>,
    /// The model's flag that the caption is probably wrong (absent without a calibrated model).
    pub needs_review: Option<bool>,
    /// Why the caption needs review (with `needs_review`).
    pub review_reason: Option<ReviewReason>,
    /// Specifics of the reason, for people.
    pub review_detail: Option<String>,
    /// Keywords for the photo (written to metadata as `dc:subject`).
    pub tags: Vec<String>,
    /// The beam's captions, best first (prefix and suffix included).
    pub alternatives: Vec<Alternative>,
    /// The model's other figures, where the front end has them.
    pub details: Option<CaptionDetails>,
}

impl ExportRow {
    /// A row with only a caption: no confidence, flag, tags, alternatives or details.
    pub fn new(image: String, path: PathBuf, caption: String, source: CaptionSource) -> ExportRow {
        ExportRow {
            image,
            path,
            caption,
            source,
            confidence: None,
            needs_review: None,
            review_reason: None,
            review_detail: None,
            tags: Vec::new(),
            alternatives: Vec::new(),
            details: None,
        }
    }

    /// The row of a machine caption with everything the model reported; `prefix` and `suffix`
    /// go around the caption and its alternatives ([`with_prefix_suffix`]).
    pub fn machine(
        image: String,
        path: PathBuf,
        result: &CaptionResult,
        prefix: &str,
        suffix: &str,
    ) -> ExportRow {
        ExportRow {
            confidence: result.confidence,
            needs_review: result.needs_review,
            review_reason: result.review_reason,
            review_detail: result.review_detail.clone(),
            tags: result.tags.clone(),
            alternatives: result
                .alternatives
                .iter()
                .map(|a| Alternative {
                    text: with_prefix_suffix(&a.text, prefix, suffix),
                    score: Some(a.score),
                })
                .collect(),
            details: Some(CaptionDetails {
                familiarity: result.familiarity,
                word_probability_geomean: result.word_probability_geomean(),
                words: result.words.clone(),
                millis: result.millis,
                attention: result.attention.clone(),
                grounding: result.grounding.clone(),
                caption_source: result.source,
                grounding_note: result.grounding_note.clone(),
            }),
            ..ExportRow::new(
                image,
                path,
                with_prefix_suffix(&result.text, prefix, suffix),
                CaptionSource::Machine,
            )
        }
    }

    /// Whether a person wrote or changed the caption.
    pub fn edited(&self) -> bool {
        self.source == CaptionSource::Edited
    }
}

/// The JSON record of an [`ExportRow`]: every field always present (`null` or `[]` when
/// unknown), `path_hex` only for a path that is not UTF-8.
#[derive(Serialize)]
struct Record<'a> {
    image: &'a str,
    path: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_hex: Option<String>,
    caption: &'a str,
    source: CaptionSource,
    edited: bool,
    confidence: Option<f32>,
    needs_review: Option<bool>,
    review_reason: Option<ReviewReason>,
    warning: Option<&'static str>,
    review_detail: Option<&'a str>,
    familiarity: Option<f32>,
    word_probability_geomean: Option<f32>,
    tags: &'a [String],
    words: &'a [ScoredWord],
    alternatives: &'a [Alternative],
    millis: Option<f64>,
    attention: Option<&'a AttentionMaps>,
    grounding: &'a [WordGrounding],
    caption_source: Option<GeneratedBy>,
    grounding_note: Option<&'a str>,
}

impl Serialize for ExportRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.details.as_ref();
        let reason = self.review_reason;
        Record {
            image: &self.image,
            path: self.path.to_string_lossy(),
            path_hex: non_utf8_hex(&self.path),
            caption: self.caption.trim(),
            source: self.source,
            edited: self.edited(),
            confidence: self.confidence,
            needs_review: self.needs_review,
            review_reason: reason,
            warning: reason.map(ReviewReason::warning),
            review_detail: self.review_detail.as_deref(),
            familiarity: d.and_then(|d| d.familiarity),
            word_probability_geomean: d.map(|d| d.word_probability_geomean),
            tags: &self.tags,
            words: d.map_or(&[], |d| d.words.as_slice()),
            alternatives: &self.alternatives,
            millis: d.map(|d| d.millis),
            attention: d.and_then(|d| d.attention.as_ref()),
            grounding: d.map_or(&[], |d| d.grounding.as_slice()),
            caption_source: d.map(|d| d.caption_source),
            grounding_note: d.and_then(|d| d.grounding_note.as_deref()),
        }
        .serialize(s)
    }
}

/// A JSON record read back ([`ExportRow`]'s `Deserialize`): the fields [`Record`] writes
/// (`edited` and `warning` follow from the others and are not read).
#[derive(serde::Deserialize)]
struct ReadRecord {
    image: String,
    path: String,
    #[serde(default)]
    path_hex: Option<String>,
    caption: String,
    source: CaptionSource,
    confidence: Option<f32>,
    needs_review: Option<bool>,
    review_reason: Option<ReviewReason>,
    review_detail: Option<String>,
    familiarity: Option<f32>,
    word_probability_geomean: Option<f32>,
    tags: Vec<String>,
    words: Vec<ScoredWord>,
    alternatives: Vec<Alternative>,
    millis: Option<f64>,
    attention: Option<AttentionMaps>,
    grounding: Vec<WordGrounding>,
    caption_source: Option<GeneratedBy>,
    grounding_note: Option<String>,
}

/// The path a record names: the exact bytes of `path_hex` where it has them (a path that is
/// not UTF-8), else `path`.
fn record_path(path: String, hex: Option<&str>) -> Result<PathBuf, String> {
    let Some(hex) = hex else {
        return Ok(PathBuf::from(path));
    };
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return Err(format!("path_hex {hex:?} is not hexadecimal"));
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| format!("path_hex {hex:?} is not hexadecimal"))?;
    #[cfg(unix)]
    let path =
        PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes));
    #[cfg(not(unix))]
    let path = PathBuf::from(String::from_utf8_lossy(&bytes).into_owned());
    Ok(path)
}

/// Reads a record back as [`to_json`] writes it, so that a row written and read again writes
/// the same record (the shards of `captioner batch --shard`, merged by `captioner merge`).
impl<'de> serde::Deserialize<'de> for ExportRow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = ReadRecord::deserialize(d)?;
        let path = record_path(r.path, r.path_hex.as_deref()).map_err(serde::de::Error::custom)?;
        let details = match (r.word_probability_geomean, r.millis, r.caption_source) {
            (Some(word_probability_geomean), Some(millis), Some(caption_source)) => {
                Some(CaptionDetails {
                    familiarity: r.familiarity,
                    word_probability_geomean,
                    words: r.words,
                    millis,
                    attention: r.attention,
                    grounding: r.grounding,
                    caption_source,
                    grounding_note: r.grounding_note,
                })
            }
            _ => None,
        };
        Ok(ExportRow {
            image: r.image,
            path,
            caption: r.caption,
            source: r.source,
            confidence: r.confidence,
            needs_review: r.needs_review,
            review_reason: r.review_reason,
            review_detail: r.review_detail,
            tags: r.tags,
            alternatives: r.alternatives,
            details,
        })
    }
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

/// How many of these images already have a sidecar.
pub fn count_existing_sidecars(images: &[PathBuf]) -> usize {
    images
        .iter()
        .filter(|p| crate::sidecar::sidecar_path(p).exists())
        .count()
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
        let path = crate::sidecar::sidecar_path(&row.path);
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

/// A review reason as JSON names it (`unfamiliar`, `animal_mismatch`, `low_confidence`).
fn reason_name(reason: ReviewReason) -> &'static str {
    match reason {
        ReviewReason::Unfamiliar => "unfamiliar",
        ReviewReason::AnimalMismatch => "animal_mismatch",
        ReviewReason::LowConfidence => "low_confidence",
    }
}

/// The CSV columns, in order (`docs/formats.md`).
pub const CSV_HEADER: [&str; 9] = [
    "image",
    "caption",
    "confidence",
    "edited",
    "needs_review",
    "tags",
    "source",
    "review_reason",
    "review_detail",
];

/// The rows as CSV ([`CSV_HEADER`]: `image,caption` first, as the Kaggle captions layout has
/// them, so the file is also a dataset's captions).
pub fn to_csv(rows: &[ExportRow]) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| format!("cannot write CSV: {e}");
    w.write_record(CSV_HEADER).map_err(err)?;
    for r in rows {
        let confidence = r.confidence.map(|c| format!("{c:.4}")).unwrap_or_default();
        let review = match r.needs_review {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        let reason = r.review_reason.map_or("", reason_name);
        w.write_record([
            r.image.as_str(),
            r.caption.trim(),
            confidence.as_str(),
            if r.edited() { "yes" } else { "no" },
            review,
            r.tags.join(", ").as_str(),
            r.source.name(),
            reason,
            r.review_detail.as_deref().unwrap_or_default(),
        ])
        .map_err(err)?;
    }
    w.into_inner().map_err(|e| format!("cannot write CSV: {e}"))
}

/// The rows as a JSON array of [`ExportRow`] records (`docs/formats.md`).
pub fn to_json(rows: &[ExportRow]) -> Result<Vec<u8>, String> {
    let mut bytes =
        serde_json::to_vec_pretty(rows).map_err(|e| format!("cannot write JSON: {e}"))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A file that holds a whole batch: the Batch panel's export menus and `captioner batch`'s
/// `--csv`, `--json`, `--alt-html`, `--alt-csv` and `--alt-json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    /// The captions as CSV ([`to_csv`]).
    Csv,
    /// The captions as JSON ([`to_json`]).
    Json,
    /// An HTML page with one `<img alt>` per photo.
    AltHtml,
    /// Alt text as CSV: file, alt_text, confidence, tags.
    AltCsv,
    /// Alt text as JSON.
    AltJson,
}

impl ExportKind {
    /// The file name a save dialog (or the typed path) suggests.
    pub fn file_name(self) -> &'static str {
        match self {
            ExportKind::Csv => "captions.csv",
            ExportKind::Json => "captions.json",
            ExportKind::AltHtml => "alt-text.html",
            ExportKind::AltCsv => "alt-text.csv",
            ExportKind::AltJson => "alt-text.json",
        }
    }

    /// The file's extension, for the save dialog's filter.
    pub fn extension(self) -> &'static str {
        match self {
            ExportKind::Csv | ExportKind::AltCsv => "csv",
            ExportKind::Json | ExportKind::AltJson => "json",
            ExportKind::AltHtml => "html",
        }
    }
}

/// The folder a file is in (`.` for a bare file name): alt text names photos relative to it.
fn folder_of(file: &Path) -> &Path {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The bytes of `rows` exported as `kind` into the file `file` (alt text names the photos
/// relative to the file's folder; `title` is the HTML page's).
pub fn export_bytes(
    rows: &[ExportRow],
    kind: ExportKind,
    file: &Path,
    title: &str,
) -> Result<Vec<u8>, String> {
    match kind {
        ExportKind::Csv => to_csv(rows),
        ExportKind::Json => to_json(rows),
        ExportKind::AltHtml => Ok(to_alt_html(rows, folder_of(file), title)),
        ExportKind::AltCsv => to_alt_csv(rows, folder_of(file)),
        ExportKind::AltJson => to_alt_json(rows, folder_of(file)),
    }
}

/// Exports `rows` as `kind` into `file` (atomically) and reports it.
pub fn export_file(rows: &[ExportRow], kind: ExportKind, file: &Path, title: &str) -> ExportReport {
    match export_bytes(rows, kind, file, title) {
        Ok(bytes) => write_file(file, &bytes, rows.len()),
        Err(e) => ExportReport {
            failed: vec![e],
            ..ExportReport::default()
        },
    }
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
            confidence: Some(0.5),
            ..ExportRow::new(
                name.to_string(),
                dir.join(name),
                caption.to_string(),
                CaptionSource::Machine,
            )
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

    fn result() -> CaptionResult {
        use crate::pipeline::ScoredCaption;
        CaptionResult {
            text: "a dog runs".into(),
            words: ["a", "dog", "runs"]
                .iter()
                .map(|w| ScoredWord {
                    word: w.to_string(),
                    probability: 0.5,
                })
                .collect(),
            given_words: 0,
            alternatives: vec![
                ScoredCaption {
                    text: "a dog runs".into(),
                    score: -1.0,
                },
                ScoredCaption {
                    text: "a dog".into(),
                    score: -2.0,
                },
            ],
            millis: 12.0,
            confidence: Some(0.25),
            familiarity: Some(0.01),
            needs_review: Some(true),
            review_reason: Some(ReviewReason::Unfamiliar),
            review_detail: None,
            tags: vec!["dog".into()],
            classifier_tags: vec!["dog".into()],
            attention: None,
            grounding: vec![WordGrounding {
                position: 1,
                word: "dog".into(),
                support: 0.05,
                weak: true,
                note: Some("little sign of a dog in this photo".into()),
            }],
            source: GeneratedBy::Classifier,
            grounding_note: Some("from the classifier".into()),
        }
    }

    /// A record read back is the row that was written: the same row, and the same bytes
    /// written again (what `captioner merge` relies on).
    #[test]
    fn records_read_back_are_the_rows_written() {
        let d = Path::new("/x");
        let rows = vec![
            ExportRow::machine("a.jpg".into(), d.join("a.jpg"), &result(), "sks", ""),
            ExportRow::new(
                "b.jpg".into(),
                d.join("b.jpg"),
                "my words".into(),
                CaptionSource::Edited,
            ),
        ];
        let bytes = to_json(&rows).unwrap();
        let back: Vec<ExportRow> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, rows);
        assert_eq!(to_json(&back).unwrap(), bytes);
        let line = serde_json::to_string(&rows[0]).unwrap();
        let one: ExportRow = serde_json::from_str(&line).unwrap();
        assert_eq!(one, rows[0]);
    }

    /// A machine caption with every figure and a row with a caption only (an edited or
    /// existing caption, or the Batch panel's session) are records of the same shape.
    #[test]
    fn every_record_has_the_same_fields() {
        let d = Path::new("/x");
        let machine = ExportRow::machine("a.jpg".into(), d.join("a.jpg"), &result(), "sks", "");
        let edited = ExportRow::new(
            "b.jpg".into(),
            d.join("b.jpg"),
            "my words".into(),
            CaptionSource::Edited,
        );
        let json: serde_json::Value =
            serde_json::from_slice(&to_json(&[machine.clone(), edited]).unwrap()).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(&json[0]), keys(&json[1]));
        let m = &json[0];
        assert_eq!(m["caption"], "sks a dog runs");
        assert_eq!(m["alternatives"][1]["text"], "sks a dog");
        assert_eq!(m["alternatives"][1]["score"], -2.0);
        assert_eq!(m["words"][0]["word"], "a");
        assert_eq!(m["source"], "machine");
        assert_eq!(m["edited"], false);
        assert_eq!(m["review_reason"], "unfamiliar");
        assert_eq!(m["warning"], ReviewReason::Unfamiliar.warning());
        assert_eq!(m["word_probability_geomean"], 0.5);
        assert_eq!(m["path"], "/x/a.jpg");
        assert_eq!(m["caption_source"], "classifier");
        assert_eq!(m["grounding"][0]["word"], "dog");
        assert_eq!(m["grounding"][0]["position"], 1);
        assert_eq!(m["grounding"][0]["weak"], true);
        assert_eq!(m["grounding_note"], "from the classifier");
        let e = &json[1];
        assert_eq!(
            (&e["source"], &e["edited"]),
            (&"edited".into(), &true.into())
        );
        for k in [
            "confidence",
            "familiarity",
            "review_reason",
            "millis",
            "attention",
        ] {
            assert!(e[k].is_null(), "{k}: {e}");
        }
        assert_eq!(e["words"], serde_json::json!([]));

        // CSV: the same columns for both, the review reason named as in JSON.
        let csv_bytes = to_csv(std::slice::from_ref(&machine)).unwrap();
        let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
        assert_eq!(reader.headers().unwrap(), CSV_HEADER.as_slice());
        let rec = reader.records().next().unwrap().unwrap();
        assert_eq!(
            rec.iter().collect::<Vec<_>>(),
            [
                "a.jpg",
                "sks a dog runs",
                "0.2500",
                "no",
                "yes",
                "dog",
                "machine",
                "unfamiliar",
                ""
            ]
        );
        for r in [
            ReviewReason::Unfamiliar,
            ReviewReason::AnimalMismatch,
            ReviewReason::LowConfidence,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), reason_name(r));
        }
    }

    /// Alt text names the photos relative to the file's folder, `.` for a bare file name.
    #[test]
    fn export_files_name_photos_relative_to_their_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let rows = vec![row(&tmp.path().join("photos"), "a.jpg", "a dog")];
        let file = tmp.path().join("alt.csv");
        let r = export_file(&rows, ExportKind::AltCsv, &file, "t");
        assert_eq!((r.written, r.failed.len()), (1, 0));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("photos/a.jpg,a dog"), "{text}");
        let bare = export_bytes(&rows, ExportKind::AltCsv, Path::new("alt.csv"), "t").unwrap();
        let cwd = std::env::current_dir().unwrap();
        let expected = crate::metadata::alt_text::relative_path(&rows[0].path, &cwd);
        assert!(
            String::from_utf8_lossy(&bare).contains(&expected),
            "{}",
            String::from_utf8_lossy(&bare)
        );
        // A folder that is a file: reported, not written.
        let failed = export_file(&rows, ExportKind::Json, &file.join("x.json"), "t");
        assert_eq!((failed.written, failed.failed.len()), (0, 1));
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

    /// A path that is not UTF-8 comes back from its JSON record byte for byte.
    #[test]
    fn odd_paths_are_read_back_from_path_hex() {
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(b"/x/caf\xe9.jpg"));
        let row = ExportRow::new(
            "caf.jpg".into(),
            path,
            "a cup".into(),
            CaptionSource::Machine,
        );
        let line = serde_json::to_string(&row).unwrap();
        let back: ExportRow = serde_json::from_str(&line).unwrap();
        assert_eq!(back.path, row.path);
    }

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
                    confidence: Some(0.5),
                    ..ExportRow::new(
                        path.file_name().unwrap().to_string_lossy().into_owned(),
                        path.clone(),
                        "a \"dog\", running".into(),
                        CaptionSource::Machine,
                    )
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
            let text = std::fs::read_to_string(crate::sidecar::sidecar_path(&row.path)).unwrap();
            assert_eq!(text, "a \"dog\", running\n");
        }
    }
}
