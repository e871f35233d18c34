//! Captions where photo tools read them: XMP sidecars, metadata embedded in JPEG and PNG files,
//! and alt-text exports ([`alt_text`]).
//!
//! - [`write_sidecar`] writes `photo.xmp` beside `photo.jpg` ([`xmp_sidecar_path`]) holding
//!   `dc:description` (x-default) and `dc:subject`. An existing sidecar keeps everything else:
//!   other namespaces, and the other languages of `dc:description`.
//! - [`embed_description`] writes the caption into the photo itself without re-encoding it:
//!   JPEG gets XMP (APP1 `http://ns.adobe.com/xap/1.0/`) and EXIF IFD0 `ImageDescription`
//!   (APP1 `Exif`), PNG gets XMP in an `iTXt` chunk (`XML:com.adobe.xmp`). Only header
//!   segments/chunks change; the image data is copied byte for byte and all other metadata is
//!   kept.
//! - [`read_description`] reads a caption back: sidecar first, then embedded XMP, then EXIF.
//!
//! Every write is atomic (temporary file in the same folder, permissions copied, synced, renamed
//! over the original). A photo that cannot be written (read-only file or folder, a format other
//! than JPEG or PNG, a corrupt file, metadata too large for a JPEG segment) is reported with a
//! [`MetadataError`] naming the file, and left byte for byte as it was.
//!
//! Sidecar naming: `photo.xmp` (the extension replaced) is what Lightroom and other Adobe tools
//! read and what digiKam writes with its "commercial programs" naming option; darktable and
//! digiKam's default use `photo.jpg.xmp`. We write `photo.xmp` (the name this project's issue
//! asks for) and read both, `photo.xmp` first. Two photos that differ only in extension
//! (`a.jpg`, `a.png`) share `a.xmp`: callers should warn about such pairs.
//!
//! Empty `subjects` leave an existing `dc:subject` as it is (and add none); characters XML
//! cannot carry (C0 controls other than tab and newline) are dropped, and NULs are dropped from
//! the EXIF string.

pub mod alt_text;
mod jpeg;
mod png;
mod xmp;

use std::path::{Path, PathBuf};

/// A caption and its subjects (keywords, tags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Described {
    pub caption: String,
    pub subjects: Vec<String>,
}

/// Where [`read_description_with_source`] found a description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An XMP sidecar (its path).
    Sidecar(PathBuf),
    /// XMP embedded in the photo.
    EmbeddedXmp,
    /// EXIF `ImageDescription` (no subjects).
    Exif,
}

/// The image formats a caption can be embedded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
}

/// Why a photo or sidecar was not written (or not read). Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot write (left unchanged): {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {} is read-only; left unchanged", .path.display(), if *.folder { "its folder" } else { "the file" })]
    ReadOnly { path: PathBuf, folder: bool },
    #[error("{}: {format} files cannot hold an embedded caption here (JPEG and PNG can); left unchanged", .path.display())]
    Unsupported { path: PathBuf, format: String },
    #[error("{}: not a valid {format} file: {reason}; left unchanged", .path.display())]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    #[error("{}: {reason}; left unchanged", .path.display())]
    TooLarge { path: PathBuf, reason: String },
    #[error("{}: the XMP cannot be read: {reason}", .path.display())]
    Xmp { path: PathBuf, reason: String },
}

impl MetadataError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. }
            | Self::Write { path, .. }
            | Self::ReadOnly { path, .. }
            | Self::Unsupported { path, .. }
            | Self::Corrupt { path, .. }
            | Self::TooLarge { path, .. }
            | Self::Xmp { path, .. } => path,
        }
    }
}

type Result<T> = std::result::Result<T, MetadataError>;

/// The sidecar this module writes for `photo`: usually the extension replaced by `xmp`
/// (`photo.xmp`). When another photo in the folder has the same name with another extension
/// (`a.jpg` and `a.png`), `a.xmp` would belong to both, so each gets its own `a.jpg.xmp`
/// (darktable's form) instead; so does a photo that already has one.
pub fn xmp_sidecar_path(photo: &Path) -> PathBuf {
    let long = long_sidecar(photo);
    if long.is_file() || shares_stem(photo) {
        long
    } else {
        photo.with_extension("xmp")
    }
}

/// `photo.jpg.xmp`.
fn long_sidecar(photo: &Path) -> PathBuf {
    let mut long = photo.as_os_str().to_owned();
    long.push(".xmp");
    PathBuf::from(long)
}

/// Whether another image beside `photo` has the same name with another extension.
fn shares_stem(photo: &Path) -> bool {
    let own = photo
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    crate::dataset::IMAGE_EXTENSIONS.iter().any(|ext| {
        own.as_deref() != Some(*ext)
            && [ext.to_string(), ext.to_ascii_uppercase()]
                .iter()
                .any(|e| photo.with_extension(e).is_file())
    })
}

