//! One image-loading policy: the encoder's loader (captioning, feature extraction) and the
//! app's thumbnails decode every case the same way, through one function. Each case is checked
//! through both entry points. Files are generated here, except those no crate at hand writes
//! (CMYK JPEG, palette PNG, animated WebP, HEIC, AVIF), which are tiny fixtures made with
//! ImageMagick / libwebp / libheif (see `tests/fixtures/images/README.md`).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use captioner::encoder::image_io::{DecodeLimits, ImageLoadError, load_rgb, load_thumbnail};
use captioner_app::thumbnails::decode_thumbnail;
use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("tests/fixtures/images")
        .join(name)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    image.write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(&x, y)| (i32::from(x) - i32::from(y)).abs() <= tol)
}

/// Loads `path` through the encoder's loader and as a thumbnail (both the library entry point
/// and the app's), and checks the pixel at (`x`, `y`) of each (scaled for the thumbnail).
fn check_both(path: &Path, size: (u32, u32), x: u32, y: u32, want: [u8; 3], tol: i32) {
    let rgb = load_rgb(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rgb.dimensions(), size, "{}", path.display());
    let got = rgb.get_pixel(x, y).0;
    assert!(close(got, want, tol), "{}: {got:?}", path.display());

    let thumb = load_thumbnail(path, 8, &DecodeLimits::default()).unwrap();
    let scale = f64::from(size.0.max(size.1)) / 8.0;
    let (tw, th) = thumb.dimensions();
    assert_eq!(tw.max(th), 8.min(size.0.max(size.1)), "{}", path.display());
    let (tx, ty) = (
        ((f64::from(x) / scale) as u32).min(tw - 1),
        ((f64::from(y) / scale) as u32).min(th - 1),
    );
    let p = thumb.get_pixel(tx, ty).0;
    assert!(
        close([p[0], p[1], p[2]], want, tol + 10),
        "{} thumbnail: {p:?}",
        path.display()
    );
    let app = decode_thumbnail(path, 8).unwrap();
    assert_eq!(app.size, [tw as usize, th as usize]);
}

/// A PNG header that claims `w` x `h` RGBA pixels with almost no data (a decompression bomb).
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn a_30000_pixel_png_is_reported_not_decoded_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "huge.png", &bomb_png(30_000, 30_000));
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageLoadError::TooLarge { .. }), "{err}");
    let err = load_thumbnail(&path, 160, &DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, ImageLoadError::TooLarge { .. }), "{err}");
    let msg = decode_thumbnail(&path, 160).unwrap_err();
    assert!(
        msg.contains("huge.png") && msg.contains("too large"),
        "{msg}"
    );
    assert!(msg.contains("30000x30000"), "{msg}");
}

/// Inserts an APP1 Exif segment with the given orientation right after the JPEG SOI marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\x00\x2A\x00\x00\x00\x08");
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut payload = b"Exif\x00\x00".to_vec();
    payload.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_applies_to_thumbnails_too() {
    let dir = tempfile::tempdir().unwrap();
    // 40x20: left half red, right half blue. Orientation 6 turns it upright as 20x40, red on top.
    let img = RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let jpeg = encode(&DynamicImage::ImageRgb8(img), ImageFormat::Jpeg);
    let path = write(dir.path(), "rot6.jpg", &with_exif_orientation(&jpeg, 6));
    check_both(&path, (20, 40), 10, 5, [255, 0, 0], 40);
    check_both(&path, (20, 40), 10, 35, [0, 0, 255], 40);
}

#[test]
fn cmyk_jpeg_becomes_rgb() {
    // 16x8, made from a red | blue picture with `convert -colorspace CMYK`.
    let path = fixture("cmyk.jpg");
    check_both(&path, (16, 8), 2, 4, [255, 0, 0], 40);
    check_both(&path, (16, 8), 13, 4, [0, 0, 255], 40);
}

#[test]
fn sixteen_bit_png_becomes_8_bit() {
    let dir = tempfile::tempdir().unwrap();
    let img: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(16, 8, |x, _| {
        Rgb([if x < 8 { 65_535 } else { 0 }, 32_896, 0])
    });
    let path = write(
        dir.path(),
        "deep.png",
        &encode(&DynamicImage::ImageRgb16(img), ImageFormat::Png),
    );
    check_both(&path, (16, 8), 2, 2, [255, 128, 0], 0);
    check_both(&path, (16, 8), 13, 2, [0, 128, 0], 0);
}

#[test]
fn palette_png_is_expanded() {
    // 16x8 red | blue, written as an indexed (palette) PNG by `convert PNG8:`.
    let path = fixture("palette.png");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[25], 3, "colour type 3 (indexed)");
    check_both(&path, (16, 8), 2, 4, [255, 0, 0], 0);
    check_both(&path, (16, 8), 13, 4, [0, 0, 255], 0);
}

#[test]
fn grey_with_alpha_is_composited_over_white() {
    let dir = tempfile::tempdir().unwrap();
    let img = ImageBuffer::from_fn(16, 8, |x, _| {
        if x < 8 {
            image::LumaA([0u8, 255])
        } else {
            image::LumaA([0u8, 0])
        }
    });
    let path = write(
        dir.path(),
        "greya.png",
        &encode(&DynamicImage::ImageLumaA8(img), ImageFormat::Png),
    );
    let rgb = load_rgb(&path).unwrap();
    assert_eq!(rgb.get_pixel(2, 2).0, [0, 0, 0]);
    assert_eq!(rgb.get_pixel(13, 2).0, [255, 255, 255]);
    // The thumbnail keeps the transparency (egui draws it over the panel).
    let thumb = load_thumbnail(&path, 8, &DecodeLimits::default()).unwrap();
    assert_eq!(thumb.get_pixel(1, 1).0, [0, 0, 0, 255]);
    assert_eq!(thumb.get_pixel(7, 1).0[3], 0);
}

#[test]
fn animated_gif_and_webp_give_their_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame};
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        let frames = [Rgba([255, 0, 0, 255]), Rgba([0, 0, 255, 255])]
            .into_iter()
            .map(|c| {
                Frame::from_parts(
                    RgbaImage::from_pixel(16, 8, c),
                    0,
                    0,
                    Delay::from_numer_denom_ms(100, 1),
                )
            });
        encoder.encode_frames(frames).unwrap();
    }
    let gif = write(dir.path(), "anim.gif", &bytes);
    check_both(&gif, (16, 8), 8, 4, [255, 0, 0], 0);
    // Two frames, red then blue, 16x8 (`img2webp -lossless red.png -d 100 blue.png`).
    let webp = fixture("animated.webp");
    check_both(&webp, (16, 8), 8, 4, [255, 0, 0], 0);
}

#[test]
fn heic_and_avif_are_unsupported_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    for (name, format) in [("tiny.heic", "HEIC"), ("tiny.avif", "AVIF")] {
        let path = fixture(name);
        // The same bytes under a misleading extension are recognised all the same.
        let renamed = dir.path().join(format!("{name}.jpg"));
        std::fs::copy(&path, &renamed).unwrap();
        for p in [&path, &renamed] {
            let err = load_rgb(p).unwrap_err();
            assert!(matches!(err, ImageLoadError::Unsupported { .. }), "{err}");
            let msg = err.to_string();
            assert!(
                msg.contains(format) && msg.contains("not supported"),
                "{msg}"
            );
            assert!(msg.contains(&p.display().to_string()), "{msg}");
            let thumb = decode_thumbnail(p, 64).unwrap_err();
            assert_eq!(thumb, msg);
        }
    }
}
