//! Reduced-size JPEG decoding for photos much larger than the encoder's input.
//!
//! A 12-megapixel JPEG that ends up as 224 x 224 pixels does not need every pixel decoded: the
//! JPEG's 8 x 8 DCT blocks can be inverse-transformed at 1/2, 1/4 or 1/8 of their size
//! (`jpeg-decoder`'s `scale`), which skips most of the IDCT, colour conversion and the resize
//! that follows. The output is still at least the requested size on both sides, so the final
//! resize only ever shrinks. `captioner bench batch` measures the effect on big photos.

use std::path::Path;

use image::{DynamicImage, RgbImage, metadata::Orientation};

use super::image_error::{DecodeLimits, ImageLoadError, jpeg_is_truncated};

/// Decodes `bytes` at reduced size when it is a baseline or progressive JPEG at least twice
/// `min_side` on both sides; `Ok(None)` when it is not (use the common loader then).
/// EXIF orientation is applied; `limits` are checked before any pixel is decoded.
pub fn decode_scaled(
    bytes: &[u8],
    path: &Path,
    min_side: u32,
    limits: &DecodeLimits,
) -> Result<Option<RgbImage>, ImageLoadError> {
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) || min_side == 0 {
        return Ok(None);
    }
    let corrupt = |detail: String| ImageLoadError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    if jpeg_is_truncated(bytes) {
        return Err(corrupt(
            "JPEG data ends before the end-of-image marker (truncated file)".to_string(),
        ));
    }
    let decoded = std::panic::catch_unwind(|| -> Result<Option<RgbImage>, ImageLoadError> {
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        if decoder.read_info().is_err() {
            // Leave odd files to the common loader, which reports them in detail.
            return Ok(None);
        }
        let Some(info) = decoder.info() else {
            return Ok(None);
        };
        let (w, h) = (u32::from(info.width), u32::from(info.height));
        if w > limits.max_width || h > limits.max_height {
            return Err(ImageLoadError::TooLarge {
                path: path.to_path_buf(),
                detail: format!(
                    "{w}x{h} pixels, the limit is {}x{}",
                    limits.max_width, limits.max_height
                ),
            });
        }
        let rgb_like = matches!(
            info.pixel_format,
            jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8
        );
        if !rgb_like || w < 2 * min_side || h < 2 * min_side {
            return Ok(None);
        }
        let side = u16::try_from(min_side).unwrap_or(u16::MAX);
        let (sw, sh) = decoder
            .scale(side, side)
            .map_err(|e| corrupt(e.to_string()))?;
        let pixels = decoder.decode().map_err(|e| corrupt(e.to_string()))?;
        let (sw, sh) = (u32::from(sw), u32::from(sh));
        let image = match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(sw, sh, pixels)
                .map(|g| DynamicImage::ImageLuma8(g).into_rgb8()),
            _ => RgbImage::from_raw(sw, sh, pixels),
        };
        let Some(image) = image else {
            return Err(corrupt(format!(
                "the decoder returned a buffer of the wrong size for {sw}x{sh} pixels"
            )));
        };
        let orientation = decoder
            .exif_data()
            .and_then(Orientation::from_exif_chunk)
            .unwrap_or(Orientation::NoTransforms);
        let mut image = DynamicImage::ImageRgb8(image);
        image.apply_orientation(orientation);
        Ok(Some(image.into_rgb8()))
    });
    decoded.unwrap_or_else(|_| Err(corrupt("the JPEG decoder failed on this file".to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn big_jpegs_are_decoded_at_reduced_size_small_ones_are_left_alone() {
        let limits = DecodeLimits::default();
        let big = decode_scaled(&jpeg(1600, 1200), Path::new("big.jpg"), 224, &limits)
            .unwrap()
            .unwrap();
        // 1/4 scale keeps both sides at least 224 (1/8 would give 200x150).
        assert_eq!(big.dimensions(), (400, 300));
        // Same picture as the full decode, resized: a smooth gradient stays a gradient.
        let full = image::load_from_memory(&jpeg(1600, 1200))
            .unwrap()
            .into_rgb8();
        let a = image::imageops::thumbnail(&big, 40, 30);
        let b = image::imageops::thumbnail(&full, 40, 30);
        let max_diff = a
            .pixels()
            .zip(b.pixels())
            .flat_map(|(p, q)| (0..3).map(move |c| (i32::from(p[c]) - i32::from(q[c])).abs()))
            .max()
            .unwrap();
        assert!(max_diff <= 12, "scaled decode differs by {max_diff}");
        assert!(
            decode_scaled(&jpeg(300, 300), Path::new("small.jpg"), 224, &limits)
                .unwrap()
                .is_none()
        );
        assert!(
            decode_scaled(b"not a jpeg", Path::new("x.jpg"), 224, &limits)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn limits_and_truncation_are_reported() {
        let bytes = jpeg(1000, 800);
        let limits = DecodeLimits {
            max_width: 900,
            ..DecodeLimits::default()
        };
        let e = decode_scaled(&bytes, Path::new("wide.jpg"), 224, &limits).unwrap_err();
        assert!(matches!(e, ImageLoadError::TooLarge { .. }), "{e}");
        let e = decode_scaled(
            &bytes[..bytes.len() / 2],
            Path::new("half.jpg"),
            224,
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("half.jpg"), "{e}");
    }
}
