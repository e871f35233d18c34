//! Fuzz target: the one image loader (captioning, feature extraction, thumbnails) on any
//! bytes, with tight limits. Every outcome is an image within the limits or an error naming
//! the file.
#![no_main]

use std::path::Path;

use captioner::encoder::image_io::{DecodeLimits, decode_image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits {
        max_width: 2048,
        max_height: 2048,
        max_decoded_bytes: 32 * 1024 * 1024,
        max_file_bytes: 1024 * 1024,
    };
    let path = Path::new("photo.jpg");
    match decode_image(data, path, &limits) {
        Ok(image) => {
            // Orientation may swap the sides.
            assert!(image.width().max(image.height()) <= 2048);
        }
        Err(e) => assert_eq!(e.path(), path),
    }
});
