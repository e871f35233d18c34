//! Captioning: one photo, or a whole folder through a pipeline that keeps the encoder busy.
//!
//! [`caption_folder`] runs three stages at once, joined by small bounded channels:
//!
//! ```text
//!  paths ─► read + decode (rayon, a chunk at a time; big JPEGs decoded at reduced size)
//!        ─► encode (a batch per chunk, on its own thread)
//!        ─► batched beam search + events (the calling thread)
//! ```
//!
//! so that reading the next photos, encoding the current batch and decoding the previous
//! photos' captions overlap. The search keeps about [`CAPTION_BATCH`] photos in one batched
//! beam search ([`crate::pipeline::CaptionStream`]), refilled as photos finish, and sends
//! the photos' events in order. A photo that cannot be read is reported and the folder goes on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use super::{CancelToken, Job, JobContext, JobError, JobEvent, Sink};
use crate::encoder::image_io::{self, DecodeLimits};
use crate::encoder::{PreprocessedImage, fast_jpeg};
use crate::pipeline::{CAPTION_BATCH, CaptionResult, Captioner, DecodeOptions};

/// The photo to caption.
#[derive(Clone, Debug)]
pub enum CaptionInput {
    File(PathBuf),
    /// Pixels from elsewhere (the clipboard), with a label for messages.
    Pixels {
        label: String,
        image: image::RgbImage,
    },
}

impl CaptionInput {
    pub fn label(&self) -> String {
        match self {
            CaptionInput::File(p) => p.display().to_string(),
            CaptionInput::Pixels { label, .. } => label.clone(),
        }
    }
}

/// Photos are read for [`caption_one`] at no less than this many pixels a side (big JPEGs are
/// decoded at reduced size), enough for the app's preview.
pub const PREVIEW_SIDE: u32 = 640;

/// A caption of one photo, and the photo as it was read (oriented; big JPEGs at reduced size,
/// at least [`PREVIEW_SIDE`] pixels a side) for display.
pub struct OneCaption {
    pub result: CaptionResult,
    pub image: image::RgbImage,
}

/// Captions one photo.
pub fn caption_one(
    captioner: &Captioner,
    input: CaptionInput,
    options: &DecodeOptions,
) -> Result<OneCaption, JobError> {
    let started = Instant::now();
    let label = input.label();
    let rgb = match input {
        CaptionInput::File(path) => {
            load_rgb_at_least(&path, PREVIEW_SIDE, &DecodeLimits::default())
                .job_context(|| "reading the photo")?
        }
        CaptionInput::Pixels { image, .. } => image,
    };
    let size = captioner.encoder.input_size();
    let preprocessed = image_io::normalize_rgb(&image_io::resize_rgb(rgb.clone(), size));
    let mut result = captioner
        .caption_image(preprocessed, options)
        .job_context(|| format!("captioning {label}"))?;
    result.millis = started.elapsed().as_secs_f64() * 1e3;
    Ok(OneCaption { result, image: rgb })
}

/// Settings of a folder run.
#[derive(Clone, Debug)]
pub struct FolderOptions {
    pub decode: DecodeOptions,
    /// Photos per encoder pass (and per decoding chunk).
    pub batch: usize,
    pub limits: DecodeLimits,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            decode: DecodeOptions::default(),
            batch: 16,
            limits: DecodeLimits::default(),
        }
    }
}

/// What a folder run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FolderReport {
    pub total: usize,
    pub captioned: usize,
    pub failed: usize,
    /// Cancelled before every photo was handled.
    pub stopped: bool,
    pub seconds: f64,
}

/// A chunk of photos after reading: each its index and its pixels (or why there are none).
type Decoded = Vec<(usize, Result<PreprocessedImage, JobError>)>;

/// A chunk after encoding: the pooled features of the photos that could be read, and the
/// errors of those that could not.
struct Encoded {
    rows: Vec<(usize, Vec<f32>)>,
    failed: Vec<(usize, JobError)>,
    /// Encoding time per photo of the chunk, in milliseconds.
    millis_each: f64,
}

/// Captions every photo of `paths`, sending one [`JobEvent::Captioned`] per photo (in order
/// of completion, which is the order of `paths`) and [`JobEvent::Progress`] as it goes.
pub fn caption_folder(
    captioner: &Captioner,
    paths: &[PathBuf],
    options: &FolderOptions,
    events: Sink,
    cancel: &CancelToken,
) -> Result<FolderReport, JobError> {
    caption_photos(
        captioner,
        paths,
        &|i| read_photo_file(&paths[i]),
        options,
        events,
        cancel,
    )
}

