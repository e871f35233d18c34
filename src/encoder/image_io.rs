//! Image loading and preprocessing for the encoder.
//!
//! * Formats: everything the `image` crate decodes with its default features, in particular
//!   JPEG, PNG, WebP, BMP, GIF (the first frame of an animation) and TIFF. The format is taken
//!   from the file's content, not its extension.
//! * EXIF orientation (JPEG, WebP, TIFF) is applied, so a photo taken in portrait comes out
//!   upright.
//! * Colour: grayscale is replicated to RGB; 16-bit and float images are scaled to 8 bits; CMYK
//!   JPEGs are converted to RGB by the decoder; images with an alpha channel are composited over
//!   a **white** background (transparent areas become white, not whatever colour happens to be
//!   stored under them).
//! * Resizing: straight to the model's square input size with a Catmull-Rom (bicubic, a = -0.5)
//!   filter, without keeping the aspect ratio and without cropping, as the reference outputs
//!   were made (Pillow BICUBIC resize of the whole image).
//! * Normalisation: `(pixel - 127) / 128` per channel, RGB order, HWC layout.
//! * Decompression bombs: decoding is bounded by [`DecodeLimits`] (by default at most
//!   16384 x 16384 pixels, 512 MiB for the decoded buffer and 512 MiB of file); larger images
//!   give [`ImageLoadError::TooLarge`] before the pixel buffer is allocated.
//! * HEIC/HEIF and AVIF files (recognised by their `ftyp` box, whatever their extension) give
//!   [`ImageLoadError::Unsupported`] with a clear message.
//! * Thumbnails ([`load_thumbnail`]) go through the same loader, so the app applies the same
//!   limits and orientation as captioning and feature extraction.
//! * Truncated JPEGs (no end-of-image marker after the last scan) are rejected instead of being
//!   silently filled with grey, and decoder panics are turned into errors.

use std::io::Cursor;
use std::path::Path;

use super::image_error::jpeg_is_truncated;
pub use super::image_error::{DecodeLimits, ImageLoadError};

use image::{
    DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage,
    imageops::FilterType, metadata::Orientation,
};

/// A preprocessed image ready for the encoder: normalised `(pixel - 127) / 128`, HWC, RGB.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessedImage {
    pub width: usize,
    pub height: usize,
    /// `height * width * 3` values, row-major, channels last.
    pub data: Vec<f32>,
}

/// Normalisation the weights were trained with: `(pixel - 127) / 128`.
#[inline]
pub fn normalize_pixel(p: u8) -> f32 {
    (f32::from(p) - 127.0) / 128.0
}

/// Loads an image file as upright 8-bit RGB with the default [`DecodeLimits`].
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageLoadError> {
    load_rgb_with_limits(path, &DecodeLimits::default())
}

/// Loads an image file as upright 8-bit RGB.
pub fn load_rgb_with_limits(
    path: &Path,
    limits: &DecodeLimits,
) -> Result<RgbImage, ImageLoadError> {
    Ok(into_rgb8_over_white(load_image(path, limits)?))
}

/// Loads an image file, upright (EXIF orientation applied), in its own colour type. This is
/// the one loader behind captioning, feature extraction ([`load_rgb`], [`decode_rgb`]) and the
/// app's thumbnails ([`load_thumbnail`]): the same formats, limits and errors everywhere.
pub fn load_image(path: &Path, limits: &DecodeLimits) -> Result<DynamicImage, ImageLoadError> {
    let bytes = read_checked(path, limits)?;
    decode_image(&bytes, path, limits)
}

/// The bytes of an image file, after checking that it is a file within the size limit.
fn read_checked(path: &Path, limits: &DecodeLimits) -> Result<Vec<u8>, ImageLoadError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if meta.is_dir() {
        return Err(ImageLoadError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("is a directory"),
        });
    }
    if meta.len() > limits.max_file_bytes {
        return Err(ImageLoadError::TooLarge {
            path: path.to_path_buf(),
            detail: format!(
                "the file has {} bytes, the limit is {}",
                meta.len(),
                limits.max_file_bytes
            ),
        });
    }
    std::fs::read(path).map_err(|e| io_error(path, e))
}

