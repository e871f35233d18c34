//! Flickr8k as distributed: `Flicker8k_Dataset/` (the original misspelling) holding the images
//! and `Flickr8k_text/` holding `Flickr8k.token.txt` (`IMAGE.jpg#N<TAB>caption`) and the
//! optional split files `Flickr_8k.{train,dev,test}Images.txt`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{DatasetError, Layout, Problem, RawCaption, RawDataset, Split, io_cause, read_lines};

const TEXT_DIRS: [&str; 4] = ["Flickr8k_text", "Flickr_8k_text", "Flickr8k.text", "."];
const IMAGE_DIRS: [&str; 4] = [
    "Flicker8k_Dataset",
    "Flickr8k_Dataset",
    "Flicker8k_Dataset/Flicker8k_Dataset",
    "Images",
];
const TOKEN_FILE: &str = "Flickr8k.token.txt";
const SPLIT_FILES: [(&str, Split); 3] = [
    ("Flickr_8k.trainImages.txt", Split::Train),
    ("Flickr_8k.devImages.txt", Split::Dev),
    ("Flickr_8k.testImages.txt", Split::Test),
];

pub(crate) struct Found {
    text_dir: PathBuf,
    token_file: PathBuf,
}

pub(crate) fn detect(root: &Path) -> Option<Found> {
    TEXT_DIRS.iter().find_map(|d| {
        let text_dir = root.join(d);
        let token_file = text_dir.join(TOKEN_FILE);
        token_file.is_file().then_some(Found {
            text_dir,
            token_file,
        })
    })
}

pub(crate) fn read(root: &Path, found: Found) -> Result<RawDataset, DatasetError> {
    let images_dir = IMAGE_DIRS
        .iter()
        .map(|d| root.join(d))
        .find(|p| p.is_dir())
        .ok_or_else(|| DatasetError::Unusable {
            path: root.to_path_buf(),
            message: format!(
                "found {} but no images folder (looked for {})",
                found.token_file.display(),
                IMAGE_DIRS.join(", ")
            ),
        })?;
    let mut problems = Vec::new();
    let captions = parse_token_file(&found.token_file, &mut problems)?;

    let mut caption_files = vec![found.token_file.clone()];
    let mut splits: Option<HashMap<String, Split>> = None;
    for (file, split) in SPLIT_FILES {
        let path = found.text_dir.join(file);
        if !path.is_file() {
            continue;
        }
        // An unreadable split file is reported; the others (or the hash split) still apply.
        let lines = match read_lines(&path, &mut problems) {
            Ok(lines) => lines,
            Err(e) => {
                problems.push(Problem::new(
                    &path,
                    None,
                    format!("cannot be read ({}); split file ignored", io_cause(&e)),
                ));
                continue;
            }
        };
        caption_files.push(path.clone());
        let map = splits.get_or_insert_with(HashMap::new);
        parse_split(lines, &path, split, map, &mut problems);
    }

    Ok(RawDataset {
        layout: Layout::Flickr8k,
        images_dir,
        caption_files,
        captions,
        splits,
        problems,
    })
}

/// Parses `IMAGE#N<TAB>caption` lines. Bad lines become problems and are skipped; a repeated
/// `IMAGE#N` keeps the first.
/// Records the names a split file lists in `map`; returns the names new to `map`, in order.
/// A name listed twice, or already in another split, is a problem (the last split wins).
pub(crate) fn parse_split(
    lines: Vec<(usize, String)>,
    path: &Path,
    split: Split,
    map: &mut HashMap<String, Split>,
    problems: &mut Vec<Problem>,
) -> Vec<(String, Split)> {
    let mut new = Vec::new();
    for (line, text) in lines {
        let name = text.trim();
        if name.is_empty() {
            continue;
        }
        match map.insert(name.to_string(), split) {
            None => new.push((name.to_string(), split)),
            Some(previous) if previous != split => problems.push(Problem::new(
                path,
                Some(line),
                format!("'{name}' is already in the {previous} split; now counted as {split}"),
            )),
            Some(_) => problems.push(Problem::new(
                path,
                Some(line),
                format!("'{name}' is listed twice"),
            )),
        }
    }
    new
}

pub(crate) fn parse_token_file(
    path: &Path,
    problems: &mut Vec<Problem>,
) -> Result<Vec<RawCaption>, DatasetError> {
    let lines = read_lines(path, problems)?;
    Ok(parse_tokens(lines, path, problems))
}

/// Parses the lines of a token file: `IMAGE#N<TAB>caption`.
pub(crate) fn parse_tokens(
    lines: Vec<(usize, String)>,
    path: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<RawCaption> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut captions = Vec::new();
    for (line, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        let mut report = |message: String| problems.push(Problem::new(path, Some(line), message));
        let Some((key, caption)) = text.split_once('\t') else {
            report("no tab between 'IMAGE#N' and the caption; line skipped".to_string());
            continue;
        };
        let key = key.trim();
        let Some((image, number)) = key.rsplit_once('#') else {
            report(format!(
                "'{key}' has no '#N' caption number after the image name; line skipped"
            ));
            continue;
        };
        if image.is_empty() {
            report("no image name before '#'; line skipped".to_string());
            continue;
        }
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
            report(format!(
                "'{key}': '#{number}' is not a caption number; line skipped"
            ));
            continue;
        }
        let caption = caption.trim();
        if caption.is_empty() {
            report(format!("empty caption for '{key}'; line skipped"));
            continue;
        }
        if let Some(first) = seen.get(key) {
            report(format!(
                "duplicate entry '{key}' (first on line {first}); kept the first"
            ));
            continue;
        }
        seen.insert(key.to_string(), line);
        captions.push(RawCaption {
            image: image.to_string(),
            caption: caption.to_string(),
            file: path.to_path_buf(),
            line: Some(line),
        });
    }
    captions
}
