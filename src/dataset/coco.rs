//! COCO captions: one or more `captions_*.json` annotation files (in the folder or in its
//! `annotations/`) and the images they name, in a folder named after the file's suffix
//! (`captions_train2017.json` -> `train2017/`), or `images/`, or the folder itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{DatasetError, Layout, Problem, RawCaption, RawDataset, Split};

/// A captions file. Its entries are read one by one, so that one bad entry among 600,000 is
/// reported and skipped instead of rejecting the file.
#[derive(Deserialize)]
struct CocoFile {
    images: Vec<Entry<CocoImage>>,
    annotations: Vec<Entry<CocoAnnotation>>,
}

/// One element of the `images` or `annotations` array: the expected object, or anything else.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Entry<T> {
    Object(T),
    Other(serde_json::Value),
}

/// Fields are read leniently (any JSON value) and checked by hand, so that each bad entry gets
/// its own message; unknown fields are ignored.
#[derive(Deserialize)]
pub(crate) struct CocoImage {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    file_name: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(crate) struct CocoAnnotation {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    image_id: Option<serde_json::Value>,
    #[serde(default)]
    caption: Option<serde_json::Value>,
}

/// A JSON value as an id: a non-negative integer, or a string of digits (some converters
/// write ids as strings).
fn as_id(value: Option<&serde_json::Value>) -> Option<u64> {
    match value? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A short description of a JSON value's kind, for messages.
fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Object(_) => "an object",
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
    }
}

/// What an entry that did not read as an image or annotation object is. Every field is
/// optional and takes any value, so an object fails only when a field appears twice.
fn entry_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Object(_) => "an object with a field given twice",
        other => kind(other),
    }
}

/// The images of one file: id -> file name; bad entries become problems.
fn image_names(
    path: &Path,
    images: Vec<Entry<CocoImage>>,
    problems: &mut Vec<Problem>,
) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = Vec::with_capacity(images.len());
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, entry) in images.into_iter().enumerate() {
        let mut report = |message: String| {
            problems.push(Problem::new(
                path,
                None,
                format!("images[{i}]: {message}; skipped"),
            ));
        };
        let image = match entry {
            Entry::Object(image) => image,
            Entry::Other(v) => {
                report(format!(
                    "expected an image object, found {}",
                    entry_kind(&v)
                ));
                continue;
            }
        };
        let Some(id) = as_id(image.id.as_ref()) else {
            report(match &image.id {
                None => "no \"id\" (missing or null)".to_string(),
                Some(v) => format!("\"id\" is {}, not a non-negative integer", kind(v)),
            });
            continue;
        };
        let file_name = match &image.file_name {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim(),
            Some(serde_json::Value::String(_)) => {
                report(format!("image {id}: empty \"file_name\""));
                continue;
            }
            None => {
                report(format!("image {id}: no \"file_name\" (missing or null)"));
                continue;
            }
            Some(v) => {
                report(format!(
                    "image {id}: \"file_name\" is {}, not a string",
                    kind(v)
                ));
                continue;
            }
        };
        // A name that climbs out of the dataset folder or is absolute is not an image of it.
        let rel = Path::new(file_name);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            report(format!(
                "image {id}: \"file_name\" '{file_name}' is not a plain relative name"
            ));
            continue;
        }
        if let Some(first) = seen.get(&id) {
            report(format!(
                "image id {id} is given twice (first at images[{first}])"
            ));
            continue;
        }
        seen.insert(id, i);
        out.push((id, file_name.to_string()));
    }
    out
}

