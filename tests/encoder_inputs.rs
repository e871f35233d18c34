//! Image loading: formats, colour conversions, EXIF orientation and bad inputs. Every file is
//! generated in a temporary directory.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use captioner::encoder::{
    DecodeLimits, ImageLoadError, load_rgb, load_rgb_with_limits, preprocess_file,
    preprocess_raw_rgb,
};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// A 40x20 test picture: left half red, right half blue.
fn two_colour_image() -> RgbImage {
    RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    image.write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(&x, y)| (i32::from(x) - i32::from(y)).abs() <= tol)
}

#[test]
fn common_formats_decode_to_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let img = DynamicImage::ImageRgb8(two_colour_image());
    for (format, name, tol) in [
        (ImageFormat::Png, "a.png", 0),
        (ImageFormat::Jpeg, "a.jpg", 40),
        (ImageFormat::WebP, "a.webp", 0),
        (ImageFormat::Bmp, "a.bmp", 0),
        (ImageFormat::Gif, "a.gif", 0),
        (ImageFormat::Tiff, "a.tiff", 0),
    ] {
        let path = write(dir.path(), name, &encode(&img, format));
        let rgb = load_rgb(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(rgb.dimensions(), (40, 20), "{name}");
        assert!(
            close(rgb.get_pixel(5, 10).0, [255, 0, 0], tol),
            "{name}: {:?}",
            rgb.get_pixel(5, 10)
        );
        assert!(
            close(rgb.get_pixel(35, 10).0, [0, 0, 255], tol),
            "{name}: {:?}",
            rgb.get_pixel(35, 10)
        );
    }
}

#[test]
fn format_is_taken_from_content_not_extension() {
    let dir = tempfile::tempdir().unwrap();
    let png = encode(
        &DynamicImage::ImageRgb8(two_colour_image()),
        ImageFormat::Png,
    );
    let path = write(dir.path(), "really_a_png.jpg", &png);
    assert_eq!(load_rgb(&path).unwrap().dimensions(), (40, 20));
}

#[test]
fn preprocessing_resizes_and_normalises() {
    let dir = tempfile::tempdir().unwrap();
    let png = encode(
        &DynamicImage::ImageRgb8(two_colour_image()),
        ImageFormat::Png,
    );
    let path = write(dir.path(), "a.png", &png);
    let pre = preprocess_file(&path, 224).unwrap();
    assert_eq!(
        (pre.width, pre.height, pre.data.len()),
        (224, 224, 224 * 224 * 3)
    );
    // top-left is red: (255-127)/128 = 1, (0-127)/128
    assert_eq!(&pre.data[..3], &[1.0, -127.0 / 128.0, -127.0 / 128.0]);
    assert!(pre.data.iter().all(|v| (-1.0..=1.0).contains(v)));

    // raw bytes path
    let raw = vec![127u8; 4 * 2 * 3];
    let pre = preprocess_raw_rgb(&raw, 4, 2, 4, Path::new("raw")).unwrap();
    assert_eq!((pre.width, pre.height), (4, 4));
    assert!(pre.data.iter().all(|&v| v == 0.0));
    assert!(matches!(
        preprocess_raw_rgb(&raw[1..], 4, 2, 4, Path::new("raw")),
        Err(ImageLoadError::InvalidPixels { .. })
    ));
}

