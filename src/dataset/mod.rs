//! Dataset import: detect a captioned-photo folder's layout, read and validate it, and
//! summarise it.
//!
//! Four layouts are recognised, in this order:
//! 1. Flickr8k as distributed (`Flicker8k_Dataset/` + `Flickr8k_text/Flickr8k.token.txt`),
//! 2. the Kaggle layout (`Images/` + `captions.txt`, a CSV with header `image,caption`),
//! 3. COCO captions (`captions_*.json` + an images folder),
//! 4. a plain folder of images with same-name `.txt` sidecars, one caption per line.
//!
//! Import never writes anything inside the dataset folder. Bad lines and files are collected
//! as [`Problem`]s naming the file (and line) and the rest is imported; only a dataset with no
//! usable captioned image is an error.

mod coco;
mod flickr8k;
mod kaggle;
mod sidecar;
pub mod split;
pub mod text;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use split::{Split, SplitFractions};
pub use text::{Cleaning, LengthStats, Vocab, clean_caption};

/// File extensions treated as images.
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "jfif",
];

/// Whether a path has an image file extension.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The layouts `import` recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    Flickr8k,
    KaggleCsv,
    Coco,
    Sidecar,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Flickr8k => "Flickr8k (Flicker8k_Dataset + Flickr8k_text/Flickr8k.token.txt)",
            Layout::KaggleCsv => "Kaggle CSV (Images/ + captions.txt)",
            Layout::Coco => "COCO captions (captions_*.json + images)",
            Layout::Sidecar => "image folder with .txt sidecar captions",
        })
    }
}

/// Something wrong with one file or line; the import goes on without it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line number, where the problem is in a text file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn new(file: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Problem {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Why a folder could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{0}: no such file or folder")]
    NotFound(PathBuf),
    #[error("{0}: not a folder (give the dataset's folder)")]
    NotADirectory(PathBuf),
    #[error("{0}: the folder is empty")]
    Empty(PathBuf),
    #[error(
        "{0}: no known dataset layout found; expected one of: Flickr8k (Flicker8k_Dataset/ and \
         Flickr8k_text/Flickr8k.token.txt), Kaggle (Images/ and captions.txt), COCO \
         (captions_*.json and an images folder), or image files with .txt sidecar captions"
    )]
    UnknownLayout(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Unusable { path: PathBuf, message: String },
}

/// Options for [`import`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportOptions {
    pub cleaning: Cleaning,
    /// Minimum count for a word to enter the vocabulary (counted on training captions).
    pub min_count: usize,
    /// Split fractions used when the dataset has no split files.
    pub fractions: SplitFractions,
    /// Check each image file's first bytes for a known image signature.
    pub check_images: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            cleaning: Cleaning::Natural,
            min_count: 5,
            fractions: SplitFractions::default(),
            check_images: true,
        }
    }
}

/// One captioned image that exists on disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// Name as the caption file refers to it (a path relative to the images folder).
    pub name: String,
    pub path: PathBuf,
    /// Captions as written in the dataset.
    pub captions: Vec<String>,
    pub split: Split,
}

/// Where the train/dev/test assignment came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitSource {
    /// The dataset's own split files.
    Files,
    /// A deterministic hash of each image name.
    Hash,
}

/// An imported dataset.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dataset {
    pub root: PathBuf,
    pub layout: Layout,
    pub images_dir: PathBuf,
    pub caption_files: Vec<PathBuf>,
    /// Captioned images present on disk, sorted by name.
    pub images: Vec<ImageEntry>,
    /// Images referenced by captions but missing on disk, sorted.
    pub missing: Vec<String>,
    /// Captioned image files that exist but cannot be read or are not images, sorted.
    pub unreadable: Vec<String>,
    /// Image files on disk with no caption, sorted.
    pub uncaptioned: Vec<String>,
    pub split_source: SplitSource,
    pub options: ImportOptions,
    pub problems: Vec<Problem>,
}

/// What one layout reader found, before the common checks.
pub(crate) struct RawDataset {
    pub layout: Layout,
    pub images_dir: PathBuf,
    pub caption_files: Vec<PathBuf>,
    /// (image name, caption, file, line) in file order.
    pub captions: Vec<RawCaption>,
    /// Split assignment from split files, if the dataset has them.
    pub splits: Option<HashMap<String, Split>>,
    pub problems: Vec<Problem>,
}

pub(crate) struct RawCaption {
    pub image: String,
    pub caption: String,
    pub file: PathBuf,
    pub line: Option<usize>,
}

