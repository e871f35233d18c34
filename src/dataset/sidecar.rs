//! A plain folder of images with same-name `.txt` sidecar files, one caption per line
//! (`dog.jpg` + `dog.txt`).

use std::collections::HashSet;
use std::path::Path;

use super::{
    DatasetError, Layout, Problem, RawCaption, RawDataset, has_image_extension, io_cause,
    read_lines,
};

/// A folder is a sidecar dataset when it holds at least one image with a `.txt` beside it.
pub(crate) fn detect(root: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(root) else {
        return false;
    };
    let mut images = HashSet::new();
    let mut texts = HashSet::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(stem) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if has_image_extension(&path) {
            images.insert(stem);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
        {
            texts.insert(stem);
        }
    }
    images.intersection(&texts).next().is_some()
}

pub(crate) fn read(root: &Path) -> Result<RawDataset, DatasetError> {
    let mut problems = Vec::new();
    let images = super::list_images(root)?;
    let mut stems_with_image = HashSet::new();
    let mut captions = Vec::new();
    let mut caption_files = Vec::new();
    for name in &images {
        let path = root.join(name);
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        stems_with_image.insert(stem.to_string());
        let txt = root.join(format!("{stem}.txt"));
        if !txt.is_file() {
            continue;
        }
        caption_files.push(txt.clone());
        // One unreadable caption file leaves its image uncaptioned; the others still count.
        let lines = match read_lines(&txt, &mut problems) {
            Ok(lines) => lines,
            Err(e) => {
                problems.push(Problem::new(
                    &txt,
                    None,
                    format!(
                        "cannot be read ({}); its image is left uncaptioned",
                        io_cause(&e)
                    ),
                ));
                continue;
            }
        };
        captions.extend(parse(lines, name, &txt, &mut problems));
    }
    if let Ok(entries) = std::fs::read_dir(root) {
        let mut orphans: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("txt")))
            .filter(|p| {
                p.file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| !stems_with_image.contains(s))
            })
            .collect();
        orphans.sort();
        for p in orphans {
            problems.push(Problem::new(
                &p,
                None,
                "caption file without a matching image; ignored",
            ));
        }
    }
    Ok(RawDataset {
        layout: Layout::Sidecar,
        images_dir: root.to_path_buf(),
        caption_files,
        captions,
        splits: None,
        problems,
    })
}

/// The captions of one sidecar's lines, for `image`: one per non-blank line, duplicates
/// reported and dropped.
pub(crate) fn parse(
    lines: Vec<(usize, String)>,
    image: &str,
    txt: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<RawCaption> {
    let mut seen = HashSet::new();
    let mut captions = Vec::new();
    for (line, text) in lines {
        let caption = text.trim();
        if caption.is_empty() {
            continue;
        }
        if !seen.insert(caption.to_string()) {
            problems.push(Problem::new(
                txt,
                Some(line),
                "duplicate caption; kept the first",
            ));
            continue;
        }
        captions.push(RawCaption {
            image: image.to_string(),
            caption: caption.to_string(),
            file: txt.to_path_buf(),
            line: Some(line),
        });
    }
    captions
}