#[test]
fn grayscale_rgba_and_16_bit_pngs_become_8_bit_rgb() {
    let dir = tempfile::tempdir().unwrap();

    let gray = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(8, 8, image::Luma([100])));
    let path = write(dir.path(), "gray.png", &encode(&gray, ImageFormat::Png));
    assert_eq!(load_rgb(&path).unwrap().get_pixel(3, 3).0, [100, 100, 100]);

    // transparent left half over white, opaque green right half, half-transparent black pixel
    let mut rgba = RgbaImage::from_fn(8, 8, |x, _| {
        if x < 4 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([0, 200, 0, 255])
        }
    });
    rgba.put_pixel(7, 7, Rgba([0, 0, 0, 128]));
    let path = write(
        dir.path(),
        "rgba.png",
        &encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png),
    );
    let rgb = load_rgb(&path).unwrap();
    assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
    assert_eq!(rgb.get_pixel(5, 0).0, [0, 200, 0]);
    assert_eq!(rgb.get_pixel(7, 7).0, [127, 127, 127]);

    let gray_alpha = DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_pixel(
        4,
        4,
        image::LumaA([0, 0]),
    ));
    let path = write(dir.path(), "la.png", &encode(&gray_alpha, ImageFormat::Png));
    assert_eq!(load_rgb(&path).unwrap().get_pixel(1, 1).0, [255, 255, 255]);

    let rgb16 =
        image::ImageBuffer::<Rgb<u16>, Vec<u16>>::from_pixel(6, 6, Rgb([65_535, 32_896, 0]));
    let path = write(
        dir.path(),
        "rgb16.png",
        &encode(&DynamicImage::ImageRgb16(rgb16), ImageFormat::Png),
    );
    assert_eq!(load_rgb(&path).unwrap().get_pixel(2, 2).0, [255, 128, 0]);

    let rgba16 = image::ImageBuffer::<Rgba<u16>, Vec<u16>>::from_pixel(6, 6, Rgba([0, 0, 0, 0]));
    let path = write(
        dir.path(),
        "rgba16.png",
        &encode(&DynamicImage::ImageRgba16(rgba16), ImageFormat::Png),
    );
    assert_eq!(load_rgb(&path).unwrap().get_pixel(2, 2).0, [255, 255, 255]);
}

/// Inserts an APP1 Exif segment with the given orientation right after the JPEG SOI marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\x00\x2A\x00\x00\x00\x08"); // big-endian TIFF header, IFD at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
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
fn exif_orientation_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = encode(
        &DynamicImage::ImageRgb8(two_colour_image()),
        ImageFormat::Jpeg,
    );

    let plain = load_rgb(&write(dir.path(), "plain.jpg", &jpeg)).unwrap();
    assert_eq!(plain.dimensions(), (40, 20));

    // Orientation 6: the stored image must be rotated 90 degrees clockwise to display, so the
    // left (red) half ends up on top.
    let rotated = load_rgb(&write(
        dir.path(),
        "rot6.jpg",
        &with_exif_orientation(&jpeg, 6),
    ))
    .unwrap();
    assert_eq!(rotated.dimensions(), (20, 40));
    assert!(
        close(rotated.get_pixel(10, 5).0, [255, 0, 0], 40),
        "{:?}",
        rotated.get_pixel(10, 5)
    );
    assert!(
        close(rotated.get_pixel(10, 35).0, [0, 0, 255], 40),
        "{:?}",
        rotated.get_pixel(10, 35)
    );

    // Orientation 3: rotated 180 degrees, blue on the left.
    let flipped = load_rgb(&write(
        dir.path(),
        "rot3.jpg",
        &with_exif_orientation(&jpeg, 3),
    ))
    .unwrap();
    assert_eq!(flipped.dimensions(), (40, 20));
    assert!(close(flipped.get_pixel(5, 10).0, [0, 0, 255], 40));
}

#[test]
fn animated_gif_uses_the_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame};
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        let frames = [
            Rgba([255, 0, 0, 255]),
            Rgba([0, 255, 0, 255]),
            Rgba([0, 0, 255, 255]),
        ]
        .into_iter()
        .map(|c| {
            Frame::from_parts(
                RgbaImage::from_pixel(16, 16, c),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            )
        });
        encoder.encode_frames(frames).unwrap();
    }
    let path = write(dir.path(), "anim.gif", &bytes);
    let rgb = load_rgb(&path).unwrap();
    assert_eq!(rgb.dimensions(), (16, 16));
    assert_eq!(rgb.get_pixel(8, 8).0, [255, 0, 0]);
}