/// A thumbnail of an image file, shrunk to fit in `side` x `side`, keeping the aspect ratio
/// and the alpha channel: big JPEGs are decoded at reduced size straight from their DCT
/// coefficients (a camera photo is never decoded at full size for a thumbnail), everything
/// else as [`load_image`] does; the same limits (an oversized image is reported, never
/// decoded), EXIF orientation and messages either way.
pub fn load_thumbnail(
    path: &Path,
    side: u32,
    limits: &DecodeLimits,
) -> Result<image::RgbaImage, ImageLoadError> {
    let bytes = read_checked(path, limits)?;
    let image = match super::fast_jpeg::decode_scaled(&bytes, path, side, limits)? {
        Some(rgb) => DynamicImage::ImageRgb8(rgb),
        None => decode_image(&bytes, path, limits)?,
    };
    let small = if image.width() > side || image.height() > side {
        image.thumbnail(side, side)
    } else {
        image
    };
    Ok(small.into_rgba8())
}

fn io_error(path: &Path, e: std::io::Error) -> ImageLoadError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ImageLoadError::NotFound {
            path: path.to_path_buf(),
        }
    } else {
        ImageLoadError::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Decodes an in-memory image file as upright 8-bit RGB. `path` is only used to name the image
/// in errors (and as a format hint for formats without a signature, such as TGA).
pub fn decode_rgb(
    bytes: &[u8],
    path: &Path,
    limits: &DecodeLimits,
) -> Result<RgbImage, ImageLoadError> {
    Ok(into_rgb8_over_white(decode_image(bytes, path, limits)?))
}

/// Decodes an in-memory image file, upright, in its own colour type (see [`load_image`]).
pub fn decode_image(
    bytes: &[u8],
    path: &Path,
    limits: &DecodeLimits,
) -> Result<DynamicImage, ImageLoadError> {
    let path_buf = || path.to_path_buf();
    if bytes.is_empty() {
        return Err(ImageLoadError::Empty { path: path_buf() });
    }
    if let Some(name) = heif_family(bytes) {
        return Err(ImageLoadError::Unsupported {
            path: path_buf(),
            detail: format!("{name} images are not supported; convert the file to JPEG or PNG"),
        });
    }
    let format = match image::guess_format(bytes) {
        Ok(format) => format,
        Err(_) => match ImageFormat::from_path(path) {
            // TGA has no magic number: trust the extension.
            Ok(ImageFormat::Tga) => ImageFormat::Tga,
            Ok(_) => {
                return Err(ImageLoadError::NotAnImage {
                    path: path_buf(),
                    extension: path.extension().map(|e| e.to_string_lossy().into_owned()),
                });
            }
            Err(_) => {
                return Err(ImageLoadError::NotAnImage {
                    path: path_buf(),
                    extension: None,
                });
            }
        },
    };
    if format == ImageFormat::Jpeg && jpeg_is_truncated(bytes) {
        return Err(ImageLoadError::Corrupt {
            path: path_buf(),
            detail: "JPEG data ends before the end-of-image marker (truncated file)".to_string(),
        });
    }

    // Decoders are not supposed to panic on bad data; if one does, report a corrupt file.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_dynamic(bytes, format, limits)
    }));
    match decoded {
        Ok(result) => result.map_err(|e| map_image_error(e, path)),
        Err(_) => Err(ImageLoadError::Corrupt {
            path: path_buf(),
            detail: format!("the {format:?} decoder failed on this file"),
        }),
    }
}

/// The name of the format when `bytes` is an ISO base media file (an `ftyp` box) of the HEIF
/// family: AVIF, or HEIC/HEIF. Neither can be decoded here. The first 32 bytes suffice for
/// the usual files.
pub fn heif_family(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() < 12 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    // Major brand at 8..12, minor version at 12..16, compatible brands up to the box's end.
    let end = size.min(bytes.len()).min(512);
    let compatible = bytes.get(16..end).unwrap_or(&[]);
    let brands = std::iter::once(&bytes[8..12]).chain(compatible.chunks_exact(4));
    let mut heif = false;
    for brand in brands {
        match brand {
            b"avif" | b"avis" => return Some("AVIF"),
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => {
                heif = true;
            }
            _ => {}
        }
    }
    heif.then_some("HEIC/HEIF")
}

