//! Fuzz target: a Kaggle `captions.txt` (CSV, header `image,caption`) parsed as import parses
//! it. Only a bad header makes the file unusable; every caption kept is non-empty and trimmed.
#![no_main]

use std::path::Path;

use captioner::dataset::{CaptionFileKind, parse_caption_file};
use libfuzzer_sys::fuzz_target;

#[path = "lines_common.rs"]
mod lines_common;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("captions.txt");
    match parse_caption_file(CaptionFileKind::KaggleCsv, path, data) {
        Ok(parsed) => lines_common::check_captions(&parsed, path),
        Err(e) => assert!(e.to_string().contains("captions.txt"), "{e}"),
    }
});