/// Reads the bytes of the photo at an index of a list (a file; a member of a tar archive).
pub type ReadPhoto<'a> = &'a (dyn Fn(usize) -> Result<Vec<u8>, image_io::ImageLoadError> + Sync);

/// [`caption_folder`] over photos that need not be files: `read(i)` gives the bytes of the
/// photo `paths[i]` names (the path is its label in events and messages).
pub fn caption_photos(
    captioner: &Captioner,
    paths: &[PathBuf],
    read: ReadPhoto,
    options: &FolderOptions,
    events: Sink,
    cancel: &CancelToken,
) -> Result<FolderReport, JobError> {
    let started = Instant::now();
    let total = paths.len();
    let batch = options.batch.max(1);
    let size = captioner.encoder.input_size();
    let mut report = FolderReport {
        total,
        ..FolderReport::default()
    };
    events(JobEvent::Progress {
        job: Job::Batch,
        done: 0,
        total,
        eta: None,
    });
    let (decoded_tx, decoded_rx) = crossbeam_channel::bounded::<Decoded>(2);
    let (encoded_tx, encoded_rx) = crossbeam_channel::bounded::<Result<Encoded, JobError>>(2);
    let mut outcome: Result<(), JobError> = Ok(());
    std::thread::scope(|scope| {
        let limits = &options.limits;
        let cancel_reader = cancel.clone();
        scope.spawn(move || {
            for (chunk_index, chunk) in paths.chunks(batch).enumerate() {
                if cancel_reader.is_cancelled() {
                    break;
                }
                let decoded: Decoded = chunk
                    .par_iter()
                    .enumerate()
                    .map(|(i, path)| {
                        let index = chunk_index * batch + i;
                        let result = read(index)
                            .and_then(|bytes| decode_for_encoder(&bytes, path, size, limits))
                            .job_context(|| format!("reading {}", path.display()));
                        (index, result)
                    })
                    .collect();
                if decoded_tx.send(decoded).is_err() {
                    break;
                }
            }
        });
        let cancel_encoder = cancel.clone();
        scope.spawn(move || {
            for chunk in decoded_rx.iter() {
                if cancel_encoder.is_cancelled() {
                    break;
                }
                let encoded = encode_chunk(captioner, chunk);
                let failed = encoded.is_err();
                if encoded_tx.send(encoded).is_err() || failed {
                    break;
                }
            }
        });
        let searched = search_stage(
            captioner,
            paths,
            &options.decode,
            &encoded_rx,
            events,
            cancel,
            started,
            &mut report,
        );
        if let Err(e) = searched {
            outcome = Err(e);
        }
        // Ends the other stages: their next send fails.
        drop(encoded_rx);
    });
    outcome?;
    report.stopped = report.captioned + report.failed < total;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The last stage of [`caption_folder`]: keeps about [`CAPTION_BATCH`] photos in one
/// batched beam search (refilled from the encoder as photos finish, so the products stay
/// large), and sends the photos' events in the order of `paths`.
#[allow(clippy::too_many_arguments)]
fn search_stage(
    captioner: &Captioner,
    paths: &[PathBuf],
    decode: &DecodeOptions,
    encoded_rx: &crossbeam_channel::Receiver<Result<Encoded, JobError>>,
    events: Sink,
    cancel: &CancelToken,
    started: Instant,
    report: &mut FolderReport,
) -> Result<(), JobError> {
    let total = paths.len();
    let mut stream = captioner
        .stream(decode)
        .job_context(|| "starting the caption search")?;
    // Encoded photos not yet in the search, and each photo's time so far (encoding, then
    // its share of every search step it took part in), in milliseconds.
    let mut waiting: VecDeque<(usize, Vec<f32>, f64)> = VecDeque::new();
    let mut millis: HashMap<usize, f64> = HashMap::new();
    // Results not yet sent because an earlier photo is still being captioned.
    let mut ready: BTreeMap<usize, Result<CaptionResult, JobError>> = BTreeMap::new();
    let mut next_event = 0;
    let mut open = true;
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        // Keep the search fed: wait for the encoder only while too few photos are in it.
        while open && waiting.is_empty() && stream.in_flight() < CAPTION_BATCH {
            match encoded_rx.recv() {
                Ok(encoded) => {
                    let encoded = encoded?;
                    for (index, f) in encoded.rows {
                        waiting.push_back((index, f, encoded.millis_each));
                    }
                    for (index, e) in encoded.failed {
                        ready.insert(index, Err(e));
                    }
                }
                Err(_) => open = false,
            }
        }
        while stream.in_flight() < CAPTION_BATCH {
            let Some((index, f, encoding)) = waiting.pop_front() else {
                break;
            };
            millis.insert(index, encoding);
            if let Err(e) = stream.push(index, &f) {
                millis.remove(&index);
                let path = paths[index].display().to_string();
                ready.insert(
                    index,
                    Err(JobError::new(e).context(format!("captioning {path}"))),
                );
            }
        }
        if stream.in_flight() > 0 {
            let t = Instant::now();
            let share = |n: usize| t.elapsed().as_secs_f64() * 1e3 / n.max(1) as f64;
            let in_flight = stream.in_flight();
            let done = stream.step();
            let each = share(in_flight);
            for m in millis.values_mut() {
                *m += each;
            }
            let done = done.job_context(|| "captioning the photos")?;
            for (index, result) in done {
                let ms = millis.remove(&index).unwrap_or_default();
                let path = paths[index].display().to_string();
                let result = result
                    .map(|mut r| {
                        r.millis = ms;
                        r
                    })
                    .job_context(|| format!("captioning {path}"));
                ready.insert(index, result);
            }
        }
        // Send what is ready, in order.
        while let Some(result) = ready.remove(&next_event) {
            match &result {
                Ok(_) => report.captioned += 1,
                Err(_) => report.failed += 1,
            }
            events(JobEvent::Captioned {
                index: next_event,
                path: paths[next_event].clone(),
                result,
            });
            next_event += 1;
            let done = report.captioned + report.failed;
            events(JobEvent::Progress {
                job: Job::Batch,
                done,
                total,
                eta: super::eta(started, done, total),
            });
        }
        if !open && waiting.is_empty() && stream.in_flight() == 0 {
            // Whatever is left in `ready` follows a photo that never came (cancelled).
            return Ok(());
        }
    }
}

