//! COCO captions: one or more `captions_*.json` annotation files (in the folder or in its
//! `annotations/`) and the images they name, in a folder named after the file's suffix
//! (`captions_train2017.json` -> `train2017/`), or `images/`, or the folder itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{DatasetError, Layout, Problem, RawCaption, RawDataset, Split};

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    #[serde(default)]
    id: Option<u64>,
    image_id: u64,
    caption: String,
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
        let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&text);
        let parsed: CocoFile = match serde_json::from_slice(text) {
            Ok(p) => p,
            Err(e) => {
                problems.push(Problem::new(
                    path,
                    Some(e.line()),
                    format!("not a COCO captions file: {e}; file skipped"),
                ));
                continue;
            }
        };
        // Where this file's images live, relative to the dataset folder.
        let prefix = [
            PathBuf::from(&suffix),
            Path::new("images").join(&suffix),
            PathBuf::from("images"),
            PathBuf::new(),
        ]
        .into_iter()
        .find(|p| {
            parsed
                .images
                .first()
                .is_some_and(|img| root.join(p).join(&img.file_name).is_file())
        })
        .unwrap_or_else(|| PathBuf::from(&suffix));

        let names: HashMap<u64, String> = parsed
            .images
            .iter()
            .map(|img| {
                let rel = prefix.join(&img.file_name);
                (img.id, rel.to_string_lossy().replace('\\', "/"))
            })
            .collect();
        let mut these = Vec::new();
        for ann in parsed.annotations {
            let what = match ann.id {
                Some(id) => format!("annotation {id}"),
                None => format!("annotation for image {}", ann.image_id),
            };
            let Some(name) = names.get(&ann.image_id) else {
                problems.push(Problem::new(
                    path,
                    None,
                    format!(
                        "{what}: image id {} is not in \"images\"; skipped",
                        ann.image_id
                    ),
                ));
                continue;
            };
            let caption = ann.caption.trim();
            if caption.is_empty() {
                problems.push(Problem::new(
                    path,
                    None,
                    format!("{what}: empty caption; skipped"),
                ));
                continue;
            }
            these.push(name.clone());
            captions.push(RawCaption {
                image: name.clone(),
                caption: caption.to_string(),
                file: path.clone(),
                line: None,
            });
        }
        file_splits.push((these, split_of(&suffix)));
    }
    if captions.is_empty() && !problems.is_empty() {
        return Err(DatasetError::Unusable {
            path: root.to_path_buf(),
            message: format!(
                "no usable COCO captions file ({})",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
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