/// Errors of [`decode_dynamic`] before they are tied to a path.
enum DecodeError {
    Image(ImageError),
    TooLarge(String),
}

fn decode_dynamic(
    bytes: &[u8],
    format: ImageFormat,
    limits: &DecodeLimits,
) -> Result<DynamicImage, DecodeError> {
    // The width and height are checked below, from the header, so that the message can give
    // them; the decoder itself is held to the allocation limit.
    let mut image_limits = Limits::default();
    image_limits.max_alloc = Some(limits.max_decoded_bytes);

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(DecodeError::Image)?;
    let (w, h) = decoder.dimensions();
    if w > limits.max_width || h > limits.max_height {
        return Err(DecodeError::TooLarge(format!(
            "{w}x{h} pixels, the limit is {}x{}",
            limits.max_width, limits.max_height
        )));
    }
    let total = decoder.total_bytes();
    if total > limits.max_decoded_bytes {
        return Err(DecodeError::TooLarge(format!(
            "{w}x{h} pixels of {:?} need {total} bytes decoded, the limit is {}",
            decoder.color_type(),
            limits.max_decoded_bytes
        )));
    }
    // A broken EXIF block must not make the whole image unreadable.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(DecodeError::Image)?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn map_image_error(e: DecodeError, path: &Path) -> ImageLoadError {
    let path = path.to_path_buf();
    match e {
        DecodeError::TooLarge(detail) => ImageLoadError::TooLarge { path, detail },
        DecodeError::Image(e) => match e {
            ImageError::Limits(l) => ImageLoadError::TooLarge {
                path,
                detail: l.to_string(),
            },
            ImageError::Unsupported(u) => ImageLoadError::Unsupported {
                path,
                detail: u.to_string(),
            },
            ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                ImageLoadError::Corrupt {
                    path,
                    detail: format!("unexpected end of file ({io})"),
                }
            }
            other => ImageLoadError::Corrupt {
                path,
                detail: other.to_string(),
            },
        },
    }
}

/// Converts any decoded image to 8-bit RGB; alpha is composited over white.
fn into_rgb8_over_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let (w, h) = (image.width(), image.height());
    let mut out = RgbImage::new(w, h);
    if image.color().bytes_per_pixel() / image.color().channel_count() == 1 {
        // 8-bit: La8 or Rgba8.
        let rgba = image.into_rgba8();
        for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
            let a = u32::from(src[3]);
            for c in 0..3 {
                let v = u32::from(src[c]) * a + 255 * (255 - a);
                dst[c] = ((v + 127) / 255) as u8;
            }
        }
    } else {
        // 16-bit or float with alpha.
        let rgba = image.into_rgba16();
        for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
            let a = u64::from(src[3]);
            for c in 0..3 {
                // value in [0, 65535 * 65535]; scale to 8 bits with rounding.
                let v = u64::from(src[c]) * a + 65_535 * (65_535 - a);
                dst[c] = ((v * 255 + 65_535 * 65_535 / 2) / (65_535 * 65_535)) as u8;
            }
        }
    }
    out
}

/// Resizes to `size` x `size` with a Catmull-Rom filter (no crop, aspect ratio not kept).
/// Returns the image unchanged when it already has that size.
pub fn resize_rgb(image: RgbImage, size: u32) -> RgbImage {
    if image.width() == size && image.height() == size {
        image
    } else {
        image::imageops::resize(&image, size, size, FilterType::CatmullRom)
    }
}

/// Normalises an RGB image into a [`PreprocessedImage`].
pub fn normalize_rgb(image: &RgbImage) -> PreprocessedImage {
    PreprocessedImage {
        width: image.width() as usize,
        height: image.height() as usize,
        data: image.as_raw().iter().map(|&p| normalize_pixel(p)).collect(),
    }
}

