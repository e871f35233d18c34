//! What image loading shares between the common loader ([`super::image_io`]) and the fast
//! JPEG path ([`super::fast_jpeg`]): the error type, the decoding limits and the truncation
//! check. Both import it, so neither imports the other's internals.

use std::path::{Path, PathBuf};

/// Why an image could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageLoadError {
    #[error("image file not found: {}", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot read image file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("image file is empty (0 bytes): {}", path.display())]
    Empty { path: PathBuf },
    #[error("{} is not an image: its content is not a known image format{}", path.display(),
        extension.as_ref().map(|e| format!(" (despite the .{e} extension)")).unwrap_or_default())]
    NotAnImage {
        path: PathBuf,
        extension: Option<String>,
    },
    #[error("unsupported image format in {}: {detail}", path.display())]
    Unsupported { path: PathBuf, detail: String },
    #[error("corrupt or truncated image {}: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("image {} is too large: {detail}", path.display())]
    TooLarge { path: PathBuf, detail: String },
    #[error("invalid raw RGB data for {}: {detail}", path.display())]
    InvalidPixels { path: PathBuf, detail: String },
}

impl ImageLoadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::NotFound { path }
            | Self::Io { path, .. }
            | Self::Empty { path }
            | Self::NotAnImage { path, .. }
            | Self::Unsupported { path, .. }
            | Self::Corrupt { path, .. }
            | Self::TooLarge { path, .. }
            | Self::InvalidPixels { path, .. } => path,
        }
    }
}

/// Bounds on what the decoder may allocate, against decompression bombs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width in pixels.
    pub max_width: u32,
    /// Largest accepted height in pixels.
    pub max_height: u32,
    /// Largest decoded pixel buffer in bytes (e.g. 10,000 x 10,000 RGB8 needs 300 MB).
    pub max_decoded_bytes: u64,
    /// Largest accepted file in bytes.
    pub max_file_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_width: 16_384,
            max_height: 16_384,
            max_decoded_bytes: 512 * 1024 * 1024,
            max_file_bytes: 512 * 1024 * 1024,
        }
    }
}

/// A JPEG is truncated when no end-of-image marker (FF D9) follows the last start-of-scan
/// marker (FF DA). Entropy-coded data byte-stuffs every FF, so neither marker can appear
/// inside it by accident, and embedded EXIF thumbnails come before the main scan.
pub(crate) fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        None => true,
        Some(pos) => !bytes[pos..].windows(2).any(|w| w == [0xFF, 0xD9]),
    }
}