/// Reads a text file, dropping a UTF-8 byte-order mark; returns its lines (CR LF or LF endings)
/// with 1-based numbers. Lines that are not valid UTF-8 become problems.
pub(crate) fn read_lines(
    path: &Path,
    problems: &mut Vec<Problem>,
) -> Result<Vec<(usize, String)>, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(lines_of(&bytes, path, problems))
}

/// [`read_lines`] on bytes in memory; `path` names the file in problems.
pub(crate) fn lines_of(
    bytes: &[u8],
    path: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<(usize, String)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut lines = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        match std::str::from_utf8(raw) {
            Ok(s) => lines.push((i + 1, s.to_string())),
            Err(e) => problems.push(Problem::new(
                path,
                Some(i + 1),
                format!(
                    "not valid UTF-8 text (bad byte at column {}); line skipped",
                    e.valid_up_to() + 1
                ),
            )),
        }
    }
    // A final newline leaves one empty trailing element: not a line.
    if lines.last().is_some_and(|(_, s)| s.is_empty()) && bytes.ends_with(b"\n") {
        lines.pop();
    }
    lines
}

/// The kinds of caption file [`parse_caption_file`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptionFileKind {
    /// `Flickr8k.token.txt`: `IMAGE#N<TAB>caption` lines.
    Flickr8kTokens,
    /// `Flickr_8k.trainImages.txt` and the like: one image name per line.
    Flickr8kSplit,
    /// Kaggle `captions.txt`: CSV with the header `image,caption`.
    KaggleCsv,
    /// COCO `captions_*.json`.
    CocoJson,
    /// A `.txt` sidecar: one caption per line (for the image named by `path`'s stem).
    Sidecar,
}

/// One caption file parsed from memory, exactly as [`import`] parses it from disk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedCaptionFile {
    /// (image name, caption), in file order; for COCO the image names are the `file_name`s.
    pub captions: Vec<(String, String)>,
    /// Image names a split file lists, in file order (duplicates left out).
    pub listed: Vec<String>,
    pub problems: Vec<Problem>,
}

/// Parses one caption file held in memory; `path` names it in problems (and, for a sidecar,
/// gives the image name). An error means the file is unusable as a whole; otherwise every bad
/// line or entry is one [`Problem`] and the rest is kept. Import uses the same code on the
/// files it reads; this entry point serves tools and the fuzz targets (`fuzz/`).
pub fn parse_caption_file(
    kind: CaptionFileKind,
    path: &Path,
    bytes: &[u8],
) -> Result<ParsedCaptionFile, DatasetError> {
    let mut problems = Vec::new();
    let mut listed = Vec::new();
    let captions: Vec<RawCaption> = match kind {
        CaptionFileKind::Flickr8kTokens => {
            let lines = lines_of(bytes, path, &mut problems);
            flickr8k::parse_tokens(lines, path, &mut problems)
        }
        CaptionFileKind::Flickr8kSplit => {
            let lines = lines_of(bytes, path, &mut problems);
            let mut map = HashMap::new();
            for (name, _) in
                flickr8k::parse_split(lines, path, Split::Train, &mut map, &mut problems)
            {
                listed.push(name);
            }
            Vec::new()
        }
        CaptionFileKind::KaggleCsv => kaggle::parse(bytes, path, &mut problems)?,
        CaptionFileKind::CocoJson => coco::parse(bytes, path, &mut problems)
            .map(|file| {
                let names: HashMap<u64, String> = file.images.into_iter().collect();
                coco::resolve(file.annotations, &names, path, &mut problems)
            })
            .unwrap_or_default(),
        CaptionFileKind::Sidecar => {
            let image = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let lines = lines_of(bytes, path, &mut problems);
            sidecar::parse(lines, &image, path, &mut problems)
        }
    };
    Ok(ParsedCaptionFile {
        captions: captions.into_iter().map(|c| (c.image, c.caption)).collect(),
        listed,
        problems,
    })
}