/// The sidecar names read for `photo`, in order: the one [`xmp_sidecar_path`] writes, then the
/// other form, unless `photo.xmp` is shared with a same-named photo (it is then nobody's).
pub fn sidecar_candidates(photo: &Path) -> Vec<PathBuf> {
    let long = long_sidecar(photo);
    let short = photo.with_extension("xmp");
    if long.is_file() {
        if shares_stem(photo) {
            vec![long]
        } else {
            vec![long, short]
        }
    } else if short.is_file() && !shares_stem(photo) {
        vec![short]
    } else {
        Vec::new()
    }
}

/// The format of `bytes` by their signature: JPEG, PNG, or the name of another format (or
/// "unrecognised").
fn sniff(bytes: &[u8]) -> std::result::Result<Format, &'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(Format::Jpeg)
    } else if bytes.starts_with(png::SIGNATURE) {
        Ok(Format::Png)
    } else if bytes.starts_with(b"GIF8") {
        Err("GIF")
    } else if bytes.starts_with(b"BM") {
        Err("BMP")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Err("WebP")
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Err("TIFF")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        Err("HEIF/AVIF")
    } else {
        Err("unrecognised")
    }
}

/// The format a file's extension claims, for files whose bytes are not recognised.
fn claimed_format(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" | "jpe" | "jfif" => Some("JPEG"),
        "png" => Some("PNG"),
        _ => None,
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| MetadataError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Refuses files or folders without write permission (checked on the mode bits, so it holds
/// for root too: renaming over a read-only file would otherwise succeed).
fn check_writable(path: &Path, must_exist: bool) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().readonly() => {
            return Err(MetadataError::ReadOnly {
                path: path.to_path_buf(),
                folder: false,
            });
        }
        Ok(_) => {}
        Err(source) if must_exist || source.kind() != std::io::ErrorKind::NotFound => {
            return Err(MetadataError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
        Err(_) => {}
    }
    let dir = parent_dir(path);
    match std::fs::metadata(dir) {
        Ok(m) if m.permissions().readonly() => Err(MetadataError::ReadOnly {
            path: path.to_path_buf(),
            folder: true,
        }),
        _ => Ok(()),
    }
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Replaces `path` with `bytes` atomically ([`crate::files::write_atomic`], which keeps the
/// file's permissions). `fail_after` simulates a crash: the temporary file gets that many
/// bytes, then the write fails.
fn replace_file(path: &Path, bytes: &[u8], fail_after: Option<usize>) -> Result<()> {
    match fail_after {
        None => crate::files::write_atomic(path, bytes),
        Some(n) => crate::files::write_atomic_interrupted(path, bytes, n),
    }
    .map_err(|source| MetadataError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes (or updates) the XMP sidecar of `photo` and returns its path. In an existing sidecar
/// only `dc:description` (x-default) and `dc:subject` change.
pub fn write_sidecar(photo: &Path, described: &Described) -> Result<PathBuf> {
    let path = xmp_sidecar_path(photo);
    check_writable(&path, false)?;
    let text = match std::fs::read(&path) {
        Ok(bytes) => {
            let old = String::from_utf8(bytes).map_err(|e| MetadataError::Xmp {
                path: path.clone(),
                reason: format!("not UTF-8: {e}"),
            })?;
            let old = old.trim_start_matches('\u{FEFF}');
            xmp::update(old, described).map_err(|reason| MetadataError::Xmp {
                path: path.clone(),
                reason,
            })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => xmp::new_packet(described),
        Err(source) => return Err(MetadataError::Read { path, source }),
    };
    replace_file(&path, text.as_bytes(), None)?;
    Ok(path)
}

/// The bytes of `photo` with `described` embedded, or why not.
fn embedded_bytes(photo: &Path, bytes: &[u8], described: &Described) -> Result<Vec<u8>> {
    let corrupt = |format, reason| MetadataError::Corrupt {
        path: photo.to_path_buf(),
        format,
        reason,
    };
    match sniff(bytes) {
        Ok(Format::Jpeg) => jpeg::embed(bytes, described).map_err(|e| match e {
            jpeg::EmbedError::Corrupt(r) => corrupt("JPEG", r),
            jpeg::EmbedError::TooLarge(reason) => MetadataError::TooLarge {
                path: photo.to_path_buf(),
                reason,
            },
        }),
        Ok(Format::Png) => png::embed(bytes, described).map_err(|r| corrupt("PNG", r)),
        Err(other) => match claimed_format(photo) {
            Some(f) => Err(corrupt(
                f,
                format!("the file does not start with a {f} signature"),
            )),
            None => Err(MetadataError::Unsupported {
                path: photo.to_path_buf(),
                format: other.to_string(),
            }),
        },
    }
}

/// Writes `described` into `photo` (JPEG: XMP and EXIF `ImageDescription`; PNG: XMP iTXt),
/// keeping the image data and all other metadata byte for byte. A photo that already holds
/// exactly this is not rewritten.
pub fn embed_description(photo: &Path, described: &Described) -> Result<()> {
    embed_inner(photo, described, None)
}

fn embed_inner(photo: &Path, described: &Described, fail_after: Option<usize>) -> Result<()> {
    let bytes = read(photo)?;
    let new = embedded_bytes(photo, &bytes, described)?;
    if new == bytes && fail_after.is_none() {
        return Ok(());
    }
    check_writable(photo, true)?;
    replace_file(photo, &new, fail_after)
}

/// Fault injection for tests: embedding that fails after writing `fail_after` bytes of the
/// temporary file, as a crash would.
#[doc(hidden)]
pub mod fault {
    use super::*;

    /// [`embed_description`] interrupted after `fail_after` bytes of the new file.
    pub fn embed_description_interrupted(
        photo: &Path,
        described: &Described,
        fail_after: usize,
    ) -> Result<()> {
        embed_inner(photo, described, Some(fail_after))
    }
}

/// The caption and subjects of `photo`: from an XMP sidecar, else XMP embedded in the photo,
/// else EXIF `ImageDescription`. `None` when none has a caption or subjects.
pub fn read_description(photo: &Path) -> Result<Option<Described>> {
    Ok(read_description_with_source(photo)?.map(|(d, _)| d))
}

fn described_from(parsed: &xmp::Parsed) -> Option<Described> {
    let caption = parsed.caption().unwrap_or_default();
    let subjects: Vec<String> = parsed
        .subjects
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    (!caption.is_empty() || !subjects.is_empty()).then_some(Described { caption, subjects })
}

/// Descriptions cameras write by default, which are not captions.
fn is_camera_default(s: &str) -> bool {
    let u = s.trim().to_ascii_uppercase();
    u.ends_with("DIGITAL CAMERA") || matches!(u.as_str(), "SONY DSC" | "DEFAULT" | "DCIM")
}

/// [`read_description`], with where the description was found.
pub fn read_description_with_source(photo: &Path) -> Result<Option<(Described, Source)>> {
    for sidecar in sidecar_candidates(photo) {
        let bytes = match std::fs::read(&sidecar) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(MetadataError::Read {
                    path: sidecar,
                    source,
                });
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let parsed = xmp::parse(text.trim_start_matches('\u{FEFF}')).map_err(|reason| {
            MetadataError::Xmp {
                path: sidecar.clone(),
                reason,
            }
        })?;
        if let Some(d) = described_from(&parsed) {
            return Ok(Some((d, Source::Sidecar(sidecar))));
        }
    }
    let bytes = read(photo)?;
    let xmp_err = |reason| MetadataError::Xmp {
        path: photo.to_path_buf(),
        reason,
    };
    match sniff(&bytes) {
        Ok(Format::Jpeg) => {
            let j = jpeg::parse(&bytes).map_err(|reason| MetadataError::Corrupt {
                path: photo.to_path_buf(),
                format: "JPEG",
                reason,
            })?;
            if let Some(packet) = j.xmp() {
                let text = String::from_utf8_lossy(packet);
                let parsed = xmp::parse(text.trim_end_matches('\0')).map_err(xmp_err)?;
                if let Some(d) = described_from(&parsed) {
                    return Ok(Some((d, Source::EmbeddedXmp)));
                }
            }
            if let Some(tiff) = j.exif_tiff() {
                // A damaged EXIF block is not worth failing the read over: no caption from it.
                if let Ok(Some(text)) = jpeg::image_description(tiff)
                    && !is_camera_default(&text)
                {
                    return Ok(Some((
                        Described {
                            caption: text,
                            subjects: Vec::new(),
                        },
                        Source::Exif,
                    )));
                }
            }
            Ok(None)
        }
        Ok(Format::Png) => {
            let packet = png::xmp(&bytes).map_err(|reason| MetadataError::Corrupt {
                path: photo.to_path_buf(),
                format: "PNG",
                reason,
            })?;
            match packet {
                Some(p) => {
                    let parsed = xmp::parse(p.trim_end_matches('\0')).map_err(xmp_err)?;
                    Ok(described_from(&parsed).map(|d| (d, Source::EmbeddedXmp)))
                }
                None => Ok(None),
            }
        }
        Err(_) => Ok(None),
    }
}