fn encode_chunk(captioner: &Captioner, chunk: Decoded) -> Result<Encoded, JobError> {
    let started = Instant::now();
    let mut indices = Vec::with_capacity(chunk.len());
    let mut images = Vec::with_capacity(chunk.len());
    let mut failed = Vec::new();
    for (index, result) in chunk {
        match result {
            Ok(img) => {
                indices.push(index);
                images.push(img);
            }
            Err(e) => failed.push((index, e)),
        }
    }
    let mut rows = Vec::with_capacity(indices.len());
    if !images.is_empty() {
        let out = captioner
            .encoder
            .encode(&images)
            .job_context(|| "running the image encoder")?;
        let inputs: Vec<Vec<f32>> = captioner
            .decoder_inputs(&out)
            .job_context(|| "reading the image features")?;
        rows.extend(indices.into_iter().zip(inputs));
    }
    let n = (rows.len() + failed.len()).max(1);
    Ok(Encoded {
        rows,
        failed,
        millis_each: started.elapsed().as_secs_f64() * 1e3 / n as f64,
    })
}

/// Reads one photo for the encoder: big JPEGs are decoded at a reduced size straight from
/// their DCT coefficients (no full-resolution decode), everything else by the common loader.
/// EXIF orientation and size limits apply either way.
pub fn load_for_encoder(
    path: &Path,
    size: u32,
    limits: &DecodeLimits,
) -> Result<PreprocessedImage, image_io::ImageLoadError> {
    let rgb = load_rgb_at_least(path, size, limits)?;
    Ok(image_io::normalize_rgb(&image_io::resize_rgb(rgb, size)))
}

/// [`load_for_encoder`] of a photo already read into memory (`path` names it in errors).
pub fn decode_for_encoder(
    bytes: &[u8],
    path: &Path,
    size: u32,
    limits: &DecodeLimits,
) -> Result<PreprocessedImage, image_io::ImageLoadError> {
    let rgb = decode_rgb_at_least(bytes, path, size, limits)?;
    Ok(image_io::normalize_rgb(&image_io::resize_rgb(rgb, size)))
}

/// The bytes of a photo file (a missing file is [`image_io::ImageLoadError::NotFound`]).
pub fn read_photo_file(path: &Path) -> Result<Vec<u8>, image_io::ImageLoadError> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => image_io::ImageLoadError::NotFound {
            path: path.to_path_buf(),
        },
        _ => image_io::ImageLoadError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })
}