/// The underlying reason of an error from [`read_lines`], without the path (the caller's
/// [`Problem`] names the file).
pub(crate) fn io_cause(e: &DatasetError) -> String {
    match e {
        DatasetError::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// Lists the image files in a folder (not recursive), as names relative to it.
pub(crate) fn list_images(dir: &Path) -> Result<Vec<String>, DatasetError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DatasetError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if has_image_extension(&path)
            && entry
                .file_type()
                .is_ok_and(|t| t.is_file() || t.is_symlink())
            && let Some(name) = entry.file_name().to_str()
        {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Imports the dataset at `path`, detecting its layout.
pub fn import(path: &Path, options: &ImportOptions) -> Result<Dataset, DatasetError> {
    if !path.exists() {
        return Err(DatasetError::NotFound(path.to_path_buf()));
    }
    if !path.is_dir() {
        return Err(DatasetError::NotADirectory(path.to_path_buf()));
    }
    let mut entries = std::fs::read_dir(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if entries.next().is_none() {
        return Err(DatasetError::Empty(path.to_path_buf()));
    }
    let raw = if let Some(found) = flickr8k::detect(path) {
        flickr8k::read(path, found)?
    } else if let Some(found) = kaggle::detect(path) {
        kaggle::read(found)?
    } else if let Some(found) = coco::detect(path) {
        coco::read(path, found)?
    } else if sidecar::detect(path) {
        sidecar::read(path)?
    } else {
        return Err(DatasetError::UnknownLayout(path.to_path_buf()));
    };
    assemble(path, raw, options)
}

/// The checks and bookkeeping common to every layout.
fn assemble(
    root: &Path,
    raw: RawDataset,
    options: &ImportOptions,
) -> Result<Dataset, DatasetError> {
    let RawDataset {
        layout,
        images_dir,
        caption_files,
        captions,
        splits,
        mut problems,
    } = raw;

    let on_disk: Vec<String> = match layout {
        // COCO names may hold sub-folders; they are checked one by one below.
        Layout::Coco => Vec::new(),
        _ => list_images(&images_dir)?,
    };
    let on_disk_set: HashSet<&str> = on_disk.iter().map(String::as_str).collect();

    // Group captions by image, keeping the first reference's location.
    let mut by_image: BTreeMap<String, (Vec<String>, PathBuf, Option<usize>)> = BTreeMap::new();
    for c in captions {
        let slot = by_image
            .entry(c.image)
            .or_insert_with(|| (Vec::new(), c.file.clone(), c.line));
        slot.0.push(c.caption);
    }

    let exists = |name: &str| -> bool {
        if layout == Layout::Coco {
            images_dir.join(name).is_file()
        } else {
            on_disk_set.contains(name)
        }
    };
    let mut missing = Vec::new();
    let mut present: Vec<(String, Vec<String>)> = Vec::new();
    for (name, (caps, file, line)) in by_image {
        if exists(&name) {
            present.push((name, caps));
        } else {
            problems.push(Problem::new(
                &file,
                line,
                format!(
                    "image '{}' is referenced here but not found in {}",
                    name,
                    images_dir.display()
                ),
            ));
            missing.push(name);
        }
    }

    // Signature check, in parallel: a file with an image extension that is not an image, or
    // cannot be read at all, is reported and left out.
    let mut unreadable = Vec::new();
    if options.check_images {
        let bad: Vec<(usize, String)> = present
            .par_iter()
            .enumerate()
            .filter_map(|(i, (name, _))| {
                check_image_file(&images_dir.join(name))
                    .err()
                    .map(|e| (i, e))
            })
            .collect();
        for (i, message) in bad.iter().rev() {
            let (name, _) = present.remove(*i);
            problems.push(Problem::new(images_dir.join(&name), None, message.clone()));
            unreadable.push(name);
        }
        unreadable.sort();
    }

    let captioned: HashSet<&str> = present.iter().map(|(n, _)| n.as_str()).collect();
    let uncaptioned: Vec<String> = on_disk
        .iter()
        .filter(|n| !captioned.contains(n.as_str()) && unreadable.binary_search(n).is_err())
        .cloned()
        .collect();

    let split_source = if splits.is_some() {
        SplitSource::Files
    } else {
        SplitSource::Hash
    };
    let images: Vec<ImageEntry> = present
        .into_iter()
        .map(|(name, captions)| {
            let split = match &splits {
                Some(map) => map.get(&name).copied().unwrap_or(Split::None),
                None => split::split_by_hash(&name, &options.fractions),
            };
            ImageEntry {
                path: images_dir.join(&name),
                name,
                captions,
                split,
            }
        })
        .collect();

    // Report problems in file order, then line order.
    problems.sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));

    if images.is_empty() {
        return Err(DatasetError::Unusable {
            path: root.to_path_buf(),
            message: format!(
                "layout {layout} found, but no captioned image could be imported ({} problem{} found{})",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems
                    .first()
                    .map(|p| format!("; first: {p}"))
                    .unwrap_or_default()
            ),
        });
    }

    Ok(Dataset {
        root: root.to_path_buf(),
        layout,
        images_dir,
        caption_files,
        images,
        missing,
        unreadable,
        uncaptioned,
        split_source,
        options: options.clone(),
        problems,
    })
}

/// Reads a file's first bytes and checks for a known image signature.
fn check_image_file(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 32];
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(format!("cannot be read: {e}")),
        }
    }
    if n == 0 {
        return Err("empty file (0 bytes), not an image".to_string());
    }
    // The loader's policy: HEIC and AVIF are recognised, and refused, by their content.
    if let Some(name) = crate::encoder::image_io::heif_family(&head[..n]) {
        return Err(format!(
            "{name} images are not supported; convert the file to JPEG or PNG"
        ));
    }
    image::guess_format(&head[..n])
        .map(|_| ())
        .map_err(|_| "not an image file (unknown file signature)".to_string())
}

