//! The common Kaggle layout: `Images/` plus `captions.txt`, a CSV file with the header
//! `image,caption` whose captions may contain commas and (doubled) quotes.

use std::path::{Path, PathBuf};

use super::{DatasetError, Layout, Problem, RawCaption, RawDataset};

const IMAGE_DIRS: [&str; 3] = ["Images", "images", "Flicker8k_Dataset"];
const CAPTION_FILES: [&str; 2] = ["captions.txt", "captions.csv"];

pub(crate) struct Found {
    images_dir: PathBuf,
    captions_file: PathBuf,
}

pub(crate) fn detect(root: &Path) -> Option<Found> {
    let captions_file = CAPTION_FILES
        .iter()
        .map(|f| root.join(f))
        .find(|p| p.is_file())?;
    let images_dir = IMAGE_DIRS
        .iter()
        .map(|d| root.join(d))
        .find(|p| p.is_dir())?;
    Some(Found {
        images_dir,
        captions_file,
    })
}

pub(crate) fn read(found: Found) -> Result<RawDataset, DatasetError> {
    let path = found.captions_file.as_path();
    let mut problems = Vec::new();
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let captions = parse(&bytes, path, &mut problems)?;
    Ok(RawDataset {
        layout: Layout::KaggleCsv,
        images_dir: found.images_dir,
        caption_files: vec![found.captions_file.clone()],
        captions,
        splits: None,
        problems,
    })
}

/// Parses a captions CSV held in memory; `path` names it in problems. Only a missing or
/// unreadable header makes the whole file unusable.
pub(crate) fn parse(
    bytes: &[u8],
    path: &Path,
    problems: &mut Vec<Problem>,
) -> Result<Vec<RawCaption>, DatasetError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);

    let (image_col, caption_col) = match reader.byte_headers() {
        Ok(h) => {
            let find = |name: &str| {
                h.iter()
                    .position(|f| String::from_utf8_lossy(f).trim().eq_ignore_ascii_case(name))
            };
            match (find("image"), find("caption")) {
                (Some(i), Some(c)) => (i, c),
                _ => {
                    return Err(DatasetError::Unusable {
                        path: path.to_path_buf(),
                        message: format!(
                            "line 1: expected the header 'image,caption', found '{}'",
                            String::from_utf8_lossy(h.as_slice())
                        ),
                    });
                }
            }
        }
        Err(e) => {
            return Err(DatasetError::Unusable {
                path: path.to_path_buf(),
                message: format!("cannot read the CSV header: {e}"),
            });
        }
    };

    let mut captions = Vec::new();
    let mut seen = std::collections::HashMap::<(String, String), usize>::new();
    for record in reader.byte_records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                problems.push(Problem::new(
                    path,
                    line,
                    format!("malformed CSV: {e}; row skipped"),
                ));
                continue;
            }
        };
        let line = record.position().map(|p| p.line() as usize);
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        let field = |i: usize| record.get(i).map(std::str::from_utf8);
        let (image, caption) = match (field(image_col), field(caption_col)) {
            (Some(Ok(i)), Some(Ok(c))) => (i.trim(), c.trim()),
            (Some(Err(_)), _) | (_, Some(Err(_))) => {
                problems.push(Problem::new(
                    path,
                    line,
                    "not valid UTF-8 text; row skipped",
                ));
                continue;
            }
            _ => {
                problems.push(Problem::new(
                    path,
                    line,
                    format!(
                        "expected 2 fields (image,caption), found {}; row skipped",
                        record.len()
                    ),
                ));
                continue;
            }
        };
        if image.is_empty() {
            problems.push(Problem::new(path, line, "no image name; row skipped"));
            continue;
        }
        if caption.is_empty() {
            problems.push(Problem::new(
                path,
                line,
                format!("empty caption for '{image}'; row skipped"),
            ));
            continue;
        }
        let key = (image.to_string(), caption.to_string());
        if let Some(first) = seen.get(&key) {
            problems.push(Problem::new(
                path,
                line,
                format!("duplicate caption for '{image}' (first on line {first}); kept the first"),
            ));
            continue;
        }
        seen.insert(key, line.unwrap_or(0));
        captions.push(RawCaption {
            image: image.to_string(),
            caption: caption.to_string(),
            file: path.to_path_buf(),
            line,
        });
    }
    Ok(captions)
}