/// Reads a photo as upright RGB, decoding big JPEGs at reduced size (still at least
/// `min_side` pixels a side).
pub fn load_rgb_at_least(
    path: &Path,
    min_side: u32,
    limits: &DecodeLimits,
) -> Result<image::RgbImage, image_io::ImageLoadError> {
    decode_rgb_at_least(&read_photo_file(path)?, path, min_side, limits)
}

/// [`load_rgb_at_least`] of a photo already read into memory (`path` names it in errors).
pub fn decode_rgb_at_least(
    bytes: &[u8],
    path: &Path,
    min_side: u32,
    limits: &DecodeLimits,
) -> Result<image::RgbImage, image_io::ImageLoadError> {
    match fast_jpeg::decode_scaled(bytes, path, min_side, limits)? {
        Some(rgb) => Ok(rgb),
        None => image_io::decode_rgb(bytes, path, limits),
    }
}

/// Paths that could not be read, with the reason.
pub type Unreadable = Vec<(PathBuf, String)>;

/// The photos in `dir` and its sub-folders (by extension; hidden files and folders skipped),
/// sorted by path, and the entries that could not be read, with the reason. Symbolic links
/// are followed, to photos and to folders alike, so a folder of links to photos elsewhere
/// lists those photos; a link that leads back into a folder above it (a loop) is not
/// followed and is reported, and so is a link whose target is gone.
pub fn list_photos(dir: &Path) -> Result<(Vec<PathBuf>, Unreadable), JobError> {
    if !dir.is_dir() {
        return Err(JobError::msg(format!("{}: not a folder", dir.display())));
    }
    let mut photos = Vec::new();
    let mut unreadable = Vec::new();
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                if crate::dataset::has_image_extension(e.path()) {
                    photos.push(e.into_path());
                }
            }
            Ok(_) => {}
            Err(e) => {
                let path = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| dir.to_path_buf());
                if e.depth() == 0 {
                    return Err(JobError::new(e).context(format!("listing {}", path.display())));
                }
                let reason = if let Some(ancestor) = e.loop_ancestor() {
                    format!(
                        "a symbolic link back to {}: not followed (a loop)",
                        ancestor.display()
                    )
                } else if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink())
                    && std::fs::metadata(&path).is_err()
                {
                    // Only a broken link to something that would be listed is worth a word.
                    if !crate::dataset::has_image_extension(&path) && path.extension().is_some() {
                        continue;
                    }
                    "a symbolic link whose target is missing".to_string()
                } else {
                    e.to_string()
                };
                unreadable.push((path, reason));
            }
        }
    }
    photos.sort();
    Ok((photos, unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn links_to_photos_and_folders_are_followed_and_loops_reported() {
        use std::os::unix::fs::symlink;
        let real = tempfile::tempdir().unwrap();
        std::fs::write(real.path().join("a.jpg"), b"x").unwrap();
        std::fs::write(real.path().join("b.png"), b"x").unwrap();
        std::fs::create_dir(real.path().join("sub")).unwrap();
        std::fs::write(real.path().join("sub").join("c.jpg"), b"x").unwrap();

        let links = tempfile::tempdir().unwrap();
        let d = links.path();
        symlink(real.path().join("a.jpg"), d.join("one.jpg")).unwrap();
        symlink(real.path().join("b.png"), d.join("two.png")).unwrap();
        symlink(real.path().join("sub"), d.join("linked-folder")).unwrap();
        symlink(d, d.join("loop")).unwrap();
        symlink(d.join("gone.jpg"), d.join("broken.jpg")).unwrap();
        symlink(d.join("gone.txt"), d.join("broken.txt")).unwrap();

        let (photos, unreadable) = list_photos(d).unwrap();
        let names: Vec<String> = photos
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["linked-folder/c.jpg", "one.jpg", "two.png"]);
        let reported: Vec<(String, &str)> = unreadable
            .iter()
            .map(|(p, why)| {
                (
                    p.strip_prefix(d).unwrap().display().to_string(),
                    why.as_str(),
                )
            })
            .collect();
        assert_eq!(reported.len(), 2, "{reported:?}");
        assert_eq!(reported[0].0, "broken.jpg");
        assert!(reported[0].1.contains("target is missing"), "{reported:?}");
        assert_eq!(reported[1].0, "loop");
        assert!(reported[1].1.contains("loop"), "{reported:?}");
    }
}