impl Dataset {
    /// Images of one split.
    pub fn split(&self, split: Split) -> impl Iterator<Item = &ImageEntry> {
        self.images.iter().filter(move |e| e.split == split)
    }

    pub fn caption_count(&self) -> usize {
        self.images.iter().map(|e| e.captions.len()).sum()
    }

    /// Cleaned words of every caption of `entry`.
    pub fn cleaned(&self, entry: &ImageEntry) -> Vec<Vec<String>> {
        entry
            .captions
            .iter()
            .map(|c| clean_caption(c, self.options.cleaning))
            .collect()
    }

    /// The vocabulary of the training split's captions (all images when there is no training
    /// split), with the import's cleaning mode and minimum count.
    pub fn vocab(&self) -> Vocab {
        self.vocab_with(self.options.min_count)
    }

    /// As [`Dataset::vocab`] with another minimum count.
    pub fn vocab_with(&self, min_count: usize) -> Vocab {
        let has_train = self.images.iter().any(|e| e.split == Split::Train);
        let cleaned: Vec<Vec<String>> = self
            .images
            .iter()
            .filter(|e| !has_train || e.split == Split::Train)
            .flat_map(|e| {
                e.captions
                    .iter()
                    .map(|c| clean_caption(c, self.options.cleaning))
            })
            .collect();
        Vocab::build(
            cleaned.iter().map(Vec::as_slice),
            min_count,
            self.options.cleaning,
        )
    }

    /// Summary figures, as `captioner dataset inspect` prints them.
    pub fn summary(&self) -> Summary {
        let has_train = self.images.iter().any(|e| e.split == Split::Train);
        let cleaned: Vec<(bool, Vec<Vec<String>>)> = self
            .images
            .par_iter()
            .map(|e| (!has_train || e.split == Split::Train, self.cleaned(e)))
            .collect();
        let lengths = LengthStats::from_lengths(
            cleaned
                .iter()
                .flat_map(|(_, caps)| caps.iter().map(Vec::len)),
        );
        let vocab = Vocab::build(
            cleaned
                .iter()
                .filter(|(train, _)| *train)
                .flat_map(|(_, caps)| caps.iter().map(Vec::as_slice)),
            self.options.min_count,
            self.options.cleaning,
        );
        let count = |s: Split| self.images.iter().filter(|e| e.split == s).count();
        Summary {
            root: self.root.clone(),
            layout: self.layout,
            images_dir: self.images_dir.clone(),
            caption_files: self.caption_files.clone(),
            images: self.images.len(),
            captions: self.caption_count(),
            missing_images: self.missing.len(),
            unreadable_images: self.unreadable.len(),
            uncaptioned_images: self.uncaptioned.len(),
            splits: SplitCounts {
                source: self.split_source,
                train: count(Split::Train),
                dev: count(Split::Dev),
                test: count(Split::Test),
                unassigned: count(Split::None),
            },
            cleaning: self.options.cleaning,
            min_count: self.options.min_count,
            vocab_size: vocab.len(),
            caption_length: lengths,
            missing: self.missing.clone(),
            unreadable: self.unreadable.clone(),
            uncaptioned: self.uncaptioned.clone(),
            problems: self.problems.clone(),
        }
    }
}

/// Images per split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitCounts {
    pub source: SplitSource,
    pub train: usize,
    pub dev: usize,
    pub test: usize,
    pub unassigned: usize,
}

/// What `dataset inspect` reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub root: PathBuf,
    pub layout: Layout,
    pub images_dir: PathBuf,
    pub caption_files: Vec<PathBuf>,
    /// Captioned images found on disk.
    pub images: usize,
    pub captions: usize,
    pub missing_images: usize,
    pub unreadable_images: usize,
    pub uncaptioned_images: usize,
    pub splits: SplitCounts,
    pub cleaning: Cleaning,
    pub min_count: usize,
    /// Vocabulary size at `min_count`, the four special tokens included.
    pub vocab_size: usize,
    pub caption_length: LengthStats,
    pub missing: Vec<String>,
    pub unreadable: Vec<String>,
    pub uncaptioned: Vec<String>,
    pub problems: Vec<Problem>,
}