#[test]
fn missing_empty_and_non_image_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("nope.jpg");
    let err = load_rgb(&missing).unwrap_err();
    assert!(matches!(err, ImageLoadError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("nope.jpg"));

    let empty = write(dir.path(), "empty.jpg", b"");
    let err = load_rgb(&empty).unwrap_err();
    assert!(matches!(err, ImageLoadError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("empty.jpg"));

    let text = write(
        dir.path(),
        "notes.jpg",
        b"this is a text file, not a picture\n",
    );
    let err = load_rgb(&text).unwrap_err();
    assert!(matches!(err, ImageLoadError::NotAnImage { .. }), "{err}");
    assert!(
        err.to_string().contains("notes.jpg") && err.to_string().contains(".jpg extension"),
        "{err}"
    );

    let unknown = write(dir.path(), "data.xyz", b"\x00\x01\x02 random bytes");
    assert!(matches!(
        load_rgb(&unknown).unwrap_err(),
        ImageLoadError::NotAnImage { .. }
    ));

    let err = load_rgb(dir.path()).unwrap_err();
    assert!(matches!(err, ImageLoadError::Io { .. }), "{err}");
}

#[test]
fn truncated_and_corrupt_images_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let big = DynamicImage::ImageRgb8(RgbImage::from_fn(200, 150, |x, y| {
        Rgb([x as u8, y as u8, (x ^ y) as u8])
    }));

    let jpeg = encode(&big, ImageFormat::Jpeg);
    for cut in [jpeg.len() / 2, jpeg.len() - 2, 200, 4] {
        let path = write(dir.path(), &format!("cut{cut}.jpg"), &jpeg[..cut]);
        let err = load_rgb(&path).unwrap_err();
        assert!(
            matches!(err, ImageLoadError::Corrupt { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains(&format!("cut{cut}.jpg")));
    }

    let png = encode(&big, ImageFormat::Png);
    let path = write(dir.path(), "cut.png", &png[..png.len() / 2]);
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageLoadError::Corrupt { .. }), "{err}");

    // valid signature, garbage afterwards
    let mut garbage = png[..16].to_vec();
    garbage.extend(std::iter::repeat_n(0xAB, 500));
    let path = write(dir.path(), "garbage.png", &garbage);
    assert!(load_rgb(&path).is_err());

    let webp = encode(&big, ImageFormat::WebP);
    let path = write(dir.path(), "cut.webp", &webp[..webp.len() / 2]);
    assert!(load_rgb(&path).is_err());
}

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

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A PNG header that claims `w` x `h` RGBA pixels, with almost no data: a decompression bomb.
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn oversized_images_are_rejected_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bomb.png", &bomb_png(60_000, 60_000));
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageLoadError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("bomb.png"));

    // within the pixel limits but over the memory cap: 16000 x 16000 RGBA8 = 1 GB
    let path = write(dir.path(), "bomb2.png", &bomb_png(16_000, 16_000));
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageLoadError::TooLarge { .. }), "{err}");
}

/// A real 10,000 x 10,000 image (300 MB decoded) is within the default limits: it must load and
/// shrink to the model size without trouble; with tighter limits it is a clear error.
#[test]
fn ten_thousand_pixel_square_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.png");
    {
        let img = RgbImage::from_pixel(10_000, 10_000, Rgb([30, 144, 255]));
        img.save(&path).unwrap();
    }
    let tight = DecodeLimits {
        max_width: 8192,
        max_height: 8192,
        ..DecodeLimits::default()
    };
    let err = load_rgb_with_limits(&path, &tight).unwrap_err();
    assert!(matches!(err, ImageLoadError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("huge.png"));

    let pre = preprocess_file(&path, 224).unwrap();
    assert_eq!(pre.data.len(), 224 * 224 * 3);
    let expected = [
        (30.0 - 127.0) / 128.0,
        (144.0 - 127.0) / 128.0,
        (255.0 - 127.0) / 128.0,
    ];
    assert!(
        pre.data
            .chunks_exact(3)
            .all(|p| p.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6))
    );
}