pub(crate) fn detect(root: &Path) -> Option<Vec<PathBuf>> {
    let mut files = Vec::new();
    for dir in [root.to_path_buf(), root.join("annotations")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with("captions_") && name.ends_with(".json") && entry.path().is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    (!files.is_empty()).then_some(files)
}

fn split_of(suffix: &str) -> Option<Split> {
    let s = suffix.to_ascii_lowercase();
    if s.contains("train") {
        Some(Split::Train)
    } else if s.contains("val") || s.contains("dev") {
        Some(Split::Dev)
    } else if s.contains("test") {
        Some(Split::Test)
    } else {
        None
    }
}

pub(crate) fn read(root: &Path, files: Vec<PathBuf>) -> Result<RawDataset, DatasetError> {
    let mut problems = Vec::new();
    let mut captions = Vec::new();
    let mut file_splits: Vec<(Vec<String>, Option<Split>)> = Vec::new();
    for path in &files {
        let suffix = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.strip_prefix("captions_"))
            .unwrap_or("")
            .to_string();
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem::new(path, None, format!("cannot be read: {e}")));
                continue;
            }
        };
        let Some(parsed) = parse(&text, path, &mut problems) else {
            continue;
        };
        let images = parsed.images;
        // Where this file's images live, relative to the dataset folder: the first candidate
        // folder holding any of the first few images (the first one may be missing).
        let prefix = [
            PathBuf::from(&suffix),
            Path::new("images").join(&suffix),
            PathBuf::from("images"),
            PathBuf::new(),
        ]
        .into_iter()
        .find(|p| {
            images
                .iter()
                .take(16)
                .any(|(_, name)| root.join(p).join(name).is_file())
        })
        .unwrap_or_else(|| PathBuf::from(&suffix));

        let names: HashMap<u64, String> = images
            .into_iter()
            .map(|(id, name)| {
                let rel = prefix.join(name);
                (id, rel.to_string_lossy().replace('\\', "/"))
            })
            .collect();
        let found = resolve(parsed.annotations, &names, path, &mut problems);
        let these: Vec<String> = found.iter().map(|c| c.image.clone()).collect();
        captions.extend(found);
        file_splits.push((these, split_of(&suffix)));
    }
    if captions.is_empty() && !problems.is_empty() {
        let shown: Vec<String> = problems.iter().take(5).map(ToString::to_string).collect();
        let more = problems.len().saturating_sub(shown.len());
        return Err(DatasetError::Unusable {
            path: root.to_path_buf(),
            message: format!(
                "no usable COCO caption found ({}{})",
                shown.join("; "),
                if more > 0 {
                    format!(
                        "; and {more} more problem{}",
                        if more == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                }
            ),
        });
    }
    // Split by file only when the files name at least two different splits.
    let distinct: std::collections::HashSet<Split> =
        file_splits.iter().filter_map(|(_, s)| *s).collect();
    let splits = (distinct.len() >= 2 && file_splits.iter().all(|(_, s)| s.is_some())).then(|| {
        let mut map = HashMap::new();
        for (names, split) in &file_splits {
            for n in names {
                map.insert(n.clone(), split.unwrap_or(Split::None));
            }
        }
        map
    });
    Ok(RawDataset {
        layout: Layout::Coco,
        images_dir: root.to_path_buf(),
        caption_files: files,
        captions,
        splits,
        problems,
    })
}

/// The usable content of one captions file: its images (id, file name) and its annotations,
/// still to be checked by [`resolve`].
pub(crate) struct Parsed {
    pub images: Vec<(u64, String)>,
    pub annotations: Vec<Entry<CocoAnnotation>>,
}

/// Parses a captions file held in memory. A file that is not JSON or lacks the `images` and
/// `annotations` arrays is one problem and `None`; bad image entries are problems each.
pub(crate) fn parse(bytes: &[u8], path: &Path, problems: &mut Vec<Problem>) -> Option<Parsed> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let file: CocoFile = match serde_json::from_slice(bytes) {
        Ok(p) => p,
        Err(e) => {
            problems.push(Problem::new(
                path,
                Some(e.line()),
                format!("not a COCO captions file: {e}; file skipped"),
            ));
            return None;
        }
    };
    Some(Parsed {
        images: image_names(path, file.images, problems),
        annotations: file.annotations,
    })
}

/// Checks each annotation and returns the captions of those that name a known image
/// (`names`: image id -> name); each bad annotation is a problem naming its position and id.
pub(crate) fn resolve(
    annotations: Vec<Entry<CocoAnnotation>>,
    names: &HashMap<u64, String>,
    path: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<RawCaption> {
    let mut captions = Vec::new();
    let mut seen_ids: HashMap<u64, usize> = HashMap::new();
    for (i, entry) in annotations.into_iter().enumerate() {
        let ann = match entry {
            Entry::Object(ann) => ann,
            Entry::Other(v) => {
                problems.push(Problem::new(
                    path,
                    None,
                    format!(
                        "annotations[{i}]: expected an annotation object, found {}; skipped",
                        entry_kind(&v)
                    ),
                ));
                continue;
            }
        };
        let id = as_id(ann.id.as_ref());
        let what = match id {
            Some(id) => format!("annotations[{i}] (id {id})"),
            None => format!("annotations[{i}]"),
        };
        let mut report = |message: String| {
            problems.push(Problem::new(
                path,
                None,
                format!("{what}: {message}; skipped"),
            ))
        };
        if let Some(id) = id {
            if let Some(first) = seen_ids.get(&id) {
                report(format!(
                    "annotation id {id} is given twice (first at annotations[{first}])"
                ));
                continue;
            }
            seen_ids.insert(id, i);
        }
        let Some(image_id) = as_id(ann.image_id.as_ref()) else {
            report(match &ann.image_id {
                None => "no \"image_id\" (missing or null)".to_string(),
                Some(v) => format!("\"image_id\" is {}, not an image id", kind(v)),
            });
            continue;
        };
        let Some(name) = names.get(&image_id) else {
            report(format!("image id {image_id} is not in \"images\""));
            continue;
        };
        let caption = match &ann.caption {
            Some(serde_json::Value::String(s)) => s.trim(),
            None => {
                report("no \"caption\" (missing or null)".to_string());
                continue;
            }
            Some(v) => {
                report(format!("\"caption\" is {}, not a string", kind(v)));
                continue;
            }
        };
        if caption.is_empty() {
            report("empty caption".to_string());
            continue;
        }
        captions.push(RawCaption {
            image: name.clone(),
            caption: caption.to_string(),
            file: path.to_path_buf(),
            line: None,
        });
    }
    captions
}