/// Decode + orient + convert + resize + normalise one image file for a model with a square
/// input of `size` pixels.
pub fn preprocess_file(path: &Path, size: u32) -> Result<PreprocessedImage, ImageLoadError> {
    preprocess_file_with_limits(path, size, &DecodeLimits::default())
}

/// [`preprocess_file`] with explicit decode limits.
pub fn preprocess_file_with_limits(
    path: &Path,
    size: u32,
    limits: &DecodeLimits,
) -> Result<PreprocessedImage, ImageLoadError> {
    let rgb = load_rgb_with_limits(path, limits)?;
    Ok(normalize_rgb(&resize_rgb(rgb, size)))
}

/// Preprocesses many files in parallel (rayon); one result per path, in order.
pub fn preprocess_files<P: AsRef<Path> + Sync>(
    paths: &[P],
    size: u32,
) -> Vec<Result<PreprocessedImage, ImageLoadError>> {
    use rayon::prelude::*;
    paths
        .par_iter()
        .map(|p| preprocess_file(p.as_ref(), size))
        .collect()
}

/// Preprocesses raw 8-bit RGB pixels (HWC, `width * height * 3` bytes), e.g. the reference
/// `pixels/*.rgb` files, resizing them to `size` when needed. `name` is only used in errors.
pub fn preprocess_raw_rgb(
    bytes: &[u8],
    width: u32,
    height: u32,
    size: u32,
    name: &Path,
) -> Result<PreprocessedImage, ImageLoadError> {
    let expected = width as usize * height as usize * 3;
    if width == 0 || height == 0 || bytes.len() != expected {
        return Err(ImageLoadError::InvalidPixels {
            path: name.to_path_buf(),
            detail: format!(
                "{width}x{height} RGB needs {expected} bytes, got {}",
                bytes.len()
            ),
        });
    }
    let Some(image) = RgbImage::from_raw(width, height, bytes.to_vec()) else {
        return Err(ImageLoadError::InvalidPixels {
            path: name.to_path_buf(),
            detail: "buffer does not match the dimensions".to_string(),
        });
    };
    Ok(normalize_rgb(&resize_rgb(image, size)))
}

/// Reads a raw square RGB file such as `pixels/NAME.rgb` (`size * size * 3` bytes).
pub fn preprocess_raw_rgb_file(
    path: &Path,
    size: u32,
) -> Result<PreprocessedImage, ImageLoadError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    if bytes.is_empty() {
        return Err(ImageLoadError::Empty {
            path: path.to_path_buf(),
        });
    }
    let pixels = bytes.len() / 3;
    let side = (pixels as f64).sqrt().round() as u32;
    preprocess_raw_rgb(&bytes, side, side, size, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_constants() {
        assert_eq!(normalize_pixel(127), 0.0);
        assert_eq!(normalize_pixel(255), 1.0);
        assert_eq!(normalize_pixel(0), -127.0 / 128.0);
    }

    #[test]
    fn truncation_check() {
        let ok = [0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0x00, 3, 0xFF, 0xD9];
        assert!(!jpeg_is_truncated(&ok));
        assert!(jpeg_is_truncated(&ok[..8]));
        // thumbnail EOI before the main scan does not count
        let thumb = [0xFF, 0xD8, 0xFF, 0xD9, 0xFF, 0xDA, 1, 2, 3];
        assert!(jpeg_is_truncated(&thumb));
    }

    #[test]
    fn alpha_is_composited_over_white() {
        let mut rgba = image::RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        rgba.put_pixel(1, 0, image::Rgba([10, 20, 30, 255]));
        let rgb = into_rgb8_over_white(DynamicImage::ImageRgba8(rgba));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [10, 20, 30]);

        let mut rgba16 = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::new(2, 1);
        rgba16.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        rgba16.put_pixel(1, 0, image::Rgba([0, 32_768, 65_535, 65_535]));
        let rgb = into_rgb8_over_white(DynamicImage::ImageRgba16(rgba16));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [0, 128, 255]);
    }
}
